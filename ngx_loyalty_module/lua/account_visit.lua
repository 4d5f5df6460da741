-- account_visit.lua: everything of one customer that was waiting for a
-- time, done by loyalty-worker when the schedule says the customer is due.
--
--   credit     orders whose return window ended: pending -> available, a
--              lot that expires points_expire later, lifetime, tier spend;
--              a shortfall left by a return (sf) is paid from it first
--   expiry     lots whose time came: removed from available
--   reminder   lots expiring within the notice, once per lot
--   tier       recomputed over the rolling window; up at once, down in
--              full or at most one level per window
--   statement  once a month, unless the customer opted out
--   birthday   the birthday points, once a year
--
-- Every step is decided by the account's own state, so a visit done twice
-- (a worker killed after it, two workers at once) changes nothing more.
-- The events go to the account's outbox in the same step; the worker adds
-- them to the stream, then empties the outbox (account_flush.lua).
--
-- KEYS[1] the account            loyalty:{customer:ID}
-- KEYS[2] its outbox             loyalty:{customer:ID}:out   (list)
-- KEYS[3] its ledger             loyalty:{customer:ID}:log   (list)
-- ARGV[1]  now (unix seconds)
-- ARGV[2]  the customer id
-- ARGV[3]  points_expire: seconds a lot lives (0: never)
-- ARGV[4]  expire_notice: seconds before expiry the reminder goes
-- ARGV[5]  tiers "name:threshold:factor,..." lowest first, threshold in
--          minor units of spend ('' when the program has none)
-- ARGV[6]  tier_window in seconds
-- ARGV[7]  tier downgrade: 'full' or 'one'
-- ARGV[8]  the month now, "YYYY-MM" in the shop's time zone
-- ARGV[9]  today, "MM-DD" in the shop's time zone; "02-28,02-29" on the
--          28th of February of a year without a 29th
-- ARGV[10] the year now, "YYYY"
-- ARGV[11] birthday points (0: none)
--
-- Account fields beyond order_record.lua's: lt lifetime points credited,
-- S tier spend "time:amount:order,..." (credited orders in the window),
-- tc when the tier last changed, xr the latest expiry reminded, sm the
-- month of the last statement, bd birthday "MM-DD", by the year of the
-- last birthday bonus, mo "1" when opted out of marketing, rr a referral
-- settled ("rewarded" or why not), sf points a return could not claw back
-- (order_return.lua).
--
-- Returns {next, birthday, referral, referral order, changes, event,
-- event, ...}:
-- next the earliest time something of the account will be due ('' for
-- nothing but the monthly statement and the birthday, which the worker
-- adds: they need the time zone; 'gone' when there is no account), the
-- birthday ("MM-DD" or ''), the referral code of a credited first order
-- still to settle and that order ('' for none), what the visit changed
-- for the program's totals "issued,credited,expired" (points made
-- available, pending points credited, points expired), and every event
-- in the outbox, each "field\nvalue\nfield\nvalue...".

local account, outbox, log = KEYS[1], KEYS[2], KEYS[3]
local now, customer = tonumber(ARGV[1]), ARGV[2]
local expire, notice = tonumber(ARGV[3]), tonumber(ARGV[4])
local tiers_arg, window, downgrade = ARGV[5], tonumber(ARGV[6]), ARGV[7]
local month, today, year = ARGV[8], ARGV[9], ARGV[10]
local birthday_points = tonumber(ARGV[11])

-- Numbers go to Redis as strings, written with %d: a Lua number passed to
-- redis.call, or joined as is, is formatted with %.14g, slower.
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
-- fields at the end; seq is one more than the newest entry's.  A visit's
-- entries are written together at the end.
local entries, seq = {}

