/*
 * HTTP query strings for goim's API (docs/PROTOCOL.md 2.1): repeated
 * parameters, percent-decoding, integer binding as gin does it.  Pure C.
 */

#ifndef GOIM_QUERY_H
#define GOIM_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "goim_util.h"


typedef struct {
    const char  *name;          /* decoded, points into the caller's buf */
    size_t       name_len;
    const char  *value;         /* decoded, points into the caller's buf */
    size_t       value_len;
} goim_query_param_t;


/*
 * Splits q[0..len) on '&' into name=value pairs, decoding %XX and '+'
 * into buf (which must hold len bytes).  Empty pairs are skipped; a pair
 * without '=' has an empty value.  Returns the number of parameters, or
 * -1 on a malformed escape, -2 when there are more than max parameters.
 */
int goim_query_parse(const char *q, size_t len, char *buf,
    goim_query_param_t *params, size_t max);

/* The first value of name, or NULL; *len receives its length. */
const char *goim_query_get(const goim_query_param_t *params, int n,
    const char *name, size_t *len);

/*
 * Integer binding for the parameters: goim_parse_int32(),
 * goim_parse_int64() and goim_parse_int() of goim_util.h.
 */


#endif /* GOIM_QUERY_H */
