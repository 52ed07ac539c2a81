
/*
 * goim for nginx: one asynchronous Redis connection per worker, hiredis
 * driven by nginx's event loop.  The hiredis socket is wrapped in an
 * ngx_connection_t whose events hiredis switches on and off through its
 * ev hooks; nothing blocks, not even the connect.
 *
 * hiredis 0.14 has no timeouts in its async API, so every command runs
 * under an nginx timer: when it fires, the command fails and the whole
 * context is dropped, since a reply that comes late would answer the
 * wrong command otherwise.  A lost or dropped connection is made again
 * with a growing, jittered delay; meanwhile commands fail at once.
 */


#include "ngx_goim_redis.h"


#define NGX_GOIM_REDIS_ON_CONNECT   4
#define NGX_GOIM_REDIS_TIMEOUT      1000
#define NGX_GOIM_SESSION_TTL        1800
#define NGX_GOIM_REDIS_BACKOFF_MIN  100
#define NGX_GOIM_REDIS_BACKOFF_MAX  5000


struct ngx_goim_redis_req_s {
    ngx_goim_redis_cb_pt       cb;          /* NULL: cancelled or done */
    void                      *data;
    redisAsyncContext         *ac;
    ngx_event_t                timer;
    ngx_msec_t                 start;
};


typedef struct {
    ngx_goim_redis_conf_t     *conf;
    ngx_log_t                 *log;

    redisAsyncContext         *ac;          /* NULL: not connected */
    ngx_uint_t                 connected;   /* the TCP connect completed */

    /* contexts dropped by us, freed from a posted event (ac->data links) */
    redisAsyncContext         *dead;
    ngx_event_t                free_event;

    ngx_event_t                connect_timer;
    ngx_event_t                reconnect;
    ngx_msec_t                 backoff;     /* 0: start over */
    ngx_uint_t                 was_lost;    /* a connect is made again */

    ngx_goim_redis_connect_pt  connect[NGX_GOIM_REDIS_ON_CONNECT];
    ngx_uint_t                 nconnect;

    /* "not connected" is logged at most once a second */
    ngx_msec_t                 down_logged;
    ngx_uint_t                 down_failed;
} ngx_goim_redis_t;


static void ngx_goim_redis_connect(void);
static void ngx_goim_redis_lost(const redisAsyncContext *ac,
    const char *why);
static void ngx_goim_redis_drop(const char *why);
static void ngx_goim_redis_schedule(void);
static void ngx_goim_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_goim_redis_connect_timeout(ngx_event_t *ev);
static void ngx_goim_redis_free_handler(ngx_event_t *ev);
static void ngx_goim_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_goim_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_goim_redis_handshake(redisReply *reply, void *data,
    const char *err);
static ngx_goim_redis_req_t *ngx_goim_redis_req(ngx_goim_redis_cb_pt cb,
    void *data);
static ngx_goim_redis_req_t *ngx_goim_redis_queued(ngx_goim_redis_req_t *req,
    int rc, size_t len, const char *name);
static void ngx_goim_redis_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_goim_redis_timeout(ngx_event_t *ev);
static void ngx_goim_redis_read_handler(ngx_event_t *rev);
static void ngx_goim_redis_write_handler(ngx_event_t *wev);
static void ngx_goim_redis_add_read(void *privdata);
static void ngx_goim_redis_del_read(void *privdata);
static void ngx_goim_redis_add_write(void *privdata);
static void ngx_goim_redis_del_write(void *privdata);
static void ngx_goim_redis_cleanup(void *privdata);


static ngx_goim_redis_t  ngx_goim_redis;


/* the connection's life */

