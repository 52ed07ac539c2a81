
/*
 * goim for nginx: the node's state that its workers share for the Redis
 * work of store/: the lease (one worker at a time does the periodic
 * pass), the cluster's online counts that pass reads, the comets it saw
 * in the registry, and whether every worker's sessions are in Redis.
 */


#include "ngx_goim_registry_shm.h"


/* one block: the rooms sorted by name, then the names */
typedef struct {
    u_char                *name;
    uint32_t               len;
    uint32_t               count;
} ngx_goim_shm_online_room_t;


typedef struct ngx_goim_shm_online_s {
    time_t                 expires;
    ngx_uint_t             n;
    ngx_goim_shm_online_room_t  rooms[1];
} ngx_goim_shm_online_t;


static ngx_goim_shm_online_t *ngx_goim_registry_online_locked(void);
static ngx_int_t ngx_goim_registry_online_find_locked(
    ngx_goim_shm_online_t *o, u_char *name, size_t len, ngx_uint_t *count);
static ngx_uint_t ngx_goim_registry_online_count_locked(u_char *name,
    size_t len, time_t *until);


/*
 * The node's lease: one worker at a time does the periodic Redis work.
 * Returns 1 when this worker holds it (renewed for ttl), 0 otherwise.
 * A holder that died or stopped renewing loses it; the wall clock is
 * used since workers of different generations compare the times.
 */

ngx_uint_t
ngx_goim_registry_lease(ngx_msec_t ttl)
{
    uint64_t     now;
    ngx_uint_t   held;
    ngx_pid_t    old;
    ngx_time_t  *tp;

    tp = ngx_timeofday();
    now = (uint64_t) tp->sec * 1000 + tp->msec;
    held = 0;
    old = ngx_pid;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    if (ngx_goim_shm->lease_pid != ngx_pid
        && ngx_goim_shm->lease_pid != 0
        && ngx_goim_shm->lease_expires > now
        && ngx_goim_registry_pid_alive(ngx_goim_shm->lease_pid))
    {
        goto done;
    }

    if (ngx_goim_shm->lease_pid != ngx_pid) {
        old = ngx_goim_shm->lease_pid;
        ngx_goim_shm->lease_pid = ngx_pid;
    }

    ngx_goim_shm->lease_expires = now + ttl;
    held = 1;

done:

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    if (old != ngx_pid) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "goim: this worker took the node's lease "
                      "(previous holder: %P)", old);
    }

    return held;
}


/* a worker that shuts down hands the lease on at once */

