#!/bin/sh
# make bench-chat: a chat-shaped load after Centrifugo's published
# million-connection benchmark, scaled to this machine.  BENCH_CHAT_CONNS
# goim connections (100,000), each in its personal room u://<id> and in
# one BENCH_CHAT_GROUP-member group room g://<i / G> (10), both joined
# through the token (room_id, room_ids: docs/PROTOCOL.md 1.14); one
# publisher POSTs ~100-byte messages to random groups
# (/goim/push/room?type=g) at BENCH_CHAT_DELIVERIES / G pushes a second
# (50,000 deliveries/s: 5,000 pushes/s); meanwhile BENCH_CHAT_RECONNECT_PCT
# (1) % of the connections a second close and reconnect with the same
# token.  goim-bench --chat accounts for every (push, member) pair:
# delivered once, missing, duplicated, or excused because the member was
# reconnecting (bench/README.md "Chat").  The report is appended to
# bench/RESULTS-100k.md, the latest run's verdict goes to
# bench/RESULTS-chat.md (bench/RESULTS.md includes it).  Loopback only;
# stops by itself (BENCH_CHAT_LIMIT watchdog) and stops everything it
# started.
#
# Steps:
#   1. (BENCH_CHAT_CALIBRATE=1) a fresh nginx, the same connections all in
#      ONE room (goim-bench --idle --rooms 1): nginx ΔPss per connection
#      without the chat's rooms; nginx stopped;
#   2. (after the TIME_WAIT sockets of earlier connections expire) a fresh nginx (6 workers at 100k: worker_connections 19000 each,
#      reuseport), memory sampled, then goim-bench --chat: connect all,
#      settle (memory: ΔPss, kernel slab and TCP pages), publish with
#      reconnects for BENCH_CHAT_DURATION s, drain, account;
#   3. while it publishes: load average, CPU of nginx, goim-bench and every
#      other process on the machine (by name), optionally a perf profile
#      of the workers (BENCH_CHAT_PERF=1);
#   4. health (master, workers, error.log), stop, report.
#
# Environment:
#   BENCH_CHAT_CONNS          connections (100000)
#   BENCH_CHAT_GROUP          group size (10)
#   BENCH_CHAT_DELIVERIES     group deliveries a second asked (50000)
#   BENCH_CHAT_RECONNECT_PCT  % of the connections reconnecting a second (1)
#   BENCH_CHAT_DURATION       seconds of publishing (20)
#   BENCH_CHAT_TRANSPORT      ws or tcp (ws)
#   BENCH_CHAT_WORKERS        worker_processes (one per 16,000, at least 2)
#   BENCH_CHAT_SOURCES        source addresses (8)
#   BENCH_CHAT_RATE           connects a second (5000)
#   BENCH_CHAT_INFLIGHT       API requests in flight (256)
#   BENCH_CHAT_MSG_SIZE       message body bytes (100)
#   BENCH_CHAT_EXCUSE_MS      goim-bench --excuse-ms (500)
#   BENCH_CHAT_CALIBRATE      1: step 1 (per-room memory), 0: skip (1)
#   BENCH_CHAT_PERF           1: perf record of the workers for 10 s (0)
#   BENCH_CHAT_MULTI_ACCEPT   on: nginx's multi_accept (on); off: one
#                             accept per event loop turn, nginx's default
#   BENCH_CHAT_PORT_BASE      ports base+1 (TCP), +2 (WS), +11 (API) (31500)
#   BENCH_CHAT_LIMIT          watchdog seconds (auto from the above)
#   BENCH_CHAT_RESULTS        report file (bench/RESULTS-100k.md)
#   BENCH_CHAT_LATEST         the latest run's verdict and table, which
#                             bench/report.pl puts into bench/RESULTS.md
#                             (bench/RESULTS-chat.md with the default
#                             BENCH_CHAT_RESULTS, else none)
#   NGINX                     nginx binary (nginx)
#
# Exit status: 0 when every client was ready, nothing was missing,
# duplicated or misrouted, and the server survived cleanly; 1 otherwise
# (the report is appended either way).

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

me=bench-chat
. "$root/bench/lib.sh"

