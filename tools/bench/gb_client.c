/*
 * goim-bench: client processes: connect, handshake, auth, output.
 */


#include <gb.h>


static void gb_child_connect(gb_conn_t *c);
static void gb_child_connected(gb_conn_t *c);
static int gb_child_send_packet(gb_conn_t *c, int32_t op, int32_t seq,
    const uint8_t *body, size_t len);
static void gb_child_flush(gb_conn_t *c);


gb_conn_t          *gc_conns;
long                gc_n;
int                 gc_churn;          /* chat: reconnects on */
static int          gc_ep = -1;
int                 gc_out = -1;
gb_stats_t          gc_stats;
uint8_t            *gc_scratch;
size_t              gc_scratch_cap;
static uint32_t    *gc_queue;           /* clients waiting to connect */
static uint32_t    *gc_queue_at;        /* not before: ms since t0 */
static long         gc_qhead;
static long         gc_qlen;
static long         gc_pending;         /* connect started, not ready */
static int          gc_errlog;
long                gc_id;              /* our first client's number */
uint8_t             gc_mask[4];
static int32_t      gc_seq;
char                gc_accept[GOIM_WS_ACCEPT_LEN + 1];
static const char   gc_ws_key[] = "Z29pbS1iZW5jaC1rZXktMQ==";


/* --- client processes ----------------------------------------------------- */

