/*
 * core/code_dist_avx512.c -- AVX-512 kernels over quantized codes (see core/code_dist.h).
 *
 * Three tables. "avx512" (F, BW, VL; Skylake-SP): the AVX2 scheme in 512-bit registers
 * (u8: widen to 16 bits and VPMADDWD, 32 dimensions per step; u4: VPMADDUBSW on masked
 * nibbles, 128 dimensions per 64-byte step) and VPSHUFB nibble counts for bit codes.
 * "avx512vnni" (adds AVX512_VNNI; Cascade Lake, Cooper Lake): VPDPBUSD multiplies u8 by s8
 * and adds four products into each int32 lane in one instruction (64 dimensions of u8
 * codes, or the low or high nibbles of 64 bytes of u4 codes, per instruction); bit codes
 * as in "avx512". "avx512vpopcnt" (adds AVX512_VPOPCNTDQ too; Ice Lake and later, Zen 4):
 * VPOPCNTQ counts eight words of bit codes at a time. Tails are zero-masked loads, which
 * neither read nor fault past the end.
 */
#include "core/code_dist.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define QV_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,popcnt")))
#define QV_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,popcnt")))
#define QV_VPOPCNT __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vpopcntdq,popcnt")))

#define LD512(p) _mm512_loadu_si512((const void *)(p))
#define LD256(p) _mm256_loadu_si256((const __m256i *)(p))

/* ---- avx512 (F, BW, VL) ------------------------------------------------------------ */

QV_AVX512 static inline __m512i mul32(const uint8_t *c, __m512i q16)
{
    return _mm512_madd_epi16(_mm512_cvtepu8_epi16(LD256(c)), q16);
}

QV_AVX512 static int32_t avx512_dot_u8(const uint8_t *c, const int8_t *q, size_t n)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_add_epi32(s0, mul32(c + i, _mm512_cvtepi8_epi16(LD256(q + i))));
        s1 = _mm512_add_epi32(s1, mul32(c + i + 32, _mm512_cvtepi8_epi16(LD256(q + i + 32))));
    }
    for (; i < n; i += 32) {
        __mmask32 m = n - i >= 32 ? 0xffffffffu : (__mmask32)((1u << (n - i)) - 1u);
        __m512i c16 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c + i));
        __m512i q16 = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, q + i));
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(c16, q16));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

QV_AVX512 static void avx512_dot_u8_x4(const uint8_t *const c[4], const int8_t *q, size_t n, int32_t out[4])
{
    __m512i s[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
    for (size_t i = 0; i < n; i += 32) {
        __mmask32 m = n - i >= 32 ? 0xffffffffu : (__mmask32)((1u << (n - i)) - 1u);
        __m512i q16 = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, q + i));
        for (int j = 0; j < 4; j++)
            s[j] = _mm512_add_epi32(s[j], _mm512_madd_epi16(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c[j] + i)), q16));
    }
    for (int j = 0; j < 4; j++) out[j] = _mm512_reduce_add_epi32(s[j]);
}

QV_AVX512 static inline __m512i u4_step512(__m512i c, __m512i qlo, __m512i qhi)
{
    const __m512i m = _mm512_set1_epi8(15), ones = _mm512_set1_epi16(1);
    __m512i lo = _mm512_and_si512(c, m), hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), m);
    __m512i p = _mm512_add_epi16(_mm512_maddubs_epi16(lo, qlo), _mm512_maddubs_epi16(hi, qhi));
    return _mm512_madd_epi16(p, ones);          /* |p| <= 4 * 15 * 127 */
}

QV_AVX512 static inline __m256i u4_step256(__m256i c, __m256i qlo, __m256i qhi)
{
    const __m256i m = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256i lo = _mm256_and_si256(c, m), hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m);
    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, qlo), _mm256_maddubs_epi16(hi, qhi));
    return _mm256_madd_epi16(p, ones);
}

