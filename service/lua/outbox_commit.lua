-- outbox_commit: a relay records what it moved to the outbox stream (service/outbox.py), only while it
-- still holds the user's lease. It trims what it read from the pending list (a concurrent relay that
-- trimmed first, and a newer event behind, are left alone), appends "<stream id> <event id>" refs and
-- drops those from before the cutoff (a stream id starts with its time in ms): erasure must find every
-- event whose deliveries may still exist, so the refs are trimmed by age, never by count.
--
-- KEYS  lease_key          the user's relay lease
--       pending_key        the user's pending events
--       user_events_key    refs of the user's relayed events
--       relay_inflight_key the relay's in-flight mark (deleted: the relay completed)
-- ARGV  token              the relay's lease token
--       first_read         the first pending event the relay read
--       read_count         how many pending events it read
--       cutoff_ms          refs of stream ids older than this (ms) are dropped
--       retention_seconds  the refs' TTL
--       refs...            from ARGV[refs_at] on: "<stream id> <event id>" per event added to the stream
-- Returns 'ok' | 'stale' (the lease is lost: nothing done)
local lease_key = KEYS[1]
local pending_key = KEYS[2]
local user_events_key = KEYS[3]
local relay_inflight_key = KEYS[4]
local token = ARGV[1]
local first_read = ARGV[2]
local read_count = ARGV[3]
local cutoff_ms = tonumber(ARGV[4])
local retention_seconds = ARGV[5]
local refs_at = 6

if redis.call('GET', lease_key) ~= token then return 'stale' end
redis.call('DEL', relay_inflight_key)
if redis.call('LINDEX', pending_key, 0) == first_read then redis.call('LTRIM', pending_key, read_count, -1) end
if #ARGV >= refs_at then redis.call('RPUSH', user_events_key, unpack(ARGV, refs_at)) end  -- none: only backfilled events
while true do
  local head = redis.call('LINDEX', user_events_key, 0)
  local ms = head and tonumber(string.match(head, '^(%d+)-'))
  if not ms or ms >= cutoff_ms then break end
  redis.call('LPOP', user_events_key)
end
redis.call('EXPIRE', user_events_key, retention_seconds)
return 'ok'
