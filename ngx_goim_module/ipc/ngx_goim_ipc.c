
/*
 * goim for nginx: delivery between worker processes.  A push for sockets
 * of other workers is copied once into shared memory and a reference is
 * put in each target worker's inbox.  A worker is woken through its own
 * abstract AF_UNIX datagram socket, named after its pid, so workers of
 * different generations (reloads) reach each other; only the empty to
 * non-empty transition of an inbox sends a wake-up.
 */


#include "ngx_goim_ipc.h"

#include <sys/un.h>


#define NGX_GOIM_IPC_BATCH     64


/* in the zone: the registry's part, then the layout of goim_imsg.h */
typedef struct {
    ngx_goim_inbox_msg_t   hdr;
    u_char                 data[1];
} ngx_goim_ipc_msg_t;


static ngx_goim_ipc_msg_t *ngx_goim_ipc_build(goim_imsg_head_t *head,
    ngx_str_t *targets, ngx_uint_t ntargets, int64_t *mids, ngx_str_t *body);
static ngx_int_t ngx_goim_ipc_refused(ngx_uint_t full);
static void ngx_goim_ipc_read_handler(ngx_event_t *rev);
static void ngx_goim_ipc_process(ngx_goim_ipc_msg_t *m);
static void ngx_goim_ipc_wake(ngx_pid_t pid);
static void ngx_goim_ipc_addr(ngx_pid_t pid, struct sockaddr_un *sa,
    socklen_t *len);


static ngx_connection_t          *ngx_goim_ipc_conn;
static ngx_goim_ipc_handler_pt    ngx_goim_ipc_handler;
static ngx_goim_ipc_shutdown_pt   ngx_goim_ipc_shutdown;


void
ngx_goim_ipc_set_handler(ngx_goim_ipc_handler_pt handler)
{
    ngx_goim_ipc_handler = handler;
}


void
ngx_goim_ipc_set_shutdown_handler(ngx_goim_ipc_shutdown_pt handler)
{
    ngx_goim_ipc_shutdown = handler;
}


