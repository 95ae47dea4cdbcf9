-- rate_window: admit one request to an API key's one-second window when the sliding estimate allows it
-- (service/rate_limit.py): this window's admitted requests, this one included, plus the window before's
-- weighted by the share of it still within the last second. Only admitted requests are counted: counting
-- refused ones too starved clients that retried as Retry-After said (an audit: 10 workers sharing a key
-- limited to 5 a second got 0.6 a second).
--
-- KEYS  window_key       this second's counter
--       previous_key     the second before's (the same slot: keys.rate_window)
-- ARGV  limit            requests allowed in any one second
--       previous_weight  the share of the second before still within the last second, 0 to 1
--       ttl_seconds      the counter's TTL, set by the window's first request
-- Returns {'ok' or 'refused', requests admitted in this window (this one included when admitted), in the one before}
local window_key = KEYS[1]
local previous_key = KEYS[2]
local limit = tonumber(ARGV[1])
local previous_weight = tonumber(ARGV[2])
local ttl_seconds = ARGV[3]

local n = tonumber(redis.call('GET', window_key) or '0')
local previous = tonumber(redis.call('GET', previous_key) or '0')
if n + 1 + previous * previous_weight > limit then
  return {'refused', n, previous}
end
n = redis.call('INCR', window_key)
if n == 1 then redis.call('EXPIRE', window_key, ttl_seconds) end
return {'ok', n, previous}
