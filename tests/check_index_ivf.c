/*
 * tests/check_index_ivf.c -- the IVF-Flat index through the public qv_index_* API:
 * state errors before training, exact results with nprobe = nlist (single and both batch
 * strategies, all metrics) against the double-precision reference, recall on siftsmall,
 * filters (bitset and predicate, with the probe extension for selective ones), remove and
 * replace, all-or-nothing add under allocation failures, save/load round trips and
 * corrupt files, and a concurrency smoke test (suite "concurrency" for the TSan run).
 * GPU modes: without a usable device AUTO answers exactly as OFF and REQUIRE is
 * QV_ENODEV; with one (a real GPU, or the CUDA emulation) the GPU batch path is checked
 * against single-query searches of the same index after adds, removes, replaces and a
 * retrain (the device copy must follow), with filters (CPU path) and short lists (the
 * probe extension); the same assertions run without a device and then check the CPU path.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "index/ivf.h"
#include "tests/test_util.h"

static qv_index *make_ivf(uint32_t dim, qv_metric metric, uint32_t nlist, const float *train, size_t ntrain)
{
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_IVF, dim, metric);
    p.nlist = nlist;
    p.kmeans_iters = 10;
    QV_CK(qv_index_new(&p, &ix));
    if (train) QV_CK(qv_index_train(ix, ntrain, train));
    return ix;
}

static qv_index *make_ivf_gpu(uint32_t dim, qv_metric metric, uint32_t nlist, const float *train, size_t ntrain,
                              qv_gpu_mode gpu)
{
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_IVF, dim, metric);
    p.nlist = nlist;
    p.kmeans_iters = 10;
    p.gpu = gpu;
    QV_CK(qv_index_new(&p, &ix));
    if (train) QV_CK(qv_index_train(ix, ntrain, train));
    return ix;
}

static uint64_t *seq_ids(size_t n, uint64_t first)
{
    uint64_t *ids = malloc(n * sizeof *ids + 1);
    for (size_t i = 0; i < n; i++) ids[i] = first + i;
    return ids;
}

/* Search nq queries one by one; out_ids nq*k (UINT64_MAX padded), n_out nq. */
static void search_each(const qv_index *ix, const float *q, size_t nq, uint32_t dim, const qv_search_params *sp,
                        uint64_t *out_ids, float *out_scores, size_t *n_out)
{
    qv_hit *hits = malloc(sp->k * sizeof *hits);
    for (size_t i = 0; i < nq; i++) {
        QV_CK(qv_index_search(ix, q + i * dim, sp, hits, &n_out[i]));
        for (size_t j = 0; j < sp->k; j++) {
            out_ids[i * sp->k + j] = j < n_out[i] ? hits[j].id : UINT64_MAX;
            if (out_scores) out_scores[i * sp->k + j] = j < n_out[i] ? hits[j].score : NAN;
        }
    }
    free(hits);
}

START_TEST(test_untrained_state)
{
    uint32_t dim = 8;
    float *x = random_vectors(10, dim, 1);
    uint64_t ids[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    qv_hit hits[3];
    size_t nh = 7, nhb[2];
    qv_hit bh[6];
    qv_search_params sp;
    qv_search_params_init(&sp, 3);
    ck_assert_int_eq(qv_ivf_ops.kind, QV_INDEX_IVF);
    qv_index *ix = make_ivf(dim, QV_METRIC_L2, 4, NULL, 0);
    QV_CK_FAIL(qv_index_add(ix, 10, ids, x), QV_ESTATE);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "qv_index_train"));
    QV_CK_FAIL(qv_index_search(ix, x, &sp, hits, &nh), QV_ESTATE);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "not trained"));
    ck_assert_uint_eq(nh, 0);
    QV_CK_FAIL(qv_index_search_batch(ix, 2, x, &sp, bh, nhb), QV_ESTATE);
    size_t removed = 9;
    QV_CK(qv_index_remove(ix, 3, ids, &removed));
    ck_assert_uint_eq(removed, 0);
    ck_assert_uint_eq(qv_index_size(ix), 0);
    /* too few training vectors for nlist */
    QV_CK_FAIL(qv_index_train(ix, 3, x), QV_EINVAL);
    QV_CK(qv_index_train(ix, 10, x));
    QV_CK(qv_index_add(ix, 10, ids, x));
    /* retraining a non-empty index is refused */
    QV_CK_FAIL(qv_index_train(ix, 10, x), QV_ESTATE);
    qv_index_free(ix);
    free(x);
}
END_TEST

START_TEST(test_auto_nlist)
{
    uint32_t dim = 4;
    float *x = random_vectors(400, dim, 2);
    qv_index *ix = make_ivf(dim, QV_METRIC_L2, 0, x, 400);
    qv_index_params got;
    qv_index_get_params(ix, &got);
    ck_assert_uint_eq(got.nlist, 80);                   /* 4 * sqrt(400) */
    qv_index_free(ix);
    /* a training sample smaller than nlist is refused, not silently raised */
    qv_index_params p;
    qv_index_params_init(&p, QV_INDEX_IVF, dim, QV_METRIC_L2);
    p.nlist = 10;
    p.max_train_points = 5;
    QV_CK(qv_index_new(&p, &ix));
    QV_CK_FAIL(qv_index_train(ix, 400, x), QV_EINVAL);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "max_train_points"));
    qv_index_free(ix);
    free(x);
}
END_TEST

/* nprobe = nlist scans everything: ids equal the exact reference, for every metric and
 * every batch strategy. _i = metric (1..3). */
