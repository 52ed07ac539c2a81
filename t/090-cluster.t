# The cluster end to end (README "Cluster"): redis-server, kafka-mock,
# two nginx nodes (conf/goim-cluster.conf) and goim-job, all on loopback.
# Every push goes app -> logic API (either node) -> Kafka -> goim-job ->
# internal push of every comet -> sockets.
#
#   1. keys, mids, room and all reach the right clients on both nodes;
#   2. a room's messages arrive in order on both nodes;
#   3. an undecodable Kafka message is skipped and counted;
#   4. a comet the job cannot reach, then stopped and started again
#      within its registry TTL, gets its messages once it is back;
#   5. Kafka down: the API answers errors, never a silent success; back
#      up: pushes are accepted and delivered again;
#   6. the job killed with SIGKILL in the middle of 10,000 room messages
#      and started again: every reading client gets every message at least
#      once (duplicates are reported, never a loss);
#   7. no alert, crash or sanitizer report in any log.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use GoimClient;
use GoimRedis qw(have_redis);
use GoimKafka qw(have_kafka kafka_down kafka_up kafka_bootstrap);
use GoimCluster qw(cluster_up cluster_down node_start node_stop node_api
                   node_plug node_unplug job_start job_stop job_metrics
                   job_log cluster);

my $Repo = "$FindBin::Bin/..";
my $Produce = "$Repo/build/goim-produce";
my $Module = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
my $Job = $ENV{TEST_GOIM_JOB} || "$Repo/build/goim-job";

plan skip_all => 'the module, goim-job and goim-produce must be built'
    unless -f $Module && -x $Job && -x $Produce;
plan skip_all => 'redis-server, kafka-mock and kafka-probe are needed'
    unless have_redis() && have_kafka();

my $cl = cluster_up(nodes => 2, proxy => 1);
my @node = @{ $cl->{nodes} };

