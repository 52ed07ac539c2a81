/*
 * HS256 JWT verifier: the RFC 7515 A.1 vector and one computed with
 * Python's hmac, base64url strictness, signature and header tampering,
 * refused algorithms, exp and nbf, malformed and oversized tokens, and
 * the claims goim_token_parse reads.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "goim_jwt.h"
#include "tap.h"


#define SECRET   "goim-test-secret-0123456789abcdef"
#define NOW      1700000000
#define HS256    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define CLAIMS                                                               \
    "{\"mid\":123,\"key\":\"dev-abc\",\"room_id\":\"live://1000\","           \
    "\"platform\":\"web\",\"accepts\":[1000,1001],\"exp\":2000000000}"

/* CLAIMS under HS256 with SECRET, by python3's hmac and base64 */
#define PY_TOKEN                                                             \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJtaWQiOjEyMywia2V5IjoiZGV2LWFi"  \
    "YyIsInJvb21faWQiOiJsaXZlOi8vMTAwMCIsInBsYXRmb3JtIjoid2ViIiwiYWNjZXB0"   \
    "cyI6WzEwMDAsMTAwMV0sImV4cCI6MjAwMDAwMDAwMH0.vkU6g3IHjUAon-THrX7fdlA7"   \
    "mto1cyhN3RYYNsI4vp8"


static char  err[256];
static char  tok_buf[GOIM_JWT_MAX_LEN + 64];


static int
token_is_empty(const goim_token_t *tok)
{
    return tok->mid == 0 && tok->key == NULL && tok->room_id == NULL
           && tok->platform == NULL && tok->accepts == NULL
           && tok->n_accepts == 0 && tok->exp == 0;
}


static int
verify_at(const char *token, const char *secret, int64_t now,
    int64_t leeway, goim_token_t *tok)
{
    return goim_jwt_verify((const uint8_t *) token, strlen(token),
                           (const uint8_t *) secret, strlen(secret), now,
                           leeway, tok, err, sizeof(err));
}


/* A token from already encoded header and payload parts, signed. */
static const char *
sign_parts(const char *h64, const char *p64, const char *secret)
{
    size_t        n;
    unsigned int  mac_len;
    uint8_t       mac[EVP_MAX_MD_SIZE];

    n = (size_t) snprintf(tok_buf, sizeof(tok_buf), "%s.%s", h64, p64);

    HMAC(EVP_sha256(), secret, (int) strlen(secret), (uint8_t *) tok_buf, n,
         mac, &mac_len);

    tok_buf[n++] = '.';
    n += goim_jwt_b64url_encode(&tok_buf[n], mac, mac_len);
    tok_buf[n] = '\0';

    return tok_buf;
}


static char *
b64(const char *s)
{
    char    *p;
    size_t   n;

    p = malloc(GOIM_JWT_B64URL_LEN(strlen(s)) + 1);
    n = goim_jwt_b64url_encode(p, (const uint8_t *) s, strlen(s));
    p[n] = '\0';

    return p;
}


/* A token with any header and payload JSON, HMAC-SHA256 signed. */
static const char *
make(const char *header, const char *payload, const char *secret)
{
    char  *h64, *p64;

    h64 = b64(header);
    p64 = b64(payload);
    sign_parts(h64, p64, secret);
    free(h64);
    free(p64);

    return tok_buf;
}


static void
accepts(const char *token, int64_t now, int64_t leeway, const char *name)
{
    int           rc;
    goim_token_t  tok;

    rc = verify_at(token, SECRET, now, leeway, &tok);
    is_int(rc, 0, "%s: accepted", name);
    is_str(err, "", "%s: no error", name);
    goim_token_free(&tok);
}


static void
rejects_at(const char *token, int64_t now, int64_t leeway,
    const char *reason, const char *name)
{
    int           rc;
    goim_token_t  tok;

    rc = verify_at(token, SECRET, now, leeway, &tok);
    is_int(rc, -1, "%s: rejected", name);
    is_str(err, reason, "%s: reason", name);
    ok(token_is_empty(&tok), "%s: token left empty", name);
}


static void
rejects(const char *token, const char *reason, const char *name)
{
    rejects_at(token, NOW, 0, reason, name);
}


