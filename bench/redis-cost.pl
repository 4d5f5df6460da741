#!/usr/bin/perl
# What Redis's main thread spends, in microseconds, on the module's kind of
# traffic, measured with redis-benchmark against a redis-server of its own:
#
#   - a command that does nothing (EVALSHA of "return 1") by how many
#     commands arrive in one read (redis-benchmark -P): the fixed cost
#     the module's pipeline shares out;
#   - coupon_reserve.lua per checkout by how many checkouts share a call,
#     each a new reservation (a random checkout id), as in a sale.
#
# The CPU is Redis's main thread's (INFO cpu) over each run, divided by the
# commands or checkouts sent.  Prints a table, then one line per figure
# ("bench redis ...") for a machine to read.
#
#   perl bench/redis-cost.pl
#
# Environment: CALLS (EVALSHA calls per depth, 200000), CHECKOUTS
# (checkouts per batch size, 180000).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib", "$FindBin::Bin/lib";
use Test::More;    # the harness reports through it
use Loyalty::Bench;
use Loyalty::Test;

my $CALLS     = $ENV{CALLS} // 200000;
my $CHECKOUTS = $ENV{CHECKOUTS} // 180000;

my $t = Loyalty::Test->new;
$t->start_redis;

my $r = $t->redis;

sub redis_usec { redis_cpu($r) * 1e6 }

# Redis's CPU per EVALSHA over one redis-benchmark run of about $n of
# them, 4 clients (it sends whole pipelines: a few more than asked).
sub bench_usec {
    my ($n, $depth, @cmd) = @_;

    $r->cmd('CONFIG', 'RESETSTAT');
    my $before = redis_usec();

    system('redis-benchmark', '-h', '127.0.0.1', '-p', $t->redis_port,
           '-c', 4, '-P', $depth, '-n', $n, '-r', 100000000, '-q', @cmd)
        == 0 or die "redis-benchmark failed\n";

    my $usec = redis_usec() - $before;
    my ($calls) = $r->cmd('INFO', 'commandstats')
                  =~ /^cmdstat_evalsha:calls=(\d+)/m;

    return $usec / ($calls || 1);
}

sub script {
    my ($name) = @_;

    open my $fh, '<', "$FindBin::Bin/../ngx_loyalty_module/lua/$name.lua"
        or die "$name.lua: $!\n";
    local $/;
    return $r->cmd('SCRIPT', 'LOAD', scalar <$fh>);
}

# redis-benchmark's progress goes to its stdout: keep ours readable
open my $quiet, '>&', \*STDOUT or die $!;
open STDOUT, '>', '/dev/null' or die $!;

my $nop = $r->cmd('SCRIPT', 'LOAD', 'return 1');
my @depth;

for my $d (1, 2, 4, 8, 16, 32) {
    push @depth, [ $d, bench_usec($CALLS, $d, 'EVALSHA', $nop, 0) ];
}

my $sha = script('coupon_reserve');
my @keys = map { "loyalty:{coupon:BENCH}$_" } '', qw(:res :resc :resn :uses);
my @batch;

for my $n (1, 4, 9, 32) {
    $r->cmd('FLUSHALL');
    $r->cmd('HSET', $keys[0], version => 1, def => '{}',
            max_uses => 1000000000, per_customer => 0, used => 0);

    # the customers of a batch differ, as in a sale
    my @items = map { ('c__rand_int__', "b$_", 1, 'reserve') } 1 .. $n;
    my $usec = bench_usec(int($CHECKOUTS / $n), 16, 'EVALSHA', $sha, 5,
                          @keys, time, time + 900, @items);

    push @batch, [ $n, $usec / $n, $r->cmd('ZCARD', $keys[1]) ];
}

open STDOUT, '>&', $quiet or die $!;

# (random ids collide now and then: a retry's answer, no new reservation)
ok(!grep({ $_->[2] < 0.99 * int($CHECKOUTS / $_->[0]) * $_->[0] } @batch),
   'each batch size reserved its checkouts');

printf "\nRedis's main thread per command, EVALSHA of \"return 1\", "
       . "4 clients, %d calls each\n", $CALLS;
printf "%-20s %10s\n", 'commands per read', 'us each';
printf "%-20d %10.2f\n", @$_ for @depth;

printf "\ncoupon_reserve.lua per checkout, new reservations, 16 calls per "
       . "read, %d checkouts each\n", $CHECKOUTS;
printf "%-20s %10s %14s\n", 'checkouts per call', 'us each',
       'reservations';
printf "%-20d %10.2f %14d\n", @$_ for @batch;

print "\n";
printf "bench redis kind=nop depth=%d us_per_command=%.2f\n", @$_
    for @depth;
printf "bench redis kind=coupon_reserve batch=%d us_per_checkout=%.2f "
       . "reservations=%d\n", @$_ for @batch;

$t->stop_redis;
done_testing;
