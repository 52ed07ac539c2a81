/*
 * goim-job's floor registry: the comet registry read from Redis
 * (goim_job_registry.c).  It knows records, not comets: each read is
 * handed to the callback the floor above registered (goim_job_route.c),
 * which adds, moves, keeps or removes its comets.
 */

#ifndef GOIM_JOB_REGISTRY_H
#define GOIM_JOB_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "goim_job_conf.h"


typedef struct {
    char     *server;       /* the id in the set "comets" */
    char     *addr;         /* NULL: no record, or none with an "addr" */
    int64_t   ttl;          /* the record's "ttl", 0 when absent */
} job_registry_comet_t;

/* one successful read: every id of "comets"; valid during the call */
typedef void (*job_registry_read_pt)(job_registry_comet_t *comets,
    size_t n);

typedef struct {
    uint64_t  refreshes;    /* successful reads */
    uint64_t  errors;       /* failed reads and commands */
    int       up;           /* the last read succeeded */
} job_registry_stats_t;


int job_registry_init(job_conf_t *cf, struct event_base *base,
    job_registry_read_pt read);
void job_registry_close(void);

/* a read now rather than at the next period (ignored while one runs) */
void job_registry_refresh_soon(void);

const job_registry_stats_t *job_registry_stats(void);

#endif /* GOIM_JOB_REGISTRY_H */
