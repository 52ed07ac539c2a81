#!/bin/sh
# make bench-1m: up to 1,000,000 concurrent goim connections on one nginx
# on this machine, half TCP and half WebSocket, all in one room; then
# room pushes and a broadcast to all of them, an nginx -s reload with
# all of them connected (when the registry has the slots), and where the
# memory went.  The figures, with the commands, kernel settings and
# versions, are appended to bench/RESULTS-1M.md.  Every run stops by
# itself (a watchdog, BENCH_1M_LIMIT) and stops what it started.
#
# It runs in a network namespace of its own (ip netns add; this script
# re-runs itself inside it with ip netns exec, and deletes it at the
# end), so the sysctls it sets there (ephemeral port range, listen
# backlogs, tcp_rmem/tcp_wmem) never touch the host's and vanish with the
# namespace.  The namespace gets its own TCP established hash, sized for
# the run (BENCH_1M_EHASH): the host's tcp_child_ehash_entries is set
# for the instant the namespace is made and put back at once.  Nothing
# else global is changed.  Without the right to make a namespace it runs
# on the host's loopback with the host's settings, unchanged.
#
# What shapes the setup (bench/RESULTS-1M.md explains each):
#   - 20,000 open files per process: nginx runs W workers (auto: one per
#     19,000 clients) with worker_rlimit_nofile 20000, goim_max_clients
#     19600 (each worker also holds the reuseport listeners of all W
#     workers and a channel to each), and the clients run as 2 x P
#     goim-bench processes of at most 19,500 sockets each;
#   - worker_connections 21000, over the open files: once fewer than
#     1/16 of worker_connections are free, nginx closes idle keep-alive
#     and not yet upgraded WebSocket connections ("worker_connections are
#     not enough, reusing connections"), the API's among them; 19,600
#     clients must leave that 1/16 free;
#   - a reload runs the old and the new generation side by side: the
#     registry has twice W worker slots (goim_worker_slots' default, at
#     least 64, at most 1024: NGX_GOIM_MAX_WORKERS), so W is at most 512;
#   - ephemeral ports: inside the namespace ip_local_port_range is
#     1024-65535; each client run uses S source addresses 127.0.0.1..S
#     so that no source address needs more than half of the range;
#   - heartbeats: goim_heartbeat 4m (goim's default and maximum), and the
#     clients heartbeat every 240 s, spread over the interval;
#   - goim_zone: 320 B per client plus the inboxes (auto).
#
# Steps:
#   0. checks: binaries, memory (refuses when the estimate would leave
#      less than BENCH_1M_RESERVE_GB free), open files of the machine;
#   1. goim-floor on 10,000 loopback pairs, W=cores writers: the kernel's
#      CPU per write(), the floor of one push to N = that x N / cores;
#   2. nginx (private prefix build/bench1m), samples: /proc/meminfo,
#      /proc/slabinfo, sockstat, nginx RSS/Pss;
#   3. two goim-bench --idle runs, N/2 TCP and N/2 WebSocket clients;
#      wait until goim_online sums to N (a memory guard stops the connect
#      phase if MemAvailable falls under the reserve: the largest count
#      is then what is measured); settle, samples again;
#   4. BENCH_1M_IDLE s with nothing but heartbeats: nginx CPU per
#      heartbeat;
#   5. BENCH_1M_PUSHES room pushes, one at a time, then one push/all;
#      each is a short goim-bench publisher run (one more client, in the
#      room) with its own seq; the idle runs count each seq's deliveries
#      and the first and last latency (publish to the client's read);
#      then, unless BENCH_1M_STOPPED_PUSH=no, one more room push with
#      the idle clients stopped (SIGSTOP) until nginx wrote it to every
#      socket, as clients on other machines take no CPU from the
#      server: the server's own fan-out; they read it once continued;
#   6. nginx -s reload if the registry's slots allow 2 x W: the old
#      workers drain (goim_shutdown_drain N / 5,000 s, 30 s at least),
#      the clients reconnect to the new ones; the wait allows the drain
#      plus 1.5 x the time the first connects took;
#   7. SIGINT to the idle runs (they report), the server's health and
#      error.log, nginx stopped gracefully (QUIT, as Debian's
#      nginx.service does);
#   8. the floor again with N pairs open at once (bench/floor-n.sh:
#      N / 19,000 goim-floor instances side by side, then one message
#      from all of them to every socket at one moment: the floor's own
#      fan-out), then once more with each instance writing its sockets
#      in a random order (FLOOR_N_SHUFFLE=yes, one test round): a
#      server writes its connections in no order the kernel made them
#      in, so that fan-out is the floor nginx's is held to; unless
#      BENCH_1M_FLOOR_N=no; stop everything, append the report (its
#      inputs in build/bench1m/report.env).
#
# Environment:
#   BENCH_1M_CLIENTS     clients, half TCP half WS (1000000)
#   BENCH_1M_WORKERS     worker_processes (auto: clients / 19,000, up)
#   BENCH_1M_SOURCES     source addresses per run (auto)
#   BENCH_1M_RATE        connects/s, both runs together (12000)
#   BENCH_1M_PENDING     clients between connect and auth reply, all
#                        processes together (2000): connects wait beyond
#                        it, so that the server's accept queues stay short
#   BENCH_1M_BUFS        default: the kernel's socket buffer sizes;
#                        small: tcp_rmem/tcp_wmem "4096 4096 <max>" in the
#                        namespace and --sockbuf 4096 on the clients
#   BENCH_1M_PUSHES      room pushes, one at a time (3)
#   BENCH_1M_STOPPED_PUSH  yes (a last room push with the idle clients
#                        stopped while nginx writes it), no
#   BENCH_1M_IDLE        seconds of heartbeats only (20)
#   BENCH_1M_HEARTBEAT   the clients' heartbeat interval in s (240)
#   BENCH_1M_RELOAD      auto (when the slots allow), no
#   BENCH_1M_RESERVE_GB  GiB of MemAvailable the run leaves to others (6)
#   BENCH_1M_PORT_BASE   ports base+1 (TCP), +2 (WS), +11 (API) (31400)
#   BENCH_1M_LIMIT       seconds before the watchdog stops the run
#                        (600 + 4 x clients / 1000)
#   BENCH_1M_RESULTS     report file (bench/RESULTS-1M.md)
#   BENCH_1M_FLOOR_N     yes (the floor with N pairs after nginx stopped,
#                        in creation order and shuffled), no
#   BENCH_1M_CLIENT_SCHED  batch: the idle clients run under SCHED_BATCH
#                        (chrt --batch 0), so that a write that wakes one
#                        does not preempt the nginx worker, as clients on
#                        other machines would not; normal: they do (the
#                        runs before 2026-12-07)
#   BENCH_1M_READ_PAUSE  ms the idle clients sleep after each turn that
#                        read something, once connected (0: none): the
#                        server's writes queue for them instead of
#                        waking them one by one (no clear effect at
#                        100k or 1M with SCHED_BATCH clients, 2026-12-07)
#   BENCH_1M_IO_URING    on (goim_io_uring, the default), off: the
#                        workers write each socket with send()
#   BENCH_1M_EHASH       the namespace's TCP established hash buckets: auto
#                        (2 per client, a power of two, when the host's
#                        table is smaller), 0 (share the host's), or N
#   BENCH_1M_PERF        S: perf record -g of the nginx workers for the
#                        first S s of a push, into
#                        build/bench1m/perf.data (off)
#   BENCH_1M_PERF_SEQ    which push BENCH_1M_PERF records: 1 (the
#                        default) to 5; 5 is the push with the clients
#                        stopped (BENCH_1M_STOPPED_PUSH), nginx alone
#   BENCH_1M_PERF_AT     N: the same while connecting, once N are online,
#                        into build/bench1m/perf-connect.data
#   NGINX                nginx binary (nginx)
#
# Exit status: 0 when every client was online, every push was delivered
# to every client, the reload (if done) brought them all back, and the
# server survived with no crash or alert; 1 otherwise (the figures are
# appended anyway); 2 when the run refused to start.

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

