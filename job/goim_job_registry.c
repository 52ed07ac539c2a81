/*
 * The comet registry, read from Redis every registry_refresh: SMEMBERS
 * comets, then MGET comet_<id> for all of them (records the comets write
 * with a TTL, decoded by proto/goim_registry.c).  A new one gets a sender; a changed
 * "addr" reconnects.
 *
 * A comet whose record is missing is not removed at once: Redis may have
 * restarted empty, and the comet writes its record again only when it
 * reconnected.  It is kept, and gets its room, broadcast and push
 * messages, until its record has been missing for its "ttl" (counted by
 * this job's clock from the last read that had it) and the comet does
 * not answer either (job_comet_gone); only then are its queued items
 * counted undeliverable.
 *
 * hiredis 0.14's async API has no timeouts, so each refresh is timed: one
 * that takes longer than request_timeout drops the connection, which is
 * then made again with backoff like any lost connection.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "goim_job_run.h"
#include "goim_registry.h"


typedef struct {
    size_t    n;
    char    **ids;
} job_registry_read_t;


static void job_registry_connect(void);
static void job_registry_connected(const redisAsyncContext *ac, int status);
static void job_registry_disconnected(const redisAsyncContext *ac,
    int status);
static void job_registry_lost(const char *why);
static void job_registry_reconnect(evutil_socket_t fd, short events,
    void *arg);
static void job_registry_refresh(evutil_socket_t fd, short events,
    void *arg);
static void job_registry_timeout(evutil_socket_t fd, short events,
    void *arg);
static void job_registry_reply_check(redisAsyncContext *ac, void *r,
    void *arg);
static void job_registry_members(redisAsyncContext *ac, void *r, void *arg);
static void job_registry_records(redisAsyncContext *ac, void *r, void *arg);
static char *job_registry_addr(const char *id, const char *json,
    size_t len, int *ttl);
static void job_registry_apply(job_registry_read_t *rd, char **addrs,
    int *ttls);
static int64_t job_registry_now(void);
static void job_registry_read_free(job_registry_read_t *rd);


static redisAsyncContext  *job_redis;
static struct event       *job_redis_refresh_ev;
static struct event       *job_redis_reconnect_ev;
static struct event       *job_redis_timeout_ev;
static int                 job_redis_backoff;
static int                 job_redis_reading;
static int                 job_redis_down;


int
job_registry_init(void)
{
    struct timeval  tv;

    job_redis_refresh_ev = event_new(job.base, -1, EV_PERSIST,
                                     job_registry_refresh, NULL);
    job_redis_reconnect_ev = evtimer_new(job.base, job_registry_reconnect,
                                         NULL);
    job_redis_timeout_ev = evtimer_new(job.base, job_registry_timeout,
                                       NULL);

    if (job_redis_refresh_ev == NULL || job_redis_reconnect_ev == NULL
        || job_redis_timeout_ev == NULL)
    {
        job_log(JOB_LOG_ERROR, "cannot create the registry timers");
        return -1;
    }

    tv.tv_sec = job.conf->registry_refresh / 1000;
    tv.tv_usec = (job.conf->registry_refresh % 1000) * 1000;
    event_add(job_redis_refresh_ev, &tv);

    job_registry_connect();

    return 0;
}


void
job_registry_close(void)
{
    redisAsyncContext  *ac;

    if (job_redis) {
        ac = job_redis;
        job_redis = NULL;
        redisAsyncFree(ac);
    }

    if (job_redis_refresh_ev) {
        event_free(job_redis_refresh_ev);
        event_free(job_redis_reconnect_ev);
        event_free(job_redis_timeout_ev);
        job_redis_refresh_ev = NULL;
    }
}


static void
job_registry_connect(void)
{
    job_conf_t         *cf;
    redisAsyncContext  *ac;

    cf = job.conf;

    ac = redisAsyncConnect(cf->redis_host, cf->redis_port);
    if (ac == NULL || ac->err) {
        job_registry_lost(ac ? ac->errstr : "out of memory");

        if (ac) {
            redisAsyncFree(ac);
        }

        return;
    }

    if (redisLibeventAttach(ac, job.base) != REDIS_OK) {
        redisAsyncFree(ac);
        job_registry_lost("cannot attach to the event loop");
        return;
    }

    redisAsyncSetConnectCallback(ac, job_registry_connected);
    redisAsyncSetDisconnectCallback(ac, job_registry_disconnected);

    job_redis = ac;

    /* queued until the connection is up; replies come in order */
    if (cf->redis_password) {
        redisAsyncCommand(ac, job_registry_reply_check, "AUTH", "AUTH %s",
                          cf->redis_password);
    }

    if (cf->redis_db) {
        redisAsyncCommand(ac, job_registry_reply_check, "SELECT",
                          "SELECT %d", cf->redis_db);
    }

    job_registry_refresh(-1, 0, NULL);
}


