# Limits come from nginx's own modules: limit_conn in a stream server caps
# TCP connections per client address, limit_req on the WebSocket location
# caps the rate of upgrades, limit_req on the API caps pushes.  (HTTP
# limit_conn counts requests; a WebSocket stops being one after the
# upgrade, so it cannot cap WebSocket connections: see the README.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops http_json);

skip_unless_module();

sub tcp_authed {
    my ($key) = @_;
    my $c = GoimClient->new(transport => 'tcp', timeout => 3,
                            port => $ENV{TEST_NGINX_STREAM_PORT});
    return undef if $c->connect;
    return $c->auth({ mid => 1, key => $key }) ? $c : undef;
}

sub ws_authed {
    my ($key) = @_;
    my $c = GoimClient->new(transport => 'ws', timeout => 3,
                            port => $ENV{TEST_NGINX_SERVER_PORT});
    my $err = $c->connect;
    return (undef, $c->http_status) if $err;
    return ($c->auth({ mid => 1, key => $key }) ? $c : undef, 101);
}

run_tests();

__DATA__

=== TEST 1: stream limit_conn: the third TCP connection from one address is closed
--- stream_config
limit_conn_zone $binary_remote_addr zone=goim_ip:1m;
server {
    listen 127.0.0.1:$TEST_NGINX_STREAM_PORT;
    limit_conn goim_ip 2;
    goim_tcp;
}
--- perl
my @c = map { tcp_authed("lc$_") } 1 .. 2;
ok $c[0] && $c[1], "$name - two connections authenticated";
my $third = tcp_authed('lc3');
ok !$third, "$name - the third is refused";
$_->close for grep { $_ } @c;
# the slots free once nginx has finalized those sessions: retry a while
my $again;
for (1 .. 50) {
    last if $again = tcp_authed('lc4');
    select undef, undef, undef, 0.1 * $Test::Goim::Scale;
}
ok $again, "$name - after the others left, a new one is accepted";
$again->close if $again;
--- error_log
limiting connections by zone "goim_ip"

=== TEST 2: limit_req on the WebSocket location caps the upgrade rate
--- http_config
limit_req_zone $binary_remote_addr zone=goim_up:1m rate=1r/m;
--- config
location = /sub { limit_req zone=goim_up burst=1 nodelay; goim_websocket; }
--- perl
my ($a, $sa) = ws_authed('lr1');
my ($b, $sb) = ws_authed('lr2');
my ($c, $sc) = ws_authed('lr3');
ok $a && $b, "$name - the first two upgrades (rate + burst) pass";
is $sc, 503, "$name - the third is refused with 503";
$_->close for grep { $_ } $a, $b, $c;
--- error_log
limiting requests

=== TEST 3: limit_req on the API caps pushes, with nginx's status
--- http_config
limit_req_zone $binary_remote_addr zone=goim_api:1m rate=1r/m;
--- config
location /goim/ {
    limit_req zone=goim_api burst=1 nodelay;
    limit_req_status 429;
    goim_logic_api;
}
--- perl
my @st = map {
    (http_json(POST => '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT},
               '/goim/push/all?operation=1000', 'x'))[0]
} 1 .. 3;
is_deeply \@st, [200, 200, 429], "$name - two pushes, then 429";
--- error_log
limiting requests
