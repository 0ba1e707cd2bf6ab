/*
 * server/qdrant.c -- the Qdrant-compatible listener: dispatch, envelope, collections.
 *
 * One evhttp per worker accepts on the --qdrant-listen socket with qd_http_dispatch as its
 * callback (main.c), beside the native evhttp on the same event base, so the thread model,
 * draining, API keys (srv_keys), the collection table and the metrics (each route records
 * under the native endpoint it corresponds to) are shared with the native API.
 *
 * Routing splits the decoded path into at most 6 segments. Point routes take the
 * collection table lock for reading around the handler (the handler gets the borrowed
 * srv_coll); create and delete take it for writing, as the native handlers do.
 * Every reply is Qdrant's shape: {"result":...,"status":"ok","time":s} on success and
 * {"status":{"error":"..."},"time":s} with a 4xx/5xx otherwise. Qdrant paths that quiverd
 * does not implement (snapshots, cluster, aliases, recommend, discover, ...) answer 501
 * with a message saying so, never a silent success.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "server/qdrant.h"

#define MAX_SEGS 6

static double elapsed_s(const srv_req *r)
{
    return (double)(srv_now_us() - r->t0_us) / 1e6;
}

void qd_ok(srv_req *r, json_t *result)
{
    if (!result) { qd_err(r, 503, "out of memory"); return; }
    srv_reply_json(r, 200, json_pack("{s:o,s:s,s:f}", "result", result, "status", "ok", "time", elapsed_s(r)));
}

void qd_err(srv_req *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)                 /* library messages may quote client bytes */
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) *p = '?';
    if (status >= 500 && status != 501) srv_log(SRV_LOG_WARN, "qdrant api: %d: %s", status, msg);
    srv_reply_json(r, status, json_pack("{s:{s:s},s:f}", "status", "error", msg, "time", elapsed_s(r)));
}

void qd_err_qv(srv_req *r, int rc)
{
    int status;
    const char *kind;
    switch (rc) {
    case QV_EINVAL: case QV_EDIM: status = 400; kind = "Wrong input"; break;
    case QV_ENOTFOUND: status = 404; kind = "Not found"; break;
    case QV_EEXIST: status = 409; kind = "Wrong input"; break;
    case QV_ESTATE: status = 409; kind = "Bad request"; break;
    case QV_ENOMEM: status = 503; kind = "Service unavailable"; break;
    case QV_EFULL: status = 507; kind = "Storage full"; break;
    case QV_ENODEV: status = 501; kind = "Not implemented"; break;
    default: status = 500; kind = "Service internal error"; break;
    }
    const char *d = qv_last_error();
    qd_err(r, status, "%s: %s", kind, d && *d ? d : qv_strerror(rc));
}

json_t *qd_update_result(qv_coll *c)
{
    qv_collection_info info;
    json_int_t seq = qv_collection_get_info(c, &info) == QV_OK ? (json_int_t)info.last_seq : 0;
    return json_pack("{s:I,s:s}", "operation_id", seq, "status", "completed");
}

json_t *qd_body(srv_req *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    if (evbuffer_get_length(in) == 0) return json_object();
    srv_jerr e = {0};
    json_t *b = srv_json_body(r->req, &e);
    if (!b) qd_err(r, 400, "Format error in JSON body: %s", e.msg);
    return b;
}

/* ---- collections --------------------------------------------------------------- */

static const char *distance_name(qv_metric m)
{
    return m == QV_METRIC_COSINE ? "Cosine" : m == QV_METRIC_IP ? "Dot" : "Euclid";
}

