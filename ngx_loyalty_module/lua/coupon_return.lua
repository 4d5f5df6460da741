-- coupon_return.lua: the use of a coupon by an order that was returned
-- whole is given back, if the coupon's definition says
-- "release_on_return": true.  Once per order: the order stays in the
-- orders hash, marked '!' before its customer, so a replayed confirmation
-- does not count the use again either.
--
-- KEYS[1] coupon hash           loyalty:{coupon:CODE}
-- KEYS[2] committed per customer ...:uses
-- KEYS[3] committed orders      ...:orders  order -> customer
-- ARGV[1] order id
--
-- Returns 'released', 'kept' (the coupon does not release), 'replayed'
-- or 'not_used' (no use of this order).

local coupon, uses, orders = KEYS[1], KEYS[2], KEYS[3]
local order = ARGV[1]

local customer = redis.call('HGET', orders, order)
if not customer then
    return 'not_used'
end
if string.sub(customer, 1, 1) == '!' then
    return 'replayed'
end

local def = redis.call('HGET', coupon, 'def') or ''
if not string.find(def, '"release_on_return":true', 1, true) then
    return 'kept'
end

redis.call('HSET', orders, order, '!' .. customer)
if tonumber(redis.call('HGET', coupon, 'used') or '0') > 0 then
    redis.call('HINCRBY', coupon, 'used', -1)
end
if customer ~= '' and redis.call('HINCRBY', uses, customer, -1) <= 0 then
    redis.call('HDEL', uses, customer)
end

return 'released'
