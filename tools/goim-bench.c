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
 * Every run stops by itself (hard deadline) and only talks to 127.0.0.0/8.
 */

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
#define GB_MAX_PENDING       1024           /* connects in progress */
#define GB_MAX_PROCS         64
#define GB_MAX_PIDS          64
#define GB_FD_RESERVE        32
#define GB_STATS_US          200000         /* child -> parent period */
#define GB_RETRY_US          1000000        /* reconnect a failed client */
#define GB_READY_TIMEOUT     10             /* s: connect + handshake + auth */
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

/* epoll tags in the parent */
#define GB_EV_PROC           1
#define GB_EV_HTTP           2
#define GB_EV_CTL            UINT64_MAX

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
} gb_stats_t;


typedef struct {
    uint32_t           type;
    uint32_t           len;
} gb_rec_t;


typedef struct {
    gb_stats_t         stats;
    gb_hist_t          hist;
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
    long               push_rate;
    int                push_key;
    long               inflight;
    long               settle;
    long               duration;
    long               drain;
    long               msg_size;
    long               id_base;          /* client i is mid/key base + i */
    int                idle;
    pid_t              pids[GB_MAX_PIDS];
    int                npids;

    int64_t            start_real;       /* older timestamps are stale */
    int64_t            t0;               /* monotonic start */
    int64_t            connect_budget;
    int64_t            deadline;         /* monotonic, hard */
} gb_conf_t;


/* one client connection in a child */
typedef struct {
    int                fd;
    uint32_t           idx;             /* global client number */
    uint32_t           since;           /* s since t0: connect started */
    uint8_t            state;
    uint8_t           *partial;         /* unparsed input, malloc'ed */
    size_t             partial_len;
    size_t             partial_cap;
    uint8_t           *out;             /* unsent output, malloc'ed */
    size_t             out_len;
    uint8_t           *msg;             /* WebSocket fragments joined */
    size_t             msg_len;
    goim_ws_reader_t   ws;
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
} gb_proc_t;


typedef struct {
    int                fd;
    int                state;
    uint64_t           expect;          /* deliveries if accepted */
    int64_t            retry_at;
    int64_t            since;           /* connect or request started */
    char              *out;
    size_t             out_len;
    size_t             out_sent;
    char              *in;
    size_t             in_len;
    size_t             in_cap;
} gb_http_t;


static void gb_usage(void);
static int gb_parse_long(const char *s, long min, long max, long *out);
static int gb_parse_addr(const char *s, struct sockaddr_in *sin, char *str,
    size_t size);
static int gb_parse_pids(const char *s);
static void gb_expand_pids(void);
static int gb_check_limits(void);
static int64_t gb_mono_us(void);
static int64_t gb_real_us(void);
static void gb_hist_add(gb_hist_t *h, uint64_t v);
static void gb_hist_merge(gb_hist_t *dst, const gb_hist_t *src);
static double gb_hist_ms(const gb_hist_t *h, double q);
static const uint8_t *gb_find_header(const uint8_t *p, size_t len,
    const char *name, size_t *vlen);
static int gb_server_sample(double *cpu, long *rss_kb, long *pss_kb);

static void gb_child(long lo, long hi, int ctl, int out) __attribute__((
    noreturn));
static void gb_child_connect(gb_conn_t *c);
static void gb_child_connected(gb_conn_t *c);
static int gb_child_auth(gb_conn_t *c);
static void gb_child_fail(gb_conn_t *c, const char *reason);
static int gb_child_send(gb_conn_t *c, const uint8_t *p, size_t len);
static int gb_child_send_packet(gb_conn_t *c, int32_t op, int32_t seq,
    const uint8_t *body, size_t len);
static void gb_child_flush(gb_conn_t *c);
static void gb_child_read(gb_conn_t *c);
static long gb_child_input(gb_conn_t *c, uint8_t *p, size_t len);
static long gb_child_handshake(gb_conn_t *c, const uint8_t *p, size_t len);
static int gb_child_frame(gb_conn_t *c, goim_ws_frame_t *f, uint8_t *p);
static int gb_child_message(gb_conn_t *c, const uint8_t *p, size_t len);
static int gb_child_packet(gb_conn_t *c, goim_packet_t *pkt);
static void gb_child_delivery(const uint8_t *p, size_t len);
static void gb_child_report(uint32_t type);

static int gb_parent(void);
static void gb_proc_read(gb_proc_t *pr);
static void gb_http_connect(gb_http_t *h);
static void gb_http_event(gb_http_t *h, uint32_t events);
static void gb_http_close(gb_http_t *h, int error, const char *reason);
static int gb_http_publish(gb_http_t *h, uint64_t seq);
static long gb_http_response(const char *p, size_t len, int *ok,
    int *close);
static void gb_report(void);


static gb_conf_t    gb;

/* child state */
static gb_conn_t   *gc_conns;
static long         gc_n;
static int          gc_ep = -1;
static int          gc_out = -1;
static gb_stats_t   gc_stats;
static gb_hist_t    gc_hist;
static uint8_t     *gc_scratch;
static size_t       gc_scratch_cap;
static uint32_t    *gc_queue;           /* clients waiting to connect */
static int64_t     *gc_queue_at;        /* not before */
static long         gc_qhead;
static long         gc_qlen;
static long         gc_pending;
static int64_t      gc_now_real;
static int          gc_errlog;
static long         gc_id;
static uint8_t      gc_mask[4];
static int32_t      gc_seq;
static char         gc_accept[GOIM_WS_ACCEPT_LEN + 1];

static const char   gc_ws_key[] = "Z29pbS1iZW5jaC1rZXktMQ==";

/* parent state */
static gb_proc_t    gp_procs[GB_MAX_PROCS];
static gb_http_t   *gp_http;
static int          gp_ep = -1;
static gb_hist_t    gp_hist;
static gb_stats_t   gp_total;           /* sum of the latest records */
static volatile sig_atomic_t  gp_stop;

static uint64_t     gp_sent;            /* accepted by the API */
static uint64_t     gp_expected;
static uint64_t     gp_api_errors;
static uint64_t     gp_unsent;          /* due but no connection free */
static int          gp_api_errlog;
static int          gp_deadline_hit;
static double       gp_cpu0, gp_cpu1;
static long         gp_rss0, gp_rss1;
static long         gp_pss0, gp_pss1;
static uint64_t     gp_authed_at_rss;
static int          gp_have_server;
static double       gp_measure_s;
static double       gp_client_cpu;      /* ours: is the client the limit? */


static void
gb_usage(void)
{
    fprintf(stderr,
"usage: goim-bench [options]\n"
"  --clients N           long-lived clients (1000)\n"
"  --transport tcp|ws    client transport (tcp)\n"
"  --mode goim|nchan     goim protocol, or plain WebSocket messages (goim)\n"
"  --server ADDR         comet address (127.0.0.1:3101 tcp, :3102 ws)\n"
"  --ws-path PATH        WebSocket path (/sub; nchan: /sub/<channel>)\n"
"  --sources K           source addresses 127.0.0.1..127.0.0.K (auto)\n"
"  --procs P             client processes (auto: < 20,000 fds each)\n"
"  --connect-rate R      connects per second, all processes (10000)\n"
"  --rooms R             rooms bench://<i %% R> (1)\n"
"  --heartbeat S         heartbeat interval in seconds, spread (30)\n"
"  --api ADDR            HTTP API / nchan publisher (127.0.0.1:3111)\n"
"  --push-rate M         messages per second (40)\n"
"  --push-mode room|key  /goim/push/room or /goim/push/keys (room)\n"
"  --inflight K          keep-alive API connections = requests in flight "
"(16)\n"
"  --msg-size B          pad message bodies to B bytes (unpadded)\n"
"  --settle S            seconds between connected and measuring (2)\n"
"  --duration S          seconds of publishing (10)\n"
"  --drain S             seconds to wait after publishing (1)\n"
"  --server-pids P,...   server pids for CPU and RSS (master's workers\n"
"                        are added from /proc)\n"
"  --id-base B           client i is mid B+i, key bench-<B+i>, so that\n"
"                        parallel runs do not replace each other (0)\n"
"  --idle                connect, settle, report memory only\n"
"All addresses must be in 127.0.0.0/8.\n");
}


static int
gb_parse_long(const char *s, long min, long max, long *out)
{
    long   n;
    char  *end;

    errno = 0;
    n = strtol(s, &end, 10);

    if (errno != 0 || end == s || *end != '\0' || n < min || n > max) {
        return -1;
    }

    *out = n;

    return 0;
}


/* host:port with a host in 127.0.0.0/8: this tool loads only loopback */

static int
gb_parse_addr(const char *s, struct sockaddr_in *sin, char *str, size_t size)
{
    long         port;
    char         host[64];
    const char  *colon;

    colon = strrchr(s, ':');
    if (colon == NULL || (size_t) (colon - s) >= sizeof(host)
        || gb_parse_long(colon + 1, 1, 65535, &port) != 0)
    {
        return -1;
    }

    memcpy(host, s, colon - s);
    host[colon - s] = '\0';

    if (strcmp(host, "localhost") == 0) {
        strcpy(host, "127.0.0.1");
    }

    memset(sin, 0, sizeof(struct sockaddr_in));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t) port);

    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1
        || (ntohl(sin->sin_addr.s_addr) >> 24) != 127)
    {
        return -1;
    }

    snprintf(str, size, "%s:%ld", host, port);

    return 0;
}


