/*
 * goim packet codec: docs/PROTOCOL.md 1.13 byte dumps, round trips, split
 * headers, every header error, WebSocket framing mismatch, OP_RAW.
 */

#include <stdlib.h>
#include <string.h>

#include "goim_packet.h"
#include "tap.h"


#define MAX_BODY  GOIM_DEFAULT_MAX_BODY


static void
put_header(uint8_t *p, uint32_t pack_len, uint16_t header_len)
{
    goim_put_u32(p, pack_len);
    goim_put_u16(p + 4, header_len);
    goim_put_u16(p + 6, 1);
    goim_put_u32(p + 8, GOIM_OP_SEND_MSG);
    goim_put_u32(p + 12, 7);
}


static void
test_doc_dumps(void)
{
    long           rc;
    uint8_t        buf[128];
    size_t         n;
    goim_packet_t  pkt;

    static const uint8_t  heartbeat[] = {
        0x00, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01
    };

    static const uint8_t  heartbeat_reply[] = {
        0x00, 0x00, 0x00, 0x14, 0x00, 0x10, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x2a
    };

    static const char  auth[] = "{\"mid\":123,\"room_id\":\"live://1000\","
                                "\"platform\":\"web\",\"accepts\":[1000]}";

    rc = goim_packet_parse(heartbeat, sizeof(heartbeat), MAX_BODY, &pkt);
    is_int(rc, 16, "1.13 heartbeat: parsed, 16 bytes");
    is_int(pkt.ver, 1, "1.13 heartbeat: ver 1");
    is_int(pkt.op, GOIM_OP_HEARTBEAT, "1.13 heartbeat: op 2");
    is_int(pkt.seq, 1, "1.13 heartbeat: seq 1");
    is_int(pkt.body_len, 0, "1.13 heartbeat: no body");

    n = goim_packet_encode(buf, 1, GOIM_OP_HEARTBEAT, 1, NULL, 0);
    is_int(n, sizeof(heartbeat), "1.13 heartbeat: encoded length");
    is_mem(buf, heartbeat, sizeof(heartbeat), "1.13 heartbeat: encoded bytes");

    n = goim_packet_encode(buf, 1, GOIM_OP_HEARTBEAT_REPLY, 1,
                           heartbeat_reply + 16, 4);
    is_int(n, 20, "1.13 heartbeat reply: packLen 20");
    is_mem(buf, heartbeat_reply, sizeof(heartbeat_reply),
           "1.13 heartbeat reply: encoded bytes");

    rc = goim_packet_parse(heartbeat_reply, sizeof(heartbeat_reply),
                           MAX_BODY, &pkt);
    is_int(rc, 20, "1.13 heartbeat reply: parsed");
    is_int(pkt.op, GOIM_OP_HEARTBEAT_REPLY, "1.13 heartbeat reply: op 3");
    is_int(pkt.body_len == 4 ? goim_get_u32(pkt.body) : 0, 42,
           "1.13 heartbeat reply: body is online count 42");

    n = goim_packet_encode(buf, 1, GOIM_OP_AUTH, 1, (const uint8_t *) auth,
                           sizeof(auth) - 1);
    is_int(n, 16 + sizeof(auth) - 1, "1.13 auth: length 16 + N");
    is_int(goim_get_u32(buf), 16 + sizeof(auth) - 1, "1.13 auth: packLen");
    is_int(goim_get_u16(buf + 4), 16, "1.13 auth: headerLen");
    is_int(goim_get_u16(buf + 6), 1, "1.13 auth: ver");
    is_int(goim_get_u32(buf + 8), 7, "1.13 auth: op");
    is_int(goim_get_u32(buf + 12), 1, "1.13 auth: seq");
    is_mem(buf + 16, auth, sizeof(auth) - 1, "1.13 auth: JSON body");

    rc = goim_packet_parse(buf, n, MAX_BODY, &pkt);
    is_int(rc, (long) n, "1.13 auth: parsed");
    ok(pkt.body == buf + 16 && pkt.body_len == sizeof(auth) - 1,
       "1.13 auth: body points into the buffer");
}


