
/*
 * goim for nginx: types shared by the module's files.
 */

#ifndef _NGX_GOIM_H_INCLUDED_
#define _NGX_GOIM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_core.h"
#include "ngx_goim_registry.h"


#define NGX_GOIM_IOV            64

/* replies past this many times the push bound close the connection */
#define NGX_GOIM_REPLY_FACTOR   2


typedef struct ngx_goim_channel_s  ngx_goim_channel_t;
typedef struct ngx_goim_room_s     ngx_goim_room_t;
typedef struct ngx_goim_mid_s      ngx_goim_mid_t;


/* one entry of a connection's output queue; links come from a free list */
typedef struct ngx_goim_link_s  ngx_goim_link_t;

struct ngx_goim_link_s {
    ngx_goim_link_t       *next;
    ngx_goim_msg_t        *msg;
    ngx_uint_t             reply;       /* a reply, not counted as push */
};


/*
 * A node of the worker's list of all channels; paced broadcasts walk the
 * list with a cursor node of the same type, so channels may come and go
 * while a broadcast is under way.
 */
typedef struct {
    ngx_queue_t            queue;
    ngx_uint_t             cursor;      /* 0: a channel */
} ngx_goim_walk_t;

/* the cursor of a paced broadcast (other walks use 1) */
#define NGX_GOIM_CURSOR_BROADCAST  2


/* a push for another worker, in shared memory */
typedef struct {
    ngx_goim_inbox_msg_t   hdr;         /* first: the registry's part */
    uint32_t               type;
    int32_t                op;
    uint32_t               speed;
    uint32_t               raw;
    uint32_t               ntargets;
    uint32_t               targets_len;
    uint32_t               body_len;
    u_char                 data[1];     /* targets, then the body */
} ngx_goim_imsg_t;


/* a push on its way to sockets: encoded lazily, once per transport */
typedef struct {
    int32_t                op;
    ngx_str_t              body;
    ngx_uint_t             raw;         /* body is already OP_RAW packets */
    ngx_goim_msg_t        *msg[2];      /* by transport */
} ngx_goim_push_t;


struct ngx_goim_room_s {
    ngx_str_node_t         sn;          /* sn.str: the room id */
    ngx_queue_t            members;
    ngx_uint_t             online;      /* members in this worker */

    /*
     * Rate limit (ngx_goim_dispatch.c): the room's schedule, and its last
     * frames until every member has written them.
     */
    ngx_msec_t             due;
    ngx_goim_msg_t        *sending[2];  /* by transport */
    goim_raw_batch_t       batch;
    ngx_event_t            flush;
    u_char                 name[1];
};


struct ngx_goim_mid_s {
    ngx_rbtree_node_t      node;        /* node.key: the mid */
    ngx_queue_t            channels;
};


struct ngx_goim_channel_s {
    ngx_connection_t      *connection;
    void                  *session;     /* stream session, TCP only */
    ngx_goim_conf_t       *conf;

    ngx_str_node_t         key_node;    /* str: key, once authenticated */
    int64_t                mid;
    ngx_goim_mid_t        *mid_node;
    ngx_queue_t            mid_link;
    ngx_goim_room_t       *room;
    ngx_queue_t            room_link;
    ngx_goim_walk_t        all;

    int32_t               *watch;       /* watched ops, malloc'ed */
    ngx_uint_t             nwatch;
    uint32_t               last_online; /* last heartbeat count */
    void                  *redis_req;   /* pending Redis request */
    ngx_msec_t             session_renew;   /* renew after (10-30 min) */
    ngx_msec_t             session_last;
    const char            *close_reason;
    ngx_str_t              last_room;   /* for access logs, at close */

    /* input: bytes of an incomplete packet or frame, malloc'ed */
    u_char                *partial;
    size_t                 partial_len;

    /* WebSocket: frame decoder and a fragmented message being joined */
    goim_ws_reader_t       ws;
    u_char                *ws_msg;
    size_t                 ws_msg_len;

