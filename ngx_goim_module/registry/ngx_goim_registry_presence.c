
/*
 * goim for nginx: who is in a room, node-wide (goim_presence on,
 * docs/PROTOCOL.md 2.12).  Each membership of a connection in a room is
 * a record in the shared zone: key, mid, platform, the slot of its
 * worker and since when.  A room's records are ordered by a sequence
 * number, the cursor of a paged listing; the room also counts its
 * distinct mids, so its stats are two words read under the lock.
 *
 * The purge of a dead worker's slot takes its records out of their
 * rooms and, when someone is to hear of it (join and leave events, or
 * presence in Redis), keeps them in a list of departed records; a live
 * worker takes them from there and tells their leaves (comet/), outside
 * the lock.  Their room stays until the last of them is taken.
 */


#include "ngx_goim_registry_shm.h"


typedef struct {
    ngx_str_node_t         sn;          /* the room id */
    ngx_rbtree_t           members;     /* by node.key: the record's seq */
    ngx_rbtree_node_t      members_sentinel;
    ngx_rbtree_t           mids;        /* by node.key: the mid */
    ngx_rbtree_node_t      mids_sentinel;
    ngx_uint_t             nmembers;
    ngx_uint_t             nmids;       /* distinct mids above 0 */
    ngx_uint_t             departing;   /* departed records of the room */
    u_char                 name[1];
} ngx_goim_shm_presence_room_t;


typedef struct {
    ngx_rbtree_node_t      node;        /* key: the mid */
    ngx_uint_t             count;
} ngx_goim_shm_presence_mid_t;


/* a departed record is linked into ngx_goim_shm->departed by node.parent */
struct ngx_goim_shm_presence_s {
    ngx_rbtree_node_t               node;        /* key: seq */
    ngx_goim_shm_presence_room_t   *room;
    int64_t                         mid;
    ngx_uint_t                      widx;
    ngx_uint_t                      wgen;
    time_t                          since;
    u_char                          platform_len;
    u_char                          platform[GOIM_PRESENCE_PLATFORM];
    u_char                          key_len;
    u_char                          key[1];
};


static void ngx_goim_registry_presence_del_locked(
    ngx_goim_shm_presence_t *p);
static void ngx_goim_registry_presence_unlink_locked(
    ngx_goim_shm_presence_t *p);
static void ngx_goim_registry_presence_room_free_locked(
    ngx_goim_shm_presence_room_t *r);


/*
 * A membership of this worker's connection.  NULL when the zone is
 * exhausted (logged): the connection is in the room, only not listed.
 */

