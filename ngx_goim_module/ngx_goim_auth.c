
/*
 * goim for nginx: authentication of a channel (its first op 7 packet)
 * and the worker's local indexes it joins: key -> channel, mid ->
 * channels, room -> members.
 */


#include "ngx_goim.h"

#include <goim_token.h>
#include <goim_jwt.h>
#include <goim_query.h>


#define NGX_GOIM_JWT_LEEWAY  30       /* seconds of clock skew for nbf */


static ngx_int_t ngx_goim_auth_register(ngx_goim_channel_t *ch,
    goim_token_t *tok);
static void ngx_goim_auth_done(ngx_goim_channel_t *ch, ngx_int_t rc);
static void ngx_goim_auth_reply(ngx_goim_channel_t *ch, int32_t ver,
    int32_t seq);
static ngx_int_t ngx_goim_mid_add(ngx_goim_channel_t *ch);


ngx_int_t
ngx_goim_auth(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    char                 err[128];
    u_char               reason[160];
    ngx_int_t            rc;
    ngx_str_t           *secret;
    goim_token_t         tok;
    ngx_goim_channel_t  *old;

    secret = &ch->conf->auth_secret;

    /* with a secret, only signed tokens: no fallback to plain JSON */
    rc = secret->len
         ? goim_jwt_verify(pkt->body, pkt->body_len, secret->data,
                           secret->len, ngx_time(), NGX_GOIM_JWT_LEEWAY,
                           &tok, err, sizeof(err))
         : goim_token_parse(pkt->body, pkt->body_len, &tok, err,
                            sizeof(err));

    if (rc != 0) {
        ngx_goim_worker.stats->auth_failed++;
        ngx_snprintf(reason, sizeof(reason), "auth failed: bad token: %s%Z",
                     err);
        ngx_goim_channel_fail(ch, NGX_LOG_INFO, GOIM_WS_CLOSE_POLICY,
                              (const char *) reason);
        return NGX_OK;
    }

    if (tok.key && tok.key_len) {
        old = ngx_goim_key_lookup((u_char *) tok.key, tok.key_len);

        if (old) {
            /* goim: a duplicate key on this node kicks the older one */
            ngx_goim_auth_unregister(old);
            ngx_goim_channel_fail(old, NGX_LOG_INFO, GOIM_WS_CLOSE_POLICY,
                                  "duplicate key: replaced by a newer "
                                  "connection");
        }
    }

    rc = ngx_goim_auth_register(ch, &tok);

    goim_token_free(&tok);

    if (rc == NGX_DECLINED) {
        ngx_goim_worker.stats->auth_failed++;
        ngx_goim_channel_fail(ch, NGX_LOG_INFO, GOIM_WS_CLOSE_INTERNAL,
                              "auth refused: shared zone exhausted");
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_goim_redis_enabled()) {
        /* as goim's Connect: the session is in Redis before the reply */
        ch->auth_ver = pkt->ver;
        ch->auth_seq = pkt->seq;
        ch->auth_pending = 1;

        if (ngx_goim_session_add(ch, ngx_goim_auth_done) != NGX_OK) {
            ngx_goim_auth_done(ch, NGX_ERROR);
        }

        return NGX_OK;
    }

    ngx_goim_worker.stats->auth_ok++;

    ngx_add_timer(ch->connection->read,
                  ch->conf->heartbeat * ch->conf->heartbeat_max);

    ngx_goim_auth_reply(ch, pkt->ver, pkt->seq);

    return NGX_OK;
}


/* Redis has the session, or failed; input waited meanwhile */

static void
ngx_goim_auth_done(ngx_goim_channel_t *ch, ngx_int_t rc)
{
    ch->auth_pending = 0;

    if (rc == NGX_OK) {
        ngx_goim_worker.stats->auth_ok++;

        ngx_add_timer(ch->connection->read,
                      ch->conf->heartbeat * ch->conf->heartbeat_max);

        ngx_goim_auth_reply(ch, ch->auth_ver, ch->auth_seq);

    } else {
        ngx_goim_worker.stats->auth_failed++;
        ngx_goim_auth_unregister(ch);
        ngx_goim_channel_fail(ch, NGX_LOG_WARN, GOIM_WS_CLOSE_INTERNAL,
                              "auth failed: Redis unavailable");
    }

    ngx_goim_channel_resume(ch);
}


