/*
 * goim-job's floor queue: a Kafka message on its way to the comets and
 * the per-comet send queue with room batching (goim_job_queue.c).
 */

#ifndef GOIM_JOB_QUEUE_H
#define GOIM_JOB_QUEUE_H

#include <stddef.h>
#include <stdint.h>


/* --- a Kafka message on its way to the comets --------------------------- */

typedef struct job_msg_s  job_msg_t;

/* the message finished: every reference on it was released */
typedef void (*job_msg_done_pt)(job_msg_t *m);

struct job_msg_s {
    int32_t          partition;
    int64_t          offset;
    uint64_t         epoch;     /* of the partition's offsets (PROTOCOL 1.15) */
    uint32_t         gen;
    uint32_t         refs;      /* comet items it is part of, and routing */
    job_msg_t       *next;      /* held for the next registry read */
    void            *pm;        /* decoded Goim__PushMsg while held */
    uint32_t         reads;     /* registry reads applied while held */
    job_msg_done_pt  done;      /* the consumer's, which set it up */
};

/* one reference less; the last one calls m->done (which frees m) */
void job_msg_release(job_msg_t *m);


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
    /* a PUSH of a member's message: its position, never merged */
    int64_t       mid;
    uint64_t      epoch;
    uint64_t      offset;
    int64_t      *offsets;      /* a room item's: msgs[i]'s Kafka offset */
    char          room_epoch[40];    /* a room item's: "<16 hex>-<partition>" */
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
void job_queue_push_member(job_queue_t *q, job_msg_t *m, int32_t op,
    char **keys, size_t nkeys, const uint8_t *body, size_t len,
    int64_t mid, uint64_t epoch, uint64_t offset);
int job_queue_push_room(job_queue_t *q, job_msg_t *m, const char *room,
    int32_t op, const uint8_t *body, size_t len);
void job_queue_push_broadcast(job_queue_t *q, job_msg_t *m, int32_t op,
    int32_t speed, const uint8_t *body, size_t len);
void job_queue_seal(job_queue_t *q, job_item_t *it);
job_item_t *job_queue_pop(job_queue_t *q);
void job_item_free(job_item_t *it);

#endif /* GOIM_JOB_QUEUE_H */