static int
gb_parse_pids(const char *s)
{
    long         pid;
    char         buf[32];
    size_t       len;
    const char  *p, *comma;

    for (p = s; *p; p = comma + 1) {
        comma = strchr(p, ',');
        if (comma == NULL) {
            comma = p + strlen(p);
        }

        len = comma - p;

        if (len == 0 || len >= sizeof(buf) || gb.npids == GB_MAX_PIDS) {
            return -1;
        }

        memcpy(buf, p, len);
        buf[len] = '\0';

        if (gb_parse_long(buf, 1, INT32_MAX, &pid) != 0) {
            return -1;
        }

        gb.pids[gb.npids++] = (pid_t) pid;

        if (*comma == '\0') {
            break;
        }
    }

    return 0;
}


/*
 * Adds the children of each given pid (an nginx master's workers), so a
 * master pid alone covers the workers; duplicates are skipped.
 */

static void
gb_expand_pids(void)
{
    int    i, j, n, dup;
    long   pid;
    char   path[64], *p, *end;
    char   buf[1024];
    FILE  *f;

    n = gb.npids;

    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
                 (int) gb.pids[i], (int) gb.pids[i]);

        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }

        if (fgets(buf, sizeof(buf), f) == NULL) {
            buf[0] = '\0';
        }

        fclose(f);

        for (p = buf; ; p = end) {
            pid = strtol(p, &end, 10);
            if (end == p || pid <= 0) {
                break;
            }

            dup = 0;

            for (j = 0; j < gb.npids; j++) {
                if (gb.pids[j] == (pid_t) pid) {
                    dup = 1;
                }
            }

            if (!dup && gb.npids < GB_MAX_PIDS) {
                gb.pids[gb.npids++] = (pid_t) pid;
            }
        }
    }
}


/*
 * Each client process must stay below the open file limit, and each
 * source address has one ephemeral port range per destination.
 */

static int
gb_check_limits(void)
{
    long           per_proc, lo, hi;
    FILE          *f;
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("goim-bench: getrlimit");
        return -1;
    }

    per_proc = (gb.clients + gb.procs - 1) / gb.procs;

    if ((rlim_t) (per_proc + GB_FD_RESERVE) > rl.rlim_cur) {
        fprintf(stderr, "goim-bench: %ld clients per process need more "
                "than the %lu open files allowed; use --procs %ld or more\n",
                per_proc, (unsigned long) rl.rlim_cur,
                (gb.clients + (long) rl.rlim_cur - GB_FD_RESERVE - 1)
                / ((long) rl.rlim_cur - GB_FD_RESERVE));
        return -1;
    }

    if ((rlim_t) (gb.inflight + 2 * gb.procs + GB_FD_RESERVE) > rl.rlim_cur) {
        fprintf(stderr, "goim-bench: --inflight too large\n");
        return -1;
    }

    lo = 32768;
    hi = 60999;

    f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &lo, &hi) != 2) {
            lo = 32768;
            hi = 60999;
        }

        fclose(f);
    }

    /* some headroom: TIME_WAIT sockets of earlier runs, the API */
    if ((gb.clients + gb.sources - 1) / gb.sources > (hi - lo + 1) - 1000) {
        fprintf(stderr, "goim-bench: %ld clients over %ld source addresses "
                "exceed the %ld ephemeral ports; use --sources %ld\n",
                gb.clients, gb.sources, hi - lo + 1,
                gb.clients / (hi - lo + 1 - 1000) + 1);
        return -1;
    }

    return 0;
}


static int64_t
gb_mono_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * GB_SEC + ts.tv_nsec / 1000;
}


static int64_t
gb_real_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * GB_SEC + ts.tv_nsec / 1000;
}


static void
gb_hist_add(gb_hist_t *h, uint64_t v)
{
    size_t    i;
    unsigned  shift;

    if (v < 2 * GB_HIST_SUB) {
        i = (size_t) v;

    } else {
        /* v >> shift is in [GB_HIST_SUB, 2 * GB_HIST_SUB) */
        shift = 63 - __builtin_clzll(v) - GB_HIST_SUB_BITS;
        i = 2 * GB_HIST_SUB + (shift - 1) * GB_HIST_SUB
            + (size_t) ((v >> shift) - GB_HIST_SUB);

        if (i >= GB_HIST_BUCKETS) {
            i = GB_HIST_BUCKETS - 1;
        }
    }

    h->b[i]++;
    h->count++;
    h->sum += v;

    if (v > h->max) {
        h->max = v;
    }
}


static void
gb_hist_merge(gb_hist_t *dst, const gb_hist_t *src)
{
    size_t  i;

    for (i = 0; i < GB_HIST_BUCKETS; i++) {
        dst->b[i] += src->b[i];
    }

    dst->count += src->count;
    dst->sum += src->sum;

    if (src->max > dst->max) {
        dst->max = src->max;
    }
}


/* the q-quantile in ms: the middle of its bucket, at most the maximum */

static double
gb_hist_ms(const gb_hist_t *h, double q)
{
    size_t    i;
    unsigned  shift;
    uint64_t  rank, seen, v;

    if (h->count == 0) {
        return 0;
    }

    rank = (uint64_t) (q * (double) h->count);
    if (rank == 0) {
        rank = 1;
    }

    seen = 0;
    v = h->max;

    for (i = 0; i < GB_HIST_BUCKETS; i++) {
        seen += h->b[i];

        if (seen >= rank) {
            if (i < 2 * GB_HIST_SUB) {
                v = i;

            } else {
                shift = (unsigned) ((i - 2 * GB_HIST_SUB) / GB_HIST_SUB + 1);
                v = (((i - 2 * GB_HIST_SUB) % GB_HIST_SUB + GB_HIST_SUB)
                     << shift) + ((1ULL << shift) >> 1);
            }

            break;
        }
    }

    if (v > h->max) {
        v = h->max;
    }

    return (double) v / 1000.0;
}


/*
 * The value of header "name" (case-insensitive) in an HTTP header block
 * p[0..len) that starts with the status line; NULL when absent.
 */

static const uint8_t *
gb_find_header(const uint8_t *p, size_t len, const char *name, size_t *vlen)
{
    size_t          nlen;
    const uint8_t  *line, *end, *eol, *v;

    nlen = strlen(name);
    end = p + len;

    line = memchr(p, '\n', len);

    while (line && ++line < end) {
        eol = memchr(line, '\n', end - line);
        if (eol == NULL) {
            eol = end;
        }

        if ((size_t) (eol - line) > nlen && line[nlen] == ':'
            && strncasecmp((const char *) line, name, nlen) == 0)
        {
            v = line + nlen + 1;

            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }

            *vlen = eol - v;

            while (*vlen && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' ')) {
                (*vlen)--;
            }

            return v;
        }

        line = eol;
    }

    return NULL;
}


/*
 * CPU seconds (utime + stime), VmRSS and Pss summed over the server pids.
 * VmRSS counts a shared page in every worker that touched it; Pss splits
 * it between them, so its sum is the better figure with several workers.
 */

static int
gb_server_sample(double *cpu, long *rss_kb, long *pss_kb)
{
    int            i, ok;
    long           kb;
    char           path[64], buf[1024], *p;
    size_t         n;
    FILE          *f;
    unsigned long  ut, st;

    *cpu = 0;
    *rss_kb = 0;
    *pss_kb = 0;
    ok = 0;

    for (i = 0; i < gb.npids; i++) {
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) gb.pids[i]);

        f = fopen(path, "r");
        if (f == NULL) {
            fprintf(stderr, "goim-bench: server pid %d is gone\n",
                    (int) gb.pids[i]);
            continue;
        }

        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';

        /* the command may hold spaces and ')': fields follow the last ')' */
        p = strrchr(buf, ')');

        if (p == NULL
            || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                      "%lu %lu", &ut, &st) != 2)
        {
            continue;
        }

        *cpu += (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);

        snprintf(path, sizeof(path), "/proc/%d/status", (int) gb.pids[i]);

        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }

        while (fgets(buf, sizeof(buf), f)) {
            if (sscanf(buf, "VmRSS: %ld kB", &kb) == 1) {
                *rss_kb += kb;
                break;
            }
        }

        fclose(f);

        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup",
                 (int) gb.pids[i]);

        f = fopen(path, "r");
        if (f) {
            while (fgets(buf, sizeof(buf), f)) {
                if (sscanf(buf, "Pss: %ld kB", &kb) == 1) {
                    *pss_kb += kb;
                    break;
                }
            }

            fclose(f);
        }

        ok++;
    }

    return ok;
}


/* --- client processes ----------------------------------------------------- */

