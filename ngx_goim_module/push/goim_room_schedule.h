
/*
 * goim for nginx: when a room's frame may go, pure C (no nginx headers,
 * unit-tested in t/unit/module_room_schedule.c).  Times are the event
 * loop's milliseconds (nginx's ngx_msec_t: a word that wraps).
 *
 * Room pushes are rate-limited per room, not delayed.  The schedule
 * allows one send per interval (goim_room_flush) on average and one
 * ahead: a send moves "due" one interval on from max(due, now), and
 * sends are allowed from due - interval on.  A message goes out at once
 * when nothing waits and the schedule allows it, provided the room's
 * last frame has been written to every member, or the schedule has
 * allowed a send for a whole interval already.  So messages that come
 * about once an interval, with jitter, are not held back, while those
 * that come faster than the fan-out merge into one OP_RAW frame, which
 * leaves when the schedule allows, or at once when the batch is full.
 */

#ifndef GOIM_ROOM_SCHEDULE_H
#define GOIM_ROOM_SCHEDULE_H


#include <stddef.h>
#include <stdint.h>


/*
 * A batch of this many messages leaves at once: one write (5-8 us of
 * CPU here) then costs each message less than 0.2 us.
 */
#define GOIM_ROOM_BATCH_MAX  40


typedef struct {
    uintptr_t       due;
} goim_room_schedule_t;


void goim_room_schedule_init(goim_room_schedule_t *s, uintptr_t now);

/*
 * 1 when a message may go now: nothing waits in the batch, and the
 * schedule allows it (with in_flight, the room's last frame not yet
 * written to every member, only after a whole interval of allowance).
 */
int goim_room_schedule_may_send(const goim_room_schedule_t *s,
    uintptr_t now, uintptr_t interval, size_t waiting, int in_flight);

/* a frame went now */
void goim_room_schedule_sent(goim_room_schedule_t *s, uintptr_t now,
    uintptr_t interval);

/* milliseconds until the schedule allows a send, at least 1 */
uintptr_t goim_room_schedule_wait(const goim_room_schedule_t *s,
    uintptr_t now, uintptr_t interval);

/*
 * A batch stays well inside a connection's send queue (queue_bytes), as
 * one that could never be queued would be dropped for every member:
 * 1 when the waiting batch must leave before a message of len bytes is
 * added.
 */
int goim_room_batch_full(size_t count, size_t batch_len, size_t len,
    size_t queue_bytes);


#endif /* GOIM_ROOM_SCHEDULE_H */
