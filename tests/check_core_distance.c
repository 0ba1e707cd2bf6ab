/*
 * tests/check_core_distance.c -- every kernel table (scalar, AVX2, AVX-512 where the CPU
 * has them) against the double-precision references of test_util, for every dim 1..300
 * plus 768 and 1536, with unaligned inputs sized exactly (so ASan sees any over-read of a
 * tail); the x4 kernels against the single ones; the u8- and f16-row kernels (dims 1..1536)
 * against the reference and, exactly, against the float ones; the f16 conversions; dispatch
 * and the vector helpers.
 *
 * Tolerance: 1e-5 relative to the magnitude of the sum, i.e. sum (a_i - b_i)^2 for l2
 * and sum |a_i b_i| for dot (a dot product can cancel to ~0, where no relative bound on
 * the result itself holds for any float summation order).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/distance.h"
#include "tests/test_util.h"

static const qv_kernels *table_at(int i)
{
    switch (i) {
    case 0: return qv_kernels_scalar();
    case 1: return qv_kernels_avx2();
    default: return qv_kernels_avx512();
    }
}

static double abs_dot(const float *a, const float *b, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += fabs((double)a[i] * (double)b[i]);
    return s;
}

/* a and b exactly dim floats long, starting at an odd offset inside their allocation. */
static void check_dim(const qv_kernels *t, size_t dim, uint64_t seed, float scale)
{
    size_t off = 1 + seed % 3;
    float *abuf = malloc((dim + off) * sizeof(float));
    float *bbuf[4];
    ck_assert_ptr_nonnull(abuf);
    float *a = abuf + off;
    const float *b[4];
    fill_random(a, dim, seed);
    for (size_t i = 0; i < dim; i++) a[i] *= scale;
    for (int j = 0; j < 4; j++) {
        bbuf[j] = malloc((dim + off + (size_t)j) * sizeof(float));
        ck_assert_ptr_nonnull(bbuf[j]);
        float *bj = bbuf[j] + off + j;             /* four different alignments */
        fill_random(bj, dim, seed * 7 + (uint64_t)j + 1);
        for (size_t i = 0; i < dim; i++) bj[i] *= scale;
        b[j] = bj;
    }
    float x4l2[4], x4nd[4];
    t->l2sq_x4(a, b, dim, x4l2);
    t->neg_dot_x4(a, b, dim, x4nd);
    for (int j = 0; j < 4; j++) {
        double want_l2 = ref_l2sq(a, b[j], dim), want_dot = ref_dot(a, b[j], dim);
        double tol_l2 = 1e-5 * fmax(want_l2, 1e-30), tol_dot = 1e-5 * fmax(abs_dot(a, b[j], dim), 1e-30);
        double got_l2 = t->l2sq(a, b[j], dim), got_dot = t->dot(a, b[j], dim);
        double got_nd = t->neg_dot(a, b[j], dim);
        ck_assert_msg(fabs(got_l2 - want_l2) <= tol_l2, "%s l2sq dim %zu: %.9g vs %.9g", t->name, dim, got_l2, want_l2);
        ck_assert_msg(fabs(got_dot - want_dot) <= tol_dot, "%s dot dim %zu: %.9g vs %.9g", t->name, dim, got_dot, want_dot);
        ck_assert_msg(fabs(got_nd + want_dot) <= tol_dot, "%s neg_dot dim %zu: %.9g vs %.9g", t->name, dim, got_nd, -want_dot);
        ck_assert_msg(fabs(x4l2[j] - want_l2) <= tol_l2, "%s l2sq_x4[%d] dim %zu: %.9g vs %.9g", t->name, j, dim,
                      (double)x4l2[j], want_l2);
        ck_assert_msg(fabs(x4nd[j] + want_dot) <= tol_dot, "%s neg_dot_x4[%d] dim %zu: %.9g vs %.9g", t->name, j, dim,
                      (double)x4nd[j], -want_dot);
    }
    /* Identical inputs: exactly zero distance, whatever the summation order. */
    ck_assert_msg(t->l2sq(a, a, dim) == 0.0f, "%s l2sq(a, a) != 0 at dim %zu", t->name, dim);
    free(abuf);
    for (int j = 0; j < 4; j++) free(bbuf[j]);
}

