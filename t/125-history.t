# Room histories and recovery (docs/PROTOCOL.md 1.15), embedded, with 4
# workers: positions in the auth reply and in each pushed packet's ver
# (the room's stream id) and seq (its offset), op 35 before op 7 (or op
# 12, op 30) recovers the messages after a position, then op 36 with the
# result, then the live stream with no gap and no duplicate at the seam;
# failures say why and leave the connection usable; positions survive a
# reload and a worker crash; a connection in two rooms recovers both;
# messages go after ttl and a full zone gives up histories rather than
# an auth or a push, which goim_status counts.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use GoimWorkers;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

skip_unless_module();

use constant OP_RECOVER       => 35;
use constant OP_RECOVER_REPLY => 36;

our $JSON = JSON::PP->new->utf8->canonical;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(main_config => "goim_shutdown_drain 1s;\n"
                      . "goim_history size=64 ttl=60s;\n")
        unless defined $block->{main_config};
    worker_servers($block, http_extra => <<'EOF');
    # not reuseport: a stopped worker takes no request here
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT3;
        location = /status { goim_status; }
        location /goim/ { goim_logic_api; }
    }
EOF
});

# a client of room $room; op 35 first when $since ({epoch, offset}) is
# given: returns the client and the op 8 reply
sub join_room {
    my ($t, $room, $since, %o) = @_;
    my $c = goim_connect($t);
    if ($since) {
        $c->send_packet(OP_RECOVER, $main::JSON->encode({ rooms => [
            { room_id => $room, %$since } ] }));
    }
    my $r = $c->auth({ key => $o{key} // "k" . int(rand 1e9),
                       room_id => $room, accepts => [1000] });
    return ($c, $r);
}

# the room's pushes as [offset, body] until op 36 or $n pushes (after op
# 36, live ones); a full 64-bit offset from the 32-bit seq and the last
# offset known.  Every push must carry one stream id (ver), kept in
# $c->{stream}.
sub pushes {
    my ($c, $n, $timeout, $last) = @_;
    my (@got, $result);
    my $deadline = time + $timeout;
    while (@got < $n) {
        my $p = $c->wait_op(sub { $_[0]{op} == 1000
                                  || $_[0]{op} == OP_RECOVER_REPLY },
                            $deadline - time) or last;
        if ($p->{op} == OP_RECOVER_REPLY) {
            $result = $main::JSON->decode($p->{body});
            last;
        }
        my $stream = $p->{ver} & 0xffff;
        $c->{stream} //= $stream;
        die "stream $stream, not $c->{stream}\n" if $stream != $c->{stream};
        my $seq = $p->{seq} & 0xffffffff;
        my $off = $last + (($seq - ($last & 0xffffffff)) & 0xffffffff);
        push @got, [$off, $p->{body}];
        $last = $off;
    }
    return (\@got, $result);
}

# pushes of several rooms: {room => [[offset, body], ...]} by the streams
# in %$streams (stream id => room), from the last offsets in %$last
sub pushes_by_room {
    my ($c, $n, $timeout, $streams, $last) = @_;
    my (%got, $result, $count);
    my $deadline = time + $timeout;
    while (($count // 0) < $n) {
        my $p = $c->wait_op(sub { $_[0]{op} == 1000
                                  || $_[0]{op} == OP_RECOVER_REPLY },
                            $deadline - time) or last;
        if ($p->{op} == OP_RECOVER_REPLY) {
            $result = $main::JSON->decode($p->{body});
            last;
        }
        my $room = $streams->{$p->{ver} & 0xffff}
            // die "unknown stream " . ($p->{ver} & 0xffff) . "\n";
        my $l = $last->{$room} // 0;
        my $seq = $p->{seq} & 0xffffffff;
        my $off = $l + (($seq - ($l & 0xffffffff)) & 0xffffffff);
        push @{ $got{$room} }, [$off, $p->{body}];
        $last->{$room} = $off;
        $count++;
    }
    return (\%got, $result);
}

sub room_push {
    my ($room, $body) = @_;
    my ($st, $j) = api(POST => "/goim/push/room?operation=1000&type=live"
                       . "&room=$room", $body);
    return $st == 200 && $j && $j->{code} == 0;
}

sub status_value {
    my ($metric) = @_;
    my ($st, $raw) = GoimClient::http_request(GET => '127.0.0.1',
        $ENV{TEST_NGINX_PORT3}, '/status');
    my $sum;
    $sum += $1
        while defined $raw && $raw =~ /^\Q$metric\E(?:\{[^}]*\})? (\d+)$/mg;
    return $sum;
}

