-- account_bonus.lua: points given to an account once, by an id: the two
-- sides of a referral.  The points are credited at once, as a lot, with
-- an event in the outbox; the worker's next visit sends it.  A customer
-- without an account gets one (enrolled now).
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
-- KEYS[2] its outbox            loyalty:{customer:ID}:out
-- ARGV[1] the bonus id: field b:<id> marks it given
-- ARGV[2] points (0: only mark it, and set rr)
-- ARGV[3] now (unix seconds)
-- ARGV[4] points_expire: seconds a lot lives (0: never)
-- ARGV[5] the customer id (for the event)
-- ARGV[6] rr: the referral of this customer settled ('' to leave it)
-- ARGV[7] the event type ('' for none)
-- ARGV[8...] the event's own fields, name and value
--
-- Returns 'given' or 'replayed'.

local account, outbox = KEYS[1], KEYS[2]
local id, points, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local expire, customer, rr, type = tonumber(ARGV[4]), ARGV[5], ARGV[6],
                                   ARGV[7]

local function int(n)
    return string.format('%d', n)
end

-- set even by a replay: a worker may have died before it was
if rr ~= '' then
    redis.call('HSET', account, 'rr', rr)
end

if redis.call('HSETNX', account, 'b:' .. id, int(now)) == 0 then
    return 'replayed'
end

redis.call('HSETNX', account, 'e', int(now))

-- a shortfall left by a return is paid first
local debt = tonumber(redis.call('HGET', account, 'sf') or '0')
if points > 0 and debt > 0 then
    local pay = math.min(debt, points)
    if pay == debt then
        redis.call('HDEL', account, 'sf')
    else
        redis.call('HINCRBY', account, 'sf', -pay)
    end
    redis.call('HINCRBY', account, 'lt', pay)
    points = points - pay
end

if points > 0 then
    local lot = int(expire > 0 and now + expire or 0) .. ':' .. int(points)
    local lots = redis.call('HGET', account, 'L')
    local a = redis.call('HINCRBY', account, 'a', points)

    redis.call('HSET', account, 'L', lots and lots ~= '' and lots .. ',' .. lot
                                     or lot)
    redis.call('HINCRBY', account, 'lt', points)

    if type ~= '' then
        local e = {'type', type, 'id', type .. ':' .. id, 'customer', customer,
                   'at', int(now)}
        for i = 8, #ARGV do
            e[#e + 1] = ARGV[i]
        end
        e[#e + 1] = 'points'
        e[#e + 1] = int(points)
        e[#e + 1] = 'available'
        e[#e + 1] = int(a)
        redis.call('RPUSH', outbox, table.concat(e, '\n'))
    end
end

return 'given'
