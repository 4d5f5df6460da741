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
-- Returns {'created' | 'exists' | 'conflict', version}.

local coupon = KEYS[1]
local def = ARGV[1]

local current = redis.call('HMGET', coupon, 'def', 'version')
if current[1] then
    if current[1] == def then
        return {'exists', current[2]}
    end
    return {'conflict', current[2]}
end

redis.call('HSET', coupon, 'def', def, 'version', '1', 'disabled', '0',
           'max_uses', ARGV[2], 'per_customer', ARGV[3], 'used', '0',
           'created_at', ARGV[4])

return {'created', '1'}
