
/*
 * goim for nginx: the internal push location (goim_internal_push).  The
 * job posts a goim.CometPushBatch: goim's comet requests PushMsgReq,
 * BroadcastRoomReq and BroadcastReq, several per request, applied in
 * order through the dispatch the embedded API uses.  The whole batch is
 * validated before the first item is dispatched; a refused item stops
 * the batch and the answer says how many went out before it, so that the
 * job retries from there (docs/PROTOCOL.md 5.5; the data flow in
 * docs/ARCHITECTURE.md).
 */


#include "ngx_goim_api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <goim.pb-c.h>


#define NGX_GOIM_INTERNAL_MAX_KEYS   1000   /* per item, as the API */
#define NGX_GOIM_INTERNAL_ERR_LEN    160


/* one kind of log line, written at most once a second */
typedef struct {
    time_t                 last;
    ngx_uint_t             suppressed;
} ngx_goim_internal_log_t;


typedef struct {
    ngx_http_request_t    *request;
    ngx_uint_t             nomem;
} ngx_goim_internal_alloc_t;


static const char *ngx_goim_internal_secret(ngx_http_request_t *r);
static void ngx_goim_internal_body(ngx_http_request_t *r);
static ngx_int_t ngx_goim_internal_read(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_goim_internal_check(Goim__CometPushBatch *batch,
    u_char *err, ngx_uint_t *max_keys);
static const char *ngx_goim_internal_check_proto(Goim__Proto *proto,
    ngx_uint_t filtered, int32_t proto_op, u_char *err);
static ngx_int_t ngx_goim_internal_dispatch(ngx_http_request_t *r,
    Goim__CometPush *item, ngx_str_t *keys);
static ngx_int_t ngx_goim_internal_room_raw(ngx_goim_push_t *push,
    ngx_str_t *room);
static const char *ngx_goim_internal_check_offsets(
    Goim__BroadcastRoomReq *req, u_char *buf);
static ngx_int_t ngx_goim_internal_room_at(ngx_goim_push_t *push,
    ngx_str_t *room, Goim__BroadcastRoomReq *req);
static ngx_uint_t ngx_goim_internal_unique(ngx_str_t *keys, ngx_uint_t n);
static const char *ngx_goim_internal_check_member(Goim__PushMsgReq *push);
static void ngx_goim_internal_member(ngx_goim_push_t *push,
    Goim__PushMsgReq *req);
static uint32_t ngx_goim_internal_be32(u_char *p);
static int ngx_libc_cdecl ngx_goim_internal_key_cmp(const void *a,
    const void *b);
static void *ngx_goim_internal_pb_alloc(void *data, size_t size);
static void ngx_goim_internal_pb_free(void *data, void *p);
static void ngx_goim_internal_log(ngx_http_request_t *r, ngx_uint_t level,
    ngx_goim_internal_log_t *lim, const char *fmt, ...);
static ngx_int_t ngx_goim_internal_reply(ngx_http_request_t *r,
    ngx_uint_t status, ngx_int_t code, u_char *message,
    ngx_uint_t accepted);


static ngx_goim_internal_log_t  ngx_goim_internal_forbidden_log;
static ngx_goim_internal_log_t  ngx_goim_internal_invalid_log;
static ngx_goim_internal_log_t  ngx_goim_internal_refused_log;

static ngx_str_t  ngx_goim_internal_header = ngx_string("X-Goim-Secret");


ngx_int_t
ngx_goim_internal_handler(ngx_http_request_t *r)
{
    ngx_int_t         rc;
    const char       *why;
    ngx_table_elt_t  *allow;

    if (r->method != NGX_HTTP_POST) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        allow = ngx_list_push(&r->headers_out.headers);
        if (allow == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        allow->hash = 1;
        ngx_str_set(&allow->key, "Allow");
        ngx_str_set(&allow->value, "POST");

        return ngx_goim_internal_reply(r, NGX_HTTP_NOT_ALLOWED, -405,
                                       (u_char *) "method not allowed, "
                                       "use POST", 0);
    }

    /* checked first: a body without the secret is discarded, not decoded */

    why = ngx_goim_internal_secret(r);

    if (why) {
        ngx_goim_worker.stats->internal_forbidden++;

        ngx_goim_internal_log(r, NGX_LOG_WARN,
                              &ngx_goim_internal_forbidden_log,
                              "refused: %s", why);

        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_goim_internal_reply(r, NGX_HTTP_FORBIDDEN, -403,
                                       (u_char *) why, 0);
    }

    /*
     * the location's client_body_buffer_size is at least its
     * client_max_body_size (ngx_goim_internal_conf.c): the body stays in
     * memory
     */

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_goim_internal_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * NULL when X-Goim-Secret holds the location's secret, else why not.
 * The digests are compared, in constant time: neither the secret's
 * bytes nor its length can be learnt from the answer's timing.
 */

static const char *
ngx_goim_internal_secret(ngx_http_request_t *r)
{
    u_char                     md[SHA256_DIGEST_LENGTH];
    ngx_uint_t                 i;
    ngx_list_part_t           *part;
    ngx_table_elt_t           *h, *found;
    ngx_goim_internal_conf_t  *icf;

    found = NULL;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != ngx_goim_internal_header.len
            || ngx_strncasecmp(h[i].key.data, ngx_goim_internal_header.data,
                               ngx_goim_internal_header.len)
               != 0)
        {
            continue;
        }

        if (found) {
            return "X-Goim-Secret given more than once";
        }

        found = &h[i];
    }

    if (found == NULL) {
        return "no X-Goim-Secret header";
    }

    icf = ngx_http_get_module_loc_conf(r, ngx_http_goim_module);

    SHA256(found->value.data, found->value.len, md);

    if (CRYPTO_memcmp(md, icf->internal_secret, SHA256_DIGEST_LENGTH) != 0)
    {
        return "wrong X-Goim-Secret";
    }

    return NULL;
}


