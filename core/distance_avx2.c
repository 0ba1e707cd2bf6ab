/*
 * core/distance_avx2.c -- AVX2+FMA distance kernels (8 floats per register).
 *
 * Every function that touches an intrinsic carries __attribute__((target("avx2,fma"))),
 * so this file builds with the baseline flags and only runs after qv_kernels_avx2() has
 * checked the CPU. Main loops use four accumulators (32 floats per iteration) to hide the
 * 4-cycle FMA latency; the last 1..7 floats are read with _mm256_maskload_ps, which does
 * not touch (or fault on) the masked-out lanes, so no scalar tail and no over-read.
 * The x4 kernels share each load of the query across four database rows (one
 * accumulator per row, two steps per iteration).
 */
#include "core/distance.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define QV_AVX2 __attribute__((target("avx2,fma,f16c")))

/* lanes [0, r) on, the rest off: the mask is the 8 words starting at tail_masks + 8 - r */
static const int tail_masks[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

QV_AVX2 static inline __m256i tail_mask(size_t r)
{
    return _mm256_loadu_si256((const __m256i *)(tail_masks + 8 - r));
}

QV_AVX2 static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Rows of float32, u8 or f16 values (core/distance.h, et: a qv_vec_type). A u8 or f16
 * row's 8 values are widened to 8 exact floats and then go through the same loop (same
 * accumulators, same order) as a float row, so its kernel's result equals the float
 * kernel's on the same values. Each kernel body below takes et as a constant and is
 * inlined into its entry points, one per row type. A u8 or f16 tail is copied into a
 * zeroed buffer (there is no byte- or word-masked load); a float tail is a masked load. */
#define QV_AVX2_INLINE QV_AVX2 static inline __attribute__((always_inline))

QV_AVX2 static inline __m256 u8x8(const uint8_t *b)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)b)));
}

/* The 8 values of row b from index i. */
QV_AVX2 static inline __m256 f16x8(const uint16_t *b)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
}

QV_AVX2_INLINE __m256 row8(const void *b, size_t i, int et)
{
    if (et == QV_VEC_U8) return u8x8((const uint8_t *)b + i);
    if (et == QV_VEC_F16) return f16x8((const uint16_t *)b + i);
    return _mm256_loadu_ps((const float *)b + i);
}

/* The r (1..8) values of row b from index i, zeros after; m = tail_mask(r). */
QV_AVX2_INLINE __m256 row_tail(const void *b, size_t i, size_t r, __m256i m, int et)
{
    if (et == QV_VEC_F32) return _mm256_maskload_ps((const float *)b + i, m);
    if (et == QV_VEC_F16) {
        uint16_t h[8] = {0};
        memcpy(h, (const uint16_t *)b + i, r * sizeof *h);
        return f16x8(h);
    }
    uint8_t t[16] = {0};
    memcpy(t, (const uint8_t *)b + i, r);
    return u8x8(t);
}

QV_AVX2_INLINE float l2sq_rows(const float *a, const void *b, size_t dim, int et)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), row8(b, i, et));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), row8(b, i + 8, et));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), row8(b, i + 16, et));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), row8(b, i + 24, et));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= dim; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), row8(b, i, et));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    if (i < dim) {
        __m256i m = tail_mask(dim - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), row_tail(b, i, dim - i, m, et));
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

QV_AVX2_INLINE float dot_rows(const float *a, const void *b, size_t dim, int et)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), row8(b, i, et), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), row8(b, i + 8, et), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), row8(b, i + 16, et), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), row8(b, i + 24, et), s3);
    }
    for (; i + 8 <= dim; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), row8(b, i, et), s0);
    if (i < dim) {
        __m256i m = tail_mask(dim - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), row_tail(b, i, dim - i, m, et), s1);
    }
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/* Four horizontal sums at once: out[j] = sum of the lanes of s[j]. */
QV_AVX2 static inline void hsum4(__m256 s0, __m256 s1, __m256 s2, __m256 s3, float out[4])
{
    __m256 t01 = _mm256_hadd_ps(s0, s1);               /* a01 a23 b01 b23 | a45 a67 b45 b67 */
    __m256 t23 = _mm256_hadd_ps(s2, s3);
    __m256 t = _mm256_hadd_ps(t01, t23);               /* a0-3 b0-3 c0-3 d0-3 | a4-7 ... */
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    _mm_storeu_ps(out, r);
}

