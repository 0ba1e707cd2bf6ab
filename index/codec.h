/*
 * index/codec.h -- vector codes that an index searches on, trained per index (private).
 *
 * A codec turns a float vector into a fixed-size row of `row_bytes` bytes (the code, then
 * a few float factors), and a query into a prepared form against which the distance to
 * any row is estimated with the integer kernels of core/code_dist.h. Estimates are in the
 * index's distance units (l2: squared distance; ip / cosine: -dot), so they mix with exact
 * distances in one heap. Kinds:
 *
 *   sq8, sq4 (codec_sq.c): per-dimension scalar quantization to 256 or 16 levels over a
 *     range taken from quantiles of a training sample (outliers are clamped rather than
 *     stretching every step). Query side: int8 weights, so one distance is one integer dot
 *     product (VPDPBUSD on AVX-512 VNNI).
 *   bit1 (codec_rabitq.c): 1-bit RaBitQ (Gao & Long, arXiv 2405.12497): the residual to
 *     the nearest of up to 64 k-means centroids, randomly rotated (core/rotation.h), keeps
 *     one sign bit per dimension plus a few factors; the query is rotated and quantized to
 *     4 bits once, and the distance comes from the paper's unbiased inner-product
 *     estimator, with an error bound (qv_codec_bound). A second stage (ex rows, kept by
 *     the caller apart from the rows the walk reads): the same rotated residual quantized
 *     to 4 bits per dimension (8 under QV_RABITQ_EX4_MIN_DIM) over its own range, whose
 *     estimate is ~5x (~80x) tighter; it decides which candidates still need their float
 *     vector (qv_codec_ex_est).
 *
 * Rows are 4-byte aligned in size; callers store them 64-byte aligned for the SIMD loads.
 * A codec is immutable once trained: readers share it without locks, and retraining
 * means building a new codec and re-encoding every row (the index swaps both under its
 * own lock).
 */
#ifndef QV_INDEX_CODEC_H
#define QV_INDEX_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "quiver.h"
#include "core/code_dist.h"
#include "core/rotation.h"
#include "core/serial.h"

/* Largest dimension of 1-bit codes: a row stores its popcount (up to the padded
 * dimension) in 16 bits. */
#define QV_BIT1_MAX_DIM 65472u

/* Most centroids 1-bit codes are taken against. */
#define QV_RABITQ_MAX_CLUSTERS 64u

/* Confidence multiplier of the RaBitQ error bound (the paper's epsilon_0 = 1.9: the
 * estimate falls outside the bound with probability well under 1%). */
#define QV_RABITQ_EPS0 1.9f

/* Ex rows are 4 bits per dimension from this many dimensions on, 8 below (codec_rabitq.c
 * says why: the same speed, half the memory at 784-d; at 384-d less recall for less gain). */
#define QV_RABITQ_EX4_MIN_DIM 512u

/* Confidence multipliers of the second stage's bound (codec_rabitq.c): its error is a sum
 * of hundreds of independent rounding errors, close to normal (3 standard deviations leave
 * ~0.2% of pairs outside on random data, test_ex_estimates_vs_double). At 4 bits the
 * clamped extremes lengthen its tail: on fashion-mnist-784 (bit1 M12, ef 16-48, 3
 * alternated runs, 2026-12-05) 3.0 lost 0.0003-0.0007 recall@10 against the 8-bit rows at
 * 3.0, 3.5 lost 0.0001-0.0002 at the same QPS (bench/RESULTS.md). */
#define QV_RABITQ_EX_EPS8 3.0f
#define QV_RABITQ_EX_EPS4 3.5f