QV_AVX512 static inline int32_t hsum256(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

QV_AVX512 static int32_t avx512_dot_u4(const uint8_t *c, const int8_t *q, size_t dim)
{
    __m512i s = _mm512_setzero_si512();
    size_t bytes = qv_u4_bytes(dim), off = 0;
    for (; off + 64 <= bytes; off += 64, c += 64, q += 128) s = _mm512_add_epi32(s, u4_step512(LD512(c), LD512(q), LD512(q + 64)));
    int32_t r = _mm512_reduce_add_epi32(s);
    if (off < bytes) r += hsum256(u4_step256(LD256(c), LD256(q), LD256(q + 32)));
    return r;
}

QV_AVX512 static void avx512_dot_u4_x4(const uint8_t *const c[4], const int8_t *q, size_t dim, int32_t out[4])
{
    __m512i s[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
    size_t bytes = qv_u4_bytes(dim), off = 0;
    for (; off + 64 <= bytes; off += 64, q += 128) {
        __m512i a = LD512(q), b = LD512(q + 64);
        for (int j = 0; j < 4; j++) s[j] = _mm512_add_epi32(s[j], u4_step512(LD512(c[j] + off), a, b));
    }
    for (int j = 0; j < 4; j++) out[j] = _mm512_reduce_add_epi32(s[j]);
    if (off < bytes) {
        __m256i a = LD256(q), b = LD256(q + 32);
        for (int j = 0; j < 4; j++) out[j] += hsum256(u4_step256(LD256(c[j] + off), a, b));
    }
}

/* Without VPOPCNTDQ (Skylake-SP, Cascade Lake, Cooper Lake) bit codes are counted as
 * avx2_dot_bits_x4 counts them, 512 bits a step: each nibble of code AND plane is looked up
 * with VPSHUFB in a table that already carries the plane's weight 2^j (at most 4 * 8 =
 * 32), two nibbles x four planes add up to at most 120 a byte, and VPSADBW sums each group
 * of eight bytes into a 64-bit lane. A tail shorter than eight words is a zero-masked
 * load: its zeros count nothing. Codes of one or two words (up to 128 dimensions) go
 * through POPCNT, which was as fast or faster there (rows in cache, Zen 4: 64-d 4.0
 * against 6.2-7.2 ns a row; 512-d 15.7-21.1 against 7.0; bench/RESULTS.md "Session 16"). */
QV_AVX512 static inline void nibble_luts(__m512i lut[4])
{
    const __m512i pop = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    for (int j = 0; j < 4; j++) lut[j] = _mm512_sll_epi16(pop, _mm_cvtsi32_si128(j));   /* no byte spills */
}

/* The four planes' words [w, w + 8) (masked by m), split into low and high nibbles. */
QV_AVX512 static inline void split_planes(const uint64_t *planes, size_t words, size_t w, __mmask8 m,
                                          __m512i plo[4], __m512i phi[4])
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int j = 0; j < 4; j++) {
        __m512i p = _mm512_maskz_loadu_epi64(m, planes + j * words + w);
        plo[j] = _mm512_and_si512(p, m4);
        phi[j] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
    }
}

QV_AVX512 static inline __m512i bits_step512(__m512i b, const __m512i plo[4], const __m512i phi[4],
                                             const __m512i lut[4])
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i lo = _mm512_and_si512(b, m4), hi = _mm512_and_si512(_mm512_srli_epi16(b, 4), m4);
    __m512i s = _mm512_setzero_si512();
    for (int j = 0; j < 4; j++) {
        s = _mm512_add_epi8(s, _mm512_shuffle_epi8(lut[j], _mm512_and_si512(lo, plo[j])));
        s = _mm512_add_epi8(s, _mm512_shuffle_epi8(lut[j], _mm512_and_si512(hi, phi[j])));
    }
    return _mm512_sad_epu8(s, _mm512_setzero_si512());
}

static inline __mmask8 words_mask(size_t left) { return left >= 8 ? 0xff : (__mmask8)((1u << left) - 1u); }

enum { POPCNT_MAX_WORDS = 2 };

QV_AVX512 static inline uint32_t popcnt_dot_bits(const uint64_t *bits, const uint64_t *planes, size_t words)
{
    uint32_t s = 0;
    for (unsigned j = 0; j < 4; j++)
        for (size_t w = 0; w < words; w++) s += (uint32_t)_mm_popcnt_u64(bits[w] & planes[j * words + w]) << j;
    return s;
}

