
/*
 * goim for nginx: the HTTP module.  Its location directives hand
 * requests to the WebSocket comet (transport/), the logic API, the
 * internal push endpoint and the status page (logic/).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_transport.h"
#include "ngx_goim_api.h"


static char *ngx_http_goim_set_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_goim_commands[] = {

    { ngx_string("goim_websocket"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_goim_ws_handler },

    { ngx_string("goim_logic_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_goim_api_handler },

    { ngx_string("goim_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_goim_status_handler },

    { ngx_string("goim_internal_push"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) ngx_goim_internal_handler },

    { ngx_string("goim_internal_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_goim_internal_secret_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_goim_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_goim_internal_create_loc_conf,     /* create location configuration */
    ngx_goim_internal_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_goim_module = {
    NGX_MODULE_V1,
    &ngx_http_goim_module_ctx,             /* module context */
    ngx_http_goim_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
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
ngx_http_goim_set_handler(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate or conflicts with another content handler";
    }

    clcf->handler = (ngx_http_handler_pt) cmd->post;

    return NGX_CONF_OK;
}
