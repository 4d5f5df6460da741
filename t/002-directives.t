# nginx -t names every mistake in the module's directives precisely.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Loyalty::Test;

my $t = Loyalty::Test->new;

sub refused {
    my ($name, $http, $message) = @_;

    my ($rc, $out) = $t->nginx_t($http);

    isnt($rc, 0, "$name: nginx -t fails");
    like($out, qr/\[emerg\].*\Q$message\E/, "$name: says '$message'")
        or diag($out);
}

sub accepted {
    my ($name, $http) = @_;

    my ($rc, $out) = $t->nginx_t($http);

    is($rc, 0, "$name: nginx -t passes") or diag($out);
    unlike($out, qr/\[(warn|emerg)\]/, "$name: no warning");
}

accepted('an address and all parameters', <<'HTTP');
http {
    loyalty_redis 127.0.0.1:6379 user=shop password=s3cret db=2;
    loyalty_redis_timeout 250ms;
    loyalty_redis_connect_timeout 2s;
    server { location = /health { loyalty_health; } }
}
HTTP

accepted('a unix socket', <<'HTTP');
http {
    loyalty_redis unix:/run/redis/redis.sock;
    server { location = /health { loyalty_health; } }
}
HTTP

SKIP: {
    skip 'localhost does not resolve here (no /etc/hosts)', 2
        unless gethostbyname('localhost');

    accepted('a host name, resolved once at configuration time', <<'HTTP');
http {
    loyalty_redis localhost:6379;
    server { location = /health { loyalty_health; } }
}
HTTP
}

accepted('no loyalty directive at all', <<'HTTP');
http {
    server { location / { return 204; } }
}
HTTP

refused('loyalty_health without loyalty_redis', <<'HTTP',
http {
    server {
        location = /health {
            loyalty_health;
        }
    }
}
HTTP
    '"loyalty_health" in ' . $t->dir . '/nginx-t.conf:8 needs '
    . '"loyalty_redis" in the http block');

refused('an unknown parameter', <<'HTTP', 'invalid parameter "timeout=5" in "loyalty_redis", expected user=, password= or db=');
http { loyalty_redis 127.0.0.1:6379 timeout=5; }
HTTP

refused('a database that is not a number', <<'HTTP', 'invalid database number "db=two" in "loyalty_redis"');
http { loyalty_redis 127.0.0.1:6379 db=two; }
HTTP

refused('a user without a password', <<'HTTP', '"loyalty_redis" directive has "user=" without "password="');
http { loyalty_redis 127.0.0.1:6379 user=shop; }
HTTP

refused('an empty password', <<'HTTP', '"loyalty_redis" directive has an empty "password="');
http { loyalty_redis 127.0.0.1:6379 password=; }
HTTP

refused('a second loyalty_redis', <<'HTTP', '"loyalty_redis" directive is duplicate');
http { loyalty_redis 127.0.0.1:6379; loyalty_redis 127.0.0.1:6380; }
HTTP

refused('a host that does not resolve', <<'HTTP', 'host not found in "loyalty_redis" address "no-such-host.invalid:6379"');
http { loyalty_redis no-such-host.invalid:6379; }
HTTP

refused('a path in the address', <<'HTTP', 'invalid host in "loyalty_redis" address "127.0.0.1:6379/0"');
http { loyalty_redis 127.0.0.1:6379/0; }
HTTP

refused('an empty unix path', <<'HTTP', '"loyalty_redis" directive has an empty unix socket path');
http { loyalty_redis unix:; }
HTTP

refused('a timeout that is not a time', <<'HTTP', '"loyalty_redis_timeout" directive invalid value');
http { loyalty_redis 127.0.0.1:6379; loyalty_redis_timeout fast; }
HTTP

refused('loyalty_redis inside a server', <<'HTTP', '"loyalty_redis" directive is not allowed here');
http { server { loyalty_redis 127.0.0.1:6379; } }
HTTP

