/*
 * core/distance.h -- distance kernels with run-time CPU dispatch.
 *
 * Inside every index a smaller distance is better:
 *   l2     -> squared Euclidean distance;
 *   ip     -> -dot(a, b);
 *   cosine -> -dot(a, b) on vectors normalized at insert (and queries normalized on entry).
 * The public score is qv_score_from_dist(): l2 keeps the distance, ip/cosine negate it.
 *
 * qv_kernels_get() picks the best table once (AVX-512F, else AVX2+FMA, else scalar) with
 * __builtin_cpu_supports; the scalar table is the reference each variant is tested against.
 * Every kernel handles any dim >= 1 (tails included). The environment variable
 * QV_KERNELS=scalar|avx2|avx512 forces a table (for tests and benchmarks).
 */
#ifndef QV_CORE_DISTANCE_H
#define QV_CORE_DISTANCE_H

#include <stddef.h>

#include "quiver.h"

typedef float (*qv_dist_fn)(const float *a, const float *b, size_t dim);

typedef struct {
    const char *name;              /* "scalar", "avx2", "avx512" */
    qv_dist_fn l2sq;               /* sum (a-b)^2 */
    qv_dist_fn dot;                /* sum a*b */
    qv_dist_fn neg_dot;            /* -sum a*b (ip/cosine distance) */
    /* Four distances at once from one query (a) to b0..b3: out[i] = l2sq or neg_dot.
     * Used by flat scans and HNSW neighbour expansion to share loads of the query. */
    void (*l2sq_x4)(const float *a, const float *const b[4], size_t dim, float out[4]);
    void (*neg_dot_x4)(const float *a, const float *const b[4], size_t dim, float out[4]);
} qv_kernels;

/** The dispatched table (thread-safe, chosen once). */
const qv_kernels *qv_kernels_get(void);
/** A specific table, or NULL when this CPU lacks the instructions. */
const qv_kernels *qv_kernels_scalar(void);
const qv_kernels *qv_kernels_avx2(void);
const qv_kernels *qv_kernels_avx512(void);

/** The distance function for a metric, from the dispatched table. */
qv_dist_fn qv_metric_dist_fn(qv_metric m);
/** Public score from an internal distance. */
static inline float qv_score_from_dist(qv_metric m, float d) { return m == QV_METRIC_L2 ? d : -d; }

/** Squared L2 norm. */
float qv_norm_sq(const float *a, size_t dim);
/** Scale v to unit length in place; a zero vector is left as is. */
void qv_normalize(float *v, size_t dim);
/** 1 when all dim values are finite. */
int qv_all_finite(const float *v, size_t dim);

#endif