QV_AVX2_INLINE void l2sq_rows_x4(const float *a, const void *b0, const void *b1, const void *b2, const void *b3,
                                size_t dim, float out[4], int et)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    __m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
    __m256 t2 = _mm256_setzero_ps(), t3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 q = _mm256_loadu_ps(a + i), r = _mm256_loadu_ps(a + i + 8), d;
        d = _mm256_sub_ps(q, row8(b0, i, et)); s0 = _mm256_fmadd_ps(d, d, s0);
        d = _mm256_sub_ps(q, row8(b1, i, et)); s1 = _mm256_fmadd_ps(d, d, s1);
        d = _mm256_sub_ps(q, row8(b2, i, et)); s2 = _mm256_fmadd_ps(d, d, s2);
        d = _mm256_sub_ps(q, row8(b3, i, et)); s3 = _mm256_fmadd_ps(d, d, s3);
        d = _mm256_sub_ps(r, row8(b0, i + 8, et)); t0 = _mm256_fmadd_ps(d, d, t0);
        d = _mm256_sub_ps(r, row8(b1, i + 8, et)); t1 = _mm256_fmadd_ps(d, d, t1);
        d = _mm256_sub_ps(r, row8(b2, i + 8, et)); t2 = _mm256_fmadd_ps(d, d, t2);
        d = _mm256_sub_ps(r, row8(b3, i + 8, et)); t3 = _mm256_fmadd_ps(d, d, t3);
    }
    for (; i < dim; i += 8) {
        size_t n = dim - i < 8 ? dim - i : 8;
        __m256i m = tail_mask(n);
        __m256 q = _mm256_maskload_ps(a + i, m), d;
        d = _mm256_sub_ps(q, row_tail(b0, i, n, m, et)); s0 = _mm256_fmadd_ps(d, d, s0);
        d = _mm256_sub_ps(q, row_tail(b1, i, n, m, et)); s1 = _mm256_fmadd_ps(d, d, s1);
        d = _mm256_sub_ps(q, row_tail(b2, i, n, m, et)); s2 = _mm256_fmadd_ps(d, d, s2);
        d = _mm256_sub_ps(q, row_tail(b3, i, n, m, et)); s3 = _mm256_fmadd_ps(d, d, s3);
    }
    hsum4(_mm256_add_ps(s0, t0), _mm256_add_ps(s1, t1), _mm256_add_ps(s2, t2), _mm256_add_ps(s3, t3), out);
}

QV_AVX2_INLINE void neg_dot_rows_x4(const float *a, const void *b0, const void *b1, const void *b2, const void *b3,
                                   size_t dim, float out[4], int et)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    __m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
    __m256 t2 = _mm256_setzero_ps(), t3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 q = _mm256_loadu_ps(a + i), r = _mm256_loadu_ps(a + i + 8);
        s0 = _mm256_fmadd_ps(q, row8(b0, i, et), s0);
        s1 = _mm256_fmadd_ps(q, row8(b1, i, et), s1);
        s2 = _mm256_fmadd_ps(q, row8(b2, i, et), s2);
        s3 = _mm256_fmadd_ps(q, row8(b3, i, et), s3);
        t0 = _mm256_fmadd_ps(r, row8(b0, i + 8, et), t0);
        t1 = _mm256_fmadd_ps(r, row8(b1, i + 8, et), t1);
        t2 = _mm256_fmadd_ps(r, row8(b2, i + 8, et), t2);
        t3 = _mm256_fmadd_ps(r, row8(b3, i + 8, et), t3);
    }
    for (; i < dim; i += 8) {
        size_t n = dim - i < 8 ? dim - i : 8;
        __m256i m = tail_mask(n);
        __m256 q = _mm256_maskload_ps(a + i, m);
        s0 = _mm256_fmadd_ps(q, row_tail(b0, i, n, m, et), s0);
        s1 = _mm256_fmadd_ps(q, row_tail(b1, i, n, m, et), s1);
        s2 = _mm256_fmadd_ps(q, row_tail(b2, i, n, m, et), s2);
        s3 = _mm256_fmadd_ps(q, row_tail(b3, i, n, m, et), s3);
    }
    hsum4(_mm256_add_ps(s0, t0), _mm256_add_ps(s1, t1), _mm256_add_ps(s2, t2), _mm256_add_ps(s3, t3), out);
    for (int j = 0; j < 4; j++) out[j] = -out[j];
}

