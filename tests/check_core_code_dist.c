/*
 * tests/check_core_code_dist.c -- the integer code kernels (core/code_dist.h) of every
 * table this CPU runs (scalar, AVX2, AVX-512, AVX-512 VNNI) against references summed in
 * double, for every dimension 1..1536; inputs are allocated exactly (ASan sees any
 * over-read of a tail) at odd offsets; the x4 kernels against the same references; the
 * u4 packing; and the random rotation (core/rotation.h) keeps lengths and inner products
 * like an orthogonal map, against a double reference.
 *
 * The kernels return exact integer sums, so the comparison is exact: every value fits a
 * double's mantissa (|sum| < 1536 * 255 * 128).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/code_dist.h"
#include "core/rotation.h"
#include "tests/test_util.h"

#define MAX_DIM 1536

static const qv_code_kernels *table_at(int i)
{
    switch (i) {
    case 0: return qv_code_kernels_scalar();
    case 1: return qv_code_kernels_avx2();
    case 2: return qv_code_kernels_avx512();
    case 3: return qv_code_kernels_avx512vnni();
    default: return qv_code_kernels_avx512vpopcnt();
    }
}

static uint64_t rng_state;
static uint64_t next_u64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* n bytes inside a malloc'd block that ends exactly after them (ASan guards the tail). */
static void *exact(size_t n, size_t off, void **block)
{
    *block = malloc(n + off + 1);
    ck_assert_ptr_nonnull(*block);
    return (uint8_t *)*block + off;
}

static void check_u8(const qv_code_kernels *t, size_t dim)
{
    void *bq, *bc[4];
    int8_t *q = exact(dim, 1, &bq);
    const uint8_t *c[4];
    for (size_t i = 0; i < dim; i++) q[i] = (int8_t)(next_u64() % 255 - 127);
    for (int j = 0; j < 4; j++) {
        uint8_t *cj = exact(dim, (size_t)j + 1, &bc[j]);
        for (size_t i = 0; i < dim; i++) cj[i] = (uint8_t)next_u64();
        if (j == 0 && dim > 1) cj[0] = 255, q[0] = -127;       /* extremes */
        c[j] = cj;
    }
    int32_t x4[4];
    t->dot_u8_x4(c, q, dim, x4);
    for (int j = 0; j < 4; j++) {
        double want = 0;
        for (size_t i = 0; i < dim; i++) want += (double)c[j][i] * (double)q[i];
        ck_assert_msg((double)t->dot_u8(c[j], q, dim) == want, "%s dot_u8 dim %zu", t->name, dim);
        ck_assert_msg((double)x4[j] == want, "%s dot_u8_x4[%d] dim %zu", t->name, j, dim);
    }
    free(bq);
    for (int j = 0; j < 4; j++) free(bc[j]);
}

static void check_u4(const qv_code_kernels *t, size_t dim)
{
    const size_t cb = qv_u4_bytes(dim), qlen = qv_u4_query_len(dim);
    void *bq, *bc[4];
    int8_t *q = exact(qlen, 3, &bq);
    uint8_t vals[4][MAX_DIM];
    const uint8_t *c[4];
    memset(q, 0, qlen);
    for (size_t i = 0; i < dim; i++) q[i] = (int8_t)(next_u64() % 255 - 127);
    for (int j = 0; j < 4; j++) {
        uint8_t *cj = exact(cb, (size_t)j + 2, &bc[j]);
        for (size_t i = 0; i < dim; i++) vals[j][i] = (uint8_t)(next_u64() & 15);
        qv_u4_pack(vals[j], dim, cj);
            for (size_t i = 0; i < dim; i++)
            if (qv_u4_get(cj, dim, i) != vals[j][i]) ck_abort_msg("u4 pack/get dim %zu at %zu", dim, i);
        c[j] = cj;
    }
    int32_t x4[4];
    t->dot_u4_x4(c, q, dim, x4);
    for (int j = 0; j < 4; j++) {
        double want = 0;
        for (size_t i = 0; i < dim; i++) want += (double)vals[j][i] * (double)q[i];
        ck_assert_msg((double)t->dot_u4(c[j], q, dim) == want, "%s dot_u4 dim %zu", t->name, dim);
        ck_assert_msg((double)x4[j] == want, "%s dot_u4_x4[%d] dim %zu", t->name, j, dim);
    }
    free(bq);
    for (int j = 0; j < 4; j++) free(bc[j]);
}

