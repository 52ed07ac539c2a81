/*
 * goim-bench: --recover, reconnects that recover the room's missed
 *     messages (docs/PROTOCOL.md 1.15), and the exact account of every
 *     (push, client) pair.
 *
 * Each client keeps its room's position: the stream id and epoch from
 * op 8 and the offset of the last room message it read (the inner
 * packet's seq, extended to 64 bits from the last offset known).  While
 * publishing, --reconnect-rate clients a second are closed at random,
 * without reading what their socket still holds, and reconnect at once
 * with op 35 (that position) right before op 7; op 8, the missed
 * messages and op 36 follow.  Each client process keeps one bit per
 * (message seq, client); the parent checks them against the pushes the
 * API accepted: every client must have every one of them exactly once.
 */


#include <gb.h>


#define GB_RC_NONE           0              /* no position (yet) */
#define GB_RC_LIVE           1
#define GB_RC_RECOVERING     2              /* op 35 sent, op 36 awaited */

#define GB_RCF_FAILED        0x01           /* a recovery said false */
#define GB_RCF_NOT_READY     0x02           /* not ready at the end */
#define GB_RCF_NO_POSITION   0x04           /* op 8 gave no position */


typedef struct {
    uint64_t           off;             /* the last offset read, or seam */
    uint64_t           seam;            /* op 8's, while recovering */
    int64_t            down;            /* reconnect started, mono us */
    int64_t            conn;            /* its first connect() */
    int64_t            op8;             /* its op 8 */
    uint32_t           stream;
    uint8_t            state;
    uint8_t            flags;
    char               epoch[GB_EPOCH_MAX + 1];
} gb_rc_t;


/* the reasons of op 36 (docs/PROTOCOL.md 1.15), in gb_stats_t's order */
static const char  *gb_rc_reasons[GB_RC_REASONS] = {
    "epoch changed", "epoch malformed", "offset older than the history",
    "offset in the future", "send queue full", "no stream id free",
    "not joined", "error", "other"
};


/* client process */
static gb_rc_t     *gc_rc;
static uint8_t     *gc_got;             /* per client: seq_max bits */
static size_t       gc_got_len;         /* bytes per client */
static gb_hist_t    gc_rhist;           /* reconnect start to op 36 */
static gb_hist_t    gc_rhist_wait;      /* ... to connect() */
static gb_hist_t    gc_rhist_auth;      /* connect() to op 8 */
static gb_hist_t    gc_rhist_tail;      /* op 8 to op 36 */

/* parent */
static uint8_t     *gp_rok;             /* per seq: 0 not sent, 1 code 0,
                                           2 refused, 3 not answered */
static uint64_t     gp_r_expected;
static uint64_t     gp_r_delivered;
static uint64_t     gp_r_missing;
static uint64_t     gp_r_missing_failed;
static uint64_t     gp_r_missing_not_ready;
static uint64_t     gp_r_stray;
static uint64_t     gp_r_clients_failed;
static uint64_t     gp_r_clients_not_ready;
static uint64_t     gp_r_clients_no_pos;
static uint64_t     gp_r_clients_missing;
static gb_hist_t    gp_rhist;
static gb_hist_t    gp_rhist_wait;
static gb_hist_t    gp_rhist_auth;
static gb_hist_t    gp_rhist_tail;
static int          gp_r_log;


/* --- client process ------------------------------------------------------- */

int
gb_child_recover_init(void)
{
    gc_got_len = (size_t) (gb.seq_max + 7) / 8;
    gc_rc = calloc(gc_n, sizeof(gb_rc_t));
    gc_got = calloc(gc_n, gc_got_len);

    return gc_rc && gc_got ? 0 : -1;
}


/* a JSON unsigned number after "name": in p[0..len), or -1 */

static int64_t
gb_json_uint(const uint8_t *p, size_t len, const char *name)
{
    size_t          n;
    int64_t         v;
    const uint8_t  *t, *end;

    n = strlen(name);
    end = p + len;
    t = memmem(p, len, name, n);

    if (t == NULL) {
        return -1;
    }

    t += n;

    if (t >= end || *t < '0' || *t > '9') {
        return -1;
    }

    for (v = 0; t < end && *t >= '0' && *t <= '9'; t++) {
        v = v * 10 + (*t - '0');
    }

    return v;
}