run_tests();

__DATA__

=== TEST 1: positions, then recovery of exactly the missed messages, then live
--- perl
my ($a, $ra) = join_room('tcp', 'live://h1');
is ref $ra->{rooms}, 'ARRAY', "$name - op 8 lists the rooms' positions";
my $pos = $ra->{rooms}[0];
is $pos->{room_id}, 'live://h1', "$name - by room";
like $pos->{epoch}, qr/^[0-9a-f]{16}-\d+$/, "$name - an epoch";
cmp_ok $pos->{stream}, '>=', 2, "$name - a stream id";
ok $pos->{joined}, "$name - joined";
is $pos->{offset}, 0, "$name - offset 0: nothing yet";
is $ra->{mid}, 0, "$name - goim's members still there";

ok room_push('h1', "m$_"), "$name - push $_" for 1 .. 5;
my ($got) = pushes($a, 5, T(3), 0);
is_deeply $got, [map { [$_, "m$_"] } 1 .. 5],
    "$name - live pushes carry offsets 1..5 in seq" or diag explain $got;
is $a->{stream}, $pos->{stream}, "$name - and the room's stream id in ver";
$a->close;

ok room_push('h1', "m$_"), "$name - push $_ while away" for 6 .. 8;

my ($b, $rb) = join_room('ws', 'live://h1',
                         { epoch => $pos->{epoch}, offset => 5 });
is $rb->{rooms}[0]{offset}, 8, "$name - op 8: the room is at 8";
my ($rec, $res) = pushes($b, 100, T(3), 5);
is_deeply $rec, [map { [$_, "m$_"] } 6 .. 8],
    "$name - exactly the 3 missed messages, in order" or diag explain $rec;
is_deeply $res, { rooms => [{ room_id => 'live://h1',
                              stream => $pos->{stream},
                              epoch => $pos->{epoch}, offset => 8,
                              recovered => JSON::PP::true, messages => 3 }] },
    "$name - then op 36: recovered" or diag explain $res;
ok room_push('h1', 'm9'), "$name - push 9";
($got) = pushes($b, 1, T(3), 8);
is_deeply $got, [[9, 'm9']], "$name - then the live stream";
($got) = pushes($b, 1, 0.3, 9);
is_deeply $got, [], "$name - and nothing twice";

# from the position op 8 gave: nothing to recover, still op 36
my ($c, $rc) = join_room('tcp', 'live://h1',
                         { epoch => $pos->{epoch}, offset => 9 });
($rec, $res) = pushes($c, 100, T(3), 9);
is_deeply [$rec, $res->{rooms}[0]{recovered}, $res->{rooms}[0]{messages}],
    [[], JSON::PP::true, 0], "$name - up to date: recovered, 0 messages";
cmp_ok status_value('goim_recover_messages_total'), '>=', 3,
    "$name - goim_status counts the messages sent again";
is status_value('goim_history_messages'), 9, "$name - and the kept ones";
$_->close for $b, $c;

# the same history for applications
my ($st, $j) = api(GET => '/goim/history/room?type=live&room=h1&since=6'
                   . '&encoding=raw');
is_deeply [$st, $j], [200, { code => 0, message => '', data => {
    room => 'live://h1', epoch => $pos->{epoch}, stream => $pos->{stream},
    offset => 9, first => 1,
    complete => JSON::PP::true, messages => [
        map { { offset => $_, op => 1000, body => "m$_" } } 7 .. 9 ] } }],
    "$name - GET /goim/history/room" or diag explain $j;
