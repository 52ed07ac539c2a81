/*
 * goim-jwt: makes and checks the HS256 auth tokens of proto/goim_jwt.h,
 * for tests and operators.
 *
 *   goim-jwt sign [--secret S | --secret-file F] [--exp-in SECS | --exp T]
 *                 [--nbf-in SECS | --nbf T] [--now T] CLAIMS|-
 *   goim-jwt verify [--secret S | --secret-file F] [--now T]
 *                   [--leeway SECS] TOKEN|-
 *
 * sign prints the token of the JSON object CLAIMS (goim's token: mid,
 * key, room_id, platform, accepts), with exp and nbf set from the options
 * (replacing members of those names), under {"alg":"HS256","typ":"JWT"}.
 * It refuses claims that goim_jwt_verify() would refuse for anything but
 * time.  verify prints the claims as goim reads them, as one JSON line.
 *
 * The secret: --secret (visible in ps), --secret-file (one trailing line
 * ending is dropped) or else the environment variable GOIM_JWT_SECRET.
 * "-" reads CLAIMS or TOKEN from stdin, trailing whitespace dropped.
 * Times are Unix seconds; --now defaults to the clock.
 *
 * Exit codes: 0 success, 1 token refused or not signed, 2 usage.
 */

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "goim_jwt.h"
#include "goim_token.h"
#include "goim_util.h"


#define GJ_MAX_INPUT   (64 * 1024)     /* claims or token from stdin */
#define GJ_MAX_SECRET  4096


typedef struct {
    yajl_gen    g;
    unsigned    depth;          /* 1 inside the claims object */
    unsigned    skip;           /* a top-level member is being dropped */
    unsigned    set_exp;
    unsigned    set_nbf;
    int64_t     exp;
    int64_t     nbf;
} gj_rewrite_t;


static void gj_usage(void);
static int gj_int64(const char *opt, const char *s, int64_t *out);
static int gj_add(const char *opt, int64_t now, int64_t secs, int64_t *out);
static char *gj_read(FILE *f, size_t max, size_t *len);
static void gj_trim(char *s, size_t *len);
static int gj_rewrite(const char *claims, size_t len, gj_rewrite_t *rw,
    const unsigned char **out, size_t *out_len);
static int gj_sign(const char *claims, size_t len, const char *secret,
    size_t secret_len, gj_rewrite_t *rw);
static int gj_verify(const char *token, size_t len, const char *secret,
    size_t secret_len, int64_t now, int64_t leeway);


static void
gj_usage(void)
{
    fprintf(stderr,
        "usage: goim-jwt sign [--secret S | --secret-file F]"
        " [--exp-in SECS | --exp T]\n"
        "                     [--nbf-in SECS | --nbf T] [--now T]"
        " CLAIMS|-\n"
        "       goim-jwt verify [--secret S | --secret-file F] [--now T]"
        " [--leeway SECS]\n"
        "                       TOKEN|-\n"
        "the secret defaults to $GOIM_JWT_SECRET; times are Unix seconds\n");
}


static int
gj_int64(const char *opt, const char *s, int64_t *out)
{
    if (goim_parse_int64(s, strlen(s), out) != 0) {
        fprintf(stderr, "goim-jwt: --%s takes an integer\n", opt);
        return -1;
    }

    return 0;
}


/* now + secs, refused when it would overflow */
static int
gj_add(const char *opt, int64_t now, int64_t secs, int64_t *out)
{
    if ((secs > 0 && now > INT64_MAX - secs)
        || (secs < 0 && now < INT64_MIN - secs))
    {
        fprintf(stderr, "goim-jwt: --%s out of range\n", opt);
        return -1;
    }

    *out = now + secs;

    return 0;
}


/* The whole of f, NUL-terminated; NULL when larger than max. */
static char *
gj_read(FILE *f, size_t max, size_t *len)
{
    char    *buf;
    size_t   n;

    buf = malloc(max + 2);
    if (buf == NULL) {
        return NULL;
    }

    n = fread(buf, 1, max + 1, f);

    if (ferror(f) || n > max) {
        free(buf);
        return NULL;
    }

    buf[n] = '\0';
    *len = n;

    return buf;
}


static void
gj_trim(char *s, size_t *len)
{
    while (*len > 0 && strchr(" \t\r\n", s[*len - 1]) != NULL) {
        s[--*len] = '\0';
    }
}


