/*
 * Signed auth tokens (goim issue #157: goim trusts whatever mid a token
 * claims): a compact JWS (RFC 7515) signed with HMAC-SHA256 (RFC 7518
 * 3.2) whose payload is goim's token (goim_token.h) plus "exp" and an
 * optional "nbf" (RFC 7519).  Pure C, no nginx headers; HMAC from
 * OpenSSL's libcrypto.
 */

#ifndef GOIM_JWT_H
#define GOIM_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "goim_token.h"


#define GOIM_JWT_MAX_LEN         8192   /* whole token, bytes */
#define GOIM_JWT_MAX_HEADER      512    /* decoded JOSE header, bytes */
#define GOIM_JWT_SIG_LEN         32     /* HMAC-SHA256 */

/*
 * RFC 7518 3.2: an HS256 key must be at least as long as the hash.  Not
 * enforced by goim_jwt_verify() (only an empty secret is refused): check
 * it where the secret is configured.
 */
#define GOIM_JWT_MIN_SECRET      32

/* characters of n bytes in unpadded base64url */
#define GOIM_JWT_B64URL_LEN(n)   ((n) / 3 * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))


/*
 * Verifies a compact JWS (header.payload.signature, base64url without
 * padding) signed with HMAC-SHA256 ("alg":"HS256", "typ" optional, must be
 * "JWT" if present; any other alg including "none" is refused), checks
 * "exp" (required, must be > now) and optional "nbf" (<= now + leeway),
 * then parses the payload claims with goim_token_parse() into tok.
 * Returns 0, or -1 with a short reason in err ("bad signature",
 * "algorithm not allowed: none", "token expired", "malformed token:
 * ...", "exp claim required", ...).
 *
 * Strictness, beyond that:
 *  - the token is at most GOIM_JWT_MAX_LEN bytes, with no whitespace
 *    anywhere (trim a line ending before calling);
 *  - base64url is unpadded as RFC 7515 requires: '=' is refused, as are
 *    characters outside the URL-safe alphabet and non-zero trailing bits
 *    (each token has a single encoding);
 *  - the header is a JSON object of at most GOIM_JWT_MAX_HEADER bytes
 *    without duplicate members; "alg" is compared case-sensitively,
 *    "typ" case-insensitively (a media type); "crit" is refused as no
 *    extension is understood; other members ("kid", ...) are ignored;
 *  - the signature is checked in constant time before the payload is
 *    decoded or parsed;
 *  - "exp" and "nbf" are exact lowercase names (RFC 7519), integers
 *    (NumericDate with a fraction is refused, as goim_token_parse does
 *    for exp); null counts as absent.  A claim goim_token_parse reads
 *    (mid, key, room_id, platform, accepts, exp, room_ids, allowed_rooms)
 *    or nbf may appear only once, whatever its case, so that no two
 *    JSON parsers can read a signed token differently.  leeway below 0
 *    counts as 0; it applies to nbf only.
 *
 * secret may hold any bytes.  err may be NULL; otherwise it is always
 * NUL-terminated.  tok is zeroed on failure; on success release it with
 * goim_token_free().
 */
int goim_jwt_verify(const uint8_t *token, size_t len,
    const uint8_t *secret, size_t secret_len, int64_t now,
    int64_t leeway, goim_token_t *tok, char *err, size_t err_size);

/*
 * Signs claims (the payload's JSON text, taken as is: the caller checks
 * it) under the header {"alg":"HS256","typ":"JWT"}.  Writes the token
 * and a NUL into out.  Returns the token's length, or -1 with a reason
 * in err when the secret is empty, out is too small or the token would
 * exceed GOIM_JWT_MAX_LEN.
 */
int goim_jwt_sign(const uint8_t *claims, size_t len, const uint8_t *secret,
    size_t secret_len, char *out, size_t out_size, char *err,
    size_t err_size);

/*
 * Unpadded base64url (RFC 4648 5).  encode writes GOIM_JWT_B64URL_LEN(len)
 * characters, no NUL, and returns their number.  decode is strict as
 * described above; dst must hold len * 3 / 4 bytes; returns 0 and the
 * decoded length in *dst_len, or -1.
 */
size_t goim_jwt_b64url_encode(char *dst, const uint8_t *src, size_t len);
int goim_jwt_b64url_decode(uint8_t *dst, const char *src, size_t len,
    size_t *dst_len);


#endif /* GOIM_JWT_H */
