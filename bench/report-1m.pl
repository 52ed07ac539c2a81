#!/usr/bin/perl
# bench/report-1m.pl: the section of bench/RESULTS-1M.md for one run of
# bench/run-1m.sh, on stdout (and stderr).  It reads the run's files in
# $B_OUT and the figures the script exports as B_* variables.  Exit
# status 0 when the run was clean (see run-1m.sh), 1 otherwise.

use strict;
use warnings;
use JSON::PP;

my %e = map { (substr($_, 2) => $ENV{$_}) } grep { /^B_/ } keys %ENV;
my $out = $e{OUT};
my $n = $e{ONLINE} || 0;

sub slurp {
    open(my $f, "<", $_[0]) or return "";
    local $/;
    my $s = <$f>;
    close $f;
    return $s;
}

# the last JSON line of a goim-bench or goim-floor output
sub load {
    my $last;
    for (split /\n/, slurp($_[0])) { $last = $_ if /^\{/ }
    return $last ? (eval { decode_json($last) } || {}) : {};
}

sub meminfo {
    my %m;
    for (split /\n/, slurp("$out/s/meminfo.$_[0]")) {
        $m{$1} = $2 if /^(\w+(?:\(\w+\))?):\s+(\d+)/;
    }
    return \%m;
}

# slabinfo: name => [active objects, object size, bytes in its slabs]
sub slabinfo {
    my %s;
    for (split /\n/, slurp("$out/s/slabinfo.$_[0]")) {
        next if /^(slabinfo|#)/;
        my @x = split;
        next unless @x > 14;
        $s{$x[0]} = [$x[1], $x[3], $x[-2] * $x[5] * 4096];
    }
    return \%s;
}

sub pair {
    my @v = split ' ', slurp("$out/s/$_[0]");
    return (@v ? @v : (0, 0));
}

sub mb { sprintf("%.1f MB", $_[0] / 1048576) }
sub gb { sprintf("%.2f GB", $_[0] / 1073741824) }
sub per { $n ? sprintf("%.0f", $_[0] / $n) : "n/a" }
sub int_sep { my $x = reverse int($_[0] + 0.5); $x =~ s/(\d{3})(?=\d)/$1,/g; scalar reverse $x }
sub sec { defined $_[0] && $_[0] ne "" ? "$_[0] s" : "n/a" }

my %r = (tcp => load("$out/tcp.json"), ws => load("$out/ws.json"));
my $floor = load("$out/floor.json");
my $floor_n = ($e{CMD_FLOOR_N} // "") ne "" ? load("$out/floor-n.json") : {};
my $floor_s = ($e{CMD_FLOOR_S} // "") ne "" ? load("$out/floor-s.json") : {};

my @t = gmtime($e{STARTED});
my $date = sprintf("%04d-%02d-%02d %02d:%02d UTC", $t[5] + 1900, $t[4] + 1,
                   $t[3], $t[2], $t[1]);


# --- pushes ---------------------------------------------------------------------

my @pushes;
for (split /\n/, slurp("$out/pushes.txt")) {
    my ($seq, $mode, $want, $w, $t_all, $cpu, $bcpu, $peak, $rc, $drop,
        $busy, $sleeps, $preempted, $stopped, $t_first) = split;
    my $pub = load("$out/pub$seq.json");
    my ($del, $first, $last) = (0, undef, undef);
    for my $j ($r{tcp}, $r{ws}, $pub) {
        for my $s (@{ $j->{seqs} || [] }) {
            next unless $s->{seq} == $seq;
            $del += $s->{delivered};
            $first = $s->{first_ms}
                if !defined $first || $s->{first_ms} < $first;
            # the publisher's own client is one of many: the idle runs'
            # last delivery is the fan-out's end
            $last = $s->{last_ms}
                if $j != $pub && (!defined $last || $s->{last_ms} > $last);
        }
    }
    push @pushes, { seq => $seq, mode => $mode, want => $want,
                    written => $w, t_all => $t_all, cpu => $cpu,
                    bcpu => $bcpu, busy => $busy, peak => $peak, rc => $rc,
                    dropped => $drop, delivered => $del, first => $first,
                    sleeps => $sleeps // "-", preempted => $preempted // "-",
                    last => $last, sent => $pub->{sent} // 0,
                    stopped => ($stopped // "no") eq "stopped",
                    t_first => $t_first // "-",
                    cmd => slurp("$out/pub$seq.cmd") };
}


# --- memory --------------------------------------------------------------------

my ($m_host, $m_base, $m_full) = map { meminfo($_) } qw(host base full);
my ($s_base, $s_full) = map { slabinfo($_) } qw(base full);
my ($ng_rss0, $ng_pss0) = pair("nginx.base");
my ($ng_rss1, $ng_pss1) = pair("nginx.full");
my ($b_rss, $b_pss) = pair("bench.full");
my $b_procs = (pair("bench_procs.full"))[0];

my %d;          # slab cache => [objects, bytes] from base to full
for my $c (keys %$s_full) {
    my $a = $s_base->{$c} || [0, 0, 0];
    $d{$c} = [$s_full->{$c}[0] - $a->[0], $s_full->{$c}[2] - $a->[2]];
}

# SLUB merges caches of one object size and flags: slabinfo names a
# merged cache after one of them; /sys/kernel/slab links all the names
my (%target, %aliases);
if (opendir(my $dh, "/sys/kernel/slab")) {
    for my $name (grep { !/^\./ } readdir $dh) {
        my $t = readlink("/sys/kernel/slab/$name") // $name;
        $t =~ s{.*/}{};
        $target{$name} = $t;
        push @{ $aliases{$t} }, $name unless $name =~ /^:/;
    }
    closedir $dh;
}
sub names {
    my $t = $target{$_[0]} // $_[0];
    my @a = sort grep { $_ ne $_[0] } @{ $aliases{$t} || [] };
    return @a ? "$_[0] (merged: " . join(", ", @a) . ")" : $_[0];
}

# what every connection has twice (a socket at each end, each in an
# epoll set): the socket, its inode and file, their dentries and
# security blobs, the epoll items and wait queue entries; the clients'
# source ports add bind buckets
my %conn_cache = map { $_ => 1 } qw(TCP sock_inode_cache filp dentry
    eventpoll_epi eventpoll_pwq ep_head lsm_file_cache lsm_inode_cache
    tcp_bind_bucket tcp_bind2_bucket);
my %is_sock;
for my $c (keys %d) {
    my $t = $target{$c} // $c;
    for my $a ($c, @{ $aliases{$t} || [] }) {
        $is_sock{$c} = 1 if $conn_cache{$a};
    }
}
my @sock = grep { $is_sock{$_} } keys %d;
my $proc_objs = ($d{proc_inode_cache} || [0])->[0];

my $slab_total = 0;
$slab_total += $_->[1] for values %d;
my ($sock_bytes, $proc_bytes) = (0, 0);
$sock_bytes += ($d{$_} || [0, 0])->[1] for @sock;
$proc_bytes = ($d{proc_inode_cache} || [0, 0])->[1];
# a /proc/<pid>/fd entry takes a dentry and a security blob too: those
# objects are moved from the sockets' share to the /proc share
for my $c (qw(dentry lsm_inode_cache)) {
    next unless $d{$c} && $d{$c}[0] > 0;
    my $share = $proc_objs > 0 ? $d{$c}[1] * $proc_objs / $d{$c}[0] : 0;
    $share = $d{$c}[1] if $share > $d{$c}[1];
    $sock_bytes -= $share;
    $proc_bytes += $share;
}
my $other_slab = $slab_total - $sock_bytes - $proc_bytes;

my $mdelta = sub { (($m_full->{$_[0]} // 0) - ($m_base->{$_[0]} // 0)) * 1024 };

my $d_pss = ($ng_pss1 - $ng_pss0) * 1024;
my $d_rss = ($ng_rss1 - $ng_rss0) * 1024;
my $tcp_pages = 0;
for (split /\n/, slurp("$out/s/sockstat.full")) {
    $tcp_pages = $1 if /^TCP:.* mem (\d+)/;
}


# --- who used the CPU between two snapshots ----------------------------------------

# (machine busy, interrupts, nginx, goim-bench, others by name, not
# attributed) in seconds; processes that ended in between are in "not
# attributed", with the interrupt time the kernel charged to no process
sub cpu_window {
    my ($a, $b) = @_;
    my (%ta, %tb, %comm, %who);
    for (split /\n/, slurp("$out/s/cpu.$a")) {
        my ($p, $t) = split;
        $ta{$p} = $t;
    }
    for (split /\n/, slurp("$out/s/cpu.$b")) {
        my ($p, $t, $c) = split;
        $tb{$p} = $t;
        $comm{$p} = $c;
    }
    return undef unless %ta && %tb;
    for my $f ("ours.$a", "ours.$b") {
        for (split /\n/, slurp("$out/s/$f")) {
            my ($w, @p) = split;
            $who{$_} = $w for @p;
        }
    }
    my @sa = split ' ', slurp("$out/s/stat.$a");
    my @sb = split ' ', slurp("$out/s/stat.$b");
    my $busy = 0;
    $busy += $sb[$_] - $sa[$_] for (1, 2, 3, 6, 7, 8);
    my $irq = ($sb[6] - $sa[6]) + ($sb[7] - $sa[7]);
    my %sum = (nginx => 0, bench => 0);
    my %others;
    for my $p (keys %tb) {
        my $d = $tb{$p} - ($ta{$p} // 0);
        next if $d <= 0;
        if ($who{$p}) {
            $sum{$who{$p}} += $d;
        } else {
            (my $c = $comm{$p}) =~ s{/.*}{};
            $others{$c} += $d;
        }
    }
    my $listed = $sum{nginx} + $sum{bench};
    $listed += $_ for values %others;
    return { busy => $busy / 100, irq => $irq / 100,
             nginx => $sum{nginx} / 100, bench => $sum{bench} / 100,
             others => { map { $_ => $others{$_} / 100 } keys %others },
             rest => ($busy - $listed) / 100,
             secs => slurp("$out/s/uptime.$b") - slurp("$out/s/uptime.$a") };
}

sub cpu_text {
    my ($w) = @_;
    return "n/a" unless $w;
    my $secs = $w->{secs};
    my @top = sort { $w->{others}{$b} <=> $w->{others}{$a} }
              keys %{ $w->{others} };
    @top = grep { $w->{others}{$_} >= 0.5 } @top[0 .. ($#top < 4 ? $#top : 4)];
    my $t = sprintf("%.0f s: machine %.0f s busy of %.0f (%.0f s in interrupts); nginx %.0f s, goim-bench %.0f s",
                    $secs, $w->{busy}, $secs * $e{CORES}, $w->{irq}, $w->{nginx}, $w->{bench});
    $t .= "; others: " . join(", ", map { sprintf("%s %.0f s", $_, $w->{others}{$_}) } @top)
        if @top;
    $t .= sprintf("; not attributed (ended processes, interrupts) %.0f s", $w->{rest})
        if $w->{rest} >= 0.5;
    return $t;
}

my $cpu_conn = cpu_window("conn0", "conn1");
my $cpu_push = cpu_window("push0", "push1");


# --- the verdict ----------------------------------------------------------------

my $pushes_ok = $e{PUSHED} eq "yes"
    && @pushes == $e{PUSHES} + 1 + (($e{STOPPED_PUSH} // "no") eq "yes");
for my $p (@pushes) {
    $pushes_ok = 0 unless $p->{sent} == 1 && $p->{delivered} == $p->{want}
                          && $p->{dropped} == 0;
}
my $reload_ok = $e{DO_RELOAD} ne "yes"
                || ($e{RELOADED} eq "yes" && $e{RELOAD_BACK} ne "");
my $ok = $n >= $e{CLIENTS} && $pushes_ok && $reload_ok
         && $e{ALIVE} eq "true" && $e{LOST} == 0 && $e{SIGNALS} == 0
         && $e{ALERTS} == 0 && $e{AUTH_FAILED} == 0;

my $verdict;
if ($ok) {
    $verdict = int_sep($e{CLIENTS}) . " online, every push delivered"
             . ($e{DO_RELOAD} eq "yes" ? ", reloaded" : ", reload skipped");
} elsif ($e{GUARD} ne "") {
    $verdict = "memory guard at " . int_sep($n) . " of "
             . int_sep($e{CLIENTS});
} else {
    $verdict = int_sep($n) . " of " . int_sep($e{CLIENTS})
             . " online: NOT CLEAN (see below)";
}


# --- the text -----------------------------------------------------------------------

my $s = "";

if ($e{HEADER}) {
    $s .= <<'EOF';
# make bench-1m: one nginx, up to 1,000,000 concurrent connections

`make bench-1m` (bench/run-1m.sh, this file's sections by
bench/report-1m.pl) connects N goim clients, half TCP and half
WebSocket, all in one room, to one nginx with the goim module on this
machine, measures where the memory goes, pushes room messages and a
broadcast to all of them, and reloads nginx with all of them connected
when the registry has the slots for it. It runs in a network namespace
of its own (ip netns): the sysctls it sets there (listed in each section) never
touch the host's. `BENCH_1M_CLIENTS` sets N (default 1,000,000).
Each run appends a section; the first part of this file says what the
figures mean and what we learnt from them.

Reading the figures:

- Everything runs on the same 2 cores: nginx's workers, the clients
  (2 x P goim-bench processes), and whatever else the machine runs.
  A push to N means N socket writes by nginx and N reads by the
  clients.
- **nginx ΔPss** is the server's user-space memory per connection:
  Pss summed over master and workers, after all connected minus before,
  so the shared zone counts once.
- **Kernel slab** comes from /proc/slabinfo (whole machine), before
  and after the clients connected. On loopback every connection has a
  socket at each end, and both ends sit in an epoll set: the table
  shows objects per connection, 2.0 for each of those. Half of it is
  what a server whose clients are elsewhere would hold (the clients'
  bind buckets, one or two per source port, are on the client's side
  only). SLUB merges caches of one object size: slabinfo names the
  merged cache after one of them, the table lists the others from
  /sys/kernel/slab (e.g. the epoll items share a cache with the bind
  buckets).
  `proc_inode_cache` (and as many dentries) are /proc/<pid>/fd entries:
  on this machine a process outside the bench lists /proc/<pid>/fd of
  every process every few seconds, which makes one per open file
  (reclaimable; a machine without such a monitor does not have them).
- **The bench's memory** adds up its parts: nginx's Pss (the workers'
  own included), the clients' Pss, the slab growth, page tables, kernel
  stacks and TCP buffers. **The machine** row is MemAvailable before
  nginx started minus after all connected: other users of the machine
  included, and reclaimable slab (dentries, inodes) counted as
  available.
- **Fan-out** is a push's first and last delivery as the clients saw
  them (publish to read, the clients' clocks are the publisher's): the
  last one is when every client had it. Room pushes wait for
  `goim_room_flush` (100 ms) first; push/all does not.
- **Clients stopped**: the last room push is made with the idle
  clients stopped (SIGSTOP) until nginx has written it to every socket,
  and its fan-out is nginx's own: from the last status poll that saw
  none of it written to the first that saw all of it (so up to 0.25 s
  too long). Clients on other machines take no CPU from the server;
  here they share its 2 cores, and in the other pushes their reads
  take about as much CPU as nginx's writes. They read the push once
  continued, and it counts as delivered like the others.
- **The floor** is goim-floor's CPU per write() on 10,000 loopback
  pairs (a quiet reader) in the same run: a push to N cannot take less
  than that x N / cores of CPU on this machine, with nothing for the
  clients. The issue's target is a fan-out within 1.2 x that. The
  same writes as sends through io_uring, 512 sockets a call (as nginx
  makes them with goim_io_uring on), cost less: that figure is given
  too.
  **The floor with N pairs** (bench/floor-n.sh) is the same measured
  after nginx stopped with as many loopback pairs open at once as there
  were connections, over N / 19,000 goim-floor processes (this
  machine's 20,000 open files per process): the kernel's cost per
  write() with N sockets' state competing for the caches. Before
  those tests, once connected, its instances write one message to each
  of their sockets at one moment, readers quiet: **the floor's own
  fan-out**, by as many processes as nginx has workers, on the cores
  as the machine's other users leave them. The push with the clients stopped is compared with
  it too. Those rounds come a second after the last (as a push comes
  after idle seconds): each reader's TCP then acknowledges at once
  (quick ACK), and on loopback the writer's send carries the ACK's
  cost, which the tests' rounds, 10 ms apart, do not see. The first
  of the two rounds grows the kernel's slab caches for a message
  parked in every socket, as nginx's push to stopped clients did; the
  second finds them grown. The kind nginx wrote with goes first. (The
  13:11 run had these rounds after the tests, write() first; the 13:45
  run after the tests, io_uring first: the tests' quiet rounds had
  grown the caches for both.)
EOF
}

$s .= "\n## $date: $verdict\n\n";

my $tree = $e{TREE} ? " + $e{TREE} uncommitted changes in ngx_goim_module/, proto/, config, tools/bench/ or bench/run-1m.sh" : "";
$s .= "rev $e{REV}$tree, module sha256 $e{SO}…, nginx $e{NGINX_V}, "
    . "$e{UNAME}, $e{CORES} cores, $e{ELAPSED} s in all, load $e{LOAD} at the end\n\n";
$s .= "Network namespace: "
    . ($e{NETNS} eq "own" ? "the run's own (ip netns add); in it:"
                          : "none (host loopback, unchanged):")
    . "$e{KERNEL_SETTINGS} socket buffers: $e{BUFS}"
    . ($e{BUFS} eq "small" ? " (tcp_rmem/tcp_wmem 4096 4096 max in the namespace, clients --sockbuf 4096)" : " (the kernel's)")
    . ".\n\n";
$s .= "nginx: $e{WORKERS} workers, worker_rlimit_nofile 20000, "
    . "worker_connections 21000, goim_max_clients $e{MAX_CLIENTS}, "
    . "goim_zone $e{ZONE_MB}m, goim_heartbeat 4m, goim_shutdown_drain $e{DRAIN}s, goim_io_uring " . ($e{IO_URING} // "off") . ", reuseport listeners "
    . "(build/bench1m/conf/nginx.conf).\n\n";
$s .= "Clients: " . (($e{CLIENT_SCHED} // "") eq "batch"
    ? "SCHED_BATCH (a write that wakes one does not preempt an nginx worker, as with clients on other machines)"
    : "SCHED_OTHER (a write that wakes one may preempt the nginx worker on the same core)") . ".\n\n";

$s .= "Commands:\n\n";
$s .= "    BENCH_1M_CLIENTS=$e{CLIENTS}"
    . ($e{BUFS} ne "default" ? " BENCH_1M_BUFS=$e{BUFS}" : "")
    . ($e{HEARTBEAT} != 240 ? " BENCH_1M_HEARTBEAT=$e{HEARTBEAT}" : "")
    . ($e{WORKERS_SET} ne "" ? " BENCH_1M_WORKERS=$e{WORKERS_SET}" : "")
    . (($e{RELOAD_SET} // "") ne "" ? " BENCH_1M_RELOAD=$e{RELOAD_SET}" : "")
    . (($e{FLOOR_N_SET} // "") ne "" ? " BENCH_1M_FLOOR_N=$e{FLOOR_N_SET}" : "")
    . (($e{SCHED_SET} // "") ne "" ? " BENCH_1M_CLIENT_SCHED=$e{SCHED_SET}" : "")
    . (($e{PAUSE_SET} // "") ne "" ? " BENCH_1M_READ_PAUSE=$e{PAUSE_SET}" : "")
    . (($e{IO_URING_SET} // "") ne "" ? " BENCH_1M_IO_URING=$e{IO_URING_SET}" : "")
    . (($e{STOPPED_PUSH_SET} // "") ne "" ? " BENCH_1M_STOPPED_PUSH=$e{STOPPED_PUSH_SET}" : "")
    . " make bench-1m    # sh bench/run-1m.sh\n";
$s .= "    $e{CMD_FLOOR}\n";
$s .= "    $_\n" for ($e{CMD_TCP}, $e{CMD_WS});
$s .= "    # once goim_online summed to $e{CLIENTS}, one at a time:\n";
my %cmd_seen;
for my $p (@pushes) {
    (my $c = $p->{cmd}) =~ s/\s+$//;
    $s .= "    # the idle runs stopped (kill -STOP) until all written, then -CONT:\n"
        if $p->{stopped};
    $s .= "    $c\n";
}
$s .= "    # then SIGINT to the two --idle runs: they report what they received\n";
$s .= "    # once nginx stopped:\n    FLOOR=build/goim-floor $e{CMD_FLOOR_N}\n"
    if ($e{CMD_FLOOR_N} // "") ne "";
$s .= "    FLOOR=build/goim-floor $e{CMD_FLOOR_S}\n"
    if ($e{CMD_FLOOR_S} // "") ne "";
$s .= "\n";

# per worker: connections
my (%conn, @wk);
for (split /\n/, slurp("$out/s/status.full")) {
    $conn{$1} += $2 if /^goim_connections\{worker="(\d+)",.*\} (\d+)/;
}
my @c = sort { $a <=> $b } values %conn;

$s .= "| figure | value |\n|---|---|\n";
$s .= "| online (goim_status, sum of goim_online) | **" . int_sep($n) . "** of " . int_sep($e{CLIENTS}) . " |\n";
$s .= "| connections per worker | " . (@c ? int_sep($c[0]) . " to " . int_sep($c[-1]) . " over " . scalar(@c) . " workers" : "n/a") . " |\n";
$s .= "| memory guard | $e{GUARD} |\n" if $e{GUARD} ne "";
$s .= "| CPU while connecting | " . cpu_text($cpu_conn) . " |\n";
$s .= "| time to all online | " . sec($e{T_CONN}) . " at " . int_sep($e{RATE}) . " connects/s asked (nginx CPU " . sprintf("%.1f", $e{CPU_CONN} / 100) . " s" . ($n ? sprintf(", %.0f µs per connection", $e{CPU_CONN} * 1e4 / $n) : "") . ") |\n";
$s .= "| nginx ΔPss (master + workers) | " . mb($d_pss) . " = **" . per($d_pss) . " B per connection** (target ≤ 1536) |\n";
$s .= "| nginx ΔRSS | " . mb($d_rss) . " = " . per($d_rss) . " B per connection |\n";
$s .= "| nginx Pss before the clients ($e{WORKERS} workers) | " . mb($ng_pss0 * 1024) . " |\n";
$s .= "| kernel slab Δ, whole machine | " . mb($slab_total) . " = **" . per($slab_total) . " B per connection** |\n";
$s .= "| of which both socket ends (table below) | " . mb($sock_bytes) . " = " . per($sock_bytes) . " B per connection |\n";
$s .= "| of which /proc/<pid>/fd entries (outside monitor) | " . mb($proc_bytes) . " = " . per($proc_bytes) . " B per connection |\n";
$s .= "| of which other caches (whole machine) | " . mb($other_slab) . " = " . per($other_slab) . " B per connection |\n";
$s .= "| TCP buffer pages (sockstat mem), idle | $tcp_pages pages = " . mb($tcp_pages * 4096) . " |\n";
$s .= "| clients: goim-bench Pss ($b_procs processes) | " . mb($b_pss * 1024) . " = " . per($b_pss * 1024) . " B per connection (RSS " . mb($b_rss * 1024) . ") |\n";
my $parts = $ng_pss1 * 1024 + $b_pss * 1024 + $slab_total
            + $mdelta->("PageTables") + $mdelta->("KernelStack")
            + $tcp_pages * 4096;
$s .= "| **the bench's memory**: nginx Pss + clients' Pss + slab Δ + page tables Δ + kernel stacks Δ + TCP buffers | **" . gb($parts) . "** = " . per($parts) . " B per connection |\n";
$s .= "| the machine: MemAvailable since before nginx | " . gb(($m_host->{MemAvailable} - $m_full->{MemAvailable}) * 1024) . " less (whole machine; reclaimable slab counts as available), " . gb($m_full->{MemAvailable} * 1024) . " of " . gb($m_full->{MemTotal} * 1024) . " left |\n";
$s .= "| goim_zone used | " . sprintf("%.1f MB of %d MB (%.1f MB free), %s B per connection", $e{SHM1} / 1048576, $e{ZONE_MB}, $e{SHM_FREE} / 1048576, per($e{SHM1} - $e{SHM0})) . " |\n";
if ($e{HB_N} ne "" && $e{HB_N} > 0) {
    $s .= "| heartbeats only (every $e{HEARTBEAT} s), $e{IDLE} s | " . int_sep($e{HB_N}) . " heartbeat replies (" . sprintf("%.0f/s", $e{HB_N} / $e{IDLE}) . "), nginx CPU " . sprintf("%.2f s = %.1f µs per heartbeat (all of nginx's idle work included)", $e{HB_CPU} / 100, $e{HB_CPU} * 1e4 / $e{HB_N}) . " |\n";
}

my $wus = $floor->{write_cpu_us};
if (defined $wus) {
    my $uus = $floor->{io_uring} ? $floor->{io_uring}{write_cpu_us} : undef;
    $s .= "| the floor (goim-floor) | " . sprintf("%.2f µs CPU per write() → one push to %s: %.0f ms on %d cores", $wus, int_sep($n + 1), $wus * ($n + 1) / $e{CORES} / 1000, $e{CORES})
        . (defined $uus ? sprintf("; %.2f µs per send through io_uring, %d a call → %.0f ms", $uus, $floor->{io_uring}{slice}, $uus * ($n + 1) / $e{CORES} / 1000) : "") . " |\n";
}
my $nus = $floor_n->{ok} ? $floor_n->{write_cpu_us} : undef;
if (($e{CMD_FLOOR_N} // "") ne "") {
    $s .= "| the floor with " . int_sep($floor_n->{pairs} // 0) . " pairs open (bench/floor-n.sh, after nginx stopped) | "
        . (defined $nus ? sprintf("%.2f µs CPU per write() (%.2f with an active reader), %d goim-floor instances side by side for %.0f s (all running for %.0f s of it) → one push to %s: %.0f ms on %d cores", $nus, $floor_n->{active_write_cpu_us}, $floor_n->{instances}, $floor_n->{elapsed_s}, $floor_n->{overlap_s}, int_sep($n + 1), $nus * ($n + 1) / $e{CORES} / 1000, $e{CORES})
              . (defined $floor_n->{uring_write_cpu_us} ? sprintf("; %.2f µs per send through io_uring, 512 a call → %.0f ms", $floor_n->{uring_write_cpu_us}, $floor_n->{uring_write_cpu_us} * ($n + 1) / $e{CORES} / 1000) : "")
              . (defined $floor_n->{sync_write_ms} ? sprintf("; the floor's own fan-out, all %d instances at once after a pause, readers quiet: one write() to each of the %s sockets in **%.0f ms** (%.2f µs CPU per write()), one send through io_uring in %.0f ms (%.2f µs); the %s round first, into slab caches not yet grown for a message parked in every socket", $floor_n->{instances}, int_sep($floor_n->{pairs}), $floor_n->{sync_write_ms}, $floor_n->{sync_write_cpu_us} // 0, $floor_n->{sync_uring_ms} // 0, $floor_n->{sync_uring_cpu_us} // 0, ($floor_n->{sync_first} // "write") eq "uring" ? "io_uring" : "write()") : "")
            : "failed (floor-n.log)") . " |\n";
}
if (($e{CMD_FLOOR_S} // "") ne "") {
    $s .= "| the floor with " . int_sep($floor_s->{pairs} // 0) . " pairs, each instance writing its sockets in a random order (a server's order; one test round) | "
        . ($floor_s->{ok} && defined $floor_s->{sync_write_ms}
           ? sprintf("%.2f µs CPU per write(), %.2f per send through io_uring; the floor's own fan-out, all %d instances at once after a pause, readers quiet: one write() to each socket in **%.0f ms** (%.2f µs CPU per write()), one send through io_uring in **%.0f ms** (%.2f µs); the %s round first", $floor_s->{write_cpu_us}, $floor_s->{uring_write_cpu_us} // 0, $floor_s->{instances}, $floor_s->{sync_write_ms}, $floor_s->{sync_write_cpu_us} // 0, $floor_s->{sync_uring_ms} // 0, $floor_s->{sync_uring_cpu_us} // 0, ($floor_s->{sync_first} // "write") eq "uring" ? "io_uring" : "write()")
           : "failed (floor-s.log)") . " |\n";
}
# the floor's own fan-out, scaled to a push's sockets
my $sync_ms = $floor_n->{ok} && defined $floor_n->{sync_write_ms}
    ? $floor_n->{sync_write_ms} / $floor_n->{pairs} : undef;
my $sync_uring_ms = $floor_n->{ok} && defined $floor_n->{sync_uring_ms}
    ? $floor_n->{sync_uring_ms} / $floor_n->{pairs} : undef;
my $uring = ($e{IO_URING} // "") eq "on";
my $kind = $uring ? "io_uring" : "write()";
my $sync_cpu = !$floor_n->{ok} ? undef
    : $uring ? $floor_n->{sync_uring_cpu_us} : $floor_n->{sync_write_cpu_us};
# the floor's own fan-out per socket, of the kind nginx wrote with
my $own_ms = $uring ? $sync_uring_ms : $sync_ms;
my ($shuf_ms, $shuf_cpu);
if ($floor_s->{ok}) {
    my $ms = $uring ? $floor_s->{sync_uring_ms} : $floor_s->{sync_write_ms};
    $shuf_ms = defined $ms ? $ms / $floor_s->{pairs} : undef;
    $shuf_cpu = $uring ? $floor_s->{sync_uring_cpu_us}
        : $floor_s->{sync_write_cpu_us};
}
my @verdict;
# nginx's CPU per message against the kernel's per send as nginx makes
# them (io_uring), with as many pairs when that was measured
my $per_send;
if (($e{IO_URING} // "") eq "on") {
    $per_send = $floor_n->{ok} && defined $floor_n->{uring_write_cpu_us}
        ? [$floor_n->{uring_write_cpu_us}, "the floor's io_uring send with as many pairs"]
        : $floor->{io_uring} ? [$floor->{io_uring}{write_cpu_us}, "the floor's io_uring send"] : undef;
} else {
    $per_send = $floor_n->{ok} ? [$nus, "the floor's write() with as many pairs"]
        : defined $wus ? [$wus, "the floor's write()"] : undef;
}
for my $p (@pushes) {
    my $floor_ms = defined $wus ? $wus * $p->{want} / $e{CORES} / 1000 : undef;
    my $n_ms = defined $nus ? $nus * $p->{want} / $e{CORES} / 1000 : undef;
    my $label = $p->{mode} eq "all" ? "push/all" : "room push";
    $label .= ", clients stopped" if $p->{stopped};
    $s .= "| $label seq $p->{seq}: delivered | **" . int_sep($p->{delivered}) . " of " . int_sep($p->{want}) . sprintf(" = %.4f", $p->{want} ? $p->{delivered} / $p->{want} : 0) . "**, API " . ($p->{sent} ? "code 0" : "failed") . ", dropped $p->{dropped} |\n";
    # with the clients stopped, the fan-out is nginx's: from the poll
    # before its first write to the one that saw every socket written
    my $fan = $p->{stopped}
        ? ($p->{t_all} ne "-" && $p->{t_first} ne "-" ? ($p->{t_all} - $p->{t_first}) * 1000 : undef)
        : $p->{last};
    $s .= "| $label seq $p->{seq}: fan-out | "
        . ($p->{stopped}
           ? (defined $fan ? sprintf("nginx wrote it to every socket within **%.0f ms** (polls 0.25 s apart: none written at %.2f s, all at %.2f s after the publisher started), the clients stopped meanwhile; they read it once continued (last delivery %s ms)", $fan, $p->{t_first}, $p->{t_all}, defined $p->{last} ? sprintf("%.0f", $p->{last}) : "n/a") : "n/a")
           : (defined $fan ? sprintf("first %.0f ms, **last %.0f ms**", $p->{first}, $fan) : "n/a"))
        . (defined $floor_ms && defined $fan ? sprintf(" = %.1f x the floor (%.0f ms)", $fan / $floor_ms, $floor_ms) : "")
        . (defined $n_ms && defined $fan ? sprintf(", %.1f x the floor with as many pairs (%.0f ms)", $fan / $n_ms, $n_ms) : "")
        . ($p->{stopped} && defined $sync_ms && defined $fan ? sprintf(", %.2f x the floor's own fan-out by write() (%.0f ms)", $fan / ($sync_ms * $p->{want}), $sync_ms * $p->{want})
              . (defined $sync_uring_ms && $sync_uring_ms > 0 ? sprintf(", %.2f x by io_uring (%.0f ms)", $fan / ($sync_uring_ms * $p->{want}), $sync_uring_ms * $p->{want}) : "") : "")
        . ($p->{stopped} && $shuf_ms && defined $fan ? sprintf(", **%.2f x** the floor's own fan-out in a server's order by %s (%.0f ms)", $fan / ($shuf_ms * $p->{want}), $kind, $shuf_ms * $p->{want}) : "")
        . "; all written (goim_status, 0.25 s polls) " . ($p->{t_all} ne "-" ? "$p->{t_all} s after the publisher started" : "never")
        . sprintf("; nginx CPU %.2f s = %.1f µs per message", $p->{cpu} / 100, $p->{written} ? $p->{cpu} * 1e4 / $p->{written} : 0)
        . (defined $per_send && $p->{written} ? sprintf(" (%.2f x %s)", $p->{cpu} * 1e4 / $p->{written} / $per_send->[0], $per_send->[1]) : "")
        . ($p->{stopped} && $p->{written} && defined $sync_cpu && $sync_cpu > 0 ? sprintf(" (%.2f x the floor's own fan-out's %s after a pause, %.2f µs)", $p->{cpu} * 1e4 / $p->{written} / $sync_cpu, ($e{IO_URING} // "") eq "on" ? "io_uring send" : "write()", $sync_cpu) : "")
        . ($p->{stopped} && $p->{written} && $shuf_cpu ? sprintf(" (%.2f x in a server's order, %.2f µs)", $p->{cpu} * 1e4 / $p->{written} / $shuf_cpu, $shuf_cpu) : "")
        . sprintf(", goim-bench %.2f s, other processes %.2f s", $p->{bcpu} / 100, ($p->{busy} - $p->{cpu} - $p->{bcpu}) / 100)
        . "; TCP buffers peak " . mb($p->{peak} * 4096)
        . ($p->{sleeps} ne "-" && $p->{written} ? sprintf("; the clients slept %.2f times per message, the workers were preempted %.2f times per 1,000", $p->{sleeps} / $p->{written}, $p->{preempted} * 1000 / $p->{written}) : "")
        . " |\n";
    if ($p->{stopped} && defined $fan) {
        my @v;
        push @v, [sprintf("the floor (10,000 pairs, in creation order) ÷ %d cores, %.0f ms", $e{CORES}, $floor_ms), $fan / $floor_ms]
            if $floor_ms;
        push @v, [sprintf("the floor's own fan-out with as many pairs in creation order, by %s, %.0f ms", $kind, $own_ms * $p->{want}), $fan / ($own_ms * $p->{want})]
            if $own_ms;
        push @v, [sprintf("the floor's own fan-out with as many pairs in a server's order, by %s, %.0f ms", $kind, $shuf_ms * $p->{want}), $fan / ($shuf_ms * $p->{want})]
            if $shuf_ms;
        @verdict = map { sprintf("%.2f x %s: %s", $_->[1], $_->[0], $_->[1] <= 1.2 ? "**met**" : "**not met**") } @v;
    }
}
if (@verdict) {
    $s .= "| the fan-out target (nginx alone, the push to stopped clients, ≤ 1.2 x) | " . join("; ", @verdict) . " |\n";
}
if ($cpu_push && @pushes) {
    $s .= "| CPU over the pushes (publisher runs and pauses included) | " . cpu_text($cpu_push) . " |\n";
}
if ($e{PUSHED} ne "yes") {
    $s .= "| pushes | not sent (" . ($n >= $e{CLIENTS} ? "memory" : "not all online") . ") |\n";
}
if ($e{DO_RELOAD} eq "yes") {
    $s .= "| nginx -s reload | " . ($e{RELOADED} eq "yes"
        ? "old workers gone after " . sec($e{RELOAD_OLD_GONE}) . ", all " . int_sep($e{CLIENTS}) . " back online after " . sec($e{RELOAD_BACK}) . " (lowest online " . int_sep($e{RELOAD_MIN}) . ", refused by a full worker $e{RELOAD_REFUSED})"
          . ($e{RELOAD_S} ne "" && $e{RELOAD_S} > 0 ? sprintf("; over those %.0f s: nginx %.2f, goim-bench %.2f, other processes %.2f cores busy", $e{RELOAD_S}, $e{RELOAD_CPU} / 100 / $e{RELOAD_S}, $e{RELOAD_BENCH} / 100 / $e{RELOAD_S}, ($e{RELOAD_BUSY} - $e{RELOAD_CPU} - $e{RELOAD_BENCH}) / 100 / $e{RELOAD_S}) : "")
        : "failed") . " |\n";
} else {
    $s .= "| nginx -s reload | skipped: $e{RELOAD_WHY} |\n";
}
my $connects = ($r{tcp}{connects} // 0) + ($r{ws}{connects} // 0);
$s .= "| client connects, errors | " . int_sep($connects) . " connects (" . int_sep($connects - 2 * int($e{CLIENTS} / 2)) . " reconnects), errors TCP " . ($r{tcp}{client_errors} // "n/a") . ", WS " . ($r{ws}{client_errors} // "n/a") . " (a reload's closes count here) |\n";
$s .= "| client CPU (goim-bench, all processes) | TCP " . ($r{tcp}{client_cpu_s} // "n/a") . " s, WS " . ($r{ws}{client_cpu_s} // "n/a") . " s |\n";
$s .= "| nginx CPU, whole run | " . sprintf("%.1f s", $e{CPU_TOTAL} / 100) . " |\n";
$s .= "| auths failed, clients refused (goim_max_clients) | $e{AUTH_FAILED}, $e{REFUSED} |\n";
$s .= "| listen queue overflows (namespace) | $e{OVF} |\n";
$s .= "| the clients leave (SIGINT): nginx closed their connections in | " . sec($e{T_CLOSE}) . " |\n";
$s .= "| stopping nginx (SIGQUIT, graceful) | $e{T_STOP} s" . ($e{STOP_ALERTS} ? ", $e{STOP_ALERTS} alert/crit/emerg/error lines meanwhile (error.log below)" : "") . " |\n";
$s .= "| server health until the stop | master alive $e{ALIVE}, workers gone $e{LOST}, exited on signal $e{SIGNALS}, alert/crit/emerg $e{ALERTS}, error $e{ERRORS} |\n";

# the slab caches that grew
$s .= "\nKernel slab, from nginx started to all connected (whole machine; objects per connection, bytes of the cache's slabs):\n\n";
$s .= "| cache | object B | Δ objects | per connection | Δ MB | B per connection |\n|---|---|---|---|---|---|\n";
for my $c (sort { $d{$b}[1] <=> $d{$a}[1] } keys %d) {
    next if $d{$c}[0] < $n / 10 && abs($d{$c}[1]) < 1048576;
    $s .= sprintf("| %s | %d | %s | %.2f | %.1f | %s |\n", names($c),
                  $s_full->{$c}[1],
                  int_sep($d{$c}[0]), $n ? $d{$c}[0] / $n : 0,
                  $d{$c}[1] / 1048576, per($d{$c}[1]));
}

# /proc/meminfo deltas
$s .= "\n/proc/meminfo, from nginx started to all connected: ";
$s .= join(", ", map { sprintf("%s %+.1f MB", $_, $mdelta->($_) / 1048576) }
                 grep { defined $m_full->{$_} }
                 qw(AnonPages Shmem Slab SReclaimable SUnreclaim KernelStack
                    PageTables Percpu)) . ".\n";

# the budget: per connection, and what a server with its clients
# elsewhere would hold
if ($n) {
    my $server = $d_pss + $sock_bytes / 2;
    $s .= "\nBudget per connection at " . int_sep($n) . ": nginx " . per($d_pss)
        . " B + both socket ends " . per($sock_bytes) . " B + /proc entries "
        . per($proc_bytes) . " B + other slab " . per($other_slab)
        . " B + the clients' processes " . per($b_pss * 1024) . " B. "
        . "A server whose clients are elsewhere holds nginx's share and one "
        . "socket end: about " . per($server) . " B per connection, "
        . gb($server * 1_000_000 / $n) . " for 1,000,000 (plus "
        . mb($ng_pss0 * 1024) . " for the workers themselves).\n";
}

for my $part (["run", "until the stop", $e{ALERTS} || $e{SIGNALS} || $e{ERRORS}],
              ["stop", "during the stop", $e{STOP_ALERTS}]) {
    next unless $part->[2];
    $s .= "\nerror.log $part->[1] (first lines of alert/crit/emerg/error/signal):\n\n";
    my $k = 0;
    for (split /\n/, slurp("$out/error.$part->[0]")) {
        next unless /\[(alert|crit|emerg|error)\]|exited on signal/;
        last if ++$k > 8;
        $s .= "    $_\n";
    }
}

$s .= "\ngoim-bench exit codes: TCP $e{RC_TCP}, WS $e{RC_WS} (1 is expected: "
    . "ended by SIGINT).\n";

print $s;
print STDERR $s;
exit($ok ? 0 : 1);
