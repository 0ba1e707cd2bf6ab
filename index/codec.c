/*
 * index/codec.c -- what every kind of code shares: creation, training sample, dispatch of
 * encode / prepare / estimate by kind, and the saved form of the trained parameters.
 *
 * Saved form (inside an index body): u32 kind, u32 dim, u64 trained_on, then
 *   sq8 / sq4: dim x f32 lo, dim x f32 step (finite, step >= 0);
 *   bit1:      u64 rotation seed, u32 K, dim x f32 mean, K x dim x f32 centroids (finite).
 * Load compares kind and dim with the index's own and checks every value.
 */
#include "index/codec.h"

#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <xmmintrin.h>
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "core/alloc.h"
#include "core/error.h"
#include "core/simd_clones.h"

int qv_codec_new(qv_quant kind, uint32_t dim, qv_metric metric, uint64_t seed, qv_codec **out)
{
    *out = NULL;
    if (kind != QV_QUANT_SQ8 && kind != QV_QUANT_SQ4 && kind != QV_QUANT_BIT1)
        return qv_fail(QV_EINVAL, "codec: unknown code kind %d", (int)kind);
    qv_codec *c = qv_calloc(1, sizeof *c);
    if (!c) return QV_ENOMEM;
    c->kind = kind;
    c->dim = dim;
    c->metric = metric == QV_METRIC_L2 ? QV_METRIC_L2 : QV_METRIC_IP;
    c->seed = seed;
    c->k = qv_code_kernels_get();
    int rc = kind == QV_QUANT_BIT1 ? qv_codec_rabitq_setup(c, seed) : qv_codec_sq_setup(c);
    if (rc != QV_OK) {
        qv_codec_free(c);
        return rc;
    }
    *out = c;
    return QV_OK;
}

void qv_codec_free(qv_codec *c)
{
    if (!c) return;
    qv_free(c->lo);
    qv_free(c->step);
    qv_free(c->zero);
    qv_free(c->centroid);
    qv_free(c->centers);
    qv_free(c->pcenters);
    qv_free(c->pcenters16);
    qv_free(c->unscale16);
    qv_free(c->pnorms);
    qv_free(c->c0dot);
    qv_rotation_release(&c->rot);
    qv_free(c);
}

int qv_codec_train(qv_codec *c, size_t n, const float *vecs)
{
    /* An even sample: every stride-th row. */
    size_t stride = n > QV_CODEC_TRAIN_MAX ? (n + QV_CODEC_TRAIN_MAX - 1) / QV_CODEC_TRAIN_MAX : 1;
    int rc = c->kind == QV_QUANT_BIT1 ? qv_codec_rabitq_train(c, n, vecs, stride)
                                      : qv_codec_sq_train(c, n, vecs, stride);
    if (rc == QV_OK) c->trained_on = (n + stride - 1) / stride;
    return rc;
}

size_t qv_codec_scratch_floats(const qv_codec *c) { return 2 * (size_t)qv_rotation_dpad(c->dim); }

void qv_codec_encode(const qv_codec *c, const float *v, uint8_t *row, float *scratch)
{
    qv_codec_encode_ex(c, v, row, NULL, scratch);
}

void qv_codec_encode_ex(const qv_codec *c, const float *v, uint8_t *row, uint8_t *exrow, float *scratch)
{
    if (c->kind == QV_QUANT_BIT1) qv_codec_rabitq_encode(c, v, row, exrow, scratch);
    else qv_codec_sq_encode(c, v, row);
}

void qv_codec_query_prepare(const qv_codec *c, const float *q, void *buf, float *scratch,
                            qv_codec_query **out)
{
    qv_codec_query *h = buf;
    h->data = (uint8_t *)buf + 64;
    if (c->kind == QV_QUANT_BIT1) qv_codec_rabitq_prepare(c, q, h, scratch);
    else qv_codec_sq_prepare(c, q, h, scratch);
    *out = h;
}

/* x rounded to int8 with scale s = max |x| / 127 (half away from zero), returning s.
 * Plain loops the compiler vectorizes (integer max over the bits of |x|, which order like
 * the floats), in AVX-512, AVX2 and baseline clones: a query's preparation runs it once
 * (sq's weights, bit1's 4-bit ex rows); at 784-d with libm's lrintf it took 5 us, ~0.5 us
 * now. */
