/*
 * server/qdrant_points.c -- the point endpoints of the Qdrant-compatible API.
 *
 * Every handler runs with the collection table lock held for reading (qdrant.c) and
 * replies exactly once. Writes are single library calls (one LMDB transaction each):
 * upsert, delete, and the payload updates (qv_update_payload: each point's payload is
 * read, changed and written back in one transaction, without touching its vector).
 *
 * Scores: Cosine and Dot are quiver's cosine / inner product as they are; Euclid is the
 * square root of quiver's squared L2 distance (Qdrant reports the distance itself), and
 * score_threshold is then an upper bound. Search offsets are served by asking the index
 * for limit + offset hits (at most QV_MAX_K in all).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/qdrant.h"

#define DEFAULT_LIMIT 10u
#define MAX_BATCH 1024u

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

static json_t *vector_json(const float *v, uint32_t dim)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < dim; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

/* One point as Qdrant shows it ({id, payload?, vector?, score?}); NULL when the point does
 * not exist (deleted since it was found). *rc gets the library error, if any. */
static json_t *point_json(srv_coll *e, uint64_t iid, const json_t *wp, int wp_dflt, int with_vec,
                          const float *score, int *rc)
{
    float *vec = NULL;
    char *text = NULL;
    json_t *out = NULL, *payload = NULL;
    *rc = QV_OK;
    if (score && !with_vec && !(iid & QD_UUID_BIT) && !qd_payload_wanted(wp, wp_dflt)) {
        /* a search hit with an integer id, shown without payload or vector: nothing to
         * read from storage (the native API shows hits the same way) */
        out = json_pack("{s:I,s:i,s:f,s:n,s:n}", "id", (json_int_t)iid, "version", 0, "score",
                        (double)*score, "payload", "vector");
        if (!out) *rc = QV_ENOMEM;
        return out;
    }
    if (with_vec && !(vec = malloc((size_t)e->dim * sizeof *vec))) { *rc = QV_ENOMEM; return NULL; }
    int grc = qv_get(e->coll, iid, vec, &text);
    if (grc != QV_OK) {
        if (grc != QV_ENOTFOUND) *rc = grc;
        goto cleanup;
    }
    if (!(payload = qd_payload_parse(text))) { *rc = QV_ENOMEM; goto cleanup; }
    out = json_object();
    json_object_set_new(out, "id", qd_id_value(iid, payload));
    json_object_set_new(out, "version", json_integer(0));
    if (score) json_object_set_new(out, "score", json_real(*score));
    json_t *shown = qd_payload_show(payload, wp, wp_dflt);
    json_object_set_new(out, "payload", shown ? shown : json_null());
    json_object_set_new(out, "vector", with_vec ? vector_json(vec, e->dim) : json_null());
cleanup:
    json_decref(payload);
    qv_free(text);
    free(vec);
    return out;
}

