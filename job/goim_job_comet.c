/*
 * Per-comet sender: one keep-alive HTTP/1.1 connection to the comet's
 * internal push location, one request in flight, each request a
 * goim.CometPushBatch of the queue's head items (as many as fit in
 * max_request_bytes and max_pushes_per_request).  While a request is out,
 * new messages wait in the queue, and room messages merge into their
 * room's open batch there.
 *
 * Answers (the internal push contract): 200 all accepted; 503 the first
 * data.accepted were, the rest is retried; 400 nothing will ever be, the
 * items are undeliverable; anything else (403, 413, 5xx, timeout, refused
 * connection) retries everything with exponential backoff and jitter for
 * as long as the comet is in the registry (goim_job_route.c).
 *
 * An https:// comet is reached over TLS (libevent's OpenSSL bufferevents):
 * its certificate must chain to internal_ca (or the system's CAs) and
 * name the URL's host.  libevent cannot connect a used TLS bufferevent
 * again, so a closed TLS connection is replaced by a new one, made from
 * the retry timer rather than inside libevent's callbacks.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <yajl/yajl_tree.h>

#include "goim_job_comet.h"
#include "goim_job_log.h"
#include "goim.pb-c.h"


static int job_comet_connect(job_comet_t *c);
static void job_comet_reply(struct evhttp_request *req, void *arg);
static void job_comet_http_error(enum evhttp_request_error error,
    void *arg);
static long job_comet_accepted(struct evhttp_request *req, size_t n,
    char *msg, size_t msglen);
static void job_comet_accept(job_comet_t *c, size_t n);
static void job_comet_drop(job_comet_t *c, size_t n, const char *why);
static void job_comet_release(job_item_t *it);
static void job_comet_retry(job_comet_t *c, const char *why);
static void job_comet_retry_handler(evutil_socket_t fd, short events,
    void *arg);
static void job_comet_nodelay(job_comet_t *c);
static void job_comet_free_body(const void *data, size_t len, void *arg);
static void job_comet_flow(void);
static SSL_CTX *job_comet_ssl_ctx(void);
static void job_comet_closed(struct evhttp_connection *conn, void *arg);
static const char *job_comet_tls_error(job_comet_t *c, char *buf,
    size_t len);


static job_conf_t          *job_comet_conf;
static struct event_base   *job_comet_base;
static struct evdns_base   *job_comet_dns;
static job_comet_flow_pt    job_comet_flow_handler;
static job_comet_t         *job_comets;
static int                  job_ncomets;
static job_comet_stats_t    job_comet_st;
static unsigned             job_comet_bound;    /* see job_comet_over() */
static unsigned             job_comet_closing;
static SSL_CTX             *job_comet_ssl;


void
job_comet_init(job_conf_t *cf, struct event_base *base,
    struct evdns_base *dns, job_comet_flow_pt flow)
{
    job_comet_conf = cf;
    job_comet_base = base;
    job_comet_dns = dns;
    job_comet_flow_handler = flow;
}


job_comet_t *
job_comet_first(void)
{
    return job_comets;
}


int
job_comet_count(void)
{
    return job_ncomets;
}


job_comet_t *
job_comet_find(const char *server)
{
    job_comet_t  *c;

    for (c = job_comets; c; c = c->next) {
        if (strcmp(c->server, server) == 0) {
            return c;
        }
    }

    return NULL;
}


job_comet_t *
job_comet_add(const char *server, const char *addr)
{
    job_comet_t  *c;

    c = job_alloc(sizeof(job_comet_t));
    c->server = job_strndup(server, strlen(server));
    job_queue_init(&c->q, job_comet_conf->room_batch_count,
                   job_comet_conf->room_batch_bytes);

    c->retry_ev = evtimer_new(job_comet_base, job_comet_retry_handler, c);
    if (c->retry_ev == NULL) {
        job_log(JOB_LOG_ERROR, "comet %s: cannot create a timer", server);
        abort();
    }

    if (job_comet_set_addr(c, addr) != 0) {
        event_free(c->retry_ev);
        free(c->server);
        free(c);
        return NULL;
    }

    c->next = job_comets;
    job_comets = c;
    job_ncomets++;

    job_log(JOB_LOG_INFO, "comet %s added: %s", server, addr);

    return c;
}


