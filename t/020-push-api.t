# The logic HTTP API (docs/PROTOCOL.md 2, embedded mode) against a mix of TCP and
# WebSocket clients: every push reaches exactly the intended connections,
# once each, in order; watched operations filter key, mid and broadcast
# pushes but not room pushes; bind errors, unknown paths, wrong methods
# and oversize bodies get JSON answers; online counts are right.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops http_request http_json);
use GoimTest qw(SENTINEL default_servers client api push_ok sentinel_ok collect);
use Time::HiRes qw(time sleep);

skip_unless_module();

add_block_preprocessor(sub { default_servers(shift) });

run_tests();

__DATA__

=== TEST 1: keys, mids, room and all reach exactly the intended connections
--- perl
my %c = (
    A => client(tcp => { mid => 1, key => 'ka', room_id => 'live://1',
                         accepts => [1000, SENTINEL] }),
    B => client(ws  => { mid => 1, key => 'kb', room_id => 'live://1',
                         accepts => [1000, 1001, SENTINEL] }),
    C => client(ws  => { mid => 2, key => 'kc', room_id => 'live://2',
                         accepts => [1001, SENTINEL] }),
    D => client(tcp => { mid => 3, key => 'kd', accepts => [SENTINEL] }),
    E => client(tcp => { mid => 0, key => 'k,e', room_id => 'live2://9',
                         accepts => [1000, SENTINEL] }),
    F => client(ws  => { room_id => 'live://1', accepts => [SENTINEL] }),
);
my $bin = join '', map { chr } 0 .. 255;
push_ok('/goim/push/keys?operation=1000&keys=ka&keys=kc', 'p1');
push_ok('/goim/push/keys?operation=1001&keys=kb&keys=kc&keys=nokey', 'p2');
push_ok('/goim/push/keys?operation=1000&keys=ka&keys=ka', 'p3');
push_ok('/goim/push/keys?operation=1000&keys=k,e', 'p4');
push_ok('/goim/push/keys?operation=1000&keys=k%2Ce', 'p5');
push_ok('/goim/push/keys?operation=1000&keys=ka,kb', 'p6');
push_ok('/goim/push/mids?operation=1000&mids=1', 'p7');
push_ok('/goim/push/mids?operation=1001&mids=1,2', 'p8');
push_ok('/goim/push/mids?operation=1001&mids=2&mids=2,2', 'p9');
push_ok('/goim/push/mids?operation=1000&mids=0', 'p10');
push_ok('/goim/push/mids?operation=1000&mids=404&mids=-1', 'p11');
push_ok('/goim/push/room?operation=1002&type=live&room=1', 'p12');
push_ok('/goim/push/room?operation=5000&type=live&room=2', 'p13');
push_ok('/goim/push/room?operation=1000&type=live2&room=9', 'p14');
push_ok('/goim/push/room?operation=1000&type=live&room=404', 'p15');
push_ok('/goim/push/all?operation=1000', 'p16');
push_ok('/goim/push/all?operation=1001', 'p17');
push_ok('/goim/push/all?operation=7777', 'p18');
push_ok('/goim/push/keys?operation=1000&keys=ka&keys=kb', $bin);
push_ok('/goim/push/keys?keys=ka', 'p20');
push_ok('/goim/push/keys?operation=1000&keys=ka', '');
push_ok('/goim/push/keys?operation=1001&keys=' . $c{F}{key}, 'p22');
push_ok("/goim/push/keys?operation=1001&keys=$c{F}{key}&keys=kc", 'p23');
sentinel_ok();
my %want = (
    A => ['1000:p1', '1000:p3', '1000:p7', '1002:p12', '1000:p16',
          "1000:$bin", '1000:'],
    B => ['1001:p2', '1000:p7', '1001:p8', '1002:p12', '1000:p16',
          '1001:p17', "1000:$bin"],
    C => ['1001:p2', '1001:p8', '1001:p9', '5000:p13', '1001:p17', '1001:p23'],
    D => [],
    E => ['1000:p4', '1000:p5', '1000:p14', '1000:p16'],
    F => ['1002:p12'],
);
for my $k (sort keys %c) {
    my $got = collect($c{$k});
    is_deeply $got, $want{$k}, "$name - $k ($c{$k}{transport}) got exactly "
        . "its pushes, once each, in order"
        or diag explain $got;
}
$_->close for values %c;



