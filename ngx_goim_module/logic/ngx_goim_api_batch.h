/*
 * goim for nginx: POST /goim/push/batch (docs/PROTOCOL.md 2.13), the
 * request and its items, shared by the route (ngx_goim_api_batch.c), the
 * JSON lines reader (_batch_json.c) and the items' rules and protobuf
 * reader (_batch_items.c).
 */


#ifndef _NGX_GOIM_API_BATCH_H_INCLUDED_
#define _NGX_GOIM_API_BATCH_H_INCLUDED_


#include "ngx_goim_api.h"


#define NGX_GOIM_BATCH_MAX_ITEMS    1000
#define NGX_GOIM_BATCH_MAX_TARGETS  10000

#define NGX_GOIM_BATCH_PENDING      1       /* an item's code meanwhile */


typedef struct ngx_goim_api_batch_s  ngx_goim_api_batch_t;

typedef struct {
    ngx_goim_api_batch_t      *owner;
    ngx_goim_api_route_e       type;
    int32_t                    op;
    int32_t                    speed;
    ngx_str_t                  room;
    ngx_str_t                 *keys;
    int64_t                   *mids;
    ngx_uint_t                 n;           /* keys or mids */
    ngx_str_t                  body;

    ngx_int_t                  code;
    const char                *message;

    ngx_goim_kafka_batch_t    *kafka;
    ngx_uint_t                 messages;    /* produced to Kafka */

    /* Redis without Kafka: this item's targets, delivered or listed */
    ngx_goim_api_target_t     *targets;
    ngx_uint_t                 ntargets;
    ngx_uint_t                 here;
} ngx_goim_api_item_t;


struct ngx_goim_api_batch_s {
    ngx_http_request_t        *request;
    ngx_goim_api_item_t       *items;
    ngx_uint_t                 nitems;
    ngx_uint_t                 ntargets;    /* keys and mids, all items */
    ngx_uint_t                 waiting;     /* Kafka batches unreported */
    ngx_int_t                  refused;     /* the request's answer */
};


/* the readers: NGX_OK, NGX_DECLINED (refused and answered: b->refused),
 * or an HTTP status */
ngx_int_t ngx_goim_api_batch_json(ngx_goim_api_batch_t *b, ngx_str_t *body);
ngx_int_t ngx_goim_api_batch_protobuf(ngx_goim_api_batch_t *b,
    ngx_str_t *body);

ngx_int_t ngx_goim_api_batch_refuse(ngx_goim_api_batch_t *b,
    const char *why);
void ngx_goim_api_batch_check(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item);
void ngx_goim_api_batch_fail(ngx_goim_api_batch_t *b,
    ngx_goim_api_item_t *item, ngx_int_t code, const char *fmt, ...);


#endif /* _NGX_GOIM_API_BATCH_H_INCLUDED_ */
