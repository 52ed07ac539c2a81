package GoimCluster;

# The whole cluster on loopback for t/09*.t: redis-server, kafka-mock,
# N nginx nodes (conf/goim-cluster.conf, each with its own prefix
# directory and free ports) and the job (build/goim-job with a config
# written here). Every process is started by this module and stopped by
# it (cluster_down, or END). Nodes and the job can be stopped, killed and
# started again on the same ports.
#
#   my $cl = cluster_up(nodes => 2);
#   $cl->{nodes}[0]{ws}, {tcp}, {api}, {internal}, {id}
#   node_stop($i, 'QUIT'|'TERM'|'KILL'); node_start($i);
#   job_stop('TERM'|'KILL'); job_start();
#   job_start('job2'); job_stop('KILL', undef, 'job2'): more goim-jobs in
#   the same consumer group
#   node_api($i, POST => '/goim/push/room?...', $body) -> ($status, $json)
#   redis_restart($down_secs [, $wait]) -> redis-server stopped and
#   started again empty on its port, after $down_secs
#   cluster_down() -> list of bad lines found in the logs (alert, crit,
#   emerg, signals, sanitizer reports)

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter 'import';
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

use GoimClient qw(http_json);
use GoimRedis qw(redis_start redis_stop rcli);
use GoimKafka qw(kafka_start kafka_stop);

our @EXPORT_OK = qw(cluster_up cluster_down node_start node_stop node_api
                    node_plug node_unplug redis_restart
                    node_status job_start job_stop job_alive job_log
                    job_metrics cluster free_port log_text);

our $Repo = abs_path(dirname(abs_path(__FILE__)) . '/../..');
our $NginxBin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
our $StreamModule = $ENV{TEST_NGINX_STREAM_MODULE}
                    || '/usr/lib/nginx/modules/ngx_stream_module.so';
our $GoimModule = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
our $JobBin = $ENV{TEST_GOIM_JOB} || "$Repo/build/goim-job";
our $Secret = 'cluster-test-secret-0123456789abcdef';

my $Cluster;
my $Owner = $$;
my %Used;

sub cluster { return $Cluster }

# t/servroot_[asan_]cluster_<test file>_<pid>: test files, and two runs of
# one, never share it (prove -j).  What runs of this file left whose
# process is gone is removed first; this run's goes at exit if it passed.
my $Dir;

sub _dir {
    return $Dir if $Dir;
    (my $name = basename($0)) =~ s/\.t$//;
    $name =~ s{[^\w.-]}{_}g;
    my $base = "$Repo/t/servroot_" . ($ENV{TEST_NGINX_ASAN} ? 'asan_' : '')
               . "cluster_$name";
    for my $old (glob "${base}_[0-9]*") {
        my ($pid) = $old =~ /_(\d+)$/;
        remove_tree($old) unless $pid && kill 0, $pid;
    }
    return $Dir = "${base}_$Owner";
}

# A free loopback port below the ephemeral range, never handed out twice.
sub free_port {
    for (1 .. 200) {
        my $port = 10000 + int rand 22000;
        next if $Used{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => $port, Proto => 'tcp', Listen => 1, ReuseAddr => 1)
            or next;
        close $s;
        $Used{$port} = 1;
        return $port;
    }
    die "no free port\n";
}

sub _wait_port {
    my ($port, $timeout) = @_;
    my $deadline = time + $timeout;
    until (IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                 Proto => 'tcp')) {
        return 0 if time > $deadline;
        sleep 0.05;
    }
    return 1;
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return scalar <$fh>;
}

sub _spit {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!\n";
    print $fh $text;
    close $fh or die "$file: $!\n";
}

