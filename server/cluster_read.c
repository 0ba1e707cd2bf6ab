/*
 * server/cluster_read.c -- searches on cluster collections (scatter-gather), the cluster
 * status (GET /cluster) and the per-shard metrics.
 *
 * A search goes to one replica of every shard at once (a thread per shard), each asked
 * the same native body (so k, ef, the filter and with_payload go down unchanged), and
 * the hits are merged into the top k by score (ascending for l2, descending for ip and
 * cosine). The replica asked: this node when it is an in-sync replica (no HTTP: the
 * search runs in-process), else the leader, else the other in-sync replicas in turn
 * until one answers. A shard none of them answers for is left out and the reply says
 * so: "partial": true, "missing_shards": [s, ...] and the header X-Quiver-Partial: true.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "server/cluster.h"
#include "server/server.h"

static int to_evbuffer(void *out, const char *p, size_t len)
{
    return evbuffer_add(out, p, len);
}

int cl_local_search(srv_cluster *cl, const char *local, const char *body, size_t len, char **out, size_t *out_len)
{
    srv_coll c;
    api_search *s = NULL;
    size_t n = 0;
    api_results res = {0};
    api_jerr e;
    struct evbuffer *b = evbuffer_new();
    int status = 500;
    *out = NULL;
    if (!b) return 503;
    if (srv_open(cl->ctx, local, &c) != QV_OK) {
        evbuffer_free(b);
        return 404;
    }
    api_wbuf w = {.sink = to_evbuffer, .sink_arg = b};
    if (api_parse_searches(body, len, c.dim, 0, &s, &n, &e) != 0) {
        status = 400;
    } else if (api_run_searches(c.coll, c.dim, s, n, &res) == QV_OK) {
        api_point_style st = {.scores = 1, .payload = s[0].with_payload};
        API_WLIT(&w, "{\"hits\":");
        if (api_wpoints(&w, c.coll, c.dim, res.hits, res.nh[0], &st) == QV_OK) {
            API_WLIT(&w, "}");
            api_wflush(&w);
            if (!w.err) status = 200;
        }
    }
    if (status == 200 && (*out = malloc(evbuffer_get_length(b) + 1))) {
        *out_len = evbuffer_remove(b, *out, evbuffer_get_length(b));
        (*out)[*out_len] = 0;
    } else if (status == 200) {
        status = 503;
    }
    api_results_free(&res);
    api_searches_free(s, n);
    qv_collection_close(c.coll);
    evbuffer_free(b);
    return status;
}

typedef struct {
    srv_cluster *cl;
    const cl_shard *s;
    const char *body;
    size_t len;
    json_t *hits;                  /* the shard's answer; NULL: none came */
    long from;                     /* the replica that answered */
    pthread_t t;
    int started;
} shard_query;

static int ask(shard_query *q, long node)
{
    char *text = NULL;
    size_t tlen = 0;
    int status;
    if (node == q->cl->self) {
        status = cl_local_search(q->cl, q->s->local, q->body, q->len, &text, &tlen);
    } else {
        char url[CL_URL_MAX], u[CL_URL_MAX + 128], err[256];
        cl_http_reply rep;
        if (!cl_node_url(q->cl, node, CL_REPLICA, url, sizeof url)) return -1;
        snprintf(u, sizeof u, "%s/collections/%s/search", url, q->s->local);
        if (cl_http("POST", u, q->body, q->len, CL_PEER_TIMEOUT_MS, &rep, err, sizeof err) != 0) return -1;
        status = rep.status;
        text = rep.body;
        tlen = rep.len;
    }
    json_t *j = status == 200 && text ? json_loadb(text, tlen, 0, NULL) : NULL;
    free(text);
    json_t *h = json_object_get(j, "hits");
    if (json_is_array(h)) {
        q->hits = json_incref(h);
        q->from = node;
    }
    json_decref(j);
    return q->hits ? 0 : -1;
}

