# loyalty_health: the worker's view of Redis, through the script path.

use strict;
use warnings;

use lib 't/lib';
use Loyalty::Test;

run_blocks();

__DATA__

=== health answers ok once Redis is connected
--- config
location = /health { loyalty_health; }
--- request
GET /health
--- error_code: 200
--- response_headers
Content-Type: application/json
Cache-Control: no-store
--- response_json
{"status": "ok", "redis": {"state": "ready", "in_flight": 0, "last_error": null}, "workers": 0}
--- response_body_like
"round_trip_ms":\d+\.\d{3},
--- no_error_log
[error]
[warn]

=== health counts the workers that passed within a minute
--- config
location = /health { loyalty_health; }
--- redis_setup
ZADD loyalty:{workers} 99999999999 shop-1:100
ZADD loyalty:{workers} 99999999999 shop-2:200
ZADD loyalty:{workers} 1000 gone:300
--- request
GET /health
--- error_code: 200
--- response_json
{"status": "ok", "workers": 2}

=== health answers HEAD without a body
--- config
location = /health { loyalty_health; }
--- request
HEAD /health
--- error_code: 200
--- response_body

=== health refuses other methods with a JSON error
--- config
location = /health { loyalty_health; }
--- request
POST /health
{}
--- error_code: 405
--- response_headers
Allow: GET, HEAD
--- response_json
{"error": "method_not_allowed", "message": "POST is not allowed here; use GET, HEAD"}

=== health survives a flushed script cache and says so once
--- config
location = /health { loyalty_health; }
--- redis_setup
SCRIPT FLUSH
--- request
GET /health
--- error_code: 200
--- response_json
{"status": "ok"}
--- error_log
lost script "health", loading it again
