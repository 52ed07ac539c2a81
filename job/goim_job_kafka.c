/*
 * The Kafka side of goim-job: a high-level consumer in the group
 * (goim-push-group-job) whose queue wakes the libevent loop through a
 * pipe (rd_kafka_queue_io_event_enable writes only when the queue goes
 * from empty to non-empty, so each wake-up drains it).  librdkafka's log
 * lines, errors, rebalances and commit results come through the same
 * queue and run on this thread.  A timer polls as well: librdkafka takes
 * a consumer that has not polled for max.poll.interval.ms out of its
 * group, and an idle queue never wakes us.
 *
 * At-least-once: automatic offset storing is off; a message's offset is
 * stored only when every comet item it is part of was accepted or given
 * up on, through the partition's tracker (goim_job_offsets.c), and the
 * automatic commit sends what was stored.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <librdkafka/rdkafka.h>

#include "goim_job_comet.h"
#include "goim_job_kafka.h"
#include "goim_job_log.h"
#include "goim_job_offsets.h"
#include "goim_job_route.h"
#include "goim.pb-c.h"


typedef struct {
    job_offsets_t               t;
    int64_t                     stored;     /* -1: none this assignment */
    int64_t                     committed;
    unsigned                    assigned:1;
    unsigned                    full:1;     /* in-flight over its bound */
    unsigned                    paused:1;   /* as told to librdkafka */
} job_part_t;


static int job_kafka_set(rd_kafka_conf_t *kc, const char *name,
    const char *value);
static void job_kafka_log_cb(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static void job_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
    void *opaque);
static void job_kafka_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *partitions, void *opaque);
static void job_kafka_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *offsets, void *opaque);
static job_part_t *job_kafka_part(int32_t partition);
static void job_kafka_wake(evutil_socket_t fd, short events, void *arg);
static void job_kafka_tick(evutil_socket_t fd, short events, void *arg);
static void job_kafka_message(rd_kafka_message_t *rkm);
static const char *job_kafka_check(Goim__PushMsg *pm);
static void job_kafka_store(int32_t partition, int64_t offset);
static void job_kafka_finished(job_msg_t *m);
static uint64_t job_kafka_epoch(void);
static void job_kafka_flow(void);
static void job_kafka_close_consumer(void);


/* messages handled per wake-up before other events get their turn */
#define JOB_KAFKA_BATCH  1024

/* the idle poll's period at most, in milliseconds */
#define JOB_KAFKA_TICK   1000


static job_conf_t            *job_kafka_conf;
static struct event_base     *job_kafka_base;
static job_kafka_drained_pt   job_kafka_drained;
static job_kafka_stats_t      job_kafka_st;

static rd_kafka_t            *job_rk;
static job_part_t            *job_parts;        /* by partition number */
static int                    job_nparts;
static uint32_t               job_kafka_gen;
static unsigned               job_kafka_over;   /* a bound reached: flow */
static unsigned               job_kafka_closed;

static rd_kafka_queue_t  *job_kafka_queue;
static int                job_kafka_pipe[2] = { -1, -1 };
static struct event      *job_kafka_ev;
static struct event      *job_kafka_tick_ev;


static int
job_kafka_set(rd_kafka_conf_t *kc, const char *name, const char *value)
{
    char  err[512];

    if (rd_kafka_conf_set(kc, name, value, err, sizeof(err))
        != RD_KAFKA_CONF_OK)
    {
        job_log(JOB_LOG_ERROR, "kafka property \"%s\" = \"%s\": %s", name,
                value, err);
        return -1;
    }

    return 0;
}


int
job_kafka_init(job_conf_t *cf, struct event_base *base,
    struct evdns_base *dns, job_kafka_drained_pt drained)
{
    int                               i;
    char                              err[512], val[32];
    long                              ms;
    size_t                            size;
    job_kv_t                         *kv;
    struct timeval                    tv;
    rd_kafka_conf_t                  *kc;
    rd_kafka_resp_err_t               rc;
    rd_kafka_topic_partition_list_t  *topics;

    job_kafka_conf = cf;
    job_kafka_base = base;
    job_kafka_drained = drained;