static void *query_main(void *arg)
{
    shard_query *q = arg;
    const cl_shard *s = q->s;
    if (cl_has_id(s->in_sync, s->nin_sync, q->cl->self) && ask(q, q->cl->self) == 0) return NULL;
    if (cl_has_id(s->in_sync, s->nin_sync, s->leader) && ask(q, s->leader) == 0) return NULL;
    for (int k = 0; k < s->nin_sync; k++)
        if (s->in_sync[k] != q->cl->self && s->in_sync[k] != s->leader && ask(q, s->in_sync[k]) == 0) return NULL;
    return NULL;
}

typedef struct { json_t *hit; double score; } ranked;
static int by_score_asc(const void *a, const void *b)
{
    double x = ((const ranked *)a)->score, y = ((const ranked *)b)->score;
    return x < y ? -1 : x > y;
}
static int by_score_desc(const void *a, const void *b)
{
    return by_score_asc(b, a);
}

void srv_cluster_search(srv_req *r)
{
    srv_cluster *cl = r->ctx->cluster;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in), ns = 0, total = 0;
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    uint64_t t0 = api_now_us();
    api_search *check = NULL;
    size_t nc = 0;
    api_jerr e;
    if (!body) { srv_oom(r); return; }
    /* the body is checked here first: a bad one is one 400, not one per shard */
    if (api_parse_searches(body, len, r->coll->dim, 0, &check, &nc, &e) != 0) { srv_fail_jerr(r, &e); return; }
    uint32_t k = check[0].k;
    api_searches_free(check, nc);
    cl_shard *shards = cl_shards_of(cl, r->name, &ns);
    shard_query *q = shards ? calloc(ns, sizeof *q) : NULL;
    if (!q) {
        free(shards);
        srv_fail(r, 503, "cluster_unavailable", "collection '%s' has no shard map (yet)", r->name);
        return;
    }
    for (size_t s = 0; s < ns; s++) {
        q[s] = (shard_query){.cl = cl, .s = &shards[s], .body = body, .len = len};
        q[s].started = ns > 1 && pthread_create(&q[s].t, NULL, query_main, &q[s]) == 0;
        if (!q[s].started) query_main(&q[s]);
    }
    json_t *missing = json_array();
    for (size_t s = 0; s < ns; s++) {
        if (q[s].started) pthread_join(q[s].t, NULL);
        if (!q[s].hits) json_array_append_new(missing, json_integer((json_int_t)s));
        else total += json_array_size(q[s].hits);
    }
    ranked *all = calloc(total + 1, sizeof *all);
    json_t *hits = json_array();
    size_t m = 0;
    for (size_t s = 0; all && s < ns; s++) {
        size_t i;
        json_t *h;
        json_array_foreach(q[s].hits, i, h) all[m++] = (ranked){h, json_number_value(json_object_get(h, "score"))};
    }
    qsort(all, m, sizeof *all, r->coll->metric == QV_METRIC_L2 ? by_score_asc : by_score_desc);
    for (size_t i = 0; i < m && i < k; i++) json_array_append(hits, all[i].hit);
    size_t nmissing = json_array_size(missing);
    json_t *reply = all ? json_pack("{s:o,s:I,s:b,s:o,s:I}", "hits", hits, "took_us", (json_int_t)(api_now_us() - t0),
                                    "partial", nmissing > 0, "missing_shards", missing, "shards", (json_int_t)ns)
                        : NULL;
    if (!all) {
        json_decref(hits);
        json_decref(missing);
    }
    if (nmissing) evhttp_add_header(evhttp_request_get_output_headers(r->req), "X-Quiver-Partial", "true");
    for (size_t s = 0; s < ns; s++) json_decref(q[s].hits);
    for (size_t s = 0; s < ns; s++) {
        cl_lead *l = cl_lead_of(cl, shards[s].local);
        if (l) atomic_fetch_add(q[s].hits ? &l->searches : &l->search_failures, 1);
    }
    free(all);
    free(q);
    free(shards);
    srv_reply_json(r, 200, reply);
}

