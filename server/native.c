/*
 * server/native.c -- the native API: its route table, its error body and one handler per
 * endpoint; and the operations both APIs share (create, drop, upsert, metrics).
 *
 * Each handler follows the same straight line: read the body against the table of its
 * fields (strict: an unknown field is refused) -> one qv_* call -> encode -> exactly one
 * reply. The pipeline has already checked the key and opened the collection (r->coll).
 * Any failure replies with a 4xx/5xx JSON error and applies nothing: input is fully
 * validated before the single library call, and a batch upsert/delete is one
 * transaction inside the library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "server/cluster.h"
#include "server/server.h"

static void native_error(srv_req *r, int status, const char *code, const char *msg)
{
    srv_reply_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

static void reply_info(srv_req *r, srv_coll *e, int status)
{
    qv_collection_info info;
    int rc = qv_collection_get_info(e->coll, &info);
    json_t *cluster = NULL;
    uint64_t count = 0;
    /* a cluster collection's local copy is empty: its count is the shards' */
    if (rc == QV_OK && srv_cluster_has(r->ctx->cluster, e->name) && (cluster = srv_cluster_info(r->ctx->cluster, e->name, &count)))
        info.count = (size_t)count;
    json_t *j = rc == QV_OK ? api_info_json(e->name, &info) : NULL;
    if (j && cluster) json_object_set(j, "cluster", cluster);
    json_decref(cluster);
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else srv_reply_json(r, status, j);
}

/* ---- health, metrics, listing ---------------------------------------------------- */

static void h_healthz(srv_req *r)
{
    srv_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void srv_h_metrics(srv_req *r)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf || srv_metrics_render(r->ctx, buf) != 0) srv_oom(r);
    else srv_reply_buf(r, 200, "text/plain; version=0.0.4", buf);
    if (buf) evbuffer_free(buf);
}

/* GET /collections, on both APIs: {"collections":[...]} of the ones the credential may
 * read; Qdrant's entries are {"name"}, the native ones add dim, metric and count. */
void srv_h_list(srv_req *r)
{
    char **names = NULL;
    size_t n = 0;
    json_t *arr = json_array();
    int rc = qv_collection_list(r->ctx->db, &names, &n);
    for (size_t i = 0; arr && rc == QV_OK && i < n; i++) {
        qv_collection_info info;
        qv_coll *c = NULL;
        if (!srv_may_see(r, names[i])) continue;
        if (srv_is_qdrant(r)) {
            json_array_append_new(arr, json_pack("{s:s}", "name", names[i]));
        } else if ((rc = qv_collection_open(r->ctx->db, names[i], &c)) == QV_OK &&
                   (rc = qv_collection_get_info(c, &info)) == QV_OK) {
            const char *metric = qv_metric_name(info.config.index.metric);
            json_array_append_new(arr, json_pack("{s:s,s:I,s:s,s:I}", "name", names[i], "dim",
                                                 (json_int_t)info.config.index.dim, "metric", metric ? metric : "?",
                                                 "count", (json_int_t)info.count));
        }
        qv_collection_close(c);
        if (rc == QV_ENOTFOUND) rc = QV_OK;                /* dropped since the listing */
    }
    qv_free_strings(names, n);
    if (rc != QV_OK) {
        json_decref(arr);
        srv_fail_qv(r, rc);
        return;
    }
    json_t *out = arr ? json_pack("{s:o}", "collections", arr) : NULL;
    srv_reply_ok(r, 200, out, json_incref(out));
}

/* ---- collections ------------------------------------------------------------------ */

/* The native create body of cfg: how a cluster collection's config travels in etcd. */
static json_t *config_json(const qv_collection_config *cfg)
{
    const qv_index_params *p = &cfg->index;
    const char *kind = qv_index_kind_name(p->kind), *metric = qv_metric_name(p->metric), *quant = qv_quant_name(p->quant);
    json_t *pi = cfg->payload_index ? json_loads(cfg->payload_index, 0, NULL) : NULL;
    json_t *j = json_pack("{s:I,s:s,s:{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s}}", "dim", (json_int_t)p->dim, "metric",
                          metric ? metric : "l2", "index", "type", kind ? kind : "hnsw", "m", (json_int_t)p->m,
                          "ef_construction", (json_int_t)p->ef_construction, "ef_search", (json_int_t)p->ef_search, "nlist",
                          (json_int_t)p->nlist, "nprobe", (json_int_t)p->nprobe, "kmeans_iters", (json_int_t)p->kmeans_iters,
                          "quant", quant ? quant : "none");
    if (j && pi) json_object_set(j, "payload_index", pi);
    if (j && cfg->on_disk) json_object_set_new(j, "on_disk", json_true());
    json_decref(pi);
    return j;
}

