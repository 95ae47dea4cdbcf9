-- alerts_move: an alert's status moved on: only the new status's set lists it (service/alerts/index.py).
-- A script, not MULTI: a Redis Cluster client runs a script on the slot's node, all or nothing.
--
-- KEYS  target_key        the set of the alert's status now
--       other keys...     from KEYS[other_keys_at] on: the sets of every other status
-- ARGV  alert_id          the alert's id
--       score             its creation time (unix seconds)
-- Returns 'ok'
local target_key = KEYS[1]
local other_keys_at = 2
local alert_id = ARGV[1]
local score = ARGV[2]

for i = other_keys_at, #KEYS do redis.call('ZREM', KEYS[i], alert_id) end
redis.call('ZADD', target_key, score, alert_id)
return 'ok'
