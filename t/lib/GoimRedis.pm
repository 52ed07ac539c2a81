package GoimRedis;

# A throwaway redis-server for tests (t/05*.t): started in the foreground
# of a child on a loopback port, so its pid is known; redis-cli for checks.

use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use POSIX ();
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(have_redis redis_start redis_stop redis_port rcli
                    redis_sleep hgetall wait_until);

our $RedisServer = '/usr/bin/redis-server';
our $RedisCli = '/usr/bin/redis-cli';

my $Redis;          # {pid, port, args} of the running redis-server
my $Dir;
my $Owner = $$;

sub have_redis { return -x $RedisServer && -x $RedisCli }

# Starts redis-server on $port with @args (e.g. '--requirepass', 'pw',
# which rcli then uses); waits until it answers PING.
sub redis_start {
    my ($port, @args) = @_;
    $Dir //= tempdir('goim-redis-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $log = "$Dir/redis-$port.log";
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        { exec $RedisServer, '--port', $port, '--bind', '127.0.0.1',
               '--save', '', '--appendonly', 'no', '--daemonize', 'no',
               '--dir', $Dir, @args }
        POSIX::_exit(127);
    }
    $Redis = { pid => $pid, port => $port, args => \@args };
    my $deadline = time + 5;
    until ((rcli('PING') // '') eq 'PONG') {
        die "redis-server on port $port did not start\n" if time > $deadline;
        sleep 0.05;
    }
    return $pid;
}

# Stops it (TERM, then KILL after 3 s); $sig 'KILL' simulates a crash.
sub redis_stop {
    my ($sig) = @_;
    my $r = $Redis or return;
    undef $Redis;
    kill $sig // 'TERM', $r->{pid};
    my $deadline = time + 3;
    while (waitpid($r->{pid}, POSIX::WNOHANG()) == 0) {
        if (time > $deadline) {
            kill 'KILL', $r->{pid};
            waitpid $r->{pid}, 0;
            last;
        }
        sleep 0.02;
    }
    return $r;
}

END { local $?; redis_stop('KILL') if $$ == $Owner }

sub redis_port { return $Redis && $Redis->{port} }

# redis-cli --raw (with the server's --requirepass, if any); the output
# without its last newline, undef on failure. Bounded by timeout(1).
sub rcli {
    my @cmd = @_;
    my $r = $Redis or return undef;
    my @auth = grep { defined } map {
        $r->{args}[$_] eq '--requirepass' ? ('--no-auth-warning', '-a',
                                             $r->{args}[$_ + 1]) : ()
    } 0 .. $#{ $r->{args} };
    my $pid = open(my $fh, '-|') // return undef;
    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        { exec 'timeout', '5', $RedisCli, '-p', $r->{port}, @auth, '--raw',
               @cmd }
        POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh>;
    close $fh;
    return undef if $?;
    $out =~ s/\n\z// if defined $out;
    return $out;
}

# DEBUG SLEEP blocks the whole server (it needs '--enable-debug-command',
# 'local' at redis_start); runs in a child, returns its pid.
sub redis_sleep {
    my ($secs) = @_;
    my $port = redis_port();
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        { exec 'timeout', '5', $RedisCli, '-p', $port, 'DEBUG', 'SLEEP',
               $secs }
        POSIX::_exit(127);
    }
    return $pid;
}

# hgetall($key [, @db]): the hash as {field => value}; @db goes before
# the command (e.g. '-n', 1).
sub hgetall {
    my ($key, @db) = @_;
    my $out = rcli(@db, 'HGETALL', $key) // return undef;
    return { split /\n/, $out };
}

# Polls until $check->() is true, at most $timeout s; the last value.
sub wait_until {
    my ($check, $timeout) = @_;
    my $deadline = time + ($timeout // 3);
    while (1) {
        my $v = $check->();
        return $v if $v || time > $deadline;
        sleep 0.05;
    }
}

1;
