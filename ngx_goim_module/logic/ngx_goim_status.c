
/*
 * goim for nginx: "goim_status;" answers the node's metrics in
 * Prometheus text format, one series per live worker slot (labels
 * "worker" and "pid"), from a snapshot of the shared registry.
 */


#include "ngx_goim_api.h"


#define NGX_GOIM_STATUS_COUNT   0
#define NGX_GOIM_STATUS_MS      1       /* milliseconds, shown in seconds */


/*
 * One series of every worker: a metric's HELP and TYPE come with its
 * first series.  The value is a word of ngx_goim_registry_worker_t.
 */
typedef struct {
    const char            *name;        /* after "goim_" */
    const char            *type;
    const char            *help;
    const char            *labels;
    size_t                 offset;
    ngx_uint_t             format;
} ngx_goim_status_series_t;


#define ngx_goim_stat(field)                                                  \
    offsetof(ngx_goim_registry_worker_t, stats)                               \
    + offsetof(ngx_goim_stats_t, field)

#define ngx_goim_slot(field)                                                  \
    offsetof(ngx_goim_registry_worker_t, field)


static ngx_goim_status_series_t  ngx_goim_status_series[] = {

    { "connections", "gauge", "Open goim connections by transport.",
      ",transport=\"tcp\"", ngx_goim_stat(conns[NGX_GOIM_TCP]), 0 },
    { "connections", NULL, NULL,
      ",transport=\"ws\"", ngx_goim_stat(conns[NGX_GOIM_WS]), 0 },

    { "clients_refused_total", "counter",
      "Client connections refused above goim_max_clients.",
      "", ngx_goim_stat(clients_refused), 0 },

    { "online", "gauge", "Authenticated connections in the registry.",
      "", ngx_goim_slot(connections), 0 },

    { "rooms", "gauge", "Rooms with members on the worker.",
      "", ngx_goim_stat(rooms), 0 },

    { "auth_total", "counter", "Auth packets by result.",
      ",result=\"ok\"", ngx_goim_stat(auth_ok), 0 },
    { "auth_total", NULL, NULL,
      ",result=\"failed\"", ngx_goim_stat(auth_failed), 0 },

    { "pushes_total", "counter",
      "Pushes accepted by the API on the worker, by type.",
      ",type=\"keys\"", ngx_goim_stat(push_keys), 0 },
    { "pushes_total", NULL, NULL,
      ",type=\"mids\"", ngx_goim_stat(push_mids), 0 },
    { "pushes_total", NULL, NULL,
      ",type=\"room\"", ngx_goim_stat(push_room), 0 },
    { "pushes_total", NULL, NULL,
      ",type=\"all\"", ngx_goim_stat(push_all), 0 },

    { "messages_written_total", "counter",
      "Push messages written to sockets.",
      "", ngx_goim_stat(messages_out), 0 },

    { "bytes_written_total", "counter", "Bytes written to goim sockets.",
      "", ngx_goim_stat(bytes_out), 0 },

    { "writes_total", "counter",
      "Writes to plain goim sockets, by system call (goim_io_uring).",
      ",method=\"io_uring\"", ngx_goim_stat(writes_uring), 0 },
    { "writes_total", NULL, NULL,
      ",method=\"send\"", ngx_goim_stat(writes_send), 0 },

    { "io_uring_submits_total", "counter",
      "io_uring_enter() calls, each with a slice of the writes.",
      "", ngx_goim_stat(uring_submits), 0 },

    { "room_batches_total", "counter",
      "Merged room frames sent after the flush interval.",
      "", ngx_goim_stat(room_batches), 0 },

    { "presence_events_total", "counter",
      "Join and leave events sent to the watchers of a room.",
      "", ngx_goim_stat(presence_events), 0 },

    { "presence_events_dropped_total", "counter",
      "Join and leave events over goim_presence_events a room a second.",
      "", ngx_goim_stat(presence_dropped), 0 },

    { "dropped_total", "counter", "Pushes not delivered, by reason.",
      ",reason=\"queue_full\"", ngx_goim_stat(drop_queue_full), 0 },
    { "dropped_total", NULL, NULL,
      ",reason=\"inbox_full\"", ngx_goim_stat(drop_inbox_full), 0 },

    { "inbox_depth", "gauge", "Messages waiting in the worker's inbox.",
      "", ngx_goim_slot(inbox_depth), 0 },

    { "inbox_oldest_seconds", "gauge",
      "Age of the oldest message in the inbox.",
      "", ngx_goim_slot(inbox_age), NGX_GOIM_STATUS_MS },

    { "redis_up", "gauge",
      "The worker's Redis connection is up (goim_redis).",
      "", ngx_goim_stat(redis_up), 0 },

    { "redis_commands_total", "counter", "Redis commands sent.",
      "", ngx_goim_stat(redis_commands), 0 },

    { "redis_failed_total", "counter",
      "Redis commands failed: error reply, connection lost, or not sent "
      "while disconnected.",
      "", ngx_goim_stat(redis_failed), 0 },

    { "redis_timeouts_total", "counter",
      "Redis commands over goim_redis_timeout.",
      "", ngx_goim_stat(redis_timeouts), 0 },

    { "redis_latency_ms_total", "counter",
      "Sum of Redis reply latencies (divide by replies for the mean).",
      "", ngx_goim_stat(redis_latency_ms), 0 },

    { "kafka_up", "gauge",
      "The worker's Kafka producer reaches a broker (goim_kafka).",
      "", ngx_goim_stat(kafka_up), 0 },

    { "kafka_messages_total", "counter",
      "PushMsg records given to the producer, by outcome.",
      ",state=\"produced\"", ngx_goim_stat(kafka_produced), 0 },
    { "kafka_messages_total", NULL, NULL,
      ",state=\"acked\"", ngx_goim_stat(kafka_acked), 0 },
    { "kafka_messages_total", NULL, NULL,
      ",state=\"failed\"", ngx_goim_stat(kafka_failed), 0 },
    { "kafka_messages_total", NULL, NULL,
      ",state=\"queue_full\"", ngx_goim_stat(kafka_queue_full), 0 },

    { "kafka_in_flight", "gauge",
      "PushMsg records waiting for the broker's ack.",
      "", ngx_goim_stat(kafka_in_flight), 0 },

    { "kafka_latency_ms_total", "counter",
      "Sum of produce-to-ack latencies (divide by acked for the mean).",
      "", ngx_goim_stat(kafka_latency_ms), 0 },

    { "internal_requests_total", "counter",
      "Requests to goim_internal_push, by result.",
      ",result=\"ok\"", ngx_goim_stat(internal_requests), 0 },
    { "internal_requests_total", NULL, NULL,
      ",result=\"forbidden\"", ngx_goim_stat(internal_forbidden), 0 },
    { "internal_requests_total", NULL, NULL,
      ",result=\"invalid\"", ngx_goim_stat(internal_invalid), 0 },

    { "internal_pushes_total", "counter",
      "Pushes accepted from goim_internal_push bodies.",
      "", ngx_goim_stat(internal_pushes), 0 },

    { "recover_total", "counter",
      "Rooms a client asked to recover (op 35), by result.",
      ",result=\"ok\"", ngx_goim_stat(recover_ok), 0 },
    { "recover_total", NULL, NULL,
      ",result=\"failed\"", ngx_goim_stat(recover_failed), 0 },

    { "recover_messages_total", "counter",
      "Messages sent again from room histories.",
      "", ngx_goim_stat(recover_messages), 0 },
};


