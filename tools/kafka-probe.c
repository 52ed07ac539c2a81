/*
 * kafka-probe: produce or consume a number of messages, for tests.
 *
 *   kafka-probe produce <bootstrap> <topic> <count> [--timeout-ms N]
 *   kafka-probe consume <bootstrap> <topic> <group> <count> [--timeout-ms N]
 *   kafka-probe dump <bootstrap> <topic> [--timeout-ms N]
 *
 * produce sends <count> messages with acks=all and message.timeout.ms=N,
 * prints "delivered D failed F" and exits 0 only when all were delivered.
 *
 * consume joins consumer group <group> (from the earliest offset when the
 * group has none), reads until <count> messages arrived or N ms passed,
 * commits what it read and leaves the group (each bounded, KP_GRACE_MS),
 * prints "consumed C" and exits 0 only when C reached <count> and the
 * commit succeeded.
 *
 * dump prints every message the topic holds when it starts (all
 * partitions, from the low to the high watermark; no group, no commit),
 * as it arrives, one JSON object a line, the value decoded as a
 * goim.PushMsg:
 *
 *   {"partition":0,"offset":3,"key":"live://1","type":1,"operation":1000,
 *    "speed":0,"server":"","room":"live://1","keys":[],"msg":"6869"}
 *
 * msg is hex; a byte of a string outside printable ASCII is \u00XX.  A
 * value that is not a PushMsg gives "error" instead of its fields.  It
 * exits 0 when every message up to the watermarks was printed.
 *
 * Exit codes: 0 success, 1 failure or timeout, 2 usage.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>


#define KP_DEFAULT_TIMEOUT_MS  10000
#define KP_GRACE_MS            5000
#define KP_POLL_MS             100


typedef struct {
    long  delivered;
    long  failed;
} kp_delivery_t;


static void kp_usage(void);
static int kp_parse_long(const char *s, long min, long max, long *out);
static long kp_now_ms(void);
static rd_kafka_conf_t *kp_conf(const char *bootstrap, const char **kv);
static void kp_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg,
    void *opaque);
static int kp_produce(const char *bootstrap, const char *topic, long count,
    long timeout_ms);
static int kp_consume(const char *bootstrap, const char *topic,
    const char *group, long count, long timeout_ms);
static int kp_commit(rd_kafka_t *rk);
static void kp_close_consumer(rd_kafka_t *rk);
static int kp_dump(const char *bootstrap, const char *topic,
    long timeout_ms);
static void kp_dump_message(const rd_kafka_message_t *msg);
static int kp_varint(const unsigned char **p, const unsigned char *end,
    uint64_t *v);
static void kp_json_str(const unsigned char *p, size_t len);


static void
kp_usage(void)
{
    fprintf(stderr,
        "usage: kafka-probe produce <bootstrap> <topic> <count> "
        "[--timeout-ms N]\n"
        "       kafka-probe consume <bootstrap> <topic> <group> <count> "
        "[--timeout-ms N]\n"
        "       kafka-probe dump <bootstrap> <topic> [--timeout-ms N]\n"
        "default timeout %d ms; exit 0 only when <count> messages were "
        "delivered\nor consumed, or (dump) all the topic holds was "
        "printed\n", KP_DEFAULT_TIMEOUT_MS);
}


static int
kp_parse_long(const char *s, long min, long max, long *out)
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


static long
kp_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int
main(int argc, char **argv)
{
    int          i, npos;
    long         timeout_ms, count;
    const char  *pos[6];

    timeout_ms = KP_DEFAULT_TIMEOUT_MS;
    npos = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--timeout-ms") == 0) {
            if (i + 1 == argc
                || kp_parse_long(argv[i + 1], 1, 3600000, &timeout_ms) != 0)
            {
                fprintf(stderr, "kafka-probe: --timeout-ms needs a number "
                        "of milliseconds, 1..3600000\n");
                return 2;
            }

            i++;
            continue;
        }

        if (npos == 6) {
            kp_usage();
            return 2;
        }

        pos[npos++] = argv[i];
    }

    if (npos == 4 && strcmp(pos[0], "produce") == 0) {
        if (kp_parse_long(pos[3], 1, 10000000, &count) != 0) {
            fprintf(stderr, "kafka-probe: count \"%s\" must be "
                    "1..10000000\n", pos[3]);
            return 2;
        }

        return kp_produce(pos[1], pos[2], count, timeout_ms);
    }

    if (npos == 5 && strcmp(pos[0], "consume") == 0) {
        if (kp_parse_long(pos[4], 1, 10000000, &count) != 0) {
            fprintf(stderr, "kafka-probe: count \"%s\" must be "
                    "1..10000000\n", pos[4]);
            return 2;
        }

        return kp_consume(pos[1], pos[2], pos[3], count, timeout_ms);
    }

    if (npos == 3 && strcmp(pos[0], "dump") == 0) {
        return kp_dump(pos[1], pos[2], timeout_ms);
    }

    kp_usage();

    return 2;
}


/*
 * A configuration with bootstrap.servers and the NULL-terminated
 * name, value pairs in kv; NULL (reported) on error.
 */