static void
ngx_goim_internal_body(ngx_http_request_t *r)
{
    u_char                     err[NGX_GOIM_INTERNAL_ERR_LEN];
    ngx_int_t                  rc;
    ngx_str_t                  body, *keys;
    ngx_uint_t                 i, max_keys;
    const char                *why;
    ProtobufCAllocator         allocator;
    Goim__CometPushBatch      *batch;
    ngx_goim_internal_alloc_t  ad;

    rc = ngx_goim_internal_read(r, &body);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    /* protobuf-c says only "failed": the allocator tells out of memory */

    ad.request = r;
    ad.nomem = 0;

    allocator.alloc = ngx_goim_internal_pb_alloc;
    allocator.free = ngx_goim_internal_pb_free;
    allocator.allocator_data = &ad;

    batch = goim__comet_push_batch__unpack(&allocator, body.len, body.data);

    if (batch == NULL) {
        if (ad.nomem) {
            ngx_http_finalize_request(r,
                ngx_goim_internal_reply(r, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                        (u_char *) "out of memory decoding "
                                        "the body", 0));
            return;
        }

        ngx_goim_worker.stats->internal_invalid++;

        ngx_goim_internal_log(r, NGX_LOG_WARN, &ngx_goim_internal_invalid_log,
                              "rejected: the %uz-byte body is not a "
                              "goim.CometPushBatch", body.len);

        ngx_http_finalize_request(r,
            ngx_goim_internal_reply(r, NGX_HTTP_BAD_REQUEST, -400,
                                    (u_char *) "the body is not a "
                                    "goim.CometPushBatch", 0));
        return;
    }

    if (ngx_goim_internal_check(batch, err, &max_keys) != NGX_OK) {
        ngx_goim_worker.stats->internal_invalid++;

        ngx_goim_internal_log(r, NGX_LOG_WARN, &ngx_goim_internal_invalid_log,
                              "rejected, nothing pushed: %s", err);

        rc = ngx_goim_internal_reply(r, NGX_HTTP_BAD_REQUEST, -400, err, 0);
        goto done;
    }

    keys = ngx_palloc(r->pool, ngx_max(max_keys, 1) * sizeof(ngx_str_t));
    if (keys == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    rc = NGX_OK;

    for (i = 0; i < batch->n_pushes; i++) {
        rc = ngx_goim_internal_dispatch(r, batch->pushes[i], keys);
        if (rc != NGX_OK) {
            break;
        }
    }

    ngx_goim_worker.stats->internal_pushes += i;

    if (rc == NGX_OK) {
        ngx_goim_worker.stats->internal_requests++;
        rc = ngx_goim_internal_reply(r, NGX_HTTP_OK, 0, (u_char *) "", i);
        goto done;
    }

    /*
     * items [0, i) went out; item i may have reached some of its targets
     * (those on workers with room), so the job's retry from item i can
     * deliver it twice to them: at least once, never lost
     */

    why = (rc == NGX_BUSY) ? "a worker's inbox is full"
                           : "out of memory (shared zone or worker)";

    *ngx_snprintf(err, sizeof(err) - 1, "item %ui refused: %s", i, why) = '\0';

    ngx_goim_internal_log(r, NGX_LOG_WARN, &ngx_goim_internal_refused_log,
                          "stopped: %s; %ui of %uz items pushed", err, i,
                          batch->n_pushes);

    rc = ngx_goim_internal_reply(r, NGX_HTTP_SERVICE_UNAVAILABLE, -500, err,
                                 i);

done:

    goim__comet_push_batch__free_unpacked(batch, &allocator);

    ngx_http_finalize_request(r, rc);
}


/* the body in one piece (client_max_body_size bounds it) */

static ngx_int_t
ngx_goim_internal_read(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    if (r->request_body->temp_file) {
        /* ngx_goim_internal_merge_loc_conf() sized the buffer to avoid it */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "goim: internal push body was written to a file");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    len = 0;

    for ( /* void */ ; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        /* a chunked body ends with an empty marker buffer, pos NULL */
        if (cl->buf->last != cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    return NGX_OK;
}


/*
 * Every item is checked before any is dispatched, so that a bad item
 * never leaves a batch half pushed.  NGX_DECLINED with the reason in
 * err (NUL-terminated); *max_keys: the most keys of one item.
 */

static ngx_int_t
ngx_goim_internal_check(Goim__CometPushBatch *batch, u_char *err,
    ngx_uint_t *max_keys)
{
    size_t              len;
    ngx_uint_t          i, k;
    const char         *why;
    Goim__CometPush    *item;
    Goim__PushMsgReq   *push;
    Goim__BroadcastReq *all;

    u_char  reason[NGX_GOIM_INTERNAL_ERR_LEN];

    *max_keys = 0;

    if (batch->n_pushes == 0) {
        ngx_cpystrn(err, (u_char *) "no pushes in the body",
                    NGX_GOIM_INTERNAL_ERR_LEN);
        return NGX_DECLINED;
    }

    for (i = 0; i < batch->n_pushes; i++) {
        item = batch->pushes[i];
        why = NULL;

        switch (item->req_case) {

        case GOIM__COMET_PUSH__REQ_PUSH:
            push = item->push;

            if (push->n_keys == 0) {
                why = "PushMsgReq without keys";
                break;
            }

            if (push->n_keys > NGX_GOIM_INTERNAL_MAX_KEYS) {
                why = "PushMsgReq with more than 1000 keys";
                break;
            }

            for (k = 0; k < push->n_keys; k++) {
                if (push->keys[k][0] == '\0') {
                    why = "PushMsgReq with an empty key";
                    break;
                }
            }

            if (why) {
                break;
            }

            why = ngx_goim_internal_check_member(push);
            if (why) {
                break;
            }

            *max_keys = ngx_max(*max_keys, push->n_keys);

            why = ngx_goim_internal_check_proto(push->proto, 1,
                                                push->protoop, reason);
            break;

        case GOIM__COMET_PUSH__REQ_ROOM:
            len = ngx_strlen(item->room->roomid);

            if (len == 0) {
                why = "BroadcastRoomReq without roomID";
                break;
            }

            if (len > NGX_GOIM_MAX_ROOM) {
                why = "BroadcastRoomReq roomID longer than 256 bytes";
                break;
            }

            why = ngx_goim_internal_check_proto(item->room->proto, 0, 0,
                                                reason);
            if (why == NULL) {
                why = ngx_goim_internal_check_offsets(item->room, reason);
            }

            break;

        case GOIM__COMET_PUSH__REQ_BROADCAST:
            all = item->broadcast;

            if (all->speed < 0) {
                why = "BroadcastReq with a negative speed";
                break;
            }

            why = ngx_goim_internal_check_proto(all->proto, 1, all->protoop,
                                                reason);
            break;

        default: /* GOIM__COMET_PUSH__REQ__NOT_SET */
            why = "no request set (push, room or broadcast)";
            break;
        }

        if (why) {
            ngx_snprintf(err, NGX_GOIM_INTERNAL_ERR_LEN - 1, "item %ui: %s",
                         i, why)[0] = '\0';
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * An OP_RAW proto's body must be whole goim packets, as the job builds
 * them.  Any other op is the body of one packet with that op; pushes
 * that filter by watched operation filter by it, so protoOp must agree.
 * Returns NULL or the reason (in buf when it has numbers).
 */

static const char *
ngx_goim_internal_check_proto(Goim__Proto *proto, ngx_uint_t filtered,
    int32_t proto_op, u_char *buf)
{
    int            rc;
    size_t         off;
    ngx_uint_t     n;
    goim_packet_t  pkt;

    if (proto == NULL) {
        return "no proto";
    }

    if (proto->op != GOIM_OP_RAW) {
        if (filtered && proto_op != proto->op) {
            ngx_snprintf(buf, NGX_GOIM_INTERNAL_ERR_LEN - 1,
                         "protoOp %D differs from the op %D of a proto "
                         "that is not OP_RAW", proto_op, proto->op)[0] = '\0';
            return (const char *) buf;
        }

        return NULL;
    }

    if (proto->body.len == 0) {
        return "OP_RAW proto with an empty body";
    }

    off = 0;

    for (n = 0; /* void */ ; n++) {
        rc = goim_raw_next(proto->body.data, proto->body.len, &off, &pkt);

        if (rc == 0) {
            return NULL;
        }

        if (rc < 0) {
            ngx_snprintf(buf, NGX_GOIM_INTERNAL_ERR_LEN - 1,
                         "OP_RAW body: packet %ui at byte %uz: %s", n, off,
                         goim_packet_strerror(rc))[0] = '\0';
            return (const char *) buf;
        }
    }
}


/*
 * Dispatches one checked item.  An OP_RAW body goes out as the packets
 * it holds, filtered (keys, broadcast) by protoOp; another op is framed
 * here as one packet.
 */

/*
 * A member's message kept in offline_<mid> (docs/PROTOCOL.md 5.2, 5.3):
 * its position comes with it, and its body is the one packet it names
 */

static const char *
ngx_goim_internal_check_member(Goim__PushMsgReq *push)
{
    int32_t  len;

    if (push->mid == 0 && push->epoch == 0 && push->offset == 0) {
        return NULL;
    }

    if (push->mid <= 0 || push->epoch == 0 || push->offset == 0) {
        return "PushMsgReq: a member's message needs mid > 0, epoch and "
               "offset";
    }

    if (push->proto && push->proto->op == GOIM_OP_RAW) {
        if (push->proto->body.len < GOIM_HEADER_LEN) {
            return "PushMsgReq: a member's message holds one packet";
        }

        len = (int32_t) ngx_goim_internal_be32(push->proto->body.data);

        if ((size_t) len != push->proto->body.len) {
            return "PushMsgReq: a member's message holds one packet";
        }
    }

    return NULL;
}


/* its position, and in its packet: the member's stream in ver, seq */

static void
ngx_goim_internal_member(ngx_goim_push_t *push, Goim__PushMsgReq *req)
{
    u_char    *p;
    uint32_t   seq;

    push->mid = req->mid;
    push->epoch = req->epoch;
    push->pos = req->offset;
    push->stream = NGX_GOIM_MEMBER_STREAM;

    if (push->raw) {
        /* the decoded request is ours: its packet is written in place */
        p = push->body.data;
        p[6] = (u_char) (NGX_GOIM_MEMBER_STREAM >> 8);
        p[7] = (u_char) NGX_GOIM_MEMBER_STREAM;

        seq = (uint32_t) req->offset;
        p[12] = (u_char) (seq >> 24);
        p[13] = (u_char) (seq >> 16);
        p[14] = (u_char) (seq >> 8);
        p[15] = (u_char) seq;
    }
}


static uint32_t
ngx_goim_internal_be32(u_char *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
}


static ngx_int_t
ngx_goim_internal_dispatch(ngx_http_request_t *r, Goim__CometPush *item,
    ngx_str_t *keys)
{
    ngx_int_t           rc;
    ngx_str_t           room;
    ngx_uint_t          i, n;
    Goim__Proto        *proto;
    ngx_goim_push_t     push;
    Goim__PushMsgReq   *req;

    switch (item->req_case) {

    case GOIM__COMET_PUSH__REQ_PUSH:
        proto = item->push->proto;
        break;

    case GOIM__COMET_PUSH__REQ_ROOM:
        proto = item->room->proto;
        break;

    default: /* GOIM__COMET_PUSH__REQ_BROADCAST */
        proto = item->broadcast->proto;
        break;
    }

    ngx_memzero(&push, sizeof(ngx_goim_push_t));
    push.body.data = proto->body.data;
    push.body.len = proto->body.len;
    push.op = proto->op;

    if (proto->op == GOIM_OP_RAW) {
        push.raw = 1;

        if (item->req_case == GOIM__COMET_PUSH__REQ_PUSH) {
            push.op = item->push->protoop;

        } else if (item->req_case == GOIM__COMET_PUSH__REQ_BROADCAST) {
            push.op = item->broadcast->protoop;
        }
    }

    switch (item->req_case) {

    case GOIM__COMET_PUSH__REQ_PUSH:
        req = item->push;

        for (i = 0; i < req->n_keys; i++) {
            keys[i].data = (u_char *) req->keys[i];
            keys[i].len = ngx_strlen(req->keys[i]);
        }

        /* a key named twice still gets the push once */
        n = ngx_goim_internal_unique(keys, req->n_keys);

        if (req->mid) {
            ngx_goim_internal_member(&push, req);
        }

        rc = ngx_goim_dispatch_keys(&push, keys, n);
        break;

    case GOIM__COMET_PUSH__REQ_ROOM:
        room.data = (u_char *) item->room->roomid;
        room.len = ngx_strlen(item->room->roomid);

        if (item->room->n_offsets && ngx_goim_registry_history_on()) {
            rc = ngx_goim_internal_room_at(&push, &room, item->room);
            break;
        }

        rc = push.raw ? ngx_goim_internal_room_raw(&push, &room)
                      : ngx_goim_dispatch_room(&push, &room);
        break;

    default: /* GOIM__COMET_PUSH__REQ_BROADCAST */
        rc = ngx_goim_dispatch_all(&push, item->broadcast->speed);
        break;
    }

    ngx_goim_push_release(&push);

    return rc;
}


/*
 * A room item's OP_RAW body as the job sends it: the join and leave
 * events in it (op 34, produced by the comets, docs/PROTOCOL.md 1.14)
 * go as events, to the members that watch them; the packets between
 * them as before, in order.  A body without events goes whole.
 */

static ngx_int_t
ngx_goim_internal_room_raw(ngx_goim_push_t *push, ngx_str_t *room)
{
    int              next;
    size_t           off, prev, start;
    ngx_int_t        rc, rc2;
    goim_packet_t    pkt;
    ngx_goim_push_t  part;

    off = 0;

    do {
        next = goim_raw_next(push->body.data, push->body.len, &off, &pkt);
    } while (next == 1 && pkt.op != GOIM_OP_PRESENCE);

    if (next != 1) {
        /* no event (the body was checked before) */
        return ngx_goim_dispatch_room(push, room);
    }

    rc = NGX_OK;
    off = 0;
    start = 0;

    for ( ;; ) {
        prev = off;
        next = goim_raw_next(push->body.data, push->body.len, &off, &pkt);

        if (next == 1 && pkt.op != GOIM_OP_PRESENCE) {
            continue;
        }

        if (prev > start) {
            /* the packets before this event, or the last ones */
            ngx_memzero(&part, sizeof(ngx_goim_push_t));
            part.op = push->op;
            part.raw = 1;
            part.body.data = push->body.data + start;
            part.body.len = prev - start;

            rc2 = ngx_goim_dispatch_room(&part, room);
            ngx_goim_push_release(&part);

            if (rc == NGX_OK) {
                rc = rc2;
            }
        }

        if (next != 1) {
            break;
        }

        ngx_memzero(&part, sizeof(ngx_goim_push_t));
        part.op = GOIM_OP_PRESENCE;
        part.body.data = (u_char *) pkt.body;
        part.body.len = pkt.body_len;

        rc2 = ngx_goim_dispatch_room(&part, room);
        ngx_goim_push_release(&part);

        if (rc == NGX_OK) {
            rc = rc2;
        }

        start = off;
    }

    return rc;
}


/*
 * A room item's positions (docs/PROTOCOL.md 5.2): an epoch of the form
 * the comet prints, and one Kafka offset per packet.  NULL or why not.
 */

static const char *
ngx_goim_internal_check_offsets(Goim__BroadcastRoomReq *req, u_char *buf)
{
    size_t                  off, i;
    ngx_uint_t              n;
    goim_packet_t           pkt;
    ngx_goim_history_pos_t  pos;

    if (req->n_offsets == 0) {
        return NULL;
    }

    if (req->epoch == NULL
        || ngx_goim_registry_epoch_parse((u_char *) req->epoch,
                                         ngx_strlen(req->epoch), &pos)
           != NGX_OK)
    {
        return "BroadcastRoomReq offsets without a valid epoch";
    }

    for (i = 0; i < req->n_offsets; i++) {
        if (req->offsets[i] < 0 || req->offsets[i] == INT64_MAX) {
            return "BroadcastRoomReq with a negative offset";
        }
    }

    n = 1;

    if (req->proto->op == GOIM_OP_RAW) {
        off = 0;

        for (n = 0; goim_raw_next(req->proto->body.data,
                                  req->proto->body.len, &off, &pkt) == 1;
             n++)
        {
            /* void */
        }
    }

    if (n != req->n_offsets) {
        ngx_snprintf(buf, NGX_GOIM_INTERNAL_ERR_LEN - 1,
                     "BroadcastRoomReq with %uz offsets for %ui packets",
                     req->n_offsets, n)[0] = '\0';
        return (const char *) buf;
    }

    return NULL;
}


/*
 * A room item with the job's positions: each message is kept and
 * delivered at its Kafka offset + 1 (0 means "no message"), or dropped
 * when the room had it already (a retry, a restarted job).  Join and
 * leave events (op 34) have no position: they go to their watchers as
 * without positions.
 */

static ngx_int_t
ngx_goim_internal_room_at(ngx_goim_push_t *push, ngx_str_t *room,
    Goim__BroadcastRoomReq *req)
{
    size_t                  off;
    ngx_int_t               rc, rc2;
    ngx_uint_t              i;
    goim_packet_t           pkt;
    ngx_goim_push_t         part;
    ngx_goim_history_pos_t  given;

    (void) ngx_goim_registry_epoch_parse((u_char *) req->epoch,
                                         ngx_strlen(req->epoch), &given);

    if (!push->raw) {
        given.offset = (uint64_t) req->offsets[0] + 1;
        return ngx_goim_dispatch_room_at(push, room, &given);
    }

    rc = NGX_OK;
    off = 0;

    for (i = 0; goim_raw_next(push->body.data, push->body.len, &off, &pkt)
                == 1;
         i++)
    {
        ngx_memzero(&part, sizeof(ngx_goim_push_t));
        part.op = pkt.op;
        part.body.data = (u_char *) pkt.body;
        part.body.len = pkt.body_len;

        given.offset = (uint64_t) req->offsets[i] + 1;

        rc2 = ngx_goim_dispatch_room_at(&part, room, &given);
        ngx_goim_push_release(&part);

        if (rc2 == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            rc = rc2;
        }
    }

    return rc;
}


static ngx_uint_t
ngx_goim_internal_unique(ngx_str_t *keys, ngx_uint_t n)
{
    ngx_uint_t  i, k;

    if (n < 2) {
        return n;
    }

    ngx_qsort(keys, n, sizeof(ngx_str_t), ngx_goim_internal_key_cmp);

    for (i = 1, k = 1; i < n; i++) {
        if (ngx_goim_internal_key_cmp(&keys[k - 1], &keys[i]) != 0) {
            keys[k++] = keys[i];
        }
    }

    return k;
}


static int ngx_libc_cdecl
ngx_goim_internal_key_cmp(const void *a, const void *b)
{
    const ngx_str_t  *x = a, *y = b;

    return ngx_memn2cmp(x->data, y->data, x->len, y->len);
}


static void *
ngx_goim_internal_pb_alloc(void *data, size_t size)
{
    ngx_goim_internal_alloc_t  *ad = data;

    void  *p;

    p = ngx_alloc(size, ad->request->connection->log);
    if (p == NULL) {
        ad->nomem = 1;
    }

    return p;
}


static void
ngx_goim_internal_pb_free(void *data, void *p)
{
    ngx_free(p);
}


/*
 * A refused or rejected request is logged with the client's address
 * (the request's log adds it), at most once a second per kind, with
 * how many were not logged since.
 */

static void
ngx_goim_internal_log(ngx_http_request_t *r, ngx_uint_t level,
    ngx_goim_internal_log_t *lim, const char *fmt, ...)
{
    u_char   *p, buf[NGX_GOIM_INTERNAL_ERR_LEN * 2];
    va_list   args;

    if (r->connection->log->log_level < level) {
        return;
    }

    if (lim->last == ngx_time()) {
        lim->suppressed++;
        return;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    if (lim->suppressed) {
        ngx_log_error(level, r->connection->log, 0,
                      "goim: internal push %*s (%ui more like it not logged)",
                      (size_t) (p - buf), buf, lim->suppressed);

    } else {
        ngx_log_error(level, r->connection->log, 0,
                      "goim: internal push %*s", (size_t) (p - buf), buf);
    }

    lim->last = ngx_time();
    lim->suppressed = 0;
}


/* {"code":<code>,"message":"<message>","data":{"accepted":<n>}} */

static ngx_int_t
ngx_goim_internal_reply(ngx_http_request_t *r, ngx_uint_t status,
    ngx_int_t code, u_char *message, ngx_uint_t accepted)
{
    u_char     *p;
    size_t      len, mlen;
    ngx_buf_t  *b;

    static ngx_str_t  type = ngx_string("application/json");

    mlen = ngx_strlen(message);

    len = sizeof("{\"code\":,\"message\":\"\",\"data\":{\"accepted\":}}\n") - 1
          + NGX_INT_T_LEN * 2 + mlen
          + ngx_escape_json(NULL, message, mlen);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"code\":%i,\"message\":\"", code);
    p = (u_char *) ngx_escape_json(p, message, mlen);
    p = ngx_sprintf(p, "\",\"data\":{\"accepted\":%ui}}\n", accepted);

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    return ngx_goim_http_send(r, status, &type, b);
}