static json_t *collection_info(const srv_coll *e, const qv_collection_info *info)
{
    const qv_index_params *p = &info->config.index;
    json_t *schema = json_object();
    json_t *pi = info->config.payload_index ? json_loads(info->config.payload_index, 0, NULL) : NULL;
    const char *k;
    json_t *v;
    if (json_is_object(pi))
        json_object_foreach(pi, k, v)
            json_object_set_new(schema, k, json_pack("{s:O,s:i}", "data_type", v, "points", 0));
    json_decref(pi);
    (void)e;
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:i,s:{s:{s:{s:I,s:s},s:i,s:i,s:i,s:b},s:{s:I,s:I,s:i,s:i,s:b},"
                     "s:{s:f,s:i,s:i},s:{s:i,s:i},s:n},s:o}",
                     "status", "green", "optimizer_status", "ok",
                     "vectors_count", (json_int_t)info->count, "indexed_vectors_count", (json_int_t)info->count,
                     "points_count", (json_int_t)info->count, "segments_count", 1,
                     "config", "params", "vectors", "size", (json_int_t)p->dim, "distance", distance_name(p->metric),
                     "shard_number", 1, "replication_factor", 1, "write_consistency_factor", 1,
                     "on_disk_payload", 1,
                     "hnsw_config", "m", (json_int_t)(p->kind == QV_INDEX_FLAT ? 0 : p->m),
                     "ef_construct", (json_int_t)p->ef_construction, "full_scan_threshold", 10000,
                     "max_indexing_threads", 0, "on_disk", 0,
                     "optimizer_config", "deleted_threshold", 0.2, "vacuum_min_vector_number", 1000,
                     "default_segment_number", 0,
                     "wal_config", "wal_capacity_mb", 32, "wal_segments_ahead", 0,
                     "quantization_config",
                     "payload_schema", schema);
}

static void h_list(srv_req *r)
{
    srv_ctx *ctx = r->ctx;
    json_t *arr = json_array();
    pthread_rwlock_rdlock(&ctx->colls.lock);
    for (size_t i = 0; arr && i < ctx->colls.n; i++)
        json_array_append_new(arr, json_pack("{s:s}", "name", ctx->colls.v[i].name));
    pthread_rwlock_unlock(&ctx->colls.lock);
    qd_ok(r, arr ? json_pack("{s:o}", "collections", arr) : NULL);
}

static void h_info(srv_req *r, srv_coll *e)
{
    qv_collection_info info;
    int rc = qv_collection_get_info(e->coll, &info);
    if (rc != QV_OK) qd_err_qv(r, rc);
    else qd_ok(r, collection_info(e, &info));
}

/* Fold an hnsw_config object into p. */
static int hnsw_config(const json_t *h, qv_index_params *p, char *msg, size_t len)
{
    if (!h || json_is_null(h)) return 0;
    if (!json_is_object(h)) { snprintf(msg, len, "hnsw_config must be an object"); return -1; }
    json_t *m = json_object_get(h, "m"), *efc = json_object_get(h, "ef_construct");
    if (m && !json_is_null(m)) {
        if (!json_is_integer(m) || json_integer_value(m) < 0 || json_integer_value(m) > 100 ||
            json_integer_value(m) == 1) {
            snprintf(msg, len, "hnsw_config.m must be 0 (no graph: exact search) or 2..100");
            return -1;
        }
        if (json_integer_value(m) == 0) p->kind = QV_INDEX_FLAT;
        else { p->kind = QV_INDEX_HNSW; p->m = (uint32_t)json_integer_value(m); }
    }
    if (efc && !json_is_null(efc)) {
        if (!json_is_integer(efc) || json_integer_value(efc) < 4 || json_integer_value(efc) > QV_MAX_EF) {
            snprintf(msg, len, "hnsw_config.ef_construct must be 4..%u", QV_MAX_EF);
            return -1;
        }
        p->ef_construction = (uint32_t)json_integer_value(efc);
    }
    return 0;
}

static int nonempty(const json_t *v)
{
    return v && !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0);
}

