/*
 * goim-floor: what the kernel charges for the writes a push server cannot
 * avoid, measured on loopback TCP so that bench/RESULTS.md can put the
 * server's figures next to a floor.
 *
 * The tool creates N loopback TCP connections itself: a listener on
 * 127.0.0.1 (ephemeral port), a forked reader that connects N sockets,
 * and the parent that accepts them (TCP_NODELAY, as nginx sets it) and
 * forks W writer processes, N/W sockets each (as nginx's W workers
 * share the connections).  Measured in the writers with
 * CLOCK_PROCESS_CPUTIME_ID, the same utime + stime that goim-bench
 * reads for the server:
 *
 *   write     one write() of --size bytes to each of the N sockets, for
 *             --rounds rounds: CPU and wall time per write();
 *   fan-out   the wall time of one such round: one message to all N
 *             sockets, the writers in parallel (min, p50, p99, max);
 *   writev k  one writev() of k messages of --size bytes to each socket:
 *             CPU per call and per message, for each k of --batches;
 *   io_uring  one send of --size bytes to each socket, the sends of 512
 *             sockets made by one io_uring_enter() (MSG_DONTWAIT), as a
 *             server that batches its system calls writes: CPU and wall
 *             time per send.
 *   sync      with --sync DIR, before the tests: one write() to each
 *             socket, then one send through io_uring, each started at
 *             one moment in every goim-floor given the same DIR
 *             (bench/floor-n.sh runs one per 19,000 pairs): the wall
 *             clock of the floor's own fan-out to all of their sockets,
 *             with the machine's other users as they are.  Each
 *             instance creates DIR/ready<step>.<pid> and waits for
 *             SIGUSR1; the times are CLOCK_REALTIME, to compare across
 *             processes.  The first of the two rounds grows the slab
 *             caches for a message parked in every socket; the second
 *             finds them grown (--sync-first picks which goes first).
 *
 * The connections are first warmed up past TCP's initial quick ACKs.
 * Each test runs with a quiet reader: it sleeps on a pipe while the
 * writers write and drains every socket between rounds, so no reader
 * wake-up is charged to a writer.  write and fan-out are measured again
 * with an active reader, draining with epoll while the sockets are
 * written, as a server's clients do.  Rounds are --gap ms apart.  The
 * reader reports the bytes it read; a mismatch with the bytes written
 * fails the run.  One JSON line on stdout.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define GF_MAX_BATCHES   16
#define GF_MAX_K         1024
#define GF_MAX_SIZE      65536
#define GF_FD_RESERVE    32
#define GF_MAX_WRITERS   16
#define GF_WARMUP        24       /* rounds: past TCP's 16 quick ACKs */
#define GF_URING_SLICE   512      /* sends per io_uring_enter() */

/* what a writer is asked to write to each socket in a round */
#define GF_ROUND_EXIT    -1
#define GF_ROUND_URING   -2       /* one send, through io_uring */


typedef struct {
    uint64_t  bytes;
    double    cpu_s;
    int       closed;
} gf_child_report_t;


typedef struct {            /* a writer's answer to one round */
    uint64_t  bytes;
    double    cpu_s;
} gf_round_t;


typedef struct {
    pid_t     pid;
    int       to;           /* rounds to write: k, or -1 to exit */
    int       from;         /* gf_round_t answers */
} gf_writer_t;


static long      gf_pairs = 10000;
static long      gf_size = 40;
static long      gf_rounds = 30;
static long      gf_gap_ms = 10;
static long      gf_batches[GF_MAX_BATCHES] = { 1, 4, 16, 64 };
static int       gf_nbatches = 4;
static long      gf_nwriters = 1;

static gf_writer_t  gf_writers[GF_MAX_WRITERS];
static char        *gf_msgs;

static int      *gf_fds;
static uint64_t  gf_written;
static char     *gf_sync_dir;
static int       gf_sync_uring_first;
static int       gf_shuffle;
static long      gf_descents;   /* sockets made before the one before */


