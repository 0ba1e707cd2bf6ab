/*
 * tests/check_gpu.c -- suite "gpu": the GPU part behind gpu/gpu.h.
 *
 * Two halves. The first always runs: without a usable device (no nvcc at build time,
 * no driver, QV_GPU=off) every call answers QV_ENODEV with a message, handles come back
 * NULL, and nothing crashes -- this is what index/ relies on to fall back to the CPU.
 * The second needs a device and prints "gpu: no device (...): skipped" otherwise: exact
 * search against a double-precision brute force (distances within 1e-4 relative, ids
 * equal except where the two candidates' true distances tie within rounding), with
 * small forced tiles so that the merge across tiles and query batches is exercised,
 * k up to 1024, l2 and ip, host-streamed databases, updates, duplicate vectors (ties go
 * to the smaller row), k-means (deterministic, objective not worse than the start) and
 * IVF (nprobe = nlist equals exact search). The device half also runs on the CPU
 * emulation (make -f gpu/gpu-check.mk emu) on machines without a GPU.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu.h"
#include "test_util.h"

extern Suite *qv_gpu_suite(void);   /* "extern": the Makefile lists definitions only */

static int have_device(const char *test)
{
    if (qv_gpu_probe()) return 1;
    qv_gpu_require();
    test_skip(TEST_SKIP_OPTIONAL, "gpu: no device (%s): %s", qv_last_error(), test);
    return 0;
}

/* ---- always: the no-device contract ------------------------------------------------ */

START_TEST(test_probe_consistent)
{
    char name[256];
    ck_assert_int_eq(qv_gpu_available(), qv_gpu_probe());
    if (qv_gpu_probe()) {
        QV_CK(qv_gpu_require());
        QV_CK(qv_gpu_device_name(name, sizeof name));
        ck_assert_msg(name[0] != '\0', "empty device name");
    } else {
        QV_CK_FAIL(qv_gpu_require(), QV_ENODEV);
        ck_assert_msg(qv_last_error()[0] != '\0', "QV_ENODEV without a message");
        strcpy(name, "junk");
        QV_CK_FAIL(qv_gpu_device_name(name, sizeof name), QV_ENODEV);
        ck_assert_str_eq(name, "");
    }
}
END_TEST

/* With QV_GPU=off (or no device) every entry point answers QV_ENODEV and sets handles
 * to NULL: the contract index/ falls back on. */
START_TEST(test_off_answers_enodev)
{
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7}, d[2], c[4] = {0, 1, 2, 3};
    int64_t r[2];
    uint64_t off[3] = {0, 1, 2};
    double obj = 0.0;
    qv_gpu_flat *g = (qv_gpu_flat *)&obj;
    qv_gpu_ivf *iv = (qv_gpu_ivf *)&obj;
    qv_gpu_kmeans_params kp;
    setenv("QV_GPU", "off", 1);
    ck_assert_int_eq(qv_gpu_probe(), 0);
    ck_assert_int_eq(qv_gpu_available(), 0);
    QV_CK_FAIL(qv_gpu_require(), QV_ENODEV);
    QV_CK_FAIL(qv_gpu_flat_new(2, QV_METRIC_L2, NULL, &g), QV_ENODEV);
    ck_assert_ptr_null(g);
    g = (qv_gpu_flat *)&obj;
    QV_CK_FAIL(qv_gpu_flat_new_host(2, QV_METRIC_IP, NULL, x, 4, &g), QV_ENODEV);
    ck_assert_ptr_null(g);
    QV_CK_FAIL(qv_gpu_ivf_new(2, QV_METRIC_L2, 2, c, NULL, &iv), QV_ENODEV);
    ck_assert_ptr_null(iv);
    qv_gpu_kmeans_params_init(&kp, QV_METRIC_L2);
    QV_CK_FAIL(qv_gpu_kmeans(&kp, 4, 2, x, 2, c, &obj), QV_ENODEV);
    ck_assert_msg(isnan(obj), "objective should be NaN on failure");
    ck_assert_msg(qv_last_error()[0] != '\0', "QV_ENODEV without a message");
    /* NULL handles are harmless everywhere. */
    qv_gpu_flat_free(NULL);
    qv_gpu_ivf_free(NULL);
    ck_assert_uint_eq(qv_gpu_flat_size(NULL), 0);
    ck_assert_uint_eq(qv_gpu_flat_memory(NULL), 0);
    ck_assert_int_ne(qv_gpu_flat_knn(NULL, 1, x, 1, d, r), QV_OK);
    ck_assert_int_ne(qv_gpu_ivf_set_lists(NULL, off, x), QV_OK);
    ck_assert_int_ne(qv_gpu_ivf_search(NULL, 1, x, 1, 1, d, r), QV_OK);
    unsetenv("QV_GPU");
}
END_TEST

