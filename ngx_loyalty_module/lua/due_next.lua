-- due_next.lua: after a visit, moves a customer's entry in the schedule to
-- the next time they need the worker, or removes it; unless it changed
-- since the worker read it (due_add.lua touched it: something new came).
--
-- KEYS[1] the schedule          loyalty:{due:S}   customer -> time
-- ARGV[1] customer
-- ARGV[2] the score the worker read
-- ARGV[3] the next time ('' for never)
--
-- Returns 1 if moved, 0 if the entry changed meanwhile.

local key, customer, seen, next = KEYS[1], ARGV[1], ARGV[2], ARGV[3]

local score = redis.call('ZSCORE', key, customer)

if score == false or tonumber(score) ~= tonumber(seen) then
    return 0
end

if next == '' then
    redis.call('ZREM', key, customer)
else
    redis.call('ZADD', key, next, customer)
end

return 1
