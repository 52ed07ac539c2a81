#!/bin/sh
# Runs the embedded single node (conf/goim-embedded.conf) in the
# foreground: renders the conf into a runtime directory, checks it, then
# replaces this shell with nginx, so Ctrl-C (SIGINT) or SIGTERM reach the
# nginx master directly and it shuts down at once (fast shutdown).
# Errors and info go to stderr; API requests to <run dir>/logs/access.log.
#
# Environment:
#   GOIM_LISTEN     listen address (default 127.0.0.1)
#   GOIM_WORKERS    worker_processes (default auto: one per core)
#   GOIM_LOG_LEVEL  error_log level (default info)
#   GOIM_RUN_DIR    runtime directory (default build/run)
#   NGINX           nginx binary (default nginx)

set -e

root=$(cd "$(dirname "$0")/.." && pwd)

listen=${GOIM_LISTEN:-127.0.0.1}
workers=${GOIM_WORKERS:-auto}
level=${GOIM_LOG_LEVEL:-info}
dir=${GOIM_RUN_DIR:-$root/build/run}
nginx=${NGINX:-nginx}
unset NGINX     # nginx itself reads NGINX as inherited listening sockets
stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
goim_module=$root/build/ngx_goim_module.so

die() {
    echo "run-embedded: $*" >&2
    exit 1
}

command -v "$nginx" >/dev/null 2>&1 \
    || die "$nginx not found (make deps installs Debian's nginx)"
[ -f "$stream_module" ] \
    || die "$stream_module missing (package libnginx-mod-stream)"
[ -f "$goim_module" ] || die "$goim_module missing: run make module"

# an IPv6 address goes in brackets in listen and in URLs
case $listen in
    *:*) host="[$listen]" ;;
    *)   host=$listen ;;
esac

case $dir in
    /*) ;;
    *)  dir=$(pwd)/$dir ;;
esac

mkdir -p "$dir/conf" "$dir/logs" "$dir/temp"

sed -e "s|@STREAM_MODULE@|$stream_module|" \
    -e "s|@GOIM_MODULE@|$goim_module|" \
    -e "s|@LISTEN@|$host|g" \
    -e "s|@ROOT@|$root|g" \
    -e "s|@WORKERS@|$workers|" \
    -e "s|@LOG_LEVEL@|$level|" \
    "$root/conf/goim-embedded.conf" >"$dir/conf/nginx.conf"

# -e stderr: nginx logs there until it has read error_log from the conf
"$nginx" -q -t -p "$dir/" -c "$dir/conf/nginx.conf" -e stderr \
    || die "nginx refused $dir/conf/nginx.conf"

api="http://$host:3111"

cat <<EOF
goim embedded node (runtime directory $dir)

  TCP comet        $host:3101
  WebSocket comet  ws://$host:3102/sub
  logic HTTP API   $api/goim/
  demo page        http://$host:3102/demo/

A client's first packet is op 7 (auth) with a JSON token, e.g.
  {"mid":123,"key":"dev-1","room_id":"live://1000","platform":"web","accepts":[1000,1001,1002]}
then a heartbeat (op 2) at least every 4 minutes.

Push to that room, that member, that key, or everyone watching op 1000:
  curl -d 'hello' '$api/goim/push/room?operation=1000&type=live&room=1000'
  curl -d 'hello' '$api/goim/push/mids?operation=1000&mids=123'
  curl -d 'hello' '$api/goim/push/keys?operation=1000&keys=dev-1'
  curl -d 'hello' '$api/goim/push/all?operation=1000'
Online counts:
  curl '$api/goim/online/total'

Workers: $workers (worker_processes).  Log: stderr (level $level).
Ctrl-C stops nginx.

EOF

exec "$nginx" -p "$dir/" -c "$dir/conf/nginx.conf" -e stderr \
    -g 'daemon off; master_process on;'
