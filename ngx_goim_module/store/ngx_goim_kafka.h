
/*
 * goim for nginx: the Kafka producer of the logic API
 * (ngx_goim_kafka.c), one per worker process.  It knows batches of
 * messages and their reports, not the HTTP requests behind them.
 */

#ifndef _NGX_GOIM_KAFKA_H_INCLUDED_
#define _NGX_GOIM_KAFKA_H_INCLUDED_


#include "ngx_goim_core.h"


#define NGX_GOIM_KAFKA_PUSH       0         /* goim.PushMsg.Type */
#define NGX_GOIM_KAFKA_ROOM       1
#define NGX_GOIM_KAFKA_BROADCAST  2


struct ngx_goim_kafka_conf_s {
    ngx_str_t                  brokers;
    ngx_str_t                  topic;
    ngx_msec_t                 timeout;     /* message.timeout.ms */
    ngx_array_t                options;     /* of ngx_keyval_t */
};


/*
 * The messages of one owner (an API request) and how they went.
 * Batches live as long as the worker: librdkafka reports a message
 * after its owner may have gone, so a report never points into the
 * owner's pool.
 */
typedef struct ngx_goim_kafka_batch_s  ngx_goim_kafka_batch_t;

/* the batch's last report came, or the reports are overdue */
typedef void (*ngx_goim_kafka_done_pt)(ngx_goim_kafka_batch_t *b,
    void *data);


typedef struct {
    ngx_uint_t                 total;       /* messages meant */
    ngx_uint_t                 acked;
    ngx_uint_t                 invalid;     /* a NUL byte in a string */
    ngx_uint_t                 queue_full;  /* the producer refused one */
    const char                *error;       /* librdkafka's reason, or NULL */
} ngx_goim_kafka_result_t;


char *ngx_goim_kafka_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_goim_kafka_option_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_goim_kafka_init_conf(ngx_cycle_t *cycle, ngx_goim_conf_t *gcf);

/* librdkafka's configuration of the producer (ngx_goim_kafka_conf.c) */
struct rd_kafka_conf_s *ngx_goim_kafka_rdconf(ngx_goim_conf_t *gcf,
    ngx_log_t *log);

/* the producer (ngx_goim_kafka.c) */
ngx_int_t ngx_goim_kafka_init(ngx_cycle_t *cycle);
void ngx_goim_kafka_exit(ngx_cycle_t *cycle);

/*
 * A batch of n messages, for an owner whose memory is pool (the batch
 * lets go of it when the pool goes): ngx_goim_kafka_produce() each of
 * them (stop at the first that fails), then ngx_goim_kafka_wait().
 */
ngx_goim_kafka_batch_t *ngx_goim_kafka_batch(ngx_pool_t *pool,
    ngx_log_t *log, ngx_uint_t n, ngx_goim_kafka_done_pt done, void *data);
ngx_int_t ngx_goim_kafka_produce(ngx_goim_kafka_batch_t *b, ngx_uint_t type,
    int32_t op, int32_t speed, ngx_str_t *server, ngx_str_t *room,
    ngx_str_t *keys, ngx_uint_t nkeys, ngx_str_t *body);
ngx_int_t ngx_goim_kafka_produce_member(ngx_goim_kafka_batch_t *b,
    int32_t op, ngx_str_t *server, ngx_str_t *keys, ngx_uint_t nkeys,
    ngx_str_t *body, int64_t mid, uint64_t epoch, uint64_t offset);

/*
 * NGX_DONE: done() is called when the last report arrives, or when they
 * are overdue; NGX_OK: every message is reported already.  Either way
 * the owner then reads the result and finishes the batch.
 */
ngx_int_t ngx_goim_kafka_wait(ngx_goim_kafka_batch_t *b);
void ngx_goim_kafka_result(ngx_goim_kafka_batch_t *b,
    ngx_goim_kafka_result_t *res);

/* the owner is done with the batch: no more calls, reports still count */
void ngx_goim_kafka_finish(ngx_goim_kafka_batch_t *b);


#endif /* _NGX_GOIM_KAFKA_H_INCLUDED_ */