static int parse_create(const json_t *b, qv_collection_config *cfg, char *msg, size_t len)
{
    static const char *const unsup[][2] = {
        {"sparse_vectors", "sparse vectors are not supported by quiverd"},
        {"init_from", "init_from is not supported by quiverd"},
        {"sharding_method", "custom sharding is not supported by quiverd (single node)"},
        {"strict_mode_config", "strict_mode_config is not supported by quiverd"},
    };
    for (size_t i = 0; i < sizeof unsup / sizeof *unsup; i++)
        if (nonempty(json_object_get(b, unsup[i][0]))) { snprintf(msg, len, "%s", unsup[i][1]); return -1; }
    json_t *v = json_object_get(b, "vectors");
    if (!json_is_object(v)) { snprintf(msg, len, "'vectors' must be {\"size\": N, \"distance\": \"Cosine\"|\"Euclid\"|\"Dot\"}"); return -1; }
    json_t *size = json_object_get(v, "size"), *dist = json_object_get(v, "distance");
    if (!size) { snprintf(msg, len, "named vectors are not supported by quiverd: 'vectors' must be {\"size\": N, \"distance\": ...}"); return -1; }
    if (!json_is_integer(size) || json_integer_value(size) < 1 || json_integer_value(size) > (json_int_t)QV_MAX_DIM) {
        snprintf(msg, len, "vectors.size must be 1..%u", QV_MAX_DIM);
        return -1;
    }
    qv_metric metric;
    const char *d = json_is_string(dist) ? json_string_value(dist) : "";
    if (strcmp(d, "Cosine") == 0) metric = QV_METRIC_COSINE;
    else if (strcmp(d, "Euclid") == 0) metric = QV_METRIC_L2;
    else if (strcmp(d, "Dot") == 0) metric = QV_METRIC_IP;
    else if (strcmp(d, "Manhattan") == 0) { snprintf(msg, len, "distance Manhattan is not supported by quiverd"); return -1; }
    else { snprintf(msg, len, "vectors.distance must be \"Cosine\", \"Euclid\" or \"Dot\""); return -1; }
    if (nonempty(json_object_get(v, "multivector_config"))) { snprintf(msg, len, "multivectors are not supported by quiverd"); return -1; }
    json_t *dt = json_object_get(v, "datatype");
    if (dt && !json_is_null(dt) && !(json_is_string(dt) && strcmp(json_string_value(dt), "float32") == 0)) {
        snprintf(msg, len, "vectors.datatype: only float32 is supported by quiverd");
        return -1;
    }
    memset(cfg, 0, sizeof *cfg);
    qv_index_params_init(&cfg->index, QV_INDEX_HNSW, (uint32_t)json_integer_value(size), metric);
    cfg->index.m = 16;
    cfg->index.ef_construction = 100;              /* Qdrant's defaults */
    if (hnsw_config(json_object_get(b, "hnsw_config"), &cfg->index, msg, len) ||
        hnsw_config(json_object_get(v, "hnsw_config"), &cfg->index, msg, len))
        return -1;
    return 0;
}

static void h_create(srv_req *r, const char *name)
{
    srv_ctx *ctx = r->ctx;
    char msg[256];
    qv_collection_config cfg;
    json_t *b = qd_body(r);
    if (!b) return;
    if (parse_create(b, &cfg, msg, sizeof msg) != 0) {
        qd_err(r, 400, "Wrong input: %s", msg);
        json_decref(b);
        return;
    }
    json_decref(b);
    pthread_rwlock_wrlock(&ctx->colls.lock);
    if (srv_colls_find(&ctx->colls, name)) {
        pthread_rwlock_unlock(&ctx->colls.lock);
        qd_err(r, 409, "Wrong input: Collection `%s` already exists!", name);
        return;
    }
    qv_coll *c = NULL;
    int rc = qv_collection_create(ctx->db, name, &cfg, &c);
    if (rc == QV_OK && !c) rc = qv_collection_open(ctx->db, name, &c);
    if (rc == QV_OK && (rc = srv_colls_add(&ctx->colls, name, c)) != QV_OK) qv_collection_drop(ctx->db, name);
    pthread_rwlock_unlock(&ctx->colls.lock);
    if (rc != QV_OK) { qd_err_qv(r, rc); return; }
    srv_log(SRV_LOG_INFO, "created collection '%s' (qdrant api)", name);
    qd_ok(r, json_true());
}

