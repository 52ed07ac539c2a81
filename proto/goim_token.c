/*
 * goim's auth token (docs/PROTOCOL.md 1.4), parsed with yajl's callback parser
 * so that nothing but the token's own fields is ever stored.  What is
 * accepted follows goim's logic, Go's json.Unmarshal into a struct, so
 * that tokens working with goim work here: member names match
 * case-insensitively, a repeated member replaces the earlier one, and an
 * integer field takes only JSON integers within its type.  Stricter than
 * Go: kept strings must be valid UTF-8 without control characters.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "goim_token.h"
#include "goim_util.h"


typedef enum {
    GOIM_TOKEN_UNKNOWN = 0,
    GOIM_TOKEN_MID,
    GOIM_TOKEN_KEY,
    GOIM_TOKEN_ROOM,
    GOIM_TOKEN_PLATFORM,
    GOIM_TOKEN_ACCEPTS,
    GOIM_TOKEN_EXP,
    GOIM_TOKEN_ROOM_IDS,
    GOIM_TOKEN_ALLOWED_ROOMS
} goim_token_field_e;

/* where the value being reported by yajl lands */
typedef enum {
    GOIM_TOKEN_AT_TOP,
    GOIM_TOKEN_AT_FIELD,
    GOIM_TOKEN_AT_ACCEPT,
    GOIM_TOKEN_AT_ROOM,         /* an element of room_ids, allowed_rooms */
    GOIM_TOKEN_AT_SKIP
} goim_token_at_e;

typedef struct {
    goim_token_t        *tok;
    char                *err;
    size_t               err_size;
    goim_token_field_e   field;       /* of the current top-level member */
    unsigned             depth;       /* 1 inside the top-level object */
    unsigned             in_array;    /* depth 2 is a field's array */
} goim_token_ctx_t;


/* indexed by goim_token_field_e */
static const struct {
    const char  *name;
    const char  *type;
} goim_token_fields[] = {
    { NULL, NULL },
    { "mid", "integer" },
    { "key", "string" },
    { "room_id", "string" },
    { "platform", "string" },
    { "accepts", "array" },
    { "exp", "integer" },
    { "room_ids", "array" },
    { "allowed_rooms", "array" }
};

#define GOIM_TOKEN_NFIELDS                                                   \
    (sizeof(goim_token_fields) / sizeof(goim_token_fields[0]))


void
goim_token_verror(char *err, size_t err_size, const char *fmt, va_list ap)
{
    if (err != NULL && err_size > 0) {
        vsnprintf(err, err_size, fmt, ap);
    }
}


static void
goim_token_set_error(char *err, size_t err_size, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    goim_token_verror(err, err_size, fmt, ap);
    va_end(ap);
}


/* Records the reason; returns 0, which makes yajl cancel the parse. */
static int
goim_token_error(goim_token_ctx_t *ctx, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    goim_token_verror(ctx->err, ctx->err_size, fmt, ap);
    va_end(ap);

    return 0;
}


static int
goim_token_wrong_type(goim_token_ctx_t *ctx)
{
    return goim_token_error(ctx, "%s: expected %s",
                            goim_token_fields[ctx->field].name,
                            goim_token_fields[ctx->field].type);
}


static goim_token_at_e
goim_token_at(goim_token_ctx_t *ctx)
{
    if (ctx->depth == 0) {
        return GOIM_TOKEN_AT_TOP;
    }

    if (ctx->depth == 1) {
        return ctx->field == GOIM_TOKEN_UNKNOWN ? GOIM_TOKEN_AT_SKIP
                                                : GOIM_TOKEN_AT_FIELD;
    }

    if (ctx->depth == 2 && ctx->in_array) {
        return ctx->field == GOIM_TOKEN_ACCEPTS ? GOIM_TOKEN_AT_ACCEPT
                                                : GOIM_TOKEN_AT_ROOM;
    }

    return GOIM_TOKEN_AT_SKIP;
}


/*
 * A scalar or a container where no value may start: the top level, an
 * element of accepts other than an integer, or of a room list other than
 * a string.
 */
static int
goim_token_misplaced(goim_token_ctx_t *ctx, goim_token_at_e at)
{
    if (at == GOIM_TOKEN_AT_TOP) {
        return goim_token_error(ctx, "token: expected a JSON object");
    }

    if (at == GOIM_TOKEN_AT_ROOM) {
        return goim_token_error(ctx, "%s: expected string",
                                goim_token_fields[ctx->field].name);
    }

    return goim_token_error(ctx, "accepts: expected integer");
}


