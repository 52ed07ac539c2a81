
/*
 * goim for nginx: the layout of a push for other workers (goim_imsg.h).
 */


#include <string.h>

#include "goim_imsg.h"


size_t
goim_imsg_size(uint32_t targets_len, uint32_t body_len)
{
    return GOIM_IMSG_HEAD_LEN + (size_t) targets_len + body_len;
}


unsigned char *
goim_imsg_put_head(unsigned char *p, const goim_imsg_head_t *head)
{
    uint32_t  w[7];

    w[0] = head->type;
    memcpy(&w[1], &head->op, 4);
    w[2] = head->speed;
    w[3] = head->raw;
    w[4] = head->ntargets;
    w[5] = head->targets_len;
    w[6] = head->body_len;

    memcpy(p, w, sizeof(w));
    memcpy(p + GOIM_IMSG_POS_OFF, &head->pos, 8);
    memcpy(p + GOIM_IMSG_STREAM_OFF, &head->stream, 4);
    memset(p + GOIM_IMSG_STREAM_OFF + 4, 0, 4);
    memcpy(p + GOIM_IMSG_EPOCH_OFF, &head->epoch, 8);
    memcpy(p + GOIM_IMSG_MID_OFF, &head->mid, 8);

    return p + GOIM_IMSG_HEAD_LEN;
}


unsigned char *
goim_imsg_put_str(unsigned char *p, const unsigned char *s, uint32_t len)
{
    memcpy(p, &len, 4);

    if (len) {
        memcpy(p + 4, s, len);
    }

    return p + 4 + len;
}


unsigned char *
goim_imsg_put_mids(unsigned char *p, const int64_t *mids, uint32_t n)
{
    if (n) {
        memcpy(p, mids, (size_t) n * sizeof(int64_t));
    }

    return p + (size_t) n * sizeof(int64_t);
}


unsigned char *
goim_imsg_put_body(unsigned char *p, const unsigned char *body, uint32_t len)
{
    if (len) {
        memcpy(p, body, len);
    }

    return p + len;
}


int
goim_imsg_parse(const unsigned char *p, goim_imsg_t *m)
{
    size_t    off;
    uint32_t  i, len, w[7];

    memcpy(w, p, sizeof(w));
    memcpy(&m->head.pos, p + GOIM_IMSG_POS_OFF, 8);
    memcpy(&m->head.stream, p + GOIM_IMSG_STREAM_OFF, 4);
    memcpy(&m->head.epoch, p + GOIM_IMSG_EPOCH_OFF, 8);
    memcpy(&m->head.mid, p + GOIM_IMSG_MID_OFF, 8);

    m->head.type = w[0];
    memcpy(&m->head.op, &w[1], 4);
    m->head.speed = w[2];
    m->head.raw = w[3];
    m->head.ntargets = w[4];
    m->head.targets_len = w[5];
    m->head.body_len = w[6];

    m->targets = p + GOIM_IMSG_HEAD_LEN;
    m->body = m->targets + m->head.targets_len;

    switch (m->head.type) {

    case GOIM_IMSG_MIDS:
        return (uint64_t) m->head.ntargets * sizeof(int64_t)
               == m->head.targets_len ? 0 : -1;

    case GOIM_IMSG_ALL:
        return m->head.ntargets == 0 && m->head.targets_len == 0 ? 0 : -1;

    case GOIM_IMSG_ROOM:
        if (m->head.ntargets != 1) {
            return -1;
        }

        /* fall through */

    case GOIM_IMSG_KEYS:
    case GOIM_IMSG_KICK:
        off = 0;

        for (i = 0; i < m->head.ntargets; i++) {
            if (m->head.targets_len - off < 4) {
                return -1;
            }

            memcpy(&len, m->targets + off, 4);
            off += 4;

            if (m->head.targets_len - off < len) {
                return -1;
            }

            off += len;
        }

        return off == m->head.targets_len ? 0 : -1;

    default:
        return -1;
    }
}


int
goim_imsg_next_str(const goim_imsg_t *m, size_t *off,
    const unsigned char **s, size_t *len)
{
    uint32_t  n;

    if (*off >= m->head.targets_len) {
        return 0;
    }

    memcpy(&n, m->targets + *off, 4);

    *s = m->targets + *off + 4;
    *len = n;
    *off += 4 + (size_t) n;

    return 1;
}


void
goim_imsg_mids(const goim_imsg_t *m, uint32_t first, uint32_t n,
    int64_t *mids)
{
    memcpy(mids, m->targets + (size_t) first * sizeof(int64_t),
           (size_t) n * sizeof(int64_t));
}