START_TEST(test_options_defaults)
{
    qv_gpu_options o;
    qv_gpu_kmeans_params kp;
    unsetenv("QV_GPU_MATH");
    memset(&o, 0x5A, sizeof o);
    qv_gpu_options_init(&o);
    ck_assert_int_eq(o.math, QV_GPU_MATH_FP32);
    ck_assert_uint_eq(o.max_device_bytes, 0);
    ck_assert_uint_eq(o.tile_rows, 0);
    ck_assert_uint_eq(o.query_batch, 0);
    qv_gpu_kmeans_params_init(&kp, QV_METRIC_COSINE);
    ck_assert_int_eq(kp.metric, QV_METRIC_COSINE);
    ck_assert_uint_eq(kp.iters, 20);
    ck_assert_ptr_null(kp.progress);
}
END_TEST

/* ---- with a device ------------------------------------------------------------------ */

static double ref_dist(qv_metric m, const float *a, const float *b, size_t dim)
{
    return m == QV_METRIC_L2 ? ref_l2sq(a, b, dim) : -ref_dot(a, b, dim);
}

/* Compare GPU results with the double-precision brute force: same distances (relative
 * 1e-4 of the distance scale), same rows except near-ties. */
static void check_knn(const float *x, size_t n, size_t dim, qv_metric m, const float *q, size_t nq,
                      size_t k, const float *dist, const int64_t *rows, const char *what)
{
    uint64_t *ref = malloc(nq * k * sizeof *ref);
    ck_assert_ptr_nonnull(ref);
    size_t kk = k < n ? k : n;
    ref_knn(x, n, dim, q, nq, kk, m, ref);
    for (size_t i = 0; i < nq; i++) {
        const float *qi = q + i * dim;
        double scale = 1.0;
        for (size_t j = 0; j < kk; j++) {
            double r = fabs(ref_dist(m, qi, x + ref[i * kk + j] * dim, dim));
            if (r > scale) scale = r;
        }
        for (size_t j = 0; j < k; j++) {
            int64_t got = rows[i * k + j];
            if (j >= kk) {
                ck_assert_msg(got == -1 && isinf(dist[i * k + j]), "%s: q%zu pos %zu should be empty",
                              what, i, j);
                continue;
            }
            ck_assert_msg(got >= 0 && (size_t)got < n, "%s: q%zu pos %zu row %lld out of range",
                          what, i, j, (long long)got);
            double want = ref_dist(m, qi, x + ref[i * kk + j] * dim, dim);
            double have = ref_dist(m, qi, x + (size_t)got * dim, dim);
            ck_assert_msg(fabs(dist[i * k + j] - want) <= 1e-4 * scale,
                          "%s: q%zu pos %zu distance %g, want %g", what, i, j, dist[i * k + j], want);
            if ((uint64_t)got != ref[i * kk + j])
                ck_assert_msg(fabs(have - want) <= 1e-5 * scale,
                              "%s: q%zu pos %zu row %lld (d %g), want %llu (d %g)", what, i, j,
                              (long long)got, have, (unsigned long long)ref[i * kk + j], want);
            if (j > 0)
                ck_assert_msg(dist[i * k + j] >= dist[i * k + j - 1], "%s: q%zu not sorted", what, i);
        }
        for (size_t a = 0; a < kk; a++)
            for (size_t b = a + 1; b < kk; b++)
                ck_assert_msg(rows[i * k + a] != rows[i * k + b], "%s: q%zu repeats a row", what, i);
    }
    free(ref);
}

