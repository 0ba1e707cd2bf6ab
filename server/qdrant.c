/*
 * server/qdrant.c -- the Qdrant-compatible API: route table, envelope, collections.
 *
 * One evhttp per worker accepts on the --qdrant-listen socket (main.c) beside the native
 * evhttp on the same event base; both go through the same pipeline (pipeline.c), so the
 * thread model, draining, API keys, the collection table and its locking, and the
 * metrics (each route records under the native endpoint it corresponds to) are shared.
 * Every reply is Qdrant's shape: {"result":...,"status":"ok","time":s} on success and
 * {"status":{"error":"Kind: message"},"time":s} with a 4xx/5xx otherwise. Qdrant paths
 * that quiverd does not implement (snapshots, cluster, aliases, recommend, discover, ...)
 * answer 501 with a message saying so, never a silent success.
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
    if (!result) { srv_oom(r); return; }
    srv_reply_json(r, 200, json_pack("{s:o,s:s,s:f}", "result", result, "status", "ok", "time", elapsed_s(r)));
}

void qd_ok_written(srv_req *r, struct evbuffer *out)
{
    char t[40];
    int n = srv_fmt_real9(t, sizeof t, elapsed_s(r));
    if (n < 0 || evbuffer_add_printf(out, ",\"status\":\"ok\",\"time\":%s}", t) < 0) srv_oom(r);
    else srv_reply_buf(r, 200, "application/json", out);
}

/* Qdrant's error shape; the kind of error leads the message, as in Qdrant. */
static void qdrant_error(srv_req *r, int status, const char *code, const char *msg)
{
    static const char *const kinds[][2] = {
        {"invalid_json", "Format error in JSON body"}, {"not_found", "Not found"},
        {"unauthorized", "Unauthorized"}, {"forbidden", "Forbidden"}, {"method_not_allowed", "Method not allowed"},
        {"not_implemented", "Not implemented"}, {"no_device", "Not implemented"}, {"invalid_state", "Bad request"},
        {"out_of_memory", "Service unavailable"}, {"storage_full", "Storage full"},
    };
    const char *kind = status >= 500 ? "Service internal error" : "Wrong input";
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(code, kinds[i][0]) == 0) kind = kinds[i][1];
    srv_reply_json(r, status, json_pack("{s:{s:s++},s:f}", "status", "error", kind, ": ", msg, "time", elapsed_s(r)));
}

json_t *qd_update_result(qv_coll *c)
{
    qv_collection_info info;
    json_int_t seq = qv_collection_get_info(c, &info) == QV_OK ? (json_int_t)info.last_seq : 0;
    return json_pack("{s:I,s:s}", "operation_id", seq, "status", "completed");
}

/* ---- collections --------------------------------------------------------------- */

static const char *distance_name(qv_metric m)
{
    return m == QV_METRIC_COSINE ? "Cosine" : m == QV_METRIC_IP ? "Dot" : "Euclid";
}

/* What quiverd knows of the collection, in Qdrant's shape. Left out, because quiverd has
 * nothing they could truthfully describe: status and optimizer_status (no background
 * optimizer; a write is searchable when acknowledged), segments, optimizer and WAL
 * settings, full_scan_threshold (the library decides exact scans by the share of points
 * a filter allows), and per-field point counts of the payload schema. */
