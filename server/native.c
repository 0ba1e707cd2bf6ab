/*
 * server/native.c -- the native API: its route table, its error body and one handler per
 * endpoint.
 *
 * Each handler follows the same straight line: parse the body (strict) -> validate
 * against the collection (dimension) -> one qv_* call -> encode -> exactly one reply.
 * The pipeline has already checked the key and found the collection (r->coll), and holds
 * the table lock the route asks for. Any failure replies with a 4xx/5xx JSON error and
 * applies nothing: input is fully validated before the single library call, and a batch
 * upsert/delete is one transaction inside the library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "server/server.h"

static void bad_input(srv_req *r, const srv_jerr *e)
{
    const char *code = e->code ? e->code : "invalid_argument";
    srv_fail(r, strcmp(code, "out_of_memory") == 0 ? 503 : 400, code, "%s", e->msg);
}

static void native_error(srv_req *r, int status, const char *code, const char *msg)
{
    srv_reply_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

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
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The collection's payload_index as a JSON object ({} when none). config.payload_index
 * points into the library's handle: valid while it is open. */
static json_t *payload_index_value(const qv_collection_info *info)
{
    json_t *pi = info->config.payload_index ? json_loads(info->config.payload_index, 0, NULL) : NULL;
    return pi ? pi : json_object();
}

