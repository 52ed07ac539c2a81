
/*
 * goim for nginx: the layout of the shared zone, for the registry's own
 * files only.  Old and new workers share one zone across a reload:
 * NGX_GOIM_SHM_VERSION changes with any change of this layout, of the
 * counters (ngx_goim_stats_t) or of the inbox messages.
 */

#ifndef _NGX_GOIM_REGISTRY_SHM_H_INCLUDED_
#define _NGX_GOIM_REGISTRY_SHM_H_INCLUDED_


#include "ngx_goim_registry.h"


#define NGX_GOIM_SHM_MAGIC    0x676f696d     /* "goim" */
#define NGX_GOIM_SHM_VERSION  13

#define NGX_GOIM_SHM_COMETS   256
#define NGX_GOIM_SHM_COMET_ID 128


typedef struct {
    ngx_pid_t              pid;         /* 0: free */
    ngx_uint_t             gen;         /* claim stamp */
    ngx_uint_t             connections;
    ngx_uint_t             ips;         /* distinct client addresses */
    ngx_goim_stats_t       stats;
    ngx_uint_t             inbox_size;
    ngx_uint_t             inbox_head;
    ngx_uint_t             inbox_tail;
    void                 **inbox;       /* ring of ngx_goim_inbox_msg_t */
} ngx_goim_shm_worker_t;


/* a comet of the registry this node saw, in ngx_goim_shm_t.comets */
typedef struct {
    time_t                 expires;     /* wall clock; 0: a free entry */
    size_t                 len;
    u_char                 id[NGX_GOIM_SHM_COMET_ID];
} ngx_goim_shm_comet_t;


/* a room message kept for recovery (ngx_goim_registry_history.c) */
typedef struct {
    uint64_t               offset;
    time_t                 time;
    int32_t                op;
    uint32_t               len;
    u_char                 data[1];
} ngx_goim_shm_hmsg_t;


/*
 * The workers that have not had a kept message of the job's yet: their
 * inbox was full, or they missed one before it.  The job sends the
 * message again (it got a 503) with the same offset.
 */
typedef struct ngx_goim_shm_hmiss_s  ngx_goim_shm_hmiss_t;

struct ngx_goim_shm_hmiss_s {
    ngx_goim_shm_hmiss_t  *next;        /* the next offset missed */
    uint64_t               offset;
    ngx_goim_mask_t        slots;       /* ngx_goim_mask_words words */
};


/* a room's history: a ring of its last messages, oldest at head */
typedef struct {
    ngx_str_node_t         sn;
    ngx_queue_t            lru;         /* shm->history_lru, by last write */
    uint64_t               epoch;       /* the zone's, or the Kafka one's */
    uint64_t               gen;         /* the room's part of the epoch */
    uint64_t               last;        /* the last offset given */
    uint64_t               floor;       /* every message after it is kept */
    unsigned               kafka:1;     /* positions given by the job */
    uint32_t               stream;      /* its id in the inner ver */
    time_t                 updated;
    ngx_uint_t             cap;
    ngx_uint_t             n;
    ngx_uint_t             head;
    ngx_goim_shm_hmsg_t  **ring;
    ngx_goim_shm_hmiss_t  *missed;      /* in offset order, all in ring */
    u_char                 name[1];
} ngx_goim_shm_hroom_t;


