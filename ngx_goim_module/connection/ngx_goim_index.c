
/*
 * goim for nginx: the worker's indexes of its authenticated channels:
 * key -> channel, mid -> channels, and the list of all of them, kept in
 * step with the shared registry's view of this worker.
 */


#include "ngx_goim_connection.h"


static ngx_int_t ngx_goim_mid_add(ngx_goim_channel_t *ch);


/*
 * Indexes the channel under key (the channel keeps the pointer) and
 * mid (> 0 only).  *owner is the worker that held the key before, or -1.
 * NGX_DECLINED: the shared zone is exhausted; NGX_ERROR: no memory.
 */

ngx_int_t
ngx_goim_index_add(ngx_goim_channel_t *ch, ngx_str_t *key, int64_t mid,
    ngx_int_t *owner)
{
    ngx_int_t             rc;
    ngx_goim_channels_t  *cs = &ngx_goim_channels;

    ch->key_node.str = *key;
    ch->key_node.node.key = ngx_crc32_long(key->data, key->len);

    rc = ngx_goim_registry_key_add(&ch->key_node.str, ch->key_node.node.key,
                                   owner);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_rbtree_insert(&cs->keys, &ch->key_node.node);

    ngx_queue_insert_tail(&cs->channels, &ch->all.queue);
    cs->nchannels++;
    cs->channels_gen++;

    ch->mid = mid;

    if (mid > 0 && ngx_goim_mid_add(ch) != NGX_OK) {
        ngx_goim_index_del(ch);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the channel leaves every index, and the registry unless it withdrew */

void
ngx_goim_index_del(ngx_goim_channel_t *ch)
{
    ngx_goim_channels_t  *cs = &ngx_goim_channels;

    /* before the local delete: ngx_rbtree_delete() zeroes node.key */
    if (!ch->withdrawn) {
        ngx_goim_registry_key_del(&ch->key_node.str, ch->key_node.node.key);
    }

    ngx_rbtree_delete(&cs->keys, &ch->key_node.node);

    if (ch->mid_node) {
        ngx_queue_remove(&ch->mid_link);

        if (ngx_queue_empty(&ch->mid_node->channels)) {
            ngx_goim_registry_mid_set(ch->mid, 0);
            ngx_rbtree_delete(&cs->mids, &ch->mid_node->node);
            ngx_free(ch->mid_node);
        }

        ch->mid_node = NULL;
    }

    ngx_queue_remove(&ch->all.queue);
    cs->nchannels--;
    cs->channels_gen++;
}


/*
 * The channel leaves the shared registry but stays in this worker's
 * indexes (the drain, comet/ngx_goim_drain.c): pushes accepted from now
 * on do not count it.  The mid's bit goes with its last channel here.
 */

void
ngx_goim_index_withdraw(ngx_goim_channel_t *ch)
{
    ngx_queue_t         *q;
    ngx_goim_channel_t  *other;

    ch->withdrawn = 1;

    ngx_goim_registry_key_del(&ch->key_node.str, ch->key_node.node.key);

    if (ch->mid_node == NULL) {
        return;
    }

    for (q = ngx_queue_head(&ch->mid_node->channels);
         q != ngx_queue_sentinel(&ch->mid_node->channels);
         q = ngx_queue_next(q))
    {
        other = ngx_queue_data(q, ngx_goim_channel_t, mid_link);

        if (!other->withdrawn) {
            return;
        }
    }

    ngx_goim_registry_mid_set(ch->mid, 0);
}


ngx_goim_channel_t *
ngx_goim_key_lookup(u_char *key, size_t len)
{
    ngx_str_node_t  *sn;

    sn = ngx_goim_str_lookup(&ngx_goim_channels.keys, key, len);
    if (sn == NULL) {
        return NULL;
    }

    return (ngx_goim_channel_t *)
               ((u_char *) sn - offsetof(ngx_goim_channel_t, key_node));
}


ngx_goim_mid_t *
ngx_goim_mid_lookup(int64_t mid)
{
    ngx_rbtree_key_t    key;
    ngx_rbtree_node_t  *node, *sentinel;

    key = (ngx_rbtree_key_t) mid;
    node = ngx_goim_channels.mids.root;
    sentinel = ngx_goim_channels.mids.sentinel;

    while (node != sentinel) {
        if (key == node->key) {
            return (ngx_goim_mid_t *) node;
        }

        node = (key < node->key) ? node->left : node->right;
    }

    return NULL;
}


static ngx_int_t
ngx_goim_mid_add(ngx_goim_channel_t *ch)
{
    ngx_goim_mid_t  *m;

    m = ngx_goim_mid_lookup(ch->mid);

    if (m == NULL) {
        m = ngx_alloc(sizeof(ngx_goim_mid_t), ch->connection->log);
        if (m == NULL) {
            return NGX_ERROR;
        }

        m->node.key = (ngx_rbtree_key_t) ch->mid;
        ngx_queue_init(&m->channels);
        ngx_rbtree_insert(&ngx_goim_channels.mids, &m->node);

        ngx_goim_registry_mid_set(ch->mid, 1);
    }

    ngx_queue_insert_tail(&m->channels, &ch->mid_link);
    ch->mid_node = m;

    return NGX_OK;
}
