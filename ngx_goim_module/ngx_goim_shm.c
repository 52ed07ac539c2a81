
/*
 * goim for nginx: the registry in shared memory.  Every worker process,
 * of every generation, claims a slot; the registry maps keys to the slot
 * holding the connection, and mids and rooms to a mask of slots, so a
 * push reaches only the workers that hold its targets.  Critical sections
 * hold the slab pool's mutex, which the master unlocks if its holder dies.
 */


#include "ngx_goim.h"


#define NGX_GOIM_SHM_MAGIC    0x676f696d     /* "goim" */
#define NGX_GOIM_SHM_VERSION  7

#define NGX_GOIM_SHM_COMETS   256
#define NGX_GOIM_SHM_COMET_ID 128


typedef struct {
    ngx_pid_t              pid;         /* 0: free */
    ngx_uint_t             gen;         /* claim stamp */
    ngx_uint_t             connections;
    ngx_uint_t             ips;         /* distinct client addresses */
    ngx_goim_stats_t       stats;
    ngx_uint_t             inbox_size;
    ngx_uint_t             inbox_head;
    ngx_uint_t             inbox_tail;
    void                 **inbox;       /* ring of ngx_goim_imsg_t */
} ngx_goim_shm_worker_t;


/* a comet of the registry this node saw, in ngx_goim_shm_t.comets */
typedef struct {
    time_t                 expires;     /* wall clock; 0: a free entry */
    size_t                 len;
    u_char                 id[NGX_GOIM_SHM_COMET_ID];
} ngx_goim_shm_comet_t;


typedef struct {
    uint32_t               magic;
    uint32_t               version;
    ngx_uint_t             gen;
    ngx_rbtree_t           keys;
    ngx_rbtree_node_t      keys_sentinel;
    ngx_rbtree_t           mids;
    ngx_rbtree_node_t      mids_sentinel;
    ngx_rbtree_t           rooms;
    ngx_rbtree_node_t      rooms_sentinel;
    ngx_goim_shm_worker_t  workers[NGX_GOIM_MAX_WORKERS];

    /* the worker doing the node's periodic Redis work (online.c) */
    ngx_pid_t              lease_pid;   /* 0: nobody */
    uint64_t               lease_expires;   /* wall clock, ms */

    /* the cluster's room counts from Redis, replaced whole */
    struct ngx_goim_shm_online_s  *online;

    /* a slot's sessions are being written to Redis again (session.c) */
    ngx_uint_t             sessions_dirty[NGX_GOIM_MAX_WORKERS];

    /* the comets seen in the registry, until their record's expiry */
    ngx_uint_t             ncomets;
    ngx_goim_shm_comet_t   comets[NGX_GOIM_SHM_COMETS];
} ngx_goim_shm_t;


/* one block: the rooms sorted by name, then the names */
typedef struct {
    u_char                *name;
    uint32_t               len;
    uint32_t               count;
} ngx_goim_shm_online_room_t;


typedef struct ngx_goim_shm_online_s {
    time_t                 expires;
    ngx_uint_t             n;
    ngx_goim_shm_online_room_t  rooms[1];
} ngx_goim_shm_online_t;


typedef struct {
    ngx_str_node_t         sn;
    ngx_uint_t             widx;
    ngx_uint_t             wgen;
    u_char                 key[1];
} ngx_goim_shm_key_t;


typedef struct {
    ngx_rbtree_node_t      node;        /* key: the mid */
    uint64_t               mask;
} ngx_goim_shm_mid_t;


typedef struct {
    ngx_str_node_t         sn;
    uint64_t               mask;
    uint32_t               counts[NGX_GOIM_MAX_WORKERS];
    u_char                 name[1];
} ngx_goim_shm_room_t;


static ngx_int_t ngx_goim_zone_init(ngx_shm_zone_t *zone, void *data);
static ngx_shm_zone_t *ngx_goim_zone_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size);
typedef ngx_uint_t (*ngx_goim_shm_gone_pt)(ngx_rbtree_node_t *node,
    ngx_uint_t widx, ngx_uint_t gen);

static void ngx_goim_shm_purge_locked(ngx_uint_t widx, ngx_log_t *log);
static void ngx_goim_shm_sweep(ngx_rbtree_t *tree, ngx_goim_shm_gone_pt gone,
    ngx_uint_t widx, ngx_uint_t gen);
static ngx_uint_t ngx_goim_shm_key_gone(ngx_rbtree_node_t *node,
    ngx_uint_t widx, ngx_uint_t gen);
static ngx_uint_t ngx_goim_shm_mid_gone(ngx_rbtree_node_t *node,
    ngx_uint_t widx, ngx_uint_t gen);
static ngx_uint_t ngx_goim_shm_room_gone(ngx_rbtree_node_t *node,
    ngx_uint_t widx, ngx_uint_t gen);
static ngx_goim_shm_mid_t *ngx_goim_shm_mid_lookup(int64_t mid);


static ngx_slab_pool_t  *ngx_goim_shpool;
static ngx_goim_shm_t   *ngx_goim_shm;


/* goim_zone name size; */

char *
ngx_goim_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
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

    gcf->zone = ngx_goim_zone_add(cf, &value[1], size);
    if (gcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_goim_zone_default(ngx_cycle_t *cycle, ngx_goim_conf_t *gcf)
{
    ngx_str_t    name = ngx_string("goim");
    ngx_conf_t   cf;

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.cycle = cycle;
    cf.pool = cycle->pool;
    cf.log = cycle->log;

    gcf->zone = ngx_goim_zone_add(&cf, &name, 32 * 1024 * 1024);

    return gcf->zone ? NGX_OK : NGX_ERROR;
}


static ngx_shm_zone_t *
ngx_goim_zone_add(ngx_conf_t *cf, ngx_str_t *name, size_t size)
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

    zone->init = ngx_goim_zone_init;
    zone->noreuse = 0;

    return zone;
}


