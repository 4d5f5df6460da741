# What loyalty-worker does over time beyond crediting: expiry and its
# reminder, tiers up and down, monthly statements, the birthday bonus,
# the marketing opt-out; and PATCH /customers/{id}, which sets the
# birthday and the opt-out.  Time is the worker's --now.

use strict;
use warnings;

use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::Local qw(timegm);
use Loyalty::Ledger;
use Loyalty::Shop;
use Loyalty::Test;

my $DAY = 86400;

# 250.00 of spend, 2500 points
my $BIG = [ { sku => 'B1', brand => 'acme', category => 'misc',
              price => '50.00', quantity => 5 } ];

sub start_shop {
    my ($downgrade) = @_;

    return shop(http => <<"HTTP", confirm => '');
    loyalty_earn 10 per 1.00;
    loyalty_return_window 30d;
    loyalty_points_expire 365d notice=30d;
    loyalty_tier member 0      1;
    loyalty_tier silver 100.00 1;
    loyalty_tier gold   200.00 1;
    loyalty_tier_window 365d;
    loyalty_tier_downgrade $downgrade;
    loyalty_birthday_reward 100;
HTTP
}

my $t = start_shop('one');
my $r = $t->redis;

sub account {
    my ($customer) = @_;

    return { @{ $r->cmd('HGETALL', "loyalty:{customer:$customer}") } };
}

# The events the worker sent since the last call, as field hashes; only
# those of a customer when one is named.
my $seen = '-';

sub new_events {
    my ($customer) = @_;

    my @e = map { +{ @{ $_->[1] } } }
            @{ $r->cmd('XRANGE', 'loyalty:{events}',
                       $seen eq '-' ? '-' : "($seen", '+') };
    my $all = $r->cmd('XREVRANGE', 'loyalty:{events}', '+', '-', 'COUNT', 1);
    $seen = $all->[0][0] if @$all;

    return [ grep { $_->{type} ne 'points_earned'
                    && (!defined $customer || $_->{customer} eq $customer) }
             @e ];
}

sub types { [ map { $_->{type} } @{ $_[0] } ] }

sub run {
    my ($now) = @_;

    my ($rc, $out) = $t->run_worker('--once', '--now', $now);
    is($rc, 0, 'the worker ran at ' . strftime('%F %T', gmtime $now))
        or diag($out);
}

sub admin { admin_request($t, @_) }

sub order {
    my ($customer, $id) = @_;

    my $res = confirm($t, cart(order_id => $id, checkout_id => "c-$id",
                               lines => $BIG), customer => $customer);
    is($res->{status}, 201, "order $id confirmed") or diag($res->{body});
}

my $t0 = time;
my $T1 = $t0 + 31 * $DAY;       # after the return window: credited
my $expiry = $T1 + 365 * $DAY;  # the lot's end

subtest 'expiry: a reminder once, then the points expire' => sub {
    order('ex-1', 'ex-o1');
    order('ex-2', 'ex-o2');
    is(admin(PATCH => 'customers/ex-2', '{"marketing":false}')->{status},
       200, 'ex-2 opts out of marketing');

    run($T1);
    is(account('ex-1')->{a}, 2500, 'credited 2500');
    is(account('ex-1')->{L}, "$expiry:2500", 'as a lot expiring in 365d');
    new_events();

    run($expiry - 40 * $DAY);
    is_deeply([ grep { $_ ne 'monthly_statement' } @{ types(new_events()) } ],
              [], '40 days before: no reminder yet');

    run($expiry - 29 * $DAY);
    my $e = [ grep { $_->{type} ne 'monthly_statement' } @{ new_events() } ];
    is_deeply($e, [ { type => 'points_expiring',
                      id => "points_expiring:ex-1:$expiry",
                      customer => 'ex-1', at => $expiry - 29 * $DAY,
                      points => 2500, expires_at => $expiry,
                      available => 2500 } ],
              '29 days before: one reminder, not to the one who opted out')
        or diag(explain $e);

    run($expiry - 28 * $DAY);
    is_deeply([ grep { $_ eq 'points_expiring' } @{ types(new_events()) } ],
              [], 'the next day: no second reminder');

    run($expiry + 1);
    $e = [ grep { $_->{type} eq 'points_expired' } @{ new_events() } ];
    is_deeply([ sort map { "$_->{customer}:$_->{points}:$_->{available}" }
                @$e ],
              [ 'ex-1:2500:0', 'ex-2:2500:0' ],
              'expired: both told, opted out or not (transactional)');
    is(account('ex-1')->{a}, 0, 'nothing available');
    ok(!exists account('ex-1')->{L}, 'no lot left');
    is(account('ex-1')->{lt}, 2500, 'lifetime keeps what was credited');

    ledger_ok($r, undef, history => 1);
};

