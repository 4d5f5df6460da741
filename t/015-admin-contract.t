# One contract: docs/admin-api.yaml (OpenAPI) lists every route the
# module serves and no other, every error code the admin API answers with
# is in it, and docs/admin-api.md explains each of those codes.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Loyalty::Shop;
use Loyalty::Test;

sub slurp {
    open my $fh, '<', $_[0] or die "$_[0]: $!";
    local $/;
    return <$fh>;
}

# "coupons/*/disable" and "/coupons/{code}/disable" both become
# "/coupons/{}/disable"
sub shape {
    my ($path) = @_;

    $path = "/$path" unless $path =~ m{^/};
    $path =~ s/\*|\{[^}]+\}/{}/g;

    return $path;
}

# the module's route tables
my %served;
for my $file (glob 'ngx_loyalty_module/ngx_http_loyalty_admin_*.c') {
    my $text = slurp($file);
    while ($text =~ /\{\s*NGX_HTTP_([A-Z]+),\s*"([^"]+)"/g) {
        $served{ shape($2) }{ lc $1 } = 1;
    }
}

# the OpenAPI file's paths and operations
my (%listed, $path);
for (split /\n/, slurp('docs/admin-api.yaml')) {
    if (/^  (\/\S*):\s*$/) {
        $path = shape($1);
    } elsif (/^\S/) {
        undef $path;
    } elsif (defined $path && /^    (get|post|put|patch|delete):/) {
        $listed{$path}{$1} = 1;
    }
}

ok(keys %served >= 8, 'the route tables were read: ' . scalar(keys %served)
                      . ' paths');
is_deeply(\%listed, \%served,
          'docs/admin-api.yaml has every served route and no other')
    or diag(explain { served => \%served, listed => \%listed });

# the error codes
my $yaml = slurp('docs/admin-api.yaml');
my ($enum) = $yaml =~ /enum: \[(invalid_json[^\]]*)\]/s;
my %enum = map { $_ => 1 } $enum =~ /([a-z_]+)/g;

my %used;
for my $file ('ngx_loyalty_module/ngx_http_loyalty_admin.c',
              glob 'ngx_loyalty_module/ngx_http_loyalty_admin_*.c')
{
    my $text = slurp($file);
    $used{$1} = 1
        while $text =~ /(?:admin_error|send_error)\(\s*\w+,\s*[^,"]+,\s*"([a-z_]+)"/g;
}
$used{$_} = 1 for qw(redis_unavailable invalid_json body_too_large
                     unsupported_media_type);

ok(keys %used >= 15, 'error codes found in the sources: '
                     . scalar(keys %used));
is_deeply([ grep { !$enum{$_} } sort keys %used ], [],
          'every error code the admin API sends is in the OpenAPI enum');

my $md = slurp('docs/admin-api.md');
is_deeply([ grep { $md !~ /\| `\Q$_\E` \|/ } sort keys %enum ], [],
          'and each is in the error table of docs/admin-api.md');

# the running module agrees: another method on each listed path answers
# 405 with exactly the listed methods in Allow
my $t = shop();

for my $p (sort keys %listed) {
    (my $url = $p) =~ s/\{\}/X1/g;
    my $res = $t->http(DELETE => "/loyalty/admin$url",
                       headers => { Authorization => "Bearer $TOKEN" });
    is($res->{status}, 405, "DELETE $p: 405");
    is(join(', ', sort split /,\s*/, $res->{headers}{allow} // ''),
       join(', ', sort map { uc } keys %{ $listed{$p} }),
       "$p allows what the file lists");
}

my $res = $t->http(GET => '/loyalty/admin/nothing-here',
                   headers => { Authorization => "Bearer $TOKEN" });
is($res->{status}, 404, 'a path not in the file: 404');
is($res->{json}{error}, 'not_found', 'not_found');

$t->stop;

done_testing;