# cluster_up(nodes => 2, workers => 1, online_interval => '1s',
#            job => 1, job_conf => ['name value', ...],
#            kafka_topics => ['goim-push-topic:1']): everything started
# and the job consuming; dies (after stopping what it started) on failure.
sub cluster_up {
    my (%o) = @_;
    die "cluster already up\n" if $Cluster;
    my $dir = _dir();
    remove_tree($dir);
    make_path($dir);

    $Cluster = { dir => $dir, nodes => [], opts => \%o };

    my $ok = eval {
        $Cluster->{redis_port} = free_port();
        redis_start($Cluster->{redis_port});
        $Cluster->{kafka} = kafka_start($o{kafka_topics}
                                        ? (topics => $o{kafka_topics}) : ());

        for my $i (0 .. ($o{nodes} // 2) - 1) {
            my $n = {
                i => $i, id => 'comet-' . chr(ord('a') + $i),
                dir => "$dir/node$i",
                tcp => free_port(), ws => free_port(), api => free_port(),
                internal => free_port(),
                proxy => $o{proxy} ? free_port() : undef,
            };
            push @{ $Cluster->{nodes} }, $n;
            node_plug($i) if $n->{proxy};
            node_start($i);
        }

        $Cluster->{job} = { dir => "$dir/job", status => free_port() };
        job_start() if $o{job} // 1;
        1;
    };
    unless ($ok) {
        my $err = $@;
        cluster_down();
        die $err;
    }
    return $Cluster;
}

sub _render_node {
    my ($n) = @_;
    my %o = %{ $Cluster->{opts} };
    my %v = (
        STREAM_MODULE => $StreamModule, GOIM_MODULE => $GoimModule,
        ERROR_LOG => 'logs/error.log', LOG_LEVEL => $o{log_level} // 'info',
        WORKERS => $o{workers} // 1, SERVER_ID => $n->{id},
        LISTEN => '127.0.0.1', TCP_PORT => $n->{tcp}, WS_PORT => $n->{ws},
        API_PORT => $n->{api}, INTERNAL_PORT => $n->{internal},
        ONLINE_INTERVAL => $o{online_interval} // '1s',
        REDIS => "127.0.0.1:$Cluster->{redis_port}",
        KAFKA => $Cluster->{kafka}, SECRET => $Secret,
    );
    $v{INTERNAL_URL_PORT} = $n->{proxy} // $n->{internal};
    my $conf = _slurp("$Repo/conf/goim-cluster.conf");
    $conf =~ s/\@([A-Z][A-Z_]*)\@/
        defined $v{$1} ? $v{$1} : die "no value for \@$1\@\n"/ge;
    # main-context directives of the test (cluster_up(main_extra => ...))
    $conf =~ s/^(goim_redis .*\n)/$1$o{main_extra}/m if $o{main_extra};
    return $conf;
}

# Starts node $i (again) on its ports; waits until its API and internal
# ports accept and it registered itself in Redis.
sub node_start {
    my ($i) = @_;
    my $n = $Cluster->{nodes}[$i] or die "no node $i\n";
    make_path("$n->{dir}/conf", "$n->{dir}/logs", "$n->{dir}/temp");
    _spit("$n->{dir}/conf/nginx.conf", _render_node($n));
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$n->{dir}/logs/stderr.log";
        open STDERR, '>&', \*STDOUT;
        { exec $NginxBin, '-p', "$n->{dir}/", '-c', 'conf/nginx.conf' }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    die "node $n->{id}: nginx failed to start:\n"
        . _slurp("$n->{dir}/logs/stderr.log")
        . _slurp("$n->{dir}/logs/error.log") if $?;
    for my $port (@$n{qw(api internal tcp ws)}) {
        _wait_port($port, 10) or die "node $n->{id}: port $port closed\n";
    }
    my $deadline = time + 10;
    until ((rcli('EXISTS', "comet_$n->{id}") // '') eq '1') {
        die "node $n->{id}: not in the Redis registry\n" if time > $deadline;
        sleep 0.05;
    }
    $n->{pid} = _slurp("$n->{dir}/logs/nginx.pid") =~ /(\d+)/ ? $1 : undef;
    $n->{up} = 1;
    return $n;
}

# Stops node $i with $sig (QUIT: graceful, TERM: fast, KILL: the master
# and its workers, as a crash); waits until its processes are gone.
sub node_stop {
    my ($i, $sig) = @_;
    my $n = $Cluster->{nodes}[$i] or die "no node $i\n";
    return unless $n->{up};
    $n->{up} = 0;
    my $pid = $n->{pid} or return;
    my @pids = ($pid, _children($pid));
    kill $sig // 'QUIT', $sig && $sig eq 'KILL' ? @pids : $pid;
    my $deadline = time + 15;
    while (grep { kill 0, $_ } @pids) {
        if (time > $deadline) {
            kill 'KILL', @pids;
            last;
        }
        sleep 0.05;
    }
    unlink "$n->{dir}/logs/nginx.pid" if $sig && $sig eq 'KILL';
}

sub _children {
    my ($ppid) = @_;
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $s = _slurp($stat) or next;
        push @kids, $1 if $s =~ /^(\d+) \(.*\) \S+ (\d+)/s && $2 == $ppid;
    }
    return @kids;
}

# With cluster_up(proxy => 1) each node's goim_internal_url names a TCP
# forwarder to its internal port, run here: node_unplug($i) stops it (the
# job's connections break and new ones are refused while the node and its
# clients stay up), node_plug($i) starts it again on the same port.
sub node_plug {
    my ($i) = @_;
    my $n = $Cluster->{nodes}[$i] or die "no node $i\n";
    return if $n->{proxy_pid};
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $n->{proxy}, Proto => 'tcp', Listen => 64,
        ReuseAddr => 1) or die "proxy port $n->{proxy}: $!\n";
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        setpgrp(0, 0);
        _forward($listen, $n->{internal});
        POSIX::_exit(0);
    }
    close $listen;
    $n->{proxy_pid} = $pid;
}

