
/*
 * goim for nginx: who holds what, node-wide.  The registry maps each
 * connection key to the slot of the worker holding it, and each mid and
 * room to a mask of slots (rooms with a member count per slot), so that
 * a push reaches only the workers that hold its targets.  Masks and
 * counts have the zone's number of slots (goim_worker_slots).
 */


#include "ngx_goim_registry_shm.h"


typedef struct {
    ngx_goim_hnode_t       hn;
    ngx_uint_t             widx;
    ngx_uint_t             wgen;
    u_char                 key[1];
} ngx_goim_shm_key_t;


typedef struct {
    ngx_rbtree_node_t      node;        /* key: the mid */
    uint64_t               mask[1];     /* [nwords] */
} ngx_goim_shm_mid_t;


/* the mask's words, then the counts, then the name in one block */
typedef struct {
    ngx_goim_hnode_t       hn;
    uint32_t              *counts;      /* [nslots] */
    uint64_t               mask[1];     /* [nwords] */
} ngx_goim_shm_room_t;


typedef ngx_uint_t (*ngx_goim_shm_gone_pt)(ngx_rbtree_node_t *node,
    ngx_uint_t widx, ngx_uint_t gen);


static void ngx_goim_registry_sweep_locked(ngx_rbtree_t *tree,
    ngx_goim_shm_gone_pt gone, ngx_uint_t widx, ngx_uint_t gen);
static void ngx_goim_registry_hash_sweep_locked(ngx_goim_hash_t *h,
    ngx_uint_t (*gone)(ngx_goim_hnode_t *node, ngx_uint_t widx,
    ngx_uint_t gen), ngx_uint_t widx, ngx_uint_t gen);
static ngx_uint_t ngx_goim_registry_key_gone(ngx_goim_hnode_t *node,
    ngx_uint_t widx, ngx_uint_t gen);
static ngx_uint_t ngx_goim_registry_mid_gone(ngx_rbtree_node_t *node,
    ngx_uint_t widx, ngx_uint_t gen);
static ngx_uint_t ngx_goim_registry_room_gone(ngx_goim_hnode_t *node,
    ngx_uint_t widx, ngx_uint_t gen);
static ngx_goim_shm_mid_t *ngx_goim_registry_mid_lookup_locked(int64_t mid);
static ngx_uint_t ngx_goim_registry_words_empty(uint64_t *w);
static void ngx_goim_registry_words_or(ngx_goim_mask_t *mask, uint64_t *w);


/*
 * Registers a key for this worker.  *owner is the slot that held the
 * key before (another worker must kick its connection), or -1.
 * NGX_DECLINED: the zone is exhausted.
 */

