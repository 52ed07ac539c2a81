# Comet over WebSocket (docs/PROTOCOL.md 1.10 and 6): the upgrade
# and its refusals, the goim operations in binary and text messages,
# RFC 6455 framing (ping, close, masking, fragments, limits) and the
# protocol errors with their close codes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops :ws pack_packet ws_frame http_request http_json);
use GoimTest qw(default_servers connected client api next_pkt close_code);
use Digest::SHA qw(sha1);
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);

skip_unless_module();

add_block_preprocessor(sub { default_servers(shift, stream => 0) });

# A connected WebSocket client (@opt for GoimClient->new).
sub ws { return connected('ws', @_) }

# An authenticated one (and the auth reply in list context).
sub authed {
    my ($token, @opt) = @_;
    my $c = client('ws', $token, @opt);
    return wantarray ? ($c, $c->{auth}) : $c;
}

# A masked client frame with its header bytes given as they are, to build
# frames ws_frame() refuses to (non-minimal lengths, huge lengths).
sub raw_frame {
    my ($hdr, $payload) = @_;
    my $key = "\x11\x22\x33\x44";
    my $m = $payload ^ substr($key x (length($payload) / 4 + 1), 0,
                              length $payload);
    return $hdr . $key . $m;
}

# Upgrade request bytes, and the accept value that answers them.
sub upgrade_request {
    my (%extra) = @_;
    my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    my %h = (Host => 'localhost', Upgrade => 'websocket',
             Connection => 'Upgrade', 'Sec-WebSocket-Key' => $key,
             'Sec-WebSocket-Version' => 13, %extra);
    my $req = "GET /sub HTTP/1.1\r\n"
        . join('', map { "$_: $h{$_}\r\n" } grep { defined $h{$_} } sort keys %h)
        . "\r\n";
    my $accept = encode_base64(sha1($key . GoimClient::WS_GUID), '');
    return ($req, $accept);
}

run_tests();

__DATA__

=== TEST 1: upgrade, auth, heartbeat; replies and pushes as binary frames
--- perl
my $c = ws();
my $head = $c->http_head;
like $head, qr{^HTTP/1\.1 101 Switching Protocols\r\n}, "$name - 101";
like $head, qr{^Upgrade: websocket\r$}mi, "$name - Upgrade header";
like $head, qr{^Connection: upgrade\r$}mi, "$name - Connection header";
unlike $head, qr{^(?:Content-Length|Transfer-Encoding):}mi,
    "$name - no body framing headers";
my $r = $c->auth({ mid => 7, key => 'w1', room_id => 'live://1',
                   accepts => [1000] }, seq => 3, ver => 1);
is_deeply $r, { mid => 7, key => 'w1', room_id => 'live://1' },
    "$name - auth reply body";
is $c->{auth_reply}{seq}, 3, "$name - seq echoed";
is $c->{auth_reply}{ws_opcode}, WS_BINARY, "$name - reply in a binary frame";
is $c->heartbeat(seq => 4), 1, "$name - heartbeat count";
is $c->{heartbeat_reply}{seq}, 4, "$name - heartbeat seq echoed";

my ($st, $j) = api(POST => '/goim/push/keys?operation=1000&keys=w1', 'hi');
is $j && $j->{code}, 0, "$name - push accepted";
my ($p) = $c->read_pushes(1, 2);
is $p && "$p->{op}/$p->{ver}/$p->{seq}/$p->{body}", '1000/1/0/hi',
    "$name - push: op, ver 1, seq 0, body";
is $p && $p->{raw_batch}, 1, "$name - one inner packet in an OP_RAW frame";
is $c->{server_masked}, undef, "$name - server frames are unmasked";
is $c->ws_close(1000, 'bye'), 1000, "$name - clean close";
--- no_error_log
[error]
[warn]



=== TEST 2: query strings and header variants are accepted
--- perl
my $c = ws(path => '/sub?platform=web&x=1');
ok $c->auth({ mid => 1, key => 'q' }), "$name - /sub?query upgrades";
$c->close;
$c = ws(headers => { Upgrade => 'WebSocket',
                     Connection => 'keep-alive, Upgrade' });
