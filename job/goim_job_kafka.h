/*
 * goim-job's floor kafka: the Kafka consumer (goim_job_kafka.c), which hands
 * each message to routing (goim_job_route.h), stores offsets as messages
 * finish and pauses partitions while the comets' queues or its own
 * in-flight bounds are full.
 */

#ifndef GOIM_JOB_KAFKA_H
#define GOIM_JOB_KAFKA_H

#include <stdint.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "goim_job_conf.h"


/* draining, a message finished: the caller checks whether all did */
typedef void (*job_kafka_drained_pt)(void);

typedef struct {
    uint64_t   inflight;        /* messages not finished */
    uint64_t   consumed;
    uint64_t   decode_errors;
    int        assigned;        /* partitions */
    int        kafka_up;
    unsigned   queues_full:1;   /* a comet's queue paused consumption */
    unsigned   draining:1;
} job_kafka_stats_t;


/* starts routing (job_route_init) first, then the consumer */
int job_kafka_init(job_conf_t *cf, struct event_base *base,
    struct evdns_base *dns, job_kafka_drained_pt drained);

/* stop consuming; the messages in flight go on */
void job_kafka_drain(void);

/* commits, leaves the group, closes routing; nothing is stored after */
void job_kafka_close(void);

/* the partitions' gauges in Prometheus' text format */
void job_kafka_metrics(struct evbuffer *b);

const job_kafka_stats_t *job_kafka_stats(void);

#endif /* GOIM_JOB_KAFKA_H */
