/*
 * The comet registry record codec (proto/goim_registry.c,
 * docs/PROTOCOL.md 3.5): the documented example, round trips, records of
 * older nodes (no ttl, no sessions), members missing or of the wrong
 * type, long addrs lists, snprintf-like buffer sizes, and input that is
 * not a record at all (garbage, non-UTF-8, NUL bytes, not an object).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim_registry.h"
#include "tap.h"


#define S(lit)  { sizeof(lit) - 1, lit }

#define is_gstr(got, expected, ...)                                          \
    ok((got).data != NULL && (got).len == strlen(expected)                   \
       && memcmp((got).data, (expected), (got).len) == 0                     \
       && (got).data[(got).len] == '\0', __VA_ARGS__)


static int
decode(goim_registry_record_t *rec, const char *json, char *err)
{
    return goim_registry_decode(rec, json, strlen(json), err, 256);
}


static void
test_example(void)
{
    char                    err[256];
    goim_registry_record_t  rec;

    /* docs/PROTOCOL.md 3.5, with the members a current node adds */
    static const char  json[] =
        "{\"server\":\"comet-a\",\"addr\":\"http://10.0.0.1:3112/goim/"
        "internal/push\",\"weight\":10,\"conn_count\":12,\"ip_count\":10,"
        "\"addrs\":[\"10.0.0.1\"],\"updated\":1700000000,\"ttl\":30,"
        "\"sessions\":\"ready\"}";

    is_int(decode(&rec, json, err), 0, "example: decoded");
    is_gstr(rec.server, "comet-a", "example: server");
    is_gstr(rec.addr, "http://10.0.0.1:3112/goim/internal/push",
            "example: addr");
    is_int(rec.weight, 10, "example: weight");
    is_int(rec.conn_count, 12, "example: conn_count");
    is_int(rec.ip_count, 10, "example: ip_count");
    is_int(rec.naddrs, 1, "example: one public address");
    is_gstr(rec.addrs[0], "10.0.0.1", "example: addrs[0]");
    is_int(rec.updated, 1700000000, "example: updated");
    is_int(rec.ttl, 30, "example: ttl");
    is_int(rec.sessions, GOIM_REGISTRY_SESSIONS_READY, "example: sessions");
    ok(rec.mem != NULL, "example: decoded strings have their own block");

    goim_registry_free(&rec);
    ok(rec.mem == NULL && rec.naddrs == 0 && rec.addrs == NULL,
       "free empties the record");
    goim_registry_free(&rec);
    ok(rec.mem == NULL, "free twice is harmless");
}