($st, $j) = api(GET => '/goim/history/room?type=live&room=h1&since=1&limit=2');
is_deeply [map { [$_->{offset}, $_->{body}] } @{ $j->{data}{messages} }],
    [[2, 'bTI='], [3, 'bTM=']], "$name - base64 bodies by default, a limit";
ok !$j->{data}{complete}, "$name - not complete with the limit";
($st, $j) = api(GET => '/goim/history/room?type=live&room=h1&since=1'
                . '&epoch=0000000000000000-1');
is $j->{data}{reason}, 'epoch changed', "$name - another epoch: the reason";
($st, $j) = api(GET => '/goim/history/room?type=live&room=none');
is_deeply $j->{data}, { room => 'live://none', epoch => undef, offset => 0,
                        messages => [] }, "$name - a room without history";
($st, $j) = api(GET => '/goim/history/room?type=live&room=h1&since=x');
is_deeply [$st, $j->{code}], [400, -400], "$name - a bad since: 400";



=== TEST 2: failures say why; the connection stays usable
--- perl
my ($a, $ra) = join_room('tcp', 'live://h2');
my $pos = $ra->{rooms}[0];
$a->close;
ok room_push('h2', "x$_"), "$name - push $_" for 1 .. 70;

my $last = 70;
my @cases = (
    [sub { { epoch => $pos->{epoch}, offset => 0 } },
     'offset older than the history'],
    [sub { { epoch => $pos->{epoch}, offset => $last + 5 } },
     'offset in the future'],
    [sub { { epoch => '0000000000000000-1', offset => 3 } }, 'epoch changed'],
    [sub { { epoch => 'garbage', offset => 3 } }, 'epoch malformed'],
);
for my $case (@cases) {
    my ($since, $why) = @$case;
    my ($c, $r) = join_room('ws', 'live://h2', $since->());
    my ($rec, $res) = pushes($c, 100, T(3), $last);
    is_deeply [$rec, $res->{rooms}[0]{recovered}, $res->{rooms}[0]{reason},
               $res->{rooms}[0]{offset}],
        [[], JSON::PP::false, $why, $last], "$name - $why: nothing sent, "
        . "the reason and the position" or diag explain $res;
    ok defined $c->heartbeat, "$name - $why: heartbeat answered";
    ok room_push('h2', 'live'), "$name - $why: a push";
    my ($got) = pushes($c, 1, T(3), $last);
    $last++;
    is_deeply $got, [[$last, 'live']], "$name - $why: live pushes arrive";
    $c->close;
}

# a room not joined, and a request that is not JSON
my ($c, $r) = join_room('tcp', 'live://h2',
                        { epoch => $pos->{epoch}, offset => $last });
my $c2 = goim_connect('ws');
$c2->send_packet(OP_RECOVER, $main::JSON->encode({ rooms => [
    { room_id => 'live://nope', epoch => $pos->{epoch}, offset => 1 }] }));
$c2->auth({ room_id => 'live://h2', accepts => [1000] });
my ($rec, $res) = pushes($c2, 100, T(3), $last);
is_deeply $res->{rooms}[1], { room_id => 'live://nope',
    recovered => JSON::PP::false, reason => 'not joined' },
    "$name - a room not joined: not joined" or diag explain $res;
is $res->{rooms}[0]{room_id}, 'live://h2', "$name - the joined one first";
my $c3 = goim_connect('tcp');
$c3->send_packet(OP_RECOVER, '{"rooms":[{"room_id":1}]');
$c3->auth({ room_id => 'live://h2', accepts => [1000] });
($rec, $res) = pushes($c3, 100, T(3), $last);
is $res->{error}, 'invalid JSON', "$name - bad JSON: the error"
    or diag explain $res;
ok defined $c3->heartbeat, "$name - bad JSON: the connection stays";
$_->close for $c, $c2, $c3;