static void
gb_child(long lo, long hi, int ctl, int out)
{
    int                 i, nev, stop;
    long                k, rate_n;
    double              tokens, rate;
    int64_t             now, last, next_stats, next_sweep, hb_done;
    int64_t             hb_target, hb_us;
    uint32_t            secs;
    uint8_t             dummy[64];
    gb_conn_t          *c;
    struct epoll_event  ev, events[1024];

    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    gc_id = lo;
    gc_out = out;
    gc_n = hi - lo;

    /* masks need not be secret here, only present (RFC 6455 5.3) */
    gc_mask[0] = (uint8_t) getpid();
    gc_mask[1] = 0x5a;
    gc_mask[2] = (uint8_t) (getpid() >> 8);
    gc_mask[3] = 0xa5;

    goim_ws_accept_key((const uint8_t *) gc_ws_key, strlen(gc_ws_key),
                       gc_accept);
    gc_accept[GOIM_WS_ACCEPT_LEN] = '\0';

    gc_conns = calloc(gc_n, sizeof(gb_conn_t));
    gc_queue = malloc(gc_n * sizeof(uint32_t));
    gc_queue_at = malloc(gc_n * sizeof(int64_t));
    gc_scratch_cap = 4 * GB_READ_CHUNK;
    gc_scratch = malloc(gc_scratch_cap);

    gc_ep = epoll_create1(EPOLL_CLOEXEC);

    if (gc_conns == NULL || gc_queue == NULL || gc_queue_at == NULL
        || gc_scratch == NULL || gc_ep == -1)
    {
        fprintf(stderr, "goim-bench: child: no memory or epoll\n");
        _exit(1);
    }

    for (k = 0; k < gc_n; k++) {
        gc_conns[k].fd = -1;
        gc_conns[k].idx = (uint32_t) (lo + k);
        gc_queue[k] = (uint32_t) k;
        gc_queue_at[k] = 0;
    }

    gc_qhead = 0;
    gc_qlen = gc_n;

    ev.events = EPOLLIN;
    ev.data.u64 = GB_EV_CTL;

    if (epoll_ctl(gc_ep, EPOLL_CTL_ADD, ctl, &ev) == -1) {
        perror("goim-bench: child: epoll_ctl");
        _exit(1);
    }

    rate = (double) gb.connect_rate / (double) gb.procs;
    tokens = 1;
    hb_us = gb.heartbeat * GB_SEC;
    hb_done = 0;
    stop = 0;

    now = gb_mono_us();
    last = now;
    next_stats = now;
    next_sweep = now + GB_SEC;

    while (!stop) {
        now = gb_mono_us();

        /* the parent normally ends us first; this is the backstop */
        if (now >= gb.deadline + 3 * GB_SEC) {
            break;
        }

        /* connects: a token bucket, at most 100 ms of burst */
        tokens += (double) (now - last) * rate / GB_SEC;
        if (tokens > rate / 10 + 1) {
            tokens = rate / 10 + 1;
        }

        last = now;
        rate_n = 0;

        while (tokens >= 1 && gc_qlen > 0 && gc_pending < GB_MAX_PENDING
               && gc_queue_at[gc_qhead] <= now)
        {
            c = &gc_conns[gc_queue[gc_qhead]];
            gc_qhead = (gc_qhead + 1) % gc_n;
            gc_qlen--;
            tokens -= 1;
            rate_n++;

            gb_child_connect(c);
        }

        /*
         * Heartbeats: a cursor walks the clients so that each gets one
         * every --heartbeat seconds, spread evenly over the interval.
         */
        if (gb.mode == GB_MODE_GOIM) {
            hb_target = (now - gb.t0) * gc_n / hb_us;

            while (hb_done < hb_target) {
                c = &gc_conns[hb_done % gc_n];
                hb_done++;

                if (c->state == GB_READY) {
                    (void) gb_child_send_packet(c, GOIM_OP_HEARTBEAT,
                                                ++gc_seq, NULL, 0);
                }
            }
        }

        if (now >= next_stats) {
            gb_child_report(GB_REC_STATS);
            next_stats = now + GB_STATS_US;
        }

        /*
         * A server that accepts but never answers (a worker stuck or
         * crashing while the kernel completes handshakes) must show as
         * errors, not as clients waiting forever.
         */
        if (now >= next_sweep) {
            next_sweep = now + GB_SEC;
            secs = (uint32_t) ((now - gb.t0) / GB_SEC);

            for (k = 0; k < gc_n; k++) {
                c = &gc_conns[k];

                if (c->state != GB_IDLE && c->state != GB_READY
                    && secs - c->since >= GB_READY_TIMEOUT)
                {
                    gb_child_fail(c, "not ready in time (connect, "
                                  "handshake or auth)");
                }
            }
        }

        nev = epoll_wait(gc_ep, events, 1024,
                         gc_qlen > 0 || rate_n > 0 ? 5 : 50);

        if (nev == -1) {
            if (errno == EINTR) {
                continue;
            }

            perror("goim-bench: child: epoll_wait");
            break;
        }

        for (i = 0; i < nev; i++) {
            if (events[i].data.u64 == GB_EV_CTL) {
                /* EOF: the parent wants the final report */
                if (read(ctl, dummy, sizeof(dummy)) <= 0) {
                    stop = 1;
                }

                continue;
            }

            c = &gc_conns[events[i].data.u64];

            if (c->state == GB_IDLE) {
                continue;
            }

            if (c->state == GB_CONNECTING) {
                gb_child_connected(c);
                continue;
            }

            if ((events[i].events & EPOLLOUT) && c->out_len) {
                gb_child_flush(c);
            }

            if (c->state != GB_IDLE
                && (events[i].events & (EPOLLIN|EPOLLERR|EPOLLHUP)))
            {
                gb_child_read(c);
            }
        }
    }

    gb_child_report(GB_REC_FINAL);

    _exit(0);
}


static void
gb_child_connect(gb_conn_t *c)
{
    int                 fd, one;
    struct sockaddr_in  src;
    struct epoll_event  ev;

    gc_stats.connects++;

    fd = socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        gb_child_fail(c, strerror(errno));
        return;
    }

    c->fd = fd;
    c->state = GB_CONNECTING;
    c->since = (uint32_t) ((gb_mono_us() - gb.t0) / GB_SEC);
    gc_pending++;

    one = 1;

    /* the port is picked at connect(), per destination, not at bind() */
    (void) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                      sizeof(one));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000001 + c->idx % gb.sources);

    if (bind(fd, (struct sockaddr *) &src, sizeof(src)) == -1) {
        gb_child_fail(c, "bind() failed");
        return;
    }

    if (connect(fd, (struct sockaddr *) &gb.server, sizeof(gb.server)) == -1
        && errno != EINPROGRESS)
    {
        gb_child_fail(c, strerror(errno));
        return;
    }

    ev.events = EPOLLOUT;
    ev.data.u64 = (uint64_t) (c - gc_conns);

    if (epoll_ctl(gc_ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
        gb_child_fail(c, "epoll_ctl() failed");
    }
}


static void
gb_child_connected(gb_conn_t *c)
{
    int                 err, n;
    char                req[512];
    socklen_t           len;
    struct epoll_event  ev;

    err = 0;
    len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        err = errno;
    }

    if (err) {
        gb_child_fail(c, strerror(err));
        return;
    }

    gc_pending--;
    gc_stats.connected++;

    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t) (c - gc_conns);

    if (epoll_ctl(gc_ep, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
        c->state = GB_HANDSHAKE;
        gb_child_fail(c, "epoll_ctl() failed");
        return;
    }

    if (gb.transport == GB_WS) {
        c->state = GB_HANDSHAKE;

        /* server frames are unmasked; large ones for OP_RAW batches */
        goim_ws_reader_init(&c->ws, GB_MAX_BODY, 1024, 0);

        if (gb.mode == GB_MODE_NCHAN && gb.rooms > 1) {
            n = snprintf(req, sizeof(req), "GET %s%ld", gb.ws_path,
                         (long) (c->idx % gb.rooms));
        } else {
            n = snprintf(req, sizeof(req), "GET %s", gb.ws_path);
        }

        n += snprintf(req + n, sizeof(req) - n,
                      " HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n",
                      gb.server_str, gc_ws_key);

        (void) gb_child_send(c, (uint8_t *) req, n);
        return;
    }

    (void) gb_child_auth(c);
}


/* op 7 with the JSON token; -1 when the connection failed */

static int
gb_child_auth(gb_conn_t *c)
{
    int      n;
    uint8_t  body[256];

    c->state = GB_AUTH;

    n = snprintf((char *) body, sizeof(body),
                 "{\"mid\":%u,\"key\":\"bench-%u\",\"room_id\":"
                 "\"bench://%ld\",\"platform\":\"bench\",\"accepts\":[%d]}",
                 (unsigned) (gb.id_base + c->idx),
                 (unsigned) (gb.id_base + c->idx),
                 (long) (c->idx % gb.rooms), GB_OP);

    return gb_child_send_packet(c, GOIM_OP_AUTH, ++gc_seq, body, n);
}


/* drops the connection, counts an error and queues a reconnect */

static void
gb_child_fail(gb_conn_t *c, const char *reason)
{
    long  tail;

    if (gc_errlog < GB_ERRLOG_MAX) {
        fprintf(stderr, "goim-bench: client %u (state %d): %s\n",
                c->idx, c->state, reason);

        if (++gc_errlog == GB_ERRLOG_MAX) {
            fprintf(stderr, "goim-bench: process of client %ld: further "
                    "client errors only counted\n", gc_id);
        }
    }

    gc_stats.errors++;

    if (c->state == GB_CONNECTING) {
        gc_pending--;

    } else if (c->state != GB_IDLE) {
        gc_stats.connected--;
    }

    if (c->state == GB_READY) {
        gc_stats.authed--;
    }

    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }

    free(c->partial);
    free(c->out);
    free(c->msg);
    c->partial = NULL;
    c->partial_len = 0;
    c->partial_cap = 0;
    c->out = NULL;
    c->out_len = 0;
    c->msg = NULL;
    c->msg_len = 0;
    c->state = GB_IDLE;

    tail = (gc_qhead + gc_qlen) % gc_n;
    gc_queue[tail] = (uint32_t) (c - gc_conns);
    gc_queue_at[tail] = gb_mono_us() + GB_RETRY_US;
    gc_qlen++;
}


/* writes now what the socket takes and keeps the rest; -1 when failed */

