# Security: the admin API does no work at all without its token; coupon
# guessing is throttled per customer and per client address (behind a
# proxy, with realip); what a client sends reaches Redis only as whole
# arguments, never as part of a command: ids and texts full of quotes,
# backslashes, format directives and Redis protocol are stored and read
# back verbatim, through nginx, the spool and the worker; and no source
# builds a Redis command from a format string.  See docs/security.md.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use Loyalty::Test;
use Loyalty::Shop;

my $JSON = JSON::PP->new->canonical->utf8;

sub uri_escape { $_[0] =~ s/([^A-Za-z0-9._~-])/sprintf '%%%02X', ord $1/ger }

sub slurp {
    open my $fh, '<', $_[0] or die "$_[0]: $!";
    local $/;
    return <$fh>;
}


# --- the sources -------------------------------------------------------------

subtest 'every Redis command is an argument vector: no hiredis format '
        . 'call, no synchronous call in the module' => sub {
    my @module = glob 'ngx_loyalty_module/*.c ngx_loyalty_module/core/*.c';
    my @worker = glob 'worker/*.c';
    my (%argv, @format, @sync);

    for my $file (@module, @worker) {
        my $text = slurp($file);
        $text =~ s{/\*.*?\*/}{}gs;          # not what a comment says

        while ($text =~ /\b(redis[A-Z]\w*)\s*\(/g) {
            my $call = $1;

            if ($call =~ /Command|Format/) {
                if ($call =~ /Argv$/) {
                    $argv{$call}++;
                } elsif ($call eq 'redisAsyncFormattedCommand'
                         && $file eq 'ngx_loyalty_module/'
                                     . 'ngx_http_loyalty_redis.c') {
                    # the adapter writes RESP itself, from the argument
                    # vector and its lengths (ngx_http_loyalty_redis_resp)
                    $argv{$call}++;
                } else {
                    push @format, "$file: $call";
                }
            }

            # in nginx only the async API
            push @sync, "$file: $call"
                if $file =~ m{^ngx_loyalty_module/} && $call !~ /^redisAsync/;
        }
    }

    is($argv{redisAsyncFormattedCommand}, 1, 'the module sends at one '
       . 'place, the Redis adapter');
    like(slurp('ngx_loyalty_module/ngx_http_loyalty_redis.c'),
         qr{last\s=\sngx_http_loyalty_redis_resp\(buf,\sargc,\sargv,\sargvlen\);
            \s* (?:/\*[^*]*\*/\s*)?
            rc\s=\sredisAsyncFormattedCommand\(rd->ac,[^;]*\(char\s\*\)\sbuf,
            \s*last\s-\sbuf\)}x,
         'what it sends is the RESP its argument vectors are written in');
    ok($argv{redisCommandArgv} && $argv{redisAppendCommandArgv},
       'the worker by redisCommandArgv and redisAppendCommandArgv');
    is_deeply(\@format, [], 'no hiredis call takes a format string');
    is_deeply(\@sync, [], 'no synchronous hiredis call in the module');
};


# --- the admin API without its token -----------------------------------------

# every route the module serves, from its route tables
my @routes;
for my $file (glob 'ngx_loyalty_module/ngx_http_loyalty_admin_*.c') {
    my $text = slurp($file);
    while ($text =~ /\{\s*NGX_HTTP_([A-Z]+),\s*"([^"]+)"/g) {
        my ($method, $path) = ($1, $2);
        $path =~ s/\*/42/g;
        push @routes, [ $method, $path ];
    }
}

# Redis's count of the commands it ran, but the test's own INFO and DEBUG
sub commands_run {
    my ($t) = @_;
    my $stats = $t->redis->cmd('INFO', 'commandstats');
    my $n = 0;

    while ($stats =~ /^cmdstat_(\w+):calls=(\d+)/mg) {
        $n += $2 unless $1 eq 'info' || $1 eq 'debug';
    }

    return $n;
}

