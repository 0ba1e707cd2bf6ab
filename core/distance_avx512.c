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

QV_AVX512 static float avx512_l2sq(const float *a, const float *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= dim; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < dim) {
        __mmask16 m = tail_mask(dim - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

QV_AVX512 static float avx512_dot(const float *a, const float *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= dim; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < dim) {
        __mmask16 m = tail_mask(dim - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

QV_AVX512 static float avx512_neg_dot(const float *a, const float *b, size_t dim) { return -avx512_dot(a, b, dim); }

/* u8 rows: 16 bytes widened to 16 exact floats, then the float kernels' loop (same
 * accumulators, same order), so the result equals the float kernel's on the same values.
 * The tail's bytes are copied into a zeroed buffer: byte-masked loads need AVX-512BW. */
QV_AVX512 static inline __m512 u8x16(const uint8_t *b)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b)));
}

QV_AVX512 static inline __m512 u8_tail(const uint8_t *b, size_t r)
{
    uint8_t t[16] = {0};
    memcpy(t, b, r);
    return u8x16(t);
}

QV_AVX512 static float avx512_l2sq_u8(const float *a, const uint8_t *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), u8x16(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), u8x16(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), u8x16(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), u8x16(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= dim; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), u8x16(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < dim) {
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(tail_mask(dim - i), a + i), u8_tail(b + i, dim - i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

QV_AVX512 static float avx512_neg_dot_u8(const float *a, const uint8_t *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), u8x16(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), u8x16(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), u8x16(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), u8x16(b + i + 48), s3);
    }
    for (; i + 16 <= dim; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), u8x16(b + i), s0);
    if (i < dim)
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(dim - i), a + i), u8_tail(b + i, dim - i), s1);
    return -_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

QV_AVX512 static void avx512_l2sq_x4(const float *a, const float *const b[4], size_t dim, float out[4])
{
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    __m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
    __m512 t2 = _mm512_setzero_ps(), t3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 q = _mm512_loadu_ps(a + i), r = _mm512_loadu_ps(a + i + 16), d;
        d = _mm512_sub_ps(q, _mm512_loadu_ps(b0 + i)); s0 = _mm512_fmadd_ps(d, d, s0);
        d = _mm512_sub_ps(q, _mm512_loadu_ps(b1 + i)); s1 = _mm512_fmadd_ps(d, d, s1);
        d = _mm512_sub_ps(q, _mm512_loadu_ps(b2 + i)); s2 = _mm512_fmadd_ps(d, d, s2);
        d = _mm512_sub_ps(q, _mm512_loadu_ps(b3 + i)); s3 = _mm512_fmadd_ps(d, d, s3);
        d = _mm512_sub_ps(r, _mm512_loadu_ps(b0 + i + 16)); t0 = _mm512_fmadd_ps(d, d, t0);
        d = _mm512_sub_ps(r, _mm512_loadu_ps(b1 + i + 16)); t1 = _mm512_fmadd_ps(d, d, t1);
        d = _mm512_sub_ps(r, _mm512_loadu_ps(b2 + i + 16)); t2 = _mm512_fmadd_ps(d, d, t2);
        d = _mm512_sub_ps(r, _mm512_loadu_ps(b3 + i + 16)); t3 = _mm512_fmadd_ps(d, d, t3);
    }
    for (; i < dim; i += 16) {
        __mmask16 m = tail_mask(dim - i < 16 ? dim - i : 16);
        __m512 q = _mm512_maskz_loadu_ps(m, a + i), d;
        d = _mm512_sub_ps(q, _mm512_maskz_loadu_ps(m, b0 + i)); s0 = _mm512_fmadd_ps(d, d, s0);
        d = _mm512_sub_ps(q, _mm512_maskz_loadu_ps(m, b1 + i)); s1 = _mm512_fmadd_ps(d, d, s1);
        d = _mm512_sub_ps(q, _mm512_maskz_loadu_ps(m, b2 + i)); s2 = _mm512_fmadd_ps(d, d, s2);
        d = _mm512_sub_ps(q, _mm512_maskz_loadu_ps(m, b3 + i)); s3 = _mm512_fmadd_ps(d, d, s3);
    }
    out[0] = _mm512_reduce_add_ps(_mm512_add_ps(s0, t0));
    out[1] = _mm512_reduce_add_ps(_mm512_add_ps(s1, t1));
    out[2] = _mm512_reduce_add_ps(_mm512_add_ps(s2, t2));
    out[3] = _mm512_reduce_add_ps(_mm512_add_ps(s3, t3));
}

