#!/usr/bin/perl
# The HTTP scenarios against a plain proxy_pass: for each, wrk drives the
# module's location and a plain proxy_pass of the same request to the
# same backend, alternately (A B A B ...), and the figures are medians
# over the pairs, so a noisy machine moves both sides alike.  Then the
# same at a fixed rate, 70% of the plain location's peak: the p99 latency
# the module adds.  Prints a table, then the same figures one per line
# ("bench key=value ...") for a machine to read.
#
#   perl bench/http.pl [SCENARIO ...]     (checkout coupon points confirm
#                                          health; all by default)
#
# Environment: DURATION (s per run, 3), PAIRS (3), CONNECTIONS (50),
# WORKERS (nginx worker_processes, 1), USERS (customers, 1000),
# RATE_DELAY (ms between requests on a connection at the fixed rate, 10),
# BACKEND ("own": the stub backend in an nginx of its own, the default;
# "same": a server block of the nginx measured), PIN (1: the measured
# nginx's workers on CPU 0, Redis and the backend on CPU 1, wrk left to
# the scheduler; 0 by default).

use strict;
use warnings;

use FindBin;
use POSIX ();
use lib "$FindBin::Bin/../t/lib", "$FindBin::Bin/lib";
use Test::More;    # the harness reports through it
use Loyalty::Bench;
use Loyalty::Test;

my $DURATION    = $ENV{DURATION} // 3;
my $PAIRS       = $ENV{PAIRS} // 3;
my $CONNECTIONS = $ENV{CONNECTIONS} // 50;
my $WORKERS     = $ENV{WORKERS} // 1;
my $USERS       = $ENV{USERS} // 1000;
my $RATE_DELAY  = $ENV{RATE_DELAY} // 10;
my $PIN         = $ENV{PIN} // 0;
my $BACKEND     = $ENV{BACKEND} // 'own';
my $LOAD        = 0.7;

my %wanted = map { $_ => 1 } @ARGV;
my @scenarios = grep { !@ARGV || $wanted{ $_->[0] } }
                @Loyalty::Bench::SCENARIOS;

die "no such scenario: @ARGV\n" unless @scenarios;

my $backend = $BACKEND eq 'own' ? backend_nginx() : undef;
my $t = bench_shop(workers => $WORKERS,
                   $backend ? (backend => $backend->port) : ());
seed($t, $USERS);

# nginx on one core, what it waits for on the other
if ($PIN) {
    my @pin = ((map { [ 0, $_ ] } $t->worker_pids),
               [ 1, $t->{redis_pid} ],
               $backend ? (map { [ 1, $_ ] } $backend->worker_pids) : ());

    for (@pin) {
        system("taskset -p -c $_->[0] $_->[1] > /dev/null") == 0
            or die "taskset -p -c $_->[0] $_->[1] failed\n";
    }
}

my $runs = 0;

sub run {
    my ($kind, $path, %opt) = @_;

    my $res = wrk_run($t, kind => $kind, path => $path, users => $USERS,
                      run => sprintf('r%d-%d', time, ++$runs),
                      seconds => $DURATION, connections => $CONNECTIONS,
                      %opt);

    # a refused or failed request is not a request served
    warn sprintf "  %s %s: %d non-2xx answers, %d socket errors\n",
                 $kind, $path, $res->{non2xx}, $res->{errors}
        if $res->{non2xx} || $res->{errors};

    return $res;
}

# CPU microseconds of Redis's main thread (INFO cpu).
sub redis_usec { redis_cpu($t->redis) * 1e6 }

# Redis's reads of its clients' sockets (INFO stats): requests per read
# is how deep the module's pipeline is.
sub redis_reads {
    my ($n) = $t->redis->cmd('INFO', 'stats')
              =~ /^total_reads_processed:(\d+)/m;
    return $n;
}

# CPU microseconds (user and system) of an nginx's worker processes, from
# /proc: the measured nginx's, or the backend's.
my $TICK = 1e6 / (POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100);

sub workers_usec {
    my ($nginx) = @_;

    my $usec = 0;

    for my $pid ($nginx->worker_pids) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my ($utime, $stime) = (split ' ', (<$fh> =~ s/^.*\) //r))[11, 12];
        $usec += ($utime + $stime) * $TICK;
    }

    return $usec;
}

# CPU microseconds of the child processes waited for: wrk's, once a run
# is over.
sub children_usec {
    my (undef, undef, $user, $system) = times;
    return ($user + $system) * 1e6;
}