sub node_unplug {
    my ($i) = @_;
    my $n = $Cluster->{nodes}[$i] or die "no node $i\n";
    my $pid = delete $n->{proxy_pid} or return;
    kill 'KILL', -$pid;
    waitpid $pid, 0;
}

# accept loop of the forwarder: one child per connection, pumping bytes
# both ways until either side closes
sub _forward {
    my ($listen, $port) = @_;
    $SIG{CHLD} = 'IGNORE';
    while (1) {
        my $in = $listen->accept or next;
        my $pid = fork;
        if (defined $pid && $pid == 0) {
            close $listen;
            my $out = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                PeerPort => $port, Proto => 'tcp') or POSIX::_exit(0);
            my $sel = IO::Select->new($in, $out);
            while (my @r = $sel->can_read) {
                for my $s (@r) {
                    my $to = $s == $in ? $out : $in;
                    my $n = sysread($s, my $buf, 65536);
                    POSIX::_exit(0) unless $n;
                    my $off = 0;
                    while ($off < $n) {
                        my $w = syswrite($to, $buf, $n - $off, $off);
                        POSIX::_exit(0) unless $w;
                        $off += $w;
                    }
                }
            }
            POSIX::_exit(0);
        }
        close $in;
    }
}

sub node_api {
    my ($i, $method, $path, $body, @opt) = @_;
    my $n = $Cluster->{nodes}[$i] or die "no node $i\n";
    return http_json($method => '127.0.0.1', $n->{api}, $path, $body, @opt);
}

# goim_status text of node $i
sub node_status {
    my ($i) = @_;
    my (undef, undef, $raw) = node_api($_[0], GET => '/status');
    return $raw // '';
}

