/*
 * Several rooms per connection (docs/PROTOCOL.md 1.14): the token's
 * room_ids and allowed_rooms, their limits and duplicates; a join or
 * leave list (a JSON array of strings); room id checks; room rights,
 * exact and by prefix; a signed token's room claims, once each.
 */

#include <stdlib.h>
#include <string.h>

#include "goim_token.h"
#include "goim_jwt.h"
#include "goim_rooms.h"
#include "tap.h"


static char  err[128];


static int
parse(const char *json, goim_token_t *tok)
{
    return goim_token_parse((const uint8_t *) json, strlen(json), tok, err,
                            sizeof(err));
}


/* the ids of a token list joined with '|' */
static const char *
joined(const goim_token_rooms_t *list)
{
    static char   buf[4096];
    size_t        pos, len, n;
    const char   *id;

    pos = 0;
    n = 0;
    buf[0] = '\0';

    while (goim_token_rooms_next(list, &pos, &id, &len)) {
        if (n) {
            strcat(buf, "|");
        }

        strncat(buf, id, len);
        n++;
    }

    return buf;
}


static const char *
list_joined(const goim_room_list_t *list)
{
    static char           buf[4096];
    size_t                pos, len, n;
    const unsigned char  *id;

    pos = 0;
    n = 0;
    buf[0] = '\0';

    while (goim_room_list_next(list, &pos, &id, &len)) {
        if (n) {
            strcat(buf, "|");
        }

        strncat(buf, (const char *) id, len);
        n++;
    }

    return buf;
}


static void
test_token_rooms(void)
{
    int           rc;
    char          json[16384], *p;
    size_t        i;
    goim_token_t  tok;

    rc = parse("{\"mid\":1,\"room_id\":\"live://1\","
               "\"room_ids\":[\"user://1\",\"group://7\",\"user://1\",null,"
               "\"\"],\"allowed_rooms\":[\"group://*\",\"live://9\"]}", &tok);
    is_int(rc, 0, "room_ids and allowed_rooms: parsed");
    is_str(tok.room_id, "live://1", "room_id kept beside room_ids");
    is_int(tok.room_ids.n, 2, "duplicate, null and empty rooms skipped");
    is_str(joined(&tok.room_ids), "user://1|group://7", "room_ids in order");
    ok(tok.room_ids.given, "room_ids given");
    is_int(tok.allowed_rooms.n, 2, "two rights");
    is_str(joined(&tok.allowed_rooms), "group://*|live://9", "rights kept");
    goim_token_free(&tok);

    rc = parse("{\"room_ids\":[],\"allowed_rooms\":[]}", &tok);
    is_int(rc, 0, "empty lists: parsed");
    ok(tok.room_ids.n == 0 && tok.room_ids.data == NULL, "no room_ids");
    ok(tok.allowed_rooms.given && tok.allowed_rooms.n == 0,
       "[] allowed_rooms is given: no room allowed, not any");
    goim_token_free(&tok);

    rc = parse("{\"mid\":1}", &tok);
    ok(rc == 0 && !tok.allowed_rooms.given && !tok.room_ids.given,
       "absent lists are not given");
    goim_token_free(&tok);

    rc = parse("{\"room_ids\":null,\"ROOM_IDS\":[\"a\"],"
               "\"room_ids\":[\"b\"]}", &tok);
    ok(rc == 0 && strcmp(joined(&tok.room_ids), "b") == 0,
       "names fold case, the last list wins");
    goim_token_free(&tok);

    rc = parse("{\"room_ids\":\"a\"}", &tok);
    ok(rc == -1 && strcmp(err, "room_ids: expected array") == 0,
       "room_ids as a string: %s", err);

    rc = parse("{\"room_ids\":[1]}", &tok);
    ok(rc == -1 && strcmp(err, "room_ids: expected string") == 0,
       "a number in room_ids: %s", err);

    rc = parse("{\"allowed_rooms\":[[\"a\"]]}", &tok);
    ok(rc == -1 && strcmp(err, "allowed_rooms: expected string") == 0,
       "an array in allowed_rooms: %s", err);

    rc = parse("{\"room_ids\":[{}]}", &tok);
    ok(rc == -1 && strcmp(err, "room_ids: expected string") == 0,
       "an object in room_ids: %s", err);

    rc = parse("{\"room_ids\":[\"a\\u0001\"]}", &tok);
    ok(rc == -1 && strcmp(err, "room_ids: control character") == 0,
       "control character: %s", err);

    memset(json, 0, sizeof(json));
    p = json + sprintf(json, "{\"room_ids\":[\"");
    memset(p, 'r', 257);
    strcpy(p + 257, "\"]}");
    rc = parse(json, &tok);
    ok(rc == -1 && strcmp(err, "room_ids: longer than 256 bytes") == 0,
       "257-byte room: %s", err);

    p = json + sprintf(json, "{\"room_ids\":[");
    for (i = 0; i < GOIM_TOKEN_MAX_ROOMS; i++) {
        p += sprintf(p, "%s\"r%zu\"", i ? "," : "", i);
    }
    strcpy(p, "]}");
    rc = parse(json, &tok);
    ok(rc == 0 && tok.room_ids.n == GOIM_TOKEN_MAX_ROOMS,
       "256 room_ids: parsed");
    goim_token_free(&tok);

    strcpy(p, ",\"r0\"]}");
    rc = parse(json, &tok);
    ok(rc == 0, "256 room_ids and a duplicate: parsed");
    goim_token_free(&tok);

    strcpy(p, ",\"x\"]}");
    rc = parse(json, &tok);
    ok(rc == -1 && strcmp(err, "room_ids: more than 256 rooms") == 0,
       "257 room_ids: %s", err);

    p = json + sprintf(json, "{\"allowed_rooms\":[");
    for (i = 0; i <= GOIM_TOKEN_MAX_RIGHTS; i++) {
        p += sprintf(p, "%s\"r%zu\"", i ? "," : "", i);
    }
    strcpy(p, "]}");
    rc = parse(json, &tok);
    ok(rc == -1 && strcmp(err, "allowed_rooms: more than 64 rooms") == 0,
       "65 rights: %s", err);

    rc = parse("{\"room_ids\":[\"a\"],\"mid\":\"x\"}", &tok);
    ok(rc == -1 && tok.room_ids.data == NULL,
       "a later failure frees the lists");
}