static void run_flat(size_t n, size_t dim, size_t nq, size_t k, qv_metric m, size_t tile,
                     size_t qbatch, int host_mode, uint64_t seed)
{
    float *x = random_vectors(n, dim, seed), *q = random_vectors(nq, dim, seed + 1);
    float *dist = malloc(nq * k * sizeof *dist);
    int64_t *rows = malloc(nq * k * sizeof *rows);
    qv_gpu_options o;
    qv_gpu_flat *g = NULL;
    char what[160];
    ck_assert_ptr_nonnull(dist);
    ck_assert_ptr_nonnull(rows);
    qv_gpu_options_init(&o);
    o.math = QV_GPU_MATH_FP32;
    o.tile_rows = tile;
    o.query_batch = qbatch;
    if (host_mode) QV_CK(qv_gpu_flat_new_host(dim, m, &o, x, n, &g));
    else {
        QV_CK(qv_gpu_flat_new(dim, m, &o, &g));
        QV_CK(qv_gpu_flat_add(g, n / 2, x));                /* two adds: growth path */
        QV_CK(qv_gpu_flat_add(g, n - n / 2, x + (n / 2) * dim));
    }
    ck_assert_uint_eq(qv_gpu_flat_size(g), n);
    QV_CK(qv_gpu_flat_knn(g, nq, q, k, dist, rows));
    snprintf(what, sizeof what, "flat n=%zu dim=%zu k=%zu %s tile=%zu batch=%zu%s", n, dim, k,
             m == QV_METRIC_L2 ? "l2" : "ip", tile, qbatch, host_mode ? " host" : "");
    check_knn(x, n, dim, m, q, nq, k, dist, rows, what);
    qv_gpu_flat_free(g);
    free(x);
    free(q);
    free(dist);
    free(rows);
}

START_TEST(test_flat_matches_reference)
{
    if (!have_device("flat vs reference")) return;
    run_flat(1000, 16, 9, 10, QV_METRIC_L2, 0, 0, 0, 11);
    run_flat(1000, 16, 9, 10, QV_METRIC_IP, 0, 0, 0, 12);
    run_flat(777, 33, 13, 1, QV_METRIC_L2, 100, 4, 0, 13);      /* argmin path, tails */
    run_flat(777, 33, 13, 7, QV_METRIC_L2, 100, 4, 0, 14);      /* merges across tiles */
    run_flat(700, 8, 5, 100, QV_METRIC_IP, 64, 2, 0, 15);       /* tile shorter than k */
    run_flat(50, 4, 3, 64, QV_METRIC_L2, 0, 0, 0, 16);          /* n < k: -1 padding */
    run_flat(900, 12, 6, 10, QV_METRIC_L2, 128, 5, 1, 17);      /* host-streamed */
    run_flat(20000, 8, 4, 10, QV_METRIC_L2, 0, 0, 0, 18);       /* long rows: merges in a row */
    run_flat(20000, 8, 2, 300, QV_METRIC_L2, 0, 0, 0, 19);      /* the same, k > 128 */
}
END_TEST

START_TEST(test_flat_k1024)
{
    if (!have_device("flat k=1024")) return;
    run_flat(sanitized() ? 1300 : 2600, 8, 3, 1024, QV_METRIC_L2, 1000, 0, 0, 21);
}
END_TEST

/* Many identical vectors: every distance ties, so the rows must be 0..k-1 in order. */
START_TEST(test_flat_ties_smaller_row)
{
    if (!have_device("flat ties")) return;
    const size_t n = 500, dim = 4, k = 20;
    float *x = calloc(n * dim, sizeof *x), q[4] = {1, 2, 3, 4}, dist[20];
    int64_t rows[20];
    qv_gpu_options o;
    qv_gpu_flat *g = NULL;
    for (size_t i = 0; i < n * dim; i++) x[i] = 0.5f;
    qv_gpu_options_init(&o);
    o.tile_rows = 64;
    QV_CK(qv_gpu_flat_new(dim, QV_METRIC_L2, &o, &g));
    QV_CK(qv_gpu_flat_add(g, n, x));
    QV_CK(qv_gpu_flat_knn(g, 1, q, k, dist, rows));
    for (size_t j = 0; j < k; j++) {
        ck_assert_int_eq(rows[j], (int64_t)j);
        ck_assert_float_eq_tol(dist[j], 0.25f + 2.25f + 6.25f + 12.25f, 1e-4);
    }
    qv_gpu_flat_free(g);
    free(x);
}
END_TEST