/* the string after "name":" in p[0..len) into buf, or -1 */

static int
gb_json_str(const uint8_t *p, size_t len, const char *name, char *buf,
    size_t size)
{
    size_t          n;
    const uint8_t  *t, *q, *end;

    n = strlen(name);
    end = p + len;
    t = memmem(p, len, name, n);

    if (t == NULL) {
        return -1;
    }

    t += n;
    q = memchr(t, '"', end - t);

    if (q == NULL || (size_t) (q - t) >= size) {
        return -1;
    }

    memcpy(buf, t, q - t);
    buf[q - t] = '\0';

    return 0;
}


/* op 7 is about to go: op 35 first when the client has a position */

int
gb_child_recover_auth(gb_conn_t *c, uint8_t *body, size_t size)
{
    long      idx;
    gb_rc_t  *r;

    r = &gc_rc[c - gc_conns];

    if (r->state == GB_RC_NONE || r->epoch[0] == '\0') {
        return 0;
    }

    idx = gc_id + (long) (c - gc_conns);

    r->state = GB_RC_RECOVERING;
    gc_stats.recovering++;

    return snprintf((char *) body, size,
                    "{\"rooms\":[{\"room_id\":\"bench://%ld\",\"epoch\":"
                    "\"%s\",\"offset\":%" PRIu64 "}]}",
                    idx % gb.rooms, r->epoch, r->off);
}


/* op 8: the room's position (its seam) */

void
gb_child_recover_auth_reply(gb_conn_t *c, const uint8_t *p, size_t len)
{
    int64_t         stream, off;
    gb_rc_t        *r;
    const uint8_t  *rooms;

    r = &gc_rc[c - gc_conns];

    rooms = memmem(p, len, "\"rooms\":[", 9);
    if (rooms) {
        len -= rooms - p;
        p = rooms;
    }

    stream = rooms ? gb_json_uint(p, len, "\"stream\":") : -1;
    off = rooms ? gb_json_uint(p, len, "\"offset\":") : -1;

    if (stream < 0 || off < 0
        || gb_json_str(p, len, "\"epoch\":\"", r->epoch, sizeof(r->epoch))
           != 0)
    {
        gc_stats.no_position++;
        r->flags |= GB_RCF_NO_POSITION;
        r->state = GB_RC_NONE;
        r->epoch[0] = '\0';
        return;
    }

    r->stream = (uint32_t) stream;

    if (r->state == GB_RC_RECOVERING) {
        /* the missed messages come next, extended from r->off */
        r->seam = (uint64_t) off;
        r->op8 = gb_mono_us();
        return;
    }

    r->off = (uint64_t) off;
    r->state = GB_RC_LIVE;
}


/* op 36: the result */

void
gb_child_recover_result(gb_conn_t *c, const uint8_t *p, size_t len)
{
    int             i;
    char            reason[64];
    int64_t         now;
    gb_rc_t        *r;

    r = &gc_rc[c - gc_conns];

    if (r->state != GB_RC_RECOVERING) {
        gc_stats.rc_unexpected++;
        return;
    }

    now = gb_mono_us();
    gc_stats.recovering--;

    if (r->down) {
        gb_hist_add(&gc_rhist, (uint64_t) (now - r->down));

        /* where it went: the client's queue, handshake and auth, op 36 */
        if (r->conn >= r->down && r->op8 >= r->conn) {
            gb_hist_add(&gc_rhist_wait, (uint64_t) (r->conn - r->down));
            gb_hist_add(&gc_rhist_auth, (uint64_t) (r->op8 - r->conn));
            gb_hist_add(&gc_rhist_tail, (uint64_t) (now - r->op8));
        }

        r->down = 0;
        r->conn = 0;
        r->op8 = 0;
    }

    if (memmem(p, len, "\"recovered\":true", 16)) {
        gc_stats.rc_ok++;

        /* the messages up to the seam came before this packet */
        if (r->off != r->seam) {
            gc_stats.rc_seam_bad++;
            r->off = r->seam;
        }

        r->state = GB_RC_LIVE;
        return;
    }

    i = GB_RC_REASONS - 1;

    if (memmem(p, len, "\"error\":", 8)) {
        i = GB_RC_REASONS - 2;

    } else if (gb_json_str(p, len, "\"reason\":\"", reason, sizeof(reason))
               == 0)
    {
        for (i = 0; i < GB_RC_REASONS - 2; i++) {
            if (strcmp(reason, gb_rc_reasons[i]) == 0) {
                break;
            }
        }

        if (i == GB_RC_REASONS - 2) {
            i = GB_RC_REASONS - 1;
        }
    }

    gc_stats.rc_failed[i]++;
    r->flags |= GB_RCF_FAILED;

    /* the live stream goes on after the seam */
    r->off = r->seam;
    r->state = GB_RC_LIVE;
}