static inline QV_ALWAYS_INLINE float round_i8_impl(const float *restrict x, uint32_t n, int8_t *restrict out)
{
    uint32_t maxbits = 0;
    for (uint32_t d = 0; d < n; d++) {
        uint32_t b;
        memcpy(&b, &x[d], sizeof b);
        b &= 0x7fffffffu;
        maxbits = b > maxbits ? b : maxbits;
    }
    float xmax;
    memcpy(&xmax, &maxbits, sizeof xmax);
    float s = xmax > 0 ? xmax / 127.0f : 0.0f, inv = s > 0 ? 1.0f / s : 0.0f;
    for (uint32_t d = 0; d < n; d++) {
        float t = x[d] * inv;
        int v = (int)(t + (t >= 0 ? 0.5f : -0.5f));      /* |t| <= 127: in range */
        out[d] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    return s;
}
QV_CLONES(float, round_i8, (const float *restrict x, uint32_t n, int8_t *restrict out), (x, n, out))

float qv_codec_round_i8(const float *x, uint32_t n, int8_t *out) { return round_i8(x, n, out); }

/* The factors of a row start right after its code, at a 4-byte boundary. */
static inline const float *factors(const qv_codec *c, const uint8_t *row)
{
    return qv_codec_sq_factors(c, row);
}

/* An sq row's f0, read only where row_read covers it (l2; under ip it is 0). */
static inline float sq_f0(const qv_codec *c, const uint8_t *row)
{
    return c->row_read > c->code_bytes ? factors(c, row)[0] : 0.0f;
}

/* bit1 rows: f0, f1, g, f3, then u16 centroid, u16 popcount (codec_rabitq.c). */
static inline float est_bits_from(const qv_codec *c, qv_codec_query *q, const uint8_t *row, uint32_t d)
{
    const float *f = factors(c, row);
    const uint16_t *u = (const uint16_t *)(f + 4);
    uint32_t j = u[0];
    if (__builtin_expect(!((q->have >> j) & 1), 0)) qv_codec_rabitq_centroid(q, j);
    const float *aj = rabitq_aj(q);
    float sb = q->lo * (float)u[1] + q->delta * (float)d;
    return f[0] + aj[j] - f[1] * (2.0f * sb - q->qsum - f[2]);
}

static inline float est_bits(const qv_codec *c, qv_codec_query *q, const uint8_t *row)
{
    return est_bits_from(c, q, row, c->k->dot_bits((const uint64_t *)row, q->data, q->words));
}

float qv_codec_est(const qv_codec *c, qv_codec_query *q, const uint8_t *row)
{
    switch (c->kind) {
    case QV_QUANT_SQ8:
        return q->a + sq_f0(c, row) - q->gamma * (float)c->k->dot_u8(row, q->data, c->dim);
    case QV_QUANT_SQ4:
        return q->a + sq_f0(c, row) - q->gamma * (float)c->k->dot_u4(row, q->data, c->dim);
    default:
        return est_bits(c, q, row);
    }
}

/* bit1: the bound of a row whose factors are f (its centroid's |q - c_j| known). Code
 * error (the paper's bound) plus the rounding of the 4-bit query: pop values, each off by
 * at most delta / 2, as independent uniform errors (sd delta / sqrt 12). */
static inline float bound_from(qv_codec_query *q, const float *f)
{
    const uint16_t *u = (const uint16_t *)(f + 4);
    const float *nj = rabitq_aj(q) + QV_RABITQ_MAX_CLUSTERS;
    return QV_RABITQ_EPS0 * (f[3] * nj[u[0]] + 2.0f * f[1] * q->delta * sqrtf((float)u[1] / 12.0f));
}

/* bit1: the factors of n rows (f), their u16 pairs (u: centroid | popcount << 16) and
 * centroids (j), with the query's terms for any centroid not met yet computed now. */
static inline void row_factors(const qv_codec *c, qv_codec_query *q, const uint8_t *const *rows, int n,
                               const float **f, uint32_t *u, uint32_t *j)
{
    uint64_t need = 0;
    for (int t = 0; t < n; t++) {
        f[t] = factors(c, rows[t]);
        memcpy(&u[t], f[t] + 4, sizeof u[t]);
        j[t] = u[t] & 0xffffu;
        need |= 1ull << j[t];
    }
    if (__builtin_expect((need & ~q->have) != 0, 0))
        for (int t = 0; t < n; t++)
            if (!((q->have >> j[t]) & 1)) qv_codec_rabitq_centroid(q, j[t]);
}

/* bit1, four rows: est_bits_from (and bound_from where bound is not NULL) for each,
 * their factors taken as four lanes. The same operations in the same order as the
 * one-row forms, so the results are identical. Estimate and bound of a 512-d row in
 * cache, through qv_codec_est_bound_x4: 14.0 ns with one row at a time here, 13.4 with
 * the lanes, 12.3 with the kernel's joint reduction as well (bench/RESULTS.md "Session
 * 12", cheaper four-way bit1 scoring). */
static inline void est_bits_x4(const qv_codec *c, qv_codec_query *q, const uint8_t *const rows[4],
                               const uint32_t d[4], float est[4], float *bound)
{
    const float *f[4];
    uint32_t u[4], j[4];
    row_factors(c, q, rows, 4, f, u, j);
    const float *aj = rabitq_aj(q);
#ifdef __SSE2__
    __m128 f0 = _mm_loadu_ps(f[0]), f1 = _mm_loadu_ps(f[1]), g = _mm_loadu_ps(f[2]), f3 = _mm_loadu_ps(f[3]);
    _MM_TRANSPOSE4_PS(f0, f1, g, f3);
    __m128i uv = _mm_loadu_si128((const __m128i *)u);
    __m128 pop = _mm_cvtepi32_ps(_mm_srli_epi32(uv, 16));
    __m128 dv = _mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)d));   /* d < 2^31 */
    __m128 a = _mm_setr_ps(aj[j[0]], aj[j[1]], aj[j[2]], aj[j[3]]);
    __m128 sb = _mm_add_ps(_mm_mul_ps(_mm_set1_ps(q->lo), pop), _mm_mul_ps(_mm_set1_ps(q->delta), dv));
    __m128 inner = _mm_sub_ps(_mm_sub_ps(_mm_mul_ps(_mm_set1_ps(2.0f), sb), _mm_set1_ps(q->qsum)), g);
    _mm_storeu_ps(est, _mm_sub_ps(_mm_add_ps(f0, a), _mm_mul_ps(f1, inner)));
    if (!bound) return;
    const float *nj = aj + QV_RABITQ_MAX_CLUSTERS;
    __m128 n = _mm_setr_ps(nj[j[0]], nj[j[1]], nj[j[2]], nj[j[3]]);
    __m128 s = _mm_sqrt_ps(_mm_div_ps(pop, _mm_set1_ps(12.0f)));
    __m128 e = _mm_mul_ps(_mm_mul_ps(_mm_mul_ps(_mm_set1_ps(2.0f), f1), _mm_set1_ps(q->delta)), s);
    _mm_storeu_ps(bound, _mm_mul_ps(_mm_set1_ps(QV_RABITQ_EPS0), _mm_add_ps(_mm_mul_ps(f3, n), e)));
