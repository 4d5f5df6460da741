-- board_add.lua: points a customer earned (or gave back by a return) on
-- the leaderboards of the month and of the year they were earned in.
-- Months are kept 400 days, years 800.
--
-- KEYS[1] the month's board     loyalty:{board}:YYYY-MM
-- KEYS[2] the year's board      loyalty:{board}:YYYY
-- ARGV[1] the customer
-- ARGV[2] points (negative for a return)

local customer, points = ARGV[1], tonumber(ARGV[2])

for i, key in ipairs(KEYS) do
    if tonumber(redis.call('ZINCRBY', key, points, customer)) <= 0 then
        redis.call('ZREM', key, customer)
    end
    redis.call('EXPIRE', key, i == 1 and 400 * 86400 or 800 * 86400)
end

return 'ok'