/* ---- GET /cluster ---------------------------------------------------------------------- */

void srv_h_cluster_status(srv_req *r)
{
    srv_cluster *cl = r->ctx->cluster;
    if (!cl) {
        srv_reply_json(r, 200, json_pack("{s:b}", "enabled", 0));
        return;
    }
    json_t *nodes = json_array(), *colls = json_array();
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->nnodes; i++)
        json_array_append_new(nodes, json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)cl->nodes[i].id, "url", cl->nodes[i].url[CL_CLIENT],
                                                         "leader_url", cl->nodes[i].url[CL_LEADER], "replica_url", cl->nodes[i].url[CL_REPLICA]));
    for (size_t i = 0; i < cl->ncolls; i++) {
        json_t *sh = json_array();
        for (size_t j = 0; j < cl->nshards; j++) {
            const cl_shard *s = &cl->shards[j];
            if (strcmp(s->coll, cl->colls[i].name)) continue;
            json_t *reps = json_array(), *sync = json_array();
            int leader_alive = 0;
            for (int k = 0; k < s->nreplicas; k++) json_array_append_new(reps, json_integer(s->replicas[k]));
            for (int k = 0; k < s->nin_sync; k++) json_array_append_new(sync, json_integer(s->in_sync[k]));
            for (size_t n = 0; n < cl->nnodes; n++) leader_alive |= cl->nodes[n].id == s->leader;
            json_array_append_new(sh, json_pack("{s:I,s:s,s:I,s:b,s:o,s:o,s:I}", "shard", (json_int_t)s->shard, "collection",
                                                s->local, "leader", (json_int_t)s->leader, "leader_alive", leader_alive,
                                                "replicas", reps, "in_sync", sync, "term", (json_int_t)s->term));
        }
        json_array_append_new(colls, json_pack("{s:s,s:I,s:I,s:o}", "name", cl->colls[i].name, "shard_number",
                                               (json_int_t)cl->colls[i].shard_number, "replication_factor",
                                               (json_int_t)cl->colls[i].replication_factor, "shards", sh));
    }
    json_t *reply = json_pack("{s:b,s:I,s:s,s:I,s:I,s:I,s:o,s:o,s:I,s:I}", "enabled", 1, "node_id", (json_int_t)cl->self,
                              "advertise", cl->advertise, "lease_ttl_s", (json_int_t)cl->ttl_s, "write_quorum",
                              (json_int_t)cl->write_quorum, "etcd_revision", (json_int_t)cl->revision, "nodes", nodes,
                              "collections", colls, "failovers", (json_int_t)cl->failovers, "catchups",
                              (json_int_t)cl->catchups);
    pthread_mutex_unlock(&cl->mu);
    srv_reply_json(r, 200, reply);
}

