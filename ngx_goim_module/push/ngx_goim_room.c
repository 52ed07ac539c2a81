
/*
 * goim for nginx: the worker's rooms.  A room of this worker lists its
 * members here and counts them in the shared registry; its pushes are
 * rate-limited (goim_room_flush, goim_room_schedule.h): a push goes at
 * once when the schedule allows, else it waits merged with the others
 * into one OP_RAW frame.
 */


#include "ngx_goim_push.h"


/* the worker's rooms by name: a table that doubles as it fills */
#define NGX_GOIM_ROOMS_HASH_MIN  1024


static ngx_goim_room_t *ngx_goim_room_lookup(u_char *name, size_t len);
static void ngx_goim_rooms_grow(ngx_log_t *log);
static ngx_int_t ngx_goim_room_grow(ngx_goim_channel_t *ch);
static void ngx_goim_room_move(ngx_goim_member_t *dst,
    ngx_goim_member_t *src);
static void ngx_goim_room_joiner(ngx_goim_push_t *push, ngx_str_t *joiner);
static ngx_uint_t ngx_goim_room_is_joiner(ngx_goim_channel_t *ch,
    ngx_str_t *joiner);
static void ngx_goim_room_flush_handler(ngx_event_t *ev);
static void ngx_goim_room_flush(ngx_goim_room_t *room, ngx_msec_t interval);
static void ngx_goim_room_send(ngx_goim_room_t *room, ngx_goim_push_t *push,
    ngx_msec_t interval, ngx_uint_t seam);
static void ngx_goim_room_forget(ngx_goim_room_t *room, ngx_goim_msg_t *msg);
static void ngx_goim_room_free(ngx_goim_room_t *room);


static ngx_goim_hash_t    ngx_goim_rooms;
static ngx_goim_hnode_t  *ngx_goim_rooms_buckets[NGX_GOIM_ROOMS_HASH_MIN];


void
ngx_goim_rooms_init(void)
{
    if (ngx_goim_rooms.buckets
        && ngx_goim_rooms.buckets != ngx_goim_rooms_buckets)
    {
        ngx_free(ngx_goim_rooms.buckets);
    }

    ngx_goim_hash_init(&ngx_goim_rooms, ngx_goim_rooms_buckets,
                       NGX_GOIM_ROOMS_HASH_MIN);
}


static ngx_goim_room_t *
ngx_goim_room_lookup(u_char *name, size_t len)
{
    return (ngx_goim_room_t *) ngx_goim_hash_find(&ngx_goim_rooms, name, len,
                                                  ngx_crc32_long(name, len));
}


/*
 * More rooms than buckets: the table doubles (at a join, not on the
 * push path).  Without memory it stays as it is, with longer chains.
 */

static void
ngx_goim_rooms_grow(ngx_log_t *log)
{
    ngx_uint_t          size;
    ngx_goim_hnode_t  **buckets, **old;

    if (ngx_goim_rooms.n <= ngx_goim_rooms.mask) {
        return;
    }

    size = 2 * (ngx_goim_rooms.mask + 1);

    buckets = ngx_alloc(size * sizeof(ngx_goim_hnode_t *), log);
    if (buckets == NULL) {
        return;
    }

    old = ngx_goim_rooms.buckets;

    ngx_goim_hash_move(&ngx_goim_rooms, buckets, size);

    if (old != ngx_goim_rooms_buckets) {
        ngx_free(old);
    }
}


/*
 * ch joins a room: NGX_OK, NGX_DONE when it is a member already (a room
 * push reaches a channel once), NGX_ERROR when memory ran out.  The
 * caller checks the limit and the rights.
 */

