/*
 * The module's inter-worker message layout (ngx_goim_module/ipc/
 * goim_imsg.c): what one worker writes into the shared zone for another
 * reads back the same, at the documented offsets (old and new workers
 * share the zone across a reload), numbers at any alignment, and a
 * message whose targets do not add up is refused.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goim_imsg.h"
#include "tap.h"


static unsigned char *
keys_message(unsigned char *buf, uint32_t type, const char **keys, int n,
    const char *body, size_t *size)
{
    int                i;
    size_t             tlen;
    unsigned char     *p;
    goim_imsg_head_t   head;

    tlen = 0;

    for (i = 0; i < n; i++) {
        tlen += goim_imsg_str_len(strlen(keys[i]));
    }

    head.type = type;
    head.op = 1000;
    head.speed = 0;
    head.pos = 0x0000000100000002ULL;
    head.stream = 65535;
    head.epoch = 1765000000123ULL;
    head.mid = -7;
    head.raw = 0;
    head.ntargets = n;
    head.targets_len = tlen;
    head.body_len = strlen(body);

    p = goim_imsg_put_head(buf, &head);

    for (i = 0; i < n; i++) {
        p = goim_imsg_put_str(p, (const unsigned char *) keys[i],
                              strlen(keys[i]));
    }

    p = goim_imsg_put_body(p, (const unsigned char *) body, strlen(body));

    *size = goim_imsg_size(head.targets_len, head.body_len);

    return p;
}


int
main(void)
{
    int                   i, n;
    size_t                size, off, len;
    int64_t               mids[70], got[70];
    uint32_t              w;
    goim_imsg_t           m;
    unsigned char        *end, *buf, *p;
    uint64_t              pos;
    goim_imsg_head_t      head;
    const unsigned char  *s;

    static const char    *keys[] = { "k1", "a-longer-key", "", "k4" };

    buf = malloc(4096);
    if (buf == NULL) {
        return 1;
    }

    /* keys: written, then read back */

    end = keys_message(buf, GOIM_IMSG_KEYS, keys, 4, "hello", &size);

    is_int(end - buf, size, "keys: goim_imsg_size() is what was written");
    is_int(size, GOIM_IMSG_HEAD_LEN + (4 + 2) + (4 + 12) + 4 + (4 + 2) + 5,
           "keys: head, each key with its length, then the body");

    is_int(goim_imsg_parse(buf, &m), 0, "keys: parsed");
    is_int(m.head.type, GOIM_IMSG_KEYS, "keys: type");
    is_int(m.head.op, 1000, "keys: op");
    is_int(m.head.ntargets, 4, "keys: 4 targets");
    is_int(m.head.body_len, 5, "keys: body length");
    is_mem(m.body, "hello", 5, "keys: body");

    off = 0;
    n = 0;

    while (goim_imsg_next_str(&m, &off, &s, &len)) {
        ok(len == strlen(keys[n]) && memcmp(s, keys[n], len) == 0,
           "keys: key %d is \"%s\"", n, keys[n]);
        n++;
    }

    is_int(n, 4, "keys: 4 keys read, then the end");
    is_int(off, m.head.targets_len, "keys: the walk ends at targets_len");

    /*
     * The layout is shared memory between generations of workers: seven
     * native 32-bit words, a room message's 64-bit offset at 28 (the
     * registry writes it there), then the targets from byte 36.
     */

    memcpy(&w, buf + 0, 4);
    is_int(w, GOIM_IMSG_KEYS, "layout: type at 0");
    memcpy(&w, buf + 4, 4);
    is_int(w, 1000, "layout: op at 4");
    memcpy(&w, buf + 16, 4);
    is_int(w, 4, "layout: ntargets at 16");
    memcpy(&w, buf + 20, 4);
    is_int(w, m.head.targets_len, "layout: targets_len at 20");
    memcpy(&w, buf + 24, 4);
    is_int(w, 5, "layout: body_len at 24");
    memcpy(&pos, buf + GOIM_IMSG_POS_OFF, 8);
    ok(pos == 0x0000000100000002ULL && GOIM_IMSG_POS_OFF == 28,
       "layout: pos at 28");
    ok(m.head.pos == 0x0000000100000002ULL, "pos: read back");
    memcpy(&w, buf + GOIM_IMSG_STREAM_OFF, 4);
    ok(w == 65535 && GOIM_IMSG_STREAM_OFF == 36, "layout: stream at 36");
    is_int(m.head.stream, 65535, "stream: read back");
    memcpy(&pos, buf + GOIM_IMSG_EPOCH_OFF, 8);
    ok(pos == 1765000000123ULL && GOIM_IMSG_EPOCH_OFF == 40,
       "layout: epoch at 40");
    ok(m.head.epoch == 1765000000123ULL, "epoch: read back");
    ok(m.head.mid == -7 && GOIM_IMSG_MID_OFF == 48, "mid: read back, at 48");
    memcpy(&w, buf + 56, 4);
    is_int(w, 2, "layout: the first key's length at 56");
    is_mem(buf + 60, "k1", 2, "layout: then its bytes");

    /* a kick carries keys the same way */

    keys_message(buf, GOIM_IMSG_KICK, keys, 1, "", &size);
    is_int(goim_imsg_parse(buf, &m), 0, "kick: parsed");
    is_int(m.head.body_len, 0, "kick: no body");

    /* mids, read from an odd address: nothing is loaded in place */

    for (i = 0; i < 70; i++) {
        mids[i] = (i % 2 ? -1 : 1) * ((int64_t) i << 40) + i;
    }

    p = buf + 1;

    head.type = GOIM_IMSG_MIDS;
    head.op = -7;
    head.speed = 0;
    head.pos = 0;
    head.stream = 0;
    head.epoch = 0;
    head.mid = 0;
    head.raw = 1;
    head.ntargets = 70;
    head.targets_len = 70 * sizeof(int64_t);
    head.body_len = 3;

    end = goim_imsg_put_head(p, &head);
    end = goim_imsg_put_mids(end, mids, 70);
    end = goim_imsg_put_body(end, (const unsigned char *) "\x01\x02\x03", 3);

    is_int(end - p, goim_imsg_size(head.targets_len, 3), "mids: size");
    is_int(goim_imsg_parse(p, &m), 0, "mids: parsed at an odd address");
    is_int(m.head.op, -7, "mids: a negative op survives");
    is_int(m.head.raw, 1, "mids: raw");

    memset(got, 0, sizeof(got));
    goim_imsg_mids(&m, 0, 64, got);
    goim_imsg_mids(&m, 64, 6, got + 64);
    is_mem(got, mids, sizeof(mids), "mids: 70 mids read back in two runs");
    is_mem(m.body, "\x01\x02\x03", 3, "mids: body after the mids");

    /* a room: one target */

    head.type = GOIM_IMSG_ROOM;
    head.op = 5;
    head.raw = 0;
    head.ntargets = 1;
    head.targets_len = goim_imsg_str_len(11);
    head.body_len = 0;

    end = goim_imsg_put_head(buf, &head);
    end = goim_imsg_put_str(end, (const unsigned char *) "live://1000", 11);

    is_int(goim_imsg_parse(buf, &m), 0, "room: parsed");
    off = 0;
    ok(goim_imsg_next_str(&m, &off, &s, &len) == 1 && len == 11
       && memcmp(s, "live://1000", 11) == 0, "room: its name");
    is_int(goim_imsg_next_str(&m, &off, &s, &len), 0, "room: only one");

    /* all: no targets, a speed */

    head.type = GOIM_IMSG_ALL;
    head.speed = 500;
    head.ntargets = 0;
    head.targets_len = 0;
    head.body_len = 2;

    end = goim_imsg_put_head(buf, &head);
    end = goim_imsg_put_body(end, (const unsigned char *) "hi", 2);

    is_int(goim_imsg_parse(buf, &m), 0, "all: parsed");
    is_int(m.head.speed, 500, "all: speed");
    is_mem(m.body, "hi", 2, "all: body right after the head");

    /* messages that do not add up are refused */

    head.type = GOIM_IMSG_ALL;
    head.ntargets = 1;
    head.targets_len = 0;
    goim_imsg_put_head(buf, &head);
    is_int(goim_imsg_parse(buf, &m), -1, "all with a target: refused");

    head.type = GOIM_IMSG_MIDS;
    head.ntargets = 3;
    head.targets_len = 3 * 8 - 1;
    goim_imsg_put_head(buf, &head);
    is_int(goim_imsg_parse(buf, &m), -1,
           "mids whose bytes are not 8 per mid: refused");

    head.type = GOIM_IMSG_ROOM;
    head.ntargets = 2;
    head.targets_len = 2 * goim_imsg_str_len(1);
    end = goim_imsg_put_head(buf, &head);
    end = goim_imsg_put_str(end, (const unsigned char *) "a", 1);
    end = goim_imsg_put_str(end, (const unsigned char *) "b", 1);
    is_int(goim_imsg_parse(buf, &m), -1, "a room with two names: refused");

    keys_message(buf, GOIM_IMSG_KEYS, keys, 4, "x", &size);
    memcpy(&w, buf + 20, 4);
    w -= 1;
    memcpy(buf + 20, &w, 4);
    is_int(goim_imsg_parse(buf, &m), -1,
           "keys longer than targets_len: refused");

    keys_message(buf, GOIM_IMSG_KEYS, keys, 4, "x", &size);
    memcpy(&w, buf + 20, 4);
    w += 3;
    memcpy(buf + 20, &w, 4);
    is_int(goim_imsg_parse(buf, &m), -1,
           "bytes left after the last key: refused");

    keys_message(buf, GOIM_IMSG_KEYS, keys, 2, "x", &size);
    w = 0xffffff00;
    memcpy(buf + GOIM_IMSG_HEAD_LEN, &w, 4);
    is_int(goim_imsg_parse(buf, &m), -1,
           "a key length past the targets: refused");

    keys_message(buf, 9, keys, 2, "x", &size);
    is_int(goim_imsg_parse(buf, &m), -1, "an unknown type: refused");

    free(buf);

    return done_testing();
}
