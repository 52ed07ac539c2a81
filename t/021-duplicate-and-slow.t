# A duplicate key kicks the older connection (docs/PROTOCOL.md 1.3 step
# 5, 1.11); a client
# that stops reading hits the bounded queue policy (drop the newest push,
# log "send queue full") while every other client keeps receiving.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops :ws http_json);
use GoimTest qw(SENTINEL default_servers client api push_or_fail sentinel
                collect_bodies close_code);
use Time::HiRes qw(time sleep);

skip_unless_module();

# TCP on the stream port, WebSocket and the API on the http port; the
# slow-reader blocks (`--- sndbuf`) get TCP and WebSocket servers with a
# small send buffer instead (the API stays on the http port).
add_block_preprocessor(sub {
    my $block = shift;
    if (defined $block->{sndbuf}) {
        $block->set_value(stream_config => <<'EOF') unless $block->stream_config;
    server {
        listen 127.0.0.1:$TEST_NGINX_STREAM_PORT sndbuf=4k;
        goim_tcp;
    }
EOF
        $block->set_value(http_config => <<'EOF') unless $block->http_config;
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT2 sndbuf=4k;
        location = /sub { goim_websocket; }
    }
EOF
    }
    default_servers($block, config => <<'EOF');
    location = /sub { goim_websocket; }
    location /goim/ {
        client_body_buffer_size 16k;
        goim_logic_api;
    }
EOF
});

# client('tcp' | 'ws', $token, port => .., rcvbuf => bytes) (GoimTest):
# with rcvbuf the socket's receive buffer is set before connect(), so the
# window the client advertises stays small.

# Bodies numbered from "0001": the first $first in sequence (nothing is
# dropped before the queue is full), the rest strictly increasing (drops
# leave gaps, never reorder or repeat).  When the queue is full, the
# kernel may still take a little more later, so later pushes may arrive.
sub in_order {
    my ($b, $first) = @_;
    return 0 if @$b < $first;
    for my $i (0 .. $#$b) {
        return 0 if $i < $first && $b->[$i] != $i + 1;
        return 0 if $i > 0 && $b->[$i] <= $b->[$i - 1];
    }
    return 1;
}

# Reads what a client that stopped reading has waiting: pushes until
# none arrived for half a second.
sub drain {
    my ($c) = @_;
    my @got;
    while (my ($p) = $c->read_pushes(1, 0.5)) {
        push @got, $p;
    }
    return @got;
}


run_tests();

__DATA__

=== TEST 1: duplicate key kicks the older connection, every transport pair
--- perl
for my $pair (['tcp', 'tcp'], ['tcp', 'ws'], ['ws', 'tcp'], ['ws', 'ws']) {
    my ($t_old, $t_new) = @$pair;
    my $what = "$t_old then $t_new";
    my $old = client($t_old, { mid => 1, key => 'dup', accepts => [1000] });
    my $new = client($t_new, { mid => 1, key => 'dup', accepts => [1000] });
    is close_code($old), $t_old eq 'ws' ? 1008 : 'none',
       "$name - $what: older closed"
       . ($t_old eq 'ws' ? ' with 1008' : '');
    is scalar(grep { $_->{op} != OP_AUTH_REPLY } @{ $old->{inbox} }), 0,
       "$name - $what: nothing else sent to the older one";
    push_or_fail('/goim/push/keys?operation=1000&keys=dup', "to-$what");
    my ($p) = $new->read_pushes(1, 2);
    is $p && $p->{body}, "to-$what", "$name - $what: newer gets the push";
    is $new->heartbeat, 0, "$name - $what: newer alive";
    $_->close for $old, $new;
}
--- error_log
goim: duplicate key: replaced by a newer connection



=== TEST 2: after a kick, rooms, mids and counts hold the newer one only
--- perl
my $watch = client(tcp => { mid => 9, key => 'watch', room_id => 'live://1',
                            accepts => [SENTINEL] });
my $old = client(ws => { mid => 1, key => 'k', room_id => 'live://1',
                         accepts => [1000, SENTINEL] });
is $watch->heartbeat, 2, "$name - two in the room";
my $new = client(tcp => { mid => 1, key => 'k', room_id => 'live://2',
                          accepts => [1000, SENTINEL] });