    if (job_route_init(cf, base, dns, job_kafka_flow) != 0) {
        return -1;
    }

    kc = rd_kafka_conf_new();

    /* ours first: kafka_option lines may override any of them */
    if (job_kafka_set(kc, "bootstrap.servers", cf->kafka_brokers) != 0
        || job_kafka_set(kc, "group.id", cf->kafka_group) != 0
        || job_kafka_set(kc, "client.id", "goim-job") != 0
        || job_kafka_set(kc, "enable.auto.offset.store", "false") != 0
        || job_kafka_set(kc, "enable.auto.commit", "true") != 0
        || job_kafka_set(kc, "auto.commit.interval.ms", "1000") != 0
        || job_kafka_set(kc, "auto.offset.reset", "earliest") != 0
        /* a fetch waiting on idle partitions delays a resumed one */
        || job_kafka_set(kc, "fetch.wait.max.ms", "100") != 0
        || job_kafka_set(kc, "log.queue", "true") != 0)
    {
        rd_kafka_conf_destroy(kc);
        return -1;
    }

    for (kv = cf->kafka_options; kv; kv = kv->next) {
        if (strcmp(kv->name, "enable.auto.offset.store") == 0
            || strcmp(kv->name, "log.queue") == 0)
        {
            job_log(JOB_LOG_ERROR, "kafka property \"%s\" cannot be"
                    " changed: the job's delivery guarantee depends on it",
                    kv->name);
            rd_kafka_conf_destroy(kc);
            return -1;
        }

        if (job_kafka_set(kc, kv->name, kv->value) != 0) {
            rd_kafka_conf_destroy(kc);
            return -1;
        }
    }

    /*
     * librdkafka counts the time since the application's last poll and
     * leaves the group after max.poll.interval.ms; the pipe wakes us only
     * when something is queued, so an idle consumer also polls on a timer,
     * at least three times per interval
     */
    ms = JOB_KAFKA_TICK;
    size = sizeof(val);
    if (rd_kafka_conf_get(kc, "max.poll.interval.ms", val, &size)
        == RD_KAFKA_CONF_OK && atol(val) / 3 < ms)
    {
        ms = atol(val) / 3 > 0 ? atol(val) / 3 : 1;
    }

    rd_kafka_conf_set_log_cb(kc, job_kafka_log_cb);
    rd_kafka_conf_set_error_cb(kc, job_kafka_error_cb);
    rd_kafka_conf_set_rebalance_cb(kc, job_kafka_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(kc, job_kafka_commit_cb);

    job_rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (job_rk == NULL) {
        job_log(JOB_LOG_ERROR, "kafka consumer: %s", err);
        rd_kafka_conf_destroy(kc);
        return -1;
    }

    /* logs to the main queue, which is forwarded to the consumer queue */
    rd_kafka_set_log_queue(job_rk, NULL);
    rd_kafka_poll_set_consumer(job_rk);
    job_kafka_queue = rd_kafka_queue_get_consumer(job_rk);

    if (pipe(job_kafka_pipe) != 0) {
        job_log(JOB_LOG_ERROR, "pipe() failed: %s", strerror(errno));
        return -1;
    }

    for (i = 0; i < 2; i++) {
        if (fcntl(job_kafka_pipe[i], F_SETFL, O_NONBLOCK) != 0
            || fcntl(job_kafka_pipe[i], F_SETFD, FD_CLOEXEC) != 0)
        {
            job_log(JOB_LOG_ERROR, "fcntl() on the kafka pipe failed: %s",
                    strerror(errno));
            return -1;
        }
    }

    job_kafka_ev = event_new(job_kafka_base, job_kafka_pipe[0],
                             EV_READ | EV_PERSIST, job_kafka_wake, NULL);
    if (job_kafka_ev == NULL || event_add(job_kafka_ev, NULL) != 0) {
        job_log(JOB_LOG_ERROR, "cannot watch the kafka pipe");
        return -1;
    }

    rd_kafka_queue_io_event_enable(job_kafka_queue, job_kafka_pipe[1],
                                   "1", 1);

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    job_kafka_tick_ev = event_new(job_kafka_base, -1, EV_PERSIST,
                                  job_kafka_tick, NULL);
    if (job_kafka_tick_ev == NULL || event_add(job_kafka_tick_ev, &tv) != 0)
    {
        job_log(JOB_LOG_ERROR, "cannot start the kafka poll timer");
        return -1;
    }

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cf->kafka_topic,
                                      RD_KAFKA_PARTITION_UA);
    rc = rd_kafka_subscribe(job_rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        job_log(JOB_LOG_ERROR, "kafka subscribe to \"%s\": %s",
                cf->kafka_topic, rd_kafka_err2str(rc));
        return -1;
    }

