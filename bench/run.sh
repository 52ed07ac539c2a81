#!/bin/sh
# make bench: the standard benchmark scenarios, goim for nginx next to
# nchan and next to the kernel's write floor, written to bench/RESULTS.md
# in about 9 minutes on 2 cores (section 7 adds about 2.5 of them).
#
#   1. idle memory: 10k and 40k connections, WebSocket and TCP
#   2. room broadcast: 10k WS in one room at 10, 50 and 200 pushes/s, 1k
#      WS at 1000 pushes/s; 10k at 10/s again with goim_room_flush 1s
#      and 0
#   3. push by key at a high rate (BENCH_KEY_RATE), WS and TCP
#   4. nchan: the WS runs of 1 and the four of 2, same client
#   5. the floors: build/goim-floor on 10k and 1k loopback TCP pairs
#   7. history (goim_history, docs/PROTOCOL.md 1.15): room-10k-200 and
#      room-1k-1000 again with `goim_history size=64`, alternating on and
#      off (two pairs each, room-10k-200 and room-1k-1000 of 2 being the
#      first off), and recover-10k-200: 10k WS in one room with history,
#      200 pushes/s, 10 % of the clients closed and reconnected with op 35
#      every second, every (accepted push, client) pair checked (with
#      size=1024, and recover-10k-200-h64 with size=64)
#   6. through the cluster (bench/cluster.sh): conf/run-cluster.sh's
#      redis-server, kafka-mock, two nodes and goim-job, clients on
#      comet-b, pushes through comet-a's API: 1k WS in one room at
#      100/s, 10k at 50/s, push by key to 1k at 1000/s (and once more
#      with the job's default fetch.wait.max.ms), and at 20,000/s through
#      the batch API (100 per request); the embedded twins
#      room-1k-100 and key-ws-1k-1000 run in 2 and 3
#
# Every run gets a fresh nginx (rendered from bench/goim.conf.in or
# bench/nchan.conf.in into build/bench/<run>/), so ΔRSS is meaningful,
# and build/goim-bench with --server-pids <master>.  All runs load one
# copy of the module (build/bench/ngx_goim_module.so, taken at the
# start), so a rebuild meanwhile cannot mix builds.  Around each run the
# script also samples goim_status (goim only), the server's CPU and
# write syscalls (/proc/<pid>/stat, /proc/<pid>/io), the machine's busy
# CPU (/proc/stat) and TCP listen overflows, and checks that master and
# workers survived with no crash in error.log.  Each run's figures go as
# one JSON line into build/bench/runs.jsonl; bench/report.pl turns them
# into bench/RESULTS.md.  Everything listens on 127.0.0.1 only, every
# run stops by itself, and the trap stops whatever this script started
# (nginx, goim-bench, the cluster) on any exit.  Needs curl, perl (core
# modules), bash and redis-server (the cluster).
#
# Environment:
#   BENCH_DURATION   seconds of publishing per run (10)
#   BENCH_PORT_BASE  ports base+1 (TCP), +2 (WS), +11 (API), +102 (nchan);
#                    the cluster base+300 (run-cluster.sh's GOIM_PORT_BASE)
#                    and Redis base+379 (31100)
#   BENCH_ONLY       run ids to run (space separated), e.g. while tuning;
#                    the report on those goes to build/bench/RESULTS.md,
#                    bench/RESULTS.md is left alone
#   BENCH_KEY_RATE   pushes/s of the push-by-key runs (10000)
#   BENCH_RECOVER_SIZE  goim_history size of recover-10k-200 (1024)
#   BENCH_IO_URING   on (goim_io_uring, the default) or off: goim's
#                    workers write each socket with send()
#   BENCH_NOTE       a sentence on the conditions (e.g. what else ran),
#                    printed at the top of the report
#   BENCH_PART       all (default); local: every run but the cluster's,
#                    report in build/bench/RESULTS.md; cluster: then the
#                    cluster's runs, with the same copy of the module,
#                    added to local's and bench/RESULTS.md written from
#                    both (a machine shared with others can then be kept
#                    quiet in two shorter windows)
#   BENCH_PERF       1: perf record -a -g of 8 s in each cluster run
#                    (dwarf: DWARF call chains), reports in
#                    build/bench/<run>/perf-*.txt (bench/cluster.sh); the
#                    sampling costs CPU, so such runs are for the profile
#   NGINX            nginx binary (nginx)
#
# Exit status: 0 when every run produced its figures with the server
# alive and no worker crash; 1 otherwise (the report is written anyway).
# Targets missed are reported, not failures.

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

