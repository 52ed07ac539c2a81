
/*
 * goim for nginx, floor "ipc": pushes between the worker processes of a
 * node.  A push for other workers is copied once into the shared zone
 * and queued in each target worker's inbox (registry/); a worker whose
 * inbox was empty is woken through its own datagram socket.  The
 * receiver hands each message to the handler the push floor set.
 */

#ifndef _NGX_GOIM_IPC_H_INCLUDED_
#define _NGX_GOIM_IPC_H_INCLUDED_


#include "ngx_goim_core.h"
#include "ngx_goim_registry.h"

#include "goim_imsg.h"


/* a message from another worker, valid during the call only */
typedef void (*ngx_goim_ipc_handler_pt)(goim_imsg_t *m);

/* graceful shutdown began (nginx -s quit or reload) */
typedef void (*ngx_goim_ipc_shutdown_pt)(void);


ngx_int_t ngx_goim_ipc_init(ngx_cycle_t *cycle);
void ngx_goim_ipc_exit(ngx_cycle_t *cycle);
void ngx_goim_ipc_set_handler(ngx_goim_ipc_handler_pt handler);
void ngx_goim_ipc_set_shutdown_handler(ngx_goim_ipc_shutdown_pt handler);

/*
 * Sends to the workers in mask (this one left out): head's type, op,
 * speed and raw, then the keys or room (targets), or the mids, and the
 * body.  NGX_BUSY when an inbox was full (that worker misses the push),
 * NGX_ERROR when the zone is exhausted.
 */
ngx_int_t ngx_goim_ipc_send(ngx_goim_mask_t *mask, goim_imsg_head_t *head,
    ngx_str_t *targets, ngx_uint_t ntargets, int64_t *mids, ngx_str_t *body);

/*
 * A room message kept in the room's history (goim_history): its
 * position in *pos; this worker's members get it too, in offset order.
 */
ngx_int_t ngx_goim_ipc_send_room(goim_imsg_head_t *head, ngx_str_t *room,
    ngx_str_t *body, ngx_goim_history_pos_t *pos);
ngx_int_t ngx_goim_ipc_send_room_at(goim_imsg_head_t *head, ngx_str_t *room,
    ngx_str_t *body, ngx_goim_history_pos_t *given,
    ngx_goim_history_pos_t *pos);

/* hands every message waiting in this worker's inbox to the handler */
void ngx_goim_ipc_receive(void);


#endif /* _NGX_GOIM_IPC_H_INCLUDED_ */
