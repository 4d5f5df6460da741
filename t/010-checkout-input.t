# How the checkout treats its input: a malformed, mistyped, oversized or
# hostile request is refused with a precise JSON error before anything is
# looked up, is logged at info and no higher, and leaves Redis untouched;
# what is accepted (rounding, integer ids, another schema, a body in a
# temporary file, chunked bodies) is read exactly.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(sleep time);
use Loyalty::Test;
use Loyalty::Shop;

my $t = shop();

# small limits, and nginx's own limit above the module's so that the
# module answers an oversized chunked body itself
my $tight = shop(checkout => 'loyalty_cart_limits body=2k lines=3;'
                             . ' client_max_body_size 1m;');

my $LINE = '{"sku":"A1","price":"1.50","quantity":1}';

# A cart with these lines; with these members added.
sub lines { '{"checkout_id":"c-1","lines":[' . join(',', @_) . ']}' }
sub plus  { '{"checkout_id":"c-1","lines":[' . $LINE . '],' . $_[0] . '}' }

# A line with members replaced (or removed, with undef): raw JSON values.
sub line_with {
    my (%raw) = @_;
    my %m = (sku => '"A1"', price => '"1.50"', quantity => '1', %raw);
    return '{' . join(',', map { defined $m{$_} ? "\"$_\":$m{$_}" : () }
                               qw(sku price quantity brand category)) . '}';
}

# A raw request on its own connection: the response, parsed.
sub raw {
    my ($s, $request) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $s->port,
                                     Timeout => 5)
        or die "connect: $!";
    $sock->syswrite($request) // die "write: $!";
    return ($s->collect([$sock], 10))[0];
}

sub raw_post {
    my ($s, $headers, $body) = @_;
    return raw($s, "POST /checkout HTTP/1.1\r\nHost: localhost\r\n"
                   . "Connection: close\r\n$headers\r\n$body");
}

sub chunked {
    my ($body, $size) = @_;
    return join('', map { sprintf("%x\r\n%s\r\n", length, $_) }
                    unpack("(a$size)*", $body)) . "0\r\n\r\n";
}

sub quiet {
    my ($log) = @_;
    return [ grep { /\[(warn|error|crit|alert|emerg)\]/ } split /\n/, $log ];
}


# --- refused -----------------------------------------------------------------
#
# Each row: name, body, then the status, the error code and the message
# (an exact string or a regex).  "json" gives the reason of an invalid_json
# (or, for a limit, json_too_complex)
# error instead; its byte offset is where "<!>" stands in the body (the
# marker itself is removed before sending).  Optional: customer (undef: a
# guest), headers, raw (exact header lines, sent on a socket), chunked
# (sent with Transfer-Encoding: chunked), shop.

my $deep = 15;    # arrays inside the root object: 16 levels in all

# what an identifier may hold, as the messages say
my $ID = ": printable ASCII without spaces, '{' or '}'";

my $huge = plus('"x":"' . ('x' x 70000) . '"');     # default body=64k
my $large = plus('"x":"' . ('x' x 3000) . '"');     # body=2k

