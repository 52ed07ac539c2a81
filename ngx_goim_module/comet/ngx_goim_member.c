
/*
 * goim for nginx: a member's messages kept in Redis, on the comet side
 * (goim_history ... members=on with goim_redis, docs/PROTOCOL.md 1.16).
 * A connection with a mid > 0 is in its member's stream offline_<mid>
 * from its auth: once its session is written, one read gives its seam
 * (the stream's last id) and, when op 35 named "mid://<mid>", the
 * messages after the position it gave.  The member's live messages that
 * reach the connection while the read is in flight are held; afterwards
 * only those past the seam go out, so none is missed or sent twice at
 * the seam.  Each connection of a member has its own seam.
 */


#include "ngx_goim_comet.h"

#include <goim_recover.h>


typedef struct {
    ngx_goim_msg_t        *msg;
    uint64_t               epoch;
    uint64_t               offset;
} ngx_goim_member_held_t;


typedef struct {
    ngx_goim_channel_t       *ch;
    ngx_goim_offline_t       *read;         /* in flight */
    ngx_goim_member_done_pt   done;
    ngx_uint_t                reading;      /* live messages held */
    ngx_uint_t                positioned;   /* the seam is known */
    uint64_t                  epoch;        /* the stream's; 0: none */
    uint64_t                  seam;         /* had up to here */
    goim_recover_room_t      *want;         /* op 35's, until the read */
    ngx_uint_t                wanted;       /* op 35 named the member */
    uint64_t                  want_epoch;
    uint64_t                  want_offset;
    const char               *reason;       /* why not recovered */
    u_char                   *buf;          /* recovered inner packets */
    size_t                    len;
    ngx_uint_t                n;
    ngx_goim_member_held_t   *held;
    ngx_uint_t                nheld;
    ngx_uint_t                held_size;
    u_char                    room[NGX_GOIM_MEMBER_ROOM_LEN];
    size_t                    room_len;
    char                      err[128];
} ngx_goim_member_stream_t;


static void ngx_goim_member_cleanup(void *data);
static void ngx_goim_member_read_done(void *data, const char *err,
    uint64_t epoch, uint64_t offset, ngx_goim_offline_msg_t *msgs,
    ngx_uint_t n);
static const char *ngx_goim_member_check(ngx_goim_member_stream_t *ms,
    ngx_goim_offline_msg_t *msgs, ngx_uint_t n);
static ngx_int_t ngx_goim_member_encode(ngx_goim_member_stream_t *ms,
    ngx_goim_offline_msg_t *msgs, ngx_uint_t n);
static void ngx_goim_member_deliver(ngx_goim_member_stream_t *ms,
    ngx_goim_msg_t *msg, uint64_t epoch, uint64_t offset);
static void ngx_goim_member_hold(ngx_goim_member_stream_t *ms,
    ngx_goim_msg_t *msg, uint64_t epoch, uint64_t offset);
static u_char *ngx_goim_member_position(u_char *p,
    ngx_goim_member_stream_t *ms);


/*
 * At auth, before the session is written: from here on, the member's
 * live messages for this connection are held until its read is done.
 */

