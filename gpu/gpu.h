/*
 * gpu/gpu.h -- the narrow interface between index/ and the GPU part.
 *
 * In the library these functions are gpu/gpu_loader.c's: it loads the CUDA plugin
 * (libquiver-gpu.so: gpu/gpu_cuda.c and the .cu files, see gpu/gpu_plugin.h) on the first
 * call that needs the device, and answers QV_ENODEV when there is none to load (no nvcc at
 * build time, no NVIDIA driver, QV_GPU=off, plugin missing). gpu/gpu-check.mk links the
 * CUDA files directly instead. Callers treat QV_ENODEV as "use the CPU path". Only
 * quiver.h types appear here, so index/ never sees CUDA headers.
 *
 * Conventions of every function below:
 *  - Distances use the index-internal convention (core/distance.h): smaller is better.
 *    QV_METRIC_L2 gives squared Euclidean distances; QV_METRIC_IP and QV_METRIC_COSINE
 *    give -dot(q, x). For cosine the caller stores unit-length vectors (index.c does);
 *    queries need not be normalized (ranking by -dot is the same).
 *  - Results are "rows": 0-based positions in the database the caller uploaded (the
 *    caller maps them to external ids). Each query's k results are best first; ties are
 *    broken by the smaller row, as core/topk.h does. When fewer than k rows exist the
 *    tail is row -1 with distance +INF.
 *  - Host arrays are borrowed for the call (except qv_gpu_flat_new_host, see there).
 *  - All calls on the device are serialized inside the library (one device, one stream),
 *    so every function may be called from any thread.
 *  - Errors: QV_ENODEV (not built, no device, driver missing, plugin missing, device lost), QV_ENOMEM
 *    (device memory: the message says how much was asked and free), QV_EINVAL (bad
 *    argument), QV_EINTERNAL (any other CUDA / cuBLAS failure; the CUDA error string is
 *    in qv_last_error()). After a sticky CUDA error (illegal address, launch failure)
 *    qv_gpu_probe() answers 0 from then on, so callers fall back to the CPU.
 *
 * Typical use by index/flat.c (batch search with QV_GPU_AUTO):
 *    if (qv_gpu_probe()) {
 *        if (!f->gpu) rc = qv_gpu_flat_new(dim, metric, NULL, &f->gpu), then _add(all rows);
 *        rc = qv_gpu_flat_knn(f->gpu, nq, q, k, dist, rows);
 *        if (rc == QV_OK) map rows -> ids, scores = qv_score_from_dist(metric, dist);
 *        else if (mode == QV_GPU_AUTO) fall back to the CPU path (qv_clear_error());
 *    }
 */
#ifndef QV_GPU_GPU_H
#define QV_GPU_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "quiver.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device ------------------------------------------------------------------------- */

/** 1 when built with CUDA and a device answers (probed once; 0 after a sticky CUDA error,
 *  or when the environment variable QV_GPU=off). Cheap after the first call. */
int qv_gpu_probe(void);
/** QV_OK when qv_gpu_probe() is 1, else QV_ENODEV with the reason in qv_last_error()
 *  ("no CUDA driver", "this build has no GPU support", ...). For QV_GPU_REQUIRE. */
int qv_gpu_require(void);
/* qv_gpu_available() and qv_gpu_device_name() are public, in quiver.h. */

/* ---- options ------------------------------------------------------------------------ */

typedef enum {
    QV_GPU_MATH_FP32 = 0,          /* plain SGEMM: results equal the CPU up to rounding */
    QV_GPU_MATH_TF32 = 1,          /* tensor cores, 10-bit mantissa inputs: faster, approximate */
    QV_GPU_MATH_FP16 = 2           /* fp16 copies of vectors (half the memory), fp32 accumulate */
} qv_gpu_math;

typedef struct {
    qv_gpu_math math;              /* default FP32; QV_GPU_MATH=tf32|fp16 in the environment
                                    * changes the default of qv_gpu_options_init() */
    size_t max_device_bytes;       /* cap on the workspace of one call; 0 = 3/4 of the free
                                    * device memory at call time (cudaMemGetInfo) */
    size_t tile_rows;              /* database rows per distance tile; 0 = auto (tests force
                                    * small tiles to exercise the merge across tiles) */
    size_t query_batch;            /* queries per GEMM; 0 = auto */
} qv_gpu_options;

/** Defaults (never fails, also in the stub). */
void qv_gpu_options_init(qv_gpu_options *o);

/* ---- exact search: a database of rows, top-k per query through GEMM + k-selection ---- */

typedef struct qv_gpu_flat qv_gpu_flat;

/**
 * A device-resident database (vectors, their squared norms, and fp16 copies in FP16 mode),
 * empty at first. @param o NULL = defaults (copied).
 * @return QV_OK, QV_EINVAL (dim 0 or > QV_MAX_DIM, unknown metric), QV_ENODEV, QV_ENOMEM.
 */
int  qv_gpu_flat_new(size_t dim, qv_metric metric, const qv_gpu_options *o, qv_gpu_flat **out);
/**
 * A database that stays in host memory: each knn call streams x through the device in
 * tiles sized from free device memory (for databases larger than the device). x (n*dim
 * floats) is BORROWED until qv_gpu_flat_free: the caller keeps it valid and unchanged
 * while calls run. _add/_set/_truncate answer QV_EINVAL on such a database. The rows are
 * page-locked (cudaHostRegister) until qv_gpu_flat_free where the system allows it, so
 * that each call copies them at bus speed; where it does not, calls copy them pageable.
 */
