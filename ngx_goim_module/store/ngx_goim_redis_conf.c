
/*
 * goim for nginx: the configuration of the Redis connection:
 * goim_redis, goim_redis_timeout, goim_session_ttl.  A host name is
 * resolved here, when nginx reads its configuration: hiredis would
 * resolve it in the worker, blocking.
 */


#include "ngx_goim_redis.h"


#define NGX_GOIM_REDIS_PORT         6379


static ngx_goim_redis_conf_t *ngx_goim_redis_get_conf(ngx_conf_t *cf,
    ngx_goim_conf_t *gcf);
static char *ngx_goim_redis_time(ngx_conf_t *cf, ngx_uint_t unset,
    ngx_uint_t is_sec, ngx_int_t *n);


static ngx_goim_redis_conf_t *
ngx_goim_redis_get_conf(ngx_conf_t *cf, ngx_goim_conf_t *gcf)
{
    ngx_goim_redis_conf_t  *rcf;

    if (gcf->redis) {
        return gcf->redis;
    }

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_goim_redis_conf_t));
    if (rcf == NULL) {
        return NULL;
    }

    rcf->db = 0;
    rcf->timeout = NGX_CONF_UNSET_MSEC;
    rcf->session_ttl = NGX_CONF_UNSET;

    gcf->redis = rcf;

    return rcf;
}


/* goim_redis host:port | unix:/path [password=secret] [db=N]; */

char *
ngx_goim_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_conf_t  *gcf = conf;

    u_char                 *p;
    size_t                  len;
    ngx_url_t               u;
    ngx_str_t              *value;
    ngx_uint_t              i;
    ngx_goim_redis_conf_t  *rcf;
    u_char                  text[NGX_SOCKADDR_STRLEN];

    rcf = ngx_goim_redis_get_conf(cf, gcf);
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (rcf->name.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    rcf->name = value[1];

    if (value[1].len > 5 && ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        len = value[1].len - 5;
        p = ngx_pnalloc(cf->pool, len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, value[1].data + 5, len);
        p[len] = '\0';

        rcf->host.data = p;
        rcf->host.len = len;
        rcf->port = 0;

    } else {
        /* resolved here: hiredis would resolve a name in the worker */
        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = value[1];
        u.default_port = NGX_GOIM_REDIS_PORT;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s in \"%V\"",
                               u.err ? u.err : "host not found", &value[1]);
            return NGX_CONF_ERROR;
        }

        len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, text,
                            NGX_SOCKADDR_STRLEN, 0);

        p = ngx_pnalloc(cf->pool, len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, text, len);
        p[len] = '\0';

        rcf->host.data = p;
        rcf->host.len = len;
        rcf->port = u.port;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "password=", 9) == 0
            && value[i].len > 9)
        {
            rcf->password.len = value[i].len - 9;
            rcf->password.data = value[i].data + 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            rcf->db = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (rcf->db == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid database number \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the non-zero time of goim_redis_timeout or goim_session_ttl */

static char *
ngx_goim_redis_time(ngx_conf_t *cf, ngx_uint_t unset, ngx_uint_t is_sec,
    ngx_int_t *n)
{
    ngx_str_t  *value;

    if (!unset) {
        return "is duplicate";
    }

    value = cf->args->elts;

    *n = ngx_parse_time(&value[1], is_sec);
    if (*n == NGX_ERROR || *n == 0) {
        return is_sec ? "invalid value, must be at least 1s"
                      : "invalid value, must be a positive time";
    }

    return NGX_CONF_OK;
}


/* goim_redis_timeout time; */

char *
ngx_goim_redis_timeout_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char                   *rv;
    ngx_int_t               n;
    ngx_goim_redis_conf_t  *rcf;

    rcf = ngx_goim_redis_get_conf(cf, conf);
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    rv = ngx_goim_redis_time(cf, rcf->timeout == NGX_CONF_UNSET_MSEC, 0, &n);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rcf->timeout = (ngx_msec_t) n;

    return NGX_CONF_OK;
}


/* goim_session_ttl time; whole seconds, as Redis' EXPIRE takes them */

char *
ngx_goim_session_ttl_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char                   *rv;
    ngx_int_t               n;
    ngx_goim_redis_conf_t  *rcf;

    rcf = ngx_goim_redis_get_conf(cf, conf);
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    rv = ngx_goim_redis_time(cf, rcf->session_ttl == NGX_CONF_UNSET, 1, &n);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rcf->session_ttl = (time_t) n;

    return NGX_CONF_OK;
}


ngx_goim_redis_conf_t *
ngx_goim_redis_conf(void)
{
    return ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle)->redis;
}
