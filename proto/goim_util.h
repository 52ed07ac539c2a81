/*
 * Small checks the codecs share: strict decimal integers (query binding,
 * token claims) and UTF-8 validity (WebSocket close reasons, token
 * strings).  Pure C.
 *
 * They are static inline so that every user, the nginx module included,
 * gets them from this header alone, without another source file to build.
 */

#ifndef GOIM_UTIL_H
#define GOIM_UTIL_H

#include <stddef.h>
#include <stdint.h>


/*
 * Decimal text to an integer in [min, max]: an optional leading '-', then
 * digits only.  Stricter than gin, which binds with strconv.ParseInt and
 * so also takes a leading '+'.  Like strconv.ParseInt under
 * json.Unmarshal, a fraction or an exponent is never an integer, not even
 * "1.0" or "1e3".  Returns 0, -1 for not an integer, -2 for out of range.
 */
static inline int
goim_parse_int(const char *s, size_t len, int64_t min, int64_t max,
    int64_t *out)
{
    int       neg;
    size_t    i;
    int64_t   value;
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

    /* the largest magnitude on this side of 0, without overflowing */
    if (neg) {
        limit = min < 0 ? (uint64_t) -(min + 1) + 1 : 0;

    } else {
        limit = max > 0 ? (uint64_t) max : 0;
    }

    v = 0;

    for (i = neg; i < len; i++) {
        d = (uint64_t) (s[i] - '0');

        if (d > limit || v > (limit - d) / 10) {
            return -2;
        }

        v = v * 10 + d;
    }

    value = (neg && v > 0) ? -(int64_t) (v - 1) - 1 : (int64_t) v;

    if (value < min || value > max) {
        return -2;
    }

    *out = value;

    return 0;
}


/* goim_parse_int() over the type's range; 0 or -1 */
static inline int
goim_parse_int32(const char *s, size_t len, int32_t *out)
{
    int64_t  v;

    if (goim_parse_int(s, len, INT32_MIN, INT32_MAX, &v) != 0) {
        return -1;
    }

    *out = (int32_t) v;

    return 0;
}


static inline int
goim_parse_int64(const char *s, size_t len, int64_t *out)
{
    return goim_parse_int(s, len, INT64_MIN, INT64_MAX, out) == 0 ? 0 : -1;
}


/*
 * Whether p[0..len) is UTF-8 as RFC 3629 has it: no overlong forms, no
 * UTF-16 surrogates, nothing past U+10FFFF.
 */
static inline int
goim_utf8_valid(const uint8_t *p, size_t len)
{
    size_t   i, k, n;
    uint8_t  c, lo, hi;

    i = 0;

    while (i < len) {
        c = p[i++];

        if (c < 0x80) {
            continue;
        }

        /* the second byte's range rules out overlongs and surrogates */
        lo = 0x80;
        hi = 0xbf;

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;

            if (c == 0xe0) {
                lo = 0xa0;

            } else if (c == 0xed) {
                hi = 0x9f;
            }

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;

            if (c == 0xf0) {
                lo = 0x90;

            } else if (c == 0xf4) {
                hi = 0x8f;
            }

        } else {
            return 0;
        }

        if (len - i < n || p[i] < lo || p[i] > hi) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }
        }

        i += n;
    }

    return 1;
}


#endif /* GOIM_UTIL_H */
