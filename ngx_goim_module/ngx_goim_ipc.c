
/*
 * goim for nginx: delivery between worker processes.  A push for sockets
 * of other workers is copied once into shared memory and a reference is
 * put in each target worker's inbox.  A worker is woken through its own
 * abstract AF_UNIX datagram socket, named after its pid, so workers of
 * different generations (reloads) reach each other; only the empty to
 * non-empty transition of an inbox sends a wake-up.
 */


#include "ngx_goim.h"

#include <sys/un.h>




#define NGX_GOIM_IPC_BATCH     64
#define NGX_GOIM_DRAIN_TICK    100
#define NGX_GOIM_DRAIN_CHUNK   64


static void ngx_goim_ipc_read_handler(ngx_event_t *rev);
static void ngx_goim_ipc_take(void);
static void ngx_goim_ipc_process(ngx_goim_imsg_t *m);
static void ngx_goim_ipc_wake(ngx_pid_t pid);
static void ngx_goim_ipc_addr(ngx_pid_t pid, struct sockaddr_un *sa,
    socklen_t *len);
static void ngx_goim_housekeeping(ngx_event_t *ev);
static void ngx_goim_drain(void);


static ngx_connection_t  *ngx_goim_ipc_conn;


ngx_int_t
ngx_goim_ipc_init(ngx_cycle_t *cycle)
{
    socklen_t            len;
    ngx_socket_t         s;
    ngx_connection_t    *c;
    struct sockaddr_un   sa;
    ngx_goim_worker_t   *w = &ngx_goim_worker;

    s = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (s == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "goim: socket(AF_UNIX) failed");
        return NGX_ERROR;
    }

    if (ngx_nonblocking(s) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "goim: " ngx_nonblocking_n " failed");
        close(s);
        return NGX_ERROR;
    }

    ngx_goim_ipc_addr(ngx_pid, &sa, &len);

    if (bind(s, (struct sockaddr *) &sa, len) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "goim: bind() of the wake-up socket failed");
        close(s);
        return NGX_ERROR;
    }

    c = ngx_get_connection(s, cycle->log);
    if (c == NULL) {
        close(s);
        return NGX_ERROR;
    }

    c->read->handler = ngx_goim_ipc_read_handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    c->data = NULL;

    /* nginx calls idle connections' handlers when shutdown begins */
    c->idle = 1;

    if (ngx_add_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
        ngx_close_connection(c);
        return NGX_ERROR;
    }

    ngx_goim_ipc_conn = c;

    w->housekeeping.handler = ngx_goim_housekeeping;
    w->housekeeping.log = cycle->log;
    w->housekeeping.data = c;      /* ngx_event_ident() reads it */
    w->housekeeping.cancelable = 1;
    ngx_add_timer(&w->housekeeping, 1000);

    return NGX_OK;
}


void
ngx_goim_ipc_exit(ngx_cycle_t *cycle)
{
    if (ngx_goim_ipc_conn) {
        ngx_close_connection(ngx_goim_ipc_conn);
        ngx_goim_ipc_conn = NULL;
    }
}


static void
ngx_goim_ipc_addr(ngx_pid_t pid, struct sockaddr_un *sa, socklen_t *len)
{
    u_char  *p;

    ngx_memzero(sa, sizeof(struct sockaddr_un));
    sa->sun_family = AF_UNIX;

    /* abstract namespace: sun_path[0] is NUL, nothing in the file system */
    p = ngx_sprintf((u_char *) sa->sun_path + 1, "ngx-goim-%P", pid);

    *len = offsetof(struct sockaddr_un, sun_path) + (p - (u_char *)
                                                     sa->sun_path);
}


/*
 * Sends a push to the workers in mask: one copy in shared memory, one
 * reference per inbox.  NGX_BUSY when an inbox was full (that worker
 * misses the push), NGX_ERROR when shared memory is exhausted.
 */

