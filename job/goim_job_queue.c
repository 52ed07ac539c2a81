/*
 * Per-comet send queue and room batching (goim_job_queue.h).  Every item's body
 * is one or more complete goim packets (ver 1, op = business op, seq 0),
 * as goim's job builds them; the sender wraps the body in Proto{ver 1,
 * op 9}.  Open room batches are found through a small hash on the room
 * id, so merging does not walk the queue.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim_job_log.h"
#include "goim_job_queue.h"
#include "goim_packet.h"


/* what an item costs besides its body: the struct and protobuf framing */
#define JOB_ITEM_OVERHEAD  96


static job_item_t *job_item_new(int type, int32_t op);
static void job_item_append(job_item_t *it, job_msg_t *m, int32_t op,
    const uint8_t *body, size_t len);
static void job_queue_append(job_queue_t *q, job_item_t *it);
static uint32_t job_room_hash(const char *room);
static void job_queue_unlink_open(job_queue_t *q, job_item_t *it);


void
job_queue_init(job_queue_t *q, int batch_count, size_t batch_bytes)
{
    memset(q, 0, sizeof(job_queue_t));
    q->batch_count = batch_count;
    q->batch_bytes = batch_bytes;
}


static job_item_t *
job_item_new(int type, int32_t op)
{
    job_item_t  *it;

    it = job_alloc(sizeof(job_item_t));
    it->type = type;
    it->op = op;
    it->size = JOB_ITEM_OVERHEAD;

    return it;
}


/* one more packet (header + body) and the message it came from */
static void
job_item_append(job_item_t *it, job_msg_t *m, int32_t op,
    const uint8_t *body, size_t len)
{
    size_t  need;

    need = it->len + GOIM_HEADER_LEN + len;

    if (need > it->cap) {
        it->cap = need > 2 * it->cap ? need : 2 * it->cap;
        it->body = job_realloc(it->body, it->cap);
    }

    it->len += goim_packet_encode(it->body + it->len, 1, op, 0, body, len);
    it->size += GOIM_HEADER_LEN + len;

    if (it->nmsgs == it->msgs_cap) {
        it->msgs_cap = it->msgs_cap ? 2 * it->msgs_cap : 4;
        it->msgs = job_realloc(it->msgs, it->msgs_cap * sizeof(job_msg_t *));

        if (it->type == JOB_ITEM_ROOM) {
            it->offsets = job_realloc(it->offsets,
                                      it->msgs_cap * sizeof(int64_t));
        }
    }

    if (it->type == JOB_ITEM_ROOM) {
        /* each packet's position (docs/PROTOCOL.md 5.2) */
        it->offsets[it->nmsgs] = m->offset;
        it->size += 10;
    }

    it->msgs[it->nmsgs++] = m;
    m->refs++;
}


static void
job_queue_append(job_queue_t *q, job_item_t *it)
{
    if (q->tail) {
        q->tail->next = it;

    } else {
        q->head = it;
    }

    q->tail = it;
    q->items++;
    q->bytes += it->size;
}


void
job_queue_push_keys(job_queue_t *q, job_msg_t *m, int32_t op, char **keys,
    size_t nkeys, const uint8_t *body, size_t len)
{
    size_t       i, n;
    job_item_t  *it;

    it = job_item_new(JOB_ITEM_PUSH, op);
    it->keys = job_alloc(nkeys * sizeof(char *));

    for (i = 0; i < nkeys; i++) {
        n = strlen(keys[i]);
        it->keys[i] = job_strndup(keys[i], n);
        it->size += n + 2;
    }

    it->nkeys = nkeys;

    job_item_append(it, m, op, body, len);
    job_queue_append(q, it);
}


/*
 * A member's message kept in offline_<mid> (docs/PROTOCOL.md 5.6): an
 * item of its own with its position, its packet naming the member's
 * stream (ver 0) and the offset (seq)
 */
void
job_queue_push_member(job_queue_t *q, job_msg_t *m, int32_t op,
    char **keys, size_t nkeys, const uint8_t *body, size_t len, int64_t mid,
    uint64_t epoch, uint64_t offset)
{
    job_item_t  *it;

    job_queue_push_keys(q, m, op, keys, nkeys, body, len);

    it = q->tail;
    it->mid = mid;
    it->epoch = epoch;
    it->offset = offset;

    (void) goim_packet_write_header(it->body, len, 0, op,
                                    (int32_t) (uint32_t) offset);
}