/* Appends a room id to room_ids or allowed_rooms unless it is there. */
static int
goim_token_add_room(goim_token_ctx_t *ctx, const unsigned char *s,
    size_t len)
{
    char               *p;
    size_t              max, size, off;
    const char         *name, *id;
    goim_token_rooms_t *list;

    if (ctx->field == GOIM_TOKEN_ROOM_IDS) {
        list = &ctx->tok->room_ids;
        max = GOIM_TOKEN_MAX_ROOMS;

    } else {
        list = &ctx->tok->allowed_rooms;
        max = GOIM_TOKEN_MAX_RIGHTS;
    }

    name = goim_token_fields[ctx->field].name;

    if (len == 0) {
        /* "" names no room, as a null element does */
        return 1;
    }

    /* by offset: an empty list's data is NULL */
    for (off = 0; off < list->len; off += size + 1) {
        id = list->data + off;
        size = strlen(id);

        if (size == len && memcmp(id, s, len) == 0) {
            return 1;
        }
    }

    if (list->n == max) {
        return goim_token_error(ctx, "%s: more than %zu rooms", name, max);
    }

    p = realloc(list->data, list->len + len + 1);
    if (p == NULL) {
        return goim_token_error(ctx, "out of memory");
    }

    memcpy(p + list->len, s, len);
    p[list->len + len] = '\0';

    list->data = p;
    list->len += len + 1;
    list->n++;

    return 1;
}


/* Appends op to accepts unless it is there already. */
static int
goim_token_add_accept(goim_token_ctx_t *ctx, int32_t op)
{
    size_t         i;
    goim_token_t  *tok;

    tok = ctx->tok;

    for (i = 0; i < tok->n_accepts; i++) {
        if (tok->accepts[i] == op) {
            return 1;
        }
    }

    if (tok->n_accepts == GOIM_TOKEN_MAX_ACCEPTS) {
        return goim_token_error(ctx, "accepts: more than %d operations",
                                GOIM_TOKEN_MAX_ACCEPTS);
    }

    tok->accepts[tok->n_accepts++] = op;

    return 1;
}


static int
goim_token_null(void *data)
{
    goim_token_ctx_t  *ctx = data;
    goim_token_at_e    at;

    at = goim_token_at(ctx);

    if (at == GOIM_TOKEN_AT_TOP) {
        return goim_token_misplaced(ctx, at);
    }

    if (at != GOIM_TOKEN_AT_ACCEPT) {
        /*
         * a null member leaves the field as it was, as in Go; a null
         * room names no room
         */
        return 1;
    }

    /* Go stores a null element of []int32 as 0 */
    return goim_token_add_accept(ctx, 0);
}


static int
goim_token_boolean(void *data, int value)
{
    goim_token_ctx_t  *ctx = data;
    goim_token_at_e    at;

    (void) value;

    at = goim_token_at(ctx);

    switch (at) {

    case GOIM_TOKEN_AT_SKIP:
        return 1;

    case GOIM_TOKEN_AT_FIELD:
        return goim_token_wrong_type(ctx);

    default:
        return goim_token_misplaced(ctx, at);
    }
}


static int
goim_token_accept(goim_token_ctx_t *ctx, const char *s, size_t len)
{
    int      rc;
    int64_t  v;

    rc = goim_parse_int(s, len, INT32_MIN, INT32_MAX, &v);

    if (rc == -1) {
        return goim_token_error(ctx, "accepts: expected integer");
    }

    if (rc == -2) {
        return goim_token_error(ctx, "accepts: %.*s out of int32 range",
                                (int) (len > 24 ? 24 : len), s);
    }

    return goim_token_add_accept(ctx, (int32_t) v);
}


static int
goim_token_number(void *data, const char *s, size_t len)
{
    goim_token_ctx_t  *ctx = data;
    int                rc;
    int64_t           *dst;
    goim_token_at_e    at;

    at = goim_token_at(ctx);

    switch (at) {

    case GOIM_TOKEN_AT_SKIP:
        return 1;

    case GOIM_TOKEN_AT_ACCEPT:
        return goim_token_accept(ctx, s, len);

    case GOIM_TOKEN_AT_FIELD:
        break;

    default:
        return goim_token_misplaced(ctx, at);
    }

    if (ctx->field == GOIM_TOKEN_MID) {
        dst = &ctx->tok->mid;

    } else if (ctx->field == GOIM_TOKEN_EXP) {
        dst = &ctx->tok->exp;

    } else {
        return goim_token_wrong_type(ctx);
    }

    rc = goim_parse_int(s, len, INT64_MIN, INT64_MAX, dst);

    if (rc == -1) {
        return goim_token_wrong_type(ctx);
    }

    if (rc == -2) {
        return goim_token_error(ctx, "%s: %.*s out of int64 range",
                                goim_token_fields[ctx->field].name,
                                (int) (len > 24 ? 24 : len), s);
    }

    return 1;
}


