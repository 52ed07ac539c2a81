
/*
 * goim for nginx, floor "connection": one client connection (a
 * "channel") once its transport is set up, and what the worker knows of
 * its channels: the list of all of them and its one iterator, the key
 * and mid indexes, the output queues and their free list, client counts.
 *
 * A channel reaches the floors above only through function pointers:
 * its transport's (set with the channel, by transport/) and the
 * packet and close handlers (set once by comet/).
 */

#ifndef _NGX_GOIM_CONNECTION_H_INCLUDED_
#define _NGX_GOIM_CONNECTION_H_INCLUDED_


#include "ngx_goim_core.h"
#include "ngx_goim_registry.h"


#define NGX_GOIM_IOV            64

/*
 * At most this many sockets are written before the event loop runs
 * again; as many sends go to the kernel in one call with io_uring.
 */
#define NGX_GOIM_WRITE_SLICE    512

/* replies past this many times the push bound close the connection */
#define NGX_GOIM_REPLY_FACTOR   2


typedef struct ngx_goim_channel_s  ngx_goim_channel_t;
typedef struct ngx_goim_mid_s      ngx_goim_mid_t;

/* a room of this worker (push/) */
typedef struct ngx_goim_room_s     ngx_goim_room_t;


/* one entry of a connection's output queue; links come from a free list */
typedef struct ngx_goim_link_s  ngx_goim_link_t;

struct ngx_goim_link_s {
    ngx_goim_link_t       *next;
    ngx_goim_msg_t        *msg;
    ngx_uint_t             reply;       /* a reply, not counted as push */
};


/*
 * A node of the worker's list of all channels.  Paced walks (a
 * broadcast, the rewrite of the sessions after a Redis restart) keep
 * their place with a cursor node of the same type, so channels may come
 * and go while a walk is under way.
 */
typedef struct {
    ngx_queue_t            queue;
    ngx_uint_t             cursor;      /* 0: a channel, else the walk's */
} ngx_goim_walk_t;

#define NGX_GOIM_CURSOR_SESSIONS   1
#define NGX_GOIM_CURSOR_BROADCAST  2


/*
 * A channel's place in one of its rooms (push/): a link in the room's
 * list of members.  A channel keeps these in one array; its first one
 * lives in the channel itself, so that a channel in one room, as all
 * of goim's are, allocates nothing for it.
 */
typedef struct {
    ngx_queue_t            link;
    ngx_goim_room_t       *room;
    ngx_goim_channel_t    *ch;
    ngx_goim_shm_presence_t  *presence;  /* goim_presence's record */
    uint64_t               pos;         /* had up to here from history */
} ngx_goim_member_t;


struct ngx_goim_mid_s {
    ngx_rbtree_node_t      node;        /* node.key: the mid */
    ngx_queue_t            channels;
};


/* what a transport does for its channels (transport/) */
typedef struct {
    /*
     * Parses p[0..len) and hands each packet to ngx_goim_channel_packet;
     * *used is what was consumed (an incomplete packet stays).
     * NGX_ERROR only when memory ran out.
     */
    ngx_int_t            (*read)(ngx_goim_channel_t *ch, u_char *p,
                                 size_t len, size_t *used);

    /* frees the connection (and what the transport holds) */
    void                 (*finalize)(ngx_goim_channel_t *ch);
} ngx_goim_transport_t;


/* what the comet does with a channel's packets (comet/) */
typedef struct {
    /* NGX_ERROR only when memory ran out; protocol errors fail ch */
    ngx_int_t            (*packet)(ngx_goim_channel_t *ch,
                                   goim_packet_t *pkt);

    /* an authenticated channel closes: it leaves every index */
    void                 (*closing)(ngx_goim_channel_t *ch);
} ngx_goim_channel_handlers_t;


struct ngx_goim_channel_s {
    /*
     * What a push reads and writes comes first, so that a fan-out to
     * thousands of channels touches few cache lines of each.
     */
    ngx_connection_t      *connection;
    ngx_goim_conf_t       *conf;

    /* output */
    ngx_goim_link_t       *out;
    ngx_goim_link_t      **out_last;
    size_t                 out_sent;    /* bytes of out->msg written */
    size_t                 out_bytes;
    ngx_uint_t             out_pushes;
    ngx_uint_t             out_replies;
    ngx_queue_t            write_link;  /* in the worker's list to write */

