/*
 * Auth token parser (docs/PROTOCOL.md 1.4): its example, absent and null
 * members, every type error, int64/int32 bounds, string limits, control
 * characters, UTF-8, nesting, trailing garbage, and Go's json.Unmarshal
 * quirks we follow (case-insensitive names, the last duplicate wins).
 */

#include <stdlib.h>
#include <string.h>

#include "goim_token.h"
#include "tap.h"


static char  err[128];


static int
parse(const char *json, goim_token_t *tok)
{
    return goim_token_parse((const uint8_t *) json, strlen(json), tok, err,
                            sizeof(err));
}


static int
token_is_empty(const goim_token_t *tok)
{
    return tok->mid == 0 && tok->key == NULL && tok->key_len == 0
           && tok->room_id == NULL && tok->room_len == 0
           && tok->platform == NULL && tok->accepts == NULL
           && tok->n_accepts == 0 && tok->exp == 0
           && tok->room_ids.data == NULL && tok->room_ids.n == 0
           && tok->allowed_rooms.data == NULL && !tok->allowed_rooms.given;
}


/* A rejected token: -1, the exact reason, nothing left allocated. */
static void
rejects_len(const char *json, size_t len, const char *reason,
    const char *name)
{
    int           rc;
    goim_token_t  tok;

    rc = goim_token_parse((const uint8_t *) json, len, &tok, err,
                          sizeof(err));
    is_int(rc, -1, "%s: rejected", name);
    is_str(err, reason, "%s: reason", name);
    ok(token_is_empty(&tok), "%s: token left empty", name);
}


static void
rejects(const char *json, const char *reason, const char *name)
{
    rejects_len(json, strlen(json), reason, name);
}


/* For yajl's own messages only the prefix is ours. */
static void
rejects_json(const char *json, size_t len, const char *name)
{
    int           rc;
    goim_token_t  tok;

    rc = goim_token_parse((const uint8_t *) json, len, &tok, err,
                          sizeof(err));
    is_int(rc, -1, "%s: rejected", name);
    ok(strncmp(err, "invalid JSON: ", 14) == 0, "%s: reason '%s'", name,
       err);
    ok(token_is_empty(&tok), "%s: token left empty", name);
}


static void
test_doc_example(void)
{
    goim_token_t  tok;

    is_int(parse("{\"mid\":123,\"key\":\"dev-abc\",\"room_id\":\"live://1000\","
                 "\"platform\":\"web\",\"accepts\":[1000,1001]}", &tok),
           0, "documented example: parsed");
    is_str(err, "", "documented example: no reason");
    is_int(tok.mid, 123, "documented example: mid");
    is_str(tok.key, "dev-abc", "documented example: key");
    is_int(tok.key_len, 7, "documented example: key_len");
    is_str(tok.room_id, "live://1000", "documented example: room_id");
    is_int(tok.room_len, 11, "documented example: room_len");
    is_str(tok.platform, "web", "documented example: platform");
    is_int(tok.n_accepts, 2, "documented example: two accepts");
    ok(tok.n_accepts == 2 && tok.accepts[0] == 1000
       && tok.accepts[1] == 1001, "documented example: accepts 1000, 1001");
    is_int(tok.exp, 0, "documented example: no exp");
    goim_token_free(&tok);
    ok(token_is_empty(&tok), "goim_token_free clears the token");
    goim_token_free(&tok);
    ok(1, "goim_token_free twice is harmless");

    is_int(parse(" \t\r\n{ \"mid\" : 1 , \"exp\" : 1700000000 }\n ", &tok),
           0, "whitespace around and inside: parsed");
    is_int(tok.mid, 1, "whitespace: mid");
    is_int(tok.exp, 1700000000, "whitespace: exp");
    goim_token_free(&tok);
}


