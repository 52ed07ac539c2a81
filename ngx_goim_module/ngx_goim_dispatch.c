
/*
 * goim for nginx: dispatch.  Every push enters here: it is framed once
 * per transport and the same buffer is queued on every target socket.
 */


#include "ngx_goim.h"


typedef struct {
    ngx_goim_walk_t        cursor;      /* position in the channel list */
    ngx_goim_push_t        push;
    ngx_uint_t             per_tick;
    ngx_event_t            ev;
    u_char                 data[1];     /* the message body */
} ngx_goim_broadcast_t;


static void ngx_goim_broadcast_handler(ngx_event_t *ev);
static void ngx_goim_room_send(ngx_goim_room_t *room, ngx_goim_push_t *push,
    ngx_msec_t interval);
static void ngx_goim_room_forget(ngx_goim_room_t *room, ngx_goim_msg_t *msg);
static void ngx_goim_room_flush_handler(ngx_event_t *ev);
static void ngx_goim_room_flush(ngx_goim_room_t *room, ngx_msec_t interval);


#define NGX_GOIM_BROADCAST_TICK  100    /* ms between paced slices */
/*
 * A room batch of this many messages leaves at once: one write (5-8 us of
 * CPU here) then costs each message less than 0.2 us.
 */
#define NGX_GOIM_ROOM_BATCH_MAX  40


/*
 * A push as goim's job sends it: an OP_RAW proto whose body is the inner
 * packet(s).  TCP gets the inner packets as they are; WebSocket one
 * binary frame with an outer op 9 header (GOIM-SPEC 1.4).
 */

ngx_goim_msg_t *
ngx_goim_push_msg(ngx_goim_push_t *push, ngx_uint_t transport)
{
    size_t           inner, hlen;
    u_char           ws[GOIM_WS_MAX_HEADER], *p;
    ngx_goim_msg_t  *msg;

    if (push->msg[transport]) {
        return push->msg[transport];
    }

    inner = push->raw ? push->body.len : GOIM_HEADER_LEN + push->body.len;
    hlen = 0;

    if (transport == NGX_GOIM_WS) {
        hlen = goim_ws_write_header(ws, GOIM_WS_OP_BINARY,
                                    GOIM_HEADER_LEN + inner);
        hlen += GOIM_HEADER_LEN;
    }

    msg = ngx_goim_msg_alloc(hlen + inner);
    if (msg == NULL) {
        return NULL;
    }

    p = msg->data;

    if (transport == NGX_GOIM_WS) {
        p = ngx_cpymem(p, ws, hlen - GOIM_HEADER_LEN);
        p += goim_packet_write_header(p, inner, 1, GOIM_OP_RAW, 0);
    }

    if (push->raw) {
        ngx_memcpy(p, push->body.data, push->body.len);

    } else {
        goim_packet_encode(p, 1, push->op, 0, push->body.data,
                           push->body.len);
    }

    push->msg[transport] = msg;

    return msg;
}


void
ngx_goim_push_release(ngx_goim_push_t *push)
{
    ngx_uint_t  i;

    for (i = 0; i < 2; i++) {
        if (push->msg[i]) {
            ngx_goim_msg_release(push->msg[i]);
            push->msg[i] = NULL;
        }
    }
}


static ngx_uint_t
ngx_goim_dispatch_one(ngx_goim_push_t *push, ngx_goim_channel_t *ch,
    ngx_uint_t filter)
{
    ngx_goim_msg_t  *msg;

    if (filter && !ngx_goim_channel_watches(ch, push->op)) {
        return 0;
    }

    msg = ngx_goim_push_msg(push, ch->transport);
    if (msg == NULL) {
        return 0;
    }

    return ngx_goim_channel_push(ch, msg) == NGX_OK;
}


/*
 * Routing: the shared registry names the workers that hold the targets;
 * this worker's own sockets are served directly, the others through
 * their inboxes.  NGX_BUSY: an inbox was full; NGX_ERROR: shared memory
 * is exhausted.
 */

