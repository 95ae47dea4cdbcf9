-- alerts_remove: unlist alerts whose records are gone, erased or expired (service/alerts/index.py).
--
-- KEYS  by_time_key       every alert by creation time
--       owners_key        alert id -> user id
--       status keys...    from KEYS[status_keys_at] on: the alerts of each status
-- ARGV  alert ids...      from ARGV[alert_ids_at] on: the alerts to unlist (at least one)
-- Returns 'ok'
local by_time_key = KEYS[1]
local owners_key = KEYS[2]
local status_keys_at = 3
local alert_ids_at = 1

local ids = {unpack(ARGV, alert_ids_at)}
redis.call('HDEL', owners_key, unpack(ids))
redis.call('ZREM', by_time_key, unpack(ids))
for i = status_keys_at, #KEYS do redis.call('ZREM', KEYS[i], unpack(ids)) end
return 'ok'
