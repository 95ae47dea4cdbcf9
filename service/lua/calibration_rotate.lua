-- calibration_rotate: the live calibration's counts of the generation in use are full: move on to the
-- next generation (service/calibration.py). Only the first replica to see it full moves on; the
-- oldest counts go (bounded memory), and the alarms they held with them.
--
-- KEYS  meta_key            the calibration's meta hash ('gen': the generation in use)
--       previous_counts_key the counts of the generation before it (deleted)
--       previous_alarms_key the alarms of the generation before it (deleted)
-- ARGV  generation          the generation the caller saw in use
-- Returns {'ok', the generation in use now} | {'conflict', the generation in use now} (another replica moved on first)
local meta_key = KEYS[1]
local previous_counts_key = KEYS[2]
local previous_alarms_key = KEYS[3]
local generation = tonumber(ARGV[1])

if tonumber(redis.call('HGET', meta_key, 'gen') or '0') ~= generation then
  return {'conflict', redis.call('HGET', meta_key, 'gen') or '0'}
end
redis.call('HSET', meta_key, 'gen', generation + 1)
redis.call('DEL', previous_counts_key, previous_alarms_key)
return {'ok', redis.call('HGET', meta_key, 'gen')}
