
/*
 * goim for nginx: positions and recovery (docs/PROTOCOL.md 1.14).  A
 * client names its last position per room with op 30, before op 7 or
 * before an op 12; when the connection joins the room, it gets the
 * room's messages after that position from the history, then the live
 * stream from the seam on, then op 31 with the result.  The history
 * itself is the registry's; the seam on the live side is the room's
 * (push/).
 */


#include "ngx_goim_comet.h"

#include <goim_recover.h>


#define NGX_GOIM_OP_RECOVER        30
#define NGX_GOIM_OP_RECOVER_REPLY  31


typedef struct {
    goim_recover_t         req;
    ngx_uint_t             pending;
    ngx_uint_t             bad;
    char                   err[96];
} ngx_goim_recover_req_t;


static goim_recover_room_t *ngx_goim_recover_find(ngx_goim_recover_req_t *rr,
    ngx_str_t *room);
static u_char *ngx_goim_recover_entry(u_char *p, ngx_str_t *room,
    ngx_goim_history_read_t *hr, ngx_uint_t result, const char *reason);
static ngx_int_t ngx_goim_recover_deliver(ngx_goim_channel_t *ch,
    ngx_goim_history_read_t *hr);


static const char *ngx_goim_recover_reasons[] = {
    NULL,
    NULL,
    "epoch changed",
    "offset older than the history",
    "offset in the future"
};


ngx_uint_t
ngx_goim_recover_op(int32_t op)
{
    return op == NGX_GOIM_OP_RECOVER && ngx_goim_registry_history_on();
}


/* op 30: kept until the connection next joins rooms (auth, op 12) */

ngx_int_t
ngx_goim_recover_request(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    ngx_goim_recover_req_t  *rr;

    rr = ch->recover;

    if (rr == NULL) {
        rr = ngx_palloc(ch->connection->pool, sizeof(ngx_goim_recover_req_t));
        if (rr == NULL) {
            return NGX_ERROR;
        }

        ch->recover = rr;
    }

    rr->pending = 1;
    rr->bad = 0;

    if (goim_recover_parse(pkt->body, pkt->body_len, &rr->req, rr->err,
                           sizeof(rr->err))
        != 0)
    {
        rr->bad = 1;
        rr->req.n = 0;

        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim: bad recovery request: %s", rr->err);
    }

    return NGX_OK;
}


static goim_recover_room_t *
ngx_goim_recover_find(ngx_goim_recover_req_t *rr, ngx_str_t *room)
{
    size_t  i;

    if (rr == NULL || !rr->pending) {
        return NULL;
    }

    for (i = 0; i < rr->req.n; i++) {
        if (rr->req.rooms[i].room_len == room->len
            && ngx_memcmp(rr->req.rooms[i].room, room->data, room->len) == 0)
        {
            return &rr->req.rooms[i];
        }
    }

    return NULL;
}


/*
 * The channel is in its room now: its position, read in one hold with
 * the messages it asked for, is its seam.  hr->status says what the
 * recovery found; NGX_GOIM_RECOVER_NONE when nothing was asked.
 */

ngx_int_t
ngx_goim_recover_seam(ngx_goim_channel_t *ch, ngx_goim_history_read_t *hr)
{
    ngx_int_t                rc;
    ngx_str_t               *room;
    goim_recover_room_t     *want;
    ngx_goim_history_pos_t   since, *sp;

    ngx_memzero(hr, sizeof(ngx_goim_history_read_t));

    if (!ngx_goim_registry_history_on() || ch->room == NULL) {
        return NGX_DECLINED;
    }

    room = &ch->room->sn.str;
    want = ngx_goim_recover_find(ch->recover, room);
    sp = NULL;

    if (want) {
        if (ngx_goim_registry_epoch_parse((u_char *) want->epoch,
                                          want->epoch_len, &since)
            == NGX_OK)
        {
            since.offset = want->offset;
            sp = &since;

        } else {
            /* no history of ours: the position alone, and the reason */
            want->offset = UINT64_MAX;
        }
    }

    rc = ngx_goim_registry_history_recover(room->data, room->len, sp, 0, 1,
                                           hr);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_goim_room_seam(ch, hr->pos.offset);

    return NGX_OK;
}


/* ,"rooms":[{"room_id":"..","epoch":"..","offset":N}] for op 8 */

size_t
ngx_goim_recover_positions_len(ngx_goim_channel_t *ch)
{
    ngx_str_t  *room;

    if (!ngx_goim_registry_history_on()) {
        return 0;
    }

    if (ch->room == NULL) {
        return sizeof(",\"rooms\":[]") - 1;
    }

    room = &ch->room->sn.str;

    return sizeof(",\"rooms\":[]") - 1
           + sizeof("{\"room_id\":\"\",\"epoch\":\"\",\"offset\":}") - 1
           + room->len + ngx_escape_json(NULL, room->data, room->len)
           + NGX_GOIM_EPOCH_LEN + NGX_INT64_LEN;
}


u_char *
ngx_goim_recover_positions(u_char *p, ngx_goim_channel_t *ch,
    ngx_goim_history_read_t *hr)
{
    if (!ngx_goim_registry_history_on()) {
        return p;
    }

    p = ngx_cpymem(p, ",\"rooms\":[", sizeof(",\"rooms\":[") - 1);

    if (ch->room) {
        p = ngx_goim_recover_entry(p, &ch->room->sn.str, hr, 0, NULL);
    }

    *p++ = ']';

    return p;
}


