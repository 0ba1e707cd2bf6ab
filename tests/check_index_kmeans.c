/*
 * tests/check_index_kmeans.c -- qv_kmeans: finds well-separated clusters (l2 and
 * spherical), repairs empty clusters (duplicate points, k = n), samples, is reproducible
 * with a fixed seed, reports progress and an objective that matches a double-precision
 * recomputation, and rejects bad parameters.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "index/ivf.h"
#include "tests/test_util.h"

/* nc true centres in [-10, 10)^dim, per points around each with noise +-0.1, shuffled
 * deterministically (cluster of row i = i % nc). */
static float *separated(size_t nc, size_t per, size_t dim, uint64_t seed, float **centres)
{
    float *c = random_vectors(nc, dim, seed);
    for (size_t i = 0; i < nc * dim; i++) c[i] *= 10.0f;
    float *x = random_vectors(nc * per, dim, seed + 1);
    for (size_t i = 0; i < nc * per; i++)
        for (size_t d = 0; d < dim; d++) x[i * dim + d] = c[(i % nc) * dim + d] + 0.1f * x[i * dim + d];
    *centres = c;
    return x;
}

/* Each true centre has exactly one found centroid within tol (squared distance). */
static void assert_matches(const float *found, const float *truth, size_t k, size_t dim, double tol)
{
    for (size_t t = 0; t < k; t++) {
        size_t near = 0;
        for (size_t c = 0; c < k; c++)
            if (ref_l2sq(found + c * dim, truth + t * dim, dim) < tol) near++;
        ck_assert_msg(near == 1, "true centre %zu has %zu centroids within %g", t, near, tol);
    }
}

/* Sum of squared distances of every row to its nearest centroid, in double. */
static double ref_objective(const float *x, size_t n, size_t dim, const float *cent, size_t k)
{
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double best = INFINITY;
        for (size_t c = 0; c < k; c++) {
            double d = ref_l2sq(x + i * dim, cent + c * dim, dim);
            if (d < best) best = d;
        }
        total += best;
    }
    return total;
}

START_TEST(test_finds_separated_clusters)
{
    size_t nc = 12, per = 150, dim = 16, n = nc * per;
    float *truth, *x = separated(nc, per, dim, 7, &truth);
    float *cent = malloc(nc * dim * sizeof *cent);
    qv_kmeans_params p;
    qv_kmeans_params_init(&p, (uint32_t)nc);
    p.threads = (uint32_t)_i + 1;
    double obj;
    QV_CK(qv_kmeans(&p, n, dim, x, cent, &obj));
    assert_matches(cent, truth, nc, dim, 0.01);
    /* noise is uniform in +-0.1: variance 0.01/3 per component */
    double expect = (double)n * (double)dim * 0.01 / 3.0;
    ck_assert_msg(obj < 1.2 * expect && obj > 0.8 * expect, "objective %g, expected about %g", obj, expect);
    double again = ref_objective(x, n, dim, cent, nc);
    ck_assert_msg(again <= obj * (1 + 1e-4) + 1e-6, "final centroids worse (%g) than the reported objective %g", again, obj);
    free(truth);
    free(x);
    free(cent);
}
END_TEST

START_TEST(test_same_seed_same_result)
{
    size_t n = 3000, dim = 8, k = 40;
    float *x = random_vectors(n, dim, 99);
    float *a = malloc(k * dim * sizeof *a), *b = malloc(k * dim * sizeof *b);
    qv_kmeans_params p;
    qv_kmeans_params_init(&p, (uint32_t)k);
    p.threads = 1;
    p.seed = 1234;
    QV_CK(qv_kmeans(&p, n, dim, x, a, NULL));
    QV_CK(qv_kmeans(&p, n, dim, x, b, NULL));
    ck_assert_msg(memcmp(a, b, k * dim * sizeof *a) == 0, "seed %llu: two runs differ", (unsigned long long)p.seed);
    p.threads = 2;                      /* bucketing keeps sums independent of threads */
    QV_CK(qv_kmeans(&p, n, dim, x, b, NULL));
    ck_assert_msg(memcmp(a, b, k * dim * sizeof *a) == 0, "threads 1 and 2 differ");
    free(x);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_spherical_unit_centroids)
{
    /* directions: separated centres normalized, points scaled by random lengths */
    size_t nc = 6, per = 100, dim = 12, n = nc * per;
    float *truth, *x = separated(nc, per, dim, 21, &truth);
    for (size_t c = 0; c < nc; c++) {
        double nn = sqrt(ref_dot(truth + c * dim, truth + c * dim, dim));
        for (size_t d = 0; d < dim; d++) truth[c * dim + d] = (float)(truth[c * dim + d] / nn);
    }
    for (size_t i = 0; i < n; i++) {
        float s = 0.5f + (float)(i % 7);
        for (size_t d = 0; d < dim; d++) x[i * dim + d] *= s;
    }
    float *cent = malloc(nc * dim * sizeof *cent);
    for (int m = 0; m < 2; m++) {
        qv_kmeans_params p;
        qv_kmeans_params_init(&p, (uint32_t)nc);
        p.metric = m ? QV_METRIC_IP : QV_METRIC_COSINE;
        double obj;
        QV_CK(qv_kmeans(&p, n, dim, x, cent, &obj));
        for (size_t c = 0; c < nc; c++)
            ck_assert_double_eq_tol(ref_dot(cent + c * dim, cent + c * dim, dim), 1.0, 1e-4);
        assert_matches(cent, truth, nc, dim, 0.01);
        ck_assert(obj >= 0 && isfinite(obj));
    }
    free(truth);
    free(x);
    free(cent);
}
END_TEST

