# Referrals: a code given through the admin API, attributed by the
# referred customer's first order, rewarded on both sides once that order
# is credited; self-referrals, unknown codes and codes over their limit
# are refused and logged; everything once.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Loyalty::Ledger;
use Loyalty::Shop;
use Loyalty::Test;

my $DAY = 86400;

my $t = shop(http => <<'HTTP', confirm => '');
    loyalty_earn 10 per 1.00;
    loyalty_return_window 30d;
    loyalty_referral_reward 500 250;
    loyalty_referral_limit 2 per 365d;
HTTP
my $r = $t->redis;
my $t0 = time;
my $T1 = $t0 + 31 * $DAY;

sub admin { admin_request($t, @_) }

sub order {
    my ($customer, $id, %extra) = @_;

    my $res = confirm($t, cart(order_id => $id, checkout_id => "c-$id",
                               %extra), customer => $customer);
    is($res->{status}, 201, "order $id confirmed") or diag($res->{body});
}

sub account {
    return { @{ $r->cmd('HGETALL', "loyalty:{customer:$_[0]}") } };
}

# Two passes: the second sends what the first queued for the referrer.
sub run {
    my ($now) = @_;

    my $log = '';
    for (1, 2) {
        my ($rc, $out) = $t->run_worker('--once', '--now', $now);
        is($rc, 0, 'the worker ran') or diag($out);
        $log .= $out;
    }

    return $log;
}

sub rewards {
    return [ sort map { "$_->{customer}:$_->{role}:$_->{points}" }
             grep { $_->{type} eq 'referral_reward' }
             map { +{ @{ $_->[1] } } }
             @{ $r->cmd('XRANGE', 'loyalty:{events}', '-', '+') } ];
}

subtest 'PUT /customers/{id}/referral-code' => sub {
    my $res = admin(PUT => 'customers/anna/referral-code',
                    '{"code":" anna-10 "}');
    is($res->{status}, 201, 'created') or diag($res->{body});
    is_deeply($res->{json}, { customer => 'anna', code => 'ANNA-10' },
              'normalised like a coupon code');
    is(admin(PUT => 'customers/anna/referral-code',
             '{"code":"ANNA-10"}')->{status}, 200, 'again: 200');

    $res = admin(PUT => 'customers/bob/referral-code', '{"code":"anna-10"}');
    is($res->{status}, 409, "another customer's code: 409");
    is($res->{json}{error}, 'code_taken', 'code_taken');

    for my $body ('{"code":"a b"}', '{}', '{"code":5}',
                  '{"code":"OK","x":1}', '[]')
    {
        $res = admin(PUT => 'customers/bob/referral-code', $body);
        is($res->{status}, 400, "$body: 400");
        is($res->{json}{error}, 'invalid_field', "$body: invalid_field");
    }
    ok(!$r->cmd('EXISTS', 'loyalty:{referral:OK}'), 'nothing written');

    is(admin(PUT => 'customers/cara/referral-code', '{"code":"CARA"}')
       ->{status}, 201, 'cara has a code too');
};

subtest 'both sides rewarded once the first order is credited' => sub {
    order('ben', 'ben-1', referral => 'anna-10');
    order('ben', 'ben-2', referral => 'CARA');    # not a first order

    run($t0 + 10 * $DAY);
    is_deeply(rewards(), [], 'inside the window: nothing');

    run($T1);
    is_deeply(rewards(), [ 'anna:referrer:500', 'ben:referred:250' ],
              'credited: 500 to the referrer, 250 to the referred');
    is(account('ben')->{a}, 599 * 2 + 250, "ben: two orders and 250");
    is(account('ben')->{rr}, 'rewarded', "ben's referral is settled");
    is(account('anna')->{a}, 500, 'anna: 500, her account opened');
    ok(!$r->cmd('HEXISTS', 'loyalty:{referral:CARA}', 'c:ben'),
       'the second order\'s code counted for nothing');

    my $before = [ account('ben'), account('anna'), rewards() ];
    run($T1 + 3600);
    is_deeply([ account('ben'), account('anna'), rewards() ], $before,
              'visited again: nothing more');

    # a worker that died after paying the referrer, before the referred
    $r->cmd('HDEL', 'loyalty:{customer:ben}', 'rr');
    $r->cmd('ZADD', 'loyalty:{due:' . shard('ben') . '}', $T1, 'ben');
    run($T1 + 7200);
    delete $before->[0]{rr};
    my $ben = account('ben');
    is(delete $ben->{rr}, 'rewarded', 'settled again');
    is_deeply([ $ben, account('anna'), rewards() ], $before,
              'and nobody paid twice');

    ledger_ok($r, undef, history => 1);
};

subtest 'refused: self-referral, unknown code, over the limit' => sub {
    order('cara', 'cara-1', referral => 'cara');
    order('fay', 'fay-1', referral => 'NOBODY');
    order('dan', 'dan-1', referral => 'ANNA-10');
    order('eve', 'eve-1', referral => 'ANNA-10');

    my $log = run($T1 + 2 * $DAY);

    is(account('cara')->{rr}, 'self', 'cara: self');
    is(account('fay')->{rr}, 'unknown', 'fay: unknown');
    is_deeply([ sort map { account($_)->{rr} } qw(dan eve) ],
              [ 'limit', 'rewarded' ],
              'dan and eve: one is the 2nd of the period, the other over 2 '
              . 'per 365d');
    is(account('cara')->{a}, 599, 'cara has her order only');
    is(account('anna')->{a}, 1000, 'anna rewarded for ben and dan only');
    like($log, qr/\[warn\] .*referral code "CARA" of customer "cara" refused: the referrer's own code/,
         'a self-referral is logged at warn');
    like($log, qr/\[info\] .*"ANNA-10" of customer "(dan|eve)" refused: the code's limit/,
         'over the limit at info');

    ledger_ok($r, undef, history => 1);
};

subtest 'a first order returned whole earns no referral' => sub {
    admin(PUT => 'customers/hal/referral-code', '{"code":"HAL"}');
    order('gus', 'gus-1', referral => 'HAL');

    my $res = $t->http(POST => '/loyalty/admin/orders/gus-1/returns',
                       body => '{"return_id":"r","amount":"59.97"}',
                       headers => { Authorization => "Bearer $TOKEN",
                                    'Content-Type' => 'application/json' });
    is($res->{json}{state}, 'voided', 'returned whole');

    run($T1 + 3 * $DAY);
    ok(!$r->cmd('EXISTS', 'loyalty:{customer:hal}'), 'hal got nothing');
    ok(!exists account('gus')->{rr}, 'nothing settled');
};

$t->stop;

done_testing;