START_TEST(test_kernels_match_reference)
{
    const qv_kernels *t = table_at(_i);
    if (!t) {
        test_skip(TEST_SKIP_OPTIONAL, "distance: kernel table %d not supported by this CPU", _i);
        return;
    }
    for (size_t dim = 1; dim <= 300; dim++) check_dim(t, dim, 1000 + dim, 1.0f);
    check_dim(t, 768, 77, 1.0f);
    check_dim(t, 1536, 78, 1.0f);
    /* SIFT-like magnitudes (components up to ~180). */
    check_dim(t, 128, 79, 180.0f);
    check_dim(t, 100, 80, 1e-3f);
}
END_TEST

/* u8 and f16 rows (qv_vec_type QV_VEC_U8, QV_VEC_F16): a float query against dim stored
 * values (exactly sized, at unaligned offsets, so ASan sees a tail over-read), each kernel against
 * the double reference and against its own table's float kernel on the same values
 * widened: these kernels run the float loops on exact conversions, so the two must be
 * equal, not merely close (an index holding u8 or f16 rows then returns the distances of
 * the same index holding those values as floats). */
static void check_dim_rows(const qv_kernels *t, size_t dim, uint64_t seed, qv_vec_type et)
{
    const size_t esz = et == QV_VEC_U8 ? 1 : 2;
    float *a = malloc(dim * sizeof(float)), *bf[4];
    uint8_t *buf[4];
    const void *b[4];
    const float *bfc[4];
    ck_assert_ptr_nonnull(a);
    fill_random(a, dim, seed);
    if (et == QV_VEC_U8)
        for (size_t i = 0; i < dim; i++) a[i] = 128.0f + 127.0f * a[i];
    uint64_t x = seed * 2654435761u + 1;
    for (int j = 0; j < 4; j++) {
        /* Offsets 1..4 bytes (u8) or 2..8 (f16: a half's own alignment, not a vector's),
         * and the row ends where the block does. */
        const size_t off = esz * (1 + (size_t)j);
        buf[j] = malloc(esz * dim + off);
        bf[j] = malloc(dim * sizeof(float));
        ck_assert(buf[j] && bf[j]);
        uint8_t *bj = buf[j] + off;
        for (size_t i = 0; i < dim; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            if (et == QV_VEC_U8) {
                bj[i] = (uint8_t)(x >> 56);
                bf[j][i] = (float)bj[i];
            } else {
                /* values in [-2, 2): normal halves, subnormal ones near 0 */
                uint16_t h = qv_f16_from_float((float)((double)(x >> 40) / (double)(1u << 22) - 2.0));
                memcpy(bj + 2 * i, &h, 2);
                bf[j][i] = qv_f16_to_float(h);
            }
        }
        b[j] = bj;
        bfc[j] = bf[j];
    }
    float l4[4], n4[4], fl4[4], fn4[4];
    float (*l2)(const float *, const void *, size_t), (*nd)(const float *, const void *, size_t);
    void (*l2x4)(const float *, const void *const[4], size_t, float[4]);
    void (*ndx4)(const float *, const void *const[4], size_t, float[4]);
    if (et == QV_VEC_U8) {
        l2 = (float (*)(const float *, const void *, size_t))(void (*)(void))t->l2sq_u8;
        nd = (float (*)(const float *, const void *, size_t))(void (*)(void))t->neg_dot_u8;
        l2x4 = (void (*)(const float *, const void *const[4], size_t, float[4]))(void (*)(void))t->l2sq_u8_x4;
        ndx4 = (void (*)(const float *, const void *const[4], size_t, float[4]))(void (*)(void))t->neg_dot_u8_x4;
    } else {
        l2 = (float (*)(const float *, const void *, size_t))(void (*)(void))t->l2sq_f16;
        nd = (float (*)(const float *, const void *, size_t))(void (*)(void))t->neg_dot_f16;
        l2x4 = (void (*)(const float *, const void *const[4], size_t, float[4]))(void (*)(void))t->l2sq_f16_x4;
        ndx4 = (void (*)(const float *, const void *const[4], size_t, float[4]))(void (*)(void))t->neg_dot_f16_x4;
    }
    const char *tn = qv_vec_type_name(et);
    l2x4(a, b, dim, l4);
    ndx4(a, b, dim, n4);
    t->l2sq_x4(a, bfc, dim, fl4);
    t->neg_dot_x4(a, bfc, dim, fn4);
    for (int j = 0; j < 4; j++) {
        double want_l2 = ref_l2sq(a, bf[j], dim), want_dot = ref_dot(a, bf[j], dim);
        double tol_l2 = 1e-5 * fmax(want_l2, 1e-30), tol_dot = 1e-5 * fmax(abs_dot(a, bf[j], dim), 1e-30);
        float got_l2 = l2(a, b[j], dim), got_nd = nd(a, b[j], dim);
        ck_assert_msg(fabs(got_l2 - want_l2) <= tol_l2, "%s l2sq_%s dim %zu: %.9g vs %.9g", t->name, tn, dim,
                      (double)got_l2, want_l2);
        ck_assert_msg(fabs(got_nd + want_dot) <= tol_dot, "%s neg_dot_%s dim %zu: %.9g vs %.9g", t->name, tn, dim,
                      (double)got_nd, -want_dot);
        ck_assert_msg(got_l2 == t->l2sq(a, bf[j], dim), "%s l2sq_%s != l2sq at dim %zu", t->name, tn, dim);
        ck_assert_msg(got_nd == t->neg_dot(a, bf[j], dim), "%s neg_dot_%s != neg_dot at dim %zu", t->name, tn, dim);
        ck_assert_msg(l4[j] == fl4[j], "%s l2sq_%s_x4[%d] != l2sq_x4 at dim %zu", t->name, tn, j, dim);
        ck_assert_msg(n4[j] == fn4[j], "%s neg_dot_%s_x4[%d] != neg_dot_x4 at dim %zu", t->name, tn, j, dim);
    }
    free(a);
    for (int j = 0; j < 4; j++) { free(buf[j]); free(bf[j]); }
}