static void
test_round_trip(void)
{
    long                    n;
    char                    buf[1024], again[1024], err[256];
    goim_registry_record_t  rec, out;

    static goim_registry_str_t  addrs[] = {
        S("10.0.0.1"), S("[2001:db8::1]:3101"), S("comet-a.example.org"),
        S("")
    };

    memset(&rec, 0, sizeof(rec));
    rec.server = (goim_registry_str_t) S("comet-\xc3\xa9\"quoted\"\\");
    rec.addr = (goim_registry_str_t) S("http://127.0.0.1:3112/goim/internal"
                                       "/push?a=1&b=\"2\"");
    rec.weight = 7;
    rec.conn_count = 100000;
    rec.ip_count = 99999;
    rec.addrs = addrs;
    rec.naddrs = sizeof(addrs) / sizeof(addrs[0]);
    rec.updated = 1733400000;
    rec.ttl = 30;
    rec.sessions = GOIM_REGISTRY_SESSIONS_REBUILDING;

    n = goim_registry_encode(&rec, buf, sizeof(buf));
    ok(n > 0 && (size_t) n < sizeof(buf), "round trip: encoded (%ld bytes)",
       n);
    is_int(strlen(buf), n, "round trip: NUL-terminated at the length");
    ok(strstr(buf, "\"sessions\":\"rebuilding\"") != NULL,
       "round trip: sessions as the API looks for it");

    is_int(goim_registry_decode(&out, buf, (size_t) n, err, sizeof(err)), 0,
           "round trip: decoded");
    is_gstr(out.server, "comet-\xc3\xa9\"quoted\"\\",
            "round trip: server with UTF-8, quotes, backslash");
    is_gstr(out.addr, "http://127.0.0.1:3112/goim/internal/push?a=1&b=\"2\"",
            "round trip: addr");
    is_int(out.weight, 7, "round trip: weight");
    is_int(out.conn_count, 100000, "round trip: conn_count");
    is_int(out.ip_count, 99999, "round trip: ip_count");
    is_int(out.naddrs, 4, "round trip: 4 addrs");
    is_gstr(out.addrs[1], "[2001:db8::1]:3101", "round trip: addrs[1]");
    is_gstr(out.addrs[3], "", "round trip: an empty address stays");
    is_int(out.updated, 1733400000, "round trip: updated");
    is_int(out.ttl, 30, "round trip: ttl");
    is_int(out.sessions, GOIM_REGISTRY_SESSIONS_REBUILDING,
           "round trip: sessions");

    /* what was decoded encodes to the same text */
    is_int(goim_registry_encode(&out, again, sizeof(again)), n,
           "round trip: encoded again, same length");
    is_str(again, buf, "round trip: encoded again, same text");

    goim_registry_free(&out);

    /* the member order the module's writer uses */
    memset(&rec, 0, sizeof(rec));
    rec.server = (goim_registry_str_t) S("comet-a");
    rec.addr = (goim_registry_str_t) S("http://h:1/p");
    rec.weight = 10;
    rec.updated = 5;
    rec.ttl = 30;
    rec.sessions = GOIM_REGISTRY_SESSIONS_READY;

    goim_registry_encode(&rec, buf, sizeof(buf));
    is_str(buf, "{\"server\":\"comet-a\",\"addr\":\"http://h:1/p\","
           "\"weight\":10,\"conn_count\":0,\"ip_count\":0,\"addrs\":[],"
           "\"updated\":5,\"ttl\":30,\"sessions\":\"ready\"}",
           "encode: members in the writer's order");

    /* an old node's record: no ttl, no sessions */
    rec.ttl = 0;
    rec.sessions = GOIM_REGISTRY_SESSIONS_NONE;
    rec.server.data = NULL;
    goim_registry_encode(&rec, buf, sizeof(buf));
    is_str(buf, "{\"server\":\"\",\"addr\":\"http://h:1/p\",\"weight\":10,"
           "\"conn_count\":0,\"ip_count\":0,\"addrs\":[],\"updated\":5}",
           "encode: ttl 0 and sessions NONE left out, no server is \"\"");
}


static void
test_buffer_size(void)
{
    long                    n;
    char                    buf[256];
    goim_registry_record_t  rec;

    memset(&rec, 0, sizeof(rec));
    rec.server = (goim_registry_str_t) S("comet-a");
    rec.addr = (goim_registry_str_t) S("http://h:1/p");

    n = goim_registry_encode(&rec, NULL, 0);
    ok(n > 0, "size 0: the length needed (%ld)", n);

    memset(buf, '#', sizeof(buf));
    is_int(goim_registry_encode(&rec, buf, (size_t) n), n,
           "size == length: the length again");
    ok(buf[0] == '#', "size == length: nothing written (no room for NUL)");

    is_int(goim_registry_encode(&rec, buf, (size_t) n + 1), n,
           "size == length + 1: written");
    is_int(strlen(buf), n, "size == length + 1: complete, NUL-terminated");
}


