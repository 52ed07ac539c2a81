/*
 * proto/goim_util.h: strict decimal integers (the two failures told
 * apart, the exact bounds) and UTF-8 validity as RFC 3629 has it
 * (overlong forms, surrogates, code points past U+10FFFF, truncated
 * sequences).
 */

#include <stdint.h>
#include <string.h>

#include "goim_util.h"
#include "tap.h"


static void
test_parse_int(void)
{
    size_t   i;
    int64_t  v;
    int32_t  v32;

    static const struct {
        const char  *s;
        int64_t      min;
        int64_t      max;
        int          rc;
        int64_t      v;
    } cases[] = {
        { "0", 0, 10, 0, 0 },
        { "-0", -10, 10, 0, 0 },
        { "10", 0, 10, 0, 10 },
        { "11", 0, 10, -2, 0 },
        { "-1", 0, 10, -2, 0 },
        { "-10", -10, 10, 0, -10 },
        { "-11", -10, 10, -2, 0 },
        { "007", 0, 10, 0, 7 },
        { "7", 0, 5, -2, 0 },
        { "3", 5, 10, -2, 0 },
        { "-3", -10, -5, -2, 0 },
        { "-7", -10, -5, 0, -7 },
        { "-0", 0, 10, 0, 0 },
        { "9223372036854775807", INT64_MIN, INT64_MAX, 0, INT64_MAX },
        { "9223372036854775808", INT64_MIN, INT64_MAX, -2, 0 },
        { "-9223372036854775808", INT64_MIN, INT64_MAX, 0, INT64_MIN },
        { "-9223372036854775809", INT64_MIN, INT64_MAX, -2, 0 },
        { "99999999999999999999999", INT64_MIN, INT64_MAX, -2, 0 },
        { "", 0, 10, -1, 0 },
        { "-", 0, 10, -1, 0 },
        { "+1", 0, 10, -1, 0 },
        { " 1", 0, 10, -1, 0 },
        { "1 ", 0, 10, -1, 0 },
        { "1.0", 0, 10, -1, 0 },
        { "1e3", 0, 10000, -1, 0 },
        { "0x1", 0, 10, -1, 0 },
        { "--1", -10, 10, -1, 0 },
        /* not an integer wins over out of range */
        { "99999999999999999999x", INT64_MIN, INT64_MAX, -1, 0 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v = 12345;
        is_int(goim_parse_int(cases[i].s, strlen(cases[i].s), cases[i].min,
                              cases[i].max, &v),
               cases[i].rc, "parse_int \"%s\" in [%lld, %lld]: %d",
               cases[i].s, (long long) cases[i].min,
               (long long) cases[i].max, cases[i].rc);

        if (cases[i].rc == 0) {
            is_int(v, cases[i].v, "parse_int \"%s\": value", cases[i].s);

        } else {
            is_int(v, 12345, "parse_int \"%s\": output untouched",
                   cases[i].s);
        }
    }

    /* only len bytes count: the rest of the buffer is not read */
    is_int(goim_parse_int("123", 2, 0, 100, &v), 0, "length-bounded");
    is_int(v, 12, "length-bounded: value");

    is_int(goim_parse_int32("2147483647", 10, &v32), 0, "int32 max");
    is_int(v32, INT32_MAX, "int32 max: value");
    is_int(goim_parse_int32("-2147483648", 11, &v32), 0, "int32 min");
    is_int(v32, INT32_MIN, "int32 min: value");
    is_int(goim_parse_int32("2147483648", 10, &v32), -1,
           "int32 past max: -1");
    is_int(goim_parse_int64("x", 1, &v), -1, "int64 not a number: -1");
}


static void
test_utf8(void)
{
    size_t  i;

    static const struct {
        const char  *s;
        size_t       len;       /* 0: strlen */
        int          valid;
        const char  *what;
    } cases[] = {
        { "", 0, 1, "empty" },
        { "plain ASCII", 0, 1, "ASCII" },
        { "\0", 1, 1, "a NUL byte" },
        { "\xc2\x80", 0, 1, "U+0080, the first 2-byte" },
        { "\xdf\xbf", 0, 1, "U+07FF, the last 2-byte" },
        { "\xe0\xa0\x80", 0, 1, "U+0800, the first 3-byte" },
        { "\xed\x9f\xbf", 0, 1, "U+D7FF, below the surrogates" },
        { "\xee\x80\x80", 0, 1, "U+E000, above the surrogates" },
        { "\xef\xbf\xbf", 0, 1, "U+FFFF" },
        { "\xf0\x90\x80\x80", 0, 1, "U+10000, the first 4-byte" },
        { "\xf4\x8f\xbf\xbf", 0, 1, "U+10FFFF, the last code point" },
        { "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 0, 1, "mixed" },

        { "\x80", 0, 0, "a lone continuation byte" },
        { "\xbf", 0, 0, "another continuation byte" },
        { "\xc0\x80", 0, 0, "overlong NUL (C0 80)" },
        { "\xc1\xbf", 0, 0, "overlong 2-byte (C1)" },
        { "\xe0\x9f\xbf", 0, 0, "overlong 3-byte (E0 9F)" },
        { "\xf0\x8f\xbf\xbf", 0, 0, "overlong 4-byte (F0 8F)" },
        { "\xed\xa0\x80", 0, 0, "U+D800, a surrogate" },
        { "\xed\xbf\xbf", 0, 0, "U+DFFF, a surrogate" },
        { "\xf4\x90\x80\x80", 0, 0, "U+110000, past the last" },
        { "\xf5\x80\x80\x80", 0, 0, "F5 lead byte" },
        { "\xff", 0, 0, "FF" },
        { "\xc3", 0, 0, "a 2-byte sequence cut short" },
        { "\xe2\x82", 0, 0, "a 3-byte sequence cut short" },
        { "\xf0\x9f\x98", 0, 0, "a 4-byte sequence cut short" },
        { "\xe2\x28\xa1", 0, 0, "a bad second byte" },
        { "\xe2\x82\x28", 0, 0, "a bad third byte" },
        { "\xf0\x9f\x98\x28", 0, 0, "a bad fourth byte" },
        { "ok\xc3", 0, 0, "valid, then cut short" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        is_int(goim_utf8_valid((const uint8_t *) cases[i].s,
                               cases[i].len ? cases[i].len
                                            : strlen(cases[i].s)),
               cases[i].valid, "utf8: %s", cases[i].what);
    }

    /* only len bytes count */
    is_int(goim_utf8_valid((const uint8_t *) "ab\xc3\xa9", 3), 0,
           "utf8: a sequence cut by len");
    is_int(goim_utf8_valid((const uint8_t *) "ab\xff", 2), 1,
           "utf8: a bad byte past len is not read");
}


int
main(void)
{
    test_parse_int();
    test_utf8();

    return done_testing();
}
