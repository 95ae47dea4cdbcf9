-- alerts_expire_old: alerts recorded before the cutoff have expired with their users' retention:
-- forget them in the listing across users too, a batch at a time (service/alerts/index.py).
--
-- KEYS  by_time_key       every alert by creation time
--       owners_key        alert id -> user id
--       status keys...    from KEYS[status_keys_at] on: the alerts of each status
-- ARGV  cutoff            unix seconds
--       batch             at most this many alerts
-- Returns {'ok', how many were forgotten}
local by_time_key = KEYS[1]
local owners_key = KEYS[2]
local status_keys_at = 3
local cutoff = ARGV[1]
local batch = tonumber(ARGV[2])

local ids = redis.call('ZRANGEBYSCORE', by_time_key, '-inf', '(' .. cutoff, 'LIMIT', 0, batch)
if #ids == 0 then return {'ok', 0} end
redis.call('HDEL', owners_key, unpack(ids))
redis.call('ZREM', by_time_key, unpack(ids))
for i = status_keys_at, #KEYS do redis.call('ZREM', KEYS[i], unpack(ids)) end
return {'ok', #ids}
