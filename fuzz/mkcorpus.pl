#!/usr/bin/perl

# Writes the seed corpora under fuzz/corpus/<target>/: a few small
# hand-made inputs per target, the docs/PROTOCOL.md 1.13 byte dumps and the
# RFC 6455 frame examples among them.  The files are committed; rerun
# this only to change them:  perl fuzz/mkcorpus.pl

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Path qw(make_path);

my $root = dirname(__FILE__) . '/corpus';

sub seed {
    my ($target, $name, $bytes) = @_;

    make_path("$root/$target");
    open(my $fh, '>:raw', "$root/$target/$name") or die "$name: $!";
    print $fh $bytes;
    close($fh) or die "$name: $!";
}

# packLen, headerLen, ver, op, seq (big-endian), then the body
sub packet {
    my ($ver, $op, $seq, $body) = @_;

    return pack('NnnNN', 16 + length($body), 16, $ver, $op, $seq) . $body;
}

sub hexbytes {
    my ($hex) = @_;

    $hex =~ s/[\s|]//g;
    return pack('H*', $hex);
}

my $mask = "\x37\xfa\x21\x3d";

sub masked {
    my ($payload) = @_;

    return $payload ^ substr($mask x (int(length($payload) / 4) + 1), 0,
                             length($payload));
}

# a client (masked) or server frame: b0 is FIN + opcode
sub frame {
    my ($b0, $is_masked, $payload) = @_;
    my $len = length($payload);
    my $m = $is_masked ? 0x80 : 0;
    my $h;

    if ($len < 126) {
        $h = pack('CC', $b0, $m | $len);
    } elsif ($len <= 0xffff) {
        $h = pack('CCn', $b0, $m | 126, $len);
    } else {
        $h = pack('CCNN', $b0, $m | 127, 0, $len);
    }

    return $is_masked ? $h . $mask . masked($payload) : $h . $payload;
}


# --- fuzz_packet: first byte picks the pieces (see fuzz_packet.c) ---------

my $hb = hexbytes('00 00 00 10 | 00 10 | 00 01 | 00 00 00 02 | 00 00 00 01');
my $hb_reply = hexbytes('00 00 00 14 | 00 10 | 00 01 | 00 00 00 03 '
                        . '| 00 00 00 01 | 00 00 00 2a');
my $auth_json = '{"mid":123,"room_id":"live://1000","platform":"web",'
                . '"accepts":[1000]}';
my $auth = packet(1, 7, 1, $auth_json);
my $inner = packet(1, 1000, 0, '{"test":1}');
my $room = packet(1, 9, 0, $inner x 2);

seed('fuzz_packet', 'heartbeat', "\x00" . $hb);
seed('fuzz_packet', 'heartbeat-reply', "\x47" . $hb_reply);
seed('fuzz_packet', 'auth', "\x80" . $auth);
seed('fuzz_packet', 'stream-bytewise', "\xc0" . $auth . $hb . $hb_reply);
seed('fuzz_packet', 'stream-pieces', "\x05" . $hb x 3 . $auth);
seed('fuzz_packet', 'room-batch', "\x4b" . $room);
seed('fuzz_packet', 'header-len-12',
     "\x80" . pack('NnnNN', 16, 12, 1, 2, 1));
seed('fuzz_packet', 'over-limit-16', "\xa0" . packet(1, 4, 2, 'x' x 17));
seed('fuzz_packet', 'negative-packlen',
     "\x80" . pack('NnnNN', 0xfffffff0, 16, 1, 2, 1));

# --- fuzz_raw: the input is an OP_RAW body --------------------------------

seed('fuzz_raw', 'room-batch-body', $inner x 2);
seed('fuzz_raw', 'room-batch-outer', $room);
seed('fuzz_raw', 'one-packet', packet(1, 1000, 0, 'hello'));
seed('fuzz_raw', 'empty-bodies', packet(1, 1000, 0, '') x 3);
seed('fuzz_raw', 'truncated', $inner . substr($inner, 0, 20));
seed('fuzz_raw', 'nested-raw', packet(1, 9, 0, $room . $inner));

