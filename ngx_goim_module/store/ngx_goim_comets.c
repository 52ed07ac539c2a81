
/*
 * goim for nginx: the comet registry in Redis, in place of goim's
 * discovery:
 *
 *     comet_<server>  string, JSON {"server","addr","weight","conn_count",
 *                     "ip_count","addrs","updated","ttl","sessions"}, TTL
 *                     goim_registry_ttl
 *     comets          set of <server>
 *
 * The lease holder of each node writes its record every
 * goim_online_interval, and every worker on each (re)connect to Redis.
 * "ttl" (seconds) lets a reader tell a record lost with Redis from one
 * that expired by its own clock; "sessions" is "rebuilding" while a
 * worker of the node writes its sessions again after a loss of Redis,
 * "ready" otherwise.  Readers take SMEMBERS comets, then MGET the
 * records; an id whose record expired is removed from the set.
 */


#include "ngx_goim_redis.h"

#include <goim_registry.h>


struct ngx_goim_comets_s {
    ngx_goim_comets_pt     cb;
    void                  *data;
    ngx_pool_t            *pool;
    ngx_goim_redis_req_t  *req;         /* in flight */
    ngx_str_t             *ids;
    ngx_uint_t             nids;
};


static void ngx_goim_comets_write_reply(redisReply *reply, void *data,
    const char *err);
static void ngx_goim_comets_members(redisReply *reply, void *data,
    const char *err);
static void ngx_goim_comets_records(redisReply *reply, void *data,
    const char *err);
static ngx_int_t ngx_goim_comets_parse(ngx_pool_t *pool, ngx_str_t *id,
    redisReply *rec, ngx_goim_comet_t *comet);
static void ngx_goim_comets_done(ngx_goim_comets_t *f,
    ngx_goim_comet_t *comets, ngx_uint_t n, const char *err);
static void ngx_goim_comets_connected(ngx_uint_t after_loss);


/* SREM only while the record is still gone: it may just have come back */
static const char  ngx_goim_comets_srem_script[] =
    "if redis.call('EXISTS', KEYS[2]) == 0 then "
        "return redis.call('SREM', KEYS[1], ARGV[1]) "
    "end "
    "return 0";


/* the SET's name in logs, and what it wrote (see the reply) */
static const char  ngx_goim_comets_set_ready[] = "SET comet_ (ready)";
static const char  ngx_goim_comets_set_rebuilding[] =
    "SET comet_ (rebuilding)";


void
ngx_goim_comets_init(void)
{
    (void) ngx_goim_redis_on_connect(ngx_goim_comets_connected);
}


/*
 * Every connect writes the node's record: readers of the registry (the
 * job, the API's check) must not wait for the next online pass to find
 * this node again.  After a loss it says "rebuilding" until the
 * sessions are back (ngx_goim_session.c writes them first).
 */

static void
ngx_goim_comets_connected(ngx_uint_t after_loss)
{
    ngx_goim_comets_register();
}


/* SET comet_<server> <record> EX ttl; SADD comets <server> */

void
ngx_goim_comets_register(void)
{
    long                     len;
    char                    *json;
    ngx_uint_t               i, ready;
    ngx_pool_t              *pool;
    ngx_goim_conf_t         *gcf;
    ngx_goim_comet_t         self;
    goim_registry_record_t   rec;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    ready = ngx_goim_registry_sessions_ready();

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    /* other workers refresh their address counts every 10 s only */
    if (ngx_goim_comets_self(pool, &self) != NGX_OK) {
        goto done;
    }

    ngx_memzero(&rec, sizeof(goim_registry_record_t));

    rec.server.data = (const char *) self.server.data;
    rec.server.len = self.server.len;
    rec.addr.data = (const char *) self.addr.data;
    rec.addr.len = self.addr.len;
    rec.weight = self.weight;
    rec.conn_count = self.conn_count;
    rec.ip_count = self.ip_count;
    rec.updated = self.updated;
    rec.ttl = gcf->registry_ttl;
    rec.sessions = ready ? GOIM_REGISTRY_SESSIONS_READY
                         : GOIM_REGISTRY_SESSIONS_REBUILDING;

    if (self.naddrs) {
        rec.addrs = ngx_palloc(pool,
                               self.naddrs * sizeof(goim_registry_str_t));
        if (rec.addrs == NULL) {
            goto done;
        }

        for (i = 0; i < self.naddrs; i++) {
            rec.addrs[i].data = (const char *) self.addrs[i].data;
            rec.addrs[i].len = self.addrs[i].len;
        }

        rec.naddrs = self.naddrs;
    }

    len = goim_registry_encode(&rec, NULL, 0);
    if (len < 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: this node's comet record cannot be encoded "
                      "(not UTF-8 or out of memory), not written");
        goto done;
    }

    json = ngx_pnalloc(pool, len + 1);
    if (json == NULL
        || goim_registry_encode(&rec, json, len + 1) != len)
    {
        goto done;
    }

    (void) ngx_goim_redis_command(ngx_goim_comets_write_reply,
                                  (void *) (ready
                                      ? ngx_goim_comets_set_ready
                                      : ngx_goim_comets_set_rebuilding),
                                  "SET comet_%b %b EX %lld",
                                  gcf->server_id.data, gcf->server_id.len,
                                  json, (size_t) len,
                                  (long long) gcf->registry_ttl);
    (void) ngx_goim_redis_command(ngx_goim_comets_write_reply,
                                  "SADD comets", "SADD comets %b",
                                  gcf->server_id.data, gcf->server_id.len);

