
/*
 * goim for nginx: when a room's frame may go (goim_room_schedule.h).
 */


#include "goim_room_schedule.h"


void
goim_room_schedule_init(goim_room_schedule_t *s, uintptr_t now)
{
    s->due = now;
}


/* how long ago the schedule allowed a send; negative: not yet */

static intptr_t
goim_room_schedule_late(const goim_room_schedule_t *s, uintptr_t now,
    uintptr_t interval)
{
    return (intptr_t) (now - (s->due - interval));
}


int
goim_room_schedule_may_send(const goim_room_schedule_t *s, uintptr_t now,
    uintptr_t interval, size_t waiting, int in_flight)
{
    intptr_t  late;

    if (waiting) {
        /* order: the batch goes first */
        return 0;
    }

    late = goim_room_schedule_late(s, now, interval);

    return late >= 0 && (!in_flight || late >= (intptr_t) interval);
}


void
goim_room_schedule_sent(goim_room_schedule_t *s, uintptr_t now,
    uintptr_t interval)
{
    if ((intptr_t) (s->due - now) < 0) {
        s->due = now;
    }

    s->due += interval;

    if ((intptr_t) (s->due - now) > (intptr_t) (2 * interval)) {
        /* full batches, sent ahead: the next one still waits one interval */
        s->due = now + 2 * interval;
    }
}


uintptr_t
goim_room_schedule_wait(const goim_room_schedule_t *s, uintptr_t now,
    uintptr_t interval)
{
    intptr_t  late;

    late = goim_room_schedule_late(s, now, interval);

    return late < 0 ? (uintptr_t) -late : 1;
}


int
goim_room_batch_full(size_t count, size_t batch_len, size_t len,
    size_t queue_bytes)
{
    return count && batch_len + len > queue_bytes / 4;
}
