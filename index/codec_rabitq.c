/*
 * index/codec_rabitq.c -- 1-bit RaBitQ codes (Gao & Long, SIGMOD 2024, arXiv 2405.12497)
 * over k-means centroids, as the paper uses them inside IVF.
 *
 * Training: c0, the mean of the sample, and K centroids c_j (k-means, K up to
 * QV_RABITQ_MAX_CLUSTERS). P is the rotation of core/rotation.h, D its padded dimension.
 * A vector x is coded against its nearest centroid c = c_j: xr = P(x - c), r = |x - c|,
 * bits b_i = [xr_i > 0]. The quantized unit vector is o' = (2b - 1) / sqrt(D) and
 * eta = <o', xr / r> = sum |xr_i| / (sqrt(D) r). For a query q,
 *   <x - c, q - c> ~ r <o', P(q - c)> / eta     (the paper's unbiased estimator)
 * with an error, relative to r |q - c|, below eps0 sqrt(1 - eta^2) / (eta sqrt(D - 1)) with
 * high probability. Residuals to the nearest of many centroids are shorter than to one
 * mean, and the error shrinks with them: on fashion-mnist-784 the spread of the estimate
 * (relative to the 10th neighbour's distance) is 0.147 with one centroid, 0.077 with 16,
 * 0.062 with 64 (Python model, 200 queries).
 *
 * One rotated query serves every centroid: with qr = P(q - c0) and pc_j = P(c_j - c0),
 *   sqrt(D) <o', P(q - c_j)> = sum (2b_i - 1) qr_i - g,  g = sum (2b_i - 1) (pc_j)_i,
 * g stored per vector. sum (2b - 1) qr = 2 sum_{b=1} qr - sum qr, and the masked sum comes
 * from qr rounded to 4 bits: qr_i ~ lo + delta u_i, so
 *   sum_{b=1} qr_i ~ lo popcount(b) + delta sum_j 2^j popcount(b & plane_j).
 * Per query and centroid: |q - c_j|^2 = |qr|^2 - 2 <qr, pc_j> + |pc_j|^2 (K dot products, computed
 * when a code of centroid j is first met, against a binary16 copy of pc_j).
 *
 * Distances: l2 |x - q|^2 = r^2 + |q - c|^2 - 2 <x - c, q - c>: f0 = r^2, a_j = |q - c_j|^2,
 * f1 = 2 r / (eta sqrt(D)). ip -q.x = -q.c - c.(x - c) - <x - c, q - c>: f0 = -c.(x - c),
 * a_j = -q.c_j, f1 = r / (eta sqrt(D)).
 * Row: D / 8 bytes of bits, then f0, f1, g, f3 (floats), u16 centroid, u16 popcount, where
 * f3 = (2 or 1) r sqrt(1 - eta^2) / (eta sqrt(D - 1)) is the code's error factor.
 *
 * Second stage (ex rows). At recall 0.99 on fashion-mnist-784 a query re-scores ~28 float
 * vectors of 49 cache lines each, most of them because the 1-bit bound (~10% of
 * r |q - c|) cannot rule them out. An ex row keeps the same rotated residual xr at B bits
 * (T = 2^B - 1): u_i = clamp(round((xr_i - lo) / step), 0, T) over a range
 * [lo, lo + T step] inside [min xr, max xr], so xh = lo + step u is off by e = xr - xh. Then
 *   <x - c, q - c> ~ <xh, P(q - c_j)> = lo sum qr + step <u, qr> - <xh, pc_j>
 * (hx = <xh, pc_j> stored), one dot product of the code with the query. Its error
 * <e, P(q - c)> is a sum of D roundings, independent of the query after the random
 * rotation, with standard deviation |e| |q - c_j| / sqrt(D): at 8 bits over min..max about
 * 0.008 r |q - c_j| / sqrt(D) against the 1-bit code's ~0.75 r |q - c_j| / sqrt(D). At 4
 * bits the range is min..max shrunk about its middle by the factor (1, 0.95, .., 0.65)
 * that leaves the smallest |e|: the coordinates are near normal, the extremes few, and
 * clamping them costs less than a wider step (|e| ~0.1 r).
 * The dot product is taken in float at 8 bits (dotf_u8); at 4 bits in integers (dot_u4,
 * VNNI where the CPU has it) against qr rounded to int8, whose rounding adds a small term
 * to the bound (qv_codec_rabitq_prepare). Against the float kernel it replaced (2026-12-07,
 * bench/RESULTS.md "Session 23"): the same recall, QPS within the noise (debian-use-512
 * -1..+2%, fashion-mnist-784 -1..+4%), and every kernel table gives the same estimate.
 * B: 4 from QV_RABITQ_EX4_MIN_DIM dimensions on, else 8. Four bits halve the rows (fashion-
 * mnist-784: 896 -> 448 bytes, 14 -> 7 cache lines, search memory 69.1 -> 43.5 MiB) at
 * the same QPS (M12 -5%..+5%, M16 -1%..+5% at ef 16-48 in alternated runs; the runs move
 * ~10%) and 0.0001-0.0002 less recall@10 at the same ef. On debian-desc-384 the QPS of the
 * two could not be told apart (three locked runs: 4 bits 0.94-1.10x main; the 8-bit
 * build, identical to main there, 0.86-1.18x), 4 bits lost 0.0003-0.0004 recall, and
 * saves less (7 -> 4 lines a row, 11 MiB at 60K): below 512 dimensions the rows stay at
 * 8 bits (bench/RESULTS.md, issue #15, 2026-12-05).
 * Row: the code (D bytes, or qv_u4_bytes(D) in the core/code_dist.h u4 layout), then lo,
 * step, hx, fe = (2 or 1) |e| / sqrt(D), f0 (floats), u32 centroid, padded to 64 bytes.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/distance.h"
#include "core/error.h"
#include "core/simd_clones.h"
#include "index/codec.h"

/* Vectors per centroid wanted in the training sample. */
#define POINTS_PER_CLUSTER 512u