static int
goim_token_string(void *data, const unsigned char *s, size_t len)
{
    goim_token_ctx_t  *ctx = data;
    char              *p, **dst;
    size_t             i, max, *dst_len;
    goim_token_at_e    at;

    at = goim_token_at(ctx);

    switch (at) {

    case GOIM_TOKEN_AT_SKIP:
        return 1;

    case GOIM_TOKEN_AT_FIELD:
    case GOIM_TOKEN_AT_ROOM:
        break;

    default:
        return goim_token_misplaced(ctx, at);
    }

    switch (at == GOIM_TOKEN_AT_ROOM ? GOIM_TOKEN_ROOM : ctx->field) {

    case GOIM_TOKEN_KEY:
        dst = &ctx->tok->key;
        dst_len = &ctx->tok->key_len;
        max = GOIM_TOKEN_MAX_KEY;
        break;

    case GOIM_TOKEN_ROOM:
        dst = &ctx->tok->room_id;
        dst_len = &ctx->tok->room_len;
        max = GOIM_TOKEN_MAX_ROOM;
        break;

    case GOIM_TOKEN_PLATFORM:
        dst = &ctx->tok->platform;
        dst_len = NULL;
        max = GOIM_TOKEN_MAX_PLATFORM;
        break;

    default:
        return goim_token_wrong_type(ctx);
    }

    if (len > max) {
        return goim_token_error(ctx, "%s: longer than %zu bytes",
                                goim_token_fields[ctx->field].name, max);
    }

    /*
     * These strings end up in Redis keys, log lines and C strings: a
     * control character (\u0000 included) is refused rather than carried.
     */
    for (i = 0; i < len; i++) {
        if (s[i] < 0x20) {
            return goim_token_error(ctx, "%s: control character",
                                    goim_token_fields[ctx->field].name);
        }
    }

    /*
     * yajl checks only the shape of UTF-8 sequences: overlong forms,
     * UTF-16 surrogates and code points past U+10FFFF get through, and a
     * lone "\udc00" escape even decodes to a surrogate.  Kept strings are
     * therefore checked again, strictly (RFC 3629).
     */
    if (!goim_utf8_valid(s, len)) {
        return goim_token_error(ctx, "%s: invalid UTF-8",
                                goim_token_fields[ctx->field].name);
    }

    if (at == GOIM_TOKEN_AT_ROOM) {
        return goim_token_add_room(ctx, s, len);
    }

    p = NULL;

    if (len > 0) {
        p = malloc(len + 1);
        if (p == NULL) {
            return goim_token_error(ctx, "out of memory");
        }

        memcpy(p, s, len);
        p[len] = '\0';
    }

    free(*dst);
    *dst = p;

    if (dst_len != NULL) {
        *dst_len = len;
    }

    return 1;
}


static int
goim_token_start_container(goim_token_ctx_t *ctx, int array)
{
    goim_token_at_e      at;
    goim_token_rooms_t  *list;

    if (ctx->depth == GOIM_TOKEN_MAX_DEPTH) {
        return goim_token_error(ctx, "token: nested deeper than %d",
                                GOIM_TOKEN_MAX_DEPTH);
    }

    at = goim_token_at(ctx);

    switch (at) {

    case GOIM_TOKEN_AT_TOP:
        if (array) {
            return goim_token_misplaced(ctx, at);
        }

        break;

    case GOIM_TOKEN_AT_FIELD:
        if (array && (ctx->field == GOIM_TOKEN_ROOM_IDS
                      || ctx->field == GOIM_TOKEN_ALLOWED_ROOMS))
        {
            /* a repeated list replaces the earlier one */
            list = ctx->field == GOIM_TOKEN_ROOM_IDS
                   ? &ctx->tok->room_ids : &ctx->tok->allowed_rooms;
            goim_token_rooms_free(list);
            list->given = 1;
            ctx->in_array = 1;
            break;
        }

        if (!array || ctx->field != GOIM_TOKEN_ACCEPTS) {
            return goim_token_wrong_type(ctx);
        }

        if (ctx->tok->accepts == NULL) {
            ctx->tok->accepts = malloc(GOIM_TOKEN_MAX_ACCEPTS
                                       * sizeof(int32_t));
            if (ctx->tok->accepts == NULL) {
                return goim_token_error(ctx, "out of memory");
            }
        }

        /* a repeated accepts replaces the earlier one */
        ctx->tok->n_accepts = 0;
        ctx->in_array = 1;
        break;

    case GOIM_TOKEN_AT_ACCEPT:
    case GOIM_TOKEN_AT_ROOM:
        return goim_token_misplaced(ctx, at);

    default:
        /* inside an unknown member: skipped, only counted */
        break;
    }

    ctx->depth++;

    return 1;
}


static int
goim_token_end_container(void *data)
{
    goim_token_ctx_t  *ctx = data;

    if (ctx->depth == 2) {
        ctx->in_array = 0;
    }

    ctx->depth--;

    return 1;
}


