package Loyalty::Redis;

# A small, exact Redis client for the tests: RESP over a blocking socket.
# Replies: a string or integer as a scalar, nil as undef, an array as an
# array reference; an error reply dies unless cmd_maybe is used.

use strict;
use warnings;

use IO::Socket::INET;

sub new {
    my ($class, $port) = @_;

    my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                     Timeout => 5)
        or die "redis 127.0.0.1:$port: $!\n";

    return bless { sock => $sock, buf => '' }, $class;
}

sub cmd {
    my ($self, @args) = @_;

    my ($reply, $err) = $self->cmd_maybe(@args);
    die "redis @args: $err\n" if defined $err;

    return $reply;
}

# Returns (reply, undef) or (undef, error text).
sub cmd_maybe {
    my ($self, @args) = @_;

    $self->send(@args);

    return $self->read_reply;
}

# Sends many commands before reading any reply.
sub pipeline {
    my ($self, @commands) = @_;

    $self->send(@$_) for @commands;

    return map { ($self->read_reply)[0] } @commands;
}

sub send {
    my ($self, @args) = @_;

    my $out = '*' . scalar(@args) . "\r\n";
    $out .= '$' . length($_) . "\r\n$_\r\n" for map { $_ // '' } @args;

    my $off = 0;
    while ($off < length $out) {
        my $n = $self->{sock}->syswrite($out, length($out) - $off, $off);
        die "redis write: $!\n" unless defined $n;
        $off += $n;
    }
}

sub read_reply {
    my ($self) = @_;

    my $line = $self->read_line;
    my ($type, $rest) = (substr($line, 0, 1), substr($line, 1));

    return ($rest, undef) if $type eq '+';
    return (undef, $rest) if $type eq '-';
    return ($rest + 0, undef) if $type eq ':';

    if ($type eq '$') {
        return (undef, undef) if $rest < 0;
        my $data = $self->read_bytes($rest + 2);
        return (substr($data, 0, $rest), undef);
    }

    if ($type eq '*') {
        return (undef, undef) if $rest < 0;
        my @items;
        for (1 .. $rest) {
            my ($item, $err) = $self->read_reply;
            push @items, defined $err ? "ERR $err" : $item;
        }
        return (\@items, undef);
    }

    die "redis: unexpected reply '$line'\n";
}

sub read_line {
    my ($self) = @_;

    while ((my $i = index $self->{buf}, "\r\n") < 0) {
        $self->fill;
    }

    my $i = index $self->{buf}, "\r\n";
    my $line = substr $self->{buf}, 0, $i;
    substr($self->{buf}, 0, $i + 2) = '';

    return $line;
}

sub read_bytes {
    my ($self, $n) = @_;

    $self->fill while length $self->{buf} < $n;

    return substr $self->{buf}, 0, $n, '';
}

sub fill {
    my ($self) = @_;

    my $got = $self->{sock}->sysread($self->{buf}, 65536, length $self->{buf});
    die "redis read: " . ($got // $!) . "\n" unless $got;
}

1;
