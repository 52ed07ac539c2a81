
/*
 * goim for nginx: the node's periodic Redis work.  Every worker ticks
 * once a second and tries the node's lease in the shared zone; only the
 * holder runs the pass, every goim_online_interval (goim: 10 s):
 *
 *   1. this node's room counts into ol_<server> in goim's layout
 *      (docs/PROTOCOL.md 3.4): field CityHash32(room) % 64, value JSON
 *      {"server","room_count","updated"}; shards that became empty are
 *      removed (goim leaves them), then EXPIRE goim_session_ttl;
 *   2. this node's comet record (ngx_goim_comets.c);
 *   3. goim's loadOnline (3.4): the ol_<server> of every live comet,
 *      pipelined HGETALL; a server not updated for 5 min is deleted; the
 *      sums are published into the shared zone for every worker;
 *   4. with 3, PTTL comet_<server> of every live comet: the comets this
 *      node knows, until their record's expiry by its own clock, for the
 *      API's check after a Redis restart (logic/ngx_goim_api_redis.c).
 *
 * A holder that died or hangs loses the lease, another worker goes on.
 */


#include "ngx_goim_redis.h"

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include <goim_cityhash.h>


#define NGX_GOIM_ONLINE_TICK    1000
#define NGX_GOIM_LEASE_TTL      5000
#define NGX_GOIM_ONLINE_STALE   300         /* goim: 5 min */


typedef struct ngx_goim_online_pass_s  ngx_goim_online_pass_t;

typedef struct {
    ngx_goim_online_pass_t    *pass;
    ngx_goim_redis_req_t      *req;         /* NULL: answered */
    ngx_str_t                  server;
} ngx_goim_online_cmd_t;


typedef struct {
    ngx_str_t                  name;
    ngx_uint_t                 count;
} ngx_goim_online_room_t;


struct ngx_goim_online_pass_s {
    ngx_pool_t                *pool;
    ngx_goim_comets_t         *fetch;
    ngx_goim_online_cmd_t     *cmds;
    ngx_uint_t                 ncmds;
    ngx_uint_t                 pending;
    ngx_array_t                rooms;       /* of ngx_goim_online_room_t */
};


typedef struct {
    ngx_event_t                timer;
    ngx_uint_t                 holder;      /* held the lease last tick */
    ngx_msec_t                 last;        /* the last pass began */
    ngx_goim_online_pass_t    *pass;        /* in flight */
} ngx_goim_online_t;


static void ngx_goim_online_tick(ngx_event_t *ev);
static void ngx_goim_online_pass(void);
static ngx_int_t ngx_goim_online_write(ngx_goim_online_pass_t *pass);
static void ngx_goim_online_write_reply(redisReply *reply, void *data,
    const char *err);
static void ngx_goim_online_comets(ngx_goim_comet_t *comets, ngx_uint_t n,
    const char *err, void *data);
static void ngx_goim_online_shards(redisReply *reply, void *data,
    const char *err);
static void ngx_goim_online_seen(ngx_goim_comet_t *comet);
static void ngx_goim_online_pttl(redisReply *reply, void *data,
    const char *err);
static void ngx_goim_online_abort(ngx_goim_online_pass_t *pass);
static void ngx_goim_online_publish(ngx_goim_online_pass_t *pass);
static void ngx_goim_online_end(ngx_goim_online_pass_t *pass);
static int ngx_libc_cdecl ngx_goim_online_room_cmp(const void *a,
    const void *b);


static ngx_goim_online_t  ngx_goim_online;


ngx_int_t
ngx_goim_online_init(ngx_cycle_t *cycle)
{
    ngx_goim_online_t  *o = &ngx_goim_online;

    ngx_memzero(o, sizeof(ngx_goim_online_t));

    if (ngx_goim_mode() == NGX_GOIM_EMBEDDED) {
        return NGX_OK;
    }

    ngx_goim_event_init(&o->timer, ngx_goim_online_tick, cycle->log, 1);

    /* the first pass a tick after start, not one interval later */
    ngx_add_timer(&o->timer, NGX_GOIM_ONLINE_TICK);

    return NGX_OK;
}


