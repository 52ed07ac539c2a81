/*
 * WebSocket (RFC 6455) frame codec, close frames and the handshake
 * accept key, with a small SHA-1 (FIPS 180-4) and base64 of our own.
 */

#include <string.h>

#include "goim_packet.h"
#include "goim_ws.h"


#define GOIM_WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* a close payload starts with a 2-byte code */
#define GOIM_WS_MAX_REASON  (GOIM_WS_MAX_CONTROL - 2)

#define goim_rol32(x, n)  (((x) << (n)) | ((x) >> (32 - (n))))


typedef struct {
    uint32_t   h[5];
    uint64_t   bytes;
    uint8_t    block[64];
    size_t     used;
} goim_sha1_ctx_t;


static int goim_ws_close_code_valid(uint16_t code);
static void goim_sha1_init(goim_sha1_ctx_t *ctx);
static void goim_sha1_update(goim_sha1_ctx_t *ctx, const uint8_t *data,
    size_t len);
static void goim_sha1_final(goim_sha1_ctx_t *ctx, uint8_t digest[20]);
static void goim_sha1_block(uint32_t h[5], const uint8_t *p);


void
goim_ws_reader_init(goim_ws_reader_t *r, uint64_t max_msg,
    uint32_t max_fragments, unsigned require_mask)
{
    r->in_message = 0;
    r->opcode = 0;
    r->fragments = 0;
    r->msg_len = 0;
    r->max_msg = max_msg;
    r->max_fragments = max_fragments;
    r->require_mask = require_mask;
}


long
goim_ws_read_frame(goim_ws_reader_t *r, const uint8_t *p, size_t len,
    goim_ws_frame_t *f)
{
    size_t    header_len;
    uint64_t  plen;

    if (len < 2) {
        return GOIM_WS_AGAIN;
    }

    f->fin = p[0] >> 7;
    f->rsv = (p[0] >> 4) & 0x7;
    f->opcode = p[0] & 0xf;
    f->masked = p[1] >> 7;
    plen = p[1] & 0x7f;

    /* what the first two bytes show fails before the rest arrives */

    /* no extension is ever negotiated, so no RSV bit has a meaning */
    if (f->rsv) {
        return GOIM_WS_ERR_RSV;
    }

    switch (f->opcode) {

    case GOIM_WS_OP_CONTINUATION:
    case GOIM_WS_OP_TEXT:
    case GOIM_WS_OP_BINARY:
    case GOIM_WS_OP_CLOSE:
    case GOIM_WS_OP_PING:
    case GOIM_WS_OP_PONG:
        break;

    default:
        return GOIM_WS_ERR_OPCODE;
    }

    if (r->require_mask && !f->masked) {
        return GOIM_WS_ERR_UNMASKED;
    }

    if (f->opcode & 0x8) {
        if (!f->fin) {
            return GOIM_WS_ERR_CONTROL_FRAGMENTED;
        }

        if (plen > GOIM_WS_MAX_CONTROL) {
            return GOIM_WS_ERR_CONTROL_LEN;
        }
    }

    header_len = 2;

    if (plen == 126) {
        header_len += 2;

    } else if (plen == 127) {
        header_len += 8;
    }

    if (f->masked) {
        header_len += 4;
    }

    if (len < header_len) {
        return GOIM_WS_AGAIN;
    }

    if (plen == 126) {
        plen = goim_get_u16(p + 2);

        if (plen < 126) {
            return GOIM_WS_ERR_LEN_ENCODING;
        }

    } else if (plen == 127) {
        plen = ((uint64_t) goim_get_u32(p + 2) << 32) | goim_get_u32(p + 6);

        if (plen >> 63) {
            return GOIM_WS_ERR_LEN64;
        }

        if (plen <= 0xffff) {
            return GOIM_WS_ERR_LEN_ENCODING;
        }
    }

    if (f->masked) {
        memcpy(f->mask, p + header_len - 4, 4);

    } else {
        memset(f->mask, 0, 4);
    }

    f->payload_len = plen;
    f->header_len = header_len;

    /* control frames may come between fragments and leave them alone */
    if (f->opcode & 0x8) {
        return (long) header_len;
    }

    if (f->opcode == GOIM_WS_OP_CONTINUATION) {
        if (!r->in_message) {
            return GOIM_WS_ERR_NO_MESSAGE;
        }

        if (r->fragments >= r->max_fragments) {
            return GOIM_WS_ERR_FRAGMENTS;
        }

        /* msg_len never exceeds max_msg, so this cannot wrap */
        if (plen > r->max_msg - r->msg_len) {
            return GOIM_WS_ERR_TOO_BIG;
        }

        r->fragments++;
        r->msg_len += plen;

    } else {
        if (r->in_message) {
            return GOIM_WS_ERR_IN_MESSAGE;
        }

        if (plen > r->max_msg) {
            return GOIM_WS_ERR_TOO_BIG;
        }

        r->opcode = f->opcode;
        r->fragments = 1;
        r->msg_len = plen;
    }

    r->in_message = !f->fin;

    return (long) header_len;
}


