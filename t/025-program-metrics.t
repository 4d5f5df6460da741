# GET /program/metrics: the program's figures are running totals moved by
# each change (confirmations, credits, expiry, returns, adjustments,
# bonuses, coupon uses), and they agree with the accounts themselves.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use List::Util qw(sum0);
use POSIX qw(strftime);
use Test::More;
use Loyalty::Ledger;
use Loyalty::Shop;
use Loyalty::Test;

my $DAY = 86400;
my $JSON = JSON::PP->new->canonical;

my $t = shop(http => <<'HTTP', confirm => '');
    loyalty_earn 10 per 1.00;
    loyalty_return_window 30d;
    loyalty_points_expire 365d;
    loyalty_bonus review 50;
    loyalty_clv_years 2;
HTTP
my $r = $t->redis;
my $t0 = time;

sub admin { admin_request($t, @_) }

sub order {
    my ($customer, $id, $price, %extra) = @_;

    my $res = confirm($t, cart(order_id => $id, checkout_id => "c-$id",
                               lines => [ { sku => 'S1', brand => 'b',
                                            category => 'c',
                                            price => $price,
                                            quantity => 1 } ], %extra),
                      customer => $customer);
    is($res->{status}, 201, "order $id confirmed") or diag($res->{body});
}

sub metrics {
    my ($query) = @_;

    my $res = admin(GET => 'program/metrics' . ($query ? "?$query" : ''));
    is($res->{status}, 200, 'the metrics') or diag($res->{body});

    return $res->{json};
}

# The totals the accounts themselves add up to.
sub from_accounts {
    my $all = accounts($r);

    return { available => sum0(map { $_->{a} // 0 } values %$all),
             pending   => sum0(map { $_->{p} // 0 } values %$all) };
}

sub agrees {
    my ($name) = @_;

    # the counts are sent just after each change, not waited for
    my $want = from_accounts();
    my $m;
    for (1 .. 50) {
        $m = metrics();
        last if $m->{points}{available} == $want->{available}
                && $m->{points}{pending} == $want->{pending};
        select undef, undef, undef, 0.05;
    }
    is_deeply({ map { $_ => $m->{points}{$_} } qw(available pending) },
              $want, "$name: the totals are the accounts' sums");

    return $m;
}

subtest 'before anything: zeros and nulls' => sub {
    my $m = metrics();
    is_deeply({ %$m{qw(since redemption_rate repeat_purchase_rate
                       clv_estimate)} },
              { since => undef, redemption_rate => undef,
                repeat_purchase_rate => undef, clv_estimate => undef },
              'nothing to divide by');
    is($m->{points}{issued}, 0, 'nothing issued');
    is(scalar @{ $m->{days} }, 7, 'seven days by default');
};

subtest 'orders of members and guests, a coupon, a repeat customer' => sub {
    create_coupon($t, code => 'WELCOME', type => 'percent', value => '10');

    order('m-1', 'o-1', '40.00', coupon => 'WELCOME');
    order('m-1', 'o-2', '20.00');
    order('m-2', 'o-3', '60.00', coupon => 'WELCOME');
    order('m-2', 'o-3', '60.00', coupon => 'WELCOME');    # a retry
    order(undef, 'o-4', '30.00');

    my $m = agrees('after four orders');
    is_deeply($m->{orders},
              { members => { count => 3, value => '120.00',
                             average => '40.00' },
                guests => { count => 1, value => '30.00',
                            average => '30.00' } },
              'members and guests, each order once');
    is_deeply([ $m->{customers}, $m->{repeat_customers},
                $m->{repeat_purchase_rate} ], [ 2, 1, 0.5 ],
              'two customers, one came back');
    is_deeply($m->{coupons}, [ { code => 'WELCOME', uses => 2 } ],
              'the coupon\'s uses');
    is($m->{points}{pending}, 1200, 'the points pending');
    is($m->{liability}{pending}, '12.00', 'worth 12.00 at 1.00 per 100');
    is($m->{clv_estimate}, '120.00',
       '40.00 x 1.5 orders a year x 2 years');
};

subtest 'credit, redemption, bonus, adjustment, return, expiry' => sub {
    my ($rc, $out) = $t->run_worker('--once', '--now', $t0 + 31 * $DAY);
    is($rc, 0, 'credited') or diag($out);
    agrees('after the credit');

    order('m-1', 'o-5', '10.00', points => 200);       # 200 redeemed
    is(admin(POST => 'events', { id => 'rv', type => 'review',
                                 customer => 'm-3' })->{status}, 201,
       'a review bonus');
    is(admin(POST => 'customers/m-2/adjustments',
             { id => 'fix', points => -40, reason => 'correction',
               actor => 'ops' })->{status}, 201, 'an adjustment');
    is(admin(POST => 'orders/o-3/returns',
             { return_id => 'r1', amount => '60.00' })->{status}, 201,
       'a whole return');

    my $m = agrees('after redemption, bonus, adjustment and return');
    is($m->{points}{redeemed}, 200, 'redeemed');
    is($m->{points}{adjusted}, 40, 'taken by hand');
    is($m->{points}{returned}, 600, 'returned: o-3 earned 600');
    is_deeply($m->{coupons}, [ { code => 'WELCOME', uses => 2 } ],
              'the coupon keeps its use: it does not release on return');

    my $today = strftime('%Y-%m-%d', gmtime);
    my ($d) = grep { $_->{date} eq $today } @{ $m->{days} };
    is_deeply({ %$d{qw(redeemed returned)} }, { redeemed => 200,
                                                returned => 600 },
              "today's redemption and return");

    ($rc, $out) = $t->run_worker('--once', '--now', $t0 + 500 * $DAY);
    is($rc, 0, 'a year and more later') or diag($out);
    $m = agrees('after expiry');
    is_deeply({ map { $_ => $m->{points}{$_} }
                qw(issued redeemed expired adjusted available) },
              { issued => 1330, redeemed => 200, expired => 450,
                adjusted => 40, available => 80 },
              'issued 600 + 600 + 50 + 80; 400 and 50 expired; what is '
              . 'left is o-5, credited in that visit');
    ledger_ok($r, undef, history => 1);
};

subtest 'days out of range' => sub {
    my $res = admin(GET => 'program/metrics?days=32');
    is($res->{status}, 400, '32 days: 400');
    is($res->{json}{error}, 'invalid_limit', 'invalid_limit');
};

subtest 'a worker that exits sends the counts it holds first' => sub {
    $t->quiet_redis;
    my $before = $r->cmd('HGET', 'loyalty:{stats}', 'member_orders');
    my $month = strftime('loyalty:{board}:%Y-%m', gmtime);

    # counts are sent every 100 ms; nginx is told to stop at once
    order('x-1', 'o-exit', '25.00');
    $t->stop_nginx;

    is($r->cmd('HGET', 'loyalty:{stats}', 'member_orders'), $before + 1,
       'the order is counted');
    is($r->cmd('ZSCORE', $month, 'x-1'), 250, 'and on the board');
};

subtest 'counts that cannot be sent when a worker exits: a warning' => sub {
    $t->start_nginx;
    order('x-2', 'o-lost', '25.00');

    # Redis gone before the next send; nginx told to stop at once
    $t->kill_redis;
    $t->log_mark;
    $t->stop_nginx;

    like($t->log_since_mark,
         qr/\[warn\].*loyalty: \d+ program totals and 1 leaderboard entries not counted: redis unavailable at exit/,
         'says how many were not counted, at warn');
};

$t->check_error_log;
$t->stop;

done_testing;
