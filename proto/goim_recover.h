/*
 * A client's recovery request (docs/PROTOCOL.md 1.15): the JSON body of
 * op 35, {"rooms":[{"room_id":"live://1000","epoch":"...","offset":57}]}.
 * Pure C with yajl's tree parser, no nginx headers.
 */

#ifndef GOIM_RECOVER_H
#define GOIM_RECOVER_H

#include <stddef.h>
#include <stdint.h>


#define GOIM_RECOVER_MAX_ROOMS   256     /* goim_max_rooms at most */
#define GOIM_RECOVER_MAX_ROOM    256     /* bytes, as a room id */
#define GOIM_RECOVER_MAX_EPOCH   40


typedef struct {
    char        room[GOIM_RECOVER_MAX_ROOM];
    size_t      room_len;
    char        epoch[GOIM_RECOVER_MAX_EPOCH];
    size_t      epoch_len;
    uint64_t    offset;
} goim_recover_room_t;


typedef struct {
    size_t               n;
    goim_recover_room_t *rooms;         /* malloc'ed; goim_recover_free */
} goim_recover_t;


/*
 * Parses a request: 0, or -1 with a short reason in err (always
 * NUL-terminated).  Unknown members are ignored; room ids follow the
 * token's rules (no byte below 0x20, no 0x7f); an offset is a JSON
 * integer from 0 to 2^63 - 1.  A room named twice counts once, with the
 * last position.  r must be zeroed or parsed before: what it held is
 * freed first.
 */
int goim_recover_parse(const uint8_t *json, size_t len, goim_recover_t *r,
    char *err, size_t err_size);

void goim_recover_free(goim_recover_t *r);


#endif /* GOIM_RECOVER_H */