uint16_t
goim_ws_error_close_code(long err)
{
    switch (err) {

    case GOIM_WS_ERR_TOO_BIG:
    case GOIM_WS_ERR_FRAGMENTS:
        return GOIM_WS_CLOSE_TOO_BIG;

    default:
        return GOIM_WS_CLOSE_PROTOCOL;
    }
}


const char *
goim_ws_strerror(long err)
{
    switch (err) {

    case GOIM_WS_AGAIN:
        return "incomplete frame header";

    case GOIM_WS_ERR_RSV:
        return "RSV bits set";

    case GOIM_WS_ERR_OPCODE:
        return "reserved opcode";

    case GOIM_WS_ERR_UNMASKED:
        return "unmasked client frame";

    case GOIM_WS_ERR_LEN64:
        return "64-bit length with the top bit set";

    case GOIM_WS_ERR_CONTROL_LEN:
        return "control frame payload over 125 bytes";

    case GOIM_WS_ERR_CONTROL_FRAGMENTED:
        return "fragmented control frame";

    case GOIM_WS_ERR_NO_MESSAGE:
        return "continuation frame without a message";

    case GOIM_WS_ERR_IN_MESSAGE:
        return "data frame inside a fragmented message";

    case GOIM_WS_ERR_TOO_BIG:
        return "message too big";

    case GOIM_WS_ERR_FRAGMENTS:
        return "too many fragments";

    case GOIM_WS_ERR_LEN_ENCODING:
        return "non-minimal length encoding";

    case GOIM_WS_ERR_CLOSE_PAYLOAD:
        return "invalid close frame payload";

    default:
        return err > 0 ? "ok" : "unknown WebSocket error";
    }
}


void
goim_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
    size_t   i;
    uint8_t  m[4];

    /* rotate the key once so the loop indexes it from p[0] */
    for (i = 0; i < 4; i++) {
        m[i] = mask[(offset + i) & 3];
    }

    for (i = 0; i < n; i++) {
        p[i] ^= m[i & 3];
    }
}


size_t
goim_ws_write_header(uint8_t *dst, unsigned opcode, uint64_t len)
{
    dst[0] = (uint8_t) (0x80 | (opcode & 0xf));

    if (len < 126) {
        dst[1] = (uint8_t) len;
        return 2;
    }

    if (len <= 0xffff) {
        dst[1] = 126;
        goim_put_u16(dst + 2, (uint16_t) len);
        return 4;
    }

    dst[1] = 127;
    goim_put_u32(dst + 2, (uint32_t) (len >> 32));
    goim_put_u32(dst + 6, (uint32_t) len);

    return 10;
}


long
goim_ws_parse_close(const uint8_t *p, size_t len, uint16_t *code)
{
    uint16_t  c;

    if (len == 0) {
        *code = GOIM_WS_CLOSE_NO_STATUS;
        return 0;
    }

    if (len < 2 || len > GOIM_WS_MAX_CONTROL) {
        return GOIM_WS_ERR_CLOSE_PAYLOAD;
    }

    c = goim_get_u16(p);

    /* RFC 6455 5.5.1: the reason is UTF-8 */
    if (!goim_ws_close_code_valid(c) || !goim_utf8_valid(p + 2, len - 2)) {
        return GOIM_WS_ERR_CLOSE_PAYLOAD;
    }

    *code = c;

    return 0;
}


/* codes a peer may send (RFC 6455 7.4); 1005 and 1006 are local only */
static int
goim_ws_close_code_valid(uint16_t code)
{
    return (code >= 1000 && code <= 1003)
           || (code >= 1007 && code <= 1011)
           || (code >= 3000 && code <= 4999);
}


int
goim_utf8_valid(const uint8_t *p, size_t len)
{
    size_t   i, k, n;
    uint8_t  c, lo, hi;

    i = 0;

    while (i < len) {
        c = p[i++];

        if (c < 0x80) {
            continue;
        }

        /* the second byte's range rules out overlongs and surrogates */
        lo = 0x80;
        hi = 0xbf;

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;

            if (c == 0xe0) {
                lo = 0xa0;

            } else if (c == 0xed) {
                hi = 0x9f;
            }

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;

            if (c == 0xf0) {
                lo = 0x90;

            } else if (c == 0xf4) {
                hi = 0x8f;
            }

        } else {
            return 0;
        }

        if (len - i < n || p[i] < lo || p[i] > hi) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }
        }

        i += n;
    }

    return 1;
}


