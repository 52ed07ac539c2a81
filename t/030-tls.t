# goim over TLS: WebSocket on an "ssl" http listener (wss) and TCP on an
# "ssl" stream listener, with a self-signed certificate made here.  Auth,
# heartbeat, pushes reaching each connection once and in order, large
# pushes through nginx's SSL write path, protocol errors, and a TLS client
# that stops reading.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops :ws have_tls http_json);
use GoimTest qw(SENTINEL push_or_fail sentinel collect close_code);
use Time::HiRes qw(time sleep);

skip_unless_module();
Test::More::plan(skip_all => 'IO::Socket::SSL is not installed '
                             . '(libio-socket-ssl-perl)') unless have_tls();

# The certificate lives in this file's servroot; the harness empties it on
# first use, so make that happen first.
Test::Goim::_prepare_servroot();
my $conf = servroot() . '/conf';
system("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
       . "-days 1 -keyout $conf/key.pem -out $conf/cert.pem "
       . ">/dev/null 2>&1") == 0
    or Test::More::BAIL_OUT('openssl could not make a certificate');
$ENV{TEST_NGINX_CERT} = "$conf/cert.pem";
$ENV{TEST_NGINX_CERT_KEY} = "$conf/key.pem";

# Plain TCP on the stream port, TLS TCP on PORT3; plain WebSocket and the
# API on the http port, wss on PORT2.
add_block_preprocessor(sub {
    my $block = shift;
    my $sndbuf = defined $block->{sndbuf} ? ' sndbuf=4k' : '';
    $block->set_value(stream_config => <<"EOF") unless $block->stream_config;
    ssl_certificate \$TEST_NGINX_CERT;
    ssl_certificate_key \$TEST_NGINX_CERT_KEY;
    server {
        listen 127.0.0.1:\$TEST_NGINX_STREAM_PORT;
        goim_tcp;
    }
    server {
        listen 127.0.0.1:\$TEST_NGINX_PORT3 ssl$sndbuf;
        goim_tcp;
    }
EOF
    $block->set_value(http_config => <<"EOF") unless $block->http_config;
    server {
        listen 127.0.0.1:\$TEST_NGINX_PORT2 ssl$sndbuf;
        ssl_certificate \$TEST_NGINX_CERT;
        ssl_certificate_key \$TEST_NGINX_CERT_KEY;
        location = /sub { goim_websocket; }
    }
EOF
    $block->set_value(config => <<'EOF') unless $block->config;
    location = /sub { goim_websocket; }
    location /goim/ {
        client_body_buffer_size 128k;
        client_max_body_size 128k;
        goim_logic_api;
    }
EOF
});

# kind: tcp | ws | tls-tcp | wss
sub kind_opts {
    my ($kind) = @_;
    return { tcp => ['tcp', $ENV{TEST_NGINX_STREAM_PORT}, 0],
             ws => ['ws', $ENV{TEST_NGINX_SERVER_PORT}, 0],
             'tls-tcp' => ['tcp', $ENV{TEST_NGINX_PORT3}, 1],
             wss => ['ws', $ENV{TEST_NGINX_PORT2}, 1] }->{$kind};
}

# client($kind, $token, rcvbuf => bytes): connected (and authenticated
# when a token is given); rcvbuf is set before connect().
sub client {
    my ($kind, $token, %o) = @_;
    my ($transport, $port, $tls) = @{ kind_opts($kind) };
    my $c = GoimTest::client($transport, $token, port => $port, tls => $tls,
                             %o);
    $c->{kind} = $kind;
    return $c;
}

run_tests();

__DATA__

=== TEST 1: wss: auth, heartbeat, key/mid/room/all pushes once each, close
--- perl
my $c = client(wss => { mid => 1, key => 'wss1', room_id => 'live://t',
                        accepts => [1000, SENTINEL] });
