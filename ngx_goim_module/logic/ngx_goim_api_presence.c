
/*
 * goim for nginx: who is in a room (docs/PROTOCOL.md 2.12), with
 * goim_presence on.  GET /goim/presence/room lists a room's members,
 * paged by a cursor; GET /goim/presence/stats counts its connections
 * and distinct members.  Both read the node's shared registry
 * (registry/ngx_goim_registry_presence.c): this node's members, all
 * workers together.
 */


#include "ngx_goim_api.h"


#define NGX_GOIM_PRESENCE_LIMIT      100
#define NGX_GOIM_PRESENCE_MAX_LIMIT  1000


static ngx_int_t ngx_goim_api_presence_room(ngx_goim_api_ctx_t *ctx,
    ngx_pool_t *pool, ngx_str_t *room);


ngx_int_t
ngx_goim_api_presence(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx)
{
    u_char                        buf[NGX_INT64_LEN];
    int32_t                       limit;
    size_t                        len;
    uint64_t                      cursor, next;
    ngx_int_t                     rc;
    ngx_str_t                     room;
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

    if (ctx->route == NGX_GOIM_API_PRESENCE_STATS) {
        ngx_goim_registry_presence_stats(&room, &stats);

    } else {
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

        cursor = 0;
        v = goim_query_get(ctx->params, ctx->nparams, "cursor", &len);

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