static json_t *collection_info(const qv_collection_info *info)
{
    const qv_index_params *p = &info->config.index;
    json_t *schema = json_object(), *hnsw = NULL;
    json_t *pi = info->config.payload_index ? json_loads(info->config.payload_index, 0, NULL) : NULL;
    const char *k;
    json_t *v;
    if (json_is_object(pi))
        json_object_foreach(pi, k, v) json_object_set_new(schema, k, json_pack("{s:O}", "data_type", v));
    json_decref(pi);
    if (p->kind == QV_INDEX_HNSW)
        hnsw = json_pack("{s:I,s:I,s:I,s:b}", "m", (json_int_t)(p->m ? p->m : 16), "ef_construct",
                         (json_int_t)(p->ef_construction ? p->ef_construction : 200), "max_indexing_threads",
                         (json_int_t)p->threads, "on_disk", 0);
    else if (p->kind == QV_INDEX_FLAT)                   /* Qdrant's m = 0: no graph, exact search */
        hnsw = json_pack("{s:i,s:I,s:b}", "m", 0, "ef_construct", (json_int_t)p->ef_construction, "on_disk", 0);
    json_t *out = json_pack("{s:I,s:I,s:{s:{s:{s:I,s:s},s:i,s:i,s:i,s:b},s:n},s:o}",
                            "vectors_count", (json_int_t)info->count, "points_count", (json_int_t)info->count,
                            "config", "params", "vectors", "size", (json_int_t)p->dim, "distance",
                            distance_name(p->metric), "shard_number", 1, "replication_factor", 1,
                            "write_consistency_factor", 1, "on_disk_payload", 1, "quantization_config",
                            "payload_schema", schema);
    /* vectors in the vector index: all of them in a graph, none in a flat collection
     * (an ivf collection may not be trained yet: left out) */
    if (out && p->kind != QV_INDEX_IVF)
        json_object_set_new(out, "indexed_vectors_count", json_integer(p->kind == QV_INDEX_HNSW ? (json_int_t)info->count : 0));
    if (out && hnsw) json_object_set_new(json_object_get(out, "config"), "hnsw_config", hnsw);
    else json_decref(hnsw);
    /* Codes Qdrant can name: scalar int8 (sq8) and binary (bit1); quiverd's own sq4 has no
     * Qdrant name and stays null here (the native API shows it). */
    json_t *qc = p->quant == QV_QUANT_SQ8    ? json_pack("{s:{s:s,s:b}}", "scalar", "type", "int8", "always_ram", 1)
                 : p->quant == QV_QUANT_BIT1 ? json_pack("{s:{s:b}}", "binary", "always_ram", 1)
                                             : NULL;
    if (out && qc) json_object_set_new(json_object_get(out, "config"), "quantization_config", qc);
    else json_decref(qc);
    return out;
}

static void h_list(srv_req *r)
{
    char **names = NULL;
    size_t n = 0;
    json_t *arr = json_array();
    int rc = qv_collection_list(r->ctx->db, &names, &n);
    for (size_t i = 0; arr && i < n; i++) json_array_append_new(arr, json_pack("{s:s}", "name", names[i]));
    qv_free_strings(names, n);
    if (rc != QV_OK) {
        json_decref(arr);
        srv_fail_qv(r, rc);
    } else {
        qd_ok(r, arr ? json_pack("{s:o}", "collections", arr) : NULL);
    }
}

static void h_info(srv_req *r)
{
    qv_collection_info info;
    int rc = qv_collection_get_info(r->coll->coll, &info);
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else qd_ok(r, collection_info(&info));
}

static void h_exists(srv_req *r)
{
    qd_ok(r, json_pack("{s:b}", "exists", r->coll != NULL));
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

/* Fold a quantization_config into p: {"scalar":{"type":"int8",...}} -> sq8 codes,
 * {"binary":{...}} -> 1-bit RaBitQ codes. Their other settings (quantile, always_ram) are
 * accepted and have nothing to set: quiverd picks its own ranges and keeps codes in RAM. */
static int quantization_config(const json_t *q, qv_index_params *p, char *msg, size_t len)
{
    if (!q || json_is_null(q)) return 0;
    json_t *sc = json_object_get(q, "scalar"), *bi = json_object_get(q, "binary");
    if (!json_is_object(q) || json_object_size(q) != 1 || (!json_is_object(sc) && !json_is_object(bi))) {
        if (json_is_object(q) && json_object_get(q, "product"))
            snprintf(msg, len, "product quantization is not supported by quiverd (scalar int8 and binary are)");
        else snprintf(msg, len, "quantization_config must be {\"scalar\": {\"type\": \"int8\"}} or {\"binary\": {}}");
        return -1;
    }
    if (sc) {
        json_t *t = json_object_get(sc, "type"), *qt = json_object_get(sc, "quantile");
        if (!json_is_string(t) || strcmp(json_string_value(t), "int8") != 0) {
            snprintf(msg, len, "quantization_config.scalar.type must be \"int8\"");
            return -1;
        }
        if (qt && !json_is_null(qt) && (!json_is_number(qt) || json_number_value(qt) < 0.5 || json_number_value(qt) > 1.0)) {
            snprintf(msg, len, "quantization_config.scalar.quantile must be 0.5..1");
            return -1;
        }
        p->quant = QV_QUANT_SQ8;
    } else {
        p->quant = QV_QUANT_BIT1;
    }
    if (p->kind != QV_INDEX_HNSW) {
        snprintf(msg, len, "quantization_config needs an HNSW graph (hnsw_config.m > 0)");
        return -1;
    }
    return 0;
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
        hnsw_config(json_object_get(v, "hnsw_config"), &cfg->index, msg, len) ||
        quantization_config(json_object_get(b, "quantization_config"), &cfg->index, msg, len) ||
        quantization_config(json_object_get(v, "quantization_config"), &cfg->index, msg, len))
        return -1;
    return 0;
}