static ngx_int_t
ngx_goim_zone_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_goim_shm_t   *shm;
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

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

    ngx_rbtree_init(&shm->keys, &shm->keys_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&shm->mids, &shm->mids_sentinel,
                    ngx_rbtree_insert_value);
    ngx_rbtree_init(&shm->rooms, &shm->rooms_sentinel,
                    ngx_str_rbtree_insert_value);

    shpool->data = shm;
    zone->data = shm;

    shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_goim_pid_alive(ngx_pid_t pid)
{
    return kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH;
}


/* claims a registry slot for this worker process */

ngx_int_t
ngx_goim_shm_attach(ngx_cycle_t *cycle)
{
    ngx_uint_t              i;
    ngx_goim_conf_t        *gcf;
    ngx_goim_shm_worker_t  *sw;
    ngx_goim_worker_t      *w = &ngx_goim_worker;

    gcf = ngx_goim_get_conf(cycle);

    ngx_goim_shpool = (ngx_slab_pool_t *) gcf->zone->shm.addr;
    ngx_goim_shm = gcf->zone->data;

    w->widx = -1;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    /* slots of workers that died (crash, SIGKILL) route nothing further */
    for (i = 0; i < NGX_GOIM_MAX_WORKERS; i++) {
        sw = &ngx_goim_shm->workers[i];

        if (sw->pid && !ngx_goim_pid_alive(sw->pid)) {
            ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                          "goim: purging registry slot %ui of dead worker %P",
                          i, sw->pid);
            ngx_goim_shm_purge_locked(i, cycle->log);
        }
    }

    for (i = 0; i < NGX_GOIM_MAX_WORKERS; i++) {
        sw = &ngx_goim_shm->workers[i];

        if (sw->pid == 0) {
            break;
        }
    }

    if (i == NGX_GOIM_MAX_WORKERS) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim: more than %d worker processes share the zone",
                      NGX_GOIM_MAX_WORKERS);
        return NGX_ERROR;
    }

    if (sw->inbox == NULL || sw->inbox_size != gcf->inbox_size) {
        if (sw->inbox) {
            ngx_slab_free_locked(ngx_goim_shpool, sw->inbox);
        }

        sw->inbox = ngx_slab_alloc_locked(ngx_goim_shpool,
                                          gcf->inbox_size * sizeof(void *));
        if (sw->inbox == NULL) {
            ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "goim: zone \"%V\" too small for the inboxes",
                          &gcf->zone->shm.name);
            return NGX_ERROR;
        }

        sw->inbox_size = gcf->inbox_size;
    }

    sw->pid = ngx_pid;
    sw->gen = ++ngx_goim_shm->gen;
    sw->connections = 0;
    sw->ips = 0;
    sw->inbox_head = 0;
    sw->inbox_tail = 0;

    ngx_memzero(&sw->stats, sizeof(ngx_goim_stats_t));

    w->widx = i;
    w->wgen = sw->gen;
    w->stats = &sw->stats;

    /* a new worker has no sessions yet */
    ngx_goim_shm->sessions_dirty[i] = 0;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


void
ngx_goim_shm_detach(ngx_cycle_t *cycle)
{
    ngx_goim_worker_t  *w = &ngx_goim_worker;

    if (w->widx < 0 || ngx_goim_shm == NULL) {
        return;
    }

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);
    ngx_goim_shm_purge_locked(w->widx, cycle->log);
    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    /* another worker takes the lease over at its next tick */
    ngx_goim_shm_lease_release();

    w->widx = -1;
    w->stats = &w->local_stats;
}


void
ngx_goim_shm_purge_dead(ngx_log_t *log)
{
    ngx_uint_t              i;
    ngx_goim_shm_worker_t  *sw;

    for (i = 0; i < NGX_GOIM_MAX_WORKERS; i++) {
        sw = &ngx_goim_shm->workers[i];

        if (sw->pid == 0 || ngx_goim_pid_alive(sw->pid)) {
            continue;
        }

        ngx_shmtx_lock(&ngx_goim_shpool->mutex);

        if (sw->pid && !ngx_goim_pid_alive(sw->pid)) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "goim: purging registry slot %ui of dead worker %P",
                          i, sw->pid);
            ngx_goim_shm_purge_locked(i, log);
        }

        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
    }
}


/*
 * Walks a registry tree and frees the nodes that "gone" says no longer
 * hold anything once slot widx (of generation gen) is removed.
 */

static void
ngx_goim_shm_sweep(ngx_rbtree_t *tree, ngx_goim_shm_gone_pt gone,
    ngx_uint_t widx, ngx_uint_t gen)
{
    ngx_rbtree_node_t  *node, *next;

    if (tree->root == tree->sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(tree->root, tree->sentinel);
         node;
         node = next)
    {
        next = ngx_rbtree_next(tree, node);

        if (gone(node, widx, gen)) {
            ngx_rbtree_delete(tree, node);
            ngx_slab_free_locked(ngx_goim_shpool, node);
        }
    }
}


static ngx_uint_t
ngx_goim_shm_key_gone(ngx_rbtree_node_t *node, ngx_uint_t widx,
    ngx_uint_t gen)
{
    ngx_goim_shm_key_t  *k = (ngx_goim_shm_key_t *) node;

    return k->widx == widx && k->wgen == gen;
}


