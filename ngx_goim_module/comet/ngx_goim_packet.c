
/*
 * goim for nginx: the operations of a client (docs/PROTOCOL.md 1.2):
 * auth first, then heartbeats, room changes, joins and leaves, watched
 * operations; anything else is echoed, as goim's comet does.
 */


#include "ngx_goim_comet.h"


static ngx_int_t ngx_goim_packet_change_room(ngx_goim_channel_t *ch,
    goim_packet_t *pkt);
static ngx_int_t ngx_goim_packet_join(ngx_goim_channel_t *ch,
    goim_packet_t *pkt, ngx_goim_room_result_t *r);
static ngx_int_t ngx_goim_packet_sub(ngx_goim_channel_t *ch,
    goim_packet_t *pkt, ngx_uint_t add);


/*
 * Returns NGX_ERROR only when memory ran out; protocol failures go
 * through ngx_goim_channel_fail().
 */

ngx_int_t
ngx_goim_packet(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    uint32_t           online;
    u_char             body[4];
    ngx_connection_t  *c;

    c = ch->connection;

    if (ngx_goim_recover_op(pkt->op)) {
        /* op 35 (goim_history): no reply, answered at the next join */
        return ngx_goim_recover_request(ch, pkt);
    }

    if (!ch->authed) {
        if (pkt->op != GOIM_OP_AUTH) {
            ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                           "goim: operation %D before auth ignored", pkt->op);
            return NGX_OK;
        }

        return ngx_goim_auth(ch, pkt);
    }

    switch (pkt->op) {

    case GOIM_OP_HEARTBEAT:
        ngx_add_timer(c->read, ch->conf->heartbeat * ch->conf->heartbeat_max);

        if (ch->session_renew
            && ngx_current_msec - ch->session_last > ch->session_renew)
        {
            /* goim renews the Redis session on a client heartbeat */
            ngx_goim_session_renew(ch);
        }

        if (ch->room) {
            ch->last_online = ngx_goim_room_online(ch->room);
        }

        online = ch->last_online;
        goim_put_u32(body, online);

        return ngx_goim_channel_reply(ch, pkt->ver, GOIM_OP_HEARTBEAT_REPLY,
                                      pkt->seq, body, 4);

    case GOIM_OP_CHANGE_ROOM:
        return ngx_goim_packet_change_room(ch, pkt);

    case GOIM_OP_JOIN:
    case GOIM_OP_LEAVE:
        return ngx_goim_rooms_op(ch, pkt, pkt->op == GOIM_OP_JOIN);

    case GOIM_OP_SUB:
    case GOIM_OP_UNSUB:
        if (ngx_goim_packet_sub(ch, pkt, pkt->op == GOIM_OP_SUB) != NGX_OK) {
            /* the channel failed: no reply */
            return NGX_OK;
        }

        return ngx_goim_channel_reply(ch, pkt->ver, pkt->op + 1, pkt->seq,
                                      (u_char *) pkt->body, pkt->body_len);

    case GOIM_OP_RAW:
        if (ch->transport == NGX_GOIM_TCP) {
            /* goim writes an OP_RAW echo on TCP as its (empty) body */
            return NGX_OK;
        }

        /* fall through */

    default:
        /* goim hands other ops to logic's Receive and echoes them */
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, c->log, 0,
                       "goim: received operation %D, %uz bytes",
                       pkt->op, pkt->body_len);

        return ngx_goim_channel_reply(ch, pkt->ver, pkt->op, pkt->seq,
                                      NULL, 0);
    }
}


/*
 * op 12, answered with op 13 in every case; with goim_history, a room
 * joined also gets its seam, the recovery asked for (op 35) and op 36
 */

