/*
 * server/qdrant_points.c -- the point endpoints of the Qdrant-compatible API.
 *
 * Every handler runs with the collection found and locked by the pipeline (r->coll) and
 * replies exactly once. Writes are single library calls (one LMDB transaction each):
 * upsert, delete, and the payload updates (qv_update_payload: each point's payload is
 * read, changed and written back in one transaction, without touching its vector).
 *
 * Searches run through search.c like the native ones (equal searches of a batch in one
 * library call) and their points are written by the same writer. Scores: Cosine and Dot
 * are quiver's cosine / inner product as they are; Euclid is the square root of quiver's
 * squared L2 distance (Qdrant reports the distance itself), and score_threshold is then
 * an upper bound. Offsets are served by asking for limit + offset hits (at most QV_MAX_K).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "server/qdrant.h"

#define DEFAULT_LIMIT 10u

/* ---- helpers ------------------------------------------------------------------- */

static int bool_opt(const json_t *b, const char *key, int dflt)
{
    json_t *v = json_object_get(b, key);
    if (!v || json_is_null(v)) return dflt;
    if (json_is_array(v)) return json_array_size(v) > 0;   /* a list of vector names */
    return json_is_true(v);
}

/* Optional non-negative integer; -1 when present and invalid. */
static int uint_opt(const json_t *b, const char *key, uint64_t hi, uint64_t *out)
{
    json_t *v = json_object_get(b, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > hi) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Reply {"result": <the points of ids>} (one=1: the point itself, 404 when absent). */
static void reply_points(srv_req *r, const uint64_t *ids, size_t n, const srv_point_style *st, int one)
{
    qv_hit *h = malloc((n ? n : 1) * sizeof *h);
    struct evbuffer *out = evbuffer_new(), *pts = evbuffer_new();
    for (size_t i = 0; h && i < n; i++) h[i] = (qv_hit){ids[i], 0};
    int rc = h && out && pts ? srv_put_points(pts, r->coll->coll, r->coll->dim, h, n, st) : QV_ENOMEM;
    size_t len = pts ? evbuffer_get_length(pts) : 0;
    if (rc == QV_OK && one && len == 2) srv_fail(r, 404, "not_found", "Point with id %s does not exists!", r->arg);
    else if (rc != QV_OK) srv_fail_qv(r, rc);
    else if (one ? srv_add_lit(out, "{\"result\":") || evbuffer_drain(pts, 1) ||
                       evbuffer_remove_buffer(pts, out, len - 2) != (int)(len - 2)
                 : srv_add_lit(out, "{\"result\":") || evbuffer_add_buffer(out, pts))
        srv_oom(r);
    else qd_ok_written(r, out);
    if (pts) evbuffer_free(pts);
    if (out) evbuffer_free(out);
    free(h);
}

/* Ids of a JSON list -> internal ids (malloc'd); -1 after replying. */
static int parse_id_list(srv_req *r, const json_t *a, const char *what, uint64_t **ids, size_t *n)
{
    char msg[160];
    *ids = NULL;
    *n = 0;
    if (!json_is_array(a)) { srv_bad(r, "'%s' must be a list of point ids", what); return -1; }
    size_t m = json_array_size(a);
    uint64_t *v = malloc((m ? m : 1) * sizeof *v);
    if (!v) { srv_oom(r); return -1; }
    for (size_t i = 0; i < m; i++) {
        qd_uuid u;
        if (qd_id_parse(json_array_get(a, i), &v[i], &u, msg, sizeof msg) != 0) {
            free(v);
            srv_bad(r, "%s[%zu]: %s", what, i, msg);
            return -1;
        }
    }
    *ids = v;
    *n = m;
    return 0;
}

/* Translate body[key] as a filter; -1 after replying. */
static int parse_filter(srv_req *r, const json_t *b, qd_filter *f)
{
    char msg[320];
    int rc = qd_filter_build(json_object_get(b, "filter"), f, msg, sizeof msg);
    if (rc == -2) { srv_oom(r); return -1; }
    if (rc != 0) { srv_bad(r, "filter: %s", msg); return -1; }
    return 0;
}

/* All passing ids of f (malloc'd, ascending); -1 after replying. */
static int filter_ids(srv_req *r, srv_coll *e, qd_filter *f, uint64_t **ids, size_t *n)
{
    uint64_t total = 0;
    qv_accept_fn acc = qd_filter_has_ids(f) ? qd_filter_accept : NULL;
    int rc = qv_scroll(e->coll, f->filter, acc, f, 0, 0, NULL, n, &total);
    if (rc == QV_OK) {
        size_t cap = (size_t)total + 16;           /* room for writes racing us */
        if (!(*ids = malloc(cap * sizeof **ids))) rc = QV_ENOMEM;
        else rc = qv_scroll(e->coll, f->filter, acc, f, 0, cap, *ids, n, NULL);
        if (rc != QV_OK) { free(*ids); *ids = NULL; }
    }
    if (rc != QV_OK) { srv_fail_qv(r, rc); return -1; }
    return 0;
}

/* A points selector: body "points" (ids) or "filter"; -1 after replying. */
static int selector(srv_req *r, srv_coll *e, const json_t *b, uint64_t **ids, size_t *n)
{
    json_t *p = json_object_get(b, "points");
    if (p && !json_is_null(p)) {
        if (json_is_object(p)) {                   /* {"points": {"filter": ...}} (old form) */
            qd_filter f;
            if (parse_filter(r, p, &f) != 0) return -1;
            int rc = filter_ids(r, e, &f, ids, n);
            qd_filter_release(&f);
            return rc;
        }
        return parse_id_list(r, p, "points", ids, n);
    }
    if (json_object_get(b, "filter") && !json_is_null(json_object_get(b, "filter"))) {
        qd_filter f;
        if (parse_filter(r, b, &f) != 0) return -1;
        int rc = filter_ids(r, e, &f, ids, n);
        qd_filter_release(&f);
        return rc;
    }
    srv_bad(r, "give 'points' (a list of ids) or 'filter'");
    return -1;
}

static int unsupported_field(srv_req *r, const json_t *b, const char *key, const char *what)
{
    json_t *v = json_object_get(b, key);
    if (v && !json_is_null(v)) {
        srv_bad(r, "%s not supported by quiverd", what);
        return -1;
    }
    return 0;
}

/* ---- upsert -------------------------------------------------------------------- */

typedef struct { uint64_t id; size_t pos; } idpos;

static int cmp_idpos(const void *a, const void *b)
{
    const idpos *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Parse one vector (array; named vectors refused); -1 after replying. */
static int get_vector(srv_req *r, const json_t *v, const char *what, uint32_t dim, float *out)
{
    srv_jerr e = {0};
    if (json_is_object(v)) {
        srv_bad(r, "%s: named vectors are not supported by quiverd", what);
        return -1;
    }
    if (json_is_array(v) && json_array_size(v) > 0 && json_is_array(json_array_get(v, 0))) {
        srv_bad(r, "%s: multivectors are not supported by quiverd", what);
        return -1;
    }
    if (srv_json_vector(v, what, dim, out, &e) != 0) {
        srv_bad(r, "%s", e.msg);
        return -1;
    }
    return 0;
}

void qd_h_upsert(srv_req *r)
{
    srv_coll *e = r->coll;
    json_t *b = srv_body(r, 1);
    uint64_t *ids = NULL;
    float *vecs = NULL;
    char **pls = NULL;
    idpos *ip = NULL;
    size_t n = 0;
    char msg[160];
    if (!b) return;
    if (unsupported_field(r, b, "shard_key", "shard keys are") != 0) goto cleanup;
    json_t *pts = json_object_get(b, "points"), *batch = json_object_get(b, "batch");
    json_t *bids = NULL, *bvecs = NULL, *bpls = NULL;
    if (json_is_array(pts)) n = json_array_size(pts);
    else if (json_is_object(batch)) {
        bids = json_object_get(batch, "ids");
        bvecs = json_object_get(batch, "vectors");
        bpls = json_object_get(batch, "payloads");
        if (!json_is_array(bids) || !json_is_array(bvecs) || json_array_size(bids) != json_array_size(bvecs) ||
            (bpls && !json_is_null(bpls) && (!json_is_array(bpls) || json_array_size(bpls) != json_array_size(bids)))) {
            srv_bad(r, "batch needs 'ids' and 'vectors' (and optional 'payloads') of one length");
            goto cleanup;
        }
        if (json_is_object(bvecs)) { srv_bad(r, "named vectors are not supported by quiverd"); goto cleanup; }
        n = json_array_size(bids);
    } else {
        srv_bad(r, "give 'points' (a list of {id, vector, payload}) or 'batch'");
        goto cleanup;
    }
    if (n == 0) { qd_ok(r, qd_update_result(e->coll)); goto cleanup; }
    ids = malloc(n * sizeof *ids);
    vecs = malloc(n * (size_t)e->dim * sizeof *vecs);
    pls = calloc(n, sizeof *pls);
    ip = malloc(n * sizeof *ip);
    if (!ids || !vecs || !pls || !ip) { srv_oom(r); goto cleanup; }
    for (size_t i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "points[%zu]", i);
        json_t *p = pts ? json_array_get(pts, i) : NULL;
        if (pts && !json_is_object(p)) { srv_bad(r, "%s must be an object", what); goto cleanup; }
        json_t *jid = pts ? json_object_get(p, "id") : json_array_get(bids, i);
        json_t *jv = pts ? json_object_get(p, "vector") : json_array_get(bvecs, i);
        json_t *jp = pts ? json_object_get(p, "payload") : (json_is_array(bpls) ? json_array_get(bpls, i) : NULL);
        qd_uuid u;
        if (!jid || qd_id_parse(jid, &ids[i], &u, msg, sizeof msg) != 0) {
            srv_bad(r, "%s: %s", what, jid ? msg : "missing 'id'");
            goto cleanup;
        }
        if (get_vector(r, jv, what, e->dim, vecs + i * e->dim) != 0) goto cleanup;
        if (jp && !json_is_null(jp) && !json_is_object(jp)) {
            srv_bad(r, "%s: payload must be an object", what);
            goto cleanup;
        }
        if (json_object_get(jp, QD_UUID_KEY)) {
            srv_bad(r, "%s: payload key '%s' is reserved for UUID point ids", what, QD_UUID_KEY);
            goto cleanup;
        }
        if (u.text[0]) {
            json_t *pl = jp && !json_is_null(jp) ? json_deep_copy(jp) : json_object();
            if (pl) json_object_set_new(pl, QD_UUID_KEY, json_string(u.text));
            pls[i] = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
            json_decref(pl);
            if (!pls[i]) { srv_oom(r); goto cleanup; }
            /* the hash of a UUID may, with odds of n^2/2^64, be taken by another UUID */
            char *old = NULL;
            if (qv_get(e->coll, ids[i], NULL, &old) == QV_OK && old) {
                json_t *op = qd_payload_parse(old);
                json_t *ou = op ? json_object_get(op, QD_UUID_KEY) : NULL;
                int clash = json_is_string(ou) && strcmp(json_string_value(ou), u.text) != 0;
                json_decref(op);
                qv_free(old);
                if (clash) { srv_bad(r, "%s: UUID %s collides with another point's id hash", what, u.text); goto cleanup; }
            }
        } else if (jp && !json_is_null(jp)) {
            if (!(pls[i] = json_dumps(jp, JSON_COMPACT))) { srv_oom(r); goto cleanup; }
        }
        ip[i] = (idpos){ids[i], i};
    }
    /* Qdrant applies a batch in order: the last point with an id wins */
    qsort(ip, n, sizeof *ip, cmp_idpos);
    size_t dups = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (ip[i].id == ip[i + 1].id) { ids[ip[i].pos] = UINT64_MAX; dups++; }
    size_t m = n;
    if (dups) {
        m = 0;
        for (size_t i = 0; i < n; i++) {
            if (ids[i] == UINT64_MAX) { free(pls[i]); pls[i] = NULL; continue; }
            ids[m] = ids[i];
            memmove(vecs + m * e->dim, vecs + i * e->dim, e->dim * sizeof *vecs);
            pls[m] = pls[i];
            if (m != i) pls[i] = NULL;
            m++;
        }
    }
    int rc = qv_upsert(e->coll, m, ids, vecs, (const char *const *)pls);
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else qd_ok(r, qd_update_result(e->coll));
cleanup:
    if (pls)
        for (size_t i = 0; i < n; i++) free(pls[i]);
    free(pls);
    free(ip);
    free(vecs);
    free(ids);
    json_decref(b);
}

/* ---- retrieve, delete, payload ------------------------------------------------- */

void qd_h_retrieve(srv_req *r)
{
    json_t *b = srv_body(r, 1);
    uint64_t *ids = NULL;
    size_t n = 0;
    char msg[200];
    if (!b) return;
    json_t *wp = json_object_get(b, "with_payload");
    if (qd_with_payload_check(wp, msg, sizeof msg) != 0) srv_bad(r, "%s", msg);
    else if (parse_id_list(r, json_object_get(b, "ids"), "ids", &ids, &n) == 0) {
        srv_point_style st = qd_point_style(wp, 1, bool_opt(b, "with_vector", 0), 0);
        reply_points(r, ids, n, &st, 0);
    }
    free(ids);
    json_decref(b);
}

void qd_h_get_point(srv_req *r)
{
    uint64_t iid;
    qd_uuid u;
    srv_point_style st = qd_point_style(NULL, 1, 1, 0);
    if (qd_id_parse_str(r->arg, &iid, &u) != 0) srv_bad(r, "point ids are unsigned integers or UUIDs");
    else reply_points(r, &iid, 1, &st, 1);
}

void qd_h_delete(srv_req *r)
{
    srv_coll *e = r->coll;
    json_t *b = srv_body(r, 1);
    uint64_t *ids = NULL;
    size_t n = 0, deleted = 0;
    if (!b) return;
    if (unsupported_field(r, b, "shard_key", "shard keys are") == 0 && selector(r, e, b, &ids, &n) == 0) {
        int rc = n ? qv_delete(e->coll, n, ids, &deleted) : QV_OK;
        if (rc != QV_OK) srv_fail_qv(r, rc);
        else qd_ok(r, qd_update_result(e->coll));
    }
    free(ids);
    json_decref(b);
}

void qd_h_payload(srv_req *r)
{
    srv_coll *e = r->coll;
    int mode = r->route->variant;
    static const char *const names[] = {"set payload", "overwrite payload", "delete payload", "clear payload"};
    static const char *const keep_uuid[] = {QD_UUID_KEY};
    json_t *b = srv_body(r, 1);
    uint64_t *ids = NULL;
    const char **keys = NULL;
    char *merge = NULL;
    size_t n = 0, nkeys = 0;
    if (!b) return;
    json_t *newp = json_object_get(b, "payload"), *jkeys = json_object_get(b, "keys");
    if (unsupported_field(r, b, "key", "setting a payload under a nested key ('key') is") != 0 ||
        unsupported_field(r, b, "shard_key", "shard keys are") != 0)
        goto cleanup;
    if (mode < 2 && !json_is_object(newp)) { srv_bad(r, "%s: 'payload' must be an object", names[mode]); goto cleanup; }
    if (mode < 2 && json_object_get(newp, QD_UUID_KEY)) {
        srv_bad(r, "%s: payload key '%s' is reserved for UUID point ids", names[mode], QD_UUID_KEY);
        goto cleanup;
    }
    if (mode == 2) {
        int ok = json_is_array(jkeys);
        for (size_t i = 0; ok && i < json_array_size(jkeys); i++) ok = json_is_string(json_array_get(jkeys, i));
        if (!ok) { srv_bad(r, "delete payload: 'keys' must be a list of strings"); goto cleanup; }
        if (!(keys = malloc((json_array_size(jkeys) + 1) * sizeof *keys))) { srv_oom(r); goto cleanup; }
        for (size_t i = 0; i < json_array_size(jkeys); i++) {
            const char *k = json_string_value(json_array_get(jkeys, i));
            if (strcmp(k, QD_UUID_KEY) != 0) keys[nkeys++] = k;   /* the UUID of a point stays */
        }
    }
    if (selector(r, e, b, &ids, &n) != 0) goto cleanup;
    if (mode < 2 && !(merge = json_dumps(newp, JSON_COMPACT))) { srv_oom(r); goto cleanup; }
    /* One library call: read, change and write back every point's payload in one
     * transaction, so a delete or another update of the same point is never undone. */
    qv_payload_update u;
    qv_payload_update_init(&u);
    u.clear = mode == 1 || mode == 3;
    u.keep = keep_uuid;
    u.nkeep = 1;
    u.remove = keys;
    u.nremove = nkeys;
    u.merge = merge;
    /* ids listed by the client must exist (Qdrant: 404 "No point with id"); ids found by
     * a filter may have been deleted since, and are skipped */
    json_t *p = json_object_get(b, "points");
    if (!p || json_is_null(p) || json_is_object(p)) u.flags = QV_PAYLOAD_SKIP_MISSING;
    int rc = qv_update_payload(e->coll, n, ids, &u, NULL);
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else qd_ok(r, qd_update_result(e->coll));
cleanup:
    free(merge);
    free(keys);
    free(ids);
    json_decref(b);
}

/* ---- search and query ---------------------------------------------------------- */

/* What a Qdrant search asks beyond the library search (srv_search) it runs. */
typedef struct {
    qd_filter f;                   /* the has_id part (the payload filter moves to the search) */
    uint64_t limit, offset, candidates;
    int has_vec, with_vec, has_threshold, mmr;
    double threshold, diversity;   /* mmr: 0 = relevance only, 1 = diversity only */
    const json_t *wp;
} qsearch;

/* params.quantization {ignore, rescore, oversampling} of a search on a quantized
 * collection (ignored by float ones): ignore re-scores every candidate of the beam with
 * the float vectors, rescore false returns the codes' estimates, oversampling re-scores
 * the best ceil(limit * oversampling). -1 after replying. */
static int search_quantization(srv_req *r, const json_t *q, srv_search *s)
{
    if (!q || json_is_null(q)) return 0;
    json_t *ig = json_object_get(q, "ignore"), *rs = json_object_get(q, "rescore"), *ov = json_object_get(q, "oversampling");
    if (!json_is_object(q) || (ig && !json_is_null(ig) && !json_is_boolean(ig)) ||
        (rs && !json_is_null(rs) && !json_is_boolean(rs))) {
        srv_bad(r, "params.quantization must be {\"ignore\": bool, \"rescore\": bool, \"oversampling\": number}");
        return -1;
    }
    if (ov && !json_is_null(ov)) {
        if (!json_is_number(ov) || !(json_number_value(ov) >= 1.0 && json_number_value(ov) <= QV_MAX_OVERSAMPLING)) {
            srv_bad(r, "params.quantization.oversampling must be 1..%g", (double)QV_MAX_OVERSAMPLING);
            return -1;
        }
        s->oversampling = (float)json_number_value(ov);
    }
    if (json_is_true(ig)) s->rescore = QV_RESCORE_ALL;
    else if (json_is_false(rs)) s->rescore = QV_RESCORE_OFF;
    else if (json_is_true(rs)) s->rescore = QV_RESCORE_ON;
    return 0;
}

/* Common options of search and query; -1 after replying. */
static int parse_common(srv_req *r, const json_t *o, qsearch *q, srv_search *s)
{
    char msg[200];
    uint64_t ef = 0;
    q->limit = DEFAULT_LIMIT;
    if (uint_opt(o, "top", QV_MAX_K, &q->limit) || uint_opt(o, "limit", QV_MAX_K, &q->limit) || q->limit == 0) {
        srv_bad(r, "limit must be 1..%u", QV_MAX_K);
        return -1;
    }
    if (uint_opt(o, "offset", QV_MAX_K, &q->offset) || q->offset + q->limit > QV_MAX_K) {
        srv_bad(r, "offset + limit must be at most %u", QV_MAX_K);
        return -1;
    }
    q->wp = json_object_get(o, "with_payload");
    if (qd_with_payload_check(q->wp, msg, sizeof msg) != 0) { srv_bad(r, "%s", msg); return -1; }
    q->with_vec = bool_opt(o, "with_vector", 0);
    json_t *t = json_object_get(o, "score_threshold");
    if (t && !json_is_null(t)) {
        if (!json_is_number(t)) { srv_bad(r, "score_threshold must be a number"); return -1; }
        q->has_threshold = 1;
        q->threshold = json_number_value(t);
    }
    json_t *p = json_object_get(o, "params");
    if (p && !json_is_null(p)) {
        if (!json_is_object(p) || uint_opt(p, "hnsw_ef", SRV_MAX_EF, &ef)) {
            srv_bad(r, "params.hnsw_ef must be 0..%u", SRV_MAX_EF);
            return -1;
        }
        s->exact = json_is_true(json_object_get(p, "exact"));
        if (search_quantization(r, json_object_get(p, "quantization"), s) != 0) return -1;
    }
    s->ef = (uint32_t)ef;
    if (unsupported_field(r, o, "shard_key", "shard keys are") != 0 ||
        unsupported_field(r, o, "lookup_from", "lookup_from is") != 0)
        return -1;
    json_t *u = json_object_get(o, "using");
    if (u && !json_is_null(u) && !(json_is_string(u) && json_string_length(u) == 0)) {
        srv_bad(r, "'using': named vectors are not supported by quiverd");
        return -1;
    }
    json_t *f = json_object_get(o, "filter");
    if (parse_filter(r, o, &q->f) != 0) return -1;
    s->filter = q->f.filter;                       /* the search owns it now */
    q->f.filter = NULL;
    if (s->filter && !(s->filter_text = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS))) { srv_oom(r); return -1; }
    if (qd_filter_has_ids(&q->f)) {
        s->accept = qd_filter_accept;
        s->accept_arg = &q->f;
    }
    return 0;
}

