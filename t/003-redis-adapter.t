# The Redis adapter: one pipelined connection per worker, deadlines,
# incidents logged once, recovery without a reload, clients that vanish,
# reloads with requests in flight, and replies larger than one read.

use strict;
use warnings;

use lib 't/lib';
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use Loyalty::Test;

my $health = 'location = /health { loyalty_health; }';

sub count_lines {
    my ($text, $re) = @_;
    return scalar(() = $text =~ /$re/g);
}

sub statuses {
    my %n;
    $n{ $_->{status} }++ for @_;
    return join ' ', map { "$_:$n{$_}" } sort keys %n;
}

# --- a fast deadline ---------------------------------------------------------

my $t = Loyalty::Test->new(
    http_config => 'loyalty_redis_timeout 200ms;',
    config      => $health,
)->start;

subtest '200 concurrent requests on one worker are all answered' => sub {
    my @res = $t->parallel(200, GET => '/health');

    is(statuses(@res), '200:200', 'every request got 200');
    is(scalar(grep { ($_->{json}{status} // '') eq 'ok' } @res), 200,
       'every reply carried its own nonce');

    my %pids = map { $_->{json}{pid} => 1 } @res;
    is(scalar keys %pids, 1, 'all on the one worker');
};

subtest 'Redis stopped: requests fail fast, one error line per incident' =>
sub {
    $t->log_mark;
    $t->stop_redis;

    my $start = time;
    my @res = map { $t->http(GET => '/health') } 1 .. 20;
    my $took = time - $start;

    is(statuses(@res), '503:20', 'every request answered 503');
    is($res[-1]{json}{error}, 'not_connected', 'reported as not connected');
    is($res[-1]{json}{redis}{state}, 'disconnected', 'state disconnected');
    cmp_ok($took, '<', 5, '20 requests did not wait for Redis');

    sleep 0.5;    # a few reconnect attempts fail meanwhile

    my $log = $t->log_since_mark;
    is(count_lines($log, qr/\[error\].*loyalty: redis 127\.0\.0\.1:\d+ unavailable/),
       1, 'exactly one error line for the incident');
    unlike($log, qr/\[(alert|crit)\]/, 'nothing worse than error');
};

subtest 'Redis restarted: recovered without reloading nginx' => sub {
    $t->log_mark;
    $t->start_redis;

    ok($t->wait_ready(10), 'health is ok again');

    my $res = $t->http(GET => '/health');
    is($res->{json}{redis}{reconnects}, 1, 'one reconnection counted');

    my $log = $t->log_since_mark;
    is(count_lines($log, qr/\[info\].*loyalty: redis .* is back/), 1,
       'the recovery logged once, at info');
    unlike($log, qr/\[error\]/, 'no new error line');
};

subtest 'Redis slowed by DEBUG SLEEP: the deadline holds' => sub {
    my $r = Loyalty::Redis->new($t->redis_port);
    $r->send('DEBUG', 'SLEEP', '2');
    sleep 0.1;

    my $start = time;
    my $res = $t->http(GET => '/health');
    my $took = time - $start;

    is($res->{status}, 503, '503 while Redis sleeps');
    is($res->{json}{error}, 'timeout', 'reported as a timeout');
    cmp_ok($took, '<', 1.5, 'answered at the deadline, not after the sleep');

    $r->read_reply;
    ok($t->wait_ready(10), 'recovered after the sleep');
};

subtest 'clients that vanish while replies are pending do not crash' => sub {
    my @before = $t->worker_pids;

    my $r = Loyalty::Redis->new($t->redis_port);
    $r->send('DEBUG', 'SLEEP', '0.15');
    sleep 0.05;

    $t->abort(100, GET => '/health', after => 0.02);

    $r->read_reply;
    ok($t->wait_ready(10), 'health is ok afterwards');
    is_deeply([ $t->worker_pids ], \@before, 'the same worker is alive');
    unlike($t->error_log, qr/\[alert\]|signal 11|exited on signal/,
           'no crash');
};

subtest 'a flushed script cache is reloaded without failing requests' =>
sub {
    $t->redis->cmd('SCRIPT', 'FLUSH');

    my @res = $t->parallel(20, GET => '/health');
    is(statuses(@res), '200:20', 'every request answered 200');
};

$t->stop;

# --- a slow deadline: bursts, reloads --------------------------------------------

$t = Loyalty::Test->new(
    http_config => 'loyalty_redis_timeout 5s;',
    config      => $health,
)->start;

subtest 'a burst of replies larger than one 16 KB read is all delivered' =>
sub {
    my $limit = `sh -c 'ulimit -n'` || 1024;
    my $n = $limit > 1200 ? 1000 : int($limit) - 150;
    plan skip_all => "only $limit file descriptors" if $n < 700;

    my ($worker) = $t->worker_pids;
    my $r = Loyalty::Redis->new($t->redis_port);
    my $calls = sub {
        my $info = $r->cmd('INFO', 'commandstats');
        return $info =~ /cmdstat_evalsha:calls=(\d+)/ ? $1 : 0;
    };
    my $before = $calls->();

    # Redis holds the commands, then answers all of them while the nginx
    # worker cannot read: the worker wakes to one large pending burst.
    $t->pause_redis;
    my $socks = $t->send_parallel($n, GET => '/health');
    sleep 0.5;
    kill 'STOP', $worker;
    $t->resume_redis;

    my $deadline = time + 5;
    sleep 0.05 while $calls->() < $before + $n && time < $deadline;
    is($calls->() - $before, $n, "Redis answered all $n");

    kill 'CONT', $worker;
    my @res = $t->collect($socks, 10);

    is(statuses(@res), "200:$n", 'every request got its reply');
};

subtest 'nginx reloaded with requests in flight: old workers finish and exit'
=> sub {
    my @old = $t->worker_pids;

    my $r = Loyalty::Redis->new($t->redis_port);
    $r->send('DEBUG', 'SLEEP', '1');
    sleep 0.05;

    my $socks = $t->send_parallel(50, GET => '/health');
    sleep 0.1;
    $t->reload_nginx;

    my @res = $t->collect($socks, 10);
    $r->read_reply;

    is(statuses(@res), '200:50', 'requests in flight were answered');

    my $deadline = time + 10;
    sleep 0.1 while (grep { kill 0, $_ } @old) && time < $deadline;
    ok(!(grep { kill 0, $_ } @old), 'the old workers exited');

    ok($t->wait_ready(10), 'the new workers are ready');
    unlike($t->error_log, qr/open socket .* left|\[alert\]/,
           'no socket left open');
};

$t->stop;

# --- connecting -----------------------------------------------------------------

subtest 'a Redis that accepts but never answers: the connect deadline' =>
sub {
    my $mute = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                     Listen => 128, ReuseAddr => 1)
        or die $!;

    my $c = Loyalty::Test->new(
        http_config => "loyalty_redis_timeout 100ms;\n"
                       . 'loyalty_redis_connect_timeout 300ms;',
        config      => $health,
        redis_address => '127.0.0.1:' . $mute->sockport,
    );
    $c->start_nginx;

    my $start = time;
    my $res = $c->http(GET => '/health');
    my $took = time - $start;

    is($res->{status}, 503, '503 while the connection cannot get ready');
    cmp_ok($took, '<', 1, 'within the deadline');

    sleep 0.5;
    like($c->error_log,
         qr/loyalty: redis 127\.0\.0\.1:\d+ unavailable: no reply within \d+ ms/,
         'the stuck connection is reported');

    $c->stop;
};

subtest 'unix socket, password and database' => sub {
    my $c = Loyalty::Test->new(config => $health);
    my $sock = $c->dir . '/redis.sock';

    $c->{redis_args} = [ '--unixsocket', $sock, '--unixsocketperm', '777',
                         '--requirepass', 's3cret' ];
    $c->{redis_address} = "unix:$sock password=s3cret db=3";
    $c->start;

    my $r = $c->redis;
    $r->cmd('AUTH', 's3cret');
    $r->cmd('SELECT', '3');
    $r->cmd('ZADD', 'loyalty:{workers}', '99999999999', 'w:1');

    my $res = $c->http(GET => '/health');
    is($res->{status}, 200, 'ready over the unix socket');
    is($res->{json}{workers}, 1, 'and in database 3');

    $c->{redis_address} = "unix:$sock password=wrong";
    $c->log_mark;
    $c->restart_nginx(wait => 0);

    $res = $c->http(GET => '/health');
    is($res->{status}, 503, 'a wrong password is not ready');
    sleep 0.3;
    like($c->log_since_mark, qr/unavailable: (WRONGPASS|ERR invalid password)/,
         'and says why');

    $c->stop;
};

done_testing();
