/*
 * goim-job's routing decision (job/goim_job_rules.c, docs/PROTOCOL.md
 * 5.6): where a PushMsg of each type goes, how a broadcast's speed is
 * divided between the comets, and when a message waits for the registry
 * or is given up on.
 */

#include <stdint.h>

#include "goim_job_rules.h"
#include "goim.pb-c.h"
#include "tap.h"


#define PUSH       GOIM__PUSH_MSG__TYPE__PUSH
#define ROOM       GOIM__PUSH_MSG__TYPE__ROOM
#define BROADCAST  GOIM__PUSH_MSG__TYPE__BROADCAST


static void
test_before_the_registry(void)
{
    int  type;

    static const int  types[] = { PUSH, ROOM, BROADCAST };

    /* nothing is routed before the first registry read, whatever it is */
    for (type = 0; type < 3; type++) {
        is_int(job_route_decide(types[type], 0, 0, 0, 0), JOB_ROUTE_HOLD,
               "type %d before the first read: held", types[type]);
        is_int(job_route_decide(types[type], 0, 1, 3, 5), JOB_ROUTE_HOLD,
               "type %d before the first read, comets known: held",
               types[type]);
    }
}


static void
test_push(void)
{
    /* the comet named by server */
    is_int(job_route_decide(PUSH, 1, 1, 3, 0), JOB_ROUTE_ONE,
           "PUSH to a registered comet: to that comet alone");
    is_int(job_route_decide(PUSH, 1, 1, 1, 7), JOB_ROUTE_ONE,
           "PUSH to a registered comet after reads: to it");

    /* not registered: waits for two more reads, then is undeliverable */
    is_int(job_route_decide(PUSH, 1, 0, 3, 0), JOB_ROUTE_HOLD,
           "PUSH to an unknown comet: held for the next read");
    is_int(job_route_decide(PUSH, 1, 0, 3, 1), JOB_ROUTE_HOLD,
           "...still unknown after one read: held again");
    is_int(job_route_decide(PUSH, 1, 0, 3, JOB_ROUTE_READS),
           JOB_ROUTE_UNDELIVERABLE,
           "...still unknown after %d reads: undeliverable",
           JOB_ROUTE_READS);
    is_int(job_route_decide(PUSH, 1, 0, 3, 100), JOB_ROUTE_UNDELIVERABLE,
           "...and later: undeliverable");
    is_int(job_route_decide(PUSH, 1, 0, 0, 0), JOB_ROUTE_HOLD,
           "PUSH while no comet is registered: held too");
    is_int(job_route_decide(PUSH, 1, 0, 0, 2), JOB_ROUTE_UNDELIVERABLE,
           "...then undeliverable, not 'no comet'");
    is_int(job_route_decide(PUSH, 1, 1, 3, 1), JOB_ROUTE_ONE,
           "a held PUSH whose comet registered meanwhile: to it");
}


static void
test_room_and_broadcast(void)
{
    /* every comet: the job does not know which ones host a room */
    is_int(job_route_decide(ROOM, 1, 0, 1, 0), JOB_ROUTE_EVERY,
           "ROOM, one comet: every comet");
    is_int(job_route_decide(ROOM, 1, 0, 5, 0), JOB_ROUTE_EVERY,
           "ROOM, five comets: every comet");
    is_int(job_route_decide(BROADCAST, 1, 0, 5, 0), JOB_ROUTE_EVERY,
           "BROADCAST, five comets: every comet");

    /* the server a ROOM or BROADCAST names (none) does not matter */
    is_int(job_route_decide(ROOM, 1, 1, 2, 0), JOB_ROUTE_EVERY,
           "ROOM with known set: every comet still");

    /* no comet: finished at once, never held, never undeliverable */
    is_int(job_route_decide(ROOM, 1, 0, 0, 0), JOB_ROUTE_NOWHERE,
           "ROOM, no comet: finished at once");
    is_int(job_route_decide(BROADCAST, 1, 0, 0, 0), JOB_ROUTE_NOWHERE,
           "BROADCAST, no comet: finished at once");
    is_int(job_route_decide(ROOM, 1, 0, 0, 5), JOB_ROUTE_NOWHERE,
           "a held ROOM, no comet after reads: finished");
}


static void
test_speed(void)
{
    /* goim's speed is for the whole cluster */
    is_int(job_route_speed(100, 1), 100, "speed 100, 1 comet: 100");
    is_int(job_route_speed(100, 4), 25, "speed 100, 4 comets: 25 each");
    is_int(job_route_speed(100, 3), 33, "speed 100, 3 comets: 33 each");
    is_int(job_route_speed(3, 4), 1, "speed 3, 4 comets: at least 1");
    is_int(job_route_speed(1, 1000), 1, "speed 1, 1000 comets: 1");
    is_int(job_route_speed(0, 4), 0, "speed 0 (no limit): stays 0");
    is_int(job_route_speed(-5, 4), -5, "a negative speed: passed on");
    is_int(job_route_speed(100, 0), 100, "no comet: unchanged");
    is_int(job_route_speed(INT32_MAX, 2), INT32_MAX / 2,
           "the largest speed, 2 comets");
}


int
main(void)
{
    test_before_the_registry();
    test_push();
    test_room_and_broadcast();
    test_speed();

    return done_testing();
}