static void
test_base64url(void)
{
    size_t   i, n;
    uint8_t  out[16];
    char     enc[16];

    /* RFC 4648 10, unpadded */
    static const char  *plain[] = {
        "", "f", "fo", "foo", "foob", "fooba", "foobar"
    };
    static const char  *coded[] = {
        "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"
    };

    for (i = 0; i < 7; i++) {
        n = goim_jwt_b64url_encode(enc, (const uint8_t *) plain[i],
                                   strlen(plain[i]));
        enc[n] = '\0';
        is_str(enc, coded[i], "encode '%s'", plain[i]);
        is_int(n, GOIM_JWT_B64URL_LEN(strlen(plain[i])),
               "encoded length of '%s'", plain[i]);

        n = 99;
        is_int(goim_jwt_b64url_decode(out, coded[i], strlen(coded[i]), &n),
               0, "decode '%s'", coded[i]);
        ok(n == strlen(plain[i]) && memcmp(out, plain[i], n) == 0,
           "decode '%s' gives '%s'", coded[i], plain[i]);
    }

    /* the URL-safe alphabet: 0xfb 0xff 0xbf is "-_-_" */
    is_int(goim_jwt_b64url_decode(out, "-_-_", 4, &n), 0, "decode -_");
    ok(n == 3 && out[0] == 0xfb && out[1] == 0xff && out[2] == 0xbf,
       "decode -_ bytes");
    n = goim_jwt_b64url_encode(enc, out, 3);
    ok(n == 4 && memcmp(enc, "-_-_", 4) == 0, "encode to -_");

    is_int(goim_jwt_b64url_decode(out, "+/+/", 4, &n), -1,
           "standard alphabet refused");
    is_int(goim_jwt_b64url_decode(out, "Zg==", 4, &n), -1,
           "padding refused");
    is_int(goim_jwt_b64url_decode(out, "Zm8=", 4, &n), -1,
           "single padding refused");
    is_int(goim_jwt_b64url_decode(out, "Zm9vY", 5, &n), -1,
           "length 1 mod 4 refused");
    is_int(goim_jwt_b64url_decode(out, "Zh", 2, &n), -1,
           "non-zero trailing bits refused (2 chars)");
    is_int(goim_jwt_b64url_decode(out, "Zm9", 3, &n), -1,
           "non-zero trailing bits refused (3 chars)");
    is_int(goim_jwt_b64url_decode(out, "Zm 9v", 5, &n), -1,
           "space refused");
    is_int(goim_jwt_b64url_decode(out, "Zm9v\n", 5, &n), -1,
           "newline refused");
    is_int(goim_jwt_b64url_decode(out, "Zm\0v", 4, &n), -1, "NUL refused");
    is_int(goim_jwt_b64url_decode(out, "Zm9\xc3", 4, &n), -1,
           "high byte refused");
}


