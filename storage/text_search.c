/*
 * storage/text_search.c -- qv_text_search (BM25 top-k over a "text" field) and
 * qv_hybrid_search (a vector search and a text search fused by qv_fuse).
 *
 * A ranked query reads only the postings of its distinct tokens (storage/text.h): each
 * list comes out of LMDB sorted by internal id and carries tf and the document's length,
 * so after the lists are read (which gives each token's document frequency, hence its
 * idf) one k-way merge by internal id scores every matching document once and a top-k
 * heap keeps the best. Nothing but the postings and the 'S' statistics record is read.
 * The formula is FTS5's bm25() (storage/text.h), computed in double precision.
 *
 * Locking as storage/search.c: a read txn (envlock shared), then c->maplock shared for
 * the field list, the filter's allowed set and the internal -> external id map.
 */
#include "storage/text.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/topk.h"
#include "storage/filter.h"

void qv_text_params_init(qv_text_params *p, uint32_t k)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->k = k;
    p->k1 = QV_BM25_K1;
    p->b = QV_BM25_B;
}

static int check_params(const qv_text_params *p)
{
    if (!p->field) return qv_fail(QV_EINVAL, "text search: field is NULL");
    if (!p->query) return qv_fail(QV_EINVAL, "text search: query is NULL");
    if (p->k < 1 || p->k > QV_MAX_K) return qv_fail(QV_EINVAL, "text search: k must be 1..%u, got %u", QV_MAX_K, p->k);
    if (!(p->k1 >= 0 && p->k1 <= 10)) return qv_fail(QV_EINVAL, "text search: k1 must be 0..10, got %g", p->k1);
    if (!(p->b >= 0 && p->b <= 1)) return qv_fail(QV_EINVAL, "text search: b must be 0..1, got %g", p->b);
    return QV_OK;
}

/* The postings of all query terms, list j at [start[j], start[j+1]). */
typedef struct {
    uint64_t *iid;
    uint32_t *tf, *dl;
    size_t n, cap;
} postings;

static void postings_release(postings *p)
{
    qv_free(p->iid);
    qv_free(p->tf);
    qv_free(p->dl);
}

static int postings_grow(postings *p)
{
    size_t ncap = p->cap ? p->cap * 2 : 1024;
    uint64_t *a = qv_reallocarray(p->iid, ncap, sizeof *a);
    if (!a) return QV_ENOMEM;
    p->iid = a;
    uint32_t *b = qv_reallocarray(p->tf, ncap, sizeof *b);
    if (!b) return QV_ENOMEM;
    p->tf = b;
    uint32_t *d = qv_reallocarray(p->dl, ncap, sizeof *d);
    if (!d) return QV_ENOMEM;
    p->dl = d;
    p->cap = ncap;
    return QV_OK;
}

/* Append the postings of token w of field to ps. */
static int read_postings(qv_coll *c, MDB_cursor *cur, const char *field, const char *w, postings *ps)
{
    uint8_t key[6 + QV_PFIELD_MAX + 1 + QV_TEXT_TOKEN_MAX];
    size_t wl = strlen(w), pl = qv_pkey_prefix(key, c->cid, field, strlen(field), 't');
    MDB_val k, v;
    int rc;
    key[pl] = (uint8_t)wl;
    memcpy(key + pl + 1, w, wl);
    pl += 1 + wl;
    for (rc = qv_lmdb_seek(cur, key, pl, pl, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, key, pl, &k, &v)) {
        if (k.mv_size != pl + 8 || v.mv_size != 8)
            return qv_fail(QV_ECORRUPT, "collection '%s': damaged text posting of field '%s'", c->name, field);
        if (ps->n == ps->cap && (rc = postings_grow(ps)) != QV_OK) return rc;
        uint32_t tv[2];
        memcpy(tv, v.mv_data, 8);
        ps->iid[ps->n] = qv_be64_get((const uint8_t *)k.mv_data + pl);
        ps->tf[ps->n] = tv[0];
        ps->dl[ps->n++] = tv[1];
    }
    return rc == QV_ENOTFOUND ? QV_OK : rc;
}

