/*
 * The routing decision (goim_job_rules.h), docs/PROTOCOL.md 5.6: PUSH to
 * the comet named by `server`, ROOM into every comet's queue (the job
 * does not know which comets host the room), BROADCAST to every comet
 * with goim's speed divided by the number of comets.
 *
 * A message waits (held) until the first registry read, and a PUSH to a
 * comet not in it waits for JOB_ROUTE_READS more reads: a comet that has
 * just registered is found before its pushes are given up on.
 */

#include "goim_job_rules.h"
#include "goim.pb-c.h"


int
job_route_decide(int type, int loaded, int known, int ncomets,
    uint32_t reads)
{
    if (!loaded) {
        return JOB_ROUTE_HOLD;
    }

    if (type == GOIM__PUSH_MSG__TYPE__PUSH) {

        if (known) {
            return JOB_ROUTE_ONE;
        }

        return reads < JOB_ROUTE_READS ? JOB_ROUTE_HOLD
                                       : JOB_ROUTE_UNDELIVERABLE;
    }

    /* ROOM and BROADCAST */
    return ncomets ? JOB_ROUTE_EVERY : JOB_ROUTE_NOWHERE;
}


/* goim's speed is for the whole cluster: at least 1 when it was set */
int32_t
job_route_speed(int32_t speed, int ncomets)
{
    if (speed > 0 && ncomets) {
        speed /= ncomets;
        speed = speed ? speed : 1;
    }

    return speed;
}


int
job_comet_gone(int64_t now_ms, int64_t seen_ms, int ttl, int reachable)
{
    return !reachable && now_ms - seen_ms >= (int64_t) ttl * 1000;
}


/* a record without "ttl" (0) keeps its comet only while it answers */
int
job_comet_ttl(int64_t ttl)
{
    return ttl > 0 && ttl < 86400 ? (int) ttl : 0;
}