int srv_create_collection(srv_req *r, const qv_collection_config *cfg, uint32_t shard_number, uint32_t replication_factor)
{
    if (r->ctx->cluster) {
        /* the shard map carries config_json's fields only: refuse what it would drop */
        if (cfg->n_sparse || cfg->no_dense || (cfg->vector_name && *cfg->vector_name))
            return srv_bad(r, "sparse and named vectors are not supported in cluster mode yet");
        json_t *config = config_json(cfg);
        int rc = config ? srv_cluster_create(r, config, shard_number ? shard_number : 1, replication_factor ? replication_factor : 1) : -1;
        if (!config) srv_oom(r);
        json_decref(config);
        return rc;
    }
    if (shard_number > 1 || replication_factor > 1) {
        srv_bad(r, "shard_number and replication_factor above 1 need cluster mode (quiverd --cluster)");
        return -1;
    }
    int rc = qv_collection_create(r->ctx->db, r->name, cfg, NULL);
    if (rc == QV_EEXIST && strstr(qv_last_error(), "alias")) srv_fail_qv(r, rc);     /* the name is an alias's */
    else if (rc == QV_EEXIST) srv_fail(r, 409, "already_exists", "Collection `%s` already exists!", r->name);
    else if (rc != QV_OK || (rc = srv_open(r->ctx, r->name, &r->opened)) != QV_OK) srv_fail_qv(r, rc);
    else {
        r->coll = &r->opened;
        srv_log(SRV_LOG_INFO, "created collection '%s'", r->name);
        return 0;
    }
    return -1;
}

/* PUT /collections/{name} {"dim","metric","on_disk","index":{...},"payload_index":{...}}; the
 * index parameters left out (or 0) are the library's defaults. */
static void h_create(srv_req *r)
{
    api_create_body b = {0};
    qv_collection_config cfg = {0};
    char *pi = NULL;
    qv_index_params_init(&b.p, QV_INDEX_HNSW, 0, QV_METRIC_L2);
    if (srv_read_body(r, "the collection config", api_create_fields, &b) != 0) return;
    cfg.index = b.p;
    cfg.on_disk = b.on_disk;
    if (b.payload_index.p && !(cfg.payload_index = pi = strndup(b.payload_index.p, b.payload_index.len))) srv_oom(r);
    else if (srv_create_collection(r, &cfg, b.shard_number, b.replication_factor) == 0) reply_info(r, r->coll, 201);
    free(pi);
}

/* PATCH /collections/{name} {"index":{"m","ef_construction","ef_search","quant"}}: what is
 * given is stored and the index rebuilt with it from the stored vectors before the reply
 * (qv_collection_update; searches go on over the old index meanwhile); the reply is the
 * collection's info. */
static void h_update(srv_req *r)
{
    api_update_body b = {0};
    if (srv_read_body(r, "the collection update", api_update_fields, &b) != 0) return;
    qv_collection_changes ch = {.m = b.m, .ef_construction = b.ef_construction, .ef_search = b.ef_search,
                                .set_quant = b.quant != 0, .quant = (qv_quant)(b.quant ? b.quant - 1 : 0)};
    if (srv_update_collection(r, &ch) == 0) reply_info(r, r->coll, 200);
}

int srv_update_collection(srv_req *r, const qv_collection_changes *ch)
{
    if (srv_cluster_has(r->ctx->cluster, r->name)) return srv_cluster_update(r, ch);
    int rc = qv_collection_update(r->coll->coll, ch);
    if (rc != QV_OK) {
        srv_fail_qv(r, rc);
        return -1;
    }
    srv_log(SRV_LOG_INFO, "collection '%s': parameters updated", r->name);
    return 0;
}

static void h_info(srv_req *r)
{
    reply_info(r, r->coll, 200);
}

int srv_drop_collection(srv_req *r)
{
    if (srv_cluster_has(r->ctx->cluster, r->name) && srv_cluster_drop(r) != 0) return -1;
    int rc = qv_collection_drop(r->ctx->db, r->name);
    if (rc == QV_ENOTFOUND) srv_fail(r, 404, "not_found", "Collection `%s` doesn't exist!", r->name);
    else if (rc != QV_OK) srv_fail_qv(r, rc);
    else srv_log(SRV_LOG_INFO, "dropped collection '%s'", r->name);
    return rc == QV_OK ? 0 : -1;
}