static void
test_rfc7515_a1(void)
{
    int           rc;
    size_t        key_len;
    uint8_t       key[64];
    goim_token_t  tok;

    /* RFC 7515 A.1: the JWK's "k", header and payload with CR LF */
    static const char  k[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4"
        "hcgUuTwjAzZr1Z9CAow";
    static const char  jws[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
        "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    is_int(goim_jwt_b64url_decode(key, k, strlen(k), &key_len), 0,
           "A.1: key decodes");
    is_int(key_len, 64, "A.1: 64-byte key");

    rc = goim_jwt_verify((const uint8_t *) jws, strlen(jws), key, key_len,
                         1300819379, 0, &tok, err, sizeof(err));
    is_int(rc, 0, "A.1: verifies a second before exp");
    is_str(err, "", "A.1: no error");
    is_int(tok.exp, 1300819380, "A.1: exp");
    is_int(tok.mid, 0, "A.1: no mid");
    goim_token_free(&tok);

    rc = goim_jwt_verify((const uint8_t *) jws, strlen(jws), key, key_len,
                         1300819380, 0, &tok, err, sizeof(err));
    is_int(rc, -1, "A.1: at exp");
    is_str(err, "token expired", "A.1: expired at exp");

    key[0] ^= 1;
    rc = goim_jwt_verify((const uint8_t *) jws, strlen(jws), key, key_len,
                         1300819379, 0, &tok, err, sizeof(err));
    is_int(rc, -1, "A.1: one key bit changed");
    is_str(err, "bad signature", "A.1: bad signature");
}


static void
test_valid(void)
{
    int           n;
    char          out[512];
    goim_token_t  tok;

    is_int(verify_at(PY_TOKEN, SECRET, NOW, 0, &tok), 0,
           "python token verifies");
    is_str(err, "", "python token: no error");
    is_int(tok.mid, 123, "mid");
    is_str(tok.key, "dev-abc", "key");
    is_int(tok.key_len, 7, "key_len");
    is_str(tok.room_id, "live://1000", "room_id");
    is_str(tok.platform, "web", "platform");
    is_int(tok.n_accepts, 2, "two accepts");
    ok(tok.accepts != NULL && tok.accepts[0] == 1000
       && tok.accepts[1] == 1001, "accepts 1000, 1001");
    is_int(tok.exp, 2000000000, "exp");
    goim_token_free(&tok);

    /* goim_jwt_sign makes the same bytes */
    n = goim_jwt_sign((const uint8_t *) CLAIMS, strlen(CLAIMS),
                      (const uint8_t *) SECRET, strlen(SECRET), out,
                      sizeof(out), err, sizeof(err));
    is_int(n, strlen(PY_TOKEN), "sign: length");
    is_str(out, PY_TOKEN, "sign: same token as python");

    is_int(goim_jwt_sign((const uint8_t *) CLAIMS, strlen(CLAIMS),
                         (const uint8_t *) SECRET, strlen(SECRET), out,
                         strlen(PY_TOKEN), err, sizeof(err)),
           -1, "sign: no room for the NUL");
    is_str(err, "output buffer too small", "sign: reason");
    is_int(goim_jwt_sign((const uint8_t *) CLAIMS, strlen(CLAIMS),
                         (const uint8_t *) "", 0, out, sizeof(out), err,
                         sizeof(err)),
           -1, "sign: empty secret");

    /* typ is optional, and a media type */
    accepts(make("{\"alg\":\"HS256\"}", CLAIMS, SECRET), NOW, 0, "no typ");
    accepts(make("{\"typ\":\"jwt\",\"alg\":\"HS256\"}", CLAIMS, SECRET),
            NOW, 0, "typ jwt");
    accepts(make("{\"alg\":\"HS256\",\"kid\":\"2024-01\",\"x\":{\"y\":[1,"
                 "null,true]}}", CLAIMS, SECRET), NOW, 0,
            "kid and nested unknown members");
    accepts(make(" {\"alg\" : \"HS256\"}\r\n", CLAIMS, SECRET), NOW, 0,
            "whitespace in the header JSON");
    accepts(make(HS256, "{\"exp\":2000000000}", SECRET), NOW, 0,
            "exp alone");
    accepts(make(HS256, "{\"exp\":2000000000,\"iat\":1.5,\"sub\":\"x\","
                 "\"aud\":[\"a\"]}", SECRET), NOW, 0,
            "other registered claims ignored");
    accepts(make(HS256, "{\"MID\":7,\"exp\":2000000000}", SECRET), NOW, 0,
            "MID: goim's case-insensitive names kept");

    /* err may be NULL */
    is_int(goim_jwt_verify((const uint8_t *) PY_TOKEN, strlen(PY_TOKEN),
                           (const uint8_t *) SECRET, strlen(SECRET), NOW, 0,
                           &tok, NULL, 0), 0, "NULL err: accepted");
    goim_token_free(&tok);
    is_int(goim_jwt_verify((const uint8_t *) PY_TOKEN, strlen(PY_TOKEN),
                           (const uint8_t *) "x", 1, NOW, 0, &tok, NULL, 0),
           -1, "NULL err: rejected");
}


static void
test_signature(void)
{
    char        *t, *h64;
    size_t       len;
    const char  *dot;

    rejects(make(HS256, CLAIMS, "goim-test-secret-0123456789abcdeF"),
            "bad signature", "wrong secret");
    rejects(make(HS256, CLAIMS, "goim-test-secret-0123456789abcde"),
            "bad signature", "secret one byte short");

    is_int(goim_jwt_verify((const uint8_t *) PY_TOKEN, strlen(PY_TOKEN),
                           (const uint8_t *) "", 0, NOW, 0,
                           (goim_token_t[1]) {{ 0 }}, err, sizeof(err)),
           -1, "empty secret refused");
    is_str(err, "no secret", "empty secret: reason");

    /* a payload character changed: mid 123 to 124 */
    t = strdup(PY_TOKEN);
    dot = strchr(t, '.');
    ok(strncmp(dot + 1, "eyJtaWQiOjEyMy", 14) == 0, "payload starts mid:123");
    t[dot - t + 14] = 'Q';
    rejects(t, "bad signature", "tampered payload");
    free(t);

    /* another payload under the original signature */
    h64 = b64("{\"mid\":1,\"exp\":2000000000}");
    sign_parts("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", h64, SECRET);
    len = strlen(tok_buf);
    memcpy(&tok_buf[len - 43], strrchr(PY_TOKEN, '.') + 1, 43);
    rejects(tok_buf, "bad signature", "spliced payload");
    free(h64);

    /* another header, still HS256, under the original signature */
    h64 = b64("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"x\"}");
    snprintf(tok_buf, sizeof(tok_buf), "%s%s", h64, strchr(PY_TOKEN, '.'));
    rejects(tok_buf, "bad signature", "tampered header");
    free(h64);

    /* signature cut, extended, a bit flipped */
    t = strdup(PY_TOKEN);
    len = strlen(t);
    t[len - 1] = '\0';
    rejects(t, "bad signature", "signature one char short");
    free(t);

    snprintf(tok_buf, sizeof(tok_buf), "%sA", PY_TOKEN);
    rejects(tok_buf, "bad signature", "signature one char long");

    t = strdup(PY_TOKEN);
    t[len - 10] = t[len - 10] == 'A' ? 'B' : 'A';
    rejects(t, "bad signature", "signature changed");

    /* "p8" ends in 2 zero bits; "p9" is the same bytes, non-canonical */
    ok(strcmp(&t[len - 2], "p8") == 0, "signature ends in p8");
    t[len - 10] = PY_TOKEN[len - 10];
    t[len - 1] = '9';
    rejects(t, "malformed token: signature: bad base64url",
            "signature with trailing bits set");
    t[len - 1] = '=';
    rejects(t, "malformed token: signature: bad base64url",
            "signature with '='");
    free(t);

    /* a signature in standard base64 */
    t = strdup(PY_TOKEN);
    *strchr(strrchr(t, '.'), '-') = '+';
    rejects(t, "malformed token: signature: bad base64url",
            "signature with '+'");
    free(t);
}


static void
test_algorithms(void)
{
    char         *h64;
    const char   *p;
    size_t        i;
    char          name[64];

    static const char  *algs[] = {
        "none", "None", "NONE", "nOnE", "hs256", "HS256 ", "HS384", "HS512",
        "RS256", "ES256", "PS256", "EdDSA", ""
    };

    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        snprintf(name, sizeof(name), "{\"alg\":\"%s\"}", algs[i]);
        snprintf(err, sizeof(err), "algorithm not allowed: %s", algs[i]);
        p = strdup(err);

        /* HMAC-SHA256 signed all the same: still refused */
        rejects(make(name, CLAIMS, SECRET), p, name);
        free((char *) p);
    }

    /* alg none: without a signature, with an empty one, with the real one */
    h64 = b64("{\"alg\":\"none\"}");
    p = strchr(PY_TOKEN, '.');

    snprintf(tok_buf, sizeof(tok_buf), "%s%.*s.", h64,
             (int) (strrchr(p, '.') - p), p);
    rejects(tok_buf, "algorithm not allowed: none",
            "alg none, empty signature");

    tok_buf[strlen(tok_buf) - 1] = '\0';
    rejects(tok_buf, "malformed token: 2 parts, expected 3",
            "alg none, no signature part");

    snprintf(tok_buf, sizeof(tok_buf), "%s%s", h64, p);
    rejects(tok_buf, "algorithm not allowed: none",
            "alg none with the HS256 signature");
    free(h64);

    rejects(make("{\"alg\":\"RS256\",\"typ\":\"JWT\","
                 "\"jwk\":{\"kty\":\"RSA\"}}", CLAIMS, SECRET),
            "algorithm not allowed: RS256", "RS256 with an embedded jwk");
    rejects(make("{\"alg\":\"HS256AAAAAAAAAAAAAAAAAAAAAA\\u0001\"}", CLAIMS,
                 SECRET), "algorithm not allowed: HS256AAAAAAAAAAA...",
            "long alg cut in the message");
    rejects(make("{\"alg\":\"\\u0000\\n\"}", CLAIMS, SECRET),
            "algorithm not allowed: ??", "control characters in alg hidden");
}


