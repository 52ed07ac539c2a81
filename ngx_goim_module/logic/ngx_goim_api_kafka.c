
/*
 * goim for nginx: the API's pushes through Kafka (docs/PROTOCOL.md 4.3,
 * 4.4).  A request produces its goim.PushMsg records as one batch and is
 * answered when Kafka has reported every one of them: acknowledged, failed,
 * or overdue.
 */


#include "ngx_goim_api.h"


static void ngx_goim_api_kafka_done(ngx_goim_kafka_batch_t *b, void *data);
static ngx_int_t ngx_goim_api_kafka_answer(ngx_goim_api_kafka_t *k);


ngx_goim_api_kafka_t *
ngx_goim_api_kafka_batch(ngx_http_request_t *r, ngx_uint_t n,
    ngx_uint_t report)
{
    ngx_goim_api_kafka_t  *k;

    k = ngx_palloc(r->pool, sizeof(ngx_goim_api_kafka_t));
    if (k == NULL) {
        return NULL;
    }

    k->request = r;
    k->report = report;

    k->batch = ngx_goim_kafka_batch(r->pool, r->connection->log, n,
                                    ngx_goim_api_kafka_done, k);
    if (k->batch == NULL) {
        return NULL;
    }

    /* a client that goes away frees the request, and so the batch */
    r->read_event_handler = ngx_http_test_reading;

    return k;
}


/*
 * NGX_DONE: the answer is sent when the last report arrives, and the
 * request finalized then; otherwise the answer was made now and the
 * caller finalizes the request with the value returned.
 */

ngx_int_t
ngx_goim_api_kafka_wait(ngx_goim_api_kafka_t *k)
{
    if (ngx_goim_kafka_wait(k->batch) == NGX_DONE) {
        return NGX_DONE;
    }

    return ngx_goim_api_kafka_answer(k);
}


/* one goim.PushMsg (ROOM or BROADCAST), answered once Kafka reported it */

ngx_int_t
ngx_goim_api_kafka(ngx_http_request_t *r, ngx_uint_t type, int32_t op,
    int32_t speed, ngx_str_t *room, ngx_str_t *body)
{
    ngx_goim_api_kafka_t  *k;

    k = ngx_goim_api_kafka_batch(r, 1, 0);
    if (k == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a message that was not produced is in the batch's result */
    (void) ngx_goim_kafka_produce(k->batch, type, op, speed, NULL, room, NULL,
                                  0, body);

    return ngx_goim_api_kafka_wait(k);
}


static void
ngx_goim_api_kafka_done(ngx_goim_kafka_batch_t *b, void *data)
{
    ngx_goim_api_kafka_t  *k = data;

    ngx_http_finalize_request(k->request, ngx_goim_api_kafka_answer(k));
}


/*
 * Messages produced before a failure stay produced: the answer says how
 * many were acknowledged.
 */

static ngx_int_t
ngx_goim_api_kafka_answer(ngx_goim_api_kafka_t *k)
{
    u_char                   *p, msg[256];
    ngx_int_t                 rc;
    yajl_gen                  g;
    ngx_uint_t                status;
    ngx_http_request_t       *r;
    ngx_goim_kafka_result_t   res;

    r = k->request;

    ngx_goim_kafka_result(k->batch, &res);
    ngx_goim_kafka_finish(k->batch);

    if (res.invalid) {
        return ngx_goim_api_reply(r, NGX_HTTP_BAD_REQUEST, -400,
                                  "keys and rooms must not hold a NUL byte",
                                  NULL);
    }

    status = NGX_HTTP_OK;
    p = msg;

    if (res.queue_full) {
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        p = ngx_slprintf(p, msg + sizeof(msg) - 1, "kafka queue full");

    } else if (res.error) {
        p = ngx_slprintf(p, msg + sizeof(msg) - 1, "kafka: %s", res.error);

    } else if (res.acked < res.total) {
        /* not every message could be made (out of memory) */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        g = NULL;

        if (k->report) {
            g = yajl_gen_alloc(NULL);
            if (g == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            yajl_gen_map_open(g);
            yajl_gen_string(g, (u_char *) "servers", 7);
            yajl_gen_integer(g, res.total);
            yajl_gen_string(g, (u_char *) "messages", 8);
            yajl_gen_integer(g, res.total);
            yajl_gen_map_close(g);
        }

        rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);

        if (g) {
            yajl_gen_free(g);
        }

        return rc;
    }

    p = ngx_slprintf(p, msg + sizeof(msg) - 1,
                     " (%ui of %ui messages acknowledged)", res.acked,
                     res.total);
    *p = '\0';

    return ngx_goim_api_reply(r, status, -500, (const char *) msg, NULL);
}
