/*
 * CityHash32 (docs/PROTOCOL.md 3.4): goim's own vectors with their online
 * shard (% 64), then every length 0..100 against Google's published
 * CityHash32 values, which cover each code path and its boundaries:
 * 0-4 (bytes >= 0x80 sign-extended), 5-12, 13-24, and the block loop
 * with 1..5 blocks (25, 40/41, 60/61, 80/81, 100).
 */

#include <stdlib.h>
#include <string.h>

#include "goim_cityhash.h"
#include "tap.h"


#define REF_MAX_LEN  100
#define REF_SIZE     (REF_MAX_LEN * REF_MAX_LEN + REF_MAX_LEN)


/* docs/PROTOCOL.md 3.4: what goim's Go port (zhenjl/cityhash) returns */
static const struct {
    const char  *in;
    uint32_t     hash;
    unsigned     shard;
} goim_vectors[] = {
    { "", 3696677242u, 58 },
    { "a", 1016544589u, 13 },
    { "live://1000", 1126145323u, 43 },
    { "test://1", 4274401948u, 28 },
    { "live://1", 1096265235u, 19 },
    { "hello world", 430397466u, 26 },
    { "abcdefghijklmnopqrstuvwxyz0123456789", 4136682430u, 62 },
    { "0123456789abcdefghij0123456789abcdefghij0123456789", 1702510505u,
      41 },
};


/*
 * Google CityHash v1.1, src/city-test.cc (github.com/google/cityhash,
 * commit 0469694 "v 1.1"): the last column of testdata[i] is
 * CityHash32(data + i * i, i), data being the pseudorandom bytes that
 * ref_setup() rebuilds.  zhenjl/cityhash's cityhash_test.go checks its
 * CityHash32 against the same column.
 */
static const uint32_t ref_hash[REF_MAX_LEN + 1] = {
    0xdc56d17a, 0x99929334, 0x4252edb7, 0xebc34f3c, 0x26f2b463,
    0xb042c047, 0xe73bb0a8, 0x91dfdd75, 0xc87f95de, 0x3f5538ef,
    0x70eb1a1f, 0xcfd63b83, 0x894a52ef, 0x9cde6a54, 0x6c4898d5,
    0x13e1978e, 0x051b4ba8, 0xb6b06e40, 0x0240a2f2, 0x5dcefc30,
    0x7a48b105, 0xfd55007b, 0x6b95894c, 0x3360e827, 0x45177e0b,
    0x7c6fffe4, 0xbbc78da4, 0xc5c25d39, 0xb6e5d06e, 0x6178504e,
    0xbd4c3637, 0x6e7ac474, 0x1fb4b518, 0x31d13d6d, 0x26fa72e3,
    0x6a7433bf, 0x4e6df758, 0xd57f63ea, 0x52ef73b3, 0x03cb36c3,
    0x72c39bea, 0xa65aa25c, 0x74740539, 0xc3ae3c26, 0xf29db8a2,
    0x1ef4cbf4, 0xa9be6c41, 0x0fa31801, 0x8331c5d8, 0xe9876db8,
    0x27b0604e, 0xdcec07f2, 0xcff0a82a, 0xfec83621, 0x0743d8dc,
    0x64d41d26, 0xacd90c81, 0x7c746a4b, 0xb1047e99, 0xd1fd1068,
    0x56486077, 0x6069be80, 0x2078359b, 0x9ea21004, 0x9c9cfe88,
    0xb70a6ddd, 0xdea37298, 0x8f480819, 0x030b3b16, 0xf31bc4e8,
    0x419f953b, 0x20e9e76d, 0x646f0ff8, 0xeeb7eca8, 0x08112bb9,
    0x85a6d477, 0x56f76c84, 0x9af45d55, 0xd1c33760, 0xc56bbf69,
    0xabecfb9b, 0x8de13255, 0xa98ee299, 0x3015f556, 0x5a430e29,
    0x2797add0, 0x27d55016, 0x84945a82, 0x3ef7e224, 0x35ed8dc8,
    0x6a75e43d, 0x235d9805, 0xf7d69572, 0xbacd0199, 0xe428f50e,
    0x81eaaad3, 0xaddbd3e3, 0xe66dbca0, 0xafe11fd5, 0xa71a406f,
    0x9d90eaf5,
};


static uint8_t  ref_data[REF_SIZE];


/* city-test.cc's setup(), for the first REF_SIZE bytes */
static void
ref_setup(void)
{
    size_t    i;
    uint64_t  a, b;

    a = 9;
    b = 777;

    for (i = 0; i < REF_SIZE; i++) {
        a += b;
        b += a;
        a = (a ^ (a >> 41)) * 0xc3a5c85c97cb3127ull;
        b = (b ^ (b >> 41)) * 0xc3a5c85c97cb3127ull + i;
        ref_data[i] = (uint8_t) (b >> 37);
    }
}


static void
test_goim_vectors(void)
{
    size_t       i, len;
    uint32_t     h;
    const char  *in;

    for (i = 0; i < sizeof(goim_vectors) / sizeof(goim_vectors[0]); i++) {
        in = goim_vectors[i].in;
        len = strlen(in);

        h = goim_cityhash32((const uint8_t *) in, len);

        is_int(h, goim_vectors[i].hash, "goim: \"%s\" (%zu bytes)", in, len);
        is_int(h % GOIM_ONLINE_SHARDS, goim_vectors[i].shard,
               "goim: \"%s\" is in online shard %u", in,
               goim_vectors[i].shard);
    }

    is_int(goim_cityhash32(NULL, 0), 0xdc56d17a, "NULL, 0 hashes as \"\"");
}


static void
test_reference(void)
{
    int       high;
    size_t    len, i;

    ref_setup();

    for (len = 0; len <= REF_MAX_LEN; len++) {
        is_int(goim_cityhash32(ref_data + len * len, len), ref_hash[len],
               "city-test.cc: %zu bytes at offset %zu", len, len * len);
    }

    /* make sure the 0-4 inputs above took the sign-extension branch */
    high = 0;

    for (len = 1; len <= 4; len++) {
        for (i = 0; i < len; i++) {
            high |= ref_data[len * len + i] & 0x80;
        }
    }

    ok(high, "a 1-4 byte reference input has a byte >= 0x80");
}


static void
test_placement(void)
{
    size_t    len;
    uint8_t  *p;
    int       same;

    /* the same bytes at another alignment, followed by other bytes */
    p = malloc(REF_MAX_LEN + 8);
    if (p == NULL) {
        ok(0, "malloc");
        return;
    }

    same = 1;

    for (len = 0; len <= REF_MAX_LEN; len++) {
        memset(p, 0xa5, REF_MAX_LEN + 8);
        memcpy(p + 3, ref_data + len * len, len);

        if (goim_cityhash32(p + 3, len) != ref_hash[len]) {
            diag("length %zu differs at offset 3", len);
            same = 0;
        }
    }

    ok(same, "unaligned input, trailing bytes ignored");

    free(p);
}


int
main(void)
{
    test_goim_vectors();
    test_reference();
    test_placement();

    return done_testing();
}
