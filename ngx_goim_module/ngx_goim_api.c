
/*
 * goim for nginx: goim's logic HTTP API (GOIM-SPEC 3) in its embedded
 * form: pushes go straight to dispatch on this node, online counts come
 * from this node.  With goim_redis, online counts are the cluster's, and
 * push by key and mid, online/total and the nodes routes ask Redis
 * (ngx_goim_api_cluster.c).  With goim_kafka, pushes are produced to
 * Kafka for the job instead (ngx_goim_kafka.c).  Same paths, parameters,
 * envelope and statuses as goim.
 */


#include "ngx_goim_api.h"
#include "ngx_goim_kafka.h"


#define NGX_GOIM_API_MAX_PARAMS   1100
#define NGX_GOIM_API_MAX_TARGETS  1000


typedef struct {
    ngx_str_t              path;
    ngx_uint_t             method;
    ngx_goim_api_route_e   route;
} ngx_goim_api_route_t;


typedef struct {
    goim_query_param_t    *params;
    int                    nparams;
    ngx_goim_api_route_e   route;
} ngx_goim_api_ctx_t;


typedef struct {
    ngx_str_t              room;
    ngx_uint_t             count;
} ngx_goim_api_top_t;


static ngx_int_t ngx_goim_api_parse(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx, const char **what);
static off_t ngx_goim_api_body_limit(ngx_http_request_t *r);
static ngx_int_t ngx_goim_api_too_large(ngx_http_request_t *r);
static ngx_uint_t ngx_goim_api_unique(void *elts, ngx_uint_t n, size_t size,
    int (*cmp)(const void *, const void *));
static int ngx_libc_cdecl ngx_goim_api_key_cmp(const void *a,
    const void *b);
static int ngx_libc_cdecl ngx_goim_api_mid_cmp(const void *a,
    const void *b);
static void ngx_goim_api_push(ngx_http_request_t *r);
static ngx_int_t ngx_goim_api_push_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_goim_api_form(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx, const char *targets, ngx_str_t *body,
    ngx_int_t *answer);
static ngx_int_t ngx_goim_api_kafka(ngx_http_request_t *r, ngx_uint_t type,
    int32_t op, int32_t speed, ngx_str_t *room, ngx_str_t *body);
static ngx_int_t ngx_goim_api_online(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx);
static ngx_int_t ngx_goim_api_bind_error(ngx_http_request_t *r,
    const char *fmt, const char *name);
static const char *ngx_goim_api_str(ngx_goim_api_ctx_t *ctx,
    const char *name, ngx_str_t *value);
static const char *ngx_goim_api_int32(ngx_goim_api_ctx_t *ctx,
    const char *name, int32_t *value, ngx_uint_t required);
static ngx_uint_t ngx_goim_api_is(goim_query_param_t *param,
    const char *name);
static ngx_int_t ngx_goim_api_rooms(ngx_pool_t *pool, ngx_str_t **names,
    ngx_uint_t **counts, ngx_uint_t *n);
static int ngx_libc_cdecl ngx_goim_api_top_cmp(const void *a,
    const void *b);


