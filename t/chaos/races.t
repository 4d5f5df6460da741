# Races at full size (`make chaos`; CHAOS_ROUNDS=N shortens): 1,000
# bursts of 30 checkouts on a coupon with one use left, 1,000 bursts of 30
# redemptions of a whole balance each followed by 30 confirmations at
# once, one order confirmed 30 times at once 1,000 times, 1,000 returns
# racing their credit.  Zero over-redemptions, one accrual per order, the
# ledger adds up.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Loyalty::Chaos;

# a deadline a loaded machine rarely misses: what is raced here is the
# requests, not Redis's speed (a missed deadline is allowed, and counted)
my $t = chaos_shop(workers => 2, timeout => '1s');

my $n = size(1000);

subtest "the last use of a coupon: $n bursts of 30 checkouts" =>
    sub { coupon_race($t, $n, 30) };
subtest "a whole balance: $n bursts of 30 redemptions, 30 confirmations"
    => sub { points_race($t, $n, 30) };
subtest "one order confirmed 30 times at once, $n times" =>
    sub { confirm_race($t, $n, 30) };
subtest "a return racing its credit, $n times" =>
    sub { return_race($t, $n) };

$t->stop;

done_testing();
