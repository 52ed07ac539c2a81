/*
 * goim binary packet codec (docs/PROTOCOL.md 1.1).
 */

#include <stdlib.h>
#include <string.h>

#include "goim_packet.h"


#define GOIM_RAW_BATCH_MIN_CAP  256

/* a batch becomes the body of one packet, whose packLen is an int32 */
#define GOIM_RAW_BATCH_MAX_LEN  ((size_t) INT32_MAX - GOIM_HEADER_LEN)


static void goim_packet_fill(const uint8_t *p, long pack_len,
    goim_packet_t *pkt);
static int goim_raw_batch_room(goim_raw_batch_t *b, size_t n);


long
goim_packet_need(const uint8_t *p, size_t len, size_t max_body)
{
    int16_t  header_len;
    int32_t  pack_len;

    if (len < GOIM_HEADER_LEN) {
        return GOIM_PACKET_AGAIN;
    }

    pack_len = (int32_t) goim_get_u32(p);
    header_len = (int16_t) goim_get_u16(p + 4);

    if (header_len != GOIM_HEADER_LEN) {
        return GOIM_PACKET_ERR_HEADER_LEN;
    }

    /* goim accepts a negative packLen on TCP; we never do */
    if (pack_len < GOIM_HEADER_LEN) {
        return GOIM_PACKET_ERR_SHORT;
    }

    if ((size_t) pack_len - GOIM_HEADER_LEN > max_body) {
        return GOIM_PACKET_ERR_TOO_LONG;
    }

    return pack_len;
}


long
goim_packet_parse(const uint8_t *p, size_t len, size_t max_body,
    goim_packet_t *pkt)
{
    long  rc;

    rc = goim_packet_need(p, len, max_body);

    if (rc <= 0) {
        return rc;
    }

    if ((size_t) rc > len) {
        return GOIM_PACKET_AGAIN;
    }

    goim_packet_fill(p, rc, pkt);

    return rc;
}


long
goim_packet_parse_exact(const uint8_t *p, size_t len, size_t max_body,
    goim_packet_t *pkt)
{
    long  rc;

    rc = goim_packet_need(p, len, max_body);

    if (rc < 0) {
        return rc;
    }

    /* goim reads the body past the frame's end unchecked; we refuse */
    if (rc == GOIM_PACKET_AGAIN || (size_t) rc > len) {
        return GOIM_PACKET_ERR_TRUNCATED;
    }

    goim_packet_fill(p, rc, pkt);

    return rc;
}


static void
goim_packet_fill(const uint8_t *p, long pack_len, goim_packet_t *pkt)
{
    pkt->ver = (int16_t) goim_get_u16(p + 6);
    pkt->op = (int32_t) goim_get_u32(p + 8);
    pkt->seq = (int32_t) goim_get_u32(p + 12);
    pkt->body = p + GOIM_HEADER_LEN;
    pkt->body_len = (size_t) pack_len - GOIM_HEADER_LEN;
}


size_t
goim_packet_write_header(uint8_t *dst, size_t body_len, int32_t ver,
    int32_t op, int32_t seq)
{
    goim_put_u32(dst, (uint32_t) (GOIM_HEADER_LEN + body_len));
    goim_put_u16(dst + 4, GOIM_HEADER_LEN);
    goim_put_u16(dst + 6, (uint16_t) ver);
    goim_put_u32(dst + 8, (uint32_t) op);
    goim_put_u32(dst + 12, (uint32_t) seq);

    return GOIM_HEADER_LEN;
}


size_t
goim_packet_encode(uint8_t *dst, int32_t ver, int32_t op, int32_t seq,
    const uint8_t *body, size_t body_len)
{
    goim_packet_write_header(dst, body_len, ver, op, seq);

    if (body_len) {
        memcpy(dst + GOIM_HEADER_LEN, body, body_len);
    }

    return GOIM_HEADER_LEN + body_len;
}


const char *
goim_packet_strerror(long rc)
{
    switch (rc) {

    case GOIM_PACKET_AGAIN:
        return "incomplete packet";

    case GOIM_PACKET_ERR_HEADER_LEN:
        return "headerLen is not 16";

    case GOIM_PACKET_ERR_SHORT:
        return "packLen below 16";

    case GOIM_PACKET_ERR_TOO_LONG:
        return "packet body too long";

    case GOIM_PACKET_ERR_TRUNCATED:
        return "packLen beyond the message";

    default:
        return rc > 0 ? "ok" : "unknown packet error";
    }
}


int
goim_raw_next(const uint8_t *body, size_t len, size_t *off,
    goim_packet_t *pkt)
{
    long  rc;

    if (*off >= len) {
        return 0;
    }

    rc = goim_packet_parse_exact(body + *off, len - *off, SIZE_MAX, pkt);

    if (rc < 0) {
        return (int) rc;
    }

    *off += (size_t) rc;

    return 1;
}


void
goim_raw_batch_init(goim_raw_batch_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->count = 0;
}


int
goim_raw_batch_add(goim_raw_batch_t *b, int32_t op, const uint8_t *body,
    size_t body_len)
{
    return goim_raw_batch_add_seq(b, op, 1, 0, body, body_len);
}


int
goim_raw_batch_add_seq(goim_raw_batch_t *b, int32_t op, int32_t ver,
    int32_t seq, const uint8_t *body, size_t body_len)
{
    if (body_len > GOIM_RAW_BATCH_MAX_LEN
        || goim_raw_batch_room(b, GOIM_HEADER_LEN + body_len) != 0)
    {
        return -1;
    }

    b->len += goim_packet_encode(b->data + b->len, ver, op, seq, body,
                                 body_len);
    b->count++;

    return 0;
}


int
goim_raw_batch_add_raw(goim_raw_batch_t *b, const uint8_t *pkt, size_t len)
{
    if (goim_raw_batch_room(b, len) != 0) {
        return -1;
    }

    if (len) {
        memcpy(b->data + b->len, pkt, len);
    }

    b->len += len;
    b->count++;

    return 0;
}


void
goim_raw_batch_reset(goim_raw_batch_t *b)
{
    b->len = 0;
    b->count = 0;
}


void
goim_raw_batch_free(goim_raw_batch_t *b)
{
    free(b->data);
    goim_raw_batch_init(b);
}


/* makes room for n more bytes; the total stays within an int32 packLen */
static int
goim_raw_batch_room(goim_raw_batch_t *b, size_t n)
{
    size_t    cap;
    uint8_t  *data;

    if (n > GOIM_RAW_BATCH_MAX_LEN - b->len) {
        return -1;
    }

    if (b->cap - b->len >= n) {
        return 0;
    }

    cap = b->cap * 2;

    if (cap < b->len + n) {
        cap = b->len + n;
    }

    if (cap < GOIM_RAW_BATCH_MIN_CAP) {
        cap = GOIM_RAW_BATCH_MIN_CAP;
    }

    data = realloc(b->data, cap);
    if (data == NULL) {
        return -1;
    }

    b->data = data;
    b->cap = cap;

    return 0;
}
