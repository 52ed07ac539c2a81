/*
 * goim for nginx: the JSON lines form of POST /goim/push/batch
 * (docs/PROTOCOL.md 2.13): one object per line, read with yajl's
 * callbacks; a bad line is that item's error, not the request's.
 */


#include "ngx_goim_api_batch.h"

#include <yajl/yajl_parse.h>


/* one JSON line being parsed */

typedef enum {
    NGX_GOIM_BATCH_F_NONE = 0,
    NGX_GOIM_BATCH_F_TYPE,
    NGX_GOIM_BATCH_F_OPERATION,
    NGX_GOIM_BATCH_F_SPEED,
    NGX_GOIM_BATCH_F_KEYS,
    NGX_GOIM_BATCH_F_MIDS,
    NGX_GOIM_BATCH_F_ROOM,
    NGX_GOIM_BATCH_F_MSG,
    NGX_GOIM_BATCH_F_MSG_BASE64
} ngx_goim_batch_field_e;


typedef struct {
    ngx_pool_t                *pool;
    ngx_goim_api_item_t       *item;
    ngx_goim_batch_field_e     field;
    ngx_uint_t                 depth;
    ngx_uint_t                 in_array;
    ngx_uint_t                 typed;
    ngx_uint_t                 has_op;
    ngx_uint_t                 has_speed;
    ngx_uint_t                 has_room;
    ngx_uint_t                 has_msg;
    ngx_uint_t                 has_targets;
    ngx_uint_t                 nkeys;       /* given, empty ones too */
    const char                *err;
    u_char                     errbuf[160];
} ngx_goim_batch_json_t;


static ngx_int_t ngx_goim_api_batch_line(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item, u_char *p, size_t len);


/* JSON lines: one object per line, empty lines skipped */

ngx_int_t
ngx_goim_api_batch_json(ngx_goim_api_batch_t *b, ngx_str_t *body)
{
    u_char  *p, *last, *eol;

    p = body->data;
    last = body->data + body->len;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        /* blank lines (and a \r before the \n) are no items */
        while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r')) {
            p++;
        }

        if (p < eol) {
            if (b->nitems == NGX_GOIM_BATCH_MAX_ITEMS) {
                return ngx_goim_api_batch_refuse(b, "more than 1000 items, "
                                                    "nothing was pushed");
            }

            if (ngx_goim_api_batch_line(b, &b->items[b->nitems], p, eol - p)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            b->nitems++;
        }

        p = eol + 1;
    }

    if (b->nitems == 0) {
        return ngx_goim_api_batch_refuse(b, "no items");
    }

    return NGX_OK;
}


static ngx_goim_batch_json_t *
ngx_goim_batch_value(void *ctx, ngx_goim_batch_field_e *field)
{
    ngx_goim_batch_json_t  *j = ctx;

    if (j->depth != 1) {
        j->err = "an item must be one JSON object";
        return NULL;
    }

    *field = j->field;

    if (!j->in_array) {
        j->field = NGX_GOIM_BATCH_F_NONE;
    }

    return j;
}


static void
ngx_goim_batch_json_error(ngx_goim_batch_json_t *j, const char *fmt,
    const char *name)
{
    ngx_snprintf(j->errbuf, sizeof(j->errbuf) - 1, fmt, name)[0] = '\0';
    j->err = (const char *) j->errbuf;
}


static const char *
ngx_goim_batch_field_name(ngx_goim_batch_field_e f)
{
    static const char  *names[] = { "", "type", "operation", "speed",
                                    "keys", "mids", "room", "msg",
                                    "msg_base64" };

    return names[f];
}


static int
ngx_goim_batch_null(void *ctx)
{
    ngx_goim_batch_json_t   *j;
    ngx_goim_batch_field_e   f;

    j = ngx_goim_batch_value(ctx, &f);
    if (j) {
        ngx_goim_batch_json_error(j, "%s: null is not a value here",
                                  ngx_goim_batch_field_name(f));
    }

    return 0;
}


static int
ngx_goim_batch_boolean(void *ctx, int v)
{
    return ngx_goim_batch_null(ctx);
}


static int
ngx_goim_batch_double(void *ctx, double v)
{
    ngx_goim_batch_json_t   *j;
    ngx_goim_batch_field_e   f;

    j = ngx_goim_batch_value(ctx, &f);
    if (j) {
        ngx_goim_batch_json_error(j, "%s: not an integer",
                                  ngx_goim_batch_field_name(f));
    }

    return 0;
}


