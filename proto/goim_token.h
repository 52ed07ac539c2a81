/*
 * goim's auth token (docs/PROTOCOL.md 1.4): the JSON body of the first client
 * packet, {"mid":123,"key":"..","room_id":"live://1000","platform":"web",
 * "accepts":[1000,1001]}, and ours: "room_ids" (more rooms) and
 * "allowed_rooms" (the rooms it may join later, "prefix*" for a prefix).
 * Parsed with yajl; pure C, no nginx headers.
 */

#ifndef GOIM_TOKEN_H
#define GOIM_TOKEN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_parse.h>


#define GOIM_TOKEN_MAX_KEY       128    /* bytes */
#define GOIM_TOKEN_MAX_ROOM      256
#define GOIM_TOKEN_MAX_PLATFORM  32
#define GOIM_TOKEN_MAX_ACCEPTS   64     /* distinct operations */
#define GOIM_TOKEN_MAX_DEPTH     32     /* nesting of objects and arrays */
#define GOIM_TOKEN_MAX_ROOMS     256    /* distinct room_ids */
#define GOIM_TOKEN_MAX_RIGHTS    64     /* distinct allowed_rooms */


/*
 * A list of room ids: each followed by a NUL (room ids hold no control
 * character), n of them in len bytes; data is NULL when n is 0.
 */
typedef struct {
    char      *data;
    size_t     len;
    size_t     n;
    unsigned   given;           /* the member was an array, even [] */
} goim_token_rooms_t;


typedef struct {
    int64_t    mid;             /* 0 when absent */
    char      *key;             /* NUL-terminated, NULL when absent */
    size_t     key_len;
    char      *room_id;         /* NULL when absent */
    size_t     room_len;
    char      *platform;        /* NULL when absent */
    int32_t   *accepts;
    size_t     n_accepts;
    int64_t    exp;             /* JWT "exp" claim, 0 when absent */

    /* rooms beside room_id, and the rooms a connection may join */
    goim_token_rooms_t  room_ids;
    goim_token_rooms_t  allowed_rooms;
} goim_token_t;


/*
 * Parses a token.  The top level must be a JSON object; unknown members
 * are ignored, null and empty-string members count as absent; member
 * names match case-insensitively and a repeated member replaces the
 * earlier one, as with Go's json.Unmarshal.  mid and exp must be integers
 * within int64, accepts an array of int32 integers, room_ids and
 * allowed_rooms arrays of strings, the others strings within their
 * limits, valid UTF-8 without control characters (room ids as room_id).
 * Duplicate accepts and rooms are kept once; null and "" rooms skipped.
 * Returns 0, or -1 with a short reason in err (always NUL-terminated).
 * On success the token owns malloc'ed memory: release it with
 * goim_token_free().
 */
int goim_token_parse(const uint8_t *json, size_t len, goim_token_t *tok,
    char *err, size_t err_size);

void goim_token_free(goim_token_t *tok);

void goim_token_rooms_free(goim_token_rooms_t *list);

/*
 * The next id of a list from *pos (0 at first): 1 with *id and *len set,
 * 0 at the end.
 */
int goim_token_rooms_next(const goim_token_rooms_t *list, size_t *pos,
    const char **id, size_t *len);

/*
 * Shared with goim_jwt.c.  goim_token_verror formats into err when there
 * is room.  goim_token_name_eq compares s with name, which is lowercase,
 * folding ASCII case only.  goim_token_json runs a yajl callback parser
 * over json with comments refused and strings validated: 0, or -1 with
 * "<prefix>invalid JSON" (and, when detail, yajl's reason) in err, or
 * with err as a callback left it when one canceled the parse.
 */
void goim_token_verror(char *err, size_t err_size, const char *fmt,
    va_list ap);
int goim_token_name_eq(const unsigned char *s, size_t len, const char *name);
int goim_token_json(const yajl_callbacks *cb, void *ctx, const uint8_t *json,
    size_t len, const char *prefix, int detail, char *err, size_t err_size);


#endif /* GOIM_TOKEN_H */
