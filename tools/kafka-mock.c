/*
 * kafka-mock: a Kafka cluster for tests and the demo, around librdkafka's
 * built-in mock cluster (rdkafka_mock.h), which speaks the real Kafka
 * protocol on loopback: produce (acks=all included), consumer groups with
 * offset commits, metadata.  No Kafka broker is packaged for Debian.
 *
 *   kafka-mock [-b brokers] [-t topic:partitions]...
 *
 * Defaults: one broker and the topic goim-push-topic with 4 partitions
 * (any -t replaces the default topic).  The brokers listen on random
 * loopback ports (librdkafka 2.0.2 cannot choose them); the bootstrap
 * address is the first line on stdout.  Then, until SIGTERM or SIGINT
 * (exit 0):
 *
 *   SIGUSR1   takes all brokers down: connections are closed and new ones
 *             refused, but topics, messages and group offsets are kept;
 *   SIGUSR2   brings them back up on the same ports.
 *
 * Every state change is logged to stderr.
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>


#define KM_MAX_BROKERS     16
#define KM_MAX_TOPICS      32
#define KM_MAX_PARTITIONS  1024
#define KM_DEFAULT_TOPIC   "goim-push-topic"
#define KM_DEFAULT_PARTS   4


typedef struct {
    const char  *name;
    int          partitions;
} km_topic_t;


static const int  km_signals[] = { SIGTERM, SIGINT, SIGUSR1, SIGUSR2 };


static void km_usage(void);
static int km_parse_int(const char *s, int min, int max, int *out);
static int km_parse_topic(char *arg, km_topic_t *topic);
static int km_serve(rd_kafka_mock_cluster_t *mcluster, const sigset_t *sigs);


static void
km_usage(void)
{
    fprintf(stderr,
        "usage: kafka-mock [-b brokers] [-t topic:partitions]...\n"
        "  -b N        number of brokers, 1..%d (default 1)\n"
        "  -t T:P      create topic T with P partitions; repeatable\n"
        "              (default " KM_DEFAULT_TOPIC ":%d)\n"
        "prints the bootstrap address as its first stdout line;\n"
        "SIGUSR1: all brokers down, SIGUSR2: all up, SIGTERM/SIGINT: exit\n",
        KM_MAX_BROKERS, KM_DEFAULT_PARTS);
}


static int
km_parse_int(const char *s, int min, int max, int *out)
{
    long   n;
    char  *end;

    errno = 0;
    n = strtol(s, &end, 10);

    if (errno != 0 || end == s || *end != '\0' || n < min || n > max) {
        return -1;
    }

    *out = (int) n;

    return 0;
}


static int
km_parse_topic(char *arg, km_topic_t *topic)
{
    char    *colon;
    size_t   len;

    colon = strchr(arg, ':');
    len = colon ? (size_t) (colon - arg) : 0;

    /* Kafka's rule for topic names; the mock itself checks nothing */
    if (len == 0 || len > 249
        || strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789._-") != len)
    {
        fprintf(stderr, "kafka-mock: -t \"%s\": expected topic:partitions, "
                "topic of 1..249 characters [a-zA-Z0-9._-]\n", arg);
        return -1;
    }

    if (km_parse_int(colon + 1, 1, KM_MAX_PARTITIONS, &topic->partitions)
        != 0)
    {
        fprintf(stderr, "kafka-mock: -t \"%s\": partitions must be 1..%d\n",
                arg, KM_MAX_PARTITIONS);
        return -1;
    }

    *colon = '\0';
    topic->name = arg;

    return 0;
}