my @refused = (

    # --- not JSON

    { name => 'an empty body', body => '<!>',
      json => 'unexpected end of data' },
    { name => 'a document cut inside the lines',
      body => '{"checkout_id":"c-1","lines":[<!>',
      json => 'unexpected end of data' },
    { name => 'a document cut inside a string',
      body => '{"checkout_id":"c-1<!>',
      json => 'unterminated string' },
    { name => 'a document cut after a member',
      body => '{"checkout_id":"c-1"<!>',
      json => q[expected ',' or '}'] },
    { name => 'garbage after the document',
      body => lines($LINE) . ' <!>x',
      json => 'unexpected data after the document' },
    { name => 'two documents', body => lines($LINE) . '<!>' . lines($LINE),
      json => 'unexpected data after the document' },
    { name => 'a byte order mark', body => "<!>\xef\xbb\xbf" . lines($LINE),
      json => 'unexpected character' },
    { name => 'single quotes', body => q[{<!>'checkout_id':'c-1'}],
      json => 'expected a member name' },
    { name => 'a trailing comma in an object',
      body => '{"checkout_id":"c-1","lines":[' . $LINE . '],<!>}',
      json => 'expected a member name' },
    { name => 'a trailing comma in an array',
      body => '{"checkout_id":"c-1","lines":[' . $LINE . ',<!>]}',
      json => 'unexpected character' },
    { name => 'a comment', body => qq[{<!>// the cart\n"checkout_id":"c-1"}],
      json => 'expected a member name' },
    { name => 'NaN as a price', body => lines(line_with(price => '<!>NaN')),
      json => 'unexpected character' },
    { name => 'a number with a leading zero',
      body => lines(line_with(quantity => '0<!>1')),
      json => q[expected ',' or '}'] },
    { name => 'a number longer than 8192 digits',
      body => lines(line_with(price => '<!>' . ('9' x 9000))),
      json => 'number too long' },
    { name => 'a string longer than 8192 bytes',
      body => lines(line_with(sku => '<!>"' . ('A' x 9000) . '"')),
      json => 'string too long' },

    # --- what two readers could read differently

    { name => 'a member name twice',
      body => '{"checkout_id":"c-1",<!>"checkout_id":"c-2","lines":['
              . $LINE . ']}',
      json => 'duplicate member name' },
    { name => 'a member name twice, once escaped',
      body => '{"checkout_id":"c-1",<!>"\u0063heckout_id":"c-2","lines":['
              . $LINE . ']}',
      json => 'duplicate member name' },
    { name => 'a price twice in a line',
      body => lines('{"sku":"A1","price":"1.50",<!>"price":"0.01",'
                    . '"quantity":1}'),
      json => 'duplicate member name' },
    { name => 'a NUL character (\u0000) in the coupon',
      body => plus('"coupon":"SAVE<!>\u000010"'),
      json => 'NUL character in a string' },
    { name => 'an invalid UTF-8 byte in the coupon',
      body => plus(qq{"coupon":"SAVE<!>\xff10"}), json => 'invalid UTF-8' },
    { name => 'an overlong UTF-8 sequence in the coupon',
      body => plus(qq{"coupon":"SAVE<!>\xc0\xaf10"}),
      json => 'invalid UTF-8' },
    { name => 'a UTF-8 encoded surrogate in the coupon',
      body => plus(qq{"coupon":"SAVE<!>\xed\xa0\x8010"}),
      json => 'invalid UTF-8' },
    { name => 'a UTF-8 sequence cut by the closing quote',
      body => plus(qq{"coupon":"SAVE<!>\xc3"}), json => 'invalid UTF-8' },
    { name => 'an unpaired surrogate escape in the coupon',
      body => plus('"coupon":"SAVE<!>\ud80010"'),
      json => 'unpaired surrogate' },
    { name => 'a raw CR LF inside the coupon',
      body => plus(qq{"coupon":"SAVE<!>\r\n10"}),
      json => 'control character in a string' },

    # --- too deep

    { name => 'nesting one level beyond the depth limit of 16',
      body => plus('"x":' . ('[' x $deep) . '<!>[]' . (']' x $deep)),
      json => 'nested too deeply' },
    { name => '8000 nested arrays (no recursion without bound)',
      body => ('[' x 16) . '<!>' . ('[' x 7984),
      json => 'nested too deeply' },

    # --- the cart's shape

    { name => 'a cart that is an array', body => "[$LINE]",
      status => 400, error => 'invalid_field',
      message => 'the cart must be a JSON object, not an array' },
    { name => 'a cart that is a string', body => '"cart"',
      status => 400, error => 'invalid_field',
      message => 'the cart must be a JSON object, not a string' },
    { name => 'no lines', body => '{"checkout_id":"c-1"}',
      status => 400, error => 'missing_field',
      message => '/lines is required' },
    { name => 'lines null', body => '{"checkout_id":"c-1","lines":null}',
      status => 400, error => 'missing_field',
      message => '/lines is required' },
    { name => 'lines empty', body => lines(),
      status => 400, error => 'invalid_field',
      message => '/lines must be a non-empty array' },
    { name => 'lines an object',
      body => '{"checkout_id":"c-1","lines":{"0":' . $LINE . '}}',
      status => 400, error => 'invalid_field',
      message => '/lines must be a non-empty array' },
    { name => 'a line that is a string', body => lines('"A1"'),
      status => 400, error => 'invalid_field',
      message => '/lines/0 must be an object, not a string' },
    { name => 'a second line that is null', body => lines($LINE, 'null'),
      status => 400, error => 'invalid_field',
      message => '/lines/1 must be an object, not null' },
    { name => 'a line without sku', body => lines(line_with(sku => undef)),
      status => 400, error => 'missing_field',
      message => '/lines/0/sku is required' },
    { name => 'a line without price',
      body => lines($LINE, line_with(price => undef)),
      status => 400, error => 'missing_field',
      message => '/lines/1/price is required' },
    { name => 'a line without quantity',
      body => lines(line_with(quantity => undef)),
      status => 400, error => 'missing_field',
      message => '/lines/0/quantity is required' },
    { name => 'too many lines (lines=3)',
      body => lines(($LINE) x 4), shop => $tight,
      status => 400, error => 'too_many_lines',
      message => '/lines has 4 lines; at most 3 are accepted' },

    # --- each field's type

    { name => 'an empty sku', body => lines(line_with(sku => '""')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/sku must be a non-empty string' },
    { name => 'a sku that is true', body => lines(line_with(sku => 'true')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/sku must be a non-empty string' },
    { name => 'a sku that is a fraction',
      body => lines(line_with(sku => '1.5')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/sku must be a non-empty string' },
    { name => 'a brand that is false',
      body => lines(line_with(brand => 'false')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/brand must be a non-empty string' },
    { name => 'a category that is an array',
      body => lines(line_with(category => '["shoes"]')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/category must be a non-empty string' },
    { name => 'a price that is true',
      body => lines(line_with(price => 'true')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price must be a number or a decimal string, '
                 . 'not true' },
    { name => 'a price that is an object',
      body => lines(line_with(price => '{"amount":"1.50"}')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price must be a number or a decimal string, '
                 . 'not an object' },
    { name => 'a quantity that is a string',
      body => lines(line_with(quantity => '"3"')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/quantity must be a whole number from 1 to 10000' },
    { name => 'a checkout_id that is true',
      body => '{"checkout_id":true,"lines":[' . $LINE . ']}',
      status => 400, error => 'invalid_field',
      message => '/checkout_id must be a string or a whole number' },
    { name => 'a checkout_id that is a fraction',
      body => '{"checkout_id":1.5,"lines":[' . $LINE . ']}',
      status => 400, error => 'invalid_field',
      message => '/checkout_id must be a string or a whole number' },
    { name => 'a checkout_id that is negative',
      body => '{"checkout_id":-7,"lines":[' . $LINE . ']}',
      status => 400, error => 'invalid_field',
      message => '/checkout_id must be a string or a whole number' },
    { name => 'a checkout_id written with an exponent',
      body => '{"checkout_id":1e3,"lines":[' . $LINE . ']}',
      status => 400, error => 'invalid_field',
      message => '/checkout_id must be a string or a whole number' },
    { name => 'a customer that is false', body => plus('"customer":false'),
      status => 400, error => 'invalid_field',
      message => '/customer must be a string or a whole number' },
    { name => 'an order_id that is an array', body => plus('"order_id":[1]'),
      status => 400, error => 'invalid_field',
      message => '/order_id must be a string or a whole number' },
    { name => 'a currency that is a number', body => plus('"currency":978'),
      status => 400, error => 'invalid_field',
      message => '/currency must be a string, not a number' },
    { name => 'shipping that is true', body => plus('"shipping":true'),
      status => 400, error => 'invalid_field',
      message => '/shipping must be a number or a decimal string, not true' },
    { name => 'tax that is an array', body => plus('"tax":["1.00"]'),
      status => 400, error => 'invalid_field',
      message => '/tax must be a number or a decimal string, not an array' },
    { name => 'a coupon that is a number', body => plus('"coupon":10'),
      status => 400, error => 'invalid_field',
      message => '/coupon must be a string, not a number' },
    { name => 'points as a string', body => plus('"points":"500"'),
      status => 400, error => 'invalid_field',
      message => '/points must be a whole number from 0 to 1000000000' },
    { name => 'a referral that is an object', body => plus('"referral":{}'),
      status => 400, error => 'invalid_field',
      message => '/referral must be a string, not an object' },

    # --- amounts

    { name => 'a price with a decimal comma ("1,50")',
      body => lines(line_with(price => '"1,50"')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price is not a decimal number' },
    { name => 'a price "abc"', body => lines(line_with(price => '"abc"')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price is not a decimal number' },
    { name => 'an empty price ""', body => lines(line_with(price => '""')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price is not a decimal number' },
    { name => 'a price with a space',
      body => lines(line_with(price => '" 1.50"')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price is not a decimal number' },
    { name => 'a price with a plus sign',
      body => lines(line_with(price => '"+1.50"')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price is not a decimal number' },
    { name => 'a price in hexadecimal',
      body => lines(line_with(price => '"0x10"')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price is not a decimal number' },
    { name => 'a negative price', body => lines(line_with(price => '-1')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price must be from 0 to 1000000.00' },
    { name => 'a price of 1e400', body => lines(line_with(price => '1e400')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price must be from 0 to 1000000.00' },
    { name => 'a price one cent above the amount limit',
      body => lines(line_with(price => '"1000000.01"')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/price must be from 0 to 1000000.00' },
    { name => 'a line total above the amount limit',
      body => lines(line_with(price => '1000000', quantity => '2')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/quantity makes the cart total exceed 1000000' },
    { name => 'a cart total above the amount limit',
      body => lines(line_with(price => '600000'),
                    line_with(price => '400000.01')),
      status => 400, error => 'invalid_field',
      message => '/lines/1/quantity makes the cart total exceed 1000000' },
    { name => 'shipping "abc"', body => plus('"shipping":"abc"'),
      status => 400, error => 'invalid_field',
      message => '/shipping is not a decimal number' },
    { name => 'a negative tax', body => plus('"tax":-0.01'),
      status => 400, error => 'invalid_field',
      message => '/tax must be from 0 to 1000000.00' },

    # --- counts

    { name => 'a quantity of 0', body => lines(line_with(quantity => '0')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/quantity must be a whole number from 1 to 10000' },
    { name => 'a negative quantity',
      body => lines(line_with(quantity => '-1')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/quantity must be a whole number from 1 to 10000' },
    { name => 'a fractional quantity',
      body => lines(line_with(quantity => '1.5')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/quantity must be a whole number from 1 to 10000' },
    { name => 'a quantity of 1.0', body => lines(line_with(quantity => '1.0')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/quantity must be a whole number from 1 to 10000' },
    { name => 'a quantity written 1e2',
      body => lines(line_with(quantity => '1e2')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/quantity must be a whole number from 1 to 10000' },
    { name => 'a quantity of 10001',
      body => lines(line_with(quantity => '10001')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/quantity must be a whole number from 1 to 10000' },
    { name => 'a quantity of 20 digits',
      body => lines(line_with(quantity => '99999999999999999999')),
      status => 400, error => 'invalid_field',
      message => '/lines/0/quantity must be a whole number from 1 to 10000' },
    { name => 'negative points', body => plus('"points":-1'),
      status => 400, error => 'invalid_field',
      message => '/points must be a whole number from 0 to 1000000000' },
    { name => 'fractional points', body => plus('"points":1.5'),
      status => 400, error => 'invalid_field',
      message => '/points must be a whole number from 0 to 1000000000' },
    { name => 'points beyond 10^9', body => plus('"points":1000000001'),
      status => 400, error => 'invalid_field',
      message => '/points must be a whole number from 0 to 1000000000' },

    # --- the coupon

    { name => 'a coupon of 65 characters',
      body => plus('"coupon":"' . ('A' x 65) . '"'),
      status => 400, error => 'invalid_field',
      message => '/coupon is longer than 64 characters' },
    { name => 'a coupon with a space inside',
      body => plus('"coupon":"SAVE 10"'),
      status => 400, error => 'invalid_field',
      message => q{/coupon may hold only letters, digits, '-', '_' and '.' }
                 . '(byte 4 is not one)' },
    { name => 'an escaped CR LF inside the coupon',
      body => plus('"coupon":"SAVE\r\n10"'),
      status => 400, error => 'invalid_field',
      message => qr{^/coupon may hold only letters, digits} },
    { name => 'a coupon with a letter beyond ASCII',
      body => plus('"coupon":"SAV\u00c910"'),
      status => 400, error => 'invalid_field',
      message => qr{^/coupon may hold only letters, digits.*\(byte 3 } },
    { name => 'a coupon with a brace (a Redis hash tag)',
      body => plus('"coupon":"{SAVE10}"'),
      status => 400, error => 'invalid_field',
      message => qr{^/coupon may hold only letters, digits.*\(byte 0 } },

    # --- ids and currency

    { name => 'no checkout_id', body => '{"lines":[' . $LINE . ']}',
      status => 400, error => 'missing_field',
      message => '/checkout_id is required' },
    { name => 'a null checkout_id',
      body => '{"checkout_id":null,"lines":[' . $LINE . ']}',
      status => 400, error => 'missing_field',
      message => '/checkout_id is required' },
    { name => 'an empty checkout_id',
      body => '{"checkout_id":"","lines":[' . $LINE . ']}',
      status => 400, error => 'invalid_field',
      message => '/checkout_id must be 1 to 128 bytes' },
    { name => 'a checkout_id with a brace',
      body => '{"checkout_id":"c{1}","lines":[' . $LINE . ']}',
      status => 400, error => 'invalid_field',
      message => "/checkout_id has a character that is not allowed at "
                 . "byte 1$ID" },
    { name => 'a checkout_id with a space',
      body => '{"checkout_id":"c 1","lines":[' . $LINE . ']}',
      status => 400, error => 'invalid_field',
      message => "/checkout_id has a character that is not allowed at "
                 . "byte 1$ID" },
    { name => 'a checkout_id ending with an escaped newline',
      body => '{"checkout_id":"c-1\n","lines":[' . $LINE . ']}',
      status => 400, error => 'invalid_field',
      message => "/checkout_id has a character that is not allowed at "
                 . "byte 3$ID" },
    { name => 'a checkout_id of 200 bytes',
      body => '{"checkout_id":"' . ('c' x 200) . '","lines":[' . $LINE . ']}',
      status => 400, error => 'invalid_field',
      message => '/checkout_id must be 1 to 128 bytes' },
    { name => 'a customer id with a brace in the body',
      body => plus('"customer":"{42}"'),
      status => 400, error => 'invalid_field',
      message => "/customer has a character that is not allowed at byte 0$ID" },
    { name => 'currency "eur"', body => plus('"currency":"eur"'),
      status => 400, error => 'invalid_field',
      message => '/currency must be an ISO 4217 code such as "EUR"' },
    { name => 'currency "EURO"', body => plus('"currency":"EURO"'),
      status => 400, error => 'invalid_field',
      message => '/currency must be an ISO 4217 code such as "EUR"' },
    { name => 'an empty currency', body => plus('"currency":""'),
      status => 400, error => 'invalid_field',
      message => '/currency must be an ISO 4217 code such as "EUR"' },

    # --- the customer

    { name => 'a cart naming another customer than X-Customer-Id',
      body => plus('"customer":"43"'),
      status => 403, error => 'customer_mismatch',
      message => 'the cart names customer "43", the request is from another' },
    { name => 'a guest cart naming a customer',
      body => plus('"customer":"42"'), customer => undef,
      status => 403, error => 'customer_mismatch',
      message => 'the cart names customer "42", the request is from another' },
    { name => 'a trusted customer id with a space',
      body => lines($LINE), customer => '4 2',
      status => 400, error => 'invalid_customer',
      message => 'the customer id has a character that is not allowed: at '
                 . 'most 128 bytes of printable ASCII without spaces, '
                 . "'{' or '}'" },
    { name => 'a trusted customer id with a brace',
      body => lines($LINE), customer => '{42}',
      status => 400, error => 'invalid_customer',
      message => qr/^the customer id has a character that is not allowed/ },
    { name => 'a trusted customer id of 129 bytes',
      body => lines($LINE), customer => '7' x 129,
      status => 400, error => 'invalid_customer',
      message => qr/^the customer id is too long: at most 128 bytes/ },

    # --- the request itself

    { name => 'a text/plain body', body => lines($LINE),
      headers => { 'Content-Type' => 'text/plain' },
      status => 415, error => 'unsupported_media_type',
      message => 'the body must be application/json' },
    { name => 'a form body', body => lines($LINE),
      headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
      status => 415, error => 'unsupported_media_type',
      message => 'the body must be application/json' },
    { name => 'application/jsonp', body => lines($LINE),
      headers => { 'Content-Type' => 'application/jsonp' },
      status => 415, error => 'unsupported_media_type',
      message => 'the body must be application/json' },
    { name => 'no Content-Type', body => lines($LINE),
      raw => "X-Customer-Id: 42\r\n",
      status => 415, error => 'unsupported_media_type',
      message => 'the body must be application/json' },
    { name => 'an empty Content-Type', body => lines($LINE),
      raw => "X-Customer-Id: 42\r\nContent-Type: \r\n",
      status => 415, error => 'unsupported_media_type',
      message => 'the body must be application/json' },
    { name => 'a body above the limit by Content-Length', body => $huge,
      status => 413, error => 'body_too_large',
      message => 'the body has ' . length($huge) . ' bytes; at most 65536 '
                 . 'are accepted' },
    { name => 'a chunked body above the limit (body=2k)', body => $large,
      chunked => 1, shop => $tight, status => 413, error => 'body_too_large',
      message => 'the body has ' . length($large) . ' bytes; at most 2048 '
                 . 'are accepted' },
);

for my $row (@refused) {
    my $s = $row->{shop} // $t;
    my $at = index $row->{body}, '<!>';
    my $body = $row->{body} =~ s/<!>//r;
    my ($status, $error, $message) = @$row{qw(status error message)};

    if (defined $row->{json}) {
        ($status, $error) = (400, 'invalid_json');
        $message = "the body is not valid JSON: $row->{json} at byte $at";

        # valid JSON beyond a bound of the cart is told apart
        if ($row->{json} =~ /too long|too deeply|too many/) {
            $error = 'json_too_complex';
            $message = 'the body exceeds a limit of the cart: '
                       . "$row->{json} at byte $at";
        }
    }

    subtest "refused: $row->{name} ($status $error)" => sub {
        $s->log_mark;

        my $res;

        if (defined $row->{raw}) {
            $res = raw_post($s, $row->{raw} . 'Content-Length: '
                                . length($body) . "\r\n", $body);

        } elsif ($row->{chunked}) {
            $res = raw_post($s, "X-Customer-Id: 42\r\n"
                                . "Content-Type: application/json\r\n"
                                . "Transfer-Encoding: chunked\r\n",
                            chunked($body, 1000));

        } else {
            $res = checkout($s, $body,
                            exists $row->{customer}
                                ? (customer => $row->{customer}) : (),
                            headers => $row->{headers} || {});
        }

        is($res->{status}, $status, "answered $status") or diag($res->{body});
        is($res->{json}{error}, $error, "error $error");

        if (ref $message) {
            like($res->{json}{message}, $message,
                 'the message names the fault');
        } else {
            is($res->{json}{message}, $message, 'the message names the fault');
        }

        is_deeply([ sort keys %{ $res->{json} || {} } ], [qw(error message)],
                  'the answer is the module\'s own: the backend was not '
                  . 'reached');
        is_deeply(redis_keys($s), [], 'Redis holds no key');

        sleep 0.05;
        my $log = $s->log_since_mark;

        is_deeply(quiet($log), [], 'nothing above [info] in the error log');
        like($log, qr/\[info\] .*loyalty: checkout refused with \Q$error\E: /,
             'the refusal is logged at [info]');
    };
}


# --- a refused body is not read as a request ----------------------------------

subtest 'the unread body of a refused request is never taken for a request '
        . 'of its own' => sub {
    my $inner = "GET /checkout/smuggled HTTP/1.1\r\nHost: localhost\r\n"
                . "X-Customer-Id: 42\r\nConnection: close\r\n\r\n";

    for my $case ([ $t, 'text/plain', $inner, 415 ],
                  [ $tight, 'application/json',
                    $inner . ' ' x 3000, 413 ])
    {
        my ($s, $type, $body, $status) = @$case;

        # keep-alive: the connection would go on after the answer
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $s->port,
                                         Timeout => 5)
            or die "connect: $!";
        $sock->syswrite("POST /checkout HTTP/1.1\r\nHost: localhost\r\n"
                        . "X-Customer-Id: 42\r\nContent-Type: $type\r\n"
                        . 'Content-Length: ' . length($body) . "\r\n\r\n"
                        . $body);

        # whatever comes within 1.5 s, or until nginx closes
        my ($raw, $sel) = ('', IO::Select->new($sock));
        my $deadline = time + 1.5;

        while (time < $deadline) {
            next unless $sel->can_read(0.1);
            last unless $sock->sysread(my $chunk, 65536);
            $raw .= $chunk;
        }

        close $sock;

        my @answers = $raw =~ m{^HTTP/1\.1 (\d{3})}mg;
        is_deeply(\@answers, [$status],
                  "one answer ($status) to a refused POST ($type, "
                  . length($body) . ' bytes)');
    }
};


# --- accepted ----------------------------------------------------------------

sub passed {
    my ($res, $what) = @_;
    is($res->{status}, 200, "$what reaches the backend") or diag($res->{body});
    return $res->{json} || {};
}

subtest 'a cart without currency is in loyalty_currency (EUR)' => sub {
    my $v = passed(checkout($t, lines($LINE)), 'no currency');
    is($v->{discount}, '0.00', 'amounts have two decimals, as EUR');

    $v = passed(checkout($t, plus('"currency":null')), 'a null currency');
    is($v->{discount}, '0.00', 'it is EUR too');

    $v = passed(checkout($t, plus('"currency":"JPY"')), 'a JPY cart');
    is($v->{discount}, '0', 'amounts in JPY have no decimals');
    is_deeply(redis_keys($t), [], 'no coupon, no points: Redis untouched');
};

subtest 'GET passes to the backend untouched and unchecked' => sub {
    $t->log_mark;

    my $res = $t->http(GET => '/checkout?x=1',
                       headers => { 'X-Customer-Id' => '{bad id}',
                                    'Content-Type' => 'text/plain' });
    my $v = passed($res, 'a GET with a bad customer id and no cart');

    is($v->{customer}, '', 'no customer is passed on');
    is($v->{checkout_id}, '', 'no checkout id');
    is($v->{coupon_status}, '', 'no coupon verdict');
    is($v->{discount}, '', 'no discount');
    is_deeply(redis_keys($t), [], 'Redis untouched');

    sleep 0.05;
    unlike($t->log_since_mark, qr/checkout refused/, 'nothing was refused');
};

subtest 'JSON media types: application/json with parameters, any case, '
        . 'and application/*+json' => sub {
    for my $type ('application/json; charset=utf-8', 'APPLICATION/JSON',
                  'application/vnd.shop+json')
    {
        my $res = checkout($t, lines($LINE),
                           headers => { 'Content-Type' => $type });
        is(passed($res, $type)->{checkout_id}, 'c-1', "$type is read");
    }
};

subtest 'white space around and between tokens is allowed; unknown members '
        . 'are ignored' => sub {
    my $v = passed(checkout($t, "\r\n\t { \"checkout_id\" :\n\"c-ws\" ,"
                                . "\"lines\" : [ $LINE ] ,"
                                . " \"gift_wrap\": {\"note\": [1, null]} }"
                                . " \r\n"),
                   'a pretty-printed cart with an extra member');
    is($v->{checkout_id}, 'c-ws', 'it is read');
};

subtest 'client headers with the X-Loyalty- prefix never reach the backend'
=> sub {
    $t->log_mark;

    my $res = checkout($t, lines($LINE),
                       headers => { 'X-Loyalty-Coupon-Status' => 'valid',
                                    'X-Loyalty-Discount' => '99.00',
                                    'X-Loyalty-Spoof' => 'x' });
    my $v = passed($res, 'a cart without coupon');

    is($v->{coupon_status}, '', 'no coupon status');
    is($v->{discount}, '0.00', 'the discount is the module\'s 0.00');
    is($v->{spoof}, '', 'a header nginx does not set is gone too');

    sleep 0.05;
    my $log = $t->log_since_mark;

    for my $h (qw(X-Loyalty-Coupon-Status X-Loyalty-Discount X-Loyalty-Spoof)) {
        like($log, qr/\[info\] .*loyalty: removed client header "\Q$h\E"/,
             "the removal of $h is logged at [info]");
    }

    is_deeply(quiet($log), [], 'nothing above [info]');

    # (X-Loyalty-Spoof has no proxy_set_header that would hide it anyway)
    for my $h (qw(x-loyalty-spoof X-LOYALTY-SPOOF)) {
        $res = raw_post($t, "X-Customer-Id: 42\r\n"
                            . "Content-Type: application/json\r\n"
                            . "$h: x\r\n"
                            . 'Content-Length: ' . length(lines($LINE))
                            . "\r\n",
                        lines($LINE));
        is(passed($res, "a cart with $h")->{spoof}, '',
           "the prefix matches $h");
    }

    $res = $t->http(GET => '/checkout',
                    headers => { 'X-Loyalty-Spoof' => 'x' });
    is(passed($res, 'a GET')->{spoof}, '',
       'the prefix is removed from a GET too');
};

subtest 'integer ids are taken as their text' => sub {
    $t->redis->cmd('FLUSHALL');
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');

    my $v = passed(checkout($t, '{"checkout_id":12345,"customer":42,'
                                . '"coupon":"SAVE10","lines":[' . $LINE
                                . ']}'),
                   'checkout_id 12345 and customer 42');

    is($v->{checkout_id}, '12345', 'the checkout id is "12345"');
    is($v->{customer}, '42', 'the customer 42 matches X-Customer-Id: 42');
    is($v->{coupon_status}, 'valid', 'the coupon applies');
    is_deeply($t->redis->cmd('ZRANGE', 'loyalty:{coupon:SAVE10}:res', 0, -1),
              ['12345'], 'the use is reserved under "12345"');

    my $big = '123456789012345678901234567890';
    $v = passed(checkout($t, "{\"checkout_id\":$big,\"lines\":[$LINE]}"),
                'a 30-digit checkout_id');
    is($v->{checkout_id}, $big, 'is kept digit for digit');
};

subtest 'the limits themselves are accepted' => sub {
    my $id = 'c' x 128;
    my $v = passed(checkout($t, "{\"checkout_id\":\"$id\",\"lines\":["
                                . line_with(price => '"1000000.00"') . ']}',
                            customer => '7' x 128),
                   'a 128-byte checkout id and customer, a 1000000.00 line');
    is($v->{checkout_id}, $id, 'the checkout id is whole');
    is($v->{customer}, '7' x 128, 'the customer too');

    passed(checkout($t, lines(line_with(price => '100',
                                        quantity => '10000'))),
           'a quantity of 10000 at 100.00, exactly the amount limit');

    $v = passed(checkout($t, plus('"coupon":"' . ('a' x 64) . '"')),
                'a coupon of 64 characters');
    is($v->{coupon}, 'A' x 64, 'is normalised, whole');

    passed(checkout($t, plus('"x":' . ('[' x $deep) . ']' x $deep)),
           'a document nested 16 deep');

    passed(checkout($tight, lines(($LINE) x 3)), 'three lines with lines=3');

    $v = passed(checkout($t, plus('"coupon":"  "')), 'a blank coupon');
    is($v->{coupon_status}, '', 'a blank coupon is no coupon');
};

subtest 'prices with more decimals than the currency are rounded half up, '
        . 'per unit' => sub {
    $t->redis->cmd('FLUSHALL');
    create_coupon($t, code => 'ALL', type => 'percent', value => '100');

    # a 100% coupon's discount is the cart's subtotal
    my @cases = (
        [ '"19.999"', 1, 'EUR', '20.00', '"19.999" is 20.00' ],
        [ '"19.994"', 1, 'EUR', '19.99', '"19.994" is 19.99' ],
        [ '"19.995"', 1, 'EUR', '20.00', 'a tie "19.995" goes up to 20.00' ],
        [ '"0.125"', 3, 'EUR', '0.39',
          '3 x "0.125" is 3 x 0.13 (not 0.375 rounded)' ],
        [ '0.005', 1, 'EUR', '0.01', 'a JSON number 0.005 is 0.01' ],
        [ '1.9999999999999999999', 1, 'EUR', '2.00',
          'digits beyond a double\'s precision are exact' ],
        [ '"1.999e1"', 1, 'EUR', '19.99', '"1.999e1" is 19.99' ],
        [ '"199.5"', 1, 'JPY', '200', '"199.5" yen is 200' ],
    );

    my $n = 0;

    for my $c (@cases) {
        my ($price, $qty, $currency, $want, $name) = @$c;
        my $body = '{"checkout_id":"r-' . ++$n . '",'
                   . "\"currency\":\"$currency\",\"coupon\":\"ALL\","
                   . '"lines":['
                   . line_with(price => $price, quantity => $qty) . ']}';
        my $v = passed(checkout($t, $body), $name);
        is($v->{coupon_status}, 'valid', "$name: the coupon applies");
        is($v->{discount}, $want, $name);
    }
};

subtest 'a body nginx spilled to a temporary file is read back' => sub {
    my $s = shop(checkout => 'client_body_buffer_size 1k;');
    create_coupon($s, code => 'SAVE10', type => 'percent', value => '10');

    my $lines = join ',', map {
        sprintf '{"sku":"SKU-%03d-%s","brand":"acme","category":"shoes",'
                . '"price":"1.00","quantity":1}', $_, 'p' x 20
    } 1 .. 200;
    my $body = '{"checkout_id":"big","coupon":"SAVE10","lines":[' . $lines
               . ']}';

    die "the cart must be larger than 20 KB\n" unless length $body > 20000;

    $s->log_mark;
    my $v = passed(checkout($s, $body), 'a 200-line cart');

    is($v->{coupon_status}, 'valid', 'the coupon applies');
    is($v->{discount}, '20.00', '10% of 200 lines at 1.00 is 20.00');
    is($v->{checkout_id}, 'big', 'the checkout id was read');

    sleep 0.05;
    my $log = $s->log_since_mark;
    like($log, qr/a client request body is buffered to a temporary file/,
         'the body was in a temporary file');
    unlike($log, qr/\[(error|crit|alert|emerg)\]/, 'and no error');

    $s->stop;
};

subtest 'a chunked body within the limit is read' => sub {
    create_coupon($t, code => 'SAVE10', type => 'percent', value => '10');

    my $body = plus('"coupon":"SAVE10"');
    my $res = raw_post($t, "X-Customer-Id: 42\r\n"
                           . "Content-Type: application/json\r\n"
                           . "Transfer-Encoding: chunked\r\n",
                       chunked($body, 7));
    my $v = passed($res, 'a cart in 7-byte chunks');
    is($v->{coupon_status}, 'valid', 'the coupon in it applies');
    is($v->{discount}, '0.15', '10% of 1.50');
};

subtest 'loyalty_field and loyalty_amounts minor read the shop\'s own JSON'
=> sub {
    my $s = shop(checkout => join "\n",
                 'loyalty_field checkout_id /cart/token;',
                 'loyalty_field lines /cart/items;',
                 'loyalty_field line.price /unit_price;',
                 'loyalty_field coupon /discount/code;',
                 'loyalty_amounts minor;');
    create_coupon($s, code => 'SAVE10', type => 'percent', value => '10');

    my $v = passed(checkout($s, '{"cart":{"token":"t-9","items":['
                                . '{"sku":"A1","unit_price":1999,"quantity":3},'
                                . '{"sku":"B2","unit_price":1,"quantity":1}]},'
                                . '"discount":{"code":" save10 "}}'),
                   'the shop\'s cart');

    is($v->{checkout_id}, 't-9', 'the checkout id is /cart/token');
    is($v->{coupon}, 'SAVE10', 'the coupon is /discount/code');
    is($v->{coupon_status}, 'valid', 'and applies');
    is($v->{discount}, '6.00',
       '10% of 5998 cents is 599.8 cents, 6.00 (not 599.80: 10% of 5998 '
       . 'EUR)');
    is_deeply($s->redis->cmd('ZRANGE', 'loyalty:{coupon:SAVE10}:res', 0, -1),
              ['t-9'], 'reserved under the mapped checkout id');

    my @errors = (
        [ lines($LINE), 400, 'missing_field', '/cart/items is required',
          'the default schema is not read' ],
        [ '{"cart":{"token":"t-1","items":[{"sku":"A1","unit_price":19.99,'
          . '"quantity":1}]}}', 400, 'invalid_field',
          '/cart/items/0/unit_price must be a whole number of minor units',
          'a fraction of a minor unit is refused' ],
        [ '{"cart":{"token":"t-1","items":[{"sku":"A1","price":"1.50",'
          . '"quantity":1}]}}', 400, 'missing_field',
          '/cart/items/0/unit_price is required',
          'a line\'s default price member is not read' ],
        [ '{"cart":{"token":"t-1","items":[{"sku":"A1","unit_price":100,'
          . '"quantity":1}]},"discount":{"code":"SAVE 10"}}', 400,
          'invalid_field', qr{^/discount/code may hold only letters},
          'an error names the mapped pointer' ],
    );

    $s->redis->cmd('FLUSHALL');

    for my $e (@errors) {
        my ($body, $status, $error, $message, $name) = @$e;
        my $res = checkout($s, $body);
        is($res->{status}, $status, "$name: $status") or diag($res->{body});
        is($res->{json}{error}, $error, "$name: $error");
        if (ref $message) {
            like($res->{json}{message}, $message, "$name: the message");
        } else {
            is($res->{json}{message}, $message, "$name: the message");
        }
    }

    is_deeply(redis_keys($s), [], 'nothing written for the refused carts');

    $s->stop;
};

$t->stop;
$tight->stop;

done_testing();
