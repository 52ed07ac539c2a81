
/*
 * goim for nginx: positions and recovery (docs/PROTOCOL.md 1.15).  A
 * client names its last position per room with op 35, before op 7, op 12
 * or op 30; when that operation joins rooms, each room joined gets its
 * seam (its position now) and, when the request named it, its messages
 * after the position it gave, from the history; then op 36 with the
 * results, then the live stream from each seam on.  The history itself
 * is the registry's; the seam on the live side is the room's (push/).
 */


#include "ngx_goim_comet.h"

#include <goim_recover.h>


typedef struct {
    goim_recover_t         req;
    ngx_uint_t             pending;
    ngx_uint_t             bad;
    char                   err[96];
} ngx_goim_recover_req_t;


static void ngx_goim_recover_cleanup(void *data);
static goim_recover_room_t *ngx_goim_recover_find(ngx_goim_recover_req_t *rr,
    u_char *id, size_t len);
static const char *ngx_goim_recover_result(ngx_goim_channel_t *ch,
    ngx_goim_room_result_t *r, goim_recover_room_t *want);
static u_char *ngx_goim_recover_entry(u_char *p, u_char *id, size_t len,
    ngx_goim_history_read_t *hr, ngx_uint_t result, const char *reason);
static ngx_int_t ngx_goim_recover_deliver(ngx_goim_channel_t *ch,
    ngx_goim_history_read_t *hr);


static const char *ngx_goim_recover_reasons[] = {
    NULL,
    NULL,
    "epoch changed",
    "offset older than the history",
    "offset in the future",
    "no stream id free"
};


ngx_uint_t
ngx_goim_recover_op(int32_t op)
{
    return op == GOIM_OP_RECOVER && ngx_goim_registry_history_on();
}


/* op 35: kept until an operation of the connection next joins rooms */

ngx_int_t
ngx_goim_recover_request(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    ngx_pool_cleanup_t      *cln;
    ngx_goim_recover_req_t  *rr;

    rr = ch->recover;

    if (rr == NULL) {
        cln = ngx_pool_cleanup_add(ch->connection->pool,
                                   sizeof(ngx_goim_recover_req_t));
        if (cln == NULL) {
            return NGX_ERROR;
        }

        rr = cln->data;
        ngx_memzero(rr, sizeof(ngx_goim_recover_req_t));
        cln->handler = ngx_goim_recover_cleanup;

        ch->recover = rr;
    }

    rr->pending = 1;
    rr->bad = 0;

    if (goim_recover_parse(pkt->body, pkt->body_len, &rr->req, rr->err,
                           sizeof(rr->err))
        != 0)
    {
        rr->bad = 1;

        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim: bad recovery request: %s", rr->err);
    }

    return NGX_OK;
}


static void
ngx_goim_recover_cleanup(void *data)
{
    ngx_goim_recover_req_t  *rr = data;

    goim_recover_free(&rr->req);
}


goim_recover_room_t *
ngx_goim_recover_want(ngx_goim_channel_t *ch, u_char *id, size_t len)
{
    ngx_goim_recover_req_t  *rr = ch->recover;

    if (rr && rr->bad) {
        return NULL;
    }

    return ngx_goim_recover_find(rr, id, len);
}


static goim_recover_room_t *
ngx_goim_recover_find(ngx_goim_recover_req_t *rr, u_char *id, size_t len)
{
    size_t  i;

    if (rr == NULL || !rr->pending) {
        return NULL;
    }

    for (i = 0; i < rr->req.n; i++) {
        if (rr->req.rooms[i].room_len == len
            && ngx_memcmp(rr->req.rooms[i].room, id, len) == 0)
        {
            return &rr->req.rooms[i];
        }
    }

    return NULL;
}


/*
 * The rooms an operation joined (r[i].fresh) are the channel's now: for
 * each, its position, read in one hold with the messages the request
 * asked for, is its seam; r[i].hr points to it, in *hrs (ngx_alloc'ed,
 * for ngx_goim_recover_finish).  NGX_DECLINED without goim_history,
 * NGX_ERROR when the zone is exhausted (nothing is kept then).
 */

