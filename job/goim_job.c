/*
 * goim-job: goim's job (docs/PROTOCOL.md 4.5, 5.6), the Kafka consumer
 * that routes each PushMsg to the comets' internal push locations, at
 * least once.  This file, the top floor (job/LAYERS): command line,
 * configuration, signals and the orderly exit.
 *
 *   SIGTERM, SIGINT  drain: stop consuming, wait up to drain_timeout for
 *                    the messages in flight, commit, leave the group,
 *                    exit 0
 *   SIGHUP           reopen the log file
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "goim_job_conf.h"
#include "goim_job_kafka.h"
#include "goim_job_log.h"
#include "goim_job_metrics.h"


#define GOIM_JOB_VERSION  "0.1.0"

/* sysexits.h */
#define JOB_EXIT_USAGE     64
#define JOB_EXIT_SOFTWARE  70
#define JOB_EXIT_CONFIG    78


static void job_check_drained(void);


static job_conf_t          job_conf;
static struct event_base  *job_base;
static struct event       *job_drain_ev;


static void
job_usage(FILE *out)
{
    fprintf(out,
            "usage: goim-job -c <config> [-l debug|info|warn|error] [-t]\n"
            "       goim-job -h | --help\n"
            "       goim-job --version\n"
            "\n"
            "Consumes goim's push topic from Kafka and pushes each message\n"
            "to the comets that hold its targets (at least once).\n"
            "\n"
            "  -c <config>  configuration file (conf/goim-job.conf)\n"
            "  -l <level>   log level, overrides log_level\n"
            "  -t           test the configuration and exit\n"
            "  -h, --help   this text\n"
            "  --version    version, and the librdkafka it is built with\n");
}


static void
job_signal(evutil_socket_t sig, short events, void *arg)
{
    struct timeval  tv;

    (void) events;
    (void) arg;

    if (sig == SIGHUP) {
        if (job_log_open(job_conf.log_file) == 0) {
            job_log(JOB_LOG_INFO, "log file reopened");
        }

        return;
    }

    if (job_kafka_stats()->draining) {
        job_log(JOB_LOG_INFO, "signal %d again while draining, ignored",
                (int) sig);
        return;
    }

    job_log(JOB_LOG_INFO, "signal %d: draining %llu message(s) in flight"
            " for up to %d ms", (int) sig,
            (unsigned long long) job_kafka_stats()->inflight,
            job_conf.drain_timeout);

    job_kafka_drain();

    tv.tv_sec = job_conf.drain_timeout / 1000;
    tv.tv_usec = (job_conf.drain_timeout % 1000) * 1000;
    evtimer_add(job_drain_ev, &tv);

    job_check_drained();
}


static void
job_drain_timeout(evutil_socket_t fd, short events, void *arg)
{
    (void) fd;
    (void) events;
    (void) arg;

    job_log(JOB_LOG_WARN, "drain timeout: %llu message(s) still in flight,"
            " Kafka delivers them again",
            (unsigned long long) job_kafka_stats()->inflight);

    event_base_loopbreak(job_base);
}


static void
job_check_drained(void)
{
    if (job_kafka_stats()->inflight == 0) {
        job_log(JOB_LOG_INFO, "drained: every message finished");
        event_base_loopbreak(job_base);
    }
}


int
main(int argc, char **argv)
{
    int                 i, level, test, rc;
    char                err[512];
    const char         *config;
    struct event       *sigs[3] = { NULL, NULL, NULL };
    struct evdns_base  *dns;

    static const int  signals[] = { SIGTERM, SIGINT, SIGHUP };

    config = NULL;
    level = -1;
    test = 0;

    for (i = 1; i < argc; i++) {

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            job_usage(stdout);
            return 0;
        }

        if (strcmp(argv[i], "--version") == 0) {
            printf("goim-job %s (librdkafka %s)\n", GOIM_JOB_VERSION,
                   rd_kafka_version_str());
            return 0;
        }

        if (strcmp(argv[i], "-t") == 0) {
            test = 1;
            continue;
        }

        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "-l") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "goim-job: option %s needs a value\n",
                        argv[i]);
                job_usage(stderr);
                return JOB_EXIT_USAGE;
            }

            if (argv[i][1] == 'c') {
                config = argv[++i];
                continue;
            }

            level = job_log_parse_level(argv[++i]);
            if (level < 0) {
                fprintf(stderr, "goim-job: invalid log level \"%s\"\n",
                        argv[i]);
                return JOB_EXIT_USAGE;
            }

            continue;
        }

        fprintf(stderr, "goim-job: unknown argument \"%s\"\n", argv[i]);
        job_usage(stderr);
        return JOB_EXIT_USAGE;
    }

    if (config == NULL) {
        fprintf(stderr, "goim-job: no configuration file (-c) given\n");
        job_usage(stderr);
        return JOB_EXIT_USAGE;
    }

    job_conf_init(&job_conf);

    if (job_conf_load(&job_conf, config, err, sizeof(err)) != 0) {
        fprintf(stderr, "goim-job: %s: %s\n", config, err);
        job_conf_free(&job_conf);
        return JOB_EXIT_CONFIG;
    }

    if (test) {
        printf("goim-job: configuration %s is ok\n", config);
        job_conf_free(&job_conf);
        return 0;
    }

    job_log_level = level >= 0 ? level : job_conf.log_level;

    if (job_conf.log_file && job_log_open(job_conf.log_file) != 0) {
        job_conf_free(&job_conf);
        return JOB_EXIT_CONFIG;
    }

    signal(SIGPIPE, SIG_IGN);
    srand((unsigned) time(NULL) ^ (unsigned) getpid());

    job_base = event_base_new();

    if (job_base == NULL) {
        job_log(JOB_LOG_ERROR, "cannot create the event loop");
        return JOB_EXIT_SOFTWARE;
    }

    for (i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(job_base, signals[i], job_signal, NULL);
        if (sigs[i] == NULL || event_add(sigs[i], NULL) != 0) {
            job_log(JOB_LOG_ERROR, "cannot watch signal %d", signals[i]);
            return JOB_EXIT_SOFTWARE;
        }
    }

    job_drain_ev = evtimer_new(job_base, job_drain_timeout, NULL);

    /* resolv.conf and /etc/hosts, as getaddrinfo() would use them */
    dns = evdns_base_new(job_base, EVDNS_BASE_INITIALIZE_NAMESERVERS
                                   | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (dns == NULL) {
        job_log(JOB_LOG_ERROR, "cannot create the DNS resolver");
        return JOB_EXIT_SOFTWARE;
    }

    job_log(JOB_LOG_INFO, "goim-job %s (librdkafka %s) starting, pid %d",
            GOIM_JOB_VERSION, rd_kafka_version_str(), (int) getpid());

    rc = 0;

    /* the consumer starts routing, which starts the registry and the
     * comet senders below it */
    if (job_drain_ev == NULL || job_metrics_init(&job_conf, job_base) != 0
        || job_kafka_init(&job_conf, job_base, dns, job_check_drained) != 0)
    {
        job_log(JOB_LOG_ERROR, "cannot start");
        rc = JOB_EXIT_SOFTWARE;

    } else {
        event_base_dispatch(job_base);
    }

    job_kafka_close();
    job_metrics_close();
    evdns_base_free(dns, 0);

    for (i = 0; i < 3; i++) {
        if (sigs[i]) {
            event_free(sigs[i]);
        }
    }

    if (job_drain_ev) {
        event_free(job_drain_ev);
    }

    event_base_free(job_base);

    job_log(JOB_LOG_INFO, "exiting");
    job_conf_free(&job_conf);

    return rc;
}
