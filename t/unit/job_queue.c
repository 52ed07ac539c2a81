/*
 * goim-job's per-comet send queue: room messages merge into their room's
 * open batch within the count and byte bounds, a sealed (sent) batch
 * takes no more, each item's body is complete goim packets, and every
 * item holds a reference on each message it carries.
 */

#include <stdlib.h>
#include <string.h>

#include "goim_job_queue.h"
#include "goim_packet.h"
#include "tap.h"


static const uint8_t *
packet_at(job_item_t *it, int n, goim_packet_t *pkt)
{
    size_t  off;
    long    rc;

    off = 0;

    for ( ;; ) {
        rc = goim_packet_parse(it->body + off, it->len - off, 1 << 20, pkt);
        if (rc <= 0) {
            return NULL;
        }

        if (n-- == 0) {
            return it->body + off;
        }

        off += rc;
    }
}


int
main(void)
{
    int            i;
    char          *keys[2] = { "k1", "k2" };
    uint8_t        big[100];
    job_msg_t      m[10];
    job_item_t    *it, *first;
    job_queue_t    q;
    goim_packet_t  pkt;

    memset(m, 0, sizeof(m));
    memset(big, 'x', sizeof(big));

    /* bounds: 3 messages or 200 bytes of packets per batch */
    job_queue_init(&q, 3, 200);

    is_int(job_queue_push_room(&q, &m[0], "live://1", 1000,
                               (uint8_t *) "a", 1), 0,
           "the first room message opens a batch");
    is_int(job_queue_push_room(&q, &m[1], "live://1", 1001,
                               (uint8_t *) "bb", 2), 1,
           "the second joins it");
    is_int(job_queue_push_room(&q, &m[2], "live://2", 1000,
                               (uint8_t *) "c", 1), 0,
           "another room opens its own batch");
    is_int(job_queue_push_room(&q, &m[3], "live://1", 1000,
                               (uint8_t *) "d", 1), 1,
           "room 1's open batch is not the tail: still joined");
    is_int(job_queue_push_room(&q, &m[4], "live://1", 1000,
                               (uint8_t *) "e", 1), 0,
           "over the count bound: a new batch");

    is_int(q.items, 3, "3 items queued");

    it = q.head;
    is_str(it->room, "live://1", "head: room 1");
    is_int(it->nmsgs, 3, "head: 3 messages");
    is_int(it->len, 3 * 16 + 4, "head: 3 packets, 52 bytes");

    ok(packet_at(it, 0, &pkt) && pkt.op == 1000 && pkt.ver == 1
       && pkt.seq == 0 && pkt.body_len == 1 && pkt.body[0] == 'a',
       "packet 0: ver 1, op 1000, seq 0, body a");
    ok(packet_at(it, 1, &pkt) && pkt.op == 1001 && pkt.body_len == 2
       && memcmp(pkt.body, "bb", 2) == 0,
       "packet 1 keeps its own op 1001, body bb");
    ok(packet_at(it, 2, &pkt) && pkt.body[0] == 'd', "packet 2: body d");
    ok(packet_at(it, 3, &pkt) == NULL, "no packet 3");

    is_int(m[0].refs, 1, "each message holds one reference");
    is_int(m[3].refs, 1, "...the merged one too");

    /* a sealed batch takes no more */
    first = job_queue_pop(&q);
    ok(first == it, "pop returns the head");
    is_int(job_queue_push_room(&q, &m[5], "live://2", 1000,
                               (uint8_t *) "f", 1), 1,
           "room 2's batch is still open");

    job_queue_seal(&q, q.head);
    is_int(job_queue_push_room(&q, &m[6], "live://2", 1000,
                               (uint8_t *) "g", 1), 0,
           "after sealing room 2's batch a new one opens");
    is_int(q.items, 3, "3 items queued");

    while ((it = job_queue_pop(&q)) != NULL) {
        job_item_free(it);
    }

    /* byte bound */
    job_queue_init(&q, 100, 200);
    job_queue_push_room(&q, &m[0], "r", 1, big, 100);
    is_int(job_queue_push_room(&q, &m[1], "r", 1, big, 60), 1,
           "116 + 76 bytes fit in 200");
    is_int(job_queue_push_room(&q, &m[2], "r", 1, big, 1), 0,
           "192 + 17 bytes do not: a new batch");
    is_int(q.items, 2, "2 items");

    /* byte accounting follows merges and pops */
    ok(q.bytes > 2 * (100 + 16), "bytes count the packets");

    while ((it = job_queue_pop(&q)) != NULL) {
        job_item_free(it);
    }

    is_int(q.bytes, 0, "no bytes left after popping everything");
    is_int(q.items, 0, "no items left");

    /* push and broadcast items */
    job_queue_push_keys(&q, &m[7], 1002, keys, 2, (uint8_t *) "hi", 2);
    job_queue_push_broadcast(&q, &m[7], 1003, 5, (uint8_t *) "all", 3);

    it = job_queue_pop(&q);
    ok(it->type == JOB_ITEM_PUSH && it->nkeys == 2
       && strcmp(it->keys[1], "k2") == 0 && it->op == 1002,
       "push item: keys and op");
    ok(packet_at(it, 0, &pkt) && pkt.op == 1002 && pkt.body_len == 2,
       "push item: one packet");
    job_item_free(it);

    it = job_queue_pop(&q);
    ok(it->type == JOB_ITEM_BROADCAST && it->speed == 5 && it->op == 1003,
       "broadcast item: op and speed");
    job_item_free(it);

    is_int(m[7].refs, 2, "a message in two items holds two references");

    /* a member's message: its position, its packet ver 0, seq the offset */
    job_queue_push_member(&q, &m[8], 1004, keys, 1, (uint8_t *) "me", 2,
                          41, 1765000000123ULL, 0x100000007ULL);
    job_queue_push_member(&q, &m[9], 1004, keys, 1, (uint8_t *) "me2", 3,
                          41, 1765000000123ULL, 0x100000008ULL);

    it = job_queue_pop(&q);
    ok(it->type == JOB_ITEM_PUSH && it->mid == 41
       && it->epoch == 1765000000123ULL && it->offset == 0x100000007ULL,
       "member item: mid, epoch, offset");
    ok(packet_at(it, 0, &pkt) && pkt.ver == 0 && pkt.seq == 7
       && pkt.op == 1004 && pkt.body_len == 2 && packet_at(it, 1, &pkt) == NULL,
       "member item: one packet, ver 0, seq the offset's low 32 bits");
    job_item_free(it);

    it = job_queue_pop(&q);
    ok(it && it->offset == 0x100000008ULL && it->nmsgs == 1,
       "the next member message: an item of its own, never merged");
    job_item_free(it);

    /* positions: one Kafka offset per packet, one partition per item */
    job_queue_init(&q, 100, 1 << 20);
    m[0].partition = 3;
    m[0].offset = 10;
    m[0].epoch = 0xabcULL;
    m[1].partition = 3;
    m[1].offset = 17;
    m[1].epoch = 0xabcULL;
    m[2].partition = 1;
    m[2].offset = 4;
    m[2].epoch = 0xabcULL;
    job_queue_push_room(&q, &m[0], "p", 1, (uint8_t *) "a", 1);
    is_int(job_queue_push_room(&q, &m[1], "p", 1, (uint8_t *) "b", 1), 1,
           "a message of the same partition merges");
    is_int(job_queue_push_room(&q, &m[2], "p", 1, (uint8_t *) "c", 1), 0,
           "one of another partition opens an item");

    it = job_queue_pop(&q);
    ok(it->nmsgs == 2 && it->offsets[0] == 10 && it->offsets[1] == 17,
       "the merged item has each packet's offset, gaps kept");
    is_str(it->room_epoch, "0000000000000abc-3", "and its partition's epoch");
    job_item_free(it);

    it = job_queue_pop(&q);
    ok(it->nmsgs == 1 && it->offsets[0] == 4, "the other item: its offset");
    is_str(it->room_epoch, "0000000000000abc-1", "its partition");
    job_item_free(it);

    for (i = 0; i < 10; i++) {
        m[i].refs = 0;
    }

    job_item_free(first);

    while ((it = job_queue_pop(&q)) != NULL) {
        job_item_free(it);
    }

    return done_testing();
}