static void h_create(srv_req *r)
{
    char msg[256];
    qv_collection_config cfg;
    json_t *b = srv_body(r, 1);
    if (!b) return;
    if (parse_create(b, &cfg, msg, sizeof msg) != 0) srv_bad(r, "%s", msg);
    else if (srv_create_collection(r, &cfg) == 0) qd_ok(r, json_true());
    json_decref(b);
}

static void h_drop(srv_req *r)
{
    if (srv_drop_collection(r) == 0) qd_ok(r, json_true());
}

static void h_index_create(srv_req *r)
{
    json_t *b = srv_body(r, 1);
    if (!b) return;
    json_t *f = json_object_get(b, "field_name"), *s = json_object_get(b, "field_schema");
    if (json_is_object(s)) s = json_object_get(s, "type");
    const char *t = json_is_string(s) ? json_string_value(s) : NULL, *type = NULL;
    if (!json_is_string(f)) srv_bad(r, "'field_name' must be a string");
    else if (!t) srv_bad(r, "'field_schema' must be a type name or {\"type\": name}");
    else {
        if (!strcmp(t, "keyword") || !strcmp(t, "uuid")) type = "keyword";
        else if (!strcmp(t, "integer") || !strcmp(t, "float") || !strcmp(t, "bool")) type = t;
        int rc;
        if (!type) srv_bad(r, "payload index type '%.32s' is not supported by quiverd (keyword, integer, float, bool, uuid are)", t);
        else if ((rc = qv_collection_index_field(r->coll->coll, json_string_value(f), type, NULL, NULL)) != QV_OK)
            srv_fail_qv(r, rc);
        else qd_ok(r, qd_update_result(r->coll->coll));
    }
    json_decref(b);
}

static void h_index_delete(srv_req *r)
{
    int rc = qv_collection_unindex_field(r->coll->coll, r->arg);
    if (rc != QV_OK && rc != QV_ENOTFOUND) srv_fail_qv(r, rc);
    else qd_ok(r, qd_update_result(r->coll->coll));
}

static void h_root(srv_req *r)
{
    srv_reply_json(r, 200, json_pack("{s:s,s:s,s:n}", "title", "qdrant - vector search engine (quiverd " QV_VERSION
                                     " compatible subset)", "version", QD_VERSION, "commit"));
}

static void h_health(srv_req *r)
{
    struct evbuffer *b = evbuffer_new();
    if (!b || evbuffer_add_printf(b, "healthz check passed") < 0) srv_oom(r);
    else srv_reply_buf(r, 200, "text/plain", b);
    if (b) evbuffer_free(b);
}

/* ---- the table ------------------------------------------------------------------- */

