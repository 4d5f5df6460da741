# POST /orders/{id}/returns: pending points shrink pro rata, credited ones
# are clawed back from the newest lots with the shortfall recorded,
# redeemed points come back, a coupon that says so gets its use back;
# each return once, by its id.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use Time::HiRes ();
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
    loyalty_tier member 0      1;
    loyalty_tier gold   200.00 1;
HTTP
my $r = $t->redis;
my $t0 = time;

sub lines {
    my ($price, $quantity) = @_;

    return [ { sku => 'R1', brand => 'acme', category => 'misc',
               price => $price, quantity => $quantity } ];
}

sub order {
    my ($customer, $id, %extra) = @_;

    my $res = confirm($t, cart(order_id => $id, checkout_id => "c-$id",
                               lines => lines('50.00', 2), %extra),
                      customer => $customer);
    is($res->{status}, 201, "order $id confirmed") or diag($res->{body});

    # the event and the coupon's use are written after the answer
    # (PHASE_AFTER): wait for both, so that what follows sees them
    my $code = $extra{coupon};
    my $deadline = Time::HiRes::time() + 10;

    Time::HiRes::sleep(0.002) until Time::HiRes::time() > $deadline
        || ((grep { ref && grep { $_ eq $id } @$_ }
                 map { $_->[1] }
                 @{ $r->cmd('XREVRANGE', 'loyalty:{events}', '+', '-',
                            'COUNT', 20) })
            && (!$code
                || $r->cmd('HEXISTS',
                           'loyalty:{coupon:' . uc($code) . '}:orders', $id)));
}

sub ret {
    my ($order, $body, %opt) = @_;

    return $t->http(POST => "/loyalty/admin/orders/$order/returns",
                    body => ref $body ? $JSON->encode($body)
                                      : $body,
                    headers => { 'Content-Type' => 'application/json',
                                 $opt{no_token} ? ()
                                 : (Authorization => "Bearer $TOKEN") });
}

sub account {
    return { @{ $r->cmd('HGETALL', "loyalty:{customer:$_[0]}") } };
}

sub run {
    my ($now) = @_;

    my ($rc, $out) = $t->run_worker('--once', '--now', $now);
    is($rc, 0, 'the worker ran') or diag($out);
}

sub events_of {
    my ($type) = @_;

    return [ grep { $_->{type} eq $type }
             map { +{ @{ $_->[1] } } }
             @{ $r->cmd('XRANGE', 'loyalty:{events}', '-', '+') } ];
}

sub subset {
    my ($got, @keys) = @_;

    return { map { $_ => $got->{$_} } @keys };
}

my @FIELDS = qw(state counted points_removed redeemed_returned shortfall
                available pending replayed);