static void
test_absent_and_null(void)
{
    goim_token_t  tok;

    is_int(parse("{}", &tok), 0, "{}: parsed");
    ok(token_is_empty(&tok), "{}: every field absent");
    goim_token_free(&tok);

    is_int(parse("{\"mid\":9,\"room_id\":\"live://1\"}", &tok), 0,
           "key absent: parsed");
    ok(tok.key == NULL && tok.key_len == 0, "key absent: NULL");
    ok(tok.accepts == NULL && tok.n_accepts == 0, "accepts absent: NULL");
    goim_token_free(&tok);

    is_int(parse("{\"mid\":null,\"key\":null,\"room_id\":null,"
                 "\"platform\":null,\"accepts\":null,\"exp\":null}", &tok),
           0, "null members: parsed");
    ok(token_is_empty(&tok), "null members: every field absent");
    goim_token_free(&tok);

    is_int(parse("{\"key\":\"\",\"room_id\":\"\",\"platform\":\"\","
                 "\"accepts\":[]}", &tok), 0, "empty members: parsed");
    ok(token_is_empty(&tok), "empty strings and [] count as absent");
    goim_token_free(&tok);

    /* as in Go, null leaves an earlier value alone */
    is_int(parse("{\"key\":\"k1\",\"key\":null,\"mid\":5,\"mid\":null}", &tok),
           0, "value then null: parsed");
    is_str(tok.key, "k1", "value then null: key kept");
    is_int(tok.mid, 5, "value then null: mid kept");
    goim_token_free(&tok);
}


static void
test_integers(void)
{
    goim_token_t  tok;

    is_int(parse("{\"mid\":9223372036854775807,"
                 "\"exp\":-9223372036854775808}", &tok), 0,
           "int64 bounds: parsed");
    ok(tok.mid == INT64_MAX, "mid INT64_MAX");
    ok(tok.exp == INT64_MIN, "exp INT64_MIN");
    goim_token_free(&tok);

    is_int(parse("{\"mid\":-0,\"exp\":-42}", &tok), 0, "-0, -42: parsed");
    is_int(tok.mid, 0, "mid -0 is 0");
    is_int(tok.exp, -42, "exp -42");
    goim_token_free(&tok);

    rejects("{\"mid\":\"123\"}", "mid: expected integer", "mid as string");
    rejects("{\"mid\":1.5}", "mid: expected integer", "mid 1.5");
    rejects("{\"mid\":1.0}", "mid: expected integer", "mid 1.0");
    rejects("{\"mid\":1e3}", "mid: expected integer", "mid 1e3");
    rejects("{\"mid\":-1E+2}", "mid: expected integer", "mid -1E+2");
    rejects("{\"mid\":true}", "mid: expected integer", "mid true");
    rejects("{\"mid\":{}}", "mid: expected integer", "mid object");
    rejects("{\"mid\":[1]}", "mid: expected integer", "mid array");
    rejects("{\"exp\":\"soon\"}", "exp: expected integer", "exp as string");
    rejects("{\"exp\":1.7e9}", "exp: expected integer", "exp 1.7e9");

    rejects("{\"mid\":9223372036854775808}",
            "mid: 9223372036854775808 out of int64 range",
            "mid INT64_MAX + 1");
    rejects("{\"exp\":-9223372036854775809}",
            "exp: -9223372036854775809 out of int64 range",
            "exp INT64_MIN - 1");
    rejects("{\"mid\":123456789012345678901234567890}",
            "mid: 123456789012345678901234 out of int64 range",
            "mid of 30 digits, quoted cut short");
    rejects("{\"mid\":99999999999999999999.5}", "mid: expected integer",
            "big fraction is a type error, not a range error");
}