sub redis_state {
    my ($t) = @_;
    my ($changes) = $t->redis->cmd('INFO', 'persistence')
                    =~ /rdb_changes_since_last_save:(\d+)/;
    return { digest => $t->redis->cmd('DEBUG', 'DIGEST'),
             changes => $changes, commands => commands_run($t) };
}

subtest 'the admin API without a valid token: 401 on every route, and '
        . 'Redis is not even asked' => sub {
    my $t = shop();
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');

    ok(@routes >= 14, scalar(@routes) . ' routes');

    my @auth = (
        [ 'no Authorization', undef ],
        [ 'an empty one', '' ],
        [ 'Bearer and nothing', 'Bearer ' ],
        [ 'a wrong token', 'Bearer wrong-token-0123456789' ],
        [ 'the token cut by one', 'Bearer ' . substr($TOKEN, 0, -1) ],
        [ 'the token and one more byte', "Bearer ${TOKEN}x" ],
        [ 'the token in another case', 'Bearer ' . uc $TOKEN ],
        [ 'the token as Basic', "Basic $TOKEN" ],
        [ 'the token without the scheme', $TOKEN ],
    );

    sleep 0.2;
    my $before = redis_state($t);

    for my $route (@routes) {
        my ($method, $path) = @$route;
        my $body = $JSON->encode({ code => 'SNEAK', type => 'percent',
                                   value => '90', id => 'x', points => 5,
                                   reason => 'r', actor => 'a' });

        for my $a (@auth) {
            my ($what, $value) = @$a;
            my %h = ('Content-Type' => 'application/json',
                     defined $value ? (Authorization => $value) : ());
            my $res = $t->http($method, "/loyalty/admin/$path",
                               headers => \%h,
                               $method eq 'GET' ? () : (body => $body));

            is($res->{status}, 401, "$method $path, $what: 401")
                or diag($res->{body});
            is($res->{json}{error}, 'unauthorized',
               "$method $path, $what: unauthorized")
                unless $res->{status} != 401;
        }
    }

    sleep 0.1;
    is_deeply(redis_state($t), $before,
              'no command reached Redis: same count, digest, no write');

    $t->stop;
};


# --- coupon guessing -------------------------------------------------------

subtest 'coupon guessing is throttled per customer and per client address '
        . '(realip behind a proxy)' => sub {
    my $t = shop(http => "    loyalty_coupon_attempts 3 per 1m;\n"
                         . "    set_real_ip_from 127.0.0.1;\n"
                         . "    real_ip_header X-Forwarded-For;\n");

    create_coupon($t, code => 'REAL', type => 'percent', value => '5');

    my $try = sub {
        my ($code, $customer, $addr) = @_;
        return checkout($t, cart(coupon => $code), customer => $customer,
                        headers => { 'X-Forwarded-For' => $addr })
            ->{json}{coupon_status};
    };

    # one customer, a new address for every guess
    is($try->("GUESS$_", 'mallory', "10.0.0.$_"), 'not_found', "guess $_")
        for 1 .. 3;
    is($try->('REAL', 'mallory', '10.0.0.99'), 'rate_limited',
       'the 4th guess of the customer is refused from a fresh address, '
       . 'even with a real code');

    # one address, a new customer for every guess
    is($try->("GUESS$_", "sock-$_", '10.9.9.9'), 'not_found',
       "address guess $_") for 1 .. 3;
    is($try->('REAL', 'sock-new', '10.9.9.9'), 'rate_limited',
       'the 4th guess from the address is refused for a fresh customer');

    is($try->('REAL', 'alice', '10.1.1.1'), 'valid',
       'another customer at another address is not held back');

    my $res = checkout($t, cart(coupon => 'REAL'), customer => 'alice',
                       headers => { 'X-Forwarded-For' => '10.9.9.9' });
    is($res->{json}{coupon_status}, 'rate_limited',
       'nor is she let through from the throttled address');

    $t->stop;
};


# --- verbatim --------------------------------------------------------------

