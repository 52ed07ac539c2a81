# Several rooms per connection (docs/PROTOCOL.md 1.14), embedded mode: the
# token's room_ids beside goim's room_id and the results in the auth
# reply; join (op 30) and leave (op 32) with a result per room; the
# goim_max_rooms limit; bad ids and lists; a room push reaches each
# member once whatever other rooms it is in; goim's change room (op 12)
# on the first room; online counts per room; leaving every room on
# close and kick; room rights of signed tokens (allowed_rooms); and the
# same with four workers.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use GoimTest qw(SENTINEL default_servers client api push_ok sentinel_ok
                collect next_pkt);
use Time::HiRes qw(time sleep);

skip_unless_module();

add_block_preprocessor(sub { default_servers(shift) });

our $jwt = repo_root() . '/build/goim-jwt';
our $secret = 'a-test-secret-of-more-than-32-bytes-1234';

sub sign {
    my ($claims) = @_;
    my $tok = `$jwt sign --secret '$secret' '$claims'`;
    chomp $tok;
    return $tok;
}

# online counts of rooms "<type>://<id>" on this node
sub online {
    my ($type, @rooms) = @_;
    my ($st, $j) = api(GET => "/goim/online/room?type=$type"
                              . join('', map { "&rooms=$_" } @rooms));
    return $j && $j->{data};
}