    job_log(JOB_LOG_INFO, "kafka: consuming \"%s\" from %s in group \"%s\"",
            cf->kafka_topic, cf->kafka_brokers, cf->kafka_group);

    /* whatever was queued before the descriptor was set */
    job_kafka_wake(-1, 0, NULL);

    return 0;
}


static void
job_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    int  l;

    (void) rk;

    /* syslog levels */
    l = level <= 3 ? JOB_LOG_ERROR
        : level == 4 ? JOB_LOG_WARN
        : level <= 6 ? JOB_LOG_INFO : JOB_LOG_DEBUG;

    job_log(l, "kafka: %s: %s", fac, buf);
}


static void
job_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    (void) rk;
    (void) opaque;

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        job_kafka_st.kafka_up = 0;
    }

    job_log(err == RD_KAFKA_RESP_ERR__FATAL ? JOB_LOG_ERROR : JOB_LOG_WARN,
            "kafka: %s: %s", rd_kafka_err2name(err), reason);
}


static job_part_t *
job_kafka_part(int32_t partition)
{
    int  n;

    if (partition < 0) {
        return NULL;
    }

    if (partition >= job_nparts) {
        n = partition + 1;
        job_parts = job_realloc(job_parts, n * sizeof(job_part_t));
        memset(job_parts + job_nparts, 0,
               (n - job_nparts) * sizeof(job_part_t));

        while (job_nparts < n) {
            job_offsets_init(&job_parts[job_nparts].t, 0);
            job_nparts++;
        }
    }

    return &job_parts[partition];
}


/*
 * A revoked partition's tracker is reset with a new generation, so that
 * completions of messages still queued for comets store nothing for it:
 * the partition's next owner starts from the committed offset.
 */
static void
job_kafka_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    int          i, cooperative, n;
    char         list[256];
    size_t       len;
    job_part_t  *p;
    rd_kafka_error_t  *error;

    (void) opaque;

    cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE")
                  == 0;
    len = 0;
    list[0] = '\0';

    for (i = 0; i < partitions->cnt; i++) {
        if (len < sizeof(list) - 16) {
            n = snprintf(list + len, sizeof(list) - len, "%s%d",
                         i ? "," : "", partitions->elems[i].partition);
            len += n;
        }
    }

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {

        for (i = 0; i < partitions->cnt; i++) {
            p = job_kafka_part(partitions->elems[i].partition);
            if (p == NULL) {
                continue;
            }

            job_offsets_reset(&p->t, ++job_kafka_gen);
            p->stored = -1;
            p->committed = -1;
            p->full = 0;
            p->paused = 0;

            if (!p->assigned) {
                p->assigned = 1;
                job_kafka_st.assigned++;
            }
        }

        if (cooperative) {
            error = rd_kafka_incremental_assign(rk, partitions);
            if (error) {
                job_log(JOB_LOG_ERROR, "kafka incremental assign: %s",
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
            }

        } else {
            rd_kafka_assign(rk, partitions);
        }

        job_kafka_st.kafka_up = 1;
        job_log(JOB_LOG_INFO, "ready: assigned %d partitions (%s of \"%s\")",
                job_kafka_st.assigned, list, job_kafka_conf->kafka_topic);

        job_kafka_flow();
        return;
    }

    for (i = 0; i < partitions->cnt; i++) {
        p = job_kafka_part(partitions->elems[i].partition);
        if (p == NULL || !p->assigned) {
            continue;
        }

        job_offsets_reset(&p->t, ++job_kafka_gen);
        p->assigned = 0;
        p->full = 0;
        p->paused = 0;
        job_kafka_st.assigned--;
    }

    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        job_log(JOB_LOG_INFO, "kafka: revoked partitions %s, %d left", list,
                job_kafka_st.assigned);

    } else {
        job_log(JOB_LOG_ERROR, "kafka rebalance failed: %s",
                rd_kafka_err2str(err));
    }

    if (cooperative) {
        error = rd_kafka_incremental_unassign(rk, partitions);
        if (error) {
            job_log(JOB_LOG_ERROR, "kafka incremental unassign: %s",
                    rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }

    } else {
        rd_kafka_assign(rk, NULL);
    }
}