ok $c->auth({ mid => 1, key => 'q2' }), "$name - case and token lists";
$c->close;
$c = ws(headers => { Cookie => 'a=b', Origin => 'http://example.com',
                     'Sec-WebSocket-Protocol' => 'goim',
                     'Sec-WebSocket-Extensions' => 'permessage-deflate' });
ok $c->auth({ mid => 1, key => 'q3' }), "$name - extra headers";
unlike $c->http_head, qr/^Sec-WebSocket-(?:Protocol|Extensions):/mi,
    "$name - no subprotocol, no extension negotiated";
$c->close;



=== TEST 3: refused upgrades: exact statuses and headers
--- perl
my %base = (Upgrade => 'websocket', Connection => 'Upgrade',
            'Sec-WebSocket-Key' => 'dGhlIHNhbXBsZSBub25jZQ==',
            'Sec-WebSocket-Version' => 13);
my @cases = (
    ['plain GET', 426, { Upgrade => undef, Connection => undef },
        'Upgrade', 'websocket'],
    ['Upgrade: h2c', 426, { Upgrade => 'h2c' }, 'Upgrade', 'websocket'],
    ['version 8', 426, { 'Sec-WebSocket-Version' => 8 },
        'Sec-WebSocket-Version', '13'],
    ['no version', 426, { 'Sec-WebSocket-Version' => undef },
        'Sec-WebSocket-Version', '13'],
    ['no Connection: upgrade', 400, { Connection => 'keep-alive' }],
    ['no key', 400, { 'Sec-WebSocket-Key' => undef }],
    ['short key', 400, { 'Sec-WebSocket-Key' => 'abc' }],
    ['key of 18 bytes', 400, { 'Sec-WebSocket-Key' => 'A' x 24 }],
    ['key not base64', 400, { 'Sec-WebSocket-Key' => '!' x 22 . '==' }],
);
for my $case (@cases) {
    my ($what, $status, $h, $hname, $hval) = @$case;
    my $c = GoimClient->new(transport => 'ws', timeout => 3, headers => $h,
                            port => $ENV{TEST_NGINX_SERVER_PORT});
    like $c->connect, qr/upgrade failed/, "$name - $what: refused";
    is $c->http_status, $status, "$name - $what: $status";
    if ($hname) {
        like $c->http_head, qr/^\Q$hname\E: \Q$hval\E\r$/mi,
            "$name - $what: $hname header";
    }
    $c->close;
}
my @hdr = map { "$_: $base{$_}" } sort keys %base;
my $port = $ENV{TEST_NGINX_SERVER_PORT};
my ($st, $body, $h) = http_request(POST => '127.0.0.1', $port, '/sub', 'x',
                                   headers => [@hdr]);
is $st, 405, "$name - POST: 405";
is $h->{allow}, 'GET', "$name - POST: Allow: GET";
($st) = http_request(HEAD => '127.0.0.1', $port, '/sub', undef,
                     headers => [@hdr]);
is $st, 405, "$name - HEAD: 405";
($st) = http_request(GET => '127.0.0.1', $port, '/sub', undef,
                     headers => [@hdr], http10 => 1);
is $st, 400, "$name - HTTP/1.0: 400";
($st) = http_request(GET => '127.0.0.1', $port, '/sub', 'body',
                     headers => [@hdr]);
is $st, 400, "$name - a request body: 400";
my $ok = ws();
ok $ok->auth({ mid => 1 }), "$name - a good upgrade still works";
$ok->close;
--- error_log
goim: WebSocket upgrade refused: no "Upgrade: websocket" header
goim: WebSocket upgrade refused: unsupported Sec-WebSocket-Version
goim: WebSocket upgrade refused: no "Connection: upgrade" header
goim: WebSocket upgrade refused: invalid Sec-WebSocket-Key
goim: WebSocket upgrade refused: WebSocket upgrade needs GET
goim: WebSocket upgrade refused: WebSocket upgrade needs HTTP/1.1
goim: WebSocket upgrade refused: WebSocket upgrade with a request body