int qv_codec_rabitq_setup(qv_codec *c, uint64_t seed)
{
    int rc = qv_rotation_init(&c->rot, c->dim, seed);
    if (rc != QV_OK) return rc;
    size_t words = c->rot.dpad / 64;
    c->code_bytes = words * 8;
    c->row_bytes = c->code_bytes + 4 * sizeof(float) + 2 * sizeof(uint16_t);
    c->row_read = c->row_bytes;
    c->ex_bits = c->dim >= QV_RABITQ_EX4_MIN_DIM ? 4 : 8;
    c->ex_eps = c->ex_bits == 4 ? QV_RABITQ_EX_EPS4 : QV_RABITQ_EX_EPS8;
    c->ex_code_bytes = c->ex_bits == 4 ? qv_u4_bytes(c->rot.dpad) : c->rot.dpad;
    c->ex_bytes = (c->ex_code_bytes + 5 * sizeof(float) + sizeof(uint32_t) + 63) & ~(size_t)63;
    c->query_bytes = 64 + 4 * words * 8 + 2 * QV_RABITQ_MAX_CLUSTERS * sizeof(float) +
                     (size_t)c->rot.dpad * (sizeof(float) + 1) + 3 * sizeof(float);
    c->nclusters = 1;
    c->centroid = qv_calloc(c->dim, sizeof *c->centroid);
    c->centers = qv_calloc((size_t)QV_RABITQ_MAX_CLUSTERS * c->dim, sizeof *c->centers);
    c->pcenters = qv_calloc((size_t)QV_RABITQ_MAX_CLUSTERS * c->rot.dpad, sizeof *c->pcenters);
    c->pcenters16 = qv_calloc((size_t)QV_RABITQ_MAX_CLUSTERS * c->rot.dpad, sizeof *c->pcenters16);
    c->unscale16 = qv_calloc(QV_RABITQ_MAX_CLUSTERS, sizeof *c->unscale16);
    c->pnorms = qv_calloc(QV_RABITQ_MAX_CLUSTERS, sizeof *c->pnorms);
    c->c0dot = qv_calloc(QV_RABITQ_MAX_CLUSTERS, sizeof *c->c0dot);
    return c->centroid && c->centers && c->pcenters && c->pcenters16 && c->unscale16 && c->pnorms && c->c0dot
               ? QV_OK
               : QV_ENOMEM;
}

