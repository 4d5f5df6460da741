# loyalty_metrics: the module's counters, shared by every worker process,
# and the program's figures read from Redis, in the Prometheus text format.
# The text parses by the format's rules, each counter moves by exactly what
# was done, Redis failures are counted by kind while the counters are still
# served, and the program's figures are those of GET /program/metrics.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use Loyalty::Shop;
use Loyalty::Test;

my $JSON = JSON::PP->new->canonical;

my $t = shop(
    workers  => 2,
    http     => "    loyalty_earn 10 per 1.00;\n",
    checkout => '            add_header X-Worker $pid always;',
    confirm  => '',
    config   => <<'CONF');
        location = /metrics {
            allow 127.0.0.1;
            deny all;
            add_header X-Worker $pid always;
            loyalty_metrics;
        }
CONF

my $SPOOL = $t->dir . '/spool';

# --- the format ---------------------------------------------------------

# The text by the rules of the format (0.0.4): every line a HELP, a TYPE or
# a sample "name{label="value",...} value"; each family's HELP and TYPE
# once, before its samples, which are together; no sample twice; counters
# named _total; histogram buckets cumulative up to +Inf, equal to _count.
# Returns { errors => [...], type => { family => type }, samples =>
# { 'name{a="x",b="y"}' => value } }.
sub parse {
    my ($text) = @_;

    my $NAME = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
    my $LABEL = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
    my $VALUE = qr/[-+]?(?:[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|Inf)|NaN/;

    my (@errors, %help, %type, %samples, %done, $family);
    my $err = sub { push @errors, @_ };

    $err->('the text does not end with a newline') unless $text =~ /\n\z/;

    for my $line (split /\n/, $text) {
        if ($line =~ /^# HELP ($NAME) (\S.*)$/) {
            $err->("HELP of $1 twice") if $help{$1}++;
            $err->("HELP of $1 after its samples") if $done{$1};
            $done{$family} = 1 if defined $family && $family ne $1;
            $family = $1;
            next;
        }

        if ($line =~ /^# TYPE ($NAME) (counter|gauge|histogram|untyped)$/) {
            $err->("TYPE of $1 twice") if $type{$1};
            $err->("TYPE of $1 after its samples") if $done{$1};
            $done{$family} = 1 if defined $family && $family ne $1;
            $type{$1} = $2;
            $family = $1;
            next;
        }

        if ($line =~ /^($NAME)(?:\{(.*)\})? ($VALUE)$/) {
            my ($name, $labels, $value) = ($1, $2 // '', $3);
            my %l;

            my $pair = qr/\G($LABEL)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)/;
            while ($labels =~ /$pair/gc) {
                $err->("label $1 twice in: $line") if exists $l{$1};
                $l{$1} = $2;
            }
            $err->("bad labels in: $line")
                unless (pos($labels) // 0) == length $labels;

            my $f = $name;
            if (!$type{$f} && $name =~ /^(.*)_(bucket|sum|count)$/
                && ($type{$1} // '') eq 'histogram')
            {
                $f = $1;
            }

            $err->("$name has no TYPE") unless $type{$f};
            $err->("$name has no HELP") unless $help{$f};
            $err->("$name is not with its family")
                unless defined $family && $family eq $f;

            my $key = $name . (%l ? '{' . join(',', map { "$_=\"$l{$_}\"" }
                                                     sort keys %l) . '}'
                                  : '');
            $err->("$key twice") if exists $samples{$key};
            $samples{$key} = $value;
            next;
        }

        $err->("not a line of the format: '$line'");
    }

    for my $f (sort keys %type) {
        $err->("counter $f is not named _total")
            if $type{$f} eq 'counter' && $f !~ /_total$/;
        $err->("$f has no HELP") unless $help{$f};

        next unless $type{$f} eq 'histogram';

        my @buckets = map { [ /le="([^"]+)"/, $samples{$_} ] }
                      grep { /^\Q$f\E_bucket\{/ } keys %samples;
        @buckets = sort { num($a->[0]) <=> num($b->[0]) } @buckets;

        $err->("$f: the last bucket is not +Inf")
            unless @buckets && $buckets[-1][0] eq '+Inf';
        for my $i (1 .. $#buckets) {
            $err->("$f: bucket le=$buckets[$i][0] is below the one before")
                if $buckets[$i][1] < $buckets[$i - 1][1];
        }
        $err->("$f: +Inf is not _count")
            unless @buckets && defined $samples{"${f}_count"}
                   && $buckets[-1][1] == $samples{"${f}_count"};
        $err->("$f: no _sum") unless defined $samples{"${f}_sum"};
    }

    return { errors => \@errors, type => \%type, samples => \%samples };
}

sub num { $_[0] eq '+Inf' ? 9**9**9 : $_[0] }

# A scrape, checked against the format; with the worker that answered.
sub scrape {
    my ($name) = @_;

    my $res = $t->http(GET => '/metrics');
    is($res->{status}, 200, "$name: /metrics answers 200")
        or diag($res->{body});
    is($res->{headers}{'content-type'},
       'text/plain; version=0.0.4; charset=utf-8', "$name: the format's type");

    my $m = parse($res->{body});
    is_deeply($m->{errors}, [], "$name: the text parses strictly")
        or diag($res->{body});
    $m->{worker} = $res->{headers}{'x-worker'};

    return $m;
}

# A sample's value: val($m, 'name', label => 'value', ...); undef if absent.
sub val {
    my ($m, $name, %l) = @_;

    my $key = $name . (%l ? '{' . join(',', map { "$_=\"$l{$_}\"" }
                                             sort keys %l) . '}' : '');

    return $m->{samples}{$key};
}

# The counters the requests move, and by how much they moved between two
# scrapes: every sample of these families, 0 when it did not move.
my @COUNTED = qw(loyalty_checkouts_total loyalty_checkouts_refused_total
                 loyalty_checkout_coupons_total
                 loyalty_coupon_reserve_calls_total
                 loyalty_checkout_redemptions_total
                 loyalty_confirmations_total loyalty_accruals_total
                 loyalty_accrued_points_total loyalty_spool_writes_total);

sub moved {
    my ($before, $after) = @_;

    my %d;

    for my $key (keys %{ $after->{samples} }) {
        my ($name) = $key =~ /^([^{]+)/;
        next unless grep { $_ eq $name } @COUNTED;
        $d{$key} = $after->{samples}{$key} - ($before->{samples}{$key} // 0);
    }

    return \%d;
}

# What moved() should say: the named samples by so much, all others 0.
sub expect {
    my ($before, %want) = @_;

    my %d = map { $_ => 0 } grep { my ($n) = /^([^{]+)/;
                                   grep { $_ eq $n } @COUNTED }
                            keys %{ $before->{samples} };
    %d = (%d, %want);

    return \%d;
}

# Until every worker reads Redis again (the harness's wait_ready asks
# one): each has answered a scrape with loyalty_redis_up 1 since its last 0.
sub wait_up {
    my %up;
    my $deadline = time + 10;

    while (time < $deadline) {
        for my $res ($t->parallel(4, GET => '/metrics')) {
            my ($v) = $res->{body} =~ /^loyalty_redis_up (\d)$/m;
            $up{ $res->{headers}{'x-worker'} // '' } = $v;
        }
        return 1 if (grep { $_ } values %up) == 2 && keys %up == 2;
        sleep 0.05;
    }

    return 0;
}

sub admin { admin_request($t, @_) }

# --- the tests ----------------------------------------------------------

subtest 'an idle shop: every family, at zero, with its program figures' => sub {
    my $m = scrape('idle');

    for my $f (@COUNTED, qw(loyalty_spool_written_bytes_total
                            loyalty_redis_errors_total
                            loyalty_redis_round_trip_seconds loyalty_redis_up
                            loyalty_program_points loyalty_program_liability
                            loyalty_program_points_issued_total
                            loyalty_program_orders_total
                            loyalty_spool_replayed_total))
    {
        ok($m->{type}{$f}, "$f is there");
    }

    is(val($m, 'loyalty_checkouts_total'), 0, 'no checkout yet');
    is(val($m, 'loyalty_checkout_coupons_total', status => 'expired'), 0,
       'each coupon status from 0');
    is(val($m, 'loyalty_confirmations_total', status => 'spooled'), 0,
       'each confirmation outcome from 0');
    # (a first connection may have missed its deadline under memcheck)
    ok(defined val($m, 'loyalty_redis_errors_total', kind => $_),
       "Redis failures of kind $_") for qw(connect timeout error_reply
                                             protocol disconnect);
    is(val($m, 'loyalty_redis_up'), 1, 'Redis is up');
    is($m->{type}{loyalty_redis_round_trip_seconds}, 'histogram',
       'the round trip is a histogram');
    ok(!defined val($m, 'loyalty_program_redemption_ratio'),
       'no redemption ratio before a point is issued');
};

subtest 'GET and HEAD only' => sub {
    my $res = $t->http(POST => '/metrics', body => 'x');
    is($res->{status}, 405, 'POST: 405');
    is($res->{headers}{allow}, 'GET, HEAD', 'Allow says what is');
    is($res->{json}{error}, 'method_not_allowed', 'a JSON error');

    $res = $t->http(HEAD => '/metrics');
    is($res->{status}, 200, 'HEAD: 200');
    is($res->{body}, '', 'without a body');
};

subtest 'checkouts: each verdict counted once, whoever answers' => sub {
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');
    is(admin(POST => 'customers/p-1/adjustments',
             { id => 'seed', points => 500, reason => 'welcome',
               actor => 'test' })->{status}, 201, '500 points for p-1');

    my $before = scrape('before the checkouts');

    is(checkout($t, cart(checkout_id => 'c-1', coupon => 'save10'))
           ->{json}{coupon_status}, 'valid', 'a valid coupon');
    is(checkout($t, cart(checkout_id => 'c-2', coupon => 'NOPE'))
           ->{json}{coupon_status}, 'not_found', 'an unknown one');
    is(checkout($t, cart(checkout_id => 'c-3', points => 100))
           ->{json}{points_status}, 'insufficient', 'points 42 lacks');
    is(checkout($t, cart(checkout_id => 'c-4', points => 100),
                customer => 'p-1')->{json}{points_status}, 'held',
       'points p-1 has');
    is(checkout($t, '{"not json')->{status}, 400, 'bad input: refused');

    # many at once, so that both workers take some
    my %workers;
    my $n = 0;
    for my $round (1 .. 5) {
        my @res = $t->parallel(20, POST => '/checkout',
            headers => { 'Content-Type' => 'application/json',
                         'X-Customer-Id' => '42' },
            body => sub { cart(checkout_id => "p-$round-$_[0]") });
        $n += 20;
        is(scalar(grep { $_->{status} == 200 } @res), 20,
           "round $round: 20 checkouts through");
        $workers{ $_->{headers}{'x-worker'} // '' }++ for @res;
        last if keys %workers >= 2;
    }
    cmp_ok(scalar keys %workers, '>=', 2,
           'the checkouts were shared by both workers');

    my $after = scrape('after the checkouts');
    is_deeply(moved($before, $after), expect($before,
        'loyalty_checkouts_total' => 5 + $n,
        'loyalty_checkouts_refused_total' => 1,
        'loyalty_checkout_coupons_total{status="valid"}' => 1,
        'loyalty_checkout_coupons_total{status="not_found"}' => 1,
        # SAVE10 twice: the first gets the definition, the second reserves
        'loyalty_coupon_reserve_calls_total' => 3,
        'loyalty_checkout_redemptions_total{status="insufficient"}' => 1,
        'loyalty_checkout_redemptions_total{status="held"}' => 1),
        'exactly these counters moved, by exactly that much');

    # every worker reports what all of them counted
    my %seen;
    for my $round (1 .. 5) {
        for my $res ($t->parallel(8, GET => '/metrics')) {
            my $m = parse($res->{body});
            $seen{ $res->{headers}{'x-worker'} }
                = val($m, 'loyalty_checkouts_total');
        }
        last if keys %seen >= 2;
    }
    cmp_ok(scalar keys %seen, '>=', 2, 'scraped from both workers');
    is_deeply([ sort { $a <=> $b } values %seen ],
              [ (val($after, 'loyalty_checkouts_total')) x keys %seen ],
              'each says the same count');
};

my $earned;

subtest 'confirmations: each outcome counted once' => sub {
    my $before = scrape('before the confirmations');

    my $res = confirm($t, cart(order_id => 'o-1', checkout_id => 'c-1',
                               coupon => 'SAVE10'));
    is($res->{headers}{'x-order-status'}, 'recorded', 'o-1 recorded');
    $earned = $res->{headers}{'x-points-earned'};
    cmp_ok($earned, '>', 0, "it earns $earned points");

    is(confirm($t, cart(order_id => 'o-1', checkout_id => 'c-1',
                        coupon => 'SAVE10'))->{headers}{'x-order-status'},
       'replayed', 'o-1 again: replayed');
    is(confirm($t, cart(order_id => 'o-1', checkout_id => 'c-1'),
               customer => '43')->{headers}{'x-order-status'},
       'conflict', 'o-1 from another customer: conflict');
    is(confirm($t, cart(order_id => 'o-2', checkout_id => 'c-2'),
               customer => undef)->{headers}{'x-order-status'},
       'guest', 'o-2 of a guest');
    is(confirm($t, cart(order_id => 'o-3', checkout_id => 'c-3'),
               path => '/orders/reject')->{headers}{'x-order-status'},
       'refused', 'o-3 the shop refused');
    is(confirm($t, cart(checkout_id => 'c-5'))->{headers}{'x-order-status'},
       'invalid', 'an order without an id: invalid');
    $res = confirm($t, cart(order_id => 'o-4', checkout_id => 'c-4',
                            points => 100), customer => 'p-1');
    is($res->{headers}{'x-order-status'}, 'recorded',
       'o-4 of p-1, with the 100 points held');
    $earned += $res->{headers}{'x-points-earned'};

    my $after = scrape('after the confirmations');
    is_deeply(moved($before, $after), expect($before,
        'loyalty_confirmations_total{status="recorded"}' => 2,
        'loyalty_confirmations_total{status="replayed"}' => 1,
        'loyalty_confirmations_total{status="conflict"}' => 1,
        'loyalty_confirmations_total{status="guest"}' => 1,
        'loyalty_confirmations_total{status="refused"}' => 1,
        'loyalty_confirmations_total{status="invalid"}' => 1,
        'loyalty_accruals_total' => 2,
        'loyalty_accrued_points_total' => $earned),
        'exactly these counters moved, by exactly that much');
};

subtest 'the program figures are those of GET /program/metrics' => sub {
    my ($m, $j);

    # the totals move after the changes, not waited for
    $t->quiet_redis;

    for (1 .. 50) {
        $m = scrape('program');
        $j = admin(GET => 'program/metrics')->{json};
        last if val($m, 'loyalty_program_points', state => 'pending')
                    == $j->{points}{pending}
                && val($m, 'loyalty_program_orders_total',
                       customer => 'guest') == $j->{orders}{guests}{count}
                && val($m, 'loyalty_program_points_redeemed_total')
                       == $j->{points}{redeemed};
        sleep 0.05;
    }

    for my $state (qw(available pending)) {
        is(val($m, 'loyalty_program_points', state => $state),
           $j->{points}{$state}, "points $state");
        is(val($m, 'loyalty_program_liability', currency => 'EUR',
               state => $state), $j->{liability}{$state},
           "liability $state, to the cent");
    }

    for my $moved (qw(issued redeemed expired returned adjusted)) {
        is(val($m, "loyalty_program_points_${moved}_total"),
           $j->{points}{$moved}, "points $moved");
    }

    for my $who ([ member => 'members' ], [ guest => 'guests' ]) {
        is(val($m, 'loyalty_program_orders_total', customer => $who->[0]),
           $j->{orders}{ $who->[1] }{count}, "orders of $who->[1]");
        is(val($m, 'loyalty_program_order_value_total', currency => 'EUR',
               customer => $who->[0]),
           $j->{orders}{ $who->[1] }{value}, "their value");
    }

    is(val($m, 'loyalty_program_customers'), $j->{customers}, 'customers');
    is(val($m, 'loyalty_program_repeat_customers'), $j->{repeat_customers},
       'repeat customers');
    ok(abs(val($m, 'loyalty_program_redemption_ratio')
           - $j->{redemption_rate}) < 1e-9,
       'the redemption ratio')
        or diag(val($m, 'loyalty_program_redemption_ratio')
                . " vs $j->{redemption_rate}");
    ok(abs(val($m, 'loyalty_program_repeat_purchase_ratio')
           - $j->{repeat_purchase_rate}) < 1e-9, 'the repeat purchase ratio');
    cmp_ok($j->{points}{redeemed}, '>', 0, 'points were redeemed');
    is_deeply([ $j->{orders}{members}{count}, $j->{orders}{guests}{count} ],
              [ 2, 1 ], 'two member orders and a guest one');
};

subtest 'Redis down: the counters still, redis_up 0, failures by kind' => sub {
    my $before = scrape('before Redis stops');

    $t->stop_redis;

    is(checkout($t, cart(checkout_id => 'c-9', coupon => 'SAVE10'))
           ->{json}{coupon_status}, 'unverified', 'a coupon unverified');
    is(confirm($t, cart(order_id => 'o-9', checkout_id => 'c-9'))
           ->{headers}{'x-order-status'}, 'spooled', 'an order spooled');

    # the workers retry with a backoff: a failed connect is counted soon
    my $m;
    for (1 .. 40) {
        $m = scrape('Redis down');
        last if val($m, 'loyalty_redis_errors_total', kind => 'connect')
                > val($before, 'loyalty_redis_errors_total',
                      kind => 'connect');
        sleep 0.05;
    }

    is(val($m, 'loyalty_redis_up'), 0, 'loyalty_redis_up 0');
    ok(!(grep { /^loyalty_program_|^loyalty_spool_re/ } keys %{ $m->{type} }),
       'the figures from Redis are left out');
    cmp_ok(val($m, 'loyalty_redis_errors_total', kind => 'disconnect'), '>',
           val($before, 'loyalty_redis_errors_total', kind => 'disconnect'),
           'the lost connections are counted');
    cmp_ok(val($m, 'loyalty_redis_errors_total', kind => 'connect'), '>',
           val($before, 'loyalty_redis_errors_total', kind => 'connect'),
           'and the connects that fail');

    is_deeply(moved($before, $m), expect($before,
        'loyalty_checkouts_total' => 1,
        'loyalty_checkout_coupons_total{status="unverified"}' => 1,
        'loyalty_confirmations_total{status="spooled"}' => 1,
        'loyalty_spool_writes_total{result="ok"}' => 1),
        'exactly these counters moved, by exactly that much');
    cmp_ok(val($m, 'loyalty_spool_written_bytes_total'), '>',
           val($before, 'loyalty_spool_written_bytes_total'),
           'the spool grew');
};

subtest 'Redis late: a timeout is counted' => sub {
    $t->start_redis;
    ok(wait_up(), 'Redis is back for both workers');

    my $before = scrape('before Redis stalls');

    $t->pause_redis;
    is(checkout($t, cart(checkout_id => 'c-10', coupon => 'SAVE10'))
           ->{json}{coupon_status}, 'unverified',
       'a coupon unverified after the deadline');
    my $m = scrape('Redis stalled');
    $t->resume_redis;

    cmp_ok(val($m, 'loyalty_redis_errors_total', kind => 'timeout'), '>',
           val($before, 'loyalty_redis_errors_total', kind => 'timeout'),
           'the timeout is counted');
    is(val($m, 'loyalty_redis_up'), 0, 'that scrape could not read Redis');

    ok(wait_up(), 'Redis answers both workers again');
};

subtest 'the worker replays the spool and counts it in Redis' => sub {
    my ($rc, $out) = $t->run_worker('--once', '--spool', $SPOOL);
    is($rc, 0, 'the worker replayed the spool') or diag($out);

    my $m = scrape('after the replay');
    is(val($m, 'loyalty_redis_up'), 1, 'Redis is up');
    is(val($m, 'loyalty_spool_replayed_total'), 1, 'one order replayed');
    is(val($m, 'loyalty_spool_rejected_total'), 0, 'none set aside');
    is($t->redis->cmd('HGET', 'loyalty:{stats}:ops', 'spool_replayed'), 1,
       'counted in loyalty:{stats}:ops');
};

subtest 'an error reply is counted, and the counters still served' => sub {
    my $before = scrape('before');

    $t->redis->cmd('SET', 'loyalty:{stats}:ops', 'not a hash');
    my $m = scrape('Redis answers with an error');
    $t->redis->cmd('DEL', 'loyalty:{stats}:ops');

    is(val($m, 'loyalty_redis_errors_total', kind => 'error_reply')
       - val($before, 'loyalty_redis_errors_total', kind => 'error_reply'),
       1, 'the WRONGTYPE reply is counted once');
    is(val($m, 'loyalty_redis_up'), 0, 'loyalty_redis_up 0');
    is(val($m, 'loyalty_checkouts_total'),
       val($before, 'loyalty_checkouts_total'), 'the counters are there');

    is(val(scrape('after'), 'loyalty_redis_up'), 1, 'and 1 again');
};

subtest 'round trips are observed' => sub {
    my $m = scrape('round trips');
    cmp_ok(val($m, 'loyalty_redis_round_trip_seconds_count'), '>', 20,
           'every reply counted');
    cmp_ok(val($m, 'loyalty_redis_round_trip_seconds_sum'), '>', 0,
           'their time summed');
};

subtest 'a reload keeps the counts' => sub {
    my $before = scrape('before the reload');
    my %old = map { $_ => 1 } $t->worker_pids;

    $t->reload_nginx;

    my $m;
    my $deadline = time + 10;
    while (!$m && time < $deadline) {
        my $res = $t->http(GET => '/metrics');
        $m = parse($res->{body}) unless $old{ $res->{headers}{'x-worker'}
                                              // 0 };
        sleep 0.1;
    }

    ok($m, 'a worker of the new configuration answers');
    is(val($m, 'loyalty_checkouts_total'),
       val($before, 'loyalty_checkouts_total'),
       'a new worker reports the counts of before');
};

$t->check_error_log;
$t->stop;

done_testing;
