
/*
 * goim for nginx: one client connection ("channel") after its transport
 * is set up.  Reads into the worker's scratch buffer and keeps only an
 * incomplete packet between reads; handles the goim operations; queues
 * shared messages and writes them with one writev per event-loop turn.
 */


#include "ngx_goim.h"


static void ngx_goim_channel_read_handler(ngx_event_t *rev);
static void ngx_goim_channel_write_handler(ngx_event_t *wev);
static void ngx_goim_writes_handler(ngx_event_t *ev);
static ngx_int_t ngx_goim_channel_flush(ngx_goim_channel_t *ch);
static ngx_int_t ngx_goim_channel_keep(ngx_goim_channel_t *ch, u_char *p,
    size_t len);
static ngx_goim_link_t *ngx_goim_link_get(void);
static void ngx_goim_link_put(ngx_goim_link_t *l);
static ngx_int_t ngx_goim_channel_change_room(ngx_goim_channel_t *ch,
    goim_packet_t *pkt);
static void ngx_goim_channel_sub(ngx_goim_channel_t *ch, goim_packet_t *pkt,
    ngx_uint_t add);
static void ngx_goim_client_release(void *data);


/* at most this many sockets are written before the event loop runs again */
#define NGX_GOIM_WRITE_SLICE  512


/* connections with output to write, in the order they got it */
static ngx_queue_t  ngx_goim_writes = { &ngx_goim_writes, &ngx_goim_writes };
static ngx_event_t  ngx_goim_writes_ev;


/*
 * goim_max_clients: a client connection counts against the worker's bound
 * from its accept (TCP) or its upgrade request (WebSocket) until it
 * closes, authenticated or not.  Above the bound it is refused, so that
 * the worker keeps connections for the API, internal pushes, the status
 * page, Redis and Kafka.  NGX_DECLINED: refused, counted, and logged at
 * most once a second with the number refused since the last line.
 */

ngx_int_t
ngx_goim_client_admit(ngx_connection_t *c)
{
    ngx_goim_conf_t     *gcf;
    ngx_pool_cleanup_t  *cln;
    ngx_goim_worker_t   *w = &ngx_goim_worker;

    static time_t      logged;
    static ngx_uint_t  unlogged;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    if (w->nclients >= gcf->max_clients) {
        w->stats->clients_refused++;
        unlogged++;

        if (logged != ngx_time()) {
            logged = ngx_time();
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "goim: %ui client connection(s) refused since the "
                          "last report: the worker holds %ui, the bound of "
                          "\"goim_max_clients\"", unlogged, w->nclients);
            unlogged = 0;
        }

        return NGX_DECLINED;
    }

    /* released when the connection's pool goes, whatever closes it */
    cln = ngx_pool_cleanup_add(c->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_goim_client_release;
    cln->data = NULL;

    w->nclients++;

    return NGX_OK;
}


static void
ngx_goim_client_release(void *data)
{
    ngx_goim_worker.nclients--;
}


ngx_goim_channel_t *
ngx_goim_channel_create(ngx_connection_t *c, ngx_uint_t transport)
{
    ngx_goim_channel_t  *ch;

    ch = ngx_pcalloc(c->pool, sizeof(ngx_goim_channel_t));
    if (ch == NULL) {
        return NULL;
    }

    ch->connection = c;
    ch->conf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);
    ch->transport = transport;
    ch->out_last = &ch->out;
    ngx_queue_init(&ch->room_link);
    ngx_queue_init(&ch->mid_link);
    ngx_queue_init(&ch->all.queue);

    /* a goim packet travels in one WebSocket message */
    goim_ws_reader_init(&ch->ws, GOIM_HEADER_LEN + ch->conf->max_body,
                        100, 1);

    ngx_goim_worker.nconnections++;
    ngx_goim_worker.stats->conns[transport]++;

    return ch;
}


/*
 * Takes over the connection: our handlers from now on, the handshake
 * timer armed, and bytes the client already sent (pre) processed.
 */

