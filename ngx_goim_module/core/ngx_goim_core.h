
/*
 * goim for nginx, floor "core": what every floor of the module shares.
 * The configuration, the node's mode, the counters of a worker, the
 * encoded messages that socket queues share, and small helpers.  Calls
 * nothing of the module above it (docs/ARCHITECTURE.md).
 */

#ifndef _NGX_GOIM_CORE_H_INCLUDED_
#define _NGX_GOIM_CORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <goim_packet.h>
#include <goim_ws.h>


#define NGX_GOIM_TCP            0
#define NGX_GOIM_WS             1

#define NGX_GOIM_MAX_WATCH      64
#define NGX_GOIM_MAX_ROOM       256
#define NGX_GOIM_MAX_ROOMS      256     /* goim_max_rooms at most */

/* registry slots, all generations: the bound of goim_worker_slots */
#define NGX_GOIM_MAX_WORKERS    1024


/*
 * A fan-out walks thousands of channels, each in its own memory: the
 * next ones are asked for while this one is served.  A hint only; it
 * never faults, whatever the address.
 */
#if (__GNUC__ || __clang__)
#define ngx_goim_prefetch(p)    __builtin_prefetch(p)
#else
#define ngx_goim_prefetch(p)
#endif


typedef struct ngx_goim_redis_conf_s  ngx_goim_redis_conf_t;
typedef struct ngx_goim_kafka_conf_s  ngx_goim_kafka_conf_t;


/*
 * How the node works, decided once from the configuration: embedded
 * (no Redis), with Redis (sessions, online counts, the comet registry),
 * or with Redis and Kafka (pushes go through Kafka and the job).
 */
typedef enum {
    NGX_GOIM_EMBEDDED = 0,
    NGX_GOIM_REDIS,
    NGX_GOIM_KAFKA
} ngx_goim_mode_e;


/* main-context configuration (the core module, entry/) */
typedef struct {
    ngx_msec_t             handshake_timeout;
    ngx_msec_t             heartbeat;
    ngx_uint_t             heartbeat_max;
    size_t                 max_body;
    ngx_uint_t             queue_packets;
    size_t                 queue_bytes;
    ngx_str_t              server_id;
    ngx_shm_zone_t        *zone;
    ngx_uint_t             worker_slots;    /* a multiple of 64 */
    ngx_uint_t             inbox_size;
    ngx_msec_t             room_flush;
    ngx_uint_t             max_rooms;       /* per connection */
    ngx_flag_t             presence;        /* who is in a room, listed */
    ngx_uint_t             presence_events; /* a room's per second, 0 off */
    ngx_msec_t             shutdown_drain;
    ngx_uint_t             max_clients;     /* per worker */
    ngx_flag_t             io_uring;        /* sends batched (connection/) */
    ngx_str_t              auth_secret;     /* HS256 key, empty: plain */

    /* goim_history (registry/ngx_goim_registry_history.c); 0: off */
    ngx_uint_t             history_size;    /* messages per room */
    time_t                 history_ttl;     /* seconds */
    ngx_flag_t             history_members; /* members' streams */

    /* goim_redis and friends (store/ngx_goim_redis.c); NULL: not used */
    ngx_goim_redis_conf_t *redis;

    /* goim_kafka, goim_kafka_option (store/ngx_goim_kafka.c) */
    ngx_goim_kafka_conf_t *kafka;

    /* online counts and the comet registry (store/ngx_goim_online.c) */
    ngx_msec_t             online_interval;
    time_t                 registry_ttl;
    ngx_str_t              internal_url;
    ngx_uint_t             weight;
    ngx_str_t              public_addrs;    /* "a,b" */
    ngx_str_t              domain;
    ngx_int_t              client_ports[3]; /* tcp, ws, wss */

    ngx_goim_mode_e        mode;
} ngx_goim_conf_t;


/*
 * Counters of one worker, kept in its registry slot so that the status
 * page of any worker reports all of them.  One writer each: no locks.
 * The layout is part of the shared zone's (registry/).
 */
typedef struct {
    ngx_atomic_uint_t      conns[2];    /* by transport, open now */
    ngx_atomic_uint_t      clients_refused;     /* goim_max_clients */
    ngx_atomic_uint_t      rooms;       /* rooms with members here */
    ngx_atomic_uint_t      auth_ok;
    ngx_atomic_uint_t      auth_failed;
    ngx_atomic_uint_t      push_keys;
    ngx_atomic_uint_t      push_mids;
    ngx_atomic_uint_t      push_room;
    ngx_atomic_uint_t      push_all;
    ngx_atomic_uint_t      messages_out;
    ngx_atomic_uint_t      bytes_out;
    ngx_atomic_uint_t      writes_send;     /* send() or writev() calls */
    ngx_atomic_uint_t      writes_uring;    /* sends made through io_uring */
    ngx_atomic_uint_t      uring_submits;   /* io_uring_enter() calls */
    ngx_atomic_uint_t      drop_queue_full;
    ngx_atomic_uint_t      drop_inbox_full;
    ngx_atomic_uint_t      room_batches;
    ngx_atomic_uint_t      presence_events;     /* join/leave sent */
    ngx_atomic_uint_t      presence_dropped;    /* over the room's rate */
    ngx_atomic_uint_t      redis_up;    /* the worker's Redis connection */
    ngx_atomic_uint_t      redis_commands;
    ngx_atomic_uint_t      redis_failed;    /* error, dropped, not sent */
    ngx_atomic_uint_t      redis_timeouts;
    ngx_atomic_uint_t      redis_latency_ms;    /* sum over replies */
    ngx_atomic_uint_t      kafka_up;    /* a broker of the producer is up */
    ngx_atomic_uint_t      kafka_produced;
    ngx_atomic_uint_t      kafka_acked;
    ngx_atomic_uint_t      kafka_failed;        /* delivery failed */
    ngx_atomic_uint_t      kafka_queue_full;    /* refused locally: 503 */
    ngx_atomic_uint_t      kafka_in_flight;
    ngx_atomic_uint_t      kafka_latency_ms;    /* sum over acks */
    ngx_atomic_uint_t      internal_requests;   /* goim_internal_push */
    ngx_atomic_uint_t      internal_pushes;     /* requests' items */
    ngx_atomic_uint_t      internal_forbidden;  /* wrong secret: 403 */
    ngx_atomic_uint_t      internal_invalid;    /* bad body: 400 */
    ngx_atomic_uint_t      recover_ok;          /* rooms recovered */
    ngx_atomic_uint_t      recover_failed;      /* epoch, too old, bad */
    ngx_atomic_uint_t      recover_messages;    /* messages sent again */
} ngx_goim_stats_t;


