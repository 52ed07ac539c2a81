# A full inbox in the cluster (docs/PROTOCOL.md 1.15, "A full inbox"):
# two comets of two workers with goim_history and goim_inbox_size 16,
# redis-server, kafka-mock and the real job on loopback.  One worker of
# comet A is stopped while 20 room messages go through the job: its
# inbox takes 16, the comet answers the job 503 for the rest, and once
# the worker runs again the job's retries bring it the 4 it missed.
# Every client, on either worker of either comet, gets the 20 messages
# once each, in order, at their Kafka offsets + 1; comet B gets them
# while the worker is stopped.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use GoimClient;
use GoimRedis qw(have_redis);
use GoimKafka qw(have_kafka kafka_dump);
use GoimCluster qw(cluster_up cluster_down node_api node_status job_log);
use GoimWorkers qw(owner_pid proc_state);

my $Repo = "$FindBin::Bin/..";
my $Module = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
my $Job = $ENV{TEST_GOIM_JOB} || "$Repo/build/goim-job";

plan skip_all => 'the module and goim-job must be built'
    unless -f $Module && -x $Job;
plan skip_all => 'redis-server, kafka-mock and kafka-probe are needed'
    unless have_redis() && have_kafka();

my $Room = 'full';

# a stopped worker holds the job's connection to it until the request's
# timeout: a short one, and short backoffs
my $cl = cluster_up(nodes => 2, workers => 2,
                    kafka_topics => ['goim-push-topic:1'],
                    main_extra => "goim_history size=64 ttl=60s;\n"
                                  . "goim_inbox_size 16;\n",
                    job_conf => ['request_timeout 1s',
                                 'retry_backoff 50ms 500ms']);

sub client {
    my ($i) = @_;
    my $n = $cl->{nodes}[$i];
    my $c = GoimClient->new(transport => 'tcp', timeout => 5,
                            port => $n->{tcp});
    my $err = $c->connect;
    die "connect node $i: $err\n" if $err;
    $c->{auth} = $c->auth({ key => "k" . int(rand 1e9),
                            room_id => "live://$Room", accepts => [1000] })
        or die "auth on node $i: " . ($c->error // '?') . "\n";
    # GoimWorkers finds the master by the pid file under this root
    local $ENV{TEST_NGINX_SERVROOT} = $n->{dir};
    $c->{pid} = owner_pid($c) // die "no worker holds the connection\n";
    return $c;
}

# the room's pushes as [position, body], $n of them or what came in time
sub pushes {
    my ($c, $n, $timeout) = @_;
    my @got;
    my $deadline = time + $timeout;
    while (@got < $n) {
        my $p = $c->wait_op(sub { $_[0]{op} == 1000 }, $deadline - time)
            or last;
        push @got, [$p->{seq} & 0xffffffff, $p->{body}];
    }
    return \@got;
}

sub metric {
    my ($i, $name) = @_;
    return node_status($i) =~ /^$name (\d+)$/m ? $1 : undef;
}

# one client on each worker of comet A, one on comet B
my (%on, $tries);
while (keys %on < 2 && $tries++ < 40) {
    my $c = client(0);
    if ($on{ $c->{pid} }) {
        $c->close;
        next;
    }
    $on{ $c->{pid} } = $c;
}
is scalar(keys %on), 2, 'clients on both workers of comet A';
my ($victim, $other) = values %on;
my $b = client(1);

my $w = $victim->{pid};
my $stopped = kill 'STOP', $w;
my (@accepted, $early);
my $ok = eval {
    my $t0 = time;
    sleep 0.05 until (proc_state($w) // '') eq 'T' || time - $t0 > 2;
    is proc_state($w), 'T', "comet A's worker $w stopped";

    # through comet B's API: none of its workers is stopped
    for my $k (1 .. 20) {
        my ($st, $j) = node_api(1, POST => '/goim/push/room?operation=1000'
                                . "&type=live&room=$Room", "r$k");
        push @accepted, "r$k" if ($st // 0) == 200 && $j && $j->{code} == 0;
    }
    is scalar(@accepted), 20, 'the API accepted the 20 messages';

    # comet B delivers them all meanwhile; comet A's running worker at
    # least the 16 the stopped one's inbox took (a batch stops at its
    # first refused item: later items wait for the job's retry).  The
    # job's request to comet A may be accepted by the stopped worker
    # and wait out request_timeout before the retry reaches the running
    # one, once per batch: so wait for the 16, then briefly for more.
    my $got = pushes($b, 20, 20);
    is_deeply [map { $_->[1] } @$got], [map { "r$_" } 1 .. 20],
        "comet B's worker $b->{pid}: the 20 while $w is stopped";
    $t0 = time;
    $early = pushes($other, 16, 30);
    push @$early, @{ pushes($other, 20 - @$early, 1) };
    ok @$early >= 16, "comet A's worker $other->{pid}: "
       . scalar(@$early) . " of them while $w is stopped, in "
       . sprintf('%.1f s', time - $t0);

    # the job meets the full inbox (or the stopped worker) and retries
    my $log = '';
    $t0 = time;
    until ($log =~ /comet comet-a down/ || time - $t0 > 10) {
        sleep 0.2;
        $log = job_log();
    }
    like $log, qr/comet comet-a down: [^\n]*; retrying/,
        'the job retries comet A';
    1;
};
my $err = $@;
kill 'CONT', $w if $stopped;
die $err unless $ok;

my $offsets = { map { $_->{msg} => $_->{offset} + 1 }
                grep { ($_->{room} // '') eq "live://$Room" }
                kafka_dump('goim-push-topic') };
my @want = map { [$offsets->{"r$_"}, "r$_"] } 1 .. 20;

my $got = pushes($victim, 20, 20);
is_deeply $got, \@want,
    "worker $w: the 16 of its inbox, then the 4 the job sent again, "
    . 'in order, at their positions'
    or diag explain $got;
$got = [@$early, @{ pushes($other, 20 - @$early, 20) }];
is_deeply $got, \@want, "worker $other->{pid}: the 20 once each, in order, "
    . 'at their positions' or diag explain $got;
for my $c ($victim, $other, $b) {
    my $more = pushes($c, 1, 1);
    is_deeply $more, [], "worker $c->{pid}: nothing twice";
}
ok +(metric(0, 'goim_history_resent_total') // 0) >= 1,
    "comet A sent again what its stopped worker missed "
    . '(goim_history_resent_total)';
is metric(1, 'goim_history_resent_total'), 0, 'comet B had no need';

$_->close for $victim, $other, $b;

my @bad = cluster_down();
is_deeply \@bad, [], 'no alert, crit, crash or sanitizer report'
    or diag explain \@bad;
done_testing();
