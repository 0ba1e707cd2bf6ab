/*
 * tests/check_index_kmeans.c -- qv_kmeans: finds well-separated clusters (l2 and
 * spherical), repairs empty clusters (duplicate points, k = n), samples, is reproducible
 * with a fixed seed, reports progress and an objective that matches a double-precision
 * recomputation, and rejects bad parameters.
 * on_iteration: called once per iteration (iters, or fewer after a fixed point) with a
 * monotone objective (l2: sum of squared distances, non-increasing; ip/cosine: sum of
 * similarities, non-decreasing), the last value agreeing with the returned objective.
 * GPU modes: without a usable device AUTO gives bit-identical results to OFF (centroids,
 * objective, the callback sequence) and REQUIRE is QV_ENODEV with a message; with one
 * (a real GPU, or the CUDA emulation: make -f gpu/gpu-check.mk emu ...) AUTO and REQUIRE
 * run the iterations on the device and the result is checked against the CPU run and a
 * double-precision recomputation.
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
        ck_assert_msg(strstr(qv_last_error(), "no usable GPU") != NULL, "message: %s", qv_last_error());
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

/* ---- on_iteration and the GPU modes ---------------------------------------------------- */

#define MAX_LOG 64
typedef struct {
    uint32_t calls, bad_iter;
    double obj[MAX_LOG];
} iter_log;

static void on_iter(uint32_t iter, double objective, void *arg)
{
    iter_log *log = arg;
    if (iter != log->calls + 1) log->bad_iter = iter;
    if (log->calls < MAX_LOG) log->obj[log->calls] = objective;
    log->calls++;
}

/* The callback ran once per iteration, numbered 1.., with a monotone objective
 * (dir = +1: non-decreasing, -1: non-increasing) up to float rounding. */
static void assert_monotone(const iter_log *log, uint32_t iters_run, int dir)
{
    ck_assert_uint_eq(log->calls, iters_run);
    ck_assert_msg(log->bad_iter == 0, "callback numbered %u out of order", log->bad_iter);
    for (uint32_t i = 1; i < log->calls && i < MAX_LOG; i++) {
        double a = log->obj[i - 1], b = log->obj[i], tol = 1e-6 * fabs(a) + 1e-9;
        ck_assert_msg(dir < 0 ? b <= a + tol : b >= a - tol, "iteration %u: objective %.9g after %.9g", i + 1, b, a);
    }
}

/* _i = gpu mode (OFF, AUTO): the CPU path, or the device when there is one. */
START_TEST(test_on_iteration_l2)
{
    size_t n = 4000, dim = 8, k = 20;
    float *x = random_vectors(n, dim, 1001), *cent = malloc(k * dim * sizeof *cent);
    qv_kmeans_params p;
    qv_kmeans_stats st;
    iter_log log;
    memset(&log, 0, sizeof log);
    qv_kmeans_params_init(&p, (uint32_t)k);
    p.iters = 15;
    p.gpu = (qv_gpu_mode)_i;
    p.on_iteration = on_iter;
    p.on_iteration_arg = &log;
    QV_CK(qv_kmeans_run(&p, n, dim, x, cent, &st));
    ck_assert_int_eq(st.used_gpu, p.gpu == QV_GPU_AUTO && qv_gpu_probe());
    ck_assert(st.iters_run >= 2 && st.iters_run <= 15);
    assert_monotone(&log, st.iters_run, -1);
    ck_assert_msg(log.obj[0] > log.obj[log.calls - 1], "no progress: %g -> %g", log.obj[0], log.obj[log.calls - 1]);
    /* the last callback is the returned objective, and it matches a recomputation
     * against the centroids of that iteration up to the final update (never worse) */
    ck_assert_double_eq_tol(log.obj[log.calls - 1], st.objective, 1e-9 * st.objective);
    double again = ref_objective(x, n, dim, cent, k);
    ck_assert_msg(again <= st.objective * (1 + 1e-4), "final centroids %g worse than reported %g", again, st.objective);

    /* a fixed point ends the run early: fewer calls than iters */
    size_t nc = 4, per = 50;
    float *truth, *y = separated(nc, per, dim, 1002, &truth);
    memset(&log, 0, sizeof log);
    p.k = (uint32_t)nc;
    p.iters = 50;
    QV_CK(qv_kmeans_run(&p, nc * per, dim, y, cent, &st));
    assert_monotone(&log, st.iters_run, -1);
    if (!st.used_gpu) ck_assert_msg(st.iters_run < 50, "no early stop on separated clusters");
    free(truth);
    free(y);
    free(x);
    free(cent);
}
END_TEST

