#!/bin/sh
# make run: redis-server, nginx with the module and examples/nginx.conf, and
# the worker, all on loopback with their files in run/.  Ctrl-C (or TERM)
# stops exactly the processes started here.
set -eu

build=${LOYALTY_BUILD:-build/release}
root=$(pwd)
run="$root/run"

# the first free port from $1 on
free_port() {
    port=$1
    while perl -MIO::Socket::INET -e \
        'exit(IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") ? 0 : 1)' \
        "$port"
    do
        port=$((port + 1))
    done
    echo "$port"
}

port=$(free_port "${LOYALTY_PORT:-8080}")
backend_port=$(free_port $((port + 1)))
redis_port=$(free_port "${LOYALTY_REDIS_PORT:-6390}")

mkdir -p "$run/redis" "$run/logs" "$run/tmp"
chmod 755 "$run" "$run/tmp"

user=
[ "$(id -u)" -eq 0 ] && user='user nobody nogroup;'

# a demo token; a real one comes from a random source
token=demo-admin-token-0123456789

sed -e "s|@MODULE@|$root/$build/ngx_http_loyalty_module.so|" \
    -e "s|@ADMIN_TOKEN@|$token|" \
    -e "s|@RUN@|$run|g" -e "s|@USER@|$user|" \
    -e "s|@PORT@|$port|g" -e "s|@BACKEND_PORT@|$backend_port|g" \
    -e "s|@REDIS_PORT@|$redis_port|g" \
    examples/nginx.conf > "$run/nginx.conf"

pids=
stop() {
    trap - INT TERM EXIT
    [ -n "$pids" ] && kill $pids 2>/dev/null
    wait 2>/dev/null
    echo "stopped."
}
trap stop INT TERM EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$run/redis" \
    --appendonly yes --logfile "$run/logs/redis.log" --daemonize no &
pids="$pids $!"

# nginx would cope with a Redis that is not up yet; its log is clearer if
# Redis is first
i=0
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "redis-server did not start; see $run/logs/redis.log" >&2
        exit 1
    fi
    sleep 0.1
done

nginx -p "$run" -c "$run/nginx.conf" -e "$run/logs/error.log" &
pids="$pids $!"

"$build/loyalty-worker" --redis "127.0.0.1:$redis_port" \
    --log "$run/logs/worker.log" &
pids="$pids $!"

# wait until the health endpoint answers ok
i=0
until curl -sf "http://127.0.0.1:$port/loyalty/health" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "nginx did not become healthy; see $run/logs/error.log" >&2
        exit 1
    fi
    sleep 0.1
done

cat <<MSG

ngx_loyalty_module is running (Ctrl-C stops it):

  health    http://127.0.0.1:$port/loyalty/health
  metrics   http://127.0.0.1:$port/metrics  (Prometheus text)
  checkout  http://127.0.0.1:$port/checkout  (proxied to the stub shop)
  Redis     127.0.0.1:$redis_port, data in run/redis
  logs      run/logs/error.log, run/logs/worker.log

Try:
  curl -s http://127.0.0.1:$port/loyalty/health

  # a coupon, through the admin API
  curl -s -X POST http://127.0.0.1:$port/loyalty/admin/coupons \\
    -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' \\
    -d '{"code":"SAVE10","type":"percent","value":"10"}'

  # a checkout with it
  curl -s -X POST http://127.0.0.1:$port/checkout -H 'X-Customer-Id: 42' \\
    -H 'Content-Type: application/json' \\
    -d '{"checkout_id":"c-1","lines":[{"sku":"A1","price":"19.99","quantity":3}],"coupon":"save10"}'

  # a review bonus, then the customer's history
  curl -s -X POST http://127.0.0.1:$port/loyalty/admin/events \\
    -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' \\
    -d '{"id":"review-1","type":"review","customer":"42"}'
  curl -s http://127.0.0.1:$port/loyalty/admin/customers/42/history \\
    -H 'Authorization: Bearer $token'

  # what it all counted, for Prometheus
  curl -s http://127.0.0.1:$port/metrics | grep -v '^#'

MSG

wait