static int
ngx_goim_batch_integer(void *ctx, long long v)
{
    ngx_goim_batch_json_t   *j;
    ngx_goim_batch_field_e   f;

    j = ngx_goim_batch_value(ctx, &f);
    if (j == NULL) {
        return 0;
    }

    switch (f) {

    case NGX_GOIM_BATCH_F_OPERATION:
    case NGX_GOIM_BATCH_F_SPEED:
        if (v < INT32_MIN || v > INT32_MAX) {
            ngx_goim_batch_json_error(j, "%s: out of range (int32)",
                                      ngx_goim_batch_field_name(f));
            return 0;
        }

        if (f == NGX_GOIM_BATCH_F_OPERATION) {
            j->item->op = (int32_t) v;
            j->has_op = 1;

        } else {
            j->item->speed = (int32_t) v;
            j->has_speed = 1;
        }

        return 1;

    case NGX_GOIM_BATCH_F_MIDS:
        if (j->item->n == NGX_GOIM_API_MAX_TARGETS) {
            j->err = "more than 1000 mids";
            return 0;
        }

        j->item->mids[j->item->n++] = (int64_t) v;
        return 1;

    default:
        ngx_goim_batch_json_error(j, "%s: not a string",
                                  ngx_goim_batch_field_name(f));
        return 0;
    }
}


static int
ngx_goim_batch_string(void *ctx, const unsigned char *s, size_t len)
{
    int64_t                  mid;
    ngx_str_t                src, *dst;
    ngx_goim_batch_json_t   *j;
    ngx_goim_batch_field_e   f;

    j = ngx_goim_batch_value(ctx, &f);
    if (j == NULL) {
        return 0;
    }

    dst = NULL;

    switch (f) {

    case NGX_GOIM_BATCH_F_TYPE:
        j->typed = 1;

        if (len == 4 && ngx_strncmp(s, "keys", 4) == 0) {
            j->item->type = NGX_GOIM_API_PUSH_KEYS;

        } else if (len == 4 && ngx_strncmp(s, "mids", 4) == 0) {
            j->item->type = NGX_GOIM_API_PUSH_MIDS;

        } else if (len == 4 && ngx_strncmp(s, "room", 4) == 0) {
            j->item->type = NGX_GOIM_API_PUSH_ROOM;

        } else if (len == 3 && ngx_strncmp(s, "all", 3) == 0) {
            j->item->type = NGX_GOIM_API_PUSH_ALL;

        } else {
            j->err = "type: one of \"keys\", \"mids\", \"room\", \"all\"";
            return 0;
        }

        return 1;

    case NGX_GOIM_BATCH_F_KEYS:
        j->nkeys++;

        if (len == 0) {
            /* as in push/keys, an empty key is skipped */
            return 1;
        }

        if (j->item->n == NGX_GOIM_API_MAX_TARGETS) {
            j->err = "more than 1000 keys";
            return 0;
        }

        dst = &j->item->keys[j->item->n++];
        break;

    case NGX_GOIM_BATCH_F_MIDS:
        /* int64 beyond 2^53 is safer as a string in JSON */
        if (goim_parse_int64((const char *) s, len, &mid) != 0) {
            j->err = "mids: invalid member id (int64)";
            return 0;
        }

        if (j->item->n == NGX_GOIM_API_MAX_TARGETS) {
            j->err = "more than 1000 mids";
            return 0;
        }

        j->item->mids[j->item->n++] = mid;
        return 1;

    case NGX_GOIM_BATCH_F_ROOM:
        j->has_room = 1;
        dst = &j->item->room;
        break;

    case NGX_GOIM_BATCH_F_MSG:
        j->has_msg++;
        dst = &j->item->body;
        break;

    case NGX_GOIM_BATCH_F_MSG_BASE64:
        j->has_msg++;

        src.data = (u_char *) s;
        src.len = len;

        j->item->body.data = ngx_pnalloc(j->pool,
                                         ngx_base64_decoded_length(len) + 1);
        if (j->item->body.data == NULL) {
            j->err = "out of memory";
            return 0;
        }

        if (ngx_decode_base64(&j->item->body, &src) != NGX_OK) {
            j->err = "msg_base64: invalid base64";
            return 0;
        }

        return 1;

    default:
        ngx_goim_batch_json_error(j, "%s: not a number",
                                  ngx_goim_batch_field_name(f));
        return 0;
    }

    /* yajl's buffer is the line's or its own: copied either way */
    dst->data = ngx_pnalloc(j->pool, len + 1);
    if (dst->data == NULL) {
        j->err = "out of memory";
        return 0;
    }

    ngx_memcpy(dst->data, s, len);
    dst->len = len;

    return 1;
}


static int
ngx_goim_batch_start_map(void *ctx)
{
    ngx_goim_batch_json_t  *j = ctx;

    if (j->depth != 0) {
        j->err = j->field == NGX_GOIM_BATCH_F_NONE
                 ? "an item must be one JSON object"
                 : NULL;

        if (j->err == NULL) {
            ngx_goim_batch_json_error(j, "%s: not an object here",
                                      ngx_goim_batch_field_name(j->field));
        }

        return 0;
    }

    j->depth = 1;

    return 1;
}


static int
ngx_goim_batch_map_key(void *ctx, const unsigned char *s, size_t len)
{
    ngx_uint_t              i;
    ngx_goim_batch_json_t  *j = ctx;

    for (i = NGX_GOIM_BATCH_F_TYPE; i <= NGX_GOIM_BATCH_F_MSG_BASE64; i++) {
        if (ngx_strlen(ngx_goim_batch_field_name(i)) == len
            && ngx_strncmp(s, ngx_goim_batch_field_name(i), len) == 0)
        {
            j->field = i;
            return 1;
        }
    }

    ngx_snprintf(j->errbuf, sizeof(j->errbuf) - 1, "unknown field \"%*s\"%Z",
                 ngx_min(len, 64), s);
    j->err = (const char *) j->errbuf;

    return 0;
}


