-- coupon_get.lua: a coupon with its usage and its live reservations, for
-- the admin API.  Changes nothing.
--
-- KEYS[1] coupon hash           loyalty:{coupon:CODE}
-- KEYS[2] reservations zset     ...:res
-- KEYS[3] reservation owners    ...:resc
-- ARGV[1] now (unix time)
-- ARGV[2] how many reservations to list at most
--
-- Returns {} when there is no such coupon, else
--   {definition, version, disabled, used, created_at, live reservations,
--    checkout, customer, expiry, checkout, customer, expiry, ...}

local coupon, res, resc = KEYS[1], KEYS[2], KEYS[3]
local now, limit = ARGV[1], tonumber(ARGV[2])

local c = redis.call('HMGET', coupon, 'def', 'version', 'disabled', 'used',
                     'created_at')
if not c[1] then
    return {}
end

local out = {c[1], c[2], c[3], c[4], c[5],
             redis.call('ZCOUNT', res, '(' .. now, '+inf')}

local live = redis.call('ZRANGEBYSCORE', res, '(' .. now, '+inf',
                        'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #live, 2 do
    out[#out + 1] = live[i]
    out[#out + 1] = redis.call('HGET', resc, live[i]) or ''
    out[#out + 1] = live[i + 1]
end

return out