START_TEST(test_exact_when_probing_all)
{
    qv_metric metric = (qv_metric)_i;
    uint32_t dim = 24, nlist = 16, k = 10;
    size_t n = sanitized() ? 600 : 2000, nq = 25;
    float *x = random_vectors(n, dim, 10 + _i), *q = random_vectors(nq, dim, 20 + _i);
    uint64_t *ids = seq_ids(n, 0), *truth = malloc(nq * k * sizeof *truth), *got = malloc(nq * k * sizeof *got);
    float *scores = malloc(nq * k * sizeof *scores);
    size_t *ng = malloc(nq * sizeof *ng);
    qv_hit *bh = malloc(nq * k * sizeof *bh);
    qv_index *ix = make_ivf(dim, metric, nlist, x, n);
    QV_CK(qv_index_add(ix, n, ids, x));
    ck_assert_uint_eq(qv_index_size(ix), n);
    ref_knn(x, n, dim, q, nq, k, metric, truth);

    qv_search_params sp;
    qv_search_params_init(&sp, k);
    sp.nprobe = nlist;
    search_each(ix, q, nq, dim, &sp, got, scores, ng);
    for (size_t i = 0; i < nq; i++) {
        ck_assert_uint_eq(ng[i], k);
        for (size_t j = 0; j < k; j++) {
            ck_assert_msg(got[i * k + j] == truth[i * k + j], "metric %s query %zu rank %zu: got %llu want %llu",
                          qv_metric_name(metric), i, j, (unsigned long long)got[i * k + j],
                          (unsigned long long)truth[i * k + j]);
            const float *v = x + truth[i * k + j] * dim, *qq = q + i * dim;
            double want = metric == QV_METRIC_L2 ? ref_l2sq(qq, v, dim)
                        : metric == QV_METRIC_IP ? ref_dot(qq, v, dim) : ref_cosine(qq, v, dim);
            ck_assert_double_eq_tol(scores[i * k + j], want, 1e-4 * fmax(1.0, fabs(want)));
        }
    }
    for (int strategy = 1; strategy <= 2; strategy++) {
        qv_ivf_batch_strategy = strategy;
        QV_CK(qv_index_search_batch(ix, nq, q, &sp, bh, ng));
        qv_ivf_batch_strategy = 0;
        for (size_t i = 0; i < nq; i++) {
            ck_assert_uint_eq(ng[i], k);
            for (size_t j = 0; j < k; j++) {
                ck_assert_msg(bh[i * k + j].id == truth[i * k + j], "strategy %d metric %s query %zu rank %zu",
                              strategy, qv_metric_name(metric), i, j);
                ck_assert_float_eq_tol(bh[i * k + j].score, scores[i * k + j], 1e-5f * fmaxf(1.0f, fabsf(scores[i * k + j])));
            }
        }
    }
    qv_index_free(ix);
    free(x);
    free(q);
    free(ids);
    free(truth);
    free(got);
    free(scores);
    free(ng);
    free(bh);
}
END_TEST

/* Fewer vectors in the probed lists than k: probing extends until k are found. */
START_TEST(test_small_lists_still_give_k)
{
    uint32_t dim = 8, k = 50;
    size_t n = 200;
    float *x = random_vectors(n, dim, 40);
    uint64_t *ids = seq_ids(n, 1000);
    qv_hit hits[50];
    size_t nh;
    qv_index *ix = make_ivf(dim, QV_METRIC_L2, 40, x, n);
    QV_CK(qv_index_add(ix, n, ids, x));
    qv_search_params sp;
    qv_search_params_init(&sp, k);
    sp.nprobe = 1;
    QV_CK(qv_index_search(ix, x, &sp, hits, &nh));
    ck_assert_uint_eq(nh, k);
    ck_assert_uint_eq(hits[0].id, 1000);
    for (size_t j = 1; j < nh; j++) ck_assert(hits[j].score >= hits[j - 1].score);
    qv_index_free(ix);
    free(x);
    free(ids);
}
END_TEST

START_TEST(test_recall_siftsmall)
{
    char base[4096], query[4096], gt[4096];
    if (!data_path(base, sizeof base, "siftsmall", "base.fvecs") || !data_path(query, sizeof query, "siftsmall", "query.fvecs") ||
        !data_path(gt, sizeof gt, "siftsmall", "groundtruth.ivecs")) {
        test_skip(TEST_SKIP_MISSING, "ivf: siftsmall not found (%s): recall test", base);
        return;
    }
    float *x = NULL, *q = NULL;
    int32_t *g = NULL;
    size_t n, dim, nq, qdim, ngt, gdim;
    QV_CK(qv_read_vectors(base, &x, &n, &dim));
    QV_CK(qv_read_vectors(query, &q, &nq, &qdim));
    QV_CK(qv_read_ivecs(gt, &g, &ngt, &gdim));
    ck_assert_uint_eq(dim, qdim);
    if (sanitized()) nq = 20;
    uint32_t k = 10;
    uint64_t *ids = seq_ids(n, 0), *truth = malloc(nq * k * sizeof *truth);
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < k; j++) truth[i * k + j] = (uint64_t)g[i * gdim + j];
    qv_index *ix = make_ivf((uint32_t)dim, QV_METRIC_L2, 100, x, n);
    QV_CK(qv_index_add(ix, n, ids, x));
    qv_hit *bh = malloc(nq * k * sizeof *bh);
    uint64_t *got = malloc(nq * k * sizeof *got);
    size_t *ng = malloc(nq * sizeof *ng);
    qv_search_params sp;
    qv_search_params_init(&sp, k);
    sp.nprobe = 10;
    search_each(ix, q, nq, (uint32_t)dim, &sp, got, NULL, ng);
    double r_single = recall_at_k(got, ng, k, truth, k, nq, k);
    QV_CK(qv_index_search_batch(ix, nq, q, &sp, bh, ng));
    for (size_t i = 0; i < nq * k; i++) got[i] = bh[i].id;
    double r_batch = recall_at_k(got, ng, k, truth, k, nq, k);
    ck_assert_msg(r_single >= 0.9, "recall@10 with nprobe 10 of 100: %.3f", r_single);
    ck_assert_msg(fabs(r_batch - r_single) < 0.01, "batch recall %.3f vs single %.3f", r_batch, r_single);
    qv_index_free(ix);
    qv_free(x);
    qv_free(q);
    qv_free(g);
    free(ids);
    free(truth);
    free(bh);
    free(got);
    free(ng);
}
END_TEST

