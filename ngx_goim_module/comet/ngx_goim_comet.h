
/*
 * goim for nginx, floor "comet": what a client connection does above
 * its transport.  Authentication (op 7) and the indexes it joins, the
 * other client operations (heartbeat, change room, watched ops), the
 * worker's housekeeping and its drain at shutdown, and the wiring of
 * this floor's handlers into the floors below.
 */

#ifndef _NGX_GOIM_COMET_H_INCLUDED_
#define _NGX_GOIM_COMET_H_INCLUDED_


#include "ngx_goim_core.h"
#include "ngx_goim_registry.h"
#include "ngx_goim_ipc.h"
#include "ngx_goim_connection.h"
#include "ngx_goim_push.h"
#include "ngx_goim_redis.h"
#include "ngx_goim_kafka.h"

#include <goim_token.h>
#include <goim_recover.h>


/* the answer for one room of a join or leave */
typedef struct {
    u_char                *id;
    size_t                 len;
    const char            *error;       /* NULL: done */
    const char            *reason;      /* details of "bad id" */
    ngx_uint_t             fresh;       /* joined by this operation */
    ngx_goim_history_read_t  *hr;       /* its position (goim_history) */
} ngx_goim_room_result_t;


/* ,"stream":65535,"epoch":"..","offset":N at most */
#define NGX_GOIM_RECOVER_POSITION_LEN                                         \
    (sizeof(",\"stream\":65535,\"epoch\":\"\",\"offset\":") - 1             \
     + NGX_GOIM_EPOCH_LEN + NGX_INT64_LEN)

#define NGX_GOIM_RECOVER_AUTH    1
#define NGX_GOIM_RECOVER_ALWAYS  2


/* the floor's start in a worker: handlers wired, housekeeping armed */
ngx_int_t ngx_goim_comet_init(ngx_cycle_t *cycle);

/* a connection's rooms, ops 30 and 32 (ngx_goim_rooms.c) */
ngx_int_t ngx_goim_rooms_rights(ngx_goim_channel_t *ch,
    goim_token_rooms_t *rights);
ngx_int_t ngx_goim_rooms_join(ngx_goim_channel_t *ch,
    ngx_goim_room_result_t *r, ngx_uint_t token, ngx_goim_room_t **joined);
ngx_int_t ngx_goim_rooms_enter(ngx_goim_channel_t *ch, u_char *id,
    size_t len, ngx_goim_room_t **joined);
void ngx_goim_rooms_leave(ngx_goim_channel_t *ch, ngx_goim_room_t *room);
void ngx_goim_rooms_leave_all(ngx_goim_channel_t *ch);
ngx_int_t ngx_goim_rooms_change(ngx_goim_channel_t *ch, u_char *id,
    size_t len, ngx_goim_room_result_t *r);
ngx_int_t ngx_goim_rooms_op(ngx_goim_channel_t *ch, goim_packet_t *pkt,
    ngx_uint_t join);
size_t ngx_goim_rooms_json_len(ngx_goim_room_result_t *r, ngx_uint_t n,
    ngx_uint_t join);
u_char *ngx_goim_rooms_json(u_char *p, ngx_goim_room_result_t *r,
    ngx_uint_t n, ngx_uint_t join);
void ngx_goim_rooms_departed(void);

/* op 7 and the channel's registration (ngx_goim_auth.c) */
ngx_int_t ngx_goim_auth(ngx_goim_channel_t *ch, goim_packet_t *pkt);
void ngx_goim_auth_unregister(ngx_goim_channel_t *ch);
void ngx_goim_auth_withdraw(ngx_goim_channel_t *ch);
void ngx_goim_auth_closing(ngx_goim_channel_t *ch);
void ngx_goim_auth_kick(ngx_goim_channel_t *ch);

/* a client's packets (ngx_goim_packet.c) */
ngx_int_t ngx_goim_packet(ngx_goim_channel_t *ch, goim_packet_t *pkt);

/* positions and recovery (ngx_goim_recover.c) */
ngx_uint_t ngx_goim_recover_op(int32_t op);
ngx_int_t ngx_goim_recover_request(ngx_goim_channel_t *ch,
    goim_packet_t *pkt);
ngx_int_t ngx_goim_recover_seams(ngx_goim_channel_t *ch,
    ngx_goim_room_result_t *r, ngx_uint_t n, ngx_goim_history_read_t **hrs);
u_char *ngx_goim_recover_position(u_char *p, ngx_goim_history_read_t *hr);
ngx_int_t ngx_goim_recover_finish(ngx_goim_channel_t *ch,
    ngx_goim_room_result_t *r, ngx_uint_t n, ngx_goim_history_read_t *hrs,
    ngx_uint_t flags);
void ngx_goim_recover_release(ngx_goim_room_result_t *r, ngx_uint_t n,
    ngx_goim_history_read_t *hrs);
/* the room's position asked for by op 35, NULL when none is pending */
goim_recover_room_t *ngx_goim_recover_want(ngx_goim_channel_t *ch,
    u_char *id, size_t len);

/*
 * A member's stream in Redis (ngx_goim_member.c): init at auth, read
 * once the session is written (done(ch) when it is back), then op 8's
 * entry, op 36's, and the live stream.
 */
typedef void (*ngx_goim_member_done_pt)(ngx_goim_channel_t *ch);

#define NGX_GOIM_MEMBER_ENTRY_LEN                                             \
    (sizeof(",{\"room_id\":\"\",\"joined\":true,\"stream\":0,"               \
            "\"epoch\":\"\",\"offset\":}")                                   \
     + NGX_GOIM_MEMBER_ROOM_LEN + 2 * NGX_INT64_LEN)

#define NGX_GOIM_MEMBER_RESULT_LEN                                            \
    (NGX_GOIM_MEMBER_ENTRY_LEN                                                \
     + sizeof(",\"recovered\":false,\"reason\":\"\"") + 128 * 6)

ngx_int_t ngx_goim_member_init(ngx_goim_channel_t *ch);
ngx_int_t ngx_goim_member_read(ngx_goim_channel_t *ch,
    ngx_goim_member_done_pt done);
/* "mid://<mid>" of a connection with a member stream, else NULL */
u_char *ngx_goim_member_room(ngx_goim_channel_t *ch, size_t *len);
void ngx_goim_member_want(ngx_goim_channel_t *ch,
    goim_recover_room_t *want);
void ngx_goim_member_cancel(ngx_goim_channel_t *ch);
size_t ngx_goim_member_json_len(ngx_goim_channel_t *ch);
u_char *ngx_goim_member_json(ngx_goim_channel_t *ch, u_char *p);
ngx_uint_t ngx_goim_member_named(ngx_goim_channel_t *ch, u_char *id,
    size_t len);
u_char *ngx_goim_member_result(ngx_goim_channel_t *ch, u_char *p);
void ngx_goim_member_live(ngx_goim_channel_t *ch);
void ngx_goim_member_push(ngx_goim_push_t *push, ngx_goim_channel_t *ch);

/* housekeeping and the drain (ngx_goim_drain.c) */
void ngx_goim_housekeeping_init(ngx_cycle_t *cycle);
void ngx_goim_drain(void);


#endif /* _NGX_GOIM_COMET_H_INCLUDED_ */
