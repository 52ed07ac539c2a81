#!/bin/sh
# make bench-100k: 100,000 concurrent goim connections on this machine,
# half TCP and half WebSocket, all in one room, then a few room pushes
# to all of them.  The figures, with the exact commands, are appended to
# bench/RESULTS-100k.md.  About 2 minutes on 2 cores; never more than
# BENCH100K_LIMIT seconds (a watchdog stops everything).
#
# Limits that shape the setup (bench/README.md "Scale"):
#   - every process may hold 20,000 open files, so nginx runs 6 workers
#     (worker_rlimit_nofile 20000, worker_connections 19000; 5 x 20,000
#     would leave nothing for listeners and inboxes) and the clients run
#     as 2 x 3 goim-bench processes (~16,700 sockets each);
#   - "listen ... reuseport" on the TCP, WebSocket and API listeners, so
#     the kernel spreads the connections over the 6 workers;
#   - a source address has ~28,000 ephemeral ports per destination
#     (net.ipv4.ip_local_port_range, left as it is), and run.sh saw
#     connects stall near half of that; 8 source addresses
#     127.0.0.1..127.0.0.8 give each of them 6,250 per destination;
#   - goim_zone 64m: 100,000 keys and members take ~20 MB of it.
#
# Steps:
#   1. render build/bench100k/conf/nginx.conf (private prefix), start
#      nginx, sample the memory of master + workers (VmRSS and Pss);
#   2. start two goim-bench --idle runs in parallel, 50,000 TCP clients
#      (mids/keys 0..49999) and 50,000 WebSocket clients (--id-base
#      50000, so that no key replaces another), all in room bench://0;
#   3. wait until goim_status's goim_online, summed over the workers,
#      reaches 100,000, then sample memory again: ΔRSS per connection;
#   4. a third goim-bench (one TCP client, mid 100000, same room) pushes
#      BENCH100K_PUSHES room messages at 1/s through the API; when the
#      server has written them all (or 15 s passed) the two idle runs are
#      ended with SIGINT and report what their clients received and the
#      push-to-receive latency;
#   5. check that master and workers survived and scan error.log, stop
#      everything, append the report.
#
# Environment:
#   BENCH100K_CLIENTS    clients, half TCP half WS (100000)
#   BENCH100K_WORKERS    worker_processes (6)
#   BENCH100K_SOURCES    source addresses per run (8)
#   BENCH100K_PROCS      goim-bench processes per run (3)
#   BENCH100K_RATE       connects/s per run (5000)
#   BENCH100K_PUSHES     room pushes at 1/s (5)
#   BENCH100K_PORT_BASE  ports base+1 (TCP), +2 (WS), +11 (API) (31300)
#   BENCH100K_LIMIT      seconds before the watchdog stops the run (280)
#   BENCH100K_RESULTS    report file (bench/RESULTS-100k.md)
#   NGINX                nginx binary (nginx)
#
# Exit status: 0 when every client was online, every push was delivered
# to every client, and the server survived with no crash or alert; 1
# otherwise (the figures are appended anyway).

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

me=bench-100k
. "$root/bench/lib.sh"

out=build/bench100k
nginx=${NGINX:-nginx}
unset NGINX     # nginx itself reads NGINX as inherited listening sockets
clients=${BENCH100K_CLIENTS:-100000}
workers=${BENCH100K_WORKERS:-6}
sources=${BENCH100K_SOURCES:-8}
procs=${BENCH100K_PROCS:-3}
rate=${BENCH100K_RATE:-5000}
pushes=${BENCH100K_PUSHES:-5}
base=${BENCH100K_PORT_BASE:-31300}
limit=${BENCH100K_LIMIT:-280}
results=${BENCH100K_RESULTS:-bench/RESULTS-100k.md}

tcp_port=$((base + 1))
ws_port=$((base + 2))
api_port=$((base + 11))

stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
goim_module=$root/build/ngx_goim_module.so
bench=build/goim-bench