/* Spherical k-means: the sum of similarities never decreases. _i = metric (ip, cosine). */
START_TEST(test_on_iteration_spherical)
{
    size_t n = 3000, dim = 10, k = 12;
    qv_metric metric = _i ? QV_METRIC_COSINE : QV_METRIC_IP;
    float *x = random_vectors(n, dim, 1003), *cent = malloc(k * dim * sizeof *cent);
    for (size_t i = 0; i < n; i++)                      /* lengths 0.5 .. 3.5 (ip sees them) */
        for (size_t d = 0; d < dim; d++) x[i * dim + d] *= 0.5f + (float)(i % 4);
    for (int gpu = QV_GPU_OFF; gpu <= QV_GPU_AUTO; gpu++) {
        qv_kmeans_params p;
        qv_kmeans_stats st;
        iter_log log;
        memset(&log, 0, sizeof log);
        qv_kmeans_params_init(&p, (uint32_t)k);
        p.metric = metric;
        p.iters = 12;
        p.gpu = (qv_gpu_mode)gpu;
        p.on_iteration = on_iter;
        p.on_iteration_arg = &log;
        QV_CK(qv_kmeans_run(&p, n, dim, x, cent, &st));
        assert_monotone(&log, st.iters_run, +1);
        double last = log.obj[log.calls - 1];
        ck_assert_msg(last > 0 && isfinite(last), "similarity sum %g", last);
        /* reference: similarity of each point to its best unit centroid, one update later
         * at least as large; for cosine (unit points) also obj = 2n - 2 * similarity sum */
        double best_sum = 0;
        for (size_t i = 0; i < n; i++) {
            double nx = metric == QV_METRIC_COSINE ? sqrt(ref_dot(x + i * dim, x + i * dim, dim)) : 1.0, best = -INFINITY;
            for (size_t c = 0; c < k; c++) {
                double d = ref_dot(x + i * dim, cent + c * dim, dim) / nx;
                if (d > best) best = d;
            }
            best_sum += best;
        }
        ck_assert_msg(best_sum >= last * (1 - 1e-5), "gpu %d: final centroids %.9g, last iteration %.9g", gpu, best_sum, last);
        if (metric == QV_METRIC_COSINE) {
            ck_assert_msg(last <= (double)n * (1 + 1e-6), "cosine similarity sum %g over %zu points", last, n);
            ck_assert_double_eq_tol(st.objective, 2.0 * (double)n - 2.0 * last, 1e-3 * (double)n);
        }
    }
    free(x);
    free(cent);
}
END_TEST

/* Without a device AUTO is the CPU run bit for bit and REQUIRE is QV_ENODEV; with one both
 * run on it and agree with the CPU run. */
START_TEST(test_gpu_modes)
{
    size_t n = 5000, dim = 12, k = 16;
    float *x = random_vectors(n, dim, 1004);
    float *a = malloc(k * dim * sizeof *a), *b = malloc(k * dim * sizeof *b);
    qv_kmeans_params p;
    qv_kmeans_stats sa, sb;
    iter_log la, lb;
    memset(&la, 0, sizeof la);
    memset(&lb, 0, sizeof lb);
    qv_kmeans_params_init(&p, (uint32_t)k);
    p.iters = 8;
    p.max_points = 3000;                                /* the sample is drawn the same way */
    p.on_iteration = on_iter;
    p.on_iteration_arg = &la;
    QV_CK(qv_kmeans_run(&p, n, dim, x, a, &sa));
    ck_assert_int_eq(sa.used_gpu, 0);
    p.gpu = QV_GPU_AUTO;
    p.on_iteration_arg = &lb;
    QV_CK(qv_kmeans_run(&p, n, dim, x, b, &sb));
    if (!qv_gpu_probe()) {
        ck_assert_int_eq(sb.used_gpu, 0);
        ck_assert_msg(memcmp(a, b, k * dim * sizeof *a) == 0, "AUTO without a GPU differs from OFF");
        ck_assert(sa.objective == sb.objective && sa.iters_run == sb.iters_run);
        ck_assert(la.calls == lb.calls && memcmp(la.obj, lb.obj, sizeof la.obj) == 0);
        p.gpu = QV_GPU_REQUIRE;
        QV_CK_FAIL(qv_kmeans_run(&p, n, dim, x, b, &sb), QV_ENODEV);
        ck_assert_msg(strstr(qv_last_error(), "QV_GPU_REQUIRE") != NULL, "message: %s", qv_last_error());
    } else {
        ck_assert_int_eq(sb.used_gpu, 1);
        ck_assert_uint_eq(lb.calls, 8);
        /* same seeds, same Lloyd steps: objectives agree closely */
        ck_assert_msg(fabs(sa.objective - sb.objective) <= 0.02 * sa.objective, "CPU %g GPU %g", sa.objective,
                      sb.objective);
        /* the objective is over the 3000-point sample: per point, as on all the points */
        double per_point = ref_objective(x, n, dim, b, k) / (double)n;
        ck_assert_msg(per_point <= 1.1 * sb.objective / 3000.0, "per point %g on all, %g on the sample", per_point,
                      sb.objective / 3000.0);
        p.gpu = QV_GPU_REQUIRE;
        memset(&lb, 0, sizeof lb);
        QV_CK(qv_kmeans_run(&p, n, dim, x, a, &sa));
        ck_assert_int_eq(sa.used_gpu, 1);
        ck_assert_msg(memcmp(a, b, k * dim * sizeof *a) == 0, "GPU k-means is not deterministic");
    }
    free(x);
    free(a);
    free(b);
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
    tcase_add_loop_test(tc, test_on_iteration_l2, QV_GPU_OFF, QV_GPU_AUTO + 1);
    tcase_add_loop_test(tc, test_on_iteration_spherical, 0, 2);
    tcase_add_test(tc, test_gpu_modes);
    suite_add_tcase(s, tc);
    return s;
}
