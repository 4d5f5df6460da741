# Coupons at checkout: every status, the discount arithmetic, the
# reservation and its release, shadow mode, rejection, guessing, Redis down.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use Loyalty::Test;
use Loyalty::Shop;

my $t = shop(http => 'loyalty_reservation_ttl 2s;');

my $r = $t->redis;

sub verdict {
    my (%opt) = @_;
    my $customer = delete $opt{customer};
    my $res = checkout($t, cart(%opt),
                       defined $customer ? (customer => $customer) : ());
    is($res->{status}, 200, 'the checkout reached the backend')
        or diag($res->{body});
    return $res->{json};
}

sub reserved {
    my ($code) = @_;
    return $r->cmd('ZRANGE', "loyalty:{coupon:$code}:res", 0, -1);
}

sub fresh {
    $r->cmd('FLUSHALL');
}

subtest 'a valid percent coupon: discount on the whole cart, one use reserved'
=> sub {
    fresh();
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10',
                  max_uses => 5);

    my $v = verdict(coupon => ' save10 ');

    is($v->{coupon}, 'SAVE10', 'the code is normalised');
    is($v->{coupon_status}, 'valid', 'status valid');
    is($v->{discount}, '6.00', '10% of 59.97 is 6.00 (half up)');
    is($v->{customer}, '42', 'the trusted customer is passed on');
    is_deeply(reserved('SAVE10'), ['c-1'], 'the use is reserved for c-1');
    is($r->cmd('HGET', 'loyalty:{coupon:SAVE10}:resc', 'c-1'), '42',
       'held by customer 42');

    verdict(coupon => 'SAVE10');
    is_deeply(reserved('SAVE10'), ['c-1'],
              'a retried checkout keeps its one reservation');
};

subtest 'eligible lines only: include, exclude, and the discount never '
        . 'exceeds them' => sub {
    fresh();
    create_coupon($t, code => 'SHOES', type => 'percent', value => '15',
                  include => { categories => ['shoes'] },
                  exclude => { skus => ['S2'] });
    create_coupon($t, code => 'FIVER', type => 'fixed', value => '5.00',
                  currency => 'EUR', include => { brands => ['acme'] });

    my $lines = [
        { sku => 'S1', brand => 'acme', category => 'shoes',
          price => '3.33', quantity => 1 },
        { sku => 'S2', brand => 'acme', category => 'shoes',
          price => '50.00', quantity => 2 },
        { sku => 'H1', brand => 'other', category => 'hats',
          price => '20.00', quantity => 1 },
    ];

    my $v = verdict(coupon => 'SHOES', lines => $lines);
    is($v->{discount}, '0.50', '15% of the one eligible line 3.33 is 0.50');

    $v = verdict(coupon => 'FIVER', checkout_id => 'c-2',
                 lines => [ $lines->[0], $lines->[2] ]);
    is($v->{discount}, '3.33', 'a fixed 5.00 stops at the eligible 3.33');

    $v = verdict(coupon => 'FIVER', checkout_id => 'c-3',
                 lines => [ $lines->[2] ]);
    is($v->{coupon_status}, 'not_applicable', 'no eligible line');
    is($v->{discount}, '0.00', 'and no discount');
    is_deeply(reserved('FIVER'), ['c-2'], 'nothing reserved for c-3');
};

