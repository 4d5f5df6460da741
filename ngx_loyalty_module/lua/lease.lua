-- lease.lua: a shard of the schedule is worked by one loyalty-worker at a
-- time.  A worker takes a free lease or renews its own while it works the
-- shard, and gives it back when done; a worker that dies loses it when it
-- expires.
--
-- KEYS[1] the lease             loyalty:{due:S}:lease
-- ARGV[1] the worker (host:pid)
-- ARGV[2] how long, in milliseconds; 0 gives the lease back
--
-- Returns 1 if the worker holds (or gave back) the lease, 0 if another
-- worker holds it.

local holder = redis.call('GET', KEYS[1])

if holder and holder ~= ARGV[1] then
    return 0
end

if ARGV[2] == '0' then
    redis.call('DEL', KEYS[1])
else
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end

return 1
