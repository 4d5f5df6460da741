package Loyalty::Bench;

# What bench/http.pl, bench/rss.pl and bench/cost.pl share: a shop with
# the module's locations and, beside each, a plain proxy_pass of the same
# request to the same backend; the data its requests need; wrk runs; the
# RSS of a process.  The servers are the test harness's (Loyalty::Test):
# redis-server and nginx on free loopback ports in a temporary directory,
# stopped by pid.

use strict;
use warnings;

use Exporter 'import';
use FindBin;
use Loyalty::Shop qw($TOKEN create_coupon);
use Loyalty::Test;

our @EXPORT = qw(backend_nginx bench_shop seed wrk_command wrk_run rss_kb
                 redis_cpu
                 median);

my $WRK_LUA = "$FindBin::Bin/wrk.lua";

# The scenarios: what wrk sends, to the module's path and the plain one.
our @SCENARIOS = (
    [ checkout => 'checkout, no coupon',    '/checkout', '/plain/checkout' ],
    [ coupon   => 'checkout, valid coupon', '/checkout', '/plain/checkout' ],
    [ points   => 'checkout, 500 points',   '/checkout', '/plain/checkout' ],
    [ confirm  => 'confirmation, accrual',  '/orders',   '/plain/orders' ],
    [ health   => 'health endpoint',  '/loyalty/health', '/plain/health' ],
);

# The stub shop backend (Loyalty::Shop's) in an nginx of its own, as a
# shop's backend is another process, or machine: the nginx measured does
# the front's work only.  Its module has no Redis and idles.
sub backend_nginx {
    my $b = Loyalty::Test->new(workers => 1);

    $b->{http_config} =
        '    map $arg_id $shop_order_id { "" $request_id; default $arg_id; }'
        . "\n";
    $b->{config} = "        access_log off;\n"
                   . Loyalty::Shop::backend($b->dir);
    mkdir $b->dir . '/static';

    return $b->start_nginx(wait => 0);
}