subtest 'minimum spend, dates, currency, disabled' => sub {
    fresh();
    create_coupon($t, code => 'MIN100', type => 'fixed', value => '10',
                  currency => 'EUR', min_spend => '100.00');
    create_coupon($t, code => 'LATER', type => 'percent', value => '5',
                  starts_at => '2099-01-01T00:00:00Z');
    create_coupon($t, code => 'GONE', type => 'percent', value => '5',
                  ends_at => '2020-01-01T00:00:00Z');
    create_coupon($t, code => 'USD5', type => 'fixed', value => '5',
                  currency => 'USD');
    create_coupon($t, code => 'OFF', type => 'percent', value => '5');

    $t->http(POST => '/loyalty/admin/coupons/off/disable',
             headers => { Authorization => "Bearer $TOKEN" });

    is(verdict(coupon => 'MIN100')->{coupon_status}, 'min_spend',
       '59.97 is under the minimum spend of 100.00');
    is(verdict(coupon => 'LATER')->{coupon_status}, 'not_started',
       'before its start');
    is(verdict(coupon => 'GONE')->{coupon_status}, 'expired',
       'after its end');
    is(verdict(coupon => 'USD5')->{coupon_status}, 'not_applicable',
       'a USD amount on a EUR cart');
    is(verdict(coupon => 'OFF')->{coupon_status}, 'disabled', 'disabled');
    is(verdict(coupon => 'NOPE')->{coupon_status}, 'not_found',
       'an unknown code');

    is_deeply([ map { @{ reserved($_) } } qw(MIN100 LATER GONE USD5 OFF) ],
              [], 'nothing was reserved');
};

subtest 'usage limits: total and per customer' => sub {
    fresh();
    create_coupon($t, code => 'TWICE', type => 'percent', value => '5',
                  max_uses => 2);
    create_coupon($t, code => 'ONCE', type => 'percent', value => '5',
                  per_customer => 1);

    is(verdict(coupon => 'TWICE', checkout_id => 'a',
               customer => '1')->{coupon_status}, 'valid', 'first use');
    is(verdict(coupon => 'TWICE', checkout_id => 'b',
               customer => '2')->{coupon_status}, 'valid', 'second use');
    is(verdict(coupon => 'TWICE', checkout_id => 'c',
               customer => '3')->{coupon_status}, 'exhausted',
       'no third use while two are reserved');

    is(verdict(coupon => 'ONCE', checkout_id => 'd',
               customer => '7')->{coupon_status}, 'valid', 'customer 7 once');
    is(verdict(coupon => 'ONCE', checkout_id => 'e',
               customer => '7')->{coupon_status}, 'customer_limit',
       'customer 7 twice');
    is(verdict(coupon => 'ONCE', checkout_id => 'f',
               customer => '8')->{coupon_status}, 'valid', 'customer 8');

    my $guest = checkout($t, cart(coupon => 'ONCE', checkout_id => 'g'),
                         customer => undef);
    is($guest->{json}{coupon_status}, 'customer_limit',
       'a guest cannot use a per-customer coupon');

    is($r->cmd('HGET', 'loyalty:{coupon:ONCE}:resn', '7'), '1',
       'one live reservation counted for customer 7');
};

subtest 'a backend that does not answer 2xx releases the reservation' => sub {
    fresh();
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');

    my $res = checkout($t, cart(coupon => 'SAVE10'),
                       path => '/checkout/fail');
    is($res->{status}, 500, 'the backend failed');

    $res = checkout($t, cart(coupon => 'SAVE10', checkout_id => 'c-2'),
                    path => '/checkout/reject');
    is($res->{status}, 409, 'the backend refused');

    sleep 0.2;
    is_deeply(reserved('SAVE10'), [], 'both reservations were released');
    is_deeply($r->cmd('HGETALL', 'loyalty:{coupon:SAVE10}:resn'), [],
              'no live count left for the customer');
};

subtest 'a reservation expires by itself' => sub {
    fresh();
    create_coupon($t, code => 'LAST', type => 'percent', value => '5',
                  max_uses => 1);

    is(verdict(coupon => 'LAST', checkout_id => 'a',
               customer => '1')->{coupon_status}, 'valid', 'reserved');
    is(verdict(coupon => 'LAST', checkout_id => 'b',
               customer => '2')->{coupon_status}, 'exhausted',
       'the last use is taken');

    sleep 2.2;    # loyalty_reservation_ttl 2s

    is(verdict(coupon => 'LAST', checkout_id => 'b',
               customer => '2')->{coupon_status}, 'valid',
       'free again once the reservation expired');
    is_deeply(reserved('LAST'), ['b'], 'only the new reservation is left');
};