me=bench
. "$root/bench/lib.sh"

out=build/bench
nginx=${NGINX:-nginx}
unset NGINX     # nginx itself reads NGINX as inherited listening sockets
dur=${BENCH_DURATION:-10}
base=${BENCH_PORT_BASE:-31100}
only=${BENCH_ONLY:-}
part=${BENCH_PART:-all}
key_rate=${BENCH_KEY_RATE:-10000}
recover_size=${BENCH_RECOVER_SIZE:-1024}
io_uring=${BENCH_IO_URING:-on}
case "$io_uring" in
    on|off) ;;
    *) echo "bench: BENCH_IO_URING is on or off" >&2; exit 2 ;;
esac
export BENCH_IO_URING=$io_uring
history=""         # goim_history of the next run: "size=64", "" (off)
events=""          # more lines for the next run's events {}

tcp_port=$((base + 1))
ws_port=$((base + 2))
api_port=$((base + 11))
nchan_port=$((base + 102))

. "$root/bench/cluster.sh"

stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
nchan_module=/usr/lib/nginx/modules/ngx_nchan_module.so
goim_built=$root/build/ngx_goim_module.so
goim_module=$root/build/bench/ngx_goim_module.so    # this run's copy
bench=build/goim-bench
floor=build/goim-floor

cores=$(nproc)
workers=$cores

cur_bench=""        # the goim-bench of the current run
failed=0


stop_bench() {
    stop_pid "$cur_bench"
    cur_bench=""
}


cleanup() {
    stop_bench
    stop_nginx 15
    cluster_stop
}

set_traps interrupted


# --- checks -------------------------------------------------------------------

case $part in
    all|local|cluster) ;;
    *) die "BENCH_PART is all, local or cluster" ;;
esac

check_setup "$goim_built" "$bench"
command -v perl >/dev/null 2>&1 || die "perl not found"
[ -f "$nchan_module" ] || die "$nchan_module missing (libnginx-mod-nchan)"
[ -x "$floor" ] || die "$floor missing: make tools"

case "$part: $only " in
    local:*) ;;
    *":  "|*" cluster-"*) cluster_check ;;
esac

ports_free BENCH_PORT_BASE $tcp_port $ws_port $api_port $nchan_port $c_ports

mkdir -p "$out"
runs=$out/runs.jsonl
elapsed0=0

if [ "$part" = cluster ]; then
    # after BENCH_PART=local: its runs, its copy of the module
    [ -s "$runs" ] && [ -f "$out/local.elapsed" ] && [ -f "$goim_module" ] \
        || die "BENCH_PART=cluster comes after BENCH_PART=local"
    elapsed0=$(cat "$out/local.elapsed")
else
    : >"$runs"
    rm -f "$out/local.elapsed"

    # every run loads the same build, even if the module is rebuilt
    # meanwhile
    cp "$goim_built" "$goim_module.tmp" \
        && mv -f "$goim_module.tmp" "$goim_module" \
        || die "cannot copy $goim_built"
fi

started=$(date -u +%s)
so_sha=$(sha256sum "$goim_module" | cut -c1-16)
rev_start=$(git rev-parse --short=12 HEAD 2>/dev/null)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)


# --- one run ------------------------------------------------------------------

selected() {
    case "$part:$1" in
        local:cluster-*) return 1 ;;
        cluster:cluster-*) ;;
        cluster:*) return 1 ;;
    esac

    [ -z "$only" ] && return 0

    for s in $only; do
        [ "$s" = "$1" ] && return 0
    done

    return 1
}


render() {     # render TEMPLATE DIR WORKERS FLUSH
    mkdir -p "$2/conf" "$2/logs" "$2/temp"

    hline=""
    [ -n "$history" ] && hline="goim_history $history;"

    sed -e "s|@STREAM_MODULE@|$stream_module|" \
        -e "s|@GOIM_MODULE@|$goim_module|" \
        -e "s|@NCHAN_MODULE@|$nchan_module|" \
        -e "s|@WORKERS@|$3|" \
        -e "s|@FLUSH@|$4|" \
        -e "s|@IO_URING@|$io_uring|" \
        -e "s|@HISTORY@|$hline|" \
        -e "s|@EVENTS@|$events|" \
        -e "s|@TCP_PORT@|$tcp_port|" \
        -e "s|@WS_PORT@|$ws_port|" \
        -e "s|@API_PORT@|$api_port|" \
        -e "s|@NCHAN_PORT@|$nchan_port|" \
        "$1" >"$2/conf/nginx.conf"
}