    /* output */
    ngx_goim_link_t       *out;
    ngx_goim_link_t      **out_last;
    size_t                 out_sent;    /* bytes of out->msg written */
    size_t                 out_bytes;
    ngx_uint_t             out_pushes;
    ngx_uint_t             out_replies;
    ngx_uint_t             dropped;

    unsigned               transport:1;
    unsigned               authed:1;
    unsigned               auth_pending:1;
    unsigned               closing:1;   /* close once the queue drained */
    unsigned               ws_close_sent:1;
    unsigned               withdrawn:1; /* out of the shared registry */

    /* the auth packet's ver and seq, echoed when Redis has answered */
    int32_t                auth_ver;
    int32_t                auth_seq;
};



/* channel: lifecycle, input, output (ngx_goim_channel.c) */
ngx_goim_channel_t *ngx_goim_channel_create(ngx_connection_t *c,
    ngx_uint_t transport);
void ngx_goim_channel_start(ngx_goim_channel_t *ch, u_char *pre,
    size_t pre_len);
void ngx_goim_channel_close(ngx_goim_channel_t *ch, const char *reason);
void ngx_goim_channel_fail(ngx_goim_channel_t *ch, ngx_uint_t level,
    uint16_t ws_code, const char *reason);
ngx_int_t ngx_goim_channel_packet(ngx_goim_channel_t *ch,
    goim_packet_t *pkt);
ngx_int_t ngx_goim_channel_reply(ngx_goim_channel_t *ch, int32_t ver,
    int32_t op, int32_t seq, u_char *body, size_t len);
ngx_int_t ngx_goim_channel_push(ngx_goim_channel_t *ch,
    ngx_goim_msg_t *msg);
ngx_int_t ngx_goim_channel_queue(ngx_goim_channel_t *ch,
    ngx_goim_msg_t *msg, ngx_uint_t reply);
ngx_int_t ngx_goim_channel_watches(ngx_goim_channel_t *ch, int32_t op);
void ngx_goim_channel_post_write(ngx_goim_channel_t *ch);
void ngx_goim_channel_resume(ngx_goim_channel_t *ch);

/* transports */
ngx_int_t ngx_goim_client_admit(ngx_connection_t *c);
ngx_int_t ngx_goim_tcp_read(ngx_goim_channel_t *ch, u_char *p, size_t len,
    size_t *used);
ngx_int_t ngx_goim_ws_read(ngx_goim_channel_t *ch, u_char *p, size_t len,
    size_t *used);
void ngx_goim_ws_finalize(ngx_goim_channel_t *ch);
void ngx_goim_tcp_finalize(ngx_goim_channel_t *ch);

/* auth, rooms, watched ops (ngx_goim_auth.c) */
ngx_int_t ngx_goim_auth(ngx_goim_channel_t *ch, goim_packet_t *pkt);
void ngx_goim_auth_unregister(ngx_goim_channel_t *ch);
void ngx_goim_auth_withdraw(ngx_goim_channel_t *ch);
ngx_int_t ngx_goim_room_join(ngx_goim_channel_t *ch, u_char *name,
    size_t len);
void ngx_goim_room_leave(ngx_goim_channel_t *ch);
ngx_goim_room_t *ngx_goim_room_lookup(u_char *name, size_t len);
ngx_goim_channel_t *ngx_goim_key_lookup(u_char *key, size_t len);
ngx_goim_mid_t *ngx_goim_mid_lookup(int64_t mid);

/*
 * Sessions in Redis (ngx_goim_redis.c, ngx_goim_session.c), only when
 * goim_redis is configured.  ngx_goim_session_add() registers an
 * authenticated channel (goim's AddMapping) and calls done(ch, rc) from
 * the event loop later: NGX_OK, or NGX_ERROR when Redis failed or timed
 * out.  A channel closed meanwhile cancels its pending request
 * (ngx_goim_session_cancel, which clears ch->redis_req), and done is
 * not called.
 */
typedef void (*ngx_goim_session_done_pt)(ngx_goim_channel_t *ch,
    ngx_int_t rc);

