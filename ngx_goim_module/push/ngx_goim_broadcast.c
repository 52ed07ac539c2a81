
/*
 * goim for nginx: a push to every channel of the worker watching its
 * operation.  With a speed, goim paces it; here slices of speed/10
 * channels leave every 100 ms, walking the channel list with a cursor
 * so that channels may close meanwhile.
 */


#include "ngx_goim_push.h"


#define NGX_GOIM_BROADCAST_TICK  100    /* ms between paced slices */


typedef struct {
    ngx_goim_walk_t        cursor;      /* position in the channel list */
    ngx_goim_push_t        push;
    ngx_uint_t             per_tick;
    ngx_event_t            ev;
    u_char                 data[1];     /* the message body */
} ngx_goim_broadcast_t;


static void ngx_goim_broadcast_prefetch(ngx_goim_channel_t *ch);
static void ngx_goim_broadcast_handler(ngx_event_t *ev);


/* a paced push is copied: the caller's memory may go */

ngx_int_t
ngx_goim_broadcast(ngx_goim_push_t *push, ngx_uint_t speed)
{
    ngx_goim_channel_t    *ch;
    ngx_goim_broadcast_t  *b;

    if (speed == 0) {
        for (ch = ngx_goim_channel_first();
             ch;
             ch = ngx_goim_channel_next(ch))
        {
            ngx_goim_broadcast_prefetch(ch);
            (void) ngx_goim_push_one(push, ch, 1);
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

    ngx_goim_cursor_start(&b->cursor, NGX_GOIM_CURSOR_BROADCAST);

    ngx_goim_event_init(&b->ev, ngx_goim_broadcast_handler, ngx_cycle->log,
                        1);

    ngx_goim_broadcast_handler(&b->ev);

    return NGX_OK;
}


/*
 * The list's nodes after ch's, while ch is served (as the room loop
 * does): the node after next and the next channel, and that channel's
 * watched ops, which the turn before made known.  A cursor node is not
 * a channel: nothing is read through it.
 */

static void
ngx_goim_broadcast_prefetch(ngx_goim_channel_t *ch)
{
    ngx_queue_t          *q1, *end;
    ngx_goim_walk_t      *node;
    ngx_goim_channel_t   *ch1;

    end = ngx_queue_sentinel(&ngx_goim_channels.channels);

    q1 = ngx_queue_next(&ch->all.queue);
    if (q1 == end) {
        return;
    }

    ngx_goim_prefetch(ngx_queue_next(q1));

    node = (ngx_goim_walk_t *) q1;

    if (node->cursor == 0) {
        ch1 = ngx_queue_data(node, ngx_goim_channel_t, all);
        ngx_goim_prefetch(ch1);
        ngx_goim_prefetch(ch1->watch);
    }
}


static void
ngx_goim_broadcast_handler(ngx_event_t *ev)
{
    ngx_uint_t             n;
    ngx_goim_channel_t    *ch;
    ngx_goim_broadcast_t  *b;

    b = (ngx_goim_broadcast_t *)
            ((u_char *) ev - offsetof(ngx_goim_broadcast_t, ev));

    /*
     * Also while the worker drains: a channel it closes first gets the
     * broadcast then (ngx_goim_broadcast_catch_up).
     */

    for (n = 0; n < b->per_tick; n++) {
        ch = ngx_goim_cursor_step(&b->cursor);

        if (ch == NULL) {
            ngx_goim_push_release(&b->push);
            ngx_free(b);
            return;
        }

        (void) ngx_goim_push_one(&b->push, ch, 1);
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
    ngx_goim_walk_t       *node;
    ngx_goim_broadcast_t  *b;

    for (node = ngx_goim_cursor_before(&ch->all, NGX_GOIM_CURSOR_BROADCAST);
         node;
         node = ngx_goim_cursor_before(node, NGX_GOIM_CURSOR_BROADCAST))
    {
        b = (ngx_goim_broadcast_t *) node;
        (void) ngx_goim_push_one(&b->push, ch, 1);
    }
}
