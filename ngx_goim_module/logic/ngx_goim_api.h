
/*
 * goim for nginx, floor "logic": goim's logic HTTP API (docs/PROTOCOL.md 2),
 * the internal push the job posts to (5), and the status page.  The API
 * pushes straight to dispatch on this node (embedded), or finds the servers
 * in Redis (goim_redis), or produces to Kafka for the job (goim_kafka):
 * ngx_goim_mode() says which.
 */

#ifndef _NGX_GOIM_API_H_INCLUDED_
#define _NGX_GOIM_API_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_core.h"
#include "ngx_goim_registry.h"
#include "ngx_goim_connection.h"
#include "ngx_goim_push.h"
#include "ngx_goim_redis.h"
#include "ngx_goim_kafka.h"

#include <yajl/yajl_gen.h>

#include <goim_query.h>


#define NGX_GOIM_API_MAX_PARAMS   1100
#define NGX_GOIM_API_MAX_TARGETS  1000


typedef enum {
    NGX_GOIM_API_PUSH_KEYS = 0,
    NGX_GOIM_API_PUSH_MIDS,
    NGX_GOIM_API_PUSH_ROOM,
    NGX_GOIM_API_PUSH_ALL,
    NGX_GOIM_API_PUSH_BATCH,
    NGX_GOIM_API_ONLINE_TOP,
    NGX_GOIM_API_ONLINE_ROOM,
    NGX_GOIM_API_ONLINE_TOTAL,
    NGX_GOIM_API_NODES_WEIGHTED,
    NGX_GOIM_API_NODES_INSTANCES,
    NGX_GOIM_API_HISTORY_ROOM,
    NGX_GOIM_API_PRESENCE_ROOM,
    NGX_GOIM_API_PRESENCE_STATS
} ngx_goim_api_route_e;


/* a request of the API: its route and its parameters */
typedef struct {
    goim_query_param_t    *params;
    int                    nparams;
    ngx_goim_api_route_e   route;
} ngx_goim_api_ctx_t;


/* the location handlers (entry/ngx_goim_http_module.c) */
ngx_int_t ngx_goim_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_goim_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_goim_internal_handler(ngx_http_request_t *r);

/* the HTTP module's location configuration (ngx_goim_internal_conf.c) */
typedef struct {
    /*
     * SHA-256 of goim_internal_secret, NULL when none is set: requests
     * are checked against the digest only, so comparing takes the same
     * time whatever the length of the guess (ngx_goim_internal.c)
     */
    u_char                    *internal_secret;
} ngx_goim_internal_conf_t;


char *ngx_goim_internal_secret_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void *ngx_goim_internal_create_loc_conf(ngx_conf_t *cf);
char *ngx_goim_internal_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);

/* the answers' envelope (ngx_goim_api_reply.c) */
ngx_int_t ngx_goim_api_reply(ngx_http_request_t *r, ngx_uint_t status,
    ngx_int_t code, const char *message, yajl_gen g);
