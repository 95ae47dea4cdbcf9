-- webhook_rotate_secret: sign with a new secret from now on, and with each earlier secret still in its
-- grace period (service/webhooks/subscriptions.py): the secret it replaces until previous_until, those
-- replaced before until their own end or previous_until, whichever comes first (so a rotation without a
-- grace period cuts them all off). At most `keep` previous secrets, newest first; one script, so two
-- rotations at once (a client's retry) cannot lose a secret in between.
--
-- KEYS  subscription_key  the subscription
-- ARGV  secret            the new secret
--       previous_until    until when the replaced secret still signs (unix seconds)
--       now               unix seconds: secrets whose grace ended are dropped
--       keep              how many previous secrets are kept at most
-- Returns 'ok' | 'missing' (no such subscription)
local subscription_key = KEYS[1]
local secret = ARGV[1]
local previous_until = ARGV[2]
local now = tonumber(ARGV[3])
local keep = tonumber(ARGV[4])

if redis.call('EXISTS', subscription_key) == 0 then return 'missing' end
-- {secret, until} pairs, newest first: the one being replaced, then those already kept
local candidates = {{redis.call('HGET', subscription_key, 'secret'), previous_until}}
local stored = redis.call('HGET', subscription_key, 'previous_secrets')
if stored then
  for _, pair in ipairs(cjson.decode(stored)) do table.insert(candidates, pair) end
else  -- a subscription rotated before previous_secrets existed kept one, in two fields
  local legacy = redis.call('HMGET', subscription_key, 'previous_secret', 'previous_secret_until')
  if legacy[1] and legacy[2] then table.insert(candidates, {legacy[1], legacy[2]}) end
end
local kept, seen = {}, {[secret] = true}
for _, pair in ipairs(candidates) do
  local ends = pair[2]
  if tonumber(ends) > tonumber(previous_until) then ends = previous_until end
  if not seen[pair[1]] and tonumber(ends) > now and #kept < keep then
    seen[pair[1]] = true
    table.insert(kept, {pair[1], ends})
  end
end
redis.call('HDEL', subscription_key, 'previous_secret', 'previous_secret_until', 'previous_secrets')
if #kept > 0 then redis.call('HSET', subscription_key, 'previous_secrets', cjson.encode(kept)) end
redis.call('HSET', subscription_key, 'secret', secret)
return 'ok'
