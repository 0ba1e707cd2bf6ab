/*
 * tests/check_core_blas.c -- qv_blas_knn against brute force in double (ref_knn):
 * several nq / n / k (n < k, n not a multiple of the database tile, nq not a multiple of
 * the query tile), l2 and ip, with and without cached norms, single-threaded and on a
 * pool; with every filter (live rows, allow bits over ids, accept callback, explicit
 * ids); qv_sgemm_nt against a double loop; allocation failures.
 *
 * A rank matches the reference when the id is the same or when both ids are at the same
 * distance within the float error of a GEMM (ties and near-ties may swap).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blas.h"
#include "core/pool.h"
#include "tests/test_util.h"

static double ref_dist(qv_metric m, const float *a, const float *b, size_t dim)
{
    return m == QV_METRIC_L2 ? ref_l2sq(a, b, dim) : -ref_dot(a, b, dim);
}

/* Check one query's answer (rows of `base` mapped to ids by row_id) against ref rows. */
static void check_answer(qv_metric m, const float *base, size_t n, size_t dim, const float *q, size_t k,
                         const uint64_t *ref_rows, const uint64_t *row_id, const float *got_d,
                         const uint64_t *got_id, size_t got_n, const char *what)
{
    size_t want_n = n < k ? n : k;
    double scale = ref_dot(q, q, dim), maxx = 0;
    for (size_t i = 0; i < n; i++) {
        double x = ref_dot(base + i * dim, base + i * dim, dim);
        if (x > maxx) maxx = x;
    }
    double tol = 1e-5 * (scale + maxx + sqrt(scale * maxx)) + 1e-6;
    ck_assert_msg(got_n == want_n, "%s: found %zu, want %zu", what, got_n, want_n);
    for (size_t j = 0; j < k; j++) {
        if (j >= want_n) {
            ck_assert_msg(isinf(got_d[j]) && got_id[j] == UINT64_MAX, "%s: rank %zu not padded", what, j);
            continue;
        }
        size_t rrow = (size_t)ref_rows[j];
        /* The returned id must name a row; find it (ids are few and small in these tests). */
        size_t grow = n;
        for (size_t i = 0; i < n; i++)
            if ((row_id ? row_id[i] : i) == got_id[j]) { grow = i; break; }
        ck_assert_msg(grow < n, "%s: rank %zu: unknown id %llu", what, j, (unsigned long long)got_id[j]);
        double dg = ref_dist(m, q, base + grow * dim, dim), dr = ref_dist(m, q, base + rrow * dim, dim);
        ck_assert_msg(grow == rrow || fabs(dg - dr) <= tol, "%s: rank %zu: row %zu (%.9g), want row %zu (%.9g)",
                      what, j, grow, dg, rrow, dr);
        /* Reported distances are exact re-scores. */
        ck_assert_msg(fabs(got_d[j] - dg) <= 1e-5 * (fabs(dg) + sqrt(scale * maxx)) + 1e-6,
                      "%s: rank %zu: distance %.9g, exact %.9g", what, j, (double)got_d[j], dg);
        if (j > 0) ck_assert_msg(got_d[j - 1] <= got_d[j], "%s: rank %zu out of order", what, j);
    }
}

static void run_knn(size_t nq, size_t n, size_t dim, size_t k, qv_metric m, int with_norms, qv_pool *pool,
                    uint64_t seed)
{
    char what[160];
    float *x = random_vectors(n ? n : 1, dim, seed);
    float *q = random_vectors(nq, dim, seed + 1000);
    float *norms = malloc((n + 1) * sizeof *norms);
    float *od = malloc(nq * k * sizeof *od);
    uint64_t *oi = malloc(nq * k * sizeof *oi), *ref = malloc(nq * k * sizeof *ref);
    size_t *nf = malloc(nq * sizeof *nf);
    ck_assert(norms && od && oi && ref && nf);
    for (size_t i = 0; i < n; i++) norms[i] = (float)ref_dot(x + i * dim, x + i * dim, dim);
    qv_blas_db db = {.x = x, .x_norms = with_norms ? norms : NULL, .n = n, .dim = dim, .metric = m};
    QV_CK(qv_blas_knn(&db, q, nq, k, pool, od, oi, nf));
    ref_knn(x, n, dim, q, nq, k, m, ref);
    for (size_t i = 0; i < nq; i++) {
        snprintf(what, sizeof what, "nq=%zu n=%zu dim=%zu k=%zu metric=%d norms=%d pool=%d q=%zu", nq, n, dim, k, (int)m,
                 with_norms, pool != NULL, i);
        check_answer(m, x, n, dim, q + i * dim, k, ref + i * k, NULL, od + i * k, oi + i * k, nf[i], what);
    }
    free(x); free(q); free(norms); free(od); free(oi); free(ref); free(nf);
}