/* A search object ({"vector": ...}); -1 after replying. */
static int parse_search(srv_req *r, const json_t *o, qsearch *q, srv_search *s)
{
    if (!json_is_object(o)) { srv_bad(r, "a search must be an object"); return -1; }
    if (parse_common(r, o, q, s) != 0) return -1;
    json_t *v = json_object_get(o, "vector");
    if (json_is_object(v)) {
        json_t *name = json_object_get(v, "name");
        if (!(json_is_string(name) && json_string_length(name) == 0)) {
            srv_bad(r, "named vectors are not supported by quiverd");
            return -1;
        }
        v = json_object_get(v, "vector");
    }
    q->has_vec = 1;
    return get_vector(r, v, "vector", r->coll->dim, s->vec);
}

/* A query object ({"query": vector | point id | {"nearest": ...}}); -1 after replying. */
static int parse_query(srv_req *r, const json_t *o, qsearch *q, srv_search *s)
{
    static const char *const unsup[][2] = {
        {"recommend", "recommend queries are"}, {"discover", "discover queries are"},
        {"context", "context queries are"}, {"order_by", "order_by queries are"},
        {"fusion", "fusion queries are"}, {"rrf", "fusion queries are"},
        {"sample", "sample queries are"}, {"formula", "formula queries are"},
    };
    if (!json_is_object(o)) { srv_bad(r, "a query must be an object"); return -1; }
    if (unsupported_field(r, o, "prefetch", "prefetch (hybrid queries) is") != 0) return -1;
    if (parse_common(r, o, q, s) != 0) return -1;
    json_t *qv = json_object_get(o, "query");
    if (json_is_object(qv)) {
        for (size_t i = 0; i < sizeof unsup / sizeof *unsup; i++)
            if (json_object_get(qv, unsup[i][0])) {
                srv_bad(r, "%s not supported by quiverd", unsup[i][1]);
                return -1;
            }
        const char *key;
        json_t *val;
        json_object_foreach(qv, key, val)
            if (strcmp(key, "nearest") && strcmp(key, "mmr")) {
                srv_bad(r, "query kind '%.32s' is not supported by quiverd", key);
                return -1;
            }
        json_t *mmr = json_object_get(qv, "mmr");
        if (mmr && !json_is_null(mmr)) {
            json_t *dv = json_object_get(mmr, "diversity");
            q->mmr = 1;
            q->diversity = 0.5;
            q->candidates = 100;
            if (!json_is_object(mmr) || (dv && !json_is_null(dv) && (!json_is_number(dv) || json_number_value(dv) < 0 ||
                                                                     json_number_value(dv) > 1)) ||
                uint_opt(mmr, "candidates_limit", QV_MAX_K, &q->candidates)) {
                srv_bad(r, "mmr: diversity must be 0..1 and candidates_limit 0..%u", QV_MAX_K);
                return -1;
            }
            if (dv && !json_is_null(dv)) q->diversity = json_number_value(dv);
        }
        json_t *near = json_object_get(qv, "nearest");
        if (!near) { srv_bad(r, "query must be a vector, a point id or {\"nearest\": ...}"); return -1; }
        if (json_is_object(near)) { srv_bad(r, "sparse vectors are not supported by quiverd"); return -1; }
        qv = near;
    }
    if (!qv || json_is_null(qv)) return 0;              /* no query: points in id order */
    q->has_vec = 1;
    if (json_is_array(qv)) return get_vector(r, qv, "query", r->coll->dim, s->vec);
    /* a point id: search by its vector */
    uint64_t iid;
    qd_uuid u;
    char msg[160];
    if (qd_id_parse(qv, &iid, &u, msg, sizeof msg) != 0) { srv_bad(r, "query: %s", msg); return -1; }
    int rc = qv_get(r->coll->coll, iid, s->vec, NULL);
    if (rc == QV_ENOTFOUND) { srv_fail(r, 404, "not_found", "No point with id %s found", json_is_string(qv) ? u.text : "(integer)"); return -1; }
    if (rc != QV_OK) { srv_fail_qv(r, rc); return -1; }
    /* like Qdrant, the query point itself is not among the results */
    uint64_t *nv = realloc(q->f.not_ids, (q->f.n_not + 1) * sizeof *nv);
    if (!nv) { srv_oom(r); return -1; }
    q->f.not_ids = nv;
    size_t pos = q->f.n_not;
    while (pos > 0 && nv[pos - 1] > iid) { nv[pos] = nv[pos - 1]; pos--; }
    nv[pos] = iid;
    q->f.n_not++;
    s->accept = qd_filter_accept;
    s->accept_arg = &q->f;
    return 0;
}

