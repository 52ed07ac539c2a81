/*
 * WebSocket codec: the RFC 6455 accept key and frame
 * examples, length encodings, every frame and message error, piecewise
 * unmasking, close frames and close codes.
 */

#include <stdlib.h>
#include <string.h>

#include "goim_packet.h"
#include "goim_ws.h"
#include "tap.h"


#define FIN     0x80
#define MASKED  1

static const uint8_t  test_mask[4] = { 0x37, 0xfa, 0x21, 0x3d };


/*
 * A client frame header: b0 is FIN, RSV and opcode; enc forces the length
 * encoding, 0 for 7 bits (len itself), 2 for 16 bits, 8 for 64 bits.
 */
static size_t
frame(uint8_t *p, unsigned b0, int masked, int enc, uint64_t len)
{
    size_t  n;

    p[0] = (uint8_t) b0;
    p[1] = masked ? 0x80 : 0;
    n = 2;

    if (enc == 0) {
        p[1] |= (uint8_t) len;

    } else if (enc == 2) {
        p[1] |= 126;
        goim_put_u16(p + 2, (uint16_t) len);
        n += 2;

    } else {
        p[1] |= 127;
        goim_put_u32(p + 2, (uint32_t) (len >> 32));
        goim_put_u32(p + 6, (uint32_t) len);
        n += 8;
    }

    if (masked) {
        memcpy(p + n, test_mask, 4);
        n += 4;
    }

    return n;
}


static void
test_accept_key(void)
{
    size_t  i;
    char    out[GOIM_WS_ACCEPT_LEN + 1];

    static const struct {
        const char  *key;
        const char  *accept;
    } keys[] = {
        /* RFC 6455 section 1.3 */
        { "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" },
        { "x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk=" },
        { "", "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=" },
    };

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        memset(out, '#', sizeof(out));
        is_int(goim_ws_accept_key((const uint8_t *) keys[i].key,
                                  strlen(keys[i].key), out), 0,
               "accept key %zu: computed", i);

        ok(out[GOIM_WS_ACCEPT_LEN] == '#',
           "accept key %zu: exactly 28 characters written", i);
        out[GOIM_WS_ACCEPT_LEN] = '\0';
        is_str(out, keys[i].accept, "accept key for \"%s\"", keys[i].key);
    }
}