typedef struct qv_codec {
    qv_quant kind;
    qv_metric metric;              /* l2 or ip (cosine vectors arrive normalized: ip) */
    uint32_t dim;
    size_t code_bytes;             /* the code part of a row */
    size_t row_bytes;              /* code, padded to 4, then the factors */
    size_t ex_bytes;               /* bit1: an ex row (second stage), 64-byte multiple */
    size_t ex_code_bytes;          /* bit1: its code part, before the factors */
    uint32_t ex_bits;              /* bit1: 4 or 8 bits per dimension (QV_RABITQ_EX4_MIN_DIM) */
    float ex_eps;                  /* bit1: QV_RABITQ_EX_EPS4 or _EPS8 */
    size_t query_bytes;            /* scratch a prepared query needs (qv_codec_query) */
    size_t trained_on;             /* vectors in the training sample */
    uint64_t seed;                 /* of the bit1 rotation */
    const qv_code_kernels *k;
    /* sq8 / sq4 */
    float *lo, *step;              /* dim each: value = lo + step * code */
    float *zero;                   /* dim zeros (the ip query needs no shift) */
    size_t row_read;               /* bytes of a row an estimate reads: all but an sq row's
                                      f0 under ip, where it is 0 (codec_sq.c) */
    /* bit1 */
    float *centroid;               /* dim: c0, the training mean */
    uint32_t nclusters;            /* K centroids codes are taken against (1..MAX) */
    float *centers;                /* MAX x dim: c_j */
    float *pcenters;               /* MAX x dpad: P(c_j - c0) */
    uint16_t *pcenters16;          /* the same in binary16, each row times a power of two
                                      that puts its largest coordinate in [2^14, 2^15): the
                                      query's centroid terms read these */
    float *unscale16;              /* MAX: the inverse of row j's power of two */
    float *pnorms, *c0dot;         /* MAX each: |P(c_j - c0)|^2, <c0, c_j - c0> */
    qv_rotation rot;
} qv_codec;

/* A prepared query: the header of the caller's query buffer (query_bytes long, 64-byte
 * aligned), followed by the kind's own data. Estimates:
 *   sq:   est = a + f0(row) - gamma * dot(code, w)
 *   bit1: est = a_j + f0 - f1 * (2 * (lo * pop + delta * dot_bits(code, planes)) - qsum - g)
 *         with a_j per centroid j (after the planes in data), computed when a code of
 *         centroid j is first met (a walk meets a few of the 64), so estimates write to
 *         the prepared query: it belongs to one thread. */
typedef struct {
    float a, gamma;                /* query constant; scale of the integer dot */
    float lo, delta, qsum, qnorm;  /* bit1: 4-bit query range, sum of rotated query, ||q - c0|| */
    float qc0;                     /* bit1, ip: <q, c0> */
    size_t words;                  /* bit1: 64-bit words per plane */
    uint64_t have;                 /* bit1: centroids whose a_j is computed (lazily) */
    const qv_codec *codec;         /* bit1: for the lazy a_j */
    void *data;                    /* int8 weights (sq) or 4 bit planes (bit1) */
} qv_codec_query;

/** Create an untrained codec. seed fixes the RaBitQ rotation. @return QV_OK, QV_EINVAL
 *  (kind none or unknown), QV_ENOMEM. */
int  qv_codec_new(qv_quant kind, uint32_t dim, qv_metric metric, uint64_t seed, qv_codec **out);
void qv_codec_free(qv_codec *c);
/** Fit the codec's ranges / centroid to n vectors (all of them, or an even sample of at
 *  most QV_CODEC_TRAIN_MAX). n may be 0 (ranges then fit nothing: retrain later). */
#define QV_CODEC_TRAIN_MAX 65536u
int  qv_codec_train(qv_codec *c, size_t n, const float *vecs);
/** Floats of scratch that encode and query_prepare need (the rotation of bit1). */
size_t qv_codec_scratch_floats(const qv_codec *c);
/** Encode one vector into row (row_bytes, fully written: padding zeroed). */
void qv_codec_encode(const qv_codec *c, const float *v, uint8_t *row, float *scratch);

/* sq rows: the factors after the code, at a 4-byte boundary (f0 first; codec_sq.c). */
static inline const float *qv_codec_sq_factors(const qv_codec *c, const uint8_t *row)
{
    return (const float *)(row + ((c->code_bytes + 3) & ~(size_t)3));
}
/** The same, and for bit1 its ex row too (ex_bytes) when exrow is not NULL. */
void qv_codec_encode_ex(const qv_codec *c, const float *v, uint8_t *row, uint8_t *exrow, float *scratch);
/** bit1: the second-stage estimate from an ex row, and in *bound its error bound
 *  (ex_eps standard deviations). */
float qv_codec_ex_est(const qv_codec *c, qv_codec_query *q, const uint8_t *exrow, float *bound);
/** Prepare q into buf (query_bytes, 64-byte aligned); *out points into buf. */
void qv_codec_query_prepare(const qv_codec *c, const float *q, void *buf, float *scratch,
                            qv_codec_query **out);
