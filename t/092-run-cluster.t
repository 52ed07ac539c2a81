# conf/run-cluster.sh (`make run-cluster`) keeps the dev cluster up: a
# part that exits is started again (here goim-job and redis-server,
# killed with SIGKILL), the cluster delivers again, and SIGTERM stops
# everything it started, leaving nothing running. Free loopback ports
# (GOIM_PORT_BASE, GOIM_REDIS_PORT), a runtime directory under t/.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use GoimClient qw(:ops http_request);
use IO::Socket::INET;
use File::Path qw(make_path remove_tree);
use POSIX ();
use Time::HiRes qw(time sleep);

my $repo = "$FindBin::Bin/..";
for my $f (qw(build/ngx_goim_module.so build/goim-job build/kafka-mock)) {
    plan skip_all => "$f is not built" unless -e "$repo/$f";
}
plan skip_all => 'redis-server is needed'
    unless grep { -x "$_/redis-server" } split /:/, $ENV{PATH};

# this run's directory; what runs whose process is gone left is removed,
# this one's too at exit when it passed
my $root = "$FindBin::Bin/servroot_092-run-cluster_$$";
for my $old (glob "$FindBin::Bin/servroot_092-run-cluster*") {
    my ($pid) = $old =~ /_(\d+)$/;
    remove_tree($old) unless $pid && kill 0, $pid;
}
make_path($root);

sub port_free {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $port, Proto => 'tcp', Listen => 1, ReuseAddr => 1)
        or return 0;
    close $s;
    return 1;
}

# GOIM_PORT_BASE and the redis port: every port the script uses is free
my ($base, $redis);
for (1 .. 100) {
    my $b = 20000 + 10 * int rand 1000;
    my @p = map { $b + $_ } 1, 2, 11, 12, 19, 50, 101, 102, 111, 112;
    next if grep { !port_free($_) } @p;
    ($base, $redis) = ($b, $b + 50);
    last;
}
die "no free ports\n" unless $base;

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return '';
    local $/;
    return scalar <$fh>;
}

sub wait_until {
    my ($code, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $v = $code->();
        return $v if $v || time >= $deadline;
        sleep 0.1;
    }
}

# {name => [pids]} of the live children of $ppid
sub children {
    my ($ppid) = @_;
    my %c;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $t = slurp($stat);
        next unless $t =~ /^(\d+) \((.*)\) (\S) (\d+) /;
        push @{ $c{$2} }, $1 if $4 == $ppid && $3 ne 'Z';
    }
    return \%c;
}

sub descendants {
    my ($pid) = @_;
    my $c = children($pid);
    my @d = map { @$_ } values %$c;
    return (@d, map { descendants($_) } @d);
}

my $owner = $$;
my $script = fork // die "fork: $!\n";
if ($script == 0) {
    POSIX::setsid();
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', "$root/stdout.log";
    open STDERR, '>', "$root/stderr.log";
    $ENV{GOIM_RUN_DIR} = "$root/run";
    $ENV{GOIM_PORT_BASE} = $base;
    $ENV{GOIM_REDIS_PORT} = $redis;
    $ENV{GOIM_LOG_LEVEL} = 'warn';
    { exec 'bash', "$repo/conf/run-cluster.sh" }
    POSIX::_exit(127);
}

END {
    my $passed = $? == 0 && Test::More->builder->is_passing;
    local $?;
    # the script's process group, should a test have died on the way
    kill 'KILL', -$script if $script && kill 0, $script;
    remove_tree($root) if $passed && $$ == $owner;
}

local $SIG{ALRM} = sub { die "timed out after 90 s\n" };
alarm 90;

ok wait_until(sub { slurp("$root/stdout.log") =~ /goim cluster on/ }, 25),
   'the cluster started' or diag slurp("$root/stderr.log");

# a client on comet-b gets a room push made through comet-a's API
my $client;
my $delivered = sub {
    my ($body, $timeout) = @_;
    return wait_until(sub {
        unless ($client && !$client->is_closed) {
            $client = GoimClient->new(transport => 'ws', timeout => 2,
                                      port => $base + 102);
            undef $client if $client->connect
                || !$client->auth({ mid => 1, key => 'rc',
                                    room_id => 'live://rc',
                                    accepts => [1000] });
            return 0 unless $client;
        }
        my ($st, $raw) = http_request(POST => '127.0.0.1', $base + 11,
            '/goim/push/room?operation=1000&type=live&room=rc', $body,
            timeout => 3);
        return 0 unless $st && $st == 200 && $raw =~ /"code":0/;
        my @p = $client->read_pushes(10, 0.5);
        return scalar grep { $_->{body} eq $body } @p;
    }, $timeout // 15);
};
ok $delivered->('one'), 'a push through comet-a reached comet-b';

my $c = children($script);
my ($job) = @{ $c->{'goim-job'} // [] };
my ($rds) = @{ $c->{'redis-server'} // [] };
ok $job && $rds, 'goim-job and redis-server run under the script';

kill 'KILL', $job;
my $job2 = wait_until(sub {
    my ($p) = @{ children($script)->{'goim-job'} // [] };
    $p && $p != $job ? $p : 0;
}, 10);
ok $job2, 'the killed goim-job was started again';
like slurp("$root/stderr.log"),
     qr/goim-job \(pid $job\) exited with status 137 .*starting it again/,
     'its exit was logged';
# the new job gets the partitions once the group has given up on the
# killed one: conf/goim-job.conf's session.timeout.ms (10 s) and the
# rebalance, 9 s here when idle and over 15 s under make test's load
ok $delivered->('two', 30), 'pushes are delivered again';

kill 'KILL', $rds;
my $rds2 = wait_until(sub {
    my ($p) = @{ children($script)->{'redis-server'} // [] };
    $p && $p != $rds ? $p : 0;
}, 10);
ok $rds2, 'the killed redis-server was started again';
ok wait_until(sub {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $redis, Timeout => 1) or return 0;
    print $s "PING\r\n";
    my $line = <$s> // '';
    $line =~ /^\+PONG/;
}, 10), 'it answers on its port';

my @all = ($script, descendants($script));
ok @all >= 8, scalar(@all) . ' processes: the script, its parts, the '
   . 'nginx workers';
$client->close if $client;
kill 'TERM', $script;
my $gone = wait_until(sub { waitpid($script, POSIX::WNOHANG()) == $script },
                      25);
ok $gone, 'SIGTERM stopped the script';
is $? >> 8, 0, 'with status 0';
my @left = @all[1 .. $#all];
ok wait_until(sub {
    @left = grep { kill(0, $_) && slurp("/proc/$_/stat") !~ /^\d+ \(.*\) Z / }
            @left;
    !@left;
}, 5), 'nothing it started is left running' or diag "left: @left";
ok !(grep { !port_free($_) } $base + 11, $base + 111, $redis, $base + 19),
   'its ports are free again';
undef $script unless kill 0, $script;

done_testing();