subtest 'inside the window: pending points shrink, a whole return voids' =>
sub {
    order('rp-1', 'rp-o1');    # 100.00: 1000 points pending

    my $res = ret('rp-o1', { return_id => 'r-1', amount => '25.00' });
    is($res->{status}, 201, 'a first return: 201') or diag($res->{body});
    is_deeply(subset($res->{json}, @FIELDS, 'customer', 'coupon'),
              { state => 'pending', counted => '25.00', points_removed => 250,
                redeemed_returned => 0, shortfall => 0, available => 0,
                pending => 750, replayed => JSON::PP::false(),
                customer => 'rp-1', coupon => undef },
              '25.00 of 100.00 returned: 250 of 1000 points gone');

    my $before = account('rp-1');
    $res = ret('rp-o1', { return_id => 'r-1', amount => '25.00' });
    is($res->{status}, 200, 'the same return again: 200');
    is($res->{json}{replayed}, JSON::PP::true(), 'replayed');
    is($res->{json}{points_removed}, 250, 'with the first answer');
    is_deeply(account('rp-1'), $before, 'and nothing changed');

    $res = ret('rp-o1', { return_id => 'r-1', amount => '30.00' });
    is($res->{status}, 409, 'its id with another amount: 409');
    is($res->{json}{error}, 'return_conflict', 'return_conflict');
    is_deeply(account('rp-1'), $before, 'nothing changed');

    $res = ret('rp-o1', { return_id => 'r-2',
                          lines => [ { price => '37.50', quantity => 2 } ] });
    is($res->{status}, 201, 'the rest, as lines');
    is_deeply(subset($res->{json}, qw(state counted points_removed pending)),
              { state => 'voided', counted => '75.00', points_removed => 750,
                pending => 0 }, 'all of it: the order is void');

    $res = ret('rp-o1', { return_id => 'r-3', amount => '10.00' });
    is($res->{status}, 201, 'more than was bought');
    is_deeply(subset($res->{json}, qw(counted points_removed)),
              { counted => '0.00', points_removed => 0 },
              'counts nothing');

    run($t0 + 31 * $DAY);
    is(account('rp-1')->{a} // 0, 0, 'the window ends: nothing credited');
    is_deeply([ map { "$_->{return}:$_->{points}" }
                grep { $_->{customer} eq 'rp-1' }
                @{ events_of('points_returned') } ],
              [ 'r-1:250', 'r-2:750', 'r-3:0' ],
              'one points_returned event per return, in order');
    is_deeply([ grep { $_->{customer} eq 'rp-1' }
                @{ events_of('points_credited') } ], [],
              'no points_credited');

    ledger_ok($r, undef, history => 1);
};

subtest 'after the window: clawed back from the newest lots, a shortfall '
        . 'when spent, redeemed points come back' => sub {
    order('rc-1', 'rc-o1');                      # 1000 points
    run($t0 + 31 * $DAY);
    is(account('rc-1')->{a}, 1000, 'credited');
    is(account('rc-1')->{t}, undef, 'member still: 100.00 of spend');

    order('rc-1', 'rc-o2', points => 800);       # spends 800, earns 920
    is(account('rc-1')->{a}, 200, '800 spent');

    my $res = ret('rc-o1', { return_id => 'all', amount => '100.00' });
    is($res->{status}, 201, 'the credited order returned whole');
    is_deeply(subset($res->{json}, @FIELDS),
              { state => 'credited', counted => '100.00',
                points_removed => 1000, redeemed_returned => 0,
                shortfall => 800, available => 0, pending => 920,
                replayed => JSON::PP::false() },
              '1000 to claw back, 200 there: 800 short, never below zero');
    is(account('rc-1')->{sf}, 800, 'the shortfall is recorded');
    is(account('rc-1')->{lt}, 0, 'lifetime loses the 1000');

    $res = ret('rc-o2', { return_id => 'all', amount => '100.00' });
    is_deeply(subset($res->{json}, qw(state points_removed redeemed_returned
                                      available pending)),
              { state => 'voided', points_removed => 920,
                redeemed_returned => 800, available => 0, pending => 0 },
              'the second order back too: its 800 redeemed points pay the '
              . 'shortfall');
    ok(!exists account('rc-1')->{sf}, 'no shortfall left');

    ledger_ok($r, undef, history => 1);
};

subtest 'a shortfall is paid from the next credit' => sub {
    order('sf-1', 'sf-o1');
    run($t0 + 31 * $DAY);
    order('sf-1', 'sf-o2', points => 1000);      # spends all 1000
    ret('sf-o1', { return_id => 'x', amount => '50.00' });
    is(account('sf-1')->{sf}, 500, '500 short');

    run($t0 + 62 * $DAY);
    my $acc = account('sf-1');
    is($acc->{a}, 400, 'the next order credits 900: 500 pay the shortfall');
    ok(!exists $acc->{sf}, 'paid');
    ledger_ok($r, undef, history => 1);
};

subtest 'the tier spend shrinks with a return after credit' => sub {
    my $res = confirm($t, cart(order_id => 'tr-o1', checkout_id => 'c-tr',
                               lines => lines('50.00', 5)),
                      customer => 'tr-1');
    run($t0 + 31 * $DAY);
    is(account('tr-1')->{t}, 'gold', '250.00: gold');

    ret('tr-o1', { return_id => 'half', amount => '100.00' });
    run($t0 + 31 * $DAY + 60);
    is(account('tr-1')->{t}, undef, '150.00 left: back to member');
    is_deeply([ map { "$_->{from}>$_->{to}" }
                grep { $_->{customer} eq 'tr-1' }
                @{ events_of('tier_changed') } ],
              [ 'member>gold', 'gold>member' ], 'told both ways');
    ledger_ok($r, undef, history => 1);
};

subtest 'a return before credit: the tier spend is what was kept' => sub {
    my $res = confirm($t, cart(order_id => 'tp-o1', checkout_id => 'c-tp',
                               lines => lines('50.00', 5)),
                      customer => 'tp-1');
    is($res->{status}, 201, '250.00 confirmed') or diag($res->{body});
    ret('tp-o1', { return_id => 'most', amount => '100.00' });

    run($t0 + 31 * $DAY);
    my $acc = account('tp-1');
    is($acc->{t}, undef, '150.00 kept: not gold (200.00)');
    like($acc->{S} // '', qr/^\d+:15000:tp-o1$/,
         'the tier spend counts the 150.00 kept');
    ledger_ok($r, undef, history => 1);
};

subtest 'a coupon that says so gets its use back on a whole return' => sub {
    create_coupon($t, code => 'BACK5', type => 'percent', value => 5,
                  max_uses => 10, release_on_return => JSON::PP::true());
    create_coupon($t, code => 'KEEP5', type => 'percent', value => 5,
                  max_uses => 10);

    order('cp-1', 'cp-o1', coupon => 'back5');
    order('cp-1', 'cp-o2', coupon => 'KEEP5');
    order('cp-1', 'cp-o3', coupon => 'BACK5');
    is($r->cmd('HGET', 'loyalty:{coupon:BACK5}', 'used'), 2, 'BACK5 used 2');

    my $res = ret('cp-o1', { return_id => 'r', amount => '100.00' });
    is_deeply($res->{json}{coupon}, { code => 'BACK5', use => 'released' },
              'whole return: the use is released');
    is($r->cmd('HGET', 'loyalty:{coupon:BACK5}', 'used'), 1, 'used 1');
    is($r->cmd('HGET', 'loyalty:{coupon:BACK5}:uses', 'cp-1'), 1,
       'the customer has one use left counted');

    $res = ret('cp-o1', { return_id => 'r', amount => '100.00' });
    is_deeply($res->{json}{coupon}, { code => 'BACK5', use => 'replayed' },
              'replayed: released once');
    is($r->cmd('HGET', 'loyalty:{coupon:BACK5}', 'used'), 1, 'still 1');

    $res = ret('cp-o3', { return_id => 'r', amount => '10.00' });
    is_deeply($res->{json}{coupon}, { code => 'BACK5', use => 'kept' },
              'a partial return keeps the use');

    $res = ret('cp-o2', { return_id => 'r', amount => '100.00' });
    is_deeply($res->{json}{coupon}, { code => 'KEEP5', use => 'kept' },
              'a coupon without release_on_return keeps it');
    is($r->cmd('HGET', 'loyalty:{coupon:KEEP5}', 'used'), 1, 'used 1');

    my $again = confirm($t, cart(order_id => 'cp-o1', checkout_id => 'c-cp-o1',
                                 lines => lines('50.00', 2),
                                 coupon => 'back5'),
                        customer => 'cp-1');
    is($r->cmd('HGET', 'loyalty:{coupon:BACK5}', 'used'), 1,
       'the returned order confirmed again does not count its use again');
    ledger_ok($r, undef, history => 1);
};

subtest 'bad returns are refused and change nothing' => sub {
    order('bad-1', 'bad-o1');
    my $before = [ account('bad-1'), $r->cmd('XLEN', 'loyalty:{events}') ];

    for my $c (
        [ '{"amount":"1.00"}',                         'invalid_field' ],
        [ '{"return_id":"","amount":"1.00"}',          'invalid_field' ],
        [ '{"return_id":"a b","amount":"1.00"}',       'invalid_field' ],
        [ '{"return_id":"r"}',                         'invalid_field' ],
        [ '{"return_id":"r","amount":"1","lines":[]}', 'invalid_field' ],
        [ '{"return_id":"r","amount":"-1.00"}',        'invalid_field' ],
        [ '{"return_id":"r","amount":"0"}',            'invalid_field' ],
        [ '{"return_id":"r","amount":"1.001"}',        'invalid_field' ],
        [ '{"return_id":"r","amount":"ten"}',          'invalid_field' ],
        [ '{"return_id":"r","amount":1e99}',           'invalid_field' ],
        [ '{"return_id":"r","lines":[]}',              'invalid_field' ],
        [ '{"return_id":"r","lines":[{"price":"1.00","quantity":0}]}',
          'invalid_field' ],
        [ '{"return_id":"r","lines":[{"price":"1.00","quantity":1.5}]}',
          'invalid_field' ],
        [ '{"return_id":"r","lines":[{"quantity":1}]}', 'invalid_field' ],
        [ '{"return_id":"r","amount":"1.00","why":"x"}', 'unknown_field' ],
        [ '[]',                                        'missing_body' ],
    ) {
        my $res = ret('bad-o1', $c->[0]);
        is($res->{status}, 400, "$c->[0]: 400");
        is($res->{json}{error}, $c->[1], "$c->[0]: $c->[1]")
            or diag($res->{body});
    }

    my $res = ret('bad-o1', '{"return_id":"r","amount":"1.00"}',
                  no_token => 1);
    is($res->{status}, 401, 'no token: 401');

    is_deeply([ account('bad-1'), $r->cmd('XLEN', 'loyalty:{events}') ],
              $before, 'the account and the events are unchanged');

    $res = ret('never', '{"return_id":"r","amount":"1.00"}');
    is($res->{status}, 404, 'an order never confirmed: 404');
    is($res->{json}{error}, 'not_found', 'not_found');

    confirm($t, cart(order_id => 'guest-o1', checkout_id => 'c-g',
                     lines => lines('50.00', 2)), customer => undef);
    $res = ret('guest-o1', '{"return_id":"r","amount":"1.00"}');
    is($res->{status}, 422, "a guest's order: 422");
    is($res->{json}{error}, 'guest_order', 'guest_order');

    ledger_ok($r, undef, history => 1);
};

subtest 'an order that earned nothing, returned in part or whole: nothing '
        . 'to remove, the return recorded' => sub {
    my $res = confirm($t, cart(order_id => 'zero-o1', checkout_id => 'c-z',
                               lines => lines('0.05', 1)),
                      customer => 'zero-1');
    is($res->{headers}{'x-points-earned'}, 0, '0.05 earns 0 points');

    $res = ret('zero-o1', { return_id => 'half', amount => '0.02' });
    is($res->{status}, 201, 'a part: 201') or diag($res->{body});
    is_deeply(subset($res->{json}, qw(state points_removed pending)),
              { state => 'pending', points_removed => 0, pending => 0 },
              'nothing removed');

    run($t0 + 31 * $DAY);
    $res = ret('zero-o1', { return_id => 'rest', amount => '0.03' });
    is($res->{status}, 201, 'the rest, once credited: 201')
        or diag($res->{body});
    is($res->{json}{points_removed}, 0, 'nothing removed');

    ledger_ok($r, undef, history => 1);
};

$t->stop;

done_testing;
