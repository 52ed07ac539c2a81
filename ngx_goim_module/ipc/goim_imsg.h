
/*
 * goim for nginx: the layout of a push for other workers, pure C (no
 * nginx headers, unit-tested in t/unit/module_imsg.c).  ipc/ puts it in
 * the shared zone after the registry's part of an inbox message:
 *
 *     uint32 type, int32 op, uint32 speed, uint32 raw,
 *     uint32 ntargets, uint32 targets_len, uint32 body_len, uint64 pos,
 *     uint32 stream, uint32 (unused), uint64 epoch, int64 mid,
 *     targets (targets_len bytes), body (body_len bytes)
 *
 * Targets are keys or a room, each as a uint32 length then its bytes,
 * or mids, 8 bytes each.  Nothing after the head is aligned: numbers
 * are copied out, never loaded in place.  Native byte order: both ends
 * are workers of one host.
 */

#ifndef GOIM_IMSG_H
#define GOIM_IMSG_H


#include <stddef.h>
#include <stdint.h>


#define GOIM_IMSG_KEYS      0
#define GOIM_IMSG_MIDS      1
#define GOIM_IMSG_ROOM      2
#define GOIM_IMSG_ALL       3
#define GOIM_IMSG_KICK      4

#define GOIM_IMSG_HEAD_LEN  56

/*
 * where pos and stream are: a room message gets its offset and its
 * room's stream id there, in the zone
 */
#define GOIM_IMSG_POS_OFF     28
#define GOIM_IMSG_STREAM_OFF  36

/* a member's message (docs/PROTOCOL.md 1.16): its stream's epoch, its mid */
#define GOIM_IMSG_EPOCH_OFF   40
#define GOIM_IMSG_MID_OFF     48


typedef struct {
    uint32_t        type;
    int32_t         op;
    uint32_t        speed;
    uint32_t        raw;            /* the body is OP_RAW packets */
    uint32_t        ntargets;
    uint32_t        targets_len;
    uint32_t        body_len;
    uint64_t        pos;            /* a room message's offset, or 0 */
    uint32_t        stream;         /* and its room's stream id */
    uint64_t        epoch;          /* a member's message: its epoch */
    int64_t         mid;            /* and its member, else 0 */
} goim_imsg_head_t;


/* a message read back: the head, and where its parts are */
typedef struct {
    goim_imsg_head_t        head;
    const unsigned char    *targets;
    const unsigned char    *body;
} goim_imsg_t;


/* the bytes a key or a room takes among the targets */
#define goim_imsg_str_len(len)  (4 + (size_t) (len))

/* the whole message */
size_t goim_imsg_size(uint32_t targets_len, uint32_t body_len);

/* each returns the position after what it wrote */
unsigned char *goim_imsg_put_head(unsigned char *p,
    const goim_imsg_head_t *head);
unsigned char *goim_imsg_put_str(unsigned char *p, const unsigned char *s,
    uint32_t len);
unsigned char *goim_imsg_put_mids(unsigned char *p, const int64_t *mids,
    uint32_t n);
unsigned char *goim_imsg_put_body(unsigned char *p, const unsigned char *body,
    uint32_t len);

/*
 * Reads a message written by the above: 0, or -1 when its targets do
 * not add up to targets_len (the message is then not to be used).
 */
int goim_imsg_parse(const unsigned char *p, goim_imsg_t *m);

/*
 * The next key (or the room) from *off (0 at first): 1 with s and len
 * set, 0 after the last.  Only for a message goim_imsg_parse() took.
 */
int goim_imsg_next_str(const goim_imsg_t *m, size_t *off,
    const unsigned char **s, size_t *len);

/* copies mids [first, first + n) out */
void goim_imsg_mids(const goim_imsg_t *m, uint32_t first, uint32_t n,
    int64_t *mids);


#endif /* GOIM_IMSG_H */
