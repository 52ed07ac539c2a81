/*
 * goim-job's floor offsets: the per-partition offset tracker
 * (goim_job_offsets.c).
 *
 * Messages of a partition arrive in offset order and finish in any order.
 * The offset to store is the lowest unfinished one (or just past the last
 * seen when all are finished): a crash then redelivers, never skips.  A
 * tracker belongs to one assignment: its generation changes when the
 * partition is revoked, and completions of an older generation are
 * ignored.
 */

#ifndef GOIM_JOB_OFFSETS_H
#define GOIM_JOB_OFFSETS_H

#include <stddef.h>
#include <stdint.h>


#define JOB_OFFSETS_NONE   -1     /* finished, but nothing new to store */
#define JOB_OFFSETS_STALE  -2     /* other generation or unknown offset */

typedef struct {
    int64_t   *offs;        /* ring of tracked offsets, ascending */
    uint8_t   *done;
    size_t     cap;
    size_t     head;
    size_t     n;           /* entries in the ring */
    int64_t    next;        /* just past the last added, -1 before any */
    uint32_t   gen;
} job_offsets_t;

void job_offsets_init(job_offsets_t *t, uint32_t gen);
void job_offsets_reset(job_offsets_t *t, uint32_t gen);
void job_offsets_free(job_offsets_t *t);
int job_offsets_add(job_offsets_t *t, int64_t offset);
int64_t job_offsets_done(job_offsets_t *t, uint32_t gen, int64_t offset);

#endif /* GOIM_JOB_OFFSETS_H */