static void h_drop(srv_req *r, const char *name)
{
    srv_ctx *ctx = r->ctx;
    pthread_rwlock_wrlock(&ctx->colls.lock);
    int found = srv_colls_find(&ctx->colls, name) != NULL;
    int rc = found ? qv_collection_drop(ctx->db, name) : QV_ENOTFOUND;
    if (rc == QV_OK) srv_colls_remove(&ctx->colls, name);
    pthread_rwlock_unlock(&ctx->colls.lock);
    if (!found) qd_err(r, 404, "Not found: Collection `%s` doesn't exist!", name);
    else if (rc != QV_OK) qd_err_qv(r, rc);
    else {
        srv_log(SRV_LOG_INFO, "dropped collection '%s' (qdrant api)", name);
        qd_ok(r, json_true());
    }
}

static void h_index_create(srv_req *r, srv_coll *e)
{
    json_t *b = qd_body(r);
    if (!b) return;
    json_t *f = json_object_get(b, "field_name"), *s = json_object_get(b, "field_schema");
    if (json_is_object(s)) s = json_object_get(s, "type");
    const char *t = json_is_string(s) ? json_string_value(s) : NULL, *type = NULL;
    if (!json_is_string(f)) qd_err(r, 400, "Wrong input: 'field_name' must be a string");
    else if (!t) qd_err(r, 400, "Wrong input: 'field_schema' must be a type name or {\"type\": name}");
    else {
        if (!strcmp(t, "keyword") || !strcmp(t, "uuid")) type = "keyword";
        else if (!strcmp(t, "integer")) type = "integer";
        else if (!strcmp(t, "float")) type = "float";
        else if (!strcmp(t, "bool")) type = "bool";
        if (!type) qd_err(r, 400, "Wrong input: payload index type '%.32s' is not supported by quiverd "
                                  "(keyword, integer, float, bool, uuid are)", t);
        else {
            int rc = qv_collection_index_field(e->coll, json_string_value(f), type, NULL, NULL);
            if (rc != QV_OK) qd_err_qv(r, rc);
            else qd_ok(r, qd_update_result(e->coll));
        }
    }
    json_decref(b);
}

static void h_index_delete(srv_req *r, srv_coll *e, const char *field)
{
    int rc = qv_collection_unindex_field(e->coll, field);
    if (rc != QV_OK && rc != QV_ENOTFOUND) qd_err_qv(r, rc);
    else qd_ok(r, qd_update_result(e->coll));
}

/* ---- routing ------------------------------------------------------------------- */

enum {
    R_NONE = 0, R_ROOT, R_HEALTH, R_METRICS, R_LIST, R_INFO, R_CREATE, R_DROP, R_EXISTS,
    R_INDEX_PUT, R_INDEX_DEL, R_UPSERT, R_RETRIEVE, R_GET_POINT, R_DELETE, R_PAYLOAD_SET,
    R_PAYLOAD_PUT, R_PAYLOAD_DEL, R_PAYLOAD_CLEAR, R_SEARCH, R_SEARCH_BATCH, R_QUERY,
    R_QUERY_BATCH, R_SCROLL, R_COUNT, R_UNSUPPORTED
};
enum { M_GET = 1, M_POST = 2, M_PUT = 4, M_DELETE = 8, M_PATCH = 16 };

typedef struct {
    int id;                       /* R_* for the method given; R_NONE: method not allowed */
    unsigned allowed;
    int write;
    srv_endpoint ep;
    const char *name, *arg;       /* collection, point id or field */
    const char *what;             /* R_UNSUPPORTED: what is not supported */
} qroute;

static unsigned method_bit(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: case EVHTTP_REQ_HEAD: return M_GET;
    case EVHTTP_REQ_POST: return M_POST;
    case EVHTTP_REQ_PUT: return M_PUT;
    case EVHTTP_REQ_DELETE: return M_DELETE;
    case EVHTTP_REQ_PATCH: return M_PATCH;
    default: return 0;
    }
}

static int seg_is(char **s, int n, int i, const char *v)
{
    return i < n && strcmp(s[i], v) == 0;
}

