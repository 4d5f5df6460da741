# Races, a few bursts of each (t/chaos/races.t runs them full size): the
# last use of a coupon, a whole balance spent at once, one order confirmed
# many times at once, a return racing its credit.  Nothing is given twice
# and the ledger adds up.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Loyalty::Chaos;

# a deadline a loaded machine rarely misses: what is raced here is the
# requests, not Redis's speed (a missed deadline is allowed, and counted)
my $t = chaos_shop(workers => 2, timeout => '1s');

subtest 'the last use of a coupon: 5 bursts of 30 checkouts' =>
    sub { coupon_race($t, 5, 30) };
subtest 'a whole balance: 5 bursts of 30 redemptions, then 30 '
        . 'confirmations at once' => sub { points_race($t, 5, 30) };
subtest 'one order confirmed 30 times at once, 5 times' =>
    sub { confirm_race($t, 5, 30) };
subtest 'a return racing its credit, 10 times' =>
    sub { return_race($t, 10) };

$t->stop;

done_testing();
