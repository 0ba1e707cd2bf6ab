/*
 * index/codec_sq.c -- 8- and 4-bit scalar quantization (see index/codec.h).
 *
 * Training: per dimension, the range [lo, hi] runs between two quantiles of the sample
 * (SQ8_TAIL / SQ4_TAIL of the values fall below lo and as many above hi, and are clamped):
 * with only 16 levels one outlier would otherwise widen every step. step = (hi - lo) /
 * (levels - 1); a constant dimension gets step 0 and code 0.
 *
 * Row: the code (u8, or u4 in the layout of core/code_dist.h), then f0 (float).
 * With x' = lo + step * code the dequantized vector and q the query:
 *   l2: |q - x'|^2 = sum (q - lo)^2 - 2 sum (q - lo) step code + sum (step code)^2,
 *       so a = |q - lo|^2, w = (q - lo) * step, gamma = 2 s, f0 = |x' - lo|^2;
 *   ip: -q.x' = -q.lo - sum q step code, so a = -q.lo, w = q * step, gamma = s, f0 = 0;
 * where w is rounded to int8 with scale s = max |w| / 127 (the integer dot of code and w
 * is then one VPDPBUSD per 64 bytes).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/distance.h"
#include "core/simd_clones.h"
#include "index/codec.h"

#define SQ8_TAIL 1e-4
#define SQ4_TAIL 2e-3

/* sq4 ex rows: 8 bits over the 4-bit range widened by this many 4-bit steps each side
 * (the 4-bit range clamps 2e-3 of the values at each end; 3 more steps take a normal
 * tail from ~2.9 to ~4.0 standard deviations). */
#define SQ4_EX_MARGIN 3.0f

/* Bound multipliers (standard deviations of the rounding errors, taken as independent
 * uniform errors per dimension) of the sq4 walk's estimate and of its ex rows'. */
static float env_eps(const char *name, float dflt)
{
    const char *e = getenv(name);
    return e && *e ? (float)atof(e) : dflt;
}

static unsigned levels(const qv_codec *c) { return c->kind == QV_QUANT_SQ8 ? 256u : 16u; }

int qv_codec_sq_setup(qv_codec *c)
{
    c->code_bytes = c->kind == QV_QUANT_SQ8 ? c->dim : qv_u4_bytes(c->dim);
    c->row_bytes = ((c->code_bytes + 3) & ~(size_t)3) + sizeof(float);
    c->row_read = c->metric == QV_METRIC_L2 || getenv("QV_SQ_ROWFULL") ? c->row_bytes : c->code_bytes;
    size_t wbytes = c->kind == QV_QUANT_SQ8 ? c->dim : qv_u4_query_len(c->dim);
    c->query_bytes = 64 + ((wbytes + 63) & ~(size_t)63);
    c->lo = qv_calloc(c->dim, sizeof *c->lo);
    c->step = qv_calloc(c->dim, sizeof *c->step);
    c->zero = qv_calloc(c->dim, sizeof *c->zero);
    if (!(c->lo && c->step && c->zero)) return QV_ENOMEM;
    c->ex_eps_walk = env_eps("QV_SQ_EPS", 3.0f);
    if (c->kind == QV_QUANT_SQ4 && !getenv("QV_SQ4_NOEX")) {
        c->ex_bits = 8;
        c->ex_code_bytes = c->dim;
        size_t f0_at = (c->dim + 3) & ~(size_t)3;
        c->ex_bytes = (f0_at + sizeof(float) + 63) & ~(size_t)63;
        c->ex_read = c->metric == QV_METRIC_L2 ? f0_at + sizeof(float) : c->dim;
        c->ex_eps = env_eps("QV_SQ4_XEPS", 3.0f);
        c->xw_off = c->query_bytes - 64;
        c->query_bytes += ((size_t)c->dim * sizeof(float) + 63) & ~(size_t)63;
        c->xlo = qv_calloc(c->dim, sizeof *c->xlo);
        c->xstep = qv_calloc(c->dim, sizeof *c->xstep);
        if (!(c->xlo && c->xstep)) return QV_ENOMEM;
    }
    return QV_OK;
}