/* Bits of dim dimensions (zero past dim, as codes are), the query as 4-bit values over
 * all 64 * words positions, split into planes by the table under test. full: every bit
 * and every query value at its maximum, the largest per-byte sums the nibble-lookup
 * kernels add up (2 nibbles x 4 x 15 = 120) before they widen them. */
static void check_bits(const qv_code_kernels *t, size_t dim, int full)
{
    const size_t words = (dim + 63) / 64, n = 64 * words;
    void *bu, *bp, *bb[8];
    uint8_t *u = exact(n, 1, &bu);
    uint64_t *planes = exact(4 * words * 8, 0, &bp);
    const uint64_t *bits[8];
    for (size_t i = 0; i < n; i++) u[i] = full ? 15 : (uint8_t)(next_u64() & 15);
    uint64_t want_planes[4 * MAX_DIM / 64];
    memset(want_planes, 0, sizeof want_planes);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < 4; j++) want_planes[(size_t)j * words + i / 64] |= (uint64_t)((u[i] >> j) & 1u) << (i % 64);
    t->bit_planes(u, words, planes);
    ck_assert_msg(memcmp(planes, want_planes, 4 * words * 8) == 0, "%s bit_planes dim %zu", t->name, dim);
    for (int j = 0; j < 8; j++) {
        uint64_t *b = exact(words * 8, 0, &bb[j]);
        for (size_t w = 0; w < words; w++) b[w] = full ? ~(uint64_t)0 : next_u64();
        if (dim % 64) b[words - 1] &= ((uint64_t)1 << (dim % 64)) - 1;
        bits[j] = b;
    }
    uint32_t x4[4], x8[8];
    t->dot_bits_x4(bits, planes, words, x4);
    t->dot_bits_x8(bits, planes, words, x8);
    for (int j = 0; j < 8; j++) {
        double want = 0;
        for (size_t i = 0; i < dim; i++)
            if ((bits[j][i / 64] >> (i % 64)) & 1) want += u[i];
        ck_assert_msg((double)t->dot_bits(bits[j], planes, words) == want, "%s dot_bits dim %zu", t->name, dim);
        ck_assert_msg(j >= 4 || (double)x4[j] == want, "%s dot_bits_x4[%d] dim %zu", t->name, j, dim);
        ck_assert_msg((double)x8[j] == want, "%s dot_bits_x8[%d] dim %zu: %u, want %.0f", t->name, j, dim, x8[j], want);
    }
    free(bu);
    free(bp);
    for (int j = 0; j < 8; j++) free(bb[j]);
}

/* Float query against u8 codes: a float sum, so within float rounding of the double
 * reference: n additions, each off by at most 2^-24 of the running sum of |terms|. */
static void check_f8(const qv_code_kernels *t, size_t dim)
{
    void *bq, *bc;
    float *q = exact(dim * sizeof(float), 4, &bq);
    uint8_t *c = exact(dim, 3, &bc);
    for (size_t i = 0; i < dim; i++) {
        q[i] = (float)((double)(next_u64() % 2000001) / 1e6 - 1.0);
        c[i] = (uint8_t)next_u64();
    }
    if (dim > 1) c[0] = 255, q[0] = -1.0f;                      /* extremes */
    double want = 0, mag = 0;
    for (size_t i = 0; i < dim; i++) {
        want += (double)c[i] * (double)q[i];
        mag += fabs((double)c[i] * (double)q[i]);
    }
    double got = t->dotf_u8(c, q, dim);
    ck_assert_msg(fabs(got - want) <= 6e-8 * (double)dim * mag + 1e-6, "%s dotf_u8 dim %zu: %.9g, want %.9g", t->name,
                  dim, got, want);
    free(bq);
    free(bc);
}

