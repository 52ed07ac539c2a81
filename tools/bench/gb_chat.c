/*
 * goim-bench: the chat shape (--chat G): group rooms, reconnect churn,
 *     and the exact account of every (push, member) pair.
 *
 * Client i is in its personal room u://<id> and in group g://<i / G>.
 * Message seq goes to group gb_chat_group(seq), a fixed pseudo-random
 * function, so that the parent knows each push's members without a log
 * of the groups.  Each client process keeps one G-bit mask per seq
 * (which members of the group got it) and the intervals in which each
 * of its clients was not ready; the parent merges them at the end.
 */


#include <gb.h>


/* client process */
static uint16_t    *gc_masks;           /* per seq: members that got it */
static uint32_t    *gc_last;            /* per seq: latest receipt, us */
static int64_t     *gc_down_at;         /* per client: 0 when ready */
static gb_down_t   *gc_downs;
static size_t       gc_ndowns;
static size_t       gc_downs_cap;
static double       gc_churn_tokens;
static int64_t      gc_churn_last;
static uint64_t     gc_rand;
static int          gc_draining;

/* parent */
static int64_t     *gp_t_sent;          /* per seq, monotonic us; 0: not */
static int64_t     *gp_t_done;          /* per seq: the API's answer */
static uint8_t     *gp_ok;              /* per seq: 0 none, 1 code 0, 2 no */
static uint16_t    *gp_masks;
static uint32_t    *gp_last;
static gb_down_t   *gp_downs;
static size_t       gp_ndowns;
static size_t       gp_downs_cap;


static uint64_t
gb_mix(uint64_t x)
{
    /* splitmix64's finalizer: consecutive seqs land on unrelated groups */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;

    return x ^ (x >> 31);
}


uint32_t
gb_chat_group(uint64_t seq)
{
    return (uint32_t) (gb_mix(seq) % (uint64_t) gb.groups);
}


/* --- client process ------------------------------------------------------- */

int
gb_child_chat_init(void)
{
    long  k;

    gc_masks = calloc(gb.seq_max, sizeof(uint16_t));
    gc_last = calloc(gb.seq_max, sizeof(uint32_t));
    gc_down_at = malloc(gc_n * sizeof(int64_t));
    gc_rand = gb_mix((uint64_t) getpid() ^ (uint64_t) gb_mono_us());
    gc_churn_last = gb_mono_us();

    if (gc_masks == NULL || gc_last == NULL || gc_down_at == NULL) {
        return -1;
    }

    /* not ready since the start: the first auth closes that interval */
    for (k = 0; k < gc_n; k++) {
        gc_down_at[k] = gb.t0;
    }

    return 0;
}


void
gb_child_chat_delivery(gb_conn_t *c, int64_t seq, uint64_t lat,
    const uint8_t *p, const uint8_t *end)
{
    long            idx, g, s;
    uint16_t        bit;
    const uint8_t  *t;

    idx = gc_id + (long) (c - gc_conns);
    s = seq - gb.seq_base;

    /* the publisher writes "g" right after "seq" */
    g = -1;
    t = memmem(p, end - p, "\"g\":", 4);

    if (t) {
        g = 0;

        for (t += 4; t < end && *t >= '0' && *t <= '9'; t++) {
            g = g * 10 + (*t - '0');
        }
    }

    if (seq < 0 || s < 0 || s >= gb.seq_max || g != idx / gb.chat
        || (uint32_t) g != gb_chat_group((uint64_t) s))
    {
        gc_stats.misrouted++;
        return;
    }

    bit = (uint16_t) (1u << (idx % gb.chat));

    if (lat > gc_last[s]) {
        gc_last[s] = lat < UINT32_MAX ? (uint32_t) lat : UINT32_MAX;
    }

    if (gc_masks[s] & bit) {
        gc_stats.duplicates++;
        return;
    }

    gc_masks[s] |= bit;

    if (gc_draining) {
        gc_stats.drained++;
    }
}


void
gb_child_chat_down(gb_conn_t *c)
{
    long  k;

    k = (long) (c - gc_conns);

    if (gc_down_at[k] == 0) {
        gc_down_at[k] = gb_mono_us();
    }
}


