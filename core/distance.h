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
#include <stdint.h>

#include "quiver.h"

typedef float (*qv_dist_fn)(const float *a, const float *b, size_t dim);
/* A float query against a row of u8 values (qv_vec_type QV_VEC_U8). */
typedef float (*qv_dist_u8_fn)(const float *a, const uint8_t *b, size_t dim);
/* A float query against a row of IEEE half-precision values (qv_vec_type QV_VEC_F16). */
typedef float (*qv_dist_f16_fn)(const float *a, const uint16_t *b, size_t dim);
/* A float query against a stored row of either element type (an index picks one pair for
 * its vec_type with qv_row_kernels and calls through it). */
typedef float (*qv_row_dist_fn)(const float *a, const void *row, size_t dim);
typedef void (*qv_row_dist_x4_fn)(const float *a, const void *const rows[4], size_t dim, float out[4]);

typedef struct {
    const char *name;              /* "scalar", "avx2", "avx512" */
    qv_dist_fn l2sq;               /* sum (a-b)^2 */
    qv_dist_fn dot;                /* sum a*b */
    qv_dist_fn neg_dot;            /* -sum a*b (ip/cosine distance) */
    /* Four distances at once from one query (a) to b0..b3: out[i] = l2sq or neg_dot.
     * Used by flat scans and HNSW neighbour expansion to share loads of the query. */
    void (*l2sq_x4)(const float *a, const float *const b[4], size_t dim, float out[4]);
    void (*neg_dot_x4)(const float *a, const float *const b[4], size_t dim, float out[4]);
    /* A float query against a u8 row: the values of b widened exactly, then the float
     * kernel's loop, so l2sq_u8(a, b) == l2sq(a, (float)b) in the same table. */
    qv_dist_u8_fn l2sq_u8;
    qv_dist_u8_fn neg_dot_u8;
    void (*l2sq_u8_x4)(const float *a, const uint8_t *const b[4], size_t dim, float out[4]);
    void (*neg_dot_u8_x4)(const float *a, const uint8_t *const b[4], size_t dim, float out[4]);
    /* The same for f16 rows: each half widened exactly to float, then the float loop. */
    qv_dist_f16_fn l2sq_f16;
    qv_dist_f16_fn neg_dot_f16;
    void (*l2sq_f16_x4)(const float *a, const uint16_t *const b[4], size_t dim, float out[4]);
    void (*neg_dot_f16_x4)(const float *a, const uint16_t *const b[4], size_t dim, float out[4]);
} qv_kernels;

/** The dispatched table (thread-safe, chosen once). */
const qv_kernels *qv_kernels_get(void);
/** A specific table, or NULL when this CPU lacks the instructions. */
const qv_kernels *qv_kernels_scalar(void);
const qv_kernels *qv_kernels_avx2(void);
const qv_kernels *qv_kernels_avx512(void);

/** The distance function for a metric, from the dispatched table. */
qv_dist_fn qv_metric_dist_fn(qv_metric m);
/** The row kernels of the dispatched table for a metric (l2: l2sq, else neg_dot) and an
 *  element type. */
void qv_row_kernels(qv_metric m, qv_vec_type t, qv_row_dist_fn *dist, qv_row_dist_x4_fn *dist_x4);
/** Bytes of one stored row of dim values. */
static inline size_t qv_row_bytes(qv_vec_type t, size_t dim)
{
    return t == QV_VEC_U8 ? dim : t == QV_VEC_F16 ? dim * sizeof(uint16_t) : dim * sizeof(float);
}
/** IEEE binary16 <-> float. To f16: rounded to nearest, ties to even; beyond the largest
 *  half (65504) it gives infinity (callers check with qv_f16_fits first). To float: exact. */
uint16_t qv_f16_from_float(float x);
float qv_f16_to_float(uint16_t h);
/** Whether x is finite and its half is finite too (|x| rounds to at most 65504). */
static inline int qv_f16_fits(float x) { return x > -65520.0f && x < 65520.0f; }
/** A stored row as floats (exact for both types): out = row. */
void qv_row_to_float(qv_vec_type t, const void *row, size_t dim, float *out);
/** Public score from an internal distance. */
static inline float qv_score_from_dist(qv_metric m, float d) { return m == QV_METRIC_L2 ? d : -d; }

/** Squared L2 norm. */
float qv_norm_sq(const float *a, size_t dim);
/** Scale v to unit length in place; a zero vector is left as is. */
void qv_normalize(float *v, size_t dim);
/** 1 when all dim values are finite. */
int qv_all_finite(const float *v, size_t dim);

#endif