static int accept_mod3(uint64_t id, void *arg)
{
    (void)arg;
    return id % 3 == 0;
}

/* Reference over the rows that pass keep(row). */
static void ref_filtered(const float *x, size_t n, size_t dim, const float *q, size_t nq, size_t k, qv_metric m,
                         int (*keep)(size_t, const void *), const void *arg, uint64_t *out)
{
    float *sub = malloc(n * dim * sizeof *sub + 1);
    size_t *map = malloc(n * sizeof *map + 1), ns = 0;
    for (size_t i = 0; i < n; i++)
        if (keep(i, arg)) {
            memcpy(sub + ns * dim, x + i * dim, dim * sizeof *sub);
            map[ns++] = i;
        }
    ref_knn(sub, ns, dim, q, nq, k, m, out);
    for (size_t i = 0; i < nq * k; i++)
        if (out[i] != UINT64_MAX) out[i] = map[out[i]];
    free(sub);
    free(map);
}

static int keep_bits_and_mod3(size_t row, const void *arg)
{
    const uint64_t *bits = arg;
    return ((bits[row >> 6] >> (row & 63)) & 1) && row % 3 == 0;
}

static int keep_one_in_97(size_t row, const void *arg)
{
    (void)arg;
    return row % 97 == 5;
}

static int accept_one_in_97(uint64_t id, void *arg)
{
    (void)arg;
    return id % 97 == 5;
}

START_TEST(test_filters)
{
    uint32_t dim = 16, nlist = 20, k = 10;
    size_t n = 3000, nq = 12;
    float *x = random_vectors(n, dim, 50), *q = random_vectors(nq, dim, 51);
    uint64_t *ids = seq_ids(n, 0), *truth = malloc(nq * k * sizeof *truth), *got = malloc(nq * k * sizeof *got);
    size_t *ng = malloc(nq * sizeof *ng);
    qv_hit *bh = malloc(nq * k * sizeof *bh);
    uint64_t bits[(3000 + 63) / 64];
    memset(bits, 0, sizeof bits);
    for (size_t i = 0; i < n; i++)
        if ((i * 7919) % 5 < 2) bits[i >> 6] |= 1ull << (i & 63);
    qv_index *ix = make_ivf(dim, QV_METRIC_L2, nlist, x, n);
    QV_CK(qv_index_add(ix, n, ids, x));

    qv_search_params sp;
    qv_search_params_init(&sp, k);
    sp.nprobe = nlist;
    sp.allow_bits = bits;
    sp.allow_nbits = n;
    sp.accept = accept_mod3;
    ref_filtered(x, n, dim, q, nq, k, QV_METRIC_L2, keep_bits_and_mod3, bits, truth);
    search_each(ix, q, nq, dim, &sp, got, NULL, ng);
    for (size_t i = 0; i < nq * k; i++) ck_assert_uint_eq(got[i], truth[i]);
    for (int strategy = 1; strategy <= 2; strategy++) {
        qv_ivf_batch_strategy = strategy;
        QV_CK(qv_index_search_batch(ix, nq, q, &sp, bh, ng));
        qv_ivf_batch_strategy = 0;
        for (size_t i = 0; i < nq * k; i++) ck_assert_uint_eq(bh[i].id, truth[i]);
    }

    /* a selective filter with nprobe 1: the probe extends until k pass */
    sp.allow_bits = NULL;
    sp.allow_nbits = 0;
    sp.accept = accept_one_in_97;
    sp.nprobe = 1;
    search_each(ix, q, nq, dim, &sp, got, NULL, ng);
    for (size_t i = 0; i < nq; i++) {
        ck_assert_uint_eq(ng[i], k);
        for (size_t j = 0; j < k; j++) ck_assert_uint_eq(got[i * k + j] % 97, 5);
    }
    qv_ivf_batch_strategy = 2;
    QV_CK(qv_index_search_batch(ix, nq, q, &sp, bh, ng));
    qv_ivf_batch_strategy = 0;
    for (size_t i = 0; i < nq; i++) ck_assert_uint_eq(ng[i], k);
    /* probing everything under the selective filter is exact */
    sp.nprobe = nlist;
    ref_filtered(x, n, dim, q, nq, k, QV_METRIC_L2, keep_one_in_97, NULL, truth);
    search_each(ix, q, nq, dim, &sp, got, NULL, ng);
    for (size_t i = 0; i < nq * k; i++) ck_assert_uint_eq(got[i], truth[i]);
    /* max_visits bounds the extension */
    sp.nprobe = 1;
    sp.max_visits = 1;
    search_each(ix, q, nq, dim, &sp, got, NULL, ng);
    for (size_t i = 0; i < nq; i++) ck_assert_uint_lt(ng[i], k);
    qv_index_free(ix);
    free(x);
    free(q);
    free(ids);
    free(truth);
    free(got);
    free(ng);
    free(bh);
}
END_TEST

