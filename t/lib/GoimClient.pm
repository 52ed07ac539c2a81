package GoimClient;

# A goim protocol client for tests (docs/PROTOCOL.md 1).
#
#   TCP:        a byte stream of 16-byte-header packets.
#   WebSocket:  our own RFC 6455 client (masked frames, handshake with
#               Sec-WebSocket-Key and accept check), one packet per message;
#               an OP_RAW (9) message is unpacked into its inner packets.
#   TLS:        either transport over IO::Socket::SSL when it is installed
#               (Debian package libio-socket-ssl-perl).
#
# Besides the happy path it gives protocol-abuse tests raw access: build
# packets with wrong lengths, send arbitrary WebSocket frames, send raw bytes.
# It also has a tiny HTTP/1.1 client (http_request, http_json) for the push
# API; the test harness uses the same one.
#
# Pure Perl, core modules only (plus optional IO::Socket::SSL).
# Every wait has a deadline; nothing here can hang a test.

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use Socket qw(IPPROTO_TCP TCP_NODELAY SOL_SOCKET SO_RCVBUF
              pack_sockaddr_in inet_aton);
use Digest::SHA qw(sha1);
use MIME::Base64 qw(encode_base64);
use JSON::PP ();
use Time::HiRes ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Exporter 'import';

# Operation codes (docs/PROTOCOL.md 1.2).
use constant {
    OP_HANDSHAKE         => 0,  OP_HANDSHAKE_REPLY => 1,
    OP_HEARTBEAT         => 2,  OP_HEARTBEAT_REPLY => 3,
    OP_SEND_MSG          => 4,  OP_SEND_MSG_REPLY  => 5,
    OP_DISCONNECT_REPLY  => 6,
    OP_AUTH              => 7,  OP_AUTH_REPLY      => 8,
    OP_RAW               => 9,
    OP_PROTO_READY       => 10, OP_PROTO_FINISH    => 11,
    OP_CHANGE_ROOM       => 12, OP_CHANGE_ROOM_REPLY => 13,
    OP_SUB               => 14, OP_SUB_REPLY       => 15,
    OP_UNSUB             => 16, OP_UNSUB_REPLY     => 17,
    # ours (docs/PROTOCOL.md 1.14)
    OP_JOIN              => 30, OP_JOIN_REPLY      => 31,
    OP_LEAVE             => 32, OP_LEAVE_REPLY     => 33,
    OP_PRESENCE          => 34,
};

# WebSocket opcodes (RFC 6455 5.2).
use constant {
    WS_CONT => 0, WS_TEXT => 1, WS_BINARY => 2,
    WS_CLOSE => 8, WS_PING => 9, WS_PONG => 10,
};

use constant HEADER_LEN => 16;
use constant WS_GUID    => '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

# Replies to client packets; everything else counts as a push.
my %REPLY_OP = map { $_ => 1 } (OP_HEARTBEAT_REPLY, OP_AUTH_REPLY,
    OP_CHANGE_ROOM_REPLY, OP_SUB_REPLY, OP_UNSUB_REPLY, OP_JOIN_REPLY,
    OP_LEAVE_REPLY);

our @OPS = qw(
    OP_HANDSHAKE OP_HANDSHAKE_REPLY OP_HEARTBEAT OP_HEARTBEAT_REPLY
    OP_SEND_MSG OP_SEND_MSG_REPLY OP_DISCONNECT_REPLY OP_AUTH OP_AUTH_REPLY
    OP_RAW OP_PROTO_READY OP_PROTO_FINISH OP_CHANGE_ROOM OP_CHANGE_ROOM_REPLY
    OP_SUB OP_SUB_REPLY OP_UNSUB OP_UNSUB_REPLY
    OP_JOIN OP_JOIN_REPLY OP_LEAVE OP_LEAVE_REPLY OP_PRESENCE
);
our @WS = qw(WS_CONT WS_TEXT WS_BINARY WS_CLOSE WS_PING WS_PONG);
our @EXPORT_OK = (@OPS, @WS, qw(
    pack_packet unpack_packets ws_frame ws_parse_frame
    http_request http_json have_tls
));
our %EXPORT_TAGS = (ops => \@OPS, ws => \@WS, all => \@EXPORT_OK);

my $JSON = JSON::PP->new->utf8->canonical;

sub have_tls { return eval { require IO::Socket::SSL; 1 } ? 1 : 0 }

sub _now { return Time::HiRes::time() }

# ---------------------------------------------------------------------------
# Packet and frame codecs (plain functions, usable without a connection)
# ---------------------------------------------------------------------------

