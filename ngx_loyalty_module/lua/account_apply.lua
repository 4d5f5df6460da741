-- account_apply.lua: writes what loyalty-worker decided for one customer
-- when the schedule said the customer was due (worker_account.c: credit,
-- birthday, expiry, reminders, tier, statement), only if the account and
-- its ledger are still what the worker read.  Otherwise nothing changes
-- and the worker reads the account again, so the visit is as atomic as
-- one script, and done twice it changes nothing more.
--
-- The events go to the account's outbox in the same step; the worker adds
-- them to the stream, then empties the outbox.
--
-- KEYS[1] the account            loyalty:{customer:ID}
-- KEYS[2] its outbox             loyalty:{customer:ID}:out   (list)
-- KEYS[3] its ledger             loyalty:{customer:ID}:log   (list)
-- ARGV[1] the account as read: HGETALL's fields and values joined by "\n"
-- ARGV[2] the ledger's newest entry as read ('' for none)
-- ARGV[3] S fields to set, ARGV[4] D fields to delete, ARGV[5] E ledger
--         entries, then: S field/value pairs, D fields, E entries (oldest
--         first), and the events, each "field\nvalue\nfield\nvalue..."
--
-- Returns {'stale'}, or {'applied', event, ...}: the events that were in
-- the outbox before this visit's (a worker stopped before sending them).

local account, outbox, log = KEYS[1], KEYS[2], KEYS[3]

if table.concat(redis.call('HGETALL', account), '\n') ~= ARGV[1]
   or (redis.call('LINDEX', log, '0') or '') ~= ARGV[2]
then
    return {'stale'}
end

local nset, ndel, nentries = tonumber(ARGV[3]), tonumber(ARGV[4]),
                             tonumber(ARGV[5])
local i = 6

if nset > 0 then
    redis.call('HSET', account, unpack(ARGV, i, i + 2 * nset - 1))
    i = i + 2 * nset
end

if ndel > 0 then
    redis.call('HDEL', account, unpack(ARGV, i, i + ndel - 1))
    i = i + ndel
end

-- the ledger keeps its newest 1000 entries
if nentries > 0 then
    if redis.call('LPUSH', log, unpack(ARGV, i, i + nentries - 1)) > 1000 then
        redis.call('LTRIM', log, '0', '999')
    end
    i = i + nentries
end

-- what the outbox held before this visit's events
local nevents, before = #ARGV - i + 1

if nevents > 0 then
    before = redis.call('RPUSH', outbox, unpack(ARGV, i)) - nevents
else
    before = redis.call('LLEN', outbox)
end

if before == 0 then
    return {'applied'}
end

return {'applied', unpack(redis.call('LRANGE', outbox, '0',
                                     string.format('%d', before - 1)))}
