/*
 * core/fastscan.h -- the 4-bit fast-scan kernel: 32 codes scored at once from a table of
 * 16 byte-sized partial distances per dimension (a shuffle does 16 or 32 table look-ups
 * in one instruction), with run-time CPU dispatch like core/code_dist.h.
 *
 * Block layout (32 codes of dpad dimensions, dpad a multiple of 4, 16 * dpad bytes):
 * dimension d takes bytes [16 d, 16 d + 16); byte j holds code j's nibble of d in its low
 * half and code j + 16's in its high half. The table has the same shape: 16 bytes per
 * dimension, byte c = the partial distance of nibble value c. A 32-byte load of the block
 * (two dimensions) and the same load of the table line up lane for lane, so VPSHUFB looks
 * up 16 codes of two dimensions per instruction (AVX-512: four dimensions).
 *
 * Sums are exact: 16-bit lanes hold at most 256 table bytes (<= 65280) before they are
 * widened into 32-bit sums, so every table agrees bit for bit with the scalar reference.
 * QV_KERNELS=scalar|avx2|avx512 caps the choice like the other kernels.
 */
#ifndef QV_CORE_FASTSCAN_H
#define QV_CORE_FASTSCAN_H

#include <stddef.h>
#include <stdint.h>

/* Codes per block. */
#define QV_FASTSCAN_BLOCK 32u

typedef struct {
    const char *name;              /* "scalar", "avx2", "avx512" */
    /** out[j] = sum over d < dpad of lut[16 d + nibble of code j at d], j = 0..31. */
    void (*block)(const uint8_t *codes, const uint8_t *lut, size_t dpad, uint32_t out[32]);
} qv_fastscan_kernels;

/** The dispatched table (chosen once, thread-safe). */
const qv_fastscan_kernels *qv_fastscan_get(void);
/** A specific table, or NULL when this CPU lacks its instructions. */
const qv_fastscan_kernels *qv_fastscan_scalar(void);
const qv_fastscan_kernels *qv_fastscan_avx2(void);
const qv_fastscan_kernels *qv_fastscan_avx512(void);

/** Dimensions of a block row: dim rounded up to a multiple of 4. */
static inline size_t qv_fastscan_dpad(size_t dim) { return (dim + 3) & ~(size_t)3; }
/** Bytes of one block of 32 codes. */
static inline size_t qv_fastscan_block_bytes(size_t dim) { return 16 * qv_fastscan_dpad(dim); }

/** Nibble of code j (0..31) at dimension d in a block; set it (the nibble must be 0 or
 *  is replaced). */
static inline unsigned qv_fastscan_get_nibble(const uint8_t *block, size_t d, unsigned j)
{
    uint8_t b = block[16 * d + (j & 15)];
    return j < 16 ? (b & 15u) : (unsigned)(b >> 4);
}
static inline void qv_fastscan_set_nibble(uint8_t *block, size_t d, unsigned j, unsigned v)
{
    uint8_t *b = &block[16 * d + (j & 15)];
    if (j < 16) *b = (uint8_t)((*b & 0xf0u) | (v & 15u));
    else *b = (uint8_t)((*b & 0x0fu) | ((v & 15u) << 4));
}

#endif