/* a changed address reconnects, after the reply to a request in flight */
int
job_comet_set_addr(job_comet_t *c, const char *addr)
{
    int                    port;
    char                  *host, *path, hh[300];
    const char            *scheme, *h, *p, *q;
    struct evhttp_uri     *uri;

    uri = evhttp_uri_parse(addr);
    if (uri == NULL) {
        job_log(JOB_LOG_WARN, "comet %s: address \"%s\" is not a URL",
                c->server, addr);
        return -1;
    }

    scheme = evhttp_uri_get_scheme(uri);
    h = evhttp_uri_get_host(uri);
    port = evhttp_uri_get_port(uri);
    p = evhttp_uri_get_path(uri);
    q = evhttp_uri_get_query(uri);

    if (scheme == NULL
        || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        || h == NULL || *h == '\0')
    {
        job_log(JOB_LOG_WARN, "comet %s: address \"%s\" is not an http://"
                " or https:// URL with a host", c->server, addr);
        evhttp_uri_free(uri);
        return -1;
    }

    c->tls = strcmp(scheme, "https") == 0;

    if (c->tls && job_comet_ssl_ctx() == NULL) {
        evhttp_uri_free(uri);
        return -1;
    }

    port = port > 0 ? port : c->tls ? 443 : 80;
    host = job_strndup(h, strlen(h));

    if (p == NULL || *p == '\0') {
        p = "/";
    }

    path = job_alloc(strlen(p) + (q ? strlen(q) + 1 : 0) + 1);
    strcpy(path, p);

    if (q) {
        strcat(path, "?");
        strcat(path, q);
    }

    evhttp_uri_free(uri);

    snprintf(hh, sizeof(hh), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
             port);

    free(c->addr);
    free(c->host);
    free(c->path);
    free(c->host_header);

    c->addr = job_strndup(addr, strlen(addr));
    c->host = host;
    c->port = port;
    c->path = path;
    c->host_header = job_strndup(hh, strlen(hh));

    if (c->req) {
        c->new_addr = 1;
        return 0;
    }

    return job_comet_connect(c);
}


static int
job_comet_connect(job_comet_t *c)
{
    int                  ok;
    SSL                 *ssl;
    unsigned char        addr[16];
    struct timeval       tv;
    struct bufferevent  *bev;
    X509_VERIFY_PARAM   *param;

    if (c->conn) {
        evhttp_connection_free(c->conn);
    }

    c->new_addr = 0;

    c->stale = 0;

    if (c->tls) {
        c->conn = NULL;

        ssl = SSL_new(job_comet_ssl);
        if (ssl == NULL) {
            job_log(JOB_LOG_ERROR, "comet %s: SSL_new() failed", c->server);
            return -1;
        }

        /* the certificate must name the host of the URL */
        param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param,
                                 X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);

        if (inet_pton(AF_INET, c->host, addr) == 1
            || inet_pton(AF_INET6, c->host, addr) == 1)
        {
            ok = X509_VERIFY_PARAM_set1_ip_asc(param, c->host);

        } else {
            ok = X509_VERIFY_PARAM_set1_host(param, c->host, 0)
                 && SSL_set_tlsext_host_name(ssl, c->host);
        }

        bev = ok ? bufferevent_openssl_socket_new(job_comet_base, -1, ssl,
                                             BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE
                                             | BEV_OPT_DEFER_CALLBACKS)
                 : NULL;
        if (bev == NULL) {
            SSL_free(ssl);
            job_log(JOB_LOG_ERROR, "comet %s: cannot set up TLS to %s",
                    c->server, c->host);
            return -1;
        }

        /* nginx may close a keep-alive connection without close_notify */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);

        c->conn = evhttp_connection_base_bufferevent_new(job_comet_base,
                                                         job_comet_dns, bev,
                                                         c->host,
                                                         (unsigned short)
                                                         c->port);
        if (c->conn == NULL) {
            bufferevent_free(bev);

        } else {
            evhttp_connection_set_closecb(c->conn, job_comet_closed, c);
        }

    } else {
        /* a host name is resolved by libevent's asynchronous resolver */
        c->conn = evhttp_connection_base_new(job_comet_base, job_comet_dns,
                                             c->host,
                                             (unsigned short) c->port);
    }

    if (c->conn == NULL) {
        job_log(JOB_LOG_ERROR, "comet %s: cannot create a connection to"
                " %s:%d", c->server, c->host, c->port);
        return -1;
    }

    tv.tv_sec = job_comet_conf->request_timeout / 1000;
    tv.tv_usec = (job_comet_conf->request_timeout % 1000) * 1000;
    evhttp_connection_set_timeout_tv(c->conn, &tv);
    evhttp_connection_set_retries(c->conn, 0);

    return 0;
}


