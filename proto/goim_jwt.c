/*
 * HS256 JWT verification for goim's auth tokens.  The order of the
 * checks is the security argument: size and shape first, then the JOSE
 * header (alg is settled before any key is used), then the HMAC compared
 * in constant time, and only then is the payload, now authenticated,
 * decoded and parsed.
 */

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <yajl/yajl_parse.h>

#include "goim_jwt.h"
#include "goim_token.h"
#include "goim_util.h"


#define GOIM_JWT_MAX_MEMBERS   16     /* of the JOSE header */
#define GOIM_JWT_MAX_DEPTH     8      /* nesting within the JOSE header */
#define GOIM_JWT_ALG_SHOWN     16     /* characters of a refused alg shown */

/* the decoded payload of a token of the greatest length */
#define GOIM_JWT_MAX_PAYLOAD   (GOIM_JWT_MAX_LEN / 4 * 3)

#define GOIM_JWT_ERR_HEADER    "malformed token: header: "


/* the JOSE header members that matter */
typedef enum {
    GOIM_JWT_HDR_OTHER = 0,
    GOIM_JWT_HDR_ALG,
    GOIM_JWT_HDR_TYP,
    GOIM_JWT_HDR_CRIT
} goim_jwt_hdr_e;

typedef struct {
    char            *err;
    size_t           err_size;
    unsigned         depth;          /* 1 inside the header object */
    goim_jwt_hdr_e   member;         /* the current top-level member */
    unsigned         has_alg;
    unsigned         alg_hs256;
    char             alg[GOIM_JWT_ALG_SHOWN + 4];  /* printable, for err */

    /* the names seen so far, for duplicates */
    unsigned         n_names;
    size_t           names_used;
    uint16_t         name_off[GOIM_JWT_MAX_MEMBERS];
    uint16_t         name_len[GOIM_JWT_MAX_MEMBERS];
    unsigned char    names[GOIM_JWT_MAX_HEADER];
} goim_jwt_header_ctx_t;


/*
 * The claims read by goim_token_parse(), whose names match ignoring ASCII
 * case, and nbf.  exp and nbf are the registered time claims.
 */
static const char  *goim_jwt_claims[] = {
    "mid", "key", "room_id", "platform", "accepts", "exp", "nbf",
    "room_ids", "allowed_rooms"
};

#define GOIM_JWT_NCLAIMS                                                     \
    (sizeof(goim_jwt_claims) / sizeof(goim_jwt_claims[0]))
#define GOIM_JWT_CLAIM_EXP     5
#define GOIM_JWT_CLAIM_NBF     6

typedef struct {
    char       *err;
    size_t      err_size;
    unsigned    depth;
    int         claim;          /* index in goim_jwt_claims or -1 */
    unsigned    exact;          /* the name was the claim's, exactly */
    unsigned    seen;           /* a bit per goim_jwt_claims entry */
    unsigned    has_exp;
    unsigned    has_nbf;
    int64_t     exp;
    int64_t     nbf;
} goim_jwt_claims_ctx_t;


static const char  goim_jwt_hs256_header[] =
    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";


static int __attribute__((format(printf, 3, 4)))
goim_jwt_error(char *err, size_t err_size, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    goim_token_verror(err, err_size, fmt, ap);
    va_end(ap);

    return -1;
}


/* Records the reason; returns 0, which makes yajl cancel the parse. */
static int __attribute__((format(printf, 3, 4)))
goim_jwt_cancel(char *err, size_t err_size, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    goim_token_verror(err, err_size, fmt, ap);
    va_end(ap);

    return 0;
}


/* --- base64url ----------------------------------------------------------- */

/*
 * libcrypto's base64 turned into base64url: '+' and '/' become '-' and
 * '_', the padding goes.  In pieces of 48 bytes, so that dst needs no room
 * for padding or a NUL.
 */
size_t
goim_jwt_b64url_encode(char *dst, const uint8_t *src, size_t len)
{
    int            i, m, out;
    size_t         n, total;
    unsigned char  b64[64 + 1];

    total = 0;

    while (len) {
        n = len < 48 ? len : 48;
        m = EVP_EncodeBlock(b64, src, (int) n);

        for (i = 0, out = m; i < m; i++) {
            switch (b64[i]) {
            case '+':
                dst[total + i] = '-';
                break;
            case '/':
                dst[total + i] = '_';
                break;
            case '=':
                out--;
                break;
            default:
                dst[total + i] = (char) b64[i];
            }
        }

        total += (size_t) out;
        src += n;
        len -= n;
    }

    return total;
}


