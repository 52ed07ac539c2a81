#!/bin/sh
# bench/instr.sh (make bench-instr): what goim_history costs the fan-out,
# in instructions, which do not move with the machine's load as CPU time
# does (bench/RESULTS.md section 7).
#
# nginx runs as one process (master_process off) under valgrind's
# callgrind.  For each shape, goim-bench connects CLIENTS WebSocket
# clients to one room; once goim_status counts them all, callgrind's
# counts are zeroed; RATE room pushes a second go for DUR seconds, then
# goim-bench drains and reports; the counts are dumped.  The dump holds
# nginx's instructions for the pushes, their deliveries and the window's
# few heartbeats (one an hour a client, spread), divided here by the
# deliveries.  The runs alternate history off and on (goim_history
# size=64 ttl=10m), REPS pairs a shape.
# Rates are low because callgrind runs nginx some 50 times slower: the
# worker keeps up, so frames merge as they would at full speed.  The
# kernel's share is not counted (history adds no write: section 7).
#
# Environment:
#   INSTR_SHAPES   "CLIENTS:RATE:DUR ..." (1000:50:10 10000:10:10)
#   INSTR_REPS     pairs per shape (2)
#   INSTR_MODULE   the goim module (build/ngx_goim_module.so), e.g. another
#                  revision's, for a before and after
#   INSTR_PORT_BASE  ports BASE+1, +2, +11 (32100)
#   NGINX          nginx binary (nginx)
#
# Output: build/bench/instr/<run>/ (conf, logs, bench.json, callgrind
# files), build/bench/instr/runs.jsonl, a table on stdout.  Exit 1 when
# a run did not deliver every message or produced no count.

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

me=bench-instr
. "$root/bench/lib.sh"

nginx=${NGINX:-nginx}
unset NGINX
shapes=${INSTR_SHAPES:-1000:50:10 10000:10:10}
reps=${INSTR_REPS:-2}
base=${INSTR_PORT_BASE:-32100}
tcp_port=$((base + 1))
ws_port=$((base + 2))
api_port=$((base + 11))

stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
goim_module=${INSTR_MODULE:-$root/build/ngx_goim_module.so}
bench=$root/build/goim-bench
out=$root/build/bench/instr
runs=$out/runs.jsonl

vg=""
cur_bench=""
failed=0


cleanup() {
    stop_pid "$cur_bench"
    stop_pid "$vg"
}

set_traps interrupted

check_setup "$goim_module" "$bench"
command -v valgrind >/dev/null 2>&1 || die "valgrind not found (make deps)"
command -v callgrind_control >/dev/null 2>&1 \
    || die "callgrind_control not found (make deps)"
ports_free INSTR_PORT_BASE "$tcp_port" "$ws_port" "$api_port"

rm -rf "$out"
mkdir -p "$out"


connections() {
    curl -s -m 5 "http://127.0.0.1:$api_port/goim/status" \
        | awk '/^goim_connections/ { n += $2 } END { print n + 0 }'
}