void
job_queue_push_broadcast(job_queue_t *q, job_msg_t *m, int32_t op,
    int32_t speed, const uint8_t *body, size_t len)
{
    job_item_t  *it;

    it = job_item_new(JOB_ITEM_BROADCAST, op);
    it->speed = speed;

    job_item_append(it, m, op, body, len);
    job_queue_append(q, it);
}


static uint32_t
job_room_hash(const char *room)
{
    uint32_t  h;

    /* FNV-1a */
    for (h = 2166136261u; *room; room++) {
        h = (h ^ (uint8_t) *room) * 16777619u;
    }

    return h % JOB_ROOM_BUCKETS;
}


/*
 * Returns 1 when the message joined an open batch, 0 when it opened a
 * new one.  A room batch's op is the first message's: each packet keeps
 * its own op inside the body, the item's op is only informative.
 */
int
job_queue_push_room(job_queue_t *q, job_msg_t *m, const char *room,
    int32_t op, const uint8_t *body, size_t len)
{
    size_t       n;
    uint32_t     h;
    job_item_t  *it;

    h = job_room_hash(room);

    for (it = q->open[h]; it; it = it->hnext) {
        if (strcmp(it->room, room) == 0) {
            break;
        }
    }

    /*
     * Merged, each packet keeps its Kafka offset (it->offsets): a few
     * bytes a message, where an item of its own would cost a
     * CometPush, the room id and one dispatch more on the comet.  A room
     * changes partitions only when the topic's count of partitions
     * changes: then its messages open a new item.
     */
    if (it && it->nmsgs < (size_t) q->batch_count
        && it->len + GOIM_HEADER_LEN + len <= q->batch_bytes
        && it->msgs[0]->partition == m->partition
        && it->msgs[0]->epoch == m->epoch)
    {
        q->bytes -= it->size;
        job_item_append(it, m, op, body, len);
        q->bytes += it->size;

        return 1;
    }

    if (it) {
        /* full: the new batch becomes the room's open one */
        job_queue_unlink_open(q, it);
    }

    it = job_item_new(JOB_ITEM_ROOM, op);
    n = strlen(room);
    it->room = job_strndup(room, n);
    it->size += n + sizeof(it->room_epoch);
    snprintf(it->room_epoch, sizeof(it->room_epoch), "%016llx-%d",
             (unsigned long long) m->epoch, (int) m->partition);

    job_item_append(it, m, op, body, len);
    job_queue_append(q, it);

    it->hnext = q->open[h];
    q->open[h] = it;

    return 0;
}


static void
job_queue_unlink_open(job_queue_t *q, job_item_t *it)
{
    job_item_t  **pp;

    for (pp = &q->open[job_room_hash(it->room)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == it) {
            *pp = it->hnext;
            it->hnext = NULL;
            return;
        }
    }
}


/* the item goes into a request: later room messages open a new batch */
void
job_queue_seal(job_queue_t *q, job_item_t *it)
{
    if (it->sealed) {
        return;
    }

    if (it->type == JOB_ITEM_ROOM) {
        job_queue_unlink_open(q, it);
    }

    it->sealed = 1;
}


job_item_t *
job_queue_pop(job_queue_t *q)
{
    job_item_t  *it;

    it = q->head;
    if (it == NULL) {
        return NULL;
    }

    job_queue_seal(q, it);

    q->head = it->next;
    if (q->head == NULL) {
        q->tail = NULL;
    }

    it->next = NULL;
    q->items--;
    q->bytes -= it->size;

    return it;
}


void
job_item_free(job_item_t *it)
{
    size_t  i;

    for (i = 0; i < it->nkeys; i++) {
        free(it->keys[i]);
    }

    free(it->keys);
    free(it->room);
    free(it->body);
    free(it->msgs);
    free(it->offsets);
    free(it);
}


void
job_msg_release(job_msg_t *m)
{
    if (--m->refs == 0) {
        m->done(m);
    }
}
