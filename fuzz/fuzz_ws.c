/*
 * WebSocket frame decoder: the input after its first byte is a stream
 * of client frames read with one goim_ws_reader_t, as the comet reads a
 * connection.  The first byte sets the reader's limits:
 *
 *   bit 0     frames need not be masked (a server-to-client reader)
 *   bits 2-1  max_msg: 125, 4112, 65536 or UINT64_MAX
 *   bits 4-3  max_fragments: 0, 1, 4 or UINT32_MAX
 *
 * Each frame header is also read from every shorter prefix, which must
 * be incomplete or fail the same way and leave the reader unchanged.  A
 * frame whose payload is all there is unmasked into a copy, at once and
 * piecewise; a close payload goes through goim_ws_parse_close() and a
 * valid one through goim_ws_close_frame() and back.  The input also
 * serves as a Sec-WebSocket-Key for goim_ws_accept_key().
 */

#include <openssl/sha.h>

#include "fuzz.h"
#include "goim_packet.h"
#include "goim_ws.h"


static const uint64_t  max_msgs[4] = { 125, 4112, 65536, UINT64_MAX };
static const uint32_t  max_fragments[4] = { 0, 1, 4, UINT32_MAX };


static int
reader_eq(const goim_ws_reader_t *a, const goim_ws_reader_t *b)
{
    return a->in_message == b->in_message && a->opcode == b->opcode
           && a->fragments == b->fragments && a->msg_len == b->msg_len
           && a->max_msg == b->max_msg
           && a->max_fragments == b->max_fragments
           && a->require_mask == b->require_mask;
}


/* the header of a frame, read from each shorter prefix */
static void
check_prefixes(const goim_ws_reader_t *r, const uint8_t *p, size_t avail,
    long full)
{
    long              rc;
    size_t            n, end;
    uint8_t          *copy;
    goim_ws_frame_t   f;
    goim_ws_reader_t  tmp;

    end = (full > 0) ? (size_t) full : avail;

    if (end > GOIM_WS_MAX_HEADER) {
        end = GOIM_WS_MAX_HEADER;
    }

    for (n = 0; n < end && n < avail; n++) {
        tmp = *r;
        copy = fuzz_dup(p, n);

        rc = goim_ws_read_frame(&tmp, copy, n, &f);

        free(copy);

        if (n < 2) {
            fuzz_assert(rc == GOIM_WS_AGAIN);
        }

        fuzz_assert(rc == GOIM_WS_AGAIN || (full < 0 && rc == full));
        fuzz_assert(reader_eq(&tmp, r));
    }
}


/* our own server frame header for the same opcode and length reads back */
static void
check_server_header(const goim_ws_frame_t *f)
{
    long              rc;
    size_t            n;
    uint8_t           hdr[GOIM_WS_MAX_HEADER];
    goim_ws_frame_t   back;
    goim_ws_reader_t  r;

    if (f->opcode == GOIM_WS_OP_CONTINUATION) {
        return;
    }

    goim_ws_reader_init(&r, UINT64_MAX, UINT32_MAX, 0);

    n = goim_ws_write_header(hdr, f->opcode, f->payload_len);
    fuzz_assert(n == 2 || n == 4 || n == 10);

    rc = goim_ws_read_frame(&r, hdr, n, &back);
    fuzz_assert(rc == (long) n);
    fuzz_assert(back.fin && !back.masked && back.opcode == f->opcode);
    fuzz_assert(back.payload_len == f->payload_len);
}


static void
check_close(const uint8_t *payload, size_t len)
{
    long              rc;
    size_t            n, rlen;
    char             *reason;
    uint8_t           frame[4 + GOIM_WS_MAX_CONTROL];
    uint16_t          code, back;
    goim_ws_frame_t   f;
    goim_ws_reader_t  r;

    code = 0;
    rc = goim_ws_parse_close(payload, len, &code);

    if (rc != 0) {
        fuzz_assert(rc == GOIM_WS_ERR_CLOSE_PAYLOAD);
        fuzz_assert(len != 0);
        return;
    }

    if (len == 0) {
        fuzz_assert(code == GOIM_WS_CLOSE_NO_STATUS);
        return;
    }

    fuzz_assert(len >= 2 && len <= GOIM_WS_MAX_CONTROL);
    fuzz_assert(code == goim_get_u16(payload));
    fuzz_assert(code != GOIM_WS_CLOSE_NO_STATUS && code != 1006);

    /* echo it: the reason up to a NUL, as a C string */
    rlen = strnlen((const char *) payload + 2, len - 2);
    reason = malloc(rlen + 1);
    fuzz_assert(reason != NULL);
    memcpy(reason, payload + 2, rlen);
    reason[rlen] = '\0';

    n = goim_ws_close_frame(frame, code, reason);
    fuzz_assert(n == 4 + rlen);

    goim_ws_reader_init(&r, 0, 0, 0);
    rc = goim_ws_read_frame(&r, frame, n, &f);
    fuzz_assert(rc == 2 && f.opcode == GOIM_WS_OP_CLOSE);
    fuzz_assert(f.payload_len == n - 2);
    fuzz_assert(goim_ws_parse_close(frame + 2, n - 2, &back) == 0);
    fuzz_assert(back == code);
    fuzz_assert(memcmp(frame + 4, reason, rlen) == 0);

    free(reason);
}