ok $c->{sock}->isa('IO::Socket::SSL'), "$name - the socket is TLS";
is $c->{auth_reply}{op}, OP_AUTH_REPLY, "$name - auth reply";
is $c->heartbeat, 1, "$name - heartbeat";
push_or_fail('/goim/push/keys?operation=1000&keys=wss1', 'key');
push_or_fail('/goim/push/mids?operation=1000&mids=1', 'mid');
push_or_fail('/goim/push/room?operation=1001&type=live&room=t', 'room');
push_or_fail('/goim/push/all?operation=1000', 'all');
sentinel();
is_deeply collect($c), ['1000:key', '1000:mid', '1001:room', '1000:all'],
    "$name - each push once, in order";
is $c->ws_close(1000, 'bye'), 1000, "$name - close echoed over TLS";



=== TEST 2: TLS TCP: auth, heartbeat, pushes once each, client close
--- perl
my $c = client('tls-tcp' => { mid => 2, key => 'tls1', room_id => 'live://t',
                              accepts => [1000, SENTINEL] });
ok $c->{sock}->isa('IO::Socket::SSL'), "$name - the socket is TLS";
is $c->heartbeat, 1, "$name - heartbeat";
is $c->change_room('live://u'), 'live://u', "$name - change room";
push_or_fail('/goim/push/keys?operation=1000&keys=tls1', 'key');
push_or_fail('/goim/push/mids?operation=1000&mids=2', 'mid');
push_or_fail('/goim/push/room?operation=1001&type=live&room=u', 'room');
push_or_fail('/goim/push/all?operation=1000', 'all');
sentinel();
is_deeply collect($c), ['1000:key', '1000:mid', '1001:room', '1000:all'],
    "$name - each push once, in order";
$c->close;
--- error_log
goim: connection closed: client closed



=== TEST 3: one room over tcp, ws, TLS TCP and wss: 20 messages in order
--- perl
my @c = map { client($_, { room_id => 'live://mix', accepts => [SENTINEL] }) }
        qw(tcp ws tls-tcp wss tls-tcp wss);
push_or_fail('/goim/push/room?operation=1000&type=live&room=mix', "m$_")
    for 1 .. 20;
# room messages may be merged and leave after goim_room_flush: read them
# before the (unbatched) sentinel broadcast
for my $c (@c) {
    is_deeply [map { "$_->{op}:$_->{body}" } $c->read_pushes(20, 3)],
        [map { "1000:m$_" } 1 .. 20],
        "$name - $c->{kind}: m1..m20 in order";
}
sentinel();
is_deeply collect($_), [], "$name - $_->{kind}: no duplicates" for @c;
$_->close for @c;



=== TEST 4: large pushes through the SSL write path, in bursts
--- main_config
goim_send_queue 256 4m;
--- perl
my @c = map { client($_, { key => "big-$_", room_id => 'live://big',
                           accepts => [1000, SENTINEL] }) }
        qw(tls-tcp wss tcp ws);
my @sizes = (16000, 100000, 1, 65535, 65536, 70000, 131072);
my @bodies = map { my $n = $_; join '', map { chr(($_ * 13 + $n) % 256) } 1 .. $n }
             @sizes;
