/*
 * Per-partition offset tracker (goim_job_offsets.h): a ring of the offsets not
 * yet released, in arrival (= offset) order, each with a done flag.  A
 * finished prefix leaves the ring; the offset to store is then the first
 * one left, or just past the last added when the ring is empty.  Kafka
 * offsets can have gaps (compaction, transaction markers), so nothing
 * assumes consecutive numbers.  The ring grows: the consumer pauses the
 * partition at its in-flight bound, but messages already fetched still
 * arrive and must be tracked.
 */

#include <stdlib.h>
#include <string.h>

#include "goim_job_log.h"
#include "goim_job_offsets.h"


#define JOB_OFFSETS_MIN_CAP  64


static void job_offsets_grow(job_offsets_t *t);


void
job_offsets_init(job_offsets_t *t, uint32_t gen)
{
    memset(t, 0, sizeof(job_offsets_t));
    t->next = -1;
    t->gen = gen;
}


void
job_offsets_reset(job_offsets_t *t, uint32_t gen)
{
    t->head = 0;
    t->n = 0;
    t->next = -1;
    t->gen = gen;
}


void
job_offsets_free(job_offsets_t *t)
{
    free(t->offs);
    free(t->done);
    job_offsets_init(t, t->gen);
}


static void
job_offsets_grow(job_offsets_t *t)
{
    size_t    i, cap;
    int64_t  *offs;
    uint8_t  *done;

    cap = t->cap ? t->cap * 2 : JOB_OFFSETS_MIN_CAP;
    offs = job_alloc(cap * sizeof(int64_t));
    done = job_alloc(cap);

    for (i = 0; i < t->n; i++) {
        offs[i] = t->offs[(t->head + i) % t->cap];
        done[i] = t->done[(t->head + i) % t->cap];
    }

    free(t->offs);
    free(t->done);

    t->offs = offs;
    t->done = done;
    t->cap = cap;
    t->head = 0;
}


/* -1: the offset is not above the last one added (a redelivery within
 * the same assignment is a caller bug: the message is tracked once) */
int
job_offsets_add(job_offsets_t *t, int64_t offset)
{
    size_t  i;

    if (offset < 0 || offset < t->next) {
        return -1;
    }

    if (t->n == t->cap) {
        job_offsets_grow(t);
    }

    i = (t->head + t->n) % t->cap;
    t->offs[i] = offset;
    t->done[i] = 0;
    t->n++;
    t->next = offset + 1;

    return 0;
}


/*
 * Marks offset finished.  Returns the offset to store when the finished
 * prefix grew, JOB_OFFSETS_NONE when it did not (an earlier message is
 * still out), JOB_OFFSETS_STALE for another generation, an unknown or an
 * already finished offset.
 */
int64_t
job_offsets_done(job_offsets_t *t, uint32_t gen, int64_t offset)
{
    size_t   lo, hi, mid, i;
    int64_t  v;

    if (gen != t->gen || t->n == 0) {
        return JOB_OFFSETS_STALE;
    }

    /* binary search in the ring, ascending from head */
    lo = 0;
    hi = t->n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        v = t->offs[(t->head + mid) % t->cap];

        if (v < offset) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    if (lo == t->n) {
        return JOB_OFFSETS_STALE;
    }

    i = (t->head + lo) % t->cap;

    if (t->offs[i] != offset || t->done[i]) {
        return JOB_OFFSETS_STALE;
    }

    t->done[i] = 1;

    if (lo != 0) {
        return JOB_OFFSETS_NONE;
    }

    while (t->n && t->done[t->head]) {
        t->head = (t->head + 1) % t->cap;
        t->n--;
    }

    return t->n ? t->offs[t->head] : t->next;
}