static void
job_kafka_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    int          i;
    job_part_t  *p;

    (void) rk;
    (void) opaque;

    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        return;
    }

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        job_log(JOB_LOG_WARN, "kafka offset commit failed: %s",
                rd_kafka_err2str(err));
        return;
    }

    job_kafka_st.kafka_up = 1;

    for (i = 0; offsets && i < offsets->cnt; i++) {
        if (offsets->elems[i].err || offsets->elems[i].offset < 0) {
            continue;
        }

        p = job_kafka_part(offsets->elems[i].partition);
        if (p && p->assigned) {
            p->committed = offsets->elems[i].offset;
        }
    }
}


static void
job_kafka_wake(evutil_socket_t fd, short events, void *arg)
{
    int                  n;
    char                 buf[256];
    rd_kafka_message_t  *rkm;

    (void) events;
    (void) arg;

    if (fd >= 0) {
        while (read(fd, buf, sizeof(buf)) > 0) {
            /* void */
        }
    }

    if (job_kafka_closed) {
        return;
    }

    for (n = 0; n < JOB_KAFKA_BATCH; n++) {
        rkm = rd_kafka_consumer_poll(job_rk, 0);
        if (rkm == NULL) {
            break;
        }

        job_kafka_message(rkm);
        rd_kafka_message_destroy(rkm);

        /* a bound was reached: pause now, so that no message fetched
         * after this one comes out of the queue (librdkafka drops what
         * it fetched before the pause and fetches it again on resume) */
        if (job_kafka_over || job_comet_over()) {
            job_kafka_flow();
        }
    }

    job_kafka_flow();

    /* a backlog: the rest after the requests and replies now pending,
     * and with the pauses just decided */
    if (n == JOB_KAFKA_BATCH) {
        event_active(job_kafka_ev, EV_READ, 0);
    }
}


/* the idle poll: keeps the consumer in its group (max.poll.interval.ms) */
static void
job_kafka_tick(evutil_socket_t fd, short events, void *arg)
{
    (void) fd;
    (void) events;
    (void) arg;

    job_kafka_wake(-1, 0, NULL);
}


