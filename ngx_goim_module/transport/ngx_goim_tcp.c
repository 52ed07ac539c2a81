
/*
 * goim for nginx: the TCP comet.  "goim_tcp;" in a stream server
 * (entry/ngx_goim_stream_module.c) makes its connections goim
 * connections: a plain stream of goim packets.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_goim_transport.h"


static ngx_int_t ngx_goim_tcp_read(ngx_goim_channel_t *ch, u_char *p,
    size_t len, size_t *used);
static void ngx_goim_tcp_finalize(ngx_goim_channel_t *ch);


static const ngx_goim_transport_t  ngx_goim_tcp_transport = {
    ngx_goim_tcp_read,
    ngx_goim_tcp_finalize
};


void
ngx_goim_tcp_handler(ngx_stream_session_t *s)
{
    size_t               pre_len;
    u_char              *pre;
    ngx_connection_t    *c;
    ngx_goim_channel_t  *ch;

    c = s->connection;
    c->log->action = "serving goim";

    ch = ngx_goim_channel_create(c, NGX_GOIM_TCP, &ngx_goim_tcp_transport);
    if (ch == NULL) {
        ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }

    ch->session = s;
    ngx_stream_set_ctx(s, ch, ngx_stream_goim_module);

    /* bytes read ahead by the preread phase (ssl_preread and the like) */
    pre = NULL;
    pre_len = 0;

    if (c->buffer && c->buffer->last > c->buffer->pos) {
        pre = c->buffer->pos;
        pre_len = c->buffer->last - c->buffer->pos;
    }

    ngx_goim_channel_start(ch, pre, pre_len);
}


/*
 * Parses the packets in p[0..len); *used is what was consumed (an
 * incomplete packet stays for the next read).
 */

static ngx_int_t
ngx_goim_tcp_read(ngx_goim_channel_t *ch, u_char *p, size_t len,
    size_t *used)
{
    long           rc;
    size_t         off;
    goim_packet_t  pkt;

    off = 0;

    while (off < len && !ch->closing && !ch->auth_pending) {

        rc = goim_packet_parse(p + off, len - off, ch->conf->max_body, &pkt);

        if (rc == GOIM_PACKET_AGAIN) {
            break;
        }

        if (rc < 0) {
            ngx_goim_channel_fail(ch, NGX_LOG_INFO, 0,
                                  goim_packet_strerror(rc));
            break;
        }

        off += rc;

        if (ngx_goim_channel_packet(ch, &pkt) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    *used = ch->closing ? len : off;

    return NGX_OK;
}


static void
ngx_goim_tcp_finalize(ngx_goim_channel_t *ch)
{
    ngx_stream_finalize_session(ch->session, NGX_STREAM_OK);
}