/*
 * This worker process: its registry slot (set by registry/ when it
 * attaches) and its counters, in the slot once attached.
 */
typedef struct {
    ngx_int_t              widx;        /* -1: not attached */
    ngx_uint_t             wgen;
    ngx_goim_stats_t      *stats;
    ngx_goim_stats_t       local_stats;

} ngx_goim_worker_t;


/*
 * An encoded message shared by every socket queue that sends it: framed
 * once per transport, freed when the last user released it.  A holder
 * (a room that sends the frame) keeps one reference and is told through
 * ngx_goim_msg_holder_handler when it is the last user left.
 */
typedef struct ngx_goim_msg_s  ngx_goim_msg_t;

typedef void (*ngx_goim_msg_holder_pt)(ngx_goim_msg_t *msg);

struct ngx_goim_msg_s {
    ngx_uint_t             refs;
    size_t                 len;
    void                  *holder;      /* e.g. the room writing it */
    u_char                 data[1];
};


/* the module objects (entry/): lower floors use them to find their conf */
extern ngx_module_t        ngx_goim_module;
extern ngx_module_t        ngx_http_goim_module;
extern ngx_module_t        ngx_stream_goim_module;

extern ngx_goim_worker_t   ngx_goim_worker;


ngx_goim_conf_t *ngx_goim_get_conf(ngx_cycle_t *cycle);
ngx_goim_mode_e ngx_goim_mode(void);
void ngx_goim_core_init(void);

/*
 * An event that is not a connection's: its data points to a dummy
 * connection (fd -1), as nginx's debug log reads ev->data as one.
 */
void ngx_goim_event_init(ngx_event_t *ev, ngx_event_handler_pt handler,
    ngx_log_t *log, ngx_uint_t cancelable);

/* a node of a tree of strings keyed by their CRC32 */
ngx_str_node_t *ngx_goim_str_lookup(ngx_rbtree_t *tree, u_char *s,
    size_t len);
void ngx_goim_uuid4(u_char *dst);
ngx_int_t ngx_goim_parse_ops(u_char *p, size_t len, int32_t *ops,
    ngx_uint_t max, ngx_uint_t *n);

/* chained hash tables of strings by CRC32 (ngx_goim_hash.c) */
typedef struct ngx_goim_hnode_s  ngx_goim_hnode_t;

struct ngx_goim_hnode_s {
    ngx_goim_hnode_t      *next;
    ngx_str_t              str;
    uint32_t               hash;        /* ngx_crc32_long() of str */
};

typedef struct {
    ngx_goim_hnode_t     **buckets;
    ngx_uint_t             mask;        /* buckets - 1, a power of two */
    ngx_uint_t             n;
} ngx_goim_hash_t;

void ngx_goim_hash_init(ngx_goim_hash_t *h, ngx_goim_hnode_t **buckets,
    ngx_uint_t size);
ngx_goim_hnode_t *ngx_goim_hash_find(ngx_goim_hash_t *h, u_char *s,
    size_t len, uint32_t hash);
void ngx_goim_hash_insert(ngx_goim_hash_t *h, ngx_goim_hnode_t *node);
void ngx_goim_hash_delete(ngx_goim_hash_t *h, ngx_goim_hnode_t *node);
void ngx_goim_hash_move(ngx_goim_hash_t *h, ngx_goim_hnode_t **buckets,
    ngx_uint_t size);
ngx_goim_hnode_t *ngx_goim_hash_next(ngx_goim_hash_t *h,
    ngx_goim_hnode_t *node);
ngx_uint_t ngx_goim_hash_size(size_t n, ngx_uint_t min);

/* messages (ngx_goim_msg.c) */
ngx_goim_msg_t *ngx_goim_msg_alloc(size_t len);
void ngx_goim_msg_release(ngx_goim_msg_t *msg);
ngx_goim_msg_t *ngx_goim_msg_packet(ngx_uint_t transport, int32_t ver,
    int32_t op, int32_t seq, u_char *body, size_t len);
void ngx_goim_msg_set_holder_handler(ngx_goim_msg_holder_pt handler);

#ifdef _NGX_HTTP_H_INCLUDED_
/* a whole response: one buffer, b->pos to b->last, as the body */
ngx_int_t ngx_goim_http_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b);
#endif


#endif /* _NGX_GOIM_CORE_H_INCLUDED_ */
