
/*
 * goim for nginx: the WebSocket comet.  "goim_websocket;" in a location
 * (entry/ngx_goim_http_module.c) upgrades the request (RFC 6455),
 * answers 101, then frees the request and drives the bare connection
 * with the channel's handlers: one goim packet per binary (or text)
 * message.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_transport.h"


#define NGX_HTTP_UPGRADE_REQUIRED  426


static ngx_int_t ngx_goim_ws_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *reason, const char *name, const char *value);
static ngx_int_t ngx_goim_ws_answer(ngx_http_request_t *r, ngx_uint_t status,
    const char *reason, const char *name, const char *value);
static ngx_table_elt_t *ngx_goim_ws_header(ngx_http_request_t *r,
    const char *name, size_t len);
static ngx_int_t ngx_goim_ws_add_header(ngx_http_request_t *r,
    const char *name, u_char *value, size_t len);
static void ngx_goim_ws_upgraded_handler(ngx_event_t *wev);
static void ngx_goim_ws_wait_handler(ngx_event_t *rev);
static void ngx_goim_ws_takeover(ngx_http_request_t *r);
static ngx_int_t ngx_goim_ws_read(ngx_goim_channel_t *ch, u_char *p,
    size_t len, size_t *used);
static void ngx_goim_ws_finalize(ngx_goim_channel_t *ch);
static ngx_int_t ngx_goim_ws_message(ngx_goim_channel_t *ch, u_char *p,
    size_t len);
static ngx_int_t ngx_goim_ws_control(ngx_goim_channel_t *ch,
    goim_ws_frame_t *f, u_char *p);


static const ngx_goim_transport_t  ngx_goim_ws_transport = {
    ngx_goim_ws_read,
    ngx_goim_ws_finalize
};


ngx_int_t
ngx_goim_ws_handler(ngx_http_request_t *r)
{
    u_char            *accept;
    ngx_int_t          rc;
    ngx_str_t          decoded, encoded;
    ngx_table_elt_t   *h, *key;
    u_char             raw[32];

    if (r != r->main) {
        return NGX_HTTP_NOT_ALLOWED;
    }

#if (NGX_HTTP_V2)
    if (r->stream) {
        return ngx_goim_ws_refuse(r, NGX_HTTP_BAD_REQUEST,
                                  "WebSocket over HTTP/2 is not supported",
                                  NULL, NULL);
    }
#endif

    if (r->method != NGX_HTTP_GET) {
        return ngx_goim_ws_refuse(r, NGX_HTTP_NOT_ALLOWED,
                                  "WebSocket upgrade needs GET",
                                  "Allow", "GET");
    }

    if (r->http_version < NGX_HTTP_VERSION_11) {
        return ngx_goim_ws_refuse(r, NGX_HTTP_BAD_REQUEST,
                                  "WebSocket upgrade needs HTTP/1.1",
                                  NULL, NULL);
    }

    h = r->headers_in.upgrade;

    if (h == NULL || h->value.len != 9
        || ngx_strncasecmp(h->value.data, (u_char *) "websocket", 9) != 0)
    {
        return ngx_goim_ws_refuse(r, NGX_HTTP_UPGRADE_REQUIRED,
                                  "no \"Upgrade: websocket\" header",
                                  "Upgrade", "websocket");
    }

    /* nginx 1.22 parses Connection into connection_type only */
    h = ngx_goim_ws_header(r, "Connection", 10);

    if (h == NULL
        || ngx_strcasestrn(h->value.data, "upgrade", 7 - 1) == NULL)
    {
        return ngx_goim_ws_refuse(r, NGX_HTTP_BAD_REQUEST,
                                  "no \"Connection: upgrade\" header",
                                  NULL, NULL);
    }

    h = ngx_goim_ws_header(r, "Sec-WebSocket-Version", 21);

    if (h == NULL || h->value.len != 2
        || ngx_strncmp(h->value.data, "13", 2) != 0)
    {
        return ngx_goim_ws_refuse(r, NGX_HTTP_UPGRADE_REQUIRED,
                                  "unsupported Sec-WebSocket-Version",
                                  "Sec-WebSocket-Version", "13");
    }

    key = ngx_goim_ws_header(r, "Sec-WebSocket-Key", 17);

    /* a base64-encoded 16-byte nonce (RFC 6455 4.1) */
    if (key == NULL || key->value.len != 24) {
        return ngx_goim_ws_refuse(r, NGX_HTTP_BAD_REQUEST,
                                  "invalid Sec-WebSocket-Key", NULL, NULL);
    }

    encoded = key->value;
    decoded.data = raw;

    if (ngx_decode_base64(&decoded, &encoded) != NGX_OK || decoded.len != 16)
    {
        return ngx_goim_ws_refuse(r, NGX_HTTP_BAD_REQUEST,
                                  "invalid Sec-WebSocket-Key", NULL, NULL);
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        return ngx_goim_ws_refuse(r, NGX_HTTP_BAD_REQUEST,
                                  "WebSocket upgrade with a request body",
                                  NULL, NULL);
    }

    rc = ngx_goim_client_admit(r->connection);

    if (rc == NGX_DECLINED) {
        /* logged by ngx_goim_client_admit(), once a second at most */
        r->keepalive = 0;
        return ngx_goim_ws_answer(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "too many client connections on this "
                                  "worker", NULL, NULL);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    accept = ngx_pnalloc(r->pool, GOIM_WS_ACCEPT_LEN);
    if (accept == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    goim_ws_accept_key(key->value.data, key->value.len, (char *) accept);

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;
    r->header_only = 1;
    r->keepalive = 0;

    if (ngx_goim_ws_add_header(r, "Upgrade", (u_char *) "websocket", 9)
        != NGX_OK
        || ngx_goim_ws_add_header(r, "Sec-WebSocket-Accept", accept,
                                  GOIM_WS_ACCEPT_LEN)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    /*
     * The request is taken over from a posted event of our own, once the
     * 101 left: freeing it here would free it under its own handler.
     */

    r->main->count++;

    r->connection->read->handler = ngx_goim_ws_wait_handler;
    r->connection->write->handler = ngx_goim_ws_upgraded_handler;
    ngx_post_event(r->connection->write, &ngx_posted_events);

    return NGX_DONE;
}


static ngx_int_t
ngx_goim_ws_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *reason, const char *name, const char *value)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "goim: WebSocket upgrade refused: %s", reason);

    return ngx_goim_ws_answer(r, status, reason, name, value);
}