static void
job_registry_connected(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        if (ac == job_redis) {
            job_redis = NULL;
            job_registry_lost(ac->errstr);
        }

        return;
    }

    job_log(JOB_LOG_INFO, "redis: connected to %s:%d",
            job.conf->redis_host, job.conf->redis_port);

    job_redis_down = 0;
}


static void
job_registry_disconnected(const redisAsyncContext *ac, int status)
{
    (void) status;

    if (ac == job_redis) {
        job_redis = NULL;
        job_registry_lost(ac->err ? ac->errstr : "connection closed");
    }
}


/* the first failure after a success is a warning, the retries debug */
static void
job_registry_lost(const char *why)
{
    struct timeval  tv;

    job_log(job_redis_down ? JOB_LOG_DEBUG : JOB_LOG_WARN,
            "redis %s:%d lost: %s", job.conf->redis_host,
            job.conf->redis_port, why);

    job_redis_down = 1;

    job.redis_up = 0;
    job_redis_reading = 0;
    event_del(job_redis_timeout_ev);

    if (job.done || evtimer_pending(job_redis_reconnect_ev, NULL)) {
        return;
    }

    job_redis_backoff = job_redis_backoff
                        ? job_redis_backoff * 2 : job.conf->retry_min;
    if (job_redis_backoff > job.conf->retry_max) {
        job_redis_backoff = job.conf->retry_max;
    }

    tv.tv_sec = job_redis_backoff / 1000;
    tv.tv_usec = (job_redis_backoff % 1000) * 1000;
    evtimer_add(job_redis_reconnect_ev, &tv);
}


static void
job_registry_reconnect(evutil_socket_t fd, short events, void *arg)
{
    (void) fd;
    (void) events;
    (void) arg;

    if (job_redis == NULL && !job.done) {
        job_registry_connect();
    }
}


static void
job_registry_reply_check(redisAsyncContext *ac, void *r, void *arg)
{
    redisReply  *reply = r;

    (void) ac;

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        job.registry_errors++;
        job_log(JOB_LOG_ERROR, "redis %s: %s", (char *) arg, reply->str);
    }
}


static void
job_registry_refresh(evutil_socket_t fd, short events, void *arg)
{
    struct timeval  tv;

    (void) fd;
    (void) events;
    (void) arg;

    if (job_redis == NULL || job_redis_reading || job.done) {
        return;
    }

    if (redisAsyncCommand(job_redis, job_registry_members, NULL,
                          "SMEMBERS comets")
        != REDIS_OK)
    {
        job_log(JOB_LOG_WARN, "redis: cannot send SMEMBERS comets: %s",
                job_redis->errstr);
        return;
    }

    job_redis_reading = 1;

    tv.tv_sec = job.conf->request_timeout / 1000;
    tv.tv_usec = (job.conf->request_timeout % 1000) * 1000;
    evtimer_add(job_redis_timeout_ev, &tv);
}


