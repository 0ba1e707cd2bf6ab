/*
 * server/handlers.c -- one function per quiverd endpoint.
 *
 * Each handler follows the same straight line: parse the body (strict, jsonin.c) ->
 * take the table lock and find the collection -> validate against it (dimension) ->
 * one qv_* call -> encode -> exactly one reply. Any failure on the way replies with a
 * 4xx/5xx JSON error and applies nothing: input is fully validated before the single
 * library call, and a batch upsert/delete is one transaction inside the library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "server/server.h"


/* ---- small helpers --------------------------------------------------------------- */

static void bad_input(srv_req *r, const srv_jerr *e)
{
    const char *code = e->code ? e->code : "invalid_argument";
    srv_reply_error(r, strcmp(code, "out_of_memory") == 0 ? 503 : 400, code, "%s", e->msg);
}

static void no_collection(srv_req *r, const char *name)
{
    srv_reply_error(r, 404, "not_found", "collection '%s' does not exist", name);
}

static void out_of_memory(srv_req *r)
{
    srv_reply_error(r, 503, "out_of_memory", "out of memory");
}

/* Payload text stored by the library -> JSON value (null when absent or unreadable). */
static json_t *payload_value(const char *text)
{
    if (!text) return json_null();
    json_t *v = json_loads(text, 0, NULL);
    return v ? v : json_null();
}