static void
gf_usage(void)
{
    fprintf(stderr,
        "usage: goim-floor [options]\n"
        "  --pairs N       loopback TCP connections (10000)\n"
        "  --size B        bytes per message (40)\n"
        "  --rounds R      rounds per test (30)\n"
        "  --gap MS        pause between rounds (10)\n"
        "  --batches K,..  messages per writev() (1,4,16,64)\n"
        "  --writers W     writing processes, N/W sockets each (1)\n"
        "  --sync DIR      then one round of each kind started by SIGUSR1,\n"
        "                  announced in DIR (see bench/floor-n.sh)\n"
        "  --sync-first K  write (default) or uring: the kind that goes\n"
        "                  first, into slab caches not yet grown\n"
        "  --shuffle       write the sockets in a random order, not in\n"
        "                  the order they were made\n"
        "Writes one JSON line on stdout.\n");
}


static double
gf_now(clockid_t clock)
{
    struct timespec  ts;

    clock_gettime(clock, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static void
gf_die(const char *what)
{
    fprintf(stderr, "goim-floor: %s: %s\n", what, strerror(errno));
    exit(1);
}


static int
gf_cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static double
gf_pct(double *v, long n, double q)
{
    long  i;

    i = (long) (q * (double) (n - 1) + 0.5);

    return v[i];
}


/* the reader: connect N sockets, then obey the parent's commands */

static int   gf_cmd_fd, gf_ack_fd, gf_ep;
static int  *gf_rfds;
static char *gf_rbuf;
static gf_child_report_t  gf_rep;


static void
gf_child_drain(int fd, long i)
{
    ssize_t  r;

    for ( ;; ) {
        r = read(fd, gf_rbuf, 65536);

        if (r > 0) {
            gf_rep.bytes += (uint64_t) r;
            continue;
        }

        if (r == 0) {
            gf_rep.closed++;
            close(fd);
            if (i >= 0) {
                gf_rfds[i] = -1;
            }
            return;
        }

        if (errno == EINTR) {
            continue;
        }

        if (errno != EAGAIN) {
            gf_die("child: read");
        }

        return;
    }
}


static void
gf_child_ack(void)
{
    if (write(gf_ack_fd, "k", 1) != 1) {
        gf_die("child: ack");
    }
}


static void
gf_child(struct sockaddr_in *sin)
{
    int                 fd, n, i, one, active;
    long                k;
    char                cmd;
    ssize_t             r;
    struct epoll_event  ev, evs[512];

    gf_rbuf = malloc(65536);
    gf_rfds = calloc((size_t) gf_pairs, sizeof(int));
    gf_ep = epoll_create1(0);

    if (gf_rbuf == NULL || gf_rfds == NULL || gf_ep == -1) {
        gf_die("child: malloc or epoll_create1");
    }

    for (k = 0; k < gf_pairs; k++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd == -1) {
            gf_die("child: socket");
        }

        one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        if (connect(fd, (struct sockaddr *) sin, sizeof(*sin)) == -1) {
            gf_die("child: connect");
        }

        if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1) {
            gf_die("child: fcntl");
        }

        gf_rfds[k] = fd;
        ev.events = EPOLLIN;
        ev.data.u64 = (uint64_t) k;

        if (epoll_ctl(gf_ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
            gf_die("child: epoll_ctl");
        }
    }

    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;

    if (epoll_ctl(gf_ep, EPOLL_CTL_ADD, gf_cmd_fd, &ev) == -1) {
        gf_die("child: epoll_ctl");
    }

    gf_child_ack();
    active = 0;

    for ( ;; ) {

        if (active) {
            n = epoll_wait(gf_ep, evs, 512, -1);

            if (n == -1) {
                if (errno == EINTR) {
                    continue;
                }
                gf_die("child: epoll_wait");
            }

            cmd = 0;

            for (i = 0; i < n; i++) {
                if (evs[i].data.u64 == UINT64_MAX) {
                    cmd = 1;
                    continue;
                }

                k = (long) evs[i].data.u64;
                gf_child_drain(gf_rfds[k], k);
            }

            if (!cmd) {
                continue;
            }
        }

        r = read(gf_cmd_fd, &cmd, 1);

        if (r == -1 && errno == EINTR) {
            continue;
        }

        if (r != 1) {
            gf_die("child: command pipe");
        }

        switch (cmd) {

        case 'q':           /* quiet: sleep on the pipe while written to */
            active = 0;
            break;

        case 'a':           /* active: drain while written to */
            active = 1;
            break;

        case 'd':           /* drain everything now */
            for (k = 0; k < gf_pairs; k++) {
                if (gf_rfds[k] != -1) {
                    gf_child_drain(gf_rfds[k], k);
                }
            }
            break;

        case 'x':           /* the parent closed its ends: read to EOF */
            while (gf_rep.closed < gf_pairs) {
                n = epoll_wait(gf_ep, evs, 512, 30000);

                if (n == -1 && errno == EINTR) {
                    continue;
                }

                if (n <= 0) {
                    fprintf(stderr, "goim-floor: child: no EOF in 30 s\n");
                    exit(1);
                }

                for (i = 0; i < n; i++) {
                    if (evs[i].data.u64 == UINT64_MAX) {
                        continue;
                    }

                    k = (long) evs[i].data.u64;
                    if (gf_rfds[k] != -1) {
                        gf_child_drain(gf_rfds[k], k);
                    }
                }
            }

            gf_rep.cpu_s = gf_now(CLOCK_PROCESS_CPUTIME_ID);

            if (write(gf_ack_fd, &gf_rep, sizeof(gf_rep))
                != (ssize_t) sizeof(gf_rep))
            {
                gf_die("child: report");
            }

            exit(0);

        default:
            fprintf(stderr, "goim-floor: child: bad command\n");
            exit(1);
        }

        gf_child_ack();
    }
}


/* parent: one command, one acknowledgement */

static int  gf_to_child, gf_from_child;


static void
gf_command(char cmd)
{
    char  ack;

    if (write(gf_to_child, &cmd, 1) != 1
        || read(gf_from_child, &ack, 1) != 1)
    {
        gf_die("the reader is gone");
    }
}


static void
gf_pause(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        /* the rest of the pause */
    }
}


