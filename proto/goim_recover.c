/*
 * A client's recovery request (goim_recover.h), parsed with yajl's tree
 * parser: the request is small (goim_max_body at most) and comes once
 * per connection or room change, not per message.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "goim_recover.h"
#include "goim_util.h"


static int
goim_recover_error(char *err, size_t err_size, const char *fmt, ...)
{
    va_list  ap;

    if (err != NULL && err_size > 0) {
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }

    return -1;
}


static int
goim_recover_string(yajl_val v, const char *what, char *dst, size_t max,
    size_t *len, char *err, size_t err_size)
{
    size_t          i, n;
    const uint8_t  *s;

    if (!YAJL_IS_STRING(v)) {
        return goim_recover_error(err, err_size, "%s: expected string",
                                  what);
    }

    s = (const uint8_t *) YAJL_GET_STRING(v);
    n = strlen((const char *) s);

    if (n == 0 || n > max) {
        return goim_recover_error(err, err_size, "%s: empty or longer than "
                                  "%zu bytes", what, max);
    }

    for (i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            return goim_recover_error(err, err_size,
                                      "%s: control character", what);
        }
    }

    memcpy(dst, s, n);
    *len = n;

    return 0;
}


static int
goim_recover_room(yajl_val o, goim_recover_room_t *r, char *err,
    size_t err_size)
{
    int64_t      off;
    size_t       i;
    yajl_val     v;
    const char  *name;
    int          have_room, have_epoch, have_offset;

    if (!YAJL_IS_OBJECT(o)) {
        return goim_recover_error(err, err_size,
                                  "rooms: expected an array of objects");
    }

    have_room = have_epoch = have_offset = 0;

    for (i = 0; i < o->u.object.len; i++) {
        name = o->u.object.keys[i];
        v = o->u.object.values[i];

        if (strcmp(name, "room_id") == 0) {
            if (goim_recover_string(v, "room_id", r->room,
                                    GOIM_RECOVER_MAX_ROOM, &r->room_len,
                                    err, err_size)
                != 0)
            {
                return -1;
            }

            have_room = 1;

        } else if (strcmp(name, "epoch") == 0) {
            if (goim_recover_string(v, "epoch", r->epoch,
                                    GOIM_RECOVER_MAX_EPOCH, &r->epoch_len,
                                    err, err_size)
                != 0)
            {
                return -1;
            }

            have_epoch = 1;

        } else if (strcmp(name, "offset") == 0) {
            if (!YAJL_IS_NUMBER(v)
                || goim_parse_int(v->u.number.r, strlen(v->u.number.r), 0,
                                  INT64_MAX, &off)
                   != 0)
            {
                return goim_recover_error(err, err_size, "offset: expected "
                                          "an integer from 0 to 2^63-1");
            }

            r->offset = (uint64_t) off;
            have_offset = 1;
        }
    }

    if (!have_room || !have_epoch || !have_offset) {
        return goim_recover_error(err, err_size, "rooms: each needs "
                                  "room_id, epoch and offset");
    }

    return 0;
}


int
goim_recover_parse(const uint8_t *json, size_t len, goim_recover_t *r,
    char *err, size_t err_size)
{
    char                *buf, ebuf[128];
    size_t               i, k;
    yajl_val             tree, rooms;
    goim_recover_room_t  room;

    static const char   *path[] = { "rooms", NULL };

    goim_recover_free(r);

    if (memchr(json, '\0', len) != NULL) {
        return goim_recover_error(err, err_size, "invalid JSON");
    }

    /* yajl_tree_parse wants a NUL-terminated string */
    buf = malloc(len + 1);
    if (buf == NULL) {
        return goim_recover_error(err, err_size, "out of memory");
    }

    memcpy(buf, json, len);
    buf[len] = '\0';

    tree = yajl_tree_parse(buf, ebuf, sizeof(ebuf));
    free(buf);

    if (tree == NULL) {
        return goim_recover_error(err, err_size, "invalid JSON");
    }

    if (!YAJL_IS_OBJECT(tree)) {
        yajl_tree_free(tree);
        return goim_recover_error(err, err_size, "expected a JSON object");
    }

    rooms = yajl_tree_get(tree, path, yajl_t_array);
    if (rooms == NULL) {
        yajl_tree_free(tree);
        return goim_recover_error(err, err_size, "rooms: expected array");
    }

    if (rooms->u.array.len > GOIM_RECOVER_MAX_ROOMS) {
        yajl_tree_free(tree);
        return goim_recover_error(err, err_size, "rooms: more than %d",
                                  GOIM_RECOVER_MAX_ROOMS);
    }

    if (rooms->u.array.len) {
        r->rooms = calloc(rooms->u.array.len, sizeof(goim_recover_room_t));
        if (r->rooms == NULL) {
            yajl_tree_free(tree);
            return goim_recover_error(err, err_size, "out of memory");
        }
    }

    for (i = 0; i < rooms->u.array.len; i++) {
        memset(&room, 0, sizeof(room));

        if (goim_recover_room(rooms->u.array.values[i], &room, err, err_size)
            != 0)
        {
            yajl_tree_free(tree);
            goim_recover_free(r);
            return -1;
        }

        for (k = 0; k < r->n; k++) {
            if (r->rooms[k].room_len == room.room_len
                && memcmp(r->rooms[k].room, room.room, room.room_len) == 0)
            {
                break;
            }
        }

        if (k == r->n) {
            r->n++;
        }

        r->rooms[k] = room;
    }

    yajl_tree_free(tree);

    return 0;
}


void
goim_recover_free(goim_recover_t *r)
{
    free(r->rooms);
    r->rooms = NULL;
    r->n = 0;
}
