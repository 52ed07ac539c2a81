
/*
 * goim for nginx: what the API's routes read from a request, bound as
 * goim's gin does: the query string's parameters (and a form body's),
 * typed values, the message body in one piece.
 */


#include "ngx_goim_api.h"


static ngx_uint_t ngx_goim_api_unique(void *elts, ngx_uint_t n, size_t size,
    int (*cmp)(const void *, const void *));
static int ngx_libc_cdecl ngx_goim_api_key_cmp(const void *a,
    const void *b);
static int ngx_libc_cdecl ngx_goim_api_mid_cmp(const void *a,
    const void *b);


/*
 * NGX_DECLINED with *what set when the query string cannot be bound: the
 * caller answers, after it discarded the body (answering here and going
 * on would send a second response).
 */

ngx_int_t
ngx_goim_api_parse(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    const char **what)
{
    int    n;
    char  *buf;

    ctx->params = ngx_palloc(r->pool, NGX_GOIM_API_MAX_PARAMS
                                      * sizeof(goim_query_param_t));
    buf = ngx_pnalloc(r->pool, r->args.len + 1);

    if (ctx->params == NULL || buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = goim_query_parse((const char *) r->args.data, r->args.len, buf,
                         ctx->params, NGX_GOIM_API_MAX_PARAMS);

    if (n == -1) {
        *what = "invalid percent-encoding";
        return NGX_DECLINED;
    }

    if (n < 0) {
        *what = "too many parameters";
        return NGX_DECLINED;
    }

    ctx->nparams = n;

    return NGX_OK;
}


/*
 * The message body in one piece; NGX_DECLINED when it is over the limit
 * (the caller answers 413: answering here and going on would push it and
 * send a second response).
 */

ngx_int_t
ngx_goim_api_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (r->request_body == NULL) {
        return NGX_OK;
    }

    if (r->request_body->temp_file) {
        return NGX_DECLINED;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    /*
     * a chunked body has no Content-Length to check up front, and one
     * read ahead with the headers never reached client_body_buffer_size
     */

    if ((off_t) len > ngx_goim_api_body_limit(r)) {
        return NGX_DECLINED;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        b = cl->buf;
        body->data = b->pos;
        body->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body->data = p;
    body->len = len;

    for ( /* void */ ; cl; cl = cl->next) {
        if (cl->buf->last != cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    return NGX_OK;
}


off_t
ngx_goim_api_body_limit(ngx_http_request_t *r)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    return ngx_min(clcf->client_max_body_size,
                   (off_t) clcf->client_body_buffer_size);
}


ngx_int_t
ngx_goim_api_too_large(ngx_http_request_t *r)
{
    return ngx_goim_api_reply(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, -413,
                              "message larger than client_body_buffer_size",
                              NULL);
}


/*
 * Targets in the body: 1000 keys do not fit in a request line.  goim
 * sends the message as the raw body and the targets in the query string,
 * so the body is read as a form only when the query string names no
 * targets and the body says it is a form: then keys (or mids) and any
 * other parameter come from it after the query string's, and the message
 * is its "msg" (a request that did this before was refused for want of
 * targets).  NGX_OK, or NGX_DECLINED when it answered (*answer: the
 * code to finalize the request with).
 */

ngx_int_t
ngx_goim_api_form(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx,
    const char *targets, ngx_str_t *body, ngx_int_t *answer)
{
    int               n, i, first;
    char             *buf;
    size_t            len;
    ngx_str_t        *type;
    const char       *msg;

    static ngx_str_t  form = ngx_string("application/x-www-form-urlencoded");

    for (i = 0; i < ctx->nparams; i++) {
        if (ngx_goim_api_is(&ctx->params[i], targets)
            && ctx->params[i].value_len)
        {
            return NGX_OK;
        }
    }

    if (r->headers_in.content_type == NULL) {
        return NGX_OK;
    }

    type = &r->headers_in.content_type->value;

    if (type->len < form.len
        || ngx_strncasecmp(type->data, form.data, form.len) != 0
        || (type->len > form.len && type->data[form.len] != ';'
            && type->data[form.len] != ' '))
    {
        return NGX_OK;
    }

    buf = ngx_pnalloc(r->pool, body->len + 1);
    if (buf == NULL) {
        *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    first = ctx->nparams;

    n = goim_query_parse((const char *) body->data, body->len, buf,
                         ctx->params + first,
                         NGX_GOIM_API_MAX_PARAMS - first);

    if (n == -1) {
        *answer = ngx_goim_api_bind_error(r, "%s in the form body",
                                          "invalid percent-encoding");
        return NGX_DECLINED;
    }

    if (n < 0) {
        *answer = ngx_goim_api_bind_error(r, "%s in the query string and "
                                          "the form body",
                                          "too many parameters");
        return NGX_DECLINED;
    }

    ctx->nparams += n;

    msg = goim_query_get(ctx->params + first, n, "msg", &len);

    body->data = (u_char *) msg;
    body->len = msg ? len : 0;

    return NGX_OK;
}


ngx_uint_t
ngx_goim_api_is(goim_query_param_t *param, const char *name)
{
    size_t  len;

    len = ngx_strlen(name);

    return param->name_len == len
           && ngx_strncmp(param->name, name, len) == 0;
}


const char *
ngx_goim_api_str(ngx_goim_api_ctx_t *ctx, const char *name, ngx_str_t *value)
{
    size_t       len;
    const char  *v;

    v = goim_query_get(ctx->params, ctx->nparams, name, &len);

    if (v == NULL || len == 0) {
        return name;
    }

    value->data = (u_char *) v;
    value->len = len;

    return NULL;
}


/*
 * gin's binding: a malformed integer fails to bind; "required" rejects
 * an absent parameter and 0.  Returns NULL, or the error's format.
 */

const char *
ngx_goim_api_int32(ngx_goim_api_ctx_t *ctx, const char *name,
    int32_t *value, ngx_uint_t required)
{
    size_t       len;
    const char  *v;

    *value = 0;

    v = goim_query_get(ctx->params, ctx->nparams, name, &len);

    if (v == NULL || len == 0) {
        return required ? "%s: required" : NULL;
    }

    if (goim_parse_int32(v, len, value) != 0) {
        return "%s: invalid integer (int32)";
    }

    if (required && *value == 0) {
        return "%s: required, not 0";
    }

    return NULL;
}


/* sorts the targets and drops repeated ones; returns how many remain */

static ngx_uint_t
ngx_goim_api_unique(void *elts, ngx_uint_t n, size_t size,
    int (*cmp)(const void *, const void *))
{
    u_char      *p;
    ngx_uint_t   i, k;

    if (n < 2) {
        return n;
    }

    p = elts;

    ngx_qsort(p, n, size, cmp);

    for (i = 1, k = 1; i < n; i++) {
        if (cmp(p + (k - 1) * size, p + i * size) != 0) {
            if (k != i) {
                ngx_memcpy(p + k * size, p + i * size, size);
            }

            k++;
        }
    }

    return k;
}


static int ngx_libc_cdecl
ngx_goim_api_key_cmp(const void *a, const void *b)
{
    const ngx_str_t  *x = a, *y = b;

    return ngx_memn2cmp(x->data, y->data, x->len, y->len);
}


static int ngx_libc_cdecl
ngx_goim_api_mid_cmp(const void *a, const void *b)
{
    const int64_t  *x = a, *y = b;

    return (*x > *y) - (*x < *y);
}


/* a target given twice is still pushed to once */

ngx_uint_t
ngx_goim_api_unique_keys(ngx_str_t *keys, ngx_uint_t n)
{
    return ngx_goim_api_unique(keys, n, sizeof(ngx_str_t),
                               ngx_goim_api_key_cmp);
}


ngx_uint_t
ngx_goim_api_unique_mids(int64_t *mids, ngx_uint_t n)
{
    return ngx_goim_api_unique(mids, n, sizeof(int64_t),
                               ngx_goim_api_mid_cmp);
}
