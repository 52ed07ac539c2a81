
/*
 * goim for nginx: goim's logic HTTP API (docs/PROTOCOL.md 2): one location,
 * "goim_logic_api;", and goim's paths, parameters, envelope and statuses.
 * The routes are in ngx_goim_api_push.c, ngx_goim_api_online.c,
 * ngx_goim_api_nodes.c and ngx_goim_api_presence.c.
 */


#include "ngx_goim_api.h"


typedef struct {
    ngx_str_t              path;
    ngx_uint_t             method;
    ngx_goim_api_route_e   route;
} ngx_goim_api_route_t;


static ngx_goim_api_route_t  ngx_goim_api_routes[] = {
    { ngx_string("/goim/push/keys"), NGX_HTTP_POST,
      NGX_GOIM_API_PUSH_KEYS },
    { ngx_string("/goim/push/mids"), NGX_HTTP_POST,
      NGX_GOIM_API_PUSH_MIDS },
    { ngx_string("/goim/push/room"), NGX_HTTP_POST,
      NGX_GOIM_API_PUSH_ROOM },
    { ngx_string("/goim/push/all"), NGX_HTTP_POST,
      NGX_GOIM_API_PUSH_ALL },
    { ngx_string("/goim/push/batch"), NGX_HTTP_POST,
      NGX_GOIM_API_PUSH_BATCH },
    { ngx_string("/goim/online/top"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_ONLINE_TOP },
    { ngx_string("/goim/online/room"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_ONLINE_ROOM },
    { ngx_string("/goim/online/total"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_ONLINE_TOTAL },
    { ngx_string("/goim/nodes/weighted"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_NODES_WEIGHTED },
    { ngx_string("/goim/nodes/instances"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_NODES_INSTANCES },
    { ngx_string("/goim/history/room"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_HISTORY_ROOM },
    { ngx_string("/goim/presence/room"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_PRESENCE_ROOM },
    { ngx_string("/goim/presence/stats"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      NGX_GOIM_API_PRESENCE_STATS }
};


ngx_int_t
ngx_goim_api_handler(ngx_http_request_t *r)
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

        if (rt->route == NGX_GOIM_API_NODES_WEIGHTED
            || rt->route == NGX_GOIM_API_NODES_INSTANCES)
        {
            return ngx_goim_api_nodes(r, rt->route);
        }

        if (rt->route == NGX_GOIM_API_HISTORY_ROOM) {
            return ngx_goim_api_history(r, ctx);
        }

        if (rt->route == NGX_GOIM_API_PRESENCE_ROOM
            || rt->route == NGX_GOIM_API_PRESENCE_STATS)
        {
            return ngx_goim_api_presence(r, ctx);
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