static rd_kafka_conf_t *
kp_conf(const char *bootstrap, const char **kv)
{
    char              errstr[512];
    rd_kafka_conf_t  *conf;

    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK)
    {
        goto failed;
    }

    for ( /* void */ ; kv[0] != NULL; kv += 2) {
        if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof(errstr))
            != RD_KAFKA_CONF_OK)
        {
            goto failed;
        }
    }

    return conf;

failed:

    fprintf(stderr, "kafka-probe: %s\n", errstr);
    rd_kafka_conf_destroy(conf);

    return NULL;
}


/* delivery report, called from rd_kafka_poll()/rd_kafka_flush() */
static void
kp_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    kp_delivery_t  *dr;

    (void) rk;
    dr = opaque;

    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        dr->delivered++;
        return;
    }

    /* report the first failure only: an outage fails them all alike */
    if (dr->failed++ == 0) {
        fprintf(stderr, "kafka-probe: delivery failed: %s\n",
                rd_kafka_err2str(msg->err));
    }
}


static int
kp_produce(const char *bootstrap, const char *topic, long count,
    long timeout_ms)
{
    long                  i, left, deadline;
    char                  errstr[512], timeout[32], payload[64];
    rd_kafka_t           *rk;
    kp_delivery_t         dr;
    rd_kafka_conf_t      *conf;
    rd_kafka_resp_err_t   err;
    const char           *kv[] = {
        "client.id", "kafka-probe",
        "acks", "all",
        "message.timeout.ms", timeout,
        NULL
    };

    snprintf(timeout, sizeof(timeout), "%ld", timeout_ms);

    conf = kp_conf(bootstrap, kv);
    if (conf == NULL) {
        return 1;
    }

    dr.delivered = 0;
    dr.failed = 0;

    rd_kafka_conf_set_dr_msg_cb(conf, kp_delivered);
    rd_kafka_conf_set_opaque(conf, &dr);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-probe: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    /* every message times out after timeout_ms; the grace is for polling */
    deadline = kp_now_ms() + timeout_ms + 2000;

    for (i = 0; i < count; i++) {
        snprintf(payload, sizeof(payload), "kafka-probe %ld", i);

        for ( ;; ) {
            err = rd_kafka_producev(rk,
                                    RD_KAFKA_V_TOPIC(topic),
                                    RD_KAFKA_V_VALUE(payload,
                                                     strlen(payload)),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_END);

            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL
                || kp_now_ms() >= deadline)
            {
                break;
            }

            rd_kafka_poll(rk, KP_POLL_MS);
        }

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka-probe: produce: %s\n",
                    rd_kafka_err2str(err));
            break;
        }

        rd_kafka_poll(rk, 0);
    }

    left = deadline - kp_now_ms();
    rd_kafka_flush(rk, left > 0 ? (int) left : 0);

    /* what is still queued never got a report: purge and count it failed */
    if (rd_kafka_outq_len(rk) > 0) {
        fprintf(stderr, "kafka-probe: timed out waiting for delivery "
                "reports\n");
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(rk, 0);
    }

    /* also those never queued and those left without a report */
    dr.failed = count - dr.delivered;

    printf("delivered %ld failed %ld\n", dr.delivered, dr.failed);

    rd_kafka_destroy(rk);

    return (dr.delivered == count) ? 0 : 1;
}