/* Similarity of two stored vectors under the collection's distance (larger = closer). */
static double similarity(qv_metric m, const float *a, const float *b, uint32_t dim)
{
    double d = 0, x = 0, y = 0;
    for (uint32_t i = 0; i < dim; i++) {
        if (m == QV_METRIC_L2) { double t = (double)a[i] - b[i]; d += t * t; continue; }
        d += (double)a[i] * b[i];
        x += (double)a[i] * a[i];
        y += (double)b[i] * b[i];
    }
    if (m == QV_METRIC_L2) return -sqrt(d);
    if (m == QV_METRIC_COSINE) return x > 0 && y > 0 ? d / sqrt(x * y) : 0;
    return d;
}

/* Maximal marginal relevance over the nh hits (Qdrant's definition): greedily pick the hit
 * maximizing (1 - diversity) * sim(query, p) - diversity * max sim(p, picked). The hits are
 * reordered in place; *nh becomes the number picked (<= want). Scores stay the query's. */
static int mmr_select(srv_coll *e, double diversity, qv_hit *hits, size_t *nh, size_t want)
{
    size_t n = *nh, dim = e->dim;
    float *v = malloc((n ? n : 1) * dim * sizeof *v);
    double *best = malloc((n ? n : 1) * sizeof *best);   /* max sim to the picked ones */
    if (!v || !best) { free(v); free(best); return QV_ENOMEM; }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {               /* drop hits deleted meanwhile */
        int rc = qv_get(e->coll, hits[i].id, v + m * dim, NULL);
        if (rc == QV_ENOTFOUND) continue;
        if (rc != QV_OK) { free(v); free(best); return rc; }
        hits[m++] = hits[i];
    }
    for (size_t i = 0; i < m; i++) best[i] = -INFINITY;
    size_t picked = 0;
    for (; picked < want && picked < m; picked++) {
        size_t arg = picked;
        double top = -INFINITY;
        for (size_t i = picked; i < m; i++) {
            double rel = e->metric == QV_METRIC_L2 ? -sqrt(hits[i].score > 0 ? hits[i].score : 0) : hits[i].score;
            double val = picked == 0 ? rel : (1 - diversity) * rel - diversity * best[i];
            if (val > top) { top = val; arg = i; }
        }
        qv_hit th = hits[picked]; hits[picked] = hits[arg]; hits[arg] = th;
        double tb = best[picked]; best[picked] = best[arg]; best[arg] = tb;
        for (size_t j = 0; j < dim; j++) {
            float t = v[picked * dim + j]; v[picked * dim + j] = v[arg * dim + j]; v[arg * dim + j] = t;
        }
        for (size_t i = picked + 1; i < m; i++) {
            double sim = similarity(e->metric, v + i * dim, v + picked * dim, e->dim);
            if (sim > best[i]) best[i] = sim;
        }
    }
    *nh = picked;
    free(v);
    free(best);
    return QV_OK;
}

