/*
 * index/code_rows.h -- the code rows of a run of vectors (an IVF list, a flat index) in
 * the layout a sequential scan reads, and the scan itself (private to index/).
 *
 * Layouts, by the codec's kind (index/codec.h):
 *   sq8, bit1: one codec row after another (row_bytes each, 8-byte aligned: bit1 reads
 *     64-bit words), scored four at a time with
 *     the kernels of core/code_dist.h through qv_codec_est_x4.
 *   sq4: fast-scan blocks of 32 codes (core/fastscan.h): nibbles interleaved by
 *     dimension, scored a block at a time through a table of 16 byte-sized partial
 *     distances per dimension built once per query. The table is the l2 term
 *     (q_d - lo_d - step_d c)^2 or the ip term -q_d (lo_d + step_d c) of each level c,
 *     less its minimum over c (summed into a bias), times one scale that maps the widest
 *     dimension onto 0..255; est = bias + sum / scale, so the rounding error is at most
 *     dim / (2 scale) and re-scoring takes care of it.
 * Positions are those of the caller's vectors: put(pos) encodes the vector at pos, and
 * move(dst, src) follows a swap-remove. The caller does the locking.
 */
#ifndef QV_INDEX_CODE_ROWS_H
#define QV_INDEX_CODE_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "core/fastscan.h"
#include "index/codec.h"

typedef struct {
    uint8_t *data;                 /* 64-byte aligned */
    size_t cap;                    /* positions (a multiple of 32 for fast-scan) */
} qv_code_rows;

/** 1 when the codec's rows are stored in fast-scan blocks (sq4). */
static inline int qv_code_rows_fastscan(const qv_codec *c) { return c->kind == QV_QUANT_SQ4; }
/** Room for need positions; the first len are kept. @return QV_OK or QV_ENOMEM (then
 *  nothing changed). */
int    qv_code_rows_reserve(qv_code_rows *r, const qv_codec *c, size_t len, size_t need);
void   qv_code_rows_release(qv_code_rows *r);
/** Bytes held for cap positions. */
size_t qv_code_rows_bytes(const qv_codec *c, size_t cap);
/** Bytes of the row_tmp that put needs (and floats of scratch: qv_codec_scratch_floats). */
static inline size_t qv_code_rows_tmp_bytes(const qv_codec *c) { return c->row_bytes; }
/** Encode v at position pos (< cap). */
void   qv_code_rows_put(qv_code_rows *r, const qv_codec *c, size_t pos, const float *v, uint8_t *row_tmp,
                        float *scratch);
/** Copy the code at src over the one at dst. */
void   qv_code_rows_move(qv_code_rows *r, const qv_codec *c, size_t dst, size_t src);

/** A query prepared for scans. */
typedef struct {
    const qv_codec *codec;
    qv_codec_query *qq;            /* sq8, bit1 */
    const qv_fastscan_kernels *fs; /* sq4: */
    uint8_t *lut;                  /* 16 * dpad bytes */
    float bias, inv_scale;
    size_t dpad;
} qv_code_scan;

/** Bytes of the 64-byte aligned buffer a prepared query lives in; floats of scratch. */
size_t qv_code_scan_bytes(const qv_codec *c);
size_t qv_code_scan_scratch_floats(const qv_codec *c);
void   qv_code_scan_prepare(qv_code_scan *s, const qv_codec *c, const float *q, void *buf, float *scratch);
/** Estimated distances of positions [from, from + n) into est, which holds n rounded up
 *  to 32; from is a multiple of 32. */
void   qv_code_rows_estimate(const qv_code_rows *r, qv_code_scan *s, size_t from, size_t n, float *est);
/** Re-scoring of a scan (IVF lists, flat): oversampling when qv_search_params leaves it 0.
 *  A scan costs the same whatever the count re-scored, and bit1's bound skips most of the
 *  re-score, so these are sized for recall: they keep recall@10 within 0.005 of the float
 *  index at the same nprobe on siftsmall and glove (tests/check_index_quant.c); bit1 at
 *  10x lost 0.02 on glove's 100 dimensions with a flat scan. */
static inline float qv_code_scan_oversampling(qv_quant kind)
{
    return kind == QV_QUANT_SQ8 ? 2.0f : kind == QV_QUANT_SQ4 ? 4.0f : 30.0f;
}
/** bit1: the estimator's error bound at pos; other kinds 0. */
float  qv_code_rows_bound(const qv_code_rows *r, qv_code_scan *s, size_t pos);

#endif
