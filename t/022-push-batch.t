# POST /goim/push/batch on the embedded node (docs/PROTOCOL.md 2.13): JSON
# lines and protobuf goim.PushBatch bodies; every good item reaches exactly
# its clients, every bad one is answered with its reason in data.results
# while the others still go; limits on the request refuse it whole and
# deliver nothing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops http_json);
use GoimTest qw(SENTINEL default_servers client api);
use MIME::Base64 qw(encode_base64);
use JSON::PP ();

skip_unless_module();

add_block_preprocessor(sub {
    default_servers(shift, config => <<'EOF2');
    location = /sub { goim_websocket; }
    location /goim/ {
        goim_logic_api;
        client_body_buffer_size 1m;
        client_max_body_size 1m;
    }
EOF2
});

sub batch {
    my ($body, %h) = @_;
    return api(POST => '/goim/push/batch', $body,
               $h{type} ? (headers => { 'Content-Type' => $h{type} }) : ());
}

# n pushes of a client, as sorted "op:body", within a deadline
sub got {
    my ($c, $n) = @_;
    my @p = $c->read_pushes($n, 3);
    return [sort map { "$_->{op}:$_->{body}" } @p];
}

# protobuf goim.PushItem / goim.PushBatch, written out by hand
sub varint {
    my ($n) = @_;
    my $u = $n < 0 ? unpack('Q<', pack('q<', $n)) : $n;
    my $o = '';
    while ($u >= 0x80) { $o .= chr(($u & 0x7f) | 0x80); $u >>= 7 }
    return $o . chr($u);
}
sub fint { my ($f, $v) = @_; $v ? varint($f << 3) . varint($v) : '' }
sub fbytes { my ($f, $v) = @_; varint($f << 3 | 2) . varint(length $v) . $v }
sub pb_item {
    my (%o) = @_;
    return fint(1, $o{type}) . fint(2, $o{op}) . fint(3, $o{speed})
        . join('', map { fbytes(4, $_) } @{ $o{keys} // [] })
        . join('', map { fint(5, $_) } @{ $o{mids} // [] })
        . (defined $o{room} ? fbytes(6, $o{room}) : '')
        . (defined $o{msg} ? fbytes(7, $o{msg}) : '');
}
sub pb_batch { join '', map { fbytes(1, pb_item(%$_)) } @_ }

run_tests();

__DATA__

=== TEST 1: JSON lines: good items delivered, bad ones answered with their reasons
--- perl
my $a = client(tcp => { mid => 1, key => 'ka', room_id => 'live://1',
                        accepts => [1000, 1001] });
my $b = client(ws => { mid => 2, key => 'kb', room_id => 'live://2',
                       accepts => [1000, 1001] });
my $bin = join '', map { chr } 0 .. 255;
my @lines = (
    '{"type":"keys","keys":["ka","nobody"],"operation":1000,"msg":"k1"}',
    '{"type":"mids","mids":[2],"operation":1000,"msg":"m1"}',
    '{"type":"room","room":"live://1","operation":1000,"msg":"r1"}',
    '{"type":"keys","keys":["ka"],',
    '{"type":"keys","keys":["kb"],"operation":1001,"msg_base64":"'
        . encode_base64($bin, '') . '"}',
    '{"type":"room","operation":1000,"msg":"x"}',
    '{"type":"fanout","operation":1000}',
    '{"type":"keys","keys":["ka"],"bogus":1}',
    '',
    '{"type":"all","operation":1001,"msg":"a1"}',
    '{"type":"mids","mids":["3x"],"msg":"x"}',
    '{"type":"keys","keys":[],"msg":"x"}',
    '{"type":"room","room":"live://1","msg":"x"}',
    '{"type":"mids","mids":["9007199254740993"],"operation":1000,'
        . '"msg":"big"}',
    '[1,2]',
    '{"type":"all","operation":1000,"speed":-1}',
    '{"type":"keys","keys":["ka"],"room":"live://1"}',
    '{"type":"keys","keys":["ka"],"msg":"a","msg_base64":"YQ=="}',
);
my ($st, $j, $raw) = batch(join("\n", @lines) . "\n");
is $st, 200, "$name - HTTP 200";
my @codes = map { $_->{code} } @{ $j->{data}{results} // [] };
is_deeply \@codes, [0, 0, 0, -400, 0, -400, -400, -400, 0, -400, -400,
                    -400, 0, -400, -400, -400, -400],
    "$name - per item codes, blank line skipped" or diag $raw;
is_deeply [map { $_->{message} } @{ $j->{data}{results} }],
    ['', '', '', 'not JSON: syntax error', '', 'room: required',
     'type: one of "keys", "mids", "room", "all"', 'unknown field "bogus"',
     '', 'mids: invalid member id (int64)', 'no keys given',
     'operation: required', '', 'an item must be one JSON object',
     'speed: must not be negative', 'room: not for this type',
     'give one of msg and msg_base64'],
    "$name - each bad item says why" or diag $raw;
is_deeply [@{ $j->{data} }{qw(items accepted failed)}], [17, 6, 11],
    "$name - counts";
is_deeply [$j->{code}, $j->{message}],
    [-400, '11 of 17 items failed, the first (item 3): '
           . 'not JSON: syntax error'],
    "$name - the envelope names the first failure";
is_deeply got($a, 3), ['1000:k1', '1000:r1', '1001:a1'],
    "$name - the key, room and broadcast items reached A";
is_deeply got($b, 3), ['1000:m1', "1001:$bin", '1001:a1'],
    "$name - the mid, binary key and broadcast items reached B";
is scalar($a->read_pushes(1, 0.5)) + scalar($b->read_pushes(1, 0.1)), 0,
    "$name - nothing else";

($st, $j, $raw) = batch('{"type":"keys","keys":["kb"],"operation":1000,'
                        . '"msg":"only"}');
is_deeply [$st, $j->{code}, $j->{message}, $j->{data}],
    [200, 0, '', { items => 1, accepted => 1, failed => 0,
                   results => [{ code => 0, message => '' }] }],
    "$name - all accepted: code 0, no newline needed" or diag $raw;
is_deeply got($b, 1), ['1000:only'], "$name - ... delivered";
--- no_error_log
[error]



=== TEST 2: limits refuse the request whole and deliver nothing
--- perl
my $a = client(tcp => { mid => 1, key => 'ka', accepts => [1000] });
my $line = '{"type":"keys","keys":["ka"],"operation":1000,"msg":"x"}';
my ($st, $j, $raw) = batch(join "\n", ($line) x 1001);
is_deeply [$st, $j->{code}, $j->{message}],
    [400, -400, 'more than 1000 items, nothing was pushed'],
    "$name - 1001 items: 400" or diag $raw;
($st, $j) = batch("\n \n");
is_deeply [$st, $j->{code}, $j->{message}], [400, -400, 'no items'],
    "$name - no items: 400";
is scalar($a->read_pushes(1, 0.5)), 0, "$name - nothing delivered";

# per item: 1000 keys; per request: 10000 keys and mids
my $JSON = JSON::PP->new->canonical;
my @k = map { "k$_" } 1 .. 1001;
($st, $j, $raw) = batch($JSON->encode({ type => 'keys', keys => \@k,
                                        operation => 1000, msg => 'x' }));
is $j->{data}{results}[0]{message}, 'more than 1000 keys',
    "$name - 1001 keys in an item" or diag $raw;
my $big = $JSON->encode({ type => 'keys', keys => [@k[0 .. 999]],
                          operation => 1000, msg => 'big' });
($st, $j, $raw) = batch(join("\n", $line, ($big) x 10));
is_deeply [map { $_->{code} } @{ $j->{data}{results} }],
    [(0) x 10, -400], "$name - the item past 10000 targets fails"
    or diag $raw;
is $j->{data}{results}[10]{message},
    'more than 10000 keys and mids in the request', "$name - ... saying why";
is_deeply got($a, 1), ['1000:x'], "$name - the small item went";
--- no_error_log
[error]



=== TEST 3: protobuf goim.PushBatch
--- perl
my $a = client(tcp => { mid => 1, key => 'ka', room_id => 'live://1',
                        accepts => [1000, 1001] });
my $b = client(ws => { mid => 2, key => 'kb', accepts => [1000, 1001] });
my $type = 'application/x-protobuf';
my ($st, $j, $raw) = batch(pb_batch(
    { type => 0, op => 1000, keys => ['ka', ''], msg => "p\0b" },
    { type => 1, op => 1001, mids => [2, 2], msg => 'pm' },
    { type => 7, op => 1000, msg => 'x' },
    { type => 2, op => 1000, room => 'live://1', msg => 'pr' },
    { type => 0, op => 1000, room => 'live://1', keys => ['kb'] },
    { type => 3, op => 1001, speed => 5, msg => 'pa' },
), type => $type);
is_deeply [$st, map { $_->{code} } @{ $j->{data}{results} // [] }],
    [200, 0, 0, -400, 0, -400, 0], "$name - per item codes" or diag $raw;
is $j->{data}{results}[2]{message}, 'type: unknown (7)',
    "$name - the unknown type";
is_deeply got($a, 3), ["1000:p\0b", '1000:pr', '1001:pa'],
    "$name - A: the binary message, the room, the broadcast";
is_deeply got($b, 2), ['1001:pa', '1001:pm'], "$name - B: mid once, all";

($st, $j) = batch("\x0a\x05ab", type => $type);
is_deeply [$st, $j->{code}, $j->{message}],
    [400, -400, 'body is not a goim.PushBatch'], "$name - truncated: 400";
($st, $j) = batch('', type => $type);
is_deeply [$st, $j->{message}], [400, 'no items'], "$name - empty: 400";
is scalar($a->read_pushes(1, 0.5)), 0, "$name - nothing more delivered";
--- no_error_log
[error]
