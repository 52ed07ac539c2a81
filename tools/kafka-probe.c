/*
 * kafka-probe: produce or consume a number of messages, for tests.
 *
 *   kafka-probe produce <bootstrap> <topic> <count> [--timeout-ms N]
 *   kafka-probe consume <bootstrap> <topic> <group> <count> [--timeout-ms N]
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
 * Exit codes: 0 success, 1 failure or timeout, 2 usage.
 */

#include <errno.h>
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


static void
kp_usage(void)
{
    fprintf(stderr,
        "usage: kafka-probe produce <bootstrap> <topic> <count> "
        "[--timeout-ms N]\n"
        "       kafka-probe consume <bootstrap> <topic> <group> <count> "
        "[--timeout-ms N]\n"
        "default timeout %d ms; exit 0 only when <count> messages were "
        "delivered\nor consumed\n", KP_DEFAULT_TIMEOUT_MS);
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
