
/*
 * goim for nginx: encoded messages.  A message is framed once (per
 * transport) and queued on every socket that sends it; each queue holds
 * a reference, and the last release frees it.
 */


#include "ngx_goim_core.h"


/* set by the push floor: a room lets go of a frame every member wrote */
static ngx_goim_msg_holder_pt  ngx_goim_msg_holder_handler;


void
ngx_goim_msg_set_holder_handler(ngx_goim_msg_holder_pt handler)
{
    ngx_goim_msg_holder_handler = handler;
}


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
    msg->holder = NULL;

    return msg;
}


void
ngx_goim_msg_release(ngx_goim_msg_t *msg)
{
    if (--msg->refs == 0) {
        ngx_free(msg);
        return;
    }

    if (msg->refs == 1 && msg->holder) {
        /* every other user has written the frame: the holder lets go */
        ngx_goim_msg_holder_handler(msg);
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
