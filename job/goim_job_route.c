/*
 * Routing of one PushMsg (docs/PROTOCOL.md 5.6) as goim_job_rules.c
 * decides it: PUSH to the comet named by `server`, ROOM and BROADCAST
 * into every comet's queue.  Each comet item holds a reference on the
 * message; the caller holds one more while routing, so a message
 * reaching no comet finishes when it lets go.
 *
 * Held messages wait for the next registry read; a PUSH to a comet not
 * in the registry asks for one at once.
 *
 * The registry's reads (goim_job_registry.c) come here: a new comet gets
 * a sender, a changed "addr" reconnects.  A comet whose record is
 * missing is not removed at once: Redis may have restarted empty, and the
 * comet writes its record again only when it reconnected.  It is kept,
 * and gets its room, broadcast and push messages, until its record has
 * been missing for its "ttl" (counted by this job's clock from the last
 * read that had it) and the comet does not answer either
 * (job_comet_gone); only then are its queued items counted
 * undeliverable.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goim_job_comet.h"
#include "goim_job_log.h"
#include "goim_job_registry.h"
#include "goim_job_route.h"
#include "goim_job_rules.h"


static void job_route_unknown(job_msg_t *m, Goim__PushMsg *pm);
static void job_route_hold(job_msg_t *m, Goim__PushMsg *pm);
static void job_route_held(void);
static void job_route_read(job_registry_comet_t *comets, size_t n);
static int64_t job_route_now(void);


static job_route_stats_t   job_route_st;
static int                 job_route_loaded;  /* the registry was read */
static job_msg_t          *job_route_held_msgs;
static job_msg_t         **job_route_held_tail = &job_route_held_msgs;


int
job_route_init(job_conf_t *cf, struct event_base *base,
    struct evdns_base *dns, job_comet_flow_pt flow)
{
    job_comet_init(cf, base, dns, flow);

    return job_registry_init(cf, base, job_route_read);
}


void
job_route_close(void)
{
    job_msg_t  *m;

    job_registry_close();
    job_comet_close_all();

    /* not stored: the group delivers them again */
    while ((m = job_route_held_msgs) != NULL) {
        job_route_held_msgs = m->next;
        goim__push_msg__free_unpacked(m->pm, NULL);
        free(m);
    }

    job_route_held_tail = &job_route_held_msgs;
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


int
job_route(job_msg_t *m, Goim__PushMsg *pm)
{
    int           ncomets;
    int32_t       speed;
    job_comet_t  *c;

    c = pm->type == GOIM__PUSH_MSG__TYPE__PUSH && job_route_loaded
        ? job_comet_find(pm->server) : NULL;
    ncomets = job_comet_count();

    switch (job_route_decide(pm->type, job_route_loaded, c != NULL, ncomets,
                             m->reads))
    {

    case JOB_ROUTE_HOLD:
        job_route_hold(m, pm);
        return 1;

    case JOB_ROUTE_UNDELIVERABLE:
        job_route_st.undeliverable++;
        job_route_unknown(m, pm);
        return 0;

    case JOB_ROUTE_ONE:
        if (pm->mid && pm->offset) {
            /* a member's message with its position: an item of its own */
            job_queue_push_member(&c->q, m, pm->operation, pm->keys,
                                  pm->n_keys, pm->msg.data, pm->msg.len,
                                  pm->mid, pm->epoch, pm->offset);

        } else {
            job_queue_push_keys(&c->q, m, pm->operation, pm->keys,
                                pm->n_keys, pm->msg.data, pm->msg.len);
        }

        job_comet_queued(c);
        return 0;

    case JOB_ROUTE_NOWHERE:
        job_log(JOB_LOG_INFO, "%s %d/%lld: no comet in the registry",
                pm->type == GOIM__PUSH_MSG__TYPE__ROOM ? "room" : "broadcast",
                m->partition, (long long) m->offset);
        return 0;

    default: /* JOB_ROUTE_EVERY */
        break;
    }

    if (pm->type == GOIM__PUSH_MSG__TYPE__ROOM) {

        for (c = job_comet_first(); c; c = c->next) {
            if (job_queue_push_room(&c->q, m, pm->room, pm->operation,
                                    pm->msg.data, pm->msg.len))
            {
                job_route_st.room_merged++;
            }

            job_comet_queued(c);
        }

        return 0;
    }

    speed = job_route_speed(pm->speed, ncomets);

    for (c = job_comet_first(); c; c = c->next) {
        job_queue_push_broadcast(&c->q, m, pm->operation, speed,
                                 pm->msg.data, pm->msg.len);
        job_comet_queued(c);
    }

    return 0;
}


static void
job_route_hold(job_msg_t *m, Goim__PushMsg *pm)
{
    m->pm = pm;
    m->next = NULL;
    *job_route_held_tail = m;
    job_route_held_tail = &m->next;

    if (job_route_loaded) {
        job_registry_refresh_soon();
    }
}


/* the registry was read: what waited for it goes, or waits again */
static void
job_route_held(void)
{
    job_msg_t  *m, *next;

    m = job_route_held_msgs;
    job_route_held_msgs = NULL;
    job_route_held_tail = &job_route_held_msgs;

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


static void
job_route_read(job_registry_comet_t *comets, size_t n)
{
    char          why[160];
    size_t        i;
    int64_t       now;
    job_comet_t  *c, *next;

    now = job_route_now();

    for (c = job_comet_first(); c; c = c->next) {
        c->seen = 0;
    }

    for (i = 0; i < n; i++) {
        if (comets[i].addr == NULL) {
            continue;
        }

        c = job_comet_find(comets[i].server);

        if (c == NULL) {
            c = job_comet_add(comets[i].server, comets[i].addr);

        } else if (strcmp(c->addr, comets[i].addr) != 0) {
            job_log(JOB_LOG_INFO, "comet %s moved: %s -> %s", c->server,
                    c->addr, comets[i].addr);

            if (job_comet_set_addr(c, comets[i].addr) != 0) {
                continue;
            }
        }

        if (c) {
            c->seen = 1;
            c->seen_ms = now;
            c->ttl = job_comet_ttl(comets[i].ttl);

            if (c->missing) {
                c->missing = 0;
                job_log(JOB_LOG_INFO, "comet %s: its registry record is "
                        "back", c->server);
            }
        }
    }

    for (c = job_comet_first(); c; c = next) {
        next = c->next;

        if (c->seen) {
            continue;
        }

        if (!c->missing) {
            c->missing = 1;
            job_log(JOB_LOG_WARN, "comet %s: its registry record is missing"
                    " (expired, or lost with Redis); kept while it answers"
                    " or for %d s", c->server, c->ttl);
        }

        if (job_comet_gone(now, c->seen_ms, c->ttl, job_comet_answers(c))) {
            snprintf(why, sizeof(why), "its registry record is gone for"
                     " %lld s, ttl %d s, and it does not answer",
                     (long long) (now - c->seen_ms) / 1000, c->ttl);
            job_comet_remove(c, why);
        }
    }

    if (!job_route_loaded) {
        job_route_loaded = 1;
        job_log(JOB_LOG_INFO, "registry loaded: %d comet(s)",
                job_comet_count());
    }

    if (job_route_held_msgs) {
        job_route_held();
    }
}


static int64_t
job_route_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


const job_route_stats_t *
job_route_stats(void)
{
    return &job_route_st;
}
