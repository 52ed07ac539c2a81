/*
 * goim-bench: load client for goim for nginx (and, in --mode nchan, for
 * any plain WebSocket pub/sub server such as nchan).
 *
 * N long-lived clients over TCP or WebSocket, spread over source
 * addresses 127.0.0.1..127.0.0.K and over P forked client processes,
 * authenticate into R rooms, heartbeat, and count the pushes they
 * receive; the parent publishes through the HTTP API at a fixed rate
 * with a timestamp in every body and measures push-to-receive latency,
 * delivered share, and (given the server pids) server CPU per delivery
 * and memory per connection.
 *
 * Phases: connect all -> settle -> publish for --duration -> drain ->
 * report.  --idle: connect -> settle -> report memory only.  A progress
 * line per second goes to stderr, a one-line JSON summary to stdout.
 *
 * --chat G: the chat shape (bench/README.md "Chat"): each client in its
 * personal room and one G-member group room, pushes to random groups,
 * a steady rate of reconnects, and every (push, member) pair accounted
 * for: delivered once, missing, excused by a reconnect, or duplicated.
 *
 * Every run stops by itself (hard deadline) and only talks to 127.0.0.0/8.
 */


#ifndef _GB_H_INCLUDED_
#define _GB_H_INCLUDED_


#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <goim_packet.h>
#include <goim_ws.h>


#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT  24
#endif

#define GB_OP                1000           /* the business op we push */
#define GB_MAX_BODY          (16 * 1024 * 1024)
#define GB_MAX_MSG_SIZE      (60 * 1024)
#define GB_READ_CHUNK        (64 * 1024)
#define GB_MAX_OUT           (1024 * 1024)  /* unsent bytes per client */
#define GB_MAX_PENDING       1024           /* default --max-pending */
#define GB_MAX_PROCS         64
#define GB_MAX_PIDS          64
#define GB_FD_RESERVE        32
#define GB_STATS_US          200000         /* child -> parent period */
#define GB_RETRY_US          1000000        /* reconnect a failed client */
#define GB_READY_TIMEOUT     10             /* s: connect + handshake + auth */
#define GB_CHAT_LEFT_US      1000000        /* chat: a missing member "left" */
#define GB_RECOVER_WAIT      10             /* s: recover: drain's longest */
#define GB_HTTP_TIMEOUT_US   5000000        /* API connect or answer */
#define GB_ERRLOG_MAX        5
#define GB_SEC               1000000LL

#define GB_TCP               0
#define GB_WS                1

#define GB_MODE_GOIM         0
#define GB_MODE_NCHAN        1

/* client states */
#define GB_IDLE              0              /* no socket, maybe queued */
#define GB_CONNECTING        1
#define GB_HANDSHAKE         2              /* WebSocket 101 awaited */
#define GB_AUTH              3              /* op 8 awaited */
#define GB_READY             4

/* publisher connection states */
#define GB_HTTP_DOWN         0
#define GB_HTTP_CONNECTING   1
#define GB_HTTP_IDLE         2
#define GB_HTTP_BUSY         3

/* parent phases */
#define GB_PH_CONNECT        0
#define GB_PH_SETTLE         1
#define GB_PH_MEASURE        2
#define GB_PH_DRAIN          3
#define GB_PH_DONE           4

/* child -> parent records */
#define GB_REC_STATS         1
#define GB_REC_FINAL         2
#define GB_REC_MASKS         3              /* chat: uint16_t per seq */
#define GB_REC_DOWN          4              /* chat: gb_down_t array */
#define GB_REC_LAST          5              /* chat: uint32_t us per seq */
#define GB_REC_GOT           6              /* recover: bits per client */

/* child control bytes on the ctl pipe (EOF asks for the final report) */
#define GB_CTL_CHURN_ON      'C'
#define GB_CTL_CHURN_OFF     'c'

#define GB_CHAT_MAX_GROUP    16             /* members: bits of a mask */

