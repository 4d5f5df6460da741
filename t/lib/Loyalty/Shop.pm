package Loyalty::Shop;

# A shop for the end-to-end tests: a checkout location in front of a stub
# backend that echoes the loyalty headers it received as JSON, and the
# admin API.  Helpers create coupons and send checkouts.

use strict;
use warnings;

use Exporter 'import';
use JSON::PP;

our @EXPORT = qw(shop cart checkout create_coupon redis_keys $TOKEN);

our $TOKEN = 'test-token-0123456789';

my $JSON = JSON::PP->new->canonical;

# The backend: /fail answers 500, /reject 409, anything else 200 with the
# loyalty headers it got.
sub backend {
    my @h = qw(customer checkout_id coupon coupon_status discount
               points_status points_redeemed redeem_value spoof);

    my $echo = join ',', map {
        my $name = "http_x_loyalty_" . $_;
        "\"$_\":\"\$$name\""
    } @h;

    return <<"BACKEND";
        default_type application/json;
        location /checkout/fail { return 500 '{"shop":"error"}\\n'; }
        location /checkout/reject { return 409 '{"shop":"refused"}\\n'; }
        location / { return 200 '{$echo}\\n'; }
BACKEND
}

# The location block of a checkout, with extra directives inside.
sub checkout_location {
    my ($backend_port, $extra) = @_;

    $extra //= '';

    my $headers = join "\n", map {
        my ($name, $var) = @$_;
        "            proxy_set_header X-Loyalty-$name \$loyalty_$var;"
    } [ 'Customer', 'customer' ], [ 'Checkout-Id', 'checkout_id' ],
      [ 'Coupon', 'coupon' ], [ 'Coupon-Status', 'coupon_status' ],
      [ 'Discount', 'discount' ], [ 'Points-Status', 'points_status' ],
      [ 'Points-Redeemed', 'points_redeemed' ],
      [ 'Redeem-Value', 'redeem_value' ];

    return <<"LOC";
        location /checkout {
            loyalty_checkout on;
            loyalty_customer \$http_x_customer_id;
$headers
$extra
            proxy_pass http://127.0.0.1:$backend_port;
        }
LOC
}

# A started shop: %opt takes http (extra http-level directives), checkout
# (extra directives in the checkout location), config (more locations),
# workers.
sub shop {
    my (%opt) = @_;

    my $t = Loyalty::Test->new(
        backend     => backend(),
        workers     => $opt{workers} // 1,
        http_config => "    loyalty_currency EUR;\n"
                       . "    loyalty_point_value 1.00 per 100;\n"
                       . ($opt{http} // ''),
    );

    $t->{config} = checkout_location($t->backend_port, $opt{checkout})
                   . <<"ADMIN" . ($opt{config} // '');
        location /loyalty/admin/ {
            loyalty_admin;
            loyalty_admin_token $TOKEN;
        }
ADMIN

    return $t->start;
}

# A cart in the default schema: cart(coupon => 'X', points => 500, ...).
sub cart {
    my (%f) = @_;

    my %cart = (
        checkout_id => delete $f{checkout_id} // 'c-1',
        currency    => 'EUR',
        lines       => delete $f{lines}
                       // [ { sku => 'A1', brand => 'acme',
                              category => 'shoes', price => '19.99',
                              quantity => 3 } ],
        %f,
    );

    return $JSON->encode(\%cart);
}

# POST a cart; customer defaults to 42; the response's json is what the
# backend saw (or the module's error).
sub checkout {
    my ($t, $body, %opt) = @_;

    my %headers = ('Content-Type' => 'application/json',
                   %{ $opt{headers} || {} });
    $headers{'X-Customer-Id'} = $opt{customer} // '42'
        unless exists $opt{customer} && !defined $opt{customer};

    return $t->http(POST => $opt{path} // '/checkout', body => $body,
                    headers => \%headers);
}

sub create_coupon {
    my ($t, %def) = @_;

    my $res = $t->http(POST => '/loyalty/admin/coupons',
                       body => $JSON->encode(\%def),
                       headers => { 'Content-Type' => 'application/json',
                                    Authorization => "Bearer $TOKEN" });

    die "coupon not created: $res->{status} $res->{body}"
        unless $res->{status} == 201 || $res->{status} == 200;

    return $res->{json};
}

# Every key in Redis but the program nginx publishes when it connects,
# sorted: what a test checks nothing was written to.
sub redis_keys {
    my ($t) = @_;

    return [ sort grep { $_ ne 'loyalty:{program}' }
             @{ $t->redis->cmd('KEYS', '*') } ];
}

1;