static int keep_odd(size_t row, const void *arg)
{
    (void)arg;
    return row & 1;
}

START_TEST(test_remove_and_replace)
{
    uint32_t dim = 12, nlist = 10, k = 8;
    size_t n = 1000, nq = 10;
    float *x = random_vectors(n, dim, 60), *q = random_vectors(nq, dim, 61);
    uint64_t *ids = seq_ids(n, 0), *truth = malloc(nq * k * sizeof *truth), *got = malloc(nq * k * sizeof *got);
    size_t *ng = malloc(nq * sizeof *ng);
    qv_index *ix = make_ivf(dim, QV_METRIC_L2, nlist, x, n);
    QV_CK(qv_index_add(ix, n, ids, x));
    size_t mem_before = qv_index_memory(ix);
    ck_assert_uint_gt(mem_before, n * dim * sizeof(float));

    /* remove the even ids (and some absent ones) */
    uint64_t *even = malloc((n / 2 + 3) * sizeof *even);
    size_t ne = 0, removed;
    for (size_t i = 0; i < n; i += 2) even[ne++] = i;
    even[ne++] = 5000;
    even[ne++] = 7001;
    QV_CK(qv_index_remove(ix, ne, even, &removed));
    ck_assert_uint_eq(removed, n / 2);
    ck_assert_uint_eq(qv_index_size(ix), n / 2);
    QV_CK(qv_index_remove(ix, ne, even, &removed));
    ck_assert_uint_eq(removed, 0);

    qv_search_params sp;
    qv_search_params_init(&sp, k);
    sp.nprobe = nlist;
    ref_filtered(x, n, dim, q, nq, k, QV_METRIC_L2, keep_odd, NULL, truth);
    search_each(ix, q, nq, dim, &sp, got, NULL, ng);
    for (size_t i = 0; i < nq * k; i++) ck_assert_uint_eq(got[i], truth[i]);

    /* replace: id 1 gets query 0's vector, so it must be query 0's best hit at distance 0 */
    uint64_t one = 1;
    qv_hit hits[8];
    size_t nh;
    QV_CK(qv_index_add(ix, 1, &one, q));
    ck_assert_uint_eq(qv_index_size(ix), n / 2);
    QV_CK(qv_index_search(ix, q, &sp, hits, &nh));
    ck_assert_uint_eq(hits[0].id, 1);
    ck_assert_float_eq_tol(hits[0].score, 0.0f, 1e-6f);
    /* re-adding the removed ids reuses their slots */
    QV_CK(qv_index_add(ix, n / 2, even, x));
    ck_assert_uint_eq(qv_index_size(ix), n);
    ck_assert_uint_le(qv_index_memory(ix), mem_before * 2);
    qv_index_free(ix);
    free(x);
    free(q);
    free(ids);
    free(truth);
    free(got);
    free(ng);
    free(even);
}
END_TEST

START_TEST(test_add_all_or_nothing)
{
    uint32_t dim = 8, nlist = 6;
    size_t n = 300;
    float *x = random_vectors(n, dim, 70);
    uint64_t *ids = seq_ids(n, 0);
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_IVF, dim, QV_METRIC_L2);
    p.nlist = nlist;
    p.threads = 1;
    QV_CK(qv_index_new(&p, &ix));
    QV_CK(qv_index_train(ix, n, x));
    QV_CK(qv_index_add(ix, 100, ids, x));
    int rc = QV_ENOMEM;
    long i = 0;
    for (; i < 500 && rc != QV_OK; i++) {
        qv_alloc_fail_after(i);
        rc = qv_index_add(ix, n - 50, ids + 50, x + 50 * dim);   /* 50 replaced, 150 new */
        qv_alloc_fail_after(-1);
        ck_assert_msg(rc == QV_OK || rc == QV_ENOMEM, "failure %ld: %s", i, qv_strerror(rc));
        if (rc != QV_OK) ck_assert_uint_eq(qv_index_size(ix), 100);
    }
    ck_assert_int_eq(rc, QV_OK);
    ck_assert_uint_eq(qv_index_size(ix), n);
    qv_hit hits[1];
    size_t nh;
    qv_search_params sp;
    qv_search_params_init(&sp, 1);
    sp.nprobe = nlist;
    for (size_t j = 0; j < n; j += 37) {
        QV_CK(qv_index_search(ix, x + j * dim, &sp, hits, &nh));
        ck_assert_uint_eq(hits[0].id, j);
    }
    qv_index_free(ix);
    free(x);
    free(ids);
}
END_TEST