static int
kp_consume(const char *bootstrap, const char *topic, const char *group,
    long count, long timeout_ms)
{
    int                                rc;
    long                               consumed, left, deadline;
    char                               errstr[512];
    rd_kafka_t                        *rk;
    rd_kafka_conf_t                   *conf;
    rd_kafka_resp_err_t                err;
    rd_kafka_message_t                *msg;
    rd_kafka_topic_partition_list_t   *topics;
    const char                        *kv[] = {
        "client.id", "kafka-probe",
        "group.id", group,
        "auto.offset.reset", "earliest",
        /* committed once, at the end, so that the count is exact */
        "enable.auto.commit", "false",
        /*
         * librdkafka's mock group, after its last member left, waits
         * session.timeout.ms - 1 s for members before it lets a new one
         * in: the default 45 s would stall the next probe of the group.
         */
        "session.timeout.ms", "6000",
        "heartbeat.interval.ms", "1000",
        NULL
    };

    conf = kp_conf(bootstrap, kv);
    if (conf == NULL) {
        return 1;
    }

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-probe: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    rd_kafka_poll_set_consumer(rk);

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);

    err = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka-probe: subscribe %s: %s\n", topic,
                rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return 1;
    }

    deadline = kp_now_ms() + timeout_ms;
    consumed = 0;

    while (consumed < count) {
        left = deadline - kp_now_ms();
        if (left <= 0) {
            fprintf(stderr, "kafka-probe: timed out after %ld ms\n",
                    timeout_ms);
            break;
        }

        msg = rd_kafka_consumer_poll(rk, left < KP_POLL_MS ? (int) left
                                                           : KP_POLL_MS);
        if (msg == NULL) {
            continue;
        }

        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            consumed++;

        } else {
            /* mostly transient (broker down); the deadline decides */
            fprintf(stderr, "kafka-probe: consume: %s\n",
                    rd_kafka_message_errstr(msg));
        }

        rd_kafka_message_destroy(msg);
    }

    rc = (consumed == count) ? 0 : 1;

    if (consumed > 0 && kp_commit(rk) != 0) {
        rc = 1;
    }

    printf("consumed %ld\n", consumed);
    fflush(stdout);

    kp_close_consumer(rk);

    return rc;
}


/*
 * Commits the positions of the current assignment, waiting at most
 * KP_GRACE_MS: a synchronous rd_kafka_commit() waits for the coordinator
 * without a timeout.
 */
static int
kp_commit(rd_kafka_t *rk)
{
    int                  rc;
    rd_kafka_queue_t    *queue;
    rd_kafka_event_t    *ev;
    rd_kafka_resp_err_t  err;

    queue = rd_kafka_queue_new(rk);

    err = rd_kafka_commit_queue(rk, NULL, queue, NULL, NULL);

    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ev = rd_kafka_queue_poll(queue, KP_GRACE_MS);

        if (ev == NULL) {
            err = RD_KAFKA_RESP_ERR__TIMED_OUT;

        } else {
            err = rd_kafka_event_error(ev);
            rd_kafka_event_destroy(ev);
        }
    }

    rd_kafka_queue_destroy(queue);

    rc = 0;

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka-probe: commit: %s\n", rd_kafka_err2str(err));
        rc = -1;
    }

    return rc;
}


/*
 * Leaves the group, but not for longer than KP_GRACE_MS:
 * rd_kafka_consumer_close() has no timeout and waits for the coordinator.
 */
