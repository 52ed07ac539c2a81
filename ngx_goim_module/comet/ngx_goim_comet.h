
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


/* the floor's start in a worker: handlers wired, housekeeping armed */
ngx_int_t ngx_goim_comet_init(ngx_cycle_t *cycle);

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
ngx_int_t ngx_goim_recover_seam(ngx_goim_channel_t *ch,
    ngx_goim_history_read_t *hr);
size_t ngx_goim_recover_positions_len(ngx_goim_channel_t *ch);
u_char *ngx_goim_recover_positions(u_char *p, ngx_goim_channel_t *ch,
    ngx_goim_history_read_t *hr);
ngx_int_t ngx_goim_recover_finish(ngx_goim_channel_t *ch,
    ngx_goim_history_read_t *hr, ngx_uint_t changed);

/* housekeeping and the drain (ngx_goim_drain.c) */
void ngx_goim_housekeeping_init(ngx_cycle_t *cycle);
void ngx_goim_drain(void);


#endif /* _NGX_GOIM_COMET_H_INCLUDED_ */
