#!/usr/bin/env bash
# Runs the whole cluster on loopback in the foreground (`make
# run-cluster`): redis-server, kafka-mock, two nginx nodes (comet + logic
# API, conf/goim-cluster.conf) and the job (conf/goim-job.conf's settings
# with this cluster's addresses). Prints each node's ports and how to
# connect and push; Ctrl-C (or SIGTERM) stops everything it started, in
# reverse order. A part that exits on its own (a crash, a kill) is
# started again, after a delay that doubles from 1 s up to 30 s while it
# keeps exiting within 30 s of its start; each exit and start is logged
# on stderr. A new kafka-mock has a new address: both nodes are reloaded
# with it and the job is restarted.
#
# Environment:
#   GOIM_RUN_DIR     runtime directory (default build/cluster)
#   GOIM_REDIS_PORT  redis-server's port (default 6379)
#   GOIM_PORT_BASE   the nodes' and the job's ports: comet-a base+1 (TCP),
#                    +2 (WS), +11 (API), +12 (internal), comet-b the same
#                    +100, the job's metrics +19 (default 3100)
#   GOIM_LOG_LEVEL   nginx error_log level (default info)
#   GOIM_JOB_EXTRA   directives appended to the job's configuration, e.g.
#                    "kafka_option fetch.wait.max.ms 10;" (default none)
#   NGINX            nginx binary (default nginx)

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${GOIM_RUN_DIR:-$root/build/cluster}
redis_port=${GOIM_REDIS_PORT:-6379}
base=${GOIM_PORT_BASE:-3100}
level=${GOIM_LOG_LEVEL:-info}
nginx=${NGINX:-nginx}
unset NGINX     # nginx itself reads NGINX as inherited listening sockets
stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
goim_module=$root/build/ngx_goim_module.so
job=$root/build/goim-job
mock=$root/build/kafka-mock
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

# node: name tcp ws api internal
api_a=$((base + 11))
api_b=$((base + 111))
nodes=("comet-a $((base + 1)) $((base + 2)) $api_a $((base + 12))"
       "comet-b $((base + 101)) $((base + 102)) $api_b $((base + 112))")
job_status=$((base + 19))

die() {
    echo "run-cluster: $*" >&2
    exit 1
}