QV_AVX512 static uint32_t avx512_dot_bits(const uint64_t *bits, const uint64_t *planes, size_t words)
{
    if (words <= POPCNT_MAX_WORDS) return popcnt_dot_bits(bits, planes, words);
    __m512i lut[4], plo[4], phi[4], acc = _mm512_setzero_si512();
    nibble_luts(lut);
    for (size_t w = 0; w < words; w += 8) {
        __mmask8 m = words_mask(words - w);
        split_planes(planes, words, w, m, plo, phi);
        acc = _mm512_add_epi64(acc, bits_step512(_mm512_maskz_loadu_epi64(m, bits + w), plo, phi, lut));
    }
    return (uint32_t)_mm512_reduce_add_epi64(acc);
}

/* The four rows' weighted popcounts, each a vector of eight 64-bit partial sums under
 * 2^32, summed across lanes together: two rows share each 64-bit lane (the second
 * shifted up 32 bits), so one tree of adds serves all four. */
QV_AVX512 static inline void reduce4_u32(__m512i t0, __m512i t1, __m512i t2, __m512i t3, uint32_t out[4])
{
    __m512i u01 = _mm512_add_epi64(t0, _mm512_slli_epi64(t1, 32));
    __m512i u23 = _mm512_add_epi64(t2, _mm512_slli_epi64(t3, 32));
    __m512i v = _mm512_add_epi64(_mm512_unpacklo_epi64(u01, u23), _mm512_unpackhi_epi64(u01, u23));
    __m256i w = _mm256_add_epi64(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i x = _mm_add_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128((__m128i *)out, x);       /* t0, t1, t2, t3 as four u32 */
}

/* Four rows share each split of the planes' nibbles. */
QV_AVX512 static void avx512_dot_bits_x4(const uint64_t *const bits[4], const uint64_t *planes, size_t words,
                                         uint32_t out[4])
{
    if (words <= POPCNT_MAX_WORDS) {
        for (int c = 0; c < 4; c++) out[c] = popcnt_dot_bits(bits[c], planes, words);
        return;
    }
    __m512i lut[4], plo[4], phi[4];
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
    nibble_luts(lut);
    for (size_t w = 0; w < words; w += 8) {
        __mmask8 m = words_mask(words - w);
        split_planes(planes, words, w, m, plo, phi);
        for (int c = 0; c < 4; c++)
            acc[c] = _mm512_add_epi64(acc[c], bits_step512(_mm512_maskz_loadu_epi64(m, bits[c] + w), plo, phi, lut));
    }
    reduce4_u32(acc[0], acc[1], acc[2], acc[3], out);
}

/* Eight rows as two fours (the nibble lookups already keep the registers busy). */
QV_AVX512 static void avx512_dot_bits_x8(const uint64_t *const bits[8], const uint64_t *planes, size_t words,
                                         uint32_t out[8])
{
    avx512_dot_bits_x4(bits, planes, words, out);
    avx512_dot_bits_x4(bits + 4, planes, words, out + 4);
}

/* VPTESTMB: one 64-bit mask of bit j over 64 bytes. */
QV_AVX512 static void avx512_bit_planes(const uint8_t *u, size_t words, uint64_t *planes)
{
    for (size_t w = 0; w < words; w++) {
        __m512i a = LD512(u + 64 * w);
        for (unsigned j = 0; j < 4; j++)
            planes[j * words + w] = _mm512_test_epi8_mask(a, _mm512_set1_epi8((char)(1 << j)));
    }
}

/* Float query against u8 codes: 32 bytes widened to two x 16 floats per step, two FMA
 * chains; the tail through a zero-masked load. */
QV_AVX512 static float avx512_dotf_u8(const uint8_t *c, const float *q, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 c0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + i))));
        __m512 c1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + i + 16))));
        s0 = _mm512_fmadd_ps(c0, _mm512_loadu_ps(q + i), s0);
        s1 = _mm512_fmadd_ps(c1, _mm512_loadu_ps(q + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 cv = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, c + i)));
        s0 = _mm512_fmadd_ps(cv, _mm512_maskz_loadu_ps(m, q + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static const qv_code_kernels avx512_table = {
    "avx512", avx512_dot_u8, avx512_dot_u8_x4, avx512_dot_u4, avx512_dot_u4_x4, avx512_dot_bits,
    avx512_dot_bits_x4, avx512_dot_bits_x8, avx512_bit_planes, avx512_dotf_u8,
};

/* ---- avx512vnni (adds VNNI) and avx512vpopcnt (adds VPOPCNTDQ too) -------------------- */

QV_VNNI static int32_t vnni_dot_u8(const uint8_t *c, const int8_t *q, size_t n)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        s0 = _mm512_dpbusd_epi32(s0, LD512(c + i), LD512(q + i));
        s1 = _mm512_dpbusd_epi32(s1, LD512(c + i + 64), LD512(q + i + 64));
    }
    for (; i < n; i += 64) {
        __mmask64 m = n - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_maskz_loadu_epi8(m, c + i), _mm512_maskz_loadu_epi8(m, q + i));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

QV_VNNI static void vnni_dot_u8_x4(const uint8_t *const c[4], const int8_t *q, size_t n, int32_t out[4])
{
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    __m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
    const uint8_t *c0 = c[0], *c1 = c[1], *c2 = c[2], *c3 = c[3];
    for (size_t i = 0; i < n; i += 64) {
        __mmask64 m = n - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        __m512i qv = _mm512_maskz_loadu_epi8(m, q + i);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_maskz_loadu_epi8(m, c0 + i), qv);
        s1 = _mm512_dpbusd_epi32(s1, _mm512_maskz_loadu_epi8(m, c1 + i), qv);
        s2 = _mm512_dpbusd_epi32(s2, _mm512_maskz_loadu_epi8(m, c2 + i), qv);
        s3 = _mm512_dpbusd_epi32(s3, _mm512_maskz_loadu_epi8(m, c3 + i), qv);
    }
    out[0] = _mm512_reduce_add_epi32(s0);
    out[1] = _mm512_reduce_add_epi32(s1);
    out[2] = _mm512_reduce_add_epi32(s2);
    out[3] = _mm512_reduce_add_epi32(s3);
}