int
main(int argc, char **argv)
{
    int                       opt, nbrokers, ntopics, replicas, i, rc;
    char                      errstr[512];
    sigset_t                  sigs;
    rd_kafka_t               *rk;
    km_topic_t                topics[KM_MAX_TOPICS];
    rd_kafka_conf_t          *conf;
    rd_kafka_resp_err_t       err;
    rd_kafka_mock_cluster_t  *mcluster;

    nbrokers = 1;
    ntopics = 0;

    while ((opt = getopt(argc, argv, "b:t:h")) != -1) {
        switch (opt) {

        case 'b':
            if (km_parse_int(optarg, 1, KM_MAX_BROKERS, &nbrokers) != 0) {
                fprintf(stderr, "kafka-mock: -b \"%s\": brokers must be "
                        "1..%d\n", optarg, KM_MAX_BROKERS);
                return 2;
            }
            break;

        case 't':
            if (ntopics == KM_MAX_TOPICS) {
                fprintf(stderr, "kafka-mock: at most %d topics\n",
                        KM_MAX_TOPICS);
                return 2;
            }

            if (km_parse_topic(optarg, &topics[ntopics]) != 0) {
                return 2;
            }

            ntopics++;
            break;

        case 'h':
            km_usage();
            return 0;

        default:
            km_usage();
            return 2;
        }
    }

    if (optind != argc) {
        fprintf(stderr, "kafka-mock: unexpected argument \"%s\"\n",
                argv[optind]);
        km_usage();
        return 2;
    }

    if (ntopics == 0) {
        topics[0].name = KM_DEFAULT_TOPIC;
        topics[0].partitions = KM_DEFAULT_PARTS;
        ntopics = 1;
    }

    /*
     * Block the signals we serve before librdkafka starts its threads:
     * the threads inherit the mask, so the signals are only ever taken
     * by sigwaitinfo() in km_serve(), where calling librdkafka is safe.
     */
    sigemptyset(&sigs);

    for (i = 0; i < (int) (sizeof(km_signals) / sizeof(km_signals[0])); i++) {
        sigaddset(&sigs, km_signals[i]);
    }

    rc = pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (rc != 0) {
        fprintf(stderr, "kafka-mock: pthread_sigmask: %s\n", strerror(rc));
        return 1;
    }

    /*
     * An ignored signal is discarded rather than left pending for
     * sigwaitinfo(), and a shell starts background jobs with SIGINT
     * ignored: restore the default (never run: the signals are blocked).
     */
    for (i = 0; i < (int) (sizeof(km_signals) / sizeof(km_signals[0])); i++) {
        signal(km_signals[i], SIG_DFL);
    }

    /*
     * The cluster needs a client handle for its bookkeeping; a producer
     * that is never used.  It has no bootstrap.servers on purpose, so
     * silence its "no bootstrap.servers" notice.
     */
    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "client.id", "kafka-mock", errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "log_level", "4", errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "kafka-mock: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-mock: rd_kafka_new: %s\n", errstr);
        return 1;
    }

    mcluster = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (mcluster == NULL) {
        fprintf(stderr, "kafka-mock: cannot create the mock cluster "
                "(listen on loopback failed?)\n");
        rd_kafka_destroy(rk);
        return 1;
    }

    /*
     * 2.0.2 ignores the replication factor given here and uses the
     * cluster's default, min(3, brokers); pass the same value so that
     * the log line below tells the truth.  Every replica is in sync and
     * produce requests are answered once appended, so acks=all works.
     */
    replicas = nbrokers < 3 ? nbrokers : 3;

    for (i = 0; i < ntopics; i++) {
        err = rd_kafka_mock_topic_create(mcluster, topics[i].name,
                                         topics[i].partitions, replicas);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka-mock: topic \"%s\": %s\n",
                    topics[i].name, rd_kafka_err2str(err));
            rd_kafka_mock_cluster_destroy(mcluster);
            rd_kafka_destroy(rk);
            return 1;
        }

        fprintf(stderr, "kafka-mock: topic %s: %d partition(s), "
                "replication factor %d\n",
                topics[i].name, topics[i].partitions, replicas);
    }

    /* the one stdout line scripts wait for */
    if (printf("%s\n", rd_kafka_mock_cluster_bootstraps(mcluster)) < 0
        || fflush(stdout) != 0)
    {
        fprintf(stderr, "kafka-mock: cannot write the bootstrap address: "
                "%s\n", strerror(errno));
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        return 1;
    }

    fprintf(stderr, "kafka-mock: %d broker(s) up at %s\n", nbrokers,
            rd_kafka_mock_cluster_bootstraps(mcluster));

    rc = km_serve(mcluster, &sigs);

    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(rk);

    if (rc == 0) {
        fprintf(stderr, "kafka-mock: stopped\n");
    }

    return rc;
}


/*
 * Waits for the blocked signals and acts on them in this thread.
 * Returns the exit code.
 */
static int
km_serve(rd_kafka_mock_cluster_t *mcluster, const sigset_t *sigs)
{
    int                  signo, up;
    siginfo_t            info;
    rd_kafka_resp_err_t  err;

    for ( ;; ) {
        signo = sigwaitinfo(sigs, &info);

        if (signo == -1) {
            if (errno == EINTR) {
                continue;
            }

            fprintf(stderr, "kafka-mock: sigwaitinfo: %s\n", strerror(errno));
            return 1;
        }

        switch (signo) {

        case SIGUSR1:
        case SIGUSR2:
            up = (signo == SIGUSR2);

            /* -1: every broker; repeating a state is harmless */
            err = up ? rd_kafka_mock_broker_set_up(mcluster, -1)
                     : rd_kafka_mock_broker_set_down(mcluster, -1);

            if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "kafka-mock: %s: setting brokers %s "
                        "failed: %s\n", up ? "SIGUSR2" : "SIGUSR1",
                        up ? "up" : "down", rd_kafka_err2str(err));
                break;
            }

            fprintf(stderr, "kafka-mock: %s from pid %ld: all brokers %s\n",
                    up ? "SIGUSR2" : "SIGUSR1", (long) info.si_pid,
                    up ? "up" : "down");
            break;

        default:
            fprintf(stderr, "kafka-mock: %s from pid %ld: exiting\n",
                    signo == SIGTERM ? "SIGTERM" : "SIGINT",
                    (long) info.si_pid);
            return 0;
        }
    }
}
