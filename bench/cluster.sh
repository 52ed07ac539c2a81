# bench/cluster.sh: the cluster scenarios of bench/run.sh, sourced by it
# after bench/lib.sh (POSIX sh).
#
# Each run starts the whole cluster with conf/run-cluster.sh in the
# background (redis-server, kafka-mock, comet-a and comet-b from
# conf/goim-cluster.conf, goim-job) under build/bench/<run>/cluster, on
# ports of its own (GOIM_PORT_BASE = BENCH_PORT_BASE + 300, Redis on
# BENCH_PORT_BASE + 379), waits until the job consumes and sees both
# comets, runs goim-bench with its clients on comet-b and its publisher
# on comet-a's API, so that every message goes API -> Kafka -> job ->
# comet-b's internal push -> sockets, and stops the cluster again.
#
# Uses run.sh's out, bench, base, runs, failed, selected, host_cpu and
# overflows; sets and clears cluster_pid and the c_* pids below.
# cluster_stop is safe to call at any time (run.sh's cleanup calls it).

c_base=$((base + 300))
c_redis=$((base + 379))
c_tcp_b=$((c_base + 101))
c_ws_b=$((c_base + 102))
c_api_a=$((c_base + 11))
c_api_b=$((c_base + 111))
c_job=$((c_base + 19))

# every port the cluster listens on (ports_free checks them at the start)
c_ports="$((c_base + 1)) $((c_base + 2)) $c_api_a $((c_base + 12))
         $c_tcp_b $c_ws_b $c_api_b $((c_base + 112)) $c_job $c_redis"

cluster_pid=""      # conf/run-cluster.sh
c_dir=""            # its GOIM_RUN_DIR
c_master_a=""
c_master_b=""
c_workers=""        # both masters' workers when the cluster was ready
c_job_pid=""
c_mock_pid=""
c_redis_pid=""


# cluster_check: what the cluster runs need besides run.sh's checks
cluster_check() {
    command -v redis-server >/dev/null 2>&1 \
        || die "redis-server not found (make deps)"
    command -v bash >/dev/null 2>&1 || die "bash not found"
    [ -x build/goim-job ] || die "build/goim-job missing: make"
    [ -x build/kafka-mock ] || die "build/kafka-mock missing: make tools"
}


# the pid of COMM among PID's children
child_named() {     # child_named PID COMM
    local p

    for p in $(children "$1"); do
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ]; then
            echo "$p"
            return 0
        fi
    done

    return 1
}


# metric NAME: the value of the unlabelled NAME in the text on stdin
metric() {
    awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print -1 }'
}


# cluster_ready: 0 when the job has partitions, both comets, Kafka and
# Redis, both nodes have all their workers and every producer is up
cluster_ready() {
    local m s n

    c_master_a=$(cat "$c_dir/comet-a/logs/nginx.pid" 2>/dev/null)
    c_master_b=$(cat "$c_dir/comet-b/logs/nginx.pid" 2>/dev/null)
    [ -n "$c_master_a" ] && [ -n "$c_master_b" ] || return 1

    n=$(nproc)
    [ "$(children "$c_master_a" | wc -w)" -ge "$n" ] || return 1
    [ "$(children "$c_master_b" | wc -w)" -ge "$n" ] || return 1

    m=$(curl -s -m 1 "http://127.0.0.1:$c_job/metrics" 2>/dev/null)
    [ "$(echo "$m" | metric goim_job_assigned_partitions)" -ge 1 ] || return 1
    [ "$(echo "$m" | metric goim_job_comets)" -eq 2 ] || return 1
    [ "$(echo "$m" | metric goim_job_kafka_up)" -eq 1 ] || return 1
    [ "$(echo "$m" | metric goim_job_redis_up)" -eq 1 ] || return 1

    # a producer that is not up yet would answer the first pushes 503
    for s in $c_api_a $c_api_b; do
        curl -s -m 1 "http://127.0.0.1:$s/status" 2>/dev/null \
        | awk '/^goim_kafka_up\{/ { n++; if ($NF != 1) bad++ }
               END { exit !(n > 0 && !bad) }' || return 1
    done

    return 0
}


