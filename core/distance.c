/*
 * core/distance.c -- the scalar reference kernels, the run-time kernel dispatch and the
 * small vector helpers (norm, normalize, finiteness) built on top of them.
 *
 * The scalar kernels are the reference every SIMD variant is tested against. They use
 * eight independent accumulators: the sums are then split into eight interleaved partial
 * sums, which both shortens the floating-point dependency chain (the compiler may not
 * reassociate a single accumulator without -ffast-math) and keeps the rounding error of
 * long vectors close to that of the SIMD variants.
 *
 * Dispatch: qv_kernels_get() picks a table once (pthread_once) -- AVX-512F when the CPU
 * has it, else AVX2+FMA, else scalar. QV_KERNELS=scalar|avx2|avx512 in the environment
 * forces a table; asking for one the CPU lacks falls back to the best table that is no
 * wider than the one asked for, and an unknown value is ignored (a library never
 * prints, so there is nobody to tell).
 *
 * The SIMD tables live in distance_avx2.c and distance_avx512.c, each compiled for the
 * baseline ISA with its functions carrying __attribute__((target(...))): this file never
 * touches an intrinsic, so the library runs on any x86-64 (and builds elsewhere, where
 * the two SIMD files answer NULL).
 */
#include "core/distance.h"
#include "core/simd_clones.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static float scalar_l2sq(const float *a, const float *b, size_t dim)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= dim; i += 8)
        for (size_t j = 0; j < 8; j++) {
            float d = a[i + j] - b[i + j];
            acc[j] += d * d;
        }
    for (size_t j = 0; i < dim; i++, j++) {
        float d = a[i] - b[i];
        acc[j] += d * d;
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static float scalar_dot(const float *a, const float *b, size_t dim)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= dim; i += 8)
        for (size_t j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    for (size_t j = 0; i < dim; i++, j++) acc[j] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static float scalar_neg_dot(const float *a, const float *b, size_t dim) { return -scalar_dot(a, b, dim); }

static void scalar_l2sq_x4(const float *a, const float *const b[4], size_t dim, float out[4])
{
    for (int j = 0; j < 4; j++) out[j] = scalar_l2sq(a, b[j], dim);
}

static void scalar_neg_dot_x4(const float *a, const float *const b[4], size_t dim, float out[4])
{
    for (int j = 0; j < 4; j++) out[j] = -scalar_dot(a, b[j], dim);
}

/* IEEE binary16, by hand: C11 has no half type, and these run per stored value (inserts)
 * and in the scalar kernels only; the SIMD kernels convert with VCVTPH2PS. */
float qv_f16_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | (m << 13);               /* inf, NaN */
    } else if (e) {
        bits = sign | ((e + 112u) << 23) | (m << 13);        /* normal: rebias 15 -> 127 */
    } else {
        float f = (float)m * 0x1p-24f;                       /* zero, subnormal: m * 2^-24 */
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t qv_f16_from_float(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    uint32_t a = b & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;             /* NaN stays NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00u;            /* >= 65520 rounds to infinity */
    if (a < 0x38800000u) {
        /* Below 2^-14, the smallest normal half: a subnormal half is x / 2^-24, an integer
         * 0..1024 after rounding (1024 encodes 2^-14 itself, correctly). The scaling is
         * exact and rintf rounds ties to even in the default rounding mode. */
        float f;
        memcpy(&f, &a, sizeof f);
        return sign | (uint16_t)rintf(f * 0x1p24f);
    }
    uint32_t m = a & 0x7fffffu, rest = m & 0x1fffu;
    uint32_t h = (((a >> 23) - 112u) << 10) | (m >> 13);
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;   /* a carry moves into the exponent */
    return sign | (uint16_t)h;
}

/* u8 and f16 rows: the float kernels' loops with each value widened (exactly) to float. */
static inline float row_value(const void *b, size_t i, qv_vec_type et)
{
    return et == QV_VEC_U8 ? (float)((const uint8_t *)b)[i] : qv_f16_to_float(((const uint16_t *)b)[i]);
}

static inline float typed_l2sq(const float *a, const void *b, size_t dim, qv_vec_type et)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= dim; i += 8)
        for (size_t j = 0; j < 8; j++) {
            float d = a[i + j] - row_value(b, i + j, et);
            acc[j] += d * d;
        }
    for (size_t j = 0; i < dim; i++, j++) {
        float d = a[i] - row_value(b, i, et);
        acc[j] += d * d;
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static inline float typed_neg_dot(const float *a, const void *b, size_t dim, qv_vec_type et)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= dim; i += 8)
        for (size_t j = 0; j < 8; j++) acc[j] += a[i + j] * row_value(b, i + j, et);
    for (size_t j = 0; i < dim; i++, j++) acc[j] += a[i] * row_value(b, i, et);
    return -(((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])));
}

