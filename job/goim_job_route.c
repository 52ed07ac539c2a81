/*
 * Routing of one PushMsg (GOIM-SPEC 5.2, with "Our decisions"): PUSH to
 * the comet named by `server`, ROOM into every comet's queue (the job
 * does not know which comets host the room), BROADCAST to every comet
 * with goim's speed divided by the number of comets.  Each comet item
 * holds a reference on the message; the caller holds one more while
 * routing, so a message reaching no comet finishes when it lets go.
 *
 * A message waits for the registry (held, with its reference and decoded
 * PushMsg) until the first read, and a PUSH to a comet not in it waits
 * for two more reads, the first asked for at once: a comet that has just
 * registered is found before its pushes are given up on.
 */


#define JOB_ROUTE_READS  2      /* reads a PUSH waits for its comet */

#include <stdlib.h>
#include <time.h>

#include "goim_job_run.h"


/* the comet's queue reached its bound: consumption pauses at once */
static void
job_route_bound(job_comet_t *c)
{
    if (!c->blocked && (c->q.items >= (size_t) job.conf->queue_items
                        || c->q.bytes >= job.conf->queue_bytes))
    {
        job.over = 1;
    }
}


/*
 * Pushes to a comet that left keep coming while the API still finds its
 * sessions in Redis: one line a second, with the count of the others.
 */
static void
job_route_unknown(job_msg_t *m, Goim__PushMsg *pm)
{
    time_t           now;
    static time_t    last;
    static uint64_t  quiet;

    now = time(NULL);

    if (now == last) {
        quiet++;
        return;
    }

    job_log(JOB_LOG_WARN, "push %d/%lld to %zu key(s) on comet \"%s\": no"
            " such comet in the registry, undeliverable (and %llu more"
            " since the last line)", m->partition, (long long) m->offset,
            pm->n_keys, pm->server, (unsigned long long) quiet);

    last = now;
    quiet = 0;
}


/* 1: the message is held (it keeps pm and its reference) */
int
job_route(job_msg_t *m, Goim__PushMsg *pm)
{
    int32_t       speed;
    job_comet_t  *c;

    switch (pm->type) {

    case GOIM__PUSH_MSG__TYPE__PUSH:
        c = job_comet_find(pm->server);

        if (c == NULL) {
            if (m->reads < JOB_ROUTE_READS) {
                job_route_hold(m, pm);
                return 1;
            }

            job.undeliverable++;
            job_route_unknown(m, pm);
            return 0;
        }

        job_queue_push_keys(&c->q, m, pm->operation, pm->keys, pm->n_keys,
                            pm->msg.data, pm->msg.len);
        job_route_bound(c);
        job_comet_send(c);
        return 0;

    case GOIM__PUSH_MSG__TYPE__ROOM:
        for (c = job.comets; c; c = c->next) {
            if (job_queue_push_room(&c->q, m, pm->room, pm->operation,
                                    pm->msg.data, pm->msg.len))
            {
                job.room_merged++;
            }

            job_route_bound(c);
            job_comet_send(c);
        }

        break;

    default: /* BROADCAST */

        speed = pm->speed;

        if (speed > 0 && job.ncomets) {
            speed /= job.ncomets;
            speed = speed ? speed : 1;
        }

        for (c = job.comets; c; c = c->next) {
            job_queue_push_broadcast(&c->q, m, pm->operation, speed,
                                     pm->msg.data, pm->msg.len);
            job_route_bound(c);
            job_comet_send(c);
        }

        break;
    }

    if (job.ncomets == 0) {
        job_log(JOB_LOG_INFO, "%s %d/%lld: no comet in the registry",
                pm->type == GOIM__PUSH_MSG__TYPE__ROOM ? "room" : "broadcast",
                m->partition, (long long) m->offset);
    }

    return 0;
}


void
job_route_hold(job_msg_t *m, Goim__PushMsg *pm)
{
    m->pm = pm;
    m->next = NULL;
    *job.held_tail = m;
    job.held_tail = &m->next;

    if (job.registry_loaded) {
        job_registry_refresh_soon();
    }
}


/* the registry was read: what waited for it goes, or waits again */
void
job_route_held(void)
{
    job_msg_t  *m, *next;

    m = job.held;
    job.held = NULL;
    job.held_tail = &job.held;

    for ( /* void */ ; m; m = next) {
        next = m->next;
        m->next = NULL;
        m->reads++;

        if (job_route(m, m->pm)) {
            continue;
        }

        goim__push_msg__free_unpacked(m->pm, NULL);
        m->pm = NULL;
        job_msg_release(m);
    }
}