me=bench-1m
die_rc=2
. "$root/bench/lib.sh"

started=$(date +%s)


# --- the namespace ----------------------------------------------------------------

# ehash_for N: the TCP established hash size for N clients (2 sockets
# each on loopback), 0 when the host's own table is as large
ehash_for() {
    local want size host

    want=$(( 2 * $1 + 16384 ))
    host=$(cat /proc/sys/net/ipv4/tcp_ehash_entries 2>/dev/null)
    host=${host#-}
    [ "${host:-0}" -ge "$want" ] && { echo 0; return; }
    size=65536
    while [ $size -lt "$want" ] && [ $size -lt 16777216 ]; do
        size=$((size * 2))
    done
    echo $size
}

if [ "${BENCH_1M_NETNS:-}" != inside ]; then
    ns=goim-bench1m-$$
    ehash=${BENCH_1M_EHASH:-auto}
    [ "$ehash" = auto ] && ehash=$(ehash_for "${BENCH_1M_CLIENTS:-1000000}")
    child=/proc/sys/net/ipv4/tcp_child_ehash_entries

    # A namespace made while tcp_child_ehash_entries is set gets its own
    # TCP established hash of that size; the host's value is put back at
    # once, so only this namespace has it.
    old=""
    if [ "$ehash" != 0 ] && [ -w "$child" ]; then
        old=$(cat "$child")
        echo "$ehash" >"$child" 2>/dev/null || old=""
    fi
    made=no
    command -v ip >/dev/null 2>&1 && ip netns add "$ns" 2>/dev/null && made=yes
    [ -n "$old" ] && echo "$old" >"$child"
    [ -n "$old" ] || ehash=0

    if [ $made = yes ]; then
        trap 'ip netns delete "$ns" 2>/dev/null' EXIT
        trap 'exit 130' INT TERM HUP

        # global, not in the namespace: read here for the report
        BENCH_1M_TCP_MEM=$(tr '\t' ' ' </proc/sys/net/ipv4/tcp_mem)
        BENCH_1M_EHASH_SET=$ehash
        export BENCH_1M_NETNS=inside BENCH_1M_TCP_MEM BENCH_1M_EHASH_SET
        ip netns exec "$ns" sh "$0" "$@"
        exit $?
    fi

    echo "$me: cannot make a network namespace (ip netns add):" \
         "on the host's loopback, its sysctls unchanged" >&2
    netns=host
else
    netns=own
    ip link set lo up || die "cannot bring up lo in the namespace"
fi


out=build/bench1m
nginx=${NGINX:-nginx}
unset NGINX     # nginx itself reads NGINX as inherited listening sockets
clients=${BENCH_1M_CLIENTS:-1000000}
rate=${BENCH_1M_RATE:-12000}
pending=${BENCH_1M_PENDING:-2000}
bufs=${BENCH_1M_BUFS:-default}
pushes=${BENCH_1M_PUSHES:-3}
stopped_push=${BENCH_1M_STOPPED_PUSH:-yes}
idle=${BENCH_1M_IDLE:-20}
heartbeat=${BENCH_1M_HEARTBEAT:-240}
reload=${BENCH_1M_RELOAD:-auto}
floor_n=${BENCH_1M_FLOOR_N:-yes}
client_sched=${BENCH_1M_CLIENT_SCHED:-batch}
read_pause=${BENCH_1M_READ_PAUSE:-0}
io_uring=${BENCH_1M_IO_URING:-on}
reserve_gb=${BENCH_1M_RESERVE_GB:-6}
base=${BENCH_1M_PORT_BASE:-31400}
limit=${BENCH_1M_LIMIT:-$((600 + clients * 4 / 1000))}
results=${BENCH_1M_RESULTS:-bench/RESULTS-1M.md}

per_worker=19000            # the target; goim_max_clients is 19600
max_clients=19600
per_proc=19500              # goim-bench sockets per process
max_slots=1024              # NGX_GOIM_MAX_WORKERS
cores=$(nproc)

tcp_port=$((base + 1))
ws_port=$((base + 2))
api_port=$((base + 11))

stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
goim_module=$root/build/ngx_goim_module.so
bench=build/goim-bench
floor=build/goim-floor

half=$((clients / 2))
workers=${BENCH_1M_WORKERS:-$(( (clients + per_worker - 1) / per_worker ))}
[ "$workers" -ge 1 ] || workers=1
# goim_worker_slots' default: twice the workers, whole 64-bit words
slots=$(( (2 * workers + 63) / 64 * 64 ))
procs=$(( (half + per_proc - 1) / per_proc ))
[ "$procs" -ge 1 ] || procs=1
zone_mb=$(( clients * 320 / 1048576 + workers * 64 / 1024 + 16 ))
[ "$zone_mb" -ge 64 ] || zone_mb=64
reserve_kb=$((reserve_gb * 1048576))
max_pending=$(( pending / (2 * procs) ))
[ "$max_pending" -ge 8 ] || max_pending=8
# the old workers close their clients spread over this: 5,000 a second
drain_s=$(( clients / 5000 ))
[ "$drain_s" -ge 30 ] || drain_s=30

pid_tcp=""
pid_ws=""
pid_pub=""
watchdog=""
old_workers=""


log() {
    echo "$me: $(( $(date +%s) - started ))s: $*" >&2
}


cleanup() {
    # clients stopped for a push take signals once continued
    for p in ${pid_tcp:-} ${pid_ws:-}; do
        kill -CONT "$p" $(children "$p") 2>/dev/null
    done
    stop_pid "$pid_pub"
    stop_pid "$pid_tcp"
    stop_pid "$pid_ws"
    if [ -n "$master" ]; then
        # the workers of both generations, whatever the master does
        worker_pids="$worker_pids $old_workers $(children "$master")"
    fi
    stop_nginx 120
    if [ -n "$watchdog" ]; then
        kids=$(children "$watchdog")
        kill "$watchdog" $kids 2>/dev/null
    fi
}

set_traps "stopped (signal or the ${limit} s watchdog)"


# --- checks -------------------------------------------------------------------

case "$clients" in
    ''|*[!0-9]*) die "BENCH_1M_CLIENTS must be a number" ;;