# One run, with the CPU it cost per request: nginx_us (the measured nginx's
# workers), backend_us (the backend's, when it has an nginx of its own),
# redis_us (Redis's main thread) and wrk_us.
sub measured {
    my ($kind, $path, %opt) = @_;

    my @before = (workers_usec($t), $backend ? workers_usec($backend) : 0,
                  redis_usec(), children_usec(), redis_reads());
    my $res = run($kind, $path, %opt);
    my @after = (workers_usec($t), $backend ? workers_usec($backend) : 0,
                 redis_usec(), children_usec(), redis_reads());
    my $n = $res->{requests} || 1;

    @$res{qw(nginx_us backend_us redis_us wrk_us)} =
        map { ($after[$_] - $before[$_]) / $n } 0 .. 3;
    # (the bench's own INFO commands are a few reads a run)
    my $reads = $after[4] - $before[4];
    $res->{per_read} = $reads > 100 ? $n / $reads : 0;

    return $res;
}

# A B A B ...: returns the module's runs and the plain ones.
sub pairs {
    my ($kind, $module, $plain, %opt) = @_;

    my (@m, @p);

    for (1 .. $PAIRS) {
        push @m, measured($kind, $module, %opt);
        push @p, measured($kind, $plain, %opt);
    }

    return (\@m, \@p);
}

sub med {
    my ($runs, $key) = @_;
    return median(map { $_->{$key} } @$runs);
}

my @rows;

for my $s (@scenarios) {
    my ($kind, $label, $module, $plain) = @$s;

    # warm-up: connections, the module's scripts loaded, caches
    run($kind, $_, seconds => 1) for $module, $plain;

    my ($m, $p) = pairs($kind, $module, $plain);
    my @ratio = map { $m->[$_]{rps} / $p->[$_]{rps} } 0 .. $#$m;

    # the fixed rate: each connection waits RATE_DELAY ms on average
    # between an answer and its next request, so connections x 1000 /
    # (RATE_DELAY + latency) is the rate; one plain run calibrates
    my $rate = $LOAD * med($p, 'rps');
    my $conns = int($rate * ($RATE_DELAY + med($p, 'p50')) / 1000 + 0.5);
    $conns = 1 if $conns < 1;

    my $cal = run($kind, $plain, connections => $conns, delay => $RATE_DELAY,
                  seconds => 2);
    $conns = int($conns * $rate / $cal->{rps} + 0.5) || 1;

    my ($fm, $fp) = pairs($kind, $module, $plain, connections => $conns,
                          delay => $RATE_DELAY);

    push @rows, {
        kind => $kind, label => $label,
        rps => med($m, 'rps'), plain_rps => med($p, 'rps'),
        ratio => median(@ratio), redis_us => med($m, 'redis_us'),
        per_read => med($m, 'per_read'),
        nginx_us => med($m, 'nginx_us'), plain_nginx_us => med($p, 'nginx_us'),
        backend_us => med($m, 'backend_us'),
        plain_backend_us => med($p, 'backend_us'),
        wrk_us => med($m, 'wrk_us'), plain_wrk_us => med($p, 'wrk_us'),
        p50 => med($m, 'p50'), p99 => med($m, 'p99'),
        plain_p50 => med($p, 'p50'), plain_p99 => med($p, 'p99'),
        rate => $rate, conns => $conns,
        rate_m => med($fm, 'rps'), rate_p => med($fp, 'rps'),
        fixed_p99 => med($fm, 'p99'), fixed_plain_p99 => med($fp, 'p99'),
    };
}

my $load = do { open my $fh, '<', '/proc/loadavg'; (split ' ', <$fh>)[0] };

printf "\nHTTP scenarios: nginx worker_processes %d, backend %s, wrk -t1 "
       . "-c%d, %d s runs, %d pairs (A B), medians; load average %s%s\n",
       $WORKERS, $BACKEND eq 'own' ? 'in its own nginx' : 'in the same nginx',
       $CONNECTIONS, $DURATION, $PAIRS, $load,
       $PIN ? '; nginx pinned to CPU 0, Redis and the backend to CPU 1' : '';
printf "%-24s %7s %7s %6s %6s %6s %6s %6s %6s | %7s %6s %6s %7s\n",
       'scenario', 'req/s', 'plain', 'ratio', 'p50', 'p99', 'plain',
       'plain', 'redis', 'fixed', 'p99', 'plain', 'p99';
