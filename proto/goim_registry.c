/*
 * The comet registry record (goim_registry.h): yajl_gen writes it,
 * yajl_tree reads it.  A decoded record's strings are copied into one
 * allocation, so the tree is freed before decode returns.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "goim_registry.h"
#include "goim_util.h"


#define goim_registry_key(g, k)                                              \
    yajl_gen_string(g, (const unsigned char *) k, sizeof(k) - 1)


static int goim_registry_gen_str(yajl_gen g, const goim_registry_str_t *s);
static int64_t goim_registry_positive(yajl_val tree, const char *name);
static const char *goim_registry_string(yajl_val tree, const char *name);


long
goim_registry_encode(const goim_registry_record_t *rec, char *buf,
    size_t size)
{
    long                  rc;
    size_t                i, len;
    yajl_gen              g;
    const char           *sessions;
    const unsigned char  *json;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }

    rc = -1;

    if (yajl_gen_map_open(g) != yajl_gen_status_ok
        || goim_registry_key(g, "server") != yajl_gen_status_ok
        || goim_registry_gen_str(g, &rec->server) != 0
        || goim_registry_key(g, "addr") != yajl_gen_status_ok
        || goim_registry_gen_str(g, &rec->addr) != 0
        || goim_registry_key(g, "weight") != yajl_gen_status_ok
        || yajl_gen_integer(g, rec->weight) != yajl_gen_status_ok
        || goim_registry_key(g, "conn_count") != yajl_gen_status_ok
        || yajl_gen_integer(g, rec->conn_count) != yajl_gen_status_ok
        || goim_registry_key(g, "ip_count") != yajl_gen_status_ok
        || yajl_gen_integer(g, rec->ip_count) != yajl_gen_status_ok
        || goim_registry_key(g, "addrs") != yajl_gen_status_ok
        || yajl_gen_array_open(g) != yajl_gen_status_ok)
    {
        goto done;
    }

    for (i = 0; i < rec->naddrs; i++) {
        if (goim_registry_gen_str(g, &rec->addrs[i]) != 0) {
            goto done;
        }
    }

    if (yajl_gen_array_close(g) != yajl_gen_status_ok
        || goim_registry_key(g, "updated") != yajl_gen_status_ok
        || yajl_gen_integer(g, rec->updated) != yajl_gen_status_ok)
    {
        goto done;
    }

    if (rec->ttl
        && (goim_registry_key(g, "ttl") != yajl_gen_status_ok
            || yajl_gen_integer(g, rec->ttl) != yajl_gen_status_ok))
    {
        goto done;
    }

    switch (rec->sessions) {
    case GOIM_REGISTRY_SESSIONS_READY:
        sessions = "ready";
        break;
    case GOIM_REGISTRY_SESSIONS_REBUILDING:
        sessions = "rebuilding";
        break;
    default:
        sessions = NULL;
    }

    if (sessions
        && (goim_registry_key(g, "sessions") != yajl_gen_status_ok
            || yajl_gen_string(g, (const unsigned char *) sessions,
                               strlen(sessions))
               != yajl_gen_status_ok))
    {
        goto done;
    }

    if (yajl_gen_map_close(g) != yajl_gen_status_ok
        || yajl_gen_get_buf(g, &json, &len) != yajl_gen_status_ok)
    {
        goto done;
    }

    if (len < size) {
        memcpy(buf, json, len);
        buf[len] = '\0';
    }

    rc = (long) len;

done:

    yajl_gen_free(g);

    return rc;
}


/* a string that is not UTF-8 fails: no reader could parse the record */
static int
goim_registry_gen_str(yajl_gen g, const goim_registry_str_t *s)
{
    if (s->data == NULL) {
        return yajl_gen_string(g, (const unsigned char *) "", 0)
               == yajl_gen_status_ok ? 0 : -1;
    }

    if (!goim_utf8_valid((const uint8_t *) s->data, s->len)) {
        return -1;
    }

    return yajl_gen_string(g, (const unsigned char *) s->data, s->len)
           == yajl_gen_status_ok ? 0 : -1;
}