static int
gb_child_send(gb_conn_t *c, const uint8_t *p, size_t len)
{
    ssize_t             n;
    uint8_t            *out;
    struct epoll_event  ev;

    if (c->out_len == 0) {
        n = write(c->fd, p, len);

        if (n == (ssize_t) len) {
            return 0;
        }

        if (n == -1) {
            if (errno != EAGAIN && errno != EINTR) {
                gb_child_fail(c, strerror(errno));
                return -1;
            }

            n = 0;
        }

        p += n;
        len -= n;

        ev.events = EPOLLIN|EPOLLOUT;
        ev.data.u64 = (uint64_t) (c - gc_conns);
        (void) epoll_ctl(gc_ep, EPOLL_CTL_MOD, c->fd, &ev);
    }

    if (c->out_len + len > GB_MAX_OUT) {
        gb_child_fail(c, "server does not read");
        return -1;
    }

    out = realloc(c->out, c->out_len + len);
    if (out == NULL) {
        gb_child_fail(c, "no memory");
        return -1;
    }

    memcpy(out + c->out_len, p, len);
    c->out = out;
    c->out_len += len;

    return 0;
}


/* one goim packet, on WebSocket in a masked binary frame */

static int
gb_child_send_packet(gb_conn_t *c, int32_t op, int32_t seq,
    const uint8_t *body, size_t len)
{
    size_t   n, h;
    uint8_t  buf[GOIM_WS_MAX_HEADER + GOIM_HEADER_LEN + 256];

    if (len > 256) {
        return -1;
    }

    h = 0;

    if (gb.transport == GB_WS) {
        h = goim_ws_write_header(buf, GOIM_WS_OP_BINARY,
                                 GOIM_HEADER_LEN + len);
        buf[1] |= 0x80;
        memcpy(buf + h, gc_mask, 4);
        h += 4;
    }

    n = goim_packet_encode(buf + h, 1, op, seq, body, len);

    if (gb.transport == GB_WS) {
        goim_ws_unmask(buf + h, n, gc_mask, 0);
    }

    return gb_child_send(c, buf, h + n);
}


static void
gb_child_flush(gb_conn_t *c)
{
    ssize_t             n;
    struct epoll_event  ev;

    n = write(c->fd, c->out, c->out_len);

    if (n == -1) {
        if (errno != EAGAIN && errno != EINTR) {
            gb_child_fail(c, strerror(errno));
        }

        return;
    }

    if ((size_t) n < c->out_len) {
        memmove(c->out, c->out + n, c->out_len - n);
        c->out_len -= n;
        return;
    }

    free(c->out);
    c->out = NULL;
    c->out_len = 0;

    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t) (c - gc_conns);
    (void) epoll_ctl(gc_ep, EPOLL_CTL_MOD, c->fd, &ev);
}


/*
 * Reads once (level-triggered) into the scratch buffer behind what was
 * left unparsed last time, parses what is complete, keeps the rest.
 */

static void
gb_child_read(gb_conn_t *c)
{
    long      used;
    size_t    len, need;
    ssize_t   n;
    uint8_t  *p;

    need = c->partial_len + GB_READ_CHUNK;

    if (need > gc_scratch_cap) {
        p = realloc(gc_scratch, need);
        if (p == NULL) {
            gb_child_fail(c, "no memory");
            return;
        }

        gc_scratch = p;
        gc_scratch_cap = need;
    }

    if (c->partial_len) {
        memcpy(gc_scratch, c->partial, c->partial_len);
    }

    n = read(c->fd, gc_scratch + c->partial_len,
             gc_scratch_cap - c->partial_len);

    if (n == 0) {
        gb_child_fail(c, "closed by the server");
        return;
    }

    if (n == -1) {
        if (errno != EAGAIN && errno != EINTR) {
            gb_child_fail(c, strerror(errno));
        }

        return;
    }

    gc_stats.bytes_in += n;
    len = c->partial_len + n;

    /* one receive time for everything this read brought */
    gc_now_real = gb_real_us();

    used = gb_child_input(c, gc_scratch, len);

    if (used < 0) {
        return;
    }

    len -= used;

    if (len > c->partial_cap) {
        p = realloc(c->partial, len);
        if (p == NULL) {
            gb_child_fail(c, "no memory");
            return;
        }

        c->partial = p;
        c->partial_cap = len;
    }

    if (len) {
        memcpy(c->partial, gc_scratch + used, len);
    }

    c->partial_len = len;
}


/* returns the bytes consumed, or -1 when the connection was failed */

static long
gb_child_input(gb_conn_t *c, uint8_t *p, size_t len)
{
    long              rc;
    size_t            off;
    goim_packet_t     pkt;
    goim_ws_frame_t   f;
    goim_ws_reader_t  saved;

    off = 0;

    if (c->state == GB_HANDSHAKE) {
        rc = gb_child_handshake(c, p, len);
        if (rc <= 0) {
            return rc;
        }

        off = rc;
    }

    if (gb.transport == GB_TCP) {
        while (off < len) {
            rc = goim_packet_parse(p + off, len - off, GB_MAX_BODY, &pkt);

            if (rc == GOIM_PACKET_AGAIN) {
                break;
            }

            if (rc < 0) {
                gb_child_fail(c, goim_packet_strerror(rc));
                return -1;
            }

            off += rc;

            if (gb_child_packet(c, &pkt) != 0) {
                return -1;
            }
        }

        return (long) off;
    }

    while (off < len) {
        /* the reader keeps message state: undo it for a partial frame */
        saved = c->ws;

        rc = goim_ws_read_frame(&c->ws, p + off, len - off, &f);

        if (rc == GOIM_WS_AGAIN) {
            break;
        }

        if (rc < 0) {
            gb_child_fail(c, goim_ws_strerror(rc));
            return -1;
        }

        if (f.payload_len > len - off - rc) {
            c->ws = saved;
            break;
        }

        off += rc;

        if (f.masked) {
            goim_ws_unmask(p + off, f.payload_len, f.mask, 0);
        }

        if (gb_child_frame(c, &f, p + off) != 0) {
            return -1;
        }

        off += f.payload_len;
    }

    return (long) off;
}


/* the 101 answer: > 0 bytes of it consumed, 0 more needed, -1 failed */

static long
gb_child_handshake(gb_conn_t *c, const uint8_t *p, size_t len)
{
    size_t          vlen;
    const uint8_t  *end, *v;

    end = memmem(p, len, "\r\n\r\n", 4);

    if (end == NULL) {
        if (len > 8192) {
            gb_child_fail(c, "handshake answer too long");
            return -1;
        }

        return 0;
    }

    len = end + 4 - p;

    if (len < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
        gb_child_fail(c, "handshake not answered with 101");
        return -1;
    }

    v = gb_find_header(p, len, "Sec-WebSocket-Accept", &vlen);

    if (v == NULL || vlen != GOIM_WS_ACCEPT_LEN
        || memcmp(v, gc_accept, vlen) != 0)
    {
        gb_child_fail(c, "bad Sec-WebSocket-Accept");
        return -1;
    }

    if (gb.mode == GB_MODE_NCHAN) {
        c->state = GB_READY;
        gc_stats.authed++;

    } else if (gb_child_auth(c) != 0) {
        return -1;
    }

    return (long) len;
}


static int
gb_child_frame(gb_conn_t *c, goim_ws_frame_t *f, uint8_t *p)
{
    size_t    h, len;
    uint8_t  *msg, buf[GOIM_WS_MAX_HEADER + GOIM_WS_MAX_CONTROL];

    len = (size_t) f->payload_len;

    switch (f->opcode) {

    case GOIM_WS_OP_PING:
        h = goim_ws_write_header(buf, GOIM_WS_OP_PONG, len);
        buf[1] |= 0x80;
        memcpy(buf + h, gc_mask, 4);
        memcpy(buf + h + 4, p, len);
        goim_ws_unmask(buf + h + 4, len, gc_mask, 0);

        return gb_child_send(c, buf, h + 4 + len);

    case GOIM_WS_OP_PONG:
        return 0;

    case GOIM_WS_OP_CLOSE:
        gb_child_fail(c, "close frame from the server");
        return -1;
    }

    if (f->fin && f->opcode != GOIM_WS_OP_CONTINUATION) {
        return gb_child_message(c, p, len);
    }

    /* a fragment: joined, then handled as one message */

    msg = realloc(c->msg, c->msg_len + len + 1);
    if (msg == NULL) {
        gb_child_fail(c, "no memory");
        return -1;
    }

    memcpy(msg + c->msg_len, p, len);
    c->msg = msg;
    c->msg_len += len;

    if (!f->fin) {
        return 0;
    }

    len = c->msg_len;
    c->msg = NULL;
    c->msg_len = 0;

    if (gb_child_message(c, msg, len) != 0) {
        free(msg);
        return -1;
    }

    free(msg);

    return 0;
}


static int
gb_child_message(gb_conn_t *c, const uint8_t *p, size_t len)
{
    long           rc;
    goim_packet_t  pkt;

    if (gb.mode == GB_MODE_NCHAN) {
        gb_child_delivery(p, len);
        return 0;
    }

    rc = goim_packet_parse_exact(p, len, GB_MAX_BODY, &pkt);

    if (rc < 0) {
        gb_child_fail(c, goim_packet_strerror(rc));
        return -1;
    }

    return gb_child_packet(c, &pkt);
}


