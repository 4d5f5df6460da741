#!/usr/bin/perl
# The nginx worker's resident memory over a million checkouts with a
# coupon: wrk runs until stub_status has counted REQUESTS more requests;
# the worker's VmRSS is read from /proc at every STEP.  Flat means that
# after the warm-up (the first STEP) it grows by less than BOUND kB.
#
#   perl bench/rss.pl                      (REQUESTS 1000000, STEP 100000)
#
# Environment: REQUESTS, STEP, BOUND (kB, 1024), CONNECTIONS (50),
# SCENARIO (coupon).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib", "$FindBin::Bin/lib";
use POSIX qw(:sys_wait_h);
use Test::More;    # the harness reports through it
use Time::HiRes qw(sleep time);
use Loyalty::Bench;
use Loyalty::Test;

my $REQUESTS    = $ENV{REQUESTS} // 1_000_000;
my $STEP        = $ENV{STEP} // 100_000;
my $BOUND       = $ENV{BOUND} // 1024;
my $CONNECTIONS = $ENV{CONNECTIONS} // 50;
my $SCENARIO    = $ENV{SCENARIO} // 'coupon';

my %scenario = map { $_->[0] => $_ } @Loyalty::Bench::SCENARIOS;
my $s = $scenario{$SCENARIO} or die "no such scenario: $SCENARIO\n";

my $t = bench_shop();
seed($t, 1000);

my ($worker) = $t->worker_pids;

# requests nginx has served, stub_status's count (its own included)
sub served {
    my $res = $t->http(GET => '/nginx-status');
    my ($n) = $res->{body} =~ /^\s*\d+\s+\d+\s+(\d+)\s*$/m
        or die "stub_status: $res->{body}";
    return $n;
}

my $start = served();
my @series = ([ 0, rss_kb($worker) ]);

# wrk in the background for longer than needed; stopped by its pid
my ($env, @wrk) = wrk_command($t, kind => $s->[0], path => $s->[2],
                              seconds => 3600, connections => $CONNECTIONS,
                              run => "rss" . time);
my $wrk = fork // die "fork: $!";

if ($wrk == 0) {
    @ENV{ keys %$env } = values %$env;
    open STDOUT, '>', '/dev/null';
    exec @wrk or POSIX::_exit(127);
}

my $t0 = time;
my $next = $STEP;

while ($next <= $REQUESTS) {
    sleep 0.2;

    die "wrk stopped early\n" if waitpid($wrk, WNOHANG) == $wrk;

    my $n = served() - $start;
    next if $n < $next;

    push @series, [ $n, rss_kb($worker) ];
    $next += $STEP;
}

my $took = time - $t0;

kill 'INT', $wrk;
waitpid $wrk, 0;

printf "\nnginx worker RSS over %d requests (%s, wrk -c%d), %.0f s, "
       . "%.0f req/s\n", $REQUESTS, $s->[1], $CONNECTIONS, $took,
       $REQUESTS / $took;
printf "%10s %10s\n", 'requests', 'RSS kB';
printf "%10d %10d\n", @$_ for @series;

my $after_warmup = $series[1][1];
my $last = $series[-1][1];
my $growth = $last - $after_warmup;

printf "growth after the first %d: %d kB (bound %d kB): %s\n",
       $STEP, $growth, $BOUND, $growth < $BOUND ? 'flat' : 'GROWS';
printf "bench rss scenario=%s requests=%d start_kb=%d warm_kb=%d last_kb=%d "
       . "growth_kb=%d flat=%d\n", $SCENARIO, $REQUESTS, $series[0][1],
       $after_warmup, $last, $growth, $growth < $BOUND ? 1 : 0;

$t->stop;
done_testing;
