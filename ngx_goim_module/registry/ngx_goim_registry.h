
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
 * A set of registry slots, as a push routes by them.  The zone has
 * ngx_goim_mask_words words of slots (goim_worker_slots / 64, known once
 * this worker attached): up to 64 slots a mask is one word, as before
 * the slots grew, and the operations touch only the zone's words.
 */
#define NGX_GOIM_MASK_WORDS    (NGX_GOIM_MAX_WORKERS / 64)

typedef struct {
    uint64_t               w[NGX_GOIM_MASK_WORDS];
} ngx_goim_mask_t;


extern ngx_uint_t          ngx_goim_mask_words;


static ngx_inline void
ngx_goim_mask_zero(ngx_goim_mask_t *m)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_goim_mask_words; i++) {
        m->w[i] = 0;
    }
}


static ngx_inline void
ngx_goim_mask_set(ngx_goim_mask_t *m, ngx_uint_t slot)
{
    m->w[slot >> 6] |= (uint64_t) 1 << (slot & 63);
}


static ngx_inline void
ngx_goim_mask_clear(ngx_goim_mask_t *m, ngx_uint_t slot)
{
    m->w[slot >> 6] &= ~((uint64_t) 1 << (slot & 63));
}


static ngx_inline ngx_uint_t
ngx_goim_mask_test(ngx_goim_mask_t *m, ngx_uint_t slot)
{
    return (m->w[slot >> 6] >> (slot & 63)) & 1;
}


static ngx_inline ngx_uint_t
ngx_goim_mask_count(ngx_goim_mask_t *m)
{
    ngx_uint_t  i, n;

    n = 0;

    for (i = 0; i < ngx_goim_mask_words; i++) {
        n += __builtin_popcountll(m->w[i]);
    }

    return n;
}


/* the first slot at or after "from" in the mask, or -1 */

static ngx_inline ngx_int_t
ngx_goim_mask_next(ngx_goim_mask_t *m, ngx_uint_t from)
{
    uint64_t    w;
    ngx_uint_t  i;

    for (i = from >> 6; i < ngx_goim_mask_words; i++) {
        w = m->w[i];

        if (i == from >> 6) {
            w &= ~(uint64_t) 0 << (from & 63);
        }

        if (w) {
            return (ngx_int_t) (i * 64 + __builtin_ctzll(w));
        }
    }

    return -1;
}


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
#define GOIM_PRESENCE_ROOM      NGX_GOIM_MAX_ROOM
#define GOIM_PRESENCE_KEY       255     /* a record's key_len is a byte */

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

/* a membership of a dead worker's connection, its leave to be told */
typedef struct {
    int64_t                mid;
    size_t                 room_len;
    size_t                 key_len;
    u_char                 room[GOIM_PRESENCE_ROOM];
    u_char                 key[GOIM_PRESENCE_KEY];
} ngx_goim_presence_departed_t;


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
    ngx_goim_registry_worker_t *workers;    /* one per slot in use */
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

/*
 * A room's count as a heartbeat answers it, kept by the caller
 * (ngx_goim_registry_online_cached()): good while no room count of the
 * node changed and the cluster's counts it came from have not expired.
 */
typedef struct {
    ngx_atomic_uint_t      gen;         /* the node's counts' generation */
    time_t                 until;       /* the cluster's counts expire */
    ngx_uint_t             count;
} ngx_goim_online_cache_t;

typedef struct {
    ngx_uint_t             rooms;
    ngx_uint_t             messages;
    size_t                 bytes;
    ngx_uint_t             evicted;
    ngx_uint_t             expired;
    ngx_uint_t             nostream;
    ngx_uint_t             duplicates;
    ngx_uint_t             resent;
    ngx_uint_t             unresent;
} ngx_goim_history_stats_t;


/* the zone (ngx_goim_registry_zone.c) */
char *ngx_goim_registry_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_goim_registry_zone_default(ngx_cycle_t *cycle,
    ngx_goim_conf_t *gcf);
ngx_int_t ngx_goim_registry_slots_conf(ngx_cycle_t *cycle,
    ngx_goim_conf_t *gcf);

/* this worker's slot, dead workers (ngx_goim_registry_slots.c) */
ngx_int_t ngx_goim_registry_attach(ngx_cycle_t *cycle);
void ngx_goim_registry_detach(ngx_cycle_t *cycle);
void ngx_goim_registry_purge_dead(ngx_log_t *log);
void ngx_goim_registry_live_mask(ngx_goim_mask_t *mask);
void ngx_goim_registry_totals(ngx_uint_t *conns, ngx_uint_t *ips);
void ngx_goim_registry_set_ips(ngx_uint_t ips);
ngx_int_t ngx_goim_registry_snapshot(ngx_pool_t *pool,
    ngx_goim_registry_snapshot_t *s);

/* keys, mids and rooms (ngx_goim_registry_index.c) */
ngx_int_t ngx_goim_registry_key_add(ngx_str_t *key, uint32_t hash,
    ngx_int_t *owner);
