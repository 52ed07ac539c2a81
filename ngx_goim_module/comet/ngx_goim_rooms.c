
/*
 * goim for nginx: the rooms of a connection (docs/PROTOCOL.md 1.14).
 * A connection is in up to goim_max_rooms rooms: its first room, goim's
 * (the token's room_id, changed with op 12), and others from the
 * token's room_ids and the join and leave operations (op 30, op 32),
 * each answered with a result per room.  A token's allowed_rooms bounds
 * what the operations may join.  With goim_history, each room joined is
 * answered with its position, and a recovery asked with op 35 follows
 * the reply (ngx_goim_recover.c).
 */


#include "ngx_goim_comet.h"

#include <goim_rooms.h>


#define NGX_GOIM_EVENT_BUCKETS  4096
#define NGX_GOIM_DEPARTED_BATCH 16
#define NGX_GOIM_DEPARTED_SLICE 4096        /* an event loop turn's */


typedef struct {
    ngx_msec_t             start;
    ngx_uint_t             count;
} ngx_goim_rooms_event_rate_t;


static ngx_int_t ngx_goim_rooms_reply(ngx_goim_channel_t *ch,
    goim_packet_t *pkt, ngx_goim_room_result_t *r, ngx_uint_t n,
    ngx_uint_t join, const char *error);
static ngx_uint_t ngx_goim_rooms_event_allowed(ngx_goim_conf_t *gcf,
    uint32_t hash);
static void ngx_goim_rooms_event(ngx_str_t *room, ngx_str_t *key,
    int64_t mid, ngx_uint_t join);
static ngx_int_t ngx_goim_rooms_event_produce(ngx_str_t *room,
    ngx_str_t *body);
static void ngx_goim_rooms_event_reported(ngx_goim_kafka_batch_t *b,
    void *data);
static void ngx_goim_rooms_departed_handler(ngx_event_t *ev);


/* join and leave events sent this second, by room hash (64 KiB) */
static ngx_goim_rooms_event_rate_t
    ngx_goim_rooms_event_rates[NGX_GOIM_EVENT_BUCKETS];

/* the departed records of dead workers still to tell, next turn */
static ngx_event_t  ngx_goim_rooms_departed_event;


/* the token's allowed_rooms, kept with the connection */

ngx_int_t
ngx_goim_rooms_rights(ngx_goim_channel_t *ch, goim_token_rooms_t *rights)
{
    if (!rights->given) {
        return NGX_OK;
    }

    /* one byte at least: [] allows no room, and is not "any" */
    ch->room_rights = ngx_pnalloc(ch->connection->pool, rights->len + 1);
    if (ch->room_rights == NULL) {
        return NGX_ERROR;
    }

    if (rights->len) {
        ngx_memcpy(ch->room_rights, rights->data, rights->len);
    }

    ch->room_rights_len = rights->len;

    return NGX_OK;
}


/*
 * ch joins a room: NGX_OK, NGX_DECLINED with the reason in r, NGX_ERROR
 * when memory ran out.  A room of the token (signed with the token) is
 * not checked against its rights.
 */

ngx_int_t
ngx_goim_rooms_join(ngx_goim_channel_t *ch, ngx_goim_room_result_t *r,
    ngx_uint_t token, ngx_goim_room_t **joined)
{
    const char  *why;

    r->fresh = 0;
    r->hr = NULL;

    why = goim_room_id_invalid(r->id, r->len);

    if (why == NULL && ngx_goim_registry_is_member_room(r->id, r->len)) {
        why = "mid:// is the rooms of members' messages";
    }

    if (why) {
        r->error = "bad id";
        r->reason = why;
        return NGX_DECLINED;
    }

    *joined = ngx_goim_room_member(ch, r->id, r->len);

    if (*joined) {
        return NGX_OK;
    }

    if (!token
        && ch->room_rights
        && !goim_room_allowed((char *) ch->room_rights, ch->room_rights_len,
                              r->id, r->len))
    {
        r->error = "not allowed";
        return NGX_DECLINED;
    }

    if (ch->nrooms - ch->member_room >= ch->conf->max_rooms) {
        r->error = "limit";
        return NGX_DECLINED;
    }

    if (ngx_goim_rooms_enter(ch, r->id, r->len, joined) != NGX_OK) {
        r->error = "out of memory";
        return NGX_ERROR;
    }

    r->fresh = 1;

    return NGX_OK;
}