START_TEST(test_flat_update_truncate)
{
    if (!have_device("flat set/truncate")) return;
    const size_t n = 300, dim = 8, nq = 4, k = 5;
    float *x = random_vectors(n, dim, 31), *q = random_vectors(nq, dim, 32), dist[20];
    int64_t rows[20];
    qv_gpu_flat *g = NULL;
    QV_CK(qv_gpu_flat_new(dim, QV_METRIC_L2, NULL, &g));
    QV_CK(qv_gpu_flat_add(g, n, x));
    /* Swap-remove row 7: the last row moves into it, then the size shrinks. */
    memcpy(x + 7 * dim, x + (n - 1) * dim, dim * sizeof *x);
    QV_CK(qv_gpu_flat_set(g, 7, 1, x + 7 * dim));
    QV_CK(qv_gpu_flat_truncate(g, n - 1));
    ck_assert_uint_eq(qv_gpu_flat_size(g), n - 1);
    QV_CK(qv_gpu_flat_knn(g, nq, q, k, dist, rows));
    check_knn(x, n - 1, dim, QV_METRIC_L2, q, nq, k, dist, rows, "after set+truncate");
    QV_CK_FAIL(qv_gpu_flat_set(g, n - 1, 1, x), QV_EINVAL);
    QV_CK_FAIL(qv_gpu_flat_truncate(g, n), QV_EINVAL);
    QV_CK_FAIL(qv_gpu_flat_knn(g, nq, q, 0, dist, rows), QV_EINVAL);
    QV_CK_FAIL(qv_gpu_flat_knn(g, nq, q, QV_MAX_K + 1, dist, rows), QV_EINVAL);
    QV_CK(qv_gpu_flat_truncate(g, 0));
    QV_CK(qv_gpu_flat_knn(g, 1, q, 3, dist, rows));
    ck_assert_int_eq(rows[0], -1);
    qv_gpu_flat_free(g);
    free(x);
    free(q);
}
END_TEST

START_TEST(test_flat_bad_args)
{
    if (!have_device("flat arguments")) return;
    qv_gpu_flat *g = (qv_gpu_flat *)&g;
    QV_CK_FAIL(qv_gpu_flat_new(0, QV_METRIC_L2, NULL, &g), QV_EINVAL);
    ck_assert_ptr_null(g);
    QV_CK_FAIL(qv_gpu_flat_new(4, (qv_metric)77, NULL, &g), QV_EINVAL);
    float x[4] = {0};
    QV_CK(qv_gpu_flat_new_host(4, QV_METRIC_L2, NULL, x, 1, &g));
    QV_CK_FAIL(qv_gpu_flat_add(g, 1, x), QV_EINVAL);              /* host mode is read-only */
    qv_gpu_flat_free(g);
}
END_TEST

/* Reduced-precision modes: approximate, so only recall is checked. */
START_TEST(test_flat_tf32_fp16_recall)
{
    if (!have_device("tf32/fp16 recall")) return;
    const size_t n = 2000, dim = 32, nq = 20, k = 10;
    float *x = random_vectors(n, dim, 41), *q = random_vectors(nq, dim, 42);
    float dist[200];
    int64_t rows[200];
    uint64_t *ref = malloc(nq * k * sizeof *ref), got[200];
    size_t n_got[20];
    ref_knn(x, n, dim, q, nq, k, QV_METRIC_L2, ref);
    for (int mode = QV_GPU_MATH_TF32; mode <= QV_GPU_MATH_FP16; mode++) {
        qv_gpu_options o;
        qv_gpu_flat *g = NULL;
        qv_gpu_options_init(&o);
        o.math = (qv_gpu_math)mode;
        QV_CK(qv_gpu_flat_new(dim, QV_METRIC_L2, &o, &g));
        QV_CK(qv_gpu_flat_add(g, n, x));
        QV_CK(qv_gpu_flat_knn(g, nq, q, k, dist, rows));
        for (size_t i = 0; i < nq * k; i++) got[i] = (uint64_t)rows[i];
        for (size_t i = 0; i < nq; i++) n_got[i] = k;
        double rec = recall_at_k(got, n_got, k, ref, k, nq, k);
        ck_assert_msg(rec >= 0.9, "math mode %d: recall@10 %.3f < 0.9", mode, rec);
        qv_gpu_flat_free(g);
    }
    free(ref);
    free(x);
    free(q);
}
END_TEST