/* The points of one search q: its hits (row of res), or with no vector the first
 * passing points in id order; -1 after replying. */
static int put_result(srv_req *r, struct evbuffer *out, qsearch *q, const srv_search *s, qv_hit *hits, size_t nh)
{
    srv_coll *e = r->coll;
    uint64_t *ids = NULL;
    int rc = QV_OK;
    if (!q->has_vec) {
        if (!(ids = malloc(s->k * sizeof *ids)) || !(hits = malloc(s->k * sizeof *hits))) rc = QV_ENOMEM;
        else rc = qv_scroll(e->coll, s->filter, s->accept, s->accept_arg, 0, s->k, ids, &nh, NULL);
        for (size_t i = 0; rc == QV_OK && i < nh; i++) hits[i] = (qv_hit){ids[i], 0};
    } else if (q->mmr) {
        rc = mmr_select(e, q->diversity, hits, &nh, q->limit + q->offset);
    }
    size_t m = 0;
    for (size_t i = q->offset; rc == QV_OK && i < nh; i++) {
        float sc = hits[i].score;
        if (e->metric == QV_METRIC_L2) sc = sqrtf(sc > 0 ? sc : 0);
        if (q->has_threshold && (e->metric == QV_METRIC_L2 ? sc > (float)q->threshold : sc < (float)q->threshold)) continue;
        hits[m++] = (qv_hit){hits[i].id, sc};
    }
    srv_point_style st = qd_point_style(q->wp, 0, q->with_vec, q->has_vec);
    if (rc == QV_OK) rc = srv_put_points(out, e->coll, e->dim, hits, m, &st);
    if (!q->has_vec) free(hits);
    free(ids);
    if (rc != QV_OK) srv_fail_qv(r, rc);
    return rc == QV_OK ? 0 : -1;
}