static ngx_goim_api_route_t  ngx_goim_api_routes[] = {
    { ngx_string("/goim/push/keys"), NGX_HTTP_POST,
      NGX_GOIM_API_PUSH_KEYS },
    { ngx_string("/goim/push/mids"), NGX_HTTP_POST,
      NGX_GOIM_API_PUSH_MIDS },
    { ngx_string("/goim/push/room"), NGX_HTTP_POST,
      NGX_GOIM_API_PUSH_ROOM },
    { ngx_string("/goim/push/all"), NGX_HTTP_POST,
      NGX_GOIM_API_PUSH_ALL },
    { ngx_string("/goim/online/top"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_ONLINE_TOP },
    { ngx_string("/goim/online/room"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_ONLINE_ROOM },
    { ngx_string("/goim/online/total"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_ONLINE_TOTAL },
    { ngx_string("/goim/nodes/weighted"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_NODES_WEIGHTED },
    { ngx_string("/goim/nodes/instances"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_NODES_INSTANCES }
};


ngx_int_t
ngx_http_goim_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    const char                *what;
    ngx_goim_api_ctx_t        *ctx;
    ngx_goim_api_route_t      *rt;

    rt = NULL;

    for (i = 0; i < sizeof(ngx_goim_api_routes)
                    / sizeof(ngx_goim_api_route_t); i++)
    {
        if (r->uri.len == ngx_goim_api_routes[i].path.len
            && ngx_strncmp(r->uri.data, ngx_goim_api_routes[i].path.data,
                           r->uri.len) == 0)
        {
            rt = &ngx_goim_api_routes[i];
            break;
        }
    }

    if (rt == NULL) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_goim_api_reply(r, NGX_HTTP_NOT_FOUND, -404,
                                  "no such API", NULL);
    }

    if (!(r->method & rt->method)) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_goim_api_reply(r, NGX_HTTP_NOT_ALLOWED, -405,
                                  rt->method == NGX_HTTP_POST
                                  ? "method not allowed, use POST"
                                  : "method not allowed, use GET", NULL);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_goim_api_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->route = rt->route;
    ngx_http_set_ctx(r, ctx, ngx_http_goim_module);

    rc = ngx_goim_api_parse(r, ctx, &what);
    if (rc != NGX_OK) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_goim_api_bind_error(r, "%s in the query string", what);
        }

        return rc;
    }

    if (rt->method != NGX_HTTP_POST) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_goim_api_online(r, ctx);
    }

    /* the message must fit in memory: larger bodies get a JSON 413 */

    if (r->headers_in.content_length_n > ngx_goim_api_body_limit(r)) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_goim_api_too_large(r);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_goim_api_push);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * NGX_DECLINED with *what set when the query string cannot be bound: the
 * caller answers, after it discarded the body (answering here and going
 * on would send a second response).
 */

