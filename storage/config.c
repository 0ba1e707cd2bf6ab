/*
 * storage/config.c -- collection names and the collection config record.
 *
 * The config is stored as JSON (readable with mdb_dump, and new fields can be added
 * without a layout change): {"format":1,"cid":3,"dim":128,"metric":"l2","index":{"type":
 * "hnsw","m":16,...},"payload_index":{...}}; a quantized index adds "quant":"sq8" (sq4,
 * bit1) to "index" and writes format 2, which older builds refuse; a collection with a
 * named dense vector or sparse vectors adds "vectors":{"name":"","sparse":[{"name":
 * "langchain-sparse","idf":false}]} and writes format 3 (a build without sparse vectors
 * would otherwise open it and lose them on the next upsert); "vectors":{"on_disk":true}
 * (the float vectors read from `points`, vec_source.c) writes format 4, so that a build
 * that would copy them back into the heap refuses it. Index parameters are
 * stored as the user gave
 * them (0 = default), so a default that changes in a later version applies on reopen.
 * The decoder treats the record as untrusted: every field is checked and a bad one is
 * QV_ECORRUPT naming the collection and field.
 */
#include "storage/filter.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

int qv_coll_name_check(const char *name)
{
    if (!name) return qv_fail(QV_EINVAL, "collection name is NULL");
    size_t len = strlen(name);
    if (len < 1 || len > 64)
        return qv_fail(QV_EINVAL, "collection name must be 1..64 bytes, got %zu", len);
    if (name[0] == '.') return qv_fail(QV_EINVAL, "collection name '%s' must not start with '.'", name);
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '.' || ch == '-';
        if (!ok)
            return qv_fail(QV_EINVAL, "collection name: byte %zu (0x%02x) is not one of [A-Za-z0-9_.-]", i,
                           (unsigned)(unsigned char)ch);
    }
    return QV_OK;
}

static int payload_type_ok(const char *t)
{
    static const char *const types[] = {"keyword", "integer", "float", "bool", "text"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(t, types[i]) == 0) return 1;
    return 0;
}

/* Check a parsed payload_index object; msg prefix names where it came from. */
static int payload_index_validate(json_t *o, const char *where, int code)
{
    const char *key;
    json_t *val;
    if (!json_is_object(o)) return qv_fail(code, "%s: payload_index must be a JSON object", where);
    json_object_foreach(o, key, val) {
        if (!key[0]) return qv_fail(code, "%s: payload_index has an empty field name", where);
        if (code == QV_EINVAL && strlen(key) > 128)
            return qv_fail(code, "%s: payload_index field name must be 1..128 bytes, got %zu", where, strlen(key));
        char why[200];
        if (code == QV_EINVAL && qv_payload_path_check(key, why, sizeof why) != QV_OK)
            return qv_fail(code, "%s: payload_index field: %s", where, why);
        if (!json_is_string(val) || !payload_type_ok(json_string_value(val)))
            return qv_fail(code, "%s: payload_index field '%s' must be \"keyword\", \"integer\", \"float\", \"bool\" or \"text\"",
                           where, key);
    }
    return QV_OK;
}

static int dump_owned(json_t *o, char **out)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s) return qv_fail(QV_ENOMEM, "out of memory encoding JSON");
    *out = qv_strdup(s);
    free(s);
    return *out ? QV_OK : QV_ENOMEM;
}

int qv_payload_index_check(const char *json, char **compact)
{
    json_error_t err;
    json_t *o;
    int rc;
    *compact = NULL;
    if (!json) return QV_OK;
    if (!(o = json_loads(json, 0, &err)))
        return qv_fail(QV_EINVAL, "payload_index: invalid JSON at line %d column %d: %s", err.line, err.column,
                       err.text);
    rc = payload_index_validate(o, "config", QV_EINVAL);
    if (rc == QV_OK) rc = dump_owned(o, compact);
    json_decref(o);
    return rc;
}