ngx_int_t
ngx_goim_redis_init(ngx_cycle_t *cycle)
{
    ngx_goim_conf_t        *gcf;
    ngx_goim_redis_t       *r = &ngx_goim_redis;
    ngx_goim_redis_conf_t  *rcf;

    ngx_memzero(r, sizeof(ngx_goim_redis_t));

    if (ngx_goim_mode() == NGX_GOIM_EMBEDDED) {
        return NGX_OK;
    }

    gcf = ngx_goim_get_conf(cycle);
    rcf = gcf->redis;

    if (rcf->timeout == NGX_CONF_UNSET_MSEC) {
        rcf->timeout = NGX_GOIM_REDIS_TIMEOUT;
    }

    if (rcf->session_ttl == NGX_CONF_UNSET) {
        rcf->session_ttl = NGX_GOIM_SESSION_TTL;
    }

    r->conf = rcf;
    r->log = cycle->log;

    ngx_goim_event_init(&r->free_event, ngx_goim_redis_free_handler,
                        cycle->log, 0);
    ngx_goim_event_init(&r->connect_timer, ngx_goim_redis_connect_timeout,
                        cycle->log, 1);
    ngx_goim_event_init(&r->reconnect, ngx_goim_redis_reconnect_handler,
                        cycle->log, 1);

    /* the connect completes in the event loop, after every on_connect */
    ngx_goim_redis_connect();

    return NGX_OK;
}


/*
 * What the node does on each connect: the sessions written again after
 * a loss (ngx_goim_session.c), the comet record (ngx_goim_comets.c).
 */

ngx_int_t
ngx_goim_redis_on_connect(ngx_goim_redis_connect_pt handler)
{
    ngx_goim_redis_t  *r = &ngx_goim_redis;

    if (r->nconnect == NGX_GOIM_REDIS_ON_CONNECT) {
        return NGX_ERROR;
    }

    r->connect[r->nconnect++] = handler;

    return NGX_OK;
}


void
ngx_goim_redis_exit(ngx_cycle_t *cycle)
{
    redisAsyncContext  *ac;
    ngx_goim_redis_t   *r = &ngx_goim_redis;

    if (r->conf == NULL) {
        return;
    }

    if (r->reconnect.timer_set) {
        ngx_del_timer(&r->reconnect);
    }

    if (r->connect_timer.timer_set) {
        ngx_del_timer(&r->connect_timer);
    }

    if (r->free_event.posted) {
        ngx_delete_posted_event(&r->free_event);
    }

    if (r->ac) {
        ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac);
    }

    ngx_goim_redis_free_handler(&r->free_event);

    r->conf = NULL;
}


static void
ngx_goim_redis_connect(void)
{
    redisAsyncContext      *ac;
    ngx_connection_t       *c;
    ngx_goim_redis_t       *r = &ngx_goim_redis;
    ngx_goim_redis_conf_t  *rcf = r->conf;

    if (rcf->port) {
        ac = redisAsyncConnect((const char *) rcf->host.data, rcf->port);

    } else {
        ac = redisAsyncConnectUnix((const char *) rcf->host.data);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->log, 0,
                      "goim: Redis %V: out of memory", &rcf->name);
        ngx_goim_redis_schedule();
        return;
    }

    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, r->log, 0,
                      "goim: Redis %V: connect failed: %s",
                      &rcf->name, ac->errstr);
        redisAsyncFree(ac);
        ngx_goim_redis_schedule();
        return;
    }

    c = ngx_get_connection(ac->c.fd, r->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_goim_redis_schedule();
        return;
    }

    c->data = ac;
    c->read->handler = ngx_goim_redis_read_handler;
    c->write->handler = ngx_goim_redis_write_handler;
    c->read->log = r->log;
    c->write->log = r->log;

    ac->ev.data = c;
    ac->ev.addRead = ngx_goim_redis_add_read;
    ac->ev.delRead = ngx_goim_redis_del_read;
    ac->ev.addWrite = ngx_goim_redis_add_write;
    ac->ev.delWrite = ngx_goim_redis_del_write;
    ac->ev.cleanup = ngx_goim_redis_cleanup;

    r->ac = ac;
    r->connected = 0;

    /* the connect completes on the first write event */
    redisAsyncSetConnectCallback(ac, ngx_goim_redis_connected);
    redisAsyncSetDisconnectCallback(ac, ngx_goim_redis_on_disconnect);

    ngx_add_timer(&r->connect_timer, rcf->timeout);

    /* queued first, so they run before any command of ours */

    if (rcf->password.len
        && ngx_goim_redis_command(ngx_goim_redis_handshake, "AUTH",
                                  "AUTH %b", rcf->password.data,
                                  rcf->password.len)
           == NULL)
    {
        ngx_goim_redis_drop("AUTH not sent");
        return;
    }

    if (rcf->db
        && ngx_goim_redis_command(ngx_goim_redis_handshake, "SELECT",
                                  "SELECT %d", (int) rcf->db)
           == NULL)
    {
        ngx_goim_redis_drop("SELECT not sent");
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, r->log, 0,
                   "goim: Redis %V: connecting", &rcf->name);
}


