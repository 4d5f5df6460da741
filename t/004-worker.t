# loyalty-worker as a process: options, one pass, heartbeat, signals.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use Loyalty::Test;

my $t = Loyalty::Test->new(config => 'location = /health { loyalty_health; }')
    ->start;

subtest '--help describes every option and exits 0' => sub {
    my ($rc, $out) = $t->run_worker('--help');

    is($rc, 0, 'exit 0');
    like($out, qr/^Usage: loyalty-worker/, 'usage first');
    like($out, qr/--$_\b/, "mentions --$_")
        for qw(redis user password db timeout log log-level batch interval
               once help);
};

subtest 'bad options exit 2 with a message' => sub {
    my @cases = (
        [ [ '--batch', '0' ],        qr/invalid number "0" for -b/ ],
        [ [ '--interval', 'soon' ],  qr/invalid number "soon" for -i/ ],
        [ [ '--log-level', 'loud' ], qr/unknown log level "loud"/ ],
        [ [ '--user', 'shop' ],      qr/--user needs --password/ ],
        [ [ '--frobnicate' ],        qr/unrecognized option/ ],
        [ [ 'extra' ],               qr/unexpected argument "extra"/ ],
    );

    for my $c (@cases) {
        my ($rc, $out) = $t->run_worker(@{ $c->[0] });
        is($rc, 2, "@{ $c->[0] }: exit 2");
        like($out, $c->[1], "@{ $c->[0] }: says why");
    }
};

subtest '--once runs one pass and reports success' => sub {
    my ($rc, $out) = $t->run_worker('--once');

    is($rc, 0, 'exit 0');
    like($out, qr/\[info\] loyalty-worker\[\d+\]: started as \S+:\d+/,
         'logs its identity');
    is($t->redis->cmd('ZCARD', 'loyalty:{workers}'), 1, 'heartbeat written');
    is($t->http(GET => '/health')->{json}{workers}, 1,
       'the health endpoint counts it');
};

subtest '--once without Redis fails with status 1, one error line' => sub {
    my $port = Loyalty::Test::free_port();
    my @cmd = ($t->worker_path, '--redis', "127.0.0.1:$port", '--once');
    my $out = `@cmd 2>&1`;

    is($? >> 8, 1, 'exit 1');
    is(scalar(() = $out =~ /\[error\]/g), 1, 'one error line');
    like($out, qr/redis 127\.0\.0\.1:\d+ unavailable: Connection refused/,
         'says why');
};

# Signals are handled from the "started" line on (slow under valgrind).
sub logged {
    my ($re) = @_;
    my $log = $t->dir . '/worker.log';
    my $deadline = time + 30;

    sleep 0.05 until time > $deadline || (-e $log && slurp($log) =~ $re);
}

sub starts {
    my $log = $t->dir . '/worker.log';
    my $seen = sub { -e $log ? () = slurp($log) =~ /started as/g : 0 };
    my $before = $seen->();

    my $pid = $t->start_worker(@_);
    my $deadline = time + 30;

    sleep 0.05 until time > $deadline || $seen->() > $before;

    return $pid;
}

subtest 'SIGTERM stops the daemon promptly and cleanly' => sub {
    my $pid = starts('--interval', '60000');

    my $start = time;
    my $status = $t->stop_worker($pid);

    is($status, 0, 'exit status 0');
    cmp_ok(time - $start, '<', 2, 'did not wait for the interval');
    like(slurp($t->dir . '/worker.log'), qr/\[info\] .*: stopped/,
         'logged its stop');
};

subtest 'SIGHUP reopens the log file' => sub {
    my $log = $t->dir . '/worker.log';
    my $pid = starts('--interval', '100');

    rename $log, "$log.1" or die $!;
    kill 'HUP', $pid;
    sleep 0.5;

    ok(-s $log, 'a new log file was opened');
    like(slurp($log), qr/log reopened/, 'and written to');

    is($t->stop_worker($pid), 0, 'exit status 0');
};

subtest 'Redis lost and back: one error line, one recovery line' => sub {
    my $log = $t->dir . '/worker.log';
    unlink $log;

    my $pid = starts('--interval', '50', '--timeout', '200');
    $t->stop_redis;
    logged(qr/\[error\]/);
    sleep 0.5;
    $t->start_redis;
    logged(qr/is back/);
    sleep 0.5;
    $t->stop_worker($pid);

    my $text = slurp($log);
    is(scalar(() = $text =~ /\[error\]/g), 1, "one error line") or diag $text;
    is(scalar(() = $text =~ /\[info\].*redis .* is back/g), 1,
       'one recovery line');
};

$t->stop;

done_testing();

sub slurp {
    open my $fh, '<', $_[0] or return '';
    local $/;
    return <$fh>;
}
