/*
 * goim-job's floor route: routing (goim_job_route.c).  Puts each PushMsg
 * into the queues of the comets the decision (goim_job_rules.h) names,
 * holds messages that wait for the registry, and keeps the comets in
 * step with the registry's reads.  Initializing it starts the comet
 * senders and the registry reads below it.
 */

#ifndef GOIM_JOB_ROUTE_H
#define GOIM_JOB_ROUTE_H

#include <stdint.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "goim_job_comet.h"
#include "goim_job_conf.h"
#include "goim_job_queue.h"
#include "goim.pb-c.h"


typedef struct {
    uint64_t  undeliverable;    /* pushes to comets not registered */
    uint64_t  room_merged;      /* room messages merged into a batch */
} job_route_stats_t;


/* flow: the consumer's, for the comet senders (goim_job_comet.h) */
int job_route_init(job_conf_t *cf, struct event_base *base,
    struct evdns_base *dns, job_comet_flow_pt flow);

/* stops the registry reads, removes every comet, frees held messages */
void job_route_close(void);

/*
 * Routes a message whose routing reference the caller holds.  1: the
 * message is held (it keeps pm and that reference until it is routed
 * again); 0: the caller frees pm and releases its reference.
 */
int job_route(job_msg_t *m, Goim__PushMsg *pm);

const job_route_stats_t *job_route_stats(void);

#endif /* GOIM_JOB_ROUTE_H */