static int
gb_child_packet(gb_conn_t *c, goim_packet_t *pkt)
{
    int            rc;
    size_t         off;
    goim_packet_t  in;

    switch (pkt->op) {

    case GOIM_OP_AUTH_REPLY:
        if (c->state == GB_AUTH) {
            c->state = GB_READY;
            gc_stats.authed++;
        }

        return 0;

    case GOIM_OP_HEARTBEAT_REPLY:
        gc_stats.heartbeats++;
        return 0;

    case GOIM_OP_RAW:
        /* WebSocket batches; TCP gets the inner packets directly */
        off = 0;

        while ((rc = goim_raw_next(pkt->body, pkt->body_len, &off, &in))
               == 1)
        {
            if (in.op == GB_OP) {
                gb_child_delivery(in.body, in.body_len);
            }
        }

        if (rc < 0) {
            gb_child_fail(c, "bad OP_RAW body");
            return -1;
        }

        return 0;
    }

    if (pkt->op == GB_OP) {
        gb_child_delivery(pkt->body, pkt->body_len);
    }

    return 0;
}


/* counts a message; its latency from the publisher's "ts" (realtime us) */

static void
gb_child_delivery(const uint8_t *p, size_t len)
{
    int64_t         ts;
    const uint8_t  *t, *end;

    end = p + len;
    t = memmem(p, len, "\"ts\":", 5);

    if (t == NULL) {
        gc_stats.received++;
        gc_stats.no_ts++;
        return;
    }

    ts = 0;

    for (t += 5; t < end && *t == ' '; t++) { /* void */ }

    for ( /* void */ ; t < end && *t >= '0' && *t <= '9'; t++) {
        ts = ts * 10 + (*t - '0');
    }

    /* e.g. a message buffered by the server from an earlier run */
    if (ts < gb.start_real) {
        gc_stats.stale++;
        return;
    }

    gc_stats.received++;

    gb_hist_add(&gc_hist, gc_now_real > ts ? (uint64_t) (gc_now_real - ts)
                                           : 0);
}


static void
gb_child_report(uint32_t type)
{
    size_t      len;
    uint8_t    *p;
    ssize_t     n;
    gb_rec_t    rec;
    static struct {
        gb_rec_t    rec;
        gb_final_t  final;
    }           buf;

    rec.type = type;
    rec.len = type == GB_REC_FINAL ? sizeof(gb_final_t) : sizeof(gb_stats_t);

    buf.rec = rec;
    buf.final.stats = gc_stats;

    if (type == GB_REC_FINAL) {
        buf.final.hist = gc_hist;
    }

    p = (uint8_t *) &buf;
    len = sizeof(gb_rec_t) + rec.len;

    while (len) {
        n = write(gc_out, p, len);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            /* the parent is gone */
            _exit(1);
        }

        p += n;
        len -= n;
    }
}


/* --- parent: aggregation, publishing, report ------------------------------ */

static void
gb_on_signal(int signo)
{
    (void) signo;

    gp_stop = 1;
}


static int
gb_parent(void)
{
    int                 i, nev, phase, fds[2], ctl[2], timeout, alive;
    int                 blocked;
    long                k, lo, hi, rss_now, pss_now;
    int64_t             now, phase_end, measure_start, next_progress, due;
    int64_t             wait_until, drain_end;
    uint64_t            seq, last_recv, last_sent;
    gb_http_t          *h;
    gb_proc_t          *pr;
    struct rusage       ru;
    struct epoll_event  ev, events[256];
    static const char  *names[] = {
        "connect", "settle", "measure", "drain", "done"
    };

    if (gb.npids) {
        gb_expand_pids();
        gp_have_server = gb_server_sample(&gp_cpu0, &gp_rss0,
                                          &gp_pss0) > 0;
    }

    gb.start_real = gb_real_us();
    gb.t0 = gb_mono_us();
    gb.connect_budget = (int64_t) gb.clients * GB_SEC / gb.connect_rate
                        + 10 * GB_SEC;
    gb.deadline = gb.t0 + gb.connect_budget
                  + (gb.settle + (gb.idle ? 0 : gb.duration + gb.drain) + 10)
                    * GB_SEC;

    /* the last resort if the loop below got stuck */
    alarm((unsigned) ((gb.deadline - gb.t0) / GB_SEC + 15));

    for (k = 0; k < gb.procs; k++) {
        if (pipe2(fds, O_CLOEXEC) == -1 || pipe2(ctl, O_CLOEXEC) == -1) {
            perror("goim-bench: pipe");
            return 1;
        }

        lo = gb.clients * k / gb.procs;
        hi = gb.clients * (k + 1) / gb.procs;

        fflush(stdout);
        fflush(stderr);

        pr = &gp_procs[k];
        pr->pid = fork();

        if (pr->pid == -1) {
            perror("goim-bench: fork");
            return 1;
        }

        if (pr->pid == 0) {
            /* only our own pipe ends, so that EOF reaches us */
            for (i = 0; i < k; i++) {
                close(gp_procs[i].ctl);
                close(gp_procs[i].in);
            }

            close(fds[0]);
            close(ctl[1]);

            alarm((unsigned) ((gb.deadline - gb.t0) / GB_SEC + 20));

            gb_child(lo, hi, ctl[0], fds[1]);
        }

        close(fds[1]);
        close(ctl[0]);

        pr->in = fds[0];
        pr->ctl = ctl[1];
        pr->open = 1;
        pr->buf = malloc(sizeof(gb_rec_t) + sizeof(gb_final_t));

        if (pr->buf == NULL) {
            return 1;
        }

        (void) fcntl(pr->in, F_SETFL, O_NONBLOCK);
    }

    signal(SIGINT, gb_on_signal);
    signal(SIGTERM, gb_on_signal);
    signal(SIGPIPE, SIG_IGN);

    gp_ep = epoll_create1(EPOLL_CLOEXEC);
    if (gp_ep == -1) {
        perror("goim-bench: epoll_create1");
        return 1;
    }

    for (k = 0; k < gb.procs; k++) {
        ev.events = EPOLLIN;
        ev.data.u64 = ((uint64_t) GB_EV_PROC << 32) | (uint64_t) k;
        (void) epoll_ctl(gp_ep, EPOLL_CTL_ADD, gp_procs[k].in, &ev);
    }

    gp_http = calloc(gb.inflight, sizeof(gb_http_t));
    if (gp_http == NULL) {
        return 1;
    }

    for (k = 0; k < gb.inflight; k++) {
        gp_http[k].fd = -1;
    }

    phase = GB_PH_CONNECT;
    phase_end = gb.t0 + gb.connect_budget;
    measure_start = 0;
    drain_end = 0;
    seq = 0;
    blocked = 0;
    last_recv = 0;
    last_sent = 0;
    next_progress = gb.t0 + GB_SEC;

    for ( ;; ) {
        now = gb_mono_us();

        timeout = 50;

        /* when every API connection is busy, their answers wake us */
        if (phase == GB_PH_MEASURE && !blocked) {
            due = measure_start + (int64_t) (seq * GB_SEC / gb.push_rate);
            timeout = due > now ? (int) ((due - now + 999) / 1000) : 0;

            if (timeout > 50) {
                timeout = 50;
            }
        }

        nev = epoll_wait(gp_ep, events, 256, timeout);

        if (nev == -1 && errno != EINTR) {
            perror("goim-bench: epoll_wait");
            break;
        }

        for (i = 0; i < nev; i++) {
            k = (long) (events[i].data.u64 & 0xffffffff);

            if (events[i].data.u64 >> 32 == GB_EV_PROC) {
                gb_proc_read(&gp_procs[k]);

            } else {
                gb_http_event(&gp_http[k], events[i].events);
            }
        }

        /* sums of the children's latest records */
        memset(&gp_total, 0, sizeof(gp_total));
        alive = 0;

        for (k = 0; k < gb.procs; k++) {
            pr = &gp_procs[k];
            alive += pr->open;
            gp_total.connected += pr->stats.connected;
            gp_total.authed += pr->stats.authed;
            gp_total.connects += pr->stats.connects;
            gp_total.received += pr->stats.received;
            gp_total.stale += pr->stats.stale;
            gp_total.no_ts += pr->stats.no_ts;
            gp_total.heartbeats += pr->stats.heartbeats;
            gp_total.errors += pr->stats.errors;
            gp_total.bytes_in += pr->stats.bytes_in;
        }

        now = gb_mono_us();

        if (gp_stop || alive == 0 || now >= gb.deadline) {
            if (gp_stop || alive == 0) {
                fprintf(stderr, "goim-bench: %s, stopping\n",
                        gp_stop ? "interrupted"
                                : "all client processes ended");
            } else {
                fprintf(stderr, "goim-bench: hard deadline reached, "
                        "stopping\n");
                gp_deadline_hit = 1;
            }

            /* a partial measurement is still reported, marked as such */
            if (phase == GB_PH_MEASURE || phase == GB_PH_DRAIN) {
                if (phase == GB_PH_MEASURE) {
                    gp_measure_s = (double) (now - measure_start) / GB_SEC;
                }

                (void) gb_server_sample(&gp_cpu1, &rss_now, &pss_now);
            }

            break;
        }

        /* an API that accepts but never answers counts as failing */
        for (k = 0; k < gb.inflight; k++) {
            h = &gp_http[k];

            if ((h->state == GB_HTTP_CONNECTING || h->state == GB_HTTP_BUSY)
                && now - h->since >= GB_HTTP_TIMEOUT_US)
            {
                gb_http_close(h, 1, h->state == GB_HTTP_BUSY
                                    ? "no answer in 5 s"
                                    : "connect timed out");
            }
        }

        switch (phase) {

        case GB_PH_CONNECT:
            if (gp_total.authed < (uint64_t) gb.clients && now < phase_end) {
                break;
            }

            if (gp_total.authed < (uint64_t) gb.clients) {
                fprintf(stderr, "goim-bench: only %" PRIu64 " of %ld "
                        "clients ready after %.1f s, going on\n",
                        gp_total.authed, gb.clients,
                        (double) (now - gb.t0) / GB_SEC);
            }

            phase = GB_PH_SETTLE;
            phase_end = now + gb.settle * GB_SEC;

            if (gb.idle) {
                /* idle: the CPU of heartbeats over the settle period */
                (void) gb_server_sample(&gp_cpu0, &gp_rss1, &gp_pss1);
                gp_measure_s = (double) gb.settle;

            } else {
                for (k = 0; k < gb.inflight; k++) {
                    gb_http_connect(&gp_http[k]);
                }
            }

            break;

        case GB_PH_SETTLE:
            if (now < phase_end) {
                break;
            }

            gp_authed_at_rss = gp_total.authed;

            if (gb.idle) {
                (void) gb_server_sample(&gp_cpu1, &gp_rss1, &gp_pss1);
                phase = GB_PH_DONE;
                break;
            }

            (void) gb_server_sample(&gp_cpu0, &gp_rss1, &gp_pss1);

            phase = GB_PH_MEASURE;
            measure_start = now;
            phase_end = now + gb.duration * GB_SEC;
            seq = 0;
            break;

        case GB_PH_MEASURE:
            blocked = 0;

            for ( ;; ) {
                due = measure_start + (int64_t) (seq * GB_SEC / gb.push_rate);
                if (due > now || due >= phase_end) {
                    break;
                }

                h = NULL;

                for (k = 0; k < gb.inflight; k++) {
                    if (gp_http[(seq + k) % gb.inflight].state
                        == GB_HTTP_IDLE)
                    {
                        h = &gp_http[(seq + k) % gb.inflight];
                        break;
                    }
                }

                if (h == NULL) {
                    blocked = 1;
                    break;
                }

                if (gb_http_publish(h, seq) == 0) {
                    seq++;
                }
            }

            for (k = 0; k < gb.inflight; k++) {
                h = &gp_http[k];

                if (h->state == GB_HTTP_DOWN && now >= h->retry_at) {
                    gb_http_connect(h);
                }
            }

            if (now >= phase_end) {
                /* what fell due but found no free connection is dropped */
                due = gb.duration * gb.push_rate;
                gp_unsent = (uint64_t) due > seq ? (uint64_t) due - seq : 0;

                gp_measure_s = (double) (now - measure_start) / GB_SEC;
                phase = GB_PH_DRAIN;
                drain_end = now + gb.drain * GB_SEC;
            }

            break;

        case GB_PH_DRAIN:
            /* answers still in flight may take up to 5 s more */
            wait_until = drain_end;

            for (k = 0; k < gb.inflight; k++) {
                if (gp_http[k].state == GB_HTTP_BUSY) {
                    wait_until = drain_end + 5 * GB_SEC;
                }
            }

            if (now >= wait_until) {
                (void) gb_server_sample(&gp_cpu1, &rss_now, &pss_now);
                phase = GB_PH_DONE;
            }

            break;
        }

        if (now >= next_progress || phase == GB_PH_DONE) {
            fprintf(stderr, "goim-bench: %6.1fs %-7s conn %" PRIu64
                    " ready %" PRIu64 "/%ld recv/s %" PRIu64 " sent/s %"
                    PRIu64 " err %" PRIu64 " api_err %" PRIu64 "\n",
                    (double) (now - gb.t0) / GB_SEC, names[phase],
                    gp_total.connected, gp_total.authed, gb.clients,
                    gp_total.received - last_recv, gp_sent - last_sent,
                    gp_total.errors, gp_api_errors);

            last_recv = gp_total.received;
            last_sent = gp_sent;
            next_progress += GB_SEC;

            if (next_progress < now) {
                next_progress = now + GB_SEC;
            }
        }

        if (phase == GB_PH_DONE) {
            break;
        }
    }

    /* ask every child for its final record: close its control pipe */

    for (k = 0; k < gb.inflight; k++) {
        if (gp_http[k].fd != -1) {
            close(gp_http[k].fd);
            gp_http[k].fd = -1;
        }
    }

    for (k = 0; k < gb.procs; k++) {
        close(gp_procs[k].ctl);
    }

    wait_until = gb_mono_us() + 5 * GB_SEC;

    for ( ;; ) {
        alive = 0;

        for (k = 0; k < gb.procs; k++) {
            alive += gp_procs[k].open && !gp_procs[k].final;
        }

        if (alive == 0 || gb_mono_us() >= wait_until) {
            break;
        }

        nev = epoll_wait(gp_ep, events, 256, 100);

        for (i = 0; i < nev; i++) {
            if (events[i].data.u64 >> 32 == GB_EV_PROC) {
                gb_proc_read(&gp_procs[events[i].data.u64 & 0xffffffff]);
            }
        }
    }

    for (k = 0; k < gb.procs; k++) {
        pr = &gp_procs[k];

        if (!pr->final) {
            fprintf(stderr, "goim-bench: no final report from client "
                    "process %d\n", (int) pr->pid);
            kill(pr->pid, SIGKILL);
        }

        (void) waitpid(pr->pid, NULL, 0);
    }

    memset(&gp_total, 0, sizeof(gp_total));

    for (k = 0; k < gb.procs; k++) {
        pr = &gp_procs[k];
        gp_total.received += pr->stats.received;
        gp_total.stale += pr->stats.stale;
        gp_total.no_ts += pr->stats.no_ts;
        gp_total.errors += pr->stats.errors;
        gp_total.connects += pr->stats.connects;
        gp_total.heartbeats += pr->stats.heartbeats;
        gp_total.bytes_in += pr->stats.bytes_in;
    }

    if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
        gp_client_cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
                        + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    }

    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        gp_client_cpu += ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
                         + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    }

    gb_report();

    /* not a valid run: stopped early, or not every client took part */
    return gp_deadline_hit || gp_stop
           || gp_authed_at_rss < (uint64_t) gb.clients ? 1 : 0;
}