#define GB_EPOCH_MAX         40             /* docs/PROTOCOL.md 1.15 */
#define GB_RC_REASONS        9              /* op 36's, error, other */

/* epoll tags in the parent */
#define GB_EV_PROC           1
#define GB_EV_HTTP           2
#define GB_EV_CTL            UINT64_MAX

/* deliveries per message seq (the body's "seq"), for the first seqs */
#define GB_SEQS              64

/* push modes */
#define GB_PUSH_ROOM         0
#define GB_PUSH_KEY          1
#define GB_PUSH_ALL          2

/*
 * Latency histogram, log-linear: values below 2 * GB_HIST_SUB us have
 * their own bucket, above that each power of two is cut into GB_HIST_SUB
 * linear buckets (at most 1/32 = 3 % relative error); up to 2^46 us.
 */
#define GB_HIST_SUB_BITS     5
#define GB_HIST_SUB          (1 << GB_HIST_SUB_BITS)
#define GB_HIST_BUCKETS      (2 * GB_HIST_SUB + 40 * GB_HIST_SUB)


typedef struct {
    uint64_t           count;
    uint64_t           max;
    uint64_t           sum;
    uint64_t           b[GB_HIST_BUCKETS];
} gb_hist_t;


/* message seq's deliveries: the first and last latency show its fan-out */
typedef struct {
    uint64_t           count;
    uint64_t           min;             /* us, publish to receive */
    uint64_t           max;
} gb_seq_t;


/* a child's counters: gauges (now) and totals (since start) */
typedef struct {
    uint64_t           connected;       /* gauge: TCP connected */
    uint64_t           authed;          /* gauge: ready for pushes */
    uint64_t           connects;        /* attempts */
    uint64_t           received;        /* deliveries with a fresh ts */
    uint64_t           stale;           /* ts older than this run */
    uint64_t           no_ts;           /* push without a "ts" */
    uint64_t           heartbeats;      /* op 3 replies */
    uint64_t           errors;          /* failed or lost clients */
    uint64_t           bytes_in;
    uint64_t           reconnects;      /* chat: planned close + connect */
    uint64_t           duplicates;      /* chat: a (seq, member) again */
    uint64_t           misrouted;       /* chat: not our group, bad seq */
    uint64_t           join_refused;    /* chat: auth reply "joined":false */
    uint64_t           drained;         /* chat: deliveries read at a close */
    uint64_t           no_position;     /* recover: op 8 without one */
    uint64_t           rc_ok;           /* recover: op 36 recovered true */
    uint64_t           rc_messages;     /* recover: between op 8 and 36 */
    uint64_t           rc_failed[GB_RC_REASONS];  /* recovered false */
    uint64_t           rc_seam_bad;     /* true, but not up to the seam */
    uint64_t           rc_offset_gap;   /* an offset skipped */
    uint64_t           rc_offset_repeat; /* an offset not after the last */
    uint64_t           rc_stream_bad;   /* ver not the room's stream id */
    uint64_t           rc_cut;          /* closed before op 36 */
    uint64_t           rc_unexpected;   /* op 36 without op 35 */
    uint64_t           recovering;      /* gauge: op 35 sent, no op 36 */
} gb_stats_t;


/* chat: a client was not ready from down to up (monotonic us) */
typedef struct {
    int64_t            down;
    int64_t            up;              /* INT64_MAX: still down */
    uint32_t           idx;             /* client number, without id base */
    uint32_t           pad;
} gb_down_t;


typedef struct {
    uint32_t           type;
    uint32_t           len;
} gb_rec_t;


typedef struct {
    gb_stats_t         stats;
    gb_hist_t          hist;
    gb_seq_t           seqs[GB_SEQS];
    gb_hist_t          rhist;           /* recover: close to op 36 */
    gb_hist_t          rhist_wait;      /* recover: close to connect() */
    gb_hist_t          rhist_auth;      /* recover: connect() to op 8 */
    gb_hist_t          rhist_tail;      /* recover: op 8 to op 36 */
} gb_final_t;


