# Faults under a confirmation load, small (t/chaos/faults.t runs them full
# size): Redis killed and restarted, Redis paused, nginx reloaded and
# restarted, loyalty-worker killed mid-batch, the spool's disk full.
# After each, every order the shop confirmed is credited exactly once and
# the ledger adds up for every customer.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Loyalty::Chaos;

my @AOF = (redis_args => [ '--appendonly', 'yes', '--appendfsync',
                           'always' ]);

subtest 'Redis killed (SIGKILL) and restarted during 150 confirmations' =>
sub {
    my $t = chaos_shop(@AOF);
    redis_kill_fault($t, 150, 1);
    $t->stop;
};

subtest 'Redis paused (SIGSTOP): answered while it sleeps, back after '
        . 'SIGCONT' => sub {
    my $t = chaos_shop();
    redis_pause_fault($t, 1, 10);
    $t->stop;
};

subtest 'nginx reloaded and restarted during 150 confirmations' => sub {
    my $t = chaos_shop(workers => 2);
    nginx_fault($t, 150, 1, 1);
    $t->stop;
};

subtest 'loyalty-worker killed (SIGKILL) while crediting 1000 orders' => sub {
    my $t = chaos_shop();
    worker_kill_fault($t, 1000, 2);
    $t->stop;
};

subtest "the spool's disk full: the orders succeed, the rest logged" => sub {
    my $t = chaos_shop();

    plan skip_all => 'mounting a tmpfs needs root'
        if disk_full_fault($t, 60) eq 'skip';

    $t->stop;
};

done_testing();