static void
ngx_goim_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_uint_t         i, after_loss;
    ngx_goim_redis_t  *r = &ngx_goim_redis;

    if (ac != r->ac) {
        return;
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns */
        ngx_goim_redis_lost(ac, ac->errstr);
        return;
    }

    r->connected = 1;

    if (r->connect_timer.timer_set) {
        ngx_del_timer(&r->connect_timer);
    }

    ngx_log_error(NGX_LOG_INFO, r->log, 0, "goim: Redis %V: connected",
                  &r->conf->name);

    ngx_goim_worker.stats->redis_up = 1;

    /* Redis may have lost what we wrote (a restart without data) */
    after_loss = r->was_lost;
    r->was_lost = 0;

    for (i = 0; i < r->nconnect; i++) {
        r->connect[i](after_loss);
    }
}


static void
ngx_goim_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_goim_redis_lost(ac, status == REDIS_OK ? "connection closed"
                                               : ac->errstr);
}


/*
 * hiredis gave up the context (connect failed, the server closed, an I/O
 * error) and frees it itself: forget it and try again later.
 */

static void
ngx_goim_redis_lost(const redisAsyncContext *ac, const char *why)
{
    ngx_goim_redis_t  *r = &ngx_goim_redis;

    if (ac != r->ac) {
        /* one of ours being freed, or already known */
        return;
    }

    r->ac = NULL;
    r->was_lost = 1;
    ngx_goim_worker.stats->redis_up = 0;

    /* until written again, this worker's sessions may be missing */
    ngx_goim_registry_sessions_dirty();

    if (r->connect_timer.timer_set) {
        ngx_del_timer(&r->connect_timer);
    }

    ngx_log_error(NGX_LOG_ERR, r->log, 0, "goim: Redis %V: %s %s",
                  &r->conf->name,
                  r->connected ? "connection lost:" : "connect failed:",
                  why ? why : "unknown error");

    ngx_goim_redis_schedule();
}


/*
 * We give up the context (a timeout, a failed handshake).  It cannot be
 * freed here: we may be inside one of its callbacks; a posted event
 * frees it, and hiredis then fails its pending commands.
 */

static void
ngx_goim_redis_drop(const char *why)
{
    redisAsyncContext  *ac;
    ngx_goim_redis_t   *r = &ngx_goim_redis;

    ac = r->ac;

    if (ac == NULL) {
        return;
    }

    r->ac = NULL;
    ngx_goim_worker.stats->redis_up = 0;

    /* a server that timed out may have restarted: as after a loss */
    r->was_lost = 1;
    ngx_goim_registry_sessions_dirty();

    if (r->connect_timer.timer_set) {
        ngx_del_timer(&r->connect_timer);
    }

    if (why) {
        ngx_log_error(NGX_LOG_ERR, r->log, 0,
                      "goim: Redis %V: %s, connection dropped",
                      &r->conf->name, why);
    }

    ac->data = r->dead;
    r->dead = ac;

    if (!r->free_event.posted) {
        ngx_post_event(&r->free_event, &ngx_posted_events);
    }

    ngx_goim_redis_schedule();
}


static void
ngx_goim_redis_free_handler(ngx_event_t *ev)
{
    redisAsyncContext  *ac;
    ngx_goim_redis_t   *r = &ngx_goim_redis;

    while (r->dead) {
        ac = r->dead;
        r->dead = ac->data;
        redisAsyncFree(ac);
    }
}


/* 100 ms doubling to 5 s, each delay drawn from [d/2, d] */

static void
ngx_goim_redis_schedule(void)
{
    ngx_msec_t         d, delay;
    ngx_goim_redis_t  *r = &ngx_goim_redis;

    if (ngx_exiting || ngx_quit || ngx_terminate
        || r->reconnect.timer_set)
    {
        return;
    }

    d = r->backoff ? r->backoff : NGX_GOIM_REDIS_BACKOFF_MIN;
    delay = d / 2 + (ngx_msec_t) ngx_random() % (d / 2 + 1);

    r->backoff = ngx_min(d * 2, NGX_GOIM_REDIS_BACKOFF_MAX);

    ngx_log_error(NGX_LOG_INFO, r->log, 0,
                  "goim: Redis %V: reconnecting in %M ms",
                  &r->conf->name, delay);

    ngx_add_timer(&r->reconnect, delay);
}