#else
    for (int t = 0; t < 4; t++) {
        est[t] = est_bits_from(c, q, rows[t], d[t]);
        if (bound) bound[t] = bound_from(q, f[t]);
    }
#endif
}

/* bit1: the four rows' popcount dots with the query's planes. */
static inline void dot_bits_x4(const qv_codec *c, const qv_codec_query *q, const uint8_t *const rows[4],
                               uint32_t dd[4])
{
    const uint64_t *b[4] = {(const uint64_t *)rows[0], (const uint64_t *)rows[1], (const uint64_t *)rows[2],
                            (const uint64_t *)rows[3]};
    c->k->dot_bits_x4(b, q->data, q->words, dd);
}

void qv_codec_est_x4(const qv_codec *c, qv_codec_query *q, const uint8_t *const rows[4], float out[4])
{
    int32_t d[4];
    switch (c->kind) {
    case QV_QUANT_SQ8:
        c->k->dot_u8_x4(rows, q->data, c->dim, d);
        break;
    case QV_QUANT_SQ4:
        c->k->dot_u4_x4(rows, q->data, c->dim, d);
        break;
    default: {
        uint32_t dd[4];
        dot_bits_x4(c, q, rows, dd);
        est_bits_x4(c, q, rows, dd, out, NULL);
        return;
    }
    }
    for (int j = 0; j < 4; j++) out[j] = q->a + sq_f0(c, rows[j]) - q->gamma * (float)d[j];
}

float qv_codec_bound(const qv_codec *c, qv_codec_query *q, const uint8_t *row)
{
    if (c->kind != QV_QUANT_BIT1) return 0.0f;
    const float *f = factors(c, row);
    const uint16_t *u = (const uint16_t *)(f + 4);
    if (!((q->have >> u[0]) & 1)) qv_codec_rabitq_centroid(q, u[0]);
    return bound_from(q, f);
}

