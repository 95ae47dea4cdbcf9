-- delivery_claim: lease a due delivery for one attempt (service/webhooks/deliveries.py). Its score in
-- the due set moves to the lease's expiry and its claim counter goes up: the counter is the token the
-- attempt's result must present. `leased_until` tells an erasure that an attempt may be on the wire.
--
-- KEYS  due_key       deliveries by when their next attempt is due
--       delivery_key  the delivery's record
--       attempts_key  its attempts
--       erased_key    tombstones of erased users' events
-- ARGV  delivery_id   the delivery's id
--       now           unix seconds
--       lease_until   when the lease ends (unix seconds)
-- Returns {'ok', claim token, the record as a flat list, attempts so far}
--       | 'not_due' (not in the due set, or not due yet: another replica may have won it)
--       | 'not_pending' (finished or gone: dropped from the due set)
--       | 'erased' (its user was erased: dropped from the due set)
local due_key = KEYS[1]
local delivery_key = KEYS[2]
local attempts_key = KEYS[3]
local erased_key = KEYS[4]
local delivery_id = ARGV[1]
local now = tonumber(ARGV[2])
local lease_until = ARGV[3]

local score = redis.call('ZSCORE', due_key, delivery_id)
if not score or tonumber(score) > now then return 'not_due' end
if redis.call('HGET', delivery_key, 'status') ~= 'pending' then
  redis.call('ZREM', due_key, delivery_id)
  return 'not_pending'
end
if redis.call('ZSCORE', erased_key, redis.sha1hex(redis.call('HGET', delivery_key, 'event_id'))) then
  redis.call('ZREM', due_key, delivery_id)
  return 'erased'
end
redis.call('ZADD', due_key, lease_until, delivery_id)
redis.call('HSET', delivery_key, 'leased_until', lease_until)
local token = redis.call('HINCRBY', delivery_key, 'claims', 1)
return {'ok', token, redis.call('HGETALL', delivery_key), redis.call('LLEN', attempts_key)}