static ngx_int_t
ngx_goim_api_parse(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    const char **what)
{
    int    n;
    char  *buf;

    ctx->params = ngx_palloc(r->pool, NGX_GOIM_API_MAX_PARAMS
                                      * sizeof(goim_query_param_t));
    buf = ngx_pnalloc(r->pool, r->args.len + 1);

    if (ctx->params == NULL || buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = goim_query_parse((const char *) r->args.data, r->args.len, buf,
                         ctx->params, NGX_GOIM_API_MAX_PARAMS);

    if (n == -1) {
        *what = "invalid percent-encoding";
        return NGX_DECLINED;
    }

    if (n < 0) {
        *what = "too many parameters";
        return NGX_DECLINED;
    }

    ctx->nparams = n;

    return NGX_OK;
}


static void
ngx_goim_api_push(ngx_http_request_t *r)
{
    int32_t              op, speed;
    ngx_int_t            rc;
    ngx_str_t            body, room, type, id, *keys;
    ngx_uint_t           i, n;
    const char          *err, *fmt, *p, *comma, *last;
    int64_t             *mids, mid;
    size_t               len;
    ngx_goim_push_t      push;
    ngx_goim_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_goim_module);

    rc = ngx_goim_api_push_body(r, &body);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_goim_api_too_large(r));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
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
        fmt = ngx_goim_api_int32(ctx, "operation", &op, 0);
        if (fmt) {
            rc = ngx_goim_api_bind_error(r, fmt, "operation");
            break;
        }

        push.op = op;

        keys = ngx_palloc(r->pool, NGX_GOIM_API_MAX_TARGETS
                                   * sizeof(ngx_str_t));
        if (keys == NULL) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            break;
        }

        n = 0;

        for (i = 0; i < (ngx_uint_t) ctx->nparams; i++) {
            if (!ngx_goim_api_is(&ctx->params[i], "keys")
                || ctx->params[i].value_len == 0)
            {
                continue;
            }

            if (n == NGX_GOIM_API_MAX_TARGETS) {
                rc = ngx_goim_api_reply(r, NGX_HTTP_OK, -400,
                                        "more than 1000 keys", NULL);
                goto done;
            }

            /* keys are never split on commas (gin binds them whole) */
            keys[n].data = (u_char *) ctx->params[i].value;
            keys[n].len = ctx->params[i].value_len;

            /* a protobuf string ends at a NUL: it would be another key */
            if (ngx_goim_kafka_enabled()
                && ngx_strlchr(keys[n].data, keys[n].data + keys[n].len,
                               '\0'))
            {
                rc = ngx_goim_api_reply(r, NGX_HTTP_BAD_REQUEST, -400,
                                        "keys: a key holds a NUL byte",
                                        NULL);
                goto done;
            }

            n++;
        }

        if (n == 0) {
            rc = ngx_goim_api_reply(r, NGX_HTTP_OK, -400, "no keys given",
                                    NULL);
            goto done;
        }

        /* a key given twice is still pushed to once */
        n = ngx_goim_api_unique(keys, n, sizeof(ngx_str_t),
                                ngx_goim_api_key_cmp);

        if (ngx_goim_redis_enabled()) {
            /* the servers from key_<key> (ngx_goim_api_cluster.c) */
            rc = ngx_goim_api_push_redis(r, &push, keys, NULL, n);
            break;
        }

        rc = ngx_goim_api_pushed(r, ngx_goim_dispatch_keys(&push, keys, n));
        break;

    case NGX_GOIM_API_PUSH_MIDS:
        fmt = ngx_goim_api_int32(ctx, "operation", &op, 0);
        if (fmt) {
            rc = ngx_goim_api_bind_error(r, fmt, "operation");
            break;
        }

        push.op = op;

        mids = ngx_palloc(r->pool, NGX_GOIM_API_MAX_TARGETS
                                   * sizeof(int64_t));
        if (mids == NULL) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            break;
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
                comma = (const char *) ngx_strlchr((u_char *) p,
                                                   (u_char *) last, ',');
                if (comma == NULL) {
                    comma = last;
                }

                if (goim_parse_int64(p, comma - p, &mid) != 0) {
                    rc = ngx_goim_api_bind_error(r,
                                          "%s: invalid member id (int64)",
                                          "mids");
                    goto done;
                }

                if (n == NGX_GOIM_API_MAX_TARGETS) {
                    rc = ngx_goim_api_reply(r, NGX_HTTP_OK, -400,
                                            "more than 1000 mids", NULL);
                    goto done;
                }

                mids[n++] = mid;

                if (comma == last) {
                    break;
                }

                p = comma + 1;
            }
        }

        if (n == 0) {
            rc = ngx_goim_api_reply(r, NGX_HTTP_OK, -400, "no mids given",
                                    NULL);
            goto done;
        }

        n = ngx_goim_api_unique(mids, n, sizeof(int64_t),
                                ngx_goim_api_mid_cmp);

        if (ngx_goim_redis_enabled()) {
            rc = ngx_goim_api_push_redis(r, &push, NULL, mids, n);
            break;
        }

        rc = ngx_goim_api_pushed(r, ngx_goim_dispatch_mids(&push, mids, n));
        break;

    case NGX_GOIM_API_PUSH_ROOM:
        fmt = ngx_goim_api_int32(ctx, "operation", &op, 1);
        if (fmt) {
            rc = ngx_goim_api_bind_error(r, fmt, "operation");
            break;
        }

        err = ngx_goim_api_str(ctx, "type", &type);
        if (err == NULL) {
            err = ngx_goim_api_str(ctx, "room", &id);
        }

        if (err) {
            rc = ngx_goim_api_bind_error(r, "%s: required", err);
            break;
        }

        /* goim's room key: "<type>://<room>" */
        len = type.len + 3 + id.len;

        if (len > NGX_GOIM_MAX_ROOM) {
            rc = ngx_goim_api_reply(r, NGX_HTTP_OK, -400,
                                    "room id longer than 256 bytes", NULL);
            break;
        }

        room.data = ngx_pnalloc(r->pool, len);
        if (room.data == NULL) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            break;
        }

        room.len = ngx_sprintf(room.data, "%V://%V", &type, &id) - room.data;

        push.op = op;

        if (ngx_goim_kafka_enabled()) {
            rc = ngx_goim_api_kafka(r, NGX_GOIM_KAFKA_ROOM, op, 0, &room,
                                    &body);
            break;
        }

        rc = ngx_goim_api_pushed(r, ngx_goim_dispatch_room(&push, &room));
        break;

    default: /* NGX_GOIM_API_PUSH_ALL */
        fmt = ngx_goim_api_int32(ctx, "operation", &op, 1);
        if (fmt) {
            rc = ngx_goim_api_bind_error(r, fmt, "operation");
            break;
        }

        speed = 0;

        fmt = ngx_goim_api_int32(ctx, "speed", &speed, 0);
        if (fmt) {
            rc = ngx_goim_api_bind_error(r, fmt, "speed");
            break;
        }

        if (speed < 0) {
            rc = ngx_goim_api_reply(r, NGX_HTTP_OK, -400,
                                    "speed: must not be negative", NULL);
            break;
        }

        push.op = op;

        if (ngx_goim_kafka_enabled()) {
            /* the job divides speed among the comets, as goim's does */
            rc = ngx_goim_api_kafka(r, NGX_GOIM_KAFKA_BROADCAST, op, speed,
                                    NULL, &body);
            break;
        }

        rc = ngx_goim_api_pushed(r, ngx_goim_dispatch_all(&push, speed));
        break;
    }