QV_AVX512 static void avx512_neg_dot_x4(const float *a, const float *const b[4], size_t dim, float out[4])
{
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    __m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
    __m512 t2 = _mm512_setzero_ps(), t3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 q = _mm512_loadu_ps(a + i), r = _mm512_loadu_ps(a + i + 16);
        s0 = _mm512_fmadd_ps(q, _mm512_loadu_ps(b0 + i), s0);
        s1 = _mm512_fmadd_ps(q, _mm512_loadu_ps(b1 + i), s1);
        s2 = _mm512_fmadd_ps(q, _mm512_loadu_ps(b2 + i), s2);
        s3 = _mm512_fmadd_ps(q, _mm512_loadu_ps(b3 + i), s3);
        t0 = _mm512_fmadd_ps(r, _mm512_loadu_ps(b0 + i + 16), t0);
        t1 = _mm512_fmadd_ps(r, _mm512_loadu_ps(b1 + i + 16), t1);
        t2 = _mm512_fmadd_ps(r, _mm512_loadu_ps(b2 + i + 16), t2);
        t3 = _mm512_fmadd_ps(r, _mm512_loadu_ps(b3 + i + 16), t3);
    }
    for (; i < dim; i += 16) {
        __mmask16 m = tail_mask(dim - i < 16 ? dim - i : 16);
        __m512 q = _mm512_maskz_loadu_ps(m, a + i);
        s0 = _mm512_fmadd_ps(q, _mm512_maskz_loadu_ps(m, b0 + i), s0);
        s1 = _mm512_fmadd_ps(q, _mm512_maskz_loadu_ps(m, b1 + i), s1);
        s2 = _mm512_fmadd_ps(q, _mm512_maskz_loadu_ps(m, b2 + i), s2);
        s3 = _mm512_fmadd_ps(q, _mm512_maskz_loadu_ps(m, b3 + i), s3);
    }
    out[0] = -_mm512_reduce_add_ps(_mm512_add_ps(s0, t0));
    out[1] = -_mm512_reduce_add_ps(_mm512_add_ps(s1, t1));
    out[2] = -_mm512_reduce_add_ps(_mm512_add_ps(s2, t2));
    out[3] = -_mm512_reduce_add_ps(_mm512_add_ps(s3, t3));
}