/* 1 when the path is known (rt filled), 0 for 404. */
static int match(char **s, int n, unsigned mb, qroute *rt)
{
    memset(rt, 0, sizeof *rt);
    rt->ep = SRV_EP_OTHER;
#define ON(bit, rid, w, endpoint) do { rt->allowed |= (bit); if (mb == (bit)) { rt->id = (rid); rt->write = (w); rt->ep = (endpoint); } } while (0)
#define UNSUP(text) do { rt->allowed = M_GET | M_POST | M_PUT | M_DELETE | M_PATCH; rt->id = R_UNSUPPORTED; rt->what = (text); return 1; } while (0)
    if (n == 0) { ON(M_GET, R_ROOT, 0, SRV_EP_HEALTHZ); return 1; }
    if (n == 1 && (seg_is(s, n, 0, "healthz") || seg_is(s, n, 0, "livez") || seg_is(s, n, 0, "readyz"))) {
        ON(M_GET, R_HEALTH, 0, SRV_EP_HEALTHZ);
        return 1;
    }
    if (n == 1 && seg_is(s, n, 0, "metrics")) { ON(M_GET, R_METRICS, 0, SRV_EP_METRICS); return 1; }
    if (seg_is(s, n, 0, "snapshots")) UNSUP("snapshots are");
    if (seg_is(s, n, 0, "cluster")) UNSUP("the cluster API is");
    if (seg_is(s, n, 0, "aliases")) UNSUP("collection aliases are");
    if (seg_is(s, n, 0, "telemetry")) UNSUP("telemetry is");
    if (seg_is(s, n, 0, "locks")) UNSUP("locks are");
    if (seg_is(s, n, 0, "issues")) UNSUP("issues are");
    if (!seg_is(s, n, 0, "collections")) return 0;
    if (n == 1) { ON(M_GET, R_LIST, 0, SRV_EP_LIST); return 1; }
    if (seg_is(s, n, 1, "aliases")) UNSUP("collection aliases are");
    rt->name = s[1];
    if (n == 2) {
        ON(M_GET, R_INFO, 0, SRV_EP_INFO);
        ON(M_PUT, R_CREATE, 1, SRV_EP_CREATE);
        ON(M_DELETE, R_DROP, 1, SRV_EP_DROP);
        if (mb == M_PATCH) UNSUP("updating collection parameters is");
        return 1;
    }
    if (n == 3 && seg_is(s, n, 2, "exists")) { ON(M_GET, R_EXISTS, 0, SRV_EP_INFO); return 1; }
    if (n == 3 && seg_is(s, n, 2, "index")) { ON(M_PUT, R_INDEX_PUT, 1, SRV_EP_OTHER); return 1; }
    if (n == 4 && seg_is(s, n, 2, "index")) { rt->arg = s[3]; ON(M_DELETE, R_INDEX_DEL, 1, SRV_EP_OTHER); return 1; }
    if (seg_is(s, n, 2, "snapshots")) UNSUP("snapshots are");
    if (seg_is(s, n, 2, "shards") || seg_is(s, n, 2, "cluster")) UNSUP("sharding and the cluster API are");
    if (seg_is(s, n, 2, "aliases")) UNSUP("collection aliases are");
    if (seg_is(s, n, 2, "facet")) UNSUP("facet counts are");
    if (!seg_is(s, n, 2, "points")) return 0;
    if (n == 3) {
        ON(M_PUT, R_UPSERT, 1, SRV_EP_UPSERT);
        ON(M_POST, R_RETRIEVE, 0, SRV_EP_GET_POINT);
        return 1;
    }
    const char *p3 = s[3];
    if (n == 4) {
        if (!strcmp(p3, "delete")) { ON(M_POST, R_DELETE, 1, SRV_EP_DELETE_POINTS); return 1; }
        if (!strcmp(p3, "payload")) {
            ON(M_POST, R_PAYLOAD_SET, 1, SRV_EP_UPSERT);
            ON(M_PUT, R_PAYLOAD_PUT, 1, SRV_EP_UPSERT);
            return 1;
        }
        if (!strcmp(p3, "search")) { ON(M_POST, R_SEARCH, 0, SRV_EP_SEARCH); return 1; }
        if (!strcmp(p3, "query")) { ON(M_POST, R_QUERY, 0, SRV_EP_SEARCH); return 1; }
        if (!strcmp(p3, "scroll")) { ON(M_POST, R_SCROLL, 0, SRV_EP_OTHER); return 1; }
        if (!strcmp(p3, "count")) { ON(M_POST, R_COUNT, 0, SRV_EP_OTHER); return 1; }
        if (!strcmp(p3, "recommend")) UNSUP("recommend is");
        if (!strcmp(p3, "discover")) UNSUP("discover is");
        if (!strcmp(p3, "batch")) UNSUP("the batch update API is");
        if (!strcmp(p3, "vectors")) UNSUP("updating vectors alone (named vectors) is");
        if (!strcmp(p3, "facet")) UNSUP("facet counts are");
        rt->arg = p3;
        ON(M_GET, R_GET_POINT, 0, SRV_EP_GET_POINT);
        return 1;
    }
    if (n == 5 && !strcmp(p3, "search") && seg_is(s, n, 4, "batch")) { ON(M_POST, R_SEARCH_BATCH, 0, SRV_EP_SEARCH_BATCH); return 1; }
    if (n == 5 && !strcmp(p3, "query") && seg_is(s, n, 4, "batch")) { ON(M_POST, R_QUERY_BATCH, 0, SRV_EP_SEARCH_BATCH); return 1; }
    if (n == 5 && !strcmp(p3, "payload") && seg_is(s, n, 4, "delete")) { ON(M_POST, R_PAYLOAD_DEL, 1, SRV_EP_UPSERT); return 1; }
    if (n == 5 && !strcmp(p3, "payload") && seg_is(s, n, 4, "clear")) { ON(M_POST, R_PAYLOAD_CLEAR, 1, SRV_EP_UPSERT); return 1; }
    if (seg_is(s, n, 4, "groups")) UNSUP("grouped search is");
    if (!strcmp(p3, "recommend")) UNSUP("recommend is");
    if (!strcmp(p3, "discover")) UNSUP("discover is");
    if (!strcmp(p3, "vectors")) UNSUP("updating vectors alone (named vectors) is");
    if (!strcmp(p3, "search")) UNSUP("this search variant (matrix, groups) is");
    return 0;
#undef ON
#undef UNSUP
}