=== TEST 2: keys are percent-decoded ('+' is a space), never split
--- perl
my %c = (space => client(tcp => { key => 'a b', accepts => [1000, SENTINEL] }),
         utf8 => client(ws => { key => "k/\x{fc}&=", accepts => [1000, SENTINEL] }),
         plus => client(tcp => { key => 'a+b', accepts => [1000, SENTINEL] }));
push_ok('/goim/push/keys?operation=1000&keys=a+b', 'plus-is-space');
push_ok('/goim/push/keys?operation=1000&keys=a%20b', 'pct20');
push_ok('/goim/push/keys?operation=1000&keys=k%2F%C3%BC%26%3D', 'utf8');
push_ok('/goim/push/keys?operation=1000&keys=a%2Bb', 'literal-plus');
push_ok('/goim/push/keys?operation=1000&keys=a%20b,a%2Bb', 'comma');
sentinel_ok();
is_deeply collect($c{space}), ['1000:plus-is-space', '1000:pct20'],
    "$name - 'a b'";
is_deeply collect($c{utf8}), ['1000:utf8'], "$name - UTF-8 and reserved bytes";
is_deeply collect($c{plus}), ['1000:literal-plus'], "$name - 'a+b' needs %2B";
$_->close for values %c;



=== TEST 3: pushes carry ver 1 and seq 0; WebSocket gets one OP_RAW frame
--- perl
my $t = client(tcp => { mid => 1, key => 't', accepts => [1000] });
my $w = client(ws => { mid => 1, key => 'w', accepts => [1000] });
push_ok('/goim/push/mids?operation=1000&mids=1', 'hdr');
for my $c ($t, $w) {
    my ($p) = $c->read_pushes(1, 2);
    is $p && "$p->{op}/$p->{ver}/$p->{seq}/$p->{headerlen}/$p->{packlen}",
       '1000/1/0/16/19', "$name - $c->{transport}: inner header";
}
is $w->{last_message} && length $w->{last_message}, 16 + 19,
   "$name - ws: outer op 9 header + one inner packet";
$_->close for $t, $w;



=== TEST 4: watched operations filter keys, mids and all; never room
--- perl
my $c = client(tcp => { mid => 5, key => 'f', room_id => 'live://f' });
my $fence = sub {
    push_ok('/goim/push/room?operation=1&type=live&room=f', "fence$_[0]");
};
my $all = sub {
    push_ok('/goim/push/keys?operation=1000&keys=f', "keys$_[0]");
    push_ok('/goim/push/mids?operation=1000&mids=5', "mids$_[0]");
    push_ok('/goim/push/all?operation=1000', "all$_[0]");
    push_ok('/goim/push/room?operation=1000&type=live&room=f', "room$_[0]");
    $fence->($_[0]);
};
my $read = sub {
    my @got;
    while (my ($p) = $c->read_pushes(1, 2)) {
        push @got, $p->{body};
        last if $p->{body} =~ /^fence/;
    }
    return \@got;
};
$all->(1);
is_deeply $read->(), ['room1', 'fence1'], "$name - no accepts: only room";
is $c->sub_ops(1000), '1000', "$name - sub 1000";
$all->(2);
is_deeply $read->(), ['keys2', 'mids2', 'all2', 'room2', 'fence2'],
    "$name - watching 1000: all four";
is $c->unsub_ops(1000), '1000', "$name - unsub 1000";
$all->(3);
is_deeply $read->(), ['room3', 'fence3'], "$name - unwatched again";
$c->close;



