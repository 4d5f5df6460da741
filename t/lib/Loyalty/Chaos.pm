package Loyalty::Chaos;

# Races and faults at any size.  The same scenarios run small in `make
# test` (t/04x-*.t) and full size behind `make chaos` (t/chaos/*.t); each
# takes its counts as arguments, returns what it measured and checks the
# outcome, including the ledger invariant over every account.
#
# Parallel requests are raw sockets, all written before any answer is
# read; a load that runs beside a fault is a forked child that confirms
# orders and reports to a file, so the parent can break things meanwhile.

use strict;
use warnings;

use Exporter 'import';
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use List::Util qw(max sum0);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

use Loyalty::Ledger;
use Loyalty::Shop;
use Loyalty::Test;

our @EXPORT = qw(size chaos_shop send_all coupon_race points_race
                 confirm_race return_race start_load wait_load
                 load_progress replay_spool credited_once spool_lines
                 eventually report redis_kill_fault redis_pause_fault
                 nginx_fault worker_kill_fault disk_full_fault
                 start_proxy reset_fault);

our $DAY = 86400;

my $JSON = JSON::PP->new->canonical;

# What every order here buys: 59.97, 599 points at 10 per 1.00.
our $LINES = [ { sku => 'P1', brand => 'plain', category => 'misc',
                 price => '19.99', quantity => 3 } ];
our $POINTS = 599;

# $n, or CHAOS_ROUNDS when set (to shorten a `make chaos` run).
sub size {
    my ($n) = @_;

    return $ENV{CHAOS_ROUNDS} && $ENV{CHAOS_ROUNDS} < $n
           ? $ENV{CHAOS_ROUNDS} : $n;
}

# A shop with a confirmation location and its spool, 30 days of return
# window and a deadline short enough for the faults.
sub chaos_shop {
    my (%opt) = @_;

    my $timeout = delete $opt{timeout} // '200ms';

    return shop(http => <<"HTTP" . (delete $opt{http} // ''),
    loyalty_earn 10 per 1.00;
    loyalty_return_window 30d;
    loyalty_points_expire 365d;
    loyalty_redis_timeout $timeout;
HTTP
                confirm => '', %opt);
}

sub eventually {
    my ($cond, $patience) = @_;

    my $deadline = time + ($patience // 10);

    while (time < $deadline) {
        return 1 if $cond->();
        sleep 0.01;
    }

    return $cond->();
}

# One request per element of @reqs ({ customer, body, path }), all
# written before any answer is read; each answer gets the seconds it took
# (from the last write) in {took}.
sub send_all {
    my ($t, @reqs) = @_;

    my @socks;

    for my $q (@reqs) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port,
                                      Timeout => 5)
            or die "connect: $!";
        my %h = ('Content-Type' => 'application/json');
        $h{'X-Customer-Id'} = $q->{customer} if defined $q->{customer};
        push @socks, [ $s, Loyalty::Test::raw_request(
            $q->{method} // 'POST', $q->{path} // '/checkout', \%h,
            $q->{body}) ];
    }

    $_->[0]->syswrite($_->[1]) // die "write: $!" for @socks;

    return collect_timed(map { $_->[0] } @socks);
}

sub collect_timed {
    my (@socks) = @_;

    my (%buf, %took, %index);
    $index{ fileno $socks[$_] } = $_ for 0 .. $#socks;

    my $start = time;
    my $sel = IO::Select->new(@socks);
    my $deadline = $start + 30;

    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(0.5)) {
            my $i = $index{ fileno $s };

            my $got = $s->sysread(my $chunk, 65536);

            if (!$got) {
                $took{$i} = time - $start;
                $sel->remove($s);
                close $s;
                next;
            }

            $buf{$i} .= $chunk;
        }
    }

    return map {
        my $res = Loyalty::Test::parse_response($buf{$_} // '');
        $res->{took} = $took{$_} // 30;
        $res
    } 0 .. $#socks;
}