printf "%-24s %7s %7s %6s %6s %6s %6s %6s %6s | %7s %6s %6s %7s\n",
       '', '', 'req/s', '', 'ms', 'ms', 'p50', 'p99', 'us/req', 'req/s',
       'ms', 'p99', 'added';

# the module's location could not keep up with the fixed rate: its p99 is
# then a queue's, not the latency it adds
$_->{saturated} = $_->{rate_m} < 0.9 * $_->{rate} ? 1 : 0 for @rows;

for my $r (@rows) {
    printf "%-24s %7.0f %7.0f %6.3f %6.2f %6.2f %6.2f %6.2f %6.1f | %7.0f "
           . "%6.2f %6.2f %+7.2f%s\n",
           $r->{label}, $r->{rps}, $r->{plain_rps}, $r->{ratio},
           $r->{p50}, $r->{p99}, $r->{plain_p50}, $r->{plain_p99},
           $r->{redis_us}, $r->{rate_m}, $r->{fixed_p99}, $r->{fixed_plain_p99},
           $r->{fixed_p99} - $r->{fixed_plain_p99},
           $r->{saturated} ? ' saturated' : '';
}

print "saturated: the module's location served under 90% of the fixed rate "
      . "(70% of plain's peak)\n" if grep { $_->{saturated} } @rows;

# where the CPU of a request goes, at peak: every process of the bench,
# the module's side against plain's
printf "\nCPU per request at peak, us (medians; /proc, INFO cpu, wrk's "
       . "rusage): module / plain\n";
printf "%-24s %13s %13s %7s %13s %15s %7s %9s\n", 'scenario', 'nginx',
       'backend', 'redis', 'wrk', 'all', 'added', 'req/read';

for my $r (@rows) {
    $r->{all_us} = $r->{nginx_us} + $r->{backend_us} + $r->{redis_us}
                   + $r->{wrk_us};
    $r->{plain_all_us} = $r->{plain_nginx_us} + $r->{plain_backend_us}
                         + $r->{plain_wrk_us};
    $r->{added_us} = $r->{all_us} - $r->{plain_all_us};
    printf "%-24s %6.1f %6.1f %6.1f %6.1f %7.1f %6.1f %6.1f %7.1f %7.1f "
           . "%+7.1f %9.2f\n",
           $r->{label}, $r->{nginx_us}, $r->{plain_nginx_us},
           $r->{backend_us}, $r->{plain_backend_us}, $r->{redis_us},
           $r->{wrk_us}, $r->{plain_wrk_us}, $r->{all_us},
           $r->{plain_all_us}, $r->{added_us}, $r->{per_read};
}

print "\n";

for my $r (@rows) {
    printf "bench scenario=%s rps=%.0f plain_rps=%.0f ratio=%.3f "
           . "redis_us_per_request=%.1f nginx_us_per_request=%.1f "
           . "plain_nginx_us_per_request=%.1f backend_us_per_request=%.1f "
           . "plain_backend_us_per_request=%.1f wrk_us_per_request=%.1f "
           . "plain_wrk_us_per_request=%.1f all_us_per_request=%.1f "
           . "plain_all_us_per_request=%.1f added_us_per_request=%.1f "
           . "p50_ms=%.3f p99_ms=%.3f plain_p50_ms=%.3f plain_p99_ms=%.3f "
           . "fixed_target_rps=%.0f fixed_connections=%d fixed_rps=%.0f "
           . "fixed_plain_rps=%.0f fixed_p99_ms=%.3f "
           . "fixed_plain_p99_ms=%.3f p99_added_ms=%.3f saturated=%d "
           . "requests_per_redis_read=%.2f\n",
           $r->{kind}, $r->{rps}, $r->{plain_rps}, $r->{ratio},
           $r->{redis_us}, $r->{nginx_us}, $r->{plain_nginx_us},
           $r->{backend_us}, $r->{plain_backend_us}, $r->{wrk_us},
           $r->{plain_wrk_us}, $r->{all_us}, $r->{plain_all_us},
           $r->{added_us},
           $r->{p50}, $r->{p99}, $r->{plain_p50}, $r->{plain_p99},
           $r->{rate}, $r->{conns}, $r->{rate_m}, $r->{rate_p},
           $r->{fixed_p99}, $r->{fixed_plain_p99},
           $r->{fixed_p99} - $r->{fixed_plain_p99}, $r->{saturated},
           $r->{per_read};
}

$t->stop;
$backend->stop if $backend;
done_testing;