/* Ids of a JSON list -> internal ids (malloc'd); -1 after replying. */
static int parse_id_list(srv_req *r, const json_t *a, const char *what, uint64_t **ids, size_t *n)
{
    char msg[160];
    *ids = NULL;
    *n = 0;
    if (!json_is_array(a)) { qd_err(r, 400, "Wrong input: '%s' must be a list of point ids", what); return -1; }
    size_t m = json_array_size(a);
    uint64_t *v = malloc((m ? m : 1) * sizeof *v);
    if (!v) { qd_err(r, 503, "out of memory"); return -1; }
    for (size_t i = 0; i < m; i++) {
        qd_uuid u;
        if (qd_id_parse(json_array_get(a, i), &v[i], &u, msg, sizeof msg) != 0) {
            free(v);
            qd_err(r, 400, "Wrong input: %s[%zu]: %s", what, i, msg);
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
    if (rc == -2) { qd_err(r, 503, "out of memory"); return -1; }
    if (rc != 0) { qd_err(r, 400, "Wrong input: filter: %s", msg); return -1; }
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
    if (rc != QV_OK) { qd_err_qv(r, rc); return -1; }
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
    qd_err(r, 400, "Wrong input: give 'points' (a list of ids) or 'filter'");
    return -1;
}

static int unsupported_field(srv_req *r, const json_t *b, const char *key, const char *what)
{
    json_t *v = json_object_get(b, key);
    if (v && !json_is_null(v)) {
        qd_err(r, 400, "Wrong input: %s not supported by quiverd", what);
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
        qd_err(r, 400, "Wrong input: %s: named vectors are not supported by quiverd", what);
        return -1;
    }
    if (json_is_array(v) && json_array_size(v) > 0 && json_is_array(json_array_get(v, 0))) {
        qd_err(r, 400, "Wrong input: %s: multivectors are not supported by quiverd", what);
        return -1;
    }
    if (srv_json_vector(v, what, dim, out, &e) != 0) {
        qd_err(r, 400, "Wrong input: %s", e.msg);
        return -1;
    }
    return 0;
}

void qd_h_upsert(srv_req *r, srv_coll *e)
{
    json_t *b = qd_body(r);
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
            qd_err(r, 400, "Wrong input: batch needs 'ids' and 'vectors' (and optional 'payloads') of one length");
            goto cleanup;
        }
        if (json_is_object(bvecs)) { qd_err(r, 400, "Wrong input: named vectors are not supported by quiverd"); goto cleanup; }
        n = json_array_size(bids);
    } else {
        qd_err(r, 400, "Wrong input: give 'points' (a list of {id, vector, payload}) or 'batch'");
        goto cleanup;
    }
    if (n == 0) { qd_ok(r, qd_update_result(e->coll)); goto cleanup; }
    ids = malloc(n * sizeof *ids);
    vecs = malloc(n * (size_t)e->dim * sizeof *vecs);
    pls = calloc(n, sizeof *pls);
    ip = malloc(n * sizeof *ip);
    if (!ids || !vecs || !pls || !ip) { qd_err(r, 503, "out of memory"); goto cleanup; }
    for (size_t i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "points[%zu]", i);
        json_t *p = pts ? json_array_get(pts, i) : NULL;
        if (pts && !json_is_object(p)) { qd_err(r, 400, "Wrong input: %s must be an object", what); goto cleanup; }
        json_t *jid = pts ? json_object_get(p, "id") : json_array_get(bids, i);
        json_t *jv = pts ? json_object_get(p, "vector") : json_array_get(bvecs, i);
        json_t *jp = pts ? json_object_get(p, "payload") : (json_is_array(bpls) ? json_array_get(bpls, i) : NULL);
        qd_uuid u;
        if (!jid || qd_id_parse(jid, &ids[i], &u, msg, sizeof msg) != 0) {
            qd_err(r, 400, "Wrong input: %s: %s", what, jid ? msg : "missing 'id'");
            goto cleanup;
        }
        if (get_vector(r, jv, what, e->dim, vecs + i * e->dim) != 0) goto cleanup;
        if (jp && !json_is_null(jp) && !json_is_object(jp)) {
            qd_err(r, 400, "Wrong input: %s: payload must be an object", what);
            goto cleanup;
        }
        if (json_object_get(jp, QD_UUID_KEY)) {
            qd_err(r, 400, "Wrong input: %s: payload key '%s' is reserved for UUID point ids", what, QD_UUID_KEY);
            goto cleanup;
        }
        if (u.text[0]) {
            json_t *pl = jp && !json_is_null(jp) ? json_deep_copy(jp) : json_object();
            if (pl) json_object_set_new(pl, QD_UUID_KEY, json_string(u.text));
            pls[i] = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
            json_decref(pl);
            if (!pls[i]) { qd_err(r, 503, "out of memory"); goto cleanup; }
            /* the hash of a UUID may, with odds of n^2/2^64, be taken by another UUID */
            char *old = NULL;
            if (qv_get(e->coll, ids[i], NULL, &old) == QV_OK && old) {
                json_t *op = qd_payload_parse(old);
                json_t *ou = op ? json_object_get(op, QD_UUID_KEY) : NULL;
                int clash = json_is_string(ou) && strcmp(json_string_value(ou), u.text) != 0;
                json_decref(op);
                qv_free(old);
                if (clash) { qd_err(r, 400, "Wrong input: %s: UUID %s collides with another point's id hash", what, u.text); goto cleanup; }
            }
        } else if (jp && !json_is_null(jp)) {
            if (!(pls[i] = json_dumps(jp, JSON_COMPACT))) { qd_err(r, 503, "out of memory"); goto cleanup; }
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
    if (rc != QV_OK) qd_err_qv(r, rc);
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

void qd_h_retrieve(srv_req *r, srv_coll *e)
{
    json_t *b = qd_body(r), *out = NULL;
    uint64_t *ids = NULL;
    size_t n = 0;
    char msg[200];
    if (!b) return;
    json_t *wp = json_object_get(b, "with_payload");
    if (qd_with_payload_check(wp, msg, sizeof msg) != 0) { qd_err(r, 400, "Wrong input: %s", msg); goto cleanup; }
    if (parse_id_list(r, json_object_get(b, "ids"), "ids", &ids, &n) != 0) goto cleanup;
    int wv = bool_opt(b, "with_vector", 0), rc = QV_OK;
    out = json_array();
    for (size_t i = 0; out && i < n && rc == QV_OK; i++) {
        json_t *p = point_json(e, ids[i], wp, 1, wv, NULL, &rc);
        if (p) json_array_append_new(out, p);
    }
    if (rc != QV_OK) qd_err_qv(r, rc);
    else { qd_ok(r, out); out = NULL; }
cleanup:
    json_decref(out);
    free(ids);
    json_decref(b);
}

void qd_h_get_point(srv_req *r, srv_coll *e, const char *idstr)
{
    uint64_t iid;
    qd_uuid u;
    int rc;
    if (qd_id_parse_str(idstr, &iid, &u) != 0) {
        qd_err(r, 400, "Wrong input: point ids are unsigned integers or UUIDs");
        return;
    }
    json_t *p = point_json(e, iid, NULL, 1, 1, NULL, &rc);
    if (rc != QV_OK) qd_err_qv(r, rc);
    else if (!p) qd_err(r, 404, "Not found: Point with id %s does not exists!", idstr);
    else qd_ok(r, p);
}

void qd_h_delete(srv_req *r, srv_coll *e)
{
    json_t *b = qd_body(r);
    uint64_t *ids = NULL;
    size_t n = 0, deleted = 0;
    if (!b) return;
    if (unsupported_field(r, b, "shard_key", "shard keys are") == 0 && selector(r, e, b, &ids, &n) == 0) {
        int rc = n ? qv_delete(e->coll, n, ids, &deleted) : QV_OK;
        if (rc != QV_OK) qd_err_qv(r, rc);
        else qd_ok(r, qd_update_result(e->coll));
    }
    free(ids);
    json_decref(b);
}

void qd_h_payload(srv_req *r, srv_coll *e, int mode)
{
    static const char *const names[] = {"set payload", "overwrite payload", "delete payload", "clear payload"};
    static const char *const keep_uuid[] = {QD_UUID_KEY};
    json_t *b = qd_body(r);
    uint64_t *ids = NULL;
    const char **keys = NULL;
    char *merge = NULL;
    size_t n = 0, nkeys = 0;
    if (!b) return;
    json_t *newp = json_object_get(b, "payload"), *jkeys = json_object_get(b, "keys");
    if (unsupported_field(r, b, "key", "setting a payload under a nested key ('key') is") != 0 ||
        unsupported_field(r, b, "shard_key", "shard keys are") != 0)
        goto cleanup;
    if (mode < 2 && !json_is_object(newp)) { qd_err(r, 400, "Wrong input: %s: 'payload' must be an object", names[mode]); goto cleanup; }
    if (mode < 2 && json_object_get(newp, QD_UUID_KEY)) {
        qd_err(r, 400, "Wrong input: %s: payload key '%s' is reserved for UUID point ids", names[mode], QD_UUID_KEY);
        goto cleanup;
    }
    if (mode == 2) {
        int ok = json_is_array(jkeys);
        for (size_t i = 0; ok && i < json_array_size(jkeys); i++) ok = json_is_string(json_array_get(jkeys, i));
        if (!ok) { qd_err(r, 400, "Wrong input: delete payload: 'keys' must be a list of strings"); goto cleanup; }
        if (!(keys = malloc((json_array_size(jkeys) + 1) * sizeof *keys))) { qd_err(r, 503, "out of memory"); goto cleanup; }
        for (size_t i = 0; i < json_array_size(jkeys); i++) {
            const char *k = json_string_value(json_array_get(jkeys, i));
            if (strcmp(k, QD_UUID_KEY) != 0) keys[nkeys++] = k;   /* the UUID of a point stays */
        }
    }
    if (selector(r, e, b, &ids, &n) != 0) goto cleanup;
    if (mode < 2 && !(merge = json_dumps(newp, JSON_COMPACT))) { qd_err(r, 503, "out of memory"); goto cleanup; }
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
    if (rc != QV_OK) qd_err_qv(r, rc);
    else qd_ok(r, qd_update_result(e->coll));
cleanup:
    free(merge);
    free(keys);
    free(ids);
    json_decref(b);
}

/* ---- search and query ---------------------------------------------------------- */

typedef struct {
    float *vec;                    /* dim floats; NULL: no query (list by id) */
    qd_filter f;
    uint64_t limit, offset, ef;
    int exact, with_vec, has_threshold, mmr;
    double threshold, diversity;   /* mmr: 0 = relevance only, 1 = diversity only */
    uint64_t candidates;           /* mmr: nearest points the selection starts from */
    const json_t *wp;
} qsearch;

static void qsearch_release(qsearch *q)
{
    free(q->vec);
    qd_filter_release(&q->f);
}

/* Common options of search and query; -1 after replying. */
static int parse_common(srv_req *r, const json_t *o, qsearch *q)
{
    char msg[200];
    q->limit = DEFAULT_LIMIT;
    if (uint_opt(o, "top", QV_MAX_K, &q->limit) || uint_opt(o, "limit", QV_MAX_K, &q->limit) || q->limit == 0) {
        qd_err(r, 400, "Wrong input: limit must be 1..%u", QV_MAX_K);
        return -1;
    }
    if (uint_opt(o, "offset", QV_MAX_K, &q->offset) || q->offset + q->limit > QV_MAX_K) {
        qd_err(r, 400, "Wrong input: offset + limit must be at most %u", QV_MAX_K);
        return -1;
    }
    q->wp = json_object_get(o, "with_payload");
    if (qd_with_payload_check(q->wp, msg, sizeof msg) != 0) { qd_err(r, 400, "Wrong input: %s", msg); return -1; }
    q->with_vec = bool_opt(o, "with_vector", 0);
    json_t *t = json_object_get(o, "score_threshold");
    if (t && !json_is_null(t)) {
        if (!json_is_number(t)) { qd_err(r, 400, "Wrong input: score_threshold must be a number"); return -1; }
        q->has_threshold = 1;
        q->threshold = json_number_value(t);
    }
    json_t *p = json_object_get(o, "params");
    if (p && !json_is_null(p)) {
        if (!json_is_object(p) || uint_opt(p, "hnsw_ef", QV_MAX_EF, &q->ef)) {
            qd_err(r, 400, "Wrong input: params.hnsw_ef must be 0..%u", QV_MAX_EF);
            return -1;
        }
        q->exact = json_is_true(json_object_get(p, "exact"));
    }
    if (unsupported_field(r, o, "shard_key", "shard keys are") != 0 ||
        unsupported_field(r, o, "lookup_from", "lookup_from is") != 0)
        return -1;
    json_t *u = json_object_get(o, "using");
    if (u && !json_is_null(u) && !(json_is_string(u) && json_string_length(u) == 0)) {
        qd_err(r, 400, "Wrong input: 'using': named vectors are not supported by quiverd");
        return -1;
    }
    return parse_filter(r, o, &q->f);
}

static int allocate_vec(srv_req *r, srv_coll *e, qsearch *q)
{
    if (!(q->vec = malloc((size_t)e->dim * sizeof *q->vec))) { qd_err(r, 503, "out of memory"); return -1; }
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

/* Run q: a JSON array of scored points. NULL after replying. */
static json_t *run_search(srv_req *r, srv_coll *e, qsearch *q)
{
    uint32_t k = (uint32_t)(q->limit + q->offset);
    json_t *out = json_array();
    int rc = QV_OK;
    if (!out) { qd_err(r, 503, "out of memory"); return NULL; }
    if (!q->vec) {                                 /* no query: points in id order */
        uint64_t *ids = malloc(k * sizeof *ids);
        size_t n = 0;
        if (!ids) { json_decref(out); qd_err(r, 503, "out of memory"); return NULL; }
        rc = qv_scroll(e->coll, q->f.filter, qd_filter_has_ids(&q->f) ? qd_filter_accept : NULL, &q->f, 0, k, ids, &n, NULL);
        for (size_t i = q->offset; rc == QV_OK && i < n; i++) {
            json_t *p = point_json(e, ids[i], q->wp, 0, q->with_vec, NULL, &rc);
            if (p) json_array_append_new(out, p);
        }
        free(ids);
        if (rc != QV_OK) { json_decref(out); qd_err_qv(r, rc); return NULL; }
        return out;
    }
    uint32_t want = k;
    if (q->mmr && q->candidates > k) k = (uint32_t)q->candidates;
    qv_hit *hits = malloc(k * sizeof *hits);
    if (!hits) { json_decref(out); qd_err(r, 503, "out of memory"); return NULL; }
    qv_search_params sp;
    qv_search_params_init(&sp, k);
    sp.ef = (uint32_t)q->ef;
    if (q->exact && sp.ef < 1024) sp.ef = 1024;    /* no brute force path: a wide beam */
    sp.filter = q->f.filter;
    if (qd_filter_has_ids(&q->f)) { sp.accept = qd_filter_accept; sp.accept_arg = &q->f; }
    size_t nh = 0;
    rc = qv_search(e->coll, q->vec, &sp, hits, &nh);
    if (rc == QV_OK && q->mmr) rc = mmr_select(e, q->diversity, hits, &nh, want);
    for (size_t i = q->offset; rc == QV_OK && i < nh; i++) {
        float s = hits[i].score;
        if (e->metric == QV_METRIC_L2) s = sqrtf(s > 0 ? s : 0);
        if (q->has_threshold && (e->metric == QV_METRIC_L2 ? s > (float)q->threshold : s < (float)q->threshold)) continue;
        json_t *p = point_json(e, hits[i].id, q->wp, 0, q->with_vec, &s, &rc);
        if (p) json_array_append_new(out, p);
    }
    free(hits);
    if (rc != QV_OK) { json_decref(out); qd_err_qv(r, rc); return NULL; }
    return out;
}

/* One search request object -> array of points; NULL after replying. */
static json_t *one_search(srv_req *r, srv_coll *e, const json_t *o)
{
    qsearch q;
    memset(&q, 0, sizeof q);
    json_t *out = NULL;
    if (!json_is_object(o)) { qd_err(r, 400, "Wrong input: a search must be an object"); return NULL; }
    if (parse_common(r, o, &q) != 0) goto cleanup;
    json_t *v = json_object_get(o, "vector");
    if (json_is_object(v)) {
        json_t *name = json_object_get(v, "name");
        if (!(json_is_string(name) && json_string_length(name) == 0)) {
            qd_err(r, 400, "Wrong input: named vectors are not supported by quiverd");
            goto cleanup;
        }
        v = json_object_get(v, "vector");
    }
    if (allocate_vec(r, e, &q) != 0 || get_vector(r, v, "vector", e->dim, q.vec) != 0) goto cleanup;
    out = run_search(r, e, &q);
cleanup:
    qsearch_release(&q);
    return out;
}

/* Batch wrapper: body {"searches": [...]}; each result wrapped by wrap (NULL = as is). */
static void run_batch(srv_req *r, srv_coll *e, json_t *(*one)(srv_req *, srv_coll *, const json_t *), const char *wrap)
{
    json_t *b = qd_body(r), *all = NULL;
    if (!b) return;
    json_t *s = json_object_get(b, "searches");
    if (!json_is_array(s) || json_array_size(s) > MAX_BATCH) {
        qd_err(r, 400, "Wrong input: 'searches' must be a list of at most %u requests", MAX_BATCH);
        goto cleanup;
    }
    all = json_array();
    for (size_t i = 0; all && i < json_array_size(s); i++) {
        json_t *res = one(r, e, json_array_get(s, i));
        if (!res) goto cleanup;                    /* replied */
        json_array_append_new(all, wrap ? json_pack("{s:o}", wrap, res) : res);
    }
    qd_ok(r, all);
    all = NULL;
cleanup:
    json_decref(all);
    json_decref(b);
}

void qd_h_search(srv_req *r, srv_coll *e, int batch)
{
    if (batch) { run_batch(r, e, one_search, NULL); return; }
    json_t *b = qd_body(r);
    if (!b) return;
    json_t *res = one_search(r, e, b);
    if (res) qd_ok(r, res);
    json_decref(b);
}

static json_t *one_query(srv_req *r, srv_coll *e, const json_t *o)
{
    static const char *const unsup[][2] = {
        {"recommend", "recommend queries are"}, {"discover", "discover queries are"},
        {"context", "context queries are"}, {"order_by", "order_by queries are"},
        {"fusion", "fusion queries are"}, {"rrf", "fusion queries are"},
        {"sample", "sample queries are"}, {"formula", "formula queries are"},
    };
    qsearch q;
    memset(&q, 0, sizeof q);
    json_t *out = NULL;
    if (!json_is_object(o)) { qd_err(r, 400, "Wrong input: a query must be an object"); return NULL; }
    if (unsupported_field(r, o, "prefetch", "prefetch (hybrid queries) is") != 0) return NULL;
    if (parse_common(r, o, &q) != 0) goto cleanup;
    json_t *qv = json_object_get(o, "query");
    if (json_is_object(qv)) {
        for (size_t i = 0; i < sizeof unsup / sizeof *unsup; i++)
            if (json_object_get(qv, unsup[i][0])) {
                qd_err(r, 400, "Wrong input: %s not supported by quiverd", unsup[i][1]);
                goto cleanup;
            }
        const char *key;
        json_t *val;
        json_object_foreach(qv, key, val)
            if (strcmp(key, "nearest") && strcmp(key, "mmr")) {
                qd_err(r, 400, "Wrong input: query kind '%.32s' is not supported by quiverd", key);
                goto cleanup;
            }
        json_t *mmr = json_object_get(qv, "mmr");
        if (mmr && !json_is_null(mmr)) {
            json_t *dv = json_object_get(mmr, "diversity");
            q.mmr = 1;
            q.diversity = 0.5;
            q.candidates = 100;
            if (!json_is_object(mmr) || (dv && !json_is_null(dv) && (!json_is_number(dv) || json_number_value(dv) < 0 ||
                                                                     json_number_value(dv) > 1)) ||
                uint_opt(mmr, "candidates_limit", QV_MAX_K, &q.candidates)) {
                qd_err(r, 400, "Wrong input: mmr: diversity must be 0..1 and candidates_limit 0..%u", QV_MAX_K);
                goto cleanup;
            }
            if (dv && !json_is_null(dv)) q.diversity = json_number_value(dv);
        }
        json_t *near = json_object_get(qv, "nearest");
        if (!near) { qd_err(r, 400, "Wrong input: query must be a vector, a point id or {\"nearest\": ...}"); goto cleanup; }
        if (json_is_object(near)) { qd_err(r, 400, "Wrong input: sparse vectors are not supported by quiverd"); goto cleanup; }
        qv = near;
    }
    if (qv && !json_is_null(qv)) {
        if (allocate_vec(r, e, &q) != 0) goto cleanup;
        if (json_is_array(qv)) {
            if (get_vector(r, qv, "query", e->dim, q.vec) != 0) goto cleanup;
        } else {                                   /* a point id: search by its vector */
            uint64_t iid;
            qd_uuid u;
            char msg[160];
            if (qd_id_parse(qv, &iid, &u, msg, sizeof msg) != 0) { qd_err(r, 400, "Wrong input: query: %s", msg); goto cleanup; }
            int rc = qv_get(e->coll, iid, q.vec, NULL);
            if (rc == QV_ENOTFOUND) { qd_err(r, 404, "Not found: No point with id %s found", json_is_string(qv) ? u.text : "(integer)"); goto cleanup; }
            if (rc != QV_OK) { qd_err_qv(r, rc); goto cleanup; }
            /* like Qdrant, the query point itself is not among the results */
            uint64_t *nv = realloc(q.f.not_ids, (q.f.n_not + 1) * sizeof *nv);
            if (!nv) { qd_err(r, 503, "out of memory"); goto cleanup; }
            q.f.not_ids = nv;
            size_t pos = q.f.n_not;
            while (pos > 0 && nv[pos - 1] > iid) { nv[pos] = nv[pos - 1]; pos--; }
            nv[pos] = iid;
            q.f.n_not++;
        }
    }
    out = run_search(r, e, &q);
cleanup:
    qsearch_release(&q);
    return out;
}

void qd_h_query(srv_req *r, srv_coll *e, int batch)
{
    if (batch) { run_batch(r, e, one_query, "points"); return; }
    json_t *b = qd_body(r);
    if (!b) return;
    json_t *res = one_query(r, e, b);
    if (res) qd_ok(r, json_pack("{s:o}", "points", res));
    json_decref(b);
}

/* ---- scroll and count ---------------------------------------------------------- */

void qd_h_scroll(srv_req *r, srv_coll *e)
{
    json_t *b = qd_body(r), *out = NULL;
    qd_filter f;
    uint64_t *ids = NULL, start = 0, limit = DEFAULT_LIMIT;
    char msg[200];
    memset(&f, 0, sizeof f);
    if (!b) return;
    if (unsupported_field(r, b, "order_by", "order_by is") != 0) goto cleanup;
    if (uint_opt(b, "limit", 100000, &limit) || limit == 0) { qd_err(r, 400, "Wrong input: limit must be 1..100000"); goto cleanup; }
    json_t *off = json_object_get(b, "offset");
    if (off && !json_is_null(off)) {
        qd_uuid u;
        if (json_is_integer(off) && json_integer_value(off) >= 0) start = (uint64_t)json_integer_value(off);
        else if (qd_id_parse(off, &start, &u, msg, sizeof msg) != 0) { qd_err(r, 400, "Wrong input: offset: %s", msg); goto cleanup; }
    }
    json_t *wp = json_object_get(b, "with_payload");
    if (qd_with_payload_check(wp, msg, sizeof msg) != 0) { qd_err(r, 400, "Wrong input: %s", msg); goto cleanup; }
    int wv = bool_opt(b, "with_vector", 0);
    if (parse_filter(r, b, &f) != 0) goto cleanup;
    if (!(ids = malloc((size_t)(limit + 1) * sizeof *ids))) { qd_err(r, 503, "out of memory"); goto cleanup; }
    size_t n = 0;
    int rc = qv_scroll(e->coll, f.filter, qd_filter_has_ids(&f) ? qd_filter_accept : NULL, &f, start,
                       (size_t)limit + 1, ids, &n, NULL);
    json_t *pts = json_array();
    for (size_t i = 0; rc == QV_OK && pts && i < n && i < limit; i++) {
        json_t *p = point_json(e, ids[i], wp, 1, wv, NULL, &rc);
        if (p) json_array_append_new(pts, p);
    }
    json_t *next = json_null();
    if (rc == QV_OK && n > limit) {
        json_t *p = point_json(e, ids[limit], NULL, 0, 0, NULL, &rc);
        if (p) { json_decref(next); next = json_incref(json_object_get(p, "id")); json_decref(p); }
        else if (rc == QV_OK) { json_decref(next); next = json_integer((json_int_t)ids[limit]); }   /* gone meanwhile: its raw id */
    }
    if (rc != QV_OK) { json_decref(pts); json_decref(next); qd_err_qv(r, rc); goto cleanup; }
    qd_ok(r, json_pack("{s:o,s:o}", "points", pts, "next_page_offset", next));
cleanup:
    json_decref(out);
    free(ids);
    qd_filter_release(&f);
    json_decref(b);
}

void qd_h_count(srv_req *r, srv_coll *e)
{
    json_t *b = qd_body(r);
    qd_filter f;
    memset(&f, 0, sizeof f);
    if (!b) return;
    if (parse_filter(r, b, &f) == 0) {
        uint64_t total = 0;
        size_t n = 0;
        int rc = qv_scroll(e->coll, f.filter, qd_filter_has_ids(&f) ? qd_filter_accept : NULL, &f, 0, 0, NULL, &n, &total);
        if (rc != QV_OK) qd_err_qv(r, rc);
        else qd_ok(r, json_pack("{s:I}", "count", (json_int_t)total));
    }
    qd_filter_release(&f);
    json_decref(b);
}