/* The value of rank r (0-based) in v[0..n) (partially reorders v). */
static float select_rank(float *v, size_t n, size_t r)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (r <= j) hi = j;
        else if (r >= i) lo = i;
        else break;
    }
    return v[r];
}

int qv_codec_sq_train(qv_codec *c, size_t n, const float *vecs, size_t stride)
{
    size_t m = (n + stride - 1) / stride;
    float *col = NULL;
    if (m == 0) {
        memset(c->lo, 0, c->dim * sizeof *c->lo);
        memset(c->step, 0, c->dim * sizeof *c->step);
        return QV_OK;
    }
    if (!(col = qv_malloc(m * sizeof *col))) return QV_ENOMEM;
    double tail = c->kind == QV_QUANT_SQ8 ? SQ8_TAIL : SQ4_TAIL;
    size_t rlo = (size_t)(tail * (double)(m - 1)), rhi = m - 1 - rlo;
    for (uint32_t d = 0; d < c->dim; d++) {
        for (size_t i = 0; i < m; i++) col[i] = vecs[i * stride * c->dim + d];
        float lo = select_rank(col, m, rlo);
        float hi = select_rank(col, m, rhi);
        c->lo[d] = lo;
        c->step[d] = hi > lo ? (hi - lo) / (float)(levels(c) - 1) : 0.0f;
    }
    qv_free(col);
    return QV_OK;
}

void qv_codec_sq_derive(qv_codec *c)
{
    if (!c->xlo) return;
    for (uint32_t d = 0; d < c->dim; d++) {
        c->xlo[d] = c->lo[d] - SQ4_EX_MARGIN * c->step[d];
        c->xstep[d] = c->step[d] * (15.0f + 2.0f * SQ4_EX_MARGIN) / 255.0f;
    }
}

void qv_codec_sq_encode_ex(const qv_codec *c, const float *v, uint8_t *exrow)
{
    double f0 = 0;
    memset(exrow, 0, c->ex_bytes);
    for (uint32_t d = 0; d < c->dim; d++) {
        unsigned q = 0;
        if (c->xstep[d] > 0) {
            float t = floorf((v[d] - c->xlo[d]) / c->xstep[d] + 0.5f);
            q = t <= 0 ? 0 : t >= 255.0f ? 255u : (unsigned)t;
        }
        double x = (double)c->xstep[d] * q;
        f0 += x * x;
        exrow[d] = (uint8_t)q;
    }
    float f = c->metric == QV_METRIC_L2 ? (float)f0 : 0.0f;
    memcpy(exrow + ((c->dim + 3) & ~(size_t)3), &f, sizeof f);
}

float qv_codec_sq_ex_est(const qv_codec *c, qv_codec_query *q, const uint8_t *exrow, float *bound)
{
    float f0 = 0;
    if (c->metric == QV_METRIC_L2) memcpy(&f0, exrow + ((c->dim + 3) & ~(size_t)3), sizeof f0);
    const float *xw = (const float *)((const uint8_t *)q->data + c->xw_off);
    float dot = c->k->dotf_u8(exrow, xw, c->dim);
    float e = q->xa + f0 - (c->metric == QV_METRIC_L2 ? 2.0f * dot : dot);
    *bound = c->ex_eps * sqrtf(q->xba + q->xbb * (e > 0 ? e : 0));
    return e;
}

int qv_codec_sq_ex_row_ok(const qv_codec *c, const uint8_t *exrow)
{
    float f0;
    memcpy(&f0, exrow + ((c->dim + 3) & ~(size_t)3), sizeof f0);
    return isfinite(f0) && f0 >= 0;
}

void qv_codec_sq_encode(const qv_codec *c, const float *v, uint8_t *row)
{
    const unsigned top = levels(c) - 1;
    double f0 = 0;
    memset(row, 0, c->row_bytes);
    for (uint32_t d = 0; d < c->dim; d++) {
        unsigned q = 0;
        if (c->step[d] > 0) {
            float t = floorf((v[d] - c->lo[d]) / c->step[d] + 0.5f);
            q = t <= 0 ? 0 : t >= (float)top ? top : (unsigned)t;
        }
        double x = (double)c->step[d] * q;
        f0 += x * x;
        if (c->kind == QV_QUANT_SQ8) row[d] = (uint8_t)q;
        else qv_u4_set(row, c->dim, d, q);
    }
    float *f = (float *)(row + ((c->code_bytes + 3) & ~(size_t)3));
    f[0] = c->metric == QV_METRIC_L2 ? (float)f0 : 0.0f;
}