/** Estimated distance from the prepared query to one row / four rows. */
float qv_codec_est(const qv_codec *c, qv_codec_query *q, const uint8_t *row);
void  qv_codec_est_x4(const qv_codec *c, qv_codec_query *q, const uint8_t *const rows[4], float out[4]);
/** bit1: a bound on |estimate - true distance| that holds with high probability
 *  (QV_RABITQ_EPS0); other kinds: 0 (no bound known). */
float qv_codec_bound(const qv_codec *c, qv_codec_query *q, const uint8_t *row);
/** Four estimates and their bounds at once (the walk's explore: est - explore x bound). */
void  qv_codec_est_bound_x4(const qv_codec *c, qv_codec_query *q, const uint8_t *const rows[4], float est[4],
                            float bound[4]);
/** bit1 only: eight at once, what two qv_codec_est_bound_x4 calls give (bound NULL: the
 *  estimates only), the eight rows counted in one kernel call. */
void  qv_codec_est_bound_x8(const qv_codec *c, qv_codec_query *q, const uint8_t *const rows[8], float est[8],
                            float bound[8]);
/** Bytes held by the codec itself (not counting rows). */
size_t qv_codec_memory(const qv_codec *c);
/** Whether a stored row can be estimated against safely: finite factors and, for bit1, a
 *  centroid the codec has (a row read from a file rather than encoded here). */
int   qv_codec_row_ok(const qv_codec *c, const uint8_t *row);
/** The same for a bit1 ex row: finite factors, a range step and error factor >= 0, a
 *  centroid the codec has. */
int   qv_codec_ex_row_ok(const qv_codec *c, const uint8_t *exrow);

/** Trained parameters to/from a file body (rows are the index's: re-encoded from the
 *  vectors on load, or stored and checked, index/hnsw_io.c). Load validates everything
 *  (QV_ECORRUPT). */
int  qv_codec_save(const qv_codec *c, qv_writer *w);
int  qv_codec_load(qv_codec *c, qv_reader *r);

/** x[0..n) rounded to int8 into out with scale s = max |x| / 127; returns s (0 for a
 *  zero vector). The query side of the integer kernels (sq, bit1's 4-bit ex rows). */
float qv_codec_round_i8(const float *x, uint32_t n, int8_t *out);

/* ---- per kind (codec_sq.c, codec_rabitq.c) ---- */
int   qv_codec_sq_setup(qv_codec *c);
int   qv_codec_sq_train(qv_codec *c, size_t n, const float *vecs, size_t stride_rows);
void  qv_codec_sq_encode(const qv_codec *c, const float *v, uint8_t *row);
void  qv_codec_sq_prepare(const qv_codec *c, const float *q, qv_codec_query *out, float *scratch);
int   qv_codec_rabitq_setup(qv_codec *c, uint64_t seed);
int   qv_codec_rabitq_train(qv_codec *c, size_t n, const float *vecs, size_t stride_rows);
int   qv_codec_rabitq_derive(qv_codec *c);
/** Fill a_j and |q - c_j| of a prepared bit1 query for centroid j. */
void  qv_codec_rabitq_centroid(qv_codec_query *q, uint32_t j);
/* Layout of a prepared bit1 query's data: 4 planes, a_j[MAX], |q - c_j|[MAX], qr[dpad],
 * then (below) qi[dpad] and its three terms. */
static inline float *rabitq_aj(qv_codec_query *q) { return (float *)((uint8_t *)q->data + 4 * q->words * 8); }
static inline float *rabitq_qr(const qv_codec *c, qv_codec_query *q)
{
    (void)c;
    return rabitq_aj(q) + 2 * QV_RABITQ_MAX_CLUSTERS;
}
/* After qr, for 4-bit ex rows: qr rounded to int8 (qi[dpad]), then three floats: its
 * scale, the correction for the rounding's sum, and the rounding's error factor
 * (codec_rabitq.c, qv_codec_ex_est). */
static inline int8_t *rabitq_qi(const qv_codec *c, qv_codec_query *q)
{
    return (int8_t *)(rabitq_qr(c, q) + c->rot.dpad);
}
static inline float *rabitq_qi_terms(const qv_codec *c, qv_codec_query *q)
{
    return (float *)(rabitq_qi(c, q) + c->rot.dpad);
}
void  qv_codec_rabitq_encode(const qv_codec *c, const float *v, uint8_t *row, uint8_t *exrow, float *scratch);
void  qv_codec_rabitq_prepare(const qv_codec *c, const float *q, qv_codec_query *out, float *scratch);

#endif
