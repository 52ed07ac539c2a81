/*
 * The comet registry record, Redis comet_<server> (docs/PROTOCOL.md 3.5):
 *
 *     {"server":"comet-a","addr":"http://10.0.0.1:3112/goim/internal/push",
 *      "weight":10,"conn_count":12,"ip_count":10,"addrs":["10.0.0.1"],
 *      "updated":1700000000,"ttl":30,"sessions":"ready"}
 *
 * encoded from and decoded into one struct, with yajl.  Pure C: no nginx,
 * no libevent, no global state.  Strings are (len, data) pairs, so nginx
 * code can fill a record from its ngx_str_t values without copies.
 */

#ifndef GOIM_REGISTRY_H
#define GOIM_REGISTRY_H

#include <stddef.h>
#include <stdint.h>


/* "sessions": absent in records of nodes older than the member */
#define GOIM_REGISTRY_SESSIONS_NONE        0
#define GOIM_REGISTRY_SESSIONS_READY       1
#define GOIM_REGISTRY_SESSIONS_REBUILDING  2
#define GOIM_REGISTRY_SESSIONS_OTHER       3    /* decode: another string */


typedef struct {
    size_t        len;
    const char   *data;
} goim_registry_str_t;

typedef struct {
    goim_registry_str_t   server;       /* data NULL: absent */
    goim_registry_str_t   addr;         /* internal push URL; "" absent */
    int64_t               weight;
    int64_t               conn_count;
    int64_t               ip_count;
    goim_registry_str_t  *addrs;        /* public addresses */
    size_t                naddrs;
    int64_t               updated;      /* Unix seconds */
    int64_t               ttl;          /* seconds; 0: absent */
    int                   sessions;     /* GOIM_REGISTRY_SESSIONS_* */

    void                 *mem;          /* decode's, for goim_registry_free */
} goim_registry_record_t;


/*
 * Writes the record's JSON and a NUL into buf when it fits, like
 * snprintf: returns the JSON's length (without the NUL), which is >= size
 * when buf was too small (nothing written then; call again with a buffer
 * of that length + 1).  "ttl" is left out when 0, "sessions" when NONE
 * (as older nodes wrote it); "server" is "" when absent.  -1 when a
 * string is not UTF-8 (no reader could parse the record) or yajl runs
 * out of memory.
 */
long goim_registry_encode(const goim_registry_record_t *rec, char *buf,
    size_t size);

/*
 * Decodes json[0..len) into rec.  Members that are absent or of another
 * type read as: server NULL, addr "", numbers 0, addrs none; weight,
 * conn_count, ip_count and ttl only count when positive integers.
 * Array elements of "addrs" that are not strings are skipped.  A string
 * ends at a "\u0000" in it.
 *
 * Returns 0 (then goim_registry_free(rec) releases the strings, which
 * live in one allocation of their own, not in json), or -1 with the reason
 * in err ("not JSON: ...", "not a JSON object", "out of memory"; rec is
 * then empty and needs no free).
 */
int goim_registry_decode(goim_registry_record_t *rec, const char *json,
    size_t len, char *err, size_t errlen);

void goim_registry_free(goim_registry_record_t *rec);


#endif /* GOIM_REGISTRY_H */
