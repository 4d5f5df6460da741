-- metrics_get.lua: what /metrics reads from Redis, in one round trip.
-- Changes nothing.
--
-- KEYS[1] the program's totals         loyalty:{stats}      (stats_add.lua)
-- KEYS[2] what loyalty-worker counts   loyalty:{stats}:ops
--
-- Returns {totals as HGETALL, counts as HGETALL}.

return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