static void
test_header(void)
{
    char  big[700];

    rejects(make("{\"typ\":\"JWT\"}", CLAIMS, SECRET),
            "malformed token: header: alg missing", "alg missing");
    rejects(make("{}", CLAIMS, SECRET),
            "malformed token: header: alg missing", "empty header object");
    rejects(make("{\"alg\":null}", CLAIMS, SECRET),
            "malformed token: header: alg must be a string", "alg null");
    rejects(make("{\"alg\":256}", CLAIMS, SECRET),
            "malformed token: header: alg must be a string", "alg number");
    rejects(make("{\"alg\":[\"HS256\"]}", CLAIMS, SECRET),
            "malformed token: header: alg must be a string", "alg array");
    rejects(make("{\"alg\":{\"HS256\":1}}", CLAIMS, SECRET),
            "malformed token: header: alg must be a string", "alg object");
    rejects(make("{\"ALG\":\"HS256\"}", CLAIMS, SECRET),
            "malformed token: header: alg missing", "ALG is not alg");
    rejects(make("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", CLAIMS, SECRET),
            "malformed token: header: typ must be \"JWT\"", "typ JWS");
    rejects(make("{\"alg\":\"HS256\",\"typ\":\"JWT \"}", CLAIMS, SECRET),
            "malformed token: header: typ must be \"JWT\"", "typ with space");
    rejects(make("{\"alg\":\"HS256\",\"typ\":null}", CLAIMS, SECRET),
            "malformed token: header: typ must be \"JWT\"", "typ null");
    rejects(make("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", CLAIMS,
                 SECRET),
            "malformed token: header: crit not supported", "crit");
    rejects(make("{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}",
                 CLAIMS, SECRET),
            "malformed token: header: crit not supported",
            "unencoded payload (RFC 7797)");
    rejects(make("{\"alg\":\"none\",\"alg\":\"HS256\"}", CLAIMS, SECRET),
            "malformed token: header: duplicate member \"alg\"",
            "duplicate alg");
    rejects(make("{\"alg\":\"HS256\",\"kid\":\"a\",\"kid\":\"a\"}", CLAIMS,
                 SECRET),
            "malformed token: header: duplicate member \"kid\"",
            "duplicate kid");
    rejects(make("{\"alg\":\"HS256\",\"al\\u0067\":\"none\"}", CLAIMS,
                 SECRET),
            "malformed token: header: duplicate member \"alg\"",
            "duplicate alg, escaped");
    rejects(make("[\"HS256\"]", CLAIMS, SECRET),
            "malformed token: header: expected a JSON object", "array");
    rejects(make("\"HS256\"", CLAIMS, SECRET),
            "malformed token: header: expected a JSON object", "string");
    rejects(make("1", CLAIMS, SECRET),
            "malformed token: header: expected a JSON object", "number");
    rejects(make("null", CLAIMS, SECRET),
            "malformed token: header: expected a JSON object", "null");
    rejects(make("{\"alg\":\"HS256\"", CLAIMS, SECRET),
            "malformed token: header: invalid JSON", "truncated JSON");
    rejects(make("{\"alg\":\"HS256\"}{}", CLAIMS, SECRET),
            "malformed token: header: invalid JSON", "two objects");
    rejects(make("{\"alg\":\"HS256\"}x", CLAIMS, SECRET),
            "malformed token: header: invalid JSON", "trailing garbage");
    rejects(make("{\"alg\":\"HS256\",}", CLAIMS, SECRET),
            "malformed token: header: invalid JSON", "trailing comma");
    rejects(make("{'alg':'HS256'}", CLAIMS, SECRET),
            "malformed token: header: invalid JSON", "single quotes");
    rejects(make("{\"alg\":\"HS256\"/**/}", CLAIMS, SECRET),
            "malformed token: header: invalid JSON", "comment");
    rejects(make("{\"alg\":\"HS256\",\"x\":\"\xff\"}", CLAIMS, SECRET),
            "malformed token: header: invalid JSON", "invalid UTF-8");
    rejects(make("", CLAIMS, SECRET), "malformed token: empty header",
            "empty header");
    rejects(make("{\"alg\":\"HS256\",\"x\":[[[[[[[[1]]]]]]]]}", CLAIMS,
                 SECRET),
            "malformed token: header: nested deeper than 8", "too deep");
    accepts(make("{\"alg\":\"HS256\",\"x\":[[[[[[1]]]]]]}", CLAIMS, SECRET),
            NOW, 0, "deep enough");
    rejects(make("{\"alg\":\"HS256\",\"a\":1,\"b\":1,\"c\":1,\"d\":1,"
                 "\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1,\"k\":1,"
                 "\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1}", CLAIMS, SECRET),
            "malformed token: header: more than 16 members",
            "17 members");

    /* exactly GOIM_JWT_MAX_HEADER decoded bytes, then one more */
    snprintf(big, sizeof(big), "{\"alg\":\"HS256\",\"kid\":\"%0*d\"}",
             GOIM_JWT_MAX_HEADER - 24, 0);
    is_int(strlen(big), GOIM_JWT_MAX_HEADER, "header of 512 bytes");
    accepts(make(big, CLAIMS, SECRET), NOW, 0, "header of 512 bytes");
    snprintf(big, sizeof(big), "{\"alg\":\"HS256\",\"kid\":\"%0*d\"}",
             GOIM_JWT_MAX_HEADER - 23, 0);
    rejects(make(big, CLAIMS, SECRET),
            "malformed token: header: longer than 512 bytes",
            "header of 513 bytes");
}