static void
test_doc_room_batch(void)
{
    int               rc;
    size_t            off;
    uint8_t           out[68];
    goim_packet_t     pkt;
    goim_raw_batch_t  b;

    static const uint8_t  expected[] = {
        0x00, 0x00, 0x00, 0x44, 0x00, 0x10, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00,

        0x00, 0x00, 0x00, 0x1a, 0x00, 0x10, 0x00, 0x01,
        0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00,
        '{', '"', 't', 'e', 's', 't', '"', ':', '1', '}',

        0x00, 0x00, 0x00, 0x1a, 0x00, 0x10, 0x00, 0x01,
        0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00,
        '{', '"', 't', 'e', 's', 't', '"', ':', '1', '}'
    };

    goim_raw_batch_init(&b);

    is_int(goim_raw_batch_add(&b, 1000, (const uint8_t *) "{\"test\":1}",
                              10), 0, "batch: add first message");
    is_int(goim_raw_batch_add(&b, 1000, (const uint8_t *) "{\"test\":1}",
                              10), 0, "batch: add second message");

    is_int(b.count, 2, "1.13 room batch: 2 inner packets");
    is_int(b.len, 52, "1.13 room batch: 52 bytes of inner packets");

    /* the outer OP_RAW header in front, as the comet sends the batch */
    is_int(goim_packet_write_header(out, b.len, 1, GOIM_OP_RAW, 0), 16,
           "1.13 room batch: outer header");
    memcpy(out + 16, b.data, b.len < 52 ? b.len : 52);
    ok(b.len + 16 == sizeof(expected)
       && memcmp(out, expected, sizeof(expected)) == 0,
       "1.13 room batch: bytes as documented");

    rc = (int) goim_packet_parse(out, sizeof(out), SIZE_MAX, &pkt);
    is_int(rc, 68, "1.13 room batch: outer packet parses");
    is_int(pkt.op, GOIM_OP_RAW, "1.13 room batch: outer op 9");
    is_int(pkt.seq, 0, "1.13 room batch: outer seq 0");

    /* walk from offset 16, as the JS client does */
    off = 0;
    is_int(goim_raw_next(out + 16, sizeof(out) - 16, &off, &pkt), 1,
           "1.13 room batch: first inner packet");
    ok(pkt.op == 1000 && pkt.ver == 1 && pkt.seq == 0
       && pkt.body_len == 10 && memcmp(pkt.body, "{\"test\":1}", 10) == 0,
       "1.13 room batch: first inner op 1000, body {\"test\":1}");
    is_int(off, 26, "1.13 room batch: offset advanced by packLen 26");

    is_int(goim_raw_next(out + 16, sizeof(out) - 16, &off, &pkt), 1,
           "1.13 room batch: second inner packet");
    ok(pkt.op == 1000 && pkt.body_len == 10,
       "1.13 room batch: second inner op 1000");
    is_int(goim_raw_next(out + 16, sizeof(out) - 16, &off, &pkt), 0,
           "1.13 room batch: end of batch");
    is_int(goim_raw_next(out + 16, sizeof(out) - 16, &off, &pkt), 0,
           "1.13 room batch: end stays the end");

    goim_raw_batch_free(&b);
    ok(b.data == NULL && b.len == 0 && b.cap == 0 && b.count == 0,
       "batch: free resets the batch");
}


static void
test_round_trips(void)
{
    int            i, good;
    long           rc;
    size_t         n;
    uint8_t       *buf, *body;
    goim_packet_t  pkt;

    static const struct {
        int32_t  ver;
        int32_t  op;
        int32_t  seq;
        size_t   body_len;
    } cases[] = {
        { 1, GOIM_OP_HEARTBEAT, 0, 0 },
        { 1, GOIM_OP_AUTH, 1, 1 },
        { 102, 1000, INT32_MAX, 17 },
        { -1, -5, INT32_MIN, 255 },
        { INT16_MAX, INT32_MAX, -1, 4095 },
        { INT16_MIN, INT32_MIN, 12345, GOIM_DEFAULT_MAX_BODY },
    };

    buf = malloc(16 + GOIM_DEFAULT_MAX_BODY);
    body = malloc(GOIM_DEFAULT_MAX_BODY);

    for (i = 0; i < GOIM_DEFAULT_MAX_BODY; i++) {
        body[i] = (uint8_t) (i * 31 + 7);
    }

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        n = goim_packet_encode(buf, cases[i].ver, cases[i].op, cases[i].seq,
                               body, cases[i].body_len);
        rc = goim_packet_parse(buf, n, MAX_BODY, &pkt);

        good = rc == (long) n
               && n == 16 + cases[i].body_len
               && pkt.ver == cases[i].ver
               && pkt.op == cases[i].op
               && pkt.seq == cases[i].seq
               && pkt.body == buf + 16
               && pkt.body_len == cases[i].body_len
               && memcmp(pkt.body, body, pkt.body_len) == 0;

        ok(good, "round trip: ver %d op %d seq %d body %zu",
           (int) cases[i].ver, (int) cases[i].op, (int) cases[i].seq,
           cases[i].body_len);
    }

    is_int(goim_packet_write_header(buf, 4, 1, 3, 9), 16,
           "write_header returns 16");
    is_int(goim_packet_need(buf, 16, MAX_BODY), 20,
           "need: packLen from a header alone");

    free(buf);
    free(body);
}


