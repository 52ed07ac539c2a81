
/*
 * goim for nginx: the logic API's Kafka producer (docs/PROTOCOL.md 4.1),
 * one librdkafka producer per worker process, created after the fork.
 *
 * librdkafka runs its own threads; everything it has for us (delivery
 * reports, errors, its log lines) goes to its main queue, and the queue
 * writes a byte to a pipe when it becomes non-empty.  The pipe's read
 * end is an nginx connection: its read event serves the queue on
 * nginx's thread, so callbacks never run on librdkafka's threads and
 * nothing blocks the worker.
 *
 * An API request produces its messages as a batch and is answered only
 * when every one of them was acknowledged or failed (logic/).  A batch
 * comes from a free list that lives as long as the worker, since a
 * report may come after the request has gone: the owner's pool cleanup
 * only detaches it.
 */


#include "ngx_goim_kafka.h"

#include <librdkafka/rdkafka.h>

#include <goim.pb-c.h>


#define NGX_GOIM_KAFKA_EXIT_FLUSH  2000
#define NGX_GOIM_KAFKA_PROBE       1000

/* librdkafka scans for timed out messages about once a second */
#define NGX_GOIM_KAFKA_REPORT_LAG  2000


struct ngx_goim_kafka_batch_s {
    ngx_queue_t                queue;       /* all batches of the worker */
    ngx_goim_kafka_batch_t    *next;        /* free list */

    ngx_goim_kafka_done_pt     done;
    void                      *data;
    ngx_pool_t                *pool;        /* the owner's */
    ngx_log_t                 *log;
    ngx_pool_cleanup_t        *cleanup;
    ngx_event_t                timer;       /* reports overdue */
    ngx_msec_t                 start;

    ngx_uint_t                 total;       /* messages the owner needs */
    ngx_uint_t                 outstanding; /* produced, not reported */
    ngx_uint_t                 acked;

    rd_kafka_resp_err_t        refused;     /* by rd_kafka_producev() */
    rd_kafka_resp_err_t        failed;      /* first failed delivery */
    unsigned                   owned:1;     /* 0: finished or gone */
    unsigned                   invalid:1;   /* a NUL byte in a string */
    unsigned                   overdue:1;
};


typedef struct {
    rd_kafka_t                *rk;
    rd_kafka_topic_t          *rkt;
    rd_kafka_queue_t          *queue;       /* the main queue */
    ngx_connection_t          *conn;        /* the pipe's read end */
    ngx_fd_t                   wfd;         /* its write end */
    ngx_goim_kafka_conf_t     *conf;

    ngx_queue_t                batches;
    ngx_goim_kafka_batch_t    *free;
    ngx_uint_t                 exiting;     /* no more answers */

    /* kafka_up before the first report: metadata from a broker */
    ngx_event_t                probe;
    ngx_uint_t                 reported;    /* an ack or a failure seen */
} ngx_goim_kafka_t;


static void ngx_goim_kafka_read_handler(ngx_event_t *rev);
static void ngx_goim_kafka_serve(void);
static void ngx_goim_kafka_probe(ngx_event_t *ev);
static void ngx_goim_kafka_delivered(rd_kafka_t *rk,
    const rd_kafka_message_t *msg, void *opaque);