ngx_goim_shm_presence_t *
ngx_goim_registry_presence_add(ngx_str_t *room, uint32_t hash,
    ngx_str_t *key, int64_t mid, ngx_str_t *platform)
{
    ngx_rbtree_node_t              *node;
    ngx_goim_shm_presence_t        *p;
    ngx_goim_shm_presence_mid_t    *m;
    ngx_goim_shm_presence_room_t   *r;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    r = (ngx_goim_shm_presence_room_t *)
            ngx_str_rbtree_lookup(&ngx_goim_shm->presence, room, hash);

    if (r == NULL) {
        r = ngx_slab_calloc_locked(ngx_goim_shpool,
                                   offsetof(ngx_goim_shm_presence_room_t,
                                            name)
                                   + room->len);
        if (r == NULL) {
            goto nomem;
        }

        ngx_memcpy(r->name, room->data, room->len);
        r->sn.str.data = r->name;
        r->sn.str.len = room->len;
        r->sn.node.key = hash;
        ngx_rbtree_init(&r->members, &r->members_sentinel,
                        ngx_rbtree_insert_value);
        ngx_rbtree_init(&r->mids, &r->mids_sentinel,
                        ngx_rbtree_insert_value);
        ngx_rbtree_insert(&ngx_goim_shm->presence, &r->sn.node);
    }

    p = ngx_slab_alloc_locked(ngx_goim_shpool,
                              offsetof(ngx_goim_shm_presence_t, key)
                              + key->len);
    if (p == NULL) {
        goto nomem_room;
    }

    if (mid > 0) {
        node = r->mids.root;
        m = NULL;

        while (node != r->mids.sentinel) {
            if ((ngx_rbtree_key_t) mid == node->key) {
                m = (ngx_goim_shm_presence_mid_t *) node;
                break;
            }

            node = ((ngx_rbtree_key_t) mid < node->key) ? node->left
                                                        : node->right;
        }

        if (m == NULL) {
            m = ngx_slab_alloc_locked(ngx_goim_shpool,
                                      sizeof(ngx_goim_shm_presence_mid_t));
            if (m == NULL) {
                ngx_slab_free_locked(ngx_goim_shpool, p);
                goto nomem_room;
            }

            m->node.key = (ngx_rbtree_key_t) mid;
            m->count = 0;
            ngx_rbtree_insert(&r->mids, &m->node);
            r->nmids++;
        }

        m->count++;
    }

    p->node.key = ++ngx_goim_shm->presence_seq;
    p->room = r;
    p->mid = mid;
    p->widx = ngx_goim_worker.widx;
    p->wgen = ngx_goim_worker.wgen;
    p->since = ngx_time();
    p->platform_len = (u_char) ngx_min(platform->len, GOIM_PRESENCE_PLATFORM);

    if (p->platform_len) {
        ngx_memcpy(p->platform, platform->data, p->platform_len);
    }
    p->key_len = (u_char) key->len;
    ngx_memcpy(p->key, key->data, key->len);

    ngx_rbtree_insert(&r->members, &p->node);
    r->nmembers++;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return p;

nomem_room:

    ngx_goim_registry_presence_room_free_locked(r);

nomem:

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    ngx_goim_registry_nomem("a presence record");

    return NULL;
}


