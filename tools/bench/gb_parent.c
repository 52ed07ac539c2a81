/*
 * goim-bench: the parent: child processes, aggregation, phases, report.
 */


#include <gb.h>


static void gb_proc_read(gb_proc_t *pr);
static void gb_report(void);


static gb_proc_t    gp_procs[GB_MAX_PROCS];
gb_http_t          *gp_http;
int                 gp_ep = -1;
static gb_hist_t    gp_hist;
static gb_seq_t     gp_seqs[GB_SEQS];
static gb_stats_t   gp_total;           /* sum of the latest records */
static volatile sig_atomic_t  gp_stop;
uint64_t            gp_sent;            /* accepted by the API */
uint64_t            gp_expected;
uint64_t            gp_api_errors;
static uint64_t     gp_unsent;          /* due but no connection free */
static int          gp_deadline_hit;
static double       gp_cpu0, gp_cpu1;
static long         gp_rss0, gp_rss1;
static long         gp_pss0, gp_pss1;
static uint64_t     gp_authed_at_rss;
static int          gp_have_server;
static double       gp_measure_s;
static double       gp_client_cpu;      /* ours: is the client the limit? */
static double       gp_ccpu0, gp_ccpu1; /* ours over measure + drain */


/* CPU seconds of the client processes and of this one */

static double
gb_client_cpu_now(void)
{
    long           k;
    double         cpu;
    struct rusage  ru;

    cpu = 0;

    for (k = 0; k < gb.procs; k++) {
        cpu += gb_pid_cpu(gp_procs[k].pid);
    }

    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        cpu += ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
               + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    }

    return cpu;
}


/* a control byte to every client process */

static void
gb_procs_ctl(uint8_t byte)
{
    long  k;

    for (k = 0; k < gb.procs; k++) {
        if (write(gp_procs[k].ctl, &byte, 1) != 1) {
            fprintf(stderr, "goim-bench: control pipe of process %d: %s\n",
                    (int) gp_procs[k].pid, strerror(errno));
        }
    }
}


/* --- parent: aggregation, publishing, report ------------------------------ */

static void
gb_on_signal(int signo)
{
    (void) signo;

    gp_stop = 1;
}


