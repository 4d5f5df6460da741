-- stats_get.lua: the program's totals for the admin API and /metrics.
-- Changes nothing.
--
-- KEYS[1] the totals            loyalty:{stats}
-- KEYS[2] uses per coupon       loyalty:{stats}:coupons
-- KEYS[3...] days, newest first loyalty:{stats}:day:YYYY-MM-DD
-- ARGV[1] how many coupons (the most used first)
--
-- Returns {totals as HGETALL, {code, uses, ...}, {issued, redeemed,
-- expired, returned} of each day (false for none)}.

local out = {redis.call('HGETALL', KEYS[1]),
             redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1,
                        'WITHSCORES')}

for i = 3, #KEYS do
    out[#out + 1] = redis.call('HMGET', KEYS[i], 'issued', 'redeemed',
                               'expired', 'returned')
end

return out