=== TEST 3: the seam under load: clients leave and come back while pushes flow, every message once, in order
--- main_config
goim_shutdown_drain 1s;
goim_history size=1024 ttl=60s;
--- perl
my ($a, $ra) = join_room('tcp', 'live://h3');
my $epoch = $ra->{rooms}[0]{epoch};
$a->close;
my $N = 400;
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    # no END blocks of the test's in the child
    for my $i (1 .. $N) { room_push('h3', "s$i") or POSIX::_exit(1);
                          sleep 0.002 }
    POSIX::_exit(0);
}
# four readers, each reconnecting with its last offset every few pushes
my @r = map { { last => 0, got => [], t => $_ % 2 ? 'ws' : 'tcp' } } 0 .. 3;
my ($reconnects, $deadline) = (0, time + T(30));
while (time < $deadline && grep { $_->{last} < $N } @r) {
    for my $r (@r) {
        next if $r->{last} >= $N;
        my ($c) = join_room($r->{t}, 'live://h3',
                            { epoch => $epoch, offset => $r->{last} });
        $reconnects++;
        my ($got, $res) = pushes($c, 1e6, 0.05 + rand 0.1, $r->{last});
        # what came before op 36 was recovered; then the live stream
        if ($res) {
            die "recovery failed: " . $main::JSON->encode($res) . "\n"
                unless $res->{rooms}[0]{recovered};
            my ($live) = pushes($c, 1e6, 0.05 + rand 0.1,
                                @$got ? $got->[-1][0] : $r->{last});
            push @$got, @$live;
        }
        push @{ $r->{got} }, map { $_->[0] } @$got;
        $r->{last} = $got->[-1][0] if @$got;
        $c->close;
    }
}
waitpid $pid, 0;
is $?, 0, "$name - $N pushes accepted";
for my $i (0 .. $#r) {
    is_deeply $r[$i]{got}, [1 .. $N], "$name - reader $i ($r[$i]{t}): "
        . "1..$N exactly once, in order"
        or diag "got " . scalar(@{ $r[$i]{got} }) . ": "
                . join ',', @{ $r[$i]{got} };
}
cmp_ok $reconnects, '>=', 8, "$name - $reconnects reconnects";



=== TEST 4: a room change with op 35 first recovers the new room
--- perl
my ($a, $ra) = join_room('tcp', 'live://h4');
my $pos = $ra->{rooms}[0];
ok room_push('h4', "r$_"), "$name - push $_" for 1 .. 3;
pushes($a, 3, T(3), 0);
$a->close;
ok room_push('h4', "r$_"), "$name - push $_" for 4 .. 5;
my ($b) = join_room('ws', 'live://other');
$b->send_packet(OP_RECOVER, $main::JSON->encode({ rooms => [
    { room_id => 'live://h4', epoch => $pos->{epoch}, offset => 3 }] }));
is $b->change_room('live://h4'), 'live://h4', "$name - op 13 echoes";
my ($rec, $res) = pushes($b, 100, T(3), 3);
is_deeply $rec, [[4, 'r4'], [5, 'r5']], "$name - the 2 missed messages";
is_deeply [$res->{rooms}[0]{recovered}, $res->{rooms}[0]{offset}],
    [JSON::PP::true, 5], "$name - op 36 after op 13";
# a change without op 35: op 36 gives the new room's position only
is $b->change_room('live://h1x'), 'live://h1x', "$name - another change";
($rec, $res) = pushes($b, 100, T(3), 0);
is_deeply $res, { rooms => [{ room_id => 'live://h1x',
    stream => $res->{rooms}[0]{stream},
    epoch => $res->{rooms}[0]{epoch}, offset => 0 }] },
    "$name - op 36: the position, no result" or diag explain $res;
cmp_ok $res->{rooms}[0]{stream}, '>=', 2, "$name - with a stream id";
$b->close;



=== TEST 5: positions survive a reload and a worker crash
--- perl
my ($a, $ra) = join_room('tcp', 'live://h5');
my $pos = $ra->{rooms}[0];
$a->close;
ok room_push('h5', "p$_"), "$name - push $_" for 1 .. 3;
my $master = master_pid();
my @old = worker_pids();
ok kill('HUP', $master), "$name - reload";
ok wait_until(sub { my %o = map { $_ => 1 } @old;
                    my @w = worker_pids();
                    @w == 4 && !grep { $o{$_} } @w }, T(10)),
    "$name - new workers";