/*
 * ch joins a room it is not in; the room's watchers are told, before,
 * so that a connection is not told of its own join
 */

ngx_int_t
ngx_goim_rooms_enter(ngx_goim_channel_t *ch, u_char *id, size_t len,
    ngx_goim_room_t **joined)
{
    ngx_str_t  name;

    if (ch->conf->presence_events
        && ngx_goim_rooms_event_allowed(ch->conf, ngx_crc32_long(id, len)))
    {
        name.data = id;
        name.len = len;
        ngx_goim_rooms_event(&name, &ch->key_node.str, ch->mid, 1);
    }

    if (ngx_goim_room_join(ch, id, len, joined) == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_goim_presence_add(ch, &(*joined)->hn.str);

    return NGX_OK;
}


/* ch leaves a room; the room's watchers are told, after */

void
ngx_goim_rooms_leave(ngx_goim_channel_t *ch, ngx_goim_room_t *room)
{
    u_char      buf[NGX_GOIM_MAX_ROOM];
    ngx_str_t   name;
    ngx_uint_t  tell;

    /* the room may go with its last member here: its id is kept */

    tell = ngx_goim_rooms_event_allowed(ch->conf, room->hn.hash)
           && !ngx_goim_registry_is_member_room(room->hn.str.data,
                                                room->hn.str.len);

    name.len = ngx_min(room->hn.str.len, NGX_GOIM_MAX_ROOM);
    name.data = buf;
    ngx_memcpy(buf, room->hn.str.data, name.len);

    ngx_goim_room_leave(ch, room);

    ngx_goim_presence_del(ch, &name);

    if (tell) {
        ngx_goim_rooms_event(&name, &ch->key_node.str, ch->mid, 0);
    }
}


void
ngx_goim_rooms_leave_all(ngx_goim_channel_t *ch)
{
    if (ch->conf->presence_events
        || (ch->conf->presence && ngx_goim_mode() != NGX_GOIM_EMBEDDED))
    {
        while (ch->nrooms) {
            ngx_goim_rooms_leave(ch, ch->rooms[ch->nrooms - 1].room);
        }
    }

    ngx_goim_room_leave_all(ch);
}


/*
 * At most goim_presence_events join and leave events a room a second on
 * a worker, so that a mass reconnect does not become a storm of events;
 * the others are counted, not sent.
 */

static ngx_uint_t
ngx_goim_rooms_event_allowed(ngx_goim_conf_t *gcf, uint32_t hash)
{
    ngx_uint_t                    rate;
    ngx_goim_rooms_event_rate_t  *b;

    rate = gcf->presence_events;

    if (rate == 0) {
        return 0;
    }

    /*
     * The budget outlives the room on this worker (a connection that
     * joins and leaves an otherwise empty room would start afresh each
     * time); rooms whose ids hash alike share one, which is stricter.
     */
    b = &ngx_goim_rooms_event_rates[hash % NGX_GOIM_EVENT_BUCKETS];

    if (ngx_current_msec - b->start >= 1000) {
        b->start = ngx_current_msec;
        b->count = 0;
    }

    if (b->count >= rate) {
        ngx_goim_worker.stats->presence_dropped++;
        return 0;
    }

    b->count++;

    return 1;
}


/*
 * op 34 to the room's members on this node that watch it:
 * {"event":"join","room_id":"..","mid":1,"key":".."}
 */

static void
ngx_goim_rooms_event(ngx_str_t *room, ngx_str_t *key, int64_t mid,
    ngx_uint_t join)
{
    u_char           *p, buf[sizeof("{\"event\":\"leave\",\"room_id\":\"\","
                                    "\"mid\":,\"key\":\"\"}")
                             + NGX_INT64_LEN + 6 * NGX_GOIM_MAX_ROOM
                             + 6 * GOIM_TOKEN_MAX_KEY];
    ngx_goim_push_t   push;

    if (room->len > NGX_GOIM_MAX_ROOM || key->len > GOIM_TOKEN_MAX_KEY) {
        return;
    }

    p = ngx_sprintf(buf, "{\"event\":\"%s\",\"room_id\":\"",
                    join ? "join" : "leave");
    p = (u_char *) ngx_escape_json(p, room->data, room->len);
    p = ngx_sprintf(p, "\",\"mid\":%L,\"key\":\"", mid);
    p = (u_char *) ngx_escape_json(p, key->data, key->len);
    p = ngx_cpymem(p, "\"}", 2);

    ngx_goim_worker.stats->presence_events++;

    ngx_memzero(&push, sizeof(ngx_goim_push_t));
    push.op = GOIM_OP_PRESENCE;
    push.body.data = buf;
    push.body.len = p - buf;

    if (ngx_goim_mode() == NGX_GOIM_KAFKA
        && ngx_goim_rooms_event_produce(room, &push.body) == NGX_OK)
    {
        /* the job brings it to every comet, this one too */
        return;
    }

    (void) ngx_goim_dispatch_room(&push, room);

    ngx_goim_push_release(&push);
}


/*
 * With Kafka an event is a room push of op 34, as the API's: the job
 * sends it to every comet, whose watchers of the room get it.  Nobody
 * waits for its report; one that is not queued is sent to this node's
 * watchers only (the caller), and logged by the producer.
 */

static ngx_int_t
ngx_goim_rooms_event_produce(ngx_str_t *room, ngx_str_t *body)
{
    ngx_int_t                rc;
    ngx_pool_t              *pool;
    ngx_goim_kafka_batch_t  *b;

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    b = ngx_goim_kafka_batch(pool, ngx_cycle->log, 1,
                             ngx_goim_rooms_event_reported, NULL);
    if (b == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    rc = ngx_goim_kafka_produce(b, NGX_GOIM_KAFKA_ROOM, GOIM_OP_PRESENCE, 0,
                                NULL, room, NULL, 0, body);

    /* the report, when it comes, only frees the batch */
    ngx_goim_kafka_finish(b);
    ngx_destroy_pool(pool);

    return rc;
}


static void
ngx_goim_rooms_event_reported(ngx_goim_kafka_batch_t *b, void *data)
{
}


/*
 * The leaves of a dead worker's connections (the registry's purge kept
 * their records): told as if they had closed, within the room's rate,
 * and removed from Redis's presence.  A key that is connected to the
 * node again by now (it reconnected before the purge) keeps its entry
 * and gets no leave: its join was told already.
 */

void
ngx_goim_rooms_departed(void)
{
    ngx_str_t                      room, key;
    ngx_uint_t                     i, n, total, again;
    ngx_goim_conf_t               *gcf;
    ngx_goim_presence_departed_t   d[NGX_GOIM_DEPARTED_BATCH];

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    total = 0;

    do {
        n = ngx_goim_registry_presence_departed(d, NGX_GOIM_DEPARTED_BATCH);

        for (i = 0; i < n; i++) {
            room.data = d[i].room;
            room.len = d[i].room_len;
            key.data = d[i].key;
            key.len = d[i].key_len;

            again = (ngx_goim_registry_key_owner(key.data, key.len) >= 0);

            ngx_goim_presence_departed(&room, &key, d[i].mid, again);

            if (!again
                && gcf->presence_events
                && ngx_goim_rooms_event_allowed(gcf,
                                                ngx_crc32_long(room.data,
                                                               room.len)))
            {
                ngx_goim_rooms_event(&room, &key, d[i].mid, 0);
            }
        }

        total += n;

    } while (n == NGX_GOIM_DEPARTED_BATCH && total < NGX_GOIM_DEPARTED_SLICE);

    if (n == NGX_GOIM_DEPARTED_BATCH
        && !ngx_exiting
        && !ngx_goim_rooms_departed_event.timer_set)
    {
        /* more: the next turn, so that clients are served meanwhile */
        ngx_goim_event_init(&ngx_goim_rooms_departed_event,
                            ngx_goim_rooms_departed_handler, ngx_cycle->log,
                            1);
        ngx_add_timer(&ngx_goim_rooms_departed_event, 1);
    }
}


static void
ngx_goim_rooms_departed_handler(ngx_event_t *ev)
{
    ngx_goim_rooms_departed();
}


/*
 * op 12 (goim's change room) on the first room: the connection leaves
 * its first room and the new one becomes it.  A room it is in already
 * becomes the first without a second membership.  As goim, a refused
 * change leaves things as they were and is only logged.  r says what
 * was joined (r->fresh).
 */

ngx_int_t
ngx_goim_rooms_change(ngx_goim_channel_t *ch, u_char *id, size_t len,
    ngx_goim_room_result_t *r)
{
    ngx_int_t          rc;
    ngx_goim_room_t   *old, *room;

    ngx_memzero(r, sizeof(ngx_goim_room_result_t));
    r->id = id;
    r->len = len;

    old = ch->room;

    if (old
        && old->hn.str.len == len
        && ngx_memcmp(old->hn.str.data, id, len) == 0)
    {
        return NGX_OK;
    }

    if (len == 0) {
        if (old) {
            ngx_goim_rooms_leave(ch, old);
        }

        return NGX_OK;
    }

    /* the old first room leaves first when the limit needs its place */

    if (old
        && ch->nrooms - ch->member_room >= ch->conf->max_rooms
        && ngx_goim_room_member(ch, id, len) == NULL
        && goim_room_id_invalid(id, len) == NULL
        && !ngx_goim_registry_is_member_room(id, len)
        && (ch->room_rights == NULL
            || goim_room_allowed((char *) ch->room_rights,
                                 ch->room_rights_len, id, len)))
    {
        ngx_goim_rooms_leave(ch, old);
        old = NULL;
    }

    rc = ngx_goim_rooms_join(ch, r, 0, &room);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim: change room refused: %s%s%s", r->error,
                      r->reason ? ": " : "", r->reason ? r->reason : "");
        return NGX_OK;
    }

    if (old && old != room) {
        ngx_goim_rooms_leave(ch, old);
    }

    ch->room = room;

    return NGX_OK;
}


