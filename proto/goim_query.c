/*
 * HTTP query strings for goim's API (GOIM-SPEC 3), decoded the way Go's
 * url.ParseQuery does for gin, except that a malformed escape fails the
 * whole query instead of silently dropping its pair.
 */

#include <string.h>

#include "goim_query.h"


static int
goim_query_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* Decodes s[0..len) into dst; returns the decoded length or -1. */
static long
goim_query_unescape(const char *s, size_t len, char *dst)
{
    int     hi, lo;
    char   *p;
    size_t  i;

    p = dst;

    for (i = 0; i < len; i++) {

        switch (s[i]) {

        case '+':
            *p++ = ' ';
            break;

        case '%':
            if (len - i < 3) {
                return -1;
            }

            hi = goim_query_hex((unsigned char) s[i + 1]);
            lo = goim_query_hex((unsigned char) s[i + 2]);

            if (hi < 0 || lo < 0) {
                return -1;
            }

            *p++ = (char) (hi << 4 | lo);
            i += 2;
            break;

        default:
            *p++ = s[i];
        }
    }

    return p - dst;
}


int
goim_query_parse(const char *q, size_t len, char *buf,
    goim_query_param_t *params, size_t max)
{
    long         n;
    size_t       count, pair_len, name_len;
    const char  *pair, *end, *amp, *eq;

    count = 0;
    end = q + len;

    for (pair = q; pair < end; pair = amp + 1) {
        amp = memchr(pair, '&', end - pair);
        if (amp == NULL) {
            amp = end;
        }

        pair_len = amp - pair;

        if (pair_len == 0) {
            continue;
        }

        if (count == max) {
            return -2;
        }

        eq = memchr(pair, '=', pair_len);
        name_len = (eq != NULL) ? (size_t) (eq - pair) : pair_len;

        /* decoding never grows, so a pair fits where it came from */

        n = goim_query_unescape(pair, name_len, buf);
        if (n < 0) {
            return -1;
        }

        params[count].name = buf;
        params[count].name_len = n;
        buf += n;

        params[count].value = buf;
        params[count].value_len = 0;

        if (eq != NULL) {
            n = goim_query_unescape(eq + 1, pair_len - name_len - 1, buf);
            if (n < 0) {
                return -1;
            }

            params[count].value_len = n;
            buf += n;
        }

        count++;
    }

    return (int) count;
}


const char *
goim_query_get(const goim_query_param_t *params, int n, const char *name,
    size_t *len)
{
    int     i;
    size_t  name_len;

    name_len = strlen(name);

    for (i = 0; i < n; i++) {
        if (params[i].name_len == name_len
            && memcmp(params[i].name, name, name_len) == 0)
        {
            *len = params[i].value_len;
            return params[i].value;
        }
    }

    return NULL;
}


/*
 * Decimal text to an integer in [min, max].  Stricter than gin, which
 * binds with strconv.ParseInt and so also takes a leading '+'.  Like
 * strconv.ParseInt under json.Unmarshal, a fraction or an exponent is
 * never an integer, not even "1.0" or "1e3" (goim_token.c).
 */
int
goim_parse_int(const char *s, size_t len, int64_t min, int64_t max,
    int64_t *out)
{
    int       neg;
    size_t    i;
    uint64_t  v, limit, d;

    neg = (len > 0 && s[0] == '-');

    if ((size_t) neg == len) {
        return -1;
    }

    for (i = neg; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
    }

    /* the magnitude of min, computed without overflowing int64 */
    limit = neg ? (uint64_t) -(min + 1) + 1 : (uint64_t) max;
    v = 0;

    for (i = neg; i < len; i++) {
        d = (uint64_t) (s[i] - '0');

        if (v > (limit - d) / 10) {
            return -2;
        }

        v = v * 10 + d;
    }

    *out = (neg && v > 0) ? -(int64_t) (v - 1) - 1 : (int64_t) v;

    return 0;
}


int
goim_parse_int32(const char *s, size_t len, int32_t *out)
{
    int64_t  v;

    if (goim_parse_int(s, len, INT32_MIN, INT32_MAX, &v) != 0) {
        return -1;
    }

    *out = (int32_t) v;

    return 0;
}


int
goim_parse_int64(const char *s, size_t len, int64_t *out)
{
    return goim_parse_int(s, len, INT64_MIN, INT64_MAX, out) == 0 ? 0 : -1;
}