static ngx_uint_t
ngx_goim_shm_mid_gone(ngx_rbtree_node_t *node, ngx_uint_t widx,
    ngx_uint_t gen)
{
    ngx_goim_shm_mid_t  *m = (ngx_goim_shm_mid_t *) node;

    m->mask &= ~((uint64_t) 1 << widx);

    return m->mask == 0;
}


static ngx_uint_t
ngx_goim_shm_room_gone(ngx_rbtree_node_t *node, ngx_uint_t widx,
    ngx_uint_t gen)
{
    ngx_goim_shm_room_t  *r = (ngx_goim_shm_room_t *) node;

    r->mask &= ~((uint64_t) 1 << widx);
    r->counts[widx] = 0;

    return r->mask == 0;
}


/*
 * Removes every trace of a slot: its keys, its bits in mids and rooms,
 * the messages waiting in its inbox.  O(registry), only on worker exit.
 */

static void
ngx_goim_shm_purge_locked(ngx_uint_t widx, ngx_log_t *log)
{
    ngx_atomic_t           *refs;
    ngx_goim_shm_worker_t  *sw;

    sw = &ngx_goim_shm->workers[widx];

    ngx_goim_shm_sweep(&ngx_goim_shm->keys, ngx_goim_shm_key_gone, widx,
                       sw->gen);
    ngx_goim_shm_sweep(&ngx_goim_shm->mids, ngx_goim_shm_mid_gone, widx,
                       sw->gen);
    ngx_goim_shm_sweep(&ngx_goim_shm->rooms, ngx_goim_shm_room_gone, widx,
                       sw->gen);

    /* messages nobody will read: drop this slot's references */
    while (sw->inbox_head != sw->inbox_tail) {
        refs = sw->inbox[sw->inbox_head % sw->inbox_size];
        sw->inbox_head++;

        if (ngx_atomic_fetch_add(refs, -1) == 1) {
            ngx_slab_free_locked(ngx_goim_shpool, (void *) refs);
        }
    }

    sw->pid = 0;
    sw->connections = 0;
    sw->ips = 0;
    sw->inbox_head = 0;
    sw->inbox_tail = 0;

    /* a dead worker's sessions hold the node back no more */
    ngx_goim_shm->sessions_dirty[widx] = 0;
}


/*
 * Registers this channel's key.  *owner is the slot that held the key
 * before (another worker must kick its connection), or -1.
 */