ngx_uint_t ngx_goim_redis_enabled(void);
ngx_int_t ngx_goim_session_add(ngx_goim_channel_t *ch,
    ngx_goim_session_done_pt done);
void ngx_goim_session_renew(ngx_goim_channel_t *ch);
void ngx_goim_session_del(ngx_goim_channel_t *ch);
void ngx_goim_session_cancel(ngx_goim_channel_t *ch);
void ngx_goim_session_resync(void);

char *ngx_goim_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_goim_redis_timeout_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_goim_session_ttl_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_goim_redis_init(ngx_cycle_t *cycle);
void ngx_goim_redis_exit(ngx_cycle_t *cycle);


/*
 * The node's periodic Redis work (ngx_goim_online.c): one worker, the
 * lease holder, writes this node's room counts (ol_<server>) and comet
 * record (comet_<server>) and publishes the cluster's room counts into
 * the shared zone.
 */
ngx_int_t ngx_goim_online_init(ngx_cycle_t *cycle);
void ngx_goim_online_exit(ngx_cycle_t *cycle);
char *ngx_goim_client_ports_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* inter-worker delivery (ngx_goim_ipc.c) */
ngx_int_t ngx_goim_ipc_init(ngx_cycle_t *cycle);
void ngx_goim_ipc_exit(ngx_cycle_t *cycle);
ngx_int_t ngx_goim_ipc_send(uint64_t mask, ngx_uint_t type,
    ngx_goim_push_t *push, ngx_uint_t speed, ngx_str_t *targets,
    ngx_uint_t ntargets, int64_t *mids);

/* messages and dispatch (ngx_goim_dispatch.c) */
ngx_goim_msg_t *ngx_goim_push_msg(ngx_goim_push_t *push,
    ngx_uint_t transport);
void ngx_goim_push_release(ngx_goim_push_t *push);
ngx_int_t ngx_goim_dispatch_keys(ngx_goim_push_t *push, ngx_str_t *keys,
    ngx_uint_t n);
ngx_int_t ngx_goim_dispatch_mids(ngx_goim_push_t *push, int64_t *mids,
    ngx_uint_t n);
ngx_int_t ngx_goim_dispatch_room(ngx_goim_push_t *push, ngx_str_t *room);
ngx_int_t ngx_goim_dispatch_all(ngx_goim_push_t *push, ngx_uint_t speed);
void ngx_goim_local_keys(ngx_goim_push_t *push, ngx_str_t *keys,
    ngx_uint_t n);
void ngx_goim_local_mids(ngx_goim_push_t *push, int64_t *mids,
    ngx_uint_t n);
void ngx_goim_local_room(ngx_goim_push_t *push, ngx_str_t *name);
ngx_int_t ngx_goim_local_all(ngx_goim_push_t *push, ngx_uint_t speed);
void ngx_goim_local_kick(ngx_str_t *keys, ngx_uint_t n);
void ngx_goim_room_init(ngx_goim_room_t *room);
void ngx_goim_room_flush_pending(ngx_goim_room_t *room);
void ngx_goim_broadcast_catch_up(ngx_goim_channel_t *ch);
void ngx_goim_room_free(ngx_goim_room_t *room);
void ngx_goim_room_held(ngx_goim_msg_t *msg);
ngx_uint_t ngx_goim_ip_count(void);
ngx_uint_t ngx_goim_room_online(ngx_goim_room_t *room);

#define NGX_GOIM_IMSG_KEYS      0
#define NGX_GOIM_IMSG_MIDS      1
#define NGX_GOIM_IMSG_ROOM      2
#define NGX_GOIM_IMSG_ALL       3
#define NGX_GOIM_IMSG_KICK      4

#ifdef _NGX_HTTP_H_INCLUDED_
ngx_int_t ngx_http_goim_ws_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_goim_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_goim_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_goim_internal_handler(ngx_http_request_t *r);
u_char *ngx_http_goim_secret_digest(ngx_http_request_t *r);
#endif


#endif /* _NGX_GOIM_H_INCLUDED_ */