/* v[0..n) in binary16 times a power of two that puts its largest magnitude in [2^14,
 * 2^15), whatever the data's scale (no overflow past 65504, no subnormals for small
 * values); *unscale undoes it, exactly. */
static void to_f16_scaled(const float *v, size_t n, uint16_t *out, float *unscale)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
    int e = 0;
    if (m > 0 && isfinite(m)) (void)frexpf(m, &e);       /* m in [2^(e-1), 2^e) */
    for (size_t i = 0; i < n; i++) out[i] = qv_f16_from_float(ldexpf(v[i], 15 - e));
    *unscale = ldexpf(1.0f, e - 15);
}

/* pc_j = P(c_j - c0) and |pc_j|^2, from the centroids. */
int qv_codec_rabitq_derive(qv_codec *c)
{
    const qv_kernels *k = qv_kernels_get();
    float *diff = qv_malloc((size_t)c->rot.dpad * sizeof *diff);
    if (!diff) return QV_ENOMEM;
    for (uint32_t j = 0; j < c->nclusters; j++) {
        const float *cj = c->centers + (size_t)j * c->dim;
        float *pj = c->pcenters + (size_t)j * c->rot.dpad;
        for (uint32_t d = 0; d < c->dim; d++) diff[d] = cj[d] - c->centroid[d];
        qv_rotation_apply(&c->rot, diff, pj);
        c->pnorms[j] = k->dot(pj, pj, c->rot.dpad);
        to_f16_scaled(pj, c->rot.dpad, c->pcenters16 + (size_t)j * c->rot.dpad, &c->unscale16[j]);
        c->c0dot[j] = k->dot(c->centroid, diff, c->dim);
    }
    qv_free(diff);
    return QV_OK;
}

int qv_codec_rabitq_train(qv_codec *c, size_t n, const float *vecs, size_t stride)
{
    size_t m = (n + stride - 1) / stride;
    int rc;
    double *sum = qv_calloc(c->dim, sizeof *sum);
    if (!sum) return QV_ENOMEM;
    for (size_t i = 0; i < m; i++) {
        const float *v = vecs + i * stride * c->dim;
        for (uint32_t d = 0; d < c->dim; d++) sum[d] += v[d];
    }
    for (uint32_t d = 0; d < c->dim; d++) c->centroid[d] = m ? (float)(sum[d] / (double)m) : 0.0f;
    qv_free(sum);
    size_t K = m / POINTS_PER_CLUSTER;
    if (K > QV_RABITQ_MAX_CLUSTERS) K = QV_RABITQ_MAX_CLUSTERS;
    if (K < 2) {
        c->nclusters = 1;
        memcpy(c->centers, c->centroid, c->dim * sizeof *c->centers);
        return qv_codec_rabitq_derive(c);
    }
    /* k-means samples its own POINTS_PER_CLUSTER * K rows from all n (L2 clustering for
     * every metric: the centroids only shorten residuals). */
    qv_kmeans_params kp;
    qv_kmeans_params_init(&kp, (uint32_t)K);
    kp.iters = 10;
    kp.max_points = (size_t)POINTS_PER_CLUSTER * K;
    kp.seed = c->seed;
    kp.metric = QV_METRIC_L2;
    if ((rc = qv_kmeans(&kp, n, c->dim, vecs, c->centers, NULL)) != QV_OK) return rc;
    c->nclusters = (uint32_t)K;
    return qv_codec_rabitq_derive(c);
}

/* The centroid nearest to v. */
static uint32_t nearest(const qv_codec *c, const float *v)
{
    const qv_kernels *k = qv_kernels_get();
    uint32_t best = 0;
    float bd = INFINITY;
    for (uint32_t j = 0; j < c->nclusters; j++) {
        float d = k->l2sq(v, c->centers + (size_t)j * c->dim, c->dim);
        if (d < bd) { bd = d; best = j; }
    }
    return best;
}

