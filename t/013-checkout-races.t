# Checkouts at the same moment: the last use of a coupon, a per-customer
# limit and a balance are each given once, however many ask at once, on
# one worker or four; what a failed checkout took comes back; a worker
# whose coupon cache overflows under load keeps serving.

use strict;
use warnings;

use lib 't/lib';
use IO::Socket::INET;
use JSON::PP;
use List::Util qw(sum0);
use Test::More;
use Time::HiRes qw(sleep time);
use Loyalty::Test;
use Loyalty::Shop;

my $t = shop();
my $r = $t->redis;

# One checkout per element of @checkouts ({ customer, body, path }), all
# written before any answer is read.  parallel() sends one customer only.
sub race {
    my ($s, @checkouts) = @_;

    my @socks;

    for my $c (@checkouts) {
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $s->port,
                                         Timeout => 5)
            or die "connect: $!";
        my $headers = { 'Content-Type' => 'application/json',
                        'X-Customer-Id' => $c->{customer} };
        push @socks, [ $sock, Loyalty::Test::raw_request(
            POST => $c->{path} // '/checkout', $headers, $c->{body}) ];
    }

    $_->[0]->syswrite($_->[1]) // die "write: $!" for @socks;

    return $s->collect([ map { $_->[0] } @socks ]);
}

# The same customer on $n connections, cart $i from $body->($i).
sub burst {
    my ($s, $n, $customer, $body) = @_;

    return $s->parallel($n, POST => '/checkout', body => $body,
                        headers => { 'Content-Type' => 'application/json',
                                     'X-Customer-Id' => $customer });
}

# "exhausted=49 valid=1": how many answers had each value of $field
# ("none" for no value), and how many were not a 200 from the backend.
sub tally {
    my ($field, @res) = @_;

    my %n;

    for my $res (@res) {
        my $v = $res->{status} == 200 && $res->{json}
                ? $res->{json}{$field} : "status $res->{status}";
        $n{ length $v ? $v : 'none' }++;
    }

    return join ' ', map { "$_=$n{$_}" } sort keys %n;
}

# The checkout ids whose answer had $field = $value.
sub ids_with {
    my ($field, $value, @res) = @_;

    return [ sort map { $_->{json}{checkout_id} }
             grep { $_->{json} && ($_->{json}{$field} // '') eq $value }
             @res ];
}

sub reserved {
    my ($s, $code) = @_;
    return [ sort @{ $s->redis->cmd('ZRANGE', "loyalty:{coupon:$code}:res",
                                    0, -1) } ];
}

sub points_state {
    my ($s, $id) = @_;
    my $key = "loyalty:{customer:$id}";
    return {
        account => { @{ $s->redis->cmd('HGETALL', $key) } },
        holds   => [ sort @{ $s->redis->cmd('ZRANGE', "$key:holds", 0, -1) } ],
        holdv   => { @{ $s->redis->cmd('HGETALL', "$key:holdv") } },
    };
}

sub alerts {
    my ($log) = @_;
    return [ grep { /\[(alert|crit)\]/ } split /\n/, $log ];
}

# The hash a hold of $points by each checkout in @ids leaves.
sub holds_of {
    my ($points, @ids) = @_;
    return { map { $_ => $points } @ids };
}

subtest 'the last use of a coupon, 50 customers at once: one valid, 49 '
        . 'exhausted, one reservation; 20 times over' => sub {
    my (@seen, @want, $over);

    for my $round (1 .. 20) {
        $r->cmd('FLUSHALL');
        create_coupon($t, code => 'LAST', type => 'percent', value => '10',
                      max_uses => 1);

        my @res = race($t, map { {
            customer => "u$_",
            body     => cart(coupon => 'LAST', checkout_id => "r$round-$_"),
        } } 1 .. 50);

        my $valid = ids_with('coupon_status', 'valid', @res);
        my $reserved = reserved($t, 'LAST');

        $over += (@$valid > 1 ? @$valid - 1 : 0)
                 + (@$reserved > 1 ? @$reserved - 1 : 0);

        push @seen, join '; ', tally('coupon_status', @res),
            'reserved ' . join(',', @$reserved),
            'owner ' . join(',', map { "$_=" . ($r->cmd('HGET',
                'loyalty:{coupon:LAST}:resc', $_) // 'none') } @$reserved),
            'live ' . join(',', @{ $r->cmd('HGETALL',
                'loyalty:{coupon:LAST}:resn') });

        my $id = $valid->[0] // 'none';
        my ($n) = $id =~ /-(\d+)$/;
        $n //= 'none';
        push @want, "exhausted=49 valid=1; reserved $id; owner $id=u$n; "
                    . "live u$n,1";
    }

    is($over, 0, 'no over-redemption in 20 bursts: never two valid, never '
                 . 'two reservations');
    is_deeply(\@seen, \@want, 'each burst: one valid, 49 exhausted, the one '
                              . 'reservation is the valid checkout\'s, of '
                              . 'its customer')
        or diag(join "\n", @seen);
};

subtest 'a coupon once per customer, 30 checkouts of one customer at '
        . 'once: one valid, the rest customer_limit' => sub {
    my (@seen, @want);

    for my $round (1 .. 10) {
        $r->cmd('FLUSHALL');
        create_coupon($t, code => 'ONCE', type => 'percent', value => '10',
                      per_customer => 1);

        my @res = burst($t, 30, '7', sub {
            cart(coupon => 'ONCE', checkout_id => "o$round-$_[0]")
        });

        my $valid = ids_with('coupon_status', 'valid', @res);

        push @seen, join '; ', tally('coupon_status', @res),
            'reserved ' . join(',', @{ reserved($t, 'ONCE') }),
            'live ' . join(',', @{ $r->cmd('HGETALL',
                'loyalty:{coupon:ONCE}:resn') });
        push @want, 'customer_limit=29 valid=1; reserved '
                    . ($valid->[0] // 'none') . '; live 7,1';
    }

    is_deeply(\@seen, \@want, 'each of 10 bursts: one valid, 29 '
                              . 'customer_limit, one live reservation '
                              . 'counted for customer 7')
        or diag(join "\n", @seen);
};

subtest 'one balance, concurrent redemptions of all of it: one held, the '
        . 'others insufficient, 1000 held' => sub {
    for my $n (2, 30) {
        my (@seen, @want);

        for my $round (1 .. 10) {
            $r->cmd('FLUSHALL');
            $r->cmd('HSET', 'loyalty:{customer:42}', 'a', 1000);

            my @res = burst($t, $n, '42', sub {
                cart(points => 1000, checkout_id => "p$round-$_[0]")
            });

            my $held = ids_with('points_status', 'held', @res);

            push @seen, { answers => tally('points_status', @res),
                          redeemed => sum0(map { $_->{json}{points_redeemed}
                                                 // 0 } @res),
                          redis => points_state($t, 42) };
            push @want, {
                answers  => 'held=1 insufficient=' . ($n - 1),
                redeemed => 1000,
                redis    => {
                    account => { a => 1000, h => 1000 },
                    holds   => $held,
                    holdv   => holds_of(1000, @$held),
                },
            };
        }

        is_deeply(\@seen, \@want, "$n at once, 10 times: one held, "
                                  . ($n - 1) . ' insufficient, the 1000 '
                                  . 'held by that one checkout');
    }
};

subtest '100 checkouts on 4 workers, half with a coupon and points: '
        . 'nothing given twice' => sub {
    my $s = shop(workers => 4);
    my $sr = $s->redis;

    my @workers = $s->worker_pids;
    is(scalar @workers, 4, 'four workers');

    my @customers = map { "m$_" } 0 .. 9;
    my (@seen, @want);

    for my $round (1 .. 5) {
        $sr->cmd('FLUSHALL');
        create_coupon($s, code => 'MIX', type => 'percent', value => '10',
                      max_uses => 10);
        $sr->cmd('HSET', "loyalty:{customer:$_}", 'a', 1000)
            for @customers;

        # each customer: five redemptions of 400, five plain checkouts
        my @res = race($s, map { {
            customer => $customers[int($_ / 2) % 10],
            body     => $_ % 2
                        ? cart(checkout_id => "x$round-$_")
                        : cart(checkout_id => "x$round-$_", coupon => 'MIX',
                               points => 400),
        } } 0 .. 99);

        my %seen = (answers => tally('coupon_status', @res) . '; '
                               . tally('points_status', @res),
                    reserved => reserved($s, 'MIX'));
        my %want = (answers => 'exhausted=40 none=50 valid=10; '
                               . 'held=20 insufficient=30 none=50',
                    reserved => ids_with('coupon_status', 'valid', @res));

        for my $c (@customers) {
            my @mine = grep { ($_->{json}{customer} // '') eq $c } @res;
            my $held = ids_with('points_status', 'held', @mine);

            $seen{$c} = points_state($s, $c);
            $want{$c} = {
                account => { a => 1000, h => 400 * @$held },
                holds   => $held,
                holdv   => holds_of(400, @$held),
            };
            $seen{"$c held"} = scalar @$held;
            $want{"$c held"} = 2;
        }

        push @seen, \%seen;
        push @want, \%want;
    }

    is_deeply(\@seen, \@want, '5 bursts: 10 uses of 10 reserved, each to a '
              . 'valid checkout; each customer 2 holds of 400 on 1000, '
              . 'Redis holding exactly what the backend was told');

    is_deeply(alerts($s->error_log), [], 'no [alert] or [crit] in the log');

    $s->stop;
};

subtest 'checkouts the backend fails in the middle of a burst give back '
        . 'exactly what they took' => sub {
    my (@seen, @want);

    for my $round (1 .. 5) {
        $r->cmd('FLUSHALL');
        create_coupon($t, code => 'HALF', type => 'percent', value => '10',
                      max_uses => 20);
        $r->cmd('HSET', "loyalty:{customer:f$_}", 'a', 1000)
            for 0 .. 4;

        my @res = race($t, map { {
            customer => "f" . ($_ % 5),
            path     => $_ % 3 ? '/checkout' : '/checkout/fail',
            body     => cart(checkout_id => "y$round-$_", coupon => 'HALF',
                             points => 300),
        } } 0 .. 59);

        my $valid = ids_with('coupon_status', 'valid', @res);
        my %want = (failed => 20, reserved => $valid);
        my %held;

        for my $c (map { "f$_" } 0 .. 4) {
            my @mine = grep { ($_->{json}{customer} // '') eq $c } @res;
            $held{$c} = ids_with('points_status', 'held', @mine);
            $want{$c} = {
                account => { a => 1000,
                             h => 300 * @{ $held{$c} } },
                holds   => $held{$c},
                holdv   => holds_of(300, @{ $held{$c} }),
            };
        }

        # the releases are sent as the failed requests end
        my $settled = sub {
            join(',', @{ reserved($t, 'HALF') }) eq join(',', @$valid)
                && !grep { join(',', @{ points_state($t, $_)->{holds} })
                           ne join(',', @{ $held{$_} }) } keys %held;
        };
        my $deadline = time + 5;
        sleep 0.05 until $settled->() || time > $deadline;

        my %seen = (failed => scalar(grep { $_->{status} == 500 } @res),
                    reserved => reserved($t, 'HALF'));
        $seen{$_} = points_state($t, $_) for keys %held;

        push @seen, \%seen;
        push @want, \%want;
    }

    is_deeply(\@seen, \@want, '5 bursts of 60, one in three failing: '
              . 'Redis keeps the uses and holds of the accepted checkouts '
              . 'only');
};

# A worker caches 1024 definitions; each code beyond evicts the least used.
subtest 'a worker evicting coupons from its cache under load stays up'
=> sub {
    $r->cmd('FLUSHALL');

    my $res = $t->http(POST => '/loyalty/admin/coupon-batches',
        body => JSON::PP->new->encode({
            batch => 'many', count => 2500, prefix => 'M-',
            coupon => { type => 'percent', value => '5' } }),
        headers => { 'Content-Type' => 'application/json',
                     Authorization => "Bearer $TOKEN" });
    is($res->{status}, 201, '2500 codes created') or diag($res->{body});

    my @codes = @{ $res->{json}{codes} || [] };
    my @workers = $t->worker_pids;
    my @res;

    $t->log_mark;

    for my $b (0 .. @codes / 50 - 1) {
        push @res, burst($t, 50, '7', sub {
            cart(coupon => $codes[ $b * 50 + $_[0] ],
                 checkout_id => "e$b-$_[0]")
        });
    }

    is(tally('coupon_status', @res), 'valid=2500',
       'every code in bursts of 50 is valid');
    is_deeply([ $t->worker_pids ], \@workers, 'the worker never restarted');
    is_deeply(alerts($t->log_since_mark), [],
              'no [alert]: no worker exited on a signal');
};

$t->stop;

done_testing();