is close_code($old), 1008, "$name - older kicked";
is $watch->heartbeat, 1, "$name - the older one left live://1";
is $new->heartbeat, 1, "$name - the newer one is in live://2";
push_or_fail('/goim/push/mids?operation=1000&mids=1', 'by-mid');
push_or_fail('/goim/push/room?operation=1000&type=live&room=1', 'room1');
push_or_fail('/goim/push/room?operation=1000&type=live&room=2', 'room2');
sentinel();
is_deeply collect_bodies($new), ['by-mid', 'room2'], "$name - newer: mid once, room 2";
is_deeply collect_bodies($watch), ['room1'], "$name - watcher: room 1";
my ($st, $j) = api(GET => '/goim/online/total');
is $j->{data}{conn_count}, 2, "$name - two connections counted";
($st, $j) = api(GET => '/goim/online/room?type=live&rooms=1&rooms=2');
is_deeply $j->{data}, { 1 => 1, 2 => 1 }, "$name - room counts";
$new->close;
my $deadline = time + 2;
do { sleep 0.02; ($st, $j) = api(GET => '/goim/online/room?type=live&rooms=2') }
    until $j->{data}{2} == 0 || time > $deadline;
is $j->{data}{2}, 0, "$name - newer closed: live://2 empty";
is $watch->heartbeat, 1, "$name - watcher still counted";
$watch->close;



=== TEST 3: three generations of one key; only the last one stays
--- perl
my @gen = map { client($_ % 2 ? 'ws' : 'tcp',
                       { mid => 1, key => 'gen', room_id => 'live://g',
                         accepts => [1000] }) } 1 .. 3;
is close_code($gen[0]), 1008, "$name - first kicked (ws)";
is close_code($gen[1]), 'none', "$name - second kicked (tcp)";
is $gen[2]->heartbeat, 1, "$name - the room counts one";
push_or_fail('/goim/push/keys?operation=1000&keys=gen', 'last');
my @p = $gen[2]->read_pushes(2, 0.5);
is_deeply [map { $_->{body} } @p], ['last'], "$name - the last one gets it once";
$_->close for @gen;



=== TEST 4: a client that stops reading: its pushes are dropped, others get all
# each push waits for the fast readers: room batching would only add
# goim_room_flush to every push here, so it is off
--- sndbuf: 1
--- main_config
goim_send_queue 16 64k;
goim_room_flush 0;
--- perl
my $tok = { room_id => 'live://slow', accepts => [1000, SENTINEL] };
my $p2 = $ENV{TEST_NGINX_PORT2};
my %fast = (tcp => client(tcp => $tok), ws => client(ws => $tok, port => $p2));
my %slow = (tcp => client(tcp => $tok, rcvbuf => 4096),
            ws => client(ws => $tok, rcvbuf => 4096, port => $p2));
my $n = 60;
my $big = 'x' x 3990;
my %got;
for my $i (1 .. $n) {
    last unless push_or_fail('/goim/push/room?operation=1000&type=live&room=slow',
                        sprintf('%04d', $i) . $big);
    for my $t (sort keys %fast) {
        my ($p) = $fast{$t}->read_pushes(1, 3);
        push @{ $got{$t} }, $p ? substr($p->{body}, 0, 4) : 'none';
    }
}
my @want = map { sprintf '%04d', $_ } 1 .. $n;
is_deeply $got{$_}, \@want, "$name - fast $_ client got all $n in order"
    for sort keys %fast;
ok wait_for_log('goim: send queue full', 2), "$name - 'send queue full' logged";
for my $t (sort keys %slow) {
    my $c = $slow{$t};
    my @p = drain($c);
    my @bodies = map { substr $_->{body}, 0, 4 } @p;
    my $k = @bodies;
    ok in_order(\@bodies, 16), "$name - slow $t client: the first 16 (a "
        . "full queue), then later ones in order, no repeats: @bodies";
    ok $k >= 16 && $k < $n, "$name - slow $t client: got $k of $n "
        . "(queue of 16 plus socket buffers; the newest dropped)";
    ok !(grep { length $_->{body} != 3994 } @p),
        "$name - slow $t client: every push intact";
    ok !$c->is_closed, "$name - slow $t client: still connected";
}
# once it read again, the slow client gets new pushes
push_or_fail('/goim/push/room?operation=1000&type=live&room=slow', 'after');
sentinel();
is_deeply collect_bodies($_), ['after'], "$name - $_->{transport} client: pushes "
    . "flow again" for values %slow;
is_deeply collect_bodies($_), ['after'], "$name - fast $_->{transport} client: "
    . "nothing extra" for values %fast;
$_->close for values %fast, values %slow;



=== TEST 5: slow reader with key pushes and broadcasts, TCP and WebSocket
--- sndbuf: 1
--- main_config
goim_send_queue 8 1m;
--- perl
my $p2 = $ENV{TEST_NGINX_PORT2};
my $fast = client(tcp => { key => 'fast', accepts => [1000, SENTINEL] });
my $slow_t = client(tcp => { key => 'slow-t', accepts => [1000, SENTINEL] },
                    rcvbuf => 4096);
