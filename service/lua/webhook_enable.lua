-- webhook_enable: deliver again to a subscription that was disabled (its receiver answered 410 Gone)
-- (service/webhooks/subscriptions.py).
--
-- KEYS  subscription_key  the subscription
-- ARGV  none
-- Returns 'ok' | 'missing' (no such subscription)
local subscription_key = KEYS[1]

if redis.call('EXISTS', subscription_key) == 0 then return 'missing' end
redis.call('HSET', subscription_key, 'status', 'enabled')
redis.call('HDEL', subscription_key, 'disabled_reason')
return 'ok'