static void
test_accepts(void)
{
    int           i, n;
    char          json[1024];
    goim_token_t  tok;

    is_int(parse("{\"accepts\":[1000,1001,1000,7,1001,1000]}", &tok), 0,
           "duplicate accepts: parsed");
    is_int(tok.n_accepts, 3, "duplicate accepts: kept once");
    ok(tok.n_accepts == 3 && tok.accepts[0] == 1000
       && tok.accepts[1] == 1001 && tok.accepts[2] == 7,
       "duplicate accepts: first-seen order");
    goim_token_free(&tok);

    is_int(parse("{\"accepts\":[2147483647,-2147483648]}", &tok), 0,
           "int32 bounds: parsed");
    ok(tok.n_accepts == 2 && tok.accepts[0] == INT32_MAX
       && tok.accepts[1] == INT32_MIN, "int32 bounds: values");
    goim_token_free(&tok);

    is_int(parse("{\"accepts\":[1,2],\"accepts\":[3]}", &tok), 0,
           "repeated accepts: parsed");
    ok(tok.n_accepts == 1 && tok.accepts[0] == 3,
       "repeated accepts: the last replaces the first");
    goim_token_free(&tok);

    /* Go decodes a null element of []int32 as 0 */
    is_int(parse("{\"accepts\":[5,null,null]}", &tok), 0,
           "null element: parsed");
    ok(tok.n_accepts == 2 && tok.accepts[0] == 5 && tok.accepts[1] == 0,
       "null element: 0, once");
    goim_token_free(&tok);

    rejects("{\"accepts\":[1000,\"1001\"]}", "accepts: expected integer",
            "accepts with a string");
    rejects("{\"accepts\":[1.5]}", "accepts: expected integer",
            "accepts with 1.5");
    rejects("{\"accepts\":[true]}", "accepts: expected integer",
            "accepts with true");
    rejects("{\"accepts\":[[1]]}", "accepts: expected integer",
            "accepts with an array");
    rejects("{\"accepts\":[{}]}", "accepts: expected integer",
            "accepts with an object");
    rejects("{\"accepts\":1000}", "accepts: expected array",
            "accepts not an array");
    rejects("{\"accepts\":\"1000,1001\"}", "accepts: expected array",
            "accepts as string");
    rejects("{\"accepts\":{\"0\":1}}", "accepts: expected array",
            "accepts as object");
    rejects("{\"accepts\":[1,2147483648]}",
            "accepts: 2147483648 out of int32 range", "accepts INT32_MAX + 1");
    rejects("{\"accepts\":[-2147483649]}",
            "accepts: -2147483649 out of int32 range", "accepts INT32_MIN - 1");

    n = snprintf(json, sizeof(json), "{\"accepts\":[");
    for (i = 0; i < GOIM_TOKEN_MAX_ACCEPTS; i++) {
        n += snprintf(json + n, sizeof(json) - n, "%s%d", i ? "," : "", i);
    }
    n += snprintf(json + n, sizeof(json) - n, ",0,1]}");

    is_int(parse(json, &tok), 0, "%d distinct accepts, with repeats: parsed",
           GOIM_TOKEN_MAX_ACCEPTS);
    is_int(tok.n_accepts, GOIM_TOKEN_MAX_ACCEPTS, "all kept");
    goim_token_free(&tok);

    snprintf(json + n - 6, sizeof(json) - n + 6, ",%d]}",
             GOIM_TOKEN_MAX_ACCEPTS);
    rejects(json, "accepts: more than 64 operations",
            "one accept over the limit");
}