out=build/benchchat
nginx=${NGINX:-nginx}
unset NGINX     # nginx itself reads NGINX as inherited listening sockets
conns=${BENCH_CHAT_CONNS:-100000}
group=${BENCH_CHAT_GROUP:-10}
deliveries=${BENCH_CHAT_DELIVERIES:-50000}
pct=${BENCH_CHAT_RECONNECT_PCT:-1}
duration=${BENCH_CHAT_DURATION:-20}
transport=${BENCH_CHAT_TRANSPORT:-ws}
workers=${BENCH_CHAT_WORKERS:-$(( (conns + 15999) / 16000 ))}
[ "$workers" -ge 2 ] || workers=2
sources=${BENCH_CHAT_SOURCES:-8}
rate=${BENCH_CHAT_RATE:-5000}
inflight=${BENCH_CHAT_INFLIGHT:-256}
msg_size=${BENCH_CHAT_MSG_SIZE:-100}
excuse=${BENCH_CHAT_EXCUSE_MS:-500}
calibrate=${BENCH_CHAT_CALIBRATE:-1}
perf=${BENCH_CHAT_PERF:-0}
multi_accept=${BENCH_CHAT_MULTI_ACCEPT:-on}
base=${BENCH_CHAT_PORT_BASE:-31500}
results=${BENCH_CHAT_RESULTS:-bench/RESULTS-100k.md}
# the latest run's verdict, included in bench/RESULTS.md by report.pl
latest=${BENCH_CHAT_LATEST:-}
[ -n "$latest" ] || [ "$results" != bench/RESULTS-100k.md ] \
    || latest=bench/RESULTS-chat.md

push_rate=$(( (deliveries + group - 1) / group ))
reconnects=$(( conns * pct / 100 ))
settle=3
connect_s=$(( conns / rate + 20 ))
limit=${BENCH_CHAT_LIMIT:-$(( (calibrate ? connect_s + 30 : 0) + connect_s + settle + duration + 90 + 2 * 65 ))}

tcp_port=$((base + 1))
ws_port=$((base + 2))
api_port=$((base + 11))
if [ "$transport" = ws ]; then
    server="--transport ws --server 127.0.0.1:$ws_port --ws-path /sub"
else
    server="--transport tcp --server 127.0.0.1:$tcp_port"
fi

stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
goim_module=$root/build/ngx_goim_module.so
bench=build/goim-bench

started=$(date +%s)
pid_bench=""
pid_perf=""
watchdog=""


log() {
    echo "bench-chat: $(( $(date +%s) - started ))s: $*" >&2
}


cleanup() {
    stop_pid "$pid_perf"
    stop_pid "$pid_bench"
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
"$bench" --help 2>&1 | grep -q -- --chat || die "$bench has no --chat: make tools"
case $transport in ws|tcp) ;; *) die "BENCH_CHAT_TRANSPORT is ws or tcp" ;; esac

ports_free BENCH_CHAT_PORT_BASE $tcp_port $ws_port $api_port

per_worker=$(( conns / workers ))
[ "$per_worker" -le 17000 ] \
    || die "$conns connections over $workers workers is $per_worker each:" \
           "over 17,000 of worker_connections 19000 leaves no margin"

set -- $(cat /proc/sys/net/ipv4/ip_local_port_range)
port_lo=$1
port_hi=$2
per_source=$(( (conns + sources - 1) / sources ))
[ $per_source -le $(( (port_hi - port_lo + 1) / 2 )) ] \
    || die "$per_source connections per source address: raise BENCH_CHAT_SOURCES"

( sleep "$limit"; kill -TERM $$ ) &
watchdog=$!


# --- helpers --------------------------------------------------------------------

conf() {
    rm -rf "$out/$1"
    mkdir -p "$out/$1/conf" "$out/$1/logs" "$out/$1/temp"
    {
        echo "# make bench-chat (bench/run-chat.sh): $conns connections, $workers workers"
        # 100k keys and 210k memberships in 110k rooms: ~512 B a room entry
        events_extra="    multi_accept $multi_accept;
" goim_conf "$workers" "
goim_zone goim 256m;
" "        client_body_buffer_size 64k;
        client_max_body_size 64k;
"
    } >"$out/$1/conf/nginx.conf"
}

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

kmem() {        # "slab_kb tcp_mem_pages": the kernel's, whole machine
    printf '%s %s' "$(awk '/^Slab:/ { print $2 }' /proc/meminfo)" \
        "$(awk '/^TCP:/ { for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat)"
}

busy_ticks() {  # busy ticks of the whole machine (all CPUs)
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

snapshot() {    # every process: pid comm utime+stime ticks (one process:
                # a cat per pid takes seconds on a loaded machine)
    perl -e 'for my $f (glob("/proc/[0-9]*/stat")) {
                 open(my $h, "<", $f) or next;
                 my $l = <$h> // next;
                 $l =~ /^(\d+) \((.*)\) (.*)$/s or next;
                 my ($pid, $comm, @r) = ($1, $2, split(" ", $3));
                 $comm =~ s/\s/_/g;
                 print "$pid $comm ", $r[11] + $r[12], "\n";
             }'
}

