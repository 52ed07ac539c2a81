
/*
 * goim for nginx: the comet floor's start in a worker.  The floors below
 * reach it only through the handlers it hands them here: a channel's
 * packets and its close (connection/), a key taken over by another
 * connection (push/), and the start of a graceful shutdown (ipc/).
 */


#include "ngx_goim_comet.h"


static ngx_goim_channel_handlers_t  ngx_goim_comet_handlers = {
    ngx_goim_packet,
    ngx_goim_auth_closing
};


ngx_int_t
ngx_goim_comet_init(ngx_cycle_t *cycle)
{
    ngx_goim_channel_set_handlers(&ngx_goim_comet_handlers);
    ngx_goim_push_set_kick_handler(ngx_goim_auth_kick);
    ngx_goim_push_set_member_handler(ngx_goim_member_push);
    ngx_goim_ipc_set_shutdown_handler(ngx_goim_drain);

    ngx_goim_housekeeping_init(cycle);

    return NGX_OK;
}