/* "vectors": {"name": dense name (when named), "sparse": [{"name","idf"}...]} */
static json_t *vectors_json(const qv_vectors_def *vd)
{
    json_t *o = json_object(), *arr = json_array();
    if (!o || !arr) goto fail;
    if (vd->named && json_object_set_new(o, "name", json_string(vd->name)) != 0) goto fail;
    if (vd->no_dense && json_object_set_new(o, "no_dense", json_true()) != 0) goto fail;
    if (vd->on_disk && json_object_set_new(o, "on_disk", json_true()) != 0) goto fail;
    for (size_t i = 0; i < vd->nsparse; i++)
        if (json_array_append_new(arr, json_pack("{s:s,s:b}", "name", vd->sparse[i].name, "idf", vd->sparse[i].idf)) != 0)
            goto fail;
    if (json_object_set_new(o, "sparse", arr) != 0) { arr = NULL; goto fail; }
    return o;
fail:
    json_decref(o);
    json_decref(arr);
    return NULL;
}

static int vectors_from_json(const char *name, json_t *o, uint64_t format, qv_vectors_def *vd)
{
    json_t *jn = json_object_get(o, "name"), *arr = json_object_get(o, "sparse"), *e;
    size_t i;
    memset(vd, 0, sizeof *vd);
    if (!json_is_object(o) || (jn && !json_is_string(jn)) || (arr && !json_is_array(arr)) ||
        json_array_size(arr) > QV_MAX_SPARSE_VECTORS)
        return qv_fail(QV_ECORRUPT, "collection '%s': config has a bad \"vectors\"", name);
    if (jn) {
        if (json_string_length(jn) > QV_SPARSE_NAME_MAX)
            return qv_fail(QV_ECORRUPT, "collection '%s': config has a bad vector name", name);
        vd->named = 1;
        snprintf(vd->name, sizeof vd->name, "%s", json_string_value(jn));
    }
    json_array_foreach(arr, i, e) {
        json_t *sn = json_object_get(e, "name"), *idf = json_object_get(e, "idf");
        if (!json_is_string(sn) || json_string_length(sn) < 1 || json_string_length(sn) > QV_SPARSE_NAME_MAX ||
            (idf && !json_is_boolean(idf)))
            return qv_fail(QV_ECORRUPT, "collection '%s': config has a bad sparse vector %zu", name, i);
        snprintf(vd->sparse[i].name, sizeof vd->sparse[i].name, "%s", json_string_value(sn));
        vd->sparse[i].idf = json_is_true(idf);
    }
    vd->nsparse = json_array_size(arr);
    json_t *nd = json_object_get(o, "no_dense");
    if (nd && (!json_is_boolean(nd) || (json_is_true(nd) && (!vd->nsparse || vd->named))))
        return qv_fail(QV_ECORRUPT, "collection '%s': config has a bad \"no_dense\"", name);
    vd->no_dense = json_is_true(nd);
    json_t *od = json_object_get(o, "on_disk");
    if (od && (!json_is_boolean(od) || (json_is_true(od) && format < QV_COLL_CONFIG_FORMAT_ON_DISK)))
        return qv_fail(QV_ECORRUPT, "collection '%s': config has a bad \"on_disk\" (format %llu)", name,
                       (unsigned long long)format);
    vd->on_disk = json_is_true(od);
    return QV_OK;
}

