/*
 * server/qdrant.c -- the Qdrant-compatible API: route table, envelope, collections.
 *
 * One evhttp per worker accepts on the --qdrant-listen socket (main.c) beside the native
 * evhttp on the same event base; both go through the same pipeline (pipeline.c), so the
 * thread model, draining, API keys, the collection table and its locking, and the
 * metrics (each route records under the native endpoint it corresponds to) are shared.
 * Every reply is Qdrant's shape: {"result":...,"status":"ok","time":s} on success and
 * {"status":{"error":"Kind: message"},"time":s} with a 4xx/5xx otherwise. Qdrant paths
 * that quiverd does not implement (shard snapshots, cluster, recommend, ...)
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
    return (double)(api_now_us() - r->t0_us) / 1e6;
}

void qd_ok(srv_req *r, json_t *result)
{
    if (!result) { srv_oom(r); return; }
    srv_reply_json(r, 200, json_pack("{s:o,s:s,s:f}", "result", result, "status", "ok", "time", elapsed_s(r)));
}

void srv_reply_ok(srv_req *r, int status, json_t *native, json_t *result)
{
    if (srv_is_qdrant(r)) {
        json_decref(native);
        qd_ok(r, result);
        return;
    }
    json_decref(result);
    if (!native) srv_oom(r);
    else srv_reply_json(r, status, native);
}

void qd_ok_written(srv_req *r)
{
    char t[40];
    api_wbuf *w = srv_writer(r);
    int n = api_fmt_real9(t, sizeof t, elapsed_s(r));
    if (n < 0) w->err = 1;
    API_WLIT(w, ",\"status\":\"ok\",\"time\":");
    api_wput(w, t, n > 0 ? (size_t)n : 0);
    API_WLIT(w, "}");
    srv_reply_written(r);
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
    /* named and sparse vectors in the shape they were created with */
    json_t *params = json_object_get(json_object_get(out, "config"), "params");
    if (params && info->config.on_disk)       /* shown when set, as Qdrant does */
        json_object_set_new(json_object_get(params, "vectors"), "on_disk", json_true());
    if (params && info->config.no_dense) json_object_set_new(params, "vectors", json_object());
    if (params && info->config.vector_name) {
        json_t *named = json_object();
        json_object_set(named, info->config.vector_name, json_object_get(params, "vectors"));
        json_object_set_new(params, "vectors", named);
    }
    if (params && info->config.n_sparse) {
        json_t *sv = json_object();
        for (size_t i = 0; i < info->config.n_sparse; i++) {
            json_t *one = json_pack("{s:{s:b}}", "index", "on_disk", 0);
            if (one && info->config.sparse[i].idf) json_object_set_new(one, "modifier", json_string("idf"));
            json_object_set_new(sv, info->config.sparse[i].name, one);
        }
        json_object_set_new(params, "sparse_vectors", sv);
    }
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

typedef struct {
    uint32_t size, m, ef, shard_number, replication_factor;
    int distance, datatype;
    qd_quantization quant;             /* quantization_config */
    int named, on_disk;                /* the dense vector given by name (vname) */
    char vname[QV_SPARSE_NAME_MAX + 1];
    size_t nsparse;
    char sname[QV_MAX_SPARSE_VECTORS][QV_SPARSE_NAME_MAX + 1];
    int modifier[QV_MAX_SPARSE_VECTORS];   /* 0 none, 1 idf */
} create_body;
#define C(field) offsetof(create_body, field)
static const char *const distances[] = {"Euclid", "Dot", "Cosine", NULL};   /* from QV_METRIC_L2 */
static const char *const datatypes[] = {"float32", NULL};

static const api_jfield hnsw_fields[] = {
    {"m", API_J_U32, .off = C(m), .lo = 0, .hi = 100},
    {"ef_construct", API_J_U32, .off = C(ef), .lo = 4, .hi = QV_MAX_EF},
    {0},
};
static int read_named_vector(api_jread *rd, void *dst);
#define VECTOR_PARAMS                                                             \
    {"size", API_J_U32, C(size), 1, QV_MAX_DIM, .arg = NULL},                     \
    {"distance", API_J_NAME, C(distance), QV_METRIC_L2, .arg = distances},        \
    {"datatype", API_J_NAME, C(datatype), 0, .arg = datatypes},                   \
    {"hnsw_config", API_J_OBJECT, .arg = hnsw_fields},                            \
    {"multivector_config", API_J_REFUSE, .arg = "multivectors are"},              \
    {"quantization_config", API_J_CALL, C(quant), .read = qd_jread_quantization}, \
    {"on_disk", API_J_BOOL, .off = C(on_disk)}
static const api_jfield vector_params[] = {VECTOR_PARAMS, {0}};
/* "vectors": {"size", "distance", ...}, or named: {"<name>": {"size", "distance", ...}} */
static const api_jfield vectors_fields[] = {VECTOR_PARAMS, {"*", API_J_CALL, .read = read_named_vector}, {0}};