/* The four entry points of the stored element type T (qv_vec_type ET). */
#define SCALAR_ROW_ENTRIES(NAME, T, ET)                                                                  \
    static float scalar_l2sq_##NAME(const float *a, const T *b, size_t dim)                             \
    {                                                                                                    \
        return typed_l2sq(a, b, dim, ET);                                                                \
    }                                                                                                    \
    static float scalar_neg_dot_##NAME(const float *a, const T *b, size_t dim)                          \
    {                                                                                                    \
        return typed_neg_dot(a, b, dim, ET);                                                             \
    }                                                                                                    \
    static void scalar_l2sq_##NAME##_x4(const float *a, const T *const b[4], size_t dim, float out[4])  \
    {                                                                                                    \
        for (int j = 0; j < 4; j++) out[j] = typed_l2sq(a, b[j], dim, ET);                               \
    }                                                                                                    \
    static void scalar_neg_dot_##NAME##_x4(const float *a, const T *const b[4], size_t dim, float out[4]) \
    {                                                                                                    \
        for (int j = 0; j < 4; j++) out[j] = typed_neg_dot(a, b[j], dim, ET);                            \
    }

SCALAR_ROW_ENTRIES(u8, uint8_t, QV_VEC_U8)
SCALAR_ROW_ENTRIES(f16, uint16_t, QV_VEC_F16)

static const qv_kernels scalar_table = {
    "scalar", scalar_l2sq, scalar_dot, scalar_neg_dot, scalar_l2sq_x4, scalar_neg_dot_x4,
    scalar_l2sq_u8, scalar_neg_dot_u8, scalar_l2sq_u8_x4, scalar_neg_dot_u8_x4,
    scalar_l2sq_f16, scalar_neg_dot_f16, scalar_l2sq_f16_x4, scalar_neg_dot_f16_x4,
};

const qv_kernels *qv_kernels_scalar(void) { return &scalar_table; }

static const qv_kernels *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose_kernels(void)
{
    const char *want = getenv("QV_KERNELS");
    const qv_kernels *t = NULL;
    int level = 2;                 /* 2 = avx512, 1 = avx2, 0 = scalar: the widest allowed */
    if (want && strcmp(want, "scalar") == 0) level = 0;
    else if (want && strcmp(want, "avx2") == 0) level = 1;
    if (level >= 2) t = qv_kernels_avx512();
    if (!t && level >= 1) t = qv_kernels_avx2();
    chosen = t ? t : &scalar_table;
}

const qv_kernels *qv_kernels_get(void)
{
    pthread_once(&chosen_once, choose_kernels);
    return chosen;
}

qv_dist_fn qv_metric_dist_fn(qv_metric m)
{
    const qv_kernels *k = qv_kernels_get();
    return m == QV_METRIC_L2 ? k->l2sq : k->neg_dot;
}

/* Row kernels. A row goes straight to the table's kernel: the row pointer types differ
 * (const float * or const uint8_t * / const void *) but not their representation or
 * passing, and the walks call their kernel with no wrapper in between. */
#define ROW_FN(T, f) ((T)(void (*)(void))(f))

