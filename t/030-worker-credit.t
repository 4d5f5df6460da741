# loyalty-worker credits the points of an order once its return window
# has passed: once, whatever runs twice, dies half way or runs beside it.
# Time is the worker's --now, never slept for.

use strict;
use warnings;

use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);
use Loyalty::Ledger;
use Loyalty::Shop;
use Loyalty::Test;

my $DAY = 86400;

my $PLAIN = [ { sku => 'P1', brand => 'plain', category => 'misc',
                price => '19.99', quantity => 3 } ];

my $t = shop(http => <<'HTTP', confirm => '');
    loyalty_earn 10 per 1.00;
    loyalty_return_window 30d;
    loyalty_points_expire 365d notice=30d;
HTTP
my $r = $t->redis;

sub account {
    my ($customer) = @_;

    return { @{ $r->cmd('HGETALL', "loyalty:{customer:$customer}") } };
}

# The events of the stream, each a field hash, without the points_earned
# that nginx sends.
sub worker_events {
    return [ grep { $_->{type} ne 'points_earned' }
             map { +{ @{ $_->[1] } } }
             @{ $r->cmd('XRANGE', 'loyalty:{events}', '-', '+') } ];
}

# When the schedule visits a customer next.
sub visit {
    my ($customer) = @_;

    return $r->cmd('ZSCORE', 'loyalty:{due:' . shard($customer) . '}',
                   $customer);
}

# The start of the month after a time, in UTC (the shop's time zone here).
sub next_month {
    my ($time) = @_;

    my @tm = gmtime $time;
    my ($y, $m) = ($tm[5] + 1900, $tm[4] + 1);
    ($y, $m) = ($y + 1, 0) if $m == 12;

    return timegm(0, 0, 0, 1, $m, $y);
}

sub month {
    return strftime('%Y-%m', gmtime $_[0]);
}

sub run {
    my ($now, @args) = @_;

    my ($rc, $out) = $t->run_worker('--once', '--now', $now, @args);
    is($rc, 0, 'the worker ran')
        or diag($out);

    return $out;
}

subtest 'an order is credited once its return window has passed, once' =>
sub {
    my $t0 = int time;
    my $res = confirm($t, cart(order_id => 'o-1', checkout_id => 'c-1',
                               lines => $PLAIN), customer => 'cr-1');
    is($res->{status}, 201, 'the order is confirmed');
    my $recorded = account('cr-1');

    run($t0 + 10 * $DAY);
    is_deeply(account('cr-1'), $recorded,
              'at +10 days nothing is credited: the window is open');
    is_deeply(worker_events(), [], 'and no event');

    my $now = $t0 + 31 * $DAY;
    run($now);

    my $acc = account('cr-1');
    my $order = delete $acc->{'o:o-1'};
    delete @$acc{qw(e n)};

    is_deeply($acc, { a => 599, p => 0, lt => 599, sm => month($now),
                      L => ($now + 365 * $DAY) . ':599' },
              'at +31 days: 599 available, none pending, a lot that '
              . 'expires in 365 days')
        or diag(explain $acc);
    like($order, qr/^C\|599\|/, 'the order is credited');

    is_deeply(worker_events(),
              [ { type => 'points_credited', id => 'points_credited:o-1',
                  customer => 'cr-1', at => $now, orders => 'o-1',
                  points => 599, available => 599 } ],
              'one points_credited event');
    is($r->cmd('EXISTS', 'loyalty:{customer:cr-1}:out'), 0,
       'the outbox is empty');
    is(visit('cr-1'), next_month($now),
       'the next visit is the monthly statement');

    my $before = [ account('cr-1'), worker_events() ];
    run($now);
    run($now + 60);
    is_deeply([ account('cr-1'), worker_events() ], $before,
              'visited again: nothing more credited, no second event');

    ledger_ok($r);
};

subtest 'a customer with orders due at different times: each credited '
        . 'when its own window ends' => sub {
    my $t0 = int time;

    confirm($t, cart(order_id => 'o-2a', checkout_id => 'c-2a',
                     lines => $PLAIN), customer => 'cr-2');
    my $first_due = (split /\|/, account('cr-2')->{'o:o-2a'})[2];

    # a second order, due 5 days later
    $r->cmd('HSET', 'loyalty:{customer:cr-2}', 'o:o-2b',
            join('|', 'P', 100, $first_due + 5 * $DAY, 1000, 'v', 'f', 0,
                 0, '', '', 0));
    $r->cmd('HINCRBY', 'loyalty:{customer:cr-2}', 'p', 100);

    run($first_due + 1);
    my $acc = account('cr-2');
    is_deeply([ @$acc{qw(a p)} ], [ 599, 100 ],
              'the first is credited, the second still pending');
    my $second = $first_due + 5 * $DAY;
    my $month = next_month($first_due + 1);
    is(visit('cr-2'), $month < $second ? $month : $second,
       'the next visit is when the second is due (or a statement before)');

    run($first_due + 5 * $DAY);
    is_deeply([ @{ account('cr-2') }{qw(a p lt)} ], [ 699, 0, 699 ],
              'then the second');

    ledger_ok($r);
};

