/*
 * Minimal TAP producer for the C unit tests, header-only.  Results go to
 * stdout, diagnostics to stderr, like Perl's Test::More; t/unit.t runs
 * each binary and passes its results to prove.
 *
 *     plan(n);  (or nothing, then done_testing() prints the plan)
 *     ok(cond, "name %d", i);
 *     is_int(got, expected, "name");
 *     is_str(got, expected, "name");
 *     is_mem(got, expected, len, "name");
 *     return done_testing();
 */

#ifndef GOIM_TAP_H
#define GOIM_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>


#define TAP_NAME_LEN  256

#define ok(cond, ...)                                                        \
    tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, expected, ...)                                           \
    tap_is_int((long long) (got), (long long) (expected), __FILE__,          \
               __LINE__, __VA_ARGS__)

#define is_str(got, expected, ...)                                           \
    tap_is_str((got), (expected), __FILE__, __LINE__, __VA_ARGS__)

#define is_mem(got, expected, len, ...)                                      \
    tap_is_mem((got), (expected), (len), __FILE__, __LINE__, __VA_ARGS__)


static struct {
    int  planned;
    int  run;
    int  failed;
} tap_state;


static inline void
plan(int n)
{
    tap_state.planned = n;
    printf("1..%d\n", n);
    fflush(stdout);
}


static inline void __attribute__((format(printf, 1, 2)))
diag(const char *fmt, ...)
{
    va_list  args;

    fflush(stdout);
    fputs("# ", stderr);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
}


static inline int
tap_result(int pass, const char *file, int line, const char *fmt,
    va_list args)
{
    char  name[TAP_NAME_LEN];

    vsnprintf(name, sizeof(name), fmt, args);

    tap_state.run++;

    printf("%sok %d - %s\n", pass ? "" : "not ", tap_state.run, name);

    if (!pass) {
        tap_state.failed++;
        diag("  Failed test '%s'", name);
        diag("  at %s line %d.", file, line);
    }

    fflush(stdout);

    return pass;
}


static inline int __attribute__((format(printf, 4, 5)))
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    int      rc;
    va_list  args;

    va_start(args, fmt);
    rc = tap_result(pass, file, line, fmt, args);
    va_end(args);

    return rc;
}


static inline int __attribute__((format(printf, 5, 6)))
tap_is_int(long long got, long long expected, const char *file, int line,
    const char *fmt, ...)
{
    int      rc;
    va_list  args;

    va_start(args, fmt);
    rc = tap_result(got == expected, file, line, fmt, args);
    va_end(args);

    if (!rc) {
        diag("         got: %lld", got);
        diag("    expected: %lld", expected);
    }

    return rc;
}


static inline int __attribute__((format(printf, 5, 6)))
tap_is_str(const char *got, const char *expected, const char *file,
    int line, const char *fmt, ...)
{
    int      rc, pass;
    va_list  args;

    if (got == NULL || expected == NULL) {
        pass = (got == expected);

    } else {
        pass = (strcmp(got, expected) == 0);
    }

    va_start(args, fmt);
    rc = tap_result(pass, file, line, fmt, args);
    va_end(args);

    if (!rc) {
        diag("         got: '%s'", got ? got : "(null)");
        diag("    expected: '%s'", expected ? expected : "(null)");
    }

    return rc;
}


static inline int __attribute__((format(printf, 6, 7)))
tap_is_mem(const void *got, const void *expected, size_t len,
    const char *file, int line, const char *fmt, ...)
{
    int                   rc;
    size_t                i;
    va_list               args;
    const unsigned char  *g, *e;

    g = got;
    e = expected;

    va_start(args, fmt);
    rc = tap_result(memcmp(g, e, len) == 0, file, line, fmt, args);
    va_end(args);

    if (!rc) {
        for (i = 0; g[i] == e[i]; i++) {
            /* void */
        }

        diag("    bytes differ at offset %zu of %zu:"
             " got 0x%02x, expected 0x%02x", i, len, g[i], e[i]);
    }

    return rc;
}


/* prints the plan if none was given; the result is the exit status */
static inline int
done_testing(void)
{
    if (tap_state.planned == 0) {
        printf("1..%d\n", tap_state.run);

    } else if (tap_state.planned != tap_state.run) {
        diag("planned %d tests but ran %d", tap_state.planned,
             tap_state.run);
        fflush(stdout);
        return 255;
    }

    fflush(stdout);

    if (tap_state.failed) {
        diag("failed %d of %d tests", tap_state.failed, tap_state.run);
        return tap_state.failed < 254 ? tap_state.failed : 254;
    }

    return 0;
}


#endif /* GOIM_TAP_H */
