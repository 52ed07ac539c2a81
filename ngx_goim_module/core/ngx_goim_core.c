
/*
 * goim for nginx: the core floor's helpers.  The configuration and the
 * node's mode, this worker's registry slot and counters, events that
 * are not connections', and small parsers.
 */


#include "ngx_goim_core.h"

#include <sys/random.h>

#include <goim_query.h>


ngx_goim_worker_t  ngx_goim_worker;


/* what the debug log reads as an event's connection (fd -1) */
static ngx_connection_t  ngx_goim_dummy_connection;


ngx_goim_conf_t *
ngx_goim_get_conf(ngx_cycle_t *cycle)
{
    return (ngx_goim_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_goim_module);
}


/* decided by the core module's init_conf (entry/ngx_goim_module.c) */

ngx_goim_mode_e
ngx_goim_mode(void)
{
    return ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle)->mode;
}


void
ngx_goim_core_init(void)
{
    ngx_goim_worker_t  *w = &ngx_goim_worker;

    ngx_memzero(w, sizeof(ngx_goim_worker_t));

    w->widx = -1;
    w->stats = &w->local_stats;
}


/*
 * nginx's debug log names a timer by ((ngx_connection_t *) ev->data)->fd:
 * an event whose data were our own state would be read past its end.
 * Handlers find their state from the event's address instead.
 */

void
ngx_goim_event_init(ngx_event_t *ev, ngx_event_handler_pt handler,
    ngx_log_t *log, ngx_uint_t cancelable)
{
    ngx_goim_dummy_connection.fd = (ngx_socket_t) -1;

    ev->handler = handler;
    ev->log = log;
    ev->data = &ngx_goim_dummy_connection;
    ev->cancelable = cancelable;
}


ngx_str_node_t *
ngx_goim_str_lookup(ngx_rbtree_t *tree, u_char *s, size_t len)
{
    ngx_str_t  str;

    str.data = s;
    str.len = len;

    return ngx_str_rbtree_lookup(tree, &str, ngx_crc32_long(s, len));
}


/* goim's logic generates a UUIDv4 for an empty key: 36 bytes */

void
ngx_goim_uuid4(u_char *dst)
{
    u_char        b[16];
    ngx_uint_t    i;
    static u_char hex[] = "0123456789abcdef";

    if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b)) {
        /* getrandom() only fails before the entropy pool is ready */
        for (i = 0; i < sizeof(b); i++) {
            b[i] = (u_char) ngx_random();
        }
    }

    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            *dst++ = '-';
        }

        *dst++ = hex[b[i] >> 4];
        *dst++ = hex[b[i] & 0x0f];
    }
}


/* "1000,1001": goim's strings.Split + ParseInt(.., 32); "" is no ops */

ngx_int_t
ngx_goim_parse_ops(u_char *p, size_t len, int32_t *ops, ngx_uint_t max,
    ngx_uint_t *n)
{
    u_char   *last, *comma;
    int32_t   op;

    *n = 0;

    if (len == 0) {
        return NGX_OK;
    }

    last = p + len;

    for ( ;; ) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (goim_parse_int32((const char *) p, comma - p, &op) != 0) {
            return NGX_ERROR;
        }

        if (*n == max) {
            return NGX_ERROR;
        }

        ops[(*n)++] = op;

        if (comma == last) {
            return NGX_OK;
        }

        p = comma + 1;
    }
}