typedef struct {
    ngx_int_t              owner;
    ngx_str_t              key;
} ngx_goim_owned_key_t;


static int ngx_libc_cdecl
ngx_goim_owned_key_cmp(const void *a, const void *b)
{
    const ngx_goim_owned_key_t  *x = a, *y = b;

    return (x->owner > y->owner) - (x->owner < y->owner);
}


ngx_int_t
ngx_goim_dispatch_keys(ngx_goim_push_t *push, ngx_str_t *keys, ngx_uint_t n)
{
    ngx_int_t              rc, result;
    ngx_str_t             *run;
    ngx_uint_t             i, j, k;
    ngx_goim_owned_key_t  *owned;

    ngx_goim_worker.stats->push_keys++;

    owned = ngx_alloc(n * (sizeof(ngx_goim_owned_key_t) + sizeof(ngx_str_t)),
                      ngx_cycle->log);
    if (owned == NULL) {
        return NGX_ERROR;
    }

    run = (ngx_str_t *) (owned + n);

    for (i = 0; i < n; i++) {
        owned[i].owner = ngx_goim_registry_key_owner(keys[i].data, keys[i].len);
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

        rc = ngx_goim_ipc_send((uint64_t) 1 << owned[i].owner,
                               NGX_GOIM_IMSG_KEYS, push, 0, run, k, NULL);
        if (rc != NGX_OK) {
            result = rc;
        }
    }

    ngx_free(owned);

    return result;
}


ngx_int_t
ngx_goim_dispatch_mids(ngx_goim_push_t *push, int64_t *mids, ngx_uint_t n)
{
    uint64_t    mask, self;
    ngx_uint_t  i;

    ngx_goim_worker.stats->push_mids++;

    mask = 0;

    for (i = 0; i < n; i++) {
        mask |= ngx_goim_registry_mid_mask(mids[i]);
    }

    self = (uint64_t) 1 << ngx_goim_worker.widx;

    if (mask & self) {
        ngx_goim_local_mids(push, mids, n);
    }

    return ngx_goim_ipc_send(mask & ~self, NGX_GOIM_IMSG_MIDS, push, 0,
                             NULL, n, mids);
}


ngx_int_t
ngx_goim_dispatch_room(ngx_goim_push_t *push, ngx_str_t *name)
{
    uint64_t  mask, self;

    ngx_goim_worker.stats->push_room++;

    mask = ngx_goim_registry_room_mask(name->data, name->len);
    self = (uint64_t) 1 << ngx_goim_worker.widx;

    if (mask & self) {
        ngx_goim_local_room(push, name);
    }

    return ngx_goim_ipc_send(mask & ~self, NGX_GOIM_IMSG_ROOM, push, 0,
                             name, 1, NULL);
}


ngx_int_t
ngx_goim_dispatch_all(ngx_goim_push_t *push, ngx_uint_t speed)
{
    uint64_t   mask, self;
    ngx_int_t  rc;

    ngx_goim_worker.stats->push_all++;

    mask = ngx_goim_registry_live_mask();
    self = (uint64_t) 1 << ngx_goim_worker.widx;

    /* goim divides the speed among its comets; here among the workers */
    if (speed && (ngx_uint_t) __builtin_popcountll(mask) > 1) {
        speed = ngx_max(speed / (ngx_uint_t) __builtin_popcountll(mask), 1);
    }

    rc = ngx_goim_local_all(push, speed);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_goim_ipc_send(mask & ~self, NGX_GOIM_IMSG_ALL, push, speed,
                             NULL, 0, NULL);
}


/* key pushes reach only connections watching the operation */

void
ngx_goim_local_keys(ngx_goim_push_t *push, ngx_str_t *keys, ngx_uint_t n)
{
    ngx_uint_t           i;
    ngx_goim_channel_t  *ch;

    for (i = 0; i < n; i++) {
        ch = ngx_goim_key_lookup(keys[i].data, keys[i].len);

        if (ch) {
            (void) ngx_goim_dispatch_one(push, ch, 1);
        }
    }
}


