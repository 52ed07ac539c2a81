/*
 * goim-job configuration: nginx-like "name value...;" directives, '#'
 * comments, values optionally in double quotes (no escapes).  Each error
 * names the line and the directive; conf/goim-job.conf documents every
 * directive and its default.
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim_job_conf.h"
#include "goim_job_log.h"


#define JOB_CONF_MAX_ARGS  4
#define JOB_CONF_MAX_FILE  (1024 * 1024)

#define JOB_ARG_TIME  1
#define JOB_ARG_SIZE  2
#define JOB_ARG_INT   3


typedef struct {
    const char  *name;
    int          nargs;
    int          repeat;
    int        (*set)(job_conf_t *cf, char **args, char *err, size_t errlen);
} job_directive_t;


static int job_conf_str(char **dst, const char *v);
static int job_conf_number(const char *s, int type, long long min,
    long long max, long long *out);
static int job_conf_hostport(const char *v, char **host, int *port);
static int job_conf_secret(job_conf_t *cf, const char *v, char *err,
    size_t errlen);

#define JOB_SETTER(name)                                                     \
    static int job_set_##name(job_conf_t *cf, char **a, char *err,          \
        size_t errlen)

JOB_SETTER(brokers);
JOB_SETTER(topic);
JOB_SETTER(group);
JOB_SETTER(history_epoch);
JOB_SETTER(option);
JOB_SETTER(redis);
JOB_SETTER(redis_password);
JOB_SETTER(redis_db);
JOB_SETTER(refresh);
JOB_SETTER(secret);
JOB_SETTER(internal_ca);
JOB_SETTER(request_timeout);
JOB_SETTER(max_request_bytes);
JOB_SETTER(max_pushes);
JOB_SETTER(batch_count);
JOB_SETTER(batch_bytes);
JOB_SETTER(queue_items);
JOB_SETTER(queue_bytes);
JOB_SETTER(inflight);
JOB_SETTER(retry);
JOB_SETTER(drain);
JOB_SETTER(status);
JOB_SETTER(log_file);
JOB_SETTER(log_level);


static const job_directive_t  job_directives[] = {
    { "kafka_brokers", 1, 0, job_set_brokers },
    { "kafka_topic", 1, 0, job_set_topic },
    { "kafka_group", 1, 0, job_set_group },
    { "history_epoch", 1, 0, job_set_history_epoch },
    { "kafka_option", 2, 1, job_set_option },
    { "redis", 1, 0, job_set_redis },
    { "redis_password", 1, 0, job_set_redis_password },
    { "redis_db", 1, 0, job_set_redis_db },
    { "registry_refresh", 1, 0, job_set_refresh },
    { "internal_secret", 1, 0, job_set_secret },
    { "internal_ca", 1, 0, job_set_internal_ca },
    { "request_timeout", 1, 0, job_set_request_timeout },
    { "max_request_bytes", 1, 0, job_set_max_request_bytes },
    { "max_pushes_per_request", 1, 0, job_set_max_pushes },
    { "room_batch_count", 1, 0, job_set_batch_count },
    { "room_batch_bytes", 1, 0, job_set_batch_bytes },
    { "comet_queue_items", 1, 0, job_set_queue_items },
    { "comet_queue_bytes", 1, 0, job_set_queue_bytes },
    { "partition_inflight", 1, 0, job_set_inflight },
    { "retry_backoff", 2, 0, job_set_retry },
    { "drain_timeout", 1, 0, job_set_drain },
    { "status_listen", 1, 0, job_set_status },
    { "log_file", 1, 0, job_set_log_file },
    { "log_level", 1, 0, job_set_log_level },
    { NULL, 0, 0, NULL }
};


void
job_conf_init(job_conf_t *cf)
{
    memset(cf, 0, sizeof(job_conf_t));

    cf->redis_port = 0;
    cf->registry_refresh = 2000;
    cf->request_timeout = 5000;
    cf->max_request_bytes = 1024 * 1024;
    cf->max_pushes = 256;
    cf->room_batch_count = 128;
    cf->room_batch_bytes = 64 * 1024;
    cf->queue_items = 10000;
    cf->queue_bytes = 64 * 1024 * 1024;
    cf->partition_inflight = 10000;
    cf->retry_min = 100;
    cf->retry_max = 5000;
    cf->drain_timeout = 10000;
    cf->log_level = JOB_LOG_INFO;
}


void
job_conf_free(job_conf_t *cf)
{
    job_kv_t  *kv, *next;

    free(cf->kafka_brokers);
    free(cf->kafka_topic);
    free(cf->kafka_group);
    free(cf->history_epoch);
    free(cf->redis_host);
    free(cf->redis_password);
    free(cf->secret);
    free(cf->internal_ca);
    free(cf->status_host);
    free(cf->log_file);

    for (kv = cf->kafka_options; kv; kv = next) {
        next = kv->next;
        free(kv->name);
        free(kv->value);
        free(kv);
    }

    memset(cf, 0, sizeof(job_conf_t));
}


int
job_conf_load(job_conf_t *cf, const char *path, char *err, size_t errlen)
{
    int      rc;
    char    *text;
    FILE    *f;
    size_t   n;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }

    text = job_alloc(JOB_CONF_MAX_FILE + 1);
    n = fread(text, 1, JOB_CONF_MAX_FILE + 1, f);

    if (ferror(f)) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path,
                 strerror(errno));
        rc = -1;

    } else if (n > JOB_CONF_MAX_FILE) {
        snprintf(err, errlen, "\"%s\" is larger than %d bytes", path,
                 JOB_CONF_MAX_FILE);
        rc = -1;

    } else {
        rc = job_conf_parse(cf, text, n, err, errlen);
    }

    free(text);
    fclose(f);

    return rc;
}


/*
 * Splits the text into directives; each is checked against the table,
 * then the required ones are checked for.  err gets "line N: ...".
 */