$t->stop;

subtest 'guessing is throttled: beyond the limit nothing is looked up' =>
sub {
    my $s = shop(http => 'loyalty_coupon_attempts 3 per 1m;');
    my $sr = $s->redis;

    create_coupon($s, code => 'REAL', type => 'percent', value => '5');

    my $attempt = sub {
        my ($code, $customer) = @_;
        checkout($s, cart(coupon => $code), customer => $customer)
            ->{json}{coupon_status};
    };
    my $calls = sub {
        $sr->cmd('INFO', 'commandstats') =~ /cmdstat_evalsha:calls=(\d+)/
            ? $1 : 0;
    };

    is($attempt->('REAL', 'guesser'), 'valid', 'a valid code is no attempt');

    for my $i (1 .. 3) {
        is($attempt->("GUESS$i", 'guesser'), 'not_found', "guess $i");
    }

    my $before = $calls->();
    is($attempt->('REAL', 'guesser'), 'rate_limited',
       'a fourth attempt is refused, even with a real code');
    is($calls->(), $before, 'and Redis was not asked');

    is($attempt->('REAL', 'honest'), 'rate_limited',
       'another customer from the same address is throttled too');

    $s->stop;
};

subtest 'loyalty_coupon_reject answers a refused coupon with 422' => sub {
    my $s = shop(checkout => 'loyalty_coupon_reject on;');
    create_coupon($s, code => 'GONE', type => 'percent', value => '5',
                  ends_at => '2020-01-01T00:00:00Z');

    my $res = checkout($s, cart(coupon => 'GONE'));
    is($res->{status}, 422, 'the status is 422 Unprocessable Entity');
    is_deeply($res->{json}, { error => 'coupon_refused',
                              message => 'coupon "GONE" is expired' },
              'the JSON error names the status');

    create_coupon($s, code => 'OK', type => 'percent', value => '5');
    is(checkout($s, cart(coupon => 'OK'))->{status}, 200,
       'a valid coupon passes');

    $s->stop;
};

subtest 'shadow mode evaluates and logs, never reserves nor tells' => sub {
    my $s = shop(checkout => 'loyalty_mode shadow;');
    create_coupon($s, code => 'ONE', type => 'percent', value => '10',
                  max_uses => 1);
    $s->redis->cmd('HSET', 'loyalty:{customer:42}', 'a', '1000');

    $s->log_mark;
    my $res = checkout($s, cart(coupon => 'ONE', points => 500));

    is($res->{status}, 200, 'passed to the backend');
    is($res->{json}{coupon_status}, '', 'no verdict reaches the backend');
    is($res->{json}{discount}, '', 'no discount either');
    is_deeply($s->redis->cmd('ZRANGE', 'loyalty:{coupon:ONE}:res', 0, -1),
              [], 'no reservation');
    is($s->redis->cmd('HGET', 'loyalty:{customer:42}', 'h'), undef,
       'no points held');

    sleep 0.1;
    like($s->log_since_mark,
         qr/\[info\].*loyalty: shadow checkout "c-1" customer "42": coupon=ONE status=valid discount=6\.00 points=500 points_status=held redeem_value=5\.00/,
         'the verdict is logged');

    $s->stop;
};

subtest 'Redis down: the checkout passes, the coupon unverified' => sub {
    my $s = shop();
    create_coupon($s, code => 'SAVE10', type => 'percent', value => '10');
    $s->stop_redis;

    my $start = time;
    my $res = checkout($s, cart(coupon => 'SAVE10', points => 100));

    is($res->{status}, 200, 'the sale goes on');
    is($res->{json}{coupon_status}, 'unverified', 'the coupon is unverified');
    is($res->{json}{discount}, '0.00', 'no discount is granted');
    is($res->{json}{points_status}, 'unverified', 'the redemption refused');
    is($res->{json}{redeem_value}, '0.00', 'with no value');
    cmp_ok(time - $start, '<', 1, 'without waiting for Redis');

    $s->stop;
};

done_testing();