size_t
goim_ws_close_frame(uint8_t *dst, uint16_t code, const char *reason)
{
    size_t  rlen;

    rlen = reason ? strlen(reason) : 0;

    if (rlen > GOIM_WS_MAX_REASON) {
        rlen = GOIM_WS_MAX_REASON;

        /* do not cut a UTF-8 sequence: the peer would reject the reason */
        while (rlen && ((uint8_t) reason[rlen] & 0xc0) == 0x80) {
            rlen--;
        }
    }

    dst[0] = 0x80 | GOIM_WS_OP_CLOSE;
    dst[1] = (uint8_t) (2 + rlen);
    goim_put_u16(dst + 2, code);

    if (rlen) {
        memcpy(dst + 4, reason, rlen);
    }

    return 4 + rlen;
}


void
goim_ws_accept_key(const uint8_t *key, size_t key_len, char *out)
{
    uint8_t          digest[20];
    goim_sha1_ctx_t  ctx;

    static const char  alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    goim_sha1_init(&ctx);
    goim_sha1_update(&ctx, key, key_len);
    goim_sha1_update(&ctx, (const uint8_t *) GOIM_WS_GUID,
                     sizeof(GOIM_WS_GUID) - 1);
    goim_sha1_final(&ctx, digest);

    (void) goim_base64_encode(out, digest, sizeof(digest), alphabet, 1);
}


void
goim_sha1(const uint8_t *data, size_t len, uint8_t digest[20])
{
    goim_sha1_ctx_t  ctx;

    goim_sha1_init(&ctx);
    goim_sha1_update(&ctx, data, len);
    goim_sha1_final(&ctx, digest);
}


static void
goim_sha1_init(goim_sha1_ctx_t *ctx)
{
    ctx->h[0] = 0x67452301;
    ctx->h[1] = 0xefcdab89;
    ctx->h[2] = 0x98badcfe;
    ctx->h[3] = 0x10325476;
    ctx->h[4] = 0xc3d2e1f0;
    ctx->bytes = 0;
    ctx->used = 0;
}


static void
goim_sha1_update(goim_sha1_ctx_t *ctx, const uint8_t *data, size_t len)
{
    size_t  n;

    ctx->bytes += len;

    while (len) {
        n = sizeof(ctx->block) - ctx->used;

        if (n > len) {
            n = len;
        }

        memcpy(ctx->block + ctx->used, data, n);
        ctx->used += n;
        data += n;
        len -= n;

        if (ctx->used == sizeof(ctx->block)) {
            goim_sha1_block(ctx->h, ctx->block);
            ctx->used = 0;
        }
    }
}


static void
goim_sha1_final(goim_sha1_ctx_t *ctx, uint8_t digest[20])
{
    size_t    i, pad;
    uint8_t   length[8];
    uint64_t  bits;

    static const uint8_t  padding[64] = { 0x80 };

    bits = ctx->bytes * 8;

    /* 0x80, zeros, then the 64-bit bit count ending a block */
    pad = (ctx->used < 56) ? 56 - ctx->used : 120 - ctx->used;

    goim_put_u32(length, (uint32_t) (bits >> 32));
    goim_put_u32(length + 4, (uint32_t) bits);

    goim_sha1_update(ctx, padding, pad);
    goim_sha1_update(ctx, length, sizeof(length));

    for (i = 0; i < 5; i++) {
        goim_put_u32(digest + 4 * i, ctx->h[i]);
    }
}


static void
goim_sha1_block(uint32_t h[5], const uint8_t *p)
{
    int       i;
    uint32_t  w[80], a, b, c, d, e, f, k, t;

    for (i = 0; i < 16; i++) {
        w[i] = goim_get_u32(p + 4 * i);
    }

    for (i = 16; i < 80; i++) {
        t = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
        w[i] = goim_rol32(t, 1);
    }

    a = h[0];
    b = h[1];
    c = h[2];
    d = h[3];
    e = h[4];

    for (i = 0; i < 80; i++) {

        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;

        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;

        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;

        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }

        t = goim_rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = goim_rol32(b, 30);
        b = a;
        a = t;
    }

    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}


size_t
goim_base64_encode(char *dst, const uint8_t *src, size_t len,
    const char *alphabet, int pad)
{
    char      *p;
    uint32_t   v;

    p = dst;

    while (len >= 3) {
        v = ((uint32_t) src[0] << 16) | ((uint32_t) src[1] << 8) | src[2];

        *p++ = alphabet[(v >> 18) & 0x3f];
        *p++ = alphabet[(v >> 12) & 0x3f];
        *p++ = alphabet[(v >> 6) & 0x3f];
        *p++ = alphabet[v & 0x3f];

        src += 3;
        len -= 3;
    }

    if (len) {
        v = (uint32_t) src[0] << 16;

        if (len == 2) {
            v |= (uint32_t) src[1] << 8;
        }

        *p++ = alphabet[(v >> 18) & 0x3f];
        *p++ = alphabet[(v >> 12) & 0x3f];

        if (len == 2) {
            *p++ = alphabet[(v >> 6) & 0x3f];

        } else if (pad) {
            *p++ = '=';
        }

        if (pad) {
            *p++ = '=';
        }
    }

    return (size_t) (p - dst);
}
