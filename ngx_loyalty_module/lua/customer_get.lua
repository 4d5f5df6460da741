-- customer_get.lua: a customer's account, for the admin API.  Changes
-- nothing.
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
-- KEYS[2] its referral codes    loyalty:{customer:ID}:codes   (set)
--
-- Returns {the hash as HGETALL gives it, the codes}: {{}, {}} when there
-- is no account; see order_record.lua for its fields.

return {redis.call('HGETALL', KEYS[1]), redis.call('SMEMBERS', KEYS[2])}
