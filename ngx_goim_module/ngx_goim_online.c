
/*
 * goim for nginx: the node's periodic Redis work.  Every worker ticks
 * once a second and tries the node's lease in the shared zone; only the
 * holder runs the pass, every goim_online_interval (goim: 10 s).  A
 * holder that died or hangs loses the lease, another worker goes on.
 */


#include "ngx_goim_redis.h"


#define NGX_GOIM_ONLINE_TICK    1000
#define NGX_GOIM_LEASE_TTL      5000


typedef struct {
    ngx_event_t            timer;
    ngx_uint_t             holder;      /* held the lease at the last tick */
    ngx_msec_t             last;        /* the last pass began (0: never) */
    ngx_uint_t             running;     /* a pass is in flight */
} ngx_goim_online_t;


static void ngx_goim_online_tick(ngx_event_t *ev);
static void ngx_goim_online_pass(void);


static ngx_goim_online_t  ngx_goim_online;


/* goim_client_ports tcp ws wss; the ports /goim/nodes/weighted tells */

char *
ngx_goim_client_ports_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_goim_conf_t  *gcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (gcf->client_ports[0] != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; i < 3; i++) {
        n = ngx_atoi(value[i + 1].data, value[i + 1].len);

        if (n == NGX_ERROR || n > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid port \"%V\"", &value[i + 1]);
            return NGX_CONF_ERROR;
        }

        gcf->client_ports[i] = n;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_goim_online_init(ngx_cycle_t *cycle)
{
    ngx_goim_online_t  *o = &ngx_goim_online;

    ngx_memzero(o, sizeof(ngx_goim_online_t));

    if (!ngx_goim_redis_enabled()) {
        return NGX_OK;
    }

    o->timer.handler = ngx_goim_online_tick;
    o->timer.log = cycle->log;
    o->timer.data = o;
    o->timer.cancelable = 1;

    /* the first pass soon after start, not one interval later */
    ngx_add_timer(&o->timer, 100 + (ngx_msec_t) ngx_random() % 200);

    return NGX_OK;
}


void
ngx_goim_online_exit(ngx_cycle_t *cycle)
{
    ngx_goim_online_t  *o = &ngx_goim_online;

    if (o->timer.timer_set) {
        ngx_del_timer(&o->timer);
    }
}


static void
ngx_goim_online_tick(ngx_event_t *ev)
{
    ngx_goim_conf_t    *gcf;
    ngx_goim_online_t  *o = &ngx_goim_online;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        /* a worker that quits leaves the lease to the new ones */
        return;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    if (!ngx_goim_shm_lease(ngx_max(NGX_GOIM_LEASE_TTL,
                                    3 * NGX_GOIM_ONLINE_TICK)))
    {
        o->holder = 0;
        goto next;
    }

    if (!o->holder) {
        /* just taken: the pass runs at once */
        o->holder = 1;
        o->last = 0;
    }

    if (!o->running
        && (o->last == 0 || ngx_current_msec - o->last
                            >= gcf->online_interval))
    {
        o->last = ngx_current_msec;
        ngx_goim_online_pass();
    }

next:

    ngx_add_timer(ev, ngx_min(NGX_GOIM_ONLINE_TICK, gcf->online_interval));
}


static void
ngx_goim_online_pass(void)
{
    ngx_log_debug0(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "goim: online pass");
}


/* a room's members in the cluster; this node's when none is known */

ngx_uint_t
ngx_goim_online_count(u_char *name, size_t len)
{
    return ngx_goim_shm_room_total(name, len);
}
