
/*
 * goim for nginx: sessions in Redis, in goim's layout (docs/PROTOCOL.md
 * 3.2, 3.6) so that goim's Go logic and ours can share one Redis:
 *
 *     mid_<mid>   hash, field <key> -> <server>   (only for mid > 0)
 *     key_<key>   string <server>
 *
 * both with the TTL goim_session_ttl.  Auth writes them and waits for
 * Redis, a client heartbeat renews them now and then, the disconnect
 * removes them; key_<key> only while it still names this server, so a
 * key that reconnected elsewhere keeps its new mapping.
 */


#include "ngx_goim_redis.h"


#define NGX_GOIM_SESSION_HSET        0
#define NGX_GOIM_SESSION_EXPIRE_MID  1
#define NGX_GOIM_SESSION_SET         2
#define NGX_GOIM_SESSION_RENEW_MID   3
#define NGX_GOIM_SESSION_RENEW_KEY   4

/* renew: two EXPIREs, then at most one mapping again */
#define NGX_GOIM_SESSION_CMDS        5


typedef struct ngx_goim_session_op_s  ngx_goim_session_op_t;

typedef struct {
    ngx_goim_session_op_t     *op;
    ngx_goim_redis_req_t      *req;         /* NULL: answered */
    ngx_uint_t                 what;
} ngx_goim_session_cmd_t;


/* the commands of one add or renew, in flight; ch->redis_req */
struct ngx_goim_session_op_s {
    ngx_goim_channel_t        *ch;
    ngx_goim_session_done_pt   done;        /* NULL: a renew */
    ngx_uint_t                 resync;      /* written again after a loss */
    ngx_uint_t                 pending;
    ngx_uint_t                 ncmds;
    ngx_goim_session_cmd_t     cmd[NGX_GOIM_SESSION_CMDS];
};


static ngx_goim_session_op_t *ngx_goim_session_op(ngx_goim_channel_t *ch,
    ngx_goim_session_done_pt done);
static ngx_int_t ngx_goim_session_map(ngx_goim_session_op_t *op);
static ngx_goim_session_cmd_t *ngx_goim_session_cmd(
    ngx_goim_session_op_t *op, ngx_uint_t what);
static void ngx_goim_session_reply(redisReply *reply, void *data,
    const char *err);
static void ngx_goim_session_finish(ngx_goim_session_op_t *op,
    ngx_int_t rc);
static void ngx_goim_session_free(ngx_goim_session_op_t *op);
static void ngx_goim_session_del_reply(redisReply *reply, void *data,
    const char *err);
static void ngx_goim_session_resync_marker(redisReply *reply, void *data,
    const char *err);
static void ngx_goim_session_resync_retry(ngx_event_t *ev);
static void ngx_goim_session_connected(ngx_uint_t after_loss);
static void ngx_goim_session_resync(void);


/* sessions of this worker that could not be written again */
static ngx_uint_t  ngx_goim_resync_failed;


static const char  *ngx_goim_session_cmd_name[] = {
    "HSET mid_", "EXPIRE mid_", "SET key_", "EXPIRE mid_ (renew)",
    "EXPIRE key_ (renew)"
};


/*
 * The disconnect removes a mapping only while it names this server:
 * goim removes it blindly, and so may remove the mapping of a newer
 * connection of the same key on another server.
 */
static const char  ngx_goim_session_del_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
        "return redis.call('DEL', KEYS[1]) "
    "end "
    "return 0";

static const char  ngx_goim_session_hdel_script[] =
    "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
        "return redis.call('HDEL', KEYS[1], ARGV[1]) "
    "end "
    "return 0";


void
ngx_goim_session_init(void)
{
    (void) ngx_goim_redis_on_connect(ngx_goim_session_connected);
}


ngx_int_t
ngx_goim_session_add(ngx_goim_channel_t *ch, ngx_goim_session_done_pt done)
{
    ngx_goim_session_op_t  *op;

    if (ch->redis_req) {
        ngx_goim_session_cancel(ch);
    }

    op = ngx_goim_session_op(ch, done);
    if (op == NULL) {
        return NGX_ERROR;
    }

    if (ngx_goim_session_map(op) != NGX_OK) {
        ngx_goim_session_free(op);
        return NGX_ERROR;
    }

    ch->redis_req = op;

    return NGX_OK;
}


/*
 * goim's Heartbeat: EXPIRE both keys; a key_<key> that is gone (EXPIRE
 * answers 0) gets the whole mapping again.
 */