static void h_drop(srv_req *r)
{
    if (srv_drop_collection(r) == 0) srv_reply_json(r, 200, json_pack("{s:s}", "dropped", r->name));
}

/* ---- points ----------------------------------------------------------------------- */

int srv_upsert(srv_req *r, const api_points *p, const qv_sparse_vector *sparse)
{
    if (srv_cluster_has(r->ctx->cluster, r->name)) {
        if (sparse) return srv_bad(r, "sparse vectors are not routed in cluster mode");
        return srv_cluster_upsert(r, p->ids, p->vecs, p->payloads, p->n, r->coll->dim);
    }
    int rc = p->n ? qv_upsert_sparse(r->coll->coll, p->n, p->ids, p->vecs, (const char *const *)p->payloads, sparse) : QV_OK;
    r->points = rc == QV_OK ? (long)p->n : 0;
    return rc == QV_OK ? 0 : srv_fail_qv(r, rc);
}

static const api_jfield upsert_fields[] = {{"points", API_J_CALL, .read = api_jread_points, .required = 1}, {0}};

/* PUT /collections/{name}/points {"points":[{"id","vector","payload"},...]} */
static void h_upsert(srv_req *r)
{
    api_points p = {.dim = r->coll->dim};
    if (srv_read_body(r, "the body", upsert_fields, &p) == 0 && srv_upsert(r, &p, NULL) == 0)
        srv_reply_json(r, 200, json_pack("{s:I}", "upserted", (json_int_t)p.n));
    api_points_release(&p);
}

static void h_get_point(srv_req *r)
{
    qv_hit h = {0, 0};
    api_point_style st = {.payload = 1, .with_vector = 1, .single = 1};
    int rc;
    if (api_parse_id(r->arg, &h.id) != 0) srv_bad(r, "point ids are decimal integers");
    else if ((rc = api_wpoints(srv_writer(r), r->coll->coll, r->coll->dim, &h, 1, &st)) == QV_ENOTFOUND)
        srv_fail(r, 404, "not_found", "no point %llu in collection '%s'", (unsigned long long)h.id, r->name);
    else if (rc != QV_OK) srv_fail_qv(r, rc);
    else srv_reply_written(r);
}

static const api_jfield delete_fields[] = {{"ids", API_J_CALL, .read = api_jread_ids, .required = 1}, {0}};

/* POST /collections/{name}/points/delete {"ids":[...]} */
static void h_delete_points(srv_req *r)
{
    api_ids ids = {0};
    size_t deleted = 0;
    if (srv_read_body(r, "the body", delete_fields, &ids) == 0) {
        int cluster = srv_cluster_has(r->ctx->cluster, r->name);
        int rc = cluster ? (ids.n ? srv_cluster_delete(r, ids.v, ids.n, &deleted) : 0)
                         : ids.n ? qv_delete(r->coll->coll, ids.n, ids.v, &deleted) : QV_OK;
        r->points = (long)deleted;
        if (cluster && rc != 0) {}                                /* replied */
        else if (rc != QV_OK) srv_fail_qv(r, rc);
        else srv_reply_json(r, 200, json_pack("{s:I}", "deleted", (json_int_t)deleted));
    }
    free(ids.v);
}

/* POST /collections/{name}/points/scroll {"offset","limit","filter","with_payload",
 * "with_vector"} -> {"points":[...],"next_offset":id|null,"total":n}: the points (that
 * pass the filter) in id order from offset, a page of limit (default 10); next_offset
 * starts the next page, total counts every passing point. */
typedef struct { uint64_t offset, limit; api_filter f; int with_payload, with_vector; } scroll_body;
#define SB(field) offsetof(scroll_body, field)
static const api_jfield scroll_fields[] = {
    {"offset", API_J_U64, SB(offset), .lo = 0, .hi = INT64_MAX},
    {"limit", API_J_U64, SB(limit), .lo = 1, .hi = 10000},
    {"filter", API_J_CALL, SB(f), .read = api_jread_filter},
    {"with_payload", API_J_BOOL, .off = SB(with_payload)},
    {"with_vector", API_J_BOOL, .off = SB(with_vector)},
    {0},
};