=== TEST 5: change room moves room pushes; online counts follow
--- perl
my $ca = client(tcp => { mid => 1, key => 'a', room_id => 'live://1' });
my $cb = client(ws => { mid => 2, key => 'b', room_id => 'live://1' });
is $ca->change_room('live://3'), 'live://3', "$name - a moves to live://3";
push_ok('/goim/push/room?operation=1000&type=live&room=1', 'to1');
push_ok('/goim/push/room?operation=1000&type=live&room=3', 'to3');
my ($qa) = $ca->read_pushes(1, 2);
my ($qb) = $cb->read_pushes(1, 2);
is $qa && $qa->{body}, 'to3', "$name - a gets live://3";
is $qb && $qb->{body}, 'to1', "$name - b gets live://1";
is $cb->change_room(''), '', "$name - b leaves";
push_ok('/goim/push/room?operation=1000&type=live&room=1', 'gone');
push_ok('/goim/push/room?operation=1000&type=live&room=3', 'to3-again');
($qa) = $ca->read_pushes(1, 2);
is $qa && $qa->{body}, 'to3-again', "$name - a still in live://3";
is scalar($cb->read_pushes(1, 0.3)), 0, "$name - b in no room gets nothing";
my ($st, $j) = api(GET => '/goim/online/room?type=live&rooms=1&rooms=3');
is_deeply $j->{data}, { 1 => 0, 3 => 1 }, "$name - online/room follows";
$_->close for $ca, $cb;



=== TEST 6: 20 room messages arrive in order, once, on every member
--- perl
my @c = map { client($_ % 2 ? 'ws' : 'tcp',
                     { mid => $_, room_id => 'live://r', accepts => [SENTINEL] }) }
        1 .. 4;
my $other = client(tcp => { mid => 5, room_id => 'live://other',
                            accepts => [1000, SENTINEL] });
push_ok('/goim/push/room?operation=1000&type=live&room=r', "m$_") for 1 .. 20;
for my $i (0 .. $#c) {
    my @p = $c[$i]->read_pushes(20, 3);
    is_deeply [map { $_->{body} } @p], [map { "m$_" } 1 .. 20],
        "$name - member $i ($c[$i]{transport}): m1..m20 in order";
}
sentinel_ok();
is_deeply collect($_), [], "$name - $_->{transport} member: no duplicates"
    for @c;
is_deeply collect($other), [], "$name - other room: nothing";
$_->close for @c, $other;



=== TEST 7: bind errors: HTTP 400, code -400, a message
--- perl
my @bad = (
    'push/keys?operation=abc&keys=k', 'push/keys?operation=99999999999&keys=k',
    'push/mids?operation=x&mids=1', 'push/mids?operation=1000&mids=abc',
    'push/mids?operation=1000&mids=1,x', 'push/mids?operation=1000&mids=1,',
    'push/room?type=live&room=1', 'push/room?operation=0&type=live&room=1',
    'push/room?operation=1000&room=1', 'push/room?operation=1000&type=live',
    'push/room?operation=1000&type=&room=1', 'push/all', 'push/all?operation=0',
    'push/all?operation=1000&speed=fast',
    'online/top?type=live', 'online/top?limit=2', 'online/top?type=live&limit=0',
    'online/top?type=live&limit=x', 'online/room?type=live',
    'online/room?rooms=1', 'push/keys?operation=1000&keys=%zz',
);
for my $q (@bad) {
    my $method = $q =~ /^push/ ? 'POST' : 'GET';
    my ($st, $j, $raw) = api($method => "/goim/$q", $method eq 'POST' ? 'm' : undef);
    ok $st == 400 && $j && $j->{code} == -400 && length $j->{message},
       "$name - $q: 400/-400 with a message"
       or diag "$st $raw";
}
# well-formed but empty target lists: HTTP 200, code -400
for my $q ('push/keys?operation=1000', 'push/keys?operation=1000&keys=',
           'push/mids?operation=1000') {
    my ($st, $j, $raw) = api(POST => "/goim/$q", 'm');
    ok $st == 200 && $j && $j->{code} == -400,
       "$name - $q: 200/-400" or diag "$st $raw";
}



=== TEST 8: unknown path 404, wrong method 405, oversize body 413, all JSON
--- config
    location = /sub { goim_websocket; }
    location /goim/ {
        client_body_buffer_size 1k;
        goim_logic_api;
    }
