# The order confirmation: what an order earns by the program's rules, the
# accrual recorded once (pending, due-indexed, announced), the checkout's
# coupon use and points hold ended, and the shop's answer passed on
# untouched whatever loyalty made of it.

use strict;
use warnings;

use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use Loyalty::Test;
use Loyalty::Shop;

my $DAY = 86400;
my $WINDOW = 14 * $DAY;             # loyalty_return_window 14d

# two lots far in the future, the older first
my ($EXP1, $EXP2) = (4102444800, 4133980800);

sub rfc3339 { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $_[0]) }

my $NOW = time;

# 10 points per 1.00; multipliers by brand, category and SKU (the best of
# those matching a line applies, whatever their order); a campaign long
# over, one to come, and one for hats running now
my $PROGRAM = <<"HTTP";
    loyalty_earn 10 per 1.00;
    loyalty_multiplier brand acme 2;
    loyalty_multiplier category shoes 1.5;
    loyalty_multiplier sku BOOST-1 3;
    loyalty_campaign long-ago 5 2000-01-01T00:00:00Z 2000-02-01T00:00:00Z;
    loyalty_campaign to-come 5 2099-01-01T00:00:00Z 2099-02-01T00:00:00Z;
    loyalty_campaign hat-days 2 @{[ rfc3339($NOW - $DAY) ]} @{[ rfc3339($NOW + $DAY) ]} category=hats;
    loyalty_tier member 0 1;
    loyalty_tier gold 500.00 1.5;
    loyalty_return_window 14d;
    loyalty_order_reward 3 100;
    loyalty_referral_reward 500 250;
HTTP

# 59.97 of lines no multiplier matches: 599 points (599.7 rounded down)
my $PLAIN = [ { sku => 'P1', brand => 'plain', category => 'misc',
                price => '19.99', quantity => 3 } ];

# every rule at once, 47.65 in all:
#   10.00 plain              x1      1000
#   20.00 acme shoes         x2      4000  (brand 2 beats category 1.5)
#   2 x 5.00 acme BOOST-1    x3      3000  (sku 3 beats brand 2)
#    7.50 acme hats          x2 x2   3000  (brand, and the live campaign)
#    0.15 plain              x1        15
# 11015 cents earning at 10 per 1.00 is 1101.5: 1101 points
my $MIXED = [
    { sku => 'PLAIN-1', brand => 'plain', category => 'misc',
      price => '10.00', quantity => 1 },
    { sku => 'ACME-1', brand => 'acme', category => 'shoes',
      price => '20.00', quantity => 1 },
    { sku => 'BOOST-1', brand => 'acme', category => 'socks',
      price => '5.00', quantity => 2 },
    { sku => 'HAT-1', brand => 'acme', category => 'hats',
      price => '7.50', quantity => 1 },
    { sku => 'ODD-1', brand => 'plain', category => 'misc',
      price => '0.15', quantity => 1 },
];

my $t = shop(http => $PROGRAM, confirm => '', workers => 2);
my $r = $t->redis;
program_version($t);

# --- helpers ---------------------------------------------------------------

# The accruals name the version of the program they were earned under.
sub program_version {
    my ($s) = @_;

    my $v;
    eventually(sub {
        $v = $s->redis->cmd('HGET', 'loyalty:{program}', 'current');
    });
    like($v, qr/^[0-9a-f]{16}$/, 'nginx published its program version')
        or BAIL_OUT('no program version in Redis');
}

