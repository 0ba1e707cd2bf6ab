/*
 * core/distance_avx512.c -- AVX-512F distance kernels (16 floats per register).
 *
 * Same shape as the AVX2 file: functions carry __attribute__((target("avx512f"))) and run
 * only after qv_kernels_avx512() has checked the CPU. Four accumulators (64 floats per
 * iteration) in the single kernels, one per row (two steps per iteration) in the x4
 * kernels; the tail (1..15 floats) is a zero-masked load, which neither reads nor faults
 * on the lanes that are off, so every dim >= 1 is handled without a scalar loop.
 */
#include "core/distance.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define QV_AVX512 __attribute__((target("avx512f")))

QV_AVX512 static inline __mmask16 tail_mask(size_t r) { return (__mmask16)((1u << r) - 1u); }

/* Rows of float32, u8 or f16 values (core/distance.h, et: a qv_vec_type). A u8 or f16
 * row's 16 values are widened to 16 exact floats and then go through the same loop (same
 * accumulators, same order) as a float row, so its kernel's result equals the float
 * kernel's on the same values. Each kernel body below takes et as a constant and is
 * inlined into its entry points, one per row type. A u8 or f16 tail is copied into a
 * zeroed buffer (byte- and word-masked loads need AVX-512BW); a float tail is a
 * zero-masked load. */
#define QV_AVX512_INLINE QV_AVX512 static inline __attribute__((always_inline))

QV_AVX512 static inline __m512 u8x16(const uint8_t *b)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b)));
}

/* The 16 values of row b from index i. */
QV_AVX512 static inline __m512 f16x16(const uint16_t *b)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)b));
}

QV_AVX512_INLINE __m512 row16(const void *b, size_t i, int et)
{
    if (et == QV_VEC_U8) return u8x16((const uint8_t *)b + i);
    if (et == QV_VEC_F16) return f16x16((const uint16_t *)b + i);
    return _mm512_loadu_ps((const float *)b + i);
}

/* The r (1..16) values of row b from index i, zeros after; m = tail_mask(r). */
QV_AVX512_INLINE __m512 row_tail(const void *b, size_t i, size_t r, __mmask16 m, int et)
{
    if (et == QV_VEC_F32) return _mm512_maskz_loadu_ps(m, (const float *)b + i);
    if (et == QV_VEC_F16) {
        uint16_t h[16] = {0};
        memcpy(h, (const uint16_t *)b + i, r * sizeof *h);
        return f16x16(h);
    }
    uint8_t t[16] = {0};
    memcpy(t, (const uint8_t *)b + i, r);
    return u8x16(t);
}

QV_AVX512_INLINE float l2sq_rows(const float *a, const void *b, size_t dim, int et)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), row16(b, i, et));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), row16(b, i + 16, et));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), row16(b, i + 32, et));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), row16(b, i + 48, et));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= dim; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), row16(b, i, et));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < dim) {
        __mmask16 m = tail_mask(dim - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), row_tail(b, i, dim - i, m, et));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

QV_AVX512_INLINE float dot_rows(const float *a, const void *b, size_t dim, int et)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), row16(b, i, et), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), row16(b, i + 16, et), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), row16(b, i + 32, et), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), row16(b, i + 48, et), s3);
    }
    for (; i + 16 <= dim; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), row16(b, i, et), s0);
    if (i < dim) {
        __mmask16 m = tail_mask(dim - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), row_tail(b, i, dim - i, m, et), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* out[j] = |a - b_j|^2 (l2) or -<a, b_j> (else), the four rows in one pass over the query. */
QV_AVX512_INLINE void rows_x4(const float *a, const void *b0, const void *b1, const void *b2, const void *b3,
                              size_t dim, float out[4], int l2, int et)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    __m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
    __m512 t2 = _mm512_setzero_ps(), t3 = _mm512_setzero_ps();
    size_t i = 0;
#define STEP(acc, q, row) \
    (l2 ? _mm512_fmadd_ps(_mm512_sub_ps(q, row), _mm512_sub_ps(q, row), acc) : _mm512_fmadd_ps(q, row, acc))
    for (; i + 32 <= dim; i += 32) {
        __m512 q = _mm512_loadu_ps(a + i), r = _mm512_loadu_ps(a + i + 16);
        s0 = STEP(s0, q, row16(b0, i, et));
        s1 = STEP(s1, q, row16(b1, i, et));
        s2 = STEP(s2, q, row16(b2, i, et));
        s3 = STEP(s3, q, row16(b3, i, et));
        t0 = STEP(t0, r, row16(b0, i + 16, et));
        t1 = STEP(t1, r, row16(b1, i + 16, et));
        t2 = STEP(t2, r, row16(b2, i + 16, et));
        t3 = STEP(t3, r, row16(b3, i + 16, et));
    }
    for (; i < dim; i += 16) {
        size_t n = dim - i < 16 ? dim - i : 16;
        __mmask16 m = tail_mask(n);
        __m512 q = _mm512_maskz_loadu_ps(m, a + i);
        s0 = STEP(s0, q, row_tail(b0, i, n, m, et));
        s1 = STEP(s1, q, row_tail(b1, i, n, m, et));
        s2 = STEP(s2, q, row_tail(b2, i, n, m, et));
        s3 = STEP(s3, q, row_tail(b3, i, n, m, et));
    }
#undef STEP
    const float sign = l2 ? 1.0f : -1.0f;
    out[0] = sign * _mm512_reduce_add_ps(_mm512_add_ps(s0, t0));
    out[1] = sign * _mm512_reduce_add_ps(_mm512_add_ps(s1, t1));
    out[2] = sign * _mm512_reduce_add_ps(_mm512_add_ps(s2, t2));
    out[3] = sign * _mm512_reduce_add_ps(_mm512_add_ps(s3, t3));
}