static void
test_strings(void)
{
    char          json[512];
    goim_token_t  tok;

    is_int(parse("{\"key\":\"caf\\u00e9\",\"room_id\":\"\\u6f14\\u5531\","
                 "\"platform\":\"\\ud83d\\ude00\"}", &tok), 0,
           "unicode escapes: parsed");
    is_str(tok.key, "caf\xc3\xa9", "\\u00e9 decoded to UTF-8");
    is_int(tok.key_len, 5, "\\u00e9: key_len counts bytes");
    is_str(tok.room_id, "\xe6\xbc\x94\xe5\x94\xb1", "CJK escapes decoded");
    is_str(tok.platform, "\xf0\x9f\x98\x80", "surrogate pair decoded");
    goim_token_free(&tok);

    is_int(parse("{\"key\":\"caf\xc3\xa9 \\\"q\\\" \\\\ \\/\"}", &tok), 0,
           "raw UTF-8 and escapes: parsed");
    is_str(tok.key, "caf\xc3\xa9 \"q\" \\ /", "raw UTF-8 and escapes: key");
    goim_token_free(&tok);

    /* bytes that matter to Redis or logs but not to JSON are kept */
    is_int(parse("{\"key\":\"a b:c*d\\u007f\"}", &tok), 0,
           "space, ':', '*', DEL in key: parsed");
    is_str(tok.key, "a b:c*d\x7f", "space, ':', '*', DEL in key: kept");
    goim_token_free(&tok);

    rejects("{\"key\":\"ab\xff\"}", "invalid JSON: lexical error: invalid "
            "bytes in UTF8 string.", "invalid UTF-8");

    /* what yajl lets through */
    rejects("{\"key\":\"\xc0\xaf\"}", "key: invalid UTF-8", "overlong UTF-8");
    rejects("{\"key\":\"\xe0\x80\xaf\"}", "key: invalid UTF-8",
            "overlong 3-byte UTF-8");
    rejects("{\"room_id\":\"\xed\xa0\x80\"}", "room_id: invalid UTF-8",
            "UTF-8 encoded surrogate");
    rejects("{\"platform\":\"\xf4\x90\x80\x80\"}",
            "platform: invalid UTF-8", "code point past U+10FFFF");
    rejects("{\"key\":\"a\\udc00\"}", "key: invalid UTF-8",
            "lone low surrogate escape");

    is_int(parse("{\"key\":\"\xef\xbf\xbd\xf4\x8f\xbf\xbf\xed\x9f\xbf\"}",
                 &tok), 0, "U+FFFD, U+10FFFF, U+D7FF: parsed");
    is_int(tok.key_len, 10, "U+FFFD, U+10FFFF, U+D7FF: kept");
    goim_token_free(&tok);

    rejects("{\"key\":\"a\\u0001b\"}", "key: control character",
            "\\u0001 in key");
    rejects("{\"key\":\"a\\u0000b\"}", "key: control character",
            "\\u0000 in key");
    rejects("{\"key\":\"a\\nb\"}", "key: control character", "\\n in key");
    rejects("{\"room_id\":\"live://1\\r\\n\"}", "room_id: control character",
            "CR LF in room_id");
    rejects("{\"room_id\":\"a\\tb\"}", "room_id: control character",
            "tab in room_id");
    rejects("{\"platform\":\"web\\u001b[1m\"}", "platform: control character",
            "ESC in platform");
    rejects("{\"key\":\"a\tb\"}", "invalid JSON: lexical error: invalid "
            "character inside string.", "raw tab is invalid JSON");

    rejects("{\"key\":1}", "key: expected string", "key as number");
    rejects("{\"key\":false}", "key: expected string", "key as boolean");
    rejects("{\"room_id\":[]}", "room_id: expected string", "room as array");
    rejects("{\"platform\":{}}", "platform: expected string",
            "platform as object");

    snprintf(json, sizeof(json), "{\"key\":\"%0*d\"}", GOIM_TOKEN_MAX_KEY, 0);
    is_int(parse(json, &tok), 0, "key of %d bytes: parsed",
           GOIM_TOKEN_MAX_KEY);
    is_int(tok.key_len, GOIM_TOKEN_MAX_KEY, "key of the maximum length");
    goim_token_free(&tok);

    snprintf(json, sizeof(json), "{\"key\":\"%0*d\"}",
             GOIM_TOKEN_MAX_KEY + 1, 0);
    rejects(json, "key: longer than 128 bytes", "key one byte too long");

    /* the limit is on decoded bytes: 64 escapes of 2 bytes each fit */
    snprintf(json, sizeof(json), "{\"key\":\"");
    while (strlen(json) < 8 + 64 * 6) {
        strcat(json, "\\u00e9");
    }
    strcat(json, "\"}");
    is_int(parse(json, &tok), 0, "key of 64 x \\u00e9: parsed");
    is_int(tok.key_len, 128, "key of 64 x \\u00e9: 128 bytes");
    goim_token_free(&tok);

    snprintf(json, sizeof(json), "{\"room_id\":\"%0*d\"}",
             GOIM_TOKEN_MAX_ROOM, 0);
    is_int(parse(json, &tok), 0, "room_id of %d bytes: parsed",
           GOIM_TOKEN_MAX_ROOM);
    goim_token_free(&tok);

    snprintf(json, sizeof(json), "{\"room_id\":\"%0*d\"}",
             GOIM_TOKEN_MAX_ROOM + 1, 0);
    rejects(json, "room_id: longer than 256 bytes", "room_id too long");

    snprintf(json, sizeof(json), "{\"platform\":\"%0*d\"}",
             GOIM_TOKEN_MAX_PLATFORM + 1, 0);
    rejects(json, "platform: longer than 32 bytes", "platform too long");

    /* a long unknown member is skipped, not limited */
    snprintf(json, sizeof(json), "{\"note\":\"%0*d\",\"key\":\"k\"}", 400, 0);
    is_int(parse(json, &tok), 0, "long unknown string: parsed");
    is_str(tok.key, "k", "long unknown string: key");
    goim_token_free(&tok);
}


