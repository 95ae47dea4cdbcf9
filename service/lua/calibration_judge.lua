-- calibration_judge: a reviewer's verdict on an alarm live calibration counted (service/calibration.py).
-- A real change (the user's pattern did change) is no false alarm: its alarm is counted as real
-- ('c:<bucket>', which learning takes off the bucket's alarms) and its excursion's crossings are taken
-- off the levels it rose through (one more 'd:<bucket>:<level>' at its peak); a later verdict that it
-- was not real puts both back. The alarm is looked up in the generations given; one a rotation or an
-- import dropped is gone with its counts, and nothing changes. Setting what the alarm already is
-- changes nothing, so a retried verdict never counts twice; a verdict older than the one the alarm
-- was last set by changes nothing either (two reviewers' verdicts, written in one order, may reach
-- this script in the other).
--
-- KEYS  generations...  from KEYS[generations_at]: a generation's alarms key, its counts key, the next ...
-- ARGV  alarm_id        the alert id the alarm was raised with
--       real            '1': a real change; '0': not
--       judged_at       the verdict's resolved_at (ISO 8601, UTC, fixed width: ordered as strings)
-- Returns {'ok', 1 when the counts changed, 0 when the alarm already was so or was set by a later verdict}
--       | 'missing' (no generation given holds it)
local generations_at = 1
local alarm_id = ARGV[1]
local real = ARGV[2]
local judged_at = ARGV[3]

for i = generations_at, #KEYS, 2 do
  local entry = redis.call('HGET', KEYS[i], alarm_id)
  if entry then
    local bucket, level, was, set_at = string.match(entry, '^(%d+):(%-?%d+):([01]):?(.*)$')
    if judged_at <= set_at then
      return {'ok', 0}
    end
    local judged = bucket .. ':' .. level .. ':' .. real .. ':' .. judged_at
    if was == real then
      redis.call('HSET', KEYS[i], alarm_id, judged)
      return {'ok', 0}
    end
    local delta = 1
    if real == '0' then delta = -1 end
    redis.call('HINCRBY', KEYS[i + 1], 'c:' .. bucket, delta)
    if tonumber(level) >= 0 then
      redis.call('HINCRBY', KEYS[i + 1], 'd:' .. bucket .. ':' .. level, delta)
    end
    redis.call('HSET', KEYS[i], alarm_id, judged)
    return {'ok', 1}
  end
end
return 'missing'
