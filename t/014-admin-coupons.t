# The coupon endpoints of the admin API: a coupon is created once in its
# canonical form and refused with the field named when invalid; it is read
# with its usage and live reservations; disabled and enabled with a version
# that only a change bumps, which every worker's cache obeys; generated in
# batches that a retry replays.  Without the token nothing is answered nor
# written; unknown paths and methods are told apart.  Every refused request
# leaves Redis exactly as it was.

use strict;
use warnings;

use lib 't/lib';
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);
use Loyalty::Test;
use Loyalty::Shop;

my $t = shop(http => 'loyalty_reservation_ttl 10m;');
my $r = $t->redis;

my $JSON = JSON::PP->new->canonical;
my $ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
my $TRUE = JSON::PP::true;
my $FALSE = JSON::PP::false;

# A request to the admin API with the token; a reference body is sent as
# JSON.  Headers given override the defaults, undef removes one.
sub admin { admin_request($t, @_) }

# Everything in Redis, key by key, with its content.
sub snapshot {
    my %db;

    for my $key (@{ redis_keys($t) }) {
        my $type = $r->cmd('TYPE', $key);

        $db{$key} = $type eq 'hash'   ? { @{ $r->cmd('HGETALL', $key) } }
                  : $type eq 'zset'   ? $r->cmd('ZRANGE', $key, 0, -1,
                                                'WITHSCORES')
                  : $type eq 'string' ? $r->cmd('GET', $key)
                  : "a $type";
    }

    return \%db;
}

