#!/usr/bin/perl
# bench/report.pl RUNS.jsonl > bench/RESULTS.md
#
# Turns the JSON lines of bench/run.sh (one per run: the run's settings,
# the server's health, goim_status before/after, and goim-bench's or
# goim-floor's one-line summary) into bench/RESULTS.md: machine and
# versions, one table per scenario with the exact commands, nchan next
# to goim with ratios, the kernel floors with our ratios to them, the
# distance to each target and every anomaly seen.  Core Perl only.

use strict;
use warnings;
use JSON::PP;
use POSIX qw(strftime);

my $file = shift or die "usage: report.pl RUNS.jsonl\n";
open my $fh, '<', $file or die "$file: $!\n";

my (%run, @order);

while (my $line = <$fh>) {
    next unless $line =~ /\S/;
    my $r = eval { decode_json($line) };
    if (!$r) {
        warn "report.pl: bad line in $file: $line";
        next;
    }
    push @order, $r->{id} unless exists $run{$r->{id}};
    $run{$r->{id}} = $r;
}

close $fh;


# --- helpers ------------------------------------------------------------------

sub sh {
    my $out = `$_[0] 2>&1`;
    $out = '' unless defined $out;
    chomp $out;
    return $out;
}

sub num {
    my ($v, $d) = @_;
    return '—' unless defined $v && $v ne '';
    return sprintf("%.${d}f", $v);
}

sub int_sep {
    my $v = shift;
    return '—' unless defined $v;
    my $s = sprintf('%.0f', $v);
    1 while $s =~ s/^(-?\d+)(\d{3})/$1,$2/;
    return $s;
}

sub ratio {
    my ($a, $b, $d) = @_;
    return '—' unless defined $a && defined $b && $b > 0;
    return sprintf("%.${d}f×", $a / $b);
}

sub bench { my $id = shift; $run{$id} && $run{$id}{bench} }

# messages written to sockets over the run (frames: a merged batch is one)
sub delta {
    my ($r, $k) = @_;
    return undef unless $r && $r->{status_after} && $r->{status_before};
    return $r->{status_after}{$k} - $r->{status_before}{$k};
}

# the server's write()/writev() calls that carried pushes: Δsyscw of
# /proc/<pid>/io over the whole goim-bench run, minus the other answers
# it wrote in that window (one each: WebSocket handshake, goim auth
# reply, heartbeat reply, API answer); an estimate
sub writes {
    my $r = shift;
    my $b = $r && $r->{bench};
    return undef unless $b && defined $r->{write_syscalls} && !$b->{idle};
    my $other = $b->{connects} + $b->{sent} + $b->{api_errors};
    if ($r->{server} eq 'goim') {
        $other += $b->{connects} if $b->{transport} eq 'ws';
        $other += $b->{heartbeat_replies};
    }
    my $w = $r->{write_syscalls} - $other;
    return $w > 0 ? $w : undef;
}

sub mpw {
    my $r = shift;
    my $w = writes($r);
    return undef unless $w;
    return $r->{bench}{delivered} / $w;
}

sub fpw {
    my $r = shift;
    my $w = writes($r);
    my $f = delta($r, 'written');
    return undef unless $w && $f;
    return $f / $w;
}

sub cpu_per_write {
    my $r = shift;
    my $w = writes($r);
    return undef unless $w && defined $r->{bench}{server_cpu_s};
    return $r->{bench}{server_cpu_s} * 1e6 / $w;
}

