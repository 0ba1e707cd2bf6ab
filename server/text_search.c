/*
 * server/text_search.c -- the native API's full-text and hybrid searches (issue 22):
 *
 *   POST /collections/{name}/search/text
 *     {"field":"body","query":"words","k":10,"k1":1.2,"b":0.75,"filter":{...},"with_payload":true}
 *   POST /collections/{name}/search/hybrid
 *     {"vector":[...],"text":{"field":"body","query":"words","k1":1.2,"b":0.75},"k":10,
 *      "fusion":"rrf"|"weighted","rrf_k":60,"alpha":0.5,"ef":64,"nprobe":8,"filter":{...},
 *      "with_payload":true}
 *   -> {"hits":[{"id","score","payload"}],"took_us":n}
 *
 * Thin handlers: parse, qv_text_search / qv_hybrid_search, write the hits as the vector
 * search does. The filter applies to both sides of a hybrid search; alpha is the weight of
 * the vector side in weighted fusion (the text side gets 1 - alpha).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

typedef struct {
    api_jtext field, query;
    double k1, b;
} text_part;

typedef struct {
    text_part t;
    uint32_t k, ef, nprobe, rrf_k;
    int fusion, with_payload, has_vector;
    double alpha;
    float *vec;
    api_filter filter;
} text_body;

#define T(field) offsetof(text_body, field)
static const api_jfield text_fields[] = {
    {"field", API_J_TEXT, T(t.field), .required = 1},
    {"query", API_J_TEXT, T(t.query), .required = 1},
    {"k", API_J_U32, .off = T(k), .lo = 1, .hi = QV_MAX_K},
    {"k1", API_J_NUM, T(t.k1), .lo = 0, .hi = 10},
    {"b", API_J_NUM, T(t.b), .lo = 0, .hi = 1},
    {"filter", API_J_CALL, T(filter), .read = api_jread_filter},
    {"with_payload", API_J_BOOL, .off = T(with_payload)},
    {0},
};

static int read_vector(api_jread *rd, void *dst)
{
    text_body *b = (text_body *)((char *)dst - T(vec));
    b->has_vector = 1;
    return api_jread_vector(rd, b->vec);
}

static const api_jfield part_fields[] = {
    {"field", API_J_TEXT, T(t.field), .required = 1},
    {"query", API_J_TEXT, T(t.query), .required = 1},
    {"k1", API_J_NUM, T(t.k1), .lo = 0, .hi = 10},
    {"b", API_J_NUM, T(t.b), .lo = 0, .hi = 1},
    {0},
};
static const char *const fusions[] = {"rrf", "weighted", NULL};
static const api_jfield hybrid_fields[] = {
    {"vector", API_J_CALL, T(vec), .read = read_vector, .required = 1},
    {"text", API_J_OBJECT, 0, .arg = part_fields, .required = 1},
    {"k", API_J_U32, .off = T(k), .lo = 1, .hi = QV_MAX_K},
    {"fusion", API_J_NAME, T(fusion), .lo = QV_FUSION_RRF, .arg = fusions},
    {"rrf_k", API_J_U32, .off = T(rrf_k), .lo = 1, .hi = 100000},
    {"alpha", API_J_NUM, T(alpha), .lo = 0, .hi = 1},
    {"ef", API_J_U32, .off = T(ef), .lo = 0, .hi = API_MAX_EF},
    {"nprobe", API_J_U32, .off = T(nprobe), .lo = 0, .hi = API_MAX_NPROBE},
    {"filter", API_J_CALL, T(filter), .read = api_jread_filter},
    {"with_payload", API_J_BOOL, .off = T(with_payload)},
    {0},
};

/* A JSON string field into a malloc'd C string (NULL: not a string, or out of memory:
 * *oom says which). */
static char *jstring_dup(api_jtext t, int *oom)
{
    char *s = malloc(t.len + 1);
    *oom = !s;
    if (s && api_jstring(t, s, t.len + 1) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}

static void reply_hits(srv_req *r, const qv_hit *hits, size_t n, int with_payload, uint64_t t0)
{
    api_wbuf *w = srv_writer(r);
    api_point_style st = {.scores = 1, .payload = with_payload};
    API_WLIT(w, "{\"hits\":");
    int rc = api_wpoints(w, r->coll->coll, r->coll->dim, hits, n, &st);
    API_WLIT(w, ",\"took_us\":");
    api_wu64(w, api_now_us() - t0);
    API_WLIT(w, "}");
    if (rc == QV_OK) srv_reply_written(r);
    else srv_fail_qv(r, rc);
}

/* POST .../search/text (variant 0) and .../search/hybrid (variant 1). */
void srv_h_text_search(srv_req *r)
{
    int hybrid = r->route->variant, oom = 0, rc;
    uint64_t t0 = api_now_us();
    text_body b = {.k = API_DEFAULT_K, .fusion = QV_FUSION_RRF, .alpha = 0.5,
                   .t = {.k1 = QV_BM25_K1, .b = QV_BM25_B}};
    char *field = NULL, *query = NULL;
    qv_hit *hits = NULL;
    size_t n = 0;
    if (hybrid && !(b.vec = calloc(r->coll->dim ? r->coll->dim : 1, sizeof *b.vec))) { srv_oom(r); return; }
    if (srv_read_body(r, hybrid ? "the hybrid search" : "the text search", hybrid ? hybrid_fields : text_fields, &b) != 0)
        goto cleanup;
    if (!(field = jstring_dup(b.t.field, &oom)) || !(query = jstring_dup(b.t.query, &oom))) {
        if (oom) srv_oom(r);
        else srv_bad(r, "'%s' must be a string", field ? "query" : "field");
        goto cleanup;
    }
    if (!(hits = calloc(b.k, sizeof *hits))) { srv_oom(r); goto cleanup; }
    qv_text_params tp;
    qv_text_params_init(&tp, b.k);
    tp.field = field;
    tp.query = query;
    tp.k1 = b.t.k1;
    tp.b = b.t.b;
    tp.filter = b.filter.f;
    if (!hybrid) {
        rc = qv_text_search(r->coll->coll, &tp, hits, &n);
    } else {
        qv_search_params sp;
        qv_fusion_params fp;
        double w[2] = {b.alpha, 1 - b.alpha};
        qv_search_params_init(&sp, b.k);
        sp.ef = b.ef;
        sp.nprobe = b.nprobe;
        sp.filter = b.filter.f;
        qv_fusion_params_init(&fp, (qv_fusion_kind)b.fusion, b.k);
        if (b.rrf_k) fp.rrf_k = b.rrf_k;
        rc = qv_hybrid_search(r->coll->coll, b.vec, &sp, &tp, &fp, w, hits, &n);
    }
    if (rc != QV_OK) srv_fail_qv(r, rc);
    else reply_hits(r, hits, n, b.with_payload, t0);
cleanup:
    free(field);
    free(query);
    free(hits);
    free(b.vec);
    api_filter_release(&b.filter);
}