esac
[ "$clients" -ge 1000 ] || die "BENCH_1M_CLIENTS: at least 1000"
case "$bufs" in
    default|small) ;;
    *) die "BENCH_1M_BUFS is default or small" ;;
esac
case "$client_sched" in
    batch|normal) ;;
    *) die "BENCH_1M_CLIENT_SCHED is batch or normal" ;;
esac
case "$floor_n" in
    yes|no) ;;
    *) die "BENCH_1M_FLOOR_N is yes or no" ;;
esac
case "$io_uring" in
    on|off) ;;
    *) die "BENCH_1M_IO_URING is on or off" ;;
esac
case "$stopped_push" in
    yes|no) ;;
    *) die "BENCH_1M_STOPPED_PUSH is yes or no" ;;
esac
case "$read_pause" in
    ''|*[!0-9]*) die "BENCH_1M_READ_PAUSE is ms, 0 to 999" ;;
esac
[ "$read_pause" -le 999 ] || die "BENCH_1M_READ_PAUSE is ms, 0 to 999"

check_setup "$goim_module" "$bench"
[ -x "$floor" ] || die "$floor missing: make tools"
command -v perl >/dev/null 2>&1 || die "perl not found"
"$bench" --help 2>&1 | grep -q -- --max-pending \
    || die "$bench has no --max-pending: make tools"

[ "$slots" -le "$max_slots" ] \
    || die "$clients clients need $workers workers: twice that is more" \
           "than the registry's $max_slots slots (NGX_GOIM_MAX_WORKERS)"
[ $(( clients / workers )) -le $((max_clients - 400)) ] \
    || die "$clients clients over $workers workers leave no margin under" \
           "goim_max_clients $max_clients: raise BENCH_1M_WORKERS"
[ "$procs" -le 64 ] || die "$procs goim-bench processes per run: at most 64"

do_reload=no
reload_why=""
if [ "$reload" = no ]; then
    reload_why="BENCH_1M_RELOAD=no"
elif [ $((2 * workers)) -gt "$slots" ]; then
    reload_why="$workers workers and the $workers of the new generation need $((2 * workers)) registry slots, the zone has $slots: skipped"
else
    do_reload=yes
fi

# source addresses: at most half of the port range per address and
# destination (connects slow down as a range fills)
if [ "$netns" = own ]; then
    port_lo=1024
    port_hi=65535
else
    set -- $(cat /proc/sys/net/ipv4/ip_local_port_range)
    port_lo=$1
    port_hi=$2
fi
half_range=$(( (port_hi - port_lo + 1) / 2 ))
sources=${BENCH_1M_SOURCES:-$(( (half + half_range - 1) / half_range ))}
[ "$sources" -ge 8 ] || sources=8
[ "$sources" -le 254 ] || die "$sources source addresses: at most 254"
[ $(( (half + sources - 1) / sources )) -le "$half_range" ] \
    || die "$half connections over $sources source addresses: over half" \
           "of the $((port_hi - port_lo + 1)) ephemeral ports each"

# open files of the whole machine: two sockets per connection
set -- $(cat /proc/sys/fs/file-nr)
files_used=$1
files_max=$3
[ $((files_used + 2 * clients + 100000)) -le "$files_max" ] \
    || die "$clients connections need $((2 * clients)) open files; the" \
           "machine has $files_used of fs.file-max $files_max in use"

# memory: 12 KB per connection measured over everything (both socket
# ends, nginx, the clients), 10 MB per worker, 512 MB for the rest
avail0=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
need_kb=$(( clients * 12 + workers * 10240 + 524288 ))
[ $((avail0 - need_kb)) -ge "$reserve_kb" ] \
    || die "$clients connections need about $((need_kb / 1048576)) GiB;" \
           "MemAvailable is $((avail0 / 1048576)) GiB and" \
           "$reserve_gb GiB stay free for others (BENCH_1M_RESERVE_GB):" \
           "lower BENCH_1M_CLIENTS"