/*
 * The comet left the registry (its record is gone and it does not
 * answer, goim_job_route.c): what is queued or retried for it can never
 * be delivered; it is counted and released so
 * the partitions' offsets move on.  When the job exits, the items are
 * only freed: their offsets were not stored, the group delivers them
 * again.
 */
void
job_comet_remove(job_comet_t *c, const char *why)
{
    size_t         n;
    job_item_t    *it;
    job_comet_t  **pp;

    for (pp = &job_comets; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }

    job_ncomets--;

    /* freeing the connection frees a request in flight, without a reply
     * callback */
    if (c->conn) {
        evhttp_connection_free(c->conn);
    }

    c->req = NULL;
    n = c->q.items;

    while ((it = job_queue_pop(&c->q)) != NULL) {
        if (!job_comet_closing) {
            c->undeliverable++;
            job_comet_st.undeliverable++;
        }

        job_comet_release(it);
    }

    if (job_comet_closing) {
        if (n) {
            job_log(JOB_LOG_WARN, "comet %s: %zu item(s) left undelivered,"
                    " Kafka delivers them again", c->server, n);
        }

    } else {
        job_log(n ? JOB_LOG_WARN : JOB_LOG_INFO, "comet %s removed (%s):"
                " %zu queued item(s) undeliverable", c->server, why, n);
    }

    event_free(c->retry_ev);
    free(c->server);
    free(c->addr);
    free(c->host);
    free(c->path);
    free(c->host_header);
    free(c);

    job_comet_flow();
}


void
job_comet_close_all(void)
{
    job_comet_closing = 1;

    while (job_comets) {
        job_comet_remove(job_comets, "exiting");
    }

    if (job_comet_ssl) {
        SSL_CTX_free(job_comet_ssl);
        job_comet_ssl = NULL;
    }
}


static void
job_comet_pack_item(job_item_t *it, Goim__CometPush *cp,
    Goim__Proto *proto, Goim__PushMsgReq *push, Goim__BroadcastRoomReq *room,
    Goim__BroadcastReq *bc)
{
    goim__comet_push__init(cp);
    goim__proto__init(proto);

    proto->ver = 1;
    proto->op = 9;  /* OP_RAW: the body is complete packets */
    proto->body.data = it->body;
    proto->body.len = it->len;

    switch (it->type) {

    case JOB_ITEM_PUSH:
        goim__push_msg_req__init(push);
        push->n_keys = it->nkeys;
        push->keys = it->keys;
        push->proto = proto;
        push->protoop = it->op;
        push->mid = it->mid;
        push->epoch = it->epoch;
        push->offset = it->offset;
        cp->req_case = GOIM__COMET_PUSH__REQ_PUSH;
        cp->push = push;
        break;

    case JOB_ITEM_ROOM:
        goim__broadcast_room_req__init(room);
        room->roomid = it->room;
        room->proto = proto;
        /* the positions (docs/PROTOCOL.md 5.2): one offset per packet */
        room->epoch = it->room_epoch;
        room->n_offsets = it->nmsgs;
        room->offsets = it->offsets;
        cp->req_case = GOIM__COMET_PUSH__REQ_ROOM;
        cp->room = room;
        break;

    default:
        goim__broadcast_req__init(bc);
        bc->protoop = it->op;
        bc->proto = proto;
        bc->speed = it->speed;
        cp->req_case = GOIM__COMET_PUSH__REQ_BROADCAST;
        cp->broadcast = bc;
        break;
    }
}


