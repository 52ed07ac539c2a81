
/*
 * goim for nginx: the API's answers from the comet registry:
 * /goim/online/total (in the Redis modes), /goim/nodes/weighted and
 * /goim/nodes/instances (docs/PROTOCOL.md 2.8 - 2.10).  With Redis the
 * request waits for the registry without blocking: it is kept
 * (r->main->count) and answered from the callback; a request freed meanwhile
 * (client gone, shutdown) cancels the read.  Without Redis, this node's own
 * record answers, as it would be in Redis.
 */


#include "ngx_goim_api.h"


#define NGX_GOIM_API_MAX_NODES  5           /* goim's nodes/weighted */


typedef struct {
    ngx_http_request_t        *request;
    ngx_goim_api_route_e       route;
    ngx_goim_comets_t         *fetch;       /* NULL: answered */
} ngx_goim_api_nodes_t;


static void ngx_goim_api_nodes_cleanup(void *data);
static void ngx_goim_api_nodes_comets(ngx_goim_comet_t *comets,
    ngx_uint_t n, const char *err, void *data);
static ngx_int_t ngx_goim_api_nodes_answer(ngx_http_request_t *r,
    ngx_goim_api_route_e route, ngx_goim_comet_t *comets, ngx_uint_t n);
static void ngx_goim_api_total(yajl_gen g, ngx_goim_comet_t *comets,
    ngx_uint_t n);
static ngx_int_t ngx_goim_api_instances(ngx_http_request_t *r,
    yajl_gen g, ngx_goim_comet_t *comets, ngx_uint_t n);
static ngx_int_t ngx_goim_api_weighted(ngx_http_request_t *r, yajl_gen g,
    ngx_goim_comet_t *comets, ngx_uint_t n);


ngx_int_t
ngx_goim_api_nodes(ngx_http_request_t *r, ngx_goim_api_route_e route)
{
    ngx_goim_comet_t       self;
    ngx_pool_cleanup_t    *cln;
    ngx_goim_api_nodes_t  *a;

    if (ngx_goim_mode() == NGX_GOIM_EMBEDDED) {
        /* one node: its own record, as it would be in Redis */
        (void) ngx_goim_comets_self(r->pool, &self);
        return ngx_goim_api_nodes_answer(r, route, &self, 1);
    }

    a = ngx_pcalloc(r->pool, sizeof(ngx_goim_api_nodes_t));
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a->request = r;
    a->route = route;

    cln->handler = ngx_goim_api_nodes_cleanup;
    cln->data = a;

    /* a client that goes away finalizes the request, and so cancels */
    r->read_event_handler = ngx_http_test_reading;

    a->fetch = ngx_goim_comets_fetch(ngx_goim_api_nodes_comets, a);
    if (a->fetch == NULL) {
        return ngx_goim_api_redis_error(r, NGX_GOIM_REDIS_DOWN);
    }

    r->main->count++;

    return NGX_DONE;
}


/* the request is freed: the read still in flight must not answer it */

static void
ngx_goim_api_nodes_cleanup(void *data)
{
    ngx_goim_api_nodes_t  *a = data;

    if (a->fetch) {
        ngx_goim_comets_cancel(a->fetch);
        a->fetch = NULL;
    }
}