static void
test_times(void)
{
    char  claims[128];

    rejects(make(HS256, "{\"mid\":1}", SECRET), "exp claim required",
            "exp missing");
    rejects(make(HS256, "{\"mid\":1,\"exp\":null}", SECRET),
            "exp claim required", "exp null");
    rejects(make(HS256, "{\"mid\":1,\"EXP\":2000000000}", SECRET),
            "exp claim required", "EXP is not exp");
    rejects(make(HS256, "{\"mid\":1,\"exp\":{\"exp\":2000000000}}", SECRET),
            "invalid claims: exp: expected integer", "exp object");
    rejects(make(HS256, "{\"mid\":1,\"x\":{\"exp\":2000000000}}", SECRET),
            "exp claim required", "nested exp does not count");
    rejects(make(HS256, "{\"exp\":\"2000000000\"}", SECRET),
            "invalid claims: exp: expected integer", "exp string");
    rejects(make(HS256, "{\"exp\":2000000000.5}", SECRET),
            "invalid claims: exp: expected integer", "exp with fraction");
    rejects(make(HS256, "{\"exp\":2e9}", SECRET),
            "invalid claims: exp: expected integer", "exp with exponent");
    rejects(make(HS256, "{\"exp\":9223372036854775808}", SECRET),
            "invalid claims: exp: 9223372036854775808 out of int64 range",
            "exp past int64");

    snprintf(claims, sizeof(claims), "{\"exp\":%d}", NOW);
    rejects(make(HS256, claims, SECRET), "token expired", "exp == now");
    rejects_at(make(HS256, claims, SECRET), NOW, 1000, "token expired",
               "leeway does not extend exp");
    snprintf(claims, sizeof(claims), "{\"exp\":%d}", NOW - 1);
    rejects(make(HS256, claims, SECRET), "token expired", "exp < now");
    rejects(make(HS256, "{\"exp\":0}", SECRET), "token expired", "exp 0");
    rejects(make(HS256, "{\"exp\":-1}", SECRET), "token expired",
            "exp negative");
    snprintf(claims, sizeof(claims), "{\"exp\":%d}", NOW + 1);
    accepts(make(HS256, claims, SECRET), NOW, 0, "exp == now + 1");
    accepts(make(HS256, "{\"exp\":9223372036854775807}", SECRET), NOW, 0,
            "exp INT64_MAX");

    snprintf(claims, sizeof(claims), "{\"exp\":2000000000,\"nbf\":%d}",
             NOW + 10);
    rejects(make(HS256, claims, SECRET), "token not yet valid",
            "nbf in the future");
    rejects_at(make(HS256, claims, SECRET), NOW, 9, "token not yet valid",
               "nbf beyond the leeway");
    rejects_at(make(HS256, claims, SECRET), NOW, -100,
               "token not yet valid", "negative leeway counts as 0");
    accepts(make(HS256, claims, SECRET), NOW, 10, "nbf within the leeway");
    accepts(make(HS256, claims, SECRET), NOW + 10, 0, "nbf == now");
    snprintf(claims, sizeof(claims), "{\"exp\":2000000000,\"nbf\":%d}",
             NOW - 10);
    accepts(make(HS256, claims, SECRET), NOW, 0, "nbf in the past");
    accepts(make(HS256, "{\"exp\":2000000000,\"nbf\":null}", SECRET), NOW,
            0, "nbf null");
    accepts(make(HS256, "{\"exp\":2000000000,\"NBF\":9000000000}", SECRET),
            NOW, 0, "NBF is not nbf");
    rejects(make(HS256, "{\"exp\":2000000000,\"nbf\":\"1\"}", SECRET),
            "invalid claims: nbf: expected integer", "nbf string");
    rejects(make(HS256, "{\"exp\":2000000000,\"nbf\":1.0}", SECRET),
            "invalid claims: nbf: expected integer", "nbf with fraction");
    rejects(make(HS256, "{\"exp\":2000000000,\"nbf\":[1]}", SECRET),
            "invalid claims: nbf: expected integer", "nbf array");
    rejects(make(HS256, "{\"exp\":2000000000,\"nbf\":true}", SECRET),
            "invalid claims: nbf: expected integer", "nbf boolean");
    rejects(make(HS256, "{\"exp\":9223372036854775807,"
                 "\"nbf\":9223372036854775807}", SECRET),
            "token not yet valid", "nbf INT64_MAX");
    accepts(make(HS256, "{\"exp\":9223372036854775807,"
                 "\"nbf\":9223372036854775807}", SECRET), 0, INT64_MAX,
            "nbf INT64_MAX within INT64_MAX leeway");
    rejects_at(make(HS256, "{\"exp\":9223372036854775807,"
                    "\"nbf\":9223372036854775807}", SECRET), -2, INT64_MAX,
               "token not yet valid", "nbf - now past INT64_MAX");
}


