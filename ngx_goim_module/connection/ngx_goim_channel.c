
/*
 * goim for nginx: one client connection ("channel") after its transport
 * is set up.  Reads into the worker's scratch buffer and keeps only an
 * incomplete packet between reads, handing the bytes to its transport
 * and each packet to the comet; queues shared messages and writes them
 * once per event-loop turn, a slice of sockets per io_uring call
 * (ngx_goim_uring.c) or one send() or writev() each.
 */


#include "ngx_goim_connection.h"


static void ngx_goim_channel_read_handler(ngx_event_t *rev);
static void ngx_goim_channel_write_handler(ngx_event_t *wev);
static void ngx_goim_channel_write(ngx_goim_channel_t *ch);
static void ngx_goim_writes_handler(ngx_event_t *ev);
static void ngx_goim_writes_prefetch(ngx_queue_t *q);
static void ngx_goim_channel_post_write(ngx_goim_channel_t *ch);
static ngx_int_t ngx_goim_channel_flush(ngx_goim_channel_t *ch);
static ngx_uint_t ngx_goim_channel_iov(ngx_goim_channel_t *ch,
    struct iovec *iov, ngx_uint_t max, size_t *size);
static void ngx_goim_channel_sent(ngx_goim_channel_t *ch, size_t sent);
static void ngx_goim_writes_batch(void);
static void ngx_goim_channel_wrote(ngx_goim_channel_t *ch, int res,
    size_t size);
static ngx_int_t ngx_goim_channel_keep(ngx_goim_channel_t *ch, u_char *p,
    size_t len);
static ngx_goim_link_t *ngx_goim_link_get(void);
static void ngx_goim_link_put(ngx_goim_link_t *l);


/* frames a send through io_uring takes from a queue at most */
#define NGX_GOIM_URING_IOV    4


/* one send of a slice through io_uring: its frames and channel */
typedef struct {
    ngx_goim_channel_t    *ch;
    size_t                 size;
    ngx_uint_t             niov;
    struct msghdr          mh;
    struct iovec           iov[NGX_GOIM_URING_IOV];
} ngx_goim_send_t;

static ngx_goim_send_t  ngx_goim_sends[NGX_GOIM_WRITE_SLICE];
static int              ngx_goim_send_res[NGX_GOIM_WRITE_SLICE];


/* channels with output to write, in the order they got it */
static ngx_queue_t  ngx_goim_writes = { &ngx_goim_writes, &ngx_goim_writes };
static ngx_event_t  ngx_goim_writes_ev;

/* the comet's handlers (comet/ngx_goim_comet.c) */
static ngx_goim_channel_handlers_t  ngx_goim_channel_handlers;


void
ngx_goim_channel_set_handlers(ngx_goim_channel_handlers_t *h)
{
    ngx_goim_channel_handlers = *h;
}


