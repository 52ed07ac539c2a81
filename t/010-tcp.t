# Comet over plain TCP (docs/PROTOCOL.md 1): auth, heartbeat, rooms, watched
# operations, echo of other operations, the handshake and heartbeat
# timers, and every way a client can send a broken packet.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops pack_packet http_json);
use GoimTest qw(default_servers connected client api next_pkt);
use Time::HiRes qw(time sleep);

skip_unless_module();

# Default servers: goim_tcp on the stream port, the logic API on the http
# port (used to check what sub/unsub changed).
add_block_preprocessor(sub {
    default_servers(shift, config => <<'EOF');
    location /goim/ { goim_logic_api; }
EOF
});

# A connected TCP client; dies (failing the block) when it cannot connect.
sub tcp { return connected('tcp', @_) }

# A client authenticated with the token (and the auth reply in list
# context); dies when auth fails.
sub authed {
    my $c = client('tcp', $_[0]);
    return wantarray ? ($c, $c->{auth}) : $c;
}

# The server closed the connection and sent nothing before closing.
sub closed_silently {
    my ($c, $timeout) = @_;
    my $closed = $c->expect_closed($timeout // 3);
    my @got = map { "op $_->{op}" } @{ $c->{inbox} };
    return $closed && !@got ? 1 : 0;
}

# Polls the heartbeat count until it equals $want (the server learns of a
# peer's close asynchronously); returns the last value seen.
sub heartbeat_until {
    my ($c, $want, $timeout) = @_;
    my $deadline = time + ($timeout // 2);
    my $n;
    while (1) {
        $n = $c->heartbeat;
        return $n if !defined $n || $n == $want || time > $deadline;
        sleep 0.02;
    }
}

run_tests();

__DATA__

=== TEST 1: auth reply: op 8, ver and seq echoed, JSON body with key
--- perl
my $c = tcp();
my $r = $c->auth({ mid => 123, key => 'dev-1', room_id => 'live://1000',
                   platform => 'web', accepts => [1000, 1001] },
                 ver => 3, seq => 77);
is_deeply $r, { mid => 123, key => 'dev-1', room_id => 'live://1000' },
    "$name - auth reply body";
my $p = $c->{auth_reply};
is "$p->{op}/$p->{ver}/$p->{seq}", '8/3/77', "$name - op 8, ver and seq echoed";
is $c->heartbeat(seq => 5, ver => 1), 1, "$name - heartbeat: 1 in the room";
$p = $c->{heartbeat_reply};
is "$p->{op}/$p->{seq}/$p->{packlen}", '3/5/20',
    "$name - op 3, seq echoed, 4-byte body";
is $c->heartbeat(ver => -2), 1, "$name - second heartbeat";
is $c->{heartbeat_reply}{ver}, -2, "$name - negative ver echoed as is";
$c->close;
--- no_error_log
[error]
[warn]



=== TEST 2: empty or missing key gets a UUIDv4; anonymous and room-less
--- perl
my $uuid = qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
my ($ca, $ra) = authed({ mid => 5, key => '', room_id => '' });
like $ra->{key}, $uuid, "$name - empty key: UUIDv4";
is $ra->{mid}, 5, "$name - mid kept";
is $ra->{room_id}, '', "$name - no room";
my ($cb, $rb) = authed({});
like $rb->{key}, $uuid, "$name - {} token: UUIDv4";
is $rb->{mid}, 0, "$name - {} token: anonymous";
isnt $ra->{key}, $rb->{key}, "$name - keys differ";
is $ca->heartbeat, 0, "$name - heartbeat without a room: 0";
my ($cc, $rc) = authed({ mid => 6, key => "k\"\\\x{e9}", room_id => 'x://"' });
is_deeply [$rc->{key}, $rc->{room_id}], ["k\"\\\x{e9}", 'x://"'],
    "$name - key and room JSON-escaped in the reply";
# the generated key is a real key: a push by it arrives
my ($st, $j) = api(POST => "/goim/push/keys?operation=1000&keys=$ra->{key}",
                   'to-uuid');
is $j && $j->{code}, 0, "$name - push by generated key accepted";
$ca->send_packet(OP_SUB, '1000');
is next_pkt($ca), '15:1000', "$name - sub reply";
($st, $j) = api(POST => "/goim/push/keys?operation=1000&keys=$ra->{key}",
                'to-uuid');
is next_pkt($ca), '1000:to-uuid', "$name - push by generated key arrives";
$_->close for $ca, $cb, $cc;



=== TEST 3: heartbeat count follows rooms: join, change, leave, close
--- perl
my $c1 = authed({ mid => 1, key => 'c1', room_id => 'live://A' });
my $c2 = authed({ mid => 2, key => 'c2', room_id => 'live://A' });
my $c3 = authed({ mid => 3, key => 'c3', room_id => 'live://B' });
is $c1->heartbeat, 2, "$name - A has 2";
is $c3->heartbeat, 1, "$name - B has 1";
is $c2->change_room('live://B'), 'live://B', "$name - change room echoes";
is $c1->heartbeat, 1, "$name - A has 1 after the change";
is $c2->heartbeat, 2, "$name - B has 2";
is $c3->heartbeat, 2, "$name - B has 2 (other member)";
is $c1->change_room('live://A'), 'live://A', "$name - change to own room echoes";
is $c1->heartbeat, 1, "$name - own room kept after changing to it";
is $c2->change_room(''), '', "$name - leave room echoes empty body";
is $c3->heartbeat, 1, "$name - B has 1 after leave";
is $c2->change_room('live://A'), 'live://A', "$name - join again";
is $c1->heartbeat, 2, "$name - A has 2 again";
$c2->close;
is heartbeat_until($c1, 1), 1, "$name - A has 1 after a member closed";
is $c3->heartbeat, 1, "$name - B unaffected";
my $long = 'r' x 257;
is $c3->change_room($long), $long, "$name - over-long room id: reply echoes";
is $c3->heartbeat, 1, "$name - over-long room id refused, room kept";
my ($st, $j) = api(GET => '/goim/online/room?type=live&rooms=A&rooms=B');
is_deeply $j && $j->{data}, { A => 1, B => 1 }, "$name - online/room agrees";
$_->close for $c1, $c3;
--- error_log
change room refused



=== TEST 4: sub and unsub: replies echo the body, watched ops change
--- perl
my $c = authed({ mid => 1, key => 'w', accepts => [1000] });
my $push = sub {
    my ($op, $body) = @_;
    my ($st, $j) = api(POST => "/goim/push/keys?operation=$op&keys=w", $body);
    die "push failed: $st\n" unless $st == 200 && $j->{code} == 0;
};
$push->(1001, 'not-watched');
$push->(1000, 'watched');
is next_pkt($c), '1000:watched', "$name - only the watched op arrives";
$c->send_packet(OP_SUB, '1001,1002', seq => 9);
my $p = $c->read_packet(2);
is "$p->{op}/$p->{seq}/$p->{body}", '15/9/1001,1002', "$name - sub reply";
$push->(1001, 'now-watched');
is next_pkt($c), '1001:now-watched', "$name - subscribed op arrives";
is $c->unsub_ops(1000), '1000', "$name - unsub reply echoes";
$push->(1000, 'unwatched');
$push->(1002, 'fence1');
is next_pkt($c), '1002:fence1', "$name - unsubscribed op filtered";
is $c->sub_ops('x', 1003), 'x,1003', "$name - invalid list: reply echoed";
$push->(1003, 'bad-list');
$push->(1002, 'fence2');
is next_pkt($c), '1002:fence2', "$name - invalid list ignored as a whole";
is $c->sub_ops(), '', "$name - empty sub: empty reply";
is $c->unsub_ops(5555), '5555', "$name - unsub of an unwatched op";
$push->(1001, 'still');
is next_pkt($c), '1001:still', "$name - watched ops intact";
$c->close;
--- error_log
invalid operation list in sub ignored



=== TEST 5: other operations are echoed with an empty body; OP_RAW is not
--- perl
my $c = authed({ mid => 1, key => 'e', room_id => 'live://1' });
$c->send_packet(OP_SEND_MSG, 'hello upstream', seq => 41, ver => 2);
my $p = $c->read_packet(2);
is "$p->{op}/$p->{ver}/$p->{seq}/[$p->{body}]", '4/2/41/[]',
    "$name - op 4 echoed, empty body";
$c->send_packet(OP_HANDSHAKE, 'x', seq => 42);
is next_pkt($c), '0:', "$name - op 0 echoed";
$c->send_packet(1000, 'biz', seq => 43);
is next_pkt($c), '1000:', "$name - business op echoed";
$c->send_packet(OP_AUTH, '{"mid":9,"key":"other"}', seq => 44);
is next_pkt($c), '7:', "$name - repeated auth echoed as op 7, empty body";
$c->send_packet(OP_RAW, pack_packet(1000, 'inner'), seq => 45);
$c->send_packet(-5, '', seq => 46);
is next_pkt($c), '-5:', "$name - no echo for OP_RAW on TCP; negative op echoed";
# the repeated auth changed nothing: still key "e"
my ($st, $j) = http_json(POST => '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT},
    '/goim/push/room?operation=1000&type=live&room=1', 'r');
is next_pkt($c), '1000:r', "$name - still in its room";
$j = (http_json(GET => '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT},
                '/goim/online/total'))[1];
is $j->{data}{conn_count}, 1, "$name - still one connection";

# 200 packets in one write: 200 replies, in order
my $bytes = join '', map { pack_packet($_ % 2 ? OP_HEARTBEAT : OP_SEND_MSG,
                                       '', seq => $_) } 1 .. 200;
$c->send_raw($bytes);
my @seq;
for (1 .. 200) {
    my $q = $c->read_packet(3) or last;
    push @seq, $q->{seq} . ($q->{op} == ($q->{seq} % 2 ? 3 : 4) ? '' : '!');
}
is_deeply \@seq, [1 .. 200], "$name - pipelined packets answered in order";
$c->close;



=== TEST 6: packets split across writes, byte by byte
--- perl
my $c = tcp();
my $auth = pack_packet(OP_AUTH, '{"mid":1,"key":"split","room_id":"live://s"}',
                       seq => 1);
for my $i (0 .. length($auth) - 1) {
    $c->send_raw(substr $auth, $i, 1);
    sleep 0.002;
}
my $p = $c->read_packet(2);
is $p && $p->{op}, OP_AUTH_REPLY, "$name - auth sent byte by byte";
# header split from body, then two packets and a half in one write
my $hb = pack_packet(OP_HEARTBEAT, '', seq => 2);
my $msg = pack_packet(OP_SEND_MSG, 'x' x 3000, seq => 3);
$c->send_raw(substr $msg, 0, 16);
sleep 0.05;
$c->send_raw(substr($msg, 16) . $hb . substr($hb, 0, 7));
sleep 0.05;
$c->send_raw(substr($hb, 7, 100));
my @got = map { my $q = $c->read_packet(2); $q ? "$q->{op}/$q->{seq}" : 'none' }
          1 .. 3;
is_deeply \@got, ['4/3', '3/2', '3/2'], "$name - split packets reassembled";
$c->close;



=== TEST 7: packets before auth are ignored, not answered, not fatal
--- perl
my $c = tcp();
$c->send_packet(OP_HEARTBEAT, '', seq => 1);
$c->send_packet(OP_SEND_MSG, 'early', seq => 2);
$c->send_packet(OP_SUB, '1000', seq => 3);
$c->send_packet(OP_CHANGE_ROOM, 'live://early', seq => 4);
$c->send_packet(OP_RAW, pack_packet(1000, 'x'), seq => 5);
sleep 0.1;
my $r = $c->auth({ mid => 1, key => 'late', room_id => 'live://token' },
                 seq => 6);
ok $r, "$name - auth after ignored packets";
my @before = grep { $_->{seq} != 6 } @{ $c->{inbox} };
is scalar(@before), 0, "$name - nothing answered before auth";
is $c->{auth_reply}{seq}, 6, "$name - the first reply is the auth reply";
is $r->{room_id}, 'live://token', "$name - room from the token, not op 12";
is $c->heartbeat, 1, "$name - heartbeat after auth";
my ($st, $j) = http_json(POST => '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT},
    '/goim/push/keys?operation=1000&keys=late', 'x');
$c->send_packet(OP_HEARTBEAT, '', seq => 7);
is next_pkt($c), "3:\0\0\0\1", "$name - pre-auth sub had no effect";
$c->close;



=== TEST 8: handshake timeout: unauthenticated connections close
--- main_config
goim_handshake_timeout 1s;
--- perl
my $t0 = time;
my $idle = tcp();
my $chatty = tcp();
my $ok = authed({ mid => 1, key => 'ok' });
my $half = tcp();
$half->send_raw(substr pack_packet(OP_AUTH, '{"mid":2}'), 0, 20);
my ($t_idle, $t_chatty);
while (time - $t0 < 4 && !($t_idle && $t_chatty)) {
    $chatty->send_packet(OP_HEARTBEAT, '') unless $t_chatty;
    $t_idle //= time - $t0 if $idle->expect_closed(0.1);
    $t_chatty //= time - $t0 if $chatty->expect_closed(0.1);
}
ok $t_idle && $t_idle > 0.8 && $t_idle < 2.5,
   "$name - silent connection closed after ~1s ("
   . sprintf('%.2f', $t_idle // -1) . ")";
ok $t_chatty && $t_chatty > 0.8 && $t_chatty < 2.5,
   "$name - heartbeats before auth do not extend it ("
   . sprintf('%.2f', $t_chatty // -1) . ")";
ok $half->expect_closed(1), "$name - half an auth packet: closed too";
is scalar(@{ $idle->{inbox} }) + scalar(@{ $chatty->{inbox} }), 0,
   "$name - nothing sent to them";
is $ok->heartbeat, 0, "$name - authenticated connection outlives the timer";
$ok->close;
--- error_log
goim: connection closed: handshake timed out



=== TEST 9: heartbeat timeout: heartbeat x heartbeat_max, only op 2 resets it
--- main_config
goim_heartbeat 1s;
goim_heartbeat_max 1;
--- perl
my $t0 = time;
my $beats = authed({ mid => 1, key => 'beats' });
my $silent = authed({ mid => 2, key => 'silent' });
my $n = 0;
my $t_silent;
while (time - $t0 < 2.2) {
    $n++ if defined $beats->heartbeat;
    if ($t_silent) { sleep 0.35; next }
    $t_silent = time - $t0 if $silent->expect_closed(0.35);
}
ok $n >= 5, "$name - heartbeats every 0.35s answered for 2.2s ($n)";
ok !$beats->is_closed, "$name - the heartbeating connection is open";
ok $t_silent && $t_silent > 0.8 && $t_silent < 2,
   "$name - the silent one closed after ~1s ("
   . sprintf('%.2f', $t_silent // -1) . ")";
# other operations do not reset the timer
my $t1 = time;
my $t_closed;
while (time - $t1 < 3) {
    $beats->send_packet(OP_SEND_MSG, 'x');
    $beats->send_packet(OP_SUB, '1000');
    $beats->send_packet(OP_CHANGE_ROOM, 'live://1');
    if ($beats->expect_closed(0.25)) { $t_closed = time - $t1; last }
}
ok $t_closed && $t_closed > 0.6 && $t_closed < 1.6,
   "$name - other ops do not extend it ("
   . sprintf('%.2f', $t_closed // -1) . ")";
--- error_log
goim: connection closed: heartbeat timed out



=== TEST 10: heartbeat timeout is heartbeat times heartbeat_max
--- main_config
goim_heartbeat 300ms;
goim_heartbeat_max 4;
--- perl
my $t0 = time;
my $c = authed({ mid => 1, key => 'x' });
my $closed = $c->expect_closed(3);
my $t = time - $t0;
ok $closed && $t > 1.1 && $t < 2.2,
   "$name - closed after ~1.2s, not 0.3s (" . sprintf('%.2f', $t) . ")";
--- error_log
heartbeat timed out



=== TEST 11: bad tokens close the connection without a reply
--- perl
my @bad = ('not json', '[1,2]', '"str"', '{"mid":"abc"}',
    '{"accepts":"1000"}', '{"accepts":[1.5]}', '{"accepts":[4294967296]}',
    '{"mid":1', '', '{"key":"a' . "\x01" . '"}',
    '{"mid":99999999999999999999}', '{"key":"' . ('k' x 200) . '"}',
    '{"room_id":"' . ('r' x 300) . '"}', "{\"key\":\"\xff\xfe\"}",
    '{"mid":1}garbage', '{"mid":1.0}');
for my $tok (@bad) {
    my $c = tcp();
    $c->send_packet(OP_AUTH, $tok);
    (my $show = substr $tok, 0, 30) =~ s/[^ -~]/?/g;
    ok closed_silently($c), "$name - closed without a reply: '$show'";
}
my ($st, $j) = http_json(GET => '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT},
                         '/goim/online/total');
is $j->{data}{conn_count}, 0, "$name - none registered";
my $good = authed({ mid => 1, key => 'good' });
is $good->heartbeat, 0, "$name - a good token still works";
$good->close;
--- error_log
goim: auth failed: bad token



=== TEST 12: oversize packet: goim_max_body bounds client packets
--- main_config
goim_max_body 64;
--- perl
my $c = authed({ mid => 1, key => 'big' });
$c->send_packet(OP_SEND_MSG, 'b' x 64, seq => 1);
is next_pkt($c), '4:', "$name - a 64-byte body is accepted";
$c->send_packet(OP_SEND_MSG, 'b' x 65, seq => 2);
ok closed_silently($c), "$name - a 65-byte body closes the connection";

my $pre = tcp();
$pre->send_packet(OP_AUTH, '{"mid":1,"key":"' . ('k' x 60) . '"}');
ok closed_silently($pre), "$name - oversize auth packet closes too";

# the header alone decides: no need to wait for the body
my $hdr = tcp();
my $t0 = time;
$hdr->send_raw(substr pack_packet(OP_SEND_MSG, '', packlen => 16 + 1_000_000),
               0, 16);
ok closed_silently($hdr, 2) && time - $t0 < 1,
   "$name - closed on the header of a 1 MB packet";

my $d = authed({ mid => 2, key => 'big2' });
$d->send_raw(pack_packet(OP_SEND_MSG, '', packlen => 0x7fffffff));
ok closed_silently($d), "$name - packLen 2^31-1 closes";
--- error_log
goim: packet body too long



=== TEST 13: headerLen other than 16 closes the connection
--- perl
for my $hl (15, 17, 0, -16, 32) {
    my $c = authed({ mid => 1, key => "h$hl" });
    $c->send_packet(OP_HEARTBEAT, '', headerlen => $hl);
    ok closed_silently($c), "$name - headerLen $hl after auth";
}
my $c = tcp();
$c->send_packet(OP_AUTH, '{"mid":1}', headerlen => 18);
ok closed_silently($c), "$name - headerLen 18 on the auth packet";
--- error_log
goim: headerLen is not 16



=== TEST 14: packLen below 16 (zero, negative) closes the connection
--- perl
for my $pl (15, 0, -1, -2147483648) {
    my $c = authed({ mid => 1, key => "p$pl" });
    $c->send_packet(OP_HEARTBEAT, '', packlen => $pl);
    ok closed_silently($c), "$name - packLen $pl";
}
--- error_log
goim: packLen below 16



=== TEST 15: garbage bytes
--- perl
srand 42;
my @garbage = (
    "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "\0" x 16,
    "\xff" x 64,
    join('', map { chr int rand 256 } 1 .. 4096),
    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" . ("\xaa" x 32),  # TLS hello
);
for my $i (0 .. $#garbage) {
    my $c = tcp();
    $c->send_raw($garbage[$i]);
    ok closed_silently($c), "$name - garbage #$i before auth";
    my $d = authed({ mid => 1, key => "g$i" });
    $d->send_raw($garbage[$i]);
    my $closed = $d->expect_closed(3);
    ok $closed, "$name - garbage #$i after auth";
}
my $good = authed({ mid => 1, key => 'after-garbage', room_id => 'live://1' });
is $good->heartbeat, 1, "$name - the server still serves";
$good->close;
--- error_log eval
[qr/goim: (?:headerLen is not 16|packLen below 16|packet body too long)/]



=== TEST 16: client goes away mid-packet or with replies queued
--- perl
my $x = authed({ mid => 1, key => "a", room_id => "live://1" });
$x->send_raw(substr pack_packet(OP_SEND_MSG, 'x' x 100), 0, 10);
$x->close;
my $y = authed({ mid => 2, key => 'b', room_id => 'live://1' });
$y->send_raw(substr pack_packet(OP_SEND_MSG, 'x' x 100), 0, 40);
$y->close;
my $c = authed({ mid => 3, key => 'c', room_id => 'live://1' });
$c->send_raw(join '', map { pack_packet(OP_HEARTBEAT, '') } 1 .. 500);
$c->close;
my $d = tcp();
$d->send_raw(substr pack_packet(OP_AUTH, '{}'), 0, 5);
$d->close;
my $e = authed({ mid => 4, key => 'e', room_id => 'live://1' });
is heartbeat_until($e, 1), 1, "$name - the others are gone from the room";
$e->close;
--- error_log
goim: connection closed: client closed



=== TEST 17: goim_max_body 1m: a 1 MB packet arriving in many reads
--- main_config
goim_max_body 1m;
--- perl
my $c = authed({ mid => 1, key => 'mb', room_id => 'live://mb' });
my $body = join '', map { chr(($_ * 31) % 256) } 1 .. 1024 * 1024;
$c->send_packet(OP_SEND_MSG, $body, seq => 1);
my $p = $c->read_packet(5);
is $p && "$p->{op}/$p->{seq}/" . length($p->{body}), '4/1/0',
   "$name - 1 MB body accepted and echoed";
is $c->heartbeat, 1, "$name - next packet parsed right";
# two packets of half a megabyte in one write, then one byte over the limit
$c->send_raw(pack_packet(OP_SEND_MSG, substr($body, 0, 512 * 1024), seq => 2)
             . pack_packet(OP_SEND_MSG, substr($body, 1), seq => 3));
my @seq = map { my $q = $c->read_packet(5); $q ? $q->{seq} : 'none' } 1 .. 2;
is_deeply \@seq, [2, 3], "$name - large packets back to back";
$c->send_packet(OP_SEND_MSG, $body . 'x', seq => 4);
ok closed_silently($c), "$name - 1 MB + 1 closes";
--- error_log
goim: packet body too long
