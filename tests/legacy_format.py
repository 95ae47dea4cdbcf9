"""Records in the format before issue 17, written here the way that version wrote them: its advance
script, verbatim (service/state_store.py at the merge of the erasure hardening). Tests write users
with it, then check the current service reads, answers and converts them."""

# KEYS: state, timeline, post, post_index, pending events, alerts
# ARGV: expected_version, the record without its version, result, timeline_len, idem_ttl, now, event,
#       post_id, retention_seconds, index entry, alerts kept per user
OLD_ADVANCE = """
local prior = redis.call('GET', KEYS[3])
if prior then return {'duplicate', prior} end
local cur = redis.call('GET', KEYS[1])
local v = 0
if cur then v = tonumber(string.match(cur, '^(%d+)|')) end
if v ~= tonumber(ARGV[1]) then
  return {'conflict', tostring(v), cur or ''}
end
local nv = v + 1
redis.call('SET', KEYS[1], nv .. ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[6])
redis.call('ZADD', KEYS[4], tonumber(ARGV[6]) + tonumber(ARGV[5]), ARGV[8])
-- retention: a user without posts for ARGV[9] seconds disappears on their own, alerts included
redis.call('EXPIRE', KEYS[1], ARGV[9])
redis.call('EXPIRE', KEYS[2], ARGV[9])
redis.call('EXPIRE', KEYS[4], ARGV[9])
if ARGV[7] ~= '' then
  redis.call('RPUSH', KEYS[5], ARGV[7])
  redis.call('EXPIRE', KEYS[5], ARGV[9])
  -- the alert, with the step that raised it; the user's index of alerts drops those older than the
  -- retention and, past ARGV[11] of them, the oldest
  local cutoff = tonumber(ARGV[6]) - tonumber(ARGV[9])
  local kept, dropped = {}, {}
  for entry in string.gmatch(redis.call('HGET', KEYS[6], 'index') or '', '%S+') do
    local ts, id = string.match(entry, '^([^:]+):(.+)$')
    if tonumber(ts) < cutoff then table.insert(dropped, id) else table.insert(kept, entry) end
  end
  table.insert(kept, ARGV[10])
  while #kept > tonumber(ARGV[11]) do
    table.insert(dropped, string.match(table.remove(kept, 1), '^[^:]+:(.+)$'))
  end
  if #dropped > 0 then redis.call('HDEL', KEYS[6], unpack(dropped)) end
  redis.call('HSET', KEYS[6], string.match(ARGV[10], '^[^:]+:(.+)$'), ARGV[7], 'index', table.concat(kept, ' '))
end
redis.call('EXPIRE', KEYS[6], ARGV[9])
return {'ok', tostring(nv)}
"""