my $slow_w = client(ws => { key => 'slow-w', accepts => [1000, SENTINEL] },
                    rcvbuf => 4096, port => $p2);
my $n = 50;
my @fast_got;
for my $i (1 .. $n) {
    my $body = sprintf('%04d', $i) . ('y' x 8000);
    my $path = $i % 2 ? '/goim/push/all?operation=1000'
                      : '/goim/push/keys?operation=1000&keys=fast'
                        . '&keys=slow-t&keys=slow-w';
    push_or_fail($path, $body) or last;
    my ($p) = $fast->read_pushes(1, 3);
    push @fast_got, $p ? substr($p->{body}, 0, 4) : 'none';
}
my @want = map { sprintf '%04d', $_ } 1 .. $n;
is_deeply \@fast_got, \@want, "$name - fast client got all $n";
for my $c ($slow_t, $slow_w) {
    my @b = map { substr $_->{body}, 0, 4 } drain($c);
    my $k = @b;
    ok in_order(\@b, 8), "$name - slow $c->{transport}: the first 8, then "
        . "in order: @b";
    ok $k >= 8 && $k < $n, "$name - slow $c->{transport}: $k of $n";
}
$_->close for $fast, $slow_t, $slow_w;
--- error_log
goim: send queue full



=== TEST 6: a client that never reads its replies is closed
--- sndbuf: 1
--- main_config
goim_send_queue 16 64k;
--- perl
my $p2 = $ENV{TEST_NGINX_PORT2};
my $other = client(tcp => { key => 'other', accepts => [1000] });
my %c = (reading => client(tcp => { key => 'reading' }, rcvbuf => 4096),
         'deaf tcp' => client(tcp => { key => 'deaf-t' }, rcvbuf => 4096),
         'deaf ws' => client(ws => { key => 'deaf-w' }, rcvbuf => 4096,
                             port => $p2));
# batches of 8 heartbeats (a reading client never has 32 replies queued)
my $hb = GoimClient::pack_packet(OP_HEARTBEAT, '');
my %bytes = (reading => $hb x 8, 'deaf tcp' => $hb x 8,
             'deaf ws' => GoimClient::ws_frame(WS_BINARY, $hb) x 8);
my ($answered, $batches) = (0, 0);
while ($batches < 500) {
    $batches++;
    $c{$_}->send_raw($bytes{$_}) for sort keys %c;
    for (1 .. 8) {
        $c{reading}->wait_op(OP_HEARTBEAT_REPLY, 2) or last;
        $answered++;
    }
    my $closed = () = error_log_text() =~ /does not read its replies/g;
    last if $closed >= 2;
}
is $answered, 8 * $batches, "$name - reading client: all "
    . 8 * $batches . " heartbeats answered";
ok !$c{reading}->is_closed, "$name - reading client stays";
ok wait_for_log('goim: client does not read its replies', 3),
   "$name - policy logged";
ok $c{'deaf tcp'}->expect_closed(3), "$name - deaf tcp: closed";
my $replies = grep { $_->{op} == OP_HEARTBEAT_REPLY } @{ $c{'deaf tcp'}{inbox} };
ok $replies < 8 * $batches, "$name - deaf tcp: not every heartbeat answered "
    . "($replies)";
is close_code($c{'deaf ws'}), 1008, "$name - deaf ws: Close 1008 after "
    . "its replies";
ok $c{'deaf ws'}->is_closed, "$name - deaf ws: closed";
push_or_fail('/goim/push/keys?operation=1000&keys=other', 'still');
my ($p) = $other->read_pushes(1, 2);
is $p && $p->{body}, 'still', "$name - others unaffected";
$_->close for $other, values %c;



=== TEST 7: a burst of room messages larger than the send queue reaches readers
# goim_send_queue bounds each connection; room messages that arrive within
# goim_room_flush are merged into one OP_RAW batch.  A batch is one queue
# entry, so a batch larger than the queue's bytes can never be queued, not
# even on an idle connection that reads everything.
--- main_config
goim_send_queue 256 64k;
--- perl
my @c = map { client($_, { room_id => 'live://burst', accepts => [SENTINEL] }) }
        qw(tcp ws);
my $n = 40;
push_or_fail('/goim/push/room?operation=1000&type=live&room=burst',
        sprintf('%04d', $_) . ('b' x 3996)) for 1 .. $n;
my @want = map { sprintf '%04d', $_ } 1 .. $n;
{
    for my $c (@c) {
        my @b = map { substr $_->{body}, 0, 4 } $c->read_pushes($n, 2);
        is_deeply \@b, \@want, "$name - $c->{transport} reader got all $n "
            . "(" . scalar(@b) . ")";
    }
}
$_->close for @c;
