package GoimProto;

# Protobuf encoding of goim's messages (proto/goim.proto) and goim packets,
# written out by hand for tests: the wire format is small (varints and
# length-delimited fields), and encoding it here keeps the tests
# independent of the C code they check.
#
# Encoders follow proto3: scalar fields equal to 0 or '' are left out,
# sub-messages given (even empty) are written, repeated strings are all
# written (empty ones too). Fields a caller leaves undef are left out.
#
#   packet($op, $body, ver => 1, seq => 0)      one goim packet (16-byte header)
#   proto(op => .., body => .., ver => .., seq => ..)       goim.Proto
#   raw_proto(@packets)          Proto{ver 1, op 9, body = the packets}
#   push_msg_req(keys => [..], proto => $proto, proto_op => ..)
#   broadcast_req(proto_op => .., proto => $proto, speed => ..)
#   broadcast_room_req(room => .., proto => $proto, epoch => .., offsets => [..])
#   comet_push(push => $req | room => $req | broadcast => $req)
#   comet_push_batch(@comet_pushes)
#   push_msg(type => .., operation => .., speed => .., server => ..,
#            room => .., keys => [..], msg => ..)         goim.PushMsg
#
# Shorthands for the job's usual requests (OP_RAW protos, one packet per
# message, ver 1 and seq 0 as goim's job builds them):
#   keys_item($op, \@keys, @bodies)     CometPush{push}
#   room_item($room, $op, @bodies)      CometPush{room}, one packet per body
#   all_item($op, $body, $speed)        CometPush{broadcast}
#
# decode($bytes) -> [[$field, $wire_type, $value], ...]: one level of a
# message (varints as numbers, length-delimited fields as bytes); dies on
# malformed input. For checking what another part wrote.

use strict;
use warnings;

use Exporter 'import';