static void ngx_goim_kafka_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);
static void ngx_goim_kafka_log(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static char *ngx_goim_kafka_cstr(ngx_pool_t *pool, ngx_str_t *s,
    ngx_uint_t *invalid);
static void ngx_goim_kafka_overdue(ngx_event_t *ev);
static void ngx_goim_kafka_reported(ngx_goim_kafka_batch_t *b);
static void ngx_goim_kafka_detach(void *data);
static ngx_int_t ngx_goim_kafka_produce_msg(ngx_goim_kafka_batch_t *b,
    ngx_uint_t type, int32_t op, int32_t speed, ngx_str_t *server,
    ngx_str_t *room, ngx_str_t *keys, ngx_uint_t nkeys, ngx_str_t *body,
    int64_t mid, uint64_t epoch, uint64_t offset);
static void ngx_goim_kafka_release(ngx_goim_kafka_batch_t *b);


static ngx_goim_kafka_t  ngx_goim_kafka;


/* the worker's producer, its topic and the pipe of its main queue */

ngx_int_t
ngx_goim_kafka_init(ngx_cycle_t *cycle)
{
    int                     fds[2];
    char                    errstr[512];
    ngx_connection_t       *c;
    rd_kafka_conf_t        *rkc;
    ngx_goim_conf_t        *gcf;
    ngx_goim_kafka_t       *k = &ngx_goim_kafka;

    static const u_char     wake = 1;

    gcf = ngx_goim_get_conf(cycle);

    ngx_memzero(k, sizeof(ngx_goim_kafka_t));
    ngx_queue_init(&k->batches);
    k->wfd = NGX_INVALID_FILE;

    if (gcf->kafka == NULL) {
        return NGX_OK;
    }

    k->conf = gcf->kafka;

    rkc = ngx_goim_kafka_rdconf(gcf, cycle->log);
    if (rkc == NULL) {
        return NGX_ERROR;
    }

    rd_kafka_conf_set_dr_msg_cb(rkc, ngx_goim_kafka_delivered);
    rd_kafka_conf_set_error_cb(rkc, ngx_goim_kafka_error);
    rd_kafka_conf_set_log_cb(rkc, ngx_goim_kafka_log);

    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, errstr, sizeof(errstr));
    if (k->rk == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim: kafka: creating the producer failed: %s",
                      errstr);
        rd_kafka_conf_destroy(rkc);
        return NGX_ERROR;
    }

    /* rd_kafka_new() owns rkc now */

    k->rkt = rd_kafka_topic_new(k->rk, (char *) k->conf->topic.data, NULL);
    if (k->rkt == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim: kafka: topic \"%V\": %s", &k->conf->topic,
                      rd_kafka_err2str(rd_kafka_last_error()));
        goto failed;
    }

    if (pipe(fds) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "goim: kafka: pipe() failed");
        goto failed;
    }

    /* librdkafka's threads write: they must never block on a full pipe */
    if (ngx_nonblocking(fds[0]) == -1 || ngx_nonblocking(fds[1]) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "goim: kafka: " ngx_nonblocking_n " failed");
        close(fds[0]);
        close(fds[1]);
        goto failed;
    }

    k->wfd = fds[1];

    c = ngx_get_connection(fds[0], cycle->log);
    if (c == NULL) {
        close(fds[0]);
        goto failed;
    }

    k->conn = c;
    c->read->handler = ngx_goim_kafka_read_handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    c->data = NULL;

    if (ngx_add_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
        goto failed;
    }

    /* the log lines of every thread go to the main queue, served by us */
    if (rd_kafka_set_log_queue(k->rk, NULL) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim: kafka: rd_kafka_set_log_queue() failed");
        goto failed;
    }

    k->queue = rd_kafka_queue_get_main(k->rk);
    rd_kafka_queue_io_event_enable(k->queue, k->wfd, &wake, 1);

    /* what was queued before the pipe was there signals nothing */
    ngx_goim_kafka_serve();

    k->probe.handler = ngx_goim_kafka_probe;
    k->probe.log = cycle->log;
    k->probe.data = c;             /* ngx_event_ident() reads it */
    k->probe.cancelable = 1;
    ngx_add_timer(&k->probe, NGX_GOIM_KAFKA_PROBE);

    return NGX_OK;

failed:

    ngx_goim_kafka_exit(cycle);

    return NGX_ERROR;
}


/*
 * Graceful exit waits for the requests (their timers are not
 * cancelable), so what is left here belongs to clients that went away,
 * or to a fast shutdown: flushed for a bounded time, the rest dropped.
 */

