
/*
 * goim for nginx: authentication of a channel (its first packet, op 7,
 * docs/PROTOCOL.md 1.3) and its registration: the worker's indexes, the
 * shared registry, its rooms, and its session in Redis; and the way back
 * out.
 */


#include "ngx_goim_comet.h"

#include <goim_token.h>
#include <goim_jwt.h>


#define NGX_GOIM_JWT_LEEWAY  30       /* seconds of clock skew for nbf */


static ngx_int_t ngx_goim_auth_register(ngx_goim_channel_t *ch,
    goim_token_t *tok);
static ngx_int_t ngx_goim_auth_rooms(ngx_goim_channel_t *ch,
    goim_token_t *tok);
static void ngx_goim_auth_done(ngx_goim_channel_t *ch, ngx_int_t rc);
static void ngx_goim_auth_member_done(ngx_goim_channel_t *ch);
static void ngx_goim_auth_accepted(ngx_goim_channel_t *ch, int32_t ver,
    int32_t seq);


ngx_int_t
ngx_goim_auth(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    char                 err[128];
    u_char               reason[160];
    ngx_int_t            rc;
    ngx_str_t           *secret;
    goim_token_t         tok;
    ngx_goim_channel_t  *old;

    secret = &ch->conf->auth_secret;

    /* with a secret, only signed tokens: no fallback to plain JSON */
    rc = secret->len
         ? goim_jwt_verify(pkt->body, pkt->body_len, secret->data,
                           secret->len, ngx_time(), NGX_GOIM_JWT_LEEWAY,
                           &tok, err, sizeof(err))
         : goim_token_parse(pkt->body, pkt->body_len, &tok, err,
                            sizeof(err));

    if (rc != 0) {
        ngx_goim_worker.stats->auth_failed++;
        ngx_snprintf(reason, sizeof(reason), "auth failed: bad token: %s%Z",
                     err);
        ngx_goim_channel_fail(ch, NGX_LOG_INFO, GOIM_WS_CLOSE_POLICY,
                              (const char *) reason);
        return NGX_OK;
    }

    if (tok.key && tok.key_len) {
        old = ngx_goim_key_lookup((u_char *) tok.key, tok.key_len);

        if (old) {
            /* goim: a duplicate key on this node kicks the older one */
            ngx_goim_auth_kick(old);
        }
    }

    rc = ngx_goim_auth_register(ch, &tok);

    goim_token_free(&tok);

    if (rc == NGX_DECLINED) {
        ngx_goim_worker.stats->auth_failed++;
        ngx_goim_channel_fail(ch, NGX_LOG_INFO, GOIM_WS_CLOSE_INTERNAL,
                              "auth refused: shared zone exhausted");
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_goim_mode() != NGX_GOIM_EMBEDDED) {
        /* as goim's Connect: the session is in Redis before the reply */
        ch->auth_ver = pkt->ver;
        ch->auth_seq = pkt->seq;
        ch->auth_pending = 1;

        /* its member's live messages are held from here on */
        if (ngx_goim_member_init(ch) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_goim_session_add(ch, ngx_goim_auth_done) != NGX_OK) {
            ngx_goim_auth_done(ch, NGX_ERROR);
        }

        return NGX_OK;
    }

    ngx_goim_auth_accepted(ch, pkt->ver, pkt->seq);

    return NGX_OK;
}


/* Redis has the session, or failed; input waited meanwhile */

static void
ngx_goim_auth_done(ngx_goim_channel_t *ch, ngx_int_t rc)
{
    u_char  *id;
    size_t   len;

    id = ngx_goim_member_room(ch, &len);

    if (id) {
        ngx_goim_member_want(ch, ngx_goim_recover_want(ch, id, len));
    }

    if (rc == NGX_OK
        && ngx_goim_member_read(ch, ngx_goim_auth_member_done) == NGX_AGAIN)
    {
        /* its member stream's seam first (docs/PROTOCOL.md 1.16) */
        return;
    }

    ch->auth_pending = 0;

    if (rc == NGX_OK) {
        ngx_goim_auth_accepted(ch, ch->auth_ver, ch->auth_seq);

    } else {
        ngx_goim_worker.stats->auth_failed++;
        ngx_goim_auth_unregister(ch);
        ngx_goim_channel_fail(ch, NGX_LOG_WARN, GOIM_WS_CLOSE_INTERNAL,
                              "auth failed: Redis unavailable");
    }

    ngx_goim_channel_resume(ch);
}


/* the member's stream was read, or failed (op 36 says so) */

static void
ngx_goim_auth_member_done(ngx_goim_channel_t *ch)
{
    ch->auth_pending = 0;

    ngx_goim_auth_accepted(ch, ch->auth_ver, ch->auth_seq);

    ngx_goim_channel_resume(ch);
}