/* Loop index i: table i % 3, u8 rows for i < 3, f16 rows after. */
START_TEST(test_kernels_rows)
{
    const qv_kernels *t = table_at(_i % 3);
    const qv_vec_type et = _i < 3 ? QV_VEC_U8 : QV_VEC_F16;
    const uint64_t base = et == QV_VEC_U8 ? 3000 : 5000;
    if (!t) {
        test_skip(TEST_SKIP_OPTIONAL, "distance: kernel table %d not supported by this CPU", _i % 3);
        return;
    }
    for (size_t dim = 1; dim <= 1536; dim += dim < 300 ? 1 : 37) check_dim_rows(t, dim, base + dim, et);
    if (et == QV_VEC_U8) {
        check_dim_rows(t, 784, 81, et);
        check_dim_rows(t, 1536, 82, et);
    } else {
        check_dim_rows(t, 512, 83, et);
        check_dim_rows(t, 1536, 84, et);
    }
}
END_TEST

/* The half a float rounds to, found the slow way: of the finite halves, the one nearest x
 * in double, ties to the even encoding; beyond 65520 (where the next half up would be
 * 2^16) infinity. Searches the 65536 encodings' neighbourhood of a first guess. */
static uint16_t ref_f16(float x)
{
    if (isnan(x)) return 0x7e00;
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double ax = fabs((double)x);
    if (ax >= 65520.0) return sign | 0x7c00;
    uint16_t best = 0;
    double bd = INFINITY;
    for (uint32_t h = 0; h < 0x7c00; h++) {                 /* every finite non-negative half */
        double d = fabs((double)qv_f16_to_float((uint16_t)h) - ax);
        if (d < bd || (d == bd && !(h & 1))) { bd = d; best = (uint16_t)h; }
    }
    return sign | best;
}

/* qv_f16_to_float is exact and qv_f16_from_float rounds to nearest even: every half comes
 * back from its float; floats between halves, at ties, near the edges of the subnormal and
 * normal ranges, and at random, round to what ref_f16 finds by search. */
