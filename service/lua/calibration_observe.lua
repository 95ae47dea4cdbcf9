-- calibration_observe: a replica's judged posts and alarms since its last sync added to the recent alarm
-- rate's totals (service/calibration.py ``observe``), and the window it is read over: the totals' history
-- is kept here, shared, a point every `step` posts, so that a replica started, restarted or frozen reads
-- the rate at its first sync (kept in each process, it was unknown for the first ~20 000 posts of every
-- worker after a restart, and the alert on it cleared: an on-call audit). A call that adds nothing
-- writes nothing (an idle replica leaves Redis as it found it).
--
-- KEYS  observed_key  the totals (hash: 'n' judged posts, 'a' alarms)
--       history_key   the totals' history (sorted set: member '<posts>:<alarms>', score its posts)
-- ARGV  posts         judged posts to add
--       alarms        alarms to add
--       window        the posts the rate is read over
--       step          the posts between two points of the history
--       keep          the points kept
-- Returns {'ok', posts, alarms} | {'ok', posts, alarms, posts at the window's start, alarms then}
local observed_key = KEYS[1]
local history_key = KEYS[2]
local posts = tonumber(ARGV[1])
local alarms = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local step = tonumber(ARGV[4])
local keep = tonumber(ARGV[5])

if posts > 0 then
  redis.call('HINCRBY', observed_key, 'n', posts)
end
if alarms > 0 then
  redis.call('HINCRBY', observed_key, 'a', alarms)
end
local total_posts = tonumber(redis.call('HGET', observed_key, 'n') or '0')
local total_alarms = tonumber(redis.call('HGET', observed_key, 'a') or '0')
local last = redis.call('ZREVRANGE', history_key, 0, 0, 'WITHSCORES')
if last[2] and tonumber(last[2]) > total_posts and posts > 0 then
  redis.call('DEL', history_key)  -- the totals were reset (deleted or flushed): the window restarts
  last = {}
end
if posts > 0 and (last[2] == nil or total_posts - tonumber(last[2]) >= step) then
  redis.call('ZADD', history_key, total_posts, total_posts .. ':' .. total_alarms)
  redis.call('ZREMRANGEBYRANK', history_key, 0, -keep - 1)
end
local start = redis.call('ZREVRANGEBYSCORE', history_key, total_posts - window, '-inf', 'LIMIT', 0, 1)
if start[1] then
  local p0, a0 = string.match(start[1], '^(%d+):(%d+)$')
  return {'ok', total_posts, total_alarms, tonumber(p0), tonumber(a0)}
end
return {'ok', total_posts, total_alarms}