QV_AVX512 static float avx512_l2sq(const float *a, const float *b, size_t dim) { return l2sq_rows(a, b, dim, QV_VEC_F32); }
QV_AVX512 static float avx512_dot(const float *a, const float *b, size_t dim) { return dot_rows(a, b, dim, QV_VEC_F32); }
QV_AVX512 static float avx512_neg_dot(const float *a, const float *b, size_t dim) { return -dot_rows(a, b, dim, QV_VEC_F32); }
QV_AVX512 static void avx512_l2sq_x4(const float *a, const float *const b[4], size_t dim, float out[4])
{
    rows_x4(a, b[0], b[1], b[2], b[3], dim, out, 1, QV_VEC_F32);
}

QV_AVX512 static void avx512_neg_dot_x4(const float *a, const float *const b[4], size_t dim, float out[4])
{
    rows_x4(a, b[0], b[1], b[2], b[3], dim, out, 0, QV_VEC_F32);
}

/* The four entry points of the stored element type T (qv_vec_type ET): avx512_l2sq_NAME,
 * avx512_neg_dot_NAME and their x4 forms, the bodies above with ET a constant. */
#define AVX512_ROW_ENTRIES(NAME, T, ET)                                                                  \
    QV_AVX512 static float avx512_l2sq_##NAME(const float *a, const T *b, size_t dim)                   \
    {                                                                                                    \
        return l2sq_rows(a, b, dim, ET);                                                                 \
    }                                                                                                    \
    QV_AVX512 static float avx512_neg_dot_##NAME(const float *a, const T *b, size_t dim)                \
    {                                                                                                    \
        return -dot_rows(a, b, dim, ET);                                                                 \
    }                                                                                                    \
    QV_AVX512 static void avx512_l2sq_##NAME##_x4(const float *a, const T *const b[4], size_t dim,      \
                                                  float out[4])                                          \
    {                                                                                                    \
        rows_x4(a, b[0], b[1], b[2], b[3], dim, out, 1, ET);                                             \
    }                                                                                                    \
    QV_AVX512 static void avx512_neg_dot_##NAME##_x4(const float *a, const T *const b[4], size_t dim,   \
                                                     float out[4])                                       \
    {                                                                                                    \
        rows_x4(a, b[0], b[1], b[2], b[3], dim, out, 0, ET);                                             \
    }

AVX512_ROW_ENTRIES(u8, uint8_t, QV_VEC_U8)
AVX512_ROW_ENTRIES(f16, uint16_t, QV_VEC_F16)

static const qv_kernels avx512_table = {
    "avx512", avx512_l2sq, avx512_dot, avx512_neg_dot, avx512_l2sq_x4, avx512_neg_dot_x4,
    avx512_l2sq_u8, avx512_neg_dot_u8, avx512_l2sq_u8_x4, avx512_neg_dot_u8_x4,
    avx512_l2sq_f16, avx512_neg_dot_f16, avx512_l2sq_f16_x4, avx512_neg_dot_f16_x4,
};

const qv_kernels *qv_kernels_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? &avx512_table : NULL;
}

#else /* not x86-64: no AVX-512 */

const qv_kernels *qv_kernels_avx512(void) { return NULL; }

#endif