int
gb_parent(void)
{
    int                 i, nev, phase, fds[2], ctl[2], timeout, alive;
    int                 blocked;
    long                k, lo, hi, rss_now, pss_now;
    int64_t             now, phase_end, measure_start, next_progress, due;
    int64_t             wait_until, drain_end;
    uint64_t            seq, last_recv, last_sent, n, last;
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

    /* --recover: the drain waits for the last reconnects to recover */
    if (gb.recover) {
        gb.deadline += GB_RECOVER_WAIT * GB_SEC;
    }

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
        pr->buf_cap = sizeof(gb_rec_t) + sizeof(gb_final_t);
        pr->buf = malloc(pr->buf_cap);

        if (pr->buf == NULL) {
            return 1;
        }

        (void) fcntl(pr->in, F_SETFL, O_NONBLOCK);
    }

    if (gb.chat && gb_chat_init() != 0) {
        fprintf(stderr, "goim-bench: no memory for the chat account\n");
        return 1;
    }

    if (gb.recover && gb_recover_init() != 0) {
        fprintf(stderr, "goim-bench: no memory for the recover account\n");
        return 1;
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
            gp_total.reconnects += pr->stats.reconnects;
            gp_total.recovering += pr->stats.recovering;
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
                gp_ccpu1 = gb_client_cpu_now();
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
            gp_ccpu0 = gb_client_cpu_now();

            if ((gb.chat || gb.recover) && gb.reconnect_rate) {
                gb_procs_ctl(GB_CTL_CHURN_ON);
            }

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

                /* a batch takes the messages due from now on */
                n = (uint64_t) gb.push_batch;
                last = (uint64_t) gb.duration * (uint64_t) gb.push_rate;

                if (seq + n > last) {
                    n = last > seq ? last - seq : 1;
                }

                if (gb_http_publish(h, seq, n) == 0) {
                    seq += n;
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

                if ((gb.chat || gb.recover) && gb.reconnect_rate) {
                    gb_procs_ctl(GB_CTL_CHURN_OFF);
                }

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

            /*
             * --recover: every client must be back and recovered for the
             * account to cover it (the clients' records are 200 ms old)
             */
            if (gb.recover
                && (gp_total.authed < (uint64_t) gb.clients
                    || gp_total.recovering > 0
                    || now < drain_end + GB_STATS_US))
            {
                wait_until = drain_end + GB_RECOVER_WAIT * GB_SEC;
            }

            if (now >= wait_until) {
                (void) gb_server_sample(&gp_cpu1, &rss_now, &pss_now);
                gp_ccpu1 = gb_client_cpu_now();
                phase = GB_PH_DONE;
            }

            break;
        }

        if (now >= next_progress || phase == GB_PH_DONE) {
            fprintf(stderr, "goim-bench: %6.1fs %-7s conn %" PRIu64
                    " ready %" PRIu64 "/%ld recv/s %" PRIu64 " sent/s %"
                    PRIu64 " err %" PRIu64 " api_err %" PRIu64 " hb %"
                    PRIu64 " recv %" PRIu64 "\n",
                    (double) (now - gb.t0) / GB_SEC, names[phase],
                    gp_total.connected, gp_total.authed, gb.clients,
                    gp_total.received - last_recv, gp_sent - last_sent,
                    gp_total.errors, gp_api_errors, gp_total.heartbeats,
                    gp_total.received);

            if (gb.chat) {
                fprintf(stderr, "goim-bench: %6.1fs chat reconnects %"
                        PRIu64 "\n", (double) (now - gb.t0) / GB_SEC,
                        gp_total.reconnects);
            }

            if (gb.recover) {
                fprintf(stderr, "goim-bench: %6.1fs recover reconnects %"
                        PRIu64 " recovering %" PRIu64 "\n",
                        (double) (now - gb.t0) / GB_SEC,
                        gp_total.reconnects, gp_total.recovering);
            }

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
        gp_total.reconnects += pr->stats.reconnects;
        gp_total.duplicates += pr->stats.duplicates;
        gp_total.misrouted += pr->stats.misrouted;
        gp_total.join_refused += pr->stats.join_refused;
        gp_total.drained += pr->stats.drained;
        gp_total.no_position += pr->stats.no_position;
        gp_total.rc_ok += pr->stats.rc_ok;
        gp_total.rc_messages += pr->stats.rc_messages;
        gp_total.rc_seam_bad += pr->stats.rc_seam_bad;
        gp_total.rc_offset_gap += pr->stats.rc_offset_gap;
        gp_total.rc_offset_repeat += pr->stats.rc_offset_repeat;
        gp_total.rc_stream_bad += pr->stats.rc_stream_bad;
        gp_total.rc_cut += pr->stats.rc_cut;
        gp_total.rc_unexpected += pr->stats.rc_unexpected;

        for (i = 0; i < GB_RC_REASONS; i++) {
            gp_total.rc_failed[i] += pr->stats.rc_failed[i];
        }
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
    int          i;
    size_t       len;
    ssize_t      n;
    uint8_t     *buf;
    gb_rec_t     rec;
    gb_seq_t    *sq, *from;
    gb_final_t  *fin;

    for ( ;; ) {
        n = read(pr->in, pr->buf + pr->buf_len, pr->buf_cap - pr->buf_len);

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
                /* the chat's records are larger than the buffer */
                if (len > pr->buf_cap) {
                    buf = realloc(pr->buf, len);
                    if (buf == NULL) {
                        fprintf(stderr, "goim-bench: no memory for a "
                                "record of %zu bytes\n", len);
                        exit(1);
                    }

                    pr->buf = buf;
                    pr->buf_cap = len;
                }

                break;
            }

            switch (rec.type) {

            case GB_REC_MASKS:
                gb_chat_masks((uint16_t *) (pr->buf + sizeof(gb_rec_t)),
                              rec.len / sizeof(uint16_t));
                break;

            case GB_REC_LAST:
                gb_chat_last((uint32_t *) (pr->buf + sizeof(gb_rec_t)),
                             rec.len / sizeof(uint32_t));
                break;

            case GB_REC_GOT:
                gb_recover_got(pr->buf + sizeof(gb_rec_t), rec.len);
                break;

            case GB_REC_DOWN:
                if (gb_chat_down((gb_down_t *) (pr->buf + sizeof(gb_rec_t)),
                                 rec.len / sizeof(gb_down_t)) != 0)
                {
                    fprintf(stderr, "goim-bench: no memory for the "
                            "intervals\n");
                }

                break;

            default:
                memcpy(&pr->stats, pr->buf + sizeof(gb_rec_t),
                       sizeof(gb_stats_t));
            }

            if (rec.type == GB_REC_FINAL) {
                fin = (gb_final_t *) (pr->buf + sizeof(gb_rec_t));
                gb_hist_merge(&gp_hist, &fin->hist);

                if (gb.recover) {
                    gb_recover_hists(fin);
                }

                for (i = 0; i < GB_SEQS; i++) {
                    from = &fin->seqs[i];
                    sq = &gp_seqs[i];

                    if (from->count == 0) {
                        continue;
                    }

                    if (sq->count == 0 || from->min < sq->min) {
                        sq->min = from->min;
                    }

                    if (from->max > sq->max) {
                        sq->max = from->max;
                    }

                    sq->count += from->count;
                }

                pr->final = 1;
            }

            memmove(pr->buf, pr->buf + len, pr->buf_len - len);
            pr->buf_len -= len;
        }
    }
}


