#!/usr/bin/perl
# bench/perf-stages.pl: where the CPU of a cluster run went, by stage of
# the path.  Reads `perf script` of a system-wide profile with call
# chains (bench/cluster.sh with BENCH_PERF=1 writes perf.data and
# perf-procs.txt, the pid of each process's role) on stdin and prints a
# markdown table: samples, share and, given the deliveries and the
# sampling frequency, CPU µs per delivery by stage.
#
#   perf script -i DIR/perf.data -F comm,pid,tid,ip,sym,dso \
#       | perl bench/perf-stages.pl --procs DIR/perf-procs.txt \
#             [--per DELIVERIES --freq HZ] [--top]
#
# A sample belongs to the stage of the first goim function on its chain
# counting from the leaf (the kernel and library code a function calls,
# e.g. a send's loopback softirq, is that function's), found by the
# source file that defines the function (ngx_goim_module/, job/), and
# to its process's role (comet-a: the API node, comet-b: the clients'
# node, goim-job).  A sample with no goim function on its chain is its
# node's "nginx HTTP, events, other", the job's "event loop, other", or
# "librdkafka threads" for librdkafka's own threads (rdk:*); other
# processes are listed by role or command.  --top lists each stage's
# busiest goim functions (their own samples and their callees'), or leaf
# symbols where no goim function is on the chain.
use strict;
use warnings;
use File::Basename qw(dirname);

my $root = dirname(__FILE__) . '/..';
my ($per, $top, $freq, $procs, %cpu);
while (@ARGV) {
    my $a = shift @ARGV;
    if ($a eq '--per') { $per = shift @ARGV }
    elsif ($a eq '--top') { $top = 1 }
    elsif ($a eq '--freq') { $freq = shift @ARGV }
    elsif ($a eq '--procs') { $procs = shift @ARGV }
    elsif ($a eq '--cpu') { %cpu = map { split /=/ } split /,/, shift @ARGV }
    else {
        die "usage: perf script ... | $0 [--procs FILE]"
            . " [--per N (--freq HZ | --cpu GROUP=S,...)] [--top]\n";
    }
}

# source file => stage of the path
my %file_stage = (
    'logic/ngx_goim_api_redis.c'  => 'Redis lookups',
    'store/ngx_goim_redis.c'      => 'Redis lookups',
    'store/ngx_goim_redis_conf.c' => 'Redis lookups',
    'logic/ngx_goim_api_kafka.c'  => 'produce',
    'store/ngx_goim_kafka.c'      => 'produce',
    'logic/ngx_goim_internal.c'   => 'internal push request',
    # an answer: the API's on comet-a, the internal push's on comet-b
    'core/ngx_goim_http_send.c'   => 'HTTP answers',
    'job/goim_job_kafka.c'        => 'consume',
    'job/goim_job_offsets.c'      => 'consume',
    'job/goim_job_route.c'        => 'internal push request',
    'job/goim_job_comet.c'        => 'internal push request',
    'job/goim_job_queue.c'        => 'internal push request',
    'job/goim_job_rules.c'        => 'internal push request',
);

my %fn;
for my $f (glob("$root/ngx_goim_module/*/*.c"), glob("$root/job/*.c")) {
    (my $rel = $f) =~ s{^\Q$root\E/(ngx_goim_module/)?}{};
    my $stage = $file_stage{$rel}
        // ($rel =~ m{^logic/} ? 'API parse and answer'
            : $rel =~ m{^store/} ? 'sessions, online, presence'
            : $rel =~ m{^job/} ? 'registry, metrics, other'
            : 'fan-out to sockets');
    open my $fh, '<', $f or die "$f: $!\n";
    while (<$fh>) {
        $fn{$1} = $stage if /^((?:ngx_goim|goim|job)_[a-z0-9_]*)\(/;
    }
    close $fh;
}

# pid => role (comet-a, comet-b, goim-job, ...), as cluster_perf wrote it
my %role;
if ($procs) {
    open my $fh, '<', $procs or die "$procs: $!\n";
    while (<$fh>) {
        $role{$1} = $2 if /^(\d+)\s+(\S+)/;
    }
    close $fh;
}

my (%n, %sym, %group, %gn);
my $total = 0;
my ($head, @chain);

sub flush {
    return unless $head;
    my ($comm, $pid) = @$head;
    # with --procs, a process it does not list is not of the path (other
    # processes of the machine, e.g. other nginx instances)
    my $role = $role{$pid} // ($procs ? "not of the path: $comm" : $comm);
    my ($stage, $own);
    for (@chain) {
        if ($fn{$_}) { ($stage, $own) = ($fn{$_}, $_); last }
    }
    if ($comm =~ /^rdk:/ && !$stage) {
        $stage = 'librdkafka threads';
    }
    $stage //= $role =~ /^comet/ ? 'nginx HTTP, events, other'
             : $role eq 'goim-job' ? 'event loop, other' : undef;
    if (defined $stage && $stage eq 'HTTP answers') {
        $stage = $role eq 'comet-a' ? 'API parse and answer'
                 : 'internal push request';
    }
    $stage = defined $stage && $role =~ /^(comet|goim-job)/
             ? "$role: $stage" : $role;
    $n{$stage}++;
    $group{$stage} = $role =~ /^comet/ ? 'nginx' : $role;
    $gn{ $group{$stage} }++;
    $sym{$stage}{ $own // $chain[0] // '?' }++;
    $total++;
    ($head, @chain) = (undef);
}

while (<STDIN>) {
    next if /^#/;
    if (/^(\S.*?)\s+(\d+)\/(\d+)\s/) {
        flush();
        $head = [$1, $2, $3];
    } elsif (/^\s+[0-9a-f]+\s+(\S+)/ && $head) {
        (my $s = $1) =~ s/\+0x[0-9a-f]+$//;
        push @chain, $s;
    } elsif (/^\s*$/) {
        flush();
    }
}
flush();

die "no samples\n" unless $total;

# µs per delivery: from the sampling frequency, or from each group's
# CPU seconds measured apart (nginx: both nodes) shared by its samples
sub us {
    my ($st) = @_;
    return undef unless $per;
    if (%cpu) {
        my $g = $group{$st};
        return undef unless defined $cpu{$g} && $gn{$g};
        return $n{$st} / $gn{$g} * $cpu{$g} * 1e6 / $per;
    }
    return $freq ? $n{$st} / $freq * 1e6 / $per : undef;
}

my $show = $per && ($freq || %cpu);
print "| stage | samples | share |" . ($show ? " µs per delivery |" : '')
    . "\n|---|---|---|" . ($show ? '---|' : '') . "\n";
my $sum = 0;
for my $st (sort { $n{$b} <=> $n{$a} } keys %n) {
    my $us = us($st);
    next if %cpu && !defined $us;       # not a process of the path
    printf "| %s | %d | %.1f %% |", $st, $n{$st}, 100 * $n{$st} / $total;
    if ($show) {
        print defined $us ? sprintf(' %.1f |', $us) : ' |';
        $sum += $us // 0;
    }
    print "\n";
}
printf "| all%s | %d | 100 %% |%s\n", %cpu ? ' (µs: the rows above)' : '',
    $total,
    $show ? sprintf(' %.1f |', $sum) : '';

if ($top) {
    for my $st (sort { $n{$b} <=> $n{$a} } keys %n) {
        print "\n$st:\n";
        my $h = $sym{$st};
        my @k = (sort { $h->{$b} <=> $h->{$a} } keys %$h)[0 .. 14];
        printf "  %5.1f %%  %s\n", 100 * $h->{$_} / $n{$st}, $_
            for grep { defined } @k;
    }
}
