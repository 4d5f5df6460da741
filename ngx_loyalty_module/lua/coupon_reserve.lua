-- coupon_reserve.lua: checks a coupon's usage limits and reserves one use
-- for each of several checkouts, atomically, so that concurrent checkouts
-- can never spend more uses than the coupon has.  The rules that need the
-- cart (dates, currency, eligible lines, minimum spend) are decided in C
-- from the definition; this script confirms that definition is still
-- current.  An nginx worker sends the checkouts of one coupon that arrive
-- in the same turn of its event loop in one call: the checkouts are taken
-- in order, each as if it had a call of its own.
--
-- KEYS[1] coupon hash           loyalty:{coupon:CODE}
-- KEYS[2] reservations zset     ...:res   checkout -> expiry (unix time)
-- KEYS[3] reservation owners    ...:resc  checkout -> customer
-- KEYS[4] live per customer     ...:resn  customer -> live reservations
-- KEYS[5] committed per customer ...:uses customer -> uses
-- ARGV[1] now (unix time)
-- ARGV[2] expiry of the reservations (unix time)
-- then four per checkout:
--   checkout id
--   customer ('' for a guest)
--   the definition version the caller evaluated, '' for none
--   'reserve', 'check' (limits without reserving: shadow mode) or
--   'verify' (only confirm the version: the caller refuses anyway)
--
-- Returns {'not_found'}, or {'answers', version, definition, answer ...},
-- one answer per checkout, in order:
--   'stale'       evaluate the definition returned (else ''), call again
--   'fresh'       after 'verify'
--   'disabled', 'exhausted', 'customer_limit', 'conflict'
--   'valid'       reserved (or already, expiry refreshed)

local coupon, res, resc, resn, uses = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
                                      KEYS[5]
local now, expires = ARGV[1], ARGV[2]
local n = (#ARGV - 2) / 4

-- Times and counts go to Redis as strings (now and expires as they came):
-- a Lua number passed to redis.call is formatted with %.14g, slower.

local c = redis.call('HMGET', coupon, 'version', 'def', 'disabled',
                     'max_uses', 'per_customer', 'used')
local version = c[1]

if not version then
    return {'not_found'}
end

local out = {'answers', version, ''}
local todo = {}

for i = 1, n do
    local a = 2 + 4 * (i - 1)
    if ARGV[a + 3] ~= version then
        out[3 + i] = 'stale'
        out[3] = c[2] or ''
    elseif c[3] == '1' then
        out[3 + i] = 'disabled'
    elseif ARGV[a + 4] == 'verify' then
        out[3 + i] = 'fresh'
    else
        todo[#todo + 1] = i
    end
end

if #todo == 0 then
    return out
end

-- forget reservations that expired, a bounded number per call
local expired = redis.call('ZRANGEBYSCORE', res, '-inf', now,
                           'LIMIT', '0', '100')
for _, id in ipairs(expired) do
    local owner = redis.call('HGET', resc, id)
    if owner and owner ~= '' then
        if redis.call('HINCRBY', resn, owner, '-1') <= 0 then
            redis.call('HDEL', resn, owner)
        end
    end
    redis.call('HDEL', resc, id)
    redis.call('ZREM', res, id)
end

-- who holds each checkout already (:resc has an entry for each member of
-- :res), and the live reservations of each customer
local ids, customers, seen = {}, {}, {}
for k, i in ipairs(todo) do
    local a = 2 + 4 * (i - 1)
    ids[k] = ARGV[a + 1]
    local customer = ARGV[a + 2]
    if customer ~= '' and not seen[customer] then
        seen[customer] = true
        customers[#customers + 1] = customer
    end
end

local holder = {}
local owners = redis.call('HMGET', resc, unpack(ids))
for k, id in ipairs(ids) do
    if owners[k] then
        holder[id] = owners[k]
    end
end

local live, used_by = {}, {}
if #customers > 0 then
    local l = redis.call('HMGET', resn, unpack(customers))
    for k, customer in ipairs(customers) do
        live[customer] = tonumber(l[k]) or 0
        used_by[customer] = 0
    end
end

local max_uses = tonumber(c[4]) or 0
local taken = 0
if max_uses > 0 then
    taken = (tonumber(c[6]) or 0) + redis.call('ZCARD', res)
end

local per_customer = tonumber(c[5]) or 0
if per_customer > 0 and #customers > 0 then
    local u = redis.call('HMGET', uses, unpack(customers))
    for k, customer in ipairs(customers) do
        used_by[customer] = tonumber(u[k]) or 0
    end
end

local zadd, hset, added = {}, {}, {}

for _, i in ipairs(todo) do
    local a = 2 + 4 * (i - 1)
    local id, customer, mode = ARGV[a + 1], ARGV[a + 2], ARGV[a + 4]
    local owner = holder[id]

    if owner then
        -- a checkout that already holds a use keeps it (a retried request)
        if owner ~= customer then
            out[3 + i] = 'conflict'
        else
            if mode == 'reserve' then
                zadd[#zadd + 1] = expires
                zadd[#zadd + 1] = id
            end
            out[3 + i] = 'valid'
        end

    elseif max_uses > 0 and taken >= max_uses then
        out[3 + i] = 'exhausted'

    elseif per_customer > 0
           and (customer == ''
                or used_by[customer] + live[customer] >= per_customer) then
        out[3 + i] = 'customer_limit'

    else
        if mode == 'reserve' then
            zadd[#zadd + 1] = expires
            zadd[#zadd + 1] = id
            hset[#hset + 1] = id
            hset[#hset + 1] = customer
            holder[id] = customer
            taken = taken + 1
            if customer ~= '' then
                added[customer] = true
                live[customer] = live[customer] + 1
            end
        end
        out[3 + i] = 'valid'
    end
end

if #zadd > 0 then
    redis.call('ZADD', res, unpack(zadd))
end

if #hset > 0 then
    redis.call('HSET', resc, unpack(hset))

    local counts = {}
    for _, customer in ipairs(customers) do
        if added[customer] then
            counts[#counts + 1] = customer
            counts[#counts + 1] = string.format('%d', live[customer])
        end
    end
    if #counts > 0 then
        redis.call('HSET', resn, unpack(counts))
    end
end

return out