ngx_int_t
ngx_goim_shm_key_add(ngx_goim_channel_t *ch, ngx_int_t *owner)
{
    uint32_t             hash;
    ngx_str_t           *key;
    ngx_str_node_t      *sn;
    ngx_goim_shm_key_t  *k;
    ngx_goim_worker_t   *w = &ngx_goim_worker;

    key = &ch->key_node.str;
    hash = ch->key_node.node.key;
    *owner = -1;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    sn = ngx_str_rbtree_lookup(&ngx_goim_shm->keys, key, hash);

    if (sn) {
        k = (ngx_goim_shm_key_t *) sn;

        if (k->widx != (ngx_uint_t) w->widx) {
            *owner = k->widx;
        }

        k->widx = w->widx;
        k->wgen = w->wgen;

        ngx_goim_shm->workers[w->widx].connections++;

        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_OK;
    }

    k = ngx_slab_alloc_locked(ngx_goim_shpool,
                              offsetof(ngx_goim_shm_key_t, key) + key->len);
    if (k == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        ngx_goim_shm_nomem("a connection key");
        return NGX_DECLINED;
    }

    ngx_memcpy(k->key, key->data, key->len);
    k->sn.str.data = k->key;
    k->sn.str.len = key->len;
    k->sn.node.key = hash;
    k->widx = w->widx;
    k->wgen = w->wgen;

    ngx_rbtree_insert(&ngx_goim_shm->keys, &k->sn.node);

    ngx_goim_shm->workers[w->widx].connections++;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


/* removes the key only while it still names this worker */

void
ngx_goim_shm_key_del(ngx_goim_channel_t *ch)
{
    ngx_str_node_t      *sn;
    ngx_goim_shm_key_t  *k;
    ngx_goim_worker_t   *w = &ngx_goim_worker;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    sn = ngx_str_rbtree_lookup(&ngx_goim_shm->keys, &ch->key_node.str,
                               ch->key_node.node.key);

    if (sn) {
        k = (ngx_goim_shm_key_t *) sn;

        if (k->widx == (ngx_uint_t) w->widx && k->wgen == w->wgen) {
            ngx_rbtree_delete(&ngx_goim_shm->keys, &k->sn.node);
            ngx_slab_free_locked(ngx_goim_shpool, k);
        }
    }

    if (ngx_goim_shm->workers[w->widx].connections) {
        ngx_goim_shm->workers[w->widx].connections--;
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


ngx_int_t
ngx_goim_shm_key_owner(u_char *key, size_t len)
{
    ngx_int_t        widx;
    ngx_str_node_t  *sn;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    sn = ngx_goim_str_lookup(&ngx_goim_shm->keys, key, len);

    widx = sn ? (ngx_int_t) ((ngx_goim_shm_key_t *) sn)->widx : -1;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return widx;
}


static ngx_goim_shm_mid_t *
ngx_goim_shm_mid_lookup(int64_t mid)
{
    ngx_rbtree_key_t    key;
    ngx_rbtree_node_t  *node, *sentinel;

    key = (ngx_rbtree_key_t) mid;
    node = ngx_goim_shm->mids.root;
    sentinel = ngx_goim_shm->mids.sentinel;

    while (node != sentinel) {
        if (key == node->key) {
            return (ngx_goim_shm_mid_t *) node;
        }

        node = (key < node->key) ? node->left : node->right;
    }

    return NULL;
}


/* this worker holds (on) or no longer holds connections of the mid */

void
ngx_goim_shm_mid_set(int64_t mid, ngx_uint_t on)
{
    uint64_t             bit;
    ngx_goim_shm_mid_t  *m;

    bit = (uint64_t) 1 << ngx_goim_worker.widx;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    m = ngx_goim_shm_mid_lookup(mid);

    if (on) {
        if (m == NULL) {
            m = ngx_slab_alloc_locked(ngx_goim_shpool,
                                      sizeof(ngx_goim_shm_mid_t));
            if (m == NULL) {
                ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
                ngx_goim_shm_nomem("a member id");
                return;
            }

            m->node.key = (ngx_rbtree_key_t) mid;
            m->mask = 0;
            ngx_rbtree_insert(&ngx_goim_shm->mids, &m->node);
        }

        m->mask |= bit;

    } else if (m) {
        m->mask &= ~bit;

        if (m->mask == 0) {
            ngx_rbtree_delete(&ngx_goim_shm->mids, &m->node);
            ngx_slab_free_locked(ngx_goim_shpool, m);
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


uint64_t
ngx_goim_shm_mid_mask(int64_t mid)
{
    uint64_t             mask;
    ngx_goim_shm_mid_t  *m;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    m = ngx_goim_shm_mid_lookup(mid);
    mask = m ? m->mask : 0;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return mask;
}


/* adds delta to this worker's member count of a room */

void
ngx_goim_shm_room_count(ngx_goim_room_t *room, ngx_int_t delta)
{
    size_t                len;
    ngx_uint_t            widx;
    ngx_str_node_t       *sn;
    ngx_goim_shm_room_t  *r;

    widx = ngx_goim_worker.widx;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    sn = ngx_str_rbtree_lookup(&ngx_goim_shm->rooms, &room->sn.str,
                               room->sn.node.key);
    r = (ngx_goim_shm_room_t *) sn;

    if (r == NULL) {
        if (delta <= 0) {
            ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
            return;
        }

        len = room->sn.str.len;

        r = ngx_slab_calloc_locked(ngx_goim_shpool,
                                   offsetof(ngx_goim_shm_room_t, name) + len);
        if (r == NULL) {
            ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
            ngx_goim_shm_nomem("a room");
            return;
        }

        ngx_memcpy(r->name, room->sn.str.data, len);
        r->sn.str.data = r->name;
        r->sn.str.len = len;
        r->sn.node.key = room->sn.node.key;
        ngx_rbtree_insert(&ngx_goim_shm->rooms, &r->sn.node);
    }

    if (delta < 0 && r->counts[widx] < (uint32_t) -delta) {
        r->counts[widx] = 0;

    } else {
        r->counts[widx] += delta;
    }

    if (r->counts[widx]) {
        r->mask |= (uint64_t) 1 << widx;

    } else {
        r->mask &= ~((uint64_t) 1 << widx);
    }

    if (r->mask == 0) {
        ngx_rbtree_delete(&ngx_goim_shm->rooms, &r->sn.node);
        ngx_slab_free_locked(ngx_goim_shpool, r);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


uint64_t
ngx_goim_shm_room_mask(u_char *name, size_t len)
{
    uint64_t         mask;
    ngx_str_node_t  *sn;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    sn = ngx_goim_str_lookup(&ngx_goim_shm->rooms, name, len);
    mask = sn ? ((ngx_goim_shm_room_t *) sn)->mask : 0;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return mask;
}


/* the room's members on this node, over all workers */

ngx_uint_t
ngx_goim_shm_room_total(u_char *name, size_t len)
{
    ngx_uint_t            i, total;
    ngx_str_node_t       *sn;
    ngx_goim_shm_room_t  *r;

    total = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    sn = ngx_goim_str_lookup(&ngx_goim_shm->rooms, name, len);

    if (sn) {
        r = (ngx_goim_shm_room_t *) sn;

        for (i = 0; i < NGX_GOIM_MAX_WORKERS; i++) {
            if (r->mask & ((uint64_t) 1 << i)) {
                total += r->counts[i];
            }
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return total;
}


/* every room with its node-wide count, copied into the pool */

ngx_int_t
ngx_goim_shm_room_list(ngx_pool_t *pool, ngx_str_t **names,
    ngx_uint_t **counts, ngx_uint_t *n)
{
    ngx_uint_t            k, cap;
    ngx_rbtree_node_t    *node, *sentinel;
    ngx_goim_shm_room_t  *r;

    *n = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    cap = 0;
    sentinel = ngx_goim_shm->rooms.sentinel;

    if (ngx_goim_shm->rooms.root != sentinel) {
        for (node = ngx_rbtree_min(ngx_goim_shm->rooms.root, sentinel);
             node;
             node = ngx_rbtree_next(&ngx_goim_shm->rooms, node))
        {
            cap++;
        }
    }

    *names = ngx_palloc(pool, (cap + 1) * sizeof(ngx_str_t));
    *counts = ngx_palloc(pool, (cap + 1) * sizeof(ngx_uint_t));

    if (*names == NULL || *counts == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_ERROR;
    }

    if (cap) {
        for (node = ngx_rbtree_min(ngx_goim_shm->rooms.root, sentinel);
             node;
             node = ngx_rbtree_next(&ngx_goim_shm->rooms, node))
        {
            r = (ngx_goim_shm_room_t *) node;

            (*names)[*n].data = ngx_pnalloc(pool, r->sn.str.len + 1);
            if ((*names)[*n].data == NULL) {
                ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
                return NGX_ERROR;
            }

            ngx_memcpy((*names)[*n].data, r->name, r->sn.str.len);
            (*names)[*n].len = r->sn.str.len;

            (*counts)[*n] = 0;

            for (k = 0; k < NGX_GOIM_MAX_WORKERS; k++) {
                if (r->mask & ((uint64_t) 1 << k)) {
                    (*counts)[*n] += r->counts[k];
                }
            }

            (*n)++;
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


uint64_t
ngx_goim_shm_live_mask(void)
{
    uint64_t    mask;
    ngx_uint_t  i;

    mask = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < NGX_GOIM_MAX_WORKERS; i++) {
        if (ngx_goim_shm->workers[i].pid) {
            mask |= (uint64_t) 1 << i;
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return mask;
}


/*
 * Connections and client addresses over all workers; an address with
 * connections on two workers counts twice (workers count their own).
 */

void
ngx_goim_shm_totals(ngx_uint_t *conns, ngx_uint_t *ips)
{
    ngx_uint_t  i;

    *conns = 0;
    *ips = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < NGX_GOIM_MAX_WORKERS; i++) {
        if (ngx_goim_shm->workers[i].pid) {
            *conns += ngx_goim_shm->workers[i].connections;
            *ips += ngx_goim_shm->workers[i].ips;
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


void
ngx_goim_shm_set_ips(ngx_uint_t ips)
{
    ngx_goim_shm->workers[ngx_goim_worker.widx].ips = ips;
}


/*
 * The node's lease: one worker at a time does the periodic Redis work.
 * Returns 1 when this worker holds it (renewed for ttl), 0 otherwise.
 * A holder that died or stopped renewing loses it; the wall clock is
 * used since workers of different generations compare the times.
 */

ngx_uint_t
ngx_goim_shm_lease(ngx_msec_t ttl)
{
    uint64_t     now;
    ngx_uint_t   held;
    ngx_pid_t    old;
    ngx_time_t  *tp;

    tp = ngx_timeofday();
    now = (uint64_t) tp->sec * 1000 + tp->msec;
    held = 0;
    old = ngx_pid;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    if (ngx_goim_shm->lease_pid != ngx_pid
        && ngx_goim_shm->lease_pid != 0
        && ngx_goim_shm->lease_expires > now
        && ngx_goim_pid_alive(ngx_goim_shm->lease_pid))
    {
        goto done;
    }

    if (ngx_goim_shm->lease_pid != ngx_pid) {
        old = ngx_goim_shm->lease_pid;
        ngx_goim_shm->lease_pid = ngx_pid;
    }

    ngx_goim_shm->lease_expires = now + ttl;
    held = 1;

done:

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    if (old != ngx_pid) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "goim: this worker took the node's lease "
                      "(previous holder: %P)", old);
    }

    return held;
}


/* a worker that shuts down hands the lease on at once */

void
ngx_goim_shm_lease_release(void)
{
    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    if (ngx_goim_shm->lease_pid == ngx_pid) {
        ngx_goim_shm->lease_pid = 0;
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/*
 * Replaces the cluster's room counts; names must be sorted and unique.
 * Readers trust them until expires (then this node's counts again).
 */

ngx_int_t
ngx_goim_shm_online_publish(ngx_str_t *names, ngx_uint_t *counts,
    ngx_uint_t n, time_t expires)
{
    u_char                 *p;
    size_t                  size;
    ngx_uint_t              i;
    ngx_goim_shm_online_t  *o, *old;

    size = offsetof(ngx_goim_shm_online_t, rooms)
           + (n + 1) * sizeof(ngx_goim_shm_online_room_t);

    for (i = 0; i < n; i++) {
        size += names[i].len;
    }

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    o = ngx_slab_alloc_locked(ngx_goim_shpool, size);
    if (o == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        ngx_goim_shm_nomem("the cluster's online counts");
        return NGX_ERROR;
    }

    o->expires = expires;
    o->n = n;
    p = (u_char *) &o->rooms[n + 1];

    for (i = 0; i < n; i++) {
        o->rooms[i].name = p;
        o->rooms[i].len = names[i].len;
        o->rooms[i].count = counts[i] > 0xffffffff ? 0xffffffff
                                                  : (uint32_t) counts[i];
        p = ngx_cpymem(p, names[i].data, names[i].len);
    }

    old = ngx_goim_shm->online;
    ngx_goim_shm->online = o;

    if (old) {
        ngx_slab_free_locked(ngx_goim_shpool, old);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


static ngx_goim_shm_online_t *
ngx_goim_shm_online_locked(void)
{
    ngx_goim_shm_online_t  *o;

    o = ngx_goim_shm->online;

    if (o == NULL || o->expires < ngx_time()) {
        return NULL;
    }

    return o;
}


/* NGX_OK with the room's cluster count, NGX_DECLINED: none known */

ngx_int_t
ngx_goim_shm_online_get(u_char *name, size_t len, ngx_uint_t *count)
{
    ngx_int_t               rc, c;
    ngx_uint_t              lo, hi, mid;
    ngx_goim_shm_online_t  *o;

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    o = ngx_goim_shm_online_locked();
    lo = 0;
    hi = o ? o->n : 0;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = ngx_memn2cmp(name, o->rooms[mid].name, len, o->rooms[mid].len);

        if (c == 0) {
            *count = o->rooms[mid].count;
            rc = NGX_OK;
            break;
        }

        if (c < 0) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return rc;
}


/* the cluster's rooms, copied into the pool; NGX_DECLINED: none known */

ngx_int_t
ngx_goim_shm_online_list(ngx_pool_t *pool, ngx_str_t **names,
    ngx_uint_t **counts, ngx_uint_t *n)
{
    u_char                 *p;
    size_t                  size;
    ngx_uint_t              i;
    ngx_goim_shm_online_t  *o;

    *n = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    o = ngx_goim_shm_online_locked();

    if (o == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_DECLINED;
    }

    size = 0;

    for (i = 0; i < o->n; i++) {
        size += o->rooms[i].len;
    }

    *names = ngx_palloc(pool, (o->n + 1) * sizeof(ngx_str_t));
    *counts = ngx_palloc(pool, (o->n + 1) * sizeof(ngx_uint_t));
    p = ngx_pnalloc(pool, size + 1);

    if (*names == NULL || *counts == NULL || p == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_ERROR;
    }

    for (i = 0; i < o->n; i++) {
        (*names)[i].data = p;
        (*names)[i].len = o->rooms[i].len;
        (*counts)[i] = o->rooms[i].count;
        p = ngx_cpymem(p, o->rooms[i].name, o->rooms[i].len);
    }

    *n = o->n;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


/* appends a message to a slot's inbox; NGX_BUSY when it is full */

ngx_int_t
ngx_goim_shm_inbox_put(ngx_uint_t widx, void *msg, ngx_pid_t *pid,
    ngx_uint_t *wake)
{
    ngx_goim_shm_worker_t  *sw;

    sw = &ngx_goim_shm->workers[widx];

    if (sw->pid == 0) {
        return NGX_DECLINED;
    }

    if (sw->inbox_tail - sw->inbox_head >= sw->inbox_size) {
        return NGX_BUSY;
    }

    *wake = (sw->inbox_tail == sw->inbox_head);
    *pid = sw->pid;

    sw->inbox[sw->inbox_tail % sw->inbox_size] = msg;
    sw->inbox_tail++;

    return NGX_OK;
}


/* takes up to max messages from this worker's inbox */

ngx_uint_t
ngx_goim_shm_inbox_take(void **msgs, ngx_uint_t max)
{
    ngx_uint_t              n;
    ngx_goim_shm_worker_t  *sw;

    sw = &ngx_goim_shm->workers[ngx_goim_worker.widx];
    n = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    while (sw->inbox_head != sw->inbox_tail && n < max) {
        msgs[n++] = sw->inbox[sw->inbox_head % sw->inbox_size];
        sw->inbox_head++;
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return n;
}


ngx_slab_pool_t *
ngx_goim_shm_pool(void)
{
    return ngx_goim_shpool;
}


#define ngx_goim_metric(name, type, help)                                    \
    "# HELP goim_" name " " help "\n# TYPE goim_" name " " type "\n"


/*
 * The node's metrics in Prometheus text format, one series per worker
 * slot (label "worker", with the pid).
 */

ngx_int_t
ngx_goim_shm_status(ngx_pool_t *pool, ngx_str_t *out)
{
    u_char                 *p, *last;
    size_t                  size, used, total;
    ngx_uint_t              i, n, depth;
    ngx_msec_t              age;
    ngx_goim_imsg_t        *m;
    ngx_goim_stats_t        st[NGX_GOIM_MAX_WORKERS];
    ngx_goim_shm_worker_t  *sw;
    ngx_pid_t               pids[NGX_GOIM_MAX_WORKERS];
    ngx_uint_t              slots[NGX_GOIM_MAX_WORKERS];
    ngx_uint_t              conns[NGX_GOIM_MAX_WORKERS];
    ngx_uint_t              depths[NGX_GOIM_MAX_WORKERS];
    ngx_msec_t              ages[NGX_GOIM_MAX_WORKERS];

    n = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < NGX_GOIM_MAX_WORKERS; i++) {
        sw = &ngx_goim_shm->workers[i];

        if (sw->pid == 0) {
            continue;
        }

        depth = sw->inbox_tail - sw->inbox_head;
        age = 0;

        if (depth) {
            m = sw->inbox[sw->inbox_head % sw->inbox_size];
            age = ngx_current_msec - m->time;
        }

        slots[n] = i;
        pids[n] = sw->pid;
        conns[n] = sw->connections;
        depths[n] = depth;
        ages[n] = age;
        st[n] = sw->stats;
        n++;
    }

    total = ngx_goim_shpool->end - (u_char *) ngx_goim_shpool;
    used = total - ngx_goim_shpool->pfree * ngx_pagesize;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    size = 8192 + n * 5120;

    p = ngx_pnalloc(pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    last = p + size;

#define ngx_goim_series(name, labels, value)                                  \
    for (i = 0; i < n; i++) {                                                 \
        p = ngx_slprintf(p, last, "goim_" name "{worker=\"%ui\",pid=\"%P\""  \
                         labels "} %uA\n", slots[i], pids[i], value);        \
    }

    p = ngx_slprintf(p, last, ngx_goim_metric("connections", "gauge",
                     "Open goim connections by transport."));
    ngx_goim_series("connections", ",transport=\"tcp\"",
                    st[i].conns[NGX_GOIM_TCP]);
    ngx_goim_series("connections", ",transport=\"ws\"",
                    st[i].conns[NGX_GOIM_WS]);

    p = ngx_slprintf(p, last, ngx_goim_metric("clients_refused_total",
                     "counter", "Client connections refused above "
                     "goim_max_clients."));
    ngx_goim_series("clients_refused_total", "", st[i].clients_refused);

    p = ngx_slprintf(p, last, ngx_goim_metric("online", "gauge",
                     "Authenticated connections in the registry."));
    ngx_goim_series("online", "", (ngx_atomic_uint_t) conns[i]);

    p = ngx_slprintf(p, last, ngx_goim_metric("rooms", "gauge",
                     "Rooms with members on the worker."));
    ngx_goim_series("rooms", "", st[i].rooms);

    p = ngx_slprintf(p, last, ngx_goim_metric("auth_total", "counter",
                     "Auth packets by result."));
    ngx_goim_series("auth_total", ",result=\"ok\"", st[i].auth_ok);
    ngx_goim_series("auth_total", ",result=\"failed\"", st[i].auth_failed);

    p = ngx_slprintf(p, last, ngx_goim_metric("pushes_total", "counter",
                     "Pushes accepted by the API on the worker, by type."));
    ngx_goim_series("pushes_total", ",type=\"keys\"", st[i].push_keys);
    ngx_goim_series("pushes_total", ",type=\"mids\"", st[i].push_mids);
    ngx_goim_series("pushes_total", ",type=\"room\"", st[i].push_room);
    ngx_goim_series("pushes_total", ",type=\"all\"", st[i].push_all);

    p = ngx_slprintf(p, last, ngx_goim_metric("messages_written_total",
                     "counter", "Push messages written to sockets."));
    ngx_goim_series("messages_written_total", "", st[i].messages_out);

    p = ngx_slprintf(p, last, ngx_goim_metric("bytes_written_total",
                     "counter", "Bytes written to goim sockets."));
    ngx_goim_series("bytes_written_total", "", st[i].bytes_out);

    p = ngx_slprintf(p, last, ngx_goim_metric("room_batches_total",
                     "counter", "Merged room frames sent after the flush "
                     "interval."));
    ngx_goim_series("room_batches_total", "", st[i].room_batches);

    p = ngx_slprintf(p, last, ngx_goim_metric("dropped_total", "counter",
                     "Pushes not delivered, by reason."));
    ngx_goim_series("dropped_total", ",reason=\"queue_full\"",
                    st[i].drop_queue_full);
    ngx_goim_series("dropped_total", ",reason=\"inbox_full\"",
                    st[i].drop_inbox_full);

    p = ngx_slprintf(p, last, ngx_goim_metric("inbox_depth", "gauge",
                     "Messages waiting in the worker's inbox."));
    ngx_goim_series("inbox_depth", "", (ngx_atomic_uint_t) depths[i]);

    p = ngx_slprintf(p, last, ngx_goim_metric("inbox_oldest_seconds",
                     "gauge", "Age of the oldest message in the inbox."));

    for (i = 0; i < n; i++) {
        p = ngx_slprintf(p, last,
                         "goim_inbox_oldest_seconds{worker=\"%ui\","
                         "pid=\"%P\"} %ui.%03ui\n", slots[i], pids[i],
                         (ngx_uint_t) (ages[i] / 1000),
                         (ngx_uint_t) (ages[i] % 1000));
    }

    p = ngx_slprintf(p, last, ngx_goim_metric("redis_up", "gauge",
                     "The worker's Redis connection is up (goim_redis)."));
    ngx_goim_series("redis_up", "", st[i].redis_up);

    p = ngx_slprintf(p, last, ngx_goim_metric("redis_commands_total",
                     "counter", "Redis commands sent."));
    ngx_goim_series("redis_commands_total", "", st[i].redis_commands);

    p = ngx_slprintf(p, last, ngx_goim_metric("redis_failed_total",
                     "counter", "Redis commands failed: error reply, "
                     "connection lost, or not sent while disconnected."));
    ngx_goim_series("redis_failed_total", "", st[i].redis_failed);

    p = ngx_slprintf(p, last, ngx_goim_metric("redis_timeouts_total",
                     "counter", "Redis commands over goim_redis_timeout."));
    ngx_goim_series("redis_timeouts_total", "", st[i].redis_timeouts);

    p = ngx_slprintf(p, last, ngx_goim_metric("redis_latency_ms_total",
                     "counter", "Sum of Redis reply latencies (divide by "
                     "replies for the mean)."));
    ngx_goim_series("redis_latency_ms_total", "", st[i].redis_latency_ms);

    p = ngx_slprintf(p, last, ngx_goim_metric("kafka_up", "gauge",
                     "The worker's Kafka producer reaches a broker "
                     "(goim_kafka)."));
    ngx_goim_series("kafka_up", "", st[i].kafka_up);

    p = ngx_slprintf(p, last, ngx_goim_metric("kafka_messages_total",
                     "counter", "PushMsg records given to the producer, "
                     "by outcome."));
    ngx_goim_series("kafka_messages_total", ",state=\"produced\"",
                    st[i].kafka_produced);
    ngx_goim_series("kafka_messages_total", ",state=\"acked\"",
                    st[i].kafka_acked);
    ngx_goim_series("kafka_messages_total", ",state=\"failed\"",
                    st[i].kafka_failed);
    ngx_goim_series("kafka_messages_total", ",state=\"queue_full\"",
                    st[i].kafka_queue_full);

    p = ngx_slprintf(p, last, ngx_goim_metric("kafka_in_flight", "gauge",
                     "PushMsg records waiting for the broker's ack."));
    ngx_goim_series("kafka_in_flight", "", st[i].kafka_in_flight);

    p = ngx_slprintf(p, last, ngx_goim_metric("kafka_latency_ms_total",
                     "counter", "Sum of produce-to-ack latencies (divide "
                     "by acked for the mean)."));
    ngx_goim_series("kafka_latency_ms_total", "", st[i].kafka_latency_ms);

    p = ngx_slprintf(p, last, ngx_goim_metric("internal_requests_total",
                     "counter", "Requests to goim_internal_push, by "
                     "result."));
    ngx_goim_series("internal_requests_total", ",result=\"ok\"",
                    st[i].internal_requests);
    ngx_goim_series("internal_requests_total", ",result=\"forbidden\"",
                    st[i].internal_forbidden);
    ngx_goim_series("internal_requests_total", ",result=\"invalid\"",
                    st[i].internal_invalid);

    p = ngx_slprintf(p, last, ngx_goim_metric("internal_pushes_total",
                     "counter", "Pushes accepted from goim_internal_push "
                     "bodies."));
    ngx_goim_series("internal_pushes_total", "", st[i].internal_pushes);

#undef ngx_goim_series

    p = ngx_slprintf(p, last, ngx_goim_metric("shm_bytes", "gauge",
                     "The shared zone, used and free."));
    p = ngx_slprintf(p, last, "goim_shm_bytes{state=\"used\"} %uz\n"
                     "goim_shm_bytes{state=\"free\"} %uz\n",
                     used, total - used);

    out->len = p - out->data;

    return NGX_OK;
}


/* shared memory exhaustion: an error to the caller, a log line a second */

void
ngx_goim_shm_nomem(const char *what)
{
    static time_t  logged;

    if (logged != ngx_time()) {
        logged = ngx_time();
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "goim: shared zone exhausted, could not register %s; "
                      "raise the size in \"goim_zone\"", what);
    }
}


/*
 * Whether every live worker's sessions are in Redis: a worker's slot is
 * dirty from the loss of its Redis connection until it wrote them all
 * again (ngx_goim_session.c).  A dead worker's slot does not count.
 */

void
ngx_goim_shm_sessions_dirty(void)
{
    if (ngx_goim_worker.widx >= 0) {
        ngx_goim_shm->sessions_dirty[ngx_goim_worker.widx] = 1;
    }
}


/* clears this worker's flag; 1 when every live slot is now clean */

ngx_uint_t
ngx_goim_shm_sessions_clean(void)
{
    if (ngx_goim_worker.widx >= 0) {
        ngx_goim_shm->sessions_dirty[ngx_goim_worker.widx] = 0;
    }

    return ngx_goim_shm_sessions_ready();
}


ngx_uint_t
ngx_goim_shm_sessions_ready(void)
{
    ngx_uint_t   i, ready;
    ngx_pid_t    pid;

    ready = 1;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < NGX_GOIM_MAX_WORKERS; i++) {
        pid = ngx_goim_shm->workers[i].pid;

        if (pid && ngx_goim_shm->sessions_dirty[i]
            && (pid == ngx_pid || ngx_goim_pid_alive(pid)))
        {
            ready = 0;
            break;
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return ready;
}


/*
 * The known comets: the online pass merges every record it reads, with
 * the record's expiry by this host's clock; an entry is never dropped
 * before that, so a record lost in a Redis restart leaves its comet
 * known while one that expired naturally drops out.
 */

void
ngx_goim_shm_comet_seen(u_char *id, size_t len, time_t expires)
{
    time_t                 now;
    ngx_uint_t             i;
    ngx_goim_shm_comet_t  *c, *free;
    static time_t          logged;

    if (len == 0 || len > NGX_GOIM_SHM_COMET_ID) {
        return;
    }

    now = ngx_time();
    free = NULL;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < NGX_GOIM_SHM_COMETS; i++) {
        c = &ngx_goim_shm->comets[i];

        if (c->expires && c->len == len && ngx_memcmp(c->id, id, len) == 0) {
            c->expires = expires;
            goto done;
        }

        if (free == NULL && c->expires <= now) {
            free = c;
        }
    }

    if (free) {
        free->expires = expires;
        free->len = len;
        ngx_memcpy(free->id, id, len);

    } else if (logged != now) {
        logged = now;
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: more than %d comets in the registry, \"%*s\" "
                      "is not checked after a Redis restart",
                      NGX_GOIM_SHM_COMETS, len, id);
    }

done:

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/* the ids of the known comets whose record has not expired yet */

ngx_int_t
ngx_goim_shm_comets_alive(ngx_pool_t *pool, ngx_str_t **ids, ngx_uint_t *n)
{
    time_t                 now;
    ngx_int_t              rc;
    ngx_uint_t             i;
    ngx_str_t             *out;
    ngx_goim_shm_comet_t  *c;

    now = ngx_time();
    *n = 0;
    rc = NGX_OK;

    /* one more for the caller's own id */
    out = ngx_palloc(pool, (NGX_GOIM_SHM_COMETS + 1) * sizeof(ngx_str_t));
    if (out == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    for (i = 0; i < NGX_GOIM_SHM_COMETS; i++) {
        c = &ngx_goim_shm->comets[i];

        if (c->expires <= now) {
            continue;
        }

        out[*n].len = c->len;
        out[*n].data = ngx_pnalloc(pool, c->len);
        if (out[*n].data == NULL) {
            rc = NGX_ERROR;
            break;
        }

        ngx_memcpy(out[*n].data, c->id, c->len);
        (*n)++;
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    *ids = out;

    return rc;
}
