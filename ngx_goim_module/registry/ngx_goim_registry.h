
/*
 * goim for nginx, floor "registry": the shared zone that every worker
 * process of every generation attaches to.  It names the workers that
 * hold each key, mid and room, carries the workers' inboxes and the
 * node's shared state (the lease of the periodic Redis work, the
 * cluster's online counts, the known comets, the sessions' state after
 * a Redis restart), and keeps each worker's counters.
 *
 * The slab pool's mutex is taken and released inside this floor; the
 * master releases it when its holder dies.  Counters are exposed as
 * data; rendering them is the status page's business (logic/).
 */

#ifndef _NGX_GOIM_REGISTRY_H_INCLUDED_
#define _NGX_GOIM_REGISTRY_H_INCLUDED_


#include "ngx_goim_core.h"


/*
 * The start of every message put in an inbox (the inter-worker layout
 * of ipc/ follows it): the registry frees a message by its references
 * when a dead worker's inbox is purged, and the status page reports the
 * age of the oldest one.
 */
typedef struct {
    ngx_atomic_t           refs;
    ngx_msec_t             time;        /* queued at (monotonic) */
} ngx_goim_inbox_msg_t;


/* presence (ngx_goim_registry_presence.c): a connection in a room */
#define GOIM_PRESENCE_PLATFORM  32

typedef struct ngx_goim_shm_presence_s  ngx_goim_shm_presence_t;

typedef struct {
    uint64_t               seq;         /* the listing's cursor */
    int64_t                mid;
    ngx_str_t              key;
    ngx_str_t              platform;
    time_t                 since;
    ngx_pid_t              pid;         /* of the worker holding it */
} ngx_goim_presence_member_t;

typedef struct {
    ngx_uint_t             connections;
    ngx_uint_t             members;     /* distinct mids above 0 */
} ngx_goim_presence_stats_t;


/* one live worker, as the status page shows it */
typedef struct {
    ngx_uint_t             slot;
    ngx_pid_t              pid;
    ngx_uint_t             connections; /* keys registered */
    ngx_uint_t             inbox_depth;
    ngx_msec_t             inbox_age;   /* of the oldest message */
    ngx_goim_stats_t       stats;
} ngx_goim_registry_worker_t;


typedef struct {
    ngx_uint_t                  n;
    ngx_goim_registry_worker_t  workers[NGX_GOIM_MAX_WORKERS];
    size_t                      used;   /* bytes of the zone */
    size_t                      total;
} ngx_goim_registry_snapshot_t;


/* a room message's position (docs/PROTOCOL.md 1.15) */
typedef struct {
    uint64_t               epoch;       /* the zone's */
    uint64_t               gen;         /* the room history's */
    uint64_t               offset;
    uint32_t               stream;      /* the room's stream id, 2-65535 */
} ngx_goim_history_pos_t;

/* a room history's stream id, in its messages' inner ver: 0, 1 are goim's */
#define NGX_GOIM_HISTORY_STREAM_MIN  2
#define NGX_GOIM_HISTORY_STREAM_MAX  65535

/* "<16 hex digits>-<decimal>" */
#define NGX_GOIM_EPOCH_LEN  (16 + 1 + NGX_INT64_LEN)

#define NGX_GOIM_RECOVER_NONE    0    /* a position only */
#define NGX_GOIM_RECOVER_OK      1
#define NGX_GOIM_RECOVER_EPOCH   2    /* another history */
#define NGX_GOIM_RECOVER_GONE    3    /* older than the history */
#define NGX_GOIM_RECOVER_FUTURE  4    /* past the last message */
#define NGX_GOIM_RECOVER_NOSTREAM 5   /* no stream id free: no history */

typedef struct {
    ngx_uint_t             status;
    ngx_goim_history_pos_t pos;         /* the room's now: the seam */
    uint64_t               first;       /* the oldest message kept */
    uint64_t               last;        /* the last one in buf */
    u_char                *buf;         /* inner packets, ngx_alloc'ed */
    size_t                 len;
    ngx_uint_t             n;
} ngx_goim_history_read_t;

typedef struct {
    ngx_uint_t             rooms;
    ngx_uint_t             messages;
    size_t                 bytes;
    ngx_uint_t             evicted;
    ngx_uint_t             expired;
    ngx_uint_t             nostream;
} ngx_goim_history_stats_t;


/* the zone (ngx_goim_registry_zone.c) */
char *ngx_goim_registry_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_goim_registry_zone_default(ngx_cycle_t *cycle,
    ngx_goim_conf_t *gcf);

/* this worker's slot, dead workers (ngx_goim_registry_slots.c) */
ngx_int_t ngx_goim_registry_attach(ngx_cycle_t *cycle);
void ngx_goim_registry_detach(ngx_cycle_t *cycle);
void ngx_goim_registry_purge_dead(ngx_log_t *log);
uint64_t ngx_goim_registry_live_mask(void);
void ngx_goim_registry_totals(ngx_uint_t *conns, ngx_uint_t *ips);
void ngx_goim_registry_set_ips(ngx_uint_t ips);
void ngx_goim_registry_snapshot(ngx_goim_registry_snapshot_t *s);