void
gb_child(long lo, long hi, int ctl, int out)
{
    int                 i, nev, stop;
    long                k, rate_n;
    ssize_t             n;
    double              tokens, rate;
    int64_t             now, last, next_stats, next_sweep, hb_done;
    int64_t             hb_target, hb_us;
    uint32_t            secs, now_ms;
    uint8_t             dummy[64];
    gb_conn_t          *c;
    struct timespec     pause_ts;
    struct epoll_event  ev, events[1024];

    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    gc_id = lo;
    gc_out = out;
    gc_n = hi - lo;

    /* masks need not be secret here, only present (RFC 6455 5.3) */
    gc_mask[0] = (uint8_t) getpid();
    gc_mask[1] = 0x5a;
    gc_mask[2] = (uint8_t) (getpid() >> 8);
    gc_mask[3] = 0xa5;

    goim_ws_accept_key((const uint8_t *) gc_ws_key, strlen(gc_ws_key),
                       gc_accept);
    gc_accept[GOIM_WS_ACCEPT_LEN] = '\0';

    gc_conns = calloc(gc_n, sizeof(gb_conn_t));
    gc_queue = malloc(gc_n * sizeof(uint32_t));
    gc_queue_at = malloc(gc_n * sizeof(uint32_t));
    gc_scratch_cap = 4 * GB_READ_CHUNK;
    gc_scratch = malloc(gc_scratch_cap);

    gc_ep = epoll_create1(EPOLL_CLOEXEC);

    if (gc_conns == NULL || gc_queue == NULL || gc_queue_at == NULL
        || gc_scratch == NULL || gc_ep == -1)
    {
        fprintf(stderr, "goim-bench: child: no memory or epoll\n");
        _exit(1);
    }

    for (k = 0; k < gc_n; k++) {
        gc_conns[k].fd = -1;
        gc_queue[k] = (uint32_t) k;
        gc_queue_at[k] = 0;
    }

    gc_qhead = 0;
    gc_qlen = gc_n;

    if (gb.chat && gb_child_chat_init() != 0) {
        fprintf(stderr, "goim-bench: child: no memory for the chat\n");
        _exit(1);
    }

    if (gb.recover && gb_child_recover_init() != 0) {
        fprintf(stderr, "goim-bench: child: no memory for --recover\n");
        _exit(1);
    }

    ev.events = EPOLLIN;
    ev.data.u64 = GB_EV_CTL;

    if (epoll_ctl(gc_ep, EPOLL_CTL_ADD, ctl, &ev) == -1) {
        perror("goim-bench: child: epoll_ctl");
        _exit(1);
    }

    rate = (double) gb.connect_rate / (double) gb.procs;
    tokens = 1;
    hb_us = gb.heartbeat * GB_SEC;
    hb_done = 0;
    stop = 0;

    now = gb_mono_us();
    last = now;
    next_stats = now;
    next_sweep = now + GB_SEC;

    while (!stop) {
        now = gb_mono_us();

        /* the parent normally ends us first; this is the backstop */
        if (now >= gb.deadline + 3 * GB_SEC) {
            break;
        }

        /* connects: a token bucket, at most 100 ms of burst */
        tokens += (double) (now - last) * rate / GB_SEC;
        if (tokens > rate / 10 + 1) {
            tokens = rate / 10 + 1;
        }

        last = now;
        rate_n = 0;
        now_ms = (uint32_t) ((now - gb.t0) / 1000);

        while (tokens >= 1 && gc_qlen > 0 && gc_pending < gb.max_pending
               && gc_queue_at[gc_qhead] <= now_ms)
        {
            c = &gc_conns[gc_queue[gc_qhead]];
            gc_qhead = (gc_qhead + 1) % gc_n;
            gc_qlen--;
            tokens -= 1;
            rate_n++;

            gb_child_connect(c);
        }

        /*
         * Heartbeats: a cursor walks the clients so that each gets one
         * every --heartbeat seconds, spread evenly over the interval.
         */
        if (gb.mode == GB_MODE_GOIM) {
            hb_target = (now - gb.t0) * gc_n / hb_us;

            while (hb_done < hb_target) {
                c = &gc_conns[hb_done % gc_n];
                hb_done++;

                if (c->state == GB_READY) {
                    (void) gb_child_send_packet(c, GOIM_OP_HEARTBEAT,
                                                ++gc_seq, NULL, 0);
                }
            }
        }

        if ((gb.chat || gb.recover) && gc_churn) {
            gb_child_chat_churn(now);
        }

        if (now >= next_stats) {
            gb_child_report(GB_REC_STATS);
            next_stats = now + GB_STATS_US;
        }

        /*
         * A server that accepts but never answers (a worker stuck or
         * crashing while the kernel completes handshakes) must show as
         * errors, not as clients waiting forever.
         */
        if (now >= next_sweep) {
            next_sweep = now + GB_SEC;
            secs = (uint32_t) ((now - gb.t0) / GB_SEC);

            for (k = 0; k < gc_n; k++) {
                c = &gc_conns[k];

                if (c->state != GB_IDLE && c->state != GB_READY
                    && secs - c->since >= GB_READY_TIMEOUT)
                {
                    gb_child_fail(c, "not ready in time (connect, "
                                  "handshake or auth)");
                }
            }
        }

        nev = epoll_wait(gc_ep, events, 1024,
                         gc_qlen > 0 || rate_n > 0 ? 5 : 50);

        if (nev == -1) {
            if (errno == EINTR) {
                continue;
            }

            perror("goim-bench: child: epoll_wait");
            break;
        }

        for (i = 0; i < nev; i++) {
            if (events[i].data.u64 == GB_EV_CTL) {
                /* EOF: the parent wants the final report */
                n = read(ctl, dummy, sizeof(dummy));

                if (n <= 0) {
                    stop = 1;
                }

                for (k = 0; k < n; k++) {
                    if (dummy[k] == GB_CTL_CHURN_ON) {
                        gc_churn = 1;

                    } else if (dummy[k] == GB_CTL_CHURN_OFF) {
                        gc_churn = 0;
                    }
                }

                continue;
            }

            c = &gc_conns[events[i].data.u64];

            if (c->state == GB_IDLE) {
                continue;
            }

            if (c->state == GB_CONNECTING) {
                gb_child_connected(c);
                continue;
            }

            if ((events[i].events & EPOLLOUT) && c->ext && c->ext->out_len) {
                gb_child_flush(c);
            }

            if (c->state != GB_IDLE
                && (events[i].events & (EPOLLIN|EPOLLERR|EPOLLHUP)))
            {
                gb_child_read(c);
            }
        }

        /*
         * Not in epoll_wait while the server writes, the process is not
         * woken by each write: on loopback that wake-up is the writer's
         * cost, which a client across a network never puts on it.
         */
        if (gb.read_pause && nev > 0 && gc_qlen == 0 && rate_n == 0) {
            pause_ts.tv_sec = 0;
            pause_ts.tv_nsec = gb.read_pause * 1000000L;
            (void) nanosleep(&pause_ts, NULL);
        }
    }

    if (gb.chat) {
        gb_child_chat_report();
    }

    if (gb.recover) {
        gb_child_recover_report();
    }

    gb_child_report(GB_REC_FINAL);

    _exit(0);
}


static void
gb_child_connect(gb_conn_t *c)
{
    int                 fd, one, size;
    struct sockaddr_in  src;
    struct epoll_event  ev;

    gc_stats.connects++;

    if (gb.recover) {
        gb_child_recover_connect(c);
    }

    fd = socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        gb_child_fail(c, strerror(errno));
        return;
    }

    c->fd = fd;
    c->state = GB_CONNECTING;
    c->since = (uint32_t) ((gb_mono_us() - gb.t0) / GB_SEC);
    gc_pending++;

    one = 1;

    /* the port is picked at connect(), per destination, not at bind() */
    (void) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                      sizeof(one));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    /* before connect(): the receive window is scaled to it */
    if (gb.sockbuf) {
        size = (int) gb.sockbuf;
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }

    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000001
                                + (uint32_t) (gc_id + (c - gc_conns))
                                  % gb.sources);

    if (bind(fd, (struct sockaddr *) &src, sizeof(src)) == -1) {
        gb_child_fail(c, "bind() failed");
        return;
    }

    if (connect(fd, (struct sockaddr *) &gb.server, sizeof(gb.server)) == -1
        && errno != EINPROGRESS)
    {
        gb_child_fail(c, strerror(errno));
        return;
    }

    ev.events = EPOLLOUT;
    ev.data.u64 = (uint64_t) (c - gc_conns);

    if (epoll_ctl(gc_ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
        gb_child_fail(c, "epoll_ctl() failed");
    }
}


