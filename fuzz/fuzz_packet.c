/*
 * goim packet decoder: the input after its first byte is a TCP stream
 * fed to goim_packet_parse() in pieces, as a reader would receive it, so
 * that headers and bodies arrive split at every offset.  The first byte
 * chooses the pieces and the body limit:
 *
 *   bits 7-6  0: pieces of (bits 4-0) + 1 bytes, 1: pseudo-random pieces
 *             of 1..32 bytes seeded with bits 4-0, 2: the whole stream at
 *             once, 3: one byte at a time
 *   bit 5     body limit 16 instead of GOIM_DEFAULT_MAX_BODY
 *
 * Every result is checked against a parse of the whole rest of the
 * stream, against goim_packet_need() and goim_packet_parse_exact(), and a
 * parsed packet must re-encode to the very bytes it came from.
 */

#include "fuzz.h"
#include "goim_packet.h"


static void
check_packet(const uint8_t *p, long rc, size_t max_body,
    const goim_packet_t *pkt)
{
    uint8_t        *copy, *enc;
    goim_packet_t   again;

    fuzz_assert(rc >= GOIM_HEADER_LEN);
    fuzz_assert(pkt->body == p + GOIM_HEADER_LEN);
    fuzz_assert(pkt->body_len == (size_t) rc - GOIM_HEADER_LEN);
    fuzz_assert(pkt->body_len <= max_body);
    fuzz_assert(pkt->ver >= INT16_MIN && pkt->ver <= INT16_MAX);

    /* the packet alone, as a WebSocket message: the same packet */
    copy = fuzz_dup(p, rc);
    fuzz_assert(goim_packet_parse_exact(copy, rc, max_body, &again) == rc);
    fuzz_assert(again.ver == pkt->ver && again.op == pkt->op
                && again.seq == pkt->seq && again.body_len == pkt->body_len);

    /* one byte short: truncated as a message, incomplete as a stream */
    fuzz_assert(goim_packet_parse_exact(copy, rc - 1, max_body, &again)
                == GOIM_PACKET_ERR_TRUNCATED);
    fuzz_assert(goim_packet_parse(copy, rc - 1, max_body, &again)
                == GOIM_PACKET_AGAIN);

    /* re-encoding gives back the same bytes */
    enc = malloc(rc);
    fuzz_assert(enc != NULL);
    fuzz_assert(goim_packet_encode(enc, pkt->ver, pkt->op, pkt->seq,
                                   pkt->body, pkt->body_len)
                == (size_t) rc);
    fuzz_assert(memcmp(enc, p, rc) == 0);

    free(enc);
    free(copy);
}


/* rc for p[0..avail) is consistent with the parse of p[0..total) */
static void
check_prefix(const uint8_t *p, size_t avail, size_t total, size_t max_body,
    long rc)
{
    long           full, exact, need;
    goim_packet_t  pkt;

    full = goim_packet_parse(p, total, max_body, &pkt);
    exact = goim_packet_parse_exact(p, total, max_body, &pkt);
    need = goim_packet_need(p, avail, max_body);

    fuzz_assert(goim_packet_strerror(rc) != NULL);

    if (full == GOIM_PACKET_AGAIN) {
        fuzz_assert(exact == GOIM_PACKET_ERR_TRUNCATED);

    } else {
        fuzz_assert(exact == full);
    }

    if (avail < GOIM_HEADER_LEN) {
        fuzz_assert(rc == GOIM_PACKET_AGAIN);
        fuzz_assert(need == GOIM_PACKET_AGAIN);
        return;
    }

    /* with the header there, need() knows the packet or its error */
    fuzz_assert(need != GOIM_PACKET_AGAIN);

    if (need < 0) {
        fuzz_assert(rc == need && full == need);
        return;
    }

    fuzz_assert(need >= GOIM_HEADER_LEN);
    fuzz_assert((size_t) need - GOIM_HEADER_LEN <= max_body);

    if ((size_t) need > avail) {
        fuzz_assert(rc == GOIM_PACKET_AGAIN);
        fuzz_assert(full == GOIM_PACKET_AGAIN || full == need);

    } else {
        fuzz_assert(rc == need && full == need);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long           rc;
    size_t         max_body, pos, fed, avail, step;
    uint8_t       *copy;
    unsigned       mode, arg;
    uint32_t       rng;
    goim_packet_t  pkt;

    if (size == 0) {
        return 0;
    }

    mode = data[0] >> 6;
    arg = data[0] & 0x1f;
    max_body = (data[0] & 0x20) ? 16 : GOIM_DEFAULT_MAX_BODY;
    rng = arg * 2654435761u + 1;

    data++;
    size--;

    pos = 0;
    fed = 0;

    while (fed < size) {

        switch (mode) {

        case 0:
            step = arg + 1;
            break;

        case 1:
            rng = rng * 1103515245u + 12345u;
            step = ((rng >> 16) & 0x1f) + 1;
            break;

        case 2:
            step = size;
            break;

        default:
            step = 1;
        }

        fed = (step > size - fed) ? size : fed + step;

        /* the reader parses all the complete packets it has */
        while (pos < fed) {
            avail = fed - pos;
            copy = fuzz_dup(data + pos, avail);

            rc = goim_packet_parse(copy, avail, max_body, &pkt);

            check_prefix(data + pos, avail, size - pos, max_body, rc);

            if (rc > 0) {
                fuzz_assert((size_t) rc <= avail);
                check_packet(copy, rc, max_body, &pkt);
            }

            free(copy);

            if (rc < 0) {
                /* the connection is closed */
                return 0;
            }

            if (rc == GOIM_PACKET_AGAIN) {
                break;
            }

            pos += rc;
        }
    }

    return 0;
}