void
ngx_goim_online_exit(ngx_cycle_t *cycle)
{
    ngx_goim_online_t  *o = &ngx_goim_online;

    if (o->timer.timer_set) {
        ngx_del_timer(&o->timer);
    }

    if (o->pass) {
        ngx_goim_online_abort(o->pass);
    }
}


static void
ngx_goim_online_tick(ngx_event_t *ev)
{
    ngx_goim_conf_t    *gcf;
    ngx_goim_online_t  *o = &ngx_goim_online;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        /* a worker that quits (reload) leaves the lease to the new ones */
        ngx_goim_registry_lease_release();
        return;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    if (!ngx_goim_registry_lease(ngx_max(NGX_GOIM_LEASE_TTL,
                                    3 * NGX_GOIM_ONLINE_TICK)))
    {
        o->holder = 0;
        goto next;
    }

    if (!o->holder) {
        /* just taken: the pass runs at once */
        o->holder = 1;
        o->last = 0;
    }

    if (o->pass == NULL
        && (o->last == 0 || ngx_current_msec - o->last
                            >= gcf->online_interval))
    {
        o->last = ngx_current_msec;
        ngx_goim_online_pass();
    }

next:

    ngx_add_timer(ev, ngx_min(NGX_GOIM_ONLINE_TICK, gcf->online_interval));
}


