
/*
 * goim for nginx: routing.  The shared registry names the workers that
 * hold a push's targets; this worker's own channels are served
 * directly, the others through their inboxes (ipc/), and what other
 * workers route here arrives through ngx_goim_dispatch_imsg().
 */


#include "ngx_goim_push.h"


#define NGX_GOIM_DISPATCH_BATCH  64


typedef struct {
    ngx_int_t              owner;
    ngx_str_t              key;
} ngx_goim_owned_key_t;


static void ngx_goim_dispatch_imsg(goim_imsg_t *m);
static void ngx_goim_local_keys(ngx_goim_push_t *push, ngx_str_t *keys,
    ngx_uint_t n);
static void ngx_goim_local_mids(ngx_goim_push_t *push, int64_t *mids,
    ngx_uint_t n);
static void ngx_goim_local_kick(ngx_str_t *keys, ngx_uint_t n);
static ngx_int_t ngx_goim_dispatch_send(ngx_goim_mask_t *mask,
    ngx_uint_t type, ngx_goim_push_t *push, ngx_uint_t speed,
    ngx_str_t *targets, ngx_uint_t ntargets, int64_t *mids);
static int ngx_libc_cdecl ngx_goim_owned_key_cmp(const void *a,
    const void *b);


/* set by the comet: closes a channel replaced by a newer one */
static ngx_goim_kick_pt  ngx_goim_kick_handler;

/* set by the comet: a member's message with its position */
static ngx_goim_member_pt  ngx_goim_member_handler;


ngx_int_t
ngx_goim_push_init(ngx_cycle_t *cycle)
{
    ngx_goim_rooms_init();

    ngx_goim_msg_set_holder_handler(ngx_goim_room_held);
    ngx_goim_ipc_set_handler(ngx_goim_dispatch_imsg);

    return NGX_OK;
}


void
ngx_goim_push_set_kick_handler(ngx_goim_kick_pt handler)
{
    ngx_goim_kick_handler = handler;
}


void
ngx_goim_push_set_member_handler(ngx_goim_member_pt handler)
{
    ngx_goim_member_handler = handler;
}


ngx_int_t
ngx_goim_dispatch_keys(ngx_goim_push_t *push, ngx_str_t *keys, ngx_uint_t n)
{
    ngx_int_t              rc, result;
    ngx_str_t             *run;
    ngx_uint_t             i, j, k;
    ngx_goim_mask_t        mask;
    ngx_goim_owned_key_t  *owned;

    ngx_goim_worker.stats->push_keys++;

    owned = ngx_alloc(n * (sizeof(ngx_goim_owned_key_t) + sizeof(ngx_str_t)),
                      ngx_cycle->log);
    if (owned == NULL) {
        return NGX_ERROR;
    }

    run = (ngx_str_t *) (owned + n);

    for (i = 0; i < n; i++) {
        owned[i].owner = ngx_goim_registry_key_owner(keys[i].data,
                                                     keys[i].len);
        owned[i].key = keys[i];
    }

    ngx_qsort(owned, n, sizeof(ngx_goim_owned_key_t),
              ngx_goim_owned_key_cmp);

    result = NGX_OK;

    for (i = 0; i < n; i = j) {

        for (j = i, k = 0; j < n && owned[j].owner == owned[i].owner; j++) {
            run[k++] = owned[j].key;
        }

        if (owned[i].owner < 0) {
            continue;
        }

        if (owned[i].owner == ngx_goim_worker.widx) {
            ngx_goim_local_keys(push, run, k);
            continue;
        }

        ngx_goim_mask_zero(&mask);
        ngx_goim_mask_set(&mask, owned[i].owner);

        rc = ngx_goim_dispatch_send(&mask, GOIM_IMSG_KEYS, push, 0, run, k,
                                    NULL);
        if (rc != NGX_OK) {
            result = rc;
        }
    }

    ngx_free(owned);

    return result;
}


static int ngx_libc_cdecl
ngx_goim_owned_key_cmp(const void *a, const void *b)
{
    const ngx_goim_owned_key_t  *x = a, *y = b;

    return (x->owner > y->owner) - (x->owner < y->owner);
}


