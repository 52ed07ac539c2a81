
/*
 * goim for nginx: the store floor's start and end in a worker.  The
 * Redis connection first, then what runs on each of its connects, in
 * order: the sessions written again after a loss, then the comet
 * record, which says "rebuilding" until they are back.
 */


#include "ngx_goim_redis.h"
#include "ngx_goim_kafka.h"


ngx_int_t
ngx_goim_store_init(ngx_cycle_t *cycle)
{
    if (ngx_goim_redis_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_goim_session_init();
    ngx_goim_comets_init();

    if (ngx_goim_kafka_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_goim_presence_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_goim_online_init(cycle);
}


void
ngx_goim_store_exit(ngx_cycle_t *cycle)
{
    ngx_goim_online_exit(cycle);
    ngx_goim_presence_exit(cycle);
    ngx_goim_kafka_exit(cycle);
    ngx_goim_redis_exit(cycle);
}