START_TEST(test_f16_convert)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = qv_f16_to_float((uint16_t)h);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            ck_assert_msg(isnan(f), "half %#x is NaN", h);
            ck_assert(isnan(qv_f16_to_float(qv_f16_from_float(f))));
            continue;
        }
        ck_assert_msg(qv_f16_from_float(f) == h, "half %#x -> %g -> %#x", h, (double)f, qv_f16_from_float(f));
    }
    ck_assert(qv_f16_to_float(0x3c00) == 1.0f && qv_f16_to_float(0x7bff) == 65504.0f);
    ck_assert(qv_f16_to_float(0x0001) == 0x1p-24f && qv_f16_to_float(0x0400) == 0x1p-14f);
    float edge[] = {65504.0f, 65519.99f, 65520.0f, 1e9f, INFINITY, 0x1p-14f, 0x1.ffcp-15f, 0x1p-24f, 0x1p-25f,
                    0x1.000002p-25f, 0x1.8p-24f, 0x1.4p-24f, 0x1p-30f, 1e-40f, 0.0f, 1.0f + 0x1p-11f,
                    1.0f + 0x1p-11f + 0x1p-23f, 1.0f + 3 * 0x1p-11f, 0.1f, 0.3333333f, 2047.5f, 2048.5f};
    for (size_t i = 0; i < sizeof edge / sizeof *edge; i++)
        for (int sg = 0; sg < 2; sg++) {
            float x = sg ? -edge[i] : edge[i];
            ck_assert_msg(qv_f16_from_float(x) == ref_f16(x), "%a -> %#x, want %#x", (double)x, qv_f16_from_float(x),
                          ref_f16(x));
        }
    uint64_t s = 12345;
    for (int i = 0; i < 3000; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        uint32_t bits = (uint32_t)(s >> 32);
        bits = (bits & 0x80000000u) | (0x30000000u + bits % 0x18000000u);      /* about 2^-31 .. 2^17 */
        float x;
        memcpy(&x, &bits, sizeof x);
        ck_assert_msg(qv_f16_from_float(x) == ref_f16(x), "%a -> %#x, want %#x", (double)x, qv_f16_from_float(x),
                      ref_f16(x));
    }
    ck_assert(qv_f16_fits(65504.0f) && qv_f16_fits(-65519.0f) && !qv_f16_fits(65520.0f) && !qv_f16_fits(NAN) &&
              !qv_f16_fits(-INFINITY));
}
END_TEST

/* qv_row_kernels: f32 rows get the float kernels themselves, u8 rows the u8 ones. */
START_TEST(test_row_kernels)
{
    const qv_kernels *g = qv_kernels_get();
    float q[19], row[19];
    uint8_t rb[19];
    for (int i = 0; i < 19; i++) { q[i] = 0.5f * (float)i; rb[i] = (uint8_t)(7 * i); row[i] = (float)rb[i]; }
    for (int m = QV_METRIC_L2; m <= QV_METRIC_IP; m++) {
        qv_row_dist_fn d, du;
        qv_row_dist_x4_fn d4, du4;
        qv_row_kernels((qv_metric)m, QV_VEC_F32, &d, &d4);
        qv_row_kernels((qv_metric)m, QV_VEC_U8, &du, &du4);
        float want = m == QV_METRIC_L2 ? g->l2sq(q, row, 19) : g->neg_dot(q, row, 19);
        ck_assert(d(q, row, 19) == want);
        ck_assert(du(q, rb, 19) == want);
        const void *r4[4] = {rb, rb, rb, rb}, *f4[4] = {row, row, row, row};
        float o[4], of[4];
        du4(q, r4, 19, o);
        d4(q, f4, 19, of);
        for (int j = 0; j < 4; j++) ck_assert(o[j] == of[j]);
    }
    uint16_t rh[19];
    float rowh[19];
    for (int i = 0; i < 19; i++) { rh[i] = qv_f16_from_float(0.37f * (float)i - 3.0f); rowh[i] = qv_f16_to_float(rh[i]); }
    for (int m = QV_METRIC_L2; m <= QV_METRIC_IP; m++) {
        qv_row_dist_fn dh;
        qv_row_dist_x4_fn dh4;
        qv_row_kernels((qv_metric)m, QV_VEC_F16, &dh, &dh4);
        float want = m == QV_METRIC_L2 ? g->l2sq(q, rowh, 19) : g->neg_dot(q, rowh, 19);
        ck_assert(dh(q, rh, 19) == want);
        const void *r4[4] = {rh, rh, rh, rh};
        float o[4];
        dh4(q, r4, 19, o);
        for (int j = 0; j < 4; j++) ck_assert(o[j] == want);
    }
    ck_assert_uint_eq(qv_row_bytes(QV_VEC_F16, 784), 1568);
    ck_assert_uint_eq(qv_row_bytes(QV_VEC_U8, 784), 784);
    ck_assert_uint_eq(qv_row_bytes(QV_VEC_F32, 784), 3136);
}
END_TEST