static void
gb_child_connected(gb_conn_t *c)
{
    int                 err, n;
    char                req[512];
    socklen_t           len;
    struct epoll_event  ev;

    err = 0;
    len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        err = errno;
    }

    if (err) {
        gb_child_fail(c, strerror(err));
        return;
    }

    gc_stats.connected++;

    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t) (c - gc_conns);

    if (epoll_ctl(gc_ep, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
        c->state = GB_HANDSHAKE;
        gb_child_fail(c, "epoll_ctl() failed");
        return;
    }

    if (gb.transport == GB_WS) {
        c->state = GB_HANDSHAKE;

        if (gb.mode == GB_MODE_NCHAN && gb.rooms > 1) {
            n = snprintf(req, sizeof(req), "GET %s%ld", gb.ws_path,
                         (gc_id + (long) (c - gc_conns)) % gb.rooms);
        } else {
            n = snprintf(req, sizeof(req), "GET %s", gb.ws_path);
        }

        n += snprintf(req + n, sizeof(req) - n,
                      " HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n",
                      gb.server_str, gc_ws_key);

        (void) gb_child_send(c, (uint8_t *) req, n);
        return;
    }

    (void) gb_child_auth(c);
}


/* op 7 with the JSON token; -1 when the connection failed */

int
gb_child_auth(gb_conn_t *c)
{
    int       n;
    uint8_t   body[256];
    uint32_t  idx;

    c->state = GB_AUTH;
    idx = (uint32_t) (gc_id + (c - gc_conns));

    /* chat: a personal room first, then the group (docs/PROTOCOL.md 1.14) */
    if (gb.chat) {
        n = snprintf((char *) body, sizeof(body),
                     "{\"mid\":%u,\"key\":\"bench-%u\",\"room_id\":"
                     "\"u://%u\",\"room_ids\":[\"g://%u\"],"
                     "\"platform\":\"bench\",\"accepts\":[%d]}",
                     (unsigned) (gb.id_base + idx),
                     (unsigned) (gb.id_base + idx),
                     (unsigned) (gb.id_base + idx),
                     (unsigned) (idx / gb.chat), GB_OP);

        return gb_child_send_packet(c, GOIM_OP_AUTH, ++gc_seq, body, n);
    }

    /* --recover: op 35 with the last position read, right before op 7 */
    if (gb.recover) {
        n = gb_child_recover_auth(c, body, sizeof(body));

        if (n > 0 && gb_child_send_packet(c, GOIM_OP_RECOVER, ++gc_seq,
                                          body, n) != 0)
        {
            return -1;
        }
    }

    n = snprintf((char *) body, sizeof(body),
                 "{\"mid\":%u,\"key\":\"bench-%u\",\"room_id\":"
                 "\"bench://%ld\",\"platform\":\"bench\",\"accepts\":[%d]}",
                 (unsigned) (gb.id_base + idx), (unsigned) (gb.id_base + idx),
                 (long) (idx % gb.rooms), GB_OP);

    return gb_child_send_packet(c, GOIM_OP_AUTH, ++gc_seq, body, n);
}


/* drops the connection, counts an error and queues a reconnect */

void
gb_child_fail(gb_conn_t *c, const char *reason)
{
    if (gc_errlog < GB_ERRLOG_MAX) {
        fprintf(stderr, "goim-bench: client %ld (state %d): %s\n",
                gc_id + (long) (c - gc_conns), c->state, reason);

        if (++gc_errlog == GB_ERRLOG_MAX) {
            fprintf(stderr, "goim-bench: process of client %ld: further "
                    "client errors only counted\n", gc_id);
        }
    }

    gb_child_drop(c, 1, GB_RETRY_US);
}


/*
 * Closes the connection and queues its reconnect retry_us from now; an
 * error counts in the stats, a planned close (chat's churn) does not.
 */

