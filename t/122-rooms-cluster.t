# Several rooms per connection in the cluster (docs/PROTOCOL.md 1.14):
# two nodes, redis-server, kafka-mock and goim-job on loopback.  Room
# pushes through either node's API reach each member of a room once on
# both nodes, whatever other rooms it is in; joins and leaves change what
# a connection gets; the cluster's online counts (goim's ol_ hashes in
# Redis, read back by every node) count every room of every connection.
# Presence (goim_presence on): every node lists and counts the members
# of a room on all nodes; those of a worker killed with SIGKILL are
# removed by its node, those of a node killed go within
# goim_registry_ttl.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use GoimClient;
use JSON::PP ();
use GoimRedis qw(have_redis rcli);
use GoimKafka qw(have_kafka);
use GoimCluster qw(cluster_up cluster_down node_api node_stop redis_restart);

my $Repo = "$FindBin::Bin/..";
my $Module = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
my $Job = $ENV{TEST_GOIM_JOB} || "$Repo/build/goim-job";

plan skip_all => 'the module and goim-job must be built'
    unless -f $Module && -x $Job;
plan skip_all => 'redis-server, kafka-mock and kafka-probe are needed'
    unless have_redis() && have_kafka();

my $cl = cluster_up(nodes => 2, main_extra => "goim_presence on;\n"
                                              . "goim_presence_events 100;\n"
                                              . "goim_registry_ttl 3s;\n");
my @node = @{ $cl->{nodes} };

