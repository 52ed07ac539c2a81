/*
 * The comet registry, read from Redis every registry_refresh: SMEMBERS
 * comets, then MGET comet_<id> for all of them (records the comets write
 * with a TTL, decoded by proto/goim_registry.c).  Each successful read
 * goes to the floor above (job_registry_read_pt), which decides what a
 * new, moved or missing record means for its comets.
 *
 * hiredis 0.14's async API has no timeouts, so each refresh is timed: one
 * that takes longer than request_timeout drops the connection, which is
 * then made again with backoff like any lost connection.
 */

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "goim_job_log.h"
#include "goim_job_registry.h"
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
    size_t len, int64_t *ttl);
static void job_registry_read_free(job_registry_read_t *rd);


static job_conf_t            *job_redis_conf;
static struct event_base     *job_redis_base;
static job_registry_read_pt   job_redis_read;
static job_registry_stats_t   job_redis_stats;
static int                    job_redis_closing;

static redisAsyncContext  *job_redis;
static struct event       *job_redis_refresh_ev;
static struct event       *job_redis_reconnect_ev;
static struct event       *job_redis_timeout_ev;
static int                 job_redis_backoff;
static int                 job_redis_reading;
static int                 job_redis_down;


int
job_registry_init(job_conf_t *cf, struct event_base *base,
    job_registry_read_pt read)
{
    struct timeval  tv;

    job_redis_conf = cf;
    job_redis_base = base;
    job_redis_read = read;

    job_redis_refresh_ev = event_new(base, -1, EV_PERSIST,
                                     job_registry_refresh, NULL);
    job_redis_reconnect_ev = evtimer_new(base, job_registry_reconnect,
                                         NULL);
    job_redis_timeout_ev = evtimer_new(base, job_registry_timeout, NULL);

    if (job_redis_refresh_ev == NULL || job_redis_reconnect_ev == NULL
        || job_redis_timeout_ev == NULL)
    {
        job_log(JOB_LOG_ERROR, "cannot create the registry timers");
        return -1;
    }

    tv.tv_sec = cf->registry_refresh / 1000;
    tv.tv_usec = (cf->registry_refresh % 1000) * 1000;
    event_add(job_redis_refresh_ev, &tv);

    job_registry_connect();

    return 0;
}


void
job_registry_close(void)
{
    redisAsyncContext  *ac;

    job_redis_closing = 1;

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

    cf = job_redis_conf;

    ac = redisAsyncConnect(cf->redis_host, cf->redis_port);
    if (ac == NULL || ac->err) {
        job_registry_lost(ac ? ac->errstr : "out of memory");

        if (ac) {
            redisAsyncFree(ac);
        }

        return;
    }

    if (redisLibeventAttach(ac, job_redis_base) != REDIS_OK) {
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
            job_redis_conf->redis_host, job_redis_conf->redis_port);

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
            "redis %s:%d lost: %s", job_redis_conf->redis_host,
            job_redis_conf->redis_port, why);

    job_redis_down = 1;

    job_redis_stats.up = 0;
    job_redis_reading = 0;
    event_del(job_redis_timeout_ev);

    if (job_redis_closing || evtimer_pending(job_redis_reconnect_ev, NULL)) {
        return;
    }

    job_redis_backoff = job_redis_backoff
                        ? job_redis_backoff * 2 : job_redis_conf->retry_min;
    if (job_redis_backoff > job_redis_conf->retry_max) {
        job_redis_backoff = job_redis_conf->retry_max;
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

    if (job_redis == NULL && !job_redis_closing) {
        job_registry_connect();
    }
}


static void
job_registry_reply_check(redisAsyncContext *ac, void *r, void *arg)
{
    redisReply  *reply = r;

    (void) ac;

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        job_redis_stats.errors++;
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

    if (job_redis == NULL || job_redis_reading || job_redis_closing) {
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

    tv.tv_sec = job_redis_conf->request_timeout / 1000;
    tv.tv_usec = (job_redis_conf->request_timeout % 1000) * 1000;
    evtimer_add(job_redis_timeout_ev, &tv);
}


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

    job_redis_stats.errors++;

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
        job_redis_stats.errors++;
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
    size_t                 i;
    redisReply            *reply = r, *e;
    job_registry_read_t   *rd = arg;
    job_registry_comet_t  *comets;

    if (ac != job_redis || (reply == NULL && rd->n)) {
        job_registry_read_free(rd);
        return;
    }

    job_redis_reading = 0;
    event_del(job_redis_timeout_ev);

    if (reply && (reply->type != REDIS_REPLY_ARRAY
                  || reply->elements != rd->n))
    {
        job_redis_stats.errors++;
        job_log(JOB_LOG_WARN, "redis MGET comet_*: %s",
                reply->type == REDIS_REPLY_ERROR ? reply->str
                                                 : "unexpected reply");
        job_registry_read_free(rd);
        return;
    }

    comets = job_alloc((rd->n + 1) * sizeof(job_registry_comet_t));

    for (i = 0; i < rd->n; i++) {
        e = reply->element[i];
        comets[i].server = rd->ids[i];

        /* nil: the record expired, or Redis lost it */
        if (e->type == REDIS_REPLY_STRING) {
            comets[i].addr = job_registry_addr(rd->ids[i], e->str, e->len,
                                               &comets[i].ttl);
        }
    }

    if (!job_redis_stats.up) {
        job_log(JOB_LOG_INFO, "redis: registry read, %zu comet id(s)",
                rd->n);
    }

    job_redis_stats.up = 1;
    job_redis_backoff = 0;
    job_redis_stats.refreshes++;

    job_redis_read(comets, rd->n);

    for (i = 0; i < rd->n; i++) {
        free(comets[i].addr);
    }

    free(comets);
    job_registry_read_free(rd);
}


/* the record's "addr" (NULL when it has none) and "ttl" */
static char *
job_registry_addr(const char *id, const char *json, size_t len,
    int64_t *ttl)
{
    char                    err[128], *addr;
    goim_registry_record_t  rec;

    *ttl = 0;

    if (goim_registry_decode(&rec, json, len, err, sizeof(err)) != 0) {
        job_log(JOB_LOG_WARN, "registry record comet_%s is %s", id, err);
        return NULL;
    }

    *ttl = rec.ttl;

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
job_registry_read_free(job_registry_read_t *rd)
{
    size_t  i;

    for (i = 0; i < rd->n; i++) {
        free(rd->ids[i]);
    }

    free(rd->ids);
    free(rd);
}


const job_registry_stats_t *
job_registry_stats(void)
{
    return &job_redis_stats;
}