static ngx_int_t ngx_goim_status_render(ngx_pool_t *pool, ngx_str_t *out);


ngx_int_t
ngx_goim_status_handler(ngx_http_request_t *r)
{
    ngx_int_t   rc;
    ngx_str_t   text;
    ngx_buf_t  *b;

    static ngx_str_t  type =
        ngx_string("text/plain; version=0.0.4; charset=utf-8");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_goim_status_render(r->pool, &text) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = text.data;
    b->last = text.data + text.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    return ngx_goim_http_send(r, NGX_HTTP_OK, &type, b);
}


static ngx_int_t
ngx_goim_status_render(ngx_pool_t *pool, ngx_str_t *out)
{
    u_char                        *p, *last;
    size_t                         size;
    ngx_uint_t                     i, k, v;
    ngx_goim_status_series_t      *s;
    ngx_goim_registry_worker_t    *w;
    ngx_goim_registry_snapshot_t  *snap;
    ngx_goim_history_stats_t       hs;

    snap = ngx_palloc(pool, sizeof(ngx_goim_registry_snapshot_t));
    if (snap == NULL) {
        return NGX_ERROR;
    }

    if (ngx_goim_registry_snapshot(pool, snap) != NGX_OK) {
        return NGX_ERROR;
    }

    size = 8192 + snap->n * 5120;

    p = ngx_pnalloc(pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    last = p + size;

    for (k = 0; k < sizeof(ngx_goim_status_series)
                    / sizeof(ngx_goim_status_series_t); k++)
    {
        s = &ngx_goim_status_series[k];

        if (s->type) {
            p = ngx_slprintf(p, last, "# HELP goim_%s %s\n"
                             "# TYPE goim_%s %s\n",
                             s->name, s->help, s->name, s->type);
        }

        for (i = 0; i < snap->n; i++) {
            w = &snap->workers[i];

            /* every value is a word: counters, gauges, milliseconds */
            v = *(ngx_uint_t *) ((u_char *) w + s->offset);

            p = ngx_slprintf(p, last, "goim_%s{worker=\"%ui\",pid=\"%P\"%s} ",
                             s->name, w->slot, w->pid, s->labels);

            if (s->format == NGX_GOIM_STATUS_MS) {
                p = ngx_slprintf(p, last, "%ui.%03ui\n", v / 1000, v % 1000);

            } else {
                p = ngx_slprintf(p, last, "%ui\n", v);
            }
        }
    }

    p = ngx_slprintf(p, last, "# HELP goim_shm_bytes The shared zone, used "
                     "and free.\n# TYPE goim_shm_bytes gauge\n"
                     "goim_shm_bytes{state=\"used\"} %uz\n"
                     "goim_shm_bytes{state=\"free\"} %uz\n",
                     snap->used, snap->total - snap->used);

    ngx_goim_registry_history_stats(&hs);

    p = ngx_slprintf(p, last, "# HELP goim_history_rooms Room histories in "
                     "the shared zone.\n# TYPE goim_history_rooms gauge\n"
                     "goim_history_rooms %ui\n"
                     "# HELP goim_history_messages Messages kept in room "
                     "histories.\n# TYPE goim_history_messages gauge\n"
                     "goim_history_messages %ui\n"
                     "# HELP goim_history_bytes Bytes of the zone the "
                     "histories asked for.\n"
                     "# TYPE goim_history_bytes gauge\n"
                     "goim_history_bytes %uz\n"
                     "# HELP goim_history_dropped_total History messages "
                     "given up before their time, by reason.\n"
                     "# TYPE goim_history_dropped_total counter\n"
                     "goim_history_dropped_total{reason=\"zone_full\"} %ui\n"
                     "goim_history_dropped_total{reason=\"ttl\"} %ui\n"
                     "# HELP goim_history_unpositioned_total Room messages "
                     "sent without a position: no stream id was free.\n"
                     "# TYPE goim_history_unpositioned_total counter\n"
                     "goim_history_unpositioned_total %ui\n"
                     "# HELP goim_history_duplicates_total Room messages "
                     "of the job dropped: the room had their offset.\n"
                     "# TYPE goim_history_duplicates_total counter\n"
                     "goim_history_duplicates_total %ui\n"
                     "# HELP goim_history_resent_total Room messages of "
                     "the job sent again to the workers that missed them "
                     "(a full inbox).\n"
                     "# TYPE goim_history_resent_total counter\n"
                     "goim_history_resent_total %ui\n"
                     "# HELP goim_history_unresent_total Room messages of "
                     "the job a full zone could not send again to the "
                     "workers that missed them.\n"
                     "# TYPE goim_history_unresent_total counter\n"
                     "goim_history_unresent_total %ui\n",
                     hs.rooms, hs.messages, hs.bytes, hs.evicted,
                     hs.expired, hs.nostream, hs.duplicates, hs.resent,
                     hs.unresent);

    out->len = p - out->data;

    return NGX_OK;
}
