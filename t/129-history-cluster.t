# Room positions and recovery in the cluster (docs/PROTOCOL.md 1.15):
# two comets with goim_history, redis-server, kafka-mock (one partition,
# so every room shares it and a room's offsets skip) and the real job on
# loopback.  A room message's position is its Kafka offset + 1, the same
# on both comets; a client that read some on comet A recovers exactly
# what it missed on comet B, then the live stream, none twice; beyond the
# history it is told why; a job killed and started again delivers every
# message again, and no client gets one twice; a comet restarted knows a
# room's messages from the first one it got after its start.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use JSON::PP ();
use GoimClient;
use GoimRedis qw(have_redis);
use GoimKafka qw(have_kafka kafka_dump);
use GoimCluster qw(cluster_up cluster_down node_api node_status node_start
                   node_stop job_start job_stop job_log);

my $Repo = "$FindBin::Bin/..";
my $Module = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
my $Job = $ENV{TEST_GOIM_JOB} || "$Repo/build/goim-job";

plan skip_all => 'the module and goim-job must be built'
    unless -f $Module && -x $Job;
plan skip_all => 'redis-server, kafka-mock and kafka-probe are needed'
    unless have_redis() && have_kafka();

use constant OP_RECOVER       => 35;
use constant OP_RECOVER_REPLY => 36;

my $JSON = JSON::PP->new->utf8->canonical;

# offsets are never committed while the test runs: a job killed and
# started again reads the topic from its start
my $cl = cluster_up(nodes => 2, kafka_topics => ['goim-push-topic:1'],
                    main_extra => "goim_history size=16 ttl=60s;\n",
                    job_conf => ['kafka_option auto.commit.interval.ms '
                                 . '3600000']);