static int read_named_vector(api_jread *rd, void *dst)
{
    create_body *b = dst;
    if (b->named || b->size)
        return api_jbad(rd, 1, "invalid_argument", "a quiverd collection has one dense vector: '%s' would be a second one "
                                                   "(sparse vectors go in 'sparse_vectors')", rd->path);
    if (rd->klen > QV_SPARSE_NAME_MAX)
        return api_jbad(rd, 1, "invalid_argument", "vector names are at most %u bytes", QV_SPARSE_NAME_MAX);
    b->named = 1;
    snprintf(b->vname, sizeof b->vname, "%s", rd->key);
    return api_jread_object(rd, vector_params, b);
}

/* "sparse_vectors": {"<name>": {"index": {...}, "modifier": "idf" | "none"}}: the index
 * settings (on_disk, full_scan_threshold, datatype) have nothing to set in quiverd, whose
 * sparse postings live in LMDB and are searched exactly. */
static int read_sparse_params(api_jread *rd, void *dst)
{
    static const char *const modifiers[] = {"none", "idf", NULL};
    static const api_jfield index_fields_any[] = {{0}};
    create_body *b = dst;
    if (b->nsparse == QV_MAX_SPARSE_VECTORS)
        return api_jbad(rd, 1, "invalid_argument", "at most %u sparse vectors per collection", QV_MAX_SPARSE_VECTORS);
    if (rd->klen < 1 || rd->klen > QV_SPARSE_NAME_MAX)
        return api_jbad(rd, 1, "invalid_argument", "sparse vector names are 1..%u bytes", QV_SPARSE_NAME_MAX);
    size_t j = b->nsparse++;
    snprintf(b->sname[j], sizeof b->sname[j], "%s", rd->key);
    const api_jfield sparse_params[] = {
        {"index", API_J_OBJECT, .arg = index_fields_any},
        {"modifier", API_J_NAME, (size_t)((char *)&b->modifier[j] - (char *)b), 0, .arg = modifiers},
        {0},
    };
    return api_jread_object(rd, sparse_params, b);
}
static const api_jfield sparse_vectors_fields[] = {{"*", API_J_CALL, .read = read_sparse_params}, {0}};
static const api_jfield create_fields[] = {
    {"vectors", API_J_OBJECT, .arg = vectors_fields, .required = 1},
    {"hnsw_config", API_J_OBJECT, .arg = hnsw_fields},
    {"quantization_config", API_J_CALL, C(quant), .read = qd_jread_quantization},
    {"shard_number", API_J_U32, .off = C(shard_number), .lo = 1, .hi = 64},      /* cluster mode */
    {"replication_factor", API_J_U32, .off = C(replication_factor), .lo = 1, .hi = 8},
    {"sparse_vectors", API_J_OBJECT, .arg = sparse_vectors_fields},
    {"init_from", API_J_REFUSE, .arg = "init_from is"},
    {"sharding_method", API_J_REFUSE, .arg = "custom sharding (quiverd shards by a hash of the id) is"},
    {"strict_mode_config", API_J_REFUSE, .arg = "strict_mode_config is"},
    {0},
};

/* Qdrant's defaults are m 16 and ef_construct 100; m 0 is no graph (exact search): flat. */
static void h_create(srv_req *r)
{
    create_body b = {.m = 16, .ef = 100};
    qv_collection_config cfg = {0};
    qv_sparse_config sc[QV_MAX_SPARSE_VECTORS];
    if (srv_read_body(r, "the collection config", create_fields, &b) != 0) return;
    if (!b.size && !b.named && b.nsparse) {
        /* "vectors": {} with sparse vectors (LangChain's sparse mode): a one-float stand-in
         * for the dense vector, never shown or searched */
        b.size = 1;
        b.distance = QV_METRIC_IP;
        b.m = 0;
        cfg.no_dense = 1;
    }
    if (!b.size || !b.distance) {
        srv_bad(r, "'vectors' must be {\"size\": N, \"distance\": ...} or {\"<name>\": {\"size\": N, \"distance\": ...}} "
                   "(quiverd needs one dense vector)");
        return;
    }
    for (size_t i = 0; i < b.nsparse; i++) sc[i] = (qv_sparse_config){b.sname[i], b.modifier[i] == 1};
    cfg.vector_name = b.named ? b.vname : NULL;
    cfg.n_sparse = b.nsparse;
    cfg.sparse = sc;
    if (b.m == 1) {
        srv_bad(r, "hnsw_config.m must be 0 (no graph: exact search) or 2..100");
        return;
    }
    qv_index_params_init(&cfg.index, b.m ? QV_INDEX_HNSW : QV_INDEX_FLAT, b.size, (qv_metric)b.distance);
    if (b.m) cfg.index.m = b.m;
    cfg.index.ef_construction = b.ef;
    cfg.index.quant = (qv_quant)b.quant.quant;
    cfg.on_disk = b.on_disk;          /* vectors re-scored from storage (README, "Vectors on disk") */
    if (srv_create_collection(r, &cfg, b.shard_number, b.replication_factor) == 0) qd_ok(r, json_true());
}

static void h_drop(srv_req *r)
{
    if (srv_drop_collection(r) == 0) qd_ok(r, json_true());
}

