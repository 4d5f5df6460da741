package Loyalty::Shop;

# A shop for the end-to-end tests: a checkout location in front of a stub
# backend that echoes the loyalty headers it received as JSON, the admin
# API and, on request, an order confirmation location.  Helpers create
# coupons and send checkouts and confirmations.

use strict;
use warnings;

use Exporter 'import';
use JSON::PP;

our @EXPORT = qw(shop cart checkout confirm create_coupon admin_request
                 redis_keys $TOKEN);

our $TOKEN = 'test-token-0123456789';

my $JSON = JSON::PP->new->canonical;

# The backend: /checkout/fail answers 500, /checkout/reject 409; POST
# /orders creates an order: 201 with its id (?id= when given, else one of
# the shop's own), /orders/fail 500, /orders/reject 409, /orders/static/F
# 200 with the file $dir/static/F; anything else 200 with the loyalty
# headers it got.
sub backend {
    my ($dir) = @_;

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
        location = /orders {
            return 201 '{"id":"\$shop_order_id","shop":"created"}\\n';
        }
        location /orders/fail { return 500 '{"shop":"error"}\\n'; }
        location /orders/reject { return 409 '{"shop":"refused"}\\n'; }
        location ~ ^/orders/static/(?<file>[^/]+)\$ {
            error_page 405 =200 /static/\$file;
            return 405;
        }
        location /static/ { alias $dir/static/; }
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

# The location block of an order confirmation at /orders, with extra
# directives inside; its verdict comes back in X-Order-Id, X-Order-Status,
# X-Points-Earned and X-Points-Pending.
sub confirm_location {
    my ($backend_port, $extra) = @_;

    $extra //= '';

    return <<"LOC";
        location /orders {
            loyalty_order_confirm on;
            loyalty_customer \$http_x_customer_id;
            add_header X-Order-Id \$loyalty_order_id always;
            add_header X-Order-Status \$loyalty_order_status always;
            add_header X-Points-Earned \$loyalty_points_earned always;
            add_header X-Points-Pending \$loyalty_points_pending always;
$extra
            proxy_pass http://127.0.0.1:$backend_port;
        }
LOC
}

# A started shop: %opt takes http (extra http-level directives), checkout
# (extra directives in the checkout location), confirm (adds the /orders
# confirmation location with these extra directives, and its spool in
# $dir/spool), config (more locations), workers, redis_args (more
# redis-server options).
sub shop {
    my (%opt) = @_;

    my $t = Loyalty::Test->new(
        workers     => $opt{workers} // 1,
        $opt{redis_args} ? (redis_args => $opt{redis_args}) : (),
        http_config => "    loyalty_currency EUR;\n"
                       . "    loyalty_point_value 1.00 per 100;\n"
                       . ($opt{http} // ''),
    );

    my $dir = $t->dir;

    $t->{backend} = backend($dir);
    $t->{http_config} .= <<'MAP';
    map $arg_id $shop_order_id { "" $request_id; default $arg_id; }
MAP

    mkdir "$dir/static";

    if (defined $opt{confirm}) {
        # written by the workers, which may run as nobody
        mkdir "$dir/spool";
        chmod 0777, "$dir/spool";
        $t->{http_config} .= "    loyalty_spool $dir/spool;\n";
    }

    $t->{config} = checkout_location($t->backend_port, $opt{checkout})
                   . (defined $opt{confirm}
                      ? confirm_location($t->backend_port, $opt{confirm})
                      : '')
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

# POST a cart; customer defaults to 42; timeout (seconds) is the client's
# patience; the response's json is what the backend saw (or the module's
# error).
sub checkout {
    my ($t, $body, %opt) = @_;

    my %headers = ('Content-Type' => 'application/json',
                   %{ $opt{headers} || {} });
    $headers{'X-Customer-Id'} = $opt{customer} // '42'
        unless exists $opt{customer} && !defined $opt{customer};

    return $t->http(POST => $opt{path} // '/checkout', body => $body,
                    headers => \%headers,
                    defined $opt{timeout} ? (timeout => $opt{timeout}) : ());
}

# POST a confirmation (a cart with its order_id) to /orders, or $opt{path};
# customer as for checkout().
sub confirm {
    my ($t, $body, %opt) = @_;

    return checkout($t, $body, %opt, path => $opt{path} // '/orders');
}

# A request to the admin API with the token; a body that is a reference is
# sent as JSON; a header given as undef is left out (a missing token).
sub admin_request {
    my ($t, $method, $path, $body, %headers) = @_;

    my %h = (Authorization => "Bearer $TOKEN");
    $h{'Content-Type'} = 'application/json' if defined $body;
    %h = (%h, %headers);
    delete @h{ grep { !defined $h{$_} } keys %h };

    return $t->http($method, "/loyalty/admin/$path", headers => \%h,
                    defined $body
                        ? (body => ref $body ? $JSON->encode($body) : $body)
                        : ());
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