sub tally {
    my ($get, @res) = @_;

    my %n;
    $n{ $get->($_) // 'none' }++ for @res;

    return join ' ', map { "$_=$n{$_}" } sort keys %n;
}

sub report {
    my ($what, %m) = @_;

    my $line = "$what: " . join ', ', map { "$_ $m{$_}" } sort keys %m;
    diag($line) if $ENV{CHAOS_REPORT} || $ENV{TEST_VERBOSE};

    if (my $file = $ENV{CHAOS_REPORT}) {
        open my $fh, '>>', $file or die "$file: $!";
        print $fh "$line\n";
        close $fh;
    }

    return \%m;
}

# --- races -----------------------------------------------------------------

# An admin POST; a 503 (a missed deadline) is sent again, as the API asks.
sub admin_post {
    my ($t, $path, $body) = @_;

    my $res;

    for (1 .. 20) {
        $res = $t->http(POST => $path, body => $JSON->encode($body),
                        headers => { 'Content-Type' => 'application/json',
                                     Authorization => "Bearer $TOKEN" });
        last if $res->{status} != 503;
        sleep 0.05;
    }

    return $res;
}

# Replays whatever a missed deadline spooled (a loaded machine).
sub replay_quietly {
    my ($t) = @_;

    return 0 unless spool_lines($t);

    my $n = () = spool_lines($t);
    my ($rc, $out) = $t->run_worker('--once', '--spool', $t->dir . '/spool');
    diag("spool replay failed: $out") if $rc;

    return $n;
}

# Bursts of $n checkouts by $n customers on a coupon with one use left;
# the valid checkout is confirmed.  Never two valid, never two
# reservations, never more uses than the coupon has.  A checkout whose
# Redis call missed its deadline is `unverified` (no discount): allowed,
# counted; without one, a burst has exactly one valid answer.
sub coupon_race {
    my ($t, $bursts, $n) = @_;

    my $r = $t->redis;
    my $start = time;
    my ($over, $unverified, $spooled, @bad) = (0, 0, 0);

    for my $b (1 .. $bursts) {
        my $code = "LAST$b";

        # one use left: of two, one is already used
        create_coupon($t, code => $code, type => 'percent', value => '10',
                      max_uses => 2);
        my $first = confirm($t, cart(order_id => "cf$b", checkout_id => "cf$b",
                                     coupon => $code, lines => $LINES),
                            customer => "cf$b");
        push @bad, "burst $b: the first use answered $first->{status}"
            unless $first->{status} == 201;

        # the use is committed after the answer, or spooled
        my $used = sub { $r->cmd('HGET', "loyalty:{coupon:$code}", 'used') };
        $spooled += replay_quietly($t) unless eventually($used, 2);
        push @bad, "burst $b: the first use was not committed"
            unless eventually($used);

        my @res = send_all($t, map { {
            customer => "cr$b-$_",
            body     => cart(coupon => $code, checkout_id => "cc$b-$_",
                             lines => $LINES),
        } } 1 .. $n);

        my %st;
        $st{ $_->{status} == 200 ? $_->{json}{coupon_status} // ''
                                 : "status $_->{status}" }++ for @res;
        my @valid = grep { ($_->{json}{coupon_status} // '') eq 'valid' }
                    @res;
        $unverified += $st{unverified} // 0;

        my @odd = grep { !/^(valid|exhausted|unverified)$/ } keys %st;
        push @bad, "burst $b: " . join ' ', map { "$_=$st{$_}" } sort keys %st
            if @odd || (!$st{unverified} && @valid != 1);

        for my $v (@valid) {
            confirm($t, cart(order_id => "oc$b", lines => $LINES,
                             checkout_id => $v->{json}{checkout_id},
                             coupon => $code),
                    customer => $v->{json}{customer});
        }

        my $reserved = $r->cmd('ZCARD', "loyalty:{coupon:$code}:res");
        $over += max(0, @valid - 1) + max(0, $reserved - 1);
    }

    # the last commits land after their answers, or from the spool
    my $used = sub {
        sum0(map { $r->cmd('HGET', "loyalty:{coupon:LAST$_}", 'used') // 0 }
             1 .. $bursts)
    };
    eventually(sub { $used->() >= 2 * $bursts }, 5);
    $spooled += replay_quietly($t);

    my @over = grep { ($r->cmd('HGET', "loyalty:{coupon:LAST$_}", 'used')
                       // 0) > 2 } 1 .. $bursts;

    is($over, 0, "$bursts bursts of $n: never two valid answers or two "
                 . 'reservations for the last use');
    is_deeply(\@over, [], 'no coupon used more than its 2 uses');
    is_deeply(\@bad, [], 'each burst: one valid, the others exhausted '
                         . '(or unverified at a missed deadline)')
        or diag(join "\n", @bad[0 .. min9($#bad)]);
    cmp_ok($used->(), '>=', 2 * $bursts - $unverified,
           'the last use committed wherever a checkout got it');

    return report('coupon race', bursts => $bursts, checkouts => $bursts * $n,
                  'over-redemptions' => $over + @over,
                  'unverified (deadline missed)' => $unverified,
                  'orders spooled' => $spooled,
                  seconds => sprintf('%.1f', time - $start));
}

# Bursts of $n checkouts of one customer, each redeeming the whole balance
# granted by hand; then every one of them confirmed at once, all claiming
# the points: never two holds, the balance spent once, never below zero.
sub points_race {
    my ($t, $bursts, $n) = @_;

    my $r = $t->redis;
    my $start = time;
    my ($unverified, $spooled, @bad) = (0, 0);

    for my $b (1 .. $bursts) {
        my $c = "pr$b";

        my $res = admin_post($t, "/loyalty/admin/customers/$c/adjustments",
                             { id => "g$b", points => 1000,
                               reason => 'race', actor => 'chaos' });
        push @bad, "$c: grant answered $res->{status}"
            unless $res->{status} == 201;

        my @res = send_all($t, map { {
            customer => $c,
            body     => cart(points => 1000, checkout_id => "pc$b-$_",
                             lines => $LINES),
        } } 1 .. $n);

        my %st;
        $st{ $_->{status} == 200 ? $_->{json}{points_status} // ''
                                 : "status $_->{status}" }++ for @res;
        $unverified += $st{unverified} // 0;

        my $acc = { @{ $r->cmd('HGETALL', "loyalty:{customer:$c}") } };
        my @odd = grep { !/^(held|insufficient|unverified)$/ } keys %st;
        push @bad, "$c: held " . ($acc->{h} // 0) . '; '
                   . join ' ', map { "$_=$st{$_}" } sort keys %st
            if @odd || ($st{held} // 0) > 1 || ($acc->{h} // 0) > 1000
               || (!$st{unverified}
                   && (($st{held} // 0) != 1 || ($acc->{h} // 0) != 1000));

        # the whole balance spent 30 times at once
        my @conf = send_all($t, map { {
            customer => $c, path => '/orders',
            body     => cart(points => 1000, checkout_id => "pc$b-$_",
                             order_id => "po$b-$_", lines => $LINES),
        } } 1 .. $n);
        push @bad, "$c: " . tally(sub { $_[0]{status} }, @conf)
            if grep { $_->{status} != 201 } @conf;
    }

    $spooled = replay_quietly($t);

    for my $b (1 .. $bursts) {
        my $acc = { @{ $r->cmd('HGETALL', "loyalty:{customer:pr$b}") } };
        my $redeemed = sum0(map { (split /\|/, $acc->{$_})[6] }
                            grep { /^o:/ } keys %$acc);
        push @bad, "pr$b: redeemed $redeemed, available $acc->{a}, held "
                   . ($acc->{h} // 0)
            unless $redeemed == 1000 && $acc->{a} == 0 && !$acc->{h};
    }

    is_deeply(\@bad, [], "$bursts bursts of $n redemptions of a whole "
                         . 'balance: one held (none when a deadline was '
                         . "missed); then $n confirmations at once: spent "
                         . 'once, 0 left, no hold left')
        or diag(join "\n", @bad[0 .. min9($#bad)]);
    ledger_ok($r, 'after the points races', history => 1);

    return report('points race', bursts => $bursts,
                  checkouts => $bursts * $n, confirmations => $bursts * $n,
                  'double spends' => scalar @bad,
                  'unverified (deadline missed)' => $unverified,
                  'orders spooled' => $spooled,
                  seconds => sprintf('%.1f', time - $start));
}

sub min9 { $_[0] > 9 ? 9 : $_[0] }

# The same order confirmed $n times at once, $rounds times: one accrual,
# at most one recorded answer (the others replayed, or spooled when a
# deadline was missed, replayed later), one points_earned event.
sub confirm_race {
    my ($t, $rounds, $n) = @_;

    my $r = $t->redis;
    my $start = time;
    my ($spooled, %st, @bad) = (0);

    for my $i (1 .. $rounds) {
        my $c = "oc$i";

        my @res = send_all($t, map { {
            customer => $c, path => '/orders',
            body     => cart(order_id => "same-$i", checkout_id => "sc-$i",
                             lines => $LINES),
        } } 1 .. $n);

        my %one;
        $one{ "$_->{status} " . ($_->{headers}{'x-order-status'} // '') }++
            for @res;
        $st{$_} += $one{$_} for keys %one;

        push @bad, "$c: " . join ' ', map { "$_=$one{$_}" } sort keys %one
            if ($one{'201 recorded'} // 0) > 1
               || grep { !/^201 (recorded|replayed|spooled)$/ } keys %one;
        push @bad, "$c: not $POINTS points in every answer"
            if grep { ($_->{headers}{'x-points-earned'} // '') ne $POINTS }
               @res;
    }

    $spooled = replay_quietly($t);

    for my $i (1 .. $rounds) {
        my $acc = { @{ $r->cmd('HGETALL', "loyalty:{customer:oc$i}") } };
        my @o = grep { /^o:/ } keys %$acc;
        push @bad, "oc$i: " . scalar(@o) . ' accruals, p '
                   . ($acc->{p} // 0) . ', n ' . ($acc->{n} // 0)
            unless @o == 1 && $acc->{p} == $POINTS && $acc->{n} == 1;
    }

    # the events go out after the answers; deduped by id
    my $earned = sub {
        my (%e, %id);
        $e{ $_->{order} }++ for grep { $_->{type} eq 'points_earned'
                                       && !$id{ $_->{id} }++ }
            map { +{ @{ $_->[1] } } }
            @{ $r->cmd('XRANGE', 'loyalty:{events}', '-', '+') };
        return \%e;
    };
    eventually(sub { (grep { /^same-/ } keys %{ $earned->() }) >= $rounds });
    my $e = $earned->();

    is_deeply(\@bad, [], "$rounds times $n confirmations of one order at "
                         . 'once: at most one recorded, the others '
                         . 'replayed (or spooled); then one accrual each')
        or diag(join "\n", @bad[0 .. min9($#bad)]);
    is_deeply([ grep { ($e->{"same-$_"} // 0) != 1 } 1 .. $rounds ], [],
              'one points_earned event per order');
    ledger_ok($r, 'after the confirmation races', history => 1);

    return report('confirmation race', rounds => $rounds,
                  confirmations => $rounds * $n,
                  'double accruals' => scalar @bad,
                  answers => join(' ', map { "'$_' $st{$_}" } sort keys %st),
                  'orders spooled' => $spooled,
                  seconds => sprintf('%.1f', time - $start));
}

# An order returned whole while the worker credits it: whichever wins,
# the points end at 0 and the ledger adds up.
sub return_race {
    my ($t, $rounds) = @_;

    my $r = $t->redis;
    my $start = time;
    my $now = int(time) + 31 * $DAY;
    my (%outcome, @bad);

    for my $i (1 .. $rounds) {
        my $c = "rr$i";

        my $res = confirm($t, cart(order_id => "ro-$i", checkout_id => "rc-$i",
                                   lines => $LINES), customer => $c);
        push @bad, "$c: confirmation $res->{status}"
            unless $res->{status} == 201;
        replay_quietly($t)
            if ($res->{headers}{'x-order-status'} // '') ne 'recorded';

        my $pid = $t->spawn('race-worker', $t->worker_path, '--redis',
                            '127.0.0.1:' . $t->redis_port, '--once',
                            '--now', $now);

        # the worker takes a few milliseconds to start: a random head
        # start lets either win
        sleep rand 0.015;

        $res = admin_post($t, "/loyalty/admin/orders/ro-$i/returns",
                          { return_id => "all-$i", amount => '59.97' });
        waitpid $pid, 0;
        push @bad, "$c: the worker exited $?" if $?;

        $outcome{ ($res->{json}{state} // "status $res->{status}") }++;

        my $acc = { @{ $r->cmd('HGETALL', "loyalty:{customer:$c}") } };
        push @bad, "$c: available $acc->{a}, pending $acc->{p}"
            if ($acc->{a} // 0) != 0 || ($acc->{p} // 0) != 0;
    }

    is_deeply(\@bad, [], "$rounds returns racing their credit: 0 available, "
                         . '0 pending after each')
        or diag(join "\n", @bad[0 .. min9($#bad)]);
    is(sum0(values %outcome), $rounds, 'every return answered: '
       . join ', ', map { "$_ $outcome{$_}" } sort keys %outcome);
    ledger_ok($r, 'after the returns', history => 1);

    return report('return race', rounds => $rounds,
                  map({ ("returns $_" => $outcome{$_}) } keys %outcome),
                  problems => scalar @bad,
                  seconds => sprintf('%.1f', time - $start));
}

# --- a confirmation load beside a fault --------------------------------------

# Forks a child that confirms $orders orders, $conc at a time, for
# customers ld0 .. ld{$customers-1}; an answer other than 2xx is retried
# with the same order (as a shop would) up to $tries times.  Its progress
# (orders answered 2xx) and at the end its results go to files.
sub start_load {
    my ($t, %o) = @_;

    my $orders = $o{orders};
    my $conc = $o{conc} // 10;
    my $customers = $o{customers} // 20;
    my $tries = $o{tries} // 100;
    my $prefix = $o{prefix} // 'ld';
    my $dir = $t->dir;

    unlink "$dir/load.progress", "$dir/load.json";

    my $pid = fork // die "fork: $!";

    if ($pid) {
        return { pid => $pid, dir => $dir, orders => $orders,
                 prefix => $prefix };
    }

    my (%done, %tries, %slowest);
    my @todo = (1 .. $orders);
    my $max_took = 0;

    while (@todo) {
        my @batch = splice @todo, 0, $conc;

        my @res = eval {
            send_all($t, map { {
                customer => "$prefix" . ($_ % $customers), path => '/orders',
                body     => cart(order_id => "$prefix-o$_",
                                 checkout_id => "$prefix-c$_",
                                 lines => $LINES),
            } } @batch)
        };

        # nginx restarting: nothing connected
        @res = map { { status => 0, headers => {}, took => 0 } } @batch
            unless @res;

        my $failed = 0;

        for my $k (0 .. $#batch) {
            my $i = $batch[$k];
            my $res = $res[$k];
            $tries{$i}++;
            $max_took = $res->{took} if $res->{took} > $max_took;

            if ($res->{status} >= 200 && $res->{status} < 300) {
                $done{$i} = { status => $res->{status},
                              order  => $res->{headers}{'x-order-status'},
                              points => $res->{headers}{'x-points-earned'} };
            } elsif ($tries{$i} < $tries) {
                push @todo, $i;
                $failed++;
            } else {
                $done{$i} = { status => $res->{status} };
            }
        }

        open my $fh, '>', "$dir/load.progress.tmp" or die $!;
        print $fh scalar(grep { $_->{status} >= 200 } values %done), "\n";
        close $fh;
        rename "$dir/load.progress.tmp", "$dir/load.progress";

        sleep 0.05 if $failed;
    }

    open my $fh, '>', "$dir/load.json.tmp" or die $!;
    print $fh $JSON->encode({ done => \%done, tries => \%tries,
                              slowest => $max_took });
    close $fh;
    rename "$dir/load.json.tmp", "$dir/load.json";

    POSIX::_exit(0);
}

sub load_progress {
    my ($load) = @_;

    open my $fh, '<', "$load->{dir}/load.progress" or return 0;
    my $n = <$fh> // 0;
    chomp $n;

    return $n || 0;
}

# Waits for the load to finish (bounded); returns its results.
sub wait_load {
    my ($load, $patience) = @_;

    my $deadline = time + ($patience // 120);

    while (time < $deadline) {
        last if waitpid($load->{pid}, WNOHANG) == $load->{pid};
        sleep 0.05;
    }

    if (kill 0, $load->{pid}) {
        kill 'KILL', $load->{pid};
        waitpid $load->{pid}, 0;
        fail('the load finished in time');
        return { done => {}, tries => {} };
    }

    open my $fh, '<', "$load->{dir}/load.json" or die "no load results\n";
    local $/;

    return $JSON->decode(<$fh>);
}

sub spool_lines {
    my ($t) = @_;

    my @lines;

    for my $f (glob $t->dir . '/spool/orders.*') {
        open my $fh, '<', $f or next;
        local $/;
        push @lines, split /(?<=\n)/, <$fh> // '';
    }

    return @lines;
}

sub replay_spool {
    my ($t) = @_;

    my ($rc, $out) = $t->run_worker('--once', '--spool', $t->dir . '/spool');
    is($rc, 0, 'the worker replayed the spool') or diag($out);
    is(scalar spool_lines($t), 0, 'the spool is empty');
}

# Every order the load saw confirmed (2xx) is credited exactly once, once
# the worker has run past the return window: its accrual credited with its
# points, the account's balance the sum of them, one points_credited event
# for it; and the ledger adds up for every customer.
sub credited_once {
    my ($t, $load, $result, %o) = @_;

    my $r = $t->redis;
    my $now = int(time) + 31 * $DAY;
    my $prefix = $load->{prefix};

    for (1 .. 2) {
        my ($rc, $out) = $t->run_worker('--once', '--now', $now);
        is($rc, 0, 'the worker credited') or diag($out);
    }

    my @confirmed = sort { $a <=> $b }
                    grep { $result->{done}{$_}{status} >= 200
                           && $result->{done}{$_}{status} < 300 }
                    keys %{ $result->{done} };

    is(scalar @confirmed, $load->{orders},
       "all $load->{orders} orders confirmed to the shop (retried when "
       . 'nginx was not there)');

    my (%mine, @bad);

    for my $i (@confirmed) {
        push @{ $mine{"$prefix" . ($i % ($o{customers} // 20))} }, $i;
    }

    my $all = accounts($r);

    for my $c (sort keys %mine) {
        my $acc = $all->{$c} // {};
        my @orders = grep { /^o:/ } keys %$acc;

        for my $i (@{ $mine{$c} }) {
            my $o = $acc->{"o:$prefix-o$i"};
            push @bad, "$c $prefix-o$i: " . ($o // 'no accrual')
                unless defined $o && $o =~ /^C\|$POINTS\|/;
        }

        my $want = $POINTS * @{ $mine{$c} };
        push @bad, "$c: available " . ($acc->{a} // 0) . ", want $want; "
                   . scalar(@orders) . ' accruals for '
                   . scalar(@{ $mine{$c} }) . ' orders'
            unless ($acc->{a} // 0) == $want && ($acc->{p} // 0) == 0
                   && @orders == @{ $mine{$c} };
    }

    # events are sent at least once: a worker killed after sending, before
    # clearing its outbox, sends them again with the same id, which the
    # mailer skips; deduped by id here too
    my (%credited, %seen);

    for my $e (map { +{ @{ $_->[1] } } }
               @{ $r->cmd('XRANGE', 'loyalty:{events}', '-', '+') }) {
        next unless $e->{type} eq 'points_credited';
        next if $seen{ $e->{id} }++;
        $credited{$_}++ for grep { /^\Q$prefix\E-o/ } split /,/, $e->{orders};
    }

    my $again = grep { $_ > 1 } values %seen;
    note("$again points_credited events sent again (same id)") if $again;

    my @twice = grep { $_ != 1 } map { $credited{"$prefix-o$_"} // 0 }
                @confirmed;

    is_deeply(\@bad, [], 'every confirmed order credited exactly once, '
                         . 'each account the sum of its orders')
        or diag(join "\n", @bad[0 .. min9($#bad)]);
    is(scalar @twice, 0, 'one points_credited event per order (by id)');
    ledger_ok($r, undef, history => 1);

    return scalar @bad + @twice;
}

# --- faults ----------------------------------------------------------------

sub wait_progress {
    my ($load, $n) = @_;

    return eventually(sub { load_progress($load) >= $n
                            || waitpid($load->{pid}, WNOHANG) != 0 }, 60);
}

sub answers {
    my ($result) = @_;

    return tally(sub { $_[0]{order} // "status $_[0]{status}" },
                 values %{ $result->{done} });
}

# Redis killed (SIGKILL) $kills times during $orders confirmations and
# started again on its data (appendfsync always): every confirmed order
# credited once, after the spool's replay.  Needs a shop with
# redis_args => [ '--appendonly', 'yes', '--appendfsync', 'always' ].
sub redis_kill_fault {
    my ($t, $orders, $kills) = @_;

    my $start = time;
    my $load = start_load($t, orders => $orders, prefix => 'kl');

    for my $k (1 .. $kills) {
        wait_progress($load, int($orders * $k / ($kills + 1)));
        $t->kill_redis;
        sleep 0.2;
        $t->start_redis;

        # the next kill once nginx has Redis again
        $t->wait_ready(10);
    }

    my $result = wait_load($load);
    my $took = time - $start;

    ok($t->wait_ready(10), 'nginx has Redis back');
    replay_spool($t);
    my $bad = credited_once($t, $load, $result);

    return report('redis kill -9', orders => $orders, kills => $kills,
                  answers => answers($result), problems => $bad,
                  'slowest answer' => sprintf('%.3fs', $result->{slowest}),
                  seconds => sprintf('%.1f', $took));
}

sub stopped {
    my ($pid) = @_;

    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // '';

    return $stat =~ /^\d+ \(.*\) T /;
}

# Redis paused (SIGSTOP) $cycles times; each time $n checkouts with a
# coupon and points and $n confirmations at once, all answered while Redis
# is still stopped: checkouts go on to the shop unverified, confirmations
# succeed, spooled.  After SIGCONT the coupon is valid again, and every
# order is credited once after the replay.  With $bound (seconds), no
# answer took longer (make chaos only: no timing in make test).
sub redis_pause_fault {
    my ($t, $cycles, $n, $bound) = @_;

    my $r = $t->redis;
    my $start = time;
    my ($slowest, $i, @bad, %answers, %result) = (0, 0);

    create_coupon($t, code => 'PAUSE', type => 'percent', value => '10');

    for my $cycle (1 .. $cycles) {
        $t->pause_redis;

        my @q = map { {
            customer => "ps$cycle", body => cart(coupon => 'PAUSE',
                points => 100, checkout_id => "pc$cycle-$_", lines => $LINES),
        } } 1 .. $n;
        my @o = map { my $k = ++$i; +{
            customer => 'pz' . ($k % 20), path => '/orders',
            body => cart(order_id => "pz-o$k", checkout_id => "pz-c$k",
                         lines => $LINES),
        } } 1 .. $n;

        my @res = send_all($t, @q, @o);

        push @bad, "cycle $cycle: Redis woke before the answers came"
            unless stopped($t->{redis_pid});

        $t->resume_redis;

        for my $k (0 .. $#res) {
            my $res = $res[$k];
            $slowest = $res->{took} if $res->{took} > $slowest;

            if ($k < $n) {
                $answers{ "checkout $res->{status} coupon "
                          . ($res->{json}{coupon_status} // '-')
                          . ' points ' . ($res->{json}{points_status}
                                          // '-') }++;
            } else {
                my $id = $i - $n + ($k - $n) + 1;
                $answers{ "order $res->{status} "
                          . ($res->{headers}{'x-order-status'} // '-') }++;
                $result{done}{$id} = { status => $res->{status} };
            }
        }

        ok($t->wait_ready(10), "cycle $cycle: Redis answers again");

        # a loaded machine may miss a deadline just after, and the nginx
        # worker the checkout reaches may still wait out its reconnection
        # backoff (2 s at most) when health answered from the other: 5 s
        my $res;
        my $until = time + 5;
        while (1) {
            $res = checkout($t, cart(coupon => 'PAUSE', lines => $LINES,
                                     checkout_id => "after-$cycle"),
                            customer => "ps$cycle");
            last if ($res->{json}{coupon_status} // '') eq 'valid'
                    || time > $until;
            sleep 0.1;
            $t->wait_ready(5);
        }
        push @bad, "cycle $cycle: after SIGCONT the coupon is "
                   . ($res->{json}{coupon_status} // "status $res->{status}")
            unless ($res->{json}{coupon_status} // '') eq 'valid';
    }

    my $n2 = $cycles * $n;
    is_deeply(\%answers, { "checkout 200 coupon unverified points unverified"
                           => $n2, 'order 201 spooled' => $n2 },
              "$cycles pauses: $n2 checkouts went on unverified, $n2 "
              . 'orders confirmed and spooled, all while Redis was stopped')
        or diag(explain \%answers);
    is_deeply(\@bad, [], 'answered before SIGCONT; the coupon valid after')
        or diag(join "\n", @bad);
    cmp_ok($slowest, '<', $bound, "the slowest answer within $bound s")
        if defined $bound;

    replay_spool($t);
    my $problems = credited_once($t, { prefix => 'pz', orders => $n2 },
                                 \%result);

    return report('redis SIGSTOP', pauses => $cycles,
                  'requests per pause' => 2 * $n, problems => $problems,
                  'slowest answer' => sprintf('%.3fs', $slowest),
                  seconds => sprintf('%.1f', time - $start));
}

# nginx reloaded (SIGHUP) $reloads times and restarted $restarts times
# during $orders confirmations; what got no answer is sent again.
sub nginx_fault {
    my ($t, $orders, $reloads, $restarts) = @_;

    my $start = time;
    my $load = start_load($t, orders => $orders, prefix => 'ng');
    my $steps = $reloads + $restarts;

    for my $k (1 .. $steps) {
        wait_progress($load, int($orders * $k / ($steps + 1)));

        if ($k <= $reloads) {
            $t->reload_nginx;
        } else {
            $t->restart_nginx;
        }
    }

    my $result = wait_load($load);
    my $took = time - $start;
    my $retried = grep { $_ > 1 } values %{ $result->{tries} };

    my $bad = credited_once($t, $load, $result);

    return report('nginx reload and restart', orders => $orders,
                  reloads => $reloads, restarts => $restarts,
                  'orders sent again' => $retried,
                  answers => answers($result), problems => $bad,
                  seconds => sprintf('%.1f', $took));
}

# $orders confirmed, then loyalty-worker killed (SIGKILL) $kills times
# while crediting them, then a worker to the end: each credited once.
sub worker_kill_fault {
    my ($t, $orders, $kills) = @_;

    my $r = $t->redis;
    my $load = start_load($t, orders => $orders, prefix => 'wk',
                          customers => $orders);
    my $result = wait_load($load);
    my $now = int(time) + 31 * $DAY;
    my $start = time;
    my @left;

    # every points_earned is in; what comes now is points_credited
    eventually(sub { $r->cmd('XLEN', 'loyalty:{events}') >= $orders });
    my $earned = $r->cmd('XLEN', 'loyalty:{events}');
    my $credited = sub { $r->cmd('XLEN', 'loyalty:{events}') - $earned };

    for my $k (1 .. $kills) {
        my $before = $credited->();
        # slow enough to be caught half way
        my $pid = $t->start_worker('--now', $now, '--batch', 5,
                                   '--interval', 20, '--lease', 300);

        # killed once it has credited something, at a random point
        my $some = $before + 1 + int rand 100;
        my $deadline = time + 30;
        sleep 0.001 until $credited->() >= $some || time > $deadline;
        $t->kill_worker($pid);
        push @left, $orders - $credited->();

        # its leases lapse
        eventually(sub { !@{ $r->cmd('KEYS', 'loyalty:{due:*}:lease') } }, 5);
    }

    ok((grep { $_ > 0 } @left), "killed half way: @left of $orders left "
                                . 'after each kill');

    my $bad = credited_once($t, $load, $result, customers => $orders);

    return report('worker kill -9', orders => $orders, kills => $kills,
                  'left after each kill' => "@left", problems => $bad,
                  seconds => sprintf('%.1f', time - $start));
}

my @MOUNTS;

END { system('umount', '-l', $_) for @MOUNTS }

# The spool on a 16 KB tmpfs and Redis down: $orders confirmations all
# succeed; what does not fit is logged at crit with the record itself;
# replayed by hand with the spool, every order is credited once.
sub disk_full_fault {
    my ($t, $orders) = @_;

    my $spool = $t->dir . '/spool';

    if ($> != 0 || system("mount -t tmpfs -o size=16k,mode=0777 tmpfs "
                          . "$spool 2>/dev/null") != 0)
    {
        return 'skip';
    }

    push @MOUNTS, $spool;

    my $hand = 'could not be spooled; replay this line by hand';
    $t->{expected_log} = qr/\Q$hand\E|write\(\) to ".*" failed/;
    $t->log_mark;
    $t->stop_redis;

    my $load = start_load($t, orders => $orders, prefix => 'df',
                          tries => 1);
    my $result = wait_load($load);

    my %answers;
    $answers{ "$_->{status} " . ($_->{order} // '-') }++
        for values %{ $result->{done} };
    is_deeply(\%answers, { '201 spooled' => $orders },
              "all $orders orders succeed, spooled") or diag(explain \%answers);

    my $log = $t->log_since_mark;
    my @hand = $log =~ /\[crit\].*\Q$hand\E: (\{.*\})/g;
    my @kept = spool_lines($t);

    ok(@hand > 0, scalar(@hand) . ' records did not fit; each logged at '
                  . 'crit with the record');
    is(@hand + @kept, $orders, scalar(@kept) . ' in the spool, '
                               . scalar(@hand) . ' in the log: all of them');

    $t->start_redis;
    ok($t->wait_ready(10), 'Redis is back');
    replay_spool($t);
    ok(!-e "$spool/rejected.log", 'no half line was left in the spool');

    # the replay by hand: the logged lines, in a spool file of their own
    # (elsewhere: the spool's disk is still small), given to the worker
    my $byhand = $t->dir . '/byhand';
    mkdir $byhand;
    open my $fh, '>', "$byhand/orders.byhand.log" or die $!;
    print $fh map { "$_\n" } @hand;
    close $fh or die "$byhand: $!";

    my ($rc, $out) = $t->run_worker('--once', '--spool', $byhand);
    is($rc, 0, 'the worker replayed the logged records') or diag($out);

    my $bad = credited_once($t, $load, $result);

    system('umount', $spool) == 0 or diag("umount $spool failed");
    @MOUNTS = grep { $_ ne $spool } @MOUNTS;

    return report('spool disk full', orders => $orders,
                  'spooled' => scalar @kept, 'logged at crit' => scalar @hand,
                  problems => $bad);
}

# --- connections reset -----------------------------------------------------

# A relay between nginx and Redis that resets (RST) every connection it
# carries on SIGUSR1; new connections are relayed again.  Returns its pid
# and port.
sub start_proxy {
    my ($t) = @_;

    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                       Listen => 128, ReuseAddr => 1)
        or die "proxy: $!";
    my $port = $listen->sockport;
    my $redis = '127.0.0.1:' . $t->redis_port;

    my $pid = fork // die "fork: $!";

    if ($pid) {
        close $listen;
        return { pid => $pid, port => $port };
    }

    my $reset = 0;
    local $SIG{USR1} = sub { $reset = 1 };
    local $SIG{TERM} = sub { POSIX::_exit(0) };

    my $sel = IO::Select->new($listen);
    my %peer;

    my $close = sub {
        my ($s, $rst) = @_;
        setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_LINGER(),
                   pack('ii', 1, 0)) if $rst;
        $sel->remove($s);
        delete $peer{ fileno $s };
        close $s;
    };

    while (1) {
        if ($reset) {
            $close->($_->[0], 1) for values %peer;
            $reset = 0;
        }

        for my $s ($sel->can_read(0.05)) {
            if ($s == $listen) {
                my $c = $listen->accept or next;
                my $u = IO::Socket::INET->new(PeerAddr => $redis)
                    or do { close $c; next };
                $peer{ fileno $c } = [ $c, $u ];
                $peer{ fileno $u } = [ $u, $c ];
                $sel->add($c, $u);
                next;
            }

            my $pair = $peer{ fileno $s } or next;
            my $n = sysread $s, my $buf, 65536;

            if (!$n) {
                $close->($_, 0) for @$pair;
                next;
            }

            syswrite $pair->[1], $buf;
        }
    }
}

# The connection between nginx and Redis reset $resets times during
# $orders confirmations: what was in flight is spooled, nginx connects
# again, every order is credited once.
sub reset_fault {
    my ($t, $orders, $resets) = @_;

    my $proxy = start_proxy($t);
    $t->{redis_address} = "127.0.0.1:$proxy->{port}";
    $t->restart_nginx;

    my $start = time;
    my $load = start_load($t, orders => $orders, prefix => 'rs');

    for my $k (1 .. $resets) {
        wait_progress($load, int($orders * $k / ($resets + 1)));
        kill 'USR1', $proxy->{pid};
    }

    my $result = wait_load($load);
    my $took = time - $start;

    ok($t->wait_ready(10), 'nginx has Redis back');
    like($t->error_log, qr/\[error\].*loyalty: redis \S+ unavailable: /,
         'the lost connection is logged at error');

    replay_spool($t);
    my $bad = credited_once($t, $load, $result);

    Loyalty::Test::reap($proxy->{pid}, 'TERM');

    return report('connection reset', orders => $orders, resets => $resets,
                  answers => answers($result), problems => $bad,
                  'slowest answer' => sprintf('%.3fs', $result->{slowest}),
                  seconds => sprintf('%.1f', $took));
}

1;

