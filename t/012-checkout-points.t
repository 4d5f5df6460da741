# Points at checkout: every status, the value and its ceiling, the hold in
# Redis and its release, retries, expiry, shadow mode, Redis down.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use Loyalty::Test;
use Loyalty::Shop;

my $t = shop();

sub verdict {
    my ($s, %opt) = @_;
    my %how = map { exists $opt{$_} ? ($_ => delete $opt{$_}) : () }
              qw(customer path);
    my $res = checkout($s, cart(%opt), %how);
    is($res->{status}, 200, 'the checkout reached the backend')
        or diag($res->{body});
    return $res->{json};
}

# What the backend was told about the points.
sub redemption {
    my ($v) = @_;
    return [ @{$v}{qw(points_status points_redeemed redeem_value)} ];
}

# The customer's account, the holds by expiry, the points per hold.
sub points_state {
    my ($s, $id) = @_;
    my $r = $s->redis;
    my $key = "loyalty:{customer:$id}";
    return {
        account => { @{ $r->cmd('HGETALL', $key) } },
        holds   => $r->cmd('ZRANGE', "$key:holds", 0, -1),
        holdv   => { @{ $r->cmd('HGETALL', "$key:holdv") } },
    };
}

sub balance {
    my ($s, $id, $available) = @_;
    $s->redis->cmd('HSET', "loyalty:{customer:$id}", 'a', $available);
}

# A release is sent when the request ends; nobody waits for its reply.
sub wait_until {
    my ($cond) = @_;
    my $deadline = time + 5;
    sleep 0.02 until $cond->() || time > $deadline;
}

sub fresh {
    $t->redis->cmd('FLUSHALL');
}

subtest 'points within the balance are held: 500 points are worth 5.00'
=> sub {
    fresh();
    balance($t, 42, 1000);

    my $before = time;
    my $v = verdict($t, points => 500);

    is_deeply(redemption($v), [ 'held', '500', '5.00' ],
              'held, 500 points redeemed for 5.00');
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 500 },
        holds   => ['c-1'],
        holdv   => { 'c-1' => 500 },
    }, 'Redis: 500 held by c-1, the balance itself untouched');

    my $expiry = $t->redis->cmd('ZSCORE', 'loyalty:{customer:42}:holds',
                                'c-1');
    ok($expiry >= int($before) + 900 && $expiry <= time + 900,
       'the hold expires after loyalty_reservation_ttl, 15m by default')
        or diag("expiry $expiry, checkout at $before");

    $v = verdict($t, points => 500, checkout_id => 'c-2');
    is_deeply(redemption($v), [ 'held', '500', '5.00' ],
              'the rest of the balance is held by another checkout');
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 1000 },
        holds   => [ 'c-1', 'c-2' ],
        holdv   => { 'c-1' => 500, 'c-2' => 500 },
    }, 'Redis: the whole balance is held by c-1 and c-2');

    $v = verdict($t, points => 0, checkout_id => 'c-3');
    is_deeply(redemption($v), [ '', '0', '0.00' ],
              'a cart with 0 points asks for nothing and gets no status');
    is_deeply(points_state($t, 42)->{holds}, [ 'c-1', 'c-2' ],
              'Redis: no hold for c-3');
};

subtest 'insufficient: more than the available balance less what other '
        . 'checkouts hold' => sub {
    fresh();
    balance($t, 42, 1000);

    verdict($t, points => 600, checkout_id => 'c-1');

    my $v = verdict($t, points => 500, checkout_id => 'c-2');
    is_deeply(redemption($v), [ 'insufficient', '0', '0.00' ],
              '500 asked, 1000 - 600 held = 400 free: insufficient');
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 600 },
        holds   => ['c-1'],
        holdv   => { 'c-1' => 600 },
    }, 'Redis: only the hold of c-1');

    $v = verdict($t, points => 400, checkout_id => 'c-2');
    is_deeply(redemption($v), [ 'held', '400', '4.00' ],
              'exactly the 400 free points can be held');
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 1000 },
        holds   => [ 'c-1', 'c-2' ],
        holdv   => { 'c-1' => 600, 'c-2' => 400 },
    }, 'Redis: c-1 600 and c-2 400');

    balance($t, 43, 100);
    $v = verdict($t, points => 101, checkout_id => 'c-3', customer => '43');
    is_deeply(redemption($v), [ 'insufficient', '0', '0.00' ],
              'one point more than the whole balance is insufficient');
    is_deeply(points_state($t, 43),
              { account => { a => 100 }, holds => [], holdv => {} },
              'Redis: customer 43 untouched');

    $v = verdict($t, points => 100, checkout_id => 'c-4', customer => '44');
    is_deeply(redemption($v), [ 'insufficient', '0', '0.00' ],
              'a customer without an account has nothing to redeem');
    is_deeply(points_state($t, 44),
              { account => {}, holds => [], holdv => {} },
              'Redis: no account is created for customer 44');
};

