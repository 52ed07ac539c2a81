
/*
 * goim for nginx: the shared zone itself.  goim_zone names it and sets
 * its size; the zone keeps its registry across reloads, since the old
 * and the new workers route through the same one.
 */


#include "ngx_goim_registry_shm.h"


static ngx_shm_zone_t *ngx_goim_registry_zone_add(ngx_conf_t *cf,
    ngx_goim_conf_t *gcf, ngx_str_t *name, size_t size);
static ngx_int_t ngx_goim_registry_zone_init(ngx_shm_zone_t *zone,
    void *data);


ngx_slab_pool_t  *ngx_goim_shpool;
ngx_goim_shm_t   *ngx_goim_shm;


/* goim_zone name size; */

char *
ngx_goim_registry_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_goim_conf_t  *gcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    if (gcf->zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    gcf->zone = ngx_goim_registry_zone_add(cf, gcf, &value[1], size);
    if (gcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_goim_registry_zone_default(ngx_cycle_t *cycle, ngx_goim_conf_t *gcf)
{
    ngx_str_t    name = ngx_string("goim");
    ngx_conf_t   cf;

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.cycle = cycle;
    cf.pool = cycle->pool;
    cf.log = cycle->log;

    gcf->zone = ngx_goim_registry_zone_add(&cf, gcf, &name,
                                           32 * 1024 * 1024);

    return gcf->zone ? NGX_OK : NGX_ERROR;
}


/*
 * goim_worker_slots: by default twice worker_processes (a reload's old
 * generation drains while the new one works), at least 64, rounded up
 * to whole words of a mask.  The core module's configuration is complete
 * by now: it is the first core module.
 */

ngx_int_t
ngx_goim_registry_slots_conf(ngx_cycle_t *cycle, ngx_goim_conf_t *gcf)
{
    ngx_uint_t        n;
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    n = gcf->worker_slots;

    if (n == NGX_CONF_UNSET_UINT) {
        n = ngx_max(64, 2 * (ngx_uint_t) ccf->worker_processes);

    } else if (n < (ngx_uint_t) ccf->worker_processes) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"goim_worker_slots\" %ui is less than "
                      "\"worker_processes\" %i", n, ccf->worker_processes);
        return NGX_ERROR;
    }

    n = ngx_align(n, 64);

    if (n > NGX_GOIM_MAX_WORKERS) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim: %ui worker slots asked (\"goim_worker_slots\", "
                      "by default twice \"worker_processes\"), at most %d",
                      n, NGX_GOIM_MAX_WORKERS);
        return NGX_ERROR;
    }

    gcf->worker_slots = n;

    return NGX_OK;
}


static ngx_shm_zone_t *
ngx_goim_registry_zone_add(ngx_conf_t *cf, ngx_goim_conf_t *gcf,
    ngx_str_t *name, size_t size)
{
    ngx_uint_t       i;
    ngx_shm_zone_t  *zone, *old;
    ngx_list_part_t *part;

    /*
     * nginx gives a zone resized at reload a new segment: the old workers
     * would keep routing through the old one.  Refuse it instead.
     */

    if (cf->cycle->old_cycle && cf->cycle->old_cycle->shared_memory.part.elts)
    {
        part = &cf->cycle->old_cycle->shared_memory.part;
        old = part->elts;

        for (i = 0; /* void */; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                old = part->elts;
                i = 0;
            }

            if (old[i].tag == &ngx_goim_module
                && old[i].shm.name.len == name->len
                && ngx_strncmp(old[i].shm.name.data, name->data, name->len)
                   == 0
                && old[i].shm.size != size)
            {
                ngx_log_error(NGX_LOG_EMERG, cf->cycle->log, 0,
                              "goim zone \"%V\" cannot change its size from "
                              "%uz to %uz on reload: restart nginx instead",
                              name, old[i].shm.size, size);
                return NULL;
            }
        }
    }

    zone = ngx_shared_memory_add(cf, name, size, &ngx_goim_module);
    if (zone == NULL) {
        return NULL;
    }

    zone->init = ngx_goim_registry_zone_init;
    zone->noreuse = 0;

    /* the slots wanted, until the zone's init replaces it */
    zone->data = gcf;

    return zone;
}


static ngx_int_t
ngx_goim_registry_zone_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_uint_t         nb;
    ngx_goim_shm_t    *shm;
    ngx_goim_conf_t   *gcf;
    ngx_slab_pool_t   *shpool;
    ngx_goim_hnode_t **keys, **rooms;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;
    gcf = zone->data;

    if (data) {
        /* reload: the same zone, kept with its live registry */
        shm = data;

        if (shm->magic != NGX_GOIM_SHM_MAGIC
            || shm->version != NGX_GOIM_SHM_VERSION)
        {
            ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0,
                          "goim zone \"%V\" has an incompatible layout "
                          "(version %uD, this module uses %d): restart nginx",
                          &zone->shm.name, shm->version,
                          NGX_GOIM_SHM_VERSION);
            return NGX_ERROR;
        }

        /* the old workers route by the zone's slots until they exit */
        if (gcf->worker_slots > shm->nslots) {
            ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0,
                          "goim zone \"%V\" has %ui worker slots, this "
                          "configuration needs %ui (\"goim_worker_slots\", "
                          "by default twice \"worker_processes\"): restart "
                          "nginx", &zone->shm.name, shm->nslots,
                          gcf->worker_slots);
            return NGX_ERROR;
        }

        zone->data = shm;
        return NGX_OK;
    }

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    shm = ngx_slab_calloc(shpool, sizeof(ngx_goim_shm_t));
    if (shm == NULL) {
        return NGX_ERROR;
    }

    shm->magic = NGX_GOIM_SHM_MAGIC;
    shm->version = NGX_GOIM_SHM_VERSION;

    shm->nslots = gcf->worker_slots;
    shm->nwords = shm->nslots / 64;

    shm->workers = ngx_slab_calloc(shpool, shm->nslots
                                           * sizeof(ngx_goim_shm_worker_t));
    shm->sessions_dirty = ngx_slab_calloc(shpool,
                                          shm->nslots * sizeof(ngx_uint_t));

    /* a bucket per 2 KB of zone, about one per key or room it holds */
    nb = ngx_goim_hash_size(zone->shm.size / 2048, 64);

    keys = ngx_slab_alloc(shpool, nb * sizeof(ngx_goim_hnode_t *));
    rooms = ngx_slab_alloc(shpool, nb * sizeof(ngx_goim_hnode_t *));

    if (shm->workers == NULL || shm->sessions_dirty == NULL
        || keys == NULL || rooms == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0,
                      "goim zone \"%V\" too small for %ui worker slots",
                      &zone->shm.name, shm->nslots);
        return NGX_ERROR;
    }

    ngx_goim_hash_init(&shm->keys, keys, nb);
    ngx_goim_hash_init(&shm->rooms, rooms, nb);
    ngx_rbtree_init(&shm->mids, &shm->mids_sentinel,
                    ngx_rbtree_insert_value);
    ngx_rbtree_init(&shm->presence, &shm->presence_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_goim_registry_history_init_locked(shm);

    shpool->data = shm;
    zone->data = shm;

    shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_goim_registry_pid_alive(ngx_pid_t pid)
{
    return kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH;
}


/* shared memory exhaustion: an error to the caller, a log line a second */

void
ngx_goim_registry_nomem(const char *what)
{
    static time_t  logged;

    if (logged != ngx_time()) {
        logged = ngx_time();
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "goim: shared zone exhausted, could not register %s; "
                      "raise the size in \"goim_zone\"", what);
    }
}