static int
goim_jwt_b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '-') {
        return 62;
    }

    if (c == '_') {
        return 63;
    }

    return -1;
}


int
goim_jwt_b64url_decode(uint8_t *dst, const char *src, size_t len,
    size_t *dst_len)
{
    int       v;
    size_t    i, n, rest;
    uint32_t  acc;

    rest = len % 4;

    /* one character holds 6 bits, less than a byte */
    if (rest == 1) {
        return -1;
    }

    n = 0;
    acc = 0;

    for (i = 0; i < len; i++) {
        v = goim_jwt_b64url_value((unsigned char) src[i]);
        if (v < 0) {
            return -1;
        }

        acc = (acc << 6) | (uint32_t) v;

        if (i % 4 == 3) {
            dst[n++] = (uint8_t) (acc >> 16);
            dst[n++] = (uint8_t) (acc >> 8);
            dst[n++] = (uint8_t) acc;
            acc = 0;
        }
    }

    /*
     * The bits past the last byte must be zero: otherwise several texts
     * would decode to one value, and a signature could be varied.
     */
    if (rest == 2) {
        if (acc & 0x0f) {
            return -1;
        }

        dst[n++] = (uint8_t) (acc >> 4);

    } else if (rest == 3) {
        if (acc & 0x03) {
            return -1;
        }

        dst[n++] = (uint8_t) (acc >> 10);
        dst[n++] = (uint8_t) (acc >> 2);
    }

    *dst_len = n;

    return 0;
}


/* --- the JOSE header ----------------------------------------------------- */

static int
goim_jwt_hdr_not_object(goim_jwt_header_ctx_t *ctx)
{
    return goim_jwt_cancel(ctx->err, ctx->err_size,
                           GOIM_JWT_ERR_HEADER "expected a JSON object");
}


/* A value other than a string where alg or typ is. */
static int
goim_jwt_hdr_scalar(goim_jwt_header_ctx_t *ctx)
{
    if (ctx->depth == 0) {
        return goim_jwt_hdr_not_object(ctx);
    }

    if (ctx->depth == 1) {
        if (ctx->member == GOIM_JWT_HDR_ALG) {
            return goim_jwt_cancel(ctx->err, ctx->err_size,
                                   GOIM_JWT_ERR_HEADER "alg must be a string");
        }

        if (ctx->member == GOIM_JWT_HDR_TYP) {
            return goim_jwt_cancel(ctx->err, ctx->err_size,
                                   GOIM_JWT_ERR_HEADER "typ must be \"JWT\"");
        }
    }

    return 1;
}


static int
goim_jwt_hdr_null(void *data)
{
    return goim_jwt_hdr_scalar(data);
}


static int
goim_jwt_hdr_boolean(void *data, int value)
{
    (void) value;

    return goim_jwt_hdr_scalar(data);
}


static int
goim_jwt_hdr_number(void *data, const char *s, size_t len)
{
    (void) s;
    (void) len;

    return goim_jwt_hdr_scalar(data);
}


static int
goim_jwt_hdr_string(void *data, const unsigned char *s, size_t len)
{
    goim_jwt_header_ctx_t  *ctx = data;
    size_t                  i, n;

    if (ctx->depth != 1 || ctx->member == GOIM_JWT_HDR_OTHER) {
        return goim_jwt_hdr_scalar(ctx);
    }

    if (ctx->member == GOIM_JWT_HDR_TYP) {
        /* a media type, so case-insensitive (RFC 7515 4.1.9) */
        if (!goim_token_name_eq(s, len, "jwt")) {
            return goim_jwt_cancel(ctx->err, ctx->err_size,
                                   GOIM_JWT_ERR_HEADER "typ must be \"JWT\"");
        }

        return 1;
    }

    /* alg: case-sensitive (RFC 7515 4.1.1) */
    ctx->has_alg = 1;
    ctx->alg_hs256 = (len == 5 && memcmp(s, "HS256", 5) == 0);

    /* kept for the error message: printable ASCII only, cut short */
    n = len < GOIM_JWT_ALG_SHOWN ? len : GOIM_JWT_ALG_SHOWN;

    for (i = 0; i < n; i++) {
        ctx->alg[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char) s[i] : '?';
    }

    if (len > n) {
        memcpy(&ctx->alg[n], "...", 3);
        n += 3;
    }

    ctx->alg[n] = '\0';

    return 1;
}


