/*
 * goim-bench: main, options, usage, limit checks, server pids.
 */


#include <gb.h>


static void gb_usage(void);
static int gb_parse_long(const char *s, long min, long max, long *out);
static int gb_parse_addr(const char *s, struct sockaddr_in *sin, char *str,
    size_t size);
static int gb_parse_pids(const char *s);
static int gb_check_limits(void);


gb_conf_t           gb;


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
"  --max-pending K       clients per process between connect and auth\n"
"                        reply (1024): beyond it connects wait, so that a\n"
"                        busy server is not flooded into timeouts\n"
"  --rooms R             rooms bench://<i %% R> (1)\n"
"  --heartbeat S         heartbeat interval in seconds, spread (30)\n"
"  --api ADDR            HTTP API / nchan publisher (127.0.0.1:3111)\n"
"  --push-rate M         messages per second (40)\n"
"  --push-mode room|key|all\n"
"                        /goim/push/room, /goim/push/keys or /goim/push/all\n"
"                        (room)\n"
"  --push-batch N        key mode: N pushes per request, as JSON lines to\n"
"                        /goim/push/batch (1: the single route)\n"
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
"  --seq-base S          the first message's seq is S, so that publisher\n"
"                        runs in turn number their messages apart (0)\n"
"  --sockbuf B           SO_RCVBUF and SO_SNDBUF of each client socket\n"
"                        (the kernel's defaults)\n"
"  --idle                connect, settle, report memory only\n"
"  --read-pause MS       once all are connected, sleep MS after each turn\n"
"                        that read something, as a network paces a\n"
"                        client: writes then queue instead of waking it\n"
"                        (0)\n"
"  --chat G              chat shape: client i in rooms u://<id> and\n"
"                        g://<i / G> (G members, 2..16), pushes to random\n"
"                        groups, each (push, member) accounted for\n"
"  --reconnect-rate R    chat, --recover: clients closed and reconnected per\n"
"                        second while publishing, all processes (0)\n"
"  --excuse-ms W         chat: a member not ready between a push's request\n"
"                        and W ms after the later of its answer and its\n"
"                        last receipt by any member is excused (500)\n"
"  --recover             room pushes with goim_history on: each client keeps\n"
"                        its room's position (op 8, the inner ver and seq),\n"
"                        reconnects with op 35 before op 7, and every\n"
"                        (accepted push, client) pair is checked: once\n"
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

void
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
        { "push-batch",   required_argument, NULL, 'N' },
        { "settle",       required_argument, NULL, 'S' },
        { "duration",     required_argument, NULL, 'd' },
        { "drain",        required_argument, NULL, 'D' },
        { "server-pids",  required_argument, NULL, 'x' },
        { "id-base",      required_argument, NULL, 'B' },
        { "seq-base",     required_argument, NULL, 'q' },
        { "sockbuf",      required_argument, NULL, 'u' },
        { "max-pending",  required_argument, NULL, 'W' },
        { "idle",         no_argument,       NULL, 'I' },
        { "read-pause",   required_argument, NULL, 'Y' },
        { "chat",         required_argument, NULL, 'C' },
        { "reconnect-rate", required_argument, NULL, 'Z' },
        { "excuse-ms",    required_argument, NULL, 'E' },
        { "recover",      no_argument,       NULL, 'V' },
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
    gb.push_batch = 1;
    gb.settle = 2;
    gb.duration = 10;
    gb.drain = 1;
    gb.max_pending = GB_MAX_PENDING;
    gb.excuse_ms = 500;
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
        case 'Y': GB_NUM("read-pause", 0, 999, read_pause);
        case 'M': GB_NUM("push-rate", 1, 10000000, push_rate);
        case 'i': GB_NUM("inflight", 1, 4096, inflight);
        case 'b': GB_NUM("msg-size", 0, GB_MAX_MSG_SIZE, msg_size);
        case 'N': GB_NUM("push-batch", 1, 1000, push_batch);
        case 'S': GB_NUM("settle", 0, 86400, settle);
        case 'd': GB_NUM("duration", 1, 86400, duration);
        case 'D': GB_NUM("drain", 0, 600, drain);
        case 'B': GB_NUM("id-base", 0, 1000000000, id_base);
        case 'q': GB_NUM("seq-base", 0, 1000000000, seq_base);
        case 'u': GB_NUM("sockbuf", 1024, 64 * 1024 * 1024, sockbuf);
        case 'W': GB_NUM("max-pending", 1, 65536, max_pending);
        case 'C': GB_NUM("chat", 2, GB_CHAT_MAX_GROUP, chat);
        case 'Z': GB_NUM("reconnect-rate", 0, 1000000, reconnect_rate);
        case 'E': GB_NUM("excuse-ms", 0, 60000, excuse_ms);

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
                gb.push_mode = GB_PUSH_ROOM;
            } else if (strcmp(optarg, "key") == 0) {
                gb.push_mode = GB_PUSH_KEY;
            } else if (strcmp(optarg, "all") == 0) {
                gb.push_mode = GB_PUSH_ALL;
            } else {
                fprintf(stderr, "goim-bench: --push-mode room|key|all\n");
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

        case 'V':
            gb.recover = 1;
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

    if (gb.push_batch > 1
        && (gb.push_mode != GB_PUSH_KEY || gb.mode != GB_MODE_GOIM))
    {
        fprintf(stderr, "goim-bench: --push-batch needs --push-mode key\n");
        return 2;
    }

    if (gb.mode == GB_MODE_NCHAN) {
        if (gb.transport != GB_WS) {
            fprintf(stderr, "goim-bench: --mode nchan needs "
                    "--transport ws\n");
            return 2;
        }

        if (gb.push_mode != GB_PUSH_ROOM) {
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

    if (gb.chat) {
        if (gb.mode != GB_MODE_GOIM || gb.push_mode != GB_PUSH_ROOM) {
            fprintf(stderr, "goim-bench: --chat is goim room pushes\n");
            return 2;
        }

        gb.groups = (gb.clients + gb.chat - 1) / gb.chat;

        /* every seq of the run, with some headroom */
        gb.seq_max = gb.idle ? 1 : gb.push_rate * gb.duration + 64;

        if (gb.seq_max > 100000000) {
            fprintf(stderr, "goim-bench: --chat tracks at most 100,000,000 "
                    "pushes (--push-rate x --duration)\n");
            return 2;
        }
    }

    if (gb.recover) {
        if (gb.mode != GB_MODE_GOIM || gb.push_mode != GB_PUSH_ROOM
            || gb.chat)
        {
            fprintf(stderr, "goim-bench: --recover is goim room pushes, "
                    "without --chat\n");
            return 2;
        }

        gb.seq_max = gb.idle ? 1 : gb.push_rate * gb.duration + 64;

        if (gb.seq_max * (gb.clients / 8 + 1) > 4000000000L) {
            fprintf(stderr, "goim-bench: --recover keeps a bit per (push, "
                    "client): at most 32e9 of them\n");
            return 2;
        }
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