static u_char *
ngx_goim_recover_entry(u_char *p, ngx_str_t *room,
    ngx_goim_history_read_t *hr, ngx_uint_t result, const char *reason)
{
    p = ngx_cpymem(p, "{\"room_id\":\"", sizeof("{\"room_id\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, room->data, room->len);
    *p++ = '"';

    if (hr) {
        p = ngx_cpymem(p, ",\"epoch\":\"", sizeof(",\"epoch\":\"") - 1);
        p = ngx_goim_registry_epoch_print(p, &hr->pos);
        p = ngx_sprintf(p, "\",\"offset\":%uL", hr->pos.offset);
    }

    if (result) {
        if (reason == NULL) {
            p = ngx_sprintf(p, ",\"recovered\":true,\"messages\":%ui", hr->n);

        } else {
            p = ngx_sprintf(p, ",\"recovered\":false,\"reason\":\"%s\"",
                            reason);
        }
    }

    *p++ = '}';

    return p;
}


/*
 * After op 8 or op 13: the recovered messages, then op 31 when the
 * client asked (always after op 12, as it carries the new position).
 * Frees hr->buf.
 */

ngx_int_t
ngx_goim_recover_finish(ngx_goim_channel_t *ch, ngx_goim_history_read_t *hr,
    ngx_uint_t changed)
{
    u_char                  *body, *p;
    size_t                   len, i;
    ngx_int_t                rc;
    ngx_str_t                room, *cur;
    const char              *reason;
    goim_recover_room_t     *want;
    ngx_goim_recover_req_t  *rr;

    rr = ch->recover;

    if (!ngx_goim_registry_history_on()
        || (!changed && (rr == NULL || !rr->pending)))
    {
        return NGX_OK;
    }

    cur = ch->room ? &ch->room->sn.str : NULL;
    want = cur ? ngx_goim_recover_find(rr, cur) : NULL;
    reason = NULL;

    if (want) {
        reason = want->offset == UINT64_MAX ? "epoch malformed"
                 : ngx_goim_recover_reasons[hr->status];

        if (reason == NULL
            && ngx_goim_recover_deliver(ch, hr) != NGX_OK)
        {
            reason = "send queue full";
        }

        if (reason == NULL) {
            ngx_goim_worker.stats->recover_ok++;
            ngx_goim_worker.stats->recover_messages += hr->n;

        } else {
            ngx_goim_worker.stats->recover_failed++;
        }
    }

    if (hr->buf) {
        ngx_free(hr->buf);
        hr->buf = NULL;
    }

    len = sizeof("{\"error\":\"\",\"rooms\":[]}") + sizeof(rr->err) * 6;

    if (cur) {
        len += ngx_goim_recover_positions_len(ch) + 96;
    }

    if (rr && rr->pending) {
        for (i = 0; i < rr->req.n; i++) {
            len += sizeof("{\"room_id\":\"\",\"recovered\":false,"
                          "\"reason\":\"not joined\"},")
                   + rr->req.rooms[i].room_len * 6;
        }
    }

    body = ngx_alloc(len, ch->connection->log);
    if (body == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(body, "{", 1);

    if (rr && rr->pending && rr->bad) {
        p = ngx_cpymem(p, "\"error\":\"", sizeof("\"error\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, (u_char *) rr->err,
                                       ngx_strlen(rr->err));
        p = ngx_cpymem(p, "\",", 2);
        ngx_goim_worker.stats->recover_failed++;
    }

    p = ngx_cpymem(p, "\"rooms\":[", sizeof("\"rooms\":[") - 1);

    if (cur) {
        p = ngx_goim_recover_entry(p, cur, hr, want != NULL, reason);
    }

    /* the rooms asked for that the connection did not join */

    if (rr && rr->pending) {
        for (i = 0; i < rr->req.n; i++) {
            room.data = (u_char *) rr->req.rooms[i].room;
            room.len = rr->req.rooms[i].room_len;

            if (cur && cur->len == room.len
                && ngx_memcmp(cur->data, room.data, room.len) == 0)
            {
                continue;
            }

            if (p[-1] != '[') {
                *p++ = ',';
            }

            p = ngx_goim_recover_entry(p, &room, NULL, 1, "not joined");
            ngx_goim_worker.stats->recover_failed++;
        }

        rr->pending = 0;
    }

    p = ngx_cpymem(p, "]}", 2);

    rc = ngx_goim_channel_reply(ch, 1, NGX_GOIM_OP_RECOVER_REPLY, 0, body,
                                p - body);

    ngx_free(body);

    return rc;
}


/* the recovered messages: one frame, as a merged room batch */

static ngx_int_t
ngx_goim_recover_deliver(ngx_goim_channel_t *ch, ngx_goim_history_read_t *hr)
{
    size_t           hlen;
    u_char           ws[GOIM_WS_MAX_HEADER], *p;
    ngx_int_t        rc;
    ngx_goim_msg_t  *msg;

    if (hr->n == 0) {
        return NGX_OK;
    }

    hlen = 0;

    if (ch->transport == NGX_GOIM_WS) {
        hlen = goim_ws_write_header(ws, GOIM_WS_OP_BINARY,
                                    GOIM_HEADER_LEN + hr->len);
    }

    msg = ngx_goim_msg_alloc(hlen + GOIM_HEADER_LEN + hr->len);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    p = msg->data;

    if (ch->transport == NGX_GOIM_WS) {
        p = ngx_cpymem(p, ws, hlen);
        p += goim_packet_write_header(p, hr->len, 1, GOIM_OP_RAW, 0);
        ngx_memcpy(p, hr->buf, hr->len);

    } else {
        /* TCP: the inner packets as they are */
        ngx_memcpy(p, hr->buf, hr->len);
        msg->len = hr->len;
    }

    rc = ngx_goim_channel_push(ch, msg);

    ngx_goim_msg_release(msg);

    return rc == NGX_OK ? NGX_OK : NGX_DECLINED;
}