# tw_wait: until the machine holds under 5,000 TIME_WAIT sockets (65 s at
# most).  A run closes its clients first, so each leaves one per client
# for 60 s on the sources' ports; the next run's connects then spend
# their system time searching for free ports (seen: 70k left over cut
# the connect rate to a third and stalled reconnects for seconds).
tw_wait() {
    local i n
    i=0
    while [ $i -lt 65 ]; do
        n=$(ss -Htan state time-wait 2>/dev/null | wc -l)
        [ "$n" -lt 5000 ] && break
        [ $i -eq 0 ] && log "waiting for $n TIME_WAIT sockets to expire"
        sleep 1
        i=$((i + 1))
    done
    tw_left=$(ss -Htan state time-wait 2>/dev/null | wc -l)
}

# phase NAME: wait (up to the watchdog) until goim-bench's progress shows it
phase() {
    while kill -0 "$pid_bench" 2>/dev/null; do
        tail -n 3 "$1" 2>/dev/null | grep -q " $2 " && return 0
        sleep 0.2
    done
    return 1
}


# --- 1. one room: the connections' cost without the chat's rooms ----------------

pss_one=""
if [ "$calibrate" = 1 ]; then
    tw_wait
    conf one
    start_nginx "$out/one" "$workers" "http://127.0.0.1:$api_port/goim/status" 200 \
        || exit 1
    sleep 0.5
    cmd_one="$bench $server --clients $conns --sources $sources --connect-rate $rate --rooms 1 --idle --settle $settle --api 127.0.0.1:$api_port --server-pids $master"
    log "calibration: $cmd_one"
    $cmd_one >"$out/one.json" 2>"$out/one.log" &
    pid_bench=$!
    wait "$pid_bench"
    pid_bench=""
    pss_one=$(perl -MJSON::PP -e 'local $/; my $j = eval { decode_json(<STDIN>) };
                                  print $j && defined $j->{pss_per_conn_bytes} ? $j->{pss_per_conn_bytes} : ""' <"$out/one.json")
    log "calibration: nginx ΔPss ${pss_one:-?} B per connection in one room"
    stop_nginx 20
    sleep 2
fi
tw_wait


# a profile only from this run
rm -f "$out/perf.txt" "$out/perf.data"

# --- 2. the chat ------------------------------------------------------------------

conf chat
start_nginx "$out/chat" "$workers" "http://127.0.0.1:$api_port/goim/status" 200 \
    || exit 1
sleep 0.5

status base
set -- $(mem)
rss0=$1
pss0=$2
set -- $(kmem)
slab0=$1
tcpmem0=$2
ovf0=$(overflows)
shm0=$(metric "$out/status.base" 'goim_shm_bytes{state="used"}')
log "nginx $master, workers $worker_pids, Pss $pss0 kB, slab $slab0 kB"

cmd="$bench $server --clients $conns --sources $sources --connect-rate $rate --chat $group --reconnect-rate $reconnects --excuse-ms $excuse --push-rate $push_rate --msg-size $msg_size --inflight $inflight --settle $settle --duration $duration --drain 2 --api 127.0.0.1:$api_port --server-pids $master"
log "$cmd"
t0=$(date +%s)
$cmd >"$out/chat.json" 2>"$out/chat.log" &
pid_bench=$!

# connected: the settle phase; kernel memory with every socket open
phase "$out/chat.log" settle || log "goim-bench ended before settling"
t_conn=$(( $(date +%s) - t0 ))
sleep 2
status full
set -- $(kmem)
slab1=$1
tcpmem1=$2
set -- $(mem)
rss1=$1
pss1=$2
online=$(metric "$out/status.full" 'goim_online{')
shm1=$(metric "$out/status.full" 'goim_shm_bytes{state="used"}')
log "connected in ${t_conn} s: online $online, Pss $pss1 kB, slab $slab1 kB"

# publishing: the machine's load and who used the CPU
phase "$out/chat.log" measure || log "goim-bench ended before measuring"
echo $master $(children "$master") >"$out/pids.nginx"
echo $pid_bench $(children "$pid_bench") >"$out/pids.bench"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
t_m0=$(date +%s.%N)
busy0=$(busy_ticks)
snapshot >"$out/procs.0"
if [ "$perf" = 1 ] && command -v perf >/dev/null 2>&1; then
    sleep 2
    perf record -F 499 -g -o "$out/perf.data" -p "$(echo $worker_pids | tr ' ' ,)" \
        -- sleep 10 >"$out/perf.log" 2>&1 &
    pid_perf=$!
fi
phase "$out/chat.log" drain || log "goim-bench ended before draining"
t_m1=$(date +%s.%N)
busy1=$(busy_ticks)
snapshot >"$out/procs.1"
load1=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "$pid_perf" ]; then
    wait "$pid_perf"
    pid_perf=""
    perf report -i "$out/perf.data" --stdio --no-children -g none --sort dso,symbol \
        2>/dev/null | grep -v '^#' | grep '%' | head -n 25 >"$out/perf.txt"
