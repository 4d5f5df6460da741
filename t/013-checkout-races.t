# Checkouts at the same moment: the last use of a coupon, a per-customer
# limit and a balance are each given once, however many ask at once, on
# one worker or four; the checkouts of one coupon that share a Redis call
# are answered as if each had its own; what a failed checkout took comes
# back, also when its client left while Redis answered; a worker whose
# coupon cache overflows under load keeps serving.

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

my $t = shop(config => <<'CONF');
        location = /metrics { allow 127.0.0.1; deny all; loyalty_metrics; }
CONF
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

# --- one call of coupon_reserve.lua for many checkouts ------------------

my @COUPON_KEYS = map { "loyalty:{coupon:B}$_" } '', qw(:res :resc :resn :uses);

sub reserve_script {
    open my $fh, '<', 'ngx_loyalty_module/lua/coupon_reserve.lua' or die $!;
    local $/;
    return <$fh>;
}

# The coupon B (3 uses, once per customer, version 7; customer "done" has
# used it), and what its keys hold.
sub coupon_b {
    $r->cmd('FLUSHALL');
    $r->cmd('HSET', $COUPON_KEYS[0], version => 7, def => '{"x":1}',
            max_uses => 3, per_customer => 1, used => 1);
    $r->cmd('HSET', $COUPON_KEYS[4], done => 1);
}

sub coupon_b_state {
    return {
        res  => $r->cmd('ZRANGE', $COUPON_KEYS[1], 0, -1, 'WITHSCORES'),
        resc => { @{ $r->cmd('HGETALL', $COUPON_KEYS[2]) } },
        resn => { @{ $r->cmd('HGETALL', $COUPON_KEYS[3]) } },
    };
}

subtest 'one call, twelve checkouts: each answered in order as if alone, '
        . 'the same answers and state as twelve calls' => sub {
    my $src = reserve_script();
    my @items = (
        [ c1  => alice => 7, 'reserve' ],   # valid
        [ c2  => alice => 7, 'reserve' ],   # alice holds one already
        [ c1  => alice => 7, 'reserve' ],   # a retry keeps its use
        [ c1  => bob   => 7, 'reserve' ],   # another customer's checkout
        [ c3  => ''    => 7, 'reserve' ],   # a guest, limit per customer
        [ c4  => done  => 7, 'reserve' ],   # used it before
        [ c5  => bob   => 6, 'reserve' ],   # evaluated an old definition
        [ c6  => carol => 7, 'verify' ],    # the rules refused it
        [ c7  => dave  => 7, 'check' ],     # shadow mode: nothing reserved
        [ c8  => bob   => 7, 'reserve' ],   # the 2nd use (1 used before)
        [ c9  => erin  => 7, 'reserve' ],   # none left
        [ c10 => frank => 7, 'reserve' ],
    );
    my @want = qw(valid customer_limit valid conflict customer_limit
                  customer_limit stale fresh valid valid exhausted
                  exhausted);
    my $state = {
        res  => [ c1 => 2000, c8 => 2000 ],
        resc => { c1 => 'alice', c8 => 'bob' },
        resn => { alice => 1, bob => 1 },
    };

    coupon_b();
    is_deeply($r->cmd('EVAL', $src, 5, @COUPON_KEYS, 1000, 2000,
                      map { @$_ } @items),
              [ 'answers', 7, '{"x":1}', @want ],
              'the answers, with the definition for the stale one');
    is_deeply(coupon_b_state(), $state,
              'two uses reserved, each of its customer');

    coupon_b();
    my @alone = map {
        my $a = $r->cmd('EVAL', $src, 5, @COUPON_KEYS, 1000, 2000, @$_);
        $a->[3]
    } @items;
    is_deeply(\@alone, \@want, 'one call each: the same answers');
    is_deeply(coupon_b_state(), $state, 'and the same state');

    is_deeply($r->cmd('EVAL', $src, 5, @COUPON_KEYS, 3000, 4000,
                      c11 => frank => 7, 'reserve', c12 => gina => 7,
                      'reserve'),
              [ 'answers', 7, '', 'valid', 'valid' ],
              'once the reservations expired: uses again, no definition');
    is_deeply(coupon_b_state(),
              { res  => [ c11 => 4000, c12 => 4000 ],
                resc => { c11 => 'frank', c12 => 'gina' },
                resn => { frank => 1, gina => 1 } },
              'the expired ones are gone, with their counts');

    $r->cmd('HSET', $COUPON_KEYS[0], disabled => 1);
    is_deeply($r->cmd('EVAL', $src, 5, @COUPON_KEYS, 3000, 4000,
                      c13 => hal => 7, 'reserve', c14 => ivy => 6,
                      'reserve'),
              [ 'answers', 7, '{"x":1}', 'disabled', 'stale' ],
              'disabled: each current checkout refused');

    is_deeply($r->cmd('EVAL', $src, 5, map({ s/\{coupon:B\}/{coupon:Z}/r }
                                           @COUPON_KEYS),
                      3000, 4000, c15 => jo => '', 'reserve'),
              [ 'not_found' ], 'an unknown coupon: not_found');
};

