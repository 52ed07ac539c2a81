/*
 * API query strings (docs/PROTOCOL.md 2.1): splitting, repeated parameters,
 * percent and '+' decoding, malformed escapes, the parameter limit, and
 * strict integer binding.
 */

#include <stdlib.h>
#include <string.h>

#include "goim_query.h"
#include "tap.h"


#define MAX_PARAMS  16


static char                buf[512];
static goim_query_param_t  params[MAX_PARAMS];


static int
parse(const char *q)
{
    return goim_query_parse(q, strlen(q), buf, params, MAX_PARAMS);
}


static void
is_param(int i, const char *name, const char *value, const char *test)
{
    ok(params[i].name_len == strlen(name)
       && memcmp(params[i].name, name, params[i].name_len) == 0,
       "%s: param %d name '%s'", test, i, name);
    ok(params[i].value != NULL && params[i].value_len == strlen(value)
       && memcmp(params[i].value, value, params[i].value_len) == 0,
       "%s: param %d value '%s'", test, i, value);
}


static void
test_split(void)
{
    int          n;
    size_t       len;
    const char  *v;

    n = parse("operation=1000&keys=dev-abc&keys=dev-def");
    is_int(n, 3, "documented example: three params");
    is_param(0, "operation", "1000", "documented example");
    is_param(1, "keys", "dev-abc", "documented example");
    is_param(2, "keys", "dev-def", "documented example");

    v = goim_query_get(params, n, "keys", &len);
    ok(v != NULL && len == 7 && memcmp(v, "dev-abc", 7) == 0,
       "get returns the first of repeated values");
    v = goim_query_get(params, n, "operation", &len);
    ok(v != NULL && len == 4 && memcmp(v, "1000", 4) == 0,
       "get operation");
    ok(goim_query_get(params, n, "key", &len) == NULL,
       "get of a prefix of a name: NULL");
    ok(goim_query_get(params, n, "keyss", &len) == NULL,
       "get of a longer name: NULL");
    ok(goim_query_get(params, n, "Keys", &len) == NULL,
       "get is case-sensitive");
    ok(goim_query_get(params, 0, "keys", &len) == NULL,
       "get with no params: NULL");
    ok(goim_query_get(params, -1, "keys", &len) == NULL,
       "get with an error count: NULL");

    is_int(parse(""), 0, "empty query: no params");
    is_int(goim_query_parse(NULL, 0, buf, params, MAX_PARAMS), 0,
           "NULL query of length 0: no params");
    is_int(parse("&&&"), 0, "only separators: no params");

    n = parse("&a=1&&b=2&");
    is_int(n, 2, "empty pairs skipped");
    is_param(0, "a", "1", "empty pairs");
    is_param(1, "b", "2", "empty pairs");

    n = parse("flag&x=1&other");
    is_int(n, 3, "pairs without '='");
    is_param(0, "flag", "", "no '='");
    is_param(1, "x", "1", "no '='");
    is_param(2, "other", "", "no '=' at the end");

    n = parse("a=&=b&=&c==d");
    is_int(n, 4, "empty names and values");
    is_param(0, "a", "", "empty value");
    is_param(1, "", "b", "empty name");
    is_param(2, "", "", "empty name and value");
    is_param(3, "c", "=d", "the value keeps later '='");

    v = goim_query_get(params, n, "", &len);
    ok(v != NULL && len == 1 && *v == 'b', "get of the empty name");

    n = parse("a=1;b=2");
    is_int(n, 1, "';' is not a separator");
    is_param(0, "a", "1;b=2", "';' kept");

    /* the length bounds the query, not a NUL */
    is_int(goim_query_parse("a=12&b=3", 4, buf, params, MAX_PARAMS), 1,
           "length-bounded query: one param");
    is_param(0, "a", "12", "length-bounded query");
}