static void
gb_proc_read(gb_proc_t *pr)
{
    size_t     cap, len;
    ssize_t    n;
    gb_rec_t   rec;

    cap = sizeof(gb_rec_t) + sizeof(gb_final_t);

    for ( ;; ) {
        n = read(pr->in, pr->buf + pr->buf_len, cap - pr->buf_len);

        if (n == 0) {
            if (pr->open) {
                pr->open = 0;
                epoll_ctl(gp_ep, EPOLL_CTL_DEL, pr->in, NULL);
                close(pr->in);

                if (!pr->final) {
                    fprintf(stderr, "goim-bench: client process %d ended "
                            "early\n", (int) pr->pid);
                }
            }

            return;
        }

        if (n == -1) {
            return;
        }

        pr->buf_len += n;

        while (pr->buf_len >= sizeof(gb_rec_t)) {
            memcpy(&rec, pr->buf, sizeof(rec));
            len = sizeof(gb_rec_t) + rec.len;

            if (pr->buf_len < len) {
                break;
            }

            memcpy(&pr->stats, pr->buf + sizeof(gb_rec_t),
                   sizeof(gb_stats_t));

            if (rec.type == GB_REC_FINAL) {
                gb_hist_merge(&gp_hist, &((gb_final_t *) (pr->buf
                                              + sizeof(gb_rec_t)))->hist);
                pr->final = 1;
            }

            memmove(pr->buf, pr->buf + len, pr->buf_len - len);
            pr->buf_len -= len;
        }
    }
}


