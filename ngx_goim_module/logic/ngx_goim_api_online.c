
/*
 * goim for nginx: /goim/online/top, /goim/online/room and, without
 * Redis, /goim/online/total (docs/PROTOCOL.md 2.6 - 2.8).  Room counts
 * are the cluster's when the online pass published them (store/), this
 * node's otherwise.
 */


#include "ngx_goim_api.h"


typedef struct {
    ngx_str_t              room;
    ngx_uint_t             count;
} ngx_goim_api_top_t;


static ngx_int_t ngx_goim_api_rooms(ngx_pool_t *pool, ngx_str_t **names,
    ngx_uint_t **counts, ngx_uint_t *n);
static int ngx_libc_cdecl ngx_goim_api_top_cmp(const void *a,
    const void *b);


ngx_int_t
ngx_goim_api_online(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx)
{
    int32_t              limit;
    u_char              *host, *name;
    size_t               len;
    ngx_int_t            rc;
    ngx_str_t            type, key;
    ngx_uint_t           i, n, count;
    yajl_gen             g;
    ngx_str_t           *names;
    ngx_uint_t          *counts, nrooms, conns, ips;
    const char          *err, *fmt;
    ngx_goim_api_top_t  *top;

    if (ctx->route == NGX_GOIM_API_ONLINE_TOTAL) {
        if (ngx_goim_mode() != NGX_GOIM_EMBEDDED) {
            /* the cluster's, from the comet registry */
            return ngx_goim_api_nodes(r, ctx->route);
        }

        /* other workers refresh their address counts every 10 s */
        ngx_goim_registry_set_ips(ngx_goim_ip_count());
        ngx_goim_registry_totals(&conns, &ips);

        g = yajl_gen_alloc(NULL);
        if (g == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_goim_api_totals(g, conns, ips);

        rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);
        yajl_gen_free(g);
        return rc;
    }

    err = ngx_goim_api_str(ctx, "type", &type);
    if (err) {
        return ngx_goim_api_bind_error(r, "%s: required", err);
    }

    if (ctx->route == NGX_GOIM_API_ONLINE_TOP) {
        fmt = ngx_goim_api_int32(ctx, "limit", &limit, 1);
        if (fmt) {
            return ngx_goim_api_bind_error(r, fmt, "limit");
        }

        if (ngx_goim_api_rooms(r->pool, &names, &counts, &nrooms) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        top = ngx_palloc(r->pool, (nrooms + 1) * sizeof(ngx_goim_api_top_t));
        if (top == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = 0;

        for (i = 0; i < nrooms; i++) {
            name = names[i].data;
            len = names[i].len;

            /* goim: strings.HasPrefix(key, type), id = url host */
            if (len < type.len || ngx_strncmp(name, type.data, type.len) != 0)
            {
                continue;
            }

            /* members' own rooms (goim_history members=on) are not rooms */
            if (ngx_goim_registry_is_member_room(name, len)) {
                continue;
            }

            host = ngx_strlcasestrn(name, name + len, (u_char *) "://",
                                    3 - 1);
            if (host == NULL) {
                continue;
            }

            host += 3;
            top[n].room.data = host;
            top[n].room.len = (name + len) - host;
            top[n].count = counts[i];
            n++;
        }

        ngx_qsort(top, n, sizeof(ngx_goim_api_top_t), ngx_goim_api_top_cmp);

        if (limit > 0 && n > (ngx_uint_t) limit) {
            n = limit;
        }

        g = yajl_gen_alloc(NULL);
        if (g == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        yajl_gen_array_open(g);

        for (i = 0; i < n; i++) {
            yajl_gen_map_open(g);
            yajl_gen_string(g, (u_char *) "room_id", 7);
            yajl_gen_string(g, top[i].room.data, top[i].room.len);
            yajl_gen_string(g, (u_char *) "count", 5);
            yajl_gen_integer(g, top[i].count);
            yajl_gen_map_close(g);
        }

        yajl_gen_array_close(g);

        rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);
        yajl_gen_free(g);
        return rc;
    }

    /* NGX_GOIM_API_ONLINE_ROOM */

    n = 0;

    for (i = 0; i < (ngx_uint_t) ctx->nparams; i++) {
        if (ngx_goim_api_is(&ctx->params[i], "rooms")) {
            n++;
        }
    }

    if (n == 0) {
        return ngx_goim_api_bind_error(r, "%s: required", "rooms");
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);

    for (i = 0; i < (ngx_uint_t) ctx->nparams; i++) {
        if (!ngx_goim_api_is(&ctx->params[i], "rooms")) {
            continue;
        }

        len = type.len + 3 + ctx->params[i].value_len;
        key.data = ngx_pnalloc(r->pool, len);
        if (key.data == NULL) {
            yajl_gen_free(g);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        key.len = ngx_sprintf(key.data, "%V://%*s", &type,
                              ctx->params[i].value_len,
                              ctx->params[i].value)
                  - key.data;

        count = ngx_goim_registry_online_count(key.data, key.len);

        yajl_gen_string(g, (u_char *) ctx->params[i].value,
                        ctx->params[i].value_len);
        yajl_gen_integer(g, count);
    }

    yajl_gen_map_close(g);

    rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);
    yajl_gen_free(g);

    return rc;
}


/*
 * The cluster's rooms from Redis (ngx_goim_online.c) and this node's
 * rooms that they do not know yet; without Redis, this node's rooms.
 */

static ngx_int_t
ngx_goim_api_rooms(ngx_pool_t *pool, ngx_str_t **names, ngx_uint_t **counts,
    ngx_uint_t *n)
{
    ngx_int_t    rc;
    ngx_str_t   *local, *all;
    ngx_uint_t   i, nlocal, nall, *lcounts, *acounts, count;

    rc = ngx_goim_registry_online_list(pool, &all, &acounts, &nall);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_goim_registry_room_list(pool, names, counts, n);
    }

    if (ngx_goim_registry_room_list(pool, &local, &lcounts, &nlocal)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    *names = ngx_palloc(pool, (nall + nlocal + 1) * sizeof(ngx_str_t));
    *counts = ngx_palloc(pool, (nall + nlocal + 1) * sizeof(ngx_uint_t));

    if (*names == NULL || *counts == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(*names, all, nall * sizeof(ngx_str_t));
    ngx_memcpy(*counts, acounts, nall * sizeof(ngx_uint_t));
    *n = nall;

    for (i = 0; i < nlocal; i++) {
        if (ngx_goim_registry_online_get(local[i].data, local[i].len, &count)
            == NGX_OK)
        {
            continue;
        }

        (*names)[*n] = local[i];
        (*counts)[*n] = lcounts[i];
        (*n)++;
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_goim_api_top_cmp(const void *a, const void *b)
{
    const ngx_goim_api_top_t  *x = a, *y = b;

    if (x->count != y->count) {
        return x->count < y->count ? 1 : -1;
    }

    return ngx_memn2cmp(x->room.data, y->room.data, x->room.len, y->room.len);
}
