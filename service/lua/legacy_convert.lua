-- legacy_convert: rewrite one user's records of the format before issue 17 in the compact one
-- (service/legacy_records.py), only if the state version has not moved since they were read.
-- Old keys are deleted; the new timeline and fingerprints keep the old timeline's TTL.
--
-- KEYS  state_key          the state record (only its version is read)
--       timeline_key       the timeline (rewritten)
--       seen_key           the timeline's post id fingerprints (rewritten)
--       post_index_key     the old post index (deleted)
--       record keys...     from KEYS[record_keys_at] on: the old post records (deleted)
-- ARGV  version            the state version the conversion was computed from
--       retention_seconds  the TTL when the old timeline had none
--       seen               the new fingerprints
--       entries...         from ARGV[entries_at] on: the new timeline entries, oldest first
-- Returns 'ok' | 'conflict' (a write came between: nothing done)
local state_key = KEYS[1]
local timeline_key = KEYS[2]
local seen_key = KEYS[3]
local post_index_key = KEYS[4]
local record_keys_at = 5
local version = tonumber(ARGV[1])
local retention_seconds = tonumber(ARGV[2])
local seen = ARGV[3]
local entries_at = 4

local cur = redis.call('GET', state_key)
local v = 0
if cur then v = tonumber(string.match(cur, '^(%d+)|')) end
if v ~= version then return 'conflict' end
local ttl = redis.call('PTTL', timeline_key)
if ttl <= 0 then ttl = retention_seconds * 1000 end
redis.call('DEL', timeline_key, seen_key, post_index_key)
-- unpack in chunks: Lua's stack holds a few thousand values at most
for i = record_keys_at, #KEYS, 1000 do redis.call('DEL', unpack(KEYS, i, math.min(i + 999, #KEYS))) end
if #ARGV >= entries_at then
  for i = entries_at, #ARGV, 1000 do
    redis.call('RPUSH', timeline_key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  redis.call('SET', seen_key, seen)
  redis.call('PEXPIRE', timeline_key, ttl)
  redis.call('PEXPIRE', seen_key, ttl)
end
return 'ok'