typedef struct {
    uint32_t               magic;
    uint32_t               version;
    ngx_uint_t             gen;
    /* keys and rooms: hashed, looked up on every push and connect */
    ngx_goim_hash_t        keys;
    ngx_rbtree_t           mids;
    ngx_rbtree_node_t      mids_sentinel;
    ngx_goim_hash_t        rooms;

    /* goim_worker_slots when the zone was made; a reload keeps them */
    ngx_uint_t             nslots;
    ngx_uint_t             nwords;      /* of a mask: nslots / 64 */
    ngx_goim_shm_worker_t *workers;     /* [nslots] */

    /* the worker doing the node's periodic Redis work (store/) */
    ngx_pid_t              lease_pid;   /* 0: nobody */
    uint64_t               lease_expires;   /* wall clock, ms */

    /* the cluster's room counts from Redis, replaced whole */
    struct ngx_goim_shm_online_s  *online;
    /* one more at each change of a room count or of online: no lock */
    ngx_atomic_uint_t      online_gen;

    /* a slot's sessions are being written to Redis again (store/) */
    ngx_uint_t            *sessions_dirty;  /* [nslots] */

    /* the comets seen in the registry, until their record's expiry */
    ngx_uint_t             ncomets;
    ngx_goim_shm_comet_t   comets[NGX_GOIM_SHM_COMETS];

    /* room histories: epoch drawn when the zone is made, not on reload */
    uint64_t               epoch;
    uint64_t               history_gen;
    ngx_rbtree_t           history;
    ngx_rbtree_node_t      history_sentinel;
    ngx_queue_t            history_lru;
    ngx_uint_t             history_rooms;
    ngx_uint_t             history_messages;
    size_t                 history_bytes;
    ngx_uint_t             history_evicted;     /* for zone space */
    ngx_uint_t             history_expired;     /* by ttl */
    ngx_uint_t             history_nostream;    /* pushes without one */
    ngx_uint_t             history_duplicates;  /* offsets not past last */
    ngx_uint_t             history_resent;      /* to workers that missed */
    ngx_uint_t             history_unresent;    /* no memory to remember */

    /* the histories' stream ids in use (2 to 65535), and the next try */
    uint8_t                history_streams[65536 / 8];
    ngx_uint_t             history_stream_next;

    /* who is in which room (goim_presence, _presence.c) */
    ngx_rbtree_t           presence;
    ngx_rbtree_node_t      presence_sentinel;
    uint64_t               presence_seq;

    /* records of dead workers' connections, their leaves not yet sent */
    ngx_goim_shm_presence_t  *departed;
} ngx_goim_shm_t;


/* set when this worker attaches (ngx_goim_registry_slots.c) */
extern ngx_slab_pool_t    *ngx_goim_shpool;
extern ngx_goim_shm_t     *ngx_goim_shm;


ngx_int_t ngx_goim_registry_pid_alive(ngx_pid_t pid);
void ngx_goim_registry_nomem(const char *what);

/* a slot's traces, with the pool's mutex held */
void ngx_goim_registry_index_purge_locked(ngx_uint_t widx, ngx_uint_t gen);
void ngx_goim_registry_inbox_purge_locked(ngx_goim_shm_worker_t *sw);
ngx_int_t ngx_goim_registry_inbox_prepare_locked(ngx_goim_shm_worker_t *sw,
    ngx_uint_t size);
ngx_uint_t ngx_goim_registry_inbox_depth_locked(ngx_goim_shm_worker_t *sw,
    ngx_msec_t *age);
void ngx_goim_registry_node_purge_locked(ngx_uint_t widx);
void ngx_goim_registry_history_init_locked(ngx_goim_shm_t *shm);
void *ngx_goim_registry_alloc_locked(size_t size);
ngx_uint_t ngx_goim_registry_room_held_locked(u_char *name, size_t len);
void ngx_goim_registry_room_mask_locked(u_char *name, size_t len,
    ngx_goim_mask_t *mask);
ngx_uint_t ngx_goim_registry_room_total_locked(u_char *name, size_t len);
ngx_goim_shm_hroom_t *ngx_goim_registry_hroom_locked(u_char *name,
    size_t len, uint32_t stream);
void ngx_goim_registry_hroom_trim_locked(ngx_goim_shm_hroom_t *h,
    time_t now, time_t ttl, ngx_uint_t keep);
void ngx_goim_registry_hroom_expire_locked(ngx_goim_shm_hroom_t *h,
    time_t now, time_t ttl);
void ngx_goim_registry_hroom_free_locked(ngx_goim_shm_hroom_t *h);
ngx_uint_t ngx_goim_registry_inbox_put_locked(ngx_goim_mask_t *mask,
    ngx_goim_inbox_msg_t *m, ngx_uint_t self, ngx_pid_t *wake,
    ngx_uint_t *nwake, ngx_goim_mask_t *refused);
void ngx_goim_registry_presence_purge_locked(ngx_uint_t widx,
    ngx_uint_t gen);


#endif /* _NGX_GOIM_REGISTRY_SHM_H_INCLUDED_ */