static void
ngx_goim_online_pass(void)
{
    ngx_pool_t              *pool;
    ngx_goim_online_pass_t  *pass;

    pool = ngx_create_pool(16384, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    pass = ngx_pcalloc(pool, sizeof(ngx_goim_online_pass_t));
    if (pass == NULL
        || ngx_array_init(&pass->rooms, pool, 64,
                          sizeof(ngx_goim_online_room_t))
           != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return;
    }

    pass->pool = pool;

    if (ngx_goim_online_write(pass) != NGX_OK) {
        /* Redis is down: logged by the connection, tried again later */
        ngx_destroy_pool(pool);
        return;
    }

    ngx_goim_comets_register();

    /* on the same connection, so it sees what was just written */
    pass->fetch = ngx_goim_comets_fetch(ngx_goim_online_comets, pass);
    if (pass->fetch == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    ngx_goim_online.pass = pass;
}


/*
 * HSET ol_<server> <shard> <json> ... (the non-empty shards), HDEL the
 * empty ones, EXPIRE; NGX_ERROR when nothing could be sent.
 */

static ngx_int_t
ngx_goim_online_write(ngx_goim_online_pass_t *pass)
{
    u_char                 *key, *fields;
    size_t                  len, *hlen, *dlen;
    yajl_gen                g[GOIM_ONLINE_SHARDS];
    ngx_str_t              *names;
    ngx_uint_t              i, k, n, nh, nd, *counts;
    ngx_uint_t              shard_of[GOIM_ONLINE_SHARDS];
    const char            **hset, **hdel;
    ngx_goim_conf_t        *gcf;
    const unsigned char    *json;
    ngx_int_t               rc;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    if (ngx_goim_registry_room_list(pass->pool, &names, &counts, &n)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(g, sizeof(g));
    ngx_memzero(shard_of, sizeof(shard_of));

    rc = NGX_ERROR;

    /* one JSON object per shard, the rooms in the order of the list */

    for (i = 0; i < n; i++) {
        k = goim_cityhash32(names[i].data, names[i].len) % GOIM_ONLINE_SHARDS;

        if (g[k] == NULL) {
            g[k] = yajl_gen_alloc(NULL);
            if (g[k] == NULL) {
                goto done;
            }

            yajl_gen_map_open(g[k]);
            yajl_gen_string(g[k], (u_char *) "server", 6);
            yajl_gen_string(g[k], gcf->server_id.data, gcf->server_id.len);
            yajl_gen_string(g[k], (u_char *) "room_count", 10);
            yajl_gen_map_open(g[k]);
        }

        yajl_gen_string(g[k], names[i].data, names[i].len);
        yajl_gen_integer(g[k], counts[i]);
    }

    key = ngx_pnalloc(pass->pool, sizeof("ol_") + gcf->server_id.len);
    fields = ngx_pnalloc(pass->pool, GOIM_ONLINE_SHARDS * 3);
    hset = ngx_palloc(pass->pool, (2 + 2 * GOIM_ONLINE_SHARDS)
                                  * sizeof(char *));
    hlen = ngx_palloc(pass->pool, (2 + 2 * GOIM_ONLINE_SHARDS)
                                  * sizeof(size_t));
    hdel = ngx_palloc(pass->pool, (2 + GOIM_ONLINE_SHARDS) * sizeof(char *));
    dlen = ngx_palloc(pass->pool, (2 + GOIM_ONLINE_SHARDS) * sizeof(size_t));

    if (key == NULL || fields == NULL || hset == NULL || hlen == NULL
        || hdel == NULL || dlen == NULL)
    {
        goto done;
    }

    len = ngx_sprintf(key, "ol_%V", &gcf->server_id) - key;

    hset[0] = "HSET";
    hlen[0] = 4;
    hset[1] = (const char *) key;
    hlen[1] = len;
    hdel[0] = "HDEL";
    dlen[0] = 4;
    hdel[1] = (const char *) key;
    dlen[1] = len;
    nh = 2;
    nd = 2;

    for (k = 0; k < GOIM_ONLINE_SHARDS; k++) {
        /* the field: the shard as a decimal string, "0".."63" */
        shard_of[k] = ngx_sprintf(fields + 3 * k, "%ui", k) - (fields + 3 * k);

        if (g[k] == NULL) {
            hdel[nd] = (const char *) fields + 3 * k;
            dlen[nd++] = shard_of[k];
            continue;
        }

        yajl_gen_map_close(g[k]);
        yajl_gen_string(g[k], (u_char *) "updated", 7);
        yajl_gen_integer(g[k], ngx_time());
        yajl_gen_map_close(g[k]);

        if (yajl_gen_get_buf(g[k], &json, &len) != yajl_gen_status_ok) {
            goto done;
        }

        hset[nh] = (const char *) fields + 3 * k;
        hlen[nh++] = shard_of[k];
        hset[nh] = (const char *) json;
        hlen[nh++] = len;
    }

    /* HDEL first: with no rooms left the key goes away with it */

    if (nd > 2
        && ngx_goim_redis_commandargv(ngx_goim_online_write_reply,
                                      "HDEL ol_", nd, hdel, dlen)
           == NULL)
    {
        goto done;
    }

    if (nh > 2) {
        if (ngx_goim_redis_commandargv(ngx_goim_online_write_reply,
                                       "HSET ol_", nh, hset, hlen)
            == NULL
            || ngx_goim_redis_command(ngx_goim_online_write_reply,
                                      "EXPIRE ol_", "EXPIRE %b %lld",
                                      hset[1], hlen[1],
                                      (long long) ngx_goim_redis_conf()
                                                             ->session_ttl)
               == NULL)
        {
            goto done;
        }
    }

    rc = NGX_OK;

done:

    for (k = 0; k < GOIM_ONLINE_SHARDS; k++) {
        if (g[k]) {
            yajl_gen_free(g[k]);
        }
    }

    return rc;
}


static void
ngx_goim_online_write_reply(redisReply *reply, void *data, const char *err)
{
    if (err) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: Redis: %s failed: %s, this node's online "
                      "counts not written", (const char *) data, err);
    }
}


/* the live comets: HGETALL ol_<server> of each, pipelined */

static void
ngx_goim_online_comets(ngx_goim_comet_t *comets, ngx_uint_t n,
    const char *err, void *data)
{
    ngx_uint_t               i;
    ngx_goim_online_cmd_t   *cmd;
    ngx_goim_online_pass_t  *pass = data;

    pass->fetch = NULL;

    if (err) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: Redis: reading the comet registry failed: %s, "
                      "online counts not refreshed", err);
        ngx_goim_online_end(pass);
        return;
    }

    pass->cmds = ngx_pcalloc(pass->pool,
                             (n + 1) * sizeof(ngx_goim_online_cmd_t));
    if (pass->cmds == NULL) {
        ngx_goim_online_end(pass);
        return;
    }

    for (i = 0; i < n; i++) {
        cmd = &pass->cmds[pass->ncmds];
        cmd->pass = pass;

        cmd->server.data = ngx_pstrdup(pass->pool, &comets[i].server);
        if (cmd->server.data == NULL) {
            break;
        }

        cmd->server.len = comets[i].server.len;

        ngx_goim_online_seen(&comets[i]);

        cmd->req = ngx_goim_redis_command(ngx_goim_online_shards, cmd,
                                          "HGETALL ol_%b", cmd->server.data,
                                          cmd->server.len);
        if (cmd->req == NULL) {
            break;
        }

        pass->ncmds++;
        pass->pending++;
    }

    if (i < n) {
        /* the replies of those sent are dropped: not a whole picture */
        for (i = 0; i < pass->ncmds; i++) {
            ngx_goim_redis_cancel(pass->cmds[i].req);
        }

        ngx_goim_online_end(pass);
        return;
    }

    if (pass->pending == 0) {
        ngx_goim_online_publish(pass);
    }
}