void
ngx_goim_session_renew(ngx_goim_channel_t *ch)
{
    ngx_str_t               *key;
    ngx_goim_session_op_t   *op;
    ngx_goim_session_cmd_t  *c;
    ngx_goim_redis_conf_t   *rcf;

    if (ch->redis_req || ch->session_renew == 0) {
        /* a renew is in flight, or there is no session */
        return;
    }

    rcf = ngx_goim_redis_conf();
    key = &ch->key_node.str;

    op = ngx_goim_session_op(ch, NULL);
    if (op == NULL) {
        return;
    }

    if (ch->mid > 0) {
        c = ngx_goim_session_cmd(op, NGX_GOIM_SESSION_RENEW_MID);
        c->req = ngx_goim_redis_command(ngx_goim_session_reply, c,
                                        "EXPIRE mid_%lld %lld",
                                        (long long) ch->mid,
                                        (long long) rcf->session_ttl);
        if (c->req == NULL) {
            goto failed;
        }

        op->pending++;
    }

    c = ngx_goim_session_cmd(op, NGX_GOIM_SESSION_RENEW_KEY);
    c->req = ngx_goim_redis_command(ngx_goim_session_reply, c,
                                    "EXPIRE key_%b %lld", key->data,
                                    key->len, (long long) rcf->session_ttl);
    if (c->req == NULL) {
        goto failed;
    }

    op->pending++;

    ch->redis_req = op;

    return;

failed:

    /* the next client heartbeat tries again */
    ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                  "goim: Redis session of key \"%V\" not renewed", key);

    ngx_goim_session_free(op);
}


/*
 * goim's Disconnect, fire and forget: HDEL mid_<mid> <key> and DEL
 * key_<key>, each only if it still names us.
 */

void
ngx_goim_session_del(ngx_goim_channel_t *ch)
{
    ngx_str_t  *key, *server;

    if (ch->session_renew == 0) {
        /* never added */
        return;
    }

    ch->session_renew = 0;

    key = &ch->key_node.str;

    if (ngx_goim_registry_key_owner(key->data, key->len) >= 0) {
        /*
         * the key reconnected to another worker of this server, which
         * wrote the same mapping: it is that connection's now
         */
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ch->connection->log, 0,
                       "goim: Redis session of key \"%V\" kept: the key "
                       "lives on in another worker", key);
        return;
    }

    server = &ch->conf->server_id;

    if (ch->mid > 0) {
        (void) ngx_goim_redis_command(ngx_goim_session_del_reply,
                                      "HDEL mid_", "EVAL %s 1 mid_%lld %b %b",
                                      ngx_goim_session_hdel_script,
                                      (long long) ch->mid, key->data,
                                      key->len, server->data, server->len);
    }

    (void) ngx_goim_redis_command(ngx_goim_session_del_reply, "DEL key_",
                                  "EVAL %s 1 key_%b %b",
                                  ngx_goim_session_del_script, key->data,
                                  key->len, server->data, server->len);
}


void
ngx_goim_session_cancel(ngx_goim_channel_t *ch)
{
    if (ch->redis_req) {
        ngx_goim_session_free(ch->redis_req);
        ch->redis_req = NULL;
    }
}


static ngx_goim_session_op_t *
ngx_goim_session_op(ngx_goim_channel_t *ch, ngx_goim_session_done_pt done)
{
    ngx_goim_session_op_t  *op;

    op = ngx_calloc(sizeof(ngx_goim_session_op_t), ch->connection->log);
    if (op == NULL) {
        return NULL;
    }

    op->ch = ch;
    op->done = done;

    return op;
}


/* goim's AddMapping: HSET + EXPIRE mid_<mid> (mid > 0), SET key_<key> */

static ngx_int_t
ngx_goim_session_map(ngx_goim_session_op_t *op)
{
    time_t                   ttl;
    ngx_str_t               *key, *server;
    ngx_goim_channel_t      *ch;
    ngx_goim_session_cmd_t  *c;

    ch = op->ch;
    key = &ch->key_node.str;
    server = &ch->conf->server_id;
    ttl = ngx_goim_redis_conf()->session_ttl;

    if (ch->mid > 0) {
        c = ngx_goim_session_cmd(op, NGX_GOIM_SESSION_HSET);
        c->req = ngx_goim_redis_command(ngx_goim_session_reply, c,
                                        "HSET mid_%lld %b %b",
                                        (long long) ch->mid, key->data,
                                        key->len, server->data,
                                        server->len);
        if (c->req == NULL) {
            return NGX_ERROR;
        }

        op->pending++;

        c = ngx_goim_session_cmd(op, NGX_GOIM_SESSION_EXPIRE_MID);
        c->req = ngx_goim_redis_command(ngx_goim_session_reply, c,
                                        "EXPIRE mid_%lld %lld",
                                        (long long) ch->mid,
                                        (long long) ttl);
        if (c->req == NULL) {
            return NGX_ERROR;
        }

        op->pending++;
    }

    c = ngx_goim_session_cmd(op, NGX_GOIM_SESSION_SET);
    c->req = ngx_goim_redis_command(ngx_goim_session_reply, c,
                                    "SET key_%b %b EX %lld", key->data,
                                    key->len, server->data, server->len,
                                    (long long) ttl);
    if (c->req == NULL) {
        return NGX_ERROR;
    }

    op->pending++;

    return NGX_OK;
}


