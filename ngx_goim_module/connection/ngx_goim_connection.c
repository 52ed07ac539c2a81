
/*
 * goim for nginx: the worker's channels as a whole.  Their list and its
 * paced walks, the client connections counted against goim_max_clients,
 * the distinct client addresses, and the floor's state itself.
 */


#include "ngx_goim_connection.h"


static void ngx_goim_client_release(void *data);
static int ngx_libc_cdecl ngx_goim_addr_cmp(const void *a, const void *b);


ngx_goim_channels_t  ngx_goim_channels;


ngx_int_t
ngx_goim_connection_init(ngx_cycle_t *cycle)
{
    ngx_goim_conf_t      *gcf;
    ngx_goim_channels_t  *cs = &ngx_goim_channels;

    gcf = ngx_goim_get_conf(cycle);

    ngx_memzero(cs, sizeof(ngx_goim_channels_t));

    ngx_rbtree_init(&cs->keys, &cs->keys_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&cs->mids, &cs->mids_sentinel, ngx_rbtree_insert_value);
    ngx_queue_init(&cs->channels);

    /*
     * One read buffer for the event loop: an incomplete packet or frame
     * carried over from the last read plus a fresh read always fit.
     */
    cs->scratch_size = 64 * 1024 + GOIM_WS_MAX_HEADER + GOIM_HEADER_LEN
                       + gcf->max_body;
    cs->scratch = ngx_alloc(cs->scratch_size, cycle->log);
    if (cs->scratch == NULL) {
        return NGX_ERROR;
    }

    if (gcf->io_uring
        && (ngx_process == NGX_PROCESS_WORKER
            || ngx_process == NGX_PROCESS_SINGLE))
    {
        ngx_goim_uring_init(cycle, NGX_GOIM_WRITE_SLICE);
    }

    return NGX_OK;
}


void
ngx_goim_connection_exit(ngx_cycle_t *cycle)
{
    ngx_goim_link_t      *l;
    ngx_goim_channels_t  *cs = &ngx_goim_channels;

    while (cs->free_links) {
        l = cs->free_links;
        cs->free_links = l->next;
        ngx_free(l);
    }

    if (cs->scratch) {
        ngx_free(cs->scratch);
        cs->scratch = NULL;
    }

    ngx_goim_uring_exit();
}


/*
 * goim_max_clients: a client connection counts against the worker's bound
 * from its accept (TCP) or its upgrade request (WebSocket) until it
 * closes, authenticated or not.  Above the bound it is refused, so that
 * the worker keeps connections for the API, internal pushes, the status
 * page, Redis and Kafka.  NGX_DECLINED: refused, counted, and logged at
 * most once a second with the number refused since the last line.
 */

ngx_int_t
ngx_goim_client_admit(ngx_connection_t *c)
{
    ngx_goim_conf_t      *gcf;
    ngx_pool_cleanup_t   *cln;
    ngx_goim_channels_t  *cs = &ngx_goim_channels;

    static time_t      logged;
    static ngx_uint_t  unlogged;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    if (cs->nclients >= gcf->max_clients) {
        ngx_goim_worker.stats->clients_refused++;
        unlogged++;

        if (logged != ngx_time()) {
            logged = ngx_time();
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "goim: %ui client connection(s) refused since the "
                          "last report: the worker holds %ui, the bound of "
                          "\"goim_max_clients\"", unlogged, cs->nclients);
            unlogged = 0;
        }

        return NGX_DECLINED;
    }

    /* released when the connection's pool goes, whatever closes it */
    cln = ngx_pool_cleanup_add(c->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_goim_client_release;
    cln->data = NULL;

    cs->nclients++;

    return NGX_OK;
}


static void
ngx_goim_client_release(void *data)
{
    ngx_goim_channels.nclients--;
}


/*
 * Distinct client addresses among this worker's channels: counted again
 * only when channels came or went since the last count (a sort of them
 * all, so idle workers of a large node do not pay it every 10 s).
 */

ngx_uint_t
ngx_goim_ip_count(void)
{
    u_char               (*addr)[16];
    ngx_uint_t            n, i, count;
    ngx_connection_t     *c;
    ngx_goim_channel_t   *ch;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif
    ngx_goim_channels_t  *cs = &ngx_goim_channels;

    if (cs->nchannels == 0) {
        return 0;
    }

    if (cs->ips_gen == cs->channels_gen) {
        return cs->ips;
    }

    addr = ngx_calloc(cs->nchannels * 16, ngx_cycle->log);
    if (addr == NULL) {
        return 0;
    }

    n = 0;

    for (ch = ngx_goim_channel_first();
         ch && n < cs->nchannels;
         ch = ngx_goim_channel_next(ch))
    {
        c = ch->connection;

        switch (c->sockaddr->sa_family) {

#if (NGX_HAVE_INET6)
        case AF_INET6:
            sin6 = (struct sockaddr_in6 *) c->sockaddr;
            ngx_memcpy(addr[n], &sin6->sin6_addr, 16);
            break;
#endif

        case AF_INET:
            sin = (struct sockaddr_in *) c->sockaddr;
            ngx_memcpy(addr[n], &sin->sin_addr, 4);
            break;

        default:
            break;
        }

        n++;
    }

    ngx_qsort(addr, n, 16, ngx_goim_addr_cmp);

    count = n ? 1 : 0;

    for (i = 1; i < n; i++) {
        if (ngx_memcmp(addr[i], addr[i - 1], 16) != 0) {
            count++;
        }
    }

    ngx_free(addr);

    cs->ips = count;
    cs->ips_gen = cs->channels_gen;

    return count;
}


static int ngx_libc_cdecl
ngx_goim_addr_cmp(const void *a, const void *b)
{
    return ngx_memcmp(a, b, 16);
}


void
ngx_goim_cursor_start(ngx_goim_walk_t *cursor, ngx_uint_t kind)
{
    cursor->cursor = kind;
    ngx_queue_insert_head(&ngx_goim_channels.channels, &cursor->queue);
}


ngx_goim_channel_t *
ngx_goim_cursor_step(ngx_goim_walk_t *cursor)
{
    ngx_queue_t      *q;
    ngx_goim_walk_t  *node;

    for ( ;; ) {
        q = ngx_queue_next(&cursor->queue);

        if (q == ngx_queue_sentinel(&ngx_goim_channels.channels)) {
            ngx_queue_remove(&cursor->queue);
            return NULL;
        }

        /* step the cursor over the node */
        ngx_queue_remove(&cursor->queue);
        ngx_queue_insert_after(q, &cursor->queue);

        node = (ngx_goim_walk_t *) q;

        if (node->cursor == 0) {
            return ngx_queue_data(node, ngx_goim_channel_t, all);
        }
    }
}


/* a walk given up before its end */

void
ngx_goim_cursor_stop(ngx_goim_walk_t *cursor)
{
    ngx_queue_remove(&cursor->queue);
}


/* the nearest cursor of a kind before from (a channel's node or a cursor) */

ngx_goim_walk_t *
ngx_goim_cursor_before(ngx_goim_walk_t *from, ngx_uint_t kind)
{
    ngx_queue_t      *q;
    ngx_goim_walk_t  *node;

    for (q = ngx_queue_prev(&from->queue);
         q != ngx_queue_sentinel(&ngx_goim_channels.channels);
         q = ngx_queue_prev(q))
    {
        node = (ngx_goim_walk_t *) q;

        if (node->cursor == kind) {
            return node;
        }
    }

    return NULL;
}