void
ngx_goim_registry_presence_del(ngx_goim_shm_presence_t *p)
{
    ngx_shmtx_lock(&ngx_goim_shpool->mutex);
    ngx_goim_registry_presence_del_locked(p);
    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


static void
ngx_goim_registry_presence_del_locked(ngx_goim_shm_presence_t *p)
{
    ngx_goim_shm_presence_room_t  *r;

    r = p->room;

    ngx_goim_registry_presence_unlink_locked(p);
    ngx_slab_free_locked(ngx_goim_shpool, p);
    ngx_goim_registry_presence_room_free_locked(r);
}


/* the record leaves its room's members and mids; the room is kept */

static void
ngx_goim_registry_presence_unlink_locked(ngx_goim_shm_presence_t *p)
{
    ngx_rbtree_node_t              *node;
    ngx_goim_shm_presence_mid_t    *m;
    ngx_goim_shm_presence_room_t   *r;

    r = p->room;

    if (p->mid > 0) {
        node = r->mids.root;

        while (node != r->mids.sentinel) {
            if ((ngx_rbtree_key_t) p->mid == node->key) {
                m = (ngx_goim_shm_presence_mid_t *) node;

                if (--m->count == 0) {
                    ngx_rbtree_delete(&r->mids, node);
                    ngx_slab_free_locked(ngx_goim_shpool, m);
                    r->nmids--;
                }

                break;
            }

            node = ((ngx_rbtree_key_t) p->mid < node->key) ? node->left
                                                           : node->right;
        }
    }

    ngx_rbtree_delete(&r->members, &p->node);
    r->nmembers--;
}


/* a room without members and departed records goes */

static void
ngx_goim_registry_presence_room_free_locked(ngx_goim_shm_presence_room_t *r)
{
    if (r->nmembers == 0 && r->departing == 0) {
        ngx_rbtree_delete(&ngx_goim_shm->presence, &r->sn.node);
        ngx_slab_free_locked(ngx_goim_shpool, r);
    }
}


/*
 * The record's room (its id in the zone: valid while the record is),
 * when its connection joined it, and how many of the node's connections
 * of its mid are in the room (0 for mid 0)
 */

void
ngx_goim_registry_presence_get(ngx_goim_shm_presence_t *p, ngx_str_t *room,
    time_t *since, ngx_uint_t *mids)
{
    ngx_rbtree_node_t              *node;
    ngx_goim_shm_presence_room_t   *r;

    *mids = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    *since = p->since;
    r = p->room;
    *room = r->sn.str;

    if (p->mid > 0) {
        node = r->mids.root;

        while (node != r->mids.sentinel) {
            if ((ngx_rbtree_key_t) p->mid == node->key) {
                *mids = ((ngx_goim_shm_presence_mid_t *) node)->count;
                break;
            }

            node = ((ngx_rbtree_key_t) p->mid < node->key) ? node->left
                                                           : node->right;
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/*
 * Up to max members of a room whose seq is above cursor, in seq order,
 * copied into the pool; *next is the cursor of the next page, 0 when
 * there is none.  The room's stats come with it.
 */

ngx_int_t
ngx_goim_registry_presence_list(ngx_pool_t *pool, ngx_str_t *room,
    uint64_t cursor, ngx_uint_t max, ngx_goim_presence_member_t **out,
    ngx_uint_t *n, uint64_t *next, ngx_goim_presence_stats_t *stats)
{
    ngx_rbtree_node_t              *node, *sentinel, *found;
    ngx_goim_shm_presence_t        *p;
    ngx_goim_presence_member_t     *m;
    ngx_goim_shm_presence_room_t   *r;

    *n = 0;
    *next = 0;
    ngx_memzero(stats, sizeof(ngx_goim_presence_stats_t));

    *out = ngx_palloc(pool, (max + 1) * sizeof(ngx_goim_presence_member_t));
    if (*out == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    r = (ngx_goim_shm_presence_room_t *)
            ngx_goim_str_lookup(&ngx_goim_shm->presence, room->data,
                                room->len);

    if (r == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_OK;
    }

    stats->connections = r->nmembers;
    stats->members = r->nmids;

    /* the first record above the cursor */

    sentinel = r->members.sentinel;
    node = r->members.root;
    found = NULL;

    while (node != sentinel) {
        if (node->key > cursor) {
            found = node;
            node = node->left;

        } else {
            node = node->right;
        }
    }

    for (node = found;
         node && *n < max;
         node = ngx_rbtree_next(&r->members, node))
    {
        p = (ngx_goim_shm_presence_t *) node;
        m = &(*out)[*n];

        m->seq = node->key;
        m->mid = p->mid;
        m->since = p->since;
        m->pid = ngx_goim_shm->workers[p->widx].pid;

        m->key.data = ngx_pnalloc(pool, p->key_len + p->platform_len);
        if (m->key.data == NULL) {
            ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
            return NGX_ERROR;
        }

        m->key.len = p->key_len;
        ngx_memcpy(m->key.data, p->key, p->key_len);

        m->platform.data = m->key.data + p->key_len;
        m->platform.len = p->platform_len;
        ngx_memcpy(m->platform.data, p->platform, p->platform_len);

        (*n)++;
    }

    if (node) {
        *next = (*out)[*n - 1].seq;
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


void
ngx_goim_registry_presence_stats(ngx_str_t *room,
    ngx_goim_presence_stats_t *stats)
{
    ngx_goim_shm_presence_room_t  *r;

    ngx_memzero(stats, sizeof(ngx_goim_presence_stats_t));

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    r = (ngx_goim_shm_presence_room_t *)
            ngx_goim_str_lookup(&ngx_goim_shm->presence, room->data,
                                room->len);

    if (r) {
        stats->connections = r->nmembers;
        stats->members = r->nmids;
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/* the ids of the rooms with members on the node, copied into the pool */

ngx_int_t
ngx_goim_registry_presence_rooms(ngx_pool_t *pool, ngx_str_t **names,
    ngx_uint_t *n)
{
    ngx_uint_t                      cap;
    ngx_rbtree_node_t              *node, *sentinel;
    ngx_goim_shm_presence_room_t   *r;

    *n = 0;
    cap = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    sentinel = ngx_goim_shm->presence.sentinel;

    if (ngx_goim_shm->presence.root != sentinel) {
        for (node = ngx_rbtree_min(ngx_goim_shm->presence.root, sentinel);
             node;
             node = ngx_rbtree_next(&ngx_goim_shm->presence, node))
        {
            cap++;
        }
    }

    *names = ngx_palloc(pool, (cap + 1) * sizeof(ngx_str_t));
    if (*names == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_ERROR;
    }

    if (cap) {
        for (node = ngx_rbtree_min(ngx_goim_shm->presence.root, sentinel);
             node;
             node = ngx_rbtree_next(&ngx_goim_shm->presence, node))
        {
            r = (ngx_goim_shm_presence_room_t *) node;

            (*names)[*n].data = ngx_pnalloc(pool, r->sn.str.len + 1);
            if ((*names)[*n].data == NULL) {
                ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
                return NGX_ERROR;
            }

            ngx_memcpy((*names)[*n].data, r->name, r->sn.str.len);
            (*names)[*n].len = r->sn.str.len;
            (*n)++;
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


/*
 * A dead slot's records leave their rooms (every room is walked: a
 * purge is rare); they are kept as departed when their leaves are to be
 * told (goim_presence_events) or removed from Redis (goim_presence in
 * a cluster), freed otherwise.
 */

void
ngx_goim_registry_presence_purge_locked(ngx_uint_t widx, ngx_uint_t gen)
{
    ngx_uint_t                      keep, last;
    ngx_goim_conf_t                *gcf;
    ngx_rbtree_node_t              *rn, *rnext, *node, *next;
    ngx_goim_shm_presence_t        *p;
    ngx_goim_shm_presence_room_t   *r;

    if (ngx_goim_shm->presence.root == ngx_goim_shm->presence.sentinel) {
        return;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    keep = gcf->presence_events
           || (gcf->presence && ngx_goim_mode() != NGX_GOIM_EMBEDDED);

    for (rn = ngx_rbtree_min(ngx_goim_shm->presence.root,
                             ngx_goim_shm->presence.sentinel);
         rn;
         rn = rnext)
    {
        rnext = ngx_rbtree_next(&ngx_goim_shm->presence, rn);
        r = (ngx_goim_shm_presence_room_t *) rn;

        if (r->nmembers == 0) {
            /* only departed records: nothing of this slot */
            continue;
        }

        node = ngx_rbtree_min(r->members.root, r->members.sentinel);

        while (node) {
            next = ngx_rbtree_next(&r->members, node);
            p = (ngx_goim_shm_presence_t *) node;

            if (p->widx == widx && p->wgen == gen) {
                /* the last record may free the room: stop there */
                last = (r->nmembers == 1);

                if (keep) {
                    ngx_goim_registry_presence_unlink_locked(p);
                    r->departing++;
                    p->node.parent = (ngx_rbtree_node_t *)
                                         ngx_goim_shm->departed;
                    ngx_goim_shm->departed = p;

                } else {
                    ngx_goim_registry_presence_del_locked(p);
                }

                if (last) {
                    break;
                }
            }

            node = next;
        }
    }
}


/*
 * Takes up to max departed records, copied into out, and frees them:
 * the caller tells their leaves.  Each is taken by one worker.
 */

ngx_uint_t
ngx_goim_registry_presence_departed(ngx_goim_presence_departed_t *out,
    ngx_uint_t max)
{
    ngx_uint_t                      n;
    ngx_goim_shm_presence_t        *p;
    ngx_goim_shm_presence_room_t   *r;

    if (ngx_goim_shm->departed == NULL) {
        /* a word read without the lock: a miss waits for the next tick */
        return 0;
    }

    n = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    while (n < max && ngx_goim_shm->departed) {
        p = ngx_goim_shm->departed;
        ngx_goim_shm->departed = (ngx_goim_shm_presence_t *) p->node.parent;

        r = p->room;

        out[n].mid = p->mid;
        out[n].room_len = ngx_min(r->sn.str.len, GOIM_PRESENCE_ROOM);
        ngx_memcpy(out[n].room, r->name, out[n].room_len);
        out[n].key_len = p->key_len;
        ngx_memcpy(out[n].key, p->key, p->key_len);
        n++;

        ngx_slab_free_locked(ngx_goim_shpool, p);

        r->departing--;
        ngx_goim_registry_presence_room_free_locked(r);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return n;
}