/*
 * op 30 and op 32: the body is a JSON array of room ids; the reply
 * (op 31, op 33) has a result per id, in order.
 */

ngx_int_t
ngx_goim_rooms_op(ngx_goim_channel_t *ch, goim_packet_t *pkt,
    ngx_uint_t join)
{
    char                      err[96];
    size_t                    pos;
    ngx_int_t                 rc;
    ngx_uint_t                n;
    goim_room_list_t          list;
    ngx_goim_room_t          *room;
    ngx_goim_room_result_t    r[GOIM_ROOM_MAX_LIST];
    ngx_goim_history_read_t  *hrs;
    const unsigned char      *id;

    ngx_memzero(&list, sizeof(goim_room_list_t));

    if (pkt->body_len
        && goim_room_list_parse(pkt->body, pkt->body_len, GOIM_ROOM_MAX_LIST,
                                &list, err, sizeof(err))
           != 0)
    {
        return ngx_goim_rooms_reply(ch, pkt, NULL, 0, join, err);
    }

    pos = 0;
    n = 0;
    rc = NGX_OK;

    while (goim_room_list_next(&list, &pos, &id, &r[n].len)) {
        r[n].id = (u_char *) id;
        r[n].error = NULL;
        r[n].reason = NULL;
        r[n].fresh = 0;
        r[n].hr = NULL;

        if (join) {
            rc = ngx_goim_rooms_join(ch, &r[n], 0, &room);

        } else {
            room = ngx_goim_room_member(ch, r[n].id, r[n].len);

            if (room && ngx_goim_registry_is_member_room(r[n].id, r[n].len))
            {
                r[n].error = "bad id";
                r[n].reason = "mid:// is the rooms of members' messages";

            } else if (room) {
                ngx_goim_rooms_leave(ch, room);

            } else {
                r[n].error = "not a member";
            }
        }

        n++;

        if (rc == NGX_ERROR) {
            break;
        }
    }

    if (rc == NGX_ERROR) {
        goim_room_list_free(&list);
        return NGX_ERROR;
    }

    /* with goim_history: the positions of the rooms joined, their seams */

    hrs = NULL;

    if (join && ngx_goim_recover_seams(ch, r, n, &hrs) == NGX_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ch->connection->log, 0,
                      "goim: no positions for the rooms joined: shared "
                      "zone exhausted");
    }

    rc = ngx_goim_rooms_reply(ch, pkt, r, n, join, NULL);

    /* the recovered messages and op 36 after the reply; frees hrs */
    if (ngx_goim_recover_finish(ch, r, n, hrs, 0) != NGX_OK) {
        rc = NGX_ERROR;
    }

    goim_room_list_free(&list);

    return rc;
}


