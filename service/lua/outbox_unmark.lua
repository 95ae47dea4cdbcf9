-- outbox_unmark: the sweeper unmarks a user it relayed (service/outbox.py), only if no request
-- marked the user again since it read the mark.
--
-- KEYS  marks_key   the marked users (sorted set scored by when they were marked)
-- ARGV  user_id     the user
--       score_seen  the mark's score as the sweeper read it (repr of the float: exact)
-- Returns 'ok' (unmarked) | 'conflict' (marked again meanwhile, or gone: left as it is)
local marks_key = KEYS[1]
local user_id = ARGV[1]
local score_seen = ARGV[2]

local score = redis.call('ZSCORE', marks_key, user_id)
if score and tonumber(score) == tonumber(score_seen) then
  redis.call('ZREM', marks_key, user_id)
  return 'ok'
end
return 'conflict'
