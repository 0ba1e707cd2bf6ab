/*
 * gpu/gpu_engine.h -- C++ host-side building blocks shared by the .cu files (private).
 *
 * Kernels are launched only from the translation unit that defines them (no relocatable
 * device code), so gpu_kmeans.cu and gpu_ivf.cu reach the selection and GEMM tiling of
 * gpu_knn.cu through these host functions. All of them run on the context's stream,
 * expect the caller to hold the device lock, and return QV_OK or a QV_E* code.
 *
 * The running "best" list of a query is k packed 64-bit entries, ascending:
 * (order-preserving bits of the float distance) << 32 | row, ~0 = empty. Comparing the
 * packed values orders by distance, then by row, so ties go to the smaller row without
 * extra work, and a merge never needs to look at the two halves separately.
 */
#ifndef QV_GPU_GPU_ENGINE_H
#define QV_GPU_GPU_ENGINE_H

#include "gpu/gpu_internal.h"

#ifndef QV_GPU_EMU
#include <cuda_fp16.h>
#define QV_LAUNCH(kernel, grid, block, stream, ...) kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__)
#endif

extern "C" {
#include "core/alloc.h"
#include "core/error.h"
}

typedef unsigned long long qv_u64;
#define QV_GPU_EMPTY (~0ull)
#define QV_GPU_MAX_ROWS 0xFFFFFFFEull  /* rows are 32-bit in the packed entries; ~0u is free */

/* A database as the tiling loop sees it: resident on the device, or in host memory. */
typedef struct {
    size_t n, dim;
    const float *x;                /* device n*dim, or NULL in host mode */
    const __half *xh;              /* device fp16 copy (FP16 math) or NULL */
    const float *xn;               /* device squared norms (l2) or NULL */
    const float *host;             /* host n*dim in host mode, else NULL */
} qv_gpu_db;

/* How one call is cut: database tiles of nt rows, GEMMs of nqb queries, nqc queries
 * resident at once. bytes = what the call allocates. */
typedef struct {
    size_t nt, nqb, nqc, bytes;
} qv_gpu_tiling;

/* Device buffers of one call (sized by the tiling). */
typedef struct {
    float *q;                      /* nqc*dim queries */
    __half *qh;                    /* nqc*dim fp16 queries (FP16) */
    float *qn;                     /* nqc query norms (l2) */
    qv_u64 *best;                  /* nqc*k running best */
    float *d;                      /* nqb*nt distance tile */
    float *sx, *sn;                /* host mode: staged tile and its norms */
    __half *sh;                    /* host mode, FP16: staged fp16 tile */
} qv_gpu_ws;

/** Choose the tiling for n database rows and nq queries within the device budget.
 *  extra_per_query: bytes the caller adds per resident query. */
int qv_gpu__plan(size_t n, size_t dim, size_t nq, size_t k, int fp16, int host_mode,
                 size_t extra_per_query, const qv_gpu_options *o, qv_gpu_tiling *t);
/** Allocate / free the workspace of a tiling (free accepts a zeroed or partial ws). */
int  qv_gpu__ws_alloc(const qv_gpu_tiling *t, size_t dim, size_t k, int fp16, int l2,
                      int host_mode, qv_gpu_ws *ws);
void qv_gpu__ws_free(qv_gpu_ws *ws);
/** Upload nqc queries (host) into ws: vectors, norms (l2), fp16 copies. */
int qv_gpu__load_queries(qv_gpu_ctx *c, const float *q, size_t nqc, size_t dim, int fp16,
                         int l2, qv_gpu_ws *ws);
/** ws->best[0..nqc*k) = the k best rows of db for each resident query (GEMM tiles +
 *  selection). gemms (may be NULL) counts GEMM calls. */
int qv_gpu__knn_chunk(qv_gpu_ctx *c, const qv_gpu_db *db, qv_metric m, qv_gpu_math math,
                      const qv_gpu_tiling *t, qv_gpu_ws *ws, size_t nqc, size_t k,
                      unsigned flags, size_t *gemms);

/** The whole search of nq host queries against db: chunks, tiles, selection, results
 *  copied to host dist/rows (nq*k). The lock is held by the caller. */
int qv_gpu__knn_db(qv_gpu_ctx *c, const qv_gpu_db *db, qv_metric metric, const qv_gpu_options *o,
                   size_t nq, const float *q, size_t k, float *dist, int64_t *rows,
                   unsigned flags, qv_gpu_plan *plan);

/* One selection step over rows of a distance matrix (see select_kernel in gpu_knn.cu). */
typedef struct {
    const float *d;                /* row r at d + r*ld */
    size_t ld;
    const unsigned *ids;           /* same layout as d, or NULL: id = id0 + column */
    unsigned id0;
    const float *add;              /* per-column addend (||x||^2), or NULL */
    const int *len_of;             /* per-row length, or NULL: len */
    int len;
    int k;
    qv_u64 *best;                  /* row r at best + r*k; every id offered here must be
                                    * larger than the ids already in best (tiles in order),
                                    * or best must be empty */
} qv_gpu_sel;
int qv_gpu__select(qv_gpu_ctx *c, const qv_gpu_sel *a, size_t nrows);
/** Decode best (nq*k) into dist / rows on the device; qn (may be NULL) is added per
 *  query, and l2 distances are clamped at 0. */
int qv_gpu__finalize(qv_gpu_ctx *c, const qv_u64 *best, size_t nq, size_t k, const float *qn,
                     int l2, float *dist, int64_t *rows);
/** out[i] = ||x_i||^2 for n rows of x (device). */
int qv_gpu__norms(qv_gpu_ctx *c, const float *x, size_t n, size_t dim, float *out);
/** Device float -> fp16 copy of count values. */
int qv_gpu__to_half(qv_gpu_ctx *c, const float *x, size_t count, __half *out);

/** cudaMalloc of count elements with an overflow check. */
template <class T> static inline cudaError_t qv_dalloc(T **p, size_t count)
{
    *p = NULL;
    if (count == 0) count = 1;
    if (count > (size_t)-1 / sizeof(T)) return cudaErrorMemoryAllocation;
    return cudaMalloc((void **)p, count * sizeof(T));
}
template <class T> static inline void qv_dfree(T **p)
{
    if (*p) (void)cudaFree((void *)*p);
    *p = NULL;
}

#endif