our @EXPORT_OK = qw(
    varint packet proto raw_proto push_msg_req broadcast_req
    broadcast_room_req comet_push comet_push_batch push_msg
    keys_item room_item all_item decode
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

use constant { WT_VARINT => 0, WT_LEN => 2 };
use constant OP_RAW => 9;

# Base-128 varint; a negative int32/int64 is its 64-bit two's complement
# (10 bytes), as protobuf writes it.
sub varint {
    my ($n) = @_;
    my $u = $n < 0 ? unpack('Q<', pack('q<', $n)) : $n;
    my $out = '';
    while ($u >= 0x80) {
        $out .= chr(($u & 0x7f) | 0x80);
        $u >>= 7;
    }
    return $out . chr($u);
}

sub _key { return varint(($_[0] << 3) | $_[1]) }

sub _int {
    my ($field, $v) = @_;
    return '' unless $v;
    return _key($field, WT_VARINT) . varint($v);
}

sub _bytes {
    my ($field, $v, $always) = @_;
    return '' unless defined $v && (length $v || $always);
    utf8::encode($v) if utf8::is_utf8($v);
    return _key($field, WT_LEN) . varint(length $v) . $v;
}

sub _msg { return defined $_[1] ? _bytes($_[0], $_[1], 1) : '' }

sub _repeated {
    my ($field, $list) = @_;
    return join '', map { _bytes($field, $_, 1) } @{ $list // [] };
}

sub packet {
    my ($op, $body, %o) = @_;
    $body //= '';
    utf8::encode($body) if utf8::is_utf8($body);
    return pack('l> s> s> l> l>', 16 + length $body, 16, $o{ver} // 1, $op,
                $o{seq} // 0) . $body;
}

# goim.Proto {int32 ver = 1; int32 op = 2; int32 seq = 3; bytes body = 4}
sub proto {
    my (%o) = @_;
    return _int(1, $o{ver}) . _int(2, $o{op}) . _int(3, $o{seq})
        . _bytes(4, $o{body});
}

sub raw_proto { return proto(ver => 1, op => OP_RAW, body => join '', @_) }

# goim.PushMsgReq {repeated string keys = 1; Proto proto = 2;
#                  int32 protoOp = 3}
sub push_msg_req {
    my (%o) = @_;
    return _repeated(1, $o{keys}) . _msg(2, $o{proto})
        . _int(3, $o{proto_op});
}

# goim.BroadcastReq {int32 protoOp = 1; Proto proto = 2; int32 speed = 3}
sub broadcast_req {
    my (%o) = @_;
    return _int(1, $o{proto_op}) . _msg(2, $o{proto}) . _int(3, $o{speed});
}

# goim.BroadcastRoomReq {string roomID = 1; Proto proto = 2;
#   string epoch = 3; repeated int64 offsets = 4 (packed)}
sub broadcast_room_req {
    my (%o) = @_;
    return _bytes(1, $o{room}) . _msg(2, $o{proto}) . _bytes(3, $o{epoch})
        . ($o{offsets}
           ? _bytes(4, join('', map { varint($_) } @{ $o{offsets} }), 1)
           : '');
}

# goim.CometPush {oneof req {PushMsgReq push = 1; BroadcastRoomReq room = 2;
#                            BroadcastReq broadcast = 3}}
sub comet_push {
    my (%o) = @_;
    return _msg(1, $o{push}) . _msg(2, $o{room}) . _msg(3, $o{broadcast});
}

# goim.CometPushBatch {repeated CometPush pushes = 1}
sub comet_push_batch { return join '', map { _bytes(1, $_, 1) } @_ }

# goim.PushMsg {Type type = 1; int32 operation = 2; int32 speed = 3;
#   string server = 4; string room = 5; repeated string keys = 6;
#   bytes msg = 7}
sub push_msg {
    my (%o) = @_;
    return _int(1, $o{type}) . _int(2, $o{operation}) . _int(3, $o{speed})
        . _bytes(4, $o{server}) . _bytes(5, $o{room})
        . _repeated(6, $o{keys}) . _bytes(7, $o{msg});
}

sub keys_item {
    my ($op, $keys, @bodies) = @_;
    return comet_push(push => push_msg_req(keys => $keys, proto_op => $op,
        proto => raw_proto(map { packet($op, $_) } @bodies)));
}

sub room_item {
    my ($room, $op, @bodies) = @_;
    return comet_push(room => broadcast_room_req(room => $room,
        proto => raw_proto(map { packet($op, $_) } @bodies)));
}

sub all_item {
    my ($op, $body, $speed) = @_;
    return comet_push(broadcast => broadcast_req(proto_op => $op,
        speed => $speed, proto => raw_proto(packet($op, $body))));
}

sub _read_varint {
    my ($buf, $pos) = @_;
    my ($v, $shift) = (0, 0);
    while (1) {
        die "decode: truncated varint\n" if $$pos >= length $$buf;
        my $b = ord substr $$buf, $$pos++, 1;
        die "decode: varint longer than 10 bytes\n" if $shift > 63;
        $v |= ($b & 0x7f) << $shift;
        return $v unless $b & 0x80;
        $shift += 7;
    }
}

sub decode {
    my ($buf) = @_;
    my ($pos, @fields) = (0);
    while ($pos < length $buf) {
        my $key = _read_varint(\$buf, \$pos);
        my ($field, $wt) = ($key >> 3, $key & 7);
        die "decode: field number 0\n" unless $field;
        if ($wt == WT_VARINT) {
            push @fields, [$field, $wt, _read_varint(\$buf, \$pos)];
        } elsif ($wt == WT_LEN) {
            my $len = _read_varint(\$buf, \$pos);
            die "decode: field $field runs past the end\n"
                if $pos + $len > length $buf;
            push @fields, [$field, $wt, substr($buf, $pos, $len)];
            $pos += $len;
        } else {
            die "decode: wire type $wt not used by goim's messages\n";
        }
    }
    return \@fields;
}

1;