static void
test_claims(void)
{
    rejects(make(HS256, "{\"mid\":\"123\",\"exp\":2000000000}", SECRET),
            "invalid claims: mid: expected integer", "mid as string");
    rejects(make(HS256, "{\"mid\":1.5,\"exp\":2000000000}", SECRET),
            "invalid claims: mid: expected integer", "mid with fraction");
    rejects(make(HS256, "{\"key\":1,\"exp\":2000000000}", SECRET),
            "invalid claims: key: expected string", "key as number");
    rejects(make(HS256, "{\"accepts\":\"1000\",\"exp\":2000000000}", SECRET),
            "invalid claims: accepts: expected array", "accepts as string");
    rejects(make(HS256, "{\"room_id\":\"a\\u0000b\",\"exp\":2000000000}",
                 SECRET),
            "invalid claims: room_id: control character", "NUL in room_id");

    rejects(make(HS256, "[{\"exp\":2000000000}]", SECRET),
            "invalid claims: token: expected a JSON object", "payload array");
    rejects(make(HS256, "\"x\"", SECRET),
            "invalid claims: token: expected a JSON object",
            "payload string");
    rejects(make(HS256, "2000000000", SECRET),
            "invalid claims: token: expected a JSON object",
            "payload number");
    rejects(make(HS256, "{\"exp\":2000000000", SECRET),
            "invalid claims: invalid JSON: parse error: premature EOF",
            "payload truncated");

    /* the issuer and goim_token_parse could read these differently */
    rejects(make(HS256, "{\"mid\":1,\"mid\":2,\"exp\":2000000000}", SECRET),
            "invalid claims: duplicate claim \"mid\"", "duplicate mid");
    rejects(make(HS256, "{\"mid\":1,\"Mid\":2,\"exp\":2000000000}", SECRET),
            "invalid claims: duplicate claim \"mid\"", "mid and Mid");
    rejects(make(HS256, "{\"exp\":1,\"exp\":2000000000}", SECRET),
            "invalid claims: duplicate claim \"exp\"", "duplicate exp");
    rejects(make(HS256, "{\"exp\":2000000000,\"EXP\":1}", SECRET),
            "invalid claims: duplicate claim \"exp\"", "exp and EXP");
    rejects(make(HS256, "{\"exp\":2000000000,\"nbf\":1,\"nbf\":1}", SECRET),
            "invalid claims: duplicate claim \"nbf\"", "duplicate nbf");
    rejects(make(HS256, "{\"exp\":2000000000,\"key\":\"a\",\"KEY\":\"b\"}",
                 SECRET),
            "invalid claims: duplicate claim \"key\"", "key and KEY");
    accepts(make(HS256, "{\"exp\":2000000000,\"x\":1,\"x\":2,"
                 "\"o\":{\"mid\":1,\"mid\":2}}", SECRET), NOW, 0,
            "unknown and nested duplicates ignored");
}