# --- fuzz_ws: first byte sets the reader (see fuzz_ws.c) ------------------
# 0x1a: masked frames required, max_msg 4112, fragments unlimited;
# 0x1b: the same, unmasked allowed; 0x0a: at most one fragment;
# 0x1f: unmasked allowed, max_msg unlimited.

my $hb_frame = frame(0x82, 1, $hb);

seed('fuzz_ws', 'rfc-masked-hello',
     "\x1a" . hexbytes('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
seed('fuzz_ws', 'rfc-unmasked-hello',
     "\x1b" . hexbytes('81 05 48 65 6c 6c 6f'));
seed('fuzz_ws', 'rfc-fragmented',
     "\x1b" . hexbytes('01 03 48 65 6c') . frame(0x89, 0, '')
     . hexbytes('80 02 6c 6f'));
seed('fuzz_ws', 'masked-fragments-limit',
     "\x0a" . frame(0x02, 1, 'ab') . frame(0x00, 1, 'cd')
     . frame(0x80, 1, 'ef'));
seed('fuzz_ws', 'close-1000',
     "\x1a" . frame(0x88, 1, pack('n', 1000) . 'bye'));
seed('fuzz_ws', 'close-empty', "\x1b" . frame(0x88, 0, ''));
seed('fuzz_ws', 'ping-pong',
     "\x1a" . frame(0x89, 1, '') . frame(0x8a, 1, 'Hello'));
seed('fuzz_ws', 'binary-256-unmasked',
     "\x1b" . frame(0x82, 0, join('', map { chr } 0 .. 255)));
seed('fuzz_ws', 'len64-header',
     "\x1f" . hexbytes('82 7f 00 00 00 00 00 01 00 00') . 'abcd');
seed('fuzz_ws', 'goim-heartbeat',
     "\x1a" . $hb_frame . $hb_frame . frame(0x88, 1, pack('n', 1001)));

# --- fuzz_token: the auth packet body ------------------------------------

seed('fuzz_token', 'spec-example',
     '{"mid":123,"key":"..","room_id":"live://1000","platform":"web",'
     . '"accepts":[1000,1001]}');
seed('fuzz_token', 'spec-auth-body', $auth_json);
seed('fuzz_token', 'full',
     '{"mid":9223372036854775807,"key":"dev-abc","room_id":"live://1000",'
     . '"platform":"android","accepts":[1000,1001,1000,null,-2147483648],'
     . '"exp":1700000000}');
seed('fuzz_token', 'members',
     '{"MID":-1,"Key":"a","key":"b","extra":{"x":[1,{"y":null}],'
     . '"z":true},"accepts":[],"Accepts":[7]}');
seed('fuzz_token', 'unicode',
     '{"key":"caf\u00e9 \u00E9t\u00e9","room_id":"live://'
     . "\xe4\xb8\xad" . '","platform":"\ud83d\ude00"}');
seed('fuzz_token', 'null-empty',
     '{"key":null,"room_id":"","platform":null,"mid":null}');
seed('fuzz_token', 'accepts-65',
     '{"accepts":[' . join(',', 1000 .. 1064) . ']}');
seed('fuzz_token', 'not-object', '[1,2]');
seed('fuzz_token', 'fraction', '{"mid":1.5}');
seed('fuzz_token', 'nul-escape', '{"key":"a\u0000b"}');
seed('fuzz_token', 'truncated', '{"mid":1,"accepts":[1');

# --- fuzz_query: an API query string -------------------------------------

seed('fuzz_query', 'mids-keys', 'operation=1000&mids=1,2&keys=a%2Cb');
seed('fuzz_query', 'spec-keys', 'operation=1000&keys=dev-abc&keys=dev-def');
seed('fuzz_query', 'spec-room', 'operation=1000&type=live&room=1000');
seed('fuzz_query', 'int64-bounds',
     'mids=-9223372036854775808&mids=9223372036854775807'
     . '&mids=9223372036854775808');
seed('fuzz_query', 'int32-bounds',
     'top=20&operation=-2147483648&x=2147483648&y=-0&z=007');
seed('fuzz_query', 'decoding', 'a+b=%41%42%e4%b8%ad&flag&&=empty&x=');
seed('fuzz_query', 'bad-escape', 'operation=1000&keys=%zz');
seed('fuzz_query', 'short-escape', 'keys=a%4');