/* --- sign: the claims copied through yajl, exp and nbf set ------------- */

static int
gj_kept(gj_rewrite_t *rw)
{
    return rw->skip == 0;
}


/* A value ended; back in the claims object, a dropped member is over. */
static void
gj_value_done(gj_rewrite_t *rw)
{
    if (rw->depth == 1) {
        rw->skip = 0;
    }
}


static int
gj_rw_null(void *data)
{
    gj_rewrite_t  *rw = data;

    if (gj_kept(rw) && yajl_gen_null(rw->g) != yajl_gen_status_ok) {
        return 0;
    }

    gj_value_done(rw);

    return 1;
}


static int
gj_rw_boolean(void *data, int value)
{
    gj_rewrite_t  *rw = data;

    if (gj_kept(rw) && yajl_gen_bool(rw->g, value) != yajl_gen_status_ok) {
        return 0;
    }

    gj_value_done(rw);

    return 1;
}


static int
gj_rw_number(void *data, const char *s, size_t len)
{
    gj_rewrite_t  *rw = data;

    if (gj_kept(rw)
        && yajl_gen_number(rw->g, s, len) != yajl_gen_status_ok)
    {
        return 0;
    }

    gj_value_done(rw);

    return 1;
}


static int
gj_rw_string(void *data, const unsigned char *s, size_t len)
{
    gj_rewrite_t  *rw = data;

    if (gj_kept(rw)
        && yajl_gen_string(rw->g, s, len) != yajl_gen_status_ok)
    {
        return 0;
    }

    gj_value_done(rw);

    return 1;
}


static int
gj_rw_start_map(void *data)
{
    gj_rewrite_t  *rw = data;

    if (gj_kept(rw) && yajl_gen_map_open(rw->g) != yajl_gen_status_ok) {
        return 0;
    }

    rw->depth++;

    return 1;
}


static int
gj_rw_map_key(void *data, const unsigned char *s, size_t len)
{
    gj_rewrite_t  *rw = data;

    if (rw->depth == 1
        && ((rw->set_exp && len == 3 && memcmp(s, "exp", 3) == 0)
            || (rw->set_nbf && len == 3 && memcmp(s, "nbf", 3) == 0)))
    {
        /* replaced by the option's value, added at the end */
        rw->skip = 1;
        return 1;
    }

    if (gj_kept(rw)
        && yajl_gen_string(rw->g, s, len) != yajl_gen_status_ok)
    {
        return 0;
    }

    return 1;
}


static int
gj_add_time(yajl_gen g, const char *name, int64_t v)
{
    int  n;
    char num[24];

    n = snprintf(num, sizeof(num), "%lld", (long long) v);

    return yajl_gen_string(g, (const unsigned char *) name, 3)
               == yajl_gen_status_ok
           && yajl_gen_number(g, num, (size_t) n) == yajl_gen_status_ok;
}


static int
gj_rw_end_map(void *data)
{
    gj_rewrite_t  *rw = data;

    if (rw->depth == 1) {
        if (rw->set_exp && !gj_add_time(rw->g, "exp", rw->exp)) {
            return 0;
        }

        if (rw->set_nbf && !gj_add_time(rw->g, "nbf", rw->nbf)) {
            return 0;
        }
    }

    if (gj_kept(rw) && yajl_gen_map_close(rw->g) != yajl_gen_status_ok) {
        return 0;
    }

    rw->depth--;
    gj_value_done(rw);

    return 1;
}


static int
gj_rw_start_array(void *data)
{
    gj_rewrite_t  *rw = data;

    if (gj_kept(rw) && yajl_gen_array_open(rw->g) != yajl_gen_status_ok) {
        return 0;
    }

    rw->depth++;

    return 1;
}


static int
gj_rw_end_array(void *data)
{
    gj_rewrite_t  *rw = data;

    if (gj_kept(rw) && yajl_gen_array_close(rw->g) != yajl_gen_status_ok) {
        return 0;
    }

    rw->depth--;
    gj_value_done(rw);

    return 1;
}


static const yajl_callbacks  gj_rw_callbacks = {
    gj_rw_null,
    gj_rw_boolean,
    NULL,
    NULL,
    gj_rw_number,
    gj_rw_string,
    gj_rw_start_map,
    gj_rw_map_key,
    gj_rw_end_map,
    gj_rw_start_array,
    gj_rw_end_array
};


