/*
 * server/qdrant_points.c -- the point endpoints of the Qdrant-compatible API.
 *
 * Every handler runs with the collection opened by the pipeline (r->coll), reads its
 * body against the table of its fields (json.c; fields quiverd has no use for are
 * skipped, ones it cannot honour refused) and replies exactly once. Writes are single
 * library calls (one LMDB transaction each): upsert, delete, and the payload updates
 * (qv_update_payload: each point's payload is read, changed and written back in one
 * transaction, without touching its vector).
 *
 * Searches are read by api/qdrant.c (qd_search_fields) and run through api/search.c like
 * the native ones (equal searches of a batch in one library call); their points are
 * written by the same writer, scores as Qdrant shows them (qd_scores: Euclid is the
 * distance, score_threshold then an upper bound). Offsets are served by asking for
 * limit + offset hits (at most QV_MAX_K).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/qdrant.h"

/* ---- fields several bodies share ------------------------------------------------- */

static int read_id(api_jread *rd, size_t i, void *ids)
{
    uint64_t id;
    qd_uuid u;
    int rc = qd_jread_id(rd, &id, &u);
    (void)i;
    if (rc == 0 && api_ids_add(ids, id)) return api_jbad(rd, 0, "out_of_memory", "out of memory");
    return rc;
}

static int read_ids(api_jread *rd, void *ids)
{
    return api_jread_array(rd, read_id, ids);
}

/* The points a write applies to: "points" (ids, or {"filter": ...} in the old form) or
 * "filter". */
typedef struct { api_ids ids; api_filter f; int listed, filtered; } selection;

static int read_sel_filter(api_jread *rd, void *sel)
{
    selection *s = sel;
    s->filtered = 1;
    return qd_jread_filter(rd, &s->f);
}

static int read_sel_points(api_jread *rd, void *sel)
{
    static const api_jfield old_form[] = {{"filter", API_J_CALL, .read = read_sel_filter}, {0}};
    selection *s = sel;
    if (api_jpeek(rd, "{")) return api_jread_object(rd, old_form, s);
    s->listed = 1;
    return read_ids(rd, &s->ids);
}

/* The ids selected: the listed ones, or all that pass the filter (ascending); -1 after
 * replying. */
static int select_ids(srv_req *r, selection *s)
{
    uint64_t total = 0;
    qv_coll *c = r->coll->coll;
    if (s->listed) return 0;
    if (!s->filtered) return srv_bad(r, "give 'points' (a list of ids) or 'filter'");
    int rc = qv_scroll(c, s->f.f, NULL, NULL, 0, 0, NULL, &s->ids.n, &total);
    if (rc == QV_OK) {
        s->ids.cap = (size_t)total + 16;           /* room for writes racing us */
        if (!(s->ids.v = malloc(s->ids.cap * sizeof *s->ids.v))) rc = QV_ENOMEM;
        else rc = qv_scroll(c, s->f.f, NULL, NULL, 0, s->ids.cap, s->ids.v, &s->ids.n, NULL);
    }
    return rc == QV_OK ? 0 : srv_fail_qv(r, rc);
}

static void selection_release(selection *s)
{
    free(s->ids.v);
    api_filter_release(&s->f);
}

/* ---- upsert -------------------------------------------------------------------- */

/* The payload to store for point i: as given, with the UUID of a UUID id under
 * QD_UUID_KEY; -1 after replying. */
static int payload_of(srv_req *r, const qd_point *pt, size_t i, char **out)
{
    api_jtext t = pt->payload, reserved;
    char *stored = NULL, uuid[40];
    *out = NULL;
    if (t.p && api_jfind(t.p, t.len, QD_UUID_KEY, &reserved) == 0)
        return srv_bad(r, "points[%zu]: payload key '%s' is reserved for UUID point ids", i, QD_UUID_KEY);
    if (!pt->u.text[0]) {
        if (t.p && !(*out = strndup(t.p, t.len))) srv_oom(r);
        return t.p && !*out ? -1 : 0;
    }
    /* the hash of a UUID may, with odds of n^2/2^64, be taken by another UUID */
    int clash = qv_get(r->coll->coll, pt->id, NULL, &stored) == QV_OK &&
                api_stored_string(stored, QD_UUID_KEY, uuid, sizeof uuid) == 0 && strcmp(uuid, pt->u.text) != 0;
    qv_free(stored);
    if (clash) return srv_bad(r, "points[%zu]: UUID %s collides with another point's id hash", i, pt->u.text);
    const char *in = t.p ? t.p + 1 : "", *end = t.p ? t.p + t.len - 1 : in;     /* inside the braces */
    while (in < end && isspace((unsigned char)*in)) in++;
    if (asprintf(out, "{\"%s\":\"%s\"%s%.*s}", QD_UUID_KEY, pt->u.text, in < end ? "," : "", (int)(end - in), in) >= 0)
        return 0;
    *out = NULL;
    srv_oom(r);
    return -1;
}