ngx_int_t
ngx_goim_recover_seams(ngx_goim_channel_t *ch, ngx_goim_room_result_t *r,
    ngx_uint_t n, ngx_goim_history_read_t **hrs)
{
    ngx_int_t                rc;
    ngx_uint_t               i, k;
    ngx_goim_room_t         *room;
    goim_recover_room_t     *want;
    ngx_goim_history_pos_t   since, *sp;
    ngx_goim_history_read_t *hr;

    *hrs = NULL;

    if (!ngx_goim_registry_history_on()) {
        return NGX_DECLINED;
    }

    for (i = 0, k = 0; i < n; i++) {
        r[i].hr = NULL;
        k += r[i].fresh;
    }

    if (k == 0) {
        return NGX_OK;
    }

    hr = ngx_alloc(k * sizeof(ngx_goim_history_read_t), ch->connection->log);
    if (hr == NULL) {
        return NGX_ERROR;
    }

    *hrs = hr;

    for (i = 0; i < n; i++) {
        if (!r[i].fresh) {
            continue;
        }

        room = ngx_goim_room_member(ch, r[i].id, r[i].len);
        if (room == NULL) {
            continue;
        }

        want = ngx_goim_recover_find(ch->recover, r[i].id, r[i].len);
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

        rc = ngx_goim_registry_history_recover(r[i].id, r[i].len, sp, 0, 1,
                                               hr);
        if (rc != NGX_OK) {
            ngx_goim_recover_release(r, n, *hrs);
            *hrs = NULL;
            return NGX_ERROR;
        }

        if (hr->status != NGX_GOIM_RECOVER_NOSTREAM) {
            ngx_goim_room_seam(ch, room, hr->pos.offset);
        }

        r[i].hr = hr++;
    }

    return NGX_OK;
}


/* ,"stream":S,"epoch":"..","offset":N: a room's position */

u_char *
ngx_goim_recover_position(u_char *p, ngx_goim_history_read_t *hr)
{
    if (hr->status == NGX_GOIM_RECOVER_NOSTREAM) {
        return p;
    }

    p = ngx_sprintf(p, ",\"stream\":%uD,\"epoch\":\"", hr->pos.stream);
    p = ngx_goim_registry_epoch_print(p, &hr->pos);

    return ngx_sprintf(p, "\",\"offset\":%uL", hr->pos.offset);
}


