
/*
 * goim for nginx: the Kafka producer of the logic API
 * (ngx_goim_kafka.c), one per worker process.
 */

#ifndef _NGX_GOIM_KAFKA_H_INCLUDED_
#define _NGX_GOIM_KAFKA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim.h"


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
 * What one API request produced and how it went.  Waiters live as long
 * as the worker: librdkafka reports a message after the request may
 * have gone, so the report never points into a request's pool.
 */
typedef struct ngx_goim_kafka_waiter_s  ngx_goim_kafka_waiter_t;


char *ngx_goim_kafka_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_goim_kafka_option_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_goim_kafka_init_conf(ngx_cycle_t *cycle, ngx_goim_conf_t *gcf);
ngx_int_t ngx_goim_kafka_init(ngx_cycle_t *cycle);
void ngx_goim_kafka_exit(ngx_cycle_t *cycle);
ngx_uint_t ngx_goim_kafka_enabled(void);

/*
 * A request that will produce n messages: ngx_goim_kafka_push() each of
 * them (stop at the first that fails), then ngx_goim_kafka_wait().
 * report adds {"servers":n,"messages":n} to the success answer.
 */
ngx_goim_kafka_waiter_t *ngx_goim_kafka_waiter(ngx_http_request_t *r,
    ngx_uint_t n, ngx_uint_t report);
ngx_int_t ngx_goim_kafka_push(ngx_goim_kafka_waiter_t *w, ngx_uint_t type,
    int32_t op, int32_t speed, ngx_str_t *server, ngx_str_t *room,
    ngx_str_t *keys, ngx_uint_t nkeys, ngx_str_t *body);

/*
 * NGX_DONE: the answer is sent when the last report arrives, and the
 * request finalized then; otherwise the answer was made now and the
 * caller finalizes the request with the value returned.
 */
ngx_int_t ngx_goim_kafka_wait(ngx_goim_kafka_waiter_t *w);


#endif /* _NGX_GOIM_KAFKA_H_INCLUDED_ */