ngx_int_t
ngx_goim_ipc_init(ngx_cycle_t *cycle)
{
    socklen_t            len;
    ngx_socket_t         s;
    ngx_connection_t    *c;
    struct sockaddr_un   sa;

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


static ngx_goim_ipc_msg_t *
ngx_goim_ipc_build(goim_imsg_head_t *head, ngx_str_t *targets,
    ngx_uint_t ntargets, int64_t *mids, ngx_str_t *body)
{
    u_char              *p;
    size_t               tlen;
    ngx_uint_t           i;
    ngx_goim_ipc_msg_t  *m;

    tlen = 0;

    if (mids) {
        tlen = ntargets * sizeof(int64_t);

    } else {
        for (i = 0; i < ntargets; i++) {
            tlen += goim_imsg_str_len(targets[i].len);
        }
    }

    head->ntargets = ntargets;
    head->targets_len = tlen;
    head->body_len = body->len;

    m = (ngx_goim_ipc_msg_t *) ngx_goim_registry_msg_alloc(
              offsetof(ngx_goim_ipc_msg_t, data)
              + goim_imsg_size(head->targets_len, head->body_len),
              "a push for another worker");
    if (m == NULL) {
        return NULL;
    }

    p = goim_imsg_put_head(m->data, head);

    if (mids) {
        p = goim_imsg_put_mids(p, mids, ntargets);

    } else {
        for (i = 0; i < ntargets; i++) {
            p = goim_imsg_put_str(p, targets[i].data, targets[i].len);
        }
    }

    (void) goim_imsg_put_body(p, body->data, body->len);

    return m;
}


ngx_int_t
ngx_goim_ipc_send(ngx_goim_mask_t *mask, goim_imsg_head_t *head,
    ngx_str_t *targets, ngx_uint_t ntargets, int64_t *mids, ngx_str_t *body)
{
    ngx_pid_t            pids[NGX_GOIM_MAX_WORKERS];
    ngx_uint_t           n, nwake, full;
    ngx_goim_ipc_msg_t  *m;

    if (ngx_goim_mask_next(mask, 0) < 0) {
        return NGX_OK;
    }

    m = ngx_goim_ipc_build(head, targets, ntargets, mids, body);
    if (m == NULL) {
        return NGX_ERROR;
    }

    full = ngx_goim_registry_inbox_put(mask, &m->hdr, pids, &nwake);

    for (n = 0; n < nwake; n++) {
        ngx_goim_ipc_wake(pids[n]);
    }

    return ngx_goim_ipc_refused(full);
}


/*
 * A room message with a history: the registry gives it its offset (in
 * the message and in *pos) and puts it in the inbox of every worker with
 * members, this one's too, in one hold of its lock, so that every
 * worker delivers the room's messages in offset order.  This worker's
 * share is read from its inbox at once.
 */

ngx_int_t
ngx_goim_ipc_send_room(goim_imsg_head_t *head, ngx_str_t *room,
    ngx_str_t *body, ngx_goim_history_pos_t *pos)
{
    return ngx_goim_ipc_send_room_at(head, room, body, NULL, pos);
}


/*
 * The same with the position given (the job's, docs/PROTOCOL.md 1.15):
 * a message the room had already is dropped here, NGX_OK.
 */

ngx_int_t
ngx_goim_ipc_send_room_at(goim_imsg_head_t *head, ngx_str_t *room,
    ngx_str_t *body, ngx_goim_history_pos_t *given,
    ngx_goim_history_pos_t *pos)
{
    ngx_int_t            full;
    ngx_pid_t            pids[NGX_GOIM_MAX_WORKERS];
    ngx_str_t            msg;
    ngx_uint_t           n, nwake, self;
    ngx_goim_ipc_msg_t  *m;

    head->pos = 0;
    head->stream = 0;
    head->epoch = 0;
    head->mid = 0;

    m = ngx_goim_ipc_build(head, room, 1, NULL, body);
    if (m == NULL) {
        return NGX_ERROR;
    }

    /* a raw body (the internal push) is kept as it came */
    msg = *body;

    full = ngx_goim_registry_history_put(room, head->op, &msg, &m->hdr,
                                         m->data + GOIM_IMSG_POS_OFF,
                                         given, pos, pids, &nwake, &self);
    if (full == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (full == NGX_DECLINED) {
        return NGX_OK;
    }

    for (n = 0; n < nwake; n++) {
        ngx_goim_ipc_wake(pids[n]);
    }

    if (self) {
        ngx_goim_ipc_receive();
    }

    return ngx_goim_ipc_refused(full);
}


static ngx_int_t
ngx_goim_ipc_refused(ngx_uint_t full)
{
    static time_t        logged;
    static ngx_uint_t    refused;

    if (full == 0) {
        return NGX_OK;
    }

    ngx_goim_worker.stats->drop_inbox_full += full;

    /* a stuck worker refuses every push: one line a second */

    refused++;

    if (logged != ngx_time()) {
        logged = ngx_time();
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim: a worker's inbox is full, push refused; "
                      "%ui push(es) refused since the last report",
                      refused);
        refused = 0;
    }

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
        ngx_goim_ipc_shutdown();
        return;
    }

    while (recv(c->fd, buf, sizeof(buf), 0) > 0) {
        /* wake-ups carry nothing: the inbox holds the messages */
    }

    ngx_goim_ipc_receive();
}


void
ngx_goim_ipc_receive(void)
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
ngx_goim_ipc_process(ngx_goim_ipc_msg_t *m)
{
    goim_imsg_t  im;

    if (goim_imsg_parse(m->data, &im) == 0) {
        ngx_goim_ipc_handler(&im);

    } else {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "goim: a message from another worker is corrupt "
                      "(type %uD, %uD targets in %uD bytes), dropped",
                      im.head.type, im.head.ntargets, im.head.targets_len);
    }

    ngx_goim_registry_msg_release(&m->hdr);
}