void srv_cluster_metrics(srv_cluster *cl, struct evbuffer *buf)
{
    if (!cl) return;
    static const char *const names[] = {"writes", "replicated", "follower_failures", "searches", "search_failures"};
    static const char *const help[] = {"writes this node committed as the shard's leader",
                                       "writes sent to an in-sync follower that acknowledged them",
                                       "followers that failed a write (then marked out of sync)",
                                       "shard searches answered (by any replica) for searches taken here",
                                       "shard searches no replica answered (partial results)"};
    pthread_mutex_lock(&cl->mu);
    for (int m = 0; m < 5; m++) {
        evbuffer_add_printf(buf, "# HELP quiver_cluster_shard_%s_total %s\n# TYPE quiver_cluster_shard_%s_total counter\n",
                            names[m], help[m], names[m]);
        for (cl_lead *l = cl->leads; l; l = l->next) {
            atomic_ulong *v[] = {&l->writes, &l->replicated, &l->follower_failures, &l->searches, &l->search_failures};
            evbuffer_add_printf(buf, "quiver_cluster_shard_%s_total{shard=\"%s\"} %lu\n", names[m], l->local,
                                (unsigned long)atomic_load(v[m]));
        }
    }
    evbuffer_add_printf(buf, "# HELP quiver_cluster_shard_role 2 leader, 1 in-sync follower, 0 out-of-sync replica\n"
                             "# TYPE quiver_cluster_shard_role gauge\n");
    for (size_t j = 0; j < cl->nshards; j++) {
        const cl_shard *s = &cl->shards[j];
        if (!cl_has_id(s->replicas, s->nreplicas, cl->self)) continue;
        evbuffer_add_printf(buf, "quiver_cluster_shard_role{shard=\"%s\"} %d\n", s->local,
                            s->leader == cl->self ? 2 : cl_has_id(s->in_sync, s->nin_sync, cl->self));
    }
    evbuffer_add_printf(buf, "# TYPE quiver_cluster_failovers_total counter\nquiver_cluster_failovers_total %llu\n"
                             "# TYPE quiver_cluster_catchups_total counter\nquiver_cluster_catchups_total %llu\n",
                        (unsigned long long)cl->failovers, (unsigned long long)cl->catchups);
    pthread_mutex_unlock(&cl->mu);
}

/* ---- counts for GET /collections/{name} ------------------------------------------------- */

static int shard_count(srv_cluster *cl, const cl_shard *s, long node, uint64_t *count)
{
    if (node == cl->self) {
        srv_coll c;
        qv_collection_info info;
        if (srv_open(cl->ctx, s->local, &c) != QV_OK) return -1;
        int rc = qv_collection_get_info(c.coll, &info);
        qv_collection_close(c.coll);
        *count = info.count;
        return rc == QV_OK ? 0 : -1;
    }
    char url[CL_URL_MAX], u[CL_URL_MAX + 128], err[256];
    cl_http_reply rep;
    if (!cl_node_url(cl, node, CL_REPLICA, url, sizeof url)) return -1;
    snprintf(u, sizeof u, "%s/collections/%s", url, s->local);
    if (cl_http("GET", u, NULL, 0, CL_PEER_TIMEOUT_MS, &rep, err, sizeof err) != 0) return -1;
    json_t *j = rep.status == 200 ? json_loadb(rep.body, rep.len, 0, NULL) : NULL;
    json_t *n = json_object_get(j, "count");
    int ok = json_is_integer(n);
    if (ok) *count = (uint64_t)json_integer_value(n);
    json_decref(j);
    cl_http_reply_free(&rep);
    return ok ? 0 : -1;
}

json_t *srv_cluster_info(srv_cluster *cl, const char *name, uint64_t *count)
{
    size_t ns = 0;
    cl_shard *shards = cl_shards_of(cl, name, &ns);
    json_t *missing = json_array();
    *count = 0;
    for (size_t i = 0; i < ns; i++) {
        const cl_shard *s = &shards[i];
        uint64_t c = 0;
        int ok = (cl_has_id(s->in_sync, s->nin_sync, cl->self) && shard_count(cl, s, cl->self, &c) == 0) ||
                 (s->leader != cl->self && shard_count(cl, s, s->leader, &c) == 0);
        for (int k = 0; !ok && k < s->nin_sync; k++)
            ok = s->in_sync[k] != cl->self && s->in_sync[k] != s->leader && shard_count(cl, s, s->in_sync[k], &c) == 0;
        if (ok) *count += c;
        else json_array_append_new(missing, json_integer((json_int_t)i));
    }
    uint32_t rf = 0;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->ncolls; i++)
        if (!strcmp(cl->colls[i].name, name)) rf = cl->colls[i].replication_factor;
    pthread_mutex_unlock(&cl->mu);
    free(shards);
    return json_pack("{s:I,s:I,s:b,s:o}", "shard_number", (json_int_t)ns, "replication_factor", (json_int_t)rf, "partial",
                     json_array_size(missing) > 0, "missing_shards", missing);
}