static void reply_info(srv_req *r, srv_coll *e, int status)
{
    qv_collection_info info;
    int rc = qv_collection_get_info(e->coll, &info);
    if (rc != QV_OK) { srv_fail_qv(r, rc); return; }
    const qv_index_params *p = &info.config.index;
    const char *metric = qv_metric_name(p->metric);
    srv_reply_json(r, status, json_pack("{s:s,s:I,s:s,s:o,s:o,s:I,s:I,s:I}", "name", e->name, "dim", (json_int_t)p->dim,
                                        "metric", metric ? metric : "?", "index", index_value(p),
                                        "payload_index", payload_index_value(&info), "count", (json_int_t)info.count,
                                        "memory_bytes", (json_int_t)info.memory_bytes,
                                        "last_seq", (json_int_t)info.last_seq));
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

static void h_list(srv_req *r)
{
    char **names = NULL;
    size_t n = 0;
    json_t *arr = json_array();
    int rc = qv_collection_list(r->ctx->db, &names, &n);
    for (size_t i = 0; arr && rc == QV_OK && i < n; i++) {
        qv_collection_info info;
        qv_coll *c = NULL;
        if ((rc = qv_collection_open(r->ctx->db, names[i], &c)) == QV_OK && (rc = qv_collection_get_info(c, &info)) == QV_OK) {
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
    } else {
        srv_reply_json(r, 200, arr ? json_pack("{s:o}", "collections", arr) : NULL);
    }
}

/* ---- collections ------------------------------------------------------------------ */

static int parse_create(const json_t *body, qv_collection_config *cfg, char **payload_index, srv_jerr *e)
{
    static const char *const top[] = {"dim", "metric", "index", "payload_index", NULL};
    static const char *const idx[] = {"type",   "m",            "ef_construction", "ef_search", "nlist",
                                      "nprobe", "kmeans_iters", "quant",           NULL};
    uint64_t dim = 0, m = 0, efc = 0, efs = 0, nlist = 0, nprobe = 0, iters = 0;
    qv_metric metric = QV_METRIC_L2;
    qv_index_kind kind = QV_INDEX_HNSW;
    qv_quant quant = QV_QUANT_NONE;

    if (srv_json_only(body, "the collection config", top, e)) return -1;
    if (!json_object_get(body, "dim")) return srv_jfail(e, "invalid_argument", "missing 'dim'");
    if (srv_json_uint(body, "dim", 1, QV_MAX_DIM, &dim, e)) return -1;
    json_t *jm = json_object_get(body, "metric");
    if (jm && !json_is_null(jm) && (!json_is_string(jm) || qv_metric_parse(json_string_value(jm), &metric) != QV_OK))
        return srv_jfail(e, "invalid_argument", "'metric' must be \"l2\", \"ip\" or \"cosine\"");
    json_t *ji = json_object_get(body, "index");
    if (ji && !json_is_null(ji)) {
        if (!json_is_object(ji)) return srv_jfail(e, "invalid_argument", "'index' must be an object");
        if (srv_json_only(ji, "'index'", idx, e)) return -1;
        json_t *jt = json_object_get(ji, "type");
        if (jt && !json_is_null(jt) && (!json_is_string(jt) || qv_index_kind_parse(json_string_value(jt), &kind) != QV_OK))
            return srv_jfail(e, "invalid_argument", "'index.type' must be \"flat\", \"hnsw\" or \"ivf\"");
        json_t *jq = json_object_get(ji, "quant");
        if (jq && !json_is_null(jq) && (!json_is_string(jq) || qv_quant_parse(json_string_value(jq), &quant) != QV_OK))
            return srv_jfail(e, "invalid_argument", "'index.quant' must be \"none\", \"sq8\", \"sq4\" or \"bit1\"");
        if (srv_json_uint(ji, "m", 0, UINT32_MAX, &m, e) || srv_json_uint(ji, "ef_construction", 0, UINT32_MAX, &efc, e) ||
            srv_json_uint(ji, "ef_search", 0, SRV_MAX_EF, &efs, e) || srv_json_uint(ji, "nlist", 0, UINT32_MAX, &nlist, e) ||
            srv_json_uint(ji, "nprobe", 0, SRV_MAX_NPROBE, &nprobe, e) || srv_json_uint(ji, "kmeans_iters", 0, 1000, &iters, e))
            return -1;
    }
    json_t *jp = json_object_get(body, "payload_index");
    if (jp && !json_is_null(jp)) {
        if (!json_is_object(jp)) return srv_jfail(e, "invalid_argument", "'payload_index' must be an object");
        if (!(*payload_index = json_dumps(jp, JSON_COMPACT))) return srv_jfail(e, "out_of_memory", "out of memory");
    }
    memset(cfg, 0, sizeof *cfg);
    qv_index_params_init(&cfg->index, kind, (uint32_t)dim, metric);
    if (m) cfg->index.m = (uint32_t)m;
    if (efc) cfg->index.ef_construction = (uint32_t)efc;
    if (efs) cfg->index.ef_search = (uint32_t)efs;
    if (nlist) cfg->index.nlist = (uint32_t)nlist;
    if (nprobe) cfg->index.nprobe = (uint32_t)nprobe;
    if (iters) cfg->index.kmeans_iters = (uint32_t)iters;
    cfg->index.quant = quant;
    cfg->payload_index = *payload_index;
    return 0;
}

int srv_create_collection(srv_req *r, const qv_collection_config *cfg)
{
    int rc = qv_collection_create(r->ctx->db, r->name, cfg, NULL);
    if (rc == QV_EEXIST) srv_fail(r, 409, "already_exists", "Collection `%s` already exists!", r->name);
    else if (rc != QV_OK || (rc = srv_open(r->ctx, r->name, &r->opened)) != QV_OK) srv_fail_qv(r, rc);
    else {
        r->coll = &r->opened;
        srv_log(SRV_LOG_INFO, "created collection '%s'", r->name);
        return 0;
    }
    return -1;
}

static void h_create(srv_req *r)
{
    srv_jerr e = {0};
    char *payload_index = NULL;
    qv_collection_config cfg;
    json_t *body = srv_body(r, 0);
    if (!body) return;
    if (parse_create(body, &cfg, &payload_index, &e) != 0) bad_input(r, &e);
    else {
        if (srv_create_collection(r, &cfg) == 0) reply_info(r, r->coll, 201);
    }
    free(payload_index);
    json_decref(body);
}

static void h_info(srv_req *r)
{
    reply_info(r, r->coll, 200);
}

int srv_drop_collection(srv_req *r)
{
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

static void h_upsert(srv_req *r)
{
    static const char *const top[] = {"points", NULL};
    static const char *const pt[] = {"id", "vector", "payload", NULL};
    srv_coll *ent = r->coll;
    srv_jerr e = {0};
    uint64_t *ids = NULL;
    float *vecs = NULL;
    char **payloads = NULL;
    size_t n = 0;
    int have_payload = 0;
    json_t *body = srv_body(r, 0);
    if (!body) return;
    json_t *points = json_object_get(body, "points");
    if (srv_json_only(body, "the body", top, &e)) { bad_input(r, &e); goto cleanup; }
    if (!json_is_array(points)) { srv_bad(r, "'points' must be an array of {\"id\",\"vector\",\"payload\"}"); goto cleanup; }
    if ((n = json_array_size(points)) == 0) { srv_reply_json(r, 200, json_pack("{s:I}", "upserted", (json_int_t)0)); goto cleanup; }
    ids = malloc(n * sizeof *ids);
    vecs = malloc(n * (size_t)ent->dim * sizeof *vecs);
    payloads = calloc(n, sizeof *payloads);
    if (!ids || !vecs || !payloads) { srv_oom(r); goto cleanup; }
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(points, i), *id = json_object_get(p, "id"), *pl = json_object_get(p, "payload");
        char what[48];
        snprintf(what, sizeof what, "points[%zu]", i);
        if (!json_is_object(p)) { srv_bad(r, "%s must be an object", what); goto cleanup; }
        if (srv_json_only(p, what, pt, &e) || srv_json_vector(json_object_get(p, "vector"), what, ent->dim, vecs + i * ent->dim, &e)) {
            bad_input(r, &e);
            goto cleanup;
        }
        if (!id) { srv_bad(r, "%s: missing 'id'", what); goto cleanup; }
        if (!json_is_integer(id) || json_integer_value(id) < 0) { srv_bad(r, "%s: 'id' must be a non-negative integer", what); goto cleanup; }
        ids[i] = (uint64_t)json_integer_value(id);
        if (pl && !json_is_null(pl)) {
            if (!json_is_object(pl)) { srv_bad(r, "%s: 'payload' must be an object", what); goto cleanup; }
            if (!(payloads[i] = json_dumps(pl, JSON_COMPACT))) { srv_oom(r); goto cleanup; }
            have_payload = 1;
        }
    }
    int rc = qv_upsert(ent->coll, n, ids, vecs, have_payload ? (const char *const *)payloads : NULL);
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else srv_reply_json(r, 200, json_pack("{s:I}", "upserted", (json_int_t)n));
cleanup:
    for (size_t i = 0; payloads && i < n; i++) free(payloads[i]);
    free(payloads);
    free(vecs);
    free(ids);
    json_decref(body);
}

static void h_get_point(srv_req *r)
{
    uint64_t id;
    char *text = NULL;
    float *vec = malloc((size_t)r->coll->dim * sizeof *vec);
    struct evbuffer *out = evbuffer_new();
    int rc = !vec || !out ? QV_ENOMEM : srv_parse_id(r->arg, &id) != 0 ? QV_EINVAL : qv_get(r->coll->coll, id, vec, &text);
    if (rc == QV_EINVAL) srv_bad(r, "point ids are decimal integers");
    else if (rc == QV_ENOTFOUND) srv_fail(r, 404, "not_found", "no point %llu in collection '%s'", (unsigned long long)id, r->name);
    else if (rc != QV_OK) srv_fail_qv(r, rc);
    else {
        int bad = evbuffer_add_printf(out, "{\"id\":%llu,\"vector\":", (unsigned long long)id) < 0;
        bad |= srv_put_vector(out, vec, r->coll->dim) || srv_add_lit(out, ",\"payload\":");
        if (!text || srv_put_stored(out, text, NULL, NULL) != 0) bad |= srv_add_lit(out, "null");
        bad |= srv_add_lit(out, "}");
        if (bad) srv_oom(r);
        else srv_reply_buf(r, 200, "application/json", out);
    }
    if (out) evbuffer_free(out);
    qv_free(text);
    free(vec);
}

static void h_delete_points(srv_req *r)
{
    static const char *const top[] = {"ids", NULL};
    srv_jerr e = {0};
    uint64_t *ids = NULL;
    json_t *body = srv_body(r, 0);
    if (!body) return;
    json_t *jids = json_object_get(body, "ids");
    size_t n = json_array_size(jids), deleted = 0;
    if (srv_json_only(body, "the body", top, &e)) { bad_input(r, &e); goto cleanup; }
    if (!json_is_array(jids)) { srv_bad(r, "'ids' must be an array of point ids"); goto cleanup; }
    if (!(ids = malloc((n ? n : 1) * sizeof *ids))) { srv_oom(r); goto cleanup; }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(jids, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0) { srv_bad(r, "ids[%zu] must be a non-negative integer", i); goto cleanup; }
        ids[i] = (uint64_t)json_integer_value(v);
    }
    int rc = n ? qv_delete(r->coll->coll, n, ids, &deleted) : QV_OK;
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else srv_reply_json(r, 200, json_pack("{s:I}", "deleted", (json_int_t)deleted));
cleanup:
    free(ids);
    json_decref(body);
}

/* ---- search ----------------------------------------------------------------------- */

/* POST .../search {"vector",...} -> {"hits":[...],"took_us":n,"took":{...}}, and
 * POST .../search/batch {"searches":[...]} -> {"results":[{"hits","took"},...],"took_us":n}
 * (route variant 1). */
static void h_search(srv_req *r)
{
    int batch = r->route->variant;
    srv_coll *ent = r->coll;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req), *out = NULL;
    size_t len = evbuffer_get_length(in), n = 0;
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    srv_search *s = NULL;
    srv_results res = {0};
    srv_jerr e = {0};
    if (!body) { srv_oom(r); return; }
    if (srv_parse_searches(body, len, ent->dim, batch, &s, &n, &e) != 0) { bad_input(r, &e); return; }
    int rc = srv_run_searches(ent->coll, ent->dim, s, n, &res);
    char took[48];
    snprintf(took, sizeof took, ",\"took_us\":%llu", (unsigned long long)res.took_us);
    if (rc == QV_OK && (!(out = evbuffer_new()) || (batch ? srv_add_lit(out, "{\"results\":[") : srv_add_lit(out, "{\"hits\":"))))
        rc = QV_ENOMEM;
    for (size_t i = 0; i < n && rc == QV_OK; i++) {
        srv_point_style st = {.scores = 1, .payload = s[i].with_payload};
        if (batch && (i ? srv_add_lit(out, ",{\"hits\":") : srv_add_lit(out, "{\"hits\":"))) rc = QV_ENOMEM;
        if (rc == QV_OK) rc = srv_put_points(out, ent->coll, ent->dim, res.hits + i * res.kmax, res.nh[i], &st);
        if (rc == QV_OK && ((!batch && evbuffer_add(out, took, strlen(took))) || srv_add_lit(out, ",\"took\":") ||
                            srv_put_took(out, &res.st[i]) || srv_add_lit(out, "}")))
            rc = QV_ENOMEM;
    }
    if (rc == QV_OK && batch && (srv_add_lit(out, "]") || evbuffer_add(out, took, strlen(took)) || srv_add_lit(out, "}")))
        rc = QV_ENOMEM;
    if (rc == QV_OK) srv_reply_buf(r, 200, "application/json", out);
    else srv_fail_qv(r, rc);
    if (out) evbuffer_free(out);
    srv_results_free(&res);
    srv_searches_free(s, n);
}

