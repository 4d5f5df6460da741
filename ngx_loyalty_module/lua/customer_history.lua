-- customer_history.lua: a page of a customer's ledger, newest first, for
-- the admin API.  Changes nothing.
--
-- The ledger's entries carry consecutive numbers (seq) and new ones go on
-- top, so the entry numbered s is at index top - s: a page that starts
-- below a cursor is found from the newest number, whatever was written
-- since the previous page.
--
-- KEYS[1] the account hash      loyalty:{customer:ID}
-- KEYS[2] its ledger            loyalty:{customer:ID}:log
-- ARGV[1] cursor: entries numbered below it ('' for the newest)
-- ARGV[2] how many (the script answers one more, to tell if there are)
--
-- Returns {'not_found'} without an account, else {'ok', entry, ...}; see
-- order_record.lua for an entry.

local account, log = KEYS[1], KEYS[2]
local cursor, count = ARGV[1], tonumber(ARGV[2])

if redis.call('EXISTS', account) == 0 then
    return {'not_found'}
end

local head = redis.call('LINDEX', log, 0)
if not head then
    return {'ok'}
end

local start = 0
if cursor ~= '' then
    start = math.max(tonumber(string.match(head, '^%d+')) - tonumber(cursor)
                     + 1, 0)
end

return {'ok', unpack(redis.call('LRANGE', log, start, start + count))}