static void
test_split_header(void)
{
    int            bad, parsed, ops[3];
    long           rc;
    size_t         i, n, total, have;
    uint8_t        stream[256], buf[256];
    goim_packet_t  pkt;

    n = goim_packet_encode(stream, 1, GOIM_OP_AUTH, 1,
                           (const uint8_t *) "{\"mid\":1}", 9);

    /* every prefix of one packet, header split at every byte */
    bad = 0;

    for (i = 0; i < n; i++) {
        if (goim_packet_parse(stream, i, MAX_BODY, &pkt)
            != GOIM_PACKET_AGAIN)
        {
            bad++;
        }
    }

    is_int(bad, 0, "split: every prefix of a packet is AGAIN");

    bad = 0;

    for (i = 0; i < GOIM_HEADER_LEN; i++) {
        if (goim_packet_need(stream, i, MAX_BODY) != GOIM_PACKET_AGAIN) {
            bad++;
        }
    }

    is_int(bad, 0, "split: need is AGAIN until the header is complete");
    is_int(goim_packet_need(stream, GOIM_HEADER_LEN, MAX_BODY), (long) n,
           "split: need knows the length once 16 bytes are there");
    is_int(goim_packet_parse(stream, n, MAX_BODY, &pkt), (long) n,
           "split: complete packet parses");

    /* three packets fed to a reader one byte per read */
    total = n;
    total += goim_packet_encode(stream + total, 1, GOIM_OP_HEARTBEAT, 2,
                                NULL, 0);
    total += goim_packet_encode(stream + total, 1, GOIM_OP_CHANGE_ROOM, 3,
                                (const uint8_t *) "live://1000", 11);

    have = 0;
    parsed = 0;
    bad = 0;

    for (i = 0; i < total; i++) {
        buf[have++] = stream[i];

        rc = goim_packet_parse(buf, have, MAX_BODY, &pkt);

        if (rc < 0) {
            bad++;
            break;
        }

        if (rc > 0) {
            if (parsed < 3) {
                ops[parsed] = pkt.op;
            }

            parsed++;
            have -= (size_t) rc;
            memmove(buf, buf + rc, have);
        }
    }

    ok(bad == 0 && parsed == 3 && have == 0,
       "split: byte-by-byte stream yields 3 packets");
    ok(parsed == 3 && ops[0] == GOIM_OP_AUTH && ops[1] == GOIM_OP_HEARTBEAT
       && ops[2] == GOIM_OP_CHANGE_ROOM,
       "split: packets in order");
}