/*
 * The record's remaining TTL: a comet stays known exactly as long as its
 * last record would live, so one that died drops out when its record
 * expires (not up to a pass later), and one whose record Redis lost in a
 * restart stays known meanwhile.  Fire and forget: the reply is merged
 * whenever it comes.
 */

typedef struct {
    time_t                     ttl;
    size_t                     len;
    u_char                     id[1];
} ngx_goim_online_seen_t;


static void
ngx_goim_online_seen(ngx_goim_comet_t *comet)
{
    ngx_goim_conf_t         *gcf;
    ngx_goim_online_seen_t  *s;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    s = ngx_alloc(sizeof(ngx_goim_online_seen_t) + comet->server.len,
                  ngx_cycle->log);
    if (s == NULL) {
        return;
    }

    s->ttl = comet->ttl ? comet->ttl : gcf->registry_ttl;
    s->len = comet->server.len;
    ngx_memcpy(s->id, comet->server.data, s->len);

    if (ngx_goim_redis_command(ngx_goim_online_pttl, s, "PTTL comet_%b",
                               s->id, s->len)
        == NULL)
    {
        ngx_free(s);
    }
}


static void
ngx_goim_online_pttl(redisReply *reply, void *data, const char *err)
{
    time_t                   ttl;
    ngx_goim_online_seen_t  *s = data;

    if (err == NULL && reply->type == REDIS_REPLY_INTEGER
        && reply->integer != -2)
    {
        /* -1: a record without expiry (not ours): its "ttl" then */
        ttl = reply->integer >= 0 ? (time_t) (reply->integer + 999) / 1000
                                  : s->ttl;

        ngx_goim_registry_comet_seen(s->id, s->len, ngx_time() + ttl);
    }

    ngx_free(s);
}


/* one server's shards: its rooms join the sums unless they are stale */

static void
ngx_goim_online_shards(redisReply *reply, void *data, const char *err)
{
    size_t                   i, k, base;
    time_t                   updated, t;
    yajl_val                 tree, v, rc;
    redisReply              *e;
    ngx_goim_online_cmd_t   *cmd = data;
    ngx_goim_online_pass_t  *pass;
    ngx_goim_online_room_t  *room;
    char                     errbuf[128];

    static const char  *p_room_count[] = { "room_count", NULL };
    static const char  *p_updated[] = { "updated", NULL };

    pass = cmd->pass;
    cmd->req = NULL;
    pass->pending--;

    if (err) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: Redis: HGETALL ol_%V failed: %s, online "
                      "counts not refreshed", &cmd->server, err);
        goto failed;
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        goto next;
    }

    base = pass->rooms.nelts;
    updated = 0;

    for (i = 1; i < reply->elements; i += 2) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_STRING) {
            continue;
        }

        tree = yajl_tree_parse(e->str, errbuf, sizeof(errbuf));

        if (tree == NULL) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "goim: ol_%V has an invalid shard, skipped: %s",
                          &cmd->server, errbuf);
            continue;
        }

        v = yajl_tree_get(tree, p_updated, yajl_t_number);
        t = v && YAJL_IS_INTEGER(v) ? (time_t) YAJL_GET_INTEGER(v) : 0;
        updated = ngx_max(updated, t);

        rc = yajl_tree_get(tree, p_room_count, yajl_t_object);

        for (k = 0; rc && k < rc->u.object.len; k++) {
            v = rc->u.object.values[k];

            if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) <= 0) {
                continue;
            }

            room = ngx_array_push(&pass->rooms);
            if (room == NULL) {
                yajl_tree_free(tree);
                goto failed;
            }

            room->name.len = ngx_strlen(rc->u.object.keys[k]);
            room->name.data = ngx_pnalloc(pass->pool, room->name.len);
            if (room->name.data == NULL) {
                yajl_tree_free(tree);
                goto failed;
            }

            ngx_memcpy(room->name.data, rc->u.object.keys[k],
                       room->name.len);
            room->count = (ngx_uint_t) YAJL_GET_INTEGER(v);
        }

        yajl_tree_free(tree);
    }

    if (reply->elements && ngx_time() - updated > NGX_GOIM_ONLINE_STALE) {
        /* goim: a server silent for 5 min counts no more */
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "goim: online counts of \"%V\" not updated for "
                      "%d s, deleted", &cmd->server, NGX_GOIM_ONLINE_STALE);

        pass->rooms.nelts = base;

        (void) ngx_goim_redis_command(ngx_goim_online_write_reply,
                                      "DEL ol_", "DEL ol_%b",
                                      cmd->server.data, cmd->server.len);
    }