/*
 * A room message with the room's stream id in ver and its offset's low
 * 32 bits in seq; returns 1 when it is a recovered one (between op 8 and
 * op 36).
 */

int
gb_child_recover_position(gb_conn_t *c, int32_t ver, int32_t seq)
{
    uint64_t   o;
    gb_rc_t   *r;

    r = &gc_rc[c - gc_conns];

    if (r->state == GB_RC_NONE) {
        return 0;
    }

    if (((uint32_t) ver & 0xffff) != r->stream) {
        gc_stats.rc_stream_bad++;
        return 0;
    }

    o = r->off + (uint64_t) ((uint32_t) seq - (uint32_t) r->off);

    if (o == r->off + 1) {
        r->off = o;

    } else if (o <= r->off || o - r->off > 0x80000000ULL) {
        /* behind what was read: the server sent it again */
        gc_stats.rc_offset_repeat++;

    } else {
        gc_stats.rc_offset_gap++;
        r->off = o;
    }

    if (r->state == GB_RC_RECOVERING) {
        gc_stats.rc_messages++;
        return 1;
    }

    return 0;
}


/* a delivery of message seq s (from 0): the bit of (s, client) */

void
gb_child_recover_delivery(gb_conn_t *c, int64_t s)
{
    uint8_t  *g, bit;

    if (s < 0 || s >= gb.seq_max) {
        gc_stats.misrouted++;
        return;
    }

    g = gc_got + (size_t) (c - gc_conns) * gc_got_len + (size_t) (s >> 3);
    bit = (uint8_t) (1u << (s & 7));

    if (*g & bit) {
        gc_stats.duplicates++;
        return;
    }

    *g |= bit;
}


/* the connection is closed (planned or not): its reconnect starts now */

void
gb_child_recover_down(gb_conn_t *c)
{
    gb_rc_t  *r;

    r = &gc_rc[c - gc_conns];

    if (r->down == 0) {
        r->down = gb_mono_us();
    }

    /* a recovery cut short: the next op 35 gives what was read */
    if (r->state == GB_RC_RECOVERING) {
        gc_stats.rc_cut++;
        gc_stats.recovering--;
        r->state = GB_RC_LIVE;
    }
}


void
gb_child_recover_connect(gb_conn_t *c)
{
    gb_rc_t  *r;

    r = &gc_rc[c - gc_conns];

    if (r->down && r->conn == 0) {
        r->conn = gb_mono_us();
    }
}


/* churn picks clients that are not in the middle of a recovery */

int
gb_child_recover_pickable(gb_conn_t *c)
{
    return gc_rc[c - gc_conns].state != GB_RC_RECOVERING;
}


/* before the final record: per client its flags and bits */

