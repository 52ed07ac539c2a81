/*
 * The module's room rate limit (ngx_goim_module/push/
 * goim_room_schedule.c): one frame per interval on average and one
 * ahead, a message that comes when the room is idle goes at once, one
 * that comes while the last frame is still being written waits unless
 * the schedule has allowed a send for a whole interval, full batches
 * sent ahead do not run the schedule away, and the event loop's clock
 * may wrap.
 */

#include <stdint.h>

#include "goim_room_schedule.h"
#include "tap.h"


#define IV  100


int
main(void)
{
    uintptr_t             t;
    goim_room_schedule_t  s;

    /* a new room: the first message goes at once */

    t = 1000000;
    goim_room_schedule_init(&s, t);

    ok(goim_room_schedule_may_send(&s, t, IV, 0, 0),
       "new room: a message goes at once");
    ok(!goim_room_schedule_may_send(&s, t, IV, 1, 0),
       "new room: not while a batch waits (order)");

    /* one ahead: a second send in the same instant is still allowed */

    goim_room_schedule_sent(&s, t, IV);
    is_int(s.due, t + IV, "sent: due one interval on");
    ok(goim_room_schedule_may_send(&s, t, IV, 0, 0),
       "one ahead: a second message in the same instant goes");
    ok(!goim_room_schedule_may_send(&s, t, IV, 0, 1),
       "... but not while the first frame is still being written");

    goim_room_schedule_sent(&s, t, IV);
    is_int(s.due, t + 2 * IV, "two sent: due two intervals on");
    ok(!goim_room_schedule_may_send(&s, t, IV, 0, 0),
       "a third in the same instant waits");
    is_int(goim_room_schedule_wait(&s, t, IV), IV,
           "... one interval, until due - interval");
    is_int(goim_room_schedule_wait(&s, t + 60, IV), 40,
           "... 40 ms when 60 passed");
    ok(goim_room_schedule_may_send(&s, t + IV, IV, 0, 0),
       "... and may go one interval later");

    /* full batches sent ahead: the schedule stays within two intervals */

    goim_room_schedule_sent(&s, t, IV);
    is_int(s.due, t + 2 * IV, "sent ahead again: due stays now + 2 intervals");

    /* a frame still being written: allowed only after a whole interval */

    t += 2 * IV;
    goim_room_schedule_init(&s, t);
    goim_room_schedule_sent(&s, t, IV);
    goim_room_schedule_sent(&s, t, IV);             /* due = t + 200 */

    ok(goim_room_schedule_may_send(&s, t + 150, IV, 0, 0),
       "50 ms allowed, idle: goes");
    ok(!goim_room_schedule_may_send(&s, t + 150, IV, 0, 1),
       "50 ms allowed, last frame in flight: waits");
    ok(goim_room_schedule_may_send(&s, t + 200, IV, 0, 1),
       "a whole interval allowed: goes even in flight");
    is_int(goim_room_schedule_wait(&s, t + 150, IV), 1,
           "allowed already: the batch timer is 1 ms");

    /* a room idle for long: due restarts from now */

    goim_room_schedule_sent(&s, t + 10000, IV);
    is_int(s.due, t + 10000 + IV, "after a pause: due = now + interval");

    /* about one message per interval, with jitter, is never held back */

    goim_room_schedule_init(&s, t);
    goim_room_schedule_sent(&s, t, IV);
    ok(goim_room_schedule_may_send(&s, t + 90, IV, 0, 0),
       "10 ms early: goes");
    goim_room_schedule_sent(&s, t + 90, IV);
    ok(goim_room_schedule_may_send(&s, t + 200, IV, 0, 0),
       "on time after an early one: goes");
    goim_room_schedule_sent(&s, t + 200, IV);
    ok(goim_room_schedule_may_send(&s, t + 280, IV, 0, 0),
       "20 ms early: goes");

    /* the clock wraps */

    t = UINTPTR_MAX - 50;
    goim_room_schedule_init(&s, t);
    goim_room_schedule_sent(&s, t, IV);
    goim_room_schedule_sent(&s, t, IV);
    ok(!goim_room_schedule_may_send(&s, t + 20, IV, 0, 0),
       "wrap: a third send waits across the wrap");
    is_int(goim_room_schedule_wait(&s, t + 20, IV), IV - 20,
           "wrap: the wait is 80 ms");
    ok(goim_room_schedule_may_send(&s, t + IV, IV, 0, 0),
       "wrap: goes one interval later, past zero");
    goim_room_schedule_sent(&s, t + 3 * IV, IV);
    is_int(s.due, t + 4 * IV, "wrap: due moves on past zero");

    /* a batch leaves before it outgrows a quarter of the send queue */

    ok(!goim_room_batch_full(0, 0, 1000000, 4096),
       "an empty batch takes any message");
    ok(!goim_room_batch_full(3, 1000, 24, 4096),
       "1024 of 1024 bytes: still fits");
    ok(goim_room_batch_full(3, 1000, 25, 4096),
       "1025 of 1024 bytes: the batch goes first");

    return done_testing();
}
