
/*
 * goim for nginx: the stream module.  "goim_tcp;" in a stream server
 * makes its connections goim connections (transport/ngx_goim_tcp.c);
 * goim_max_clients is checked in the preaccess phase; $goim_mid,
 * $goim_key and $goim_room serve the access log.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_goim_transport.h"
#include "ngx_goim_push.h"


static char *ngx_stream_goim_tcp(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_stream_goim_admit(ngx_stream_session_t *s);
static ngx_int_t ngx_stream_goim_init(ngx_conf_t *cf);
static ngx_int_t ngx_stream_goim_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_stream_goim_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);


#define NGX_GOIM_VAR_MID   0
#define NGX_GOIM_VAR_KEY   1
#define NGX_GOIM_VAR_ROOM  2


static ngx_stream_variable_t  ngx_stream_goim_vars[] = {

    { ngx_string("goim_mid"), NULL, ngx_stream_goim_variable,
      NGX_GOIM_VAR_MID, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("goim_key"), NULL, ngx_stream_goim_variable,
      NGX_GOIM_VAR_KEY, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("goim_room"), NULL, ngx_stream_goim_variable,
      NGX_GOIM_VAR_ROOM, NGX_STREAM_VAR_NOCACHEABLE, 0 },

      ngx_stream_null_variable
};


static ngx_command_t  ngx_stream_goim_commands[] = {

    { ngx_string("goim_tcp"),
      NGX_STREAM_SRV_CONF|NGX_CONF_NOARGS,
      ngx_stream_goim_tcp,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_goim_module_ctx = {
    ngx_stream_goim_add_variables,         /* preconfiguration */
    ngx_stream_goim_init,                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL                                   /* merge server configuration */
};


ngx_module_t  ngx_stream_goim_module = {
    NGX_MODULE_V1,
    &ngx_stream_goim_module_ctx,           /* module context */
    ngx_stream_goim_commands,              /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static char *
ngx_stream_goim_tcp(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_core_srv_conf_t  *cscf;

    cscf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_core_module);

    if (cscf->handler) {
        return "is duplicate or conflicts with another content handler";
    }

    cscf->handler = ngx_goim_tcp_handler;

    return NGX_CONF_OK;
}


/*
 * goim_max_clients, checked in the preaccess phase (where limit_conn is):
 * a refused connection is closed at once, before a TLS handshake.
 */

static ngx_int_t
ngx_stream_goim_admit(ngx_stream_session_t *s)
{
    ngx_int_t                    rc;
    ngx_stream_core_srv_conf_t  *cscf;

    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_core_module);

    if (cscf->handler != ngx_goim_tcp_handler) {
        return NGX_DECLINED;
    }

    rc = ngx_goim_client_admit(s->connection);

    if (rc == NGX_DECLINED) {
        return NGX_STREAM_SERVICE_UNAVAILABLE;
    }

    if (rc != NGX_OK) {
        return NGX_STREAM_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_stream_goim_init(ngx_conf_t *cf)
{
    ngx_stream_handler_pt        *h;
    ngx_stream_core_main_conf_t  *cmcf;

    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_goim_admit;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_goim_add_variables(ngx_conf_t *cf)
{
    ngx_stream_variable_t  *var, *v;

    for (v = ngx_stream_goim_vars; v->name.len; v++) {
        var = ngx_stream_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* $goim_mid, $goim_key, $goim_room: for stream access logs */

static ngx_int_t
ngx_stream_goim_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    u_char              *p;
    ngx_str_t            value;
    ngx_goim_channel_t  *ch;

    ch = ngx_stream_get_module_ctx(s, ngx_stream_goim_module);

    if (ch == NULL || ch->key_node.str.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_GOIM_VAR_MID:
        p = ngx_pnalloc(s->connection->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "%L", ch->mid) - p;
        break;

    case NGX_GOIM_VAR_KEY:
        value = ch->key_node.str;
        break;

    default: /* NGX_GOIM_VAR_ROOM */
        value = ch->room ? ch->room->hn.str : ch->last_room;
        break;
    }

    v->len = value.len;
    v->data = value.data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
