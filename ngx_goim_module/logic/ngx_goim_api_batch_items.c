/*
 * goim for nginx: the items of POST /goim/push/batch (docs/PROTOCOL.md
 * 2.13): the protobuf form (goim.PushBatch), the rules every item passes
 * whatever its form (those of the single routes), and a failed item's
 * reason.
 */


#include "ngx_goim_api_batch.h"

#include <goim.pb-c.h>


/* the request as a whole is refused: NGX_DECLINED, b->refused the answer */

ngx_int_t
ngx_goim_api_batch_refuse(ngx_goim_api_batch_t *b, const char *why)
{
    b->refused = ngx_goim_api_reply(b->request, NGX_HTTP_BAD_REQUEST, -400,
                                    why, NULL);
    return NGX_DECLINED;
}


/* a goim.PushBatch; not one at all refuses the request */

ngx_int_t
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

void
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



void
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
