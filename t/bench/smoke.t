# The bench scripts at a tiny size, so that `make test` finds out when
# one of them stops working: each runs to its end, stops what it started,
# and prints its figures for a machine to read.  Nothing here judges a
# figure's size (performance is measured by `make bench`, never asserted);
# what is checked is that each figure is there and makes sense (a rate
# above zero, a p99 no lower than its p50), and that the worker credited
# every account of its sample.
#
# Runs alone after the suite (make test): it loads both cores for about
# half a minute.

use strict;
use warnings;

use FindBin;
use Test::More;

my $ROOT = "$FindBin::Bin/../..";

# Runs a bench script with %env; returns its "bench ..." lines as hashes
# of their key=value pairs, after checking that it ended well.
sub bench {
    my ($script, $args, %env) = @_;

    local @ENV{ keys %env } = values %env;

    my $out = `cd $ROOT && perl bench/$script @$args 2>&1`;
    my $rc = $? >> 8;

    my $name = join ' ', "bench/$script", @$args;

    is($rc, 0, "$name ended well")
        or diag(substr($out, -3000));
    unlike($out, qr/^\s*not ok/m, "$name: its own checks passed")
        or diag(substr($out, -3000));

    return [ map { { map { split /=/, $_, 2 } grep { /=/ } split ' ' } }
             grep { /^bench / } split /\n/, $out ];
}

sub positive {
    my ($line, $what, @keys) = @_;

    my @bad = grep { !defined $line->{$_} || !($line->{$_} > 0) } @keys;

    ok(!@bad, "$what: @keys above zero")
        or diag('not: ' . join ', ', map { "$_=" . ($line->{$_} // '?') }
                                     @bad);
}

subtest 'bench/http.pl: coupon, confirmation and health against plain' => sub {
    my $lines = bench('http.pl', [ qw(coupon confirm health) ],
                      DURATION => 1, PAIRS => 1);

    is_deeply([ map { $_->{scenario} } @$lines ], [ qw(coupon confirm health) ],
              'a line for each scenario');

    for my $l (@$lines) {
        positive($l, $l->{scenario}, qw(rps plain_rps ratio fixed_rps
                                        fixed_plain_rps nginx_us_per_request
                                        redis_us_per_request));
        ok($l->{p99_ms} >= $l->{p50_ms} && $l->{plain_p99_ms}
           >= $l->{plain_p50_ms}, "$l->{scenario}: p99 no lower than p50");
    }

    positive($lines->[0], 'coupon', 'requests_per_redis_read');
};

subtest 'bench/cost.pl: instructions per coupon checkout' => sub {
    plan skip_all => 'callgrind does not run a sanitized nginx'
        if $ENV{LOYALTY_SANITIZE};

    my $lines = bench('cost.pl', [ 'coupon' ], SECONDS => 1);

    is(scalar @$lines, 1, 'one line');
    positive($lines->[0], 'coupon', qw(requests ir_per_request
                                       plain_ir_per_request module_ir));
    ok($lines->[0]{ir_per_request} > $lines->[0]{plain_ir_per_request},
       'the module costs instructions plain does not');
};

subtest 'bench/redis-cost.pl: Redis by pipeline depth and by batch' => sub {
    my $lines = bench('redis-cost.pl', [], CALLS => 4000,
                      CHECKOUTS => 4000);

    is_deeply([ map { $_->{depth} // "batch $_->{batch}" } @$lines ],
              [ 1, 2, 4, 8, 16, 32, map { "batch $_" } 1, 4, 9, 32 ],
              'six depths, four batch sizes');
    positive($_, $_->{kind}, grep { /^us_/ } keys %$_) for @$lines;
};

subtest 'bench/worker-drain.pl: a small backlog drained' => sub {
    my $lines = bench('worker-drain.pl', [ 2000, 200 ]);

    my ($w) = grep { exists $_->{credits_per_second} } @$lines;
    my ($m) = grep { exists $_->{per_accrual_bytes} } @$lines;

    positive($w // {}, 'the drain', qw(seconds credits_per_second
                                       redis_us_per_customer));
    is($w->{sample_credited}, 200, 'every account of the sample credited');
    positive($m // {}, 'memory', qw(pending_account_bytes per_accrual_bytes
                                    credited_account_bytes enrolled_bytes));
};

subtest 'bench/rss.pl: the worker RSS series' => sub {
    my $lines = bench('rss.pl', [], REQUESTS => 20000, STEP => 5000);

    is(scalar @$lines, 1, 'one line');
    positive($lines->[0], 'rss', qw(requests start_kb warm_kb last_kb));
};

done_testing;