/* sends the queue's head unless a request or a retry is pending */
void
job_comet_send(job_comet_t *c)
{
    size_t                   n, size, total, max;
    uint8_t                 *body;
    job_item_t              *it;
    Goim__Proto             *protos;
    Goim__CometPush         *cps, **ptrs;
    Goim__PushMsgReq        *pushes;
    Goim__BroadcastReq      *bcs;
    Goim__CometPushBatch     batch;
    struct timeval           tv;
    struct evkeyvalq        *headers;
    struct evhttp_request   *req;
    Goim__BroadcastRoomReq  *rooms;

    if (c->req || c->q.head == NULL || job_comet_closing
        || evtimer_pending(c->retry_ev, NULL))
    {
        return;
    }

    if (c->tls && c->stale && c->conn) {
        /* a new connection, outside libevent's callbacks (the retry
         * handler makes it) */
        tv.tv_sec = 0;
        tv.tv_usec = 0;
        evtimer_add(c->retry_ev, &tv);
        return;
    }

    if (c->conn == NULL && job_comet_connect(c) != 0) {
        job_comet_retry(c, "no connection");
        return;
    }

    max = c->q.items < (size_t) job_comet_conf->max_pushes
          ? c->q.items : (size_t) job_comet_conf->max_pushes;

    protos = job_alloc(max * sizeof(Goim__Proto));
    cps = job_alloc(max * sizeof(Goim__CometPush));
    ptrs = job_alloc(max * sizeof(Goim__CometPush *));
    pushes = job_alloc(max * sizeof(Goim__PushMsgReq));
    rooms = job_alloc(max * sizeof(Goim__BroadcastRoomReq));
    bcs = job_alloc(max * sizeof(Goim__BroadcastReq));

    n = 0;
    total = 0;
    it = c->q.head;

    while (it && n < max) {
        job_comet_pack_item(it, &cps[n], &protos[n], &pushes[n], &rooms[n],
                            &bcs[n]);

        /* the field tag, the length and the message */
        size = goim__comet_push__get_packed_size(&cps[n]);
        size += 1 + (size < 128 ? 1 : size < 16384 ? 2 : size < 2097152
                     ? 3 : 5);

        if (total + size > job_comet_conf->max_request_bytes) {
            if (n) {
                break;
            }

            /* alone over the limit: no request can ever carry it */
            job_log(JOB_LOG_WARN, "comet %s: a %zu-byte item is over"
                    " max_request_bytes (%zu), undeliverable", c->server,
                    size, job_comet_conf->max_request_bytes);

            it = it->next;
            job_comet_drop(c, 1, "too large");
            continue;
        }

        job_queue_seal(&c->q, it);
        ptrs[n] = &cps[n];
        total += size;
        n++;
        it = it->next;
    }

    if (n == 0) {
        goto done;
    }

    goim__comet_push_batch__init(&batch);
    batch.n_pushes = n;
    batch.pushes = ptrs;

    body = job_alloc(total ? total : 1);
    total = goim__comet_push_batch__pack(&batch, body);

    req = evhttp_request_new(job_comet_reply, c);
    if (req == NULL) {
        free(body);
        job_comet_retry(c, "cannot create a request");
        goto done;
    }

    evhttp_request_set_error_cb(req, job_comet_http_error);

    headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Host", c->host_header);
    evhttp_add_header(headers, "Content-Type", "application/x-protobuf");
    evhttp_add_header(headers, "X-Goim-Secret", job_comet_conf->secret);

    evbuffer_add_reference(evhttp_request_get_output_buffer(req), body,
                           total, job_comet_free_body, NULL);

    c->sending = n;
    c->req = req;
    c->http_error = -1;

    job_log(JOB_LOG_DEBUG, "comet %s: POST %s, %zu item(s), %zu bytes",
            c->server, c->path, n, total);

    /* it fails at once only when no socket can be made (a refused or
     * failed connect is reported later, through the reply callback);
     * the request is then still ours */
    if (evhttp_make_request(c->conn, req, EVHTTP_REQ_POST, c->path) != 0) {
        evhttp_request_free(req);
        c->req = NULL;
        c->sending = 0;
        job_comet_retry(c, "cannot make a socket");
        goto done;
    }

    job_comet_nodelay(c);

done:

    free(protos);
    free(cps);
    free(ptrs);
    free(pushes);
    free(rooms);
    free(bcs);
}


