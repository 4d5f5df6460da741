#!/usr/bin/perl
# The worker's drain of a Black-Friday backlog, and what accounts cost in
# Redis.  Starts its own redis-server and nginx (the program is nginx's),
# records one real order to copy its record, writes ACCRUALS pending
# accruals over CUSTOMERS customers straight into Redis (redis-cli
# --pipe), all due, then times one `loyalty-worker --once` over them.
#
#   perl bench/worker-drain.pl [ACCRUALS [CUSTOMERS]]   (1000000 100000)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib", "$FindBin::Bin/lib";
use Test::More;    # the harness reports through it
use Time::HiRes qw(time);
use Loyalty::Bench qw(redis_cpu);
use Loyalty::Ledger qw(shard);
use Loyalty::Shop;
use Loyalty::Test;

my $ACCRUALS  = shift // 1_000_000;
my $CUSTOMERS = shift // 100_000;
my $BATCH     = $ENV{BATCH} // 1000;
my $LISTPACK  = $ENV{LISTPACK};     # hash-max-listpack-value to try
my $DAY       = 86400;

# accounts read for the memory figures and the check that all were credited
my $SAMPLE    = $CUSTOMERS < 1000 ? $CUSTOMERS : 1000;

my $t = shop(http => <<'HTTP', confirm => '');
    loyalty_earn 10 per 1.00;
    loyalty_return_window 30d;
    loyalty_points_expire 365d;
    loyalty_tier member 0 1;
    loyalty_tier gold 500.00 1.5;
HTTP
my $r = $t->redis;
$r->cmd('CONFIG', 'SET', 'hash-max-listpack-value', $LISTPACK) if $LISTPACK;

my $res = confirm($t, cart(order_id => 'tpl-1', checkout_id => 'c-tpl'),
                  customer => 'tpl');
die "no template order: $res->{status}" unless $res->{status} == 201;

my %tpl = @{ $r->cmd('HGETALL', 'loyalty:{customer:tpl}') };
my $record = $tpl{'o:tpl-1'};
my ($entry) = @{ $r->cmd('LRANGE', 'loyalty:{customer:tpl}:log', 0, 0) };
my ($points) = $record =~ /^P\|(\d+)\|/;
my $now = time;

# RESP for redis-cli --pipe
sub resp {
    my $s = '*' . scalar(@_) . "\r\n";
    $s .= '$' . length($_) . "\r\n$_\r\n" for @_;
    return $s;
}

my $file = $t->dir . '/seed.resp';
open my $out, '>', $file or die $!;

my $per = int($ACCRUALS / $CUSTOMERS);
my $due = int($now) + 30 * $DAY;

for my $c (1 .. $CUSTOMERS) {
    my $id = "c$c";
    my @fields = (a => 0, p => $points * $per, n => $per, e => int $now);
    my @log;

    for my $o (1 .. $per) {
        push @fields, "o:$id-$o" => $record;
        (my $e = $entry) =~ s/^\d+\n/$o\n/;
        $e =~ s/tpl-1$/$id-$o/;
        unshift @log, $e;
    }

    # the ledger's entries, as order_record.lua writes them
    print $out resp('HSET', "loyalty:{customer:$id}", @fields),
               resp('RPUSH', "loyalty:{customer:$id}:log", @log),
               resp('ZADD', 'loyalty:{due:' . shard($id) . '}', $due, $id);
}

close $out;

my $t0 = time;
system("redis-cli -p " . $t->redis_port . " --pipe < $file > /dev/null") == 0
    or die "redis-cli --pipe failed";
my $seeded = time - $t0;

# memory, over the sample: the hash and its ledger, and the ledger alone
sub bytes_per_account {
    my ($hash, $log) = (0, 0);
    for my $c (1 .. $SAMPLE) {
        $hash += $r->cmd('MEMORY', 'USAGE', "loyalty:{customer:c$c}",
                         'SAMPLES', 0) // 0;
        $log += $r->cmd('MEMORY', 'USAGE', "loyalty:{customer:c$c}:log",
                        'SAMPLES', 0) // 0;
    }
    return (($hash + $log) / $SAMPLE, $log / $SAMPLE);
}

my ($pending_bytes, $pending_log) = bytes_per_account();
my $used_before = { map { split /:/ } grep { /^used_memory:/ }
                    split /\r\n/, $r->cmd('INFO', 'memory') }->{used_memory};