ngx_int_t
ngx_goim_dispatch_mids(ngx_goim_push_t *push, int64_t *mids, ngx_uint_t n)
{
    u_char                  buf[NGX_GOIM_MEMBER_ROOM_LEN];
    ngx_int_t               rc, result;
    ngx_str_t               name;
    ngx_uint_t              i;
    ngx_goim_mask_t         mask;
    goim_imsg_head_t        head;
    ngx_goim_history_pos_t  pos;

    ngx_goim_worker.stats->push_mids++;

    if (ngx_goim_registry_member_history_on() && !push->raw) {
        /*
         * each member's message is kept in its room, with its offset,
         * connected or not (docs/PROTOCOL.md 1.16); the API's targets
         * are distinct
         */
        result = NGX_OK;

        for (i = 0; i < n; i++) {
            if (mids[i] == 0) {
                continue;
            }

            ngx_goim_registry_member_room(mids[i], buf, &name);

            head.type = GOIM_IMSG_ROOM;
            head.op = push->op;
            head.speed = 0;
            head.raw = 0;

            rc = ngx_goim_ipc_send_room(&head, &name, &push->body, &pos);

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc != NGX_OK) {
                result = rc;
            }
        }

        return result;
    }

    ngx_goim_mask_zero(&mask);

    for (i = 0; i < n; i++) {
        ngx_goim_registry_mid_mask(mids[i], &mask);
    }

    if (ngx_goim_mask_test(&mask, ngx_goim_worker.widx)) {
        ngx_goim_mask_clear(&mask, ngx_goim_worker.widx);
        ngx_goim_local_mids(push, mids, n);
    }

    return ngx_goim_dispatch_send(&mask, GOIM_IMSG_MIDS, push, 0,
                                  NULL, n, mids);
}


ngx_int_t
ngx_goim_dispatch_room(ngx_goim_push_t *push, ngx_str_t *name)
{
    goim_imsg_head_t        head;
    ngx_goim_mask_t         mask;
    ngx_goim_history_pos_t  pos;

    ngx_goim_worker.stats->push_room++;

    if (ngx_goim_registry_history_on()
        && !push->raw
        && push->op != GOIM_OP_PRESENCE)
    {
        /*
         * kept, given its offset, delivered in offset order (ipc/); join
         * and leave events reach only their watchers: not kept
         */
        head.type = GOIM_IMSG_ROOM;
        head.op = push->op;
        head.speed = 0;
        head.raw = 0;

        return ngx_goim_ipc_send_room(&head, name, &push->body, &pos);
    }

    ngx_goim_mask_zero(&mask);
    ngx_goim_registry_room_mask(name->data, name->len, &mask);

    if (ngx_goim_mask_test(&mask, ngx_goim_worker.widx)) {
        ngx_goim_mask_clear(&mask, ngx_goim_worker.widx);
        ngx_goim_room_push(push, name);
    }

    return ngx_goim_dispatch_send(&mask, GOIM_IMSG_ROOM, push, 0,
                                  name, 1, NULL);
}


/*
 * A room message with the position the job gave it (its Kafka offset,
 * docs/PROTOCOL.md 1.15): kept and delivered at that position, or
 * dropped when the room has had it.  Without goim_history, as any room
 * push.
 */

ngx_int_t
ngx_goim_dispatch_room_at(ngx_goim_push_t *push, ngx_str_t *name,
    ngx_goim_history_pos_t *given)
{
    goim_imsg_head_t        head;
    ngx_goim_history_pos_t  pos;

    if (!ngx_goim_registry_history_on()
        || push->raw
        || push->op == GOIM_OP_PRESENCE)
    {
        return ngx_goim_dispatch_room(push, name);
    }

    ngx_goim_worker.stats->push_room++;

    head.type = GOIM_IMSG_ROOM;
    head.op = push->op;
    head.speed = 0;
    head.raw = 0;

    return ngx_goim_ipc_send_room_at(&head, name, &push->body, given, &pos);
}


ngx_int_t
ngx_goim_dispatch_all(ngx_goim_push_t *push, ngx_uint_t speed)
{
    ngx_int_t        rc;
    ngx_uint_t       n;
    ngx_goim_mask_t  mask;

    ngx_goim_worker.stats->push_all++;

    ngx_goim_registry_live_mask(&mask);

    /* goim divides the speed among its comets; here among the workers */
    n = ngx_goim_mask_count(&mask);

    if (speed && n > 1) {
        speed = ngx_max(speed / n, 1);
    }

    rc = ngx_goim_broadcast(push, speed);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_goim_mask_clear(&mask, ngx_goim_worker.widx);

    return ngx_goim_dispatch_send(&mask, GOIM_IMSG_ALL, push, speed,
                                  NULL, 0, NULL);
}


/* the key connected to worker owner: its older connection there goes */

void
ngx_goim_push_kick(ngx_int_t owner, ngx_str_t *key)
{
    ngx_goim_push_t  push;
    ngx_goim_mask_t  mask;

    ngx_memzero(&push, sizeof(ngx_goim_push_t));

    ngx_goim_mask_zero(&mask);
    ngx_goim_mask_set(&mask, owner);

    (void) ngx_goim_dispatch_send(&mask, GOIM_IMSG_KICK, &push, 0, key, 1,
                                  NULL);
}