static void
kp_close_consumer(rd_kafka_t *rk)
{
    long               deadline;
    rd_kafka_queue_t  *queue;
    rd_kafka_error_t  *error;
    rd_kafka_event_t  *ev;

    queue = rd_kafka_queue_new(rk);
    error = rd_kafka_consumer_close_queue(rk, queue);

    if (error != NULL) {
        fprintf(stderr, "kafka-probe: close: %s\n",
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);

    } else {
        deadline = kp_now_ms() + KP_GRACE_MS;

        while (!rd_kafka_consumer_closed(rk) && kp_now_ms() < deadline) {
            ev = rd_kafka_queue_poll(queue, KP_POLL_MS);
            if (ev != NULL) {
                rd_kafka_event_destroy(ev);
            }
        }

        if (!rd_kafka_consumer_closed(rk)) {
            fprintf(stderr, "kafka-probe: left the group without "
                    "waiting for the coordinator\n");
        }
    }

    rd_kafka_queue_destroy(queue);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}


/*
 * Assigns every partition of the topic from its low watermark and reads
 * up to the high watermark each had when dump started.
 */
static int
kp_dump(const char *bootstrap, const char *topic, long timeout_ms)
{
    int                                i, np, rc;
    long                               left, deadline;
    char                               errstr[512];
    int64_t                            lo, hi, *end;
    rd_kafka_t                        *rk;
    rd_kafka_conf_t                   *conf;
    rd_kafka_topic_t                  *rkt;
    rd_kafka_resp_err_t                err;
    rd_kafka_message_t                *msg;
    const struct rd_kafka_metadata    *md;
    rd_kafka_topic_partition_list_t   *parts;
    const char                        *kv[] = {
        "client.id", "kafka-probe",
        /* assign() only: the group is never joined, nothing committed */
        "group.id", "kafka-probe-dump",
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        NULL
    };

    conf = kp_conf(bootstrap, kv);
    if (conf == NULL) {
        return 1;
    }

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-probe: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    deadline = kp_now_ms() + timeout_ms;
    rc = 1;
    end = NULL;
    parts = NULL;

    rkt = rd_kafka_topic_new(rk, topic, NULL);

    err = rd_kafka_metadata(rk, 0, rkt, &md, (int) timeout_ms);
    rd_kafka_topic_destroy(rkt);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka-probe: metadata of %s: %s\n", topic,
                rd_kafka_err2str(err));
        goto done;
    }

    if (md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "kafka-probe: topic %s: %s\n", topic,
                md->topic_cnt ? rd_kafka_err2str(md->topics[0].err)
                              : "not found");
        rd_kafka_metadata_destroy(md);
        goto done;
    }

    np = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);

    end = calloc(np, sizeof(int64_t));
    parts = rd_kafka_topic_partition_list_new(np);

    if (end == NULL) {
        fprintf(stderr, "kafka-probe: out of memory\n");
        goto done;
    }

    for (i = 0; i < np; i++) {
        left = deadline - kp_now_ms();

        err = rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi,
                                               left > 0 ? (int) left : 1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka-probe: watermarks of %s [%d]: %s\n",
                    topic, i, rd_kafka_err2str(err));
            goto done;
        }

        end[i] = hi;

        if (hi > lo) {
            rd_kafka_topic_partition_list_add(parts, topic, i)->offset = lo;
        }
    }

    err = rd_kafka_assign(rk, parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka-probe: assign: %s\n", rd_kafka_err2str(err));
        goto done;
    }

    for ( ;; ) {
        for (i = 0; i < np && end[i] == 0; i++) { /* void */ }

        if (i == np) {
            rc = 0;
            break;
        }

        left = deadline - kp_now_ms();
        if (left <= 0) {
            fprintf(stderr, "kafka-probe: timed out after %ld ms\n",
                    timeout_ms);
            break;
        }

        msg = rd_kafka_consumer_poll(rk, left < KP_POLL_MS ? (int) left
                                                           : KP_POLL_MS);
        if (msg == NULL) {
            continue;
        }

        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (msg->partition >= 0 && msg->partition < np
                && end[msg->partition] != 0)
            {
                kp_dump_message(msg);

                /* 0: nothing more to wait for in this partition */
                if (msg->offset + 1 >= end[msg->partition]) {
                    end[msg->partition] = 0;
                }
            }

        } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "kafka-probe: dump: %s\n",
                    rd_kafka_message_errstr(msg));
        }

        rd_kafka_message_destroy(msg);
    }

    fflush(stdout);