static void
test_list(void)
{
    int                   rc;
    char                  json[8192], *p;
    size_t                i, pos, len;
    goim_room_list_t      list;
    const unsigned char  *id;

    rc = goim_room_list_parse((const uint8_t *) "[\"a\",\"b\\u0000c\",\"\","
                              "\"a\"]", 23, 16, &list, err, sizeof(err));
    is_int(rc, 0, "list: parsed");
    is_int(list.n, 4, "list: every element kept, as sent");
    pos = 0;
    ok(goim_room_list_next(&list, &pos, &id, &len) && len == 1
       && id[0] == 'a', "list: first id");
    ok(goim_room_list_next(&list, &pos, &id, &len) && len == 3
       && memcmp(id, "b\0c", 3) == 0, "list: an id with a NUL, as sent");
    ok(goim_room_list_next(&list, &pos, &id, &len) && len == 0,
       "list: an empty id, as sent");
    ok(goim_room_list_next(&list, &pos, &id, &len) && len == 1,
       "list: a repeated id, as sent");
    ok(!goim_room_list_next(&list, &pos, &id, &len), "list: its end");
    goim_room_list_free(&list);

    rc = goim_room_list_parse((const uint8_t *) "[\"x\",\"y\"]", 9, 16,
                              &list, err, sizeof(err));
    is_str(list_joined(&list), "x|y", "list: ids in order");
    goim_room_list_free(&list);

    rc = goim_room_list_parse((const uint8_t *) "[]", 2, 16, &list, err,
                              sizeof(err));
    ok(rc == 0 && list.n == 0, "empty list");

#define REJECT(s, why)                                                       \
    rc = goim_room_list_parse((const uint8_t *) s, strlen(s), 4, &list,     \
                              err, sizeof(err));                             \
    ok(rc == -1 && strcmp(err, why) == 0 && list.data == NULL,               \
       "list %s: %s", s, err)

    REJECT("{\"a\":1}", "expected a JSON array of strings");
    REJECT("\"a\"", "expected a JSON array of strings");
    REJECT("[1]", "expected a JSON array of strings");
    REJECT("[\"a\",null]", "expected a JSON array of strings");
    REJECT("[\"a\",true]", "expected a JSON array of strings");
    REJECT("[[\"a\"]]", "expected a JSON array of strings");
    REJECT("[\"a\",\"b\",\"c\",\"d\",\"e\"]", "more than 4 rooms");
    REJECT("[\"a\"", "invalid JSON");
    REJECT("[\"a\"] x", "invalid JSON");
    REJECT("[\"\xff\"]", "invalid JSON");

    p = json + sprintf(json, "[");
    for (i = 0; i < GOIM_ROOM_MAX_LIST; i++) {
        p += sprintf(p, "%s\"%zu\"", i ? "," : "", i);
    }
    strcpy(p, "]");
    rc = goim_room_list_parse((const uint8_t *) json, strlen(json),
                              GOIM_ROOM_MAX_LIST, &list, err, sizeof(err));
    ok(rc == 0 && list.n == GOIM_ROOM_MAX_LIST, "256 ids");
    goim_room_list_free(&list);
}


