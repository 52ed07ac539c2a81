
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


#define NGX_GOIM_BROADCAST_TICK  100    /* ms between paced slices */


ngx_goim_msg_t *
ngx_goim_msg_alloc(size_t len)
{
    ngx_goim_msg_t  *msg;

    msg = ngx_alloc(offsetof(ngx_goim_msg_t, data) + len, ngx_cycle->log);
    if (msg == NULL) {
        return NULL;
    }

    msg->refs = 1;
    msg->len = len;

    return msg;
}


void
ngx_goim_msg_release(ngx_goim_msg_t *msg)
{
    if (--msg->refs == 0) {
        ngx_free(msg);
    }
}


/* one goim packet, behind a WebSocket frame header for WebSocket */

ngx_goim_msg_t *
ngx_goim_msg_packet(ngx_uint_t transport, int32_t ver, int32_t op,
    int32_t seq, u_char *body, size_t len)
{
    size_t           hlen;
    u_char           ws[GOIM_WS_MAX_HEADER];
    ngx_goim_msg_t  *msg;

    hlen = 0;

    if (transport == NGX_GOIM_WS) {
        hlen = goim_ws_write_header(ws, GOIM_WS_OP_BINARY,
                                    GOIM_HEADER_LEN + len);
    }

    msg = ngx_goim_msg_alloc(hlen + GOIM_HEADER_LEN + len);
    if (msg == NULL) {
        return NULL;
    }

    ngx_memcpy(msg->data, ws, hlen);
    goim_packet_encode(msg->data + hlen, ver, op, seq, body, len);

    return msg;
}


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


/* key pushes reach only connections watching the operation */

ngx_uint_t
ngx_goim_dispatch_keys(ngx_goim_push_t *push, ngx_str_t *keys, ngx_uint_t n)
{
    ngx_uint_t           i, sent;
    ngx_goim_channel_t  *ch;

    sent = 0;

    for (i = 0; i < n; i++) {
        ch = ngx_goim_key_lookup(keys[i].data, keys[i].len);

        if (ch) {
            sent += ngx_goim_dispatch_one(push, ch, 1);
        }
    }

    ngx_goim_worker.pushes++;

    return sent;
}


ngx_uint_t
ngx_goim_dispatch_mids(ngx_goim_push_t *push, int64_t *mids, ngx_uint_t n)
{
    ngx_uint_t           i, sent;
    ngx_queue_t         *q;
    ngx_goim_mid_t      *m;
    ngx_goim_channel_t  *ch;

    sent = 0;

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
            sent += ngx_goim_dispatch_one(push, ch, 1);
        }
    }

    ngx_goim_worker.pushes++;

    return sent;
}


/* room pushes ignore the watched operations, as goim's BroadcastRoom */

ngx_uint_t
ngx_goim_dispatch_room(ngx_goim_push_t *push, ngx_str_t *name)
{
    ngx_uint_t           sent;
    ngx_queue_t         *q;
    ngx_goim_room_t     *room;
    ngx_goim_channel_t  *ch;

    ngx_goim_worker.pushes++;

    room = ngx_goim_room_lookup(name->data, name->len);
    if (room == NULL) {
        return 0;
    }

    sent = 0;

    for (q = ngx_queue_head(&room->members);
         q != ngx_queue_sentinel(&room->members);
         q = ngx_queue_next(q))
    {
        ch = ngx_queue_data(q, ngx_goim_channel_t, room_link);
        sent += ngx_goim_dispatch_one(push, ch, 0);
    }

    return sent;
}


/*
 * Broadcast to every connection watching the operation.  With a speed,
 * goim paces it; here slices of speed/10 connections leave every 100 ms,
 * walking the channel list with a cursor node so that connections may
 * close meanwhile.  The push is copied: the caller's memory may go.
 */

ngx_int_t
ngx_goim_dispatch_all(ngx_goim_push_t *push, ngx_uint_t speed,
    ngx_log_t *log)
{
    ngx_queue_t           *q;
    ngx_goim_walk_t       *node;
    ngx_goim_channel_t    *ch;
    ngx_goim_broadcast_t  *b;
    ngx_goim_worker_t     *w = &ngx_goim_worker;

    w->pushes++;

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
                   log);
    if (b == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(b->data, push->body.data, push->body.len);
    b->push.op = push->op;
    b->push.raw = push->raw;
    b->push.body.data = b->data;
    b->push.body.len = push->body.len;
    b->per_tick = ngx_max(speed * NGX_GOIM_BROADCAST_TICK / 1000, 1);

    b->cursor.cursor = 1;
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

        if (q == ngx_queue_sentinel(&w->channels) || ngx_exiting) {
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