typedef struct {
    int                mode;
    int                transport;
    struct sockaddr_in server;
    char               server_str[32];
    struct sockaddr_in api;
    char               api_str[32];
    const char        *ws_path;
    char               channel[128];     /* nchan: from ws_path */
    long               clients;
    long               sources;
    long               procs;
    long               connect_rate;
    long               rooms;
    long               heartbeat;
    long               read_pause;       /* ms after each read turn */
    long               push_rate;
    int                push_mode;        /* GB_PUSH_* */
    long               inflight;
    long               settle;
    long               duration;
    long               drain;
    long               msg_size;
    long               push_batch;       /* key pushes per request */
    long               id_base;          /* client i is mid/key base + i */
    long               seq_base;         /* the first message's seq */
    long               sockbuf;          /* SO_RCVBUF and SO_SNDBUF, or 0 */
    long               max_pending;      /* per process: connect to ready */
    long               chat;             /* group size, 0: not chat */
    long               groups;           /* chat: ceil(clients / chat) */
    long               reconnect_rate;   /* chat: per s, all processes */
    long               excuse_ms;        /* chat: see gb_chat_reconcile */
    long               seq_max;          /* chat, recover: seqs tracked */
    int                recover;          /* --recover */
    int                idle;
    pid_t              pids[GB_MAX_PIDS];
    int                npids;

    int64_t            start_real;       /* older timestamps are stale */
    int64_t            t0;               /* monotonic start */
    int64_t            connect_budget;
    int64_t            deadline;         /* monotonic, hard */
} gb_conf_t;


/*
 * What a client holds only while it is in the middle of something: a
 * partial packet or frame, output the socket did not take, a fragmented
 * WebSocket message.  Allocated then, freed once all of it is empty, so
 * that an idle client costs only its gb_conn_t (a million of them must
 * fit next to the server).
 */
typedef struct {
    uint8_t           *partial;         /* unparsed input, malloc'ed */
    size_t             partial_len;
    size_t             partial_cap;
    uint8_t           *out;             /* unsent output, malloc'ed */
    size_t             out_len;
    uint8_t           *msg;             /* WebSocket fragments joined */
    size_t             msg_len;
    goim_ws_reader_t   ws;              /* valid while ws_open */
    unsigned           ws_open:1;       /* a fragmented message is open */
} gb_conn_ext_t;


/* one client connection in a child: its number is gc_id + its index */
typedef struct {
    int                fd;
    uint32_t           since;           /* s since t0: connect started */
    uint8_t            state;
    gb_conn_ext_t     *ext;             /* NULL when idle */
} gb_conn_t;


typedef struct {
    pid_t              pid;
    int                ctl;             /* closed to ask for the final */
    int                in;              /* records from the child */
    int                open;
    int                final;
    gb_stats_t         stats;           /* latest */
    uint8_t           *buf;
    size_t             buf_len;
    size_t             buf_cap;
} gb_proc_t;


typedef struct {
    int                fd;
    int                state;
    uint64_t           expect;          /* deliveries if accepted */
    uint64_t           count;           /* messages in the request */
    uint64_t           seq;             /* the message in flight */
    int64_t            retry_at;
    int64_t            since;           /* connect or request started */
    char              *out;
    size_t             out_len;
    size_t             out_sent;
    char              *in;
    size_t             in_len;
    size_t             in_cap;
} gb_http_t;


extern gb_conf_t    gb;

/* client process state shared by gb_client.c and gb_client_input.c */
extern int          gc_out;
extern gb_stats_t   gc_stats;
extern uint8_t     *gc_scratch;
extern size_t       gc_scratch_cap;
extern uint8_t      gc_mask[4];
extern char         gc_accept[GOIM_WS_ACCEPT_LEN + 1];
extern long         gc_id;
extern gb_conn_t   *gc_conns;
extern long         gc_n;
extern int          gc_churn;

