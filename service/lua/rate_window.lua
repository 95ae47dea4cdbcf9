-- rate_window: admit one request to an API key's last second when fewer than the limit were admitted in it
-- (service/rate_limit.py): a log of the admitted requests' times, those a second old and more dropped first.
-- At most the limit in any one second. The time is Redis's own (TIME), one clock for every replica: each
-- replica's clock let a replica 10-50 ms ahead drop the others' entries early (8-10 of 5 in a second), and a
-- time read before the round trip let a later request, run first, drop an entry (a re-audit). Two counters
-- of whole seconds, one weighted (the estimate before), let 9 of 5 through in under a second and held a
-- paced client to 4; counting refused requests too starved clients that retried as Retry-After said.
--
-- KEYS  log_key           the admitted requests of one API key, scored by their time in microseconds (keys.rate_log)
-- ARGV  limit             requests allowed in any one second
--       now               '' (Redis's TIME), or seconds: a test's own clock
--       member            a unique name for this request in the log
--       ttl_milliseconds  the log's TTL, renewed by every admitted request
-- Returns {'ok', requests admitted in the last second, this one included}
--      or {'refused', requests admitted in the last second, the oldest one's time, now (microseconds)}
local log_key = KEYS[1]
local limit = tonumber(ARGV[1])
local now = ARGV[2]
local member = ARGV[3]
local ttl_milliseconds = ARGV[4]

local micros
if now == '' then
  local time = redis.call('TIME')
  micros = tonumber(time[1]) * 1000000 + tonumber(time[2])
else
  micros = math.floor(tonumber(now) * 1000000 + 0.5)
end
-- integers as integer strings: tostring() keeps 14 digits, and a time in microseconds has 16
redis.call('ZREMRANGEBYSCORE', log_key, '-inf', string.format('%.0f', micros - 1000000))
local n = redis.call('ZCARD', log_key)
if n >= limit then
  local oldest = redis.call('ZRANGE', log_key, 0, 0, 'WITHSCORES')
  return {'refused', n, oldest[2], string.format('%.0f', micros)}
end
redis.call('ZADD', log_key, string.format('%.0f', micros), member)
redis.call('PEXPIRE', log_key, ttl_milliseconds)
return {'ok', n + 1}