# other processes' CPU during the run, in cores: machine busy minus ours
sub others {
    my $r = shift;
    return undef unless $r && $r->{bench} && $r->{wall_s};
    my $o = $r->{host_busy_s} - ($r->{nginx_cpu_s} // 0)
            - ($r->{bench}{client_cpu_s} // 0);
    # a cluster run's own processes besides nginx
    $o -= ($r->{job_cpu_s} // 0) + ($r->{kafka_cpu_s} // 0)
          + ($r->{redis_cpu_s} // 0);
    $o = 0 if $o < 0;
    return $o / $r->{wall_s};
}

sub cmds {
    my @ids = grep { $run{$_} } @_;
    return '' unless @ids;
    my $s = "```\n";
    $s .= "# $_\n$run{$_}{cmd}\n" for @ids;
    return $s . "```\n";
}

# "met" / "missed by" for an upper bound
sub upper {
    my ($v, $t, $unit, $d) = @_;
    return 'not measured' unless defined $v;
    my $vs = sprintf("%.${d}f%s (target ≤ %.${d}f%s)", $v, $unit, $t, $unit);
    return "**met**: $vs, " . sprintf('%.0f%%', 100 * $v / $t) . ' of the bound'
        if $v <= $t;
    return "**missed** by " . sprintf('%.2f×', $v / $t) . ": $vs";
}


# --- machine and versions -------------------------------------------------------

my $cpu_model = sh(q{grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: //'});
my $hyper = sh(q{grep -m1 -c '^flags.* hypervisor' /proc/cpuinfo}) ? ', virtual machine (hypervisor flag)' : '';
my $nproc = sh('nproc');
my $mem = sh(q{awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo});
my $kernel = sh('uname -srm');
my $irq = sh(q{(zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r) 2>/dev/null) | grep 'CONFIG_IRQ_TIME_ACCOUNTING[= ]'});
$irq = $irq =~ /^CONFIG_IRQ_TIME_ACCOUNTING=y/m ? 'IRQ time accounting on'
     : $irq =~ /is not set/ ? 'IRQ time accounting off' : 'IRQ time accounting unknown';
my $nginx_v = sh(($ENV{NGINX} // 'nginx') . ' -v');
$nginx_v =~ s/^nginx version: //;
my $nchan_v = sh(q{dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null}) || 'unknown';
my $rev = $ENV{BENCH_REV} || sh('git rev-parse --short=12 HEAD');
my $dirty = sh('git status --porcelain -- ngx_goim_module proto config');
my @dirty = map { (split ' ', $_, 2)[1] } grep { /\S/ } split /\n/, $dirty;
my $so = ($ENV{BENCH_SO} || sh('sha256sum build/bench/ngx_goim_module.so | cut -c1-16')) . '…';
my $nofile = sh('sh -c "ulimit -n"');
my $date = strftime('%Y-%m-%d %H:%M:%S UTC', gmtime);

my $out = '';

$out .= <<"EOF";
# Benchmark results

Written by `make bench` (bench/run.sh, bench/report.pl) on $date in
$ENV{BENCH_ELAPSED} s. Do not edit: rerun `make bench`. Every figure below
comes from this one run; the raw JSON lines are in build/bench/runs.jsonl
and each server's conf and error log in build/bench/<run>/.

## Machine and versions

| | |
|---|---|
| CPU | $nproc × $cpu_model$hyper |
| RAM | $mem |
| kernel | $kernel ($irq) |
| open files per process | $nofile |
| nginx | $nginx_v (Debian) |
| goim module | git $rev@{[ @dirty ? ' with uncommitted changes in ' . join(', ', @dirty) : '' ]}; build/ngx_goim_module.so sha256 $so, copied to build/bench/ at the start and loaded by every run; goim_io_uring @{[ $ENV{BENCH_IO_URING} // 'off' ]} |
| nchan | libnginx-mod-nchan $nchan_v |
| load average (1, 5, 15 min) | at start $ENV{BENCH_LOAD_START}, at end $ENV{BENCH_LOAD_END} |

EOF

# the operator's word on the conditions (bench/run.sh's BENCH_NOTE)
$out .= "**Conditions:** $ENV{BENCH_NOTE}\n\n" if $ENV{BENCH_NOTE};

# how busy the machine was with other work while we measured
my @oth = grep { defined } map { others($run{$_}) } @order;
if (@oth) {
    my $sum = 0;
    $sum += $_ for @oth;
    my ($min, $max) = (sort { $a <=> $b } @oth)[0, -1];
    $out .= sprintf(<<"EOF", $sum / @oth, $min, $max);
**The machine was not idle.** Besides nginx and goim-bench, other
processes used %.2f of the $nproc cores on average while the runs
measured (from %.2f to %.2f by run; column "others" below: the machine's
busy CPU from /proc/stat minus nginx's and goim-bench's, per second of
the run). CPU seconds per delivery are the server's own and move less
with that load than latencies and throughput, which it inflates.

EOF
}

$out .= <<"EOF";
## Set-up

- Servers: one fresh nginx per run, from bench/goim.conf.in or
  bench/nchan.conf.in rendered into build/bench/<run>/conf/nginx.conf:
  `worker_processes $ENV{BENCH_WORKERS}` (one per core; 3 for the 40k
  runs, since one process may hold 20,000 files), `worker_rlimit_nofile
  20000`, `worker_connections 19000`, `listen 127.0.0.1:… reuseport
  backlog=4096`,
  `access_log off`, `error_log … warn`. goim: module defaults except
  `goim_room_flush` as stated per run (default 100ms), `goim_status` at
  /goim/status on the API server. nchan: memory store,
  `nchan_subscriber websocket` at /sub/<channel>, `nchan_publisher` at
  /pub/<channel>, `nchan_message_buffer_length 5`,
  `nchan_message_timeout 30s`, `nchan_shared_memory_size 256m`.
- Client: build/goim-bench (bench/README.md) on the same machine, over
  loopback only; the same client and message for both servers: the body
  `{"ts":<µs>,"seq":<n>}` (about 35 bytes, unpadded), POSTed by the
  publisher over keep-alive connections; goim adds its 16-byte header
  and the WebSocket frame header. $ENV{BENCH_DURATION} s of publishing per run.
- Server CPU = utime + stime of the master and its workers over the
  measurement and drain (/proc/<pid>/stat); CPU µs per delivery equals
  CPU seconds per million deliveries. The kernel has no IRQ time
  accounting, so the softirq work of a loopback send is charged to the
  sender, for nginx and goim-floor alike.
- Latency: from the publisher building the request to the client
  reading the message, so it includes the HTTP API, the server's
  fan-out and the client's own CPU share.
- "writes": the server's write()/writev() calls that carried pushes,
  estimated as Δ`syscw` of /proc/<pid>/io (master and workers, over the
  goim-bench run) minus one per other answer in that window (WebSocket
  handshake, goim auth and heartbeat replies, API answers). "msgs/write"
  = delivered ÷ writes; "CPU µs/write" = server CPU ÷ writes. goim also
  counts frames (`goim_messages_written_total`, a merged room batch is
  one frame): "frames/write" = Δframes ÷ writes, above 1 when a socket
  had several frames queued (e.g. the next push arrived before the last
  fan-out finished); "batches" = Δ`goim_room_batches_total` (flushes of
  merged messages, all workers).

EOF


# --- 5 (first: the other tables refer to it). the floors --------------------------

my ($f10, $f1) = map { $run{$_} && $run{$_}{floor} } qw(floor-10k floor-1k);

# the floor: the cheaper of the two reader behaviours (an active reader
# holding a socket's lock takes over part of the receive work)
sub fw {
    my $f = shift;
    my ($q, $a) = ($f->{write_cpu_us}, $f->{active} && $f->{active}{write_cpu_us});
    return defined $a && $a < $q ? $a : $q;
}

sub ff {
    my $f = shift;
    my ($q, $a) = ($f->{fanout_ms_p50}, $f->{active} && $f->{active}{fanout_ms_p50});
    return defined $a && $a < $q ? $a : $q;
}

sub floor_rows {
    my $s = "| run | pairs | writers | msg bytes | write() CPU µs | write() CPU µs, active reader | send CPU µs, io_uring | **write floor µs** | fan-out ms: min / p50 / p99 / max | fan-out p50 ms, active reader | **fan-out floor ms** |";
    my @ks = $f10 ? map { $_->{k} } @{ $f10->{writev} } : ();
    $s .= " writev k=$_: CPU µs per call / per msg |" for @ks;
    $s .= " load1 |\n|---|---|---|---|---|---|---|---|---|---|---|";
    $s .= '---|' for @ks;
    $s .= "---|\n";
    for my $id (qw(floor-10k floor-1k)) {
        my $f = $run{$id} && $run{$id}{floor};
        next unless $f;
        $s .= "| $id | " . int_sep($f->{pairs}) . " | $f->{writers} | $f->{size} | "
            . num($f->{write_cpu_us}, 2) . ' | ' . num($f->{active}{write_cpu_us}, 2)
            . ' | ' . ($f->{io_uring} ? num($f->{io_uring}{write_cpu_us}, 2) : '—')
            . ' | **' . num(fw($f), 2) . '**'
            . ' | ' . join(' / ', map { num($f->{$_}, 1) }
                          qw(fanout_ms_min fanout_ms_p50 fanout_ms_p99 fanout_ms_max))
            . ' | ' . num($f->{active}{fanout_ms_p50}, 1)
            . ' | **' . num(ff($f), 1) . '** |';
        for my $k (@ks) {
            my ($v) = grep { $_->{k} == $k } @{ $f->{writev} };
            $s .= $v ? ' ' . num($v->{cpu_us_per_call}, 2) . ' / '
                       . num($v->{cpu_us_per_msg}, 3) . ' |' : ' — |';
        }
        $s .= " $run{$id}{load1} |\n";
    }
    return $s;
}


# --- 1. idle memory ---------------------------------------------------------------

my @mem = qw(mem-ws-10k mem-ws-40k mem-tcp-10k mem-tcp-40k
             nchan-mem-ws-10k nchan-mem-ws-40k);

$out .= <<"EOF";
## 1. Idle memory per connection

Connect, authenticate (goim) or subscribe (nchan), settle 3 s, then the
summed VmRSS (and Pss) of master and workers, minus the same sampled
before connecting, divided by the connections. The 40k runs use 3
workers (20,000 files per process) and 4 client source addresses (with
2, connects stalled at 28-30k on this machine). Targets: ≤ 3 KB (3,072
B) per idle WebSocket connection, ≤ 2 KB (2,048 B) per idle TCP one.

| run | server | transport | connections ready | workers | ΔRSS B/conn | ΔPSS B/conn | target B | vs target | nchan ÷ goim | others (cores) |
|---|---|---|---|---|---|---|---|---|---|---|
EOF

for my $id (@mem) {
    my $r = $run{$id} or next;
    my $b = $r->{bench};
    my $tr = $b ? $b->{transport} : '?';
    my $t = $tr eq 'tcp' ? 2048 : 3072;
    my $vs = $b && defined $b->{rss_per_conn_bytes}
             ? ratio($b->{rss_per_conn_bytes}, $t, 2) : '—';
    my $cmp = '';
    if ($id =~ /^nchan-(.*)/ && bench($1) && $b) {
        $cmp = ratio($b->{rss_per_conn_bytes}, bench($1)->{rss_per_conn_bytes}, 1);
    }
    $out .= "| $id | $r->{server} | $tr | "
        . ($b ? int_sep($b->{ready}) . ' of ' . int_sep($b->{clients}) : 'failed')
        . " | $r->{workers} | " . int_sep($b && $b->{rss_per_conn_bytes})
        . ' | ' . int_sep($b && $b->{pss_per_conn_bytes})
        . ' | ' . ($r->{server} eq 'nchan' ? '—' : int_sep($t))
        . ' | ' . ($r->{server} eq 'nchan' ? '—' : $vs)
        . " | $cmp | " . num(others($r), 2) . " |\n";
}

$out .= "\n" . cmds(@mem) . "\n";


# --- 2. room broadcast -------------------------------------------------------------

my @room = qw(room-10k-10 room-10k-50 room-10k-200 room-1k-1000 room-1k-100
              room-10k-10-f1s room-10k-10-f0
              nchan-room-10k-10 nchan-room-10k-50 nchan-room-10k-200
              nchan-room-1k-1000);

$out .= <<"EOF";
## 2. Room broadcast

All clients are WebSocket clients in one room (goim: room `bench://0`;
nchan: channel `bench`); the publisher
offers the stated pushes/s through the API (goim `/goim/push/room`,
nchan `POST /pub/bench`) with 64 requests in flight. "sent/s": pushes
the API accepted per second; "unsent": pushes that fell due while all
64 requests were still waiting for answers (the server did not keep
up). Targets: 10k at 200/s with ≥ 99.9 % delivered, p99 ≤ 200 ms, ≤ 0.5
µs CPU per delivery; 1k at 1000/s ≤ 0.25 µs per delivery with p99 ≤ 50
ms; 10k at 10/s ≤ 1.1× the write floor per delivery and p99 ≤ 1.3×
the fan-out floor (section 4); with `goim_room_flush 1s`, ≤ 1.23 µs per
delivery at 10/s.

| run | server | clients | flush | offered/s | sent/s | unsent | delivered | delivered msgs/s | p50 ms | p99 ms | max ms | server CPU s | CPU µs/delivery | writes | msgs/write | frames/write | CPU µs/write | batches | client CPU s | others (cores) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
EOF

for my $id (@room) {
    my $r = $run{$id} or next;
    my $b = $r->{bench};
    if (!$b) {
        $out .= "| $id | $r->{server} | — | $r->{flush} | failed: no figures |\n";
        next;
    }
    my $bat = delta($r, 'batches');
    $out .= "| $id | $r->{server} | " . int_sep($b->{clients})
        . ' | ' . ($r->{server} eq 'goim' ? $r->{flush} : '—')
        . " | $b->{push_rate} | "
        . num($b->{duration} ? $b->{sent} / $b->{duration} : undef, 1)
        . ' | ' . int_sep($b->{unsent})
        . ' | ' . sprintf('%.2f %%', 100 * $b->{delivered_share})
        . ' | ' . int_sep($b->{deliveries_per_s})
        . ' | ' . num($b->{lat_p50_ms}, 1) . ' | ' . num($b->{lat_p99_ms}, 1)
        . ' | ' . num($b->{lat_max_ms}, 1)
        . ' | ' . num($b->{server_cpu_s}, 2)
        . ' | ' . num($b->{cpu_us_per_delivery}, 3)
        . ' | ' . int_sep(writes($r)) . ' | ' . num(mpw($r), 1)
        . ' | ' . num(fpw($r), 2) . ' | ' . num(cpu_per_write($r), 2)
        . ' | ' . (defined $bat ? int_sep($bat) : '—')
        . ' | ' . num($b->{client_cpu_s}, 2)
        . ' | ' . num(others($r), 2) . " |\n";
}

$out .= "\n" . cmds(@room) . "\n";

$out .= <<"EOF";
### nchan next to goim (same client, same scenario)

Ratios are nchan ÷ goim: above 1× nchan needs more (CPU, latency), or
for throughput delivers more.

| scenario | goim sent/s | nchan sent/s | goim delivered | nchan delivered | CPU µs/delivery goim / nchan | ratio | p99 ms goim / nchan | ratio | delivered msgs/s ratio |
|---|---|---|---|---|---|---|---|---|---|
EOF

for my $id (qw(room-10k-10 room-10k-50 room-10k-200 room-1k-1000)) {
    my ($g, $n) = (bench($id), bench("nchan-$id"));
    next unless $g && $n;
    $out .= "| $id | " . num($g->{sent} / $g->{duration}, 1) . ' | '
        . num($n->{sent} / $n->{duration}, 1) . ' | '
        . sprintf('%.2f %%', 100 * $g->{delivered_share}) . ' | '
        . sprintf('%.2f %%', 100 * $n->{delivered_share}) . ' | '
        . num($g->{cpu_us_per_delivery}, 3) . ' / ' . num($n->{cpu_us_per_delivery}, 3)
        . ' | ' . ratio($n->{cpu_us_per_delivery}, $g->{cpu_us_per_delivery}, 1)
        . ' | ' . num($g->{lat_p99_ms}, 1) . ' / ' . num($n->{lat_p99_ms}, 1)
        . ' | ' . ratio($n->{lat_p99_ms}, $g->{lat_p99_ms}, 1)
        . ' | ' . ratio($n->{deliveries_per_s}, $g->{deliveries_per_s}, 2)
        . " |\n";
}

{
    my ($g10, $g40, $n10, $n40) = map { bench($_) }
        qw(mem-ws-10k mem-ws-40k nchan-mem-ws-10k nchan-mem-ws-40k);
    $out .= "| idle WS 10k, ΔRSS B/conn | | | | | "
        . int_sep($g10->{rss_per_conn_bytes}) . ' / ' . int_sep($n10->{rss_per_conn_bytes})
        . ' | ' . ratio($n10->{rss_per_conn_bytes}, $g10->{rss_per_conn_bytes}, 1)
        . " | | | |\n" if $g10 && $n10;
    $out .= "| idle WS 40k, ΔRSS B/conn | | | | | "
        . int_sep($g40->{rss_per_conn_bytes}) . ' / ' . int_sep($n40->{rss_per_conn_bytes})
        . ' | ' . ratio($n40->{rss_per_conn_bytes}, $g40->{rss_per_conn_bytes}, 1)
        . " | | | |\n" if $g40 && $n40;
}

$out .= "\n";


# --- 3. push by key -----------------------------------------------------------------

my @key = qw(key-ws-10k key-tcp-10k key-ws-1k-1000);

$out .= <<"EOF";
## 3. Push by key

10k clients (key-ws-1k-1000: 1k at 1000/s, the twin of section 6's
cluster-key-1k-1000); each push goes to one client (`/goim/push/keys`,
keys `bench-<seq % N>`), one HTTP request per message, 64 in flight. The
CPU per delivery therefore includes a whole HTTP API request.

| run | transport | offered/s | sent/s | unsent | delivered | p50 ms | p99 ms | max ms | server CPU s | CPU µs/delivery | msgs/write | client CPU s | others (cores) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
EOF

for my $id (@key) {
    my $r = $run{$id} or next;
    my $b = $r->{bench};
    if (!$b) {
        $out .= "| $id | failed: no figures |\n";
        next;
    }
    $out .= "| $id | $b->{transport} | $b->{push_rate} | "
        . num($b->{sent} / $b->{duration}, 0) . ' | ' . int_sep($b->{unsent})
        . ' | ' . sprintf('%.2f %%', 100 * $b->{delivered_share})
        . ' | ' . num($b->{lat_p50_ms}, 2) . ' | ' . num($b->{lat_p99_ms}, 2)
        . ' | ' . num($b->{lat_max_ms}, 1) . ' | ' . num($b->{server_cpu_s}, 2)
        . ' | ' . num($b->{cpu_us_per_delivery}, 2) . ' | ' . num(mpw($r), 2)
        . ' | ' . num($b->{client_cpu_s}, 2) . ' | ' . num(others($r), 2) . " |\n";
}

$out .= "\n" . cmds(@key) . "\n";


# --- 4. floors and our ratios ----------------------------------------------------------

$out .= <<"EOF";
## 4. The kernel floor and our ratios to it

build/goim-floor (tools/goim-floor.c) opens N loopback TCP connections
itself (TCP_NODELAY on both ends, as nginx sets it), warms them up past
TCP's initial quick ACKs, and measures in W writer processes (W = nginx's
workers, N/W sockets each) the CPU of one write() of a 40-byte message
per socket, one writev() of k such messages, and the wall time of one
round (fan-out: one message to all N sockets, the writers in parallel).
The reader is a forked process that sleeps while the writers write and
drains every socket between rounds (no reader wake-up is charged to the
writer: the floor), or, in the "active reader" columns, drains them with
epoll while they are written (a reader inside recv() holds the socket
lock, and the segments arriving then are processed by it, not by the
writer, so this can come out cheaper). The "io_uring" column makes
the same sends through io_uring, 512 sockets a call (MSG_DONTWAIT, a
quiet reader), as nginx does with `goim_io_uring on`: one system call
per 512 writes instead of one each (on this project's virtual machine,
with page-table isolation, a system call alone costs about 1 µs).
Rounds are 10 ms apart. The **write floor** is the cheaper of the two
write() figures, the **fan-out floor** the shorter of the two p50
rounds: what a server that makes one system call per socket cannot go
below. A server that batches its sends through io_uring can: the
io_uring column is how far.

EOF

$out .= floor_rows() . "\n" . cmds(qw(floor-10k floor-1k)) . "\n";

$out .= <<"EOF";
Our figures as ratios to the floor of the same N (10k runs: floor-10k;
1k runs: floor-1k). "CPU µs/write ÷ floor" is the server's cost per
socket write over the kernel's bare write(): everything nginx and the
module add (API request, inbox, framing, queues, events) on top of the
unavoidable syscall. Fan-out ratios are against the fan-out floor (the
writing side only: the latency also holds the API request and the
client's reading, on the same two cores).

| run | CPU µs/delivery | ÷ write floor | msgs/write | CPU µs/write | ÷ write floor | p50 ms ÷ fan-out floor | p99 ms ÷ fan-out floor |
|---|---|---|---|---|---|---|---|
EOF

for my $id (@room, @key) {
    my $r = $run{$id} or next;
    my $b = $r->{bench} or next;
    my $f = $b->{clients} >= 5000 ? $f10 : $f1;
    next unless $f && defined $b->{cpu_us_per_delivery};
    my $cw = cpu_per_write($r);
    $out .= "| $id | " . num($b->{cpu_us_per_delivery}, 3) . ' | '
        . ratio($b->{cpu_us_per_delivery}, fw($f), 2) . ' | '
        . num(mpw($r), 1) . ' | ' . num($cw, 2) . ' | '
        . ratio($cw, fw($f), 2) . ' | '
        . ($b->{push_mode} eq 'room'
           ? ratio($b->{lat_p50_ms}, ff($f), 2) . ' | '
             . ratio($b->{lat_p99_ms}, ff($f), 2)
           : '— | —')
        . " |\n";
}

$out .= "\n";


# --- 6. through the cluster ------------------------------------------------------------

# cluster run => its embedded twin (same clients, rate and message)
my @cluster = (
    [ 'cluster-room-1k-100',       'room-1k-100' ],
    [ 'cluster-room-10k-50',       'room-10k-50' ],
    [ 'cluster-key-1k-1000',       'key-ws-1k-1000' ],
    [ 'cluster-key-1k-1000-fw500', 'key-ws-1k-1000' ],
    # no embedded twin at this rate: compared with the targets instead
    [ 'cluster-keybatch-1k-20000', '' ],
);

# a counter's change over a cluster run: status (both nodes) or job
sub cdelta {
    my ($r, $from, $k) = @_;
    my ($b, $a) = ($r->{"${from}_before"}, $r->{"${from}_after"});
    return undef unless $b && $a && defined $a->{$k} && defined $b->{$k};
    return $a->{$k} - $b->{$k};
}

sub per {
    my ($v, $n, $scale) = @_;
    return undef unless defined $v && $n;
    return $v * $scale / $n;
}

# The chat shape (make bench-chat, issue 15) runs apart from make bench
# (100,000 connections need the whole machine): its latest verdict and
# table, which bench/run-chat.sh writes to bench/RESULTS-chat.md.
if (open my $cf, '<', 'bench/RESULTS-chat.md') {
    local $/;
    my $text = <$cf>;
    close $cf;
    $out .= "## 5. Chat shape: 100,000 connections in personal and group"
          . " rooms\n\n$text\n";
}

if (grep { $run{ $_->[0] } } @cluster) {
    my $redis_v = sh(q{redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/'});
    my $rdk_v = sh(q{dpkg-query -W -f='${Version}' librdkafka1 2>/dev/null}) || 'unknown';
    my ($fw) = map { $run{ $_->[0] }{fetch_wait_ms} }
               grep { $run{ $_->[0] } && $_->[0] !~ /fw500$/ } @cluster;
    $fw //= 10;

    $out .= <<"EOF";
## 6. Through the cluster

Every message here takes the whole cluster path: goim-bench's publisher
POSTs to **comet-a**'s logic API, which produces a goim.PushMsg to Kafka
(`acks=all`, `linger.ms` 2) and answers after the ack; goim-job consumes
it and POSTs an internal push (a CometPushBatch) to every comet in the
registry; **comet-b**, which holds all the clients (WebSocket), writes
it to their sockets. comet-a has no clients, but as in goim every comet
gets every room message, so a room message is two internal pushes. One fresh cluster per run, from
conf/run-cluster.sh under build/bench/<run>/cluster: redis-server
$redis_v, kafka-mock (librdkafka ${rdk_v}'s mock cluster: one broker,
4 partitions), comet-a and comet-b from conf/goim-cluster.conf
(`worker_processes auto`, i.e. $nproc each, `goim_room_flush 100ms`,
the API's access log on, error_log warn) and goim-job with
conf/goim-job.conf plus `kafka_option fetch.wait.max.ms` as stated.
The twin of each run is the same clients, rate and message on the
embedded node (section 2 or 3 of this same run: one nginx with
$ENV{BENCH_WORKERS} workers, no Kafka, no Redis, no job).

| run | path | clients | push | offered/s | sent/s | unsent | delivered | p50 ms | p90 ms | p99 ms | max ms | API wait for the ack, mean ms | p50 − twin's ms | p99 − twin's ms | others (cores) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
EOF

    my %twin_done;
    for my $c (@cluster) {
        my ($id, $tid) = @$c;
        my $r = $run{$id} or next;
        my $b = $r->{bench};
        if (!$b) {
            $out .= "| $id | cluster | failed: " . ($r->{error} // 'no figures') . " |\n";
            next;
        }
        my $t = bench($tid);
        my $acks = cdelta($r, 'status', 'kafka_acked');
        my $ackms = per(cdelta($r, 'status', 'kafka_latency_ms'), $acks, 1);
        my $fwn = $r->{fetch_wait_ms} != $fw
                  ? " (fetch.wait.max.ms $r->{fetch_wait_ms})" : '';
        my $per = ($r->{cmd} // '') =~ /--push-batch (\d+)/
                  ? " ×$1 a request" : '';
        $out .= "| $id | cluster$fwn | " . int_sep($b->{clients})
            . " | $b->{push_mode}$per | $b->{push_rate} | "
            . num($b->{duration} ? $b->{sent} / $b->{duration} : undef, 1)
            . ' | ' . int_sep($b->{unsent})
            . ' | ' . sprintf('%.2f %%', 100 * $b->{delivered_share})
            . ' | ' . join(' | ', map { num($b->{$_}, 1) }
                           qw(lat_p50_ms lat_p90_ms lat_p99_ms lat_max_ms))
            . ' | ' . num($ackms, 1)
            . ' | ' . ($t ? num($b->{lat_p50_ms} - $t->{lat_p50_ms}, 1) : '—')
            . ' | ' . ($t ? num($b->{lat_p99_ms} - $t->{lat_p99_ms}, 1) : '—')
            . ' | ' . num(others($r), 2) . " |\n";
        next if !$t || $twin_done{$tid}++;
        $out .= "| $tid | embedded twin | " . int_sep($t->{clients})
            . " | $t->{push_mode} | $t->{push_rate} | "
            . num($t->{duration} ? $t->{sent} / $t->{duration} : undef, 1)
            . ' | ' . int_sep($t->{unsent})
            . ' | ' . sprintf('%.2f %%', 100 * $t->{delivered_share})
            . ' | ' . join(' | ', map { num($t->{$_}, 1) }
                           qw(lat_p50_ms lat_p90_ms lat_p99_ms lat_max_ms))
            . ' | — | | | ' . num(others($run{$tid}), 2) . " |\n";
    }

    $out .= <<"EOF";

CPU: "nginx" is goim-bench's figure for both nodes' masters and workers
over the measurement and drain, as for the twin. The job's, kafka-mock's
and redis-server's come from /proc/<pid>/stat from the moment the
clients were all connected (goim-bench's first progress line after the
connects, so up to 2 s of settling are included) to the end of the run;
"idle" is what each used per second during 2 s with the cluster ready
and no client or push (fetch polling, registry refreshes). "all" adds
the four. Per delivery = CPU ÷ messages delivered; per Kafka message =
CPU ÷ messages the job consumed (a room message is delivered to every
client of the room, a key message to one).

| run | nginx CPU s | nginx µs/delivery | twin µs/delivery | nginx ÷ twin | job CPU s | job µs/Kafka msg | job µs/delivery | kafka-mock CPU s | redis CPU s | all µs/delivery | all ÷ twin | idle cores: job / kafka-mock / redis |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
EOF

    for my $c (@cluster) {
        my ($id, $tid) = @$c;
        my $r = $run{$id} or next;
        my $b = $r->{bench} or next;
        my $t = bench($tid);
        my $p = $r->{cpu_pushes} // {};
        my $i = $r->{cpu_idle};
        my $n = $b->{delivered};
        my $consumed = cdelta($r, 'job', 'consumed');
        my $all = defined $b->{server_cpu_s} && defined $p->{job_cpu_s}
                  ? $b->{server_cpu_s} + $p->{job_cpu_s} + $p->{kafka_cpu_s}
                    + $p->{redis_cpu_s} : undef;
        my $allpd = per($all, $n, 1e6);
        my $idle = $i && $i->{wall_s}
            ? join(' / ', map { num($i->{$_} / $i->{wall_s}, 3) }
                   qw(job_cpu_s kafka_cpu_s redis_cpu_s))
            : '—';
        $out .= "| $id | " . num($b->{server_cpu_s}, 2)
            . ' | ' . num($b->{cpu_us_per_delivery}, 3)
            . ' | ' . ($t ? num($t->{cpu_us_per_delivery}, 3) : '—')
            . ' | ' . ($t ? ratio($b->{cpu_us_per_delivery}, $t->{cpu_us_per_delivery}, 2) : '—')
            . ' | ' . num($p->{job_cpu_s}, 2)
            . ' | ' . num(per($p->{job_cpu_s}, $consumed, 1e6), 1)
            . ' | ' . num(per($p->{job_cpu_s}, $n, 1e6), 3)
            . ' | ' . num($p->{kafka_cpu_s}, 2) . ' | ' . num($p->{redis_cpu_s}, 2)
            . ' | ' . num($allpd, 3)
            . ' | ' . ($t ? ratio($allpd, $t->{cpu_us_per_delivery}, 2) : '—')
            . " | $idle |\n";
    }

    $out .= <<"EOF";

What the job and the comets did (changes over the run): Kafka messages
the job consumed, its internal push requests (to both comets) answered
200 or not, retries, room batches the comets accepted and room messages
merged into a batch with others, items given up on; the comets'
internal requests and items; the API's produced messages acked, failed
or refused for a full queue.

| run | consumed | comet requests ok / failed | retries | room batches | room msgs merged | undeliverable | comet internal requests / items | Kafka acked / failed / queue full |
|---|---|---|---|---|---|---|---|---|
EOF

    for my $c (@cluster) {
        my $id = $c->[0];
        my $r = $run{$id} or next;
        next unless $r->{bench};
        my $j = sub { int_sep(cdelta($r, 'job', $_[0])) };
        my $st = sub { int_sep(cdelta($r, 'status', $_[0])) };
        $out .= "| $id | " . $j->('consumed')
            . ' | ' . $j->('requests_ok') . ' / ' . $j->('requests_failed')
            . ' | ' . $j->('retries') . ' | ' . $j->('room_batches')
            . ' | ' . $j->('room_merged') . ' | ' . $j->('undeliverable')
            . ' | ' . $st->('internal_requests') . ' / ' . $st->('internal_pushes')
            . ' | ' . $st->('kafka_acked') . ' / ' . $st->('kafka_failed')
            . ' / ' . $st->('kafka_queue_full') . " |\n";
    }

    $out .= "\n```\n";
    for my $c (@cluster) {
        my $r = $run{ $c->[0] } or next;
        $out .= "# $c->[0]\n$r->{cluster_cmd}\n$r->{cmd}\n";
    }
    $out .= "```\n\nThe twins' commands are in sections 2 and 3.\n\n";

    my ($k10, $k500) = map { bench($_) } qw(cluster-key-1k-1000 cluster-key-1k-1000-fw500);
    my $fwcost = $k10 && $k500
        ? sprintf(' In this run, with the default 500 ms the key pushes'
                  . ' took p50 %.1f ms and p99 %.1f ms instead of %.1f and %.1f.',
                  $k500->{lat_p50_ms}, $k500->{lat_p99_ms},
                  $k10->{lat_p50_ms}, $k10->{lat_p99_ms})
        : '';

    # the short wait's price: more, smaller fetches and internal pushes
    my ($p10, $p500) = map { $run{$_} && $run{$_}{cpu_pushes} }
                       qw(cluster-key-1k-1000 cluster-key-1k-1000-fw500);
    $fwcost .= sprintf(' The shorter wait means more and smaller fetches'
                       . ' (and internal pushes): under load the job and'
                       . ' kafka-mock used %.2f and %.2f CPU s with %d ms,'
                       . ' %.2f and %.2f with 500 ms.',
                       $p10->{job_cpu_s}, $p10->{kafka_cpu_s}, $fw,
                       $p500->{job_cpu_s}, $p500->{kafka_cpu_s})
        if $p10 && $p500;

    $out .= <<"EOF";
Reading these figures:

- **kafka-mock is not a broker.** It is librdkafka's mock cluster in one
  process on loopback: messages stay in memory, nothing is written to
  disk or replicated to other machines, so `acks=all` costs one
  loopback round trip. A real cluster adds its log append, replication
  to the in-sync replicas and network round trips to "API wait for the
  ack" and again to the job's fetch. These latencies are the software
  path's, not a deployment's.
- **The job's fetch wait.** The mock answers a fetch for which it has no
  data only when the consumer's `fetch.wait.max.ms` is over (librdkafka's
  default 500 ms), not as soon as a message arrives as a broker does
  (`fetch.min.bytes` 1). The runs therefore set it to $fw ms for the job,
  which adds up to $fw ms (about half on average) that a real broker
  would not; the idle column shows the polling's cost.$fwcost
- **The API answers after the ack.** The producer waits up to
  `linger.ms` 2 to batch concurrent requests, then for the broker's ack;
  goim-bench keeps 64 requests in flight, so the API's answer time also
  caps the rate it can offer ("unsent").
- **Room messages are batched twice.** While an internal push to a comet
  is in flight the job queues the next room messages for it and sends
  them together (`room_batch_count` 128, `room_batch_bytes` 64k); the
  comet then merges each room's messages for `goim_room_flush` 100ms as
  in the embedded path, so room latencies stay dominated by that flush
  (p50 near half of it plus the path).
- **One machine.** Both nodes' $nproc workers each, the job, kafka-mock,
  redis-server and goim-bench share the same $nproc cores, so every
  process's CPU slows the others' latency; the embedded twin has only
  nginx and goim-bench.

EOF

    # the profile by stage and the targets' account: measured by hand
    # (perf, bench/perf-stages.pl) and kept in bench/cluster-profile.md,
    # which each regeneration carries
    if (open my $pf, '<', 'bench/cluster-profile.md') {
        local $/;
        my $text = <$pf>;
        close $pf;
        $text =~ s/^#/##/mg;
        $out .= "$text\n";
    }
}


# --- 7. history and recovery --------------------------------------------------------------

# history's cost: each shape's runs in the order they ran, off and on
# alternating (the plain run of section 2 is the first off)
my @hshapes = (
    [ '10k-200',  'room-10k-200' ],
    [ '1k-1000',  'room-1k-1000' ],
);

sub hruns {
    my ($h, $plain) = @_;
    return grep { $run{ $_->[0] } }
        ([ $plain, 'off', 1 ], [ "hist-$h-on-1", 'on', 1 ],
         [ "hist-$h-off-2", 'off', 2 ], [ "hist-$h-on-2", 'on', 2 ]);
}

sub mean {
    my @v = grep { defined } @_;
    return undef unless @v;
    my $s = 0;
    $s += $_ for @v;
    return $s / @v;
}

sub kib { defined $_[0] ? num($_[0] / 1024, 1) : '—' }

# the zone's bytes used after the run (goim_shm_bytes{state="used"})
sub shm_after { my $r = shift; $r && $r->{status_after} && $r->{status_after}{shm_used} }

my %hcost;     # shape => { off => [...], on => [...], pairs => [...] }

if (grep { hruns(@$_) > 1 } @hshapes) {
    $out .= <<"EOF";
## 7. History and recovery (`goim_history`)

### History's cost

The two room shapes of section 2 whose targets are CPU per delivery,
run again on the same build with `goim_history size=64` (ttl 10 min) in
the main context and nothing else changed, alternating: the run of
section 2 (history off), on, off, on. Each pair (an off run and the on
run after it) shows the change, the two pairs the noise. Issue 14's
target: CPU per delivery with history within 10 % of without. The
"zone" columns come from goim_status after the run: the zone's pages in
use (`goim_shm_bytes{state="used"}`, the connections' entries
included) and the history's own account (`goim_history_rooms`,
`_messages`, `_bytes`: what the module asked the slab allocator for,
before its rounding).

| run | history | clients | offered/s | sent/s | delivered | p50 ms | p99 ms | max ms | server CPU s | CPU µs/delivery | zone used KiB | history rooms / messages / bytes | client CPU s | others (cores) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
EOF

    for my $sh (@hshapes) {
        my @rs = hruns(@$sh);
        next unless @rs > 1;
        my $c = $hcost{ $sh->[0] } = { off => [], on => [], p99off => [],
                                       p99on => [], pairs => [] };
        my %by;
        for my $x (@rs) {
            my ($id, $mode, $pair) = @$x;
            my $r = $run{$id};
            my $b = $r->{bench};
            if (!$b) {
                $out .= "| $id | $mode | failed: no figures |\n";
                next;
            }
            push @{ $c->{$mode} }, $b->{cpu_us_per_delivery};
            push @{ $c->{"p99$mode"} }, $b->{lat_p99_ms};
            $by{$pair}{$mode} = $r;
            my $sa = $r->{status_after} // {};
            $out .= "| $id | " . ($mode eq 'on' ? 'size=64' : 'off')
                . ' | ' . int_sep($b->{clients}) . " | $b->{push_rate} | "
                . num($b->{duration} ? $b->{sent} / $b->{duration} : undef, 1)
                . ' | ' . sprintf('%.2f %%', 100 * $b->{delivered_share})
                . ' | ' . num($b->{lat_p50_ms}, 1) . ' | ' . num($b->{lat_p99_ms}, 1)
                . ' | ' . num($b->{lat_max_ms}, 1)
                . ' | ' . num($b->{server_cpu_s}, 2)
                . ' | ' . num($b->{cpu_us_per_delivery}, 3)
                . ' | ' . kib(shm_after($r))
                . ' | ' . ($mode eq 'on'
                           ? int_sep($sa->{history_rooms}) . ' / '
                             . int_sep($sa->{history_messages}) . ' / '
                             . int_sep($sa->{history_bytes})
                           : '—')
                . ' | ' . num($b->{client_cpu_s}, 2)
                . ' | ' . num(others($r), 2) . " |\n";
        }
        for my $p (sort keys %by) {
            my ($off, $on) = @{ $by{$p} }{qw(off on)};
            next unless $off && $on;
            push @{ $c->{pairs} }, [ $p, $off, $on ];
        }
    }

    $out .= "\n```\n";
    for my $sh (@hshapes) {
        for my $x (hruns(@$sh)) {
            my $r = $run{ $x->[0] };
            $out .= "# $x->[0] (goim_history " . ($r->{history} // 'off')
                  . ")\n$r->{cmd}\n";
        }
    }
    $out .= "```\n\n";

    $out .= <<"EOF";
On ÷ off, pair by pair, and the means (CPU µs per delivery; p99 in ms):

| shape | pair 1: CPU on ÷ off | pair 2: CPU on ÷ off | mean off | mean on | **mean on ÷ off** | p99 off / on (mean) | target ≤ 1.10× |
|---|---|---|---|---|---|---|---|
EOF

    for my $sh (@hshapes) {
        my $c = $hcost{ $sh->[0] } or next;
        my %pr = map { $_->[0] => $_ } @{ $c->{pairs} };
        my $pr = sub {
            my $p = $pr{ $_[0] } or return '—';
            my ($off, $on) = map { $_->{bench}{cpu_us_per_delivery} } @$p[1, 2];
            return num($on, 3) . ' ÷ ' . num($off, 3) . ' = ' . ratio($on, $off, 3);
        };
        my ($moff, $mon) = (mean(@{ $c->{off} }), mean(@{ $c->{on} }));
        my $mr = defined $moff && defined $mon && $moff > 0 ? $mon / $moff : undef;
        $c->{ratio} = $mr;
        $out .= "| $sh->[0] | " . $pr->(1) . ' | ' . $pr->(2)
            . ' | ' . num($moff, 3) . ' | ' . num($mon, 3)
            . ' | **' . (defined $mr ? sprintf('%.3f×', $mr) : '—') . '**'
            . ' | ' . num(mean(@{ $c->{p99off} }), 1) . ' / '
            . num(mean(@{ $c->{p99on} }), 1)
            . ' | ' . (!defined $mr ? '—' : $mr <= 1.10 ? '**met**' : '**missed**')
            . " |\n";
    }

    # memory: the on runs' own account, and the zone's pages next to
    # the off run before them
    my @mem7;
    for my $sh (@hshapes) {
        my $c = $hcost{ $sh->[0] } or next;
        for my $p (@{ $c->{pairs} }) {
            my ($pair, $off, $on) = @$p;
            my $sa = $on->{status_after} or next;
            next unless $sa->{history_rooms} && $sa->{history_messages};
            my $ring = 8 * 64 * $sa->{history_rooms};
            my $permsg = ($sa->{history_bytes} - $ring) / $sa->{history_messages};
            my $dshm = defined shm_after($on) && defined shm_after($off)
                       ? shm_after($on) - shm_after($off) : undef;
            push @mem7, [ $on->{id}, $sa, $permsg, $dshm ];
        }
    }

    if (@mem7) {
        $out .= <<"EOF";

**Memory per room.** Each on run ends with its one room's history full
(64 messages of about 35 bytes, goim-bench's body). The paragraph
"Memory" of docs/PROTOCOL.md 1.15 counts about 200 bytes a room, 8
bytes per message of `size` for the ring (512 B here) and, per message
kept, 32 bytes plus the message, rounded up by the slab allocator to a
power of two (35 + 32 = 67 → 128 B): about 200 + 512 + 64 × 128 = 8,904
B a room. The module's account (`goim_history_bytes`) is before that
rounding; the zone's pages (Δ zone used against the off run of the same
pair, in 4 KiB pages, the connections' entries being the same) include
it.

| run | rooms | messages | history bytes | per room | per message, ring apart | Δ zone used vs the off run, B | paragraph's estimate, B | 10,000 such rooms (paragraph), MB |
|---|---|---|---|---|---|---|---|---|
EOF
        for my $m (@mem7) {
            my ($id, $sa, $permsg, $dshm) = @$m;
            my $est = 200 + 512 + 64 * 128;
            $out .= "| $id | " . int_sep($sa->{history_rooms})
                . ' | ' . int_sep($sa->{history_messages})
                . ' | ' . int_sep($sa->{history_bytes})
                . ' | ' . int_sep($sa->{history_bytes} / $sa->{history_rooms})
                . ' | ' . num($permsg, 1)
                . ' | ' . (defined $dshm ? int_sep($dshm) : '—')
                . ' | ' . int_sep($est * $sa->{history_rooms})
                . ' | ' . num($est * 10000 / 1e6, 1) . " |\n";
        }
        $out .= "\n";
    }
}

# the reconnect scenario: with a history that holds what a reconnect
# misses, and with size=64, which does not always at this rate
my @rec = grep { $run{$_} } qw(recover-10k-200 recover-10k-200-h64);

if (@rec) {
    $out .= "## 7. History and recovery (`goim_history`)\n\n" unless %hcost;
    $out .= <<"EOF";
### Reconnects that recover

10,000 WebSocket clients in one room (`bench://0`) of one node with
`goim_history` (recover-10k-200: `size=1024`, 5 s at this rate;
recover-10k-200-h64: `size=64`, 320 ms) and `multi_accept on` (without
it a worker busy with the fan-out accepts one connection a turn of its
event loop, and at 1,000 reconnects a second they queued for seconds;
the other runs keep nginx's default), 200 room pushes/s for
$ENV{BENCH_DURATION} s, and 1,000 clients a second (10 %) picked at
random, closed **without reading what their socket holds** and
connected again at once: op 35 with the position of the last message
the client read, right before op 7 (goim-bench `--recover`,
bench/README.md). goim-bench reads every position itself: op 8's seam,
each message's stream id (`ver`) and offset (`seq` extended to 64 bits),
op 36's result. Exactness is checked against the API: for every push
answered with code 0 and every client (all were in the room the whole
run), the client got it once; a second copy is a duplicate. A missing
pair of a client whose recovery said false is counted apart: the client
was told so (and to reload its state).

EOF
    my @rows = (
        [ 'goim_history', sub { $_[0]{history} } ],
        [ 'pushes accepted (code 0) / refused / unanswered', sub {
            my ($r, $b, $v) = @_;
            int_sep($v->{pushes_ok}) . ' / ' . int_sep($v->{pushes_refused})
            . ' / ' . int_sep($v->{pushes_unanswered})
            . sprintf(' (%.1f/s)', $b->{sent} / $b->{duration}) } ],
        [ '(push, client) pairs expected', sub { int_sep($_[2]{expected}) } ],
        [ '**delivered exactly once**', sub {
            my $v = $_[2];
            int_sep($v->{delivered}) . ($v->{expected}
                ? sprintf(' (%.4f %%)', 100 * $v->{delivered} / $v->{expected}) : '') } ],
        [ '**missing** (clients with one)', sub {
            '**' . int_sep($_[2]{missing}) . '** (' . int_sep($_[2]{clients_missing}) . ')' } ],
        [ 'missing after a recovery that said false (clients told) / client not ready at the end', sub {
            int_sep($_[2]{missing_after_failed_recovery}) . ' ('
            . int_sep($_[2]{clients_failed}) . ') / '
            . int_sep($_[2]{missing_not_ready_at_end}) } ],
        [ '**duplicates**', sub { '**' . int_sep($_[2]{duplicates}) . '**' } ],
        [ 'stray (pushes not accepted, delivered) / misrouted', sub {
            int_sep($_[2]{stray}) . ' / ' . int_sep($_[2]{misrouted}) } ],
        [ 'reconnects (planned) / client errors', sub {
            int_sep($_[2]{reconnects}) . ' / ' . int_sep($_[1]{client_errors}) } ],
        [ 'recoveries: **recovered true** / false', sub {
            int_sep($_[2]{recovered}) . ' / ' . int_sep($_[2]{failed}) } ],
        [ 'false, by reason', sub {
            my $v = $_[2];
            join(', ', map { "$_ " . int_sep($v->{reasons}{$_}) }
                       grep { $v->{reasons}{$_} } sort keys %{ $v->{reasons} }) || 'none' } ],
        [ 'messages recovered (between op 8 and op 36), per recovery', sub {
            my $v = $_[2];
            int_sep($v->{recovered_messages})
            . sprintf(', %.1f', $v->{recoveries} ? $v->{recovered_messages} / $v->{recoveries} : 0) } ],
        [ 'the node\'s goim_recover_total ok / failed, goim_recover_messages_total', sub {
            my $r = shift;
            my ($sb, $sa) = ($r->{status_before} // {}, $r->{status_after} // {});
            join(' / ', map { int_sep(defined $sa->{$_} && defined $sb->{$_}
                                      ? $sa->{$_} - $sb->{$_} : undef) }
                        qw(recover_ok recover_failed))
            . ', ' . int_sep(defined $sa->{recover_messages}
                             ? $sa->{recover_messages} - ($sb->{recover_messages} // 0) : undef) } ],
        [ 'offset gaps / repeats / seam mismatches / stream id mismatches', sub {
            join(' / ', map { int_sep($_[2]{$_}) }
                 qw(offset_gaps offset_repeats seam_mismatch stream_mismatch)) } ],
        [ '**recovery latency** (close to op 36), p50 / p90 / **p99** / max ms', sub {
            join(' / ', map { num($_[2]{$_}, 1) }
                 qw(latency_p50_ms latency_p90_ms latency_p99_ms latency_max_ms)) } ],
        [ '… close to connect() (goim-bench\'s queue), p50 / p99 ms', sub {
            num($_[2]{queue_p50_ms}, 1) . ' / ' . num($_[2]{queue_p99_ms}, 1) } ],
        [ '… connect() to op 8 (TCP, WebSocket handshake, op 35 + op 7), p50 / p99 ms', sub {
            num($_[2]{auth_p50_ms}, 1) . ' / ' . num($_[2]{auth_p99_ms}, 1) } ],
        [ '… op 8 to op 36 (the missed messages), p50 / p99 ms', sub {
            num($_[2]{replay_p50_ms}, 1) . ' / ' . num($_[2]{replay_p99_ms}, 1) } ],
        [ 'live messages\' latency p50 / p99 / max ms', sub {
            join(' / ', map { num($_[1]{$_}, 1) } qw(lat_p50_ms lat_p99_ms lat_max_ms)) } ],
        [ 'server CPU s, µs per delivery (the reconnects included)', sub {
            num($_[1]{server_cpu_s}, 2) . ', ' . num($_[1]{cpu_us_per_delivery}, 3) } ],
        [ 'server CPU per reconnect, µs (beyond room-10k-200\'s CPU per delivery)', sub {
            my ($r, $b, $v) = @_;
            my $t = bench('room-10k-200');
            $t && $v->{reconnects} && defined $b->{server_cpu_s}
            ? num(($b->{server_cpu_s} - $t->{cpu_us_per_delivery} * $b->{delivered} / 1e6)
                  * 1e6 / $v->{reconnects}, 0)
            : '—' } ],
        [ 'goim-bench CPU s / others (cores)', sub {
            num($_[1]{client_cpu_s}, 2) . ' / ' . num(others($_[0]), 2) } ],
        [ 'history at the end: rooms / messages / bytes', sub {
            my $sa = $_[0]{status_after} // {};
            int_sep($sa->{history_rooms}) . ' / ' . int_sep($sa->{history_messages})
            . ' / ' . int_sep($sa->{history_bytes}) } ],
    );

    $out .= '| | ' . join(' | ', @rec) . " |\n|---|" . ('---|' x @rec) . "\n";
    for my $row (@rows) {
        $out .= "| $row->[0] |";
        for my $id (@rec) {
            my $r = $run{$id};
            my $b = $r->{bench};
            my $v = $b && $b->{recover};
            $out .= ' ' . ($v ? $row->[1]->($r, $b, $v) : 'no figures') . ' |';
        }
        $out .= "\n";
    }
    $out .= "\n" . cmds(@rec) . "\n";
}


# --- distance to targets -----------------------------------------------------------------

$out .= "## Distance to targets\n\n";

my @t;

for my $id (qw(mem-ws-10k mem-ws-40k)) {
    my $b = bench($id);
    push @t, "Idle WS, $id: " . upper($b && $b->{rss_per_conn_bytes}, 3072, ' B', 0);
}
for my $id (qw(mem-tcp-10k mem-tcp-40k)) {
    my $b = bench($id);
    push @t, "Idle TCP, $id: " . upper($b && $b->{rss_per_conn_bytes}, 2048, ' B', 0);
}

if (my $b = bench('room-10k-200')) {
    my $s = 100 * $b->{delivered_share};
    push @t, "10k WS at 200/s, delivered: "
        . ($s >= 99.9 ? "**met**: " : "**missed**: ")
        . sprintf('%.3f %% of %s sent (target ≥ 99.9 %%)', $s, int_sep($b->{sent}))
        . ($b->{unsent} ? sprintf('; but only %.1f of the 200 pushes/s offered were accepted (%s unsent)',
                                   $b->{sent} / $b->{duration}, int_sep($b->{unsent})) : '');
    push @t, "10k WS at 200/s, p99: " . upper($b->{lat_p99_ms}, 200, ' ms', 1);
    push @t, "10k WS at 200/s, CPU per delivery: "
        . upper($b->{cpu_us_per_delivery}, 0.5, ' µs', 3);
} else {
    push @t, '10k WS at 200/s: not measured';
}

if (my $b = bench('room-1k-1000')) {
    push @t, "1k WS at 1000/s, CPU per delivery: "
        . upper($b->{cpu_us_per_delivery}, 0.25, ' µs', 3);
    push @t, "1k WS at 1000/s, p99: " . upper($b->{lat_p99_ms}, 50, ' ms', 1);
} else {
    push @t, '1k WS at 1000/s: not measured';
}

if ((my $b = bench('room-10k-10')) && $f10) {
    my $cw = cpu_per_write($run{'room-10k-10'});
    push @t, sprintf('10k WS at 10/s, CPU per delivery vs 1.1× write floor (%.2f µs × 1.1): ',
                     fw($f10))
        . upper($b->{cpu_us_per_delivery}, 1.1 * fw($f10), ' µs', 2)
        . (defined $cw && mpw($run{'room-10k-10'})
           ? sprintf('; with %.2f messages per write, i.e. %.2f µs per socket write = %.2f× the floor',
                     mpw($run{'room-10k-10'}), $cw, $cw / fw($f10))
           : '');
    push @t, sprintf('10k WS at 10/s, p99 vs 1.3× fan-out floor (%.1f ms × 1.3): ', ff($f10))
        . upper($b->{lat_p99_ms}, 1.3 * ff($f10), ' ms', 1);
} else {
    push @t, '10k WS at 10/s against the floors: not measured';
}

if (my $b = bench('room-10k-10-f1s')) {
    push @t, "`goim_room_flush 1s`, 10k WS at 10/s, CPU per delivery vs goim's 1.23 µs: "
        . upper($b->{cpu_us_per_delivery}, 1.23, ' µs', 3);
} else {
    push @t, '`goim_room_flush 1s` at 10/s: not measured';
}

# issue 17's cluster targets: "path" is every process of the path but
# kafka-mock (both nodes, the job, redis-server), per delivery
sub path_pd {
    my ($id, $mock) = @_;
    my $r = $run{$id} or return undef;
    my $b = $r->{bench} or return undef;
    my $p = $r->{cpu_pushes} or return undef;
    return undef unless defined $b->{server_cpu_s} && $b->{delivered};
    return per($b->{server_cpu_s} + $p->{job_cpu_s} + $p->{redis_cpu_s}
               + ($mock ? $p->{kafka_cpu_s} : 0), $b->{delivered}, 1e6);
}

if ((my $b = bench('cluster-key-1k-1000')) && (my $t = bench('key-ws-1k-1000'))) {
    my $pd = path_pd('cluster-key-1k-1000');
    push @t, sprintf('Cluster, key pushes at 1k/s, path CPU (both nodes, job,'
                     . ' Redis) vs 2× the twin (%.1f µs × 2): ',
                     $t->{cpu_us_per_delivery})
        . upper($pd, 2 * $t->{cpu_us_per_delivery}, ' µs', 1)
        . sprintf('; kafka-mock apart: %.1f µs more',
                  path_pd('cluster-key-1k-1000', 1) - $pd);
    push @t, 'Cluster, key pushes at 1k/s, p99: '
        . upper($b->{lat_p99_ms}, 10, ' ms', 1);
} else {
    push @t, 'Cluster, key pushes at 1k/s: not measured';
}

if (my $b = bench('cluster-keybatch-1k-20000')) {
    my $s = 100 * $b->{delivered_share};
    push @t, 'Cluster, batch API at 20k/s, delivered: '
        . ($s >= 100 ? '**met**: ' : '**missed**: ')
        . sprintf('%.3f %% of %s sent (target 100 %%)', $s, int_sep($b->{sent}));
    push @t, 'Cluster, batch API at 20k/s, CPU all-in (kafka-mock included): '
        . upper(path_pd('cluster-keybatch-1k-20000', 1), 30, ' µs', 1)
        . sprintf('; without kafka-mock %.1f µs',
                  path_pd('cluster-keybatch-1k-20000'));
    push @t, 'Cluster, batch API at 20k/s, p99: '
        . upper($b->{lat_p99_ms}, 50, ' ms', 1);
} else {
    push @t, 'Cluster, batch API at 20k/s: not measured';
}

for my $c (['cluster-room-1k-100', 'room-1k-100'],
           ['cluster-room-10k-50', 'room-10k-50'])
{
    my ($b, $t) = (bench($c->[0]), bench($c->[1]));
    unless ($b && $t) {
        push @t, "Cluster, $c->[0]: not measured";
        next;
    }
    push @t, sprintf('Cluster, %s, nginx CPU vs 1.2× the twin (%.3f µs × 1.2): ',
                     $c->[0], $t->{cpu_us_per_delivery})
        . upper($b->{cpu_us_per_delivery}, 1.2 * $t->{cpu_us_per_delivery},
                ' µs', 3)
        . sprintf('; with the job and Redis %.3f µs (%.2f×)', path_pd($c->[0]),
                  path_pd($c->[0]) / $t->{cpu_us_per_delivery});
}

for my $sh (@hshapes) {
    my $c = $hcost{ $sh->[0] };
    if (!$c || !defined $c->{ratio}) {
        push @t, "History's cost, $sh->[0]: not measured";
        next;
    }
    my $d = 100 * ($c->{ratio} - 1);
    push @t, "History's cost, $sh->[0] (`goim_history size=64`), CPU per delivery vs"
        . ' off: ' . ($c->{ratio} <= 1.10 ? '**met**' : '**missed**')
        . sprintf(': %.3f× (%+.1f %%, mean of %d on and %d off runs; target ≤ 1.10×)',
                  $c->{ratio}, $d, scalar @{ $c->{on} }, scalar @{ $c->{off} });
}

if (my $v = bench('recover-10k-200') && bench('recover-10k-200')->{recover}) {
    push @t, 'Reconnects that recover, every accepted push to every client'
        . ' exactly once: ' . ($v->{missing} + $v->{missing_after_failed_recovery}
                               + $v->{missing_not_ready_at_end} == 0
                               && $v->{duplicates} == 0 ? '**met**' : '**missed**')
        . sprintf(': %s missing (%s after a failed recovery, %s not ready at the end),'
                  . ' %s duplicates, of %s pairs; %s recoveries, %s recovered false;'
                  . ' recovery p99 %.1f ms',
                  int_sep($v->{missing}), int_sep($v->{missing_after_failed_recovery}),
                  int_sep($v->{missing_not_ready_at_end}), int_sep($v->{duplicates}),
                  int_sep($v->{expected}), int_sep($v->{recoveries}),
                  int_sep($v->{failed}), $v->{latency_p99_ms});
} else {
    push @t, 'Reconnects that recover: not measured';
}

$out .= join('', map { "- $_\n" } @t) . "\n";


# --- anomalies ---------------------------------------------------------------------------

my @a;

for my $id (@order) {
    my $r = $run{$id};
    next if $r->{server} eq 'floor' && $r->{floor} && $r->{floor}{ok};
    if ($r->{server} eq 'floor') {
        push @a, "$id: goim-floor failed (rc $r->{rc}), see build/bench/$id.log";
        next;
    }
    if ($r->{error}) {
        push @a, "$id: $r->{error}";
        next;
    }
    my $b = $r->{bench};
    push @a, "$id: **nginx master gone after the run**" unless $r->{alive};
    push @a, "$id: **$r->{workers_gone} worker(s) gone during the run**" if $r->{workers_gone};
    push @a, "$id: **$r->{log_signal} worker(s) exited on a signal** (error.log)" if $r->{log_signal};
    push @a, "$id: $r->{log_alert} [alert] line(s) in error.log" if $r->{log_alert};
    push @a, "$id: $r->{log_crit} [crit]/[emerg] line(s) in error.log" if $r->{log_crit};
    push @a, "$id: $r->{log_error} [error] line(s) in error.log" if $r->{log_error};
    push @a, "$id: $r->{listen_overflows} TCP listen queue overflows (machine-wide)"
        if $r->{listen_overflows};
    if ($r->{server} eq 'cluster') {
        push @a, "$id: $r->{job_log_error} [error] and $r->{job_log_warn}"
                 . " [warn] line(s) in goim-job's log"
            if $r->{job_log_error} || $r->{job_log_warn};
        for my $k (qw(undeliverable requests_failed retries decode_errors)) {
            my $d = cdelta($r, 'job', $k);
            push @a, "$id: goim-job $k: " . int_sep($d) if $d;
        }
        for my $k (qw(kafka_failed kafka_queue_full)) {
            my $d = cdelta($r, 'status', $k);
            push @a, "$id: the API's $k: " . int_sep($d) if $d;
        }
    }
    if (!$b) {
        push @a, "$id: **goim-bench gave no figures** (rc $r->{rc}, build/bench/$id/bench.log)";
        next;
    }
    push @a, "$id: goim-bench exit $r->{rc} (not every client ready, or stopped)" if $r->{rc};
    push @a, "$id: run not completed (deadline or signal)" unless $b->{completed};
    push @a, "$id: only " . int_sep($b->{ready}) . ' of ' . int_sep($b->{clients}) . ' clients ready'
        if $b->{ready} < $b->{clients};
    if (!$b->{idle}) {
        push @a, sprintf('%s: delivered %.3f %% of expected (%s of %s)', $id,
                         100 * $b->{delivered_share}, int_sep($b->{delivered}),
                         int_sep($b->{expected}))
            if $b->{delivered} != $b->{expected};
        push @a, "$id: " . int_sep($b->{unsent}) . ' pushes unsent (all API requests in flight were waiting)'
            if $b->{unsent};
    }
    push @a, "$id: " . int_sep($b->{api_errors}) . ' API errors' if $b->{api_errors};
    push @a, "$id: " . int_sep($b->{client_errors}) . ' client errors (failed or dropped connections)'
        if $b->{client_errors};
    push @a, "$id: " . int_sep($b->{stale}) . ' stale messages' if $b->{stale};
    my $d = delta($r, 'dropped');
    push @a, "$id: goim dropped " . int_sep($d) . ' pushes (goim_dropped_total)' if $d;
}

$out .= "## Anomalies\n\n";
$out .= @a ? join('', map { "- $_\n" } @a)
           : "None: every server survived its run with a clean error log, every client was ready, and every push the API accepted was delivered.\n";
$out .= <<'EOF';

Reading them: a delivered share above 100 % for nchan means pushes whose
API request timed out (counted as errors, not as sent) were still
published; below 100 %, with latencies of seconds, messages most likely
still on their way when the drain ended (goim-bench drains 2 s after
publishing, longer only while API answers are outstanding) were not
counted. Unsent pushes are the publisher's queue overflowing because
the server answered the API too late: the offered rate was not reached.
EOF

# Before/after figures of changes to the hot path are measured by hand
# (two builds, same machine, back to back) and kept in bench/changes/;
# each regeneration of RESULTS.md carries them, newest first.
my @changes = reverse sort glob('bench/changes/*.md');
if (@changes) {
    $out .= "\n## Before and after changes\n\n"
          . "Hand-measured comparisons of two builds on this machine, one"
          . " file each in\nbench/changes/ (newest first); the figures above"
          . " are this run's.\n";
    for my $f (@changes) {
        open my $ch, '<', $f or die "$f: $!\n";
        local $/;
        my $text = <$ch>;
        close $ch;
        $text =~ s/^#/###/mg;
        $out .= "\n$text";
    }
}

print $out;
