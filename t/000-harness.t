# The harness's ports: outside the kernel's ephemeral range, so that a
# server restarted by a test (t/041) finds its port still free, and never
# the same in two test processes running at once.

use strict;
use warnings;

use lib 't/lib';
use File::Spec;
use POSIX ();
use Loyalty::Test;
use Test::More;

my ($first) = do {
    open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range'
        or plan skip_all => 'no ip_local_port_range here';
    <$fh> =~ /^\s*(\d+)/;
};

my @ports = map { Loyalty::Test::free_port() } 1 .. 20;

ok(!grep({ $_ >= $first } @ports),
   "20 ports, all below the ephemeral range ($first)")
    or diag("@ports");

my %seen;
is(scalar(grep { !$seen{$_}++ } @ports), 20, 'no port given twice');

my $locks = File::Spec->tmpdir . '/loyalty-test-ports';

is(scalar(grep { -d "$locks/$_" } @ports), 20,
   'each held by a lock that another test process sees');

# what another process finds: the lock of a live process is respected,
# the lock of a process that died is taken over
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    Loyalty::Test::free_port();
    POSIX::_exit(0);    # as after a SIGKILL: no END, the lock stays
}
waitpid $pid, 0;

sub owner {
    my ($lock) = @_;

    open my $fh, '<', "$lock/pid" or return 0;
    return <$fh> // 0;
}

my @stale = grep { owner($_) == $pid } glob "$locks/*";
is(scalar @stale, 1, 'a process killed before its END leaves its lock')
    or BAIL_OUT('no lock of a dead process to test with');

my ($port) = $stale[0] =~ m{/(\d+)$};

is(Loyalty::Test::port_lock($ports[0]), 0,
   "a live process's lock is respected");
is(Loyalty::Test::port_lock($port), 1, "a dead process's lock is taken over");
is(owner("$locks/$port"), $$, "and is this process's now");
Loyalty::Test::port_unlock($port);

done_testing;
