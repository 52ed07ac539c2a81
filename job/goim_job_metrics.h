/*
 * goim-job's floor metrics: GET /metrics on status_listen
 * (goim_job_metrics.c), the counters and gauges of every floor below.
 */

#ifndef GOIM_JOB_METRICS_H
#define GOIM_JOB_METRICS_H

#include <event2/event.h>

#include "goim_job_conf.h"


int job_metrics_init(job_conf_t *cf, struct event_base *base);
void job_metrics_close(void);

#endif /* GOIM_JOB_METRICS_H */
