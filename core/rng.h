/*
 * core/rng.h -- a small seedable generator (xoshiro256**, seeded through splitmix64).
 * Each index owns one; never the global rand(). Not thread-safe: one per thread/owner.
 */
#ifndef QV_CORE_RNG_H
#define QV_CORE_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } qv_rng;

void     qv_rng_seed(qv_rng *r, uint64_t seed);
uint64_t qv_rng_next(qv_rng *r);
/** Uniform in [0, 1). */
double   qv_rng_uniform(qv_rng *r);
/** Uniform integer in [0, n), n >= 1, without modulo bias. */
uint64_t qv_rng_below(qv_rng *r, uint64_t n);
/** Standard normal (Box-Muller). */
double   qv_rng_normal(qv_rng *r);

#endif
