/*
 * CityHash32 as published in Google CityHash v1.1 (Geoff Pike, Jyrki
 * Alakuijala), written from the algorithm's description: inputs of up
 * to 24 bytes take one of three short paths, longer ones run a loop over
 * 20-byte blocks seeded from the last 20 bytes.  Words are read little
 * endian byte by byte, so the result does not depend on the host's byte
 * order or alignment.
 */

#include "goim_cityhash.h"


/* the murmur3 constants CityHash32 borrows */
#define GOIM_CITY_C1    0xcc9e2d51u
#define GOIM_CITY_C2    0x1b873593u
#define GOIM_CITY_ADD   0xe6546b64u


static uint32_t goim_city_hash_0to4(const uint8_t *s, size_t len);
static uint32_t goim_city_hash_5to12(const uint8_t *s, size_t len);
static uint32_t goim_city_hash_13to24(const uint8_t *s, size_t len);


static uint32_t
goim_city_fetch(const uint8_t *p)
{
    return (uint32_t) p[0]
           | (uint32_t) p[1] << 8
           | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}


/* CityHash rotates right; every caller passes a constant in 1..31 */
static uint32_t
goim_city_ror(uint32_t v, unsigned n)
{
    return v >> n | v << (32 - n);
}


static uint32_t
goim_city_bswap(uint32_t v)
{
    return v >> 24
           | (v >> 8 & 0x0000ff00u)
           | (v << 8 & 0x00ff0000u)
           | v << 24;
}


/* murmur3's finalizer */
static uint32_t
goim_city_fmix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;

    return h;
}


/* murmur3's per-word scramble: multiply, rotate, multiply */
static uint32_t
goim_city_scramble(uint32_t k)
{
    return goim_city_ror(k * GOIM_CITY_C1, 17) * GOIM_CITY_C2;
}


/* "Mur" in the reference: folds the word k into the state h */
static uint32_t
goim_city_mur(uint32_t k, uint32_t h)
{
    h ^= goim_city_scramble(k);
    h = goim_city_ror(h, 19);

    return h * 5 + GOIM_CITY_ADD;
}


uint32_t
goim_cityhash32(const uint8_t *s, size_t len)
{
    size_t    iters;
    uint32_t  h, g, f, w0, w1, w2, w3, w4, t;

    if (len <= 4) {
        return goim_city_hash_0to4(s, len);
    }

    if (len <= 12) {
        return goim_city_hash_5to12(s, len);
    }

    if (len <= 24) {
        return goim_city_hash_13to24(s, len);
    }

    /*
     * Three lanes seeded from the last 20 bytes: the block loop below
     * always stops short of the last byte, so the tail (partial block
     * or not) is hashed here.  The reference keeps len in 32 bits.
     */

    h = (uint32_t) len;
    g = GOIM_CITY_C1 * (uint32_t) len;
    f = g;

    h = goim_city_mur(goim_city_fetch(s + len - 4), h);
    h = goim_city_mur(goim_city_fetch(s + len - 16), h);

    g = goim_city_mur(goim_city_fetch(s + len - 8), g);
    g = goim_city_mur(goim_city_fetch(s + len - 12), g);

    /* the f lane adds where Mur xors */
    f += goim_city_scramble(goim_city_fetch(s + len - 20));
    f = goim_city_ror(f, 19) * 5 + GOIM_CITY_ADD;

    for (iters = (len - 1) / 20; iters; iters--, s += 20) {

        /* words 1 and 4 enter unscrambled */
        w0 = goim_city_scramble(goim_city_fetch(s));
        w1 = goim_city_fetch(s + 4);
        w2 = goim_city_scramble(goim_city_fetch(s + 8));
        w3 = goim_city_scramble(goim_city_fetch(s + 12));
        w4 = goim_city_fetch(s + 16);

        h = goim_city_ror(h ^ w0, 18) * 5 + GOIM_CITY_ADD;

        f = goim_city_ror(f + w1, 19) * GOIM_CITY_C1;

        g = goim_city_ror(g + w2, 18) * 5 + GOIM_CITY_ADD;

        h = goim_city_ror(h ^ (w3 + w1), 19) * 5 + GOIM_CITY_ADD;

        g = goim_city_bswap(g ^ w4) * 5;

        h = goim_city_bswap(h + w4 * 5);

        f += w0;

        /* rotate the lanes: (f, h, g) <- (g, f, h) */
        t = f;
        f = g;
        g = h;
        h = t;
    }

    g = goim_city_ror(goim_city_ror(g, 11) * GOIM_CITY_C1, 17)
        * GOIM_CITY_C1;
    f = goim_city_ror(goim_city_ror(f, 11) * GOIM_CITY_C1, 17)
        * GOIM_CITY_C1;

    h = goim_city_ror(h + g, 19) * 5 + GOIM_CITY_ADD;
    h = goim_city_ror(h, 17) * GOIM_CITY_C1;
    h = goim_city_ror(h + f, 19) * 5 + GOIM_CITY_ADD;
    h = goim_city_ror(h, 17) * GOIM_CITY_C1;

    return h;
}


static uint32_t
goim_city_hash_0to4(const uint8_t *s, size_t len)
{
    size_t    i;
    uint32_t  b, c, v;

    b = 0;
    c = 9;

    for (i = 0; i < len; i++) {

        /*
         * The reference reads the bytes as signed char, and the Go port
         * as int8: bytes >= 0x80 are sign-extended.
         */

        v = s[i];

        if (v & 0x80) {
            v |= 0xffffff00u;
        }

        b = b * GOIM_CITY_C1 + v;
        c ^= b;
    }

    c = goim_city_mur((uint32_t) len, c);

    return goim_city_fmix(goim_city_mur(b, c));
}


static uint32_t
goim_city_hash_5to12(const uint8_t *s, size_t len)
{
    uint32_t  a, b, c, d;

    a = (uint32_t) len + goim_city_fetch(s);
    b = (uint32_t) len * 5 + goim_city_fetch(s + len - 4);

    /* the middle word: offset 0 below 8 bytes, else 4 */
    c = 9 + goim_city_fetch(s + (len >> 1 & 4));
    d = (uint32_t) len * 5;

    d = goim_city_mur(a, d);
    d = goim_city_mur(b, d);
    d = goim_city_mur(c, d);

    return goim_city_fmix(d);
}


static uint32_t
goim_city_hash_13to24(const uint8_t *s, size_t len)
{
    uint32_t  h;

    /* six overlapping words, from the middle out and the ends in */

    h = (uint32_t) len;

    h = goim_city_mur(goim_city_fetch(s + (len >> 1) - 4), h);
    h = goim_city_mur(goim_city_fetch(s + 4), h);
    h = goim_city_mur(goim_city_fetch(s + len - 8), h);
    h = goim_city_mur(goim_city_fetch(s + (len >> 1)), h);
    h = goim_city_mur(goim_city_fetch(s), h);
    h = goim_city_mur(goim_city_fetch(s + len - 4), h);

    return goim_city_fmix(h);
}