START_TEST(test_knn_matches_reference)
{
    qv_pool *pool = NULL;
    QV_CK(qv_pool_new(2, &pool));
    static const struct { size_t nq, n, dim, k; } cases[] = {
        {1, 1, 1, 1},      {3, 5, 8, 10},     {7, 100, 3, 100},  {40, 2048, 16, 10},
        {41, 2049, 17, 7}, {300, 4100, 32, 5}, {257, 300, 128, 1}, {5, 1000, 1, 3},
        {2, 50, 64, 1024},
    };
    int small = sanitized();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (small && cases[c].nq * cases[c].n > 200000) continue;
        for (int m = 0; m < 2; m++) {
            qv_metric metric = m ? QV_METRIC_IP : QV_METRIC_L2;
            run_knn(cases[c].nq, cases[c].n, cases[c].dim, cases[c].k, metric, (int)(c & 1), (c & 2) ? pool : NULL, 10 + c);
        }
    }
    run_knn(10, 0, 8, 4, QV_METRIC_L2, 0, pool, 3);        /* empty database: all padding */
    qv_pool_free(pool);
}
END_TEST

static int accept_not_mult3(uint64_t id, void *arg)
{
    (void)arg;
    return id % 3 != 0;
}

START_TEST(test_knn_filters)
{
    const size_t n = 3000, dim = 24, nq = 37, k = 9;
    float *x = random_vectors(n, dim, 77), *q = random_vectors(nq, dim, 78);
    uint64_t *ids = malloc(n * sizeof *ids), *ref = malloc(nq * k * sizeof *ref);
    uint64_t live[(3000 + 63) / 64] = {0}, allow[(3 * 3000 + 7 + 63) / 64] = {0};
    float *sub = malloc(n * dim * sizeof *sub), *od = malloc(nq * k * sizeof *od);
    uint64_t *oi = malloc(nq * k * sizeof *oi), *sub_id = malloc(n * sizeof *sub_id);
    size_t nf[37], nsub = 0;
    qv_pool *pool = NULL;
    ck_assert(ids && ref && sub && od && oi && sub_id);
    QV_CK(qv_pool_new(2, &pool));
    for (size_t i = 0; i < n; i++) {
        ids[i] = 3 * i + 7;                                /* increasing: ref ties by row agree */
        if (i % 5 != 2) live[i / 64] |= 1ull << (i % 64);
        if (ids[i] % 7 != 0) allow[ids[i] / 64] |= 1ull << (ids[i] % 64);
    }
    for (int m = 0; m < 2; m++) {
        qv_metric metric = m ? QV_METRIC_IP : QV_METRIC_L2;
        for (int variant = 0; variant < 4; variant++) {
            qv_blas_db db = {.x = x, .n = n, .dim = dim, .metric = metric, .ids = ids};
            if (variant == 0 || variant == 3) db.live_bits = live;
            if (variant == 1 || variant == 3) { db.allow_bits = allow; db.allow_nbits = 3 * n + 7; }
            if (variant == 2 || variant == 3) db.accept = accept_not_mult3;
            nsub = 0;
            for (size_t i = 0; i < n; i++) {
                if (db.live_bits && !((live[i / 64] >> (i % 64)) & 1)) continue;
                if (db.allow_bits && ids[i] % 7 == 0) continue;
                if (db.accept && ids[i] % 3 == 0) continue;
                memcpy(sub + nsub * dim, x + i * dim, dim * sizeof *sub);
                sub_id[nsub++] = ids[i];
            }
            QV_CK(qv_blas_knn(&db, q, nq, k, variant & 1 ? pool : NULL, od, oi, nf));
            ref_knn(sub, nsub, dim, q, nq, k, metric, ref);
            for (size_t i = 0; i < nq; i++) {
                char what[96];
                snprintf(what, sizeof what, "filter variant %d metric %d query %zu", variant, (int)metric, i);
                check_answer(metric, sub, nsub, dim, q + i * dim, k, ref + i * k, sub_id, od + i * k, oi + i * k,
                             nf[i], what);
            }
        }
    }
    /* A filter that rejects everything: nothing found, all padding. */
    qv_blas_db none = {.x = x, .n = n, .dim = dim, .metric = QV_METRIC_L2, .allow_bits = allow, .allow_nbits = 0};
    QV_CK(qv_blas_knn(&none, q, nq, k, pool, od, oi, nf));
    for (size_t i = 0; i < nq; i++) {
        ck_assert_uint_eq(nf[i], 0);
        ck_assert(oi[i * k] == UINT64_MAX && isinf(od[i * k]));
    }
    qv_pool_free(pool);
    free(x); free(q); free(ids); free(ref); free(sub); free(od); free(oi); free(sub_id);
}
END_TEST