#define UNSUP(path, what) {SRV_M_ANY, path, SRV_EP_OTHER, 0, NULL, 0, what}
#define COLL SRV_R_COLL
#define WCOLL (SRV_R_WRITE | SRV_R_COLL)
static const srv_route routes[] = {
    {SRV_M_GET, "", SRV_EP_HEALTHZ, SRV_R_OPEN, h_root, 0, NULL},
    {SRV_M_GET, "healthz", SRV_EP_HEALTHZ, SRV_R_OPEN, h_health, 0, NULL},
    {SRV_M_GET, "livez", SRV_EP_HEALTHZ, SRV_R_OPEN, h_health, 0, NULL},
    {SRV_M_GET, "readyz", SRV_EP_HEALTHZ, SRV_R_OPEN, h_health, 0, NULL},
    {SRV_M_GET, "metrics", SRV_EP_METRICS, 0, srv_h_metrics, 0, NULL},
    UNSUP("snapshots/**", "snapshots are"),
    UNSUP("cluster/**", "the cluster API is"),
    UNSUP("aliases/**", "collection aliases are"),
    UNSUP("telemetry/**", "telemetry is"),
    UNSUP("locks/**", "locks are"),
    UNSUP("issues/**", "issues are"),
    {SRV_M_GET, "collections", SRV_EP_LIST, 0, h_list, 0, NULL},
    UNSUP("collections/aliases/**", "collection aliases are"),
    {SRV_M_GET, "collections/{name}", SRV_EP_INFO, COLL, h_info, 0, NULL},
    {SRV_M_PUT, "collections/{name}", SRV_EP_CREATE, SRV_R_WRITE, h_create, 0, NULL},
    {SRV_M_DELETE, "collections/{name}", SRV_EP_DROP, SRV_R_WRITE, h_drop, 0, NULL},
    {SRV_M_PATCH, "collections/{name}", SRV_EP_OTHER, 0, NULL, 0, "updating collection parameters is"},
    {SRV_M_GET, "collections/{name}/exists", SRV_EP_INFO, SRV_R_COLL_OPT, h_exists, 0, NULL},
    {SRV_M_PUT, "collections/{name}/index", SRV_EP_INDEX_FIELD, WCOLL, h_index_create, 0, NULL},
    {SRV_M_DELETE, "collections/{name}/index/{arg}", SRV_EP_UNINDEX_FIELD, WCOLL, h_index_delete, 0, NULL},
    UNSUP("collections/{name}/snapshots/**", "snapshots are"),
    UNSUP("collections/{name}/shards/**", "sharding and the cluster API are"),
    UNSUP("collections/{name}/cluster/**", "sharding and the cluster API are"),
    UNSUP("collections/{name}/aliases/**", "collection aliases are"),
    UNSUP("collections/{name}/facet/**", "facet counts are"),
    {SRV_M_PUT, "collections/{name}/points", SRV_EP_UPSERT, WCOLL, qd_h_upsert, 0, NULL},
    {SRV_M_POST, "collections/{name}/points", SRV_EP_GET_POINT, COLL, qd_h_retrieve, 0, NULL},
    {SRV_M_POST, "collections/{name}/points/delete", SRV_EP_DELETE_POINTS, WCOLL, qd_h_delete, 0, NULL},
    {SRV_M_POST, "collections/{name}/points/payload", SRV_EP_UPSERT, WCOLL, qd_h_payload, 0, NULL},
    {SRV_M_PUT, "collections/{name}/points/payload", SRV_EP_UPSERT, WCOLL, qd_h_payload, 1, NULL},
    {SRV_M_POST, "collections/{name}/points/payload/delete", SRV_EP_UPSERT, WCOLL, qd_h_payload, 2, NULL},
    {SRV_M_POST, "collections/{name}/points/payload/clear", SRV_EP_UPSERT, WCOLL, qd_h_payload, 3, NULL},
    {SRV_M_POST, "collections/{name}/points/search", SRV_EP_SEARCH, COLL, qd_h_search, 0, NULL},
    {SRV_M_POST, "collections/{name}/points/search/batch", SRV_EP_SEARCH_BATCH, COLL, qd_h_search, 1, NULL},
    {SRV_M_POST, "collections/{name}/points/query", SRV_EP_SEARCH, COLL, qd_h_query, 0, NULL},
    {SRV_M_POST, "collections/{name}/points/query/batch", SRV_EP_SEARCH_BATCH, COLL, qd_h_query, 1, NULL},
    {SRV_M_POST, "collections/{name}/points/scroll", SRV_EP_OTHER, COLL, qd_h_scroll, 0, NULL},
    {SRV_M_POST, "collections/{name}/points/count", SRV_EP_OTHER, COLL, qd_h_count, 0, NULL},
    UNSUP("collections/{name}/points/{arg}/groups/**", "grouped search is"),
    UNSUP("collections/{name}/points/recommend/**", "recommend is"),
    UNSUP("collections/{name}/points/discover/**", "discover is"),
    UNSUP("collections/{name}/points/batch", "the batch update API is"),
    UNSUP("collections/{name}/points/vectors/**", "updating vectors alone (named vectors) is"),
    UNSUP("collections/{name}/points/facet", "facet counts are"),
    UNSUP("collections/{name}/points/search/**", "this search variant (matrix, groups) is"),
    {SRV_M_GET, "collections/{name}/points/{arg}", SRV_EP_GET_POINT, COLL, qd_h_get_point, 0, NULL},
};

const srv_api srv_qdrant_api = {routes, sizeof routes / sizeof routes[0], 6, qdrant_error};
