/*
 * core/rng.c -- xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64, which
 * turns any 64-bit seed (0 included) into a well-mixed, never all-zero state.
 *
 * below(n) uses Lemire's multiply-and-reject ("Fast Random Integer Generation in an
 * Interval", 2019): unbiased, and the rejection branch is rare. normal() is plain
 * Box-Muller without caching the second value, so the stream depends only on the calls
 * made (reproducible builds matter more than halving the cost).
 */
#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void qv_rng_seed(qv_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t qv_rng_next(qv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double qv_rng_uniform(qv_rng *r)
{
    return (double)(qv_rng_next(r) >> 11) * 0x1.0p-53;   /* 53 random mantissa bits */
}

uint64_t qv_rng_below(qv_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    unsigned __int128 m = (unsigned __int128)qv_rng_next(r) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = (0 - n) % n;   /* 2^64 mod n */
        while (low < threshold) {
            m = (unsigned __int128)qv_rng_next(r) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double qv_rng_normal(qv_rng *r)
{
    double u1 = 1.0 - qv_rng_uniform(r);   /* (0, 1]: log stays finite */
    double u2 = qv_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