static const char *find_key(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *k = evhttp_find_header(h, "api-key");
    if (k) return k;
    const char *a = evhttp_find_header(h, "Authorization");
    if (!a) return NULL;
    while (*a == ' ') a++;
    if (strncasecmp(a, "Bearer ", 7) != 0) return NULL;
    for (a += 7; *a == ' '; a++) {}
    return a;
}

static void h_root(srv_req *r)
{
    srv_reply_json(r, 200, json_pack("{s:s,s:s,s:n}", "title", "qdrant - vector search engine (quiverd "
                                     QV_VERSION " compatible subset)", "version", QD_VERSION, "commit"));
}

static void h_health(srv_req *r)
{
    struct evbuffer *b = evbuffer_new();
    if (b) evbuffer_add_printf(b, "healthz check passed");
    srv_reply_text(r, 200, "text/plain", b);
    if (b) evbuffer_free(b);
}

static void run_point_route(srv_req *r, const qroute *rt, srv_coll *e)
{
    switch (rt->id) {
    case R_INFO: h_info(r, e); break;
    case R_EXISTS: qd_ok(r, json_pack("{s:b}", "exists", 1)); break;
    case R_INDEX_PUT: h_index_create(r, e); break;
    case R_INDEX_DEL: h_index_delete(r, e, rt->arg); break;
    case R_UPSERT: qd_h_upsert(r, e); break;
    case R_RETRIEVE: qd_h_retrieve(r, e); break;
    case R_GET_POINT: qd_h_get_point(r, e, rt->arg); break;
    case R_DELETE: qd_h_delete(r, e); break;
    case R_PAYLOAD_SET: qd_h_payload(r, e, 0); break;
    case R_PAYLOAD_PUT: qd_h_payload(r, e, 1); break;
    case R_PAYLOAD_DEL: qd_h_payload(r, e, 2); break;
    case R_PAYLOAD_CLEAR: qd_h_payload(r, e, 3); break;
    case R_SEARCH: qd_h_search(r, e, 0); break;
    case R_SEARCH_BATCH: qd_h_search(r, e, 1); break;
    case R_QUERY: qd_h_query(r, e, 0); break;
    case R_QUERY_BATCH: qd_h_query(r, e, 1); break;
    case R_SCROLL: qd_h_scroll(r, e); break;
    case R_COUNT: qd_h_count(r, e); break;
    default: qd_err(r, 500, "unrouted endpoint"); break;
    }
}

