# Points outside an order, through the admin API: manual adjustments with
# an audit trail, engagement bonuses within their caps, the ledger a page
# at a time, explicit enrolment and the leaderboard.  Each write once by
# its id; a refused one changes nothing.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use POSIX qw(strftime);
use Test::More;
use Loyalty::Ledger;
use Loyalty::Shop;
use Loyalty::Test;

my $DAY = 86400;
my $JSON = JSON::PP->new->canonical;

my $t = shop(http => <<'HTTP', confirm => '');
    loyalty_earn 10 per 1.00;
    loyalty_return_window 30d;
    loyalty_points_expire 365d;
    loyalty_bonus review 50 max 2 per 1d;
    loyalty_bonus newsletter_signup 200;
HTTP
my $r = $t->redis;

sub admin {
    my ($method, $path, $body, %opt) = @_;

    return $t->http($method => "/loyalty/admin/$path",
                    defined $body ? (body => ref $body ? $JSON->encode($body)
                                                       : $body)
                                  : (),
                    headers => { 'Content-Type' => 'application/json',
                                 $opt{token} // 1
                                 ? (Authorization => "Bearer "
                                                     . ($opt{token_value}
                                                        // $TOKEN))
                                 : () });
}

sub order {
    my ($customer, $id, $price) = @_;

    my $res = confirm($t, cart(order_id => $id, checkout_id => "c-$id",
                               lines => [ { sku => 'S1', brand => 'b',
                                            category => 'c',
                                            price => $price,
                                            quantity => 1 } ]),
                      customer => $customer);
    is($res->{status}, 201, "order $id confirmed") or diag($res->{body});
}

sub account {
    return { @{ $r->cmd('HGETALL', "loyalty:{customer:$_[0]}") } };
}

sub history {
    my ($customer, $query) = @_;

    my $res = admin(GET => "customers/$customer/history"
                           . (defined $query ? "?$query" : ''));
    is($res->{status}, 200, "history of $customer") or diag($res->{body});

    return $res->{json};
}

# Every key with its content: what "nothing changed" compares.  The
# worker's schedule is a hint that every call touches (due_add.lua).  The
# program's totals are written after an answer (stats_add.lua): a dump
# is taken once two reads 50 ms apart agree.
sub dump_redis {
    $t->quiet_redis;

    return read_redis();
}

sub read_redis {
    my %all;

    for my $k (@{ $r->cmd('KEYS', '*') }) {
        next if $k eq 'loyalty:{program}' || $k =~ /^loyalty:\{due:/;
        my $type = $r->cmd('TYPE', $k);
        $all{$k} = $type eq 'hash' ? { @{ $r->cmd('HGETALL', $k) } }
                 : $type eq 'zset' ? $r->cmd('ZRANGE', $k, 0, -1,
                                             'WITHSCORES')
                 : $type eq 'list' ? $r->cmd('LRANGE', $k, 0, -1)
                 : $type;
    }

    return \%all;
}

sub adjust {
    my ($customer, $body, %opt) = @_;

    return admin(POST => "customers/$customer/adjustments", $body, %opt);
}

subtest 'a manual adjustment: given once, with its reason and actor' => sub {
    order('adj-1', 'adj-o1', '30.00');     # 300 points pending

    my $res = adjust('adj-1', { id => 'goodwill-1', points => 150,
                                reason => 'late delivery, ticket #881',
                                actor => 'agent:marie' });
    is($res->{status}, 201, 'given: 201') or diag($res->{body});
    is_deeply({ map { $_ => $res->{json}{$_} }
                qw(customer id points available pending replayed) },
              { customer => 'adj-1', id => 'goodwill-1', points => 150,
                available => 150, pending => 300,
                replayed => JSON::PP::false() },
              'the balance after it');

    my $before = dump_redis();
    $res = adjust('adj-1', { id => 'goodwill-1', points => 150,
                             reason => 'late delivery, ticket #881',
                             actor => 'agent:marie' });
    is($res->{status}, 200, 'the same adjustment again: 200');
    is($res->{json}{replayed}, JSON::PP::true(), 'replayed');
    is($res->{json}{points}, 150, 'with the first answer');
    is_deeply(dump_redis(), $before, 'and nothing changed');

    $res = adjust('adj-1', { id => 'goodwill-1', points => 500,
                             reason => 'late delivery, ticket #881',
                             actor => 'agent:marie' });
    is($res->{status}, 409, 'its id with other points: 409');
    is($res->{json}{error}, 'adjustment_conflict', 'adjustment_conflict');
    is_deeply(dump_redis(), $before, 'nothing changed');

    $res = adjust('adj-1', { id => 'fix-1', points => -151,
                             reason => 'double grant', actor => 'agent:marie' });
    is($res->{status}, 422, 'taking more than is available: 422');
    is($res->{json}{error}, 'insufficient_points', 'insufficient_points');
    is_deeply(dump_redis(), $before, 'nothing changed');

    $res = adjust('adj-1', { id => 'fix-1', points => -100,
                             reason => 'double grant', actor => 'agent:marie' });
    is($res->{status}, 201, 'taking less: 201') or diag($res->{body});
    is($res->{json}{available}, 50, '50 left');
    is(account('adj-1')->{L} =~ /:(\d+)$/ && $1, 50, 'from the lot');

    my $h = history('adj-1');
    is_deeply([ map { +{ %$_{qw(type points pending)} } }
                @{ $h->{entries} } ],
              [ { type => 'adjustment', points => -100, pending => 0 },
                { type => 'adjustment', points => 150, pending => 0 },
                { type => 'order', points => 0, pending => 300 } ],
              'the history, newest first');
    is_deeply({ %{ $h->{entries}[1] }{qw(adjustment_id reason actor)} },
              { adjustment_id => 'goodwill-1',
                reason => 'late delivery, ticket #881',
                actor => 'agent:marie' },
              'the adjustment with its reason and actor');
    is_deeply([ map { $_->{id} } @{ $h->{entries} } ], [ 3, 2, 1 ],
              'entries numbered in order');
    is($h->{entries}[2]{order}, 'adj-o1', 'the order by its id');
    ledger_ok($r, undef, history => 1);
};

subtest 'an adjustment that is not one: 400, nothing changed' => sub {
    my $before = dump_redis();

    for my $case (
        [ 'no body', undef, 'missing_body' ],
        [ 'not an object', '[1]', 'missing_body' ],
        [ 'no reason', { id => 'x', points => 1, actor => 'a' },
          'missing_field' ],
        [ 'zero points', { id => 'x', points => 0, reason => 'r',
                           actor => 'a' }, 'invalid_field' ],
        [ 'fractional points', { id => 'x', points => 1.5, reason => 'r',
                                 actor => 'a' }, 'invalid_field' ],
        [ 'points as text', { id => 'x', points => '10', reason => 'r',
                              actor => 'a' }, 'invalid_field' ],
        [ 'too many points', { id => 'x', points => 1000000001,
                               reason => 'r', actor => 'a' },
          'invalid_field' ],
        [ 'a line break in the reason', { id => 'x', points => 1,
                                          reason => "a\nb", actor => 'a' },
          'invalid_field' ],
        [ 'a long reason', { id => 'x', points => 1, reason => 'r' x 201,
                             actor => 'a' }, 'invalid_field' ],
        [ 'an id with a space', { id => 'x y', points => 1, reason => 'r',
                                  actor => 'a' }, 'invalid_field' ],
        [ 'an unknown field', { id => 'x', points => 1, reason => 'r',
                                actor => 'a', note => 'n' },
          'unknown_field' ],
    ) {
        my ($name, $body, $code) = @$case;
        my $res = adjust('adj-1', $body);
        is($res->{status}, 400, "$name: 400");
        is($res->{json}{error}, $code, "$name: $code");
    }

    is_deeply(dump_redis(), $before, 'nothing changed');
};

subtest 'engagement bonuses: points by type, within the cap' => sub {
    my $ev = sub { admin(POST => 'events', { id => $_[0], type => $_[1],
                                             customer => $_[2] }) };

    my $res = $ev->('rv-1', 'review', 'fan-1');
    is($res->{status}, 201, 'a review: 201') or diag($res->{body});
    is_deeply({ map { $_ => $res->{json}{$_} }
                qw(customer id type points available used max replayed) },
              { customer => 'fan-1', id => 'rv-1', type => 'review',
                points => 50, available => 50, used => 1, max => 2,
                replayed => JSON::PP::false() },
              '50 points, 1 of 2 today');
    ok(account('fan-1')->{e}, 'the customer is enrolled by it');

    is($ev->('rv-2', 'review', 'fan-1')->{status}, 201, 'a second: 201');

    my $before = dump_redis();
    $res = $ev->('rv-3', 'review', 'fan-1');
    is($res->{status}, 422, 'a third the same day: 422');
    is($res->{json}{error}, 'cap_reached', 'cap_reached');
    like($res->{json}{message}, qr/2 "review" bonuses/, 'saying why');
    is(account('fan-1')->{a}, 100, 'nothing granted');

    $res = $ev->('rv-3', 'review', 'fan-1');
    is($res->{status}, 422, 'the same event again: still capped');

    $res = $ev->('rv-1', 'review', 'fan-1');
    is($res->{status}, 200, 'the first event again: 200');
    is($res->{json}{replayed}, JSON::PP::true(), 'replayed');
    is(account('fan-1')->{a}, 100, 'not granted twice');

    # a day later the cap has room again
    $r->cmd('HSET', 'loyalty:{customer:fan-1}', 'c:review',
            join ',', map { time - $DAY - $_ } 1, 2);
    $res = $ev->('rv-4', 'review', 'fan-1');
    is($res->{status}, 201, 'a day later: 201') or diag($res->{body});
    is($res->{json}{used}, 1, 'the period holds one');

    $res = $ev->('nl-1', 'newsletter_signup', 'fan-1');
    is($res->{status}, 201, 'a type without a cap: 201');
    is($res->{json}{points}, 200, 'its points');
    ok(!exists $res->{json}{max}, 'no cap shown');

    $before = dump_redis();
    $res = $ev->('x-1', 'selfie', 'fan-1');
    is($res->{status}, 422, 'a type no directive names: 422');
    is($res->{json}{error}, 'unknown_event_type', 'unknown_event_type');

    for my $case ([ { id => 'x', type => 'review' }, 'missing_field' ],
                  [ { id => 'x', type => 'review', customer => 'a{b' },
                    'invalid_customer' ],
                  [ { id => 'x', type => 'review', customer => 7 },
                    'invalid_field' ],
                  [ { id => 'x', type => 'review', customer => 'c',
                      points => 1000 }, 'unknown_field' ]) {
        $res = admin(POST => 'events', $case->[0]);
        is($res->{status}, 400, "$case->[1]: 400");
        is($res->{json}{error}, $case->[1], $case->[1]);
    }
    is_deeply(dump_redis(), $before, 'nothing changed by the refused ones');

    my ($rc, $out) = $t->run_worker('--once', '--now', time);
    is($rc, 0, 'the worker ran') or diag($out);
    my @sent = grep { $_->{type} eq 'bonus_granted' }
               map { +{ @{ $_->[1] } } }
               @{ $r->cmd('XRANGE', 'loyalty:{events}', '-', '+') };
    is_deeply([ sort map { "$_->{event_type}:$_->{event}:$_->{points}" }
                @sent ],
              [ 'newsletter_signup:nl-1:200', 'review:rv-1:50',
                'review:rv-2:50', 'review:rv-4:50' ],
              'each grant is an event for the mailer, once');

    my $h = history('fan-1');
    is_deeply([ map { "$_->{type}:$_->{kind}:$_->{bonus_id}:$_->{points}" }
                @{ $h->{entries} } ],
              [ 'bonus:newsletter_signup:nl-1:200', 'bonus:review:rv-4:50',
                'bonus:review:rv-2:50', 'bonus:review:rv-1:50' ],
              'each grant in the history; the capped one not');
    ledger_ok($r, undef, history => 1);
};

subtest 'the history a page at a time, stable under new writes' => sub {
    my $c = 'pager';
    adjust($c, { id => "p-$_", points => $_, reason => 'r', actor => 'a' })
        for 1 .. 7;

    my $page = history($c, 'limit=3');
    is_deeply([ map { $_->{points} } @{ $page->{entries} } ], [ 7, 6, 5 ],
              'the newest three');
    ok($page->{next_cursor}, 'and a cursor');

    # written between two pages: they do not move the next page
    adjust($c, { id => "p-$_", points => $_, reason => 'r', actor => 'a' })
        for 8 .. 9;

    my @seen = map { $_->{points} } @{ $page->{entries} };
    while (my $cursor = $page->{next_cursor}) {
        $page = history($c, "limit=3&cursor=$cursor");
        push @seen, map { $_->{points} } @{ $page->{entries} };
    }
    is_deeply(\@seen, [ reverse 1 .. 7 ],
              'every entry once, in order, none of the later ones');
    is(scalar @{ history($c)->{entries} }, 9, 'a new first page has all');

    my $res = admin(GET => "customers/$c/history?cursor=abc");
    is($res->{status}, 400, 'a cursor that is not one: 400');
    is($res->{json}{error}, 'invalid_cursor', 'invalid_cursor');
    $res = admin(GET => "customers/$c/history?limit=101");
    is($res->{json}{error}, 'invalid_limit', 'limit above 100: invalid_limit');
    $res = admin(GET => 'customers/nobody/history');
    is($res->{status}, 404, 'no account: 404');
};

subtest 'the history of an order through credit and return' => sub {
    order('life-1', 'life-o1', '20.00');               # 200 pending
    my ($rc, $out) = $t->run_worker('--once', '--now', time + 31 * $DAY);
    is($rc, 0, 'credited') or diag($out);

    my $res = admin(POST => 'orders/life-o1/returns',
                    { return_id => 'ret-1', amount => '5.00' });
    is($res->{status}, 201, 'a quarter returned') or diag($res->{body});

    my $h = history('life-1');
    is_deeply([ map { +{ %$_{qw(type points pending)} } }
                @{ $h->{entries} } ],
              [ { type => 'return', points => -50, pending => 0 },
                { type => 'credit', points => 200, pending => -200 },
                { type => 'order', points => 0, pending => 200 } ],
              'order, credit, return');
    is_deeply({ %{ $h->{entries}[0] }{qw(order return)} },
              { order => 'life-o1', return => 'ret-1' },
              'the return names its order and id');
    ledger_ok($r, undef, history => 1);
};

subtest 'enrolment: an explicit sign-up, once' => sub {
    my $res = admin(PUT => 'customers/new-1/enrolment');
    is($res->{status}, 201, 'enrolled: 201') or diag($res->{body});
    my $at = $res->{json}{enrolled_at};
    like($at, qr/^\d{4}-\d\d-\d\dT/, 'at a time');

    $res = admin(PUT => 'customers/new-1/enrolment');
    is($res->{status}, 200, 'again: 200');
    is($res->{json}{enrolled_at}, $at, 'the first time kept');

    $res = admin(GET => 'customers/new-1');
    is($res->{status}, 200, 'the account exists');
    is($res->{json}{available}, 0, 'with nothing yet');
    ok(defined $r->cmd('ZSCORE', 'loyalty:{due:' . shard('new-1') . '}',
                       'new-1'),
       'the worker will visit it (statements)');
};

subtest 'the leaderboard: points earned in the month and the year' => sub {
    my $month = strftime('%Y-%m', gmtime);
    my $year = strftime('%Y', gmtime);

    $t->quiet_redis;
    $r->cmd('DEL', "loyalty:{board}:$month", "loyalty:{board}:$year");
    order('lb-1', 'lb-o1', '10.00');       # 100
    order('lb-2', 'lb-o2', '50.00');       # 500
    order('lb-3', 'lb-o3', '30.00');       # 300
    order('lb-2', 'lb-o2', '50.00');       # a retry counts once
    admin(POST => 'events', { id => 'lb-e', type => 'newsletter_signup',
                              customer => 'lb-1' });                 # 200
    admin(POST => 'orders/lb-o3/returns', { return_id => 'r', amount =>
                                            '30.00' });              # -300

    # the board moves within 100 ms of the changes
    $t->quiet_redis;

    my $res = admin(GET => "leaderboard?period=$month&limit=2");
    is($res->{status}, 200, 'the month') or diag($res->{body});
    is_deeply($res->{json},
              { period => $month,
                members => [ { rank => 1, customer => 'lb-2',
                               points => 500 },
                             { rank => 2, customer => 'lb-1',
                               points => 300 } ] },
              'the top two; a whole return takes its order off');

    $res = admin(GET => "leaderboard?period=$year");
    is_deeply([ map { $_->{customer} } @{ $res->{json}{members} } ],
              [ 'lb-2', 'lb-1' ], 'the year the same');

    for my $q ('period=2026-13', 'period=26', 'period=2026-11&limit=0', '') {
        $res = admin(GET => "leaderboard?$q");
        is($res->{status}, 400, "'$q': 400");
    }
};

subtest 'a wrong token: 401 and nothing done' => sub {
    my $before = dump_redis();

    for my $req ([ POST => 'customers/tk/adjustments',
                   { id => 'x', points => 5, reason => 'r', actor => 'a' } ],
                 [ POST => 'events', { id => 'x', type => 'review',
                                       customer => 'tk' } ],
                 [ PUT => 'customers/tk/enrolment', undef ],
                 [ GET => 'customers/adj-1/history', undef ],
                 [ GET => 'leaderboard?period=2026', undef ]) {
        for my $opt ([ token => 0 ], [ token_value => 'wrong' ]) {
            my $res = admin(@$req, @$opt);
            is($res->{status}, 401, "$req->[0] $req->[1] (@$opt): 401");
        }
    }

    is_deeply(dump_redis(), $before, 'nothing changed');
};

$t->check_error_log;
$t->stop;

done_testing;