static void
test_old_and_partial(void)
{
    char                    err[256];
    goim_registry_record_t  rec;

    /* a node from before ttl and sessions */
    is_int(decode(&rec, "{\"server\":\"comet-b\",\"addr\":\"http://b/\","
                  "\"weight\":10,\"conn_count\":1,\"ip_count\":1,"
                  "\"addrs\":[],\"updated\":1}", err), 0,
           "old record: decoded");
    is_int(rec.ttl, 0, "old record: ttl 0 (absent)");
    is_int(rec.sessions, GOIM_REGISTRY_SESSIONS_NONE,
           "old record: sessions NONE");
    is_int(rec.naddrs, 0, "old record: no addrs");
    ok(rec.addrs == NULL, "old record: addrs NULL");
    goim_registry_free(&rec);

    /* nothing at all */
    is_int(decode(&rec, "{}", err), 0, "empty object: decoded");
    ok(rec.server.data == NULL, "empty object: server absent (NULL)");
    is_gstr(rec.addr, "", "empty object: addr \"\"");
    ok(rec.weight == 0 && rec.conn_count == 0 && rec.ip_count == 0
       && rec.updated == 0 && rec.ttl == 0 && rec.naddrs == 0,
       "empty object: every number 0, no addrs");
    goim_registry_free(&rec);

    /* members of the wrong type read as absent */
    is_int(decode(&rec, "{\"server\":1,\"addr\":[\"x\"],\"weight\":\"10\","
                  "\"conn_count\":1.5,\"ip_count\":-3,\"addrs\":\"a,b\","
                  "\"updated\":\"now\",\"ttl\":-30,\"sessions\":true}", err),
           0, "wrong types: decoded");
    ok(rec.server.data == NULL, "wrong types: server not a string: absent");
    is_gstr(rec.addr, "", "wrong types: addr not a string: \"\"");
    is_int(rec.weight, 0, "wrong types: weight as a string: 0");
    is_int(rec.conn_count, 0, "wrong types: conn_count 1.5: 0");
    is_int(rec.ip_count, 0, "wrong types: negative ip_count: 0");
    is_int(rec.naddrs, 0, "wrong types: addrs not an array: none");
    is_int(rec.updated, 0, "wrong types: updated a string: 0");
    is_int(rec.ttl, 0, "wrong types: negative ttl: 0");
    is_int(rec.sessions, GOIM_REGISTRY_SESSIONS_NONE,
           "wrong types: sessions not a string: NONE");
    goim_registry_free(&rec);

    /* the rest */
    is_int(decode(&rec, "{\"addr\":\"\",\"sessions\":\"maybe\","
                  "\"updated\":-5,\"addrs\":[1,\"a\",null,{},\"b\",[]],"
                  "\"ttl\":99999999999999999999,\"x\":{\"addr\":\"no\"}}",
                  err), 0, "odd values: decoded");
    is_gstr(rec.addr, "", "odd values: empty addr");
    is_int(rec.sessions, GOIM_REGISTRY_SESSIONS_OTHER,
           "odd values: another sessions string: OTHER");
    is_int(rec.updated, -5, "odd values: updated is any integer");
    is_int(rec.naddrs, 2, "odd values: non-string addrs skipped");
    ok(rec.naddrs == 2 && rec.addrs[0].len == 1 && rec.addrs[0].data[0] == 'a'
       && rec.addrs[1].data[0] == 'b', "odd values: the two strings kept");
    is_int(rec.ttl, 0, "odd values: ttl too large for an integer: 0");
    goim_registry_free(&rec);

    /* a "\u0000" ends the string */
    is_int(decode(&rec, "{\"addr\":\"http://a\\u0000b\"}", err), 0,
           "escaped NUL: decoded");
    is_gstr(rec.addr, "http://a", "escaped NUL: addr ends there");
    goim_registry_free(&rec);
}


static void
test_long_addrs(void)
{
    char                    *json, *p, err[256];
    long                     n;
    size_t                   i, size;
    goim_registry_str_t     *addrs;
    goim_registry_record_t   rec, out;

    enum { N = 5000 };

    addrs = calloc(N, sizeof(goim_registry_str_t));

    for (i = 0; i < N; i++) {
        p = malloc(32);
        addrs[i].len = (size_t) snprintf(p, 32, "10.%zu.%zu.%zu:%zu",
                                         i / 65536, i / 256 % 256, i % 256,
                                         3000 + i);
        addrs[i].data = p;
    }

    memset(&rec, 0, sizeof(rec));
    rec.addr = (goim_registry_str_t) S("http://x/");
    rec.addrs = addrs;
    rec.naddrs = N;

    n = goim_registry_encode(&rec, NULL, 0);
    ok(n > 5000 * 12, "5000 addrs: %ld bytes", n);

    size = (size_t) n + 1;
    json = malloc(size);
    is_int(goim_registry_encode(&rec, json, size), n, "5000 addrs: encoded");

    is_int(goim_registry_decode(&out, json, (size_t) n, err, sizeof(err)), 0,
           "5000 addrs: decoded");
    is_int(out.naddrs, N, "5000 addrs: all of them");

    for (i = 0; i < out.naddrs; i++) {
        if (out.addrs[i].len != addrs[i].len
            || memcmp(out.addrs[i].data, addrs[i].data, addrs[i].len) != 0)
        {
            break;
        }
    }

    is_int(i, N, "5000 addrs: each one the same, in order");

    goim_registry_free(&out);
    free(json);

    for (i = 0; i < N; i++) {
        free((char *) addrs[i].data);
    }

    free(addrs);
}


