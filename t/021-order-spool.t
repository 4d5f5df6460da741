# Never lose an accrual: what Redis does not take goes to the spool, and
# loyalty-worker replays it, exactly once in effect.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use Loyalty::Test;

my $JSON = JSON::PP->new->canonical;

sub shop {
    my (%opt) = @_;

    my $t = Loyalty::Test->new(workers => $opt{workers} // 1);
    my $spool = $t->dir . '/spool';

    mkdir $spool;
    chmod 0777, $spool;

    $t->{spool} = $spool;
    $t->{http_config} = <<"HTTP";
    loyalty_currency EUR;
    loyalty_earn 10 per 1.00;
    loyalty_spool $spool;
    loyalty_redis_timeout 200ms;
HTTP
    $t->{backend} = <<'BACKEND';
        default_type application/json;
        location / { return 201 '{"shop":"confirmed"}'; }
BACKEND
    $t->{config} = <<"CONFIG";
        location /orders {
            loyalty_order_confirm on;
            loyalty_customer \$http_x_customer_id;
            add_header X-Order-Status \$loyalty_order_status always;
            add_header X-Points \$loyalty_points_earned always;
            proxy_pass http://127.0.0.1:$t->{backend_port};
        }
CONFIG

    return $t->start;
}

sub order {
    my ($i) = @_;

    return $JSON->encode({
        order_id => "o-$i", checkout_id => "c-$i", currency => 'EUR',
        lines => [ { sku => 'A', price => '12.34', quantity => 1 } ],
    });
}

# Waits until the nginx worker has no command waiting on Redis (the
# health endpoint's in_flight, counted before its own).
sub settled {
    my ($t) = @_;

    my $url = "http://127.0.0.1:$t->{health_port}/";
    my $deadline = time + 5;

    while (time < $deadline) {
        my $res = Loyalty::Test::http_request('GET', $url, {});
        my $n = $res->{json} ? $res->{json}{redis}{in_flight} : undef;
        return 1 if defined $n && $n == 0;
        sleep 0.02;
    }

    return 0;
}

sub spool_lines {
    my ($t) = @_;

    my @lines;

    for my $f (glob "$t->{spool}/orders.*") {
        open my $fh, '<', $f or next;
        local $/;
        push @lines, split /(?<=\n)/, <$fh>;
    }

    return @lines;
}

sub accruals {
    my ($t, $customer) = @_;

    my %h = @{ $t->redis->cmd('HGETALL', "loyalty:{customer:$customer}") };
    return { map { $_ => $h{$_} } grep { /^o:/ } keys %h };
}

subtest 'Redis stopped during 200 confirmations: all spooled, then '
        . 'replayed exactly once' => sub {
    my $t = shop();

    $t->stop_redis;

    my @res = $t->parallel(200, POST => '/orders',
        headers => { 'Content-Type' => 'application/json',
                     'X-Customer-Id' => '42' },
        body => sub { order($_[0]) });

    is(scalar(grep { $_->{status} == 201 } @res), 200,
       'every order was confirmed to the shopper');
    is(scalar(grep { ($_->{headers}{'x-order-status'} // '') eq 'spooled' }
              @res), 200, 'every one reported as spooled');
    is(scalar(grep { ($_->{headers}{'x-points'} // '') eq '123' } @res), 200,
       'each with the points it earns (12.34 at 10 per 1.00)');

    my @lines = spool_lines($t);
    is(scalar @lines, 200, '200 lines in the spool');
    is(scalar(grep { /\n\z/ && eval { $JSON->decode($_) } } @lines), 200,
       'every line a whole JSON record');

    $t->start_redis;

    my ($rc, $out) = $t->run_worker('--once', '--spool', $t->{spool});
    is($rc, 0, 'the worker replayed the spool') or diag($out);

    my $a = accruals($t, 42);
    is(scalar keys %$a, 200, '200 accruals');
    is(scalar(grep { /^P\|123\|/ } values %$a), 200,
       'each pending with its 123 points');
    is($t->redis->cmd('HGET', 'loyalty:{customer:42}', 'p'), 200 * 123,
       'the pending total is exact');
    is($t->redis->cmd('HGET', 'loyalty:{customer:42}', 'n'), 200,
       'and 200 orders counted');
    is($t->redis->cmd('XLEN', 'loyalty:{events}'), 200,
       'one points_earned event per order');
    is(scalar spool_lines($t), 0, 'the spool is empty');

    my @dues = sort map { (split /\|/)[2] } values %{ accruals($t, 42) };
    my $first = $dues[0];
    my @visits = map { @{ $t->redis->cmd('ZRANGE', $_, 0, -1, 'WITHSCORES') } }
                 @{ $t->redis->cmd('KEYS', 'loyalty:{due:*}') };
    is(scalar @visits, 2, "one entry in the worker's schedule");
    ok($visits[0] eq '42' && $visits[1] <= $first,
       'customer 42, visited by the first due date')
        or diag("@visits, first due $first");

    $t->stop;
};

subtest 'Redis that misses its deadline: answered as spooled at once; '
        . 'what Redis did late and the replay add up to once' => sub {
    my $t = shop();

    # warm: the connection is up and the scripts are loaded; on a loaded
    # machine the first try may miss its 200 ms deadline (spooled): the
    # same order again until Redis has it (idempotent, replayed later too)
    my $res;
    for (1 .. 20) {
        $res = $t->http(POST => '/orders', body => order(0),
                        headers => { 'Content-Type' => 'application/json',
                                     'X-Customer-Id' => '9' });
        last if $res->{headers}{'x-order-status'} =~ /^(recorded|replayed)$/;
        $t->wait_ready(5);
    }
    like($res->{headers}{'x-order-status'}, qr/^(recorded|replayed)$/,
         'order 0 recorded');

    # its event is written after the answer: let it land before the pause
    my $deadline = time + 10;
    sleep 0.01 until time > $deadline
        || $t->redis->cmd('XLEN', 'loyalty:{events}') == 1;

    # the writes that follow its answer (program totals, leaderboard) are
    # done before Redis stops: on a busy machine they could still be on
    # their way and be spooled as an eleventh line
    ok(settled($t), 'nothing of order 0 still waits on Redis');

    $t->pause_redis;

    my @res = $t->parallel(10, POST => '/orders',
        headers => { 'Content-Type' => 'application/json',
                     'X-Customer-Id' => '9' },
        body => sub { order($_[0] + 1) });

    # no timing: answered at all while Redis is stopped is the deadline
    open my $stat, '<', "/proc/$t->{redis_pid}/stat" or die $!;
    like(scalar <$stat>, qr/^\d+ \(.*\) T /,
         'answered while Redis is still stopped: at the deadline, not when '
         . 'Redis wakes');
    close $stat;

    is(scalar(grep { $_->{status} == 201
                     && $_->{headers}{'x-order-status'} eq 'spooled' } @res),
       10, 'all 10 confirmed to the shopper, reported as spooled');
    cmp_ok(scalar spool_lines($t), '>=', 10,
           '10 lines in the spool (and order 0 when its first try missed)');

    # Redis wakes and runs what it had already received
    $t->resume_redis;
    ok($t->wait_ready(10), 'Redis answers again');

    my ($rc, $out) = $t->run_worker('--once', '--spool', $t->{spool});
    is($rc, 0, 'the worker replayed the spool') or diag($out);

    my $a = accruals($t, 9);
    is(scalar keys %$a, 11, '11 accruals, each once');
    is($t->redis->cmd('HGET', 'loyalty:{customer:9}', 'p'), 11 * 123,
       'the pending total counts each order once');
    is($t->redis->cmd('HGET', 'loyalty:{customer:9}', 'n'), 11,
       'and 11 orders');
    is($t->redis->cmd('XLEN', 'loyalty:{events}'), 11, 'one event each');

    $t->stop;
};

subtest 'replaying the same lines twice changes nothing more' => sub {
    my $t = shop();

    $t->stop_redis;
    $t->parallel(20, POST => '/orders',
        headers => { 'Content-Type' => 'application/json',
                     'X-Customer-Id' => '7' },
        body => sub { order($_[0]) });

    my @lines = spool_lines($t);
    $t->start_redis;

    $t->run_worker('--once', '--spool', $t->{spool});
    my $first = { @{ $t->redis->cmd('HGETALL', 'loyalty:{customer:7}') } };

    # the same records again, as if a replay had been cut off and retried
    open my $fh, '>', "$t->{spool}/orders.1.log" or die $!;
    print $fh @lines;
    close $fh;

    my ($rc) = $t->run_worker('--once', '--spool', $t->{spool});
    is($rc, 0, 'replayed again');

    is_deeply({ @{ $t->redis->cmd('HGETALL', 'loyalty:{customer:7}') } },
              $first, 'the account is exactly as after the first replay');
    is($t->redis->cmd('XLEN', 'loyalty:{events}'), 20,
       'and no event was sent twice');

    $t->stop;
};

subtest 'a line that is not a record is set aside, the others replayed' =>
sub {
    my $t = shop();

    $t->stop_redis;
    $t->parallel(3, POST => '/orders',
        headers => { 'Content-Type' => 'application/json',
                     'X-Customer-Id' => '9' },
        body => sub { order($_[0]) });
    $t->start_redis;

    my ($file) = glob "$t->{spool}/orders.*.log";
    open my $fh, '>>', $file or die $!;
    print $fh "{\"v\":1,\"broken\n";
    close $fh;

    my ($rc, $out) = $t->run_worker('--once', '--spool', $t->{spool});
    is($rc, 0, 'the pass succeeded');
    like($out, qr/\[error\].*a spooled line is not a spool record; set aside/,
         'the bad line is reported');
    is(scalar keys %{ accruals($t, 9) }, 3, 'the three orders replayed');

    open $fh, '<', "$t->{spool}/rejected.log" or die $!;
    my @rejected = <$fh>;
    is_deeply(\@rejected, ["{\"v\":1,\"broken\n"], 'kept in rejected.log');

    $t->stop;
};

subtest 'a line with a command nginx never spools is set aside, and '
        . 'nothing of it runs' => sub {
    my $t = shop();

    open my $fh, '>', "$t->{spool}/orders.1.log" or die $!;
    print $fh '{"v":1,"at":1,"order":"o-x","customer":"9","calls":['
        . '{"command":["SET","loyalty:{customer:9}","owned"]}]}' . "\n";
    print $fh '{"v":1,"at":1,"order":"o-y","customer":"9","calls":['
        . '{"script":"account_grant","argv":["1","loyalty:{customer:9}",'
        . '"1000"]}]}' . "\n";
    close $fh;

    my ($rc, $out) = $t->run_worker('--once', '--spool', $t->{spool});
    is($rc, 0, 'the pass succeeded');
    like($out, qr/set aside in \S+: a command other than the events XADD/,
         'the command is named as the reason');
    like($out, qr/a script a confirmation does not run/,
         'and so is the script');
    is($t->redis->cmd('EXISTS', 'loyalty:{customer:9}'), 0,
       'neither reached Redis');

    open $fh, '<', "$t->{spool}/rejected.log" or die $!;
    my @rejected = <$fh>;
    is(scalar @rejected, 2, 'both kept in rejected.log');

    $t->stop;
};

subtest 'two nginx workers spooling at once keep every line whole' => sub {
    my $t = shop(workers => 2);

    $t->stop_redis;

    my @res = $t->parallel(400, POST => '/orders',
        headers => { 'Content-Type' => 'application/json',
                     'X-Customer-Id' => '5' },
        body => sub { order($_[0]) });

    is(scalar(grep { $_->{status} == 201 } @res), 400, '400 confirmed');

    my @files = glob "$t->{spool}/orders.*.log";
    cmp_ok(scalar @files, '>=', 1, 'a file per worker that spooled');

    my @lines = spool_lines($t);
    is(scalar @lines, 400, '400 lines');

    my %orders = map { ($JSON->decode($_)->{order} => 1) }
                 grep { /\n\z/ } @lines;
    is(scalar keys %orders, 400, 'each a whole record of its own order');

    $t->stop;
};

subtest 'Redis down while the worker replays: the file waits, nothing lost' =>
sub {
    my $t = shop();

    $t->stop_redis;
    $t->parallel(5, POST => '/orders',
        headers => { 'Content-Type' => 'application/json',
                     'X-Customer-Id' => '3' },
        body => sub { order($_[0]) });

    my ($rc, $out) = $t->run_worker('--once', '--spool', $t->{spool},
                                    '--timeout', '200');
    is($rc, 1, 'the pass failed');
    is(scalar spool_lines($t), 5, 'the five records wait');

    $t->start_redis;
    ($rc) = $t->run_worker('--once', '--spool', $t->{spool});
    is($rc, 0, 'replayed once Redis is back');
    is(scalar keys %{ accruals($t, 3) }, 5, 'all five accrued');

    $t->stop;
};

done_testing();