# cluster_start DIR FETCH_WAIT_MS: the cluster in DIR/cluster, its log in
# DIR/cluster.log, the job consuming with fetch.wait.max.ms FETCH_WAIT_MS;
# waits (40 s at most) until it is ready.  Says why and returns 1 when
# it does not get there (cluster_stop cleans up then).
cluster_start() {
    local i

    c_dir=$(pwd)/$1/cluster

    GOIM_RUN_DIR=$c_dir GOIM_PORT_BASE=$c_base GOIM_REDIS_PORT=$c_redis \
    GOIM_LOG_LEVEL=warn NGINX=$nginx \
    GOIM_JOB_EXTRA="kafka_option fetch.wait.max.ms $2;" \
        bash conf/run-cluster.sh >"$1/cluster.log" 2>&1 &
    cluster_pid=$!

    i=0
    while [ $i -lt 160 ]; do
        if ! kill -0 "$cluster_pid" 2>/dev/null; then
            echo "$me: run-cluster.sh exited, see $1/cluster.log" >&2
            return 1
        fi

        if cluster_ready; then
            c_workers=$(echo $(children "$c_master_a") \
                             $(children "$c_master_b"))
            c_job_pid=$(child_named "$cluster_pid" goim-job)
            c_mock_pid=$(child_named "$cluster_pid" kafka-mock)
            c_redis_pid=$(child_named "$cluster_pid" redis-server)
            return 0
        fi

        sleep 0.25
        i=$((i + 1))
    done

    echo "$me: the cluster in $c_dir was not ready in 40 s (job:" \
         "$(curl -s -m 1 "http://127.0.0.1:$c_job/metrics" \
            | grep -E '^goim_job_(assigned_partitions|comets|[a-z]+_up) ' \
            | tr '\n' ' '))" >&2
    return 1
}


# cluster_stop: TERM to run-cluster.sh, which stops its processes in
# reverse order; up to 20 s, then KILL whatever of it is left
cluster_stop() {
    local i p

    [ -n "$cluster_pid" ] || return 0

    kill -TERM "$cluster_pid" 2>/dev/null
    i=0
    while kill -0 "$cluster_pid" 2>/dev/null && [ $i -lt 200 ]; do
        sleep 0.1
        i=$((i + 1))
    done

    if kill -0 "$cluster_pid" 2>/dev/null; then
        echo "$me: run-cluster.sh ignored TERM for 20 s, KILL" >&2
        kill -KILL "$cluster_pid" 2>/dev/null
    fi
    wait "$cluster_pid" 2>/dev/null

    # a pid is killed only while it still is the process we started
    for p in $c_master_a $c_master_b $c_workers; do
        is_nginx "$p" && kill -KILL "$p" 2>/dev/null
    done
    for p in $c_job_pid $c_mock_pid $c_redis_pid; do
        case $(cat "/proc/$p/comm" 2>/dev/null) in
            goim-job|kafka-mock|redis-server) kill -KILL "$p" 2>/dev/null ;;
        esac
    done

    cluster_pid=""
    c_master_a=""
    c_master_b=""
    c_workers=""
    c_job_pid=""
    c_mock_pid=""
    c_redis_pid=""
}


# both nodes' goim_status counters summed over nodes and workers, as JSON
cluster_scrape() {
    goim_scrape "http://127.0.0.1:$c_api_a/status" \
                "http://127.0.0.1:$c_api_b/status"
}


# the job's counters, as JSON
job_scrape() {
    curl -s -m 3 "http://127.0.0.1:$c_job/metrics" 2>/dev/null \
    | awk '
        /^goim_job_[a-z_]+ [0-9]+$/ {
            k = substr($1, 10); v[k] = $2; n++
        }
        END {
            if (n == 0) { printf "null"; exit }
            split("consumed_total decode_errors_total undeliverable_total " \
                  "requests_ok_total requests_failed_total retries_total " \
                  "room_batches_total room_merged_total", ks, " ")
            printf "{"
            for (i = 1; i <= 8; i++) {
                k = ks[i]; sub(/_total$/, "", k)
                printf "%s\"%s\":%.0f", (i > 1 ? "," : ""), k, v[ks[i]]
            }
            printf "}"
        }'
}