static void
gb_child_chat_interval(long k, int64_t up)
{
    size_t      cap;
    gb_down_t  *d;

    if (gc_ndowns == gc_downs_cap) {
        cap = gc_downs_cap ? 2 * gc_downs_cap : 4096;
        d = realloc(gc_downs, cap * sizeof(gb_down_t));

        if (d == NULL) {
            /* counted as missing rather than excused: the safe side */
            return;
        }

        gc_downs = d;
        gc_downs_cap = cap;
    }

    d = &gc_downs[gc_ndowns++];
    d->down = gc_down_at[k];
    d->up = up;
    d->idx = (uint32_t) (gc_id + k);
    d->pad = 0;
}


void
gb_child_chat_up(gb_conn_t *c)
{
    long  k;

    k = (long) (c - gc_conns);

    if (gc_down_at[k]) {
        gb_child_chat_interval(k, gb_mono_us());
        gc_down_at[k] = 0;
    }
}


/*
 * Before a planned close, what the server already wrote is read: it
 * was delivered (on loopback a write lands in our receive queue at
 * once), and a client behind on its reading would otherwise throw it
 * away with the socket and count it missing.
 */

static void
gb_child_chat_drain(gb_conn_t *c)
{
    int  avail, rounds;

    gc_draining = 1;

    for (rounds = 0; rounds < 256 && c->state == GB_READY; rounds++) {
        if (ioctl(c->fd, FIONREAD, &avail) == -1 || avail <= 0) {
            break;
        }

        gb_child_read(c);
    }

    gc_draining = 0;
}


/*
 * Reconnects: this process's share of --reconnect-rate a second, each a
 * ready client picked at random, closed and queued to connect at once
 * with the same token (same key, same rooms).
 */

void
gb_child_chat_churn(int64_t now)
{
    int         tries;
    long        k;
    double      rate;
    gb_conn_t  *c;

    rate = (double) gb.reconnect_rate * (double) gc_n / (double) gb.clients;

    /* --recover: the churn's clock and picks start with the churn */
    if (gc_churn_last == 0) {
        gc_churn_last = now;
        gc_rand = gb_mix((uint64_t) getpid() ^ (uint64_t) now);
        return;
    }

    gc_churn_tokens += (double) (now - gc_churn_last) * rate / GB_SEC;
    gc_churn_last = now;

    if (gc_churn_tokens > rate / 10 + 1) {
        gc_churn_tokens = rate / 10 + 1;
    }

    while (gc_churn_tokens >= 1) {
        gc_churn_tokens -= 1;

        for (tries = 0; tries < 8; tries++) {
            gc_rand ^= gc_rand << 13;
            gc_rand ^= gc_rand >> 7;
            gc_rand ^= gc_rand << 17;

            k = (long) (gc_rand % (uint64_t) gc_n);
            c = &gc_conns[k];

            if (c->state == GB_READY && gb.recover
                && !gb_child_recover_pickable(c))
            {
                continue;
            }

            if (c->state == GB_READY) {
                /*
                 * --recover closes without reading what the socket holds:
                 * the recovery must bring it back
                 */
                if (gb.chat) {
                    gb_child_chat_drain(c);
                }

                if (c->state != GB_READY) {
                    /* the drain found an error: dropped already */
                    break;
                }

                gc_stats.reconnects++;
                gb_child_drop(c, 0, 0);
                break;
            }
        }
    }
}


static void
gb_child_write(uint32_t type, const void *data, size_t len)
{
    gb_rec_t  rec;

    rec.type = type;
    rec.len = (uint32_t) len;

    gb_child_write_all(&rec, sizeof(rec));
    gb_child_write_all(data, len);
}


/* before the final record: the masks and every interval not ready */

void
gb_child_chat_report(void)
{
    long  k;

    for (k = 0; k < gc_n; k++) {
        if (gc_down_at[k]) {
            gb_child_chat_interval(k, INT64_MAX);
        }
    }

    gb_child_write(GB_REC_MASKS, gc_masks, gb.seq_max * sizeof(uint16_t));
    gb_child_write(GB_REC_LAST, gc_last, gb.seq_max * sizeof(uint32_t));
    gb_child_write(GB_REC_DOWN, gc_downs, gc_ndowns * sizeof(gb_down_t));
}


/* --- parent --------------------------------------------------------------- */

int
gb_chat_init(void)
{
    gp_t_sent = calloc(gb.seq_max, sizeof(int64_t));
    gp_t_done = calloc(gb.seq_max, sizeof(int64_t));
    gp_ok = calloc(gb.seq_max, 1);
    gp_masks = calloc(gb.seq_max, sizeof(uint16_t));
    gp_last = calloc(gb.seq_max, sizeof(uint32_t));

    return gp_t_sent && gp_t_done && gp_ok && gp_masks && gp_last ? 0 : -1;
}


