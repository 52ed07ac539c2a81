# Members' messages kept in Redis (docs/PROTOCOL.md 1.16, 3.7): with
# goim_redis and goim_history members=on, the logic API keeps every push
# by mid it accepts in the member's stream offline_<mid> before it
# answers: the stream id's milliseconds are the epoch, its sequence the
# offset (1, 2, ...); MAXLEN ~ size, PEXPIRE ttl; a write that fails
# answers an error.  The comet puts each member's connection in its
# stream from auth (op 8's mid://<mid> entry, stream 0), gives live
# pushes by mid their position (ver 0, seq the offset), and recovers the
# missed ones with op 35.  Each block gets its own redis-server.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use GoimTest qw(default_servers connected api);
use GoimRedis qw(have_redis redis_start redis_stop redis_port rcli
                 wait_until);
use JSON::PP ();
use Time::HiRes qw(time sleep);

skip_unless_module();

unless (have_redis()) {
    Test::More::plan(skip_all => 'redis-server and redis-cli are needed');
}

add_block_preprocessor(sub {
    my $block = shift;
    redis_stop();
    redis_start($ENV{TEST_NGINX_PORT2});
    default_servers($block);
});

# POST /goim/push/mids: the answer's code and message
sub mid_push {
    my ($mids, $msg) = @_;
    my ($st, $j, $raw) = api(POST => '/goim/push/mids?operation=1000&'
                             . join('&', map { "mids=$_" } @$mids), $msg);
    return ($j ? ($j->{code}, $j->{message}) : (undef, $raw // 'none'));
}

# the stream as [epoch, offset, op, body], oldest first
sub stream {
    my ($mid) = @_;
    my $out = rcli('XRANGE', "offline_$mid", '-', '+') // return undef;
    my @l = split /\n/, $out;
    my @e;
    while (@l) {
        my ($id, %f) = splice @l, 0, 5;
        my ($epoch, $offset) = $id =~ /^(\d+)-(\d+)\z/ or return undef;
        push @e, [$epoch, $offset, $f{op}, $f{body}];
    }
    return \@e;
}

# the member's entry in a list of rooms (op 8, op 36)
sub entry {
    my ($rooms, $mid) = @_;
    my ($e) = grep { $_->{room_id} eq "mid://$mid" } @{ $rooms // [] };
    return $e;
}

# member($mid, key => , recover => [epoch, offset], transport => ): a
# connection of the member, op 35 sent before op 7 with recover; returns
# ($client, the op 8 body)
sub member {
    my ($mid, %o) = @_;
    my $c = connected($o{transport} // 'tcp');
    if ($o{recover}) {
        $c->send_packet(35, JSON::PP::encode_json({ rooms => [{
            room_id => "mid://$mid", epoch => "$o{recover}[0]",
            offset => $o{recover}[1] + 0 }] }));
    }
    my $r = $c->auth({ mid => $mid, key => $o{key} // "k$mid",
                       accepts => [1000] })
        or die "auth of member $mid failed: " . ($c->error // '') . "\n";
    return ($c, $r);
}

# every packet that comes until none has for $quiet s, as
# "op/ver/seq/body" (op 36 as "36:<body>")
sub drain {
    my ($c, $quiet) = @_;
    my @p;
    while (my $p = $c->read_packet($quiet // 0.5)) {
        push @p, $p->{op} == 36 ? "36:$p->{body}"
                                : "$p->{op}/$p->{ver}/$p->{seq}/$p->{body}";
    }
    return @p;
}

# the stream's epoch (its last id's milliseconds)
sub epoch_of {
    my ($mid) = @_;
    my $s = stream($mid) or return undef;
    return @$s ? $s->[-1][0] : undef;
}

run_tests();

__DATA__

=== TEST 1: pushes by mid kept in offline_<mid>, online or not, in order
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
# no stream yet: op 8 gives the member room at epoch "0", offset 0
my ($c, $r) = member(5);
is_deeply entry($r->{rooms}, 5),
    { room_id => 'mid://5', joined => JSON::PP::true, stream => 0,
      epoch => '0', offset => 0 },
    "$name - op 8: the member room, no stream yet" or diag explain $r;
my $t0 = int(time * 1000);
is_deeply [mid_push([5, 6], "m$_")], [0, ''], "$name - push $_ accepted"
    for 1 .. 3;
my $t1 = int(time * 1000);

# the online member gets them live with their positions, after op 36
# naming the new stream's epoch
my $ep = epoch_of(5);
is_deeply [drain($c)],
    ["36:{\"rooms\":[{\"room_id\":\"mid://5\",\"stream\":0,"
     . "\"epoch\":\"$ep\",\"offset\":0}]}",
     map { "1000/0/$_/m$_" } 1 .. 3],
    "$name - member 5 gets m1..m3 live: ver 0, seq 1..3";

for my $mid (5, 6) {
    my $s = stream($mid);
    is_deeply [map { [@$_[1 .. 3]] } @$s],
        [[1, 1000, 'm1'], [2, 1000, 'm2'], [3, 1000, 'm3']],
        "$name - offline_$mid: offsets 1..3, op and body" or diag explain $s;
    my %epochs = map { $_->[0] => 1 } @$s;
    is scalar(keys %epochs), 1, "$name - offline_$mid: one epoch";
    my ($e) = keys %epochs;
    ok $e >= $t0 - 1000 && $e <= $t1 + 1000,
        "$name - offline_$mid: the epoch is the time of its first message"
        or diag "epoch $e, pushes between $t0 and $t1";
    my $pttl = rcli('PTTL', "offline_$mid");
    ok $pttl > 55000 && $pttl <= 60000, "$name - offline_$mid: PTTL is ttl"
        or diag "PTTL $pttl";
}

# mid 0 is nobody: nothing kept, the push still answers
is_deeply [mid_push([0], 'anon')], [0, ''], "$name - a push to mid 0";
is rcli('EXISTS', 'offline_0'), '0', "$name - no offline_0";

# a new stream (e.g. expired) starts a new epoch at offset 1
my $old = stream(6)->[0][0];
rcli('DEL', 'offline_6');
sleep 0.01;
is_deeply [mid_push([6], 'again')], [0, ''], "$name - push after DEL";
my $s = stream(6);
is scalar(@$s), 1, "$name - one message in the new stream";
is $s->[0][1], 1, "$name - offset 1 again";
ok $s->[0][0] > $old, "$name - a new epoch" or diag explain $s;
$c->close;
--- no_error_log
[error]
[warn]



=== TEST 2: the batch's mid items kept with each item's op and body
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
my $body = join "\n",
    '{"type":"mids","mids":[21,22],"operation":1001,"msg":"one"}',
    '{"type":"keys","keys":["nobody"],"operation":1000,"msg":"key"}',
    '{"type":"mids","mids":[22],"operation":1002,"msg_base64":"AAEC"}';
my ($st, $j, $raw) = api(POST => '/goim/push/batch', $body);
is_deeply [$st, $j && $j->{code}, $j && $j->{data}{accepted}], [200, 0, 3],
    "$name - the batch accepted" or diag $raw;
is_deeply [map { [@$_[1 .. 3]] } @{ stream(21) }], [[1, 1001, 'one']],
    "$name - offline_21";
is_deeply [map { [@$_[1 .. 3]] } @{ stream(22) }],
    [[1, 1001, 'one'], [2, 1002, "\0\1\2"]], "$name - offline_22, in order";
is rcli('KEYS', 'offline_*') =~ tr/\n//, 1, "$name - no other stream";
--- no_error_log
[error]
[warn]



=== TEST 3: MAXLEN ~ size: old messages go, offsets go on
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=4 ttl=60s members=on;
--- perl
my $bad = 0;
for my $i (1 .. 250) {
    my ($code, $msg) = mid_push([31], "n$i");
    $bad++ unless defined $code && $code == 0;
}
is $bad, 0, "$name - 250 pushes accepted";
my $s = stream(31);
ok @$s >= 4 && @$s < 250, "$name - trimmed, at least size kept"
    or diag scalar(@$s) . " kept";
is_deeply [map { $_->[1] } @$s], [251 - @$s .. 250],
    "$name - the last ones, offsets consecutive up to 250";
is $s->[-1][3], 'n250', "$name - the last body";
--- no_error_log
[error]
[warn]



=== TEST 4: a write that fails answers an error; Redis down too
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
rcli('SET', 'offline_9', 'not a stream');
my ($code, $msg) = mid_push([9], 'x');
is $code, -500, "$name - offline_9 is not a stream: -500";
like $msg,
    qr/^redis: member 9: the message was not kept \(offline_9\): .*WRONGTYPE/,
    "$name - the reason";
is_deeply [mid_push([10], 'y')], [0, ''], "$name - another member is fine";

redis_stop('KILL');
ok wait_for_log(qr/connection lost/, 3), "$name - Redis is gone";
($code, $msg) = mid_push([10], 'z');
is $code, -500, "$name - Redis down: -500";
like $msg, qr/^redis: /, "$name - says Redis" or diag $msg;
--- error_log
push refused: member 9: the message was not kept



=== TEST 5: members=off with goim_redis: nothing kept
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s;
--- perl
is_deeply [mid_push([41], 'p')], [0, ''], "$name - push by mid";
is rcli('KEYS', 'offline_*'), '', "$name - no stream";
--- no_error_log
[error]
[warn]



=== TEST 6: disconnect, N pushes, reconnect with op 35: exactly the N missed, in order, then live
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
my ($c, $r) = member(7);
is_deeply [mid_push([7], "a$_")], [0, ''], "$name - a$_" for 1 .. 3;
my $ep = epoch_of(7);
my @got = drain($c);
is scalar(@got), 4, "$name - op 36 and a1..a3 live" or diag explain \@got;
is $got[-1], '1000/0/3/a3', "$name - the last one read: offset 3";
$c->close;

# away: 5 pushes, the answer says none was delivered
for my $i (1 .. 5) {
    my ($st, $j) = api(POST => '/goim/push/mids?operation=1000&mids=7',
                       "b$i");
    is_deeply [$j && $j->{code}, $j && $j->{data}{delivered_here}], [0, 0],
        "$name - b$i kept, nobody online";
}

($c, $r) = member(7, recover => [$ep, 3]);
is_deeply entry($r->{rooms}, 7),
    { room_id => 'mid://7', joined => JSON::PP::true, stream => 0,
      epoch => "$ep", offset => 8 },
    "$name - op 8: the seam is offset 8" or diag explain $r;
is_deeply [mid_push([7], 'c1')], [0, ''], "$name - c1, live";
is_deeply [drain($c)],
    [(map { '1000/0/' . ($_ + 3) . "/b$_" } 1 .. 5),
     "36:{\"rooms\":[{\"room_id\":\"mid://7\",\"stream\":0,"
     . "\"epoch\":\"$ep\",\"offset\":8,\"recovered\":true,\"messages\":5}]}",
     '1000/0/9/c1'],
    "$name - b1..b5 (4..8), op 36, then c1 (9): none twice";

# a connection that does not ask gets only what comes after its seam
my ($d, $rd) = member(7, key => 'k7b');
is entry($rd->{rooms}, 7)->{offset}, 9, "$name - a new connection: seam 9";
is_deeply [mid_push([7], 'c2')], [0, ''], "$name - c2";
is_deeply [drain($d)], ['1000/0/10/c2'], "$name - it gets c2 alone";
is_deeply [drain($c)], ['1000/0/10/c2'], "$name - and so does the other";
--- no_error_log
[error]
[warn]



=== TEST 7: WebSocket: the missed messages in one op 9 message
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
is_deeply [mid_push([8], "w$_")], [0, ''], "$name - w$_" for 1 .. 4;
my $ep = epoch_of(8);
my ($c, $r) = member(8, transport => 'ws', recover => [$ep, 1]);
is entry($r->{rooms}, 8)->{offset}, 4, "$name - op 8: seam 4";
my @p = map { scalar $c->read_packet(2) } 1 .. 3;
is_deeply [map { $_ && [$_->{ver}, $_->{seq}, $_->{body}, $_->{raw_batch}] }
           @p],
    [[0, 2, 'w2', 3], [0, 3, 'w3', 3], [0, 4, 'w4', 3]],
    "$name - w2..w4 in one op 9 message, ver 0, seq 2..4";
my $res = $c->wait_op(36, 2);
like $res && $res->{body}, qr/"recovered":true,"messages":3/,
    "$name - op 36: recovered 3";
--- no_error_log
[error]
[warn]



=== TEST 8: beyond the window, the epoch changed, offsets in the future, a malformed epoch
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=4 ttl=60s members=on;
--- perl
is_deeply [mid_push([11], "x$_")], [0, ''], "$name - x$_" for 1 .. 12;
my $ep = epoch_of(11);

# the result of op 36 for the member room, then one live push
my $try = sub {
    my ($what, $rec, $reason) = @_;
    my ($c, $r) = member(11, recover => $rec);
    my $seam = entry($r->{rooms}, 11)->{offset};
    my $res = $c->wait_op(36, 3);
    my $e = entry($res ? JSON::PP::decode_json($res->{body})->{rooms} : [],
                  11);
    is_deeply [$e && @$e{qw(recovered reason)}],
        [JSON::PP::false, $reason], "$name - $what: $reason"
        or diag explain $e;
    is_deeply [mid_push([11], "after $what")], [0, ''],
        "$name - $what: a push";
    my $n = $seam + 1;
    my $ep2 = epoch_of(11);
    is_deeply [drain($c, 0.3)], ["1000/0/$n/after $what"],
        "$name - $what: then the live stream from the seam, nothing else";
    $c->close;
};

# size 4: 8 missed are more than the history keeps
$try->('8 missed', [$ep, 4], 'offset older than the history');
$try->('in the future', [$ep, 1000], 'offset in the future');
$try->('another epoch', [$ep - 1, 12], 'epoch changed');
$try->('malformed', ['1-1', 2], 'epoch malformed');

# the stream was removed (or expired): its next message starts an epoch
rcli('DEL', 'offline_11');
sleep 0.01;
is_deeply [mid_push([11], 'new')], [0, ''], "$name - push after DEL";
my $ep3 = epoch_of(11);
ok $ep3 > $ep, "$name - a new epoch";
my ($c, $r) = member(11, recover => [$ep, 16]);
is_deeply entry($r->{rooms}, 11),
    { room_id => 'mid://11', joined => JSON::PP::true, stream => 0,
      epoch => "$ep3", offset => 1 },
    "$name - op 8: the new epoch's seam";
my $res = $c->wait_op(36, 3);
like $res && $res->{body}, qr/"epoch":"$ep3","offset":1,"recovered":false,"reason":"epoch changed"/,
    "$name - op 36: epoch changed, with the new position";
--- no_error_log
[error]
[warn]



=== TEST 9: two connections of one member, each from its own position
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
is_deeply [mid_push([12], "y$_")], [0, ''], "$name - y$_" for 1 .. 6;
my $ep = epoch_of(12);
my ($a, $ra) = member(12, key => 'phone', recover => [$ep, 2]);
my ($b, $rb) = member(12, key => 'laptop', recover => [$ep, 5]);
is_deeply [mid_push([12], 'z')], [0, ''], "$name - z, to both";
my $ok = "\"recovered\":true";
is_deeply [drain($a)],
    [(map { "1000/0/$_/y$_" } 3 .. 6),
     "36:{\"rooms\":[{\"room_id\":\"mid://12\",\"stream\":0,\"epoch\":\"$ep\","
     . "\"offset\":6,$ok,\"messages\":4}]}", '1000/0/7/z'],
    "$name - the phone: y3..y6, op 36, z";
is_deeply [drain($b)],
    ['1000/0/6/y6',
     "36:{\"rooms\":[{\"room_id\":\"mid://12\",\"stream\":0,\"epoch\":\"$ep\","
     . "\"offset\":6,$ok,\"messages\":1}]}", '1000/0/7/z'],
    "$name - the laptop: y6, op 36, z";
--- no_error_log
[error]
[warn]



=== TEST 10: pushes racing the reconnects: every message once, in order
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=4096 ttl=60s members=on;
--- perl
is_deeply [mid_push([13], 'first')], [0, ''], "$name - the first message";
my $ep = epoch_of(13);
my ($pushers, $each) = (3, 150);
my $total = 1 + $pushers * $each;
my @pids;
for my $k (1 .. $pushers) {
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        for my $i (1 .. $each) {
            api(POST => '/goim/push/mids?operation=1000&mids=13', "p$k-$i");
            sleep 0.003;
        }
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
# reconnect again and again while the pushes go, each connection from
# the last offset its predecessor read: its packets must continue the
# sequence exactly
my ($last, $bad, $conns, %body) = (1, 0, 0);
$body{1} = 'first';
my $deadline = time + 30;
while ($last < $total && time < $deadline) {
    my ($c, $r) = member(13, recover => [$ep, $last]);
    $conns++;
    my $seam = entry($r->{rooms}, 13)->{offset};
    my $until = time + rand(0.03);
    while (time < $until || $last < $seam) {
        my $p = $c->read_packet(1) or last;
        next if $p->{op} == 36;
        if ($p->{seq} != $last + 1) {
            $bad++;
            diag "got $p->{seq} after $last";
        }
        $body{ $p->{seq} } = $p->{body};
        $last = $p->{seq};
    }
    $c->close;
}
waitpid $_, 0 for @pids;
is $last, $total, "$name - the last message read is $total";
is $bad, 0, "$name - no gap, no duplicate over $conns connections";
ok $conns > 5, "$name - many reconnects" or diag "$conns connections";
my $s = stream(13);
is_deeply \%body, { map { $_->[1] => $_->[3] } @$s },
    "$name - each offset with its message";
--- no_error_log
[error]
[warn]
--- timeout: 60



=== TEST 11: Redis answers an error at the read: the connection goes on
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
rcli('SET', 'offline_14', 'not a stream');
my ($c, $r) = member(14, recover => ['1', 0]);
is_deeply entry($r->{rooms}, 14),
    { room_id => 'mid://14', joined => JSON::PP::true },
    "$name - op 8: the member room without a position";
my $res = $c->wait_op(36, 3);
like $res && $res->{body},
    qr/"room_id":"mid:\/\/14","recovered":false,"reason":"Redis: WRONGTYPE/,
    "$name - op 36 says why";
ok defined $c->heartbeat, "$name - the connection goes on";

# without a stream read, the first live message gives the position
rcli('DEL', 'offline_14');
is_deeply [mid_push([14], 'hello')], [0, ''], "$name - a push";
my $ep = epoch_of(14);
is_deeply [drain($c)],
    ["36:{\"rooms\":[{\"room_id\":\"mid://14\",\"stream\":0,"
     . "\"epoch\":\"$ep\",\"offset\":0}]}", '1000/0/1/hello'],
    "$name - op 36 with the epoch, then the message";
--- error_log
offline_14 not read: WRONGTYPE



=== TEST 12: the member's message is kept before mid_<mid> is read
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
# MONITOR lists the commands in the order Redis ran them
my $port = redis_port();
my $pid = open(my $mon, '-|') // die "fork: $!\n";
if ($pid == 0) {
    { exec 'timeout', '10', '/usr/bin/redis-cli', '-p', $port, 'MONITOR' }
    POSIX::_exit(127);
}
sleep 0.3;
is_deeply [mid_push([15, 16], 'ordered')], [0, ''], "$name - a push";
sleep 0.3;
kill 'TERM', $pid;
my @cmds;
while (my $l = <$mon>) {
    push @cmds, "HGETALL $1" if $l =~ /"HGETALL" "mid_(\d+)"/;
    push @cmds, "EVAL $1" if $l =~ /"EVAL" .* "offline_(\d+)"/;
}
close $mon;
is_deeply \@cmds, ['EVAL 15', 'EVAL 16', 'HGETALL 15', 'HGETALL 16'],
    "$name - both kept, then both looked up" or diag explain \@cmds;
--- no_error_log
[error]
[warn]



=== TEST 13: the batch's mid items reach the member with their positions
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
my ($c, $r) = member(23);
my $body = join "\n",
    '{"type":"mids","mids":[23,24],"operation":1000,"msg":"one"}',
    '{"type":"keys","keys":["k23"],"operation":1000,"msg":"by key"}',
    '{"type":"mids","mids":[23],"operation":1000,"msg":"two"}';
my ($st, $j, $raw) = api(POST => '/goim/push/batch', $body);
is_deeply [$st, $j && $j->{code}, $j && $j->{data}{accepted}], [200, 0, 3],
    "$name - the batch accepted" or diag $raw;
my $ep = epoch_of(23);
my @got = drain($c);
is_deeply [sort @got],
    [sort("36:{\"rooms\":[{\"room_id\":\"mid://23\",\"stream\":0,"
          . "\"epoch\":\"$ep\",\"offset\":0}]}",
          '1000/0/1/one', '1000/1/0/by key', '1000/0/2/two')],
    "$name - each mid item with its offset, the key push without"
    or diag explain \@got;
my @mine = grep { m{^1000/0/} } @got;
is_deeply \@mine, ['1000/0/1/one', '1000/0/2/two'], "$name - in order";
--- no_error_log
[error]
[warn]



=== TEST 14: missed messages larger than the send queue: recovered false, then live
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
goim_send_queue 4 1k;
--- perl
my $big = 'x' x 300;
is_deeply [mid_push([25], "$_$big")], [0, ''], "$name - 300 bytes, $_"
    for 1 .. 10;
my $ep = epoch_of(25);
my ($c, $r) = member(25, recover => [$ep, 0]);
is entry($r->{rooms}, 25)->{offset}, 10, "$name - op 8: seam 10";
my $res = $c->wait_op(36, 3);
like $res && $res->{body},
    qr/"offset":10,"recovered":false,"reason":"send queue full"/,
    "$name - op 36: send queue full";
is_deeply [mid_push([25], 'small')], [0, ''], "$name - a live push";
is_deeply [drain($c)], ['1000/0/11/small'],
    "$name - the live stream from the seam on";
--- no_error_log
[error]
[warn]



=== TEST 15: Redis killed and back empty: the streams start again, with a new epoch
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
my ($c, $r) = member(26);
is_deeply [mid_push([26], "before$_")], [0, ''], "$name - before$_" for 1 .. 3;
my $ep = epoch_of(26);
is scalar(drain($c)), 4, "$name - op 36 and three messages";

redis_stop('KILL');
ok wait_for_log(qr/connection lost/, 3), "$name - Redis is gone";
redis_start($ENV{TEST_NGINX_PORT2});
# the comet writes its sessions again once it is connected
ok wait_until(sub { (rcli('HGET', 'mid_26', 'k26') // '') eq 'comet-a' }, 10),
    "$name - the session is back in Redis";

# the connection that stayed gets the new stream's epoch before its message
is_deeply [mid_push([26], 'after')], [0, ''], "$name - a push";
my $ep2 = epoch_of(26);
ok $ep2 && $ep2 != $ep, "$name - a new epoch";
is_deeply [drain($c)],
    ["36:{\"rooms\":[{\"room_id\":\"mid://26\",\"stream\":0,"
     . "\"epoch\":\"$ep2\",\"offset\":0}]}", '1000/0/1/after'],
    "$name - op 36 with the new epoch, then offset 1";

# a connection that recovers from the old epoch is told
my ($d, $rd) = member(26, key => 'k26b', recover => [$ep, 3]);
my $res = $d->wait_op(36, 3);
like $res && $res->{body},
    qr/"epoch":"$ep2","offset":1,"recovered":false,"reason":"epoch changed"/,
    "$name - the old epoch: epoch changed, with the new position";
--- error_log
connection lost