static void
test_rfc_examples(void)
{
    long              rc;
    uint8_t           buf[16];
    goim_ws_frame_t   f;
    goim_ws_reader_t  r;

    /* RFC 6455 section 5.7 */
    static const uint8_t  hello[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
    static const uint8_t  masked_hello[] = {
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
    };
    static const uint8_t  hel[] = { 0x01, 0x03, 'H', 'e', 'l' };
    static const uint8_t  lo[] = { 0x80, 0x02, 'l', 'o' };
    static const uint8_t  ping[] = { 0x89, 0x05, 'H', 'e', 'l', 'l', 'o' };
    static const uint8_t  pong[] = {
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
    };
    static const uint8_t  len256[] = { 0x82, 0x7e, 0x01, 0x00 };
    static const uint8_t  len64k[] = {
        0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00
    };

    goim_ws_reader_init(&r, 1 << 20, 100, 0);

    rc = goim_ws_read_frame(&r, hello, sizeof(hello), &f);
    ok(rc == 2 && f.fin && f.opcode == GOIM_WS_OP_TEXT && !f.masked
       && f.payload_len == 5 && f.header_len == 2,
       "5.7 unmasked text \"Hello\"");

    rc = goim_ws_read_frame(&r, masked_hello, sizeof(masked_hello), &f);
    ok(rc == 6 && f.masked && f.payload_len == 5
       && memcmp(f.mask, test_mask, 4) == 0,
       "5.7 masked text \"Hello\": header");
    memcpy(buf, masked_hello + rc, 5);
    goim_ws_unmask(buf, 5, f.mask, 0);
    is_mem(buf, "Hello", 5, "5.7 masked text \"Hello\": unmasked");

    rc = goim_ws_read_frame(&r, hel, sizeof(hel), &f);
    ok(rc == 2 && !f.fin && r.in_message && r.opcode == GOIM_WS_OP_TEXT,
       "5.7 fragmented \"Hel\": message opened");
    rc = goim_ws_read_frame(&r, lo, sizeof(lo), &f);
    ok(rc == 2 && f.fin && f.opcode == GOIM_WS_OP_CONTINUATION
       && !r.in_message && r.msg_len == 5 && r.fragments == 2
       && r.opcode == GOIM_WS_OP_TEXT,
       "5.7 fragmented \"lo\": message of 5 bytes in 2 frames");

    rc = goim_ws_read_frame(&r, ping, sizeof(ping), &f);
    ok(rc == 2 && f.opcode == GOIM_WS_OP_PING && f.payload_len == 5,
       "5.7 unmasked ping");
    rc = goim_ws_read_frame(&r, pong, sizeof(pong), &f);
    ok(rc == 6 && f.opcode == GOIM_WS_OP_PONG && f.payload_len == 5,
       "5.7 masked pong");

    rc = goim_ws_read_frame(&r, len256, sizeof(len256), &f);
    ok(rc == 4 && f.opcode == GOIM_WS_OP_BINARY && f.payload_len == 256,
       "5.7 256-byte binary: 16-bit length");
    rc = goim_ws_read_frame(&r, len64k, sizeof(len64k), &f);
    ok(rc == 10 && f.payload_len == 65536,
       "5.7 64 KiB binary: 64-bit length");

    goim_ws_reader_init(&r, 1 << 20, 100, 1);
    is_int(goim_ws_read_frame(&r, hello, sizeof(hello), &f),
           GOIM_WS_ERR_UNMASKED, "unmasked client frame rejected");
    is_int(goim_ws_read_frame(&r, masked_hello, sizeof(masked_hello), &f),
           6, "masked client frame accepted");
}


static void
test_server_headers(void)
{
    size_t            i, n;
    long              rc;
    uint8_t           buf[16];
    goim_ws_frame_t   f;
    goim_ws_reader_t  r;

    static const struct {
        uint64_t  len;
        size_t    header_len;
    } lens[] = {
        { 0, 2 }, { 1, 2 }, { 125, 2 },
        { 126, 4 }, { 4112, 4 }, { 65535, 4 },
        { 65536, 10 }, { 0xffffffffULL, 10 }, { 0x100000005ULL, 10 },
        { 0x7fffffffffffffffULL, 10 },
    };

    static const uint8_t  h125[] = { 0x82, 0x7d };
    static const uint8_t  h126[] = { 0x82, 0x7e, 0x00, 0x7e };
    static const uint8_t  h65536[] = {
        0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00
    };

    goim_ws_reader_init(&r, UINT64_MAX, 1, 0);

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        n = goim_ws_write_header(buf, GOIM_WS_OP_BINARY, lens[i].len);
        rc = goim_ws_read_frame(&r, buf, n, &f);

        ok(n == lens[i].header_len && rc == (long) n && f.fin
           && !f.masked && f.opcode == GOIM_WS_OP_BINARY
           && f.payload_len == lens[i].len,
           "server header for %llu bytes: %zu bytes, reads back",
           (unsigned long long) lens[i].len, lens[i].header_len);
    }

    n = goim_ws_write_header(buf, GOIM_WS_OP_BINARY, 125);
    ok(n == 2 && memcmp(buf, h125, 2) == 0, "7-bit length bytes");
    n = goim_ws_write_header(buf, GOIM_WS_OP_BINARY, 126);
    ok(n == 4 && memcmp(buf, h126, 4) == 0, "16-bit length bytes");
    n = goim_ws_write_header(buf, GOIM_WS_OP_BINARY, 65536);
    ok(n == 10 && memcmp(buf, h65536, 10) == 0, "64-bit length bytes");

    goim_ws_write_header(buf, GOIM_WS_OP_PONG, 3);
    is_int(buf[0], 0x8a, "pong header: FIN and opcode 10");
}


