-- board_top.lua: the members who earned most in a period, for the admin
-- API's leaderboard.  Changes nothing.
--
-- KEYS[1] the period's board    loyalty:{board}:YYYY-MM or :YYYY
-- ARGV[1] how many
--
-- Returns {customer, points, customer, points, ...}, the most first; ties
-- in the order of the customer ids, from the highest.

return redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1,
                  'WITHSCORES')
