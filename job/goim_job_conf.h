/*
 * goim-job's floor conf, the configuration file (goim_job_conf.c).
 */

#ifndef GOIM_JOB_CONF_H
#define GOIM_JOB_CONF_H

#include <stddef.h>


typedef struct job_kv_s  job_kv_t;

struct job_kv_s {
    char      *name;
    char      *value;
    job_kv_t  *next;
};

typedef struct {
    char      *kafka_brokers;
    char      *kafka_topic;
    char      *kafka_group;
    char      *history_epoch;       /* in the room positions' epoch */
    job_kv_t  *kafka_options;       /* librdkafka properties, in order */

    char      *redis_host;
    int        redis_port;
    char      *redis_password;
    int        redis_db;
    int        registry_refresh;    /* ms */

    char      *secret;
    char      *internal_ca;         /* NULL: the system's CA store */
    int        request_timeout;     /* ms */
    size_t     max_request_bytes;
    int        max_pushes;          /* items per request */
    int        room_batch_count;
    size_t     room_batch_bytes;
    int        queue_items;         /* per comet */
    size_t     queue_bytes;
    int        partition_inflight;
    int        retry_min;           /* ms */
    int        retry_max;
    int        drain_timeout;       /* ms */

    char      *status_host;         /* NULL: no metrics endpoint */
    int        status_port;
    char      *log_file;            /* NULL: stderr */
    int        log_level;
} job_conf_t;

void job_conf_init(job_conf_t *cf);
int job_conf_parse(job_conf_t *cf, const char *text, size_t len,
    char *err, size_t errlen);
int job_conf_load(job_conf_t *cf, const char *path, char *err,
    size_t errlen);
void job_conf_free(job_conf_t *cf);

#endif /* GOIM_JOB_CONF_H */
