# GET /customers/{id}: the account as the shop's account page shows it.

use strict;
use warnings;

use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Loyalty::Test;
use Loyalty::Shop;

my $t = shop();
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