# A refusal: its status, its error code, a message matching $message;
# and Redis as it was before.
sub refused {
    my ($res, $status, $error, $message, $before, $what) = @_;

    is($res->{status}, $status, "$what: $status") or diag($res->{body});
    is($res->{json}{error}, $error, "$what: error $error");
    like($res->{json}{message} // '', $message, "$what: the message")
        if defined $message;
    is_deeply(snapshot(), $before, "$what: Redis is unchanged");
}

# A checkout with a coupon: the backend's view of it.
sub verdict {
    my (%opt) = @_;

    my $customer = delete $opt{customer} // '42';
    my $res = checkout($t, cart(%opt), customer => $customer);

    is($res->{status}, 200, "checkout $opt{checkout_id} reached the backend")
        or diag($res->{body});

    return $res->{json} || {};
}

# An RFC 3339 UTC time as written by the module, as a Unix time.
sub epoch {
    my ($text) = @_;

    my @f = ($text // '') =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/
        or return undef;

    return timegm($f[5], $f[4], $f[3], $f[2], $f[1] - 1, $f[0]);
}

sub coupon_key { "loyalty:{coupon:$_[0]}" }

# A coupon as the API shows it, less its version (checked on its own).
sub except_version {
    my ($c) = @_;

    my %shown = %{ $c || {} };
    delete $shown{version};

    return \%shown;
}

sub stored_def {
    my ($code) = @_;

    my $def = $r->cmd('HGET', coupon_key($code), 'def');

    return defined $def ? $JSON->decode($def) : undef;
}

sub fresh { $r->cmd('FLUSHALL') }


# --- POST coupons ------------------------------------------------------------

subtest 'a new coupon is created: 201 with its canonical form and a new '
        . 'version'
=> sub {
    fresh();
    my $start = time;

    my $res = admin(POST => 'coupons',
                    { code => ' save10 ', type => 'percent', value => '10' });

    is($res->{status}, 201, '201 Created') or diag($res->{body});
    like($res->{headers}{'content-type'}, qr{^application/json},
         'the answer is JSON');
    is_deeply(except_version($res->{json}),
              { code => 'SAVE10', type => 'percent', value => '10.00',
                max_uses => 0, per_customer => 0, disabled => $FALSE },
              'the code upper-cased and trimmed, the value with two '
              . 'decimals, not disabled');
    # opaque, but never reused by a code: the creation time in ms
    like($res->{json}{version}, qr/^\d{13}$/, 'a version of 13 digits');
    cmp_ok(abs($res->{json}{version} / 1000 - $start), '<', 5,
           'taken from the time of creation');

    my $h = { @{ $r->cmd('HGETALL', coupon_key('SAVE10')) } };
    is_deeply(stored_def('SAVE10'),
              { code => 'SAVE10', type => 'percent', value => '10.00',
                max_uses => 0, per_customer => 0 },
              'Redis holds the canonical definition');
    is($h->{version}, $res->{json}{version}, 'Redis holds that version');
    is($h->{disabled}, '0', 'enabled');
    is($h->{used}, '0', 'never used');
    is($h->{max_uses}, '0', 'max_uses is kept beside it');
    ok($h->{created_at} >= int($start) && $h->{created_at} <= time + 1,
       'created_at is now') or diag($h->{created_at});
    is_deeply(redis_keys($t), [ coupon_key('SAVE10') ],
              'one key, the coupon hash');
};

subtest 'every field is written in its canonical form' => sub {
    fresh();

    my $res = admin(POST => 'coupons', {
        code => 'Spring-26.a_b', type => 'percent', value => 12.5,
        currency => 'EUR', min_spend => '30', max_discount => 20,
        starts_at => '2026-03-01T02:00:00+02:00',
        ends_at => '2026-06-01T00:00:00.250Z',
        max_uses => 100, per_customer => 2,
        include => { categories => ['shoes', 'hats', 'shoes'] },
        exclude => { skus => ['Z9', 'A1'], brands => [] },
    });

    is($res->{status}, 201, '201 Created') or diag($res->{body});
    is_deeply(except_version($res->{json}), {
        code => 'SPRING-26.A_B', type => 'percent', value => '12.50',
        currency => 'EUR', min_spend => '30.00', max_discount => '20.00',
        starts_at => '2026-03-01T00:00:00Z',
        ends_at => '2026-06-01T00:00:00Z',
        max_uses => 100, per_customer => 2,
        include => { skus => [], brands => [],
                     categories => ['hats', 'shoes'] },
        exclude => { skus => ['A1', 'Z9'], brands => [], categories => [] },
        disabled => $FALSE,
    }, 'amounts with the currency\'s decimals, times in UTC, lists sorted '
       . 'without duplicates');

    my $h = { @{ $r->cmd('HGETALL', coupon_key('SPRING-26.A_B')) } };
    is($h->{max_uses}, '100', 'max_uses beside the definition');
    is($h->{per_customer}, '2', 'per_customer beside the definition');

    $res = admin(POST => 'coupons', { code => 'yen', type => 'fixed',
                                      value => '500', currency => 'JPY' });
    is($res->{status}, 201, 'a fixed coupon in JPY') or diag($res->{body});
    is($res->{json}{value}, '500', 'with no decimals');
    is($res->{json}{currency}, 'JPY', 'and its currency');
};

subtest 'the same definition again is 200 at the same version and changes '
        . 'nothing' => sub {
    fresh();

    my $first = admin(POST => 'coupons', { code => 'AGAIN', type => 'fixed',
                                           value => '5.00',
                                           currency => 'EUR' });
    is($first->{status}, 201, 'created') or diag($first->{body});

    my $before = snapshot();

    for my $spelling ([ 'exactly the same', { code => 'AGAIN',
                        type => 'fixed', value => '5.00',
                        currency => 'EUR' } ],
                      [ 'spelled otherwise', { code => ' again',
                        type => 'fixed', value => 5, currency => 'EUR',
                        max_uses => 0, include => {} } ])
    {
        my ($what, $def) = @$spelling;
        my $res = admin(POST => 'coupons', $def);

        is($res->{status}, 200, "$what: 200 OK") or diag($res->{body});
        is_deeply($res->{json}, $first->{json},
                  "$what: the same coupon, the same version");
        is_deeply(snapshot(), $before, "$what: Redis is unchanged");
    }
};

subtest 'the same definition sent for a disabled coupon shows it disabled'
=> sub {
    fresh();

    my $def = { code => 'OFF', type => 'percent', value => '5' };
    admin(POST => 'coupons', $def);
    my $off = admin(POST => 'coupons/OFF/disable');
    is($off->{status}, 200, 'disabled') or diag($off->{body});

    my $before = snapshot();
    my $res = admin(POST => 'coupons', $def);

    is($res->{status}, 200, '200 OK') or diag($res->{body});
    is($res->{json}{disabled}, $TRUE, 'the answer says it is disabled');
    is($res->{json}{version}, $off->{json}{version},
       'at the version the disable gave it');
    is_deeply(snapshot(), $before, 'it stays disabled in Redis');
};

subtest 'another definition under the same code is 409 coupon_exists and '
        . 'changes nothing' => sub {
    fresh();

    admin(POST => 'coupons', { code => 'TAKEN', type => 'percent',
                               value => '10' });
    my $before = snapshot();

    refused(admin(POST => 'coupons', { code => 'taken', type => 'percent',
                                       value => '15' }),
            409, 'coupon_exists', qr/"TAKEN"/, $before, 'another value');
    refused(admin(POST => 'coupons', { code => 'TAKEN', type => 'percent',
                                       value => '10', max_uses => 1 }),
            409, 'coupon_exists', qr/"TAKEN"/, $before, 'another limit');
};

# name, definition, the field the message must start with
my @invalid = (
    [ 'an unknown field', { code => 'N', type => 'percent', value => '10',
                            colour => 'red' }, 'colour' ],
    [ 'no code', { type => 'percent', value => '10' }, 'code' ],
    [ 'a code that is a number', { code => 42, type => 'percent',
                                   value => '10' }, 'code' ],
    [ 'a code with a space inside', { code => 'SAVE 10', type => 'percent',
                                      value => '10' }, 'code' ],
    [ 'a code of 65 characters', { code => 'A' x 65, type => 'percent',
                                   value => '10' }, 'code' ],
    [ 'an empty code', { code => '  ', type => 'percent', value => '10' },
      'code' ],
    [ 'an unknown type', { code => 'N', type => 'bogo', value => '10' },
      'type' ],
    [ 'no type', { code => 'N', value => '10' }, 'type' ],
    [ 'a percentage of 0', { code => 'N', type => 'percent', value => '0' },
      'value' ],
    [ 'a percentage over 100', { code => 'N', type => 'percent',
                                 value => '100.01' }, 'value' ],
    [ 'a percentage of 101', { code => 'N', type => 'percent',
                               value => 101 }, 'value' ],
    [ 'a percentage with 3 decimals', { code => 'N', type => 'percent',
                                        value => '10.555' }, 'value' ],
    [ 'a negative percentage', { code => 'N', type => 'percent',
                                 value => '-5' }, 'value' ],
    [ 'a percentage that is not a number', { code => 'N', type => 'percent',
                                             value => 'ten' }, 'value' ],
    [ 'no value', { code => 'N', type => 'percent' }, 'value' ],
    [ 'a fixed amount without currency', { code => 'N', type => 'fixed',
                                           value => '5.00' }, 'currency' ],
    [ 'a fixed amount of 0', { code => 'N', type => 'fixed', value => '0',
                               currency => 'EUR' }, 'value' ],
    [ 'a fixed amount with 3 decimals in EUR', { code => 'N',
      type => 'fixed', value => '5.001', currency => 'EUR' }, 'value' ],
    [ 'a currency of four letters', { code => 'N', type => 'fixed',
      value => '5', currency => 'EURO' }, 'currency' ],
    [ 'a currency with a digit', { code => 'N', type => 'fixed',
      value => '5', currency => 'E1R' }, 'currency' ],
    [ 'a currency that is a number', { code => 'N', type => 'fixed',
      value => '5', currency => 978 }, 'currency' ],
    [ 'a negative min_spend', { code => 'N', type => 'fixed', value => '5',
      currency => 'EUR', min_spend => '-1.00' }, 'min_spend' ],
    [ 'a min_spend with 3 decimals', { code => 'N', type => 'fixed',
      value => '5', currency => 'EUR', min_spend => '10.005' },
      'min_spend' ],
    [ 'a min_spend without currency', { code => 'N', type => 'percent',
      value => '5', min_spend => '10' }, 'min_spend' ],
    [ 'a max_discount without currency', { code => 'N', type => 'percent',
      value => '5', max_discount => '10' }, 'max_discount' ],
    [ 'a starts_at with month 13', { code => 'N', type => 'percent',
      value => '5', starts_at => '2026-13-01T00:00:00Z' }, 'starts_at' ],
    [ 'a starts_at of February 30', { code => 'N', type => 'percent',
      value => '5', starts_at => '2026-02-30T00:00:00Z' }, 'starts_at' ],
    [ 'a starts_at without time', { code => 'N', type => 'percent',
      value => '5', starts_at => '2026-11-27' }, 'starts_at' ],
    [ 'an ends_at without offset', { code => 'N', type => 'percent',
      value => '5', ends_at => '2026-11-27T00:00:00' }, 'ends_at' ],
    [ 'an ends_at in words', { code => 'N', type => 'percent',
      value => '5', ends_at => 'tomorrow' }, 'ends_at' ],
    [ 'an ends_at that is a number', { code => 'N', type => 'percent',
      value => '5', ends_at => 1795000000 }, 'ends_at' ],
    [ 'an ends_at before starts_at', { code => 'N', type => 'percent',
      value => '5', starts_at => '2026-12-01T00:00:00Z',
      ends_at => '2026-11-30T23:59:59Z' }, 'ends_at' ],
    [ 'an ends_at before starts_at once in UTC', { code => 'N',
      type => 'percent', value => '5',
      starts_at => '2026-12-01T00:00:00Z',
      ends_at => '2026-12-01T01:00:00+02:00' }, 'ends_at' ],
    [ 'a per_customer over max_uses', { code => 'N', type => 'percent',
      value => '5', max_uses => 2, per_customer => 3 }, 'per_customer' ],
    [ 'a max_uses given as a string', { code => 'N', type => 'percent',
      value => '5', max_uses => '5' }, 'max_uses' ],
    [ 'a negative max_uses', { code => 'N', type => 'percent',
      value => '5', max_uses => -1 }, 'max_uses' ],
    [ 'a fractional per_customer', { code => 'N', type => 'percent',
      value => '5', per_customer => 1.5 }, 'per_customer' ],
    [ 'an include with an unknown key', { code => 'N', type => 'percent',
      value => '5', include => { colors => ['red'] } }, 'include.colors' ],
    [ 'an include that is a list', { code => 'N', type => 'percent',
      value => '5', include => ['shoes'] }, 'include' ],
    [ 'an exclude list with an empty string', { code => 'N',
      type => 'percent', value => '5', exclude => { skus => ['A1', ''] } },
      'exclude.skus' ],
    [ 'an include list with a number', { code => 'N', type => 'percent',
      value => '5', include => { brands => [7] } }, 'include.brands' ],
    [ 'an include list that is a string', { code => 'N', type => 'percent',
      value => '5', include => { categories => 'shoes' } },
      'include.categories' ],
);

subtest 'an invalid coupon is 400 invalid_field naming the field, and '
        . 'nothing is written' => sub {
    fresh();
    admin(POST => 'coupons', { code => 'KEEP', type => 'percent',
                               value => '10' });
    my $before = snapshot();

    for my $case (@invalid) {
        my ($what, $def, $field) = @$case;
        refused(admin(POST => 'coupons', $def), 400, 'invalid_field',
                qr/^\Q$field\E\s/, $before, $what);
    }
};

subtest 'a definition too large to store is 400 invalid_field, not 503'
=> sub {
    fresh();
    my $before = snapshot();

    # 1000 SKUs of 300 characters: under the 1 MB body limit, over what a
    # definition may take in Redis
    my $res = admin(POST => 'coupons',
                    { code => 'HUGE', type => 'percent', value => '10',
                      include => { skus => [ map { sprintf '%0300d', $_ }
                                             1 .. 1000 ] } });

    refused($res, 400, 'invalid_field', undef, $before,
            'a 300 kB definition');
};

subtest 'a long SKU is refused at creation or else works at checkout' => sub {
    fresh();

    my $res = admin(POST => 'coupons',
                    { code => 'LONGSKU', type => 'percent', value => '10',
                      include => { skus => [ 'A1', 'S' x 2000 ] } });

    if ($res->{status} == 400) {
        is($res->{json}{error}, 'invalid_field', 'refused: invalid_field');
        like($res->{json}{message}, qr/^include\.skus /,
             'naming include.skus');
        return;
    }

    is($res->{status}, 201, 'or created') or diag($res->{body});

    my $v = verdict(coupon => 'LONGSKU', checkout_id => 'c-1');
    is($v->{coupon_status}, 'valid', 'and valid at checkout for SKU A1');
    is($v->{discount}, '6.00', 'with its discount');
};

subtest 'a body that is not a JSON object is 400 invalid_field' => sub {
    fresh();
    my $before = snapshot();

    for my $body ('[]', '"SAVE10"', 'null', '42') {
        refused(admin(POST => 'coupons', $body), 400, 'invalid_field',
                qr/object/, $before, "the body $body");
    }
};

subtest 'a body that is not JSON is 400 invalid_json' => sub {
    fresh();
    admin(POST => 'coupons', { code => 'KEEP', type => 'percent',
                               value => '10' });
    my $before = snapshot();

    for my $body ('{"code":', "{code:'X'}", '{"code":"X",}',
                  '{"code":"X"}{', 'code=X&type=percent')
    {
        refused(admin(POST => 'coupons', $body), 400, 'invalid_json',
                qr/not valid JSON/, $before, "the body $body");
    }
};

subtest 'no body is 400 missing_body; a body not declared JSON is 415'
=> sub {
    fresh();
    admin(POST => 'coupons', { code => 'KEEP', type => 'percent',
                               value => '10' });
    my $before = snapshot();
    my $def = $JSON->encode({ code => 'NEW', type => 'percent',
                              value => '10' });

    refused(admin(POST => 'coupons'), 400, 'missing_body', qr/JSON/,
            $before, 'no body');
    refused(admin(POST => 'coupons', '', 'Content-Type' => undef), 400,
            'missing_body', qr/JSON/, $before, 'an empty body');

    for my $type ('text/plain', 'application/x-www-form-urlencoded',
                  'application/jsonp', undef)
    {
        refused(admin(POST => 'coupons', $def, 'Content-Type' => $type),
                415, 'unsupported_media_type', qr/application\/json/,
                $before, 'Content-Type ' . ($type // 'absent'));
    }

    my $res = admin(POST => 'coupons', $def,
                    'Content-Type' => 'application/json; charset=utf-8');
    is($res->{status}, 201, 'application/json with a charset is accepted')
        or diag($res->{body});
};


# --- GET coupons/{code} ------------------------------------------------------

subtest 'a coupon is read by its code in any case' => sub {
    fresh();
    my $created = admin(POST => 'coupons', { code => 'SAVE10',
                                             type => 'percent',
                                             value => '10' })->{json};

    for my $path ('SAVE10', 'save10', 'SaVe10') {
        my $res = admin(GET => "coupons/$path");
        is($res->{status}, 200, "coupons/$path: 200") or diag($res->{body});
        is($res->{json}{code}, 'SAVE10', "coupons/$path: coupon SAVE10");
        is($res->{json}{version}, $created->{version},
           "coupons/$path: at its version");
    }
};

subtest 'an unknown code is 404 not_found, an impossible one 400 '
        . 'invalid_code' => sub {
    fresh();
    admin(POST => 'coupons', { code => 'SAVE10', type => 'percent',
                               value => '10' });
    my $before = snapshot();

    refused(admin(GET => 'coupons/NOPE'), 404, 'not_found', qr/"NOPE"/,
            $before, 'an unknown code');
    refused(admin(GET => 'coupons/' . 'B' x 64), 404, 'not_found', undef,
            $before, 'an unknown code of 64 characters');
    refused(admin(GET => 'coupons/a%20b'), 400, 'invalid_code', undef,
            $before, 'a code with a space');
    refused(admin(GET => 'coupons/SAVE10%7B'), 400, 'invalid_code', undef,
            $before, 'a code with a brace');
    refused(admin(GET => 'coupons/' . 'B' x 65), 400, 'invalid_code', undef,
            $before, 'a code of 65 characters');
};

subtest 'a coupon is shown with its usage and live reservations' => sub {
    fresh();
    my $start = time;

    admin(POST => 'coupons', { code => 'HALF', type => 'percent',
                               value => '50', max_uses => 5 });

    is(verdict(coupon => 'half', checkout_id => 'c-a',
               customer => '7')->{coupon_status}, 'valid',
       'customer 7 reserves a use');
    is(verdict(coupon => 'HALF', checkout_id => 'c-b',
               customer => '8')->{coupon_status}, 'valid',
       'customer 8 reserves a use');

    my $res = admin(GET => 'coupons/half');
    is($res->{status}, 200, '200 OK') or diag($res->{body});

    my $c = $res->{json} || {};
    is_deeply({ map { $_ => $c->{$_} }
                qw(code type value max_uses per_customer disabled used
                   reserved) },
              { code => 'HALF', type => 'percent', value => '50.00',
                max_uses => 5, per_customer => 0, disabled => $FALSE,
                used => 0, reserved => 2 },
              'the definition, used 0, reserved 2');
    is($c->{version}, $r->cmd('HGET', coupon_key('HALF'), 'version'),
       'at the version Redis holds');

    my @list = sort { $a->{checkout} cmp $b->{checkout} }
               @{ $c->{reservations} || [] };
    is_deeply([ map { [ $_->{checkout}, $_->{customer} ] } @list ],
              [ [ 'c-a', '7' ], [ 'c-b', '8' ] ],
              'both reservations, with their checkout and customer');

    for my $res (@list) {
        my $at = epoch($res->{expires_at});
        ok(defined $at, "$res->{checkout} expires at an RFC 3339 time")
            or diag($res->{expires_at});
        ok(defined $at && $at > $start && $at <= time + 600 + 1,
           "$res->{checkout} expires within loyalty_reservation_ttl (10m)")
            or diag($res->{expires_at});
        is($at, $r->cmd('ZSCORE', 'loyalty:{coupon:HALF}:res',
                        $res->{checkout}),
           "$res->{checkout}: the expiry Redis holds");
    }

    my $created = epoch($c->{created_at});
    ok(defined $created && $created >= int($start) && $created <= time + 1,
       'created_at is an RFC 3339 time, when it was created')
        or diag($c->{created_at});
};

subtest 'expired reservations are neither counted nor listed' => sub {
    fresh();
    admin(POST => 'coupons', { code => 'OLD', type => 'percent',
                               value => '5' });

    $r->cmd('ZADD', 'loyalty:{coupon:OLD}:res', int(time) - 10, 'gone',
            int(time) + 300, 'live');
    $r->cmd('HSET', 'loyalty:{coupon:OLD}:resc', 'gone', '1', 'live', '');

    my $c = admin(GET => 'coupons/OLD')->{json} || {};
    is($c->{reserved}, 1, 'one live reservation');
    is_deeply([ map { [ $_->{checkout}, $_->{customer} ] }
                @{ $c->{reservations} || [] } ],
              [ [ 'live', '' ] ], 'only the live one, a guest\'s, listed');
};


# --- POST coupons/{code}/disable and enable ----------------------------------

subtest 'disable and enable: changed only when the state changes, the '
        . 'version bumped only then' => sub {
    fresh();
    my $v = admin(POST => 'coupons', { code => 'FLIP', type => 'percent',
                                       value => '10' })->{json}{version};
    my $first = $v;

    my @steps = (
        [ 'disable', $TRUE,  $TRUE,  1 ],
        [ 'disable', $TRUE,  $FALSE, 0 ],
        [ 'enable',  $FALSE, $TRUE,  1 ],
        [ 'enable',  $FALSE, $FALSE, 0 ],
    );

    for my $step (@steps) {
        my ($action, $disabled, $changed, $bump) = @$step;
        my $res = admin(POST => "coupons/flip/$action");

        is($res->{status}, 200, "$action: 200") or diag($res->{body});
        is_deeply($res->{json},
                  { code => 'FLIP', disabled => $disabled,
                    changed => $changed, version => $v + $bump },
                  "$action: changed " . ($bump ? 'true, version + 1'
                                               : 'false, same version'));
        is($r->cmd('HGET', coupon_key('FLIP'), 'disabled'),
           $disabled ? '1' : '0', "$action: Redis says disabled "
           . ($disabled ? 1 : 0));

        my $got = admin(GET => 'coupons/FLIP')->{json} || {};
        is_deeply([ $got->{disabled}, $got->{version} ],
                  [ $disabled, $v + $bump ], "$action: GET agrees");

        $v += $bump;
    }

    is($v, $first + 2, 'two changes add two to the version');
};

subtest 'a coupon disabled after a worker cached it is refused at the next '
        . 'checkout, and accepted again once enabled' => sub {
    fresh();
    admin(POST => 'coupons', { code => 'CACHED', type => 'percent',
                               value => '10' });

    my $v = verdict(coupon => 'CACHED', checkout_id => 'c-1');
    is($v->{coupon_status}, 'valid', 'valid: the worker has cached it');

    is(admin(POST => 'coupons/cached/disable')->{status}, 200, 'disabled');

    $v = verdict(coupon => 'CACHED', checkout_id => 'c-2');
    is($v->{coupon_status}, 'disabled', 'the next checkout: disabled');
    is($v->{discount}, '0.00', 'with no discount');
    is_deeply($r->cmd('ZRANGE', 'loyalty:{coupon:CACHED}:res', 0, -1),
              [ 'c-1' ], 'nothing reserved for c-2');

    is(admin(POST => 'coupons/cached/enable')->{status}, 200, 'enabled');

    $v = verdict(coupon => 'CACHED', checkout_id => 'c-3');
    is($v->{coupon_status}, 'valid', 'the next checkout: valid again');
    is($v->{discount}, '6.00', 'with its discount');
};

subtest 'disabling or enabling an unknown code is 404 and writes nothing'
=> sub {
    fresh();
    admin(POST => 'coupons', { code => 'REAL', type => 'percent',
                               value => '10' });
    my $before = snapshot();

    for my $action (qw(disable enable)) {
        refused(admin(POST => "coupons/NOPE/$action"), 404, 'not_found',
                qr/"NOPE"/, $before, "$action an unknown code");
        refused(admin(POST => "coupons/a%20b/$action"), 400, 'invalid_code',
                undef, $before, "$action an impossible code");
    }
};


# --- POST coupon-batches ----------------------------------------------------

my $TEMPLATE = { type => 'fixed', value => '5', currency => 'EUR',
                 max_uses => 1 };

subtest 'a batch: count unique codes with the prefix, each a coupon with '
        . 'the template\'s definition' => sub {
    fresh();
    my $before = redis_keys($t);

    my $res = admin(POST => 'coupon-batches',
                    { batch => 'nl-2026-11', count => 50, prefix => 'nl-',
                      coupon => $TEMPLATE });

    is($res->{status}, 201, '201 Created') or diag($res->{body});

    my $b = $res->{json} || {};
    my @codes = @{ $b->{codes} || [] };

    is($b->{batch}, 'nl-2026-11', 'the batch id');
    is($b->{count}, 50, 'count 50');
    is(scalar @codes, 50, '50 codes');
    is(scalar(keys %{ { map { $_ => 1 } @codes } }), 50, 'all different');
    is_deeply([ grep { !/^NL-[$ALPHABET]{13}\z/ } @codes ], [],
              'each is NL- and 13 characters of the alphabet');

    is_deeply([ grep { !defined stored_def($_) } @codes ], [],
              'each code is a coupon in Redis');
    is_deeply([ grep {
                  !eq_hash(stored_def($_),
                           { code => $_, type => 'fixed', value => '5.00',
                             currency => 'EUR', max_uses => 1,
                             per_customer => 0 })
              } @codes ], [], 'each with the template\'s definition');
    is_deeply([ grep { $r->cmd('HGET', coupon_key($_), 'max_uses') ne '1' }
                @codes ], [], 'each with its own max_uses');

    is_deeply(redis_keys($t),
              [ sort @$before, 'loyalty:{batch:nl-2026-11}',
                map { coupon_key($_) } @codes ],
              'the codes and the batch record are all that was written');

    my $again = snapshot();
    my $replay = admin(POST => 'coupon-batches',
                       { batch => 'nl-2026-11', count => 50,
                         prefix => 'NL-', coupon => { %$TEMPLATE,
                                                      value => '5.00' } });

    is($replay->{status}, 200, 'the same request again: 200')
        or diag($replay->{body});
    is_deeply($replay->{json}{codes}, \@codes, 'the very same codes');
    is_deeply(snapshot(), $again, 'and nothing written');

    my $v = verdict(coupon => lc $codes[0], checkout_id => 'c-1');
    is($v->{coupon_status}, 'valid', 'a generated code works at checkout');
    is($v->{discount}, '5.00', 'with the template\'s discount');
    is($v->{coupon}, $codes[0], 'under its code');
};

subtest 'a batch without prefix or length: 13 characters of the alphabet'
=> sub {
    fresh();

    my $res = admin(POST => 'coupon-batches',
                    { batch => 'plain', count => 20,
                      coupon => { type => 'percent', value => '10' } });

    is($res->{status}, 201, '201 Created') or diag($res->{body});
    my @codes = @{ $res->{json}{codes} || [] };
    is(scalar @codes, 20, '20 codes');
    is_deeply([ grep { !/^[$ALPHABET]{13}\z/ } @codes ], [],
              'each 13 characters of the alphabet, nothing else');

    $res = admin(POST => 'coupon-batches',
                 { batch => 'short', count => 5, prefix => 'x', length => 6,
                   coupon => { type => 'percent', value => '10' } });

    is($res->{status}, 201, 'length 6: 201') or diag($res->{body});
    is_deeply([ grep { !/^X[$ALPHABET]{6}\z/ }
                @{ $res->{json}{codes} || [] } ],
              [], 'each X and 6 characters');
};

subtest 'a batch id reused with other parameters is 409 batch_exists' => sub {
    fresh();
    admin(POST => 'coupon-batches',
          { batch => 'b1', count => 3, prefix => 'B1-', coupon => $TEMPLATE });
    my $before = snapshot();

    for my $case ([ 'another count', { count => 4 } ],
                  [ 'another prefix', { prefix => 'B2-' } ],
                  [ 'another length', { length => 12 } ],
                  [ 'another template',
                    { coupon => { %$TEMPLATE, max_uses => 2 } } ])
    {
        my ($what, $change) = @$case;
        refused(admin(POST => 'coupon-batches',
                      { batch => 'b1', count => 3, prefix => 'B1-',
                        coupon => $TEMPLATE, %$change }),
                409, 'batch_exists', qr/"b1"/, $before, $what);
    }
};

# name, change to a valid request, the message
my @bad_batches = (
    [ 'count 0', { count => 0 }, qr/^count / ],
    [ 'count 10001', { count => 10001 }, qr/^count / ],
    [ 'a negative count', { count => -1 }, qr/^count / ],
    [ 'a count given as a string', { count => '5' }, qr/^count / ],
    [ 'a fractional count', { count => 2.5 }, qr/^count / ],
    [ 'no count', { count => undef }, qr/^count / ],
    [ 'length 3', { length => 3 }, qr/^length / ],
    [ 'length 33', { length => 33 }, qr/^length / ],
    [ 'length 4 for 10000 codes', { length => 4, count => 10000 },
      qr/length 4 is too short/ ],
    [ 'a prefix with a space', { prefix => 'NL 1' }, qr/^prefix / ],
    [ 'a prefix of 33 characters', { prefix => 'P' x 33 }, qr/^prefix / ],
    [ 'no batch id', { batch => undef }, qr/^batch / ],
    [ 'a batch id with a space', { batch => 'nl 1' }, qr/^batch / ],
    [ 'no template', { coupon => undef }, qr/^coupon / ],
    [ 'a template with a code', { coupon => { %$TEMPLATE, code => 'X' } },
      qr/^coupon\.code / ],
    [ 'an invalid template', { coupon => { type => 'percent', value => 0 } },
      qr/^coupon\.value / ],
    [ 'a template with an unknown field',
      { coupon => { %$TEMPLATE, colour => 'red' } }, qr/^coupon\.colour / ],
);

subtest 'an invalid batch is 400 invalid_field, and nothing is written'
=> sub {
    fresh();
    admin(POST => 'coupons', { code => 'KEEP', type => 'percent',
                               value => '10' });
    my $before = snapshot();

    for my $case (@bad_batches) {
        my ($what, $change, $message) = @$case;
        my %req = (batch => 'bad', count => 10, coupon => $TEMPLATE,
                   %$change);
        delete @req{ grep { !defined $req{$_} } keys %req };

        refused(admin(POST => 'coupon-batches', \%req), 400,
                'invalid_field', $message, $before, $what);
    }

    refused(admin(POST => 'coupon-batches'), 400, 'missing_body', undef,
            $before, 'no body');
    refused(admin(POST => 'coupon-batches', '{"batch":'), 400,
            'invalid_json', undef, $before, 'a body that is not JSON');
};

subtest 'a batch of 10000 codes: all created, all different' => sub {
    fresh();

    # on a loaded machine the one big write may miss its deadline (503):
    # sent again, as the API asks, it completes (200 when Redis finished
    # the first one late)
    my ($res, $tries) = (undef, 0);

    while ($tries++ < 10) {
        $res = $t->http(POST => '/loyalty/admin/coupon-batches',
            body => $JSON->encode({ batch => 'big', count => 10000,
                                    prefix => 'BIG-', coupon => $TEMPLATE }),
            headers => { Authorization => "Bearer $TOKEN",
                         'Content-Type' => 'application/json' },
            timeout => 60);
        last if $res->{status} != 503;
        $t->wait_ready(10);
    }

    ok($res->{status} == 201 || ($tries > 1 && $res->{status} == 200),
       '201 Created (or 200 for a retry)')
        or diag("$res->{status} " . substr $res->{body}, 0, 500);

    my @codes = @{ $res->{json}{codes} || [] };
    is($res->{json}{count}, 10000, 'count 10000');
    is(scalar @codes, 10000, '10000 codes');
    is(scalar(keys %{ { map { $_ => 1 } @codes } }), 10000, 'all different');
    is_deeply([ grep { !/^BIG-[$ALPHABET]{13}\z/ } @codes ], [],
              'each BIG- and 13 characters of the alphabet');

    is($r->cmd('DBSIZE'), 10001, '10000 coupons and the batch in Redis');

    # pipelined: every command sent before any reply is read
    $r->send('HGET', coupon_key($_), 'def') for @codes;
    my @defs = map { ($r->read_reply)[0] } @codes;
    is(scalar(grep { defined && $JSON->decode($_)->{value} eq '5.00' }
              @defs), 10000, 'each code is a coupon with the template');
};


# --- the token ---------------------------------------------------------------

my @bad_auth = (
    [ 'no Authorization header', undef ],
    [ 'a wrong token of the right length',
      'Bearer ' . ('x' x length $TOKEN) ],
    [ 'the token less its last character',
      'Bearer ' . substr($TOKEN, 0, -1) ],
    [ 'the token and one more character', "Bearer ${TOKEN}9" ],
    [ 'the token twice', "Bearer $TOKEN$TOKEN" ],
    [ 'an empty token', 'Bearer ' ],
    [ 'the token without the Bearer scheme', $TOKEN ],
    [ 'Basic credentials', 'Basic ' . 'dGVzdDp0ZXN0LXRva2VuLTAxMjM0NTY3ODk=' ],
);

subtest 'without the token every endpoint is 401 with WWW-Authenticate, '
        . 'and nothing is written' => sub {
    fresh();
    admin(POST => 'coupons', { code => 'SAVE10', type => 'percent',
                               value => '10' });
    my $before = snapshot();

    my @writes = (
        [ POST => 'coupons', { code => 'SNEAK', type => 'percent',
                               value => '90' } ],
        [ GET => 'coupons/SAVE10' ],
    );
    my @others = (
        [ POST => 'coupons/SAVE10/disable' ],
        [ POST => 'coupon-batches', { batch => 'sneak', count => 5,
                                       coupon => $TEMPLATE } ],
        [ GET => 'nothing-here' ],
        [ DELETE => 'coupons' ],
    );

    # every way to get the token wrong on a write and a read; every
    # endpoint without the header
    for my $auth (@bad_auth) {
        my ($what, $value) = @$auth;

        for my $req (@writes, $value ? () : @others) {
            my ($method, $path, $body) = @$req;
            my $res = admin($method, $path, $body, Authorization => $value);
            my $name = "$what, $method $path";

            refused($res, 401, 'unauthorized', qr/Bearer/, $before, $name);
            is($res->{headers}{'www-authenticate'}, 'Bearer realm="loyalty"',
               "$name: WWW-Authenticate: Bearer realm=\"loyalty\"");
        }
    }

    my $res = admin(GET => 'coupons/SAVE10', undef,
                    Authorization => "bearer $TOKEN");
    is($res->{status}, 200, 'the scheme is case-insensitive: "bearer" '
                            . 'is accepted') or diag($res->{body});
};

# Reads one response from a keep-alive socket: headers, then the body by
# its Content-Length.
sub read_response {
    my ($sock) = @_;

    my ($raw, $sel) = ('', IO::Select->new($sock));
    my $deadline = time + 5;

    while (time < $deadline) {
        if ($raw =~ /\r\n\r\n/) {
            my ($head) = $raw =~ /^(.*?\r\n\r\n)/s;
            my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
            last if length($raw) >= length($head) + ($len // 0);
        }

        next unless $sel->can_read(0.1);
        last unless $sock->sysread(my $chunk, 65536);
        $raw .= $chunk;
    }

    return Loyalty::Test::parse_response($raw);
}

subtest 'the body of a refused request is never taken for the next request'
=> sub {
    fresh();
    admin(POST => 'coupons', { code => 'SAVE10', type => 'percent',
                               value => '10' });
    my $before = snapshot();

    my $inner_body = $JSON->encode({ code => 'SMUGGLED', type => 'percent',
                                     value => '90' });
    my $inner = "POST /loyalty/admin/coupons HTTP/1.1\r\nHost: localhost\r\n"
                . "Authorization: Bearer $TOKEN\r\n"
                . "Content-Type: application/json\r\n"
                . 'Content-Length: ' . length($inner_body) . "\r\n\r\n"
                . $inner_body;
    my $refused = "POST /loyalty/admin/coupons HTTP/1.1\r\nHost: localhost\r\n"
                  . "Authorization: Bearer wrong\r\n"
                  . "Content-Type: application/json\r\n"
                  . 'Content-Length: ' . length($inner) . "\r\n\r\n";
    my $next = "GET /loyalty/admin/coupons/SAVE10 HTTP/1.1\r\n"
               . "Host: localhost\r\nAuthorization: Bearer $TOKEN\r\n"
               . "Connection: close\r\n\r\n";

    # all at once, pipelined on one keep-alive connection
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port,
                                     Timeout => 5)
        or die "connect: $!";
    $sock->syswrite($refused . $inner . $next) // die "write: $!";

    my ($raw, $sel) = ('', IO::Select->new($sock));
    my $deadline = time + 5;

    while (time < $deadline) {
        next unless $sel->can_read(0.1);
        last unless $sock->sysread(my $chunk, 65536);
        $raw .= $chunk;
    }

    close $sock;

    is_deeply([ $raw =~ m{^HTTP/1\.1 (\d{3})}mg ], [ 401, 200 ],
              'pipelined: the 401, then the next request\'s 200, nothing '
              . 'between');

    # the body arriving after the 401 was sent
    $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port,
                                  Timeout => 5)
        or die "connect: $!";
    $sock->syswrite($refused . substr($inner, 0, 20)) // die "write: $!";

    my $first = read_response($sock);
    is($first->{status}, 401, 'a late body: the 401 comes first');

    $sock->syswrite(substr($inner, 20) . $next) // die "write: $!";

    my $second = read_response($sock);
    is($second->{status}, 200, 'the rest of the body is dropped, the next '
                               . 'request is answered')
        or diag($second->{body});
    is($second->{json}{code}, 'SAVE10', 'with its own answer');

    close $sock;

    is_deeply(snapshot(), $before, 'the smuggled coupon was not created');

    my $res = admin(GET => 'coupons/SAVE10');
    is($res->{status}, 200, 'a new connection is served as usual');
};


# --- routing -----------------------------------------------------------------

subtest 'an unknown path is 404 not_found' => sub {
    fresh();
    admin(POST => 'coupons', { code => 'SAVE10', type => 'percent',
                               value => '10' });
    my $before = snapshot();

    for my $req ([ GET => '' ], [ GET => 'nothing' ], [ GET => 'coupons/' ],
                 [ GET => 'coupons/SAVE10/' ], [ GET => 'couponsX' ],
                 [ POST => 'coupons/SAVE10/delete' ],
                 [ POST => 'coupons/SAVE10/disable/now' ],
                 [ GET => 'Coupons/SAVE10' ])
    {
        my ($method, $path) = @$req;
        refused(admin($method, $path), 404, 'not_found', qr/no such endpoint/,
                $before, "$method $path");
    }
};

subtest 'a known path with another method is 405 with Allow' => sub {
    fresh();
    admin(POST => 'coupons', { code => 'SAVE10', type => 'percent',
                               value => '10' });
    my $before = snapshot();

    for my $req ([ GET => 'coupons', 'POST' ],
                 [ PUT => 'coupons', 'POST' ],
                 [ DELETE => 'coupons/SAVE10', 'GET' ],
                 [ POST => 'coupons/SAVE10', 'GET' ],
                 [ GET => 'coupons/SAVE10/disable', 'POST' ],
                 [ DELETE => 'coupons/SAVE10/enable', 'POST' ])
    {
        my ($method, $path, $allow) = @$req;
        my $res = admin($method, $path);

        refused($res, 405, 'method_not_allowed', qr/^\Q$method\E/, $before,
                "$method $path");
        is($res->{headers}{allow}, $allow, "$method $path: Allow: $allow");
    }
};

$t->stop;

done_testing();