/*
 * A request is written in pieces (libevent writes 16k at most at a time
 * unless told otherwise, OpenSSL a record at a time); with Nagle's
 * algorithm a piece after the first waits for the comet's ACK of the
 * earlier ones, which the comet delays up to 40 ms, reading on until
 * the body is complete: a batch of a few hundred items took 40 ms.
 * evhttp makes the socket when it connects (at once for an address,
 * after the resolver for a name), so each request sets the option on
 * the socket it goes out on.
 */
static void
job_comet_nodelay(job_comet_t *c)
{
    int                  one;
    evutil_socket_t      fd;
    struct bufferevent  *bev;

    bev = evhttp_connection_get_bufferevent(c->conn);
    if (bev == NULL) {
        return;
    }

    /* one write() for a plain request (its headers are under 4k), as
     * much of it as the socket buffer takes */
    (void) bufferevent_set_max_single_write(bev,
                                    job_comet_conf->max_request_bytes + 4096);

    fd = bufferevent_getfd(bev);
    if (fd == -1) {
        return;
    }

    one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        job_log(JOB_LOG_WARN, "comet %s: setsockopt(TCP_NODELAY) failed: %s",
                c->server, strerror(errno));
    }
}


static void
job_comet_free_body(const void *data, size_t len, void *arg)
{
    (void) len;
    (void) arg;

    free((void *) data);
}


static void
job_comet_http_error(enum evhttp_request_error error, void *arg)
{
    job_comet_t  *c = arg;

    c->http_error = (int) error;
}


static const char *
job_comet_http_strerror(int error)
{
    switch (error) {
    case EVREQ_HTTP_TIMEOUT:
        return "timed out";
    case EVREQ_HTTP_EOF:
        return "connection closed";
    case EVREQ_HTTP_INVALID_HEADER:
        return "invalid response header";
    case EVREQ_HTTP_BUFFER_ERROR:
        return "connection error";
    case EVREQ_HTTP_REQUEST_CANCEL:
        return "cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG:
        return "response too long";
    default:
        return "connection failed";
    }
}


static void
job_comet_reply(struct evhttp_request *req, void *arg)
{
    job_comet_t  *c = arg;

    int           code;
    long          accepted;
    char          msg[256], why[512], tls[200];
    size_t        n;

    n = c->sending;
    c->req = NULL;
    c->sending = 0;

    code = req ? evhttp_request_get_response_code(req) : 0;

    if (code == 0) {
        c->requests_failed++;
        job_comet_st.requests_failed++;
        snprintf(why, sizeof(why), "%s:%d %s%s", c->host, c->port,
                 job_comet_http_strerror(c->http_error),
                 job_comet_tls_error(c, tls, sizeof(tls)));

        /* the connection is reset by libevent (TLS: made anew); a new one
         * next time */
        c->stale = c->tls;
        job_comet_retry(c, why);
        goto next;
    }

    accepted = job_comet_accepted(req, n, msg, sizeof(msg));

    switch (code) {

    case 200:
        c->requests_ok++;
        job_comet_st.requests_ok++;
        job_comet_accept(c, n);
        break;

    case 503:
        c->requests_failed++;
        job_comet_st.requests_failed++;

        if (accepted < 0) {
            accepted = 0;
        }

        job_comet_accept(c, (size_t) accepted);
        snprintf(why, sizeof(why), "503 after %ld of %zu item(s): %s",
                 accepted, n, msg);
        job_comet_retry(c, why);
        break;

    case 400:
        c->requests_failed++;
        job_comet_st.requests_failed++;
        job_log(JOB_LOG_WARN, "comet %s refused %zu item(s) with 400: %s",
                c->server, n, msg);
        job_comet_drop(c, n, "refused by the comet");
        break;

    default:
        c->requests_failed++;
        job_comet_st.requests_failed++;
        snprintf(why, sizeof(why), "HTTP %d: %s", code, msg);
        job_comet_retry(c, why);
        break;
    }

next:

    if (c->new_addr && job_comet_connect(c) != 0) {
        job_comet_retry(c, "no connection");
    }

    job_comet_flow();
    job_comet_send(c);
}


