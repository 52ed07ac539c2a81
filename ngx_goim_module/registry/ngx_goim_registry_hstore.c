
/*
 * goim for nginx: the storage of room histories in the shared zone, and
 * the registry's allocations, which give up the histories written
 * longest ago when the zone is full (ngx_goim_registry_history.c uses
 * them; every file of the floor allocates through here).
 */


#include "ngx_goim_registry_shm.h"

#include <openssl/rand.h>


static void ngx_goim_registry_hmsg_free_locked(ngx_goim_shm_hmsg_t *e);
static void ngx_goim_registry_hmiss_drop_locked(ngx_goim_shm_hroom_t *h,
    uint64_t upto);


void
ngx_goim_registry_history_init_locked(ngx_goim_shm_t *shm)
{
    u_char      rnd[8];
    ngx_msec_t  now;

    ngx_rbtree_init(&shm->history, &shm->history_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&shm->history_lru);

    /* a new zone is a new history: positions of the last one are void */
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        now = ngx_current_msec;
        ngx_memcpy(rnd, &now, ngx_min(sizeof(ngx_msec_t), 8));
        rnd[7] ^= (u_char) ngx_pid;
    }

    ngx_memcpy(&shm->epoch, rnd, 8);
    shm->history_gen = 0;

    ngx_memzero(shm->history_streams, sizeof(shm->history_streams));
    shm->history_stream_next = NGX_GOIM_HISTORY_STREAM_MIN;
}


/*
 * Every allocation of the registry: when the zone is full, the histories
 * written longest ago give up their messages first, so that a history
 * never costs a connection its auth or a push its delivery.
 */

void *
ngx_goim_registry_alloc_locked(size_t size)
{
    void                  *p;
    ngx_queue_t           *q;
    ngx_goim_shm_hroom_t  *h;

    for ( ;; ) {
        p = ngx_slab_alloc_locked(ngx_goim_shpool, size);
        if (p) {
            return p;
        }

        for (q = ngx_queue_head(&ngx_goim_shm->history_lru);
             q != ngx_queue_sentinel(&ngx_goim_shm->history_lru);
             q = ngx_queue_next(q))
        {
            h = ngx_queue_data(q, ngx_goim_shm_hroom_t, lru);

            if (h->ring) {
                break;
            }
        }

        if (q == ngx_queue_sentinel(&ngx_goim_shm->history_lru)) {
            return NULL;
        }

        ngx_goim_shm->history_evicted += h->n;
        ngx_goim_registry_hroom_trim_locked(h, 0, 0, 0);

        ngx_slab_free_locked(ngx_goim_shpool, h->ring);
        ngx_goim_shm->history_bytes -= h->cap * sizeof(void *);
        h->ring = NULL;
        h->cap = 0;
    }
}


/*
 * A room's history; with a stream id (taken by the caller), made when
 * missing.  NULL: none, or the zone is full (the id is given back).
 */

ngx_goim_shm_hroom_t *
ngx_goim_registry_hroom_locked(u_char *name, size_t len, uint32_t stream)
{
    uint32_t               hash;
    ngx_str_t              s;
    ngx_goim_shm_hroom_t  *h;

    s.data = name;
    s.len = len;
    hash = ngx_crc32_long(name, len);

    h = (ngx_goim_shm_hroom_t *) ngx_str_rbtree_lookup(&ngx_goim_shm->history,
                                                       &s, hash);
    if (h || stream == 0) {
        return h;
    }

    h = ngx_goim_registry_alloc_locked(offsetof(ngx_goim_shm_hroom_t, name)
                                       + len);
    if (h == NULL) {
        ngx_goim_shm->history_streams[stream / 8] &= ~(1 << (stream % 8));
        return NULL;
    }

    ngx_memzero(h, offsetof(ngx_goim_shm_hroom_t, name));
    ngx_memcpy(h->name, name, len);
    h->sn.str.data = h->name;
    h->sn.str.len = len;
    h->sn.node.key = hash;
    if (ngx_goim_mode() == NGX_GOIM_KAFKA) {
        /*
         * the job gives the positions: none before the room's first
         * message here, epoch 0-0 (docs/PROTOCOL.md 1.15)
         */
        h->epoch = 0;
        h->gen = 0;

    } else {
        h->epoch = ngx_goim_shm->epoch;
        h->gen = ++ngx_goim_shm->history_gen;
    }
    h->stream = stream;
    h->updated = ngx_time();

    ngx_rbtree_insert(&ngx_goim_shm->history, &h->sn.node);
    ngx_queue_insert_tail(&ngx_goim_shm->history_lru, &h->lru);

    ngx_goim_shm->history_rooms++;
    ngx_goim_shm->history_bytes += offsetof(ngx_goim_shm_hroom_t, name) + len;

    return h;
}


/* drops the oldest messages: older than ttl (0: all), beyond keep */

void
ngx_goim_registry_hroom_trim_locked(ngx_goim_shm_hroom_t *h, time_t now,
    time_t ttl, ngx_uint_t keep)
{
    ngx_goim_shm_hmsg_t  *e;

    while (h->n) {
        e = h->ring[h->head];

        if (h->n <= keep && ttl && e->time + ttl > now) {
            break;
        }

        /* recovery from before it is no longer complete */
        h->floor = e->offset;

        ngx_goim_registry_hmsg_free_locked(e);

        h->head = (h->head + 1) % h->cap;
        h->n--;
    }

    if (h->n == 0) {
        h->head = 0;
    }

    /* a message gone from the ring is not sent again */
    ngx_goim_registry_hmiss_drop_locked(h, h->floor);
}


/* drops the messages older than ttl, counted as expired */

void
ngx_goim_registry_hroom_expire_locked(ngx_goim_shm_hroom_t *h, time_t now,
    time_t ttl)
{
    ngx_uint_t  n;

    n = h->n;
    ngx_goim_registry_hroom_trim_locked(h, now, ttl, h->n);
    ngx_goim_shm->history_expired += n - h->n;
}


/* forgets who missed the room's messages up to offset upto */

static void
ngx_goim_registry_hmiss_drop_locked(ngx_goim_shm_hroom_t *h, uint64_t upto)
{
    ngx_goim_shm_hmiss_t  *r;

    while (h->missed && h->missed->offset <= upto) {
        r = h->missed;
        h->missed = r->next;
        ngx_slab_free_locked(ngx_goim_shpool, r);
    }
}


static void
ngx_goim_registry_hmsg_free_locked(ngx_goim_shm_hmsg_t *e)
{
    ngx_goim_shm->history_messages--;
    ngx_goim_shm->history_bytes -= offsetof(ngx_goim_shm_hmsg_t, data)
                                   + e->len;

    ngx_slab_free_locked(ngx_goim_shpool, e);
}


void
ngx_goim_registry_hroom_free_locked(ngx_goim_shm_hroom_t *h)
{
    ngx_goim_registry_hroom_trim_locked(h, 0, 0, 0);

    if (h->ring) {
        ngx_slab_free_locked(ngx_goim_shpool, h->ring);
        ngx_goim_shm->history_bytes -= h->cap * sizeof(void *);
    }

    ngx_rbtree_delete(&ngx_goim_shm->history, &h->sn.node);
    ngx_queue_remove(&h->lru);

    ngx_goim_shm->history_streams[h->stream / 8] &= ~(1 << (h->stream % 8));

    ngx_goim_shm->history_rooms--;
    ngx_goim_shm->history_bytes -= offsetof(ngx_goim_shm_hroom_t, name)
                                   + h->sn.str.len;

    ngx_slab_free_locked(ngx_goim_shpool, h);
}