push_or_fail('/goim/push/room?operation=1001&type=live&room=big', $_) for @bodies;
push_or_fail('/goim/push/all?operation=1000', $_) for @bodies;
# room messages may be batched behind the broadcasts: compare per kind
for my $c (@c) {
    my @p = $c->read_pushes(14, 5);
    for my $op (1000, 1001) {
        my @got = map { $_->{body} } grep { $_->{op} == $op } @p;
        ok @got == @bodies && !(grep { $got[$_] ne $bodies[$_] } 0 .. $#got),
           "$name - $c->{kind}: 7 large " . ($op == 1000 ? 'broadcasts'
                                                        : 'room pushes')
           . " intact and in order"
           or diag "got " . scalar(@got) . ": " . join ' ', map { length } @got;
    }
}
sentinel();
is_deeply collect($_), [], "$name - $_->{kind}: nothing more" for @c;
$_->close for @c;



=== TEST 5: protocol errors and timeouts over TLS
--- main_config
goim_handshake_timeout 1s;
--- perl
my $w = client(wss => { mid => 1, key => 'e1' });
$w->send_raw(GoimClient::ws_frame(WS_BINARY, 'x', mask => 0));
is close_code($w), 1002, "$name - wss unmasked frame: 1002";
my $bad = client(wss => undef);
$bad->send_packet(OP_AUTH, "not json");
is close_code($bad), 1008, "$name - wss bad token: 1008";
my $t = client('tls-tcp' => { mid => 1, key => 'e2' });
$t->send_packet(OP_HEARTBEAT, '', headerlen => 99);
ok $t->expect_closed(3), "$name - TLS TCP bad headerLen: closed";
my $t0 = time;
my $idle = client('tls-tcp' => undef);
ok $idle->expect_closed(3) && time - $t0 < 2.5,
   "$name - TLS TCP handshake timeout";
my $x = GoimClient->new(transport => 'ws', port => $ENV{TEST_NGINX_PORT2},
                        tls => 1, timeout => 3,
                        headers => { 'Sec-WebSocket-Version' => 8 });
like $x->connect, qr/HTTP 426/, "$name - wss bad upgrade: 426";
$x->close;
# a TLS client that is no TLS client: garbage before the handshake
my $g = GoimClient->new(transport => 'tcp', port => $ENV{TEST_NGINX_PORT3},
                        timeout => 3);
$g->connect;
$g->send_raw(GoimClient::pack_packet(OP_AUTH, '{}'));
ok $g->expect_closed(3), "$name - plain goim to the TLS port: closed";
--- error_log
goim: unmasked client frame
goim: auth failed: bad token
goim: headerLen is not 16
goim: connection closed: handshake timed out



=== TEST 6: a TLS client that stops reading: its pushes drop, others get all
# each push waits for the fast readers: room batching would only add
# goim_room_flush to every push here, so it is off
--- sndbuf: 1
--- main_config
goim_send_queue 16 1m;
goim_room_flush 0;
--- perl
my $tok = { room_id => 'live://slow', accepts => [1000, SENTINEL] };
my @fast = map { client($_, $tok) } qw(wss tls-tcp);
my @slow = map { client($_, $tok, rcvbuf => 4096) } qw(wss tls-tcp);
my $n = 50;
my %got;
for my $i (1 .. $n) {
    push_or_fail('/goim/push/room?operation=1000&type=live&room=slow',
            sprintf('%04d', $i) . ('s' x 8000)) or last;
    for my $c (@fast) {
        my ($p) = $c->read_pushes(1, 3);
        push @{ $got{$c->{kind}} }, $p ? substr($p->{body}, 0, 4) : 'none';
    }
}
my @want = map { sprintf '%04d', $_ } 1 .. $n;
is_deeply $got{$_->{kind}}, \@want, "$name - fast $_->{kind}: all $n in order"
    for @fast;
ok wait_for_log('goim: send queue full', 2), "$name - 'send queue full'";
for my $c (@slow) {
    my @b;
    while (my ($p) = $c->read_pushes(1, 0.5)) {
        push @b, length $p->{body} == 8004 ? substr($p->{body}, 0, 4) : 'bad';
    }
    my $ok = @b >= 16 && @b < $n;
    for my $i (0 .. $#b) {
        $ok = 0 if $b[$i] eq 'bad' || ($i < 16 && $b[$i] != $i + 1)
                   || ($i && $b[$i] <= $b[$i - 1]);
    }
    ok $ok, "$name - slow $c->{kind}: first 16, then in order, intact: @b";
    ok !$c->is_closed, "$name - slow $c->{kind}: still connected";
}
push_or_fail('/goim/push/room?operation=1000&type=live&room=slow', 'after');
sentinel();
is_deeply collect($_), ['1000:after'], "$name - $_->{kind}: flows again"
    for @slow, @fast;
$_->close for @fast, @slow;
