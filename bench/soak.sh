#!/usr/bin/env bash
# make soak: 10k connections (half TCP, half WebSocket) held for SOAK_TIME
# seconds under room and key pushes, against one nginx (2 workers, the
# module, reuseport listeners, goim_status). Every SOAK_INTERVAL seconds
# it samples, from /proc and goim_status: the workers' RSS, the shared
# zone's use (goim_shm_bytes), the workers' open fds, goim connections,
# pushes and messages written. At the end it prints the table and a
# verdict, and writes both to bench/SOAK.md:
#
#   flat   RSS and shm at the end within SOAK_TOLERANCE % of the baseline
#          (the first sample after SOAK_WARMUP seconds of pushing), fds
#          = connections + the baseline's constant (± SOAK_FD_SLACK, for
#          the publishers' keep-alive API connections), every connection
#          still open, both workers the same processes, no crash or alert
#          in error.log, both goim-bench runs complete;
#   growing otherwise; exit status 1.
#
# Two build/goim-bench processes: TCP clients 0..N/2-1, whose publisher
# pushes to rooms (type=bench, SOAK_ROOMS rooms, shared by both halves),
# and WebSocket clients N/2..N-1, whose publisher pushes to their keys.
# Rows before and after the clients are informational (nginx keeps freed
# memory, so RSS does not go back down).
#
# Environment:
#   SOAK_TIME        seconds of pushing (600)
#   SOAK_INTERVAL    seconds between samples (30)
#   SOAK_WARMUP      seconds of pushing before the baseline sample (60;
#                    at most half of SOAK_TIME)
#   SOAK_CLIENTS     connections, half TCP, half WebSocket (10000)
#   SOAK_ROOMS       rooms (100)
#   SOAK_ROOM_RATE   room pushes/s (20)
#   SOAK_KEY_RATE    key pushes/s (100)
#   SOAK_TOLERANCE   % RSS and shm may be above the baseline at the end (10)
#   SOAK_FD_SLACK    fds − connections may differ from the baseline by (8)
#   SOAK_PORT_BASE   ports base+1 (TCP), +2 (WS), +11 (API) (32100)
#   SOAK_OUT         the report (bench/SOAK.md)
#   NGINX            nginx binary (nginx)
#
# Everything listens on 127.0.0.1; the exit trap stops the nginx and the
# goim-bench processes this script started. Needs curl.

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

me=soak
die_rc=2
. "$root/bench/lib.sh"

soak_time=${SOAK_TIME:-600}
interval=${SOAK_INTERVAL:-30}
warmup=${SOAK_WARMUP:-60}
clients=${SOAK_CLIENTS:-10000}
rooms=${SOAK_ROOMS:-100}
room_rate=${SOAK_ROOM_RATE:-20}
key_rate=${SOAK_KEY_RATE:-100}
tolerance=${SOAK_TOLERANCE:-10}
fd_slack=${SOAK_FD_SLACK:-8}
base=${SOAK_PORT_BASE:-32100}
report=${SOAK_OUT:-bench/SOAK.md}
nginx=${NGINX:-nginx}
unset NGINX     # nginx itself reads NGINX as inherited listening sockets

tcp_port=$((base + 1))
ws_port=$((base + 2))
api_port=$((base + 11))

dir=$root/build/soak
stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
goim_built=$root/build/ngx_goim_module.so
goim_module=$dir/ngx_goim_module.so         # this run's copy
bench=$root/build/goim-bench
workers=2
settle=5
inflight=4                                  # API connections per publisher

bench_pids=""


cleanup() {
    local p

    for p in $bench_pids; do
        kill -TERM "$p" 2>/dev/null
    done

    stop_nginx 10 QUIT

    for p in $bench_pids; do
        kill -KILL "$p" 2>/dev/null
    done
}

set_traps interrupted


# --- checks and settings --------------------------------------------------------

check_setup "$goim_built" "$bench"

for v in soak_time interval warmup clients rooms room_rate key_rate \
         tolerance fd_slack base
do
    case ${!v} in
        ''|*[!0-9]*) die "$v must be a number, not '${!v}'" ;;
    esac
done

[ "$interval" -ge 1 ] || die "SOAK_INTERVAL must be at least 1"
[ "$soak_time" -ge $((2 * interval)) ] \
    || die "SOAK_TIME must be at least twice SOAK_INTERVAL"
[ "$clients" -ge 2 ] || die "SOAK_CLIENTS must be at least 2"

# the baseline: the first sample at or after the warm-up, at most half way
[ "$warmup" -gt $((soak_time / 2)) ] && warmup=$((soak_time / 2))
warmup=$(( (warmup + interval - 1) / interval * interval ))

half=$((clients / 2))
clients_ws=$((clients - half))

ports_free SOAK_PORT_BASE $tcp_port $ws_port $api_port