static void
test_malformed(void)
{
    char        *t;
    size_t       len, plen;
    const char  *h64;
    char        *p64, *claims;

    h64 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

    rejects("", "malformed token: empty", "empty token");
    rejects("abc", "malformed token: 1 parts, expected 3", "1 part");
    rejects("a.b", "malformed token: 2 parts, expected 3", "2 parts");
    snprintf(tok_buf, sizeof(tok_buf), "%s.x", PY_TOKEN);
    rejects(tok_buf, "malformed token: 4 parts, expected 3", "4 parts");
    rejects("a.b.c.d.e", "malformed token: 5 parts, expected 3",
            "5 parts (JWE)");
    rejects("..", "malformed token: empty header", "empty parts");

    /* the payload cut out, header and signature kept */
    snprintf(tok_buf, sizeof(tok_buf), "%s.%s", h64,
             strrchr(PY_TOKEN, '.'));
    rejects(tok_buf, "malformed token: empty payload", "empty payload");

    rejects("e*J.eyJ.abc", "malformed token: header: bad base64url",
            "bad character in header");
    rejects("eyJhbGciOiJIUzI1NiJ9=.eyJ.abc",
            "malformed token: header: bad base64url", "padded header");
    rejects("eyJhbGciOiJIUzI1NiJ9A.eyJ.abc",
            "malformed token: header: bad base64url",
            "header length 1 mod 4");
    /* {"alg":"HS256"} and a space: 22 characters, 4 trailing bits */
    t = b64("{\"alg\":\"HS256\"} ");
    len = strlen(t);
    is_int(len, 22, "22-character header");
    snprintf(tok_buf, sizeof(tok_buf), "%s.eyJ.abc", t);
    rejects(tok_buf, "bad signature", "22-character header decodes");
    tok_buf[len - 1]++;
    rejects(tok_buf, "malformed token: header: bad base64url",
            "header with trailing bits set");
    free(t);

    /* payloads that fail decoding, signed so that decoding is reached */
    rejects(sign_parts(h64, "eyJleHAiOjIwMDAwMDAwMDB9=", SECRET),
            "malformed token: payload: bad base64url", "padded payload");
    rejects(sign_parts(h64, "eyJleHAiOjIwMDAwMDAwMDB9\n", SECRET),
            "malformed token: payload: bad base64url",
            "newline in payload");
    rejects(sign_parts(h64, "eyJleHAiOjIwMDAw+DAwMDB9", SECRET),
            "malformed token: payload: bad base64url", "'+' in payload");
    rejects(sign_parts(h64, "eyJleHAiOjIwMDAwMDAwMDB9A", SECRET),
            "malformed token: payload: bad base64url",
            "payload length 1 mod 4");
    accepts(sign_parts(h64, "eyJleHAiOjIwMDAwMDAwMDB9", SECRET), NOW, 0,
            "the same payload unaltered");

    /* whitespace around the token is not trimmed */
    snprintf(tok_buf, sizeof(tok_buf), "%s\n", PY_TOKEN);
    rejects(tok_buf, "bad signature", "trailing newline");
    snprintf(tok_buf, sizeof(tok_buf), " %s", PY_TOKEN);
    rejects(tok_buf, "malformed token: header: bad base64url",
            "leading space");

    /* exactly GOIM_JWT_MAX_LEN bytes: padded by an unknown claim */
    len = GOIM_JWT_MAX_LEN - strlen(h64) - 2 - 43;
    plen = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    claims = malloc(plen + 1);
    len = (size_t) snprintf(claims, plen + 1,
                            "{\"exp\":2000000000,\"pad\":\"");
    memset(claims + len, 'x', plen - len - 2);
    memcpy(claims + plen - 2, "\"}", 3);
    p64 = b64(claims);
    t = strdup(sign_parts(h64, p64, SECRET));
    is_int(strlen(t), GOIM_JWT_MAX_LEN, "token of 8192 bytes");
    accepts(t, NOW, 0, "token of 8192 bytes");
    free(t);
    free(p64);

    /* one byte more */
    claims[plen - 2] = 'x';
    claims[plen - 1] = '"';
    claims = realloc(claims, plen + 2);
    claims[plen] = '}';
    claims[plen + 1] = '\0';
    p64 = b64(claims);
    sign_parts(h64, p64, SECRET);
    is_int(strlen(tok_buf), GOIM_JWT_MAX_LEN + 1, "token of 8193 bytes");
    rejects(tok_buf, "malformed token: longer than 8192 bytes",
            "oversized token");
    is_int(goim_jwt_sign((const uint8_t *) claims, strlen(claims),
                         (const uint8_t *) SECRET, strlen(SECRET), tok_buf,
                         sizeof(tok_buf), err, sizeof(err)),
           -1, "sign refuses an oversized token");
    is_str(err, "token would be longer than 8192 bytes", "sign: reason");
    free(p64);
    free(claims);

    /* a huge length never gets near the data */
    rejects_at("x", NOW, 0, "malformed token: 1 parts, expected 3",
               "sanity");
    is_int(goim_jwt_verify((const uint8_t *) PY_TOKEN, SIZE_MAX,
                           (const uint8_t *) SECRET, strlen(SECRET), NOW, 0,
                           (goim_token_t[1]) {{ 0 }}, err, sizeof(err)),
           -1, "SIZE_MAX length");
    is_str(err, "malformed token: longer than 8192 bytes",
           "SIZE_MAX length: reason");

    /* a NUL inside the token */
    memcpy(tok_buf, PY_TOKEN, sizeof(PY_TOKEN));
    tok_buf[5] = '\0';
    is_int(goim_jwt_verify((const uint8_t *) tok_buf, sizeof(PY_TOKEN) - 1,
                           (const uint8_t *) SECRET, strlen(SECRET), NOW, 0,
                           (goim_token_t[1]) {{ 0 }}, err, sizeof(err)),
           -1, "NUL in the header");
    is_str(err, "malformed token: header: bad base64url", "NUL: reason");
}


static void
test_err_size(void)
{
    char          small[8];
    goim_token_t  tok;

    memset(small, 'x', sizeof(small));
    is_int(goim_jwt_verify((const uint8_t *) "a.b", 3,
                           (const uint8_t *) SECRET, strlen(SECRET), NOW, 0,
                           &tok, small, sizeof(small) - 1), -1,
           "small err: rejected");
    is_str(small, "malfor", "small err: cut and NUL-terminated");
    ok(small[7] == 'x', "small err: nothing written past err_size");
}


int
main(void)
{
    test_base64url();
    test_rfc7515_a1();
    test_valid();
    test_signature();
    test_algorithms();
    test_header();
    test_times();
    test_claims();
    test_malformed();
    test_err_size();

    return done_testing();
}