void
ngx_goim_kafka_exit(ngx_cycle_t *cycle)
{
    int                       left;
    ngx_msec_t                wait;
    ngx_queue_t              *q;
    ngx_goim_kafka_t         *k = &ngx_goim_kafka;
    ngx_goim_kafka_batch_t   *b;

    if (k->conf == NULL) {
        /* no goim_kafka, or not a worker process */
        return;
    }

    k->exiting = 1;

    if (k->probe.timer_set) {
        ngx_del_timer(&k->probe);
    }

    if (k->rk) {
        if (k->queue) {
            rd_kafka_queue_io_event_enable(k->queue, -1, NULL, 0);
        }

        if (rd_kafka_outq_len(k->rk) > 0) {
            wait = ngx_min(k->conf->timeout, NGX_GOIM_KAFKA_EXIT_FLUSH);

            /* serves the reports: no answers while exiting */
            rd_kafka_flush(k->rk, wait);

            left = rd_kafka_outq_len(k->rk);

            if (left > 0) {
                ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                              "goim: kafka: %d messages still in flight "
                              "%M ms after exit began, dropped", left, wait);

                rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE
                                      |RD_KAFKA_PURGE_F_INFLIGHT);
                while (rd_kafka_poll(k->rk, 0) > 0) { /* void */ }
            }
        }

        if (k->queue) {
            rd_kafka_queue_destroy(k->queue);
            k->queue = NULL;
        }

        if (k->rkt) {
            rd_kafka_topic_destroy(k->rkt);
            k->rkt = NULL;
        }

        rd_kafka_destroy(k->rk);
        k->rk = NULL;
        ngx_goim_worker.stats->kafka_up = 0;
    }

    if (k->conn) {
        ngx_close_connection(k->conn);
        k->conn = NULL;
    }

    if (k->wfd != NGX_INVALID_FILE) {
        close(k->wfd);
        k->wfd = NGX_INVALID_FILE;
    }

    while (!ngx_queue_empty(&k->batches)) {
        q = ngx_queue_head(&k->batches);
        ngx_queue_remove(q);
        b = ngx_queue_data(q, ngx_goim_kafka_batch_t, queue);

        if (b->timer.timer_set) {
            ngx_del_timer(&b->timer);
        }

        if (b->cleanup) {
            b->cleanup->handler = NULL;
        }

        ngx_free(b);
    }

    k->free = NULL;
}


/* the queue turned non-empty: drain the pipe, then serve it all */

static void
ngx_goim_kafka_read_handler(ngx_event_t *rev)
{
    u_char             buf[64];
    ssize_t            n;
    ngx_connection_t  *c;

    c = rev->data;

    do {
        n = read(c->fd, buf, sizeof(buf));
    } while (n > 0);

    if (n == -1 && ngx_errno != NGX_EAGAIN) {
        ngx_log_error(NGX_LOG_ALERT, rev->log, ngx_errno,
                      "goim: kafka: read() of the wake-up pipe failed");
    }

    ngx_goim_kafka_serve();
}


/*
 * librdkafka signals only when the queue goes from empty to non-empty:
 * whatever stays queued now would never wake us again.
 */

static void
ngx_goim_kafka_serve(void)
{
    while (rd_kafka_poll(ngx_goim_kafka.rk, 0) > 0) {
        /* void */
    }
}


/*
 * librdkafka tells of brokers going down, not of them coming up: until
 * the first report, a known controller (metadata a broker sent since
 * the start) says a broker was reached.  rd_kafka_controllerid() with
 * no timeout only reads the cached metadata.
 */

static void
ngx_goim_kafka_probe(ngx_event_t *ev)
{
    if (ngx_goim_kafka.reported) {
        return;
    }

    if (rd_kafka_controllerid(ngx_goim_kafka.rk, 0) != -1) {
        ngx_goim_worker.stats->kafka_up = 1;
        return;
    }

    ngx_add_timer(ev, NGX_GOIM_KAFKA_PROBE);
}


static void
ngx_goim_kafka_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg,
    void *opaque)
{
    ngx_goim_stats_t        *st;
    rd_kafka_resp_err_t      err;
    ngx_goim_kafka_batch_t  *b;

    b = msg->_private;
    st = ngx_goim_worker.stats;

    st->kafka_in_flight--;
    b->outstanding--;
    ngx_goim_kafka.reported = 1;

    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        st->kafka_acked++;
        st->kafka_latency_ms += ngx_current_msec - b->start;
        st->kafka_up = 1;
        b->acked++;

    } else {
        st->kafka_failed++;

        err = msg->err;

        /*
         * purged for an overdue batch (ngx_goim_kafka_overdue()) after
         * its own timeout: what librdkafka should have reported
         */
        if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE
            && ngx_current_msec - b->start >= ngx_goim_kafka.conf->timeout)
        {
            err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
        }

        if (b->failed == RD_KAFKA_RESP_ERR_NO_ERROR) {
            b->failed = err;
        }

        /* a broker's refusal (e.g. too large) says it is up */
        if (err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
            st->kafka_up = 0;
        }
    }

    if (b->outstanding == 0) {
        ngx_goim_kafka_reported(b);
    }
}