done:

    ngx_destroy_pool(pool);
}


/* this node's record, for the API when there is no registry to read */

ngx_int_t
ngx_goim_comets_self(ngx_pool_t *pool, ngx_goim_comet_t *c)
{
    u_char           *p, *last;
    ngx_str_t         addr;
    ngx_uint_t        n;
    ngx_goim_conf_t  *gcf;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    ngx_memzero(c, sizeof(ngx_goim_comet_t));

    c->server = gcf->server_id;
    c->addr = gcf->internal_url;
    c->weight = gcf->weight;
    c->updated = ngx_time();

    ngx_goim_registry_set_ips(ngx_goim_ip_count());
    ngx_goim_registry_totals(&c->conn_count, &c->ip_count);

    n = 1;

    for (p = gcf->public_addrs.data;
         p < gcf->public_addrs.data + gcf->public_addrs.len;
         p++)
    {
        n += (*p == ',');
    }

    c->addrs = ngx_palloc(pool, n * sizeof(ngx_str_t));
    if (c->addrs == NULL) {
        return NGX_ERROR;
    }

    p = gcf->public_addrs.data;
    last = p + gcf->public_addrs.len;

    while (ngx_goim_comets_addr(&p, last, &addr) == NGX_OK) {
        c->addrs[c->naddrs++] = addr;
    }

    return NGX_OK;
}


ngx_int_t
ngx_goim_comets_addr(u_char **p, u_char *last, ngx_str_t *addr)
{
    u_char  *comma;

    while (*p < last) {
        comma = ngx_strlchr(*p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        addr->data = *p;
        addr->len = comma - *p;

        *p = comma + 1;

        if (addr->len) {
            return NGX_OK;
        }
    }

    return NGX_DONE;
}


static void
ngx_goim_comets_write_reply(redisReply *reply, void *data, const char *err)
{
    if (err) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: Redis: %s failed: %s, this node's comet "
                      "record not written", (const char *) data, err);
        return;
    }

    /*
     * Workers write on their own connections: a "rebuilding" may land
     * after the "ready" of the worker that finished last.  The record
     * must not wait for the next online pass to say "ready" again.
     */
    if (data == (void *) ngx_goim_comets_set_rebuilding
        && ngx_goim_registry_sessions_ready())
    {
        ngx_goim_comets_register();
    }
}


/* NULL when Redis is not connected: the callback is not called then */

ngx_goim_comets_t *
ngx_goim_comets_fetch(ngx_goim_comets_pt cb, void *data)
{
    ngx_goim_comets_t  *f;

    f = ngx_calloc(sizeof(ngx_goim_comets_t), ngx_cycle->log);
    if (f == NULL) {
        return NULL;
    }

    f->pool = ngx_create_pool(4096, ngx_cycle->log);
    if (f->pool == NULL) {
        ngx_free(f);
        return NULL;
    }

    f->cb = cb;
    f->data = data;

    f->req = ngx_goim_redis_command(ngx_goim_comets_members, f,
                                    "SMEMBERS comets");
    if (f->req == NULL) {
        ngx_destroy_pool(f->pool);
        ngx_free(f);
        return NULL;
    }

    return f;
}


void
ngx_goim_comets_cancel(ngx_goim_comets_t *f)
{
    if (f->req) {
        ngx_goim_redis_cancel(f->req);
    }

    ngx_destroy_pool(f->pool);
    ngx_free(f);
}


