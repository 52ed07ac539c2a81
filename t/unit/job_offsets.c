/*
 * goim-job's per-partition offset tracker: the stored offset is the
 * lowest unfinished one (at-least-once), with out-of-order completion,
 * gaps in the offsets, a ring that wraps and grows, and completions of
 * an older assignment (generation) ignored.
 */

#include <stdlib.h>

#include "goim_job_offsets.h"
#include "tap.h"


int
main(void)
{
    int            i;
    int64_t        r;
    job_offsets_t  t;

    job_offsets_init(&t, 1);

    is_int(job_offsets_done(&t, 1, 0), JOB_OFFSETS_STALE,
           "done on an empty tracker is stale");

    /* in order */
    is_int(job_offsets_add(&t, 10), 0, "add 10");
    is_int(job_offsets_done(&t, 1, 10), 11, "done 10: store 11");
    is_int(t.n, 0, "nothing left");

    /* out of order */
    job_offsets_add(&t, 11);
    job_offsets_add(&t, 12);
    job_offsets_add(&t, 13);
    is_int(job_offsets_done(&t, 1, 13), JOB_OFFSETS_NONE,
           "done 13 before 11: nothing to store");
    is_int(job_offsets_done(&t, 1, 12), JOB_OFFSETS_NONE,
           "done 12 before 11: nothing to store");
    is_int(job_offsets_done(&t, 1, 11), 14,
           "done 11: the prefix 11..13 is finished, store 14");
    is_int(job_offsets_done(&t, 1, 12), JOB_OFFSETS_STALE,
           "a second completion is stale");

    /* gaps: offsets need not be consecutive */
    job_offsets_add(&t, 20);
    job_offsets_add(&t, 25);
    job_offsets_add(&t, 30);
    is_int(job_offsets_done(&t, 1, 20), 25,
           "gap: done 20 stores 25, the lowest unfinished");
    is_int(job_offsets_done(&t, 1, 27), JOB_OFFSETS_STALE,
           "an offset never added is stale");
    is_int(job_offsets_done(&t, 1, 30), JOB_OFFSETS_NONE,
           "done 30 while 25 is out");
    is_int(job_offsets_done(&t, 1, 25), 31, "done 25: store 31");

    /* not ascending */
    is_int(job_offsets_add(&t, 30), -1, "an offset below the last is refused");
    is_int(job_offsets_add(&t, -1), -1, "a negative offset is refused");

    /* generations: a revoke resets the tracker with a new generation */
    job_offsets_add(&t, 40);
    job_offsets_add(&t, 41);
    job_offsets_reset(&t, 2);
    is_int(job_offsets_done(&t, 1, 40), JOB_OFFSETS_STALE,
           "a completion of the revoked assignment is stale");
    is_int(t.n, 0, "the reset tracker is empty");
    is_int(job_offsets_add(&t, 35), 0,
           "the new assignment may start below the old one");
    is_int(job_offsets_done(&t, 1, 35), JOB_OFFSETS_STALE,
           "generation 1 cannot finish generation 2's offset 35");
    is_int(job_offsets_done(&t, 2, 35), 36, "generation 2 can");

    /* wrap and growth: many in flight, finished in reverse */
    for (i = 0; i < 1000; i++) {
        job_offsets_add(&t, 100 + i);
    }

    is_int(t.n, 1000, "1000 tracked (the ring grew)");

    r = 0;
    for (i = 999; i > 0; i--) {
        if (job_offsets_done(&t, 2, 100 + i) != JOB_OFFSETS_NONE) {
            r = -1;
        }
    }

    is_int(r, 0, "999 completions after the first store nothing");
    is_int(job_offsets_done(&t, 2, 100), 1100,
           "the first one completes the prefix: store 1100");

    /* wrap around with the head in the middle of the ring */
    for (i = 0; i < 50; i++) {
        job_offsets_add(&t, 2000 + i);
    }

    for (i = 0; i < 40; i++) {
        job_offsets_done(&t, 2, 2000 + i);
    }

    for (i = 50; i < 200; i++) {
        job_offsets_add(&t, 2000 + i);
    }

    is_int(job_offsets_done(&t, 2, 2199), JOB_OFFSETS_NONE,
           "wrapped: done 2199 while 2040 is out");
    is_int(job_offsets_done(&t, 2, 2040), 2041, "wrapped: done 2040");

    for (i = 41; i < 199; i++) {
        job_offsets_done(&t, 2, 2000 + i);
    }

    is_int(t.n, 0, "all finished");
    is_int(t.next, 2200, "next is past the last added");

    job_offsets_free(&t);

    return done_testing();
}