/*
 * data.accepted of the reply's JSON envelope (-1 if absent) and its
 * message (for the logs).
 */
static long
job_comet_accepted(struct evhttp_request *req, size_t n, char *msg,
    size_t msglen)
{
    long              accepted;
    char             *text;
    size_t            len;
    yajl_val          tree, v;
    struct evbuffer  *in;

    static const char  *p_accepted[] = { "data", "accepted", NULL };
    static const char  *p_message[] = { "message", NULL };

    snprintf(msg, msglen, "no JSON body");

    in = evhttp_request_get_input_buffer(req);
    len = evbuffer_get_length(in);

    if (len == 0 || len > 65536) {
        return -1;
    }

    text = job_alloc(len + 1);
    evbuffer_copyout(in, text, len);

    tree = yajl_tree_parse(text, NULL, 0);
    free(text);

    if (tree == NULL) {
        return -1;
    }

    accepted = -1;

    v = yajl_tree_get(tree, p_message, yajl_t_string);
    if (v) {
        snprintf(msg, msglen, "\"%s\"", YAJL_GET_STRING(v));
    }

    v = yajl_tree_get(tree, p_accepted, yajl_t_number);
    if (v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0) {
        accepted = YAJL_GET_INTEGER(v) > (long long) n
                   ? (long) n : (long) YAJL_GET_INTEGER(v);
    }

    yajl_tree_free(tree);

    return accepted;
}


static void
job_comet_accept(job_comet_t *c, size_t n)
{
    job_item_t  *it;

    if (n == 0) {
        return;
    }

    c->backoff = 0;

    if (c->state != JOB_COMET_UP) {
        job_log(JOB_LOG_INFO, "comet %s up: %s", c->server, c->addr);
        c->state = JOB_COMET_UP;
    }

    while (n-- && (it = job_queue_pop(&c->q)) != NULL) {
        if (it->type == JOB_ITEM_ROOM) {
            job_comet_st.room_batches++;
        }

        job_comet_release(it);
    }
}


static void
job_comet_drop(job_comet_t *c, size_t n, const char *why)
{
    job_item_t  *it;

    while (n-- && (it = job_queue_pop(&c->q)) != NULL) {
        c->undeliverable++;
        job_comet_st.undeliverable++;

        job_log(JOB_LOG_WARN, "comet %s: %s item with %zu message(s) (first"
                " %d/%lld) undeliverable: %s", c->server,
                it->type == JOB_ITEM_PUSH ? "push"
                : it->type == JOB_ITEM_ROOM ? "room" : "broadcast",
                it->nmsgs, it->msgs[0]->partition,
                (long long) it->msgs[0]->offset, why);

        job_comet_release(it);
    }
}


static void
job_comet_release(job_item_t *it)
{
    size_t  i;

    for (i = 0; i < it->nmsgs; i++) {
        job_msg_release(it->msgs[i]);
    }

    job_item_free(it);
}


static void
job_comet_retry(job_comet_t *c, const char *why)
{
    int             delay;
    struct timeval  tv;

    c->backoff = c->backoff ? c->backoff * 2 : job_comet_conf->retry_min;
    if (c->backoff > job_comet_conf->retry_max) {
        c->backoff = job_comet_conf->retry_max;
    }

    /* jitter: half to the whole backoff, so jobs do not retry in step */
    delay = c->backoff / 2 + rand() % (c->backoff / 2 + 1);

    c->retries++;
    job_comet_st.retries++;

    if (c->state != JOB_COMET_DOWN) {
        job_log(JOB_LOG_WARN, "comet %s down: %s; retrying %zu item(s) every"
                " %d..%d ms", c->server, why, c->q.items,
                job_comet_conf->retry_min, job_comet_conf->retry_max);
        c->state = JOB_COMET_DOWN;

    } else {
        job_log(JOB_LOG_DEBUG, "comet %s: %s; retry in %d ms", c->server,
                why, delay);
    }

    tv.tv_sec = delay / 1000;
    tv.tv_usec = (delay % 1000) * 1000;
    evtimer_add(c->retry_ev, &tv);
}


