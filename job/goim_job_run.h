/*
 * goim-job at run time: the one process-wide state and the functions the
 * job's event-driven files (Kafka consumer, Redis registry, comet
 * senders, metrics) call in each other.  One libevent loop, one thread:
 * librdkafka's threads only wake the loop through a pipe.
 */

#ifndef GOIM_JOB_RUN_H
#define GOIM_JOB_RUN_H

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <librdkafka/rdkafka.h>

#include "goim_job.h"
#include "goim.pb-c.h"


#define JOB_COMET_UNKNOWN  0
#define JOB_COMET_UP       1
#define JOB_COMET_DOWN     2

typedef struct job_comet_s  job_comet_t;

struct job_comet_s {
    job_comet_t                *next;
    char                       *server;
    char                       *addr;       /* the registry's URL */
    char                       *host;
    int                         port;
    char                       *path;
    char                       *host_header;
    struct evhttp_connection   *conn;
    struct evhttp_request      *req;        /* the request in flight */
    size_t                      sending;    /* queue head items in it */
    job_queue_t                 q;
    struct event               *retry_ev;
    int                         backoff;    /* ms; 0 after a success */
    int                         state;
    int                         http_error; /* evhttp's, of the last one */
    unsigned                    seen:1;     /* in the last registry read */
    unsigned                    missing:1;  /* its record is not there */
    int64_t                     seen_ms;    /* its record last read, mono */
    int                         ttl;        /* the record's "ttl", s */
    unsigned                    new_addr:1; /* reconnect after the reply */
    unsigned                    blocked:1;  /* queue over its bound */

    uint64_t                    requests_ok;
    uint64_t                    requests_failed;
    uint64_t                    retries;
    uint64_t                    undeliverable;
};

typedef struct {
    job_offsets_t               t;
    int64_t                     stored;     /* -1: none this assignment */
    int64_t                     committed;
    unsigned                    assigned:1;
    unsigned                    full:1;     /* in-flight over its bound */
    unsigned                    paused:1;   /* as told to librdkafka */
} job_part_t;

typedef struct {
    job_conf_t                 *conf;
    struct event_base          *base;
    struct evdns_base          *dns;        /* comet host names */

    rd_kafka_t                 *rk;
    job_part_t                 *parts;      /* by partition number */
    int                         nparts;
    uint32_t                    gen;
    int                         assigned;
    int                         kafka_up;
    unsigned                    queues_full:1;
    unsigned                    over:1;     /* a bound reached: flow */
    unsigned                    draining:1;
    unsigned                    done:1;

    job_comet_t                *comets;
    int                         ncomets;
    int                         registry_loaded;
    int                         redis_up;
    job_msg_t                  *held;       /* until the registry loads */
    job_msg_t                 **held_tail;

    uint64_t                    inflight;   /* messages not finished */
    uint64_t                    consumed;
    uint64_t                    decode_errors;
    uint64_t                    undeliverable;
    uint64_t                    requests_ok;
    uint64_t                    requests_failed;
    uint64_t                    retries;
    uint64_t                    room_batches;
    uint64_t                    room_merged;
    uint64_t                    registry_refreshes;
    uint64_t                    registry_errors;
} job_t;

extern job_t  job;


/* goim_job_kafka.c */
int job_kafka_init(void);
void job_kafka_flow(void);
void job_kafka_drain(void);
void job_kafka_close(void);
void job_msg_release(job_msg_t *m);
void job_kafka_metrics(struct evbuffer *b);

/* goim_job_route.c */
int job_route(job_msg_t *m, Goim__PushMsg *pm);
void job_route_hold(job_msg_t *m, Goim__PushMsg *pm);
void job_route_held(void);

/* goim_job_registry.c */
int job_registry_init(void);
void job_registry_close(void);
void job_registry_refresh_soon(void);

/* goim_job_comet.c */
job_comet_t *job_comet_find(const char *server);
job_comet_t *job_comet_add(const char *server, const char *addr);
int job_comet_set_addr(job_comet_t *c, const char *addr);
void job_comet_remove(job_comet_t *c, const char *why);
void job_comet_send(job_comet_t *c);
void job_comet_close_all(void);

/* goim_job_metrics.c */
int job_metrics_init(void);
void job_metrics_close(void);

/* goim_job.c */
void job_check_drained(void);

#endif /* GOIM_JOB_RUN_H */