void
gb_child_recover_report(void)
{
    long       k;
    size_t     len;
    uint8_t   *buf, *p;
    gb_rec_t   rec;
    uint32_t   head[4];

    len = sizeof(head) + (size_t) gc_n * (1 + gc_got_len);

    buf = malloc(len);
    if (buf == NULL) {
        fprintf(stderr, "goim-bench: no memory for the recover report\n");
        return;
    }

    head[0] = (uint32_t) gc_id;
    head[1] = (uint32_t) gc_n;
    head[2] = (uint32_t) gc_got_len;
    head[3] = 0;
    memcpy(buf, head, sizeof(head));
    p = buf + sizeof(head);

    for (k = 0; k < gc_n; k++) {
        *p = gc_rc[k].flags;

        if (gc_conns[k].state != GB_READY
            || gc_rc[k].state == GB_RC_RECOVERING)
        {
            *p |= GB_RCF_NOT_READY;
        }

        memcpy(p + 1, gc_got + (size_t) k * gc_got_len, gc_got_len);
        p += 1 + gc_got_len;
    }

    rec.type = GB_REC_GOT;
    rec.len = (uint32_t) len;

    gb_child_write_all(&rec, sizeof(rec));
    gb_child_write_all(buf, len);

    free(buf);
}


void
gb_child_recover_hists(gb_final_t *f)
{
    f->rhist = gc_rhist;
    f->rhist_wait = gc_rhist_wait;
    f->rhist_auth = gc_rhist_auth;
    f->rhist_tail = gc_rhist_tail;
}


/* --- parent --------------------------------------------------------------- */

int
gb_recover_init(void)
{
    gp_rok = calloc(gb.seq_max, 1);

    return gp_rok ? 0 : -1;
}


void
gb_recover_sent(uint64_t seq)
{
    if (seq < (uint64_t) gb.seq_max) {
        gp_rok[seq] = 3;
    }
}


void
gb_recover_answered(uint64_t seq, int ok)
{
    if (seq < (uint64_t) gb.seq_max) {
        gp_rok[seq] = ok ? 1 : 2;
    }
}


void
gb_recover_hists(const gb_final_t *f)
{
    gb_hist_merge(&gp_rhist, &f->rhist);
    gb_hist_merge(&gp_rhist_wait, &f->rhist_wait);
    gb_hist_merge(&gp_rhist_auth, &f->rhist_auth);
    gb_hist_merge(&gp_rhist_tail, &f->rhist_tail);
}


/*
 * One client process's bits, after every API answer is in: each client
 * must have each push the API accepted (code 0) once; a missing one is
 * put down to a recovery that said false (the client was told to reload
 * its state) or to the client not being ready at the end, else it is
 * plainly missing.  Deliveries of pushes the API refused or never
 * answered are counted apart.
 */

void
gb_recover_got(const uint8_t *p, size_t len)
{
    uint8_t    flags, bit;
    uint32_t   head[4], k, n, glen;
    uint64_t   s, miss;

    if (len < sizeof(head)) {
        return;
    }

    memcpy(head, p, sizeof(head));
    n = head[1];
    glen = head[2];
    p += sizeof(head);

    if (glen != (uint32_t) ((gb.seq_max + 7) / 8)
        || len < sizeof(head) + (size_t) n * (1 + glen))
    {
        fprintf(stderr, "goim-bench: bad recover record\n");
        return;
    }

    for (k = 0; k < n; k++, p += 1 + glen) {
        flags = p[0];
        miss = 0;

        gp_r_clients_failed += (flags & 0x01) != 0;
        gp_r_clients_not_ready += (flags & 0x02) != 0;
        gp_r_clients_no_pos += (flags & 0x04) != 0;

        for (s = 0; s < (uint64_t) gb.seq_max; s++) {
            bit = (uint8_t) (p[1 + (s >> 3)] & (1u << (s & 7)));

            if (gp_rok[s] != 1) {
                gp_r_stray += bit != 0;
                continue;
            }

            gp_r_expected++;

            if (bit) {
                gp_r_delivered++;
                continue;
            }

            miss++;

            if (flags & 0x01) {
                gp_r_missing_failed++;

            } else if (flags & 0x02) {
                gp_r_missing_not_ready++;

            } else {
                gp_r_missing++;

                if (gp_r_log++ < GB_ERRLOG_MAX) {
                    fprintf(stderr, "goim-bench: recover: client %u "
                            "missing seq %" PRIu64 "\n", head[0] + k, s);
                }
            }
        }

        gp_r_clients_missing += miss != 0;
    }
}