static void
test_split_header(void)
{
    int               bad;
    size_t            i, n;
    long              rc;
    uint8_t           buf[16];
    goim_ws_frame_t   f;
    goim_ws_reader_t  r;

    static const int  encs[] = { 0, 2, 8 };
    static const uint64_t  lens[] = { 100, 1000, 100000 };

    for (i = 0; i < 3; i++) {
        goim_ws_reader_init(&r, 1 << 20, 100, 1);
        n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, encs[i], lens[i]);

        bad = 0;

        for (rc = 0; rc < (long) n; rc++) {
            if (goim_ws_read_frame(&r, buf, (size_t) rc, &f)
                != GOIM_WS_AGAIN)
            {
                bad++;
            }
        }

        rc = goim_ws_read_frame(&r, buf, n, &f);

        ok(bad == 0 && rc == (long) n && f.payload_len == lens[i]
           && memcmp(f.mask, test_mask, 4) == 0,
           "masked %zu-byte header fed byte by byte", n);
    }
}


static void
test_frame_errors(void)
{
    long              rc;
    size_t            i, n;
    uint8_t           buf[16];
    unsigned          op;
    goim_ws_frame_t   f;
    goim_ws_reader_t  r;

    static const unsigned  rsv[] = { 0x40, 0x20, 0x10, 0x70 };
    static const unsigned  reserved[] = {
        3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf
    };

    goim_ws_reader_init(&r, 1 << 20, 100, 1);

    for (i = 0; i < sizeof(rsv) / sizeof(rsv[0]); i++) {
        frame(buf, FIN | rsv[i] | GOIM_WS_OP_BINARY, MASKED, 0, 10);
        is_int(goim_ws_read_frame(&r, buf, 2, &f), GOIM_WS_ERR_RSV,
               "RSV bits 0x%02x rejected from 2 bytes", rsv[i]);
    }

    for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        op = reserved[i];
        frame(buf, FIN | op, MASKED, 0, 0);
        is_int(goim_ws_read_frame(&r, buf, 6, &f), GOIM_WS_ERR_OPCODE,
               "reserved opcode 0x%x rejected", op);
    }

    frame(buf, FIN | GOIM_WS_OP_BINARY, 0, 8, 70000);
    is_int(goim_ws_read_frame(&r, buf, 2, &f), GOIM_WS_ERR_UNMASKED,
           "unmasked client frame rejected from 2 bytes");

    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 8, 1ULL << 63);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_LEN64,
           "64-bit length with the top bit set rejected");
    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 8, UINT64_MAX);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_LEN64,
           "64-bit length of all ones rejected");

    frame(buf, GOIM_WS_OP_PING, MASKED, 0, 0);
    is_int(goim_ws_read_frame(&r, buf, 6, &f),
           GOIM_WS_ERR_CONTROL_FRAGMENTED, "ping without FIN rejected");
    frame(buf, GOIM_WS_OP_CLOSE, MASKED, 0, 2);
    is_int(goim_ws_read_frame(&r, buf, 6, &f),
           GOIM_WS_ERR_CONTROL_FRAGMENTED, "close without FIN rejected");

    frame(buf, FIN | GOIM_WS_OP_PING, MASKED, 2, 126);
    is_int(goim_ws_read_frame(&r, buf, 2, &f), GOIM_WS_ERR_CONTROL_LEN,
           "ping of 126 bytes rejected from 2 bytes");
    n = frame(buf, FIN | GOIM_WS_OP_CLOSE, MASKED, 8, 70000);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_CONTROL_LEN,
           "close with a 64-bit length rejected");
    n = frame(buf, FIN | GOIM_WS_OP_PONG, MASKED, 0, 125);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n,
           "pong of 125 bytes accepted");

    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 2, 125);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_LEN_ENCODING,
           "125 in a 16-bit length rejected");
    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 2, 0);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_LEN_ENCODING,
           "0 in a 16-bit length rejected");
    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 8, 65535);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_LEN_ENCODING,
           "65535 in a 64-bit length rejected");
    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 8, 5);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_LEN_ENCODING,
           "5 in a 64-bit length rejected");
    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 2, 126);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n,
           "126 in a 16-bit length accepted");
    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 8, 65536);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n,
           "65536 in a 64-bit length accepted");

    rc = goim_ws_read_frame(&r, buf, 1, &f);
    is_int(rc, GOIM_WS_AGAIN, "one byte is AGAIN");
}


