
/*
 * goim for nginx: who is in a room, cluster-wide (goim_presence on with
 * goim_redis, docs/PROTOCOL.md 3.6).  Each node keeps, for each room
 * with members on it,
 *
 *   presence_<server>_<room>       hash: key -> {"mid","platform","since"}
 *   presence_mids_<server>_<room>  hash: mid -> the node's connections
 *
 * written as connections join and leave, with the registry's TTL
 * (goim_registry_ttl) renewed every goim_online_interval by the worker
 * that holds the node's lease: a node that dies leaves its members for
 * at most that TTL.  The members of a worker that died are removed by
 * the worker that tells their leaves.  After a lost Redis connection
 * every worker writes its members again with its sessions.  Commands
 * are sent and not waited for; a failure is logged, and the next
 * renewal does not repair it.
 */


#include "ngx_goim_redis.h"


#define NGX_GOIM_PRESENCE_LEASE_TTL  5000


/* a mid's count goes, at 0, in the same step */
static const char  ngx_goim_presence_decr_script[] =
    "if redis.call('HINCRBY',KEYS[1],ARGV[1],-1)<=0 then "
    "redis.call('HDEL',KEYS[1],ARGV[1]) end return 0";


static void ngx_goim_presence_write(ngx_goim_channel_t *ch, ngx_str_t *room,
    time_t since, ngx_uint_t mids);
static void ngx_goim_presence_remove(ngx_goim_conf_t *gcf, ngx_str_t *room,
    ngx_str_t *key, int64_t mid, ngx_uint_t hdel);
static void ngx_goim_presence_tick(ngx_event_t *ev);
static void ngx_goim_presence_reply(redisReply *reply, void *data,
    const char *err);


static ngx_event_t  ngx_goim_presence_timer;


ngx_int_t
ngx_goim_presence_init(ngx_cycle_t *cycle)
{
    ngx_goim_conf_t  *gcf;

    gcf = ngx_goim_get_conf(cycle);

    ngx_memzero(&ngx_goim_presence_timer, sizeof(ngx_event_t));

    if (!gcf->presence || ngx_goim_mode() == NGX_GOIM_EMBEDDED) {
        return NGX_OK;
    }

    ngx_goim_event_init(&ngx_goim_presence_timer, ngx_goim_presence_tick,
                        cycle->log, 1);
    ngx_add_timer(&ngx_goim_presence_timer, gcf->online_interval);

    return NGX_OK;
}


void
ngx_goim_presence_exit(ngx_cycle_t *cycle)
{
    if (ngx_goim_presence_timer.timer_set) {
        ngx_del_timer(&ngx_goim_presence_timer);
    }
}


void
ngx_goim_presence_add(ngx_goim_channel_t *ch, ngx_str_t *room)
{
    ngx_goim_presence_write(ch, room, ngx_time(), 0);
}


/*
 * After a Redis connection was lost (Redis may have restarted empty),
 * the session walk (ngx_goim_session.c) writes each connection's rooms
 * again, its mid's count as the node's count, not added to: the hash
 * may have kept it
 */

void
ngx_goim_presence_resync(ngx_goim_channel_t *ch)
{
    time_t      since;
    ngx_str_t   room;
    ngx_uint_t  i, mids;

    if (!ch->conf->presence
        || ngx_goim_mode() == NGX_GOIM_EMBEDDED
        || ch->withdrawn)
    {
        return;
    }

    for (i = 0; i < ch->nrooms; i++) {
        if (ch->rooms[i].presence == NULL) {
            /* not in the zone's listing either (it was full) */
            continue;
        }

        ngx_goim_registry_presence_get(ch->rooms[i].presence, &room, &since,
                                       &mids);

        ngx_goim_presence_write(ch, &room, since, mids ? mids : 1);
    }
}


/* mids: the mid's count to set, 0 to add one */

