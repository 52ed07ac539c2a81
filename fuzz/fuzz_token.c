/*
 * Auth token parser: goim_token_parse() on the input as the body of an
 * auth packet, then the invariants of what it returns.  A kept string is
 * NUL-terminated at its length, within its limit, non-empty and free of
 * control characters; accepts hold at most GOIM_TOKEN_MAX_ACCEPTS
 * distinct operations; a rejected token is left empty with a reason.
 * The parse is repeated without an error buffer and with a one-byte one,
 * which must not change the result.
 */

#include "fuzz.h"
#include "goim_token.h"


static void
check_string(const char *s, size_t len, size_t max)
{
    size_t  i;

    if (s == NULL) {
        fuzz_assert(len == 0);
        return;
    }

    /* an empty string counts as absent */
    fuzz_assert(len > 0 && len <= max);
    fuzz_assert(strlen(s) == len);

    for (i = 0; i < len; i++) {
        fuzz_assert((unsigned char) s[i] >= 0x20);
    }
}


static int
token_is_empty(const goim_token_t *tok)
{
    return tok->mid == 0 && tok->key == NULL && tok->key_len == 0
           && tok->room_id == NULL && tok->room_len == 0
           && tok->platform == NULL && tok->accepts == NULL
           && tok->n_accepts == 0 && tok->exp == 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           rc, again;
    char          err[128], tiny[1];
    size_t        i, k;
    goim_token_t  tok, tok2;

    memset(err, 'x', sizeof(err));

    rc = goim_token_parse(data, size, &tok, err, sizeof(err));

    fuzz_assert(rc == 0 || rc == -1);
    fuzz_assert(memchr(err, '\0', sizeof(err)) != NULL);

    if (rc == 0) {
        fuzz_assert(err[0] == '\0');

        check_string(tok.key, tok.key_len, GOIM_TOKEN_MAX_KEY);
        check_string(tok.room_id, tok.room_len, GOIM_TOKEN_MAX_ROOM);
        check_string(tok.platform,
                     tok.platform ? strlen(tok.platform) : 0,
                     GOIM_TOKEN_MAX_PLATFORM);

        fuzz_assert(tok.n_accepts <= GOIM_TOKEN_MAX_ACCEPTS);
        fuzz_assert((tok.accepts == NULL) == (tok.n_accepts == 0));

        for (i = 0; i < tok.n_accepts; i++) {
            for (k = i + 1; k < tok.n_accepts; k++) {
                fuzz_assert(tok.accepts[i] != tok.accepts[k]);
            }
        }

    } else {
        fuzz_assert(err[0] != '\0');
        fuzz_assert(token_is_empty(&tok));
    }

    /* the same result without room for a reason */
    again = goim_token_parse(data, size, &tok2, NULL, 0);
    fuzz_assert(again == rc);

    if (rc == 0) {
        fuzz_assert(tok2.mid == tok.mid && tok2.exp == tok.exp);
        fuzz_assert(tok2.key_len == tok.key_len
                    && tok2.room_len == tok.room_len
                    && tok2.n_accepts == tok.n_accepts);
        fuzz_assert(tok.key == NULL
                    || memcmp(tok2.key, tok.key, tok.key_len) == 0);
        fuzz_assert(tok.room_id == NULL
                    || memcmp(tok2.room_id, tok.room_id, tok.room_len) == 0);
        fuzz_assert((tok.platform == NULL) == (tok2.platform == NULL));
        fuzz_assert(tok.platform == NULL
                    || strcmp(tok2.platform, tok.platform) == 0);
        fuzz_assert(tok.n_accepts == 0
                    || memcmp(tok2.accepts, tok.accepts,
                              tok.n_accepts * sizeof(int32_t)) == 0);
    }

    goim_token_free(&tok2);
    fuzz_assert(token_is_empty(&tok2));

    tiny[0] = 'x';
    again = goim_token_parse(data, size, &tok2, tiny, sizeof(tiny));
    fuzz_assert(again == rc && tiny[0] == '\0');

    goim_token_free(&tok2);
    goim_token_free(&tok);
    fuzz_assert(token_is_empty(&tok));

    return 0;
}