ngx_int_t
ngx_goim_room_join(ngx_goim_channel_t *ch, u_char *name, size_t len,
    ngx_goim_room_t **joined)
{
    ngx_goim_room_t    *room;
    ngx_goim_member_t  *m;

    room = ngx_goim_room_lookup(name, len);

    if (room && ngx_goim_room_member(ch, name, len)) {
        *joined = room;
        return NGX_DONE;
    }

    if (ch->nrooms == ch->rooms_size
        && ngx_goim_room_grow(ch) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (room == NULL) {
        room = ngx_alloc(sizeof(ngx_goim_room_t) + len, ch->connection->log);
        if (room == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(room->name, name, len);
        room->hn.str.data = room->name;
        room->hn.str.len = len;
        room->hn.hash = ngx_crc32_long(name, len);
        room->online = 0;
        room->node_online.until = 0;
        ngx_queue_init(&room->members);

        goim_room_schedule_init(&room->schedule, ngx_current_msec);
        room->sending[0] = NULL;
        room->sending[1] = NULL;
        goim_raw_batch_init(&room->batch);
        room->seam = 0;
        ngx_memzero(&room->flush, sizeof(ngx_event_t));
        ngx_goim_event_init(&room->flush, ngx_goim_room_flush_handler,
                            ngx_cycle->log, 1);

        ngx_goim_hash_insert(&ngx_goim_rooms, &room->hn);
        ngx_goim_rooms_grow(ch->connection->log);
        ngx_goim_worker.stats->rooms++;
    }

    m = &ch->rooms[ch->nrooms++];
    m->room = room;
    m->ch = ch;
    m->presence = NULL;
    m->pos = 0;

    /*
     * events need the record too: a dead worker's leaves come from it;
     * a member's own room is neither listed nor told of
     */
    if ((ch->conf->presence || ch->conf->presence_events)
        && !ch->withdrawn
        && !ngx_goim_registry_is_member_room(name, len))
    {
        m->presence = ngx_goim_registry_presence_add(&room->hn.str,
                                                     room->hn.hash,
                                                     &ch->key_node.str,
                                                     ch->mid, &ch->platform);
    }

    ngx_queue_insert_tail(&room->members, &m->link);
    room->online++;

    if (!ch->withdrawn) {
        ngx_goim_registry_room_count(&room->hn.str, room->hn.hash, 1);
    }

    *joined = room;

    return NGX_OK;
}


/* the channel's member entry of a room, or NULL */

ngx_goim_room_t *
ngx_goim_room_member(ngx_goim_channel_t *ch, u_char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_goim_room_t  *room;

    for (i = 0; i < ch->nrooms; i++) {
        room = ch->rooms[i].room;

        if (room->hn.str.len == len
            && ngx_memcmp(room->hn.str.data, name, len) == 0)
        {
            return room;
        }
    }

    return NULL;
}


/*
 * The member array doubles, up to NGX_GOIM_MAX_ROOMS; its entries are
 * linked into their rooms' lists, so the links are fixed after the copy.
 */

static ngx_int_t
ngx_goim_room_grow(ngx_goim_channel_t *ch)
{
    ngx_uint_t          i, size;
    ngx_goim_member_t  *rooms;

    size = ngx_min(ch->rooms_size * 2, NGX_GOIM_MAX_ROOMS);

    if (size <= ch->rooms_size) {
        return NGX_ERROR;
    }

    rooms = ngx_alloc(size * sizeof(ngx_goim_member_t), ch->connection->log);
    if (rooms == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < ch->nrooms; i++) {
        ngx_goim_room_move(&rooms[i], &ch->rooms[i]);
    }

    if (ch->rooms != &ch->room1) {
        ngx_free(ch->rooms);
    }

    ch->rooms = rooms;
    ch->rooms_size = size;

    return NGX_OK;
}


static void
ngx_goim_room_move(ngx_goim_member_t *dst, ngx_goim_member_t *src)
{
    *dst = *src;
    dst->link.prev->next = &dst->link;
    dst->link.next->prev = &dst->link;
}


void
ngx_goim_room_leave(ngx_goim_channel_t *ch, ngx_goim_room_t *room)
{
    ngx_uint_t          i;
    ngx_goim_member_t  *m;

    for (i = 0; i < ch->nrooms; i++) {
        if (ch->rooms[i].room == room) {
            break;
        }
    }

    if (i == ch->nrooms) {
        return;
    }

    m = &ch->rooms[i];

    ngx_queue_remove(&m->link);

    if (m->presence) {
        ngx_goim_registry_presence_del(m->presence);
    }

    if (i != --ch->nrooms) {
        ngx_goim_room_move(m, &ch->rooms[ch->nrooms]);
    }

    if (ch->room == room) {
        ch->room = NULL;
    }

    if (!ch->withdrawn) {
        ngx_goim_registry_room_count(&room->hn.str, room->hn.hash, -1);
    }

    if (--room->online == 0) {
        ngx_goim_hash_delete(&ngx_goim_rooms, &room->hn);
        ngx_goim_worker.stats->rooms--;
        ngx_goim_room_free(room);
    }
}


void
ngx_goim_room_leave_all(ngx_goim_channel_t *ch)
{
    while (ch->nrooms) {
        ngx_goim_room_leave(ch, ch->rooms[ch->nrooms - 1].room);
    }

    if (ch->rooms != &ch->room1) {
        ngx_free(ch->rooms);
        ch->rooms = &ch->room1;
        ch->rooms_size = 1;
    }
}


/* the channel leaves the registry's counts, not its rooms (the drain) */

void
ngx_goim_room_withdraw(ngx_goim_channel_t *ch)
{
    ngx_uint_t        i;
    ngx_goim_room_t  *room;

    for (i = 0; i < ch->nrooms; i++) {
        room = ch->rooms[i].room;
        ngx_goim_registry_room_count(&room->hn.str, room->hn.hash, -1);

        if (ch->rooms[i].presence) {
            ngx_goim_registry_presence_del(ch->rooms[i].presence);
            ch->rooms[i].presence = NULL;
        }
    }
}


/* the room's members in the cluster, or on this node (registry/) */

ngx_uint_t
ngx_goim_room_online(ngx_goim_room_t *room)
{
    return ngx_goim_registry_online_cached(room->hn.str.data,
                                           room->hn.str.len,
                                           &room->node_online);
}


/*
 * A push to this worker's members of a room.  Room pushes ignore the
 * watched operations, as goim's BroadcastRoom, except presence events.
 */

void
ngx_goim_room_push(ngx_goim_push_t *push, ngx_str_t *name)
{
    size_t              len;
    int32_t             ver;
    ngx_msec_t          interval;
    ngx_queue_t        *q;
    ngx_goim_conf_t    *gcf;
    ngx_str_t           joiner;
    ngx_goim_room_t    *room;
    ngx_goim_member_t  *m;

    room = ngx_goim_room_lookup(name->data, name->len);
    if (room == NULL) {
        return;
    }

    if (push->op == GOIM_OP_PRESENCE && !push->raw) {
        /*
         * join and leave events (docs/PROTOCOL.md 1.14) reach only the
         * members that watch them, at once: a merged frame would reach
         * every member
         */
        ngx_goim_room_joiner(push, &joiner);

        for (q = ngx_queue_head(&room->members);
             q != ngx_queue_sentinel(&room->members);
             q = ngx_queue_next(q))
        {
            m = ngx_queue_data(q, ngx_goim_member_t, link);

            if (joiner.len && ngx_goim_room_is_joiner(m->ch, &joiner)) {
                continue;
            }

            (void) ngx_goim_push_one(push, m->ch, 1);
        }

        return;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);
    interval = gcf->room_flush;

    if (push->pos && push->pos <= room->seam) {
        /*
         * A member joined after this message had its offset and got it
         * from the history: it goes alone, to the others only, after
         * what waits (docs/PROTOCOL.md 1.15).
         */
        if (room->batch.count) {
            ngx_goim_room_flush(room, interval);
        }

        ngx_goim_room_send(room, push, interval, 1);
        return;
    }

    if (goim_room_schedule_may_send(&room->schedule, ngx_current_msec,
                                    interval, room->batch.count,
                                    room->sending[0] || room->sending[1]))
    {
        ngx_goim_room_send(room, push, interval, 0);
        return;
    }

    /* order is kept: a batch that is full goes before this message */

    len = push->raw ? push->body.len : GOIM_HEADER_LEN + push->body.len;

    if (goim_room_batch_full(room->batch.count, room->batch.len, len,
                             gcf->queue_bytes))
    {
        ngx_goim_room_flush(room, interval);
    }

    /* with a position, the inner ver is the room's stream id */
    ver = push->pos ? (int32_t) push->stream : 1;

    if ((push->raw ? goim_raw_batch_add_raw(&room->batch, push->body.data,
                                            push->body.len)
                   : goim_raw_batch_add_seq(&room->batch, push->op, ver,
                                            (int32_t) (uint32_t) push->pos,
                                            push->body.data, push->body.len))
        != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "goim: room batch allocation failed, message lost");
        return;
    }

    if (room->batch.count >= GOIM_ROOM_BATCH_MAX) {
        ngx_goim_room_flush(room, interval);
        return;
    }

    if (!room->flush.timer_set) {
        ngx_add_timer(&room->flush,
                      goim_room_schedule_wait(&room->schedule,
                                              ngx_current_msec, interval));
    }
}


/*
 * The key of a join event, as escaped in its body's last member
 * ({"event":"join",...,"key":"a"}); empty for another event.  With
 * Kafka a join comes back through the job after the joiner joined: it
 * is not told of its own join (docs/PROTOCOL.md 1.14).
 */

static void
ngx_goim_room_joiner(ngx_goim_push_t *push, ngx_str_t *joiner)
{
    u_char  *p, *end;

    joiner->len = 0;

    p = push->body.data;
    end = p + push->body.len;

    if (push->body.len < sizeof("{\"event\":\"join\",\"key\":\"\"}") - 1
        || ngx_strncmp(p, "{\"event\":\"join\"",
                       sizeof("{\"event\":\"join\"") - 1) != 0
        || end[-1] != '}' || end[-2] != '"')
    {
        return;
    }

    /* an escaped key holds no bare quote: its start is the last one's */
    for (p = end - 3; p >= push->body.data + sizeof(",\"key\":") - 1; p--) {
        if (*p == '"' && p[-1] != '\\') {
            if (ngx_strncmp(p - (sizeof(",\"key\":") - 1), ",\"key\":",
                            sizeof(",\"key\":") - 1)
                == 0)
            {
                joiner->data = p + 1;
                joiner->len = (end - 2) - (p + 1);
            }

            return;
        }
    }
}


static ngx_uint_t
ngx_goim_room_is_joiner(ngx_goim_channel_t *ch, ngx_str_t *joiner)
{
    u_char     buf[6 * GOIM_PRESENCE_KEY];
    ngx_str_t  *key;

    key = &ch->key_node.str;

    if (key->len > GOIM_PRESENCE_KEY) {
        return 0;
    }

    if (ngx_escape_json(NULL, key->data, key->len) == 0) {
        return key->len == joiner->len
               && ngx_memcmp(key->data, joiner->data, key->len) == 0;
    }

    return (size_t) ((u_char *) ngx_escape_json(buf, key->data, key->len)
                     - buf) == joiner->len
           && ngx_memcmp(buf, joiner->data, joiner->len) == 0;
}


static void
ngx_goim_room_flush_handler(ngx_event_t *ev)
{
    ngx_goim_room_t  *room;

    room = (ngx_goim_room_t *)
               ((u_char *) ev - offsetof(ngx_goim_room_t, flush));

    ngx_goim_room_flush_pending(room);
}


/* what was merged goes now; also when a member leaves with the drain */

void
ngx_goim_room_flush_pending(ngx_goim_room_t *room)
{
    ngx_goim_conf_t  *gcf;

    if (room->batch.count == 0) {
        return;
    }

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    ngx_goim_room_flush(room, gcf->room_flush);
}


static void
ngx_goim_room_flush(ngx_goim_room_t *room, ngx_msec_t interval)
{
    ngx_goim_push_t  push;

    if (room->flush.timer_set) {
        ngx_del_timer(&room->flush);
    }

    ngx_memzero(&push, sizeof(ngx_goim_push_t));
    push.raw = 1;
    push.body.data = room->batch.data;
    push.body.len = room->batch.len;

    ngx_goim_room_send(room, &push, interval, 0);

    ngx_goim_push_release(&push);
    goim_raw_batch_reset(&room->batch);

    ngx_goim_worker.stats->room_batches++;
}


static void
ngx_goim_room_send(ngx_goim_room_t *room, ngx_goim_push_t *push,
    ngx_msec_t interval, ngx_uint_t seam)
{
    ngx_uint_t           t;
    ngx_queue_t         *q, *ahead, *end;
    ngx_goim_msg_t      *msg;
    ngx_goim_member_t   *m;

    end = ngx_queue_sentinel(&room->members);

    for (q = ngx_queue_head(&room->members); q != end; q = ngx_queue_next(q))
    {
        /*
         * two members ahead: its entry; one ahead: its channel, whose
         * entry was asked for in the turn before
         */
        ahead = ngx_queue_next(q);

        if (ahead != end) {
            m = ngx_queue_data(ahead, ngx_goim_member_t, link);
            ngx_goim_prefetch(m->ch);
            ngx_goim_prefetch(ngx_queue_next(ahead));
        }

        m = ngx_queue_data(q, ngx_goim_member_t, link);

        if (seam && push->pos <= m->pos) {
            continue;
        }

        (void) ngx_goim_push_one(push, m->ch, 0);
    }

    /*
     * The room keeps a reference to each frame until only its own is
     * left: then every member has written the frame (or dropped it).
     */

    for (t = 0; t < 2; t++) {
        msg = push->msg[t];

        if (msg == NULL || msg->holder) {
            continue;
        }

        if (room->sending[t]) {
            ngx_goim_room_forget(room, room->sending[t]);
        }

        msg->refs++;
        msg->holder = room;
        room->sending[t] = msg;
    }

    goim_room_schedule_sent(&room->schedule, ngx_current_msec, interval);
}


/*
 * The channel has had the room's messages up to pos (from the history):
 * the live stream brings it those after.  What the room merged so far
 * came before pos and goes to the other members first; from now on a
 * message up to pos goes alone, without this channel.  Each of a
 * channel's rooms has its own seam.
 */

void
ngx_goim_room_seam(ngx_goim_channel_t *ch, ngx_goim_room_t *room,
    uint64_t pos)
{
    ngx_uint_t          i;
    ngx_goim_member_t  *m;

    m = NULL;

    for (i = 0; i < ch->nrooms; i++) {
        if (ch->rooms[i].room == room) {
            m = &ch->rooms[i];
            break;
        }
    }

    if (m == NULL) {
        return;
    }

    if (room->batch.count) {
        ngx_queue_remove(&m->link);
        ngx_goim_room_flush_pending(room);
        ngx_queue_insert_tail(&room->members, &m->link);
    }

    m->pos = pos;

    if (pos > room->seam) {
        room->seam = pos;
    }
}


/* every member has written the room's frame: the room lets go */

void
ngx_goim_room_held(ngx_goim_msg_t *msg)
{
    ngx_goim_room_forget(msg->holder, msg);
}


static void
ngx_goim_room_forget(ngx_goim_room_t *room, ngx_goim_msg_t *msg)
{
    ngx_uint_t  t;

    for (t = 0; t < 2; t++) {
        if (room->sending[t] == msg) {
            room->sending[t] = NULL;
        }
    }

    msg->holder = NULL;
    ngx_goim_msg_release(msg);
}


static void
ngx_goim_room_free(ngx_goim_room_t *room)
{
    ngx_uint_t  t;

    if (room->flush.timer_set) {
        ngx_del_timer(&room->flush);
    }

    for (t = 0; t < 2; t++) {
        if (room->sending[t]) {
            ngx_goim_room_forget(room, room->sending[t]);
        }
    }

    goim_raw_batch_free(&room->batch);
    ngx_free(room);
}
