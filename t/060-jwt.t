# Signed auth tokens (goim_auth_secret): only HS256 JWTs signed with the
# configured secret and not expired authenticate; a plain goim JSON token,
# a wrong signature, "alg":"none" and an expired token close the
# connection with the reason logged.  Tokens come from build/goim-jwt.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use MIME::Base64 qw(encode_base64);

skip_unless_module();

our $jwt = repo_root() . '/build/goim-jwt';
our $secret = 'a-test-secret-of-more-than-32-bytes-1234';
our $claims = '{"mid":42,"key":"signed-1","room_id":"live://7",'
           . '"accepts":[1000]}';

sub sign {
    my (@args) = @_;
    my $tok = `$jwt sign --secret '$secret' @args '$claims'`;
    chomp $tok;
    return $tok;
}

sub b64url {
    (my $s = encode_base64($_[0], '')) =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

# The auth reply's body (undef when refused), and whether the server
# closed the connection.
sub try_auth {
    my ($token) = @_;
    my $c = GoimClient->new(transport => 'tcp', timeout => 3,
                            port => $ENV{TEST_NGINX_STREAM_PORT});
    my $err = $c->connect;
    die "connect: $err\n" if $err;
    my $r = $c->auth($token);
    my $closed = $r ? 0 : $c->expect_closed(2);
    $c->close;
    return ($r, $closed);
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(main_config => "goim_auth_secret '$secret';")
        unless defined $block->main_config;
    $block->set_value(stream_config => <<'EOF');
    server {
        listen 127.0.0.1:$TEST_NGINX_STREAM_PORT;
        goim_tcp;
    }
EOF
});

run_tests();

__DATA__

=== TEST 1: a valid signed token authenticates with its claims
--- perl
ok(-x $::jwt, 'goim-jwt is built');
my ($r) = try_auth(sign('--exp-in', 60));
ok($r, 'auth reply received');
is($r->{mid}, 42, 'mid from the signed claims');
is($r->{key}, 'signed-1', 'key from the signed claims');
is($r->{room_id}, 'live://7', 'room from the signed claims');

=== TEST 2: plain JSON, wrong key, alg none and expired tokens are refused
--- perl
my (undef, $closed) = try_auth($::claims);
ok($closed, 'plain goim JSON token refused when a secret is set');

my $forged = `$::jwt sign --secret 'another-secret-of-more-than-32-bytes-xyz' --exp-in 60 '$::claims'`;
chomp $forged;
(undef, $closed) = try_auth($forged);
ok($closed, 'token signed with another secret refused');

my $none = b64url('{"alg":"none","typ":"JWT"}') . '.'
         . b64url('{"mid":1,"key":"n","exp":' . (time + 60) . '}') . '.';
(undef, $closed) = try_auth($none);
ok($closed, 'alg none refused');

(undef, $closed) = try_auth(sign('--exp', time - 10));
ok($closed, 'expired token refused');

my ($h, $p, $s) = split /\./, sign('--exp-in', 60);
(undef, $closed) = try_auth(join '.', $h,
    b64url('{"mid":1,"key":"x","exp":' . (time + 60) . '}'), $s);
ok($closed, 'payload swapped under a valid signature refused');
--- error_log
bad signature
algorithm not allowed: none
token expired

=== TEST 3: a secret shorter than 32 bytes is refused at startup
--- main_config
goim_auth_secret short;
--- must_die
--- error_log
must be at least 32 bytes
