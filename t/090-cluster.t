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
#   7. no alert, crash or sanitizer report in any log;
#   8. a second cluster (goim_online_interval 10 s, two workers a node):
#      redis-server restarted empty under load, and (9.) down for 10 s
#      then back empty: every push answered code 0 reaches every target,
#      others answer a redis: error, the registry records are back at
#      once, and pushes are answered 0 again within a bound.
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
                   job_log cluster redis_restart);
use GoimRedis qw(rcli);
use IO::Select;

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

# --- 8, 9. redis-server restarted empty under load ------------------------
#
# 120 clients on node 1 (comet-b), WebSocket and TCP, 40 pairs of them
# sharing a mid, all in one room; three publishers send sequenced pushes
# through node 0 (comet-a) at 50/s each (room, mids, keys: three targets
# a push) while redis-server is restarted with nothing in it.  The online
# interval is the default 10 s: the registry records must not wait for
# it.  Every client stays connected throughout, so every target of a
# push answered code 0 is online and must get it.

use constant { NC => 120, RATE => 50 };

$cl = cluster_up(nodes => 2, workers => 2, online_interval => '10s');
@node = @{ $cl->{nodes} };
my $up_at = time;

my (@rc, %rsel, @rgot);
my $rsel = IO::Select->new;

# Reads what the clients have for $secs (at least one pass).
sub pump {
    my ($secs) = @_;
    my $until = time + $secs;
    do {
        for my $fh ($rsel->can_read(0.05)) {
            my $i = $rsel{ fileno $fh };
            $rgot[$i]{ $_->{body} }++ for $rc[$i]->read_pushes(1_000_000, 0);
        }
    } while (time < $until);
}

# One publisher: pushes of $kind ('r' room, 'm' mids, 'k' keys) through
# node 0 for $secs at RATE a second; a line per push into $file:
# seq, sent at, HTTP status, code, message, targets.
sub publisher {
    my ($kind, $label, $secs, $file) = @_;
    my $pid = fork // die "fork: $!\n";
    return $pid if $pid;
    open my $out, '>', $file or POSIX::_exit(1);
    $out->autoflush(1);
    my $t0 = time;
    for (my $seq = 1; time - $t0 < $secs; $seq++) {
        my $at = $t0 + $seq / RATE;
        sleep $at - time if $at > time;
        my ($path, @t);
        if ($kind eq 'r') {
            $path = "/goim/push/room?operation=1000&type=rr&room=$label";
        } elsif ($kind eq 'm') {
            @t = map { 100 + ($seq * 7 + $_ * 29) % 80 } 0 .. 2;
            $path = '/goim/push/mids?operation=1000&'
                  . join '&', map { "mids=$_" } @t;
        } else {
            @t = map { ($seq * 11 + $_ * 37) % NC } 0 .. 2;
            $path = '/goim/push/keys?operation=1000&'
                  . join '&', map { "keys=rk$label-$_" } @t;
        }
        my $sent = time;
        my ($st, $j, $raw) = node_api(0, POST => $path, "$kind$label-$seq",
                                      timeout => 10);
        my $code = $j && defined $j->{code} ? $j->{code} : 'none';
        my $msg = $j ? $j->{message} // '' : $raw // '';
        $msg =~ s/[\t\n]/ /g;
        print $out join("\t", $seq, $sent, $st // 0, $code, $msg,
                        join ',', @t), "\n";
    }
    close $out;
    POSIX::_exit(0);
}

