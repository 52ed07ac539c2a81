/*
 * WebSocket (RFC 6455) pieces the comet needs: the handshake accept key,
 * a client frame decoder with message-level checks, and server frame
 * headers.  Pure C: no nginx headers.
 */

#ifndef GOIM_WS_H
#define GOIM_WS_H

#include <stddef.h>
#include <stdint.h>

#include "goim_util.h"


#define GOIM_WS_OP_CONTINUATION  0x0
#define GOIM_WS_OP_TEXT          0x1
#define GOIM_WS_OP_BINARY        0x2
#define GOIM_WS_OP_CLOSE         0x8
#define GOIM_WS_OP_PING          0x9
#define GOIM_WS_OP_PONG          0xa

#define GOIM_WS_MAX_CONTROL      125
#define GOIM_WS_MAX_HEADER       14     /* 2 + 8 length + 4 mask */
#define GOIM_WS_ACCEPT_LEN       28     /* base64 of a SHA-1 digest */

/* close codes */
#define GOIM_WS_CLOSE_NORMAL        1000
#define GOIM_WS_CLOSE_GOING_AWAY    1001
#define GOIM_WS_CLOSE_PROTOCOL      1002
#define GOIM_WS_CLOSE_UNSUPPORTED   1003
#define GOIM_WS_CLOSE_NO_STATUS     1005
#define GOIM_WS_CLOSE_INVALID_DATA  1007
#define GOIM_WS_CLOSE_POLICY        1008
#define GOIM_WS_CLOSE_TOO_BIG       1009
#define GOIM_WS_CLOSE_INTERNAL      1011

/* results of goim_ws_read_frame(); each error has one close code */
#define GOIM_WS_AGAIN                   0
#define GOIM_WS_ERR_RSV                -1   /* RSV bits set: 1002 */
#define GOIM_WS_ERR_OPCODE             -2   /* reserved opcode: 1002 */
#define GOIM_WS_ERR_UNMASKED           -3   /* client frame unmasked: 1002 */
#define GOIM_WS_ERR_LEN64              -4   /* 64-bit length top bit: 1002 */
#define GOIM_WS_ERR_CONTROL_LEN        -5   /* control payload > 125: 1002 */
#define GOIM_WS_ERR_CONTROL_FRAGMENTED -6   /* control without FIN: 1002 */
#define GOIM_WS_ERR_NO_MESSAGE         -7   /* continuation, no first: 1002 */
#define GOIM_WS_ERR_IN_MESSAGE         -8   /* new data frame mid message:
                                               1002 */
#define GOIM_WS_ERR_TOO_BIG            -9   /* message over max_msg: 1009 */
#define GOIM_WS_ERR_FRAGMENTS          -10  /* too many fragments: 1009 */
#define GOIM_WS_ERR_LEN_ENCODING       -11  /* non-minimal length: 1002 */
#define GOIM_WS_ERR_CLOSE_PAYLOAD      -12  /* bad close frame body: 1002 */


typedef struct {
    unsigned   fin;
    unsigned   rsv;             /* the three RSV bits, 0 when valid */
    unsigned   opcode;
    unsigned   masked;
    uint8_t    mask[4];
    uint64_t   payload_len;
    size_t     header_len;
} goim_ws_frame_t;


/*
 * Per-connection decoder state across frames: whether a fragmented data
 * message is open, its opcode, fragment count and bytes so far.
 */
typedef struct {
    unsigned   in_message;
    unsigned   opcode;          /* TEXT or BINARY of the open message */
    uint32_t   fragments;
    uint64_t   msg_len;

    /* limits, set by the caller */
    uint64_t   max_msg;         /* bytes in one data message */
    uint32_t   max_fragments;   /* frames in one data message */
    unsigned   require_mask;    /* 1 for client-to-server frames */
} goim_ws_reader_t;


void goim_ws_reader_init(goim_ws_reader_t *r, uint64_t max_msg,
    uint32_t max_fragments, unsigned require_mask);

/*
 * Parses the frame header at p[0..len) and applies the RFC 6455 and
 * message-level checks; on success updates the message state (a data
 * frame without FIN opens a message, a continuation with FIN closes it)
 * and returns the header length (> 0).  GOIM_WS_AGAIN when the header is
 * incomplete; a negative GOIM_WS_ERR_* otherwise.  The payload follows
 * the header; it is not required to be present.
 */
long goim_ws_read_frame(goim_ws_reader_t *r, const uint8_t *p, size_t len,
    goim_ws_frame_t *f);

/* The close code to send for a GOIM_WS_ERR_* result. */
uint16_t goim_ws_error_close_code(long err);

const char *goim_ws_strerror(long err);

/*
 * Unmasks n payload bytes in place; offset is the position of p[0]
 * within the frame's payload (payload may be unmasked piecewise).
 */
void goim_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4],
    uint64_t offset);

/*
 * Writes a server frame header (FIN set, unmasked) for a payload of
 * len bytes; returns its length, 2, 4 or 10.
 */
size_t goim_ws_write_header(uint8_t *dst, unsigned opcode, uint64_t len);

/*
 * Validates a received close frame payload (empty, or a 2-byte valid code
 * plus reason); returns 0 and the code (GOIM_WS_CLOSE_NO_STATUS when
 * empty), or GOIM_WS_ERR_CLOSE_PAYLOAD.
 */
long goim_ws_parse_close(const uint8_t *p, size_t len, uint16_t *code);

/*
 * Builds a complete server close frame (header + code + reason, reason
 * truncated to fit 125 bytes) into dst (at least 2 + 125 bytes); returns
 * its length.
 */
size_t goim_ws_close_frame(uint8_t *dst, uint16_t code, const char *reason);

/*
 * Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
 * Writes exactly GOIM_WS_ACCEPT_LEN characters (no terminating NUL).
 * Returns 0, or -1 when libcrypto fails (out of memory), out unwritten.
 */
int goim_ws_accept_key(const uint8_t *key, size_t key_len, char *out);


#endif /* GOIM_WS_H */
