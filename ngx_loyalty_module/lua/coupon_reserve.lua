-- coupon_reserve.lua: checks a coupon's usage limits and reserves one use
-- for a checkout, atomically, so that concurrent checkouts can never spend
-- more uses than the coupon has.  The rules that need the cart (dates,
-- currency, eligible lines, minimum spend) are decided in C from the
-- definition; this script confirms that definition is still current.
--
-- KEYS[1] coupon hash           loyalty:{coupon:CODE}
-- KEYS[2] reservations zset     ...:res   checkout -> expiry (unix time)
-- KEYS[3] reservation owners    ...:resc  checkout -> customer
-- KEYS[4] live per customer     ...:resn  customer -> live reservations
-- KEYS[5] committed per customer ...:uses customer -> uses
-- ARGV[1] checkout id
-- ARGV[2] customer ('' for a guest)
-- ARGV[3] now (unix time)
-- ARGV[4] expiry of the reservation (unix time)
-- ARGV[5] the definition version the caller evaluated, '' for none
-- ARGV[6] 'reserve', 'check' (limits without reserving: shadow mode) or
--         'verify' (only confirm the version: the caller refuses anyway)
--
-- Returns one of
--   {'not_found'}
--   {'stale', version, definition}    evaluate this definition, call again
--   {'fresh', version}                after 'verify'
--   {'disabled' | 'exhausted' | 'customer_limit' | 'conflict', version}
--   {'valid', version}                reserved (or already, refreshed)

local coupon, res, resc, resn, uses = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local checkout, customer = ARGV[1], ARGV[2]
local now, expires = ARGV[3], ARGV[4]
local known, mode = ARGV[5], ARGV[6]

-- Times and counts go to Redis as strings (now and expires as they came):
-- a Lua number passed to redis.call is formatted with %.14g, slower.

local c = redis.call('HMGET', coupon, 'version', 'def', 'disabled',
                     'max_uses', 'per_customer', 'used')
local version = c[1]

if not version then
    return {'not_found'}
end

if version ~= known then
    return {'stale', version, c[2]}
end

if c[3] == '1' then
    return {'disabled', version}
end

if mode == 'verify' then
    return {'fresh', version}
end

-- forget reservations that expired, a bounded number per call
local expired = redis.call('ZRANGEBYSCORE', res, '-inf', now,
                           'LIMIT', '0', '100')
for _, id in ipairs(expired) do
    local owner = redis.call('HGET', resc, id)
    if owner and owner ~= '' then
        if redis.call('HINCRBY', resn, owner, '-1') <= 0 then
            redis.call('HDEL', resn, owner)
        end
    end
    redis.call('HDEL', resc, id)
    redis.call('ZREM', res, id)
end

-- a checkout that already holds a use keeps it (a retried request)
if redis.call('ZSCORE', res, checkout) then
    if redis.call('HGET', resc, checkout) ~= customer then
        return {'conflict', version}
    end
    if mode == 'reserve' then
        redis.call('ZADD', res, 'XX', expires, checkout)
    end
    return {'valid', version}
end

local max_uses = tonumber(c[4]) or 0
if max_uses > 0 then
    local taken = (tonumber(c[6]) or 0) + redis.call('ZCARD', res)
    if taken >= max_uses then
        return {'exhausted', version}
    end
end

local per_customer = tonumber(c[5]) or 0
if per_customer > 0 then
    if customer == '' then
        return {'customer_limit', version}
    end
    local taken = (tonumber(redis.call('HGET', uses, customer)) or 0)
                  + (tonumber(redis.call('HGET', resn, customer)) or 0)
    if taken >= per_customer then
        return {'customer_limit', version}
    end
end

if mode == 'reserve' then
    redis.call('ZADD', res, expires, checkout)
    redis.call('HSET', resc, checkout, customer)
    if customer ~= '' then
        redis.call('HINCRBY', resn, customer, '1')
    end
end

return {'valid', version}
