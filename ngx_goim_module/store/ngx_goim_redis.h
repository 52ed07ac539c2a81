
/*
 * goim for nginx, floor "store": what the node keeps in Redis.  The
 * worker's asynchronous connection (ngx_goim_redis.c, configured in
 * ngx_goim_redis_conf.c), the sessions (ngx_goim_session.c), the comet
 * registry (ngx_goim_comets.c) and the node's periodic pass over online
 * counts (ngx_goim_online.c), all in goim's layout (docs/PROTOCOL.md 3).
 * The Kafka producer is in ngx_goim_kafka.h.
 */

#ifndef _NGX_GOIM_REDIS_H_INCLUDED_
#define _NGX_GOIM_REDIS_H_INCLUDED_


#include "ngx_goim_core.h"
#include "ngx_goim_registry.h"
#include "ngx_goim_connection.h"

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

/* the connection was made; after_loss: made again after a loss */
typedef void (*ngx_goim_redis_connect_pt)(ngx_uint_t after_loss);


/* the last error of a Redis command that failed at once */
#define NGX_GOIM_REDIS_DOWN  "not connected"


/* the configuration (ngx_goim_redis_conf.c) */
char *ngx_goim_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_goim_redis_timeout_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_goim_session_ttl_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_goim_redis_conf_t *ngx_goim_redis_conf(void);

/* the connection (ngx_goim_redis.c) */
ngx_int_t ngx_goim_redis_init(ngx_cycle_t *cycle);
void ngx_goim_redis_exit(ngx_cycle_t *cycle);

/* handlers run in the order they were added, on every connect */
ngx_int_t ngx_goim_redis_on_connect(ngx_goim_redis_connect_pt handler);

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

void ngx_goim_comets_init(void);
void ngx_goim_comets_register(void);
ngx_goim_comets_t *ngx_goim_comets_fetch(ngx_goim_comets_pt cb, void *data);
void ngx_goim_comets_cancel(ngx_goim_comets_t *f);

/* this node's record, as ngx_goim_comets_register() writes it */
ngx_int_t ngx_goim_comets_self(ngx_pool_t *pool, ngx_goim_comet_t *c);

/*
 * The next non-empty address of the comma-separated list from *p to last,
 * as goim_public_addrs has them: NGX_OK with *p past it, or NGX_DONE.
 */
ngx_int_t ngx_goim_comets_addr(u_char **p, u_char *last, ngx_str_t *addr);


/*
 * Sessions (ngx_goim_session.c), only in the Redis modes.
 * ngx_goim_session_add() registers an authenticated channel (goim's
 * AddMapping) and calls done(ch, rc) from the event loop later: NGX_OK,
 * or NGX_ERROR when Redis failed or timed out.  A channel closed
 * meanwhile cancels its pending request (ngx_goim_session_cancel, which
 * clears ch->redis_req), and done is not called.
 */
typedef void (*ngx_goim_session_done_pt)(ngx_goim_channel_t *ch,
    ngx_int_t rc);

void ngx_goim_session_init(void);
ngx_int_t ngx_goim_session_add(ngx_goim_channel_t *ch,
    ngx_goim_session_done_pt done);
void ngx_goim_session_renew(ngx_goim_channel_t *ch);
void ngx_goim_session_del(ngx_goim_channel_t *ch);
void ngx_goim_session_cancel(ngx_goim_channel_t *ch);


/*
 * A member's stream offline_<mid> read at auth (ngx_goim_offline.c,
 * docs/PROTOCOL.md 1.16): done(data, err, epoch, offset, msgs, n) with
 * the stream's last id (epoch 0: no stream) and the messages after the
 * position asked for, oldest first, valid during the call only; err set
 * when Redis failed or answered an error.
 */
typedef struct ngx_goim_offline_s  ngx_goim_offline_t;

typedef struct {
    uint64_t               epoch;
    uint64_t               offset;
    int32_t                op;
    ngx_str_t              body;
} ngx_goim_offline_msg_t;

typedef void (*ngx_goim_offline_pt)(void *data, const char *err,
    uint64_t epoch, uint64_t offset, ngx_goim_offline_msg_t *msgs,
    ngx_uint_t n);

ngx_goim_offline_t *ngx_goim_offline_read(ngx_pool_t *pool, int64_t mid,
    uint64_t epoch, uint64_t offset, ngx_uint_t count,
    ngx_goim_offline_pt done, void *data, const char **err);
void ngx_goim_offline_cancel(ngx_goim_offline_t *o);


/*
 * The node's periodic Redis work (ngx_goim_online.c): one worker, the
 * lease holder, writes this node's room counts (ol_<server>) and comet
 * record (comet_<server>) and publishes the cluster's room counts into
 * the shared zone.
 */
ngx_int_t ngx_goim_online_init(ngx_cycle_t *cycle);
void ngx_goim_online_exit(ngx_cycle_t *cycle);


/*
 * Presence in Redis (ngx_goim_presence.c), with goim_presence in the
 * Redis modes: a channel joins or leaves a room; the lease holder renews
 * the node's rooms.
 */
ngx_int_t ngx_goim_presence_init(ngx_cycle_t *cycle);
void ngx_goim_presence_exit(ngx_cycle_t *cycle);
void ngx_goim_presence_add(ngx_goim_channel_t *ch, ngx_str_t *room);
void ngx_goim_presence_del(ngx_goim_channel_t *ch, ngx_str_t *room);
void ngx_goim_presence_resync(ngx_goim_channel_t *ch);
void ngx_goim_presence_departed(ngx_str_t *room, ngx_str_t *key, int64_t mid,
    ngx_uint_t again);

/* the floor's init and exit, in order (ngx_goim_store.c) */
ngx_int_t ngx_goim_store_init(ngx_cycle_t *cycle);
void ngx_goim_store_exit(ngx_cycle_t *cycle);


#endif /* _NGX_GOIM_REDIS_H_INCLUDED_ */
