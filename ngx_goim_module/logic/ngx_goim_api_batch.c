
/*
 * goim for nginx: POST /goim/push/batch (docs/PROTOCOL.md 2.13), many
 * pushes of any kind in one request, as JSON lines or as a protobuf
 * goim.PushBatch.  Every item is checked on its own: a bad one is answered
 * with its reason in the per-item results and the others still go.
 *
 * Embedded, the items go to dispatch one after the other.  With Redis,
 * the keys and mids of all items are looked up together
 * (ngx_goim_api_lookup(): one write, one round trip); with Kafka, every
 * item then produces its messages, all in the same event-loop turn so
 * that librdkafka sends them in one produce request, and the answer
 * waits until Kafka reported each of them.
 */



#include "ngx_goim_api_batch.h"


static ngx_int_t ngx_goim_api_batch_embedded(ngx_goim_api_batch_t *b);
static ngx_int_t ngx_goim_api_batch_lookup(ngx_goim_api_batch_t *b);
static void ngx_goim_api_batch_found(ngx_http_request_t *r,
    ngx_goim_api_target_t *t, ngx_uint_t n, const char *err, void *data);
static ngx_int_t ngx_goim_api_batch_route(ngx_goim_api_batch_t *b);
static void ngx_goim_api_batch_produce(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item);
static void ngx_goim_api_batch_reported(ngx_goim_kafka_batch_t *kb,
    void *data);
static void ngx_goim_api_batch_result(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item);
static void ngx_goim_api_batch_local(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item);
static ngx_int_t ngx_goim_api_batch_answer(ngx_goim_api_batch_t *b);
static int ngx_libc_cdecl ngx_goim_api_batch_target_cmp(const void *x,
    const void *y);


