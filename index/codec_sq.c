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

static unsigned levels(const qv_codec *c) { return c->kind == QV_QUANT_SQ8 ? 256u : 16u; }

int qv_codec_sq_setup(qv_codec *c)
{
    c->code_bytes = c->kind == QV_QUANT_SQ8 ? c->dim : qv_u4_bytes(c->dim);
    c->row_bytes = ((c->code_bytes + 3) & ~(size_t)3) + sizeof(float);
    /* Under ip f0 is 0 and an estimate reads the code alone: at 384-d the walk then loads
     * and prefetches 6 lines of an 8-bit row instead of 7 (3 of a 4-bit row instead of 4).
     * Measured (debian-desc-384, sq8 M16 efC800 x2.5, 1 thread, medians of 4 alternated
     * runs, 2026-12-05): QPS ef 24 42.4k -> 47.8k, ef 32 37.0k -> 40.2k, ef 48 27.0k ->
     * 28.4k, the same recall (bench/RESULTS.md). */
    c->row_read = c->metric == QV_METRIC_L2 ? c->row_bytes : c->code_bytes;
    size_t wbytes = c->kind == QV_QUANT_SQ8 ? c->dim : qv_u4_query_len(c->dim);
    c->query_bytes = 64 + ((wbytes + 63) & ~(size_t)63);
    c->lo = qv_calloc(c->dim, sizeof *c->lo);
    c->step = qv_calloc(c->dim, sizeof *c->step);
    c->zero = qv_calloc(c->dim, sizeof *c->zero);
    return c->lo && c->step && c->zero ? QV_OK : QV_ENOMEM;
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

/* w = (q - shift) * step (vectorized in AVX-512, AVX2 and baseline clones; it returns a
 * dummy int because QV_CLONES's dispatcher returns the clone's value, and C has no
 * `return` of a void expression). */
static inline QV_ALWAYS_INLINE int weigh_impl(const float *restrict q, const float *restrict shift,
                                              const float *restrict step, uint32_t dim, float *restrict w)
{
    for (uint32_t d = 0; d < dim; d++) w[d] = (q[d] - shift[d]) * step[d];
    return 0;
}
QV_CLONES(int, weigh,
          (const float *restrict q, const float *restrict shift, const float *restrict step, uint32_t dim,
           float *restrict w),
          (q, shift, step, dim, w))

void qv_codec_sq_prepare(const qv_codec *c, const float *q, qv_codec_query *out, float *scratch)
{
    int8_t *w8 = out->data;
    size_t wlen = c->kind == QV_QUANT_SQ8 ? c->dim : qv_u4_query_len(c->dim);
    const qv_kernels *k = qv_kernels_get();
    const int l2 = c->metric == QV_METRIC_L2;
    weigh(q, l2 ? c->lo : c->zero, c->step, c->dim, scratch);
    float s = qv_codec_round_i8(scratch, c->dim, w8);
    memset(w8 + c->dim, 0, wlen - c->dim);
    out->a = l2 ? k->l2sq(q, c->lo, c->dim) : -k->dot(q, c->lo, c->dim);
    out->gamma = l2 ? 2.0f * s : s;
}
