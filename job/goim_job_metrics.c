/*
 * GET /metrics on status_listen: the job's counters and gauges in
 * Prometheus' text format, one evhttp server on the job's loop.
 */

#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include <event2/http.h>

#include "goim_job_comet.h"
#include "goim_job_kafka.h"
#include "goim_job_log.h"
#include "goim_job_metrics.h"
#include "goim_job_registry.h"
#include "goim_job_route.h"


static void job_metrics_handler(struct evhttp_request *req, void *arg);


static struct evhttp  *job_metrics_http;


int
job_metrics_init(job_conf_t *cf, struct event_base *base)
{
    if (cf->status_host == NULL) {
        return 0;
    }

    job_metrics_http = evhttp_new(base);
    if (job_metrics_http == NULL) {
        job_log(JOB_LOG_ERROR, "cannot create the metrics server");
        return -1;
    }

    if (evhttp_bind_socket(job_metrics_http, cf->status_host,
                           (unsigned short) cf->status_port)
        != 0)
    {
        job_log(JOB_LOG_ERROR, "status_listen %s:%d: cannot listen",
                cf->status_host, cf->status_port);
        return -1;
    }

    /* the others get 405 from the handler, not libevent's 501 */
    evhttp_set_allowed_methods(job_metrics_http,
                               EVHTTP_REQ_GET | EVHTTP_REQ_HEAD
                               | EVHTTP_REQ_POST | EVHTTP_REQ_PUT
                               | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH
                               | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(job_metrics_http, job_metrics_handler, NULL);

    job_log(JOB_LOG_INFO, "metrics on http://%s:%d/metrics",
            cf->status_host, cf->status_port);

    return 0;
}


void
job_metrics_close(void)
{
    if (job_metrics_http) {
        evhttp_free(job_metrics_http);
        job_metrics_http = NULL;
    }
}


#define JOB_COUNTER(name, help, value)                                       \
    evbuffer_add_printf(b, "# HELP goim_job_" name " " help "\n"             \
                        "# TYPE goim_job_" name " counter\n"                 \
                        "goim_job_" name " %llu\n",                          \
                        (unsigned long long) (value))

#define JOB_GAUGE(name, help, value)                                         \
    evbuffer_add_printf(b, "# HELP goim_job_" name " " help "\n"             \
                        "# TYPE goim_job_" name " gauge\n"                   \
                        "goim_job_" name " %llu\n",                          \
                        (unsigned long long) (value))


/* a server id as a label value: backslash, quote and newline escaped,
 * cut at the buffer's end */
static void
job_metrics_label(char *dst, size_t size, const char *s)
{
    size_t  n;

    for (n = 0; *s && n + 3 < size; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n') {
            dst[n++] = '\\';
            dst[n++] = *s == '\n' ? 'n' : *s;

        } else {
            dst[n++] = *s;
        }
    }

    dst[n] = '\0';
}


static void
job_metrics_handler(struct evhttp_request *req, void *arg)
{
    char                         label[256];
    const char                  *path;
    job_comet_t                 *c;
    struct evbuffer             *b;
    const job_kafka_stats_t     *ks;
    const job_route_stats_t     *rs;
    const job_comet_stats_t     *cs;
    const job_registry_stats_t  *gs;

    (void) arg;

    path = evhttp_request_get_uri(req);

    if (strcmp(path, "/metrics") != 0) {
        evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
        return;
    }

    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET
        && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
    {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET, HEAD");
        evhttp_send_error(req, 405, "Method Not Allowed");
        return;
    }

    b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }

    ks = job_kafka_stats();
    rs = job_route_stats();
    cs = job_comet_stats();
    gs = job_registry_stats();

    JOB_COUNTER("consumed_total", "Kafka messages consumed", ks->consumed);
    JOB_COUNTER("decode_errors_total", "undecodable messages skipped",
                ks->decode_errors);
    JOB_COUNTER("undeliverable_total", "items or messages given up on",
                rs->undeliverable + cs->undeliverable);
    JOB_COUNTER("requests_ok_total", "comet requests answered 200",
                cs->requests_ok);
    JOB_COUNTER("requests_failed_total", "comet requests not answered 200",
                cs->requests_failed);
    JOB_COUNTER("retries_total", "comet request retries scheduled",
                cs->retries);
    JOB_COUNTER("room_batches_total", "room batches accepted by comets",
                cs->room_batches);
    JOB_COUNTER("room_merged_total", "room messages merged into a batch",
                rs->room_merged);
    JOB_COUNTER("registry_refreshes_total", "registry reads from Redis",
                gs->refreshes);
    JOB_COUNTER("registry_errors_total", "failed registry reads",
                gs->errors);
    JOB_GAUGE("inflight_messages", "messages not finished yet",
              ks->inflight);
    JOB_GAUGE("comets", "comets in the registry", job_comet_count());
    JOB_GAUGE("kafka_up", "the consumer reaches Kafka", ks->kafka_up);
    JOB_GAUGE("redis_up", "the registry was read from Redis", gs->up);
    JOB_GAUGE("assigned_partitions", "partitions assigned", ks->assigned);
    JOB_GAUGE("paused", "consumption paused for full comet queues or"
              " draining", ks->queues_full || ks->draining);
    JOB_GAUGE("draining", "SIGTERM received", ks->draining);

    evbuffer_add_printf(b,
        "# TYPE goim_job_comet_queue_items gauge\n"
        "# TYPE goim_job_comet_queue_bytes gauge\n"
        "# TYPE goim_job_comet_up gauge\n"
        "# TYPE goim_job_comet_requests_ok_total counter\n"
        "# TYPE goim_job_comet_requests_failed_total counter\n"
        "# TYPE goim_job_comet_undeliverable_total counter\n");

    for (c = job_comet_first(); c; c = c->next) {
        job_metrics_label(label, sizeof(label), c->server);

        evbuffer_add_printf(b,
            "goim_job_comet_queue_items{comet=\"%s\"} %zu\n"
            "goim_job_comet_queue_bytes{comet=\"%s\"} %zu\n"
            "goim_job_comet_up{comet=\"%s\"} %d\n"
            "goim_job_comet_requests_ok_total{comet=\"%s\"} %llu\n"
            "goim_job_comet_requests_failed_total{comet=\"%s\"} %llu\n"
            "goim_job_comet_undeliverable_total{comet=\"%s\"} %llu\n",
            label, c->q.items, label, c->q.bytes,
            label, c->state == JOB_COMET_UP,
            label, (unsigned long long) c->requests_ok,
            label, (unsigned long long) c->requests_failed,
            label, (unsigned long long) c->undeliverable);
    }

    job_kafka_metrics(b);

    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Type", "text/plain; version=0.0.4");
    evhttp_send_reply(req, HTTP_OK, "OK", b);
    evbuffer_free(b);
}