# Everything but the program nginx publishes is deleted.
sub fresh {
    my ($s) = @_;

    ($s // $t)->quiet_redis;
    my $keys = redis_keys($s // $t);
    ($s // $t)->redis->cmd('DEL', @$keys) if @$keys;
}

# Polls a condition that something fire-and-forget brings about, for at
# most 5 seconds; the test then asserts the state itself.
sub eventually {
    my ($cond) = @_;

    my $deadline = time + 5;

    while (1) {
        my $ok = $cond->();
        return $ok if $ok || time > $deadline;
        sleep 0.02;
    }
}

sub order {
    my ($id, %f) = @_;

    return cart(order_id => $id, checkout_id => "c-$id",
                lines => $PLAIN, %f);
}

# The verdict of a confirmation as the shopper gets it; undef is absent.
sub verdict {
    my ($res) = @_;

    return {
        status  => $res->{status},
        id      => $res->{headers}{'x-order-id'},
        order   => $res->{headers}{'x-order-status'},
        earned  => $res->{headers}{'x-points-earned'},
        pending => $res->{headers}{'x-points-pending'},
    };
}

sub account {
    my ($customer, $s) = @_;

    return { @{ ($s // $t)->redis->cmd('HGETALL',
                                       "loyalty:{customer:$customer}") } };
}

# The account without its accruals; e (enrolled) checked to be in
# [$t0, $t1] and shown as 'now'.
sub account_fields {
    my ($customer, $t0, $t1, $s) = @_;

    my $a = account($customer, $s);
    delete $a->{$_} for grep { /^o:/ } keys %$a;

    if (defined $a->{e}) {
        $a->{e} = 'now' if $a->{e} >= $t0 && $a->{e} <= $t1;
    }

    return $a;
}

# The shard of the due index a customer's orders go to: FNV-1a, 16 shards.
sub shard {
    my ($customer) = @_;

    my $h = 2166136261;

    for my $byte (unpack 'C*', $customer) {
        $h = (($h ^ $byte) * 16777619) % 4294967296;
    }

    return $h % 16;
}

# Checks the accrual o:<order> of a customer: due at the end of the return
# window of a confirmation made in [$t0, $t1], under the program nginx
# runs, with a fingerprint, and in the due index; the rest is $want.
sub accrual_is {
    my ($customer, $order, $want, $t0, $t1, $s) = @_;

    $s //= $t;

    my $raw = $s->redis->cmd('HGET', "loyalty:{customer:$customer}",
                             "o:$order");

    ok(defined $raw, "the accrual o:$order is recorded") or return;

    my %f;
    @f{qw(state points due basis version fingerprint redeemed bonus
          referral coupon returned)} = split /\|/, $raw, -1;

    my $due = $f{due};

    ok($due >= $t0 + $WINDOW && $due <= $t1 + $WINDOW,
       'it is due when the 14 days of the return window end')
        or diag("due $due, confirmed in [$t0, $t1]");
    like($f{fingerprint}, qr/^[0-9a-f]{16}$/, 'it has a fingerprint');

    my $visit = $s->redis->cmd('ZSCORE', 'loyalty:{due:' . shard($customer)
                                         . '}', $customer);

    ok(defined $visit && $visit <= $due,
       "the worker's schedule visits the customer by then")
        or diag('visit ' . ($visit // 'none') . ", due $due");

    delete @f{qw(due fingerprint)};

    is_deeply(\%f, { version => $s->redis->cmd('HGET', 'loyalty:{program}',
                                                'current'),
                     coupon => '', returned => 0, %$want },
              "accrual o:$order: " . join ', ',
              map { "$_ $want->{$_}" } sort keys %$want)
        or diag($raw);
}

# The worker's schedule: customer -> when it visits them, every shard.
sub due_index {
    my ($s) = @_;

    my %all;

    for my $k (@{ ($s // $t)->redis->cmd('KEYS', 'loyalty:{due:*}') }) {
        %all = (%all, @{ ($s // $t)->redis->cmd('ZRANGE', $k, 0, -1,
                                                'WITHSCORES') });
    }

    return \%all;
}

# The events stream, as a list of field hashes.
sub events {
    my ($s) = @_;

    return [ map { +{ @{ $_->[1] } } }
             @{ ($s // $t)->redis->cmd('XRANGE', 'loyalty:{events}',
                                       '-', '+') } ];
}

# An event's 'at' in [$t0, $t1] shown as 'now'.
sub events_at {
    my ($t0, $t1, $s) = @_;

    return [ map {
        my %e = %$_;
        $e{at} = 'now' if $e{at} >= $t0 && $e{at} <= $t1;
        \%e
    } @{ events($s) } ];
}

sub wait_events {
    my ($n, $s) = @_;

    eventually(sub {
        ($s // $t)->redis->cmd('XLEN', 'loyalty:{events}') >= $n
    });
}

# Every key but the program, with its content: what "nothing changed"
# compares.
sub dump_redis {
    my ($s) = @_;

    my $rd = ($s // $t)->redis;
    my %all;

    for my $k (@{ redis_keys($s // $t) }) {
        my $type = $rd->cmd('TYPE', $k);

        $all{$k} = $type eq 'hash'   ? { @{ $rd->cmd('HGETALL', $k) } }
                 : $type eq 'set'    ? [ sort @{ $rd->cmd('SMEMBERS', $k) } ]
                 : $type eq 'zset'   ? $rd->cmd('ZRANGE', $k, 0, -1,
                                                'WITHSCORES')
                 : $type eq 'stream' ? $rd->cmd('XRANGE', $k, '-', '+')
                 : $type eq 'list'   ? $rd->cmd('LRANGE', $k, 0, -1)
                 : $rd->cmd('GET', $k);
    }

    return \%all;
}

sub coupon_state {
    my ($code) = @_;

    return {
        used   => $r->cmd('HGET', "loyalty:{coupon:$code}", 'used'),
        uses   => { @{ $r->cmd('HGETALL', "loyalty:{coupon:$code}:uses") } },
        orders => { @{ $r->cmd('HGETALL',
                               "loyalty:{coupon:$code}:orders") } },
        res    => $r->cmd('ZRANGE', "loyalty:{coupon:$code}:res", 0, -1),
        resc   => { @{ $r->cmd('HGETALL', "loyalty:{coupon:$code}:resc") } },
        resn   => { @{ $r->cmd('HGETALL', "loyalty:{coupon:$code}:resn") } },
    };
}

sub holds {
    my ($customer) = @_;

    return {
        holds => $r->cmd('ZRANGE', "loyalty:{customer:$customer}:holds",
                         0, -1),
        holdv => { @{ $r->cmd('HGETALL',
                              "loyalty:{customer:$customer}:holdv") } },
    };
}

sub seed {
    my ($customer, @fields) = @_;

    $r->cmd('HSET', "loyalty:{customer:$customer}", @fields);
}

sub warns {
    my ($log) = @_;

    return scalar grep { /\[warn\].*loyalty:/ } split /\n/, $log;
}

# --- earning ---------------------------------------------------------------

subtest 'a mixed cart earns the base rate times the best multiplier and '
        . 'the live campaign of each line, rounded down once' => sub {
    fresh();

    my $t0 = int time;
    my $res = confirm($t, order('o-mix', lines => $MIXED),
                      customer => 'mix-1');
    my $t1 = int(time) + 1;

    is_deeply(verdict($res), { status => 201, id => 'o-mix',
                               order => 'recorded', earned => 1101,
                               pending => 1101 },
              'recorded: 1101 points pending')
        or diag($res->{body});

    accrual_is('mix-1', 'o-mix', { state => 'P', points => 1101,
                                   basis => 4765, redeemed => 0,
                                   bonus => 0, referral => '' }, $t0, $t1);

    is_deeply(account_fields('mix-1', $t0, $t1),
              { n => 1, e => 'now', p => 1101 },
              'the first order enrols the customer: n 1, p 1101');

    wait_events(1);
    is_deeply(events_at($t0, $t1),
              [ { type => 'points_earned', id => 'points_earned:o-mix',
                  customer => 'mix-1', order => 'o-mix', points => 1101,
                  pending => 1101, at => 'now' } ],
              'one points_earned event');
};

subtest 'a customer due earlier already is moved a whole second earlier '
        . 'by each order, so the worker sees the entry changed' => sub {
    fresh();

    my $key = 'loyalty:{due:' . shard('due-1') . '}';
    my @visits;

    for my $n (1 .. 3) {
        my $res = confirm($t, order("o-due$n"), customer => 'due-1');
        is(verdict($res)->{order}, 'recorded', "order $n recorded")
            or diag($res->{body});
        push @visits, $t->redis->cmd('ZSCORE', $key, 'due-1');
    }

    my $first = (split /\|/, account('due-1')->{'o:o-due1'})[2];

    is_deeply(\@visits, [ $first, $first - 1, $first - 2 ],
              'the first order sets the visit; the next two, due no '
              . 'earlier, each move it one second earlier')
        or diag("visits @visits, first order due $first");
    ok(!grep({ !/^\d+$/ } @visits), 'every score a whole number of seconds');
};

subtest 'a gold customer earns 1.5 times the base points, rounded down'
=> sub {
    fresh();
    seed('gold-1', t => 'gold');

    my $t0 = int time;
    my $res = confirm($t, order('o-gold', lines => $MIXED),
                      customer => 'gold-1');
    my $t1 = int(time) + 1;

    is_deeply(verdict($res), { status => 201, id => 'o-gold',
                               order => 'recorded', earned => 1651,
                               pending => 1651 },
              '1101 x 1.5 = 1651.5: 1651 points')
        or diag($res->{body});

    accrual_is('gold-1', 'o-gold', { state => 'P', points => 1651,
                                     basis => 4765, redeemed => 0,
                                     bonus => 0, referral => '' }, $t0, $t1);

    is_deeply(account_fields('gold-1', $t0, $t1),
              { t => 'gold', n => 1, e => 'now', p => 1651 },
              'the tier stays, 1651 pending');

    wait_events(1);
    is_deeply([ map { $_->{points} } @{ events() } ], [ 1651 ],
              'the event has the points with the tier applied');
};

# Two lines, 60.00 of acme (x2) and 40.00 plain; shipping 4.90, tax 19.00,
# 10.00 discount, 500 points redeemed (5.00): what is taken off (15.00)
# is spread over the lines in proportion, 9.00 and 6.00.
my $EXCL = cart(
    order_id => 'o-ex', checkout_id => 'c-ex',
    lines => [ { sku => 'X1', brand => 'acme', category => 'misc',
                 price => '60.00', quantity => 1 },
               { sku => 'X2', brand => 'plain', category => 'misc',
                 price => '40.00', quantity => 1 } ],
    shipping => '4.90', tax => '19.00', discount_total => '10.00',
    points => 500,
);

for my $case (
    [ '', 1360, 8500,
      'by default shipping, tax, the discount and redeemed points earn '
      . 'nothing: (51.00 x 2 + 34.00) x 10 = 1360' ],
    [ 'shipping tax', 1599, 10890,
      'loyalty_earn_include shipping tax: 1360 + 23.90 x 10 = 1599' ],
    [ 'discounts redeemed', 1600, 10000,
      'loyalty_earn_include discounts redeemed: (60.00 x 2 + 40.00) x 10 '
      . '= 1600' ],
    [ 'shipping tax discounts redeemed', 1839, 12390,
      'everything included: 1600 + 23.90 x 10 = 1839' ],
) {
    my ($include, $points, $basis, $name) = @$case;

    subtest $name => sub {
        my $s = shop(http => "    loyalty_earn 10 per 1.00;\n"
                             . "    loyalty_multiplier brand acme 2;\n"
                             . "    loyalty_return_window 14d;\n"
                             . ($include
                                ? "    loyalty_earn_include $include;\n"
                                : ''),
                     confirm => '');

        $s->redis->cmd('HSET', 'loyalty:{customer:ex-1}', 'a', 1000,
                       'L', "$EXP1:1000");

        my $t0 = int time;
        my $res = confirm($s, $EXCL, customer => 'ex-1');
        my $t1 = int(time) + 1;

        is_deeply(verdict($res), { status => 201, id => 'o-ex',
                                   order => 'recorded', earned => $points,
                                   pending => $points },
                  "$points points") or diag($res->{body});

        accrual_is('ex-1', 'o-ex', { state => 'P', points => $points,
                                     basis => $basis, redeemed => 500,
                                     bonus => 0, referral => '' },
                   $t0, $t1, $s);

        is_deeply(account_fields('ex-1', $t0, $t1, $s),
                  { a => 500, L => "$EXP1:500", n => 1, e => 'now',
                    p => $points },
                  'the 500 points redeemed are spent from the lot');

        $s->stop;
    };
}

# --- the backend decides ---------------------------------------------------

subtest 'a confirmation the shop refuses (500, 409) records nothing and '
        . 'gives back the coupon use and the points held' => sub {
    fresh();
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');
    seed('ref-1', a => 1000, L => "$EXP1:300,$EXP2:700");

    for my $case ([ '/orders/fail', 500, 'o-f' ],
                  [ '/orders/reject', 409, 'o-r' ])
    {
        my ($path, $code, $id) = @$case;

        my $v = checkout($t, cart(checkout_id => "c-$id", lines => $PLAIN,
                                  coupon => 'save10', points => 500),
                         customer => 'ref-1')->{json};

        is_deeply([ @$v{qw(coupon_status points_status)} ],
                  [ 'valid', 'held' ], "checkout c-$id: coupon and points");
        is_deeply(coupon_state('SAVE10')->{res}, [ "c-$id" ],
                  'the coupon use is reserved');
        is(account('ref-1')->{h}, 500, '500 points are held');

        my $res = confirm($t, order($id, coupon => 'save10', points => 500,
                                    discount_total => '6.00'),
                          customer => 'ref-1', path => $path);

        is_deeply(verdict($res), { status => $code, id => $id,
                                   order => 'refused', earned => undef,
                                   pending => undef },
                  "the shop's $code passes, status refused, no points")
            or diag($res->{body});

        eventually(sub {
            !@{ coupon_state('SAVE10')->{res} }
            && account('ref-1')->{h} == 0
        });

        is_deeply(coupon_state('SAVE10'),
                  { used => 0, uses => {}, orders => {}, res => [],
                    resc => {}, resn => {} },
                  'the reservation is released, no use committed');
        is_deeply(holds('ref-1'), { holds => [], holdv => {} },
                  'the hold is released');
        is_deeply(account('ref-1'),
                  { a => 1000, L => "$EXP1:300,$EXP2:700", h => 0 },
                  'the account is as before: no accrual, nothing spent');
    }

    is_deeply(due_index(), {}, "nothing in the worker's schedule");
    sleep 0.2;    # an event would have followed the answer by now
    is_deeply(events(), [], 'no event');
};

subtest 'the confirmation of a checkout commits its coupon use and spends '
        . 'the points held from the oldest lot' => sub {
    fresh();
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10',
                  max_uses => 5);
    seed('lots-1', a => 1000, L => "$EXP1:300,$EXP2:700");

    my $v = checkout($t, cart(checkout_id => 'c-o-lots', lines => $PLAIN,
                              coupon => 'save10', points => 500),
                     customer => 'lots-1')->{json};

    is_deeply([ @$v{qw(coupon_status discount points_status
                       points_redeemed)} ],
              [ 'valid', '6.00', 'held', 500 ],
              'the checkout reserved the coupon (6.00) and held 500 points');

    # 59.97 - 6.00 - 5.00 = 48.97: 489 points
    my $t0 = int time;
    my $res = confirm($t, order('o-lots', coupon => 'save10', points => 500,
                                discount_total => '6.00'),
                      customer => 'lots-1');
    my $t1 = int(time) + 1;

    is_deeply(verdict($res), { status => 201, id => 'o-lots',
                               order => 'recorded', earned => 489,
                               pending => 489 },
              'recorded: 489 points on 48.97') or diag($res->{body});

    accrual_is('lots-1', 'o-lots', { state => 'P', points => 489,
                                     basis => 4897, redeemed => 500,
                                     bonus => 0, referral => '',
                                     coupon => 'SAVE10' },
               $t0, $t1);

    is_deeply(account_fields('lots-1', $t0, $t1),
              { a => 500, L => "$EXP2:500", h => 0, n => 1, e => 'now',
                p => 489 },
              'a 500: the older lot (300) is spent, then 200 of the newer; '
              . 'h back to 0');
    is_deeply(holds('lots-1'), { holds => [], holdv => {} },
              'the hold is gone');

    wait_events(1);    # the coupon's use is committed before the event
    is_deeply(coupon_state('SAVE10'),
              { used => 1, uses => { 'lots-1' => 1 },
                orders => { 'o-lots' => 'lots-1' }, res => [], resc => {},
                resn => {} },
              'the reservation became a use: used 1, uses[lots-1] 1');

    wait_events(1);
    is_deeply(events_at($t0, $t1),
              [ { type => 'points_earned', id => 'points_earned:o-lots',
                  customer => 'lots-1', order => 'o-lots', points => 489,
                  pending => 489, at => 'now' } ],
              'one points_earned event');
};

# --- once ------------------------------------------------------------------

subtest '20 concurrent confirmations of one order: one accrual, one '
        . 'recorded and 19 replayed with the same points' => sub {
    fresh();
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');

    my $t0 = int time;
    my @res = $t->parallel(20, POST => '/orders',
                           headers => { 'Content-Type' => 'application/json',
                                        'X-Customer-Id' => 'par-1' },
                           body => order('o-par', coupon => 'save10',
                                         discount_total => '6.00'));
    my $t1 = int(time) + 1;

    # 59.97 - 6.00 = 53.97: 539 points
    my %statuses;
    $statuses{ verdict($_)->{order} // 'none' }++ for @res;

    is_deeply(\%statuses, { recorded => 1, replayed => 19 },
              'one recorded, 19 replayed');
    is_deeply([ grep { $_->{status} != 201 || $_->{earned} != 539
                       || $_->{pending} != 539 } map { verdict($_) } @res ],
              [], 'every answer is 201 with 539 points, 539 pending');

    accrual_is('par-1', 'o-par', { state => 'P', points => 539,
                                   basis => 5397, redeemed => 0,
                                   bonus => 0, referral => '',
                                   coupon => 'SAVE10' }, $t0, $t1);
    is_deeply(account_fields('par-1', $t0, $t1),
              { n => 1, e => 'now', p => 539 },
              'one order counted, p 539');
    is(scalar(grep { /^o:/ } keys %{ account('par-1') }), 1,
       'one accrual');

    is_deeply([ keys %{ due_index() } ], [ 'par-1' ],
              "the customer is in the worker's schedule, once");

    wait_events(1);    # the coupon's use is committed before the event
    my $c = coupon_state('SAVE10');
    is_deeply([ $c->{used}, $c->{uses}, $c->{orders} ],
              [ 1, { 'par-1' => 1 }, { 'o-par' => 'par-1' } ],
              'the coupon is used once');

    wait_events(1);
    sleep 0.2;    # a second event would have followed by now
    is_deeply([ map { "$_->{id} $_->{points} $_->{pending}" } @{ events() } ],
              [ 'points_earned:o-par 539 539' ], 'one points_earned event');
};

subtest 'the same order id with other content is a conflict: logged, '
        . 'nothing changed' => sub {
    fresh();
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');
    create_coupon($t, code => 'SAVE20', type => 'percent', value => '20');

    my $res = confirm($t, order('o-con', coupon => 'save10',
                                discount_total => '6.00'),
                      customer => 'con-1');
    is(verdict($res)->{order}, 'recorded', 'the order is recorded');
    wait_events(1);

    # the coupon's use is counted in the program's totals when its commit
    # answers, after the event: the snapshots below must come after it
    eventually(sub { $r->cmd('EXISTS', 'loyalty:{stats}:coupons') });

    my @cases = (
        [ 'another quantity', 'con-1',
          order('o-con', coupon => 'save10', discount_total => '6.00',
                lines => [ { %{ $PLAIN->[0] }, quantity => 4 } ]) ],
        [ 'another coupon', 'con-1',
          order('o-con', coupon => 'save20', discount_total => '12.00') ],
        [ 'other points', 'con-1',
          order('o-con', coupon => 'save10', discount_total => '6.00',
                points => 100) ],
        [ 'another customer', 'con-2',
          order('o-con', coupon => 'save10', discount_total => '6.00') ],
    );

    for my $case (@cases) {
        my ($what, $customer, $body) = @$case;

        my $before = dump_redis();

        $t->log_mark;
        $res = confirm($t, $body, customer => $customer);

        is_deeply(verdict($res), { status => 201, id => 'o-con',
                                   order => 'conflict', earned => undef,
                                   pending => undef },
                  "$what: the shop's answer passes, status conflict")
            or diag($res->{body});

        sleep 0.2;    # what a wrong write or event would have had time for

        # but the worker's schedule: any confirmation nudges the customer's
        # visit a second earlier (see due_add.lua), which is harmless
        my $after = dump_redis();
        delete @$_{ grep { /^loyalty:\{due:/ } keys %$_ } for $before, $after;

        is_deeply($after, $before, "$what: nothing changed in Redis");

        my $why = $customer eq 'con-1' ? 'with other content'
                                        : 'for another customer';
        like($t->log_since_mark,
             qr/\[error\].*loyalty: order "o-con" of customer "$customer" was confirmed before \Q$why\E/,
             "$what: an [error] names the order and why");
    }
};

# --- rewards ---------------------------------------------------------------

subtest 'a referral code counts on the first order only; every 3rd order '
        . 'earns 100 more' => sub {
    fresh();

    my $t0 = int time;
    my @res = map {
        confirm($t, order("o-rw$_->[0]", referral => $_->[1]),
                customer => 'rw-1')
    } [ 1, 'friend-7' ], [ 2, 'other-9' ], [ 3, undef ];
    my $t1 = int(time) + 1;

    is_deeply([ map { verdict($_) } @res ],
              [ { status => 201, id => 'o-rw1', order => 'recorded',
                  earned => 599, pending => 599 },
                { status => 201, id => 'o-rw2', order => 'recorded',
                  earned => 599, pending => 1198 },
                { status => 201, id => 'o-rw3', order => 'recorded',
                  earned => 699, pending => 1897 } ],
              '599, 599, then 599 + 100 points');

    accrual_is('rw-1', 'o-rw1', { state => 'P', points => 599,
                                  basis => 5997, redeemed => 0, bonus => 0,
                                  referral => 'FRIEND-7' }, $t0, $t1);
    accrual_is('rw-1', 'o-rw2', { state => 'P', points => 599,
                                  basis => 5997, redeemed => 0, bonus => 0,
                                  referral => '' }, $t0, $t1);
    accrual_is('rw-1', 'o-rw3', { state => 'P', points => 699,
                                  basis => 5997, redeemed => 0,
                                  bonus => 100, referral => '' }, $t0, $t1);

    is_deeply(account_fields('rw-1', $t0, $t1),
              { n => 3, e => 'now', p => 1897, rb => 'FRIEND-7' },
              'referred by FRIEND-7, 3 orders, 1897 pending');

    # two nginx workers: the events of consecutive orders may be added
    # to the stream in either order
    wait_events(3);
    is_deeply([ sort map { "$_->{order} $_->{points} $_->{pending}" }
                @{ events() } ],
              [ 'o-rw1 599 599', 'o-rw2 599 1198', 'o-rw3 699 1897' ],
              'three events');
};

# --- guests and unreadable confirmations ------------------------------------

subtest 'a guest: status guest, no account, the coupon use still committed'
=> sub {
    fresh();
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');

    my $v = checkout($t, cart(checkout_id => 'c-o-guest', lines => $PLAIN,
                              coupon => 'save10'),
                     customer => undef)->{json};
    is($v->{coupon_status}, 'valid', 'the guest checkout reserved a use');

    my $res = confirm($t, order('o-guest', coupon => 'save10',
                                discount_total => '6.00'),
                      customer => undef);

    is_deeply(verdict($res), { status => 201, id => 'o-guest',
                               order => 'guest', earned => undef,
                               pending => undef },
              'status guest, no points') or diag($res->{body});

    eventually(sub { coupon_state('SAVE10')->{used} });
    is_deeply(coupon_state('SAVE10'),
              { used => 1, uses => {}, orders => { 'o-guest' => '' },
                res => [], resc => {}, resn => {} },
              'the reservation became a use');

    sleep 0.2;
    is_deeply([ grep { /customer|due|events/ } @{ redis_keys($t) } ], [],
              'no account, no due entry, no event');
};

subtest 'an unreadable confirmation reaches the shop and gets its 201, '
        . 'status invalid, one [warn]' => sub {
    fresh();

    $t->log_mark;
    my $res = confirm($t, '{"order_id": "o-bad", "lines": [',
                      customer => 'bad-1');

    is_deeply(verdict($res), { status => 201, id => undef,
                               order => 'invalid', earned => undef,
                               pending => undef },
              "the shop's 201 passes, status invalid") or diag($res->{body});
    like($res->{body}, qr/^\{"id":"[0-9a-f]{32}","shop":"created"\}\n\z/,
         "with the shop's answer");

    sleep 0.2;
    my $log = $t->log_since_mark;
    is(warns($log), 1, 'one [warn]') or diag($log);
    like($log, qr/\[warn\].*loyalty: order confirmation not recorded, invalid_json/,
         'saying the JSON is invalid');
    is_deeply(redis_keys($t), [], 'nothing written to Redis');
};

# --- the answer --------------------------------------------------------------

sub write_static {
    my ($s, $name, $content) = @_;

    my $path = $s->dir . "/static/$name";

    open my $fh, '>', $path or die "$path: $!";
    print $fh $content;
    close $fh;
    chmod 0644, $path;
}

# 200 KB of JSON, numbered so that a lost or moved piece shows
my $BIG = '{"id":"o-big","lines":['
          . join(',', map { sprintf '"line %06d"', $_ } 0 .. 15999)
          . "]}\n";

# 60 KB of JSON with its id: within the 64 KB read for the id
my $MEDIUM = '{"id":"o-medium","pad":"' . ('x' x (60 * 1024)) . "\"}\n";

subtest 'the answer passes through untouched, small or of 200 KB' => sub {
    fresh();
    write_static($t, 'big.json', $BIG);

    my $res = confirm($t, order('o-small'), customer => 'ans-1',
                      path => '/orders?id=o-shop-7');

    is($res->{body}, qq({"id":"o-shop-7","shop":"created"}\n),
       'the small answer is as the shop sent it');
    is($res->{headers}{'content-type'}, 'application/json',
       'with its content type');
    is_deeply(verdict($res), { status => 201, id => 'o-small',
                               order => 'recorded', earned => 599,
                               pending => 599 },
              'and the order recorded, from the id in the confirmation');

    $res = confirm($t, order('o-large'), customer => 'ans-1',
                   path => '/orders/static/big.json', timeout => 5);

    is($res->{status}, 200, 'the large answer is 200');
    is(length $res->{body}, length $BIG, 'all of it arrives');
    ok($res->{body} eq $BIG, 'byte for byte as the shop sent it');
    is($res->{headers}{'content-length'}, length $BIG,
       'with its Content-Length');
    is_deeply(verdict($res), { status => 200, id => 'o-large',
                               order => 'recorded', earned => 599,
                               pending => 1198 },
              'and the order recorded');
    is(scalar(grep { /^o:/ } keys %{ account('ans-1') }), 2,
       'two accruals');
};

subtest 'an order redeeming points the account no longer has is recorded, '
        . 'redeeming none' => sub {
    fresh();

    my $res = confirm($t, order('o-none', points => 500),
                      customer => 'none-1');
    is_deeply(verdict($res), { status => 201, id => 'o-none',
                               order => 'recorded', earned => 549,
                               pending => 549 },
              'recorded, not spooled; earning on 59.97 less the 5.00 the '
              . 'points were to pay')
        or diag($t->error_log =~ /(loyalty: .*)/g);
    is((split /\|/, account('none-1')->{'o:o-none'})[6], 0,
       'it redeemed nothing');
    is(account('none-1')->{a} // 0, 0, 'nothing available, never below 0');
};

subtest 'the ledger keeps its newest 1000 entries, numbered on' => sub {
    fresh();

    my $log = 'loyalty:{customer:long-1}:log';
    $t->redis->cmd('RPUSH', $log,
                   map { sprintf "%d\n1\nbonus\n1\n0\nb%d", $_, $_ }
                   reverse 1 .. 1000);

    is(verdict(confirm($t, order('o-long'), customer => 'long-1'))->{order},
       'recorded', 'recorded');
    is($t->redis->cmd('LLEN', $log), 1000, 'still 1000 entries');
    like($t->redis->cmd('LINDEX', $log, 0), qr/\A1001\n\d+\norder\n/,
         'the newest: the order, number 1001');
    like($t->redis->cmd('LINDEX', $log, -1), qr/\A2\n/,
         'the oldest left: number 2');
};

subtest 'with Redis up, nothing goes to the spool' => sub {
    is_deeply([ glob $t->dir . '/spool/*' ], [], 'the spool is empty');
};

$t->stop;

subtest 'the order id from the answer of the shop (loyalty_field order_id '
        . 'response:/id), read from at most 64 KB of it' => sub {
    my $s = shop(http => "    loyalty_earn 10 per 1.00;\n"
                         . "    loyalty_return_window 14d;\n",
                 confirm => 'loyalty_field order_id response:/id;');

    write_static($s, 'medium.json', $MEDIUM);
    write_static($s, 'big.json', $BIG);

    my $t0 = int time;
    my $res = confirm($s, cart(checkout_id => 'c-resp', lines => $PLAIN),
                      customer => 'resp-1', path => '/orders?id=o-shop-1');
    my $t1 = int(time) + 1;

    is($res->{body}, qq({"id":"o-shop-1","shop":"created"}\n),
       'the answer is as the shop sent it');
    is_deeply(verdict($res), { status => 201, id => 'o-shop-1',
                               order => 'recorded', earned => 599,
                               pending => 599 },
              'the order is the one the shop named') or diag($res->{body});
    accrual_is('resp-1', 'o-shop-1', { state => 'P', points => 599,
                                       basis => 5997, redeemed => 0,
                                       bonus => 0, referral => '' },
               $t0, $t1, $s);

    $res = confirm($s, cart(checkout_id => 'c-resp2', lines => $PLAIN),
                   customer => 'resp-1');
    my $id = $res->{json}{id} // '';

    like($id, qr/^[0-9a-f]{32}$/, 'the shop chose an id of its own');
    is_deeply(verdict($res), { status => 201, id => $id,
                               order => 'recorded', earned => 599,
                               pending => 1198 },
              'the order is recorded under it');
    ok(defined account('resp-1', $s)->{"o:$id"}, 'its accrual is there');

    $res = confirm($s, cart(checkout_id => 'c-resp3', lines => $PLAIN),
                   customer => 'resp-1', path => '/orders/static/medium.json',
                   timeout => 5);

    is($res->{status}, 200, 'an answer of 60 KB passes');
    ok($res->{body} eq $MEDIUM, 'byte for byte');
    is_deeply(verdict($res), { status => 200, id => 'o-medium',
                               order => 'recorded', earned => 599,
                               pending => 1797 },
              'its id is read: the order is recorded');

    $s->quiet_redis;
    my $keys = redis_keys($s);
    my $account = account('resp-1', $s);

    $s->log_mark;
    $res = confirm($s, cart(checkout_id => 'c-resp4', lines => $PLAIN),
                   customer => 'resp-1', path => '/orders/static/big.json',
                   timeout => 5);

    is($res->{status}, 200, 'an answer of 200 KB passes');
    ok($res->{body} eq $BIG, 'byte for byte');
    is_deeply(verdict($res), { status => 200, id => undef,
                               order => 'invalid', earned => undef,
                               pending => undef },
              'beyond the 64 KB read for the id: status invalid');

    sleep 0.2;
    my $log = $s->log_since_mark;
    is(warns($log), 1, 'one [warn]') or diag($log);
    like($log, qr/\[warn\].*loyalty: order confirmation not recorded, the shop's answer is larger than 65536 bytes/,
         'saying why');
    is_deeply([ redis_keys($s), account('resp-1', $s) ], [ $keys, $account ],
              'nothing written to Redis');

    $s->stop;
};

subtest 'loyalty_order_source response: the order is the shop\'s answer, '
        . 'not what the client sent' => sub {
    my $s = shop(http => "    loyalty_earn 10 per 1.00;\n"
                         . "    loyalty_return_window 14d;\n",
                 confirm => 'loyalty_order_source response;');

    # what the shop answers: the order as it booked it
    write_static($s, 'booked.json',
                 cart(order_id => 'o-booked', checkout_id => 'c-booked',
                      lines => $PLAIN) . "\n");
    write_static($s, 'no-id.json', cart(lines => $PLAIN) . "\n");

    # what a client sends: the same order id, a forged price
    my $forged = cart(order_id => 'o-forged', checkout_id => 'c-booked',
                      lines => [ { %{ $PLAIN->[0] },
                                   price => '99999.00' } ]);

    my $t0 = int time;
    my $res = confirm($s, $forged, customer => 'src-1',
                      path => '/orders/static/booked.json', timeout => 5);
    my $t1 = int(time) + 1;

    is($res->{status}, 200, 'the answer passes');
    is_deeply(verdict($res), { status => 200, id => 'o-booked',
                               order => 'recorded', earned => 599,
                               pending => 599 },
              'the order and its points are those of the answer: '
              . '59.97 x 10 = 599') or diag($res->{body});
    accrual_is('src-1', 'o-booked', { state => 'P', points => 599,
                                      basis => 5997, redeemed => 0,
                                      bonus => 0, referral => '' },
               $t0, $t1, $s);
    ok(!defined account('src-1', $s)->{'o:o-forged'},
       'nothing under the id the client sent');

    # the program's totals and the leaderboard land after the answer
    my $board = 'loyalty:{board}:' . ((gmtime)[5] + 1900);
    my $deadline = time + 10;
    sleep 0.01 until time > $deadline
        || defined $s->redis->cmd('ZSCORE', $board, 'src-1');

    my $keys = redis_keys($s);

    $s->log_mark;
    $res = confirm($s, $forged, customer => 'src-1',
                   path => '/orders/static/no-id.json', timeout => 5);

    is_deeply(verdict($res), { status => 200, id => undef,
                               order => 'invalid', earned => undef,
                               pending => undef },
              'an answer without an order id: status invalid');
    sleep 0.2;
    like($s->log_since_mark,
         qr{\[warn\].*loyalty:\ order\ confirmation\ not\ recorded,
            \ missing_field:\ /order_id\ is\ required\ while}x,
         'a [warn] says why');
    is_deeply(redis_keys($s), $keys, 'nothing written to Redis');

    $s->stop;
};

done_testing();
