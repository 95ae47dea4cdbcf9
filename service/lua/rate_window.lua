-- rate_window: admit one request to an API key's last second when fewer than the limit were admitted in it
-- (service/rate_limit.py): a log of the admitted requests' times, those a second old and more dropped first.
-- Exact: at most the limit in any one second, and the limit each second to a client that keeps to it. Two
-- counters of whole seconds, one weighted (the estimate before), let 9 of 5 through in under a second and
-- held a paced client to 4 (a re-audit); counting refused requests too starved clients that retried as
-- Retry-After said (an audit).
--
-- KEYS  log_key           the admitted requests of one API key, scored by their time (keys.rate_log)
-- ARGV  limit             requests allowed in any one second
--       now               this request's time, seconds
--       window_start      now - 1: a request at it or before is out of the window
--       member            a unique name for this request in the log
--       ttl_milliseconds  the log's TTL, renewed by every admitted request
-- Returns {'ok', requests admitted in the last second, this one included}
--      or {'refused', requests admitted in the last second, the time of the oldest of them}
local log_key = KEYS[1]
local limit = tonumber(ARGV[1])
local now = ARGV[2]
local window_start = ARGV[3]
local member = ARGV[4]
local ttl_milliseconds = ARGV[5]

redis.call('ZREMRANGEBYSCORE', log_key, '-inf', window_start)
local n = redis.call('ZCARD', log_key)
if n >= limit then
  local oldest = redis.call('ZRANGE', log_key, 0, 0, 'WITHSCORES')
  return {'refused', n, oldest[2]}
end
redis.call('ZADD', log_key, now, member)
redis.call('PEXPIRE', log_key, ttl_milliseconds)
return {'ok', n + 1}