subtest 'tiers: up at once, down one level per window' => sub {
    order('tr-1', 'tr-o1');

    run($T1);
    my $up = [ grep { $_->{type} eq 'tier_changed' }
                 @{ new_events('tr-1') } ];
    is_deeply([ map { "$_->{from}>$_->{to}:$_->{direction}" } @$up ],
              [ 'member>gold:up' ], '250.00 credited: straight to gold');
    is(account('tr-1')->{t}, 'gold', 'the account says gold');

    run($T1 + 200 * $DAY);
    is(account('tr-1')->{t}, 'gold', 'inside the window: still gold');

    run($T1 + 365 * $DAY + 1);
    my $down = [ grep { $_->{type} eq 'tier_changed' }
                 @{ new_events('tr-1') } ];
    is_deeply([ map { "$_->{from}>$_->{to}:$_->{direction}" } @$down ],
              [ 'gold>silver:down' ],
              'the spend left the window: one level down only');

    run($T1 + 500 * $DAY);
    is(account('tr-1')->{t}, 'silver', 'still silver before another window');

    run($T1 + 2 * 365 * $DAY + 2);
    $down = [ grep { $_->{type} eq 'tier_changed' }
              @{ new_events('tr-1') } ];
    is_deeply([ map { "$_->{from}>$_->{to}" } @$down ], [ 'silver>member' ],
              'a window later: the next level');
    ok(!exists account('tr-1')->{t}, 'the entry tier is no field');

    ledger_ok($r, undef, history => 1);
};

subtest 'statements: once a month, never to who opted out' => sub {
    order('st-1', 'st-o1');
    order('st-2', 'st-o2');
    is(admin(PATCH => 'customers/st-2', '{"marketing":false}')->{status},
       200, 'st-2 opts out');

    run($T1);
    is_deeply([ grep { $_ eq 'monthly_statement' } @{ types(new_events()) } ],
              [], 'the first visit sends no statement');

    my @tm = gmtime $T1;
    my $next = timegm(0, 0, 0, 1, ($tm[4] + 1) % 12,
                      $tm[5] + 1900 + ($tm[4] == 11 ? 1 : 0));
    my $month = strftime('%Y-%m', gmtime $next);

    run($next + 3600);
    my @s = grep { $_->{type} eq 'monthly_statement' } @{ new_events() };
    is_deeply([ map { $_->{customer} } @s ], [ 'st-1' ],
              'the next month: one statement, to st-1 only');
    is_deeply({ map { $_ => $s[0]{$_} }
                qw(month available pending expiring_soon expiring_at tier
                   next_tier to_next_tier id) },
              { month => $month, available => 2500, pending => 0,
                expiring_soon => 0, expiring_at => '', tier => 'gold',
                next_tier => '', to_next_tier => 0,
                id => "monthly_statement:st-1:$month" },
              'balance, pending, expiring soon and the tier');

    run($next + 7200);
    is_deeply([ grep { $_ eq 'monthly_statement' } @{ types(new_events()) } ],
              [], 'the same month again: none');

    ledger_ok($r, undef, history => 1);
};

subtest 'birthday: the bonus on the day, once a year' => sub {
    order('bd-1', 'bd-o1');
    run($T1);
    new_events();

    my $day = $T1 + 40 * $DAY;
    my $mmdd = strftime('%m-%d', gmtime $day);
    my $res = admin(PATCH => 'customers/bd-1', qq({"birthday":"$mmdd"}));
    is($res->{status}, 200, 'birthday set') or diag($res->{body});
    is($res->{json}{birthday}, $mmdd, 'and answered');
    is($res->{json}{marketing}, JSON::PP::true(), 'still opted in');

    run($day - $DAY);
    is_deeply([ grep { $_ eq 'birthday_bonus' } @{ types(new_events()) } ],
              [], 'the day before: nothing');

    run($day);
    my $e = new_events();
    my $year = strftime('%Y', gmtime $day);
    is_deeply([ map { "$_->{type}:$_->{points}:$_->{id}" }
                grep { $_->{type} eq 'birthday_bonus' } @$e ],
              [ "birthday_bonus:100:birthday_bonus:bd-1:$year" ],
              'on the day: 100 points');
    is(account('bd-1')->{a}, 2600, 'available grew by 100');

    run($day + 3600);
    is_deeply([ grep { $_ eq 'birthday_bonus' } @{ types(new_events()) } ],
              [], 'later that day: no second bonus');

    my @tm = gmtime $day;
    my $again = timegm(0, 0, 12, $tm[3], $tm[4], $tm[5] + 1900 + 1);
    $again = timegm(0, 0, 12, 28, 1, $tm[5] + 1901) if $mmdd eq '02-29';
    run($again);
    is_deeply([ grep { $_ eq 'birthday_bonus' } @{ types(new_events()) } ],
              [ 'birthday_bonus' ], 'a year later: again');

    ledger_ok($r, undef, history => 1);
};

