-- coupon_state.lua: disables or enables a coupon.  Any change bumps the
-- version, so that every nginx worker's cached definition is refreshed
-- at its next use.  Setting the state it already has changes nothing.
--
-- KEYS[1] coupon hash           loyalty:{coupon:CODE}
-- ARGV[1] '1' to disable, '0' to enable
--
-- Returns {'not_found'} or {'ok', version, 1 if changed else 0}.

local coupon, disabled = KEYS[1], ARGV[1]

local current = redis.call('HMGET', coupon, 'version', 'disabled')
if not current[1] then
    return {'not_found'}
end

if current[2] == disabled then
    return {'ok', current[1], 0}
end

redis.call('HSET', coupon, 'disabled', disabled)
local version = redis.call('HINCRBY', coupon, 'version', 1)

return {'ok', string.format('%d', version), 1}