static void
test_messages(void)
{
    size_t            n;
    uint8_t           buf[16];
    goim_ws_frame_t   f;
    goim_ws_reader_t  r;

    goim_ws_reader_init(&r, 100, 3, 1);

    n = frame(buf, FIN | GOIM_WS_OP_CONTINUATION, MASKED, 0, 1);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_NO_MESSAGE,
           "continuation without a first frame rejected");
    n = frame(buf, GOIM_WS_OP_CONTINUATION, MASKED, 0, 1);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_NO_MESSAGE,
           "non-final continuation without a first frame rejected");

    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 0, 100);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n,
           "message of max_msg bytes accepted");
    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 0, 101);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_TOO_BIG,
           "single frame over max_msg rejected");

    /* fragments adding up past the limit */
    n = frame(buf, GOIM_WS_OP_BINARY, MASKED, 0, 60);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n,
           "first fragment of 60 bytes");
    n = frame(buf, FIN | GOIM_WS_OP_CONTINUATION, MASKED, 0, 41);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_TOO_BIG,
           "fragments of 60 + 41 bytes rejected");
    n = frame(buf, FIN | GOIM_WS_OP_CONTINUATION, MASKED, 0, 40);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n,
           "fragments of 60 + 40 bytes accepted");
    ok(!r.in_message && r.msg_len == 100 && r.fragments == 2
       && r.opcode == GOIM_WS_OP_BINARY, "message closed by FIN");

    /* a control frame between fragments, then a data frame mid message */
    n = frame(buf, GOIM_WS_OP_TEXT, MASKED, 0, 1);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n,
           "text message opened");
    n = frame(buf, FIN | GOIM_WS_OP_PING, MASKED, 0, 4);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n,
           "ping between fragments accepted");
    ok(r.in_message && r.msg_len == 1 && r.fragments == 1,
       "ping leaves the open message alone");
    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 0, 1);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_IN_MESSAGE,
           "new data frame inside a message rejected");

    /* too many fragments: max 3 frames per message */
    goim_ws_reader_init(&r, 100, 3, 1);
    n = frame(buf, GOIM_WS_OP_BINARY, MASKED, 0, 1);
    goim_ws_read_frame(&r, buf, n, &f);
    n = frame(buf, GOIM_WS_OP_CONTINUATION, MASKED, 0, 1);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n, "fragment 2 of 3");
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n, "fragment 3 of 3");
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_FRAGMENTS,
           "fragment 4 rejected");
    n = frame(buf, FIN | GOIM_WS_OP_CONTINUATION, MASKED, 0, 0);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_FRAGMENTS,
           "even an empty final fragment 4 rejected");

    /* lengths near 2^63 must not wrap the message total */
    goim_ws_reader_init(&r, UINT64_MAX, 100, 1);
    n = frame(buf, GOIM_WS_OP_BINARY, MASKED, 8, INT64_MAX);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n,
           "no limit: 2^63-1 byte first fragment");
    n = frame(buf, GOIM_WS_OP_CONTINUATION, MASKED, 8, INT64_MAX);
    is_int(goim_ws_read_frame(&r, buf, n, &f), (long) n,
           "no limit: second 2^63-1 byte fragment");
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_TOO_BIG,
           "no limit: third would wrap 64 bits, rejected");

    goim_ws_reader_init(&r, 4112, 100, 1);
    n = frame(buf, FIN | GOIM_WS_OP_BINARY, MASKED, 8, INT64_MAX);
    is_int(goim_ws_read_frame(&r, buf, n, &f), GOIM_WS_ERR_TOO_BIG,
           "2^63-1 byte frame over a 4112 limit rejected");
}