static void
ngx_goim_kafka_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        ngx_goim_worker.stats->kafka_up = 0;
        ngx_goim_kafka.reported = 1;
    }

    if (err == RD_KAFKA_RESP_ERR__TRANSPORT) {
        /* librdkafka has logged the same as "FAIL" already */
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0, "goim: kafka: %s: %s",
                  rd_kafka_err2name(err), reason);
}


/* syslog levels, as librdkafka uses them, are nginx's minus one */

static void
ngx_goim_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    ngx_uint_t  lvl;

    lvl = (level < 0) ? NGX_LOG_EMERG
                      : (level > 7) ? NGX_LOG_DEBUG : (ngx_uint_t) level + 1;

    ngx_log_error(lvl, ngx_cycle->log, 0, "goim: kafka: %s: %s", fac, buf);
}


/* batches */

ngx_goim_kafka_batch_t *
ngx_goim_kafka_batch(ngx_pool_t *pool, ngx_log_t *log, ngx_uint_t n,
    ngx_goim_kafka_done_pt done, void *data)
{
    ngx_pool_cleanup_t      *cln;
    ngx_goim_kafka_t        *k = &ngx_goim_kafka;
    ngx_goim_kafka_batch_t  *b;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    if (k->free) {
        b = k->free;
        k->free = b->next;

    } else {
        b = ngx_alloc(sizeof(ngx_goim_kafka_batch_t), log);
        if (b == NULL) {
            return NULL;
        }

        ngx_queue_insert_tail(&k->batches, &b->queue);
    }

    b->next = NULL;
    b->done = done;
    b->data = data;
    b->pool = pool;
    b->log = log;
    b->cleanup = cln;
    ngx_memzero(&b->timer, sizeof(ngx_event_t));
    b->start = ngx_current_msec;
    b->total = n;
    b->outstanding = 0;
    b->acked = 0;
    b->refused = RD_KAFKA_RESP_ERR_NO_ERROR;
    b->failed = RD_KAFKA_RESP_ERR_NO_ERROR;
    b->owned = 1;
    b->invalid = 0;
    b->overdue = 0;

    cln->handler = ngx_goim_kafka_detach;
    cln->data = b;

    return b;
}


/*
 * One goim.PushMsg, keyed as goim keys it: PUSH by its first key, ROOM
 * by the room, BROADCAST by the operation in decimal.  NGX_ERROR when it
 * was not queued (the batch's result says why): produce no more for it.
 */

ngx_int_t
ngx_goim_kafka_produce(ngx_goim_kafka_batch_t *b, ngx_uint_t type, int32_t op,
    int32_t speed, ngx_str_t *server, ngx_str_t *room, ngx_str_t *keys,
    ngx_uint_t nkeys, ngx_str_t *body)
{
    return ngx_goim_kafka_produce_msg(b, type, op, speed, server, room, keys,
                                      nkeys, body, 0, 0, 0);
}


/*
 * A PUSH to the keys of one member, on one server, with the position of
 * its message in offline_<mid> (docs/PROTOCOL.md 4.2)
 */

ngx_int_t
ngx_goim_kafka_produce_member(ngx_goim_kafka_batch_t *b, int32_t op,
    ngx_str_t *server, ngx_str_t *keys, ngx_uint_t nkeys, ngx_str_t *body,
    int64_t mid, uint64_t epoch, uint64_t offset)
{
    return ngx_goim_kafka_produce_msg(b, NGX_GOIM_KAFKA_PUSH, op, 0, server,
                                      NULL, keys, nkeys, body, mid, epoch,
                                      offset);
}


