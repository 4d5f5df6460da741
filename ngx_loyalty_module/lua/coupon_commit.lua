-- coupon_commit.lua: turns a checkout's reservation into a use of the
-- coupon, once per order.  A confirmed order whose reservation expired or
-- never existed still counts its use: the shop did apply the coupon.
--
-- KEYS[1] coupon hash           loyalty:{coupon:CODE}
-- KEYS[2] reservations zset     ...:res
-- KEYS[3] reservation owners    ...:resc
-- KEYS[4] live per customer     ...:resn
-- KEYS[5] committed per customer ...:uses
-- KEYS[6] committed orders      ...:orders  order -> customer
-- ARGV[1] checkout id ('' when unknown)
-- ARGV[2] order id
-- ARGV[3] customer ('' for a guest)
--
-- Returns {'committed', 1 if it had a reservation else 0}, {'replayed'}
-- or {'not_found'}.

local coupon, res, resc, resn, uses, orders =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local checkout, order, customer = ARGV[1], ARGV[2], ARGV[3]

-- counts go to Redis as strings: a Lua number is formatted with %.14g

if redis.call('EXISTS', coupon) == 0 then
    return {'not_found'}
end

if redis.call('HSETNX', orders, order, customer) == 0 then
    return {'replayed'}
end

local reserved = 0
if checkout ~= '' and redis.call('ZREM', res, checkout) == 1 then
    reserved = 1
    local owner = redis.call('HGET', resc, checkout)
    redis.call('HDEL', resc, checkout)
    if owner and owner ~= '' then
        if redis.call('HINCRBY', resn, owner, '-1') <= 0 then
            redis.call('HDEL', resn, owner)
        end
    end
end

redis.call('HINCRBY', coupon, 'used', '1')
if customer ~= '' then
    redis.call('HINCRBY', uses, customer, '1')
end

return {'committed', reserved}