void qv_codec_est_bound_x4(const qv_codec *c, qv_codec_query *q, const uint8_t *const rows[4], float est[4],
                           float bound[4])
{
    if (c->kind != QV_QUANT_BIT1) {
        qv_codec_est_x4(c, q, rows, est);
        for (int j = 0; j < 4; j++) bound[j] = 0.0f;
        return;
    }
    uint32_t dd[4];
    dot_bits_x4(c, q, rows, dd);
    est_bits_x4(c, q, rows, dd, est, bound);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* est_bits_x4 over eight rows in 256-bit lanes: the same operations in the same order, so
 * the same results. Rows t and t + 4 share a pair of 128-bit halves, which the in-lane
 * transpose turns into f0, f1, g, f3 for all eight. Against two est_bits_x4 calls, in the
 * bit1 walk (debian-use-512 M12 explore 1, 3 alternated rounds, 2026-12-06, bench/RESULTS.md
 * "Session 21"): +3% QPS. */
__attribute__((target("avx2"))) static void est_bits_x8_avx2(const qv_codec *c, qv_codec_query *q,
                                                             const uint8_t *const rows[8], const uint32_t d[8],
                                                             float est[8], float *bound)
{
    const float *f[8];
    uint32_t u[8], j[8];
    row_factors(c, q, rows, 8, f, u, j);
    const float *aj = rabitq_aj(q);
    __m256 r0 = _mm256_set_m128(_mm_loadu_ps(f[4]), _mm_loadu_ps(f[0]));
    __m256 r1 = _mm256_set_m128(_mm_loadu_ps(f[5]), _mm_loadu_ps(f[1]));
    __m256 r2 = _mm256_set_m128(_mm_loadu_ps(f[6]), _mm_loadu_ps(f[2]));
    __m256 r3 = _mm256_set_m128(_mm_loadu_ps(f[7]), _mm_loadu_ps(f[3]));
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 f0 = _mm256_shuffle_ps(t0, t2, 0x44), f1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 g = _mm256_shuffle_ps(t1, t3, 0x44), f3 = _mm256_shuffle_ps(t1, t3, 0xee);
    /* lanes: rows 0 1 2 3 | 4 5 6 7 */
    __m256 pop = _mm256_cvtepi32_ps(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)u), 16));
    __m256 dv = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)d));   /* d < 2^31 */
    __m256 a = _mm256_setr_ps(aj[j[0]], aj[j[1]], aj[j[2]], aj[j[3]], aj[j[4]], aj[j[5]], aj[j[6]], aj[j[7]]);
    __m256 sb = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(q->lo), pop), _mm256_mul_ps(_mm256_set1_ps(q->delta), dv));
    __m256 inner = _mm256_sub_ps(_mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), sb), _mm256_set1_ps(q->qsum)), g);
    _mm256_storeu_ps(est, _mm256_sub_ps(_mm256_add_ps(f0, a), _mm256_mul_ps(f1, inner)));
    if (!bound) return;
    const float *nj = aj + QV_RABITQ_MAX_CLUSTERS;
    __m256 n = _mm256_setr_ps(nj[j[0]], nj[j[1]], nj[j[2]], nj[j[3]], nj[j[4]], nj[j[5]], nj[j[6]], nj[j[7]]);
    __m256 s = _mm256_sqrt_ps(_mm256_div_ps(pop, _mm256_set1_ps(12.0f)));
    __m256 e = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), f1), _mm256_set1_ps(q->delta)), s);
    _mm256_storeu_ps(bound, _mm256_mul_ps(_mm256_set1_ps(QV_RABITQ_EPS0), _mm256_add_ps(_mm256_mul_ps(f3, n), e)));
}
#endif

void qv_codec_est_bound_x8(const qv_codec *c, qv_codec_query *q, const uint8_t *const rows[8], float est[8],
                           float bound[8])
{
    const uint64_t *b[8];
    uint32_t dd[8];
    for (int t = 0; t < 8; t++) b[t] = (const uint64_t *)rows[t];
    c->k->dot_bits_x8(b, q->data, q->words, dd);
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) {
        est_bits_x8_avx2(c, q, rows, dd, est, bound);
        return;
    }
#endif
    est_bits_x4(c, q, rows, dd, est, bound);
    est_bits_x4(c, q, rows + 4, dd + 4, est + 4, bound ? bound + 4 : NULL);
}