/* ---- payload index and training ---------------------------------------------------- */

/* Progress of a field index build, into the server log at most every 2 seconds. */
typedef struct { const char *coll, *field; uint64_t last_us; } field_progress;

static void log_field_progress(const char *phase, size_t done, size_t total, void *arg)
{
    field_progress *fp = arg;
    uint64_t now = srv_now_us();
    (void)phase;
    if (now - fp->last_us < 2000000 && done < total) return;
    fp->last_us = now;
    srv_log(SRV_LOG_INFO, "collection '%s': indexing payload field '%s': %zu/%zu points", fp->coll, fp->field, done, total);
}

/* PUT /collections/{name}/index/{field} {"type":"keyword"}: 201 when the field was not
 * indexed, 200 when only its type changed. The field is built from the stored payloads
 * (one pass) while this worker waits; the other workers keep serving, searches included
 * (until it is built, filters on the field read the payloads). */
static void h_index_field(srv_req *r)
{
    static const char *const top[] = {"type", NULL};
    srv_jerr e = {0};
    qv_collection_info info;
    json_t *before = NULL;
    json_t *body = srv_body(r, 0);
    if (!body) return;
    json_t *jt = json_object_get(body, "type");
    const char *type = json_string_value(jt);
    field_progress fp = {r->name, r->arg, srv_now_us()};
    int rc;
    if (srv_json_only(body, "the body", top, &e)) bad_input(r, &e);
    else if (!type) srv_bad(r, "'type' must be \"keyword\", \"integer\", \"float\" or \"bool\"");
    else if ((rc = qv_collection_get_info(r->coll->coll, &info)) != QV_OK ||
             !(before = payload_index_value(&info)) ||
             (rc = qv_collection_index_field(r->coll->coll, r->arg, type, log_field_progress, &fp)) != QV_OK ||
             (rc = qv_collection_get_info(r->coll->coll, &info)) != QV_OK)
        srv_fail_qv(r, before ? rc : QV_ENOMEM);
    else {
        int existed = json_object_get(before, r->arg) != NULL;
        srv_log(SRV_LOG_INFO, "collection '%s': indexed payload field '%s' as %s", r->name, r->arg, type);
        srv_reply_json(r, existed ? 200 : 201, json_pack("{s:s,s:s,s:b,s:o}", "field", r->arg, "type", type, "created",
                                                         !existed, "payload_index", payload_index_value(&info)));
    }
    json_decref(before);
    json_decref(body);
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
                                         payload_index_value(&info)));
    }
}

