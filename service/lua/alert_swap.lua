-- alert_swap: an alert's transition (acknowledge, resolve) as a compare-and-set of its record in its
-- user's hash (service/alerts/store.py).
--
-- KEYS  alerts_key   the user's alerts
-- ARGV  alert_id     the alert's id
--       expected     the record as read
--       replacement  the record to write instead
-- Returns 'ok' | 'missing' (no such alert: erased or expired) | 'conflict' (changed since it was read)
local alerts_key = KEYS[1]
local alert_id = ARGV[1]
local expected = ARGV[2]
local replacement = ARGV[3]

local cur = redis.call('HGET', alerts_key, alert_id)
if not cur then return 'missing' end
if cur ~= expected then return 'conflict' end
redis.call('HSET', alerts_key, alert_id, replacement)
return 'ok'