ngx_int_t
ngx_goim_ipc_send(uint64_t mask, ngx_uint_t type, ngx_goim_push_t *push,
    ngx_uint_t speed, ngx_str_t *targets, ngx_uint_t ntargets, int64_t *mids)
{
    u_char           *p;
    size_t            tlen;
    uint32_t          len;
    ngx_pid_t         pids[NGX_GOIM_MAX_WORKERS];
    ngx_uint_t        i, n, nwake, full;
    ngx_goim_imsg_t  *m;

    if (mask == 0) {
        return NGX_OK;
    }

    tlen = 0;

    if (mids) {
        tlen = ntargets * sizeof(int64_t);

    } else {
        for (i = 0; i < ntargets; i++) {
            tlen += sizeof(uint32_t) + targets[i].len;
        }
    }

    m = (ngx_goim_imsg_t *) ngx_goim_registry_msg_alloc(
                                offsetof(ngx_goim_imsg_t, data) + tlen
                                + push->body.len,
                                "a push for another worker");
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->type = type;
    m->op = push->op;
    m->speed = speed;
    m->raw = push->raw;
    m->ntargets = ntargets;
    m->targets_len = tlen;
    m->body_len = push->body.len;

    p = m->data;

    if (mids) {
        p = ngx_cpymem(p, mids, tlen);

    } else {
        for (i = 0; i < ntargets; i++) {
            len = (uint32_t) targets[i].len;
            p = ngx_cpymem(p, &len, sizeof(uint32_t));
            p = ngx_cpymem(p, targets[i].data, targets[i].len);
        }
    }

    if (push->body.len) {
        ngx_memcpy(p, push->body.data, push->body.len);
    }

    full = ngx_goim_registry_inbox_put(mask, &m->hdr, pids, &nwake);

    for (n = 0; n < nwake; n++) {
        ngx_goim_ipc_wake(pids[n]);
    }

    if (full == 0) {
        return NGX_OK;
    }

    ngx_goim_worker.stats->drop_inbox_full += full;

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "goim: a worker's inbox is full, push refused");

    return NGX_BUSY;
}


static void
ngx_goim_ipc_wake(ngx_pid_t pid)
{
    socklen_t           len;
    struct sockaddr_un  sa;

    ngx_goim_ipc_addr(pid, &sa, &len);

    if (sendto(ngx_goim_ipc_conn->fd, "w", 1, 0, (struct sockaddr *) &sa,
               len)
        == -1
        && ngx_socket_errno != NGX_EAGAIN)
    {
        /* the worker died: housekeeping purges its slot */
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, ngx_socket_errno,
                      "goim: waking worker %P failed", pid);
    }
}


static void
ngx_goim_ipc_read_handler(ngx_event_t *rev)
{
    u_char             buf[64];
    ngx_connection_t  *c;

    c = rev->data;

    if (c->close) {
        /* graceful shutdown began (nginx -s reload or quit) */
        c->close = 0;
        ngx_goim_drain();
        return;
    }

    while (recv(c->fd, buf, sizeof(buf), 0) > 0) {
        /* wake-ups carry nothing: the inbox holds the messages */
    }

    ngx_goim_ipc_take();
}


/* delivers every message waiting in this worker's inbox */

static void
ngx_goim_ipc_take(void)
{
    ngx_uint_t   i, n;
    void        *msgs[NGX_GOIM_IPC_BATCH];

    for ( ;; ) {
        n = ngx_goim_registry_inbox_take(msgs, NGX_GOIM_IPC_BATCH);

        if (n == 0) {
            break;
        }

        for (i = 0; i < n; i++) {
            ngx_goim_ipc_process(msgs[i]);
        }
    }
}