static void
gb_http_connect(gb_http_t *h)
{
    int                 fd, one;
    struct epoll_event  ev;

    fd = socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
    if (fd == -1) {
        gb_http_close(h, 1, strerror(errno));
        return;
    }

    one = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    h->fd = fd;
    h->state = GB_HTTP_CONNECTING;
    h->since = gb_mono_us();
    h->in_len = 0;

    if (connect(fd, (struct sockaddr *) &gb.api, sizeof(gb.api)) == -1
        && errno != EINPROGRESS)
    {
        gb_http_close(h, 1, strerror(errno));
        return;
    }

    ev.events = EPOLLIN|EPOLLOUT;
    ev.data.u64 = ((uint64_t) GB_EV_HTTP << 32) | (uint64_t) (h - gp_http);

    if (epoll_ctl(gp_ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
        gb_http_close(h, 1, "epoll_ctl() failed");
    }
}


/* error: a request or connect lost; retried after 500 ms */

static void
gb_http_close(gb_http_t *h, int error, const char *reason)
{
    if (error) {
        gp_api_errors++;

        if (gp_api_errlog++ < GB_ERRLOG_MAX) {
            fprintf(stderr, "goim-bench: API %s: %s\n", gb.api_str, reason);
        }
    }

    if (h->fd != -1) {
        close(h->fd);
        h->fd = -1;
    }

    h->state = GB_HTTP_DOWN;
    h->in_len = 0;
    h->out_len = 0;
    h->out_sent = 0;
    h->retry_at = gb_mono_us() + (error ? 500000 : 0);
}


static void
gb_http_event(gb_http_t *h, uint32_t events)
{
    int                 err, ok, close_after;
    long                rc;
    char               *in;
    ssize_t             n;
    socklen_t           len;
    struct epoll_event  ev;

    if (h->fd == -1) {
        return;
    }

    if (h->state == GB_HTTP_CONNECTING) {
        err = 0;
        len = sizeof(err);
        (void) getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len);

        if (err) {
            gb_http_close(h, 1, strerror(err));
            return;
        }

        h->state = GB_HTTP_IDLE;

        ev.events = EPOLLIN;
        ev.data.u64 = ((uint64_t) GB_EV_HTTP << 32)
                      | (uint64_t) (h - gp_http);
        (void) epoll_ctl(gp_ep, EPOLL_CTL_MOD, h->fd, &ev);

        return;
    }

    if ((events & EPOLLOUT) && h->out_sent < h->out_len) {
        n = write(h->fd, h->out + h->out_sent, h->out_len - h->out_sent);

        if (n == -1 && errno != EAGAIN) {
            gb_http_close(h, 1, strerror(errno));
            return;
        }

        if (n > 0) {
            h->out_sent += n;
        }

        if (h->out_sent == h->out_len) {
            ev.events = EPOLLIN;
            ev.data.u64 = ((uint64_t) GB_EV_HTTP << 32)
                          | (uint64_t) (h - gp_http);
            (void) epoll_ctl(gp_ep, EPOLL_CTL_MOD, h->fd, &ev);
        }
    }

    if (!(events & (EPOLLIN|EPOLLERR|EPOLLHUP))) {
        return;
    }

    if (h->in_cap - h->in_len < 4096) {
        in = realloc(h->in, h->in_cap + 16384);
        if (in == NULL) {
            gb_http_close(h, 1, "no memory");
            return;
        }

        h->in = in;
        h->in_cap += 16384;
    }

    n = read(h->fd, h->in + h->in_len, h->in_cap - h->in_len);

    if (n == -1) {
        if (errno != EAGAIN && errno != EINTR) {
            gb_http_close(h, h->state == GB_HTTP_BUSY, strerror(errno));
        }

        return;
    }

    if (n == 0) {
        /* an idle keep-alive connection may be closed by the server */
        gb_http_close(h, h->state == GB_HTTP_BUSY,
                      "connection closed before the answer");
        return;
    }

    h->in_len += n;

    rc = gb_http_response(h->in, h->in_len, &ok, &close_after);

    if (rc == 0) {
        return;
    }

    if (rc < 0 || h->state != GB_HTTP_BUSY) {
        gb_http_close(h, 1, "malformed or unexpected answer");
        return;
    }

    if (ok) {
        gp_sent++;
        gp_expected += h->expect;

    } else {
        gp_api_errors++;

        if (gp_api_errlog++ < GB_ERRLOG_MAX) {
            fprintf(stderr, "goim-bench: API answer: %.*s\n",
                    (int) (rc < 300 ? rc : 300), h->in);
        }
    }

    memmove(h->in, h->in + rc, h->in_len - rc);
    h->in_len -= rc;
    h->state = GB_HTTP_IDLE;

    if (close_after) {
        gb_http_close(h, 0, NULL);
    }
}


/* sends message seq; returns 0, or -1 when the connection failed */

static int
gb_http_publish(gb_http_t *h, uint64_t seq)
{
    int                 blen, n;
    long                r;
    char                path[256], *body;
    ssize_t             w;
    struct epoll_event  ev;

    if (h->out == NULL) {
        h->out = malloc(1024 + GB_MAX_MSG_SIZE);
        if (h->out == NULL) {
            gb_http_close(h, 1, "no memory");
            return -1;
        }
    }

    r = (long) (seq % (uint64_t) gb.rooms);

    if (gb.mode == GB_MODE_NCHAN) {
        if (gb.rooms > 1) {
            snprintf(path, sizeof(path), "/pub/%s%ld", gb.channel, r);
        } else {
            snprintf(path, sizeof(path), "/pub/%s", gb.channel);
        }

        h->expect = (uint64_t) (gb.clients / gb.rooms
                                + (r < gb.clients % gb.rooms));

    } else if (gb.push_key) {
        snprintf(path, sizeof(path), "/goim/push/keys?operation=%d"
                 "&keys=bench-%ld", GB_OP,
                 gb.id_base + (long) (seq % gb.clients));
        h->expect = 1;

    } else {
        snprintf(path, sizeof(path), "/goim/push/room?operation=%d"
                 "&type=bench&room=%ld", GB_OP, r);

        /* every member of the room gets every message */
        h->expect = (uint64_t) (gb.clients / gb.rooms
                                + (r < gb.clients % gb.rooms));
    }

    /* the body goes after a header of at most 1024 - 64 bytes */
    body = h->out + 1024 - 64;

    blen = snprintf(body, 64, "{\"ts\":%" PRId64 ",\"seq\":%" PRIu64,
                    gb_real_us(), seq);

    if (gb.msg_size > blen + 10) {
        memcpy(body + blen, ",\"pad\":\"", 8);
        blen += 8;
        memset(body + blen, 'x', gb.msg_size - blen - 2);
        blen = (int) gb.msg_size - 2;
        body[blen++] = '"';
    }

    body[blen++] = '}';

    n = snprintf(h->out, 1024 - 64,
                 "POST %s HTTP/1.1\r\nHost: %s\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %d\r\n\r\n", path, gb.api_str, blen);

    memmove(h->out + n, body, blen);
    h->out_len = n + blen;
    h->out_sent = 0;
    h->state = GB_HTTP_BUSY;
    h->since = gb_mono_us();

    w = write(h->fd, h->out, h->out_len);

    if (w == -1) {
        if (errno != EAGAIN) {
            gb_http_close(h, 1, strerror(errno));
            return -1;
        }

        w = 0;
    }

    h->out_sent = w;

    if (h->out_sent < h->out_len) {
        ev.events = EPOLLIN|EPOLLOUT;
        ev.data.u64 = ((uint64_t) GB_EV_HTTP << 32)
                      | (uint64_t) (h - gp_http);
        (void) epoll_ctl(gp_ep, EPOLL_CTL_MOD, h->fd, &ev);
    }

    return 0;
}


/*
 * One response at p[0..len): its length once complete, 0 when more is
 * needed, -1 when malformed.  *ok: a 2xx, and on goim also "code":0 in
 * the JSON envelope.  Content-Length and chunked bodies are understood.
 */

static long
gb_http_response(const char *p, size_t len, int *ok, int *close)
{
    int          status;
    long         clen, size;
    size_t       hlen, vlen, pos;
    const char  *end, *v, *body, *code, *eol;

    end = memmem(p, len, "\r\n\r\n", 4);
    if (end == NULL) {
        return len > 65536 ? -1 : 0;
    }

    hlen = end + 4 - p;

    if (hlen < 12 || memcmp(p, "HTTP/1.", 7) != 0) {
        return -1;
    }

    status = atoi(p + 9);

    *close = p[7] == '0';

    v = (const char *) gb_find_header((const uint8_t *) p, hlen, "Connection",
                                      &vlen);
    if (v) {
        *close = vlen == 5 && strncasecmp(v, "close", 5) == 0;
    }

    body = p + hlen;

    v = (const char *) gb_find_header((const uint8_t *) p, hlen,
                                      "Transfer-Encoding", &vlen);

    if (v && vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0) {
        pos = hlen;

        for ( ;; ) {
            eol = memmem(p + pos, len - pos, "\r\n", 2);
            if (eol == NULL) {
                return 0;
            }

            size = strtol(p + pos, NULL, 16);
            if (size < 0) {
                return -1;
            }

            pos = eol + 2 - p;

            if (size == 0) {
                /* no trailers expected: the final CRLF, else look for one */
                if (len - pos >= 2 && memcmp(p + pos, "\r\n", 2) == 0) {
                    pos += 2;
                    break;
                }

                eol = memmem(p + pos, len - pos, "\r\n\r\n", 4);
                if (eol == NULL) {
                    return 0;
                }

                pos = eol + 4 - p;
                break;
            }

            if (len - pos < (size_t) size + 2) {
                return 0;
            }

            pos += size + 2;
        }

        clen = (long) (pos - hlen);

    } else {
        v = (const char *) gb_find_header((const uint8_t *) p, hlen,
                                          "Content-Length", &vlen);

        if (v) {
            clen = strtol(v, NULL, 10);
            if (clen < 0) {
                return -1;
            }

        } else if (status == 204 || status == 304 || status < 200) {
            clen = 0;

        } else {
            /* a body up to close: not used by the servers we load */
            return -1;
        }

        if (len - hlen < (size_t) clen) {
            return 0;
        }
    }

    *ok = status >= 200 && status < 300;

    if (*ok && gb.mode == GB_MODE_GOIM) {
        code = memmem(body, clen, "\"code\":", 7);
        *ok = code != NULL && atoi(code + 7) == 0;
    }

    return (long) (hlen + clen);
}


