-- calibration_judge: a reviewer's verdict on an alarm live calibration counted (service/calibration.py).
-- A real change (the user's pattern did change) is no false alarm: its alarm is counted as real
-- ('c:<bucket>', which learning takes off the bucket's alarms) and its excursion's crossings are taken
-- off the levels it rose through (one more 'd:<bucket>:<level>' at its peak); a later verdict that it
-- was not real puts both back. The alarm is looked up in the generations given; one a rotation or an
-- import dropped is gone with its counts, and nothing changes. Verdicts are ordered by the alert's
-- judgment number (1 for its first verdict, one more for each change): one not later than the verdict
-- the alarm was last set by changes nothing, so a retried verdict never counts twice, and two reviewers'
-- changes reaching this script in the other order than they were written leave the later one standing.
-- An alarm not sent yet (raised within a replica's sync) gets the verdict ahead: calibration_add applies
-- it when the alarm arrives (an automated reviewer's verdict, seconds after the webhook, was lost). A
-- verdict ahead is kept `ahead_seconds`, each on its own (its time in ahead_times_key): those older go
-- at every verdict put ahead, so the hash holds at most that long's verdicts on alarms that never come
-- (one TTL on the whole hash, renewed at every write, let it grow for as long as reviewers worked).
--
-- KEYS  ahead_key       verdicts on alarms not sent yet (hash: alert id -> '<real>:<judgment>')
--       ahead_times_key when each was put ahead (sorted set: alert id, scored by unix seconds)
--       generations...  from KEYS[generations_at]: a generation's alarms key, its counts key, the next ...
-- ARGV  alarm_id        the alert id the alarm was raised with
--       real            '1': a real change; '0': not
--       judgment        the verdict's judgment number on its alert
--       now             unix seconds
--       ahead_seconds   how long verdicts ahead are kept for an alarm that never arrives
-- Returns {'ok', 1 when the counts changed, 0 when the alarm already was so or was set by a later verdict}
--       | 'missing' (no generation given holds it: kept ahead)
local ahead_key = KEYS[1]
local ahead_times_key = KEYS[2]
local generations_at = 3
local alarm_id = ARGV[1]
local real = ARGV[2]
local judgment = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local ahead_seconds = tonumber(ARGV[5])

for i = generations_at, #KEYS, 2 do
  local entry = redis.call('HGET', KEYS[i], alarm_id)
  if entry then
    local bucket, level, was, set_by = string.match(entry, '^(%d+):(%-?%d+):([01]):?(%d*)$')
    if judgment <= (tonumber(set_by) or 0) then
      return {'ok', 0}
    end
    redis.call('HSET', KEYS[i], alarm_id, bucket .. ':' .. level .. ':' .. real .. ':' .. judgment)
    if was == real then
      return {'ok', 0}
    end
    local delta = 1
    if real == '0' then delta = -1 end
    redis.call('HINCRBY', KEYS[i + 1], 'c:' .. bucket, delta)
    if tonumber(level) >= 0 then
      redis.call('HINCRBY', KEYS[i + 1], 'd:' .. bucket .. ':' .. level, delta)
    end
    return {'ok', 1}
  end
end
local expired = redis.call('ZRANGEBYSCORE', ahead_times_key, '-inf', now - ahead_seconds, 'LIMIT', 0, 1000)
if #expired > 0 then
  redis.call('HDEL', ahead_key, unpack(expired))
  redis.call('ZREM', ahead_times_key, unpack(expired))
end
local ahead = redis.call('HGET', ahead_key, alarm_id)
if not ahead or judgment > tonumber(string.match(ahead, ':(%d+)$')) then
  redis.call('HSET', ahead_key, alarm_id, real .. ':' .. judgment)
  redis.call('ZADD', ahead_times_key, now, alarm_id)
end
return 'missing'