static ngx_int_t
ngx_goim_kafka_produce_msg(ngx_goim_kafka_batch_t *b, ngx_uint_t type,
    int32_t op, int32_t speed, ngx_str_t *server, ngx_str_t *room,
    ngx_str_t *keys, ngx_uint_t nkeys, ngx_str_t *body, int64_t mid,
    uint64_t epoch, uint64_t offset)
{
    u_char               *buf, opkey[NGX_INT64_LEN];
    size_t                len, klen;
    ngx_uint_t            i, bad;
    const void           *key;
    ngx_pool_t           *pool;
    ngx_goim_stats_t     *st;
    Goim__PushMsg         pm = GOIM__PUSH_MSG__INIT;
    rd_kafka_resp_err_t   err;

    pool = b->pool;
    st = ngx_goim_worker.stats;

    pm.type = type;
    pm.operation = op;
    pm.speed = speed;
    pm.msg.data = body->data;
    pm.msg.len = body->len;
    pm.mid = mid;
    pm.epoch = epoch;
    pm.offset = offset;

    if (server) {
        pm.server = ngx_goim_kafka_cstr(pool, server, &bad);
        if (pm.server == NULL) {
            return NGX_ERROR;
        }

        b->invalid |= bad;
    }

    if (room) {
        pm.room = ngx_goim_kafka_cstr(pool, room, &bad);
        if (pm.room == NULL) {
            return NGX_ERROR;
        }

        b->invalid |= bad;
    }

    if (nkeys) {
        pm.keys = ngx_palloc(pool, nkeys * sizeof(char *));
        if (pm.keys == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < nkeys; i++) {
            pm.keys[i] = ngx_goim_kafka_cstr(pool, &keys[i], &bad);
            if (pm.keys[i] == NULL) {
                return NGX_ERROR;
            }

            b->invalid |= bad;
        }

        pm.n_keys = nkeys;
    }

    if (b->invalid) {
        /* protobuf strings end at a NUL: the key would be another one */
        return NGX_ERROR;
    }

    switch (type) {

    case NGX_GOIM_KAFKA_PUSH:
        if (mid) {
            /* one member's messages in one partition, in order */
            key = opkey;
            klen = ngx_sprintf(opkey, "%L", mid) - opkey;
            break;
        }

        key = keys[0].data;
        klen = keys[0].len;
        break;

    case NGX_GOIM_KAFKA_ROOM:
        key = room->data;
        klen = room->len;
        break;

    default: /* NGX_GOIM_KAFKA_BROADCAST */
        key = opkey;
        klen = ngx_sprintf(opkey, "%D", op) - opkey;
        break;
    }

    len = goim__push_msg__get_packed_size(&pm);

    /* librdkafka frees it (RD_KAFKA_MSG_F_FREE) once it is delivered */
    buf = ngx_alloc(len, b->log);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    goim__push_msg__pack(&pm, buf);

    err = rd_kafka_producev(ngx_goim_kafka.rk,
                            RD_KAFKA_V_RKT(ngx_goim_kafka.rkt),
                            RD_KAFKA_V_VALUE(buf, len),
                            RD_KAFKA_V_KEY(key, klen),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                            RD_KAFKA_V_OPAQUE(b),
                            RD_KAFKA_V_END);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* not queued: the payload is still ours */
        ngx_free(buf);

        b->refused = err;

        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            st->kafka_queue_full++;
        }

        ngx_log_error(NGX_LOG_WARN, b->log, 0,
                      "goim: kafka: producing to \"%V\" failed: %s",
                      &ngx_goim_kafka.conf->topic, rd_kafka_err2str(err));

        return NGX_ERROR;
    }

    b->outstanding++;
    st->kafka_produced++;
    st->kafka_in_flight++;

    return NGX_OK;
}


/* a NUL-terminated copy; *invalid when s held a NUL itself */

static char *
ngx_goim_kafka_cstr(ngx_pool_t *pool, ngx_str_t *s, ngx_uint_t *invalid)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_cpymem(p, s->data, s->len) = '\0';
    *invalid = (ngx_strlen(p) != s->len);

    return (char *) p;
}


