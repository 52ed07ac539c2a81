
/*
 * goim for nginx: the API's answers, in goim's envelope (docs/PROTOCOL.md
 * 2.1): {"code":<code>,"message":"<message>"[,"data":<data>]}, and the
 * answers every route shares.
 */


#include "ngx_goim_api.h"


ngx_int_t
ngx_goim_api_reply(ngx_http_request_t *r, ngx_uint_t status, ngx_int_t code,
    const char *message, yajl_gen g)
{
    u_char                *p;
    size_t                 len, mlen, dlen;
    ngx_buf_t             *b;
    const unsigned char   *data;

    static ngx_str_t  type = ngx_string("application/json");

    data = NULL;
    dlen = 0;

    if (g && yajl_gen_get_buf(g, &data, &dlen) != yajl_gen_status_ok) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mlen = ngx_strlen(message);

    len = sizeof("{\"code\":,\"message\":\"\",\"data\":}\n") - 1
          + NGX_INT_T_LEN + mlen
          + ngx_escape_json(NULL, (u_char *) message, mlen) + dlen;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"code\":%i,\"message\":\"", code);
    p = (u_char *) ngx_escape_json(p, (u_char *) message, mlen);
    *p++ = '"';

    if (data) {
        p = ngx_cpymem(p, ",\"data\":", sizeof(",\"data\":") - 1);
        p = ngx_cpymem(p, data, dlen);
    }

    *p++ = '}';
    *p++ = '\n';

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    if (code != 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "goim: API %V answered %i: %s", &r->uri, code, message);
    }

    return ngx_goim_http_send(r, status, &type, b);
}


/*
 * A full inbox or an exhausted zone is an error, never a silent success;
 * workers that had room may have delivered already.
 */

ngx_int_t
ngx_goim_api_pushed(ngx_http_request_t *r, ngx_int_t rc)
{
    switch (rc) {

    case NGX_OK:
        return ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", NULL);

    case NGX_BUSY:
        return ngx_goim_api_reply(r, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                  "a worker's inbox is full, push refused",
                                  NULL);

    default:
        return ngx_goim_api_reply(r, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                  "shared zone exhausted, push refused", NULL);
    }
}


ngx_int_t
ngx_goim_api_bind_error(ngx_http_request_t *r, const char *fmt,
    const char *name)
{
    u_char  msg[128];

    ngx_snprintf(msg, sizeof(msg) - 1, fmt, name)[0] = '\0';

    return ngx_goim_api_reply(r, NGX_HTTP_BAD_REQUEST, -400,
                              (const char *) msg, NULL);
}


/* goim answers -500 with the error; ours names Redis */

ngx_int_t
ngx_goim_api_redis_error(ngx_http_request_t *r, const char *err)
{
    u_char  msg[300];

    ngx_snprintf(msg, sizeof(msg) - 1, "redis: %s%Z", err);

    return ngx_goim_api_reply(r, NGX_HTTP_OK, -500, (const char *) msg,
                              NULL);
}


/* {"conn_count":<conns>,"ip_count":<ips>}, of a node or of the cluster */

void
ngx_goim_api_totals(yajl_gen g, ngx_uint_t conns, ngx_uint_t ips)
{
    yajl_gen_map_open(g);
    yajl_gen_string(g, (u_char *) "conn_count", 10);
    yajl_gen_integer(g, conns);
    yajl_gen_string(g, (u_char *) "ip_count", 8);
    yajl_gen_integer(g, ips);
    yajl_gen_map_close(g);
}