rm -rf "$dir"
mkdir -p "$dir/conf" "$dir/logs" "$dir/temp"
cp "$goim_built" "$goim_module" || die "cannot copy $goim_built"

{
    echo "# bench/soak.sh: written for each run"
    goim_conf "$workers" "" "
        # the publishers' keep-alive connections stay open for the whole run
        keepalive_requests 1000000;
        keepalive_timeout 1h;
"
} >"$dir/conf/nginx.conf"


# --- sampling -------------------------------------------------------------------

status() {
    curl -s -m 5 "http://127.0.0.1:$api_port/goim/status" 2>/dev/null
}

# sample LABEL: one table row into $rows and its figures into globals
#   s_rss (kB, workers), s_shm (bytes used), s_fds, s_conns, s_pushes,
#   s_written
sample() {
    local p st

    s_rss=0
    s_fds=0

    for p in $worker_pids; do
        st=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        s_rss=$((s_rss + ${st:-0}))
        s_fds=$((s_fds + $(ls "/proc/$p/fd" 2>/dev/null | wc -l)))
    done

    read -r s_conns s_shm s_pushes s_written <<<"$(status | awk '
        /^goim_connections\{/             { c += $NF; n++ }
        /^goim_shm_bytes\{state="used"\}/ { s = $NF }
        /^goim_pushes_total\{/            { p += $NF }
        /^goim_messages_written_total\{/  { w += $NF }
        END {
            if (n == 0) { print "- - - -"; exit }
            printf "%d %d %d %d\n", c, s, p, w
        }')"

    rows+=("$(printf '| %s | %s | %.1f | %d | %s | %d | %s | %s | %s |' \
        "$1" "$s_conns" "$(awk -v k="$s_rss" 'BEGIN { print k / 1024 }')" \
        "$s_fds" "$(kb "$s_shm")" "$((s_fds - ${s_conns/-/0}))" \
        "$s_pushes" "$s_written" "$(date -u +%H:%M:%S)")")

    echo "soak: ${rows[-1]}" >&2
}

kb() {
    case $1 in
        ''|*[!0-9]*) echo "$1" ;;
        *) echo $(( $1 / 1024 )) ;;
    esac
}

rows=()


# --- the run ----------------------------------------------------------------------

rev=$(git rev-parse --short=12 HEAD 2>/dev/null)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . \
        && echo " (with local changes)")
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

start_nginx "$dir" "$workers" "http://127.0.0.1:$api_port/goim/status" 200 \
    || exit 2
sleep 1

sample "before clients"
fds_idle=$((s_fds))
shm_idle=$s_shm

common=(--rooms "$rooms" --api "127.0.0.1:$api_port" --inflight "$inflight"
        --settle "$settle" --duration $((soak_time + interval / 2 + 5))
        --drain 2 --server-pids "$master")

echo "soak: $clients clients ($half TCP, $clients_ws WebSocket) in $rooms" \
     "rooms, $room_rate room + $key_rate key pushes/s for $soak_time s;" \
     "nginx $master, workers $worker_pids" >&2

"$bench" --transport tcp --server "127.0.0.1:$tcp_port" --clients "$half" \
    --push-mode room --push-rate "$room_rate" "${common[@]}" \
    >"$dir/bench-tcp.json" 2>"$dir/bench-tcp.log" &
bench_pids="$!"

"$bench" --transport ws --server "127.0.0.1:$ws_port" --ws-path /sub \
    --clients "$clients_ws" --id-base "$half" \
    --push-mode key --push-rate "$key_rate" "${common[@]}" \
    >"$dir/bench-ws.json" 2>"$dir/bench-ws.log" &
bench_pids="$bench_pids $!"

# all connected (the pushes start $settle s after that)
deadline=$((SECONDS + 60 + clients / 1000))
while [ $SECONDS -lt $deadline ]; do
    n=$(status | awk '/^goim_online\{/ { n += $NF } END { print n + 0 }')
    [ "$n" -ge "$clients" ] && break
    sleep 0.5
done

[ "${n:-0}" -ge "$clients" ] \
    || echo "soak: only ${n:-0} of $clients clients online" >&2

sleep "$settle"
t0=$SECONDS

verdict=flat
reasons=()
base_row=""

