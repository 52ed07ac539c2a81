/*
 * goim-produce: produce goim.PushMsg values to the push topic, as the
 * logic API does (docs/PROTOCOL.md 4.2-4.4), to drive goim-job in tests without
 * nginx's producer.
 *
 *   goim-produce -b <bootstrap> [-t topic] [-n count] [--type T]
 *                [--op N] [--room R] [--server S] [--keys k1,k2,...]
 *                [--speed N] [--body PREFIX] [--start N] [--garbage]
 *                [--timeout-ms N]
 *
 * Message i (from --start, default 1) has the body PREFIX followed by i
 * ("m1", "m2", ...).  T is push, room or broadcast (default room).  The
 * Kafka key is what goim uses: keys[0], the room, or the operation in
 * decimal.  --garbage produces values that are not a PushMsg.  Messages
 * are produced in order, idempotently, with acks=all; it prints
 * "delivered D failed F" and exits 0 only when all were acknowledged,
 * 1 otherwise, 2 on usage errors.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "goim.pb-c.h"


#define GP_MAX_KEYS  64


typedef struct {
    long  delivered;
    long  failed;
} gp_delivery_t;


static void
gp_usage(void)
{
    fprintf(stderr,
        "usage: goim-produce -b <bootstrap> [-t topic] [-n count]"
        " [--type push|room|broadcast]\n"
        "         [--op N] [--room R] [--server S] [--keys k1,k2,...]"
        " [--speed N]\n"
        "         [--body PREFIX] [--start N] [--garbage]"
        " [--timeout-ms N]\n");
}


static int
gp_long(const char *s, long min, long max, long *out)
{
    long   n;
    char  *end;

    errno = 0;
    n = strtol(s, &end, 10);

    if (errno != 0 || end == s || *end != '\0' || n < min || n > max) {
        fprintf(stderr, "goim-produce: invalid number \"%s\"\n", s);
        return -1;
    }

    *out = n;

    return 0;
}


static void
gp_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    gp_delivery_t  *d = opaque;

    (void) rk;

    if (msg->err) {
        d->failed++;
        fprintf(stderr, "goim-produce: delivery failed: %s\n",
                rd_kafka_err2str(msg->err));

    } else {
        d->delivered++;
    }
}


int
main(int argc, char **argv)
{
    int                  i, garbage;
    long                 count, op, speed, start, timeout, n;
    char                *keys[GP_MAX_KEYS], *keylist, *p, body[1024];
    char                 key[64], err[512], tmo[32];
    size_t               nkeys, len;
    uint8_t             *value;
    const char          *bootstrap, *topic, *type, *room, *server, *prefix;
    const char          *mkey;
    rd_kafka_t          *rk;
    Goim__PushMsg        pm;
    gp_delivery_t        d;
    rd_kafka_conf_t     *conf;
    rd_kafka_resp_err_t  rc;

    bootstrap = NULL;
    topic = "goim-push-topic";
    type = "room";
    room = "live://1000";
    server = NULL;
    prefix = "m";
    keylist = NULL;
    count = 1;
    op = 1000;
    speed = 0;
    start = 1;
    timeout = 10000;
    garbage = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--garbage") == 0) {
            garbage = 1;
            continue;
        }

        if (i + 1 == argc) {
            gp_usage();
            return 2;
        }

        if (strcmp(argv[i], "-b") == 0) {
            bootstrap = argv[++i];

        } else if (strcmp(argv[i], "-t") == 0) {
            topic = argv[++i];

        } else if (strcmp(argv[i], "-n") == 0) {
            if (gp_long(argv[++i], 1, 10000000, &count) != 0) {
                return 2;
            }

        } else if (strcmp(argv[i], "--type") == 0) {
            type = argv[++i];

        } else if (strcmp(argv[i], "--op") == 0) {
            if (gp_long(argv[++i], -2147483647L - 1, 2147483647L, &op) != 0) {
                return 2;
            }

        } else if (strcmp(argv[i], "--room") == 0) {
            room = argv[++i];

        } else if (strcmp(argv[i], "--server") == 0) {
            server = argv[++i];

        } else if (strcmp(argv[i], "--keys") == 0) {
            keylist = argv[++i];

        } else if (strcmp(argv[i], "--speed") == 0) {
            if (gp_long(argv[++i], 0, 2147483647L, &speed) != 0) {
                return 2;
            }

        } else if (strcmp(argv[i], "--body") == 0) {
            prefix = argv[++i];

        } else if (strcmp(argv[i], "--start") == 0) {
            if (gp_long(argv[++i], 0, 2000000000L, &start) != 0) {
                return 2;
            }

        } else if (strcmp(argv[i], "--timeout-ms") == 0) {
            if (gp_long(argv[++i], 1, 3600000, &timeout) != 0) {
                return 2;
            }

        } else {
            fprintf(stderr, "goim-produce: unknown argument \"%s\"\n",
                    argv[i]);
            gp_usage();
            return 2;
        }
    }

    if (bootstrap == NULL) {
        gp_usage();
        return 2;
    }

    goim__push_msg__init(&pm);
    pm.operation = (int32_t) op;
    nkeys = 0;

    if (strcmp(type, "push") == 0) {
        if (server == NULL || keylist == NULL) {
            fprintf(stderr, "goim-produce: --type push needs --server and"
                    " --keys\n");
            return 2;
        }

        for (p = strtok(keylist, ","); p && nkeys < GP_MAX_KEYS;
             p = strtok(NULL, ","))
        {
            keys[nkeys++] = p;
        }

        pm.type = GOIM__PUSH_MSG__TYPE__PUSH;
        pm.server = (char *) server;
        pm.keys = keys;
        pm.n_keys = nkeys;
        mkey = nkeys ? keys[0] : "";

    } else if (strcmp(type, "room") == 0) {
        pm.type = GOIM__PUSH_MSG__TYPE__ROOM;
        pm.room = (char *) room;
        mkey = room;

    } else if (strcmp(type, "broadcast") == 0) {
        pm.type = GOIM__PUSH_MSG__TYPE__BROADCAST;
        pm.speed = (int32_t) speed;
        snprintf(key, sizeof(key), "%ld", op);
        mkey = key;

    } else {
        fprintf(stderr, "goim-produce: unknown type \"%s\"\n", type);
        return 2;
    }

    snprintf(tmo, sizeof(tmo), "%ld", timeout);

    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err,
                          sizeof(err)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err))
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "enable.idempotence", "true", err,
                             sizeof(err)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "partitioner", "fnv1a", err, sizeof(err))
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "message.timeout.ms", tmo, err,
                             sizeof(err)) != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "goim-produce: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 2;
    }

    d.delivered = 0;
    d.failed = 0;

    rd_kafka_conf_set_opaque(conf, &d);
    rd_kafka_conf_set_dr_msg_cb(conf, gp_delivered);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "goim-produce: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    for (n = start; n < start + count; n++) {

        if (garbage) {
            /* a field tag whose varint never ends: no protobuf */
            snprintf(body, sizeof(body), "\xff\xff\xff\xff%s%ld", prefix,
                     n);
            len = strlen(body);
            value = (uint8_t *) strdup(body);
            mkey = "garbage";

        } else {
            snprintf(body, sizeof(body), "%s%ld", prefix, n);
            pm.msg.data = (uint8_t *) body;
            pm.msg.len = strlen(body);
            len = goim__push_msg__get_packed_size(&pm);
            value = malloc(len ? len : 1);
            if (value == NULL) {
                fprintf(stderr, "goim-produce: out of memory\n");
                break;
            }

            goim__push_msg__pack(&pm, value);
        }

        do {
            rc = rd_kafka_producev(rk,
                                   RD_KAFKA_V_TOPIC(topic),
                                   RD_KAFKA_V_KEY(mkey, strlen(mkey)),
                                   RD_KAFKA_V_VALUE(value, len),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                   RD_KAFKA_V_END);

            if (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 100);
            }

        } while (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL);

        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "goim-produce: produce: %s\n",
                    rd_kafka_err2str(rc));
            free(value);
            d.failed++;
        }

        rd_kafka_poll(rk, 0);
    }

    rd_kafka_flush(rk, (int) timeout + 5000);

    /* anything still queued after the flush counts as failed */
    d.failed += rd_kafka_outq_len(rk);

    printf("delivered %ld failed %ld\n", d.delivered, d.failed);
    fflush(stdout);

    rd_kafka_destroy(rk);

    return d.delivered == count && d.failed == 0 ? 0 : 1;
}