static int
gj_rewrite(const char *claims, size_t len, gj_rewrite_t *rw,
    const unsigned char **out, size_t *out_len)
{
    yajl_handle     h;
    yajl_status     st;
    unsigned char  *msg;

    /* the top level must be an object for exp and nbf to be added */
    while (len > 0 && strchr(" \t\r\n", *claims) != NULL) {
        claims++;
        len--;
    }

    if (len == 0 || *claims != '{') {
        fprintf(stderr, "goim-jwt: claims: expected a JSON object\n");
        return -1;
    }

    h = yajl_alloc(&gj_rw_callbacks, NULL, rw);
    if (h == NULL) {
        fprintf(stderr, "goim-jwt: out of memory\n");
        return -1;
    }

    st = yajl_parse(h, (const unsigned char *) claims, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    if (st != yajl_status_ok) {
        msg = yajl_get_error(h, 1, (const unsigned char *) claims, len);
        fprintf(stderr, "goim-jwt: claims: %s",
                msg != NULL ? (char *) msg : "invalid JSON\n");

        if (msg != NULL) {
            yajl_free_error(h, msg);
        }

        yajl_free(h);
        return -1;
    }

    yajl_free(h);

    if (yajl_gen_get_buf(rw->g, out, out_len) != yajl_gen_status_ok) {
        fprintf(stderr, "goim-jwt: claims: cannot generate JSON\n");
        return -1;
    }

    return 0;
}


static int
gj_sign(const char *claims, size_t len, const char *secret,
    size_t secret_len, gj_rewrite_t *rw)
{
    int                   n, rc;
    char                  err[256];
    char                  out[GOIM_JWT_MAX_LEN + 1];
    size_t                payload_len;
    goim_token_t          tok;
    const unsigned char  *payload;

    rw->g = yajl_gen_alloc(NULL);
    if (rw->g == NULL) {
        fprintf(stderr, "goim-jwt: out of memory\n");
        return 1;
    }

    yajl_gen_config(rw->g, yajl_gen_validate_utf8, 1);

    rc = 1;

    if (gj_rewrite(claims, len, rw, &payload, &payload_len) != 0) {
        goto done;
    }

    if (goim_token_parse(payload, payload_len, &tok, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "goim-jwt: claims: %s\n", err);
        goto done;
    }

    if (!rw->set_exp) {
        /* not exactly "exp" when misspelt: the check below tells */
        rw->exp = tok.exp;
    }

    goim_token_free(&tok);

    if (!rw->set_exp && rw->exp == 0) {
        fprintf(stderr, "goim-jwt: claims have no exp:"
                " give --exp-in SECS or --exp T\n");
        goto done;
    }

    if (secret_len < GOIM_JWT_MIN_SECRET) {
        fprintf(stderr, "goim-jwt: warning: a secret shorter than %d bytes"
                " is weak (RFC 7518 3.2)\n", GOIM_JWT_MIN_SECRET);
    }

    n = goim_jwt_sign(payload, payload_len, (const uint8_t *) secret,
                      secret_len, out, sizeof(out), err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "goim-jwt: %s\n", err);
        goto done;
    }

    /* all the verifier checks but time: at a second before exp */
    if (rw->exp == INT64_MIN
        || goim_jwt_verify((const uint8_t *) out, (size_t) n,
                           (const uint8_t *) secret, secret_len,
                           rw->exp - 1, INT64_MAX, &tok, err, sizeof(err))
           != 0)
    {
        fprintf(stderr, "goim-jwt: refusing to sign: %s\n",
                rw->exp == INT64_MIN ? "exp out of range" : err);
        goto done;
    }

    goim_token_free(&tok);

    printf("%s\n", out);
    rc = 0;

done:

    yajl_gen_free(rw->g);

    return rc;
}


/* --- verify -------------------------------------------------------------- */

#define GJ_GEN_STR(g, s)                                                     \
    yajl_gen_string(g, (const unsigned char *) (s), strlen(s))