static void
test_not_a_record(void)
{
    size_t                  i, len;
    char                    err[256];
    goim_registry_record_t  rec, rec2;

    static const struct {
        const char  *json;
        size_t       len;           /* 0: strlen */
        const char  *err;           /* the start of the reason */
        const char  *what;
    } bad[] = {
        { "", 0, "not JSON", "empty" },
        { "comet-a", 0, "not JSON", "a bare word" },
        { "{\"addr\":\"http://a/\"", 0, "not JSON", "cut short" },
        { "{\"addr\":\"http://a/\"}}", 0, "not JSON", "trailing garbage" },
        { "{\"addr\":'x'}", 0, "not JSON", "single quotes" },
        { "{\"addr\":\"\xff\xfe\"}", 0, "not JSON", "invalid UTF-8" },
        { "{\"addr\":\"\xc0\xaf\"}", 0, "not JSON", "overlong UTF-8" },
        { "{\"addr\":\"\xed\xa0\x80\"}", 0, "not JSON",
          "a UTF-16 surrogate" },
        { "{\"addr\":\"x\"} \xff", 0, "not JSON",
          "a bad byte outside the strings" },
        { "{\"addr\":\"a\"}\0{\"x\":1}", 23, "not JSON: a NUL byte",
          "a NUL byte inside" },
        { "\x00\x01\x02\x03", 4, "not JSON", "binary" },
        { "[\"comet-a\"]", 0, "not a JSON object", "an array" },
        { "\"http://a/\"", 0, "not a JSON object", "a string" },
        { "30", 0, "not a JSON object", "a number" },
        { "null", 0, "not a JSON object", "null" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        len = bad[i].len ? bad[i].len : strlen(bad[i].json);
        err[0] = '\0';
        memset(&rec, 0x5a, sizeof(rec));

        is_int(goim_registry_decode(&rec, bad[i].json, len, err,
                                    sizeof(err)), -1,
               "%s: refused", bad[i].what);
        ok(strncmp(err, bad[i].err, strlen(bad[i].err)) == 0
           && strchr(err, '\n') == NULL,
           "%s: one-line reason \"%s\"", bad[i].what, err);
        ok(rec.mem == NULL && rec.naddrs == 0 && rec.server.data == NULL,
           "%s: record left empty", bad[i].what);
    }

    /* a short err buffer is cut, not overrun */
    memset(err, '#', sizeof(err));
    is_int(goim_registry_decode(&rec, "[]", 2, err, 8), -1,
           "short err buffer: refused");
    is_int(strlen(err), 7, "short err buffer: cut to fit");
    ok(err[8] == '#', "short err buffer: nothing past it");

    /* a string that is not UTF-8 cannot be encoded */
    memset(&rec2, 0, sizeof(rec2));
    rec2.server = (goim_registry_str_t) S("comet-\xff");
    is_int(goim_registry_encode(&rec2, err, sizeof(err)), -1,
           "encode: server not UTF-8: -1");

    rec2.server = (goim_registry_str_t) S("comet-a");
    rec2.addr = (goim_registry_str_t) S("http://\xc3(/");
    is_int(goim_registry_encode(&rec2, err, sizeof(err)), -1,
           "encode: addr not UTF-8: -1");
}


int
main(void)
{
    test_example();
    test_round_trip();
    test_buffer_size();
    test_old_and_partial();
    test_long_addrs();
    test_not_a_record();

    return done_testing();
}
