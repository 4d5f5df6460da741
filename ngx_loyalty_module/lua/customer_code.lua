-- customer_code.lua: notes on the account's side a referral code given to
-- the customer (referral_code.lua is the code's side), for the admin
-- API's account.  Noting it again changes nothing.
--
-- KEYS[1] the customer's codes  loyalty:{customer:ID}:codes   (set)
-- ARGV[1] the code
--
-- Returns 1.

redis.call('SADD', KEYS[1], ARGV[1])

return 1
