/*
 * index/code_rows.c -- code rows of a run of vectors and their scan (see code_rows.h).
 */
#include "index/code_rows.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/simd_clones.h"

/* Bytes from one row to the next: bit1 rows are read as 64-bit words, so each starts
 * 8-byte aligned (a row's own size is a multiple of 4 only). */
static inline size_t stride(const qv_codec *c) { return (c->row_bytes + 7) & ~(size_t)7; }

static size_t round32(size_t n) { return (n + QV_FASTSCAN_BLOCK - 1) / QV_FASTSCAN_BLOCK * QV_FASTSCAN_BLOCK; }

size_t qv_code_rows_bytes(const qv_codec *c, size_t cap)
{
    if (qv_code_rows_fastscan(c)) return round32(cap) / QV_FASTSCAN_BLOCK * qv_fastscan_block_bytes(c->dim);
    return cap * stride(c);
}

int qv_code_rows_reserve(qv_code_rows *r, const qv_codec *c, size_t len, size_t need)
{
    if (need <= r->cap) return QV_OK;
    size_t cap = qv_code_rows_fastscan(c) ? round32(need) : need;
    uint8_t *data = qv_aligned_calloc(1, qv_code_rows_bytes(c, cap));
    if (!data) return QV_ENOMEM;
    if (len) memcpy(data, r->data, qv_code_rows_bytes(c, len < r->cap ? len : r->cap));
    qv_free(r->data);
    r->data = data;
    r->cap = cap;
    return QV_OK;
}

void qv_code_rows_release(qv_code_rows *r)
{
    if (!r) return;
    qv_free(r->data);
    r->data = NULL;
    r->cap = 0;
}

static inline uint8_t *block_of(const qv_code_rows *r, const qv_codec *c, size_t pos)
{
    return r->data + pos / QV_FASTSCAN_BLOCK * qv_fastscan_block_bytes(c->dim);
}

void qv_code_rows_put(qv_code_rows *r, const qv_codec *c, size_t pos, const float *v, uint8_t *row_tmp,
                      float *scratch)
{
    if (!qv_code_rows_fastscan(c)) {
        qv_codec_encode(c, v, r->data + pos * stride(c), scratch);
        return;
    }
    qv_codec_encode(c, v, row_tmp, scratch);
    uint8_t *b = block_of(r, c, pos);
    unsigned j = (unsigned)(pos % QV_FASTSCAN_BLOCK);
    for (size_t d = 0; d < c->dim; d++) qv_fastscan_set_nibble(b, d, j, qv_u4_get(row_tmp, c->dim, d));
}

void qv_code_rows_move(qv_code_rows *r, const qv_codec *c, size_t dst, size_t src)
{
    if (dst == src) return;
    if (!qv_code_rows_fastscan(c)) {
        memcpy(r->data + dst * stride(c), r->data + src * stride(c), c->row_bytes);
        return;
    }
    const uint8_t *sb = block_of(r, c, src);
    uint8_t *db = block_of(r, c, dst);
    unsigned sj = (unsigned)(src % QV_FASTSCAN_BLOCK), dj = (unsigned)(dst % QV_FASTSCAN_BLOCK);
    for (size_t d = 0; d < c->dim; d++) qv_fastscan_set_nibble(db, d, dj, qv_fastscan_get_nibble(sb, d, sj));
}

/* ---- scans --------------------------------------------------------------------------- */

size_t qv_code_scan_bytes(const qv_codec *c)
{
    if (qv_code_rows_fastscan(c)) return (16 * qv_fastscan_dpad(c->dim) + 63) & ~(size_t)63;
    return c->query_bytes;
}

size_t qv_code_scan_scratch_floats(const qv_codec *c)
{
    size_t a = qv_codec_scratch_floats(c), b = 16 * (size_t)c->dim;
    return a > b ? a : b;
}

/* The float terms of the fast-scan table less each dimension's minimum into t (16 per
 * dimension), their sum of minimums into *bias; returns the widest dimension's range.
 * Plain loops over the 16 levels that the compiler vectorizes, cloned for AVX-512 / AVX2
 * (core/simd_clones.h): once per query, 16 x dim terms (12.5k at 784-d). */