static u_char *
ngx_goim_recover_entry(u_char *p, u_char *id, size_t len,
    ngx_goim_history_read_t *hr, ngx_uint_t result, const char *reason)
{
    p = ngx_cpymem(p, "{\"room_id\":\"", sizeof("{\"room_id\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, id, len);
    *p++ = '"';

    if (hr) {
        p = ngx_goim_recover_position(p, hr);
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


/* a room the request named: its messages go now, or why not */

static const char *
ngx_goim_recover_result(ngx_goim_channel_t *ch, ngx_goim_room_result_t *r,
    goim_recover_room_t *want)
{
    const char  *reason;

    reason = want->offset == UINT64_MAX
             ? "epoch malformed"
             : ngx_goim_recover_reasons[r->hr->status];

    if (reason == NULL && ngx_goim_recover_deliver(ch, r->hr) != NGX_OK) {
        reason = "send queue full";
    }

    if (reason == NULL) {
        ngx_goim_worker.stats->recover_ok++;
        ngx_goim_worker.stats->recover_messages += r->hr->n;

    } else {
        ngx_goim_worker.stats->recover_failed++;
    }

    return reason;
}


/*
 * After the reply that joined the rooms (op 8, op 13, op 31): each room's
 * recovered messages, then op 36 with the results, when the client
 * asked (then the request is used up) or, with
 * NGX_GOIM_RECOVER_ALWAYS (op 13), when a room was joined, as op 13
 * carries no position.  With NGX_GOIM_RECOVER_AUTH a request is used up
 * even when no room was joined.  Frees what ngx_goim_recover_seams kept.
 */

ngx_int_t
ngx_goim_recover_finish(ngx_goim_channel_t *ch, ngx_goim_room_result_t *r,
    ngx_uint_t n, ngx_goim_history_read_t *hrs, ngx_uint_t flags)
{
    u_char                   *body, *p;
    size_t                    len, i;
    ngx_int_t                 rc;
    ngx_uint_t                joined, pending, k;
    const char              **why;
    goim_recover_room_t      *want;
    ngx_goim_recover_req_t   *rr;

    rr = ch->recover;
    pending = rr && rr->pending;

    joined = 0;

    for (i = 0; i < n; i++) {
        joined += (r[i].hr != NULL);
    }

    if (!ngx_goim_registry_history_on()
        || !((pending && (joined || (flags & NGX_GOIM_RECOVER_AUTH)))
             || (joined && (flags & NGX_GOIM_RECOVER_ALWAYS))))
    {
        ngx_goim_recover_release(r, n, hrs);
        return NGX_OK;
    }

    why = ngx_alloc((n + 1) * sizeof(char *), ch->connection->log);
    if (why == NULL) {
        ngx_goim_recover_release(r, n, hrs);
        return NGX_ERROR;
    }

    len = sizeof("{\"error\":\"\",\"rooms\":[]}") + sizeof(rr->err) * 6;

    for (i = 0; i < n; i++) {
        why[i] = NULL;

        if (r[i].hr == NULL) {
            continue;
        }

        len += sizeof("{\"room_id\":\"\",\"recovered\":false,\"reason\":"
                      "\"offset older than the history\"},")
               + r[i].len * 6 + NGX_GOIM_RECOVER_POSITION_LEN
               + NGX_INT64_LEN;

        want = ngx_goim_recover_find(rr, r[i].id, r[i].len);

        if (want) {
            why[i] = ngx_goim_recover_result(ch, &r[i], want);
        }
    }

    if (pending) {
        for (i = 0; i < rr->req.n; i++) {
            len += sizeof("{\"room_id\":\"\",\"recovered\":false,"
                          "\"reason\":\"not joined\"},")
                   + rr->req.rooms[i].room_len * 6;
        }
    }

    if (ch->member_stream && (flags & NGX_GOIM_RECOVER_AUTH)) {
        len += NGX_GOIM_MEMBER_RESULT_LEN;
    }

    body = ngx_alloc(len, ch->connection->log);
    if (body == NULL) {
        ngx_free(why);
        ngx_goim_recover_release(r, n, hrs);
        return NGX_ERROR;
    }

    p = ngx_cpymem(body, "{", 1);

    if (pending && rr->bad) {
        p = ngx_cpymem(p, "\"error\":\"", sizeof("\"error\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, (u_char *) rr->err,
                                       ngx_strlen(rr->err));
        p = ngx_cpymem(p, "\",", 2);
        ngx_goim_worker.stats->recover_failed++;
    }

    p = ngx_cpymem(p, "\"rooms\":[", sizeof("\"rooms\":[") - 1);

    for (i = 0; i < n; i++) {
        if (r[i].hr == NULL) {
            continue;
        }

        if (p[-1] != '[') {
            *p++ = ',';
        }

        want = ngx_goim_recover_find(rr, r[i].id, r[i].len);
        p = ngx_goim_recover_entry(p, r[i].id, r[i].len, r[i].hr,
                                   want != NULL, why[i]);
    }

    /* the member's stream in Redis, joined at auth (docs/PROTOCOL.md 1.16) */

    if (flags & NGX_GOIM_RECOVER_AUTH) {
        p = ngx_goim_member_result(ch, p);
    }

    /* the rooms asked for that this operation did not join */

    if (pending) {
        for (i = 0; i < rr->req.n; i++) {
            if ((flags & NGX_GOIM_RECOVER_AUTH)
                && ngx_goim_member_named(ch, (u_char *) rr->req.rooms[i].room,
                                         rr->req.rooms[i].room_len))
            {
                continue;
            }

            for (k = 0; k < n; k++) {
                if (r[k].hr
                    && r[k].len == rr->req.rooms[i].room_len
                    && ngx_memcmp(r[k].id, rr->req.rooms[i].room, r[k].len)
                       == 0)
                {
                    break;
                }
            }

            if (k < n) {
                continue;
            }

            if (p[-1] != '[') {
                *p++ = ',';
            }

            p = ngx_goim_recover_entry(p, (u_char *) rr->req.rooms[i].room,
                                       rr->req.rooms[i].room_len, NULL, 1,
                                       "not joined");
            ngx_goim_worker.stats->recover_failed++;
        }

        rr->pending = 0;
        goim_recover_free(&rr->req);
    }

    p = ngx_cpymem(p, "]}", 2);

    rc = ngx_goim_channel_reply(ch, 1, GOIM_OP_RECOVER_REPLY, 0, body,
                                p - body);

    ngx_free(body);
    ngx_free(why);
    ngx_goim_recover_release(r, n, hrs);

    return rc;
}


/* what ngx_goim_recover_seams kept, when no finish comes */

void
ngx_goim_recover_release(ngx_goim_room_result_t *r, ngx_uint_t n,
    ngx_goim_history_read_t *hrs)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (r[i].hr && r[i].hr->buf) {
            ngx_free(r[i].hr->buf);
            r[i].hr->buf = NULL;
        }

        r[i].hr = NULL;
    }

    if (hrs) {
        ngx_free(hrs);
    }
}


/* a room's recovered messages: one frame, as a merged room batch */

static ngx_int_t
ngx_goim_recover_deliver(ngx_goim_channel_t *ch, ngx_goim_history_read_t *hr)
{
    if (hr->n == 0) {
        return NGX_OK;
    }

    return ngx_goim_push_packets(ch, hr->buf, hr->len) == NGX_OK
           ? NGX_OK : NGX_DECLINED;
}