/* a read now rather than at the next period (ignored while one runs) */
void
job_registry_refresh_soon(void)
{
    if (job_redis_refresh_ev) {
        event_active(job_redis_refresh_ev, EV_TIMEOUT, 0);
    }
}


static void
job_registry_timeout(evutil_socket_t fd, short events, void *arg)
{
    redisAsyncContext  *ac;

    (void) fd;
    (void) events;
    (void) arg;

    job.registry_errors++;

    ac = job_redis;
    job_redis = NULL;

    /* the pending callbacks run with no reply and see job_redis gone */
    if (ac) {
        redisAsyncFree(ac);
    }

    job_registry_lost("registry read timed out");
}


static void
job_registry_members(redisAsyncContext *ac, void *r, void *arg)
{
    size_t                i;
    char                **argv;
    size_t               *lens;
    redisReply           *reply = r;
    job_registry_read_t  *rd;

    (void) arg;

    if (reply == NULL || ac != job_redis) {
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        job.registry_errors++;
        job_log(JOB_LOG_WARN, "redis SMEMBERS comets: %s",
                reply->type == REDIS_REPLY_ERROR ? reply->str
                                                 : "not an array");
        job_redis_reading = 0;
        event_del(job_redis_timeout_ev);
        return;
    }

    rd = job_alloc(sizeof(job_registry_read_t));
    rd->n = reply->elements;
    rd->ids = job_alloc((rd->n + 1) * sizeof(char *));

    for (i = 0; i < rd->n; i++) {
        rd->ids[i] = job_strndup(reply->element[i]->str
                                 ? reply->element[i]->str : "",
                                 reply->element[i]->len);
    }

    if (rd->n == 0) {
        job_registry_records(ac, NULL, rd);
        return;
    }

    argv = job_alloc((rd->n + 1) * sizeof(char *));
    lens = job_alloc((rd->n + 1) * sizeof(size_t));
    argv[0] = "MGET";
    lens[0] = 4;

    for (i = 0; i < rd->n; i++) {
        lens[i + 1] = strlen(rd->ids[i]) + 6;
        argv[i + 1] = job_alloc(lens[i + 1] + 1);
        memcpy(argv[i + 1], "comet_", 6);
        memcpy(argv[i + 1] + 6, rd->ids[i], lens[i + 1] - 6);
    }

    if (redisAsyncCommandArgv(ac, job_registry_records, rd, (int) rd->n + 1,
                              (const char **) argv, lens)
        != REDIS_OK)
    {
        job_log(JOB_LOG_WARN, "redis: cannot send MGET");
        job_registry_read_free(rd);
        job_redis_reading = 0;
    }

    for (i = 0; i < rd->n; i++) {
        free(argv[i + 1]);
    }

    free(argv);
    free(lens);
}


/* r NULL with rd->n 0: no comet registered at all */
static void
job_registry_records(redisAsyncContext *ac, void *r, void *arg)
{
    int                  *ttls;
    size_t                i;
    char                **addrs;
    redisReply           *reply = r, *e;
    job_registry_read_t  *rd = arg;

    if (ac != job_redis || (reply == NULL && rd->n)) {
        job_registry_read_free(rd);
        return;
    }

    job_redis_reading = 0;
    event_del(job_redis_timeout_ev);

    if (reply && (reply->type != REDIS_REPLY_ARRAY
                  || reply->elements != rd->n))
    {
        job.registry_errors++;
        job_log(JOB_LOG_WARN, "redis MGET comet_*: %s",
                reply->type == REDIS_REPLY_ERROR ? reply->str
                                                 : "unexpected reply");
        job_registry_read_free(rd);
        return;
    }

    addrs = job_alloc((rd->n + 1) * sizeof(char *));
    ttls = job_alloc((rd->n + 1) * sizeof(int));

    for (i = 0; i < rd->n; i++) {
        e = reply->element[i];

        /* nil: the record expired, or Redis lost it */
        if (e->type == REDIS_REPLY_STRING) {
            addrs[i] = job_registry_addr(rd->ids[i], e->str, e->len,
                                         &ttls[i]);
        }
    }

    job_registry_apply(rd, addrs, ttls);

    for (i = 0; i < rd->n; i++) {
        free(addrs[i]);
    }

    free(addrs);
    free(ttls);
    job_registry_read_free(rd);
}