static void
test_decode(void)
{
    int          n;
    size_t       len;
    const char  *v;

    n = parse("keys=a%2Cb&keys=a%2cb&mids=1,2");
    is_int(n, 3, "%%2C: parsed");
    is_param(0, "keys", "a,b", "%2C decoded");
    is_param(1, "keys", "a,b", "%2c decoded");
    is_param(2, "mids", "1,2", "raw ',' kept");

    n = parse("a+b=c+d&e=%2B&f=%20+%20");
    is_int(n, 3, "'+': parsed");
    is_param(0, "a b", "c d", "'+' decoded in name and value");
    is_param(1, "e", "+", "%2B is a literal '+'");
    is_param(2, "f", "   ", "%20 and '+'");

    n = parse("%6Beys=x%26y%3Dz&%25=%41%7e%7E");
    is_int(n, 2, "escaped names and separators: parsed");
    is_param(0, "keys", "x&y=z", "escaped '&' and '=' do not split");
    is_param(1, "%", "A~~", "%25, upper and lower hex");

    v = goim_query_get(params, n, "keys", &len);
    ok(v != NULL && len == 5, "get matches a decoded name");

    n = parse("room=%E6%BC%94&k=%00z");
    is_int(n, 2, "bytes: parsed");
    is_param(0, "room", "\xe6\xbc\x94", "UTF-8 bytes decoded");
    ok(params[1].value_len == 2 && params[1].value[0] == '\0'
       && params[1].value[1] == 'z', "%%00 decoded to a NUL byte");

    is_int(parse("a=%zz"), -1, "%%zz: malformed");
    is_int(parse("a=%2"), -1, "%%2 at the end: malformed");
    is_int(parse("a=%"), -1, "%% at the end: malformed");
    is_int(parse("a=%%41"), -1, "%%%%41: malformed");
    is_int(parse("a=%g0"), -1, "%%g0: malformed");
    is_int(parse("a=%0g"), -1, "%%0g: malformed");
    is_int(parse("%zz=1"), -1, "malformed escape in a name");
    is_int(parse("ok=1&b=%2&c=3"), -1, "a malformed pair fails the query");
    is_int(goim_query_parse("a=%41", 4, buf, params, MAX_PARAMS), -1,
           "escape cut by the length: malformed");
}


static void
test_limit(void)
{
    is_int(goim_query_parse("a=1&b=2&c=3", 11, buf, params, 3), 3,
           "exactly max params");
    is_int(goim_query_parse("a=1&b=2&c=3", 11, buf, params, 2), -2,
           "one param over max");
    is_int(goim_query_parse("a=1&&&b=2&&", 11, buf, params, 2), 2,
           "empty pairs do not count toward max");
    is_int(goim_query_parse("a", 1, buf, NULL, 0), -2,
           "max 0 with a param");
    is_int(goim_query_parse("&&", 2, buf, NULL, 0), 0,
           "max 0 with only empty pairs");
}


static void
int32_ok(const char *s, int32_t expected)
{
    int32_t  v;

    v = 12345;
    is_int(goim_parse_int32(s, strlen(s), &v), 0, "int32 '%s': accepted", s);
    is_int(v, expected, "int32 '%s': value", s);
}


static void
int32_bad(const char *s)
{
    int32_t  v;

    v = 12345;
    is_int(goim_parse_int32(s, strlen(s), &v), -1, "int32 '%s': rejected", s);
    is_int(v, 12345, "int32 '%s': output untouched", s);
}


static void
int64_ok(const char *s, int64_t expected)
{
    int64_t  v;

    v = 12345;
    is_int(goim_parse_int64(s, strlen(s), &v), 0, "int64 '%s': accepted", s);
    ok(v == expected, "int64 '%s': value", s);
}


static void
int64_bad(const char *s)
{
    int64_t  v;

    v = 12345;
    is_int(goim_parse_int64(s, strlen(s), &v), -1, "int64 '%s': rejected", s);
    is_int(v, 12345, "int64 '%s': output untouched", s);
}


static void
test_integers(void)
{
    int32_t  v32;

    int32_ok("0", 0);
    int32_ok("-0", 0);
    int32_ok("1000", 1000);
    int32_ok("-7", -7);
    int32_ok("007", 7);
    int32_ok("2147483647", INT32_MAX);
    int32_ok("-2147483648", INT32_MIN);
    int32_ok("00000000002147483647", INT32_MAX);

    int32_bad("");
    int32_bad("-");
    int32_bad("+5");
    int32_bad(" 5");
    int32_bad("5 ");
    int32_bad("5x");
    int32_bad("x5");
    int32_bad("--5");
    int32_bad("-+5");
    int32_bad("5-");
    int32_bad("1.0");
    int32_bad("1e3");
    int32_bad("0x10");
    int32_bad("1_000");
    int32_bad("2147483648");
    int32_bad("-2147483649");
    int32_bad("4294967296");
    int32_bad("99999999999999999999999");

    int64_ok("9223372036854775807", INT64_MAX);
    int64_ok("-9223372036854775808", INT64_MIN);
    int64_ok("123", 123);
    int64_ok("-1", -1);

    int64_bad("9223372036854775808");
    int64_bad("-9223372036854775809");
    int64_bad("18446744073709551616");
    int64_bad("");
    int64_bad("+1");
    int64_bad("1,2");

    is_int(goim_parse_int32("1234", 2, &v32), 0, "length-bounded: accepted");
    is_int(v32, 12, "length-bounded: only the first 2 digits");
    is_int(goim_parse_int32("12\0" "3", 4, &v32), -1,
           "embedded NUL: rejected");
}


int
main(void)
{
    test_split();
    test_decode();
    test_limit();
    test_integers();

    return done_testing();
}