static int
goim_jwt_hdr_start(goim_jwt_header_ctx_t *ctx, int array)
{
    if (ctx->depth == 0 && array) {
        return goim_jwt_hdr_not_object(ctx);
    }

    if (ctx->depth == 1 && ctx->member != GOIM_JWT_HDR_OTHER) {
        return goim_jwt_hdr_scalar(ctx);
    }

    if (ctx->depth == GOIM_JWT_MAX_DEPTH) {
        return goim_jwt_cancel(ctx->err, ctx->err_size,
                               GOIM_JWT_ERR_HEADER "nested deeper than %d",
                               GOIM_JWT_MAX_DEPTH);
    }

    ctx->depth++;

    return 1;
}


static int
goim_jwt_hdr_start_map(void *data)
{
    return goim_jwt_hdr_start(data, 0);
}


static int
goim_jwt_hdr_start_array(void *data)
{
    return goim_jwt_hdr_start(data, 1);
}


static int
goim_jwt_hdr_end(void *data)
{
    goim_jwt_header_ctx_t  *ctx = data;

    ctx->depth--;

    return 1;
}


static int
goim_jwt_hdr_map_key(void *data, const unsigned char *s, size_t len)
{
    goim_jwt_header_ctx_t  *ctx = data;
    unsigned                i;

    if (ctx->depth != 1) {
        return 1;
    }

    /*
     * RFC 7515 4: names must be unique, else parsers that keep the first
     * and parsers that keep the last one disagree on the token.
     */
    for (i = 0; i < ctx->n_names; i++) {
        if (ctx->name_len[i] == len
            && memcmp(&ctx->names[ctx->name_off[i]], s, len) == 0)
        {
            return goim_jwt_cancel(ctx->err, ctx->err_size,
                                   GOIM_JWT_ERR_HEADER
                                   "duplicate member \"%.*s\"",
                                   (int) (len > 16 ? 16 : len), s);
        }
    }

    if (ctx->n_names == GOIM_JWT_MAX_MEMBERS
        || len > sizeof(ctx->names) - ctx->names_used)
    {
        return goim_jwt_cancel(ctx->err, ctx->err_size,
                               GOIM_JWT_ERR_HEADER "more than %d members",
                               GOIM_JWT_MAX_MEMBERS);
    }

    memcpy(&ctx->names[ctx->names_used], s, len);
    ctx->name_off[ctx->n_names] = (uint16_t) ctx->names_used;
    ctx->name_len[ctx->n_names] = (uint16_t) len;
    ctx->names_used += len;
    ctx->n_names++;

    ctx->member = GOIM_JWT_HDR_OTHER;

    if (len == 3 && memcmp(s, "alg", 3) == 0) {
        ctx->member = GOIM_JWT_HDR_ALG;

    } else if (len == 3 && memcmp(s, "typ", 3) == 0) {
        ctx->member = GOIM_JWT_HDR_TYP;

    } else if (len == 4 && memcmp(s, "crit", 4) == 0) {
        /* RFC 7515 4.1.11: we understand no extension, so must refuse */
        return goim_jwt_cancel(ctx->err, ctx->err_size,
                               GOIM_JWT_ERR_HEADER "crit not supported");
    }

    return 1;
}


static const yajl_callbacks  goim_jwt_hdr_callbacks = {
    goim_jwt_hdr_null,
    goim_jwt_hdr_boolean,
    NULL,                       /* numbers come through yajl_number */
    NULL,
    goim_jwt_hdr_number,
    goim_jwt_hdr_string,
    goim_jwt_hdr_start_map,
    goim_jwt_hdr_map_key,
    goim_jwt_hdr_end,
    goim_jwt_hdr_start_array,
    goim_jwt_hdr_end
};


