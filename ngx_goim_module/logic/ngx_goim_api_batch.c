
/*
 * goim for nginx: POST /goim/push/batch (docs/PROTOCOL.md 2.13), many
 * pushes of any kind in one request, as JSON lines or as a protobuf
 * goim.PushBatch.  Every item is checked on its own: a bad one is answered
 * with its reason in the per-item results and the others still go.
 *
 * Embedded, the items go to dispatch one after the other.  With Redis,
 * the keys and mids of all items are looked up together
 * (ngx_goim_api_lookup(): one write, one round trip); with Kafka, every
 * item then produces its messages, all in the same event-loop turn so
 * that librdkafka sends them in one produce request, and the answer
 * waits until Kafka reported each of them.
 */


#include "ngx_goim_api.h"

#include <yajl/yajl_parse.h>

#include <goim.pb-c.h>


#define NGX_GOIM_BATCH_MAX_ITEMS    1000
#define NGX_GOIM_BATCH_MAX_TARGETS  10000

#define NGX_GOIM_BATCH_PENDING      1       /* an item's code meanwhile */


typedef struct ngx_goim_api_batch_s  ngx_goim_api_batch_t;

typedef struct {
    ngx_goim_api_batch_t      *owner;
    ngx_goim_api_route_e       type;
    int32_t                    op;
    int32_t                    speed;
    ngx_str_t                  room;
    ngx_str_t                 *keys;
    int64_t                   *mids;
    ngx_uint_t                 n;           /* keys or mids */
    ngx_str_t                  body;

    ngx_int_t                  code;
    const char                *message;

    ngx_goim_kafka_batch_t    *kafka;
    ngx_uint_t                 messages;    /* produced to Kafka */

    /* Redis without Kafka: this item's targets, delivered or listed */
    ngx_goim_api_target_t     *targets;
    ngx_uint_t                 ntargets;
    ngx_uint_t                 here;
} ngx_goim_api_item_t;


struct ngx_goim_api_batch_s {
    ngx_http_request_t        *request;
    ngx_goim_api_item_t       *items;
    ngx_uint_t                 nitems;
    ngx_uint_t                 ntargets;    /* keys and mids, all items */
    ngx_uint_t                 waiting;     /* Kafka batches unreported */
    ngx_int_t                  refused;     /* the request's answer */
};


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


static ngx_int_t ngx_goim_api_batch_refuse(ngx_goim_api_batch_t *b,
    const char *why);
static ngx_int_t ngx_goim_api_batch_json(ngx_goim_api_batch_t *b,
    ngx_str_t *body);
static ngx_int_t ngx_goim_api_batch_line(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item, u_char *p, size_t len);
static ngx_int_t ngx_goim_api_batch_protobuf(ngx_goim_api_batch_t *b,
    ngx_str_t *body);
static void ngx_goim_api_batch_check(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item);
static void ngx_goim_api_batch_fail(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item, ngx_int_t code, const char *fmt, ...);
static ngx_int_t ngx_goim_api_batch_embedded(ngx_goim_api_batch_t *b);
static ngx_int_t ngx_goim_api_batch_lookup(ngx_goim_api_batch_t *b);
static void ngx_goim_api_batch_found(ngx_http_request_t *r,
    ngx_goim_api_target_t *t, ngx_uint_t n, const char *err, void *data);
static ngx_int_t ngx_goim_api_batch_route(ngx_goim_api_batch_t *b);
static void ngx_goim_api_batch_produce(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item);
static void ngx_goim_api_batch_reported(ngx_goim_kafka_batch_t *kb,
    void *data);
static void ngx_goim_api_batch_result(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item);
static void ngx_goim_api_batch_local(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item);
static ngx_int_t ngx_goim_api_batch_answer(ngx_goim_api_batch_t *b);
static int ngx_libc_cdecl ngx_goim_api_batch_target_cmp(const void *x,
    const void *y);