ok room_push('h5', "p$_"), "$name - push $_ after the reload" for 4 .. 5;
my ($b, $rb) = join_room('ws', 'live://h5',
                         { epoch => $pos->{epoch}, offset => 0 });
is $rb->{rooms}[0]{epoch}, $pos->{epoch}, "$name - the same epoch";
my ($rec, $res) = pushes($b, 100, T(3), 0);
is_deeply $rec, [map { [$_, "p$_"] } 1 .. 5],
    "$name - the messages from before and after the reload";
ok $res->{rooms}[0]{recovered}, "$name - recovered";
$b->close;

my $victim = (worker_pids())[0];
ok kill('KILL', $victim), "$name - worker $victim killed";
ok wait_until(sub { my @w = worker_pids();
                    @w == 4 && !grep { $_ == $victim } @w }, T(5)),
    "$name - respawned";
ok room_push('h5', 'p6'), "$name - push 6";
my ($c, $rc) = join_room('tcp', 'live://h5',
                         { epoch => $pos->{epoch}, offset => 4 });
($rec, $res) = pushes($c, 100, T(3), 4);
is_deeply $rec, [[5, 'p5'], [6, 'p6']], "$name - after the crash too";
ok $res->{rooms}[0]{recovered}, "$name - recovered";
$c->close;
--- error_log eval
[qr/\[alert\] .*worker process \d+ exited on signal 9/]



=== TEST 6: the seam: a member joins while the room's messages wait in its worker's inbox, and gets each once
--- perl
# X keeps worker W in room h6; Y, on W too, is in another room. While W
# is stopped, Y asks to recover h6 and changes to it (op 35, op 12),
# then 3 messages are pushed: they are in the history and in W's inbox.
# W resumes and reads Y first (its bytes were there first): Y recovers
# the 3, and W's inbox brings them again: Y must not get them twice.
my $x = goim_client('tcp', { key => 'x6', room_id => 'live://h6',
                             accepts => [1000] });
my $epoch = $main::JSON->decode($x->{auth_reply}{body})->{rooms}[0]{epoch};
my $w = $x->{pid};
my $y;
for my $i (1 .. 60) {
    my $c = goim_client('tcp', { key => "y6-$i", room_id => 'live://o6',
                                 accepts => [1000] });
    if ($c->{pid} == $w) { $y = $c; last }
    $c->close;
}
ok $y, "$name - Y on X's worker $w";
my $last = 0;
for my $try (1 .. 3) {
    kill 'STOP', $w;
    $y->send_packet(OP_RECOVER, $main::JSON->encode({ rooms => [
        { room_id => 'live://h6', epoch => $epoch, offset => $last }] }));
    $y->send_packet(OP_CHANGE_ROOM, 'live://h6');
    for my $i (1 .. 3) {
        my ($st, $j) = api(POST => '/goim/push/room?operation=1000&type=live'
                           . '&room=h6', "w$try-$i",
                           port => $ENV{TEST_NGINX_PORT3});
        die "push refused\n" unless $st == 200 && $j->{code} == 0;
    }
    kill 'CONT', $w;
    my ($rec, $res) = pushes($y, 100, T(3), $last);
    my ($live) = pushes($y, 100, 0.3, $last + @$rec);
    is_deeply [[map { $_->[0] } @$rec], $res && $res->{rooms}[0]{recovered},
               [map { $_->[0] } @$live]],
        [[$last + 1 .. $last + 3], JSON::PP::true, []],
        "$name - try $try: Y recovered each of the 3, then had them once"
        or diag explain [$rec, $res, $live];
    my ($xs) = pushes($x, 3, T(3), $last);
    is_deeply [map { $_->[0] } @$xs], [$last + 1 .. $last + 3],
        "$name - try $try: X got the 3 once";
    $last += 3;
    my $echo = $y->wait_op(OP_CHANGE_ROOM_REPLY, T(1));
    is $echo && $echo->{body}, 'live://h6', "$name - try $try: op 13";
    is $y->change_room('live://o6'), 'live://o6', "$name - Y back out";
    ok $y->wait_op(OP_RECOVER_REPLY, T(3)), "$name - with its op 36";
}
$_->close for $x, $y;



