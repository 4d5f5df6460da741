-- health.lua: the health endpoint's round trip through the script path.
-- KEYS[1]  the workers' heartbeat set (member host:pid, score unix time)
-- ARGV[1]  a nonce, returned as it is: proves that the reply taken from the
--          shared, pipelined connection belongs to the caller
-- ARGV[2]  the unix time from which a heartbeat counts as alive
-- Returns {nonce, number of live workers}.
return {ARGV[1], redis.call('ZCOUNT', KEYS[1], ARGV[2], '+inf')}