static json_t *vector_value(const float *v, uint32_t dim)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < dim; i++)
        if (json_array_append_new(a, json_real(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* The index part of the collection info, defaults resolved (the library stores 0 for
 * "default"; the numbers are quiver.h's documented defaults). An ivf nlist of 0 means
 * 4*sqrt(n) chosen when it trains: shown as null, like the training threshold then. */
static json_t *index_value(const qv_index_params *p)
{
    const char *kind = qv_index_kind_name(p->kind);
    json_t *o = json_pack("{s:s}", "type", kind ? kind : "?");
    if (!o) return NULL;
    int bad = 0;
    if (p->kind == QV_INDEX_HNSW) {
        bad |= json_object_set_new(o, "m", json_integer(p->m ? p->m : 16));
        bad |= json_object_set_new(o, "ef_construction", json_integer(p->ef_construction ? p->ef_construction : 200));
        bad |= json_object_set_new(o, "ef_search", json_integer(p->ef_search ? p->ef_search : 64));
    } else if (p->kind == QV_INDEX_IVF) {
        json_int_t nlist = p->nlist, at = nlist * 39 > 1000 ? nlist * 39 : 1000;
        bad |= json_object_set_new(o, "nlist", nlist ? json_integer(nlist) : json_null());
        bad |= json_object_set_new(o, "nprobe", json_integer(p->nprobe ? p->nprobe : 8));
        bad |= json_object_set_new(o, "kmeans_iters", json_integer(p->kmeans_iters ? p->kmeans_iters : 20));
        bad |= json_object_set_new(o, "train_at", nlist ? json_integer(at) : json_null());
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Caller holds the table lock; config.payload_index points into the library's handle
 * (valid until the collection is closed, even when a field index changes meanwhile). */
static json_t *info_value(const srv_coll *e, const qv_collection_info *info)
{
    const qv_index_params *p = &info->config.index;
    json_t *pi = info->config.payload_index ? json_loads(info->config.payload_index, 0, NULL) : NULL;
    const char *metric = qv_metric_name(p->metric);
    return json_pack("{s:s,s:I,s:s,s:o,s:o,s:I,s:I,s:I}",
                     "name", e->name, "dim", (json_int_t)p->dim, "metric", metric ? metric : "?",
                     "index", index_value(p), "payload_index", pi ? pi : json_object(),
                     "count", (json_int_t)info->count, "memory_bytes", (json_int_t)info->memory_bytes,
                     "last_seq", (json_int_t)info->last_seq);
}

/* ---- health, metrics, listing ---------------------------------------------------- */

void srv_h_healthz(srv_req *r)
{
    srv_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void srv_h_metrics(srv_req *r)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf || srv_metrics_render(r->ctx, buf) != 0) {
        if (buf) evbuffer_free(buf);
        out_of_memory(r);
        return;
    }
    srv_reply_text(r, 200, "text/plain; version=0.0.4", buf);
    evbuffer_free(buf);
}

void srv_h_list(srv_req *r)
{
    srv_ctx *ctx = r->ctx;
    json_t *arr = json_array();
    int rc = QV_OK;
    pthread_rwlock_rdlock(&ctx->colls.lock);
    for (size_t i = 0; arr && i < ctx->colls.n; i++) {
        qv_collection_info info;
        if ((rc = qv_collection_get_info(ctx->colls.v[i].coll, &info)) != QV_OK) break;
        const char *metric = qv_metric_name(info.config.index.metric);
        json_array_append_new(arr, json_pack("{s:s,s:I,s:s,s:I}", "name", ctx->colls.v[i].name,
                                             "dim", (json_int_t)info.config.index.dim,
                                             "metric", metric ? metric : "?",
                                             "count", (json_int_t)info.count));
    }
    pthread_rwlock_unlock(&ctx->colls.lock);
    if (rc != QV_OK) {
        json_decref(arr);
        srv_reply_qv(r, rc);
        return;
    }
    srv_reply_json(r, 200, arr ? json_pack("{s:o}", "collections", arr) : NULL);
}

/* ---- collections ------------------------------------------------------------------ */

static int parse_create(const json_t *body, qv_collection_config *cfg, char **payload_index,
                        srv_jerr *e)
{
    static const char *const top[] = {"dim", "metric", "index", "payload_index", NULL};
    static const char *const idx[] = {"type", "m", "ef_construction", "ef_search", "nlist",
                                      "nprobe", "kmeans_iters", NULL};
    uint64_t dim = 0, m = 0, efc = 0, efs = 0, nlist = 0, nprobe = 0, iters = 0;
    qv_metric metric = QV_METRIC_L2;
    qv_index_kind kind = QV_INDEX_HNSW;

    if (srv_json_only(body, "the collection config", top, e)) return -1;
    json_t *jdim = json_object_get(body, "dim");
    if (!jdim) { snprintf(e->msg, sizeof e->msg, "missing 'dim'"); e->code = "invalid_argument"; return -1; }
    if (srv_json_uint(body, "dim", 1, QV_MAX_DIM, &dim, e)) return -1;
    json_t *jm = json_object_get(body, "metric");
    if (jm && !json_is_null(jm)) {
        if (!json_is_string(jm) || qv_metric_parse(json_string_value(jm), &metric) != QV_OK) {
            snprintf(e->msg, sizeof e->msg, "'metric' must be \"l2\", \"ip\" or \"cosine\"");
            e->code = "invalid_argument";
            return -1;
        }
    }
    json_t *ji = json_object_get(body, "index");
    if (ji && !json_is_null(ji)) {
        if (!json_is_object(ji)) { snprintf(e->msg, sizeof e->msg, "'index' must be an object"); e->code = "invalid_argument"; return -1; }
        if (srv_json_only(ji, "'index'", idx, e)) return -1;
        json_t *jt = json_object_get(ji, "type");
        if (jt && !json_is_null(jt)) {
            if (!json_is_string(jt) || qv_index_kind_parse(json_string_value(jt), &kind) != QV_OK) {
                snprintf(e->msg, sizeof e->msg, "'index.type' must be \"flat\", \"hnsw\" or \"ivf\"");
                e->code = "invalid_argument";
                return -1;
            }
        }
        if (srv_json_uint(ji, "m", 0, UINT32_MAX, &m, e) ||
            srv_json_uint(ji, "ef_construction", 0, UINT32_MAX, &efc, e) ||
            srv_json_uint(ji, "ef_search", 0, SRV_MAX_EF, &efs, e) ||
            srv_json_uint(ji, "nlist", 0, UINT32_MAX, &nlist, e) ||
            srv_json_uint(ji, "nprobe", 0, SRV_MAX_NPROBE, &nprobe, e) ||
            srv_json_uint(ji, "kmeans_iters", 0, 1000, &iters, e))
            return -1;
    }
    json_t *jp = json_object_get(body, "payload_index");
    if (jp && !json_is_null(jp)) {
        if (!json_is_object(jp)) { snprintf(e->msg, sizeof e->msg, "'payload_index' must be an object"); e->code = "invalid_argument"; return -1; }
        if (!(*payload_index = json_dumps(jp, JSON_COMPACT))) { snprintf(e->msg, sizeof e->msg, "out of memory"); e->code = "out_of_memory"; return -1; }
    }
    memset(cfg, 0, sizeof *cfg);
    qv_index_params_init(&cfg->index, kind, (uint32_t)dim, metric);
    if (m) cfg->index.m = (uint32_t)m;
    if (efc) cfg->index.ef_construction = (uint32_t)efc;
    if (efs) cfg->index.ef_search = (uint32_t)efs;
    if (nlist) cfg->index.nlist = (uint32_t)nlist;
    if (nprobe) cfg->index.nprobe = (uint32_t)nprobe;
    if (iters) cfg->index.kmeans_iters = (uint32_t)iters;
    cfg->payload_index = *payload_index;
    return 0;
}

void srv_h_create(srv_req *r, const char *name)
{
    srv_ctx *ctx = r->ctx;
    srv_jerr e = {0};
    char *payload_index = NULL;
    qv_collection_config cfg;
    json_t *body = srv_json_body(r->req, &e);
    if (!body || parse_create(body, &cfg, &payload_index, &e) != 0) {
        bad_input(r, &e);
        goto cleanup;
    }
    pthread_rwlock_wrlock(&ctx->colls.lock);
    if (srv_colls_find(&ctx->colls, name)) {
        pthread_rwlock_unlock(&ctx->colls.lock);
        srv_reply_error(r, 409, "already_exists", "collection '%s' already exists", name);
        goto cleanup;
    }
    qv_coll *c = NULL;
    int rc = qv_collection_create(ctx->db, name, &cfg, &c);
    if (rc == QV_OK && !c) rc = qv_collection_open(ctx->db, name, &c);
    if (rc == QV_OK && (rc = srv_colls_add(&ctx->colls, name, c)) != QV_OK)
        qv_collection_drop(ctx->db, name);           /* keep disk and table in step */
    json_t *out = NULL;
    if (rc == QV_OK) {
        srv_coll *ent = srv_colls_find(&ctx->colls, name);
        qv_collection_info info;
        if ((rc = qv_collection_get_info(ent->coll, &info)) == QV_OK) out = info_value(ent, &info);
    }
    pthread_rwlock_unlock(&ctx->colls.lock);
    if (rc != QV_OK) srv_reply_qv(r, rc);
    else {
        srv_log(SRV_LOG_INFO, "created collection '%s'", name);
        srv_reply_json(r, 201, out);
    }
cleanup:
    free(payload_index);
    json_decref(body);
}

void srv_h_info(srv_req *r, const char *name)
{
    srv_ctx *ctx = r->ctx;
    pthread_rwlock_rdlock(&ctx->colls.lock);
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    qv_collection_info info;
    int rc = ent ? qv_collection_get_info(ent->coll, &info) : QV_ENOTFOUND;
    json_t *out = rc == QV_OK ? info_value(ent, &info) : NULL;
    pthread_rwlock_unlock(&ctx->colls.lock);
    if (!ent) no_collection(r, name);
    else if (rc != QV_OK) srv_reply_qv(r, rc);
    else srv_reply_json(r, 200, out);
}

void srv_h_drop(srv_req *r, const char *name)
{
    srv_ctx *ctx = r->ctx;
    pthread_rwlock_wrlock(&ctx->colls.lock);
    int found = srv_colls_find(&ctx->colls, name) != NULL;
    int rc = found ? qv_collection_drop(ctx->db, name) : QV_ENOTFOUND;
    if (rc == QV_OK) srv_colls_remove(&ctx->colls, name);
    pthread_rwlock_unlock(&ctx->colls.lock);
    if (!found) no_collection(r, name);
    else if (rc != QV_OK) srv_reply_qv(r, rc);
    else {
        srv_log(SRV_LOG_INFO, "dropped collection '%s'", name);
        srv_reply_json(r, 200, json_pack("{s:s}", "dropped", name));
    }
}

/* ---- points ----------------------------------------------------------------------- */

void srv_h_upsert(srv_req *r, const char *name)
{
    static const char *const top[] = {"points", NULL};
    static const char *const pt[] = {"id", "vector", "payload", NULL};
    srv_ctx *ctx = r->ctx;
    srv_jerr e = {0};
    uint64_t *ids = NULL;
    float *vecs = NULL;
    char **payloads = NULL;
    size_t n = 0;
    int locked = 0, have_payload = 0;
    json_t *body = srv_json_body(r->req, &e);
    if (!body || srv_json_only(body, "the body", top, &e)) { bad_input(r, &e); goto cleanup; }
    json_t *points = json_object_get(body, "points");
    if (!points || !json_is_array(points)) {
        srv_reply_error(r, 400, "invalid_argument", "'points' must be an array of {\"id\",\"vector\",\"payload\"}");
        goto cleanup;
    }
    n = json_array_size(points);

    pthread_rwlock_rdlock(&ctx->colls.lock);
    locked = 1;
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    if (!ent) { no_collection(r, name); goto cleanup; }
    if (n == 0) { srv_reply_json(r, 200, json_pack("{s:I}", "upserted", (json_int_t)0)); goto cleanup; }
    ids = malloc(n * sizeof *ids);
    vecs = malloc(n * (size_t)ent->dim * sizeof *vecs);
    payloads = calloc(n, sizeof *payloads);
    if (!ids || !vecs || !payloads) { out_of_memory(r); goto cleanup; }
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(points, i);
        char what[48];
        snprintf(what, sizeof what, "points[%zu]", i);
        if (!json_is_object(p)) {
            srv_reply_error(r, 400, "invalid_argument", "%s must be an object", what);
            goto cleanup;
        }
        if (srv_json_only(p, what, pt, &e) ||
            srv_json_id(json_object_get(p, "id"), what, &ids[i], &e) ||
            srv_json_vector(json_object_get(p, "vector"), what, ent->dim, vecs + i * ent->dim, &e)) {
            bad_input(r, &e);
            goto cleanup;
        }
        json_t *pl = json_object_get(p, "payload");
        if (pl && !json_is_null(pl)) {
            if (!json_is_object(pl)) {
                srv_reply_error(r, 400, "invalid_argument", "%s: 'payload' must be an object", what);
                goto cleanup;
            }
            if (!(payloads[i] = json_dumps(pl, JSON_COMPACT))) { out_of_memory(r); goto cleanup; }
            have_payload = 1;
        }
    }
    int rc = qv_upsert(ent->coll, n, ids, vecs, have_payload ? (const char *const *)payloads : NULL);
    if (rc != QV_OK) srv_reply_qv(r, rc);
    else srv_reply_json(r, 200, json_pack("{s:I}", "upserted", (json_int_t)n));
cleanup:
    if (locked) pthread_rwlock_unlock(&ctx->colls.lock);
    if (payloads)
        for (size_t i = 0; i < n; i++) free(payloads[i]);
    free(payloads);
    free(vecs);
    free(ids);
    json_decref(body);
}

void srv_h_get_point(srv_req *r, const char *name, const char *idstr)
{
    srv_ctx *ctx = r->ctx;
    uint64_t id;
    float *vec = NULL;
    char *payload = NULL;
    if (srv_parse_id(idstr, &id) != 0) {
        srv_reply_error(r, 400, "invalid_argument", "point ids are decimal integers");
        return;
    }
    pthread_rwlock_rdlock(&ctx->colls.lock);
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    if (!ent) { no_collection(r, name); goto cleanup; }
    if (!(vec = malloc((size_t)ent->dim * sizeof *vec))) { out_of_memory(r); goto cleanup; }
    int rc = qv_get(ent->coll, id, vec, &payload);
    if (rc == QV_ENOTFOUND)
        srv_reply_error(r, 404, "not_found", "no point %llu in collection '%s'", (unsigned long long)id, name);
    else if (rc != QV_OK)
        srv_reply_qv(r, rc);
    else
        srv_reply_json(r, 200, json_pack("{s:I,s:o,s:o}", "id", (json_int_t)id,
                                         "vector", vector_value(vec, ent->dim),
                                         "payload", payload_value(payload)));
cleanup:
    pthread_rwlock_unlock(&ctx->colls.lock);
    qv_free(payload);
    free(vec);
}

void srv_h_delete_points(srv_req *r, const char *name)
{
    static const char *const top[] = {"ids", NULL};
    srv_ctx *ctx = r->ctx;
    srv_jerr e = {0};
    uint64_t *ids = NULL;
    int locked = 0;
    json_t *body = srv_json_body(r->req, &e);
    if (!body || srv_json_only(body, "the body", top, &e)) { bad_input(r, &e); goto cleanup; }
    json_t *jids = json_object_get(body, "ids");
    if (!jids || !json_is_array(jids)) {
        srv_reply_error(r, 400, "invalid_argument", "'ids' must be an array of point ids");
        goto cleanup;
    }
    size_t n = json_array_size(jids);
    if (!(ids = malloc((n ? n : 1) * sizeof *ids))) { out_of_memory(r); goto cleanup; }
    for (size_t i = 0; i < n; i++) {
        char what[32];
        snprintf(what, sizeof what, "ids[%zu]", i);
        json_t *v = json_array_get(jids, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            srv_reply_error(r, 400, "invalid_argument", "%s must be a non-negative integer", what);
            goto cleanup;
        }
        ids[i] = (uint64_t)json_integer_value(v);
    }
    pthread_rwlock_rdlock(&ctx->colls.lock);
    locked = 1;
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    if (!ent) { no_collection(r, name); goto cleanup; }
    size_t deleted = 0;
    int rc = QV_OK;
    if (n) rc = qv_delete(ent->coll, n, ids, &deleted);
    if (rc != QV_OK) srv_reply_qv(r, rc);
    else srv_reply_json(r, 200, json_pack("{s:I}", "deleted", (json_int_t)deleted));
cleanup:
    if (locked) pthread_rwlock_unlock(&ctx->colls.lock);
    free(ids);
    json_decref(body);
}

/* ---- search ----------------------------------------------------------------------- */

typedef struct {
    uint32_t k, ef, nprobe;
    int with_payload;
    char *filter_json;             /* compact text of "filter" (NULL: none), for grouping */
    qv_filter *filter;             /* parsed from it */
} search_opts;

static void search_opts_release(search_opts *so)
{
    qv_filter_free(so->filter);
    free(so->filter_json);
    so->filter = NULL;
    so->filter_json = NULL;
}

/* "filter": a JSON object handed to the library's parser as text. Its message names the
 * bad part ("filter.must[1].range: unknown operator 'ge'"); batch searches prefix theirs. */
static int parse_filter(const json_t *f, const char *prefix, search_opts *so, srv_jerr *e)
{
    if (!json_is_object(f)) {
        snprintf(e->msg, sizeof e->msg, "%sfilter: must be a JSON object like {\"must\":[...]}", prefix);
        e->code = "bad_filter";
        return -1;
    }
    if (!(so->filter_json = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS))) {
        snprintf(e->msg, sizeof e->msg, "out of memory");
        e->code = "out_of_memory";
        return -1;
    }
    int rc = qv_filter_parse(so->filter_json, &so->filter);
    if (rc != QV_OK) {
        snprintf(e->msg, sizeof e->msg, "%s%s", prefix, rc == QV_ENOMEM ? "out of memory" : qv_last_error());
        e->code = rc == QV_ENOMEM ? "out_of_memory" : "bad_filter";
        return -1;
    }
    return 0;
}

/* Parse one search object; the query vector goes to vec (dim floats). On failure the
 * caller still releases so. */
static int parse_search(const json_t *o, const char *what, const char *prefix, uint32_t dim,
                        float *vec, search_opts *so, srv_jerr *e)
{
    static const char *const keys[] = {"vector", "k", "ef", "nprobe", "filter", "with_payload", NULL};
    uint64_t k = SRV_DEFAULT_K, ef = 0, nprobe = 0;
    memset(so, 0, sizeof *so);
    if (!json_is_object(o)) {
        snprintf(e->msg, sizeof e->msg, "%s must be an object", what);
        e->code = "invalid_argument";
        return -1;
    }
    if (srv_json_only(o, what, keys, e)) return -1;
    if (srv_json_uint(o, "k", 1, QV_MAX_K, &k, e) ||
        srv_json_uint(o, "ef", 0, SRV_MAX_EF, &ef, e) ||
        srv_json_uint(o, "nprobe", 0, SRV_MAX_NPROBE, &nprobe, e) ||
        srv_json_bool(o, "with_payload", &so->with_payload, e) ||
        srv_json_vector(json_object_get(o, "vector"), what, dim, vec, e))
        return -1;
    json_t *f = json_object_get(o, "filter");
    if (f && !json_is_null(f) && parse_filter(f, prefix, so, e) != 0) return -1;
    so->k = (uint32_t)k;
    so->ef = (uint32_t)ef;
    so->nprobe = (uint32_t)nprobe;
    return 0;
}

static void params_of(const search_opts *so, qv_search_params *sp)
{
    qv_search_params_init(sp, so->k);
    sp->ef = so->ef;
    sp->nprobe = so->nprobe;
    sp->filter = so->filter;
}

/* What the planner did: {"plan","live","allowed","conditions","unindexed":[keys],
 * "payloads_read","filter_us","cached"}. */
static json_t *took_value(const qv_search_stats *st)
{
    json_t *keys = json_array();
    if (!keys) return NULL;
    const char *p = st->unindexed_keys;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len && json_array_append_new(keys, json_stringn(p, len)) != 0) {
            json_decref(keys);
            return NULL;
        }
        p += len + (comma ? 1 : 0);
    }
    return json_pack("{s:s,s:I,s:I,s:I,s:o,s:I,s:I,s:b}", "plan", st->plan ? st->plan : "none",
                     "live", (json_int_t)st->live, "allowed", (json_int_t)st->allowed,
                     "conditions", (json_int_t)st->conditions, "unindexed", keys,
                     "payloads_read", (json_int_t)st->payloads_read,
                     "filter_us", (json_int_t)st->filter_us, "cached", (int)(st->cached != 0));
}

static json_t *hits_value(qv_coll *c, const qv_hit *hits, size_t n, int with_payload)
{
    json_t *arr = json_array();
    char **texts = NULL;
    /* a point deleted since the search shows null (so does any failure to read: the hits
     * themselves are still right) */
    if (with_payload && srv_hit_payloads(c, hits, n, &texts) != 0) texts = NULL;
    for (size_t i = 0; arr && i < n; i++) {
        json_t *h = json_pack("{s:I,s:f}", "id", (json_int_t)hits[i].id, "score", (double)hits[i].score);
        if (h && with_payload) json_object_set_new(h, "payload", payload_value(texts ? texts[i] : NULL));
        if (!h || json_array_append_new(arr, h) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    srv_free_payloads(texts, n);
    return arr;
}

/* The plain search (no filter) without jansson trees; see search_fast.c. Returns 1
 * when it answered, 0 when the general path must take the request from the start. */
static int search_fast(srv_req *r, const char *name)
{
    srv_ctx *ctx = r->ctx;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    if (!body) return 0;
    int answered = 0;
    float *vec = NULL;
    qv_hit *hits = NULL;
    struct evbuffer *out = NULL;
    srv_fast_search fs;
    pthread_rwlock_rdlock(&ctx->colls.lock);
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    if (!ent || !(vec = malloc((size_t)ent->dim * sizeof *vec)) ||
        !srv_scan_search(body, len, ent->dim, vec, &fs) || !(hits = malloc(fs.k * sizeof *hits)))
        goto done;
    qv_search_params sp;
    qv_search_params_init(&sp, fs.k);
    sp.ef = fs.ef;
    sp.nprobe = fs.nprobe;
    qv_search_stats st;
    size_t nh = 0;
    uint64_t t0 = srv_now_us();
    int rc = qv_search_ex(ent->coll, 1, vec, &sp, hits, &nh, &st);
    uint64_t took = srv_now_us() - t0;
    if (rc != QV_OK) {
        srv_reply_qv(r, rc);
        answered = 1;
    } else if ((out = evbuffer_new()) &&
               srv_format_search_reply(out, fs.with_payload ? ent->coll : NULL, hits, nh, took, &st) == 0) {
        srv_reply_text(r, 200, "application/json", out);
        answered = 1;
    }
done:
    pthread_rwlock_unlock(&ctx->colls.lock);
    if (out) evbuffer_free(out);
    free(hits);
    free(vec);
    return answered;
}

void srv_h_search(srv_req *r, const char *name)
{
    if (search_fast(r, name)) return;
    srv_ctx *ctx = r->ctx;
    srv_jerr e = {0};
    float *vec = NULL;
    qv_hit *hits = NULL;
    search_opts so = {0};
    int locked = 0;
    json_t *body = srv_json_body(r->req, &e);
    if (!body) { bad_input(r, &e); goto cleanup; }
    pthread_rwlock_rdlock(&ctx->colls.lock);
    locked = 1;
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    if (!ent) { no_collection(r, name); goto cleanup; }
    if (!(vec = malloc((size_t)ent->dim * sizeof *vec))) { out_of_memory(r); goto cleanup; }
    if (parse_search(body, "the search", "", ent->dim, vec, &so, &e) != 0) { bad_input(r, &e); goto cleanup; }
    if (!(hits = malloc(so.k * sizeof *hits))) { out_of_memory(r); goto cleanup; }
    qv_search_params sp;
    params_of(&so, &sp);
    qv_search_stats st;
    size_t nh = 0;
    uint64_t t0 = srv_now_us();
    int rc = qv_search_ex(ent->coll, 1, vec, &sp, hits, &nh, &st);
    uint64_t took = srv_now_us() - t0;
    if (rc != QV_OK) { srv_reply_qv(r, rc); goto cleanup; }
    json_t *arr = hits_value(ent->coll, hits, nh, so.with_payload);
    json_t *details = took_value(&st);
    json_t *out = arr && details ? json_pack("{s:o,s:I,s:o}", "hits", arr, "took_us", (json_int_t)took,
                                             "took", details) : NULL;
    if (!out) {
        json_decref(arr);
        json_decref(details);
    }
    srv_reply_json(r, 200, out);
cleanup:
    if (locked) pthread_rwlock_unlock(&ctx->colls.lock);
    search_opts_release(&so);
    free(hits);
    free(vec);
    json_decref(body);
}

static int same_search(const search_opts *a, const search_opts *b)
{
    if (a->k != b->k || a->ef != b->ef || a->nprobe != b->nprobe) return 0;
    if (!a->filter_json || !b->filter_json) return a->filter_json == b->filter_json;
    return strcmp(a->filter_json, b->filter_json) == 0;
}

/* A batch of plain searches without jansson trees, grouped as the general path groups
 * them; 1 when it answered, 0 when the general path must take the request. */
static int search_batch_fast(srv_req *r, const char *name)
{
    srv_ctx *ctx = r->ctx;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in), nq = 0;
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    if (!body) return 0;
    int answered = 0;
    float *vecs = NULL;
    srv_fast_search *opts = NULL;
    qv_hit *hits = NULL;
    size_t *nh = NULL;
    qv_search_stats *st = NULL;
    struct evbuffer *out = NULL;
    pthread_rwlock_rdlock(&ctx->colls.lock);
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    if (!ent || !srv_scan_search_batch(body, len, ent->dim, &vecs, &opts, &nq)) goto done;
    uint32_t kmax = 0;
    int same = 1;
    for (size_t i = 0; i < nq; i++) {
        kmax = opts[i].k > kmax ? opts[i].k : kmax;
        if (opts[i].k != opts[0].k || opts[i].ef != opts[0].ef || opts[i].nprobe != opts[0].nprobe) same = 0;
    }
    hits = malloc(nq * kmax * sizeof *hits);
    nh = calloc(nq, sizeof *nh);
    st = calloc(nq, sizeof *st);
    if (!hits || !nh || !st) goto done;
    qv_search_params sp;
    int rc = QV_OK;
    uint64_t t0 = srv_now_us();
    if (same) {
        qv_search_params_init(&sp, opts[0].k);
        sp.ef = opts[0].ef;
        sp.nprobe = opts[0].nprobe;
        rc = qv_search_ex(ent->coll, nq, vecs, &sp, hits, nh, &st[0]);
        for (size_t i = 1; i < nq; i++) st[i] = st[0];
    } else {
        for (size_t i = 0; i < nq && rc == QV_OK; i++) {
            qv_search_params_init(&sp, opts[i].k);
            sp.ef = opts[i].ef;
            sp.nprobe = opts[i].nprobe;
            rc = qv_search_ex(ent->coll, 1, vecs + i * ent->dim, &sp, hits + i * kmax, &nh[i], &st[i]);
        }
    }
    uint64_t took = srv_now_us() - t0;
    if (rc != QV_OK) {
        srv_reply_qv(r, rc);
        answered = 1;
    } else if ((out = evbuffer_new()) &&
               srv_format_batch_reply(out, ent->coll, opts, nq, hits, kmax, nh, took, st) == 0) {
        srv_reply_text(r, 200, "application/json", out);
        answered = 1;
    }
done:
    pthread_rwlock_unlock(&ctx->colls.lock);
    if (out) evbuffer_free(out);
    free(st);
    free(nh);
    free(hits);
    free(opts);
    free(vecs);
    return answered;
}

void srv_h_search_batch(srv_req *r, const char *name)
{
    if (search_batch_fast(r, name)) return;
    static const char *const top[] = {"searches", NULL};
    srv_ctx *ctx = r->ctx;
    srv_jerr e = {0};
    float *vecs = NULL;
    qv_hit *hits = NULL;
    size_t *nh = NULL, nq = 0;
    search_opts *so = NULL;
    qv_search_stats *st = NULL;
    json_t *results = NULL;
    int locked = 0;
    json_t *body = srv_json_body(r->req, &e);
    if (!body || srv_json_only(body, "the body", top, &e)) { bad_input(r, &e); goto cleanup; }
    json_t *js = json_object_get(body, "searches");
    if (!js || !json_is_array(js) || json_array_size(js) == 0 || json_array_size(js) > SRV_MAX_BATCH) {
        srv_reply_error(r, 400, "invalid_argument", "'searches' must be an array of 1..%u search objects", SRV_MAX_BATCH);
        goto cleanup;
    }
    nq = json_array_size(js);
    pthread_rwlock_rdlock(&ctx->colls.lock);
    locked = 1;
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    if (!ent) { no_collection(r, name); goto cleanup; }
    vecs = malloc(nq * (size_t)ent->dim * sizeof *vecs);
    so = calloc(nq, sizeof *so);
    st = calloc(nq, sizeof *st);
    nh = calloc(nq, sizeof *nh);
    if (!vecs || !so || !st || !nh) { out_of_memory(r); goto cleanup; }
    int same = 1;
    for (size_t i = 0; i < nq; i++) {
        char what[40], prefix[40];
        snprintf(what, sizeof what, "searches[%zu]", i);
        snprintf(prefix, sizeof prefix, "searches[%zu].", i);
        if (parse_search(json_array_get(js, i), what, prefix, ent->dim, vecs + i * ent->dim, &so[i], &e) != 0) {
            bad_input(r, &e);
            goto cleanup;
        }
        if (!same_search(&so[i], &so[0])) same = 0;
    }
    /* rows are k_max apart so that one allocation serves both paths */
    uint32_t kmax = 0;
    for (size_t i = 0; i < nq; i++) kmax = so[i].k > kmax ? so[i].k : kmax;
    if (!(hits = malloc(nq * kmax * sizeof *hits))) { out_of_memory(r); goto cleanup; }
    int rc = QV_OK;
    uint64_t t0 = srv_now_us();
    qv_search_params sp;
    if (same) {
        /* one library call: the filter's allowed set is built once for the whole batch */
        params_of(&so[0], &sp);
        rc = qv_search_ex(ent->coll, nq, vecs, &sp, hits, nh, &st[0]);
        for (size_t i = 1; i < nq; i++) st[i] = st[0];
    } else {
        for (size_t i = 0; i < nq && rc == QV_OK; i++) {
            params_of(&so[i], &sp);
            rc = qv_search_ex(ent->coll, 1, vecs + i * ent->dim, &sp, hits + i * kmax, &nh[i], &st[i]);
        }
    }
    uint64_t took = srv_now_us() - t0;
    if (rc != QV_OK) { srv_reply_qv(r, rc); goto cleanup; }
    if (!(results = json_array())) { out_of_memory(r); goto cleanup; }
    for (size_t i = 0; i < nq; i++) {
        json_t *arr = hits_value(ent->coll, hits + i * kmax, nh[i], so[i].with_payload);
        json_t *details = took_value(&st[i]);
        json_t *one = arr && details ? json_pack("{s:o,s:o}", "hits", arr, "took", details) : NULL;
        if (!one) {
            json_decref(arr);
            json_decref(details);
        }
        if (!one || json_array_append_new(results, one) != 0) {
            out_of_memory(r);
            goto cleanup;
        }
    }
    srv_reply_json(r, 200, json_pack("{s:O,s:I}", "results", results, "took_us", (json_int_t)took));
cleanup:
    if (locked) pthread_rwlock_unlock(&ctx->colls.lock);
    json_decref(results);
    if (so)
        for (size_t i = 0; i < nq; i++) search_opts_release(&so[i]);
    free(so);
    free(st);
    free(hits);
    free(nh);
    free(vecs);
    json_decref(body);
}

/* ---- payload index and training ---------------------------------------------------- */

/* The collection's payload_index as a JSON object ({} when none). Caller holds the table
 * lock (see info_value). */
static json_t *payload_index_value(qv_coll *c, int *rc)
{
    qv_collection_info info;
    if ((*rc = qv_collection_get_info(c, &info)) != QV_OK) return NULL;
    json_t *pi = info.config.payload_index ? json_loads(info.config.payload_index, 0, NULL) : NULL;
    return pi ? pi : json_object();
}

/* Progress of a field index build, into the server log at most every 2 seconds. */
typedef struct { const char *coll, *field; uint64_t last_us; } field_progress;

static void log_field_progress(const char *phase, size_t done, size_t total, void *arg)
{
    field_progress *fp = arg;
    uint64_t now = srv_now_us();
    (void)phase;
    if (now - fp->last_us < 2000000 && done < total) return;
    fp->last_us = now;
    srv_log(SRV_LOG_INFO, "collection '%s': indexing payload field '%s': %zu/%zu points", fp->coll, fp->field,
            done, total);
}

/* PUT /collections/{name}/index/{field} {"type":"keyword"}: 201 when the field was not
 * indexed, 200 when only its type changed. The field is built from the stored payloads
 * (one pass) while this worker waits; the other workers keep serving, searches included
 * (until it is built, filters on the field read the payloads). */
void srv_h_index_field(srv_req *r, const char *name, const char *field)
{
    static const char *const top[] = {"type", NULL};
    srv_ctx *ctx = r->ctx;
    srv_jerr e = {0};
    int locked = 0, rc;
    json_t *before = NULL, *after = NULL;
    json_t *body = srv_json_body(r->req, &e);
    if (!body || srv_json_only(body, "the body", top, &e)) { bad_input(r, &e); goto cleanup; }
    json_t *jt = json_object_get(body, "type");
    if (!json_is_string(jt)) {
        srv_reply_error(r, 400, "invalid_argument",
                        "'type' must be \"keyword\", \"integer\", \"float\" or \"bool\"");
        goto cleanup;
    }
    const char *type = json_string_value(jt);
    /* A read lock: the field is built while other requests on this collection go on
     * (the info string they read stays valid until the collection is closed). */
    pthread_rwlock_rdlock(&ctx->colls.lock);
    locked = 1;
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    if (!ent) { no_collection(r, name); goto cleanup; }
    if (!(before = payload_index_value(ent->coll, &rc))) { srv_reply_qv(r, rc); goto cleanup; }
    int existed = json_object_get(before, field) != NULL;
    field_progress fp = {name, field, srv_now_us()};
    if ((rc = qv_collection_index_field(ent->coll, field, type, log_field_progress, &fp)) != QV_OK) {
        srv_reply_qv(r, rc);
        goto cleanup;
    }
    if (!(after = payload_index_value(ent->coll, &rc))) { srv_reply_qv(r, rc); goto cleanup; }
    srv_log(SRV_LOG_INFO, "collection '%s': indexed payload field '%s' as %s", name, field, type);
    srv_reply_json(r, existed ? 200 : 201, json_pack("{s:s,s:s,s:b,s:O}", "field", field, "type", type,
                                                     "created", !existed, "payload_index", after));
cleanup:
    if (locked) pthread_rwlock_unlock(&ctx->colls.lock);
    json_decref(after);
    json_decref(before);
    json_decref(body);
}

/* DELETE /collections/{name}/index/{field}: 404 when the field is not indexed. */
void srv_h_unindex_field(srv_req *r, const char *name, const char *field)
{
    srv_ctx *ctx = r->ctx;
    json_t *after = NULL;
    int rc;
    pthread_rwlock_rdlock(&ctx->colls.lock);
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    if (!ent) no_collection(r, name);
    else if ((rc = qv_collection_unindex_field(ent->coll, field)) != QV_OK) srv_reply_qv(r, rc);
    else if (!(after = payload_index_value(ent->coll, &rc))) srv_reply_qv(r, rc);
    else {
        srv_log(SRV_LOG_INFO, "collection '%s': payload field '%s' no longer indexed", name, field);
        srv_reply_json(r, 200, json_pack("{s:s,s:b,s:O}", "field", field, "deleted", 1, "payload_index", after));
    }
    pthread_rwlock_unlock(&ctx->colls.lock);
    json_decref(after);
}

/* POST /collections/{name}/train (no body, or {}): train an ivf collection now on the
 * points stored so far. The table lock is only read: training runs under the library's
 * writer lock, and searches go on (exact) until the trained index is swapped in. */
void srv_h_train(srv_req *r, const char *name)
{
    static const char *const none[] = {NULL};
    srv_ctx *ctx = r->ctx;
    srv_jerr e = {0};
    json_t *body = NULL;
    if (evbuffer_get_length(evhttp_request_get_input_buffer(r->req)) > 0 &&
        (!(body = srv_json_body(r->req, &e)) || srv_json_only(body, "the body", none, &e))) {
        bad_input(r, &e);
        json_decref(body);
        return;
    }
    json_decref(body);
    pthread_rwlock_rdlock(&ctx->colls.lock);
    srv_coll *ent = srv_colls_find(&ctx->colls, name);
    qv_collection_info info;
    int rc = QV_OK;
    uint64_t t0 = srv_now_us(), took = 0;
    if (ent && (rc = qv_collection_train(ent->coll, NULL, NULL)) == QV_OK) {
        took = srv_now_us() - t0;
        rc = qv_collection_get_info(ent->coll, &info);
    }
    pthread_rwlock_unlock(&ctx->colls.lock);
    if (!ent) no_collection(r, name);
    else if (rc != QV_OK) srv_reply_qv(r, rc);
    else {
        srv_log(SRV_LOG_INFO, "collection '%s': trained on %zu points", name, info.count);
        srv_reply_json(r, 200, json_pack("{s:b,s:I,s:I}", "trained", 1, "count", (json_int_t)info.count,
                                         "took_us", (json_int_t)took));
    }
}