static void
ngx_goim_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_goim_redis_t  *r = &ngx_goim_redis;

    if (r->ac == NULL && !ngx_exiting) {
        ngx_goim_redis_connect();
    }
}


static void
ngx_goim_redis_connect_timeout(ngx_event_t *ev)
{
    ngx_goim_redis_t  *r = &ngx_goim_redis;

    if (r->ac && !r->connected) {
        ngx_goim_redis_drop("connect timed out");
    }
}


static void
ngx_goim_redis_handshake(redisReply *reply, void *data, const char *err)
{
    ngx_goim_redis_t  *r = &ngx_goim_redis;

    if (err == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, r->log, 0, "goim: Redis %V: %s failed: %s",
                  &r->conf->name, (const char *) data, err);

    if (reply) {
        /* an error reply comes on the current context only */
        ngx_goim_redis_drop("handshake failed");
    }
}


/* commands */

ngx_goim_redis_req_t *
ngx_goim_redis_command(ngx_goim_redis_cb_pt cb, void *data,
    const char *fmt, ...)
{
    int                    rc;
    va_list                args;
    ngx_goim_redis_req_t  *req;

    req = ngx_goim_redis_req(cb, data);
    if (req == NULL) {
        return NULL;
    }

    va_start(args, fmt);
    rc = redisvAsyncCommand(req->ac, ngx_goim_redis_reply, req, fmt, args);
    va_end(args);

    return ngx_goim_redis_queued(req, rc, ngx_strlen(fmt), fmt);
}


ngx_goim_redis_req_t *
ngx_goim_redis_commandargv(ngx_goim_redis_cb_pt cb, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    int                    rc;
    ngx_goim_redis_req_t  *req;

    req = ngx_goim_redis_req(cb, data);
    if (req == NULL) {
        return NULL;
    }

    rc = redisAsyncCommandArgv(req->ac, ngx_goim_redis_reply, req, argc, argv,
                               argvlen);

    return ngx_goim_redis_queued(req, rc, argvlen[0], argv[0]);
}


/* Starts the timeout of a queued command; frees one hiredis refused. */
static ngx_goim_redis_req_t *
ngx_goim_redis_queued(ngx_goim_redis_req_t *req, int rc, size_t len,
    const char *name)
{
    if (rc != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_goim_redis.log, 0,
                      "goim: Redis %V: command \"%*s\" not queued",
                      &ngx_goim_redis.conf->name, len, name);
        ngx_free(req);
        return NULL;
    }

    ngx_add_timer(&req->timer, ngx_goim_redis.conf->timeout);

    req->start = ngx_current_msec;
    ngx_goim_worker.stats->redis_commands++;

    return req;
}


static ngx_goim_redis_req_t *
ngx_goim_redis_req(ngx_goim_redis_cb_pt cb, void *data)
{
    ngx_goim_redis_t      *r = &ngx_goim_redis;
    ngx_goim_redis_req_t  *req;

    if (r->ac == NULL) {
        if (r->conf == NULL) {
            return NULL;
        }

        r->down_failed++;
        ngx_goim_worker.stats->redis_failed++;

        if (r->down_logged == 0
            || ngx_current_msec - r->down_logged >= 1000)
        {
            ngx_log_error(NGX_LOG_ERR, r->log, 0,
                          "goim: Redis %V is not connected, "
                          "%ui command(s) failed", &r->conf->name,
                          r->down_failed);
            r->down_logged = ngx_current_msec;
            r->down_failed = 0;
        }

        return NULL;
    }

    req = ngx_calloc(sizeof(ngx_goim_redis_req_t), r->log);
    if (req == NULL) {
        return NULL;
    }

    req->cb = cb;
    req->data = data;
    req->ac = r->ac;

    /* not cancelable: a worker that quits waits for its last commands */
    ngx_goim_event_init(&req->timer, ngx_goim_redis_timeout, r->log, 0);

    return req;
}