sub client {
    my ($i, $transport, $token) = @_;
    my $c = GoimClient->new(transport => $transport, timeout => 5,
        port => $transport eq 'ws' ? $node[$i]{ws} : $node[$i]{tcp});
    my $err = $c->connect;
    die "connect node $i $transport: $err\n" if $err;
    $c->{auth} = $c->auth($token)
        or die "auth on node $i: " . ($c->error // '?') . "\n";
    return $c;
}

sub push_ok {
    my ($i, $path, $body) = @_;
    my ($st, $j, $raw) = node_api($i, POST => $path, $body);
    ok(($st // 0) == 200 && $j && $j->{code} == 0,
       "node $i: POST $path accepted") or diag $raw;
}

# every push a client gets within $timeout, sorted (room batches of
# different rooms need not keep their order)
sub got {
    my ($c, $timeout) = @_;
    my @p = $c->read_pushes(100, $timeout // 2);
    return [ sort map { "$_->{op}:$_->{body}" } @p ];
}

# polls node $i's online/room until it answers $want
sub online_is {
    my ($i, $query, $want, $what) = @_;
    my ($got, $deadline) = (undef, time + 10);
    while (1) {
        my ($st, $j) = node_api($i, GET => "/goim/online/room?$query");
        $got = $j && $j->{data};
        last if Test::More::eq_hash($got // {}, $want) || time > $deadline;
        sleep 0.2;
    }
    is_deeply $got, $want, $what;
}

my $a = client(0, tcp => { mid => 1, key => 'ra', room_id => 'live://1',
                           room_ids => ['group://1', 'user://a'] });
my $b = client(1, ws => { mid => 2, key => 'rb', room_ids => ['group://1'] });
my $c = client(1, tcp => { mid => 3, key => 'rc', room_id => 'live://1' });
is_deeply $a->{auth}{rooms}, [
    { room_id => 'live://1', joined => JSON::PP::true() },
    { room_id => 'group://1', joined => JSON::PP::true() },
    { room_id => 'user://a', joined => JSON::PP::true() } ],
    'cluster: auth reply lists the rooms';

push_ok(1, '/goim/push/room?operation=1000&type=group&room=1', 'G1');
push_ok(0, '/goim/push/room?operation=1000&type=user&room=a', 'UA');
push_ok(1, '/goim/push/room?operation=1000&type=live&room=1', 'L1');
is_deeply got($a), ['1000:G1', '1000:L1', '1000:UA'],
    'cluster: a (node 0) got each of its three rooms once';
is_deeply got($b), ['1000:G1'], 'cluster: b (node 1) got group://1 once';
is_deeply got($c), ['1000:L1'], 'cluster: c (node 1) got live://1';

online_is(0, 'type=group&rooms=1', { 1 => 2 },
          'cluster: group://1 counts a and b over both nodes');
online_is(1, 'type=live&rooms=1', { 1 => 2 },
          'cluster: live://1 counts a and c');
online_is(1, 'type=user&rooms=a', { a => 1 }, 'cluster: user://a');

my $r = $b->join_rooms('live://1');
is $r->{rooms}[0]{joined}, JSON::PP::true(), 'cluster: b joins live://1';
$r = $b->leave_rooms('group://1');
is $r->{rooms}[0]{left}, JSON::PP::true(), 'cluster: b leaves group://1';
push_ok(0, '/goim/push/room?operation=1000&type=live&room=1', 'L2');
push_ok(0, '/goim/push/room?operation=1000&type=group&room=1', 'G2');
is_deeply got($a), ['1000:G2', '1000:L2'], 'cluster: a got both';
is_deeply got($b), ['1000:L2'], 'cluster: b only its new room';
is_deeply got($c), ['1000:L2'], 'cluster: c its room';
online_is(0, 'type=live&rooms=1', { 1 => 3 },
          'cluster: live://1 counts the join');
online_is(0, 'type=group&rooms=1', { 1 => 1 },
          'cluster: group://1 counts the leave');

# presence over both nodes, through either node's API
sub presence {
    my ($i, $what, $query) = @_;
    my ($st, $j) = node_api($i, GET => "/goim/presence/$what?$query");
    return $j && $j->{code} == 0 ? $j->{data} : undef;
}

sub listed {
    my ($i, $room, $limit) = @_;
    my ($cursor, %who, $pages) = ('');
    while (1) {
        my $d = presence($i, room => "room=$room&limit=$limit"
                                     . "&cursor=$cursor") or return 'error';
        $who{ $_->{key} } = "$_->{mid} $_->{node}" for @{ $d->{list} };
        $cursor = $d->{cursor};
        last if $cursor eq '' || ++$pages > 20;
    }
    return \%who;
}

is_deeply presence(0, stats => 'room=live://1'),
    { room_id => 'live://1', connections => 3, members => 3 },
    'cluster presence: stats of both nodes';
is_deeply presence(1, stats => 'type=group&room=1'),
    { room_id => 'group://1', connections => 1, members => 1 },
    'cluster presence: a leave counted';
my %want = (ra => '1 comet-a', rb => '2 comet-b', rc => '3 comet-b');
is_deeply listed(1, 'live://1', 1000), \%want,
    'cluster presence: every member listed once, with its node';
is_deeply listed(0, 'live://1', 1), \%want, 'cluster presence: paged';

$a->close;
online_is(1, 'type=group&rooms=1', { 1 => 0 }, 'cluster: a closed');
online_is(1, 'type=live&rooms=1', { 1 => 2 }, 'cluster: live://1 too');
$_->close for $b, $c;
my ($got, $t0);
my $deadline = time + 5;
while (1) {
    $got = presence(0, stats => 'room=live://1');
    last if ($got && $got->{connections} == 0) || time > $deadline;
    sleep 0.1;
}
is_deeply $got, { room_id => 'live://1', connections => 0, members => 0 },
    'cluster presence: closes counted';

# join and leave events cross the nodes (through Kafka and the job), once
# each, a connection not told of its own join
my $JSON = JSON::PP->new;

sub events_until {
    my ($c, $n) = @_;
    my ($deadline, @got) = (time + 10);
    while (@got < $n) {
        my ($p) = $c->read_pushes(1, $deadline - time) or last;
        next unless $p->{op} == 34;
        my $e = eval { $JSON->decode($p->{body}) } // { event => 'bad' };
        push @got, "$e->{event} $e->{room_id} $e->{mid} $e->{key}";
    }
    return \@got;
}

# what a client gets before the sentinel room push, as "op body"
sub until_sentinel {
    my ($c) = @_;
    my ($deadline, @got) = (time + 5);
    while (1) {
        my ($p) = $c->read_pushes(1, $deadline - time);
        unless ($p) { push @got, 'NO SENTINEL'; last }
        last if $p->{op} == 9999;
        push @got, "$p->{op} $p->{body}";
    }
    return \@got;
}

my $wa = client(0, tcp => { mid => 30, key => 'ewa', room_ids => ['e://1'],
                            accepts => [34] });
# wa's own join went to every comet before the sentinel (one partition
# a room): wb, joining after, does not get it late
push_ok(1, '/goim/push/room?operation=9999&type=e&room=1', 'END');
is_deeply until_sentinel($wa), [], 'cluster events: not told of its own join';
my $wb = client(1, ws => { mid => 31, key => 'ewb', room_ids => ['e://1'],
                           accepts => [34] });
my $ea = client(0, tcp => { mid => 32, key => 'eea' });
$ea->join_rooms('e://1');
$ea->leave_rooms('e://1');
my $eb = client(1, tcp => { mid => 33, key => 'eeb', room_ids => ['e://1'] });
$eb->close;
my @theirs = ('join e://1 32 eea', 'leave e://1 32 eea', 'join e://1 33 eeb',
              'leave e://1 33 eeb');
$got = events_until($wa, 5);
is_deeply [sort @$got], [sort 'join e://1 31 ewb', @theirs],
    'cluster events: the watcher on node 0 got the joins and leaves of both '
    . 'nodes' or diag explain $got;
$got = events_until($wb, 4);
is_deeply [sort @$got], [sort @theirs],
    'cluster events: the watcher on node 1 too, not its own join'
    or diag explain $got;
push_ok(0, '/goim/push/room?operation=9999&type=e&room=1', 'END');
is_deeply until_sentinel($wa), [], 'cluster events: nothing twice on node 0';
is_deeply until_sentinel($wb), [], 'cluster events: nor on node 1';
$_->close for $wa, $wb, $ea;

# a worker killed: the node lives on, and its respawned worker removes
# the dead one's members from Redis (the room's hash is renewed for the
# node's other member, so only that removal takes them out)
sub settled {
    my ($i, $room, $want, $timeout) = @_;
    my ($got, $deadline) = (undef, time + ($timeout // 5));
    while (1) {
        $got = [ presence($i, stats => "room=$room"), listed($i, $room, 10) ];
        last if Test::More::eq_array($got, $want) || time > $deadline;
        sleep 0.2;
    }
    return $got;
}

my $v = client(0, tcp => { mid => 11, key => 'wv', room_ids => ['p://w'] });
is presence(1, stats => 'room=p://w')->{connections}, 1,
    'cluster presence: a member of node 0';
my @kids = GoimCluster::_children($node[0]{pid});
is scalar(@kids), 1, 'cluster: node 0 has one worker';
kill 'KILL', @kids;
ok $v->expect_closed(5), 'cluster: its client sees the end';
my $z = client(0, ws => { mid => 12, key => 'wz', room_ids => ['p://w'] });
$got = settled(1, 'p://w', [ { room_id => 'p://w', connections => 1,
                               members => 1 }, { wz => '12 comet-a' } ]);
is_deeply $got, [ { room_id => 'p://w', connections => 1, members => 1 },
                  { wz => '12 comet-a' } ],
    'cluster presence: the killed worker\'s member is gone from Redis, '
    . 'the new one listed' or diag explain $got;
$z->close;

# Redis restarted empty: the nodes write their members again (with the
# sessions), the mids' counts as they are, not added to
my $q = client(0, tcp => { mid => 21, key => 'rq', room_ids => ['p://r'] });
my $q2 = client(0, ws => { mid => 21, key => 'rq2', room_ids => ['p://r'] });
my $s = client(1, tcp => { mid => 22, key => 'rs', room_ids => ['p://r'] });
my %r = (rq => '21 comet-a', rq2 => '21 comet-a', rs => '22 comet-b');
my $rstats = { room_id => 'p://r', connections => 3, members => 2 };
is_deeply settled(0, 'p://r', [ $rstats, \%r ]), [ $rstats, \%r ],
    'cluster presence: three members on two nodes';
redis_restart(1);
$t0 = time;
$got = settled(1, 'p://r', [ $rstats, \%r ], 15);
is_deeply $got, [ $rstats, \%r ],
    sprintf('cluster presence: listed and counted again after a Redis '
            . 'restart (%.1fs)', time - $t0) or diag explain $got;
is_deeply [ map { rcli('HGET', "presence_mids_comet-$_->[0]_p://r", $_->[1]) }
            ['a', 21], ['b', 22] ],
    [ 2, 1 ], 'cluster presence: each mid\'s count is its node\'s';
$_->close for $q, $q2, $s;

# a node killed: its members go within the TTL
my $x = client(0, tcp => { mid => 7, key => 'rx', room_ids => ['p://k'] });
my $y = client(1, ws => { mid => 8, key => 'ry', room_ids => ['p://k'] });
is presence(0, stats => 'room=p://k')->{connections}, 2,
    'cluster presence: a member on each node';
node_stop(1, 'KILL');
$t0 = time;
$deadline = time + 10;
while (1) {
    $got = presence(0, stats => 'room=p://k');
    last if ($got && $got->{connections} == 1) || time > $deadline;
    sleep 0.2;
}
is_deeply [ $got && $got->{connections}, listed(0, 'p://k', 10) ],
    [ 1, { rx => '7 comet-a' } ],
    sprintf('cluster presence: the killed node\'s member gone after %.1fs',
            time - $t0);
$x->close;

# the one worker killed on purpose says so once
my @bad = cluster_down();
my @killed = grep { /comet-a: .*\[alert\] .*worker process $kids[0] exited on signal 9$/ } @bad;
is scalar(@killed), 1, 'cluster: the killed worker\'s exit logged';
is_deeply [grep { !/worker process $kids[0] exited on signal 9$/ } @bad], [],
    'cluster: no other alert, crash or sanitizer report';

done_testing();
