# bench/lib.sh: shell helpers shared by bench/run.sh (and bench/cluster.sh,
# which it sources), bench/run-100k.sh and bench/soak.sh, sourced by them
# (POSIX sh: run.sh and run-100k.sh run under sh, soak.sh under bash).
#
# The sourcing script sets, before it calls these:
#   me            the prefix of its messages ("bench", "soak", ...)
#   die_rc        the exit status of die (1 when unset)
#   nginx         the nginx binary
# and uses these, which the nginx helpers set and clear:
#   master        the pid of the nginx master this script started
#   worker_pids   its workers when it started (space separated)

master=""
worker_pids=""


die() {
    echo "$me: $*" >&2
    exit "${die_rc:-1}"
}


is_nginx() {
    [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = nginx ]
}


children() {
    cat "/proc/$1/task/$1/children" 2>/dev/null
}


# set_traps MESSAGE: run cleanup (the script's) on any exit; on INT, TERM
# and HUP say "$me: MESSAGE" and exit 130
set_traps() {
    trap cleanup EXIT
    trap "echo \"\$me: $1\" >&2; exit 130" INT TERM HUP
}


# ports_free VARIABLE PORT...: die unless every PORT is free on this
# machine, naming the VARIABLE that moves them
ports_free() {
    local var p

    var=$1
    shift
    for p in "$@"; do
        if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
            die "port $p is in use: set $var"
        fi
    done
}


# check_setup MODULE BENCH: nginx, curl, the stream module, the goim
# module MODULE and the goim-bench binary BENCH are there
check_setup() {
    command -v "$nginx" >/dev/null 2>&1 || die "$nginx not found (make deps)"
    command -v curl >/dev/null 2>&1 || die "curl not found"
    [ -f "$stream_module" ] || die "$stream_module missing (libnginx-mod-stream)"
    [ -f "$1" ] || die "$1 missing: make module"
    [ -x "$2" ] || die "$2 missing: make tools"
}


# stop_pid PID: TERM, up to 5 s, then KILL it and its children
stop_pid() {
    local kids i p

    [ -n "$1" ] || return 0
    kill -0 "$1" 2>/dev/null || return 0

    kids=$(children "$1")
    kill -TERM "$1" 2>/dev/null
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    for p in $1 $kids; do
        kill -KILL "$p" 2>/dev/null
    done
}


# --- nginx ----------------------------------------------------------------------

# goim_conf WORKERS "MAIN" "API": an nginx.conf on stdout for the goim
# module ($stream_module, $goim_module) with WORKERS workers and reuseport
# listeners on 127.0.0.1: $tcp_port (goim_tcp), $ws_port (goim_websocket
# at /sub) and $api_port (goim_logic_api under /goim/, goim_status at
# /goim/status); MAIN lines go after events {}, API lines into the API
# server; $events_extra (if set) lines into events {}
goim_conf() {
    cat <<EOF
load_module $stream_module;
load_module $goim_module;

daemon on;
master_process on;
pid logs/nginx.pid;
error_log logs/error.log warn;

worker_processes $1;
worker_rlimit_nofile 20000;

events {
    worker_connections 19000;
${events_extra:-}}
$2
stream {
    server {
        listen 127.0.0.1:$tcp_port reuseport backlog=4096;
        goim_tcp;
    }
}

http {
    default_type application/octet-stream;
    access_log off;

    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;

    server {
        listen 127.0.0.1:$ws_port reuseport backlog=4096;

        location = /sub {
            goim_websocket;
        }

        location / {
            return 404;
        }
    }

    server {
        listen 127.0.0.1:$api_port reuseport backlog=4096;
$3
        location /goim/ {
            goim_logic_api;
        }

        location = /goim/status {
            goim_status;
        }

        location / {
            return 404;
        }
    }
}
EOF
}