/* the refusal: the status and the reason in a text/plain body */

static ngx_int_t
ngx_goim_ws_answer(ngx_http_request_t *r, ngx_uint_t status,
    const char *reason, const char *name, const char *value)
{
    size_t      len;
    ngx_buf_t  *b;

    static ngx_str_t  type = ngx_string("text/plain");

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (name
        && ngx_goim_ws_add_header(r, name, (u_char *) value,
                                  ngx_strlen(value))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(reason);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, reason, len);
    *b->last++ = '\n';
    b->last_buf = 1;
    b->last_in_chain = 1;

    if (status == NGX_HTTP_UPGRADE_REQUIRED) {
        /* nginx's header filter knows no reason phrase for 426 */
        ngx_str_set(&r->headers_out.status_line, "426 Upgrade Required");
    }

    return ngx_goim_http_send(r, status, &type, b);
}


static ngx_table_elt_t *
ngx_goim_ws_header(ngx_http_request_t *r, const char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


static ngx_int_t
ngx_goim_ws_add_header(ngx_http_request_t *r, const char *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


/* client bytes before the takeover stay in the socket until then */

static void
ngx_goim_ws_wait_handler(ngx_event_t *rev)
{
    /* rev->ready stays set: the channel reads once it took over */
}


static void
ngx_goim_ws_upgraded_handler(ngx_event_t *wev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    c = wev->data;
    r = c->data;

    if (wev->timedout) {
        c->timedout = 1;
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "goim: client timed out reading the 101 response");
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (r->out || c->buffered) {
        if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }

        if (r->out || c->buffered) {
            if (!wev->timer_set) {
                ngx_add_timer(wev, ngx_goim_get_conf((ngx_cycle_t *)
                                           ngx_cycle)->handshake_timeout);
            }

            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_finalize_request(r, NGX_ERROR);
            }

            return;
        }
    }

    ngx_goim_ws_takeover(r);
}