# printable ASCII without spaces or braces: a valid id, full of what a
# format string or a protocol parser would take as syntax
my $WHO = q{q"u'o*t$e\%s%n%x*1$8:};
my $ORDER = q{o-"1'*3\r\n%s%n%p$-1};
my $TEXT = q{*1 $8 FLUSHALL "quoted" 'single' %s%n %b \ EVAL 'x' 0 }
           . "\x{e9}\x{20ac}\x{1f600}";

sub admin {
    my ($t, $method, $path, $body) = @_;
    return $t->http($method, "/loyalty/admin/$path",
                    headers => { Authorization => "Bearer $TOKEN",
                                 'Content-Type' => 'application/json' },
                    defined $body ? (body => $JSON->encode($body)) : ());
}

subtest 'ids and texts with quotes, backslashes, format directives and '
        . 'Redis protocol are stored and read back verbatim' => sub {
    my $t = shop(http => "    loyalty_earn 10 per 1.00;\n"
                         . "    loyalty_return_window 1d;\n",
                 confirm => '');
    my $who = uri_escape($WHO);

    # what a FLUSHALL or a DEL smuggled into a command would take away
    $t->redis->cmd('SET', 'canary', 'alive');

    my $res = admin($t, POST => "customers/$who/adjustments",
                    { id => $ORDER, points => 700, reason => $TEXT,
                      actor => $TEXT });
    is($res->{status}, 201, 'an adjustment for the customer')
        or diag($res->{body});
    is($res->{json}{customer}, $WHO, 'the id comes back as sent');

    my %account = @{ $t->redis->cmd('HGETALL', "loyalty:{customer:$WHO}") };
    ok(%account, 'the account is the key with the id, byte for byte');

    # the body as the UTF-8 it is
    my $h = $JSON->decode(admin($t, GET => "customers/$who/history")->{body});
    my ($entry) = grep { $_->{type} eq 'adjustment' } @{ $h->{entries} };
    is($entry->{adjustment_id}, $ORDER, 'the adjustment id verbatim');
    is($entry->{reason}, $TEXT, 'the reason verbatim');
    is($entry->{actor}, $TEXT, 'the actor verbatim');

    # through the confirmation and the worker's credit
    $res = confirm($t, $JSON->encode({
        order_id => $ORDER, checkout_id => 'c-1', currency => 'EUR',
        lines => [ { sku => 'A', price => '10.00', quantity => 1 } ] }),
        customer => $WHO);
    is($res->{headers}{'x-order-status'}, 'recorded', 'the order is recorded')
        or diag(explain $res->{headers});

    my %account2 = @{ $t->redis->cmd('HGETALL', "loyalty:{customer:$WHO}") };
    ok(exists $account2{"o:$ORDER"},
       'its accrual is in the account under the exact order id')
        or diag(explain \%account2);

    my ($rc, $out) = $t->run_worker('--once', '--now', int(time) + 2 * 86400);
    is($rc, 0, 'the worker credited it') or diag($out);

    my $a = admin($t, GET => "customers/$who")->{json};
    is($a->{available}, 800, '700 adjusted and 100 earned, available');

    is($t->redis->cmd('GET', 'canary'), 'alive',
       'and nothing in them ran as a command');

    $t->stop;
};

subtest 'the same through the spool: Redis down, the worker replays the '
        . 'line verbatim' => sub {
    my $t = shop(http => "    loyalty_earn 10 per 1.00;\n"
                         . "    loyalty_redis_timeout 200ms;\n",
                 confirm => '');
    my $spool = $t->dir . '/spool';

    $t->stop_redis;

    my $res = confirm($t, $JSON->encode({
        order_id => $ORDER, checkout_id => 'c-2', currency => 'EUR',
        lines => [ { sku => 'A', price => '10.00', quantity => 1 } ] }),
        customer => $WHO);
    is($res->{headers}{'x-order-status'}, 'spooled', 'spooled');

    $t->start_redis;

    my ($rc, $out) = $t->run_worker('--once', '--spool', $spool);
    is($rc, 0, 'replayed') or diag($out);
    unlike($out, qr/set aside/, 'the line was read as the record it is');

    my %account = @{ $t->redis->cmd('HGETALL', "loyalty:{customer:$WHO}") };
    ok(exists $account{"o:$ORDER"}, 'the order is in the account under its '
       . 'exact id') or diag(explain \%account);

    $t->stop;
};

subtest 'the Redis ACL docs/security.md gives is enough for the module and '
        . 'the worker, and denies the rest' => sub {
    my ($acl) = slurp('docs/security.md')
                =~ /^ {6}(ACL SETUSER loyalty .*?)\n\n/ms;
    ok($acl, 'the ACL is in docs/security.md') or return;

    my @rule = split ' ', $acl;
    s/^>.*/>test-password-0123/ for @rule;

    my $t = shop(http => "    loyalty_earn 10 per 1.00;\n"
                         . "    loyalty_return_window 1d;\n",
                 confirm => '');
    is($t->redis->cmd(@rule), 'OK', 'the user is created');

    $t->{redis_address} = '127.0.0.1:' . $t->redis_port
                          . ' user=loyalty password=test-password-0123';
    $t->restart_nginx;

    create_coupon($t, code => 'ACL10', type => 'percent', value => '10');
    is(admin($t, POST => 'customers/7/adjustments',
             { id => 'acl-1', points => 1000, reason => 'r', actor => 'a' })
       ->{status}, 201, 'an adjustment');

    my $v = checkout($t, cart(coupon => 'acl10', points => 500),
                     customer => '7')->{json};
    is($v->{coupon_status}, 'valid', 'a checkout reserves the coupon');
    is($v->{points_status}, 'held', 'and holds the points');

    my $res = confirm($t, cart(order_id => 'acl-o1', coupon => 'acl10',
                               points => 500), customer => '7');
    is($res->{headers}{'x-order-status'}, 'recorded', 'the order recorded');

    my ($rc, $out) = $t->run_worker('--once', '--user', 'loyalty',
                                    '--password', 'test-password-0123',
                                    '--now', int(time) + 2 * 86400);
    is($rc, 0, 'the worker runs as the user') or diag($out);

    my $a = admin($t, GET => 'customers/7')->{json};
    ok($a->{available} > 500, "the order's points credited: "
                              . ($a->{available} // 'none') . ' available');

    is_deeply($t->redis->cmd('ACL', 'LOG'), [], 'nothing was denied');
    $t->redis->cmd('ACL', 'LOG', 'RESET');

    # a command the user lacks: refused requests, and the reason logged
    $t->redis->cmd('ACL', 'SETUSER', 'loyalty', '-time');
    $t->log_mark;

    for my $i (1, 2) {
        is(admin($t, POST => 'coupons',
                 { code => "NOTIME$i", type => 'percent', value => '5' })
           ->{status}, 503, "without TIME, coupon $i: 503");
    }

    sleep 0.1;
    my @refused = $t->log_since_mark
                  =~ /\[error\] .*loyalty:\ redis\ \S+\ refused\ a\ command:
                      \ (.*can't\ run\ this\ command.*)/xg;
    is(scalar @refused, 1, 'the refusal is logged once, with its reason')
        or diag($t->log_since_mark);

    $t->redis->cmd('ACL', 'SETUSER', 'loyalty', '+time');

    my $r = Loyalty::Redis->new($t->redis_port);
    $r->cmd('AUTH', 'loyalty', 'test-password-0123');
    like(($r->cmd_maybe('FLUSHALL'))[1] // '', qr/NOPERM/,
         'FLUSHALL is not the user\'s');
    like(($r->cmd_maybe('GET', 'other:key'))[1] // '', qr/NOPERM/,
         'nor keys outside loyalty:');
    like(($r->cmd_maybe('EVAL', 'return 1', 0))[1] // '', qr/NOPERM/,
         'nor Lua of its own');

    $t->stop;
};

done_testing;
