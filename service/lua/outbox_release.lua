-- outbox_release: release a lock or lease held under a token (service/outbox.py: a user's relay
-- lease, the sweeper's lock), only if it is still ours: it may have expired and been taken by another.
--
-- KEYS  lock_key  the lock or lease
-- ARGV  token     the token it was taken with
-- Returns 'ok' (released) | 'stale' (not ours any more: left alone)
local lock_key = KEYS[1]
local token = ARGV[1]

if redis.call('GET', lock_key) == token then
  redis.call('DEL', lock_key)
  return 'ok'
end
return 'stale'
