
/*
 * goim for nginx: who is in a room (docs/PROTOCOL.md 2.12), with
 * goim_presence on.  GET /goim/presence/room lists a room's members,
 * paged by a cursor; GET /goim/presence/stats counts its connections
 * and distinct members.  Both read the node's shared registry
 * (registry/ngx_goim_registry_presence.c): this node's members, all
 * workers together.
 */


#include "ngx_goim_api.h"

#include <yajl/yajl_tree.h>


#define NGX_GOIM_PRESENCE_LIMIT      100
#define NGX_GOIM_PRESENCE_MAX_LIMIT  1000


/* a cluster-wide answer on its way (goim_redis) */
typedef struct {
    ngx_http_request_t            *request;
    ngx_goim_api_route_e           route;
    ngx_str_t                      room;
    ngx_uint_t                     limit;
    ngx_uint_t                     server;  /* the cursor: a server ... */
    ngx_str_t                      scan;    /* ... and its HSCAN cursor */
    ngx_uint_t                     nservers;
    ngx_goim_comets_t             *fetch;
    ngx_goim_redis_req_t         **reqs;
    ngx_uint_t                     nreqs;
    ngx_uint_t                     pending;
    const char                    *err;
    ngx_uint_t                     connections;
    ngx_uint_t                     members;
    ngx_str_t                      node;    /* of the page's server */
    ngx_str_t                      next;    /* HSCAN's next cursor */
    ngx_goim_presence_member_t    *list;
    ngx_uint_t                     nlist;
} ngx_goim_api_presence_t;


typedef struct {
    ngx_goim_api_presence_t       *a;
    ngx_uint_t                     idx;     /* in a->reqs */
    ngx_uint_t                     kind;    /* 0 HLEN, 1 HLEN mids, 2 HSCAN */
} ngx_goim_api_presence_req_t;


static ngx_int_t ngx_goim_api_presence_room(ngx_goim_api_ctx_t *ctx,
    ngx_pool_t *pool, ngx_str_t *room);
static ngx_int_t ngx_goim_api_presence_cluster(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx, ngx_str_t *room, ngx_uint_t limit,
    ngx_str_t *cursor);
static void ngx_goim_api_presence_cleanup(void *data);
static void ngx_goim_api_presence_comets(ngx_goim_comet_t *comets,
    ngx_uint_t n, const char *err, void *data);
static ngx_int_t ngx_goim_api_presence_send(ngx_goim_api_presence_t *a,
    ngx_uint_t kind, ngx_str_t *server);
static void ngx_goim_api_presence_reply(redisReply *reply, void *data,
    const char *err);
static ngx_int_t ngx_goim_api_presence_page(ngx_goim_api_presence_t *a,
    redisReply *reply);
static ngx_int_t ngx_goim_api_presence_answer(ngx_goim_api_presence_t *a);
static int ngx_libc_cdecl ngx_goim_api_presence_cmp(const void *x,
    const void *y);


