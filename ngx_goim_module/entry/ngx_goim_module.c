
/*
 * goim for nginx: the core module.  Main-context directives shared by the
 * TCP and WebSocket comets and the logic API, the configuration's
 * defaults and checks, and each worker's start and end: every floor's
 * init in order, bottom up, and their exits top down.
 */


#include "ngx_goim_core.h"
#include "ngx_goim_registry.h"
#include "ngx_goim_ipc.h"
#include "ngx_goim_connection.h"
#include "ngx_goim_push.h"
#include "ngx_goim_redis.h"
#include "ngx_goim_kafka.h"
#include "ngx_goim_comet.h"

#include <goim_jwt.h>


static void *ngx_goim_create_conf(ngx_cycle_t *cycle);
static char *ngx_goim_init_conf(ngx_cycle_t *cycle, void *conf);
static char *ngx_goim_send_queue(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_goim_auth_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_goim_client_ports(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_goim_max_clients(ngx_cycle_t *cycle,
    ngx_goim_conf_t *gcf);
static ngx_int_t ngx_goim_init_process(ngx_cycle_t *cycle);
static void ngx_goim_exit_process(ngx_cycle_t *cycle);



static ngx_conf_num_bounds_t  ngx_goim_max_body_bounds = {
    ngx_conf_check_num_bounds, 16, 1024 * 1024
};


static ngx_command_t  ngx_goim_commands[] = {

    { ngx_string("goim_handshake_timeout"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_conf_t, handshake_timeout),
      NULL },

    { ngx_string("goim_heartbeat"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_conf_t, heartbeat),
      NULL },

    { ngx_string("goim_heartbeat_max"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_conf_t, heartbeat_max),
      NULL },

    { ngx_string("goim_max_body"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      0,
      offsetof(ngx_goim_conf_t, max_body),
      &ngx_goim_max_body_bounds },

    { ngx_string("goim_send_queue"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE2,
      ngx_goim_send_queue,
      0,
      0,
      NULL },

    { ngx_string("goim_zone"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE2,
      ngx_goim_registry_zone_directive,
      0,
      0,
      NULL },

    { ngx_string("goim_worker_slots"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_conf_t, worker_slots),
      NULL },

    { ngx_string("goim_inbox_size"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_conf_t, inbox_size),
      NULL },

    { ngx_string("goim_history"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE123,
      ngx_goim_registry_history_directive,
      0,
      0,
      NULL },

    { ngx_string("goim_room_flush"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_conf_t, room_flush),
      NULL },

    { ngx_string("goim_max_rooms"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_conf_t, max_rooms),
      NULL },

    { ngx_string("goim_presence"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      0,
      offsetof(ngx_goim_conf_t, presence),
      NULL },

    { ngx_string("goim_presence_events"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_conf_t, presence_events),
      NULL },

    { ngx_string("goim_shutdown_drain"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_conf_t, shutdown_drain),
      NULL },

    { ngx_string("goim_max_clients"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_conf_t, max_clients),
      NULL },

    { ngx_string("goim_io_uring"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      0,
      offsetof(ngx_goim_conf_t, io_uring),
      NULL },

    { ngx_string("goim_auth_secret"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_goim_auth_secret,
      0,
      0,
      NULL },

    { ngx_string("goim_server_id"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      0,
      offsetof(ngx_goim_conf_t, server_id),
      NULL },

    { ngx_string("goim_redis"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE123,
      ngx_goim_redis_directive,
      0,
      0,
      NULL },

    { ngx_string("goim_redis_timeout"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_goim_redis_timeout_directive,
      0,
      0,
      NULL },

    { ngx_string("goim_session_ttl"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_goim_session_ttl_directive,
      0,
      0,
      NULL },

    { ngx_string("goim_online_interval"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_conf_t, online_interval),
      NULL },

    { ngx_string("goim_registry_ttl"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      0,
      offsetof(ngx_goim_conf_t, registry_ttl),
      NULL },

    { ngx_string("goim_internal_url"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      0,
      offsetof(ngx_goim_conf_t, internal_url),
      NULL },

    { ngx_string("goim_weight"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_conf_t, weight),
      NULL },

    { ngx_string("goim_public_addrs"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      0,
      offsetof(ngx_goim_conf_t, public_addrs),
      NULL },

    { ngx_string("goim_domain"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      0,
      offsetof(ngx_goim_conf_t, domain),
      NULL },

    { ngx_string("goim_kafka"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE123,
      ngx_goim_kafka_directive,
      0,
      0,
      NULL },

    { ngx_string("goim_kafka_option"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE2,
      ngx_goim_kafka_option_directive,
      0,
      0,
      NULL },

    { ngx_string("goim_client_ports"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE3,
      ngx_goim_client_ports,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_core_module_t  ngx_goim_module_ctx = {
    ngx_string("goim"),
    ngx_goim_create_conf,
    ngx_goim_init_conf
};


ngx_module_t  ngx_goim_module = {
    NGX_MODULE_V1,
    &ngx_goim_module_ctx,                  /* module context */
    ngx_goim_commands,                     /* module directives */
    NGX_CORE_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_goim_init_process,                 /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_goim_exit_process,                 /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_goim_create_conf(ngx_cycle_t *cycle)
{
    ngx_goim_conf_t  *gcf;

    gcf = ngx_pcalloc(cycle->pool, sizeof(ngx_goim_conf_t));
    if (gcf == NULL) {
        return NULL;
    }

    gcf->handshake_timeout = NGX_CONF_UNSET_MSEC;
    gcf->heartbeat = NGX_CONF_UNSET_MSEC;
    gcf->heartbeat_max = NGX_CONF_UNSET_UINT;
    gcf->max_body = NGX_CONF_UNSET_SIZE;
    gcf->queue_packets = NGX_CONF_UNSET_UINT;
    gcf->queue_bytes = NGX_CONF_UNSET_SIZE;
    gcf->worker_slots = NGX_CONF_UNSET_UINT;
    gcf->inbox_size = NGX_CONF_UNSET_UINT;
    gcf->room_flush = NGX_CONF_UNSET_MSEC;
    gcf->history_size = NGX_CONF_UNSET_UINT;
    gcf->history_ttl = NGX_CONF_UNSET;
    gcf->history_members = NGX_CONF_UNSET;
    gcf->max_rooms = NGX_CONF_UNSET_UINT;
    gcf->presence = NGX_CONF_UNSET;
    gcf->presence_events = NGX_CONF_UNSET_UINT;
    gcf->shutdown_drain = NGX_CONF_UNSET_MSEC;
    gcf->max_clients = NGX_CONF_UNSET_UINT;
    gcf->io_uring = NGX_CONF_UNSET;
    gcf->online_interval = NGX_CONF_UNSET_MSEC;
    gcf->registry_ttl = NGX_CONF_UNSET;
    gcf->weight = NGX_CONF_UNSET_UINT;
    gcf->client_ports[0] = NGX_CONF_UNSET;

    return gcf;
}


static char *
ngx_goim_init_conf(ngx_cycle_t *cycle, void *conf)
{
    ngx_goim_conf_t  *gcf = conf;

    ngx_conf_init_msec_value(gcf->handshake_timeout, 8000);
    ngx_conf_init_msec_value(gcf->heartbeat, 4 * 60 * 1000);
    ngx_conf_init_uint_value(gcf->heartbeat_max, 2);
    ngx_conf_init_size_value(gcf->max_body, GOIM_DEFAULT_MAX_BODY);
    ngx_conf_init_uint_value(gcf->queue_packets, 256);
    ngx_conf_init_size_value(gcf->queue_bytes, 256 * 1024);
    ngx_conf_init_uint_value(gcf->inbox_size, 4096);
    ngx_conf_init_msec_value(gcf->room_flush, 100);
    ngx_conf_init_uint_value(gcf->history_size, 0);
    ngx_conf_init_value(gcf->history_ttl, 600);
    ngx_conf_init_value(gcf->history_members, 0);
    ngx_conf_init_uint_value(gcf->max_rooms, 16);
    ngx_conf_init_value(gcf->presence, 0);
    ngx_conf_init_uint_value(gcf->presence_events, 0);
    ngx_conf_init_msec_value(gcf->shutdown_drain, 30000);
    ngx_conf_init_value(gcf->io_uring, 1);
    ngx_conf_init_msec_value(gcf->online_interval, 10000);
    ngx_conf_init_value(gcf->registry_ttl, 30);
    ngx_conf_init_uint_value(gcf->weight, 10);

    if (gcf->client_ports[0] == NGX_CONF_UNSET) {
        /* goim's defaults (docs/PROTOCOL.md 2.9) */
        gcf->client_ports[0] = 3101;
        gcf->client_ports[1] = 3102;
        gcf->client_ports[2] = 3103;
    }

    /* the record is renewed every interval: it must outlive one */
    if (gcf->online_interval == 0
        || (ngx_msec_t) gcf->registry_ttl * 1000 <= gcf->online_interval)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"goim_registry_ttl\" must be longer than "
                      "\"goim_online_interval\"");
        return NGX_CONF_ERROR;
    }

    if (gcf->room_flush > 1000) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"goim_room_flush\" must be at most 1s");
        return NGX_CONF_ERROR;
    }

    if (gcf->max_rooms == 0 || gcf->max_rooms > NGX_GOIM_MAX_ROOMS) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"goim_max_rooms\" must be between 1 and %d",
                      NGX_GOIM_MAX_ROOMS);
        return NGX_CONF_ERROR;
    }

    if (ngx_goim_max_clients(cycle, gcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (gcf->inbox_size < 16) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"goim_inbox_size\" must be at least 16");
        return NGX_CONF_ERROR;
    }

    if (ngx_goim_registry_slots_conf(cycle, gcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (gcf->zone == NULL
        && ngx_goim_registry_zone_default(cycle, gcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (gcf->heartbeat_max == 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"goim_heartbeat_max\" must be at least 1");
        return NGX_CONF_ERROR;
    }

    if (gcf->server_id.len == 0) {
        /* goim's default server id is the host name */
        gcf->server_id = cycle->hostname;
    }

    if (ngx_goim_kafka_init_conf(cycle, gcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /* decided once: every floor asks ngx_goim_mode() */
    gcf->mode = gcf->kafka ? NGX_GOIM_KAFKA
                : (gcf->redis && gcf->redis->name.len) ? NGX_GOIM_REDIS
                : NGX_GOIM_EMBEDDED;

    return NGX_CONF_OK;
}


/*
 * goim_max_clients: by default worker_connections less a reserve for the
 * API, internal pushes, the status page, the listening sockets and the
 * Redis, Kafka and wake-up connections: 5% of worker_connections, but at
 * least 64 (a quarter of it when that is less).  The events block is
 * parsed by now, so cycle->connection_n is worker_connections.
 */

static ngx_int_t
ngx_goim_max_clients(ngx_cycle_t *cycle, ngx_goim_conf_t *gcf)
{
    ngx_uint_t  n, reserve;

    n = cycle->connection_n;

    if (gcf->max_clients == NGX_CONF_UNSET_UINT) {
        reserve = ngx_max(n / 20, ngx_min(64, n / 4));
        gcf->max_clients = n > reserve ? n - reserve : 1;
        return NGX_OK;
    }

    if (gcf->max_clients == 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"goim_max_clients\" must be at least 1");
        return NGX_ERROR;
    }

    if (gcf->max_clients >= n) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "\"goim_max_clients\" %ui leaves no connection of "
                      "\"worker_connections\" %ui for the API",
                      gcf->max_clients, n);
    }

    return NGX_OK;
}


/* goim_send_queue <packets> <size>; */

static char *
ngx_goim_send_queue(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_conf_t  *gcf = conf;

    ngx_int_t   n;
    ssize_t     size;
    ngx_str_t  *value;

    if (gcf->queue_packets != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid packet count \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    size = ngx_parse_size(&value[2]);
    if (size == NGX_ERROR || size < 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid queue size \"%V\", at least 1k",
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    gcf->queue_packets = n;
    gcf->queue_bytes = size;

    return NGX_CONF_OK;
}


/* goim_client_ports tcp ws wss; the ports /goim/nodes/weighted tells */

static char *
ngx_goim_client_ports(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_conf_t  *gcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (gcf->client_ports[0] != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; i < 3; i++) {
        n = ngx_atoi(value[i + 1].data, value[i + 1].len);

        if (n == NGX_ERROR || n > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid port \"%V\"", &value[i + 1]);
            return NGX_CONF_ERROR;
        }

        gcf->client_ports[i] = n;
    }

    return NGX_CONF_OK;
}


/*
 * goim_auth_secret <secret> | file:<path>;  an HS256 key of at least 32
 * bytes; a file keeps it out of nginx.conf (one trailing newline dropped).
 */

static char *
ngx_goim_auth_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_conf_t  *gcf = conf;

    ssize_t          n;
    ngx_fd_t         fd;
    ngx_str_t       *value, path;
    ngx_file_info_t  fi;

    if (gcf->auth_secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    gcf->auth_secret = value[1];

    if (value[1].len > 5 && ngx_strncmp(value[1].data, "file:", 5) == 0) {
        path.data = value[1].data + 5;
        path.len = value[1].len - 5;

        if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
        if (fd == NGX_INVALID_FILE) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               ngx_open_file_n " \"%V\" failed", &path);
            return NGX_CONF_ERROR;
        }

        if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
            || ngx_file_size(&fi) > 4096)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is not a secret file of at most 4k",
                               &path);
            ngx_close_file(fd);
            return NGX_CONF_ERROR;
        }

        gcf->auth_secret.data = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
        if (gcf->auth_secret.data == NULL) {
            ngx_close_file(fd);
            return NGX_CONF_ERROR;
        }

        n = ngx_read_fd(fd, gcf->auth_secret.data, ngx_file_size(&fi));
        ngx_close_file(fd);

        if (n != (ssize_t) ngx_file_size(&fi)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "reading \"%V\" failed", &path);
            return NGX_CONF_ERROR;
        }

        if (n && gcf->auth_secret.data[n - 1] == '\n') {
            n--;
        }

        gcf->auth_secret.len = n;
    }

    if (gcf->auth_secret.len < GOIM_JWT_MIN_SECRET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"goim_auth_secret\" must be at least %d bytes",
                           GOIM_JWT_MIN_SECRET);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_goim_init_process(ngx_cycle_t *cycle)
{
    ngx_goim_core_init();

    if (ngx_goim_connection_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the cache manager and loader processes hold no connections */
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    if (ngx_goim_registry_attach(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_goim_ipc_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_goim_push_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_goim_store_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_goim_comet_init(cycle);
}


static void
ngx_goim_exit_process(ngx_cycle_t *cycle)
{
    ngx_goim_store_exit(cycle);
    ngx_goim_ipc_exit(cycle);
    ngx_goim_registry_detach(cycle);
    ngx_goim_connection_exit(cycle);
}
