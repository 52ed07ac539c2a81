package GoimKafka;

# A throwaway Kafka for tests: build/kafka-mock (librdkafka's mock
# cluster on random loopback ports) in a child, so its pid is known;
# brokers down and up through SIGUSR1 / SIGUSR2 (topics, messages and
# group offsets are kept); build/kafka-probe to dump what the topic
# holds, decoded as goim.PushMsg, or to produce and consume.
#
# Every wait is bounded; what this module started is killed in END.

use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use FindBin;
use IO::Select;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(have_kafka kafka_start kafka_stop kafka_bootstrap
                    kafka_down kafka_up kafka_probe kafka_dump kafka_new
                    kafka_log);

our $Build = "$FindBin::Bin/../build";
our $MockBin = "$Build/kafka-mock";
our $ProbeBin = "$Build/kafka-probe";
our $Topic = 'goim-push-topic';

my $Mock;           # {pid, bootstrap, log} of the running kafka-mock
my %Seen;           # "partition/offset" => 1, for kafka_new
my $Dir;
my $Owner = $$;

sub have_kafka { return -x $MockBin && -x $ProbeBin }

# kafka_start(brokers => 1, topics => ['goim-push-topic:4']): starts
# kafka-mock and returns the bootstrap address ("127.0.0.1:port,...");
# dies when it does not print one within 10 s.
sub kafka_start {
    my (%o) = @_;
    kafka_stop();
    $Dir //= tempdir('goim-kafka-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my @args = ('-b', $o{brokers} // 1,
                map { ('-t', $_) } @{ $o{topics} // ["$Topic:4"] });
    my $log = "$Dir/kafka-mock-" . time . ".log";
    pipe(my $r, my $w) or die "pipe: $!\n";
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        close $r;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $w;
        open STDERR, '>', $log;
        { exec $MockBin, @args }
        POSIX::_exit(127);
    }
    close $w;
    $Mock = { pid => $pid, log => $log };
    %Seen = ();

    my $line = '';
    my $sel = IO::Select->new($r);
    my $deadline = time + 10;
    while ($line !~ /\n/ && time < $deadline) {
        last unless $sel->can_read($deadline - time);
        sysread($r, my $buf, 4096) or last;
        $line .= $buf;
    }
    close $r;
    my ($bootstrap) = $line =~ /^(127\.0\.0\.1:\d+(?:,127\.0\.0\.1:\d+)*)\n/;
    unless ($bootstrap) {
        kafka_stop();
        die "kafka-mock printed no bootstrap address: '$line'\n";
    }
    $Mock->{bootstrap} = $bootstrap;
    return $bootstrap;
}

# Stops it: TERM, KILL after 5 s.
sub kafka_stop {
    my $m = $Mock or return;
    undef $Mock;
    kill 'TERM', $m->{pid};
    my $deadline = time + 5;
    while (waitpid($m->{pid}, POSIX::WNOHANG()) == 0) {
        if (time > $deadline) {
            kill 'KILL', $m->{pid};
            waitpid $m->{pid}, 0;
            last;
        }
        sleep 0.02;
    }
    return $m;
}

END { local $?; kafka_stop() if $$ == $Owner }

sub kafka_bootstrap { return $Mock && $Mock->{bootstrap} }

# kafka-mock's stderr so far (every state change is logged there).
sub kafka_log {
    my $m = $Mock or return '';
    open my $fh, '<', $m->{log} or return '';
    local $/;
    return scalar <$fh> // '';
}

sub _signal {
    my ($sig, $re) = @_;
    my $m = $Mock or die "kafka-mock is not running\n";
    my $before = () = kafka_log() =~ /$re/g;
    kill $sig, $m->{pid};
    my $deadline = time + 5;
    while (time < $deadline) {
        my $now = () = kafka_log() =~ /$re/g;
        return 1 if $now > $before;
        sleep 0.02;
    }
    die "kafka-mock did not log $re after $sig\n";
}

# All brokers down (connections closed, new ones refused) / back up on
# the same ports; both return once kafka-mock has logged it.
sub kafka_down { return _signal('USR1', qr/all brokers down/) }
sub kafka_up { return _signal('USR2', qr/all brokers up/) }

# kafka_probe($timeout_s, @args): runs build/kafka-probe @args with the
# bootstrap address of the running mock put for the word "BOOTSTRAP";
# (exit code, stdout, stderr), exit code -1 when it was killed after
# $timeout_s.
sub kafka_probe {
    my ($secs, @args) = @_;
    my $bootstrap = kafka_bootstrap() // die "kafka-mock is not running\n";
    @args = map { $_ eq 'BOOTSTRAP' ? $bootstrap : $_ } @args;
    my $err = "$Dir/probe.err";
    my $pid = open(my $fh, '-|') // die "fork: $!\n";
    if ($pid == 0) {
        open STDERR, '>', $err;
        { exec 'timeout', '-s', 'KILL', $secs, $ProbeBin, @args }
        POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    my $rc = $? >> 8;
    $rc = -1 if $rc == 137 || ($? & 127);
    open my $e, '<', $err;
    my $stderr = $e ? do { local $/; <$e> // '' } : '';
    return ($rc, $out, $stderr);
}

# kafka_dump($topic): every message the topic holds, sorted by partition
# and offset, as hashes: partition, offset, key, type, operation, speed,
# server, room, keys (array), msg (the bytes; decoded from hex), or
# error. Dies when kafka-probe fails.
sub kafka_dump {
    my ($topic) = @_;
    my ($rc, $out, $err) = kafka_probe(20, 'dump', 'BOOTSTRAP',
                                       $topic // $Topic, '--timeout-ms',
                                       10000);
    die "kafka-probe dump failed ($rc): $err\n" if $rc != 0;
    my @msgs = map {
        my $m = JSON::PP->new->decode($_);
        $m->{msg} = pack('H*', $m->{msg}) if defined $m->{msg};
        $m;
    } grep { length } split /\n/, $out;
    return sort { $a->{partition} <=> $b->{partition}
                  || $a->{offset} <=> $b->{offset} } @msgs;
}

# kafka_new($topic): the messages kafka_dump() gives that no earlier
# kafka_new() call returned since kafka_start().
sub kafka_new {
    my @new = grep { !$Seen{"$_->{partition}/$_->{offset}"}++ }
              kafka_dump(@_);
    return @new;
}

1;
