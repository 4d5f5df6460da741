# Hostile input, end to end: a table of bad requests to the checkout, the
# order confirmation and the admin API.  Each one gets its precise answer
# (a 4xx JSON error with a stable code; for a confirmation, which is the
# shop's paid order and always reaches it, status `invalid` and a [warn]
# that starts with the code), writes nothing to Redis (the data set's
# digest and its count of changes are the same before and after), and
# logs nothing above [warn].
#
# Redis holds a program's worth of state meanwhile (a coupon, an account
# with points), so that a request that slipped through would change it.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use IO::Select;
use Socket qw(SHUT_WR);
use Time::HiRes qw(sleep time);
use JSON::PP;
use Loyalty::Test;
use Loyalty::Shop;

my $JSON = JSON::PP->new->canonical;

# the bounds the rows aim at: 1 MB bodies (nginx's own limit above it, so
# the module answers), 200 lines, depth 16
my $LIMITS = 'loyalty_cart_limits body=1m; client_max_body_size 4m;';

# (the confirmation's body goes on to the stub shop, whose nginx takes 1m)
my $t = shop(http => "    loyalty_earn 10 per 1.00;\n",
             checkout => $LIMITS,
             confirm => 'loyalty_cart_limits body=512k;');

create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');

my $res = $t->http(POST => '/loyalty/admin/customers/42/adjustments',
                   body => $JSON->encode({ id => 'seed', points => 5000,
                                           reason => 'seed',
                                           actor => 'test' }),
                   headers => { 'Content-Type' => 'application/json',
                                Authorization => "Bearer $TOKEN" });
die "no seed account: $res->{body}" unless $res->{status} == 201;


# --- bodies ------------------------------------------------------------------

my $LINE = '{"sku":"A1","price":"1.50","quantity":1}';

sub cart_of { '{"checkout_id":"c-1","lines":[' . join(',', @_) . ']}' }
sub cart_plus { '{"checkout_id":"c-1","lines":[' . $LINE . '],' . $_[0] . '}' }
sub order_plus {
    '{"order_id":"o-1","checkout_id":"c-1","lines":[' . $LINE . '],'
    . $_[0] . '}'
}

sub line_with {
    my (%raw) = @_;
    my %m = (sku => '"A1"', price => '"1.50"', quantity => '1', %raw);
    return '{' . join(',', map { defined $m{$_} ? "\"$_\":$m{$_}" : () }
                               qw(sku price quantity)) . '}';
}

sub order_line { '{"order_id":"o-1","lines":[' . $_[0] . ']}' }

my $ORDER = order_plus('"currency":"EUR"');
my $TEN_THOUSAND = cart_of(($LINE) x 10000);
my $TOO_BIG = cart_plus('"pad":"' . ('x' x (1100 * 1024)) . '"');
my $DEEP = cart_plus('"x":' . ('[' x 16) . (']' x 16));

sub chunked {
    my ($body, $size) = @_;
    return join('', map { sprintf("%x\r\n%s\r\n", length, $_) }
                    unpack("(a$size)*", $body)) . "0\r\n\r\n";
}


# --- the table ---------------------------------------------------------------
#
# path: /checkout (the default), /orders, or admin:<path below the API>.
# body: sent with Content-Type: application/json and Content-Length,
# unless headers (extra or replaced; undef removes one), customer (the
# trusted X-Customer-Id, 42 unless given; undef for none) or raw (the
# whole request on a socket, see raw_request below) say otherwise.
# error: the code expected; status: 400 unless given.  A row for
# nginx's own answer (framing it refuses before any module runs) has
# nginx => 1 and no error.

