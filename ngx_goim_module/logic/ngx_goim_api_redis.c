
/*
 * goim for nginx: push by key and mid in the Redis modes (docs/PROTOCOL.md
 * 2.2, 2.3): the servers of the keys come from key_<key>, those of the
 * members from mid_<mid>.  The request waits for Redis without blocking: it
 * is kept (r->main->count) and answered from the callback; a request freed
 * meanwhile (client gone, shutdown) cancels its commands.
 *
 * The push first reads the records of the comets this node knows (the shared
 * zone's table, kept by the online pass), pipelined before the session
 * lookups on the same connection: a record that is missing (lost with a
 * Redis restart) or says "rebuilding" means the sessions read next may be
 * incomplete, and the push answers an error instead of a code 0 that reaches
 * nobody.  Commands on one connection run in order: a "ready" read first was
 * written after every session of that node.
 *
 * With goim_history members=on, every push by mid is also kept in the
 * member's stream offline_<mid> (docs/PROTOCOL.md 1.16, 3.7), by a script
 * pipelined before the mid_<mid> lookups: the answer waits for it, so that
 * a code 0 means kept, and a failed write answers an error; its reply, the
 * stream id, is the position each member's message carries to the comets.
 *
 * With goim_kafka, one goim.PushMsg goes to Kafka per server that holds
 * targets (this node included), and the answer waits until Kafka
 * acknowledged them all (ngx_goim_api_kafka.c).  Without it, the keys of
 * this server are delivered here and those on other servers are listed in
 * the reply instead of being dropped silently (a deviation from goim).
 */


#include "ngx_goim_api.h"


typedef struct ngx_goim_api_redis_s  ngx_goim_api_redis_t;

typedef struct {
    ngx_goim_api_redis_t      *owner;
    ngx_goim_redis_req_t      *req;         /* NULL: answered */
    ngx_uint_t                 item;        /* of the mid looked up */
    int64_t                    mid;         /* looked up, or kept */
    ngx_uint_t                 mix;         /* its index in the mids */
    uint64_t                   epoch;       /* kept: its position */
    uint64_t                   offset;
} ngx_goim_api_cmd_t;


struct ngx_goim_api_redis_s {
    ngx_http_request_t        *request;
    ngx_goim_push_t            push;
    ngx_str_t                 *keys;
    ngx_uint_t                *key_items;   /* NULL: all of item 0 */
    ngx_goim_api_lookup_pt     done;        /* NULL: the single push */
    void                      *data;
    ngx_goim_api_cmd_t        *cmds;
    ngx_uint_t                 ncmds;
    ngx_uint_t                 pending;
    ngx_array_t                targets;     /* of ngx_goim_api_target_t */
    ngx_goim_api_cmd_t       **kept;        /* by mid index, or NULL */
    ngx_str_t                 *comets;      /* whose records are checked */
    ngx_uint_t                 ncomets;
    const char                *err;
    u_char                     errbuf[256];
};


static ngx_goim_api_redis_t *ngx_goim_api_redis_push(ngx_http_request_t *r);
static void ngx_goim_api_redis_cleanup(void *data);
static ngx_int_t ngx_goim_api_check_comets(ngx_goim_api_redis_t *a);
static void ngx_goim_api_records_reply(redisReply *reply, void *data,
    const char *err);
static void ngx_goim_api_redis_first_error(ngx_goim_api_redis_t *a,
    const char *err);
static void ngx_goim_api_keys_reply(redisReply *reply, void *data,
    const char *err);
static void ngx_goim_api_mid_reply(redisReply *reply, void *data,
    const char *err);
static ngx_int_t ngx_goim_api_redis_send(ngx_goim_api_redis_t *a,
    ngx_str_t *keys, ngx_uint_t nkeys, int64_t *mids, ngx_uint_t *mid_items,
    ngx_uint_t nmids, int32_t *ops, ngx_str_t *bodies);
static ngx_int_t ngx_goim_api_keep(ngx_goim_api_redis_t *a, int64_t mid,
    ngx_uint_t item, int32_t op, ngx_str_t *body);
static void ngx_goim_api_kept_reply(redisReply *reply, void *data,
    const char *err);
static ngx_int_t ngx_goim_api_target(ngx_goim_api_redis_t *a, char *key,
    size_t key_len, redisReply *server, ngx_goim_api_cmd_t *cmd);
static int ngx_libc_cdecl ngx_goim_api_member_cmp(const void *x,
    const void *y);