--- perl
my $port = $ENV{TEST_NGINX_SERVER_PORT};
my $c = client(tcp => { mid => 1, key => 'k', accepts => [1000] });
my @cases = (
    [GET => '/goim/nope', undef, 404], [POST => '/goim/push', 'x', 404],
    [GET => '/goim/push/keys/', undef, 404], [GET => '/goim/', undef, 404],
    [GET => '/goim/push/keys?keys=k', undef, 405],
    [PUT => '/goim/push/all?operation=1', 'x', 405],
    [POST => '/goim/online/total', 'x', 405],
    [DELETE => '/goim/online/room', undef, 405],
    [POST => '/goim/push/keys?operation=1000&keys=k', 'x' x 1025, 413],
);
for my $case (@cases) {
    my ($method, $path, $body, $want) = @$case;
    my ($st, $body_out, $h) = http_request($method => '127.0.0.1', $port,
                                           $path, $body);
    my $j = eval { JSON::PP->new->decode($body_out) };
    ok $st == $want && $j && $j->{code} == -$want && defined $j->{message},
       "$name - $method $path: $want with a JSON envelope"
       or diag "$st $body_out";
    is $h->{'content-type'}, 'application/json', "$name - $method $path: JSON type";
}
# a chunked body over the limit has no Content-Length to check up front
my $chunk = 'y' x 600;
my ($st, $out) = http_request(POST => '127.0.0.1', $port,
    '/goim/push/keys?operation=1000&keys=k',
    sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", 600, $chunk, 600, $chunk),
    headers => ['Transfer-Encoding: chunked']);
is $st, 413, "$name - chunked 1200 bytes: 413";
like $out, qr/"code":-413/, "$name - chunked: JSON";
# exactly the limit passes and arrives intact, chunked or not
push_ok('/goim/push/keys?operation=1000&keys=k', 'z' x 1024);
($st, $out) = http_request(POST => '127.0.0.1', $port,
    '/goim/push/keys?operation=1000&keys=k',
    sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", 1000, 'c' x 1000, 24, 'c' x 24),
    headers => ['Transfer-Encoding: chunked']);
is $st, 200, "$name - chunked 1024 bytes: 200";
my @p = $c->read_pushes(2, 2);
is_deeply [map { $_->{body} } @p], ['z' x 1024, 'c' x 1024],
    "$name - 1024-byte pushes delivered intact";
is scalar($c->read_pushes(1, 0.2)), 0, "$name - refused pushes not delivered";
$c->close;



=== TEST 9: online top, room and total
--- perl
my @c = (
    client(tcp => { room_id => 'live://1000' }),
    client(ws  => { room_id => 'live://1000' }),
    client(tcp => { room_id => 'live://1000' }),
    client(ws  => { room_id => 'live://2000' }),
    client(tcp => { room_id => 'live://2000' }),
    client(tcp => { room_id => 'live://3000' }),
    client(ws  => { room_id => 'live2://7' }),
    client(tcp => { room_id => 'test://1' }),
    client(tcp => {}),
);
my ($st, $j) = api(GET => '/goim/online/top?type=live&limit=2');
is_deeply [$st, $j], [200, { code => 0, message => '', data => [
    { room_id => '1000', count => 3 }, { room_id => '2000', count => 2 } ] }],
    "$name - top 2";
($st, $j) = api(GET => '/goim/online/top?type=live&limit=10');
is_deeply $j->{data}, [
    { room_id => '1000', count => 3 }, { room_id => '2000', count => 2 },
    { room_id => '3000', count => 1 }, { room_id => '7', count => 1 } ],
    "$name - type is a prefix, as in goim (live2:// matches live)";
($st, $j) = api(GET => '/goim/online/top?type=none&limit=5');
is_deeply $j, { code => 0, message => '', data => [] },
    "$name - no match: empty array";
($st, $j) = api(GET => '/goim/online/room?type=live&rooms=1000&rooms=2000'
                . '&rooms=404');
is_deeply $j, { code => 0, message => '',
                data => { 1000 => 3, 2000 => 2, 404 => 0 } }, "$name - room";
($st, $j) = api(GET => '/goim/online/total');
is_deeply $j, { code => 0, message => '',
                data => { conn_count => 9, ip_count => 1 } }, "$name - total";
