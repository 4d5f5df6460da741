-- coupon_create.lua: creates a coupon, idempotently: the same definition
-- again is accepted and changes nothing; another definition under an
-- existing code is a conflict and changes nothing.
--
-- KEYS[1] coupon hash           loyalty:{coupon:CODE}
-- ARGV[1] definition, canonical JSON (the C side writes it)
-- ARGV[2] max_uses (0 for unlimited)
-- ARGV[3] per_customer (0 for unlimited)
-- ARGV[4] now (unix time)
--
-- Returns {'created' | 'exists' | 'conflict', version, disabled}; the
-- version is opaque, a number that grows with every change.

local coupon = KEYS[1]
local def = ARGV[1]

local current = redis.call('HMGET', coupon, 'def', 'version', 'disabled')
if current[1] then
    if current[1] == def then
        return {'exists', current[2], current[3]}
    end
    return {'conflict', current[2], current[3]}
end

-- a version never seen for this code before, even if the coupon is
-- deleted and created again: workers compare versions to trust their
-- cache.  Milliseconds: 13 digits, exact in Lua's numbers.
local t = redis.call('TIME')
local version = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))

redis.call('HSET', coupon, 'def', def, 'version', version, 'disabled', '0',
           'max_uses', ARGV[2], 'per_customer', ARGV[3], 'used', '0',
           'created_at', ARGV[4])

return {'created', version, '0'}
