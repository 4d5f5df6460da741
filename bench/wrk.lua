-- wrk.lua: the requests of bench/http.pl's scenarios, for wrk 4.1.
-- The same script drives the module's location and the plain proxy_pass
-- one, so both see the same bytes but for the path.  Settings come from
-- the environment:
--
--   BENCH_KIND   checkout | coupon | points | confirm | health
--   BENCH_PATH   the path to send to (/checkout, /plain/checkout...)
--   BENCH_RUN    a prefix unique to the run: checkout and order ids must
--                be new on every request, as they are in a shop
--   BENCH_USERS  customers to spread the requests over (b1 .. bN)
--   BENCH_DELAY  milliseconds each connection waits on average after an
--                answer (wrk has no rate option: the delay gives an
--                approximately fixed rate, see docs/performance.md); drawn
--                from 0 .. 2 x BENCH_DELAY so that the connections, all
--                started at once, do not stay in step and send in bursts
--
-- done() prints one line bench/http.pl reads:
--   BENCH requests seconds p50_us p99_us non2xx socket_errors

local kind  = os.getenv("BENCH_KIND") or "checkout"
local path  = os.getenv("BENCH_PATH") or "/checkout"
local run   = os.getenv("BENCH_RUN") or tostring(os.time())
local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local pause = tonumber(os.getenv("BENCH_DELAY") or "0")

local n = 0
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

local lines = '"lines":[{"sku":"A1","brand":"acme","category":"shoes",'
              .. '"price":"19.99","quantity":3},{"sku":"H1",'
              .. '"brand":"other","category":"hats","price":"5.00",'
              .. '"quantity":1}]'

local extra = {
    checkout = '',
    coupon   = ',"coupon":"BENCH10"',
    points   = ',"points":500',
    confirm  = '',
}

function request()
    n = n + 1

    if kind == "health" then
        return wrk.format("GET", path)
    end

    local id = string.format("%s-%d-%d", run, tid or 0, n)
    local customer = "b" .. (n % users + 1)
    local body = '{"checkout_id":"c-' .. id .. '","currency":"EUR",'
                 .. lines .. extra[kind]

    if kind == "confirm" then
        body = body .. ',"order_id":"o-' .. id .. '"'
    end

    return wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["X-Customer-Id"] = customer,
    }, body .. "}")
end

if pause > 0 then
    function delay()
        return math.random(0, 2 * pause)
    end
end

function done(summary, latency, requests)
    io.write(string.format("BENCH %d %.6f %d %d %d %d\n",
        summary.requests, summary.duration / 1e6,
        latency:percentile(50), latency:percentile(99),
        summary.errors.status,
        summary.errors.connect + summary.errors.read
        + summary.errors.write + summary.errors.timeout))
end