if [ "$netns" = host ]; then
    ports_free BENCH_1M_PORT_BASE $tcp_port $ws_port $api_port
fi

# the watchdog: the whole run is bounded whatever happens below
( sleep "$limit"; kill -TERM $$ ) &
watchdog=$!

log "$clients clients ($half TCP + $half WS), $workers workers," \
    "2 x $procs goim-bench processes, $sources source addresses each," \
    "goim_zone ${zone_mb}m, buffers $bufs, namespace $netns," \
    "MemAvailable $((avail0 / 1024)) MB, watchdog $limit s"
[ "$do_reload" = yes ] || log "reload: $reload_why"


# --- kernel settings (in the namespace only) ---------------------------------------

sysctl_get() {
    if [ "$1" = net.ipv4.tcp_mem ] && [ -n "${BENCH_1M_TCP_MEM:-}" ]; then
        echo "$BENCH_1M_TCP_MEM (global)"
        return
    fi
    tr '\t' ' ' <"/proc/sys/$(echo "$1" | tr . /)" 2>/dev/null
}

sysctl_set() {     # sysctl_set NAME VALUE: only inside our namespace
    [ "$netns" = own ] || return 0
    echo "$2" >"/proc/sys/$(echo "$1" | tr . /)" \
        || die "cannot set $1 in the namespace"
}

sysctl_set net.ipv4.ip_local_port_range "$port_lo $port_hi"
sysctl_set net.core.somaxconn 65535
sysctl_set net.ipv4.tcp_max_syn_backlog 65535

sockbuf_opt=""
if [ "$bufs" = small ]; then
    if [ "$netns" = own ]; then
        set -- $(sysctl_get net.ipv4.tcp_rmem)
        sysctl_set net.ipv4.tcp_rmem "4096 4096 $3"
        set -- $(sysctl_get net.ipv4.tcp_wmem)
        sysctl_set net.ipv4.tcp_wmem "4096 4096 $3"
    fi
    sockbuf_opt="--sockbuf 4096"
fi

kernel_settings=""
for k in net.ipv4.tcp_ehash_entries net.ipv4.ip_local_port_range net.core.somaxconn \
         net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_rmem net.ipv4.tcp_wmem \
         net.ipv4.tcp_mem fs.file-max
do
    kernel_settings="$kernel_settings $k=\"$(sysctl_get $k)\";"
done


# --- samplers -------------------------------------------------------------------

rm -rf "$out"
mkdir -p "$out/conf" "$out/logs" "$out/temp" "$out/s"

now() {
    date +%s.%N
}

since() {       # since T0: seconds since T0, one decimal
    echo "$1 $(date +%s.%N)" | awk '{ printf "%.2f", $2 - $1 }'
}

status() {      # goim_status into $out/s/status.NAME
    curl -s -m 10 "http://127.0.0.1:$api_port/goim/status" \
        >"$out/s/status.$1" 2>/dev/null
}

metric() {      # metric NAME PREFIX: the sum of the series starting so
    awk -v m="$2" 'index($0, m) == 1 { s += $NF }
                   END { printf "%.0f", s }' "$out/s/status.$1" 2>/dev/null
}

meminfo() {     # meminfo FIELD: kB
    awk -v f="$1:" '$1 == f { print $2 }' /proc/meminfo
}

proc_mem() {    # proc_mem PID...: "rss_kb pss_kb" summed
    for p in "$@"; do
        awk '/^VmRSS:/ { print "rss", $2 }' "/proc/$p/status" 2>/dev/null
        awk '/^Pss:/ { print "pss", $2 }' "/proc/$p/smaps_rollup" 2>/dev/null
    done | awk '{ s[$1] += $2 } END { printf "%d %d", s["rss"], s["pss"] }'
}

nginx_pids() {
    echo $master $(children "$master")
}

bench_pids() {
    for p in $pid_tcp $pid_ws; do
        echo $p $(children "$p")
    done
}

switches() {    # switches FIELD PID..: the sum of a /proc/<pid>/status
                # counter, e.g. voluntary_ctxt_switches (sleeps)
    local f=$1 p
    shift
    for p in "$@"; do
        cat "/proc/$p/status" 2>/dev/null
    done | awk -v f="$f:" '$1 == f { s += $2 } END { print s + 0 }'
}

tcp_mem_pages() {   # the machine's TCP buffer pages (global)
    awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) }' \
        /proc/net/sockstat
}

snapshot() {    # snapshot NAME: what the memory report reads
    cat /proc/meminfo >"$out/s/meminfo.$1"
    cat /proc/slabinfo >"$out/s/slabinfo.$1" 2>/dev/null
    cat /proc/net/sockstat >"$out/s/sockstat.$1"
    if [ -n "$master" ]; then
        proc_mem $(nginx_pids) >"$out/s/nginx.$1"
    fi
    if [ -n "$pid_tcp$pid_ws" ]; then
        proc_mem $(bench_pids) >"$out/s/bench.$1"
        echo $(bench_pids) | wc -w >"$out/s/bench_procs.$1"
    fi
}

