-- delivery_record: store an attempt's result (service/webhooks/deliveries.py), only under the claim
-- token it was made with: a late result from an expired lease is discarded.
--
-- KEYS  delivery_key       the delivery's record
--       attempts_key       its attempts
--       due_key            deliveries by when their next attempt is due
--       open_key           the event's set of open deliveries
--       dead_letters_key   the dead-letter stream
--       subscription_key   the subscription (disabled on 410 Gone)
--       erased_key         tombstones of erased users' events
-- ARGV  delivery_id        the delivery's id
--       token              the claim token
--       attempt            the attempt's JSON, '' for none
--       new_status         pending | delivered | dead_lettered | disabled | cancelled
--       next_attempt_at    when pending: when the next attempt is due (unix seconds)
--       now                unix seconds
--       retention_seconds  a finished delivery's TTL
--       reason             why it finished ('' for delivered)
--       dead_letter_maxlen the dead-letter stream's approximate length
-- Returns {'ok', how many deliveries of the event are still open} | 'pending' (due again at next_attempt_at)
--       | 'stale' (another claim came since: discarded) | 'erased' (its user was erased: nothing kept)
local delivery_key = KEYS[1]
local attempts_key = KEYS[2]
local due_key = KEYS[3]
local open_key = KEYS[4]
local dead_letters_key = KEYS[5]
local subscription_key = KEYS[6]
local erased_key = KEYS[7]
local delivery_id = ARGV[1]
local token = ARGV[2]
local attempt = ARGV[3]
local new_status = ARGV[4]
local next_attempt_at = ARGV[5]
local now = ARGV[6]
local retention_seconds = ARGV[7]
local reason = ARGV[8]
local dead_letter_maxlen = ARGV[9]

if redis.call('HGET', delivery_key, 'claims') ~= token then return 'stale' end
redis.call('HDEL', delivery_key, 'leased_until')
if redis.call('ZSCORE', erased_key, redis.sha1hex(redis.call('HGET', delivery_key, 'event_id'))) then
  return 'erased'
end
if attempt ~= '' then redis.call('RPUSH', attempts_key, attempt) end
if new_status == 'pending' then
  redis.call('HSET', delivery_key, 'next_attempt_at', next_attempt_at, 'updated_at', now)
  redis.call('ZADD', due_key, next_attempt_at, delivery_id)
  return 'pending'
end
redis.call('HSET', delivery_key, 'status', new_status, 'finished_at', now, 'updated_at', now, 'reason', reason)
redis.call('HDEL', delivery_key, 'next_attempt_at')
redis.call('ZREM', due_key, delivery_id)
redis.call('SREM', open_key, delivery_id)
if new_status == 'dead_lettered' then
  local rec = redis.call('HMGET', delivery_key, 'subscription_id', 'event_id', 'type')
  redis.call('XADD', dead_letters_key, 'MAXLEN', '~', dead_letter_maxlen, '*', 'delivery_id', delivery_id,
    'subscription_id', rec[1], 'event_id', rec[2], 'type', rec[3], 'reason', reason)
elseif new_status == 'disabled' and redis.call('EXISTS', subscription_key) == 1 then
  redis.call('HSET', subscription_key, 'status', 'disabled', 'disabled_reason', reason)
end
redis.call('EXPIRE', delivery_key, retention_seconds)
redis.call('EXPIRE', attempts_key, retention_seconds)
return {'ok', redis.call('SCARD', open_key)}