static ngx_goim_session_cmd_t *
ngx_goim_session_cmd(ngx_goim_session_op_t *op, ngx_uint_t what)
{
    ngx_goim_session_cmd_t  *c;

    /* at most 5 per op by construction: see NGX_GOIM_SESSION_CMDS */
    c = &op->cmd[op->ncmds++];
    c->op = op;
    c->what = what;

    return c;
}


static void
ngx_goim_session_reply(redisReply *reply, void *data, const char *err)
{
    ngx_goim_session_op_t   *op;
    ngx_goim_session_cmd_t  *c = data;

    op = c->op;
    c->req = NULL;
    op->pending--;

    if (err) {
        ngx_log_error(NGX_LOG_INFO, op->ch->connection->log, 0,
                      "goim: Redis session of key \"%V\", mid %L: "
                      "%s failed: %s", &op->ch->key_node.str, op->ch->mid,
                      ngx_goim_session_cmd_name[c->what], err);

        ngx_goim_session_finish(op, NGX_ERROR);
        return;
    }

    if (c->what == NGX_GOIM_SESSION_RENEW_KEY
        && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
    {
        /* key_<key> expired meanwhile: goim adds the mapping again */
        ngx_log_error(NGX_LOG_INFO, op->ch->connection->log, 0,
                      "goim: Redis session of key \"%V\" had expired, "
                      "added again", &op->ch->key_node.str);

        if (ngx_goim_session_map(op) != NGX_OK) {
            ngx_goim_session_finish(op, NGX_ERROR);
            return;
        }
    }

    if (op->pending == 0) {
        ngx_goim_session_finish(op, NGX_OK);
    }
}


static void
ngx_goim_session_finish(ngx_goim_session_op_t *op, ngx_int_t rc)
{
    ngx_msec_t                 ttl;
    ngx_goim_channel_t        *ch;
    ngx_goim_session_done_pt   done;

    ch = op->ch;
    done = op->done;

    if (op->resync && rc != NGX_OK) {
        /* the walk's marker must not declare this worker's sessions back */
        ngx_goim_resync_failed++;
    }

    ch->redis_req = NULL;
    ngx_goim_session_free(op);

    if (rc == NGX_OK) {
        ch->session_last = ngx_current_msec;

        if (done) {
            /*
             * renewed at a heartbeat after a random [ttl/3, ttl): goim's
             * [10 min, 30 min) with its 30 min TTL, and a shorter TTL is
             * still renewed in time
             */
            ttl = (ngx_msec_t) ngx_goim_redis_conf()->session_ttl * 1000;
            ch->session_renew = ttl / 3
                                + (ngx_msec_t) ngx_random() % (ttl - ttl / 3);
        }
    }

    if (done) {
        done(ch, rc);
    }
}


/* cancels what is still in flight: its replies are dropped */

static void
ngx_goim_session_free(ngx_goim_session_op_t *op)
{
    ngx_uint_t  i;

    for (i = 0; i < op->ncmds; i++) {
        if (op->cmd[i].req) {
            ngx_goim_redis_cancel(op->cmd[i].req);
        }
    }

    ngx_free(op);
}


static void
ngx_goim_session_del_reply(redisReply *reply, void *data, const char *err)
{
    static ngx_msec_t  logged;
    static ngx_uint_t  failed;

    if (err == NULL) {
        return;
    }

    failed++;

    /* an outage fails every disconnect: one line a second */
    if (logged && ngx_current_msec - logged < 1000) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "goim: Redis session of a closed connection not "
                  "removed: %s failed: %s (%ui in all since the last "
                  "message)", (const char *) data, err, failed);

    logged = ngx_current_msec;
    failed = 0;
}


/*
 * After Redis came back, every session of this worker is written again
 * (goim waits for each connection's next renewal, up to 30 min).  The
 * channel list is walked with a cursor node, a slice per event-loop turn,
 * so a large worker does not flood Redis or stall its loop.
 *
 * The worker's slot in the shared zone stays "dirty" from the loss until
 * the walk is over and a PING sent after its last write is answered:
 * commands on one connection run in order, so every session is in Redis
 * then, and the node's record may say "ready" (ngx_goim_comets.c).
 */

