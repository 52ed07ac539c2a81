# The comet's internal push location (goim_internal_push), where the job
# posts goim.CometPushBatch bodies (built here with GoimProto.pm): key,
# room and broadcast items reach exactly the intended TCP and WebSocket
# clients, in order; OP_RAW bodies of several packets arrive as several
# messages; a proto that is not OP_RAW works; watched operations filter
# key and broadcast items, not room items; a missing or wrong secret gets
# 403, other methods 405, a bad body or item 400 with nothing pushed, an
# oversize body 413, nginx's allow/deny answer first; a location without
# a secret fails the configuration; with 4 workers every worker's clients
# get the pushes; a full inbox stops the batch with 503 and the number of
# items pushed; with goim_history a worker that missed a room message for
# a full inbox gets it, in order, when the job sends it again, and the
# others do not get it twice; goim_status counts requests and items.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops http_request http_json);
use GoimTest qw(SENTINEL default_servers client api push_ok sentinel_ok
                collect);
use GoimWorkers qw(T wait_until worker_servers worker_pids proc_state
                   spread_clients pid_counts goim_client);
use GoimProto qw(:all);
use File::Temp ();
use IO::Socket::INET;
use IO::Select;
use JSON::PP ();
use Time::HiRes qw(time sleep);

skip_unless_module();

use constant SECRET => 'job-secret-0123456789';
use constant PATH   => '/goim/internal/push';

# a secret file for goim_internal_secret file:..., with a newline
my $dir = File::Temp::tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_SECRET_FILE} = "$dir/secret";
open my $fh, '>', "$dir/secret" or die "$dir/secret: $!";
print $fh "secret-from-a-file-0123\n";
close $fh;

# Single-worker blocks: goim_tcp on the stream port; WebSocket, the API,
# the internal push location and goim_status on the http port, the secret
# set at the http level.  Blocks with `--- workers`: GoimWorkers' 4-worker
# reuseport servers, the internal push location on a reuseport port too
# ($TEST_NGINX_PORT3), and the API, the internal push and goim_status on
# the shared http port.
my $internal = <<'EOF';
    location = /goim/internal/push { goim_internal_push; }
    location = /status { goim_status; }
EOF

add_block_preprocessor(sub {
    my $block = shift;
    if (defined $block->{workers}) {
        worker_servers($block, http_extra => <<"EOF");
    goim_internal_secret @{[SECRET]};
    server {
        listen 127.0.0.1:\$TEST_NGINX_PORT3 reuseport;
        location = /goim/internal/push {
            goim_internal_push;
            add_header X-Worker \$pid always;
        }
    }
EOF
    } elsif (!defined $block->{http_config}) {
        $block->set_value(http_config => '    goim_internal_secret '
                          . SECRET . ";\n");
    }
    default_servers($block, config => <<"EOF");
    location = /sub { goim_websocket; }
    location /goim/ { goim_logic_api; }
$internal
EOF
});