ngx_int_t
ngx_goim_registry_key_add(ngx_str_t *key, uint32_t hash, ngx_int_t *owner)
{
    ngx_goim_shm_key_t  *k;
    ngx_goim_worker_t   *w = &ngx_goim_worker;

    *owner = -1;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    k = (ngx_goim_shm_key_t *) ngx_goim_hash_find(&ngx_goim_shm->keys,
                                                  key->data, key->len, hash);

    if (k) {
        if (k->widx != (ngx_uint_t) w->widx) {
            *owner = k->widx;
        }

        k->widx = w->widx;
        k->wgen = w->wgen;

        ngx_goim_shm->workers[w->widx].connections++;

        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_OK;
    }

    k = ngx_goim_registry_alloc_locked(offsetof(ngx_goim_shm_key_t, key)
                                       + key->len);
    if (k == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        ngx_goim_registry_nomem("a connection key");
        return NGX_DECLINED;
    }

    ngx_memcpy(k->key, key->data, key->len);
    k->hn.str.data = k->key;
    k->hn.str.len = key->len;
    k->hn.hash = hash;
    k->widx = w->widx;
    k->wgen = w->wgen;

    ngx_goim_hash_insert(&ngx_goim_shm->keys, &k->hn);

    ngx_goim_shm->workers[w->widx].connections++;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


/* removes the key only while it still names this worker */

void
ngx_goim_registry_key_del(ngx_str_t *key, uint32_t hash)
{
    ngx_goim_shm_key_t  *k;
    ngx_goim_worker_t   *w = &ngx_goim_worker;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    k = (ngx_goim_shm_key_t *) ngx_goim_hash_find(&ngx_goim_shm->keys,
                                                  key->data, key->len, hash);

    if (k && k->widx == (ngx_uint_t) w->widx && k->wgen == w->wgen) {
        ngx_goim_hash_delete(&ngx_goim_shm->keys, &k->hn);
        ngx_slab_free_locked(ngx_goim_shpool, k);
    }

    if (ngx_goim_shm->workers[w->widx].connections) {
        ngx_goim_shm->workers[w->widx].connections--;
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/* the slot holding the key, or -1 */

ngx_int_t
ngx_goim_registry_key_owner(u_char *key, size_t len)
{
    uint32_t             hash;
    ngx_int_t            widx;
    ngx_goim_shm_key_t  *k;

    hash = ngx_crc32_long(key, len);

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    k = (ngx_goim_shm_key_t *) ngx_goim_hash_find(&ngx_goim_shm->keys, key,
                                                  len, hash);

    widx = k ? (ngx_int_t) k->widx : -1;

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return widx;
}


static ngx_goim_shm_mid_t *
ngx_goim_registry_mid_lookup_locked(int64_t mid)
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
ngx_goim_registry_mid_set(int64_t mid, ngx_uint_t on)
{
    size_t               size;
    uint64_t             bit;
    ngx_uint_t           word;
    ngx_goim_shm_mid_t  *m;

    word = ngx_goim_worker.widx >> 6;
    bit = (uint64_t) 1 << (ngx_goim_worker.widx & 63);

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    m = ngx_goim_registry_mid_lookup_locked(mid);

    if (on) {
        if (m == NULL) {
            size = offsetof(ngx_goim_shm_mid_t, mask)
                   + ngx_goim_shm->nwords * sizeof(uint64_t);

            m = ngx_goim_registry_alloc_locked(size);
            if (m == NULL) {
                ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
                ngx_goim_registry_nomem("a member id");
                return;
            }

            ngx_memzero(m, size);
            m->node.key = (ngx_rbtree_key_t) mid;
            ngx_rbtree_insert(&ngx_goim_shm->mids, &m->node);
        }

        m->mask[word] |= bit;

    } else if (m) {
        m->mask[word] &= ~bit;

        if (ngx_goim_registry_words_empty(m->mask)) {
            ngx_rbtree_delete(&ngx_goim_shm->mids, &m->node);
            ngx_slab_free_locked(ngx_goim_shpool, m);
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


void
ngx_goim_registry_mid_mask(int64_t mid, ngx_goim_mask_t *mask)
{
    ngx_goim_shm_mid_t  *m;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    m = ngx_goim_registry_mid_lookup_locked(mid);

    if (m) {
        ngx_goim_registry_words_or(mask, m->mask);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/* adds delta to this worker's member count of a room */

void
ngx_goim_registry_room_count(ngx_str_t *name, uint32_t hash, ngx_int_t delta)
{
    size_t                size;
    uint64_t              bit;
    ngx_uint_t            widx, word;
    ngx_goim_shm_room_t  *r;

    widx = ngx_goim_worker.widx;
    word = widx >> 6;
    bit = (uint64_t) 1 << (widx & 63);

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    r = (ngx_goim_shm_room_t *) ngx_goim_hash_find(&ngx_goim_shm->rooms,
                                                   name->data, name->len,
                                                   hash);

    if (r == NULL) {
        if (delta <= 0) {
            ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
            return;
        }

        size = offsetof(ngx_goim_shm_room_t, mask)
               + ngx_goim_shm->nwords * sizeof(uint64_t)
               + ngx_goim_shm->nslots * sizeof(uint32_t);

        r = ngx_goim_registry_alloc_locked(size + name->len);
        if (r == NULL) {
            ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
            ngx_goim_registry_nomem("a room");
            return;
        }

        ngx_memzero(r, size);

        r->counts = (uint32_t *) &r->mask[ngx_goim_shm->nwords];
        r->hn.str.data = (u_char *) r + size;
        ngx_memcpy(r->hn.str.data, name->data, name->len);
        r->hn.str.len = name->len;
        r->hn.hash = hash;
        ngx_goim_hash_insert(&ngx_goim_shm->rooms, &r->hn);
    }

    if (delta < 0 && r->counts[widx] < (uint32_t) -delta) {
        r->counts[widx] = 0;

    } else {
        r->counts[widx] += delta;
    }

    ngx_goim_shm->online_gen++;

    if (r->counts[widx]) {
        r->mask[word] |= bit;

    } else {
        r->mask[word] &= ~bit;
    }

    if (ngx_goim_registry_words_empty(r->mask)) {
        ngx_goim_hash_delete(&ngx_goim_shm->rooms, &r->hn);
        ngx_slab_free_locked(ngx_goim_shpool, r);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/* a worker of this node has members in the room, the lock held */

ngx_uint_t
ngx_goim_registry_room_held_locked(u_char *name, size_t len)
{
    return ngx_goim_hash_find(&ngx_goim_shm->rooms, name, len,
                              ngx_crc32_long(name, len))
           != NULL;
}


/* adds the room's workers to mask, the lock held (room histories) */

void
ngx_goim_registry_room_mask_locked(u_char *name, size_t len,
    ngx_goim_mask_t *mask)
{
    ngx_goim_shm_room_t  *r;

    r = (ngx_goim_shm_room_t *) ngx_goim_hash_find(&ngx_goim_shm->rooms, name,
                                                   len,
                                                   ngx_crc32_long(name, len));

    if (r) {
        ngx_goim_registry_words_or(mask, r->mask);
    }
}


void
ngx_goim_registry_room_mask(u_char *name, size_t len, ngx_goim_mask_t *mask)
{
    uint32_t              hash;
    ngx_goim_shm_room_t  *r;

    /* the hash before the lock: the lock is the node's */
    hash = ngx_crc32_long(name, len);

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    r = (ngx_goim_shm_room_t *) ngx_goim_hash_find(&ngx_goim_shm->rooms, name,
                                                   len, hash);

    if (r) {
        ngx_goim_registry_words_or(mask, r->mask);
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
}


/* the room's members on this node, over all workers */

ngx_uint_t
ngx_goim_registry_room_total_locked(u_char *name, size_t len)
{
    ngx_uint_t            i, total;
    ngx_goim_shm_room_t  *r;

    total = 0;

    r = (ngx_goim_shm_room_t *) ngx_goim_hash_find(&ngx_goim_shm->rooms, name,
                                                   len,
                                                   ngx_crc32_long(name, len));

    if (r) {
        /* a slot out of the mask has a count of 0 */
        for (i = 0; i < ngx_goim_shm->nslots; i++) {
            total += r->counts[i];
        }
    }

    return total;
}


/* every room with its node-wide count, copied into the pool */

ngx_int_t
ngx_goim_registry_room_list(ngx_pool_t *pool, ngx_str_t **names,
    ngx_uint_t **counts, ngx_uint_t *n)
{
    ngx_uint_t            k, cap;
    ngx_goim_hnode_t     *node;
    ngx_goim_shm_room_t  *r;

    *n = 0;

    ngx_shmtx_lock(&ngx_goim_shpool->mutex);

    cap = ngx_goim_shm->rooms.n;

    *names = ngx_palloc(pool, (cap + 1) * sizeof(ngx_str_t));
    *counts = ngx_palloc(pool, (cap + 1) * sizeof(ngx_uint_t));

    if (*names == NULL || *counts == NULL) {
        ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
        return NGX_ERROR;
    }

    if (cap) {
        for (node = ngx_goim_hash_next(&ngx_goim_shm->rooms, NULL);
             node;
             node = ngx_goim_hash_next(&ngx_goim_shm->rooms, node))
        {
            r = (ngx_goim_shm_room_t *) node;

            (*names)[*n].data = ngx_pnalloc(pool, r->hn.str.len + 1);
            if ((*names)[*n].data == NULL) {
                ngx_shmtx_unlock(&ngx_goim_shpool->mutex);
                return NGX_ERROR;
            }

            ngx_memcpy((*names)[*n].data, r->hn.str.data, r->hn.str.len);
            (*names)[*n].len = r->hn.str.len;

            (*counts)[*n] = 0;

            for (k = 0; k < ngx_goim_shm->nslots; k++) {
                (*counts)[*n] += r->counts[k];
            }

            (*n)++;
        }
    }

    ngx_shmtx_unlock(&ngx_goim_shpool->mutex);

    return NGX_OK;
}


/* slot widx (of generation gen) goes: its keys, its bits and counts */

void
ngx_goim_registry_index_purge_locked(ngx_uint_t widx, ngx_uint_t gen)
{
    ngx_goim_registry_hash_sweep_locked(&ngx_goim_shm->keys,
                                        ngx_goim_registry_key_gone, widx,
                                        gen);
    ngx_goim_registry_sweep_locked(&ngx_goim_shm->mids,
                                   ngx_goim_registry_mid_gone, widx, gen);
    ngx_goim_registry_hash_sweep_locked(&ngx_goim_shm->rooms,
                                        ngx_goim_registry_room_gone, widx,
                                        gen);
}


/* frees the nodes of a tree that "gone" says no longer hold anything */

static void
ngx_goim_registry_sweep_locked(ngx_rbtree_t *tree, ngx_goim_shm_gone_pt gone,
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


/* the same for a hash table: the next node is taken before a delete */

static void
ngx_goim_registry_hash_sweep_locked(ngx_goim_hash_t *h,
    ngx_uint_t (*gone)(ngx_goim_hnode_t *node, ngx_uint_t widx,
    ngx_uint_t gen), ngx_uint_t widx, ngx_uint_t gen)
{
    ngx_goim_hnode_t  *node, *next;

    for (node = ngx_goim_hash_next(h, NULL); node; node = next) {
        next = ngx_goim_hash_next(h, node);

        if (gone(node, widx, gen)) {
            ngx_goim_hash_delete(h, node);
            ngx_slab_free_locked(ngx_goim_shpool, node);
        }
    }
}


static ngx_uint_t
ngx_goim_registry_key_gone(ngx_goim_hnode_t *node, ngx_uint_t widx,
    ngx_uint_t gen)
{
    ngx_goim_shm_key_t  *k = (ngx_goim_shm_key_t *) node;

    return k->widx == widx && k->wgen == gen;
}


static ngx_uint_t
ngx_goim_registry_mid_gone(ngx_rbtree_node_t *node, ngx_uint_t widx,
    ngx_uint_t gen)
{
    ngx_goim_shm_mid_t  *m = (ngx_goim_shm_mid_t *) node;

    m->mask[widx >> 6] &= ~((uint64_t) 1 << (widx & 63));

    return ngx_goim_registry_words_empty(m->mask);
}


static ngx_uint_t
ngx_goim_registry_room_gone(ngx_goim_hnode_t *node, ngx_uint_t widx,
    ngx_uint_t gen)
{
    ngx_goim_shm_room_t  *r = (ngx_goim_shm_room_t *) node;

    r->mask[widx >> 6] &= ~((uint64_t) 1 << (widx & 63));
    r->counts[widx] = 0;
    ngx_goim_shm->online_gen++;

    return ngx_goim_registry_words_empty(r->mask);
}


/* a mask of the zone: one word up to 64 slots */

static ngx_uint_t
ngx_goim_registry_words_empty(uint64_t *w)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_goim_shm->nwords; i++) {
        if (w[i]) {
            return 0;
        }
    }

    return 1;
}


static void
ngx_goim_registry_words_or(ngx_goim_mask_t *mask, uint64_t *w)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_goim_shm->nwords; i++) {
        mask->w[i] |= w[i];
    }
}