void
gb_chat_sent(uint64_t seq, int64_t at)
{
    if (seq < (uint64_t) gb.seq_max) {
        gp_t_sent[seq] = at;
    }
}


void
gb_chat_answered(uint64_t seq, int ok, int64_t at)
{
    if (seq < (uint64_t) gb.seq_max) {
        gp_t_done[seq] = at;
        gp_ok[seq] = ok ? 1 : 2;
    }
}


void
gb_chat_masks(const uint16_t *m, size_t n)
{
    size_t  i;

    if (n > (size_t) gb.seq_max) {
        n = gb.seq_max;
    }

    for (i = 0; i < n; i++) {
        gp_masks[i] |= m[i];
    }
}


void
gb_chat_last(const uint32_t *m, size_t n)
{
    size_t  i;

    if (n > (size_t) gb.seq_max) {
        n = gb.seq_max;
    }

    for (i = 0; i < n; i++) {
        if (m[i] > gp_last[i]) {
            gp_last[i] = m[i];
        }
    }
}


int
gb_chat_down(const gb_down_t *d, size_t n)
{
    size_t      cap;
    gb_down_t  *p;

    if (gp_ndowns + n > gp_downs_cap) {
        cap = gp_downs_cap ? gp_downs_cap : 4096;

        while (cap < gp_ndowns + n) {
            cap *= 2;
        }

        p = realloc(gp_downs, cap * sizeof(gb_down_t));
        if (p == NULL) {
            return -1;
        }

        gp_downs = p;
        gp_downs_cap = cap;
    }

    memcpy(gp_downs + gp_ndowns, d, n * sizeof(gb_down_t));
    gp_ndowns += n;

    return 0;
}


static int
gb_down_cmp(const void *a, const void *b)
{
    const gb_down_t  *x = a, *y = b;

    if (x->idx != y->idx) {
        return x->idx < y->idx ? -1 : 1;
    }

    return x->down < y->down ? -1 : x->down > y->down;
}


/*
 * The account, printed as the "chat" member of the JSON summary.  For
 * each push the API accepted (code 0), each member of its group either
 * got it (once: more are duplicates), or was not ready at some moment
 * between the request and excuse_ms after the later of the answer and
 * the last receipt of that push by any member (closed for a reconnect,
 * or still authenticating: goim's contract covers the connections
 * online when the push is accepted, and a member's worker may write it
 * later than the others'), which excuses it, or is missing.  A missing
 * pair is "left" when the member closed within GB_CHAT_LEFT_US after
 * that window (the push may still have been on its way to it), else
 * "stayed": a member online throughout that never got the push.  Pushes
 * the API refused or never answered are counted apart with whatever
 * reached their members.
 */

