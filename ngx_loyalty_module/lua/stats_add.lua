-- stats_add.lua: the program's running totals, moved by the changes that
-- move them (loyalty-worker calls it just after the change's own script,
-- each nginx worker every 100 ms with what its changes added up to), so
-- that the metrics never need a scan of the accounts.
--
-- KEYS[1] the totals            loyalty:{stats}              hash
-- KEYS[2] the day's totals      loyalty:{stats}:day:YYYY-MM-DD (UTC)
-- KEYS[3] uses per coupon       loyalty:{stats}:coupons      code -> uses
-- ARGV[1] now (unix seconds)
-- ARGV[2...] field, change, field, change...: "coupon:CODE" moves the
--            coupon's uses; issued, redeemed, expired and returned also
--            move the day's totals (kept 400 days)
--
-- The totals: available and pending (points, all accounts), issued,
-- redeemed, expired, returned, adjusted (points), member_orders,
-- member_value, guest_orders, guest_value (minor units), customers (with
-- an order), repeat_customers (with a second), since (the first change).

local totals, day, coupons = KEYS[1], KEYS[2], KEYS[3]
local daily = {issued = true, redeemed = true, expired = true,
               returned = true}
local dated = false

redis.call('HSETNX', totals, 'since', ARGV[1])

for i = 2, #ARGV - 1, 2 do
    local field, change = ARGV[i], tonumber(ARGV[i + 1])

    if string.sub(field, 1, 7) == 'coupon:' then
        local code = string.sub(field, 8)
        if tonumber(redis.call('ZINCRBY', coupons, change, code)) <= 0 then
            redis.call('ZREM', coupons, code)
        end
    else
        redis.call('HINCRBY', totals, field, change)
        if daily[field] then
            redis.call('HINCRBY', day, field, change)
            dated = true
        end
    end
end

if dated then
    redis.call('EXPIRE', day, 400 * 86400)
end

return 'ok'