static void
ngx_goim_ipc_process(ngx_goim_imsg_t *m)
{
    u_char           *p;
    int64_t           mids[NGX_GOIM_IPC_BATCH];
    uint32_t          len;
    ngx_str_t         targets[NGX_GOIM_IPC_BATCH];
    ngx_uint_t        i, n;
    ngx_goim_push_t   push;

    ngx_memzero(&push, sizeof(ngx_goim_push_t));
    push.op = m->op;
    push.raw = m->raw;
    push.body.data = m->data + m->targets_len;
    push.body.len = m->body_len;

    p = m->data;

    switch (m->type) {

    case NGX_GOIM_IMSG_KEYS:
    case NGX_GOIM_IMSG_KICK:
        n = 0;

        for (i = 0; i < m->ntargets; i++) {
            /* lengths sit at any offset: no unaligned loads */
            ngx_memcpy(&len, p, sizeof(uint32_t));
            p += sizeof(uint32_t);

            targets[n].data = p;
            targets[n].len = len;
            p += len;

            if (++n == NGX_GOIM_IPC_BATCH || i + 1 == m->ntargets) {
                if (m->type == NGX_GOIM_IMSG_KEYS) {
                    ngx_goim_local_keys(&push, targets, n);

                } else {
                    ngx_goim_local_kick(targets, n);
                }

                n = 0;
            }
        }

        break;

    case NGX_GOIM_IMSG_MIDS:
        /* the mids are not 8-byte aligned in the message: copied out */
        for (i = 0; i < m->ntargets; i += n) {
            n = ngx_min(m->ntargets - i, NGX_GOIM_IPC_BATCH);
            ngx_memcpy(mids, p + i * sizeof(int64_t), n * sizeof(int64_t));
            ngx_goim_local_mids(&push, mids, n);
        }

        break;

    case NGX_GOIM_IMSG_ROOM:
        ngx_memcpy(&len, p, sizeof(uint32_t));
        targets[0].len = len;
        targets[0].data = p + sizeof(uint32_t);
        ngx_goim_local_room(&push, &targets[0]);
        break;

    default: /* NGX_GOIM_IMSG_ALL */
        (void) ngx_goim_local_all(&push, m->speed);
        break;
    }

    ngx_goim_push_release(&push);

    ngx_goim_registry_msg_release(&m->hdr);
}


static void
ngx_goim_housekeeping(ngx_event_t *ev)
{
    ngx_goim_worker_t  *w = &ngx_goim_worker;

    ngx_goim_registry_purge_dead(ev->log);

    if (w->ticks++ % 10 == 0) {
        ngx_goim_registry_set_ips(ngx_goim_ip_count());
    }

    if (ngx_exiting || ngx_goim_worker.draining) {
        ngx_goim_drain();
        return;
    }

    ngx_add_timer(ev, 1000);
}


/*
 * After a reload the old workers keep delivering, then close their goim
 * connections spread over goim_shutdown_drain, so clients reconnect to
 * the new workers gradually (WebSocket: close 1001).
 *
 * Nothing accepted for a connection is lost on the way: the connections
 * of a tick leave the shared registry first, then the messages other
 * workers routed here before that are taken from the inbox, the rooms'
 * merged batches and the paced broadcasts not yet sent to them are
 * written, and only then their Close.  A client that does not read gets
 * 5 s for that (ngx_goim_channel_fail), so the drain ends at most that
 * long after goim_shutdown_drain.
 */

static void
ngx_goim_drain(void)
{
    ngx_uint_t           n, i, k, ticks;
    ngx_queue_t         *q, *next;
    ngx_goim_walk_t     *node;
    ngx_goim_conf_t     *gcf;
    ngx_goim_channel_t  *ch, *chunk[NGX_GOIM_DRAIN_CHUNK];
    ngx_goim_worker_t   *w = &ngx_goim_worker;

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    if (!w->draining) {
        w->draining = 1;
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "goim: shutting down, closing %ui connections over "
                      "%M ms", w->nchannels, gcf->shutdown_drain);

        ticks = ngx_max(gcf->shutdown_drain / NGX_GOIM_DRAIN_TICK, 1);
        w->drain_per_tick = w->nchannels / ticks + 1;
    }

    n = w->drain_per_tick;

    while (n) {
        k = 0;

        for (q = ngx_queue_head(&w->channels);
             q != ngx_queue_sentinel(&w->channels)
             && k < ngx_min(n, NGX_GOIM_DRAIN_CHUNK);
             q = next)
        {
            next = ngx_queue_next(q);
            node = (ngx_goim_walk_t *) q;

            if (node->cursor) {
                continue;
            }

            ch = ngx_queue_data(node, ngx_goim_channel_t, all);

            ngx_goim_auth_withdraw(ch);
            chunk[k++] = ch;
        }

        if (k == 0) {
            break;
        }

        ngx_goim_ipc_take();

        for (i = 0; i < k; i++) {
            ch = chunk[i];

            if (!ch->authed) {
                /* kicked by a newer connection meanwhile */
                continue;
            }

            if (ch->room) {
                ngx_goim_room_flush_pending(ch->room);
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

    if (w->nchannels || w->nconnections) {
        ngx_add_timer(&w->housekeeping, NGX_GOIM_DRAIN_TICK);

    } else if (w->housekeeping.timer_set) {
        ngx_del_timer(&w->housekeeping);
    }
}