static void
gf_write_all(int fd, struct iovec *iov, int niov)
{
    ssize_t  n;

    /* blocking sockets: a full buffer blocks (wall time), never fails */
    while (niov) {
        n = writev(fd, iov, niov);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            gf_die("writev");
        }

        gf_written += (uint64_t) n;

        /* skip what went out; a short write resumes mid-vector */
        while (niov && (size_t) n >= iov->iov_len) {
            n -= (ssize_t) iov->iov_len;
            iov++;
            niov--;
        }

        if (niov) {
            iov->iov_base = (char *) iov->iov_base + n;
            iov->iov_len -= (size_t) n;
        }
    }
}


/*
 * The io_uring round of a writer: the sends of GF_URING_SLICE sockets
 * in one call; a send that comes back short (a full buffer) is finished
 * with a blocking write, as the other rounds do.
 */

static void
gf_uring_round(struct io_uring *ring, long lo, long hi)
{
    int                   res;
    long                  i, j, m;
    unsigned              head, seen;
    struct iovec          iov;
    struct io_uring_sqe  *sqe;
    struct io_uring_cqe  *cqe;

    for (i = lo; i < hi; i += m) {
        m = (hi - i < GF_URING_SLICE) ? hi - i : GF_URING_SLICE;

        for (j = 0; j < m; j++) {
            sqe = io_uring_get_sqe(ring);
            io_uring_prep_send(sqe, gf_fds[i + j], gf_msgs, (size_t) gf_size,
                               MSG_DONTWAIT|MSG_NOSIGNAL);
            io_uring_sqe_set_data64(sqe, (uint64_t) (i + j));
        }

        for (seen = 0; seen < m; ) {
            res = io_uring_submit_and_wait(ring, (unsigned) (m - seen));

            if (res < 0 && res != -EINTR) {
                errno = -res;
                gf_die("io_uring_submit_and_wait");
            }

            j = 0;

            io_uring_for_each_cqe(ring, head, cqe) {
                res = cqe->res > 0 ? cqe->res : 0;
                gf_written += (uint64_t) res;

                if (res < gf_size) {
                    iov.iov_base = gf_msgs + res;
                    iov.iov_len = (size_t) (gf_size - res);
                    gf_write_all(gf_fds[io_uring_cqe_get_data64(cqe)],
                                 &iov, 1);
                }

                j++;
            }

            io_uring_cq_advance(ring, (unsigned) j);
            seen += (unsigned) j;
        }
    }
}


/* a write() (k == 0) or writev() of k messages to each of [lo, hi) */

