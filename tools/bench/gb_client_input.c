/*
 * goim-bench: client processes: input (goim, WebSocket, nchan), heartbeats,
 *     deliveries, reports to the parent.
 */


#include <gb.h>


static long gb_child_input(gb_conn_t *c, uint8_t *p, size_t len);
static long gb_child_handshake(gb_conn_t *c, const uint8_t *p, size_t len);
static int gb_child_frame(gb_conn_t *c, goim_ws_frame_t *f, uint8_t *p);
static int gb_child_message(gb_conn_t *c, const uint8_t *p, size_t len);
static int gb_child_packet(gb_conn_t *c, goim_packet_t *pkt);
static void gb_child_delivery(gb_conn_t *c, const uint8_t *p, size_t len,
    int32_t ver, int32_t pseq);


static gb_hist_t    gc_hist;
static gb_seq_t     gc_seqs[GB_SEQS];
static int64_t      gc_now_real;


/*
 * Reads once (level-triggered) into the scratch buffer behind what was
 * left unparsed last time, parses what is complete, keeps the rest.
 */

void
gb_child_read(gb_conn_t *c)
{
    long            used;
    size_t          len, need, plen;
    ssize_t         n;
    uint8_t        *p;
    gb_conn_ext_t  *x;

    plen = c->ext ? c->ext->partial_len : 0;
    need = plen + GB_READ_CHUNK;

    if (need > gc_scratch_cap) {
        p = realloc(gc_scratch, need);
        if (p == NULL) {
            gb_child_fail(c, "no memory");
            return;
        }

        gc_scratch = p;
        gc_scratch_cap = need;
    }

    if (plen) {
        memcpy(gc_scratch, c->ext->partial, plen);
    }

    n = read(c->fd, gc_scratch + plen, gc_scratch_cap - plen);

    if (n == 0) {
        gb_child_fail(c, "closed by the server");
        return;
    }

    if (n == -1) {
        if (errno != EAGAIN && errno != EINTR) {
            gb_child_fail(c, strerror(errno));
        }

        return;
    }

    gc_stats.bytes_in += n;
    len = plen + n;

    /* one receive time for everything this read brought */
    gc_now_real = gb_real_us();

    used = gb_child_input(c, gc_scratch, len);

    if (used < 0) {
        return;
    }

    len -= used;

    if (len == 0) {
        if (c->ext) {
            c->ext->partial_len = 0;
            gb_child_ext_done(c);
        }

        return;
    }

    x = gb_child_ext(c);
    if (x == NULL) {
        gb_child_fail(c, "no memory");
        return;
    }

    if (len > x->partial_cap) {
        p = realloc(x->partial, len);
        if (p == NULL) {
            gb_child_fail(c, "no memory");
            return;
        }

        x->partial = p;
        x->partial_cap = len;
    }

    memcpy(x->partial, gc_scratch + used, len);
    x->partial_len = len;
}


/* returns the bytes consumed, or -1 when the connection was failed */

static long
gb_child_input(gb_conn_t *c, uint8_t *p, size_t len)
{
    long              rc;
    size_t            off;
    goim_packet_t     pkt;
    goim_ws_frame_t   f;
    gb_conn_ext_t    *x;
    goim_ws_reader_t  r, saved;

    off = 0;

    if (c->state == GB_HANDSHAKE) {
        rc = gb_child_handshake(c, p, len);
        if (rc <= 0) {
            return rc;
        }

        off = rc;
    }

    if (gb.transport == GB_TCP) {
        while (off < len) {
            rc = goim_packet_parse(p + off, len - off, GB_MAX_BODY, &pkt);

            if (rc == GOIM_PACKET_AGAIN) {
                break;
            }

            if (rc < 0) {
                gb_child_fail(c, goim_packet_strerror(rc));
                return -1;
            }

            off += rc;

            if (gb_child_packet(c, &pkt) != 0) {
                return -1;
            }
        }

        return (long) off;
    }

    /*
     * The reader's state matters only inside a fragmented message: it is
     * kept in the extra state then, and made fresh otherwise (server
     * frames are unmasked; large ones for OP_RAW batches).
     */
    if (c->ext && c->ext->ws_open) {
        r = c->ext->ws;

    } else {
        goim_ws_reader_init(&r, GB_MAX_BODY, 1024, 0);
    }

    while (off < len) {
        /* undone for a partial frame */
        saved = r;

        rc = goim_ws_read_frame(&r, p + off, len - off, &f);

        if (rc == GOIM_WS_AGAIN) {
            break;
        }

        if (rc < 0) {
            gb_child_fail(c, goim_ws_strerror(rc));
            return -1;
        }

        if (f.payload_len > len - off - rc) {
            r = saved;
            break;
        }

        off += rc;

        if (f.masked) {
            goim_ws_unmask(p + off, f.payload_len, f.mask, 0);
        }

        if (gb_child_frame(c, &f, p + off) != 0) {
            return -1;
        }

        off += f.payload_len;
    }

    if (r.in_message) {
        x = gb_child_ext(c);
        if (x == NULL) {
            gb_child_fail(c, "no memory");
            return -1;
        }

        x->ws = r;
        x->ws_open = 1;

    } else if (c->ext) {
        c->ext->ws_open = 0;
    }

    return (long) off;
}