sub restart_block {
    my ($label, $down, $secs, $bound) = @_;
    my $name = $down ? "redis down ${down} s" : 'redis restarted';

    # the clients: index i has key rk<label>-i and mid 100 + i % 80
    @rc = ();
    @rgot = ();
    %rsel = ();
    $rsel = IO::Select->new;
    my %mid_of;
    for my $i (0 .. NC - 1) {
        my $mid = 100 + $i % 80;
        $mid_of{$i} = $mid;
        my $c = client(1, $i % 2 ? 'tcp' : 'ws',
                       { mid => $mid, key => "rk$label-$i",
                         room_id => "rr://$label", accepts => [1000] });
        push @rc, $c;
        $rsel->add($c->sock);
        $rsel{ fileno $c->sock } = $i;
    }
    my %clients_of_mid;
    push @{ $clients_of_mid{ $mid_of{$_} } }, $_ for 0 .. NC - 1;

    # node 0 learns comet-b from the registry at its online pass
    pump($up_at + 12 - time) if time < $up_at + 12;

    # the restart comes 3 s after comet-b's pass wrote its record, so
    # that pass is 7 s away: the record must come back before
    unless ($down) {
        my $rec = sub { (rcli('GET', 'comet_comet-b') // '')
                        =~ /"updated":(\d+)/ ? $1 : 0 };
        my $was = $rec->();
        my $until = time + 12;
        pump(0.1) while $rec->() == $was && time < $until;
    }

    my $dir = cluster()->{dir};
    my %pub = map { $_ => publisher($_, $label, $secs,
                                    "$dir/pub-$label-$_.txt") } qw(r m k);
    pump(3);
    my $stopped = time;
    my $back = redis_restart($down, \&pump);

    # the records are written again at the nodes' reconnect
    my %rec;
    my $deadline = $back + 15;
    while (keys %rec < 2 && time < $deadline) {
        for my $id (map { $_->{id} } @node) {
            $rec{$id} //= time - $back
                if (rcli('EXISTS', "comet_$id") // '') eq '1';
        }
        pump(0.05);
    }
    my $rec_bound = $down ? 6 : 2.5;
    for my $id (sort keys %rec, grep { !exists $rec{$_} }
                                map { $_->{id} } @node) {
        ok defined $rec{$id} && $rec{$id} < $rec_bound,
            sprintf "$name: comet_$id back %.2f s after Redis (bound %s s)",
                    $rec{$id} // -1, $rec_bound;
    }

    $deadline = time + $secs + 15;
    while (grep { $_ } values %pub) {
        for my $k (keys %pub) {
            next unless $pub{$k};
            if (waitpid($pub{$k}, POSIX::WNOHANG()) > 0) {
                is $?, 0, "$name: publisher $k done";
                $pub{$k} = 0;
            }
        }
        last if time > $deadline;
        pump(0.1);
    }

    # what each client must get: every push answered 0, to its targets
    my (%want, %answers, %first_ok);
    for my $k (qw(r m k)) {
        open my $fh, '<', "$dir/pub-$label-$k.txt" or die "$k: $!\n";
        while (<$fh>) {
            chomp;
            my ($seq, $sent, $st, $code, $msg, $t) = split /\t/, $_, 6;
            my $body = "$k$label-$seq";
            if ($st == 200 && $code eq '0') {
                $answers{$k}{ok}++;
                $first_ok{$k} //= $sent - $back if $sent >= $back;
                my @to = $k eq 'r' ? (0 .. NC - 1)
                       : $k eq 'm' ? (map { @{ $clients_of_mid{$_} } }
                                      split /,/, $t)
                       : split /,/, $t;
                $want{$_}{$body} = 1 for @to;
            } elsif ($st == 200 && $code eq '-500' && $msg =~ /^redis: /) {
                $answers{$k}{redis}{ $msg =~ /rebuilt/ ? 'rebuilding'
                                                       : $msg }++;
            } else {
                $answers{$k}{bad}{"$st $code $msg"}++;
            }
        }
    }

    # every target got it at least once
    my $missing = sub {
        my %m;
        for my $i (keys %want) {
            for my $b (keys %{ $want{$i} }) {
                push @{ $m{ substr $b, 0, 1 } }, "$b\@$i"
                    unless $rgot[$i]{$b};
            }
        }
        return \%m;
    };
    $deadline = time + 20;
    pump(0.5) while %{ $missing->() } && time < $deadline;
    my $m = $missing->();
    my %what = (r => 'room', m => 'mids', k => 'keys');
    for my $k (qw(r m k)) {
        my @miss = @{ $m->{$k} // [] };
        is scalar @miss, 0, "$name: every $what{$k} push answered 0 "
            . "reached every target ($answers{$k}{ok} pushes)"
            or diag "missing: @miss[0 .. ($#miss < 9 ? $#miss : 9)]";
        ok !$answers{$k}{bad}, "$name: $what{$k}: the other answers "
            . 'are redis: errors'
            or diag explain $answers{$k}{bad};
        note "$name: $what{$k}: refused: "
            . join ', ', map { "$_ x$answers{$k}{redis}{$_}" }
                         sort keys %{ $answers{$k}{redis} // {} };
    }
    for my $k (qw(m k)) {
        ok defined $first_ok{$k} && $first_ok{$k} < $bound,
            sprintf "$name: $what{$k} answered 0 again %.1f s after Redis "
                    . "was back (bound %s s)", $first_ok{$k} // -1, $bound;
    }
    my $dups = 0;
    for my $i (0 .. NC - 1) {
        $dups += $_ - 1 for grep { $_ > 1 } values %{ $rgot[$i] // {} };
    }
    note "$name: $dups duplicate deliveries; Redis stopped "
        . sprintf('%.1f s after the start, back after %.1f s', $stopped
                  - $up_at, $back - $stopped);
    $_->close for @rc;
}

restart_block('a', 0, 15, 5);
restart_block('b', 10, 22, 8);

@bad = cluster_down();
is_deeply \@bad, [], 'restart: no alert, crit, crash or sanitizer report';

done_testing;
