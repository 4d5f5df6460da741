-- customer_get.lua: a customer's account, for the admin API.  Changes
-- nothing.
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
--
-- Returns the hash as HGETALL does ({} when there is no account); see
-- order_record.lua for its fields.

return redis.call('HGETALL', KEYS[1])