# Stops redis-server, waits $down seconds, starts it again on the same
# port with nothing in it (no RDB or AOF is written or loaded; a dump
# left in its directory is removed first). Returns the time it answers.
sub redis_restart {
    my ($down, $wait) = @_;
    my $dir = (split /\n/, rcli('CONFIG', 'GET', 'dir') // '')[1];
    redis_stop();
    unlink "$dir/dump.rdb" if $dir;
    # $wait->($secs) instead of sleeping: the caller's clients go on reading
    ($wait // sub { sleep $_[0] })->($down) if $down;
    redis_start($Cluster->{redis_port});
    return time;
}

# --- the job -------------------------------------------------------------

# The job $name: 'job' (the default, cluster_up's) or another goim-job in
# the same consumer group (scale-out), each with its own directory, log
# and status port.
sub _job {
    my ($name) = @_;
    return $Cluster->{job} if !defined $name || $name eq 'job';
    return $Cluster->{jobs}{$name} //= {
        dir => "$Cluster->{dir}/$name", status => free_port(),
    };
}

sub _job_conf {
    my ($j) = @_;
    my @lines = (
        "kafka_brokers $Cluster->{kafka}",
        'kafka_option session.timeout.ms 6000',
        'kafka_option heartbeat.interval.ms 500',
        'kafka_option reconnect.backoff.max.ms 200',
        # kafka-mock holds an empty fetch for the whole wait
        'kafka_option fetch.wait.max.ms 10',
        "redis 127.0.0.1:$Cluster->{redis_port}",
        'registry_refresh 500ms',
        "internal_secret $Secret",
        "status_listen 127.0.0.1:$j->{status}",
        @{ $Cluster->{opts}{job_conf} // [] },
    );
    return join '', map { "$_;\n" } @lines;
}

# Starts the job $name (default 'job'); waits until it says it consumes
# (its "ready" log line).
sub job_start {
    my ($name) = @_;
    my $j = _job($name);
    make_path($j->{dir});
    _spit("$j->{dir}/goim-job.conf", _job_conf($j));
    my $log = "$j->{dir}/job.log";
    my $from = -s $log // 0;
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        { exec $JobBin, '-c', "$j->{dir}/goim-job.conf", '-l', 'info' }
        POSIX::_exit(127);
    }
    $j->{pid} = $pid;
    my $deadline = time + 20;
    while (1) {
        my $text = substr(_slurp($log), $from);
        last if $text =~ /ready: assigned \d+ partitions/;
        die "goim-job exited:\n$text" if waitpid($pid, POSIX::WNOHANG()) > 0;
        die "goim-job not ready after 20 s:\n$text" if time > $deadline;
        sleep 0.1;
    }
    return $pid;
}

sub job_alive { my $j = _job($_[0]); return $j->{pid} && kill 0, $j->{pid} }

# Stops the job $name (default 'job') with $sig; returns its wait status.
sub job_stop {
    my ($sig, $timeout, $name) = @_;
    my $j = _job($name);
    my $pid = delete $j->{pid} or return undef;
    kill $sig // 'TERM', $pid;
    my $deadline = time + ($timeout // 20);
    while (waitpid($pid, POSIX::WNOHANG()) == 0) {
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            return -1;
        }
        sleep 0.05;
    }
    return $?;
}

sub job_log { return _slurp(_job($_[0])->{dir} . '/job.log') }

sub job_metrics {
    my (undef, undef, $raw) = http_json(GET => '127.0.0.1',
        _job($_[0])->{status}, '/metrics');
    return $raw // '';
}

# --- logs and shutdown -----------------------------------------------------

sub log_text {
    my ($i) = @_;
    my $n = $Cluster->{nodes}[$i];
    return _slurp("$n->{dir}/logs/error.log")
         . _slurp("$n->{dir}/logs/stderr.log");
}

my $Bad = qr/\[(?:alert|crit|emerg)\]|exited on signal|ERROR: (?:Address|Undefined)Sanitizer|runtime error:/;

# Stops everything; returns the bad lines of every node's logs and the
# job's log.
sub cluster_down {
    return () unless $Cluster;
    my @bad;
    job_stop('TERM') if $Cluster->{job};
    job_stop('TERM', undef, $_) for sort keys %{ $Cluster->{jobs} // {} };
    for my $i (0 .. $#{ $Cluster->{nodes} }) {
        node_unplug($i);
        node_stop($i, 'QUIT');
        push @bad, map { "$Cluster->{nodes}[$i]{id}: $_" }
                   grep { /$Bad/ } split /\n/, log_text($i);
    }
    push @bad, map { "job: $_" } grep { /$Bad/ } split /\n/, job_log()
        if $Cluster->{job};
    for my $name (sort keys %{ $Cluster->{jobs} // {} }) {
        push @bad, map { "$name: $_" } grep { /$Bad/ } split /\n/,
                                          job_log($name);
    }
    kafka_stop();
    redis_stop();
    undef $Cluster;
    return @bad;
}

END {
    # before Test::Builder's END: $? is the test's own exit status
    my $passed = $? == 0
                 && (!Test::More->can('builder')
                     || Test::More->builder->is_passing);
    local $?;
    remove_tree($Dir) if $$ == $Owner && $Dir && $passed && !$Cluster;
    if ($$ == $Owner && $Cluster) {
        for my $n (@{ $Cluster->{nodes} }) {
            kill 'KILL', -$n->{proxy_pid} if $n->{proxy_pid};
            next unless $n->{up} && $n->{pid};
            kill 'KILL', $n->{pid}, _children($n->{pid});
        }
        kill 'KILL', $_->{pid}
            for grep { $_ && $_->{pid} }
                $Cluster->{job}, values %{ $Cluster->{jobs} // {} };
    }
}

1;