case $dir in
    /*) ;;
    *)  dir=$(pwd)/$dir ;;
esac

command -v "$nginx" >/dev/null 2>&1 || die "$nginx not found (make deps)"
command -v redis-server >/dev/null 2>&1 \
    || die "redis-server not found (make deps)"
for f in "$stream_module" "$goim_module" "$job" "$mock"; do
    [ -e "$f" ] || die "$f missing: run make"
done

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for p in "$redis_port" $job_status $(printf '%s\n' "${nodes[@]}" \
                                     | awk '{ print $2, $3, $4, $5 }'); do
    port_free "$p" || die "port $p is in use on 127.0.0.1"
done

rm -rf "$dir"
mkdir -p "$dir/redis" "$dir/kafka" "$dir/job"

# the parts in start order; per part its pid (0 while it is down), name,
# start time, and the delay and time of its next start
parts=(redis mock node0 node1 job)
declare -A pid name born delay due
name=([redis]=redis-server [mock]=kafka-mock [node0]="nginx comet-a"
      [node1]="nginx comet-b" [job]=goim-job)
for p in "${parts[@]}"; do
    pid[$p]=0
    delay[$p]=1
    due[$p]=0
done

log() {
    echo "run-cluster: $*" >&2
}

stop_all() {
    trap - INT TERM EXIT
    local i p
    echo
    for ((i = ${#parts[@]} - 1; i >= 0; i--)); do
        p=${parts[i]}
        if [ "${pid[$p]}" -gt 0 ] && kill -0 "${pid[$p]}" 2>/dev/null; then
            log "stopping ${name[$p]} (pid ${pid[$p]})"
            kill -TERM "${pid[$p]}" 2>/dev/null
            wait "${pid[$p]}" 2>/dev/null
        fi
    done
    exit "${1:-0}"
}
trap 'stop_all 0' INT TERM
trap 'stop_all 1' EXIT

wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# --- each part ------------------------------------------------------------

start_redis() {
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize no --dir "$dir/redis" \
        >>"$dir/redis/redis.log" 2>&1 &
    pid[redis]=$!
}

# kafka-mock cannot choose its port: each start has a new address
start_mock() {
    local i
    "$mock" >"$dir/kafka/bootstrap" 2>>"$dir/kafka/kafka-mock.log" &
    pid[mock]=$!
    brokers=
    for ((i = 0; i < 100; i++)); do
        brokers=$(head -1 "$dir/kafka/bootstrap" 2>/dev/null)
        [ -n "$brokers" ] && return 0
        sleep 0.1
    done
    return 1
}

# node_conf N: node N's nginx.conf for the current brokers, checked
node_conf() {
    local id tcp ws api internal d
    read -r id tcp ws api internal <<<"${nodes[$1]}"
    d=$dir/$id
    mkdir -p "$d/conf" "$d/logs" "$d/temp"
    sed -e "s|@STREAM_MODULE@|$stream_module|" \
        -e "s|@GOIM_MODULE@|$goim_module|" \
        -e "s|@ERROR_LOG@|logs/error.log|" \
        -e "s|@LOG_LEVEL@|$level|" \
        -e "s|@WORKERS@|auto|" \
        -e "s|@SERVER_ID@|$id|" \
        -e "s|@LISTEN@|127.0.0.1|g" \
        -e "s|@TCP_PORT@|$tcp|g" \
        -e "s|@WS_PORT@|$ws|g" \
        -e "s|@API_PORT@|$api|g" \
        -e "s|@INTERNAL_PORT@|$internal|g" \
        -e "s|@INTERNAL_URL_PORT@|$internal|g" \
        -e "s|@ONLINE_INTERVAL@|2s|" \
        -e "s|@REDIS@|127.0.0.1:$redis_port|" \
        -e "s|@KAFKA@|$brokers|" \
        -e "s|@SECRET@|$secret|" \
        "$root/conf/goim-cluster.conf" >"$d/conf/nginx.conf"
    "$nginx" -q -t -p "$d/" -c conf/nginx.conf -e stderr
}

start_node() {
    local d=$dir/${nodes[$1]%% *}
    "$nginx" -p "$d/" -c conf/nginx.conf -e "$d/logs/error.log" \
        -g 'daemon off;' &
    pid[node$1]=$!
}

# the job's configuration for the current brokers, checked
job_conf() {
    sed -e "s|^\(kafka_brokers \).*|\1$brokers;|" \
        -e "s|^\(redis \).*|\1127.0.0.1:$redis_port;|" \
        -e "s|^\(internal_secret \).*|\1$secret;|" \
        -e "s|^\(status_listen \).*|\1127.0.0.1:$job_status;|" \
        -e "s|^# *\(log_file \).*|\1$dir/job/goim-job.log;|" \
        "$root/conf/goim-job.conf" >"$dir/job/goim-job.conf"
    # kafka-mock answers a fetch that finds no data only when the
    # consumer's fetch.wait.max.ms is over (a real broker answers as soon
    # as a message arrives): a short wait keeps the demo's latency close
    # to a real one's
    echo "kafka_option fetch.wait.max.ms 10;" >>"$dir/job/goim-job.conf"
    if [ -n "${GOIM_JOB_EXTRA:-}" ]; then
        echo "$GOIM_JOB_EXTRA" >>"$dir/job/goim-job.conf"
    fi
    "$job" -c "$dir/job/goim-job.conf" -t >/dev/null
}

start_job() {
    "$job" -c "$dir/job/goim-job.conf" &
    pid[job]=$!
}

# start PART: returns 1 when it could not be started at all
start() {
    born[$1]=$SECONDS
    case $1 in
        redis)  start_redis ;;
        mock)   start_mock ;;
        node0)  start_node 0 ;;
        node1)  start_node 1 ;;
        job)    start_job ;;
    esac
}

# --- the first start: any failure stops everything -------------------------

start redis
wait_port "$redis_port" || die "redis-server did not start ($dir/redis)"

start mock || die "kafka-mock printed no bootstrap address"

for n in 0 1; do
    read -r id _ _ api _ <<<"${nodes[$n]}"
    node_conf $n || die "nginx refused $dir/$id/conf/nginx.conf"
    start node$n
    wait_port "$api" || die "nginx $id did not start ($dir/$id/logs/error.log)"
done

job_conf || die "goim-job refused $dir/job/goim-job.conf"
start job

cat <<EOF
goim cluster on 127.0.0.1 (runtime directory $dir)

  redis-server     127.0.0.1:$redis_port
  kafka-mock       $brokers (topic goim-push-topic)
  goim-job         metrics http://127.0.0.1:$job_status/metrics, log $dir/job/goim-job.log
EOF
for node in "${nodes[@]}"; do
    read -r id tcp ws api internal <<<"$node"
    cat <<EOF
  $id  TCP 127.0.0.1:$tcp  WebSocket ws://127.0.0.1:$ws/sub  API http://127.0.0.1:$api/goim/
           status http://127.0.0.1:$api/status  internal push :$internal (job only)
EOF
done
cat <<EOF

A client's first packet is op 7 (auth) with a JSON token, e.g.
  {"mid":123,"key":"dev-1","room_id":"live://1000","platform":"web","accepts":[1000]}
on either node; then a heartbeat (op 2) at least every 4 minutes.

Push through either node's API: it publishes to Kafka, answers after the
ack, and the job delivers to the clients on both nodes:
  curl -d 'hello' 'http://127.0.0.1:$api_a/goim/push/room?operation=1000&type=live&room=1000'
  curl -d 'hello' 'http://127.0.0.1:$api_b/goim/push/mids?operation=1000&mids=123'
  curl -d 'hello' 'http://127.0.0.1:$api_a/goim/push/keys?operation=1000&keys=dev-1'
  curl -d 'hello' 'http://127.0.0.1:$api_a/goim/push/all?operation=1000'
  curl 'http://127.0.0.1:$api_a/goim/online/total'

A part that exits is started again; Ctrl-C stops everything.

EOF

# --- supervision: a part that exits is started again ----------------------

# a new kafka-mock has a new address: the nodes reload with it and the
# job is restarted with it (by the loop below, once it has exited)
mock_moved() {
    local n
    for n in 0 1; do
        if node_conf $n && [ "${pid[node$n]}" -gt 0 ]; then
            log "reloading ${name[node$n]} for kafka-mock at $brokers"
            kill -HUP "${pid[node$n]}" 2>/dev/null
        fi
    done
    if job_conf && [ "${pid[job]}" -gt 0 ]; then
        log "stopping goim-job to restart it for kafka-mock at $brokers"
        kill -TERM "${pid[job]}" 2>/dev/null
        delay[job]=1
    fi
}

# backoff PART: the next start after the current delay, which doubles
# up to 30 s
backoff() {
    due[$1]=$((SECONDS + delay[$1]))
    delay[$1]=$((delay[$1] * 2 > 30 ? 30 : delay[$1] * 2))
}

while :; do
    for p in "${parts[@]}"; do
        if [ "${pid[$p]}" -gt 0 ]; then
            kill -0 "${pid[$p]}" 2>/dev/null && continue
            wait "${pid[$p]}" 2>/dev/null
            status=$?
            ran=$((SECONDS - born[$p]))
            # one that ran for a while starts again at the first delay
            [ $ran -ge 30 ] && delay[$p]=1
            log "${name[$p]} (pid ${pid[$p]}) exited with status $status" \
                "after ${ran}s; starting it again in ${delay[$p]}s"
            pid[$p]=0
            backoff "$p"
        elif [ "$SECONDS" -ge "${due[$p]}" ]; then
            if start "$p"; then
                log "${name[$p]} started again (pid ${pid[$p]})"
                [ "$p" = mock ] && mock_moved
            else
                log "${name[$p]} could not be started; trying again in" \
                    "${delay[$p]}s"
                backoff "$p"
            fi
        fi
    done
    # in the background, so that INT and TERM are handled at once
    sleep 0.2 &
    wait $!
done
