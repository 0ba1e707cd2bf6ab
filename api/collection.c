/*
 * api/collection.c -- a collection's configuration as JSON: the reader of the create body
 * {"dim","metric","on_disk","index":{...},"payload_index":{...}} and the writer of its info (the
 * native API's PUT and GET /collections/{name}, and quiver info --json).
 */
#include <stddef.h>
#include <string.h>

#include "api/api.h"

/* The index part of the collection info, defaults resolved (the library stores 0 for
 * "default"; the numbers are quiver.h's documented defaults). An ivf nlist of 0 means
 * 4*sqrt(n) chosen when it trains: shown as null, like the training threshold then. */
static json_t *index_value(const qv_index_params *p)
{
    const char *kind = qv_index_kind_name(p->kind);
    json_t *o = json_pack("{s:s}", "type", kind ? kind : "?");
    int bad = !o;
    if (o && p->kind == QV_INDEX_HNSW) {
        bad |= json_object_set_new(o, "m", json_integer(p->m ? p->m : 16));
        bad |= json_object_set_new(o, "ef_construction", json_integer(p->ef_construction ? p->ef_construction : 200));
        bad |= json_object_set_new(o, "ef_search", json_integer(p->ef_search ? p->ef_search : 64));
        bad |= json_object_set_new(o, "quant", json_string(qv_quant_name(p->quant) ? qv_quant_name(p->quant) : "?"));
    } else if (o && p->kind == QV_INDEX_IVF) {
        json_int_t nlist = p->nlist, at = nlist * 39 > 1000 ? nlist * 39 : 1000;
        bad |= json_object_set_new(o, "nlist", nlist ? json_integer(nlist) : json_null());
        bad |= json_object_set_new(o, "nprobe", json_integer(p->nprobe ? p->nprobe : 8));
        bad |= json_object_set_new(o, "kmeans_iters", json_integer(p->kmeans_iters ? p->kmeans_iters : 20));
        bad |= json_object_set_new(o, "train_at", nlist ? json_integer(at) : json_null());
    }
    if (o && p->kind != QV_INDEX_HNSW && p->quant != QV_QUANT_NONE)   /* hnsw shows it always, above */
        bad |= json_object_set_new(o, "quant", json_string(qv_quant_name(p->quant) ? qv_quant_name(p->quant) : "?"));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The collection's payload_index as a JSON object ({} when none). config.payload_index
 * points into the library's handle: valid while it is open. */
json_t *api_payload_index_json(const qv_collection_info *info)
{
    json_t *pi = info->config.payload_index ? json_loads(info->config.payload_index, 0, NULL) : NULL;
    return pi ? pi : json_object();
}

json_t *api_info_json(const char *name, const qv_collection_info *info)
{
    const qv_index_params *p = &info->config.index;
    const char *metric = qv_metric_name(p->metric);
    return json_pack("{s:s,s:I,s:s,s:o,s:o,s:b,s:I,s:I,s:I}", "name", name, "dim", (json_int_t)p->dim, "metric",
                     metric ? metric : "?", "index", index_value(p), "payload_index", api_payload_index_json(info),
                     "on_disk", info->config.on_disk,
                     "count", (json_int_t)info->count, "memory_bytes", (json_int_t)info->memory_bytes, "last_seq",
                     (json_int_t)info->last_seq);
}

#define C(field) offsetof(api_create_body, field)
static const char *const metric_names[] = {"l2", "ip", "cosine", NULL};   /* from QV_METRIC_L2 */
static const char *const kind_names[] = {"flat", "hnsw", "ivf", NULL};    /* from QV_INDEX_FLAT */
static const char *const quant_names[] = {"none", "sq8", "sq4", "bit1", NULL};   /* from QV_QUANT_NONE */
static const api_jfield index_fields[] = {
    {"type", API_J_NAME, C(p.kind), QV_INDEX_FLAT, .arg = kind_names},
    {"m", API_J_U32, .off = C(p.m), .lo = 0, .hi = UINT32_MAX},
    {"ef_construction", API_J_U32, .off = C(p.ef_construction), .lo = 0, .hi = UINT32_MAX},
    {"ef_search", API_J_U32, .off = C(p.ef_search), .lo = 0, .hi = API_MAX_EF},
    {"nlist", API_J_U32, .off = C(p.nlist), .lo = 0, .hi = UINT32_MAX},
    {"nprobe", API_J_U32, .off = C(p.nprobe), .lo = 0, .hi = API_MAX_NPROBE},
    {"kmeans_iters", API_J_U32, .off = C(p.kmeans_iters), .lo = 0, .hi = 1000},
    {"quant", API_J_NAME, C(p.quant), QV_QUANT_NONE, .arg = quant_names},
    {0},
};
#define U(field) offsetof(api_update_body, field)
/* What qv_collection_update can change; the rest of create's "index" (type, nlist, ...) is
 * an unknown field here, refused as such. */
static const api_jfield update_index_fields[] = {
    {"m", API_J_U32, .off = U(m), .lo = 2, .hi = 100},
    {"ef_construction", API_J_U32, .off = U(ef_construction), .lo = 1, .hi = QV_MAX_EF},
    {"ef_search", API_J_U32, .off = U(ef_search), .lo = 1, .hi = API_MAX_EF},
    {"quant", API_J_NAME, U(quant), 1, .arg = quant_names},
    {0},
};
const api_jfield api_update_fields[] = {{"index", API_J_OBJECT, .arg = update_index_fields, .required = 1}, {0}};
#undef U

const api_jfield api_create_fields[] = {
    {"dim", API_J_U32, C(p.dim), 1, QV_MAX_DIM, .required = 1},
    {"metric", API_J_NAME, C(p.metric), QV_METRIC_L2, .arg = metric_names},
    {"index", API_J_OBJECT, .arg = index_fields},
    {"payload_index", API_J_OBJTEXT, .off = C(payload_index)},
    {"on_disk", API_J_BOOL, .off = C(on_disk)},
    {"shard_number", API_J_U32, .off = C(shard_number), .lo = 1, .hi = 64},          /* cluster mode */
    {"replication_factor", API_J_U32, .off = C(replication_factor), .lo = 1, .hi = 8},
    {0},
};

