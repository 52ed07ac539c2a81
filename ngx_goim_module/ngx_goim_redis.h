
/*
 * goim for nginx: the worker's asynchronous Redis connection
 * (ngx_goim_redis.c), used by the sessions (ngx_goim_session.c).
 */

#ifndef _NGX_GOIM_REDIS_H_INCLUDED_
#define _NGX_GOIM_REDIS_H_INCLUDED_


#include "ngx_goim.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


/* goim_redis, goim_redis_timeout, goim_session_ttl */
struct ngx_goim_redis_conf_s {
    ngx_str_t              name;        /* as configured, for logs */
    ngx_str_t              host;        /* numeric address or unix path */
    ngx_int_t              port;        /* 0: a unix socket */
    ngx_str_t              password;
    ngx_int_t              db;
    ngx_msec_t             timeout;
    time_t                 session_ttl;
};


typedef struct ngx_goim_redis_req_s  ngx_goim_redis_req_t;

/*
 * Called exactly once per command, from the event loop, unless the
 * command was cancelled: with the reply and err NULL on success, with
 * the reply and err = its text for an error reply, and with reply NULL
 * and err set when the command failed (timeout, connection lost).  The
 * reply is freed when the callback returns.
 */
typedef void (*ngx_goim_redis_cb_pt)(redisReply *reply, void *data,
    const char *err);


/*
 * Both return a handle for ngx_goim_redis_cancel(), valid until the
 * callback runs, or NULL when the command failed at once (no
 * connection, out of memory): the callback is then never called.
 */
ngx_goim_redis_req_t *ngx_goim_redis_command(ngx_goim_redis_cb_pt cb,
    void *data, const char *fmt, ...);
ngx_goim_redis_req_t *ngx_goim_redis_commandargv(ngx_goim_redis_cb_pt cb,
    void *data, int argc, const char **argv, const size_t *argvlen);

/* the callback will not be called; the reply, when it comes, is dropped */
void ngx_goim_redis_cancel(ngx_goim_redis_req_t *req);

ngx_goim_redis_conf_t *ngx_goim_redis_conf(void);


/*
 * The comet registry (ngx_goim_comets.c), in place of goim's discovery:
 * comet_<server> holds a node's record with a short TTL, the set
 * "comets" names the servers.
 */
typedef struct {
    ngx_str_t              server;
    ngx_str_t              addr;        /* internal push URL */
    ngx_str_t             *addrs;       /* public addresses */
    ngx_uint_t             naddrs;
    ngx_uint_t             weight;
    ngx_uint_t             conn_count;
    ngx_uint_t             ip_count;
    time_t                 updated;
    time_t                 ttl;         /* 0: not in the record */
} ngx_goim_comet_t;

typedef struct ngx_goim_comets_s  ngx_goim_comets_t;

/* called once, unless cancelled; comets are valid during the call only */
typedef void (*ngx_goim_comets_pt)(ngx_goim_comet_t *comets, ngx_uint_t n,
    const char *err, void *data);

void ngx_goim_comets_register(void);
ngx_goim_comets_t *ngx_goim_comets_fetch(ngx_goim_comets_pt cb, void *data);
void ngx_goim_comets_cancel(ngx_goim_comets_t *f);

/*
 * The next non-empty address of the comma-separated list from *p to last,
 * as goim_public_addrs has them: NGX_OK with *p past it, or NGX_DONE.
 */
ngx_int_t ngx_goim_comets_addr(u_char **p, u_char *last, ngx_str_t *addr);

/* the last error of a Redis command that failed at once */
#define NGX_GOIM_REDIS_DOWN  "not connected"


#endif /* _NGX_GOIM_REDIS_H_INCLUDED_ */