static void h_scroll(srv_req *r)
{
    scroll_body b = {.limit = API_DEFAULT_K, .with_payload = 1};
    uint64_t *ids = NULL, total = 0;
    qv_hit *h = NULL;
    size_t n = 0;
    if (evbuffer_get_length(evhttp_request_get_input_buffer(r->req)) &&
        srv_read_body(r, "the body", scroll_fields, &b) != 0)
        goto cleanup;
    /* one more than a page: its id is where the next page starts */
    if (!(ids = malloc((size_t)(b.limit + 1) * sizeof *ids)) || !(h = malloc((size_t)(b.limit + 1) * sizeof *h))) {
        srv_oom(r);
        goto cleanup;
    }
    int rc = qv_scroll(r->coll->coll, b.f.f, NULL, NULL, b.offset, (size_t)b.limit + 1, ids, &n, &total);
    api_wbuf *w = srv_writer(r);
    api_point_style st = {.payload = b.with_payload, .with_vector = b.with_vector};
    for (size_t i = 0; i < n; i++) h[i] = (qv_hit){ids[i], 0};
    API_WLIT(w, "{\"points\":");
    if (rc == QV_OK) rc = api_wpoints(w, r->coll->coll, r->coll->dim, h, n < b.limit ? n : (size_t)b.limit, &st);
    API_WLIT(w, ",\"next_offset\":");
    if (n > b.limit) api_wu64(w, ids[b.limit]);
    else API_WLIT(w, "null");
    API_WLIT(w, ",\"total\":");
    api_wu64(w, total);
    API_WLIT(w, "}");
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else srv_reply_written(r);
cleanup:
    free(h);
    free(ids);
    api_filter_release(&b.f);
}

/* ---- search ----------------------------------------------------------------------- */

/* POST .../search {"vector",...} -> {"hits":[...],"took_us":n,"took":{...}}, and
 * POST .../search/batch {"searches":[...]} -> {"results":[{"hits","took"},...],"took_us":n}
 * (route variant 1). */
static void h_search(srv_req *r)
{
    int batch = r->route->variant;
    srv_coll *c = r->coll;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in), n = 0;
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    api_search *s = NULL;
    api_results res = {0};
    api_jerr e;
    api_wbuf *w = srv_writer(r);
    if (!body) { srv_oom(r); return; }
    if (srv_cluster_has(r->ctx->cluster, r->name)) {
        if (batch) srv_fail(r, 501, "not_implemented", "search/batch is not supported on cluster collection `%s` (search is)", r->name);
        else srv_cluster_search(r);
        return;
    }
    if (api_parse_searches(body, len, c->dim, batch, &s, &n, &e) != 0) { srv_fail_jerr(r, &e); return; }
    int rc = api_run_searches(c->coll, c->dim, s, n, &res);
    if (batch) API_WLIT(w, "{\"results\":[");
    for (size_t i = 0; i < n && rc == QV_OK; i++) {
        api_point_style st = {.scores = 1, .payload = s[i].with_payload};
        if (i) API_WLIT(w, ",");
        API_WLIT(w, "{\"hits\":");
        rc = api_wpoints(w, c->coll, c->dim, res.hits + i * res.kmax, res.nh[i], &st);
        if (!batch) {
            API_WLIT(w, ",\"took_us\":");
            api_wu64(w, res.took_us);
        }
        API_WLIT(w, ",\"took\":");
        api_wtook(w, &res.st[i]);
        API_WLIT(w, "}");
    }
    if (batch) {
        API_WLIT(w, "],\"took_us\":");
        api_wu64(w, res.took_us);
        API_WLIT(w, "}");
    }
    if (rc == QV_OK) srv_reply_written(r);
    else srv_fail_qv(r, rc);
    api_results_free(&res);
    api_searches_free(s, n);
}

/* ---- payload index and training ---------------------------------------------------- */

/* Progress of a field index build, into the server log at most every 2 seconds. */
typedef struct { const char *coll, *field; uint64_t last_us; } field_progress;

static void log_field_progress(const char *phase, size_t done, size_t total, void *arg)
{
    field_progress *fp = arg;
    uint64_t now = api_now_us();
    (void)phase;
    if (now - fp->last_us < 2000000 && done < total) return;
    fp->last_us = now;
    srv_log(SRV_LOG_INFO, "collection '%s': indexing payload field '%s': %zu/%zu points", fp->coll, fp->field, done, total);
}

static const char *const field_types[] = {"keyword", "integer", "float", "bool", "text", NULL};
static const api_jfield type_fields[] = {{"type", API_J_NAME, 0, .arg = field_types, .required = 1}, {0}};

