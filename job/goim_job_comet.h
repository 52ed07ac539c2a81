/*
 * goim-job's floor comet: the comets and their senders (goim_job_comet.c),
 * one keep-alive HTTP connection and send queue per comet.  Items are
 * queued by the floor above (goim_job_route.c); when the queues' flow
 * changes (replies, a removed comet), the flow callback registered with
 * job_comet_init() runs (the Kafka consumer pauses or resumes).
 */

#ifndef GOIM_JOB_COMET_H
#define GOIM_JOB_COMET_H

#include <stddef.h>
#include <stdint.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>

#include "goim_job_conf.h"
#include "goim_job_queue.h"


#define JOB_COMET_UNKNOWN  0
#define JOB_COMET_UP       1
#define JOB_COMET_DOWN     2

typedef struct job_comet_s  job_comet_t;

struct job_comet_s {
    job_comet_t                *next;
    char                       *server;
    char                       *addr;       /* the registry's URL */
    char                       *host;
    int                         port;
    char                       *path;
    char                       *host_header;
    struct evhttp_connection   *conn;
    struct evhttp_request      *req;        /* the request in flight */
    size_t                      sending;    /* queue head items in it */
    job_queue_t                 q;
    struct event               *retry_ev;
    int                         backoff;    /* ms; 0 after a success */
    int                         state;
    int                         http_error; /* evhttp's, of the last one */
    unsigned                    seen:1;     /* in the last registry read */
    unsigned                    missing:1;  /* its record is not there */
    int64_t                     seen_ms;    /* its record last read, mono */
    int                         ttl;        /* the record's "ttl", s */
    unsigned                    new_addr:1; /* reconnect after the reply */
    unsigned                    tls:1;      /* an https:// address */
    unsigned                    stale:1;    /* TLS: closed, make a new one */
    unsigned                    blocked:1;  /* queue over its bound */

    uint64_t                    requests_ok;
    uint64_t                    requests_failed;
    uint64_t                    retries;
    uint64_t                    undeliverable;
};

/* the queues changed: see whether consumption may go on */
typedef void (*job_comet_flow_pt)(void);

typedef struct {
    uint64_t  requests_ok;
    uint64_t  requests_failed;
    uint64_t  retries;
    uint64_t  room_batches;     /* room items accepted */
    uint64_t  undeliverable;    /* items given up on, removed comets too */
} job_comet_stats_t;


void job_comet_init(job_conf_t *cf, struct event_base *base,
    struct evdns_base *dns, job_comet_flow_pt flow);

/* the comets, newest first (c->next), and how many */
job_comet_t *job_comet_first(void);
int job_comet_count(void);

job_comet_t *job_comet_find(const char *server);
job_comet_t *job_comet_add(const char *server, const char *addr);
int job_comet_set_addr(job_comet_t *c, const char *addr);
void job_comet_remove(job_comet_t *c, const char *why);
void job_comet_close_all(void);

/* an item was queued in c->q: note a reached bound, send */
void job_comet_queued(job_comet_t *c);
void job_comet_send(job_comet_t *c);

/* a request in flight or a success last */
int job_comet_answers(job_comet_t *c);

/*
 * Whether a queue reached its bound since the last job_comet_blocked():
 * consumption should pause at once.
 */
int job_comet_over(void);

/*
 * Marks the comets whose queue is at its bound blocked, and unblocks
 * those down to half of it; 1 while any is blocked.
 */
int job_comet_blocked(void);

const job_comet_stats_t *job_comet_stats(void);

#endif /* GOIM_JOB_COMET_H */