# a client of node $i in $room; op 35 before op 7 when $since is given
sub client {
    my ($i, $transport, $room, $since) = @_;
    my $n = $cl->{nodes}[$i];
    my $c = GoimClient->new(transport => $transport, timeout => 5,
        port => $transport eq 'ws' ? $n->{ws} : $n->{tcp});
    my $err = $c->connect;
    die "connect node $i: $err\n" if $err;
    $c->send_packet(OP_RECOVER, $JSON->encode({ rooms => [
        { room_id => $room, %$since } ] })) if $since;
    $c->{auth} = $c->auth({ key => "k" . int(rand 1e9), room_id => $room,
                            accepts => [1000] })
        or die "auth on node $i: " . ($c->error // '?') . "\n";
    $c->{pos} = $c->{auth}{rooms}[0];
    return $c;
}

# the room's pushes as [offset, body] until op 36 (kept in $c->{result})
# or $n of them; the full offset from seq and the last one known
sub pushes {
    my ($c, $n, $timeout) = @_;
    my @got;
    my $deadline = time + $timeout;
    delete $c->{result};
    while (@got < $n) {
        my $p = $c->wait_op(sub { $_[0]{op} == 1000
                                  || $_[0]{op} == OP_RECOVER_REPLY },
                            $deadline - time) or last;
        if ($p->{op} == OP_RECOVER_REPLY) {
            $c->{result} = $JSON->decode($p->{body});
            last;
        }
        my $stream = $p->{ver} & 0xffff;
        die "stream $stream, not $c->{pos}{stream}\n"
            if $stream != $c->{pos}{stream};
        my $last = $c->{last} // $c->{pos}{offset};
        my $seq = $p->{seq} & 0xffffffff;
        $c->{last} = $last + (($seq - ($last & 0xffffffff)) & 0xffffffff);
        push @got, [$c->{last}, $p->{body}];
    }
    return \@got;
}

sub push_room {
    my ($i, $room, $body) = @_;
    my ($st, $j, $raw) = node_api($i, POST => "/goim/push/room?operation=1000"
                                  . "&type=live&room=$room", $body);
    return ok(($st // 0) == 200 && $j && $j->{code} == 0,
              "push $body to live://$room") || diag $raw;
}

sub metric {
    my ($i, $name) = @_;
    return node_status($i) =~ /^$name (\d+)$/m ? $1 : undef;
}

# node $i's history of live://$room: {offset, messages => [...]}
sub history {
    my ($i, $room) = @_;
    my ($st, $j) = node_api($i, GET => "/goim/history/room?type=live"
                            . "&room=$room&since=0&encoding=raw");
    return $j && $j->{code} == 0 ? $j->{data} : undef;
}

sub wait_until {
    my ($what, $cond, $timeout) = @_;
    my $deadline = time + ($timeout // 20);
    until ($cond->()) {
        return fail("$what: not within the deadline") if time > $deadline;
        sleep 0.1;
    }
    return pass($what);
}

# waits until node $i's history of live://$room ends with $body's
# message: an API answer means the message is in Kafka, not on each comet
sub wait_at {
    my ($i, $room, $body) = @_;
    my $want = kafka_offsets($room)->{$body} + 1;
    return wait_until("node $i has $body", sub {
        my $h = history($i, $room);
        $h && ($h->{offset} // 0) == $want });
}

# the Kafka offsets of the room's messages, by body
sub kafka_offsets {
    my ($room) = @_;
    return { map { $_->{msg} => $_->{offset} }
             grep { ($_->{room} // '') eq "live://$room" }
             kafka_dump('goim-push-topic') };
}

# --- recovery on the other comet, through gaps ---------------------------

my $a = client(0, tcp => 'live://k1');
is $a->{pos}{epoch}, '0000000000000000-0',
    'a room without a message on the comet yet: epoch 0-0';
is $a->{pos}{offset}, 0, 'and offset 0';
my $w = client(0, tcp => 'live://k1');     # stays, sees everything

for my $k (1 .. 3) {
    push_room(0, 'k1', "m$k");
    push_room(1, 'other', "o$k");          # the same partition: a gap
}
my $got = pushes($a, 3, 10);
is_deeply [map { $_->[1] } @$got], [qw(m1 m2 m3)], 'a read three';
my $ko = kafka_offsets('k1');
is_deeply [map { $_->[0] } @$got], [map { $ko->{"m$_"} + 1 } 1 .. 3],
    'their offsets are the Kafka offsets + 1' or diag explain $got, $ko;
ok $got->[1][0] - $got->[0][0] > 1, 'with a gap between them (live://other)';
my $last = $got->[2][0];
$a->close;

for my $k (4 .. 7) {
    push_room(1, 'k1', "m$k");
    push_room(0, 'other', "o$k");
}
my $seen = pushes($w, 7, 10);
is scalar @$seen, 7, 'the client that stayed got all seven';
wait_at(1, 'k1', 'm7');

my $b = client(1, ws => 'live://k1', { epoch => $a->{pos}{epoch},
                                       offset => $last });
like $b->{pos}{epoch}, qr/^[0-9a-f]{16}-0$/,
    'comet B gives the Kafka epoch of partition 0';
isnt $b->{pos}{epoch}, '0000000000000000-0', 'not 0-0: B had messages';
is $b->{pos}{offset}, $seen->[6][0], 'B\'s position is the last message\'s';
$b->{last} = $last;
$got = pushes($b, 100, 10);
is_deeply $got, [@$seen[3 .. 6]],
    'B: exactly the four missed, in order, at the positions A gave'
    or diag explain $got;
is $b->{result}{rooms}[0]{recovered}, JSON::PP::true(), 'op 36: recovered';
is $b->{result}{rooms}[0]{messages}, 4, 'op 36: 4 messages';
is $b->{result}{rooms}[0]{epoch}, $b->{pos}{epoch}, 'op 36: the epoch';

push_room(0, 'k1', 'm8');
$got = pushes($b, 1, 10);
my $wlive = pushes($w, 1, 10);
is_deeply [map { $_->[1] } @$got], ['m8'], 'then live, none twice';
is $got->[0][0], $wlive->[0][0], 'at the same position on both comets';
is_deeply [$b->read_pushes(5, 0.5)], [], 'and nothing more';

my ($h0, $h1) = (history(0, 'k1'), history(1, 'k1'));
is_deeply [map { $_->{offset} } @{ $h1->{messages} }],
    [map { $_->{offset} } @{ $h0->{messages} }],
    'both comets keep the same offsets';
is $h0->{epoch}, $h1->{epoch}, 'in the same epoch';

# --- beyond the history ---------------------------------------------------

my $pos = { epoch => $b->{pos}{epoch}, offset => $b->{last} };
$b->close;
push_room(0, 'k1', "n$_") for 1 .. 18;
wait_at(1, 'k1', 'n18');
my $c = client(1, ws => 'live://k1', $pos);
$got = pushes($c, 100, 10);
is_deeply $got, [], 'beyond the history: no message';
is $c->{result}{rooms}[0]{recovered}, JSON::PP::false(), 'recovered false';
is $c->{result}{rooms}[0]{reason}, 'offset older than the history',
    'with the reason';
$c->{last} = $c->{result}{rooms}[0]{offset};
push_room(1, 'k1', 'n19');
$got = pushes($c, 1, 10);
is_deeply [map { $_->[1] } @$got], ['n19'], 'and the live stream goes on'
    or diag explain $got, $c->{result};
$c->close;
$w->close;

# --- the job killed mid-stream: every message again, none twice ---------

my $e = client(0, tcp => 'live://k2');
my $f = client(1, ws => 'live://k2');
push_room(0, 'k2', "j$_") for 1 .. 5;
is_deeply [map { $_->[1] } @{ pushes($e, 5, 10) }], [map { "j$_" } 1 .. 5],
    'e got five';
is_deeply [map { $_->[1] } @{ pushes($f, 5, 10) }], [map { "j$_" } 1 .. 5],
    'f got five';
my @dup0 = (metric(0, 'goim_history_duplicates_total'),
            metric(1, 'goim_history_duplicates_total'));
is_deeply \@dup0, [0, 0], 'no duplicate yet';
job_stop('KILL');
push_room(1, 'k2', "j$_") for 6 .. 8;
job_start();
is_deeply [map { $_->[1] } @{ pushes($e, 100, 3) }], [map { "j$_" } 6 .. 8],
    'e: the three pushed while the job was down, once each';
is_deeply [map { $_->[1] } @{ pushes($f, 100, 1) }], [map { "j$_" } 6 .. 8],
    'f: the same';
my $total = keys %{ kafka_offsets('k1') };
wait_until('comet A dropped the messages the job delivered again', sub {
    (metric(0, 'goim_history_duplicates_total') // 0) >= $total + 5 });
wait_until('comet B too', sub {
    (metric(1, 'goim_history_duplicates_total') // 0) >= $total + 5 });
is_deeply [$e->read_pushes(5, 0.5)], [], 'e got nothing twice';
is_deeply [$f->read_pushes(5, 0.5)], [], 'f neither';

# --- a comet restarted ----------------------------------------------------

my $g = client(1, tcp => 'live://k3');
push_room(0, 'k3', "r$_") for 1 .. 2;
$got = pushes($g, 2, 10);
is_deeply [map { $_->[1] } @$got], [qw(r1 r2)], 'g read two on comet B';
my @gpos = map { { epoch => $g->{pos}{epoch}, offset => $_->[0] } } @$got;
$g->close;
node_stop(1, 'KILL');
push_room(0, 'k3', "r$_") for 3 .. 5;
node_start(1);
wait_at(1, 'k3', 'r5');
my $g2 = client(1, tcp => 'live://k3', $gpos[1]);
$got = pushes($g2, 100, 10);
is_deeply [map { $_->[1] } @$got], [qw(r3 r4 r5)],
    'restarted B: recovered from its first message on';
is $g2->{result}{rooms}[0]{recovered}, JSON::PP::true(), 'recovered true';
my $g3 = client(1, tcp => 'live://k3', $gpos[0]);
$got = pushes($g3, 100, 10);
is_deeply $got, [], 'from before its first message: none';
is $g3->{result}{rooms}[0]{reason}, 'offset older than the history',
    'recovered false: offset older than the history';
my $g4 = client(1, tcp => 'live://k4', { epoch => $pos->{epoch},
                                         offset => 1 });
is $g4->{pos}{epoch}, '0000000000000000-0',
    'a room without a message on the restarted comet: 0-0';
pushes($g4, 100, 10);
is $g4->{result}{rooms}[0]{reason}, 'epoch changed',
    'a position there: epoch changed';

$g4->close;
like job_log(), qr/room positions: epoch [0-9a-f]{16}-<partition> \(cluster id "[^"]+"/,
    'the epoch names the Kafka cluster';

# --- history_epoch: the operator says the offsets mean other messages ---

my $h3 = history(0, 'k3');
$g2->close;
$g3->close;
job_stop('KILL');
push @{ $cl->{opts}{job_conf} }, 'history_epoch 2';
job_start();
wait_until('comet A takes the messages again in the new epoch', sub {
    my $h = history(0, 'k3');
    $h && $h->{epoch} ne $h3->{epoch} });
my $k = client(0, tcp => 'live://k3', { epoch => $h3->{epoch},
                                        offset => $h3->{offset} });
pushes($k, 100, 5);
is $k->{result}{rooms}[0]{reason}, 'epoch changed',
    'a position of the old epoch: epoch changed';
like $k->{result}{rooms}[0]{epoch}, qr/^[0-9a-f]{16}-0$/,
    'op 36 gives the new one';
isnt $k->{result}{rooms}[0]{epoch}, $h3->{epoch}, 'which differs';
$k->close;

my @bad = cluster_down();
is_deeply \@bad, [], 'no alert, crit, crash or sanitizer report'
    or diag explain \@bad;
done_testing();
