-- account_bonus.lua: points given to an account once, by an id: the two
-- sides of a referral.  The points are credited at once, as a lot, with
-- an event in the outbox; the worker's next visit sends it.  A customer
-- without an account gets one (enrolled now).
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
-- KEYS[2] its outbox            loyalty:{customer:ID}:out
-- KEYS[3] its ledger            loyalty:{customer:ID}:log
-- ARGV[1] the bonus id: field b:<id> marks it given
-- ARGV[2] points (0: only mark it, and set rr)
-- ARGV[3] now (unix seconds)
-- ARGV[4] points_expire: seconds a lot lives (0: never)
-- ARGV[5] the customer id (for the event)
-- ARGV[6] rr: the referral of this customer settled ('' to leave it)
-- ARGV[7] the event type ('' for none)
-- ARGV[8...] the event's own fields, name and value
--
-- Returns {'given', the points made available (less a shortfall paid)}
-- or {'replayed', 0}.

local account, outbox, log = KEYS[1], KEYS[2], KEYS[3]
local id, points, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local expire, customer, rr, kind = tonumber(ARGV[4]), ARGV[5], ARGV[6],
                                   ARGV[7]

local function int(n)
    return string.format('%d', n)
end

-- the ledger, newest first, at most 1000 entries, each
-- "seq\nat\ntype\npoints\npending\nref\ndetail\nactor" without empty
-- fields at the end; seq is one more than the newest entry's
local function ledger(...)
    local head = redis.call('LINDEX', log, 0)
    local e = {head and tonumber(string.match(head, '^%d+')) + 1 or 1, now}
    for i, v in ipairs({...}) do
        e[i + 2] = type(v) == 'number' and string.format('%d', v) or v
    end
    redis.call('LPUSH', log, table.concat(e, '\n'))
    redis.call('LTRIM', log, 0, 999)
end

-- set even by a replay: a worker may have died before it was
if rr ~= '' then
    redis.call('HSET', account, 'rr', rr)
end

if redis.call('HSETNX', account, 'b:' .. id, int(now)) == 0 then
    return {'replayed', 0}
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

if tonumber(ARGV[2]) > 0 then
    ledger('bonus', points, 0, id, string.match(id, '^[^:]*'))
end

if points > 0 then
    local lot = int(expire > 0 and now + expire or 0) .. ':' .. int(points)
    local lots = redis.call('HGET', account, 'L')
    local a = redis.call('HINCRBY', account, 'a', points)

    redis.call('HSET', account, 'L', lots and lots ~= '' and lots .. ',' .. lot
                                     or lot)
    redis.call('HINCRBY', account, 'lt', points)

    if kind ~= '' then
        local e = {'type', kind, 'id', kind .. ':' .. id, 'customer', customer,
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

return {'given', points > 0 and points or 0}