int
goim_registry_decode(goim_registry_record_t *rec, const char *json,
    size_t len, char *err, size_t errlen)
{
    char        *text, *p, *nl, yerr[256];
    size_t       i, n, size;
    yajl_val     tree, a, v;
    const char  *server, *addr, *s, *sessions;

    memset(rec, 0, sizeof(goim_registry_record_t));
    rec->addr.data = "";

    if (memchr(json, '\0', len) != NULL) {
        snprintf(err, errlen, "not JSON: a NUL byte in the text");
        return -1;
    }

    /* yajl lets overlong forms and surrogates through */
    if (!goim_utf8_valid((const uint8_t *) json, len)) {
        snprintf(err, errlen, "not JSON: the text is not UTF-8");
        return -1;
    }

    /* yajl_tree_parse() reads up to a NUL */
    text = malloc(len + 1);
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    memcpy(text, json, len);
    text[len] = '\0';

    yerr[0] = '\0';
    tree = yajl_tree_parse(text, yerr, sizeof(yerr));
    free(text);

    if (tree == NULL) {
        /* yajl's first line: the rest repeats the text with a marker */
        nl = strchr(yerr, '\n');
        if (nl) {
            *nl = '\0';
        }

        snprintf(err, errlen, "not JSON: %s", yerr[0] ? yerr : "parse error");
        return -1;
    }

    if (!YAJL_IS_OBJECT(tree)) {
        yajl_tree_free(tree);
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }

    server = goim_registry_string(tree, "server");
    addr = goim_registry_string(tree, "addr");

    /* one block: the addrs array, then every string with its NUL */
    size = 0;
    n = 0;

    if (server) {
        size += strlen(server) + 1;
    }

    if (addr) {
        size += strlen(addr) + 1;
    }

    a = yajl_tree_get(tree, (const char *[]) { "addrs", NULL },
                      yajl_t_array);

    for (i = 0; a && i < a->u.array.len; i++) {
        v = a->u.array.values[i];

        if (YAJL_IS_STRING(v)) {
            size += sizeof(goim_registry_str_t) + strlen(v->u.string) + 1;
            n++;
        }
    }

    rec->mem = malloc(size ? size : 1);
    if (rec->mem == NULL) {
        yajl_tree_free(tree);
        memset(rec, 0, sizeof(goim_registry_record_t));
        rec->addr.data = "";
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    rec->addrs = n ? rec->mem : NULL;
    p = (char *) rec->mem + n * sizeof(goim_registry_str_t);

    for (i = 0; a && i < a->u.array.len; i++) {
        v = a->u.array.values[i];

        if (!YAJL_IS_STRING(v)) {
            continue;
        }

        s = v->u.string;
        rec->addrs[rec->naddrs].len = strlen(s);
        rec->addrs[rec->naddrs].data = p;
        memcpy(p, s, rec->addrs[rec->naddrs].len + 1);
        p += rec->addrs[rec->naddrs].len + 1;
        rec->naddrs++;
    }

    if (server) {
        rec->server.len = strlen(server);
        rec->server.data = p;
        memcpy(p, server, rec->server.len + 1);
        p += rec->server.len + 1;
    }

    if (addr) {
        rec->addr.len = strlen(addr);
        rec->addr.data = p;
        memcpy(p, addr, rec->addr.len + 1);
    }

    rec->weight = goim_registry_positive(tree, "weight");
    rec->conn_count = goim_registry_positive(tree, "conn_count");
    rec->ip_count = goim_registry_positive(tree, "ip_count");
    rec->ttl = goim_registry_positive(tree, "ttl");

    v = yajl_tree_get(tree, (const char *[]) { "updated", NULL },
                      yajl_t_number);
    rec->updated = v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : 0;

    sessions = goim_registry_string(tree, "sessions");

    if (sessions == NULL) {
        rec->sessions = GOIM_REGISTRY_SESSIONS_NONE;

    } else if (strcmp(sessions, "ready") == 0) {
        rec->sessions = GOIM_REGISTRY_SESSIONS_READY;

    } else if (strcmp(sessions, "rebuilding") == 0) {
        rec->sessions = GOIM_REGISTRY_SESSIONS_REBUILDING;

    } else {
        rec->sessions = GOIM_REGISTRY_SESSIONS_OTHER;
    }

    yajl_tree_free(tree);

    return 0;
}


void
goim_registry_free(goim_registry_record_t *rec)
{
    free(rec->mem);
    memset(rec, 0, sizeof(goim_registry_record_t));
    rec->addr.data = "";
}


/* an integer member > 0, else 0 */
static int64_t
goim_registry_positive(yajl_val tree, const char *name)
{
    yajl_val  v;

    v = yajl_tree_get(tree, (const char *[]) { name, NULL }, yajl_t_number);

    return v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0
           ? YAJL_GET_INTEGER(v) : 0;
}


static const char *
goim_registry_string(yajl_val tree, const char *name)
{
    yajl_val  v;

    v = yajl_tree_get(tree, (const char *[]) { name, NULL }, yajl_t_string);

    return v ? v->u.string : NULL;
}