/* Points around 6 well separated centres; k-means from poor starting centroids. */
START_TEST(test_kmeans)
{
    if (!have_device("k-means")) return;
    const size_t n = 1200, dim = 8, k = 6;
    float *x = random_vectors(n, dim, 51), c0[48], c1[48], c2[48];
    double obj1 = 0, obj2 = 0, obj0 = 0;
    for (size_t i = 0; i < n; i++) {
        x[i * dim + i % dim] += 10.0f * (float)(1 + i % k);      /* centre of cluster i % k */
        x[i * dim + (i + 1) % dim] *= 0.1f;
    }
    for (size_t c = 0; c < k; c++) memcpy(c0 + c * dim, x + c * 7 * dim, dim * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        double best = INFINITY;
        for (size_t c = 0; c < k; c++) {
            double d = ref_l2sq(x + i * dim, c0 + c * dim, dim);
            if (d < best) best = d;
        }
        obj0 += best;
    }
    qv_gpu_kmeans_params p;
    qv_gpu_kmeans_params_init(&p, QV_METRIC_L2);
    p.iters = 10;
    p.opt.tile_rows = 4;                         /* centroids span two tiles */
    memcpy(c1, c0, sizeof c0);
    memcpy(c2, c0, sizeof c0);
    QV_CK(qv_gpu_kmeans(&p, n, dim, x, k, c1, &obj1));
    QV_CK(qv_gpu_kmeans(&p, n, dim, x, k, c2, &obj2));
    ck_assert_msg(memcmp(c1, c2, sizeof c1) == 0, "k-means is not deterministic");
    ck_assert_msg(obj1 == obj2, "objectives differ: %g %g", obj1, obj2);
    ck_assert_msg(obj1 <= obj0 * 1.0001, "objective %g worse than the start %g", obj1, obj0);
    /* A centroid far from everything is empty after the first assignment: repaired. */
    memcpy(c1, c0, sizeof c0);
    for (size_t j = 0; j < dim; j++) c1[5 * dim + j] = 1e4f;
    QV_CK(qv_gpu_kmeans(&p, n, dim, x, k, c1, &obj1));
    ck_assert_msg(c1[5 * dim] < 1e3f, "empty cluster was not repaired");
    QV_CK_FAIL(qv_gpu_kmeans(&p, n, dim, x, n + 1, c1, NULL), QV_EINVAL);
    free(x);
}
END_TEST

START_TEST(test_kmeans_spherical)
{
    if (!have_device("spherical k-means")) return;
    const size_t n = 600, dim = 6, k = 4;
    float *x = random_vectors(n, dim, 61), c[24];
    double obj = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < dim; j++) s += (double)x[i * dim + j] * x[i * dim + j];
        for (size_t j = 0; j < dim; j++) x[i * dim + j] /= (float)sqrt(s);
    }
    memcpy(c, x, sizeof c);
    qv_gpu_kmeans_params p;
    qv_gpu_kmeans_params_init(&p, QV_METRIC_COSINE);
    p.iters = 5;
    QV_CK(qv_gpu_kmeans(&p, n, dim, x, k, c, &obj));
    for (size_t i = 0; i < k; i++) {
        double s = 0;
        for (size_t j = 0; j < dim; j++) s += (double)c[i * dim + j] * c[i * dim + j];
        ck_assert_double_eq_tol(s, 1.0, 1e-4);
    }
    ck_assert_msg(obj >= 0 && obj < (double)n, "objective %g", obj);
    free(x);
}
END_TEST

/* IVF: lists from a nearest-centroid assignment. nprobe = nlist must equal exact search;
 * the coarse probe must match the brute force over centroids. */
