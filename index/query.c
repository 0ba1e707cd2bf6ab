/*
 * index/query.c -- the one validation and the one exact-scan planner of searches, shared
 * by qv_index_search* (index.c), the hnsw kind (hnsw_search.c) and the collection searches
 * that scan exactly without reaching the index (storage/search.c).
 *
 * Cosine queries are normalized here, in double, into unit-length copies: the kinds then
 * rank by -dot against unit-length stored vectors and the score is the cosine as it is.
 * (Dividing the scores by ||q|| afterwards, as before, breaks for tiny queries: for
 * [1e-40, 0] ||q||^2 underflows float to 0, the scale is Inf, and every score with it;
 * the dot products themselves are float subnormals with a few bits of precision.)
 */
#include "index/index.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/distance.h"
#include "core/error.h"
#include "core/vector_check.h"

int qv_search_params_check(const qv_search_params *sp)
{
    if (!sp) return qv_fail(QV_EINVAL, "search parameters are NULL");
    if (sp->k < 1 || sp->k > QV_MAX_K) return qv_fail(QV_EINVAL, "k must be 1..%u, got %u", QV_MAX_K, sp->k);
    if (sp->ef > QV_MAX_EF) return qv_fail(QV_EINVAL, "ef must be 0..%u, got %u", QV_MAX_EF, sp->ef);
    if (sp->allow_nbits && !sp->allow_bits) return qv_fail(QV_EINVAL, "allow_nbits set but allow_bits is NULL");
    if ((unsigned)sp->rescore > QV_RESCORE_ALL) return qv_fail(QV_EINVAL, "unknown rescore mode %d", (int)sp->rescore);
    if (!(sp->oversampling == 0.0f || (sp->oversampling >= 1.0f && sp->oversampling <= QV_MAX_OVERSAMPLING)))
        return qv_fail(QV_EINVAL, "oversampling must be 0 (default) or 1..%g, got %g", (double)QV_MAX_OVERSAMPLING,
                       (double)sp->oversampling);
    if (!(sp->explore >= 0.0f && sp->explore <= QV_MAX_EXPLORE))
        return qv_fail(QV_EINVAL, "explore must be 0..%g, got %g", (double)QV_MAX_EXPLORE, (double)sp->explore);
    return QV_OK;
}

int qv_queries_prepare(qv_metric metric, size_t dim, size_t nq, const float *q, float *buf, size_t buf_floats,
                       const float **use, float **copy)
{
    char msg[128];
    size_t col = 0;
    *use = q;
    *copy = NULL;
    for (size_t i = 0; i < nq; i++) {
        int problem = qv_vector_problem(q + i * dim, dim, metric, &col);
        if (problem != QV_VEC_OK)
            return qv_fail(QV_EINVAL, "query %zu: %s", i, qv_vector_problem_text(problem, col, msg, sizeof msg));
    }
    if (metric != QV_METRIC_COSINE || nq == 0) return QV_OK;
    float *out = buf;
    if (nq * dim > buf_floats) {
        if (!(out = *copy = qv_reallocarray(NULL, nq, dim * sizeof *out))) return QV_ENOMEM;
    }
    memcpy(out, q, nq * dim * sizeof *out);
    for (size_t i = 0; i < nq; i++) qv_normalize(out + i * dim, dim);
    *use = out;
    return QV_OK;
}

/* Below this fraction of the live points passing a filter, a filtered graph walk meets
 * mostly rejected nodes: scanning the allowed ones is cheaper (both scans). Measured on
 * siftsmall (10k x 128, hnsw, 1 thread): 1000 allowed points (10%) scanned from LMDB
 * 6.6k QPS against 8.8k for the filtered walk; 100 allowed (1%) 77k QPS. */
#define EXACT_SELECTIVITY (1.0 / 33.0)

int qv_plan_exact(double allowed, double live, uint32_t k, uint32_t ef)
{
    if (allowed <= (double)k || live <= 0) return 1;
    double sel = allowed / live;
    if (sel < EXACT_SELECTIVITY) return 1;
    if (!ef) return 0;
    /* The in-memory cost model, fitted on sift-debian-100k (1 thread, ef 64 and 128,
     * selectivity 5% and 10%): the scan costs ~35 ns per accepted point (sel * n of them),
     * the filtered walk ~400 ns * ef / sel (it meets ef accepted nodes among ef / sel
     * visited). The scan wins while sel^2 * n < ~11 * ef; it was 2.3-4.5x faster at 5%
     * than the walk. */
    return sel * sel * live <= 10.0 * (double)ef || (double)ef * 8.0 >= sel * live;
}