/* Serialize, reload, compare searches. */
static void roundtrip_check(qv_index *ix, const float *q, size_t nq, uint32_t dim)
{
    void *buf = NULL;
    size_t len = 0;
    qv_index *back = NULL;
    uint32_t k = 5;
    uint64_t *a = malloc(nq * k * sizeof *a), *b = malloc(nq * k * sizeof *b);
    float *sa = malloc(nq * k * sizeof *sa), *sb = malloc(nq * k * sizeof *sb);
    size_t *na = malloc(nq * sizeof *na), *nb = malloc(nq * sizeof *nb);
    QV_CK(qv_index_save_mem(ix, &buf, &len));
    QV_CK(qv_index_load_mem(buf, len, "roundtrip", &back));
    ck_assert_uint_eq(qv_index_size(back), qv_index_size(ix));
    qv_index_params pa, pb;
    qv_index_get_params(ix, &pa);
    qv_index_get_params(back, &pb);
    ck_assert_uint_eq(pa.nlist, pb.nlist);
    qv_search_params sp;
    qv_search_params_init(&sp, k);
    sp.nprobe = 3;
    search_each(ix, q, nq, dim, &sp, a, sa, na);
    search_each(back, q, nq, dim, &sp, b, sb, nb);
    ck_assert_mem_eq(a, b, nq * k * sizeof *a);
    ck_assert_mem_eq(na, nb, nq * sizeof *na);
    for (size_t i = 0; i < nq * k; i++)
        if (!isnan(sa[i])) ck_assert_float_eq(sa[i], sb[i]);
    /* saving the loaded copy gives the same bytes */
    void *buf2 = NULL;
    size_t len2 = 0;
    QV_CK(qv_index_save_mem(back, &buf2, &len2));
    ck_assert_uint_eq(len, len2);
    ck_assert_mem_eq(buf, buf2, len);
    qv_index_free(back);
    qv_free(buf);
    qv_free(buf2);
    free(a);
    free(b);
    free(sa);
    free(sb);
    free(na);
    free(nb);
}

START_TEST(test_save_load_roundtrip)
{
    qv_metric metric = (qv_metric)_i;
    uint32_t dim = 10;
    size_t n = 500, nq = 8;
    float *x = random_vectors(n, dim, 80), *q = random_vectors(nq, dim, 81);
    uint64_t *ids = seq_ids(n, 1ull << 40);
    qv_index *ix = make_ivf(dim, metric, 12, x, n);
    QV_CK(qv_index_add(ix, n, ids, x));
    size_t removed;
    QV_CK(qv_index_remove(ix, 50, ids + 100, &removed));
    roundtrip_check(ix, q, nq, dim);

    /* through a file */
    char *dir = make_tmpdir("qv-ivf");
    char path[4200];
    snprintf(path, sizeof path, "%s/ix.qv", dir);
    QV_CK(qv_index_save(ix, path));
    qv_index *back = NULL;
    QV_CK(qv_index_load(path, &back));
    ck_assert_uint_eq(qv_index_size(back), n - 50);
    qv_index_free(back);
    rm_rf(dir);
    free(dir);

    /* untrained and trained-but-empty indexes round-trip too */
    qv_index *empty = make_ivf(dim, metric, 12, NULL, 0);
    void *buf = NULL;
    size_t len;
    QV_CK(qv_index_save_mem(empty, &buf, &len));
    QV_CK(qv_index_load_mem(buf, len, "empty", &back));
    qv_hit h[1];
    size_t nh;
    qv_search_params sp;
    qv_search_params_init(&sp, 1);
    QV_CK_FAIL(qv_index_search(back, q, &sp, h, &nh), QV_ESTATE);
    qv_index_free(back);
    qv_free(buf);
    QV_CK(qv_index_train(empty, n, x));
    roundtrip_check(empty, q, nq, dim);
    qv_index_free(empty);
    qv_index_free(ix);
    free(x);
    free(q);
    free(ids);
}
END_TEST

