#!/bin/sh
# nginx for a module built with -fsanitize=address,undefined (make asan,
# make test-asan): the test harness's TEST_NGINX_BINARY.
#
# Debian's nginx is not instrumented, so the ASan runtime must be loaded
# before anything else (LD_PRELOAD); the UBSan runtime comes with the
# module. Both report to stderr, which nginx points at its error log
# (the harness's logs/stderr.log before that), where t/lib/Test/Goim.pm
# looks for reports. Not log_path: with GCC 12's separate runtimes, UBSan
# ignores it for its own reports and its start-up resets ASan's to stderr
# or to UBSan's log_path.
#
# detect_leaks=0: nginx does not free its cycle at exit, every exit would
# report it. abort_on_error=0: an ASan report ends the process with exit
# code 1 ("exited with code 1" in error.log), not SIGABRT and a core file.
# UBSan in the module recovers: a report is logged and the process goes on.
# ubsan-options.so keeps UBSAN_OPTIONS readable in the workers
# (tools/ubsan-options.c).
#
#   GOIM_ASAN_NGINX   the nginx binary (/usr/sbin/nginx)
#   GOIM_ASAN_RT      the runtime to preload (gcc -print-file-name=libasan.so)

here=$(cd "$(dirname "$0")/.." && pwd)

rt=${GOIM_ASAN_RT:-$(gcc -print-file-name=libasan.so)}

LD_PRELOAD="$rt $here/build/asan/ubsan-options.so${LD_PRELOAD:+ $LD_PRELOAD}"
ASAN_OPTIONS="detect_leaks=0:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS

exec "${GOIM_ASAN_NGINX:-/usr/sbin/nginx}" "$@"
