/*
 * storage/sparse_search.c -- qv_sparse_search: exact dot-product top-k over the postings
 * of the query's indices (layout in sparse.c).
 *
 * Only the postings of the query's indices are read: each (point, value) posting becomes
 * a term (internal id, query position, query weight * value); the terms sorted by
 * (internal id, query position) give each point's score as one run, summed in double
 * precision in the query's index order, and a top-k heap keeps the best. O(P log P) for P
 * postings, whatever the number of query indices (a k-way merge costs O(P * nnz)). With
 * the idf modifier the query weights are scaled first; n(i) is the length of index i's
 * posting list, which the read gives for free, and N the slot's 'N' record.
 *
 * Locking as storage/text_search.c: a read txn (envlock shared), then c->maplock shared
 * for the filter's allowed set, the live set and the internal -> external id map.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/topk.h"
#include "storage/filter.h"
#include "storage/sparse.h"

void qv_sparse_params_init(qv_sparse_params *p, uint32_t k)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->k = k;
}

typedef struct { uint64_t iid; uint32_t j; float w; } term;

typedef struct {
    term *t;
    size_t n, cap;
} terms;

static int cmp_term(const void *a, const void *b)
{
    const term *x = a, *y = b;
    if (x->iid != y->iid) return x->iid < y->iid ? -1 : 1;
    return x->j < y->j ? -1 : x->j > y->j;
}

/* Append the postings of index ix of slot (query position j) to ts; *df gets their count. */
static int read_postings(qv_coll *c, MDB_cursor *cur, size_t slot, uint32_t ix, uint32_t j, terms *ts, size_t *df)
{
    uint8_t key[24];
    MDB_val k, v;
    size_t pl = qv_sparse_key(key, c->cid, slot, 'p'), n0 = ts->n;
    int rc;
    qv_be32_put(key + pl, ix);
    pl += 4;
    for (rc = qv_lmdb_seek(cur, key, pl, pl, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, key, pl, &k, &v)) {
        if (k.mv_size != pl + 8 || v.mv_size != 4)
            return qv_fail(QV_ECORRUPT, "collection '%s': damaged sparse posting", c->name);
        if (ts->n == ts->cap) {
            size_t ncap = ts->cap ? ts->cap * 2 : 1024;
            term *t = qv_reallocarray(ts->t, ncap, sizeof *t);
            if (!t) return QV_ENOMEM;
            ts->t = t;
            ts->cap = ncap;
        }
        term *t = &ts->t[ts->n++];
        t->iid = qv_be64_get((const uint8_t *)k.mv_data + pl);
        t->j = j;
        memcpy(&t->w, v.mv_data, 4);
    }
    *df = ts->n - n0;
    return rc == QV_ENOTFOUND ? QV_OK : rc;
}

int qv_sparse_search(qv_coll *c, const qv_sparse_params *p, qv_hit *hits, size_t *n_hits)
{
    terms ts = {0};
    double *qw = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint64_t *bits = NULL, allowed = 0;
    qv_topk tk = {0};
    char why[160];
    int rc, locked = 0, slot;

    if (n_hits) *n_hits = 0;
    if (!c || !p || !hits || !n_hits) return qv_fail(QV_EINVAL, "collection, params, hits or n_hits is NULL");
    if ((rc = qv_coll_check_live(c)) != QV_OK) return rc;
    if (p->k < 1 || p->k > QV_MAX_K) return qv_fail(QV_EINVAL, "sparse search: k must be 1..%u, got %u", QV_MAX_K, p->k);
    if ((slot = qv_sparse_slot(c, p->name)) < 0) {
        if (!c->vdef.nsparse) return qv_fail(QV_EINVAL, "collection '%s' has no sparse vectors", c->name);
        return qv_fail(QV_EINVAL, "collection '%s' has no sparse vector named '%s'", c->name, p->name ? p->name : "(null)");
    }
    if (qv_sparse_vector_check(&p->query, why, sizeof why) != 0) return qv_fail(QV_EINVAL, "sparse query: %s", why);
    if (p->query.n == 0) return QV_OK;
    if (!(qw = qv_reallocarray(NULL, p->query.n, sizeof *qw))) return QV_ENOMEM;
    if ((rc = qv_lmdb_begin(c->db, 1, &txn)) != QV_OK) goto cleanup;
    pthread_rwlock_rdlock(&c->maplock);
    locked = 1;

    uint64_t nbits = c->next_iid < c->cap ? c->next_iid : c->cap;
    if (p->filter) {
        qv_search_stats fst;
        memset(&fst, 0, sizeof fst);
        if ((rc = qv_filter_allowed_cached(c, txn, p->filter, nbits, &bits, &allowed, &fst)) != QV_OK) goto cleanup;
        if (allowed == 0) goto cleanup;
    }
    double N = 0;
    if (c->vdef.sparse[slot].idf) {
        uint8_t key[8];
        MDB_val v;
        uint64_t cnt = 0;
        size_t kl = qv_sparse_key(key, c->cid, (size_t)slot, 'N');
        rc = qv_lmdb_get(txn, c->db->dbi[DBI_PINDEX], key, kl, &v);
        if (rc == QV_OK && v.mv_size == sizeof cnt) memcpy(&cnt, v.mv_data, sizeof cnt);
        else if (rc == QV_OK) rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged sparse count", c->name);
        if (rc == QV_ENOTFOUND) rc = QV_OK;
        if (rc != QV_OK) goto cleanup;
        N = (double)cnt;
    }
    if ((rc = qv_lmdb_cursor_open(txn, c->db->dbi[DBI_PINDEX], &cur)) != QV_OK) goto cleanup;
    for (uint32_t j = 0; j < p->query.n; j++) {
        size_t df = 0;
        if ((rc = read_postings(c, cur, (size_t)slot, p->query.indices[j], j, &ts, &df)) != QV_OK) goto cleanup;
        qw[j] = p->query.values[j];
        if (c->vdef.sparse[slot].idf) qw[j] *= log(1.0 + (N - (double)df + 0.5) / ((double)df + 0.5));
    }
    qsort(ts.t, ts.n, sizeof *ts.t, cmp_term);

    if ((rc = qv_topk_init(&tk, p->k)) != QV_OK) goto cleanup;
    for (size_t i = 0; i < ts.n;) {
        uint64_t iid = ts.t[i].iid;
        double score = 0;
        for (; i < ts.n && ts.t[i].iid == iid; i++) score += qw[ts.t[i].j] * (double)ts.t[i].w;
        int ok = qv_filter_slot_ok(c, bits, nbits, iid);
        if (ok) qv_topk_push(&tk, (float)-score, iid);
    }
    *n_hits = qv_filter_topk_hits(c, &tk, hits);
cleanup:
    if (locked) pthread_rwlock_unlock(&c->maplock);
    qv_lmdb_cursor_close(cur);
    qv_lmdb_abort(c->db, txn);
    qv_topk_release(&tk);
    qv_free(ts.t);
    qv_free(qw);
    qv_free(bits);
    return rc;
}
