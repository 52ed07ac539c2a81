/*
 * Several rooms per connection (docs/PROTOCOL.md 1.14): the room list of
 * a join or leave operation, a JSON array of strings; what makes a room
 * id valid; and the room rights of a token ("allowed_rooms": exact ids,
 * or prefixes written "prefix*").  Pure C, no nginx headers.
 */

#ifndef GOIM_ROOMS_H
#define GOIM_ROOMS_H

#include <stddef.h>
#include <stdint.h>


#define GOIM_ROOM_MAX_ID     256        /* bytes, as goim's room_id */
#define GOIM_ROOM_MAX_LIST   256        /* ids in one join or leave */


/*
 * The ids of a list as sent, each a 4-byte length (host order) and its
 * bytes: an id is checked where it is used, so that each gets its own
 * answer.
 */
typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          n;
} goim_room_list_t;


/*
 * Parses a JSON array of strings (at most max).  Returns 0, or -1 with a
 * short reason in err ("expected a JSON array of strings", "more than
 * 16 rooms", "invalid JSON: ..."); list is then empty.  Release it with
 * goim_room_list_free().
 */
int goim_room_list_parse(const uint8_t *json, size_t len, size_t max,
    goim_room_list_t *list, char *err, size_t err_size);

/* the next id from *pos (0 at first): 1, or 0 at the end */
int goim_room_list_next(const goim_room_list_t *list, size_t *pos,
    const unsigned char **id, size_t *len);

void goim_room_list_free(goim_room_list_t *list);

/*
 * A room id a connection may be in: 1 to GOIM_ROOM_MAX_ID bytes, none
 * below 0x20 nor 0x7f (as goim's op 12 in docs/PROTOCOL.md 1.7; a JSON
 * list is valid UTF-8 already).  NULL, or why not.
 */
const char *goim_room_id_invalid(const unsigned char *id, size_t len);

/*
 * rights: n ids as goim_token_rooms_t holds them (each followed by a
 * NUL).  1 when id equals one of them, or starts with the part before a
 * final '*' of one (a "live" prefix and '*' allows every room whose id
 * starts with "live"; "*" alone allows all).
 */
int goim_room_allowed(const char *rights, size_t rights_len,
    const unsigned char *id, size_t len);


#endif /* GOIM_ROOMS_H */
