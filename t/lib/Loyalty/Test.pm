package Loyalty::Test;

# The end-to-end harness: each test file gets its own redis-server and the
# stock nginx with the module loaded, on free loopback ports in a temporary
# directory, stopped by pid when the file ends.  Two ways to use it:
#
#   use Loyalty::Test;  run_blocks();  __DATA__ ...   (data-driven blocks,
#       in the spirit of Test::Nginx; see run_blocks below)
#
#   my $t = Loyalty::Test->new(config => '...');  $t->start;
#   my $res = $t->http(GET => '/health');  ...  $t->stop;

use strict;
use warnings;

use Exporter 'import';
use Cwd qw(abs_path);
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

use Loyalty::Redis;

our @EXPORT = qw(run_blocks);

my $ROOT = abs_path(__FILE__) =~ s{/t/lib/Loyalty/Test\.pm$}{}r;
my $BUILD = $ENV{LOYALTY_BUILD} || 'build/release';
$BUILD = "$ROOT/$BUILD" unless $BUILD =~ m{^/};

my $JSON = JSON::PP->new->canonical->allow_nonref;

my @LIVE;    # every harness alive in this process, stopped at exit

sub new {
    my ($class, %args) = @_;

    my $dir = tempdir('loyalty-t-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{LOYALTY_KEEP});
    chmod 0755, $dir;

    my $self = bless {
        http_config => '',
        main_config => '',
        config      => '',
        backend     => undef,
        workers     => 1,
        %args,
        dir         => $dir,
        port        => free_port(),
        backend_port => free_port(),
        health_port => free_port(),
        redis_port  => free_port(),
    }, $class;

    diag("servers in $dir") if $ENV{LOYALTY_KEEP};
    push @LIVE, $self;

    return $self;
}

sub dir          { $_[0]{dir} }
sub port         { $_[0]{port} }
sub backend_port { $_[0]{backend_port} }
sub redis_port   { $_[0]{redis_port} }
sub module_path  { "$BUILD/ngx_http_loyalty_module.so" }
sub worker_path  { "$BUILD/loyalty-worker" }
sub url          { "http://127.0.0.1:$_[0]{port}$_[1]" }

sub start {
    my ($self) = @_;

    $self->start_redis;
    $self->start_nginx;

    return $self;
}

sub stop {
    my ($self) = @_;

    $self->stop_worker;
    $self->stop_nginx;
    $self->stop_redis;
}

END {
    # a test that died half way still stops what it started
    $_->stop for grep { $_->{nginx_pid} || $_->{redis_pid} } @LIVE;
}

# --- processes ---------------------------------------------------------------

sub spawn {
    my ($self, $name, @argv) = @_;

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/$name.out";
        open STDERR, '>&', \*STDOUT;
        exec @argv or POSIX::_exit(127);
    }

    return $pid;
}

sub reap {
    my ($pid, $signal, $patience) = @_;

    return unless $pid;

    kill $signal, $pid;

    my $deadline = time + ($patience // 10);

    while (time < $deadline) {
        return $? if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }

    kill 'KILL', $pid;
    waitpid $pid, 0;

    return $?;
}

sub wait_port {
    my ($self, $port, $pid, $what) = @_;

    my $deadline = time + 10;

    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Timeout => 1);
        return 1 if $s;

        if (waitpid($pid, WNOHANG) == $pid) {
            die "$what exited with status $?:\n" . $self->tail_file($what);
        }

        sleep 0.02;
    }

    die "$what did not listen on 127.0.0.1:$port\n";
}