static void
job_comet_retry_handler(evutil_socket_t fd, short events, void *arg)
{
    job_comet_t  *c = arg;

    (void) fd;
    (void) events;

    if (c->tls && c->stale && job_comet_connect(c) != 0) {
        job_comet_retry(c, "no connection");
        return;
    }

    job_comet_send(c);
}


/* libevent closed a connection: a TLS one cannot be connected again */
static void
job_comet_closed(struct evhttp_connection *conn, void *arg)
{
    job_comet_t  *c = arg;

    (void) conn;

    c->stale = 1;
}


/* made at the first https:// comet; verification is never off */
static SSL_CTX *
job_comet_ssl_ctx(void)
{
    char      buf[256];
    SSL_CTX  *ctx;

    if (job_comet_ssl) {
        return job_comet_ssl;
    }

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        job_log(JOB_LOG_ERROR, "TLS: SSL_CTX_new() failed");
        return NULL;
    }

    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    if (job_comet_conf->internal_ca
        ? SSL_CTX_load_verify_locations(ctx, job_comet_conf->internal_ca,
                                        NULL) != 1
        : SSL_CTX_set_default_verify_paths(ctx) != 1)
    {
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        job_log(JOB_LOG_ERROR, "TLS: cannot load the CA certificates of"
                " %s: %s", job_comet_conf->internal_ca
                           ? job_comet_conf->internal_ca : "the system",
                buf);
        SSL_CTX_free(ctx);
        return NULL;
    }

    job_comet_ssl = ctx;

    return ctx;
}


/* what OpenSSL said about a failed TLS connection, or "" */
static const char *
job_comet_tls_error(job_comet_t *c, char *buf, size_t len)
{
    long                 v;
    SSL                 *ssl;
    unsigned long        e;
    struct bufferevent  *bev;

    buf[0] = '\0';

    if (!c->tls || c->conn == NULL) {
        return buf;
    }

    bev = evhttp_connection_get_bufferevent(c->conn);
    if (bev == NULL) {
        return buf;
    }

    ssl = bufferevent_openssl_get_ssl(bev);
    v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    e = bufferevent_get_openssl_error(bev);

    if (v != X509_V_OK) {
        snprintf(buf, len, " (certificate verify failed: %s)",
                 X509_verify_cert_error_string(v));

    } else if (e) {
        buf[0] = ' ';
        buf[1] = '(';
        ERR_error_string_n(e, buf + 2, len - 3);
        strcat(buf, ")");
    }

    /* drain the rest: it would be reported with a later error */
    while (bufferevent_get_openssl_error(bev)) { /* void */ }

    return buf;
}


static void
job_comet_flow(void)
{
    if (job_comet_flow_handler) {
        job_comet_flow_handler();
    }
}


void
job_comet_queued(job_comet_t *c)
{
    /* the queue reached its bound: consumption pauses at once */
    if (!c->blocked
        && (c->q.items >= (size_t) job_comet_conf->queue_items
            || c->q.bytes >= job_comet_conf->queue_bytes))
    {
        job_comet_bound = 1;
    }

    job_comet_send(c);
}


int
job_comet_answers(job_comet_t *c)
{
    return c->req != NULL || c->state == JOB_COMET_UP;
}


int
job_comet_over(void)
{
    return job_comet_bound;
}


int
job_comet_blocked(void)
{
    int           full;
    job_conf_t   *cf;
    job_comet_t  *c;

    cf = job_comet_conf;
    full = 0;
    job_comet_bound = 0;

    for (c = job_comets; c; c = c->next) {
        if (c->q.items >= (size_t) cf->queue_items
            || c->q.bytes >= cf->queue_bytes)
        {
            if (!c->blocked) {
                job_log(JOB_LOG_INFO, "comet %s: queue full (%zu items,"
                        " %zu bytes): consumption paused", c->server,
                        c->q.items, c->q.bytes);
            }

            c->blocked = 1;

        } else if (c->blocked && c->q.items <= (size_t) cf->queue_items / 2
                   && c->q.bytes <= cf->queue_bytes / 2)
        {
            job_log(JOB_LOG_INFO, "comet %s: queue drained (%zu items)",
                    c->server, c->q.items);
            c->blocked = 0;
        }

        full |= c->blocked;
    }

    return full;
}


const job_comet_stats_t *
job_comet_stats(void)
{
    return &job_comet_st;
}