/* Squared rounding error of xr (D values) at 4 bits over [lo, lo + 15 step], summed in
 * float (it only ranks ranges), cloned for AVX-512 / AVX2: eight ranges per row. Re-encoding
 * fashion-mnist-784's 60K rows (a version 3 file's load) took 1.91 s with a float clamp
 * that compiled to branches, 1.33 s now (0.95 s at 8 bits with no range search). */
static inline QV_ALWAYS_INLINE float ex_error2_impl(const float *restrict xr, uint32_t D, float lo, float step)
{
    const float inv = step > 0 ? 1.0f / step : 0.0f;
    float acc[16] = {0};
    for (uint32_t i = 0; i < D; i += 16)
        for (uint32_t t = 0; t < 16; t++) {
            /* an integer clamp vectorizes; a float one compiled to branches (ranges shrink
             * to 0.65 at most, so v stays far inside int) */
            float x = xr[i + t];
            int v = (int)((x - lo) * inv + 0.5f);
            v = v < 0 ? 0 : v > 15 ? 15 : v;
            float e = x - (lo + step * (float)v);
            acc[t] += e * e;
        }
    float e2 = 0;
    for (uint32_t t = 0; t < 16; t++) e2 += acc[t];
    return e2;
}
QV_CLONES(float, ex_error2, (const float *restrict xr, uint32_t D, float lo, float step), (xr, D, lo, step))

/* The ex row of xr (see the top of the file); u: D bytes of scratch. */
static void encode_ex(const qv_codec *c, const float *xr, const float *pj, uint32_t j, float f0, uint8_t *u,
                      uint8_t *exrow)
{
    const uint32_t D = c->rot.dpad, top = (1u << c->ex_bits) - 1;
    float mn = xr[0], mx = xr[0];
    for (uint32_t i = 1; i < D; i++) {
        mn = xr[i] < mn ? xr[i] : mn;
        mx = xr[i] > mx ? xr[i] : mx;
    }
    float lo = mn, step = mx > mn ? (mx - mn) / (float)top : 0.0f;
    if (c->ex_bits == 4) {
        const float mid = 0.5f * (mn + mx), half = 0.5f * (mx - mn);
        float best = ex_error2(xr, D, lo, step);
        for (int s = 95; s >= 65 && step > 0; s -= 5) {
            float l = mid - half * (float)s / 100.0f, st = 2.0f * half * (float)s / 100.0f / 15.0f;
            float e2 = ex_error2(xr, D, l, st);
            if (e2 < best) { best = e2; lo = l; step = st; }
        }
    }
    const float inv = step > 0 ? 1.0f / step : 0.0f;
    double e2 = 0, hx = 0;
    memset(exrow, 0, c->ex_bytes);
    for (uint32_t i = 0; i < D; i++) {
        float t = (xr[i] - lo) * inv + 0.5f;
        uint32_t v = t <= 0 ? 0 : t >= (float)top ? top : (uint32_t)t;
        u[i] = (uint8_t)v;
        float xh = lo + step * (float)v;
        double e = (double)xr[i] - xh;
        e2 += e * e;
        hx += (double)xh * pj[i];
    }
    if (c->ex_bits == 4) qv_u4_pack(u, D, exrow);
    else memcpy(exrow, u, D);
    const size_t at = c->ex_code_bytes;
    const double scale = c->metric == QV_METRIC_L2 ? 2.0 : 1.0;
    float f[5] = {lo, step, (float)hx, (float)(scale * sqrt(e2 / D)), f0};
    memcpy(exrow + at, f, sizeof f);
    memcpy(exrow + at + sizeof f, &j, sizeof j);
}