static int
goim_token_start_map(void *data)
{
    return goim_token_start_container(data, 0);
}


static int
goim_token_start_array(void *data)
{
    return goim_token_start_container(data, 1);
}


/*
 * name is lowercase.  Only ASCII is folded, where Go would also let the
 * Kelvin sign and the long s stand for "k" and "s".
 */
int
goim_token_name_eq(const unsigned char *s, size_t len, const char *name)
{
    size_t         i;
    unsigned char  c;

    for (i = 0; i < len; i++) {
        c = s[i];

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (name[i] == '\0' || c != (unsigned char) name[i]) {
            return 0;
        }
    }

    return name[len] == '\0';
}


static int
goim_token_map_key(void *data, const unsigned char *s, size_t len)
{
    goim_token_ctx_t  *ctx = data;
    size_t             i;

    if (ctx->depth != 1) {
        return 1;
    }

    ctx->field = GOIM_TOKEN_UNKNOWN;

    for (i = 1; i < GOIM_TOKEN_NFIELDS; i++) {
        if (goim_token_name_eq(s, len, goim_token_fields[i].name)) {
            ctx->field = (goim_token_field_e) i;
            break;
        }
    }

    return 1;
}


static const yajl_callbacks  goim_token_callbacks = {
    goim_token_null,
    goim_token_boolean,
    NULL,                       /* integers come through yajl_number */
    NULL,
    goim_token_number,
    goim_token_string,
    goim_token_start_map,
    goim_token_map_key,
    goim_token_end_container,
    goim_token_start_array,
    goim_token_end_container
};


int
goim_token_parse(const uint8_t *json, size_t len, goim_token_t *tok,
    char *err, size_t err_size)
{
    goim_token_ctx_t  ctx;

    memset(tok, 0, sizeof(goim_token_t));

    if (err != NULL && err_size > 0) {
        err[0] = '\0';
    }

    memset(&ctx, 0, sizeof(goim_token_ctx_t));
    ctx.tok = tok;
    ctx.err = err;
    ctx.err_size = err_size;

    if (goim_token_json(&goim_token_callbacks, &ctx, json, len, "", 1, err,
                        err_size)
        != 0)
    {
        /* a callback, if it canceled the parse, wrote the reason */
        goim_token_free(tok);
        return -1;
    }

    if (tok->n_accepts == 0) {
        free(tok->accepts);
        tok->accepts = NULL;
    }

    return 0;
}


int
goim_token_json(const yajl_callbacks *cb, void *ctx, const uint8_t *json,
    size_t len, const char *prefix, int detail, char *err, size_t err_size)
{
    size_t          n;
    yajl_handle     h;
    yajl_status     st;
    unsigned char  *msg;

    h = yajl_alloc(cb, NULL, ctx);
    if (h == NULL) {
        goim_token_set_error(err, err_size, "out of memory");
        return -1;
    }

    /*
     * These are yajl's defaults, set anyway because the parser's safety
     * rests on them: no comments, and strings must be valid UTF-8.
     */
    yajl_config(h, yajl_allow_comments, 0);
    yajl_config(h, yajl_dont_validate_strings, 0);

    st = yajl_parse(h, json, len);

    if (st == yajl_status_ok) {
        /* catches a truncated document; trailing bytes fail above */
        st = yajl_complete_parse(h);
    }

    if (st == yajl_status_error) {
        msg = detail ? yajl_get_error(h, 0, json, len) : NULL;

        if (msg != NULL) {
            n = strlen((char *) msg);

            while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
                n--;
            }

            goim_token_set_error(err, err_size, "%sinvalid JSON: %.*s",
                                 prefix, (int) n, msg);
            yajl_free_error(h, msg);

        } else {
            goim_token_set_error(err, err_size, "%sinvalid JSON", prefix);
        }
    }

    yajl_free(h);

    return st == yajl_status_ok ? 0 : -1;
}


void
goim_token_free(goim_token_t *tok)
{
    free(tok->key);
    free(tok->room_id);
    free(tok->platform);
    free(tok->accepts);
    goim_token_rooms_free(&tok->room_ids);
    goim_token_rooms_free(&tok->allowed_rooms);

    memset(tok, 0, sizeof(goim_token_t));
}


void
goim_token_rooms_free(goim_token_rooms_t *list)
{
    free(list->data);

    list->data = NULL;
    list->len = 0;
    list->n = 0;
    list->given = 0;
}


int
goim_token_rooms_next(const goim_token_rooms_t *list, size_t *pos,
    const char **id, size_t *len)
{
    if (*pos >= list->len) {
        return 0;
    }

    *id = list->data + *pos;
    *len = strlen(*id);
    *pos += *len + 1;

    return 1;
}