/* search, search/batch, query, query/batch: {"result": points, [points...], {"points":
 * points} or [{"points": points}...]}. */
static void run(srv_req *r, int query)
{
    int batch = r->route->variant;
    srv_coll *e = r->coll;
    json_t *b = srv_body(r, 1), *list = b ? json_object_get(b, "searches") : NULL;
    size_t n = batch ? json_array_size(list) : 1, m = 0;
    qsearch *q = NULL;
    srv_search *s = NULL, *run = NULL;
    float *vecs = NULL;
    srv_results res = {0};
    struct evbuffer *out = NULL;
    if (!b) return;
    if (batch && (!json_is_array(list) || n > SRV_MAX_BATCH)) {
        srv_bad(r, "'searches' must be a list of at most %u requests", SRV_MAX_BATCH);
        goto cleanup;
    }
    q = calloc(n ? n : 1, sizeof *q);
    s = calloc(n ? n : 1, sizeof *s);
    run = calloc(n ? n : 1, sizeof *run);
    vecs = malloc((n ? n : 1) * e->dim * sizeof *vecs);
    if (!q || !s || !run || !vecs || !(out = evbuffer_new())) { srv_oom(r); goto cleanup; }
    for (size_t i = 0; i < n; i++) {
        const json_t *o = batch ? json_array_get(list, i) : b;
        s[i].vec = vecs + i * e->dim;
        if ((query ? parse_query : parse_search)(r, o, &q[i], &s[i]) != 0) goto cleanup;
        s[i].k = (uint32_t)(q[i].limit + q[i].offset);
        if (q[i].mmr && q[i].candidates > s[i].k) s[i].k = (uint32_t)q[i].candidates;
        if (q[i].has_vec) run[m++] = s[i];          /* the ones with a vector go to the index */
    }
    int rc = srv_run_searches(e->coll, e->dim, run, m, &res);
    if (rc != QV_OK) { srv_fail_qv(r, rc); goto cleanup; }
    if (evbuffer_add_printf(out, "{\"result\":%s", batch ? "[" : "") < 0) { srv_oom(r); goto cleanup; }
    for (size_t i = 0, j = 0; i < n; i++) {
        if (evbuffer_add_printf(out, "%s%s", batch && i ? "," : "", query ? "{\"points\":" : "") < 0) { srv_oom(r); goto cleanup; }
        qv_hit *row = q[i].has_vec ? res.hits + j * res.kmax : NULL;
        size_t nh = q[i].has_vec ? res.nh[j++] : 0;
        if (put_result(r, out, &q[i], &s[i], row, nh) != 0) goto cleanup;
        if (query && srv_add_lit(out, "}")) { srv_oom(r); goto cleanup; }
    }
    if (batch && srv_add_lit(out, "]")) srv_oom(r);
    else qd_ok_written(r, out);
cleanup:
    for (size_t i = 0; q && s && i < n; i++) {
        qd_filter_release(&q[i].f);
        srv_search_release(&s[i]);
    }
    if (out) evbuffer_free(out);
    srv_results_free(&res);
    free(run);
    free(vecs);
    free(s);
    free(q);
    json_decref(b);
}