static void
test_close_codes(void)
{
    size_t  i;

    static const struct {
        long      err;
        uint16_t  code;
    } map[] = {
        { GOIM_WS_ERR_RSV, 1002 },
        { GOIM_WS_ERR_OPCODE, 1002 },
        { GOIM_WS_ERR_UNMASKED, 1002 },
        { GOIM_WS_ERR_LEN64, 1002 },
        { GOIM_WS_ERR_CONTROL_LEN, 1002 },
        { GOIM_WS_ERR_CONTROL_FRAGMENTED, 1002 },
        { GOIM_WS_ERR_NO_MESSAGE, 1002 },
        { GOIM_WS_ERR_IN_MESSAGE, 1002 },
        { GOIM_WS_ERR_TOO_BIG, 1009 },
        { GOIM_WS_ERR_FRAGMENTS, 1009 },
        { GOIM_WS_ERR_LEN_ENCODING, 1002 },
        { GOIM_WS_ERR_CLOSE_PAYLOAD, 1002 },
    };

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        is_int(goim_ws_error_close_code(map[i].err), map[i].code,
               "error %ld (%s) closes with %u", map[i].err,
               goim_ws_strerror(map[i].err), (unsigned) map[i].code);
    }
}


static void
test_unmask(void)
{
    int      bad;
    size_t   i, off, step;
    uint8_t  plain[257], masked[257], work[257];

    for (i = 0; i < sizeof(plain); i++) {
        plain[i] = (uint8_t) (i * 7 + 3);
        masked[i] = plain[i] ^ test_mask[i & 3];
    }

    memcpy(work, masked, sizeof(work));
    goim_ws_unmask(work, sizeof(work), test_mask, 0);
    is_mem(work, plain, sizeof(plain), "unmask in one piece");

    goim_ws_unmask(work, 0, test_mask, 0);
    is_mem(work, plain, sizeof(plain), "unmask of 0 bytes changes nothing");

    /* every chunk size from 1 to 13: pieces start at any offset mod 4 */
    bad = 0;

    for (step = 1; step <= 13; step++) {
        memcpy(work, masked, sizeof(work));

        for (off = 0; off < sizeof(work); off += step) {
            goim_ws_unmask(work + off,
                           step < sizeof(work) - off
                           ? step : sizeof(work) - off,
                           test_mask, off);
        }

        if (memcmp(work, plain, sizeof(plain)) != 0) {
            bad++;
        }
    }

    is_int(bad, 0, "piecewise unmask with offsets, chunks of 1..13");

    /* offsets past 4 GiB keep the phase */
    memcpy(work, masked + 3, 10);
    goim_ws_unmask(work, 10, test_mask, 0x100000003ULL);
    is_mem(work, plain + 3, 10, "unmask at a 64-bit offset");
}