void qv_codec_rabitq_encode(const qv_codec *c, const float *v, uint8_t *row, uint8_t *exrow, float *scratch)
{
    const uint32_t D = c->rot.dpad;
    float *diff = scratch, *xr = scratch + D;
    uint64_t *bits = (uint64_t *)row;
    const uint32_t j = nearest(c, v);
    const float *cj = c->centers + (size_t)j * c->dim, *pj = c->pcenters + (size_t)j * D;
    double r2 = 0, abs_sum = 0, cdot = 0, g = 0;
    memset(row, 0, c->row_bytes);
    for (uint32_t d = 0; d < c->dim; d++) {
        diff[d] = v[d] - cj[d];
        r2 += (double)diff[d] * diff[d];
        cdot += (double)cj[d] * diff[d];
    }
    qv_rotation_apply(&c->rot, diff, xr);
    unsigned pop = 0;
    for (uint32_t i = 0; i < D; i++) {
        abs_sum += fabs((double)xr[i]);
        if (xr[i] > 0) {
            bits[i / 64] |= (uint64_t)1 << (i % 64);
            pop++;
            g += pj[i];
        } else {
            g -= pj[i];
        }
    }
    const double r = sqrt(r2), sd = sqrt((double)D), scale = c->metric == QV_METRIC_L2 ? 2.0 : 1.0;
    double eta = r > 0 ? abs_sum / (sd * r) : 1.0;
    if (eta > 1.0) eta = 1.0;                 /* rounding; eta <= 1 by Cauchy-Schwarz */
    float *f = (float *)(row + c->code_bytes);
    f[0] = c->metric == QV_METRIC_L2 ? (float)r2 : (float)-cdot;
    f[1] = r > 0 ? (float)(scale * r / (eta * sd)) : 0.0f;
    f[2] = (float)g;
    f[3] = r > 0 ? (float)(scale * r * sqrt(1.0 - eta * eta) / (eta * sqrt(D > 1 ? D - 1.0 : 1.0))) : 0.0f;
    uint16_t *u = (uint16_t *)(f + 4);
    u[0] = (uint16_t)j;
    u[1] = (uint16_t)pop;
    if (exrow) encode_ex(c, xr, pj, j, f[0], (uint8_t *)diff, exrow);   /* diff: dead once rotated */
}

/* An ex row's tail, after its code: the factors lo, step, hx, fe, f0 into f; returns the
 * centroid (encode_ex writes them). */
static inline uint32_t ex_tail(const qv_codec *c, const uint8_t *exrow, float f[5])
{
    uint32_t j;
    memcpy(f, exrow + c->ex_code_bytes, 5 * sizeof *f);
    memcpy(&j, exrow + c->ex_code_bytes + 5 * sizeof *f, sizeof j);
    return j;
}

float qv_codec_ex_est(const qv_codec *c, qv_codec_query *q, const uint8_t *exrow, float *bound)
{
    const uint32_t D = c->rot.dpad;
    float f[5];
    uint32_t j = ex_tail(c, exrow, f);
    if (j >= c->nclusters) j = 0;              /* never: rows are encoded here, not read */
    if (!((q->have >> j) & 1)) qv_codec_rabitq_centroid(q, j);
    const float *aj = rabitq_aj(q);
    float scale = c->metric == QV_METRIC_L2 ? 2.0f : 1.0f;
    float code_err = f[3] * aj[QV_RABITQ_MAX_CLUSTERS + j];
    float dot;
    if (c->ex_bits == 4) {
        /* <u, qr> from the int8 query (see qv_codec_rabitq_prepare): s <u, qi> plus the
         * rounding's share through the codes' middle value; what is left, <u - 7.5, e>,
         * adds its error factor to the code's, in quadrature (independent errors). */
        const float *t = rabitq_qi_terms(c, q);
        dot = t[0] * (float)c->k->dot_u4(exrow, rabitq_qi(c, q), D) + t[1];
        float round_err = scale * f[1] * t[2];
        *bound = c->ex_eps * sqrtf(code_err * code_err + round_err * round_err);
    } else {
        dot = c->k->dotf_u8(exrow, rabitq_qr(c, q), D);
        *bound = c->ex_eps * code_err;
    }
    float ip = f[0] * q->qsum + f[1] * dot - f[2];           /* <xh, P(q - c_j)> */
    return f[4] + aj[j] - scale * ip;
}