subtest 'a retried checkout keeps one hold and can change its amount' => sub {
    fresh();
    balance($t, 42, 1000);

    verdict($t, points => 500);
    my $v = verdict($t, points => 500);
    is_deeply(redemption($v), [ 'held', '500', '5.00' ],
              'the retry is held again');
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 500 },
        holds   => ['c-1'],
        holdv   => { 'c-1' => 500 },
    }, 'Redis: one hold of 500, not two');

    $v = verdict($t, points => 1000);
    is_deeply(redemption($v), [ 'held', '1000', '10.00' ],
              'raised to the whole balance: its own 500 count as free');
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 1000 },
        holds   => ['c-1'],
        holdv   => { 'c-1' => 1000 },
    }, 'Redis: the hold is now 1000');

    $v = verdict($t, points => 200);
    is_deeply(redemption($v), [ 'held', '200', '2.00' ],
              'lowered to 200');
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 200 },
        holds   => ['c-1'],
        holdv   => { 'c-1' => 200 },
    }, 'Redis: held follows the hold down to 200');
};

# A retry whose redemption reaches Redis replaces the earlier hold, or
# drops it when it cannot be held.  A retry refused before Redis (more
# than the lines, or no redemption at all) changes nothing in Redis: the
# earlier hold stays until the confirmation, which spends only what the
# order redeems, or until it expires.
subtest 'a retry keeps one hold: replaced, dropped, or left to expire' => sub {
    fresh();
    balance($t, $_, 1000) for 42, 43, 44;

    verdict($t, points => 200, checkout_id => 'c-1');
    verdict($t, points => 700, checkout_id => 'c-2');

    my $v = verdict($t, points => 400, checkout_id => 'c-1');
    is_deeply(redemption($v), [ 'insufficient', '0', '0.00' ],
              'c-1 raised beyond what c-2 left free: insufficient');
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 700 },
        holds   => ['c-2'],
        holdv   => { 'c-2' => 700 },
    }, 'Redis: c-1 holds nothing, c-2 still 700');

    verdict($t, points => 200, checkout_id => 'c-3', customer => '43');
    $v = verdict($t, points => 6000, checkout_id => 'c-3', customer => '43');
    is_deeply(redemption($v), [ 'exceeds_total', '0', '0.00' ],
              'c-3 retried with more than the lines: exceeds_total');
    is_deeply(points_state($t, 43), {
        account => { a => 1000, h => 200 },
        holds   => ['c-3'],
        holdv   => { 'c-3' => 200 },
    }, 'Redis: c-3 still holds its 200 (refused before Redis)');

    verdict($t, points => 500, checkout_id => 'c-4', customer => '44');
    $v = verdict($t, checkout_id => 'c-4', customer => '44');
    is_deeply(redemption($v), [ '', '0', '0.00' ],
              'c-4 retried without points: no redemption');
    is_deeply(points_state($t, 44), {
        account => { a => 1000, h => 500 },
        holds   => ['c-4'],
        holdv   => { 'c-4' => 500 },
    }, 'Redis: c-4 still holds its 500 (nothing reached Redis)');
};