static int text_field(const qv_coll *c, const char *field)
{
    const qv_pfield *f = qv_pindex_field(c, field);
    if (!f || strcmp(f->type, "text") != 0 || !c->db->has_pindex)
        return qv_fail(QV_EINVAL, "collection '%s': field '%s' has no text index (declare it \"text\" in payload_index)",
                       c->name, field);
    return QV_OK;
}

int qv_text_search(qv_coll *c, const qv_text_params *p, qv_hit *hits, size_t *n_hits)
{
    qv_toklist qt = {0};
    size_t *uniq = NULL, nu = 0, *start = NULL, *pos = NULL;
    uint32_t *qtf = NULL;
    double *idf = NULL;
    postings ps = {0};
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint64_t *bits = NULL, allowed = 0;
    qv_topk tk = {0};
    int rc, locked = 0;

    if (n_hits) *n_hits = 0;
    if (!c || !p || !hits || !n_hits) return qv_fail(QV_EINVAL, "collection, params, hits or n_hits is NULL");
    if ((rc = check_params(p)) != QV_OK) return rc;
    if ((rc = qv_coll_check_live(c)) != QV_OK) return rc;
    if ((rc = qv_text_tokens(p->query, strlen(p->query), NULL, &qt)) != QV_OK) goto cleanup;
    if (qt.n && (!(uniq = qv_calloc(qt.n, sizeof *uniq)) || !(qtf = qv_calloc(qt.n, sizeof *qtf)) ||
                 !(idf = qv_calloc(qt.n, sizeof *idf)) || !(start = qv_calloc(qt.n + 1, sizeof *start)) ||
                 !(pos = qv_calloc(qt.n, sizeof *pos)))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    qv_text_distinct(&qt, uniq, qtf, &nu);
    if ((rc = qv_lmdb_begin(c->db, 1, &txn)) != QV_OK) goto cleanup;
    pthread_rwlock_rdlock(&c->maplock);
    locked = 1;
    if ((rc = text_field(c, p->field)) != QV_OK || nu == 0) goto cleanup;

    /* collection statistics */
    uint8_t skey[6 + QV_PFIELD_MAX];
    uint64_t st[2] = {0, 0};
    MDB_val v;
    size_t skl = qv_pkey_prefix(skey, c->cid, p->field, strlen(p->field), 'S');
    rc = qv_lmdb_get(txn, c->db->dbi[DBI_PINDEX], skey, skl, &v);
    if (rc == QV_ENOTFOUND) { rc = QV_OK; goto cleanup; }   /* no document yet */
    if (rc != QV_OK) goto cleanup;
    if (v.mv_size != sizeof st) { rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged text statistics", c->name); goto cleanup; }
    memcpy(st, v.mv_data, sizeof st);
    if (st[0] == 0) goto cleanup;
    double N = (double)st[0], avgdl = (double)st[1] / N, k1 = p->k1, b = p->b;

    uint64_t nbits = c->next_iid < c->cap ? c->next_iid : c->cap;
    if (p->filter) {
        qv_search_stats fst;
        memset(&fst, 0, sizeof fst);
        if ((rc = qv_filter_allowed_cached(c, txn, p->filter, nbits, &bits, &allowed, &fst)) != QV_OK) goto cleanup;
        if (allowed == 0) goto cleanup;
    }
    if ((rc = qv_lmdb_cursor_open(txn, c->db->dbi[DBI_PINDEX], &cur)) != QV_OK) goto cleanup;
    for (size_t j = 0; j < nu; j++) {
        start[j] = ps.n;
        if ((rc = read_postings(c, cur, p->field, qt.buf + qt.off[uniq[j]], &ps)) != QV_OK) goto cleanup;
        double df = (double)(ps.n - start[j]);
        idf[j] = log((N - df + 0.5) / (df + 0.5));
        if (idf[j] <= 0) idf[j] = 1e-6;            /* FTS5's floor for terms in most rows */
        idf[j] *= qtf[j];                          /* a repeated query token counts each time */
        pos[j] = start[j];
    }
    start[nu] = ps.n;

    if ((rc = qv_topk_init(&tk, p->k)) != QV_OK) goto cleanup;
    for (;;) {
        uint64_t iid = UINT64_MAX;
        for (size_t j = 0; j < nu; j++)
            if (pos[j] < start[j + 1] && ps.iid[pos[j]] < iid) iid = ps.iid[pos[j]];
        if (iid == UINT64_MAX) break;
        int ok = qv_filter_slot_ok(c, bits, nbits, iid);
        double score = 0;
        for (size_t j = 0; j < nu; j++) {
            size_t i = pos[j];
            if (i >= start[j + 1] || ps.iid[i] != iid) continue;
            pos[j]++;
            if (!ok) continue;
            double tf = ps.tf[i];
            score += idf[j] * (tf * (k1 + 1)) / (tf + k1 * (1 - b + b * (double)ps.dl[i] / avgdl));
        }
        if (ok) qv_topk_push(&tk, (float)-score, iid);
    }
    *n_hits = qv_filter_topk_hits(c, &tk, hits);
cleanup:
    if (locked) pthread_rwlock_unlock(&c->maplock);
    qv_lmdb_cursor_close(cur);
    qv_lmdb_abort(c->db, txn);
    qv_topk_release(&tk);
    postings_release(&ps);
    qv_free(bits);
    qv_free(uniq);
    qv_free(qtf);
    qv_free(idf);
    qv_free(start);
    qv_free(pos);
    qv_toklist_release(&qt);
    return rc;
}

int qv_hybrid_search(qv_coll *c, const float *query, const qv_search_params *sp, const qv_text_params *tp,
                     const qv_fusion_params *fp, const double *weights, qv_hit *hits, size_t *n_hits)
{
    qv_hit *vh = NULL, *th = NULL;
    size_t nv = 0, nt = 0;
    int rc;
    if (n_hits) *n_hits = 0;
    if (!c || !sp || !tp || !fp || !hits || !n_hits)
        return qv_fail(QV_EINVAL, "hybrid search: collection, params, hits or n_hits is NULL");
    if (fp->k < 1 || fp->k > QV_MAX_K) return qv_fail(QV_EINVAL, "hybrid search: k must be 1..%u, got %u", QV_MAX_K, fp->k);
    uint32_t fetch = fp->k;
    if (sp->k > fetch) fetch = sp->k;
    if (tp->k > fetch) fetch = tp->k;
    if (fetch > QV_MAX_K) fetch = QV_MAX_K;
    qv_search_params vs = *sp;
    qv_text_params ts = *tp;
    vs.k = ts.k = fetch;
    ts.filter = sp->filter;                        /* one filter for both sides */
    double w2[2] = {0.5, 0.5};
    if (!(vh = qv_calloc(fetch, sizeof *vh)) || !(th = qv_calloc(fetch, sizeof *th))) { rc = QV_ENOMEM; goto cleanup; }
    if (query && (rc = qv_search(c, query, &vs, vh, &nv)) != QV_OK) goto cleanup;
    if ((rc = qv_text_search(c, &ts, th, &nt)) != QV_OK) goto cleanup;
    const qv_hit *lists[2] = {vh, th};
    size_t lens[2] = {nv, nt};
    int asc[2] = {c->params.metric == QV_METRIC_L2, 0};
    rc = qv_fuse(fp, 2, lists, lens, asc, weights ? weights : w2, hits, n_hits);
cleanup:
    qv_free(vh);
    qv_free(th);
    return rc;
}
