-- calibration_add: a replica sends the live calibration's counts it gathered since its last sync
-- (service/calibration.py) to the generation it counted them in, while that generation is kept: the one
-- in use or the one before it. Counts of a generation a rotation dropped, or an import replaced (an
-- import renumbers its counts above every generation in use), are not written: the key would come back
-- without a TTL, and its counts be read again once the generations in use reached its number. With the
-- counts go the alarms they hold, by alert id (what a reviewer's verdict takes out again:
-- calibration_judge); an alarm already recorded keeps its entry (a verdict may have marked it), and a
-- verdict given before the alarm arrived (kept ahead by calibration_judge) is applied to it now.
--
-- KEYS  meta_key        the calibration's meta hash ('gen': the generation in use)
--       counts_key      the counts of the caller's generation
--       alarms_key      the alarms of the caller's generation
--       ahead_key       verdicts on alarms not sent yet (hash: alert id -> '<real>:<judgment>')
--       ahead_times_key when each was put ahead (sorted set)
-- ARGV  generation      the caller's generation (the one counts_key holds)
--       counter_values  how many of the values after it are counters (a field, its increment, ...)
--       counters...     from ARGV[counters_at] on: the counters, then an alarm's id, its entry, the next ...
-- Returns {'ok', the generation in use} | {'stale', the generation in use} (nothing written)
local meta_key = KEYS[1]
local counts_key = KEYS[2]
local alarms_key = KEYS[3]
local ahead_key = KEYS[4]
local ahead_times_key = KEYS[5]
local generation = tonumber(ARGV[1])
local counter_values = tonumber(ARGV[2])
local counters_at = 3

local in_use = tonumber(redis.call('HGET', meta_key, 'gen') or '0')
if generation ~= in_use and generation ~= in_use - 1 then
  return {'stale', in_use}
end
local alarms_at = counters_at + counter_values
for i = counters_at, alarms_at - 1, 2 do
  redis.call('HINCRBY', counts_key, ARGV[i], ARGV[i + 1])
end
for i = alarms_at, #ARGV, 2 do
  local alarm_id, entry = ARGV[i], ARGV[i + 1]
  local added = redis.call('HSETNX', alarms_key, alarm_id, entry)
  local ahead = redis.call('HGET', ahead_key, alarm_id)
  if ahead then
    redis.call('HDEL', ahead_key, alarm_id)
    redis.call('ZREM', ahead_times_key, alarm_id)
    if added == 1 then
      local real, judgment = string.match(ahead, '^([01]):(%d+)$')
      local bucket, level = string.match(entry, '^(%d+):(%-?%d+)')
      redis.call('HSET', alarms_key, alarm_id, bucket .. ':' .. level .. ':' .. real .. ':' .. judgment)
      if real == '1' then
        redis.call('HINCRBY', counts_key, 'c:' .. bucket, 1)
        if tonumber(level) >= 0 then
          redis.call('HINCRBY', counts_key, 'd:' .. bucket .. ':' .. level, 1)
        end
      end
    end
  end
end
return {'ok', in_use}