static inline QV_ALWAYS_INLINE float lut_terms_impl(const float *restrict q, const float *restrict lo,
                                                    const float *restrict step, size_t dim, int l2,
                                                    float *restrict t, double *bias)
{
    double sum = 0;
    float widest = 0;
    for (size_t d = 0; d < dim; d++) {
        float *td = t + 16 * d, mn = INFINITY, mx = -INFINITY;
        for (unsigned v = 0; v < 16; v++) {
            float x = lo[d] + step[d] * (float)v, e = l2 ? (q[d] - x) * (q[d] - x) : -q[d] * x;
            td[v] = e;
            mn = e < mn ? e : mn;
            mx = e > mx ? e : mx;
        }
        for (unsigned v = 0; v < 16; v++) td[v] -= mn;
        sum += mn;
        widest = mx - mn > widest ? mx - mn : widest;
    }
    *bias = sum;
    return widest;
}
QV_CLONES(float, lut_terms,
          (const float *restrict q, const float *restrict lo, const float *restrict step, size_t dim, int l2,
           float *restrict t, double *bias),
          (q, lo, step, dim, l2, t, bias))

/* Terms times scale, rounded, into bytes (the terms are >= 0 and scale maps the widest
 * onto 255). Returns 0 (QV_CLONES needs a value). */
static inline QV_ALWAYS_INLINE int lut_bytes_impl(const float *restrict t, size_t n, float scale,
                                                  uint8_t *restrict lut)
{
    for (size_t i = 0; i < n; i++) {
        float x = t[i] * scale + 0.5f;
        x = x < 255.0f ? x : 255.0f;
        lut[i] = (uint8_t)(int)x;
    }
    return 0;
}
QV_CLONES(int, lut_bytes, (const float *restrict t, size_t n, float scale, uint8_t *restrict lut),
          (t, n, scale, lut))

/* The fast-scan table of q (code_rows.h); t: scratch of 16 * dim floats. */
static void prepare_lut(qv_code_scan *s, const qv_codec *c, const float *q, uint8_t *lut, float *t)
{
    double bias;
    float widest = lut_terms(q, c->lo, c->step, c->dim, c->metric == QV_METRIC_L2, t, &bias);
    float scale = widest > 0 ? 255.0f / widest : 1.0f;
    lut_bytes(t, 16 * (size_t)c->dim, scale, lut);
    memset(lut + 16 * c->dim, 0, 16 * (s->dpad - c->dim));
    s->bias = (float)bias;
    s->inv_scale = 1.0f / scale;
}

void qv_code_scan_prepare(qv_code_scan *s, const qv_codec *c, const float *q, void *buf, float *scratch)
{
    memset(s, 0, sizeof *s);
    s->codec = c;
    if (!qv_code_rows_fastscan(c)) {
        qv_codec_query_prepare(c, q, buf, scratch, &s->qq);
        return;
    }
    s->fs = qv_fastscan_get();
    s->dpad = qv_fastscan_dpad(c->dim);
    s->lut = buf;
    prepare_lut(s, c, q, s->lut, scratch);
}

void qv_code_rows_estimate(const qv_code_rows *r, qv_code_scan *s, size_t from, size_t n, float *est)
{
    const qv_codec *c = s->codec;
    if (qv_code_rows_fastscan(c)) {
        size_t bb = qv_fastscan_block_bytes(c->dim);
        const uint8_t *base = r->data + from / QV_FASTSCAN_BLOCK * bb;
        uint32_t sums[QV_FASTSCAN_BLOCK];
        for (size_t b = 0; b * QV_FASTSCAN_BLOCK < n; b++) {
            s->fs->block(base + b * bb, s->lut, s->dpad, sums);
            for (unsigned j = 0; j < QV_FASTSCAN_BLOCK; j++)
                est[b * QV_FASTSCAN_BLOCK + j] = s->bias + (float)sums[j] * s->inv_scale;
        }
        return;
    }
    const size_t rb = stride(c);
    const uint8_t *base = r->data + from * rb;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *rows[4] = {base + i * rb, base + (i + 1) * rb, base + (i + 2) * rb, base + (i + 3) * rb};
        qv_codec_est_x4(c, s->qq, rows, est + i);
    }
    for (; i < n; i++) est[i] = qv_codec_est(c, s->qq, base + i * rb);
}

float qv_code_rows_bound(const qv_code_rows *r, qv_code_scan *s, size_t pos)
{
    const qv_codec *c = s->codec;
    if (c->kind != QV_QUANT_BIT1) return 0.0f;
    return qv_codec_bound(c, s->qq, r->data + pos * stride(c));
}