/*
 * Taking over the connection: keep bytes the client sent after its
 * headers, drop the request's timers, free the request (its access log
 * line is written then), then its header buffers, and go on with the
 * bare connection.
 */

static void
ngx_goim_ws_takeover(ngx_http_request_t *r)
{
    size_t                  pre_len;
    u_char                 *pre;
    ngx_buf_t              *b;
    ngx_chain_t            *cl, *ln;
    ngx_connection_t       *c;
    ngx_goim_channel_t     *ch;
    ngx_http_connection_t  *hc;

    c = r->connection;
    hc = r->http_connection;

    pre = NULL;
    pre_len = r->header_in->last - r->header_in->pos;

    if (pre_len) {
        pre = ngx_alloc(pre_len, c->log);
        if (pre == NULL) {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }

        ngx_memcpy(pre, r->header_in->pos, pre_len);
    }

    ch = ngx_goim_channel_create(c, NGX_GOIM_WS, &ngx_goim_ws_transport);
    if (ch == NULL) {
        if (pre) {
            ngx_free(pre);
        }

        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    /* first: the access log reads the request line from these buffers */
    ngx_http_free_request(r, 0);

    b = c->buffer;

    if (b && ngx_pfree(c->pool, b->start) == NGX_OK) {
        c->buffer = NULL;
    }

    for (cl = hc->free; cl; /* void */) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
        ngx_free_chain(c->pool, ln);
    }

    for (cl = hc->busy; cl; /* void */) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
        ngx_free_chain(c->pool, ln);
    }

    hc->free = NULL;
    hc->busy = NULL;
    hc->nbusy = 0;

    c->destroyed = 0;
    c->log->action = "serving goim";

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        ngx_ssl_free_buffer(c);
    }
#endif

    (void) ngx_tcp_nodelay(c);

    ngx_goim_channel_start(ch, pre, pre_len);

    if (pre) {
        ngx_free(pre);
    }
}


static void
ngx_goim_ws_finalize(ngx_goim_channel_t *ch)
{
    ngx_http_close_connection(ch->connection);
}


/*
 * Parses the frames in p[0..len); payloads are unmasked in place.  A
 * frame is handled once it is complete; *used is what was consumed.
 */