void
gb_chat_report(void)
{
    int        first_log;
    long       g, lo, hi, idx;
    size_t     i, j, *start;
    int64_t    a, b;
    uint16_t   bit;
    uint64_t   s, ok, failed, unanswered, expected, delivered, missing;
    uint64_t   missing_left;
    uint64_t   excused, excused_got, stray;
    gb_hist_t  api, down;

    memset(&api, 0, sizeof(gb_hist_t));
    memset(&down, 0, sizeof(gb_hist_t));

    qsort(gp_downs, gp_ndowns, sizeof(gb_down_t), gb_down_cmp);

    start = calloc(gb.clients + 1, sizeof(size_t));
    if (start == NULL) {
        printf(",\"chat\":null");
        return;
    }

    /* start[idx] .. start[idx + 1]: the intervals of client idx */
    for (i = 0; i < gp_ndowns; i++) {
        /* how long a reconnect took: close to the next auth reply */
        if (gp_downs[i].down > gb.t0 && gp_downs[i].up != INT64_MAX) {
            gb_hist_add(&down, (uint64_t) (gp_downs[i].up
                                           - gp_downs[i].down));
        }

        if (gp_downs[i].idx < (uint64_t) gb.clients) {
            start[gp_downs[i].idx + 1]++;
        }
    }

    for (idx = 0; idx < gb.clients; idx++) {
        start[idx + 1] += start[idx];
    }

    ok = failed = unanswered = expected = delivered = missing = 0;
    missing_left = 0;
    excused = excused_got = stray = 0;
    first_log = 0;

    for (s = 0; s < (uint64_t) gb.seq_max; s++) {
        if (gp_t_sent[s] == 0) {
            continue;
        }

        g = (long) gb_chat_group(s);
        lo = g * gb.chat;
        hi = lo + gb.chat < gb.clients ? lo + gb.chat : gb.clients;

        if (gp_ok[s] != 1) {
            if (gp_ok[s] == 2) {
                failed++;

            } else {
                unanswered++;
            }

            stray += (uint64_t) __builtin_popcount(gp_masks[s]);
            continue;
        }

        ok++;
        a = gp_t_sent[s];

        /* how long the API took to answer: the publisher's limit */
        gb_hist_add(&api, (uint64_t) (gp_t_done[s] > a ? gp_t_done[s] - a
                                                         : 0));
        b = gp_t_done[s] > a + gp_last[s] ? gp_t_done[s] : a + gp_last[s];
        b += gb.excuse_ms * 1000;

        for (idx = lo; idx < hi; idx++) {
            expected++;
            bit = (uint16_t) (1u << (idx - lo));

            /* a member not ready near the push: excused either way */
            for (j = start[idx]; j < start[idx + 1]; j++) {
                if (gp_downs[j].down <= b && gp_downs[j].up >= a) {
                    break;
                }
            }

            if (gp_masks[s] & bit) {
                delivered++;
                excused_got += j < start[idx + 1];
                continue;
            }

            if (j < start[idx + 1]) {
                excused++;
                continue;
            }

            missing++;

            for (j = start[idx]; j < start[idx + 1]; j++) {
                if (gp_downs[j].down > b
                    && gp_downs[j].down <= b + GB_CHAT_LEFT_US)
                {
                    missing_left++;
                    break;
                }
            }

            if (first_log++ < 2 * GB_ERRLOG_MAX) {
                fprintf(stderr, "goim-bench: chat: seq %" PRIu64 " (group "
                        "%ld, sent at %.3f s, answered after %.1f ms, last "
                        "receipt after %.1f ms, members got %d) missing at "
                        "client %ld; its not-ready intervals:", s, g,
                        (double) (a - gb.t0) / GB_SEC,
                        (double) (gp_t_done[s] - a) / 1000.0,
                        (double) gp_last[s] / 1000.0,
                        __builtin_popcount(gp_masks[s]), idx);

                for (j = start[idx]; j < start[idx + 1]; j++) {
                    fprintf(stderr, " %.3f-%.3f",
                            (double) (gp_downs[j].down - gb.t0) / GB_SEC,
                            gp_downs[j].up == INT64_MAX ? -1.0
                            : (double) (gp_downs[j].up - gb.t0) / GB_SEC);
                }

                fprintf(stderr, "\n");
            }
        }
    }

    free(start);

    printf(",\"chat\":{\"group_size\":%ld,\"groups\":%ld,\"rooms\":%ld,"
           "\"reconnect_rate\":%ld,\"excuse_ms\":%ld,\"pushes_ok\":%" PRIu64
           ",\"pushes_failed\":%" PRIu64 ",\"pushes_unanswered\":%" PRIu64
           ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64
           ",\"missing\":%" PRIu64 ",\"missing_left\":%" PRIu64
           ",\"missing_stayed\":%" PRIu64 ",\"excused\":%" PRIu64
           ",\"excused_but_delivered\":%" PRIu64
           ",\"delivered_of_failed_or_unanswered\":%" PRIu64
           ",\"down_intervals\":%zu,\"delivered_share\":%.6f,"
           "\"delivered_share_not_excused\":%.6f,\"api_p50_ms\":%.3f,"
           "\"api_p99_ms\":%.3f,\"api_max_ms\":%.3f,"
           "\"reconnect_p50_ms\":%.3f,\"reconnect_p99_ms\":%.3f,"
           "\"reconnect_max_ms\":%.3f}",
           gb.chat, gb.groups, gb.clients + gb.groups, gb.reconnect_rate,
           gb.excuse_ms, ok, failed, unanswered, expected, delivered,
           missing, missing_left, missing - missing_left, excused,
           excused_got, stray, gp_ndowns,
           expected ? (double) delivered / (double) expected : 0.0,
           expected > excused
           ? (double) (delivered - excused_got)
             / (double) (expected - excused - excused_got) : 0.0,
           gb_hist_ms(&api, 0.50), gb_hist_ms(&api, 0.99),
           (double) api.max / 1000.0, gb_hist_ms(&down, 0.50),
           gb_hist_ms(&down, 0.99), (double) down.max / 1000.0);
}
