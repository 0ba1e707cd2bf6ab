/*
 * storage/search.c -- qv_search, qv_search_batch, qv_search_ex: searches of a collection,
 * with or without a payload filter.
 *
 * Searches run on the in-memory index under c->maplock held shared (never wmutex, so a
 * long write does not block them) and map internal ids back to external ones. A caller's
 * own filter (accept callback, allow_bits) is over external ids, so it is wrapped in an
 * accept callback over internal ids.
 *
 * With a payload filter, a read txn is begun first (lock order envlock -> maplock), the
 * planner (filter_plan.c) builds the exact set of allowed internal ids (or copies it from
 * the collection's cache of recent filters when nothing was written since), and then:
 *   - few allowed points (at most k, or under 1/33 of the live ones: qv_plan_exact, the
 *     planner hnsw uses too): an exact scan of just those, reading their vectors from
 *     LMDB -- exact for every index kind, and cheaper than any graph walk or list probe
 *     at that selectivity;
 *   - otherwise the index searches with the set as allow_bits (HNSW walks through rejected
 *     nodes and keeps only allowed ones; IVF extends its probe until k pass).
 * A caller's sp->exact takes the first branch for any selectivity, and without a filter
 * scans every live point: an exact answer whatever the index kind.
 * The txn and the in-memory index are not one snapshot: a search concurrent with an upsert
 * that replaces a point's payload may pair either payload with either vector.
 */
#include "storage/filter.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/distance.h"
#include "core/error.h"
#include "core/topk.h"
#include "index/index.h"

static int is_live(const qv_coll *c, uint64_t iid)
{
    return iid < c->cap && (c->live[iid / 64] >> (iid % 64) & 1);
}

typedef struct {
    const qv_coll *c;
    const qv_search_params *user;
} filter_arg;

/* Runs inside the index search, with c->maplock held shared by the searching call. */
static int accept_internal(uint64_t iid, void *arg)
{
    const filter_arg *f = arg;
    if (!is_live(f->c, iid)) return 0;
    uint64_t ext = f->c->ext_of[iid];
    const qv_search_params *u = f->user;
    if (u->allow_bits && !(ext < u->allow_nbits && (u->allow_bits[ext / 64] >> (ext % 64) & 1))) return 0;
    if (u->accept && !u->accept(ext, u->accept_arg)) return 0;
    return 1;
}

/* Map one row of hits to external ids, dropping any that died meanwhile. */
static void map_hits(const qv_coll *c, qv_hit *hits, size_t *n)
{
    size_t m = 0;
    for (size_t i = 0; i < *n; i++)
        if (is_live(c, hits[i].id)) {
            hits[m].id = c->ext_of[hits[i].id];
            hits[m++].score = hits[i].score;
        }
    *n = m;
}

static void wrap_params(const qv_coll *c, const qv_search_params *sp, qv_search_params *out, filter_arg *f)
{
    *out = *sp;
    out->filter = NULL;
    if (sp->accept || sp->allow_bits || sp->allow_nbits) {
        f->c = c;
        f->user = sp;
        out->accept = accept_internal;
        out->accept_arg = f;
        out->allow_bits = NULL;
        out->allow_nbits = 0;
    }
}

/* Exact top-k of every query over the allowed internal ids, vectors read from LMDB.
 * queries: checked and, for cosine, unit length (qv_queries_prepare); scores as the index
 * gives them (cosine: stored vectors normalized as the index does, or stored unit already:
 * point_rec.c). */
static int exact_scan(qv_coll *c, MDB_txn *txn, size_t nq, const float *queries, const qv_search_params *sp,
                      const uint64_t *bits, uint64_t nbits, qv_hit *hits, size_t *n_hits)
{
    size_t dim = c->params.dim, k = sp->k, nwords = (size_t)((nbits + 63) / 64);
    qv_metric metric = c->params.metric;
    qv_dist_fn dist = qv_metric_dist_fn(metric);
    qv_topk *tk = NULL;
    qv_pair *store = NULL;
    float *v = NULL;
    filter_arg fa = {c, sp};
    int user = sp->accept || sp->allow_bits, unit = qv_point_rec_keeps_unit(c), rc = QV_OK;

    if (!(tk = qv_calloc(nq, sizeof *tk)) || !(store = qv_reallocarray(NULL, nq * k, sizeof *store)) ||
        !(v = qv_aligned_calloc(dim, sizeof *v))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < nq; i++) qv_topk_init_with(&tk[i], store + i * k, k);
    for (size_t w = 0; w < nwords; w++)
        for (uint64_t m = bits[w]; m; m &= m - 1) {
            uint64_t iid = w * 64 + (uint64_t)__builtin_ctzll(m);
            uint8_t key[12];
            MDB_val val;
            if (user && !accept_internal(iid, &fa)) continue;
            qv_ckey(key, c->cid, iid);
            rc = qv_lmdb_get(txn, c->db->dbi[DBI_POINTS], key, 12, &val);
            if (rc == QV_ENOTFOUND) continue;          /* deleted after the in-memory view */
            if (rc != QV_OK) goto cleanup;
            if (val.mv_size != qv_point_rec_size(c)) {
                rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged point record", c->name);
                goto cleanup;
            }
            memcpy(v, (const uint8_t *)val.mv_data + 8, dim * sizeof(float));
            if (metric == QV_METRIC_COSINE && !unit) qv_normalize(v, dim);
            for (size_t i = 0; i < nq; i++) qv_topk_push(&tk[i], dist(queries + i * dim, v, dim), iid);
        }
    for (size_t i = 0; i < nq; i++) {
        size_t n = qv_topk_sort(&tk[i]);
        for (size_t j = 0; j < n; j++) {
            hits[i * k + j].id = tk[i].items[j].id;
            hits[i * k + j].score = qv_score_from_dist(metric, tk[i].items[j].dist);
        }
        n_hits[i] = n;
        map_hits(c, hits + i * k, &n_hits[i]);
    }
cleanup:
    qv_free(tk);
    qv_free(store);
    qv_free(v);
    return rc;
}