static void
job_kafka_message(rd_kafka_message_t *rkm)
{
    job_msg_t      *m;
    job_part_t     *p;
    const char     *why;
    Goim__PushMsg  *pm;

    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            job_log(JOB_LOG_WARN, "kafka: %s [%d]: %s",
                    rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-",
                    rkm->partition, rd_kafka_message_errstr(rkm));
        }

        return;
    }

    job_kafka_st.kafka_up = 1;

    /* not tracked, so not stored: the group delivers it again later */
    if (job_kafka_st.draining) {
        return;
    }

    p = job_kafka_part(rkm->partition);
    if (p == NULL || !p->assigned) {
        job_log(JOB_LOG_DEBUG, "kafka: message of unassigned partition %d"
                " offset %lld ignored", rkm->partition,
                (long long) rkm->offset);
        return;
    }

    if (p->t.n + 1 >= (size_t) job_kafka_conf->partition_inflight && !p->full) {
        job_kafka_over = 1;
    }

    if (job_offsets_add(&p->t, rkm->offset) != 0) {
        job_log(JOB_LOG_WARN, "kafka: partition %d offset %lld is not past"
                " %lld, ignored", rkm->partition, (long long) rkm->offset,
                (long long) p->t.next - 1);
        return;
    }

    job_kafka_st.consumed++;
    job_kafka_st.inflight++;

    m = job_alloc(sizeof(job_msg_t));
    m->partition = rkm->partition;
    m->offset = rkm->offset;
    m->epoch = job_kafka_epoch();
    m->gen = p->t.gen;
    m->refs = 1;    /* routing's own, released below */
    m->done = job_kafka_finished;

    pm = goim__push_msg__unpack(NULL, rkm->len, rkm->payload);
    why = pm ? job_kafka_check(pm) : "not a goim.PushMsg";

    if (why) {
        job_kafka_st.decode_errors++;
        job_log(JOB_LOG_WARN, "undecodable message %s/%d/%lld (%zu bytes):"
                " %s, skipped", rd_kafka_topic_name(rkm->rkt),
                rkm->partition, (long long) rkm->offset, rkm->len, why);

        if (pm) {
            goim__push_msg__free_unpacked(pm, NULL);
        }

        job_msg_release(m);
        return;
    }

    job_log(JOB_LOG_DEBUG, "consume: %s/%d/%lld type %d op %d",
            rd_kafka_topic_name(rkm->rkt), rkm->partition,
            (long long) rkm->offset, (int) pm->type, pm->operation);

    if (job_route(m, pm)) {
        return;
    }

    goim__push_msg__free_unpacked(pm, NULL);
    job_msg_release(m);
}


/*
 * The epoch of the room positions (docs/PROTOCOL.md 1.15): FNV-1a 64 of
 * the Kafka cluster's id, the topic and history_epoch, the same for
 * every job of the group and across restarts; a new cluster, another
 * topic or a new history_epoch gives new ones.  The partition completes
 * it (job_queue_push_room).  A message came, so the cluster's metadata
 * (and its id, with brokers of Kafka 0.10 or later) is known.
 */
static uint64_t
job_kafka_epoch(void)
{
    char            *id;
    const char      *s[3], *c;
    size_t           i;
    uint64_t         h;
    static int       known;
    static uint64_t  epoch;

    if (known) {
        return epoch;
    }

    id = rd_kafka_clusterid(job_rk, 0);

    s[0] = id ? id : "";
    s[1] = job_kafka_conf->kafka_topic;
    s[2] = job_kafka_conf->history_epoch ? job_kafka_conf->history_epoch
                                         : "";
    h = 14695981039346656037ULL;

    for (i = 0; i < 3; i++) {
        /* each with its NUL: "ab","c" and "a","bc" differ */
        for (c = s[i]; *c; c++) {
            h = (h ^ (uint8_t) *c) * 1099511628211ULL;
        }

        h *= 1099511628211ULL;
    }

    job_log(id ? JOB_LOG_INFO : JOB_LOG_WARN, "room positions: epoch"
            " %016llx-<partition> (cluster id \"%s\", topic \"%s\","
            " history_epoch \"%s\")", (unsigned long long) h, s[0],
            job_kafka_conf->kafka_topic, s[2]);

    if (id) {
        rd_kafka_mem_free(job_rk, id);
    }

    known = 1;
    epoch = h;

    return epoch;
}


/* what the routing needs of each type (docs/PROTOCOL.md 4.5) */
static const char *
job_kafka_check(Goim__PushMsg *pm)
{
    size_t  i;

    switch (pm->type) {

    case GOIM__PUSH_MSG__TYPE__PUSH:
        if (pm->server == NULL || pm->server[0] == '\0') {
            return "PUSH without server";
        }

        if (pm->n_keys == 0) {
            return "PUSH without keys";
        }

        for (i = 0; i < pm->n_keys; i++) {
            if (pm->keys[i][0] == '\0') {
                return "PUSH with an empty key";
            }
        }

        return NULL;

    case GOIM__PUSH_MSG__TYPE__ROOM:
        if (pm->room == NULL || pm->room[0] == '\0') {
            return "ROOM without room";
        }

        return NULL;

    case GOIM__PUSH_MSG__TYPE__BROADCAST:
        return NULL;

    default:
        return "unknown type";
    }
}