static ngx_int_t
ngx_goim_ws_read(ngx_goim_channel_t *ch, u_char *p, size_t len,
    size_t *used)
{
    long               rc;
    size_t             off, plen, n;
    u_char            *payload, *msg;
    goim_ws_frame_t    f;
    goim_ws_reader_t   saved;

    off = 0;

    while (off < len && !ch->closing && !ch->auth_pending) {

        saved = ch->ws;

        rc = goim_ws_read_frame(&ch->ws, p + off, len - off, &f);

        if (rc == GOIM_WS_AGAIN) {
            break;
        }

        if (rc < 0) {
            ngx_goim_channel_fail(ch, NGX_LOG_INFO,
                                  goim_ws_error_close_code(rc),
                                  goim_ws_strerror(rc));
            break;
        }

        if (f.payload_len > len - off - rc) {
            /* the reader checked the size: a whole frame fits later */
            ch->ws = saved;
            break;
        }

        plen = (size_t) f.payload_len;
        payload = p + off + rc;
        off += rc + plen;

        goim_ws_unmask(payload, plen, f.mask, 0);

        if (f.opcode >= GOIM_WS_OP_CLOSE) {
            if (ngx_goim_ws_control(ch, &f, payload) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (f.fin && f.opcode != GOIM_WS_OP_CONTINUATION) {
            if (ngx_goim_ws_message(ch, payload, plen) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        /* a fragment: joined in a buffer bounded by the reader's limit */

        n = ch->ws_msg_len + plen;

        msg = ngx_alloc(n ? n : 1, ch->connection->log);
        if (msg == NULL) {
            return NGX_ERROR;
        }

        if (ch->ws_msg) {
            ngx_memcpy(msg, ch->ws_msg, ch->ws_msg_len);
            ngx_free(ch->ws_msg);
        }

        ngx_memcpy(msg + ch->ws_msg_len, payload, plen);
        ch->ws_msg = msg;
        ch->ws_msg_len = n;

        if (f.fin) {
            rc = ngx_goim_ws_message(ch, ch->ws_msg, ch->ws_msg_len);

            ngx_free(ch->ws_msg);
            ch->ws_msg = NULL;
            ch->ws_msg_len = 0;

            if (rc != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    *used = ch->closing ? len : off;

    return NGX_OK;
}


/* one message carries one goim packet; bytes after packLen are ignored */

static ngx_int_t
ngx_goim_ws_message(ngx_goim_channel_t *ch, u_char *p, size_t len)
{
    long           rc;
    goim_packet_t  pkt;

    rc = goim_packet_parse_exact(p, len, ch->conf->max_body, &pkt);

    if (rc < 0 || rc == GOIM_PACKET_AGAIN) {
        if (rc == GOIM_PACKET_AGAIN) {
            rc = GOIM_PACKET_ERR_TRUNCATED;
        }

        ngx_goim_channel_fail(ch, NGX_LOG_INFO,
                              rc == GOIM_PACKET_ERR_TOO_LONG
                              ? GOIM_WS_CLOSE_TOO_BIG : GOIM_WS_CLOSE_PROTOCOL,
                              goim_packet_strerror(rc));
        return NGX_OK;
    }

    return ngx_goim_channel_packet(ch, &pkt);
}


static ngx_int_t
ngx_goim_ws_control(ngx_goim_channel_t *ch, goim_ws_frame_t *f, u_char *p)
{
    u_char           hdr[GOIM_WS_MAX_HEADER];
    size_t           hlen, plen;
    uint16_t         code;
    ngx_goim_msg_t  *msg;

    plen = (size_t) f->payload_len;

    switch (f->opcode) {

    case GOIM_WS_OP_PING:
        hlen = goim_ws_write_header(hdr, GOIM_WS_OP_PONG, plen);

        msg = ngx_goim_msg_alloc(hlen + plen);
        if (msg == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(msg->data, hdr, hlen);
        ngx_memcpy(msg->data + hlen, p, plen);

        (void) ngx_goim_channel_queue(ch, msg, 1);
        ngx_goim_msg_release(msg);

        return NGX_OK;

    case GOIM_WS_OP_CLOSE:
        if (goim_ws_parse_close(p, plen, &code) != 0) {

            /*
             * a valid code with a reason that is not UTF-8 is invalid
             * payload data (RFC 6455 7.4.1, 8.1): 1007, not 1002
             */

            if (plen > 2 && goim_ws_parse_close(p, 2, &code) == 0) {
                ngx_goim_channel_fail(ch, NGX_LOG_INFO,
                                      GOIM_WS_CLOSE_INVALID_DATA,
                                      "close reason is not UTF-8");
                return NGX_OK;
            }

            ngx_goim_channel_fail(ch, NGX_LOG_INFO, GOIM_WS_CLOSE_PROTOCOL,
                                  "invalid close frame");
            return NGX_OK;
        }

        /* answer Close with Close (RFC 6455 5.5.1), echoing the code */
        ngx_goim_channel_fail(ch, NGX_LOG_INFO,
                              code == GOIM_WS_CLOSE_NO_STATUS
                              ? GOIM_WS_CLOSE_NORMAL : code,
                              "client sent close");
        return NGX_OK;

    default: /* pong */
        return NGX_OK;
    }
}