/* w = (q - shift) * step into w8 (rounded with scale 127 / max |w|); returns that scale's
 * inverse. Plain loops the compiler vectorizes (integer max over the bits of |w|, which
 * order like the floats), in AVX-512, AVX2 and baseline clones: this runs once per query
 * and at 784-d took 5 us with libm's lrintf, ~0.5 us now. */
static inline QV_ALWAYS_INLINE float quantize_w_impl(const float *restrict q, const float *restrict shift,
                                                     const float *restrict step, uint32_t dim, float *restrict w,
                                                     int8_t *restrict w8)
{
    uint32_t maxbits = 0;
    for (uint32_t d = 0; d < dim; d++) {
        float x = (q[d] - shift[d]) * step[d];
        w[d] = x;
        uint32_t b;
        memcpy(&b, &x, sizeof b);
        b &= 0x7fffffffu;
        maxbits = b > maxbits ? b : maxbits;
    }
    float wmax;
    memcpy(&wmax, &maxbits, sizeof wmax);
    float s = wmax > 0 ? wmax / 127.0f : 0.0f, inv = s > 0 ? 1.0f / s : 0.0f;
    for (uint32_t d = 0; d < dim; d++) {
        float t = w[d] * inv;
        int v = (int)(t + (t >= 0 ? 0.5f : -0.5f));      /* |t| <= 127: in range */
        w8[d] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    return s;
}
QV_CLONES(float, quantize_w,
          (const float *restrict q, const float *restrict shift, const float *restrict step, uint32_t dim,
           float *restrict w, int8_t *restrict w8),
          (q, shift, step, dim, w, w8))

void qv_codec_sq_prepare(const qv_codec *c, const float *q, qv_codec_query *out, float *scratch)
{
    int8_t *w8 = out->data;
    size_t wlen = c->kind == QV_QUANT_SQ8 ? c->dim : qv_u4_query_len(c->dim);
    const qv_kernels *k = qv_kernels_get();
    const int l2 = c->metric == QV_METRIC_L2;
    float s = quantize_w(q, l2 ? c->lo : c->zero, c->step, c->dim, scratch, w8);
    memset(w8 + c->dim, 0, wlen - c->dim);
    out->a = l2 ? k->l2sq(q, c->lo, c->dim) : -k->dot(q, c->lo, c->dim);
    out->gamma = l2 ? 2.0f * s : s;
    /* The walk's bound: rounding the vector to the grid (error uniform in +-step / 2 per
     * dimension: variance step^2 / 12, weighted by q under ip, by 2 (q - x) under l2,
     * bounded there by 4 max step^2 |q - x|^2) and the query's weights to int8 (+-s / 2,
     * against codes of mean square ~ 15^2 / 3). */
    double ws = 0, smax = 0, xs = 0, xmax = 0;
    for (uint32_t d = 0; d < c->dim; d++) {
        ws += (double)scratch[d] * scratch[d];
        if (c->step[d] > smax) smax = c->step[d];
    }
    double g = out->gamma, top = levels(c) - 1.0, round = g * g / 12.0 * (top * top / 3.0) * c->dim;
    out->ba = (float)((l2 ? 0.0 : ws / 12.0) + round);
    out->bb = (float)(l2 ? 4.0 * smax * smax / 12.0 : 0.0);
    if (!c->xlo) return;
    float *xw = (float *)((uint8_t *)out->data + c->xw_off);
    for (uint32_t d = 0; d < c->dim; d++) {
        xw[d] = (q[d] - (l2 ? c->xlo[d] : 0.0f)) * c->xstep[d];
        xs += (double)xw[d] * xw[d];
        if (c->xstep[d] > xmax) xmax = c->xstep[d];
    }
    out->xa = l2 ? k->l2sq(q, c->xlo, c->dim) : -k->dot(q, c->xlo, c->dim);
    out->xba = (float)(l2 ? 0.0 : xs / 12.0);
    out->xbb = (float)(l2 ? 4.0 * xmax * xmax / 12.0 : 0.0);
}
