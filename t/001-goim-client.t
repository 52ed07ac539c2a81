# Self-check of t/lib/GoimClient.pm without nginx: codecs against the byte
# examples of RFC 6455 and docs/PROTOCOL.md 1.13, then whole conversations with a
# tiny forked fake goim server (TCP and WebSocket) written here.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Digest::SHA qw(sha1);
use MIME::Base64 qw(encode_base64);
use File::Temp qw(tempdir);
use GoimClient qw(:ops :ws have_tls pack_packet unpack_packets ws_frame ws_parse_frame);

# --- codecs against published bytes -------------------------------------------

is unpack('H*', pack_packet(OP_HEARTBEAT, '', seq => 1)),
   '0000001000100001000000020000000' . '1', 'heartbeat bytes (PROTOCOL.md 1.13)';
is unpack('H*', pack_packet(OP_HEARTBEAT_REPLY, pack('N', 42), seq => 1)),
   '00000014001000010000000300000001' . '0000002a', 'heartbeat reply bytes';
is unpack('H*', ws_frame(WS_TEXT, 'Hello', mask => 0)), '810548656c6c6f',
   'RFC 6455 5.7 unmasked Hello';
is unpack('H*', ws_frame(WS_TEXT, 'Hello', mask_key => "\x37\xfa\x21\x3d")),
   '818537fa213d7f9f4d5158', 'RFC 6455 5.7 masked Hello';
is unpack('H*', substr(ws_frame(WS_BINARY, 'x' x 256, mask => 0), 0, 4)),
   '827e0100', '16-bit length';
is unpack('H*', substr(ws_frame(WS_BINARY, 'x' x 65536, mask => 0), 0, 10)),
   '827f0000000000010000', '64-bit length';
is encode_base64(sha1('dGhlIHNhbXBsZSBub25jZQ==' . GoimClient::WS_GUID), ''),
   's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'RFC 6455 1.3 accept value';
{
    my ($f, $n) = ws_parse_frame(ws_frame(WS_BINARY, 'abc' x 50) . 'tail');
    is $n, 2 + 2 + 4 + 150, 'parse consumes one frame';
    is $f->{payload}, 'abc' x 50, 'parse unmasks';
    is_deeply [ws_parse_frame("\x82\x7e\x01")], [undef, 0], 'incomplete frame';
    my @p = unpack_packets(pack_packet(1000, '{"test":1}')
                           . pack_packet(1001, ''));
    is_deeply [map { [$_->{op}, $_->{body}, $_->{packlen}] } @p],
              [[1000, '{"test":1}', 26], [1001, '', 16]], 'unpack_packets';
    ok !eval { unpack_packets(pack_packet(1, 'x') . 'zz'); 1 },
       'unpack_packets dies on trailing bytes';
}

# --- a fake goim server -----------------------------------------------------------

# A self-signed certificate for the TLS runs.
my $certs = tempdir(CLEANUP => 1);
my $have_certs = have_tls() && system("openssl req -x509 -newkey rsa:2048 "
    . "-nodes -subj /CN=localhost -days 2 -keyout $certs/key.pem "
    . "-out $certs/cert.pem >/dev/null 2>&1") == 0;

# Forks a server on a free port; returns ($pid, $port).
sub fake_server {
    my ($ws, $tls) = @_;
    my $l = IO::Socket::INET->new(Listen => 5, LocalAddr => '127.0.0.1',
        LocalPort => 0, Proto => 'tcp', ReuseAddr => 1) or die $!;
    my $pid = fork // die $!;
    if (!$pid) {
        local $SIG{ALRM} = sub { POSIX::_exit(0) };
        alarm 20;                               # never outlive the test
        while (my $c = $l->accept) {
            $c = IO::Socket::SSL->start_SSL($c, SSL_server => 1,
                SSL_cert_file => "$certs/cert.pem",
                SSL_key_file => "$certs/key.pem") or next if $tls;
            eval { serve($c, $ws) };
            close $c;
        }
        POSIX::_exit(0);
    }
    my $port = $l->sockport;
    close $l;
    return ($pid, $port);
}