int qv_search_ex(qv_coll *c, size_t nq, const float *queries, const qv_search_params *sp, qv_hit *hits,
                 size_t *n_hits, qv_search_stats *stats)
{
    qv_search_params p;
    qv_search_stats dummy;
    filter_arg f;
    MDB_txn *txn = NULL;
    uint64_t *bits = NULL, allowed = 0;
    float *qcopy = NULL;
    int rc, locked = 0;

    if (!stats) stats = &dummy;
    memset(stats, 0, sizeof *stats);
    stats->plan = "none";
    if (!c || !sp || (nq && (!queries || !hits || !n_hits)))
        return qv_fail(QV_EINVAL, "collection, queries, params, hits or n_hits is NULL");
    if (nq == 0) return QV_OK;
    memset(n_hits, 0, nq * sizeof *n_hits);
    if (sp->allow_nbits && !sp->allow_bits) return qv_fail(QV_EINVAL, "allow_nbits set but allow_bits is NULL");
    if ((rc = qv_coll_check_live(c)) != QV_OK) return rc;
    if ((rc = qv_coll_ensure_index(c)) != QV_OK) return rc;
    wrap_params(c, sp, &p, &f);
    /* An on_disk collection's index re-scores with vectors read from LMDB (vec_source.c):
     * it reads them in this txn, begun before maplock like a filter's. Off: as before. */
    int reads = qv_coll_reads_vectors(c), lent = 0;
    if (reads) {
        if ((rc = qv_lmdb_read_begin(c->db, &txn)) != QV_OK) return rc;   /* a pooled txn */
    } else if ((sp->filter || sp->exact) && (rc = qv_lmdb_begin(c->db, 1, &txn)) != QV_OK) {
        return rc;
    }
    if (reads) lent = qv_vec_session_lend(c, txn);
    pthread_rwlock_rdlock(&c->maplock);
    locked = 1;
    stats->live = c->count;
    stats->allowed = c->count;
    uint64_t nbits = c->next_iid < c->cap ? c->next_iid : c->cap;
    if (sp->filter) {
        if ((rc = qv_filter_allowed_cached(c, txn, sp->filter, nbits, &bits, &allowed, stats)) != QV_OK) goto cleanup;
        stats->allowed = allowed;
    }
    if (sp->exact || (sp->filter && qv_plan_exact((double)allowed, (double)c->count, sp->k, 0))) {
        const float *q;
        stats->plan = "exact";
        if ((rc = qv_search_params_check(sp)) != QV_OK ||
            (rc = qv_queries_prepare(c->params.metric, c->params.dim, nq, queries, NULL, 0, &q, &qcopy)) != QV_OK)
            goto cleanup;
        /* without a filter, every live point (the live bitset, read under maplock) */
        rc = exact_scan(c, txn, nq, q, sp, bits ? bits : c->live, nbits, hits, n_hits);
        goto cleanup;
    }
    if (sp->filter) {
        stats->plan = "index";
        p.allow_bits = bits;
        p.allow_nbits = nbits;
    }
    rc = QV_OK;
    if (nq == 1 || reads) {
        /* With vectors from LMDB, every query in this thread and its txn: pool workers
         * would each begin a txn of their own while this one holds envlock, and stall
         * behind a map resize that waits for it. */
        for (size_t i = 0; i < nq && rc == QV_OK; i++) {
            rc = qv_index_search(c->ix, queries + i * c->params.dim, &p, hits + i * sp->k, &n_hits[i]);
            if (rc == QV_OK) map_hits(c, hits + i * sp->k, &n_hits[i]);
        }
    } else {
        rc = qv_index_search_batch(c->ix, nq, queries, &p, hits, n_hits);
        if (rc == QV_OK)
            for (size_t i = 0; i < nq; i++) map_hits(c, hits + i * sp->k, &n_hits[i]);
    }
cleanup:
    if (rc != QV_OK) memset(n_hits, 0, nq * sizeof *n_hits);
    if (locked) pthread_rwlock_unlock(&c->maplock);
    if (lent) qv_vec_session_return();
    if (reads) qv_lmdb_read_end(c->db, txn);
    else qv_lmdb_abort(c->db, txn);
    qv_free(bits);
    qv_free(qcopy);
    return rc;
}

int qv_search(qv_coll *c, const float *query, const qv_search_params *sp, qv_hit *hits, size_t *n_hits)
{
    if (n_hits) *n_hits = 0;
    if (!c || !query || !sp || !hits || !n_hits) return qv_fail(QV_EINVAL, "collection, query, params, hits or n_hits is NULL");
    return qv_search_ex(c, 1, query, sp, hits, n_hits, NULL);
}

int qv_search_batch(qv_coll *c, size_t nq, const float *queries, const qv_search_params *sp, qv_hit *hits,
                    size_t *n_hits)
{
    return qv_search_ex(c, nq, queries, sp, hits, n_hits, NULL);
}
