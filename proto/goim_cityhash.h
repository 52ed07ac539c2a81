/*
 * CityHash32 (Google CityHash v1.1), the hash goim uses for its 64-shard
 * online hash in Redis, ol_<server> field CityHash32(roomKey) % 64
 * (docs/PROTOCOL.md 3.4), and for its comet buckets.  Bit-exact with goim's Go
 * port (zhenjl/cityhash) so that Go and C logics can share one Redis.
 * Pure C, no nginx headers.
 */

#ifndef GOIM_CITYHASH_H
#define GOIM_CITYHASH_H

#include <stddef.h>
#include <stdint.h>


#define GOIM_ONLINE_SHARDS  64


/* CityHash32 of s[0..len); s may be NULL when len is 0. */
uint32_t goim_cityhash32(const uint8_t *s, size_t len);


#endif /* GOIM_CITYHASH_H */
