/*
 * goim-job's floor rules: the routing decision (goim_job_rules.c).
 * Which comets a PushMsg goes to, the broadcast speed each comet gets,
 * when a message waits for the registry, and when a comet whose registry
 * record is missing is given up.  Plain functions of their arguments:
 * goim_job_route.c applies them to the job's comets and messages.
 */

#ifndef GOIM_JOB_RULES_H
#define GOIM_JOB_RULES_H

#include <stdint.h>


/* what becomes of a PushMsg */
#define JOB_ROUTE_HOLD           0  /* wait for the next registry read */
#define JOB_ROUTE_ONE            1  /* to the comet named by its server */
#define JOB_ROUTE_EVERY          2  /* into every comet's queue */
#define JOB_ROUTE_NOWHERE        3  /* no comet registered: finished */
#define JOB_ROUTE_UNDELIVERABLE  4  /* its comet is not in the registry */

/* registry reads a PUSH waits for its comet, after the first */
#define JOB_ROUTE_READS  2

/*
 * type: the PushMsg's (GOIM__PUSH_MSG__TYPE__*); loaded: the registry was
 * read once; known: a PUSH's server is a registered comet; ncomets: the
 * registered comets; reads: registry reads the message waited for.
 */
int job_route_decide(int type, int loaded, int known, int ncomets,
    uint32_t reads);

/* a broadcast's speed for each of ncomets comets */
int32_t job_route_speed(int32_t speed, int ncomets);

/*
 * A comet whose record is missing (lost with a Redis restart is not
 * dead) is kept until its record has been missing for at least its
 * "ttl" since it was last read AND the comet does not answer.  1: remove
 * it now.
 */
int job_comet_gone(int64_t now_ms, int64_t seen_ms, int ttl, int reachable);

/* the record's "ttl" the job goes by: 0 (none) unless under a day */
int job_comet_ttl(int64_t ttl);

#endif /* GOIM_JOB_RULES_H */
