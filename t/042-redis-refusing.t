# Redis that answers but cannot serve (READONLY, BUSY, LOADING) or resets
# the connection: for the requests it is down.  Checkouts go on to the
# shop with the coupon and the redemption unverified, orders are confirmed
# and spooled, the health endpoint answers 503 with Redis's own words,
# the incident is logged once at error; when Redis serves again nginx
# reconnects by itself and the spool's replay credits every order once.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use Loyalty::Chaos;
use Loyalty::Redis;
use Loyalty::Shop;
use Loyalty::Test;

my $JSON = JSON::PP->new;

sub health {
    my ($t) = @_;

    return $t->http(GET => "http://127.0.0.1:$t->{health_port}/");
}

# $begin makes Redis refuse, $end lets it serve again; $code is the error
# Redis gives.
sub outage {
    my ($t, $code, $begin, $end) = @_;

    my $p = lc $code;
    my %result;

    create_coupon($t, code => "E$code", type => 'percent', value => '10');
    my $res = $t->http(POST => "/loyalty/admin/customers/$p-c/adjustments",
        body => $JSON->encode({ id => 'g', points => 1000, reason => 'test',
                                actor => 'test' }),
        headers => { 'Content-Type' => 'application/json',
                     Authorization => "Bearer $TOKEN" });
    is($res->{status}, 201, '1000 points to spend');

    $t->log_mark;
    $begin->();

    my @co = map {
        checkout($t, cart(coupon => "E$code", points => 100,
                          checkout_id => "$p-k$_",
                          lines => $Loyalty::Chaos::LINES),
                 customer => "$p-c")
    } 1 .. 3;
    my @or = map {
        $result{done}{$_} = { status => 0 };
        confirm($t, cart(order_id => "$p-o$_", checkout_id => "$p-c$_",
                         lines => $Loyalty::Chaos::LINES),
                customer => $p . ($_ % 20))
    } 1 .. 3;
    my $h = health($t);
    my $admin = $t->http(GET => "/loyalty/admin/customers/$p-c",
                         headers => { Authorization => "Bearer $TOKEN" });

    is_deeply([ map { "$_->{status} $_->{json}{coupon_status} "
                      . $_->{json}{points_status} } @co ],
              [ ('200 unverified unverified') x 3 ],
              'checkouts reach the shop: coupon and points unverified');
    is_deeply([ map { "$_->{status} $_->{headers}{'x-order-status'}" } @or ],
              [ ('201 spooled') x 3 ], 'orders confirmed, spooled');
    is("$admin->{status} " . ($admin->{json}{error} // ''),
       '503 redis_unavailable', 'the admin API: 503 redis_unavailable');
    is($h->{status}, 503, 'health: 503');
    like($h->{json}{redis}{last_error} // '', qr/^$code /,
         "with Redis's reason: $code ...");

    my ($rc, $out) = $t->run_worker('--once', '--spool', $t->dir . '/spool',
                                    '--timeout', 500);
    is($rc, 1, 'loyalty-worker --once: the pass fails');
    like($out, qr/\[error\].*$code/, "logged at error with $code")
        or diag($out);
    is(scalar spool_lines($t), 3, 'the spooled orders wait');

    $end->();

    ok($t->wait_ready(10), 'nginx reconnects by itself');

    # a loaded machine may miss a deadline just after: bounded retries
    my $ok;
    for (1 .. 10) {
        $ok = checkout($t, cart(coupon => "E$code", points => 100,
                                checkout_id => "$p-after",
                                lines => $Loyalty::Chaos::LINES),
                       customer => "$p-c");
        last if ($ok->{json}{coupon_status} // '') eq 'valid';
        $t->wait_ready(5);
    }
    is("$ok->{json}{coupon_status} $ok->{json}{points_status}", 'valid held',
       'then the coupon is valid and the points held');

    $result{done}{$_}{status} = $or[ $_ - 1 ]{status} for 1 .. 3;

    replay_spool($t);
    credited_once($t, { prefix => $p, orders => 3 }, \%result);
}

subtest 'READONLY: Redis turned into a replica' => sub {
    my $t = chaos_shop();
    my $r = $t->redis;

    outage($t, 'READONLY',
           sub { $r->cmd('REPLICAOF', '127.0.0.1',
                         Loyalty::Test::free_port()) },
           sub { $r->cmd('REPLICAOF', 'NO', 'ONE') });

    like($t->error_log, qr/\[error\].*loyalty: redis \S+ unavailable: READONLY/,
         'logged at error with the reason');
    is(scalar(() = $t->error_log =~ /unavailable: READONLY/g), 1,
       'once for the incident');

    $t->stop;
};

subtest 'BUSY: a script that runs too long, then SCRIPT KILL' => sub {
    my $t = chaos_shop();
    my $r = $t->redis;
    my $busy = Loyalty::Redis->new($t->redis_port);

    $r->cmd('CONFIG', 'SET', 'busy-reply-threshold', 50);

    outage($t, 'BUSY',
           sub {
               $busy->send('EVAL', 'while true do end', 0);
               sleep 0.1;
           },
           sub {
               $r->cmd('SCRIPT', 'KILL');
               my (undef, $err) = $busy->read_reply;
               like($err, qr/killed/i, 'the script is killed');
           });

    like($t->error_log, qr/\[error\].*loyalty: redis \S+ unavailable: BUSY/,
         'logged at error with the reason');

    $t->stop;
};

subtest 'LOADING: Redis restarted on a data set it is still loading' => sub {
    my $t = chaos_shop();
    my $r = $t->redis;

    outage($t, 'LOADING',
           sub {
               # 6000 keys at 1 ms each: 6 s of loading
               $r->cmd('DEBUG', 'POPULATE', 6000, 'filler', 100);
               $r->cmd('SAVE');
               $t->kill_redis;
               $t->{redis_args} = [ '--key-load-delay', 1000,
                   '--loading-process-events-interval-bytes', 1024 ];
               $t->start_redis;

               # nginx's next attempt to reconnect meets the loading
               my $deadline = time + 5;
               sleep 0.02 until time > $deadline
                   || (health($t)->{json}{redis}{last_error} // '')
                      =~ /^LOADING/;
           },
           sub {
               my $deadline = time + 30;
               my $redis = $t->redis;
               sleep 0.1 while time < $deadline
                   && ($redis->cmd_maybe('PING'))[1];
               delete $t->{redis_args};
           });

    $t->stop;
};

subtest 'a connection reset (RST) 3 times during 300 confirmations' => sub {
    my $t = chaos_shop();
    reset_fault($t, 300, 3);
    $t->stop;
};

done_testing();