ngx_int_t
ngx_goim_api_presence(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx)
{
    u_char                        buf[NGX_INT64_LEN];
    int32_t                       limit;
    size_t                        len;
    uint64_t                      cursor, next;
    ngx_int_t                     rc;
    ngx_str_t                     room, cur;
    ngx_uint_t                    i, n;
    yajl_gen                      g;
    const char                   *v, *fmt;
    ngx_goim_conf_t              *gcf;
    ngx_goim_presence_stats_t     stats;
    ngx_goim_presence_member_t   *m;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    if (!gcf->presence) {
        return ngx_goim_api_reply(r, NGX_HTTP_NOT_FOUND, -404,
                                  "presence is off (goim_presence on)",
                                  NULL);
    }

    if (ngx_goim_api_presence_room(ctx, r->pool, &room) != NGX_OK) {
        return ngx_goim_api_bind_error(r, "%s: required", "room");
    }

    n = 0;
    next = 0;
    m = NULL;
    limit = NGX_GOIM_PRESENCE_LIMIT;
    len = 0;
    v = NULL;

    if (ctx->route == NGX_GOIM_API_PRESENCE_ROOM) {
        fmt = ngx_goim_api_int32(ctx, "limit", &limit, 0);
        if (fmt) {
            return ngx_goim_api_bind_error(r, fmt, "limit");
        }

        if (limit == 0) {
            limit = NGX_GOIM_PRESENCE_LIMIT;
        }

        if (limit < 0 || limit > NGX_GOIM_PRESENCE_MAX_LIMIT) {
            return ngx_goim_api_bind_error(r, "%s: 1 to 1000", "limit");
        }

        v = goim_query_get(ctx->params, ctx->nparams, "cursor", &len);
    }

    if (ngx_goim_mode() != NGX_GOIM_EMBEDDED) {
        cur.data = (u_char *) v;
        cur.len = v ? len : 0;

        return ngx_goim_api_presence_cluster(r, ctx, &room, limit, &cur);
    }

    if (ctx->route == NGX_GOIM_API_PRESENCE_STATS) {
        ngx_goim_registry_presence_stats(&room, &stats);

    } else {
        cursor = 0;

        if (v && len) {
            for (i = 0; i < len; i++) {
                if (v[i] < '0' || v[i] > '9' || i == 19) {
                    return ngx_goim_api_bind_error(r, "%s: invalid",
                                                   "cursor");
                }

                cursor = cursor * 10 + (v[i] - '0');
            }
        }

        if (ngx_goim_registry_presence_list(r->pool, &room, cursor, limit,
                                            &m, &n, &next, &stats)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);
    yajl_gen_string(g, (u_char *) "room_id", 7);
    yajl_gen_string(g, room.data, room.len);
    yajl_gen_string(g, (u_char *) "connections", 11);
    yajl_gen_integer(g, stats.connections);
    yajl_gen_string(g, (u_char *) "members", 7);
    yajl_gen_integer(g, stats.members);

    if (ctx->route == NGX_GOIM_API_PRESENCE_ROOM) {
        yajl_gen_string(g, (u_char *) "list", 4);
        yajl_gen_array_open(g);

        for (i = 0; i < n; i++) {
            yajl_gen_map_open(g);
            yajl_gen_string(g, (u_char *) "mid", 3);
            yajl_gen_integer(g, m[i].mid);
            yajl_gen_string(g, (u_char *) "key", 3);
            yajl_gen_string(g, m[i].key.data, m[i].key.len);
            yajl_gen_string(g, (u_char *) "platform", 8);
            yajl_gen_string(g, m[i].platform.data, m[i].platform.len);
            yajl_gen_string(g, (u_char *) "node", 4);
            yajl_gen_string(g, gcf->server_id.data, gcf->server_id.len);
            yajl_gen_string(g, (u_char *) "since", 5);
            yajl_gen_integer(g, m[i].since);
            yajl_gen_map_close(g);
        }

        yajl_gen_array_close(g);

        /* a string: a JSON number loses digits past 2^53 in some readers */

        yajl_gen_string(g, (u_char *) "cursor", 6);

        if (next) {
            yajl_gen_string(g, buf, ngx_sprintf(buf, "%uL", next) - buf);

        } else {
            yajl_gen_string(g, (u_char *) "", 0);
        }
    }

    yajl_gen_map_close(g);

    rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);
    yajl_gen_free(g);

    return rc;
}


/* "room": a whole room id; or "type" and "room" as push/room builds it */

static ngx_int_t
ngx_goim_api_presence_room(ngx_goim_api_ctx_t *ctx, ngx_pool_t *pool,
    ngx_str_t *room)
{
    ngx_str_t  type, id;

    if (ngx_goim_api_str(ctx, "room", &id) != NULL) {
        return NGX_DECLINED;
    }

    if (ngx_goim_api_str(ctx, "type", &type) != NULL) {
        *room = id;
        return NGX_OK;
    }

    room->data = ngx_pnalloc(pool, type.len + 3 + id.len);
    if (room->data == NULL) {
        return NGX_ERROR;
    }

    room->len = ngx_sprintf(room->data, "%V://%V", &type, &id) - room->data;

    return NGX_OK;
}