static void
test_members(void)
{
    int           i;
    char          json[256];
    goim_token_t  tok;

    is_int(parse("{\"a\":{\"mid\":\"x\",\"b\":[1,{\"accepts\":\"no\"},[[]]],"
                 "\"key\":[true,null,1.5e300]},\"mid\":5,"
                 "\"c\":[[[\"s\",{\"d\":{}}]]],\"e\":-1.5,\"f\":false,"
                 "\"accepts\":[7],\"g\":{\"accepts\":[\"x\"]}}", &tok), 0,
           "nested unknown members: parsed");
    is_int(tok.mid, 5, "nested unknown members: mid");
    ok(tok.key == NULL, "nested unknown members: inner key ignored");
    ok(tok.n_accepts == 1 && tok.accepts[0] == 7,
       "nested unknown members: accepts from the top level only");
    goim_token_free(&tok);

    is_int(parse("{\"MID\":1,\"Key\":\"k\",\"ROOM_ID\":\"r\","
                 "\"Platform\":\"p\",\"ACCEPTS\":[2],\"Exp\":3}", &tok), 0,
           "member names in other cases: parsed");
    ok(tok.mid == 1 && tok.key != NULL && tok.room_id != NULL
       && tok.platform != NULL && tok.n_accepts == 1 && tok.exp == 3,
       "member names match case-insensitively, as in Go");
    goim_token_free(&tok);

    is_int(parse("{\"m\\u0069d\":4,\"mid \":5,\"mi\":6,\"midx\":7,"
                 "\"room-id\":\"x\",\"roomid\":\"y\"}", &tok), 0,
           "near-miss names: parsed");
    is_int(tok.mid, 4, "escaped name matches; near misses are unknown");
    ok(tok.room_id == NULL, "room-id and roomid are unknown");
    goim_token_free(&tok);

    is_int(parse("{\"key\":\"a\",\"mid\":1,\"key\":\"b\",\"mid\":2,"
                 "\"key\":\"\"}", &tok), 0, "repeated members: parsed");
    ok(tok.key == NULL && tok.key_len == 0,
       "repeated key: the last (empty) wins");
    is_int(tok.mid, 2, "repeated mid: the last wins");
    goim_token_free(&tok);

    /* GOIM_TOKEN_MAX_DEPTH counts the top-level object */
    strcpy(json, "{\"x\":");
    for (i = 1; i < GOIM_TOKEN_MAX_DEPTH; i++) {
        strcat(json, "[");
    }
    for (i = 1; i < GOIM_TOKEN_MAX_DEPTH; i++) {
        strcat(json, "]");
    }
    strcat(json, "}");
    is_int(parse(json, &tok), 0, "nesting of %d: parsed",
           GOIM_TOKEN_MAX_DEPTH);
    goim_token_free(&tok);

    strcpy(json, "{\"x\":");
    for (i = 0; i < GOIM_TOKEN_MAX_DEPTH; i++) {
        strcat(json, "[");
    }
    for (i = 0; i < GOIM_TOKEN_MAX_DEPTH; i++) {
        strcat(json, "]");
    }
    strcat(json, "}");
    rejects(json, "token: nested deeper than 32", "nesting one too deep");

    strcpy(json, "{\"x\":");
    for (i = 0; i < 200; i++) {
        strcat(json, "{\"a\":");
        if (strlen(json) > sizeof(json) - 8) {
            break;
        }
    }
    rejects(json, "token: nested deeper than 32",
            "deep unterminated objects: the depth limit comes first");
}