sub serve {
    my ($c, $ws) = @_;
    my $buf = '';
    my $read = sub { sysread($c, $buf, 65536, length $buf) or die "eof\n" };
    my $send = sub {           # one packet (or OP_RAW body) to the client
        my ($bytes) = @_;
        syswrite $c, $ws ? ws_frame(WS_BINARY, $bytes, mask => 0) : $bytes;
    };
    if ($ws) {
        $read->() until $buf =~ /\r\n\r\n/;
        my ($path) = $buf =~ m{^GET (\S+)};
        my ($key) = $buf =~ /^Sec-WebSocket-Key: (\S+)/mi;
        $buf = '';
        if ($path eq '/deny') {
            syswrite $c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope\n";
            return;
        }
        my $acc = encode_base64(sha1($key . GoimClient::WS_GUID), '');
        syswrite $c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            . "Connection: Upgrade\r\nSec-WebSocket-Accept: $acc\r\n\r\n";
    }
    while (1) {
        my $p;
        if ($ws) {
            my ($f, $n);
            $read->() until (($f, $n) = ws_parse_frame($buf)) && $f;
            substr($buf, 0, $n, '');
            die "unmasked\n" unless $f->{masked};
            if ($f->{opcode} == WS_PING) {
                syswrite $c, ws_frame(WS_PONG, $f->{payload}, mask => 0);
                next;
            }
            next if $f->{opcode} == WS_PONG;
            if ($f->{opcode} == WS_CLOSE) {
                syswrite $c, ws_frame(WS_CLOSE, $f->{payload}, mask => 0);
                return;
            }
            ($p) = unpack_packets($f->{payload});
        } else {
            $read->() while length $buf < 16
                || length $buf < unpack('N', $buf);
            ($p) = unpack_packets(substr($buf, 0, unpack('N', $buf), ''));
        }
        my %reply = (ver => $p->{ver}, seq => $p->{seq});
        my $op = $p->{op};
        if ($op == OP_AUTH) {
            $send->(pack_packet(OP_AUTH_REPLY, '{"key":"k1"}', %reply));
        } elsif ($op == OP_HEARTBEAT) {
            $send->(pack_packet(1000, 'early'));    # a push before the reply
            $send->(pack_packet(OP_HEARTBEAT_REPLY, pack('N', 42), %reply));
        } elsif ($op == OP_SEND_MSG) {              # a room batch
            my $inner = pack_packet(1000, 'a') . pack_packet(1000, 'b');
            if ($ws) { $send->(pack_packet(OP_RAW, $inner)) }
            else     { syswrite $c, $inner }        # TCP: inner packets raw
        } elsif ($op == OP_CHANGE_ROOM) {
            $send->(pack_packet(OP_CHANGE_ROOM_REPLY, $p->{body}, %reply));
        } elsif ($op == 97 && $ws) {                # fragmented, with a ping
            my $pkt = pack_packet(1001, 'fragmented');
            syswrite $c, ws_frame(WS_BINARY, substr($pkt, 0, 10), fin => 0, mask => 0)
                . ws_frame(WS_PING, 'pp', mask => 0)
                . ws_frame(WS_CONT, substr($pkt, 10), mask => 0);
        } elsif ($op == 98) {                       # drop the connection
            return;
        } elsif ($op == 99 && $ws) {                # close with a code
            syswrite $c, ws_frame(WS_CLOSE, pack('n', 1008) . 'policy', mask => 0);
            my $f;
            $read->() until ($f) = ws_parse_frame($buf) and $f;
            # Tells the client, past the closing handshake, what it echoed.
            syswrite $c, $f->{opcode} == WS_CLOSE && length $f->{payload} >= 2
                ? 'echoed ' . unpack('n', $f->{payload}) : 'none';
            return;
        }
    }
}

# --- conversations ------------------------------------------------------------------