/*
 * The record's "addr", and its "ttl" (0 when absent or a day or more: a
 * node that does not write it is kept only while it answers).
 */
static char *
job_registry_addr(const char *id, const char *json, size_t len, int *ttl)
{
    char                    err[128], *addr;
    goim_registry_record_t  rec;

    *ttl = 0;

    if (goim_registry_decode(&rec, json, len, err, sizeof(err)) != 0) {
        job_log(JOB_LOG_WARN, "registry record comet_%s is %s", id, err);
        return NULL;
    }

    if (rec.ttl < 86400) {
        *ttl = (int) rec.ttl;
    }

    if (rec.addr.len == 0) {
        job_log(JOB_LOG_WARN, "registry record comet_%s has no \"addr\""
                " (goim_internal_url)", id);
        goim_registry_free(&rec);
        return NULL;
    }

    addr = job_strndup(rec.addr.data, rec.addr.len);
    goim_registry_free(&rec);

    return addr;
}


static void
job_registry_apply(job_registry_read_t *rd, char **addrs, int *ttls)
{
    int           reachable;
    char          why[160];
    size_t        i;
    int64_t       now;
    job_comet_t  *c, *next;

    if (!job.redis_up) {
        job_log(JOB_LOG_INFO, "redis: registry read, %zu comet id(s)",
                rd->n);
    }

    job.redis_up = 1;
    job_redis_backoff = 0;
    job.registry_refreshes++;

    now = job_registry_now();

    for (c = job.comets; c; c = c->next) {
        c->seen = 0;
    }

    for (i = 0; i < rd->n; i++) {
        if (addrs[i] == NULL) {
            continue;
        }

        c = job_comet_find(rd->ids[i]);

        if (c == NULL) {
            c = job_comet_add(rd->ids[i], addrs[i]);

        } else if (strcmp(c->addr, addrs[i]) != 0) {
            job_log(JOB_LOG_INFO, "comet %s moved: %s -> %s", c->server,
                    c->addr, addrs[i]);

            if (job_comet_set_addr(c, addrs[i]) != 0) {
                continue;
            }
        }

        if (c) {
            c->seen = 1;
            c->seen_ms = now;
            c->ttl = ttls[i];

            if (c->missing) {
                c->missing = 0;
                job_log(JOB_LOG_INFO, "comet %s: its registry record is "
                        "back", c->server);
            }
        }
    }

    for (c = job.comets; c; c = next) {
        next = c->next;

        if (c->seen) {
            continue;
        }

        if (!c->missing) {
            c->missing = 1;
            job_log(JOB_LOG_WARN, "comet %s: its registry record is missing"
                    " (expired, or lost with Redis); kept while it answers"
                    " or for %d s", c->server, c->ttl);
        }

        /* a request in flight or a success last: it answers */
        reachable = c->req != NULL || c->state == JOB_COMET_UP;

        if (job_comet_gone(now, c->seen_ms, c->ttl, reachable)) {
            snprintf(why, sizeof(why), "its registry record is gone for"
                     " %lld s, ttl %d s, and it does not answer",
                     (long long) (now - c->seen_ms) / 1000, c->ttl);
            job_comet_remove(c, why);
        }
    }

    if (!job.registry_loaded) {
        job.registry_loaded = 1;
        job_log(JOB_LOG_INFO, "registry loaded: %d comet(s)", job.ncomets);
    }

    if (job.held) {
        job_route_held();
    }
}


static int64_t
job_registry_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
job_registry_read_free(job_registry_read_t *rd)
{
    size_t  i;

    for (i = 0; i < rd->n; i++) {
        free(rd->ids[i]);
    }

    free(rd->ids);
    free(rd);
}
