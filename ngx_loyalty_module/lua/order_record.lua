-- order_record.lua: records what a confirmed order earns, once.
--
-- The order's points go pending until the return window ends (the worker
-- credits them then); the points its checkout held are spent, oldest lot
-- first; the customer is enrolled by a first order, counted for the
-- frequent-purchase reward, and attributed to a referral code.  Replaying
-- the same order changes nothing and answers as the first time did; the
-- same order id with other content is a conflict and changes nothing.
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
-- KEYS[2] holds zset            ...:holds   checkout -> expiry
-- KEYS[3] held per checkout     ...:holdv   checkout -> points
-- KEYS[4] the ledger            ...:log     (list, newest first)
-- ARGV[1]  order id
-- ARGV[2]  fingerprint of the order's content
-- ARGV[3]  points before the tier multiplier
-- ARGV[4]  tiers "name:factor,name:factor" in thousandths, entry tier
--          first ('' when the program has none)
-- ARGV[5]  basis: the minor units that earned
-- ARGV[6]  due: the unix time the return window ends
-- ARGV[7]  now (unix time)
-- ARGV[8]  the program version the points were computed under
-- ARGV[9]  checkout id whose hold of points the order ends ('' for none)
-- ARGV[10] every Nth order earns a reward: N (0 for none)
-- ARGV[11] the reward's points
-- ARGV[12] referral code the order carries ('' for none)
-- ARGV[13] points the order redeems: spent oldest lot first, whatever the
--          checkout held (the hold itself is given back)
-- ARGV[14] the coupon code the order used ('' for none)
--
-- The account: a available, h held, p pending, n orders, e enrolled at,
-- t tier, rb referred by, L lots "expiry:points,..." oldest first, and a
-- field o:<order> per order:
--   state|points|due|basis|version|fingerprint|redeemed|bonus|referral|
--   coupon|returned
-- with state P (pending), C (credited) or V (voided), and returned the
-- amount returned so far (minor units).  loyalty-worker credits it when
-- due (worker_account.c, account_apply.lua).
--
-- Returns {'recorded', points, pending, redeemed, bonus, orders} (orders:
-- the customer's confirmed orders, this one included), {'replayed',
-- points, pending, redeemed, bonus} or {'conflict'}.

local account, holds, holdv, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local order, fingerprint = ARGV[1], ARGV[2]
local base = tonumber(ARGV[3])
local tiers, basis, due, now = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local version, checkout = ARGV[8], ARGV[9]
local every, reward = tonumber(ARGV[10]), tonumber(ARGV[11])
local referral = ARGV[12]
local redeem = tonumber(ARGV[13])
local coupon = ARGV[14]

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
-- fields at the end; seq is one more than the newest entry's.  A line
-- spooled by a version without the ledger passes no KEYS[4].  Numbers
-- are written with %d: a number joined as is goes through %.14g, slower.
local function ledger(kind, points, pending, ref)
    if not log then
        return
    end
    local head = redis.call('LINDEX', log, '0')
    if redis.call('LPUSH', log, string.format('%d\n%s\n%s\n%d\n%d\n%s',
                  head and tonumber(string.match(head, '^%d+')) + 1 or 1,
                  now, kind, points, pending, ref)) > 1000 then
        redis.call('LTRIM', log, '0', '999')
    end
end

local existing = redis.call('HGET', account, 'o:' .. order)
if existing then
    local f = fields(existing)
    if f[6] ~= fingerprint then
        return {'conflict'}
    end
    return {'replayed', tonumber(f[2]),
            tonumber(redis.call('HGET', account, 'p') or '0'),
            tonumber(f[7]), tonumber(f[8])}
end

-- the tier multiplier, from the tier the customer has now
local factor = 1000
if tiers ~= '' then
    local tier = redis.call('HGET', account, 't')
    local first = true
    for name, f in string.gmatch(tiers, '([^:,]+):(%d+)') do
        if first or name == tier then
            factor = tonumber(f)
        end
        if name == tier then
            break
        end
        first = false
    end
end

local points = math.floor(base * factor / 1000)

-- the checkout's hold ends: the order spends what it redeems
if checkout ~= '' then
    local held = tonumber(redis.call('HGET', holdv, checkout) or '0')
    if held > 0 then
        redis.call('HDEL', holdv, checkout)
        redis.call('ZREM', holds, checkout)
        redis.call('HINCRBY', account, 'h', string.format('%d', -held))
    end
end

-- oldest lot first; never below zero (a shortfall stays unspent)
local redeemed = 0
if redeem > 0 then
    local need, kept = redeem, {}
    for expiry, left in string.gmatch(redis.call('HGET', account, 'L') or '',
                                      '(%d+):(%d+)') do
        left = tonumber(left)
        if need > 0 then
            local take = math.min(need, left)
            left = left - take
            need = need - take
        end
        if left > 0 then
            kept[#kept + 1] = expiry .. ':' .. left
        end
    end
    redeemed = redeem - need
    redis.call('HSET', account, 'L', table.concat(kept, ','))
    -- never -0: Lua writes it "-0", which HINCRBY refuses as not an integer
    if redeemed > 0 then
        redis.call('HINCRBY', account, 'a', string.format('%d', -redeemed))
    end
end

local n = redis.call('HINCRBY', account, 'n', '1')
redis.call('HSETNX', account, 'e', now)

local bonus = 0
if every > 0 and n % every == 0 then
    bonus = reward
end

-- a referral counts on the first order only
if n ~= 1 or redis.call('HEXISTS', account, 'rb') == 1 then
    referral = ''
end
if referral ~= '' then
    redis.call('HSET', account, 'rb', referral)
end

local earned = points + bonus
redis.call('HSET', account, 'o:' .. order,
           string.format('P|%d|%s|%s|%s|%s|%d|%d|%s|%s|0', earned, due, basis,
                         version, fingerprint, redeemed, bonus, referral,
                         coupon))
local pending = redis.call('HINCRBY', account, 'p',
                           string.format('%d', earned))

ledger('order', -redeemed, earned, order)

return {'recorded', earned, pending, redeemed, bonus, n}
