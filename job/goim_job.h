/*
 * goim-job: the pure parts shared by the job's files and its unit tests
 * (configuration, logging, the per-partition offset tracker and the
 * per-comet send queue with room batching).  Nothing here touches
 * libevent, librdkafka or hiredis.
 */

#ifndef GOIM_JOB_H
#define GOIM_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>


#define GOIM_JOB_VERSION  "0.1.0"

/* sysexits.h */
#define JOB_EXIT_USAGE     64
#define JOB_EXIT_SOFTWARE  70
#define JOB_EXIT_CONFIG    78


/* --- logging (goim_job_log.c) ------------------------------------------ */

#define JOB_LOG_DEBUG  0
#define JOB_LOG_INFO   1
#define JOB_LOG_WARN   2
#define JOB_LOG_ERROR  3

extern int  job_log_level;

int job_log_parse_level(const char *s);
int job_log_open(const char *path);
void job_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void *job_alloc(size_t size);
void *job_realloc(void *p, size_t size);
char *job_strndup(const char *s, size_t len);


/* --- configuration (goim_job_conf.c) ------------------------------------ */

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
    job_kv_t  *kafka_options;       /* librdkafka properties, in order */

    char      *redis_host;
    int        redis_port;
    char      *redis_password;
    int        redis_db;
    int        registry_refresh;    /* ms */

    char      *secret;
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


/* --- offset tracking (goim_job_offsets.c) -------------------------------
 *
 * Messages of a partition arrive in offset order and finish in any order.
 * The offset to store is the lowest unfinished one (or just past the last
 * seen when all are finished): a crash then redelivers, never skips.  A
 * tracker belongs to one assignment: its generation changes when the
 * partition is revoked, and completions of an older generation are
 * ignored.
 */

#define JOB_OFFSETS_NONE   -1     /* finished, but nothing new to store */
#define JOB_OFFSETS_STALE  -2     /* other generation or unknown offset */

typedef struct {
    int64_t   *offs;        /* ring of tracked offsets, ascending */
    uint8_t   *done;
    size_t     cap;
    size_t     head;
    size_t     n;           /* entries in the ring */
    int64_t    next;        /* just past the last added, -1 before any */
    uint32_t   gen;
} job_offsets_t;

void job_offsets_init(job_offsets_t *t, uint32_t gen);
void job_offsets_reset(job_offsets_t *t, uint32_t gen);
void job_offsets_free(job_offsets_t *t);
int job_offsets_add(job_offsets_t *t, int64_t offset);
int64_t job_offsets_done(job_offsets_t *t, uint32_t gen, int64_t offset);


/* --- the registry's rule for a comet whose record is missing ------------
 *
 * A record lost with a Redis restart is not a dead comet: the comet is
 * kept (and gets its messages) until its record has been missing for at
 * least its "ttl" since it was last read AND the comet does not answer.
 * 1: remove it now.
 */

static inline int
job_comet_gone(int64_t now_ms, int64_t seen_ms, int ttl, int reachable)
{
    return !reachable && now_ms - seen_ms >= (int64_t) ttl * 1000;
}


/* --- a Kafka message on its way to the comets --------------------------- */

typedef struct job_msg_s  job_msg_t;

struct job_msg_s {
    int32_t     partition;
    int64_t     offset;
    uint32_t    gen;
    uint32_t    refs;       /* comet items it is part of */
    job_msg_t  *next;       /* held for the next registry read */
    void       *pm;         /* decoded Goim__PushMsg while held */
    uint32_t    reads;      /* registry reads applied while held */
};


/* --- per-comet send queue (goim_job_queue.c) ----------------------------
 *
 * A FIFO of items, each one CometPush of the batch the comet gets.  A
 * room message joins its room's open batch (the room's newest item not
 * sent yet) while that stays under the count and byte bounds, otherwise
 * it opens a new batch at the tail.  Once an item was part of a request
 * it is sealed: a retry sends exactly what was sent before.
 */

#define JOB_ITEM_PUSH       0
#define JOB_ITEM_ROOM       1
#define JOB_ITEM_BROADCAST  2

#define JOB_ROOM_BUCKETS    1024

typedef struct job_item_s  job_item_t;

struct job_item_s {
    job_item_t   *next;
    job_item_t   *hnext;        /* open room batches by room */
    int           type;
    int32_t       op;
    int32_t       speed;
    char         *room;
    char        **keys;
    size_t        nkeys;
    uint8_t      *body;         /* complete goim packets */
    size_t        len;
    size_t        cap;
    job_msg_t   **msgs;
    size_t        nmsgs;
    size_t        msgs_cap;
    size_t        size;         /* what it counts in the queue's bytes */
    unsigned      sealed:1;
};

typedef struct {
    job_item_t   *head;
    job_item_t   *tail;
    size_t        items;
    size_t        bytes;
    int           batch_count;  /* room batch bounds */
    size_t        batch_bytes;
    job_item_t   *open[JOB_ROOM_BUCKETS];
} job_queue_t;

void job_queue_init(job_queue_t *q, int batch_count, size_t batch_bytes);
void job_queue_push_keys(job_queue_t *q, job_msg_t *m, int32_t op,
    char **keys, size_t nkeys, const uint8_t *body, size_t len);
int job_queue_push_room(job_queue_t *q, job_msg_t *m, const char *room,
    int32_t op, const uint8_t *body, size_t len);
void job_queue_push_broadcast(job_queue_t *q, job_msg_t *m, int32_t op,
    int32_t speed, const uint8_t *body, size_t len);
void job_queue_seal(job_queue_t *q, job_item_t *it);
job_item_t *job_queue_pop(job_queue_t *q);
void job_item_free(job_item_t *it);

#endif /* GOIM_JOB_H */
