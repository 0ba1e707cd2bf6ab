/*
 * server/metrics.c -- Prometheus metrics for quiverd.
 *
 * Per endpoint: a request counter per HTTP status and a latency histogram (handler
 * time, from dispatch to the queued reply). Per collection: live points and index
 * memory, read at scrape time. Counters are relaxed atomics: a scrape may see one
 * request's count before its histogram sample, which Prometheus tolerates.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "server/cluster.h"
#include "server/server.h"

static const char *const ep_names[SRV_EP_COUNT] = {
    "healthz", "metrics", "list_collections", "create_collection", "get_collection",
    "drop_collection", "upsert_points", "get_point", "delete_points", "search", "search_batch",
    "index_field", "unindex_field", "train", "snapshot", "restore", "dashboard", "other",
};

/* upper bounds in microseconds; the last bucket (+Inf) is implicit */
static const uint64_t bucket_us[] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
                                     100000, 250000, 500000, 1000000, 2500000, 10000000};
#define NBUCKETS (sizeof bucket_us / sizeof bucket_us[0])

typedef struct {
    atomic_uint_fast64_t by_status[500];       /* status 100..599 */
    atomic_uint_fast64_t buckets[NBUCKETS + 1];
    atomic_uint_fast64_t sum_us, count;
} ep_stats;

static ep_stats stats[SRV_EP_COUNT];
static atomic_uint_fast64_t accepted[SRV_MAX_THREADS];   /* connections taken per worker */

static atomic_uint_fast64_t conn_events[SRV_CONN_NEVENTS];

void srv_metrics_conn_event(int what)
{
    if (what >= 0 && what < SRV_CONN_NEVENTS) atomic_fetch_add_explicit(&conn_events[what], 1, memory_order_relaxed);
}

void srv_metrics_connection(int worker)
{
    if (worker >= 0 && worker < SRV_MAX_THREADS)
        atomic_fetch_add_explicit(&accepted[worker], 1, memory_order_relaxed);
}

void srv_metrics_record(srv_endpoint ep, int status, uint64_t micros)
{
    if ((unsigned)ep >= SRV_EP_COUNT) ep = SRV_EP_OTHER;
    ep_stats *s = &stats[ep];
    if (status >= 100 && status <= 599)
        atomic_fetch_add_explicit(&s->by_status[status - 100], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < NBUCKETS && micros > bucket_us[b]) b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, micros, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

static uint64_t ld(atomic_uint_fast64_t *a) { return atomic_load_explicit(a, memory_order_relaxed); }

int srv_metrics_render(srv_ctx *ctx, struct evbuffer *buf)
{
    evbuffer_add_printf(buf, "# HELP quiver_http_requests_total HTTP requests by endpoint and status.\n"
                             "# TYPE quiver_http_requests_total counter\n");
    for (int e = 0; e < SRV_EP_COUNT; e++)
        for (int c = 0; c < 500; c++) {
            uint64_t v = ld(&stats[e].by_status[c]);
            if (v)
                evbuffer_add_printf(buf, "quiver_http_requests_total{endpoint=\"%s\",code=\"%d\"} %" PRIu64 "\n",
                                    ep_names[e], c + 100, v);
        }
    evbuffer_add_printf(buf, "# HELP quiver_http_request_duration_seconds Handler latency by endpoint.\n"
                             "# TYPE quiver_http_request_duration_seconds histogram\n");
    for (int e = 0; e < SRV_EP_COUNT; e++) {
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBUCKETS; b++) {
            char le[32] = "+Inf";
            if (b < NBUCKETS) snprintf(le, sizeof le, "%g", (double)bucket_us[b] / 1e6);
            cum += ld(&stats[e].buckets[b]);
            evbuffer_add_printf(buf, "quiver_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%s\"} %" PRIu64 "\n",
                                ep_names[e], le, cum);
        }
        evbuffer_add_printf(buf, "quiver_http_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n",
                            ep_names[e], (double)ld(&stats[e].sum_us) / 1e6);
        evbuffer_add_printf(buf, "quiver_http_request_duration_seconds_count{endpoint=\"%s\"} %" PRIu64 "\n",
                            ep_names[e], ld(&stats[e].count));
    }

    evbuffer_add_printf(buf, "# HELP quiver_http_connections_total Connections accepted by each worker thread.\n"
                             "# TYPE quiver_http_connections_total counter\n");
    for (int w = 0; w < SRV_MAX_THREADS; w++) {
        uint64_t v = ld(&accepted[w]);
        if (v) evbuffer_add_printf(buf, "quiver_http_connections_total{worker=\"%d\"} %" PRIu64 "\n", w, v);
    }

    static const char *const closed_why[] = {"refused", "evicted", "header_timeout", "body_timeout"};
    evbuffer_add_printf(buf, "# HELP quiver_http_connections_open Connections open now.\n"
                             "# TYPE quiver_http_connections_open gauge\nquiver_http_connections_open %ld\n"
                             "# HELP quiver_http_connections_closed_total Connections quiverd closed itself: refused over "
                             "--max-connections, evicted for a new one, or past a read deadline.\n"
                             "# TYPE quiver_http_connections_closed_total counter\n",
                        atomic_load(&ctx->connections));
    for (int i = 0; i < SRV_REQ_SHED; i++)
        evbuffer_add_printf(buf, "quiver_http_connections_closed_total{reason=\"%s\"} %" PRIu64 "\n", closed_why[i],
                            ld(&conn_events[i]));
    evbuffer_add_printf(buf, "# HELP quiver_http_requests_shed_total Requests answered 503 over --max-queue.\n"
                             "# TYPE quiver_http_requests_shed_total counter\nquiver_http_requests_shed_total %" PRIu64 "\n",
                        ld(&conn_events[SRV_REQ_SHED]));

    /* collection gauges: names are [A-Za-z0-9_.-], safe inside a label without escaping */
    evbuffer_add_printf(buf, "# HELP quiver_collection_points Live points per collection.\n"
                             "# TYPE quiver_collection_points gauge\n");
    struct evbuffer *mem = evbuffer_new();
    if (!mem) return -1;
    evbuffer_add_printf(mem, "# HELP quiver_collection_memory_bytes In-memory index bytes per collection.\n"
                             "# TYPE quiver_collection_memory_bytes gauge\n");
    char **names = NULL;
    size_t ncoll = 0;
    qv_collection_list(ctx->db, &names, &ncoll);
    for (size_t i = 0; i < ncoll; i++) {
        qv_collection_info info;
        qv_coll *c = NULL;
        if (qv_collection_open(ctx->db, names[i], &c) == QV_OK && qv_collection_get_info(c, &info) == QV_OK) {
            evbuffer_add_printf(buf, "quiver_collection_points{collection=\"%s\"} %zu\n", names[i], info.count);
            evbuffer_add_printf(mem, "quiver_collection_memory_bytes{collection=\"%s\"} %zu\n", names[i], info.memory_bytes);
        }
        qv_collection_close(c);
    }
    qv_free_strings(names, ncoll);
    evbuffer_add_buffer(buf, mem);
    evbuffer_free(mem);
    evbuffer_add_printf(buf, "# HELP quiver_collections Collections in the database.\n"
                             "# TYPE quiver_collections gauge\nquiver_collections %zu\n", ncoll);
    srv_cluster_metrics(ctx->cluster, buf);        /* per shard, in cluster mode */
    return 0;
}