/* the 101 answer: > 0 bytes of it consumed, 0 more needed, -1 failed */

static long
gb_child_handshake(gb_conn_t *c, const uint8_t *p, size_t len)
{
    size_t          vlen;
    const uint8_t  *end, *v;

    end = memmem(p, len, "\r\n\r\n", 4);

    if (end == NULL) {
        if (len > 8192) {
            gb_child_fail(c, "handshake answer too long");
            return -1;
        }

        return 0;
    }

    len = end + 4 - p;

    if (len < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
        gb_child_fail(c, "handshake not answered with 101");
        return -1;
    }

    v = gb_find_header(p, len, "Sec-WebSocket-Accept", &vlen);

    if (v == NULL || vlen != GOIM_WS_ACCEPT_LEN
        || memcmp(v, gc_accept, vlen) != 0)
    {
        gb_child_fail(c, "bad Sec-WebSocket-Accept");
        return -1;
    }

    if (gb.mode == GB_MODE_NCHAN) {
        gb_child_ready(c);

    } else if (gb_child_auth(c) != 0) {
        return -1;
    }

    return (long) len;
}


static int
gb_child_frame(gb_conn_t *c, goim_ws_frame_t *f, uint8_t *p)
{
    size_t          h, len;
    uint8_t        *msg, buf[GOIM_WS_MAX_HEADER + GOIM_WS_MAX_CONTROL];
    gb_conn_ext_t  *x;

    len = (size_t) f->payload_len;

    switch (f->opcode) {

    case GOIM_WS_OP_PING:
        h = goim_ws_write_header(buf, GOIM_WS_OP_PONG, len);
        buf[1] |= 0x80;
        memcpy(buf + h, gc_mask, 4);
        memcpy(buf + h + 4, p, len);
        goim_ws_unmask(buf + h + 4, len, gc_mask, 0);

        return gb_child_send(c, buf, h + 4 + len);

    case GOIM_WS_OP_PONG:
        return 0;

    case GOIM_WS_OP_CLOSE:
        gb_child_fail(c, "close frame from the server");
        return -1;
    }

    if (f->fin && f->opcode != GOIM_WS_OP_CONTINUATION) {
        return gb_child_message(c, p, len);
    }

    /* a fragment: joined, then handled as one message */

    x = gb_child_ext(c);
    if (x == NULL) {
        gb_child_fail(c, "no memory");
        return -1;
    }

    msg = realloc(x->msg, x->msg_len + len + 1);
    if (msg == NULL) {
        gb_child_fail(c, "no memory");
        return -1;
    }

    memcpy(msg + x->msg_len, p, len);
    x->msg = msg;
    x->msg_len += len;

    if (!f->fin) {
        return 0;
    }

    len = x->msg_len;
    x->msg = NULL;
    x->msg_len = 0;

    if (gb_child_message(c, msg, len) != 0) {
        free(msg);
        return -1;
    }

    free(msg);

    return 0;
}


static int
gb_child_message(gb_conn_t *c, const uint8_t *p, size_t len)
{
    long           rc;
    goim_packet_t  pkt;

    if (gb.mode == GB_MODE_NCHAN) {
        gb_child_delivery(c, p, len, 1, 0);
        return 0;
    }

    rc = goim_packet_parse_exact(p, len, GB_MAX_BODY, &pkt);

    if (rc < 0) {
        gb_child_fail(c, goim_packet_strerror(rc));
        return -1;
    }

    return gb_child_packet(c, &pkt);
}