subtest 'exceeds_total: the value is capped by the lines after the '
        . 'coupon discount' => sub {
    fresh();
    balance($t, 42, 10000);
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');
    create_coupon($t, code => 'MIN100', type => 'fixed', value => '10',
                  currency => 'EUR', min_spend => '100.00');

    my $v = verdict($t, points => 6000, checkout_id => 'c-1');
    is_deeply(redemption($v), [ 'exceeds_total', '0', '0.00' ],
              '60.00 on lines of 59.97 exceeds the total');

    $v = verdict($t, points => 6000, checkout_id => 'c-2',
                 shipping => '10.00', tax => '12.00');
    is_deeply(redemption($v), [ 'exceeds_total', '0', '0.00' ],
              'shipping and tax do not count');

    is_deeply(points_state($t, 42),
              { account => { a => 10000 }, holds => [], holdv => {} },
              'Redis: nothing held');

    $v = verdict($t, points => 5998, checkout_id => 'c-3',
                 coupon => 'SAVE10');
    is($v->{coupon_status}, 'valid',
       'the coupon, new to the worker, is valid');
    is($v->{discount}, '6.00', 'and takes 6.00 off');
    is_deeply(redemption($v), [ 'exceeds_total', '0', '0.00' ],
              '59.98 would fit the lines, not the 53.97 left by the coupon');

    $v = verdict($t, points => 5398, checkout_id => 'c-4',
                 coupon => 'SAVE10');
    is_deeply(redemption($v), [ 'exceeds_total', '0', '0.00' ],
              '53.98 is one cent above what the coupon left');
    is_deeply(points_state($t, 42),
              { account => { a => 10000 }, holds => [], holdv => {} },
              'Redis: still nothing held');
    is_deeply($t->redis->cmd('ZRANGE', 'loyalty:{coupon:SAVE10}:res', 0, -1),
              [ 'c-3', 'c-4' ], 'the coupon uses are reserved all the same');

    $v = verdict($t, points => 5397, checkout_id => 'c-5',
                 coupon => 'SAVE10');
    is_deeply(redemption($v), [ 'held', '5397', '53.97' ],
              'exactly the 53.97 left by the coupon is held');

    $v = verdict($t, points => 4603, checkout_id => 'c-6',
                 coupon => 'MIN100');
    is($v->{coupon_status}, 'min_spend', 'a coupon the cart does not reach');
    is_deeply(redemption($v), [ 'held', '4603', '46.03' ],
              'takes nothing off: the lines bound the points, not the coupon');

    is_deeply(points_state($t, 42), {
        account => { a => 10000, h => 10000 },
        holds   => [ 'c-5', 'c-6' ],
        holdv   => { 'c-5' => 5397, 'c-6' => 4603 },
    }, 'Redis: c-5 and c-6 hold the balance');

    balance($t, 43, 10000);
    $v = verdict($t, points => 5997, checkout_id => 'c-7', customer => '43');
    is_deeply(redemption($v), [ 'held', '5997', '59.97' ],
              'without a coupon exactly the lines, 59.97, can be paid');
    is_deeply(points_state($t, 43), {
        account => { a => 10000, h => 5997 },
        holds   => ['c-7'],
        holdv   => { 'c-7' => 5997 },
    }, 'Redis: customer 43 holds 5997');
};

subtest 'not_allowed: a guest, or a cart in another currency' => sub {
    fresh();
    balance($t, 42, 1000);

    my $v = verdict($t, points => 500, customer => undef);
    is($v->{customer}, '', 'no customer reaches the backend');
    is_deeply(redemption($v), [ 'not_allowed', '0', '0.00' ],
              'a guest cannot redeem points');

    $v = verdict($t, points => 500, currency => 'USD', checkout_id => 'c-2');
    is_deeply(redemption($v), [ 'not_allowed', '0', '0.00' ],
              'a USD cart cannot redeem EUR points');

    is_deeply(redis_keys($t), ['loyalty:{customer:42}'],
              'Redis: no key was written');
    is_deeply(points_state($t, 42),
              { account => { a => 1000 }, holds => [], holdv => {} },
              'Redis: the account is untouched');
};

subtest 'a backend that does not answer 2xx releases the hold' => sub {
    fresh();
    balance($t, 42, 1000);

    my $res = checkout($t, cart(points => 500, checkout_id => 'c-1'),
                       path => '/checkout/fail');
    is($res->{status}, 500, 'the backend failed');

    wait_until(sub { !@{ points_state($t, 42)->{holds} } });
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 0 },
        holds   => [],
        holdv   => {},
    }, 'Redis: held back to 0, no hold left');

    $res = checkout($t, cart(points => 500, checkout_id => 'c-2'),
                    path => '/checkout/reject');
    is($res->{status}, 409, 'the backend refused');

    wait_until(sub { !@{ points_state($t, 42)->{holds} } });
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 0 },
        holds   => [],
        holdv   => {},
    }, 'Redis: held back to 0 again');

    my $v = verdict($t, points => 300, checkout_id => 'c-3');
    is_deeply(redemption($v), [ 'held', '300', '3.00' ], 'c-3 is accepted');

    $res = checkout($t, cart(points => 700, checkout_id => 'c-4'),
                    path => '/checkout/fail');
    is($res->{status}, 500, 'c-4 fails');

    wait_until(sub { @{ points_state($t, 42)->{holds} } == 1 });
    is_deeply(points_state($t, 42), {
        account => { a => 1000, h => 300 },
        holds   => ['c-3'],
        holdv   => { 'c-3' => 300 },
    }, 'Redis: the release of c-4 leaves the hold of c-3 alone');

    $v = verdict($t, points => 700, checkout_id => 'c-5');
    is_deeply(redemption($v), [ 'held', '700', '7.00' ],
              'the 700 released are free again');
};