START_TEST(test_code_kernels_match_reference)
{
    const qv_code_kernels *t = table_at(_i);
    if (!t) {
        printf("SKIP: code kernel table %d needs instructions this CPU lacks\n", _i);
        return;
    }
    rng_state = 0x9e3779b97f4a7c15ULL + (uint64_t)_i;
    for (size_t dim = 1; dim <= MAX_DIM; dim++) {
        check_u8(t, dim);
        check_u4(t, dim);
        check_bits(t, dim, 0);
        check_bits(t, dim, 1);
        check_f8(t, dim);
    }
}
END_TEST

START_TEST(test_code_dispatch)
{
    const qv_code_kernels *t = qv_code_kernels_get();
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(qv_code_kernels_scalar());
    /* The dispatched table is the best one this CPU has. */
    if (!getenv("QV_KERNELS")) {
        if (qv_code_kernels_avx512vpopcnt()) ck_assert_str_eq(t->name, "avx512vpopcnt");
        else if (qv_code_kernels_avx512vnni()) ck_assert_str_eq(t->name, "avx512vnni");
        else if (qv_code_kernels_avx512()) ck_assert_str_eq(t->name, "avx512");
        else if (qv_code_kernels_avx2()) ck_assert_str_eq(t->name, "avx2");
    } else if (strcmp(getenv("QV_KERNELS"), "avx512bw") == 0 && qv_code_kernels_avx512()) {
        ck_assert_str_eq(t->name, "avx512");       /* the table Skylake-SP gets */
    } else if (strcmp(getenv("QV_KERNELS"), "avx512vnni") == 0 && qv_code_kernels_avx512vnni()) {
        ck_assert_str_eq(t->name, "avx512vnni");   /* the table Cascade Lake gets */
    }
}
END_TEST

/* The rotation is orthogonal: |Px| = |x| and <Px, Py> = <x, y>, to float rounding. */
START_TEST(test_rotation_orthogonal)
{
    static const uint32_t dims[] = {1, 2, 3, 63, 64, 65, 100, 128, 255, 256, 257, 300, 511, 768, 784, 960, 1024, 1536};
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        uint32_t dim = dims[di];
        qv_rotation r;
        QV_CK(qv_rotation_init(&r, dim, 42 + dim));
        uint32_t D = r.dpad;
        ck_assert_uint_ge(D, dim);
        float *x = random_vectors(2, dim, dim), *px = calloc(2 * D, sizeof *px);
        ck_assert_ptr_nonnull(px);
        qv_rotation_apply(&r, x, px);
        qv_rotation_apply(&r, x + dim, px + D);
        double xx = 0, xy = 0, pxx = 0, pxy = 0;
        for (uint32_t i = 0; i < dim; i++) xx += (double)x[i] * x[i], xy += (double)x[i] * x[dim + i];
        for (uint32_t i = 0; i < D; i++) pxx += (double)px[i] * px[i], pxy += (double)px[i] * px[D + i];
        ck_assert_msg(fabs(pxx - xx) <= 1e-4 * xx, "dim %u: |Px|^2 %g, |x|^2 %g", dim, pxx, xx);
        ck_assert_msg(fabs(pxy - xy) <= 1e-4 * xx, "dim %u: <Px,Py> %g, <x,y> %g", dim, pxy, xy);
        /* Not the identity: a rotation that mixed nothing would leave RaBitQ's bits biased. */
        if (dim >= 64) {
            double same = 0;
            for (uint32_t i = 0; i < dim; i++) same += (double)x[i] * px[i];
            ck_assert_msg(fabs(same) < 0.5 * xx, "dim %u: rotation looks like the identity", dim);
        }
        free(x);
        free(px);
        qv_rotation_release(&r);
    }
}
END_TEST

extern Suite *qv_code_dist_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_code_dist_suite(void)
{
    Suite *s = suite_create("code_dist");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_code_kernels_match_reference, 0, 5);
    tcase_add_test(tc, test_code_dispatch);
    tcase_add_test(tc, test_rotation_orthogonal);
    suite_add_tcase(s, tc);
    return s;
}