static ngx_int_t
ngx_goim_auth_register(ngx_goim_channel_t *ch, goim_token_t *tok)
{
    size_t              len;
    u_char             *key;
    ngx_int_t           rc, owner;
    ngx_goim_push_t     push;
    ngx_connection_t   *c;
    ngx_goim_worker_t  *w = &ngx_goim_worker;

    c = ch->connection;

    len = (tok->key && tok->key_len) ? tok->key_len : 36;

    key = ngx_pnalloc(c->pool, len);
    if (key == NULL) {
        return NGX_ERROR;
    }

    if (tok->key && tok->key_len) {
        ngx_memcpy(key, tok->key, len);

    } else {
        /* goim's logic generates a UUIDv4 for an empty key */
        ngx_goim_uuid4(key);
    }

    ch->key_node.str.data = key;
    ch->key_node.str.len = len;
    ch->key_node.node.key = ngx_crc32_long(key, len);

    rc = ngx_goim_registry_key_add(&ch->key_node.str, ch->key_node.node.key, &owner);
    if (rc != NGX_OK) {
        return rc;
    }

    if (owner >= 0) {
        /* the key was connected to another worker: kick it there */
        ngx_memzero(&push, sizeof(ngx_goim_push_t));
        (void) ngx_goim_ipc_send((uint64_t) 1 << owner, NGX_GOIM_IMSG_KICK,
                                 &push, 0, &ch->key_node.str, 1, NULL);
    }

    ngx_rbtree_insert(&w->keys, &ch->key_node.node);

    ch->mid = tok->mid;

    if (ch->mid > 0 && ngx_goim_mid_add(ch) != NGX_OK) {
        return NGX_ERROR;
    }

    if (tok->n_accepts) {
        ch->watch = ngx_alloc(tok->n_accepts * sizeof(int32_t), c->log);
        if (ch->watch == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ch->watch, tok->accepts, tok->n_accepts * sizeof(int32_t));
        ch->nwatch = ngx_min(tok->n_accepts, NGX_GOIM_MAX_WATCH);
    }

    ch->authed = 1;

    ngx_queue_insert_tail(&w->channels, &ch->all.queue);
    w->nchannels++;

    if (tok->room_id && tok->room_len) {
        return ngx_goim_room_join(ch, (u_char *) tok->room_id, tok->room_len);
    }

    return NGX_OK;
}


/* op 8; its body tells the client its key (goim clients ignore it) */