=== TEST 7: a connection in two rooms: a stream id per room, and both recovered at auth and with op 30
--- perl
my $a = goim_connect('tcp');
my $ra = $a->auth({ key => 'a7', room_id => 'live://m1',
                    room_ids => ['live://m2'], accepts => [1000] });
my %pos = map { $_->{room_id} => $_ } @{ $ra->{rooms} };
is_deeply [sort keys %pos], ['live://m1', 'live://m2'],
    "$name - op 8: both rooms" or diag explain $ra;
ok $pos{'live://m1'}{stream} != $pos{'live://m2'}{stream},
    "$name - two stream ids";
my %streams = map { $pos{$_}{stream} => $_ } keys %pos;
# one message written once to every member: B in m1 only reads m1's
# stream id too
my $b = goim_connect('ws');
my $rb = $b->auth({ key => 'b7', room_id => 'live://m1', accepts => [1000] });
is $rb->{rooms}[0]{stream}, $pos{'live://m1'}{stream},
    "$name - the stream id is the room's, for every member";
for my $i (1 .. 3) {
    ok room_push('m1', "a$i"), "$name - m1 push $i";
    ok room_push('m2', "b$i"), "$name - m2 push $i";
}
my %last;
my ($got) = pushes_by_room($a, 6, T(3), \%streams, \%last);
is_deeply $got, { 'live://m1' => [map { [$_, "a$_"] } 1 .. 3],
                  'live://m2' => [map { [$_, "b$_"] } 1 .. 3] },
    "$name - each room's messages by its stream id, offsets 1..3"
    or diag explain $got;
my ($bg) = pushes($b, 3, T(3), 0);
is_deeply $bg, [map { [$_, "a$_"] } 1 .. 3], "$name - B: m1's";
is $b->{stream}, $pos{'live://m1'}{stream}, "$name - with m1's stream id";
$a->close;

ok room_push('m1', "a$_"), "$name - m1 push $_ while away" for 4 .. 6;
ok room_push('m2', "b$_"), "$name - m2 push $_ while away" for 4 .. 5;

# back on another connection: op 35 names both, op 7 joins both
my $c = goim_connect('ws');
$c->send_packet(OP_RECOVER, $main::JSON->encode({ rooms => [
    map { { room_id => $_, epoch => $pos{$_}{epoch}, offset => 3 } }
        sort keys %pos ] }));
my $rc = $c->auth({ key => 'a7', room_id => 'live://m1',
                    room_ids => ['live://m2'], accepts => [1000] });
is_deeply [map { [$_->{room_id}, $_->{offset}] } @{ $rc->{rooms} }],
    [['live://m1', 6], ['live://m2', 5]], "$name - op 8: the seams";
my ($rec, $res) = pushes_by_room($c, 100, T(3), \%streams, {%last});
is_deeply $rec, { 'live://m1' => [map { [$_, "a$_"] } 4 .. 6],
                  'live://m2' => [map { [$_, "b$_"] } 4 .. 5] },
    "$name - exactly the missed messages of both rooms" or diag explain $rec;
is_deeply [map { [$_->{room_id}, $_->{recovered}, $_->{messages}] }
               @{ $res->{rooms} }],
    [['live://m1', JSON::PP::true, 3], ['live://m2', JSON::PP::true, 2]],
    "$name - op 36: both recovered" or diag explain $res;
ok room_push('m2', 'b6'), "$name - m2 push 6";
ok room_push('m1', 'a7'), "$name - m1 push 7";
my %l2 = ('live://m1' => 6, 'live://m2' => 5);
($rec) = pushes_by_room($c, 2, T(3), \%streams, \%l2);
is_deeply $rec, { 'live://m1' => [[7, 'a7']], 'live://m2' => [[6, 'b6']] },
    "$name - then both live streams" or diag explain $rec;