    unsigned               transport:1;
    unsigned               authed:1;
    unsigned               auth_pending:1;
    unsigned               closing:1;   /* close once the queue drained */
    unsigned               ws_close_sent:1;
    unsigned               withdrawn:1; /* out of the shared registry */
    unsigned               write_posted:1;  /* write_link is linked */

    ngx_goim_member_t      room1;       /* rooms' first array */

    /* a broadcast walks the list and reads the watched ops (comet/) */
    ngx_goim_walk_t        all;
    int32_t               *watch;
    ngx_uint_t             nwatch;

    const ngx_goim_transport_t  *io;
    void                  *session;     /* stream session, TCP only */

    ngx_str_node_t         key_node;    /* str: key, once authenticated */
    int64_t                mid;
    ngx_goim_mid_t        *mid_node;
    ngx_queue_t            mid_link;

    /* the floors above keep their state of the channel here */

    ngx_goim_room_t       *room;        /* the first room (op 12), or NULL */
    ngx_goim_member_t     *rooms;       /* every room (push/) */
    ngx_uint_t             nrooms;
    ngx_uint_t             rooms_size;
    ngx_uint_t             member_room; /* one is its mid's (comet/) */

    ngx_str_t              platform;    /* the token's, for presence */

    /* the token's allowed_rooms (comet/), NUL after each; NULL: any */
    u_char                *room_rights;
    size_t                 room_rights_len;

    void                  *recover;     /* op 35 request (comet/) */
    void                  *member_stream;   /* its mid's, Redis (comet/) */

    uint32_t               last_online; /* last heartbeat count */

    void                  *redis_req;   /* pending session request (store/) */
    ngx_msec_t             session_renew;   /* renew after (10-30 min) */
    ngx_msec_t             session_last;

    const char            *close_reason;
    ngx_str_t              last_room;   /* for access logs, at close */

    /* input: bytes of an incomplete packet or frame, ngx_alloc'ed */
    u_char                *partial;
    size_t                 partial_len;

    /* WebSocket: frame decoder and a fragmented message being joined */
    goim_ws_reader_t       ws;
    u_char                *ws_msg;
    size_t                 ws_msg_len;

    ngx_uint_t             dropped;     /* pushes, the queue being full */

    /* the auth packet's ver and seq, echoed when Redis has answered */
    int32_t                auth_ver;
    int32_t                auth_seq;
    void                  *auth_rooms;  /* the reply's "rooms" (comet/) */
    ngx_uint_t             nauth_rooms;
};


/* the worker's channels */
typedef struct {
    ngx_rbtree_t           keys;
    ngx_rbtree_node_t      keys_sentinel;
    ngx_rbtree_t           mids;
    ngx_rbtree_node_t      mids_sentinel;
    ngx_queue_t            channels;    /* of ngx_goim_walk_t */

    ngx_uint_t             nchannels;   /* authenticated */
    ngx_uint_t             channels_gen;    /* bumped as one comes or goes */
    ngx_uint_t             ips_gen;     /* ips counted at that generation */
    ngx_uint_t             ips;
    ngx_uint_t             nconnections;
    ngx_uint_t             nclients;    /* admitted, against max_clients */

    ngx_goim_link_t       *free_links;

    u_char                *scratch;     /* read buffer of the event loop */
    size_t                 scratch_size;
} ngx_goim_channels_t;


extern ngx_goim_channels_t  ngx_goim_channels;


/* the floor's state (ngx_goim_connection.c) */
ngx_int_t ngx_goim_connection_init(ngx_cycle_t *cycle);
void ngx_goim_connection_exit(ngx_cycle_t *cycle);
ngx_int_t ngx_goim_client_admit(ngx_connection_t *c);
ngx_uint_t ngx_goim_ip_count(void);

/*
 * Paced walks: a cursor starts at the head; each step moves it past
 * the next channel and returns that channel, NULL at the end (the
 * cursor is then out of the list).  ngx_goim_cursor_before() finds the
 * cursors of a kind that have not reached ch yet, nearest first.
 */
