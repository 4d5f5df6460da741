-- due_add.lua: asks loyalty-worker to visit a customer by a time.
--
-- The schedule holds one entry per customer: the earliest time anything of
-- theirs needs the worker.  An entry only moves earlier here, and any call
-- changes its score: the worker, after a visit, moves the entry on only if
-- its score is still the one it read (due_next.lua), so an order recorded
-- while the worker was visiting is never left without a visit.
--
-- KEYS[1] the schedule          loyalty:{due:S}   customer -> time
-- ARGV[1] customer
-- ARGV[2] the time the customer is due (unix seconds)

local key, customer = KEYS[1], ARGV[1]

local score = redis.call('ZSCORE', key, customer)

if not score or tonumber(ARGV[2]) < tonumber(score) then
    redis.call('ZADD', key, ARGV[2], customer)
else
    -- already due earlier: a second earlier still, to be seen changed.
    -- Whole seconds keep every score an integer, which a small schedule
    -- (a listpack) stores and compares as a number: a fraction there is a
    -- string, parsed again at each entry a change walks past.
    redis.call('ZINCRBY', key, '-1', customer)
end

return 1
