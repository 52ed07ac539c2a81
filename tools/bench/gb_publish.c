/*
 * goim-bench: the parent's HTTP publisher connections and header lookup.
 */


#include <gb.h>


static long gb_http_response(const char *p, size_t len, int *ok,
    int *close);


static int          gp_api_errlog;


/*
 * The value of header "name" (case-insensitive) in an HTTP header block
 * p[0..len) that starts with the status line; NULL when absent.
 */

const uint8_t *
gb_find_header(const uint8_t *p, size_t len, const char *name, size_t *vlen)
{
    size_t          nlen;
    const uint8_t  *line, *end, *eol, *v;

    nlen = strlen(name);
    end = p + len;

    line = memchr(p, '\n', len);

    while (line && ++line < end) {
        eol = memchr(line, '\n', end - line);
        if (eol == NULL) {
            eol = end;
        }

        if ((size_t) (eol - line) > nlen && line[nlen] == ':'
            && strncasecmp((const char *) line, name, nlen) == 0)
        {
            v = line + nlen + 1;

            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }

            *vlen = eol - v;

            while (*vlen && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' ')) {
                (*vlen)--;
            }

            return v;
        }

        line = eol;
    }

    return NULL;
}


void
gb_http_connect(gb_http_t *h)
{
    int                 fd, one;
    struct epoll_event  ev;

    fd = socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        gb_http_close(h, 1, strerror(errno));
        return;
    }

    one = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    h->fd = fd;
    h->state = GB_HTTP_CONNECTING;
    h->since = gb_mono_us();
    h->in_len = 0;

    if (connect(fd, (struct sockaddr *) &gb.api, sizeof(gb.api)) == -1
        && errno != EINPROGRESS)
    {
        gb_http_close(h, 1, strerror(errno));
        return;
    }

    ev.events = EPOLLIN|EPOLLOUT;
    ev.data.u64 = ((uint64_t) GB_EV_HTTP << 32) | (uint64_t) (h - gp_http);

    if (epoll_ctl(gp_ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
        gb_http_close(h, 1, "epoll_ctl() failed");
    }
}


/* error: a request or connect lost; retried after 500 ms */

void
gb_http_close(gb_http_t *h, int error, const char *reason)
{
    if (error) {
        gp_api_errors++;

        if (gp_api_errlog++ < GB_ERRLOG_MAX) {
            fprintf(stderr, "goim-bench: API %s: %s\n", gb.api_str, reason);
        }
    }

    if (h->fd != -1) {
        close(h->fd);
        h->fd = -1;
    }

    h->state = GB_HTTP_DOWN;
    h->in_len = 0;
    h->out_len = 0;
    h->out_sent = 0;
    h->retry_at = gb_mono_us() + (error ? 500000 : 0);
}


void
gb_http_event(gb_http_t *h, uint32_t events)
{
    int                 err, ok, close_after;
    long                rc;
    char               *in;
    ssize_t             n;
    socklen_t           len;
    struct epoll_event  ev;

    if (h->fd == -1) {
        return;
    }

    if (h->state == GB_HTTP_CONNECTING) {
        err = 0;
        len = sizeof(err);
        (void) getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len);

        if (err) {
            gb_http_close(h, 1, strerror(err));
            return;
        }

        h->state = GB_HTTP_IDLE;

        ev.events = EPOLLIN;
        ev.data.u64 = ((uint64_t) GB_EV_HTTP << 32)
                      | (uint64_t) (h - gp_http);
        (void) epoll_ctl(gp_ep, EPOLL_CTL_MOD, h->fd, &ev);

        return;
    }

    if ((events & EPOLLOUT) && h->out_sent < h->out_len) {
        n = write(h->fd, h->out + h->out_sent, h->out_len - h->out_sent);

        if (n == -1 && errno != EAGAIN) {
            gb_http_close(h, 1, strerror(errno));
            return;
        }

        if (n > 0) {
            h->out_sent += n;
        }

        if (h->out_sent == h->out_len) {
            ev.events = EPOLLIN;
            ev.data.u64 = ((uint64_t) GB_EV_HTTP << 32)
                          | (uint64_t) (h - gp_http);
            (void) epoll_ctl(gp_ep, EPOLL_CTL_MOD, h->fd, &ev);
        }
    }

    if (!(events & (EPOLLIN|EPOLLERR|EPOLLHUP))) {
        return;
    }

    if (h->in_cap - h->in_len < 4096) {
        in = realloc(h->in, h->in_cap + 16384);
        if (in == NULL) {
            gb_http_close(h, 1, "no memory");
            return;
        }

        h->in = in;
        h->in_cap += 16384;
    }

    n = read(h->fd, h->in + h->in_len, h->in_cap - h->in_len);

    if (n == -1) {
        if (errno != EAGAIN && errno != EINTR) {
            gb_http_close(h, h->state == GB_HTTP_BUSY, strerror(errno));
        }

        return;
    }

    if (n == 0) {
        /* an idle keep-alive connection may be closed by the server */
        gb_http_close(h, h->state == GB_HTTP_BUSY,
                      "connection closed before the answer");
        return;
    }

    h->in_len += n;

    rc = gb_http_response(h->in, h->in_len, &ok, &close_after);

    if (rc == 0) {
        return;
    }

    if (rc < 0 || h->state != GB_HTTP_BUSY) {
        gb_http_close(h, 1, "malformed or unexpected answer");
        return;
    }

    if (gb.chat) {
        gb_chat_answered(h->seq, ok, gb_mono_us());
    }

    if (gb.recover) {
        gb_recover_answered(h->seq, ok);
    }

    if (ok) {
        gp_sent += h->count;
        gp_expected += h->expect;

    } else {
        gp_api_errors++;

        if (gp_api_errlog++ < GB_ERRLOG_MAX) {
            fprintf(stderr, "goim-bench: API answer: %.*s\n",
                    (int) (rc < 300 ? rc : 300), h->in);
        }
    }

    memmove(h->in, h->in + rc, h->in_len - rc);
    h->in_len -= rc;
    h->state = GB_HTTP_IDLE;

    if (close_after) {
        gb_http_close(h, 0, NULL);
    }
}