busy_ticks() {  # busy ticks of the whole machine (all CPUs)
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

cpu_ticks() {   # utime + stime ticks of master and workers, the exited
                # ones included (the master's cutime + cstime)
    {
        proc_ticks $(echo $(nginx_pids) $old_workers | tr ' ' '\n' | sort -u)
        awk '{ sub(/.*\) /, ""); print $14 + $15 }' "/proc/$master/stat" \
            2>/dev/null
    } | awk '{ s += $1 } END { print s + 0 }'
}

progress() {    # progress LOG FIELD: the last progress line's value
    grep ' hb ' "$1" 2>/dev/null | tail -n 1 \
        | awk -v f="$2" '{ for (i = 1; i < NF; i++) if ($i == f) v = $(i + 1) }
                         END { print v + 0 }'
}

# cpu_snap NAME: every process's utime + stime ticks ("pid ticks comm"),
# ours listed apart, and the machine's /proc/stat cpu line, so that the
# report can say who used the CPU between two snapshots
cpu_snap() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk '{
        if (!match($0, /\(.*\)/)) next
        comm = substr($0, RSTART + 1, RLENGTH - 2)
        n = split(substr($0, RSTART + RLENGTH + 1), f, " ")
        gsub(/ /, "_", comm)
        print $1, f[12] + f[13], comm
    }' >"$out/s/cpu.$1"
    {
        echo nginx $(nginx_pids) $old_workers
        echo bench $(bench_pids) $pid_pub
    } >"$out/s/ours.$1"
    grep '^cpu ' /proc/stat >"$out/s/stat.$1"
    cut -d' ' -f1 /proc/uptime >"$out/s/uptime.$1"
}

snapshot host


# --- 1. the floor -----------------------------------------------------------------

cmd_floor="$floor --pairs 10000 --size 64 --rounds 10 --batches 1 --writers $cores"
log "$cmd_floor"
$cmd_floor >"$out/floor.json" 2>"$out/floor.log" \
    || log "goim-floor failed: $(tail -n 2 "$out/floor.log")"


# --- 2. nginx ----------------------------------------------------------------------

{
    echo "# make bench-1m (bench/run-1m.sh): $clients connections, $workers workers"
    goim_conf "$workers" "
goim_zone goim ${zone_mb}m;
goim_max_clients $max_clients;
goim_heartbeat 4m;
goim_shutdown_drain ${drain_s}s;
goim_io_uring $io_uring;
" "        client_body_buffer_size 64k;
        client_max_body_size 64k;
"
} | sed -e 's/worker_connections 19000;/worker_connections 21000;/' \
        -e 's/backlog=4096/backlog=65535/' >"$out/conf/nginx.conf"

start_nginx "$out" "$workers" "http://127.0.0.1:$api_port/goim/status" 200 \
    || exit 1
sleep 1

status base
snapshot base
shm0=$(metric base 'goim_shm_bytes{state="used"}')
set -- $(cat "$out/s/nginx.base")
log "nginx $master, $workers workers: RSS $1 kB, Pss $2 kB, zone used $shm0 B"


# --- 3. the clients ------------------------------------------------------------------

hold=$limit         # the idle runs' --settle: they are ended by SIGINT
run_rate=$((rate / 2))
common="--clients $half --procs $procs --sources $sources --connect-rate $run_rate --max-pending $max_pending --rooms 1 --heartbeat $heartbeat --idle --settle $hold --read-pause $read_pause --api 127.0.0.1:$api_port $sockbuf_opt"
# SCHED_BATCH clients do not preempt the server when a write wakes them
# (as clients on other machines would not)
sched=""
[ "$client_sched" = batch ] && sched="chrt --batch 0 "
cmd_tcp="$sched$bench --transport tcp --server 127.0.0.1:$tcp_port $common"
cmd_ws="$sched$bench --transport ws --server 127.0.0.1:$ws_port --ws-path /sub --id-base $half $common"

log "$cmd_tcp"
log "$cmd_ws"
t_conn0=$(now)
cpu_snap conn0
cpu0=$(cpu_ticks)
$cmd_tcp >"$out/tcp.json" 2>"$out/tcp.log" &
pid_tcp=$!
$cmd_ws >"$out/ws.json" 2>"$out/ws.log" &
pid_ws=$!

# as long as the count grows: the server's pace, not the asked rate,
# sets how long connecting takes (goim-bench's own connect budget only
# ends its connect phase; its processes go on connecting)
online=0
guard=""
t_conn=""
last_log=0
best=0
best_at=$(date +%s)
: >"$out/connect.txt"
while [ $(( $(date +%s) - best_at )) -lt 60 ]; do
    sleep 2
    status conn
    online=$(metric conn 'goim_online{')
    conns=$(metric conn 'goim_connections{')
    avail=$(meminfo MemAvailable)
    echo "$(since "$t_conn0") $conns $online $avail" >>"$out/connect.txt"
    if [ $(( $(date +%s) - last_log )) -ge 10 ] \
       || [ "${online:-0}" -ge "$clients" ]
    then
        last_log=$(date +%s)
        log "connections $conns, online $online of $clients," \
            "MemAvailable $((avail / 1024)) MB"
    fi
    if [ "${online:-0}" -ge "$clients" ]; then
        t_conn=$(since "$t_conn0")
        break
    fi
    if [ -n "${BENCH_1M_PERF_AT:-}" ] && [ "${online:-0}" -ge "$BENCH_1M_PERF_AT" ]
    then
        perf record -q -F 499 -g -o "$out/perf-connect.data" \
            -p "$(echo $(children "$master") | tr ' ' ,)" \
            -- sleep "${BENCH_1M_PERF:-5}" >/dev/null 2>&1 &
        BENCH_1M_PERF_AT=""
    fi
    if [ "${online:-0}" -gt "$best" ]; then
        best=$online
        best_at=$(date +%s)
    fi
    if [ "$avail" -lt "$reserve_kb" ]; then
        guard="MemAvailable $((avail / 1024)) MB under the reserve of $reserve_gb GiB at $online online"
        log "memory guard: $guard; the clients stop connecting"
        break
    fi
    kill -0 "$pid_tcp" 2>/dev/null && kill -0 "$pid_ws" 2>/dev/null \
        || { log "a goim-bench run ended early"; break; }
done
cpu_conn=$(( $(cpu_ticks) - cpu0 ))
cpu_snap conn1

if [ -n "$guard" ]; then
    # the largest count: measure it before anything else moves
    kill -STOP $(bench_pids) 2>/dev/null
    sleep 3
    status full
    snapshot full
    kill -CONT $(bench_pids) 2>/dev/null
else
    sleep 5
    status full
    snapshot full