sub tail_file {
    my ($self, $what) = @_;

    my $text = '';

    for my $f ("$self->{dir}/$what.out", "$self->{dir}/error.log") {
        open my $fh, '<', $f or next;
        local $/;
        $text .= substr(<$fh> // '', -2000);
    }

    return $text;
}

# A free loopback port for a server of the tests.  Not one the kernel
# hands out (its ephemeral range, ip_local_port_range): while a server
# restarts, such a port is free to become the local port of any outgoing
# connection, of this test or another, and the server cannot bind it
# again.  Below that range only a bind takes a port; a lock directory per
# port keeps two test processes (prove -j2) from picking the same one, and
# goes when the process that made it ends.
my $PORT_LOCKS = File::Spec->tmpdir . '/loyalty-test-ports';
my $PORT_OWNER = $$;
my @PORTS_HELD;

sub free_port {
    my $first = 32768;

    if (open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range') {
        ($first) = (<$fh> // '') =~ /^\s*(\d+)/ or $first = 32768;
    }

    my ($low, $high) = (20000, $first - 1);

    die "no free port: the ephemeral range starts at $first\n"
        if $high - $low < 1000;

    if (mkdir $PORT_LOCKS) {
        chmod 01777, $PORT_LOCKS;
    }

    for (1 .. 500) {
        my $port = $low + int rand($high - $low + 1);

        port_lock($port) or next;

        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Listen => 1,
                                      ReuseAddr => 1);
        if (!$s) {
            port_unlock($port);
            next;
        }

        close $s;
        push @PORTS_HELD, $port;

        return $port;
    }

    die "no free port in $low-$high after 500 tries\n";
}

# Takes a port's lock: 1, or 0 when a live process holds it.  A process
# killed before its END leaves its locks: those are taken over.
sub port_lock {
    my ($port) = @_;

    my $lock = "$PORT_LOCKS/$port";

    if (!mkdir $lock) {
        my $pid;
        if (open my $fh, '<', "$lock/pid") {
            $pid = <$fh>;
        }

        return 0 unless defined $pid && $pid =~ /^(\d+)$/
                        && !kill(0, $1) && $!{ESRCH};

        port_unlock($port);
        mkdir $lock or return 0;
    }

    open my $fh, '>', "$lock/pid" or return 1;
    print $fh $$;
    close $fh;

    return 1;
}

sub port_unlock {
    my ($port) = @_;

    unlink "$PORT_LOCKS/$port/pid";
    rmdir "$PORT_LOCKS/$port";
}

END {
    # not in a child forked by a test: the ports are its parent's
    if ($$ == $PORT_OWNER) {
        port_unlock($_) for @PORTS_HELD;
    }
}

# --- redis -------------------------------------------------------------------

sub start_redis {
    my ($self) = @_;

    mkdir "$self->{dir}/redis";

    $self->{redis_pid} = $self->spawn('redis', 'redis-server',
        '--port', $self->{redis_port}, '--bind', '127.0.0.1',
        '--dir', "$self->{dir}/redis", '--save', '', '--appendonly', 'no',
        '--daemonize', 'no', '--logfile', "$self->{dir}/redis.log",
        '--enable-debug-command', 'local',
        @{ $self->{redis_args} || [] });

    $self->wait_port($self->{redis_port}, $self->{redis_pid}, 'redis');
    delete $self->{redis};

    return $self;
}

sub stop_redis {
    my ($self) = @_;

    delete $self->{redis};
    reap(delete $self->{redis_pid}, 'TERM');
}

sub kill_redis {
    my ($self) = @_;

    delete $self->{redis};
    reap(delete $self->{redis_pid}, 'KILL');
}

sub pause_redis  { kill 'STOP', $_[0]{redis_pid} }
sub resume_redis { kill 'CONT', $_[0]{redis_pid} }

# A client of our own: exact replies (undef for nil), no extra dependency.
sub redis {
    my ($self) = @_;

    return $self->{redis} //= Loyalty::Redis->new($self->{redis_port});
}

# --- nginx -------------------------------------------------------------------

sub nginx_conf {
    my ($self) = @_;

    my $dir = $self->{dir};
    my $user = $> == 0 ? 'user ' . worker_user($dir) . ';' : '';
    my $backend = $self->{backend} // default_backend();
    my $module = $self->module_path;
    my $redis = $self->{redis_address} // "127.0.0.1:$self->{redis_port}";

    # valgrind keeps the descriptors above its own limit
    my $nofile = $ENV{LOYALTY_VALGRIND} ? '' : 'worker_rlimit_nofile 8192;';

    # memcheck slows nginx twenty-fold, the sanitizers two- to threefold:
    # the default 100ms deadline would turn Redis calls into timeouts that
    # say nothing of memory; a test that sets its own deadline keeps it
    my $slow = $ENV{LOYALTY_VALGRIND} ? '5s' : $ENV{LOYALTY_SANITIZE} ? '1s'
             : undef;
    my $deadline = $slow
                   && ($self->{http_config} // '') !~ /loyalty_redis_timeout/
                   ? "loyalty_redis_timeout $slow;" : '';

    return <<"CONF";
load_module $module;
$user
worker_processes $self->{workers};
$nofile
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log info;
$self->{main_config}

events {
    worker_connections 4096;
}

http {
    access_log $dir/access.log;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;

    loyalty_redis $redis;
    $deadline

$self->{http_config}

    # the stub shop backend
    server {
        listen 127.0.0.1:$self->{backend_port};
$backend
    }

    # the harness's own view of Redis readiness
    server {
        listen 127.0.0.1:$self->{health_port};
        location / { loyalty_health; }
    }

    server {
        listen 127.0.0.1:$self->{port};
$self->{config}
    }
}
CONF
}

# As root, workers run as nobody, as in production, unless nobody could not
# reach the test directory (a root directory of mode 0700, as in a chroot).
sub worker_user {
    my ($dir) = @_;

    for (my $d = $dir; length $d; $d =~ s{/[^/]*$}{}) {
        my $mode = (stat $d)[2] // 0;
        return 'root' unless $mode & 0001;
    }

    return ((stat '/')[2] // 0) & 0001 ? 'nobody nogroup' : 'root';
}

sub default_backend {
    return <<'BACKEND';
        default_type application/json;
        location / {
            return 200 '{"backend":"ok","uri":"$uri"}\n';
        }
BACKEND
}

sub write_conf {
    my ($self) = @_;

    my $conf = $self->nginx_conf;
    open my $fh, '>', "$self->{dir}/nginx.conf" or die $!;
    print $fh $conf;
    close $fh;

    return $conf;
}

sub sanitizer_env {
    my ($self) = @_;

    return () unless $ENV{LOYALTY_SANITIZE};

    mkdir "$self->{dir}/sanitizer";
    chmod 0777, "$self->{dir}/sanitizer";

    chomp(my $asan = `gcc -print-file-name=libasan.so`);

    return (
        LD_PRELOAD    => $asan,
        ASAN_OPTIONS  => "log_path=$self->{dir}/sanitizer/asan"
                         . ':detect_leaks=1:fast_unwind_on_malloc=0',
        UBSAN_OPTIONS => "log_path=$self->{dir}/sanitizer/ubsan"
                         . ':print_stacktrace=1',
    );
}

# With LOYALTY_VALGRIND, nginx and the worker run under memcheck, one log
# per process in $dir/valgrind; check_valgrind() judges them.
sub valgrind {
    my ($self) = @_;

    return () unless $ENV{LOYALTY_VALGRIND};

    mkdir "$self->{dir}/valgrind";
    chmod 0777, "$self->{dir}/valgrind";

    return ('valgrind', '--quiet', '--tool=memcheck', '--leak-check=full',
            '--show-leak-kinds=definite', '--errors-for-leak-kinds=definite',
            '--num-callers=40', '--trace-children=yes',
            "--log-file=$self->{dir}/valgrind/vg.%p");
}

sub start_nginx {
    my ($self, %opt) = @_;

    $self->write_conf;

    my %env = $self->sanitizer_env;
    local @ENV{ keys %env } = values %env;

    $self->{nginx_pid} = $self->spawn('nginx', $self->valgrind, 'nginx',
        '-p', $self->{dir},
        '-c', "$self->{dir}/nginx.conf", '-e', "$self->{dir}/error.log");

    $self->wait_port($self->{port}, $self->{nginx_pid}, 'nginx');

    $self->wait_ready unless defined $opt{wait} && !$opt{wait};

    return $self;
}

# Waits until the writes the module makes after its answers have landed:
# coupon commits and events after a confirmation, and the program counts
# each nginx worker sends every 100 ms (ngx_http_loyalty_stats.c).  Redis
# is quiet when its digest has not moved for longer than that.
sub quiet_redis {
    my ($self) = @_;

    my $calm = $ENV{LOYALTY_VALGRIND} ? 1 : 0.15;
    my $deadline = time + 10;
    my $digest = $self->redis->cmd('DEBUG', 'DIGEST');
    my $since = time;

    while (time < $deadline) {
        sleep 0.03;

        my $now = $self->redis->cmd('DEBUG', 'DIGEST');

        if ($now ne $digest) {
            ($digest, $since) = ($now, time);

        } elsif (time - $since >= $calm) {
            return 1;
        }
    }

    return 0;
}

# Waits until the workers' Redis connections are up (when Redis is).
sub wait_ready {
    my ($self, $patience) = @_;

    return unless $self->{redis_pid};

    my $deadline = time + ($patience // 10);

    while (time < $deadline) {
        my $res = http_request('GET',
            "http://127.0.0.1:$self->{health_port}/", {});
        return 1 if $res->{status} == 200;
        sleep 0.05;
    }

    return 0;
}

sub stop_nginx {
    my ($self) = @_;

    my $pid = delete $self->{nginx_pid} or return;
    my $status = reap($pid, 'QUIT', 20);

    # under the sanitizers the master exits 1 when LeakSanitizer found any
    # leak, nginx's own included (a regex location's pcre2 context);
    # check_sanitizer() judges whether one is ours
    my $clean = $status == 0 || ($ENV{LOYALTY_SANITIZE} && $status == 256);

    ok($clean, 'nginx stopped cleanly') or diag("exit status $status");
    $self->check_error_log;
    $self->check_sanitizer;
    $self->check_valgrind;
}

sub restart_nginx {
    my ($self, %opt) = @_;

    $self->stop_nginx;
    $self->start_nginx(%opt);
}

sub reload_nginx {
    my ($self) = @_;

    $self->write_conf;
    kill 'HUP', $self->{nginx_pid};
}

sub worker_pids {
    my ($self) = @_;

    my $master = $self->{nginx_pid};
    my @pids;

    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        my ($pid, $ppid) = $line =~ /^(\d+) \(.*\) \S+ (\d+)/ or next;
        push @pids, $pid if $ppid == $master;
    }

    return sort { $a <=> $b } @pids;
}

# Runs nginx -t on the given http block (load_module, events, pid and log
# are added); returns (exit status, output).
sub nginx_t {
    my ($self, $http) = @_;

    my $dir = $self->{dir};
    my $module = $self->module_path;

    open my $fh, '>', "$dir/nginx-t.conf" or die $!;
    print $fh <<"CONF";
load_module $module;
pid $dir/nginx-t.pid;
error_log $dir/nginx-t.log;
events { }
$http
CONF
    close $fh;

    my %env = $self->sanitizer_env;

    # `nginx -t` exits with the configuration's pools alive by design
    # (nothing frees a cycle that is only tested): not leaks to report
    $env{ASAN_OPTIONS} =~ s/detect_leaks=1/detect_leaks=0/ if %env;
    local @ENV{ keys %env } = values %env;

    my $out = `nginx -t -p $dir -c $dir/nginx-t.conf -e $dir/nginx-t.log 2>&1`;
    my $rc = $? >> 8;

    $self->check_sanitizer;

    return ($rc, $out);
}

# --- logs ----------------------------------------------------------------------

sub error_log {
    my ($self) = @_;

    open my $fh, '<', "$self->{dir}/error.log" or return '';
    local $/;
    return <$fh>;
}

sub log_mark {
    my ($self) = @_;

    return $self->{log_mark} = -s "$self->{dir}/error.log" // 0;
}

sub log_since_mark {
    my ($self) = @_;

    return substr($self->error_log, $self->{log_mark} // 0);
}

sub check_error_log {
    my ($self) = @_;

    # a worker that died, or a sanitizer report that went to the log; under
    # the sanitizers a worker's exit status also counts the leaks of nginx
    # itself, which check_sanitizer() sorts out
    my $exit = $ENV{LOYALTY_SANITIZE} ? qr/(?!)/ : qr/exited with code [1-9]/;
    # a test that provokes a [crit] on purpose says which (expected_log)
    my $expected = $self->{expected_log} // qr/(?!)/;
    my @bad = grep {
        (/\[(alert|crit|emerg)\]|exited on signal|runtime error:|AddressSanitizer/
         || /$exit/) && !/$expected/
    } split /\n/, $self->error_log;

    ok(!@bad, 'no [alert], [crit] or [emerg] in the error log')
        or diag(join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)]);
}

sub check_sanitizer {
    my ($self) = @_;

    return unless $ENV{LOYALTY_SANITIZE};

    my @reports;

    for my $f (glob "$self->{dir}/sanitizer/*") {
        open my $fh, '<', $f or next;
        local $/;
        my $text = <$fh> // '';
        push @reports, "$f:\n$text" if sanitizer_findings($text);
    }

    ok(!@reports, 'no sanitizer reports')
        or diag(substr($_, 0, 4000)) for @reports[0 .. ($#reports > 2 ? 2 : $#reports)];
}

# A leak counts when its allocation stack passes through the module or its
# libraries; nginx's own tables, unreachable once a worker has destroyed
# its cycle on exit, are reported by LeakSanitizer too and are not ours.
sub sanitizer_findings {
    my ($text) = @_;

    return 1 unless $text =~ /LeakSanitizer/;

    my @leaks = $text =~ /^((?:Direct|Indirect) leak .*?)(?=^\n|\z)/msg;

    return scalar grep { /ngx_http_loyalty|libhiredis|libjansson/ } @leaks;
}

# Memcheck's errors and definite leaks whose stack passes through the
# module, the worker or their libraries; nginx's own are not ours.
sub check_valgrind {
    my ($self) = @_;

    return unless $ENV{LOYALTY_VALGRIND};

    my @findings;

    for my $f (glob "$self->{dir}/valgrind/vg.*") {
        open my $fh, '<', $f or next;
        local $/;
        my $text = <$fh> // '';
        $text =~ s/^==\d+== ?//mg;

        push @findings, map { "$f:\n$_" }
                        grep { /ngx_http_loyalty|\bloyalty_|\bworker_|hiredis|jansson/ }
                        grep { /^(Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and destination|Argument|.* definitely lost)/ }
                        split /\n\n+/, $text;
    }

    ok(!@findings, 'no valgrind reports') or diag(substr($_, 0, 3000))
        for @findings[0 .. ($#findings > 2 ? 2 : $#findings)];
}

# --- the worker ------------------------------------------------------------------

sub start_worker {
    my ($self, @args) = @_;

    my $pid = $self->spawn('worker', $self->valgrind, $self->worker_path,
        '--redis', "127.0.0.1:$self->{redis_port}",
        '--log', "$self->{dir}/worker.log", @args);

    push @{ $self->{worker_pids} }, $pid;

    return $pid;
}

sub stop_worker {
    my ($self, $pid) = @_;

    my @pids = $pid ? ($pid) : @{ $self->{worker_pids} || [] };
    my %status;

    for my $p (@pids) {
        $status{$p} = reap($p, 'TERM');
    }

    $self->{worker_pids} = [ grep { !exists $status{$_} }
                             @{ $self->{worker_pids} || [] } ];

    return $pid ? $status{$pid} : \%status;
}

# SIGKILL: the worker gets no chance to finish anything.
sub kill_worker {
    my ($self, $pid) = @_;

    my $status = reap($pid, 'KILL');
    $self->{worker_pids} = [ grep { $_ != $pid }
                             @{ $self->{worker_pids} || [] } ];

    return $status;
}

sub run_worker {
    my ($self, @args) = @_;

    my @cmd = ($self->valgrind, $self->worker_path, '--redis',
               "127.0.0.1:$self->{redis_port}", @args);

    # no shell: the arguments reach the worker as they are
    my $pid = open(my $fh, '-|') // die "fork: $!";

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT or die "stderr: $!";
        exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!";
    }

    my $out = do { local $/; <$fh> } // '';
    close $fh;

    return ($? >> 8, $out);
}

# --- HTTP ----------------------------------------------------------------------

# $t->http(POST => '/path', body => '...', headers => {...}); the response
# has status, headers (lower-case names), body and, for JSON, json.
sub http {
    my ($self, $method, $path, %opt) = @_;

    my $url = $path =~ m{^http://} ? $path : $self->url($path);

    return http_request($method, $url, \%opt);
}

sub http_request {
    my ($method, $url, $opt) = @_;

    my $ua = HTTP::Tiny->new(timeout => $opt->{timeout} // 10,
                             keep_alive => 0);
    my %req = (headers => $opt->{headers} || {});
    $req{content} = $opt->{body} if defined $opt->{body};

    my $res = $ua->request($method, $url, \%req);
    my $out = {
        status  => $res->{status},
        headers => $res->{headers},
        body    => $res->{content} // '',
    };

    if (($res->{headers}{'content-type'} // '') =~ m{application/json}) {
        $out->{json} = eval { $JSON->decode($res->{content}) };
    }

    return $out;
}

# Sends the same raw request on $n connections at once, then reads every
# answer: real concurrency on the server's side.  Returns the responses in
# connection order; a connection the server dropped has status 0.
sub parallel {
    my ($self, $n, $method, $path, %opt) = @_;

    return $self->collect($self->send_parallel($n, $method, $path, %opt),
                          $opt{timeout});
}

# The first half of parallel(): the requests are sent, not yet read.
sub send_parallel {
    my ($self, $n, $method, $path, %opt) = @_;

    my @socks;

    for my $i (0 .. $n - 1) {
        my $body = ref $opt{body} eq 'CODE' ? $opt{body}->($i) : $opt{body};
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
                                      Timeout => 5)
            or die "connect: $!";
        push @socks, [ $s, raw_request($method, $path, $opt{headers}, $body) ];
    }

    # write everything before reading anything
    $_->[0]->syswrite($_->[1]) // die "write: $!" for @socks;

    return [ map { $_->[0] } @socks ];
}

sub collect {
    my ($self, $socks, $timeout) = @_;

    my (%buf, %index);
    $index{ fileno $socks->[$_] } = $_ for 0 .. $#$socks;

    my $sel = IO::Select->new(@$socks);
    my $deadline = time + ($timeout // 20);

    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(0.5)) {
            my $got = $s->sysread(my $chunk, 65536);

            if (!$got) {
                $sel->remove($s);
                close $s;
                next;
            }

            $buf{ $index{ fileno $s } } .= $chunk;
        }
    }

    return map { parse_response($buf{$_} // '') } 0 .. $#$socks;
}

# Opens $n connections, sends the request and closes before the answer.
sub abort {
    my ($self, $n, $method, $path, %opt) = @_;

    my @socks = map {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}")
            or die "connect: $!";
        $s->syswrite(raw_request($method, $path, $opt{headers}, $opt{body}));
        $s
    } 1 .. $n;

    sleep($opt{after} // 0);

    # a reset rather than a FIN, as a client that vanishes would
    for my $s (@socks) {
        setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_LINGER(),
                   pack('ii', 1, 0));
        close $s;
    }
}

sub raw_request {
    my ($method, $path, $headers, $body) = @_;

    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
              . "Connection: close\r\n";

    for my $h (sort keys %{ $headers || {} }) {
        $req .= "$h: $headers->{$h}\r\n";
    }

    if (defined $body) {
        $req .= 'Content-Length: ' . length($body) . "\r\n";
    }

    return "$req\r\n" . ($body // '');
}

sub parse_response {
    my ($raw) = @_;

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
    my %headers;

    for my $line (split /\r\n/, $head // '') {
        $headers{ lc $1 } = $2 if $line =~ /^([^:]+):\s*(.*)$/;
    }

    my $res = { status => $status // 0, headers => \%headers,
                body => $body // '' };

    if (($headers{'content-type'} // '') =~ m{application/json}) {
        $res->{json} = eval { $JSON->decode($res->{body}) };
    }

    return $res;
}

# --- data-driven blocks ------------------------------------------------------------
#
# Each block starts with "=== name" and has sections "--- name" (a section
# can be written on one line: "--- error_code: 200"):
#
#   http_config, config, main_config, backend   nginx configuration pieces
#   redis_setup       Redis commands run before the request, one per line
#   request           "METHOD /path", then the body (if any) on later lines
#   request_headers   "Name: value" lines
#   error_code        the expected status
#   response_body     exact body;   response_body_like   a regex
#   response_json     JSON every key of which must match the response's
#   response_headers  "Name: value" must match, "!Name" must be absent
#   error_log         regexes that must appear in the log for this block
#   no_error_log      regexes that must not
#   redis_state       "COMMAND args => JSON": the reply after the request
#
# Redis is flushed before each block; nginx restarts when the configuration
# changes from the previous block.

sub run_blocks {
    no warnings 'once';
    my @blocks = parse_blocks(do { local $/; <main::DATA> });
    my $t;

    for my $block (@blocks) {
        my %conf = map { $_ => $block->{$_} // '' }
                   qw(http_config config main_config);
        $conf{backend} = $block->{backend};

        my $changed = !$t || grep {
            ($t->{$_} // '') ne ($conf{$_} // '')
        } keys %conf;

        if (!$t) {
            $t = Loyalty::Test->new(%conf);
            $t->start;

        } elsif ($changed) {
            @$t{ keys %conf } = values %conf;
            $t->restart_nginx;
        }

        subtest $block->{name} => sub { $t->run_block($block) };
    }

    $t->stop if $t;
    done_testing();
}

sub parse_blocks {
    my ($text) = @_;

    my @blocks;

    for my $chunk (split /^=== /m, $text) {
        next unless $chunk =~ /\S/;

        my ($name, $rest) = split /\n/, $chunk, 2;
        my %block = (name => $name);

        for my $sec (split /^--- /m, $rest // '') {
            next unless $sec =~ /\S/;

            if ($sec =~ /^(\w+):\s*(.*?)\s*$/s && $sec !~ /\n./) {
                $block{$1} = $2;
                next;
            }

            my ($key, $value) = split /\n/, $sec, 2;
            $key =~ s/\s+$//;
            $value //= '';
            $value =~ s/\n+\z/\n/;
            $value = '' unless $value =~ /\S/;
            $block{$key} = $value;
        }

        push @blocks, \%block;
    }

    return @blocks;
}

sub run_block {
    my ($self, $b) = @_;

    $self->redis->cmd('FLUSHALL');

    for my $line (lines($b->{redis_setup})) {
        $self->redis->cmd(split_command($line));
    }

    my ($method, $path) = split ' ', (lines($b->{request}))[0];
    my (undef, $body) = split /\n/, $b->{request}, 2;

    my %headers = map { /^([^:]+):\s*(.*)$/ } lines($b->{request_headers});

    $self->log_mark;

    my $res = $self->http($method, $path,
                          headers => \%headers,
                          defined $body && length $body
                              ? (body => $body =~ s/\n\z//r) : ());

    $self->check_response($b, $res);

    # let the log lines of this request land
    sleep 0.05;
    my $log = $self->log_since_mark;

    for my $re (lines($b->{error_log})) {
        like($log, qr/\Q$re\E/, "error log has '$re'");
    }

    for my $re (lines($b->{no_error_log})) {
        unlike($log, qr/\Q$re\E/, "error log has no '$re'");
    }

    for my $line (lines($b->{redis_state})) {
        my ($cmd, $want) = $line =~ /^(.*?)\s*=>\s*(.*)$/
            or die "bad redis_state line: $line\n";
        is_deeply(scalar $self->redis->cmd(split_command($cmd)),
                  $JSON->decode($want), "redis: $cmd");
    }
}

sub check_response {
    my ($self, $b, $res) = @_;

    if (defined $b->{error_code}) {
        is($res->{status}, $b->{error_code}, "status $b->{error_code}")
            or diag($res->{body});
    }

    if (defined $b->{response_body}) {
        is($res->{body}, $b->{response_body}, 'response body');
    }

    if (defined $b->{response_body_like}) {
        my $re = $b->{response_body_like} =~ s/\n\z//r;
        like($res->{body}, qr/$re/s, 'response body matches');
    }

    if (defined $b->{response_json}) {
        my $want = $JSON->decode($b->{response_json});
        is_deeply(json_subset($res->{json}, $want), $want, 'response JSON')
            or diag($res->{body});
    }

    for my $line (lines($b->{response_headers})) {
        if ($line =~ /^!\s*(\S+)/) {
            ok(!exists $res->{headers}{ lc $1 }, "no header $1");
            next;
        }

        my ($name, $value) = $line =~ /^([^:]+):\s*(.*)$/;
        is($res->{headers}{ lc $name }, $value, "header $name");
    }
}

# The part of $got that $want describes: extra keys in $got are ignored.
sub json_subset {
    my ($got, $want) = @_;

    if (ref $want eq 'HASH' && ref $got eq 'HASH') {
        return { map {
            exists $got->{$_} ? ($_ => json_subset($got->{$_}, $want->{$_}))
                              : ()
        } keys %$want };
    }

    if (ref $want eq 'ARRAY' && ref $got eq 'ARRAY') {
        return [ map { json_subset($got->[$_], $want->[$_]) }
                 0 .. $#$got ];
    }

    return $got;
}

sub lines {
    my ($text) = @_;

    return grep { /\S/ } split /\n/, $text // '';
}

# Words, with '...' for an argument that has spaces.
sub split_command {
    my ($line) = @_;

    my @args;
    push @args, defined $1 ? $1 : $2 while $line =~ /\G\s*(?:'([^']*)'|(\S+))/g;

    return @args;
}

1;