$_->close for splice @c, 0, 3;
my $deadline = time + 2;
do { sleep 0.02; ($st, $j) = api(GET => '/goim/online/total') }
    until $j->{data}{conn_count} == 6 || time > $deadline;
is $j->{data}{conn_count}, 6, "$name - total after three closed";
($st, $j) = api(GET => '/goim/online/room?type=live&rooms=1000');
is_deeply $j->{data}, { 1000 => 0 }, "$name - emptied room counts 0";
($st, $j) = api(GET => '/goim/online/top?type=live&limit=1');
is_deeply $j->{data}, [{ room_id => '2000', count => 2 }],
    "$name - emptied room gone from top";
$_->close for @c;



=== TEST 10: paced broadcast (speed) reaches everyone once, survives closes
--- perl
my @c = map { client($_ % 2 ? 'ws' : 'tcp', { mid => $_, accepts => [1000, SENTINEL] }) }
        1 .. 8;
my $t0 = time;
push_ok('/goim/push/all?operation=1000&speed=20', 'paced');
my %first;
for my $i (0 .. $#c) {
    my ($p) = $c[$i]->read_pushes(1, 3);
    $first{$i} = $p ? $p->{body} : 'none';
}
my $took = time - $t0;
is_deeply [values %first], [('paced') x 8], "$name - all 8 got it";
ok $took > 0.2, "$name - paced over time (" . sprintf('%.2f', $took) . "s)";
# connections closing while a slow broadcast walks the list
push_ok('/goim/push/all?operation=1000&speed=10', 'slow');
$_->close for @c[1, 2, 5];
my @rest = @c[0, 3, 4, 6, 7];
for my $c (@rest) {
    my ($p) = $c->read_pushes(1, 3);
    is $p && $p->{body}, 'slow', "$name - $c->{transport} client got the slow "
        . "broadcast";
}
sentinel_ok();
is_deeply collect($_), [], "$name - $_->{transport} client: nothing more"
    for @rest;
$_->close for @c;



=== TEST 11: 1000 targets per push, in the query string (the shipped buffers) or in a form body; 1001 refused
--- config eval
# the API server's large_client_header_buffers of the shipped configs
my ($lchb) = do {
    local (@ARGV, $/) = "$FindBin::Bin/../conf/goim-embedded.conf";
    <>;
} =~ /^\s*(large_client_header_buffers\s[^;]+;)/m
    or die "no large_client_header_buffers in conf/goim-embedded.conf\n";
<<"EOF2";
    $lchb
    location = /sub { goim_websocket; }
    location /goim/ {
        goim_logic_api;
        client_body_buffer_size 64k;
        client_max_body_size 64k;
    }
EOF2
--- perl
use constant FORM => ['Content-Type: application/x-www-form-urlencoded'];
my $cluster = do {
    local (@ARGV, $/) = "$FindBin::Bin/../conf/goim-cluster.conf";
    <>;
};
my ($lchb) = $block->config =~ /(large_client_header_buffers\s[^;]+;)/;
like $cluster, qr/^\s*\Q$lchb\E/m,
    "$name - goim-cluster.conf has the same buffers ($lchb)";

# generated UUIDs: goim's keys when the client gives none
my @keys = map { sprintf '%08x-%04x-4%03x-8%03x-%012x', $_, $_ % 65536,
                 $_ % 4096, $_ % 4096, $_ * 7919 } 1 .. 1001;
my @mids = map { 1_000_000_000_000 + $_ } 1 .. 1001;
my %c = (first => client(tcp => { mid => $mids[0], key => $keys[0],
                                  accepts => [1000] }),
         last => client(ws => { mid => $mids[999], key => $keys[999],
                                accepts => [1000] }),
         over => client(tcp => { mid => $mids[1000], key => $keys[1000],
                                 accepts => [1000] }));