static int
goim_jwt_check_header(const uint8_t *json, size_t len, char *err,
    size_t err_size)
{
    goim_jwt_header_ctx_t  ctx;

    memset(&ctx, 0, sizeof(goim_jwt_header_ctx_t));
    ctx.err = err;
    ctx.err_size = err_size;

    if (goim_token_json(&goim_jwt_hdr_callbacks, &ctx, json, len,
                        GOIM_JWT_ERR_HEADER, 0, err, err_size)
        != 0)
    {
        return -1;
    }

    if (!ctx.has_alg) {
        return goim_jwt_error(err, err_size, GOIM_JWT_ERR_HEADER "alg missing");
    }

    if (!ctx.alg_hs256) {
        return goim_jwt_error(err, err_size, "algorithm not allowed: %s",
                              ctx.alg);
    }

    return 0;
}


/* --- exp, nbf and duplicate claims in the payload ------------------------ */

/* The current member is exactly "exp" or "nbf". */
static int
goim_jwt_claims_at_time(goim_jwt_claims_ctx_t *ctx)
{
    return ctx->depth == 1 && ctx->exact
           && (ctx->claim == GOIM_JWT_CLAIM_EXP
               || ctx->claim == GOIM_JWT_CLAIM_NBF);
}


static int
goim_jwt_claims_not_int(goim_jwt_claims_ctx_t *ctx)
{
    if (!goim_jwt_claims_at_time(ctx)) {
        return 1;
    }

    return goim_jwt_cancel(ctx->err, ctx->err_size,
                           "invalid claims: %s: expected integer",
                           goim_jwt_claims[ctx->claim]);
}


static int
goim_jwt_claims_null(void *data)
{
    /* null counts as absent, as goim_token_parse has it */
    (void) data;

    return 1;
}


static int
goim_jwt_claims_boolean(void *data, int value)
{
    (void) value;

    return goim_jwt_claims_not_int(data);
}


static int
goim_jwt_claims_string(void *data, const unsigned char *s, size_t len)
{
    (void) s;
    (void) len;

    return goim_jwt_claims_not_int(data);
}


static int
goim_jwt_claims_number(void *data, const char *s, size_t len)
{
    goim_jwt_claims_ctx_t  *ctx = data;
    int64_t                 v;

    if (!goim_jwt_claims_at_time(ctx)) {
        return 1;
    }

    if (goim_parse_int64(s, len, &v) != 0) {
        return goim_jwt_claims_not_int(ctx);
    }

    if (ctx->claim == GOIM_JWT_CLAIM_EXP) {
        ctx->exp = v;
        ctx->has_exp = 1;

    } else {
        ctx->nbf = v;
        ctx->has_nbf = 1;
    }

    return 1;
}


static int
goim_jwt_claims_start(void *data)
{
    goim_jwt_claims_ctx_t  *ctx = data;

    if (goim_jwt_claims_at_time(ctx)) {
        return goim_jwt_claims_not_int(ctx);
    }

    ctx->depth++;

    return 1;
}


static int
goim_jwt_claims_end(void *data)
{
    goim_jwt_claims_ctx_t  *ctx = data;

    ctx->depth--;

    return 1;
}


static int
goim_jwt_claims_map_key(void *data, const unsigned char *s, size_t len)
{
    goim_jwt_claims_ctx_t  *ctx = data;
    size_t                  i;

    if (ctx->depth != 1) {
        return 1;
    }

    ctx->claim = -1;
    ctx->exact = 0;

    for (i = 0; i < GOIM_JWT_NCLAIMS; i++) {
        if (goim_token_name_eq(s, len, goim_jwt_claims[i])) {
            break;
        }
    }

    if (i == GOIM_JWT_NCLAIMS) {
        return 1;
    }

    /*
     * goim_token_parse keeps the last of repeated or differently cased
     * names; the issuer's library may have meant the first.
     */
    if (ctx->seen & (1u << i)) {
        return goim_jwt_cancel(ctx->err, ctx->err_size,
                               "invalid claims: duplicate"
                               " claim \"%s\"", goim_jwt_claims[i]);
    }

    ctx->seen |= 1u << i;
    ctx->claim = (int) i;
    ctx->exact = (memcmp(s, goim_jwt_claims[i], len) == 0);

    return 1;
}


