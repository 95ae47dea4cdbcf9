-- state_advance: one step of one user, all or nothing (service/state_store.py).
-- Checks whether the post id was seen (its timeline entry is its idempotency record), compares the
-- state version, then writes the state, the timeline entry, its fingerprint and any alert (its record,
-- its entry in the user's index of alerts, and its event pending relay) together, or nothing.
-- Every key is one user's: one Redis Cluster slot.
--
-- KEYS  state_key         the state record "<version>|<len(h)>|" h c meta
--       timeline_key      the timeline: compact entries (timeline_codec.py), oldest first
--       seen_key          4-byte fingerprints of the timeline's post ids, in the same order
--       post_index_key    the post index of the format before issue 17 (present: convert first)
--       pending_key       the user's events pending relay to the outbox
--       alerts_key        the user's alerts (hash: id -> record, 'index' -> "<created>:<id> ...")
-- ARGV  expected_version  the version the step was computed from
--       record_tail       the record without its version: "|<len(h)>|" h c meta
--       entry             the post's timeline entry; '' to write nothing: a probe of whether the post id was seen
--       timeline_length   entries shown; older ones stay only while inside the idempotency window
--       idempotency_ttl   seconds a post id answers retries
--       now               unix seconds
--       event             the alert event's JSON, '' for none
--       post_id           the post id
--       retention_seconds a user without posts for this long disappears, alerts included
--       index_entry       "<created unix seconds>:<alert id>", the event's entry in the user's index
--       alerts_per_user   alerts kept per user; past it the oldest go
--       fingerprint       the post id's 4-byte fingerprint
-- Returns {'ok', new version} | {'duplicate', the first entry of this post id}
--       | {'conflict', current version, current record ('' when none)}
--       | {'migrate'}: records of the format before issue 17 (or of an older replica), converted first by the caller
--       | {'unseen'}: a probe (entry ''), the post id not seen and the state at the expected version; nothing written
local state_key = KEYS[1]
local timeline_key = KEYS[2]
local seen_key = KEYS[3]
local post_index_key = KEYS[4]
local pending_key = KEYS[5]
local alerts_key = KEYS[6]
local expected_version = tonumber(ARGV[1])
local record_tail = ARGV[2]
local entry = ARGV[3]
local timeline_length = tonumber(ARGV[4])
local idempotency_ttl = tonumber(ARGV[5])
local now = tonumber(ARGV[6])
local event = ARGV[7]
local post_id = ARGV[8]
local retention_seconds = ARGV[9]
local index_entry = ARGV[10]
local alerts_per_user = tonumber(ARGV[11])
local fingerprint = ARGV[12]

local seen = redis.call('GET', seen_key) or ''
local n = redis.call('LLEN', timeline_key)
if #seen ~= 4 * n or redis.call('EXISTS', post_index_key) == 1 then return {'migrate'} end
-- an entry: tag u8, received u32 (big-endian unix seconds), len(post id) u8, post id, ...
local function received(e)
  local b1, b2, b3, b4 = string.byte(e, 2, 5)
  return ((b1 * 256 + b2) * 256 + b3) * 256 + b4
end
local at = 1
while true do
  local i = string.find(seen, fingerprint, at, true)
  if not i then break end
  if (i - 1) % 4 == 0 then
    local e = redis.call('LINDEX', timeline_key, (i - 1) / 4)
    if string.byte(e, 6) == #post_id and string.sub(e, 7, 6 + #post_id) == post_id
        and received(e) + idempotency_ttl > now then
      return {'duplicate', e}
    end
  end
  at = i + 1
end
local cur = redis.call('GET', state_key)
local v = 0
if cur then v = tonumber(string.match(cur, '^(%d+)|')) end
if v ~= expected_version then
  return {'conflict', tostring(v), cur or ''}
end
if entry == '' then return {'unseen'} end
local nv = v + 1
redis.call('SET', state_key, nv .. record_tail)
n = redis.call('RPUSH', timeline_key, entry)
-- entries leave from the head once past the timeline's length AND older than the idempotency window
local k = 0
while n - k > timeline_length and received(redis.call('LINDEX', timeline_key, k)) + idempotency_ttl <= now do
  k = k + 1
end
seen = seen .. fingerprint
if k > 0 then
  redis.call('LTRIM', timeline_key, k, -1)
  seen = string.sub(seen, 4 * k + 1)
end
redis.call('SET', seen_key, seen)
redis.call('EXPIRE', state_key, retention_seconds)
redis.call('EXPIRE', timeline_key, retention_seconds)
redis.call('EXPIRE', seen_key, retention_seconds)
if event ~= '' then
  redis.call('RPUSH', pending_key, event)
  redis.call('EXPIRE', pending_key, retention_seconds)
  -- the alert, with the step that raised it; the user's index of alerts drops those older than the
  -- retention and, past alerts_per_user of them, the oldest
  local cutoff = now - tonumber(retention_seconds)
  local kept, dropped = {}, {}
  for item in string.gmatch(redis.call('HGET', alerts_key, 'index') or '', '%S+') do
    local ts, id = string.match(item, '^([^:]+):(.+)$')
    if tonumber(ts) < cutoff then table.insert(dropped, id) else table.insert(kept, item) end
  end
  table.insert(kept, index_entry)
  while #kept > alerts_per_user do
    table.insert(dropped, string.match(table.remove(kept, 1), '^[^:]+:(.+)$'))
  end
  if #dropped > 0 then redis.call('HDEL', alerts_key, unpack(dropped)) end
  redis.call('HSET', alerts_key, string.match(index_entry, '^[^:]+:(.+)$'), event, 'index', table.concat(kept, ' '))
end
redis.call('EXPIRE', alerts_key, retention_seconds)
return {'ok', tostring(nv)}