/* the "recover" member of the JSON summary */

void
gb_recover_report(const gb_stats_t *t)
{
    int       i;
    uint64_t  s, ok, refused, unanswered, failed;

    ok = refused = unanswered = 0;

    for (s = 0; s < (uint64_t) gb.seq_max; s++) {
        ok += gp_rok[s] == 1;
        refused += gp_rok[s] == 2;
        unanswered += gp_rok[s] == 3;
    }

    failed = 0;

    for (i = 0; i < GB_RC_REASONS; i++) {
        failed += t->rc_failed[i];
    }

    printf(",\"recover\":{\"reconnect_rate\":%ld,\"pushes_ok\":%" PRIu64
           ",\"pushes_refused\":%" PRIu64 ",\"pushes_unanswered\":%" PRIu64
           ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64
           ",\"missing\":%" PRIu64 ",\"missing_after_failed_recovery\":%"
           PRIu64 ",\"missing_not_ready_at_end\":%" PRIu64
           ",\"duplicates\":%" PRIu64 ",\"stray\":%" PRIu64
           ",\"misrouted\":%" PRIu64 ",\"clients_missing\":%" PRIu64
           ",\"clients_failed\":%" PRIu64 ",\"clients_not_ready\":%" PRIu64
           ",\"clients_no_position\":%" PRIu64 ",\"reconnects\":%" PRIu64
           ",\"recoveries\":%" PRIu64 ",\"recovered\":%" PRIu64
           ",\"recovered_messages\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"reasons\":{",
           gb.reconnect_rate, ok, refused, unanswered, gp_r_expected,
           gp_r_delivered, gp_r_missing, gp_r_missing_failed,
           gp_r_missing_not_ready, t->duplicates, gp_r_stray, t->misrouted,
           gp_r_clients_missing, gp_r_clients_failed,
           gp_r_clients_not_ready, gp_r_clients_no_pos, t->reconnects,
           t->rc_ok + failed, t->rc_ok, t->rc_messages, failed);

    for (i = 0; i < GB_RC_REASONS; i++) {
        printf("%s\"%s\":%" PRIu64, i ? "," : "", gb_rc_reasons[i],
               t->rc_failed[i]);
    }

    printf("},\"seam_mismatch\":%" PRIu64 ",\"offset_gaps\":%" PRIu64
           ",\"offset_repeats\":%" PRIu64 ",\"stream_mismatch\":%" PRIu64
           ",\"cut_short\":%" PRIu64 ",\"unexpected_op36\":%" PRIu64
           ",\"no_position\":%" PRIu64 ",\"latency_n\":%" PRIu64
           ",\"latency_p50_ms\":%.3f,\"latency_p90_ms\":%.3f"
           ",\"latency_p99_ms\":%.3f,\"latency_max_ms\":%.3f"
           ",\"queue_p50_ms\":%.3f,\"queue_p99_ms\":%.3f"
           ",\"auth_p50_ms\":%.3f,\"auth_p99_ms\":%.3f"
           ",\"replay_p50_ms\":%.3f,\"replay_p99_ms\":%.3f}",
           t->rc_seam_bad, t->rc_offset_gap, t->rc_offset_repeat,
           t->rc_stream_bad, t->rc_cut, t->rc_unexpected, t->no_position,
           gp_rhist.count, gb_hist_ms(&gp_rhist, 0.50),
           gb_hist_ms(&gp_rhist, 0.90), gb_hist_ms(&gp_rhist, 0.99),
           (double) gp_rhist.max / 1000.0,
           gb_hist_ms(&gp_rhist_wait, 0.50), gb_hist_ms(&gp_rhist_wait, 0.99),
           gb_hist_ms(&gp_rhist_auth, 0.50), gb_hist_ms(&gp_rhist_auth, 0.99),
           gb_hist_ms(&gp_rhist_tail, 0.50),
           gb_hist_ms(&gp_rhist_tail, 0.99));
}