void
ngx_goim_channel_start(ngx_goim_channel_t *ch, u_char *pre, size_t pre_len)
{
    ngx_connection_t  *c;

    c = ch->connection;
    c->data = ch;
    c->read->handler = ngx_goim_channel_read_handler;
    c->write->handler = ngx_goim_channel_write_handler;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    ngx_add_timer(c->read, ch->conf->handshake_timeout);

    if (pre_len && ngx_goim_channel_keep(ch, pre, pre_len) != NGX_OK) {
        ngx_goim_channel_close(ch, "out of memory");
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_goim_channel_close(ch, "read event failed");
        return;
    }

    if (pre_len || c->read->ready) {
        ngx_post_event(c->read, &ngx_posted_events);
    }
}


/* continue reading after an asynchronous step (auth) finished */

void
ngx_goim_channel_resume(ngx_goim_channel_t *ch)
{
    ngx_post_event(ch->connection->read, &ngx_posted_events);
}


static ngx_int_t
ngx_goim_channel_keep(ngx_goim_channel_t *ch, u_char *p, size_t len)
{
    ch->partial = ngx_alloc(len, ch->connection->log);
    if (ch->partial == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ch->partial, p, len);
    ch->partial_len = len;

    return NGX_OK;
}


static void
ngx_goim_channel_read_handler(ngx_event_t *rev)
{
    size_t               total, used, room;
    ssize_t              n;
    u_char              *buf;
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_goim_channel_t  *ch;
    ngx_goim_worker_t   *w = &ngx_goim_worker;

    c = rev->data;
    ch = c->data;

    if (c->close) {
        /* worker_shutdown_timeout expired */
        ngx_goim_channel_close(ch, "worker shutting down");
        return;
    }

    if (rev->timedout) {
        c->timedout = 1;
        ngx_goim_channel_close(ch, ch->closing ? "close timed out"
                                   : ch->authed ? "heartbeat timed out"
                                   : "handshake timed out");
        return;
    }

    if (ch->auth_pending) {
        /* resumed by ngx_goim_channel_resume() */
        return;
    }

    buf = w->scratch;

    for ( ;; ) {

        total = 0;

        if (ch->partial) {
            ngx_memcpy(buf, ch->partial, ch->partial_len);
            total = ch->partial_len;
            ngx_free(ch->partial);
            ch->partial = NULL;
            ch->partial_len = 0;
        }

        room = w->scratch_size - total;
        n = 0;

        if (rev->ready) {
            n = c->recv(c, buf + total, room);

            if (n == 0 || n == NGX_ERROR) {
                ngx_goim_channel_close(ch, n == 0 ? "client closed"
                                                  : "read failed");
                return;
            }

            if (n == NGX_AGAIN) {
                n = 0;
            }

            total += n;
        }

        if (total == 0) {
            break;
        }

        if (ch->closing) {
            /* draining our output: the client's input no longer matters */
            used = total;

        } else {
            if (ch->transport == NGX_GOIM_TCP) {
                rc = ngx_goim_tcp_read(ch, buf, total, &used);

            } else {
                rc = ngx_goim_ws_read(ch, buf, total, &used);
            }

            if (rc == NGX_ERROR) {
                ngx_goim_channel_close(ch, "out of memory");
                return;
            }
        }

        if (used < total
            && ngx_goim_channel_keep(ch, buf + used, total - used) != NGX_OK)
        {
            ngx_goim_channel_close(ch, "out of memory");
            return;
        }

        if (ch->auth_pending || n == 0 || !rev->ready) {
            break;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_goim_channel_close(ch, "read event failed");
    }
}


/*
 * Processes one client packet (GOIM-SPEC 1.2).  Returns NGX_ERROR only
 * when memory ran out; protocol failures go through channel_fail().
 */

ngx_int_t
ngx_goim_channel_packet(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    uint32_t           online;
    u_char             body[4];
    ngx_connection_t  *c;

    c = ch->connection;

    if (!ch->authed) {
        if (pkt->op != GOIM_OP_AUTH) {
            ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                           "goim: operation %D before auth ignored", pkt->op);
            return NGX_OK;
        }

        return ngx_goim_auth(ch, pkt);
    }

    switch (pkt->op) {

    case GOIM_OP_HEARTBEAT:
        ngx_add_timer(c->read, ch->conf->heartbeat * ch->conf->heartbeat_max);

        if (ch->session_renew
            && ngx_current_msec - ch->session_last > ch->session_renew)
        {
            /* goim renews the Redis session on a client heartbeat */
            ngx_goim_session_renew(ch);
        }

        if (ch->room) {
            ch->last_online = ngx_goim_room_online(ch->room);
        }

        online = ch->last_online;
        goim_put_u32(body, online);

        return ngx_goim_channel_reply(ch, pkt->ver, GOIM_OP_HEARTBEAT_REPLY,
                                      pkt->seq, body, 4);

    case GOIM_OP_CHANGE_ROOM:
        if (ngx_goim_channel_change_room(ch, pkt) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_goim_channel_reply(ch, pkt->ver, GOIM_OP_CHANGE_ROOM_REPLY,
                                      pkt->seq, (u_char *) pkt->body,
                                      pkt->body_len);

    case GOIM_OP_SUB:
    case GOIM_OP_UNSUB:
        ngx_goim_channel_sub(ch, pkt, pkt->op == GOIM_OP_SUB);

        return ngx_goim_channel_reply(ch, pkt->ver, pkt->op + 1, pkt->seq,
                                      (u_char *) pkt->body, pkt->body_len);

    case GOIM_OP_RAW:
        if (ch->transport == NGX_GOIM_TCP) {
            /* goim writes an OP_RAW echo on TCP as its (empty) body */
            return NGX_OK;
        }

        /* fall through */

    default:
        /* goim hands other ops to logic's Receive and echoes them */
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, c->log, 0,
                       "goim: received operation %D, %uz bytes",
                       pkt->op, pkt->body_len);

        return ngx_goim_channel_reply(ch, pkt->ver, pkt->op, pkt->seq,
                                      NULL, 0);
    }
}


