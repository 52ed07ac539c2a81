/*
 * WebSocket (RFC 6455) frame codec, close frames and the handshake
 * accept key (SHA-1 and base64 from libcrypto).
 */

#include <string.h>

#include <openssl/evp.h>

#include "goim_packet.h"
#include "goim_ws.h"


#define GOIM_WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* a close payload starts with a 2-byte code */
#define GOIM_WS_MAX_REASON  (GOIM_WS_MAX_CONTROL - 2)


static int goim_ws_close_code_valid(uint16_t code);


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


int
goim_ws_accept_key(const uint8_t *key, size_t key_len, char *out)
{
    int            ok;
    unsigned int   n;
    EVP_MD_CTX    *ctx;
    unsigned char  digest[EVP_MAX_MD_SIZE];
    unsigned char  b64[GOIM_WS_ACCEPT_LEN + 1];

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL)
         && EVP_DigestUpdate(ctx, key, key_len)
         && EVP_DigestUpdate(ctx, GOIM_WS_GUID, sizeof(GOIM_WS_GUID) - 1)
         && EVP_DigestFinal_ex(ctx, digest, &n)
         && n == 20;

    EVP_MD_CTX_free(ctx);

    if (!ok) {
        return -1;
    }

    /* 28 characters and a NUL, which the caller does not get */
    (void) EVP_EncodeBlock(b64, digest, 20);
    memcpy(out, b64, GOIM_WS_ACCEPT_LEN);

    return 0;
}