void
gb_child_drop(gb_conn_t *c, int error, int64_t retry_us)
{
    long  tail;

    if (error) {
        gc_stats.errors++;
    }

    if (gb.chat) {
        gb_child_chat_down(c);
    }

    if (gb.recover) {
        gb_child_recover_down(c);
    }

    if (c->state != GB_IDLE && c->state != GB_READY) {
        gc_pending--;
    }

    if (c->state != GB_IDLE && c->state != GB_CONNECTING) {
        gc_stats.connected--;
    }

    if (c->state == GB_READY) {
        gc_stats.authed--;
    }

    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }

    if (c->ext) {
        free(c->ext->partial);
        free(c->ext->out);
        free(c->ext->msg);
        free(c->ext);
        c->ext = NULL;
    }

    c->state = GB_IDLE;

    tail = (gc_qhead + gc_qlen) % gc_n;
    gc_queue[tail] = (uint32_t) (c - gc_conns);
    gc_queue_at[tail] = (uint32_t) ((gb_mono_us() - gb.t0 + retry_us)
                                    / 1000);
    gc_qlen++;
}


/*
 * Authenticated (nchan: upgraded).  A client counts against
 * --max-pending from its connect until here: on loopback the kernel
 * completes the TCP handshake before the server accepts, so only the
 * answer shows that the server has taken the client in.
 */

void
gb_child_ready(gb_conn_t *c)
{
    c->state = GB_READY;
    gc_stats.authed++;
    gc_pending--;

    if (gb.chat) {
        gb_child_chat_up(c);
    }
}


/* the client's extra state, made when first needed; NULL: no memory */

gb_conn_ext_t *
gb_child_ext(gb_conn_t *c)
{
    if (c->ext == NULL) {
        c->ext = calloc(1, sizeof(gb_conn_ext_t));
    }

    return c->ext;
}


/* frees the extra state once nothing is held in it */

void
gb_child_ext_done(gb_conn_t *c)
{
    gb_conn_ext_t  *x;

    x = c->ext;

    if (x == NULL || x->partial_len || x->out_len || x->msg || x->ws_open) {
        return;
    }

    free(x->partial);
    free(x->out);
    free(x);
    c->ext = NULL;
}


/* writes now what the socket takes and keeps the rest; -1 when failed */

int
gb_child_send(gb_conn_t *c, const uint8_t *p, size_t len)
{
    ssize_t             n;
    uint8_t            *out;
    gb_conn_ext_t      *x;
    struct epoll_event  ev;

    if (c->ext == NULL || c->ext->out_len == 0) {
        n = write(c->fd, p, len);

        if (n == (ssize_t) len) {
            return 0;
        }

        if (n == -1) {
            if (errno != EAGAIN && errno != EINTR) {
                gb_child_fail(c, strerror(errno));
                return -1;
            }

            n = 0;
        }

        p += n;
        len -= n;

        ev.events = EPOLLIN|EPOLLOUT;
        ev.data.u64 = (uint64_t) (c - gc_conns);
        (void) epoll_ctl(gc_ep, EPOLL_CTL_MOD, c->fd, &ev);
    }

    x = gb_child_ext(c);
    if (x == NULL) {
        gb_child_fail(c, "no memory");
        return -1;
    }

    if (x->out_len + len > GB_MAX_OUT) {
        gb_child_fail(c, "server does not read");
        return -1;
    }

    out = realloc(x->out, x->out_len + len);
    if (out == NULL) {
        gb_child_fail(c, "no memory");
        return -1;
    }

    memcpy(out + x->out_len, p, len);
    x->out = out;
    x->out_len += len;

    return 0;
}


/* one goim packet, on WebSocket in a masked binary frame */

static int
gb_child_send_packet(gb_conn_t *c, int32_t op, int32_t seq,
    const uint8_t *body, size_t len)
{
    size_t   n, h;
    uint8_t  buf[GOIM_WS_MAX_HEADER + GOIM_HEADER_LEN + 256];

    if (len > 256) {
        return -1;
    }

    h = 0;

    if (gb.transport == GB_WS) {
        h = goim_ws_write_header(buf, GOIM_WS_OP_BINARY,
                                 GOIM_HEADER_LEN + len);
        buf[1] |= 0x80;
        memcpy(buf + h, gc_mask, 4);
        h += 4;
    }

    n = goim_packet_encode(buf + h, 1, op, seq, body, len);

    if (gb.transport == GB_WS) {
        goim_ws_unmask(buf + h, n, gc_mask, 0);
    }

    return gb_child_send(c, buf, h + n);
}


static void
gb_child_flush(gb_conn_t *c)
{
    ssize_t             n;
    gb_conn_ext_t      *x;
    struct epoll_event  ev;

    x = c->ext;

    n = write(c->fd, x->out, x->out_len);

    if (n == -1) {
        if (errno != EAGAIN && errno != EINTR) {
            gb_child_fail(c, strerror(errno));
        }

        return;
    }

    if ((size_t) n < x->out_len) {
        memmove(x->out, x->out + n, x->out_len - n);
        x->out_len -= n;
        return;
    }

    free(x->out);
    x->out = NULL;
    x->out_len = 0;

    gb_child_ext_done(c);

    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t) (c - gc_conns);
    (void) epoll_ctl(gc_ep, EPOLL_CTL_MOD, c->fd, &ev);
}