static void
ngx_goim_auth_reply(ngx_goim_channel_t *ch, int32_t ver, int32_t seq)
{
    size_t      len;
    u_char     *body, *p;
    ngx_str_t  *key, room;

    key = &ch->key_node.str;

    if (ch->room) {
        room = ch->room->sn.str;

    } else {
        ngx_str_null(&room);
    }

    len = sizeof("{\"mid\":,\"key\":\"\",\"room_id\":\"\"}") - 1 + NGX_INT64_LEN
          + key->len + ngx_escape_json(NULL, key->data, key->len)
          + room.len + ngx_escape_json(NULL, room.data, room.len);

    body = ngx_alloc(len, ch->connection->log);
    if (body == NULL) {
        return;
    }

    p = ngx_sprintf(body, "{\"mid\":%L,\"key\":\"", ch->mid);
    p = (u_char *) ngx_escape_json(p, key->data, key->len);
    p = ngx_cpymem(p, "\",\"room_id\":\"", sizeof("\",\"room_id\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, room.data, room.len);
    p = ngx_cpymem(p, "\"}", 2);

    (void) ngx_goim_channel_reply(ch, ver, GOIM_OP_AUTH_REPLY, seq, body,
                                  p - body);

    ngx_free(body);
}


void
ngx_goim_auth_unregister(ngx_goim_channel_t *ch)
{
    ngx_goim_worker_t  *w = &ngx_goim_worker;

    if (!ch->authed) {
        return;
    }

    ch->authed = 0;

    ngx_goim_room_leave(ch);

    /* before the local delete: ngx_rbtree_delete() zeroes node.key */
    if (!ch->withdrawn) {
        ngx_goim_registry_key_del(&ch->key_node.str, ch->key_node.node.key);
    }

    ngx_rbtree_delete(&w->keys, &ch->key_node.node);

    if (ngx_goim_redis_enabled()) {
        /* an auth still waiting for Redis is abandoned */
        ch->auth_pending = 0;
        ngx_goim_session_cancel(ch);
        ngx_goim_session_del(ch);
    }

    if (ch->mid_node) {
        ngx_queue_remove(&ch->mid_link);

        if (ngx_queue_empty(&ch->mid_node->channels)) {
            ngx_goim_registry_mid_set(ch->mid, 0);
            ngx_rbtree_delete(&w->mids, &ch->mid_node->node);
            ngx_free(ch->mid_node);
        }

        ch->mid_node = NULL;
    }

    ngx_queue_remove(&ch->all.queue);
    w->nchannels--;
}


/*
 * The drain takes a channel out of the shared registry before it closes
 * it: a push accepted from then on does not count it, and one accepted
 * before is already in this worker's inbox or in the room's batch, which
 * are delivered before the Close.  The local indexes keep the channel
 * until ngx_goim_auth_unregister().
 */

void
ngx_goim_auth_withdraw(ngx_goim_channel_t *ch)
{
    ngx_queue_t         *q;
    ngx_goim_channel_t  *other;

    if (!ch->authed || ch->withdrawn) {
        return;
    }

    ch->withdrawn = 1;

    ngx_goim_registry_key_del(&ch->key_node.str, ch->key_node.node.key);

    if (ch->room) {
        ngx_goim_registry_room_count(&ch->room->sn.str, ch->room->sn.node.key, -1);
    }

    if (ch->mid_node == NULL) {
        return;
    }

    for (q = ngx_queue_head(&ch->mid_node->channels);
         q != ngx_queue_sentinel(&ch->mid_node->channels);
         q = ngx_queue_next(q))
    {
        other = ngx_queue_data(q, ngx_goim_channel_t, mid_link);

        if (!other->withdrawn) {
            return;
        }
    }

    ngx_goim_registry_mid_set(ch->mid, 0);
}


ngx_goim_channel_t *
ngx_goim_key_lookup(u_char *key, size_t len)
{
    ngx_str_node_t  *sn;

    sn = ngx_goim_str_lookup(&ngx_goim_worker.keys, key, len);
    if (sn == NULL) {
        return NULL;
    }

    return (ngx_goim_channel_t *)
               ((u_char *) sn - offsetof(ngx_goim_channel_t, key_node));
}


ngx_goim_mid_t *
ngx_goim_mid_lookup(int64_t mid)
{
    ngx_rbtree_key_t    key;
    ngx_rbtree_node_t  *node, *sentinel;

    key = (ngx_rbtree_key_t) mid;
    node = ngx_goim_worker.mids.root;
    sentinel = ngx_goim_worker.mids.sentinel;

    while (node != sentinel) {
        if (key == node->key) {
            return (ngx_goim_mid_t *) node;
        }

        node = (key < node->key) ? node->left : node->right;
    }

    return NULL;
}


static ngx_int_t
ngx_goim_mid_add(ngx_goim_channel_t *ch)
{
    ngx_goim_mid_t  *m;

    m = ngx_goim_mid_lookup(ch->mid);

    if (m == NULL) {
        m = ngx_alloc(sizeof(ngx_goim_mid_t), ch->connection->log);
        if (m == NULL) {
            return NGX_ERROR;
        }

        m->node.key = (ngx_rbtree_key_t) ch->mid;
        ngx_queue_init(&m->channels);
        ngx_rbtree_insert(&ngx_goim_worker.mids, &m->node);

        ngx_goim_registry_mid_set(ch->mid, 1);
    }

    ngx_queue_insert_tail(&m->channels, &ch->mid_link);
    ch->mid_node = m;

    return NGX_OK;
}


ngx_goim_room_t *
ngx_goim_room_lookup(u_char *name, size_t len)
{
    return (ngx_goim_room_t *) ngx_goim_str_lookup(&ngx_goim_worker.rooms,
                                                   name, len);
}


ngx_int_t
ngx_goim_room_join(ngx_goim_channel_t *ch, u_char *name, size_t len)
{
    ngx_goim_room_t    *room;
    ngx_goim_worker_t  *w = &ngx_goim_worker;

    room = ngx_goim_room_lookup(name, len);

    if (room == NULL) {
        room = ngx_alloc(sizeof(ngx_goim_room_t) + len, ch->connection->log);
        if (room == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(room->name, name, len);
        room->sn.str.data = room->name;
        room->sn.str.len = len;
        room->sn.node.key = ngx_crc32_long(name, len);
        room->online = 0;
        ngx_queue_init(&room->members);
        ngx_goim_room_init(room);

        ngx_rbtree_insert(&w->rooms, &room->sn.node);
        w->nrooms++;
        w->stats->rooms++;
    }

    ngx_queue_insert_tail(&room->members, &ch->room_link);
    room->online++;
    ch->room = room;

    ngx_goim_registry_room_count(&room->sn.str, room->sn.node.key, 1);

    return NGX_OK;
}


void
ngx_goim_room_leave(ngx_goim_channel_t *ch)
{
    ngx_goim_room_t    *room;
    ngx_goim_worker_t  *w = &ngx_goim_worker;

    room = ch->room;

    if (room == NULL) {
        return;
    }

    ngx_queue_remove(&ch->room_link);
    ngx_queue_init(&ch->room_link);
    ch->room = NULL;

    if (!ch->withdrawn) {
        ngx_goim_registry_room_count(&room->sn.str, room->sn.node.key, -1);
    }

    if (--room->online == 0) {
        ngx_rbtree_delete(&w->rooms, &room->sn.node);
        w->nrooms--;
        w->stats->rooms--;
        ngx_goim_room_free(room);
    }
}


/* the room's members on this node, all workers together */

ngx_uint_t
ngx_goim_room_online(ngx_goim_room_t *room)
{
    /* the cluster's count when Redis knows it (ngx_goim_online.c) */
    return ngx_goim_registry_online_count(room->sn.str.data, room->sn.str.len);
}
