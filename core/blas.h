/*
 * core/blas.h -- GEMM-based batch distances on the CPU (the only user of cblas.h is
 * core/blas.c).
 *
 * qv_blas_knn computes, for each of nq queries, the k nearest of n database rows with
 * dist = ||q||^2 - 2 q.x + ||x||^2 (l2) or -q.x (ip/cosine), tiling queries x database so
 * the scratch stays bounded (a few MiB) whatever nq and n are, and folding each tile into
 * per-query top-k heaps (the nq x n matrix is never materialised).
 */
#ifndef QV_CORE_BLAS_H
#define QV_CORE_BLAS_H

#include <stddef.h>
#include <stdint.h>

#include "quiver.h"
#include "core/pool.h"

typedef struct {
    const float *x;                /* n*dim database rows (row-major) */
    const float *x_norms;          /* n squared norms (l2 only; NULL = computed per tile) */
    size_t n, dim;
    qv_metric metric;
    /* Optional: row i is a candidate only if live == NULL or bit i of live is set, and
     * accept(ids[i]) passes. ids == NULL means id = row index. */
    const uint64_t *ids;
    const uint64_t *live_bits;     /* bitset over rows */
    const uint64_t *allow_bits; uint64_t allow_nbits;   /* bitset over ids */
    qv_accept_fn accept; void *accept_arg;
} qv_blas_db;

/**
 * k nearest rows for nq queries. out_dist/out_ids: nq*k, ascending per query; rows with
 * fewer than k candidates are padded with dist = +INF, id = UINT64_MAX, and n_found[i]
 * (may be NULL) says how many are real. pool may be NULL (single thread).
 * @return QV_OK, QV_ENOMEM.
 */
int qv_blas_knn(const qv_blas_db *db, const float *q, size_t nq, size_t k, qv_pool *pool,
                float *out_dist, uint64_t *out_ids, size_t *n_found);

/** C[m x n] = alpha * A[m x k] * B[n x k]^T + beta * C (row-major), through cblas_sgemm. */
void qv_sgemm_nt(size_t m, size_t n, size_t k, float alpha, const float *A, const float *B,
                 float beta, float *C);
/** Limit BLAS to `threads` threads for the calling scope (0 = leave as is). */
void qv_blas_set_threads(unsigned threads);
/** Name of the BLAS library in use (e.g. "OpenBLAS 0.3.21 ... Haswell"), for reports. */
const char *qv_blas_name(void);

#endif