/* the last reference on the message went: it finished */
static void
job_kafka_finished(job_msg_t *m)
{
    int64_t      off;
    job_part_t  *p;

    job_kafka_st.inflight--;

    p = m->partition < job_nparts ? &job_parts[m->partition] : NULL;

    /* after the final commit nothing is stored any more */
    if (p && p->assigned && !job_kafka_closed) {
        off = job_offsets_done(&p->t, m->gen, m->offset);

        if (off >= 0) {
            job_kafka_store(m->partition, off);
        }
    }

    free(m);

    if (job_kafka_st.draining && !job_kafka_closed) {
        job_kafka_drained();
    }
}


static void
job_kafka_store(int32_t partition, int64_t offset)
{
    rd_kafka_resp_err_t               err;
    rd_kafka_topic_partition_list_t  *list;

    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, job_kafka_conf->kafka_topic,
                                      partition)->offset = offset;

    err = rd_kafka_offsets_store(job_rk, list);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        err = list->elems[0].err;
    }

    rd_kafka_topic_partition_list_destroy(list);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        job_log(JOB_LOG_WARN, "kafka: storing offset %lld of partition %d:"
                " %s", (long long) offset, partition, rd_kafka_err2str(err));
        return;
    }

    job_parts[partition].stored = offset;
}


/*
 * Pauses what must not be fetched now, resumes what may: every assigned
 * partition while draining or while a comet's queue is over its bound,
 * and a partition whose tracker is at its in-flight bound, until it is
 * down to half of it.
 */
static void
job_kafka_flow(void)
{
    int                               i, full, want;
    job_part_t                       *p;
    job_conf_t                       *cf;
    rd_kafka_topic_partition_list_t  *pause, *resume;

    if (job_rk == NULL || job_kafka_closed) {
        return;
    }

    cf = job_kafka_conf;
    job_kafka_over = 0;

    full = job_comet_blocked();
    job_kafka_st.queues_full = full;

    pause = NULL;
    resume = NULL;

    for (i = 0; i < job_nparts; i++) {
        p = &job_parts[i];

        if (!p->assigned) {
            continue;
        }

        if (p->t.n >= (size_t) cf->partition_inflight) {
            p->full = 1;

        } else if (p->t.n <= (size_t) cf->partition_inflight / 2) {
            p->full = 0;
        }

        want = job_kafka_st.draining || job_kafka_st.queues_full || p->full;

        if (want == p->paused) {
            continue;
        }

        p->paused = want;

        if (want) {
            if (pause == NULL) {
                pause = rd_kafka_topic_partition_list_new(4);
            }

            rd_kafka_topic_partition_list_add(pause, cf->kafka_topic, i);

        } else {
            if (resume == NULL) {
                resume = rd_kafka_topic_partition_list_new(4);
            }

            rd_kafka_topic_partition_list_add(resume, cf->kafka_topic, i);
        }

        job_log(JOB_LOG_DEBUG, "kafka: partition %d %s (%zu in flight)", i,
                want ? "paused" : "resumed", p->t.n);
    }

    if (pause) {
        rd_kafka_pause_partitions(job_rk, pause);
        rd_kafka_topic_partition_list_destroy(pause);
    }

    if (resume) {
        rd_kafka_resume_partitions(job_rk, resume);
        rd_kafka_topic_partition_list_destroy(resume);
    }
}


void
job_kafka_drain(void)
{
    job_kafka_st.draining = 1;
    job_kafka_flow();
}


/*
 * Stored offsets are committed synchronously before leaving the group;
 * then routing lets go of its comets and held messages, whose offsets
 * are not stored any more: the group delivers them again.
 */
void
job_kafka_close(void)
{
    int  i;

    job_kafka_closed = 1;

    if (job_rk) {
        job_kafka_close_consumer();
    }

    job_route_close();

    for (i = 0; i < job_nparts; i++) {
        job_offsets_free(&job_parts[i].t);
    }

    free(job_parts);
    job_parts = NULL;
    job_nparts = 0;
}