my @rows = (

    # --- malformed and truncated JSON

    [ 'an empty body', body => '', error => 'invalid_json' ],
    [ 'a cart cut inside the lines',
      body => '{"checkout_id":"c-1","lines":[', error => 'invalid_json' ],
    [ 'a cart cut inside a string', body => '{"checkout_id":"c-',
      error => 'invalid_json' ],
    [ 'a cart cut after a value', body => '{"checkout_id":"c-1"',
      error => 'invalid_json' ],
    [ 'garbage after the cart', body => cart_of($LINE) . 'x',
      error => 'invalid_json' ],
    [ 'single quotes', body => q[{'checkout_id':'c-1'}],
      error => 'invalid_json' ],
    [ 'a trailing comma', body => cart_of($LINE . ','),
      error => 'invalid_json' ],
    [ 'NaN as a price', body => cart_of(line_with(price => 'NaN')),
      error => 'invalid_json' ],
    [ 'a member twice', body => '{"checkout_id":"c-1","checkout_id":"c-2",'
                                 . '"lines":[' . $LINE . ']}',
      error => 'invalid_json' ],
    [ 'a byte order mark', body => "\xef\xbb\xbf" . cart_of($LINE),
      error => 'invalid_json' ],

    # --- wrong types

    [ 'a cart that is an array', body => "[$LINE]",
      error => 'invalid_field' ],
    [ 'lines that are a string', body => '{"checkout_id":"c-1",'
                                         . '"lines":"A1"}',
      error => 'invalid_field' ],
    [ 'a price that is true', body => cart_of(line_with(price => 'true')),
      error => 'invalid_field' ],
    [ 'a quantity that is a string',
      body => cart_of(line_with(quantity => '"3"')),
      error => 'invalid_field' ],
    [ 'a coupon that is a number', body => cart_plus('"coupon":10'),
      error => 'invalid_field' ],
    [ 'points that are a string', body => cart_plus('"points":"500"'),
      error => 'invalid_field' ],
    [ 'a checkout_id that is an object',
      body => '{"checkout_id":{},"lines":[' . $LINE . ']}',
      error => 'invalid_field' ],

    # --- huge numbers

    [ 'a price of 1e400', body => cart_of(line_with(price => '1e400')),
      error => 'invalid_field' ],
    [ 'a price of 9000 digits',
      body => cart_of(line_with(price => '9' x 9000)),
      error => 'json_too_complex' ],
    [ 'a quantity of 20 digits',
      body => cart_of(line_with(quantity => '99999999999999999999')),
      error => 'invalid_field' ],
    [ 'points of 1e30', body => cart_plus('"points":1e30'),
      error => 'invalid_field' ],
    [ 'a line total beyond the amount limit',
      body => cart_of(line_with(price => '999999.99', quantity => '10000')),
      error => 'invalid_field' ],

    # --- negative and fractional

    [ 'a negative quantity', body => cart_of(line_with(quantity => '-1')),
      error => 'invalid_field' ],
    [ 'a fractional quantity', body => cart_of(line_with(quantity => '0.5')),
      error => 'invalid_field' ],
    [ 'a negative price', body => cart_of(line_with(price => '-0.01')),
      error => 'invalid_field' ],
    [ 'negative points', body => cart_plus('"points":-100'),
      error => 'invalid_field' ],
    [ 'fractional points', body => cart_plus('"points":0.5'),
      error => 'invalid_field' ],
    [ 'negative shipping', body => cart_plus('"shipping":"-1.00"'),
      error => 'invalid_field' ],

    # --- sizes and nesting

    [ '10,000 lines: 40,000 values, beyond the 22,800 of 200 lines',
      body => $TEN_THOUSAND, error => 'json_too_complex' ],
    [ '201 lines', body => cart_of(($LINE) x 201),
      error => 'too_many_lines' ],
    [ 'nesting one level beyond 16', body => $DEEP,
      error => 'json_too_complex' ],
    [ '100,000 nested arrays', body => '[' x 100000,
      error => 'json_too_complex' ],
    [ 'a body over 1 MB by Content-Length', body => $TOO_BIG,
      status => 413, error => 'body_too_large' ],

    # --- codes: NUL, invalid UTF-8, CR/LF, Redis lookalikes

    [ 'a NUL (\u0000) in the coupon',
      body => cart_plus('"coupon":"SA\u0000VE"'),
      error => 'invalid_json' ],
    [ 'a raw 0xff byte in the coupon',
      body => cart_plus(qq{"coupon":"SAVE\xff10"}), error => 'invalid_json' ],
    [ 'an overlong UTF-8 "/" in the coupon',
      body => cart_plus(qq{"coupon":"SAVE\xc0\xaf10"}),
      error => 'invalid_json' ],
    [ 'a lone surrogate escape in the referral',
      body => cart_plus('"referral":"R\ud800"'), error => 'invalid_json' ],
    [ 'a raw CR LF in the coupon',
      body => cart_plus(qq{"coupon":"SAVE\r\n10"}), error => 'invalid_json' ],
    [ 'an escaped CR LF in the coupon',
      body => cart_plus('"coupon":"SAVE10\r\nFLUSHALL"'),
      error => 'invalid_field' ],
    [ 'an escaped LF in the referral',
      body => cart_plus('"referral":"REF\n1"'), error => 'invalid_field' ],
    [ 'a coupon that is a Redis command',
      body => cart_plus('"coupon":"*1\r\n$8\r\nFLUSHALL\r\n"'),
      error => 'invalid_field' ],
    [ 'a coupon with a hash tag', body => cart_plus('"coupon":"{SAVE10}"'),
      error => 'invalid_field' ],
    [ 'a coupon of 65 characters',
      body => cart_plus('"coupon":"' . ('S' x 65) . '"'),
      error => 'invalid_field' ],
    [ 'a checkout_id with a space',
      body => '{"checkout_id":"c 1","lines":[' . $LINE . ']}',
      error => 'invalid_field' ],

    # --- the request around the body

    [ 'a text/plain body', body => cart_of($LINE),
      headers => { 'Content-Type' => 'text/plain' },
      status => 415, error => 'unsupported_media_type' ],
    [ 'a multipart body', body => cart_of($LINE),
      headers => { 'Content-Type' => 'multipart/form-data; boundary=x' },
      status => 415, error => 'unsupported_media_type' ],
    [ 'no Content-Type', body => cart_of($LINE),
      headers => { 'Content-Type' => undef },
      status => 415, error => 'unsupported_media_type' ],
    [ 'spoofed X-Loyalty- headers with a bad coupon',
      body => cart_plus('"coupon":"SAVE 10"'),
      headers => { 'X-Loyalty-Coupon-Status' => 'valid',
                   'X-Loyalty-Discount' => '99.00' },
      error => 'invalid_field' ],
    [ 'a customer in the body other than the trusted one',
      body => cart_plus('"customer":"43","points":100'),
      status => 403, error => 'customer_mismatch' ],
    [ 'a guest naming a customer in the body',
      body => cart_plus('"customer":"42","points":100'), customer => undef,
      status => 403, error => 'customer_mismatch' ],
    [ 'a trusted customer id with a space', body => cart_of($LINE),
      customer => '4 2', error => 'invalid_customer' ],
    [ 'a trusted customer id with a hash tag', body => cart_of($LINE),
      customer => '{42}', error => 'invalid_customer' ],

    # --- framing, on a raw socket

    [ 'a chunked body that is not JSON', raw => { chunked => 'not json' },
      error => 'invalid_json' ],
    [ 'a chunked body with a NUL in the coupon',
      raw => { chunked => cart_plus('"coupon":"A\u0000"') },
      error => 'invalid_json' ],
    [ 'a chunked body over 1 MB', raw => { chunked => $TOO_BIG },
      status => 413, error => 'body_too_large' ],
    [ 'a chunk size that is not hexadecimal',
      raw => { framing => "zz\r\nabc\r\n0\r\n\r\n" },
      status => 400, nginx => 1,
      nginx_log => 'client sent invalid chunked body' ],
    [ 'a body cut short by the client',
      raw => { truncated => cart_plus('"coupon":"SAVE10"') },
      status => 0, nginx => 1 ],

    # --- the order confirmation: the shop's answer, status invalid

    (map { [ "confirmation: $_->[0]", path => '/orders', @$_[1 .. $#$_] ] }
    [ 'cut short', body => '{"order_id":"o-1","lines":[',
      error => 'invalid_json' ],
    [ 'a negative quantity', body => order_line(line_with(quantity => '-2')),
      error => 'invalid_field' ],
    [ 'a fractional quantity',
      body => order_line(line_with(quantity => '1.5')),
      error => 'invalid_field' ],
    [ 'a price of 1e400', body => order_line(line_with(price => '1e400')),
      error => 'invalid_field' ],
    [ 'no order id', body => cart_of($LINE), error => 'missing_field' ],
    [ 'an order id with a CR LF',
      body => '{"order_id":"o-1\r\n","lines":[' . $LINE . ']}',
      error => 'invalid_field' ],
    [ 'another customer in the body', body => order_plus('"customer":"43"'),
      error => 'customer_mismatch' ],
    [ 'a NUL in the coupon', body => order_plus('"coupon":"A\u0000"'),
      error => 'invalid_json' ],
    [ 'invalid UTF-8 in the referral',
      body => order_plus(qq{"referral":"R\xfe"}), error => 'invalid_json' ],
    [ 'nesting beyond 16', body => order_plus('"x":' . ('[' x 16)
                                              . (']' x 16)),
      error => 'json_too_complex' ],
    [ '10,000 lines', body => '{"order_id":"o-1","lines":['
                             . join(',', ($LINE) x 10000) . ']}',
      error => 'json_too_complex' ],
    [ '201 lines', body => '{"order_id":"o-1","lines":['
                          . join(',', ($LINE) x 201) . ']}',
      error => 'too_many_lines' ],
    [ 'a text/plain body', body => $ORDER,
      headers => { 'Content-Type' => 'text/plain' },
      error => 'unsupported_media_type' ],
    [ 'a body over 512 KB',
      body => order_plus('"pad":"' . ('x' x (600 * 1024)) . '"'),
      error => 'body_too_large' ],
    [ 'a trusted customer id with a hash tag', body => $ORDER,
      customer => '{42}', error => 'invalid_customer' ],
    [ 'a chunked body that is not JSON', raw => { chunked => '{"order' },
      error => 'invalid_json' ]),

    # --- the admin API

    (map { [ "admin: $_->[0]", path => "admin:$_->[1]", @$_[2 .. $#$_] ] }
    [ 'a coupon cut short', 'coupons', body => '{"code":"X1","type":',
      error => 'invalid_json' ],
    [ 'a coupon that is an array', 'coupons', body => '["X1"]',
      error => 'invalid_field' ],
    [ 'a coupon code with an escaped CR LF', 'coupons',
      body => '{"code":"X1\r\nDEL","type":"percent","value":"10"}',
      error => 'invalid_field' ],
    [ 'a coupon code with a raw 0xff', 'coupons',
      body => qq{{"code":"X\xff","type":"percent","value":"10"}},
      error => 'invalid_json' ],
    [ 'a negative percentage', 'coupons',
      body => '{"code":"X1","type":"percent","value":"-5"}',
      error => 'invalid_field' ],
    [ 'a fixed value of 1e400', 'coupons',
      body => '{"code":"X1","type":"fixed","value":1e400,"currency":"EUR"}',
      error => 'invalid_field' ],
    [ 'a coupon nested too deeply', 'coupons',
      body => '{"code":"X1","x":' . ('[' x 8) . (']' x 8) . '}',
      error => 'json_too_complex' ],
    [ 'a coupon as text/plain', 'coupons',
      body => '{"code":"X1","type":"percent","value":"10"}',
      headers => { 'Content-Type' => 'text/plain' },
      status => 415, error => 'unsupported_media_type' ],
    [ 'fractional adjustment points', 'customers/42/adjustments',
      body => '{"id":"a1","points":1.5,"reason":"r","actor":"a"}',
      error => 'invalid_field' ],
    [ 'an adjustment of 10^12 points', 'customers/42/adjustments',
      body => '{"id":"a1","points":1000000000000,"reason":"r","actor":"a"}',
      error => 'invalid_field' ],
    [ 'a control character in the reason', 'customers/42/adjustments',
      body => '{"id":"a1","points":5,"reason":"r\u0007","actor":"a"}',
      error => 'invalid_field' ],
    [ 'an adjustment without an id', 'customers/42/adjustments',
      body => '{"points":5,"reason":"r","actor":"a"}',
      error => 'missing_field' ],
    [ 'a customer id with a hash tag in the path',
      'customers/%7B42%7D/adjustments',
      body => '{"id":"a1","points":5,"reason":"r","actor":"a"}',
      error => 'invalid_customer' ]),
);


# --- Redis, before and after -------------------------------------------------

sub redis_state {
    my $info = $t->redis->cmd('INFO', 'persistence');
    my ($changes) = $info =~ /rdb_changes_since_last_save:(\d+)/;

    return { digest => $t->redis->cmd('DEBUG', 'DIGEST'),
             changes => $changes };
}


# --- sending -----------------------------------------------------------------

sub on_socket {
    my ($request, %opt) = @_;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port,
                                     Timeout => 5)
        or die "connect: $!";
    $sock->syswrite($request) // die "write: $!";
    shutdown($sock, SHUT_WR) if $opt{half_close};

    return ($t->collect([$sock], 10))[0];
}

sub send_row {
    my (%row) = @_;

    my ($path, %headers);

    if ($row{path} =~ /^admin:(.*)/) {
        $path = "/loyalty/admin/$1";
        $headers{Authorization} = "Bearer $TOKEN";

    } else {
        $path = $row{path};
        my $customer = exists $row{customer} ? $row{customer} : '42';
        $headers{'X-Customer-Id'} = $customer if defined $customer;
    }

    $headers{'Content-Type'} = 'application/json';
    %headers = (%headers, %{ $row{headers} || {} });
    delete @headers{ grep { !defined $headers{$_} } keys %headers };

    my $head = "POST $path HTTP/1.1\r\nHost: localhost\r\n"
               . "Connection: close\r\n"
               . join('', map { "$_: $headers{$_}\r\n" } sort keys %headers);

    my $raw = $row{raw};

    if (!$raw) {
        return on_socket($head . 'Content-Length: ' . length($row{body})
                         . "\r\n\r\n" . $row{body});
    }

    if (defined $raw->{chunked}) {
        return on_socket($head . "Transfer-Encoding: chunked\r\n\r\n"
                         . chunked($raw->{chunked}, 4000));
    }

    if (defined $raw->{framing}) {
        return on_socket($head . "Transfer-Encoding: chunked\r\n\r\n"
                         . $raw->{framing});
    }

    # promised more than is sent, then the client stops writing
    return on_socket($head . 'Content-Length: '
                     . (length($raw->{truncated}) + 100) . "\r\n\r\n"
                     . $raw->{truncated}, half_close => 1);
}


# --- the rows ----------------------------------------------------------------

ok(@rows >= 50, scalar(@rows) . ' bad requests');

# the connection and the program are settled before the first row
sleep 0.3;

for my $r (@rows) {
    my ($name, %row) = @$r;

    $row{path} //= '/checkout';
    my $confirm = $row{path} eq '/orders';
    my $status = $row{status} // ($confirm ? 201 : 400);
    my $what = $row{nginx} ? "nginx's $status"
               : $confirm ? "invalid, $row{error}"
               : "$status $row{error}";

    subtest "$name: $what" => sub {
        my $before = redis_state();
        $t->log_mark;

        my $res = send_row(%row);

        is($res->{status}, $status, "answered $status") or diag($res->{body});

        if ($confirm && !$row{nginx}) {
            is($res->{headers}{'x-order-status'}, 'invalid',
               'the order passed to the shop unrecorded: status invalid');
            like($res->{body}, qr/"shop":"created"/, "with the shop's answer");

        } elsif (!$row{nginx}) {
            is($res->{json}{error}, $row{error}, "error $row{error}")
                or diag($res->{body});
            like($res->{json}{message} // '', qr/\S/, 'with a message');
            is_deeply([ sort keys %{ $res->{json} || {} } ],
                      [qw(error message)], 'the module\'s own answer');
        }

        # what the module does after the answer (a release, a count) is done
        sleep 0.1;

        is_deeply(redis_state(), $before,
                  'Redis unchanged: same digest, no write');

        my $log = $t->log_since_mark;
        my @loud = grep { /\[(error|crit|alert|emerg)\]/ } split /\n/, $log;

        # nginx's own line for framing it refuses, at a level of its choosing
        @loud = grep { !/\Q$row{nginx_log}\E/ } @loud if $row{nginx_log};

        is_deeply(\@loud, [], 'nothing above [warn] in the error log'
                              . ($row{nginx_log} ? ' but nginx\'s own' : ''));

        if ($confirm && !$row{nginx}) {
            my $skip = 'loyalty: order confirmation not recorded';
            like($log, qr/\[warn\] .*\Q$skip, $row{error}: \E/,
                 "one [warn] that starts with $row{error}");
        }
    };
}

# what was there before the rows is still all there
subtest 'the coupon and the account are as they were' => sub {
    my $c = $t->http(GET => '/loyalty/admin/coupons/SAVE10',
                     headers => { Authorization => "Bearer $TOKEN" });
    is($c->{json}{used} // 0, 0, 'the coupon was never used');

    my $a = $t->http(GET => '/loyalty/admin/customers/42',
                     headers => { Authorization => "Bearer $TOKEN" });
    is($a->{json}{available}, 5000, 'the account has its 5000 points');
    is($a->{json}{held}, 0, 'none held');
};

$t->stop;
$t->check_error_log;

done_testing;
