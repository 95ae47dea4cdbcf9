-- delivery_enqueue: create (once) one delivery per matching subscription of an outbox event
-- (service/webhooks/deliveries.py). Taking the same outbox entry twice finds the records made the
-- first time; an erased user's event (a dispatcher read it before the erasure) gets no delivery.
--
-- KEYS  open_key          the event's set of open deliveries
--       due_key           deliveries by when their next attempt is due
--       erased_key        tombstones of erased users' events (SHA-1 of the event id)
--       delivery keys...  from KEYS[delivery_keys_at] on, per delivery: its record, its attempts, its subscription's log
-- ARGV  now               unix seconds
--       event_id          the event's id
--       log_length        deliveries kept in a subscription's log
--       delivery args...  from ARGV[delivery_args_at] on, per delivery: id, subscription id, event id, stream id, type, payload
-- Returns {'ok', how many of the event's deliveries are open} | {'erased'} (nothing created)
local open_key = KEYS[1]
local due_key = KEYS[2]
local erased_key = KEYS[3]
local delivery_keys_at = 4
local now = ARGV[1]
local event_id = ARGV[2]
local log_length = tonumber(ARGV[3])
local delivery_args_at = 4

if redis.call('ZSCORE', erased_key, redis.sha1hex(event_id)) then return {'erased'} end
for i = 0, (#KEYS - delivery_keys_at + 1) / 3 - 1 do
  local dlv, log = KEYS[delivery_keys_at + 3 * i], KEYS[delivery_keys_at + 2 + 3 * i]
  local a = delivery_args_at + 6 * i
  local id = ARGV[a]
  if redis.call('EXISTS', dlv) == 0 then
    redis.call('HSET', dlv, 'id', id, 'subscription_id', ARGV[a + 1], 'event_id', ARGV[a + 2],
      'stream_id', ARGV[a + 3], 'type', ARGV[a + 4], 'payload', ARGV[a + 5], 'status', 'pending',
      'created_at', now, 'next_attempt_at', now, 'claims', 0, 'base', 0)
    redis.call('ZADD', due_key, now, id)
    redis.call('ZADD', log, now, id)
    redis.call('ZREMRANGEBYRANK', log, 0, -(log_length + 1))
    redis.call('SADD', open_key, id)
  elseif redis.call('HGET', dlv, 'status') == 'pending' then
    redis.call('SADD', open_key, id)
  end
end
return {'ok', redis.call('SCARD', open_key)}