static int
gb_child_packet(gb_conn_t *c, goim_packet_t *pkt)
{
    int            rc;
    size_t         off;
    goim_packet_t  in;

    switch (pkt->op) {

    case GOIM_OP_AUTH_REPLY:
        /* chat: a room of the token refused (limit, bad id) */
        if (gb.chat
            && memmem(pkt->body, pkt->body_len, "\"joined\":false", 15))
        {
            gc_stats.join_refused++;
        }

        if (gb.recover && c->state == GB_AUTH) {
            gb_child_recover_auth_reply(c, pkt->body, pkt->body_len);
        }

        if (c->state == GB_AUTH) {
            gb_child_ready(c);
        }

        return 0;

    case GOIM_OP_RECOVER_REPLY:
        if (gb.recover) {
            gb_child_recover_result(c, pkt->body, pkt->body_len);
        }

        return 0;

    case GOIM_OP_HEARTBEAT_REPLY:
        gc_stats.heartbeats++;
        return 0;

    case GOIM_OP_RAW:
        /* WebSocket batches; TCP gets the inner packets directly */
        off = 0;

        while ((rc = goim_raw_next(pkt->body, pkt->body_len, &off, &in))
               == 1)
        {
            if (in.op == GB_OP) {
                gb_child_delivery(c, in.body, in.body_len, in.ver, in.seq);
            }
        }

        if (rc < 0) {
            gb_child_fail(c, "bad OP_RAW body");
            return -1;
        }

        return 0;
    }

    if (pkt->op == GB_OP) {
        gb_child_delivery(c, pkt->body, pkt->body_len, pkt->ver, pkt->seq);
    }

    return 0;
}


/*
 * counts a message; its latency from the publisher's "ts" (realtime us);
 * ver and pseq: the inner packet's, the room's position with --recover
 */

static void
gb_child_delivery(gb_conn_t *c, const uint8_t *p, size_t len, int32_t ver,
    int32_t pseq)
{
    int             recovered;
    int64_t         ts, seq;
    uint64_t        lat;
    gb_seq_t       *sq;
    const uint8_t  *t, *end;

    /* a recovered message is old: kept out of the live latencies */
    recovered = gb.recover ? gb_child_recover_position(c, ver, pseq) : 0;

    end = p + len;
    t = memmem(p, len, "\"ts\":", 5);

    if (t == NULL) {
        gc_stats.received++;
        gc_stats.no_ts++;
        return;
    }

    ts = 0;

    for (t += 5; t < end && *t == ' '; t++) { /* void */ }

    for ( /* void */ ; t < end && *t >= '0' && *t <= '9'; t++) {
        ts = ts * 10 + (*t - '0');
    }

    /* e.g. a message buffered by the server from an earlier run */
    if (ts < gb.start_real) {
        gc_stats.stale++;
        return;
    }

    gc_stats.received++;

    lat = gc_now_real > ts ? (uint64_t) (gc_now_real - ts) : 0;

    if (!recovered) {
        gb_hist_add(&gc_hist, lat);
    }

    /* the publisher writes "seq" right after "ts" */
    seq = -1;
    t = memmem(t, end - t, "\"seq\":", 6);

    if (t) {
        seq = 0;

        for (t += 6; t < end && *t >= '0' && *t <= '9'; t++) {
            seq = seq * 10 + (*t - '0');
        }
    }

    if (gb.chat) {
        gb_child_chat_delivery(c, seq, lat, t ? t : p, end);
    }

    if (gb.recover) {
        gb_child_recover_delivery(c, seq < 0 ? -1 : seq - gb.seq_base);
    }

    if (seq >= 0 && seq < GB_SEQS) {
        sq = &gc_seqs[seq];

        if (sq->count == 0 || lat < sq->min) {
            sq->min = lat;
        }

        if (lat > sq->max) {
            sq->max = lat;
        }

        sq->count++;
    }
}


void
gb_child_report(uint32_t type)
{
    gb_rec_t    rec;
    static struct {
        gb_rec_t    rec;
        gb_final_t  final;
    }           buf;

    rec.type = type;
    rec.len = type == GB_REC_FINAL ? sizeof(gb_final_t) : sizeof(gb_stats_t);

    buf.rec = rec;
    buf.final.stats = gc_stats;

    if (type == GB_REC_FINAL) {
        buf.final.hist = gc_hist;
        memcpy(buf.final.seqs, gc_seqs, sizeof(gc_seqs));

        if (gb.recover) {
            gb_child_recover_hists(&buf.final);
        }
    }

    gb_child_write_all(&buf, sizeof(gb_rec_t) + rec.len);
}


/* a record to the parent, whole; a child whose parent is gone exits */

void
gb_child_write_all(const void *data, size_t len)
{
    ssize_t         n;
    const uint8_t  *p;

    for (p = data; len; ) {
        n = write(gc_out, p, len);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            /* the parent is gone */
            _exit(1);
        }

        p += n;
        len -= n;
    }
}