t=0
while :; do
    sample "$t s"

    if [ $t -eq "$warmup" ]; then
        b_rss=$s_rss b_shm=$s_shm b_fds=$s_fds b_conns=$s_conns
        base_row=${#rows[@]}
    fi

    [ $t -ge "$soak_time" ] && break

    t=$((t + interval))
    while [ $((SECONDS - t0)) -lt $t ]; do
        sleep 1
    done

    for p in $worker_pids; do
        is_nginx "$p" || { echo "soak: worker $p is gone" >&2; break 2; }
    done
done

e_rss=$s_rss e_shm=$s_shm e_fds=$s_fds e_conns=$s_conns
end_t=$t

# the clients' reports, then a row with every client gone
bench_rc=0
for p in $bench_pids; do
    wait "$p" || bench_rc=1
done
bench_pids=""
sleep 2
sample "after clients"
a_fds=$s_fds a_shm=$s_shm


# --- verdict ----------------------------------------------------------------------

fail() {
    verdict=growing
    reasons+=("$*")
}

pct() {     # pct NOW BASE: change in %, one decimal
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", b ? (a - b) * 100 / b : 0 }'
}

if [ -z "$base_row" ] || [ "$end_t" -lt "$soak_time" ]; then
    fail "the run stopped at $end_t s of $soak_time"
    b_rss=${b_rss:-0} b_shm=${b_shm:-0} b_fds=${b_fds:-0} b_conns=${b_conns:-0}
fi

case "$b_conns$e_conns" in
    *[!0-9]*) fail "goim_status did not answer" ; b_conns=0 e_conns=0 ;;
esac

[ $((e_rss * 100)) -le $((b_rss * (100 + tolerance))) ] \
    || fail "worker RSS $((b_rss / 1024)) -> $((e_rss / 1024)) MB" \
            "($(pct "$e_rss" "$b_rss") %)"
[ $((e_shm * 100)) -le $((b_shm * (100 + tolerance))) ] \
    || fail "shm used $(kb "$b_shm") -> $(kb "$e_shm") KB" \
            "($(pct "$e_shm" "$b_shm") %)"

b_const=$((b_fds - b_conns))
e_const=$((e_fds - e_conns))
d=$((e_const - b_const))
[ ${d#-} -le "$fd_slack" ] \
    || fail "fds − connections $b_const -> $e_const"
[ "$e_conns" -eq "$clients" ] \
    || fail "$e_conns of $clients connections open at the end"

now_workers=$(echo $(children "$master"))
[ "$now_workers" = "$worker_pids" ] \
    || fail "workers changed: $worker_pids -> ${now_workers:-none}"

bad=$(grep -E '\[(alert|crit|emerg)\]|exited on signal' "$dir/logs/error.log" \
      | head -5)
[ -z "$bad" ] || fail "error.log: $(echo "$bad" | head -1)"

[ "$bench_rc" -eq 0 ] || fail "a goim-bench run was incomplete (see $dir)"


# --- report -----------------------------------------------------------------------

summary() {     # one goim-bench JSON line -> a short line
    awk '{
        n = split("ready sent delivered delivered_share lat_p50_ms " \
                  "lat_p99_ms client_errors api_errors completed", k, " ")
        out = ""
        for (i = 1; i <= n; i++) {
            v = "-"
            if (match($0, "\"" k[i] "\":[^,}]*")) {
                v = substr($0, RSTART + length(k[i]) + 3,
                           RLENGTH - length(k[i]) - 3)
            }
            out = out (i > 1 ? ", " : "") k[i] " " v
        }
        print out
    }' "$1"
}

{
    echo "# Soak: $clients connections for $soak_time s"
    echo
    echo "\`make soak SOAK_TIME=$soak_time\` (bench/soak.sh), $started," \
         "rev $rev$dirty, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" \
         "at the end."
    echo
    echo "nginx with $workers workers (reuseport), $half TCP + $clients_ws" \
         "WebSocket clients in $rooms rooms (build/goim-bench, heartbeat" \
         "30 s), $room_rate room pushes/s (TCP publisher) and $key_rate key" \
         "pushes/s (WebSocket publisher) over $((2 * inflight)) keep-alive" \
         "API connections. One sample every $interval s; 0 s is when the" \
         "pushes start, the baseline is the $warmup s row."
    echo
    echo "| sample | conns | worker RSS (MB) | worker fds | shm used (KB) | fds − conns | pushes | messages written | time (UTC) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "From the baseline ($warmup s) to the end ($end_t s): worker RSS" \
         "$(pct "$e_rss" "$b_rss") %, shm used $(pct "$e_shm" "$b_shm") %," \
         "fds − connections $b_const -> $e_const (tolerance +$tolerance %," \
         "± $fd_slack fds). After the clients left: $a_fds fds" \
         "(before: $fds_idle), shm used $(kb "$a_shm") KB" \
         "(before: $(kb "$shm_idle") KB)."
    echo
    echo "- TCP, room pushes: $(summary "$dir/bench-tcp.json")"
    echo "- WebSocket, key pushes: $(summary "$dir/bench-ws.json")"
    echo
    echo "(The WebSocket clients also receive the room pushes, so their" \
         "delivered count is above the key pushes sent.)"
    echo
    if [ "$verdict" = flat ]; then
        echo "**Verdict: flat.**"
    else
        echo "**Verdict: growing** —"
        printf -- '- %s\n' "${reasons[@]}"
    fi
} >"$dir/SOAK.md"

cp "$dir/SOAK.md" "$report"
cat "$report"

[ "$verdict" = flat ]