subtest 'an account of 3,000 short records is credited in one visit' => sub {
    my $due = int(time) - $DAY;
    my $key = 'loyalty:{customer:many-1}';

    # records of four fields: more than the worker's first guess of the
    # room a visit needs
    $r->cmd('HSET', $key, p => 3000, n => 3000, e => $due - 30 * $DAY,
            map { ("o:$_" => "P|1|$due|1") } 1 .. 3000);
    $r->cmd('ZADD', 'loyalty:{due:' . shard('many-1') . '}', $due, 'many-1');

    my $out = run(int(time));
    unlike($out, qr/out of memory/, 'no shortage of memory logged');

    my $acc = account('many-1');
    is_deeply([ @$acc{qw(a p lt)} ], [ 3000, 0, 3000 ], 'all credited');
    is(scalar(grep { /^o:/ && substr($acc->{$_}, 0, 1) eq 'C' } keys %$acc),
       3000, 'each marked credited');
    is($r->cmd('LLEN', "$key:log"), 1000, 'the ledger keeps its newest 1000');

    $r->cmd('DEL', $key, "$key:log", "$key:out");
};

subtest 'a visit writes nothing when the account changed since it was '
      . 'read' => sub {
    my $key = 'loyalty:{customer:st-1}';
    my @keys = ($key, "$key:out", "$key:log");
    my $src = do {
        open my $fh, '<', 'ngx_loyalty_module/lua/account_apply.lua' or die;
        local $/;
        <$fh>;
    };

    $r->cmd('HSET', $key, a => 0, p => 10, 'o:o-1' => 'P|10|1|100');
    $r->cmd('LPUSH', "$key:log", "1\n1\norder\n0\n10\no-1");
    my $read = join "\n", @{ $r->cmd('HGETALL', $key) };
    my $head = $r->cmd('LINDEX', "$key:log", 0);

    # the visit: a credit, its ledger entry and its event
    my @visit = (3, 0, 1, a => 10, p => 0, 'o:o-1' => 'C|10|1|100',
                 "2\n5\ncredit\n10\n-10\no-1",
                 "type\npoints_credited\nid\npoints_credited:o-1");

    # nginx records an order between the worker's read and its write
    $r->cmd('HSET', $key, 'o:o-2' => 'P|20|9|200', p => 30);

    is_deeply($r->cmd('EVAL', $src, 3, @keys, $read, $head, @visit),
              ['stale'], 'the account changed: stale');
    is_deeply(account('st-1'), { a => 0, p => 30, 'o:o-1' => 'P|10|1|100',
                                 'o:o-2' => 'P|20|9|200' },
              'and the account is as nginx left it');
    is($r->cmd('LLEN', "$key:log"), 1, 'no ledger entry');
    is($r->cmd('LLEN', "$key:out"), 0, 'no event');

    # read again: written
    $read = join "\n", @{ $r->cmd('HGETALL', $key) };
    $visit[6] = 20;                     # p: o-2's points stay pending
    is_deeply($r->cmd('EVAL', $src, 3, @keys, $read, $head, @visit),
              ['applied'], 'read again: applied');
    is_deeply([ @{ account('st-1') }{qw(a p o:o-1)} ], [10, 20, 'C|10|1|100'],
              'the order credited');
    is($r->cmd('LLEN', "$key:log"), 2, 'its ledger entry');
    is($r->cmd('LLEN', "$key:out"), 1, 'its event in the outbox');

    # the ledger moved on since it was read: stale too
    $read = join "\n", @{ $r->cmd('HGETALL', $key) };
    is_deeply($r->cmd('EVAL', $src, 3, @keys, $read, $head, 0, 0, 0),
              ['stale'], 'a new ledger entry: stale');

    # events a stopped worker left in the outbox are given back
    $head = $r->cmd('LINDEX', "$key:log", 0);
    is_deeply($r->cmd('EVAL', $src, 3, @keys, $read, $head, 0, 0, 0, 'e2'),
              ['applied', "type\npoints_credited\nid\npoints_credited:o-1"],
              'the outbox before this visit is returned');
    is($r->cmd('LLEN', "$key:out"), 2, 'and this visit\'s event added');
    is(scalar @{ $r->cmd('EVAL', $src, 3, @keys, $read, $head, 0, 0, 0) },
       3, 'a visit without events gets the whole outbox back');

    $r->cmd('DEL', @keys);
};