int
job_conf_parse(job_conf_t *cf, const char *text, size_t len, char *err,
    size_t errlen)
{
    int                     line, dline, nargs, seen[64];
    char                   *args[JOB_CONF_MAX_ARGS + 1], msg[256];
    size_t                  i, start;
    const job_directive_t  *d;

    memset(seen, 0, sizeof(seen));
    nargs = 0;
    line = 1;
    dline = 1;
    i = 0;

    for ( ;; ) {

        /* whitespace and comments */
        while (i < len) {
            if (text[i] == '\n') {
                line++;
                i++;

            } else if (text[i] == ' ' || text[i] == '\t'
                       || text[i] == '\r')
            {
                i++;

            } else if (text[i] == '#') {
                while (i < len && text[i] != '\n') {
                    i++;
                }

            } else {
                break;
            }
        }

        if (i == len) {
            if (nargs) {
                snprintf(err, errlen, "line %d: \"%s\" has no ending ';'",
                         dline, args[0]);
                goto failed;
            }

            break;
        }

        if (text[i] == ';') {
            i++;

            if (nargs == 0) {
                snprintf(err, errlen, "line %d: unexpected ';'", line);
                goto failed;
            }

            for (d = job_directives; d->name; d++) {
                if (strcmp(d->name, args[0]) == 0) {
                    break;
                }
            }

            if (d->name == NULL) {
                snprintf(err, errlen, "line %d: unknown directive \"%s\"",
                         dline, args[0]);
                goto failed;
            }

            if (nargs - 1 != d->nargs) {
                snprintf(err, errlen, "line %d: \"%s\" takes %d value%s,"
                         " not %d", dline, d->name, d->nargs,
                         d->nargs == 1 ? "" : "s", nargs - 1);
                goto failed;
            }

            if (!d->repeat && seen[d - job_directives]++) {
                snprintf(err, errlen, "line %d: \"%s\" is duplicate", dline,
                         d->name);
                goto failed;
            }

            msg[0] = '\0';

            if (d->set(cf, args + 1, msg, sizeof(msg)) != 0) {
                snprintf(err, errlen, "line %d: \"%s\": %s", dline, d->name,
                         msg);
                goto failed;
            }

            while (nargs) {
                free(args[--nargs]);
            }

            continue;
        }

        if (nargs == JOB_CONF_MAX_ARGS) {
            snprintf(err, errlen, "line %d: \"%s\" has too many values",
                     dline, args[0]);
            goto failed;
        }

        if (nargs == 0) {
            dline = line;
        }

        if (text[i] == '"') {
            start = ++i;

            while (i < len && text[i] != '"' && text[i] != '\n') {
                i++;
            }

            if (i == len || text[i] != '"') {
                snprintf(err, errlen, "line %d: unterminated quoted value",
                         line);
                goto failed;
            }

            args[nargs++] = job_strndup(text + start, i - start);
            i++;
            continue;
        }

        start = i;

        while (i < len && text[i] != ' ' && text[i] != '\t'
               && text[i] != '\r' && text[i] != '\n' && text[i] != ';'
               && text[i] != '#' && text[i] != '"')
        {
            i++;
        }

        args[nargs++] = job_strndup(text + start, i - start);
    }

    if (cf->kafka_brokers == NULL) {
        snprintf(err, errlen, "\"kafka_brokers\" is required");
        return -1;
    }

    if (cf->redis_host == NULL) {
        snprintf(err, errlen, "\"redis\" is required");
        return -1;
    }

    if (cf->secret == NULL) {
        snprintf(err, errlen, "\"internal_secret\" is required");
        return -1;
    }

    if (cf->kafka_topic == NULL) {
        job_conf_str(&cf->kafka_topic, "goim-push-topic");
    }

    if (cf->kafka_group == NULL) {
        job_conf_str(&cf->kafka_group, "goim-push-group-job");
    }

    if (cf->room_batch_bytes + 1024 > cf->max_request_bytes) {
        snprintf(err, errlen, "\"room_batch_bytes\" (%zu) must be at least"
                 " 1k under \"max_request_bytes\" (%zu)",
                 cf->room_batch_bytes, cf->max_request_bytes);
        return -1;
    }

    return 0;

failed:

    while (nargs) {
        free(args[--nargs]);
    }

    return -1;
}


