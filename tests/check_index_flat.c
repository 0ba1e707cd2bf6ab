/*
 * tests/check_index_flat.c -- the flat index through the public qv_index_* API.
 *
 * Exactness against brute force in double (ref_knn) for l2, ip and cosine, one query and
 * batches (both the scan and the GEMM path); add / replace / remove against a model kept
 * by the test; filters; save/load round trips; damaged files (every truncation, flipped
 * bytes, crafted bodies with a valid checksum) give QV_ECORRUPT and never crash;
 * argument errors; allocation failure at every allocation of new + add; a few searches
 * running while another thread writes; recall@10 = 1 on siftsmall against its ground
 * truth (skipped when the data set is absent). The "gpu" case: QV_GPU_AUTO / REQUIRE
 * indexes against the same reference after every kind of write (on the CPU fallback here;
 * on the device, or its CPU emulation with `make -f gpu/gpu-check.mk emu-flat`, which also
 * injects device errors).
 *
 * A rank matches the reference when the id is the same or both ids are at the same
 * distance within float rounding (near-ties may swap).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "index/index.h"
#include "tests/test_util.h"

/* Public score of vector x for query q, in double. */
static double ref_score(qv_metric m, const float *q, const float *x, size_t dim)
{
    return m == QV_METRIC_L2 ? ref_l2sq(q, x, dim) : m == QV_METRIC_IP ? ref_dot(q, x, dim) : ref_cosine(q, x, dim);
}

/* Check hits of one query against reference ids. base holds the model's vectors at row
 * index ids_of[row] = external id; ref_rows are rows into base. */
static void check_hits(qv_metric m, const float *base, const uint64_t *ids_of, size_t n, size_t dim, const float *q,
                       size_t k, const uint64_t *ref_rows, const qv_hit *hits, size_t n_hits, const char *what)
{
    size_t want_n = n < k ? n : k;
    double qn = ref_dot(q, q, dim), tol = 1e-5 * (qn + 4.0 * dim) + 1e-6;
    if (m == QV_METRIC_COSINE) tol = 1e-5;
    ck_assert_msg(n_hits == want_n, "%s: %zu hits, want %zu", what, n_hits, want_n);
    for (size_t j = 0; j < want_n; j++) {
        size_t row = n;
        for (size_t i = 0; i < n; i++)
            if ((ids_of ? ids_of[i] : i) == hits[j].id) { row = i; break; }
        ck_assert_msg(row < n, "%s: rank %zu: id %llu is not in the index", what, j, (unsigned long long)hits[j].id);
        double got = ref_score(m, q, base + row * dim, dim);
        double want = ref_score(m, q, base + ref_rows[j] * dim, dim);
        ck_assert_msg(row == ref_rows[j] || fabs(got - want) <= tol, "%s: rank %zu: row %zu (%.9g), want row %zu (%.9g)",
                      what, j, row, got, (size_t)ref_rows[j], want);
        ck_assert_msg(fabs(hits[j].score - got) <= tol, "%s: rank %zu: score %.9g, exact %.9g", what, j,
                      (double)hits[j].score, got);
        if (j > 0) {
            int ordered = m == QV_METRIC_L2 ? hits[j - 1].score <= hits[j].score : hits[j - 1].score >= hits[j].score;
            ck_assert_msg(ordered, "%s: rank %zu out of order", what, j);
        }
    }
}

static qv_index *new_index(size_t dim, qv_metric m, uint32_t threads)
{
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_FLAT, (uint32_t)dim, m);
    p.threads = threads;
    QV_CK(qv_index_new(&p, &ix));
    return ix;
}

static void check_all_queries(qv_index *ix, qv_metric m, const float *base, const uint64_t *ids_of, size_t n,
                              size_t dim, const float *q, size_t nq, size_t k, const char *tag)
{
    qv_hit *hits = malloc(nq * k * sizeof *hits), *bh = malloc(nq * k * sizeof *bh);
    uint64_t *ref = malloc(nq * k * sizeof *ref);
    size_t *nb = malloc(nq * sizeof *nb);
    qv_search_params sp;
    char what[128];
    ck_assert(hits && bh && ref && nb);
    qv_search_params_init(&sp, (uint32_t)k);
    ref_knn(base, n, dim, q, nq, k, m, ref);
    QV_CK(qv_index_search_batch(ix, nq, q, &sp, bh, nb));
    for (size_t i = 0; i < nq; i++) {
        size_t nh;
        QV_CK(qv_index_search(ix, q + i * dim, &sp, hits + i * k, &nh));
        snprintf(what, sizeof what, "%s metric %d single query %zu", tag, (int)m, i);
        check_hits(m, base, ids_of, n, dim, q + i * dim, k, ref + i * k, hits + i * k, nh, what);
        snprintf(what, sizeof what, "%s metric %d batch(%zu) query %zu", tag, (int)m, nq, i);
        check_hits(m, base, ids_of, n, dim, q + i * dim, k, ref + i * k, bh + i * k, nb[i], what);
        /* Single and batch agree: same ids (up to near-ties, checked above) and scores. */
        ck_assert_uint_eq(nh, nb[i]);
        for (size_t j = 0; j < nh; j++)
            ck_assert_msg(fabsf(hits[i * k + j].score - bh[i * k + j].score) <=
                              1e-5f * (fabsf(hits[i * k + j].score) + 1.0f),
                          "%s: single/batch scores differ at rank %zu", what, j);
    }
    free(hits); free(bh); free(ref); free(nb);
}

