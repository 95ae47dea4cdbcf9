-- calibration_store: write the live calibration's scales as a compare-and-set (service/calibration.py):
-- when another replica moved them meanwhile, theirs stand.
--
-- KEYS  scales_key  the scales (JSON)
-- ARGV  expected    the value read before the update ('' for none)
--       scales      the new value
-- Returns 'ok' | 'conflict'
local scales_key = KEYS[1]
local expected = ARGV[1]
local scales = ARGV[2]

if (redis.call('GET', scales_key) or '') ~= expected then return 'conflict' end
redis.call('SET', scales_key, scales)
return 'ok'
