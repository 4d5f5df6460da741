-- account_grant.lua: points given or taken by the admin API, once per
-- client id: a manual adjustment (signed, with a reason and an actor) or
-- an engagement bonus (a review, a sign-up...) within its cap.
--
--   given     a lot that expires points_expire later, after paying a
--             shortfall left by a return (sf); the customer is enrolled
--   taken     from the newest lots first; refused ('insufficient') when
--             the balance has less, and then nothing is kept: a retry may
--             succeed later
--   capped    the type's cap is reached in its period: nothing given, the
--             id kept so that a retry answers the same
--
-- The id's answer is kept 30 days (KEYS[4], KEYS[5]); the same id with
-- other content is a conflict and changes nothing.  The change goes to the
-- ledger and, as an event, to the outbox.
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
-- KEYS[2] its outbox            ...:out
-- KEYS[3] its ledger            ...:log
-- KEYS[4] ids given, by time    ...:ids   (sorted set, id -> time)
-- KEYS[5] their answers         ...:idv   (hash, id -> answer)
-- ARGV[1]  the id, with its kind ("adjustment:ID", "event:TYPE:ID")
-- ARGV[2]  fingerprint of the request's content
-- ARGV[3]  points (signed)
-- ARGV[4]  now (unix seconds)
-- ARGV[5]  points_expire: seconds a lot lives (0: never)
-- ARGV[6]  the customer id (for the event)
-- ARGV[7]  the ledger's type: 'adjustment' or 'bonus'
-- ARGV[8]  the ledger's ref (the client's id)
-- ARGV[9]  the ledger's detail (the reason, or the event type)
-- ARGV[10] the actor ('' for none)
-- ARGV[11] the cap: at most this many in the period (0: none)
-- ARGV[12] the cap's period in seconds
-- ARGV[13] the event type for the outbox
--
-- Returns {'new' | 'replayed', answer, points, available, pending, used}:
-- answer 'granted', 'capped' or 'insufficient', points the change made
-- to the balance, used how many of the type the period holds now; or
-- {'conflict'}.

local account, outbox, log, ids, idv = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
                                       KEYS[5]
local id, fingerprint, points = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now, expire, customer = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local kind, ref, detail, actor = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local cap, period, event = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local keep = 30 * 86400

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

local function balances()
    local b = redis.call('HMGET', account, 'a', 'p')
    return tonumber(b[1] or '0'), tonumber(b[2] or '0')
end

local done = redis.call('HGET', idv, id)
if done then
    local f, got, change, used = string.match(done, '^(.*)|(%a+)|(-?%d+)|(%d+)$')
    if f ~= fingerprint then
        return {'conflict'}
    end
    local a, p = balances()
    return {'replayed', got, tonumber(change), a, p, tonumber(used)}
end

-- ids older than 30 days are forgotten, a few at each call
local old = redis.call('ZRANGEBYSCORE', ids, '-inf', now - keep,
                       'LIMIT', 0, 10)
if #old > 0 then
    redis.call('ZREM', ids, unpack(old))
    redis.call('HDEL', idv, unpack(old))
end

local function remember(got, change, used)
    redis.call('ZADD', ids, now, id)
    redis.call('HSET', idv, id, table.concat({fingerprint, got, int(change),
                                              int(used)}, '|'))
end

-- the cap: the times of the type's grants still inside its period
local used, times = 0, {}
if cap > 0 then
    for t in string.gmatch(redis.call('HGET', account, 'c:' .. detail) or '',
                           '%d+') do
        if tonumber(t) > now - period then
            times[#times + 1] = t
        end
    end
    used = #times
    if used >= cap then
        remember('capped', 0, used)
        local a, p = balances()
        return {'new', 'capped', 0, a, p, used}
    end
    times[#times + 1] = int(now)
    used = used + 1
end

local a = tonumber(redis.call('HGET', account, 'a') or '0')
local lots = {}
for expiry, left in string.gmatch(redis.call('HGET', account, 'L') or '',
                                  '(%d+):(%d+)') do
    lots[#lots + 1] = {expiry, tonumber(left)}
end

local change = points

if points < 0 then
    if a < -points then
        local _, p = balances()
        return {'new', 'insufficient', 0, a, p, used}
    end
    local need = -points
    for i = #lots, 1, -1 do
        local take = math.min(need, lots[i][2])
        lots[i][2] = lots[i][2] - take
        need = need - take
    end
else
    redis.call('HSETNX', account, 'e', int(now))
    redis.call('HINCRBY', account, 'lt', points)

    -- a shortfall left by a return is paid first
    local debt = tonumber(redis.call('HGET', account, 'sf') or '0')
    local pay = math.min(debt, points)
    if pay == debt and debt > 0 then
        redis.call('HDEL', account, 'sf')
    elseif pay > 0 then
        redis.call('HINCRBY', account, 'sf', -pay)
    end
    change = points - pay
    if change > 0 then
        lots[#lots + 1] = {int(expire > 0 and now + expire or 0), change}
    end
end

a = a + change

local parts = {}
for _, lot in ipairs(lots) do
    if lot[2] > 0 then
        parts[#parts + 1] = lot[1] .. ':' .. int(lot[2])
    end
end
if #parts > 0 then
    redis.call('HSET', account, 'L', table.concat(parts, ','))
else
    redis.call('HDEL', account, 'L')
end
redis.call('HSET', account, 'a', int(a))
if cap > 0 then
    redis.call('HSET', account, 'c:' .. detail, table.concat(times, ','))
end

remember('granted', change, used)
ledger(kind, change, 0, ref, detail, actor)

local e = {'type', event, 'id', event .. ':' .. customer .. ':' .. id,
           'customer', customer, 'at', int(now), 'points', int(change),
           'available', int(a)}
if kind == 'adjustment' then
    e[#e + 1] = 'reason'
    e[#e + 1] = detail
    e[#e + 1] = 'adjustment'
    e[#e + 1] = ref
else
    e[#e + 1] = 'event_type'
    e[#e + 1] = detail
    e[#e + 1] = 'event'
    e[#e + 1] = ref
end
redis.call('RPUSH', outbox, table.concat(e, '\n'))

local _, p = balances()
return {'new', 'granted', change, a, p, used}