static int
job_conf_str(char **dst, const char *v)
{
    free(*dst);
    *dst = job_strndup(v, strlen(v));

    return 0;
}


/* integers; times in ms (ms, s, m; bare = s); sizes in bytes (k, m) */
static int
job_conf_number(const char *s, int type, long long min, long long max,
    long long *out)
{
    char       *end;
    long long   n, scale;

    if (*s < '0' || *s > '9') {
        return -1;
    }

    errno = 0;
    n = strtoll(s, &end, 10);

    if (errno != 0) {
        return -1;
    }

    scale = 1;

    if (type == JOB_ARG_TIME) {
        if (strcmp(end, "ms") == 0) {
            scale = 1;

        } else if (*end == '\0' || strcmp(end, "s") == 0) {
            scale = 1000;

        } else if (strcmp(end, "m") == 0) {
            scale = 60000;

        } else {
            return -1;
        }

    } else if (type == JOB_ARG_SIZE) {
        if (*end == '\0') {
            scale = 1;

        } else if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0) {
            scale = 1024;

        } else if (strcmp(end, "m") == 0 || strcmp(end, "M") == 0) {
            scale = 1024 * 1024;

        } else {
            return -1;
        }

    } else if (*end != '\0') {
        return -1;
    }

    if (n > LLONG_MAX / scale) {
        return -1;
    }

    n *= scale;

    if (n < min || n > max) {
        return -1;
    }

    *out = n;

    return 0;
}


static int
job_conf_hostport(const char *v, char **host, int *port)
{
    long long    n;
    const char  *colon;

    colon = strrchr(v, ':');

    if (colon == NULL || colon == v
        || job_conf_number(colon + 1, JOB_ARG_INT, 1, 65535, &n) != 0)
    {
        return -1;
    }

    free(*host);
    *host = job_strndup(v, colon - v);
    *port = (int) n;

    return 0;
}


/* "file:<path>": the first line of that file, so it stays out of the
 * configuration (and out of ps) */
static int
job_conf_secret(job_conf_t *cf, const char *v, char *err, size_t errlen)
{
    FILE    *f;
    char     buf[1024];
    size_t   n;

    if (strncmp(v, "file:", 5) != 0) {
        if (*v == '\0') {
            snprintf(err, errlen, "empty secret");
            return -1;
        }

        return job_conf_str(&cf->secret, v);
    }

    f = fopen(v + 5, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open \"%s\": %s", v + 5,
                 strerror(errno));
        return -1;
    }

    if (fgets(buf, sizeof(buf), f) == NULL) {
        buf[0] = '\0';
    }

    fclose(f);

    n = strcspn(buf, "\r\n");
    buf[n] = '\0';

    if (n == 0) {
        snprintf(err, errlen, "\"%s\" has no secret on its first line",
                 v + 5);
        return -1;
    }

    return job_conf_str(&cf->secret, buf);
}


#define JOB_NUMBER(field, ctype, type, min, max, what)                       \
    long long  n;                                                            \
                                                                             \
    if (job_conf_number(a[0], type, min, max, &n) != 0) {                    \
        snprintf(err, errlen, "invalid value \"%s\" (%s)", a[0], what);      \
        return -1;                                                           \
    }                                                                        \
                                                                             \
    cf->field = (ctype) n;                                                   \
    return 0


JOB_SETTER(brokers)
{
    (void) err;
    (void) errlen;
    return job_conf_str(&cf->kafka_brokers, a[0]);
}


JOB_SETTER(topic)
{
    (void) err;
    (void) errlen;
    return job_conf_str(&cf->kafka_topic, a[0]);
}


JOB_SETTER(group)
{
    (void) err;
    (void) errlen;
    return job_conf_str(&cf->kafka_group, a[0]);
}


/* changed by hand when the topic's offsets stop naming the same
 * messages (docs/PROTOCOL.md 1.15) */
JOB_SETTER(history_epoch)
{
    (void) err;
    (void) errlen;
    return job_conf_str(&cf->history_epoch, a[0]);
}


