#!/bin/sh
# Installs, when missing, every Debian package that build, run, tests and
# benchmarks need.  Idempotent; needs root (or sudo) only when something is
# missing.

set -e

PKGS="nginx nginx-dev libnginx-mod-stream libnginx-mod-nchan
      gcc make pkg-config perl libtest-base-perl libio-socket-ssl-perl
      libprotobuf-c-dev protobuf-c-compiler libhiredis-dev librdkafka-dev
      liburing-dev libyajl-dev libevent-dev libssl-dev redis-server valgrind
      openssl procps clang libclang-rt-14-dev curl iproute2
      debhelper dpkg-dev fakeroot devscripts lintian prometheus
      libyaml-libyaml-perl adduser nodejs chromium linux-perf"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
         | grep -q "install ok installed"
    then
        missing="$missing $p"
    fi
done

# npm comes with NodeSource's nodejs; Debian ships it on its own
command -v npm >/dev/null 2>&1 || missing="$missing npm"

[ -z "$missing" ] && exit 0

echo "installing:$missing"

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing

# Debian starts the packaged services; ours run on their own ports (and
# prometheus is installed for promtool only).  Without systemd, through
# their init scripts.
for svc in nginx redis-server prometheus; do
    if [ -d /run/systemd/system ]; then
        $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true
        $SUDO systemctl disable "$svc" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$svc" ]; then
        $SUDO "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        $SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
done
exit 0
