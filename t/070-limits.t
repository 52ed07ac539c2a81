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
use Time::HiRes qw(time sleep);

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



=== TEST 4: goim_max_clients from worker_connections: clients above it are refused, the API and the status page still answer
--- worker_connections: 64
--- stream_config
    server {
        listen 127.0.0.1:$TEST_NGINX_STREAM_PORT;
        goim_tcp;
    }
--- config
    location = /sub { goim_websocket; }
    location /goim/ { goim_logic_api; }
    location = /status { goim_status; }
--- perl
# 64 worker_connections less a reserve of min(64, 64 / 4) = 16: 48
my (@ok, @refused, @odd);
my $t0 = time;
my $attempt = sub {
    my ($i) = @_;
    my $t = $i % 2 ? 'ws' : 'tcp';
    my $c = GoimClient->new(transport => $t, timeout => 2,
        port => $ENV{$t eq 'ws' ? 'TEST_NGINX_SERVER_PORT'
                                : 'TEST_NGINX_STREAM_PORT'});
    if (my $err = $c->connect) {
        my $how = ($c->http_status // 'none') . ' ' . ($c->http_body // '');
        return ('refused', $c, $how);
    }
    return ('ok', $c) if $c->auth({ mid => $i + 1, key => "c$i",
                                    room_id => 'live://m',
                                    accepts => [1000] });
    return ('refused', $c, 'closed') if $c->is_closed;
    return ('odd', $c, $c->error);
};
for my $i (0 .. 69) {
    my ($r, $c, $how) = $attempt->($i);
    push @ok, $c if $r eq 'ok';
    push @refused, "$c->{transport} $how" if $r eq 'refused';
    push @odd, "$i: $how" if $r eq 'odd';
}
is scalar(@ok), 48, "$name - 48 of 70 clients accepted";
is_deeply \@odd, [], "$name - the others were refused cleanly";
is_deeply [sort { $a cmp $b } @refused],
    [("tcp closed") x 11,
     ("ws 503 too many client connections on this worker\n") x 11],
    "$name - TCP closed at once, WebSocket 503 with the reason";

my ($st, $j) = http_json(POST => '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT},
    '/goim/push/room?operation=1000&type=live&room=m', 'full');
is_deeply [$st, $j && $j->{code}], [200, 0], "$name - push answered";
my @got = grep { my ($p) = $_->read_pushes(1, 2); $p && $p->{body} eq 'full' }
          @ok;
is scalar(@got), 48, "$name - every client got it";
($st, $j) = http_json(GET => '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT},
                      '/goim/online/total');
is $j && $j->{data}{conn_count}, 48, "$name - online answered";
my ($sst, $text) = GoimClient::http_request(GET => '127.0.0.1',
    $ENV{TEST_NGINX_SERVER_PORT}, '/status');
is $sst, 200, "$name - status answered";
my ($n) = ($text // '') =~ /^goim_clients_refused_total\{[^}]*\} (\d+)$/m;
is $n, 22, "$name - goim_clients_refused_total";

my @lines = grep { /client connection\(s\) refused since the last report/ }
            split /\n/, error_log_text();
# one line per second of the worker's cached clock, which may still show
# the second before $t0 when the first refusal comes
ok @lines >= 1 && @lines <= time - $t0 + 2,
   "$name - logged at most once a second (" . scalar(@lines) . " lines)";

# room again once clients leave
$_->close for splice @ok, 0, 4;
my @back;
for my $i (100, 101) {
    my $deadline = time + 5;
    my ($r, $c);
    do { ($r, $c) = $attempt->($i); sleep 0.1 unless $r eq 'ok' }
        until $r eq 'ok' || time > $deadline;
    push @back, $c if $r eq 'ok';
}
is scalar(@back), 2, "$name - a new TCP and a new WebSocket client accepted";
$_->close for @ok, @back;
--- no_error_log
worker_connections are not enough



=== TEST 5: goim_max_clients set: TCP and WebSocket count together
--- main_config
goim_max_clients 3;
--- stream_config
    server {
        listen 127.0.0.1:$TEST_NGINX_STREAM_PORT;
        goim_tcp;
    }
--- config
    location = /sub { goim_websocket; }
--- perl
my @c = (tcp_authed('a'), (ws_authed('b'))[0]);
my $raw = GoimClient->new(transport => 'tcp', timeout => 3,
                          port => $ENV{TEST_NGINX_STREAM_PORT});
is $raw->connect, undef, "$name - a third, not authenticated, connection";
ok $c[0] && $c[1], "$name - two clients authenticated";
sleep 0.2;
my ($ws, $status) = ws_authed('c');
is $status, 503, "$name - a fourth (WebSocket) is refused with 503";
ok !tcp_authed('d'), "$name - a fifth (TCP) is refused";
$raw->close;
my $back;
for (1 .. 20) { last if $back = tcp_authed('e'); sleep 0.1 }
ok $back, "$name - accepted again once the unauthenticated one left";
$_->close for grep { $_ } @c, $back;
--- error_log
client connection(s) refused since the last report



=== TEST 6: goim_max_clients 0 is refused
--- main_config
goim_max_clients 0;
--- must_die
--- error_log
"goim_max_clients" must be at least 1