void ngx_goim_cursor_start(ngx_goim_walk_t *cursor, ngx_uint_t kind);
ngx_goim_channel_t *ngx_goim_cursor_step(ngx_goim_walk_t *cursor);
void ngx_goim_cursor_stop(ngx_goim_walk_t *cursor);
ngx_goim_walk_t *ngx_goim_cursor_before(ngx_goim_walk_t *from,
    ngx_uint_t kind);

/* the worker's io_uring for the write list (ngx_goim_uring.c) */
void ngx_goim_uring_init(ngx_cycle_t *cycle, ngx_uint_t entries);
void ngx_goim_uring_exit(void);
ngx_uint_t ngx_goim_uring_ready(void);
void ngx_goim_uring_send(ngx_socket_t fd, struct msghdr *mh,
    struct iovec *iov, ngx_uint_t niov, ngx_uint_t slot);
ngx_int_t ngx_goim_uring_submit(ngx_log_t *log, int *res);

/* the key and mid indexes (ngx_goim_index.c) */
ngx_int_t ngx_goim_index_add(ngx_goim_channel_t *ch, ngx_str_t *key,
    int64_t mid, ngx_int_t *owner);
void ngx_goim_index_del(ngx_goim_channel_t *ch);
void ngx_goim_index_withdraw(ngx_goim_channel_t *ch);
ngx_goim_channel_t *ngx_goim_key_lookup(u_char *key, size_t len);
ngx_goim_mid_t *ngx_goim_mid_lookup(int64_t mid);

/* a channel's life, input and output (ngx_goim_channel.c) */
void ngx_goim_channel_set_handlers(ngx_goim_channel_handlers_t *h);
ngx_goim_channel_t *ngx_goim_channel_create(ngx_connection_t *c,
    ngx_uint_t transport, const ngx_goim_transport_t *io);
void ngx_goim_channel_start(ngx_goim_channel_t *ch, u_char *pre,
    size_t pre_len);
void ngx_goim_channel_resume(ngx_goim_channel_t *ch);
ngx_int_t ngx_goim_channel_packet(ngx_goim_channel_t *ch,
    goim_packet_t *pkt);
void ngx_goim_channel_close(ngx_goim_channel_t *ch, const char *reason);
void ngx_goim_channel_fail(ngx_goim_channel_t *ch, ngx_uint_t level,
    uint16_t ws_code, const char *reason);
ngx_int_t ngx_goim_channel_reply(ngx_goim_channel_t *ch, int32_t ver,
    int32_t op, int32_t seq, u_char *body, size_t len);
ngx_int_t ngx_goim_channel_push(ngx_goim_channel_t *ch,
    ngx_goim_msg_t *msg);
ngx_int_t ngx_goim_channel_queue(ngx_goim_channel_t *ch,
    ngx_goim_msg_t *msg, ngx_uint_t reply);
ngx_int_t ngx_goim_channel_watches(ngx_goim_channel_t *ch, int32_t op);


/*
 * Every channel of the worker, cursors skipped:
 *
 *     for (ch = ngx_goim_channel_first(); ch; ch = ngx_goim_channel_next(ch))
 *
 * The loop's body must not take ch out of the list.
 */

static ngx_inline ngx_goim_channel_t *
ngx_goim_channel_from(ngx_queue_t *q)
{
    ngx_goim_walk_t  *node;

    for ( /* void */ ;
         q != ngx_queue_sentinel(&ngx_goim_channels.channels);
         q = ngx_queue_next(q))
    {
        node = (ngx_goim_walk_t *) q;

        if (node->cursor == 0) {
            return ngx_queue_data(node, ngx_goim_channel_t, all);
        }
    }

    return NULL;
}


static ngx_inline ngx_goim_channel_t *
ngx_goim_channel_first(void)
{
    return ngx_goim_channel_from(ngx_queue_head(&ngx_goim_channels.channels));
}


static ngx_inline ngx_goim_channel_t *
ngx_goim_channel_next(ngx_goim_channel_t *ch)
{
    return ngx_goim_channel_from(ngx_queue_next(&ch->all.queue));
}


#endif /* _NGX_GOIM_CONNECTION_H_INCLUDED_ */