fi

wait "$pid_bench"
rc_bench=$?
pid_bench=""
status end


# --- 3. health ----------------------------------------------------------------------

server_health
ovf=$(( $(overflows) - ovf0 ))
stop_nginx 20
elog=$out/chat/logs/error.log
signals=$(grep -c 'exited on signal' "$elog")
alerts=$(grep -c '\[alert\]\|\[crit\]\|\[emerg\]' "$elog")
errors=$(grep -c '\[error\]' "$elog")
log "alive $alive, workers gone $lost, exited on signal $signals," \
    "alert/crit/emerg $alerts, error $errors"


# --- 4. the report ----------------------------------------------------------------

mkdir -p "$(dirname "$results")"
grep -q '^# make bench-chat' "$results" 2>/dev/null || cat >>"$results" <<'EOF'

# make bench-chat: the chat shape (sections "chat" below)

`make bench-chat` (bench/run-chat.sh, goim-bench --chat) after
Centrifugo's published million-connection benchmark, scaled to this
2-core machine: connections each in a personal room and one 10-member
group room (both from the token), a publisher pushing ~100-byte
messages to random groups through `/goim/push/room`, and 1 % of the
connections closing and reconnecting every second. goim-bench accounts
for every (push, member) pair; a member that was not ready at some
moment between the push's request and 500 ms after its answer is
"excused" (goim keeps no history: a reconnecting member may miss what
was pushed meanwhile), all others must have it exactly once. CPU is
per delivered message, nginx and the clients apart; the machine is
shared with other work, shown next to each run ("other processes").
Targets (issue 15): 50,000 deliveries/s with p99 ≤ 200 ms and ≤ 4 KB of
nginx memory per connection including its two rooms.
EOF

export C_STARTED=$started C_CONNS=$conns C_GROUP=$group C_DELIV=$deliveries \
    C_PCT=$pct C_RECONN=$reconnects C_DURATION=$duration C_TRANSPORT=$transport \
    C_WORKERS=$workers C_MULTI_ACCEPT=$multi_accept \
    C_PUSH_RATE=$push_rate C_INFLIGHT=$inflight \
    C_MSG=$msg_size C_PSS_ONE=${pss_one:-} C_RSS0=$rss0 C_RSS1=$rss1 \
    C_PSS0=$pss0 C_PSS1=$pss1 C_SLAB0=$slab0 C_SLAB1=$slab1 \
    C_TCPMEM0=${tcpmem0:-0} C_TCPMEM1=${tcpmem1:-0} C_SHM0=$shm0 C_SHM1=$shm1 \
    C_ONLINE=$online C_T_CONN=$t_conn C_LOAD0="$load0" C_LOAD1="$load1" \
    C_BUSY0=$busy0 C_BUSY1=$busy1 C_T_M0=$t_m0 C_T_M1=$t_m1 \
    C_MASTER=$master C_OUT=$out C_CMD="$cmd" C_CMD_ONE="${cmd_one:-}" \
    C_ALIVE=$alive C_LOST=$lost C_SIGNALS=$signals C_ALERTS=$alerts \
    C_ERRORS=$errors C_OVF=$ovf C_RC=$rc_bench \
    C_REV=$(git rev-parse --short=12 HEAD 2>/dev/null) \
    C_TREE="$(git status --porcelain -- ngx_goim_module proto config tools/bench 2>/dev/null | wc -l)" \
    C_SO=$(sha256sum "$goim_module" | cut -c1-16) \
    C_ELAPSED=$(( $(date +%s) - started )) C_HZ=$(getconf CLK_TCK) \
    C_NPROC=$(nproc) C_TW=$tw_left C_LATEST=$latest

perl "$root/bench/report-chat.pl" >>"$results"
rc=$?
log "appended to $results"
exit $rc