static void
test_header_errors(void)
{
    size_t         i;
    uint8_t        buf[64];
    goim_packet_t  pkt;

    static const uint16_t  header_lens[] = {
        0, 1, 15, 17, 32, 0x7fff, 0x8000, 0xfff0, 0xffff
    };

    static const struct {
        uint32_t  pack_len;
        long      rc;
    } pack_lens[] = {
        { 0, GOIM_PACKET_ERR_SHORT },
        { 1, GOIM_PACKET_ERR_SHORT },
        { 15, GOIM_PACKET_ERR_SHORT },
        { 0xffffffff, GOIM_PACKET_ERR_SHORT },           /* -1 */
        { 0xfffffff0, GOIM_PACKET_ERR_SHORT },           /* -16 */
        { 0x80000000, GOIM_PACKET_ERR_SHORT },           /* INT32_MIN */
        { 16 + GOIM_DEFAULT_MAX_BODY + 1, GOIM_PACKET_ERR_TOO_LONG },
        { 0x10000, GOIM_PACKET_ERR_TOO_LONG },
        { 0x7fffffff, GOIM_PACKET_ERR_TOO_LONG },        /* INT32_MAX */
    };

    for (i = 0; i < sizeof(header_lens) / sizeof(header_lens[0]); i++) {
        put_header(buf, 100, header_lens[i]);

        /* only the 16 header bytes: the error must not wait for a body */
        is_int(goim_packet_parse(buf, 16, MAX_BODY, &pkt),
               GOIM_PACKET_ERR_HEADER_LEN,
               "headerLen %u rejected", (unsigned) header_lens[i]);
    }

    put_header(buf, 100, 17);
    is_int(goim_packet_need(buf, 16, MAX_BODY), GOIM_PACKET_ERR_HEADER_LEN,
           "need: headerLen 17 rejected");
    is_int(goim_packet_parse(buf, 15, MAX_BODY, &pkt), GOIM_PACKET_AGAIN,
           "bad headerLen not judged from 15 bytes");

    for (i = 0; i < sizeof(pack_lens) / sizeof(pack_lens[0]); i++) {
        put_header(buf, pack_lens[i].pack_len, 16);

        is_int(goim_packet_parse(buf, 16, MAX_BODY, &pkt), pack_lens[i].rc,
               "packLen %d rejected (%s)", (int32_t) pack_lens[i].pack_len,
               goim_packet_strerror(pack_lens[i].rc));
        is_int(goim_packet_need(buf, 16, MAX_BODY), pack_lens[i].rc,
               "need: packLen %d rejected",
               (int32_t) pack_lens[i].pack_len);
    }

    put_header(buf, 16 + GOIM_DEFAULT_MAX_BODY, 16);
    is_int(goim_packet_parse(buf, 16, MAX_BODY, &pkt), GOIM_PACKET_AGAIN,
           "packLen 4112 (the limit) accepted, waits for the body");

    put_header(buf, 16, 16);
    is_int(goim_packet_parse(buf, 16, 0, &pkt), 16,
           "max_body 0: empty body accepted");
    put_header(buf, 17, 16);
    is_int(goim_packet_parse(buf, 17, 0, &pkt), GOIM_PACKET_ERR_TOO_LONG,
           "max_body 0: one body byte rejected");

    put_header(buf, 0x7fffffff, 16);
    is_int(goim_packet_need(buf, 16, SIZE_MAX), 0x7fffffff,
           "no limit: packLen INT32_MAX is announced");
    is_int(goim_packet_parse(buf, sizeof(buf), SIZE_MAX, &pkt),
           GOIM_PACKET_AGAIN, "no limit: INT32_MAX waits for the body");
}


static void
test_ws_message(void)
{
    long           rc;
    size_t         i;
    uint8_t        msg[64];
    goim_packet_t  pkt;

    /* a 20-byte WebSocket message whose packet claims 30 bytes */
    memset(msg, 0xaa, sizeof(msg));
    put_header(msg, 30, 16);

    is_int(goim_packet_parse(msg, 20, MAX_BODY, &pkt), GOIM_PACKET_AGAIN,
           "stream parse of a short packet is AGAIN");
    is_int(goim_packet_parse_exact(msg, 20, MAX_BODY, &pkt),
           GOIM_PACKET_ERR_TRUNCATED,
           "packLen beyond the WebSocket message is TRUNCATED");
    is_int(goim_packet_parse_exact(msg, 29, MAX_BODY, &pkt),
           GOIM_PACKET_ERR_TRUNCATED, "one byte short is TRUNCATED");
    is_int(goim_packet_parse_exact(msg, 30, MAX_BODY, &pkt), 30,
           "exact fit parses");

    rc = goim_packet_parse_exact(msg, sizeof(msg), MAX_BODY, &pkt);
    ok(rc == 30 && pkt.body_len == 14,
       "bytes after packLen are ignored");

    for (i = 0; i < GOIM_HEADER_LEN; i++) {
        if (goim_packet_parse_exact(msg, i, MAX_BODY, &pkt)
            != GOIM_PACKET_ERR_TRUNCATED)
        {
            break;
        }
    }

    is_int(i, GOIM_HEADER_LEN, "messages under 16 bytes are TRUNCATED");

    put_header(msg, 30, 8);
    is_int(goim_packet_parse_exact(msg, 20, MAX_BODY, &pkt),
           GOIM_PACKET_ERR_HEADER_LEN, "exact: headerLen error first");

    put_header(msg, 0xffffffff, 16);
    is_int(goim_packet_parse_exact(msg, sizeof(msg), MAX_BODY, &pkt),
           GOIM_PACKET_ERR_SHORT, "exact: negative packLen");

    put_header(msg, 5000, 16);
    is_int(goim_packet_parse_exact(msg, sizeof(msg), MAX_BODY, &pkt),
           GOIM_PACKET_ERR_TOO_LONG, "exact: over the limit");
}