refused('loyalty_health with an argument', <<'HTTP', 'invalid number of arguments in "loyalty_health" directive');
http { loyalty_redis 127.0.0.1:6379; server { location / { loyalty_health on; } } }
HTTP

# --- the checkout and the admin API -------------------------------------------

accepted('every checkout and admin directive; a field mapped in http is '
         . 'mapped again in a location', <<'HTTP');
http {
    loyalty_redis 127.0.0.1:6379;
    loyalty_currency EUR;
    loyalty_point_value 1.00 per 100;
    loyalty_coupon_attempts 10 per 10m;
    loyalty_rounding half_even;
    loyalty_field coupon /discount/code;
    server {
        location /checkout {
            loyalty_checkout on;
            loyalty_customer $http_x_customer_id;
            loyalty_mode shadow;
            loyalty_coupon_reject on;
            loyalty_header_prefix X-Shop_Loyalty-;
            loyalty_field coupon /promo;
            loyalty_field lines /cart/items;
            loyalty_field line.price /unit~1price;
            loyalty_amounts minor;
            loyalty_cart_limits body=128k lines=500 quantity=99
                                amount=5000 depth=2;
            proxy_pass http://127.0.0.1:1;
        }
        location /loyalty/admin/ {
            loyalty_admin;
            loyalty_admin_token 0123456789abcdef;
        }
    }
}
HTTP

accepted('loyalty_checkout on in the http block, the customer beside it',
         <<'HTTP');
