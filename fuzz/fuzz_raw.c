/*
 * OP_RAW splitter: the input is an OP_RAW body walked with
 * goim_raw_next() (and every inner OP_RAW packet's body in turn, a few
 * levels deep).  The packets found are then batched twice, re-encoded
 * with goim_raw_batch_add() (then put under an outer OP_RAW header) and
 * copied with goim_raw_batch_add_raw(); walking the batches must give
 * back exactly the same packets, and the copy exactly the same bytes.
 */

#include "fuzz.h"
#include "goim_packet.h"


#define MAX_DEPTH  4


static void walk(const uint8_t *body, size_t len, unsigned depth);


static void
check_rebuilt(const uint8_t *body, size_t consumed, const goim_packet_t *pkts,
    size_t n)
{
    int               rc;
    long              outer_len;
    size_t            i, off;
    uint8_t          *copy;
    goim_packet_t     pkt, outer;
    goim_raw_batch_t  b;

    /* re-encoded under an outer header, as the job sends a room batch */
    goim_raw_batch_init(&b);

    for (i = 0; i < n; i++) {
        fuzz_assert(goim_raw_batch_add(&b, pkts[i].op, pkts[i].body,
                                       pkts[i].body_len)
                    == 0);
    }

    fuzz_assert(b.count == n);
    fuzz_assert(b.len == consumed);

    copy = malloc(GOIM_HEADER_LEN + b.len);
    fuzz_assert(copy != NULL);
    fuzz_assert(goim_packet_write_header(copy, b.len, 1, GOIM_OP_RAW, 0)
                == GOIM_HEADER_LEN);

    if (b.len) {
        memcpy(copy + GOIM_HEADER_LEN, b.data, b.len);
    }

    outer_len = goim_packet_parse_exact(copy, GOIM_HEADER_LEN + b.len,
                                        SIZE_MAX, &outer);
    fuzz_assert(outer_len == (long) (GOIM_HEADER_LEN + b.len));
    fuzz_assert(outer.op == GOIM_OP_RAW && outer.ver == 1 && outer.seq == 0);
    fuzz_assert(outer.body_len == consumed);

    off = 0;

    for (i = 0; i < n; i++) {
        rc = goim_raw_next(outer.body, outer.body_len, &off, &pkt);
        fuzz_assert(rc == 1);
        fuzz_assert(pkt.op == pkts[i].op && pkt.ver == 1 && pkt.seq == 0);
        fuzz_assert(pkt.body_len == pkts[i].body_len);
        fuzz_assert(pkt.body_len == 0
                    || memcmp(pkt.body, pkts[i].body, pkt.body_len) == 0);
    }

    fuzz_assert(off == consumed);
    fuzz_assert(goim_raw_next(outer.body, outer.body_len, &off, &pkt) == 0);

    free(copy);

    /* copied verbatim, after a reset: the same bytes */
    goim_raw_batch_reset(&b);
    fuzz_assert(b.len == 0 && b.count == 0);

    off = 0;

    for (i = 0; i < n; i++) {
        fuzz_assert(goim_raw_batch_add_raw(&b, body + off,
                                           GOIM_HEADER_LEN
                                           + pkts[i].body_len)
                    == 0);
        off += GOIM_HEADER_LEN + pkts[i].body_len;
    }

    fuzz_assert(b.count == n && b.len == consumed);
    fuzz_assert(consumed == 0 || memcmp(b.data, body, consumed) == 0);

    goim_raw_batch_free(&b);
    fuzz_assert(b.data == NULL && b.len == 0 && b.cap == 0);
}


static void
walk(const uint8_t *body, size_t len, unsigned depth)
{
    int             rc;
    size_t          i, off, prev, n;
    uint8_t        *inner;
    goim_packet_t  *pkts;

    /* no more inner packets than 16-byte headers fit */
    pkts = malloc((len / GOIM_HEADER_LEN + 1) * sizeof(goim_packet_t));
    fuzz_assert(pkts != NULL);

    n = 0;
    off = 0;

    for ( ;; ) {
        prev = off;
        rc = goim_raw_next(body, len, &off, &pkts[n]);

        if (rc != 1) {
            fuzz_assert(off == prev);
            fuzz_assert(rc == 0 ? off >= len : rc < 0);
            fuzz_assert(goim_packet_strerror(rc) != NULL);
            break;
        }

        fuzz_assert(off > prev && off <= len);
        fuzz_assert(off - prev == GOIM_HEADER_LEN + pkts[n].body_len);
        fuzz_assert(pkts[n].body == body + prev + GOIM_HEADER_LEN);

        n++;
        fuzz_assert(n <= len / GOIM_HEADER_LEN);
    }

    check_rebuilt(body, off, pkts, n);

    /* an inner OP_RAW body, alone in its buffer like the outer one */
    for (i = 0; depth < MAX_DEPTH && i < n; i++) {
        if (pkts[i].op == GOIM_OP_RAW) {
            inner = fuzz_dup(pkts[i].body, pkts[i].body_len);
            walk(inner, pkts[i].body_len, depth + 1);
            free(inner);
        }
    }

    free(pkts);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t  *body;

    body = fuzz_dup(data, size);

    walk(body, size, 0);

    free(body);

    return 0;
}
