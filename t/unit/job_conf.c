/*
 * goim-job's configuration parser: defaults, every kind of value, the
 * secret from a file, and a clear error naming the line for each kind of
 * mistake.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goim_job_conf.h"
#include "goim_job_log.h"
#include "tap.h"


#define REQUIRED  "kafka_brokers k:9092; redis r:6379; internal_secret s;\n"


static char  err[512];


static int
parse(job_conf_t *cf, const char *text)
{
    job_conf_free(cf);
    job_conf_init(cf);
    err[0] = '\0';

    return job_conf_parse(cf, text, strlen(text), err, sizeof(err));
}


static void
fails(const char *text, const char *expected, const char *name)
{
    job_conf_t  cf;

    job_conf_init(&cf);

    if (!ok(parse(&cf, text) == -1 && strstr(err, expected) != NULL,
            "%s", name))
    {
        diag("error: '%s', expected '%s'", err, expected);
    }

    job_conf_free(&cf);
}


int
main(void)
{
    FILE        *f;
    char         path[] = "/tmp/goim-job-secret-XXXXXX", text[256];
    job_conf_t   cf;

    job_conf_init(&cf);

    is_int(parse(&cf, REQUIRED), 0, "the three required directives parse");
    is_str(cf.kafka_topic, "goim-push-topic", "default topic");
    is_str(cf.kafka_group, "goim-push-group-job", "default group");
    is_int(cf.registry_refresh, 2000, "default refresh 2 s");
    is_int(cf.max_request_bytes, 1024 * 1024, "default max_request_bytes");
    is_int(cf.room_batch_count, 128, "default room batch count");
    is_int(cf.room_batch_bytes, 65536, "default room batch bytes");
    is_int(cf.retry_min, 100, "default backoff from 100 ms");
    is_int(cf.retry_max, 5000, "... to 5 s");
    ok(cf.status_host == NULL, "no metrics endpoint by default");
    is_str(cf.redis_host, "r", "redis host");
    is_int(cf.redis_port, 6379, "redis port");

    is_int(parse(&cf, REQUIRED
                 "# a comment\n"
                 "kafka_topic t1; kafka_group \"g 1\";   # trailing\n"
                 "kafka_option session.timeout.ms 6000;\n"
                 "kafka_option\n  fetch.wait.max.ms\n  10;\n"
                 "registry_refresh 500ms; request_timeout 2;\n"
                 "max_request_bytes 64k; room_batch_bytes 1k;\n"
                 "comet_queue_bytes 2m; retry_backoff 10ms 1m;\n"
                 "drain_timeout 0; status_listen 127.0.0.1:9000;\n"
                 "log_level warn; redis_db 3;\n"), 0,
           "every kind of value parses");
    is_str(cf.kafka_topic, "t1", "topic");
    is_str(cf.kafka_group, "g 1", "quoted group with a space");
    ok(cf.kafka_options && strcmp(cf.kafka_options->name,
                                  "session.timeout.ms") == 0
       && strcmp(cf.kafka_options->value, "6000") == 0,
       "first kafka_option");
    ok(cf.kafka_options && cf.kafka_options->next
       && strcmp(cf.kafka_options->next->name, "fetch.wait.max.ms") == 0
       && strcmp(cf.kafka_options->next->value, "10") == 0,
       "second kafka_option, over several lines, in order");
    is_int(cf.registry_refresh, 500, "500ms");
    is_int(cf.request_timeout, 2000, "bare number: seconds");
    is_int(cf.max_request_bytes, 65536, "64k");
    is_int(cf.room_batch_bytes, 1024, "1k");
    is_int(cf.queue_bytes, 2 * 1024 * 1024, "2m");
    is_int(cf.retry_min, 10, "backoff 10ms");
    is_int(cf.retry_max, 60000, "... to 1m");
    is_int(cf.drain_timeout, 0, "drain 0");
    is_str(cf.status_host, "127.0.0.1", "status host");
    is_int(cf.status_port, 9000, "status port");
    is_int(cf.log_level, JOB_LOG_WARN, "log level");
    is_int(cf.redis_db, 3, "redis db");

    /* the secret from a file */
    is_int(mkstemp(path) >= 0, 1, "temporary file");
    f = fopen(path, "w");
    fputs("from-file\nsecond line\n", f);
    fclose(f);

    snprintf(text, sizeof(text), "kafka_brokers k:1; redis r:1;"
             " internal_secret file:%s;", path);
    is_int(parse(&cf, text), 0, "internal_secret file:");
    is_str(cf.secret, "from-file", "the file's first line is the secret");

    f = fopen(path, "w");
    fclose(f);
    snprintf(text, sizeof(text), "kafka_brokers k:1; redis r:1;"
             " internal_secret file:%s;", path);
    fails(text, "has no secret on its first line", "an empty secret file");
    unlink(path);
    fails(text, "cannot open", "a missing secret file");

    /* errors */
    fails("redis r:1; internal_secret s;", "\"kafka_brokers\" is required",
          "missing kafka_brokers");
    fails("kafka_brokers k:1; internal_secret s;", "\"redis\" is required",
          "missing redis");
    fails("kafka_brokers k:1; redis r:1;", "\"internal_secret\" is required",
          "missing internal_secret");
    fails(REQUIRED "kafka_topic a\n", "line 2: \"kafka_topic\" has no"
          " ending ';'", "no ending ';'");
    fails(REQUIRED "\nfoo bar;", "line 3: unknown directive \"foo\"",
          "unknown directive, with its line");
    fails(REQUIRED "kafka_topic;", "\"kafka_topic\" takes 1 value, not 0",
          "missing value");
    fails(REQUIRED "retry_backoff 1s;", "takes 2 values, not 1",
          "one value where two are needed");
    fails(REQUIRED "kafka_topic a b c d;", "has too many values",
          "too many values");
    fails(REQUIRED "kafka_topic a; kafka_topic b;", "\"kafka_topic\" is"
          " duplicate", "duplicate directive");
    fails(REQUIRED ";", "unexpected ';'", "a lone ';'");
    fails(REQUIRED "kafka_group \"abc;", "unterminated quoted value",
          "unterminated quote");
    fails("kafka_brokers k:1; internal_secret s; redis nocolon;",
          "invalid address \"nocolon\"",
          "redis without a port");
    fails(REQUIRED "status_listen h:70000;", "invalid address",
          "port out of range");
    fails(REQUIRED "registry_refresh 5x;", "invalid value \"5x\"",
          "unknown time unit");
    fails(REQUIRED "registry_refresh 10ms;", "100ms..10m",
          "refresh below its minimum");
    fails(REQUIRED "max_request_bytes 1g;", "invalid value",
          "unknown size unit");
    fails(REQUIRED "max_pushes_per_request -1;", "invalid value",
          "negative count");
    fails(REQUIRED "max_pushes_per_request 99999999999999999999;",
          "invalid value", "overflowing count");
    fails(REQUIRED "retry_backoff 5s 1s;", "the first time is above",
          "backoff bounds reversed");
    fails(REQUIRED "log_level loud;", "invalid level \"loud\"",
          "unknown log level");
    fails(REQUIRED "internal_secret \"\";", "duplicate",
          "internal_secret twice");
    fails("kafka_brokers k:1; redis r:1; internal_secret \"\";",
          "empty secret", "empty secret");
    fails(REQUIRED "max_request_bytes 64k; room_batch_bytes 64k;",
          "must be at least 1k under", "room batches must fit a request");

    job_conf_free(&cf);

    return done_testing();
}
