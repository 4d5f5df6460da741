-- board_add.lua: points customers earned (or gave back by a return) on
-- the leaderboards of the month and of the year they were earned in.
-- Months are kept 400 days, years 800.
--
-- KEYS[1] the month's board     loyalty:{board}:YYYY-MM
-- KEYS[2] the year's board      loyalty:{board}:YYYY
-- ARGV    customer, points (negative for a return), customer, points...:
--         the same customer may come more than once

for i, key in ipairs(KEYS) do
    for j = 1, #ARGV - 1, 2 do
        local customer = ARGV[j]
        if tonumber(redis.call('ZINCRBY', key, ARGV[j + 1], customer)) <= 0
        then
            redis.call('ZREM', key, customer)
        end
    end
    redis.call('EXPIRE', key, i == 1 and 400 * 86400 or 800 * 86400)
end

return 'ok'
