-- alerts_move: an alert's status moved on: only the new status's set lists it (service/alerts/index.py).
-- A script, not MULTI: a Redis Cluster client runs a script on the slot's node, all or nothing.
--
-- KEYS  target_key        the set of the alert's status now
--       owners_key        alert id -> user id: an alert no longer in it was unlisted (its user erased)
--       other keys...     from KEYS[other_keys_at] on: the sets of every other status
-- ARGV  alert_id          the alert's id
--       score             its creation time (unix seconds)
-- Returns 'ok', or 'missing': unlisted, it stays so (a verdict racing the user's erasure listed it again)
local target_key = KEYS[1]
local owners_key = KEYS[2]
local other_keys_at = 3
local alert_id = ARGV[1]
local score = ARGV[2]

for i = other_keys_at, #KEYS do redis.call('ZREM', KEYS[i], alert_id) end
if redis.call('HEXISTS', owners_key, alert_id) == 0 then return 'missing' end
redis.call('ZADD', target_key, score, alert_id)
return 'ok'