http {
    loyalty_redis 127.0.0.1:6379;
    loyalty_checkout on;
    loyalty_customer $http_x_customer_id;
    server { location / { proxy_pass http://127.0.0.1:1; } }
}
HTTP

refused('loyalty_checkout on without loyalty_customer', <<'HTTP',
http {
    loyalty_redis 127.0.0.1:6379;
    server {
        location /checkout {
            loyalty_checkout on;
            proxy_pass http://127.0.0.1:1;
        }
    }
}
HTTP
    '"loyalty_checkout" in ' . $t->dir . '/nginx-t.conf:9 needs '
    . '"loyalty_customer": the variable that holds the signed-in '
    . 'customer\'s id');

refused('loyalty_checkout on in the http block without loyalty_customer',
        <<'HTTP',
http {
    loyalty_redis 127.0.0.1:6379;
    loyalty_checkout on;
    server { location / { proxy_pass http://127.0.0.1:1; } }
}
HTTP
    '"loyalty_checkout" in ' . $t->dir . '/nginx-t.conf:7 needs '
    . '"loyalty_customer"');

refused('an unknown loyalty_field name', <<'HTTP', 'unknown field "line.colour" in "loyalty_field", expected one of customer, checkout_id, order_id, currency, lines, shipping, tax, coupon, points, referral, discount, line.sku, line.brand, line.category, line.price, line.quantity');
http { loyalty_field line.colour /colour; }
HTTP

refused('a JSON pointer without its leading slash', <<'HTTP', 'invalid JSON pointer "cart/items" in "loyalty_field", expected for example "/cart/items"');
http { loyalty_field lines cart/items; }
HTTP

refused('a JSON pointer with an invalid escape', <<'HTTP', 'invalid JSON pointer "/a~2b" in "loyalty_field", expected for example "/cart/items"');
http { loyalty_field line.price /a~2b; }
HTTP

refused('an empty JSON pointer (the whole document)', <<'HTTP', 'invalid JSON pointer "" in "loyalty_field", expected for example "/cart/items"');
http { loyalty_field coupon ""; }
HTTP

refused('a field mapped twice at one level', <<'HTTP', 'field "coupon" is mapped twice');
http { loyalty_field coupon /promo; loyalty_field coupon /discount/code; }
HTTP

for my $p ('rows=5', 'body=17m', 'lines=0', 'lines=10001', 'depth=1',
           'depth=65', 'quantity=-1', 'amount=lots')
{
    refused("loyalty_cart_limits $p", <<"HTTP", "invalid parameter \"$p\" in \"loyalty_cart_limits\", expected body=SIZE (at most 16m), lines=N (at most 10000), quantity=N, amount=UNITS or depth=N (2 to 64)");
http { loyalty_cart_limits lines=5 $p; }
HTTP
}

refused('loyalty_point_value without loyalty_currency', <<'HTTP', '"loyalty_point_value" needs "loyalty_currency"');
http { loyalty_point_value 1.00 per 100; }
HTTP

for my $v ('1.00 for 100', '1.00 per 0', '1.00 per many') {
    refused("loyalty_point_value $v", <<"HTTP", 'invalid "loyalty_point_value", expected for example "loyalty_point_value 1.00 per 100;"');
http { loyalty_currency EUR; loyalty_point_value $v; }
HTTP
}

refused('a point value with more decimals than the currency', <<'HTTP', 'invalid amount "1.001" in "loyalty_point_value", expected a positive amount in EUR with at most 2 decimals');
http { loyalty_currency EUR; loyalty_point_value 1.001 per 100; }
HTTP

refused('a point value of zero', <<'HTTP', 'invalid amount "0" in "loyalty_point_value", expected a positive amount in EUR with at most 2 decimals');
http { loyalty_currency EUR; loyalty_point_value 0 per 100; }
HTTP

for my $c (qw(eur EURO E1R)) {
    refused("loyalty_currency $c", <<"HTTP", "invalid currency \"$c\", expected an ISO 4217 code such as EUR");
http { loyalty_currency $c; }
HTTP
}

for my $a ('ten per 10m', '10 per 0', '10 per soon', '10 every 10m',
           '0 per 10m')
{
    refused("loyalty_coupon_attempts $a", <<"HTTP", 'invalid "loyalty_coupon_attempts", expected for example "loyalty_coupon_attempts 10 per 10m;"');
http { loyalty_coupon_attempts $a; }
HTTP
}

refused('loyalty_mode dry-run', <<'HTTP', 'invalid value "dry-run"');
http { loyalty_mode dry-run; }
HTTP

refused('loyalty_admin without loyalty_admin_token', <<'HTTP',
http {
    loyalty_redis 127.0.0.1:6379;
    server {
        location /loyalty/admin/ {
            loyalty_admin;
        }
    }
}
HTTP
    '"loyalty_admin" in ' . $t->dir . '/nginx-t.conf:9 needs '
    . '"loyalty_admin_token"');

refused('an admin token of 15 characters', <<'HTTP', '"loyalty_admin_token" directive needs a token of at least 16 characters');
http { loyalty_admin_token 0123456789abcde; }
HTTP

for my $loc ('~ ^/loyalty/admin/', '= /loyalty/admin/', '@admin') {
    refused("loyalty_admin in location $loc", <<"HTTP", '"loyalty_admin" directive needs a prefix location such as "location /loyalty/admin/"');
http {
    loyalty_redis 127.0.0.1:6379;
    server {
        location $loc { loyalty_admin; loyalty_admin_token 0123456789abcdef; }
    }
}
HTTP
}

for my $prefix ('"X Loyalty-"', '""', 'X-Loyalty:') {
    refused("loyalty_header_prefix $prefix", <<"HTTP", '"loyalty_header_prefix" directive needs a header name prefix such as "X-Loyalty-"');
http { loyalty_header_prefix $prefix; }
HTTP
}

accepted('engagement bonuses with and without a cap', <<'HTTP');
http {
    loyalty_bonus review 50 max 3 per 1d;
    loyalty_bonus newsletter_signup 200;
}
HTTP

for my $case (
    [ 'a bonus type in capitals', 'Review 50',
      'expects a type of 1 to 32 lower-case letters' ],
    [ 'a bonus type of 33 bytes', ('a' x 33) . ' 50',
      'expects a type of 1 to 32 lower-case letters' ],
    [ 'a bonus of 0 points', 'review 0', 'expects whole points from 1' ],
    [ 'a bonus of fractional points', 'review 1.5',
      'expects whole points from 1' ],
    [ 'a cap without a period', 'review 50 max 3 a 1d',
      'expects for example "loyalty_bonus review 50 max 3 per 1d;"' ],
    [ 'a cap of 0', 'review 50 max 0 per 1d',
      'expects for example "loyalty_bonus review 50 max 3 per 1d;"' ],
    [ 'a cap over no time', 'review 50 max 1 per 0s',
      'expects for example "loyalty_bonus review 50 max 3 per 1d;"' ],
) {
    refused($case->[0], "http { loyalty_bonus $case->[1]; }\n",
            $case->[2]);
}

refused('the same bonus type twice', <<'HTTP', '"loyalty_bonus" directive is duplicate for this type');
http { loyalty_bonus review 50; loyalty_bonus review 60; }
HTTP

accepted('loyalty_metrics in a location', <<'HTTP');
http {
    loyalty_redis 127.0.0.1:6379;
    server { location = /metrics { allow 127.0.0.1; deny all; loyalty_metrics; } }
}
HTTP

refused('loyalty_metrics with an argument', <<'HTTP', 'invalid number of arguments in "loyalty_metrics" directive');
http {
    loyalty_redis 127.0.0.1:6379;
    server { location = /metrics { loyalty_metrics on; } }
}
HTTP

refused('loyalty_metrics twice in a location', <<'HTTP', '"loyalty_metrics" directive is duplicate');
http {
    loyalty_redis 127.0.0.1:6379;
    server { location = /metrics { loyalty_metrics; loyalty_metrics; } }
}
HTTP

refused('loyalty_metrics where loyalty_admin answers', <<'HTTP', '"loyalty_metrics" directive cannot share a location with another handler such as "loyalty_admin", "loyalty_health" or "proxy_pass"');
http {
    loyalty_redis 127.0.0.1:6379;
    server {
        location /loyalty/admin/ {
            loyalty_admin;
            loyalty_admin_token 0123456789abcdef;
            loyalty_metrics;
        }
    }
}
HTTP

refused('loyalty_metrics, then proxy_pass', <<'HTTP', '"loyalty_metrics" in ' . $t->dir . '/nginx-t.conf:9 cannot share a location with another handler such as "proxy_pass"');
http {
    loyalty_redis 127.0.0.1:6379;
    server {
        location = /metrics {
            loyalty_metrics;
            proxy_pass http://127.0.0.1:9;
        }
    }
}
HTTP

refused('loyalty_metrics at server level', <<'HTTP', '"loyalty_metrics" directive is not allowed here');
http { loyalty_redis 127.0.0.1:6379; server { loyalty_metrics; } }
HTTP

refused('loyalty_metrics without loyalty_redis', <<'HTTP',
http {
    server {
        location = /metrics {
            loyalty_metrics;
        }
    }
}
HTTP
    '"loyalty_metrics" in ' . $t->dir . '/nginx-t.conf:8 needs '
    . '"loyalty_redis" in the http block');

# Every directive of the module has its section in docs/directives.md.
{
    open my $fh, '<', 'ngx_loyalty_module/ngx_http_loyalty_module.c'
        or die "ngx_http_loyalty_module.c: $!";
    my @names = map { /ngx_string\("(loyalty_\w+)"\)/ ? $1 : () } <$fh>;

    open $fh, '<', 'docs/directives.md' or die "directives.md: $!";
    my %documented = map { /^### (loyalty_\w+)\s*$/ ? ($1 => 1) : () } <$fh>;

    cmp_ok(scalar @names, '>', 40, 'the directives table is read');
    is_deeply([ grep { !$documented{$_} } @names ], [],
              'every directive has a section in docs/directives.md');
}

done_testing();