void
ngx_goim_redis_cancel(ngx_goim_redis_req_t *req)
{
    /* the timer stays: a server that never answers is still noticed */
    req->cb = NULL;
    req->data = NULL;
}


/* hiredis' callback: every command gets exactly one, a NULL reply if
 * the context went away first */

static void
ngx_goim_redis_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    void                  *data;
    ngx_msec_t             start;
    redisReply            *rep = reply;
    const char            *err;
    ngx_goim_redis_t      *r = &ngx_goim_redis;
    ngx_goim_redis_cb_pt   cb;
    ngx_goim_redis_req_t  *req = privdata;

    cb = req->cb;
    data = req->data;
    start = req->start;

    if (req->timer.timer_set) {
        ngx_del_timer(&req->timer);
    }

    ngx_free(req);

    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        ngx_goim_worker.stats->redis_failed++;

    } else {
        ngx_goim_worker.stats->redis_latency_ms += ngx_current_msec - start;
    }

    if (rep == NULL) {
        err = ac->err ? ac->errstr : "connection dropped";

        /* commands issued from the callbacks must fail at once */
        ngx_goim_redis_lost(ac, err);

        if (cb) {
            cb(NULL, data, err);
        }

        return;
    }

    if (rep->type != REDIS_REPLY_ERROR) {
        /* the server works: the next backoff starts over */
        r->backoff = 0;
    }

    if (cb) {
        cb(rep, data, rep->type == REDIS_REPLY_ERROR ? rep->str : NULL);
    }
}


static void
ngx_goim_redis_timeout(ngx_event_t *ev)
{
    void                  *data;
    ngx_goim_redis_t      *r = &ngx_goim_redis;
    ngx_goim_redis_cb_pt   cb;
    ngx_goim_redis_req_t  *req;

    req = (ngx_goim_redis_req_t *)
              ((u_char *) ev - offsetof(ngx_goim_redis_req_t, timer));

    cb = req->cb;
    data = req->data;

    /* hiredis still holds the request and frees it with the context */
    req->cb = NULL;

    ngx_goim_worker.stats->redis_timeouts++;

    if (req->ac == r->ac) {
        ngx_log_error(NGX_LOG_ERR, r->log, 0,
                      "goim: Redis %V: command timed out after %M ms, "
                      "connection dropped", &r->conf->name,
                      r->conf->timeout);

        /* a late reply would answer the wrong command */
        ngx_goim_redis_drop(NULL);
    }

    if (cb) {
        cb(NULL, data, "timed out");
    }
}


/* nginx events -> hiredis */

static void
ngx_goim_redis_read_handler(ngx_event_t *rev)
{
    int                 n;
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    c = rev->data;
    ac = c->data;

    for ( ;; ) {

        if (ac != ngx_goim_redis.ac) {
            /* dropped: the posted event frees it */
            return;
        }

        redisAsyncHandleRead(ac);

        if (ac != ngx_goim_redis.ac) {
            /* freed or dropped meanwhile, c with it */
            return;
        }

        /* hiredis reads at most 16 KB a call */
        if (ngx_socket_nread(c->fd, &n) == -1 || n <= 0) {
            return;
        }
    }
}


static void
ngx_goim_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    c = wev->data;
    ac = c->data;

    if (ac != ngx_goim_redis.ac) {
        return;
    }

    redisAsyncHandleWrite(ac);
}


/* hiredis -> nginx events; level-triggered, hiredis switches them */

static void
ngx_goim_redis_add_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->read->active
        && ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "goim: Redis: adding the read event failed");
    }
}


static void
ngx_goim_redis_del_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_goim_redis_add_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->write->active
        && ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "goim: Redis: adding the write event failed");
    }
}


static void
ngx_goim_redis_del_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* the context is being freed; hiredis closes the socket itself */

static void
ngx_goim_redis_cleanup(void *privdata)
{
    ngx_connection_t   *c = privdata;
    redisAsyncContext  *ac;

    ac = c->data;

    ngx_goim_redis_lost(ac, ac->err ? ac->errstr : "connection closed");

    ngx_goim_redis_del_read(c);
    ngx_goim_redis_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ac->ev.data = NULL;

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}
