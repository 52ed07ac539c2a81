# Members' messages kept for them (docs/PROTOCOL.md 1.16), embedded, with
# 4 workers and goim_history members=on: each member's pushes by mid are
# kept in its own room mid://<mid>, offline too; op 8 gives each of its
# connections its position; a connection coming back with op 35 gets
# exactly the messages it missed, then op 36, then live ones, none twice;
# each connection of a member recovers from its own position; failures
# say why and leave the connection usable; no client joins or leaves
# another member's room.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use GoimWorkers;
use JSON::PP ();
use Time::HiRes qw(time sleep);

skip_unless_module();

use constant OP_RECOVER       => 35;
use constant OP_RECOVER_REPLY => 36;

our $JSON = JSON::PP->new->utf8->canonical;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(main_config => "goim_shutdown_drain 1s;\n"
                      . "goim_history size=16 ttl=60s members=on;\n")
        unless defined $block->{main_config};
    worker_servers($block);
});

# a connection of member $mid; op 35 first when $since ({epoch, offset})
# is given; returns the client and its position in its member room
sub member {
    my ($t, $mid, $since, %o) = @_;
    my $c = goim_connect($t);
    if ($since) {
        $c->send_packet(OP_RECOVER, $main::JSON->encode({ rooms => [
            { room_id => "mid://$mid", %$since } ] }));
    }
    my $r = $c->auth({ mid => $mid, key => $o{key} // "k" . int(rand 1e9),
                       accepts => [1000], %{ $o{token} // {} } })
        or die "auth failed\n";
    my ($pos) = grep { $_->{room_id} eq "mid://$mid" } @{ $r->{rooms} };
    return ($c, $pos, $r);
}

# the member's messages as [offset, body] until op 36 or $n of them; each
# must carry the member room's stream id in ver; offsets from the 32-bit
# seq and the last one known
sub messages {
    my ($c, $n, $timeout, $last, $stream) = @_;
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
        die "stream " . ($p->{ver} & 0xffff) . ", not $stream\n"
            if ($p->{ver} & 0xffff) != $stream;
        my $seq = $p->{seq} & 0xffffffff;
        my $off = $last + (($seq - ($last & 0xffffffff)) & 0xffffffff);
        push @got, [$off, $p->{body}];
        $last = $off;
    }
    return (\@got, $result);
}

sub mid_push {
    my ($mids, $body) = @_;
    my $q = join '&', map { "mids=$_" } @$mids;
    my ($st, $j) = api(POST => "/goim/push/mids?operation=1000&$q", $body);
    return $st == 200 && $j && $j->{code} == 0;
}

run_tests();

__DATA__

=== TEST 1: positions, offline messages, recovery of exactly the missed ones, then live
--- perl
my ($a, $pos) = member('tcp', 7);
ok $pos, "$name - op 8 lists the member's room mid://7";
ok $pos->{joined}, "$name - joined";
like $pos->{epoch}, qr/^[0-9a-f]{16}-\d+$/, "$name - an epoch";
cmp_ok $pos->{stream}, '>=', 2, "$name - a stream id";
is $pos->{offset}, 0, "$name - offset 0: nothing yet";
my $s = $pos->{stream};

ok mid_push([7], "m$_"), "$name - push $_ by mid" for 1 .. 2;
my ($got) = messages($a, 2, T(3), 0, $s);
is_deeply $got, [[1, 'm1'], [2, 'm2']],
    "$name - live: offsets 1, 2 in seq" or diag explain $got;
$a->close;

# nobody of member 7 is connected: kept all the same
ok mid_push([7], "m$_"), "$name - push $_ while offline" for 3 .. 5;

my ($b, $pb) = member('ws', 7, { epoch => $pos->{epoch}, offset => 2 });
is $pb->{offset}, 5, "$name - op 8: the member is at 5";
is $pb->{stream}, $s, "$name - the same stream id";
my ($rec, $res) = messages($b, 100, T(3), 2, $s);
is_deeply $rec, [map { [$_, "m$_"] } 3 .. 5],
    "$name - exactly the 3 missed messages, in order" or diag explain $rec;
is_deeply $res, { rooms => [{ room_id => 'mid://7', stream => $s,
                              epoch => $pos->{epoch}, offset => 5,
                              recovered => JSON::PP::true, messages => 3 }] },
    "$name - then op 36: recovered" or diag explain $res;
ok mid_push([7], 'm6'), "$name - push 6";
($got) = messages($b, 1, T(3), 5, $s);
is_deeply $got, [[6, 'm6']], "$name - then the live stream";
($got) = messages($b, 1, 0.3, 6, $s);
is_deeply $got, [], "$name - and nothing twice";

# a push to two members: each its own offset
my ($c, $pc) = member('tcp', 8);
ok mid_push([7, 8], 'both'), "$name - push to mids 7 and 8";
($got) = messages($b, 1, T(3), 6, $s);
is_deeply $got, [[7, 'both']], "$name - member 7: offset 7";
($got) = messages($c, 1, T(3), 0, $pc->{stream});
is_deeply $got, [[1, 'both']], "$name - member 8: offset 1 of its own";
isnt $pc->{stream}, $s, "$name - in its own stream";
$_->close for $b, $c;

# applications read a member's kept messages as a room's
my ($st, $j) = api(GET => '/goim/history/room?type=mid&room=7&since=4'
                   . '&encoding=raw');
is_deeply [$st, [map { [$_->{offset}, $_->{body}] }
                 @{ $j->{data}{messages} }]],
    [200, [[5, 'm5'], [6, 'm6'], [7, 'both']]],
    "$name - GET /goim/history/room?type=mid&room=7" or diag explain $j;



=== TEST 2: several connections of one member: each recovers from its own position
--- perl
my ($a, $pos) = member('tcp', 21, undef, key => 'a');
my ($b) = member('ws', 21, undef, key => 'b');
my $s = $pos->{stream};
ok mid_push([21], "x$_"), "$name - push $_" for 1 .. 2;
my ($ga) = messages($a, 2, T(3), 0, $s);
my ($gb) = messages($b, 2, T(3), 0, $s);
is_deeply [$ga, $gb], [([[1, 'x1'], [2, 'x2']]) x 2],
    "$name - both connections get both" or diag explain [$ga, $gb];
$b->close;
ok mid_push([21], "x$_"), "$name - push $_ (b away)" for 3 .. 4;
($ga) = messages($a, 2, T(3), 2, $s);
is_deeply $ga, [[3, 'x3'], [4, 'x4']], "$name - a has 3, 4";
$a->close;
ok mid_push([21], 'x5'), "$name - push 5 (both away)";

# b comes back from 2, a from 4, at once
my ($b2) = member('tcp', 21, { epoch => $pos->{epoch}, offset => 2 },
                  key => 'b');
my ($a2) = member('ws', 21, { epoch => $pos->{epoch}, offset => 4 },
                  key => 'a');
my ($rb, $resb) = messages($b2, 100, T(3), 2, $s);
my ($ra, $resa) = messages($a2, 100, T(3), 4, $s);
is_deeply $rb, [map { [$_, "x$_"] } 3 .. 5], "$name - b: 3, 4, 5"
    or diag explain $rb;
is_deeply $ra, [[5, 'x5']], "$name - a: 5" or diag explain $ra;
is_deeply [$resb->{rooms}[0]{messages}, $resa->{rooms}[0]{messages}],
    [3, 1], "$name - op 36 of each counts its own";
ok mid_push([21], 'x6'), "$name - push 6";
($rb) = messages($b2, 2, 0.5, 5, $s);
($ra) = messages($a2, 2, 0.5, 5, $s);
is_deeply [$rb, $ra], [[[6, 'x6']], [[6, 'x6']]],
    "$name - then live, once each" or diag explain [$rb, $ra];
$_->close for $a2, $b2;



=== TEST 3: beyond the window, bad positions: the reason, the connection usable
--- perl
my ($a, $pos) = member('tcp', 31);
my $s = $pos->{stream};
$a->close;
ok mid_push([31], "y$_"), "$name - push $_" for 1 .. 20;

my $last = 20;
my @cases = (
    [{ epoch => $pos->{epoch}, offset => 1 },
     'offset older than the history'],
    [{ epoch => $pos->{epoch}, offset => 99 }, 'offset in the future'],
    [{ epoch => '0000000000000000-1', offset => 3 }, 'epoch changed'],
    [{ epoch => 'garbage', offset => 3 }, 'epoch malformed'],
);
for my $case (@cases) {
    my ($since, $why) = @$case;
    my ($c) = member('ws', 31, $since);
    my ($rec, $res) = messages($c, 100, T(3), $last, $s);
    is_deeply [$rec, $res->{rooms}[0]{recovered}, $res->{rooms}[0]{reason},
               $res->{rooms}[0]{offset}],
        [[], JSON::PP::false, $why, $last], "$name - $why: nothing sent, "
        . "the reason and the position" or diag explain $res;
    ok defined $c->heartbeat, "$name - $why: heartbeat answered";
    ok mid_push([31], 'live'), "$name - $why: a push";
    my ($got) = messages($c, 1, T(3), $last, $s);
    $last++;
    is_deeply $got, [[$last, 'live']], "$name - $why: live pushes arrive";
    $c->close;
}

# the last 16 are kept: from 16 back
my ($c) = member('tcp', 31,
                 { epoch => $pos->{epoch}, offset => $last - 16 });
my ($rec, $res) = messages($c, 100, T(3), $last - 16, $s);
is scalar @$rec, 16, "$name - the whole window: 16 messages";
ok $res->{rooms}[0]{recovered}, "$name - recovered";
$c->close;



=== TEST 4: no client joins or leaves a member's room; it takes no place of goim_max_rooms
--- main_config
goim_shutdown_drain 1s;
goim_history size=16 ttl=60s members=on;
goim_max_rooms 1;
--- perl
my ($a, $pos, $r) = member('tcp', 41, undef,
                           token => { room_id => 'live://r1' });
is_deeply [sort map { $_->{room_id} } @{ $r->{rooms} }],
    ['live://r1', 'mid://41'], "$name - op 8: its room and its member room";
my $j = $a->join_rooms('mid://42');
is_deeply $j->{rooms}[0], { room_id => 'mid://42',
    joined => JSON::PP::false, error => 'bad id',
    reason => "mid:// is the rooms of members' messages" },
    "$name - op 30 with another member's room: refused" or diag explain $j;
$j = $a->leave_rooms('mid://41');
is $j->{rooms}[0]{error}, 'bad id', "$name - op 32 of its own: refused"
    or diag explain $j;
my ($b) = member('ws', 42);
ok mid_push([42], 'secret'), "$name - a push to member 42";
ok !$a->wait_op(1000, 0.5), "$name - member 41 does not get it";
ok mid_push([41], 'mine'), "$name - a push to member 41";
my ($got) = messages($a, 1, T(3), 0, $pos->{stream});
is_deeply $got, [[1, 'mine']], "$name - still in its own room";
$a->leave_rooms('live://r1');
$j = $a->join_rooms('live://r2');
ok $j->{rooms}[0]{joined}, "$name - goim_max_rooms 1: one room besides"
    or diag explain $j;
$_->close for $a, $b;



=== TEST 5: members=off: pushes by mid as before, no member room
--- main_config
goim_shutdown_drain 1s;
goim_history size=16 ttl=60s;
--- perl
my ($a, $pos, $r) = member('tcp', 51);
ok !$pos, "$name - no member room in op 8" or diag explain $r;
ok mid_push([51], 'plain'), "$name - a push by mid";
my $p = $a->wait_op(1000, T(3));
is_deeply [$p->{ver}, $p->{seq}, $p->{body}], [1, 0, 'plain'],
    "$name - ver 1, seq 0 as goim's" or diag explain $p;
$a->close;
