
/*
 * goim for nginx: the workers' inboxes.  A message for other workers is
 * one block of the zone; each target worker's inbox (a ring of
 * goim_inbox_size pointers in its slot) gets a reference, and the last
 * reader frees the block.  What a message holds is ipc/'s business.
 */


#include "ngx_goim_registry_shm.h"


/* NULL when the zone is exhausted (logged, at most once a second) */

ngx_goim_inbox_msg_t *
ngx_goim_registry_msg_alloc(size_t size, const char *what)
{
    ngx_goim_inbox_msg_t  *m;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);
    m = ngx_goim_registry_alloc_locked(size);
    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    if (m == NULL) {
        ngx_goim_registry_nomem(what);
        return NULL;
    }

    m->refs = 1;
    m->time = ngx_current_msec;

    return m;
}


/* a reader is done with the message; the last one frees it */

void
ngx_goim_registry_msg_release(ngx_goim_inbox_msg_t *m)
{
    if (ngx_atomic_fetch_add(&m->refs, -1) == 1) {
        ngx_shmtx_lock(&ngx_goim_shpool->mutex);
        ngx_slab_free_locked(ngx_goim_shpool, m);
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
    }
}


/*
 * Puts a message just allocated into the inbox of every live worker in
 * mask but this one, and gives up the caller's reference.  The pids of
 * the workers whose inbox was empty (they need a wake-up) go to wake.
 * Returns how many inboxes were full: those workers miss the message.
 */

ngx_uint_t
ngx_goim_registry_inbox_put(ngx_goim_mask_t *mask, ngx_goim_inbox_msg_t *m,
    ngx_pid_t *wake, ngx_uint_t *nwake)
{
    ngx_uint_t  full;

    /* no reader takes the message before the lock is released */

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);
    full = ngx_goim_registry_inbox_put_locked(mask, m, 0, wake, nwake,
                                              NULL);
    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return full;
}


/*
 * self: this worker's own inbox takes it too (room histories' order);
 * refused, when given, gets the slots whose inbox was full
 */

ngx_uint_t
ngx_goim_registry_inbox_put_locked(ngx_goim_mask_t *mask,
    ngx_goim_inbox_msg_t *m, ngx_uint_t self, ngx_pid_t *wake,
    ngx_uint_t *nwake, ngx_goim_mask_t *refused)
{
    ngx_int_t               i;
    ngx_uint_t              full;
    ngx_goim_shm_worker_t  *sw;

    full = 0;
    *nwake = 0;

    for (i = ngx_goim_mask_next(mask, 0);
         i >= 0;
         i = ngx_goim_mask_next(mask, i + 1))
    {
        if (!self && i == ngx_goim_worker.widx) {
            continue;
        }

        sw = &ngx_goim_shm->workers[i];

        if (sw->pid == 0) {
            continue;
        }

        if (sw->inbox_tail - sw->inbox_head >= sw->inbox_size) {
            full++;

            if (refused) {
                ngx_goim_mask_set(refused, i);
            }

            continue;
        }

        if (sw->inbox_tail == sw->inbox_head
            && i != ngx_goim_worker.widx)
        {
            wake[(*nwake)++] = sw->pid;
        }

        m->refs++;

        sw->inbox[sw->inbox_tail % sw->inbox_size] = m;
        sw->inbox_tail++;
    }

    if (--m->refs == 0) {
        ngx_slab_free_locked(ngx_goim_shpool, m);
    }

    return full;
}


/* takes up to max messages from this worker's inbox */

ngx_uint_t
ngx_goim_registry_inbox_take(void **msgs, ngx_uint_t max)
{
    ngx_uint_t              n;
    ngx_goim_shm_worker_t  *sw;

    sw = &ngx_goim_shm->workers[ngx_goim_worker.widx];
    n = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    while (sw->inbox_head != sw->inbox_tail && n < max) {
        msgs[n++] = sw->inbox[sw->inbox_head % sw->inbox_size];
        sw->inbox_head++;
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return n;
}


/* a slot being claimed gets an empty inbox of the configured size */

ngx_int_t
ngx_goim_registry_inbox_prepare_locked(ngx_goim_shm_worker_t *sw,
    ngx_uint_t size)
{
    if (sw->inbox == NULL || sw->inbox_size != size) {
        if (sw->inbox) {
            ngx_slab_free_locked(ngx_goim_shpool, sw->inbox);
        }

        sw->inbox = ngx_slab_alloc_locked(ngx_goim_shpool,
                                          size * sizeof(void *));
        if (sw->inbox == NULL) {
            return NGX_ERROR;
        }

        sw->inbox_size = size;
    }

    sw->inbox_head = 0;
    sw->inbox_tail = 0;

    return NGX_OK;
}


/* messages nobody will read: the slot's references are dropped */

void
ngx_goim_registry_inbox_purge_locked(ngx_goim_shm_worker_t *sw)
{
    ngx_goim_inbox_msg_t  *m;

    while (sw->inbox_head != sw->inbox_tail) {
        m = sw->inbox[sw->inbox_head % sw->inbox_size];
        sw->inbox_head++;

        if (ngx_atomic_fetch_add(&m->refs, -1) == 1) {
            ngx_slab_free_locked(ngx_goim_shpool, m);
        }
    }

    sw->inbox_head = 0;
    sw->inbox_tail = 0;
}


ngx_uint_t
ngx_goim_registry_inbox_depth_locked(ngx_goim_shm_worker_t *sw,
    ngx_msec_t *age)
{
    ngx_uint_t             depth;
    ngx_goim_inbox_msg_t  *m;

    depth = sw->inbox_tail - sw->inbox_head;
    *age = 0;

    if (depth) {
        m = sw->inbox[sw->inbox_head % sw->inbox_size];
        *age = ngx_current_msec - m->time;
    }

    return depth;
}