=== TEST 4: rooms, sub/unsub and echo of other ops over WebSocket
--- perl
my $a1 = authed({ mid => 1, key => 'a1', room_id => 'live://1',
                  accepts => [1000] });
my $a2 = authed({ mid => 2, key => 'a2', room_id => 'live://1' });
is $a1->heartbeat, 2, "$name - two in the room";
is $a2->change_room('live://2'), 'live://2', "$name - change room echoed";
is $a1->heartbeat, 1, "$name - one left";
is $a2->sub_ops(1001, 1002), '1001,1002', "$name - sub echoed";
is $a2->unsub_ops(1002), '1002', "$name - unsub echoed";
api(POST => '/goim/push/keys?operation=1002&keys=a2', 'filtered');
api(POST => '/goim/push/keys?operation=1001&keys=a2', 'watched');
is next_pkt($a2), '1001:watched', "$name - watched ops over WebSocket";
$a1->send_packet(OP_SEND_MSG, 'upstream', seq => 11, ver => 5);
my $p = $a1->read_packet(2);
is "$p->{op}/$p->{ver}/$p->{seq}/[$p->{body}]", '4/5/11/[]',
    "$name - op 4 echoed with an empty body";
# goim echoes OP_RAW on WebSocket as an op 9 packet with an empty body
$a1->send_packet(OP_RAW, pack_packet(1000, 'x'), seq => 12);
my ($op, $msg) = $a1->_read_ws_message(time + 2);
is unpack('H*', $msg // ''), unpack('H*', pack_packet(OP_RAW, '', seq => 12)),
    "$name - OP_RAW echoed as an empty op 9 packet";
$a1->send_packet(OP_AUTH, '{"mid":5,"key":"zz"}', seq => 13);
is next_pkt($a1), '7:', "$name - repeated auth echoed";
$_->close for $a1, $a2;



=== TEST 5: ping gets a pong with the same payload; pongs are ignored
--- perl
my $c = ws();
$c->send_ws_frame(WS_PING, 'before-auth');
ok $c->auth({ mid => 1, key => 'p' }), "$name - auth";
is_deeply $c->{pongs}, ['before-auth'], "$name - pong before auth, in order";
$c->send_ws_frame(WS_PING, '');
$c->send_ws_frame(WS_PING, 'x' x 125);
$c->send_ws_frame(WS_PONG, 'unsolicited');
is $c->heartbeat, 0, "$name - heartbeat after pings";
is_deeply [map { length } @{ $c->{pongs} }], [11, 0, 125],
    "$name - empty and 125-byte pings answered";
is_deeply [grep { $_ eq 'unsolicited' } @{ $c->{pongs} }], [],
    "$name - an unsolicited pong is not answered";
$c->close;



=== TEST 6: close is answered with close, echoing the code
--- perl
for my $code (1000, 1001, 3000, 4999) {
    my $c = authed({ mid => 1, key => "c$code" });
    is $c->ws_close($code, 'bye'), $code, "$name - close $code echoed";
}
my $c = authed({ mid => 1, key => 'empty' });
$c->{sent_close} = 1;
$c->send_ws_frame(WS_CLOSE, '');
is close_code($c), 1000, "$name - empty close answered with 1000";
for my $bad ([999, 'code 999'], [1005, 'code 1005'], [1006, 'code 1006'],
             [5000, 'code 5000']) {
    my $d = authed({ mid => 1, key => "bad$bad->[0]" });
    $d->{sent_close} = 1;
    $d->send_ws_frame(WS_CLOSE, pack('n', $bad->[0]));
    is close_code($d), 1002, "$name - $bad->[1]: 1002";
}
my $e = authed({ mid => 1, key => 'one-byte' });
$e->{sent_close} = 1;
$e->send_ws_frame(WS_CLOSE, 'x');
is close_code($e), 1002, "$name - 1-byte close payload: 1002";
my $f = authed({ mid => 1, key => 'utf8' });
$f->{sent_close} = 1;
$f->send_ws_frame(WS_CLOSE, pack('n', 1000) . "\xff\xfe");
is close_code($f), 1007, "$name - invalid UTF-8 reason: 1007";
# nothing after the close is processed
my $g = authed({ mid => 1, key => 'after' });
$g->{sent_close} = 1;
$g->send_raw(ws_frame(WS_CLOSE, pack('n', 1000))
             . ws_frame(WS_BINARY, pack_packet(OP_HEARTBEAT, '')));
is close_code($g), 1000, "$name - close first";
is scalar(@{ $g->{inbox} }), 0, "$name - no heartbeat reply after close";
--- error_log
goim: client sent close



=== TEST 7: frame-level protocol errors close with 1002
--- perl
my @cases = (
    ['unmasked frame', ws_frame(WS_BINARY, pack_packet(OP_HEARTBEAT, ''),
                                mask => 0)],
    ['RSV1', ws_frame(WS_BINARY, pack_packet(OP_HEARTBEAT, ''), rsv => 4)],
    ['RSV3', ws_frame(WS_BINARY, pack_packet(OP_HEARTBEAT, ''), rsv => 1)],
    ['opcode 3', ws_frame(3, 'x')],
    ['opcode 11', ws_frame(11, '')],
    ['ping of 126 bytes', ws_frame(WS_PING, 'p' x 126)],
    ['fragmented ping', ws_frame(WS_PING, 'p', fin => 0)],
    ['continuation first', ws_frame(WS_CONT, pack_packet(OP_HEARTBEAT, ''))],
    ['new message inside a fragmented one',
        ws_frame(WS_BINARY, 'abc', fin => 0) . ws_frame(WS_BINARY, 'def')],
    ['16-bit length for 5 bytes', raw_frame("\x82\xfe\x00\x05", '12345')],
    ['64-bit length for 200 bytes',
        raw_frame("\x82\xff" . pack('Q>', 200), 'x' x 200)],
    ['64-bit length with the top bit',
        "\x82\xff\x80" . ("\0" x 7) . "\1\2\3\4"],
);
for my $case (@cases) {
    my ($what, $bytes) = @$case;
    for my $when ('before auth', 'after auth') {
        my $c = $when eq 'before auth' ? ws() : authed({ mid => 1 });
        $c->send_raw($bytes);
        is close_code($c), 1002, "$name - $what, $when: 1002";
    }
}
--- error_log
goim: unmasked client frame
goim: RSV bits set
goim: reserved opcode
goim: control frame payload over 125 bytes
goim: fragmented control frame
goim: continuation frame without a message
goim: data frame inside a fragmented message
goim: non-minimal length encoding
goim: 64-bit length with the top bit set



=== TEST 8: packet-level errors inside a message close with 1002
--- perl
my @cases = (
    ['packLen beyond the message',
        substr(pack_packet(OP_SEND_MSG, 'abcdef'), 0, 19)],
    ['message shorter than a header', "\0\0\0\x10\0\x10"],
    ['empty message', ''],
    ['headerLen 17', pack_packet(OP_HEARTBEAT, '', headerlen => 17)],
    ['packLen 15', pack_packet(OP_HEARTBEAT, '', packlen => 15)],
    ['negative packLen', pack_packet(OP_HEARTBEAT, '', packlen => -16)],
);
for my $case (@cases) {
    my ($what, $msg) = @$case;
    for my $when ('before auth', 'after auth') {
        my $c = $when eq 'before auth' ? ws() : authed({ mid => 1 });
        $c->send_ws_frame(WS_BINARY, $msg);
        is close_code($c), 1002, "$name - $what, $when: 1002";
    }
}
# bytes after packLen are ignored, as goim does
my $c = authed({ mid => 1, key => 'trailing' });
$c->send_ws_frame(WS_BINARY, pack_packet(OP_HEARTBEAT, '', seq => 8)
                             . 'trailing junk');
my $p = $c->read_packet(2);
is $p && "$p->{op}/$p->{seq}", '3/8', "$name - trailing bytes ignored";
$c->close;
--- error_log
goim: packLen beyond the message
goim: headerLen is not 16
goim: packLen below 16



=== TEST 9: fragmented messages are reassembled, with control frames between
--- perl
my $c = ws();
my $auth = pack_packet(OP_AUTH, '{"mid":1,"key":"frag","room_id":"live://f"}',
                       seq => 1);
$c->send_raw(ws_frame(WS_BINARY, substr($auth, 0, 5), fin => 0)
             . ws_frame(WS_PING, 'mid-message')
             . ws_frame(WS_CONT, substr($auth, 5, 20), fin => 0));
sleep 0.05;
$c->send_raw(ws_frame(WS_CONT, '', fin => 0)
             . ws_frame(WS_CONT, substr($auth, 25)));
my $p = $c->wait_op(OP_AUTH_REPLY, 2);
is $p && $p->{seq}, 1, "$name - fragmented auth";
is_deeply $c->{pongs}, ['mid-message'], "$name - ping inside a message";
# a text message in 50 fragments of 2 bytes
my $hb = pack_packet(OP_SEND_MSG, 'y' x 84, seq => 2);
my @parts = unpack '(a2)*', $hb;
my $bytes = ws_frame(WS_TEXT, shift(@parts), fin => 0);
$bytes .= ws_frame(WS_CONT, $parts[$_], fin => $_ == $#parts ? 1 : 0)
    for 0 .. $#parts;
$c->send_raw($bytes);
$p = $c->read_packet(2);
is $p && "$p->{op}/$p->{seq}", '4/2', "$name - 50 text fragments";
is $c->heartbeat, 1, "$name - state intact after fragments";
# too many fragments: 1009
@parts = unpack '(a1)*', pack_packet(OP_SEND_MSG, 'z' x 184);
$bytes = ws_frame(WS_BINARY, shift(@parts), fin => 0);
$bytes .= ws_frame(WS_CONT, $parts[$_], fin => $_ == $#parts ? 1 : 0)
    for 0 .. $#parts;
$c->send_raw($bytes);
is close_code($c), 1009, "$name - 200 fragments: 1009";
--- error_log
goim: too many fragments



=== TEST 10: text frames are accepted like binary ones
--- perl
my $c = ws();
$c->send_packet(OP_AUTH, '{"mid":3,"key":"txt","room_id":"live://t"}',
                ws_opcode => WS_TEXT, seq => 1);
my $p = $c->wait_op(OP_AUTH_REPLY, 2);
is $p && $p->{ws_opcode}, WS_BINARY, "$name - auth in a text frame, binary reply";
$c->send_packet(OP_HEARTBEAT, '', ws_opcode => WS_TEXT, seq => 2);
$p = $c->wait_op(OP_HEARTBEAT_REPLY, 2);
is $p && unpack('N', $p->{body}), 1, "$name - heartbeat in a text frame";
# goim packets are binary: a text message need not be valid UTF-8
$c->send_packet(OP_SEND_MSG, "\xff\xfe\x00", ws_opcode => WS_TEXT, seq => 3);
is next_pkt($c), '4:', "$name - non-UTF-8 text message processed";
$c->close;



=== TEST 11: oversize: goim_max_body bounds messages, close 1009
--- main_config
goim_max_body 64;
--- perl
my $c = authed({ mid => 1, key => 'big' });
$c->send_packet(OP_SEND_MSG, 'b' x 64, seq => 1);
is next_pkt($c), '4:', "$name - 64-byte body accepted";
$c->send_packet(OP_SEND_MSG, 'b' x 65, seq => 2);
is close_code($c), 1009, "$name - 65-byte body: 1009";

my $d = ws();
$d->send_packet(OP_AUTH, '{"mid":1,"key":"' . ('k' x 60) . '"}');
is close_code($d), 1009, "$name - oversize auth message: 1009";

# the frame header alone decides: a 1 MB frame is refused at once
my $e = authed({ mid => 1, key => 'huge' });
my $t0 = time;
$e->send_raw("\x82\xff" . pack('Q>', 1 << 20) . "\1\2\3\4");
is close_code($e, 2), 1009, "$name - 1 MB frame header: 1009";
ok time - $t0 < 1, "$name - without waiting for the payload";

# fragments add up
my $f = authed({ mid => 1, key => 'frags' });
my $pkt = pack_packet(OP_SEND_MSG, 'f' x 70);
$f->send_raw(ws_frame(WS_BINARY, substr($pkt, 0, 50), fin => 0)
             . ws_frame(WS_CONT, substr($pkt, 50)));
is close_code($f), 1009, "$name - oversize across fragments: 1009";

# a packLen over the limit inside a small frame
my $g = authed({ mid => 1, key => 'plen' });
$g->send_ws_frame(WS_BINARY,
                  pack_packet(OP_SEND_MSG, 'g', packlen => 16 + 100000));
is close_code($g), 1009, "$name - packLen over the limit: 1009";
--- error_log
goim: message too big
goim: packet body too long



=== TEST 12: bytes pipelined behind the upgrade request are processed
--- perl
my ($req, $accept) = upgrade_request();
my $c = GoimClient->new(transport => 'tcp', timeout => 3,
                        port => $ENV{TEST_NGINX_SERVER_PORT});
die "connect\n" if $c->connect;
$c->send_raw($req
    . ws_frame(WS_BINARY, pack_packet(OP_AUTH,
                   '{"mid":1,"key":"pipe","room_id":"live://p"}', seq => 1))
    . ws_frame(WS_PING, 'early')
    . ws_frame(WS_BINARY, pack_packet(OP_HEARTBEAT, '', seq => 2))
    . ws_frame(WS_BINARY, substr(pack_packet(OP_SEND_MSG, 'half', seq => 3),
                                 0, 10), fin => 0));
my $head = $c->_read_http_head(time + 3);
like $head // '', qr{^HTTP/1\.1 101 }, "$name - 101";
like $head // '', qr{^Sec-WebSocket-Accept: \Q$accept\E\r$}m,
    "$name - accept key";
$c->{transport} = 'ws';     # the bytes after the head are frames
my @got = map { my $p = $c->read_packet(2); $p ? "$p->{op}/$p->{seq}" : 'none' }
          1 .. 2;
is_deeply \@got, ['8/1', '3/2'], "$name - auth and heartbeat answered";
is_deeply $c->{pongs}, ['early'], "$name - pipelined ping answered";
$c->send_ws_frame(WS_CONT, substr(pack_packet(OP_SEND_MSG, 'half', seq => 3),
                                  10));
is next_pkt($c), '4:', "$name - message begun in the upgrade write completed";
$c->close;



=== TEST 13: bad token closes with 1008 and no auth reply
--- perl
for my $tok ('nope', '{"mid":"x"}', '', '[]') {
    my $c = ws();
    $c->send_packet(OP_AUTH, $tok);
    is close_code($c), 1008, "$name - '$tok': 1008";
    is scalar(@{ $c->{inbox} }), 0, "$name - '$tok': no reply";
}
--- error_log
goim: auth failed: bad token



=== TEST 14: handshake timeout over WebSocket
--- main_config
goim_handshake_timeout 1s;
--- perl
my $t0 = time;
my $idle = ws();
my $pinger = ws();
my $ok = authed({ mid => 1, key => 'ok' });
my ($t_idle, $t_pinger);
while (time - $t0 < 4 && !($t_idle && $t_pinger)) {
    $pinger->send_ws_frame(WS_PING, 'x') unless $t_pinger;
    $pinger->send_packet(OP_HEARTBEAT, '') unless $t_pinger;
    $t_idle //= time - $t0 if $idle->expect_closed(0.1);
    $t_pinger //= time - $t0 if $pinger->expect_closed(0.1);
}
ok $t_idle && $t_idle > 0.8 && $t_idle < 2.5,
   "$name - idle upgraded connection closed after ~1s ("
   . sprintf('%.2f', $t_idle // -1) . ")";
ok $t_pinger && $t_pinger > 0.8 && $t_pinger < 2.5,
   "$name - pings and heartbeats do not extend it ("
   . sprintf('%.2f', $t_pinger // -1) . ")";
is $ok->heartbeat, 0, "$name - authenticated connection stays";
$ok->close;
--- error_log
goim: connection closed: handshake timed out



=== TEST 15: heartbeat timeout over WebSocket; pings do not reset it
--- main_config
goim_heartbeat 1s;
goim_heartbeat_max 1;
--- perl
my $t0 = time;
my $beats = authed({ mid => 1, key => 'beats' });
my $pings = authed({ mid => 2, key => 'pings' });
my $t_pings;
while (time - $t0 < 2.2) {
    $beats->heartbeat;
    if ($t_pings) { sleep 0.3; next }
    $pings->send_ws_frame(WS_PING, 'x');
    $t_pings = time - $t0 if $pings->expect_closed(0.3);
}
ok !$beats->is_closed, "$name - heartbeating connection open";
ok $t_pings && $t_pings > 0.8 && $t_pings < 2,
   "$name - pinging connection closed after ~1s ("
   . sprintf('%.2f', $t_pings // -1) . ")";
$beats->close;
--- error_log
goim: connection closed: heartbeat timed out



=== TEST 16: large pushes: 16-bit and 64-bit frame lengths
--- config
    location = /sub { goim_websocket; }
    location /goim/ {
        client_body_buffer_size 256k;
        client_max_body_size 256k;
        goim_logic_api;
    }
--- perl
my $c = authed({ mid => 1, key => 'large', accepts => [1000] });
for my $len (0, 109, 110, 65519, 65520, 200000) {
    my $body = join '', map { chr(($_ * 7) % 256) } 1 .. $len;
    my ($st, $j) = api(POST => '/goim/push/keys?operation=1000&keys=large',
                       $body);
    my ($p) = $c->read_pushes(1, 3);
    ok $p && $p->{body} eq $body, "$name - $len-byte push intact";
}
$c->close;



=== TEST 17: client vanishes mid-message, mid-frame, or without a Close
--- perl
my $x = authed({ mid => 1, key => 'x', room_id => 'live://1' });
$x->send_raw(ws_frame(WS_BINARY, 'abc', fin => 0));
$x->close(abort => 1);
my $y = authed({ mid => 2, key => 'y', room_id => 'live://1' });
$y->send_raw(substr ws_frame(WS_BINARY, pack_packet(OP_SEND_MSG, 'q' x 500)),
             0, 100);
$y->close(abort => 1);
my $z = authed({ mid => 3, key => 'z', room_id => 'live://1' });
$z->send_raw(join '', map { ws_frame(WS_PING, 'p' x 100) } 1 .. 300);
$z->close(abort => 1);
my $w = authed({ mid => 4, key => 'w', room_id => 'live://1' });
my $deadline = time + 2;
my $n;
do { $n = $w->heartbeat; sleep 0.02 } while $n != 1 && time < $deadline;
is $n, 1, "$name - the vanished clients left the room";
$w->close;
--- error_log
goim: connection closed: client closed



=== TEST 18: goim_max_body 1m: a 1 MB message, whole or in fragments
--- main_config
goim_max_body 1m;
--- perl
my $c = authed({ mid => 1, key => 'mb', room_id => 'live://mb' });
my $body = join '', map { chr(($_ * 31) % 256) } 1 .. 1024 * 1024;
$c->send_packet(OP_SEND_MSG, $body, seq => 1);
is next_pkt($c, 5), '4:', "$name - one 1 MB frame";
my $pkt = pack_packet(OP_SEND_MSG, $body, seq => 2);
my @parts = unpack '(a65536)*', $pkt;
$c->send_raw(ws_frame(WS_BINARY, shift(@parts), fin => 0)
    . join('', map { ws_frame(WS_CONT, $parts[$_], fin => $_ == $#parts) }
                   0 .. $#parts));
my $p = $c->read_packet(5);
is $p && "$p->{op}/$p->{seq}", '4/2', "$name - 1 MB in 17 fragments";
is $c->heartbeat, 1, "$name - next message parsed right";
$c->send_packet(OP_SEND_MSG, $body . 'x', seq => 3);
is close_code($c), 1009, "$name - 1 MB + 1: 1009";
--- error_log
goim: message too big



=== TEST 19: upgrade after large headers, and after a keep-alive request
--- perl
my $port = $ENV{TEST_NGINX_SERVER_PORT};
my $frames = ws_frame(WS_BINARY, pack_packet(OP_AUTH,
                 '{"mid":1,"key":"big-hdr","room_id":"live://h"}', seq => 1))
             . ws_frame(WS_BINARY, pack_packet(OP_HEARTBEAT, '', seq => 2));
# headers over client_header_buffer_size (1k): a large header buffer
my ($req, $accept) = upgrade_request(Cookie => 'c=' . ('x' x 3000));
my $c = GoimClient->new(transport => 'tcp', timeout => 3, port => $port);
die "connect\n" if $c->connect;
$c->send_raw($req . $frames);
like $c->_read_http_head(time + 3) // '', qr{^HTTP/1\.1 101 }, "$name - 101";
$c->{transport} = 'ws';
my @got = map { my $p = $c->read_packet(2); $p ? "$p->{op}/$p->{seq}" : 'none' }
          1 .. 2;
is_deeply \@got, ['8/1', '3/2'], "$name - large headers: pipelined frames kept";
$c->close;
# a plain request first, then the upgrade, all in one write
($req, $accept) = upgrade_request();
$c = GoimClient->new(transport => 'tcp', timeout => 3, port => $port);
die "connect\n" if $c->connect;
$c->send_raw("GET /goim/online/total HTTP/1.1\r\nHost: localhost\r\n\r\n"
             . $req . $frames);
my $head = $c->_read_http_head(time + 3) // '';
like $head, qr{^HTTP/1\.1 200 }, "$name - first the API answer";
my ($len) = $head =~ /^Content-Length: (\d+)/mi;
$c->_fill(time + 2) while length $c->{rbuf} < ($len // 0);
substr($c->{rbuf}, 0, $len // 0, '');
$head = $c->_read_http_head(time + 3) // '';
like $head, qr{^HTTP/1\.1 101 }, "$name - then 101 on the same connection";
like $head, qr{^Sec-WebSocket-Accept: \Q$accept\E\r$}m, "$name - accept";
$c->{transport} = 'ws';
@got = map { my $p = $c->read_packet(2); $p ? "$p->{op}/$p->{seq}" : 'none' }
       1 .. 2;
is_deeply \@got, ['8/1', '3/2'], "$name - keep-alive then upgrade: frames kept";
is $c->heartbeat, 1, "$name - connection usable";
$c->close;
# the same, with the upgrade sent later on the kept-alive connection
$c = GoimClient->new(transport => 'tcp', timeout => 3, port => $port);
die "connect\n" if $c->connect;
$c->send_raw("GET /goim/online/total HTTP/1.1\r\nHost: localhost\r\n\r\n");
$head = $c->_read_http_head(time + 3) // '';
($len) = $head =~ /^Content-Length: (\d+)/mi;
$c->_fill(time + 2) while length $c->{rbuf} < ($len // 0);
substr($c->{rbuf}, 0, $len // 0, '');
sleep 0.1;
($req, $accept) = upgrade_request();
$c->send_raw($req);
$head = $c->_read_http_head(time + 3) // '';
like $head, qr{^HTTP/1\.1 101 }, "$name - upgrade on an idle keep-alive "
    . "connection";
$c->{transport} = 'ws';
ok $c->auth({ mid => 2, key => 'ka2' }), "$name - auth after keep-alive";
$c->close;
--- config
    location = /sub { goim_websocket; }
    location /goim/ { goim_logic_api; }
--- http_config
    client_header_buffer_size 1k;
