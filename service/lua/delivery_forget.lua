-- delivery_forget: erasure of one event's deliveries (service/webhooks/deliveries.py, driven by
-- service/erasure.py). Tombstones the event (its SHA-1: the tombstone names no event of the user in
-- clear; from now on no delivery of it is created, claimed or recorded), and deletes its deliveries,
-- open or done, but those with an attempt on the wire (leased): the erasure calls again until none is.
--
-- KEYS  erased_key        tombstones of erased users' events
--       due_key           deliveries by when their next attempt is due
--       open_key          the event's set of open deliveries
--       delivery keys...  from KEYS[delivery_keys_at] on, per delivery: its record, its attempts, its subscription's log
-- ARGV  event_id          the event's id
--       now               unix seconds
--       tombstone_cutoff  tombstones older than this (unix seconds) are dropped
--       delivery ids...   from ARGV[delivery_ids_at] on, one per delivery, in the order of the keys
-- Returns 'ok' (all gone) | {'busy', how many still have an attempt on the wire}
local erased_key = KEYS[1]
local due_key = KEYS[2]
local open_key = KEYS[3]
local delivery_keys_at = 4
local event_id = ARGV[1]
local now = ARGV[2]
local tombstone_cutoff = ARGV[3]
local delivery_ids_at = 4

redis.call('ZADD', erased_key, now, redis.sha1hex(event_id))
redis.call('ZREMRANGEBYSCORE', erased_key, '-inf', tombstone_cutoff)
local busy = 0
for i = 0, (#KEYS - delivery_keys_at + 1) / 3 - 1 do
  local dlv, id = KEYS[delivery_keys_at + 3 * i], ARGV[delivery_ids_at + i]
  local leased = redis.call('HGET', dlv, 'leased_until')
  if leased and tonumber(leased) > tonumber(now) then
    busy = busy + 1
  else
    redis.call('DEL', dlv, KEYS[delivery_keys_at + 1 + 3 * i])
    redis.call('ZREM', due_key, id)
    redis.call('ZREM', KEYS[delivery_keys_at + 2 + 3 * i], id)
  end
end
if busy > 0 then return {'busy', busy} end
redis.call('DEL', open_key)
return 'ok'