/*
 * The keys reconnected on another worker: their old connections go.  A
 * kick can be stale: when the registry names this worker again, the
 * local connection is a newer one and stays.
 */

void
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
            ngx_goim_auth_unregister(ch);
            ngx_goim_channel_fail(ch, NGX_LOG_INFO, GOIM_WS_CLOSE_POLICY,
                                  "duplicate key: replaced by a newer "
                                  "connection");
        }
    }
}


void
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
            (void) ngx_goim_dispatch_one(push, ch, 1);
        }
    }
}


/*
 * Room pushes ignore the watched operations, as goim's BroadcastRoom.
 * They are rate-limited per room, not delayed.  The room's schedule
 * allows one send per goim_room_flush interval on average and one ahead:
 * a send moves room->due one interval on from max(due, now), and sends
 * are allowed from due - interval on.  A message goes out at once when
 * nothing waits and the schedule allows it, provided the room's last
 * frame has been written to every member, or the schedule has allowed a
 * send for a whole interval already.  So messages that come about once an
 * interval, with jitter, are not held back, while messages that come
 * faster than the fan-out merge.  Merged messages leave as one OP_RAW
 * frame when the schedule allows, or at once when the batch is full.
 */

void
ngx_goim_local_room(ngx_goim_push_t *push, ngx_str_t *name)
{
    size_t            len;
    ngx_msec_t        interval;
    ngx_msec_int_t    late;
    ngx_goim_conf_t  *gcf;
    ngx_goim_room_t  *room;

    room = ngx_goim_room_lookup(name->data, name->len);
    if (room == NULL) {
        return;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);
    interval = gcf->room_flush;

    /* how long ago the schedule allowed a send; negative: not yet */
    late = (ngx_msec_int_t) (ngx_current_msec - (room->due - interval));

    if (room->batch.count == 0
        && late >= 0
        && ((room->sending[0] == NULL && room->sending[1] == NULL)
            || late >= (ngx_msec_int_t) interval))
    {
        ngx_goim_room_send(room, push, interval);
        return;
    }

    /*
     * A batch stays well inside a connection's send queue: one that could
     * never be queued would be dropped for every member.  Order is kept
     * since it goes before this message.
     */

    len = push->raw ? push->body.len : GOIM_HEADER_LEN + push->body.len;

    if (room->batch.count && room->batch.len + len > gcf->queue_bytes / 4) {
        ngx_goim_room_flush(room, interval);
    }

    if ((push->raw ? goim_raw_batch_add_raw(&room->batch, push->body.data,
                                            push->body.len)
                   : goim_raw_batch_add(&room->batch, push->op,
                                        push->body.data, push->body.len))
        != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "goim: room batch allocation failed, message lost");
        return;
    }

    if (room->batch.count >= NGX_GOIM_ROOM_BATCH_MAX) {
        ngx_goim_room_flush(room, interval);
        return;
    }

    if (!room->flush.timer_set) {
        late = (ngx_msec_int_t) (ngx_current_msec - (room->due - interval));
        ngx_add_timer(&room->flush, late < 0 ? (ngx_msec_t) -late : 1);
    }
}