# nginx_cpu of both nodes, the job's, kafka-mock's and redis-server's CPU
# seconds so far: "nginx job kafka redis"
cluster_cpu() {
    echo "$(proc_ticks $c_master_a $c_master_b \
                       $(children "$c_master_a") $(children "$c_master_b")) \
          $(proc_ticks $c_job_pid) $(proc_ticks $c_mock_pid) \
          $(proc_ticks $c_redis_pid)" \
    | awk '{ printf "%.2f %.2f %.2f %.2f", $1 / 100, $2 / 100, $3 / 100,
                                            $4 / 100 }'
}


# cpu_sample: "time nginx job kafka redis" (seconds) now
cpu_sample() {
    echo "$(date +%s.%N) $(cluster_cpu)"
}


# cpu_fields SAMPLE0 SAMPLE1: the wall time and CPU seconds between them
# as JSON fields
cpu_fields() {
    echo "$1 $2" | awk '{
        printf "\"wall_s\":%.2f,\"nginx_cpu_s\":%.2f,\"job_cpu_s\":%.2f,",
               $6 - $1, $7 - $2, $8 - $3
        printf "\"kafka_cpu_s\":%.2f,\"redis_cpu_s\":%.2f", $9 - $4, $10 - $5
    }'
}


# cluster_watch LOG PID: a cpu_sample as soon as goim-bench's progress in
# LOG shows that its clients are connected (settle or a later phase), so
# that the sample after the run covers the pushes, not the connects;
# nothing if PID ends first
cluster_watch() {
    while kill -0 "$2" 2>/dev/null; do
        if grep -q ' settle \| measure \| drain ' "$1" 2>/dev/null; then
            cpu_sample
            cluster_perf "$(dirname "$1")"
            return 0
        fi
        sleep 0.05
    done
}


# cluster_perf DIR: with BENCH_PERF=1, perf samples every process of the
# machine (call graphs, 499 Hz) for 8 s from the settle on, into
# DIR/perf.data; cluster_perf_report then writes where the time went by
# process and library (DIR/perf-dso.txt) and by function (DIR/perf-sym.txt).
# The sampling costs some CPU: figures of such runs are for the profile,
# not for the tables.
cluster_perf() {
    [ -n "${BENCH_PERF:-}" ] || return 0
    perf record -a -g -F 499 -o "$1/perf.data" -- sleep 8 >/dev/null 2>&1
}

cluster_perf_report() {
    [ -n "${BENCH_PERF:-}" ] && [ -f "$1/perf.data" ] || return 0
    perf report -i "$1/perf.data" --no-children --sort comm,dso --stdio \
        2>/dev/null | grep -v '^$' | head -60 >"$1/perf-dso.txt"
    perf report -i "$1/perf.data" --no-children --sort comm,dso,sym \
        --stdio -g none 2>/dev/null | grep -v '^$' | head -150 \
        >"$1/perf-sym.txt"
}