int qv_codec_ex_row_ok(const qv_codec *c, const uint8_t *exrow)
{
    float f[5];
    uint32_t j = ex_tail(c, exrow, f);
    for (int i = 0; i < 5; i++)
        if (!isfinite(f[i])) return 0;
    return f[1] >= 0 && f[3] >= 0 && j < c->nclusters;
}

/* The query's per-query loops below run in AVX-512, AVX2 and baseline clones (the file is
 * built for baseline x86-64): the same operations in the same lanes in every clone, so
 * the same results. With them, and the rotation written straight into the query instead
 * of copied there, a 512-d query's preparation took 1,860 TSC cycles instead of 2,350
 * (debian-use-512, means of 5,000 queries, 3 alternated runs, 2026-12-07,
 * bench/RESULTS.md "Session 28"). */

/* out = q - cen over n values. */
static inline QV_ALWAYS_INLINE int centered_impl(const float *restrict q, const float *restrict cen, uint32_t n,
                                                 float *restrict out)
{
    for (uint32_t d = 0; d < n; d++) out[d] = q[d] - cen[d];
    return 0;
}
QV_CLONES(int, centered, (const float *restrict q, const float *restrict cen, uint32_t n, float *restrict out),
          (q, cen, n, out))

/* Sum of v[0..n), n a multiple of 64, in 16 interleaved partial sums. */
static inline QV_ALWAYS_INLINE float sum_impl(const float *restrict v, size_t n)
{
    float acc[16] = {0};
    for (size_t i = 0; i < n; i += 16)
        for (size_t j = 0; j < 16; j++) acc[j] += v[i + j];
    float s = 0;
    for (size_t j = 0; j < 16; j++) s += acc[j];
    return s;
}
QV_CLONES(float, sum, (const float *restrict v, size_t n), (v, n))

/* sum (x - s q) over D values (a multiple of 16) in 16 interleaved partial sums: the
 * rounding errors of x rounded to int8 (q) with scale s. */
static inline QV_ALWAYS_INLINE float rounding_sum_impl(const float *restrict x, const int8_t *restrict q, float s,
                                                       uint32_t D)
{
    float e16[16] = {0};
    for (uint32_t i = 0; i < D; i += 16)
        for (uint32_t j = 0; j < 16; j++) e16[j] += x[i + j] - s * (float)q[i + j];
    float e = 0;
    for (uint32_t j = 0; j < 16; j++) e += e16[j];
    return e;
}
QV_CLONES(float, rounding_sum, (const float *restrict x, const int8_t *restrict q, float s, uint32_t D),
          (x, q, s, D))

/* The rotated query rounded to 4 bits over [lo, lo + 15 delta] into u; sets *lo and
 * returns delta. Vectorizable loops (AVX-512, AVX2 and baseline clones), run once per query.
 * The range is taken in 16 independent lanes (D is a multiple of 64), not in one chain of
 * dependent min/max steps, which the compiler cannot reorder: qv_codec_query_prepare at
 * 512-d 1058 -> 917 ns, at 784-d 1911 -> 1672 ns (2026-12-06, bench/RESULTS.md "Session 14"). */
static inline QV_ALWAYS_INLINE float quantize_query_impl(const float *restrict qr, uint32_t D, uint8_t *restrict u,
                                                         float *lo_out)
{
    float lo16[16], hi16[16];
    for (uint32_t j = 0; j < 16; j++) lo16[j] = hi16[j] = qr[j];
    for (uint32_t i = 16; i < D; i += 16)
        for (uint32_t j = 0; j < 16; j++) {
            lo16[j] = qr[i + j] < lo16[j] ? qr[i + j] : lo16[j];
            hi16[j] = qr[i + j] > hi16[j] ? qr[i + j] : hi16[j];
        }
    float lo = lo16[0], hi = hi16[0];
    for (uint32_t j = 1; j < 16; j++) {
        lo = lo16[j] < lo ? lo16[j] : lo;
        hi = hi16[j] > hi ? hi16[j] : hi;
    }
    float delta = hi > lo ? (hi - lo) / 15.0f : 0.0f, inv = delta > 0 ? 1.0f / delta : 0.0f;
    for (uint32_t i = 0; i < D; i++) {
        int v = (int)((qr[i] - lo) * inv + 0.5f);       /* >= 0: truncation rounds */
        u[i] = (uint8_t)(v > 15 ? 15 : v);
    }
    *lo_out = lo;
    return delta;
}
QV_CLONES(float, quantize_query, (const float *restrict qr, uint32_t D, uint8_t *restrict u, float *lo_out),
          (qr, D, u, lo_out))