# start_nginx PREFIX WORKERS URL CODE: start nginx on PREFIX/conf/nginx.conf
# and wait (10 s at most) until it has WORKERS workers and URL answers
# CODE; sets master and worker_pids.  Says why and returns 1 when it
# cannot: master is then set if nginx did start.
start_nginx() {
    local i n code

    "$nginx" -q -t -p "$1/" -c conf/nginx.conf -e logs/error.log \
        || { echo "$me: nginx refused $1/conf/nginx.conf" >&2; return 1; }

    "$nginx" -p "$1/" -c conf/nginx.conf -e logs/error.log \
        || { echo "$me: nginx did not start ($1)" >&2; return 1; }

    i=0
    while [ ! -s "$1/logs/nginx.pid" ] && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done

    master=$(cat "$1/logs/nginx.pid" 2>/dev/null)
    [ -n "$master" ] || { echo "$me: no pid file in $1" >&2; return 1; }

    i=0
    while [ $i -lt 100 ]; do
        worker_pids=$(echo $(children "$master"))
        n=$(echo $worker_pids | wc -w)
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$3" 2>/dev/null)
        [ "$n" -ge "$2" ] && [ "$code" = "$4" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done

    echo "$me: nginx in $1 not ready" >&2
    return 1
}


# stop_nginx SECONDS [SIGNAL]: SIGNAL (TERM) to the master, up to SECONDS
# for it to go, then KILL; KILL any of its workers still there (e.g.
# after a KILL of the master); clears master and worker_pids
stop_nginx() {
    local sig i p

    [ -n "$master" ] || return 0
    sig=${2:-TERM}

    if is_nginx "$master"; then
        kill -"$sig" "$master" 2>/dev/null
        i=0
        while is_nginx "$master" && [ $i -lt $(($1 * 10)) ]; do
            sleep 0.1
            i=$((i + 1))
        done
        if is_nginx "$master"; then
            echo "$me: nginx $master ignored $sig for $1 s, KILL" >&2
            kill -KILL "$master" 2>/dev/null
        fi
    fi

    for p in $worker_pids; do
        if is_nginx "$p"; then
            kill -KILL "$p" 2>/dev/null
        fi
    done

    master=""
    worker_pids=""
}


# server_health: alive (true/false: the master is still nginx) and lost
# (how many of worker_pids are gone)
server_health() {
    local p

    alive=false
    is_nginx "$master" && alive=true
    lost=0
    for p in $worker_pids; do
        is_nginx "$p" || lost=$((lost + 1))
    done
}


# goim_scrape URL...: the goim_status counters at those URLs (one node
# each), summed over nodes and workers, as one JSON object ("null" when
# none answered)
goim_scrape() {
    local u

    for u in "$@"; do
        curl -s -m 3 "$u" 2>/dev/null
    done \
    | awk '
        /^goim_messages_written_total\{/ { w += $NF; n++ }
        /^goim_bytes_written_total\{/    { by += $NF }
        /^goim_room_batches_total\{/     { b += $NF }
        /^goim_dropped_total\{/          { d += $NF }
        /^goim_pushes_total\{/           { p += $NF }
        /^goim_kafka_messages_total\{.*state="acked"/      { ka += $NF }
        /^goim_kafka_messages_total\{.*state="failed"/     { kf += $NF }
        /^goim_kafka_messages_total\{.*state="queue_full"/ { kq += $NF }
        /^goim_kafka_latency_ms_total\{/ { kl += $NF }
        /^goim_internal_requests_total\{/ { ir += $NF }
        /^goim_internal_pushes_total\{/   { ip += $NF }
        /^goim_shm_bytes\{state="used"\}/ { su += $NF }
        /^goim_history_rooms /           { hr += $NF }
        /^goim_history_messages /        { hm += $NF }
        /^goim_history_bytes /           { hb += $NF }
        /^goim_history_dropped_total\{/  { hd += $NF }
        /^goim_history_unpositioned_total / { hu += $NF }
        /^goim_recover_total\{.*result="ok"/     { ro += $NF }
        /^goim_recover_total\{.*result="failed"/ { rf += $NF }
        /^goim_recover_messages_total\{/ { rm += $NF }
        END {
            if (n == 0) { printf "null"; exit }
            printf "{\"written\":%.0f,\"bytes\":%.0f,\"batches\":%.0f," \
                   "\"dropped\":%.0f,\"pushes\":%.0f,", w, by, b, d, p
            printf "\"kafka_acked\":%.0f,\"kafka_failed\":%.0f," \
                   "\"kafka_queue_full\":%.0f,\"kafka_latency_ms\":%.0f," \
                   "\"internal_requests\":%.0f,\"internal_pushes\":%.0f,",
                   ka, kf, kq, kl, ir, ip
            printf "\"shm_used\":%.0f,\"history_rooms\":%.0f," \
                   "\"history_messages\":%.0f,\"history_bytes\":%.0f," \
                   "\"history_dropped\":%.0f,\"history_unpositioned\":%.0f,",
                   su, hr, hm, hb, hd, hu
            printf "\"recover_ok\":%.0f,\"recover_failed\":%.0f," \
                   "\"recover_messages\":%.0f}", ro, rf, rm
        }'
}


# --- /proc ----------------------------------------------------------------------

# proc_ticks PID...: utime + stime clock ticks of those processes so far
proc_ticks() {
    local p

    for p in "$@"; do
        cat "/proc/$p/stat" 2>/dev/null
    done | awk '{ sub(/.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}


# overflows: the machine's TCP listen queue overflows so far
overflows() {
    awk '/^TcpExt:/ {
        if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1; next }
        print $col["ListenOverflows"]
    }' /proc/net/netstat
}
