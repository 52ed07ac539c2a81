
/*
 * goim for nginx: room histories in the shared zone (docs/PROTOCOL.md
 * 1.15).  Each room that had a message keeps its last goim_history
 * size messages, for goim_history ttl, in a ring; its offsets come from
 * one sequence for all workers, and it has a stream id, unique on the
 * node while it lives, that its messages carry in their inner ver.
 * Giving a message its offset, keeping it and putting it in the inboxes
 * of the workers with members of the room is one hold of the lock:
 * every inbox then gets a room's messages in offset order, and a member
 * joining after the hold sees the offset in its position.  A full zone
 * gives up the least recently written histories before it refuses
 * anything else.
 */


#include "ngx_goim_registry_shm.h"


static ngx_goim_shm_hroom_t *ngx_goim_registry_hroom_get_locked(u_char *name,
    size_t len, ngx_uint_t create, ngx_uint_t *nostream);
static uint32_t ngx_goim_registry_stream_alloc_locked(void);
static void ngx_goim_registry_history_pos_locked(ngx_goim_shm_hroom_t *h,
    uint64_t offset, ngx_goim_history_pos_t *pos, u_char *pos_at);
static ngx_uint_t ngx_goim_registry_history_deliver_locked(
    ngx_goim_shm_hroom_t *h, ngx_goim_shm_hmiss_t *miss, uint64_t offset,
    ngx_str_t *room, ngx_goim_inbox_msg_t *m, ngx_pid_t *wake,
    ngx_uint_t *nwake, ngx_uint_t *self);


/* goim_history off | size=N [ttl=T]; */