($rec) = pushes_by_room($c, 1, 0.3, \%streams, \%l2);
is_deeply $rec, {}, "$name - and nothing twice";

# op 35 then op 30 (join): positions in op 31, the missed ones, op 36
my $d = goim_connect('tcp');
$d->auth({ key => 'd7', accepts => [1000] });
$d->send_packet(OP_RECOVER, $main::JSON->encode({ rooms => [
    map { { room_id => $_, epoch => $pos{$_}{epoch}, offset => 4 } }
        sort keys %pos ] }));
my $j = $d->join_rooms('live://m2', 'live://m1', 'live://m2');
is_deeply [map { [$_->{room_id}, $_->{joined}, $_->{offset},
                  $_->{stream}] } @{ $j->{rooms} }],
    [['live://m2', JSON::PP::true, 6, $pos{'live://m2'}{stream}],
     ['live://m1', JSON::PP::true, 7, $pos{'live://m1'}{stream}],
     ['live://m2', JSON::PP::true, undef, undef]],
    "$name - op 31: each room joined with its position, once"
    or diag explain $j;
($rec, $res) = pushes_by_room($d, 100, T(3), \%streams,
                              { 'live://m1' => 4, 'live://m2' => 4 });
is_deeply $rec, { 'live://m1' => [map { [$_, "a$_"] } 5 .. 7],
                  'live://m2' => [map { [$_, "b$_"] } 5 .. 6] },
    "$name - op 30: both rooms' missed messages" or diag explain $rec;
is_deeply [map { [$_->{room_id}, $_->{recovered}, $_->{messages}] }
               @{ $res->{rooms} }],
    [['live://m2', JSON::PP::true, 2], ['live://m1', JSON::PP::true, 3]],
    "$name - op 36 after op 31" or diag explain $res;
# a join without op 35: op 31 has the position, no op 36
$j = $d->join_rooms('live://m3');
cmp_ok $j->{rooms}[0]{stream}, '>=', 2, "$name - a new room's stream id";
ok !$d->wait_op(OP_RECOVER_REPLY, 0.3), "$name - no op 36 without op 35";
ok defined $d->heartbeat, "$name - the connection goes on";
$_->close for $b, $c, $d;



=== TEST 8: join and leave events (op 34) are not kept and take no offset
--- main_config
goim_shutdown_drain 1s;
goim_history size=64 ttl=60s;
goim_presence_events 100;
--- perl
my $w = goim_connect('tcp');
my $rw = $w->auth({ key => 'w8', room_id => 'live://e8',
                    accepts => [1000, 34] });
my $pos = $rw->{rooms}[0];
my $x = goim_connect('ws');
$x->auth({ key => 'x8', room_id => 'live://e8', accepts => [1000] });
my $ev = $w->wait_op(34, T(3));
ok $ev, "$name - the watcher is told of the join";
is_deeply [$ev && $ev->{ver}, $ev && $ev->{seq}], [1, 0],
    "$name - the event has no position";
ok room_push('e8', 'after'), "$name - a push";
my ($got) = pushes($w, 1, T(3), 0);
is_deeply $got, [[1, 'after']], "$name - the room's first offset is the push's";
my ($st, $j) = api(GET => '/goim/history/room?type=live&room=e8&encoding=raw');
is_deeply [map { [$_->{offset}, $_->{op}] } @{ $j->{data}{messages} }],
    [[1, 1000]], "$name - only the push is kept" or diag explain $j;
$_->close for $w, $x;



=== TEST 9: ttl: a room's messages go after ttl, its history with its last member; goim_status counts them
--- main_config
goim_shutdown_drain 1s;
goim_history size=64 ttl=3s;
--- perl
my ($m, $rm) = join_room('tcp', 'live://t9');
my $pos = $rm->{rooms}[0];
ok room_push('t9', "m$_"), "$name - push $_ to a room with a member"
    for 1 .. 3;
