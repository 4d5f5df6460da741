-- order_claim.lua: an order id belongs to one customer.  Order ids are
-- the shop's, unique across customers; an account only sees its own
-- orders, so this registry is what makes the same id confirmed by another
-- customer a conflict rather than a second accrual.
--
-- KEYS[1] the registry shard    loyalty:{orders:S}  order -> customer
-- ARGV[1] order id
-- ARGV[2] customer ('' for a guest)
--
-- Returns {'claimed', 1} (new), {'claimed', 0} (already this
-- customer's) or {'conflict', the customer that has it}.

local owner = redis.call('HGET', KEYS[1], ARGV[1])

if owner and owner ~= ARGV[2] then
    return {'conflict', owner}
end

if owner then
    return {'claimed', 0}
end

redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])

return {'claimed', 1}