static void
test_raw_walk(void)
{
    int               rc, n;
    size_t            off, len;
    uint8_t          *big;
    uint8_t           buf[256];
    goim_packet_t     pkt;
    goim_raw_batch_t  b;

    /* one good inner packet, then one announcing 26 bytes with 20 there */
    len = goim_packet_encode(buf, 1, 1000, 0, (const uint8_t *) "abcd", 4);
    len += goim_packet_encode(buf + len, 1, 1001, 0,
                              (const uint8_t *) "0123456789", 10);

    off = 0;
    rc = goim_raw_next(buf, len - 6, &off, &pkt);
    ok(rc == 1 && pkt.op == 1000 && off == 20, "raw: first inner packet");
    is_int(goim_raw_next(buf, len - 6, &off, &pkt),
           GOIM_PACKET_ERR_TRUNCATED, "raw: truncated inner body");

    off = 20;
    is_int(goim_raw_next(buf, 20 + 5, &off, &pkt),
           GOIM_PACKET_ERR_TRUNCATED, "raw: truncated inner header");

    off = 0;
    is_int(goim_raw_next(buf, 0, &off, &pkt), 0, "raw: empty body ends");

    put_header(buf, 26, 12);
    off = 0;
    is_int(goim_raw_next(buf, len, &off, &pkt), GOIM_PACKET_ERR_HEADER_LEN,
           "raw: inner headerLen 12");

    put_header(buf, 0xfffffff0, 16);
    off = 0;
    is_int(goim_raw_next(buf, len, &off, &pkt), GOIM_PACKET_ERR_SHORT,
           "raw: inner negative packLen");

    put_header(buf, 0, 16);
    off = 0;
    is_int(goim_raw_next(buf, len, &off, &pkt), GOIM_PACKET_ERR_SHORT,
           "raw: inner packLen 0 cannot loop");

    /* server-built inner packets have no body limit */
    big = malloc(16 + 10000);
    memset(big, 'x', 16 + 10000);
    len = goim_packet_write_header(big, 10000, 1, 1000, 0) + 10000;
    off = 0;
    rc = goim_raw_next(big, len, &off, &pkt);
    ok(rc == 1 && pkt.body_len == 10000 && off == len,
       "raw: 10000-byte inner body walks");
    free(big);

    /* a batch without the outer header, growing, mixed add/add_raw */
    goim_raw_batch_init(&b);

    for (n = 0; n < 1000; n++) {
        if (n % 2) {
            len = goim_packet_encode(buf, 1, 2000 + n, 0, buf + 200, n % 40);
            rc = goim_raw_batch_add_raw(&b, buf, len);

        } else {
            rc = goim_raw_batch_add(&b, 2000 + n, buf, n % 40);
        }

        if (rc != 0) {
            break;
        }
    }

    is_int(b.count, 1000, "batch: 1000 packets appended");

    off = 0;

    for (n = 0; goim_raw_next(b.data, b.len, &off, &pkt) == 1; n++) {
        if (pkt.op != 2000 + n || pkt.body_len != (size_t) n % 40
            || pkt.ver != 1 || pkt.seq != 0)
        {
            break;
        }
    }

    ok(n == 1000 && off == b.len, "batch: walk finds all 1000 in order");

    goim_raw_batch_reset(&b);
    ok(b.len == 0 && b.count == 0 && b.data != NULL, "batch: reset keeps"
       " the buffer");

    is_int(goim_raw_batch_add(&b, 1000, NULL, 0), 0,
           "batch: add an empty body");
    is_int(b.len, 16, "batch: empty body packet is 16 bytes");

    is_int(goim_raw_batch_add(&b, 1000, buf, (size_t) INT32_MAX), -1,
           "batch: body over int32 packLen refused");
    is_int(goim_raw_batch_add(&b, 1000, buf, SIZE_MAX), -1,
           "batch: SIZE_MAX body refused without overflow");
    is_int(goim_raw_batch_add_raw(&b, buf, SIZE_MAX - 8), -1,
           "batch: huge raw append refused");
    ok(b.len == 16 && b.count == 1, "batch: refused appends change nothing");

    goim_raw_batch_free(&b);
}


static void
test_strerror(void)
{
    long  rc;
    int   good;

    good = 1;

    for (rc = GOIM_PACKET_ERR_TRUNCATED; rc <= GOIM_PACKET_AGAIN; rc++) {
        if (goim_packet_strerror(rc) == NULL) {
            good = 0;
        }
    }

    ok(good, "strerror: every result has a message");
    ok(strcmp(goim_packet_strerror(GOIM_PACKET_ERR_HEADER_LEN),
              goim_packet_strerror(GOIM_PACKET_ERR_SHORT)) != 0,
       "strerror: distinct messages");
}


int
main(void)
{
    test_doc_dumps();
    test_doc_room_batch();
    test_round_trips();
    test_split_header();
    test_header_errors();
    test_ws_message();
    test_raw_walk();
    test_strerror();

    return done_testing();
}
