/*
 * goim-job: goim's job (GOIM-SPEC 5), the Kafka consumer that routes each
 * PushMsg to the comets.  Not implemented yet: this program only parses
 * its command line and says so, so that nothing pretends to consume.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>


#define GOIM_JOB_VERSION  "0.0.0-dev"

/* sysexits.h EX_USAGE and EX_UNAVAILABLE */
#define GOIM_JOB_EXIT_USAGE        64
#define GOIM_JOB_EXIT_UNAVAILABLE  69


static void
goim_job_usage(FILE *out)
{
    fprintf(out,
            "usage: goim-job -c <config>\n"
            "       goim-job -h | --help\n"
            "       goim-job --version\n"
            "\n"
            "Consumes goim's push topic from Kafka and pushes each message\n"
            "to the comets that hold its targets (not implemented yet).\n"
            "\n"
            "  -c <config>  configuration file\n"
            "  -h, --help   this text\n"
            "  --version    version, and the librdkafka it is built with\n");
}


int
main(int argc, char **argv)
{
    int          i;
    FILE        *f;
    const char  *config;

    config = NULL;

    for (i = 1; i < argc; i++) {

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            goim_job_usage(stdout);
            return 0;
        }

        if (strcmp(argv[i], "--version") == 0) {
            printf("goim-job %s (librdkafka %s)\n", GOIM_JOB_VERSION,
                   rd_kafka_version_str());
            return 0;
        }

        if (strcmp(argv[i], "-c") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "goim-job: option -c needs a file name\n");
                goim_job_usage(stderr);
                return GOIM_JOB_EXIT_USAGE;
            }

            config = argv[++i];
            continue;
        }

        fprintf(stderr, "goim-job: unknown argument \"%s\"\n", argv[i]);
        goim_job_usage(stderr);
        return GOIM_JOB_EXIT_USAGE;
    }

    if (config == NULL) {
        fprintf(stderr, "goim-job: no configuration file (-c) given\n");
        goim_job_usage(stderr);
        return GOIM_JOB_EXIT_USAGE;
    }

    f = fopen(config, "r");
    if (f == NULL) {
        fprintf(stderr, "goim-job: cannot open \"%s\": %s\n", config,
                strerror(errno));
        return GOIM_JOB_EXIT_USAGE;
    }

    fclose(f);

    fprintf(stderr, "goim-job: the Kafka consumer is not implemented yet\n");

    return GOIM_JOB_EXIT_UNAVAILABLE;
}