$t->stop;

subtest 'an expired hold is forgotten by the next hold' => sub {
    my $s = shop(http => 'loyalty_reservation_ttl 1s;');
    balance($s, 42, 1000);

    my $v = verdict($s, points => 800, checkout_id => 'c-1');
    is_deeply(redemption($v), [ 'held', '800', '8.00' ], 'c-1 holds 800');
    is_deeply(points_state($s, 42), {
        account => { a => 1000, h => 800 },
        holds   => ['c-1'],
        holdv   => { 'c-1' => 800 },
    }, 'Redis: the hold of c-1');

    sleep 2.1;    # loyalty_reservation_ttl 1s, in whole seconds

    is_deeply(points_state($s, 42)->{holds}, ['c-1'],
              'until the next hold the expired one stays in Redis');

    $v = verdict($s, points => 800, checkout_id => 'c-2');
    is_deeply(redemption($v), [ 'held', '800', '8.00' ],
              'c-2 gets the 800 that c-1 no longer holds');
    is_deeply(points_state($s, 42), {
        account => { a => 1000, h => 800 },
        holds   => ['c-2'],
        holdv   => { 'c-2' => 800 },
    }, 'Redis: c-1 forgotten, held counts c-2 only');

    $s->stop;
};

subtest 'shadow mode evaluates and logs, holds nothing' => sub {
    my $s = shop(checkout => 'loyalty_mode shadow;');
    balance($s, 42, 1000);

    $s->log_mark;
    my $v = verdict($s, points => 500, checkout_id => 'c-1');
    is_deeply(redemption($v), [ '', '', '' ], 'the backend is told nothing');

    $v = verdict($s, points => 1500, checkout_id => 'c-2');
    is_deeply(redemption($v), [ '', '', '' ], 'nor about a refusal');

    is_deeply(points_state($s, 42),
              { account => { a => 1000 }, holds => [], holdv => {} },
              'Redis: nothing held');

    sleep 0.1;
    my $log = $s->log_since_mark;
    like($log, qr/\[info\].*loyalty: shadow checkout "c-1" customer "42": points=500 points_status=held redeem_value=5\.00/,
         'the hold that would have been is logged');
    like($log, qr/\[info\].*loyalty: shadow checkout "c-2" customer "42": points=1500 points_status=insufficient redeem_value=15\.00/,
         'and so is the refusal');

    $s->stop;
};

subtest 'Redis down: the checkout passes, the redemption unverified' => sub {
    my $s = shop();
    $s->stop_redis;

    my $v = verdict($s, points => 500, checkout_id => 'c-1');
    is_deeply(redemption($v), [ 'unverified', '0', '0.00' ],
              'unverified, nothing redeemed');

    $v = verdict($s, points => 500, checkout_id => 'c-2', coupon => 'SAVE10');
    is($v->{coupon_status}, 'unverified', 'with a coupon: the coupon too');
    is_deeply(redemption($v), [ 'unverified', '0', '0.00' ],
              'and the points');

    $s->start_redis;
    ok($s->wait_ready(10), 'Redis is back');
    balance($s, 42, 1000);

    $v = verdict($s, points => 500, checkout_id => 'c-3');
    is_deeply(redemption($v), [ 'held', '500', '5.00' ],
              'once Redis is back, points are held again');
    is_deeply(points_state($s, 42), {
        account => { a => 1000, h => 500 },
        holds   => ['c-3'],
        holdv   => { 'c-3' => 500 },
    }, 'Redis: the hold of c-3 only');

    $s->stop;
};

done_testing();