static int
gj_verify(const char *token, size_t len, const char *secret,
    size_t secret_len, int64_t now, int64_t leeway)
{
    char                  err[256];
    char                  num[24];
    size_t                i, n;
    yajl_gen              g;
    goim_token_t          tok;
    const unsigned char  *buf;

    if (goim_jwt_verify((const uint8_t *) token, len,
                        (const uint8_t *) secret, secret_len, now, leeway,
                        &tok, err, sizeof(err))
        != 0)
    {
        fprintf(stderr, "goim-jwt: %s\n", err);
        return 1;
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        goim_token_free(&tok);
        fprintf(stderr, "goim-jwt: out of memory\n");
        return 1;
    }

    yajl_gen_map_open(g);

    GJ_GEN_STR(g, "mid");
    n = (size_t) snprintf(num, sizeof(num), "%lld", (long long) tok.mid);
    yajl_gen_number(g, num, n);

    GJ_GEN_STR(g, "key");
    if (tok.key != NULL) {
        yajl_gen_string(g, (const unsigned char *) tok.key, tok.key_len);
    } else {
        yajl_gen_null(g);
    }

    GJ_GEN_STR(g, "room_id");
    if (tok.room_id != NULL) {
        yajl_gen_string(g, (const unsigned char *) tok.room_id,
                        tok.room_len);
    } else {
        yajl_gen_null(g);
    }

    GJ_GEN_STR(g, "platform");
    if (tok.platform != NULL) {
        GJ_GEN_STR(g, tok.platform);
    } else {
        yajl_gen_null(g);
    }

    GJ_GEN_STR(g, "accepts");
    yajl_gen_array_open(g);

    for (i = 0; i < tok.n_accepts; i++) {
        yajl_gen_integer(g, tok.accepts[i]);
    }

    yajl_gen_array_close(g);

    GJ_GEN_STR(g, "exp");
    n = (size_t) snprintf(num, sizeof(num), "%lld", (long long) tok.exp);
    yajl_gen_number(g, num, n);

    yajl_gen_map_close(g);

    if (yajl_gen_get_buf(g, &buf, &n) == yajl_gen_status_ok) {
        printf("%.*s\n", (int) n, buf);
    }

    yajl_gen_free(g);
    goim_token_free(&tok);

    return 0;
}