/*
 * With goim_redis: every node's presence_<server>_<room> hashes.  The
 * stats add up HLEN over the registry's comets (a member connected to
 * two nodes counts on each); a page is one HSCAN of one server's hash,
 * the cursor "<server>.<HSCAN cursor>" in the order of the server ids.
 */

static ngx_int_t
ngx_goim_api_presence_cluster(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    ngx_str_t *room, ngx_uint_t limit, ngx_str_t *cursor)
{
    u_char                    *dot;
    ngx_int_t                  server;
    ngx_pool_cleanup_t        *cln;
    ngx_goim_api_presence_t   *a;

    a = ngx_pcalloc(r->pool, sizeof(ngx_goim_api_presence_t));
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a->request = r;
    a->route = ctx->route;
    a->room = *room;
    a->limit = limit;
    ngx_str_set(&a->scan, "0");

    if (cursor->len) {
        dot = ngx_strlchr(cursor->data, cursor->data + cursor->len, '.');
        server = dot ? ngx_atoi(cursor->data, dot - cursor->data)
                     : NGX_ERROR;

        if (server == NGX_ERROR || dot + 1 == cursor->data + cursor->len
            || ngx_atoi(dot + 1, cursor->data + cursor->len - dot - 1)
               == NGX_ERROR)
        {
            return ngx_goim_api_bind_error(r, "%s: invalid", "cursor");
        }

        a->server = server;
        a->scan.data = dot + 1;
        a->scan.len = cursor->data + cursor->len - dot - 1;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_goim_api_presence_cleanup;
    cln->data = a;

    r->read_event_handler = ngx_http_test_reading;

    a->fetch = ngx_goim_comets_fetch(ngx_goim_api_presence_comets, a);
    if (a->fetch == NULL) {
        return ngx_goim_api_redis_error(r, NGX_GOIM_REDIS_DOWN);
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_goim_api_presence_cleanup(void *data)
{
    ngx_goim_api_presence_t  *a = data;

    ngx_uint_t  i;

    if (a->fetch) {
        ngx_goim_comets_cancel(a->fetch);
        a->fetch = NULL;
    }

    for (i = 0; i < a->nreqs; i++) {
        if (a->reqs[i]) {
            ngx_goim_redis_cancel(a->reqs[i]);
            a->reqs[i] = NULL;
        }
    }

}


static void
ngx_goim_api_presence_comets(ngx_goim_comet_t *comets, ngx_uint_t n,
    const char *err, void *data)
{
    ngx_goim_api_presence_t  *a = data;

    ngx_str_t            *ids;
    ngx_uint_t            i;
    ngx_http_request_t   *r;

    a->fetch = NULL;
    r = a->request;

    if (err) {
        ngx_http_finalize_request(r, ngx_goim_api_redis_error(r, err));
        return;
    }

    ids = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_str_t));
    a->reqs = ngx_pcalloc(r->pool, (2 * n + 2) * sizeof(void *));

    if (ids == NULL || a->reqs == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the comets are valid during this call only */

    for (i = 0; i < n; i++) {
        ids[i].data = ngx_pstrdup(r->pool, &comets[i].server);
        if (ids[i].data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ids[i].len = comets[i].server.len;
    }

    ngx_qsort(ids, n, sizeof(ngx_str_t), ngx_goim_api_presence_cmp);

    a->nservers = n;

    for (i = 0; i < n; i++) {
        if (ngx_goim_api_presence_send(a, 0, &ids[i]) != NGX_OK
            || ngx_goim_api_presence_send(a, 1, &ids[i]) != NGX_OK)
        {
            goto down;
        }
    }

    if (a->route == NGX_GOIM_API_PRESENCE_ROOM && a->server < n) {
        a->node = ids[a->server];

        if (ngx_goim_api_presence_send(a, 2, &ids[a->server]) != NGX_OK) {
            goto down;
        }
    }

    if (a->pending == 0) {
        ngx_http_finalize_request(r, ngx_goim_api_presence_answer(a));
    }

    return;

down:

    /* the cleanup cancels those already sent */
    ngx_http_finalize_request(r,
                              ngx_goim_api_redis_error(r,
                                                       NGX_GOIM_REDIS_DOWN));
}


static ngx_int_t
ngx_goim_api_presence_send(ngx_goim_api_presence_t *a, ngx_uint_t kind,
    ngx_str_t *server)
{
    ngx_goim_redis_req_t         *req;
    ngx_goim_api_presence_req_t  *q;

    q = ngx_palloc(a->request->pool, sizeof(ngx_goim_api_presence_req_t));
    if (q == NULL) {
        return NGX_ERROR;
    }

    q->a = a;
    q->idx = a->nreqs;
    q->kind = kind;

    if (kind == 2) {
        req = ngx_goim_redis_command(ngx_goim_api_presence_reply, q,
                                     "HSCAN presence_%b_%b %b COUNT %u",
                                     server->data, server->len,
                                     a->room.data, a->room.len,
                                     a->scan.data, a->scan.len,
                                     (unsigned) a->limit);

    } else {
        req = ngx_goim_redis_command(ngx_goim_api_presence_reply, q,
                                     kind ? "HLEN presence_mids_%b_%b"
                                          : "HLEN presence_%b_%b",
                                     server->data, server->len,
                                     a->room.data, a->room.len);
    }

    if (req == NULL) {
        return NGX_ERROR;
    }

    a->reqs[a->nreqs++] = req;
    a->pending++;

    return NGX_OK;
}


static void
ngx_goim_api_presence_reply(redisReply *reply, void *data, const char *err)
{
    ngx_goim_api_presence_req_t  *q = data;

    ngx_goim_api_presence_t  *a;

    a = q->a;
    a->reqs[q->idx] = NULL;
    a->pending--;

    if (err) {
        a->err = err;

    } else if (q->kind == 2) {
        if (ngx_goim_api_presence_page(a, reply) != NGX_OK) {
            a->err = "unexpected HSCAN reply";
        }

    } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
        if (q->kind) {
            a->members += reply->integer;

        } else {
            a->connections += reply->integer;
        }
    }

    if (a->pending) {
        return;
    }

    ngx_http_finalize_request(a->request,
                              a->err ? ngx_goim_api_redis_error(a->request,
                                                                a->err)
                                     : ngx_goim_api_presence_answer(a));
}


/* [cursor, [key, {"mid","platform","since"}, ...]], copied */

static ngx_int_t
ngx_goim_api_presence_page(ngx_goim_api_presence_t *a, redisReply *reply)
{
    char                         errbuf[64], *ps;
    size_t                       i;
    yajl_val                     tree, v;
    ngx_pool_t                  *pool;
    redisReply                  *f, *e;
    ngx_goim_presence_member_t  *m;

    static const char  *p_mid[] = { "mid", NULL };
    static const char  *p_platform[] = { "platform", NULL };
    static const char  *p_since[] = { "since", NULL };

    pool = a->request->pool;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return NGX_ERROR;
    }

    a->next.len = reply->element[0]->len;
    a->next.data = ngx_pnalloc(pool, a->next.len);
    if (a->next.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(a->next.data, reply->element[0]->str, a->next.len);

    f = reply->element[1];

    a->list = ngx_pcalloc(pool, (f->elements / 2 + 1)
                                * sizeof(ngx_goim_presence_member_t));
    if (a->list == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i + 1 < f->elements; i += 2) {
        if (f->element[i]->type != REDIS_REPLY_STRING
            || f->element[i + 1]->type != REDIS_REPLY_STRING)
        {
            return NGX_ERROR;
        }

        m = &a->list[a->nlist];
        e = f->element[i];

        m->key.len = e->len;
        m->key.data = ngx_pnalloc(pool, e->len + 1);
        if (m->key.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(m->key.data, e->str, e->len);

        /* NUL-terminated by hiredis */
        tree = yajl_tree_parse(f->element[i + 1]->str, errbuf,
                               sizeof(errbuf));
        if (tree == NULL) {
            continue;
        }

        v = yajl_tree_get(tree, p_mid, yajl_t_number);
        m->mid = (v && YAJL_IS_INTEGER(v)) ? YAJL_GET_INTEGER(v) : 0;

        v = yajl_tree_get(tree, p_since, yajl_t_number);
        m->since = (v && YAJL_IS_INTEGER(v)) ? YAJL_GET_INTEGER(v) : 0;

        v = yajl_tree_get(tree, p_platform, yajl_t_string);
        ps = v ? YAJL_GET_STRING(v) : NULL;

        if (ps) {
            m->platform.len = ngx_strlen(ps);
            m->platform.data = ngx_pnalloc(pool, m->platform.len + 1);

            if (m->platform.data == NULL) {
                yajl_tree_free(tree);
                return NGX_ERROR;
            }

            ngx_memcpy(m->platform.data, ps, m->platform.len);
        }

        yajl_tree_free(tree);

        a->nlist++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_goim_api_presence_answer(ngx_goim_api_presence_t *a)
{
    u_char               buf[NGX_INT_T_LEN + 1 + 64];
    size_t               len;
    ngx_int_t            rc;
    ngx_uint_t           i;
    yajl_gen             g;
    ngx_http_request_t  *r;

    r = a->request;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);
    yajl_gen_string(g, (u_char *) "room_id", 7);
    yajl_gen_string(g, a->room.data, a->room.len);
    yajl_gen_string(g, (u_char *) "connections", 11);
    yajl_gen_integer(g, a->connections);
    yajl_gen_string(g, (u_char *) "members", 7);
    yajl_gen_integer(g, a->members);

    if (a->route == NGX_GOIM_API_PRESENCE_ROOM) {
        yajl_gen_string(g, (u_char *) "list", 4);
        yajl_gen_array_open(g);

        for (i = 0; i < a->nlist; i++) {
            yajl_gen_map_open(g);
            yajl_gen_string(g, (u_char *) "mid", 3);
            yajl_gen_integer(g, a->list[i].mid);
            yajl_gen_string(g, (u_char *) "key", 3);
            yajl_gen_string(g, a->list[i].key.data, a->list[i].key.len);
            yajl_gen_string(g, (u_char *) "platform", 8);
            yajl_gen_string(g, a->list[i].platform.data,
                            a->list[i].platform.len);
            yajl_gen_string(g, (u_char *) "node", 4);
            yajl_gen_string(g, a->node.data, a->node.len);
            yajl_gen_string(g, (u_char *) "since", 5);
            yajl_gen_integer(g, a->list[i].since);
            yajl_gen_map_close(g);
        }

        yajl_gen_array_close(g);

        /* the same server's next HSCAN, or the next server's first */

        len = 0;

        if (a->server < a->nservers && a->next.len > 0
            && !(a->next.len == 1 && a->next.data[0] == '0')
            && a->next.len <= 64)
        {
            len = ngx_sprintf(buf, "%ui.%V", a->server, &a->next) - buf;

        } else if (a->server + 1 < a->nservers) {
            len = ngx_sprintf(buf, "%ui.0", a->server + 1) - buf;
        }

        yajl_gen_string(g, (u_char *) "cursor", 6);
        yajl_gen_string(g, buf, len);
    }

    yajl_gen_map_close(g);

    rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);
    yajl_gen_free(g);

    return rc;
}


static int ngx_libc_cdecl
ngx_goim_api_presence_cmp(const void *x, const void *y)
{
    const ngx_str_t  *a = x, *b = y;

    return ngx_memn2cmp(a->data, b->data, a->len, b->len);
}