# A shop as a production configuration would have it: an upstream with
# keepalive connections, no access log (both locations alike), the
# checkout passing its verdict in headers, the confirmation earning 10
# points per 1.00.  %opt: workers, main (main-level directives), start
# (0: configured, not started), backend (the port of a backend_nginx; by
# default the harness's backend, a server block of the same nginx).
sub bench_shop {
    my (%opt) = @_;

    my $t = Loyalty::Test->new(workers => $opt{workers} // 1,
                               main_config => $opt{main} // '');
    my $dir = $t->dir;
    my $bp = $opt{backend} // $t->backend_port;

    mkdir "$dir/spool";
    chmod 0777, "$dir/spool";
    mkdir "$dir/static";

    $t->{backend} = "        access_log off;\n" . Loyalty::Shop::backend($dir);

    $t->{http_config} = <<"HTTP";
    loyalty_currency EUR;
    loyalty_point_value 1.00 per 100;
    loyalty_earn 10 per 1.00;
    loyalty_return_window 30d;
    loyalty_spool $dir/spool;

    map \$arg_id \$shop_order_id { "" \$request_id; default \$arg_id; }

    upstream shop {
        server 127.0.0.1:$bp;
        keepalive 64;
    }
HTTP

    $t->{config} = <<"CONF";
        access_log off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";

        location /checkout {
            loyalty_checkout on;
            loyalty_customer \$http_x_customer_id;
            # a location's own proxy_set_header replaces the server's:
            # without this line the upstream connections are not kept
            proxy_set_header Connection "";
            proxy_set_header X-Loyalty-Customer \$loyalty_customer;
            proxy_set_header X-Loyalty-Checkout-Id \$loyalty_checkout_id;
            proxy_set_header X-Loyalty-Coupon \$loyalty_coupon;
            proxy_set_header X-Loyalty-Coupon-Status \$loyalty_coupon_status;
            proxy_set_header X-Loyalty-Discount \$loyalty_discount;
            proxy_set_header X-Loyalty-Points-Status \$loyalty_points_status;
            proxy_set_header X-Loyalty-Points-Redeemed
                             \$loyalty_points_redeemed;
            proxy_set_header X-Loyalty-Redeem-Value \$loyalty_redeem_value;
            proxy_pass http://shop;
        }

        location /orders {
            loyalty_order_confirm on;
            loyalty_customer \$http_x_customer_id;
            add_header X-Order-Status \$loyalty_order_status always;
            add_header X-Points-Earned \$loyalty_points_earned always;
            proxy_pass http://shop;
        }

        location = /loyalty/health {
            loyalty_health;
        }

        # the same requests without loyalty: /plain/checkout reaches the
        # backend as /checkout
        location /plain/ {
            proxy_pass http://shop/;
        }

        location = /nginx-status {
            stub_status;
        }

        location /loyalty/admin/ {
            loyalty_admin;
            loyalty_admin_token $TOKEN;
        }
CONF

    $t->start if $opt{start} // 1;

    return $t;
}

# The coupon and the customers the scenarios use: BENCH10 (10%, limited
# uses, so each checkout reserves one) and customers b1 .. bN with a
# balance no run exhausts.
sub seed {
    my ($t, $users) = @_;

    create_coupon($t, code => 'BENCH10', type => 'percent', value => '10',
                  max_uses => 100_000_000);

    my $r = $t->redis;

    for (my $c = 1; $c <= $users; $c += 1000) {
        my $last = $c + 999 > $users ? $users : $c + 999;
        $r->pipeline(map { [ 'HSET', "loyalty:{customer:b$_}",
                             a => 1_000_000_000 ] } $c .. $last);
    }
}

# The environment and command of a wrk run; %opt: kind, path, seconds,
# connections, delay (ms), users, run (id prefix).
sub wrk_command {
    my ($t, %opt) = @_;

    my %env = (BENCH_KIND => $opt{kind}, BENCH_PATH => $opt{path},
               BENCH_RUN => $opt{run}, BENCH_USERS => $opt{users} // 1000,
               BENCH_DELAY => $opt{delay} // 0);
    my @cmd = ('wrk', '-t1', "-c$opt{connections}", "-d$opt{seconds}s",
               '--timeout', '5s', '-s', $WRK_LUA, $t->url($opt{path}));

    return (\%env, @cmd);
}

# One wrk run, %opt as for wrk_command.  Returns { rps, p50, p99 (ms),
# requests, non2xx, errors }.
sub wrk_run {
    my ($t, %opt) = @_;

    my ($env, @cmd) = wrk_command($t, %opt);
    local @ENV{ keys %$env } = values %$env;

    open my $fh, '-|', @cmd or die "wrk: $!";
    my $out = do { local $/; <$fh> };
    close $fh;

    my ($n, $secs, $p50, $p99, $non2xx, $errors) =
        $out =~ /^BENCH (\d+) ([\d.]+) (\d+) (\d+) (\d+) (\d+)$/m
        or die "wrk: no result from @cmd:\n$out";

    return { requests => $n, rps => $n / $secs, p50 => $p50 / 1000,
             p99 => $p99 / 1000, non2xx => $non2xx, errors => $errors };
}

# Resident set of a process, in kB.
sub rss_kb {
    my ($pid) = @_;

    open my $fh, '<', "/proc/$pid/status" or return 0;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)/;
    }

    return 0;
}

# CPU seconds, user and system, of Redis's main thread: the one that runs
# the commands and answers the clients (the process's total counts its
# background threads too).
sub redis_cpu {
    my ($redis) = @_;

    my $cpu = 0;

    $cpu += $_ for $redis->cmd('INFO', 'cpu')
                   =~ /^used_cpu_(?:user|sys)_main_thread:([\d.]+)/mg;
    return $cpu;
}

sub median {
    my @v = sort { $a <=> $b } @_;

    return 0 unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

1;
