-- customer_enrol.lua: an explicit sign-up.  A customer is otherwise
-- enrolled by a first confirmed order or a first bonus.  Enrolling again
-- changes nothing.
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
-- ARGV[1] now (unix seconds)
--
-- Returns {'enrolled' | 'member', enrolled at}.

local account, now = KEYS[1], ARGV[1]

if redis.call('HSETNX', account, 'e', now) == 1 then
    return {'enrolled', now}
end

return {'member', redis.call('HGET', account, 'e')}
