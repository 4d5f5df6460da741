-- referral_code.lua: gives a customer a referral code.  A code belongs to
-- one customer for good; giving it to the same customer again changes
-- nothing.
--
-- KEYS[1] the code              loyalty:{referral:CODE}   hash
-- ARGV[1] the customer
-- ARGV[2] now (unix seconds)
--
-- The hash: owner the customer, created_at, T the times of the rewarded
-- referrals inside the limit's period "t,t,...", and c:<customer> per
-- referred customer settled: "rewarded", "self" or "limit".
--
-- Returns {'created' | 'exists', owner} or {'taken', owner}.

local code, customer, now = KEYS[1], ARGV[1], ARGV[2]

local owner = redis.call('HGET', code, 'owner')

if owner and owner ~= customer then
    return {'taken', owner}
end

if owner then
    return {'exists', owner}
end

redis.call('HSET', code, 'owner', customer, 'created_at', now)

return {'created', customer}
