/*
 * goim binary packet codec (docs/PROTOCOL.md 1.1).  Pure C: no nginx
 * headers, shared by the module, the job, tools, tests and fuzzers.
 *
 * Layout, all integers big-endian and signed:
 *   int32 packLen | int16 headerLen (=16) | int16 ver | int32 op | int32 seq
 *   followed by packLen - 16 body bytes.
 */

#ifndef GOIM_PACKET_H
#define GOIM_PACKET_H

#include <stddef.h>
#include <stdint.h>


#define GOIM_HEADER_LEN          16
#define GOIM_DEFAULT_MAX_BODY    4096

/* operation codes */
#define GOIM_OP_HANDSHAKE        0
#define GOIM_OP_HANDSHAKE_REPLY  1
#define GOIM_OP_HEARTBEAT        2
#define GOIM_OP_HEARTBEAT_REPLY  3
#define GOIM_OP_SEND_MSG         4
#define GOIM_OP_SEND_MSG_REPLY   5
#define GOIM_OP_DISCONNECT_REPLY 6
#define GOIM_OP_AUTH             7
#define GOIM_OP_AUTH_REPLY       8
#define GOIM_OP_RAW              9
#define GOIM_OP_PROTO_READY      10
#define GOIM_OP_PROTO_FINISH     11
#define GOIM_OP_CHANGE_ROOM      12
#define GOIM_OP_CHANGE_ROOM_REPLY 13
#define GOIM_OP_SUB              14
#define GOIM_OP_SUB_REPLY        15
#define GOIM_OP_UNSUB            16
#define GOIM_OP_UNSUB_REPLY      17

/* ours, unused by goim: several rooms per connection (PROTOCOL.md 1.14) */
#define GOIM_OP_JOIN             30
#define GOIM_OP_JOIN_REPLY       31
#define GOIM_OP_LEAVE            32
#define GOIM_OP_LEAVE_REPLY      33
#define GOIM_OP_PRESENCE         34     /* join and leave events */
#define GOIM_OP_RECOVER          35     /* positions to recover from */
#define GOIM_OP_RECOVER_REPLY    36     /* what was recovered */


/* results of goim_packet_parse() and goim_raw_next() */
#define GOIM_PACKET_AGAIN            0    /* need more bytes */
#define GOIM_PACKET_ERR_HEADER_LEN  -1    /* headerLen != 16 */
#define GOIM_PACKET_ERR_SHORT       -2    /* packLen < 16 (negative incl.) */
#define GOIM_PACKET_ERR_TOO_LONG    -3    /* body longer than max_body */
#define GOIM_PACKET_ERR_TRUNCATED   -4    /* packLen beyond a closed buffer */


typedef struct {
    int32_t         ver;
    int32_t         op;
    int32_t         seq;
    const uint8_t  *body;       /* points into the parsed buffer */
    size_t          body_len;
} goim_packet_t;


/*
 * Parses one packet from p[0..len).  Returns the packet's total length
 * (> 0) when a complete packet is there, GOIM_PACKET_AGAIN when more bytes
 * are needed (a split header included), or a negative error.  A header
 * error is reported as soon as the 16 header bytes are present, before
 * any body byte arrived.
 */
long goim_packet_parse(const uint8_t *p, size_t len, size_t max_body,
    goim_packet_t *pkt);

/*
 * Once the 16 header bytes are present, the whole packet length they
 * announce (validated as goim_packet_parse() does); GOIM_PACKET_AGAIN
 * before that.  Lets a reader size a buffer for a split packet.
 */
long goim_packet_need(const uint8_t *p, size_t len, size_t max_body);

/*
 * Parses the packet at the start of a complete message (a WebSocket
 * message holds one packet): like goim_packet_parse(), but a packet
 * that does not fit in p[0..len), short header included, is
 * GOIM_PACKET_ERR_TRUNCATED instead of GOIM_PACKET_AGAIN.  Bytes after
 * packLen are ignored, as goim does.
 */
long goim_packet_parse_exact(const uint8_t *p, size_t len, size_t max_body,
    goim_packet_t *pkt);

/* Writes a 16-byte header for a body of body_len bytes; returns 16. */
size_t goim_packet_write_header(uint8_t *dst, size_t body_len, int32_t ver,
    int32_t op, int32_t seq);

/* Header + body into dst (dst must hold 16 + body_len); returns length. */
size_t goim_packet_encode(uint8_t *dst, int32_t ver, int32_t op, int32_t seq,
    const uint8_t *body, size_t body_len);

const char *goim_packet_strerror(long rc);


/*
 * OP_RAW bodies: a concatenation of complete packets (docs/PROTOCOL.md
 * 1.8).
 *
 * goim_raw_next() walks them: *off is the read position, starting at 0.
 * Returns 1 and fills pkt for each inner packet, 0 at the end, or a
 * negative error (a truncated or malformed inner packet).  Inner packets
 * are server-built, so no body limit applies.
 */
int goim_raw_next(const uint8_t *body, size_t len, size_t *off,
    goim_packet_t *pkt);


/*
 * Growing OP_RAW batch: append whole inner packets, then take the bytes.
 * The batch owns its buffer (malloc); goim_raw_batch_free() releases it.
 */
typedef struct {
    uint8_t   *data;
    size_t     len;
    size_t     cap;
    uint32_t   count;           /* inner packets */
} goim_raw_batch_t;

void goim_raw_batch_init(goim_raw_batch_t *b);

/* Appends one inner packet (ver 1, seq 0); returns 0 or -1 (no memory). */
int goim_raw_batch_add(goim_raw_batch_t *b, int32_t op, const uint8_t *body,
    size_t body_len);

/*
 * The same with a ver and a seq: a room message's stream id and offset
 * (docs/PROTOCOL.md 1.15)
 */
int goim_raw_batch_add_seq(goim_raw_batch_t *b, int32_t op, int32_t ver,
    int32_t seq,
    const uint8_t *body, size_t body_len);

/* Appends already encoded packet bytes; returns 0 or -1. */
int goim_raw_batch_add_raw(goim_raw_batch_t *b, const uint8_t *pkt,
    size_t len);

void goim_raw_batch_reset(goim_raw_batch_t *b);
void goim_raw_batch_free(goim_raw_batch_t *b);


static inline uint32_t
goim_get_u32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | (uint32_t) p[3];
}


static inline uint16_t
goim_get_u16(const uint8_t *p)
{
    return (uint16_t) (((uint16_t) p[0] << 8) | p[1]);
}


static inline void
goim_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


static inline void
goim_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}


#endif /* GOIM_PACKET_H */
