# Faults under load at full size (`make chaos`; CHAOS_ROUNDS=N shortens
# the loops): Redis killed 10 times during 5,000 confirmations, paused 20
# times under checkouts and confirmations, nginx reloaded 5 times and
# restarted 3 times during 5,000 confirmations, loyalty-worker killed 10
# times while crediting 5,000 orders, the connection to Redis reset 20
# times during 5,000 confirmations, the spool's disk full.  After each,
# every order the shop confirmed is credited exactly once and the ledger
# adds up for every customer.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Loyalty::Chaos;

my @AOF = (redis_args => [ '--appendonly', 'yes', '--appendfsync',
                           'always' ]);

subtest 'Redis killed (SIGKILL) and restarted 10 times during 5,000 '
        . 'confirmations' => sub {
    my $t = chaos_shop(@AOF, workers => 2);
    redis_kill_fault($t, 5000, size(10));
    $t->stop;
};

subtest 'Redis paused (SIGSTOP) 20 times under 60 requests each' => sub {
    my $t = chaos_shop(workers => 2);
    # two round trips of 200 ms at most, with room for a loaded machine
    redis_pause_fault($t, size(20), 30, 1.0);
    $t->stop;
};

subtest 'nginx reloaded 5 times and restarted 3 times during 5,000 '
        . 'confirmations' => sub {
    my $t = chaos_shop(workers => 2);
    nginx_fault($t, 5000, size(5), size(3));
    $t->stop;
};

subtest 'loyalty-worker killed (SIGKILL) 10 times while crediting 5,000 '
        . 'orders' => sub {
    my $t = chaos_shop(workers => 2);
    worker_kill_fault($t, 5000, size(10));
    $t->stop;
};

subtest 'the connection to Redis reset 20 times during 5,000 '
        . 'confirmations' => sub {
    my $t = chaos_shop(workers => 2);
    reset_fault($t, 5000, size(20));
    $t->stop;
};

subtest "the spool's disk full during 300 confirmations" => sub {
    my $t = chaos_shop(workers => 2);

    plan skip_all => 'mounting a tmpfs needs root'
        if disk_full_fault($t, 300) eq 'skip';

    $t->stop;
};

done_testing();