ngx_goim_channel_t *
ngx_goim_channel_create(ngx_connection_t *c, ngx_uint_t transport,
    const ngx_goim_transport_t *io)
{
    ngx_goim_channel_t  *ch;

    ch = ngx_pcalloc(c->pool, sizeof(ngx_goim_channel_t));
    if (ch == NULL) {
        return NULL;
    }

    ch->connection = c;
    ch->io = io;
    ch->conf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);
    ch->transport = transport;
    ch->out_last = &ch->out;
    ch->rooms = &ch->room1;
    ch->rooms_size = 1;
    ngx_queue_init(&ch->mid_link);
    ngx_queue_init(&ch->all.queue);

    /* a goim packet travels in one WebSocket message */
    goim_ws_reader_init(&ch->ws, GOIM_HEADER_LEN + ch->conf->max_body,
                        100, 1);

    ngx_goim_channels.nconnections++;
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
    size_t                total, used, room;
    ssize_t               n;
    u_char               *buf;
    ngx_int_t             rc;
    ngx_connection_t     *c;
    ngx_goim_channel_t   *ch;
    ngx_goim_channels_t  *cs = &ngx_goim_channels;

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

    buf = cs->scratch;

    for ( ;; ) {

        total = 0;

        if (ch->partial) {
            ngx_memcpy(buf, ch->partial, ch->partial_len);
            total = ch->partial_len;
            ngx_free(ch->partial);
            ch->partial = NULL;
            ch->partial_len = 0;
        }

        room = cs->scratch_size - total;
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
            rc = ch->io->read(ch, buf, total, &used);

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
 * A whole packet from the transport goes to the comet (docs/PROTOCOL.md
 * 1.2).  Returns NGX_ERROR only when memory ran out; protocol failures go
 * through ngx_goim_channel_fail().
 */

ngx_int_t
ngx_goim_channel_packet(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    return ngx_goim_channel_handlers.packet(ch, pkt);
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
 * turn leaves together, from the worker's list of channels to write.
 * A room's fan-out to thousands of sockets goes in slices, with the
 * event loop in between, so that new pushes, other workers' messages
 * and timers are not held up for the whole fan-out.
 *
 * The list links the channels themselves, not their write events:
 * queueing then touches only the channel's first cache lines, and
 * nginx's posted-event macros, which read each event's log when nginx
 * is built with debugging (as Debian's is), stay off the fan-out.  A
 * socket that is not writable is skipped when its turn comes; its
 * write event brings it back.
 */

static void
ngx_goim_channel_post_write(ngx_goim_channel_t *ch)
{
    ngx_event_t  *ev;

    if (ch->write_posted) {
        return;
    }

    ch->write_posted = 1;
    ngx_queue_insert_tail(&ngx_goim_writes, &ch->write_link);

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
    ngx_uint_t           n;
    ngx_queue_t         *q;
    ngx_goim_channel_t  *ch;

    if (ngx_goim_uring_ready()) {
        ngx_goim_writes_batch();

    } else {
        for (n = 0; n < NGX_GOIM_WRITE_SLICE; n++) {

            if (ngx_queue_empty(&ngx_goim_writes)) {
                break;
            }

            q = ngx_queue_head(&ngx_goim_writes);
            ch = ngx_queue_data(q, ngx_goim_channel_t, write_link);

            ngx_goim_writes_prefetch(q);

            ngx_queue_remove(q);
            ch->write_posted = 0;

            ngx_goim_channel_write(ch);
        }
    }

    if (!ngx_queue_empty(&ngx_goim_writes)) {
        /* the rest after the event loop's next turn */
        ngx_post_event(ev, &ngx_posted_next_events);
    }
}


/*
 * A slice of the list through the worker's io_uring: the plain sockets
 * that can be written get their sends queued, then all go in one call.
 * TLS, sockets not writable and empty queues take the usual path.
 * Closing one channel never closes another, so the channels queued
 * stay valid until their results come back.
 */

static void
ngx_goim_writes_batch(void)
{
    ngx_uint_t           n, nsends;
    ngx_queue_t         *q;
    ngx_connection_t    *c;
    ngx_goim_send_t     *s;
    ngx_goim_channel_t  *ch;

    nsends = 0;

    for (n = 0; n < NGX_GOIM_WRITE_SLICE; n++) {

        if (ngx_queue_empty(&ngx_goim_writes)) {
            break;
        }

        q = ngx_queue_head(&ngx_goim_writes);
        ch = ngx_queue_data(q, ngx_goim_channel_t, write_link);

        ngx_goim_writes_prefetch(q);

        ngx_queue_remove(q);
        ch->write_posted = 0;

        c = ch->connection;

        if (c->ssl || !c->write->ready || ch->out == NULL) {
            ngx_goim_channel_write(ch);
            continue;
        }

        s = &ngx_goim_sends[nsends];
        s->ch = ch;
        s->niov = ngx_goim_channel_iov(ch, s->iov, NGX_GOIM_URING_IOV,
                                       &s->size);
        ngx_goim_send_res[nsends] = -ECANCELED;

        ngx_goim_uring_send(c->fd, &s->mh, s->iov, s->niov, nsends);
        nsends++;
    }

    if (nsends == 0) {
        return;
    }

    (void) ngx_goim_uring_submit(ngx_cycle->log, ngx_goim_send_res);

    ngx_goim_worker.stats->writes_uring += nsends;
    ngx_goim_worker.stats->uring_submits++;

    for (n = 0; n < nsends; n++) {
        s = &ngx_goim_sends[n];
        ngx_goim_channel_wrote(s->ch, ngx_goim_send_res[n], s->size);
    }
}


/* a send's result from the ring, as send() would have answered */

static void
ngx_goim_channel_wrote(ngx_goim_channel_t *ch, int res, size_t size)
{
    ngx_connection_t  *c;

    c = ch->connection;

    if (res == -EAGAIN) {
        c->write->ready = 0;

    } else if (res == -ECANCELED) {
        /* the ring failed with this send's outcome unknown */
        c->error = 1;
        ngx_goim_channel_close(ch, "io_uring failed");
        return;

    } else if (res < 0 && res != -EINTR) {
        ngx_connection_error(c, -res, "goim: io_uring send failed");
        c->error = 1;
        ngx_goim_channel_close(ch, "write failed");
        return;

    } else if (res >= 0) {
        if ((size_t) res < size) {
            c->write->ready = 0;
        }

        ngx_goim_channel_sent(ch, (size_t) res);
    }

    /* what is left: more than one send's frames, or a closing channel */
    ngx_goim_channel_write(ch);
}


/*
 * The channels after q, while q's is written: each step asks for what
 * the step before made known (a write takes microseconds, far more
 * than a load from memory): the third one's channel, the second one's
 * connection, the next one's write event.
 */

static void
ngx_goim_writes_prefetch(ngx_queue_t *q)
{
    ngx_queue_t         *q1, *q2, *end;
    ngx_connection_t    *c2;
    ngx_goim_channel_t  *ch1, *ch2;

    end = ngx_queue_sentinel(&ngx_goim_writes);

    q1 = ngx_queue_next(q);
    if (q1 == end) {
        return;
    }

    ch1 = ngx_queue_data(q1, ngx_goim_channel_t, write_link);
    ngx_goim_prefetch(ch1->connection->write);

    q2 = ngx_queue_next(q1);
    if (q2 == end) {
        return;
    }

    ch2 = ngx_queue_data(q2, ngx_goim_channel_t, write_link);
    c2 = ch2->connection;
    ngx_goim_prefetch(c2);
    ngx_goim_prefetch(&c2->sent);
    ngx_goim_prefetch(&c2->ssl);
    ngx_goim_prefetch(ngx_queue_next(q2));
}


static void
ngx_goim_channel_write_handler(ngx_event_t *wev)
{
    ngx_connection_t  *c;

    c = wev->data;

    ngx_goim_channel_write(c->data);
}


static void
ngx_goim_channel_write(ngx_goim_channel_t *ch)
{
    if (ngx_goim_channel_flush(ch) != NGX_OK) {
        ch->connection->error = 1;
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
    size_t             size;
    ssize_t            n;
    ngx_err_t          err;
    ngx_uint_t         niov;
    struct iovec       iov[NGX_GOIM_IOV];
    ngx_connection_t  *c;

    c = ch->connection;

    while (ch->out && c->write->ready) {

        niov = ngx_goim_channel_iov(ch, iov, NGX_GOIM_IOV, &size);

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
            /*
             * one frame, the usual case of a push: send() skips writev's
             * file and iovec layers (a few % of a worker under fan-out)
             */
            n = (niov == 1) ? send(c->fd, iov[0].iov_base, iov[0].iov_len, 0)
                            : writev(c->fd, iov, niov);

            ngx_goim_worker.stats->writes_send++;

            if (n == -1) {
                err = ngx_socket_errno;

                if (err == NGX_EAGAIN) {
                    c->write->ready = 0;
                    break;
                }

                if (err == NGX_EINTR) {
                    continue;
                }

                ngx_connection_error(c, err, niov == 1
                                             ? "goim: send() failed"
                                             : "goim: writev() failed");
                return NGX_ERROR;
            }

            if ((size_t) n < size) {
                c->write->ready = 0;
            }
        }

        ngx_goim_channel_sent(ch, n);
    }

    if (ch->out && ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the queue's first messages, from where the last write stopped */

static ngx_uint_t
ngx_goim_channel_iov(ngx_goim_channel_t *ch, struct iovec *iov,
    ngx_uint_t max, size_t *size)
{
    ngx_uint_t        niov;
    ngx_goim_link_t  *l;

    niov = 0;
    *size = 0;

    for (l = ch->out; l && niov < max; l = l->next) {
        iov[niov].iov_base = l->msg->data;
        iov[niov].iov_len = l->msg->len;

        if (niov == 0) {
            iov[0].iov_base = l->msg->data + ch->out_sent;
            iov[0].iov_len -= ch->out_sent;
        }

        *size += iov[niov].iov_len;
        niov++;
    }

    return niov;
}


/* n bytes went out: release the messages they finished */

static void
ngx_goim_channel_sent(ngx_goim_channel_t *ch, size_t sent)
{
    size_t             size;
    ngx_goim_link_t   *l;
    ngx_goim_stats_t  *st;

    st = ngx_goim_worker.stats;

    ch->connection->sent += sent;
    st->bytes_out += sent;

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
            st->messages_out++;
        }

        ch->out = l->next;
        ngx_goim_msg_release(l->msg);
        ngx_goim_link_put(l);
    }

    if (ch->out == NULL) {
        ch->out_last = &ch->out;
    }
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

    if (ch->authed) {
        ngx_goim_channel_handlers.closing(ch);
    }

    if (ch->write_posted) {
        ngx_queue_remove(&ch->write_link);
        ch->write_posted = 0;
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

    ngx_goim_channels.nconnections--;
    ngx_goim_worker.stats->conns[ch->transport]--;

    ch->io->finalize(ch);
}


static ngx_goim_link_t *
ngx_goim_link_get(void)
{
    ngx_goim_link_t      *l;
    ngx_goim_channels_t  *cs = &ngx_goim_channels;

    l = cs->free_links;

    if (l) {
        cs->free_links = l->next;

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
    l->next = ngx_goim_channels.free_links;
    ngx_goim_channels.free_links = l;
}