static void
gf_write_round(long lo, long hi, long k)
{
    long          i, j, niov;
    ssize_t       n;
    struct iovec  iov[GF_MAX_K];

    niov = k ? k : 1;

    for (i = lo; i < hi; i++) {
        if (k == 0) {
            n = write(gf_fds[i], gf_msgs, (size_t) gf_size);

            if (n == gf_size) {
                gf_written += (uint64_t) n;
                continue;
            }

            /* rare: EINTR or a short write, finish it the slow way */
            if (n > 0) {
                gf_written += (uint64_t) n;
            } else {
                n = 0;
            }

            iov[0].iov_base = gf_msgs + n;
            iov[0].iov_len = (size_t) (gf_size - n);
            gf_write_all(gf_fds[i], iov, 1);
            continue;
        }

        for (j = 0; j < niov; j++) {
            iov[j].iov_base = gf_msgs + j * gf_size;
            iov[j].iov_len = (size_t) gf_size;
        }

        gf_write_all(gf_fds[i], iov, (int) niov);
    }
}


/*
 * A writer process: its slice [lo, hi) of the sockets.  For each k read
 * from the parent, one round: one call per socket with k messages
 * (k == 0: a plain write() of one message; GF_ROUND_URING: one send
 * through io_uring), answered with the round's CPU and bytes.
 */

static void
gf_writer(long lo, long hi, int from_parent, int to_parent)
{
    int               ring_up, rc;
    long              k;
    double            c0;
    ssize_t           n;
    uint64_t          w0;
    gf_round_t        ans;
    struct io_uring   ring;

    ring_up = 0;

    for ( ;; ) {
        n = read(from_parent, &k, sizeof(k));

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n != (ssize_t) sizeof(k) || k == GF_ROUND_EXIT
            || k < GF_ROUND_URING)
        {
            exit(0);
        }

        if (k == GF_ROUND_URING && !ring_up) {
            rc = io_uring_queue_init(GF_URING_SLICE, &ring, 0);

            if (rc < 0) {
                errno = -rc;
                gf_die("io_uring_queue_init");
            }

            ring_up = 1;
        }

        w0 = gf_written;
        c0 = gf_now(CLOCK_PROCESS_CPUTIME_ID);

        if (k == GF_ROUND_URING) {
            gf_uring_round(&ring, lo, hi);

        } else {
            gf_write_round(lo, hi, k);
        }

        ans.cpu_s = gf_now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        ans.bytes = gf_written - w0;

        if (write(to_parent, &ans, sizeof(ans)) != (ssize_t) sizeof(ans)) {
            exit(1);
        }
    }
}


static void
gf_start_writers(void)
{
    int    to[2], from[2];
    long   w, lo, hi;
    pid_t  pid;

    for (w = 0; w < gf_nwriters; w++) {
        if (pipe(to) == -1 || pipe(from) == -1) {
            gf_die("pipe");
        }

        lo = w * gf_pairs / gf_nwriters;
        hi = (w + 1) * gf_pairs / gf_nwriters;

        pid = fork();
        if (pid == -1) {
            gf_die("fork");
        }

        if (pid == 0) {
            close(to[1]);
            close(from[0]);
            close(gf_to_child);
            close(gf_from_child);
            gf_writer(lo, hi, to[0], from[1]);
        }

        close(to[0]);
        close(from[1]);
        gf_writers[w].pid = pid;
        gf_writers[w].to = to[1];
        gf_writers[w].from = from[0];
    }
}


static void
gf_stop_writers(void)
{
    long  w, k;
    int   status;

    k = GF_ROUND_EXIT;

    for (w = 0; w < gf_nwriters; w++) {
        (void) write(gf_writers[w].to, &k, sizeof(k));
        close(gf_writers[w].to);
        close(gf_writers[w].from);
    }

    for (w = 0; w < gf_nwriters; w++) {
        (void) waitpid(gf_writers[w].pid, &status, 0);
    }
}


/*
 * One test: --rounds rounds, every writer writing k messages (k == 0: a
 * plain write(), GF_ROUND_URING: a send through io_uring) to each of
 * its sockets, with the reader quiet (drained
 * after each round, outside the measurement) or active.  Returns the
 * writers' CPU and the wall time summed over the rounds; round_wall[]
 * gets each round's wall time, from the parent's go to the last
 * writer's answer.
 */

/* one round of k by every writer: their CPU, summed */