/* Rewrite the trailing CRC after editing the body, so the body validation is reached. */
static void fix_crc(uint8_t *buf, size_t len)
{
    uint32_t c = qv_crc32c(0, buf, len - 4);
    for (int i = 0; i < 4; i++) buf[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void expect_corrupt(const uint8_t *buf, size_t len, const char *what, const char *needle)
{
    qv_index *ix = (qv_index *)1;
    int rc = qv_index_load_mem(buf, len, "bad.qv", &ix);
    ck_assert_msg(rc == QV_ECORRUPT, "%s: got %s (%s)", what, qv_strerror(rc), qv_last_error());
    ck_assert_ptr_null(ix);
    ck_assert_msg(strstr(qv_last_error(), "bad.qv") != NULL, "%s: message does not name the file: %s", what, qv_last_error());
    if (needle)
        ck_assert_msg(strstr(qv_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, qv_last_error(), needle);
}

START_TEST(test_corrupt_files)
{
    uint32_t dim = 4, nlist = 3;
    size_t n = 30;
    float *x = random_vectors(n, dim, 90);
    uint64_t *ids = seq_ids(n, 0);
    qv_index *ix = make_ivf(dim, QV_METRIC_L2, nlist, x, n);
    QV_CK(qv_index_add(ix, n, ids, x));
    void *orig = NULL;
    size_t len;
    QV_CK(qv_index_save_mem(ix, &orig, &len));
    uint8_t *b = malloc(len);

    /* the body starts after the header: u32 nlist, centroids, u64 count, lists */
    const size_t body = QV_INDEX_HEADER_BYTES, cent = body + 4, count = cent + (size_t)nlist * dim * 4, list0 = count + 8;
    uint32_t len0 = (uint32_t)((const uint8_t *)orig)[list0] | (uint32_t)((const uint8_t *)orig)[list0 + 1] << 8;
    ck_assert_uint_le(len0, n);

    /* every truncation */
    for (size_t cut = 0; cut < len; cut += (cut < body + 16 ? 1 : 7)) expect_corrupt(orig, cut, "truncated", NULL);
    /* a flipped bit anywhere is caught by the checksum */
    for (size_t at = 0; at < len; at += 11) {
        memcpy(b, orig, len);
        b[at] ^= 0x10;
        expect_corrupt(b, len, "bit flip", NULL);
    }
    /* body damage with a valid checksum */
    memcpy(b, orig, len);
    put_u32(b + body, 1u << 25);
    fix_crc(b, len);
    expect_corrupt(b, len, "huge nlist", "nlist");

    memcpy(b, orig, len);
    put_u32(b + body, nlist + 1);
    fix_crc(b, len);
    expect_corrupt(b, len, "nlist differs from header", "nlist");

    memcpy(b, orig, len);
    put_u32(b + cent + 4, 0x7fc00000u);                 /* NaN in centroid 0 */
    fix_crc(b, len);
    expect_corrupt(b, len, "NaN centroid", "not finite");

    memcpy(b, orig, len);
    put_u64(b + count, 1ull << 40);
    fix_crc(b, len);
    expect_corrupt(b, len, "huge count", "count");

    memcpy(b, orig, len);
    put_u64(b + count, n + 1);
    fix_crc(b, len);
    expect_corrupt(b, len, "count too large", NULL);

    memcpy(b, orig, len);
    put_u32(b + list0, 0xfffffff0u);
    fix_crc(b, len);
    expect_corrupt(b, len, "huge list length", "list 0");

    if (len0 >= 2) {
        memcpy(b, orig, len);
        memcpy(b + list0 + 4 + 8, b + list0 + 4, 8);      /* entry 1 gets entry 0's id */
        fix_crc(b, len);
        expect_corrupt(b, len, "duplicate id", "duplicate id");
    }
    if (len0 >= 1) {
        memcpy(b, orig, len);
        put_u32(b + list0 + 4 + (size_t)len0 * 8 + 4, 0x7f800000u);   /* +Inf in vector 0 */
        fix_crc(b, len);
        expect_corrupt(b, len, "Inf vector", "not finite");
    }
    /* a list length taken from another list: the sum no longer matches */
    memcpy(b, orig, len);
    put_u32(b + list0, 0);
    fix_crc(b, len);
    expect_corrupt(b, len, "short list", NULL);

    free(b);
    qv_free(orig);
    qv_index_free(ix);
    free(x);
    free(ids);
}
END_TEST

/* ---- GPU modes ---------------------------------------------------------------------- */

/* Batch hits (bh, nb) against single-query results (ids, scores, ns) of the same index:
 * same counts, scores within rounding, ids equal except at score ties. With the GPU the
 * coarse step goes through GEMM, so a near-tie between two lists may probe another list:
 * up to max_diff queries may then differ. */
static void assert_like_single(const qv_hit *bh, const size_t *nb, const uint64_t *ids, const float *scores,
                               const size_t *ns, size_t nq, size_t k, size_t max_diff, const char *what)
{
    size_t diff = 0;
    for (size_t i = 0; i < nq; i++) {
        int bad = nb[i] != ns[i];
        for (size_t j = 0; j < nb[i] && !bad; j++) {
            float a = bh[i * k + j].score, b = scores[i * k + j], tol = 1e-4f * fmaxf(1.0f, fabsf(b));
            if (fabsf(a - b) > tol) bad = 1;
            else if (bh[i * k + j].id != ids[i * k + j]) {
                /* allowed only where the neighbour ranks tie with it */
                int tie = (j > 0 && fabsf(scores[i * k + j - 1] - b) <= tol) ||
                          (j + 1 < ns[i] && fabsf(scores[i * k + j + 1] - b) <= tol);
                bad = !tie;
            }
        }
        diff += (size_t)bad;
    }
    ck_assert_msg(diff <= max_diff, "%s: %zu of %zu queries differ from single-query search", what, diff, nq);
}

/* Batch (GPU when there is one) vs single query (CPU) on ix. */
static void check_batch(const qv_index *ix, const float *q, size_t nq, uint32_t dim, const qv_search_params *sp,
                        size_t max_diff, const char *what)
{
    size_t k = sp->k;
    qv_hit *bh = malloc(nq * k * sizeof *bh);
    uint64_t *ids = malloc(nq * k * sizeof *ids);
    float *scores = malloc(nq * k * sizeof *scores);
    size_t *nb = malloc(nq * sizeof *nb), *ns = malloc(nq * sizeof *ns);
    QV_CK(qv_index_search_batch(ix, nq, q, sp, bh, nb));
    search_each(ix, q, nq, dim, sp, ids, scores, ns);
    assert_like_single(bh, nb, ids, scores, ns, nq, k, max_diff, what);
    free(bh);
    free(ids);
    free(scores);
    free(nb);
    free(ns);
}

/* With a device, the last large batch of an AUTO index really ran there (AUTO would hide
 * a GPU failure behind the CPU answer). */
static void assert_on_gpu(const qv_index *ix, const char *what)
{
    const qv_ivf *v = ix->impl;
    if (!qv_gpu_probe()) return;
    ck_assert_msg(v->gpu != NULL && v->gpu_lists_ok && !v->gpu_failed, "%s: the batch did not run on the GPU", what);
    ck_assert_uint_eq(v->gpu_version, v->version);
    ck_assert_uint_eq(v->gpu_rows, v->n);
}

/* _i = metric. AUTO index: batch == single query through every kind of change. */
START_TEST(test_gpu_batch_follows_changes)
{
    qv_metric metric = (qv_metric)_i;
    uint32_t dim = 16, nlist = 24, k = 10;
    size_t n = sanitized() ? 1200 : 3000, nq = 100, extra = 200;
    size_t tol = qv_gpu_probe() ? 2 : 0;
    float *x = random_vectors(n + extra, dim, 300 + _i), *q = random_vectors(nq, dim, 310 + _i);
    uint64_t *ids = seq_ids(n + extra, 0);
    qv_hit *ha = malloc(nq * k * sizeof *ha), *ho = malloc(nq * k * sizeof *ho);
    size_t *na = malloc(nq * sizeof *na), *no = malloc(nq * sizeof *no);
    qv_index *ixa = make_ivf_gpu(dim, metric, nlist, x, n, QV_GPU_AUTO);
    qv_index *ixo = make_ivf_gpu(dim, metric, nlist, x, n, QV_GPU_OFF);
    QV_CK(qv_index_add(ixa, n, ids, x));
    QV_CK(qv_index_add(ixo, n, ids, x));
    qv_search_params sp;
    qv_search_params_init(&sp, k);
    sp.nprobe = 4;

    if (!qv_gpu_probe()) {
        /* no device: AUTO is the CPU, bit for bit (training included) */
        const qv_ivf *va = ixa->impl, *vo = ixo->impl;
        ck_assert(memcmp(va->centroids, vo->centroids, (size_t)nlist * dim * sizeof(float)) == 0);
        QV_CK(qv_index_search_batch(ixa, nq, q, &sp, ha, na));
        QV_CK(qv_index_search_batch(ixo, nq, q, &sp, ho, no));
        ck_assert(memcmp(na, no, nq * sizeof *na) == 0);
        for (size_t i = 0; i < nq; i++)          /* fields only: qv_hit has padding */
            for (size_t j = 0; j < na[i]; j++) {
                ck_assert_uint_eq(ha[i * k + j].id, ho[i * k + j].id);
                ck_assert(memcmp(&ha[i * k + j].score, &ho[i * k + j].score, sizeof(float)) == 0);
            }
        ck_assert_ptr_null(va->gpu);
    }
    check_batch(ixa, q, nq, dim, &sp, tol, "after add");
    assert_on_gpu(ixa, "after add");
    sp.nprobe = nlist;
    check_batch(ixa, q, nq, dim, &sp, tol, "nprobe = nlist");
    assert_on_gpu(ixa, "nprobe = nlist");
    sp.nprobe = 4;

    /* remove the even ids, add new ones, replace id 1 by query 0: the next batch must
     * see all of it (the device copy is rebuilt lazily) */
    uint64_t *even = malloc((n / 2) * sizeof *even);
    size_t ne = 0, removed;
    for (size_t i = 0; i < n; i += 2) even[ne++] = i;
    QV_CK(qv_index_remove(ixa, ne, even, &removed));
    ck_assert_uint_eq(removed, ne);
    QV_CK(qv_index_add(ixa, extra, ids + n, x + n * dim));
    uint64_t one = 1;
    QV_CK(qv_index_add(ixa, 1, &one, q));
    check_batch(ixa, q, nq, dim, &sp, tol, "after remove/add/replace");
    assert_on_gpu(ixa, "after remove/add/replace");
    QV_CK(qv_index_search_batch(ixa, nq, q, &sp, ha, na));
    ck_assert_uint_eq(ha[0].id, 1);
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < na[i]; j++) {
            uint64_t id = ha[i * k + j].id;
            ck_assert_msg(id == 1 || (id & 1) || id >= n, "query %zu: removed id %llu returned", i,
                          (unsigned long long)id);
        }

    /* a filter keeps the batch on the CPU: exactly the single-query answers */
    sp.accept = accept_mod3;
    check_batch(ixa, q, nq, dim, &sp, 0, "filtered");
    sp.accept = NULL;

    /* retrain after emptying: the device copy follows the new centroids */
    uint64_t *all = seq_ids(n + extra, 0);
    QV_CK(qv_index_remove(ixa, n + extra, all, &removed));
    ck_assert_uint_eq(qv_index_size(ixa), 0);
    QV_CK(qv_index_search_batch(ixa, nq, q, &sp, ha, na));
    for (size_t i = 0; i < nq; i++) ck_assert_uint_eq(na[i], 0);
    QV_CK(qv_index_train(ixa, extra, x + n * dim));
    QV_CK(qv_index_add(ixa, n, ids, x));
    check_batch(ixa, q, nq, dim, &sp, tol, "after retrain");
    assert_on_gpu(ixa, "after retrain");
    qv_index_free(ixa);
    qv_index_free(ixo);
    free(x);
    free(q);
    free(ids);
    free(all);
    free(even);
    free(ha);
    free(ho);
    free(na);
    free(no);
}
END_TEST

/* Lists shorter than k: the GPU answers are completed by the probe extension. */
START_TEST(test_gpu_short_lists)
{
    uint32_t dim = 8, k = 50, nlist = 40;
    size_t n = 200, nq = 64;
    float *x = random_vectors(n, dim, 320), *q = random_vectors(nq, dim, 321);
    uint64_t *ids = seq_ids(n, 1000);
    qv_index *ix = make_ivf_gpu(dim, QV_METRIC_L2, nlist, x, n, QV_GPU_AUTO);
    QV_CK(qv_index_add(ix, n, ids, x));
    qv_search_params sp;
    qv_search_params_init(&sp, k);
    sp.nprobe = 1;
    check_batch(ix, q, nq, dim, &sp, 0, "short lists");
    assert_on_gpu(ix, "short lists");
    qv_hit *bh = malloc(nq * k * sizeof *bh);
    size_t *nb = malloc(nq * sizeof *nb);
    QV_CK(qv_index_search_batch(ix, nq, q, &sp, bh, nb));
    for (size_t i = 0; i < nq; i++) ck_assert_uint_eq(nb[i], k);
    qv_index_free(ix);
    free(x);
    free(q);
    free(ids);
    free(bh);
    free(nb);
}
END_TEST

START_TEST(test_gpu_require)
{
    uint32_t dim = 8;
    size_t n = 500, nq = 64;
    float *x = random_vectors(n, dim, 330);
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_IVF, dim, QV_METRIC_L2);
    p.nlist = 8;
    p.gpu = QV_GPU_REQUIRE;
    if (!qv_gpu_available()) {
        QV_CK_FAIL(qv_index_new(&p, &ix), QV_ENODEV);
        ck_assert_ptr_null(ix);
        ck_assert_msg(qv_last_error()[0] != '\0', "QV_ENODEV without a message");
        free(x);
        return;
    }
    uint64_t *ids = seq_ids(n, 0);
    QV_CK(qv_index_new(&p, &ix));
    QV_CK(qv_index_train(ix, n, x));
    QV_CK(qv_index_add(ix, n, ids, x));
    qv_search_params sp;
    qv_search_params_init(&sp, 5);
    check_batch(ix, x, nq, dim, &sp, 1, "REQUIRE");
    ck_assert_ptr_nonnull(((const qv_ivf *)ix->impl)->gpu);
    qv_index_free(ix);
    free(ids);
    free(x);
}
END_TEST

/* ---- concurrency smoke -------------------------------------------------------------- */

typedef struct {
    qv_index *ix;
    const float *q;                /* 64 queries */
    uint32_t dim;
    int rounds;
    int failed;
} conc_arg;

static void *searcher(void *p)
{
    conc_arg *a = p;
    qv_search_params sp;
    qv_hit hits[5], bh[64 * 5];
    size_t nh, nb[64];
    qv_search_params_init(&sp, 5);
    for (int r = 0; r < a->rounds; r++) {
        if (qv_index_search(a->ix, a->q + (size_t)(r % 8) * a->dim, &sp, hits, &nh) != QV_OK) a->failed = 1;
        if (r % 8 == 0 && qv_index_search_batch(a->ix, 4, a->q, &sp, bh, nb) != QV_OK) a->failed = 1;
        /* large enough for the GPU path of an AUTO index (the device copy is rebuilt
         * while writers keep changing the lists) */
        if (r % 16 == 4 && qv_index_search_batch(a->ix, 64, a->q, &sp, bh, nb) != QV_OK) a->failed = 1;
    }
    return NULL;
}

START_TEST(test_concurrent_search_and_write)
{
    uint32_t dim = 8;
    size_t n = 2000;
    int rounds = sanitized() ? 50 : 300;
    float *x = random_vectors(n, dim, 100), *q = random_vectors(64, dim, 101);
    uint64_t *ids = seq_ids(n, 0);
    qv_index *ix = make_ivf_gpu(dim, QV_METRIC_L2, 16, x, n, (qv_gpu_mode)_i);   /* OFF, AUTO */
    QV_CK(qv_index_add(ix, n / 2, ids, x));
    pthread_t th[2];
    conc_arg a = {ix, q, dim, rounds, 0};
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, searcher, &a), 0);
    for (int r = 0; r < rounds / 5; r++) {
        size_t at = (size_t)(r * 37) % (n / 2 - 10);   /* batches of 10 stay inside both halves */
        QV_CK(qv_index_add(ix, 10, ids + n / 2 + at, x + (n / 2 + at) * dim));
        size_t removed;
        QV_CK(qv_index_remove(ix, 10, ids + at, &removed));
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    ck_assert_int_eq(a.failed, 0);
    qv_index_free(ix);
    free(x);
    free(q);
    free(ids);
}
END_TEST

