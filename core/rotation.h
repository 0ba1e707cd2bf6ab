/*
 * core/rotation.h -- a seeded random orthogonal transform of R^dim into R^dpad (dpad >= dim,
 * a multiple of 64; the input is zero-padded), cheap enough to apply to every query.
 *
 * RaBitQ (Gao & Long, arXiv 2405.12497) needs a random rotation so that the coordinates of
 * a rotated unit vector behave like those of a uniformly random one. A dense Gaussian
 * orthogonal matrix costs dim * dpad multiply-adds per query (650k at 784-d, ~7 us); here
 * the transform is ROUNDS rounds of (random sign flips, then normalized fast Walsh-Hadamard
 * transforms), O(dpad log dpad). When dpad is not a power of two, each round transforms
 * two overlapping power-of-two windows, [0, B) and [dpad - B, dpad), B the largest power
 * of two <= dpad. Every step is orthogonal, so the whole transform is: norms and inner
 * products are kept exactly (up to float rounding).
 */
#ifndef QV_CORE_ROTATION_H
#define QV_CORE_ROTATION_H

#include <stddef.h>
#include <stdint.h>

#define QV_ROTATION_ROUNDS 4

typedef struct {
    uint32_t dim, dpad, window;    /* window = B above */
    uint64_t seed;
    float scale;                   /* 1 / sqrt(window) */
    float *signs;                  /* per round, 2 x window signs (+1 / -1) as each window
                                      applies them (rotation.c) */
    /* The kernel for this CPU: v[0..n) times signs, transformed, times scale. */
    void (*fwht)(float *v, uint32_t n, float scale, const float *signs);
} qv_rotation;

/** Set up r for dim (1..) from seed. @return QV_OK, QV_ENOMEM. */
int  qv_rotation_init(qv_rotation *r, uint32_t dim, uint64_t seed);
void qv_rotation_release(qv_rotation *r);
/** out[0..dpad) = R x; x has dim values. out must not alias x. */
void qv_rotation_apply(const qv_rotation *r, const float *x, float *out);
/** dpad for a dimension: dim rounded up to a multiple of 64. */
static inline uint32_t qv_rotation_dpad(uint32_t dim) { return (dim + 63u) / 64u * 64u; }

#endif