static void
test_malformed(void)
{
    int           rc;
    char          small[8];
    goim_token_t  tok;

    static const char  nul[] = "{\"mid\":1}\0";

    rejects_json("{\"mid\":1} x", 11, "trailing garbage");
    rejects_json("{\"mid\":1}{}", 11, "a second object");
    rejects_json(nul, sizeof(nul) - 1, "trailing NUL byte");
    rejects_json("", 0, "empty input");
    rejects_json(NULL, 0, "NULL input of length 0");
    rejects_json("   ", 3, "only whitespace");
    rejects_json("{", 1, "unterminated object");
    rejects_json("{\"mid\":1", 8, "truncated after a value");
    rejects_json("{\"key\":\"abc", 11, "unterminated string");
    rejects_json("{mid:1}", 7, "unquoted name");
    rejects_json("{'mid':1}", 9, "single quotes");
    rejects_json("{\"mid\":1,}", 10, "trailing comma");
    rejects_json("{\"mid\":01}", 10, "leading zero");
    rejects_json("{\"mid\":+1}", 10, "leading plus");
    rejects_json("{\"mid\":0x10}", 12, "hex number");
    rejects_json("{\"mid\":NaN}", 11, "NaN");
    rejects_json("{/* c */\"mid\":1}", 16, "block comment");
    rejects_json("{\"mid\":1}// c", 13, "line comment");
    rejects_json("{\"key\":\"\\x41\"}", 14, "bad escape");
    rejects_json("{\"key\":\"\\u12\"}", 14, "short \\u escape");
    rejects_json("\xef\xbb\xbf{}", 5, "byte order mark");

    rejects("[]", "token: expected a JSON object", "top-level array");
    rejects("[{\"mid\":1}]", "token: expected a JSON object",
            "object inside a top-level array");
    rejects("123", "token: expected a JSON object", "top-level number");
    rejects("\"mid\"", "token: expected a JSON object", "top-level string");
    rejects("null", "token: expected a JSON object", "top-level null");
    rejects("true", "token: expected a JSON object", "top-level true");

    /* a parsed prefix is freed when a later member fails */
    rejects("{\"key\":\"k\",\"room_id\":\"r\",\"platform\":\"p\","
            "\"accepts\":[1],\"mid\":\"x\"}", "mid: expected integer",
            "failure after allocations");
    rejects_json("{\"key\":\"k\",\"accepts\":[1,2]} ]", 29,
                 "trailing garbage after allocations");

    rc = goim_token_parse((const uint8_t *) "{\"mid\":1.5}", 11, &tok, small,
                          sizeof(small));
    is_int(rc, -1, "small err buffer: rejected");
    is_str(small, "mid: ex", "small err buffer: reason cut, terminated");

    rc = goim_token_parse((const uint8_t *) "{\"mid\":1.5}", 11, &tok, NULL,
                          0);
    is_int(rc, -1, "no err buffer: rejected");
}


int
main(void)
{
    test_doc_example();
    test_absent_and_null();
    test_integers();
    test_accepts();
    test_strings();
    test_members();
    test_malformed();

    return done_testing();
}