static double
gf_round(long k)
{
    long        w;
    double      cpu;
    gf_round_t  ans;

    for (w = 0; w < gf_nwriters; w++) {
        if (write(gf_writers[w].to, &k, sizeof(k)) != (ssize_t) sizeof(k)) {
            gf_die("a writer is gone");
        }
    }

    cpu = 0;

    for (w = 0; w < gf_nwriters; w++) {
        if (read(gf_writers[w].from, &ans, sizeof(ans))
            != (ssize_t) sizeof(ans))
        {
            gf_die("a writer is gone");
        }

        gf_written += ans.bytes;
        cpu += ans.cpu_s;
    }

    return cpu;
}


static void
gf_run(long k, int active, double *cpu, double *wall, double *round_wall)
{
    long    r;
    double  w0, w1, c;

    *cpu = 0;
    *wall = 0;

    gf_command(active ? 'a' : 'q');

    for (r = -1; r < gf_rounds; r++) {     /* round -1 warms up */
        gf_pause(gf_gap_ms);

        w0 = gf_now(CLOCK_MONOTONIC);
        c = gf_round(k);
        w1 = gf_now(CLOCK_MONOTONIC);

        if (r >= 0) {
            *cpu += c;
            *wall += w1 - w0;

            if (round_wall) {
                round_wall[r] = w1 - w0;
            }
        }

        if (!active) {
            gf_command('d');
        }
    }

    gf_command('q');
    gf_command('d');
}


/*
 * --sync: after a second's pause, announce that this instance is ready
 * for step and wait for the go (SIGUSR1, blocked since the start so
 * that none is lost).
 */

static void
gf_sync_wait(int step)
{
    int       fd, sig;
    char      path[4096];
    sigset_t  set;

    /* a push's pause: well past TCP's least retransmission timeout */
    gf_pause(1000);

    (void) snprintf(path, sizeof(path), "%s/ready%d.%ld", gf_sync_dir, step,
                    (long) getpid());

    fd = open(path, O_WRONLY|O_CREAT|O_TRUNC, 0644);
    if (fd == -1) {
        gf_die(path);
    }

    close(fd);

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);

    if (sigwait(&set, &sig) != 0) {
        gf_die("sigwait");
    }
}


/*
 * One round of k (0: write(), GF_ROUND_URING: io_uring) to every socket,
 * the reader quiet as a stopped client: its start and end as the
 * wall clock reads them, and the writers' CPU.  Unlike the tests'
 * rounds, 10 ms apart, it comes after a pause of seconds, as a push
 * does: each reader's TCP acknowledges the first segment after a pause
 * at once (quick ACK), and on loopback the writer's send carries that.
 */

static void
gf_sync_round(int step, long k, double *start, double *end, double *cpu)
{
    gf_sync_wait(step);

    *start = gf_now(CLOCK_REALTIME);
    *cpu = gf_round(k);
    *end = gf_now(CLOCK_REALTIME);

    gf_command('d');
}


/*
 * A server's sockets are not written in the order the kernel made them:
 * its clients connect in any order, and the kernel objects of one
 * worker's connections lie among every other worker's.  Written in
 * creation order, the floor's sockets sit next to each other in memory;
 * shuffled, each send touches memory far from the last one's.  A fixed
 * seed keeps runs comparable.
 */

static void
gf_shuffle_fds(void)
{
    int       fd;
    long      i, j;
    uint64_t  x;

    x = 0x9e3779b97f4a7c15ULL;

    for (i = gf_pairs - 1; i > 0; i--) {
        /* xorshift64: enough for an order, no library state */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        j = (long) (x % (uint64_t) (i + 1));
        fd = gf_fds[i];
        gf_fds[i] = gf_fds[j];
        gf_fds[j] = fd;
    }
}


static int
gf_parse_batches(const char *s)
{
    char  *end;
    long   v;

    gf_nbatches = 0;

    while (*s) {
        v = strtol(s, &end, 10);

        if (end == s || v < 1 || v > GF_MAX_K
            || gf_nbatches == GF_MAX_BATCHES)
        {
            return -1;
        }

        gf_batches[gf_nbatches++] = v;
        s = end;

        if (*s == ',') {
            s++;
        } else if (*s) {
            return -1;
        }
    }

    return gf_nbatches ? 0 : -1;
}


static long
gf_parse_long(const char *name, const char *s, long min, long max)
{
    char  *end;
    long   v;

    v = strtol(s, &end, 10);

    if (*s == '\0' || *end || v < min || v > max) {
        fprintf(stderr, "goim-floor: --%s takes %ld..%ld\n", name, min, max);
        exit(2);
    }

    return v;
}