START_TEST(test_cpu_tables)
{
    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f") != 0;
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    ck_assert_int_eq(qv_kernels_avx512() != NULL, has512);
    ck_assert_int_eq(qv_kernels_avx2() != NULL, has2);
    ck_assert_ptr_nonnull(qv_kernels_scalar());
    ck_assert_str_eq(qv_kernels_scalar()->name, "scalar");
    const qv_kernels *g = qv_kernels_get();
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_eq(qv_kernels_get(), g);                /* chosen once */
    const char *want = getenv("QV_KERNELS");
    if (!want || !*want) {
        const char *best = has512 ? "avx512" : has2 ? "avx2" : "scalar";
        ck_assert_str_eq(g->name, best);
    } else if (strcmp(want, "scalar") == 0) {
        ck_assert_str_eq(g->name, "scalar");
    } else if (strcmp(want, "avx2") == 0) {
        ck_assert_str_eq(g->name, has2 ? "avx2" : "scalar");
    }
    ck_assert_ptr_eq(qv_metric_dist_fn(QV_METRIC_L2), g->l2sq);
    ck_assert_ptr_eq(qv_metric_dist_fn(QV_METRIC_IP), g->neg_dot);
    ck_assert_ptr_eq(qv_metric_dist_fn(QV_METRIC_COSINE), g->neg_dot);
}
END_TEST

START_TEST(test_norm_normalize)
{
    /* 1..70 covers the 8-way sums' tails; 511-513 and 1536 the long loops. */
    static const size_t big[] = {511, 512, 513, 1536};
    for (size_t t = 0; t < 24 + 4; t++) {
        size_t dim = t < 24 ? 1 + 3 * t : big[t - 24];
        float v[1536], w[1536];
        fill_random(v, dim, 500 + dim);
        memcpy(w, v, dim * sizeof *v);
        double n2 = ref_dot(v, v, dim);
        ck_assert_double_eq_tol(qv_norm_sq(v, dim), n2, 1e-5 * n2);
        qv_normalize(w, dim);
        ck_assert_double_eq_tol(ref_dot(w, w, dim), 1.0, 1e-5);
        for (size_t i = 0; i < dim; i++) ck_assert_double_eq_tol(w[i], v[i] / sqrt(n2), 1e-6);
    }
    float z[5] = {0, 0, 0, 0, 0};
    qv_normalize(z, 5);
    for (int i = 0; i < 5; i++) ck_assert(z[i] == 0.0f);
    ck_assert(qv_norm_sq(z, 5) == 0.0f);
}
END_TEST

START_TEST(test_all_finite)
{
    float v[37];
    fill_random(v, 37, 9);
    ck_assert_int_eq(qv_all_finite(v, 37), 1);
    ck_assert_int_eq(qv_all_finite(v, 0), 1);
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (size_t pos = 0; pos < 37; pos += 6)
        for (int b = 0; b < 3; b++) {
            float keep = v[pos];
            v[pos] = bad[b];
            ck_assert_int_eq(qv_all_finite(v, 37), 0);
            ck_assert_int_eq(qv_all_finite(v, pos), 1);   /* before the bad value: fine */
            v[pos] = keep;
        }
    float big[2] = {3e38f, 3e38f};                         /* finite, even if their sum is not */
    ck_assert_int_eq(qv_all_finite(big, 2), 1);
}
END_TEST

extern Suite *qv_distance_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_distance_suite(void)
{
    Suite *s = suite_create("distance");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_kernels_match_reference, 0, 3);
    tcase_add_loop_test(tc, test_kernels_rows, 0, 6);
    tcase_add_test(tc, test_f16_convert);
    tcase_add_test(tc, test_row_kernels);
    tcase_add_test(tc, test_cpu_tables);
    tcase_add_test(tc, test_norm_normalize);
    tcase_add_test(tc, test_all_finite);
    suite_add_tcase(s, tc);
    return s;
}