/* a line of the batch body for message seq: its length */

static int
gb_batch_line(char *p, uint64_t seq)
{
    int  n, pad;

    n = sprintf(p, "{\"type\":\"keys\",\"keys\":[\"bench-%ld\"],"
                "\"operation\":%d,\"msg\":\"{\\\"ts\\\":%" PRId64
                ",\\\"seq\\\":%" PRIu64,
                gb.id_base + (long) (seq % gb.clients), GB_OP, gb_real_us(),
                seq + (uint64_t) gb.seq_base);

    pad = (int) gb.msg_size - 40;

    if (pad > 10) {
        n += sprintf(p + n, ",\\\"pad\\\":\\\"");
        memset(p + n, 'x', pad);
        n += pad;
        n += sprintf(p + n, "\\\"");
    }

    n += sprintf(p + n, "}\"}\n");

    return n;
}


/*
 * sends messages seq .. seq + n - 1 (n > 1 only with --push-batch: one
 * /goim/push/batch request); returns 0, or -1 when the connection failed
 */

int
gb_http_publish(gb_http_t *h, uint64_t seq, uint64_t n_msgs)
{
    int                 blen, n;
    long                r, g;
    char                path[256], *body;
    size_t              cap;
    ssize_t             w;
    uint64_t            i;
    struct epoll_event  ev;

    cap = 1024 + GB_MAX_MSG_SIZE;

    if (gb.push_batch > 1
        && (size_t) gb.push_batch * (gb.msg_size + 200) > GB_MAX_MSG_SIZE)
    {
        cap = 1024 + (size_t) gb.push_batch * (gb.msg_size + 200);
    }

    if (h->out == NULL) {
        h->out = malloc(cap);
        if (h->out == NULL) {
            gb_http_close(h, 1, "no memory");
            return -1;
        }
    }

    h->count = 1;

    if (n_msgs > 1) {
        body = h->out + 1024;
        blen = 0;

        for (i = 0; i < n_msgs; i++) {
            blen += gb_batch_line(body + blen, seq + i);
        }

        h->expect = n_msgs;
        h->count = n_msgs;

        n = snprintf(h->out, 1024,
                     "POST /goim/push/batch HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/x-ndjson\r\n"
                     "Content-Length: %d\r\n\r\n", gb.api_str, blen);

        memmove(h->out + n, body, blen);
        goto send;
    }

    r = (long) (seq % (uint64_t) gb.rooms);
    g = -1;

    if (gb.chat) {
        /* a random group; its last one may have fewer members */
        g = (long) gb_chat_group(seq);

        snprintf(path, sizeof(path), "/goim/push/room?operation=%d"
                 "&type=g&room=%ld", GB_OP, g);

        h->expect = (uint64_t) (gb.clients - g * gb.chat < gb.chat
                                ? gb.clients - g * gb.chat : gb.chat);

    } else if (gb.mode == GB_MODE_NCHAN) {
        if (gb.rooms > 1) {
            snprintf(path, sizeof(path), "/pub/%s%ld", gb.channel, r);
        } else {
            snprintf(path, sizeof(path), "/pub/%s", gb.channel);
        }

        h->expect = (uint64_t) (gb.clients / gb.rooms
                                + (r < gb.clients % gb.rooms));

    } else if (gb.push_mode == GB_PUSH_ALL) {
        /* speed 0: at once; every client watches GB_OP */
        snprintf(path, sizeof(path), "/goim/push/all?operation=%d", GB_OP);
        h->expect = (uint64_t) gb.clients;

    } else if (gb.push_mode == GB_PUSH_KEY) {
        snprintf(path, sizeof(path), "/goim/push/keys?operation=%d"
                 "&keys=bench-%ld", GB_OP,
                 gb.id_base + (long) (seq % gb.clients));
        h->expect = 1;

    } else {
        snprintf(path, sizeof(path), "/goim/push/room?operation=%d"
                 "&type=bench&room=%ld", GB_OP, r);

        /* every member of the room gets every message */
        h->expect = (uint64_t) (gb.clients / gb.rooms
                                + (r < gb.clients % gb.rooms));
    }

    /* the body goes after a header of at most 1024 - 64 bytes */
    body = h->out + 1024 - 64;

    blen = snprintf(body, 64, "{\"ts\":%" PRId64 ",\"seq\":%" PRIu64,
                    gb_real_us(), seq + (uint64_t) gb.seq_base);

    if (g >= 0) {
        blen += snprintf(body + blen, 64 - blen, ",\"g\":%ld", g);
    }

    if (gb.msg_size > blen + 10) {
        memcpy(body + blen, ",\"pad\":\"", 8);
        blen += 8;
        memset(body + blen, 'x', gb.msg_size - blen - 2);
        blen = (int) gb.msg_size - 2;
        body[blen++] = '"';
    }

    body[blen++] = '}';

    n = snprintf(h->out, 1024 - 64,
                 "POST %s HTTP/1.1\r\nHost: %s\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %d\r\n\r\n", path, gb.api_str, blen);

    memmove(h->out + n, body, blen);

send:

    h->out_len = n + blen;
    h->out_sent = 0;
    h->state = GB_HTTP_BUSY;
    h->since = gb_mono_us();
    h->seq = seq;

    if (gb.chat) {
        gb_chat_sent(seq, h->since);
    }

    if (gb.recover) {
        gb_recover_sent(seq);
    }

    w = write(h->fd, h->out, h->out_len);

    if (w == -1) {
        if (errno != EAGAIN) {
            gb_http_close(h, 1, strerror(errno));
            return -1;
        }

        w = 0;
    }

    h->out_sent = w;

    if (h->out_sent < h->out_len) {
        ev.events = EPOLLIN|EPOLLOUT;
        ev.data.u64 = ((uint64_t) GB_EV_HTTP << 32)
                      | (uint64_t) (h - gp_http);
        (void) epoll_ctl(gp_ep, EPOLL_CTL_MOD, h->fd, &ev);
    }

    return 0;
}