size_t qv_codec_memory(const qv_codec *c)
{
    if (!c) return 0;
    size_t b = sizeof *c;
    if (c->lo) b += 3 * (size_t)c->dim * sizeof(float);
    if (c->centroid)
        b += ((size_t)c->dim * (1 + QV_RABITQ_MAX_CLUSTERS) + (size_t)QV_ROTATION_ROUNDS * c->rot.dpad +
              (size_t)QV_RABITQ_MAX_CLUSTERS * (c->rot.dpad + 3)) * sizeof(float) +
             (size_t)QV_RABITQ_MAX_CLUSTERS * c->rot.dpad * sizeof(uint16_t);
    return b;
}

/* ---- saved form ------------------------------------------------------------------- */

static int w_floats(qv_writer *w, const float *v, size_t n)
{
    int rc = QV_OK;
    for (size_t i = 0; i < n && rc == QV_OK; i++) rc = qv_w_f32(w, v[i]);
    return rc;
}

int qv_codec_save(const qv_codec *c, qv_writer *w)
{
    qv_w_u32(w, (uint32_t)c->kind);
    qv_w_u32(w, c->dim);
    qv_w_u64(w, (uint64_t)c->trained_on);
    if (c->kind == QV_QUANT_BIT1) {
        qv_w_u64(w, c->rot.seed);
        qv_w_u32(w, c->nclusters);
        w_floats(w, c->centroid, c->dim);
        return w_floats(w, c->centers, (size_t)c->nclusters * c->dim);
    }
    w_floats(w, c->lo, c->dim);
    return w_floats(w, c->step, c->dim);
}

static int r_floats(qv_reader *r, float *v, size_t n, const char *what, int nonneg)
{
    for (size_t i = 0; i < n; i++) {
        int rc = qv_r_f32(r, &v[i], what);
        if (rc != QV_OK) return rc;
        if (!isfinite(v[i]) || (nonneg && v[i] < 0))
            return qv_r_corrupt(r, "codes: %s[%zu] is %g", what, i, (double)v[i]);
    }
    return QV_OK;
}

int qv_codec_load(qv_codec *c, qv_reader *r)
{
    uint32_t kind, dim;
    uint64_t trained;
    int rc;
    qv_r_u32(r, &kind, "code kind");
    qv_r_u32(r, &dim, "code dim");
    if ((rc = qv_r_u64(r, &trained, "code training size")) != QV_OK) return rc;
    if (kind != (uint32_t)c->kind || dim != c->dim)
        return qv_r_corrupt(r, "codes: kind %u dim %u, the index has kind %u dim %u", kind, dim,
                            (unsigned)c->kind, c->dim);
    if (trained > QV_CODEC_TRAIN_MAX)
        return qv_r_corrupt(r, "codes: training size %llu above %u", (unsigned long long)trained, QV_CODEC_TRAIN_MAX);
    c->trained_on = (size_t)trained;
    if (c->kind == QV_QUANT_BIT1) {
        uint64_t seed;
        if ((rc = qv_r_u64(r, &seed, "rotation seed")) != QV_OK) return rc;
        uint32_t K;
        if ((rc = qv_r_u32(r, &K, "centroid count")) != QV_OK) return rc;
        if (K < 1 || K > QV_RABITQ_MAX_CLUSTERS)
            return qv_r_corrupt(r, "codes: %u centroids (1..%u)", K, QV_RABITQ_MAX_CLUSTERS);
        if (seed != c->rot.seed) {
            qv_rotation_release(&c->rot);
            if ((rc = qv_rotation_init(&c->rot, c->dim, seed)) != QV_OK) return rc;
            c->seed = seed;
        }
        c->nclusters = K;
        if ((rc = r_floats(r, c->centroid, c->dim, "centroid", 0)) != QV_OK) return rc;
        if ((rc = r_floats(r, c->centers, (size_t)K * c->dim, "centroids", 0)) != QV_OK) return rc;
        return qv_codec_rabitq_derive(c);
    }
    if ((rc = r_floats(r, c->lo, c->dim, "range start", 0)) != QV_OK) return rc;
    return r_floats(r, c->step, c->dim, "step", 1);
}

int qv_codec_row_ok(const qv_codec *c, const uint8_t *row)
{
    size_t off = c->kind == QV_QUANT_BIT1 ? c->code_bytes : (c->code_bytes + 3) & ~(size_t)3;
    size_t nf = c->kind == QV_QUANT_BIT1 ? 4 : 1;
    for (size_t i = 0; i < nf; i++) {
        float f;
        memcpy(&f, row + off + i * sizeof f, sizeof f);
        if (!isfinite(f)) return 0;
    }
    if (c->kind != QV_QUANT_BIT1) return 1;
    uint16_t j;
    memcpy(&j, row + off + nf * sizeof(float), sizeof j);
    return j < c->nclusters;
}
