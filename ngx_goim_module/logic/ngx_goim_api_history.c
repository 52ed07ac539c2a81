
/*
 * goim for nginx: GET /goim/history/room (docs/PROTOCOL.md 2.14), a
 * room's kept messages after a position, for applications: the same
 * history and the same rules as a client's recovery (goim_history).
 */


#include "ngx_goim_api.h"

#include <goim_util.h>


#define NGX_GOIM_HISTORY_LIMIT  1000


ngx_int_t
ngx_goim_api_history(ngx_http_request_t *r, ngx_goim_api_ctx_t *ctx)
{
    u_char                   *p, *b64;
    size_t                    off, max;
    int64_t                   v;
    uint64_t                  offset;
    ngx_int_t                 rc;
    ngx_str_t                 type, room, name, s, enc, src, dst;
    ngx_uint_t                raw, limit;
    yajl_gen                  g;
    const char               *what, *reason;
    goim_packet_t             pkt;
    ngx_goim_history_pos_t    since;
    ngx_goim_history_read_t   hr;

    static const char  *reasons[] = {
        NULL, NULL, "epoch changed", "offset older than the history",
        "offset in the future", "no stream id free"
    };

    if (!ngx_goim_registry_history_on()) {
        return ngx_goim_api_reply(r, NGX_HTTP_NOT_FOUND, -404,
                                  "no history: goim_history is off", NULL);
    }

    what = ngx_goim_api_str(ctx, "type", &type);
    if (what == NULL) {
        what = ngx_goim_api_str(ctx, "room", &room);
    }

    if (what) {
        return ngx_goim_api_bind_error(r, "%s: required", what);
    }

    /* since and limit: unsigned decimals; epoch: as the clients get it */

    since.offset = 0;

    if (ngx_goim_api_str(ctx, "since", &s) == NULL) {
        if (goim_parse_int((const char *) s.data, s.len, 0, INT64_MAX, &v)
            != 0)
        {
            return ngx_goim_api_bind_error(r, "%s: expected an integer "
                                           "from 0", "since");
        }

        since.offset = (uint64_t) v;
    }

    limit = 100;

    if (ngx_goim_api_str(ctx, "limit", &s) == NULL) {
        if (goim_parse_int((const char *) s.data, s.len, 1,
                           NGX_GOIM_HISTORY_LIMIT, &v)
            != 0)
        {
            return ngx_goim_api_bind_error(r, "%s: expected 1 to 1000",
                                           "limit");
        }

        limit = (ngx_uint_t) v;
    }

    raw = 0;

    if (ngx_goim_api_str(ctx, "encoding", &enc) == NULL) {
        if (enc.len == 3 && ngx_strncmp(enc.data, "raw", 3) == 0) {
            raw = 1;

        } else if (!(enc.len == 6 && ngx_strncmp(enc.data, "base64", 6) == 0))
        {
            return ngx_goim_api_bind_error(r, "%s: expected base64 or raw",
                                           "encoding");
        }
    }

    name.len = type.len + 3 + room.len;
    name.data = ngx_pnalloc(r->pool, name.len);
    if (name.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(name.data, type.data, type.len);
    p = ngx_cpymem(p, "://", 3);
    ngx_memcpy(p, room.data, room.len);

    /* without an epoch, since counts in the room's epoch now */

    rc = ngx_goim_registry_history_recover(name.data, name.len, NULL, 0, 0,
                                           &hr);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK) {
        since.epoch = hr.pos.epoch;
        since.gen = hr.pos.gen;

        if (ngx_goim_api_str(ctx, "epoch", &s) == NULL
            && ngx_goim_registry_epoch_parse(s.data, s.len, &since) != NGX_OK)
        {
            return ngx_goim_api_bind_error(r, "%s: not an epoch of this "
                                           "server", "epoch");
        }

        rc = ngx_goim_registry_history_recover(name.data, name.len, &since,
                                               limit, 0, &hr);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        if (hr.buf) {
            ngx_free(hr.buf);
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);
    yajl_gen_string(g, (u_char *) "room", 4);
    yajl_gen_string(g, name.data, name.len);

    if (rc == NGX_DECLINED) {
        /* no history: no message since the start or for ttl */
        yajl_gen_string(g, (u_char *) "epoch", 5);
        yajl_gen_null(g);
        yajl_gen_string(g, (u_char *) "offset", 6);
        yajl_gen_integer(g, 0);
        yajl_gen_string(g, (u_char *) "messages", 8);
        yajl_gen_array_open(g);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
        goto reply;
    }

    p = ngx_pnalloc(r->pool, NGX_GOIM_EPOCH_LEN);
    if (p == NULL) {
        goto failed;
    }

    yajl_gen_string(g, (u_char *) "epoch", 5);
    yajl_gen_string(g, p, ngx_goim_registry_epoch_print(p, &hr.pos) - p);
    yajl_gen_string(g, (u_char *) "stream", 6);
    yajl_gen_integer(g, (long long) hr.pos.stream);
    yajl_gen_string(g, (u_char *) "offset", 6);
    yajl_gen_integer(g, (long long) hr.pos.offset);
    yajl_gen_string(g, (u_char *) "first", 5);
    yajl_gen_integer(g, (long long) hr.first);

    reason = reasons[hr.status];

    yajl_gen_string(g, (u_char *) "complete", 8);
    yajl_gen_bool(g, reason == NULL
                     && (hr.n ? hr.last : since.offset) == hr.pos.offset);

    if (reason) {
        yajl_gen_string(g, (u_char *) "reason", 6);
        yajl_gen_string(g, (u_char *) reason, ngx_strlen(reason));
    }

    yajl_gen_string(g, (u_char *) "messages", 8);
    yajl_gen_array_open(g);

    max = 0;
    off = 0;

    while (goim_raw_next(hr.buf, hr.len, &off, &pkt) == 1) {
        max = ngx_max(max, pkt.body_len);
    }

    b64 = raw ? NULL : ngx_pnalloc(r->pool, ngx_base64_encoded_length(max));
    if (!raw && b64 == NULL) {
        goto failed;
    }

    off = 0;
    offset = since.offset;

    while (goim_raw_next(hr.buf, hr.len, &off, &pkt) == 1) {
        /* seq: the offset's low 32 bits; offsets may skip (Kafka's) */
        offset += (uint32_t) ((uint32_t) pkt.seq - (uint32_t) offset);

        yajl_gen_map_open(g);
        yajl_gen_string(g, (u_char *) "offset", 6);
        yajl_gen_integer(g, (long long) offset);
        yajl_gen_string(g, (u_char *) "op", 2);
        yajl_gen_integer(g, pkt.op);
        yajl_gen_string(g, (u_char *) "body", 4);

        if (raw) {
            yajl_gen_string(g, pkt.body, pkt.body_len);

        } else {
            src.data = (u_char *) pkt.body;
            src.len = pkt.body_len;
            dst.data = b64;
            ngx_encode_base64(&dst, &src);
            yajl_gen_string(g, dst.data, dst.len);
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
    yajl_gen_map_close(g);

reply:

    if (hr.buf) {
        ngx_free(hr.buf);
    }

    rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);
    yajl_gen_free(g);

    return rc;

failed:

    if (hr.buf) {
        ngx_free(hr.buf);
    }

    yajl_gen_free(g);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}
