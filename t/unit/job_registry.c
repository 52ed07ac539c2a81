/*
 * goim-job's rule for a comet whose registry record is missing: kept
 * until the record has been missing for its "ttl" since it was last read
 * AND the comet does not answer; a record without "ttl" (0) keeps it only
 * while it answers.
 */

#include <stdint.h>

#include "goim_job_rules.h"
#include "tap.h"


int
main(void)
{
    /* last read at 10 s, ttl 30 s */
    is_int(job_comet_gone(20000, 10000, 30, 0), 0,
           "missing for 10 s of 30, not answering: kept");
    is_int(job_comet_gone(40000, 10000, 30, 1), 0,
           "missing for 30 s, answering: kept (Redis lost the record)");
    is_int(job_comet_gone(600000, 10000, 30, 1), 0,
           "missing for 10 min, still answering: kept");
    is_int(job_comet_gone(39999, 10000, 30, 0), 0,
           "1 ms short of the ttl, not answering: kept");
    is_int(job_comet_gone(40000, 10000, 30, 0), 1,
           "missing for its ttl and not answering: gone");

    /* a record without "ttl" */
    is_int(job_comet_gone(10000, 10000, 0, 1), 0,
           "no ttl, answering: kept");
    is_int(job_comet_gone(10000, 10000, 0, 0), 1,
           "no ttl, not answering: gone at once");

    /* the record's "ttl" the rule goes by */
    is_int(job_comet_ttl(30), 30, "ttl 30: 30 s");
    is_int(job_comet_ttl(1), 1, "ttl 1: 1 s");
    is_int(job_comet_ttl(86399), 86399, "ttl under a day: kept");
    is_int(job_comet_ttl(86400), 0, "ttl of a day: none (0)");
    is_int(job_comet_ttl(INT64_MAX), 0, "huge ttl: none");
    is_int(job_comet_ttl(0), 0, "no ttl: none");
    is_int(job_comet_ttl(-30), 0, "negative ttl: none");

    return done_testing();
}