static void
gb_report(void)
{
    int       i;
    char      cpu[32], cpu_per[32], rss[32], pss[32];
    double    share, cpu_s;
    uint64_t  delivered;

    delivered = gp_total.received;
    share = gp_expected ? (double) delivered / (double) gp_expected : 0;
    cpu_s = gp_cpu1 - gp_cpu0;

    strcpy(cpu, "null");
    strcpy(cpu_per, "null");
    strcpy(rss, "null");
    strcpy(pss, "null");

    if (gp_have_server && gp_cpu1 > 0) {
        snprintf(cpu, sizeof(cpu), "%.2f", cpu_s);

        if (delivered) {
            snprintf(cpu_per, sizeof(cpu_per), "%.3f",
                     cpu_s * 1e6 / (double) delivered);
        }
    }

    if (gp_have_server && gp_authed_at_rss && gp_rss1) {
        snprintf(rss, sizeof(rss), "%.0f",
                 (double) (gp_rss1 - gp_rss0) * 1024.0
                 / (double) gp_authed_at_rss);

        if (gp_pss1) {
            snprintf(pss, sizeof(pss), "%.0f",
                     (double) (gp_pss1 - gp_pss0) * 1024.0
                     / (double) gp_authed_at_rss);
        }
    }

    printf("{\"clients\":%ld,\"transport\":\"%s\",\"mode\":\"%s\","
           "\"procs\":%ld,\"sources\":%ld,\"rooms\":%ld,\"push_mode\":\"%s\","
           "\"push_rate\":%ld,\"msg_size\":%ld,\"duration\":%.2f,"
           "\"ready\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"unsent\":%" PRIu64
           ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64 ","
           "\"delivered_share\":%.4f,\"deliveries_per_s\":%.0f,"
           "\"lat_p50_ms\":%.3f,\"lat_p90_ms\":%.3f,\"lat_p99_ms\":%.3f,"
           "\"lat_max_ms\":%.3f,\"server_cpu_s\":%s,"
           "\"cpu_us_per_delivery\":%s,\"rss_before_kb\":%ld,"
           "\"rss_after_kb\":%ld,\"rss_per_conn_bytes\":%s,"
           "\"pss_per_conn_bytes\":%s,"
           "\"client_cpu_s\":%.2f,"
           "\"connects\":%" PRIu64 ",\"heartbeat_replies\":%" PRIu64 ","
           "\"stale\":%" PRIu64 ",\"client_errors\":%" PRIu64 ","
           "\"api_errors\":%" PRIu64 ",\"errors\":%" PRIu64 ","
           "\"server_pids\":[",
           gb.clients, gb.transport == GB_WS ? "ws" : "tcp",
           gb.mode == GB_MODE_NCHAN ? "nchan" : "goim",
           gb.procs, gb.sources, gb.rooms,
           gb.idle ? "none" : gb.push_key ? "key" : "room",
           gb.idle ? 0 : gb.push_rate, gb.msg_size, gp_measure_s,
           gp_authed_at_rss, gp_sent, gp_unsent, gp_expected, delivered,
           share, gp_measure_s > 0 && !gb.idle
                  ? (double) delivered / gp_measure_s : 0.0,
           gb_hist_ms(&gp_hist, 0.50), gb_hist_ms(&gp_hist, 0.90),
           gb_hist_ms(&gp_hist, 0.99), (double) gp_hist.max / 1000.0,
           cpu, cpu_per, gp_rss0, gp_rss1, rss, pss, gp_client_cpu,
           gp_total.connects, gp_total.heartbeats, gp_total.stale,
           gp_total.errors, gp_api_errors,
           gp_total.errors + gp_api_errors);

    for (i = 0; i < gb.npids; i++) {
        printf("%s%d", i ? "," : "", (int) gb.pids[i]);
    }

    printf("],\"idle\":%s,\"completed\":%s}\n", gb.idle ? "true" : "false",
           gp_stop || gp_deadline_hit ? "false" : "true");

    fflush(stdout);
}


int
main(int argc, char **argv)
{
    int          opt, have_server;
    const char  *slash;

    static struct option  opts[] = {
        { "clients",      required_argument, NULL, 'c' },
        { "transport",    required_argument, NULL, 't' },
        { "mode",         required_argument, NULL, 'm' },
        { "server",       required_argument, NULL, 's' },
        { "ws-path",      required_argument, NULL, 'w' },
        { "sources",      required_argument, NULL, 'K' },
        { "procs",        required_argument, NULL, 'P' },
        { "connect-rate", required_argument, NULL, 'r' },
        { "rooms",        required_argument, NULL, 'R' },
        { "heartbeat",    required_argument, NULL, 'H' },
        { "api",          required_argument, NULL, 'a' },
        { "push-rate",    required_argument, NULL, 'M' },
        { "push-mode",    required_argument, NULL, 'p' },
        { "inflight",     required_argument, NULL, 'i' },
        { "msg-size",     required_argument, NULL, 'b' },
        { "settle",       required_argument, NULL, 'S' },
        { "duration",     required_argument, NULL, 'd' },
        { "drain",        required_argument, NULL, 'D' },
        { "server-pids",  required_argument, NULL, 'x' },
        { "id-base",      required_argument, NULL, 'B' },
        { "idle",         no_argument,       NULL, 'I' },
        { "help",         no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    memset(&gb, 0, sizeof(gb));

    gb.clients = 1000;
    gb.connect_rate = 10000;
    gb.rooms = 1;
    gb.heartbeat = 30;
    gb.push_rate = 40;
    gb.inflight = 16;
    gb.settle = 2;
    gb.duration = 10;
    gb.drain = 1;
    gb.ws_path = "/sub";
    have_server = 0;

    (void) gb_parse_addr("127.0.0.1:3111", &gb.api, gb.api_str,
                         sizeof(gb.api_str));

#define GB_NUM(name, min, max, field)                                         \
    if (gb_parse_long(optarg, min, max, &gb.field) != 0) {                    \
        fprintf(stderr, "goim-bench: --" name " takes %ld..%ld\n",           \
                (long) (min), (long) (max));                                  \
        return 2;                                                             \
    }                                                                         \
    break

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {

        case 'c': GB_NUM("clients", 1, 10000000, clients);
        case 'K': GB_NUM("sources", 1, 254, sources);
        case 'P': GB_NUM("procs", 1, GB_MAX_PROCS, procs);
        case 'r': GB_NUM("connect-rate", 1, 1000000, connect_rate);
        case 'R': GB_NUM("rooms", 1, 10000000, rooms);
        case 'H': GB_NUM("heartbeat", 1, 3600, heartbeat);
        case 'M': GB_NUM("push-rate", 1, 10000000, push_rate);
        case 'i': GB_NUM("inflight", 1, 4096, inflight);
        case 'b': GB_NUM("msg-size", 0, GB_MAX_MSG_SIZE, msg_size);
        case 'S': GB_NUM("settle", 0, 3600, settle);
        case 'd': GB_NUM("duration", 1, 86400, duration);
        case 'D': GB_NUM("drain", 0, 600, drain);
        case 'B': GB_NUM("id-base", 0, 1000000000, id_base);

        case 't':
            if (strcmp(optarg, "tcp") == 0) {
                gb.transport = GB_TCP;
            } else if (strcmp(optarg, "ws") == 0) {
                gb.transport = GB_WS;
            } else {
                fprintf(stderr, "goim-bench: --transport tcp|ws\n");
                return 2;
            }
            break;

        case 'm':
            if (strcmp(optarg, "goim") == 0) {
                gb.mode = GB_MODE_GOIM;
            } else if (strcmp(optarg, "nchan") == 0) {
                gb.mode = GB_MODE_NCHAN;
            } else {
                fprintf(stderr, "goim-bench: --mode goim|nchan\n");
                return 2;
            }
            break;

        case 'p':
            if (strcmp(optarg, "room") == 0) {
                gb.push_key = 0;
            } else if (strcmp(optarg, "key") == 0) {
                gb.push_key = 1;
            } else {
                fprintf(stderr, "goim-bench: --push-mode room|key\n");
                return 2;
            }
            break;

        case 's':
            if (gb_parse_addr(optarg, &gb.server, gb.server_str,
                              sizeof(gb.server_str)) != 0)
            {
                fprintf(stderr, "goim-bench: --server must be host:port "
                        "in 127.0.0.0/8\n");
                return 2;
            }
            have_server = 1;
            break;

        case 'a':
            if (gb_parse_addr(optarg, &gb.api, gb.api_str,
                              sizeof(gb.api_str)) != 0)
            {
                fprintf(stderr, "goim-bench: --api must be host:port "
                        "in 127.0.0.0/8\n");
                return 2;
            }
            break;

        case 'w':
            if (optarg[0] != '/' || strlen(optarg) > 200
                || strpbrk(optarg, " \r\n") != NULL)
            {
                fprintf(stderr, "goim-bench: bad --ws-path\n");
                return 2;
            }
            gb.ws_path = optarg;
            break;

        case 'x':
            if (gb_parse_pids(optarg) != 0) {
                fprintf(stderr, "goim-bench: --server-pids takes a comma "
                        "separated list of pids\n");
                return 2;
            }
            break;

        case 'I':
            gb.idle = 1;
            break;

        case 'h':
            gb_usage();
            return 0;

        default:
            gb_usage();
            return 2;
        }
    }

#undef GB_NUM

    if (optind != argc) {
        gb_usage();
        return 2;
    }

    if (!have_server) {
        (void) gb_parse_addr(gb.transport == GB_WS ? "127.0.0.1:3102"
                                                   : "127.0.0.1:3101",
                             &gb.server, gb.server_str,
                             sizeof(gb.server_str));
    }

    if (gb.mode == GB_MODE_NCHAN) {
        if (gb.transport != GB_WS) {
            fprintf(stderr, "goim-bench: --mode nchan needs "
                    "--transport ws\n");
            return 2;
        }

        if (gb.push_key) {
            fprintf(stderr, "goim-bench: --mode nchan publishes to "
                    "channels only\n");
            return 2;
        }

        /* /sub/<channel>: the publisher location is /pub/<channel> */
        slash = strrchr(gb.ws_path, '/');

        if (slash[1] == '\0' || strlen(slash + 1) >= sizeof(gb.channel)) {
            fprintf(stderr, "goim-bench: --mode nchan needs "
                    "--ws-path /sub/<channel>\n");
            return 2;
        }

        strcpy(gb.channel, slash + 1);
    }

    /* defaults that keep under the fd and port limits */
    if (gb.procs == 0) {
        gb.procs = (gb.clients + 17999) / 18000;

        if (gb.procs > GB_MAX_PROCS) {
            gb.procs = GB_MAX_PROCS;
        }
    }

    if (gb.procs > gb.clients) {
        gb.procs = gb.clients;
    }

    if (gb.sources == 0) {
        gb.sources = (gb.clients + 24999) / 25000;
    }

    if (gb_check_limits() != 0) {
        return 2;
    }

    return gb_parent();
}
