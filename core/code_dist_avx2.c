/*
 * core/code_dist_avx2.c -- AVX2 kernels over quantized codes (see core/code_dist.h).
 *
 * u8 codes (0..255) times int8 queries would overflow VPMADDUBSW's saturating 16-bit
 * pairs (2 * 255 * 127 > 32767), so both sides are widened to 16 bits and multiplied with
 * VPMADDWD (16 dimensions per step). u4 codes (0..15) fit VPMADDUBSW (2 * 15 * 127), so
 * 32 bytes = 64 dimensions per step: mask the low nibbles, shift and mask the high ones,
 * two VPMADDUBSW and a VPMADDWD by ones to widen the pairs into 32-bit sums. Bit codes
 * count nibbles with VPSHUFB, 256 bits a step (bits_step), and the last 0-3 words with
 * POPCNT.
 */
#include "core/code_dist.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define QV_AVX2 __attribute__((target("avx2,fma,popcnt")))

QV_AVX2 static inline int32_t hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* 16 products of u8 codes and s8 query bytes, summed in pairs into 8 int32 lanes. */
QV_AVX2 static inline __m256i mul16(const uint8_t *c, __m256i q16)
{
    __m256i c16 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)c));
    return _mm256_madd_epi16(c16, q16);
}

QV_AVX2 static int32_t avx2_dot_u8(const uint8_t *c, const int8_t *q, size_t n)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i q0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + i)));
        __m256i q1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + i + 16)));
        s0 = _mm256_add_epi32(s0, mul16(c + i, q0));
        s1 = _mm256_add_epi32(s1, mul16(c + i + 16, q1));
    }
    if (i + 16 <= n) {
        __m256i q0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + i)));
        s0 = _mm256_add_epi32(s0, mul16(c + i, q0));
        i += 16;
    }
    int32_t s = hsum_i32(_mm256_add_epi32(s0, s1));
    for (; i < n; i++) s += (int32_t)c[i] * q[i];
    return s;
}

QV_AVX2 static void avx2_dot_u8_x4(const uint8_t *const c[4], const int8_t *q, size_t n, int32_t out[4])
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    __m256i s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i q0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + i)));
        s0 = _mm256_add_epi32(s0, mul16(c[0] + i, q0));
        s1 = _mm256_add_epi32(s1, mul16(c[1] + i, q0));
        s2 = _mm256_add_epi32(s2, mul16(c[2] + i, q0));
        s3 = _mm256_add_epi32(s3, mul16(c[3] + i, q0));
    }
    out[0] = hsum_i32(s0);
    out[1] = hsum_i32(s1);
    out[2] = hsum_i32(s2);
    out[3] = hsum_i32(s3);
    for (; i < n; i++)
        for (int j = 0; j < 4; j++) out[j] += (int32_t)c[j][i] * q[i];
}

/* 32 code bytes against query bytes lo (for the low nibbles) and hi (high nibbles):
 * 16 int16 pair sums, widened to 8 int32 lanes. */
QV_AVX2 static inline __m256i u4_step(__m256i c, __m256i qlo, __m256i qhi)
{
    const __m256i m = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256i lo = _mm256_and_si256(c, m), hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m);
    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, qlo), _mm256_maddubs_epi16(hi, qhi));
    return _mm256_madd_epi16(p, ones);          /* |p| <= 4 * 15 * 127: no overflow */
}

#define LD(p) _mm256_loadu_si256((const __m256i *)(p))

QV_AVX2 static int32_t avx2_dot_u4(const uint8_t *c, const int8_t *q, size_t dim)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t bytes = qv_u4_bytes(dim), off = 0;
    for (; off + 64 <= bytes; off += 64, c += 64, q += 128) {
        s0 = _mm256_add_epi32(s0, u4_step(LD(c), LD(q), LD(q + 64)));
        s1 = _mm256_add_epi32(s1, u4_step(LD(c + 32), LD(q + 32), LD(q + 96)));
    }
    if (off < bytes) s0 = _mm256_add_epi32(s0, u4_step(LD(c), LD(q), LD(q + 32)));
    return hsum_i32(_mm256_add_epi32(s0, s1));
}

QV_AVX2 static void avx2_dot_u4_x4(const uint8_t *const c[4], const int8_t *q, size_t dim, int32_t out[4])
{
    __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                    _mm256_setzero_si256()};
    size_t bytes = qv_u4_bytes(dim), off = 0;
    for (; off + 64 <= bytes; off += 64, q += 128) {
        __m256i a = LD(q), b = LD(q + 64), e = LD(q + 32), f = LD(q + 96);
        for (int j = 0; j < 4; j++) {
            s[j] = _mm256_add_epi32(s[j], u4_step(LD(c[j] + off), a, b));
            s[j] = _mm256_add_epi32(s[j], u4_step(LD(c[j] + off + 32), e, f));
        }
    }
    if (off < bytes) {
        __m256i a = LD(q), b = LD(q + 32);
        for (int j = 0; j < 4; j++) s[j] = _mm256_add_epi32(s[j], u4_step(LD(c[j] + off), a, b));
    }
    for (int j = 0; j < 4; j++) out[j] = hsum_i32(s[j]);
}

/* sum_j 2^j popcount(b & p_j) over 32 bytes, as four 64-bit partial sums. AVX2 has no
 * vector popcount: each nibble's count is looked up with VPSHUFB in a table that already
 * carries the plane's weight 2^j (at most 4 * 8 = 32). The code's nibbles are split once
 * for the four planes (the planes' by the caller: once for four codes in the x4 form). The
 * eight bytes looked up sum to at most 2 nibbles x 4 x (1 + 2 + 4 + 8) = 120 per byte, and
 * VPSADBW adds each group of eight bytes into a 64-bit lane. */
