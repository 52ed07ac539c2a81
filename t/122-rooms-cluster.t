# Several rooms per connection in the cluster (docs/PROTOCOL.md 1.14):
# two nodes, redis-server, kafka-mock and goim-job on loopback.  Room
# pushes through either node's API reach each member of a room once on
# both nodes, whatever other rooms it is in; joins and leaves change what
# a connection gets; the cluster's online counts (goim's ol_ hashes in
# Redis, read back by every node) count every room of every connection.
# Presence (goim_presence on): every node lists and counts the members
# of a room on all nodes, and those of a node killed with SIGKILL go
# within goim_registry_ttl.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use GoimClient;
use GoimRedis qw(have_redis rcli);
use GoimKafka qw(have_kafka);
use GoimCluster qw(cluster_up cluster_down node_api node_stop);

my $Repo = "$FindBin::Bin/..";
my $Module = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
my $Job = $ENV{TEST_GOIM_JOB} || "$Repo/build/goim-job";

plan skip_all => 'the module and goim-job must be built'
    unless -f $Module && -x $Job;
plan skip_all => 'redis-server, kafka-mock and kafka-probe are needed'
    unless have_redis() && have_kafka();

my $cl = cluster_up(nodes => 2, main_extra => "goim_presence on;\n"
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
my $got;
my $deadline = time + 5;
while (1) {
    $got = presence(0, stats => 'room=live://1');
    last if ($got && $got->{connections} == 0) || time > $deadline;
    sleep 0.1;
}
is_deeply $got, { room_id => 'live://1', connections => 0, members => 0 },
    'cluster presence: closes counted';

# a node killed: its members go within the TTL
my $x = client(0, tcp => { mid => 7, key => 'rx', room_ids => ['p://k'] });
my $y = client(1, ws => { mid => 8, key => 'ry', room_ids => ['p://k'] });
is presence(0, stats => 'room=p://k')->{connections}, 2,
    'cluster presence: a member on each node';
node_stop(1, 'KILL');
my $t0 = time;
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

my @bad = cluster_down();
is_deeply \@bad, [], 'cluster: no alert, crash or sanitizer report';

done_testing();
