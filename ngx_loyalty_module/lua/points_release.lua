-- points_release.lua: gives back the points a checkout held, when the shop
-- did not accept the checkout.  Releasing twice changes nothing.
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
-- KEYS[2] holds zset            ...:holds
-- KEYS[3] held per checkout     ...:holdv
-- ARGV[1] checkout id
--
-- Returns the points released (0 when nothing was held).

local account, holds, holdv = KEYS[1], KEYS[2], KEYS[3]
local checkout = ARGV[1]

local v = tonumber(redis.call('HGET', holdv, checkout))
if not v then
    return 0
end

redis.call('HDEL', holdv, checkout)
redis.call('ZREM', holds, checkout)
if v > 0 then
    -- never -0, which HINCRBY refuses
    redis.call('HINCRBY', account, 'h', -v)
end

return v
