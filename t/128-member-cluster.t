# Members' messages in the cluster (docs/PROTOCOL.md 1.16, 4.2, 5.2, 5.6):
# two nodes, redis-server, kafka-mock and goim-job on loopback, with
# goim_history members=on.  A push by mid goes through Kafka as one PUSH
# per server and member, with the member's position in offline_<mid>;
# the job passes it to the comet in PushMsgReq, and the comet gives the
# live message its position (ver 0, seq the offset).  A member away from
# node A, pushed to through either node, recovers exactly what it missed
# on node B with op 35, then gets the live stream.
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
use GoimCluster qw(cluster_up cluster_down node_api);

my $Repo = "$FindBin::Bin/..";
my $Module = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
my $Job = $ENV{TEST_GOIM_JOB} || "$Repo/build/goim-job";

plan skip_all => 'the module and goim-job must be built'
    unless -f $Module && -x $Job;
plan skip_all => 'redis-server, kafka-mock and kafka-probe are needed'
    unless have_redis() && have_kafka();

my $cl = cluster_up(nodes => 2,
                    main_extra => "goim_history size=16 ttl=60s members=on;\n");
my @node = @{ $cl->{nodes} };

# a connection of member $mid on node $i; op 35 first with recover =>
# [epoch, offset]; returns ($client, its op 8 body)
sub member {
    my ($i, $mid, %o) = @_;
    my $t = $o{transport} // 'tcp';
    my $c = GoimClient->new(transport => $t, timeout => 5,
        port => $t eq 'ws' ? $node[$i]{ws} : $node[$i]{tcp});
    my $err = $c->connect;
    die "connect node $i: $err\n" if $err;
    if ($o{recover}) {
        $c->send_packet(35, JSON::PP::encode_json({ rooms => [{
            room_id => "mid://$mid", epoch => "$o{recover}[0]",
            offset => $o{recover}[1] + 0 }] }));
    }
    my $r = $c->auth({ mid => $mid, key => $o{key} // "m$mid-$i",
                       accepts => [1000] })
        or die "auth on node $i: " . ($c->error // '?') . "\n";
    return ($c, $r);
}

sub entry {
    my ($rooms, $mid) = @_;
    my ($e) = grep { $_->{room_id} eq "mid://$mid" } @{ $rooms // [] };
    return $e;
}

sub push_mid {
    my ($i, $mids, $body) = @_;
    my ($st, $j, $raw) = node_api($i, POST => '/goim/push/mids?operation=1000&'
                                  . join('&', map { "mids=$_" } @$mids),
                                  $body);
    ok(($st // 0) == 200 && $j && $j->{code} == 0,
       "node $i: push by mid $body accepted") or diag $raw;
}

# packets until none comes for $quiet s: "op/ver/seq/body", op 36 whole
sub drain {
    my ($c, $quiet) = @_;
    my @p;
    while (my $p = $c->read_packet($quiet // 1)) {
        push @p, $p->{op} == 36 ? "36:$p->{body}"
                                : "$p->{op}/$p->{ver}/$p->{seq}/$p->{body}";
    }
    return @p;
}

sub epoch_of {
    my ($mid) = @_;
    my $out = rcli('XREVRANGE', "offline_$mid", '+', '-', 'COUNT', 1) // '';
    return $out =~ /^(\d+)-\d+/ ? $1 : undef;
}

# live pushes through Kafka carry positions, on both nodes, each member
# its own message
my ($a, $ra) = member(0, 41);
my ($b, $rb) = member(1, 41, transport => 'ws');
my ($o, $ro) = member(1, 42);
is_deeply [map { entry($_->{rooms}, $_ == $rb ? 41 : $_ == $ro ? 42 : 41) }
           $ra, $rb, $ro],
    [map { { room_id => "mid://$_", joined => JSON::PP::true, stream => 0,
             epoch => '0', offset => 0 } } 41, 41, 42],
    'op 8: the member rooms, no stream yet';
push_mid(0, [41, 42], 'one');
push_mid(1, [41], 'two');
my $ep = epoch_of(41);
my $ep42 = epoch_of(42);
my $new41 = "36:{\"rooms\":[{\"room_id\":\"mid://41\",\"stream\":0,"
            . "\"epoch\":\"$ep\",\"offset\":0}]}";
is_deeply [drain($a)], [$new41, '1000/0/1/one', '1000/0/2/two'],
    'node A: the new epoch, then one and two with offsets 1, 2';
is_deeply [drain($b)], [$new41, '1000/0/1/one', '1000/0/2/two'],
    'node B (WebSocket): the same';
is_deeply [drain($o)],
    ["36:{\"rooms\":[{\"room_id\":\"mid://42\",\"stream\":0,"
     . "\"epoch\":\"$ep42\",\"offset\":0}]}", '1000/0/1/one'],
    'member 42: its own offset 1';
$b->close;

# member 41 leaves node A; pushes through both nodes while away
$a->close;
sleep 0.5;
push_mid($_ % 2, [41], "away$_") for 1 .. 5;

# back on node B from offset 2: exactly the 5 missed, op 36, then live
my ($c, $rc) = member(1, 41, recover => [$ep, 2]);
is entry($rc->{rooms}, 41)->{offset}, 7, 'node B: op 8 gives the seam 7';
push_mid(0, [41], 'live');
is_deeply [drain($c)],
    [(map { '1000/0/' . ($_ + 2) . "/away$_" } 1 .. 5),
     "36:{\"rooms\":[{\"room_id\":\"mid://41\",\"stream\":0,"
     . "\"epoch\":\"$ep\",\"offset\":7,\"recovered\":true,\"messages\":5}]}",
     '1000/0/8/live'],
    'node B: away1..away5 (3..7), op 36, then live (8), none twice';

# a connection that had everything: recovered, nothing again
my ($d, $rd) = member(0, 41, key => 'again', recover => [$ep, 8]);
is entry($rd->{rooms}, 41)->{offset}, 8, 'node A: seam 8, nothing missed';
like join(' ', drain($d, 0.5)), qr/"recovered":true,"messages":0/,
    'node A: recovered, 0 messages';
$_->close for $c, $d, $o;

my @bad = cluster_down();
is_deeply \@bad, [], 'cluster: no alert, crash or sanitizer report';

done_testing();