/* POST /collections/{name}/train (no body, or {}): train an ivf collection now on the
 * points stored so far. Training runs under the library's writer lock, and searches go
 * on (exact) until the trained index is swapped in. */
static void h_train(srv_req *r)
{
    static const char *const none[] = {NULL};
    srv_jerr e = {0};
    qv_collection_info info;
    json_t *body = srv_body(r, 1);
    if (!body) return;
    int rc = srv_json_only(body, "the body", none, &e);
    json_decref(body);
    if (rc) { bad_input(r, &e); return; }
    uint64_t t0 = srv_now_us();
    if ((rc = qv_collection_train(r->coll->coll, NULL, NULL)) != QV_OK ||
        (rc = qv_collection_get_info(r->coll->coll, &info)) != QV_OK) {
        srv_fail_qv(r, rc);
        return;
    }
    srv_log(SRV_LOG_INFO, "collection '%s': trained on %zu points", r->name, info.count);
    srv_reply_json(r, 200, json_pack("{s:b,s:I,s:I}", "trained", 1, "count", (json_int_t)info.count, "took_us",
                                     (json_int_t)(srv_now_us() - t0)));
}

/* ---- the table ---------------------------------------------------------------------- */

static const srv_route routes[] = {
    {SRV_M_GET, "healthz", SRV_EP_HEALTHZ, SRV_R_OPEN, h_healthz, 0, NULL},
    {SRV_M_GET, "metrics", SRV_EP_METRICS, 0, srv_h_metrics, 0, NULL},
    {SRV_M_GET, "collections", SRV_EP_LIST, 0, h_list, 0, NULL},
    {SRV_M_GET, "collections/{name}", SRV_EP_INFO, SRV_R_COLL, h_info, 0, NULL},
    {SRV_M_PUT, "collections/{name}", SRV_EP_CREATE, SRV_R_WRITE, h_create, 0, NULL},
    {SRV_M_DELETE, "collections/{name}", SRV_EP_DROP, SRV_R_WRITE, h_drop, 0, NULL},
    {SRV_M_PUT, "collections/{name}/points", SRV_EP_UPSERT, SRV_R_WRITE | SRV_R_COLL, h_upsert, 0, NULL},
    {SRV_M_POST, "collections/{name}/points/delete", SRV_EP_DELETE_POINTS, SRV_R_WRITE | SRV_R_COLL, h_delete_points, 0, NULL},
    {SRV_M_GET, "collections/{name}/points/{arg}", SRV_EP_GET_POINT, SRV_R_COLL, h_get_point, 0, NULL},
    {SRV_M_POST, "collections/{name}/search", SRV_EP_SEARCH, SRV_R_COLL, h_search, 0, NULL},
    {SRV_M_POST, "collections/{name}/search/batch", SRV_EP_SEARCH_BATCH, SRV_R_COLL, h_search, 1, NULL},
    {SRV_M_PUT, "collections/{name}/index/{arg}", SRV_EP_INDEX_FIELD, SRV_R_WRITE | SRV_R_COLL, h_index_field, 0, NULL},
    {SRV_M_DELETE, "collections/{name}/index/{arg}", SRV_EP_UNINDEX_FIELD, SRV_R_WRITE | SRV_R_COLL, h_unindex_field, 0, NULL},
    {SRV_M_POST, "collections/{name}/train", SRV_EP_TRAIN, SRV_R_WRITE | SRV_R_COLL, h_train, 0, NULL},
};

const srv_api srv_native_api = {routes, sizeof routes / sizeof routes[0], 4, native_error};