next:

    if (pass->pending == 0) {
        ngx_goim_online_publish(pass);
    }

    return;

failed:

    /* no whole picture this time: the replies still due are dropped */
    ngx_goim_online_abort(pass);
}


static void
ngx_goim_online_abort(ngx_goim_online_pass_t *pass)
{
    ngx_uint_t  i;

    if (pass->fetch) {
        ngx_goim_comets_cancel(pass->fetch);
    }

    for (i = 0; i < pass->ncmds; i++) {
        if (pass->cmds[i].req) {
            ngx_goim_redis_cancel(pass->cmds[i].req);
        }
    }

    ngx_goim_online_end(pass);
}


/* the sums by room, sorted by name, into the shared zone */

static void
ngx_goim_online_publish(ngx_goim_online_pass_t *pass)
{
    time_t                   expires;
    ngx_str_t               *names;
    ngx_uint_t               i, n, *counts;
    ngx_goim_conf_t         *gcf;
    ngx_goim_online_room_t  *rooms;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    rooms = pass->rooms.elts;

    ngx_qsort(rooms, pass->rooms.nelts, sizeof(ngx_goim_online_room_t),
              ngx_goim_online_room_cmp);

    names = ngx_palloc(pass->pool, (pass->rooms.nelts + 1) * sizeof(ngx_str_t));
    counts = ngx_palloc(pass->pool,
                        (pass->rooms.nelts + 1) * sizeof(ngx_uint_t));

    if (names == NULL || counts == NULL) {
        ngx_goim_online_end(pass);
        return;
    }

    n = 0;

    for (i = 0; i < pass->rooms.nelts; i++) {
        if (n && names[n - 1].len == rooms[i].name.len
            && ngx_memcmp(names[n - 1].data, rooms[i].name.data,
                          rooms[i].name.len) == 0)
        {
            counts[n - 1] += rooms[i].count;
            continue;
        }

        names[n] = rooms[i].name;
        counts[n] = rooms[i].count;
        n++;
    }

    /* trusted for a few missed passes, then this node's counts again */
    expires = ngx_time() + 3 * (gcf->online_interval / 1000 + 1) + 30;

    (void) ngx_goim_registry_online_publish(names, counts, n, expires);

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "goim: online counts of %ui rooms published", n);

    ngx_goim_online_end(pass);
}


static void
ngx_goim_online_end(ngx_goim_online_pass_t *pass)
{
    if (ngx_goim_online.pass == pass) {
        ngx_goim_online.pass = NULL;
    }

    ngx_destroy_pool(pass->pool);
}


static int ngx_libc_cdecl
ngx_goim_online_room_cmp(const void *a, const void *b)
{
    const ngx_goim_online_room_t  *x = a, *y = b;

    return ngx_memn2cmp(x->name.data, y->name.data, x->name.len,
                        y->name.len);
}