START_TEST(test_knn_bad_args)
{
    float x[4] = {0}, od[4];
    uint64_t oi[4];
    qv_blas_db db = {.x = x, .n = 1, .dim = 4, .metric = QV_METRIC_L2};
    QV_CK_FAIL(qv_blas_knn(&db, x, 1, 0, NULL, od, oi, NULL), QV_EINVAL);
    QV_CK_FAIL(qv_blas_knn(&db, x, 1, QV_MAX_K + 1, NULL, od, oi, NULL), QV_EINVAL);
    QV_CK_FAIL(qv_blas_knn(NULL, x, 1, 1, NULL, od, oi, NULL), QV_EINVAL);
    QV_CK(qv_blas_knn(&db, x, 0, 1, NULL, NULL, NULL, NULL));   /* nq = 0: nothing to do */
    QV_CK(qv_blas_knn(&db, x, 1, 1, NULL, od, oi, NULL));       /* n_found may be NULL */
    ck_assert(oi[0] == 0 && od[0] == 0.0f);
}
END_TEST

START_TEST(test_knn_oom)
{
    const size_t n = 500, dim = 8, nq = 20, k = 5;
    float *x = random_vectors(n, dim, 5), *q = random_vectors(nq, dim, 6);
    float od[100];
    uint64_t oi[100];
    qv_pool *pool = NULL;
    QV_CK(qv_pool_new(2, &pool));
    qv_blas_db db = {.x = x, .n = n, .dim = dim, .metric = QV_METRIC_L2};
    int rc = QV_ENOMEM;
    long fails = 0;
    for (long i = 0; rc != QV_OK; i++) {
        ck_assert_msg(i < 1000, "still failing after 1000 injected failures");
        qv_alloc_fail_after(i);
        rc = qv_blas_knn(&db, q, nq, k, pool, od, oi, NULL);
        qv_alloc_fail_after(-1);
        ck_assert_msg(rc == QV_OK || rc == QV_ENOMEM, "failure %ld gave %s", i, qv_strerror(rc));
        fails += rc == QV_ENOMEM;
    }
    ck_assert_int_gt(fails, 0);
    qv_pool_free(pool);
    free(x); free(q);
}
END_TEST

START_TEST(test_sgemm_and_name)
{
    const size_t m = 13, n = 29, kk = 37;
    float *a = random_vectors(m, kk, 1), *b = random_vectors(n, kk, 2), *c = random_vectors(m, n, 3);
    float *c0 = malloc(m * n * sizeof *c0);
    ck_assert_ptr_nonnull(c0);
    memcpy(c0, c, m * n * sizeof *c);
    qv_sgemm_nt(m, n, kk, -2.0f, a, b, 0.5f, c);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double want = -2.0 * ref_dot(a + i * kk, b + j * kk, kk) + 0.5 * c0[i * n + j];
            ck_assert_double_eq_tol(c[i * n + j], want, 1e-4);
        }
    qv_sgemm_nt(0, n, kk, 1.0f, a, b, 0.0f, c);               /* empty: a no-op */
    const char *name = qv_blas_name();
    ck_assert_ptr_nonnull(name);
    ck_assert(strlen(name) > 0);
    qv_blas_set_threads(0);                                   /* 0 = leave as is */
    free(a); free(b); free(c); free(c0);
}
END_TEST

extern Suite *qv_blas_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_blas_suite(void)
{
    Suite *s = suite_create("blas");
    TCase *tc = tcase_create("knn");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_knn_matches_reference);
    tcase_add_test(tc, test_knn_filters);
    tcase_add_test(tc, test_knn_bad_args);
    tcase_add_test(tc, test_knn_oom);
    tcase_add_test(tc, test_sgemm_and_name);
    suite_add_tcase(s, tc);
    return s;
}
