package Loyalty::Ledger;

# The ledger invariant, checked over every account in Redis after a
# scenario: available is the sum of the live lots, pending the sum of the
# pending accruals, held the sum of the checkouts' holds; nothing below
# zero, nothing credited beyond what was earned.

use strict;
use warnings;

use Exporter 'import';
use Test::More;

our @EXPORT = qw(ledger_ok accounts shard);

# The shard of the worker's schedule a customer is in: FNV-1a, 16 shards.
sub shard {
    my ($customer) = @_;

    my $h = 2166136261;

    for my $byte (unpack 'C*', $customer) {
        $h = (($h ^ $byte) * 16777619) % 4294967296;
    }

    return $h % 16;
}

# customer id -> the account hash
sub accounts {
    my ($redis) = @_;

    my %all;

    for my $key (@{ $redis->cmd('KEYS', 'loyalty:{customer:*}') }) {
        my ($id) = $key =~ /^loyalty:\{customer:(.*)\}$/;
        $all{$id} = { @{ $redis->cmd('HGETALL', $key) } };
    }

    return \%all;
}

# The problems of one account, as text; none when it adds up.  With
# $history, its ledger (the :log list) must add up to its balances too.
sub problems {
    my ($redis, $id, $acc, $history) = @_;

    my @bad;
    my ($lots, $pending) = (0, 0);

    for my $lot (split /,/, $acc->{L} // '') {
        my ($expiry, $points) = $lot =~ /^(\d+):(\d+)$/
            or push(@bad, "lot '$lot' is malformed"), next;
        push @bad, "lot '$lot' holds no points" if $points <= 0;
        $lots += $points;
    }

    for my $field (grep { /^o:/ } keys %$acc) {
        my @f = split /\|/, $acc->{$field}, -1;
        push @bad, "$field has " . scalar(@f) . ' fields' if @f != 11;
        push @bad, "$field has state '$f[0]'" if $f[0] !~ /^[PCV]$/;
        $pending += $f[1] if $f[0] eq 'P';
    }

    my $held = 0;
    my %holdv = @{ $redis->cmd('HGETALL', "loyalty:{customer:$id}:holdv") };
    $held += $_ for values %holdv;

    my ($a, $p, $h) = map { $acc->{$_} // 0 } qw(a p h);

    push @bad, "available $a is not the sum of its lots $lots" if $a != $lots;
    push @bad, "pending $p is not the sum of its pending orders $pending"
        if $p != $pending;
    push @bad, "held $h is not the sum of its holds $held" if $h != $held;
    push @bad, "available $a is below zero" if $a < 0;

    if ($history) {
        my ($sa, $sp) = (0, 0);
        for my $e (@{ $redis->cmd('LRANGE', "loyalty:{customer:$id}:log",
                                  0, -1) }) {
            my @f = split /\n/, $e;
            $sa += $f[3];
            $sp += $f[4];
        }
        push @bad, "the history's points add up to $sa, not available $a"
            if $sa != $a;
        push @bad, "the history's pending add up to $sp, not pending $p"
            if $sp != $p;
    }

    return @bad;
}

# ledger_ok($redis, $name, history => 1): see problems()
sub ledger_ok {
    my ($redis, $name, %opt) = @_;

    my $all = accounts($redis);
    my @bad = map {
        my $id = $_;
        map { "customer $id: $_" } problems($redis, $id, $all->{$id},
                                            $opt{history})
    } sort keys %$all;

    ok(!@bad, ($name // 'the ledger adds up') . ' over '
              . scalar(keys %$all) . ' accounts')
        or diag(join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)]);
}

1;