static void
ngx_goim_comets_members(redisReply *reply, void *data, const char *err)
{
    size_t             *argvlen;
    ngx_uint_t          i, n;
    const char        **argv;
    redisReply         *e;
    ngx_goim_comets_t  *f = data;

    f->req = NULL;

    if (err) {
        ngx_goim_comets_done(f, NULL, 0, err);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        ngx_goim_comets_done(f, NULL, 0, "SMEMBERS comets: not a set");
        return;
    }

    if (reply->elements == 0) {
        ngx_goim_comets_done(f, NULL, 0, NULL);
        return;
    }

    n = reply->elements;

    f->ids = ngx_palloc(f->pool, n * sizeof(ngx_str_t));
    argv = ngx_palloc(f->pool, (n + 1) * sizeof(char *));
    argvlen = ngx_palloc(f->pool, (n + 1) * sizeof(size_t));

    if (f->ids == NULL || argv == NULL || argvlen == NULL) {
        ngx_goim_comets_done(f, NULL, 0, "out of memory");
        return;
    }

    argv[0] = "MGET";
    argvlen[0] = 4;

    for (i = 0; i < n; i++) {
        e = reply->element[i];

        f->ids[i].len = e->type == REDIS_REPLY_STRING ? e->len : 0;
        f->ids[i].data = ngx_pnalloc(f->pool, sizeof("comet_") + e->len);
        if (f->ids[i].data == NULL) {
            ngx_goim_comets_done(f, NULL, 0, "out of memory");
            return;
        }

        ngx_memcpy(ngx_cpymem(f->ids[i].data, "comet_", 6), e->str,
                   f->ids[i].len);

        argv[i + 1] = (const char *) f->ids[i].data;
        argvlen[i + 1] = 6 + f->ids[i].len;

        /* ids[i] is the server, argv the key that shares its bytes */
        f->ids[i].data += 6;
    }

    f->nids = n;

    f->req = ngx_goim_redis_commandargv(ngx_goim_comets_records, f, n + 1,
                                        argv, argvlen);
    if (f->req == NULL) {
        ngx_goim_comets_done(f, NULL, 0, NGX_GOIM_REDIS_DOWN);
    }
}


static void
ngx_goim_comets_records(redisReply *reply, void *data, const char *err)
{
    ngx_str_t          *id;
    ngx_uint_t          i, n;
    ngx_goim_comet_t   *comets;
    ngx_goim_comets_t  *f = data;

    f->req = NULL;

    if (err) {
        ngx_goim_comets_done(f, NULL, 0, err);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != f->nids) {
        ngx_goim_comets_done(f, NULL, 0, "MGET comet_: unexpected reply");
        return;
    }

    comets = ngx_pcalloc(f->pool, f->nids * sizeof(ngx_goim_comet_t));
    if (comets == NULL) {
        ngx_goim_comets_done(f, NULL, 0, "out of memory");
        return;
    }

    n = 0;

    for (i = 0; i < f->nids; i++) {
        id = &f->ids[i];

        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            /* the record expired: that server stopped renewing it */
            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "goim: comet \"%V\" expired, removed from the "
                          "registry", id);

            (void) ngx_goim_redis_command(ngx_goim_comets_write_reply,
                                          "SREM comets",
                                          "EVAL %s 2 comets comet_%b %b",
                                          ngx_goim_comets_srem_script,
                                          id->data, id->len, id->data,
                                          id->len);
            continue;
        }

        if (ngx_goim_comets_parse(f->pool, id, reply->element[i],
                                  &comets[n])
            == NGX_OK)
        {
            n++;
        }
    }

    ngx_goim_comets_done(f, comets, n, NULL);
}


/* the record is decoded by the codec the job shares (proto/) */

static ngx_int_t
ngx_goim_comets_parse(ngx_pool_t *pool, ngx_str_t *id, redisReply *rec,
    ngx_goim_comet_t *comet)
{
    ngx_uint_t              i;
    goim_registry_record_t  r;
    char                    err[128];

    if (goim_registry_decode(&r, rec->str, rec->len, err, sizeof(err))
        != 0)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: comet \"%V\" has an invalid record (%s), "
                      "skipped", id, err);
        return NGX_DECLINED;
    }

    comet->server = *id;
    comet->weight = (ngx_uint_t) r.weight;
    comet->conn_count = (ngx_uint_t) r.conn_count;
    comet->ip_count = (ngx_uint_t) r.ip_count;
    comet->updated = (time_t) r.updated;
    comet->ttl = (time_t) r.ttl;

    /* the record's strings live in r's allocation: copied to the pool */
    comet->addr.len = r.addr.len;
    comet->addr.data = ngx_pnalloc(pool, r.addr.len + 1);
    if (comet->addr.data == NULL) {
        goto failed;
    }

    ngx_memcpy(comet->addr.data, r.addr.data, r.addr.len + 1);

    if (r.naddrs) {
        comet->addrs = ngx_palloc(pool, r.naddrs * sizeof(ngx_str_t));
        if (comet->addrs == NULL) {
            goto failed;
        }

        for (i = 0; i < r.naddrs; i++) {
            comet->addrs[i].len = r.addrs[i].len;
            comet->addrs[i].data = ngx_pnalloc(pool, r.addrs[i].len + 1);
            if (comet->addrs[i].data == NULL) {
                goto failed;
            }

            ngx_memcpy(comet->addrs[i].data, r.addrs[i].data,
                       r.addrs[i].len + 1);
        }

        comet->naddrs = r.naddrs;
    }

    goim_registry_free(&r);

    return NGX_OK;

failed:

    goim_registry_free(&r);

    return NGX_ERROR;
}


static void
ngx_goim_comets_done(ngx_goim_comets_t *f, ngx_goim_comet_t *comets,
    ngx_uint_t n, const char *err)
{
    f->cb(comets, n, err, f->data);

    ngx_destroy_pool(f->pool);
    ngx_free(f);
}