my ($got) = pushes($m, 3, T(3), $pos->{offset});
is scalar(@$got), 3, "$name - the member has them";
my ($e, $re) = join_room('ws', 'live://e9');
ok room_push('e9', "e$_"), "$name - push $_ to another room" for 1 .. 2;
$e->close;
is status_value('goim_history_rooms'), 2, "$name - goim_history_rooms 2";
is status_value('goim_history_messages'), 5,
   "$name - goim_history_messages 5";
ok status_value('goim_history_bytes') > 0, "$name - goim_history_bytes";
# ttl 3 s, in whole seconds: a message lives 2 to 3 s, and housekeeping
# runs once a second
ok wait_until(sub { (status_value('goim_history_messages') // 1) == 0 },
              T(8)), "$name - every message is gone after ttl";
is status_value('goim_history_dropped_total{reason="ttl"}'), 5,
   "$name - goim_history_dropped_total{reason=\"ttl\"} 5";
is status_value('goim_history_rooms'), 1,
   "$name - the room without members has no history left";
my ($c, $r) = join_room('ws', 'live://t9', { epoch => $pos->{epoch},
                                             offset => $pos->{offset} });
my ($rec, $res) = pushes($c, 10, T(3), $pos->{offset} + 3);
is_deeply [$rec, $res->{rooms}[0]{recovered}, $res->{rooms}[0]{reason}],
    [[], JSON::PP::false, 'offset older than the history'],
    "$name - a position before them: older than the history, not a gap"
    or diag explain $res;
is $r->{rooms}[0]{epoch}, $pos->{epoch},
   "$name - the room with members keeps its epoch";
is $r->{rooms}[0]{offset}, $pos->{offset} + 3, "$name - and its offset";
my ($d, $rd) = join_room('tcp', 'live://e9');
isnt $rd->{rooms}[0]{epoch}, $re->{rooms}[0]{epoch},
     "$name - the other room starts a new history: a new epoch";
ok room_push('t9', 'live'), "$name - a push after";
($got) = pushes($c, 1, T(3), $pos->{offset} + 3);
is_deeply $got, [[$pos->{offset} + 4, 'live']],
    "$name - live at the next offset";
$_->close for $m, $c, $d;



=== TEST 10: a full zone gives up the oldest histories, never an auth or a push
--- main_config
goim_shutdown_drain 1s;
goim_zone goim 1m;
goim_inbox_size 16;
goim_history size=64 ttl=60s;
--- perl
my $body = 'z' x 3000;
my ($first, $rf) = join_room('tcp', 'live://z0');
my $pos = $rf->{rooms}[0];
$first->close;
my $refused = 0;
for my $i (0 .. 299) {
    $refused++ unless room_push('z' . ($i % 30), "$i$body");
}
is $refused, 0, "$name - 300 pushes of 3 KB to 30 rooms, all answered 0";
my $zone_full = status_value('goim_history_dropped_total{reason="zone_full"}');
ok $zone_full && $zone_full > 0,
   "$name - the zone gave up history messages ($zone_full)";
ok status_value('goim_history_messages') < 300,
   "$name - fewer than 300 kept";
my @c;
for my $i (1 .. 200) {
    my $c = goim_connect($i % 2 ? 'tcp' : 'ws');
    my $r = $c->auth({ key => "zone-$i" . ('k' x 60),
                       room_id => "live://y$i", accepts => [1000] });
    last unless $r;
    push @c, $c;
}
is scalar(@c), 200, "$name - 200 auths into 200 new rooms after it filled";
ok status_value('goim_history_dropped_total{reason="zone_full"}') > $zone_full,
   "$name - their entries took the place of more history messages";
ok room_push('z1', 'after'), "$name - a push after";
my ($c, $r) = join_room('ws', 'live://z0', { epoch => $pos->{epoch},
                                             offset => $pos->{offset} });
my ($rec, $res) = pushes($c, 20, T(3), $pos->{offset});
is_deeply [$res->{rooms}[0]{recovered}, $res->{rooms}[0]{reason}],
    [JSON::PP::false, 'offset older than the history'],
    "$name - a room written long ago: its messages were given up, "
    . 'and recovery says so' or diag explain $res;
$_->close for @c, $c;