START_TEST(test_exact_vs_reference)
{
    static const qv_metric metrics[] = {QV_METRIC_L2, QV_METRIC_IP, QV_METRIC_COSINE};
    const size_t n = sanitized() ? 600 : 2500, dim = 37, k = 10;
    float *base = random_vectors(n, dim, 100);
    float *q = random_vectors(60, dim, 101);
    uint64_t *ids = malloc(n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    for (int mi = 0; mi < 3; mi++) {
        qv_index *ix = new_index(dim, metrics[mi], 2);
        /* In three batches, to exercise growth. */
        QV_CK(qv_index_add(ix, 7, ids, base));
        QV_CK(qv_index_add(ix, n / 2 - 7, ids + 7, base + 7 * dim));
        QV_CK(qv_index_add(ix, n - n / 2, ids + n / 2, base + n / 2 * dim));
        ck_assert_uint_eq(qv_index_size(ix), n);
        ck_assert_uint_ge(qv_index_memory(ix), n * dim * sizeof(float));
        check_all_queries(ix, metrics[mi], base, NULL, n, dim, q, 60, k, "random");   /* GEMM batch */
        check_all_queries(ix, metrics[mi], base, NULL, n, dim, q, 3, k, "random");    /* scan batch */
        check_all_queries(ix, metrics[mi], base, NULL, n, dim, q, 20, 1, "k=1");
        qv_index_free(ix);
    }
    /* Fewer vectors than k. */
    qv_index *ix = new_index(dim, QV_METRIC_L2, 1);
    QV_CK(qv_index_add(ix, 5, ids, base));
    check_all_queries(ix, QV_METRIC_L2, base, NULL, 5, dim, q, 9, 7, "n<k");
    check_all_queries(ix, QV_METRIC_L2, base, NULL, 5, dim, q, 2, 7, "n<k");
    qv_index_free(ix);
    free(base); free(q); free(ids);
}
END_TEST

START_TEST(test_empty_and_bad_args)
{
    const size_t dim = 8;
    qv_index *ix = new_index(dim, QV_METRIC_L2, 1);
    float q[8] = {1, 2, 3, 4, 5, 6, 7, 8}, qs[16];
    qv_hit hits[20];
    size_t nh = 99, nb[2];
    qv_search_params sp;
    qv_search_params_init(&sp, 5);
    QV_CK(qv_index_search(ix, q, &sp, hits, &nh));
    ck_assert_uint_eq(nh, 0);
    memcpy(qs, q, sizeof q);
    memcpy(qs + 8, q, sizeof q);
    QV_CK(qv_index_search_batch(ix, 2, qs, &sp, hits, nb));
    ck_assert(nb[0] == 0 && nb[1] == 0);
    uint64_t id = 1;
    QV_CK(qv_index_add(ix, 1, &id, q));
    q[3] = NAN;
    QV_CK_FAIL(qv_index_search(ix, q, &sp, hits, &nh), QV_EINVAL);
    q[3] = INFINITY;
    QV_CK_FAIL(qv_index_search(ix, q, &sp, hits, &nh), QV_EINVAL);
    QV_CK_FAIL(qv_index_add(ix, 1, &id, q), QV_EINVAL);          /* Inf in a vector */
    q[3] = 4;
    sp.k = 0;
    QV_CK_FAIL(qv_index_search(ix, q, &sp, hits, &nh), QV_EINVAL);
    QV_CK_FAIL(qv_index_search_batch(ix, 2, qs, &sp, hits, nb), QV_EINVAL);
    sp.k = QV_MAX_K + 1;
    QV_CK_FAIL(qv_index_search(ix, q, &sp, hits, &nh), QV_EINVAL);
    sp.k = QV_MAX_K;                                              /* the largest k works */
    qv_hit *big = malloc(QV_MAX_K * sizeof *big);
    ck_assert_ptr_nonnull(big);
    QV_CK(qv_index_search(ix, q, &sp, big, &nh));
    ck_assert(nh == 1 && big[0].id == 1 && big[0].score == 0.0f);
    free(big);
    qs[8] = NAN;
    sp.k = 1;
    QV_CK_FAIL(qv_index_search_batch(ix, 2, qs, &sp, hits, nb), QV_EINVAL);
    qv_index_free(ix);
    qv_index_free(NULL);

    /* Cosine: zero vectors have no direction. */
    ix = new_index(dim, QV_METRIC_COSINE, 1);
    float z[8] = {0};
    QV_CK_FAIL(qv_index_add(ix, 1, &id, z), QV_EINVAL);
    QV_CK_FAIL(qv_index_search(ix, z, &sp, hits, &nh), QV_EINVAL);
    qv_index_free(ix);
}
END_TEST

/* Model-based add / replace / remove: the test keeps (id, vector) pairs and checks every
 * search against brute force over them. */
START_TEST(test_add_replace_remove)
{
    const size_t dim = 19, cap = 800, nq = 12, k = 8;
    float *vecs = random_vectors(cap * 4, dim, 300);
    float *q = random_vectors(nq, dim, 301);
    float *model = malloc(cap * dim * sizeof *model);
    uint64_t *model_id = malloc(cap * sizeof *model_id), ids[64];
    size_t n = 0, used = 0;
    uint64_t s = 12345;
    ck_assert(model && model_id);
    qv_index *ix = new_index(dim, QV_METRIC_L2, 2);
    for (int round = 0; round < 40; round++) {
        /* Add 30 ids from [0, 700): some new, some replacing. */
        size_t cnt = 0;
        for (size_t i = 0; i < 30; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t id = (s >> 33) % 700;
            int dup = 0;
            for (size_t j = 0; j < cnt; j++) dup |= ids[j] == id;
            if (!dup) ids[cnt++] = id;
        }
        const float *src = vecs + (used % (cap * 3)) * dim;
        used += cnt;
        QV_CK(qv_index_add(ix, cnt, ids, src));
        for (size_t i = 0; i < cnt; i++) {
            size_t row = n;
            for (size_t j = 0; j < n; j++)
                if (model_id[j] == ids[i]) row = j;
            if (row == n) model_id[n++] = ids[i];
            memcpy(model + row * dim, src + i * dim, dim * sizeof *model);
        }
        /* Remove 12 random ids (some absent). */
        size_t want_removed = 0, got_removed = 99;
        for (size_t i = 0; i < 12; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            ids[i] = (s >> 33) % 800;
            for (size_t j = 0; j < i; j++)
                if (ids[j] == ids[i]) ids[i] = 5000 + i;          /* keep them distinct */
        }
        for (size_t i = 0; i < 12; i++)
            for (size_t j = 0; j < n; j++)
                if (model_id[j] == ids[i]) {
                    model_id[j] = model_id[n - 1];
                    memcpy(model + j * dim, model + (n - 1) * dim, dim * sizeof *model);
                    n--;
                    want_removed++;
                    break;
                }
        QV_CK(qv_index_remove(ix, 12, ids, &got_removed));
        ck_assert_uint_eq(got_removed, want_removed);
        ck_assert_uint_eq(qv_index_size(ix), n);
        if (round % 8 == 7) {
            char tag[32];
            snprintf(tag, sizeof tag, "round %d", round);
            check_all_queries(ix, QV_METRIC_L2, model, model_id, n, dim, q, nq, k, tag);
        }
    }
    /* Re-add of an existing id finds its new vector at distance 0 and keeps the size. */
    uint64_t id = model_id[0];
    size_t before = qv_index_size(ix), nh;
    qv_search_params sp;
    qv_hit h[2];
    QV_CK(qv_index_add(ix, 1, &id, q));
    ck_assert_uint_eq(qv_index_size(ix), before);
    qv_search_params_init(&sp, 2);
    QV_CK(qv_index_search(ix, q, &sp, h, &nh));
    ck_assert(nh == 2 && h[0].id == id && h[0].score == 0.0f);
    /* Remove everything: empty again, searches still fine; NULL n_removed allowed. */
    QV_CK(qv_index_remove(ix, n, model_id, NULL));
    ck_assert_uint_eq(qv_index_size(ix), 0);
    QV_CK(qv_index_search(ix, q, &sp, h, &nh));
    ck_assert_uint_eq(nh, 0);
    QV_CK(qv_index_remove(ix, 0, NULL, NULL));
    qv_index_free(ix);
    free(vecs); free(q); free(model); free(model_id);
}
END_TEST

static int accept_odd(uint64_t id, void *arg)
{
    (void)arg;
    return (id & 1) == 1;
}

START_TEST(test_filters)
{
    const size_t n = 1500, dim = 16, nq = 30, k = 10;
    float *base = random_vectors(n, dim, 400), *q = random_vectors(nq, dim, 401);
    float *sub = malloc(n * dim * sizeof *sub);
    uint64_t *ids = malloc(n * sizeof *ids), *sub_id = malloc(n * sizeof *sub_id), *ref = malloc(nq * k * sizeof *ref);
    uint64_t allow[(2 * 1500 + 63) / 64] = {0};
    qv_hit *hits = malloc(nq * k * sizeof *hits);
    size_t nb[30], nsub;
    ck_assert(sub && ids && sub_id && ref && hits);
    for (size_t i = 0; i < n; i++) {
        ids[i] = 2 * i + (i % 3 == 0);                    /* increasing, odd every third row */
        if (i % 4 != 1) allow[ids[i] / 64] |= 1ull << (ids[i] % 64);
    }
    for (int mi = 0; mi < 2; mi++) {
        qv_metric m = mi ? QV_METRIC_COSINE : QV_METRIC_L2;
        qv_index *ix = new_index(dim, m, 2);
        QV_CK(qv_index_add(ix, n, ids, base));
        for (int variant = 1; variant < 4; variant++) {
            qv_search_params sp;
            qv_search_params_init(&sp, (uint32_t)k);
            if (variant & 1) { sp.allow_bits = allow; sp.allow_nbits = 2 * n; }
            if (variant & 2) sp.accept = accept_odd;
            nsub = 0;
            for (size_t i = 0; i < n; i++) {
                if ((variant & 1) && i % 4 == 1) continue;
                if ((variant & 2) && !(ids[i] & 1)) continue;
                memcpy(sub + nsub * dim, base + i * dim, dim * sizeof *sub);
                sub_id[nsub++] = ids[i];
            }
            ref_knn(sub, nsub, dim, q, nq, k, m, ref);
            QV_CK(qv_index_search_batch(ix, nq, q, &sp, hits, nb));
            for (size_t i = 0; i < nq; i++) {
                char what[64];
                qv_hit one[10];
                size_t nh;
                snprintf(what, sizeof what, "filter %d metric %d query %zu batch", variant, (int)m, i);
                check_hits(m, sub, sub_id, nsub, dim, q + i * dim, k, ref + i * k, hits + i * k, nb[i], what);
                QV_CK(qv_index_search(ix, q + i * dim, &sp, one, &nh));
                snprintf(what, sizeof what, "filter %d metric %d query %zu single", variant, (int)m, i);
                check_hits(m, sub, sub_id, nsub, dim, q + i * dim, k, ref + i * k, one, nh, what);
            }
        }
        /* allow_nbits = 0: nothing passes. */
        qv_search_params sp;
        qv_search_params_init(&sp, (uint32_t)k);
        sp.allow_bits = allow;
        sp.allow_nbits = 0;
        QV_CK(qv_index_search_batch(ix, nq, q, &sp, hits, nb));
        for (size_t i = 0; i < nq; i++) ck_assert_uint_eq(nb[i], 0);
        sp.allow_bits = NULL;
        sp.allow_nbits = 10;                              /* bits promised but missing */
        QV_CK_FAIL(qv_index_search_batch(ix, nq, q, &sp, hits, nb), QV_EINVAL);
        qv_index_free(ix);
    }
    free(base); free(q); free(sub); free(ids); free(sub_id); free(ref); free(hits);
}
END_TEST

/* Field by field: qv_hit has padding after score. */
static void same_hits(const qv_hit *a, const qv_hit *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(a[i].id == b[i].id && a[i].score == b[i].score, "hit %zu: (%llu, %g) vs (%llu, %g)", i,
                      (unsigned long long)a[i].id, (double)a[i].score, (unsigned long long)b[i].id, (double)b[i].score);
}

/* Results of nq queries, for comparing two indexes bit for bit. */
static void results(qv_index *ix, const float *q, size_t nq, size_t k, qv_hit *hits, size_t *nh)
{
    qv_search_params sp;
    qv_search_params_init(&sp, (uint32_t)k);
    QV_CK(qv_index_search_batch(ix, nq, q, &sp, hits, nh));
}

static qv_index *filled_index(qv_metric m, size_t n, size_t dim, uint64_t seed, float **base_out)
{
    float *base = random_vectors(n, dim, seed);
    uint64_t *ids = malloc(n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++) ids[i] = i * 977 + 13;
    qv_index *ix = new_index(dim, m, 2);
    QV_CK(qv_index_add(ix, n, ids, base));
    free(ids);
    if (base_out) *base_out = base;
    else free(base);
    return ix;
}

START_TEST(test_save_load_roundtrip)
{
    const size_t n = 700, dim = 21, nq = 16, k = 5;
    float *q = random_vectors(nq, dim, 501);
    qv_hit h1[80], h2[80];
    size_t n1[16], n2[16];
    char *dir = make_tmpdir("qv-flat");
    char path[4200];
    snprintf(path, sizeof path, "%s/flat.qv", dir);
    for (int mi = 0; mi < 3; mi++) {
        qv_metric m = (qv_metric)(QV_METRIC_L2 + mi);
        qv_index *ix = filled_index(m, n, dim, 500 + mi, NULL), *back = NULL, *back2 = NULL;
        uint64_t gone[3] = {13, 977 * 5 + 13, 977 * 699 + 13};
        QV_CK(qv_index_remove(ix, 3, gone, NULL));         /* rows moved around before saving */
        void *buf = NULL;
        size_t len = 0;
        QV_CK(qv_index_save_mem(ix, &buf, &len));
        QV_CK(qv_index_load_mem(buf, len, "mem", &back));
        QV_CK(qv_index_save(ix, path));
        QV_CK(qv_index_load(path, &back2));
        ck_assert_uint_eq(qv_index_size(back), n - 3);
        ck_assert_uint_eq(qv_index_size(back2), n - 3);
        qv_index_params p1, p2;
        qv_index_get_params(ix, &p1);
        qv_index_get_params(back, &p2);
        ck_assert(p1.dim == p2.dim && p1.metric == p2.metric && p2.kind == QV_INDEX_FLAT);
        results(ix, q, nq, k, h1, n1);
        results(back, q, nq, k, h2, n2);
        ck_assert_mem_eq(n1, n2, sizeof n1);
        same_hits(h1, h2, nq * k);
        results(back2, q, nq, k, h2, n2);
        same_hits(h1, h2, nq * k);
        /* A loaded index keeps working: its id map knows every id. */
        size_t removed = 0;
        uint64_t some[2] = {977 * 10 + 13, 977 * 5 + 13};
        QV_CK(qv_index_remove(back, 2, some, &removed));
        ck_assert_uint_eq(removed, 1);
        qv_index_free(ix);
        qv_index_free(back);
        qv_index_free(back2);
        qv_free(buf);
    }
    /* Empty index round trip. */
    qv_index *e = new_index(4, QV_METRIC_IP, 1), *eb = NULL;
    void *buf = NULL;
    size_t len = 0;
    QV_CK(qv_index_save_mem(e, &buf, &len));
    QV_CK(qv_index_load_mem(buf, len, "empty", &eb));
    ck_assert_uint_eq(qv_index_size(eb), 0);
    qv_index_free(e);
    qv_index_free(eb);
    qv_free(buf);
    rm_rf(dir);
    free(dir);
    free(q);
}
END_TEST

#define BODY_OFF QV_INDEX_HEADER_BYTES   /* index.c's header: "QVIX" + 11 x u32 + 2 x u64 + u32 quant + u32 pad */

static void fix_crc(uint8_t *b, size_t len)
{
    uint32_t c = qv_crc32c(0, b, len - 4);
    for (int i = 0; i < 4; i++) b[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

START_TEST(test_corrupt_files)
{
    const size_t n = 40, dim = 6;
    qv_index *ix = filled_index(QV_METRIC_COSINE, n, dim, 600, NULL), *back = NULL;
    uint8_t *buf = NULL, *bad;
    size_t len = 0;
    QV_CK(qv_index_save_mem(ix, (void **)&buf, &len));
    ck_assert_uint_eq(len, BODY_OFF + 8 + n * 8 + n * dim * 4 + 4);
    bad = malloc(len);
    ck_assert_ptr_nonnull(bad);
    /* Every truncation (exact-size copies so ASan catches any over-read). */
    for (size_t cut = 0; cut < len; cut += (cut < 100 ? 1 : 7)) {
        uint8_t *t = malloc(cut + 1);
        ck_assert_ptr_nonnull(t);
        memcpy(t, buf, cut);
        int rc = qv_index_load_mem(t, cut, "trunc", &back);
        ck_assert_msg(rc == QV_ECORRUPT && back == NULL, "cut at %zu: %s", cut, qv_strerror(rc));
        /* Same, with the checksum made valid: the parser itself must catch it. */
        if (cut >= 4) {
            fix_crc(t, cut);
            rc = qv_index_load_mem(t, cut, "trunc+crc", &back);
            ck_assert_msg(rc == QV_ECORRUPT && back == NULL, "cut at %zu with a valid crc: %s", cut, qv_strerror(rc));
        }
        free(t);
    }
    /* Every flipped byte. */
    for (size_t off = 0; off < len; off++) {
        memcpy(bad, buf, len);
        bad[off] ^= 0x5a;
        int rc = qv_index_load_mem(bad, len, "flip", &back);
        ck_assert_msg(rc == QV_ECORRUPT && back == NULL, "flip at %zu: %s", off, qv_strerror(rc));
    }
    /* Crafted bodies with a valid checksum. */
    const size_t ids_off = BODY_OFF + 8, vec_off = ids_off + n * 8;
    struct { const char *what; size_t off; uint64_t v; int u64; } cases[] = {
        {"count too large", BODY_OFF, n + 1, 1},
        {"count huge", BODY_OFF, UINT64_MAX / 2, 1},
        {"count smaller (bytes left over)", BODY_OFF, n - 1, 1},
        {"duplicate id", ids_off + 8, 0, 2},               /* id[1] = id[0] */
        {"NaN component", vec_off + 4 * 3, 0x7fc00000u, 0},
        {"Inf component", vec_off + 4 * dim * 7, 0x7f800000u, 0},
        {"not unit length", vec_off + 4 * dim * 2, 0x40000000u, 0},   /* 2.0f */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(bad, buf, len);
        if (cases[c].u64 == 2) memcpy(bad + cases[c].off, bad + ids_off, 8);
        else if (cases[c].u64) put_u64(bad + cases[c].off, cases[c].v);
        else for (int i = 0; i < 4; i++) bad[cases[c].off + (size_t)i] = (uint8_t)(cases[c].v >> (8 * i));
        fix_crc(bad, len);
        int rc = qv_index_load_mem(bad, len, "crafted", &back);
        ck_assert_msg(rc == QV_ECORRUPT && back == NULL, "%s: %s (%s)", cases[c].what, qv_strerror(rc), qv_last_error());
    }
    /* Missing file. */
    int rc = qv_index_load("/nonexistent/dir/x.qv", &back);
    ck_assert(rc != QV_OK && back == NULL);
    free(bad);
    qv_free(buf);
    qv_index_free(ix);
}
END_TEST

/* Allocation failure at each allocation of new + add, then of an add into a full index:
 * every failure is QV_ENOMEM, leaves the index as it was, and leaks nothing (ASan). */
START_TEST(test_alloc_failures)
{
    const size_t dim = 12, n = 300;
    float *v = random_vectors(2 * n, dim, 700), q[12];
    uint64_t *ids = malloc(2 * n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < 2 * n; i++) ids[i] = i * 3;
    fill_random(q, dim, 701);
    qv_index_params p;
    qv_index_params_init(&p, QV_INDEX_FLAT, (uint32_t)dim, QV_METRIC_COSINE);
    p.threads = 1;
    int rc = QV_ENOMEM;
    long fails = 0;
    for (long i = 0; rc != QV_OK; i++) {
        qv_index *ix = NULL;
        ck_assert_msg(i < 10000, "still failing after 10000 injected failures");
        qv_alloc_fail_after(i);
        rc = qv_index_new(&p, &ix);
        if (rc == QV_OK) {
            rc = qv_index_add(ix, n, ids, v);
            if (rc != QV_OK) ck_assert_uint_eq(qv_index_size(ix), 0);
        } else {
            ck_assert_ptr_null(ix);
        }
        qv_alloc_fail_after(-1);
        ck_assert_msg(rc == QV_OK || rc == QV_ENOMEM, "failure %ld gave %s", i, qv_strerror(rc));
        fails += rc != QV_OK;
        qv_index_free(ix);
    }
    ck_assert_int_gt(fails, 2);

    /* Add into an existing index (half replacing, half new: forces growth). */
    qv_index *ix = NULL;
    QV_CK(qv_index_new(&p, &ix));
    QV_CK(qv_index_add(ix, n, ids, v));
    qv_search_params sp;
    qv_hit before[5], after[5];
    size_t nb, na;
    qv_search_params_init(&sp, 5);
    QV_CK(qv_index_search(ix, q, &sp, before, &nb));
    rc = QV_ENOMEM;
    fails = 0;
    for (long i = 0; rc != QV_OK; i++) {
        ck_assert_msg(i < 10000, "still failing after 10000 injected failures");
        qv_alloc_fail_after(i);
        rc = qv_index_add(ix, n, ids + n / 2, v + n * dim);
        qv_alloc_fail_after(-1);
        ck_assert_msg(rc == QV_OK || rc == QV_ENOMEM, "failure %ld gave %s", i, qv_strerror(rc));
        if (rc != QV_OK) {
            fails++;
            ck_assert_uint_eq(qv_index_size(ix), n);
            QV_CK(qv_index_search(ix, q, &sp, after, &na));
            ck_assert_uint_eq(na, nb);
            same_hits(before, after, nb);
        }
    }
    ck_assert_int_gt(fails, 0);
    ck_assert_uint_eq(qv_index_size(ix), n + n / 2);
    qv_index_free(ix);
    free(v);
    free(ids);
}
END_TEST

typedef struct {
    qv_index *ix;
    const float *q;
    size_t dim;
    int failures;
} reader_arg;

static void *reader(void *vp)
{
    reader_arg *a = vp;
    qv_search_params sp;
    qv_hit hits[4 * 10];
    size_t nh, nb[4];
    qv_search_params_init(&sp, 10);
    for (int i = 0; i < 150; i++) {
        if (qv_index_search(a->ix, a->q + (size_t)(i % 4) * a->dim, &sp, hits, &nh) != QV_OK) a->failures++;
        if (i % 10 == 0 && qv_index_search_batch(a->ix, 4, a->q, &sp, hits, nb) != QV_OK) a->failures++;
        for (size_t j = 1; j < nh; j++)
            if (hits[j - 1].score > hits[j].score) a->failures++;
    }
    return NULL;
}

START_TEST(test_concurrent_search_and_write)
{
    const size_t dim = 32, n = 2000;
    float *v = random_vectors(n, dim, 800), *q = random_vectors(4, dim, 801);
    uint64_t *ids = malloc(n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    qv_index *ix = new_index(dim, QV_METRIC_L2, 2);
    QV_CK(qv_index_add(ix, n / 2, ids, v));
    pthread_t th[2];
    reader_arg args[2] = {{ix, q, dim, 0}, {ix, q, dim, 0}};
    for (int t = 0; t < 2; t++) ck_assert_int_eq(pthread_create(&th[t], NULL, reader, &args[t]), 0);
    for (size_t i = n / 2; i + 50 <= n; i += 50) {
        QV_CK(qv_index_add(ix, 50, ids + i, v + i * dim));
        QV_CK(qv_index_remove(ix, 10, ids + i - 200, NULL));
    }
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    ck_assert_int_eq(args[0].failures + args[1].failures, 0);
    qv_index_free(ix);
    free(v); free(q); free(ids);
}
END_TEST

START_TEST(test_siftsmall_recall)
{
    char bpath[512], qpath[512], gpath[512];
    if (!data_path(bpath, sizeof bpath, "siftsmall", "base.fvecs") ||
        !data_path(qpath, sizeof qpath, "siftsmall", "query.fvecs") ||
        !data_path(gpath, sizeof gpath, "siftsmall", "groundtruth.ivecs")) {
        test_skip(TEST_SKIP_MISSING, "flat: siftsmall not found (%s): recall test", bpath);
        return;
    }
    float *base = NULL, *q = NULL;
    int32_t *gt = NULL;
    size_t n, dim, nq, qdim, ngt, gdim;
    QV_CK(qv_read_vectors(bpath, &base, &n, &dim));
    QV_CK(qv_read_vectors(qpath, &q, &nq, &qdim));
    QV_CK(qv_read_ivecs(gpath, &gt, &ngt, &gdim));
    ck_assert(dim == 128 && qdim == dim && ngt == nq && gdim >= 10);
    uint64_t *ids = malloc(n * sizeof *ids), *truth = malloc(nq * 10 * sizeof *truth), *got = malloc(nq * 10 * sizeof *got);
    qv_hit *hits = malloc(nq * 10 * sizeof *hits);
    size_t *nh = malloc(nq * sizeof *nh);
    ck_assert(ids && truth && got && hits && nh);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < 10; j++) truth[i * 10 + j] = (uint64_t)gt[i * gdim + j];
    qv_index *ix = new_index(dim, QV_METRIC_L2, 0);
    QV_CK(qv_index_add(ix, n, ids, base));
    qv_search_params sp;
    qv_search_params_init(&sp, 10);
    QV_CK(qv_index_search_batch(ix, nq, q, &sp, hits, nh));
    for (size_t i = 0; i < nq * 10; i++) got[i] = hits[i].id;
    double r = recall_at_k(got, nh, 10, truth, 10, nq, 10);
    ck_assert_msg(r == 1.0, "batch recall@10 = %.4f, want 1", r);
    for (size_t i = 0; i < nq; i++) QV_CK(qv_index_search(ix, q + i * dim, &sp, hits + i * 10, &nh[i]));
    for (size_t i = 0; i < nq * 10; i++) got[i] = hits[i].id;
    r = recall_at_k(got, nh, 10, truth, 10, nq, 10);
    ck_assert_msg(r == 1.0, "single-query recall@10 = %.4f, want 1", r);
    qv_index_free(ix);
    qv_free(base); qv_free(q); qv_free(gt);
    free(ids); free(truth); free(got); free(hits); free(nh);
}
END_TEST

/* ---- GPU: p.gpu = QV_GPU_AUTO / QV_GPU_REQUIRE -------------------------------------------
 * Without a device (the usual case here) AUTO answers on the CPU and REQUIRE is refused at
 * qv_index_new. With one -- or on the CPU emulation of CUDA, `make -f gpu/gpu-check.mk
 * emu-flat` -- unfiltered batches of >= 64 queries run on the device, and must match the
 * double-precision reference after every kind of write (the device copy is synced lazily
 * from a watermark, see index/flat.c). */

#define GPU_NQ 70                  /* >= flat.c's GPU_MIN_BATCH (64) */

static qv_index *new_index_gpu(size_t dim, qv_metric m, qv_gpu_mode mode)
{
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_FLAT, (uint32_t)dim, m);
    p.threads = 2;
    p.gpu = mode;
    QV_CK(qv_index_new(&p, &ix));
    return ix;
}

START_TEST(test_gpu_modes)
{
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_FLAT, 8, QV_METRIC_L2);
    p.gpu = QV_GPU_AUTO;                               /* never refused for want of a device */
    QV_CK(qv_index_new(&p, &ix));
    qv_index_params back;
    qv_index_get_params(ix, &back);
    ck_assert_int_eq(back.gpu, QV_GPU_AUTO);
    qv_index_free(ix);
    p.gpu = QV_GPU_REQUIRE;
    ix = (qv_index *)&p;
    if (qv_gpu_available()) {
        QV_CK(qv_index_new(&p, &ix));
        qv_index_free(ix);
    } else {
        QV_CK_FAIL(qv_index_new(&p, &ix), QV_ENODEV);
        ck_assert_ptr_null(ix);
        ck_assert_msg(qv_last_error()[0] != '\0', "QV_ENODEV without a message");
    }
    p.gpu = (qv_gpu_mode)7;
    QV_CK_FAIL(qv_index_new(&p, &ix), QV_EINVAL);
}
END_TEST

/* The test's model of an index: (id, raw vector) pairs, swap-remove like the index. */
typedef struct {
    size_t n, dim;
    float *vec;
    uint64_t *id;
} model;

static void model_add(model *md, qv_index *const *ix, size_t nix, size_t cnt, const uint64_t *ids, const float *v)
{
    for (size_t t = 0; t < nix; t++) QV_CK(qv_index_add(ix[t], cnt, ids, v));
    for (size_t i = 0; i < cnt; i++) {
        size_t row = md->n;
        for (size_t j = 0; j < md->n; j++)
            if (md->id[j] == ids[i]) row = j;
        if (row == md->n) md->id[md->n++] = ids[i];
        memcpy(md->vec + row * md->dim, v + i * md->dim, md->dim * sizeof(float));
    }
}

static void model_remove(model *md, qv_index *const *ix, size_t nix, size_t cnt, const uint64_t *ids)
{
    size_t want = 0;
    for (size_t i = 0; i < cnt; i++)
        for (size_t j = 0; j < md->n; j++)
            if (md->id[j] == ids[i]) {
                md->id[j] = md->id[md->n - 1];
                memcpy(md->vec + j * md->dim, md->vec + (md->n - 1) * md->dim, md->dim * sizeof(float));
                md->n--;
                want++;
                break;
            }
    for (size_t t = 0; t < nix; t++) {
        size_t got = 0;
        QV_CK(qv_index_remove(ix[t], cnt, ids, &got));
        ck_assert_uint_eq(got, want);
        ck_assert_uint_eq(qv_index_size(ix[t]), md->n);
    }
}

static void model_check(const model *md, qv_index *const *ix, size_t nix, qv_metric m, const float *q, size_t k,
                        const char *step)
{
    for (size_t t = 0; t < nix; t++) {
        char tag[96];
        snprintf(tag, sizeof tag, "gpu %s, %s", t ? "REQUIRE" : "AUTO", step);
        check_all_queries(ix[t], m, md->vec, md->id, md->n, md->dim, q, GPU_NQ, k, tag);
    }
}

/* Every kind of write between batches: appends (the sync uploads only the new rows),
 * replaced rows and swap-removes (the watermark drops to the changed row), several writes
 * with no search between, removal down to fewer rows than k. _i picks the metric. */
START_TEST(test_gpu_writes_then_batches)
{
    const qv_metric m = (qv_metric)(QV_METRIC_L2 + _i);
    const size_t dim = 24, cap = 1400, k = 10;
    float *v = random_vectors(2 * cap, dim, 900 + (uint64_t)_i), *q = random_vectors(GPU_NQ, dim, 950 + (uint64_t)_i);
    uint64_t *ids = malloc(cap * sizeof *ids);
    model md = {0, dim, malloc(cap * dim * sizeof(float)), malloc(cap * sizeof(uint64_t))};
    qv_index *ix[2] = {new_index_gpu(dim, m, QV_GPU_AUTO), NULL};
    size_t nix = 1, used = 0;
    ck_assert(ids && md.vec && md.id);
    if (qv_gpu_available()) ix[nix++] = new_index_gpu(dim, m, QV_GPU_REQUIRE);

    for (size_t i = 0; i < 600; i++) ids[i] = i * 7 + 1;
    model_add(&md, ix, nix, 600, ids, v);
    used += 600;
    model_check(&md, ix, nix, m, q, k, "first upload");
    for (size_t i = 0; i < 300; i++) ids[i] = (600 + i) * 7 + 1;     /* appends */
    model_add(&md, ix, nix, 300, ids, v + used * dim);
    used += 300;
    model_check(&md, ix, nix, m, q, k, "appended");
    model_check(&md, ix, nix, m, q, 1, "appended, k=1");
    model_check(&md, ix, nix, m, q, 100, "appended, k=100");
    for (size_t i = 0; i < 50; i++) ids[i] = (i * 17 + 250) * 7 + 1;  /* replace rows 250.. */
    model_add(&md, ix, nix, 50, ids, v + used * dim);
    used += 50;
    model_check(&md, ix, nix, m, q, k, "replaced");
    ids[0] = md.id[md.n - 1];                                         /* the last row alone */
    model_remove(&md, ix, nix, 1, ids);
    model_check(&md, ix, nix, m, q, k, "last row removed");
    for (size_t i = 0; i < 40; i++) ids[i] = (i * 23 + 3) * 7 + 1;    /* middle rows */
    ids[40] = md.id[md.n - 1];                                        /* the last row */
    ids[41] = 5;                                                      /* absent */
    model_remove(&md, ix, nix, 42, ids);
    model_check(&md, ix, nix, m, q, k, "removed");
    /* Several writes, one sync: new and replaced ids, then removals, then appends. */
    for (size_t i = 0; i < 100; i++) ids[i] = (i * 11 + 850) * 7 + 1;
    model_add(&md, ix, nix, 100, ids, v + used * dim);
    used += 100;
    for (size_t i = 0; i < 30; i++) ids[i] = (i * 31 + 10) * 7 + 1;
    model_remove(&md, ix, nix, 30, ids);
    for (size_t i = 0; i < 20; i++) ids[i] = 100000 + i;
    model_add(&md, ix, nix, 20, ids, v + used * dim);
    used += 20;
    model_check(&md, ix, nix, m, q, k, "mixed writes");
    /* Filters are answered on the CPU even in a large batch. */
    {
        uint64_t allow[(1400 * 7 + 64) / 64 + 1] = {0};
        float *sub = malloc(md.n * dim * sizeof *sub);
        uint64_t *sub_id = malloc(md.n * sizeof *sub_id), *ref = malloc(GPU_NQ * k * sizeof *ref);
        qv_hit *hits = malloc(GPU_NQ * k * sizeof *hits);
        size_t nb[GPU_NQ], nsub = 0;
        qv_search_params sp;
        ck_assert(sub && sub_id && ref && hits);
        for (size_t j = 0; j < md.n; j++)
            if (md.id[j] < 1400 * 7 && md.id[j] % 3 != 0) {
                allow[md.id[j] / 64] |= 1ull << (md.id[j] % 64);
                memcpy(sub + nsub * dim, md.vec + j * dim, dim * sizeof *sub);
                sub_id[nsub++] = md.id[j];
            }
        ref_knn(sub, nsub, dim, q, GPU_NQ, k, m, ref);
        qv_search_params_init(&sp, (uint32_t)k);
        sp.allow_bits = allow;
        sp.allow_nbits = 1400 * 7;
        for (size_t t = 0; t < nix; t++) {
            QV_CK(qv_index_search_batch(ix[t], GPU_NQ, q, &sp, hits, nb));
            for (size_t i = 0; i < GPU_NQ; i++)
                check_hits(m, sub, sub_id, nsub, dim, q + i * dim, k, ref + i * k, hits + i * k, nb[i],
                           "gpu index, allow_bits batch");
        }
        free(sub); free(sub_id); free(ref); free(hits);
    }
    /* Down to fewer rows than k: the device pads with row -1, the index gives n hits. */
    while (md.n > 4) {
        size_t cnt = md.n - 4 < 64 ? md.n - 4 : 64;
        memcpy(ids, md.id + md.n - cnt, cnt * sizeof *ids);
        model_remove(&md, ix, nix, cnt, ids);
    }
    model_check(&md, ix, nix, m, q, k, "n < k");
    for (size_t t = 0; t < nix; t++) qv_index_free(ix[t]);
    free(v); free(q); free(ids); free(md.vec); free(md.id);
}
END_TEST

typedef struct {
    qv_index *ix;
    const float *q;
    int failures;
} gpu_reader_arg;

static void *gpu_reader(void *vp)
{
    gpu_reader_arg *a = vp;
    qv_search_params sp;
    qv_hit *hits = malloc(GPU_NQ * 5 * sizeof *hits);
    size_t nb[GPU_NQ];
    qv_search_params_init(&sp, 5);
    for (int i = 0; i < (sanitized() ? 4 : 12) && hits; i++) {
        if (qv_index_search_batch(a->ix, GPU_NQ, a->q, &sp, hits, nb) != QV_OK) a->failures++;
        for (size_t r = 0; r < GPU_NQ; r++)
            for (size_t j = 1; j < nb[r]; j++)
                if (hits[r * 5 + j - 1].score > hits[r * 5 + j].score) a->failures++;
    }
    if (!hits) a->failures++;
    free(hits);
    return NULL;
}

/* GPU batches in two threads while a third adds and removes; then exact again. */
START_TEST(test_gpu_concurrent_batches)
{
    const size_t dim = 16, n = 1600;
    float *v = random_vectors(n, dim, 990), *q = random_vectors(GPU_NQ, dim, 991);
    uint64_t *ids = malloc(n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    qv_index *ix = new_index_gpu(dim, QV_METRIC_L2, QV_GPU_AUTO);
    QV_CK(qv_index_add(ix, n / 2, ids, v));
    pthread_t th[2];
    gpu_reader_arg args[2] = {{ix, q, 0}, {ix, q, 0}};
    for (int t = 0; t < 2; t++) ck_assert_int_eq(pthread_create(&th[t], NULL, gpu_reader, &args[t]), 0);
    for (size_t i = n / 2; i + 50 <= n; i += 50) {
        QV_CK(qv_index_add(ix, 50, ids + i, v + i * dim));
        QV_CK(qv_index_remove(ix, 10, ids + i - 200, NULL));
    }
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    ck_assert_int_eq(args[0].failures + args[1].failures, 0);
    /* What is left: ids [0, n) minus the removed ones, each with its own vector. */
    model md = {0, dim, malloc(n * dim * sizeof(float)), malloc(n * sizeof(uint64_t))};
    ck_assert(md.vec && md.id);
    for (size_t i = 0; i < n; i++) {
        int gone = 0;
        for (size_t w = n / 2; w + 50 <= n; w += 50) gone |= i >= w - 200 && i < w - 190;
        if (gone) continue;
        md.id[md.n] = i;
        memcpy(md.vec + md.n++ * dim, v + i * dim, dim * sizeof(float));
    }
    ck_assert_uint_eq(qv_index_size(ix), md.n);
    model_check(&md, &ix, 1, QV_METRIC_L2, q, 10, "after concurrent writes");
    qv_index_free(ix);
    free(v); free(q); free(ids); free(md.vec); free(md.id);
}
END_TEST

/* Bit-for-bit equal results (both indexes answered on the same device). */
static void batch_equal(qv_index *a, qv_index *b, const float *q, size_t nq, size_t k)
{
    qv_hit *ha = malloc(nq * k * sizeof *ha), *hb = malloc(nq * k * sizeof *hb);
    size_t na[GPU_NQ], nb[GPU_NQ];
    ck_assert(ha && hb && nq <= GPU_NQ);
    results(a, q, nq, k, ha, na);
    results(b, q, nq, k, hb, nb);
    ck_assert_mem_eq(na, nb, nq * sizeof *na);
    for (size_t i = 0; i < nq; i++) same_hits(ha + i * k, hb + i * k, na[i]);
    free(ha);
    free(hb);
}

static void restore_env(const char *name, const char *saved)
{
    if (saved) setenv(name, saved, 1);
    else unsetenv(name);
}

/* Only on the CUDA emulation, which can make the device run out of memory (QV_EMU_MEM):
 * REQUIRE reports GPU errors (which proves the batch went to the device), AUTO answers
 * on the CPU, and neither is stuck afterwards. */
START_TEST(test_gpu_errors_fall_back)
{
    char name[256];
    if (!qv_gpu_available() || qv_gpu_device_name(name, sizeof name) != QV_OK || !strstr(name, "emulation")) {
        test_skip(TEST_SKIP_OPTIONAL, "flat: no CUDA emulation (make -f gpu/gpu-check.mk emu-flat): GPU error paths");
        return;
    }
    const size_t dim = 16, n = 500, k = 10;
    float *v = random_vectors(n + 1, dim, 1000), *q = random_vectors(GPU_NQ, dim, 1001);
    uint64_t *ids = malloc((n + 1) * sizeof *ids);
    qv_hit *hits = malloc(GPU_NQ * k * sizeof *hits);
    size_t nb[GPU_NQ];
    char *mem_saved = getenv("QV_EMU_MEM") ? strdup(getenv("QV_EMU_MEM")) : NULL;
    char *gpu_saved = getenv("QV_GPU") ? strdup(getenv("QV_GPU")) : NULL;
    qv_search_params sp;
    ck_assert(ids && hits);
    for (size_t i = 0; i <= n; i++) ids[i] = i + 10;
    model md = {0, dim, malloc((n + 1) * dim * sizeof(float)), malloc((n + 1) * sizeof(uint64_t))};
    qv_index *ix[2] = {new_index_gpu(dim, QV_METRIC_L2, QV_GPU_AUTO), new_index_gpu(dim, QV_METRIC_L2, QV_GPU_REQUIRE)};
    model_add(&md, ix, 2, n, ids, v);
    model_check(&md, ix, 2, QV_METRIC_L2, q, k, "emulated device");
    batch_equal(ix[0], ix[1], q, GPU_NQ, k);

    /* A device with 64 bytes free: the upload of the new row or the workspace fails. */
    setenv("QV_EMU_MEM", "64", 1);
    model_add(&md, ix, 2, 1, ids + n, v + n * dim);
    qv_search_params_init(&sp, (uint32_t)k);
    QV_CK_FAIL(qv_index_search_batch(ix[1], GPU_NQ, q, &sp, hits, nb), QV_ENOMEM);
    for (size_t i = 0; i < GPU_NQ; i++) ck_assert_uint_eq(nb[i], 0);
    QV_CK(qv_index_search_batch(ix[1], 63, q, &sp, hits, nb));          /* small batch: CPU */
    QV_CK(qv_index_search(ix[1], q, &sp, hits, nb));                   /* single query: CPU */
    sp.accept = accept_odd;                                            /* filtered: CPU */
    QV_CK(qv_index_search_batch(ix[1], GPU_NQ, q, &sp, hits, nb));
    sp.accept = NULL;
    check_all_queries(ix[0], QV_METRIC_L2, md.vec, md.id, md.n, dim, q, GPU_NQ, k, "AUTO, device out of memory");

    /* Memory back: REQUIRE uploads again, AUTO uses the device again (ENOMEM is not fatal). */
    restore_env("QV_EMU_MEM", mem_saved);
    model_check(&md, ix, 2, QV_METRIC_L2, q, k, "device memory back");
    batch_equal(ix[0], ix[1], q, GPU_NQ, k);

    /* QV_GPU=off: REQUIRE has no device now, AUTO answers on the CPU. */
    setenv("QV_GPU", "off", 1);
    QV_CK_FAIL(qv_index_search_batch(ix[1], GPU_NQ, q, &sp, hits, nb), QV_ENODEV);
    check_all_queries(ix[0], QV_METRIC_L2, md.vec, md.id, md.n, dim, q, GPU_NQ, k, "AUTO, QV_GPU=off");
    restore_env("QV_GPU", gpu_saved);
    model_check(&md, ix, 2, QV_METRIC_L2, q, k, "device back");

    qv_index_free(ix[0]);
    qv_index_free(ix[1]);
    free(mem_saved); free(gpu_saved);
    free(v); free(q); free(ids); free(hits); free(md.vec); free(md.id);
}
END_TEST

extern Suite *qv_flat_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_flat_suite(void)
{
    Suite *s = suite_create("flat");
    TCase *tc = tcase_create("flat");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_exact_vs_reference);
    tcase_add_test(tc, test_empty_and_bad_args);
    tcase_add_test(tc, test_add_replace_remove);
    tcase_add_test(tc, test_filters);
    tcase_add_test(tc, test_save_load_roundtrip);
    tcase_add_test(tc, test_corrupt_files);
    tcase_add_test(tc, test_alloc_failures);
    tcase_add_test(tc, test_concurrent_search_and_write);
    tcase_add_test(tc, test_siftsmall_recall);
    suite_add_tcase(s, tc);
    tc = tcase_create("gpu");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_gpu_modes);
    tcase_add_loop_test(tc, test_gpu_writes_then_batches, 0, 3);
    tcase_add_test(tc, test_gpu_concurrent_batches);
    tcase_add_test(tc, test_gpu_errors_fall_back);
    suite_add_tcase(s, tc);
    return s;
}