local function ledger(kind, points, pending, ref, detail)
    if not seq then
        local head = redis.call('LINDEX', log, '0')
        seq = head and tonumber(string.match(head, '^%d+')) or 0
    end
    seq = seq + 1
    local e = string.format('%d\n%s\n%s\n%d\n%d', seq, ARGV[1], kind, points,
                            pending)
    if ref then
        e = e .. '\n' .. ref
        if detail then
            e = e .. '\n' .. detail
        end
    end
    entries[#entries + 1] = e
end

local raw = redis.call('HGETALL', account)

if #raw == 0 then
    return {'gone', '', '', '', '0,0,0',
            unpack(redis.call('LRANGE', outbox, '0', '-1'))}
end

local acc, orders = {}, {}
for i = 1, #raw, 2 do
    local k, v = raw[i], raw[i + 1]
    if string.sub(k, 1, 2) == 'o:' then
        orders[#orders + 1] = {string.sub(k, 3), v}
    else
        acc[k] = v
    end
end

local a = tonumber(acc.a or '0')
local p = tonumber(acc.p or '0')
local lt = tonumber(acc.lt or '0')
local debt = tonumber(acc.sf or '0')
local opted_out = acc.mo == '1'
local set, del, events = {}, {}, {}
local soonest

local function sooner(t)
    if t and (soonest == nil or t < soonest) then
        soonest = t
    end
end

local function event(type, id, ...)
    local e = {'type', type, 'id', id, 'customer', customer, 'at', int(now),
               ...}
    events[#events + 1] = table.concat(e, '\n')
end

-- the lots, oldest first: {expiry, points}; expiry 0 never comes
local lots = {}
for expiry, left in string.gmatch(acc.L or '', '(%d+):(%d+)') do
    lots[#lots + 1] = {tonumber(expiry), tonumber(left)}
end

-- what one visit makes available expires at one time: one lot for it
local function lot_add(points)
    local expiry = expire > 0 and now + expire or 0
    local last = lots[#lots]
    if last and last[1] == expiry then
        last[2] = last[2] + points
    else
        lots[#lots + 1] = {expiry, points}
    end
end

-- the tier spend: {time, amount, order}
local spend = {}
for t, amount, order in string.gmatch(acc.S or '', '(%d+):(%d+):([^,]*)') do
    spend[#spend + 1] = {tonumber(t), tonumber(amount), order}
end

-- credit ------------------------------------------------------------------

local credited, credited_points, first, referral, referral_order = {}, 0
local issued = 0

-- A pending record's fields a credit needs, read by one match: points,
-- due, basis, referral and what follows ("|coupon|returned"; records from
-- before coupons or returns were kept end earlier).  Other records are
-- not split: most of an account's need nothing but their state.
local PENDING = '^P|(%d*)|(%d*)|(%d*)|[^|]*|[^|]*|[^|]*|[^|]*|([^|]*)(.*)'

local function pending(record)
    local points, due, basis, ref, rest = string.match(record, PENDING)
    if not points then
        local f = fields(record)
        return f[2], f[3], f[4], f[9] or '', f[11]
    end
    return points, due, basis, ref, string.match(rest, '^|[^|]*|(%d*)')
end

for _, o in ipairs(orders) do
    local id, record = o[1], o[2]
    local state = string.byte(record)

    if state == 80 then                                             -- P
        local points, due, basis, ref, returned = pending(record)
        due = tonumber(due)

        if due <= now then
            points = tonumber(points)
            set['o:' .. id] = 'C' .. string.sub(record, 2)

            p = p - points
            a = a + points
            lt = lt + points
            credited_points = credited_points + points
            credited[#credited + 1] = id
            first = first or id

            -- a shortfall of a return after credit is paid first
            local lot = points
            if lot > 0 and debt > 0 then
                local pay = math.min(debt, lot)
                lot, debt = lot - pay, debt - pay
                a = a - pay
            end

            if lot > 0 then
                lot_add(lot)
            end
            issued = issued + lot
            ledger('credit', lot, -points, id)

            if tiers_arg ~= '' then
                local amount = tonumber(basis) - (tonumber(returned) or 0)
                if amount > 0 then
                    spend[#spend + 1] = {now, amount, id}
                end
            end

            if ref ~= '' and not acc.rr then
                referral, referral_order = ref, id
            end
        else
            sooner(due)
        end

    elseif state == 67 and not acc.rr then                          -- C
        -- credited by a visit whose referral the worker did not settle
        local ref = fields(record)[9] or ''
        if ref ~= '' then
            referral, referral_order = ref, id
        end
    end
end

if #credited > 0 then
    event('points_credited', 'points_credited:' .. first,
          'orders', table.concat(credited, ','),
          'points', int(credited_points), 'available', int(a))
end

-- birthday ------------------------------------------------------------------

if birthday_points > 0 and acc.bd and acc.by ~= year
   and string.find(',' .. today .. ',', ',' .. acc.bd .. ',', 1, true)
then
    lot_add(birthday_points)
    a = a + birthday_points
    lt = lt + birthday_points
    set.by = year
    issued = issued + birthday_points
    ledger('bonus', birthday_points, 0, 'birthday:' .. year, 'birthday')
    event('birthday_bonus', 'birthday_bonus:' .. customer .. ':' .. year,
          'points', int(birthday_points), 'available', int(a))
end

-- expiry and reminders -------------------------------------------------------

local expired, kept = 0, {}
local reminded = tonumber(acc.xr or '0')
local expiring, expiring_first, expiring_last = 0

for _, lot in ipairs(lots) do
    local expiry, left = lot[1], lot[2]

    if expiry ~= 0 and expiry <= now then
        expired = expired + left
    else
        kept[#kept + 1] = lot

        if expiry ~= 0 then
            sooner(expiry)

            if expiry > reminded then
                if expiry - notice <= now then
                    expiring = expiring + left
                    expiring_first = math.min(expiring_first or expiry, expiry)
                    expiring_last = math.max(expiring_last or expiry, expiry)
                else
                    sooner(expiry - notice)
                end
            end
        end
    end
end

lots = kept

if expired > 0 then
    a = a - expired
    ledger('expiry', -expired, 0)
    event('points_expired', 'points_expired:' .. customer .. ':' .. int(now),
          'points', int(expired), 'available', int(a))
end

if expiring > 0 then
    set.xr = int(expiring_last)
    if not opted_out then
        event('points_expiring', 'points_expiring:' .. customer .. ':'
              .. int(expiring_last), 'points', int(expiring),
              'expires_at', int(expiring_first), 'available', int(a))
    end
end

-- tier ----------------------------------------------------------------------

local tier_name, next_tier, to_next = '', '', 0

if tiers_arg ~= '' then
    local tiers = {}
    for name, threshold in string.gmatch(tiers_arg, '([^:,]+):(%d+):%d+') do
        tiers[#tiers + 1] = {name, tonumber(threshold)}
    end

    local total, live = 0, {}
    for _, s in ipairs(spend) do
        if s[1] > now - window then
            live[#live + 1] = s
            total = total + s[2]
            sooner(s[1] + window)
        end
    end
    spend = live

    local current, target = 1, 1
    for i, t in ipairs(tiers) do
        if t[1] == acc.t then
            current = i
        end
        if total >= t[2] then
            target = i
        end
    end

    local changed = tonumber(acc.tc or '0')
    local to = target

    if target < current and downgrade == 'one' then
        if now >= changed + window then
            to = current - 1
        else
            to = current
            sooner(changed + window)
        end
    end

    if to ~= current then
        if to == 1 then
            del[#del + 1] = 't'
        else
            set.t = tiers[to][1]
        end
        set.tc = int(now)
        event('tier_changed', 'tier_changed:' .. customer .. ':' .. int(now),
              'from', tiers[current][1], 'to', tiers[to][1],
              'direction', to > current and 'up' or 'down')
        if to > target then
            sooner(now + window)
        end
    end

    tier_name = tiers[to][1]
    if tiers[to + 1] then
        next_tier = tiers[to + 1][1]
        to_next = math.max(tiers[to + 1][2] - total, 0)
    end
end

-- statement -----------------------------------------------------------------

if month ~= '' and acc.e and not acc.sm then
    -- statements start with the first month after the first visit
    set.sm = month

elseif month ~= '' and acc.e and acc.sm ~= month and not opted_out then
    local soon, soon_at = 0
    for _, lot in ipairs(lots) do
        if lot[1] ~= 0 and lot[1] - notice <= now then
            soon = soon + lot[2]
            soon_at = math.min(soon_at or lot[1], lot[1])
        end
    end

    set.sm = month
    event('monthly_statement', 'monthly_statement:' .. customer .. ':'
          .. month, 'month', month, 'available', int(a), 'pending', int(p),
          'expiring_soon', int(soon), 'expiring_at', soon_at and int(soon_at)
          or '', 'tier', tier_name, 'next_tier', next_tier,
          'to_next_tier', int(to_next))
end

-- write ---------------------------------------------------------------------

local parts = {}
for _, lot in ipairs(lots) do
    parts[#parts + 1] = string.format('%d:%d', lot[1], lot[2])
end
if #parts > 0 then
    set.L = table.concat(parts, ',')
elseif acc.L then
    del[#del + 1] = 'L'
end

if tiers_arg ~= '' then
    parts = {}
    for _, s in ipairs(spend) do
        parts[#parts + 1] = string.format('%d:%d:%s', s[1], s[2], s[3])
    end
    if #parts > 0 then
        set.S = table.concat(parts, ',')
    elseif acc.S then
        del[#del + 1] = 'S'
    end
end

if debt ~= tonumber(acc.sf or '0') then
    if debt > 0 then
        set.sf = int(debt)
    else
        del[#del + 1] = 'sf'
    end
end

if #credited > 0 or expired > 0 or set.by then
    set.a = int(a)
    set.p = int(p)
    set.lt = int(lt)
end

local flat = {}
for k, v in pairs(set) do
    flat[#flat + 1] = k
    flat[#flat + 1] = v
end
if #flat > 0 then
    redis.call('HSET', account, unpack(flat))
end
if #del > 0 then
    redis.call('HDEL', account, unpack(del))
end
if #events > 0 then
    redis.call('RPUSH', outbox, unpack(events))
end
if #entries > 0 then
    redis.call('LPUSH', log, unpack(entries))
    redis.call('LTRIM', log, '0', '999')
end

return {soonest and int(soonest) or '', acc.bd or '', referral or '',
        referral_order or '',
        int(issued) .. ',' .. int(credited_points) .. ',' .. int(expired),
        unpack(redis.call('LRANGE', outbox, '0', '-1'))}
