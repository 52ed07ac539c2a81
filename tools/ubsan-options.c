
/*
 * ubsan-options.so: preloaded by tools/asan-nginx.sh next to the ASan
 * runtime (make test-asan).
 *
 * The sanitizers read their options from /proc/self/environ when they
 * first need them, and UBSan does so at its first report: in an nginx
 * worker that memory holds the process title by then (ngx_setproctitle),
 * so UBSAN_OPTIONS would be lost. UBSan asks __ubsan_default_options()
 * before the environment; this library answers with UBSAN_OPTIONS as it
 * was when nginx started, print_stacktrace=1 by default.
 *
 * (With ASan in the process, UBSan ignores log_path: its reports go to
 * stderr, which nginx points at its error log.)
 */

#include <stdlib.h>
#include <string.h>


static char  goim_ubsan_options[1024] = "print_stacktrace=1";


__attribute__((constructor)) static void
goim_ubsan_options_init(void)
{
    const char  *env;

    env = getenv("UBSAN_OPTIONS");

    if (env != NULL && strlen(env) < sizeof(goim_ubsan_options)) {
        strcpy(goim_ubsan_options, env);
    }
}


const char *__ubsan_default_options(void);

const char *
__ubsan_default_options(void)
{
    return goim_ubsan_options;
}