ngx_int_t
ngx_goim_kafka_wait(ngx_goim_kafka_batch_t *b)
{
    if (b->outstanding == 0) {
        return NGX_OK;
    }

    /* not cancelable: a graceful exit waits for the answer */
    ngx_goim_event_init(&b->timer, ngx_goim_kafka_overdue, b->log, 0);
    ngx_add_timer(&b->timer, ngx_goim_kafka.conf->timeout
                             + NGX_GOIM_KAFKA_REPORT_LAG);

    return NGX_DONE;
}


/*
 * librdkafka 2.0 does not time out a message queued for a partition
 * whose leader it knows while that broker is down: it waits for the
 * broker, past message.timeout.ms.  A message that late means the
 * brokers are unreachable, so the producer's queue is purged: every
 * queued message fails now, instead of being delivered long after its
 * request was answered with an error.  rd_kafka_purge() waits briefly
 * for librdkafka's threads; it happens only on this failure.
 */

static void
ngx_goim_kafka_overdue(ngx_event_t *ev)
{
    ngx_goim_kafka_batch_t  *b;

    b = (ngx_goim_kafka_batch_t *)
            ((u_char *) ev - offsetof(ngx_goim_kafka_batch_t, timer));

    ngx_log_error(NGX_LOG_ERR, b->log, 0,
                  "goim: kafka: no delivery report for %ui of %ui messages "
                  "%M ms after their timeout, purging %d queued messages",
                  b->outstanding, b->total,
                  (ngx_msec_t) NGX_GOIM_KAFKA_REPORT_LAG,
                  rd_kafka_outq_len(ngx_goim_kafka.rk));

    b->overdue = 1;

    rd_kafka_purge(ngx_goim_kafka.rk, RD_KAFKA_PURGE_F_QUEUE);

    /* the purged messages' reports may finish the batch */
    ngx_goim_kafka_serve();

    if (!b->owned) {
        return;
    }

    /* in flight to a broker: the report comes later, the answer now */
    b->done(b, b->data);
}


/* the last report of a batch's messages */

static void
ngx_goim_kafka_reported(ngx_goim_kafka_batch_t *b)
{
    if (!b->owned) {
        /* finished (overdue) or gone */
        ngx_goim_kafka_release(b);
        return;
    }

    if (ngx_goim_kafka.exiting) {
        /* a fast shutdown: nginx never finishes the request */
        return;
    }

    b->done(b, b->data);
}


/*
 * Messages produced before a failure stay produced: the result says how
 * many were acknowledged.
 */

void
ngx_goim_kafka_result(ngx_goim_kafka_batch_t *b, ngx_goim_kafka_result_t *res)
{
    res->total = b->total;
    res->acked = b->acked;
    res->invalid = b->invalid;
    res->queue_full = (b->refused == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    res->error = NULL;

    if (b->refused) {
        res->error = rd_kafka_err2str(b->refused);

    } else if (b->overdue) {
        /* its messages were purged, or are still in flight */
        res->error = rd_kafka_err2str(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);

    } else if (b->failed) {
        res->error = rd_kafka_err2str(b->failed);
    }
}


void
ngx_goim_kafka_finish(ngx_goim_kafka_batch_t *b)
{
    b->owned = 0;
    b->cleanup->handler = NULL;
    b->cleanup = NULL;

    if (b->timer.timer_set) {
        ngx_del_timer(&b->timer);
    }

    if (b->outstanding == 0) {
        ngx_goim_kafka_release(b);
    }
}


/* the owner's pool is freed before its answer: the reports wait */

static void
ngx_goim_kafka_detach(void *data)
{
    ngx_goim_kafka_batch_t  *b = data;

    b->owned = 0;
    b->cleanup = NULL;

    if (b->timer.timer_set) {
        ngx_del_timer(&b->timer);
    }

    if (b->outstanding == 0) {
        ngx_goim_kafka_release(b);
    }
}


static void
ngx_goim_kafka_release(ngx_goim_kafka_batch_t *b)
{
    b->next = ngx_goim_kafka.free;
    ngx_goim_kafka.free = b;
}