static ngx_int_t
ngx_goim_channel_change_room(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    size_t   i;

    if (pkt->body_len > NGX_GOIM_MAX_ROOM) {
        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim: change room refused: room id longer than %d",
                      NGX_GOIM_MAX_ROOM);
        return NGX_OK;
    }

    for (i = 0; i < pkt->body_len; i++) {
        if (pkt->body[i] < 0x20 || pkt->body[i] == 0x7f) {
            ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                          "goim: change room refused: control character "
                          "in room id");
            return NGX_OK;
        }
    }

    if (ch->room
        && ch->room->sn.str.len == pkt->body_len
        && ngx_memcmp(ch->room->sn.str.data, pkt->body, pkt->body_len) == 0)
    {
        return NGX_OK;
    }

    ngx_goim_room_leave(ch);

    if (pkt->body_len == 0) {
        return NGX_OK;
    }

    return ngx_goim_room_join(ch, (u_char *) pkt->body, pkt->body_len);
}


static void
ngx_goim_channel_sub(ngx_goim_channel_t *ch, goim_packet_t *pkt,
    ngx_uint_t add)
{
    int32_t      ops[NGX_GOIM_MAX_WATCH], *watch;
    ngx_uint_t   n, i, j;

    if (ngx_goim_parse_ops((u_char *) pkt->body, pkt->body_len, ops,
                           NGX_GOIM_MAX_WATCH, &n)
        != NGX_OK)
    {
        /* goim ignores the whole list on a parse error */
        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim: invalid operation list in %s ignored",
                      add ? "sub" : "unsub");
        return;
    }

    for (i = 0; i < n; i++) {

        for (j = 0; j < ch->nwatch; j++) {
            if (ch->watch[j] == ops[i]) {
                break;
            }
        }

        if (!add) {
            if (j < ch->nwatch) {
                ch->watch[j] = ch->watch[--ch->nwatch];
            }

            continue;
        }

        if (j < ch->nwatch) {
            continue;
        }

        if (ch->nwatch == NGX_GOIM_MAX_WATCH) {
            ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                          "goim: more than %d watched operations, "
                          "operation %D ignored", NGX_GOIM_MAX_WATCH, ops[i]);
            continue;
        }

        watch = realloc(ch->watch, (ch->nwatch + 1) * sizeof(int32_t));
        if (watch == NULL) {
            continue;
        }

        ch->watch = watch;
        ch->watch[ch->nwatch++] = ops[i];
    }
}


