
/*
 * goim for nginx: the push routes (docs/PROTOCOL.md 2.2 - 2.5).  The
 * message is the request body; the targets are in the query string (or
 * a form body).
 * Embedded, a push goes straight to dispatch; with Redis, keys and mids
 * are looked up there first (ngx_goim_api_redis.c); with Kafka, every
 * push is produced for the job (ngx_goim_api_kafka.c).
 */


#include "ngx_goim_api.h"


static ngx_int_t ngx_goim_api_push_keys(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx, ngx_goim_push_t *push);
static ngx_int_t ngx_goim_api_push_mids(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx, ngx_goim_push_t *push);
static ngx_int_t ngx_goim_api_push_room(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx, ngx_goim_push_t *push);
static ngx_int_t ngx_goim_api_push_all(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx, ngx_goim_push_t *push);


/* the request body was read */

void
ngx_goim_api_push(ngx_http_request_t *r)
{
    ngx_int_t            rc;
    ngx_str_t            body;
    ngx_goim_push_t      push;
    ngx_goim_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_goim_module);

    rc = ngx_goim_api_body(r, &body);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_goim_api_too_large(r));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ctx->route == NGX_GOIM_API_PUSH_BATCH) {
        rc = ngx_goim_api_batch(r, &body);

        if (rc != NGX_DONE) {
            ngx_http_finalize_request(r, rc);
        }

        return;
    }

    if (ctx->route == NGX_GOIM_API_PUSH_KEYS
        || ctx->route == NGX_GOIM_API_PUSH_MIDS)
    {
        if (ngx_goim_api_form(r, ctx, ctx->route == NGX_GOIM_API_PUSH_KEYS
                                      ? "keys" : "mids", &body, &rc)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    ngx_memzero(&push, sizeof(ngx_goim_push_t));
    push.body = body;

    switch (ctx->route) {

    case NGX_GOIM_API_PUSH_KEYS:
        rc = ngx_goim_api_push_keys(r, ctx, &push);
        break;

    case NGX_GOIM_API_PUSH_MIDS:
        rc = ngx_goim_api_push_mids(r, ctx, &push);
        break;

    case NGX_GOIM_API_PUSH_ROOM:
        rc = ngx_goim_api_push_room(r, ctx, &push);
        break;

    default: /* NGX_GOIM_API_PUSH_ALL */
        rc = ngx_goim_api_push_all(r, ctx, &push);
        break;
    }

    ngx_goim_push_release(&push);

    if (rc == NGX_DONE) {
        /*
         * answered when Redis or Kafka has: the body handler keeps the
         * request
         */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_goim_api_push_keys(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    ngx_goim_push_t *push)
{
    int32_t      op;
    ngx_str_t   *keys;
    ngx_uint_t   i, n;
    const char  *fmt;

    fmt = ngx_goim_api_int32(ctx, "operation", &op, 0);
    if (fmt) {
        return ngx_goim_api_bind_error(r, fmt, "operation");
    }

    push->op = op;

    keys = ngx_palloc(r->pool, NGX_GOIM_API_MAX_TARGETS * sizeof(ngx_str_t));
    if (keys == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;

    for (i = 0; i < (ngx_uint_t) ctx->nparams; i++) {
        if (!ngx_goim_api_is(&ctx->params[i], "keys")
            || ctx->params[i].value_len == 0)
        {
            continue;
        }

        if (n == NGX_GOIM_API_MAX_TARGETS) {
            return ngx_goim_api_reply(r, NGX_HTTP_OK, -400,
                                      "more than 1000 keys", NULL);
        }

        /* keys are never split on commas (gin binds them whole) */
        keys[n].data = (u_char *) ctx->params[i].value;
        keys[n].len = ctx->params[i].value_len;

        /* a protobuf string ends at a NUL: it would be another key */
        if (ngx_goim_mode() == NGX_GOIM_KAFKA
            && ngx_strlchr(keys[n].data, keys[n].data + keys[n].len, '\0'))
        {
            return ngx_goim_api_reply(r, NGX_HTTP_BAD_REQUEST, -400,
                                      "keys: a key holds a NUL byte", NULL);
        }

        n++;
    }

    if (n == 0) {
        return ngx_goim_api_reply(r, NGX_HTTP_OK, -400, "no keys given",
                                  NULL);
    }

    n = ngx_goim_api_unique_keys(keys, n);

    if (ngx_goim_mode() != NGX_GOIM_EMBEDDED) {
        /* the servers from key_<key> */
        return ngx_goim_api_push_redis(r, push, keys, NULL, n);
    }

    return ngx_goim_api_pushed(r, ngx_goim_dispatch_keys(push, keys, n));
}


static ngx_int_t
ngx_goim_api_push_mids(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    ngx_goim_push_t *push)
{
    int32_t      op;
    int64_t     *mids, mid;
    ngx_uint_t   i, n;
    const char  *fmt, *p, *comma, *last;

    fmt = ngx_goim_api_int32(ctx, "operation", &op, 0);
    if (fmt) {
        return ngx_goim_api_bind_error(r, fmt, "operation");
    }

    push->op = op;

    mids = ngx_palloc(r->pool, NGX_GOIM_API_MAX_TARGETS * sizeof(int64_t));
    if (mids == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;

    for (i = 0; i < (ngx_uint_t) ctx->nparams; i++) {
        if (!ngx_goim_api_is(&ctx->params[i], "mids")) {
            continue;
        }

        /* ours: "mids=1,2" as well as goim's "mids=1&mids=2" */
        p = ctx->params[i].value;
        last = p + ctx->params[i].value_len;

        for ( ;; ) {
            comma = (const char *) ngx_strlchr((u_char *) p, (u_char *) last,
                                               ',');
            if (comma == NULL) {
                comma = last;
            }

            if (goim_parse_int64(p, comma - p, &mid) != 0) {
                return ngx_goim_api_bind_error(r,
                                          "%s: invalid member id (int64)",
                                          "mids");
            }

            if (n == NGX_GOIM_API_MAX_TARGETS) {
                return ngx_goim_api_reply(r, NGX_HTTP_OK, -400,
                                          "more than 1000 mids", NULL);
            }

            mids[n++] = mid;

            if (comma == last) {
                break;
            }

            p = comma + 1;
        }
    }

    if (n == 0) {
        return ngx_goim_api_reply(r, NGX_HTTP_OK, -400, "no mids given",
                                  NULL);
    }

    n = ngx_goim_api_unique_mids(mids, n);

    if (ngx_goim_mode() != NGX_GOIM_EMBEDDED) {
        /* the servers from mid_<mid> */
        return ngx_goim_api_push_redis(r, push, NULL, mids, n);
    }

    return ngx_goim_api_pushed(r, ngx_goim_dispatch_mids(push, mids, n));
}


static ngx_int_t
ngx_goim_api_push_room(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    ngx_goim_push_t *push)
{
    size_t       len;
    int32_t      op;
    ngx_str_t    room, type, id;
    const char  *err, *fmt;

    fmt = ngx_goim_api_int32(ctx, "operation", &op, 1);
    if (fmt) {
        return ngx_goim_api_bind_error(r, fmt, "operation");
    }

    err = ngx_goim_api_str(ctx, "type", &type);
    if (err == NULL) {
        err = ngx_goim_api_str(ctx, "room", &id);
    }

    if (err) {
        return ngx_goim_api_bind_error(r, "%s: required", err);
    }

    /* goim's room key: "<type>://<room>" */
    len = type.len + 3 + id.len;

    if (len > NGX_GOIM_MAX_ROOM) {
        return ngx_goim_api_reply(r, NGX_HTTP_OK, -400,
                                  "room id longer than 256 bytes", NULL);
    }

    room.data = ngx_pnalloc(r->pool, len);
    if (room.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    room.len = ngx_sprintf(room.data, "%V://%V", &type, &id) - room.data;

    push->op = op;

    if (ngx_goim_mode() == NGX_GOIM_KAFKA) {
        return ngx_goim_api_kafka(r, NGX_GOIM_KAFKA_ROOM, op, 0, &room,
                                  &push->body);
    }

    return ngx_goim_api_pushed(r, ngx_goim_dispatch_room(push, &room));
}


static ngx_int_t
ngx_goim_api_push_all(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    ngx_goim_push_t *push)
{
    int32_t      op, speed;
    const char  *fmt;

    fmt = ngx_goim_api_int32(ctx, "operation", &op, 1);
    if (fmt) {
        return ngx_goim_api_bind_error(r, fmt, "operation");
    }

    speed = 0;

    fmt = ngx_goim_api_int32(ctx, "speed", &speed, 0);
    if (fmt) {
        return ngx_goim_api_bind_error(r, fmt, "speed");
    }

    if (speed < 0) {
        return ngx_goim_api_reply(r, NGX_HTTP_OK, -400,
                                  "speed: must not be negative", NULL);
    }

    push->op = op;

    if (ngx_goim_mode() == NGX_GOIM_KAFKA) {
        /* the job divides speed among the comets, as goim's does */
        return ngx_goim_api_kafka(r, NGX_GOIM_KAFKA_BROADCAST, op, speed,
                                  NULL, &push->body);
    }

    return ngx_goim_api_pushed(r, ngx_goim_dispatch_all(push, speed));
}
