#!/usr/bin/perl
# Instructions per request, counted by callgrind: one nginx process
# (master_process off) runs under valgrind --tool=callgrind; wrk sends one
# request at a time for SECONDS to a scenario's module location, then to
# its plain proxy_pass location; callgrind_control zeroes the counters
# before each and dumps them after.  The stub backend runs in an nginx of
# its own, not counted.  Per request: all the instructions of the nginx
# measured, the module's own functions, and the libraries only it calls
# (hiredis, jansson).  A count, not a time: it moves
# only when the code does, whatever else the machine runs.
#
#   perl bench/cost.pl [SCENARIO ...]     (coupon by default)
#
# Environment: SECONDS (per side, 10).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib", "$FindBin::Bin/lib";
use Test::More;    # the harness reports through it
use Loyalty::Bench;
use Loyalty::Test;

my $SECONDS = $ENV{SECONDS} // 10;

my @kinds = @ARGV ? @ARGV : ('coupon');
my %scenario = map { $_->[0] => $_ } @Loyalty::Bench::SCENARIOS;

for (@kinds) {
    die "no such scenario: $_\n" unless $scenario{$_};
}

my $backend = backend_nginx();
my $t = bench_shop(start => 0, backend => $backend->port);
my $dir = $t->dir;

# one process that serves the shop, its backend and Redis's replies
my $conf = $t->nginx_conf;
$conf =~ s/^master_process on;/master_process off;/m or die;
open my $fh, '>', "$dir/nginx.conf" or die $!;
print $fh $conf;
close $fh;

$t->start_redis;
$t->{nginx_pid} = $t->spawn('nginx', 'valgrind', '--tool=callgrind',
    '--dump-instr=no', '--collect-systime=no',
    "--callgrind-out-file=$dir/callgrind.out",
    'nginx', '-p', $dir, '-c', "$dir/nginx.conf", '-e', "$dir/error.log");
$t->wait_port($t->port, $t->{nginx_pid}, 'nginx');
$t->wait_ready(60) or die "nginx under callgrind: Redis not ready\n";
seed($t, 1000);

my $dumps = 0;

# the counters of one side: zero, run, dump, read the dump
sub measure {
    my ($kind, $path) = @_;

    my $pid = $t->{nginx_pid};

    # warm-up: the scripts loaded, the connections open
    wrk_run($t, kind => $kind, path => $path, seconds => 2,
            connections => 1, run => "w$kind$path" . time);

    system("callgrind_control -z $pid > /dev/null 2>&1") == 0
        or die "callgrind_control -z failed\n";

    my $res = wrk_run($t, kind => $kind, path => $path, seconds => $SECONDS,
                      connections => 1, run => "m$kind$path" . time);

    system("callgrind_control -d $pid > /dev/null 2>&1") == 0
        or die "callgrind_control -d failed\n";
    $dumps++;

    my $file = "$dir/callgrind.out.$dumps";
    die "no callgrind dump $file\n" unless -e $file;

    return { requests => $res->{requests}, %{ annotate($file) } };
}

# Total Ir, the module's own (its functions and the core's), and the
# libraries it alone uses.
sub annotate {
    my ($file) = @_;

    my %ir = (total => 0, module => 0, libs => 0);

    open my $fh, '-|', 'callgrind_annotate', '--inclusive=no', '--auto=no',
         '--threshold=100', $file or die "callgrind_annotate: $!";
    my @lines = <$fh>;
    close $fh;

    for (@lines) {
        if (/^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?PROGRAM TOTALS/) {
            ($ir{total} = $1) =~ tr/,//d;
            next;
        }

        my ($n, $where) = /^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$/ or next;
        $n =~ tr/,//d;

        # main and what calls it, never left, come out with the total
        next if $n == $ir{total};

        if ($where =~ /:(ngx_http_loyalty_|loyalty_)/) {
            $ir{module} += $n;
        } elsif ($where =~ /libhiredis|libjansson/) {
            $ir{libs} += $n;
        }
    }

    return \%ir;
}

my @rows;

for my $kind (@kinds) {
    my (undef, $label, $module, $plain) = @{ $scenario{$kind} };

    my $m = measure($kind, $module);
    my $p = measure($kind, $plain);

    push @rows, [ $kind, $label, $m, $p ];
}

printf "\nInstructions per request (callgrind, nginx master_process off, "
       . "one connection, %d s per side)\n", $SECONDS;
printf "%-24s %8s %10s %10s %10s %10s %10s\n", 'scenario', 'requests',
       'Ir/req', 'plain', 'added', 'module', 'hiredis+jansson';

for my $row (@rows) {
    my ($kind, $label, $m, $p) = @$row;
    my $per = sub { $_[0]{$_[1]} / ($_[0]{requests} || 1) };

    printf "%-24s %8d %10.0f %10.0f %10.0f %10.0f %10.0f\n",
           $label, $m->{requests}, $per->($m, 'total'),
           $per->($p, 'total'), $per->($m, 'total') - $per->($p, 'total'),
           $per->($m, 'module'), $per->($m, 'libs');
}

print "\n";

for my $row (@rows) {
    my ($kind, $label, $m, $p) = @$row;
    my $per = sub { $_[0]{$_[1]} / ($_[0]{requests} || 1) };

    printf "bench cost scenario=%s requests=%d ir_per_request=%.0f "
           . "plain_ir_per_request=%.0f added_ir=%.0f module_ir=%.0f "
           . "libs_ir=%.0f\n",
           $kind, $m->{requests}, $per->($m, 'total'), $per->($p, 'total'),
           $per->($m, 'total') - $per->($p, 'total'), $per->($m, 'module'),
           $per->($m, 'libs');
}

$t->stop;
$backend->stop;
done_testing;