fi
online_full=$(metric full 'goim_online{')
shm1=$(metric full 'goim_shm_bytes{state="used"}')
shm_free=$(metric full 'goim_shm_bytes{state="free"}')
set -- $(cat "$out/s/nginx.full")
log "online $online_full after ${t_conn:-(not all)} s; nginx RSS $1 kB," \
    "Pss $2 kB; zone used $shm1 B; MemAvailable" \
    "$(( $(meminfo MemAvailable) / 1024 )) MB"

all_online=false
[ "${online_full:-0}" -ge "$clients" ] && all_online=true


# --- 4. heartbeats only ------------------------------------------------------------------

hb_cpu=""
hb_n=""
if [ "$all_online" = true ] && [ "$idle" -gt 0 ]; then
    hb0=$(( $(progress "$out/tcp.log" hb) + $(progress "$out/ws.log" hb) ))
    c0=$(cpu_ticks)
    t0=$(now)
    sleep "$idle"
    hb_cpu=$(( $(cpu_ticks) - c0 ))
    hb_s=$(since "$t0")
    sleep 0.5       # the children report every 200 ms
    hb_n=$(( $(progress "$out/tcp.log" hb) + $(progress "$out/ws.log" hb) - hb0 ))
    log "idle $hb_s s: $hb_n heartbeat replies, nginx CPU" \
        "$(echo "$hb_cpu" | awk '{ printf "%.2f", $1 / 100 }') s"
fi


# --- 5. pushes, one at a time -------------------------------------------------------------

# pub_run SEQ MODE [stopped]: one push (seq SEQ) from a one-client
# publisher run, then wait until nginx wrote it to every member (or 90
# s); "stopped": the idle clients are stopped (SIGSTOP) until then
: >"$out/pushes.txt"
pub_run() {
    local seq mode stopped cmd w0 want w t0 c0 b0 u0 t_all t_first cpu
    local tcpm peak sl0 pr0 sl pr prev_poll

    seq=$1
    mode=$2
    stopped=${3:-no}
    cmd="$bench --transport tcp --server 127.0.0.1:$tcp_port --clients 1 --id-base $clients --rooms 1 --push-mode $mode --push-rate 1 --duration 1 --settle 0 --drain 120 --seq-base $seq --api 127.0.0.1:$api_port"
    echo "$cmd" >"$out/pub$seq.cmd"

    status "pre$seq"
    w0=$(metric "pre$seq" 'goim_messages_written_total{')
    d0=$(metric "pre$seq" 'goim_dropped_total{')
    online=$(metric "pre$seq" 'goim_online{')
    want=$((online + 1))
    c0=$(cpu_ticks)
    b0=$(proc_ticks $(bench_pids))
    u0=$(busy_ticks)
    # the clients' sleeps (each ends in a wake-up by a write) and the
    # workers' preemptions, over the push
    sl0=$(switches voluntary_ctxt_switches $(bench_pids))
    pr0=$(switches nonvoluntary_ctxt_switches $(nginx_pids))
    peak=$(tcp_mem_pages)
    [ "$stopped" = stopped ] && kill -STOP $(bench_pids) 2>/dev/null
    t0=$(now)
    $cmd >"$out/pub$seq.json" 2>"$out/pub$seq.log" &
    pid_pub=$!
    if [ "$seq" = "${BENCH_1M_PERF_SEQ:-1}" ] && [ -n "${BENCH_1M_PERF:-}" ]
    then
        perf record -q -F 499 -g -o "$out/perf.data" \
            -p "$(echo $(children "$master") | tr ' ' ,)" \
            -- sleep "$BENCH_1M_PERF" >/dev/null 2>&1 &
    fi
    t_all=""
    t_first=""
    prev_poll=0
    : >"$out/fanout$seq.txt"
    while :; do
        sleep 0.25
        status "push$seq"
        w=$(( $(metric "push$seq" 'goim_messages_written_total{') - w0 ))
        tcpm=$(tcp_mem_pages)
        [ "$tcpm" -gt "$peak" ] && peak=$tcpm
        echo "$(since "$t0") $w $tcpm" >>"$out/fanout$seq.txt"
        # the poll before nginx's first write for the push
        [ -z "$t_first" ] && [ "$w" -gt 0 ] && t_first=$prev_poll
        prev_poll=$(since "$t0")
        if [ $w -ge $want ]; then
            t_all=$(since "$t0")
            sl=$(( $(switches voluntary_ctxt_switches $(bench_pids)) - sl0 ))
            pr=$(( $(switches nonvoluntary_ctxt_switches $(nginx_pids)) \
                   - pr0 ))
            cpu=$(( $(cpu_ticks) - c0 ))
            bcpu=$(( $(proc_ticks $(bench_pids)) - b0 ))
            busy=$(( $(busy_ticks) - u0 ))
            # its own client has read it by now: the publisher reports
            sleep 0.5
            kill -INT "$pid_pub" 2>/dev/null
            break
        fi
        # the API refused the push: nothing to wait for
        if ! kill -0 "$pid_pub" 2>/dev/null \
           && ! grep -q '"sent":1' "$out/pub$seq.json"
        then
            cpu=$(( $(cpu_ticks) - c0 ))
            bcpu=$(( $(proc_ticks $(bench_pids)) - b0 ))
            busy=$(( $(busy_ticks) - u0 ))
            break
        fi
        if [ "$(echo "$t0" | awk -v n="$(now)" '{ print (n - $1 > 90) }')" = 1 ]; then
            cpu=$(( $(cpu_ticks) - c0 ))
            bcpu=$(( $(proc_ticks $(bench_pids)) - b0 ))
            busy=$(( $(busy_ticks) - u0 ))
            kill -INT "$pid_pub" 2>/dev/null
            break
        fi
    done
    [ "$stopped" = stopped ] && kill -CONT $(bench_pids) 2>/dev/null
    wait "$pid_pub"
    rc=$?
    pid_pub=""
    status "post$seq"
    d1=$(metric "post$seq" 'goim_dropped_total{')
    echo "$seq $mode $want $w ${t_all:--} $cpu $bcpu $peak $rc $((d1 - d0)) $busy ${sl:--} ${pr:--} $stopped ${t_first:--}" \
        >>"$out/pushes.txt"
    log "push $seq ($mode): written $w of $want" \
        "${t_all:+in $t_all s after the publisher started}," \
        "nginx CPU $(echo "$cpu" | awk '{ printf "%.2f", $1 / 100 }') s," \
        "TCP buffers peak $peak pages, clients' sleeps ${sl:--}," \
        "workers preempted ${pr:--}"
    sleep 2
}