ngx_int_t
ngx_goim_channel_watches(ngx_goim_channel_t *ch, int32_t op)
{
    ngx_uint_t  i;

    for (i = 0; i < ch->nwatch; i++) {
        if (ch->watch[i] == op) {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_goim_channel_reply(ngx_goim_channel_t *ch, int32_t ver, int32_t op,
    int32_t seq, u_char *body, size_t len)
{
    ngx_int_t        rc;
    ngx_goim_msg_t  *msg;

    msg = ngx_goim_msg_packet(ch->transport, ver, op, seq, body, len);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_goim_channel_queue(ch, msg, 1);

    ngx_goim_msg_release(msg);

    return rc;
}


/* a server push: dropped (and counted) when the queue is full */

ngx_int_t
ngx_goim_channel_push(ngx_goim_channel_t *ch, ngx_goim_msg_t *msg)
{
    if (ch->closing || ch->auth_pending) {
        /* nothing before the auth reply: goim registers after Connect */
        return NGX_DECLINED;
    }

    if (ch->out_pushes >= ch->conf->queue_packets
        || ch->out_bytes + msg->len > ch->conf->queue_bytes)
    {
        ch->dropped++;
        ngx_goim_worker.stats->drop_queue_full++;

        if ((ch->dropped & (ch->dropped - 1)) == 0) {
            /* log the 1st, 2nd, 4th, 8th... drop of a connection */
            ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                          "goim: send queue full (%ui packets, %uz bytes), "
                          "%ui pushes dropped", ch->out_pushes,
                          ch->out_bytes, ch->dropped);
        }

        return NGX_DECLINED;
    }

    return ngx_goim_channel_queue(ch, msg, 0);
}


ngx_int_t
ngx_goim_channel_queue(ngx_goim_channel_t *ch, ngx_goim_msg_t *msg,
    ngx_uint_t reply)
{
    ngx_goim_link_t  *l;

    /* a closing channel's last frame (WebSocket Close) always goes */
    if (reply
        && !ch->closing
        && ch->out_replies >= NGX_GOIM_REPLY_FACTOR * ch->conf->queue_packets)
    {
        ngx_goim_channel_fail(ch, NGX_LOG_INFO, GOIM_WS_CLOSE_POLICY,
                              "client does not read its replies");
        return NGX_OK;
    }

    l = ngx_goim_link_get();
    if (l == NULL) {
        return NGX_ERROR;
    }

    l->msg = msg;
    l->reply = reply;
    msg->refs++;

    *ch->out_last = l;
    ch->out_last = &l->next;
    ch->out_bytes += msg->len;

    if (reply) {
        ch->out_replies++;

    } else {
        ch->out_pushes++;
    }

    ngx_goim_channel_post_write(ch);

    return NGX_OK;
}


/*
 * Writes are never made inline: everything queued in this event-loop
 * turn leaves together, from the worker's list of connections to write.
 * A room's fan-out to thousands of sockets goes in slices, with the
 * event loop in between, so that new pushes, other workers' messages
 * and timers are not held up for the whole fan-out.
 */

void
ngx_goim_channel_post_write(ngx_goim_channel_t *ch)
{
    ngx_event_t  *wev, *ev;

    wev = ch->connection->write;

    if (!wev->ready || wev->posted) {
        return;
    }

    ngx_post_event(wev, &ngx_goim_writes);

    ev = &ngx_goim_writes_ev;

    if (!ev->posted) {
        if (ev->handler == NULL) {
            ev->handler = ngx_goim_writes_handler;
            ev->log = ngx_cycle->log;
        }

        ngx_post_event(ev, &ngx_posted_events);
    }
}


static void
ngx_goim_writes_handler(ngx_event_t *ev)
{
    ngx_uint_t    n;
    ngx_queue_t  *q;
    ngx_event_t  *wev;

    for (n = 0; n < NGX_GOIM_WRITE_SLICE; n++) {

        if (ngx_queue_empty(&ngx_goim_writes)) {
            return;
        }

        q = ngx_queue_head(&ngx_goim_writes);
        wev = ngx_queue_data(q, ngx_event_t, queue);

        ngx_delete_posted_event(wev);

        wev->handler(wev);
    }

    if (!ngx_queue_empty(&ngx_goim_writes)) {
        /* the rest after the event loop's next turn */
        ngx_post_event(ev, &ngx_posted_next_events);
    }
}


static void
ngx_goim_channel_write_handler(ngx_event_t *wev)
{
    ngx_connection_t    *c;
    ngx_goim_channel_t  *ch;

    c = wev->data;
    ch = c->data;

    if (ngx_goim_channel_flush(ch) != NGX_OK) {
        c->error = 1;
        ngx_goim_channel_close(ch, "write failed");
        return;
    }

    if (ch->out == NULL && ch->closing) {
        ngx_goim_channel_close(ch, ch->close_reason);
    }
}


static ngx_int_t
ngx_goim_channel_flush(ngx_goim_channel_t *ch)
{
    size_t              sent, size;
    ssize_t             n;
    ngx_err_t           err;
    ngx_uint_t          niov;
    struct iovec        iov[NGX_GOIM_IOV];
    ngx_goim_link_t    *l;
    ngx_connection_t   *c;
    ngx_goim_worker_t  *w = &ngx_goim_worker;

    c = ch->connection;

    while (ch->out && c->write->ready) {

        niov = 0;
        size = 0;

        for (l = ch->out; l && niov < NGX_GOIM_IOV; l = l->next) {
            iov[niov].iov_base = l->msg->data;
            iov[niov].iov_len = l->msg->len;

            if (niov == 0) {
                iov[0].iov_base = l->msg->data + ch->out_sent;
                iov[0].iov_len -= ch->out_sent;
            }

            size += iov[niov].iov_len;
            niov++;
        }

        if (c->ssl) {
            /* TLS records: one at a time through nginx's SSL layer */
            n = c->send(c, iov[0].iov_base, iov[0].iov_len);

            if (n == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (n == NGX_AGAIN) {
                break;
            }

        } else {
            n = writev(c->fd, iov, niov);

            if (n == -1) {
                err = ngx_socket_errno;

                if (err == NGX_EAGAIN) {
                    c->write->ready = 0;
                    break;
                }

                if (err == NGX_EINTR) {
                    continue;
                }

                ngx_connection_error(c, err, "goim: writev() failed");
                return NGX_ERROR;
            }

            if ((size_t) n < size) {
                c->write->ready = 0;
            }
        }

        c->sent += n;
        w->stats->bytes_out += n;
        sent = n;

        /* release what went out */
        while (ch->out && sent) {
            l = ch->out;
            size = l->msg->len - ch->out_sent;

            if (sent < size) {
                ch->out_sent += sent;
                break;
            }

            sent -= size;
            ch->out_sent = 0;
            ch->out_bytes -= l->msg->len;

            if (l->reply) {
                ch->out_replies--;

            } else {
                ch->out_pushes--;
                w->stats->messages_out++;
            }

            ch->out = l->next;
            ngx_goim_msg_release(l->msg);
            ngx_goim_link_put(l);
        }

        if (ch->out == NULL) {
            ch->out_last = &ch->out;
        }
    }

    if (ch->out && ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A protocol failure: the reason is logged, WebSocket clients get a Close
 * frame with the code, queued replies are flushed, then the connection
 * closes.  Never frees the channel, so it is safe deep in a read loop.
 */

void
ngx_goim_channel_fail(ngx_goim_channel_t *ch, ngx_uint_t level,
    uint16_t ws_code, const char *reason)
{
    u_char           frame[2 + GOIM_WS_MAX_CONTROL], *r;
    size_t           len;
    ngx_goim_msg_t  *msg;

    if (ch->closing) {
        return;
    }

    ngx_log_error(level, ch->connection->log, 0, "goim: %s", reason);

    ch->closing = 1;
    ch->close_reason = "protocol error";

    /* the reason may live on the caller's stack */
    len = ngx_strlen(reason);
    if ((r = ngx_pnalloc(ch->connection->pool, len + 1)) != NULL) {
        ngx_memcpy(r, reason, len + 1);
        ch->close_reason = (const char *) r;
    }

    if (ch->transport == NGX_GOIM_WS && !ch->ws_close_sent && ws_code) {
        len = goim_ws_close_frame(frame, ws_code, reason);

        msg = ngx_goim_msg_alloc(len);
        if (msg) {
            ngx_memcpy(msg->data, frame, len);
            (void) ngx_goim_channel_queue(ch, msg, 1);
            ngx_goim_msg_release(msg);
            ch->ws_close_sent = 1;
        }
    }

    /* a client that never reads must not hold the connection open */
    ngx_add_timer(ch->connection->read, 5000);

    ngx_post_event(ch->connection->write, &ngx_posted_events);
}


void
ngx_goim_channel_close(ngx_goim_channel_t *ch, const char *reason)
{
    ngx_goim_link_t   *l;
    ngx_connection_t  *c;

    c = ch->connection;

    if (reason) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "goim: connection closed: %s (mid %L, key \"%V\")",
                      reason, ch->mid, &ch->key_node.str);
    }

    if (ch->room) {
        /* $goim_room in the access log, written after this */
        ch->last_room.data = ngx_pnalloc(c->pool, ch->room->sn.str.len);

        if (ch->last_room.data) {
            ngx_memcpy(ch->last_room.data, ch->room->sn.str.data,
                       ch->room->sn.str.len);
            ch->last_room.len = ch->room->sn.str.len;
        }
    }

    if (ch->authed) {
        ngx_goim_auth_unregister(ch);
    }

    while (ch->out) {
        l = ch->out;
        ch->out = l->next;
        ngx_goim_msg_release(l->msg);
        ngx_goim_link_put(l);
    }

    if (ch->partial) {
        ngx_free(ch->partial);
        ch->partial = NULL;
    }

    if (ch->ws_msg) {
        ngx_free(ch->ws_msg);
        ch->ws_msg = NULL;
    }

    if (ch->watch) {
        ngx_free(ch->watch);
        ch->watch = NULL;
    }

    ngx_goim_worker.nconnections--;
    ngx_goim_worker.stats->conns[ch->transport]--;

    if (ch->transport == NGX_GOIM_TCP) {
        ngx_goim_tcp_finalize(ch);

    } else {
        ngx_goim_ws_finalize(ch);
    }
}


static ngx_goim_link_t *
ngx_goim_link_get(void)
{
    ngx_goim_link_t    *l;
    ngx_goim_worker_t  *w = &ngx_goim_worker;

    l = w->free_links;

    if (l) {
        w->free_links = l->next;

    } else {
        l = ngx_alloc(sizeof(ngx_goim_link_t), ngx_cycle->log);
        if (l == NULL) {
            return NULL;
        }
    }

    l->next = NULL;

    return l;
}


static void
ngx_goim_link_put(ngx_goim_link_t *l)
{
    l->next = ngx_goim_worker.free_links;
    ngx_goim_worker.free_links = l;
}