char *
ngx_goim_registry_history_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_goim_conf_t  *gcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (gcf->history_size != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        gcf->history_size = 0;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);

            if (n == NGX_ERROR || n < 1 || n > 65536) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid history size \"%V\", "
                                   "1 to 65536 messages", &value[i]);
                return NGX_CONF_ERROR;
            }

            gcf->history_size = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            gcf->history_ttl = ngx_parse_time(&s, 1);

            if (gcf->history_ttl == (time_t) NGX_ERROR
                || gcf->history_ttl < 1)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid history ttl \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "members=on") == 0) {
            gcf->history_members = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "members=off") == 0) {
            gcf->history_members = 0;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (gcf->history_size == NGX_CONF_UNSET_UINT) {
        return "needs \"size=\"";
    }

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_goim_registry_history_on(void)
{
    ngx_goim_conf_t  *gcf;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    return gcf->history_size != 0;
}


/*
 * goim_history members=on on the embedded node: a member's messages (the
 * pushes by mid) are kept as those of a room that only the member's own
 * connections are in, "mid://<mid>" (docs/PROTOCOL.md 1.16).  With
 * goim_redis a push by mid reaches other nodes' connections, which a
 * history of this node cannot follow: a stream per member in Redis keeps
 * them instead (ngx_goim_registry_member_stream_on()).
 */

ngx_uint_t
ngx_goim_registry_member_history_on(void)
{
    ngx_goim_conf_t  *gcf;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    return gcf->history_size != 0
           && gcf->history_members == 1
           && ngx_goim_mode() == NGX_GOIM_EMBEDDED;
}


/* members=on with goim_redis: the logic keeps them in offline_<mid> */

ngx_uint_t
ngx_goim_registry_member_stream_on(void)
{
    ngx_goim_conf_t  *gcf;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    return gcf->history_size != 0
           && gcf->history_members == 1
           && ngx_goim_mode() != NGX_GOIM_EMBEDDED;
}


void
ngx_goim_registry_member_room(int64_t mid, u_char *buf, ngx_str_t *name)
{
    name->data = buf;
    name->len = ngx_sprintf(buf, "%s%L", NGX_GOIM_MEMBER_ROOM, mid) - buf;
}


ngx_uint_t
ngx_goim_registry_is_member_room(u_char *id, size_t len)
{
    return len > sizeof(NGX_GOIM_MEMBER_ROOM) - 1
           && ngx_strncmp(id, NGX_GOIM_MEMBER_ROOM,
                          sizeof(NGX_GOIM_MEMBER_ROOM) - 1) == 0
           && ngx_goim_registry_member_history_on();
}


/*
 * A room message: its offset and its room's stream id (written at pos_at,
 * 8 bytes then 4, in the message for the inboxes, and in *pos), kept in
 * the history, and put in the inbox of every worker with members of the
 * room, this one's included (*self).  Returns the number of workers that
 * did not take it (full inboxes), or NGX_ERROR when the zone has no room
 * for the room's history entry nor anything to give up.  When no stream
 * id is free, the message goes without a position (offset 0) and is not
 * kept.
 *
 * given (the internal push: the job's Kafka position, docs/PROTOCOL.md
 * 1.15) names the epoch and the offset instead of the room's sequence.
 * An offset not past the room's last one in that epoch is a message
 * delivered already (the job sends at least once): NGX_DECLINED, the
 * message is neither kept nor delivered, except to the workers that
 * missed it (ngx_goim_registry_history_deliver_locked()).  Another epoch
 * starts the history again from the message: the history holds nothing
 * before it.
 */

ngx_int_t
ngx_goim_registry_history_put(ngx_str_t *room, int32_t op, ngx_str_t *body,
    ngx_goim_inbox_msg_t *m, u_char *pos_at, ngx_goim_history_pos_t *given,
    ngx_goim_history_pos_t *pos, ngx_pid_t *wake, ngx_uint_t *nwake,
    ngx_uint_t *self)
{
    ngx_uint_t             full, nostream;
    ngx_goim_mask_t        mask;
    ngx_goim_conf_t       *gcf;
    ngx_goim_shm_hmsg_t   *e;
    ngx_goim_shm_hmiss_t  *miss;
    ngx_goim_shm_hroom_t  *h;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    *nwake = 0;
    *self = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    h = ngx_goim_registry_hroom_get_locked(room->data, room->len, 1,
                                           &nostream);
    if (h == NULL) {
        if (!nostream) {
            goto nomem;
        }

        ngx_goim_shm->history_nostream++;
        ngx_memzero(pos, sizeof(ngx_goim_history_pos_t));
        goto deliver;
    }

    if (given == NULL && ngx_goim_mode() == NGX_GOIM_KAFKA) {
        /* an offset of ours would mean another message: no position */
        ngx_goim_shm->history_nostream++;
        ngx_memzero(pos, sizeof(ngx_goim_history_pos_t));
        h = NULL;
        goto deliver;
    }

    if (given
        && h->kafka
        && h->epoch == given->epoch
        && h->gen == given->gen
        && given->offset <= h->last)
    {
        for (miss = h->missed; miss; miss = miss->next) {
            if (miss->offset >= given->offset) {
                break;
            }
        }

        if (miss == NULL || miss->offset != given->offset) {
            ngx_goim_shm->history_duplicates++;

            if (--m->refs == 0) {
                ngx_slab_free_locked(ngx_goim_shpool, m);
            }

            ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

            return NGX_DECLINED;
        }

        ngx_goim_shm->history_resent++;

        ngx_goim_registry_history_pos_locked(h, given->offset, pos, pos_at);

        full = ngx_goim_registry_history_deliver_locked(h, miss, given->offset,
                                                        room, m, wake, nwake,
                                                        self);
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

        return full;
    }

    if (given
        && (!h->kafka || h->epoch != given->epoch || h->gen != given->gen))
    {
        /*
         * the first message of this epoch here: nothing before it is
         * known, and what was kept names other offsets
         */
        ngx_goim_shm->history_expired += h->n;
        ngx_goim_registry_hroom_trim_locked(h, 0, 0, 0);

        h->kafka = 1;
        h->epoch = given->epoch;
        h->gen = given->gen;
        h->last = given->offset - 1;
        h->floor = given->offset - 1;
    }

    /* the entry first: a zone too full for it may give up older ones */

    e = ngx_goim_registry_alloc_locked(offsetof(ngx_goim_shm_hmsg_t, data)
                                       + body->len);
    if (e == NULL) {
        goto nomem;
    }

    if (h->ring == NULL) {
        h->ring = ngx_goim_registry_alloc_locked(gcf->history_size
                                                 * sizeof(void *));
        if (h->ring == NULL) {
            ngx_slab_free_locked(ngx_goim_shpool, e);
            goto nomem;
        }

        h->cap = gcf->history_size;
        h->n = 0;
        h->head = 0;
        ngx_goim_shm->history_bytes += h->cap * sizeof(void *);
    }

    /* what outlived ttl counts as expired; then room for this one */
    ngx_goim_registry_hroom_expire_locked(h, ngx_time(), gcf->history_ttl);
    ngx_goim_registry_hroom_trim_locked(h, ngx_time(), gcf->history_ttl,
                                        h->cap - 1);

    e->offset = given ? given->offset : h->last + 1;
    h->last = e->offset;
    e->time = ngx_time();
    e->op = op;
    e->len = body->len;
    ngx_memcpy(e->data, body->data, body->len);

    h->ring[(h->head + h->n) % h->cap] = e;
    h->n++;
    h->updated = e->time;

    ngx_queue_remove(&h->lru);
    ngx_queue_insert_tail(&ngx_goim_shm->history_lru, &h->lru);

    ngx_goim_shm->history_messages++;
    ngx_goim_shm->history_bytes += offsetof(ngx_goim_shm_hmsg_t, data)
                                   + body->len;

    ngx_goim_registry_history_pos_locked(h, e->offset, pos, pos_at);

    if (given) {
        full = ngx_goim_registry_history_deliver_locked(h, NULL, e->offset,
                                                        room, m, wake, nwake,
                                                        self);
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

        return full;
    }

deliver:

    ngx_goim_mask_zero(&mask);
    ngx_goim_registry_room_mask_locked(room->data, room->len, &mask);

    *self = ngx_goim_mask_test(&mask, ngx_goim_worker.widx);

    full = ngx_goim_registry_inbox_put_locked(&mask, m, 1, wake, nwake,
                                              NULL);

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return full;

nomem:

    if (--m->refs == 0) {
        ngx_slab_free_locked(ngx_goim_shpool, m);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    ngx_goim_registry_nomem("a room message's history");

    return NGX_ERROR;
}


static void
ngx_goim_registry_history_pos_locked(ngx_goim_shm_hroom_t *h,
    uint64_t offset, ngx_goim_history_pos_t *pos, u_char *pos_at)
{
    pos->epoch = h->epoch;
    pos->gen = h->gen;
    pos->offset = offset;
    pos->stream = h->stream;

    ngx_memcpy(pos_at, &offset, sizeof(uint64_t));
    ngx_memcpy(pos_at + 8, &h->stream, sizeof(uint32_t));
}


/*
 * A kept message of the job's to the room's workers (miss NULL), or
 * again to those that missed it (miss, its record).  A worker misses it
 * when its inbox is full, and every later message of the room too until
 * it had this one, so that it still gets them in offset order: the job
 * got a 503 and sends them again with their offsets, and each then goes
 * to the workers that missed it.  Returns how many workers missed it.
 */

static ngx_uint_t
ngx_goim_registry_history_deliver_locked(ngx_goim_shm_hroom_t *h,
    ngx_goim_shm_hmiss_t *miss, uint64_t offset, ngx_str_t *room,
    ngx_goim_inbox_msg_t *m, ngx_pid_t *wake, ngx_uint_t *nwake,
    ngx_uint_t *self)
{
    ngx_uint_t             i, full, held;
    ngx_goim_mask_t        mask, missed;
    ngx_goim_shm_hmiss_t  *r, **last;

    ngx_goim_mask_zero(&mask);
    ngx_goim_registry_room_mask_locked(room->data, room->len, &mask);

    ngx_goim_mask_zero(&missed);

    for (i = 0; i < ngx_goim_mask_words; i++) {
        if (miss) {
            mask.w[i] &= miss->slots.w[i];
        }

        /* those still missing an earlier one wait for it */

        for (r = h->missed; r != miss; r = r->next) {
            missed.w[i] |= mask.w[i] & r->slots.w[i];
        }

        mask.w[i] &= ~missed.w[i];
    }

    held = ngx_goim_mask_count(&missed);

    *self = ngx_goim_mask_test(&mask, ngx_goim_worker.widx);

    full = ngx_goim_registry_inbox_put_locked(&mask, m, 1, wake, nwake,
                                              &missed);

    if (full + held == 0) {
        if (miss) {
            for (last = &h->missed; *last != miss; last = &(*last)->next) {
                /* void */
            }

            *last = miss->next;
            ngx_slab_free_locked(ngx_goim_shpool, miss);
        }

        return 0;
    }

    if (miss == NULL) {
        miss = ngx_slab_alloc_locked(ngx_goim_shpool,
                                     offsetof(ngx_goim_shm_hmiss_t, slots)
                                     + ngx_goim_mask_words
                                       * sizeof(uint64_t));
        if (miss == NULL) {
            /* they get the later ones live, this one by recovery only */
            ngx_goim_shm->history_unresent++;
            return full + held;
        }

        miss->next = NULL;
        miss->offset = offset;

        for (last = &h->missed; *last; last = &(*last)->next) {
            /* void */
        }

        *last = miss;
    }

    for (i = 0; i < ngx_goim_mask_words; i++) {
        miss->slots.w[i] = missed.w[i];
    }

    return full + held;
}


/*
 * A member's recovery, and its position: in one hold, the room's
 * position now (the seam: the live stream brings what comes after it)
 * and, when since names this history, the messages after since up to
 * it, encoded as inner packets (ver: the stream id, seq: the offset's
 * low 32 bits) in r->buf (ngx_alloc'ed; the caller frees it), at most
 * limit (0: all).  since NULL: the position only.  Without create,
 * NGX_DECLINED when the room has no history; with it, the status
 * NGX_GOIM_RECOVER_NOSTREAM when no stream id is free.
 */

ngx_int_t
ngx_goim_registry_history_recover(u_char *name, size_t len,
    ngx_goim_history_pos_t *since, ngx_uint_t limit, ngx_uint_t create,
    ngx_goim_history_read_t *r)
{
    size_t                 size;
    u_char                *p;
    uint64_t               first;
    ngx_uint_t             i, n, skip, nostream;
    ngx_goim_conf_t       *gcf;
    ngx_goim_shm_hmsg_t   *e;
    ngx_goim_shm_hroom_t  *h;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    ngx_memzero(r, sizeof(ngx_goim_history_read_t));

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    h = ngx_goim_registry_hroom_get_locked(name, len, create, &nostream);
    if (h == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

        if (!create) {
            return NGX_DECLINED;
        }

        if (nostream) {
            r->status = NGX_GOIM_RECOVER_NOSTREAM;
            return NGX_OK;
        }

        ngx_goim_registry_nomem("a room's history");
        return NGX_ERROR;
    }

    ngx_goim_registry_hroom_expire_locked(h, ngx_time(), gcf->history_ttl);

    r->pos.epoch = h->epoch;
    r->pos.gen = h->gen;
    r->pos.offset = h->last;
    r->pos.stream = h->stream;

    first = h->n ? h->ring[h->head]->offset : h->last + 1;
    r->first = first;

    if (since == NULL) {
        r->status = NGX_GOIM_RECOVER_NONE;
        goto done;
    }

    if (ngx_goim_mode() == NGX_GOIM_KAFKA && !h->kafka) {
        /* no message here yet: nothing known of where the room is */
        if (since->offset) {
            r->status = NGX_GOIM_RECOVER_EPOCH;
            goto done;
        }

    } else if ((since->epoch != r->pos.epoch || since->gen != r->pos.gen)
               && !(since->epoch == 0 && since->gen == 0 && h->kafka))
    {
        /*
         * 0-0: the client joined where the room had no message yet; its
         * offsets are the job's all the same (Kafka offset + 1)
         */
        r->status = NGX_GOIM_RECOVER_EPOCH;
        goto done;
    }

    if (since->offset > h->last) {
        r->status = NGX_GOIM_RECOVER_FUTURE;
        goto done;
    }

    /*
     * Every message of the room after floor is in the ring: the trimmed
     * ones are up to it, and a Kafka history knows nothing before its
     * first message.  Offsets may skip (Kafka: other rooms of the
     * partition), so the ring is searched, oldest first.
     */
    if (since->offset < h->floor) {
        r->status = NGX_GOIM_RECOVER_GONE;
        goto done;
    }

    for (skip = 0; skip < h->n; skip++) {
        if (h->ring[(h->head + skip) % h->cap]->offset > since->offset) {
            break;
        }
    }

    n = h->n - skip;

    if (limit && n > limit) {
        n = limit;
    }

    size = 0;

    for (i = 0; i < n; i++) {
        e = h->ring[(h->head + skip + i) % h->cap];
        size += GOIM_HEADER_LEN + e->len;
    }

    r->status = NGX_GOIM_RECOVER_OK;

    if (n == 0) {
        goto done;
    }

    r->buf = ngx_alloc(size, ngx_cycle->log);
    if (r->buf == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_ERROR;
    }

    p = r->buf;

    for (i = 0; i < n; i++) {
        e = h->ring[(h->head + skip + i) % h->cap];
        p += goim_packet_encode(p, (int32_t) h->stream, e->op,
                                (int32_t) (uint32_t) e->offset, e->data,
                                e->len);
        r->last = e->offset;
    }

    r->len = size;
    r->n = n;

done:

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


/*
 * Histories nobody wrote for ttl go whole (housekeeping, once a second),
 * but not while the room has members: their positions name this
 * history, and the workers' seams compare offsets of it.
 */

void
ngx_goim_registry_history_expire(void)
{
    time_t                 now;
    ngx_queue_t           *q;
    ngx_goim_conf_t       *gcf;
    ngx_goim_shm_hroom_t  *h;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);
    now = ngx_time();

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    while (!ngx_queue_empty(&ngx_goim_shm->history_lru)) {
        q = ngx_queue_head(&ngx_goim_shm->history_lru);
        h = ngx_queue_data(q, ngx_goim_shm_hroom_t, lru);

        if (h->updated + gcf->history_ttl > now) {
            break;
        }

        if (ngx_goim_registry_room_held_locked(h->sn.str.data,
                                               h->sn.str.len))
        {
            ngx_goim_registry_hroom_expire_locked(h, now, gcf->history_ttl);

            h->updated = now;
            ngx_queue_remove(&h->lru);
            ngx_queue_insert_tail(&ngx_goim_shm->history_lru, &h->lru);
            continue;
        }

        ngx_goim_shm->history_expired += h->n;
        ngx_goim_registry_hroom_free_locked(h);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


void
ngx_goim_registry_history_stats(ngx_goim_history_stats_t *s)
{
    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    s->rooms = ngx_goim_shm->history_rooms;
    s->messages = ngx_goim_shm->history_messages;
    s->bytes = ngx_goim_shm->history_bytes;
    s->evicted = ngx_goim_shm->history_evicted;
    s->expired = ngx_goim_shm->history_expired;
    s->nostream = ngx_goim_shm->history_nostream;
    s->duplicates = ngx_goim_shm->history_duplicates;
    s->resent = ngx_goim_shm->history_resent;
    s->unresent = ngx_goim_shm->history_unresent;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/* "<zone epoch, 16 hex digits>-<room history, decimal>" */

u_char *
ngx_goim_registry_epoch_print(u_char *p, ngx_goim_history_pos_t *pos)
{
    return ngx_sprintf(p, "%016uxL-%uL", pos->epoch, pos->gen);
}


ngx_int_t
ngx_goim_registry_epoch_parse(u_char *s, size_t len,
    ngx_goim_history_pos_t *pos)
{
    u_char     *dash;
    ngx_int_t   n;
    ngx_uint_t  i;
    uint64_t    v;

    dash = ngx_strlchr(s, s + len, '-');

    if (dash == NULL || dash - s != 16 || s + len - dash < 2
        || s + len - dash > 21)
    {
        return NGX_ERROR;
    }

    v = 0;

    for (i = 0; i < 16; i++) {
        n = ngx_hextoi(&s[i], 1);
        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        v = (v << 4) | (uint64_t) n;
    }

    pos->epoch = v;
    v = 0;

    for (s = dash + 1; s < dash + 1 + (len - 17); s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10) {
            return NGX_ERROR;
        }

        v = v * 10 + (*s - '0');
    }

    pos->gen = v;

    return NGX_OK;
}


/*
 * A room's history; with create, made when missing.  NULL: the zone is
 * full, or (*nostream set) every stream id is taken by a history whose
 * room has members.
 */

static ngx_goim_shm_hroom_t *
ngx_goim_registry_hroom_get_locked(u_char *name, size_t len,
    ngx_uint_t create, ngx_uint_t *nostream)
{
    uint32_t               stream;
    ngx_goim_shm_hroom_t  *h;

    *nostream = 0;

    h = ngx_goim_registry_hroom_locked(name, len, 0);

    if (h || !create) {
        return h;
    }

    stream = ngx_goim_registry_stream_alloc_locked();
    if (stream == 0) {
        *nostream = 1;
        return NULL;
    }

    return ngx_goim_registry_hroom_locked(name, len, stream);
}


/*
 * A stream id for a new history: the next free one after the last given
 * (so an id is not reused soon).  When all are taken, the history
 * written longest ago whose room has no member on the node gives its id
 * up; 0 when every history has members.
 */

static uint32_t
ngx_goim_registry_stream_alloc_locked(void)
{
    uint32_t               s;
    ngx_uint_t             i, n;
    ngx_queue_t           *q;
    ngx_goim_shm_hroom_t  *h;

    n = NGX_GOIM_HISTORY_STREAM_MAX - NGX_GOIM_HISTORY_STREAM_MIN + 1;

    for ( ;; ) {
        s = ngx_goim_shm->history_stream_next;

        for (i = 0; i < n; i++) {
            if (s > NGX_GOIM_HISTORY_STREAM_MAX) {
                s = NGX_GOIM_HISTORY_STREAM_MIN;
            }

            if (!(ngx_goim_shm->history_streams[s / 8] & (1 << (s % 8)))) {
                ngx_goim_shm->history_streams[s / 8] |= 1 << (s % 8);
                ngx_goim_shm->history_stream_next = s + 1;
                return s;
            }

            s++;
        }

        for (q = ngx_queue_head(&ngx_goim_shm->history_lru);
             q != ngx_queue_sentinel(&ngx_goim_shm->history_lru);
             q = ngx_queue_next(q))
        {
            h = ngx_queue_data(q, ngx_goim_shm_hroom_t, lru);

            if (!ngx_goim_registry_room_held_locked(h->sn.str.data,
                                                    h->sn.str.len))
            {
                break;
            }
        }

        if (q == ngx_queue_sentinel(&ngx_goim_shm->history_lru)) {
            return 0;
        }

        ngx_goim_shm->history_evicted += h->n;
        ngx_goim_registry_hroom_free_locked(h);
    }
}