pushed=no
cpu_snap push0
if [ "$all_online" = true ]; then
    # a fan-out parks up to a message per socket in the kernel
    avail=$(meminfo MemAvailable)
    if [ $((avail - clients * 2)) -ge "$reserve_kb" ]; then
        pushed=yes
        i=1
        while [ $i -le "$pushes" ]; do
            pub_run $i room
            i=$((i + 1))
        done
        pub_run $((pushes + 1)) all
        if [ "$stopped_push" = yes ]; then
            pub_run $((pushes + 2)) room stopped
            # the clients read what waited for them
            sleep 5
        fi
    else
        log "pushes skipped: MemAvailable $((avail / 1024)) MB leaves" \
            "less than $reserve_gb GiB when each socket holds a message"
    fi
fi


cpu_snap push1


# --- 6. reload ------------------------------------------------------------------------

reloaded=no
reload_old_gone=""
reload_back=""
reload_min=""
if [ "$all_online" = true ] && [ "$do_reload" = yes ]; then
    old_workers=$(children "$master")
    status prereload
    ref0=$(metric prereload 'goim_clients_refused_total{')
    log "nginx -s reload with $(metric prereload 'goim_online{') online"
    t0=$(now)
    rl_cpu0=$(cpu_ticks)
    rl_bench0=$(proc_ticks $(bench_pids))
    rl_busy0=$(busy_ticks)
    if "$nginx" -p "$out/" -c conf/nginx.conf -e logs/error.log -s reload
    then
        reloaded=yes
        reload_min=$clients
        # the drain, then the reconnects: as long as the first connects
        # took, or longer (twice the workers while the old ones drain)
        wait_s=$(( ${t_conn%.*} * 3 / 2 ))
        [ "$wait_s" -ge $((clients / 1500)) ] || wait_s=$((clients / 1500))
        wait_s=$(( drain_s + wait_s + 60 ))
        : >"$out/reload.txt"
        while [ "$(echo "$t0" | awk -v n="$(now)" -v w=$wait_s '{ print (n - $1 > w) }')" = 0 ]; do
            sleep 2
            status reload
            online=$(metric reload 'goim_online{')
            [ "${online:-0}" -lt "$reload_min" ] && reload_min=$online
            old=0
            for p in $old_workers; do
                is_nginx "$p" && old=$((old + 1))
            done
            echo "$(since "$t0") $old $online" >>"$out/reload.txt"
            [ $old -eq 0 ] && [ -z "$reload_old_gone" ] \
                && reload_old_gone=$(since "$t0")
            if [ $old -eq 0 ] && [ "${online:-0}" -ge "$clients" ]; then
                reload_back=$(since "$t0")
                break
            fi
        done
        reload_s=$(since "$t0")
        # the old workers are gone: their ticks are not in cpu_ticks
        rl_cpu=$(( $(cpu_ticks) - rl_cpu0 ))
        rl_bench=$(( $(proc_ticks $(bench_pids)) - rl_bench0 ))
        rl_busy=$(( $(busy_ticks) - rl_busy0 ))
        sleep 1
        status postreload
        ref1=$(metric postreload 'goim_clients_refused_total{')
        # the new generation: the health check below is about them (old
        # workers still draining leave by design)
        worker_pids=""
        for p in $(children "$master"); do
            case " $old_workers " in
                *" $p "*) ;;
                *) worker_pids="$worker_pids $p" ;;
            esac
        done
        log "reload: old workers gone after ${reload_old_gone:-never} s," \
            "all $clients back after ${reload_back:-never} s" \
            "(lowest online $reload_min)"
    else
        log "nginx -s reload failed"
    fi
fi


# --- 7. the clients' reports, the server's health ---------------------------------------

for p in $pid_tcp $pid_ws; do
    kill -INT "$p" 2>/dev/null
done
wait "$pid_tcp"
rc_tcp=$?
wait "$pid_ws"
rc_ws=$?
pid_tcp=""
pid_ws=""

# the clients are gone: nginx closes their connections
t0=$(now)
t_close=""
while [ "$(echo "$t0" | awk -v n="$(now)" '{ print (n - $1 > 180) }')" = 0 ]; do
    status closing
    [ "$(metric closing 'goim_connections{')" -le 10 ] \
        && { t_close=$(since "$t0"); break; }
    sleep 1
done
log "the clients left: nginx closed their connections in ${t_close:-(over 180)} s"

status end
auth_failed=$(awk '/^goim_auth_total\{.*result="failed"/ { s += $NF } END { printf "%.0f", s }' "$out/s/status.end")
refused=$(metric end 'goim_clients_refused_total{')

server_health
ovf=$(overflows)
cpu_total=$(( $(cpu_ticks) - cpu0 ))

elog=$out/logs/error.log
lines=$(wc -l <"$elog")

# a graceful stop, as Debian's nginx.service does it (QUIT): a fast one
# (TERM) turns into the master's KILL of the workers after 1.5 s, which
# dozens of workers on 2 cores do not meet
log "stopping nginx (QUIT)"
t0=$(now)
stop_nginx 120 QUIT
t_stop=$(since "$t0")
old_workers=""

# until the stop, and during it
head -n "$lines" "$elog" >"$out/error.run"
tail -n +"$((lines + 1))" "$elog" >"$out/error.stop"
signals=$(grep -c 'exited on signal' "$out/error.run")
alerts=$(grep -c '\[alert\]\|\[crit\]\|\[emerg\]' "$out/error.run")
errors=$(grep -c '\[error\]' "$out/error.run")
stop_alerts=$(grep -c '\[alert\]\|\[crit\]\|\[emerg\]\|\[error\]' "$out/error.stop")
log "alive $alive, workers gone $lost, exited on signal $signals," \
    "alert/crit/emerg $alerts, error $errors; during the stop: $stop_alerts"


