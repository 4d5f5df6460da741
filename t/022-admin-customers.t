# GET /customers/{id}: the account as the shop's account page shows it.

use strict;
use warnings;

use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Loyalty::Test;
use Loyalty::Shop;

my $t = shop(http => <<'HTTP');
    loyalty_points_expire 365d notice=30d;
    loyalty_tier_window 365d;
    loyalty_tier member 0      1;
    loyalty_tier silver 100.00 1 perks=free_shipping;
    loyalty_tier gold   500.00 1.5 perks=free_shipping,early_access;
HTTP
my $r = $t->redis;

sub rfc3339 { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $_[0]) }

sub get {
    my ($path, %opt) = @_;

    return $t->http(GET => "/loyalty/admin/$path",
                    headers => { Authorization => "Bearer $TOKEN",
                                 %{ $opt{headers} || {} } });
}

subtest 'an account with lots, a pending order and a tier' => sub {
    $r->cmd('FLUSHALL');
    $r->cmd('HSET', 'loyalty:{customer:42}',
            a => 1000, h => 200, p => 1299, lt => 4000, n => 3, t => 'gold',
            e => 1788220800, rb => 'FRIEND1',
            L => '1803945600:300,1811808000:700',
            'o:o-1' => 'P|1299|1797930218|12994|0bca2b9658e65e4d|'
                       . '9e4d90289cbeb6cb|0|0|',
            'o:o-0' => 'C|500|1795000000|5000|0bca2b9658e65e4d|'
                       . '1111111111111111|0|0|');

    my $res = get('customers/42');

    is($res->{status}, 200, 'found') or diag($res->{body});

    my $c = $res->{json};
    is_deeply({ map { $_ => $c->{$_} }
                qw(customer available held pending lifetime orders tier
                   enrolled_at referred_by) },
              { customer => '42', available => 1000, held => 200,
                pending => 1299, lifetime => 4000, orders => 3,
                tier => 'gold', enrolled_at => '2026-09-01T00:00:00Z',
                referred_by => 'FRIEND1' },
              'balances, tier, orders, enrolment and referrer');

    is_deeply($c->{lots}, [
        { points => 300, expires_at => rfc3339(1803945600) },
        { points => 700, expires_at => rfc3339(1811808000) },
    ], 'the lots, oldest first, with their expiry');

    my @orders = sort { $a->{order} cmp $b->{order} }
                 @{ $c->{pending_accruals} || [] };
    is_deeply(\@orders, [
        { order => 'o-0', state => 'credited', points => 500,
          due_at => rfc3339(1795000000) },
        { order => 'o-1', state => 'pending', points => 1299,
          due_at => rfc3339(1797930218) },
    ], 'the orders with their state, points and due time');
};

subtest 'the tier, its perks, the way to the next, and what expires soon' =>
sub {
    my $now = time;
    $r->cmd('DEL', 'loyalty:{customer:43}');
    $r->cmd('HSET', 'loyalty:{customer:43}',
            a => 1000, e => $now, t => 'silver',
            # 20 days and 60 days from now; the reminder's notice is 30
            L => ($now + 20 * 86400) . ':300,' . ($now + 60 * 86400) . ':700',
            # spend inside the window, and some that has left it
            S => ($now - 400 * 86400) . ':90000:o-old,'
                 . ($now - 10 * 86400) . ':12000:o-1,'
                 . ($now - 5 * 86400) . ':8050:o-2');
    $r->cmd('SADD', 'loyalty:{customer:43}:codes', 'ANNA-10');

    my $c = get('customers/43')->{json};
    is_deeply({ map { $_ => $c->{$_} }
                qw(tier tier_perks tier_spend next_tier to_next_tier
                   expiring_soon referral_codes) },
              { tier => 'silver', tier_perks => [ 'free_shipping' ],
                tier_spend => '200.50', next_tier => 'gold',
                to_next_tier => '299.50',
                expiring_soon => { points => 300,
                                   first_expires_at =>
                                       rfc3339($now + 20 * 86400) },
                referral_codes => [ 'ANNA-10' ] },
              'silver with 200.50 spent: 299.50 to gold; 300 points '
              . 'expire within the notice');

    $r->cmd('HSET', 'loyalty:{customer:43}', t => 'gold', L => '0:1000');
    $c = get('customers/43')->{json};
    is_deeply({ map { $_ => $c->{$_} }
                qw(tier_perks next_tier to_next_tier expiring_soon) },
              { tier_perks => [ 'free_shipping', 'early_access' ],
                next_tier => undef, to_next_tier => undef,
                expiring_soon => { points => 0,
                                   first_expires_at => undef } },
              'at the top: no next tier; points that never expire');

    my $res = $t->http(PUT => '/loyalty/admin/customers/43/referral-code',
                       body => '{"code":"anna-11"}',
                       headers => { Authorization => "Bearer $TOKEN",
                                    'Content-Type' => 'application/json' });
    is($res->{status}, 201, 'another code') or diag($res->{body});
    is_deeply([ sort @{ get('customers/43')->{json}{referral_codes} } ],
              [ 'ANNA-10', 'ANNA-11' ], 'the account lists both');
};

subtest 'a customer without an account' => sub {
    my $res = get('customers/nobody');

    is($res->{status}, 404, 'not found');
    is_deeply($res->{json}, { error => 'not_found',
                              message => 'no account for customer "nobody"' },
              'not_found');
};

subtest 'an id that is not an id' => sub {
    my $res = get('customers/a%7Bb');

    is($res->{status}, 400, 'a bad request');
    is($res->{json}{error}, 'invalid_customer', 'invalid_customer');
};

subtest 'without the token nothing is read' => sub {
    my $res = $t->http(GET => '/loyalty/admin/customers/42');

    is($res->{status}, 401, 'unauthorized');
    unlike($res->{body}, qr/available/, 'no account in the answer');
};

$t->stop;

done_testing();