static int ngx_libc_cdecl ngx_goim_api_message_cmp(const void *x,
    const void *y);
static ngx_uint_t ngx_goim_api_same_message(ngx_goim_api_target_t *a,
    ngx_goim_api_target_t *b);
static void ngx_goim_api_lookup_done(ngx_goim_api_redis_t *a);
static void ngx_goim_api_push_done(ngx_goim_api_redis_t *a);
static ngx_int_t ngx_goim_api_push_kafka(ngx_goim_api_redis_t *a);


static ngx_goim_api_redis_t *
ngx_goim_api_redis_push(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t    *cln;
    ngx_goim_api_redis_t  *a;

    a = ngx_pcalloc(r->pool, sizeof(ngx_goim_api_redis_t));
    if (a == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    a->request = r;

    cln->handler = ngx_goim_api_redis_cleanup;
    cln->data = a;

    /* a client that goes away finalizes the request, and so cancels */
    r->read_event_handler = ngx_http_test_reading;

    return a;
}


/* the request is freed: what is still in flight must not answer it */

static void
ngx_goim_api_redis_cleanup(void *data)
{
    ngx_goim_api_redis_t  *a = data;

    ngx_uint_t  i;

    for (i = 0; i < a->ncmds; i++) {
        if (a->cmds[i].req) {
            ngx_goim_redis_cancel(a->cmds[i].req);
            a->cmds[i].req = NULL;
        }
    }

    ngx_goim_push_release(&a->push);
}


/*
 * Push by key (MGET key_<k>...) or by mid (HGETALL mid_<mid>, pipelined):
 * the keys of this server go to dispatch, the others are reported.
 */

ngx_int_t
ngx_goim_api_push_redis(ngx_http_request_t *r, ngx_goim_push_t *push,
    ngx_str_t *keys, int64_t *mids, ngx_uint_t n)
{
    int32_t               *ops;
    ngx_int_t              rc;
    ngx_str_t             *bodies;
    ngx_uint_t             i;
    ngx_goim_api_redis_t  *a;

    a = ngx_goim_api_redis_push(r);
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ops = NULL;
    bodies = NULL;

    if (keys == NULL && ngx_goim_registry_member_stream_on()) {
        /* every member keeps the same message */
        ops = ngx_palloc(r->pool, (n + 1) * sizeof(int32_t));
        bodies = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_str_t));
        if (ops == NULL || bodies == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = 0; i < n; i++) {
            ops[i] = push->op;
            bodies[i] = push->body;
        }
    }

    rc = ngx_goim_api_redis_send(a, keys, keys ? n : 0, mids, NULL,
                                 keys ? 0 : n, ops, bodies);

    if (rc == NGX_DECLINED) {
        /* the cleanup cancels those already sent */
        return ngx_goim_api_redis_error(r, NGX_GOIM_REDIS_DOWN);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a->push = *push;
    ngx_memzero(push->msg, sizeof(push->msg));

    return NGX_DONE;
}


/*
 * The batch's lookup (ngx_goim_api_batch.c): the servers of the keys of
 * every item in one MGET, those of the mids in HGETALLs, all queued in
 * the same event-loop turn and so written to Redis together, behind the
 * records' MGET.  NGX_DONE: done() is called once with the targets, each
 * naming its item; NGX_DECLINED: Redis is not connected; NGX_ERROR.
 */

ngx_int_t
ngx_goim_api_lookup(ngx_http_request_t *r, ngx_str_t *keys,
    ngx_uint_t *key_items, ngx_uint_t nkeys, int64_t *mids,
    ngx_uint_t *mid_items, ngx_uint_t nmids, int32_t *mid_ops,
    ngx_str_t *mid_bodies, ngx_goim_api_lookup_pt done, void *data)
{
    ngx_int_t              rc;
    ngx_goim_api_redis_t  *a;

    a = ngx_goim_api_redis_push(r);
    if (a == NULL) {
        return NGX_ERROR;
    }

    a->key_items = key_items;
    a->done = done;
    a->data = data;

    if (!ngx_goim_registry_member_stream_on()) {
        mid_ops = NULL;
        mid_bodies = NULL;
    }

    rc = ngx_goim_api_redis_send(a, keys, nkeys, mids, mid_items, nmids,
                                 mid_ops, mid_bodies);

    if (rc != NGX_OK) {
        /* the commands already sent must not call back */
        ngx_goim_api_redis_cleanup(a);
        return rc;
    }

    return NGX_DONE;
}