static ngx_int_t
ngx_goim_rooms_reply(ngx_goim_channel_t *ch, goim_packet_t *pkt,
    ngx_goim_room_result_t *r, ngx_uint_t n, ngx_uint_t join,
    const char *error)
{
    size_t      len, elen;
    u_char     *body, *p;
    ngx_int_t   rc;

    elen = error ? ngx_strlen(error) : 0;

    len = sizeof("{\"rooms\":,\"error\":\"\"}") - 1
          + ngx_goim_rooms_json_len(r, n, join)
          + elen + ngx_escape_json(NULL, (u_char *) error, elen);

    body = ngx_alloc(len, ch->connection->log);
    if (body == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(body, "{\"rooms\":", sizeof("{\"rooms\":") - 1);
    p = ngx_goim_rooms_json(p, r, n, join);

    if (error) {
        p = ngx_cpymem(p, ",\"error\":\"", sizeof(",\"error\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, (u_char *) error, elen);
        *p++ = '"';
    }

    *p++ = '}';

    rc = ngx_goim_channel_reply(ch, pkt->ver, pkt->op + 1, pkt->seq, body,
                                p - body);

    ngx_free(body);

    return rc;
}


/*
 * [{"room_id":"a","joined":true},{"room_id":"b","joined":false,
 * "error":"bad id","reason":"..."}], "left" for a leave; a room joined
 * with a position (goim_history) has it after "joined"
 */

size_t
ngx_goim_rooms_json_len(ngx_goim_room_result_t *r, ngx_uint_t n,
    ngx_uint_t join)
{
    size_t      len;
    ngx_uint_t  i;

    len = 2;

    for (i = 0; i < n; i++) {
        len += sizeof("{\"room_id\":\"\",\"joined\":false,\"error\":\"\","
                      "\"reason\":\"\"},") - 1
               + r[i].len + ngx_escape_json(NULL, r[i].id, r[i].len);

        if (r[i].error) {
            len += ngx_strlen(r[i].error);
        }

        if (r[i].reason) {
            len += ngx_strlen(r[i].reason);
        }

        if (r[i].hr) {
            len += NGX_GOIM_RECOVER_POSITION_LEN;
        }
    }

    (void) join;

    return len;
}


u_char *
ngx_goim_rooms_json(u_char *p, ngx_goim_room_result_t *r, ngx_uint_t n,
    ngx_uint_t join)
{
    ngx_uint_t  i;

    *p++ = '[';

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, "{\"room_id\":\"", sizeof("{\"room_id\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, r[i].id, r[i].len);
        p = ngx_sprintf(p, "\",\"%s\":%s", join ? "joined" : "left",
                        r[i].error ? "false" : "true");

        if (r[i].error) {
            p = ngx_sprintf(p, ",\"error\":\"%s\"", r[i].error);
        }

        if (r[i].reason) {
            p = ngx_sprintf(p, ",\"reason\":\"%s\"", r[i].reason);
        }

        if (r[i].hr) {
            p = ngx_goim_recover_position(p, r[i].hr);
        }

        *p++ = '}';
    }

    *p++ = ']';

    return p;
}