static const yajl_callbacks  goim_jwt_claims_callbacks = {
    goim_jwt_claims_null,
    goim_jwt_claims_boolean,
    NULL,
    NULL,
    goim_jwt_claims_number,
    goim_jwt_claims_string,
    goim_jwt_claims_start,
    goim_jwt_claims_map_key,
    goim_jwt_claims_end,
    goim_jwt_claims_start,
    goim_jwt_claims_end
};


/* --- verification -------------------------------------------------------- */

static int
goim_jwt_hmac(const uint8_t *secret, size_t secret_len, const uint8_t *data,
    size_t len, uint8_t mac[GOIM_JWT_SIG_LEN])
{
    unsigned int  mac_len;
    uint8_t       md[EVP_MAX_MD_SIZE];

    mac_len = 0;

    if (HMAC(EVP_sha256(), secret, (int) secret_len, data, len, md,
             &mac_len)
        == NULL
        || mac_len != GOIM_JWT_SIG_LEN)
    {
        OPENSSL_cleanse(md, sizeof(md));
        return -1;
    }

    memcpy(mac, md, GOIM_JWT_SIG_LEN);
    OPENSSL_cleanse(md, sizeof(md));

    return 0;
}


int
goim_jwt_verify(const uint8_t *token, size_t len,
    const uint8_t *secret, size_t secret_len, int64_t now,
    int64_t leeway, goim_token_t *tok, char *err, size_t err_size)
{
    int                     rc, differ;
    char                    perr[128];
    size_t                  i, n_dots, dot[2], h_len, p_len, s_len, n;
    uint8_t                 mac[GOIM_JWT_SIG_LEN], sig[GOIM_JWT_SIG_LEN];
    uint8_t                 header[GOIM_JWT_MAX_HEADER];
    uint8_t                 payload[GOIM_JWT_MAX_PAYLOAD];
    const char             *h, *p, *s;
    goim_jwt_claims_ctx_t   claims;

    memset(tok, 0, sizeof(goim_token_t));

    if (err != NULL && err_size > 0) {
        err[0] = '\0';
    }

    if (secret == NULL || secret_len == 0) {
        return goim_jwt_error(err, err_size, "no secret");
    }

    if (secret_len > INT_MAX) {
        return goim_jwt_error(err, err_size, "secret too long");
    }

    if (token == NULL || len == 0) {
        return goim_jwt_error(err, err_size, "malformed token: empty");
    }

    if (len > GOIM_JWT_MAX_LEN) {
        return goim_jwt_error(err, err_size,
                              "malformed token: longer than %d bytes",
                              GOIM_JWT_MAX_LEN);
    }

    n_dots = 0;

    for (i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (n_dots < 2) {
                dot[n_dots] = i;
            }

            n_dots++;
        }
    }

    if (n_dots != 2) {
        /* 5 parts would be a JWE: encrypted, not signed */
        return goim_jwt_error(err, err_size,
                              "malformed token: %zu parts, expected 3",
                              n_dots + 1);
    }

    h = (const char *) token;
    h_len = dot[0];
    p = (const char *) token + dot[0] + 1;
    p_len = dot[1] - dot[0] - 1;
    s = (const char *) token + dot[1] + 1;
    s_len = len - dot[1] - 1;

    /* the header: settles alg before the key is used */

    if (h_len == 0) {
        return goim_jwt_error(err, err_size, "malformed token: empty header");
    }

    if (h_len > GOIM_JWT_B64URL_LEN(GOIM_JWT_MAX_HEADER)) {
        return goim_jwt_error(err, err_size,
                              GOIM_JWT_ERR_HEADER "longer than %d bytes",
                              GOIM_JWT_MAX_HEADER);
    }

    if (goim_jwt_b64url_decode(header, h, h_len, &n) != 0) {
        return goim_jwt_error(err, err_size,
                              GOIM_JWT_ERR_HEADER "bad base64url");
    }

    if (goim_jwt_check_header(header, n, err, err_size) != 0) {
        return -1;
    }

    /* the signature, over the encoded header and payload */

    if (p_len == 0) {
        return goim_jwt_error(err, err_size,
                              "malformed token: empty payload");
    }

    if (s_len != GOIM_JWT_B64URL_LEN(GOIM_JWT_SIG_LEN)) {
        return goim_jwt_error(err, err_size, "bad signature");
    }

    if (goim_jwt_b64url_decode(sig, s, s_len, &n) != 0
        || n != GOIM_JWT_SIG_LEN)
    {
        return goim_jwt_error(err, err_size,
                              "malformed token: signature: bad base64url");
    }

    if (goim_jwt_hmac(secret, secret_len, token, dot[1], mac) != 0) {
        return goim_jwt_error(err, err_size, "HMAC-SHA256 failed");
    }

    /* constant time: the comparison must not tell how much matched */
    differ = CRYPTO_memcmp(mac, sig, GOIM_JWT_SIG_LEN);
    OPENSSL_cleanse(mac, sizeof(mac));

    if (differ) {
        return goim_jwt_error(err, err_size, "bad signature");
    }

    /* the payload, authenticated from here on */

    if (goim_jwt_b64url_decode(payload, p, p_len, &n) != 0) {
        return goim_jwt_error(err, err_size,
                              "malformed token: payload: bad base64url");
    }

    if (goim_token_parse(payload, n, tok, perr, sizeof(perr)) != 0) {
        return goim_jwt_error(err, err_size, "invalid claims: %s", perr);
    }

    memset(&claims, 0, sizeof(goim_jwt_claims_ctx_t));
    claims.err = err;
    claims.err_size = err_size;
    claims.claim = -1;

    rc = goim_token_json(&goim_jwt_claims_callbacks, &claims, payload, n,
                         "invalid claims: ", 0, err, err_size);

    if (rc == 0 && !claims.has_exp) {
        rc = goim_jwt_error(err, err_size, "exp claim required");
    }

    if (rc == 0 && claims.exp <= now) {
        rc = goim_jwt_error(err, err_size, "token expired");
    }

    if (leeway < 0) {
        leeway = 0;
    }

    /* nbf > now + leeway, without overflowing: nbf - now fits uint64 */
    if (rc == 0 && claims.has_nbf && claims.nbf > now
        && (uint64_t) claims.nbf - (uint64_t) now > (uint64_t) leeway)
    {
        rc = goim_jwt_error(err, err_size, "token not yet valid");
    }

    if (rc != 0) {
        goim_token_free(tok);
        return -1;
    }

    return 0;
}


