-- delivery_release: an attempt cut short by shutdown gives its lease back: the delivery is due again
-- at once, for whichever replica is left (service/webhooks/deliveries.py).
--
-- KEYS  delivery_key  the delivery's record
--       due_key       deliveries by when their next attempt is due
-- ARGV  delivery_id   the delivery's id
--       token         the claim token
--       now           unix seconds
-- Returns 'ok' | 'stale' (another claim came since, or it is no longer pending: left alone)
local delivery_key = KEYS[1]
local due_key = KEYS[2]
local delivery_id = ARGV[1]
local token = ARGV[2]
local now = ARGV[3]

if redis.call('HGET', delivery_key, 'claims') == token and redis.call('HGET', delivery_key, 'status') == 'pending' then
  redis.call('HDEL', delivery_key, 'leased_until')
  redis.call('ZADD', due_key, now, delivery_id)
  return 'ok'
end
return 'stale'