host_cpu() {    # busy and total CPU seconds of the whole machine so far
    awk '/^cpu / {
        hz = 100
        printf "%.2f %.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz,
                            ($2 + $3 + $4 + $5 + $6 + $7 + $8 + $9) / hz
    }' /proc/stat
}


nginx_cpu() {   # CPU seconds of the current master and its workers so far
    awk -v t="$(proc_ticks $master $(children "$master"))" \
        'BEGIN { printf "%.2f", t / 100 }'
}


nginx_writes() {    # write/writev syscalls of the master and its workers so far
    for p in $master $(children "$master"); do
        cat "/proc/$p/io" 2>/dev/null
    done | awk '$1 == "syscw:" { t += $2 } END { printf "%.0f", t }'
}


scrape() {     # goim_status counters summed over the workers, as JSON
    goim_scrape "http://127.0.0.1:$api_port/goim/status"
}


# run ID SERVER(goim|nchan) WORKERS FLUSH goim-bench-args...
run() {
    id=$1
    server=$2
    nw=$3
    flush=$4
    shift 4

    selected "$id" || return 0

    dir=$out/$id
    rm -rf "$dir"

    if [ "$server" = goim ]; then
        render bench/goim.conf.in "$dir" "$nw" "$flush"
        port=$api_port
    else
        render bench/nchan.conf.in "$dir" "$nw" "-"
        port=$nchan_port
    fi

    cmd="$bench $* --server-pids <nginx master>"
    echo "bench: $id: $cmd" >&2

    if ! start_nginx "$dir" "$nw" "http://127.0.0.1:$port/" 404; then
        stop_nginx 15
        failed=1
        printf '{"id":"%s","server":"%s","workers":%s,"flush":"%s",' \
            "$id" "$server" "$nw" "$flush" >>"$runs"
        printf '"history":"%s",' "${history:-off}" >>"$runs"
        printf '"events":"%s",' "$(echo $events)" >>"$runs"
        printf '"cmd":"%s","error":"nginx did not start"}\n' "$cmd" >>"$runs"
        return 0
    fi

    # the memory baseline should not catch the workers mid-start
    sleep 0.5

    load=$(cut -d' ' -f1 /proc/loadavg)
    before=null
    [ "$server" = goim ] && before=$(scrape)

    host0=$(host_cpu)
    ovf0=$(overflows)
    ngx0=$(nginx_cpu)
    sysw0=$(nginx_writes)
    t0=$(date +%s.%N)

    "$bench" "$@" --server-pids "$master" \
        >"$dir/bench.json" 2>"$dir/bench.log" &
    cur_bench=$!
    wait "$cur_bench"
    rc=$?
    cur_bench=""

    # the machine's busy CPU over the run (others' load = busy - ours)
    host1=$(host_cpu)
    ovf=$(( $(overflows) - ovf0 ))
    ngx1=$(nginx_cpu)
    sysw=$(( $(nginx_writes) - sysw0 ))
    ngx=$(echo "$ngx0 $ngx1" | awk '{ printf "%.2f", $2 - $1 }')
    wall=$(echo "$t0 $(date +%s.%N)" | awk '{ printf "%.2f", $2 - $1 }')
    busy=$(echo "$host0 $host1" | awk '{ printf "%.2f", $3 - $1 }')

    after=null
    [ "$server" = goim ] && after=$(scrape)

    # the server's health: master alive, no worker replaced, log clean
    server_health

    log=$dir/logs/error.log
    signals=$(grep -c 'exited on signal' "$log" 2>/dev/null)
    alerts=$(grep -c '\[alert\]' "$log" 2>/dev/null)
    crits=$(grep -c '\[crit\]\|\[emerg\]' "$log" 2>/dev/null)
    errors=$(grep -c '\[error\]' "$log" 2>/dev/null)

    stop_nginx 15

    result=$(tail -n 1 "$dir/bench.json" 2>/dev/null)
    case $result in
        \{*\}) ;;
        *)     result=null; failed=1 ;;
    esac

    if [ "$alive" != true ] || [ "$lost" -ne 0 ] || [ "$signals" -ne 0 ]
    then
        failed=1
        echo "bench: $id: the server did not survive (alive $alive," \
             "workers gone $lost, exited on signal $signals)" >&2
    fi

    printf '{"id":"%s","server":"%s","workers":%s,"flush":"%s",' \
        "$id" "$server" "$nw" "$flush" >>"$runs"
    printf '"history":"%s",' "${history:-off}" >>"$runs"
    printf '"events":"%s",' "$(echo $events)" >>"$runs"
    printf '"cmd":"%s","rc":%s,"load1":%s,"alive":%s,' \
        "$cmd" "$rc" "$load" "$alive" >>"$runs"
    printf '"host_busy_s":%s,"nginx_cpu_s":%s,"wall_s":%s,' \
        "$busy" "$ngx" "$wall" >>"$runs"
    printf '"listen_overflows":%s,"write_syscalls":%s,' "$ovf" "$sysw" \
        >>"$runs"
    printf '"workers_gone":%s,"log_signal":%s,"log_alert":%s,' \
        "$lost" "$signals" "$alerts" >>"$runs"
    printf '"log_crit":%s,"log_error":%s,"status_before":%s,' \
        "$crits" "$errors" "$before" >>"$runs"
    printf '"status_after":%s,"bench":%s}\n' "$after" "$result" >>"$runs"

    echo "bench: $id: $(echo "$result" | cut -c1-300)" >&2
}