/*
 * One response at p[0..len): its length once complete, 0 when more is
 * needed, -1 when malformed.  *ok: a 2xx, and on goim also "code":0 in
 * the JSON envelope.  Content-Length and chunked bodies are understood.
 */

static long
gb_http_response(const char *p, size_t len, int *ok, int *close)
{
    int          status;
    long         clen, size;
    size_t       hlen, vlen, pos;
    const char  *end, *v, *body, *code, *eol;

    end = memmem(p, len, "\r\n\r\n", 4);
    if (end == NULL) {
        return len > 65536 ? -1 : 0;
    }

    hlen = end + 4 - p;

    if (hlen < 12 || memcmp(p, "HTTP/1.", 7) != 0) {
        return -1;
    }

    status = atoi(p + 9);

    *close = p[7] == '0';

    v = (const char *) gb_find_header((const uint8_t *) p, hlen, "Connection",
                                      &vlen);
    if (v) {
        *close = vlen == 5 && strncasecmp(v, "close", 5) == 0;
    }

    body = p + hlen;

    v = (const char *) gb_find_header((const uint8_t *) p, hlen,
                                      "Transfer-Encoding", &vlen);

    if (v && vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0) {
        pos = hlen;

        for ( ;; ) {
            eol = memmem(p + pos, len - pos, "\r\n", 2);
            if (eol == NULL) {
                return 0;
            }

            size = strtol(p + pos, NULL, 16);
            if (size < 0) {
                return -1;
            }

            pos = eol + 2 - p;

            if (size == 0) {
                /* no trailers expected: the final CRLF, else look for one */
                if (len - pos >= 2 && memcmp(p + pos, "\r\n", 2) == 0) {
                    pos += 2;
                    break;
                }

                eol = memmem(p + pos, len - pos, "\r\n\r\n", 4);
                if (eol == NULL) {
                    return 0;
                }

                pos = eol + 4 - p;
                break;
            }

            if (len - pos < (size_t) size + 2) {
                return 0;
            }

            pos += size + 2;
        }

        clen = (long) (pos - hlen);

    } else {
        v = (const char *) gb_find_header((const uint8_t *) p, hlen,
                                          "Content-Length", &vlen);

        if (v) {
            clen = strtol(v, NULL, 10);
            if (clen < 0) {
                return -1;
            }

        } else if (status == 204 || status == 304 || status < 200) {
            clen = 0;

        } else {
            /* a body up to close: not used by the servers we load */
            return -1;
        }

        if (len - hlen < (size_t) clen) {
            return 0;
        }
    }

    *ok = status >= 200 && status < 300;

    if (*ok && gb.mode == GB_MODE_GOIM) {
        code = memmem(body, clen, "\"code\":", 7);
        *ok = code != NULL && atoi(code + 7) == 0;
    }

    return (long) (hlen + clen);
}
