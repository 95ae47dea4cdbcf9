-- state_erase: delete every key of one user (service/state_store.py; service/erasure.py drives the
-- whole erasure). The post records of the format before issue 17 are found through the post index.
--
-- KEYS  state_key          the state record
--       timeline_key       the timeline
--       post_index_key     the post index of the format before issue 17
--       pending_key        events pending relay
--       user_events_key    refs of the user's relayed events
--       alerts_key         the user's alerts
--       relay_inflight_key the relay's in-flight mark
--       seen_key           the timeline's post id fingerprints
-- ARGV  post_prefix        the prefix of the user's old post records (keys.post(user, ''))
-- Returns {'ok', how many keys were deleted}
local state_key = KEYS[1]
local timeline_key = KEYS[2]
local post_index_key = KEYS[3]
local pending_key = KEYS[4]
local user_events_key = KEYS[5]
local alerts_key = KEYS[6]
local relay_inflight_key = KEYS[7]
local seen_key = KEYS[8]
local post_prefix = ARGV[1]

local n = 0
for _, id in ipairs(redis.call('ZRANGE', post_index_key, 0, -1)) do
  n = n + redis.call('DEL', post_prefix .. id)
end
redis.call('DEL', relay_inflight_key)
n = n + redis.call('DEL', state_key, timeline_key, post_index_key, pending_key, user_events_key, alerts_key, seen_key)
return {'ok', n}