/* keys, mids and rooms (ngx_goim_registry_index.c) */
ngx_int_t ngx_goim_registry_key_add(ngx_str_t *key, uint32_t hash,
    ngx_int_t *owner);
void ngx_goim_registry_key_del(ngx_str_t *key, uint32_t hash);
ngx_int_t ngx_goim_registry_key_owner(u_char *key, size_t len);
void ngx_goim_registry_mid_set(int64_t mid, ngx_uint_t on);
uint64_t ngx_goim_registry_mid_mask(int64_t mid);
void ngx_goim_registry_room_count(ngx_str_t *name, uint32_t hash,
    ngx_int_t delta);
uint64_t ngx_goim_registry_room_mask(u_char *name, size_t len);
ngx_uint_t ngx_goim_registry_room_total(u_char *name, size_t len);
ngx_int_t ngx_goim_registry_room_list(ngx_pool_t *pool, ngx_str_t **names,
    ngx_uint_t **counts, ngx_uint_t *n);

/* who is in a room (ngx_goim_registry_presence.c) */
ngx_goim_shm_presence_t *ngx_goim_registry_presence_add(ngx_str_t *room,
    uint32_t hash, ngx_str_t *key, int64_t mid, ngx_str_t *platform);
void ngx_goim_registry_presence_del(ngx_goim_shm_presence_t *p);
ngx_int_t ngx_goim_registry_presence_list(ngx_pool_t *pool, ngx_str_t *room,
    uint64_t cursor, ngx_uint_t max, ngx_goim_presence_member_t **out,
    ngx_uint_t *n, uint64_t *next, ngx_goim_presence_stats_t *stats);
void ngx_goim_registry_presence_stats(ngx_str_t *room,
    ngx_goim_presence_stats_t *stats);
ngx_int_t ngx_goim_registry_presence_rooms(ngx_pool_t *pool,
    ngx_str_t **names, ngx_uint_t *n);

/* messages between workers (ngx_goim_registry_inbox.c) */
ngx_goim_inbox_msg_t *ngx_goim_registry_msg_alloc(size_t size,
    const char *what);
void ngx_goim_registry_msg_release(ngx_goim_inbox_msg_t *m);
ngx_uint_t ngx_goim_registry_inbox_put(uint64_t mask,
    ngx_goim_inbox_msg_t *m, ngx_pid_t *wake, ngx_uint_t *nwake);
ngx_uint_t ngx_goim_registry_inbox_take(void **msgs, ngx_uint_t max);

/* room histories (ngx_goim_registry_history.c) */
char *ngx_goim_registry_history_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_uint_t ngx_goim_registry_history_on(void);
ngx_int_t ngx_goim_registry_history_put(ngx_str_t *room, int32_t op,
    ngx_str_t *body, ngx_goim_inbox_msg_t *m, u_char *pos_at,
    ngx_goim_history_pos_t *pos, ngx_pid_t *wake, ngx_uint_t *nwake,
    ngx_uint_t *self);
ngx_int_t ngx_goim_registry_history_recover(u_char *name, size_t len,
    ngx_goim_history_pos_t *since, ngx_uint_t limit, ngx_uint_t create,
    ngx_goim_history_read_t *r);
void ngx_goim_registry_history_expire(void);
void ngx_goim_registry_history_stats(ngx_goim_history_stats_t *s);
u_char *ngx_goim_registry_epoch_print(u_char *p, ngx_goim_history_pos_t *pos);
ngx_int_t ngx_goim_registry_epoch_parse(u_char *s, size_t len,
    ngx_goim_history_pos_t *pos);

/* the node's shared state (ngx_goim_registry_node.c) */
ngx_uint_t ngx_goim_registry_lease(ngx_msec_t ttl);
void ngx_goim_registry_lease_release(void);
ngx_int_t ngx_goim_registry_online_publish(ngx_str_t *names,
    ngx_uint_t *counts, ngx_uint_t n, time_t expires);
ngx_int_t ngx_goim_registry_online_get(u_char *name, size_t len,
    ngx_uint_t *count);
ngx_int_t ngx_goim_registry_online_list(ngx_pool_t *pool, ngx_str_t **names,
    ngx_uint_t **counts, ngx_uint_t *n);
ngx_uint_t ngx_goim_registry_online_count(u_char *name, size_t len);
void ngx_goim_registry_sessions_dirty(void);
ngx_uint_t ngx_goim_registry_sessions_clean(void);
ngx_uint_t ngx_goim_registry_sessions_ready(void);
void ngx_goim_registry_comet_seen(u_char *id, size_t len, time_t expires);
ngx_int_t ngx_goim_registry_comets_alive(ngx_pool_t *pool, ngx_str_t **ids,
    ngx_uint_t *n);


#endif /* _NGX_GOIM_REGISTRY_H_INCLUDED_ */
