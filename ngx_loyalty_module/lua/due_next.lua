-- due_next.lua: after the visits of a batch, moves each customer's entry
-- in the schedule to the next time they need the worker, or removes it;
-- unless it changed since the worker read it (due_add.lua touched it:
-- something new came).  One call for the batch, whose customers share
-- the schedule's shard.
--
-- KEYS[1] the schedule          loyalty:{due:S}   customer -> time
-- ARGV    customer, the score the worker read, the next time ('' for
--         never); the three again for each customer of the batch
--
-- Returns how many entries moved (the others changed meanwhile).

local key, moved = KEYS[1], 0

for i = 1, #ARGV - 2, 3 do
    local customer, seen, next = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local score = redis.call('ZSCORE', key, customer)

    if score and tonumber(score) == tonumber(seen) then
        if next == '' then
            redis.call('ZREM', key, customer)
        else
            redis.call('ZADD', key, next, customer)
        end
        moved = moved + 1
    end
end

return moved