ngx_int_t
ngx_goim_api_batch(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_int_t              rc;
    ngx_str_t             *ct;
    ngx_goim_api_batch_t  *b;

    b = ngx_pcalloc(r->pool, sizeof(ngx_goim_api_batch_t));
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->request = r;

    b->items = ngx_pcalloc(r->pool, NGX_GOIM_BATCH_MAX_ITEMS
                                    * sizeof(ngx_goim_api_item_t));
    if (b->items == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ct = r->headers_in.content_type ? &r->headers_in.content_type->value
                                    : NULL;

    if (ct && ct->len >= sizeof("application/x-protobuf") - 1
        && (ngx_strncasecmp(ct->data, (u_char *) "application/x-protobuf",
                            sizeof("application/x-protobuf") - 1) == 0
            || ngx_strncasecmp(ct->data, (u_char *) "application/protobuf",
                               sizeof("application/protobuf") - 1) == 0))
    {
        rc = ngx_goim_api_batch_protobuf(b, body);

    } else {
        rc = ngx_goim_api_batch_json(b, body);
    }

    if (rc == NGX_DECLINED) {
        /* the request as a whole was refused and answered */
        return b->refused;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_goim_mode() == NGX_GOIM_EMBEDDED) {
        return ngx_goim_api_batch_embedded(b);
    }

    return ngx_goim_api_batch_lookup(b);
}


static ngx_int_t
ngx_goim_api_batch_embedded(ngx_goim_api_batch_t *b)
{
    ngx_int_t             rc;
    ngx_uint_t            i;
    ngx_goim_push_t       push;
    ngx_goim_api_item_t  *item;

    for (i = 0; i < b->nitems; i++) {
        item = &b->items[i];

        if (item->code != NGX_GOIM_BATCH_PENDING) {
            continue;
        }

        ngx_memzero(&push, sizeof(ngx_goim_push_t));
        push.op = item->op;
        push.body = item->body;

        switch (item->type) {

        case NGX_GOIM_API_PUSH_KEYS:
            rc = ngx_goim_dispatch_keys(&push, item->keys, item->n);
            break;

        case NGX_GOIM_API_PUSH_MIDS:
            rc = ngx_goim_dispatch_mids(&push, item->mids, item->n);
            break;

        case NGX_GOIM_API_PUSH_ROOM:
            rc = ngx_goim_dispatch_room(&push, &item->room);
            break;

        default: /* NGX_GOIM_API_PUSH_ALL */
            rc = ngx_goim_dispatch_all(&push, item->speed);
            break;
        }

        ngx_goim_push_release(&push);

        if (rc == NGX_OK) {
            item->code = 0;

        } else {
            ngx_goim_api_batch_fail(b, item, -500, "%s",
                                    rc == NGX_BUSY
                                    ? "a worker's inbox is full, "
                                      "push refused"
                                    : "shared zone exhausted, push refused");
        }
    }

    return ngx_goim_api_batch_answer(b);
}


/* one lookup for the keys and mids of every item that is still good */

static ngx_int_t
ngx_goim_api_batch_lookup(ngx_goim_api_batch_t *b)
{
    int32_t              *ops;
    int64_t              *mids;
    ngx_int_t             rc;
    ngx_str_t            *keys, *bodies;
    ngx_uint_t            i, k, nkeys, nmids, *key_items, *mid_items;
    ngx_http_request_t   *r;
    ngx_goim_api_item_t  *item;

    r = b->request;

    if (b->ntargets == 0) {
        return ngx_goim_api_batch_route(b);
    }

    keys = ngx_palloc(r->pool, b->ntargets * sizeof(ngx_str_t));
    mids = ngx_palloc(r->pool, b->ntargets * sizeof(int64_t));
    key_items = ngx_palloc(r->pool, b->ntargets * sizeof(ngx_uint_t));
    mid_items = ngx_palloc(r->pool, b->ntargets * sizeof(ngx_uint_t));
    ops = ngx_palloc(r->pool, b->ntargets * sizeof(int32_t));
    bodies = ngx_palloc(r->pool, b->ntargets * sizeof(ngx_str_t));

    if (keys == NULL || mids == NULL || key_items == NULL
        || mid_items == NULL || ops == NULL || bodies == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nkeys = 0;
    nmids = 0;

    for (i = 0; i < b->nitems; i++) {
        item = &b->items[i];

        if (item->code != NGX_GOIM_BATCH_PENDING) {
            continue;
        }

        for (k = 0; item->type == NGX_GOIM_API_PUSH_KEYS && k < item->n;
             k++)
        {
            keys[nkeys] = item->keys[k];
            key_items[nkeys++] = i;
        }

        for (k = 0; item->type == NGX_GOIM_API_PUSH_MIDS && k < item->n;
             k++)
        {
            mids[nmids] = item->mids[k];
            ops[nmids] = item->op;
            bodies[nmids] = item->body;
            mid_items[nmids++] = i;
        }
    }

    rc = ngx_goim_api_lookup(r, keys, key_items, nkeys, mids, mid_items,
                             nmids, ops, bodies, ngx_goim_api_batch_found,
                             b);

    if (rc == NGX_DONE) {
        return NGX_DONE;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* Redis is down: keys and mids fail, rooms and broadcasts still go */
    ngx_goim_api_batch_found(r, NULL, 0, NGX_GOIM_REDIS_DOWN, b);

    return NGX_DONE;
}


static void
ngx_goim_api_batch_found(ngx_http_request_t *r, ngx_goim_api_target_t *t,
    ngx_uint_t n, const char *err, void *data)
{
    ngx_goim_api_batch_t  *b = data;

    ngx_int_t             rc;
    ngx_uint_t            i, k;
    ngx_goim_api_item_t  *item;

    if (err) {
        for (i = 0; i < b->nitems; i++) {
            item = &b->items[i];

            if (item->type == NGX_GOIM_API_PUSH_KEYS
                || item->type == NGX_GOIM_API_PUSH_MIDS)
            {
                ngx_goim_api_batch_fail(b, item, -500, "redis: %s", err);
            }
        }

        n = 0;
    }

    /* by item, server, key; the same key twice is one target */
    if (n > 1) {
        ngx_qsort(t, n, sizeof(ngx_goim_api_target_t),
                  ngx_goim_api_batch_target_cmp);
    }

    for (i = 1, k = n ? 1 : 0; i < n; i++) {
        if (ngx_goim_api_batch_target_cmp(&t[k - 1], &t[i]) != 0) {
            t[k++] = t[i];
        }
    }

    n = k;

    for (i = 0; i < n; i = k) {
        for (k = i; k < n && t[k].item == t[i].item; k++) { /* void */ }

        b->items[t[i].item].targets = &t[i];
        b->items[t[i].item].ntargets = k - i;
    }

    rc = ngx_goim_api_batch_route(b);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* the targets are known: to Kafka, or delivered here */

static ngx_int_t
ngx_goim_api_batch_route(ngx_goim_api_batch_t *b)
{
    ngx_uint_t            i;
    ngx_goim_api_item_t  *item;

    for (i = 0; i < b->nitems; i++) {
        item = &b->items[i];

        if (item->code != NGX_GOIM_BATCH_PENDING) {
            continue;
        }

        if (ngx_goim_mode() == NGX_GOIM_KAFKA) {
            ngx_goim_api_batch_produce(b, item);

        } else {
            ngx_goim_api_batch_local(b, item);
        }
    }

    if (b->waiting) {
        /* a client that goes away frees the request, and so the batches */
        b->request->read_event_handler = ngx_http_test_reading;
        return NGX_DONE;
    }

    return ngx_goim_api_batch_answer(b);
}


/* the item's goim.PushMsg records (4.3), as one batch of the producer */

static void
ngx_goim_api_batch_produce(ngx_goim_api_batch_t *b, ngx_goim_api_item_t *item)
{
    ngx_uint_t  nmsgs;

    if (item->type == NGX_GOIM_API_PUSH_ROOM
        || item->type == NGX_GOIM_API_PUSH_ALL)
    {
        nmsgs = 1;

    } else {
        /* one per server, and per member there with members' streams */
        nmsgs = ngx_goim_api_kafka_messages(item->targets, item->ntargets);
    }

    item->kafka = ngx_goim_kafka_batch(b->request->pool,
                                       b->request->connection->log, nmsgs,
                                       ngx_goim_api_batch_reported, item);
    if (item->kafka == NULL) {
        ngx_goim_api_batch_fail(b, item, -500, "out of memory");
        return;
    }

    item->messages = nmsgs;

    if (item->type == NGX_GOIM_API_PUSH_ROOM) {
        (void) ngx_goim_kafka_produce(item->kafka, NGX_GOIM_KAFKA_ROOM,
                                      item->op, 0, NULL, &item->room, NULL,
                                      0, &item->body);

    } else if (item->type == NGX_GOIM_API_PUSH_ALL) {
        (void) ngx_goim_kafka_produce(item->kafka, NGX_GOIM_KAFKA_BROADCAST,
                                      item->op, item->speed, NULL, NULL,
                                      NULL, 0, &item->body);

    } else {
        /* a failure stops there: the result says what was acknowledged */
        (void) ngx_goim_api_kafka_produce(b->request->pool, item->kafka,
                                          item->op, &item->body,
                                          item->targets, item->ntargets);
    }

    if (ngx_goim_kafka_wait(item->kafka) == NGX_DONE) {
        b->waiting++;
        return;
    }

    ngx_goim_api_batch_result(b, item);
}


static void
ngx_goim_api_batch_reported(ngx_goim_kafka_batch_t *kb, void *data)
{
    ngx_goim_api_item_t  *item = data;

    ngx_goim_api_batch_t  *b;

    b = item->owner;

    ngx_goim_api_batch_result(b, item);

    if (--b->waiting == 0) {
        ngx_http_finalize_request(b->request, ngx_goim_api_batch_answer(b));
    }
}


static void
ngx_goim_api_batch_result(ngx_goim_api_batch_t *b, ngx_goim_api_item_t *item)
{
    ngx_goim_kafka_result_t  res;

    ngx_goim_kafka_result(item->kafka, &res);
    ngx_goim_kafka_finish(item->kafka);

    if (res.invalid) {
        ngx_goim_api_batch_fail(b, item, -400,
                                "keys and rooms must not hold a NUL byte");

    } else if (res.queue_full) {
        ngx_goim_api_batch_fail(b, item, -500,
                                "kafka queue full (%ui of %ui messages "
                                "acknowledged)", res.acked, res.total);

    } else if (res.error) {
        ngx_goim_api_batch_fail(b, item, -500,
                                "kafka: %s (%ui of %ui messages "
                                "acknowledged)", res.error, res.acked,
                                res.total);

    } else if (res.acked < res.total) {
        ngx_goim_api_batch_fail(b, item, -500,
                                "out of memory (%ui of %ui messages "
                                "acknowledged)", res.acked, res.total);

    } else {
        item->code = 0;
    }
}


/* Redis without Kafka: as push/keys there, this node's targets only */

static void
ngx_goim_api_batch_local(ngx_goim_api_batch_t *b, ngx_goim_api_item_t *item)
{
    ngx_int_t         rc;
    ngx_str_t        *local;
    ngx_uint_t        i;
    ngx_goim_conf_t  *gcf;
    ngx_goim_push_t   push;

    ngx_memzero(&push, sizeof(ngx_goim_push_t));
    push.op = item->op;
    push.body = item->body;

    if (item->type == NGX_GOIM_API_PUSH_ROOM) {
        rc = ngx_goim_dispatch_room(&push, &item->room);

    } else if (item->type == NGX_GOIM_API_PUSH_ALL) {
        rc = ngx_goim_dispatch_all(&push, item->speed);

    } else if (item->type == NGX_GOIM_API_PUSH_MIDS
               && ngx_goim_registry_member_stream_on())
    {
        /* each member's message with its position (docs/PROTOCOL.md 1.16) */
        rc = ngx_goim_api_dispatch_members(b->request->pool, &push,
                                           item->targets, item->ntargets,
                                           &item->here);

    } else {
        gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

        local = ngx_palloc(b->request->pool,
                           (item->ntargets + 1) * sizeof(ngx_str_t));
        if (local == NULL) {
            ngx_goim_api_batch_fail(b, item, -500, "out of memory");
            return;
        }

        for (i = 0; i < item->ntargets; i++) {
            if (item->targets[i].server.len == gcf->server_id.len
                && ngx_memcmp(item->targets[i].server.data,
                              gcf->server_id.data, gcf->server_id.len) == 0)
            {
                local[item->here++] = item->targets[i].key;
            }
        }

        rc = item->here ? ngx_goim_dispatch_keys(&push, local, item->here)
                        : NGX_OK;
    }

    ngx_goim_push_release(&push);

    if (rc == NGX_OK) {
        item->code = 0;
        return;
    }

    ngx_goim_api_batch_fail(b, item, -500, "%s",
                            rc == NGX_BUSY
                            ? "a worker's inbox is full, push refused"
                            : "shared zone exhausted, push refused");
}


/*
 * {"code":0,"message":"","data":{"items":n,"accepted":n,"failed":0,
 *  "results":[{"code":0,"message":""},...]}}; code 0 only when every
 * item was accepted, else the first failed item's code.
 */

static ngx_int_t
ngx_goim_api_batch_answer(ngx_goim_api_batch_t *b)
{
    u_char                 *p, msg[320];
    ngx_int_t               rc, code;
    ngx_uint_t              i, failed, first;
    yajl_gen                g;
    ngx_goim_conf_t        *gcf;
    ngx_goim_api_item_t    *item;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    failed = 0;
    first = 0;

    yajl_gen_map_open(g);
    yajl_gen_string(g, (u_char *) "results", 7);
    yajl_gen_array_open(g);

    for (i = 0; i < b->nitems; i++) {
        item = &b->items[i];

        if (item->code == NGX_GOIM_BATCH_PENDING) {
            /* a bug, never a silent success */
            ngx_goim_api_batch_fail(b, item, -500, "not processed");
        }

        if (item->code != 0 && failed++ == 0) {
            first = i;
        }

        yajl_gen_map_open(g);
        yajl_gen_string(g, (u_char *) "code", 4);
        yajl_gen_integer(g, item->code);
        yajl_gen_string(g, (u_char *) "message", 7);

        if (item->code) {
            yajl_gen_string(g, (u_char *) item->message,
                            ngx_strlen(item->message));

        } else {
            yajl_gen_string(g, (u_char *) "", 0);
        }

        if (item->code == 0 && item->kafka) {
            yajl_gen_string(g, (u_char *) "messages", 8);
            yajl_gen_integer(g, item->messages);
        }

        if (item->code == 0 && ngx_goim_mode() == NGX_GOIM_REDIS
            && (item->type == NGX_GOIM_API_PUSH_KEYS
                || item->type == NGX_GOIM_API_PUSH_MIDS))
        {
            yajl_gen_string(g, (u_char *) "delivered_here", 14);
            yajl_gen_integer(g, item->here);
            ngx_goim_api_other_servers(g, item->targets, item->ntargets,
                                       gcf);
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    yajl_gen_string(g, (u_char *) "items", 5);
    yajl_gen_integer(g, b->nitems);
    yajl_gen_string(g, (u_char *) "accepted", 8);
    yajl_gen_integer(g, b->nitems - failed);
    yajl_gen_string(g, (u_char *) "failed", 6);
    yajl_gen_integer(g, failed);
    yajl_gen_map_close(g);

    if (failed) {
        code = b->items[first].code;
        p = ngx_snprintf(msg, sizeof(msg) - 1,
                         "%ui of %ui items failed, the first (item %ui): %s",
                         failed, b->nitems, first, b->items[first].message);
        *p = '\0';

    } else {
        code = 0;
        msg[0] = '\0';
    }

    rc = ngx_goim_api_reply(b->request, NGX_HTTP_OK, code,
                            (const char *) msg, g);

    yajl_gen_free(g);

    return rc;
}


static int ngx_libc_cdecl
ngx_goim_api_batch_target_cmp(const void *x, const void *y)
{
    const ngx_goim_api_target_t  *a = x, *b = y;

    if (a->item != b->item) {
        return a->item < b->item ? -1 : 1;
    }

    return ngx_goim_api_target_cmp(a, b);
}
