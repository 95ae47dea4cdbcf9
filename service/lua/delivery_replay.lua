-- delivery_replay: send a finished delivery again, a fresh retry schedule and the same webhook-id
-- (service/webhooks/deliveries.py, POST /v1/webhooks/{id}/deliveries/{delivery_id}/retry). The check and
-- the change are one step: of replays sent at once, or one after another, one is sent; the others find it
-- pending or, once it arrived, delivered (sent again only when forced).
--
-- KEYS  delivery_key      the delivery's record
--       attempts_key      its attempts (the new round counts from here)
--       due_key           deliveries by when their next attempt is due
--       subscription_key  the subscription
-- ARGV  delivery_id       the delivery's id
--       now               unix seconds
--       force             '1': replay a delivered one too; '0': only one that did not arrive
-- Returns 'ok' | 'missing' (no such delivery) | 'pending' (its next attempt is scheduled already)
--       | 'delivered' (the receiver has it, and force is '0') | 'disabled' (the subscription is not enabled)
local delivery_key = KEYS[1]
local attempts_key = KEYS[2]
local due_key = KEYS[3]
local subscription_key = KEYS[4]
local delivery_id = ARGV[1]
local now = ARGV[2]
local force = ARGV[3]

if redis.call('EXISTS', delivery_key) == 0 then return 'missing' end
local status = redis.call('HGET', delivery_key, 'status')
if status == 'pending' then return 'pending' end
if status == 'delivered' and force ~= '1' then return 'delivered' end
if redis.call('HGET', subscription_key, 'status') ~= 'enabled' then return 'disabled' end
redis.call('HSET', delivery_key, 'status', 'pending', 'base', redis.call('LLEN', attempts_key),
  'next_attempt_at', now, 'updated_at', now, 'reason', '')
redis.call('HDEL', delivery_key, 'finished_at')
redis.call('HINCRBY', delivery_key, 'replays', 1)
redis.call('PERSIST', delivery_key)
redis.call('PERSIST', attempts_key)
redis.call('ZADD', due_key, now, delivery_id)
return 'ok'
