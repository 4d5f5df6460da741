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

done_testing();