/* PUT /collections/{name}/index/{field} {"type":"keyword"}: 201 when the field was not
 * indexed, 200 when only its type changed. The field is built from the stored payloads
 * (one pass) while this worker waits; the other workers keep serving, searches included
 * (until it is built, filters on the field read the payloads). */
static void h_index_field(srv_req *r)
{
    qv_collection_info info;
    json_t *before = NULL;
    int t = 0, rc;
    field_progress fp = {r->name, r->arg, api_now_us()};
    if (srv_read_body(r, "the body", type_fields, &t) != 0) return;
    if ((rc = qv_collection_get_info(r->coll->coll, &info)) != QV_OK || !(before = api_payload_index_json(&info)) ||
        (rc = qv_collection_index_field(r->coll->coll, r->arg, field_types[t], log_field_progress, &fp)) != QV_OK ||
        (rc = qv_collection_get_info(r->coll->coll, &info)) != QV_OK) {
        srv_fail_qv(r, before ? rc : QV_ENOMEM);
    } else {
        int existed = json_object_get(before, r->arg) != NULL;
        srv_log(SRV_LOG_INFO, "collection '%s': indexed payload field '%s' as %s", r->name, r->arg, field_types[t]);
        srv_reply_json(r, existed ? 200 : 201, json_pack("{s:s,s:s,s:b,s:o}", "field", r->arg, "type", field_types[t],
                                                         "created", !existed, "payload_index", api_payload_index_json(&info)));
    }
    json_decref(before);
}
/* DELETE /collections/{name}/index/{field}: 404 when the field is not indexed. */
static void h_unindex_field(srv_req *r)
{
    qv_collection_info info;
    int rc;
    if ((rc = qv_collection_unindex_field(r->coll->coll, r->arg)) != QV_OK ||
        (rc = qv_collection_get_info(r->coll->coll, &info)) != QV_OK)
        srv_fail_qv(r, rc);
    else {
        srv_log(SRV_LOG_INFO, "collection '%s': payload field '%s' no longer indexed", r->name, r->arg);
        srv_reply_json(r, 200, json_pack("{s:s,s:b,s:o}", "field", r->arg, "deleted", 1, "payload_index",
                                         api_payload_index_json(&info)));
    }
}

/* POST /collections/{name}/train (no body, or {}): train an ivf collection now on the
 * points stored so far. Training runs under the library's writer lock, and searches go
 * on (exact) until the trained index is swapped in. */
static void h_train(srv_req *r)
{
    static const api_jfield none[] = {{0}};
    qv_collection_info info;
    uint64_t t0 = api_now_us();
    int rc;
    if (evbuffer_get_length(evhttp_request_get_input_buffer(r->req)) && srv_read_body(r, "the body", none, NULL) != 0)
        return;
    if ((rc = qv_collection_train(r->coll->coll, NULL, NULL)) != QV_OK ||
        (rc = qv_collection_get_info(r->coll->coll, &info)) != QV_OK) {
        srv_fail_qv(r, rc);
        return;
    }
    srv_log(SRV_LOG_INFO, "collection '%s': trained on %zu points", r->name, info.count);
    srv_reply_json(r, 200, json_pack("{s:b,s:I,s:I}", "trained", 1, "count", (json_int_t)info.count, "took_us",
                                     (json_int_t)(api_now_us() - t0)));
}

/* ---- the table ---------------------------------------------------------------------- */

