-- customer_update.lua: the profile fields of an account the admin API
-- sets: the birthday and the marketing opt-out.  Only an existing account
-- (a customer with a confirmed order) is changed.
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
-- KEYS[2] its referral codes    loyalty:{customer:ID}:codes   (set)
-- ARGV[1] the birthday: "MM-DD", '-' to remove it, '' to leave it
-- ARGV[2] marketing: '1' opted in, '0' opted out, '' to leave it
--
-- Returns the account as customer_get.lua does ({{}, {}} when there is
-- none).

local account, birthday, marketing = KEYS[1], ARGV[1], ARGV[2]

if redis.call('EXISTS', account) == 0 then
    return {{}, {}}
end

if birthday == '-' then
    redis.call('HDEL', account, 'bd')
elseif birthday ~= '' then
    redis.call('HSET', account, 'bd', birthday)
end

if marketing == '1' then
    redis.call('HDEL', account, 'mo')
elseif marketing == '0' then
    redis.call('HSET', account, 'mo', '1')
end

return {redis.call('HGETALL', account), redis.call('SMEMBERS', KEYS[2])}