subtest 'birthday on 29 February: on the 28th in other years' => sub {
    order('bd-2', 'bd-o2');
    is(admin(PATCH => 'customers/bd-2', '{"birthday":"02-29"}')->{status},
       200, 'birthday 02-29');

    # the first 28 February after the order's window in a common year
    my $year = (gmtime $T1)[5] + 1901;
    $year++ while $year % 4 == 0;
    my $feb28 = timegm(0, 0, 12, 28, 1, $year);

    run($feb28);
    is_deeply([ map { $_->{customer} }
                grep { $_->{type} eq 'birthday_bonus' } @{ new_events() } ],
              [ 'bd-2' ], "28 February $year: the bonus");
};

subtest 'PATCH /customers/{id}: bad input is refused and changes nothing' =>
sub {
    order('pt-1', 'pt-o1');
    my $before = account('pt-1');

    for my $c ([ '{"birthday":"13-01"}', 'invalid_field' ],
               [ '{"birthday":"02-30"}', 'invalid_field' ],
               [ '{"birthday":"2-3"}',   'invalid_field' ],
               [ '{"birthday":1231}',    'invalid_field' ],
               [ '{"marketing":"no"}',   'invalid_field' ],
               [ '{"tier":"gold"}',      'unknown_field' ],
               [ '{}',                   'missing_body' ],
               [ '[]',                   'missing_body' ])
    {
        my $res = admin(PATCH => 'customers/pt-1', $c->[0]);
        is($res->{status}, 400, "$c->[0]: 400");
        is($res->{json}{error}, $c->[1], "$c->[0]: $c->[1]");
    }

    is_deeply(account('pt-1'), $before, 'the account is unchanged');

    my $res = admin(PATCH => 'customers/nobody', '{"birthday":"01-01"}');
    is($res->{status}, 404, 'no account: 404');
    ok(!$r->cmd('EXISTS', 'loyalty:{customer:nobody}'),
       'and none was created');

    $res = $t->http(PATCH => '/loyalty/admin/customers/pt-1',
                    body => '{"marketing":false}',
                    headers => { 'Content-Type' => 'application/json' });
    is($res->{status}, 401, 'no token: 401');
    ok(!exists account('pt-1')->{mo}, 'and not opted out');

    $res = admin(PATCH => 'customers/pt-1',
                 '{"birthday":"12-24","marketing":false}');
    is($res->{status}, 200, 'both at once');
    is_deeply([ @{ account('pt-1') }{qw(bd mo)} ], [ '12-24', '1' ],
              'stored');
    is(admin(PATCH => 'customers/pt-1',
             '{"birthday":null,"marketing":true}')->{status}, 200,
       'and removed');
    is_deeply([ grep { exists account('pt-1')->{$_} } qw(bd mo) ], [],
              'gone');

    ledger_ok($r, undef, history => 1);
};

$t->stop;

subtest 'loyalty_tier_downgrade full: straight to the tier the spend gives' =>
sub {
    $t = start_shop('full');
    $r = $t->redis;
    $seen = '-';

    order('fu-1', 'fu-o1');
    run($T1);
    is(account('fu-1')->{t}, 'gold', 'gold');
    new_events();

    run($T1 + 365 * $DAY + 1);
    my $down = [ grep { $_->{type} eq 'tier_changed' }
                 @{ new_events('fu-1') } ];
    is_deeply([ map { "$_->{from}>$_->{to}:$_->{direction}" } @$down ],
              [ 'gold>member:down' ], 'the spend left: down to member');

    ledger_ok($r, undef, history => 1);
    $t->stop;
};

done_testing;