/* parent state shared by gb_parent.c and gb_publish.c */
extern gb_http_t   *gp_http;
extern int          gp_ep;
extern uint64_t     gp_sent;
extern uint64_t     gp_expected;
extern uint64_t     gp_api_errors;


/* gb_main.c */
void gb_expand_pids(void);

/* gb_hist.c */
int64_t gb_mono_us(void);
int64_t gb_real_us(void);
void gb_hist_add(gb_hist_t *h, uint64_t v);
void gb_hist_merge(gb_hist_t *dst, const gb_hist_t *src);
double gb_hist_ms(const gb_hist_t *h, double q);

/* gb_server.c */
int gb_server_sample(double *cpu, long *rss_kb, long *pss_kb);
double gb_pid_cpu(pid_t pid);

/* gb_chat.c */
uint32_t gb_chat_group(uint64_t seq);
int gb_chat_init(void);
void gb_chat_sent(uint64_t seq, int64_t at);
void gb_chat_answered(uint64_t seq, int ok, int64_t at);
void gb_chat_masks(const uint16_t *m, size_t n);
int gb_chat_down(const gb_down_t *d, size_t n);
void gb_chat_report(void);
int gb_child_chat_init(void);
void gb_child_chat_delivery(gb_conn_t *c, int64_t seq, uint64_t lat,
    const uint8_t *p, const uint8_t *end);
void gb_chat_last(const uint32_t *m, size_t n);
void gb_child_chat_down(gb_conn_t *c);
void gb_child_chat_up(gb_conn_t *c);
void gb_child_chat_churn(int64_t now);
void gb_child_chat_report(void);

/* gb_recover.c */
int gb_child_recover_init(void);
int gb_child_recover_auth(gb_conn_t *c, uint8_t *body, size_t size);
void gb_child_recover_auth_reply(gb_conn_t *c, const uint8_t *p,
    size_t len);
void gb_child_recover_result(gb_conn_t *c, const uint8_t *p, size_t len);
int gb_child_recover_position(gb_conn_t *c, int32_t ver, int32_t seq);
void gb_child_recover_delivery(gb_conn_t *c, int64_t s);
void gb_child_recover_down(gb_conn_t *c);
void gb_child_recover_connect(gb_conn_t *c);
int gb_child_recover_pickable(gb_conn_t *c);
void gb_child_recover_report(void);
void gb_child_recover_hists(gb_final_t *f);
int gb_recover_init(void);
void gb_recover_sent(uint64_t seq);
void gb_recover_answered(uint64_t seq, int ok);
void gb_recover_hists(const gb_final_t *f);
void gb_recover_got(const uint8_t *p, size_t len);
void gb_recover_report(const gb_stats_t *t);

/* gb_publish.c */
const uint8_t *gb_find_header(const uint8_t *p, size_t len,
    const char *name, size_t *vlen);
void gb_http_connect(gb_http_t *h);
void gb_http_event(gb_http_t *h, uint32_t events);
void gb_http_close(gb_http_t *h, int error, const char *reason);
int gb_http_publish(gb_http_t *h, uint64_t seq, uint64_t n);

/* gb_client.c */
void gb_child(long lo, long hi, int ctl, int out) __attribute__((
    noreturn));
int gb_child_auth(gb_conn_t *c);
void gb_child_fail(gb_conn_t *c, const char *reason);
void gb_child_drop(gb_conn_t *c, int error, int64_t retry_us);
int gb_child_send(gb_conn_t *c, const uint8_t *p, size_t len);
void gb_child_ready(gb_conn_t *c);
gb_conn_ext_t *gb_child_ext(gb_conn_t *c);
void gb_child_ext_done(gb_conn_t *c);

/* gb_client_input.c */
void gb_child_read(gb_conn_t *c);
void gb_child_report(uint32_t type);
void gb_child_write_all(const void *data, size_t len);

/* gb_parent.c */
int gb_parent(void);


#endif /* _GB_H_INCLUDED_ */
