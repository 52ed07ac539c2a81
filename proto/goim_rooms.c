/*
 * Room lists and room rights (goim_rooms.h).  The list is parsed with
 * yajl's callback parser under the same rules as the auth token
 * (goim_token_json: no comments, strings validated).
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "goim_rooms.h"
#include "goim_token.h"


typedef struct {
    goim_room_list_t  *list;
    size_t             max;
    unsigned           depth;
    char              *err;
    size_t             err_size;
} goim_room_list_ctx_t;


static int
goim_room_list_error(goim_room_list_ctx_t *ctx, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    goim_token_verror(ctx->err, ctx->err_size, fmt, ap);
    va_end(ap);

    return 0;
}


static int
goim_room_list_wrong(void *data)
{
    return goim_room_list_error(data, "expected a JSON array of strings");
}


static int
goim_room_list_boolean(void *data, int value)
{
    (void) value;

    return goim_room_list_wrong(data);
}


static int
goim_room_list_number(void *data, const char *s, size_t len)
{
    (void) s;
    (void) len;

    return goim_room_list_wrong(data);
}


static int
goim_room_list_string(void *data, const unsigned char *s, size_t len)
{
    goim_room_list_ctx_t  *ctx = data;
    uint32_t               n;
    unsigned char         *p;
    goim_room_list_t      *list;

    list = ctx->list;

    if (ctx->depth != 1) {
        return goim_room_list_wrong(data);
    }

    if (list->n == ctx->max) {
        return goim_room_list_error(ctx, "more than %zu rooms", ctx->max);
    }

    p = realloc(list->data, list->len + sizeof(uint32_t) + len);
    if (p == NULL) {
        return goim_room_list_error(ctx, "out of memory");
    }

    n = (uint32_t) len;
    memcpy(p + list->len, &n, sizeof(uint32_t));

    if (len) {
        memcpy(p + list->len + sizeof(uint32_t), s, len);
    }

    list->data = p;
    list->len += sizeof(uint32_t) + len;
    list->n++;

    return 1;
}


static int
goim_room_list_start_array(void *data)
{
    goim_room_list_ctx_t  *ctx = data;

    if (ctx->depth != 0) {
        return goim_room_list_wrong(data);
    }

    ctx->depth++;

    return 1;
}


static int
goim_room_list_end_array(void *data)
{
    goim_room_list_ctx_t  *ctx = data;

    ctx->depth--;

    return 1;
}


static int
goim_room_list_start_map(void *data)
{
    return goim_room_list_wrong(data);
}


static int
goim_room_list_null(void *data)
{
    return goim_room_list_wrong(data);
}


static const yajl_callbacks  goim_room_list_callbacks = {
    goim_room_list_null,
    goim_room_list_boolean,
    NULL,
    NULL,
    goim_room_list_number,
    goim_room_list_string,
    goim_room_list_start_map,
    NULL,
    NULL,
    goim_room_list_start_array,
    goim_room_list_end_array
};


int
goim_room_list_parse(const uint8_t *json, size_t len, size_t max,
    goim_room_list_t *list, char *err, size_t err_size)
{
    goim_room_list_ctx_t  ctx;

    memset(list, 0, sizeof(goim_room_list_t));

    if (err != NULL && err_size > 0) {
        err[0] = '\0';
    }

    memset(&ctx, 0, sizeof(goim_room_list_ctx_t));
    ctx.list = list;
    ctx.max = max;
    ctx.err = err;
    ctx.err_size = err_size;

    if (goim_token_json(&goim_room_list_callbacks, &ctx, json, len, "", 0,
                        err, err_size)
        != 0)
    {
        goim_room_list_free(list);
        return -1;
    }

    return 0;
}


int
goim_room_list_next(const goim_room_list_t *list, size_t *pos,
    const unsigned char **id, size_t *len)
{
    uint32_t  n;

    if (*pos + sizeof(uint32_t) > list->len) {
        return 0;
    }

    memcpy(&n, list->data + *pos, sizeof(uint32_t));

    *id = list->data + *pos + sizeof(uint32_t);
    *len = n;
    *pos += sizeof(uint32_t) + n;

    return 1;
}


void
goim_room_list_free(goim_room_list_t *list)
{
    free(list->data);
    memset(list, 0, sizeof(goim_room_list_t));
}


const char *
goim_room_id_invalid(const unsigned char *id, size_t len)
{
    size_t  i;

    if (len == 0) {
        return "empty room id";
    }

    if (len > GOIM_ROOM_MAX_ID) {
        return "room id longer than 256 bytes";
    }

    for (i = 0; i < len; i++) {
        if (id[i] < 0x20 || id[i] == 0x7f) {
            return "control character in room id";
        }
    }

    return NULL;
}


int
goim_room_allowed(const char *rights, size_t rights_len,
    const unsigned char *id, size_t len)
{
    size_t       n;
    const char  *r;

    for (r = rights; r < rights + rights_len; r += n + 1) {
        n = strlen(r);

        if (n && r[n - 1] == '*') {
            if (len >= n - 1 && memcmp(r, id, n - 1) == 0) {
                return 1;
            }

            continue;
        }

        if (n == len && memcmp(r, id, len) == 0) {
            return 1;
        }
    }

    return 0;
}