void qd_http_dispatch(struct evhttp_request *req, void *arg)
{
    srv_ctx *ctx = arg;
    srv_req r = {.ctx = ctx, .req = req, .ep = SRV_EP_OTHER, .t0_us = srv_now_us()};
    srv_worker_busy(1);
    srv_path sp = {.heap = NULL};
    char **seg = sp.seg;
    qroute rt;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    int n = path && !*path ? 0 : srv_split_path(path, &sp, MAX_SEGS);   /* "" is "/" */
    int known = n >= 0 && match(seg, n, method_bit(evhttp_request_get_command(req)), &rt);
    if (known) r.ep = rt.ep;

    int open_path = known && (rt.id == R_ROOT || rt.id == R_HEALTH);
    if (!open_path) {
        r.access = ctx->keys ? srv_keys_check(ctx->keys, find_key(req)) : SRV_ACCESS_RW;
        if (r.access == SRV_ACCESS_NONE) {
            qd_err(&r, 401, "Unauthorized: a valid API key is required (api-key header or Authorization: Bearer)");
            goto cleanup;
        }
    }
    if (n == -2) { qd_err(&r, 400, "Wrong input: the path holds control or non-ASCII characters"); goto cleanup; }
    if (!known) { qd_err(&r, 404, "Not found: no such endpoint in quiverd's Qdrant-compatible API"); goto cleanup; }
    if (rt.id == R_UNSUPPORTED) {
        qd_err(&r, 501, "Not implemented: %s not supported by quiverd's Qdrant-compatible API", rt.what);
        goto cleanup;
    }
    if (rt.id == R_NONE) {
        qd_err(&r, 405, "Method not allowed on this path");
        goto cleanup;
    }
    if (rt.write && r.access < SRV_ACCESS_RW) { qd_err(&r, 403, "Forbidden: this API key is read-only"); goto cleanup; }
    if (rt.name && !srv_name_valid(rt.name)) {
        qd_err(&r, 400, "Wrong input: collection names are 1..64 characters of [A-Za-z0-9_.-] and do not start with '.'");
        goto cleanup;
    }
    switch (rt.id) {
    case R_ROOT: h_root(&r); break;
    case R_HEALTH: h_health(&r); break;
    case R_METRICS: srv_h_metrics(&r); break;
    case R_LIST: h_list(&r); break;
    case R_CREATE: h_create(&r, rt.name); break;
    case R_DROP: h_drop(&r, rt.name); break;
    default: {
        pthread_rwlock_rdlock(&ctx->colls.lock);
        srv_coll *e = srv_colls_find(&ctx->colls, rt.name);
        if (e) run_point_route(&r, &rt, e);
        else if (rt.id == R_EXISTS) qd_ok(&r, json_pack("{s:b}", "exists", 0));
        else qd_err(&r, 404, "Not found: Collection `%s` doesn't exist!", rt.name);
        pthread_rwlock_unlock(&ctx->colls.lock);
        break;
    }
    }
    if (!r.replied) qd_err(&r, 500, "handler sent no reply");
cleanup:
    srv_path_release(&sp);
    srv_worker_busy(0);
}