START_TEST(test_ivf)
{
    if (!have_device("IVF")) return;
    const size_t n = 1500, dim = 16, nlist = 12, nq = 7, k = 10;
    float *x = random_vectors(n, dim, 71), *q = random_vectors(nq, dim, 72);
    float *cent = random_vectors(nlist, dim, 73), *sorted = malloc(n * dim * sizeof(float));
    size_t *assign = malloc(n * sizeof *assign);
    uint64_t off[13] = {0}, *pos = calloc(nlist, sizeof *pos);
    float dist[70 * 2];
    int64_t rows[70 * 2];
    qv_gpu_ivf *g = NULL;
    for (size_t i = 0; i < n; i++) {
        double best = INFINITY;
        for (size_t c = 0; c < nlist; c++) {
            double d = ref_l2sq(x + i * dim, cent + c * dim, dim);
            if (d < best) { best = d; assign[i] = c; }
        }
        off[assign[i] + 1]++;
    }
    for (size_t c = 0; c < nlist; c++) off[c + 1] += off[c];
    for (size_t i = 0; i < n; i++) {
        size_t c = assign[i];
        memcpy(sorted + (off[c] + pos[c]++) * dim, x + i * dim, dim * sizeof(float));
    }
    for (int mi = 0; mi < 2; mi++) {
        qv_metric m = mi ? QV_METRIC_IP : QV_METRIC_L2;
        QV_CK(qv_gpu_ivf_new(dim, m, nlist, cent, NULL, &g));
        QV_CK(qv_gpu_ivf_search(g, nq, q, 3, k, dist, rows));   /* empty lists so far */
        ck_assert_int_eq(rows[0], -1);
        QV_CK(qv_gpu_ivf_set_lists(g, off, sorted));
        QV_CK(qv_gpu_ivf_search(g, nq, q, nlist, k, dist, rows));
        check_knn(sorted, n, dim, m, q, nq, k, dist, rows, mi ? "ivf ip all lists" : "ivf l2 all lists");
        QV_CK(qv_gpu_ivf_probe(g, nq, q, 4, dist, rows));
        check_knn(cent, nlist, dim, m, q, nq, 4, dist, rows, "ivf probe");
        /* nprobe = 2: every result lies in one of the two probed lists. */
        QV_CK(qv_gpu_ivf_search(g, nq, q, 2, k, dist + 70, rows + 70));
        for (size_t i = 0; i < nq; i++)
            for (size_t j = 0; j < k; j++) {
                int64_t r = rows[70 + i * k + j];
                if (r < 0) continue;
                int ok = 0;
                for (size_t p = 0; p < 2; p++) {
                    int64_t l = rows[i * 4 + p];
                    ok |= (uint64_t)r >= off[l] && (uint64_t)r < off[l + 1];
                }
                ck_assert_msg(ok, "ivf nprobe=2: row %lld not in a probed list", (long long)r);
            }
        QV_CK_FAIL(qv_gpu_ivf_search(g, nq, q, nlist + 1, k, dist, rows), QV_EINVAL);
        qv_gpu_ivf_free(g);
        g = NULL;
    }
    free(x);
    free(q);
    free(cent);
    free(sorted);
    free(assign);
    free(pos);
}
END_TEST

Suite *qv_gpu_suite(void)
{
    Suite *s = suite_create("gpu");
    TCase *tc = tcase_create("no_device_contract");
    tcase_add_test(tc, test_probe_consistent);
    tcase_add_test(tc, test_off_answers_enodev);
    tcase_add_test(tc, test_options_defaults);
    suite_add_tcase(s, tc);
    tc = tcase_create("device");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_flat_matches_reference);
    tcase_add_test(tc, test_flat_k1024);
    tcase_add_test(tc, test_flat_ties_smaller_row);
    tcase_add_test(tc, test_flat_update_truncate);
    tcase_add_test(tc, test_flat_bad_args);
    tcase_add_test(tc, test_flat_tf32_fp16_recall);
    tcase_add_test(tc, test_kmeans);
    tcase_add_test(tc, test_kmeans_spherical);
    tcase_add_test(tc, test_ivf);
    suite_add_tcase(s, tc);
    return s;
}
