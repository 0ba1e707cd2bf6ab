/*
 * core/fastscan.c -- the 4-bit fast-scan kernel (see core/fastscan.h): the scalar
 * reference, AVX2 and AVX-512 BW tables, and the run-time choice.
 *
 * The SIMD tables keep four 16-bit accumulators for codes 0-7, 8-15, 16-23 and 24-31:
 * the looked-up bytes of 16 codes are widened by unpacking with zero, each 128-bit lane
 * holding one dimension. A lane slot gains at most 255 per step, so after 256 steps
 * (512 dimensions for AVX2, 1024 for AVX-512) the lanes are widened to 32 bits and summed.
 */
#include "core/fastscan.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void scalar_block(const uint8_t *codes, const uint8_t *lut, size_t dpad, uint32_t out[32])
{
    memset(out, 0, 32 * sizeof *out);
    for (size_t d = 0; d < dpad; d++) {
        const uint8_t *c = codes + 16 * d, *t = lut + 16 * d;
        for (unsigned j = 0; j < 16; j++) {
            out[j] += t[c[j] & 15];
            out[j + 16] += t[c[j] >> 4];
        }
    }
}

static const qv_fastscan_kernels scalar_table = {"scalar", scalar_block};
const qv_fastscan_kernels *qv_fastscan_scalar(void) { return &scalar_table; }

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define QV_AVX2 __attribute__((target("avx2")))
#define QV_AVX512 __attribute__((target("avx512f,avx512bw")))

/* One 128-bit lane of 16-bit sums widened into 8 u32. */
QV_AVX2 static inline __m256i widen_lane(__m128i lane) { return _mm256_cvtepu16_epi32(lane); }

QV_AVX2 static void avx2_block(const uint8_t *codes, const uint8_t *lut, size_t dpad, uint32_t out[32])
{
    const __m256i m = _mm256_set1_epi8(0x0f), z = _mm256_setzero_si256();
    __m256i s[4] = {z, z, z, z};
    for (size_t d0 = 0; d0 < dpad; d0 += 512) {
        size_t end = d0 + 512 < dpad ? d0 + 512 : dpad;
        __m256i a0 = z, a1 = z, a2 = z, a3 = z;
        for (size_t d = d0; d < end; d += 2) {
            __m256i c = _mm256_loadu_si256((const __m256i *)(codes + 16 * d));
            __m256i t = _mm256_loadu_si256((const __m256i *)(lut + 16 * d));
            __m256i vl = _mm256_shuffle_epi8(t, _mm256_and_si256(c, m));
            __m256i vh = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), m));
            a0 = _mm256_add_epi16(a0, _mm256_unpacklo_epi8(vl, z));
            a1 = _mm256_add_epi16(a1, _mm256_unpackhi_epi8(vl, z));
            a2 = _mm256_add_epi16(a2, _mm256_unpacklo_epi8(vh, z));
            a3 = _mm256_add_epi16(a3, _mm256_unpackhi_epi8(vh, z));
        }
        __m256i a[4] = {a0, a1, a2, a3};
        for (int i = 0; i < 4; i++)
            s[i] = _mm256_add_epi32(s[i], _mm256_add_epi32(widen_lane(_mm256_castsi256_si128(a[i])),
                                                           widen_lane(_mm256_extracti128_si256(a[i], 1))));
    }
    for (int i = 0; i < 4; i++) _mm256_storeu_si256((__m256i *)(out + 8 * i), s[i]);
}

QV_AVX512 static void avx512_block(const uint8_t *codes, const uint8_t *lut, size_t dpad, uint32_t out[32])
{
    const __m512i m = _mm512_set1_epi8(0x0f), z = _mm512_setzero_si512();
    __m256i s[4];
    for (int i = 0; i < 4; i++) s[i] = _mm256_setzero_si256();
    for (size_t d0 = 0; d0 < dpad; d0 += 1024) {
        size_t end = d0 + 1024 < dpad ? d0 + 1024 : dpad;
        __m512i a0 = z, a1 = z, a2 = z, a3 = z;
        for (size_t d = d0; d < end; d += 4) {
            __m512i c = _mm512_loadu_si512((const void *)(codes + 16 * d));
            __m512i t = _mm512_loadu_si512((const void *)(lut + 16 * d));
            __m512i vl = _mm512_shuffle_epi8(t, _mm512_and_si512(c, m));
            __m512i vh = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), m));
            a0 = _mm512_add_epi16(a0, _mm512_unpacklo_epi8(vl, z));
            a1 = _mm512_add_epi16(a1, _mm512_unpackhi_epi8(vl, z));
            a2 = _mm512_add_epi16(a2, _mm512_unpacklo_epi8(vh, z));
            a3 = _mm512_add_epi16(a3, _mm512_unpackhi_epi8(vh, z));
        }
        __m512i a[4] = {a0, a1, a2, a3};
        for (int i = 0; i < 4; i++) {
            __m256i w = _mm256_add_epi32(_mm256_cvtepu16_epi32(_mm512_castsi512_si128(a[i])),
                                         _mm256_cvtepu16_epi32(_mm512_extracti32x4_epi32(a[i], 1)));
            w = _mm256_add_epi32(w, _mm256_cvtepu16_epi32(_mm512_extracti32x4_epi32(a[i], 2)));
            w = _mm256_add_epi32(w, _mm256_cvtepu16_epi32(_mm512_extracti32x4_epi32(a[i], 3)));
            s[i] = _mm256_add_epi32(s[i], w);
        }
    }
    for (int i = 0; i < 4; i++) _mm256_storeu_si256((__m256i *)(out + 8 * i), s[i]);
}

static const qv_fastscan_kernels avx2_table = {"avx2", avx2_block};
static const qv_fastscan_kernels avx512_table = {"avx512", avx512_block};

const qv_fastscan_kernels *qv_fastscan_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? &avx2_table : NULL;
}

const qv_fastscan_kernels *qv_fastscan_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") ? &avx512_table : NULL;
}
#else
const qv_fastscan_kernels *qv_fastscan_avx2(void) { return NULL; }
const qv_fastscan_kernels *qv_fastscan_avx512(void) { return NULL; }
#endif

static const qv_fastscan_kernels *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    const char *want = getenv("QV_KERNELS");
    const qv_fastscan_kernels *t = NULL;
    int level = 2;
    if (want && strcmp(want, "scalar") == 0) level = 0;
    else if (want && strcmp(want, "avx2") == 0) level = 1;
    if (level >= 2) t = qv_fastscan_avx512();
    if (!t && level >= 1) t = qv_fastscan_avx2();
    chosen = t ? t : &scalar_table;
}

const qv_fastscan_kernels *qv_fastscan_get(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}