static void
test_ids_and_rights(void)
{
    char        big[300];
    const char  rights[] = "live://9\0group://*\0";
    const char  all[] = "*\0";

    memset(big, 'r', sizeof(big));

    ok(goim_room_id_invalid((const unsigned char *) "live://1", 8) == NULL,
       "a room id");
    is_str(goim_room_id_invalid((const unsigned char *) "", 0),
           "empty room id", "empty");
    ok(goim_room_id_invalid((const unsigned char *) big, 256) == NULL,
       "256 bytes");
    is_str(goim_room_id_invalid((const unsigned char *) big, 257),
           "room id longer than 256 bytes", "257 bytes");
    is_str(goim_room_id_invalid((const unsigned char *) "a\x7f", 2),
           "control character in room id", "0x7f");
    is_str(goim_room_id_invalid((const unsigned char *) "a\nb", 3),
           "control character in room id", "newline");

#define ALLOWED(r, id)                                                       \
    goim_room_allowed(r, sizeof(r) - 1, (const unsigned char *) id,          \
                      strlen(id))

    ok(ALLOWED(rights, "live://9"), "exact right");
    ok(!ALLOWED(rights, "live://90"), "exact right is not a prefix");
    ok(!ALLOWED(rights, "live://"), "nor a shorter id");
    ok(ALLOWED(rights, "group://7"), "prefix right");
    ok(ALLOWED(rights, "group://"), "prefix right, the prefix itself");
    ok(!ALLOWED(rights, "group:/"), "shorter than the prefix");
    ok(!ALLOWED(rights, "user://1"), "another room");
    ok(ALLOWED(all, "anything"), "\"*\" allows all");
    ok(!goim_room_allowed("", 0, (const unsigned char *) "a", 1),
       "no rights: nothing allowed");
}


static void
test_jwt_claims(void)
{
    int           rc, len;
    char          token[4096];
    goim_token_t  tok;
    const char   *secret = "0123456789abcdef0123456789abcdef";
    const char   *ok_claims = "{\"mid\":1,\"room_ids\":[\"a\"],"
                              "\"allowed_rooms\":[\"b*\"],\"exp\":4102444800}";
    const char   *dup_claims = "{\"room_ids\":[\"a\"],\"Room_Ids\":[\"b\"],"
                               "\"exp\":4102444800}";

    len = goim_jwt_sign((const uint8_t *) ok_claims, strlen(ok_claims),
                        (const uint8_t *) secret, 32, token, sizeof(token),
                        err, sizeof(err));
    rc = goim_jwt_verify((const uint8_t *) token, len,
                         (const uint8_t *) secret, 32, 1000, 30, &tok, err,
                         sizeof(err));
    ok(rc == 0 && strcmp(joined(&tok.room_ids), "a") == 0
       && strcmp(joined(&tok.allowed_rooms), "b*") == 0,
       "signed token: room claims read");
    goim_token_free(&tok);

    len = goim_jwt_sign((const uint8_t *) dup_claims, strlen(dup_claims),
                        (const uint8_t *) secret, 32, token, sizeof(token),
                        err, sizeof(err));
    rc = goim_jwt_verify((const uint8_t *) token, len,
                         (const uint8_t *) secret, 32, 1000, 30, &tok, err,
                         sizeof(err));
    ok(rc == -1 && strstr(err, "room_ids") != NULL,
       "signed token: room_ids twice refused: %s", err);
}


int
main(void)
{
    test_token_rooms();
    test_list();
    test_ids_and_rights();
    test_jwt_claims();

    return done_testing();
}