static void
test_close(void)
{
    size_t    i, n;
    long      rc;
    uint8_t   buf[GOIM_WS_MAX_CONTROL + 2];
    uint8_t   payload[GOIM_WS_MAX_CONTROL + 1];
    uint16_t  code;
    char      reason[200];

    static const uint8_t  bye[] = { 0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e' };
    static const uint8_t  bare[] = { 0x88, 0x02, 0x03, 0xf1 };

    static const uint16_t  valid[] = {
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
        3000, 3999, 4000, 4999
    };

    static const uint16_t  invalid[] = {
        0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000,
        65535
    };

    static const char  *bad_utf8[] = {
        "\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xe2\x82",
        "\xf4\x90\x80\x80", "ok\x80", "\xf0\x9d\x84"
    };

    n = goim_ws_close_frame(buf, 1000, "bye");
    ok(n == sizeof(bye) && memcmp(buf, bye, n) == 0,
       "close frame 1000 \"bye\" bytes");
    n = goim_ws_close_frame(buf, 1009, NULL);
    ok(n == sizeof(bare) && memcmp(buf, bare, n) == 0,
       "close frame 1009 without a reason");

    memset(reason, 'x', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    n = goim_ws_close_frame(buf, 1001, reason);
    ok(n == 2 + GOIM_WS_MAX_CONTROL && buf[1] == GOIM_WS_MAX_CONTROL,
       "long reason truncated to a 125-byte payload");

    /* a 3-byte character straddling the cut is dropped whole */
    memset(reason, 'x', 122);
    strcpy(reason + 122, "\xe2\x82\xac tail");
    n = goim_ws_close_frame(buf, 1001, reason);
    ok(n == 2 + 2 + 122 && buf[1] == 124,
       "truncation keeps UTF-8 characters whole");
    is_int(goim_ws_parse_close(buf + 2, n - 2, &code), 0,
           "truncated reason still parses");

    n = goim_ws_close_frame(buf, 4321, "\xc3\xa9\xe2\x82\xac");
    rc = goim_ws_parse_close(buf + 2, n - 2, &code);
    ok(rc == 0 && code == 4321, "built close frame parses back");

    code = 0;
    rc = goim_ws_parse_close(NULL, 0, &code);
    ok(rc == 0 && code == GOIM_WS_CLOSE_NO_STATUS,
       "empty close payload is 1005");

    is_int(goim_ws_parse_close((const uint8_t *) "\x03", 1, &code),
           GOIM_WS_ERR_CLOSE_PAYLOAD, "close payload of 1 byte rejected");

    memset(payload, 'x', sizeof(payload));
    goim_put_u16(payload, 1000);
    is_int(goim_ws_parse_close(payload, GOIM_WS_MAX_CONTROL, &code), 0,
           "close payload of 125 bytes accepted");
    is_int(goim_ws_parse_close(payload, GOIM_WS_MAX_CONTROL + 1, &code),
           GOIM_WS_ERR_CLOSE_PAYLOAD, "close payload of 126 bytes rejected");

    for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        goim_put_u16(payload, valid[i]);
        code = 0;
        rc = goim_ws_parse_close(payload, 2, &code);
        ok(rc == 0 && code == valid[i], "close code %u valid",
           (unsigned) valid[i]);
    }

    for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        goim_put_u16(payload, invalid[i]);
        is_int(goim_ws_parse_close(payload, 2, &code),
               GOIM_WS_ERR_CLOSE_PAYLOAD, "close code %u invalid",
               (unsigned) invalid[i]);
    }

    goim_put_u16(payload, 1000);

    for (i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
        n = strlen(bad_utf8[i]);
        memcpy(payload + 2, bad_utf8[i], n);
        is_int(goim_ws_parse_close(payload, 2 + n, &code),
               GOIM_WS_ERR_CLOSE_PAYLOAD, "invalid UTF-8 reason %zu", i);
    }

    n = strlen("caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e");
    memcpy(payload + 2, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e", n);
    is_int(goim_ws_parse_close(payload, 2 + n, &code), 0,
           "UTF-8 reason with 2, 3 and 4-byte characters accepted");
}


int
main(void)
{
    test_accept_key();
    test_rfc_examples();
    test_server_headers();
    test_split_header();
    test_frame_errors();
    test_messages();
    test_close_codes();
    test_unmask();
    test_close();

    return done_testing();
}