done:

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


/* one goim.PushMsg (ROOM or BROADCAST), answered once Kafka reported it */

static ngx_int_t
ngx_goim_api_kafka(ngx_http_request_t *r, ngx_uint_t type, int32_t op,
    int32_t speed, ngx_str_t *room, ngx_str_t *body)
{
    ngx_goim_kafka_waiter_t  *w;

    w = ngx_goim_kafka_waiter(r, 1, 0);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a message that was not produced is in the waiter's answer */
    (void) ngx_goim_kafka_push(w, type, op, speed, NULL, room, NULL, 0,
                               body);

    return ngx_goim_kafka_wait(w);
}


/*
 * A full inbox or an exhausted zone is an error, never a silent success;
 * workers that had room may have delivered already.
 */

ngx_int_t
ngx_goim_api_pushed(ngx_http_request_t *r, ngx_int_t rc)
{
    switch (rc) {

    case NGX_OK:
        return ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", NULL);

    case NGX_BUSY:
        return ngx_goim_api_reply(r, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                  "a worker's inbox is full, push refused",
                                  NULL);

    default:
        return ngx_goim_api_reply(r, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                  "shared zone exhausted, push refused", NULL);
    }
}


static off_t
ngx_goim_api_body_limit(ngx_http_request_t *r)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    return ngx_min(clcf->client_max_body_size,
                   (off_t) clcf->client_body_buffer_size);
}


static ngx_int_t
ngx_goim_api_too_large(ngx_http_request_t *r)
{
    return ngx_goim_api_reply(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, -413,
                              "message larger than client_body_buffer_size",
                              NULL);
}


/*
 * The message body in one piece; NGX_DECLINED when it is over the limit
 * (the caller answers 413: answering here and going on would push it and
 * send a second response).
 */

