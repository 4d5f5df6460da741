-- order_return.lua: a return or refund of part or all of an order, once
-- per return id.
--
-- The returned amount counts against the order's basis (the minor units
-- that earned points; beyond it is not counted).  The order's points and
-- the points it redeemed shrink pro rata, rounded down, to zero when the
-- whole basis is returned:
--   pending order   its pending points shrink; a whole return voids it
--   credited order  the points are clawed back from the newest lots; what
--                   the balance cannot give is recorded as a shortfall
--                   (field sf), never a negative balance; lifetime and
--                   the tier spend shrink with it
--   redeemed        the share of the points the order spent comes back as
--                   a new lot, after paying an earlier shortfall
-- A points_returned event goes to the account's outbox.
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
-- KEYS[2] its outbox            loyalty:{customer:ID}:out
-- KEYS[3] its ledger            loyalty:{customer:ID}:log
-- ARGV[1] order id
-- ARGV[2] return id
-- ARGV[3] amount returned (minor units, > 0)
-- ARGV[4] now (unix seconds)
-- ARGV[5] points_expire: seconds a lot lives (0: never)
-- ARGV[6] the customer id (for the event)
--
-- The return is kept in field r:<order>:<return> as
-- "amount|counted|points|given_back|shortfall".
--
-- Returns {'returned' | 'replayed', state, counted, points removed,
-- redeemed points given back, shortfall, available, pending, coupon,
-- whole (1 when nothing of the basis is left), the change to available,
-- the change to pending (both 0 for a replay)}, {'conflict', amount}
-- when the return id was used with another amount, or {'not_found'}.

local account, outbox, log = KEYS[1], KEYS[2], KEYS[3]
local order, rid = ARGV[1], ARGV[2]
local amount, now = tonumber(ARGV[3]), tonumber(ARGV[4])
local expire, customer = tonumber(ARGV[5]), ARGV[6]

local function int(n)
    return string.format('%d', n)
end

local function fields(s)
    local out, start = {}, 1
    while true do
        local i = string.find(s, '|', start, true)
        if not i then
            out[#out + 1] = string.sub(s, start)
            return out
        end
        out[#out + 1] = string.sub(s, start, i - 1)
        start = i + 1
    end
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

local raw = redis.call('HGET', account, 'o:' .. order)
if not raw then
    return {'not_found'}
end

local f = fields(raw)
for i = #f + 1, 11 do
    f[i] = (i == 11) and '0' or ''
end

local basis, returned = tonumber(f[4]), tonumber(f[11] ~= '' and f[11] or 0)
local state_names = {P = 'pending', C = 'credited', V = 'voided'}

local a_change, p_change = 0, 0

local function answer(status, r)
    local acc = redis.call('HMGET', account, 'a', 'p')
    return {status, state_names[f[1]], r[2], r[3], r[4], r[5],
            tonumber(acc[1] or '0'), tonumber(acc[2] or '0'), f[10],
            returned >= basis and 1 or 0, a_change, p_change}
end

local done = redis.call('HGET', account, 'r:' .. order .. ':' .. rid)
if done then
    local r = fields(done)
    if tonumber(r[1]) ~= amount then
        return {'conflict', tonumber(r[1])}
    end
    for i = 2, 5 do
        r[i] = tonumber(r[i])
    end
    return answer('replayed', r)
end

local counted = math.min(amount, basis - returned)
local points, redeemed = tonumber(f[2]), tonumber(f[7])
local removed, given, shortfall = 0, 0, 0

if counted > 0 then
    local left_before, left_after = basis - returned, basis - returned - counted

    -- pro rata of what is still there, rounded down: a whole return is 0
    local kept = math.floor(points * left_after / left_before)
    local redeemed_kept = math.floor(redeemed * left_after / left_before)
    removed, given = points - kept, redeemed - redeemed_kept

    returned = returned + counted
    f[2], f[7], f[11] = int(kept), int(redeemed_kept), int(returned)

    local a = tonumber(redis.call('HGET', account, 'a') or '0')
    local a_before, pending_change = a, 0
    local lots = {}
    for expiry, left in string.gmatch(redis.call('HGET', account, 'L') or '',
                                      '(%d+):(%d+)') do
        lots[#lots + 1] = {expiry, tonumber(left)}
    end

    if f[1] == 'P' then
        pending_change = -removed
        -- never -0 (an order that earned nothing): HINCRBY refuses "-0"
        if removed > 0 then
            redis.call('HINCRBY', account, 'p', -removed)
        end
        if returned >= basis then
            f[1] = 'V'
        end

    elseif f[1] == 'C' then
        -- newest lots first
        local need = removed
        for i = #lots, 1, -1 do
            local take = math.min(need, lots[i][2])
            lots[i][2] = lots[i][2] - take
            need = need - take
        end
        shortfall = need
        a = a - (removed - shortfall)
        if removed > 0 then
            redis.call('HINCRBY', account, 'lt', -removed)
        end
        if shortfall > 0 then
            redis.call('HINCRBY', account, 'sf', shortfall)
        end

        -- the tier spend of the order shrinks by what was counted
        local spend = redis.call('HGET', account, 'S')
        if spend then
            local parts = {}
            for t, amt, o in string.gmatch(spend, '(%d+):(%d+):([^,]*)') do
                amt = tonumber(amt)
                if o == order then
                    amt = amt - counted
                end
                if amt > 0 then
                    parts[#parts + 1] = t .. ':' .. int(amt) .. ':' .. o
                end
            end
            if #parts > 0 then
                redis.call('HSET', account, 'S', table.concat(parts, ','))
            else
                redis.call('HDEL', account, 'S')
            end
        end
    end

    -- what comes back pays an earlier shortfall first
    local debt = tonumber(redis.call('HGET', account, 'sf') or '0')
    local back = given
    if back > 0 and debt > 0 then
        local pay = math.min(debt, back)
        back = back - pay
        if debt == pay then
            redis.call('HDEL', account, 'sf')
        else
            redis.call('HINCRBY', account, 'sf', -pay)
        end
    end
    if back > 0 then
        lots[#lots + 1] = {int(expire > 0 and now + expire or 0), back}
        a = a + back
    end

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

    redis.call('HSET', account, 'a', int(a), 'o:' .. order,
               table.concat(f, '|'))
    a_change, p_change = a - a_before, pending_change
    ledger('return', a_change, p_change, order, rid)
end

redis.call('HSET', account, 'r:' .. order .. ':' .. rid,
           table.concat({int(amount), int(counted), int(removed), int(given),
                         int(shortfall)}, '|'))

local r = {nil, counted, removed, given, shortfall}
local result = answer('returned', r)

redis.call('RPUSH', outbox, table.concat({
    'type', 'points_returned', 'id', 'points_returned:' .. order .. ':' .. rid,
    'customer', customer, 'at', int(now), 'order', order, 'return', rid,
    'amount', int(counted), 'points', int(removed),
    'redeemed_returned', int(given), 'shortfall', int(shortfall),
    'available', int(result[7]), 'pending', int(result[8])}, '\n'))

return result