# --- 8. the floor with N pairs -----------------------------------------------------------

cmd_floor_n=""
cmd_floor_s=""
rm -f "$out/floor-n.json" "$out/floor-s.json"
if [ "$floor_n" = yes ] && [ "${online_full:-0}" -gt 0 ]; then
    # as many pairs as were online, now that their memory is free
    # the sync round of the kind nginx wrote with goes first, into
    # slab caches not yet grown, as nginx's push to stopped clients did
    first=write
    [ "$io_uring" = on ] && first=uring
    cmd_floor_n="FLOOR_N_SYNC_FIRST=$first sh bench/floor-n.sh $online_full"
    log "$cmd_floor_n"
    t0=$(now)
    FLOOR=$floor env $cmd_floor_n "$out/floor-n.json" 2>"$out/floor-n.log" \
        || log "floor-n failed: $(tail -n 2 "$out/floor-n.log")"
    log "floor with $online_full pairs: $(cat "$out/floor-n.json" 2>/dev/null)" \
        "in $(since "$t0") s"

    # a server's order: its clients connected in any order, so the
    # kernel objects one worker writes in turn lie apart in memory
    cmd_floor_s="FLOOR_N_SHUFFLE=yes FLOOR_N_ROUNDS=1 $cmd_floor_n"
    log "$cmd_floor_s"
    t0=$(now)
    FLOOR=$floor env $cmd_floor_s "$out/floor-s.json" 2>"$out/floor-s.log" \
        || log "floor-n (shuffled) failed: $(tail -n 2 "$out/floor-s.log")"
    log "floor with $online_full pairs, shuffled:" \
        "$(cat "$out/floor-s.json" 2>/dev/null) in $(since "$t0") s"
fi


# --- the report ---------------------------------------------------------------------------

mkdir -p "$(dirname "$results")"
header=0
[ -s "$results" ] || header=1

export B_STARTED=$started B_CLIENTS=$clients B_WORKERS=$workers \
    B_SOURCES=$sources B_PROCS=$procs B_RATE=$rate B_PUSHES=$pushes \
    B_BUFS=$bufs B_NETNS=$netns B_ZONE_MB=$zone_mb B_MAX_CLIENTS=$max_clients \
    B_SHM0=$shm0 B_SHM1=$shm1 B_SHM_FREE=$shm_free B_ONLINE=$online_full \
    B_T_CONN=${t_conn:-} B_CPU_CONN=$cpu_conn B_CPU_TOTAL=$cpu_total \
    B_GUARD="$guard" B_PUSHED=$pushed B_IDLE=$idle B_HB_CPU=${hb_cpu:-} \
    B_HB_N=${hb_n:-} B_DO_RELOAD=$do_reload B_RELOAD_WHY="$reload_why" \
    B_RELOADED=$reloaded B_RELOAD_OLD_GONE=${reload_old_gone:-} \
    B_RELOAD_BACK=${reload_back:-} B_RELOAD_MIN=${reload_min:-} \
    B_RELOAD_S=${reload_s:-} B_RELOAD_CPU=${rl_cpu:-} \
    B_RELOAD_BENCH=${rl_bench:-} B_RELOAD_BUSY=${rl_busy:-} \
    B_RELOAD_REFUSED=$(( ${ref1:-0} - ${ref0:-0} )) \
    B_T_CLOSE=${t_close:-} B_STOP_ALERTS=$stop_alerts \
    B_AUTH_FAILED=$auth_failed B_REFUSED=$refused B_T_STOP=$t_stop \
    B_ALIVE=$alive B_LOST=$lost B_SIGNALS=$signals B_ALERTS=$alerts \
    B_ERRORS=$errors B_OVF=$ovf B_RC_TCP=$rc_tcp B_RC_WS=$rc_ws \
    B_DRAIN=$drain_s B_HEARTBEAT=$heartbeat B_WORKERS_SET=${BENCH_1M_WORKERS:-} B_RELOAD_SET=${BENCH_1M_RELOAD:-} B_FLOOR_N_SET=${BENCH_1M_FLOOR_N:-} B_SCHED_SET=${BENCH_1M_CLIENT_SCHED:-} B_PAUSE_SET=${BENCH_1M_READ_PAUSE:-} B_IO_URING=$io_uring B_IO_URING_SET=${BENCH_1M_IO_URING:-} B_STOPPED_PUSH=$stopped_push B_STOPPED_PUSH_SET=${BENCH_1M_STOPPED_PUSH:-} B_CLIENT_SCHED=$client_sched B_HEADER=$header B_OUT=$out B_CORES=$cores B_RESERVE_GB=$reserve_gb \
    B_CMD_TCP="$cmd_tcp" B_CMD_WS="$cmd_ws" B_CMD_FLOOR="$cmd_floor" \
    B_CMD_FLOOR_N="$cmd_floor_n" B_CMD_FLOOR_S="$cmd_floor_s" \
    B_KERNEL_SETTINGS="$kernel_settings" \
    B_UNAME="$(uname -sr)" B_NGINX_V="$("$nginx" -v 2>&1 | sed 's/.*: //')" \
    B_REV=$(git rev-parse --short=12 HEAD 2>/dev/null) \
    B_TREE="$(git status --porcelain -- ngx_goim_module proto config tools/bench bench/run-1m.sh 2>/dev/null | wc -l)" \
    B_SO=$(sha256sum "$goim_module" | cut -c1-16) \
    B_ELAPSED=$(( $(date +%s) - started )) \
    B_LOAD=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)

# the report's inputs, to make it again from $out:
# (. build/bench1m/report.env && perl bench/report-1m.pl)
export -p | grep '^export B_' >"$out/report.env"
perl bench/report-1m.pl >>"$results"
rc=$?

log "appended to $results"
exit $rc
