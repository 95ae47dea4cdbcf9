-- rate_window: count one request in an API key's one-second window (service/rate_limit.py), and read the
-- window before it, for the sliding estimate.
--
-- KEYS  window_key    this second's counter
--       previous_key  the second before's (the same slot: keys.rate_window)
-- ARGV  ttl_seconds   the counter's TTL, set by the window's first request
-- Returns {'ok', requests in this window (this one included), requests in the one before}
local window_key = KEYS[1]
local previous_key = KEYS[2]
local ttl_seconds = ARGV[1]

local n = redis.call('INCR', window_key)
if n == 1 then redis.call('EXPIRE', window_key, ttl_seconds) end
return {'ok', n, tonumber(redis.call('GET', previous_key) or '0')}