static void
ngx_goim_room_flush_handler(ngx_event_t *ev)
{
    ngx_goim_conf_t  *gcf;
    ngx_goim_room_t  *room;

    room = ev->data;

    if (room->batch.count == 0) {
        return;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    ngx_goim_room_flush(room, gcf->room_flush);
}


/* a member leaves with the drain: it gets what was merged so far */

void
ngx_goim_room_flush_pending(ngx_goim_room_t *room)
{
    ngx_goim_conf_t  *gcf;

    if (room->batch.count == 0) {
        return;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    ngx_goim_room_flush(room, gcf->room_flush);
}


static void
ngx_goim_room_flush(ngx_goim_room_t *room, ngx_msec_t interval)
{
    ngx_goim_push_t  push;

    if (room->flush.timer_set) {
        ngx_del_timer(&room->flush);
    }

    ngx_memzero(&push, sizeof(ngx_goim_push_t));
    push.raw = 1;
    push.body.data = room->batch.data;
    push.body.len = room->batch.len;

    ngx_goim_room_send(room, &push, interval);

    ngx_goim_push_release(&push);
    goim_raw_batch_reset(&room->batch);

    ngx_goim_worker.stats->room_batches++;
}


static void
ngx_goim_room_send(ngx_goim_room_t *room, ngx_goim_push_t *push,
    ngx_msec_t interval)
{
    ngx_uint_t           t;
    ngx_msec_t           now;
    ngx_queue_t         *q;
    ngx_goim_msg_t      *msg;
    ngx_goim_channel_t  *ch;

    for (q = ngx_queue_head(&room->members);
         q != ngx_queue_sentinel(&room->members);
         q = ngx_queue_next(q))
    {
        ch = ngx_queue_data(q, ngx_goim_channel_t, room_link);
        (void) ngx_goim_dispatch_one(push, ch, 0);
    }

    /*
     * The room keeps a reference to each frame until only its own is
     * left: then every member has written the frame (or dropped it).
     */

    for (t = 0; t < 2; t++) {
        msg = push->msg[t];

        if (msg == NULL || msg->holder) {
            continue;
        }

        if (room->sending[t]) {
            ngx_goim_room_forget(room, room->sending[t]);
        }

        msg->refs++;
        msg->holder = room;
        room->sending[t] = msg;
    }

    now = ngx_current_msec;

    if ((ngx_msec_int_t) (room->due - now) < 0) {
        room->due = now;
    }

    room->due += interval;

    if ((ngx_msec_int_t) (room->due - now) > (ngx_msec_int_t) (2 * interval)) {
        /* full batches, sent ahead: the next one still waits one interval */
        room->due = now + 2 * interval;
    }
}


/* every member has written the room's frame: the room lets go */

void
ngx_goim_room_held(ngx_goim_msg_t *msg)
{
    ngx_goim_room_forget(msg->holder, msg);
}


static void
ngx_goim_room_forget(ngx_goim_room_t *room, ngx_goim_msg_t *msg)
{
    ngx_uint_t  t;

    for (t = 0; t < 2; t++) {
        if (room->sending[t] == msg) {
            room->sending[t] = NULL;
        }
    }

    msg->holder = NULL;
    ngx_goim_msg_release(msg);
}


void
ngx_goim_room_init(ngx_goim_room_t *room)
{
    room->due = ngx_current_msec;
    room->sending[0] = NULL;
    room->sending[1] = NULL;
    goim_raw_batch_init(&room->batch);
    ngx_memzero(&room->flush, sizeof(ngx_event_t));
    room->flush.handler = ngx_goim_room_flush_handler;
    room->flush.data = room;
    room->flush.log = ngx_cycle->log;
    room->flush.cancelable = 1;
}


void
ngx_goim_room_free(ngx_goim_room_t *room)
{
    ngx_uint_t  t;

    if (room->flush.timer_set) {
        ngx_del_timer(&room->flush);
    }

    for (t = 0; t < 2; t++) {
        if (room->sending[t]) {
            ngx_goim_room_forget(room, room->sending[t]);
        }
    }

    goim_raw_batch_free(&room->batch);
    ngx_free(room);
}


/*
 * Broadcast to every connection watching the operation.  With a speed,
 * goim paces it; here slices of speed/10 connections leave every 100 ms,
 * walking the channel list with a cursor node so that connections may
 * close meanwhile.  The push is copied: the caller's memory may go.
 */

ngx_int_t
ngx_goim_local_all(ngx_goim_push_t *push, ngx_uint_t speed)
{
    ngx_queue_t           *q;
    ngx_goim_walk_t       *node;
    ngx_goim_channel_t    *ch;
    ngx_goim_broadcast_t  *b;
    ngx_goim_worker_t     *w = &ngx_goim_worker;

    if (speed == 0) {
        for (q = ngx_queue_head(&w->channels);
             q != ngx_queue_sentinel(&w->channels);
             q = ngx_queue_next(q))
        {
            node = (ngx_goim_walk_t *) q;

            if (node->cursor) {
                continue;
            }

            ch = ngx_queue_data(node, ngx_goim_channel_t, all);
            (void) ngx_goim_dispatch_one(push, ch, 1);
        }

        return NGX_OK;
    }

    b = ngx_calloc(offsetof(ngx_goim_broadcast_t, data) + push->body.len,
                   ngx_cycle->log);
    if (b == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(b->data, push->body.data, push->body.len);
    b->push.op = push->op;
    b->push.raw = push->raw;
    b->push.body.data = b->data;
    b->push.body.len = push->body.len;
    b->per_tick = ngx_max(speed * NGX_GOIM_BROADCAST_TICK / 1000, 1);

    b->cursor.cursor = NGX_GOIM_CURSOR_BROADCAST;
    ngx_queue_insert_head(&w->channels, &b->cursor.queue);

    b->ev.handler = ngx_goim_broadcast_handler;
    b->ev.data = b;
    b->ev.log = ngx_cycle->log;
    b->ev.cancelable = 1;

    ngx_goim_broadcast_handler(&b->ev);

    return NGX_OK;
}


static void
ngx_goim_broadcast_handler(ngx_event_t *ev)
{
    ngx_uint_t             n;
    ngx_queue_t           *q;
    ngx_goim_walk_t       *node;
    ngx_goim_channel_t    *ch;
    ngx_goim_broadcast_t  *b;
    ngx_goim_worker_t     *w = &ngx_goim_worker;

    b = ev->data;

    for (n = 0; n < b->per_tick; /* void */) {
        q = ngx_queue_next(&b->cursor.queue);

        /*
         * Also while the worker drains: a connection it closes first gets
         * the broadcast then (ngx_goim_broadcast_catch_up).
         */

        if (q == ngx_queue_sentinel(&w->channels)) {
            ngx_queue_remove(&b->cursor.queue);
            ngx_goim_push_release(&b->push);
            ngx_free(b);
            return;
        }

        /* step the cursor over the node */
        ngx_queue_remove(&b->cursor.queue);
        ngx_queue_insert_after(q, &b->cursor.queue);

        node = (ngx_goim_walk_t *) q;

        if (node->cursor) {
            continue;
        }

        ch = ngx_queue_data(node, ngx_goim_channel_t, all);
        (void) ngx_goim_dispatch_one(&b->push, ch, 1);
        n++;
    }

    ngx_add_timer(ev, NGX_GOIM_BROADCAST_TICK);
}


/*
 * The drain closes a channel: the paced broadcasts whose cursor has not
 * reached it yet (the cursor stands before it in the list) are sent to
 * it now, ahead of their pace.
 */

void
ngx_goim_broadcast_catch_up(ngx_goim_channel_t *ch)
{
    ngx_queue_t           *q;
    ngx_goim_walk_t       *node;
    ngx_goim_broadcast_t  *b;
    ngx_goim_worker_t     *w = &ngx_goim_worker;

    for (q = ngx_queue_prev(&ch->all.queue);
         q != ngx_queue_sentinel(&w->channels);
         q = ngx_queue_prev(q))
    {
        node = (ngx_goim_walk_t *) q;

        if (node->cursor != NGX_GOIM_CURSOR_BROADCAST) {
            continue;
        }

        b = (ngx_goim_broadcast_t *) node;
        (void) ngx_goim_dispatch_one(&b->push, ch, 1);
    }
}