void qv_codec_rabitq_centroid(qv_codec_query *q, uint32_t j)
{
    const qv_codec *c = q->codec;
    const uint32_t D = c->rot.dpad;
    float *aj = rabitq_aj(q), *nj = aj + QV_RABITQ_MAX_CLUSTERS;
    /* <q - c0, c_j - c0>, against the centroid in binary16: a walk meets ~27 of the 64,
     * and their 2 KB each (512-d) streamed from L2 were ~5% of a debian-use-512 query;
     * half the bytes. The error (relative 2^-11 per coordinate) shifts every row of
     * centroid j alike, by an estimated 0.1% of a row's bound. */
    float ip = -qv_kernels_get()->neg_dot_f16(rabitq_qr(c, q), c->pcenters16 + (size_t)j * D, D) * c->unscale16[j];
    float d2 = q->qnorm * q->qnorm - 2.0f * ip + c->pnorms[j];
    if (d2 < 0) d2 = 0;
    nj[j] = sqrtf(d2);
    /* ip: -q.c_j = -(q.c0 + <q - c0, c_j - c0> + <c0, c_j - c0>). */
    aj[j] = c->metric == QV_METRIC_L2 ? d2 : -(q->qc0 + ip + c->c0dot[j]);
    q->have |= (uint64_t)1 << j;
}

void qv_codec_rabitq_prepare(const qv_codec *c, const float *q, qv_codec_query *out, float *scratch)
{
    const uint32_t D = c->rot.dpad;
    const size_t words = D / 64;
    const qv_kernels *k = qv_kernels_get();
    /* qr is rotated straight into the query, where the walk reads it (rabitq_qr, which
     * needs words). */
    out->words = words;
    float *diff = scratch, *qr = rabitq_qr(c, out);
    uint8_t *u = (uint8_t *)diff;                /* diff is dead once rotated */
    (void)centered(q, c->centroid, c->dim, diff);
    qv_rotation_apply(&c->rot, diff, qr);
    out->delta = quantize_query(qr, D, u, &out->lo);
    c->k->bit_planes(u, words, out->data);
    out->qsum = sum(qr, D);
    out->qnorm = sqrtf(k->dot(qr, qr, D));
    out->gamma = 0;
    out->a = 0;
    /* a_j and |q - c_j| per centroid come later, when a code of centroid j is first met
     * (qv_codec_rabitq_centroid); they need qr, which stays in the query after them. */
    if (c->ex_bits == 4) {
        /* The 4-bit ex rows' dot products in integers (qv_codec_ex_est): <u, qr> = s <u, qi>
         * + <u, e>, e the rounding errors, |e_i| <= s / 2, about uniform. With u = 7.5 + v,
         * <u, e> = 7.5 sum e + <v, e>: the first is known here, and |v_i| <= 7.5 leaves
         * <v, e> a standard deviation of at most 7.5 s sqrt(D / 12). */
        float *t = rabitq_qi_terms(c, out);
        int8_t *qi = rabitq_qi(c, out);
        t[0] = qv_codec_round_i8(qr, D, qi);
        t[1] = 7.5f * rounding_sum(qr, qi, t[0], D);
        t[2] = 7.5f * t[0] * sqrtf((float)D / 12.0f);
    }
    out->have = 0;
    out->codec = c;
    out->qc0 = c->metric == QV_METRIC_L2 ? 0.0f : k->dot(q, c->centroid, c->dim);
}
