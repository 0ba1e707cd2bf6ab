/*
 * core/code_dist.h -- integer kernels for distances between a prepared query and
 * quantized codes (index/codec.c turns their sums into distances), with run-time CPU
 * dispatch like core/distance.h.
 *
 * Three code layouts:
 *   u8   one unsigned byte per dimension (SQ8).
 *   u4   two dimensions per byte (SQ4), in blocks of 128 dimensions = 64 bytes: byte j of
 *        a block holds dimension 128b + j in its low nibble and 128b + 64 + j in its high
 *        nibble. A last group of at most 64 dimensions takes a half block of 32 bytes
 *        (byte j: dimension base + j low, base + 32 + j high). With this layout the query
 *        stays in natural order for every kernel: a 64-byte load of codes pairs its low
 *        nibbles with query bytes [0, 64) and its high nibbles with [64, 128).
 *        qv_u4_bytes(dim) gives the code size; unused nibbles are zero.
 *   bits one bit per dimension (1-bit RaBitQ), 64-bit words, dimension i at bit i % 64 of
 *        word i / 64; the query side is four bit planes of a 4-bit query (plane j holds
 *        bit j of every query value), so sum_i b_i u_i = sum_j 2^j popcount(b & plane_j).
 *
 * Queries are int8 (u8 and u4 codes) or the four planes (bits); the kernels return exact
 * integer sums, so every table must agree bit for bit with the scalar reference. One
 * kernel, dotf_u8, takes a float query against u8 codes and returns a float sum. (The 4-bit
 * second stage of 1-bit codes rounds its query to int8 and takes dot_u4.)
 *
 * Tables: scalar (reference), avx2 (AVX2, POPCNT), avx512 (AVX-512 F+BW),
 * avx512vnni (adds VNNI's VPDPBUSD) and avx512vpopcnt (adds VPOPCNTDQ too).
 * QV_KERNELS=scalar|avx2|avx512 caps the choice like the float kernels (avx512 allows every
 * AVX-512 table); avx512bw and avx512vnni stop at those tables, for tests and benchmarks of
 * the paths older AVX-512 CPUs take.
 */
#ifndef QV_CORE_CODE_DIST_H
#define QV_CORE_CODE_DIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;              /* "scalar", "avx2", "avx512", "avx512vnni", "avx512vpopcnt" */
    /** sum_i c[i] * q[i] over n bytes (any n >= 0). */
    int32_t (*dot_u8)(const uint8_t *c, const int8_t *q, size_t n);
    /** The same for four codes against one query: out[j] = dot_u8(c[j], q, n). */
    void (*dot_u8_x4)(const uint8_t *const c[4], const int8_t *q, size_t n, int32_t out[4]);
    /** sum_i nibble_i(c) * q[i] over dim dimensions in the u4 layout; q holds
     *  qv_u4_query_len(dim) bytes, zero past dim. */
    int32_t (*dot_u4)(const uint8_t *c, const int8_t *q, size_t dim);
    void (*dot_u4_x4)(const uint8_t *const c[4], const int8_t *q, size_t dim, int32_t out[4]);
    /** sum_j 2^j popcount(bits & planes[j * words ...]) for j = 0..3. */
    uint32_t (*dot_bits)(const uint64_t *bits, const uint64_t *planes, size_t words);
    void (*dot_bits_x4)(const uint64_t *const bits[4], const uint64_t *planes, size_t words, uint32_t out[4]);
    /** The same for eight codes: the bit1 walk scores an expansion's neighbours eight at a time. */
    void (*dot_bits_x8)(const uint64_t *const bits[8], const uint64_t *planes, size_t words, uint32_t out[8]);
    /** The four bit planes of n = 64 * words 4-bit values u[0..n) (one per byte): bit i % 64
     *  of planes[j * words + i / 64] = bit j of u[i]. */
    void (*bit_planes)(const uint8_t *u, size_t words, uint64_t *planes);
    /** sum_i c[i] * q[i] over n bytes against a float query (any n >= 0), summed in float:
     *  the second stage of 1-bit codes (8-bit residual codes, index/codec.h). The order of
     *  the additions differs between tables, so results agree to float rounding only. */
    float (*dotf_u8)(const uint8_t *c, const float *q, size_t n);
} qv_code_kernels;

/** The dispatched table (chosen once, thread-safe). */
const qv_code_kernels *qv_code_kernels_get(void);
/** A specific table, or NULL when this CPU lacks its instructions. */
const qv_code_kernels *qv_code_kernels_scalar(void);
const qv_code_kernels *qv_code_kernels_avx2(void);
const qv_code_kernels *qv_code_kernels_avx512(void);
const qv_code_kernels *qv_code_kernels_avx512vnni(void);
const qv_code_kernels *qv_code_kernels_avx512vpopcnt(void);

/** Bytes of a u4 code of dim dimensions. */
static inline size_t qv_u4_bytes(size_t dim)
{
    size_t full = dim / 128, rest = dim % 128;
    return 64 * full + (rest == 0 ? 0 : rest <= 64 ? 32 : 64);
}
/** Query bytes the u4 kernels read (dimensions covered by the code blocks). */
static inline size_t qv_u4_query_len(size_t dim) { return 2 * qv_u4_bytes(dim); }

/** Pack dim 4-bit values (0..15, one per byte in v) into the u4 layout (qv_u4_bytes). */
void qv_u4_pack(const uint8_t *v, size_t dim, uint8_t *code);
/** Set dimension i of a u4 code (whose nibble is still 0) to v (0..15). */
void qv_u4_set(uint8_t *code, size_t dim, size_t i, unsigned v);
/** The value of dimension i of a u4 code. */
unsigned qv_u4_get(const uint8_t *code, size_t dim, size_t i);

#endif