void ngx_goim_registry_key_del(ngx_str_t *key, uint32_t hash);
ngx_int_t ngx_goim_registry_key_owner(u_char *key, size_t len);
void ngx_goim_registry_mid_set(int64_t mid, ngx_uint_t on);
/* these two add the slots holding the mid or the room to *mask */
void ngx_goim_registry_mid_mask(int64_t mid, ngx_goim_mask_t *mask);
void ngx_goim_registry_room_count(ngx_str_t *name, uint32_t hash,
    ngx_int_t delta);
void ngx_goim_registry_room_mask(u_char *name, size_t len,
    ngx_goim_mask_t *mask);
ngx_int_t ngx_goim_registry_room_list(ngx_pool_t *pool, ngx_str_t **names,
    ngx_uint_t **counts, ngx_uint_t *n);

/* who is in a room (ngx_goim_registry_presence.c) */
ngx_goim_shm_presence_t *ngx_goim_registry_presence_add(ngx_str_t *room,
    uint32_t hash, ngx_str_t *key, int64_t mid, ngx_str_t *platform);
void ngx_goim_registry_presence_del(ngx_goim_shm_presence_t *p);
void ngx_goim_registry_presence_get(ngx_goim_shm_presence_t *p,
    ngx_str_t *room, time_t *since, ngx_uint_t *mids);
ngx_int_t ngx_goim_registry_presence_list(ngx_pool_t *pool, ngx_str_t *room,
    uint64_t cursor, ngx_uint_t max, ngx_goim_presence_member_t **out,
    ngx_uint_t *n, uint64_t *next, ngx_goim_presence_stats_t *stats);
void ngx_goim_registry_presence_stats(ngx_str_t *room,
    ngx_goim_presence_stats_t *stats);
ngx_int_t ngx_goim_registry_presence_rooms(ngx_pool_t *pool,
    ngx_str_t **names, ngx_uint_t *n);
ngx_uint_t ngx_goim_registry_presence_departed(
    ngx_goim_presence_departed_t *out, ngx_uint_t max);

/* messages between workers (ngx_goim_registry_inbox.c) */
ngx_goim_inbox_msg_t *ngx_goim_registry_msg_alloc(size_t size,
    const char *what);
void ngx_goim_registry_msg_release(ngx_goim_inbox_msg_t *m);
ngx_uint_t ngx_goim_registry_inbox_put(ngx_goim_mask_t *mask,
    ngx_goim_inbox_msg_t *m, ngx_pid_t *wake, ngx_uint_t *nwake);
ngx_uint_t ngx_goim_registry_inbox_take(void **msgs, ngx_uint_t max);

/* room histories (ngx_goim_registry_history.c) */
#define NGX_GOIM_MEMBER_ROOM      "mid://"
#define NGX_GOIM_MEMBER_ROOM_LEN  (sizeof(NGX_GOIM_MEMBER_ROOM) - 1       \
                                   + NGX_INT64_LEN)
/*
 * with goim_redis, the stream id of every member's stream in Redis, in
 * its messages' inner ver (docs/PROTOCOL.md 1.16): a room history's are
 * 2-65535, goim's ver is 1
 */
#define NGX_GOIM_MEMBER_STREAM    0
char *ngx_goim_registry_history_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_uint_t ngx_goim_registry_history_on(void);
ngx_uint_t ngx_goim_registry_member_history_on(void);
ngx_uint_t ngx_goim_registry_member_stream_on(void);
/* "mid://<mid>", in buf of NGX_GOIM_MEMBER_ROOM_LEN bytes */
void ngx_goim_registry_member_room(int64_t mid, u_char *buf,
    ngx_str_t *name);
/* a member's room (with members=on): no client joins or leaves it */
ngx_uint_t ngx_goim_registry_is_member_room(u_char *id, size_t len);
ngx_int_t ngx_goim_registry_history_put(ngx_str_t *room, int32_t op,
    ngx_str_t *body, ngx_goim_inbox_msg_t *m, u_char *pos_at,
    ngx_goim_history_pos_t *given, ngx_goim_history_pos_t *pos,
    ngx_pid_t *wake, ngx_uint_t *nwake, ngx_uint_t *self);
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
ngx_uint_t ngx_goim_registry_online_cached(u_char *name, size_t len,
    ngx_goim_online_cache_t *cache);
void ngx_goim_registry_sessions_dirty(void);
ngx_uint_t ngx_goim_registry_sessions_clean(void);
ngx_uint_t ngx_goim_registry_sessions_ready(void);
void ngx_goim_registry_comet_seen(u_char *id, size_t len, time_t expires);
ngx_int_t ngx_goim_registry_comets_alive(ngx_pool_t *pool, ngx_str_t **ids,
    ngx_uint_t *n);


#endif /* _NGX_GOIM_REGISTRY_H_INCLUDED_ */