done:

    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }

    free(end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    return rc;
}


/* one message as a JSON line, its value decoded as a goim.PushMsg */
static void
kp_dump_message(const rd_kafka_message_t *msg)
{
    size_t                i, nkeys;
    uint64_t              tag, v, type, op, speed;
    const char           *error;
    const unsigned char  *p, *end, *server, *room, *body, *keys[1024];
    size_t                server_len, room_len, body_len, keys_len[1024];

    printf("{\"partition\":%d,\"offset\":%lld,\"key\":", (int) msg->partition,
           (long long) msg->offset);
    kp_json_str(msg->key, msg->key ? msg->key_len : 0);

    type = op = speed = 0;
    server = room = body = (const unsigned char *) "";
    server_len = room_len = body_len = 0;
    nkeys = 0;
    error = NULL;

    p = msg->payload;
    end = p + msg->len;

    while (p < end && error == NULL) {
        if (kp_varint(&p, end, &tag) != 0) {
            error = "bad field tag";
            break;
        }

        if ((tag & 7) == 0) {
            if (kp_varint(&p, end, &v) != 0) {
                error = "bad varint";
                break;
            }

            switch (tag >> 3) {

            case 1:
                type = v;
                break;

            case 2:
                op = v;
                break;

            case 3:
                speed = v;
                break;

            default:
                error = "unknown varint field";
            }

            continue;
        }

        if ((tag & 7) != 2 || kp_varint(&p, end, &v) != 0
            || v > (uint64_t) (end - p))
        {
            error = "bad field";
            break;
        }

        switch (tag >> 3) {

        case 4:
            server = p;
            server_len = v;
            break;

        case 5:
            room = p;
            room_len = v;
            break;

        case 6:
            if (nkeys == sizeof(keys) / sizeof(keys[0])) {
                error = "more than 1024 keys";
                break;
            }

            keys[nkeys] = p;
            keys_len[nkeys++] = v;
            break;

        case 7:
            body = p;
            body_len = v;
            break;

        default:
            error = "unknown bytes field";
        }

        p += v;
    }

    if (error) {
        printf(",\"error\":\"not a goim.PushMsg: %s\"}\n", error);
        return;
    }

    /* int32 fields are sign-extended to 64 bits on the wire */
    printf(",\"type\":%d,\"operation\":%d,\"speed\":%d,\"server\":",
           (int) (int32_t) type, (int) (int32_t) op, (int) (int32_t) speed);
    kp_json_str(server, server_len);
    printf(",\"room\":");
    kp_json_str(room, room_len);
    printf(",\"keys\":[");

    for (i = 0; i < nkeys; i++) {
        if (i) {
            putchar(',');
        }

        kp_json_str(keys[i], keys_len[i]);
    }

    printf("],\"msg\":\"");

    for (i = 0; i < body_len; i++) {
        printf("%02x", body[i]);
    }

    printf("\"}\n");
}


static int
kp_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    int  shift;

    *v = 0;

    for (shift = 0; shift < 64 && *p < end; shift += 7) {
        *v |= (uint64_t) (**p & 0x7f) << shift;

        if ((*(*p)++ & 0x80) == 0) {
            return 0;
        }
    }

    return -1;
}


static void
kp_json_str(const unsigned char *p, size_t len)
{
    size_t  i;

    putchar('"');

    for (i = 0; i < len; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            printf("\\%c", p[i]);

        } else if (p[i] < 0x20 || p[i] > 0x7e) {
            printf("\\u%04x", p[i]);

        } else {
            putchar(p[i]);
        }
    }

    putchar('"');
}