void qv_row_kernels(qv_metric m, qv_vec_type t, qv_row_dist_fn *dist, qv_row_dist_x4_fn *dist_x4)
{
    const qv_kernels *k = qv_kernels_get();
    int l2 = m == QV_METRIC_L2;
    if (t == QV_VEC_U8) {
        *dist = l2 ? ROW_FN(qv_row_dist_fn, k->l2sq_u8) : ROW_FN(qv_row_dist_fn, k->neg_dot_u8);
        *dist_x4 = l2 ? ROW_FN(qv_row_dist_x4_fn, k->l2sq_u8_x4) : ROW_FN(qv_row_dist_x4_fn, k->neg_dot_u8_x4);
        return;
    }
    if (t == QV_VEC_F16) {
        *dist = l2 ? ROW_FN(qv_row_dist_fn, k->l2sq_f16) : ROW_FN(qv_row_dist_fn, k->neg_dot_f16);
        *dist_x4 = l2 ? ROW_FN(qv_row_dist_x4_fn, k->l2sq_f16_x4) : ROW_FN(qv_row_dist_x4_fn, k->neg_dot_f16_x4);
        return;
    }
    *dist = l2 ? ROW_FN(qv_row_dist_fn, k->l2sq) : ROW_FN(qv_row_dist_fn, k->neg_dot);
    *dist_x4 = l2 ? ROW_FN(qv_row_dist_x4_fn, k->l2sq_x4) : ROW_FN(qv_row_dist_x4_fn, k->neg_dot_x4);
}

void qv_row_to_float(qv_vec_type t, const void *row, size_t dim, float *out)
{
    if (t == QV_VEC_F16) {
        const uint16_t *h = row;
        for (size_t i = 0; i < dim; i++) out[i] = qv_f16_to_float(h[i]);
        return;
    }
    if (t != QV_VEC_U8) {
        memcpy(out, row, dim * sizeof(float));
        return;
    }
    const uint8_t *b = row;
    for (size_t i = 0; i < dim; i++) out[i] = (float)b[i];
}

float qv_norm_sq(const float *a, size_t dim) { return qv_kernels_get()->dot(a, a, dim); }

/* The body of qv_normalize, compiled per instruction set (core/simd_clones.h). All in
 * double, as core/vector_check.c sums the squares when it accepts a vector: in float, the
 * squares of [1e-40, 0] underflow to 0 (the vector stayed unnormalized) and those of
 * [1e-20, 0] are subnormals (norm 1.0000026). In double every finite non-zero float
 * vector has a normal norm, and each component is rounded once. The squares go into 8
 * independent sums, not one chain of dependent double adds: 573 -> 156 ns at 512-d, where
 * it was 1.7% of a bit1 query on debian-use-512 (2026-12-06, bench/RESULTS.md "Session 14").
 * Returns 1 when v was scaled (QV_CLONES needs a value). */
static inline QV_ALWAYS_INLINE int normalize_impl(float *restrict v, size_t dim)
{
    double acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= dim; i += 8)
        for (size_t j = 0; j < 8; j++) acc[j] += (double)v[i + j] * (double)v[i + j];
    for (size_t j = 0; i < dim; i++, j++) acc[j] += (double)v[i] * (double)v[i];
    double nsq = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    if (!(nsq > 0.0)) return 0;
    double inv = 1.0 / sqrt(nsq);
    for (i = 0; i < dim; i++) v[i] = (float)((double)v[i] * inv);
    return 1;
}
QV_CLONES(int, normalize, (float *restrict v, size_t dim), (v, dim))

void qv_normalize(float *v, size_t dim) { (void)normalize(v, dim); }

int qv_all_finite(const float *v, size_t dim)
{
    /* x - x is 0 for finite x and NaN for Inf/NaN; summing keeps the loop branch-free. */
    float acc = 0.0f;
    for (size_t i = 0; i < dim; i++) acc += v[i] - v[i];
    return acc == 0.0f;
}