int
main(int argc, char **argv)
{
    int                 lfd, one, cmd_pipe[2], ack_pipe[2], status, c, i;
    int                 sync_first;
    long                k, b, accepted, save;
    char               *msgs, ack;
    pid_t               pid;
    double              qcpu, qwall, acpu, awall, vcpu, vwall, ucpu, uwall;
    double              t0, cpu0, *qrounds, *arounds;
    double              sw0, sw1, su0, su1, swcpu, sucpu;
    sigset_t            usr1;
    socklen_t           slen;
    struct rlimit       rl;
    struct sockaddr_in  sin;
    gf_child_report_t   rep;
    double              vcpu_s[GF_MAX_BATCHES], vwall_s[GF_MAX_BATCHES];

    static struct option  opts[] = {
        { "pairs",   required_argument, NULL, 'n' },
        { "size",    required_argument, NULL, 's' },
        { "rounds",  required_argument, NULL, 'r' },
        { "gap",     required_argument, NULL, 'g' },
        { "batches", required_argument, NULL, 'b' },
        { "writers", required_argument, NULL, 'w' },
        { "sync",    required_argument, NULL, 'S' },
        { "sync-first", required_argument, NULL, 'F' },
        { "shuffle", no_argument,       NULL, 'R' },
        { "help",    no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    sync_first = 0;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            gf_pairs = gf_parse_long("pairs", optarg, 1, 1000000);
            break;
        case 's':
            gf_size = gf_parse_long("size", optarg, 1, GF_MAX_SIZE);
            break;
        case 'r':
            gf_rounds = gf_parse_long("rounds", optarg, 1, 100000);
            break;
        case 'g':
            gf_gap_ms = gf_parse_long("gap", optarg, 0, 10000);
            break;
        case 'b':
            if (gf_parse_batches(optarg) != 0) {
                fprintf(stderr, "goim-floor: --batches takes k,k,... "
                        "(1..%d, at most %d)\n", GF_MAX_K, GF_MAX_BATCHES);
                return 2;
            }
            break;
        case 'w':
            gf_nwriters = gf_parse_long("writers", optarg, 1, GF_MAX_WRITERS);
            break;
        case 'S':
            gf_sync_dir = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "write") != 0 && strcmp(optarg, "uring") != 0)
            {
                fprintf(stderr, "goim-floor: --sync-first takes write or "
                        "uring\n");
                return 2;
            }
            gf_sync_uring_first = (strcmp(optarg, "uring") == 0);
            sync_first = 1;
            break;
        case 'R':
            gf_shuffle = 1;
            break;
        case 'h':
            gf_usage();
            return 0;
        default:
            gf_usage();
            return 2;
        }
    }

    if (optind != argc) {
        gf_usage();
        return 2;
    }

    if (sync_first && gf_sync_dir == NULL) {
        fprintf(stderr, "goim-floor: --sync-first needs --sync\n");
        return 2;
    }

    /* each process holds N sockets: stay under the open files limit */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);

        if (rl.rlim_cur != RLIM_INFINITY
            && (rlim_t) gf_pairs + GF_FD_RESERVE > rl.rlim_cur)
        {
            fprintf(stderr, "goim-floor: %ld pairs need more than the "
                    "%lu open files allowed per process\n", gf_pairs,
                    (unsigned long) rl.rlim_cur);
            return 2;
        }
    }

    /* --sync's go: blocked until waited for, inherited by the children */
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    (void) sigprocmask(SIG_BLOCK, &usr1, NULL);
    sw0 = sw1 = su0 = su1 = swcpu = sucpu = 0;

    msgs = malloc((size_t) (GF_MAX_K * gf_size));
    gf_fds = calloc((size_t) gf_pairs, sizeof(int));
    qrounds = calloc((size_t) gf_rounds, sizeof(double));
    arounds = calloc((size_t) gf_rounds, sizeof(double));

    if (msgs == NULL || gf_fds == NULL || qrounds == NULL || arounds == NULL)
    {
        gf_die("malloc");
    }

    /* printable bytes, like a JSON push body */
    for (k = 0; k < GF_MAX_K * gf_size; k++) {
        msgs[k] = (char) ('a' + k % 26);
    }

    gf_msgs = msgs;

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd == -1) {
        gf_die("socket");
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (bind(lfd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        || listen(lfd, 4096) == -1)
    {
        gf_die("bind or listen on 127.0.0.1");
    }

    slen = sizeof(sin);
    if (getsockname(lfd, (struct sockaddr *) &sin, &slen) == -1) {
        gf_die("getsockname");
    }

    if (pipe(cmd_pipe) == -1 || pipe(ack_pipe) == -1) {
        gf_die("pipe");
    }

    t0 = gf_now(CLOCK_MONOTONIC);

    pid = fork();
    if (pid == -1) {
        gf_die("fork");
    }

    if (pid == 0) {
        close(lfd);
        close(cmd_pipe[1]);
        close(ack_pipe[0]);
        gf_cmd_fd = cmd_pipe[0];
        gf_ack_fd = ack_pipe[1];
        gf_child(&sin);
    }

    close(cmd_pipe[0]);
    close(ack_pipe[1]);
    gf_to_child = cmd_pipe[1];
    gf_from_child = ack_pipe[0];
    signal(SIGPIPE, SIG_IGN);

    /* the child connects while the parent accepts: no backlog overflow */
    for (accepted = 0; accepted < gf_pairs; accepted++) {
        gf_fds[accepted] = accept(lfd, NULL, NULL);

        if (gf_fds[accepted] == -1) {
            if (errno == EINTR) {
                accepted--;
                continue;
            }
            kill(pid, SIGKILL);
            gf_die("accept");
        }

        one = 1;
        (void) setsockopt(gf_fds[accepted], IPPROTO_TCP, TCP_NODELAY,
                          &one, sizeof(one));
    }

    close(lfd);

    if (gf_shuffle) {
        gf_shuffle_fds();
    }

    /* fds are numbered as the sockets were made: 0 in creation order */
    for (k = 1; k < gf_pairs; k++) {
        gf_descents += (gf_fds[k] < gf_fds[k - 1]);
    }

    /* the child is ready when it has set up its epoll */
    if (read(gf_from_child, &ack, 1) != 1) {
        kill(pid, SIGKILL);
        gf_die("the reader did not start");
    }

    gf_start_writers();

    /*
     * warm-up, not reported: a new connection ACKs its first 16 segments
     * at once (TCP quick ACKs), charged to the writer on loopback; the
     * server's long-lived connections delay their ACKs, which the
     * reader then sends when it reads.  Leave quick-ACK mode first.
     */
    save = gf_rounds;
    gf_rounds = GF_WARMUP;
    gf_run(0, 1, &qcpu, &qwall, NULL);
    gf_rounds = save;

    if (gf_sync_dir) {
        /*
         * before the tests, whose quiet rounds park a message in every
         * socket: the first round grows the slab caches for that, as a
         * server's first push to stopped clients does; the second finds
         * them grown
         */
        if (gf_sync_uring_first) {
            gf_sync_round(1, GF_ROUND_URING, &su0, &su1, &sucpu);
            gf_sync_round(2, 0, &sw0, &sw1, &swcpu);

        } else {
            gf_sync_round(1, 0, &sw0, &sw1, &swcpu);
            gf_sync_round(2, GF_ROUND_URING, &su0, &su1, &sucpu);
        }
    }

    gf_run(0, 0, &qcpu, &qwall, qrounds);
    gf_run(0, 1, &acpu, &awall, arounds);
    gf_run(GF_ROUND_URING, 0, &ucpu, &uwall, NULL);

    for (b = 0; b < gf_nbatches; b++) {
        gf_run(gf_batches[b], 0, &vcpu, &vwall, NULL);
        vcpu_s[b] = vcpu;
        vwall_s[b] = vwall;
    }

    cpu0 = qcpu + acpu + ucpu + swcpu + sucpu;

    for (b = 0; b < gf_nbatches; b++) {
        cpu0 += vcpu_s[b];
    }

    gf_stop_writers();

    for (i = 0; i < gf_pairs; i++) {
        close(gf_fds[i]);
    }

    ack = 'x';

    if (write(gf_to_child, &ack, 1) != 1
        || read(gf_from_child, &rep, sizeof(rep)) != (ssize_t) sizeof(rep))
    {
        fprintf(stderr, "goim-floor: no report from the reader\n");
        kill(pid, SIGKILL);
        (void) waitpid(pid, &status, 0);
        return 1;
    }

    (void) waitpid(pid, &status, 0);

    qsort(qrounds, (size_t) gf_rounds, sizeof(double), gf_cmp_double);
    qsort(arounds, (size_t) gf_rounds, sizeof(double), gf_cmp_double);

    printf("{\"pairs\":%ld,\"size\":%ld,\"rounds\":%ld,\"gap_ms\":%ld,"
           "\"writers\":%ld,\"shuffled\":%s,\"order_descents\":%ld,"
           "\"nodelay\":true,\"warmup_rounds\":%d,"
           "\"write_cpu_us\":%.3f,\"write_wall_us\":%.3f,"
           "\"fanout_ms_min\":%.3f,\"fanout_ms_p50\":%.3f,"
           "\"fanout_ms_p99\":%.3f,\"fanout_ms_max\":%.3f,",
           gf_pairs, gf_size, gf_rounds, gf_gap_ms, gf_nwriters,
           gf_shuffle ? "true" : "false", gf_descents, GF_WARMUP,
           qcpu * 1e6 / (double) (gf_rounds * gf_pairs),
           qwall * 1e6 / (double) (gf_rounds * gf_pairs),
           qrounds[0] * 1e3, gf_pct(qrounds, gf_rounds, 0.5) * 1e3,
           gf_pct(qrounds, gf_rounds, 0.99) * 1e3,
           qrounds[gf_rounds - 1] * 1e3);

    printf("\"active\":{\"write_cpu_us\":%.3f,\"write_wall_us\":%.3f,"
           "\"fanout_ms_min\":%.3f,\"fanout_ms_p50\":%.3f,"
           "\"fanout_ms_p99\":%.3f,\"fanout_ms_max\":%.3f},",
           acpu * 1e6 / (double) (gf_rounds * gf_pairs),
           awall * 1e6 / (double) (gf_rounds * gf_pairs),
           arounds[0] * 1e3, gf_pct(arounds, gf_rounds, 0.5) * 1e3,
           gf_pct(arounds, gf_rounds, 0.99) * 1e3,
           arounds[gf_rounds - 1] * 1e3);

    printf("\"io_uring\":{\"slice\":%d,\"write_cpu_us\":%.3f,"
           "\"write_wall_us\":%.3f},",
           GF_URING_SLICE,
           ucpu * 1e6 / (double) (gf_rounds * gf_pairs),
           uwall * 1e6 / (double) (gf_rounds * gf_pairs));

    if (gf_sync_dir) {
        printf("\"sync\":{\"first\":\"%s\",\"write_start\":%.6f,"
               "\"write_end\":%.6f,"
               "\"write_cpu_us\":%.3f,\"uring_start\":%.6f,"
               "\"uring_end\":%.6f,\"uring_cpu_us\":%.3f},",
               gf_sync_uring_first ? "uring" : "write",
               sw0, sw1, swcpu * 1e6 / (double) gf_pairs,
               su0, su1, sucpu * 1e6 / (double) gf_pairs);
    }

    printf("\"writev\":[");

    for (b = 0; b < gf_nbatches; b++) {
        k = gf_batches[b];
        printf("%s{\"k\":%ld,\"cpu_us_per_call\":%.3f,"
               "\"cpu_us_per_msg\":%.3f,\"wall_us_per_call\":%.3f}",
               b ? "," : "", k,
               vcpu_s[b] * 1e6 / (double) (gf_rounds * gf_pairs),
               vcpu_s[b] * 1e6 / (double) (gf_rounds * gf_pairs * k),
               vwall_s[b] * 1e6 / (double) (gf_rounds * gf_pairs));
    }

    printf("],\"bytes_written\":%" PRIu64 ",\"bytes_read\":%" PRIu64
           ",\"writers_cpu_s\":%.3f,\"reader_cpu_s\":%.3f,"
           "\"elapsed_s\":%.2f,\"ok\":%s}\n",
           gf_written, rep.bytes, cpu0, rep.cpu_s,
           gf_now(CLOCK_MONOTONIC) - t0,
           rep.bytes == gf_written && WIFEXITED(status)
           && WEXITSTATUS(status) == 0 ? "true" : "false");

    if (rep.bytes != gf_written) {
        fprintf(stderr, "goim-floor: wrote %" PRIu64 " bytes, the reader "
                "got %" PRIu64 "\n", gf_written, rep.bytes);
        return 1;
    }

    return 0;
}
