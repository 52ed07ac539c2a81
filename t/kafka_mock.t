# tools/kafka-mock and tools/kafka-probe: produce with acks=all, consume
# with a consumer group, an outage through SIGUSR1 (produce fails, state is
# kept), recovery through SIGUSR2 (produce works again, a produce waiting
# through the outage is delivered, the group resumes at its committed
# offsets), and a clean exit on SIGTERM.
#
# Every wait is bounded, and whatever this file started is killed in END,
# whatever happened before.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use IO::Select;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;

my $build = "$FindBin::Bin/../build";
my $mock_bin = "$build/kafka-mock";
my $probe_bin = "$build/kafka-probe";

for ($mock_bin, $probe_bin) {
    plan skip_all => "$_ is not built (make tools)" unless -x $_;
}

my $topic = 'goim-push-topic';
my $group = 'kafka-mock-t';
my $tmp = tempdir(CLEANUP => 1);
my %running;    # pid => what, for END
my $mock_pid;

END {
    local $?;    # keep the test's exit status
    kill 'TERM', keys %running;
    my $deadline = time + 5;
    while (%running && time < $deadline) {
        for my $pid (keys %running) {
            delete $running{$pid} if waitpid($pid, WNOHANG) != 0;
        }
        sleep 0.05 if %running;
    }
    for my $pid (keys %running) {
        diag("killing $running{$pid} (pid $pid)");
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
}

# Forks and execs @cmd with stdout into a pipe and stderr into $errfile.
sub spawn {
    my ($what, $errfile, @cmd) = @_;
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        close $r;
        open(STDOUT, '>&', $w) && open(STDERR, '>', $errfile)
            or POSIX::_exit(127);
        exec(@cmd) or POSIX::_exit(127);
    }
    close $w;
    $running{$pid} = $what;
    return ($pid, $r);
}

# Waits up to $secs for $pid to exit: its wait status, or undef.
sub reap {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $running{$pid};
            return $?;
        }
        return undef if time >= $deadline;
        sleep 0.02;
    }
}

# Reads $fh until EOF or the deadline; with $line_only, up to a newline.
sub read_until {
    my ($fh, $deadline, $line_only) = @_;
    my $sel = IO::Select->new($fh);
    my $data = '';
    while (!$line_only || $data !~ /\n/) {
        my $left = $deadline - time;
        last if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($fh, my $buf, 4096);
        last unless $n;
        $data .= $buf;
    }
    return $data;
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return scalar <$fh>;
}

# Starts kafka-probe with @args; finish() collects it.
my @probes;
sub start_probe {
    my (@args) = @_;
    my $err = "$tmp/probe-" . (@probes + 1) . ".err";
    my ($pid, $out) = spawn("kafka-probe @args", $err, $probe_bin, @args);
    push @probes, { pid => $pid, out => $out, err => $err, args => "@args" };
    return $probes[-1];
}

# Waits up to $secs for a probe: (exit code or -1 when killed, stdout).
sub finish {
    my ($p, $secs) = @_;
    my $deadline = time + $secs;
    my $out = read_until($p->{out}, $deadline, 0);
    close $p->{out};
    my $status = reap($p->{pid}, $deadline - time);
    if (!defined $status) {
        diag("kafka-probe $p->{args}: still running after ${secs}s, killed");
        kill 'KILL', $p->{pid};
        reap($p->{pid}, 5);
        $status = -1;
    }
    return ($status == -1 ? -1 : $status >> 8, $out, $p->{err});
}

sub probe {
    my ($secs, @args) = @_;
    return finish(start_probe(@args), $secs);
}

# Waits up to $secs for $re in kafka-mock's stderr.
my $mock_err = "$tmp/kafka-mock.err";
sub mock_logged {
    my ($re, $secs) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        return 1 if slurp($mock_err) =~ $re;
        sleep 0.05;
    }
    return 0;
}

my $t0 = time;

# --- start -------------------------------------------------------------------

($mock_pid, my $mock_out) = spawn('kafka-mock', $mock_err, $mock_bin,
    '-b', '1', '-t', "$topic:4");
my $line = read_until($mock_out, time + 10, 1);
my ($bootstrap) = $line =~ /^(127\.0\.0\.1:\d+(?:,127\.0\.0\.1:\d+)*)\n/;
ok($bootstrap, 'kafka-mock prints the bootstrap address first')
    or BAIL_OUT("no bootstrap line: '$line'; stderr:\n" . slurp($mock_err));

# --- produce and consume with a group ----------------------------------------

my ($rc, $out) = probe(20, 'produce', $bootstrap, $topic, 100,
    '--timeout-ms', 10000);
is($rc, 0, 'produce 100 with acks=all succeeds');
like($out, qr/^delivered 100 failed 0$/m, '... all 100 delivered');

($rc, $out) = probe(25, 'consume', $bootstrap, $topic, $group, 100,
    '--timeout-ms', 15000);
is($rc, 0, 'consumer group reads 100');
like($out, qr/^consumed 100$/m, '... exactly 100');

# --- outage ------------------------------------------------------------------

kill 'USR1', $mock_pid;
ok(mock_logged(qr/SIGUSR1 .*all brokers down/, 5), 'SIGUSR1: brokers down');

my $t = time;
($rc, $out, my $err) = probe(15, 'produce', $bootstrap, $topic, 5,
    '--timeout-ms', 3000);
isnt($rc, 0, 'produce during the outage fails');
like($out, qr/^delivered 0 failed 5$/m, '... nothing delivered');
like(slurp($err), qr/Message timed out/, '... by message.timeout.ms');
cmp_ok(time - $t, '<', 10, '... within its timeout');

# started during the outage with a long timeout: must wait, not fail
my $waiting = start_probe('produce', $bootstrap, $topic, 5,
    '--timeout-ms', 20000);
sleep 1;
is(reap($waiting->{pid}, 0), undef, 'a produce with a long timeout waits');

# --- recovery ----------------------------------------------------------------

kill 'USR2', $mock_pid;
ok(mock_logged(qr/SIGUSR2 .*all brokers up/, 5), 'SIGUSR2: brokers up');

$t = time;
($rc, $out) = finish($waiting, 30);
is($rc, 0, 'the waiting produce is delivered after recovery');
like($out, qr/^delivered 5 failed 0$/m, '... all 5');
note(sprintf('waiting producer delivered %.1fs after SIGUSR2', time - $t));

($rc, $out) = probe(20, 'produce', $bootstrap, $topic, 10,
    '--timeout-ms', 10000);
is($rc, 0, 'produce after recovery succeeds');
like($out, qr/^delivered 10 failed 0$/m, '... all 10 delivered');

# Ask for one more than was produced since: the group must resume at its
# committed offsets (nothing of the first 100 again), so exactly 15 arrive
# and the probe times out waiting for the 16th.
($rc, $out) = probe(25, 'consume', $bootstrap, $topic, $group, 16,
    '--timeout-ms', 10000);
like($out, qr/^consumed 15$/m,
    'the group gets the 15 new messages, and only those');
is($rc, 1, '... and times out waiting for a 16th');

# --- clean exit --------------------------------------------------------------

kill 'TERM', $mock_pid;
my $status = reap($mock_pid, 10);
is($status, 0, 'SIGTERM: kafka-mock exits 0');
like(slurp($mock_err), qr/SIGTERM .*exiting/, '... and says so');

note(sprintf('took %.1fs', time - $t0));

unless (Test::More->builder->is_passing) {
    diag("kafka-mock stderr:\n" . slurp($mock_err));
    diag("$_->{args}:\n" . slurp($_->{err})) for @probes;
}

done_testing();
