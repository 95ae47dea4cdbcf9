-- webhook_rotate_secret: sign with a new secret from now on, and with the previous one until its grace
-- period ends (service/webhooks/subscriptions.py); one script, so two rotations at once cannot lose
-- the secret in between.
--
-- KEYS  subscription_key  the subscription
-- ARGV  secret            the new secret
--       previous_until    until when the previous secret still signs (unix seconds)
-- Returns 'ok' | 'missing' (no such subscription)
local subscription_key = KEYS[1]
local secret = ARGV[1]
local previous_until = ARGV[2]

if redis.call('EXISTS', subscription_key) == 0 then return 'missing' end
redis.call('HSET', subscription_key, 'previous_secret', redis.call('HGET', subscription_key, 'secret'),
  'previous_secret_until', previous_until, 'secret', secret)
return 'ok'
