
/*
 * goim for nginx: the worker's housekeeping, once a second (dead
 * workers' registry slots purged and their connections' leaves told,
 * this worker's address count refreshed), and its drain when it shuts
 * down.
 */


#include "ngx_goim_comet.h"


#define NGX_GOIM_DRAIN_TICK    100
#define NGX_GOIM_DRAIN_CHUNK   64
/* a late tick catches up, but one turn of the loop stays short */
#define NGX_GOIM_DRAIN_MAX     1024


typedef struct {
    ngx_event_t            housekeeping;
    ngx_uint_t             ticks;
    ngx_uint_t             draining;
    ngx_msec_t             started;
    ngx_uint_t             total;
    ngx_uint_t             closed;
} ngx_goim_drain_t;


static ngx_uint_t ngx_goim_drain_due(ngx_goim_drain_t *d, ngx_msec_t drain,
    ngx_uint_t left);


static void ngx_goim_housekeeping(ngx_event_t *ev);


static ngx_goim_drain_t  ngx_goim_drain_state;


void
ngx_goim_housekeeping_init(ngx_cycle_t *cycle)
{
    ngx_goim_drain_t  *d = &ngx_goim_drain_state;

    ngx_memzero(d, sizeof(ngx_goim_drain_t));

    ngx_goim_event_init(&d->housekeeping, ngx_goim_housekeeping, cycle->log,
                        1);
    ngx_add_timer(&d->housekeeping, 1000);
}


static void
ngx_goim_housekeeping(ngx_event_t *ev)
{
    ngx_goim_drain_t  *d = &ngx_goim_drain_state;

    ngx_goim_registry_purge_dead(ev->log);

    /* the leaves of their connections, whichever worker purged them */
    ngx_goim_rooms_departed();

    if (ngx_goim_registry_history_on()) {
        ngx_goim_registry_history_expire();
    }

    if (d->ticks++ % 10 == 0) {
        ngx_goim_registry_set_ips(ngx_goim_ip_count());
    }

    if (ngx_exiting || d->draining) {
        ngx_goim_drain();
        return;
    }

    ngx_add_timer(ev, 1000);
}


/*
 * After a reload the old workers keep delivering, then close their goim
 * connections spread over goim_shutdown_drain, so clients reconnect to
 * the new workers gradually (WebSocket: close 1001).  The share is by
 * the clock, not by the ticks: on a loaded machine the ticks come late
 * and the drain would overrun goim_shutdown_drain many times over.
 *
 * Nothing accepted for a connection is lost on the way: the connections
 * of a tick leave the shared registry first, then the messages other
 * workers routed here before that are taken from the inbox, the rooms'
 * merged batches and the paced broadcasts not yet sent to them are
 * written, and only then their Close.  A client that does not read gets
 * 5 s for that (ngx_goim_channel_fail), so the drain ends at most that
 * long after goim_shutdown_drain.
 */

void
ngx_goim_drain(void)
{
    ngx_uint_t            n, i, j, k;
    ngx_goim_conf_t      *gcf;
    ngx_goim_channel_t   *ch, *chunk[NGX_GOIM_DRAIN_CHUNK];
    ngx_goim_drain_t     *d = &ngx_goim_drain_state;
    ngx_goim_channels_t  *cs = &ngx_goim_channels;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    if (!d->draining) {
        d->draining = 1;
        d->started = ngx_current_msec;
        d->total = cs->nchannels;
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "goim: shutting down, closing %ui connections over "
                      "%M ms", cs->nchannels, gcf->shutdown_drain);
    }

    n = ngx_goim_drain_due(d, gcf->shutdown_drain, cs->nchannels);
    d->closed += n;

    while (n) {
        k = 0;

        for (ch = ngx_goim_channel_first();
             ch && k < ngx_min(n, NGX_GOIM_DRAIN_CHUNK);
             ch = ngx_goim_channel_next(ch))
        {
            ngx_goim_auth_withdraw(ch);
            chunk[k++] = ch;
        }

        if (k == 0) {
            break;
        }

        ngx_goim_ipc_receive();

        for (i = 0; i < k; i++) {
            ch = chunk[i];

            if (!ch->authed) {
                /* kicked by a newer connection meanwhile */
                continue;
            }

            for (j = 0; j < ch->nrooms; j++) {
                ngx_goim_room_flush_pending(ch->rooms[j].room);
            }

            ngx_goim_broadcast_catch_up(ch);
        }

        for (i = 0; i < k; i++) {
            ch = chunk[i];

            /* unregistered now, so it is not picked again */
            ngx_goim_auth_unregister(ch);
            ngx_goim_channel_fail(ch, NGX_LOG_INFO, GOIM_WS_CLOSE_GOING_AWAY,
                                  "server shutting down");
        }

        n -= k;
    }

    /*
     * Also while closing channels flush their Close frames: the posted
     * writes need the event loop to wake up, and at shutdown nothing
     * else may wake it.
     */

    if (cs->nchannels || cs->nconnections) {
        ngx_add_timer(&d->housekeeping, NGX_GOIM_DRAIN_TICK);

    } else if (d->housekeeping.timer_set) {
        ngx_del_timer(&d->housekeeping);
    }
}


/*
 * How many channels to close now: the share of goim_shutdown_drain that
 * has passed, one tick ahead, less what was closed already, and at least
 * one (a few connections go sooner than the whole time); all that is
 * left once the time is up.
 */

static ngx_uint_t
ngx_goim_drain_due(ngx_goim_drain_t *d, ngx_msec_t drain, ngx_uint_t left)
{
    uint64_t    due;
    ngx_msec_t  elapsed;

    elapsed = ngx_current_msec - d->started + NGX_GOIM_DRAIN_TICK;

    if (elapsed >= drain) {
        return ngx_min(left, NGX_GOIM_DRAIN_MAX);
    }

    due = (uint64_t) d->total * elapsed / drain + 1;

    due = (due > d->closed) ? due - d->closed : 1;

    return ngx_min((ngx_uint_t) due, ngx_min(left, NGX_GOIM_DRAIN_MAX));
}