ngx_int_t
ngx_goim_member_init(ngx_goim_channel_t *ch)
{
    ngx_str_t                  name;
    ngx_pool_cleanup_t        *cln;
    ngx_goim_member_stream_t  *ms;

    if (ch->mid <= 0 || !ngx_goim_registry_member_stream_on()) {
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(ch->connection->pool,
                               sizeof(ngx_goim_member_stream_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    ms = cln->data;
    ngx_memzero(ms, sizeof(ngx_goim_member_stream_t));
    cln->handler = ngx_goim_member_cleanup;

    ms->ch = ch;
    ms->reading = 1;

    ngx_goim_registry_member_room(ch->mid, ms->room, &name);
    ms->room_len = name.len;

    ch->member_stream = ms;

    return NGX_OK;
}


static void
ngx_goim_member_cleanup(void *data)
{
    ngx_goim_member_stream_t  *ms = data;

    ngx_uint_t  i;

    if (ms->read) {
        ngx_goim_offline_cancel(ms->read);
        ms->read = NULL;
    }

    for (i = 0; i < ms->nheld; i++) {
        ngx_goim_msg_release(ms->held[i].msg);
    }

    ms->nheld = 0;

    if (ms->held) {
        ngx_free(ms->held);
        ms->held = NULL;
    }

    if (ms->buf) {
        ngx_free(ms->buf);
        ms->buf = NULL;
    }
}


u_char *
ngx_goim_member_room(ngx_goim_channel_t *ch, size_t *len)
{
    ngx_goim_member_stream_t  *ms = ch->member_stream;

    if (ms == NULL) {
        return NULL;
    }

    *len = ms->room_len;

    return ms->room;
}


/* the position op 35 gave for the member room, for the next read */

void
ngx_goim_member_want(ngx_goim_channel_t *ch, goim_recover_room_t *want)
{
    ngx_goim_member_stream_t  *ms = ch->member_stream;

    if (ms) {
        ms->want = want;
    }
}


/* the channel leaves: its read must not call back */

void
ngx_goim_member_cancel(ngx_goim_channel_t *ch)
{
    ngx_goim_member_stream_t  *ms = ch->member_stream;

    if (ms && ms->read) {
        ngx_goim_offline_cancel(ms->read);
        ms->read = NULL;
    }
}


/*
 * The session is written: the read follows it on the same Redis
 * connection, so that a push that missed the session finds its message
 * in the stream.  NGX_AGAIN: done(ch) comes later; NGX_DECLINED: no
 * member stream, or the read could not be sent (the reason is kept for
 * op 36; the auth goes on).
 */

ngx_int_t
ngx_goim_member_read(ngx_goim_channel_t *ch, ngx_goim_member_done_pt done)
{
    u_char                    *s;
    uint64_t                   epoch, offset;
    ngx_uint_t                 i;
    const char                *err;
    ngx_goim_conf_t           *gcf;
    goim_recover_room_t       *want;
    ngx_goim_member_stream_t  *ms;

    ms = ch->member_stream;

    if (ms == NULL) {
        return NGX_DECLINED;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    epoch = 0;
    offset = 0;

    want = ms->want;
    ms->want = NULL;

    if (want) {
        ms->wanted = 1;

        /* our epochs are a stream's milliseconds, "0" for no stream */
        s = (u_char *) want->epoch;

        for (i = 0; i < want->epoch_len; i++) {
            if (s[i] < '0' || s[i] > '9') {
                break;
            }
        }

        if (i == want->epoch_len && i <= 19
            && (i == 1 || s[0] != '0'))
        {
            ms->want_epoch = (uint64_t) ngx_atoof(s, i);
            ms->want_offset = want->offset;
            epoch = ms->want_epoch;
            offset = ms->want_offset;

        } else {
            ms->reason = "epoch malformed";
        }
    }

    ms->done = done;
    ms->read = ngx_goim_offline_read(ch->connection->pool, ch->mid, epoch,
                                     offset, gcf->history_size + 1,
                                     ngx_goim_member_read_done, ms, &err);

    if (ms->read == NULL) {
        ngx_snprintf((u_char *) ms->err, sizeof(ms->err) - 1, "Redis: %s%Z",
                     err);
        ms->reason = ms->err;

        ngx_log_error(NGX_LOG_WARN, ch->connection->log, 0,
                      "goim: member %L: offline_%L not read: %s", ch->mid,
                      ch->mid, err);
        return NGX_DECLINED;
    }

    return NGX_AGAIN;
}


static void
ngx_goim_member_read_done(void *data, const char *err, uint64_t epoch,
    uint64_t offset, ngx_goim_offline_msg_t *msgs, ngx_uint_t n)
{
    ngx_goim_member_stream_t  *ms = data;

    ms->read = NULL;

    if (err) {
        ngx_snprintf((u_char *) ms->err, sizeof(ms->err) - 1, "Redis: %s%Z",
                     err);
        ms->reason = ms->err;

        ngx_log_error(NGX_LOG_WARN, ms->ch->connection->log, 0,
                      "goim: member %L: offline_%L not read: %s",
                      ms->ch->mid, ms->ch->mid, err);

    } else {
        ms->positioned = 1;
        ms->epoch = epoch;
        ms->seam = offset;

        if (ms->wanted && ms->reason == NULL) {
            ms->reason = ngx_goim_member_check(ms, msgs, n);

            if (ms->reason == NULL
                && ngx_goim_member_encode(ms, msgs, n) != NGX_OK)
            {
                ms->reason = "out of memory";
            }
        }
    }

    ms->done(ms->ch);
}


/* the messages after the position asked for are all there, or why not */

static const char *
ngx_goim_member_check(ngx_goim_member_stream_t *ms,
    ngx_goim_offline_msg_t *msgs, ngx_uint_t n)
{
    ngx_uint_t        i;
    ngx_goim_conf_t  *gcf;

    if (ms->want_epoch != ms->epoch) {
        return "epoch changed";
    }

    if (ms->want_offset > ms->seam) {
        return "offset in the future";
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    if (ms->seam - ms->want_offset > gcf->history_size
        || n != ms->seam - ms->want_offset)
    {
        /* more than size since, or trimmed, or expired meanwhile */
        return "offset older than the history";
    }

    for (i = 0; i < n; i++) {
        if (msgs[i].epoch != ms->epoch
            || msgs[i].offset != ms->want_offset + 1 + i)
        {
            return "offset older than the history";
        }
    }

    return NULL;
}


/* inner packets: the member stream's id in ver, the offset in seq */

static ngx_int_t
ngx_goim_member_encode(ngx_goim_member_stream_t *ms,
    ngx_goim_offline_msg_t *msgs, ngx_uint_t n)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   i;

    len = 0;

    for (i = 0; i < n; i++) {
        if (ngx_goim_channel_watches(ms->ch, msgs[i].op)) {
            len += GOIM_HEADER_LEN + msgs[i].body.len;
        }
    }

    ms->n = n;

    if (len == 0) {
        return NGX_OK;
    }

    ms->buf = ngx_alloc(len, ms->ch->connection->log);
    if (ms->buf == NULL) {
        return NGX_ERROR;
    }

    p = ms->buf;

    for (i = 0; i < n; i++) {
        if (ngx_goim_channel_watches(ms->ch, msgs[i].op)) {
            p += goim_packet_encode(p, NGX_GOIM_MEMBER_STREAM, msgs[i].op,
                                    (int32_t) (uint32_t) msgs[i].offset,
                                    msgs[i].body.data, msgs[i].body.len);
        }
    }

    ms->len = len;

    return NGX_OK;
}


/* ,"stream":0,"epoch":"<ms>","offset":N */

static u_char *
ngx_goim_member_position(u_char *p, ngx_goim_member_stream_t *ms)
{
    if (!ms->positioned) {
        return p;
    }

    return ngx_sprintf(p, ",\"stream\":%d,\"epoch\":\"%uL\",\"offset\":%uL",
                       NGX_GOIM_MEMBER_STREAM, ms->epoch, ms->seam);
}


/* op 8's entry, last in "rooms": [..., {"room_id":"mid://<mid>",...}] */

size_t
ngx_goim_member_json_len(ngx_goim_channel_t *ch)
{
    return ch->member_stream ? NGX_GOIM_MEMBER_ENTRY_LEN : 0;
}


u_char *
ngx_goim_member_json(ngx_goim_channel_t *ch, u_char *p)
{
    ngx_goim_member_stream_t  *ms = ch->member_stream;

    if (ms == NULL) {
        return p;
    }

    /* p is past the "]" of the rooms */
    p--;

    if (p[-1] != '[') {
        *p++ = ',';
    }

    p = ngx_sprintf(p, "{\"room_id\":\"%*s\",\"joined\":true", ms->room_len,
                    ms->room);
    p = ngx_goim_member_position(p, ms);
    *p++ = '}';
    *p++ = ']';

    return p;
}


/* the op 35 request named this connection's member room */

ngx_uint_t
ngx_goim_member_named(ngx_goim_channel_t *ch, u_char *id, size_t len)
{
    ngx_goim_member_stream_t  *ms = ch->member_stream;

    return ms && ms->room_len == len && ngx_memcmp(ms->room, id, len) == 0;
}


/*
 * op 36's entry at auth, after the rooms': the recovered messages go
 * first (they are queued before op 36 is), or the reason why not
 */

u_char *
ngx_goim_member_result(ngx_goim_channel_t *ch, u_char *p)
{
    ngx_goim_member_stream_t  *ms = ch->member_stream;

    if (ms == NULL) {
        return p;
    }

    if (p[-1] != '[') {
        *p++ = ',';
    }

    p = ngx_sprintf(p, "{\"room_id\":\"%*s\"", ms->room_len, ms->room);
    p = ngx_goim_member_position(p, ms);

    if (ms->wanted) {
        if (ms->reason == NULL
            && ms->len
            && ngx_goim_push_packets(ch, ms->buf, ms->len) != NGX_OK)
        {
            ms->reason = "send queue full";
        }

        if (ms->reason == NULL) {
            ngx_goim_worker.stats->recover_ok++;
            ngx_goim_worker.stats->recover_messages += ms->n;
            p = ngx_sprintf(p, ",\"recovered\":true,\"messages\":%ui", ms->n);

        } else {
            ngx_goim_worker.stats->recover_failed++;
            p = ngx_cpymem(p, ",\"recovered\":false,\"reason\":\"",
                           sizeof(",\"recovered\":false,\"reason\":\"") - 1);
            p = (u_char *) ngx_escape_json(p, (u_char *) ms->reason,
                                           ngx_strlen(ms->reason));
            *p++ = '"';
        }
    }

    *p++ = '}';

    if (ms->buf) {
        ngx_free(ms->buf);
        ms->buf = NULL;
    }

    return p;
}


/*
 * After op 8 (and the recovery): the live stream from the seam on; the
 * messages held meanwhile go now, in the order they came, those up to the
 * seam dropped.
 */

void
ngx_goim_member_live(ngx_goim_channel_t *ch)
{
    ngx_uint_t                 i;
    ngx_goim_member_held_t    *h;
    ngx_goim_member_stream_t  *ms = ch->member_stream;

    if (ms == NULL || !ms->reading) {
        return;
    }

    ms->reading = 0;

    if (ms->buf) {
        ngx_free(ms->buf);
        ms->buf = NULL;
    }

    for (i = 0; i < ms->nheld; i++) {
        h = &ms->held[i];

        if (!ch->closing) {
            ngx_goim_member_deliver(ms, h->msg, h->epoch, h->offset);
        }

        ngx_goim_msg_release(h->msg);
    }

    ms->nheld = 0;

    if (ms->held) {
        ngx_free(ms->held);
        ms->held = NULL;
        ms->held_size = 0;
    }
}


/* a member's live message for this connection (push/ calls it) */

void
ngx_goim_member_push(ngx_goim_push_t *push, ngx_goim_channel_t *ch)
{
    ngx_goim_msg_t            *msg;
    ngx_goim_member_stream_t  *ms = ch->member_stream;

    if (!ngx_goim_channel_watches(ch, push->op)) {
        return;
    }

    msg = ngx_goim_push_msg(push, ch->transport);
    if (msg == NULL) {
        return;
    }

    if (ms == NULL) {
        /* members=on changed by a reload: as goim's */
        (void) ngx_goim_channel_push(ch, msg);
        return;
    }

    if (ms->reading) {
        ngx_goim_member_hold(ms, msg, push->epoch, push->pos);
        return;
    }

    ngx_goim_member_deliver(ms, msg, push->epoch, push->pos);
}


static void
ngx_goim_member_deliver(ngx_goim_member_stream_t *ms, ngx_goim_msg_t *msg,
    uint64_t epoch, uint64_t offset)
{
    u_char               body[sizeof("{\"rooms\":[{\"room_id\":\"\","
                                     "\"stream\":0,\"epoch\":\"\","
                                     "\"offset\":}]}")
                              + NGX_GOIM_MEMBER_ROOM_LEN + 2 * NGX_INT64_LEN];
    u_char              *p;
    ngx_goim_channel_t  *ch;

    ch = ms->ch;

    if (epoch == ms->epoch && offset <= ms->seam) {
        /* the connection had it: recovered, or before its seam */
        return;
    }

    if (epoch != ms->epoch) {
        /*
         * a new stream (the member had none, or it expired): op 36 gives
         * its epoch before its first message, as the inner header
         * cannot carry it
         */
        ms->epoch = epoch;
        ms->seam = offset - 1;
        ms->positioned = 1;

        p = ngx_sprintf(body, "{\"rooms\":[{\"room_id\":\"%*s\"",
                        ms->room_len, ms->room);
        p = ngx_goim_member_position(p, ms);
        p = ngx_cpymem(p, "}]}", 3);

        if (ngx_goim_channel_reply(ch, 1, GOIM_OP_RECOVER_REPLY, 0, body,
                                   p - body)
            != NGX_OK)
        {
            return;
        }
    }

    (void) ngx_goim_channel_push(ch, msg);
}


/* while the read is in flight, up to the send queue's bound */

static void
ngx_goim_member_hold(ngx_goim_member_stream_t *ms, ngx_goim_msg_t *msg,
    uint64_t epoch, uint64_t offset)
{
    ngx_uint_t               size;
    ngx_goim_channel_t      *ch;
    ngx_goim_member_held_t  *h;

    ch = ms->ch;

    if (ms->nheld >= ch->conf->queue_packets) {
        /* as a full send queue (docs/PROTOCOL.md 1.11) */
        ch->dropped++;
        ngx_goim_worker.stats->drop_queue_full++;

        if ((ch->dropped & (ch->dropped - 1)) == 0) {
            /* the 1st, 2nd, 4th... drop of a connection */
            ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                          "goim: member %L: %ui messages held during the "
                          "read of offline_%L, %ui pushes dropped", ch->mid,
                          ms->nheld, ch->mid, ch->dropped);
        }

        return;
    }

    if (ms->nheld == ms->held_size) {
        size = ngx_min(ngx_max(ms->held_size * 2, 8), ch->conf->queue_packets);

        h = ngx_alloc(size * sizeof(ngx_goim_member_held_t),
                      ch->connection->log);
        if (h == NULL) {
            return;
        }

        if (ms->held) {
            ngx_memcpy(h, ms->held,
                       ms->nheld * sizeof(ngx_goim_member_held_t));
            ngx_free(ms->held);
        }

        ms->held = h;
        ms->held_size = size;
    }

    h = &ms->held[ms->nheld++];
    h->msg = msg;
    h->epoch = epoch;
    h->offset = offset;
    msg->refs++;
}
