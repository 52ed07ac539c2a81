
/*
 * goim for nginx: what the logic API's files share (ngx_goim_api.c, the
 * node-local API; ngx_goim_api_cluster.c, the answers from Redis).
 */

#ifndef _NGX_GOIM_API_H_INCLUDED_
#define _NGX_GOIM_API_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim.h"

#include <yajl/yajl_gen.h>

#include <goim_query.h>


typedef enum {
    NGX_GOIM_API_PUSH_KEYS = 0,
    NGX_GOIM_API_PUSH_MIDS,
    NGX_GOIM_API_PUSH_ROOM,
    NGX_GOIM_API_PUSH_ALL,
    NGX_GOIM_API_ONLINE_TOP,
    NGX_GOIM_API_ONLINE_ROOM,
    NGX_GOIM_API_ONLINE_TOTAL,
    NGX_GOIM_API_NODES_WEIGHTED,
    NGX_GOIM_API_NODES_INSTANCES
} ngx_goim_api_route_e;


ngx_int_t ngx_goim_api_reply(ngx_http_request_t *r, ngx_uint_t status,
    ngx_int_t code, const char *message, yajl_gen g);
ngx_int_t ngx_goim_api_pushed(ngx_http_request_t *r, ngx_int_t rc);
void ngx_goim_api_totals(yajl_gen g, ngx_uint_t conns, ngx_uint_t ips);

/*
 * Both answer at once, or return NGX_DONE and answer later, from a
 * Redis callback (the request is kept until then).
 */
ngx_int_t ngx_goim_api_cluster(ngx_http_request_t *r,
    ngx_goim_api_route_e route);
ngx_int_t ngx_goim_api_push_redis(ngx_http_request_t *r,
    ngx_goim_push_t *push, ngx_str_t *keys, int64_t *mids, ngx_uint_t n);


#endif /* _NGX_GOIM_API_H_INCLUDED_ */
