
/*
 * goim for nginx: the configuration of the Kafka producer: goim_kafka,
 * goim_kafka_option, checked when nginx reads its configuration, and
 * the librdkafka configuration every worker builds from them.
 */


#include "ngx_goim_kafka.h"

#include <librdkafka/rdkafka.h>


#define NGX_GOIM_KAFKA_TOPIC       "goim-push-topic"
#define NGX_GOIM_KAFKA_TIMEOUT     5000


static ngx_goim_kafka_conf_t *ngx_goim_kafka_get_conf(ngx_conf_t *cf,
    ngx_goim_conf_t *gcf);
static ngx_int_t ngx_goim_kafka_set(rd_kafka_conf_t *conf, ngx_log_t *log,
    const char *name, const char *value);


/*
 * Properties set by goim_kafka itself: passing them through
 * goim_kafka_option would make the directive's values lie.
 */
static const char  *ngx_goim_kafka_own[] = {
    "bootstrap.servers",
    "metadata.broker.list",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "log.queue",
    NULL
};


static ngx_goim_kafka_conf_t *
ngx_goim_kafka_get_conf(ngx_conf_t *cf, ngx_goim_conf_t *gcf)
{
    ngx_goim_kafka_conf_t  *kcf;

    if (gcf->kafka) {
        return gcf->kafka;
    }

    kcf = ngx_pcalloc(cf->pool, sizeof(ngx_goim_kafka_conf_t));
    if (kcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&kcf->options, cf->pool, 4, sizeof(ngx_keyval_t))
        != NGX_OK)
    {
        return NULL;
    }

    kcf->timeout = NGX_CONF_UNSET_MSEC;
    gcf->kafka = kcf;

    return kcf;
}


/* goim_kafka <brokers> [topic=name] [timeout=time]; */

char *
ngx_goim_kafka_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_conf_t  *gcf = conf;

    ngx_int_t               t;
    ngx_str_t              *value, s;
    ngx_uint_t              i;
    ngx_goim_kafka_conf_t  *kcf;

    kcf = ngx_goim_kafka_get_conf(cf, gcf);
    if (kcf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (kcf->brokers.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "needs a broker list, e.g. \"127.0.0.1:9092\"";
    }

    kcf->brokers = value[1];

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "topic=", 6) == 0) {
            if (value[i].len == 6) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty topic in \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            kcf->topic.data = value[i].data + 6;
            kcf->topic.len = value[i].len - 6;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            /* librdkafka takes an int of milliseconds; 0 would be forever */
            t = ngx_parse_time(&s, 0);
            if (t == NGX_ERROR || t == 0 || t > 0x7fffffff) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            kcf->timeout = t;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * goim_kafka_option <name> <value>;  any librdkafka property, checked
 * now on a throwaway configuration so that nginx -t reports librdkafka's
 * reason.  Arguments from the configuration file are NUL-terminated.
 */

char *
ngx_goim_kafka_option_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_goim_conf_t  *gcf = conf;

    char                    errstr[512];
    ngx_str_t              *value;
    ngx_uint_t              i;
    ngx_keyval_t           *kv;
    rd_kafka_conf_t        *rkc;
    rd_kafka_conf_res_t     res;
    ngx_goim_kafka_conf_t  *kcf;

    kcf = ngx_goim_kafka_get_conf(cf, gcf);
    if (kcf == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 0; ngx_goim_kafka_own[i]; i++) {
        if (ngx_strcmp(value[1].data, ngx_goim_kafka_own[i]) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is set by \"goim_kafka\" (brokers, "
                               "timeout=) and cannot be an option",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    rkc = rd_kafka_conf_new();
    res = rd_kafka_conf_set(rkc, (char *) value[1].data,
                            (char *) value[2].data, errstr, sizeof(errstr));
    rd_kafka_conf_destroy(rkc);

    if (res != RD_KAFKA_CONF_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid goim_kafka_option \"%V\": %s",
                           &value[1], errstr);
        return NGX_CONF_ERROR;
    }

    kv = ngx_array_push(&kcf->options);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    kv->key = value[1];
    kv->value = value[2];

    return NGX_CONF_OK;
}


char *
ngx_goim_kafka_init_conf(ngx_cycle_t *cycle, ngx_goim_conf_t *gcf)
{
    rd_kafka_conf_t        *rkc;
    ngx_goim_kafka_conf_t  *kcf;

    kcf = gcf->kafka;

    if (kcf == NULL) {
        return NGX_CONF_OK;
    }

    if (kcf->brokers.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"goim_kafka_option\" needs \"goim_kafka\"");
        return NGX_CONF_ERROR;
    }

    if (gcf->redis == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"goim_kafka\" needs \"goim_redis\": push by key and "
                      "mid finds the servers in Redis");
        return NGX_CONF_ERROR;
    }

    if (kcf->topic.len == 0) {
        ngx_str_set(&kcf->topic, NGX_GOIM_KAFKA_TOPIC);
    }

    ngx_conf_init_msec_value(kcf->timeout, NGX_GOIM_KAFKA_TIMEOUT);

    /* the whole configuration once, as the workers will build it */
    rkc = ngx_goim_kafka_rdconf(gcf, cycle->log);
    if (rkc == NULL) {
        return NGX_CONF_ERROR;
    }

    rd_kafka_conf_destroy(rkc);

    return NGX_CONF_OK;
}