static void
ngx_goim_api_nodes_comets(ngx_goim_comet_t *comets, ngx_uint_t n,
    const char *err, void *data)
{
    ngx_int_t              rc;
    ngx_http_request_t    *r;
    ngx_goim_api_nodes_t  *a = data;

    a->fetch = NULL;
    r = a->request;

    rc = err ? ngx_goim_api_redis_error(r, err)
             : ngx_goim_api_nodes_answer(r, a->route, comets, n);

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_goim_api_nodes_answer(ngx_http_request_t *r, ngx_goim_api_route_e route,
    ngx_goim_comet_t *comets, ngx_uint_t n)
{
    ngx_int_t  rc;
    yajl_gen   g;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = NGX_OK;

    switch (route) {

    case NGX_GOIM_API_ONLINE_TOTAL:
        ngx_goim_api_total(g, comets, n);
        break;

    case NGX_GOIM_API_NODES_INSTANCES:
        rc = ngx_goim_api_instances(r, g, comets, n);
        break;

    default: /* NGX_GOIM_API_NODES_WEIGHTED */
        rc = ngx_goim_api_weighted(r, g, comets, n);
        break;
    }

    if (rc != NGX_OK) {
        yajl_gen_free(g);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_goim_api_reply(r, NGX_HTTP_OK, 0, "", g);
    yajl_gen_free(g);

    return rc;
}


/* goim: the sums of conn_count and ip_count over the live comets */

static void
ngx_goim_api_total(yajl_gen g, ngx_goim_comet_t *comets, ngx_uint_t n)
{
    ngx_uint_t  i, conns, ips;

    conns = 0;
    ips = 0;

    for (i = 0; i < n; i++) {
        conns += comets[i].conn_count;
        ips += comets[i].ip_count;
    }

    ngx_goim_api_totals(g, conns, ips);
}


/* goim's shape: discovery's Instance (docs/PROTOCOL.md 2.10) */

static ngx_int_t
ngx_goim_api_instances(ngx_http_request_t *r, yajl_gen g,
    ngx_goim_comet_t *comets, ngx_uint_t n)
{
    u_char             *p, *joined, buf[NGX_INT64_LEN + 1];
    size_t              len;
    ngx_uint_t          i, k;
    ngx_goim_comet_t   *c;

    yajl_gen_array_open(g);

    for (i = 0; i < n; i++) {
        c = &comets[i];

        yajl_gen_map_open(g);
        yajl_gen_string(g, (u_char *) "region", 6);
        yajl_gen_string(g, (u_char *) "", 0);
        yajl_gen_string(g, (u_char *) "zone", 4);
        yajl_gen_string(g, (u_char *) "", 0);
        yajl_gen_string(g, (u_char *) "env", 3);
        yajl_gen_string(g, (u_char *) "", 0);
        yajl_gen_string(g, (u_char *) "appid", 5);
        yajl_gen_string(g, (u_char *) "goim.comet", 10);
        yajl_gen_string(g, (u_char *) "hostname", 8);
        yajl_gen_string(g, c->server.data, c->server.len);

        /* goim: the comet's gRPC address; ours: its internal push URL */
        yajl_gen_string(g, (u_char *) "addrs", 5);
        yajl_gen_array_open(g);

        if (c->addr.len) {
            yajl_gen_string(g, c->addr.data, c->addr.len);
        }

        yajl_gen_array_close(g);

        yajl_gen_string(g, (u_char *) "version", 7);
        yajl_gen_string(g, (u_char *) "", 0);
        yajl_gen_string(g, (u_char *) "latest_timestamp", 16);
        yajl_gen_integer(g, (long long) c->updated * 1000000000LL);

        /* discovery metadata: strings, public addresses comma-joined */
        yajl_gen_string(g, (u_char *) "metadata", 8);
        yajl_gen_map_open(g);
        yajl_gen_string(g, (u_char *) "addrs", 5);

        len = 0;

        for (k = 0; k < c->naddrs; k++) {
            len += c->addrs[k].len + 1;
        }

        p = ngx_pnalloc(r->pool, len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        joined = p;

        for (k = 0; k < c->naddrs; k++) {
            if (k) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, c->addrs[k].data, c->addrs[k].len);
        }

        yajl_gen_string(g, joined, p - joined);

        yajl_gen_string(g, (u_char *) "conn_count", 10);
        p = ngx_sprintf(buf, "%ui", c->conn_count);
        yajl_gen_string(g, buf, p - buf);
        yajl_gen_string(g, (u_char *) "ip_count", 8);
        p = ngx_sprintf(buf, "%ui", c->ip_count);
        yajl_gen_string(g, buf, p - buf);
        yajl_gen_string(g, (u_char *) "offline", 7);
        yajl_gen_string(g, (u_char *) "false", 5);
        yajl_gen_string(g, (u_char *) "weight", 6);
        p = ngx_sprintf(buf, "%ui", c->weight);
        yajl_gen_string(g, buf, p - buf);
        yajl_gen_map_close(g);

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    return NGX_OK;
}


/*
 * goim's weighted load balancer, simplified: a node's score is its
 * weight plus its share of the weights minus half its share of the
 * connections, times all connections; the best first, their public
 * addresses, at most 5; none known: the domain.
 */

typedef struct {
    ngx_goim_comet_t          *comet;
    double                     score;
} ngx_goim_api_node_t;


static int ngx_libc_cdecl
ngx_goim_api_node_cmp(const void *x, const void *y)
{
    const ngx_goim_api_node_t  *a = x, *b = y;

    if (a->score != b->score) {
        return a->score < b->score ? 1 : -1;
    }

    return ngx_memn2cmp(a->comet->server.data, b->comet->server.data,
                        a->comet->server.len, b->comet->server.len);
}


static ngx_int_t
ngx_goim_api_weighted(ngx_http_request_t *r, yajl_gen g,
    ngx_goim_comet_t *comets, ngx_uint_t n)
{
    double                score;
    ngx_uint_t            i, k, nodes, weights, conns;
    ngx_goim_conf_t      *gcf;
    ngx_goim_api_node_t  *order;

    static const char    *names[] = { "tcp_port", "ws_port", "wss_port" };

    gcf = ngx_goim_get_conf((ngx_cycle_t *) ngx_cycle);

    order = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_goim_api_node_t));
    if (order == NULL) {
        return NGX_ERROR;
    }

    weights = 0;
    conns = 0;

    for (i = 0; i < n; i++) {
        weights += comets[i].weight;
        conns += comets[i].conn_count;
    }

    for (i = 0; i < n; i++) {
        score = comets[i].weight;

        if (weights && conns) {
            score += ((double) comets[i].weight / weights
                      - 0.5 * comets[i].conn_count / conns) * conns;
        }

        order[i].comet = &comets[i];
        order[i].score = ngx_max(score, 1.0);
    }

    ngx_qsort(order, n, sizeof(ngx_goim_api_node_t), ngx_goim_api_node_cmp);

    /* NodesReply's field order; zero values omitted (omitempty) */

    yajl_gen_map_open(g);

    if (gcf->domain.len) {
        yajl_gen_string(g, (u_char *) "domain", 6);
        yajl_gen_string(g, gcf->domain.data, gcf->domain.len);
    }

    for (i = 0; i < 3; i++) {
        if (gcf->client_ports[i]) {
            yajl_gen_string(g, (u_char *) names[i], ngx_strlen(names[i]));
            yajl_gen_integer(g, gcf->client_ports[i]);
        }
    }

    yajl_gen_string(g, (u_char *) "heartbeat", 9);
    yajl_gen_integer(g, gcf->heartbeat / 1000);

    nodes = 0;

    for (i = 0; i < n && nodes < NGX_GOIM_API_MAX_NODES; i++) {
        for (k = 0; k < order[i].comet->naddrs
                    && nodes < NGX_GOIM_API_MAX_NODES; k++)
        {
            if (nodes++ == 0) {
                yajl_gen_string(g, (u_char *) "nodes", 5);
                yajl_gen_array_open(g);
            }

            yajl_gen_string(g, order[i].comet->addrs[k].data,
                            order[i].comet->addrs[k].len);
        }
    }

    if (nodes == 0 && gcf->domain.len) {
        yajl_gen_string(g, (u_char *) "nodes", 5);
        yajl_gen_array_open(g);
        yajl_gen_string(g, gcf->domain.data, gcf->domain.len);
        nodes = 1;
    }

    if (nodes) {
        yajl_gen_array_close(g);
    }

    /* goim's example [backoff] section */
    yajl_gen_string(g, (u_char *) "backoff", 7);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (u_char *) "max_delay", 9);
    yajl_gen_integer(g, 300);
    yajl_gen_string(g, (u_char *) "base_delay", 10);
    yajl_gen_integer(g, 3);
    yajl_gen_string(g, (u_char *) "factor", 6);
    yajl_gen_number(g, "1.8", 3);
    yajl_gen_string(g, (u_char *) "jitter", 6);
    yajl_gen_number(g, "0.3", 3);
    yajl_gen_map_close(g);

    yajl_gen_string(g, (u_char *) "heartbeat_max", 13);
    yajl_gen_integer(g, gcf->heartbeat_max);

    yajl_gen_map_close(g);

    return NGX_OK;
}