static ngx_int_t
ngx_goim_api_push_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (r->request_body == NULL) {
        return NGX_OK;
    }

    if (r->request_body->temp_file) {
        return NGX_DECLINED;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    /*
     * a chunked body has no Content-Length to check up front, and one
     * read ahead with the headers never reached client_body_buffer_size
     */

    if ((off_t) len > ngx_goim_api_body_limit(r)) {
        return NGX_DECLINED;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        b = cl->buf;
        body->data = b->pos;
        body->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body->data = p;
    body->len = len;

    for ( /* void */ ; cl; cl = cl->next) {
        if (cl->buf->last != cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    return NGX_OK;
}


/*
 * Targets in the body: 1000 keys do not fit in a request line.  goim
 * sends the message as the raw body and the targets in the query string,
 * so the body is read as a form only when the query string names no
 * targets and the body says it is a form: then keys (or mids) and any
 * other parameter come from it after the query string's, and the message
 * is its "msg" (a request that did this before was refused for want of
 * targets).  NGX_OK, or NGX_DECLINED when it answered (*answer: the
 * code to finalize the request with).
 */

static ngx_int_t
ngx_goim_api_form(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    const char *targets, ngx_str_t *body, ngx_int_t *answer)
{
    int               n, i, first;
    char             *buf;
    size_t            len;
    ngx_str_t        *type;
    const char       *msg;

    static ngx_str_t  form = ngx_string("application/x-www-form-urlencoded");

    for (i = 0; i < ctx->nparams; i++) {
        if (ngx_goim_api_is(&ctx->params[i], targets)
            && ctx->params[i].value_len)
        {
            return NGX_OK;
        }
    }

    if (r->headers_in.content_type == NULL) {
        return NGX_OK;
    }

    type = &r->headers_in.content_type->value;

    if (type->len < form.len
        || ngx_strncasecmp(type->data, form.data, form.len) != 0
        || (type->len > form.len && type->data[form.len] != ';'
            && type->data[form.len] != ' '))
    {
        return NGX_OK;
    }

    buf = ngx_pnalloc(r->pool, body->len + 1);
    if (buf == NULL) {
        *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    first = ctx->nparams;

    n = goim_query_parse((const char *) body->data, body->len, buf,
                         ctx->params + first,
                         NGX_GOIM_API_MAX_PARAMS - first);

    if (n == -1) {
        *answer = ngx_goim_api_bind_error(r, "%s in the form body",
                                          "invalid percent-encoding");
        return NGX_DECLINED;
    }

    if (n < 0) {
        *answer = ngx_goim_api_bind_error(r, "%s in the query string and "
                                          "the form body",
                                          "too many parameters");
        return NGX_DECLINED;
    }

    ctx->nparams += n;

    msg = goim_query_get(ctx->params + first, n, "msg", &len);

    body->data = (u_char *) msg;
    body->len = msg ? len : 0;

    return NGX_OK;
}


static ngx_int_t
ngx_goim_api_online(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx)
{
    int32_t              limit;
    u_char              *host, *name;
    size_t               len;
    ngx_int_t            rc;
    ngx_str_t            type, key;
    ngx_uint_t           i, n, count;
    yajl_gen             g;
    ngx_str_t           *names;
    ngx_uint_t          *counts, nrooms, conns, ips;
    const char          *err, *fmt;
    ngx_goim_api_top_t  *top;

    if (ctx->route == NGX_GOIM_API_NODES_WEIGHTED
        || ctx->route == NGX_GOIM_API_NODES_INSTANCES
        || (ctx->route == NGX_GOIM_API_ONLINE_TOTAL
            && ngx_goim_redis_enabled()))
    {
        /* from the comet registry (ngx_goim_api_cluster.c) */
        return ngx_goim_api_cluster(r, ctx->route);
    }

    if (ctx->route == NGX_GOIM_API_ONLINE_TOTAL) {
        /* other workers refresh their address counts every 10 s */
        ngx_goim_registry_set_ips(ngx_goim_ip_count());
        ngx_goim_registry_totals(&conns, &ips);

        g = yajl_gen_alloc(NULL);
        if (g == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_goim_api_totals(g, conns, ips);

        rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);
        yajl_gen_free(g);
        return rc;
    }

    err = ngx_goim_api_str(ctx, "type", &type);
    if (err) {
        return ngx_goim_api_bind_error(r, "%s: required", err);
    }

    if (ctx->route == NGX_GOIM_API_ONLINE_TOP) {
        fmt = ngx_goim_api_int32(ctx, "limit", &limit, 1);
        if (fmt) {
            return ngx_goim_api_bind_error(r, fmt, "limit");
        }

        if (ngx_goim_api_rooms(r->pool, &names, &counts, &nrooms) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        top = ngx_palloc(r->pool, (nrooms + 1) * sizeof(ngx_goim_api_top_t));
        if (top == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = 0;

        for (i = 0; i < nrooms; i++) {
            name = names[i].data;
            len = names[i].len;

            /* goim: strings.HasPrefix(key, type), id = url host */
            if (len < type.len || ngx_strncmp(name, type.data, type.len) != 0)
            {
                continue;
            }

            host = ngx_strlcasestrn(name, name + len, (u_char *) "://",
                                    3 - 1);
            if (host == NULL) {
                continue;
            }

            host += 3;
            top[n].room.data = host;
            top[n].room.len = (name + len) - host;
            top[n].count = counts[i];
            n++;
        }

        ngx_qsort(top, n, sizeof(ngx_goim_api_top_t), ngx_goim_api_top_cmp);

        if (limit > 0 && n > (ngx_uint_t) limit) {
            n = limit;
        }

        g = yajl_gen_alloc(NULL);
        if (g == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        yajl_gen_array_open(g);

        for (i = 0; i < n; i++) {
            yajl_gen_map_open(g);
            yajl_gen_string(g, (u_char *) "room_id", 7);
            yajl_gen_string(g, top[i].room.data, top[i].room.len);
            yajl_gen_string(g, (u_char *) "count", 5);
            yajl_gen_integer(g, top[i].count);
            yajl_gen_map_close(g);
        }

        yajl_gen_array_close(g);

        rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);
        yajl_gen_free(g);
        return rc;
    }

    /* NGX_GOIM_API_ONLINE_ROOM */

    n = 0;

    for (i = 0; i < (ngx_uint_t) ctx->nparams; i++) {
        if (ngx_goim_api_is(&ctx->params[i], "rooms")) {
            n++;
        }
    }

    if (n == 0) {
        return ngx_goim_api_bind_error(r, "%s: required", "rooms");
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);

    for (i = 0; i < (ngx_uint_t) ctx->nparams; i++) {
        if (!ngx_goim_api_is(&ctx->params[i], "rooms")) {
            continue;
        }

        len = type.len + 3 + ctx->params[i].value_len;
        key.data = ngx_pnalloc(r->pool, len);
        if (key.data == NULL) {
            yajl_gen_free(g);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        key.len = ngx_sprintf(key.data, "%V://%*s", &type,
                              ctx->params[i].value_len,
                              ctx->params[i].value)
                  - key.data;

        count = ngx_goim_registry_online_count(key.data, key.len);

        yajl_gen_string(g, (u_char *) ctx->params[i].value,
                        ctx->params[i].value_len);
        yajl_gen_integer(g, count);
    }

    yajl_gen_map_close(g);

    rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);
    yajl_gen_free(g);

    return rc;
}


/*
 * The cluster's rooms from Redis (ngx_goim_online.c) and this node's
 * rooms that they do not know yet; without Redis, this node's rooms.
 */

static ngx_int_t
ngx_goim_api_rooms(ngx_pool_t *pool, ngx_str_t **names, ngx_uint_t **counts,
    ngx_uint_t *n)
{
    ngx_int_t    rc;
    ngx_str_t   *local, *all;
    ngx_uint_t   i, nlocal, nall, *lcounts, *acounts, count;

    rc = ngx_goim_registry_online_list(pool, &all, &acounts, &nall);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_goim_registry_room_list(pool, names, counts, n);
    }

    if (ngx_goim_registry_room_list(pool, &local, &lcounts, &nlocal) != NGX_OK) {
        return NGX_ERROR;
    }

    *names = ngx_palloc(pool, (nall + nlocal + 1) * sizeof(ngx_str_t));
    *counts = ngx_palloc(pool, (nall + nlocal + 1) * sizeof(ngx_uint_t));

    if (*names == NULL || *counts == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(*names, all, nall * sizeof(ngx_str_t));
    ngx_memcpy(*counts, acounts, nall * sizeof(ngx_uint_t));
    *n = nall;

    for (i = 0; i < nlocal; i++) {
        if (ngx_goim_registry_online_get(local[i].data, local[i].len, &count)
            == NGX_OK)
        {
            continue;
        }

        (*names)[*n] = local[i];
        (*counts)[*n] = lcounts[i];
        (*n)++;
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_goim_api_top_cmp(const void *a, const void *b)
{
    const ngx_goim_api_top_t  *x = a, *y = b;

    if (x->count != y->count) {
        return x->count < y->count ? 1 : -1;
    }

    return ngx_memn2cmp(x->room.data, y->room.data, x->room.len, y->room.len);
}


/* sorts the targets and drops repeated ones; returns how many remain */

static ngx_uint_t
ngx_goim_api_unique(void *elts, ngx_uint_t n, size_t size,
    int (*cmp)(const void *, const void *))
{
    u_char      *p;
    ngx_uint_t   i, k;

    if (n < 2) {
        return n;
    }

    p = elts;

    ngx_qsort(p, n, size, cmp);

    for (i = 1, k = 1; i < n; i++) {
        if (cmp(p + (k - 1) * size, p + i * size) != 0) {
            if (k != i) {
                ngx_memcpy(p + k * size, p + i * size, size);
            }

            k++;
        }
    }

    return k;
}


static int ngx_libc_cdecl
ngx_goim_api_key_cmp(const void *a, const void *b)
{
    const ngx_str_t  *x = a, *y = b;

    return ngx_memn2cmp(x->data, y->data, x->len, y->len);
}


static int ngx_libc_cdecl
ngx_goim_api_mid_cmp(const void *a, const void *b)
{
    const int64_t  *x = a, *y = b;

    return (*x > *y) - (*x < *y);
}


static int ngx_libc_cdecl
ngx_goim_api_addr_cmp(const void *a, const void *b)
{
    return ngx_memcmp(a, b, 16);
}


/* distinct client addresses among this worker's connections */

ngx_uint_t
ngx_goim_ip_count(void)
{
    u_char               (*addr)[16];
    ngx_uint_t            n, i, count;
    ngx_queue_t          *q;
    ngx_goim_walk_t      *node;
    ngx_connection_t     *c;
    ngx_goim_channel_t   *ch;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif
    ngx_goim_worker_t    *w = &ngx_goim_worker;

    if (w->nchannels == 0) {
        return 0;
    }

    addr = ngx_calloc(w->nchannels * 16, ngx_cycle->log);
    if (addr == NULL) {
        return 0;
    }

    n = 0;

    for (q = ngx_queue_head(&w->channels);
         q != ngx_queue_sentinel(&w->channels) && n < w->nchannels;
         q = ngx_queue_next(q))
    {
        node = (ngx_goim_walk_t *) q;

        if (node->cursor) {
            continue;
        }

        ch = ngx_queue_data(node, ngx_goim_channel_t, all);
        c = ch->connection;

        switch (c->sockaddr->sa_family) {

#if (NGX_HAVE_INET6)
        case AF_INET6:
            sin6 = (struct sockaddr_in6 *) c->sockaddr;
            ngx_memcpy(addr[n], &sin6->sin6_addr, 16);
            break;
#endif

        case AF_INET:
            sin = (struct sockaddr_in *) c->sockaddr;
            ngx_memcpy(addr[n], &sin->sin_addr, 4);
            break;

        default:
            break;
        }

        n++;
    }

    ngx_qsort(addr, n, 16, ngx_goim_api_addr_cmp);

    count = n ? 1 : 0;

    for (i = 1; i < n; i++) {
        if (ngx_memcmp(addr[i], addr[i - 1], 16) != 0) {
            count++;
        }
    }

    ngx_free(addr);

    return count;
}


static ngx_uint_t
ngx_goim_api_is(goim_query_param_t *param, const char *name)
{
    size_t  len;

    len = ngx_strlen(name);

    return param->name_len == len
           && ngx_strncmp(param->name, name, len) == 0;
}


static const char *
ngx_goim_api_str(ngx_goim_api_ctx_t *ctx, const char *name, ngx_str_t *value)
{
    size_t       len;
    const char  *v;

    v = goim_query_get(ctx->params, ctx->nparams, name, &len);

    if (v == NULL || len == 0) {
        return name;
    }

    value->data = (u_char *) v;
    value->len = len;

    return NULL;
}


/*
 * gin's binding: a malformed integer fails to bind; "required" rejects
 * an absent parameter and 0.  Returns NULL, or the error's format.
 */

static const char *
ngx_goim_api_int32(ngx_goim_api_ctx_t *ctx, const char *name,
    int32_t *value, ngx_uint_t required)
{
    size_t       len;
    const char  *v;

    *value = 0;

    v = goim_query_get(ctx->params, ctx->nparams, name, &len);

    if (v == NULL || len == 0) {
        return required ? "%s: required" : NULL;
    }

    if (goim_parse_int32(v, len, value) != 0) {
        return "%s: invalid integer (int32)";
    }

    if (required && *value == 0) {
        return "%s: required, not 0";
    }

    return NULL;
}


static ngx_int_t
ngx_goim_api_bind_error(ngx_http_request_t *r, const char *fmt,
    const char *name)
{
    u_char  msg[128];

    ngx_snprintf(msg, sizeof(msg) - 1, fmt, name)[0] = '\0';

    return ngx_goim_api_reply(r, NGX_HTTP_BAD_REQUEST, -400,
                              (const char *) msg, NULL);
}


/* {"code":<code>,"message":"<message>"[,"data":<g>]} */

ngx_int_t
ngx_goim_api_reply(ngx_http_request_t *r, ngx_uint_t status, ngx_int_t code,
    const char *message, yajl_gen g)
{
    u_char                *p;
    size_t                 len, mlen, dlen;
    ngx_buf_t             *b;
    const unsigned char   *data;

    static ngx_str_t  type = ngx_string("application/json");

    data = NULL;
    dlen = 0;

    if (g && yajl_gen_get_buf(g, &data, &dlen) != yajl_gen_status_ok) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mlen = ngx_strlen(message);

    len = sizeof("{\"code\":,\"message\":\"\",\"data\":}\n") - 1
          + NGX_INT_T_LEN + mlen
          + ngx_escape_json(NULL, (u_char *) message, mlen) + dlen;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"code\":%i,\"message\":\"", code);
    p = (u_char *) ngx_escape_json(p, (u_char *) message, mlen);
    *p++ = '"';

    if (data) {
        p = ngx_cpymem(p, ",\"data\":", sizeof(",\"data\":") - 1);
        p = ngx_cpymem(p, data, dlen);
    }

    *p++ = '}';
    *p++ = '\n';

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    if (code != 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "goim: API %V answered %i: %s", &r->uri, code, message);
    }

    return ngx_goim_http_send(r, status, &type, b);
}
