-- order_owner.lua: the customer an order id belongs to (order_claim.lua
-- writes it).  Changes nothing.
--
-- KEYS[1] the registry shard    loyalty:{orders:S}  order -> customer
-- ARGV[1] order id
--
-- Returns the customer ('' for a guest's order) or nil when the order was
-- never confirmed.

return redis.call('HGET', KEYS[1], ARGV[1])