static ngx_int_t
ngx_goim_packet_change_room(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    ngx_goim_room_result_t    r;
    ngx_goim_history_read_t  *hrs;

    ngx_memzero(&r, sizeof(ngx_goim_room_result_t));

    if (ngx_goim_packet_join(ch, pkt, &r) == NGX_ERROR) {
        return NGX_ERROR;
    }

    hrs = NULL;

    if (ngx_goim_recover_seams(ch, &r, 1, &hrs) == NGX_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ch->connection->log, 0,
                      "goim: no position for the room joined: shared zone "
                      "exhausted");
    }

    if (ngx_goim_channel_reply(ch, pkt->ver, GOIM_OP_CHANGE_ROOM_REPLY,
                               pkt->seq, (u_char *) pkt->body, pkt->body_len)
        != NGX_OK)
    {
        ngx_goim_recover_release(&r, 1, hrs);
        return NGX_ERROR;
    }

    return ngx_goim_recover_finish(ch, &r, 1, hrs, NGX_GOIM_RECOVER_ALWAYS);
}


/* r->fresh: a room was joined */

static ngx_int_t
ngx_goim_packet_join(ngx_goim_channel_t *ch, goim_packet_t *pkt,
    ngx_goim_room_result_t *r)
{
    size_t   i;

    if (pkt->body_len > NGX_GOIM_MAX_ROOM) {
        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim: change room refused: room id longer than %d",
                      NGX_GOIM_MAX_ROOM);
        return NGX_DECLINED;
    }

    for (i = 0; i < pkt->body_len; i++) {
        if (pkt->body[i] < 0x20 || pkt->body[i] == 0x7f) {
            ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                          "goim: change room refused: control character "
                          "in room id");
            return NGX_DECLINED;
        }
    }

    return ngx_goim_rooms_change(ch, (u_char *) pkt->body, pkt->body_len, r);
}


/*
 * op 14 (add) and op 16: the watched operations, at most
 * NGX_GOIM_MAX_WATCH.  NGX_DECLINED when the array could not grow: the
 * channel is then failed with the reason, rather than watching less
 * than the client asked for while its reply says it does.
 */

static ngx_int_t
ngx_goim_packet_sub(ngx_goim_channel_t *ch, goim_packet_t *pkt,
    ngx_uint_t add)
{
    int32_t      ops[NGX_GOIM_MAX_WATCH], *watch;
    ngx_uint_t   n, i, k, nnew;

    if (ngx_goim_parse_ops((u_char *) pkt->body, pkt->body_len, ops,
                           NGX_GOIM_MAX_WATCH, &n)
        != NGX_OK)
    {
        /* goim ignores the whole list on a parse error */
        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim: invalid operation list in %s ignored",
                      add ? "sub" : "unsub");
        return NGX_OK;
    }

    if (!add) {
        for (i = 0; i < n; i++) {
            for (k = 0; k < ch->nwatch; k++) {
                if (ch->watch[k] == ops[i]) {
                    ch->watch[k] = ch->watch[--ch->nwatch];
                    break;
                }
            }
        }

        return NGX_OK;
    }

    /* the ops not watched yet, each once, in the order given */

    nnew = 0;

    for (i = 0; i < n; i++) {

        if (ngx_goim_channel_watches(ch, ops[i])) {
            continue;
        }

        for (k = 0; k < nnew; k++) {
            if (ops[k] == ops[i]) {
                break;
            }
        }

        if (k < nnew) {
            continue;
        }

        if (ch->nwatch + nnew == NGX_GOIM_MAX_WATCH) {
            ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                          "goim: more than %d watched operations, "
                          "operation %D ignored", NGX_GOIM_MAX_WATCH, ops[i]);
            continue;
        }

        ops[nnew++] = ops[i];
    }

    if (nnew == 0) {
        return NGX_OK;
    }

    watch = ngx_alloc((ch->nwatch + nnew) * sizeof(int32_t),
                      ch->connection->log);
    if (watch == NULL) {
        ngx_goim_channel_fail(ch, NGX_LOG_ERR, GOIM_WS_CLOSE_INTERNAL,
                              "sub refused: out of memory for the watched "
                              "operations");
        return NGX_DECLINED;
    }

    if (ch->watch) {
        ngx_memcpy(watch, ch->watch, ch->nwatch * sizeof(int32_t));
        ngx_free(ch->watch);
    }

    ngx_memcpy(watch + ch->nwatch, ops, nnew * sizeof(int32_t));

    ch->watch = watch;
    ch->nwatch += nnew;

    return NGX_OK;
}