QV_AVX2 static inline __m256i bits_step(__m256i b, const __m256i plo[4], const __m256i phi[4], const __m256i lut[4])
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(b, m4), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
    __m256i s = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
        s = _mm256_add_epi8(s, _mm256_shuffle_epi8(lut[j], _mm256_and_si256(lo, plo[j])));
        s = _mm256_add_epi8(s, _mm256_shuffle_epi8(lut[j], _mm256_and_si256(hi, phi[j])));
    }
    return _mm256_sad_epu8(s, _mm256_setzero_si256());
}

/* The nibble popcounts (at most 4) times 2^j: a shift inside each byte, as none spills. */
QV_AVX2 static inline void nibble_luts(__m256i lut[4])
{
    const __m256i pop = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    for (int j = 0; j < 4; j++) lut[j] = _mm256_sll_epi16(pop, _mm_cvtsi32_si128(j));
}

/* The four planes' words [w, w + 4), split into low and high nibbles. */
QV_AVX2 static inline void split_planes(const uint64_t *planes, size_t words, size_t w, __m256i plo[4], __m256i phi[4])
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int j = 0; j < 4; j++) {
        __m256i p = _mm256_loadu_si256((const __m256i *)(planes + j * words + w));
        plo[j] = _mm256_and_si256(p, m4);
        phi[j] = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
    }
}

/* The sum of four 64-bit lanes plus the words from w on through POPCNT. */
QV_AVX2 static inline uint32_t finish_bits(__m256i acc, const uint64_t *bits, const uint64_t *planes, size_t words,
                                           size_t w)
{
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    uint64_t t = (uint64_t)_mm_cvtsi128_si64(s) + (uint64_t)_mm_extract_epi64(s, 1);
    for (; w < words; w++)
        for (unsigned j = 0; j < 4; j++) t += (uint64_t)_mm_popcnt_u64(bits[w] & planes[j * words + w]) << j;
    return (uint32_t)t;
}

QV_AVX2 static uint32_t avx2_dot_bits(const uint64_t *bits, const uint64_t *planes, size_t words)
{
    __m256i lut[4], plo[4], phi[4], acc = _mm256_setzero_si256();
    nibble_luts(lut);
    size_t w = 0;
    for (; w + 4 <= words; w += 4) {
        split_planes(planes, words, w, plo, phi);
        acc = _mm256_add_epi64(acc, bits_step(_mm256_loadu_si256((const __m256i *)(bits + w)), plo, phi, lut));
    }
    return finish_bits(acc, bits, planes, words, w);
}

/* Four codes against the planes, four words (256 bits) at a time: each step splits the
 * planes' nibbles once for the four codes; the words past the last multiple of four go
 * through POPCNT (finish_bits). */
QV_AVX2 static void avx2_dot_bits_x4(const uint64_t *const bits[4], const uint64_t *planes, size_t words,
                                     uint32_t out[4])
{
    __m256i lut[4], plo[4], phi[4];
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};
    nibble_luts(lut);
    size_t w = 0;
    for (; w + 4 <= words; w += 4) {
        split_planes(planes, words, w, plo, phi);
        for (int c = 0; c < 4; c++)
            acc[c] = _mm256_add_epi64(acc[c], bits_step(_mm256_loadu_si256((const __m256i *)(bits[c] + w)), plo, phi, lut));
    }
    for (int c = 0; c < 4; c++) out[c] = finish_bits(acc[c], bits[c], planes, words, w);
}

/* Eight rows as two fours: the 256-bit step has no room to share the planes wider. */
QV_AVX2 static void avx2_dot_bits_x8(const uint64_t *const bits[8], const uint64_t *planes, size_t words,
                                     uint32_t out[8])
{
    avx2_dot_bits_x4(bits, planes, words, out);
    avx2_dot_bits_x4(bits + 4, planes, words, out + 4);
}

/* Bit j of 32 bytes, moved to the sign bit and gathered by VPMOVMSKB. */
QV_AVX2 static void avx2_bit_planes(const uint8_t *u, size_t words, uint64_t *planes)
{
    for (size_t w = 0; w < words; w++) {
        __m256i a = LD(u + 64 * w), b = LD(u + 64 * w + 32);
        for (unsigned j = 0; j < 4; j++) {
            uint32_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_slli_epi16(a, (int)(7 - j)));
            uint32_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_slli_epi16(b, (int)(7 - j)));
            planes[j * words + w] = (uint64_t)lo | (uint64_t)hi << 32;
        }
    }
}

/* Float query against u8 codes: 16 bytes widened to two x 8 floats per step, two FMA
 * chains; the tail one value at a time. */
QV_AVX2 static float avx2_dotf_u8(const uint8_t *c, const float *q, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(c + i));
        __m256 c0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
        __m256 c1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)));
        s0 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(q + i), s0);
        s1 = _mm256_fmadd_ps(c1, _mm256_loadu_ps(q + i + 8), s1);
    }
    __m256 s = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float t = _mm_cvtss_f32(h);
    for (; i < n; i++) t += (float)c[i] * q[i];
    return t;
}

static const qv_code_kernels avx2_table = {
    "avx2", avx2_dot_u8, avx2_dot_u8_x4, avx2_dot_u4, avx2_dot_u4_x4, avx2_dot_bits, avx2_dot_bits_x4,
    avx2_dot_bits_x8, avx2_bit_planes, avx2_dotf_u8,
};

const qv_code_kernels *qv_code_kernels_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt") ? &avx2_table
                                                                                                      : NULL;
}

#else

const qv_code_kernels *qv_code_kernels_avx2(void) { return NULL; }

#endif