int
main(int argc, char **argv)
{
    int            opt, rc, sign;
    char          *input, *file_secret;
    FILE          *f;
    size_t         len, secret_len;
    int64_t        now, leeway, v;
    const char    *secret, *secret_file, *arg;
    gj_rewrite_t   rw;

    /* which of exp and nbf an option gave, and how */
    int64_t        exp_in, nbf_in, exp_at, nbf_at;
    unsigned       has_exp_in, has_nbf_in, has_exp_at, has_nbf_at, has_now;

    static const struct option  opts[] = {
        { "secret",       required_argument, NULL, 's' },
        { "secret-file",  required_argument, NULL, 'f' },
        { "exp-in",       required_argument, NULL, 'e' },
        { "exp",          required_argument, NULL, 'E' },
        { "nbf-in",       required_argument, NULL, 'n' },
        { "nbf",          required_argument, NULL, 'N' },
        { "now",          required_argument, NULL, 't' },
        { "leeway",       required_argument, NULL, 'l' },
        { "help",         no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    if (argc < 2 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "--help") == 0)
    {
        gj_usage();
        return argc < 2 ? 2 : 0;
    }

    if (strcmp(argv[1], "sign") == 0) {
        sign = 1;

    } else if (strcmp(argv[1], "verify") == 0) {
        sign = 0;

    } else {
        gj_usage();
        return 2;
    }

    secret = NULL;
    secret_file = NULL;
    leeway = 0;
    now = 0;
    exp_in = nbf_in = exp_at = nbf_at = 0;
    has_exp_in = has_nbf_in = has_exp_at = has_nbf_at = has_now = 0;

    /* options after the command; "-" stays an operand */
    optind = 2;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {

        case 's':
            secret = optarg;
            break;

        case 'f':
            secret_file = optarg;
            break;

        case 'e':
            if (gj_int64("exp-in", optarg, &exp_in) != 0) {
                return 2;
            }
            has_exp_in = 1;
            break;

        case 'E':
            if (gj_int64("exp", optarg, &exp_at) != 0) {
                return 2;
            }
            has_exp_at = 1;
            break;

        case 'n':
            if (gj_int64("nbf-in", optarg, &nbf_in) != 0) {
                return 2;
            }
            has_nbf_in = 1;
            break;

        case 'N':
            if (gj_int64("nbf", optarg, &nbf_at) != 0) {
                return 2;
            }
            has_nbf_at = 1;
            break;

        case 't':
            if (gj_int64("now", optarg, &now) != 0) {
                return 2;
            }
            has_now = 1;
            break;

        case 'l':
            if (gj_int64("leeway", optarg, &leeway) != 0 || leeway < 0) {
                fprintf(stderr, "goim-jwt: --leeway takes seconds >= 0\n");
                return 2;
            }
            break;

        case 'h':
            gj_usage();
            return 0;

        default:
            gj_usage();
            return 2;
        }
    }

    if (optind != argc - 1) {
        gj_usage();
        return 2;
    }

    arg = argv[optind];

    if ((secret != NULL) + (secret_file != NULL) > 1
        || (has_exp_in && has_exp_at) || (has_nbf_in && has_nbf_at))
    {
        fprintf(stderr, "goim-jwt: --secret and --secret-file, --exp-in and"
                " --exp, --nbf-in and --nbf exclude each other\n");
        return 2;
    }

    if (!sign && (has_exp_in || has_exp_at || has_nbf_in || has_nbf_at)) {
        fprintf(stderr, "goim-jwt: exp and nbf options are for sign\n");
        return 2;
    }

    if (sign && leeway != 0) {
        fprintf(stderr, "goim-jwt: --leeway is for verify\n");
        return 2;
    }

    if (!has_now) {
        now = (int64_t) time(NULL);
    }

    /* the secret */

    file_secret = NULL;

    if (secret_file != NULL) {
        f = fopen(secret_file, "rb");
        if (f == NULL) {
            perror(secret_file);
            return 2;
        }

        file_secret = gj_read(f, GJ_MAX_SECRET, &secret_len);
        fclose(f);

        if (file_secret == NULL) {
            fprintf(stderr, "goim-jwt: %s: unreadable or longer than %d"
                    " bytes\n", secret_file, GJ_MAX_SECRET);
            return 2;
        }

        /* one line ending, as echo or an editor leaves it */
        if (secret_len > 0 && file_secret[secret_len - 1] == '\n') {
            secret_len--;

            if (secret_len > 0 && file_secret[secret_len - 1] == '\r') {
                secret_len--;
            }
        }

        secret = file_secret;

    } else {
        if (secret == NULL) {
            secret = getenv("GOIM_JWT_SECRET");
        }

        if (secret == NULL) {
            fprintf(stderr, "goim-jwt: no secret: give --secret,"
                    " --secret-file or GOIM_JWT_SECRET\n");
            return 2;
        }

        secret_len = strlen(secret);
    }

    if (secret_len == 0) {
        fprintf(stderr, "goim-jwt: the secret is empty\n");
        free(file_secret);
        return 2;
    }

    /* the operand */

    input = NULL;

    if (strcmp(arg, "-") == 0) {
        input = gj_read(stdin, GJ_MAX_INPUT, &len);

        if (input == NULL) {
            fprintf(stderr, "goim-jwt: stdin unreadable or longer than %d"
                    " bytes\n", GJ_MAX_INPUT);
            free(file_secret);
            return 2;
        }

        gj_trim(input, &len);
        arg = input;

    } else {
        len = strlen(arg);
    }

    if (sign) {
        memset(&rw, 0, sizeof(gj_rewrite_t));

        rc = 0;
        v = 0;

        if (has_exp_in) {
            rc |= gj_add("exp-in", now, exp_in, &v);
            rw.exp = v;
            rw.set_exp = 1;

        } else if (has_exp_at) {
            rw.exp = exp_at;
            rw.set_exp = 1;
        }

        if (has_nbf_in) {
            rc |= gj_add("nbf-in", now, nbf_in, &v);
            rw.nbf = v;
            rw.set_nbf = 1;

        } else if (has_nbf_at) {
            rw.nbf = nbf_at;
            rw.set_nbf = 1;
        }

        rc = rc ? 2 : gj_sign(arg, len, secret, secret_len, &rw);

    } else {
        rc = gj_verify(arg, len, secret, secret_len, now, leeway);
    }

    free(input);
    free(file_secret);

    return rc;
}
