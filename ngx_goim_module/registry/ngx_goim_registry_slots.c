
/*
 * goim for nginx: the workers' slots in the shared zone.  Every worker
 * process, of every generation, claims one when it starts and gives it
 * back when it exits; the slot of a worker that died is purged by the
 * next worker that notices (at its start, and once a second).
 */


#include "ngx_goim_registry_shm.h"


static void ngx_goim_registry_purge_locked(ngx_uint_t widx);


ngx_uint_t  ngx_goim_mask_words;


/* claims a registry slot for this worker process */

ngx_int_t
ngx_goim_registry_attach(ngx_cycle_t *cycle)
{
    ngx_pid_t               dead[NGX_GOIM_MAX_WORKERS];
    ngx_uint_t              i;
    ngx_goim_conf_t        *gcf;
    ngx_goim_shm_worker_t  *sw;
    ngx_goim_worker_t      *w = &ngx_goim_worker;

    gcf = ngx_goim_get_conf(cycle);

    ngx_goim_shpool = (ngx_slab_pool_t *) gcf->zone->shm.addr;
    ngx_goim_shm = gcf->zone->data;
    ngx_goim_mask_words = ngx_goim_shm->nwords;

    w->widx = -1;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    /* slots of workers that died (crash, SIGKILL) route nothing further */
    for (i = 0; i < ngx_goim_shm->nslots; i++) {
        sw = &ngx_goim_shm->workers[i];
        dead[i] = 0;

        if (sw->pid && !ngx_goim_registry_pid_alive(sw->pid)) {
            dead[i] = sw->pid;
            ngx_goim_registry_purge_locked(i);
        }
    }

    for (i = 0; i < ngx_goim_shm->nslots; i++) {
        sw = &ngx_goim_shm->workers[i];

        if (sw->pid == 0) {
            break;
        }
    }

    if (i == ngx_goim_shm->nslots) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim: more than %ui worker processes share the zone "
                      "(\"goim_worker_slots\")", ngx_goim_shm->nslots);
        return NGX_ERROR;
    }

    if (ngx_goim_registry_inbox_prepare_locked(sw, gcf->inbox_size)
        != NGX_OK)
    {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim: zone \"%V\" too small for the inboxes",
                      &gcf->zone->shm.name);
        return NGX_ERROR;
    }

    sw->pid = ngx_pid;
    sw->gen = ++ngx_goim_shm->gen;
    sw->connections = 0;
    sw->ips = 0;

    ngx_memzero(&sw->stats, sizeof(ngx_goim_stats_t));

    w->widx = i;
    w->wgen = sw->gen;
    w->stats = &sw->stats;

    /* a new worker has no sessions yet */
    ngx_goim_registry_node_purge_locked(i);

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    for (i = 0; i < ngx_goim_shm->nslots; i++) {
        if (dead[i]) {
            ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                          "goim: purging registry slot %ui of dead worker %P",
                          i, dead[i]);
        }
    }

    return NGX_OK;
}


void
ngx_goim_registry_detach(ngx_cycle_t *cycle)
{
    ngx_goim_worker_t  *w = &ngx_goim_worker;

    if (w->widx < 0 || ngx_goim_shm == NULL) {
        return;
    }

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);
    ngx_goim_registry_purge_locked(w->widx);
    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    /* another worker takes the lease over at its next tick */
    ngx_goim_registry_lease_release();

    w->widx = -1;
    w->stats = &w->local_stats;
}


void
ngx_goim_registry_purge_dead(ngx_log_t *log)
{
    ngx_pid_t               pid;
    ngx_uint_t              i;
    ngx_goim_shm_worker_t  *sw;

    for (i = 0; i < ngx_goim_shm->nslots; i++) {
        sw = &ngx_goim_shm->workers[i];

        if (sw->pid == 0 || ngx_goim_registry_pid_alive(sw->pid)) {
            continue;
        }

        pid = 0;

        ngx_shmtx_lock(&ngx_goim_shpool->mutex);

        if (sw->pid && !ngx_goim_registry_pid_alive(sw->pid)) {
            pid = sw->pid;
            ngx_goim_registry_purge_locked(i);
        }

        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

        if (pid) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "goim: purging registry slot %ui of dead worker %P",
                          i, pid);
        }
    }
}


/*
 * Removes every trace of a slot: its keys, its bits in mids and rooms,
 * the messages waiting in its inbox, its sessions' state.
 * O(registry), only on worker exit.
 */

static void
ngx_goim_registry_purge_locked(ngx_uint_t widx)
{
    ngx_goim_shm_worker_t  *sw;

    sw = &ngx_goim_shm->workers[widx];

    ngx_goim_registry_index_purge_locked(widx, sw->gen);
    ngx_goim_registry_presence_purge_locked(widx, sw->gen);
    ngx_goim_registry_inbox_purge_locked(sw);

    sw->pid = 0;
    sw->connections = 0;
    sw->ips = 0;

    /* a dead worker's sessions hold the node back no more */
    ngx_goim_registry_node_purge_locked(widx);
}


void
ngx_goim_registry_live_mask(ngx_goim_mask_t *mask)
{
    ngx_uint_t  i;

    ngx_goim_mask_zero(mask);

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < ngx_goim_shm->nslots; i++) {
        if (ngx_goim_shm->workers[i].pid) {
            ngx_goim_mask_set(mask, i);
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/*
 * Connections and client addresses over all workers; an address with
 * connections on two workers counts twice (workers count their own).
 */

void
ngx_goim_registry_totals(ngx_uint_t *conns, ngx_uint_t *ips)
{
    ngx_uint_t  i;

    *conns = 0;
    *ips = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < ngx_goim_shm->nslots; i++) {
        if (ngx_goim_shm->workers[i].pid) {
            *conns += ngx_goim_shm->workers[i].connections;
            *ips += ngx_goim_shm->workers[i].ips;
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/* one writer (this worker), one word: no lock */

void
ngx_goim_registry_set_ips(ngx_uint_t ips)
{
    ngx_goim_shm->workers[ngx_goim_worker.widx].ips = ips;
}


/* the live workers' counters and the zone's use, copied at one moment */

ngx_int_t
ngx_goim_registry_snapshot(ngx_pool_t *pool, ngx_goim_registry_snapshot_t *s)
{
    ngx_uint_t                   i;
    ngx_goim_shm_worker_t       *sw;
    ngx_goim_registry_worker_t  *rw;

    s->n = 0;
    s->workers = ngx_palloc(pool, ngx_goim_shm->nslots
                                  * sizeof(ngx_goim_registry_worker_t));
    if (s->workers == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < ngx_goim_shm->nslots; i++) {
        sw = &ngx_goim_shm->workers[i];

        if (sw->pid == 0) {
            continue;
        }

        rw = &s->workers[s->n++];

        rw->slot = i;
        rw->pid = sw->pid;
        rw->connections = sw->connections;
        rw->inbox_depth = ngx_goim_registry_inbox_depth_locked(sw,
                                                          &rw->inbox_age);
        rw->stats = sw->stats;
    }

    s->total = ngx_goim_shpool->end - (u_char *) ngx_goim_shpool;
    s->used = s->total - ngx_goim_shpool->pfree * ngx_pagesize;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}
