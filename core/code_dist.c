/*
 * core/code_dist.c -- the scalar reference kernels over quantized codes, the u4 packing
 * helpers and the run-time dispatch (see core/code_dist.h).
 *
 * Dispatch mirrors core/distance.c: the widest table this CPU runs, capped by
 * QV_KERNELS=scalar|avx2|avx512 for tests and benchmarks (avx512bw and avx512vnni stop at
 * the tables Skylake-SP and Cascade Lake get, see code_dist.h). The SIMD tables live in
 * code_dist_avx2.c and code_dist_avx512.c behind __attribute__((target(...))).
 */
#include "core/code_dist.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Byte offset and shift of dimension i in the u4 layout. */
static inline void u4_where(size_t dim, size_t i, size_t *byte, unsigned *shift)
{
    size_t blk = i / 128, in = i % 128, full = dim / 128;
    if (blk < full || dim % 128 > 64) {        /* a 64-byte block */
        *byte = 64 * blk + in % 64;
        *shift = in >= 64 ? 4 : 0;
    } else {                                    /* the last half block of 32 bytes */
        *byte = 64 * blk + in % 32;
        *shift = in >= 32 ? 4 : 0;
    }
}

void qv_u4_set(uint8_t *code, size_t dim, size_t i, unsigned v)
{
    size_t b;
    unsigned sh;
    u4_where(dim, i, &b, &sh);
    code[b] |= (uint8_t)((v & 15u) << sh);
}

void qv_u4_pack(const uint8_t *v, size_t dim, uint8_t *code)
{
    memset(code, 0, qv_u4_bytes(dim));
    for (size_t i = 0; i < dim; i++) qv_u4_set(code, dim, i, v[i]);
}

unsigned qv_u4_get(const uint8_t *code, size_t dim, size_t i)
{
    size_t b;
    unsigned sh;
    u4_where(dim, i, &b, &sh);
    return (code[b] >> sh) & 15u;
}

static int32_t scalar_dot_u8(const uint8_t *c, const int8_t *q, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) s += (int32_t)c[i] * q[i];
    return s;
}

static void scalar_dot_u8_x4(const uint8_t *const c[4], const int8_t *q, size_t n, int32_t out[4])
{
    for (int j = 0; j < 4; j++) out[j] = scalar_dot_u8(c[j], q, n);
}

/* Walks the layout directly (not through u4_where) so the reference is simple to read:
 * full blocks pair byte j with q[j] (low) and q[64 + j] (high); a half block with q[j]
 * and q[32 + j]. */
static int32_t scalar_dot_u4(const uint8_t *c, const int8_t *q, size_t dim)
{
    int32_t s = 0;
    size_t bytes = qv_u4_bytes(dim), off = 0;
    for (; off + 64 <= bytes; off += 64, c += 64, q += 128)
        for (size_t j = 0; j < 64; j++) s += (int32_t)(c[j] & 15) * q[j] + (int32_t)(c[j] >> 4) * q[64 + j];
    if (off < bytes)
        for (size_t j = 0; j < 32; j++) s += (int32_t)(c[j] & 15) * q[j] + (int32_t)(c[j] >> 4) * q[32 + j];
    return s;
}

static void scalar_dot_u4_x4(const uint8_t *const c[4], const int8_t *q, size_t dim, int32_t out[4])
{
    for (int j = 0; j < 4; j++) out[j] = scalar_dot_u4(c[j], q, dim);
}

static uint32_t scalar_dot_bits(const uint64_t *bits, const uint64_t *planes, size_t words)
{
    uint32_t s = 0;
    for (unsigned j = 0; j < 4; j++) {
        uint32_t c = 0;
        for (size_t w = 0; w < words; w++) c += (uint32_t)__builtin_popcountll(bits[w] & planes[j * words + w]);
        s += c << j;
    }
    return s;
}

static void scalar_dot_bits_x4(const uint64_t *const bits[4], const uint64_t *planes, size_t words, uint32_t out[4])
{
    for (int j = 0; j < 4; j++) out[j] = scalar_dot_bits(bits[j], planes, words);
}

static void scalar_dot_bits_x8(const uint64_t *const bits[8], const uint64_t *planes, size_t words, uint32_t out[8])
{
    for (int j = 0; j < 8; j++) out[j] = scalar_dot_bits(bits[j], planes, words);
}

static void scalar_bit_planes(const uint8_t *u, size_t words, uint64_t *planes)
{
    for (size_t w = 0; w < words; w++)
        for (unsigned j = 0; j < 4; j++) {
            uint64_t b = 0;
            for (unsigned i = 0; i < 64; i++) b |= (uint64_t)((u[64 * w + i] >> j) & 1u) << i;
            planes[j * words + w] = b;
        }
}

static float scalar_dotf_u8(const uint8_t *c, const float *q, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++) s += (float)c[i] * q[i];
    return s;
}


static const qv_code_kernels scalar_table = {
    "scalar", scalar_dot_u8, scalar_dot_u8_x4, scalar_dot_u4, scalar_dot_u4_x4, scalar_dot_bits,
    scalar_dot_bits_x4, scalar_dot_bits_x8, scalar_bit_planes, scalar_dotf_u8,
};

const qv_code_kernels *qv_code_kernels_scalar(void) { return &scalar_table; }

static const qv_code_kernels *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    const char *want = getenv("QV_KERNELS");
    const qv_code_kernels *t = NULL;
    int level = 4;                 /* 4 = avx512vpopcnt, 3 = avx512vnni, 2 = avx512, 1 = avx2, 0 = scalar */
    if (want && strcmp(want, "scalar") == 0) level = 0;
    else if (want && strcmp(want, "avx2") == 0) level = 1;
    else if (want && strcmp(want, "avx512bw") == 0) level = 2;
    else if (want && strcmp(want, "avx512vnni") == 0) level = 3;
    if (level >= 4) t = qv_code_kernels_avx512vpopcnt();
    if (!t && level >= 3) t = qv_code_kernels_avx512vnni();
    if (!t && level >= 2) t = qv_code_kernels_avx512();
    if (!t && level >= 1) t = qv_code_kernels_avx2();
    chosen = t ? t : &scalar_table;
}

const qv_code_kernels *qv_code_kernels_get(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}