static const srv_route routes[] = {
    {SRV_M_GET, "healthz", SRV_EP_HEALTHZ, SRV_R_OPEN, h_healthz, 0, NULL},
    {SRV_M_GET, "dashboard/**", SRV_EP_DASHBOARD, SRV_R_OPEN, srv_h_dashboard, 0, NULL},
    {SRV_M_GET, "cluster", SRV_EP_OTHER, 0, srv_h_cluster_status, 0, NULL},
    {SRV_M_POST, "cluster/shards/{name}/upsert", SRV_EP_UPSERT, SRV_R_WRITE, srv_h_cluster_shard_write, 0, NULL},
    {SRV_M_POST, "cluster/shards/{name}/delete", SRV_EP_DELETE_POINTS, SRV_R_WRITE, srv_h_cluster_shard_write, 1, NULL},
    {SRV_M_POST, "cluster/shards/{name}/snapshot", SRV_EP_SNAPSHOT, SRV_R_WRITE, srv_h_cluster_shard_snapshot, 0, NULL},
    {SRV_M_POST, "cluster/shards/{name}/join", SRV_EP_OTHER, SRV_R_WRITE, srv_h_cluster_shard_join, 0, NULL},
    {SRV_M_POST, "cluster/shards/{name}/handover", SRV_EP_OTHER, SRV_R_WRITE, srv_h_cluster_shard_handover, 0, NULL},
    {SRV_M_POST, "cluster/collections/{name}/shards/{arg}/move", SRV_EP_OTHER, SRV_R_WRITE, srv_h_cluster_move, 0, NULL},
    {SRV_M_POST, "cluster/collections/{name}/reconcile", SRV_EP_OTHER, SRV_R_WRITE, srv_h_cluster_reconcile, 0, NULL},
    {SRV_M_POST, "cluster/nodes/{arg}/drain", SRV_EP_OTHER, SRV_R_WRITE, srv_h_cluster_drain, 0, NULL},
    {SRV_M_POST, "cluster/rebalance", SRV_EP_OTHER, SRV_R_WRITE, srv_h_cluster_rebalance, 0, NULL},
    {SRV_M_GET, "aliases", SRV_EP_OTHER, 0, srv_h_alias_list, 0, NULL},
    {SRV_M_POST, "aliases", SRV_EP_OTHER, SRV_R_WRITE, srv_h_alias_update, 0, NULL},
    {SRV_M_GET, "collections/{name}", SRV_EP_INFO, SRV_R_COLL | SRV_R_CLUSTER, h_info, 0, NULL},
    {SRV_M_PUT, "collections/{name}", SRV_EP_CREATE, SRV_R_WRITE | SRV_R_CLUSTER, h_create, 0, NULL},
    {SRV_M_DELETE, "collections/{name}", SRV_EP_DROP, SRV_R_WRITE | SRV_R_CLUSTER, h_drop, 0, NULL},
    {SRV_M_PATCH, "collections/{name}", SRV_EP_OTHER, SRV_R_WRITE | SRV_R_COLL | SRV_R_CLUSTER, h_update, 0, NULL},
    {SRV_M_PUT, "collections/{name}/points", SRV_EP_UPSERT, SRV_R_WRITE | SRV_R_COLL | SRV_R_CLUSTER, h_upsert, 0, NULL},
    {SRV_M_POST, "collections/{name}/points/delete", SRV_EP_DELETE_POINTS, SRV_R_WRITE | SRV_R_COLL | SRV_R_CLUSTER, h_delete_points, 0, NULL},
    {SRV_M_POST, "collections/{name}/points/scroll", SRV_EP_OTHER, SRV_R_COLL, h_scroll, 0, NULL},
    {SRV_M_GET, "collections/{name}/points/{arg}", SRV_EP_GET_POINT, SRV_R_COLL, h_get_point, 0, NULL},
    {SRV_M_POST, "collections/{name}/search", SRV_EP_SEARCH, SRV_R_COLL | SRV_R_CLUSTER, h_search, 0, NULL},
    {SRV_M_POST, "collections/{name}/search/batch", SRV_EP_SEARCH_BATCH, SRV_R_COLL | SRV_R_CLUSTER, h_search, 1, NULL},
    {SRV_M_POST, "collections/{name}/search/text", SRV_EP_SEARCH, SRV_R_COLL, srv_h_text_search, 0, NULL},
    {SRV_M_POST, "collections/{name}/search/hybrid", SRV_EP_SEARCH, SRV_R_COLL, srv_h_text_search, 1, NULL},
    {SRV_M_PUT, "collections/{name}/index/{arg}", SRV_EP_INDEX_FIELD, SRV_R_WRITE | SRV_R_COLL, h_index_field, 0, NULL},
    {SRV_M_DELETE, "collections/{name}/index/{arg}", SRV_EP_UNINDEX_FIELD, SRV_R_WRITE | SRV_R_COLL, h_unindex_field, 0, NULL},
    {SRV_M_POST, "collections/{name}/train", SRV_EP_TRAIN, SRV_R_WRITE | SRV_R_COLL, h_train, 0, NULL},
    {SRV_M_PUT, "snapshots/recover", SRV_EP_RESTORE, SRV_R_WRITE, srv_h_snapshot_recover, 0, NULL},
};

const srv_api srv_native_api = {routes, sizeof routes / sizeof routes[0], 6, native_error, 0};   /* 6: cluster/collections/{name}/shards/{arg}/move */