typedef struct { api_jtext field; int type; } index_body;
static const char *const schema_types[] = {"keyword", "integer", "float", "bool", "uuid", "text", NULL};
static const api_jfield schema_fields[] = {{"type", API_J_NAME, 0, .arg = schema_types, .required = 1}, {0}};

/* field_schema: a type name or {"type": name} */
static int read_schema(api_jread *rd, void *type)
{
    if (api_jpeek(rd, "{")) return api_jread_object(rd, schema_fields, type);
    return api_jread_field(rd, &schema_fields[0], type);
}

static const api_jfield index_fields[] = {
    {"field_name", API_J_TEXT, offsetof(index_body, field), .required = 1},
    {"field_schema", API_J_CALL, offsetof(index_body, type), .read = read_schema, .required = 1},
    {0},
};

/* PUT /collections/{name}/index {"field_name","field_schema"}; uuid fields are keywords */
static void h_index_create(srv_req *r)
{
    index_body b = {0};
    char field[256];
    int rc;
    if (srv_read_body(r, "the body", index_fields, &b) != 0) return;
    if (api_jstring(b.field, field, sizeof field) != 0) srv_bad(r, "'field_name' must be a string");
    else if ((rc = qv_collection_index_field(r->coll->coll, field, schema_types[b.type == 4 ? 0 : b.type], NULL, NULL)) != QV_OK)
        srv_fail_qv(r, rc);
    else qd_ok(r, qd_update_result(r->coll->coll));
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
    UNSUP("snapshots/recover", "restoring a full snapshot over the Qdrant API (the native API does: PUT /snapshots/recover) is"),
    UNSUP("snapshots/upload", "restoring a full snapshot over the Qdrant API (the native API does: PUT /snapshots/recover) is"),
    UNSUP("cluster/**", "the cluster API is"),
    {SRV_M_GET, "aliases", SRV_EP_OTHER, 0, srv_h_alias_list, 0, NULL},
    UNSUP("telemetry/**", "telemetry is"),
    UNSUP("locks/**", "locks are"),
    UNSUP("issues/**", "issues are"),
    {SRV_M_POST, "collections/aliases", SRV_EP_OTHER, SRV_R_WRITE, srv_h_alias_update, 0, NULL},
    {SRV_M_GET, "collections/{name}", SRV_EP_INFO, COLL, h_info, 0, NULL},
    {SRV_M_PUT, "collections/{name}", SRV_EP_CREATE, SRV_R_WRITE | SRV_R_CLUSTER, h_create, 0, NULL},
    {SRV_M_DELETE, "collections/{name}", SRV_EP_DROP, SRV_R_WRITE | SRV_R_CLUSTER, h_drop, 0, NULL},
    {SRV_M_PATCH, "collections/{name}", SRV_EP_OTHER, WCOLL | SRV_R_CLUSTER, qd_h_update_collection, 0, NULL},
    {SRV_M_GET, "collections/{name}/exists", SRV_EP_INFO, SRV_R_COLL_OPT, h_exists, 0, NULL},
    {SRV_M_PUT, "collections/{name}/index", SRV_EP_INDEX_FIELD, WCOLL, h_index_create, 0, NULL},
    {SRV_M_DELETE, "collections/{name}/index/{arg}", SRV_EP_UNINDEX_FIELD, WCOLL, h_index_delete, 0, NULL},
    UNSUP("collections/{name}/shards/**", "sharding and the cluster API are"),
    UNSUP("collections/{name}/cluster/**", "sharding and the cluster API are"),
    {SRV_M_POST, "collections/{name}/facet", SRV_EP_OTHER, COLL, qd_h_facet, 0, NULL},
    {SRV_M_PUT, "collections/{name}/points", SRV_EP_UPSERT, WCOLL | SRV_R_CLUSTER, qd_h_upsert, 0, NULL},
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
    {SRV_M_POST, "collections/{name}/points/search/groups", SRV_EP_SEARCH, COLL, qd_h_groups, 0, NULL},
    {SRV_M_POST, "collections/{name}/points/query/groups", SRV_EP_SEARCH, COLL, qd_h_groups, 1, NULL},
    UNSUP("collections/{name}/points/recommend/**", "recommend is"),
    UNSUP("collections/{name}/points/discover/**", "discover is"),
    UNSUP("collections/{name}/points/batch", "the batch update API is"),
    {SRV_M_PUT, "collections/{name}/points/vectors", SRV_EP_UPSERT, WCOLL, qd_h_update_vectors, 0, NULL},
    {SRV_M_POST, "collections/{name}/points/vectors/delete", SRV_EP_UPSERT, WCOLL, qd_h_delete_vectors, 0, NULL},
    UNSUP("collections/{name}/points/search/**", "this search variant (matrix) is"),
    {SRV_M_GET, "collections/{name}/points/{arg}", SRV_EP_GET_POINT, COLL, qd_h_get_point, 0, NULL},
};

const srv_api srv_qdrant_api = {routes, sizeof routes / sizeof routes[0], 6, qdrant_error, 1};

int srv_is_qdrant(const srv_req *r)
{
    return r->api == &srv_qdrant_api;
}