static ngx_int_t
ngx_goim_auth_register(ngx_goim_channel_t *ch, goim_token_t *tok)
{
    ngx_int_t          rc, owner;
    ngx_str_t          key;
    ngx_connection_t  *c;

    c = ch->connection;

    key.len = (tok->key && tok->key_len) ? tok->key_len : 36;

    key.data = ngx_pnalloc(c->pool, key.len);
    if (key.data == NULL) {
        return NGX_ERROR;
    }

    if (tok->key && tok->key_len) {
        ngx_memcpy(key.data, tok->key, key.len);

    } else {
        /* goim's logic generates a UUIDv4 for an empty key */
        ngx_goim_uuid4(key.data);
    }

    rc = ngx_goim_index_add(ch, &key, tok->mid, &owner);
    if (rc != NGX_OK) {
        return rc;
    }

    if (owner >= 0) {
        /* the key was connected to another worker: kick it there */
        ngx_goim_push_kick(owner, &ch->key_node.str);
    }

    if (tok->n_accepts) {
        ch->watch = ngx_alloc(tok->n_accepts * sizeof(int32_t), c->log);
        if (ch->watch == NULL) {
            ngx_goim_index_del(ch);
            return NGX_ERROR;
        }

        ngx_memcpy(ch->watch, tok->accepts, tok->n_accepts * sizeof(int32_t));
        ch->nwatch = ngx_min(tok->n_accepts, NGX_GOIM_MAX_WATCH);
    }

    ch->authed = 1;

    if (ch->conf->presence && tok->platform) {
        ch->platform.len = ngx_strlen(tok->platform);
        ch->platform.data = ngx_pnalloc(c->pool, ch->platform.len);
        if (ch->platform.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ch->platform.data, tok->platform, ch->platform.len);
    }

    if (ngx_goim_rooms_rights(ch, &tok->allowed_rooms) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_goim_auth_rooms(ch, tok);
}


/*
 * The token's room_id is the first room, as in goim; its room_ids join
 * too, up to goim_max_rooms.  With room_ids, or with goim_history (for
 * the positions), the result for each room goes into the auth reply
 * (docs/PROTOCOL.md 1.14, 1.15); the results are kept for it, as the
 * token goes before the reply is sent (Redis may come in between).
 */

static ngx_int_t
ngx_goim_auth_rooms(ngx_goim_channel_t *ch, goim_token_t *tok)
{
    u_char                  *id;
    u_char                   buf[NGX_GOIM_MEMBER_ROOM_LEN];
    size_t                   pos;
    ngx_int_t                rc;
    ngx_str_t                name;
    ngx_uint_t               n, i;
    const char              *tid;
    ngx_goim_room_t         *room;
    ngx_goim_room_result_t  *r;

    if (tok->room_id
        && tok->room_len
        && !ngx_goim_registry_is_member_room((u_char *) tok->room_id,
                                             tok->room_len))
    {
        if (ngx_goim_rooms_enter(ch, (u_char *) tok->room_id,
                                 tok->room_len, &room)
            == NGX_ERROR)
        {
            return NGX_ERROR;
        }

        ch->room = room;
    }

    if (tok->room_ids.n == 0 && !ngx_goim_registry_history_on()) {
        return NGX_OK;
    }

    r = ngx_pcalloc(ch->connection->pool,
                    (tok->room_ids.n + 2) * sizeof(ngx_goim_room_result_t));
    if (r == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    if (ch->room) {
        r[n].id = ch->room->hn.str.data;
        r[n].len = ch->room->hn.str.len;
        r[n].fresh = 1;
        n++;
    }

    pos = 0;

    while (goim_token_rooms_next(&tok->room_ids, &pos, &tid, &r[n].len)) {
        r[n].id = (u_char *) tid;

        rc = ngx_goim_rooms_join(ch, &r[n], 1, &room);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        n++;
    }

    if (ch->mid > 0 && ngx_goim_registry_member_history_on()) {
        /*
         * the member's own room: its messages by mid, with positions,
         * recovered as a room's (docs/PROTOCOL.md 1.16)
         */
        ngx_goim_registry_member_room(ch->mid, buf, &name);

        r[n].id = name.data;
        r[n].len = name.len;

        rc = ngx_goim_room_join(ch, name.data, name.len, &room);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        r[n].fresh = (rc == NGX_OK);
        ch->member_room = 1;
        n++;
    }

    /* the ids are the token's (and buf): copied */

    for (i = 0; i < n; i++) {
        id = ngx_pnalloc(ch->connection->pool, r[i].len);
        if (id == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(id, r[i].id, r[i].len);
        r[i].id = id;
    }

    ch->auth_rooms = r;
    ch->nauth_rooms = n;

    return NGX_OK;
}


/*
 * op 8, with the heartbeat timer armed; its body tells the client its
 * key (goim clients ignore it), and with room_ids or goim_history its
 * rooms; a recovery asked with op 35 follows it
 */

static void
ngx_goim_auth_accepted(ngx_goim_channel_t *ch, int32_t ver, int32_t seq)
{
    size_t                    len;
    u_char                   *body, *p;
    ngx_str_t                *key, room;
    ngx_uint_t                n;
    ngx_goim_room_result_t   *r;
    ngx_goim_history_read_t  *hrs;

    ngx_goim_worker.stats->auth_ok++;

    r = ch->auth_rooms;
    n = ch->nauth_rooms;

    /* with goim_history: the rooms' positions, the seams of the streams */
    if (ngx_goim_recover_seams(ch, r, n, &hrs) == NGX_ERROR) {
        ngx_goim_channel_fail(ch, NGX_LOG_INFO, GOIM_WS_CLOSE_INTERNAL,
                              "auth refused: shared zone exhausted");
        return;
    }

    ngx_add_timer(ch->connection->read,
                  ch->conf->heartbeat * ch->conf->heartbeat_max);

    key = &ch->key_node.str;

    if (ch->room) {
        room = ch->room->hn.str;

    } else {
        ngx_str_null(&room);
    }

    len = sizeof("{\"mid\":,\"key\":\"\",\"room_id\":\"\"}") - 1 + NGX_INT64_LEN
          + key->len + ngx_escape_json(NULL, key->data, key->len)
          + room.len + ngx_escape_json(NULL, room.data, room.len)
          + sizeof(",\"rooms\":") - 1 + ngx_goim_rooms_json_len(r, n, 1)
          + ngx_goim_member_json_len(ch);

    body = ngx_alloc(len, ch->connection->log);
    if (body == NULL) {
        ngx_goim_recover_release(r, n, hrs);
        return;
    }

    p = ngx_sprintf(body, "{\"mid\":%L,\"key\":\"", ch->mid);
    p = (u_char *) ngx_escape_json(p, key->data, key->len);
    p = ngx_cpymem(p, "\",\"room_id\":\"", sizeof("\",\"room_id\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, room.data, room.len);
    *p++ = '"';

    if (r) {
        p = ngx_cpymem(p, ",\"rooms\":", sizeof(",\"rooms\":") - 1);
        p = ngx_goim_rooms_json(p, r, n, 1);
        p = ngx_goim_member_json(ch, p);
    }

    *p++ = '}';

    (void) ngx_goim_channel_reply(ch, ver, GOIM_OP_AUTH_REPLY, seq, body,
                                  p - body);

    ngx_free(body);

    (void) ngx_goim_recover_finish(ch, r, n, hrs, NGX_GOIM_RECOVER_AUTH);

    /* the member's live messages from its seam on */
    ngx_goim_member_live(ch);
}


void
ngx_goim_auth_unregister(ngx_goim_channel_t *ch)
{
    if (!ch->authed) {
        return;
    }

    ch->authed = 0;

    ngx_goim_rooms_leave_all(ch);
    ngx_goim_index_del(ch);

    if (ngx_goim_mode() != NGX_GOIM_EMBEDDED) {
        /* an auth still waiting for Redis is abandoned */
        ch->auth_pending = 0;
        ngx_goim_member_cancel(ch);
        ngx_goim_session_cancel(ch);
        ngx_goim_session_del(ch);
    }
}


/*
 * The drain takes a channel out of the shared registry before it closes
 * it: a push accepted from then on does not count it, and one accepted
 * before is already in this worker's inbox or in the room's batch, which
 * are delivered before the Close.  The local indexes keep the channel
 * until ngx_goim_auth_unregister().
 */

void
ngx_goim_auth_withdraw(ngx_goim_channel_t *ch)
{
    if (!ch->authed || ch->withdrawn) {
        return;
    }

    ngx_goim_index_withdraw(ch);
    ngx_goim_room_withdraw(ch);
}


/* an authenticated channel closes (connection/) */

void
ngx_goim_auth_closing(ngx_goim_channel_t *ch)
{
    ngx_connection_t  *c;

    c = ch->connection;

    if (ch->room) {
        /* $goim_room in the access log, written after this */
        ch->last_room.data = ngx_pnalloc(c->pool, ch->room->hn.str.len);

        if (ch->last_room.data) {
            ngx_memcpy(ch->last_room.data, ch->room->hn.str.data,
                       ch->room->hn.str.len);
            ch->last_room.len = ch->room->hn.str.len;
        }
    }

    ngx_goim_auth_unregister(ch);
}


/* a newer connection has the channel's key, on this worker or another */

void
ngx_goim_auth_kick(ngx_goim_channel_t *ch)
{
    ngx_goim_auth_unregister(ch);
    ngx_goim_channel_fail(ch, NGX_LOG_INFO, GOIM_WS_CLOSE_POLICY,
                          "duplicate key: replaced by a newer connection");
}
