
/*
 * goim for nginx, floor "push": every push enters here.  Routing by
 * key, mid, room or to all (the registry names the workers that hold
 * the targets; this worker's own sockets are served directly, the others
 * through ipc), the worker's rooms with their rate limit, paced
 * broadcasts, and the kick of a key that connected again elsewhere.
 * A push is framed once per transport and the same buffer is queued on
 * every target socket.
 */

#ifndef _NGX_GOIM_PUSH_H_INCLUDED_
#define _NGX_GOIM_PUSH_H_INCLUDED_


#include "ngx_goim_core.h"
#include "ngx_goim_registry.h"
#include "ngx_goim_ipc.h"
#include "ngx_goim_connection.h"

#include "goim_room_schedule.h"


/* a push on its way to sockets: encoded lazily, once per transport */
typedef struct {
    int32_t                op;
    ngx_str_t              body;
    ngx_uint_t             raw;         /* body is already OP_RAW packets */
    uint64_t               pos;         /* a room message's offset, or 0 */
    uint32_t               stream;      /* and its room's stream id */
    /*
     * a member's message kept in Redis (docs/PROTOCOL.md 1.16): its
     * member, its stream's epoch, pos its offset; mid 0: none
     */
    int64_t                mid;
    uint64_t               epoch;
    ngx_goim_msg_t        *msg[2];      /* by transport */
} ngx_goim_push_t;


struct ngx_goim_room_s {
    ngx_goim_hnode_t       hn;          /* hn.str: the room id */
    ngx_queue_t            members;
    ngx_uint_t             online;      /* members in this worker */
    ngx_goim_online_cache_t  node_online;  /* as heartbeats answer it */

    /* the rate limit, and the last frames until every member wrote them */
    goim_room_schedule_t   schedule;
    ngx_goim_msg_t        *sending[2];  /* by transport */
    goim_raw_batch_t       batch;
    uint64_t               seam;        /* the highest member's room_pos */
    ngx_event_t            flush;
    u_char                 name[1];
};


/* a channel of this worker replaced by a newer one with its key */
typedef void (*ngx_goim_kick_pt)(ngx_goim_channel_t *ch);

/*
 * a member's message with its position (push->mid) for one of the
 * member's channels: the comet holds it, drops it or sends it
 */
typedef void (*ngx_goim_member_pt)(ngx_goim_push_t *push,
    ngx_goim_channel_t *ch);


/* the floor (ngx_goim_dispatch.c) */
ngx_int_t ngx_goim_push_init(ngx_cycle_t *cycle);
void ngx_goim_push_set_kick_handler(ngx_goim_kick_pt handler);
void ngx_goim_push_set_member_handler(ngx_goim_member_pt handler);

/*
 * Routing, from the API and the internal push.  NGX_BUSY: an inbox was
 * full; NGX_ERROR: memory (the zone or the worker's) is exhausted.
 */
ngx_int_t ngx_goim_dispatch_keys(ngx_goim_push_t *push, ngx_str_t *keys,
    ngx_uint_t n);
ngx_int_t ngx_goim_dispatch_mids(ngx_goim_push_t *push, int64_t *mids,
    ngx_uint_t n);
ngx_int_t ngx_goim_dispatch_room(ngx_goim_push_t *push, ngx_str_t *room);
ngx_int_t ngx_goim_dispatch_room_at(ngx_goim_push_t *push, ngx_str_t *room,
    ngx_goim_history_pos_t *given);
ngx_int_t ngx_goim_dispatch_all(ngx_goim_push_t *push, ngx_uint_t speed);

/* the key is now held by worker owner: its channel here must go */
void ngx_goim_push_kick(ngx_int_t owner, ngx_str_t *key);

/* encoding (ngx_goim_push.c) */
ngx_goim_msg_t *ngx_goim_push_msg(ngx_goim_push_t *push,
    ngx_uint_t transport);
void ngx_goim_push_release(ngx_goim_push_t *push);
ngx_int_t ngx_goim_push_packets(ngx_goim_channel_t *ch, u_char *buf,
    size_t len);

/* rooms (ngx_goim_room.c) */
void ngx_goim_rooms_init(void);
ngx_int_t ngx_goim_room_join(ngx_goim_channel_t *ch, u_char *name,
    size_t len, ngx_goim_room_t **joined);
ngx_goim_room_t *ngx_goim_room_member(ngx_goim_channel_t *ch, u_char *name,
    size_t len);
void ngx_goim_room_leave(ngx_goim_channel_t *ch, ngx_goim_room_t *room);
void ngx_goim_room_leave_all(ngx_goim_channel_t *ch);
void ngx_goim_room_withdraw(ngx_goim_channel_t *ch);
ngx_uint_t ngx_goim_room_online(ngx_goim_room_t *room);
void ngx_goim_room_push(ngx_goim_push_t *push, ngx_str_t *name);
void ngx_goim_room_flush_pending(ngx_goim_room_t *room);
void ngx_goim_room_held(ngx_goim_msg_t *msg);
void ngx_goim_room_seam(ngx_goim_channel_t *ch, ngx_goim_room_t *room,
    uint64_t pos);

/* broadcasts (ngx_goim_broadcast.c) */
ngx_int_t ngx_goim_broadcast(ngx_goim_push_t *push, ngx_uint_t speed);
void ngx_goim_broadcast_catch_up(ngx_goim_channel_t *ch);


/*
 * One push to one channel; filter: only if the channel watches the
 * push's operation.  1 when it was queued.
 */

static ngx_inline ngx_uint_t
ngx_goim_push_one(ngx_goim_push_t *push, ngx_goim_channel_t *ch,
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


#endif /* _NGX_GOIM_PUSH_H_INCLUDED_ */
