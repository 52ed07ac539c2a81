
/*
 * goim for nginx: the configuration of goim_internal_push locations:
 * goim_internal_secret, and the body buffer sized so that nginx keeps
 * whole bodies in memory.  The HTTP module's location configuration is
 * this one (entry/ngx_goim_http_module.c).
 */


#include "ngx_goim_api.h"

#include <openssl/sha.h>


/* goim_internal_secret: at least 16 bytes; a secret file of at most 4k */
#define NGX_GOIM_INTERNAL_MIN_SECRET   16
#define NGX_GOIM_INTERNAL_MAX_SECRET   4096


static ngx_int_t ngx_goim_internal_read_secret(ngx_conf_t *cf,
    ngx_str_t *path, ngx_str_t *secret);


/*
 * goim_internal_secret <secret> | file:<path>;  the shared secret the job
 * sends in X-Goim-Secret; a file keeps it out of nginx.conf (one trailing
 * newline dropped).  Only its digest is kept.
 */

char *
ngx_goim_internal_secret_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_goim_internal_conf_t  *glcf = conf;

    u_char      *p;
    ngx_str_t   *value, secret, path;
    ngx_uint_t   from_file;

    if (glcf->internal_secret != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    secret = value[1];
    from_file = 0;

    if (secret.len > 5 && ngx_strncmp(secret.data, "file:", 5) == 0) {
        path.data = secret.data + 5;
        path.len = secret.len - 5;

        if (ngx_goim_internal_read_secret(cf, &path, &secret) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        from_file = 1;
    }

    for (p = secret.data; p < secret.data + secret.len; p++) {
        if (*p < 0x21 || *p > 0x7e) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"goim_internal_secret\" must be printable "
                               "ASCII without spaces: it is sent in the "
                               "X-Goim-Secret header");
            goto failed;
        }
    }

    if (secret.len < NGX_GOIM_INTERNAL_MIN_SECRET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"goim_internal_secret\" must be at least %d "
                           "bytes", NGX_GOIM_INTERNAL_MIN_SECRET);
        goto failed;
    }

    glcf->internal_secret = ngx_palloc(cf->pool, SHA256_DIGEST_LENGTH);
    if (glcf->internal_secret == NULL) {
        goto failed;
    }

    SHA256(secret.data, secret.len, glcf->internal_secret);

    if (from_file) {
        ngx_explicit_memzero(secret.data, secret.len);
    }

    return NGX_CONF_OK;

failed:

    if (from_file) {
        ngx_explicit_memzero(secret.data, secret.len);
    }

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_goim_internal_read_secret(ngx_conf_t *cf, ngx_str_t *path,
    ngx_str_t *secret)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, path, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", path);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > NGX_GOIM_INTERNAL_MAX_SECRET)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a secret file of at most %d bytes",
                           path, NGX_GOIM_INTERNAL_MAX_SECRET);
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    secret->data = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    if (secret->data == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, secret->data, ngx_file_size(&fi));
    ngx_close_file(fd);

    if (n != (ssize_t) ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "reading \"%V\" failed", path);
        return NGX_ERROR;
    }

    if (n && secret->data[n - 1] == '\n') {
        n--;

        if (n && secret->data[n - 1] == '\r') {
            n--;
        }
    }

    secret->len = n;

    return NGX_OK;
}


void *
ngx_goim_internal_create_loc_conf(ngx_conf_t *cf)
{
    ngx_goim_internal_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_goim_internal_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->internal_secret = NGX_CONF_UNSET_PTR;

    return conf;
}


/*
 * A goim_internal_push location needs a secret, and keeps whole bodies
 * in memory: client_body_buffer_size is raised to client_max_body_size,
 * so that nginx never writes a body to a temporary file (which would be
 * read back with blocking calls before decoding).
 */

char *
ngx_goim_internal_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_goim_internal_conf_t *prev = parent;
    ngx_goim_internal_conf_t *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_ptr_value(conf->internal_secret, prev->internal_secret,
                             NULL);

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != ngx_goim_internal_handler) {
        return NGX_CONF_OK;
    }

    if (conf->internal_secret == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "goim_internal_push needs goim_internal_secret "
                           "(location \"%V\")", &clcf->name);
        return NGX_CONF_ERROR;
    }

    if (clcf->client_max_body_size == 0
        || clcf->client_body_in_file_only)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "goim_internal_push keeps bodies in memory: it "
                           "needs a client_max_body_size other than 0 and "
                           "client_body_in_file_only off (location \"%V\")",
                           &clcf->name);
        return NGX_CONF_ERROR;
    }

    if ((off_t) clcf->client_body_buffer_size < clcf->client_max_body_size) {
        clcf->client_body_buffer_size = (size_t) clcf->client_max_body_size;
    }

    return NGX_CONF_OK;
}