START_TEST(test_empty_clusters_repaired_duplicates)
{
    /* 10 distinct points, each 20 times; k = 15 forces duplicate seeds and empty clusters */
    size_t distinct = 10, rep = 20, dim = 6, n = distinct * rep, k = 15;
    float *base = random_vectors(distinct, dim, 5);
    float *x = malloc(n * dim * sizeof *x), *cent = malloc(k * dim * sizeof *cent);
    for (size_t i = 0; i < n; i++) memcpy(x + i * dim, base + (i % distinct) * dim, dim * sizeof *x);
    qv_kmeans_params p;
    qv_kmeans_params_init(&p, (uint32_t)k);
    p.iters = 10;
    qv_kmeans_stats st;
    QV_CK(qv_kmeans_run(&p, n, dim, x, cent, &st));
    ck_assert_msg(st.repairs > 0, "no empty cluster was repaired");
    /* split centroids sit 1/1024 of the magnitude away from their points: nearly 0
     * (the spread of the data itself is about n*dim/3 = 400) */
    ck_assert_msg(st.objective < 1e-2, "objective %g: every distinct point should own a centroid", st.objective);
    for (size_t i = 0; i < k * dim; i++) ck_assert(isfinite(cent[i]));
    ck_assert_double_lt(ref_objective(x, n, dim, cent, k), 1e-2);

    /* all points identical: every cluster but one is empty each round */
    for (size_t i = 0; i < n; i++) memcpy(x + i * dim, base, dim * sizeof *x);
    QV_CK(qv_kmeans_run(&p, n, dim, x, cent, &st));
    ck_assert(st.repairs > 0);
    ck_assert_double_lt(ref_objective(x, n, dim, cent, k), 1e-2);
    free(base);
    free(x);
    free(cent);
}
END_TEST

START_TEST(test_k_equals_n)
{
    size_t n = 40, dim = 5;
    float *x = random_vectors(n, dim, 77);
    float *cent = malloc(n * dim * sizeof *cent);
    qv_kmeans_params p;
    qv_kmeans_params_init(&p, (uint32_t)n);
    double obj;
    QV_CK(qv_kmeans(&p, n, dim, x, cent, &obj));
    ck_assert_double_lt(obj, 1e-6);
    ck_assert_double_lt(ref_objective(x, n, dim, cent, n), 1e-6);
    free(x);
    free(cent);
}
END_TEST

START_TEST(test_sampling)
{
    size_t nc = 5, per = 2000, dim = 8, n = nc * per;
    float *truth, *x = separated(nc, per, dim, 31, &truth);
    float *cent = malloc(nc * dim * sizeof *cent);
    qv_kmeans_params p;
    qv_kmeans_params_init(&p, (uint32_t)nc);
    p.max_points = 500;
    double obj;
    QV_CK(qv_kmeans(&p, n, dim, x, cent, &obj));
    assert_matches(cent, truth, nc, dim, 0.01);
    double expect = 500.0 * (double)dim * 0.01 / 3.0;   /* objective is over the sample */
    ck_assert_msg(obj < 1.3 * expect && obj > 0.7 * expect, "objective %g, expected about %g", obj, expect);
    free(truth);
    free(x);
    free(cent);
}
END_TEST

typedef struct { size_t calls, last_done, last_total; int bad_phase; } progress_log;

static void on_progress(const char *phase, size_t done, size_t total, void *arg)
{
    progress_log *log = arg;
    if (strcmp(phase, "kmeans") != 0) log->bad_phase = 1;
    if (done < log->last_done) log->bad_phase = 1;
    log->calls++;
    log->last_done = done;
    log->last_total = total;
}

START_TEST(test_progress)
{
    size_t n = 1000, dim = 4;
    float *x = random_vectors(n, dim, 3);
    float *cent = malloc(16 * dim * sizeof *cent);
    progress_log log = {0, 0, 0, 0};
    qv_kmeans_params p;
    qv_kmeans_params_init(&p, 16);
    p.iters = 7;
    p.progress = on_progress;
    p.progress_arg = &log;
    QV_CK(qv_kmeans(&p, n, dim, x, cent, NULL));
    ck_assert(log.calls >= 1 && !log.bad_phase);
    ck_assert_uint_eq(log.last_done, 7);
    ck_assert_uint_eq(log.last_total, 7);
    free(x);
    free(cent);
}
END_TEST

