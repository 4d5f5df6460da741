# $loyalty_points_estimate at checkout: what the cart would earn if
# confirmed now, the coupon's discount taken off; before the tier
# multiplier, which Redis applies at confirmation.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Loyalty::Shop;
use Loyalty::Test;

my $t = shop(http => <<'HTTP',
    loyalty_earn 10 per 1.00;
    loyalty_multiplier sku B2 3;
HTTP
             checkout => '            add_header X-Points-Estimate '
                         . '$loyalty_points_estimate always;');

create_coupon($t, code => 'TEN', type => 'percent', value => 10);

sub estimate {
    my ($body) = @_;

    my $res = checkout($t, $body);
    is($res->{status}, 200, 'the checkout passes') or diag($res->{body});

    return $res->{headers}{'x-points-estimate'};
}

is(estimate(cart()), 599, '59.97 at 10 per 1.00: 599 points');
is(estimate(cart(coupon => 'ten')), 539,
   'with a 10% coupon (6.00 off): 53.97 earns 539');
is(estimate(cart(coupon => 'NOPE')), 599,
   'a coupon that is not valid takes nothing off');
is(estimate(cart(lines => [ { sku => 'B2', brand => 'x', category => 'y',
                              price => '10.00', quantity => 1 } ])),
   300, 'a line with a multiplier of 3: 300');

my $res = $t->http(GET => '/checkout');
ok(!exists $res->{headers}{'x-points-estimate'},
   'a GET is not a checkout: no estimate');

$t->stop;

done_testing;