QV_AVX2 static float avx2_l2sq(const float *a, const float *b, size_t dim) { return l2sq_rows(a, b, dim, QV_VEC_F32); }
QV_AVX2 static float avx2_dot(const float *a, const float *b, size_t dim) { return dot_rows(a, b, dim, QV_VEC_F32); }
QV_AVX2 static float avx2_neg_dot(const float *a, const float *b, size_t dim) { return -dot_rows(a, b, dim, QV_VEC_F32); }

QV_AVX2 static void avx2_l2sq_x4(const float *a, const float *const b[4], size_t dim, float out[4])
{
    l2sq_rows_x4(a, b[0], b[1], b[2], b[3], dim, out, QV_VEC_F32);
}

QV_AVX2 static void avx2_neg_dot_x4(const float *a, const float *const b[4], size_t dim, float out[4])
{
    neg_dot_rows_x4(a, b[0], b[1], b[2], b[3], dim, out, QV_VEC_F32);
}

/* The four entry points of the stored element type T (qv_vec_type ET): avx2_l2sq_NAME,
 * avx2_neg_dot_NAME and their x4 forms, the bodies above with ET a constant. */
#define AVX2_ROW_ENTRIES(NAME, T, ET)                                                                    \
    QV_AVX2 static float avx2_l2sq_##NAME(const float *a, const T *b, size_t dim)                       \
    {                                                                                                    \
        return l2sq_rows(a, b, dim, ET);                                                                 \
    }                                                                                                    \
    QV_AVX2 static float avx2_neg_dot_##NAME(const float *a, const T *b, size_t dim)                    \
    {                                                                                                    \
        return -dot_rows(a, b, dim, ET);                                                                 \
    }                                                                                                    \
    QV_AVX2 static void avx2_l2sq_##NAME##_x4(const float *a, const T *const b[4], size_t dim,          \
                                              float out[4])                                              \
    {                                                                                                    \
        l2sq_rows_x4(a, b[0], b[1], b[2], b[3], dim, out, ET);                                           \
    }                                                                                                    \
    QV_AVX2 static void avx2_neg_dot_##NAME##_x4(const float *a, const T *const b[4], size_t dim,       \
                                                 float out[4])                                           \
    {                                                                                                    \
        neg_dot_rows_x4(a, b[0], b[1], b[2], b[3], dim, out, ET);                                        \
    }

AVX2_ROW_ENTRIES(u8, uint8_t, QV_VEC_U8)
AVX2_ROW_ENTRIES(f16, uint16_t, QV_VEC_F16)

static const qv_kernels avx2_table = {
    "avx2", avx2_l2sq, avx2_dot, avx2_neg_dot, avx2_l2sq_x4, avx2_neg_dot_x4,
    avx2_l2sq_u8, avx2_neg_dot_u8, avx2_l2sq_u8_x4, avx2_neg_dot_u8_x4,
    avx2_l2sq_f16, avx2_neg_dot_f16, avx2_l2sq_f16_x4, avx2_neg_dot_f16_x4,
};

const qv_kernels *qv_kernels_avx2(void)
{
    __builtin_cpu_init();
    /* F16C (the f16 rows' conversion) came with or before AVX2 on every x86 CPU that has
     * AVX2; it is checked all the same, as the table needs it. */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")
               ? &avx2_table
               : NULL;
}

#else /* not x86-64: no AVX2 */

const qv_kernels *qv_kernels_avx2(void) { return NULL; }

#endif