typedef struct { uint64_t id; size_t pos; } idpos;

static int cmp_idpos(const void *a, const void *b)
{
    const idpos *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Point i's named vectors against the collection's: the dense one under its name ("" for
 * an unnamed collection), each sparse one under a sparse name, into row (n_sparse
 * entries, pointing into the point). -1 after replying. */
static int resolve_vectors(srv_req *r, const qv_collection_info *info, const qd_point *pt, size_t i, qv_sparse_vector *row)
{
    const char *dense = info->config.vector_name ? info->config.vector_name : "";
    if (info->config.no_dense && pt->has_dense) {
        srv_bad(r, "Not existing vector name error: %s (points[%zu]: collection `%s` has only sparse vectors)",
                pt->named ? pt->dname : "", i, r->name);
        return -1;
    }
    if (!pt->has_dense && !info->config.no_dense) {
        srv_bad(r, "points[%zu]: quiverd needs the dense vector%s%s%s in every point", i, *dense ? " '" : "", dense,
                *dense ? "'" : "");
        return -1;
    }
    if (pt->named && strcmp(pt->dname, dense) != 0) {
        srv_bad(r, "Not existing vector name error: %s (points[%zu])", pt->dname, i);
        return -1;
    }
    for (size_t j = 0; j < info->config.n_sparse; j++) row[j] = (qv_sparse_vector){0, NULL, NULL};
    for (size_t s = 0; s < pt->nsp; s++) {
        size_t j = 0;
        while (j < info->config.n_sparse && strcmp(info->config.sparse[j].name, pt->sp[s].name) != 0) j++;
        if (j == info->config.n_sparse) {
            if (strcmp(pt->sp[s].name, dense) == 0) srv_bad(r, "points[%zu]: vector '%s' is dense, got a sparse one", i, dense);
            else srv_bad(r, "Not existing vector name error: %s (points[%zu])", pt->sp[s].name, i);
            return -1;
        }
        if (row[j].n) {
            srv_bad(r, "points[%zu]: sparse vector '%s' given twice", i, pt->sp[s].name);
            return -1;
        }
        row[j] = (qv_sparse_vector){(uint32_t)pt->sp[s].ni, pt->sp[s].idx, pt->sp[s].val};
    }
    return 0;
}

void qd_h_upsert(srv_req *r)
{
    qd_upsert_body b = {.dim = r->coll->dim};
    api_points p = {.dim = b.dim};
    idpos *ip = NULL;
    qv_sparse_vector *sv = NULL;
    qv_collection_info info;
    int rc = qv_collection_get_info(r->coll->coll, &info);
    if (rc != QV_OK) {
        srv_fail_qv(r, rc);
        return;
    }
    if (srv_read_body(r, "the body", qd_upsert_fields, &b) != 0) goto cleanup;
    if (b.forms != 1 && b.forms != 2) {
        srv_bad(r, "give 'points' (a list of {id, vector, payload}) or 'batch'");
        goto cleanup;
    }
    if (b.forms == 2 && (b.count[1] != b.count[0] || (b.count[2] && b.count[2] != b.count[0]))) {
        srv_bad(r, "batch needs 'ids' and 'vectors' (and optional 'payloads') of one length");
        goto cleanup;
    }
    /* Qdrant applies a batch in order: of the points with one id, the last one wins */
    if (!(ip = malloc((b.n ? b.n : 1) * sizeof *ip))) {
        srv_oom(r);
        goto cleanup;
    }
    for (size_t i = 0; i < b.n; i++) ip[i] = (idpos){b.pt[i].id, i};
    qsort(ip, b.n, sizeof *ip, cmp_idpos);
    for (size_t i = 0; i + 1 < b.n; i++) b.pt[ip[i].pos].replaced = ip[i].id == ip[i + 1].id;
    size_t ns = info.config.n_sparse;
    if (ns && !(sv = calloc(b.n ? b.n * ns : 1, sizeof *sv))) {
        srv_oom(r);
        goto cleanup;
    }
    for (size_t i = 0; i < b.n; i++) {
        if (b.pt[i].replaced) continue;
        if (api_points_grow(&p, p.n)) {
            srv_oom(r);
            goto cleanup;
        }
        if (resolve_vectors(r, &info, &b.pt[i], i, sv ? sv + (p.n - 1) * ns : NULL) != 0) goto cleanup;
        p.ids[p.n - 1] = b.pt[i].id;
        memcpy(p.vecs + (p.n - 1) * p.dim, b.vecs + i * b.dim, b.dim * sizeof *p.vecs);
        if (info.config.no_dense) p.vecs[p.n - 1] = 1;   /* the stand-in (dim 1) */
        if (payload_of(r, &b.pt[i], i, &p.payloads[p.n - 1]) != 0) goto cleanup;
    }
    if (srv_upsert(r, &p, sv) == 0) qd_ok(r, qd_update_result(r->coll->coll));
cleanup:
    api_points_release(&p);
    free(ip);
    free(sv);
    for (size_t i = 0; i < b.n; i++) qd_point_release(&b.pt[i]);
    free(b.pt);
    free(b.vecs);
}

/* ---- retrieve, delete, payload ------------------------------------------------- */

typedef struct { api_ids ids; json_t *wp; int with_vector; } retrieve_body;
static const api_jfield retrieve_fields[] = {
    {"ids", API_J_CALL, offsetof(retrieve_body, ids), .read = read_ids, .required = 1},
    {"with_payload", API_J_CALL, offsetof(retrieve_body, wp), .read = qd_jread_selector},
    {"with_vector", API_J_CALL, offsetof(retrieve_body, with_vector), .read = qd_jread_with_vector},
    {0},
};

void qd_h_retrieve(srv_req *r)
{
    retrieve_body b = {0};
    qv_hit *h = NULL;
    if (srv_read_body(r, "the body", retrieve_fields, &b) == 0) {
        api_point_style st = qd_point_style(b.wp, 1, b.with_vector, 0);
        api_wbuf *w = srv_writer(r);
        int rc = (h = malloc((b.ids.n ? b.ids.n : 1) * sizeof *h)) ? QV_OK : QV_ENOMEM;
        for (size_t i = 0; h && i < b.ids.n; i++) h[i] = (qv_hit){b.ids.v[i], 0};
        API_WLIT(w, "{\"result\":");
        if (rc == QV_OK) rc = api_wpoints(w, r->coll->coll, r->coll->dim, h, b.ids.n, &st);
        if (rc != QV_OK) srv_fail_qv(r, rc);
        else qd_ok_written(r);
    }
    free(h);
    free(b.ids.v);
    json_decref(b.wp);
}

void qd_h_get_point(srv_req *r)
{
    qv_hit h = {0, 0};
    qd_uuid u;
    api_point_style st = qd_point_style(NULL, 1, 1, 0);
    int rc;
    st.single = 1;
    if (qd_id_parse_str(r->arg, &h.id, &u) != 0) {
        srv_bad(r, "point ids are unsigned integers or UUIDs");
        return;
    }
    API_WLIT(srv_writer(r), "{\"result\":");
    if ((rc = api_wpoints(srv_writer(r), r->coll->coll, r->coll->dim, &h, 1, &st)) == QV_ENOTFOUND)
        srv_fail(r, 404, "not_found", "Point with id %s does not exists!", r->arg);
    else if (rc != QV_OK) srv_fail_qv(r, rc);
    else qd_ok_written(r);
}

static const api_jfield delete_fields[] = {
    {"points", API_J_CALL, .read = read_sel_points},
    {"filter", API_J_CALL, .read = read_sel_filter},
    {"shard_key", API_J_REFUSE, .arg = "shard keys are"},
    {0},
};

void qd_h_delete(srv_req *r)
{
    selection s = {0};
    size_t deleted = 0;
    if (srv_read_body(r, "the body", delete_fields, &s) == 0 && select_ids(r, &s) == 0) {
        int rc = s.ids.n ? qv_delete(r->coll->coll, s.ids.n, s.ids.v, &deleted) : QV_OK;
        r->points = (long)deleted;
        if (rc != QV_OK) srv_fail_qv(r, rc);
        else qd_ok(r, qd_update_result(r->coll->coll));
    }
    selection_release(&s);
}

typedef struct { selection sel; api_jtext payload; json_t *keys; } payload_body;
#define PB(field) offsetof(payload_body, field)
static const api_jfield payload_fields[] = {
    {"points", API_J_CALL, PB(sel), .read = read_sel_points},
    {"filter", API_J_CALL, PB(sel), .read = read_sel_filter},
    {"payload", API_J_OBJTEXT, .off = PB(payload)},
    {"keys", API_J_CALL, PB(keys), .read = qd_jread_keys},
    {"key", API_J_REFUSE, .arg = "setting a payload under a nested key ('key') is"},
    {"shard_key", API_J_REFUSE, .arg = "shard keys are"},
    {0},
};

/* set (variant 0: merge), overwrite (1), delete keys (2), clear (3) */
void qd_h_payload(srv_req *r)
{
    static const char *const names[] = {"set payload", "overwrite payload", "delete payload", "clear payload"};
    static const char *const keep_uuid[] = {QD_UUID_KEY};
    int mode = r->route->variant;
    payload_body b = {0};
    const char **keys = NULL;
    char *merge = NULL;
    size_t nkeys = 0;
    api_jtext t;
    if (srv_read_body(r, names[mode], payload_fields, &b) != 0) goto cleanup;
    if (mode < 2 && !b.payload.p) {
        srv_bad(r, "%s: 'payload' must be an object", names[mode]);
        goto cleanup;
    }
    if (mode < 2 && api_jfind(b.payload.p, b.payload.len, QD_UUID_KEY, &t) == 0) {
        srv_bad(r, "%s: payload key '%s' is reserved for UUID point ids", names[mode], QD_UUID_KEY);
        goto cleanup;
    }
    if (mode == 2 && !b.keys) {
        srv_bad(r, "delete payload: 'keys' must be a list of strings");
        goto cleanup;
    }
    if (mode == 2 && !(keys = malloc((json_array_size(b.keys) + 1) * sizeof *keys))) {
        srv_oom(r);
        goto cleanup;
    }
    for (size_t i = 0; mode == 2 && i < json_array_size(b.keys); i++) {
        const char *k = json_string_value(json_array_get(b.keys, i));
        if (strcmp(k, QD_UUID_KEY) != 0) keys[nkeys++] = k;   /* the UUID of a point stays */
    }
    if (select_ids(r, &b.sel) != 0) goto cleanup;
    if (mode < 2 && !(merge = strndup(b.payload.p, b.payload.len))) {
        srv_oom(r);
        goto cleanup;
    }
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
    if (!b.sel.listed) u.flags = QV_PAYLOAD_SKIP_MISSING;
    int rc = qv_update_payload(r->coll->coll, b.sel.ids.n, b.sel.ids.v, &u, NULL);
    r->points = rc == QV_OK ? (long)b.sel.ids.n : 0;
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else qd_ok(r, qd_update_result(r->coll->coll));
cleanup:
    free(merge);
    free(keys);
    json_decref(b.keys);
    selection_release(&b.sel);
}

/* ---- search and query ---------------------------------------------------------- */

static int not_query_point(uint64_t id, void *q)
{
    return id != ((const qd_search *)q)->id;
}

/* "using" against the collection's vectors: a sparse query names a sparse vector, a
 * dense one the dense vector ("" when unnamed, also when left out). -1 after replying. */
static int check_using(srv_req *r, qd_search *q)
{
    qv_collection_info info;
    int rc = qv_collection_get_info(r->coll->coll, &info);
    if (rc != QV_OK) {
        srv_fail_qv(r, rc);
        return -1;
    }
    const char *dense = info.config.vector_name ? info.config.vector_name : "";
    const char *name = q->has_using ? q->using : dense;
    int sparse_name = 0;
    for (size_t j = 0; j < info.config.n_sparse; j++) sparse_name |= strcmp(info.config.sparse[j].name, name) == 0;
    if (q->sparse) {
        if (!info.config.n_sparse) srv_bad(r, "collection `%s` has no sparse vectors (declare them in 'sparse_vectors')", r->name);
        else if (!q->has_using) srv_bad(r, "a sparse query needs 'using': the name of a sparse vector");
        else if (!sparse_name) srv_bad(r, "Not existing vector name error: %s", name);
        else if (q->mmr) srv_bad(r, "mmr over a sparse vector is not supported by quiverd");
        return r->replied ? -1 : 0;
    }
    if (q->has_vec && info.config.no_dense && !sparse_name) {
        srv_bad(r, "Not existing vector name error: %s (collection `%s` has only sparse vectors)", name, r->name);
        return -1;
    }
    if (!q->has_vec || strcmp(name, dense) == 0) return 0;
    if (sparse_name) srv_bad(r, "vector '%s' is sparse: query it with {\"indices\": [...], \"values\": [...]}", name);
    else srv_bad(r, "Not existing vector name error: %s", name);
    return -1;
}

/* The hits of sparse query q (its k, filter), into hits (q->s.k of them). */
static int sparse_hits(srv_req *r, const qd_search *q, qv_hit *hits, size_t *nh)
{
    qv_sparse_params sp;
    qv_sparse_params_init(&sp, q->s.k);
    sp.name = q->using;
    sp.query = (qv_sparse_vector){(uint32_t)q->sq.ni, q->sq.idx, q->sq.val};
    sp.filter = q->s.filter.f;
    return qv_sparse_search(r->coll->coll, &sp, hits, nh);
}

/* What the fields alone do not check, and the library search completed; -1 after replying. */
static int prepare(srv_req *r, qd_search *q)
{
    if (check_using(r, q) != 0) return -1;
    if (q->offset + q->limit > QV_MAX_K) return srv_bad(r, "offset + limit must be at most %u", QV_MAX_K);
    q->s.k = (uint32_t)(q->limit + q->offset);
    if (q->ignore_quant) q->s.rescore = QV_RESCORE_ALL;
    if (q->mmr && q->candidates > q->s.k) q->s.k = (uint32_t)q->candidates;
    if (q->by_id) {
        int rc = qv_get(r->coll->coll, q->id, q->s.vec, NULL);
        if (rc == QV_ENOTFOUND && q->u.text[0]) srv_fail(r, 404, "not_found", "No point with id %s found", q->u.text);
        else if (rc == QV_ENOTFOUND) srv_fail(r, 404, "not_found", "No point with id %llu found", (unsigned long long)q->id);
        else if (rc != QV_OK) srv_fail_qv(r, rc);
        if (r->replied) return -1;
        q->s.accept = not_query_point;             /* like Qdrant, it is not among the results */
        q->s.accept_arg = q;
    }
    return 0;
}

/* The points of one search q: its hits, or with no vector the first passing points in
 * id order; -1 after replying. */
static int put_result(srv_req *r, qd_search *q, qv_hit *hits, size_t nh)
{
    srv_coll *e = r->coll;
    uint64_t *ids = NULL;
    qv_hit *own = NULL;
    int rc = QV_OK;
    if (q->sparse) {
        if (!(hits = own = malloc(q->s.k * sizeof *own))) rc = QV_ENOMEM;
        else rc = sparse_hits(r, q, hits, &nh);
    } else if (!q->has_vec) {
        if (!(ids = malloc(q->s.k * sizeof *ids)) || !(hits = malloc(q->s.k * sizeof *hits))) rc = QV_ENOMEM;
        else rc = qv_scroll(e->coll, q->s.filter.f, q->s.accept, q->s.accept_arg, 0, q->s.k, ids, &nh, NULL);
        for (size_t i = 0; rc == QV_OK && i < nh; i++) hits[i] = (qv_hit){ids[i], 0};
    } else if (q->mmr) {
        rc = qv_mmr(e->coll, q->diversity, q->limit + q->offset, hits, &nh);
    }
    /* sparse scores are dot products: larger is better, as Dot shows them */
    size_t m = rc == QV_OK ? qd_scores(q->sparse ? QV_METRIC_IP : e->metric, q->threshold, hits, q->offset, nh) : 0;
    api_point_style st = qd_point_style(q->wp, 0, q->with_vec, q->has_vec);
    if (rc == QV_OK) rc = api_wpoints(srv_writer(r), e->coll, e->dim, hits, m, &st);
    if (!q->has_vec) free(hits);
    free(own);
    free(ids);
    return rc == QV_OK ? 0 : srv_fail_qv(r, rc);
}

/* A query with prefetches, checked before any output: it fuses them by RRF and each
 * prefetch has a vector (or point id); every prefetch prepared. -1 after replying. */
static int prepare_fused(srv_req *r, qd_search *q)
{
    qd_search_list *pl = q->pre;
    if (!q->fusion || q->has_vec || q->mmr)
        return srv_bad(r, "a query with prefetch is supported by quiverd only as {\"fusion\": \"rrf\"}");
    if (!pl->n) return srv_bad(r, "'prefetch' must hold at least one query to fuse");
    if (q->s.filter.f)
        return srv_bad(r, "a filter of a fusion query is not supported by quiverd: give it to each prefetch");
    if (q->offset + q->limit > QV_MAX_K) return srv_bad(r, "offset + limit must be at most %u", QV_MAX_K);
    for (size_t i = 0; i < pl->n; i++) {
        qd_search *p = &pl->q[i];
        p->s.vec = pl->vecs + i * pl->dim;
        if (!p->has_vec || p->mmr || p->fusion)
            return srv_bad(r, "prefetch[%zu] needs a query vector (or a point id)", i);
        if (prepare(r, p) != 0) return -1;
    }
    return 0;
}

/* The points of a prepared fusion query: each prefetch searched (its own vector, filter,
 * limit and score_threshold), the ranked lists fused by RRF (qv_fuse) into the best limit + offset, then
 * offset skipped and score_threshold applied to the fused scores. -1 after replying. */
static int run_fused(srv_req *r, qd_search *q)
{
    srv_coll *e = r->coll;
    qd_search_list *pl = q->pre;
    api_search *pre = NULL;
    api_results res = {0};
    qv_hit *fused = NULL, *sh = NULL;
    const qv_hit **lists = NULL;
    size_t *lens = NULL, nf = 0, nd = 0;
    int rc = QV_ENOMEM;
    if (!(pre = calloc(pl->n, sizeof *pre)) || !(lists = calloc(pl->n, sizeof *lists)) ||
        !(lens = calloc(pl->n, sizeof *lens)) || !(fused = malloc((q->limit + q->offset) * sizeof *fused)))
        goto done;
    size_t nsh = 0;
    for (size_t i = 0; i < pl->n; i++) nsh += pl->q[i].sparse ? pl->q[i].s.k : 0;
    if (!(sh = malloc((nsh ? nsh : 1) * sizeof *sh))) goto done;
    /* the dense prefetches through the index (equal ones grouped), the sparse ones each */
    for (size_t i = 0; i < pl->n; i++)
        if (!pl->q[i].sparse) pre[nd++] = pl->q[i].s;
    if ((rc = api_run_searches(e->coll, e->dim, pre, nd, &res)) != QV_OK) goto done;
    for (size_t i = 0, d = 0, at = 0; i < pl->n; i++) {   /* a prefetch's own score_threshold */
        qv_hit *h = sh + at;
        size_t n = 0;
        if (pl->q[i].sparse && (rc = sparse_hits(r, &pl->q[i], h, &n)) != QV_OK) goto done;
        if (pl->q[i].sparse) {
            at += pl->q[i].s.k;
        } else {
            h = res.hits + d * res.kmax;
            n = res.nh[d++];
        }
        lists[i] = h;
        lens[i] = qd_scores(pl->q[i].sparse ? QV_METRIC_IP : e->metric, pl->q[i].threshold, h, pl->q[i].offset, n);
    }
    qv_fusion_params fp;
    qv_fusion_params_init(&fp, QV_FUSION_RRF, (uint32_t)(q->limit + q->offset));
    if ((rc = qv_fuse(&fp, pl->n, lists, lens, NULL, NULL, fused, &nf)) != QV_OK) goto done;
    size_t m = 0;                                  /* fused scores are larger-better */
    for (size_t i = q->offset; i < nf; i++)
        if (isnan(q->threshold) || fused[i].score >= (float)q->threshold) fused[m++] = fused[i];
    api_point_style st = qd_point_style(q->wp, 0, q->with_vec, 1);
    rc = api_wpoints(srv_writer(r), e->coll, e->dim, fused, m, &st);
done:
    api_results_free(&res);
    free(fused);
    free(sh);
    free(lists);
    free(lens);
    free(pre);
    return rc == QV_OK ? 0 : srv_fail_qv(r, rc);
}

/* search, search/batch, query, query/batch: {"result": points, [points...], {"points":
 * points} or [{"points": points}...]}. */
static void run(srv_req *r, int query)
{
    int batch = r->route->variant;
    srv_coll *e = r->coll;
    qd_search_list l = {.dim = e->dim, .query = query};
    api_search *run = NULL;
    api_results res = {0};
    api_wbuf *w = srv_writer(r);
    size_t m = 0;
    if (!batch && !qd_search_at(&l, 0)) {
        srv_oom(r);
        goto cleanup;
    }
    if (srv_read_body(r, "the body", batch ? qd_searches_fields : qd_search_fields, batch ? (void *)&l : (void *)l.q) != 0)
        goto cleanup;
    if (!(run = calloc(l.n ? l.n : 1, sizeof *run))) {
        srv_oom(r);
        goto cleanup;
    }
    for (size_t i = 0; i < l.n; i++) {
        l.q[i].s.vec = l.vecs + i * e->dim;
        if (l.q[i].fusion && !l.q[i].pre) {
            srv_bad(r, "a fusion query needs 'prefetch'");
            goto cleanup;
        }
        if (l.q[i].pre) {                          /* run_fused, when writing its result */
            if (prepare_fused(r, &l.q[i]) != 0) goto cleanup;
            continue;
        }
        if (prepare(r, &l.q[i]) != 0) goto cleanup;
        if (l.q[i].has_vec && !l.q[i].sparse) run[m++] = l.q[i].s;   /* dense vectors go to the index */
    }
    int rc = api_run_searches(e->coll, e->dim, run, m, &res);
    if (rc != QV_OK) {
        srv_fail_qv(r, rc);
        goto cleanup;
    }
    API_WLIT(w, "{\"result\":");
    if (batch) API_WLIT(w, "[");
    for (size_t i = 0, j = 0; i < l.n; i++) {
        if (batch && i) API_WLIT(w, ",");
        if (query) API_WLIT(w, "{\"points\":");
        if (l.q[i].pre) {
            if (run_fused(r, &l.q[i]) != 0) goto cleanup;
            if (query) API_WLIT(w, "}");
            continue;
        }
        int dense = l.q[i].has_vec && !l.q[i].sparse;
        qv_hit *row = dense ? res.hits + j * res.kmax : NULL;
        size_t nh = dense ? res.nh[j++] : 0;
        if (put_result(r, &l.q[i], row, nh) != 0) goto cleanup;
        if (query) API_WLIT(w, "}");
    }
    if (batch) API_WLIT(w, "]");
    qd_ok_written(r);
cleanup:
    qd_search_list_free(&l);
    api_results_free(&res);
    free(run);
}

void qd_h_search(srv_req *r)
{
    run(r, 0);
}

void qd_h_query(srv_req *r)
{
    run(r, 1);
}

/* One group {"id": value, "hits": points} of qv_search_groups; scores as searches show them. */
static int put_group(srv_req *r, const qd_search *q, qv_group *g)
{
    srv_coll *e = r->coll;
    api_wbuf *w = srv_writer(r);
    API_WLIT(w, "{\"id\":");
    api_wscalar(w, g->type, g->i, g->s);
    API_WLIT(w, ",\"hits\":");
    size_t m = qd_scores(e->metric, q->threshold, g->hits, 0, g->n);
    api_point_style st = qd_point_style(q->wp, 0, q->with_vec, 1);
    int rc = api_wpoints(w, e->coll, e->dim, g->hits, m, &st);
    API_WLIT(w, "}");
    return rc;
}

/* search/groups (variant 0) and query/groups (1): the best hits grouped by a payload
 * field (qv_search_groups), {"result":{"groups":[{"id","hits"}...]}}. */
void qd_h_groups(srv_req *r)
{
    srv_coll *e = r->coll;
    qd_search_list l = {.dim = e->dim, .query = r->route->variant};
    qd_search *q = qd_search_at(&l, 0);
    qv_group *g = NULL;
    size_t ng = 0;
    char key[256];
    int rc;
    if (!q) {
        srv_oom(r);
        goto cleanup;
    }
    if (srv_read_body(r, "the body", qd_search_fields, q) != 0) goto cleanup;
    q = l.q;
    q->s.vec = l.vecs;
    if (!q->group_by.p || api_jstring(q->group_by, key, sizeof key) != 0) {
        srv_bad(r, "'group_by' must be a payload key (a string of at most %zu bytes)", sizeof key - 1);
        goto cleanup;
    }
    if (q->pre || q->fusion || q->sparse) {
        srv_bad(r, "prefetch, fusion and sparse queries are not supported by quiverd in grouped queries");
        goto cleanup;
    }
    if (!q->has_vec || q->mmr) {
        srv_bad(r, "a grouped %s needs a query vector (or a point id)", l.query ? "query" : "search");
        goto cleanup;
    }
    if (prepare(r, q) != 0) goto cleanup;
    qv_search_params sp;
    api_search_params(&q->s, &sp);                 /* its k: qv_search_groups sets its own */
    if ((rc = qv_search_groups(e->coll, q->s.vec, &sp, key, (uint32_t)q->group_size, (uint32_t)q->limit, &g, &ng)) != QV_OK) {
        srv_fail_qv(r, rc);
        goto cleanup;
    }
    api_wbuf *w = srv_writer(r);
    API_WLIT(w, "{\"result\":{\"groups\":[");
    for (size_t i = 0; i < ng; i++) {
        if (i) API_WLIT(w, ",");
        if ((rc = put_group(r, q, &g[i])) != QV_OK) {
            srv_fail_qv(r, rc);
            goto cleanup;
        }
    }
    API_WLIT(w, "]}");
    qd_ok_written(r);
cleanup:
    qv_groups_free(g, ng);
    qd_search_list_free(&l);
}

/* ---- scroll and count ---------------------------------------------------------- */

typedef struct { api_filter f; uint64_t offset, limit; qd_uuid u; json_t *wp; int with_vector; } scroll_body;
#define SB(field) offsetof(scroll_body, field)

static int read_offset(api_jread *rd, void *body)
{
    scroll_body *b = body;
    return qd_jread_id(rd, &b->offset, &b->u);
}

static const api_jfield scroll_fields[] = {
    {"filter", API_J_CALL, SB(f), .read = qd_jread_filter},
    {"offset", API_J_CALL, .read = read_offset},
    {"limit", API_J_U64, .off = SB(limit), .lo = 1, .hi = 100000},
    {"with_payload", API_J_CALL, SB(wp), .read = qd_jread_selector},
    {"with_vector", API_J_CALL, SB(with_vector), .read = qd_jread_with_vector},
    {"order_by", API_J_REFUSE, .arg = "order_by is"},
    {0},
};

void qd_h_scroll(srv_req *r)
{
    srv_coll *e = r->coll;
    scroll_body b = {.limit = API_DEFAULT_K};
    uint64_t *ids = NULL;
    qv_hit *h = NULL;
    char *text = NULL, uuid[40];
    size_t n = 0;
    api_wbuf *w = srv_writer(r);
    if (srv_read_body(r, "the body", scroll_fields, &b) != 0) goto cleanup;
    if (!(ids = malloc((size_t)(b.limit + 1) * sizeof *ids)) || !(h = malloc((size_t)(b.limit + 1) * sizeof *h))) {
        srv_oom(r);
        goto cleanup;
    }
    int rc = qv_scroll(e->coll, b.f.f, NULL, NULL, b.offset, (size_t)b.limit + 1, ids, &n, NULL);
    for (size_t i = 0; i < n; i++) h[i] = (qv_hit){ids[i], 0};
    api_point_style st = qd_point_style(b.wp, 1, b.with_vector, 0);
    API_WLIT(w, "{\"result\":{\"points\":");
    if (rc == QV_OK) rc = api_wpoints(w, e->coll, e->dim, h, n < b.limit ? n : (size_t)b.limit, &st);
    API_WLIT(w, ",\"next_page_offset\":");
    /* the next page starts at this id: a UUID's text, or (gone meanwhile) the raw id */
    if (rc == QV_OK && n > b.limit && (rc = qv_get(e->coll, ids[b.limit], NULL, &text)) == QV_ENOTFOUND) rc = QV_OK;
    if (n <= b.limit) API_WLIT(w, "null");
    else if ((ids[b.limit] & QD_UUID_BIT) && api_stored_string(text, QD_UUID_KEY, uuid, sizeof uuid) == 0)
        api_wstring(w, uuid, strlen(uuid));
    else api_wu64(w, ids[b.limit]);
    API_WLIT(w, "}");
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else qd_ok_written(r);
cleanup:
    qv_free(text);
    free(h);
    free(ids);
    api_filter_release(&b.f);
    json_decref(b.wp);
}

void qd_h_count(srv_req *r)
{
    static const api_jfield count_fields[] = {{"filter", API_J_CALL, .read = qd_jread_filter}, {0}};
    api_filter f = {0};
    uint64_t total = 0;
    size_t n = 0;
    if (srv_read_body(r, "the body", count_fields, &f) == 0) {
        int rc = qv_scroll(r->coll->coll, f.f, NULL, NULL, 0, 0, NULL, &n, &total);
        if (rc != QV_OK) srv_fail_qv(r, rc);
        else qd_ok(r, json_pack("{s:I}", "count", (json_int_t)total));
    }
    api_filter_release(&f);
}