static ngx_int_t
ngx_goim_dispatch_send(ngx_goim_mask_t *mask, ngx_uint_t type,
    ngx_goim_push_t *push, ngx_uint_t speed, ngx_str_t *targets,
    ngx_uint_t ntargets, int64_t *mids)
{
    goim_imsg_head_t  head;

    head.type = type;
    head.op = push->op;
    head.speed = speed;
    head.raw = push->raw;
    head.pos = push->pos;
    head.stream = push->stream;
    head.epoch = push->epoch;
    head.mid = push->mid;

    return ngx_goim_ipc_send(mask, &head, targets, ntargets, mids,
                             &push->body);
}


/* key pushes reach only connections watching the operation */

static void
ngx_goim_local_keys(ngx_goim_push_t *push, ngx_str_t *keys, ngx_uint_t n)
{
    ngx_uint_t           i;
    ngx_goim_channel_t  *ch;

    for (i = 0; i < n; i++) {
        ch = ngx_goim_key_lookup(keys[i].data, keys[i].len);

        if (ch == NULL) {
            continue;
        }

        if (push->mid && ch->mid == push->mid && ngx_goim_member_handler) {
            /* its position: held, dropped at the seam, or sent */
            ngx_goim_member_handler(push, ch);
            continue;
        }

        (void) ngx_goim_push_one(push, ch, 1);
    }
}


static void
ngx_goim_local_mids(ngx_goim_push_t *push, int64_t *mids, ngx_uint_t n)
{
    ngx_uint_t           i;
    ngx_queue_t         *q;
    ngx_goim_mid_t      *m;
    ngx_goim_channel_t  *ch;

    for (i = 0; i < n; i++) {
        m = ngx_goim_mid_lookup(mids[i]);
        if (m == NULL) {
            continue;
        }

        for (q = ngx_queue_head(&m->channels);
             q != ngx_queue_sentinel(&m->channels);
             q = ngx_queue_next(q))
        {
            ch = ngx_queue_data(q, ngx_goim_channel_t, mid_link);
            (void) ngx_goim_push_one(push, ch, 1);
        }
    }
}


/*
 * The keys reconnected on another worker: their old connections go.  A
 * kick can be stale: when the registry names this worker again, the
 * local connection is a newer one and stays.
 */

static void
ngx_goim_local_kick(ngx_str_t *keys, ngx_uint_t n)
{
    ngx_uint_t           i;
    ngx_goim_channel_t  *ch;

    for (i = 0; i < n; i++) {
        ch = ngx_goim_key_lookup(keys[i].data, keys[i].len);

        if (ch
            && ngx_goim_registry_key_owner(keys[i].data, keys[i].len)
               != ngx_goim_worker.widx)
        {
            ngx_goim_kick_handler(ch);
        }
    }
}


/* a push another worker routed here (ipc/) */

static void
ngx_goim_dispatch_imsg(goim_imsg_t *m)
{
    size_t           off, len;
    int64_t          mids[NGX_GOIM_DISPATCH_BATCH];
    const u_char    *s;
    ngx_str_t        targets[NGX_GOIM_DISPATCH_BATCH];
    ngx_uint_t       i, n;
    ngx_goim_push_t  push;

    ngx_memzero(&push, sizeof(ngx_goim_push_t));
    push.op = m->head.op;
    push.raw = m->head.raw;
    push.pos = m->head.pos;
    push.stream = m->head.stream;
    push.epoch = m->head.epoch;
    push.mid = m->head.mid;
    push.body.data = (u_char *) m->body;
    push.body.len = m->head.body_len;

    switch (m->head.type) {

    case GOIM_IMSG_KEYS:
    case GOIM_IMSG_KICK:
        off = 0;
        n = 0;

        while (goim_imsg_next_str(m, &off, &s, &len)) {
            targets[n].data = (u_char *) s;
            targets[n].len = len;

            if (++n < NGX_GOIM_DISPATCH_BATCH && off < m->head.targets_len) {
                continue;
            }

            if (m->head.type == GOIM_IMSG_KEYS) {
                ngx_goim_local_keys(&push, targets, n);

            } else {
                ngx_goim_local_kick(targets, n);
            }

            n = 0;
        }

        break;

    case GOIM_IMSG_MIDS:
        for (i = 0; i < m->head.ntargets; i += n) {
            n = ngx_min(m->head.ntargets - i, NGX_GOIM_DISPATCH_BATCH);
            goim_imsg_mids(m, i, n, mids);
            ngx_goim_local_mids(&push, mids, n);
        }

        break;

    case GOIM_IMSG_ROOM:
        off = 0;
        (void) goim_imsg_next_str(m, &off, &s, &len);
        targets[0].data = (u_char *) s;
        targets[0].len = len;
        ngx_goim_room_push(&push, &targets[0]);
        break;

    default: /* GOIM_IMSG_ALL */
        (void) ngx_goim_broadcast(&push, m->head.speed);
        break;
    }

    ngx_goim_push_release(&push);
}