for my $run (qw(tcp ws tcp+tls ws+tls)) {
    my ($transport, $tls) = ($run =~ /^(\w+)/, $run =~ /tls/ ? 1 : 0);
    my $ws = $transport eq 'ws';
    my $t = "$run:";
    if ($tls && !$have_certs) {
        SKIP: { skip "$t IO::Socket::SSL or openssl missing", 1 }
        next;
    }
    my ($pid, $port) = fake_server($ws, $tls);
    my %tls = (tls => $tls);

    my $c = GoimClient->new(transport => $transport, port => $port,
                            timeout => 2, %tls);
    is $c->connect, undef, "$t connect";
    is_deeply $c->auth({ mid => 1, key => 'k1', room_id => 'live://1',
                         accepts => [1000] }), { key => 'k1' }, "$t auth reply";
    is $c->{auth_reply}{seq}, 1, "$t auth seq echoed";
    is $c->heartbeat, 42, "$t heartbeat online count";
    is $c->change_room('live://2'), 'live://2', "$t change_room echo";

    my ($early) = $c->read_pushes(1, 1);
    is $early->{body}, 'early', "$t push read while waiting for op 3 is kept";

    $c->send_packet(OP_SEND_MSG, 'hi');
    my @b = $c->read_pushes(2, 2);
    is_deeply [map { "$_->{op}:$_->{body}" } @b], ['1000:a', '1000:b'],
              "$t batch delivered as two packets";
    is $b[0]{raw_batch}, $ws ? 2 : undef, "$t raw_batch marks WS OP_RAW";

    is $c->read_packet(0.2), undef, "$t read_packet times out";
    is $c->error, 'timeout', "$t timeout error";

    if ($ws) {
        $c->send_packet(97, '');
        my $p = $c->read_packet(2);
        is $p && $p->{body}, 'fragmented', "$t fragments reassembled";
        is_deeply $c->{pings}, ['pp'], "$t ping recorded (and answered)";
        $c->send_ws_frame(WS_PING, 'cp');
        ok !$c->read_packet(0.3) && $c->{pongs}[0] eq 'cp', "$t pong recorded";

        $c->send_packet(99, '');
        ok $c->expect_closed(2), "$t server close seen";
        is $c->close_code, 1008, "$t close code";
        is $c->close_reason, 'policy', "$t close reason";
        my $echo = $c->read_packet(1);    # nothing: closed
        ok !$echo, "$t no reads after close";
    } else {
        $c->send_packet(98, '');
        ok $c->expect_closed(2), "$t server close seen";
    }
    $c->close;

    if ($ws) {
        # The server reports, as raw bytes after the closing handshake,
        # the Close frame it got back from us.
        my $d = GoimClient->new(transport => 'ws', port => $port, timeout => 2,
                                %tls);
        $d->connect;
        $d->send_packet(99, '');
        $d->expect_closed(2);
        my $echo = '';
        for (1 .. 20) {     # non-blocking socket (TLS: records may lag)
            IO::Select->new($d->sock)->can_read(0.1);
            sysread $d->sock, $echo, 100, length $echo;
            last if length $echo >= 11;
        }
        is $echo, 'echoed 1008', "$t client echoed the Close code";

        my $x = GoimClient->new(transport => 'ws', port => $port,
                                path => '/deny', %tls);
        like $x->connect, qr/upgrade failed: HTTP 403/, "$t refused upgrade";
        is $x->http_status, 403, "$t status readable";
        is $x->http_body, "nope\n", "$t body readable";

        my $y = GoimClient->new(transport => 'ws', port => $port, %tls);
        $y->connect;
        is $y->ws_close(1000, 'bye', 2), 1000, "$t ws_close gets the echo";
    }

    my $closed = GoimClient->new(transport => $transport, port => $port, %tls);
    $closed->connect;
    $closed->close;
    kill 'TERM', $pid;
    waitpid $pid, 0;
    my $refused = GoimClient->new(transport => $transport, port => $port,
                                  timeout => 1);
    like $refused->connect, qr/connect to 127\.0\.0\.1:$port/,
         "$t connect error string";
}

done_testing();
