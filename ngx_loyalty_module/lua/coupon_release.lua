-- coupon_release.lua: gives back the use a checkout reserved, when the
-- shop did not accept the checkout.  Releasing twice changes nothing.
--
-- KEYS[1] reservations zset     loyalty:{coupon:CODE}:res
-- KEYS[2] reservation owners    ...:resc
-- KEYS[3] live per customer     ...:resn
-- ARGV[1] checkout id
--
-- Returns 1 when a reservation was released, 0 when there was none.

local res, resc, resn = KEYS[1], KEYS[2], KEYS[3]
local checkout = ARGV[1]

if redis.call('ZREM', res, checkout) == 0 then
    return 0
end

local owner = redis.call('HGET', resc, checkout)
redis.call('HDEL', resc, checkout)

if owner and owner ~= '' then
    if redis.call('HINCRBY', resn, owner, -1) <= 0 then
        redis.call('HDEL', resn, owner)
    end
end

return 1