/* x4 on u8 rows: the float x4 loops with the rows widened, as the single kernels. */
QV_AVX512 static void avx512_l2sq_u8_x4(const float *a, const uint8_t *const b[4], size_t dim, float out[4])
{
    const uint8_t *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    __m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
    __m512 t2 = _mm512_setzero_ps(), t3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 q = _mm512_loadu_ps(a + i), r = _mm512_loadu_ps(a + i + 16), d;
        d = _mm512_sub_ps(q, u8x16(b0 + i)); s0 = _mm512_fmadd_ps(d, d, s0);
        d = _mm512_sub_ps(q, u8x16(b1 + i)); s1 = _mm512_fmadd_ps(d, d, s1);
        d = _mm512_sub_ps(q, u8x16(b2 + i)); s2 = _mm512_fmadd_ps(d, d, s2);
        d = _mm512_sub_ps(q, u8x16(b3 + i)); s3 = _mm512_fmadd_ps(d, d, s3);
        d = _mm512_sub_ps(r, u8x16(b0 + i + 16)); t0 = _mm512_fmadd_ps(d, d, t0);
        d = _mm512_sub_ps(r, u8x16(b1 + i + 16)); t1 = _mm512_fmadd_ps(d, d, t1);
        d = _mm512_sub_ps(r, u8x16(b2 + i + 16)); t2 = _mm512_fmadd_ps(d, d, t2);
        d = _mm512_sub_ps(r, u8x16(b3 + i + 16)); t3 = _mm512_fmadd_ps(d, d, t3);
    }
    for (; i < dim; i += 16) {
        size_t n = dim - i < 16 ? dim - i : 16;
        __mmask16 m = tail_mask(n);
        __m512 q = _mm512_maskz_loadu_ps(m, a + i), d;
        d = _mm512_sub_ps(q, u8_tail(b0 + i, n)); s0 = _mm512_fmadd_ps(d, d, s0);
        d = _mm512_sub_ps(q, u8_tail(b1 + i, n)); s1 = _mm512_fmadd_ps(d, d, s1);
        d = _mm512_sub_ps(q, u8_tail(b2 + i, n)); s2 = _mm512_fmadd_ps(d, d, s2);
        d = _mm512_sub_ps(q, u8_tail(b3 + i, n)); s3 = _mm512_fmadd_ps(d, d, s3);
    }
    out[0] = _mm512_reduce_add_ps(_mm512_add_ps(s0, t0));
    out[1] = _mm512_reduce_add_ps(_mm512_add_ps(s1, t1));
    out[2] = _mm512_reduce_add_ps(_mm512_add_ps(s2, t2));
    out[3] = _mm512_reduce_add_ps(_mm512_add_ps(s3, t3));
}

QV_AVX512 static void avx512_neg_dot_u8_x4(const float *a, const uint8_t *const b[4], size_t dim, float out[4])
{
    const uint8_t *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    __m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
    __m512 t2 = _mm512_setzero_ps(), t3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 q = _mm512_loadu_ps(a + i), r = _mm512_loadu_ps(a + i + 16);
        s0 = _mm512_fmadd_ps(q, u8x16(b0 + i), s0);
        s1 = _mm512_fmadd_ps(q, u8x16(b1 + i), s1);
        s2 = _mm512_fmadd_ps(q, u8x16(b2 + i), s2);
        s3 = _mm512_fmadd_ps(q, u8x16(b3 + i), s3);
        t0 = _mm512_fmadd_ps(r, u8x16(b0 + i + 16), t0);
        t1 = _mm512_fmadd_ps(r, u8x16(b1 + i + 16), t1);
        t2 = _mm512_fmadd_ps(r, u8x16(b2 + i + 16), t2);
        t3 = _mm512_fmadd_ps(r, u8x16(b3 + i + 16), t3);
    }
    for (; i < dim; i += 16) {
        size_t n = dim - i < 16 ? dim - i : 16;
        __mmask16 m = tail_mask(n);
        __m512 q = _mm512_maskz_loadu_ps(m, a + i);
        s0 = _mm512_fmadd_ps(q, u8_tail(b0 + i, n), s0);
        s1 = _mm512_fmadd_ps(q, u8_tail(b1 + i, n), s1);
        s2 = _mm512_fmadd_ps(q, u8_tail(b2 + i, n), s2);
        s3 = _mm512_fmadd_ps(q, u8_tail(b3 + i, n), s3);
    }
    out[0] = -_mm512_reduce_add_ps(_mm512_add_ps(s0, t0));
    out[1] = -_mm512_reduce_add_ps(_mm512_add_ps(s1, t1));
    out[2] = -_mm512_reduce_add_ps(_mm512_add_ps(s2, t2));
    out[3] = -_mm512_reduce_add_ps(_mm512_add_ps(s3, t3));
}

static const qv_kernels avx512_table = {
    "avx512", avx512_l2sq, avx512_dot, avx512_neg_dot, avx512_l2sq_x4, avx512_neg_dot_x4,
    avx512_l2sq_u8, avx512_neg_dot_u8, avx512_l2sq_u8_x4, avx512_neg_dot_u8_x4,
};

const qv_kernels *qv_kernels_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? &avx512_table : NULL;
}

#else /* not x86-64: no AVX-512 */

const qv_kernels *qv_kernels_avx512(void) { return NULL; }

#endif