static int
ngx_goim_batch_end_map(void *ctx)
{
    ngx_goim_batch_json_t  *j = ctx;

    j->depth = 0;

    return 1;
}


static int
ngx_goim_batch_start_array(void *ctx)
{
    ngx_goim_batch_json_t  *j = ctx;

    if (j->depth != 1 || j->in_array
        || (j->field != NGX_GOIM_BATCH_F_KEYS
            && j->field != NGX_GOIM_BATCH_F_MIDS))
    {
        if (j->depth != 1) {
            j->err = "an item must be one JSON object";

        } else {
            ngx_goim_batch_json_error(j, "%s: not an array of values",
                                      ngx_goim_batch_field_name(j->field));
        }

        return 0;
    }

    if (j->has_targets) {
        j->err = "give keys or mids once";
        return 0;
    }

    j->has_targets = j->field;
    j->in_array = 1;

    return 1;
}


static int
ngx_goim_batch_end_array(void *ctx)
{
    ngx_goim_batch_json_t  *j = ctx;

    j->in_array = 0;
    j->field = NGX_GOIM_BATCH_F_NONE;

    return 1;
}


static yajl_callbacks  ngx_goim_batch_callbacks = {
    ngx_goim_batch_null,
    ngx_goim_batch_boolean,
    ngx_goim_batch_integer,
    ngx_goim_batch_double,
    NULL,
    ngx_goim_batch_string,
    ngx_goim_batch_start_map,
    ngx_goim_batch_map_key,
    ngx_goim_batch_end_map,
    ngx_goim_batch_start_array,
    ngx_goim_batch_end_array
};


/* NGX_ERROR only for memory: a bad line is the item's error */

static ngx_int_t
ngx_goim_api_batch_line(ngx_goim_api_batch_t *b, ngx_goim_api_item_t *item,
    u_char *p, size_t len)
{
    yajl_handle             h;
    yajl_status             st;
    ngx_pool_t             *pool;
    ngx_goim_batch_json_t   j;

    pool = b->request->pool;

    item->owner = b;
    item->type = NGX_GOIM_API_PUSH_BATCH;     /* none yet */
    item->code = NGX_GOIM_BATCH_PENDING;

    /* room for either list; only the one given is used */
    item->keys = ngx_palloc(pool, NGX_GOIM_API_MAX_TARGETS
                                  * sizeof(ngx_str_t));
    if (item->keys == NULL) {
        return NGX_ERROR;
    }

    item->mids = (int64_t *) item->keys;

    ngx_memzero(&j, sizeof(ngx_goim_batch_json_t));
    j.pool = pool;
    j.item = item;

    h = yajl_alloc(&ngx_goim_batch_callbacks, NULL, &j);
    if (h == NULL) {
        return NGX_ERROR;
    }

    st = yajl_parse(h, p, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    if (st != yajl_status_ok && j.err == NULL) {
        /* yajl's own reason, without its verbose context */
        ngx_snprintf(j.errbuf, sizeof(j.errbuf) - 1, "not JSON: %s%Z",
                     st == yajl_status_client_canceled
                     ? "cancelled" : "syntax error");
        j.err = (const char *) j.errbuf;
    }

    yajl_free(h);

    if (j.err) {
        ngx_goim_api_batch_fail(b, item, -400, "%s", j.err);
        return NGX_OK;
    }

    if (!j.typed) {
        ngx_goim_api_batch_fail(b, item, -400, "type: required");
        return NGX_OK;
    }

    if ((j.has_targets == NGX_GOIM_BATCH_F_KEYS
         && item->type != NGX_GOIM_API_PUSH_KEYS)
        || (j.has_targets == NGX_GOIM_BATCH_F_MIDS
            && item->type != NGX_GOIM_API_PUSH_MIDS))
    {
        ngx_goim_api_batch_fail(b, item, -400, "%s: not for this type",
                                ngx_goim_batch_field_name(j.has_targets));
        return NGX_OK;
    }

    if (j.has_room && item->type != NGX_GOIM_API_PUSH_ROOM) {
        ngx_goim_api_batch_fail(b, item, -400, "room: not for this type");
        return NGX_OK;
    }

    if (j.has_speed && item->type != NGX_GOIM_API_PUSH_ALL) {
        ngx_goim_api_batch_fail(b, item, -400, "speed: not for this type");
        return NGX_OK;
    }

    if (j.has_msg > 1) {
        ngx_goim_api_batch_fail(b, item, -400,
                                "give one of msg and msg_base64");
        return NGX_OK;
    }

    if (!j.has_op) {
        item->op = 0;
    }

    ngx_goim_api_batch_check(b, item);

    return NGX_OK;
}