sub wait_online {
    my ($want, $type, @rooms) = @_;
    my $deadline = time + 3;
    my $got;
    while (1) {
        $got = online($type, @rooms);
        return $got if Test::More::eq_hash($got // {}, $want)
                       || time > $deadline;
        sleep 0.05;
    }
}

# a token whose connection also gets the sentinel broadcast
sub tok { return { accepts => [SENTINEL], @_ } }

sub joined { return { room_id => $_[0], joined => JSON::PP::true() } }
sub refused {
    my ($id, $error, $reason) = @_;
    return { room_id => $id, joined => JSON::PP::false(), error => $error,
             defined $reason ? (reason => $reason) : () };
}
sub left { return { room_id => $_[0], left => JSON::PP::true() } }

run_tests();

__DATA__

=== TEST 1: token room_ids: auth reply, pushes once per member, counts
--- main_config
goim_max_rooms 4;
--- perl
my $a = client(tcp => tok(mid => 1, key => 'a', room_id => 'live://1',
                        room_ids => ['group://7', 'user://a', 'live://1',
                                     'group://7', 'x://1', 'x://2']));
my $b = client(ws => tok(mid => 2, key => 'b', room_ids => ['group://7']));
my $c = client(tcp => tok(mid => 3, key => 'c', room_id => 'live://1'));
is_deeply $a->{auth}, { mid => 1, key => 'a', room_id => 'live://1',
    rooms => [ joined('live://1'), joined('group://7'), joined('user://a'),
               joined('live://1'), joined('x://1'),
               refused('x://2', 'limit') ] },
    "$name - a: the first room, then each of room_ids, the limit";
is_deeply $b->{auth}, { mid => 2, key => 'b', room_id => '',
                        rooms => [ joined('group://7') ] },
    "$name - b: room_ids only, no first room";
is $c->{auth_reply}{body}, '{"mid":3,"key":"c","room_id":"live://1"}',
    "$name - c: goim's token, goim's three members";
push_ok('/goim/push/room?operation=1000&type=live&room=1', 'L1');
push_ok('/goim/push/room?operation=1000&type=group&room=7', 'G7');
push_ok('/goim/push/room?operation=1000&type=user&room=a', 'UA');
push_ok('/goim/push/room?operation=1000&type=x&room=2', 'X2');
push_ok('/goim/push/room?operation=1000&type=x&room=1', 'X1');
sentinel_ok();
is_deeply collect($a), ['1000:L1', '1000:G7', '1000:UA', '1000:X1'],
    "$name - a got each of its rooms' pushes once";
is_deeply collect($b), ['1000:G7'], "$name - b got its room's push once";
is_deeply collect($c), ['1000:L1'], "$name - c got its room's push";
is_deeply online('live', 1), { 1 => 2 }, "$name - live://1 counts a and c";
is_deeply online('group', 7), { 7 => 2 }, "$name - group://7 counts a and b";
is_deeply online('x', 1, 2), { 1 => 1, 2 => 0 }, "$name - x rooms";
is $a->heartbeat, 2, "$name - heartbeat counts the first room";
is $b->heartbeat, 0, "$name - no first room: 0";
$a->close;
is_deeply wait_online({ 1 => 1 }, 'live', 1), { 1 => 1 },
    "$name - a closed: left live://1";
is_deeply wait_online({ 7 => 1 }, 'group', 7), { 7 => 1 },
    "$name - and group://7";
is_deeply online('user', 'a'), { a => 0 }, "$name - and user://a";
$_->close for $b, $c;



=== TEST 2: join and leave: results per room, limit, bad ids and lists
--- main_config
goim_max_rooms 3;
--- perl
my $a = client(tcp => tok(mid => 1, key => 'a', room_id => 'live://1'));
my $long = 'r' x 257;
is_deeply $a->join_rooms('g://1', 'g://1', 'live://1', '', "bad\nid",
                         $long, 'g://2', 'g://3'),
    { rooms => [ joined('g://1'), joined('g://1'), joined('live://1'),
                 refused('', 'bad id', 'empty room id'),
                 refused("bad\nid", 'bad id',
                         'control character in room id'),
                 refused($long, 'bad id', 'room id longer than 256 bytes'),
                 joined('g://2'), refused('g://3', 'limit') ] },
    "$name - join: a result per id, in order";
is_deeply $a->leave_rooms('g://1', 'g://1', 'nope://1'),
    { rooms => [ left('g://1'),
                 { room_id => 'g://1', left => JSON::PP::false(),
                   error => 'not a member' },
                 { room_id => 'nope://1', left => JSON::PP::false(),
                   error => 'not a member' } ] },
    "$name - leave: a result per id";
is_deeply $a->join_rooms('g://3'), { rooms => [ joined('g://3') ] },
    "$name - a place again after a leave";
is_deeply $a->join_rooms(\'{"a":1}'),
    { rooms => [], error => 'expected a JSON array of strings' },
    "$name - not a list: refused whole";
is_deeply $a->join_rooms(\'["g://9",'),
    { rooms => [], error => 'invalid JSON' }, "$name - broken JSON";
is_deeply $a->join_rooms(\''), { rooms => [] }, "$name - empty body";
is_deeply $a->leave_rooms(\'[1]'),
    { rooms => [], error => 'expected a JSON array of strings' },
    "$name - leave: not a list of strings";
my $r = $a->join_rooms(map { "m://$_" } 0 .. 256);
is $r->{error}, 'more than 256 rooms', "$name - at most 256 ids a list";
push_ok('/goim/push/room?operation=1000&type=g&room=1', 'G1');
push_ok('/goim/push/room?operation=1000&type=g&room=2', 'G2');
push_ok('/goim/push/room?operation=1000&type=g&room=3', 'G3');
push_ok('/goim/push/room?operation=1000&type=live&room=1', 'L1');
sentinel_ok();
is_deeply collect($a), ['1000:G2', '1000:G3', '1000:L1'],
    "$name - pushes of the rooms it is in, once each";
is $a->heartbeat, 1, "$name - heartbeat: the first room's count";
is_deeply $a->leave_rooms('live://1'), { rooms => [ left('live://1') ] },
    "$name - leaving the first room";
is $a->heartbeat, 1, "$name - heartbeat: no first room, the last count";
is_deeply online('live', 1), { 1 => 0 }, "$name - live://1 left";
is_deeply online('g', 2, 3), { 2 => 1, 3 => 1 }, "$name - g rooms kept";
is $a->change_room('live://5'), 'live://5', "$name - op 12 echoes";
is $a->heartbeat, 1, "$name - op 12 made live://5 the first room";
is_deeply online('live', 5), { 5 => 1 }, "$name - counted";
$a->close;



=== TEST 3: op 12 on the first room beside other rooms
--- main_config
goim_max_rooms 2;
--- perl
my $a = client(tcp => tok(mid => 1, key => 'a', room_id => 'live://1',
                        room_ids => ['g://1']));
my $b = client(tcp => tok(mid => 2, key => 'b',
                          room_ids => ['g://1', 'g://2']));
is $a->change_room('g://1'), 'g://1', "$name - change to a room it is in";
is $a->heartbeat, 2, "$name - g://1 is the first room now";
is_deeply online('live', 1), { 1 => 0 }, "$name - live://1 left";
is_deeply online('g', 1), { 1 => 2 }, "$name - g://1 counted once";
push_ok('/goim/push/room?operation=1000&type=g&room=1', 'G1');
push_ok('/goim/push/room?operation=1000&type=live&room=1', 'L1');
sentinel_ok();
is_deeply collect($a), ['1000:G1'], "$name - one push, once";
is_deeply $a->join_rooms('g://2'), { rooms => [ joined('g://2') ] },
    "$name - a second room";
is $a->change_room('live://2'), 'live://2',
    "$name - at the limit, op 12 replaces the first room";
is_deeply online('g', 1, 2), { 1 => 1, 2 => 2 }, "$name - g://1 left";
is_deeply online('live', 2), { 2 => 1 }, "$name - live://2 joined";
is $b->change_room('live://3'), 'live://3',
    "$name - b, no first room, at the limit: op 12 echoes";
is $b->heartbeat, 0, "$name - and is refused";
is_deeply online('live', 3), { 3 => 0 }, "$name - live://3 not joined";
$_->close for $a, $b;
--- error_log
change room refused: limit



=== TEST 4: a kicked connection leaves all its rooms; the new one joins
--- perl
my $a = client(tcp => tok(mid => 1, key => 'k',
                          room_ids => ['g://1', 'g://2']));
my $b = client(ws => tok(mid => 1, key => 'k', room_ids => ['g://2', 'g://3']));
ok $a->expect_closed(3), "$name - the older connection was kicked";
is_deeply wait_online({ 1 => 0, 2 => 1, 3 => 1 }, 'g', 1, 2, 3),
    { 1 => 0, 2 => 1, 3 => 1 }, "$name - counts follow";
push_ok('/goim/push/room?operation=1000&type=g&room=2', 'G2');
sentinel_ok();
is_deeply collect($b), ['1000:G2'], "$name - the newer one gets it";
$b->close;



=== TEST 5: signed tokens: allowed_rooms bounds joins and op 12
--- main_config
goim_auth_secret 'a-test-secret-of-more-than-32-bytes-1234';
--- perl
my $tok = sign('{"mid":1,"key":"s1","room_id":"live://1",'
             . '"room_ids":["user://1"],'
             . '"allowed_rooms":["group://*","live://9"],"exp":4102444800}');
my $a = client(tcp => $tok);
is_deeply $a->{auth}{rooms}, [ joined('live://1'), joined('user://1') ],
    "$name - the token's own rooms join, rights or not";
is_deeply $a->join_rooms('group://5', 'live://9', 'live://90', 'user://2',
                         'group:/'),
    { rooms => [ joined('group://5'), joined('live://9'),
                 refused('live://90', 'not allowed'),
                 refused('user://2', 'not allowed'),
                 refused('group:/', 'not allowed') ] },
    "$name - exact and prefix rights";
is_deeply $a->join_rooms('user://1'), { rooms => [ joined('user://1') ] },
    "$name - a room it is in already answers joined";
is $a->change_room('live://10'), 'live://10', "$name - op 12 echoes";
is_deeply online('live', 1, 10), { 1 => 1, 10 => 0 },
    "$name - op 12 to a room not allowed is refused";
is $a->change_room('group://6'), 'group://6', "$name - op 12 echoes";
is_deeply online('live', 1), { 1 => 0 }, "$name - allowed: live://1 left";
is_deeply online('group', 6), { 6 => 1 }, "$name - and group://6 joined";
my $b = client(ws => sign('{"mid":2,"allowed_rooms":[],"exp":4102444800}'));
is_deeply $b->join_rooms('group://5'),
    { rooms => [ refused('group://5', 'not allowed') ] },
    "$name - [] allows no room";
my $c = client(ws => sign('{"mid":3,"exp":4102444800}'));
is_deeply $c->join_rooms('secret://1'), { rooms => [ joined('secret://1') ] },
    "$name - without allowed_rooms any room";
$_->close for $a, $b, $c;
--- error_log
change room refused: not allowed



=== TEST 6: 1,600 rooms: past a worker's first table and the zone's buckets
--- main_config
goim_max_rooms 64;
goim_zone goim 1m;
--- perl
# 1m: 512 buckets per zone table, so chains of ~3; 1,600 rooms in one
# worker double its table from 1,024 buckets (core/ngx_goim_hash.c)
my @c;
for my $i (0 .. 24) {
    push @c, client($i % 2 ? 'ws' : 'tcp',
                    tok(mid => $i + 1, key => "h$i",
                        room_ids => [ map { "r://$i-$_" } 0 .. 63 ]));
}
is scalar(grep { my $c = $_;
                 64 == grep { $_->{joined} } @{ $c->{auth}{rooms} } } @c),
   25, "$name - every client joined its 64 rooms";
my @probe = ([0, 0], [7, 63], [12, 33], [24, 1], [24, 63]);
push_ok("/goim/push/room?operation=1000&type=r&room=$_->[0]-$_->[1]",
        "R$_->[0]-$_->[1]") for @probe;
sentinel_ok();
is_deeply [ map { my $i = $_; collect($c[$i]) } 0 .. 24 ],
    [ map { my $i = $_;
            [ map { "1000:R$_->[0]-$_->[1]" } grep { $_->[0] == $i } @probe ]
          } 0 .. 24 ],
    "$name - each client got its rooms' pushes once, the others none";
is_deeply online('r', '0-0', '24-63', '25-0'),
    { '0-0' => 1, '24-63' => 1, '25-0' => 0 }, "$name - zone counts";
$c[$_]->close for 0 .. 12;
is_deeply wait_online({ '0-0' => 0, '12-63' => 0, '13-0' => 1 },
                      'r', '0-0', '12-63', '13-0'),
    { '0-0' => 0, '12-63' => 0, '13-0' => 1 },
    "$name - 832 rooms left with their members";
push_ok('/goim/push/room?operation=1000&type=r&room=0-0', 'GONE');
push_ok('/goim/push/room?operation=1000&type=r&room=20-40', 'R20');
sentinel_ok();
is_deeply collect($c[20]), ['1000:R20'], "$name - the rooms left work";
is_deeply collect($c[19]), [], "$name - and a push reaches only its room";
$c[$_]->close for 13 .. 24;
is_deeply wait_online({ '13-0' => 0, '24-63' => 0 }, 'r', '13-0', '24-63'),
    { '13-0' => 0, '24-63' => 0 }, "$name - every room left";