# cluster_run ID FETCH_WAIT_MS goim-bench-args...: one fresh cluster, one
# goim-bench run against it, one JSON line into $runs
cluster_run() {
    local id fw dir ccmd cmd rc load host0 host1 ovf0 ovf start end conn
    local busy before after jb ja result p lost alive_all signals watch
    local alerts crits errors jwarn jerr logs idle0 idle1

    id=$1
    fw=$2
    shift 2

    selected "$id" || return 0

    dir=$out/$id
    rm -rf "$dir"
    mkdir -p "$dir"

    ccmd="GOIM_RUN_DIR=$dir/cluster GOIM_PORT_BASE=$c_base"
    ccmd="$ccmd GOIM_REDIS_PORT=$c_redis GOIM_LOG_LEVEL=warn"
    ccmd="$ccmd GOIM_JOB_EXTRA='kafka_option fetch.wait.max.ms $fw;'"
    ccmd="$ccmd bash conf/run-cluster.sh &"
    cmd="$bench $* --server-pids <comet-a master>,<comet-b master>"
    echo "bench: $id: $ccmd" >&2
    echo "bench: $id: $cmd" >&2

    if ! cluster_start "$dir" "$fw"; then
        cluster_stop
        failed=1
        printf '{"id":"%s","server":"cluster","fetch_wait_ms":%s,' \
            "$id" "$fw" >>"$runs"
        printf '"cluster_cmd":"%s","cmd":"%s",' "$ccmd" "$cmd" >>"$runs"
        printf '"error":"the cluster did not start"}\n' >>"$runs"
        return 0
    fi

    # what the cluster costs with no client and no push (fetch polling,
    # registry refreshes)
    idle0=$(cpu_sample)
    sleep 2
    idle1=$(cpu_sample)

    load=$(cut -d' ' -f1 /proc/loadavg)
    before=$(cluster_scrape)
    jb=$(job_scrape)

    host0=$(host_cpu)
    ovf0=$(overflows)
    start=$(cpu_sample)

    "$bench" "$@" --server-pids "$c_master_a,$c_master_b" \
        >"$dir/bench.json" 2>"$dir/bench.log" &
    cur_bench=$!
    cluster_watch "$dir/bench.log" "$cur_bench" >"$dir/cpu.connected" &
    watch=$!
    wait "$cur_bench"
    rc=$?
    cur_bench=""

    end=$(cpu_sample)
    host1=$(host_cpu)
    ovf=$(( $(overflows) - ovf0 ))
    wait "$watch"
    conn=$(cat "$dir/cpu.connected")
    busy=$(echo "$host0 $host1" | awk '{ printf "%.2f", $3 - $1 }')

    after=$(cluster_scrape)
    ja=$(job_scrape)

    # health: both masters, every worker and the job still there
    alive_all=true
    for p in $c_master_a $c_master_b; do
        is_nginx "$p" || alive_all=false
    done
    [ "$(cat "/proc/$c_job_pid/comm" 2>/dev/null)" = goim-job ] \
        || alive_all=false
    lost=0
    for p in $c_workers; do
        is_nginx "$p" || lost=$((lost + 1))
    done

    logs="$dir/cluster/comet-a/logs/error.log"
    logs="$logs $dir/cluster/comet-b/logs/error.log"
    signals=$(cat $logs 2>/dev/null | grep -c 'exited on signal')
    alerts=$(cat $logs 2>/dev/null | grep -c '\[alert\]')
    crits=$(cat $logs 2>/dev/null | grep -c '\[crit\]\|\[emerg\]')
    errors=$(cat $logs 2>/dev/null | grep -c '\[error\]')
    jwarn=$(grep -c '\[warn\]' "$dir/cluster/job/goim-job.log" 2>/dev/null)
    jerr=$(grep -c '\[error\]' "$dir/cluster/job/goim-job.log" 2>/dev/null)

    cluster_stop
    cluster_perf_report "$dir"

    result=$(tail -n 1 "$dir/bench.json" 2>/dev/null)
    case $result in
        \{*\}) ;;
        *)     result=null; failed=1 ;;
    esac

    if [ "$alive_all" != true ] || [ "$lost" -ne 0 ] || [ "$signals" -ne 0 ]
    then
        failed=1
        echo "bench: $id: the cluster did not survive (nginx masters and" \
             "job alive $alive_all, workers gone $lost, exited on signal" \
             "$signals)" >&2
    fi

    printf '{"id":"%s","server":"cluster","workers":%s,"flush":"100ms",' \
        "$id" "$(nproc)" >>"$runs"
    printf '"fetch_wait_ms":%s,"cluster_cmd":"%s","cmd":"%s",' \
        "$fw" "$ccmd" "$cmd" >>"$runs"
    printf '"rc":%s,"load1":%s,"alive":%s,"host_busy_s":%s,%s,' \
        "$rc" "$load" "$alive_all" "$busy" "$(cpu_fields "$start" "$end")" \
        >>"$runs"
    printf '"listen_overflows":%s,"workers_gone":%s,' "$ovf" "$lost" >>"$runs"
    printf '"log_signal":%s,"log_alert":%s,"log_crit":%s,"log_error":%s,' \
        "$signals" "$alerts" "$crits" "$errors" >>"$runs"
    printf '"job_log_warn":%s,"job_log_error":%s,' "$jwarn" "$jerr" >>"$runs"
    printf '"cpu_idle":{%s},' "$(cpu_fields "$idle0" "$idle1")" >>"$runs"
    if [ -n "$conn" ]; then
        printf '"cpu_pushes":{%s},' "$(cpu_fields "$conn" "$end")" >>"$runs"
    fi
    printf '"status_before":%s,"status_after":%s,' "$before" "$after" \
        >>"$runs"
    printf '"job_before":%s,"job_after":%s,"bench":%s}\n' "$jb" "$ja" \
        "$result" >>"$runs"

    echo "bench: $id: $(echo "$result" | cut -c1-300)" >&2
}