/*
 * The records' MGET, then one MGET key_<k>... for all keys and one
 * HGETALL mid_<mid> per mid, then, with ops, each mid's message kept
 * (ops[i], bodies[i]): NGX_OK when all were queued, NGX_DECLINED when
 * Redis is not connected, NGX_ERROR.
 */

static ngx_int_t
ngx_goim_api_redis_send(ngx_goim_api_redis_t *a, ngx_str_t *keys,
    ngx_uint_t nkeys, int64_t *mids, ngx_uint_t *mid_items, ngx_uint_t nmids,
    int32_t *ops, ngx_str_t *bodies)
{
    ngx_int_t              rc;
    size_t                *argvlen;
    ngx_uint_t             i;
    const char           **argv;
    ngx_http_request_t    *r;
    ngx_goim_api_cmd_t    *cmd;

    r = a->request;

    /* the records' MGET first, then the sessions' */
    a->cmds = ngx_pcalloc(r->pool, (2 * nmids + 2)
                                   * sizeof(ngx_goim_api_cmd_t));

    if (a->cmds == NULL
        || ngx_array_init(&a->targets, r->pool, nkeys + nmids + 1,
                          sizeof(ngx_goim_api_target_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_goim_api_check_comets(a);
    if (rc != NGX_OK) {
        return rc;
    }

    if (nkeys) {
        a->keys = keys;

        argv = ngx_palloc(r->pool, (nkeys + 1) * sizeof(char *));
        argvlen = ngx_palloc(r->pool, (nkeys + 1) * sizeof(size_t));
        if (argv == NULL || argvlen == NULL) {
            return NGX_ERROR;
        }

        argv[0] = "MGET";
        argvlen[0] = 4;

        for (i = 0; i < nkeys; i++) {
            argv[i + 1] = ngx_pnalloc(r->pool, 4 + keys[i].len);
            if (argv[i + 1] == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(ngx_cpymem((u_char *) argv[i + 1], "key_", 4),
                       keys[i].data, keys[i].len);
            argvlen[i + 1] = 4 + keys[i].len;
        }

        cmd = &a->cmds[a->ncmds];
        cmd->owner = a;
        cmd->req = ngx_goim_redis_commandargv(ngx_goim_api_keys_reply, cmd,
                                              nkeys + 1, argv, argvlen);
        if (cmd->req == NULL) {
            return NGX_DECLINED;
        }

        a->ncmds++;
        a->pending++;
    }

    /*
     * Each member's message is kept before its mid_<mid> is read, on the
     * same connection (so in this order in Redis): a connection of the
     * member that authenticates meanwhile writes mid_<mid> and then reads
     * offline_<mid>, also in this order, so either its session is found
     * below (the message goes live) or its read finds the message kept
     * (docs/PROTOCOL.md 3.7).
     */

    if (ops && nmids) {
        a->kept = ngx_pcalloc(r->pool, nmids * sizeof(ngx_goim_api_cmd_t *));
        if (a->kept == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; ops && i < nmids; i++) {
        if (mids[i] <= 0) {
            /* no member: goim's mid 0 is an anonymous connection */
            continue;
        }

        a->kept[i] = &a->cmds[a->ncmds];

        rc = ngx_goim_api_keep(a, mids[i], mid_items ? mid_items[i] : 0,
                               ops[i], &bodies[i]);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    for (i = 0; i < nmids; i++) {
        cmd = &a->cmds[a->ncmds];
        cmd->owner = a;
        cmd->item = mid_items ? mid_items[i] : 0;
        cmd->mid = mids[i];
        cmd->mix = i;
        cmd->req = ngx_goim_redis_command(ngx_goim_api_mid_reply, cmd,
                                          "HGETALL mid_%lld",
                                          (long long) mids[i]);
        if (cmd->req == NULL) {
            return NGX_DECLINED;
        }

        a->ncmds++;
        a->pending++;
    }

    return NGX_OK;
}


/*
 * A member's message kept in its stream offline_<mid> (docs/PROTOCOL.md
 * 1.16): the stream id's milliseconds are the stream's epoch, taken from
 * TIME when the stream is new (its first offset 1) and from its last
 * entry after, and its sequence is the offset, one more per message.
 * MAXLEN ~ keeps at least goim_history's size; the TTL is its ttl from
 * the last message.  One script: nothing can come between the read of
 * the last id and the XADD.
 */

static ngx_int_t
ngx_goim_api_keep(ngx_goim_api_redis_t *a, int64_t mid, ngx_uint_t item,
    int32_t op, ngx_str_t *body)
{
    ngx_goim_conf_t     *gcf;
    ngx_goim_api_cmd_t  *cmd;

    static const char  script[] =
        "local l = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1) "
        "local id "
        "if l[1] then "
            "id = string.match(l[1][1], '^%d+') .. '-*' "
        "else "
            "local t = redis.call('TIME') "
            "id = t[1] .. string.format('%03d', math.floor(t[2] / 1000)) "
                ".. '-1' "
        "end "
        "id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id, "
                        "'op', ARGV[3], 'body', ARGV[4]) "
        "redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
        "return id";

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    cmd = &a->cmds[a->ncmds];
    cmd->owner = a;
    cmd->item = item;
    cmd->mid = mid;
    cmd->req = ngx_goim_redis_command(ngx_goim_api_kept_reply, cmd,
                                      "EVAL %s 1 offline_%lld %lld %lld "
                                      "%d %b", script, (long long) mid,
                                      (long long) gcf->history_size,
                                      (long long) gcf->history_ttl * 1000,
                                      (int) op, body->data,
                                      (size_t) body->len);
    if (cmd->req == NULL) {
        return NGX_DECLINED;
    }

    a->ncmds++;
    a->pending++;

    return NGX_OK;
}


/* "<epoch>-<offset>": the member's message is kept */

static void
ngx_goim_api_kept_reply(redisReply *reply, void *data, const char *err)
{
    ngx_goim_api_cmd_t    *cmd = data;
    ngx_goim_api_redis_t  *a;

    a = cmd->owner;
    cmd->req = NULL;
    a->pending--;

    if (err == NULL
        && (reply->type != REDIS_REPLY_STRING
            || ngx_goim_api_stream_id((u_char *) reply->str, reply->len,
                                      &cmd->epoch, &cmd->offset)
               != NGX_OK))
    {
        err = "unexpected reply";
    }

    if (err && a->err == NULL) {
        ngx_snprintf(a->errbuf, sizeof(a->errbuf) - 1,
                     "member %L: the message was not kept (offline_%L): "
                     "%s%Z", cmd->mid, cmd->mid, err);
        a->err = (const char *) a->errbuf;

        ngx_log_error(NGX_LOG_ERR, a->request->connection->log, 0,
                      "goim: push refused: %s", a->err);
    }

    if (a->pending == 0) {
        ngx_goim_api_push_done(a);
    }
}


/*
 * MGET comet_<id>... of the known comets and this node: NGX_OK when sent,
 * NGX_DECLINED when Redis is not connected, NGX_ERROR.
 */

static ngx_int_t
ngx_goim_api_check_comets(ngx_goim_api_redis_t *a)
{
    size_t               *argvlen;
    ngx_uint_t            i, n;
    ngx_str_t            *ids;
    const char          **argv;
    ngx_goim_conf_t      *gcf;
    ngx_http_request_t   *r;
    ngx_goim_api_cmd_t   *cmd;

    r = a->request;
    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    if (ngx_goim_registry_comets_alive(r->pool, &ids, &n) != NGX_OK) {
        return NGX_ERROR;
    }

    /* this node, even before its first pass saw it */
    for (i = 0; i < n; i++) {
        if (ids[i].len == gcf->server_id.len
            && ngx_memcmp(ids[i].data, gcf->server_id.data, ids[i].len) == 0)
        {
            break;
        }
    }

    if (i == n) {
        ids[n++] = gcf->server_id;
    }

    argv = ngx_palloc(r->pool, (n + 1) * sizeof(char *));
    argvlen = ngx_palloc(r->pool, (n + 1) * sizeof(size_t));
    if (argv == NULL || argvlen == NULL) {
        return NGX_ERROR;
    }

    argv[0] = "MGET";
    argvlen[0] = 4;

    for (i = 0; i < n; i++) {
        argv[i + 1] = ngx_pnalloc(r->pool, 6 + ids[i].len);
        if (argv[i + 1] == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ngx_cpymem((u_char *) argv[i + 1], "comet_", 6),
                   ids[i].data, ids[i].len);
        argvlen[i + 1] = 6 + ids[i].len;
    }

    a->comets = ids;
    a->ncomets = n;

    cmd = &a->cmds[a->ncmds];
    cmd->owner = a;
    cmd->req = ngx_goim_redis_commandargv(ngx_goim_api_records_reply, cmd,
                                          n + 1, argv, argvlen);
    if (cmd->req == NULL) {
        return NGX_DECLINED;
    }

    a->ncmds++;
    a->pending++;

    return NGX_OK;
}


static void
ngx_goim_api_records_reply(redisReply *reply, void *data, const char *err)
{
    ngx_uint_t             i;
    redisReply            *e;
    ngx_goim_api_cmd_t    *cmd = data;
    ngx_goim_api_redis_t  *a;

    static u_char          rebuilding[] = "\"sessions\":\"rebuilding\"";

    a = cmd->owner;
    cmd->req = NULL;
    a->pending--;

    if (err) {
        ngx_snprintf(a->errbuf, sizeof(a->errbuf) - 1, "%s%Z", err);
        a->err = (const char *) a->errbuf;
        goto done;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != a->ncomets) {
        a->err = "MGET comet_: unexpected reply";
        goto done;
    }

    for (i = 0; i < a->ncomets; i++) {
        e = reply->element[i];

        /*
         * our own yajl output, without spaces: a search is enough; a
         * record without the field (an older node) counts as ready
         */
        if (e->type == REDIS_REPLY_STRING
            && ngx_strlcasestrn((u_char *) e->str, (u_char *) e->str + e->len,
                                rebuilding, sizeof(rebuilding) - 2)
               == NULL)
        {
            continue;
        }

        ngx_snprintf(a->errbuf, sizeof(a->errbuf) - 1,
                     "sessions are being rebuilt after a Redis restart "
                     "(comet %V%s), retry%Z", &a->comets[i],
                     e->type == REDIS_REPLY_STRING
                     ? "" : " not registered again yet");
        a->err = (const char *) a->errbuf;

        ngx_log_error(NGX_LOG_INFO, a->request->connection->log, 0,
                      "goim: push refused: %s", a->err);
        break;
    }

done:

    if (a->pending == 0) {
        ngx_goim_api_push_done(a);
    }
}


static void
ngx_goim_api_keys_reply(redisReply *reply, void *data, const char *err)
{
    ngx_uint_t             i;
    ngx_goim_api_cmd_t    *cmd = data;
    ngx_goim_api_redis_t  *a;

    a = cmd->owner;
    cmd->req = NULL;
    a->pending--;

    if (err) {
        ngx_goim_api_redis_first_error(a, err);

    } else if (reply->type == REDIS_REPLY_ARRAY && a->err == NULL) {
        for (i = 0; i < reply->elements; i++) {
            /* goim skips keys with no server */
            cmd->item = a->key_items ? a->key_items[i] : 0;

            if (ngx_goim_api_target(a, (char *) a->keys[i].data,
                                    a->keys[i].len, reply->element[i], cmd)
                != NGX_OK)
            {
                a->err = "out of memory";
                break;
            }
        }
    }

    if (a->pending == 0) {
        ngx_goim_api_push_done(a);
    }
}


static void
ngx_goim_api_mid_reply(redisReply *reply, void *data, const char *err)
{
    ngx_uint_t             i;
    ngx_goim_api_cmd_t    *cmd = data;
    ngx_goim_api_redis_t  *a;

    a = cmd->owner;
    cmd->req = NULL;
    a->pending--;

    if (err) {
        ngx_goim_api_redis_first_error(a, err);

    } else if (reply->type == REDIS_REPLY_ARRAY && a->err == NULL) {
        for (i = 0; i + 1 < reply->elements; i += 2) {
            if (reply->element[i]->type != REDIS_REPLY_STRING) {
                continue;
            }

            if (ngx_goim_api_target(a, reply->element[i]->str,
                                    reply->element[i]->len,
                                    reply->element[i + 1], cmd)
                != NGX_OK)
            {
                a->err = "out of memory";
                break;
            }
        }
    }

    if (a->pending == 0) {
        ngx_goim_api_push_done(a);
    }
}


/* the first error wins; its text is copied: the reply is freed after us */

static void
ngx_goim_api_redis_first_error(ngx_goim_api_redis_t *a, const char *err)
{
    if (a->err == NULL) {
        ngx_snprintf(a->errbuf, sizeof(a->errbuf) - 1, "%s%Z", err);
        a->err = (const char *) a->errbuf;
    }
}


/*
 * cmd: the MGET of the keys (cmd->item set for this key) or a mid's
 * HGETALL, whose message, kept, was answered before it
 */

static ngx_int_t
ngx_goim_api_target(ngx_goim_api_redis_t *a, char *key, size_t key_len,
    redisReply *server, ngx_goim_api_cmd_t *cmd)
{
    ngx_pool_t             *pool;
    ngx_goim_api_cmd_t     *kept;
    ngx_goim_api_target_t  *t;

    if (server->type != REDIS_REPLY_STRING || server->len == 0
        || key_len == 0)
    {
        return NGX_OK;
    }

    pool = a->request->pool;

    t = ngx_array_push(&a->targets);
    if (t == NULL) {
        return NGX_ERROR;
    }

    t->key.data = ngx_pnalloc(pool, key_len);
    t->server.data = ngx_pnalloc(pool, server->len);
    if (t->key.data == NULL || t->server.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(t->key.data, key, key_len);
    t->key.len = key_len;
    ngx_memcpy(t->server.data, server->str, server->len);
    t->server.len = server->len;
    t->item = cmd->item;
    t->mid = 0;
    t->epoch = 0;
    t->offset = 0;

    kept = (cmd->mid && a->kept) ? a->kept[cmd->mix] : NULL;

    if (kept && kept->offset) {
        t->mid = cmd->mid;
        t->epoch = kept->epoch;
        t->offset = kept->offset;
    }

    return NGX_OK;
}


/*
 * {"code":0,"message":"","data":{"delivered_here":n,
 *  "other_servers":{"<server>":["<key>",...]}}}
 */

static void
ngx_goim_api_push_done(ngx_goim_api_redis_t *a)
{
    ngx_int_t               rc;
    ngx_str_t              *local;
    ngx_uint_t              i, n, nlocal;
    yajl_gen                g;
    ngx_goim_conf_t        *gcf;
    ngx_http_request_t     *r;
    ngx_goim_api_target_t  *t;

    if (a->done) {
        ngx_goim_api_lookup_done(a);
        return;
    }

    r = a->request;

    if (a->err) {
        rc = ngx_goim_api_redis_error(r, a->err);
        goto done;
    }

    if (ngx_goim_mode() == NGX_GOIM_KAFKA) {
        rc = ngx_goim_api_push_kafka(a);
        goto done;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    t = a->targets.elts;
    n = ngx_goim_api_unique_targets(t, a->targets.nelts);

    local = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_str_t));
    g = yajl_gen_alloc(NULL);

    if (local == NULL || g == NULL) {
        if (g) {
            yajl_gen_free(g);
        }

        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    nlocal = 0;

    for (i = 0; i < n; i++) {
        if (ngx_goim_api_target_here(&t[i], gcf)) {
            local[nlocal++] = t[i].key;
        }
    }

    yajl_gen_map_open(g);
    ngx_goim_api_other_servers(g, t, n, gcf);

    yajl_gen_string(g, (u_char *) "delivered_here", 14);
    yajl_gen_integer(g, nlocal);
    yajl_gen_map_close(g);

    if (a->kept) {
        rc = ngx_goim_api_dispatch_members(r->pool, &a->push, t, n, NULL);

    } else {
        rc = nlocal ? ngx_goim_dispatch_keys(&a->push, local, nlocal)
                    : NGX_OK;
    }

    rc = rc == NGX_OK ? ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g)
                      : ngx_goim_api_pushed(r, rc);

    yajl_gen_free(g);

done:

    ngx_goim_api_redis_cleanup(a);

    if (rc == NGX_DONE) {
        /* answered when Kafka has reported every message */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * With members' streams, this node's targets (t is reordered) by
 * member, their number in *here: each member's
 * connections get the message with its position in the member's stream
 * (docs/PROTOCOL.md 1.16), so each member's is its own message; the
 * targets' order (by server, then key) is lost.
 */

ngx_int_t
ngx_goim_api_dispatch_members(ngx_pool_t *pool, ngx_goim_push_t *push,
    ngx_goim_api_target_t *t, ngx_uint_t n, ngx_uint_t *here)
{
    ngx_int_t         rc, result;
    ngx_str_t        *keys;
    ngx_uint_t        i, j, k;
    ngx_goim_conf_t  *gcf;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    for (i = 0, k = 0; i < n; i++) {
        if (ngx_goim_api_target_here(&t[i], gcf)) {
            t[k++] = t[i];
        }
    }

    n = k;

    if (here) {
        *here = n;
    }

    if (n == 0) {
        return NGX_OK;
    }

    keys = ngx_palloc(pool, n * sizeof(ngx_str_t));
    if (keys == NULL) {
        return NGX_ERROR;
    }

    ngx_qsort(t, n, sizeof(ngx_goim_api_target_t), ngx_goim_api_member_cmp);

    result = NGX_OK;

    for (i = 0; i < n; i = j) {
        for (j = i, k = 0; j < n && ngx_goim_api_member_cmp(&t[i], &t[j]) == 0;
             j++)
        {
            keys[k++] = t[j].key;
        }

        /* encoded again for each member: its own offset */
        ngx_goim_push_release(push);

        push->mid = t[i].mid;
        push->epoch = t[i].epoch;
        push->pos = t[i].offset;
        push->stream = NGX_GOIM_MEMBER_STREAM;

        rc = ngx_goim_dispatch_keys(push, keys, k);
        if (rc != NGX_OK) {
            result = rc;
        }
    }

    return result;
}


static int ngx_libc_cdecl
ngx_goim_api_member_cmp(const void *x, const void *y)
{
    const ngx_goim_api_target_t  *a = x, *b = y;

    if (a->mid != b->mid) {
        return a->mid < b->mid ? -1 : 1;
    }

    if (a->offset != b->offset) {
        return a->offset < b->offset ? -1 : 1;
    }

    return (a->epoch > b->epoch) - (a->epoch < b->epoch);
}


/* "<ms>-<seq>", a stream id: NGX_OK, or NGX_ERROR */

ngx_int_t
ngx_goim_api_stream_id(u_char *s, size_t len, uint64_t *epoch,
    uint64_t *offset)
{
    u_char  *dash;
    off_t    e, o;

    dash = ngx_strlchr(s, s + len, '-');

    if (dash == NULL) {
        return NGX_ERROR;
    }

    e = ngx_atoof(s, dash - s);
    o = ngx_atoof(dash + 1, s + len - dash - 1);

    if (e == NGX_ERROR || o == NGX_ERROR) {
        return NGX_ERROR;
    }

    *epoch = (uint64_t) e;
    *offset = (uint64_t) o;

    return NGX_OK;
}


/* the batch's: the owner may finalize the request, a is not used after */

static void
ngx_goim_api_lookup_done(ngx_goim_api_redis_t *a)
{
    ngx_goim_api_redis_cleanup(a);

    a->done(a->request, a->targets.elts, a->targets.nelts, a->err, a->data);
}


/*
 * One goim.PushMsg per server, with that server's keys, sorted and each
 * once (goim groups them the same way); this node's keys too: they come
 * back through the job and the internal push.
 */

static ngx_int_t
ngx_goim_api_push_kafka(ngx_goim_api_redis_t *a)
{
    ngx_uint_t              n, nmsgs;
    ngx_http_request_t     *r;
    ngx_goim_api_kafka_t   *kb;
    ngx_goim_api_target_t  *t;

    r = a->request;
    t = a->targets.elts;
    n = a->targets.nelts;

    n = ngx_goim_api_unique_targets(t, n);
    nmsgs = ngx_goim_api_kafka_messages(t, n);

    kb = ngx_goim_api_kafka_batch(r, nmsgs, 1);
    if (kb == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a failure stops there: the answer says what was acknowledged */
    (void) ngx_goim_api_kafka_produce(r->pool, kb->batch, a->push.op,
                                      &a->push.body, t, n);

    return ngx_goim_api_kafka_wait(kb);
}


/*
 * The PushMsgs of unique targets: t is sorted by server, then member's
 * message, then key; returns how many messages, one per server and, with
 * members' streams, per member there (each with its own position)
 */

ngx_uint_t
ngx_goim_api_kafka_messages(ngx_goim_api_target_t *t, ngx_uint_t n)
{
    ngx_uint_t  i, k;

    if (n > 1) {
        ngx_qsort(t, n, sizeof(ngx_goim_api_target_t),
                  ngx_goim_api_message_cmp);
    }

    for (i = 0, k = 0; i < n; i++) {
        if (i == 0 || !ngx_goim_api_same_message(&t[i - 1], &t[i])) {
            k++;
        }
    }

    return k;
}


ngx_int_t
ngx_goim_api_kafka_produce(ngx_pool_t *pool, ngx_goim_kafka_batch_t *kb,
    int32_t op, ngx_str_t *body, ngx_goim_api_target_t *t, ngx_uint_t n)
{
    ngx_int_t    rc;
    ngx_str_t   *keys;
    ngx_uint_t   first, nkeys;

    keys = ngx_palloc(pool, (n + 1) * sizeof(ngx_str_t));
    if (keys == NULL) {
        return NGX_ERROR;
    }

    for (first = 0; first < n; first += nkeys) {
        for (nkeys = 0; first + nkeys < n; nkeys++) {
            if (!ngx_goim_api_same_message(&t[first], &t[first + nkeys])) {
                break;
            }

            keys[nkeys] = t[first + nkeys].key;
        }

        if (t[first].mid) {
            rc = ngx_goim_kafka_produce_member(kb, op, &t[first].server,
                                               keys, nkeys, body,
                                               t[first].mid, t[first].epoch,
                                               t[first].offset);

        } else {
            rc = ngx_goim_kafka_produce(kb, NGX_GOIM_KAFKA_PUSH, op, 0,
                                        &t[first].server, NULL, keys, nkeys,
                                        body);
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* by server, then the member's message (none first), then key */

static int ngx_libc_cdecl
ngx_goim_api_message_cmp(const void *x, const void *y)
{
    ngx_int_t                     rc;
    const ngx_goim_api_target_t  *a = x, *b = y;

    rc = ngx_memn2cmp(a->server.data, b->server.data, a->server.len,
                      b->server.len);
    if (rc) {
        return rc;
    }

    rc = ngx_goim_api_member_cmp(a, b);
    if (rc) {
        return rc;
    }

    return ngx_memn2cmp(a->key.data, b->key.data, a->key.len, b->key.len);
}


static ngx_uint_t
ngx_goim_api_same_message(ngx_goim_api_target_t *a, ngx_goim_api_target_t *b)
{
    return ngx_memn2cmp(a->server.data, b->server.data, a->server.len,
                        b->server.len) == 0
           && ngx_goim_api_member_cmp(a, b) == 0;
}


/* by server, then key */

int ngx_libc_cdecl
ngx_goim_api_target_cmp(const void *x, const void *y)
{
    ngx_int_t                     rc;
    const ngx_goim_api_target_t  *a = x, *b = y;

    rc = ngx_memn2cmp(a->server.data, b->server.data, a->server.len,
                      b->server.len);
    if (rc) {
        return rc;
    }

    return ngx_memn2cmp(a->key.data, b->key.data, a->key.len, b->key.len);
}


/* sorted by server and key, each once (e.g. a key in two mids' hashes) */

ngx_uint_t
ngx_goim_api_unique_targets(ngx_goim_api_target_t *t, ngx_uint_t n)
{
    ngx_uint_t  i, k;

    if (n < 2) {
        return n;
    }

    ngx_qsort(t, n, sizeof(ngx_goim_api_target_t), ngx_goim_api_target_cmp);

    for (i = 1, k = 1; i < n; i++) {
        if (ngx_goim_api_target_cmp(&t[k - 1], &t[i]) != 0) {
            t[k++] = t[i];
        }
    }

    return k;
}


ngx_uint_t
ngx_goim_api_target_here(ngx_goim_api_target_t *t, ngx_goim_conf_t *gcf)
{
    return t->server.len == gcf->server_id.len
           && ngx_memcmp(t->server.data, gcf->server_id.data,
                         t->server.len) == 0;
}


/* "other_servers":{"<server>":["<key>",...]} of sorted, unique targets */

void
ngx_goim_api_other_servers(yajl_gen g, ngx_goim_api_target_t *t,
    ngx_uint_t n, ngx_goim_conf_t *gcf)
{
    ngx_str_t   *prev;
    ngx_uint_t   i;

    yajl_gen_string(g, (u_char *) "other_servers", 13);
    yajl_gen_map_open(g);

    prev = NULL;

    for (i = 0; i < n; i++) {
        if (ngx_goim_api_target_here(&t[i], gcf)) {
            continue;
        }

        if (prev == NULL
            || ngx_memn2cmp(prev->data, t[i].server.data, prev->len,
                            t[i].server.len) != 0)
        {
            if (prev) {
                yajl_gen_array_close(g);
            }

            yajl_gen_string(g, t[i].server.data, t[i].server.len);
            yajl_gen_array_open(g);
            prev = &t[i].server;
        }

        yajl_gen_string(g, t[i].key.data, t[i].key.len);
    }

    if (prev) {
        yajl_gen_array_close(g);
    }

    yajl_gen_map_close(g);
}
