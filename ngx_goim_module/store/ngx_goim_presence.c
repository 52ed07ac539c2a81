
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
 * at most that TTL.  Commands are sent and not waited for; a failure is
 * logged, and the next renewal does not repair it.
 */


#include "ngx_goim_redis.h"


#define NGX_GOIM_PRESENCE_LEASE_TTL  5000


/* a mid's count goes, at 0, in the same step */
static const char  ngx_goim_presence_decr_script[] =
    "if redis.call('HINCRBY',KEYS[1],ARGV[1],-1)<=0 then "
    "redis.call('HDEL',KEYS[1],ARGV[1]) end return 0";


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
    p = ngx_sprintf(p, "\",\"since\":%T}", ngx_time());

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

    (void) ngx_goim_redis_command(ngx_goim_presence_reply,
                                  "HINCRBY presence_mids_",
                                  "HINCRBY presence_mids_%b_%b %lld 1",
                                  server->data, server->len,
                                  room->data, room->len,
                                  (long long) ch->mid);

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
    ngx_str_t        *server;
    ngx_goim_conf_t  *gcf;

    gcf = ch->conf;

    if (!gcf->presence || ngx_goim_mode() == NGX_GOIM_EMBEDDED) {
        return;
    }

    server = &gcf->server_id;

    (void) ngx_goim_redis_command(ngx_goim_presence_reply, "HDEL presence_",
                                  "HDEL presence_%b_%b %b",
                                  server->data, server->len,
                                  room->data, room->len,
                                  ch->key_node.str.data,
                                  ch->key_node.str.len);

    if (ch->mid <= 0) {
        return;
    }

    (void) ngx_goim_redis_command(ngx_goim_presence_reply,
                                  "HINCRBY presence_mids_",
                                  "EVAL %s 1 presence_mids_%b_%b %lld",
                                  ngx_goim_presence_decr_script,
                                  server->data, server->len,
                                  room->data, room->len,
                                  (long long) ch->mid);
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