QV_VNNI static inline __m512i vnni_u4(__m512i s, __m512i c, __m512i qlo, __m512i qhi)
{
    const __m512i m = _mm512_set1_epi8(15);
    s = _mm512_dpbusd_epi32(s, _mm512_and_si512(c, m), qlo);
    return _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(c, 4), m), qhi);
}

QV_VNNI static inline __m256i vnni_u4_256(__m256i s, __m256i c, __m256i qlo, __m256i qhi)
{
    const __m256i m = _mm256_set1_epi8(15);
    s = _mm256_dpbusd_epi32(s, _mm256_and_si256(c, m), qlo);
    return _mm256_dpbusd_epi32(s, _mm256_and_si256(_mm256_srli_epi16(c, 4), m), qhi);
}

QV_VNNI static int32_t vnni_dot_u4(const uint8_t *c, const int8_t *q, size_t dim)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t bytes = qv_u4_bytes(dim), off = 0;
    for (; off + 128 <= bytes; off += 128, c += 128, q += 256) {
        s0 = vnni_u4(s0, LD512(c), LD512(q), LD512(q + 64));
        s1 = vnni_u4(s1, LD512(c + 64), LD512(q + 128), LD512(q + 192));
    }
    if (off + 64 <= bytes) {
        s0 = vnni_u4(s0, LD512(c), LD512(q), LD512(q + 64));
        off += 64, c += 64, q += 128;
    }
    int32_t r = _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
    if (off < bytes) r += hsum256(vnni_u4_256(_mm256_setzero_si256(), LD256(c), LD256(q), LD256(q + 32)));
    return r;
}

QV_VNNI static void vnni_dot_u4_x4(const uint8_t *const c[4], const int8_t *q, size_t dim, int32_t out[4])
{
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    __m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
    const uint8_t *c0 = c[0], *c1 = c[1], *c2 = c[2], *c3 = c[3];
    size_t bytes = qv_u4_bytes(dim), off = 0;
    for (; off + 64 <= bytes; off += 64, q += 128) {
        __m512i a = LD512(q), b = LD512(q + 64);
        s0 = vnni_u4(s0, LD512(c0 + off), a, b);
        s1 = vnni_u4(s1, LD512(c1 + off), a, b);
        s2 = vnni_u4(s2, LD512(c2 + off), a, b);
        s3 = vnni_u4(s3, LD512(c3 + off), a, b);
    }
    out[0] = _mm512_reduce_add_epi32(s0);
    out[1] = _mm512_reduce_add_epi32(s1);
    out[2] = _mm512_reduce_add_epi32(s2);
    out[3] = _mm512_reduce_add_epi32(s3);
    if (off < bytes) {
        __m256i a = LD256(q), b = LD256(q + 32), z = _mm256_setzero_si256();
        out[0] += hsum256(vnni_u4_256(z, LD256(c0 + off), a, b));
        out[1] += hsum256(vnni_u4_256(z, LD256(c1 + off), a, b));
        out[2] += hsum256(vnni_u4_256(z, LD256(c2 + off), a, b));
        out[3] += hsum256(vnni_u4_256(z, LD256(c3 + off), a, b));
    }
}

