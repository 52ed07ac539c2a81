/*
 * A recovery request (docs/PROTOCOL.md 1.15, op 35): rooms with their
 * epochs and offsets, duplicates, limits, and the errors a client is
 * told; a request parsed again frees the last one.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim_recover.h"
#include "tap.h"


static char  err[128];


static int
parse(const char *json, goim_recover_t *r)
{
    err[0] = '\0';
    return goim_recover_parse((const uint8_t *) json, strlen(json), r, err,
                              sizeof(err));
}


int
main(void)
{
    char            *big, *p;
    size_t           i;
    goim_recover_t   r;

    memset(&r, 0, sizeof(r));

    is_int(parse("{\"rooms\":[{\"room_id\":\"live://1\",\"epoch\":\"e-1\","
                 "\"offset\":57},{\"room_id\":\"group://7\",\"epoch\":\"e-2\","
                 "\"offset\":0,\"x\":1}]}", &r), 0, "two rooms");
    is_int(r.n, 2, "two rooms: n");
    ok(r.n == 2 && r.rooms[0].room_len == 8
       && memcmp(r.rooms[0].room, "live://1", 8) == 0
       && r.rooms[0].offset == 57
       && r.rooms[0].epoch_len == 3 && memcmp(r.rooms[0].epoch, "e-1", 3) == 0,
       "the first room, its epoch and offset");
    ok(r.n == 2 && r.rooms[1].offset == 0, "offset 0; unknown members ignored");

    is_int(parse("{\"rooms\":[{\"room_id\":\"a\",\"epoch\":\"e\",\"offset\":1},"
                 "{\"room_id\":\"a\",\"epoch\":\"e\",\"offset\":9}]}", &r), 0,
           "a room twice");
    ok(r.n == 1 && r.rooms[0].offset == 9, "counts once, the last position");

    is_int(parse("{\"rooms\":[{\"room_id\":\"a\",\"epoch\":\"e\","
                 "\"offset\":9223372036854775807}]}", &r), 0, "2^63-1");
    ok(r.n == 1 && r.rooms[0].offset == 9223372036854775807ULL,
       "2^63-1: read whole");

    is_int(parse("{\"rooms\":[]}", &r), 0, "no room");
    is_int(r.n, 0, "no room: n");

    is_int(parse("{\"rooms\":[{\"room_id\":1}]", &r), -1, "bad JSON");
    is_str(err, "invalid JSON", "bad JSON: the reason");
    is_int(r.n, 0, "bad JSON: nothing kept");
    is_int(parse("[]", &r), -1, "not an object");
    is_str(err, "expected a JSON object", "not an object: the reason");
    is_int(parse("{\"rooms\":{}}", &r), -1, "rooms not an array");
    is_str(err, "rooms: expected array", "rooms not an array: the reason");
    is_int(parse("{\"rooms\":[{\"room_id\":\"a\",\"offset\":1}]}", &r), -1,
           "no epoch");
    is_str(err, "rooms: each needs room_id, epoch and offset",
           "no epoch: the reason");
    is_int(parse("{\"rooms\":[{\"room_id\":\"a\",\"epoch\":\"e\","
                 "\"offset\":-1}]}", &r), -1, "a negative offset");
    is_str(err, "offset: expected an integer from 0 to 2^63-1",
           "a negative offset: the reason");
    is_int(parse("{\"rooms\":[{\"room_id\":\"a\",\"epoch\":\"e\","
                 "\"offset\":1.5}]}", &r), -1, "a fractional offset");
    is_int(parse("{\"rooms\":[{\"room_id\":\"\",\"epoch\":\"e\","
                 "\"offset\":1}]}", &r), -1, "an empty room id");
    is_int(parse("{\"rooms\":[{\"room_id\":\"a\\u0001\",\"epoch\":\"e\","
                 "\"offset\":1}]}", &r), -1, "a control character");
    is_str(err, "room_id: control character", "control: the reason");
    is_int(goim_recover_parse((const uint8_t *) "{\"rooms\":[]}\0", 13, &r,
                              err, sizeof(err)), -1, "a NUL byte");

    /* 256 rooms, then 257 */

    big = malloc(300 * 64 + 32);
    if (big == NULL) {
        return 1;
    }

    for (int n = 256; n <= 257; n++) {
        p = big + sprintf(big, "{\"rooms\":[");
        for (i = 0; i < (size_t) n; i++) {
            p += sprintf(p, "%s{\"room_id\":\"r%zu\",\"epoch\":\"e\","
                         "\"offset\":%zu}", i ? "," : "", i, i);
        }
        sprintf(p, "]}");

        if (n == 256) {
            is_int(parse(big, &r), 0, "256 rooms");
            ok(r.n == 256 && r.rooms[255].offset == 255, "256 rooms: all");
        } else {
            is_int(parse(big, &r), -1, "257 rooms");
            is_str(err, "rooms: more than 256", "257 rooms: the reason");
        }
    }

    free(big);
    goim_recover_free(&r);
    ok(r.rooms == NULL && r.n == 0, "freed");

    return done_testing();
}