static void
check_payload(const goim_ws_frame_t *f, const uint8_t *p, size_t len)
{
    size_t    i, half;
    uint8_t  *whole, *pieces;

    whole = fuzz_dup(p, len);
    pieces = fuzz_dup(p, len);

    if (f->masked) {
        goim_ws_unmask(whole, len, f->mask, 0);

        for (i = 0; i < len; i++) {
            fuzz_assert(whole[i] == (p[i] ^ f->mask[i & 3]));
        }

        /* in two pieces split anywhere, as reads may split a payload */
        half = len ? p[0] % (len + 1) : 0;
        goim_ws_unmask(pieces, half, f->mask, 0);
        goim_ws_unmask(pieces + half, len - half, f->mask, half);
        fuzz_assert(len == 0 || memcmp(whole, pieces, len) == 0);
    }

    if (f->opcode == GOIM_WS_OP_CLOSE) {
        check_close(whole, len);
    }

    free(pieces);
    free(whole);
}


/*
 * The handshake accept key for the input as a Sec-WebSocket-Key: SHA-1
 * fed in two updates must match libcrypto's one-shot SHA1() of the key
 * and GUID joined, base64 encoded here.
 */
static void
check_accept_key(const uint8_t *key, size_t len)
{
    size_t    i;
    char      out[GOIM_WS_ACCEPT_LEN], ref[GOIM_WS_ACCEPT_LEN];
    uint8_t  *joined, digest[20];
    uint32_t  v;

    static const char  guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    static const char  b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    fuzz_assert(goim_ws_accept_key(key, len, out) == 0);

    joined = malloc(len + sizeof(guid) - 1);
    fuzz_assert(joined != NULL);
    memcpy(joined, key, len);
    memcpy(joined + len, guid, sizeof(guid) - 1);
    SHA1(joined, len + sizeof(guid) - 1, digest);
    free(joined);

    /* 20 bytes: six full groups, then two bytes and one '=' */
    for (i = 0; i < 7; i++) {
        v = (uint32_t) digest[3 * i] << 16 | (uint32_t) digest[3 * i + 1] << 8
            | (i < 6 ? digest[3 * i + 2] : 0);
        ref[4 * i] = b64[v >> 18];
        ref[4 * i + 1] = b64[(v >> 12) & 0x3f];
        ref[4 * i + 2] = b64[(v >> 6) & 0x3f];
        ref[4 * i + 3] = (i < 6) ? b64[v & 0x3f] : '=';
    }

    fuzz_assert(memcmp(out, ref, GOIM_WS_ACCEPT_LEN) == 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long              rc;
    size_t            pos, avail;
    uint8_t          *copy;
    goim_ws_frame_t   f;
    goim_ws_reader_t  r, before;

    if (size == 0) {
        return 0;
    }

    goim_ws_reader_init(&r, max_msgs[(data[0] >> 1) & 3],
                        max_fragments[(data[0] >> 3) & 3],
                        !(data[0] & 1));

    data++;
    size--;

    check_accept_key(data, size);

    for (pos = 0; pos < size; pos += (size_t) rc + f.payload_len) {
        avail = size - pos;
        before = r;
        copy = fuzz_dup(data + pos, avail);

        rc = goim_ws_read_frame(&r, copy, avail, &f);

        free(copy);

        fuzz_assert(goim_ws_strerror(rc) != NULL);
        check_prefixes(&before, data + pos, avail, rc);

        if (rc == GOIM_WS_AGAIN) {
            fuzz_assert(avail < GOIM_WS_MAX_HEADER);
            fuzz_assert(reader_eq(&r, &before));
            break;
        }

        if (rc < 0) {
            fuzz_assert(rc >= GOIM_WS_ERR_CLOSE_PAYLOAD);
            fuzz_assert(goim_ws_error_close_code(rc)
                            == GOIM_WS_CLOSE_PROTOCOL
                        || goim_ws_error_close_code(rc)
                            == GOIM_WS_CLOSE_TOO_BIG);
            fuzz_assert(reader_eq(&r, &before));
            break;
        }

        fuzz_assert(rc >= 2 && rc <= GOIM_WS_MAX_HEADER);
        fuzz_assert((size_t) rc == f.header_len && f.header_len <= avail);
        fuzz_assert(f.rsv == 0 && f.fin <= 1 && f.masked <= 1);
        fuzz_assert(f.masked || !r.require_mask);
        fuzz_assert(f.header_len == 2 + (f.masked ? 4 : 0)
                                    + (f.payload_len < 126 ? 0
                                       : f.payload_len <= 0xffff ? 2 : 8));
        fuzz_assert(f.payload_len >> 63 == 0);

        if (f.opcode & 0x8) {
            fuzz_assert(f.fin && f.payload_len <= GOIM_WS_MAX_CONTROL);
            fuzz_assert(f.opcode <= GOIM_WS_OP_PONG);
            fuzz_assert(reader_eq(&r, &before));

        } else {
            fuzz_assert(f.opcode <= GOIM_WS_OP_BINARY);
            fuzz_assert(r.in_message == !f.fin);
            fuzz_assert(r.msg_len <= r.max_msg);
            fuzz_assert((r.fragments >= 1
                         && r.fragments <= r.max_fragments)
                        || (f.opcode != GOIM_WS_OP_CONTINUATION
                            && r.fragments == 1));
            fuzz_assert(r.opcode == GOIM_WS_OP_TEXT
                        || r.opcode == GOIM_WS_OP_BINARY);
        }

        check_server_header(&f);

        if (f.payload_len > avail - f.header_len) {
            /* the payload has not all arrived */
            break;
        }

        check_payload(&f, data + pos + rc, f.payload_len);
    }

    return 0;
}