int qv_coll_config_encode(uint32_t cid, const qv_index_params *p, const char *payload_index,
                          const qv_vectors_def *vd, char **out)
{
    json_t *o = NULL, *ix = NULL, *pi = NULL;
    int rc = QV_ENOMEM;
    *out = NULL;
    const char *kind = qv_index_kind_name(p->kind), *metric = qv_metric_name(p->metric);
    if (!kind || !metric) return qv_fail(QV_EINVAL, "unknown index kind or metric");
    /* A collection keeps its vectors as float32 in LMDB and feeds them to its index as a
     * source; u8 storage is for standalone indexes for now (the config does not record it). */
    if (p->vec_type != QV_VEC_F32)
        return qv_fail(QV_EINVAL, "collections keep float32 vectors: vector type %s is for a standalone index",
                       qv_vec_type_name(p->vec_type) ? qv_vec_type_name(p->vec_type) : "?");
    if (payload_index && !(pi = json_loads(payload_index, 0, NULL))) goto cleanup;
    o = json_pack("{s:I,s:I,s:I,s:s}", "format", (json_int_t)QV_COLL_CONFIG_FORMAT, "cid", (json_int_t)cid,
                  "dim", (json_int_t)p->dim, "metric", metric);
    ix = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "type", kind,
                   "m", (json_int_t)p->m, "ef_construction", (json_int_t)p->ef_construction,
                   "ef_search", (json_int_t)p->ef_search, "nlist", (json_int_t)p->nlist,
                   "nprobe", (json_int_t)p->nprobe, "kmeans_iters", (json_int_t)p->kmeans_iters,
                   "max_train_points", (json_int_t)p->max_train_points,
                   "threads", (json_int_t)p->threads, "flags", (json_int_t)p->flags,
                   /* the seed's 64 bits round-trip through json_int_t (a cast both ways) */
                   "seed", (json_int_t)p->seed, "gpu", (json_int_t)p->gpu);
    if (!o || !ix) goto cleanup;
    /* Codes: "quant" in the index object, and format 2 so that a build without
     * quantization refuses the config instead of opening a float index in its place. */
    if (p->quant != QV_QUANT_NONE) {
        const char *qn = qv_quant_name(p->quant);
        if (!qn) {
            rc = qv_fail(QV_EINVAL, "unknown quantization %d", (int)p->quant);
            goto cleanup;
        }
        if (json_object_set_new(ix, "quant", json_string(qn)) != 0 ||
            json_object_set_new(o, "format", json_integer(QV_COLL_CONFIG_FORMAT_QUANT)) != 0)
            goto cleanup;
    }
    if (vd && (vd->named || vd->nsparse || vd->on_disk)) {
        json_int_t format = vd->on_disk ? QV_COLL_CONFIG_FORMAT_ON_DISK : QV_COLL_CONFIG_FORMAT_VECTORS;
        if (json_object_set_new(o, "vectors", vectors_json(vd)) != 0 || !json_object_get(o, "vectors") ||
            json_object_set_new(o, "format", json_integer(format)) != 0)
            goto cleanup;
    }
    if (json_object_set_new(o, "index", ix) != 0) goto cleanup;
    ix = NULL;
    if (pi) {
        if (json_object_set_new(o, "payload_index", pi) != 0) goto cleanup;
        pi = NULL;
    }
    rc = dump_owned(o, out);
cleanup:
    if (rc == QV_ENOMEM && !*out) qv_fail(QV_ENOMEM, "out of memory encoding the collection config");
    json_decref(o);
    json_decref(ix);
    json_decref(pi);
    return rc;
}

/* Read an integer field in [lo, hi]; absent -> dflt. */
static int get_uint(json_t *o, const char *name, const char *field, uint64_t lo, uint64_t hi, uint64_t dflt,
                    uint64_t *out)
{
    json_t *v = json_object_get(o, field);
    if (!v) { *out = dflt; return QV_OK; }
    if (!json_is_integer(v)) return qv_fail(QV_ECORRUPT, "collection '%s': config field '%s' is not an integer", name, field);
    uint64_t x = (uint64_t)json_integer_value(v);
    if (x < lo || x > hi)
        return qv_fail(QV_ECORRUPT, "collection '%s': config field '%s' = %llu out of range", name, field,
                       (unsigned long long)x);
    *out = x;
    return QV_OK;
}