my $got = sub {
    my @b;
    for my $k (qw(first last over)) {
        my ($p) = $c{$k}->read_pushes(1, $k eq 'over' ? 0.3 : 2);
        push @b, $p ? $p->{body} : '-';
    }
    return join ' ', @b;
};
my $q_keys = sub { join '', map { "&keys=$_" } @keys[0 .. $_[0] - 1] };
my $q_mids = sub { join '', map { "&mids=$_" } @mids[0 .. $_[0] - 1] };
my $ok = sub {
    my ($what, $path, $body, @opt) = @_;
    my ($st, $j, $raw) = api(POST => $path, $body, @opt);
    is_deeply [$st, $j && $j->{code}], [200, 0], "$name - $what: code 0"
        or diag substr($raw // '', 0, 300);
};
my $over = sub {
    my ($what, $path, $body, $msg, @opt) = @_;
    my ($st, $j, $raw) = api(POST => $path, $body, @opt);
    is_deeply [$st, $j && $j->{code}, $j && $j->{message}],
        [200, -400, $msg], "$name - $what: refused"
        or diag substr($raw // '', 0, 300);
};

my $path = '/goim/push/keys?operation=1000' . $q_keys->(1000);
ok length($path) > 40000, "$name - 1000 keys: a request line of "
    . length($path) . " bytes";
$ok->('1000 keys in the query', $path, 'q-keys');
is $got->(), 'q-keys q-keys -', "$name - the first and the 1000th got it";
$over->('1001 keys in the query',
        '/goim/push/keys?operation=1000' . $q_keys->(1001), 'x',
        'more than 1000 keys');
$ok->('1000 mids in the query',
      '/goim/push/mids?operation=1000' . $q_mids->(1000), 'q-mids');
is $got->(), 'q-mids q-mids -', "$name - mids: the first and the 1000th";
$over->('1001 mids in the query',
        '/goim/push/mids?operation=1000' . $q_mids->(1001), 'x',
        'more than 1000 mids');

# the form body: targets, the message in msg (percent-encoded, any bytes)
my ($st, $j);
my $msg = "form \x00&=%\xff";
(my $enc = $msg) =~ s/([^A-Za-z0-9])/sprintf '%%%02X', ord $1/ge;
$ok->('1000 keys in a form body', '/goim/push/keys?operation=1000',
      substr($q_keys->(1000), 1) . "&msg=$enc", headers => FORM);
is $got->(), "$msg $msg -", "$name - form: the message is msg, any bytes";
$over->('1001 keys in a form body', '/goim/push/keys?operation=1000',
        substr($q_keys->(1001), 1) . "&msg=x", 'more than 1000 keys',
        headers => FORM);
$ok->('1000 mids in a form body, operation in it too', '/goim/push/mids',
      'operation=1000&' . substr($q_mids->(1000), 1) . '&msg=f-mids',
      headers => ['Content-Type: application/x-www-form-urlencoded; '
                  . 'charset=utf-8']);
is $got->(), 'f-mids f-mids -', "$name - form mids delivered";
$over->('1001 mids in a form body', '/goim/push/mids?operation=1000',
        substr($q_mids->(1001), 1), 'more than 1000 mids', headers => FORM);
$over->('a form without keys', '/goim/push/keys?operation=1000',
        'msg=x', 'no keys given', headers => FORM);

($st, $j) = api(POST => '/goim/push/keys?operation=1000', 'keys=%zz',
                headers => FORM);
is_deeply [$st, $j && $j->{code}, $j && $j->{message}],
    [400, -400, 'invalid percent-encoding in the form body'],
    "$name - a malformed form: 400";

# goim's own form: targets in the query, the raw body is the message,
# whatever its Content-Type says (curl -d sends a form type)
$ok->('keys in the query, a form type', "/goim/push/keys?operation=1000"
      . "&keys=$keys[0]", "msg=raw&keys=$keys[999]", headers => FORM);
is $got->(), 'msg=raw&keys=' . $keys[999] . ' - -',
   "$name - then the body is the message, as in goim";
($st, $j) = api(POST => '/goim/push/keys?operation=1000',
                   "keys=$keys[0]&msg=y",
                   headers => ['Content-Type: application/json']);
is_deeply [$st, $j->{code}, $j->{message}], [200, -400, 'no keys given'],
    "$name - only a form body holds targets";
$_->close for values %c;