ngx_int_t
ngx_goim_api_batch(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_int_t              rc;
    ngx_str_t             *ct;
    ngx_goim_api_batch_t  *b;

    b = ngx_pcalloc(r->pool, sizeof(ngx_goim_api_batch_t));
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->request = r;

    b->items = ngx_pcalloc(r->pool, NGX_GOIM_BATCH_MAX_ITEMS
                                    * sizeof(ngx_goim_api_item_t));
    if (b->items == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ct = r->headers_in.content_type ? &r->headers_in.content_type->value
                                    : NULL;

    if (ct && ct->len >= sizeof("application/x-protobuf") - 1
        && (ngx_strncasecmp(ct->data, (u_char *) "application/x-protobuf",
                            sizeof("application/x-protobuf") - 1) == 0
            || ngx_strncasecmp(ct->data, (u_char *) "application/protobuf",
                               sizeof("application/protobuf") - 1) == 0))
    {
        rc = ngx_goim_api_batch_protobuf(b, body);

    } else {
        rc = ngx_goim_api_batch_json(b, body);
    }

    if (rc == NGX_DECLINED) {
        /* the request as a whole was refused and answered */
        return b->refused;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_goim_mode() == NGX_GOIM_EMBEDDED) {
        return ngx_goim_api_batch_embedded(b);
    }

    return ngx_goim_api_batch_lookup(b);
}


/* the request as a whole is refused: NGX_DECLINED, b->refused the answer */

static ngx_int_t
ngx_goim_api_batch_refuse(ngx_goim_api_batch_t *b, const char *why)
{
    b->refused = ngx_goim_api_reply(b->request, NGX_HTTP_BAD_REQUEST, -400,
                                    why, NULL);
    return NGX_DECLINED;
}


/* JSON lines: one object per line, empty lines skipped */

static ngx_int_t
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


/* a goim.PushBatch; not one at all refuses the request */

static ngx_int_t
ngx_goim_api_batch_protobuf(ngx_goim_api_batch_t *b, ngx_str_t *body)
{
    ngx_uint_t            i, k, n;
    ngx_pool_t           *pool;
    ngx_http_request_t   *r;
    ngx_goim_api_item_t  *item;
    Goim__PushBatch      *pb;
    Goim__PushItem       *pi;

    r = b->request;
    pool = r->pool;

    pb = goim__push_batch__unpack(NULL, body->len, body->data);
    if (pb == NULL) {
        return ngx_goim_api_batch_refuse(b, "body is not a goim.PushBatch");
    }

    if (pb->n_items == 0 || pb->n_items > NGX_GOIM_BATCH_MAX_ITEMS) {
        n = pb->n_items;
        goim__push_batch__free_unpacked(pb, NULL);

        return ngx_goim_api_batch_refuse(b, n ? "more than 1000 items, "
                                                "nothing was pushed"
                                              : "no items");
    }

    for (i = 0; i < pb->n_items; i++) {
        pi = pb->items[i];
        item = &b->items[b->nitems++];
        item->owner = b;
        item->code = NGX_GOIM_BATCH_PENDING;

        switch (pi->type) {
        case GOIM__PUSH_ITEM__TYPE__KEYS:
            item->type = NGX_GOIM_API_PUSH_KEYS;
            break;
        case GOIM__PUSH_ITEM__TYPE__MIDS:
            item->type = NGX_GOIM_API_PUSH_MIDS;
            break;
        case GOIM__PUSH_ITEM__TYPE__ROOM:
            item->type = NGX_GOIM_API_PUSH_ROOM;
            break;
        case GOIM__PUSH_ITEM__TYPE__ALL:
            item->type = NGX_GOIM_API_PUSH_ALL;
            break;
        default:
            item->type = NGX_GOIM_API_PUSH_BATCH;
            ngx_goim_api_batch_fail(b, item, -400, "type: unknown (%d)",
                                    (int) pi->type);
            continue;
        }

        n = item->type == NGX_GOIM_API_PUSH_KEYS ? pi->n_keys
            : item->type == NGX_GOIM_API_PUSH_MIDS ? pi->n_mids : 0;

        if ((pi->n_keys && item->type != NGX_GOIM_API_PUSH_KEYS)
            || (pi->n_mids && item->type != NGX_GOIM_API_PUSH_MIDS)
            || (pi->room.len && item->type != NGX_GOIM_API_PUSH_ROOM)
            || (pi->speed && item->type != NGX_GOIM_API_PUSH_ALL))
        {
            ngx_goim_api_batch_fail(b, item, -400,
                                    "keys, mids, room and speed: "
                                    "only for their type");
            continue;
        }

        if (n > NGX_GOIM_API_MAX_TARGETS) {
            ngx_goim_api_batch_fail(b, item, -400, "more than 1000 %s",
                                    item->type == NGX_GOIM_API_PUSH_KEYS
                                    ? "keys" : "mids");
            continue;
        }

        item->op = pi->operation;
        item->speed = pi->speed;

        /* the unpacked message is freed below: copies in the pool */

        item->body.len = pi->msg.len;
        item->body.data = ngx_pnalloc(pool, pi->msg.len + 1);
        item->room.len = pi->room.len;
        item->room.data = ngx_pnalloc(pool, pi->room.len + 1);
        item->keys = ngx_palloc(pool, (n + 1) * ngx_max(sizeof(ngx_str_t),
                                                        sizeof(int64_t)));

        if (item->body.data == NULL || item->room.data == NULL
            || item->keys == NULL)
        {
            goim__push_batch__free_unpacked(pb, NULL);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* protobuf-c leaves an absent field's data NULL */
        if (pi->msg.len) {
            ngx_memcpy(item->body.data, pi->msg.data, pi->msg.len);
        }

        if (pi->room.len) {
            ngx_memcpy(item->room.data, pi->room.data, pi->room.len);
        }

        item->mids = (int64_t *) item->keys;

        if (item->type == NGX_GOIM_API_PUSH_MIDS) {
            ngx_memcpy(item->mids, pi->mids, n * sizeof(int64_t));
            item->n = n;
        }

        if (item->type == NGX_GOIM_API_PUSH_KEYS) {
            for (k = 0; k < n; k++) {
                if (pi->keys[k].len == 0) {
                    continue;
                }

                item->keys[item->n].data = ngx_pnalloc(pool,
                                                       pi->keys[k].len);
                if (item->keys[item->n].data == NULL) {
                    goim__push_batch__free_unpacked(pb, NULL);
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                ngx_memcpy(item->keys[item->n].data, pi->keys[k].data,
                           pi->keys[k].len);
                item->keys[item->n].len = pi->keys[k].len;
                item->n++;
            }
        }

        ngx_goim_api_batch_check(b, item);
    }

    goim__push_batch__free_unpacked(pb, NULL);

    return NGX_OK;
}


/* the rules of the single routes (2.2 - 2.5), and the request's limit */

static void
ngx_goim_api_batch_check(ngx_goim_api_batch_t *b, ngx_goim_api_item_t *item)
{
    ngx_uint_t  i;

    switch (item->type) {

    case NGX_GOIM_API_PUSH_KEYS:
        if (item->n == 0) {
            ngx_goim_api_batch_fail(b, item, -400, "no keys given");
            return;
        }

        /* a protobuf string ends at a NUL: it would be another key */
        for (i = 0; ngx_goim_mode() == NGX_GOIM_KAFKA && i < item->n; i++) {
            if (ngx_strlchr(item->keys[i].data,
                            item->keys[i].data + item->keys[i].len, '\0'))
            {
                ngx_goim_api_batch_fail(b, item, -400,
                                        "keys: a key holds a NUL byte");
                return;
            }
        }

        item->n = ngx_goim_api_unique_keys(item->keys, item->n);
        break;

    case NGX_GOIM_API_PUSH_MIDS:
        if (item->n == 0) {
            ngx_goim_api_batch_fail(b, item, -400, "no mids given");
            return;
        }

        item->n = ngx_goim_api_unique_mids(item->mids, item->n);
        break;

    case NGX_GOIM_API_PUSH_ROOM:
        if (item->op == 0) {
            ngx_goim_api_batch_fail(b, item, -400, "operation: required");
            return;
        }

        if (item->room.len == 0) {
            ngx_goim_api_batch_fail(b, item, -400, "room: required");
            return;
        }

        if (item->room.len > NGX_GOIM_MAX_ROOM) {
            ngx_goim_api_batch_fail(b, item, -400,
                                    "room id longer than 256 bytes");
            return;
        }

        if (ngx_goim_mode() == NGX_GOIM_KAFKA
            && ngx_strlchr(item->room.data,
                           item->room.data + item->room.len, '\0'))
        {
            ngx_goim_api_batch_fail(b, item, -400,
                                    "room: holds a NUL byte");
            return;
        }

        return;

    case NGX_GOIM_API_PUSH_ALL:
        if (item->op == 0) {
            ngx_goim_api_batch_fail(b, item, -400, "operation: required");
            return;
        }

        if (item->speed < 0) {
            ngx_goim_api_batch_fail(b, item, -400,
                                    "speed: must not be negative");
        }

        return;

    default:
        return;
    }

    if (b->ntargets + item->n > NGX_GOIM_BATCH_MAX_TARGETS) {
        ngx_goim_api_batch_fail(b, item, -400,
                                "more than 10000 keys and mids in the "
                                "request");
        return;
    }

    b->ntargets += item->n;
}


static void
ngx_goim_api_batch_fail(ngx_goim_api_batch_t *b, ngx_goim_api_item_t *item,
    ngx_int_t code, const char *fmt, ...)
{
    u_char   *p, *msg, buf[256];
    va_list   args;

    if (item->code != NGX_GOIM_BATCH_PENDING) {
        return;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf) - 1, fmt, args);
    va_end(args);

    *p = '\0';

    item->code = code;
    item->message = "out of memory";

    msg = ngx_pnalloc(b->request->pool, p - buf + 1);
    if (msg) {
        ngx_memcpy(msg, buf, p - buf + 1);
        item->message = (const char *) msg;
    }
}


static ngx_int_t
ngx_goim_api_batch_embedded(ngx_goim_api_batch_t *b)
{
    ngx_int_t             rc;
    ngx_uint_t            i;
    ngx_goim_push_t       push;
    ngx_goim_api_item_t  *item;

    for (i = 0; i < b->nitems; i++) {
        item = &b->items[i];

        if (item->code != NGX_GOIM_BATCH_PENDING) {
            continue;
        }

        ngx_memzero(&push, sizeof(ngx_goim_push_t));
        push.op = item->op;
        push.body = item->body;

        switch (item->type) {

        case NGX_GOIM_API_PUSH_KEYS:
            rc = ngx_goim_dispatch_keys(&push, item->keys, item->n);
            break;

        case NGX_GOIM_API_PUSH_MIDS:
            rc = ngx_goim_dispatch_mids(&push, item->mids, item->n);
            break;

        case NGX_GOIM_API_PUSH_ROOM:
            rc = ngx_goim_dispatch_room(&push, &item->room);
            break;

        default: /* NGX_GOIM_API_PUSH_ALL */
            rc = ngx_goim_dispatch_all(&push, item->speed);
            break;
        }

        ngx_goim_push_release(&push);

        if (rc == NGX_OK) {
            item->code = 0;

        } else {
            ngx_goim_api_batch_fail(b, item, -500, "%s",
                                    rc == NGX_BUSY
                                    ? "a worker's inbox is full, "
                                      "push refused"
                                    : "shared zone exhausted, push refused");
        }
    }

    return ngx_goim_api_batch_answer(b);
}


/* one lookup for the keys and mids of every item that is still good */

static ngx_int_t
ngx_goim_api_batch_lookup(ngx_goim_api_batch_t *b)
{
    int64_t              *mids;
    ngx_int_t             rc;
    ngx_str_t            *keys;
    ngx_uint_t            i, k, nkeys, nmids, *key_items, *mid_items;
    ngx_http_request_t   *r;
    ngx_goim_api_item_t  *item;

    r = b->request;

    if (b->ntargets == 0) {
        return ngx_goim_api_batch_route(b);
    }

    keys = ngx_palloc(r->pool, b->ntargets * sizeof(ngx_str_t));
    mids = ngx_palloc(r->pool, b->ntargets * sizeof(int64_t));
    key_items = ngx_palloc(r->pool, b->ntargets * sizeof(ngx_uint_t));
    mid_items = ngx_palloc(r->pool, b->ntargets * sizeof(ngx_uint_t));

    if (keys == NULL || mids == NULL || key_items == NULL
        || mid_items == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nkeys = 0;
    nmids = 0;

    for (i = 0; i < b->nitems; i++) {
        item = &b->items[i];

        if (item->code != NGX_GOIM_BATCH_PENDING) {
            continue;
        }

        for (k = 0; item->type == NGX_GOIM_API_PUSH_KEYS && k < item->n;
             k++)
        {
            keys[nkeys] = item->keys[k];
            key_items[nkeys++] = i;
        }

        for (k = 0; item->type == NGX_GOIM_API_PUSH_MIDS && k < item->n;
             k++)
        {
            mids[nmids] = item->mids[k];
            mid_items[nmids++] = i;
        }
    }

    rc = ngx_goim_api_lookup(r, keys, key_items, nkeys, mids, mid_items,
                             nmids, ngx_goim_api_batch_found, b);

    if (rc == NGX_DONE) {
        return NGX_DONE;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* Redis is down: keys and mids fail, rooms and broadcasts still go */
    ngx_goim_api_batch_found(r, NULL, 0, NGX_GOIM_REDIS_DOWN, b);

    return NGX_DONE;
}


static void
ngx_goim_api_batch_found(ngx_http_request_t *r, ngx_goim_api_target_t *t,
    ngx_uint_t n, const char *err, void *data)
{
    ngx_goim_api_batch_t  *b = data;

    ngx_int_t             rc;
    ngx_uint_t            i, k;
    ngx_goim_api_item_t  *item;

    if (err) {
        for (i = 0; i < b->nitems; i++) {
            item = &b->items[i];

            if (item->type == NGX_GOIM_API_PUSH_KEYS
                || item->type == NGX_GOIM_API_PUSH_MIDS)
            {
                ngx_goim_api_batch_fail(b, item, -500, "redis: %s", err);
            }
        }

        n = 0;
    }

    /* by item, server, key; the same key twice is one target */
    if (n > 1) {
        ngx_qsort(t, n, sizeof(ngx_goim_api_target_t),
                  ngx_goim_api_batch_target_cmp);
    }

    for (i = 1, k = n ? 1 : 0; i < n; i++) {
        if (ngx_goim_api_batch_target_cmp(&t[k - 1], &t[i]) != 0) {
            t[k++] = t[i];
        }
    }

    n = k;

    for (i = 0; i < n; i = k) {
        for (k = i; k < n && t[k].item == t[i].item; k++) { /* void */ }

        b->items[t[i].item].targets = &t[i];
        b->items[t[i].item].ntargets = k - i;
    }

    rc = ngx_goim_api_batch_route(b);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* the targets are known: to Kafka, or delivered here */

static ngx_int_t
ngx_goim_api_batch_route(ngx_goim_api_batch_t *b)
{
    ngx_uint_t            i;
    ngx_goim_api_item_t  *item;

    for (i = 0; i < b->nitems; i++) {
        item = &b->items[i];

        if (item->code != NGX_GOIM_BATCH_PENDING) {
            continue;
        }

        if (ngx_goim_mode() == NGX_GOIM_KAFKA) {
            ngx_goim_api_batch_produce(b, item);

        } else {
            ngx_goim_api_batch_local(b, item);
        }
    }

    if (b->waiting) {
        /* a client that goes away frees the request, and so the batches */
        b->request->read_event_handler = ngx_http_test_reading;
        return NGX_DONE;
    }

    return ngx_goim_api_batch_answer(b);
}


/* the item's goim.PushMsg records (4.3), as one batch of the producer */

static void
ngx_goim_api_batch_produce(ngx_goim_api_batch_t *b, ngx_goim_api_item_t *item)
{
    ngx_str_t               *keys;
    ngx_uint_t               i, first, nkeys, nservers;
    ngx_goim_api_target_t   *t;

    t = item->targets;

    nservers = 0;

    for (i = 0; i < item->ntargets; i++) {
        if (i == 0 || ngx_memn2cmp(t[i].server.data, t[i - 1].server.data,
                                   t[i].server.len, t[i - 1].server.len)
                      != 0)
        {
            nservers++;
        }
    }

    if (item->type == NGX_GOIM_API_PUSH_ROOM
        || item->type == NGX_GOIM_API_PUSH_ALL)
    {
        nservers = 1;
    }

    keys = ngx_palloc(b->request->pool, (item->ntargets + 1)
                                        * sizeof(ngx_str_t));
    if (keys == NULL) {
        ngx_goim_api_batch_fail(b, item, -500, "out of memory");
        return;
    }

    item->kafka = ngx_goim_kafka_batch(b->request->pool,
                                       b->request->connection->log, nservers,
                                       ngx_goim_api_batch_reported, item);
    if (item->kafka == NULL) {
        ngx_goim_api_batch_fail(b, item, -500, "out of memory");
        return;
    }

    item->messages = nservers;

    if (item->type == NGX_GOIM_API_PUSH_ROOM) {
        (void) ngx_goim_kafka_produce(item->kafka, NGX_GOIM_KAFKA_ROOM,
                                      item->op, 0, NULL, &item->room, NULL,
                                      0, &item->body);

    } else if (item->type == NGX_GOIM_API_PUSH_ALL) {
        (void) ngx_goim_kafka_produce(item->kafka, NGX_GOIM_KAFKA_BROADCAST,
                                      item->op, item->speed, NULL, NULL,
                                      NULL, 0, &item->body);

    } else {
        for (first = 0; first < item->ntargets; first += nkeys) {
            for (nkeys = 0; first + nkeys < item->ntargets; nkeys++) {
                if (ngx_memn2cmp(t[first].server.data,
                                 t[first + nkeys].server.data,
                                 t[first].server.len,
                                 t[first + nkeys].server.len)
                    != 0)
                {
                    break;
                }

                keys[first + nkeys] = t[first + nkeys].key;
            }

            if (ngx_goim_kafka_produce(item->kafka, NGX_GOIM_KAFKA_PUSH,
                                       item->op, 0, &t[first].server, NULL,
                                       &keys[first], nkeys, &item->body)
                != NGX_OK)
            {
                /* the result says what was acknowledged before */
                break;
            }
        }
    }

    if (ngx_goim_kafka_wait(item->kafka) == NGX_DONE) {
        b->waiting++;
        return;
    }

    ngx_goim_api_batch_result(b, item);
}


static void
ngx_goim_api_batch_reported(ngx_goim_kafka_batch_t *kb, void *data)
{
    ngx_goim_api_item_t  *item = data;

    ngx_goim_api_batch_t  *b;

    b = item->owner;

    ngx_goim_api_batch_result(b, item);

    if (--b->waiting == 0) {
        ngx_http_finalize_request(b->request, ngx_goim_api_batch_answer(b));
    }
}


static void
ngx_goim_api_batch_result(ngx_goim_api_batch_t *b, ngx_goim_api_item_t *item)
{
    ngx_goim_kafka_result_t  res;

    ngx_goim_kafka_result(item->kafka, &res);
    ngx_goim_kafka_finish(item->kafka);

    if (res.invalid) {
        ngx_goim_api_batch_fail(b, item, -400,
                                "keys and rooms must not hold a NUL byte");

    } else if (res.queue_full) {
        ngx_goim_api_batch_fail(b, item, -500,
                                "kafka queue full (%ui of %ui messages "
                                "acknowledged)", res.acked, res.total);

    } else if (res.error) {
        ngx_goim_api_batch_fail(b, item, -500,
                                "kafka: %s (%ui of %ui messages "
                                "acknowledged)", res.error, res.acked,
                                res.total);

    } else if (res.acked < res.total) {
        ngx_goim_api_batch_fail(b, item, -500,
                                "out of memory (%ui of %ui messages "
                                "acknowledged)", res.acked, res.total);

    } else {
        item->code = 0;
    }
}


/* Redis without Kafka: as push/keys there, this node's targets only */

static void
ngx_goim_api_batch_local(ngx_goim_api_batch_t *b, ngx_goim_api_item_t *item)
{
    ngx_int_t         rc;
    ngx_str_t        *local;
    ngx_uint_t        i;
    ngx_goim_conf_t  *gcf;
    ngx_goim_push_t   push;

    ngx_memzero(&push, sizeof(ngx_goim_push_t));
    push.op = item->op;
    push.body = item->body;

    if (item->type == NGX_GOIM_API_PUSH_ROOM) {
        rc = ngx_goim_dispatch_room(&push, &item->room);

    } else if (item->type == NGX_GOIM_API_PUSH_ALL) {
        rc = ngx_goim_dispatch_all(&push, item->speed);

    } else {
        gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

        local = ngx_palloc(b->request->pool,
                           (item->ntargets + 1) * sizeof(ngx_str_t));
        if (local == NULL) {
            ngx_goim_api_batch_fail(b, item, -500, "out of memory");
            return;
        }

        for (i = 0; i < item->ntargets; i++) {
            if (item->targets[i].server.len == gcf->server_id.len
                && ngx_memcmp(item->targets[i].server.data,
                              gcf->server_id.data, gcf->server_id.len) == 0)
            {
                local[item->here++] = item->targets[i].key;
            }
        }

        rc = item->here ? ngx_goim_dispatch_keys(&push, local, item->here)
                        : NGX_OK;
    }

    ngx_goim_push_release(&push);

    if (rc == NGX_OK) {
        item->code = 0;
        return;
    }

    ngx_goim_api_batch_fail(b, item, -500, "%s",
                            rc == NGX_BUSY
                            ? "a worker's inbox is full, push refused"
                            : "shared zone exhausted, push refused");
}


/*
 * {"code":0,"message":"","data":{"items":n,"accepted":n,"failed":0,
 *  "results":[{"code":0,"message":""},...]}}; code 0 only when every
 * item was accepted, else the first failed item's code.
 */

static ngx_int_t
ngx_goim_api_batch_answer(ngx_goim_api_batch_t *b)
{
    u_char                 *p, msg[320];
    ngx_int_t               rc, code;
    ngx_str_t              *prev;
    ngx_uint_t              i, k, failed, first;
    yajl_gen                g;
    ngx_goim_conf_t        *gcf;
    ngx_goim_api_item_t    *item;
    ngx_goim_api_target_t  *t;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    failed = 0;
    first = 0;

    yajl_gen_map_open(g);
    yajl_gen_string(g, (u_char *) "results", 7);
    yajl_gen_array_open(g);

    for (i = 0; i < b->nitems; i++) {
        item = &b->items[i];

        if (item->code == NGX_GOIM_BATCH_PENDING) {
            /* a bug, never a silent success */
            ngx_goim_api_batch_fail(b, item, -500, "not processed");
        }

        if (item->code != 0 && failed++ == 0) {
            first = i;
        }

        yajl_gen_map_open(g);
        yajl_gen_string(g, (u_char *) "code", 4);
        yajl_gen_integer(g, item->code);
        yajl_gen_string(g, (u_char *) "message", 7);

        if (item->code) {
            yajl_gen_string(g, (u_char *) item->message,
                            ngx_strlen(item->message));

        } else {
            yajl_gen_string(g, (u_char *) "", 0);
        }

        if (item->code == 0 && item->kafka) {
            yajl_gen_string(g, (u_char *) "messages", 8);
            yajl_gen_integer(g, item->messages);
        }

        if (item->code == 0 && ngx_goim_mode() == NGX_GOIM_REDIS
            && (item->type == NGX_GOIM_API_PUSH_KEYS
                || item->type == NGX_GOIM_API_PUSH_MIDS))
        {
            yajl_gen_string(g, (u_char *) "delivered_here", 14);
            yajl_gen_integer(g, item->here);
            yajl_gen_string(g, (u_char *) "other_servers", 13);
            yajl_gen_map_open(g);

            t = item->targets;
            prev = NULL;

            for (k = 0; k < item->ntargets; k++) {
                if (t[k].server.len == gcf->server_id.len
                    && ngx_memcmp(t[k].server.data, gcf->server_id.data,
                                  t[k].server.len) == 0)
                {
                    continue;
                }

                if (prev == NULL
                    || ngx_memn2cmp(prev->data, t[k].server.data, prev->len,
                                    t[k].server.len) != 0)
                {
                    if (prev) {
                        yajl_gen_array_close(g);
                    }

                    yajl_gen_string(g, t[k].server.data, t[k].server.len);
                    yajl_gen_array_open(g);
                    prev = &t[k].server;
                }

                yajl_gen_string(g, t[k].key.data, t[k].key.len);
            }

            if (prev) {
                yajl_gen_array_close(g);
            }

            yajl_gen_map_close(g);
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    yajl_gen_string(g, (u_char *) "items", 5);
    yajl_gen_integer(g, b->nitems);
    yajl_gen_string(g, (u_char *) "accepted", 8);
    yajl_gen_integer(g, b->nitems - failed);
    yajl_gen_string(g, (u_char *) "failed", 6);
    yajl_gen_integer(g, failed);
    yajl_gen_map_close(g);

    if (failed) {
        code = b->items[first].code;
        p = ngx_snprintf(msg, sizeof(msg) - 1,
                         "%ui of %ui items failed, the first (item %ui): %s",
                         failed, b->nitems, first, b->items[first].message);
        *p = '\0';

    } else {
        code = 0;
        msg[0] = '\0';
    }

    rc = ngx_goim_api_reply(b->request, NGX_HTTP_OK, code,
                            (const char *) msg, g);

    yajl_gen_free(g);

    return rc;
}


static int ngx_libc_cdecl
ngx_goim_api_batch_target_cmp(const void *x, const void *y)
{
    ngx_int_t                     rc;
    const ngx_goim_api_target_t  *a = x, *b = y;

    if (a->item != b->item) {
        return a->item < b->item ? -1 : 1;
    }

    rc = ngx_memn2cmp(a->server.data, b->server.data, a->server.len,
                      b->server.len);
    if (rc) {
        return rc;
    }

    return ngx_memn2cmp(a->key.data, b->key.data, a->key.len, b->key.len);
}