/* --- signing ------------------------------------------------------------- */

int
goim_jwt_sign(const uint8_t *claims, size_t len, const uint8_t *secret,
    size_t secret_len, char *out, size_t out_size, char *err,
    size_t err_size)
{
    size_t   n, total;
    uint8_t  mac[GOIM_JWT_SIG_LEN];

    if (err != NULL && err_size > 0) {
        err[0] = '\0';
    }

    if (secret == NULL || secret_len == 0) {
        return goim_jwt_error(err, err_size, "no secret");
    }

    if (secret_len > INT_MAX) {
        return goim_jwt_error(err, err_size, "secret too long");
    }

    /* checked before the length is computed, which must not overflow */
    if (len > GOIM_JWT_MAX_LEN) {
        return goim_jwt_error(err, err_size, "token would be longer than"
                              " %d bytes", GOIM_JWT_MAX_LEN);
    }

    total = GOIM_JWT_B64URL_LEN(sizeof(goim_jwt_hs256_header) - 1) + 1
            + GOIM_JWT_B64URL_LEN(len) + 1
            + GOIM_JWT_B64URL_LEN(GOIM_JWT_SIG_LEN);

    if (total > GOIM_JWT_MAX_LEN) {
        return goim_jwt_error(err, err_size, "token would be longer than"
                              " %d bytes", GOIM_JWT_MAX_LEN);
    }

    if (out_size <= total) {
        return goim_jwt_error(err, err_size, "output buffer too small");
    }

    n = goim_jwt_b64url_encode(out, (const uint8_t *) goim_jwt_hs256_header,
                               sizeof(goim_jwt_hs256_header) - 1);
    out[n++] = '.';
    n += goim_jwt_b64url_encode(&out[n], claims, len);

    if (goim_jwt_hmac(secret, secret_len, (const uint8_t *) out, n, mac)
        != 0)
    {
        return goim_jwt_error(err, err_size, "HMAC-SHA256 failed");
    }

    out[n++] = '.';
    n += goim_jwt_b64url_encode(&out[n], mac, GOIM_JWT_SIG_LEN);
    out[n] = '\0';

    OPENSSL_cleanse(mac, sizeof(mac));

    return (int) n;
}