START_TEST(test_bad_parameters)
{
    size_t n = 50, dim = 4;
    float *x = random_vectors(n, dim, 4);
    float cent[51 * 4];
    qv_kmeans_params p;
    qv_kmeans_params_init(&p, 0);
    QV_CK_FAIL(qv_kmeans(&p, n, dim, x, cent, NULL), QV_EINVAL);
    p.k = 51;
    QV_CK_FAIL(qv_kmeans(&p, n, dim, x, cent, NULL), QV_EINVAL);
    p.k = 5;
    QV_CK_FAIL(qv_kmeans(&p, n, 0, x, cent, NULL), QV_EINVAL);
    p.iters = 10001;
    QV_CK_FAIL(qv_kmeans(&p, n, dim, x, cent, NULL), QV_EINVAL);
    p.iters = 0;
    p.max_points = 3;
    QV_CK_FAIL(qv_kmeans(&p, n, dim, x, cent, NULL), QV_EINVAL);
    p.max_points = 0;
    p.metric = (qv_metric)9;
    QV_CK_FAIL(qv_kmeans(&p, n, dim, x, cent, NULL), QV_EINVAL);
    p.metric = QV_METRIC_L2;
    QV_CK_FAIL(qv_kmeans(NULL, n, dim, x, cent, NULL), QV_EINVAL);
    QV_CK_FAIL(qv_kmeans(&p, n, dim, x, NULL, NULL), QV_EINVAL);
    x[17] = NAN;
    QV_CK_FAIL(qv_kmeans(&p, n, dim, x, cent, NULL), QV_EINVAL);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "point 4"));
    x[17] = 0;
    if (!qv_gpu_available()) {
        p.gpu = QV_GPU_REQUIRE;
        QV_CK_FAIL(qv_kmeans(&p, n, dim, x, cent, NULL), QV_ENODEV);
    }
    free(x);
}
END_TEST

START_TEST(test_alloc_failures)
{
    size_t n = 400, dim = 4, k = 8;
    float *x = random_vectors(n, dim, 8);
    float *cent = malloc(k * dim * sizeof *cent);
    qv_kmeans_params p;
    qv_kmeans_params_init(&p, (uint32_t)k);
    p.threads = 1;
    p.max_points = 300;
    int rc = QV_ENOMEM;
    for (long i = 0; i < 200 && rc != QV_OK; i++) {
        qv_alloc_fail_after(i);
        rc = qv_kmeans(&p, n, dim, x, cent, NULL);
        qv_alloc_fail_after(-1);
        ck_assert_msg(rc == QV_OK || rc == QV_ENOMEM, "failure %ld: %s", i, qv_strerror(rc));
    }
    ck_assert_int_eq(rc, QV_OK);
    free(x);
    free(cent);
}
END_TEST

/* qv_ivf_assign against a double-precision argmin: k crosses the SGEMM column tile
 * (1024) and n is not a multiple of the row tile. (Exact ties are not checked: OpenBLAS
 * may round two identical columns differently.) _i: 0 = l2, 1 = ip. */
START_TEST(test_assign_matches_reference)
{
    size_t n = sanitized() ? 300 : 700, k = 1500, dim = 9;
    qv_metric metric = _i ? QV_METRIC_IP : QV_METRIC_L2;
    float *x = random_vectors(n, dim, 11), *cent = random_vectors(k, dim, 12), *dist = malloc(n * sizeof *dist);
    uint32_t *assign = malloc(n * sizeof *assign);
    qv_pool *pool = qv_pool_shared(2);
    ck_assert_ptr_nonnull(pool);
    QV_CK(qv_ivf_assign(cent, NULL, k, dim, metric, x, n, pool, assign, dist));
    for (size_t i = 0; i < n; i++) {
        double best = INFINITY, second = INFINITY;
        size_t arg = 0;
        for (size_t c = 0; c < k; c++) {
            double d = metric == QV_METRIC_L2 ? ref_l2sq(x + i * dim, cent + c * dim, dim) : -ref_dot(x + i * dim, cent + c * dim, dim);
            if (d < best) {
                second = best;
                best = d;
                arg = c;
            } else if (d < second) {
                second = d;
            }
        }
        if (second - best > 1e-4)                       /* clear winner: GEMM rounding cannot flip it */
            ck_assert_msg(assign[i] == arg, "row %zu: got %u want %zu", i, assign[i], arg);
        ck_assert_double_eq_tol(dist[i], best, 1e-4 * fmax(1.0, fabs(best)));
    }
    free(x);
    free(cent);
    free(dist);
    free(assign);
}
END_TEST

extern Suite *qv_kmeans_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_kmeans_suite(void)
{
    Suite *s = suite_create("kmeans");
    TCase *tc = tcase_create("kmeans");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_finds_separated_clusters, 0, 2);
    tcase_add_test(tc, test_same_seed_same_result);
    tcase_add_test(tc, test_spherical_unit_centroids);
    tcase_add_test(tc, test_empty_clusters_repaired_duplicates);
    tcase_add_test(tc, test_k_equals_n);
    tcase_add_test(tc, test_sampling);
    tcase_add_test(tc, test_progress);
    tcase_add_test(tc, test_bad_parameters);
    tcase_add_test(tc, test_alloc_failures);
    tcase_add_loop_test(tc, test_assign_matches_reference, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
