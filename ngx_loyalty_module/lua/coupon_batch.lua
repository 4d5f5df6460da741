-- coupon_batch.lua: the record of a bulk generation, so that a retried
-- request returns the same codes instead of creating new ones.
--
-- KEYS[1] batch hash            loyalty:{batch:ID}
-- ARGV[1] 'begin' or 'finish'
-- ARGV[2] the request's parameters, canonical JSON
-- ARGV[3] the codes, separated by spaces
-- ARGV[4] now (unix time)
--
-- 'begin' stores the parameters and the codes to create unless the batch
-- exists, and returns {'new'}, or {'pending' | 'done', codes} for a batch
-- with the same parameters, or {'conflict'} for other parameters.
-- 'finish' stores the final codes (some may have been replaced) and
-- returns {'done', codes}.

local batch, step, params, codes = KEYS[1], ARGV[1], ARGV[2], ARGV[3]

if step == 'finish' then
    redis.call('HSET', batch, 'codes', codes, 'state', 'done')
    return {'done', codes}
end

local current = redis.call('HMGET', batch, 'params', 'state', 'codes')
if current[1] then
    if current[1] ~= params then
        return {'conflict'}
    end
    return {current[2], current[3]}
end

redis.call('HSET', batch, 'params', params, 'state', 'pending',
           'codes', codes, 'created_at', ARGV[4])

return {'new'}