# where the time goes: Redis's time by command, the worker's own CPU
sub commandstats {
    my %stats;

    for (split /\r\n/, $r->cmd('INFO', 'commandstats')) {
        my ($cmd, $calls, $usec) =
            /^cmdstat_(\w+):calls=(\d+),usec=(\d+)/ or next;
        $stats{$cmd} = [ $calls, $usec ];
    }

    return \%stats;
}

$r->cmd('CONFIG', 'RESETSTAT');
my $redis_cpu = redis_cpu($r);
my @cpu0 = times;
$t0 = time;
my ($rc, $log) = $t->run_worker('--once', '--batch', $BATCH,
                                '--now', $due + 60);
my $took = time - $t0;
my @cpu1 = times;
die "worker failed: $log" if $rc != 0;

$redis_cpu = redis_cpu($r) - $redis_cpu;
my $stats = commandstats();
my $worker_cpu = ($cpu1[2] + $cpu1[3]) - ($cpu0[2] + $cpu0[3]);

my $credited = 0;
for my $c (1 .. $SAMPLE) {
    $credited++ if ($r->cmd('HGET', "loyalty:{customer:c$c}", 'a') // 0)
                   == $points * $per;
}

my ($credited_bytes, $credited_log) = bytes_per_account();

my %empty = (a => 0, n => 0, e => int $now);
$r->cmd('HSET', 'loyalty:{customer:bare}', %empty);
my $bare = $r->cmd('MEMORY', 'USAGE', 'loyalty:{customer:bare}',
                   'SAMPLES', 0);

printf "worker drain: %d accruals over %d customers, batch %d%s\n",
       $per * $CUSTOMERS, $CUSTOMERS, $BATCH,
       $LISTPACK ? ", hash-max-listpack-value $LISTPACK" : '';
printf "  seeded in %.1f s\n", $seeded;
printf "  drained in %.2f s: %.0f credits/s, %.0f customers/s\n",
       $took, $per * $CUSTOMERS / $took, $CUSTOMERS / $took;
printf "  Redis's main thread: %.2f s CPU (%.0f%% of the drain), %.1f us per customer; "
       . "by command (a script's commands are counted in it too):\n",
       $redis_cpu, 100 * $redis_cpu / $took, 1e6 * $redis_cpu / $CUSTOMERS;
for my $cmd (sort { $stats->{$b}[1] <=> $stats->{$a}[1] } keys %$stats) {
    my ($calls, $usec) = @{ $stats->{$cmd} };
    next if $usec < 0.01 * $redis_cpu * 1e6;
    printf "    %-12s %8d calls %8.1f us each %6.1f us per customer\n",
           $cmd, $calls, $usec / $calls, $usec / $CUSTOMERS;
}
printf "  the worker's own CPU: %.2f s (%.0f%% of the drain)\n",
       $worker_cpu, 100 * $worker_cpu / $took;
printf "  sample of %d accounts fully credited: %d\n", $SAMPLE, $credited;
printf "redis memory (MEMORY USAGE, %d accounts):\n", $SAMPLE;
printf "  account with %d pending accruals: %.0f B (%.0f B per accrual), "
       . "%.0f B of it the ledger\n",
       $per, $pending_bytes, $pending_bytes / $per, $pending_log;
printf "  the same, credited (records kept, one lot): %.0f B, %.0f B of it "
       . "the ledger\n", $credited_bytes, $credited_log;
printf "  an enrolled customer without orders: %d B\n", $bare;
printf "  used_memory before the drain: %.1f MB\n", $used_before / 1e6;

print "\n";
printf "bench worker accruals=%d customers=%d batch=%d seconds=%.3f "
       . "credits_per_second=%.0f redis_us_per_customer=%.1f "
       . "worker_us_per_customer=%.1f sample=%d sample_credited=%d\n",
       $per * $CUSTOMERS, $CUSTOMERS, $BATCH, $took,
       $per * $CUSTOMERS / $took, 1e6 * $redis_cpu / $CUSTOMERS,
       1e6 * $worker_cpu / $CUSTOMERS, $SAMPLE,
       $credited;
printf "bench memory pending_account_bytes=%.0f per_accrual_bytes=%.0f "
       . "credited_account_bytes=%.0f enrolled_bytes=%d\n",
       $pending_bytes, $pending_bytes / $per, $credited_bytes, $bare;

$t->stop;
done_testing;