static void
gb_report(void)
{
    int       i, n;
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
           "\"client_cpu_s\":%.2f,\"client_cpu_measure_s\":%.2f,"
           "\"connects\":%" PRIu64 ",\"heartbeat_replies\":%" PRIu64 ","
           "\"stale\":%" PRIu64 ",\"client_errors\":%" PRIu64 ","
           "\"api_errors\":%" PRIu64 ",\"errors\":%" PRIu64 ","
           "\"server_pids\":[",
           gb.clients, gb.transport == GB_WS ? "ws" : "tcp",
           gb.mode == GB_MODE_NCHAN ? "nchan" : "goim",
           gb.procs, gb.sources, gb.rooms,
           gb.idle ? "none" : gb.push_mode == GB_PUSH_KEY ? "key"
                  : gb.push_mode == GB_PUSH_ALL ? "all" : "room",
           gb.idle ? 0 : gb.push_rate, gb.msg_size, gp_measure_s,
           gp_authed_at_rss, gp_sent, gp_unsent, gp_expected, delivered,
           share, gp_measure_s > 0 && !gb.idle
                  ? (double) delivered / gp_measure_s : 0.0,
           gb_hist_ms(&gp_hist, 0.50), gb_hist_ms(&gp_hist, 0.90),
           gb_hist_ms(&gp_hist, 0.99), (double) gp_hist.max / 1000.0,
           cpu, cpu_per, gp_rss0, gp_rss1, rss, pss, gp_client_cpu,
           gp_ccpu1 > gp_ccpu0 ? gp_ccpu1 - gp_ccpu0 : 0.0,
           gp_total.connects, gp_total.heartbeats, gp_total.stale,
           gp_total.errors, gp_api_errors,
           gp_total.errors + gp_api_errors);

    for (i = 0; i < gb.npids; i++) {
        printf("%s%d", i ? "," : "", (int) gb.pids[i]);
    }

    /* per message seq: its deliveries, the first and the last one */
    printf("],\"seqs\":[");

    for (i = 0, n = 0; i < GB_SEQS; i++) {
        if (gp_seqs[i].count) {
            printf("%s{\"seq\":%d,\"delivered\":%" PRIu64 ",\"first_ms\":"
                   "%.3f,\"last_ms\":%.3f}", n++ ? "," : "", i,
                   gp_seqs[i].count, (double) gp_seqs[i].min / 1000.0,
                   (double) gp_seqs[i].max / 1000.0);
        }
    }

    printf("]");

    if (gb.chat && !gb.idle) {
        printf(",\"reconnects\":%" PRIu64 ",\"duplicates\":%" PRIu64
               ",\"misrouted\":%" PRIu64 ",\"join_refused\":%" PRIu64
               ",\"drained_at_close\":%" PRIu64,
               gp_total.reconnects, gp_total.duplicates,
               gp_total.misrouted, gp_total.join_refused,
               gp_total.drained);
        gb_chat_report();
    }

    if (gb.recover && !gb.idle) {
        gb_recover_report(&gp_total);
    }

    printf(",\"idle\":%s,\"completed\":%s}\n", gb.idle ? "true" : "false",
           gp_stop || gp_deadline_hit ? "false" : "true");

    fflush(stdout);
}