# pack_packet($op, $body, ver => 1, seq => 0, packlen => .., headerlen => ..)
# packlen/headerlen override the computed header fields (abuse tests).
sub pack_packet {
    my ($op, $body, %o) = @_;
    $body = '' unless defined $body;
    utf8::encode($body) if utf8::is_utf8($body);
    my $plen = defined $o{packlen}   ? $o{packlen}   : HEADER_LEN + length $body;
    my $hlen = defined $o{headerlen} ? $o{headerlen} : HEADER_LEN;
    return pack('l> s> s> l> l>', $plen, $hlen, $o{ver} // 1, $op,
                $o{seq} // 0) . $body;
}

# Parses one packet at the start of $buf: returns ($packet, $consumed),
# (undef, 0) if more bytes are needed, or (undef, -1, $error) if malformed.
sub _parse_packet {
    my ($buf) = @_;
    return (undef, 0) if length $buf < HEADER_LEN;
    my ($plen, $hlen, $ver, $op, $seq) = unpack 'l> s> s> l> l>', $buf;
    return (undef, -1, "bad headerLen $hlen") if $hlen != HEADER_LEN;
    return (undef, -1, "bad packLen $plen") if $plen < HEADER_LEN;
    return (undef, 0) if length $buf < $plen;
    my $p = { packlen => $plen, headerlen => $hlen, ver => $ver, op => $op,
              seq => $seq, body => substr($buf, HEADER_LEN, $plen - HEADER_LEN) };
    return ($p, $plen);
}

# unpack_packets($bytes): the complete packets in $bytes, e.g. an OP_RAW
# body. Dies if the bytes are not an exact sequence of packets.
sub unpack_packets {
    my ($buf) = @_;
    my @out;
    while (length $buf) {
        my ($p, $n, $err) = _parse_packet($buf);
        die "unpack_packets: $err\n" if $n < 0;
        die "unpack_packets: truncated packet\n" if $n == 0;
        push @out, $p;
        substr($buf, 0, $n, '');
    }
    return @out;
}

# ws_frame($opcode, $payload, fin => 1, mask => 1, rsv => 0, mask_key => ..,
#          len => ..) -> bytes of one frame. `len` overrides the length field
# (abuse tests); `rsv` is the 3 RSV bits as a number 0..7.
sub ws_frame {
    my ($opcode, $payload, %o) = @_;
    $payload = '' unless defined $payload;
    utf8::encode($payload) if utf8::is_utf8($payload);
    my $fin  = exists $o{fin}  ? $o{fin}  : 1;
    my $mask = exists $o{mask} ? $o{mask} : 1;
    my $len  = defined $o{len} ? $o{len}  : length $payload;

    my $b0 = ($fin ? 0x80 : 0) | ((($o{rsv} // 0) & 7) << 4) | ($opcode & 0x0f);
    my $mbit = $mask ? 0x80 : 0;
    my $hdr = pack 'C', $b0;
    if ($len < 126) {
        $hdr .= pack 'C', $mbit | $len;
    } elsif ($len < 65536) {
        $hdr .= pack 'Cn', $mbit | 126, $len;
    } else {
        $hdr .= pack 'CQ>', $mbit | 127, $len;
    }
    return $hdr . $payload unless $mask;

    my $key = defined $o{mask_key} ? $o{mask_key} : _random_bytes(4);
    return $hdr . $key . _mask($key, $payload);
}

sub _mask {
    my ($key, $data) = @_;
    return '' unless length $data;
    my $stream = substr($key x (int(length($data) / 4) + 1), 0, length $data);
    return $data ^ $stream;
}

# ws_parse_frame($buf) -> ($frame, $consumed) or (undef, 0) if incomplete.
# $frame = {fin, rsv, opcode, masked, payload} (payload unmasked).
sub ws_parse_frame {
    my ($buf) = @_;
    return (undef, 0) if length $buf < 2;
    my ($b0, $b1) = unpack 'CC', $buf;
    my $len = $b1 & 0x7f;
    my $off = 2;
    if ($len == 126) {
        return (undef, 0) if length $buf < 4;
        $len = unpack 'n', substr($buf, 2, 2);
        $off = 4;
    } elsif ($len == 127) {
        return (undef, 0) if length $buf < 10;
        $len = unpack 'Q>', substr($buf, 2, 8);
        $off = 10;
    }
    my $masked = $b1 & 0x80 ? 1 : 0;
    my $key = '';
    if ($masked) {
        return (undef, 0) if length $buf < $off + 4;
        $key = substr($buf, $off, 4);
        $off += 4;
    }
    return (undef, 0) if length $buf < $off + $len;
    my $payload = substr($buf, $off, $len);
    $payload = _mask($key, $payload) if $masked;
    return ({ fin => $b0 & 0x80 ? 1 : 0, rsv => ($b0 >> 4) & 7,
              opcode => $b0 & 0x0f, masked => $masked, payload => $payload },
            $off + $len);
}

sub _random_bytes {
    my ($n) = @_;
    return join '', map { chr int rand 256 } 1 .. $n;
}

# ---------------------------------------------------------------------------
# Connection
# ---------------------------------------------------------------------------

# GoimClient->new(transport => 'tcp'|'ws', host => '127.0.0.1', port => N,
#     path => '/sub', tls => 0, timeout => 5,
#     headers => {Name => value, ...}   extra/overriding upgrade headers;
#                                       value undef removes a default header
#     auto_pong => 1                     answer server pings
#     rcvbuf => bytes                    SO_RCVBUF set before connect(), so
#                                        the window the client advertises
#                                        stays small (slow-reader tests))
sub new {
    my ($class, %o) = @_;
    my $self = bless {
        transport => $o{transport} // 'tcp',
        host      => $o{host} // '127.0.0.1',
        port      => $o{port},
        path      => $o{path} // '/sub',
        tls       => $o{tls} // 0,
        tls_opts  => $o{tls_opts} // {},
        timeout   => $o{timeout} // 5,
        headers   => $o{headers} // {},
        auto_pong => $o{auto_pong} // 1,
        rcvbuf    => $o{rcvbuf},
        seq       => 0,
        rbuf      => '',
        inbox     => [],     # parsed packets not yet returned
        closed    => 0,
        error     => undef,
        pings     => [],     # payloads of server pings
        pongs     => [],     # payloads of server pongs
    }, $class;
    die "GoimClient: port is required\n" unless $self->{port};
    die "GoimClient: transport must be tcp or ws\n"
        unless $self->{transport} =~ /^(?:tcp|ws)$/;
    return $self;
}

sub is_ws       { return $_[0]{transport} eq 'ws' }
sub error       { return $_[0]{error} }
sub is_closed   { return $_[0]{closed} }
sub sock        { return $_[0]{sock} }
sub http_status { return $_[0]{http_status} }
sub http_head   { return $_[0]{http_head} }
sub http_body   { return $_[0]{http_body} }
sub close_code  { return $_[0]{close_code} }
sub close_reason{ return $_[0]{close_reason} }

# Records an error; returns undef in scalar and () in list context, so
# `return $self->_fail(..)` suits both kinds of callers.
sub _fail {
    my ($self, $err) = @_;
    $self->{error} = $err;
    return;
}

# Connects (and upgrades, for ws). Returns undef on success, else an error
# string; after a failed upgrade http_status/http_head/http_body tell what
# the server answered (http_status undef: no HTTP response at all).
sub connect {
    my ($self) = @_;
    my $deadline = _now() + $self->{timeout};
    my $sock;
    if ($self->{rcvbuf}) {
        $sock = IO::Socket::INET->new(Proto => 'tcp')
            or return $self->{error} = "socket: $!";
        setsockopt($sock, SOL_SOCKET, SO_RCVBUF, $self->{rcvbuf})
            or return $self->{error} = "SO_RCVBUF: $!";
        $sock->connect(pack_sockaddr_in($self->{port},
                                        inet_aton($self->{host})))
            or return $self->{error} =
                "connect to $self->{host}:$self->{port}: $!";
    } else {
        $sock = IO::Socket::INET->new(
            PeerAddr => $self->{host}, PeerPort => $self->{port},
            Proto => 'tcp', Timeout => $self->{timeout},
        ) or return $self->{error} =
            "connect to $self->{host}:$self->{port}: $@";
    }
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    binmode $sock;

    if ($self->{tls}) {
        return $self->{error} = "tls requested but IO::Socket::SSL is missing "
            . "(install libio-socket-ssl-perl)" unless have_tls();
        IO::Socket::SSL->start_SSL($sock,
            SSL_verify_mode => 0,                  # tests use self-signed certs
            SSL_hostname => $self->{host} =~ /^[\d.]+$/ ? '' : $self->{host},
            Timeout => $self->{timeout},
            %{ $self->{tls_opts} },
        ) or return $self->{error} = "tls handshake: "
            . ($IO::Socket::SSL::SSL_ERROR || 'failed');
    }
    # Non-blocking: every read and write below honours a deadline.
    $sock->blocking(0);
    $self->{sock} = $sock;
    $self->{sel}  = IO::Select->new($sock);
    $self->{closed} = 0;
    $self->{error} = undef;
    return undef unless $self->is_ws;
    return $self->_ws_handshake($deadline);
}

sub _ws_handshake {
    my ($self, $deadline) = @_;
    my $key = encode_base64(_random_bytes(16), '');
    my %h = (
        'Host'                  => "$self->{host}:$self->{port}",
        'Upgrade'               => 'websocket',
        'Connection'            => 'Upgrade',
        'Sec-WebSocket-Key'     => $key,
        'Sec-WebSocket-Version' => '13',
    );
    my @order = qw(Host Upgrade Connection Sec-WebSocket-Key
                   Sec-WebSocket-Version);
    for my $name (sort keys %{ $self->{headers} }) {
        push @order, $name unless exists $h{$name};
        $h{$name} = $self->{headers}{$name};
    }
    my $req = "GET $self->{path} HTTP/1.1\r\n"
        . join('', map { "$_: $h{$_}\r\n" } grep { defined $h{$_} } @order)
        . "\r\n";
    $self->_write_all($req, $deadline) or return $self->{error};

    my $head = $self->_read_http_head($deadline);
    unless (defined $head) {
        $self->{http_status} = undef;
        return $self->{error} = "upgrade failed: no HTTP response ("
            . ($self->{error} // '') . ")";
    }
    $self->{http_head} = $head;
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})};
    $self->{http_status} = $status;
    my $hdrs = _parse_headers($head);
    if (!defined $status || $status != 101) {
        $self->_read_failed_upgrade_body($hdrs, $deadline);
        return $self->{error} = "upgrade failed: HTTP " . ($status // '?');
    }
    my $want = encode_base64(sha1($key . WS_GUID), '');
    return $self->{error} = "upgrade failed: bad Upgrade header"
        unless lc($hdrs->{upgrade} // '') eq 'websocket';
    return $self->{error} = "upgrade failed: bad Connection header"
        unless ($hdrs->{connection} // '') =~ /\bupgrade\b/i;
    return $self->{error} = "upgrade failed: bad Sec-WebSocket-Accept"
        unless ($hdrs->{'sec-websocket-accept'} // '') eq $want;
    return undef;
}

# Keeps a rejected upgrade's body readable (bounded by Content-Length/EOF).
sub _read_failed_upgrade_body {
    my ($self, $hdrs, $deadline) = @_;
    my $want = $hdrs->{'content-length'};
    my $short = _now() + 1 < $deadline ? _now() + 1 : $deadline;
    while (!defined $want || length $self->{rbuf} < $want) {
        last unless $self->_fill($short);
    }
    $self->{http_body} = $self->{rbuf};
    $self->{rbuf} = '';
}

sub _read_http_head {
    my ($self, $deadline) = @_;
    while ((my $i = index $self->{rbuf}, "\r\n\r\n") < 0) {
        return $self->_fail('response head too large')
            if length $self->{rbuf} > 65536;
        return undef unless $self->_fill($deadline);
    }
    my $i = index $self->{rbuf}, "\r\n\r\n";
    my $head = substr($self->{rbuf}, 0, $i + 4, '');
    return $head;
}

# ---------------------------------------------------------------------------
# Low-level I/O (every wait bounded by a deadline)
# ---------------------------------------------------------------------------

# Reads more bytes into rbuf. Returns 1, or undef/() with error
# 'timeout' | 'closed' | 'reset' | "read: $!".
# The socket is non-blocking (TLS too, after its handshake), so a read can
# never outlive the deadline, not even on a TLS record without app data.
sub _fill {
    my ($self, $deadline) = @_;
    return $self->_fail('closed') if $self->{closed} || !$self->{sock};
    my $sock = $self->{sock};
    while (1) {
        my $n = sysread $sock, my $chunk, 65536;
        if (defined $n) {
            if ($n == 0) {
                $self->{closed} = 1;
                return $self->_fail('closed');
            }
            $self->{rbuf} .= $chunk;
            return 1;
        }
        unless ($!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR}) {
            my $err = $!{ECONNRESET} ? 'reset' : "read: $!";
            $self->{closed} = 1;
            $self->{close_error} = $err;
            return $self->_fail($err);
        }
        $self->_wait_io(0, $deadline) or return $self->_fail('timeout');
    }
}

# Waits until the socket can make progress; TLS may need the opposite
# direction (SSL_WANT_READ while writing, SSL_WANT_WRITE while reading).
sub _wait_io {
    my ($self, $writing, $deadline) = @_;
    my $left = $deadline - _now();
    return 0 if $left <= 0;
    if ($self->{tls}) {
        my $e = $IO::Socket::SSL::SSL_ERROR // 0;
        $writing = 1 if $e == IO::Socket::SSL::SSL_WANT_WRITE();
        $writing = 0 if $e == IO::Socket::SSL::SSL_WANT_READ();
    }
    my $sel = $self->{sel};
    $writing ? $sel->can_write($left) : $sel->can_read($left);
    return 1;
}

sub _write_all {
    my ($self, $bytes, $deadline) = @_;
    return $self->_fail('not connected') unless $self->{sock};
    $deadline //= _now() + $self->{timeout};
    my $off = 0;
    local $SIG{PIPE} = 'IGNORE';
    while ($off < length $bytes) {
        my $n = syswrite $self->{sock}, $bytes, length($bytes) - $off, $off;
        if (defined $n) {
            $off += $n;
            next;
        }
        return $self->_fail("write: $!")
            unless $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
        $self->_wait_io(1, $deadline) or return $self->_fail('write timeout');
    }
    return 1;
}

# send_raw($bytes): writes the bytes as they are (no framing). 1 or undef.
sub send_raw {
    my ($self, $bytes) = @_;
    return $self->_write_all($bytes);
}

# send_ws_frame($opcode, $payload, fin => 1, mask => 1, rsv => 0, len => ..)
sub send_ws_frame {
    my ($self, $opcode, $payload, %o) = @_;
    return $self->_write_all(ws_frame($opcode, $payload, %o));
}

# ---------------------------------------------------------------------------
# Packets
# ---------------------------------------------------------------------------

# send_packet($op, $body, ver => 1, seq => n, packlen =>, headerlen =>,
#             ws_opcode => WS_BINARY, mask => 1)
# seq defaults to an incrementing counter. Returns the seq sent, or undef.
sub send_packet {
    my ($self, $op, $body, %o) = @_;
    my $seq = defined $o{seq} ? $o{seq} : ++$self->{seq};
    my $pkt = pack_packet($op, $body, %o, seq => $seq);
    if ($self->is_ws) {
        $pkt = ws_frame($o{ws_opcode} // WS_BINARY, $pkt,
                        mask => $o{mask} // 1);
    }
    return $self->_write_all($pkt) ? $seq : undef;
}

# Reads the next unit from the wire: a list of packets (several for a
# WebSocket OP_RAW), or an empty list with error set.
sub _read_wire {
    my ($self, $deadline) = @_;
    return $self->is_ws ? $self->_read_ws_packets($deadline)
                        : $self->_read_tcp_packet($deadline);
}

sub _read_tcp_packet {
    my ($self, $deadline) = @_;
    while (1) {
        my ($p, $n, $err) = _parse_packet($self->{rbuf});
        return $self->_fail("protocol: $err") if $n < 0;
        if ($p) {
            substr($self->{rbuf}, 0, $n, '');
            return ($p);
        }
        $self->_fill($deadline) or return ();
    }
}

sub _read_ws_packets {
    my ($self, $deadline) = @_;
    my ($opcode, $msg) = $self->_read_ws_message($deadline) or return ();
    $self->{last_message} = $msg;
    my ($p, $n, $err) = _parse_packet($msg);
    return $self->_fail("protocol: $err") if $n < 0;
    return $self->_fail("protocol: message shorter than its packLen")
        unless $p;
    return $self->_fail("protocol: packLen $n != message length "
                        . length($msg)) if $n != length $msg;
    $p->{ws_opcode} = $opcode;
    return ($p) unless $p->{op} == OP_RAW;

    my @inner = eval { unpack_packets($p->{body}) };
    return $self->_fail("protocol: OP_RAW body: $@") if $@;
    $_->{raw_batch} = scalar @inner for @inner;   # batch size, for tests
    return @inner;
}

# One complete data message; handles control frames on the way.
# Returns ($opcode, $payload) or an empty list with error set.
sub _read_ws_message {
    my ($self, $deadline) = @_;
    my ($msg_op, $msg);
    while (1) {
        my $f = $self->_read_ws_frame($deadline) or return ();
        my $op = $f->{opcode};
        $self->{server_masked}++ if $f->{masked};   # RFC: server must not mask
        if ($op == WS_PING) {
            push @{ $self->{pings} }, $f->{payload};
            $self->send_ws_frame(WS_PONG, $f->{payload}) if $self->{auto_pong};
            next;
        }
        if ($op == WS_PONG) {
            push @{ $self->{pongs} }, $f->{payload};
            next;
        }
        if ($op == WS_CLOSE) {
            $self->_got_close($f->{payload});
            return ();
        }
        if ($op == WS_CONT) {
            return $self->_fail('protocol: continuation without start')
                unless defined $msg;
            $msg .= $f->{payload};
        } elsif ($op == WS_TEXT || $op == WS_BINARY) {
            return $self->_fail('protocol: new message inside fragmented one')
                if defined $msg;
            ($msg_op, $msg) = ($op, $f->{payload});
        } else {
            return $self->_fail("protocol: unknown opcode $op");
        }
        return ($msg_op, $msg) if $f->{fin};
    }
}

sub _read_ws_frame {
    my ($self, $deadline) = @_;
    while (1) {
        my ($f, $n) = ws_parse_frame($self->{rbuf});
        if ($f) {
            substr($self->{rbuf}, 0, $n, '');
            return $f;
        }
        $self->_fill($deadline) or return undef;
    }
}

# A server Close: record code/reason, echo it (RFC 6455 5.5.1), shut down.
sub _got_close {
    my ($self, $payload) = @_;
    if (length $payload >= 2) {
        $self->{close_code}   = unpack 'n', $payload;
        $self->{close_reason} = substr $payload, 2;
    } else {
        $self->{close_code}   = undef;
        $self->{close_reason} = '';
    }
    $self->{close_frame} = 1;
    unless ($self->{sent_close}) {
        $self->{sent_close} = 1;
        $self->send_ws_frame(WS_CLOSE, substr($payload, 0, 2));
    }
    $self->{closed} = 1;
    $self->_fail('closed');
}

# read_packet($timeout) -> {ver, op, seq, body, packlen, headerlen,
#   raw_batch (ws: size of the OP_RAW batch it came in)} or undef
#   (error(): 'timeout', 'closed', 'reset', 'protocol: ...').
sub read_packet {
    my ($self, $timeout) = @_;
    my $deadline = _now() + ($timeout // $self->{timeout});
    until (@{ $self->{inbox} }) {
        my @p = $self->_read_wire($deadline) or return undef;
        push @{ $self->{inbox} }, @p;
    }
    return shift @{ $self->{inbox} };
}

# wait_op($op | [$op, ...] | sub { my $p = shift; ... }, $timeout)
# The first packet that matches; packets read meanwhile stay queued for
# later read_packet/read_pushes calls.
sub wait_op {
    my ($self, $want, $timeout) = @_;
    my $match = ref $want eq 'CODE' ? $want
        : do { my %w = map { $_ => 1 } ref $want ? @$want : ($want);
               sub { $w{ $_[0]{op} } } };
    my $deadline = _now() + ($timeout // $self->{timeout});
    my $inbox = $self->{inbox};
    my $i = 0;
    while (1) {
        for (; $i < @$inbox; $i++) {
            return splice @$inbox, $i, 1 if $match->($inbox->[$i]);
        }
        my @p = $self->_read_wire($deadline) or return undef;
        push @$inbox, @p;
    }
}

# read_pushes($count, $timeout): up to $count pushes (packets whose op is not
# a reply op 3/8/13/15/17) within $timeout in total. Fewer on timeout/close.
sub read_pushes {
    my ($self, $count, $timeout) = @_;
    my $deadline = _now() + ($timeout // $self->{timeout});
    my @got;
    while (@got < $count) {
        my $p = $self->wait_op(sub { !$REPLY_OP{ $_[0]{op} } },
                               $deadline - _now()) or last;
        push @got, $p;
    }
    return @got;
}

# expect_closed($timeout): true once the server has closed the connection
# (EOF, reset, or a WebSocket Close frame: see close_code/close_reason).
# Packets that arrive before that are kept in the inbox.
sub expect_closed {
    my ($self, $timeout) = @_;
    my $deadline = _now() + ($timeout // $self->{timeout});
    until ($self->{closed}) {
        my @p = $self->_read_wire($deadline);
        push @{ $self->{inbox} }, @p;
        next if @p;
        last if $self->{closed};
        return 0 if ($self->{error} // '') eq 'timeout';
        # A protocol error: the stream is unusable; keep reading raw bytes.
        $self->{rbuf} = '';
        $self->_fill($deadline) or return $self->{closed} ? 1 : 0;
    }
    return 1;
}

# ---------------------------------------------------------------------------
# goim operations
# ---------------------------------------------------------------------------

# auth({mid=>.., key=>.., room_id=>.., accepts=>[..]} | $raw_body, %packet_opts)
# Sends op 7 and waits for op 8. Returns the decoded reply body (a hash;
# {} for an empty body, {_raw => ..} if it is not JSON), undef on failure.
sub auth {
    my ($self, $token, %o) = @_;
    my $body = ref $token ? $JSON->encode($token) : $token;
    my $timeout = delete $o{timeout};
    $self->send_packet(OP_AUTH, $body, %o) or return undef;
    my $p = $self->wait_op(OP_AUTH_REPLY, $timeout) or return undef;
    $self->{auth_reply} = $p;
    return {} unless length $p->{body};
    my $d = eval { $JSON->decode($p->{body}) };
    return ref $d eq 'HASH' ? $d : { _raw => $p->{body} };
}

# heartbeat(%packet_opts): op 2 -> op 3; returns the online count.
sub heartbeat {
    my ($self, %o) = @_;
    my $timeout = delete $o{timeout};
    $self->send_packet(OP_HEARTBEAT, '', %o) or return undef;
    my $p = $self->wait_op(OP_HEARTBEAT_REPLY, $timeout) or return undef;
    $self->{heartbeat_reply} = $p;
    return $self->_fail('heartbeat reply body is ' . length($p->{body})
                        . ' bytes, not 4') unless length $p->{body} == 4;
    return unpack 'l>', $p->{body};
}

# change_room($room) / sub_ops(@ops) / unsub_ops(@ops): the reply body.
sub change_room {
    my ($self, $room) = @_;
    return $self->_request(OP_CHANGE_ROOM, $room, OP_CHANGE_ROOM_REPLY);
}

sub sub_ops {
    my ($self, @ops) = @_;
    return $self->_request(OP_SUB, join(',', @ops), OP_SUB_REPLY);
}

sub unsub_ops {
    my ($self, @ops) = @_;
    return $self->_request(OP_UNSUB, join(',', @ops), OP_UNSUB_REPLY);
}

# join_rooms(@ids) / leave_rooms(@ids): op 30 / op 32 with the ids as a
# JSON array (or, with one scalar ref, that raw body); the decoded reply
# ({rooms => [...], error => ...}), undef without one.
sub join_rooms {
    my ($self, @ids) = @_;
    return $self->_rooms_request(OP_JOIN, OP_JOIN_REPLY, @ids);
}

sub leave_rooms {
    my ($self, @ids) = @_;
    return $self->_rooms_request(OP_LEAVE, OP_LEAVE_REPLY, @ids);
}

sub _rooms_request {
    my ($self, $op, $reply_op, @ids) = @_;
    my $body = @ids == 1 && ref $ids[0] eq 'SCALAR' ? ${ $ids[0] }
             : $JSON->encode([@ids]);
    my $r = $self->_request($op, $body, $reply_op);
    return undef unless defined $r;
    my $d = eval { $JSON->decode($r) };
    return ref $d eq 'HASH' ? $d : { _raw => $r };
}

sub _request {
    my ($self, $op, $body, $reply_op) = @_;
    $self->send_packet($op, $body) or return undef;
    my $p = $self->wait_op($reply_op) or return undef;
    return $p->{body};
}

# ws_close($code, $reason, $timeout): sends a Close frame and waits for the
# server's Close; returns the server's code (or undef), closes the socket.
sub ws_close {
    my ($self, $code, $reason, $timeout) = @_;
    my $payload = defined $code ? pack('n', $code) . ($reason // '') : '';
    $self->{sent_close} = 1;
    $self->send_ws_frame(WS_CLOSE, $payload);
    $self->expect_closed($timeout);
    my $got = $self->{close_frame} ? $self->{close_code} : undef;
    $self->close(abort => 1);
    return $got;
}

# close(abort => 0): for ws a Close 1000 first (unless abort), then the
# socket is closed.
sub close {
    my ($self, %o) = @_;
    return unless $self->{sock};
    if ($self->is_ws && !$self->{closed} && !$self->{sent_close} && !$o{abort}) {
        $self->{sent_close} = 1;
        $self->send_ws_frame(WS_CLOSE, pack('n', 1000));
    }
    if ($self->{tls}) {
        $self->{sock}->close(SSL_no_shutdown => 1);
    } else {
        CORE::close($self->{sock});
    }
    delete @$self{qw(sock sel)};
    $self->{closed} = 1;
    return 1;
}

sub DESTROY {
    my ($self) = @_;
    local ($@, $!, $?);
    $self->close(abort => 1) if $self->{sock};
}

# ---------------------------------------------------------------------------
# HTTP/1.1 client (push API, harness requests)
# ---------------------------------------------------------------------------

sub _parse_headers {
    my ($head) = @_;
    my %h;
    for my $line (split /\r\n/, $head) {
        next unless $line =~ /^([^:\s]+):\s*(.*?)\s*$/;
        my $k = lc $1;
        $h{$k} = defined $h{$k} ? "$h{$k}, $2" : $2;
    }
    return \%h;
}

# http_request($method, $host, $port, $path_with_query, $body, %opt)
#   opt: headers => {Name => v} or ["Name: v", ...], timeout => 5, tls => 0,
#        http10 => 0
# Returns ($status, $body, \%headers (lower-case names), $raw_head);
# on failure ($status undef, "error: ...").
sub http_request {
    my ($method, $host, $port, $path, $body, %o) = @_;
    my $timeout = $o{timeout} // 5;
    my $deadline = _now() + $timeout;
    my $c = GoimClient->new(transport => 'tcp', host => $host, port => $port,
                            tls => $o{tls}, timeout => $timeout);
    my $err = $c->connect;
    return (undef, "error: $err") if $err;

    my @hdr = ref $o{headers} eq 'HASH'
        ? map { "$_: $o{headers}{$_}" } sort keys %{ $o{headers} }
        : @{ $o{headers} // [] };
    my %have = map { /^([^:]+):/ ? (lc $1 => 1) : () } @hdr;
    unshift @hdr, "Host: $host:$port" unless $have{host};
    push @hdr, 'Connection: close' unless $have{connection};
    if (defined $body) {
        utf8::encode($body) if utf8::is_utf8($body);
        push @hdr, 'Content-Length: ' . length $body
            unless $have{'content-length'} || $have{'transfer-encoding'};
    }
    my $proto = $o{http10} ? 'HTTP/1.0' : 'HTTP/1.1';
    my $req = "$method $path $proto\r\n" . join('', map { "$_\r\n" } @hdr)
        . "\r\n" . ($body // '');
    $c->_write_all($req, $deadline) or return (undef, "error: $c->{error}");

    my $head = $c->_read_http_head($deadline)
        // return (undef, "error: no response head ($c->{error})");
    my ($status) = $head =~ m{^HTTP/\d\.\d (\d{3})}
        or return (undef, "error: bad status line");
    my $h = _parse_headers($head);
    my $resp = _read_http_body($c, $method, $status, $h, $deadline);
    return (undef, "error: $resp->{error}") if $resp->{error};
    $c->close;
    return ($status, $resp->{body}, $h, $head);
}

sub _read_http_body {
    my ($c, $method, $status, $h, $deadline) = @_;
    return { body => '' }
        if $method eq 'HEAD' || $status =~ /^(?:1\d\d|204|304)$/;
    if (($h->{'transfer-encoding'} // '') =~ /chunked/i) {
        my $body = '';
        while (1) {
            my $size_re = qr/\A([0-9a-fA-F]+)[^\r\n]*\r\n/;
            until ($c->{rbuf} =~ $size_re) {
                $c->_fill($deadline)
                    or return { error => "chunk size: $c->{error}" };
            }
            $c->{rbuf} =~ $size_re;
            my ($hexlen, $line) = ($1, $+[0]);
            my $len = hex $hexlen;
            until (length $c->{rbuf} >= $line + $len + 2) {
                $c->_fill($deadline)
                    or return { error => "chunk data: $c->{error}" };
            }
            $body .= substr($c->{rbuf}, $line, $len);
            substr($c->{rbuf}, 0, $line + $len + 2, '');
            return { body => $body } if $len == 0;   # trailers ignored
        }
    }
    if (defined(my $len = $h->{'content-length'})) {
        until (length $c->{rbuf} >= $len) {
            $c->_fill($deadline) or return { error => "body: $c->{error}" };
        }
        return { body => substr($c->{rbuf}, 0, $len) };
    }
    1 while $c->_fill($deadline);                  # read until EOF
    return { error => 'body: timeout before EOF' }
        if ($c->{error} // '') eq 'timeout';
    return { body => $c->{rbuf} };
}

# http_json(...same args as http_request...) -> ($status, $decoded, $raw_body)
# $decoded is undef if the body is not JSON.
sub http_json {
    my ($status, $body) = http_request(@_);
    return ($status, undef, $body) unless defined $status;
    my $d = eval { $JSON->decode($body) };
    return ($status, $d, $body);
}

1;

__END__

=head1 NAME

GoimClient - goim TCP/WebSocket protocol client for tests

=head1 SYNOPSIS

    use GoimClient qw(:ops http_json);

    my $c = GoimClient->new(transport => 'ws', port => $ENV{TEST_NGINX_SERVER_PORT});
    my $err = $c->connect;                    # undef on success
    my $reply = $c->auth({ mid => 1, key => 'k1', room_id => 'live://1',
                           accepts => [1000] });
    my $online = $c->heartbeat;
    my ($status, $json) = http_json(POST => '127.0.0.1', $port,
                                    '/goim/push/keys?operation=1000&keys=k1', 'hi');
    my ($push) = $c->read_pushes(1, 2);       # {op => 1000, body => 'hi', ...}

=cut
