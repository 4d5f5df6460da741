-- points_hold.lua: holds points of a customer's available balance for a
-- checkout, atomically, so that two checkouts can never spend the same
-- points.  A hold expires by itself; the order confirmation spends it.
--
-- KEYS[1] the account hash      loyalty:{customer:ID}  (a available,
--                               h held; see order_record.lua)
-- KEYS[2] holds zset            ...:holds  checkout -> expiry
-- KEYS[3] held per checkout     ...:holdv  checkout -> points
-- ARGV[1] checkout id
-- ARGV[2] points to hold (> 0)
-- ARGV[3] now (unix time)
-- ARGV[4] expiry of the hold (unix time)
-- ARGV[5] 'hold', or 'check' (shadow mode: nothing is held)
--
-- A checkout holds what its latest request asked for: a retry replaces
-- the earlier hold, and a retry that cannot be held drops it.
--
-- Returns {'held', points still free} or {'insufficient', points free}.

local account, holds, holdv = KEYS[1], KEYS[2], KEYS[3]
local checkout, points = ARGV[1], tonumber(ARGV[2])
local mode = ARGV[5]

-- Times and counts go to Redis as the strings they came as, or formatted
-- with %d: a Lua number passed as is is formatted with %.14g, slower.

-- forget holds that expired, a bounded number per call
local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', ARGV[3],
                           'LIMIT', '0', '100')
for _, id in ipairs(expired) do
    local v = tonumber(redis.call('HGET', holdv, id)) or 0
    if v > 0 then
        -- never -0, which HINCRBY refuses
        redis.call('HINCRBY', account, 'h', string.format('%d', -v))
    end
    redis.call('HDEL', holdv, id)
    redis.call('ZREM', holds, id)
end

local a = redis.call('HMGET', account, 'a', 'h')
local previous = tonumber(redis.call('HGET', holdv, checkout)) or 0
local free = (tonumber(a[1]) or 0) - (tonumber(a[2]) or 0) + previous

if points > free then
    if previous > 0 and mode == 'hold' then
        redis.call('HDEL', holdv, checkout)
        redis.call('ZREM', holds, checkout)
        redis.call('HINCRBY', account, 'h', string.format('%d', -previous))
    end
    return {'insufficient', free}
end

if mode == 'hold' then
    redis.call('HSET', holdv, checkout, ARGV[2])
    redis.call('HINCRBY', account, 'h', string.format('%d', points - previous))
    redis.call('ZADD', holds, ARGV[4], checkout)
end

return {'held', free - points}
