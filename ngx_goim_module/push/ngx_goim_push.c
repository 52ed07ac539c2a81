
/*
 * goim for nginx: a push's encoded frames.  Each transport's frame is
 * made the first time a socket of that transport needs it, then shared
 * by every socket queue that sends it.
 */


#include "ngx_goim_push.h"


/*
 * A push as goim's job sends it: an OP_RAW proto whose body is the inner
 * packet(s).  TCP gets the inner packets as they are; WebSocket one
 * binary frame with an outer op 9 header (docs/PROTOCOL.md 1.8).
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
        /*
         * a room message's stream id in ver, its offset in seq
         * (docs/PROTOCOL.md 1.15)
         */
        goim_packet_encode(p, push->pos ? (int32_t) push->stream : 1,
                           push->op, (int32_t) (uint32_t) push->pos,
                           push->body.data, push->body.len);
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


/*
 * Whole inner packets for one channel (a recovery's messages): TCP gets
 * them as they are, WebSocket one binary frame with an outer op 9
 * header.  NGX_DECLINED: the send queue had no room for them.
 */

ngx_int_t
ngx_goim_push_packets(ngx_goim_channel_t *ch, u_char *buf, size_t len)
{
    size_t           hlen;
    u_char           ws[GOIM_WS_MAX_HEADER], *p;
    ngx_int_t        rc;
    ngx_goim_msg_t  *msg;

    hlen = 0;

    if (ch->transport == NGX_GOIM_WS) {
        hlen = goim_ws_write_header(ws, GOIM_WS_OP_BINARY,
                                    GOIM_HEADER_LEN + len);
    }

    msg = ngx_goim_msg_alloc(hlen + GOIM_HEADER_LEN + len);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    p = msg->data;

    if (ch->transport == NGX_GOIM_WS) {
        p = ngx_cpymem(p, ws, hlen);
        p += goim_packet_write_header(p, len, 1, GOIM_OP_RAW, 0);
        ngx_memcpy(p, buf, len);

    } else {
        /* TCP: the inner packets as they are */
        ngx_memcpy(p, buf, len);
        msg->len = len;
    }

    rc = ngx_goim_channel_push(ch, msg);

    ngx_goim_msg_release(msg);

    return rc == NGX_OK ? NGX_OK : NGX_DECLINED;
}
