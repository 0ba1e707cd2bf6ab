/*
 * core/rotation.c -- the seeded fast orthogonal transform of core/rotation.h.
 *
 * The Walsh-Hadamard transform is chosen at run time (AVX-512, AVX2 or plain C, capped by
 * QV_KERNELS like the distance kernels) when the rotation is set up.
 */
#include "core/rotation.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"

void qv_rotation_release(qv_rotation *r)
{
    if (!r) return;
    qv_free(r->signs);
    r->signs = NULL;
}

/* In-place Walsh-Hadamard transform of v[0..n) (n a power of two >= 64), times scale.
 * Butterflies with stride h >= 16 (AVX-512) or 8 (AVX2) run on whole registers; the strides
 * below stay inside one register, where lane i meets lane i ^ h: v = v * sign_h +
 * permute_h(v), sign_h = -1 on the lanes with bit h set. Plain C for other CPUs. At 832
 * dimensions a query's rotation (8 transforms of 512) takes ~1.5k cycles on AVX-512 (the
 * compiler's own vectorization of the scalar loops took ~60k). */
static void fwht_scalar(float *v, uint32_t n, float scale, const float *signs)
{
    for (uint32_t i = 0; i < n; i++) v[i] *= signs[i];
    for (uint32_t h = 1; h < n; h *= 2)
        for (uint32_t i = 0; i < n; i += 2 * h)
            for (uint32_t j = i; j < i + h; j++) {
                float x = v[j], y = v[j + h];
                v[j] = x + y;
                v[j + h] = x - y;
            }
    for (uint32_t i = 0; i < n; i++) v[i] *= scale;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Lanes i and i ^ h of one register, for h = 1, 2, 4, 8: x * sign_h + permute_h(x). */
__attribute__((target("avx512f")))
static inline __m512 fwht16(__m512 x)
{
    const __m512 s1 = _mm512_setr_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
    const __m512 s2 = _mm512_setr_ps(1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1);
    const __m512 s4 = _mm512_setr_ps(1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1);
    const __m512 s8 = _mm512_setr_ps(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
    x = _mm512_fmadd_ps(x, s1, _mm512_permute_ps(x, 0xb1));                     /* lanes ^ 1 */
    x = _mm512_fmadd_ps(x, s2, _mm512_permute_ps(x, 0x4e));                     /* lanes ^ 2 */
    x = _mm512_fmadd_ps(x, s4, _mm512_shuffle_f32x4(x, x, 0xb1));               /* lanes ^ 4 */
    return _mm512_fmadd_ps(x, s8, _mm512_shuffle_f32x4(x, x, 0x4e));            /* lanes ^ 8 */
}

/* A 256-float block held in 16 registers from load to store, so that every level of its
 * transform runs without touching memory (Zen 4 splits each 512-bit store in two; a
 * level-by-level pass over memory spent most of its time storing). Signs are applied as
 * the block is loaded; scale (1 when more levels follow) as it is stored. */
#define BF(a, b)                                                                          \
    do {                                                                                  \
        __m512 t_ = a;                                                                    \
        a = _mm512_add_ps(t_, b);                                                         \
        b = _mm512_sub_ps(t_, b);                                                         \
    } while (0)

__attribute__((target("avx512f")))
static void fwht256(float *v, const float *signs, float scale)
{
#define LD(i) fwht16(_mm512_mul_ps(_mm512_loadu_ps(v + 16 * (i)), _mm512_loadu_ps(signs + 16 * (i))))
    __m512 r0 = LD(0), r1 = LD(1), r2 = LD(2), r3 = LD(3), r4 = LD(4), r5 = LD(5), r6 = LD(6), r7 = LD(7);
    __m512 r8 = LD(8), r9 = LD(9), r10 = LD(10), r11 = LD(11), r12 = LD(12), r13 = LD(13), r14 = LD(14), r15 = LD(15);
#undef LD
    BF(r0, r1); BF(r2, r3); BF(r4, r5); BF(r6, r7); BF(r8, r9); BF(r10, r11); BF(r12, r13); BF(r14, r15);
    BF(r0, r2); BF(r1, r3); BF(r4, r6); BF(r5, r7); BF(r8, r10); BF(r9, r11); BF(r12, r14); BF(r13, r15);
    BF(r0, r4); BF(r1, r5); BF(r2, r6); BF(r3, r7); BF(r8, r12); BF(r9, r13); BF(r10, r14); BF(r11, r15);
    BF(r0, r8); BF(r1, r9); BF(r2, r10); BF(r3, r11); BF(r4, r12); BF(r5, r13); BF(r6, r14); BF(r7, r15);
    const __m512 sc = _mm512_set1_ps(scale);
#define ST(i, r) _mm512_storeu_ps(v + 16 * (i), _mm512_mul_ps(r, sc))
    ST(0, r0); ST(1, r1); ST(2, r2); ST(3, r3); ST(4, r4); ST(5, r5); ST(6, r6); ST(7, r7);
    ST(8, r8); ST(9, r9); ST(10, r10); ST(11, r11); ST(12, r12); ST(13, r13); ST(14, r14); ST(15, r15);
#undef ST
}

__attribute__((target("avx512f")))
static void fwht_avx512(float *v, uint32_t n, float scale, const float *signs)
{
    if (n >= 256) {
        /* 256-blocks in registers (normalized only at the end: scale applies once), then
         * the strides of 256 floats and more over memory, the last one scaling. */
        float block_scale = n == 256 ? scale : 1.0f;
        for (uint32_t i = 0; i < n; i += 256) fwht256(v + i, signs + i, block_scale);
        if (n == 256) return;
        const __m512 sc = _mm512_set1_ps(scale);
        for (uint32_t h = 256; h < n; h *= 2) {
            const int last = 2 * h == n;
            for (uint32_t i = 0; i < n; i += 2 * h)
                for (uint32_t j = i; j < i + h; j += 16) {
                    __m512 x = _mm512_loadu_ps(v + j), y = _mm512_loadu_ps(v + j + h);
                    __m512 a = _mm512_add_ps(x, y), b = _mm512_sub_ps(x, y);
                    if (last) a = _mm512_mul_ps(a, sc), b = _mm512_mul_ps(b, sc);
                    _mm512_storeu_ps(v + j, a);
                    _mm512_storeu_ps(v + j + h, b);
                }
        }
        return;
    }
    for (uint32_t i = 0; i < n; i += 16)
        _mm512_storeu_ps(v + i, fwht16(_mm512_mul_ps(_mm512_loadu_ps(v + i), _mm512_loadu_ps(signs + i))));
    for (uint32_t h = 16; h < n; h *= 2)
        for (uint32_t i = 0; i < n; i += 2 * h)
            for (uint32_t j = i; j < i + h; j += 16) {
                __m512 x = _mm512_loadu_ps(v + j), y = _mm512_loadu_ps(v + j + h);
                _mm512_storeu_ps(v + j, _mm512_add_ps(x, y));
                _mm512_storeu_ps(v + j + h, _mm512_sub_ps(x, y));
            }
    const __m512 sc = _mm512_set1_ps(scale);
    for (uint32_t i = 0; i < n; i += 16) _mm512_storeu_ps(v + i, _mm512_mul_ps(_mm512_loadu_ps(v + i), sc));
}

__attribute__((target("avx2,fma")))
static void fwht_avx2(float *v, uint32_t n, float scale, const float *signs)
{
    const __m256 s1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
    const __m256 s2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
    const __m256 s4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
    for (uint32_t i = 0; i < n; i += 8) {
        __m256 x = _mm256_mul_ps(_mm256_loadu_ps(v + i), _mm256_loadu_ps(signs + i));
        x = _mm256_fmadd_ps(x, s1, _mm256_permute_ps(x, 0xb1));
        x = _mm256_fmadd_ps(x, s2, _mm256_permute_ps(x, 0x4e));
        x = _mm256_fmadd_ps(x, s4, _mm256_permute2f128_ps(x, x, 0x01));
        _mm256_storeu_ps(v + i, x);
    }
    for (uint32_t h = 8; h < n; h *= 2)
        for (uint32_t i = 0; i < n; i += 2 * h)
            for (uint32_t j = i; j < i + h; j += 8) {
                __m256 x = _mm256_loadu_ps(v + j), y = _mm256_loadu_ps(v + j + h);
                _mm256_storeu_ps(v + j, _mm256_add_ps(x, y));
                _mm256_storeu_ps(v + j + h, _mm256_sub_ps(x, y));
            }
    const __m256 sc = _mm256_set1_ps(scale);
    for (uint32_t i = 0; i < n; i += 8) _mm256_storeu_ps(v + i, _mm256_mul_ps(_mm256_loadu_ps(v + i), sc));
}

static void (*pick_fwht(void))(float *, uint32_t, float, const float *)
{
    const char *want = getenv("QV_KERNELS");
    int level = want && strcmp(want, "scalar") == 0 ? 0 : want && strcmp(want, "avx2") == 0 ? 1 : 2;
    __builtin_cpu_init();
    if (level >= 2 && __builtin_cpu_supports("avx512f")) return fwht_avx512;
    if (level >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return fwht_avx2;
    return fwht_scalar;
}
#else
static void (*pick_fwht(void))(float *, uint32_t, float, const float *) { return fwht_scalar; }
#endif

int qv_rotation_init(qv_rotation *r, uint32_t dim, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->dim = dim;
    r->dpad = qv_rotation_dpad(dim);
    r->seed = seed;
    uint32_t w = 1;
    while (w * 2 <= r->dpad) w *= 2;
    r->window = w;
    r->fwht = pick_fwht();
    r->scale = (float)(1.0 / sqrt((double)w));
    /* Per round, the signs as each window applies them: the first window flips its w
     * values; the second, [dpad - w, dpad), only those the first did not cover. */
    if (!(r->signs = qv_malloc((size_t)QV_ROTATION_ROUNDS * 2 * w * sizeof *r->signs))) return QV_ENOMEM;
    qv_rng g;
    qv_rng_seed(&g, seed ^ 0x5eed0f5e11a7e5ULL);
    for (unsigned round = 0; round < QV_ROTATION_ROUNDS; round++) {
        float *s1 = r->signs + (size_t)round * 2 * w, *s2 = s1 + w;
        for (uint32_t i = 0; i < r->dpad; i++) {
            float sg = (qv_rng_next(&g) >> 63) ? -1.0f : 1.0f;
            if (i < w) s1[i] = sg;
            if (i >= r->dpad - w) s2[i - (r->dpad - w)] = i < w ? 1.0f : sg;
        }
    }
    return QV_OK;
}

void qv_rotation_apply(const qv_rotation *r, const float *x, float *out)
{
    const uint32_t n = r->dpad, w = r->window;
    memcpy(out, x, (size_t)r->dim * sizeof *out);
    memset(out + r->dim, 0, (size_t)(n - r->dim) * sizeof *out);
    for (unsigned round = 0; round < QV_ROTATION_ROUNDS; round++) {
        const float *s1 = r->signs + (size_t)round * 2 * w;
        r->fwht(out, w, r->scale, s1);
        if (w < n) r->fwht(out + (n - w), w, r->scale, s1 + w);
    }
}