ngx_int_t ngx_goim_api_pushed(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_goim_api_bind_error(ngx_http_request_t *r, const char *fmt,
    const char *name);
ngx_int_t ngx_goim_api_redis_error(ngx_http_request_t *r, const char *err);
void ngx_goim_api_totals(yajl_gen g, ngx_uint_t conns, ngx_uint_t ips);

/* parameters and bodies (ngx_goim_api_params.c) */
ngx_int_t ngx_goim_api_parse(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    const char **what);
ngx_int_t ngx_goim_api_form(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    const char *targets, ngx_str_t *body, ngx_int_t *answer);
ngx_int_t ngx_goim_api_body(ngx_http_request_t *r, ngx_str_t *body);
off_t ngx_goim_api_body_limit(ngx_http_request_t *r);
ngx_int_t ngx_goim_api_too_large(ngx_http_request_t *r);
ngx_uint_t ngx_goim_api_is(goim_query_param_t *param, const char *name);
const char *ngx_goim_api_str(ngx_goim_api_ctx_t *ctx, const char *name,
    ngx_str_t *value);
const char *ngx_goim_api_int32(ngx_goim_api_ctx_t *ctx, const char *name,
    int32_t *value, ngx_uint_t required);
ngx_uint_t ngx_goim_api_unique_keys(ngx_str_t *keys, ngx_uint_t n);
ngx_uint_t ngx_goim_api_unique_mids(int64_t *mids, ngx_uint_t n);

/*
 * The routes.  Each answers at once, or returns NGX_DONE and answers
 * later from a Redis or Kafka callback (the request is kept until then).
 */
void ngx_goim_api_push(ngx_http_request_t *r);
ngx_int_t ngx_goim_api_online(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx);
ngx_int_t ngx_goim_api_nodes(ngx_http_request_t *r,
    ngx_goim_api_route_e route);
ngx_int_t ngx_goim_api_history(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx);
ngx_int_t ngx_goim_api_presence(ngx_http_request_t *r,
    ngx_goim_api_ctx_t *ctx);
ngx_int_t ngx_goim_api_push_redis(ngx_http_request_t *r,
    ngx_goim_push_t *push, ngx_str_t *keys, int64_t *mids, ngx_uint_t n);

/* POST /goim/push/batch (ngx_goim_api_batch.c), body read */
ngx_int_t ngx_goim_api_batch(ngx_http_request_t *r, ngx_str_t *body);

/*
 * Where keys and mids are (ngx_goim_api_redis.c): a key on a server,
 * found for a push or for item "item" of a batch.
 */
typedef struct {
    ngx_str_t                  key;
    ngx_str_t                  server;
    ngx_uint_t                 item;
    /*
     * found by mid with goim_history members=on: the member, and its
     * message's position in offline_<mid> (offset 0: not kept)
     */
    int64_t                    mid;
    uint64_t                   epoch;
    uint64_t                   offset;
} ngx_goim_api_target_t;

/* err: the lookup failed (the targets are then incomplete) */
typedef void (*ngx_goim_api_lookup_pt)(ngx_http_request_t *r,
    ngx_goim_api_target_t *t, ngx_uint_t n, const char *err, void *data);

int ngx_libc_cdecl ngx_goim_api_target_cmp(const void *x, const void *y);
ngx_int_t ngx_goim_api_stream_id(u_char *s, size_t len, uint64_t *epoch,
    uint64_t *offset);
ngx_uint_t ngx_goim_api_kafka_messages(ngx_goim_api_target_t *t,
    ngx_uint_t n);
ngx_int_t ngx_goim_api_kafka_produce(ngx_pool_t *pool,
    ngx_goim_kafka_batch_t *kb, int32_t op, ngx_str_t *body,
    ngx_goim_api_target_t *t, ngx_uint_t n);
ngx_int_t ngx_goim_api_dispatch_members(ngx_pool_t *pool,
    ngx_goim_push_t *push, ngx_goim_api_target_t *t, ngx_uint_t n,
    ngx_uint_t *here);
ngx_uint_t ngx_goim_api_unique_targets(ngx_goim_api_target_t *t,
    ngx_uint_t n);
ngx_uint_t ngx_goim_api_target_here(ngx_goim_api_target_t *t,
    ngx_goim_conf_t *gcf);
void ngx_goim_api_other_servers(yajl_gen g, ngx_goim_api_target_t *t,
    ngx_uint_t n, ngx_goim_conf_t *gcf);

/* mid_ops, mid_bodies: each mid's message, kept with members=on */
ngx_int_t ngx_goim_api_lookup(ngx_http_request_t *r, ngx_str_t *keys,
    ngx_uint_t *key_items, ngx_uint_t nkeys, int64_t *mids,
    ngx_uint_t *mid_items, ngx_uint_t nmids, int32_t *mid_ops,
    ngx_str_t *mid_bodies, ngx_goim_api_lookup_pt done, void *data);

/*
 * Pushes through Kafka (ngx_goim_api_kafka.c): a batch of n messages
 * for the request; report adds {"servers":n,"messages":n} to the
 * success answer.  ngx_goim_kafka_produce() each into k->batch (stop at
 * the first that fails), then ngx_goim_api_kafka_wait().
 */
typedef struct {
    ngx_http_request_t        *request;
    ngx_goim_kafka_batch_t    *batch;
    ngx_uint_t                 report;
} ngx_goim_api_kafka_t;

ngx_goim_api_kafka_t *ngx_goim_api_kafka_batch(ngx_http_request_t *r,
    ngx_uint_t n, ngx_uint_t report);
ngx_int_t ngx_goim_api_kafka_wait(ngx_goim_api_kafka_t *k);
ngx_int_t ngx_goim_api_kafka(ngx_http_request_t *r, ngx_uint_t type,
    int32_t op, int32_t speed, ngx_str_t *room, ngx_str_t *body);


#endif /* _NGX_GOIM_API_H_INCLUDED_ */