/*
 * Our defaults first, the goim_kafka_option properties over them: acks
 * from all replicas as goim's WaitForAll, Sarama's default partitioner
 * (FNV-1a of the key), a short linger to batch concurrent requests, and
 * log lines through the main queue (served on nginx's thread).
 */

rd_kafka_conf_t *
ngx_goim_kafka_rdconf(ngx_goim_conf_t *gcf, ngx_log_t *log)
{
    u_char                  id[256], timeout[NGX_INT_T_LEN + 1];
    ngx_uint_t              i;
    ngx_keyval_t           *kv;
    rd_kafka_conf_t        *rkc;
    ngx_goim_kafka_conf_t  *kcf;

    kcf = gcf->kafka;

    ngx_snprintf(id, sizeof(id) - 1, "goim-%V-%P%Z", &gcf->server_id,
                 ngx_pid);
    ngx_snprintf(timeout, sizeof(timeout) - 1, "%M%Z", kcf->timeout);

    rkc = rd_kafka_conf_new();

    if (ngx_goim_kafka_set(rkc, log, "bootstrap.servers",
                           (char *) kcf->brokers.data) != NGX_OK
        || ngx_goim_kafka_set(rkc, log, "client.id", (char *) id) != NGX_OK
        || ngx_goim_kafka_set(rkc, log, "acks", "all") != NGX_OK
        || ngx_goim_kafka_set(rkc, log, "message.timeout.ms",
                              (char *) timeout) != NGX_OK
        || ngx_goim_kafka_set(rkc, log, "partitioner", "fnv1a") != NGX_OK
        || ngx_goim_kafka_set(rkc, log, "linger.ms", "2") != NGX_OK
        || ngx_goim_kafka_set(rkc, log, "log.queue", "true") != NGX_OK)
    {
        rd_kafka_conf_destroy(rkc);
        return NULL;
    }

    kv = kcf->options.elts;

    for (i = 0; i < kcf->options.nelts; i++) {
        if (ngx_goim_kafka_set(rkc, log, (char *) kv[i].key.data,
                               (char *) kv[i].value.data)
            != NGX_OK)
        {
            rd_kafka_conf_destroy(rkc);
            return NULL;
        }
    }

    return rkc;
}


static ngx_int_t
ngx_goim_kafka_set(rd_kafka_conf_t *conf, ngx_log_t *log, const char *name,
    const char *value)
{
    char  errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "goim: kafka property \"%s\": %s", name, errstr);
        return NGX_ERROR;
    }

    return NGX_OK;
}