JOB_SETTER(option)
{
    job_kv_t  *kv, **last;

    (void) err;
    (void) errlen;

    kv = job_alloc(sizeof(job_kv_t));
    kv->name = job_strndup(a[0], strlen(a[0]));
    kv->value = job_strndup(a[1], strlen(a[1]));

    for (last = &cf->kafka_options; *last; last = &(*last)->next) {
        /* void */
    }

    *last = kv;

    return 0;
}


JOB_SETTER(redis)
{
    if (job_conf_hostport(a[0], &cf->redis_host, &cf->redis_port) != 0) {
        snprintf(err, errlen, "invalid address \"%s\" (host:port)", a[0]);
        return -1;
    }

    return 0;
}


JOB_SETTER(redis_password)
{
    (void) err;
    (void) errlen;
    return job_conf_str(&cf->redis_password, a[0]);
}


JOB_SETTER(redis_db)
{
    JOB_NUMBER(redis_db, int, JOB_ARG_INT, 0, 65535, "0..65535");
}


JOB_SETTER(refresh)
{
    JOB_NUMBER(registry_refresh, int, JOB_ARG_TIME, 100, 600000,
               "100ms..10m");
}


JOB_SETTER(secret)
{
    return job_conf_secret(cf, a[0], err, errlen);
}


JOB_SETTER(request_timeout)
{
    JOB_NUMBER(request_timeout, int, JOB_ARG_TIME, 100, 600000,
               "100ms..10m");
}


JOB_SETTER(max_request_bytes)
{
    JOB_NUMBER(max_request_bytes, size_t, JOB_ARG_SIZE, 4096,
               256 * 1024 * 1024, "4k..256m");
}


JOB_SETTER(max_pushes)
{
    JOB_NUMBER(max_pushes, int, JOB_ARG_INT, 1, 100000, "1..100000");
}


JOB_SETTER(batch_count)
{
    JOB_NUMBER(room_batch_count, int, JOB_ARG_INT, 1, 100000, "1..100000");
}


JOB_SETTER(batch_bytes)
{
    JOB_NUMBER(room_batch_bytes, size_t, JOB_ARG_SIZE, 1,
               255 * 1024 * 1024, "1..255m");
}


JOB_SETTER(queue_items)
{
    JOB_NUMBER(queue_items, int, JOB_ARG_INT, 1, 10000000, "1..10000000");
}


JOB_SETTER(queue_bytes)
{
    JOB_NUMBER(queue_bytes, size_t, JOB_ARG_SIZE, 4096,
               64LL * 1024 * 1024 * 1024, "4k..64g");
}


JOB_SETTER(inflight)
{
    JOB_NUMBER(partition_inflight, int, JOB_ARG_INT, 2, 10000000,
               "2..10000000");
}


JOB_SETTER(retry)
{
    long long  lo, hi;

    if (job_conf_number(a[0], JOB_ARG_TIME, 1, 600000, &lo) != 0
        || job_conf_number(a[1], JOB_ARG_TIME, 1, 600000, &hi) != 0)
    {
        snprintf(err, errlen, "invalid value \"%s %s\" (two times,"
                 " 1ms..10m)", a[0], a[1]);
        return -1;
    }

    if (lo > hi) {
        snprintf(err, errlen, "the first time is above the second");
        return -1;
    }

    cf->retry_min = (int) lo;
    cf->retry_max = (int) hi;

    return 0;
}


JOB_SETTER(drain)
{
    JOB_NUMBER(drain_timeout, int, JOB_ARG_TIME, 0, 3600000, "0..60m");
}


JOB_SETTER(status)
{
    if (job_conf_hostport(a[0], &cf->status_host, &cf->status_port) != 0) {
        snprintf(err, errlen, "invalid address \"%s\" (host:port)", a[0]);
        return -1;
    }

    return 0;
}


JOB_SETTER(log_file)
{
    (void) err;
    (void) errlen;
    return job_conf_str(&cf->log_file, a[0]);
}


/* the CAs an https:// comet's certificate must chain to (PEM) */
JOB_SETTER(internal_ca)
{
    FILE  *f;

    f = fopen(a[0], "r");
    if (f == NULL) {
        snprintf(err, errlen, "internal_ca \"%s\": %s", a[0],
                 strerror(errno));
        return -1;
    }

    fclose(f);

    return job_conf_str(&cf->internal_ca, a[0]);
}


JOB_SETTER(log_level)
{
    int  level;

    level = job_log_parse_level(a[0]);
    if (level < 0) {
        snprintf(err, errlen, "invalid level \"%s\" (debug, info, warn,"
                 " error)", a[0]);
        return -1;
    }

    cf->log_level = level;

    return 0;
}