floor_run() {     # floor_run ID goim-floor-args...
    id=$1
    shift

    selected "$id" || return 0

    cmd="$floor $*"
    echo "bench: $id: $cmd" >&2
    load=$(cut -d' ' -f1 /proc/loadavg)

    result=$("$floor" "$@" 2>"$out/$id.log")
    rc=$?

    case $result in
        \{*\}) ;;
        *)     result=null; failed=1 ;;
    esac

    printf '{"id":"%s","server":"floor","cmd":"%s","rc":%s,"load1":%s,' \
        "$id" "$cmd" "$rc" "$load" >>"$runs"
    printf '"floor":%s}\n' "$result" >>"$runs"

    echo "bench: $id: $(echo "$result" | cut -c1-300)" >&2
}


# hist_pairs RUN goim-bench-args...: RUN (history off, just run) again as
# hist-RUN-on-1 (goim_history size=64), hist-RUN-off-2, hist-RUN-on-2:
# on and off alternate on the same build, so that noise shows
hist_pairs() {
    h=${1#room-}
    shift

    history="size=64"
    run hist-$h-on-1  goim $workers 100ms "$@"
    history=""
    run hist-$h-off-2 goim $workers 100ms "$@"
    history="size=64"
    run hist-$h-on-2  goim $workers 100ms "$@"
    history=""
}


# --- the scenarios --------------------------------------------------------------
# 40k connections need a third worker: each process may hold 20,000 files.
# They also get 4 source addresses: with goim-bench's automatic 2 (20,000
# clients each) the connects stalled at 28-30k on this machine, i.e.
# about 14,000 per address instead of the ~28,000 ports of
# ip_local_port_range; with 4 (10,000 each) all 40,000 connect.

g_ws="--transport ws --server 127.0.0.1:$ws_port --ws-path /sub --api 127.0.0.1:$api_port"
g_tcp="--transport tcp --server 127.0.0.1:$tcp_port --api 127.0.0.1:$api_port"
n_ws="--mode nchan --transport ws --server 127.0.0.1:$nchan_port --ws-path /sub/bench --api 127.0.0.1:$nchan_port"
w40=$(( (40000 + 17999) / 18000 ))
[ $w40 -lt $workers ] && w40=$workers
push="--duration $dur --settle 2 --drain 2 --inflight 64"

# 5. the floors first: a quiet server-less baseline
floor_run floor-10k --pairs 10000 --size 40 --rounds 20 --batches 1,4,16,64 --writers $workers
floor_run floor-1k --pairs 1000 --size 40 --rounds 30 --batches 1,4,16,64 --writers $workers

# 1. idle memory
run mem-ws-10k       goim  $workers 100ms $g_ws  --idle --clients 10000 --settle 3
run mem-ws-40k       goim  $w40     100ms $g_ws  --idle --clients 40000 --settle 3 --sources 4
run mem-tcp-10k      goim  $workers 100ms $g_tcp --idle --clients 10000 --settle 3
run mem-tcp-40k      goim  $w40     100ms $g_tcp --idle --clients 40000 --settle 3 --sources 4
run nchan-mem-ws-10k nchan $workers -     $n_ws  --idle --clients 10000 --settle 3
run nchan-mem-ws-40k nchan $w40     -     $n_ws  --idle --clients 40000 --settle 3 --sources 4

# 2. room broadcast, one room
run room-10k-10      goim  $workers 100ms $g_ws --clients 10000 --push-rate 10   $push
run room-10k-50      goim  $workers 100ms $g_ws --clients 10000 --push-rate 50   $push
run room-10k-200     goim  $workers 100ms $g_ws --clients 10000 --push-rate 200  $push
# 7. history's cost: on, off, on right after room-10k-200 (the first off)
hist_pairs room-10k-200 $g_ws --clients 10000 --push-rate 200  $push
run room-1k-1000     goim  $workers 100ms $g_ws --clients 1000  --push-rate 1000 $push
hist_pairs room-1k-1000 $g_ws --clients 1000  --push-rate 1000 $push
run room-1k-100      goim  $workers 100ms $g_ws --clients 1000  --push-rate 100  $push
run room-10k-10-f1s  goim  $workers 1s    $g_ws --clients 10000 --push-rate 10   $push
run room-10k-10-f0   goim  $workers 0     $g_ws --clients 10000 --push-rate 10   $push
run nchan-room-10k-10  nchan $workers - $n_ws --clients 10000 --push-rate 10   $push
run nchan-room-10k-50  nchan $workers - $n_ws --clients 10000 --push-rate 50   $push
run nchan-room-10k-200 nchan $workers - $n_ws --clients 10000 --push-rate 200  $push
run nchan-room-1k-1000 nchan $workers - $n_ws --clients 1000  --push-rate 1000 $push

# 7. reconnects that recover: 10 % of the clients a second; without
# multi_accept a worker busy with the fan-out accepts one connection a
# turn of its loop, and the reconnects queue for seconds (README)
history="size=$recover_size"
events="    multi_accept on;"
run recover-10k-200  goim  $workers 100ms $g_ws --clients 10000 --push-rate 200 --recover --reconnect-rate 1000 $push
# the same with size=64 (320 ms here): some recoveries come too late
history="size=64"
run recover-10k-200-h64 goim $workers 100ms $g_ws --clients 10000 --push-rate 200 --recover --reconnect-rate 1000 $push
history=""
events=""

# 3. push by key: one client per message
run key-ws-10k   goim $workers 100ms $g_ws  --clients 10000 --push-mode key --push-rate $key_rate --inflight 64 $push
run key-tcp-10k  goim $workers 100ms $g_tcp --clients 10000 --push-mode key --push-rate $key_rate --inflight 64 $push
run key-ws-1k-1000 goim $workers 100ms $g_ws --clients 1000 --push-mode key --push-rate 1000 $push

# 6. through the cluster: each run on a fresh cluster; the job's
# fetch.wait.max.ms is 10, since kafka-mock answers a fetch for which it
# has no data only when that wait is over, not when data arrives as a
# broker does: the last run keeps librdkafka's 500 to show what that costs
c_ws="--transport ws --server 127.0.0.1:$c_ws_b --ws-path /sub --api 127.0.0.1:$c_api_a"

cluster_run cluster-room-1k-100       10  $c_ws --clients 1000  --push-rate 100 $push
cluster_run cluster-room-10k-50       10  $c_ws --clients 10000 --push-rate 50  $push
cluster_run cluster-key-1k-1000       10  $c_ws --clients 1000 --push-mode key --push-rate 1000 $push
cluster_run cluster-key-1k-1000-fw500 500 $c_ws --clients 1000 --push-mode key --push-rate 1000 $push
# the batch API: 100 key pushes per request (POST /goim/push/batch)
cluster_run cluster-keybatch-1k-20000 10 $c_ws --clients 1000 --push-mode key --push-batch 100 --push-rate 20000 $push


# --- the report -----------------------------------------------------------------

elapsed=$(( $(date -u +%s) - started + elapsed0 ))
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

report=bench/RESULTS.md
[ -n "$only" ] || [ "$part" = local ] && report=$out/RESULTS.md
[ "$part" = local ] && echo "$elapsed" >"$out/local.elapsed"

BENCH_SO=$so_sha BENCH_REV=$rev_start \
BENCH_ELAPSED=$elapsed BENCH_LOAD_START=$load_start BENCH_LOAD_END=$load_end \
BENCH_WORKERS=$workers BENCH_DURATION=$dur NGINX=$nginx \
    perl bench/report.pl "$runs" >"$report.tmp" \
    && mv "$report.tmp" "$report" \
    || { rm -f "$report.tmp"; die "bench/report.pl failed"; }

echo "bench: $report written ($elapsed s)" >&2

exit $failed