# An authenticated client on node $i; dies when it cannot.
sub client {
    my ($i, $transport, $token) = @_;
    my $c = GoimClient->new(transport => $transport, timeout => 5,
        port => $transport eq 'ws' ? $node[$i]{ws} : $node[$i]{tcp});
    my $err = $c->connect;
    die "connect node $i $transport: $err\n" if $err;
    $c->auth($token)
        or die "auth on node $i: " . ($c->error // '?') . "\n";
    $c->{name} = "$token->{key}\@$node[$i]{id}";
    return $c;
}

sub push_api {
    my ($i, $path, $body) = @_;
    my ($st, $j, $raw) = node_api($i, POST => $path, $body);
    return ($st // 0) == 200 && $j && $j->{code} == 0 ? 1 : ($raw // 'none');
}

sub push_ok {
    my ($i, $path, $body) = @_;
    my $r = push_api($i, $path, $body);
    is $r, 1, "node $i: POST $path accepted";
}

# The bodies of the next $n pushes a client gets (fewer on timeout).
sub bodies {
    my ($c, $n, $timeout) = @_;
    return [ map { "$_->{op}:$_->{body}" } $c->read_pushes($n, $timeout) ];
}

# Reads and drops what the clients still have coming (a section's pushes
# to clients it does not check).
sub drain {
    for my $c (@_) {
        1 while $c->read_pushes(100, 0.3) == 100;
    }
}

sub metric_sum {
    my ($text, $re) = @_;
    my $sum = 0;
    for (split /\n/, $text) {
        next if /^#/;
        $sum += $1 if /^$re(?:\{[^}]*\})?\s+(\d+(?:\.\d+)?)/;
    }
    return $sum;
}

# --- 1. routing across the nodes ---------------------------------------

my %c = (
    A => client(0, tcp => { mid => 1, key => 'ka', room_id => 'live://1',
                            accepts => [1000] }),
    B => client(0, ws  => { mid => 2, key => 'kb', room_id => 'live://1',
                            accepts => [1000] }),
    C => client(1, ws  => { mid => 1, key => 'kc', room_id => 'live://1',
                            accepts => [1000] }),
    D => client(1, tcp => { mid => 3, key => 'kd', room_id => 'live://2',
                            accepts => [1000, 1001] }),
);

push_ok(0, '/goim/push/keys?operation=1000&keys=ka&keys=kc', 'p1');
push_ok(1, '/goim/push/mids?operation=1000&mids=1', 'p2');
push_ok(0, '/goim/push/mids?operation=1000&mids=3&mids=2', 'p3');
push_ok(1, '/goim/push/room?operation=1000&type=live&room=1', 'p4');
push_ok(0, '/goim/push/all?operation=1001', 'p5');
push_ok(1, '/goim/push/room?operation=1000&type=live&room=2', 'p6');
push_ok(0, '/goim/push/keys?operation=1000&keys=nokey', 'p7');

my %want = (
    A => [qw(1000:p1 1000:p2 1000:p4)],
    B => [qw(1000:p3 1000:p4)],
    C => [qw(1000:p1 1000:p2 1000:p4)],
    D => [qw(1000:p3 1001:p5 1000:p6)],
);
for my $k (sort keys %c) {
    my $n = @{ $want{$k} };
    my $got = bodies($c{$k}, $n, 10);
    # across push types the order is not kept (room batches merge)
    is_deeply [sort @$got], [sort @{ $want{$k} }],
        "routing: $c{$k}{name} got exactly its pushes"
        or diag explain $got;
    is_deeply bodies($c{$k}, 1, 0.5), [], "routing: nothing more for $k";
}

# --- 2. order within a room --------------------------------------------

my @seq = map { "o$_" } 1 .. 40;
my $pushed = 0;
for my $i (0 .. $#seq) {
    # through both nodes' producers: one partition per room keeps the order
    $pushed++ if push_api($i % 2, '/goim/push/room?operation=1000&type=live'
                                  . '&room=1', $seq[$i]) eq '1';
}
is $pushed, @seq, 'order: 40 room pushes accepted';
for my $k (qw(A B C)) {
    is_deeply bodies($c{$k}, 40, 10), [map { "1000:$_" } @seq],
        "order: $c{$k}{name} got the room's messages in order";
}

# --- 3. an undecodable message -----------------------------------------

my $bad_before = metric_sum(job_metrics(), 'goim_job_decode_errors_total');
system($Produce, '-b', kafka_bootstrap(), '-n', 3, '--garbage') == 0
    or diag "goim-produce --garbage failed";
push_ok(0, '/goim/push/room?operation=1000&type=live&room=1', 'after-bad');
is_deeply bodies($c{A}, 1, 10), ['1000:after-bad'],
    'undecodable: later messages still delivered';
my $deadline = time + 10;
sleep 0.2 while metric_sum(job_metrics(), 'goim_job_decode_errors_total')
                < $bad_before + 3 && time < $deadline;
is metric_sum(job_metrics(), 'goim_job_decode_errors_total') - $bad_before,
    3, 'undecodable: three messages counted as decode errors';
like job_log(), qr/undecodable|decode/i, 'undecodable: logged';
drain(values %c);

# --- 4. a comet unreachable, stopped and started within its TTL ----------

node_unplug(1);
my @u = map { "u$_" } 1 .. 5;
push_ok(0, '/goim/push/room?operation=1000&type=live&room=1', $_) for @u;
is_deeply bodies($c{A}, 5, 10), [map { "1000:$_" } @u],
    'unreachable: the reachable node delivers at once';
is_deeply bodies($c{C}, 1, 1), [], 'unreachable: nothing on node 1 yet';
drain($c{B});
node_stop(1, 'QUIT');
delete @c{qw(C D)};
node_start(1);
my $c2 = client(1, ws => { mid => 5, key => 'kc2', room_id => 'live://1',
                           accepts => [1000] });
node_plug(1);
is_deeply bodies($c2, 5, 15), [map { "1000:$_" } @u],
    'unreachable: retried and delivered once the node is back';
ok metric_sum(job_metrics(), 'goim_job_retries_total') > 0,
    'unreachable: the job counted retries';

# --- 5. Kafka down and up ----------------------------------------------

kafka_down();
my $t0 = time;
my ($st, $j, $raw) = node_api(0, POST =>
    '/goim/push/room?operation=1000&type=live&room=1', 'down', timeout => 20);
my $took = time - $t0;
ok !($st && $st == 200 && $j && $j->{code} == 0),
    'kafka down: the API does not answer success'
    or diag $raw;
like $raw // '', qr/"code":\s*-500/, 'kafka down: code -500';
like $j ? $j->{message} // '' : '', qr/kafka/i,
    'kafka down: the message names Kafka';
ok $took < 12, sprintf 'kafka down: answered within the timeout (%.1f s)',
    $took;
kafka_up();
my $ok = 0;
$deadline = time + 30;
until ($ok || time > $deadline) {
    $ok = push_api(1, '/goim/push/room?operation=1000&type=live&room=1',
                   'up') eq '1';
    sleep 0.5 unless $ok;
}
ok $ok, 'kafka up: pushes are accepted again';
# at least once: when the outage cut the job off before its offset commit
# reached Kafka, section 4's messages come again after it rejoins
my @got = grep { $_ ne '1000:down' && !/^1000:u\d$/ }
          @{ bodies($c{B}, 7, 10) };
ok scalar(grep { $_ eq '1000:up' } @got), 'kafka up: and delivered'
    or diag explain \@got;

# --- 6. the job killed in the middle of 10,000 room messages -------------

my $N = 10_000;
my %r = (
    E => client(0, ws  => { mid => 7, key => 'ke', room_id => 'big://1',
                            accepts => [1000] }),
    F => client(1, tcp => { mid => 8, key => 'kf', room_id => 'big://1',
                            accepts => [1000] }),
);
# 20 slices of 500, one goim-produce each: production goes on for seconds,
# so the kill falls in the middle of the stream
my $producer = fork // die "fork: $!\n";
if ($producer == 0) {
    open STDOUT, '>', '/dev/null';
    for (my $start = 1; $start <= $N; $start += 500) {
        system($Produce, '-b', kafka_bootstrap(), '-n', 500, '--start',
               $start, '--type', 'room', '--room', 'big://1', '--op', 1000,
               '--body', 's') == 0 or POSIX::_exit(1);
        sleep 0.1;
    }
    POSIX::_exit(0);
}
my (%seen, %dups, %count);
my $killed = 0;
my $restarted = 0;
$deadline = time + 120;
while (time < $deadline) {
    my $done = 1;
    for my $k (sort keys %r) {
        for my $p ($r{$k}->read_pushes(500, 0.05)) {
            next unless $p->{body} =~ /^s(\d+)$/;
            $count{$k}++;
            $dups{$k}++ if $seen{$k}{$1}++;
        }
        $done = 0 if keys %{ $seen{$k} // {} } < $N;
    }
    last if $done;
    if (!$killed && keys %{ $seen{E} // {} } >= 1500) {
        job_stop('KILL');
        $killed = time;
    }
    if ($killed && !$restarted && time - $killed > 0.5) {
        job_start();
        $restarted = 1;
    }
}
waitpid $producer, 0;
is $?, 0, 'kill -9: all 10,000 messages were produced';
ok $killed && $restarted, 'kill -9: the job was killed mid-stream and '
                          . 'started again';
for my $k (sort keys %r) {
    my $missing = grep { !$seen{$k}{$_} } 1 .. $N;
    is $missing, 0, "kill -9: $r{$k}{name} got every message at least once";
    note sprintf '%s: %d received, %d distinct, %d duplicates', $k,
        $count{$k} // 0, scalar keys %{ $seen{$k} // {} }, $dups{$k} // 0;
}

# --- 7. the logs --------------------------------------------------------

$_->close for values %c, values %r, $c2;
my @bad = cluster_down();
is_deeply \@bad, [], 'no alert, crit, crash or sanitizer report in any log';

done_testing;
