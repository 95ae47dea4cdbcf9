-- rate_window: count one request in an API key's one-second window (service/rate_limit.py).
--
-- KEYS  window_key   the window's counter
-- ARGV  ttl_seconds  the counter's TTL, set by the window's first request
-- Returns {'ok', requests in the window, this one included}
local window_key = KEYS[1]
local ttl_seconds = ARGV[1]

local n = redis.call('INCR', window_key)
if n == 1 then redis.call('EXPIRE', window_key, ttl_seconds) end
return {'ok', n}