int qv_coll_config_decode(const char *name, const void *buf, size_t len, uint32_t *cid, qv_index_params *p,
                          char **payload_index, qv_vectors_def *vd)
{
    json_error_t err;
    json_t *o, *ix, *pi;
    uint64_t v[16] = {0};
    int rc;

    *payload_index = NULL;
    memset(vd, 0, sizeof *vd);
    if (!(o = json_loadb(buf, len, 0, &err)))
        return qv_fail(QV_ECORRUPT, "collection '%s': config is not valid JSON (%s)", name, err.text);
    if (!json_is_object(o) || !json_is_object(ix = json_object_get(o, "index"))) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': config is not a JSON object with an \"index\" object", name);
        goto cleanup;
    }
    if ((rc = get_uint(o, name, "format", 1, 1000000, 0, &v[0])) != QV_OK) goto cleanup;
    if (v[0] < QV_COLL_CONFIG_FORMAT || v[0] > QV_COLL_CONFIG_FORMAT_ON_DISK) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': config format %llu not supported (this build reads %u..%u)", name,
                     (unsigned long long)v[0], QV_COLL_CONFIG_FORMAT, QV_COLL_CONFIG_FORMAT_ON_DISK);
        goto cleanup;
    }
    json_t *jv = json_object_get(o, "vectors");
    if (jv && v[0] < QV_COLL_CONFIG_FORMAT_VECTORS) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': config has \"vectors\" in format %llu", name, (unsigned long long)v[0]);
        goto cleanup;
    }
    if (jv && (rc = vectors_from_json(name, jv, v[0], vd)) != QV_OK) goto cleanup;
    qv_quant quant = QV_QUANT_NONE;
    json_t *jq = json_object_get(ix, "quant");
    if (jq && (v[0] < QV_COLL_CONFIG_FORMAT_QUANT || !json_is_string(jq) ||
               qv_quant_parse(json_string_value(jq), &quant) != QV_OK)) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': config has a bad \"quant\" (format %llu)", name,
                     (unsigned long long)v[0]);
        goto cleanup;
    }
    qv_metric metric;
    qv_index_kind kind;
    json_t *jm = json_object_get(o, "metric"), *jk = json_object_get(ix, "type");
    if (!json_is_string(jm) || qv_metric_parse(json_string_value(jm), &metric) != QV_OK ||
        !json_is_string(jk) || qv_index_kind_parse(json_string_value(jk), &kind) != QV_OK) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': config has a bad metric or index type", name);
        goto cleanup;
    }
    if ((rc = get_uint(o, name, "cid", 0, UINT32_MAX, UINT64_MAX, &v[1])) != QV_OK ||
        (rc = get_uint(o, name, "dim", 1, QV_MAX_DIM, 0, &v[2])) != QV_OK ||
        (rc = get_uint(ix, name, "m", 0, UINT32_MAX, 0, &v[3])) != QV_OK ||
        (rc = get_uint(ix, name, "ef_construction", 0, UINT32_MAX, 0, &v[4])) != QV_OK ||
        (rc = get_uint(ix, name, "ef_search", 0, UINT32_MAX, 0, &v[5])) != QV_OK ||
        (rc = get_uint(ix, name, "nlist", 0, UINT32_MAX, 0, &v[6])) != QV_OK ||
        (rc = get_uint(ix, name, "nprobe", 0, UINT32_MAX, 0, &v[7])) != QV_OK ||
        (rc = get_uint(ix, name, "kmeans_iters", 0, UINT32_MAX, 0, &v[8])) != QV_OK ||
        (rc = get_uint(ix, name, "max_train_points", 0, SIZE_MAX, 0, &v[9])) != QV_OK ||
        (rc = get_uint(ix, name, "threads", 0, UINT32_MAX, 0, &v[10])) != QV_OK ||
        (rc = get_uint(ix, name, "flags", 0, UINT32_MAX, 0, &v[11])) != QV_OK ||
        (rc = get_uint(ix, name, "seed", 0, UINT64_MAX, 42, &v[12])) != QV_OK ||
        (rc = get_uint(ix, name, "gpu", 0, QV_GPU_REQUIRE, 0, &v[13])) != QV_OK)
        goto cleanup;
    if (v[1] == UINT64_MAX) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': config has no \"cid\"", name);
        goto cleanup;
    }
    qv_index_params_init(p, kind, (uint32_t)v[2], metric);
    p->m = (uint32_t)v[3];
    p->ef_construction = (uint32_t)v[4];
    p->ef_search = (uint32_t)v[5];
    p->nlist = (uint32_t)v[6];
    p->nprobe = (uint32_t)v[7];
    p->kmeans_iters = (uint32_t)v[8];
    p->max_train_points = (size_t)v[9];
    p->threads = (uint32_t)v[10];
    p->flags = (uint32_t)v[11];
    p->seed = v[12];
    p->gpu = (qv_gpu_mode)v[13];
    p->quant = quant;
    *cid = (uint32_t)v[1];
    if (vd->on_disk && (kind != QV_INDEX_HNSW || quant == QV_QUANT_NONE)) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': config has \"on_disk\" for an index that holds its vectors", name);
        goto cleanup;
    }
    if ((pi = json_object_get(o, "payload_index")) && !json_is_null(pi)) {
        char where[96];
        snprintf(where, sizeof where, "collection '%s'", name);
        if ((rc = payload_index_validate(pi, where, QV_ECORRUPT)) != QV_OK) goto cleanup;
        if ((rc = dump_owned(pi, payload_index)) != QV_OK) goto cleanup;
    }
    rc = QV_OK;
cleanup:
    json_decref(o);
    return rc;
}