static void
job_kafka_close_consumer(void)
{
    rd_kafka_resp_err_t  err;

    err = rd_kafka_commit(job_rk, NULL, 0);

    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        job_log(JOB_LOG_INFO, "kafka: offsets committed");

    } else if (err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        job_log(JOB_LOG_WARN, "kafka: final commit failed: %s",
                rd_kafka_err2str(err));
    }

    rd_kafka_queue_io_event_enable(job_kafka_queue, -1, NULL, 0);

    err = rd_kafka_consumer_close(job_rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        job_log(JOB_LOG_WARN, "kafka: consumer close: %s",
                rd_kafka_err2str(err));
    }

    rd_kafka_queue_destroy(job_kafka_queue);
    rd_kafka_destroy(job_rk);
    job_rk = NULL;

    if (job_kafka_ev) {
        event_free(job_kafka_ev);
        job_kafka_ev = NULL;
    }

    if (job_kafka_tick_ev) {
        event_free(job_kafka_tick_ev);
        job_kafka_tick_ev = NULL;
    }

    close(job_kafka_pipe[0]);
    close(job_kafka_pipe[1]);

    job_log(JOB_LOG_INFO, "kafka: consumer closed");
}


void
job_kafka_metrics(struct evbuffer *b)
{
    int                               i;
    int64_t                           lo, hi, pos;
    job_part_t                       *p;
    const char                       *topic;
    rd_kafka_topic_partition_list_t  *list;

    if (job_rk == NULL) {
        return;
    }

    topic = job_kafka_conf->kafka_topic;
    list = rd_kafka_topic_partition_list_new(job_kafka_st.assigned
                                             ? job_kafka_st.assigned : 1);

    for (i = 0; i < job_nparts; i++) {
        if (job_parts[i].assigned) {
            rd_kafka_topic_partition_list_add(list, topic, i);
        }
    }

    rd_kafka_position(job_rk, list);

    evbuffer_add_printf(b,
        "# HELP goim_job_kafka_queue_length ops waiting in the consumer"
        " queue\n"
        "# TYPE goim_job_kafka_queue_length gauge\n"
        "goim_job_kafka_queue_length %zu\n",
        rd_kafka_queue_length(job_kafka_queue));

    evbuffer_add_printf(b,
        "# TYPE goim_job_partition_stored_offset gauge\n"
        "# TYPE goim_job_partition_committed_offset gauge\n"
        "# TYPE goim_job_partition_lag gauge\n"
        "# TYPE goim_job_partition_inflight gauge\n"
        "# TYPE goim_job_partition_paused gauge\n");

    for (i = 0; i < list->cnt; i++) {
        p = &job_parts[list->elems[i].partition];
        pos = list->elems[i].offset;

        evbuffer_add_printf(b,
            "goim_job_partition_stored_offset{partition=\"%d\"} %lld\n"
            "goim_job_partition_committed_offset{partition=\"%d\"} %lld\n"
            "goim_job_partition_inflight{partition=\"%d\"} %zu\n"
            "goim_job_partition_paused{partition=\"%d\"} %d\n",
            list->elems[i].partition, (long long) p->stored,
            list->elems[i].partition, (long long) p->committed,
            list->elems[i].partition, p->t.n,
            list->elems[i].partition, p->paused);

        if (rd_kafka_get_watermark_offsets(job_rk, topic,
                                           list->elems[i].partition,
                                           &lo, &hi)
            != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
        {
            continue;
        }

        /* nothing fetched yet: from the committed offset, or the start
         * (auto.offset.reset=earliest) */
        if (pos < 0) {
            pos = p->committed >= 0 ? p->committed : lo;
        }

        if (pos >= 0) {
            evbuffer_add_printf(b,
                "goim_job_partition_lag{partition=\"%d\"} %lld\n",
                list->elems[i].partition,
                (long long) (hi > pos ? hi - pos : 0));
        }
    }

    rd_kafka_topic_partition_list_destroy(list);
}


const job_kafka_stats_t *
job_kafka_stats(void)
{
    return &job_kafka_st;
}