# one ID CLIENTS RATE DUR HISTORY("" or "size=64 ttl=10m")
one() {
    local id clients rate dur hline dir i ir n expected batches

    id=$1
    clients=$2
    rate=$3
    dur=$4
    hline=""
    [ -n "$5" ] && hline="goim_history $5;"
    dir=$out/$id

    mkdir -p "$dir/conf" "$dir/logs" "$dir/temp"
    goim_conf 1 "goim_room_flush 100ms;
$hline" "" \
        | sed -e 's|^daemon on;|daemon off;|' \
              -e 's|^master_process on;|master_process off;|' \
        >"$dir/conf/nginx.conf"

    valgrind --tool=callgrind \
        --callgrind-out-file="$dir/callgrind.out.%p" \
        "$nginx" -p "$dir/" -c conf/nginx.conf -e logs/error.log \
        >"$dir/logs/valgrind.log" 2>&1 &
    vg=$!

    i=0
    until curl -s -o /dev/null -m 1 "http://127.0.0.1:$api_port/"; do
        i=$((i + 1))
        [ $i -lt 150 ] || { echo "$me: $id: nginx did not start" >&2;
                            stop_pid "$vg"; vg=""; failed=1; return; }
        sleep 0.2
    done

    echo "$me: $id: $clients clients, $rate pushes/s for $dur s," \
         "history ${5:-off}" >&2

    "$bench" --transport ws --server "127.0.0.1:$ws_port" --ws-path /sub \
        --api "127.0.0.1:$api_port" --clients "$clients" \
        --push-rate "$rate" --duration "$dur" --settle 3 --drain 3 \
        --heartbeat 3600 --inflight 16 >"$dir/bench.json" 2>"$dir/bench.log" &
    cur_bench=$!

    i=0
    while [ "$(connections)" -lt "$clients" ] && [ $i -lt 600 ]; do
        sleep 0.2
        i=$((i + 1))
    done

    callgrind_control -z "$vg" >/dev/null 2>&1
    wait "$cur_bench"
    cur_bench=""
    callgrind_control -d "$vg" >/dev/null 2>&1

    # frames: the room's batches (goim_room_flush merges pushes), counted
    # after the dump
    batches=$(curl -s -m 30 "http://127.0.0.1:$api_port/goim/status" \
        | awk '/^goim_room_batches_total/ { n += $2 } END { print n + 0 }')

    stop_pid "$vg"
    vg=""

    ir=$(awk '/^summary:/ { print $2 }' "$dir"/callgrind.out.*.1 2>/dev/null)
    # the run's totals come first; per-push figures follow
    n=$(tail -n 1 "$dir/bench.json" | grep -o '"delivered":[0-9]*' \
        | head -n 1 | cut -d: -f2)
    expected=$(tail -n 1 "$dir/bench.json" | grep -o '"expected":[0-9]*' \
        | head -n 1 | cut -d: -f2)

    if [ -z "$ir" ] || [ -z "$n" ] || [ "$n" != "$expected" ] \
       || [ "$n" -eq 0 ]
    then
        echo "$me: $id: no count, or not every message delivered" \
             "(delivered ${n:-?} of ${expected:-?})" >&2
        failed=1
        ir=${ir:-0}
        n=${n:-0}
    fi

    printf '{"id":"%s","clients":%s,"rate":%s,"duration":%s,' \
        "$id" "$clients" "$rate" "$dur" >>"$runs"
    printf '"history":"%s","instructions":%s,"delivered":%s,' \
        "${5:-off}" "$ir" "$n" >>"$runs"
    printf '"room_batches":%s}\n' "$batches" >>"$runs"
}


for shape in $shapes; do
    clients=${shape%%:*}
    rest=${shape#*:}
    rate=${rest%%:*}
    dur=${rest#*:}

    r=1
    while [ $r -le "$reps" ]; do
        one "instr-$clients-$rate-off-$r" "$clients" "$rate" "$dur" ""
        one "instr-$clients-$rate-on-$r" "$clients" "$rate" "$dur" \
            "size=64 ttl=10m"
        r=$((r + 1))
    done
done

# the table: instructions per delivery, each run; on / off per pair and
# over the shape's runs
awk -F'[{}:,"]+' '
{
    for (i = 1; i < NF; i++) v[$i] = $(i + 1)
    shape = v["clients"] "@" v["rate"]
    per = v["delivered"] ? v["instructions"] / v["delivered"] : 0
    printf "%-21s %-15s %10s instr. %8s deliveries %5s frames %6.1f each\n",
           v["id"], v["history"], v["instructions"], v["delivered"],
           v["room_batches"], per
    if (v["history"] == "off") { off[shape] += per; noff[shape]++; last = per }
    else {
        on[shape] += per; non[shape]++
        if (last) printf "%-22s pair: on / off %.3fx\n", "", per / last
    }
    if (!(shape in seen)) { seen[shape] = 1; order[++ns] = shape }
}
END {
    for (k = 1; k <= ns; k++) {
        s = order[k]
        if (noff[s] && non[s] && off[s])
            printf "%s: mean on %.1f / mean off %.1f = %.3fx\n", s,
                   on[s] / non[s], off[s] / noff[s],
                   (on[s] / non[s]) / (off[s] / noff[s])
    }
}' "$runs"

exit $failed