half=$((clients / 2))
hold=$((limit - 60))        # the idle runs' --settle: ended by SIGINT

started=$(date +%s)
pid_tcp=""
pid_ws=""
pid_pub=""
watchdog=""


log() {
    echo "bench-100k: $(( $(date +%s) - started ))s: $*" >&2
}


cleanup() {
    stop_pid "$pid_pub"
    stop_pid "$pid_tcp"
    stop_pid "$pid_ws"
    stop_nginx 20
    if [ -n "$watchdog" ]; then
        kids=$(children "$watchdog")
        kill "$watchdog" $kids 2>/dev/null
    fi
}

set_traps "stopped (signal or the ${limit} s watchdog)"


# --- checks -------------------------------------------------------------------

check_setup "$goim_module" "$bench"
command -v perl >/dev/null 2>&1 || die "perl not found"
"$bench" --help 2>&1 | grep -q -- --id-base \
    || die "$bench has no --id-base: make tools"

ports_free BENCH100K_PORT_BASE $tcp_port $ws_port $api_port

# per-process descriptors: every worker holds up to 19,000 connections
per_worker=$(( clients / workers ))
[ "$per_worker" -le 17000 ] \
    || die "$clients clients over $workers workers is $per_worker each:" \
           "over 17,000 of worker_connections 19000 leaves no margin"

# (not read: dash reads /proc byte by byte and gets only the first digit)
set -- $(cat /proc/sys/net/ipv4/ip_local_port_range)
port_lo=$1
port_hi=$2
ports=$((port_hi - port_lo + 1))
per_source=$(( (half + sources - 1) / sources ))
[ $per_source -le $((ports / 2)) ] \
    || die "$per_source connections per source address and destination" \
           "for $ports ephemeral ports: raise BENCH100K_SOURCES"

# the watchdog: the whole run is bounded whatever happens below
( sleep "$limit"; kill -TERM $$ ) &
watchdog=$!


# --- nginx ----------------------------------------------------------------------

rm -rf "$out"
mkdir -p "$out/conf" "$out/logs" "$out/temp"

{
    echo "# make bench-100k (bench/run-100k.sh): 100,000 connections, $workers workers"
    goim_conf "$workers" "
goim_zone goim 64m;
" "        client_body_buffer_size 64k;
        client_max_body_size 64k;
"
} >"$out/conf/nginx.conf"

start_nginx "$out" "$workers" "http://127.0.0.1:$api_port/goim/status" 200 \
    || exit 1
sleep 0.5


# --- samplers -------------------------------------------------------------------

status() {      # goim_status into $out/status.<name>
    curl -s -m 5 "http://127.0.0.1:$api_port/goim/status" \
        >"$out/status.$1" 2>/dev/null
}

metric() {      # metric FILE PREFIX: the sum of the series starting so
    awk -v m="$2" 'index($0, m) == 1 { s += $NF }
                   END { printf "%.0f", s }' "$1" 2>/dev/null
}

mem() {         # "rss_kb pss_kb" summed over master and workers
    for p in $master $(children "$master"); do
        awk '/^VmRSS:/ { print "rss", $2 }' "/proc/$p/status" 2>/dev/null
        awk '/^Pss:/ { print "pss", $2 }' "/proc/$p/smaps_rollup" 2>/dev/null
    done | awk '{ s[$1] += $2 } END { printf "%d %d", s["rss"], s["pss"] }'
}

slab() {        # the kernel's slab in kB (whole machine: sockets, epoll)
    awk '/^Slab:/ { print $2 }' /proc/meminfo
}

cpu_ticks() {   # utime + stime ticks of master and workers
    proc_ticks $master $(children "$master")
}

