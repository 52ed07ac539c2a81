
/*
 * goim for nginx: a member's stream offline_<mid> read by the comet
 * (docs/PROTOCOL.md 1.16, 3.7).  After an auth has written its session,
 * one script reads, in one step, the stream's last id (the connection's
 * seam) and, when the connection asked to recover from a position of the
 * stream's epoch, the messages after it: nothing can be added in
 * between, so the messages read end exactly at the seam.
 */


#include "ngx_goim_redis.h"


struct ngx_goim_offline_s {
    ngx_goim_redis_req_t      *req;
    ngx_goim_offline_pt        done;
    void                      *data;
};


static void ngx_goim_offline_reply(redisReply *reply, void *data,
    const char *err);
static ngx_int_t ngx_goim_offline_id(redisReply *r, uint64_t *epoch,
    uint64_t *offset);
static ngx_int_t ngx_goim_offline_entry(redisReply *e,
    ngx_goim_offline_msg_t *m);


/*
 * ARGV: the epoch asked for ("" for none), the id after the position
 * asked for, the most messages to read.  Returns {last id or "",
 * entries}.
 */
static const char  ngx_goim_offline_script[] =
    "local l = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1) "
    "if not l[1] then return {'', {}} end "
    "local r = {} "
    "if ARGV[1] ~= '' and string.match(l[1][1], '^%d+') == ARGV[1] then "
        "r = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', ARGV[3]) "
    "end "
    "return {l[1][1], r}";


/*
 * epoch 0: the position alone.  NULL when the command could not be sent
 * (*err says why); else done() is called once, unless cancelled.
 */

ngx_goim_offline_t *
ngx_goim_offline_read(ngx_pool_t *pool, int64_t mid, uint64_t epoch,
    uint64_t offset, ngx_uint_t count, ngx_goim_offline_pt done, void *data,
    const char **err)
{
    u_char               e[NGX_INT64_LEN + 1], from[2 * NGX_INT64_LEN + 2];
    ngx_goim_offline_t  *o;

    o = ngx_palloc(pool, sizeof(ngx_goim_offline_t));
    if (o == NULL) {
        *err = "out of memory";
        return NULL;
    }

    o->done = done;
    o->data = data;

    if (epoch) {
        *ngx_sprintf(e, "%uL", epoch) = '\0';
        *ngx_sprintf(from, "%uL-%uL", epoch, offset + 1) = '\0';

    } else {
        e[0] = '\0';
        ngx_cpystrn(from, (u_char *) "-", sizeof(from));
    }

    o->req = ngx_goim_redis_command(ngx_goim_offline_reply, o,
                                    "EVAL %s 1 offline_%lld %s %s %lld",
                                    ngx_goim_offline_script, (long long) mid,
                                    e, from, (long long) count);
    if (o->req == NULL) {
        *err = NGX_GOIM_REDIS_DOWN;
        return NULL;
    }

    return o;
}


void
ngx_goim_offline_cancel(ngx_goim_offline_t *o)
{
    if (o->req) {
        ngx_goim_redis_cancel(o->req);
        o->req = NULL;
    }
}


static void
ngx_goim_offline_reply(redisReply *reply, void *data, const char *err)
{
    ngx_goim_offline_t  *o = data;

    uint64_t                 epoch, offset;
    ngx_uint_t               i, n;
    redisReply              *es;
    ngx_goim_offline_msg_t  *m;

    o->req = NULL;
    m = NULL;
    n = 0;
    epoch = 0;
    offset = 0;

    if (err) {
        goto done;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_ARRAY)
    {
        err = "unexpected reply";
        goto done;
    }

    if (reply->element[0]->len
        && ngx_goim_offline_id(reply->element[0], &epoch, &offset) != NGX_OK)
    {
        err = "unexpected stream id";
        goto done;
    }

    es = reply->element[1];

    if (es->elements) {
        m = ngx_alloc(es->elements * sizeof(ngx_goim_offline_msg_t),
                      ngx_cycle->log);
        if (m == NULL) {
            err = "out of memory";
            goto done;
        }

        for (i = 0; i < es->elements; i++) {
            if (ngx_goim_offline_entry(es->element[i], &m[n]) != NGX_OK) {
                err = "unexpected stream entry";
                goto done;
            }

            n++;
        }
    }

done:

    if (err) {
        n = 0;
    }

    o->done(o->data, err, epoch, offset, m, n);

    if (m) {
        ngx_free(m);
    }
}


static ngx_int_t
ngx_goim_offline_id(redisReply *r, uint64_t *epoch, uint64_t *offset)
{
    u_char  *s, *dash;
    off_t    e, o;

    if (r->type != REDIS_REPLY_STRING) {
        return NGX_ERROR;
    }

    s = (u_char *) r->str;
    dash = ngx_strlchr(s, s + r->len, '-');

    if (dash == NULL) {
        return NGX_ERROR;
    }

    e = ngx_atoof(s, dash - s);
    o = ngx_atoof(dash + 1, s + r->len - dash - 1);

    if (e == NGX_ERROR || o == NGX_ERROR || e == 0) {
        return NGX_ERROR;
    }

    *epoch = (uint64_t) e;
    *offset = (uint64_t) o;

    return NGX_OK;
}


/* [id, [field, value, ...]]: op and body, as the logic API writes them */

static ngx_int_t
ngx_goim_offline_entry(redisReply *e, ngx_goim_offline_msg_t *m)
{
    ngx_int_t    op;
    ngx_uint_t   i, found;
    redisReply  *f, *k, *v;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
        || ngx_goim_offline_id(e->element[0], &m->epoch, &m->offset)
           != NGX_OK
        || e->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return NGX_ERROR;
    }

    f = e->element[1];
    found = 0;

    for (i = 0; i + 1 < f->elements; i += 2) {
        k = f->element[i];
        v = f->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            return NGX_ERROR;
        }

        if (k->len == 2 && ngx_strncmp(k->str, "op", 2) == 0) {
            op = ngx_atoi((u_char *) v->str + (v->len && v->str[0] == '-'),
                          v->len - (v->len && v->str[0] == '-'));
            if (op == NGX_ERROR) {
                return NGX_ERROR;
            }

            m->op = (int32_t) (v->len && v->str[0] == '-' ? -op : op);
            found |= 1;

        } else if (k->len == 4 && ngx_strncmp(k->str, "body", 4) == 0) {
            m->body.data = (u_char *) v->str;
            m->body.len = v->len;
            found |= 2;
        }
    }

    return found == 3 ? NGX_OK : NGX_ERROR;
}