# loyalty_coupon_reserve_calls_total from /metrics
sub reserve_calls {
    my ($m) = $t->http(GET => '/metrics')->{body}
              =~ /^loyalty_coupon_reserve_calls_total (\d+)$/m;
    return $m;
}

subtest '50 checkouts of a coupon of 20 uses at once: 20 valid, 30 '
        . 'exhausted, in fewer Redis calls than checkouts' => sub {
    my (@seen, @want, @calls);

    for my $round (1 .. 5) {
        $r->cmd('FLUSHALL');
        create_coupon($t, code => 'SHARED', type => 'percent', value => '10',
                      max_uses => 20);

        my $before = reserve_calls();
        my @res = race($t, map { {
            customer => "s$_",
            body     => cart(coupon => 'SHARED',
                             checkout_id => "b$round-$_"),
        } } 1 .. 50);
        push @calls, reserve_calls() - $before;

        my $valid = ids_with('coupon_status', 'valid', @res);

        push @seen, join '; ', tally('coupon_status', @res),
            'reserved ' . join(',', @{ reserved($t, 'SHARED') }),
            'owners ' . join(',', map { $r->cmd('HGET',
                'loyalty:{coupon:SHARED}:resc', $_) // 'none' } @$valid),
            'live ' . join(',', sort values %{ { @{ $r->cmd('HGETALL',
                'loyalty:{coupon:SHARED}:resn') } } });
        push @want, join '; ', 'exhausted=30 valid=20',
            'reserved ' . join(',', @$valid),
            'owners ' . join(',', map { /-(\d+)$/ && "s$1" } @$valid),
            'live ' . join(',', (1) x 20);
    }

    is_deeply(\@seen, \@want, 'each of 5 bursts: 20 valid, each holding '
                              . 'the reservation of its customer')
        or diag(join "\n", @seen);
    cmp_ok((sort { $a <=> $b } @calls)[0], '<', 50,
           "checkouts shared calls (calls per burst: @calls)");
};

subtest 'scripts flushed from Redis: a shared call is sent again, each '
        . 'checkout answered' => sub {
    $r->cmd('FLUSHALL');
    create_coupon($t, code => 'AGAIN', type => 'percent', value => '10',
                  max_uses => 100);
    is(checkout($t, cart(coupon => 'AGAIN', checkout_id => 'a-0'))
           ->{json}{coupon_status}, 'valid', 'the definition is cached');

    $r->cmd('SCRIPT', 'FLUSH');
    $t->log_mark;

    my @res = race($t, map { {
        customer => "a$_",
        body     => cart(coupon => 'AGAIN', checkout_id => "a-$_"),
    } } 1 .. 30);

    is(tally('coupon_status', @res), 'valid=30', 'all 30 valid');
    is_deeply(reserved($t, 'AGAIN'), [ sort map { "a-$_" } 0 .. 30 ],
              'each holds its reservation');
    like($t->log_since_mark, qr/lost script "coupon_reserve/,
         'the script was loaded again (NOSCRIPT)');
};

subtest 'a checkout whose client leaves while Redis answers keeps no '
        . 'reservation' => sub {
    my $s = shop(http => "    loyalty_redis_timeout 10s;\n");

    $s->redis->cmd('FLUSHALL');
    create_coupon($s, code => 'LEFT', type => 'percent', value => '10',
                  max_uses => 5);
    is(checkout($s, cart(coupon => 'LEFT', checkout_id => 'stay'))
           ->{json}{coupon_status}, 'valid',
       'a checkout that stays: valid (and the definition cached)');

    $s->pause_redis;
    $s->abort(1, POST => '/checkout', after => 0.5,
              headers => { 'Content-Type' => 'application/json',
                           'X-Customer-Id' => '42' },
              body => cart(coupon => 'LEFT', checkout_id => 'gone'));
    $s->resume_redis;

    my $deadline = time + 5;
    sleep 0.05 until join(',', @{ reserved($s, 'LEFT') }) eq 'stay'
                     || time > $deadline;

    is_deeply(reserved($s, 'LEFT'), [ 'stay' ],
              'the use reserved for the one that left is given back');
    is_deeply({ @{ $s->redis->cmd('HGETALL',
                                  'loyalty:{coupon:LEFT}:resn') } },
              { 42 => 1 }, 'counted once for customer 42');

    $s->stop;
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
