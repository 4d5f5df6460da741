-- referral_settle.lua: decides, once per referred customer, whether a
-- referral earns its rewards; loyalty-worker calls it when the referred
-- customer's first order is credited, then pays both sides
-- (account_bonus.lua, idempotent).
--
-- Refused: a code nobody owns ('unknown'), the referrer's own code
-- ('self'), more than the limit of rewarded referrals of this code in the
-- period ('limit').  The decision is kept (c:<customer>) and answered
-- again to a second call.
--
-- KEYS[1] the code              loyalty:{referral:CODE}   (referral_code.lua)
-- ARGV[1] the referred customer
-- ARGV[2] now (unix seconds)
-- ARGV[3] the limit of rewarded referrals per period (0: none)
-- ARGV[4] the period in seconds
--
-- Returns {decision, referrer}: decision 'rewarded', 'self', 'limit' or
-- 'unknown' (referrer '' then).

local code, customer = KEYS[1], ARGV[1]
local now, limit, period = tonumber(ARGV[2]), tonumber(ARGV[3]),
                           tonumber(ARGV[4])

local owner = redis.call('HGET', code, 'owner')
if not owner then
    return {'unknown', ''}
end

local done = redis.call('HGET', code, 'c:' .. customer)
if done then
    return {done, owner}
end

local decision = 'rewarded'
local times = {}

for t in string.gmatch(redis.call('HGET', code, 'T') or '', '%d+') do
    if tonumber(t) > now - period then
        times[#times + 1] = t
    end
end

if owner == customer then
    decision = 'self'
elseif limit > 0 and #times >= limit then
    decision = 'limit'
else
    times[#times + 1] = string.format('%d', now)
end

redis.call('HSET', code, 'c:' .. customer, decision,
           'T', table.concat(times, ','))

return {decision, owner}