busy_ticks() {  # busy ticks of the whole machine (all CPUs)
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

bench_ticks() { # utime + stime ticks of the goim-bench processes
    proc_ticks $pid_tcp $(children "$pid_tcp") $pid_ws $(children "$pid_ws") \
               $pid_pub
}

status base
set -- $(mem)
rss0=$1
pss0=$2
slab0=$(slab)
ovf0=$(overflows)
shm0=$(metric "$out/status.base" 'goim_shm_bytes{state="used"}')
log "nginx $master, workers $worker_pids, RSS $rss0 kB, Pss $pss0 kB," \
    "zone used $shm0 B"


# --- 100,000 clients ----------------------------------------------------------------

common="--clients $half --procs $procs --sources $sources --connect-rate $rate --rooms 1 --idle --settle $hold --api 127.0.0.1:$api_port"
cmd_tcp="$bench --transport tcp --server 127.0.0.1:$tcp_port $common --server-pids $master"
cmd_ws="$bench --transport ws --server 127.0.0.1:$ws_port --ws-path /sub --id-base $half $common --server-pids $master"
cmd_pub="$bench --transport tcp --server 127.0.0.1:$tcp_port --clients 1 --id-base $clients --rooms 1 --push-rate 1 --duration $pushes --settle 1 --drain 10 --api 127.0.0.1:$api_port --server-pids $master"

log "$cmd_tcp"
log "$cmd_ws"
t_conn0=$(date +%s.%N)
cpu0=$(cpu_ticks)
$cmd_tcp >"$out/tcp.json" 2>"$out/tcp.log" &
pid_tcp=$!
$cmd_ws >"$out/ws.json" 2>"$out/ws.log" &
pid_ws=$!

# the connect budget of goim-bench is clients/rate + 10 s; give it 20 more
budget=$(( half / rate + 30 ))
online=0
peak_online=0
i=0
while [ $i -lt $budget ]; do
    sleep 1
    i=$((i + 1))
    status conn
    online=$(metric "$out/status.conn" 'goim_online{')
    conns=$(metric "$out/status.conn" 'goim_connections{')
    [ "${online:-0}" -gt "$peak_online" ] && peak_online=$online
    if [ $((i % 5)) -eq 0 ] || [ "${online:-0}" -ge "$clients" ]; then
        log "connections $conns, online $online of $clients;" \
            "tcp: $(tail -n 1 "$out/tcp.log" | sed 's/^goim-bench: *//')"
    fi
    [ "${online:-0}" -ge "$clients" ] && break
    kill -0 "$pid_tcp" 2>/dev/null && kill -0 "$pid_ws" 2>/dev/null \
        || { log "a goim-bench run ended early"; break; }
done
t_conn=$(echo "$t_conn0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
cpu_conn=$(( $(cpu_ticks) - cpu0 ))

all_online=false
[ "${online:-0}" -ge "$clients" ] && all_online=true
log "online $online of $clients after $t_conn s (all: $all_online)"

# let allocations settle, then the memory per connection
sleep 3
status full
set -- $(mem)
rss1=$1
pss1=$2
slab1=$(slab)
online_full=$(metric "$out/status.full" 'goim_online{')
shm1=$(metric "$out/status.full" 'goim_shm_bytes{state="used"}')
shm_free=$(metric "$out/status.full" 'goim_shm_bytes{state="free"}')
log "online $online_full, RSS $rss1 kB, Pss $pss1 kB, zone used $shm1 B"


# --- room pushes ------------------------------------------------------------------

# the server's writes once a second while the pushes fan out, until all
# of them are written (or 20 s after the publisher ended)
written0=$(metric "$out/status.full" 'goim_messages_written_total{')
want=$((pushes * (online_full + 1)))
log "$cmd_pub"
cpu_push0=$(cpu_ticks)
busy0=$(busy_ticks)
t_pub0=$(date +%s.%N)
$cmd_pub >"$out/pub.json" 2>"$out/pub.log" &
pid_pub=$!
bench0=$(bench_ticks)
: >"$out/fanout.txt"
written=0
t_done=""
cpu_push=""
bench_push=0
busy_push=0
after=0
while [ $after -lt 20 ]; do
    sleep 1
    status push
    now=$(echo "$t_pub0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
    written=$(( $(metric "$out/status.push" 'goim_messages_written_total{') - written0 ))
    echo "$now $written" >>"$out/fanout.txt"
    if [ -z "$t_done" ] && [ $written -ge $want ]; then
        t_done=$now
        cpu_push=$(( $(cpu_ticks) - cpu_push0 ))
        bench_push=$(( $(bench_ticks) - bench0 ))
        busy_push=$(( $(busy_ticks) - busy0 ))
    fi
    if ! kill -0 "$pid_pub" 2>/dev/null; then
        [ -n "$t_done" ] && break
        after=$((after + 1))
    fi
done
wait "$pid_pub"
rc_pub=$?
pid_pub=""
[ -n "$cpu_push" ] || cpu_push=$(( $(cpu_ticks) - cpu_push0 ))
members=$((online_full + 1))
sent=$(perl -MJSON::PP -e 'local $/; my $j = eval { decode_json(<STDIN>) };
                           print $j ? $j->{sent} : 0' <"$out/pub.json")
want=$((sent * members))
log "pushes sent $sent, messages written $written of $want" \
    "(all written ${t_done:-never} s after the publisher started)"

# end the idle runs: they report what their clients received
for p in $pid_tcp $pid_ws; do
    kill -INT "$p" 2>/dev/null
done
wait "$pid_tcp"
rc_tcp=$?
wait "$pid_ws"
rc_ws=$?
pid_tcp=""
pid_ws=""
status end
auth_ok=$(awk '/^goim_auth_total\{.*result="ok"/ { s += $NF } END { printf "%.0f", s }' "$out/status.end")
auth_failed=$(awk '/^goim_auth_total\{.*result="failed"/ { s += $NF } END { printf "%.0f", s }' "$out/status.end")
dropped=$(( $(metric "$out/status.end" 'goim_dropped_total{') - $(metric "$out/status.full" 'goim_dropped_total{') ))


# --- the server's health -----------------------------------------------------------

server_health
ovf=$(( $(overflows) - ovf0 ))
cpu_total=$(( $(cpu_ticks) - cpu0 ))

stop_nginx 20

elog=$out/logs/error.log
signals=$(grep -c 'exited on signal' "$elog")
alerts=$(grep -c '\[alert\]\|\[crit\]\|\[emerg\]' "$elog")
errors=$(grep -c '\[error\]' "$elog")
log "alive $alive, workers gone $lost, exited on signal $signals," \
    "alert/crit/emerg $alerts, error $errors"


# --- the report ---------------------------------------------------------------------

mkdir -p "$(dirname "$results")"
[ -s "$results" ] || cat >"$results" <<'EOF'
# make bench-100k: 100,000 concurrent connections

`make bench-100k` (bench/run-100k.sh) runs one nginx with the goim module,
6 workers (worker_rlimit_nofile 20000, worker_connections 19000,
reuseport listeners, goim_zone 64m), connects 50,000 TCP and 50,000
WebSocket clients into one room with two goim-bench runs in parallel,
reports the connected count from goim_status and the server's memory per
connection, then pushes a few room messages to all of them and reports
the delivered share and the latency. Each run appends a section below.

Reading the figures:

- ΔRSS sums VmRSS over master and workers, so pages of the shared zone
  count once per worker that touched them; ΔPss counts them once. Both
  are the server's user-space memory only; the kernel's socket memory
  is in "kernel slab Δ", for the whole machine (both ends of every
  loopback connection, the clients' epoll), so it is an upper bound.
- The clients run on the same 2 cores as the 6 workers (and whatever
  else the machine runs: "other processes"). A room push to 100,000
  means 100,000 socket writes and 100,000 client reads; when that takes
  more than the 1 s between pushes, the pushes queue and the latency
  grows with each one: p50/p99 then show that backlog, "fan-out" shows
  the rate the machine managed.
- Latency is from the publisher building the API request to the client
  reading the message, with goim_room_flush at its default 100ms.
EOF

export B_STARTED=$started B_CLIENTS=$clients B_WORKERS=$workers \
    B_SOURCES=$sources B_PROCS=$procs B_RATE=$rate B_PUSHES=$pushes \
    B_RSS0=$rss0 B_RSS1=$rss1 B_PSS0=$pss0 B_PSS1=$pss1 \
    B_SLAB0=$slab0 B_SLAB1=$slab1 B_SHM0=$shm0 B_SHM1=$shm1 \
    B_SHM_FREE=$shm_free B_ONLINE=$online_full B_PEAK=$peak_online \
    B_T_CONN=$t_conn B_CPU_CONN=$cpu_conn B_CPU_TOTAL=$cpu_total \
    B_SENT=$sent B_MEMBERS=$members B_WRITTEN=$written \
    B_T_DONE=${t_done:-} B_CPU_PUSH=$cpu_push \
    B_BENCH_PUSH=$bench_push B_BUSY_PUSH=$busy_push \
    B_AUTH_OK=$auth_ok B_AUTH_FAILED=$auth_failed B_DROPPED=$dropped \
    B_TREE="$(git status --porcelain -- ngx_goim_module proto config tools/bench 2>/dev/null | wc -l)" \
    B_ALIVE=$alive B_LOST=$lost B_SIGNALS=$signals B_ALERTS=$alerts \
    B_ERRORS=$errors B_OVF=$ovf B_RC_TCP=$rc_tcp B_RC_WS=$rc_ws \
    B_RC_PUB=$rc_pub B_OUT=$out B_PORTS="$port_lo-$port_hi" \
    B_CMD_TCP="$cmd_tcp" B_CMD_WS="$cmd_ws" B_CMD_PUB="$cmd_pub" \
    B_REV=$(git rev-parse --short=12 HEAD 2>/dev/null) \
    B_SO=$(sha256sum "$goim_module" | cut -c1-16) \
    B_ELAPSED=$(( $(date +%s) - started )) \
    B_LOAD=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)

perl -MJSON::PP -e '
    use strict;
    use warnings;

    my %e = map { (substr($_, 2) => $ENV{$_}) } grep { /^B_/ } keys %ENV;
    my $out = $e{OUT};

    sub load {
        open(my $f, "<", $_[0]) or return {};
        my $last;
        while (<$f>) { $last = $_ if /^\{/ }
        close $f;
        return $last ? (eval { decode_json($last) } || {}) : {};
    }

    my %r = (tcp => load("$out/tcp.json"), ws => load("$out/ws.json"),
             pub => load("$out/pub.json"));

    # per worker: connections (both transports) and online, end of connect
    my (%conn, %onl, @workers);
    if (open(my $f, "<", "$out/status.full")) {
        while (<$f>) {
            if (/^goim_connections\{worker="(\d+)",pid="\d+",transport="(\w+)"\} (\d+)/) {
                $conn{$1}{$2} = $3;
            } elsif (/^goim_online\{worker="(\d+)",pid="\d+"\} (\d+)/) {
                $onl{$1} = $2;
            }
        }
    }
    @workers = sort { $a <=> $b } keys %onl;
    my $spread = join(", ", map {
        sprintf("%d+%d", $conn{$_}{tcp} // 0, $conn{$_}{ws} // 0)
    } @workers);

    my $n = $e{ONLINE} || 0;
    my $drss = $e{RSS1} - $e{RSS0};
    my $dpss = $e{PSS1} - $e{PSS0};
    my $dslab = $e{SLAB1} - $e{SLAB0};
    my $per = sub { $n ? sprintf("%.0f", $_[0] * 1024 / $n) : "n/a" };

    my $delivered = 0;
    $delivered += ($r{$_}{delivered} // 0) for qw(tcp ws pub);
    my $expected = $e{SENT} * $e{MEMBERS};
    my $share = $expected ? $delivered / $expected : 0;

    my $ok = $e{ONLINE} >= $e{CLIENTS} && $e{SENT} == $e{PUSHES}
             && $delivered == $expected && $e{ALIVE} eq "true"
             && $e{LOST} == 0 && $e{SIGNALS} == 0 && $e{ALERTS} == 0
             && $e{AUTH_FAILED} == 0 && $e{DROPPED} == 0;

    my @t = gmtime($e{STARTED});
    my $date = sprintf("%04d-%02d-%02d %02d:%02d UTC", $t[5] + 1900,
                       $t[4] + 1, $t[3], $t[2], $t[1]);

    my $lat = sub {
        my $j = $_[0];
        return "n/a" unless defined $j->{lat_p50_ms};
        sprintf("%.0f / %.0f / %.0f / %.0f", $j->{lat_p50_ms},
                $j->{lat_p90_ms}, $j->{lat_p99_ms}, $j->{lat_max_ms});
    };

    my $s = "";
    $s .= "\n## $date: " . ($ok ? "all $e{CLIENTS} online, every push delivered"
                                : "NOT CLEAN (see below)") . "\n\n";
    my $tree = $e{TREE} ? " + $e{TREE} uncommitted changes in ngx_goim_module/, proto/, config or tools/bench/" : "";
    $s .= "rev $e{REV}$tree, module sha256 $e{SO}…, "
        . "$e{ELAPSED} s in all, load $e{LOAD} at the end, "
        . "ip_local_port_range $e{PORTS} (unchanged)\n\n";
    $s .= "Commands (the server pid was the nginx master):\n\n";
    $s .= "    make bench-100k    # sh bench/run-100k.sh\n";
    $s .= "    $_\n" for ($e{CMD_TCP}, $e{CMD_WS});
    $s .= "    # once goim_online summed to $e{CLIENTS}:\n";
    $s .= "    $e{CMD_PUB}\n";
    $s .= "    # then SIGINT to the two --idle runs: they report what they received\n\n";

    $s .= "| figure | value |\n|---|---|\n";
    $s .= "| online (goim_status, sum of goim_online) | **$e{ONLINE}** of $e{CLIENTS} (+1 publisher client later) |\n";
    $s .= "| per worker, TCP+WS connections | $spread |\n";
    $s .= "| time to all online | $e{T_CONN} s (nginx CPU " . sprintf("%.1f", $e{CPU_CONN} / 100) . " s) |\n";
    $s .= "| nginx ΔRSS (master + $e{WORKERS} workers) | " . sprintf("%.1f MB", $drss / 1024) . " = **" . $per->($drss) . " B per connection** |\n";
    $s .= "| nginx ΔPss (shared zone counted once) | " . sprintf("%.1f MB", $dpss / 1024) . " = " . $per->($dpss) . " B per connection |\n";
    $s .= "| kernel slab Δ (whole machine: both socket ends, client epoll) | " . sprintf("%.1f MB", $dslab / 1024) . " = " . $per->($dslab) . " B per connection |\n";
    $s .= "| goim_zone used | " . sprintf("%.1f MB of 64 MB (%.1f MB free)", $e{SHM1} / 1048576, $e{SHM_FREE} / 1048576) . " |\n";
    $s .= "| room pushes sent (API code 0) | $e{SENT} of $e{PUSHES}, api errors " . ($r{pub}{api_errors} // "n/a") . " |\n";
    $s .= "| messages written (goim_status) | $e{WRITTEN} of " . $e{SENT} * $e{MEMBERS} . " |\n";
    if (open(my $f, "<", "$out/fanout.txt")) {
        my ($prev_t, $prev_w, $peak) = (0, 0, 0);
        my @tl;
        while (<$f>) {
            my ($t, $w) = split;
            my $r = $t > $prev_t ? ($w - $prev_w) / ($t - $prev_t) : 0;
            $peak = $r if $r > $peak;
            push @tl, sprintf("%.0fs %d", $t, $w);
            ($prev_t, $prev_w) = ($t, $w);
            last if $w >= $e{WRITTEN};
        }
        $s .= "| messages written, once a second after the publisher started | " . join(", ", @tl) . " |\n";
        if ($e{T_DONE} ne "" && $e{T_DONE} > 1) {
            $s .= "| fan-out | all written $e{T_DONE} s after the publisher started (pushes at about 1..$e{PUSHES} s): "
                . sprintf("%.0f", $e{WRITTEN} / ($e{T_DONE} - 1)) . " messages/s from the first push to the last write, "
                . sprintf("%.0f", $peak) . "/s in the best second |\n";
        }
        $s .= "| nginx CPU over the fan-out | " . sprintf("%.1f s = %.1f µs per message written", $e{CPU_PUSH} / 100, $e{WRITTEN} ? $e{CPU_PUSH} * 1e4 / $e{WRITTEN} : 0) . " |\n";
        if ($e{T_DONE} ne "" && $e{T_DONE} > 0) {
            my $w = $e{T_DONE};
            my $others = ($e{BUSY_PUSH} - $e{CPU_PUSH} - $e{BENCH_PUSH}) / 100 / $w;
            $others = 0 if $others < 0;
            $s .= "| the 2 cores over those $w s | " . sprintf("nginx %.2f, goim-bench %.2f, other processes %.2f cores busy", $e{CPU_PUSH} / 100 / $w, $e{BENCH_PUSH} / 100 / $w, $others) . " |\n";
        }
    }
    $s .= "| delivered (clients, fresh ts) | **$delivered of $expected = " . sprintf("%.4f", $share) . "** (TCP " . ($r{tcp}{delivered} // "n/a") . ", WS " . ($r{ws}{delivered} // "n/a") . ", publisher client " . ($r{pub}{delivered} // "n/a") . ") |\n";
    $s .= "| latency p50 / p90 / p99 / max, TCP clients | " . $lat->($r{tcp}) . " ms |\n";
    $s .= "| latency p50 / p90 / p99 / max, WS clients | " . $lat->($r{ws}) . " ms |\n";
    $s .= "| client errors (failed or dropped, reconnected) | TCP " . ($r{tcp}{client_errors} // "n/a") . ", WS " . ($r{ws}{client_errors} // "n/a") . "; connects TCP " . ($r{tcp}{connects} // "n/a") . ", WS " . ($r{ws}{connects} // "n/a") . " |\n";
    $s .= "| client CPU (goim-bench, all processes) | TCP " . ($r{tcp}{client_cpu_s} // "n/a") . " s, WS " . ($r{ws}{client_cpu_s} // "n/a") . " s |\n";
    $s .= "| nginx CPU, whole run | " . sprintf("%.1f s", $e{CPU_TOTAL} / 100) . " |\n";
    $s .= "| auths (goim_auth_total) | ok $e{AUTH_OK}, failed $e{AUTH_FAILED} |\n";
    $s .= "| pushes dropped (goim_dropped_total, queue_full + inbox_full) | $e{DROPPED} |\n";
    $s .= "| listen queue overflows | $e{OVF} |\n";
    $s .= "| server health | master alive $e{ALIVE}, workers gone $e{LOST}, exited on signal $e{SIGNALS}, alert/crit/emerg $e{ALERTS}, error $e{ERRORS} |\n";

    if ($e{ALERTS} || $e{SIGNALS} || $e{ERRORS}) {
        $s .= "\nerror.log (first lines of alert/crit/emerg/error/signal):\n\n";
        if (open(my $f, "<", "$out/logs/error.log")) {
            my $k = 0;
            while (<$f>) {
                next unless /\[(alert|crit|emerg|error)\]|exited on signal/;
                last if ++$k > 15;
                s/\s+$//;
                $s .= "    $_\n";
            }
        }
    }

    $s .= "\ngoim-bench exit codes: TCP $e{RC_TCP}, WS $e{RC_WS} (1 is expected: "
        . "ended by SIGINT, \"completed\":false), publisher $e{RC_PUB}.\n";

    print $s;
    print STDERR $s;
    exit($ok ? 0 : 1);
' >>"$results"
rc=$?

log "appended to $results"
exit $rc