int  qv_gpu_flat_new_host(size_t dim, qv_metric metric, const qv_gpu_options *o,
                          const float *x, size_t n, qv_gpu_flat **out);
void qv_gpu_flat_free(qv_gpu_flat *g);                      /* NULL ok */
/** Append n rows (n*dim floats): they become rows size..size+n-1. All or nothing.
 *  @return QV_OK, QV_EINVAL (n too large: rows are limited to 2^32-2), QV_ENOMEM, ... */
int  qv_gpu_flat_add(qv_gpu_flat *g, size_t n, const float *x);
/** Overwrite rows row0..row0+n-1 (they must exist). For swap-remove: _set then _truncate. */
int  qv_gpu_flat_set(qv_gpu_flat *g, size_t row0, size_t n, const float *x);
/** Keep only the first n rows (n <= size). */
int  qv_gpu_flat_truncate(qv_gpu_flat *g, size_t n);
size_t qv_gpu_flat_size(const qv_gpu_flat *g);
/** Device bytes held by the database (not the per-call workspace). */
size_t qv_gpu_flat_memory(const qv_gpu_flat *g);
/**
 * k nearest rows of each of nq queries (nq*dim floats). dist and rows: nq*k each, row i
 * of the result at i*k. The nq x n distance matrix never leaves the device: it is built
 * tile by tile (SGEMM) and each tile is reduced to the k best per query on the device.
 * @param k 1..QV_MAX_K.
 * @return QV_OK, QV_EINVAL, QV_ENODEV, QV_ENOMEM, QV_EINTERNAL.
 */
int  qv_gpu_flat_knn(qv_gpu_flat *g, size_t nq, const float *q, size_t k,
                     float *dist, int64_t *rows);

/* ---- k-means (the IVF trainer) ------------------------------------------------------ */

typedef struct {
    qv_metric metric;              /* l2: Lloyd; ip/cosine: spherical (centroids normalized) */
    uint32_t iters;                /* Lloyd iterations; 0 = 20 */
    qv_gpu_options opt;
    qv_progress_fn progress;       /* "kmeans", iteration, iters; may be NULL */
    void *progress_arg;
    /* After each iteration: its number (1-based) and the objective of its assignment, as
     * *objective below. Called from the calling thread with the device lock held: it must
     * not call into gpu/. NULL = none (then the distances are copied back only when
     * needed). */
    void (*on_iteration)(uint32_t iter, double objective, void *arg);
    void *on_iteration_arg;
} qv_gpu_kmeans_params;

void qv_gpu_kmeans_params_init(qv_gpu_kmeans_params *p, qv_metric metric);
/**
 * Lloyd iterations on the device. centroids (k*dim floats) holds the initial centroids
 * on entry (the caller's k-means++ or sample) and the result on return. Each iteration
 * assigns every point to its nearest centroid (GEMM + argmin, ties to the smaller
 * centroid) and recomputes the means with integer (fixed-point) sums, so the result does
 * not depend on thread timing. An empty cluster takes the point farthest from its
 * centroid (as a new singleton), deterministically. objective (may be NULL) receives the
 * sum of distances of the last assignment (l2: squared distances; ip/cosine: sum of
 * (1 - dot), not clamped, so n - objective is the sum of the similarities).
 * @return QV_OK, QV_EINVAL (k = 0 or k > n, n >= 2^32-1), QV_ENODEV, QV_ENOMEM, QV_EINTERNAL.
 */
int  qv_gpu_kmeans(const qv_gpu_kmeans_params *p, size_t n, size_t dim, const float *x,
                   size_t k, float *centroids, double *objective);
/* The assignment alone (nearest centroid of n points) is qv_gpu_flat_knn with k = 1 on a
 * qv_gpu_flat holding the centroids. */

/* ---- IVF: coarse assignment and list scan ------------------------------------------- */

typedef struct qv_gpu_ivf qv_gpu_ivf;

/** An IVF index on the device with nlist centroids (nlist*dim floats, copied) and empty
 *  lists. */
int  qv_gpu_ivf_new(size_t dim, qv_metric metric, size_t nlist, const float *centroids,
                    const qv_gpu_options *o, qv_gpu_ivf **out);
void qv_gpu_ivf_free(qv_gpu_ivf *g);                        /* NULL ok */
/**
 * Replace the contents of all lists: list l holds rows offsets[l]..offsets[l+1]-1 of vecs
 * (offsets: nlist+1 values, offsets[0] = 0, non-decreasing; vecs: offsets[nlist]*dim
 * floats, the lists concatenated). Search results are rows of this concatenation.
 */
int  qv_gpu_ivf_set_lists(qv_gpu_ivf *g, const uint64_t *offsets, const float *vecs);
/** The nprobe nearest lists of each query (coarse assignment): lists/dist nq*nprobe. */
int  qv_gpu_ivf_probe(qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe,
                      float *dist, int64_t *lists);
/** Probe nprobe lists per query and return the k best rows of them (nq*k each). */
int  qv_gpu_ivf_search(qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe, size_t k,
                       float *dist, int64_t *rows);

#ifdef __cplusplus
}
#endif
#endif