QV_VPOPCNT static uint32_t vpopcnt_dot_bits(const uint64_t *bits, const uint64_t *planes, size_t words)
{
    __m512i s[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
    for (size_t w = 0; w < words; w += 8) {
        __mmask8 m = words_mask(words - w);
        __m512i b = _mm512_maskz_loadu_epi64(m, bits + w);
        for (unsigned j = 0; j < 4; j++)
            s[j] = _mm512_add_epi64(s[j], _mm512_popcnt_epi64(_mm512_and_si512(b, _mm512_maskz_loadu_epi64(m, planes + j * words + w))));
    }
    __m512i t = _mm512_add_epi64(_mm512_add_epi64(s[0], _mm512_slli_epi64(s[1], 1)),
                                 _mm512_add_epi64(_mm512_slli_epi64(s[2], 2), _mm512_slli_epi64(s[3], 3)));
    return (uint32_t)_mm512_reduce_add_epi64(t);
}

/* Four codes share each load of the planes: 8 words of 4 planes per step, one count
 * per code and plane, weighted 2^j in the end. The four sums are reduced together
 * (reduce4_u32) and the first step starts the sums rather than adding to zeros: 8.5 ->
 * 4.8 ns a row at 384-d and 512-d, 11.1 -> 8.0 at 784-d, 14.0 -> 10.7 at 1536-d (rows in
 * cache, 1 thread, best of 3; bench/RESULTS.md "Session 12"). */
QV_VPOPCNT static void vpopcnt_dot_bits_x4(const uint64_t *const bits[4], const uint64_t *planes, size_t words,
                                    uint32_t out[4])
{
    __m512i s[4][4];
    /* The first eight words initialise the sums (512-d rows are just these). */
    __mmask8 m = words_mask(words);
    __m512i p0 = _mm512_maskz_loadu_epi64(m, planes);
    __m512i p1 = _mm512_maskz_loadu_epi64(m, planes + words);
    __m512i p2 = _mm512_maskz_loadu_epi64(m, planes + 2 * words);
    __m512i p3 = _mm512_maskz_loadu_epi64(m, planes + 3 * words);
    for (int c = 0; c < 4; c++) {
        __m512i b = _mm512_maskz_loadu_epi64(m, bits[c]);
        s[c][0] = _mm512_popcnt_epi64(_mm512_and_si512(b, p0));
        s[c][1] = _mm512_popcnt_epi64(_mm512_and_si512(b, p1));
        s[c][2] = _mm512_popcnt_epi64(_mm512_and_si512(b, p2));
        s[c][3] = _mm512_popcnt_epi64(_mm512_and_si512(b, p3));
    }
    for (size_t w = 8; w < words; w += 8) {
        m = words_mask(words - w);
        p0 = _mm512_maskz_loadu_epi64(m, planes + w);
        p1 = _mm512_maskz_loadu_epi64(m, planes + words + w);
        p2 = _mm512_maskz_loadu_epi64(m, planes + 2 * words + w);
        p3 = _mm512_maskz_loadu_epi64(m, planes + 3 * words + w);
        for (int c = 0; c < 4; c++) {
            __m512i b = _mm512_maskz_loadu_epi64(m, bits[c] + w);
            s[c][0] = _mm512_add_epi64(s[c][0], _mm512_popcnt_epi64(_mm512_and_si512(b, p0)));
            s[c][1] = _mm512_add_epi64(s[c][1], _mm512_popcnt_epi64(_mm512_and_si512(b, p1)));
            s[c][2] = _mm512_add_epi64(s[c][2], _mm512_popcnt_epi64(_mm512_and_si512(b, p2)));
            s[c][3] = _mm512_add_epi64(s[c][3], _mm512_popcnt_epi64(_mm512_and_si512(b, p3)));
        }
    }
    __m512i t[4];
    for (int c = 0; c < 4; c++)
        t[c] = _mm512_add_epi64(_mm512_add_epi64(s[c][0], _mm512_slli_epi64(s[c][1], 1)),
                                _mm512_add_epi64(_mm512_slli_epi64(s[c][2], 2), _mm512_slli_epi64(s[c][3], 3)));
    reduce4_u32(t[0], t[1], t[2], t[3], out);
}

/* Eight codes share each load of the planes, and each step weights its four counts into one
 * sum per code (a 512-d row is one step). Against two four-row calls, in the bit1 walk
 * (debian-use-512 bit1 M12 explore 1, 1 thread, alternated rounds, 2026-12-06,
 * bench/RESULTS.md "Session 21"): +6-9% QPS at ef 10-12, the same answers. */
QV_VPOPCNT static void vpopcnt_dot_bits_x8(const uint64_t *const bits[8], const uint64_t *planes, size_t words,
                                           uint32_t out[8])
{
    __m512i t[8];
    for (int c = 0; c < 8; c++) t[c] = _mm512_setzero_si512();
    for (size_t w = 0; w < words; w += 8) {
        __mmask8 m = words_mask(words - w);
        __m512i p0 = _mm512_maskz_loadu_epi64(m, planes + w);
        __m512i p1 = _mm512_maskz_loadu_epi64(m, planes + words + w);
        __m512i p2 = _mm512_maskz_loadu_epi64(m, planes + 2 * words + w);
        __m512i p3 = _mm512_maskz_loadu_epi64(m, planes + 3 * words + w);
        for (int c = 0; c < 8; c++) {
            __m512i b = _mm512_maskz_loadu_epi64(m, bits[c] + w);
            __m512i s0 = _mm512_popcnt_epi64(_mm512_and_si512(b, p0));
            __m512i s1 = _mm512_popcnt_epi64(_mm512_and_si512(b, p1));
            __m512i s2 = _mm512_popcnt_epi64(_mm512_and_si512(b, p2));
            __m512i s3 = _mm512_popcnt_epi64(_mm512_and_si512(b, p3));
            __m512i s = _mm512_add_epi64(_mm512_add_epi64(s0, _mm512_slli_epi64(s1, 1)),
                                         _mm512_add_epi64(_mm512_slli_epi64(s2, 2), _mm512_slli_epi64(s3, 3)));
            t[c] = _mm512_add_epi64(t[c], s);
        }
    }
    reduce4_u32(t[0], t[1], t[2], t[3], out);
    reduce4_u32(t[4], t[5], t[6], t[7], out + 4);
}

static const qv_code_kernels vnni_table = {
    "avx512vnni", vnni_dot_u8, vnni_dot_u8_x4, vnni_dot_u4, vnni_dot_u4_x4, avx512_dot_bits,
    avx512_dot_bits_x4, avx512_dot_bits_x8, avx512_bit_planes, avx512_dotf_u8,
};

static const qv_code_kernels vpopcnt_table = {
    "avx512vpopcnt", vnni_dot_u8, vnni_dot_u8_x4, vnni_dot_u4, vnni_dot_u4_x4, vpopcnt_dot_bits,
    vpopcnt_dot_bits_x4, vpopcnt_dot_bits_x8, avx512_bit_planes, avx512_dotf_u8,
};

static int have_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("popcnt");
}

const qv_code_kernels *qv_code_kernels_avx512(void) { return have_avx512() ? &avx512_table : NULL; }

const qv_code_kernels *qv_code_kernels_avx512vnni(void)
{
    return have_avx512() && __builtin_cpu_supports("avx512vnni") ? &vnni_table : NULL;
}

const qv_code_kernels *qv_code_kernels_avx512vpopcnt(void)
{
    return qv_code_kernels_avx512vnni() && __builtin_cpu_supports("avx512vpopcntdq") ? &vpopcnt_table : NULL;
}

#else

const qv_code_kernels *qv_code_kernels_avx512(void) { return NULL; }
const qv_code_kernels *qv_code_kernels_avx512vnni(void) { return NULL; }
const qv_code_kernels *qv_code_kernels_avx512vpopcnt(void) { return NULL; }

#endif