extern Suite *qv_ivf_suite(void);   /* "extern": the Makefile lists definitions only */
extern Suite *qv_ivf_concurrency_suite(void);

Suite *qv_ivf_suite(void)
{
    Suite *s = suite_create("ivf");
    TCase *tc = tcase_create("ivf");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_untrained_state);
    tcase_add_test(tc, test_auto_nlist);
    tcase_add_loop_test(tc, test_exact_when_probing_all, QV_METRIC_L2, QV_METRIC_COSINE + 1);
    tcase_add_test(tc, test_small_lists_still_give_k);
    tcase_add_test(tc, test_recall_siftsmall);
    tcase_add_test(tc, test_filters);
    tcase_add_test(tc, test_remove_and_replace);
    tcase_add_test(tc, test_add_all_or_nothing);
    tcase_add_loop_test(tc, test_save_load_roundtrip, QV_METRIC_L2, QV_METRIC_COSINE + 1);
    tcase_add_test(tc, test_corrupt_files);
    tcase_add_loop_test(tc, test_gpu_batch_follows_changes, QV_METRIC_L2, QV_METRIC_COSINE + 1);
    tcase_add_test(tc, test_gpu_short_lists);
    tcase_add_test(tc, test_gpu_require);
    suite_add_tcase(s, tc);
    return s;
}

Suite *qv_ivf_concurrency_suite(void)
{
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("ivf");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_concurrent_search_and_write, QV_GPU_OFF, QV_GPU_AUTO + 1);
    suite_add_tcase(s, tc);
    return s;
}