# ipush($body, secret => .., headers => [..], port => ..)
#   -> ($status, $json, $raw_body, \%headers)
sub ipush {
    my ($body, %o) = @_;
    my @h = ('Content-Type: application/x-protobuf');
    push @h, 'X-Goim-Secret: ' . ($o{secret} // SECRET)
        unless exists $o{secret} && !defined $o{secret};
    push @h, @{ $o{headers} // [] };
    my ($st, $raw, $hdr) = http_request(POST => '127.0.0.1',
        $o{port} // $ENV{TEST_NGINX_SERVER_PORT}, PATH, $body,
        headers => \@h, timeout => $o{timeout} // T(5));
    my $j = defined $st ? eval { JSON::PP->new->decode($raw) } : undef;
    return ($st, $j, $raw, $hdr);
}

# ipush_ok($body, $accepted, $name): 200 with every item accepted
sub ipush_ok {
    my ($body, $n, $name, %o) = @_;
    my ($st, $j, $raw, $h) = ipush($body, %o);
    is_deeply [$st, $j],
        [200, { code => 0, message => '', data => { accepted => $n } }],
        "$name: 200, $n accepted" or diag 'answer: ' . ($raw // 'none');
    return $h;
}

# The goim_status value of a series summed over the workers
sub status_sum {
    my ($series, $labels) = @_;
    my ($st, $text) = http_request(GET => '127.0.0.1',
        $ENV{TEST_NGINX_SERVER_PORT}, '/status');
    my $sum = 0;
    my $re = qr/^goim_\Q$series\E\{worker="\d+",pid="\d+"\Q$labels\E\} (\d+)$/m;
    $sum += $1 while $text =~ /$re/g;
    return $sum;
}

run_tests();

__DATA__

=== TEST 1: a batch of key, room and broadcast items reaches exactly its clients, in order
--- main_config
goim_room_flush 0;
--- perl
my %c = (
    A => client(tcp => { key => 'ka', room_id => 'live://1',
                         accepts => [1000, SENTINEL] }),
    B => client(ws  => { key => 'kb', room_id => 'live://1',
                         accepts => [1001, SENTINEL] }),
    C => client(ws  => { key => 'kc', room_id => 'live://2',
                         accepts => [1000, 1001, SENTINEL] }),
    D => client(tcp => { key => 'kd', accepts => [SENTINEL] }),
    E => client(tcp => { key => 'ke', room_id => 'live://1',
                         accepts => [SENTINEL] }),
);
my $bin = join '', map { chr } 0 .. 255;
my @items = (
    keys_item(1000, [qw(ka kb kc nokey)], 'k1'),
    keys_item(1001, [qw(kb kb)], 'k2a', 'k2b'),      # twice: once
    room_item('live://1', 1002, 'r1', 'r2', 'r3'),
    room_item('live://2', 1000, 'r4'),
    all_item(1001, 'a1'),
    all_item(7777, 'a2'),
    # not OP_RAW: the proto is the body of one packet with its op
    comet_push(push => push_msg_req(keys => [qw(ka kc)], proto_op => 1000,
        proto => proto(ver => 1, op => 1000, body => 'n1'))),
    comet_push(room => broadcast_room_req(room => 'live://1',
        proto => proto(ver => 1, op => 1003, body => 'n2'))),
    comet_push(broadcast => broadcast_req(proto_op => 1000,
        proto => proto(ver => 1, op => 1000, body => 'n3'))),
    keys_item(1000, ['kd'], 'k3'),
    room_item('live://none', 1000, 'r5'),
    keys_item(1000, [qw(ka kc)], $bin, ''),
);
ipush_ok(comet_push_batch(@items), scalar @items, "$name - the batch");
sentinel_ok();
my %want = (
    A => ['1000:k1', '1002:r1', '1002:r2', '1002:r3', '1000:n1', '1003:n2',
          '1000:n3', "1000:$bin", '1000:'],
    B => ['1001:k2a', '1001:k2b', '1002:r1', '1002:r2', '1002:r3', '1001:a1',
          '1003:n2'],
    C => ['1000:k1', '1000:r4', '1001:a1', '1000:n1', '1000:n3', "1000:$bin",
          '1000:'],
    D => [],
    E => ['1002:r1', '1002:r2', '1002:r3', '1003:n2'],
);
for my $k (sort keys %c) {
    my $got = collect($c{$k});
    is_deeply $got, $want{$k}, "$name - $k ($c{$k}{transport}) got exactly "
        . "its pushes, once each, in order" or diag explain $got;
}
$_->close for values %c;



=== TEST 2: OP_RAW packets go out as they are (WebSocket: one op 9 frame); other ops too
--- main_config
goim_room_flush 0;
--- perl
my $t = client(tcp => { key => 't', room_id => 'live://x', accepts => [1000] });
my $w = client(ws => { key => 'w', room_id => 'live://x', accepts => [1000] });
ipush_ok(comet_push_batch(room_item('live://x', 1000, 'p1', 'p22', 'p333')),
         1, "$name - three packets in one room item");
for my $c ($t, $w) {
    my @p = $c->read_pushes(3, 2);
    is_deeply [map { "$_->{op}/$_->{ver}/$_->{seq}/$_->{body}" } @p],
        ['1000/1/0/p1', '1000/1/0/p22', '1000/1/0/p333'],
        "$name - $c->{transport}: three messages";
    is_deeply [map { $_->{raw_batch} // 0 } @p],
        $c->{transport} eq 'ws' ? [3, 3, 3] : [0, 0, 0],
        "$name - $c->{transport}: " . ($c->{transport} eq 'ws'
            ? 'one OP_RAW frame' : 'plain packets');
}
is length $w->{last_message}, 16 + 3 * 16 + 9,
   "$name - ws frame: outer op 9 header + three packets";
ipush_ok(comet_push_batch(comet_push(push => push_msg_req(keys => ['w'],
    proto_op => 1000, proto => proto(op => 1000, body => 'plain')))),
    1, "$name - not OP_RAW");
# WebSocket gets every push of the module in an op 9 frame (dispatch)
my ($p) = $w->read_pushes(1, 2);
is $p && "$p->{op}/$p->{ver}/$p->{seq}/$p->{body}/$p->{raw_batch}",
   '1000/1/0/plain/1', "$name - ws: not OP_RAW: one packet";
is length $w->{last_message}, 16 + 16 + 5,
   "$name - ws frame: outer op 9 header + the packet";
$_->close for $t, $w;



=== TEST 3: room items merge by goim_room_flush as API pushes do
--- main_config
goim_room_flush 300ms;
--- perl
my $w = client(ws => { key => 'w', room_id => 'live://m' });
ipush_ok(comet_push_batch(room_item('live://m', 1000, 'm1'),
                          room_item('live://m', 1000, 'm2', 'm3'),
                          room_item('live://m', 1000, 'm4')),
         3, "$name - three room items");
my @p = $w->read_pushes(4, 2);
is_deeply [map { "$_->{body}/$_->{raw_batch}" } @p],
    ['m1/1', 'm2/3', 'm3/3', 'm4/3'],
    "$name - the first at once, the next two merged into one frame";
$w->close;



=== TEST 4: watched operations filter key and broadcast items, never room items
--- main_config
goim_room_flush 0;
--- perl
my $c = client(tcp => { key => 'f', room_id => 'live://f' });
my $round = sub {
    my ($n) = @_;
    ipush_ok(comet_push_batch(keys_item(1000, ['f'], "keys$n"),
                              all_item(1000, "all$n"),
                              room_item('live://f', 1000, "room$n"),
                              room_item('live://f', 1, "fence$n")),
             4, "$name - round $n");
    my @got;
    while (my ($p) = $c->read_pushes(1, 2)) {
        push @got, $p->{body};
        last if $p->{body} =~ /^fence/;
    }
    return \@got;
};
is_deeply $round->(1), ['room1', 'fence1'], "$name - no accepts: only room";
is $c->sub_ops(1000), '1000', "$name - sub 1000";
is_deeply $round->(2), ['keys2', 'all2', 'room2', 'fence2'],
    "$name - watching 1000: all three";
$c->close;



=== TEST 5: missing or wrong secret: 403, logged, nothing pushed; not POST: 405
--- perl
my $c = client(tcp => { key => 'k', room_id => 'live://1',
                        accepts => [1000, SENTINEL] });
my $body = comet_push_batch(keys_item(1000, ['k'], 'no'),
                            room_item('live://1', 1000, 'no'),
                            all_item(1000, 'no'));
my @cases = (
    ['no header', secret => undef],
    ['wrong', secret => SECRET . 'x'],
    ['prefix', secret => substr(SECRET, 0, -1)],
    ['empty', secret => ''],
    ['twice', headers => ['X-Goim-Secret: ' . SECRET]],
    ['other case', secret => uc SECRET],
);
for my $case (@cases) {
    my ($what, %o) = @$case;
    my ($st, $j, $raw) = ipush($body, %o);
    is $st, 403, "$name - $what: 403";
    is_deeply [$j->{code}, $j->{data}], [-403, { accepted => 0 }],
        "$name - $what: JSON, code -403, nothing accepted" or diag $raw;
}
like join(' ', map { (ipush($body, %$_))[1]{message} }
          { secret => undef }, { secret => 'x' x 20 },
          { headers => ['x-goim-secret: ' . SECRET] }),
     qr/^no X-Goim-Secret header wrong X-Goim-Secret X-Goim-Secret given more than once$/,
     "$name - the reason in the message";
for my $m (qw(GET PUT DELETE)) {
    my ($st, $out, $h) = http_request($m => '127.0.0.1',
        $ENV{TEST_NGINX_SERVER_PORT}, PATH, $m eq 'GET' ? undef : $body,
        headers => ['X-Goim-Secret: ' . SECRET]);
    my $j = eval { JSON::PP->new->decode($out) };
    is_deeply [$st, $h->{allow}, $j && $j->{code}], [405, 'POST', -405],
        "$name - $m: 405, Allow: POST, JSON" or diag $out;
}
sentinel_ok();
is_deeply collect($c), [], "$name - nothing delivered";
is status_sum('internal_requests_total', ',result="forbidden"'), 9,
   "$name - goim_status: 9 forbidden";
is status_sum('internal_pushes_total', ''), 0, "$name - goim_status: 0 pushes";
# the first refusal; the others of the same second are not logged
my $line = 'goim: internal push refused: no X-Goim-Secret header, '
    . 'client: 127.0.0.1';
ok wait_for_log(qr/\[warn\] .*\Q$line\E/),
   "$name - error.log: the refusal with the client address";
$c->close;



=== TEST 6: refusals are logged at most once a second
--- perl
my $body = comet_push_batch(keys_item(1000, ['k'], 'x'));
my $t0 = time;
ipush($body, secret => 'wrong-secret-0000000') for 1 .. 30;
my $took = time - $t0;
my $n = () = error_log_text() =~ /internal push refused/g;
ok $n >= 1 && $n <= int($took) + 2,
   "$name - 30 refusals in " . sprintf('%.2f', $took) . "s: $n log lines";
sleep 1.1;
ipush($body, secret => 'wrong-secret-0000000');
ok wait_for_log(qr/internal push refused: wrong X-Goim-Secret \(\d+ more like it not logged\)/),
   "$name - the next line says how many were not logged";



=== TEST 7: bad bodies and items: 400 with the reason, nothing pushed (also after good items)
--- main_config
goim_room_flush 0;
--- perl
my $c = client(ws => { key => 'k', room_id => 'live://1',
                       accepts => [1000, SENTINEL] });
my $good = comet_push_batch(keys_item(1000, ['k'], 'good'),
                            room_item('live://1', 1000, 'good'),
                            all_item(1000, 'good'));
my $pkt = packet(1000, 'x');
my $raw = sub { raw_proto(@_) };
my @cases = (
    ['not protobuf', 'this is not protobuf', qr/^the body is not a goim\.CometPushBatch$/],
    ['truncated batch', substr($good, 0, -3), qr/^the body is not a goim\.CometPushBatch$/],
    ['empty body', '', qr/^no pushes in the body$/],
    ['a PushMsg', push_msg(type => 1, operation => 1000, room => 'live://1', msg => 'x'),
     qr/^the body is not a goim\.CometPushBatch$|^no pushes/],
    ['oneof not set', comet_push_batch(comet_push()), qr/^item 0: no request set/],
    ['no proto', comet_push_batch(comet_push(push => push_msg_req(keys => ['k'],
        proto_op => 1000))), qr/^item 0: no proto$/],
    ['no keys', comet_push_batch(comet_push(push => push_msg_req(
        proto_op => 1000, proto => $raw->($pkt)))), qr/^item 0: PushMsgReq without keys$/],
    ['empty key', comet_push_batch(keys_item(1000, ['k', ''], 'x')),
     qr/^item 0: PushMsgReq with an empty key$/],
    ['1001 keys', comet_push_batch(keys_item(1000, [map { "k$_" } 1 .. 1001], 'x')),
     qr/^item 0: PushMsgReq with more than 1000 keys$/],
    ['empty room', comet_push_batch(room_item('', 1000, 'x')),
     qr/^item 0: BroadcastRoomReq without roomID$/],
    ['long room', comet_push_batch(room_item('r' x 257, 1000, 'x')),
     qr/^item 0: BroadcastRoomReq roomID longer than 256 bytes$/],
    ['negative speed', comet_push_batch(all_item(1000, 'x', -1)),
     qr/^item 0: BroadcastReq with a negative speed$/],
    ['empty OP_RAW', comet_push_batch(comet_push(room => broadcast_room_req(
        room => 'live://1', proto => $raw->()))), qr/^item 0: OP_RAW proto with an empty body$/],
    ['truncated packet', comet_push_batch(comet_push(room => broadcast_room_req(
        room => 'live://1', proto => $raw->($pkt, substr($pkt, 0, 10))))),
     qr/^item 0: OP_RAW body: packet 1 at byte 17: /],
    ['packLen too long', comet_push_batch(comet_push(room => broadcast_room_req(
        room => 'live://1', proto => $raw->(substr(packet(1000, 'xyz'), 0, 17))))),
     qr/^item 0: OP_RAW body: packet 0 at byte 0: /],
    ['headerLen 12', comet_push_batch(comet_push(room => broadcast_room_req(
        room => 'live://1', proto => $raw->(GoimClient::pack_packet(1000, 'x',
            headerlen => 12))))), qr/^item 0: OP_RAW body: packet 0 at byte 0: /],
    ['packLen 3', comet_push_batch(comet_push(room => broadcast_room_req(
        room => 'live://1', proto => $raw->(GoimClient::pack_packet(1000, '',
            packlen => 3))))), qr/^item 0: OP_RAW body: packet 0 at byte 0: /],
    ['protoOp differs', comet_push_batch(comet_push(push => push_msg_req(
        keys => ['k'], proto_op => 1000, proto => proto(op => 1001, body => 'x')))),
     qr/^item 0: protoOp 1000 differs from the op 1001 of a proto that is not OP_RAW$/],
    ['offsets without an epoch', comet_push_batch(comet_push(room =>
        broadcast_room_req(room => 'live://1', proto => $raw->($pkt),
                           offsets => [5]))),
     qr/^item 0: BroadcastRoomReq offsets without a valid epoch$/],
    ['a malformed epoch', comet_push_batch(comet_push(room =>
        broadcast_room_req(room => 'live://1', proto => $raw->($pkt),
                           epoch => 'zz-1', offsets => [5]))),
     qr/^item 0: BroadcastRoomReq offsets without a valid epoch$/],
    ['a negative offset', comet_push_batch(comet_push(room =>
        broadcast_room_req(room => 'live://1', proto => $raw->($pkt),
                           epoch => '0123456789abcdef-0', offsets => [-1]))),
     qr/^item 0: BroadcastRoomReq with a negative offset$/],
    ['two offsets, one packet', comet_push_batch(comet_push(room =>
        broadcast_room_req(room => 'live://1', proto => $raw->($pkt),
                           epoch => '0123456789abcdef-0', offsets => [5, 6]))),
     qr/^item 0: BroadcastRoomReq with 2 offsets for 1 packets$/],
    ['bad item after good ones', $good . comet_push_batch(room_item('', 1000, 'x')),
     qr/^item 3: BroadcastRoomReq without roomID$/],
    ['bad item between good ones', comet_push_batch(keys_item(1000, ['k'], 'g'),
        comet_push(), all_item(1000, 'g')), qr/^item 1: no request set/],
);
for my $case (@cases) {
    my ($what, $body, $re) = @$case;
    my ($st, $j, $out) = ipush($body);
    is $st, 400, "$name - $what: 400";
    is_deeply [$j && $j->{code}, $j && $j->{data}], [-400, { accepted => 0 }],
        "$name - $what: JSON, code -400, nothing accepted" or diag $out;
    like $j && $j->{message}, $re, "$name - $what: the reason";
}
sentinel_ok();
is_deeply collect($c), [], "$name - nothing delivered";
is status_sum('internal_requests_total', ',result="invalid"'), scalar @cases,
   "$name - goim_status: every one counted invalid";
my $line = 'goim: internal push rejected: the 20-byte body is not a '
    . 'goim.CometPushBatch, client: 127.0.0.1';
ok wait_for_log(qr/\[warn\] .*\Q$line\E/),
   "$name - error.log: the rejection with the client address";
sleep 1.1;
ipush(comet_push_batch(all_item(1000, 'x', -1)));
$line = 'goim: internal push rejected, nothing pushed: item 0: '
    . 'BroadcastReq with a negative speed (';
ok wait_for_log(qr/\[warn\] .*\Q$line\E\d+ more like it not logged\), client/),
   "$name - error.log: a rejected item, a second later";
ipush_ok($good, 3, "$name - then the good batch");
my @p = $c->read_pushes(3, 2);
is_deeply [map { $_->{body} } @p], [('good') x 3], "$name - delivered";
$c->close;



=== TEST 8: over client_max_body_size: 413; larger bodies than the buffer stay in memory
--- config
    location = /sub { goim_websocket; }
    location /goim/ { goim_logic_api; }
    location = /goim/internal/push {
        goim_internal_push;
        client_body_buffer_size 1k;
        client_max_body_size 64k;
    }
--- perl
my $c = client(tcp => { key => 'k', accepts => [1000, SENTINEL] });
my $item = keys_item(1000, ['k'], 'b' x 1000);
my $n = int(65536 / length $item);
my $fits = comet_push_batch(($item) x $n);
ok length($fits) <= 65536 && length($fits) > 60000,
   "$name - a batch of " . length($fits) . " bytes";
ipush_ok($fits, $n, "$name - $n items at the limit");
my @p = $c->read_pushes($n, 3);
is scalar(grep { $_->{body} eq 'b' x 1000 } @p), $n, "$name - all delivered";
my $big = comet_push_batch(($item) x ($n + 1));
my ($st, $j, $out) = ipush($big);
is $st, 413, "$name - " . length($big) . " bytes: 413";
# chunked: no Content-Length to check up front
my $chunked = sub {
    my ($body) = @_;
    my $half = int(length($body) / 2);
    my $enc = join '', map { sprintf("%x\r\n%s\r\n", length $_, $_) }
        substr($body, 0, $half), substr($body, $half);
    return ipush("${enc}0\r\n\r\n", headers => ['Transfer-Encoding: chunked']);
};
($st, $j) = $chunked->($big);
is $st, 413, "$name - chunked, over the limit: 413";
($st, $j) = $chunked->($fits);
is_deeply [$st, $j && $j->{data}], [200, { accepted => $n }],
    "$name - chunked, at the limit: 200";
@p = $c->read_pushes($n, 3);
is scalar(@p), $n, "$name - chunked: delivered";
sentinel_ok();
is_deeply collect($c), [], "$name - nothing from the refused bodies";
$c->close;
--- no_error_log
a client request body is buffered to a temporary file



=== TEST 9: nginx's allow/deny come first: 403 from nginx, nothing pushed
--- config
    location = /sub { goim_websocket; }
    location /goim/ { goim_logic_api; }
    location = /goim/internal/push {
        allow 127.0.0.2;
        deny all;
        goim_internal_push;
    }
    location = /status { goim_status; }
--- perl
my $c = client(tcp => { key => 'k', accepts => [1000, SENTINEL] });
my ($st, $j, $out) = ipush(comet_push_batch(keys_item(1000, ['k'], 'no')));
is $st, 403, "$name - 403";
unlike $out, qr/"code"/, "$name - nginx's page, not the module's answer";
sentinel_ok();
is_deeply collect($c), [], "$name - nothing delivered";
is status_sum('internal_requests_total', ',result="forbidden"'), 0,
   "$name - not counted: the module did not see it";
$c->close;
--- error_log
access forbidden by rule



=== TEST 10: the secret is inherited, overridden per location, and read from a file
--- http_config
    goim_internal_secret file:$TEST_NGINX_SECRET_FILE;
--- config
    location = /sub { goim_websocket; }
    location /goim/ { goim_logic_api; }
    location = /goim/internal/push { goim_internal_push; }
    location = /other/push {
        goim_internal_push;
        goim_internal_secret another-secret-0123456789;
    }
--- perl
my $c = client(tcp => { key => 'k', accepts => [1000] });
my $body = comet_push_batch(keys_item(1000, ['k'], 'x'));
ipush_ok($body, 1, "$name - the file's secret, without its newline",
         secret => 'secret-from-a-file-0123');
my ($st) = ipush($body, secret => SECRET);
is $st, 403, "$name - another secret: 403";
($st) = http_request(POST => '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT},
    '/other/push', $body, headers => ['X-Goim-Secret: another-secret-0123456789']);
is $st, 200, "$name - the location's own secret";
($st) = http_request(POST => '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT},
    '/other/push', $body, headers => ['X-Goim-Secret: secret-from-a-file-0123']);
is $st, 403, "$name - not the inherited one there";
my @p = $c->read_pushes(3, 1);
is scalar(@p), 2, "$name - two pushes delivered";
$c->close;



=== TEST 11: goim_internal_push without a secret: nginx does not start
--- http_config
--- config
    location = /goim/internal/push { goim_internal_push; }
--- must_die
--- error_log
goim_internal_push needs goim_internal_secret (location "/goim/internal/push")



=== TEST 12: nginx -t reports the missing secret
--- perl
my $root = $ENV{TEST_NGINX_SERVROOT};
open my $in, '<', "$root/conf/nginx.conf" or die "nginx.conf: $!";
my $conf = do { local $/; <$in> };
close $in;
ok $conf =~ s/^\s*goim_internal_secret [^;]*;\n//m,
   "$name - the running configuration without its secret";
open my $out, '>', "$root/conf/bad.conf" or die "bad.conf: $!";
print $out $conf;
close $out;
my $t = `$Test::Goim::NginxBin -t -p $root/ -c conf/bad.conf -e stderr 2>&1`;
isnt $? >> 8, 0, "$name - nginx -t fails";
my $want = 'goim_internal_push needs goim_internal_secret (location '
    . '"/goim/internal/push") in ';
like $t, qr/\[emerg\] \d+#\d+: \Q$want\E\S+bad\.conf:\d+/,
     "$name - naming the location" or diag $t;



=== TEST 13: a secret shorter than 16 bytes: nginx does not start
--- http_config
    goim_internal_secret 0123456789abcde;
--- config
    location = /goim/internal/push { goim_internal_push; }
--- must_die
--- error_log
"goim_internal_secret" must be at least 16 bytes



=== TEST 14: a secret with a space: nginx does not start
--- http_config
    goim_internal_secret "0123456789 abcdef";
--- config
    location = /goim/internal/push { goim_internal_push; }
--- must_die
--- error_log
"goim_internal_secret" must be printable ASCII without spaces



=== TEST 15: client_max_body_size 0 is refused (bodies are kept in memory)
--- config
    location = /goim/internal/push {
        goim_internal_push;
        client_max_body_size 0;
    }
--- must_die
--- error_log
goim_internal_push keeps bodies in memory



=== TEST 16: keep-alive, a slow body does not block the worker, a client closing mid-body is fine
--- perl
my $c = client(tcp => { key => 'k', accepts => [1000] });
my $req = sub {
    my ($body) = @_;
    return "POST @{[PATH]} HTTP/1.1\r\nHost: x\r\nX-Goim-Secret: "
        . SECRET . "\r\nContent-Length: " . length($body) . "\r\n\r\n"
        . $body;
};
# Reads one response from a keep-alive socket: (status, body).
my $read = sub {
    my ($s) = @_;
    my ($in, $sel) = ('', IO::Select->new($s));
    my $deadline = time + 3;
    while (time < $deadline) {
        if ($in =~ /\A(HTTP\/1\.1 (\d+).*?\r\n\r\n)/s) {
            my ($head, $st) = ($1, $2);
            my ($len) = $head =~ /Content-Length: (\d+)/i;
            return ($st, substr($in, length $head, $len))
                if length($in) >= length($head) + $len;
        }
        last unless $sel->can_read($deadline - time);
        sysread($s, my $buf, 65536) or last;
        $in .= $buf;
    }
    return ('none', $in);
};
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
    PeerPort => $ENV{TEST_NGINX_SERVER_PORT}) or die "connect: $!";
for my $i (1 .. 3) {
    syswrite $s, $req->(comet_push_batch(keys_item(1000, ['k'], "ka$i")));
    my ($st, $out) = $read->($s);
    is "$st $out", qq{200 {"code":0,"message":"","data":{"accepted":1}}\n},
       "$name - keep-alive request $i";
}
# half a body now, the rest later; meanwhile the worker serves others
my $body = comet_push_batch(keys_item(1000, ['k'], 'slow'));
my $r = $req->($body);
syswrite $s, substr($r, 0, length($r) - 5);
sleep 0.3;
ipush_ok(comet_push_batch(keys_item(1000, ['k'], 'meanwhile')), 1,
         "$name - another request while a body is incomplete");
syswrite $s, substr($r, -5);
my ($st, $out) = $read->($s);
is $st, 200, "$name - the slow body completes";
close $s;
# clients that go away mid-body, with and without the secret
for my $secret (SECRET, 'wrong-secret-0000000') {
    my $g = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ENV{TEST_NGINX_SERVER_PORT}) or die "connect: $!";
    syswrite $g, "POST @{[PATH]} HTTP/1.1\r\nHost: x\r\nX-Goim-Secret: "
        . "$secret\r\nContent-Length: 1000\r\n\r\n" . ('x' x 10);
    sleep 0.1;
    close $g;
}
sleep 0.2;
ipush_ok(comet_push_batch(keys_item(1000, ['k'], 'after')), 1,
         "$name - then a request is served");
my @p = $c->read_pushes(6, 2);
is_deeply [map { $_->{body} } @p], [qw(ka1 ka2 ka3 meanwhile slow after)],
    "$name - delivered";
$c->close;



=== TEST 17: goim_status counts requests, refusals, rejections and items
--- perl
my $c = client(tcp => { key => 'k', accepts => [1000] });
ipush_ok(comet_push_batch(keys_item(1000, ['k'], 'a'), all_item(1000, 'b'),
                          room_item('live://none', 1000, 'c')), 3,
         "$name - three items");
ipush_ok(comet_push_batch(keys_item(1000, ['nokey'], 'd')), 1,
         "$name - one item for a key that is not online");
ipush(comet_push_batch(keys_item(1000, ['k'], 'e')), secret => undef);
ipush(comet_push_batch(comet_push()));
my ($st, $text) = http_request(GET => '127.0.0.1',
    $ENV{TEST_NGINX_SERVER_PORT}, '/status');
my %v = map { /^goim_(internal_\w+)\{[^}]*?(?:result="(\w+)")?\} (\d+)$/
              ? ($1 . ($2 ? ":$2" : '') => $3) : () } split /\n/, $text;
is_deeply \%v, { 'internal_requests_total:ok' => 2,
                 'internal_requests_total:forbidden' => 1,
                 'internal_requests_total:invalid' => 1,
                 'internal_pushes_total' => 4 },
    "$name - the internal series" or diag $text;
like $text, qr/^# TYPE goim_internal_requests_total counter$/m,
     "$name - typed";
my @p = $c->read_pushes(3, 1);
is_deeply [map { $_->{body} } @p], ['a', 'b'], "$name - delivered";
$c->close;



=== TEST 18: 4 workers: one internal request reaches clients on every worker
--- workers: 4
--- main_config
goim_room_flush 0;
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 2, token => sub {
    my ($i) = @_;
    return { key => "w$i", room_id => $i % 2 ? 'live://odd' : 'live://even',
             accepts => $i % 4 == 3 ? [1001, SENTINEL] : [1000, SENTINEL] };
});
is scalar(keys %{ pid_counts(@c) }), 4, "$name - clients on all 4 workers";
my @keys = map { $_->{key} } @c;
my %served;
for my $round (1 .. 6) {
    my $h = ipush_ok(comet_push_batch(
        keys_item(1000, \@keys, "k$round"),
        room_item('live://odd', 1000, "odd$round"),
        room_item('live://even', 1000, "even$round"),
        all_item(1001, "all$round")), 4, "$name - round $round",
        port => $ENV{TEST_NGINX_PORT3});
    $served{ $h->{'x-worker'} // '?' }++;
}
ok keys(%served) >= 2, "$name - served by " . scalar(keys %served)
   . " workers (reuseport)";
my ($st) = api(POST => '/goim/push/all?operation=' . SENTINEL, 'END');
is $st, 200, "$name - sentinel";
for my $i (0 .. $#c) {
    my $watch = $i % 4 == 3 ? 1001 : 1000;
    my $room = $i % 2 ? 'odd' : 'even';
    my @want = map { ($watch == 1000 ? "1000:k$_" : ()), "1000:$room$_",
                     ($watch == 1001 ? "1001:all$_" : ()) } 1 .. 6;
    is_deeply collect($c[$i]), \@want,
        "$name - $c[$i]{key} ($c[$i]{transport}, worker $c[$i]{pid})";
}
$_->close for @c;



=== TEST 19: a full inbox stops the batch: 503 with the items pushed; the job retries the rest
--- workers: 4
--- main_config
goim_inbox_size 16;
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1,
                       transports => ['tcp'], token => sub {
    my ($i) = @_;
    return { key => "q$i", accepts => [1000] };
});
my $victim = $c[0];
my $w = $victim->{pid};
my $other = (grep { $_->{pid} != $w } @c)[0];
my @items = map { keys_item(1000, [$victim->{key}], "m$_") } 1 .. 20;
my ($st, $j, $raw, $retry);
my $stopped = kill 'STOP', $w;
my $ok = eval {
    ok wait_until(sub { (proc_state($w) // '') eq 'T' }, T(2)),
       "$name - worker $w stopped";
    # on the shared (not reuseport) http port: the stopped worker does
    # not take the request, the others do
    ($st, $j, $raw) = ipush(comet_push_batch(@items), timeout => T(3));
    $retry = [ipush(comet_push_batch(@items[16 .. 19],
                                     keys_item(1000, [$other->{key}], 'o')),
                    timeout => T(3))];
    1;
};
my $err = $@;
kill 'CONT', $w if $stopped;
die $err unless $ok;
is_deeply [$st, $j], [503, { code => -500, data => { accepted => 16 },
    message => "item 16 refused: a worker's inbox is full" }],
    "$name - 503, 16 accepted: the inbox holds 16" or diag $raw;
is_deeply [@$retry[0, 1]], [503, { code => -500, data => { accepted => 0 },
    message => "item 0 refused: a worker's inbox is full" }],
    "$name - still full: the retry is refused at its first item";
my @p = $victim->read_pushes(16, T(3));
is_deeply [map { $_->{body} } @p], [map { "m$_" } 1 .. 16],
    "$name - the resumed worker delivers the 16 accepted, in order";
ipush_ok(comet_push_batch(@items[16 .. 19]), 4, "$name - the job's retry");
@p = $victim->read_pushes(5, T(2));
is_deeply [map { $_->{body} } @p], [map { "m$_" } 17 .. 20],
    "$name - then the rest, each once";
is status_sum('internal_pushes_total', ''), 20,
   "$name - goim_status: 20 items pushed";
$_->close for @c;
--- error_log
a worker's inbox is full, push refused
internal push stopped: item 16 refused



=== TEST 20: goim_history: a worker whose inbox was full gets the job's room messages when they come again, in order; the others not twice
--- workers: 4
--- main_config
goim_inbox_size 16;
goim_room_flush 0;
goim_history size=64 ttl=60s;
--- perl
my $epoch = '0123456789abcdef-0';
my $item = sub {
    my ($offsets, @bodies) = @_;
    return comet_push_batch(comet_push(room => broadcast_room_req(
        room => 'live://h', epoch => $epoch, offsets => $offsets,
        proto => raw_proto(map { packet(1000, $_) } @bodies))));
};
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1,
                       transports => ['tcp'], token => sub {
    my ($i) = @_;
    return { key => "h$i", room_id => 'live://h', accepts => [1000, SENTINEL] };
});
my $victim = $c[0];
my $w = $victim->{pid};
my @others = grep { $_->{pid} != $w } @c;
my $resent = sub {
    my ($st, $text) = http_request(GET => '127.0.0.1',
        $ENV{TEST_NGINX_SERVER_PORT}, '/status');
    return $text =~ /^goim_history_resent_total (\d+)$/m ? $1 : undef;
};
my $one = $item->([99, 100], 'h1', 'h2');
my $two = $item->([101], 'h3');
my (@first, @again, @later);
my $stopped = kill 'STOP', $w;
my $ok = eval {
    ok wait_until(sub { (proc_state($w) // '') eq 'T' }, T(2)),
       "$name - worker $w stopped";
    ipush_ok(comet_push_batch(map { keys_item(1000, [$victim->{key}],
                                              "m$_") } 1 .. 16),
             16, "$name - 16 pushes fill the stopped worker's inbox",
             timeout => T(3));
    @first = [ipush($one, timeout => T(3))];
    # the job sends the item again while the worker is still stopped
    @again = [ipush($one, timeout => T(3))];
    # a later message is held back from the worker that missed one
    @later = [ipush($two, timeout => T(3))];
    1;
};
my $err = $@;
kill 'CONT', $w if $stopped;
die $err unless $ok;
my $refused = { code => -500, data => { accepted => 0 },
                message => "item 0 refused: a worker's inbox is full" };
is_deeply [@{ $first[0] }[0, 1]], [503, $refused],
    "$name - 503: a worker missed the item";
is_deeply [@{ $again[0] }[0, 1]], [503, $refused],
    "$name - 503 again while it is stopped";
is_deeply [@{ $later[0] }[0, 1]], [503, $refused],
    "$name - 503 for the later message held back from it";
for my $o (@others) {
    my @p = $o->read_pushes(3, T(3));
    is_deeply [map { [$_->{body}, $_->{seq}] } @p],
        [['h1', 100], ['h2', 101], ['h3', 102]],
        "$name - worker $o->{pid}: each message once, at its offset";
}
my @p = $victim->read_pushes(16, T(3));
is_deeply [map { $_->{body} } @p], [map { "m$_" } 1 .. 16],
    "$name - the resumed worker delivers its 16 key pushes";
ipush_ok($one, 1, "$name - the job's retry of the first item");
ipush_ok($two, 1, "$name - then of the second");
@p = $victim->read_pushes(3, T(3));
is_deeply [map { [$_->{body}, $_->{seq}] } @p],
    [['h1', 100], ['h2', 101], ['h3', 102]],
    "$name - the worker that missed them gets them, in order";
# the first item came twice for the worker, then each item once more
is $resent->(), 5, "$name - goim_history_resent_total 5";
ipush_ok($item->([102], 'h4'), 1, "$name - a new message");
ipush_ok($one, 1, "$name - the first item a third time: a duplicate");
my ($st) = api(POST => '/goim/push/all?operation=' . SENTINEL, 'END');
is $st, 200, "$name - sentinel";
for my $cl (@c) {
    is_deeply collect($cl), ['1000:h4'],
        "$name - worker $cl->{pid}: then only the new one";
}
$_->close for @c;
--- error_log
a worker's inbox is full, push refused
