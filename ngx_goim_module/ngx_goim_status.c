
/*
 * goim for nginx: "goim_status;" answers the node's metrics in
 * Prometheus text format (all workers, from the shared registry).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim.h"


ngx_int_t
ngx_http_goim_status_handler(ngx_http_request_t *r)
{
    ngx_int_t   rc;
    ngx_str_t   text;
    ngx_buf_t  *b;

    static ngx_str_t  type =
        ngx_string("text/plain; version=0.0.4; charset=utf-8");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_goim_shm_status(r->pool, &text) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = text.data;
    b->last = text.data + text.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    return ngx_http_goim_send(r, NGX_HTTP_OK, &type, b);
}