static void
ngx_goim_presence_write(ngx_goim_channel_t *ch, ngx_str_t *room,
    time_t since, ngx_uint_t mids)
{
    u_char           *p, json[sizeof("{\"mid\":,\"platform\":\"\","
                                     "\"since\":}")
                              + 2 * NGX_INT64_LEN
                              + 6 * GOIM_PRESENCE_PLATFORM];
    size_t            len;
    ngx_str_t        *server;
    ngx_goim_conf_t  *gcf;

    gcf = ch->conf;

    if (!gcf->presence || ngx_goim_mode() == NGX_GOIM_EMBEDDED) {
        return;
    }

    server = &gcf->server_id;
    len = ngx_min(ch->platform.len, GOIM_PRESENCE_PLATFORM);

    p = ngx_sprintf(json, "{\"mid\":%L,\"platform\":\"", ch->mid);
    p = (u_char *) ngx_escape_json(p, ch->platform.data, len);
    p = ngx_sprintf(p, "\",\"since\":%T}", since);

    (void) ngx_goim_redis_command(ngx_goim_presence_reply, "HSET presence_",
                                  "HSET presence_%b_%b %b %b",
                                  server->data, server->len,
                                  room->data, room->len,
                                  ch->key_node.str.data,
                                  ch->key_node.str.len,
                                  json, (size_t) (p - json));

    (void) ngx_goim_redis_command(ngx_goim_presence_reply,
                                  "EXPIRE presence_",
                                  "EXPIRE presence_%b_%b %lld",
                                  server->data, server->len,
                                  room->data, room->len,
                                  (long long) gcf->registry_ttl);

    if (ch->mid <= 0) {
        return;
    }

    if (mids) {
        (void) ngx_goim_redis_command(ngx_goim_presence_reply,
                                      "HSET presence_mids_",
                                      "HSET presence_mids_%b_%b %lld %llu",
                                      server->data, server->len,
                                      room->data, room->len,
                                      (long long) ch->mid,
                                      (unsigned long long) mids);

    } else {
        (void) ngx_goim_redis_command(ngx_goim_presence_reply,
                                      "HINCRBY presence_mids_",
                                      "HINCRBY presence_mids_%b_%b %lld 1",
                                      server->data, server->len,
                                      room->data, room->len,
                                      (long long) ch->mid);
    }

    (void) ngx_goim_redis_command(ngx_goim_presence_reply,
                                  "EXPIRE presence_mids_",
                                  "EXPIRE presence_mids_%b_%b %lld",
                                  server->data, server->len,
                                  room->data, room->len,
                                  (long long) gcf->registry_ttl);
}


void
ngx_goim_presence_del(ngx_goim_channel_t *ch, ngx_str_t *room)
{
    ngx_goim_presence_remove(ch->conf, room, &ch->key_node.str, ch->mid, 1);
}


/*
 * A dead worker's connection left the room (comet/): its entry goes,
 * unless the key is connected to the node again (its entry is the new
 * connection's); its mid's count drops either way.
 */

void
ngx_goim_presence_departed(ngx_str_t *room, ngx_str_t *key, int64_t mid,
    ngx_uint_t again)
{
    ngx_goim_presence_remove(ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle),
                             room, key, mid, !again);
}


static void
ngx_goim_presence_remove(ngx_goim_conf_t *gcf, ngx_str_t *room,
    ngx_str_t *key, int64_t mid, ngx_uint_t hdel)
{
    ngx_str_t  *server;

    if (!gcf->presence || ngx_goim_mode() == NGX_GOIM_EMBEDDED) {
        return;
    }

    server = &gcf->server_id;

    if (hdel) {
        (void) ngx_goim_redis_command(ngx_goim_presence_reply,
                                      "HDEL presence_",
                                      "HDEL presence_%b_%b %b",
                                      server->data, server->len,
                                      room->data, room->len,
                                      key->data, key->len);
    }

    if (mid <= 0) {
        return;
    }

    (void) ngx_goim_redis_command(ngx_goim_presence_reply,
                                  "HINCRBY presence_mids_",
                                  "EVAL %s 1 presence_mids_%b_%b %lld",
                                  ngx_goim_presence_decr_script,
                                  server->data, server->len,
                                  room->data, room->len,
                                  (long long) mid);
}


/* the lease holder renews the TTL of every room of the node */

static void
ngx_goim_presence_tick(ngx_event_t *ev)
{
    ngx_str_t        *names, *server;
    ngx_uint_t        i, n;
    ngx_pool_t       *pool;
    ngx_goim_conf_t  *gcf;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);
    server = &gcf->server_id;

    ngx_add_timer(ev, gcf->online_interval);

    /* the online pass's lease (ngx_goim_online.c), renewed alike */
    if (!ngx_goim_registry_lease(NGX_GOIM_PRESENCE_LEASE_TTL)) {
        return;
    }

    pool = ngx_create_pool(4096, ev->log);
    if (pool == NULL) {
        return;
    }

    if (ngx_goim_registry_presence_rooms(pool, &names, &n) == NGX_OK) {
        for (i = 0; i < n; i++) {
            (void) ngx_goim_redis_command(ngx_goim_presence_reply,
                                          "EXPIRE presence_",
                                          "EXPIRE presence_%b_%b %lld",
                                          server->data, server->len,
                                          names[i].data, names[i].len,
                                          (long long) gcf->registry_ttl);

            (void) ngx_goim_redis_command(ngx_goim_presence_reply,
                                          "EXPIRE presence_mids_",
                                          "EXPIRE presence_mids_%b_%b %lld",
                                          server->data, server->len,
                                          names[i].data, names[i].len,
                                          (long long) gcf->registry_ttl);
        }
    }

    ngx_destroy_pool(pool);
}


static void
ngx_goim_presence_reply(redisReply *reply, void *data, const char *err)
{
    if (err) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: presence: %s failed: %s", (char *) data, err);
    }
}
