/*
 * HTTP query strings for goim's API (docs/PROTOCOL.md 2.1), decoded the
 * way Go's url.ParseQuery does for gin, except that a malformed escape
 * fails the whole query instead of silently dropping its pair.
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
