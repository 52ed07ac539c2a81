/*
 * API query parser: goim_query_parse() on the input as a query string,
 * decoding into a buffer of exactly the input's length (the documented
 * requirement, so AddressSanitizer reports any write past it).  Decoded
 * names and values must lie in order inside that buffer; goim_query_get()
 * must find the first parameter of each name; goim_parse_int32/64() on
 * each value are checked against strtoll().
 */

#include <errno.h>

#include "fuzz.h"
#include "goim_query.h"


#define MAX_PARAMS  32


static int
is_decimal(const char *s, size_t len)
{
    size_t  i;

    i = (len > 0 && s[0] == '-');

    if (i == len) {
        return 0;
    }

    for ( /* void */ ; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    return 1;
}


static void
check_int(const char *s, size_t len)
{
    int        rc32, rc64, erange;
    char      *z, *end;
    int32_t    v32;
    int64_t    v64;
    long long  ref;

    rc32 = goim_parse_int32(s, len, &v32);
    rc64 = goim_parse_int64(s, len, &v64);

    fuzz_assert(rc32 == 0 || rc32 == -1);
    fuzz_assert(rc64 == 0 || rc64 == -1);

    if (!is_decimal(s, len)) {
        fuzz_assert(rc32 == -1 && rc64 == -1);
        return;
    }

    z = malloc(len + 1);
    fuzz_assert(z != NULL);
    memcpy(z, s, len);
    z[len] = '\0';

    errno = 0;
    ref = strtoll(z, &end, 10);
    erange = (errno == ERANGE);
    fuzz_assert(end == z + len);

    free(z);

    if (erange) {
        fuzz_assert(rc64 == -1 && rc32 == -1);
        return;
    }

    fuzz_assert(rc64 == 0 && v64 == ref);

    if (ref >= INT32_MIN && ref <= INT32_MAX) {
        fuzz_assert(rc32 == 0 && v32 == ref);

    } else {
        fuzz_assert(rc32 == -1);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  n, i, k;
    char                *q, *buf, *name;
    size_t               len, used;
    const char          *v;
    goim_query_param_t   params[MAX_PARAMS];

    q = (char *) fuzz_dup(data, size);
    buf = malloc(size);
    fuzz_assert(buf != NULL || size == 0);

    n = goim_query_parse(q, size, buf, params, MAX_PARAMS);

    fuzz_assert(n >= -2 && n <= MAX_PARAMS);

    used = 0;

    for (i = 0; i < n; i++) {
        /* in order, contiguous, within the len bytes of buf */
        fuzz_assert(params[i].name == buf + used);
        used += params[i].name_len;
        fuzz_assert(params[i].value == buf + used);
        used += params[i].value_len;
        fuzz_assert(used <= size);

        fuzz_assert(params[i].name_len <= size);
        fuzz_assert(params[i].value_len <= size);

        check_int(params[i].value, params[i].value_len);
        check_int(params[i].name, params[i].name_len);
    }

    /* each name, as a C string, finds the first parameter so named */
    for (i = 0; i < n; i++) {
        if (memchr(params[i].name, '\0', params[i].name_len) != NULL) {
            continue;
        }

        name = malloc(params[i].name_len + 1);
        fuzz_assert(name != NULL);
        memcpy(name, params[i].name, params[i].name_len);
        name[params[i].name_len] = '\0';

        v = goim_query_get(params, n, name, &len);

        for (k = 0; k < i; k++) {
            if (params[k].name_len == params[i].name_len
                && memcmp(params[k].name, name, params[i].name_len) == 0)
            {
                break;
            }
        }

        fuzz_assert(v == params[k].value && len == params[k].value_len);

        free(name);
    }

    free(buf);
    free(q);

    return 0;
}