#define NGX_GOIM_RESYNC_SLICE  256
#define NGX_GOIM_RESYNC_RETRY  1000


static ngx_goim_walk_t  ngx_goim_resync_cursor;
static ngx_event_t      ngx_goim_resync_event;
static ngx_event_t      ngx_goim_resync_retry_event;
static ngx_uint_t       ngx_goim_resync_gen;


static void
ngx_goim_session_resync_handler(ngx_event_t *ev)
{
    ngx_uint_t              n;
    ngx_goim_channel_t     *ch;
    ngx_goim_session_op_t  *op;

    for (n = 0; n < NGX_GOIM_RESYNC_SLICE; n++) {
        ch = ngx_goim_cursor_step(&ngx_goim_resync_cursor);

        if (ch == NULL) {
            ngx_goim_resync_cursor.cursor = 0;

            /*
             * answered after every write of the walk; not sent when the
             * connection was lost meanwhile: the next connect walks again
             */
            (void) ngx_goim_redis_command(ngx_goim_session_resync_marker,
                                          (void *) (uintptr_t)
                                              ngx_goim_resync_gen,
                                          "PING");
            return;
        }

        /* its rooms' presence, whatever its session's state */
        ngx_goim_presence_resync(ch);

        if (ch->session_renew == 0) {
            /* no session yet: an auth in flight writes its own */
            continue;
        }

        if (ch->redis_req) {
            if (((ngx_goim_session_op_t *) ch->redis_req)->done) {
                /* an add (auth): sent on this connection, before the PING */
                continue;
            }

            /*
             * a renew or an earlier walk's write: its EXPIRE may find the
             * key gone and map it again only after the PING; the whole
             * mapping now instead
             */
            ngx_goim_session_cancel(ch);
        }

        op = ngx_goim_session_op(ch, NULL);
        if (op == NULL) {
            ngx_goim_resync_failed++;
            continue;
        }

        op->resync = 1;

        if (ngx_goim_session_map(op) != NGX_OK) {
            ngx_goim_session_free(op);
            ngx_goim_resync_failed++;
            continue;
        }

        ch->redis_req = op;
    }

    ngx_add_timer(ev, 10);
}


static void
ngx_goim_session_resync_marker(redisReply *reply, void *data,
    const char *err)
{
    if ((uintptr_t) data != ngx_goim_resync_gen || err) {
        /* an older walk's, or the connection failed: the next walks */
        return;
    }

    if (ngx_goim_resync_failed) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: %ui sessions not written to Redis again, "
                      "trying all again in %d ms", ngx_goim_resync_failed,
                      NGX_GOIM_RESYNC_RETRY);

        ngx_goim_event_init(&ngx_goim_resync_retry_event,
                            ngx_goim_session_resync_retry, ngx_cycle->log, 1);

        if (!ngx_goim_resync_retry_event.timer_set) {
            ngx_add_timer(&ngx_goim_resync_retry_event,
                          NGX_GOIM_RESYNC_RETRY);
        }

        return;
    }

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "goim: this worker's sessions are in Redis again");

    if (ngx_goim_registry_sessions_clean()) {
        /* this worker was the last: the node's record says "ready" */
        ngx_goim_comets_register();
    }
}


static void
ngx_goim_session_resync_retry(ngx_event_t *ev)
{
    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_goim_session_resync();
    }
}


/* Redis is connected: after a loss, every session is written again */

static void
ngx_goim_session_connected(ngx_uint_t after_loss)
{
    if (after_loss) {
        ngx_goim_session_resync();
    }
}


static void
ngx_goim_session_resync(void)
{
    if (ngx_goim_resync_cursor.cursor) {
        /* a walk is under way: start it over from the head */
        ngx_goim_cursor_stop(&ngx_goim_resync_cursor);
    }

    ngx_goim_resync_gen++;
    ngx_goim_resync_failed = 0;

    if (ngx_goim_resync_retry_event.timer_set) {
        ngx_del_timer(&ngx_goim_resync_retry_event);
    }

    ngx_goim_cursor_start(&ngx_goim_resync_cursor, NGX_GOIM_CURSOR_SESSIONS);

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "goim: writing %ui sessions to Redis again",
                  ngx_goim_channels.nchannels);

    ngx_goim_event_init(&ngx_goim_resync_event,
                        ngx_goim_session_resync_handler, ngx_cycle->log, 1);

    if (ngx_goim_resync_event.timer_set) {
        ngx_del_timer(&ngx_goim_resync_event);
    }

    ngx_add_timer(&ngx_goim_resync_event, 1);
}