void
ngx_goim_registry_lease_release(void)
{
    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    if (ngx_goim_shm->lease_pid == ngx_pid) {
        ngx_goim_shm->lease_pid = 0;
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/*
 * Replaces the cluster's room counts; names must be sorted and unique.
 * Readers trust them until expires (then this node's counts again).
 */

ngx_int_t
ngx_goim_registry_online_publish(ngx_str_t *names, ngx_uint_t *counts,
    ngx_uint_t n, time_t expires)
{
    u_char                 *p;
    size_t                  size;
    ngx_uint_t              i;
    ngx_goim_shm_online_t  *o, *old;

    size = offsetof(ngx_goim_shm_online_t, rooms)
           + (n + 1) * sizeof(ngx_goim_shm_online_room_t);

    for (i = 0; i < n; i++) {
        size += names[i].len;
    }

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    o = ngx_slab_alloc_locked(ngx_goim_shpool, size);
    if (o == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        ngx_goim_registry_nomem("the cluster's online counts");
        return NGX_ERROR;
    }

    o->expires = expires;
    o->n = n;
    p = (u_char *) &o->rooms[n + 1];

    for (i = 0; i < n; i++) {
        o->rooms[i].name = p;
        o->rooms[i].len = names[i].len;
        o->rooms[i].count = counts[i] > 0xffffffff ? 0xffffffff
                                                  : (uint32_t) counts[i];
        p = ngx_cpymem(p, names[i].data, names[i].len);
    }

    old = ngx_goim_shm->online;
    ngx_goim_shm->online = o;
    ngx_goim_shm->online_gen++;

    if (old) {
        ngx_slab_free_locked(ngx_goim_shpool, old);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


static ngx_goim_shm_online_t *
ngx_goim_registry_online_locked(void)
{
    ngx_goim_shm_online_t  *o;

    o = ngx_goim_shm->online;

    if (o == NULL || o->expires < ngx_time()) {
        return NULL;
    }

    return o;
}


/* NGX_OK with the room's cluster count, NGX_DECLINED: none known */

ngx_int_t
ngx_goim_registry_online_get(u_char *name, size_t len, ngx_uint_t *count)
{
    ngx_int_t               rc;
    ngx_goim_shm_online_t  *o;

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    o = ngx_goim_registry_online_locked();
    if (o) {
        rc = ngx_goim_registry_online_find_locked(o, name, len, count);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return rc;
}


static ngx_int_t
ngx_goim_registry_online_find_locked(ngx_goim_shm_online_t *o, u_char *name,
    size_t len, ngx_uint_t *count)
{
    ngx_int_t   c;
    ngx_uint_t  lo, hi, mid;

    lo = 0;
    hi = o->n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = ngx_memn2cmp(name, o->rooms[mid].name, len, o->rooms[mid].len);

        if (c == 0) {
            *count = o->rooms[mid].count;
            return NGX_OK;
        }

        if (c < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    return NGX_DECLINED;
}


/* the cluster's rooms, copied into the pool; NGX_DECLINED: none known */

ngx_int_t
ngx_goim_registry_online_list(ngx_pool_t *pool, ngx_str_t **names,
    ngx_uint_t **counts, ngx_uint_t *n)
{
    u_char                 *p;
    size_t                  size;
    ngx_uint_t              i;
    ngx_goim_shm_online_t  *o;

    *n = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    o = ngx_goim_registry_online_locked();

    if (o == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_DECLINED;
    }

    size = 0;

    for (i = 0; i < o->n; i++) {
        size += o->rooms[i].len;
    }

    *names = ngx_palloc(pool, (o->n + 1) * sizeof(ngx_str_t));
    *counts = ngx_palloc(pool, (o->n + 1) * sizeof(ngx_uint_t));
    p = ngx_pnalloc(pool, size + 1);

    if (*names == NULL || *counts == NULL || p == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_ERROR;
    }

    for (i = 0; i < o->n; i++) {
        (*names)[i].data = p;
        (*names)[i].len = o->rooms[i].len;
        (*counts)[i] = o->rooms[i].count;
        p = ngx_cpymem(p, o->rooms[i].name, o->rooms[i].len);
    }

    *n = o->n;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


/* a room's members in the cluster; this node's when none is known */

ngx_uint_t
ngx_goim_registry_online_count(u_char *name, size_t len)
{
    time_t      until;
    ngx_uint_t  count;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);
    count = ngx_goim_registry_online_count_locked(name, len, &until);
    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return count;
}


/*
 * The same for a heartbeat, read again only when a room count of the
 * node or the cluster's counts changed: at a million connections the
 * heartbeats would otherwise take the zone's lock thousands of times a
 * second and sum every slot's count each time.  A cache whose until is
 * 0 holds nothing yet.
 */

ngx_uint_t
ngx_goim_registry_online_cached(u_char *name, size_t len,
    ngx_goim_online_cache_t *cache)
{
    if (cache->gen == ngx_goim_shm->online_gen && ngx_time() < cache->until) {
        return cache->count;
    }

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    cache->gen = ngx_goim_shm->online_gen;
    cache->count = ngx_goim_registry_online_count_locked(name, len,
                                                         &cache->until);

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return cache->count;
}


/*
 * The cluster's count while its counts hold (*until: the first second
 * they do not); without them, or without the room in them, this node's
 * (goim: AllOnline is 0 until logic knows the room; ours: this node).
 */

static ngx_uint_t
ngx_goim_registry_online_count_locked(u_char *name, size_t len,
    time_t *until)
{
    ngx_uint_t              count;
    ngx_goim_shm_online_t  *o;

    o = ngx_goim_registry_online_locked();

    /* past it this node's counts stand in for the cluster's */
    *until = o ? o->expires + 1 : NGX_MAX_TIME_T_VALUE;

    if (o && ngx_goim_registry_online_find_locked(o, name, len, &count)
             == NGX_OK)
    {
        return count;
    }

    return ngx_goim_registry_room_total_locked(name, len);
}


/*
 * Whether every live worker's sessions are in Redis: a worker's slot is
 * dirty from the loss of its Redis connection until it wrote them all
 * again (store/ngx_goim_session.c).  A dead worker's slot does not count.
 */

void
ngx_goim_registry_sessions_dirty(void)
{
    if (ngx_goim_worker.widx >= 0) {
        ngx_goim_shm->sessions_dirty[ngx_goim_worker.widx] = 1;
    }
}


/* clears this worker's flag; 1 when every live slot is now clean */

ngx_uint_t
ngx_goim_registry_sessions_clean(void)
{
    if (ngx_goim_worker.widx >= 0) {
        ngx_goim_shm->sessions_dirty[ngx_goim_worker.widx] = 0;
    }

    return ngx_goim_registry_sessions_ready();
}


ngx_uint_t
ngx_goim_registry_sessions_ready(void)
{
    ngx_uint_t   i, ready;
    ngx_pid_t    pid;

    ready = 1;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < ngx_goim_shm->nslots; i++) {
        pid = ngx_goim_shm->workers[i].pid;

        if (pid && ngx_goim_shm->sessions_dirty[i]
            && (pid == ngx_pid || ngx_goim_registry_pid_alive(pid)))
        {
            ready = 0;
            break;
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return ready;
}


/* a slot is claimed or purged: it holds no sessions */

void
ngx_goim_registry_node_purge_locked(ngx_uint_t widx)
{
    ngx_goim_shm->sessions_dirty[widx] = 0;
}


/*
 * The known comets: the online pass merges every record it reads, with
 * the record's expiry by this host's clock; an entry is never dropped
 * before that, so a record lost in a Redis restart leaves its comet
 * known while one that expired naturally drops out.
 */

void
ngx_goim_registry_comet_seen(u_char *id, size_t len, time_t expires)
{
    time_t                 now;
    ngx_uint_t             i;
    ngx_goim_shm_comet_t  *c, *free;
    static time_t          logged;

    if (len == 0 || len > NGX_GOIM_SHM_COMET_ID) {
        return;
    }

    now = ngx_time();
    free = NULL;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < NGX_GOIM_SHM_COMETS; i++) {
        c = &ngx_goim_shm->comets[i];

        if (c->expires && c->len == len && ngx_memcmp(c->id, id, len) == 0) {
            c->expires = expires;
            ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
            return;
        }

        if (free == NULL && c->expires <= now) {
            free = c;
        }
    }

    if (free) {
        free->expires = expires;
        free->len = len;
        ngx_memcpy(free->id, id, len);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    if (free == NULL && logged != now) {
        logged = now;
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: more than %d comets in the registry, \"%*s\" "
                      "is not checked after a Redis restart",
                      NGX_GOIM_SHM_COMETS, len, id);
    }
}


/* the ids of the known comets whose record has not expired yet */

ngx_int_t
ngx_goim_registry_comets_alive(ngx_pool_t *pool, ngx_str_t **ids,
    ngx_uint_t *n)
{
    time_t                 now;
    ngx_int_t              rc;
    ngx_uint_t             i;
    ngx_str_t             *out;
    ngx_goim_shm_comet_t  *c;

    now = ngx_time();
    *n = 0;
    rc = NGX_OK;

    /* one more for the caller's own id */
    out = ngx_palloc(pool, (NGX_GOIM_SHM_COMETS + 1) * sizeof(ngx_str_t));
    if (out == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < NGX_GOIM_SHM_COMETS; i++) {
        c = &ngx_goim_shm->comets[i];

        if (c->expires <= now) {
            continue;
        }

        out[*n].len = c->len;
        out[*n].data = ngx_pnalloc(pool, c->len);
        if (out[*n].data == NULL) {
            rc = NGX_ERROR;
            break;
        }

        ngx_memcpy(out[*n].data, c->id, c->len);
        (*n)++;
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    *ids = out;

    return rc;
}