subtest 'records written by older versions are credited too' => sub {
    my $due = int(time) - $DAY;
    my $key = 'loyalty:{customer:old-1}';

    # ten fields (before returns were kept), nine (before coupons), four
    $r->cmd('HSET', $key, p => 70, n => 3, e => $due - 30 * $DAY,
            'o:o-10' => "P|10|$due|100|v|f|0|0||SAVE",
            'o:o-9'  => "P|20|$due|200|v|f|0|0|",
            'o:o-4'  => "P|40|$due|400");
    $r->cmd('ZADD', 'loyalty:{due:' . shard('old-1') . '}', $due, 'old-1');

    run(int(time));
    my $acc = account('old-1');
    is_deeply([ @$acc{qw(a p lt)} ], [ 70, 0, 70 ], 'all three credited');
    is_deeply([ map { substr $acc->{"o:o-$_"}, 0, 1 } 10, 9, 4 ],
              [ 'C', 'C', 'C' ], 'each marked credited');
    is($acc->{'o:o-10'}, "C|10|$due|100|v|f|0|0||SAVE",
       'the rest of a record as it was');

    # not the shape ledger_ok() checks the other accounts for
    $r->cmd('DEL', $key, "$key:log", "$key:out");
};

# --- many at once --------------------------------------------------------

# $n customers with $k pending orders of 10 points each, due at $due.
sub seed {
    my ($prefix, $n, $k, $due) = @_;

    my @cmds;

    for my $c (1 .. $n) {
        my $id = "$prefix-$c";
        push @cmds, [ 'HSET', "loyalty:{customer:$id}", 'p', 10 * $k,
                      'n', $k, 'e', $due - 30 * $DAY,
                      map { ("o:$id-$_",
                             join '|', 'P', 10, $due, 100, 'v', 'f', 0, 0,
                                  '', '', 0) } 1 .. $k ];
        push @cmds, [ 'ZADD', 'loyalty:{due:' . shard($id) . '}', $due,
                      $id ];
    }

    $r->pipeline(@cmds);
}

# Every order credited exactly once: the accounts and the events (deduped
# by id, as a consumer does) agree.
sub credited_once {
    my ($prefix, $n, $k) = @_;

    my $all = accounts($r);
    my @mine = grep { /^\Q$prefix\E-/ } keys %$all;

    is(scalar @mine, $n, "$n accounts");
    is(scalar(grep { $all->{$_}{a} == 10 * $k && $all->{$_}{lt} == 10 * $k
                     && $all->{$_}{p} == 0 } @mine), $n,
       "each with its $k orders credited once: " . (10 * $k)
       . ' available, as much lifetime, none pending');

    my %seen;
    my %orders;

    for my $e (@{ worker_events() }) {
        next if $e->{type} ne 'points_credited' || $e->{customer} !~ /^\Q$prefix\E-/;
        next if $seen{ $e->{id} }++;
        $orders{$_}++ for split /,/, $e->{orders};
    }

    is(scalar keys %orders, $n * $k, 'every order is in an event');
    is(scalar(grep { $_ != 1 } values %orders), 0,
       'no order in two events (after dedupe by id)');

    ledger_ok($r);
}

sub pending_left {
    my ($prefix) = @_;

    my $all = accounts($r);
    return scalar grep { /^\Q$prefix\E-/ && $all->{$_}{p} } keys %$all;
}

sub eventually {
    my ($cond, $patience) = @_;

    my $deadline = time + ($patience // 60);

    while (time < $deadline) {
        return 1 if $cond->();
        sleep 0.002;
    }

    return 0;
}

subtest 'two workers at once over 10,000 due accruals: each credited once'
=> sub {
    my $now = int(time) + 40 * $DAY;
    seed('two', 500, 20, $now - $DAY);

    my @pids = map { $t->start_worker('--now', $now, '--batch', 25,
                                      '--interval', 20) } 1 .. 2;

    ok(eventually(sub { pending_left('two') == 0 }),
       'all credited in time');

    my $status = $t->stop_worker;
    is_deeply([ map { $status->{$_} } @pids ], [ 0, 0 ],
              'both workers stopped cleanly on SIGTERM');

    credited_once('two', 500, 20);

    # the 20 orders of a customer are credited in one visit: one lot
    my $all = accounts($r);
    is(scalar(grep { /^two-/ && ($all->{$_}{L} // '') =~ /^\d+:200$/ }
              keys %$all), 500,
       'each account has one lot of 200: what a visit credits expires at '
       . 'one time');
};

subtest 'a worker killed mid-batch, then another: no double, no loss' =>
sub {
    my $now = int(time) + 40 * $DAY;
    seed('kill', 5000, 2, $now - $DAY);
    my $events = $r->cmd('XLEN', 'loyalty:{events}');

    my $pid = $t->start_worker('--now', $now, '--batch', 10,
                               '--interval', 1, '--lease', 500);

    # killed as soon as it has credited some
    ok(eventually(sub { $r->cmd('XLEN', 'loyalty:{events}') > $events + 50 },
                  30), 'the worker is crediting');
    $t->kill_worker($pid);

    my $left = pending_left('kill');
    ok($left > 0 && $left < 5000, "killed half way: $left customers left");

    # its leases lapse, then another worker takes over
    ok(eventually(sub { !@{ $r->cmd('KEYS', 'loyalty:{due:*}:lease') } }, 5),
       "the dead worker's leases lapse");
    run($now);

    credited_once('kill', 5000, 2);
};

$t->stop;

done_testing();
