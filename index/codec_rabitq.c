/*
 * index/codec_rabitq.c -- 1-bit RaBitQ codes (Gao & Long, SIGMOD 2024, arXiv 2405.12497).
 *
 * With c the training mean, P the rotation of core/rotation.h (D = its padded dimension),
 * a vector x becomes xr = P(x - c), r = |x - c|, and the code keeps b_i = [xr_i > 0]. The
 * quantized unit vector is o' = (2b - 1) / sqrt(D), and eta = <o', xr / r> =
 * sum |xr_i| / (sqrt(D) r) is stored with it. For a query q with qr = P(q - c),
 *   <x - c, q - c> ~ r <o', qr> / eta        (the paper's unbiased estimator)
 * whose error, relative to r |qr|, is at most eps0 sqrt(1 - eta^2) / (eta sqrt(D - 1))
 * with high probability. <o', qr> = (2 sum_{b_i=1} qr_i - sum qr_i) / sqrt(D), and the
 * masked sum comes from the query rounded to 4 bits: qr_i ~ lo + delta u_i, so
 * sum_{b=1} qr_i ~ lo popcount(b) + delta sum_j 2^j popcount(b & plane_j).
 *
 * Distances: l2 |x - q|^2 = r^2 + |qr|^2 - 2 <x - c, q - c>: f0 = r^2, a = |qr|^2,
 * f1 = 2 r / (eta sqrt(D)). ip -q.x = -q.c - c.(x - c) - <x - c, q - c>: f0 = -c.(x - c),
 * a = -q.c, f1 = r / (eta sqrt(D)).
 * Row: D / 8 bytes of bits, then f0, f1, popcount(b) (as a float), the error factor
 * f3 = (2 or 1) r sqrt(1 - eta^2) / (eta sqrt(D - 1)), and f4 = 2 f1 sqrt(popcount / 12),
 * which scales delta into the spread of the 4-bit query's rounding over the set bits
 * (independent uniform errors of sd delta / sqrt 12 each).
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/distance.h"
#include "index/codec.h"

int qv_codec_rabitq_setup(qv_codec *c, uint64_t seed)
{
    int rc = qv_rotation_init(&c->rot, c->dim, seed);
    if (rc != QV_OK) return rc;
    size_t words = c->rot.dpad / 64;
    c->code_bytes = words * 8;
    c->row_bytes = c->code_bytes + 5 * sizeof(float);
    c->query_bytes = 64 + 4 * words * 8;
    c->centroid = qv_calloc(c->dim, sizeof *c->centroid);
    return c->centroid ? QV_OK : QV_ENOMEM;
}

int qv_codec_rabitq_train(qv_codec *c, size_t n, const float *vecs, size_t stride)
{
    size_t m = (n + stride - 1) / stride;
    double *sum = qv_calloc(c->dim, sizeof *sum);
    if (!sum) return QV_ENOMEM;
    for (size_t i = 0; i < m; i++) {
        const float *v = vecs + i * stride * c->dim;
        for (uint32_t d = 0; d < c->dim; d++) sum[d] += v[d];
    }
    for (uint32_t d = 0; d < c->dim; d++) c->centroid[d] = m ? (float)(sum[d] / (double)m) : 0.0f;
    qv_free(sum);
    return QV_OK;
}

void qv_codec_rabitq_encode(const qv_codec *c, const float *v, uint8_t *row, float *scratch)
{
    const uint32_t D = c->rot.dpad;
    float *diff = scratch, *xr = scratch + D;
    uint64_t *bits = (uint64_t *)row;
    double r2 = 0, abs_sum = 0, cdot = 0;
    memset(row, 0, c->row_bytes);
    for (uint32_t d = 0; d < c->dim; d++) {
        diff[d] = v[d] - c->centroid[d];
        r2 += (double)diff[d] * diff[d];
        cdot += (double)c->centroid[d] * diff[d];
    }
    qv_rotation_apply(&c->rot, diff, xr);
    unsigned pop = 0;
    for (uint32_t i = 0; i < D; i++) {
        abs_sum += fabs((double)xr[i]);
        if (xr[i] > 0) {
            bits[i / 64] |= (uint64_t)1 << (i % 64);
            pop++;
        }
    }
    const double r = sqrt(r2), sd = sqrt((double)D), scale = c->metric == QV_METRIC_L2 ? 2.0 : 1.0;
    double eta = r > 0 ? abs_sum / (sd * r) : 1.0;
    if (eta > 1.0) eta = 1.0;                 /* rounding; eta <= 1 by Cauchy-Schwarz */
    float *f = (float *)(row + c->code_bytes);
    f[0] = c->metric == QV_METRIC_L2 ? (float)r2 : (float)-cdot;
    f[1] = r > 0 ? (float)(scale * r / (eta * sd)) : 0.0f;
    f[2] = (float)pop;
    f[3] = r > 0 ? (float)(scale * r * sqrt(1.0 - eta * eta) / (eta * sqrt(D > 1 ? D - 1.0 : 1.0))) : 0.0f;
    f[4] = (float)(2.0 * f[1] * sqrt(pop / 12.0));
}

/* Sum of v[0..n), n a multiple of 64, in 16 interleaved partial sums (vectorizable). */
static float sum(const float *v, size_t n)
{
    float acc[16] = {0};
    for (size_t i = 0; i < n; i += 16)
        for (size_t j = 0; j < 16; j++) acc[j] += v[i + j];
    float s = 0;
    for (size_t j = 0; j < 16; j++) s += acc[j];
    return s;
}

/* The rotated query rounded to 4 bits over [lo, lo + 15 delta] into u; sets *lo, *delta.
 * Vectorizable loops (AVX-512, AVX2 and baseline clones), run once per query. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void quantize_query(const float *restrict qr, uint32_t D, uint8_t *restrict u, float *lo_out,
                           float *delta_out)
{
    float lo = qr[0], hi = qr[0];
    for (uint32_t i = 0; i < D; i++) {
        lo = qr[i] < lo ? qr[i] : lo;
        hi = qr[i] > hi ? qr[i] : hi;
    }
    float delta = hi > lo ? (hi - lo) / 15.0f : 0.0f, inv = delta > 0 ? 1.0f / delta : 0.0f;
    for (uint32_t i = 0; i < D; i++) {
        int v = (int)((qr[i] - lo) * inv + 0.5f);       /* >= 0: truncation rounds */
        u[i] = (uint8_t)(v > 15 ? 15 : v);
    }
    *lo_out = lo;
    *delta_out = delta;
}

void qv_codec_rabitq_prepare(const qv_codec *c, const float *q, qv_codec_query *out, float *scratch)
{
    const uint32_t D = c->rot.dpad;
    const size_t words = D / 64;
    const qv_kernels *k = qv_kernels_get();
    float *diff = scratch, *qr = scratch + D;
    uint8_t *u = (uint8_t *)diff;                /* diff is dead once rotated */
    for (uint32_t d = 0; d < c->dim; d++) diff[d] = q[d] - c->centroid[d];
    qv_rotation_apply(&c->rot, diff, qr);
    quantize_query(qr, D, u, &out->lo, &out->delta);
    c->k->bit_planes(u, words, out->data);
    float qn = k->dot(qr, qr, D);
    out->words = words;
    out->qsum = sum(qr, D);
    out->qnorm = sqrtf(qn);
    out->a = c->metric == QV_METRIC_L2 ? qn : -k->dot(q, c->centroid, c->dim);
    out->gamma = 0;
}
