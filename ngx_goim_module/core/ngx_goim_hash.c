
/*
 * goim for nginx: chained hash tables of strings keyed by their CRC32,
 * for the lookups on the push path (rooms, connection keys).  A table of
 * 100,000 names as an rbtree costs ~17 dependent cache misses a lookup;
 * here one bucket read and a chain of about one node.  The nodes live
 * in their owners' structures (the shared zone's or a worker's); the
 * table only links them.  The caller sizes the bucket array (a power of
 * two) and may move the nodes to a larger one with ngx_goim_hash_move().
 */


#include "ngx_goim_core.h"


void
ngx_goim_hash_init(ngx_goim_hash_t *h, ngx_goim_hnode_t **buckets,
    ngx_uint_t size)
{
    ngx_memzero(buckets, size * sizeof(ngx_goim_hnode_t *));

    h->buckets = buckets;
    h->mask = size - 1;
    h->n = 0;
}


ngx_goim_hnode_t *
ngx_goim_hash_find(ngx_goim_hash_t *h, u_char *s, size_t len, uint32_t hash)
{
    ngx_goim_hnode_t  *n;

    for (n = h->buckets[hash & h->mask]; n; n = n->next) {
        if (n->hash == hash
            && n->str.len == len
            && ngx_memcmp(n->str.data, s, len) == 0)
        {
            return n;
        }
    }

    return NULL;
}


/* the node's str and hash are set; it is not in the table yet */

void
ngx_goim_hash_insert(ngx_goim_hash_t *h, ngx_goim_hnode_t *node)
{
    ngx_goim_hnode_t  **b;

    b = &h->buckets[node->hash & h->mask];

    node->next = *b;
    *b = node;

    h->n++;
}


void
ngx_goim_hash_delete(ngx_goim_hash_t *h, ngx_goim_hnode_t *node)
{
    ngx_goim_hnode_t  **p;

    for (p = &h->buckets[node->hash & h->mask]; *p; p = &(*p)->next) {
        if (*p == node) {
            *p = node->next;
            node->next = NULL;
            h->n--;
            return;
        }
    }
}


/* every node into a new bucket array of size entries; the old one is
 * the caller's to free */

void
ngx_goim_hash_move(ngx_goim_hash_t *h, ngx_goim_hnode_t **buckets,
    ngx_uint_t size)
{
    ngx_uint_t          i, n;
    ngx_goim_hnode_t   *node, *next;
    ngx_goim_hash_t     t;

    n = h->n;

    ngx_goim_hash_init(&t, buckets, size);

    for (i = 0; i <= h->mask; i++) {
        for (node = h->buckets[i]; node; node = next) {
            next = node->next;
            ngx_goim_hash_insert(&t, node);
        }
    }

    *h = t;
    h->n = n;
}


/* the node after node in bucket order, or the first with node NULL */

ngx_goim_hnode_t *
ngx_goim_hash_next(ngx_goim_hash_t *h, ngx_goim_hnode_t *node)
{
    ngx_uint_t  i;

    if (node) {
        if (node->next) {
            return node->next;
        }

        i = (node->hash & h->mask) + 1;

    } else {
        i = 0;
    }

    for ( /* void */ ; i <= h->mask; i++) {
        if (h->buckets[i]) {
            return h->buckets[i];
        }
    }

    return NULL;
}


/* the largest power of two not over n, at least min */

ngx_uint_t
ngx_goim_hash_size(size_t n, ngx_uint_t min)
{
    ngx_uint_t  size;

    size = min;

    while (size * 2 <= n) {
        size *= 2;
    }

    return size;
}