void qd_h_search(srv_req *r)
{
    run(r, 0);
}

void qd_h_query(srv_req *r)
{
    run(r, 1);
}

/* ---- scroll and count ---------------------------------------------------------- */

void qd_h_scroll(srv_req *r)
{
    srv_coll *e = r->coll;
    json_t *b = srv_body(r, 1);
    qd_filter f;
    uint64_t *ids = NULL, start = 0, limit = DEFAULT_LIMIT;
    qv_hit *h = NULL;
    char msg[200], *text = NULL;
    struct evbuffer *out = NULL;
    size_t n = 0;
    memset(&f, 0, sizeof f);
    if (!b) return;
    json_t *off = json_object_get(b, "offset"), *wp = json_object_get(b, "with_payload");
    qd_uuid u;
    if (unsupported_field(r, b, "order_by", "order_by is") != 0) goto cleanup;
    if (uint_opt(b, "limit", 100000, &limit) || limit == 0) { srv_bad(r, "limit must be 1..100000"); goto cleanup; }
    if (off && !json_is_null(off) && !(json_is_integer(off) && json_integer_value(off) >= 0) &&
        qd_id_parse(off, &start, &u, msg, sizeof msg) != 0) {
        srv_bad(r, "offset: %s", msg);
        goto cleanup;
    }
    if (json_is_integer(off) && json_integer_value(off) >= 0) start = (uint64_t)json_integer_value(off);
    if (qd_with_payload_check(wp, msg, sizeof msg) != 0) { srv_bad(r, "%s", msg); goto cleanup; }
    if (parse_filter(r, b, &f) != 0) goto cleanup;
    if (!(ids = malloc((size_t)(limit + 1) * sizeof *ids)) || !(h = malloc((size_t)(limit + 1) * sizeof *h)) ||
        !(out = evbuffer_new())) {
        srv_oom(r);
        goto cleanup;
    }
    int rc = qv_scroll(e->coll, f.filter, qd_filter_has_ids(&f) ? qd_filter_accept : NULL, &f, start, (size_t)limit + 1,
                       ids, &n, NULL);
    for (size_t i = 0; i < n; i++) h[i] = (qv_hit){ids[i], 0};
    srv_point_style st = qd_point_style(wp, 1, bool_opt(b, "with_vector", 0), 0);
    if (rc == QV_OK && srv_add_lit(out, "{\"result\":{\"points\":")) rc = QV_ENOMEM;
    if (rc == QV_OK) rc = srv_put_points(out, e->coll, e->dim, h, n < limit ? n : (size_t)limit, &st);
    if (rc == QV_OK && n > limit) {
        /* the next page starts at this id: a UUID's text, or (gone meanwhile) the raw id */
        if ((rc = qv_get(e->coll, ids[limit], NULL, &text)) == QV_ENOTFOUND) rc = QV_OK;
        if ((ids[limit] & QD_UUID_BIT) && text && srv_stored_string(text, QD_UUID_KEY, u.text, sizeof u.text) == 0)
            rc = rc || evbuffer_add_printf(out, ",\"next_page_offset\":\"%s\"", u.text) < 0 ? QV_ENOMEM : rc;
        else if (rc == QV_OK && evbuffer_add_printf(out, ",\"next_page_offset\":%llu", (unsigned long long)ids[limit]) < 0)
            rc = QV_ENOMEM;
    } else if (rc == QV_OK && srv_add_lit(out, ",\"next_page_offset\":null")) {
        rc = QV_ENOMEM;
    }
    if (rc == QV_OK && srv_add_lit(out, "}")) rc = QV_ENOMEM;
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else qd_ok_written(r, out);
cleanup:
    if (out) evbuffer_free(out);
    qv_free(text);
    free(h);
    free(ids);
    qd_filter_release(&f);
    json_decref(b);
}

void qd_h_count(srv_req *r)
{
    srv_coll *e = r->coll;
    json_t *b = srv_body(r, 1);
    qd_filter f;
    memset(&f, 0, sizeof f);
    if (!b) return;
    if (parse_filter(r, b, &f) == 0) {
        uint64_t total = 0;
        size_t n = 0;
        int rc = qv_scroll(e->coll, f.filter, qd_filter_has_ids(&f) ? qd_filter_accept : NULL, &f, 0, 0, NULL, &n, &total);
        if (rc != QV_OK) srv_fail_qv(r, rc);
        else qd_ok(r, json_pack("{s:I}", "count", (json_int_t)total));
    }
    qd_filter_release(&f);
    json_decref(b);
}
