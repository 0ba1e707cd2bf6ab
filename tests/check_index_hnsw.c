/*
 * tests/check_index_hnsw.c -- the HNSW index: exact agreement with brute force on tiny
 * sets, recall on siftsmall (skipped without the data), determinism with a fixed seed and
 * one thread, save/load round trips, damaged files (truncation, flipped bytes, bodies with
 * a valid checksum but broken graph fields), delete with repair (recall against the
 * remaining points, slot reuse, graph self-check), replacement of an existing id, filters
 * at several selectivities, max_visits and allocation failures during add.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "index/hnsw.h"
#include "index/hnsw_walk.h"
#include "tests/test_util.h"

static qv_index *make_index(size_t dim, qv_metric metric, uint32_t m, uint32_t efc, uint32_t threads)
{
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_HNSW, (uint32_t)dim, metric);
    p.m = m;
    p.ef_construction = efc;
    p.threads = threads;
    QV_CK(qv_index_new(&p, &ix));
    return ix;
}

static uint64_t *seq_ids(size_t n, uint64_t base)
{
    uint64_t *ids = malloc(n * sizeof *ids + 1);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++) ids[i] = base + i;
    return ids;
}

static void assert_graph_sound(const qv_index *ix)
{
    qv_hnsw_report r;
    QV_CK(qv_hnsw_check(ix, &r));
    ck_assert_uint_eq(r.live, qv_index_size(ix));
    ck_assert(r.entry_ok);
    ck_assert_uint_eq(r.dangling + r.self_links + r.bad_level + r.over_degree, 0);
}

static void assert_graph_ok(const qv_index *ix)
{
    qv_hnsw_report r;
    QV_CK(qv_hnsw_check(ix, &r));
    ck_assert_uint_eq(r.live, qv_index_size(ix));
    ck_assert_msg(r.entry_ok, "entry point not live / not on top level");
    ck_assert_uint_eq(r.dangling, 0);
    ck_assert_uint_eq(r.self_links, 0);
    ck_assert_uint_eq(r.bad_level, 0);
    ck_assert_uint_eq(r.over_degree, 0);
    ck_assert_msg(r.reachable == r.live, "reachable %zu of %zu", r.reachable, r.live);
}

/* Search nq queries; ids into got (nq*k), counts into n_got. */
static void search_all(const qv_index *ix, const float *q, size_t nq, size_t dim,
                       const qv_search_params *sp, uint64_t *got, size_t *n_got)
{
    qv_hit *hits = malloc(sp->k * sizeof *hits);
    ck_assert_ptr_nonnull(hits);
    for (size_t i = 0; i < nq; i++) {
        QV_CK(qv_index_search(ix, q + i * dim, sp, hits, &n_got[i]));
        for (size_t j = 0; j < n_got[i]; j++) got[i * sp->k + j] = hits[j].id;
    }
    free(hits);
}

/* ---- tiny sets: exact ------------------------------------------------------------- */

START_TEST(test_tiny_exact)
{
    static const qv_metric metrics[] = {QV_METRIC_L2, QV_METRIC_IP, QV_METRIC_COSINE};
    const size_t dim = 8, nq = 20, k = 10;
    for (size_t n = 1; n <= 60; n += 19) {
        for (int mi = 0; mi < 3; mi++) {
            float *x = random_vectors(n, dim, 11 + n);
            float *q = random_vectors(nq, dim, 99);
            uint64_t *ids = seq_ids(n, 0);
            qv_index *ix = make_index(dim, metrics[mi], 4, 32, 2);
            QV_CK(qv_index_add(ix, n, ids, x));
            ck_assert_uint_eq(qv_index_size(ix), n);
            assert_graph_ok(ix);
            uint64_t want[20 * 10], got[20 * 10];
            size_t n_got[20];
            ref_knn(x, n, dim, q, nq, k, metrics[mi], want);
            qv_search_params sp;
            qv_search_params_init(&sp, (uint32_t)k);
            sp.ef = 64;                                 /* >= n: the walk sees everything */
            search_all(ix, q, nq, dim, &sp, got, n_got);
            size_t kk = n < k ? n : k;
            for (size_t i = 0; i < nq; i++) {
                ck_assert_uint_eq(n_got[i], kk);
                for (size_t j = 0; j < kk; j++)
                    ck_assert_msg(got[i * k + j] == want[i * k + j], "n=%zu metric=%d q=%zu rank %zu: %llu vs %llu",
                                  n, (int)metrics[mi], i, j, (unsigned long long)got[i * k + j],
                                  (unsigned long long)want[i * k + j]);
            }
            /* Scores follow the public convention. */
            qv_hit h1[1];
            size_t nh;
            qv_search_params_init(&sp, 1);
            QV_CK(qv_index_search(ix, q, &sp, h1, &nh));
            const float *best = x + h1[0].id * dim;
            double ref = metrics[mi] == QV_METRIC_L2 ? ref_l2sq(q, best, dim)
                       : metrics[mi] == QV_METRIC_IP ? ref_dot(q, best, dim) : ref_cosine(q, best, dim);
            ck_assert_double_eq_tol(h1[0].score, ref, 1e-4 * fmax(1.0, fabs(ref)));
            qv_index_free(ix);
            free(x); free(q); free(ids);
        }
    }
}
END_TEST

START_TEST(test_empty_and_absent)
{
    qv_index *ix = make_index(4, QV_METRIC_L2, 8, 50, 1);
    float q[4] = {1, 2, 3, 4};
    qv_hit hits[5];
    size_t nh = 99, nr = 99;
    qv_search_params sp;
    qv_search_params_init(&sp, 5);
    QV_CK(qv_index_search(ix, q, &sp, hits, &nh));
    ck_assert_uint_eq(nh, 0);
    uint64_t id = 7;
    QV_CK(qv_index_remove(ix, 1, &id, &nr));
    ck_assert_uint_eq(nr, 0);
    QV_CK(qv_index_add(ix, 1, &id, q));
    QV_CK(qv_index_remove(ix, 1, &id, &nr));
    ck_assert_uint_eq(nr, 1);
    ck_assert_uint_eq(qv_index_size(ix), 0);
    QV_CK(qv_index_search(ix, q, &sp, hits, &nh));
    ck_assert_uint_eq(nh, 0);
    assert_graph_ok(ix);
    QV_CK(qv_index_add(ix, 1, &id, q));             /* the freed slot comes back */
    QV_CK(qv_index_search(ix, q, &sp, hits, &nh));
    ck_assert_uint_eq(nh, 1);
    ck_assert_uint_eq(hits[0].id, 7);
    ck_assert(qv_index_memory(ix) > 0);
    qv_index_free(ix);
}
END_TEST

/* ---- siftsmall: recall ------------------------------------------------------------ */

typedef struct {
    float *base, *query;
    int32_t *gt;
    size_t n, nq, dim, gt_k;
} dataset;

/* siftsmall, or NULL when the files are missing. Under sanitizers the base is cut to
 * 2000 points (ground truth recomputed). */
static int load_sift(dataset *d)
{
    char b[4096], q[4096], g[4096];
    memset(d, 0, sizeof *d);
    if (!data_path(b, sizeof b, "siftsmall", "base.fvecs") || !data_path(q, sizeof q, "siftsmall", "query.fvecs") ||
        !data_path(g, sizeof g, "siftsmall", "groundtruth.ivecs")) {
        test_skip(TEST_SKIP_MISSING, "hnsw: siftsmall not found (%s)", b);
        return 0;
    }
    size_t qd, gk;
    QV_CK(qv_read_vectors(b, &d->base, &d->n, &d->dim));
    QV_CK(qv_read_vectors(q, &d->query, &d->nq, &qd));
    QV_CK(qv_read_ivecs(g, &d->gt, &gk, &d->gt_k));
    ck_assert_uint_eq(qd, d->dim);
    if (sanitized()) {
        d->n = 2000;
        d->nq = 30;
        uint64_t *t = malloc(d->nq * 100 * sizeof *t);
        ck_assert_ptr_nonnull(t);
        ref_knn(d->base, d->n, d->dim, d->query, d->nq, 100, QV_METRIC_L2, t);
        for (size_t i = 0; i < d->nq * 100; i++) d->gt[i] = (int32_t)t[i];
        d->gt_k = 100;
        free(t);
    }
    return 1;
}

static void free_sift(dataset *d)
{
    qv_free(d->base);
    qv_free(d->query);
    qv_free(d->gt);
}

static double recall_vs_gt(const qv_index *ix, const dataset *d, uint32_t ef, size_t k)
{
    uint64_t *got = malloc(d->nq * k * sizeof *got), *truth = malloc(d->nq * k * sizeof *truth);
    size_t *n_got = malloc(d->nq * sizeof *n_got);
    ck_assert(got && truth && n_got);
    for (size_t i = 0; i < d->nq; i++)
        for (size_t j = 0; j < k; j++) truth[i * k + j] = (uint64_t)d->gt[i * d->gt_k + j];
    qv_search_params sp;
    qv_search_params_init(&sp, (uint32_t)k);
    sp.ef = ef;
    search_all(ix, d->query, d->nq, d->dim, &sp, got, n_got);
    double r = recall_at_k(got, n_got, k, truth, k, d->nq, k);
    free(got); free(truth); free(n_got);
    return r;
}

START_TEST(test_siftsmall_recall)
{
    dataset d;
    if (!load_sift(&d)) return;
    uint64_t *ids = seq_ids(d.n, 0);
    qv_index *ix = make_index(d.dim, QV_METRIC_L2, 16, 200, 0);
    QV_CK(qv_index_add(ix, d.n, ids, d.base));
    assert_graph_ok(ix);
    double r64 = recall_vs_gt(ix, &d, 64, 10), r200 = recall_vs_gt(ix, &d, 200, 10);
    ck_assert_msg(r200 >= 0.99, "recall@10 at ef=200: %.4f", r200);
    ck_assert_msg(r64 >= 0.95, "recall@10 at ef=64: %.4f", r64);
    /* Batch search gives the same answers as single searches. */
    qv_search_params sp;
    qv_search_params_init(&sp, 10);
    sp.ef = 64;
    qv_hit *hb = malloc(d.nq * 10 * sizeof *hb), hs[10];
    size_t *nb = malloc(d.nq * sizeof *nb), ns;
    QV_CK(qv_index_search_batch(ix, d.nq, d.query, &sp, hb, nb));
    for (size_t i = 0; i < d.nq; i++) {
        QV_CK(qv_index_search(ix, d.query + i * d.dim, &sp, hs, &ns));
        ck_assert_uint_eq(ns, nb[i]);
        for (size_t j = 0; j < ns; j++) ck_assert_uint_eq(hs[j].id, hb[i * 10 + j].id);
    }
    free(hb); free(nb);
    qv_index_free(ix);
    free(ids);
    free_sift(&d);
}
END_TEST

/* ---- determinism and persistence -------------------------------------------------- */

static void *save_buf(const qv_index *ix, size_t *len)
{
    void *buf = NULL;
    QV_CK(qv_index_save_mem(ix, &buf, len));
    return buf;
}

/* ---- build codes (hnsw_build_codes.c) ---------------------------------------------- */

/* The insertion walk on 8-bit codes, against the float walk from the same entry on a
 * siftsmall graph: its ef results carry exact distances (re-scored), ascending, and its
 * ten best find the true neighbours about as often. */
START_TEST(test_build_codes_walk)
{
    dataset d;
    if (!load_sift(&d)) return;
    uint64_t *ids = seq_ids(d.n, 0);
    qv_index *ix = make_index(d.dim, QV_METRIC_L2, 16, 200, 1);
    QV_CK(qv_index_add(ix, d.n, ids, d.base));
    qv_hnsw *h = ix->impl;
    qv_hnsw_bcodes *b = NULL;
    QV_CK(qv_hnsw_bcodes_new(h, d.n, d.base, 1, &b));
    qv_hnsw_bcodes_encode(h, b, ix->pool);
    qv_hnsw_scratch *s = qv_hnsw_scratch_get(h);
    ck_assert_ptr_nonnull(s);
    QV_CK(qv_hnsw_scratch_fit(s, 200, 0));
    const size_t ef = 200, k = 10;
    size_t hit_f = 0, hit_c = 0;
    for (size_t qi = 0; qi < d.nq; qi++) {
        const float *q = d.query + qi * d.dim;
        uint64_t e = h->entry;
        uint32_t ep = qv_hnsw_descend(h, q, (uint32_t)(e >> 32), (unsigned)(e & 0xffffffffu), 0);
        const int32_t *gt = d.gt + qi * d.gt_k;
        size_t nf = qv_hnsw_build_layer(h, s, q, NULL, ep, ef, 0);
        ck_assert_uint_ge(nf, k);
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < k; j++) hit_f += h->ids[s->work[i].id] == (uint64_t)gt[j];
        qv_hnsw_bquery bq;
        qv_hnsw_bcodes_query(b, q, 0, &bq);
        size_t nc = qv_hnsw_build_layer(h, s, q, &bq, ep, ef, 0);
        ck_assert_uint_ge(nc, k);
        for (size_t i = 0; i < nc; i++) {
            double want = ref_l2sq(q, (const float *)qv_hnsw_row(h, s->work[i].id), d.dim);
            ck_assert_msg(fabs(s->work[i].d - want) <= 1e-4 * want + 1e-3,
                          "query %zu entry %zu: %g, exact %g", qi, i, s->work[i].d, want);
            if (i) ck_assert(s->work[i - 1].d <= s->work[i].d);
        }
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < k; j++) hit_c += h->ids[s->work[i].id] == (uint64_t)gt[j];
    }
    double rf = (double)hit_f / (double)(d.nq * k), rc = (double)hit_c / (double)(d.nq * k);
    ck_assert_msg(rf >= 0.97, "float walk recall@10 %.4f", rf);
    ck_assert_msg(rc >= rf - 0.01, "code walk recall@10 %.4f against %.4f on floats", rc, rf);
    qv_hnsw_scratch_put(h, s);
    qv_hnsw_bcodes_free(b);
    qv_index_free(ix);
    free(ids);
    free_sift(&d);
}
END_TEST

/* A graph built on codes (the batch at least qv_hnsw_bcodes_min) against one built on
 * floats: a different graph (the codes were used), sound, and with the same recall. */
START_TEST(test_build_codes_recall)
{
    dataset d;
    if (!load_sift(&d)) return;
    uint64_t *ids = seq_ids(d.n, 0);
    qv_index *ix[2];
    void *buf[2];
    size_t len[2];
    double r16[2], r64[2];
    for (int codes = 0; codes < 2; codes++) {
        qv_hnsw_bcodes_min = codes ? 1 : SIZE_MAX;
        ix[codes] = make_index(d.dim, QV_METRIC_L2, 16, 200, 1);
        QV_CK(qv_index_add(ix[codes], d.n, ids, d.base));
        assert_graph_ok(ix[codes]);
        r16[codes] = recall_vs_gt(ix[codes], &d, 16, 10);
        r64[codes] = recall_vs_gt(ix[codes], &d, 64, 10);
        buf[codes] = save_buf(ix[codes], &len[codes]);
    }
    /* The same on 2 threads (the codes are shared by the workers; TSan runs this suite's
     * build too): sound, and as good. */
    qv_hnsw_bcodes_min = 1;
    qv_index *ix2 = make_index(d.dim, QV_METRIC_L2, 16, 200, 2);
    QV_CK(qv_index_add(ix2, d.n, ids, d.base));
    assert_graph_ok(ix2);
    double r64_2 = recall_vs_gt(ix2, &d, 64, 10);
    ck_assert_msg(r64_2 >= r64[0] - 0.005, "ef 64, 2 threads: recall %.4f on codes, %.4f on floats", r64_2, r64[0]);
    qv_index_free(ix2);
    qv_hnsw_bcodes_min = QV_HNSW_BCODES_MIN;
    ck_assert_msg(len[0] != len[1] || memcmp(buf[0], buf[1], len[0]) != 0, "the codes changed nothing");
    ck_assert_msg(r16[1] >= r16[0] - 0.01, "ef 16: recall %.4f on codes, %.4f on floats", r16[1], r16[0]);
    ck_assert_msg(r64[1] >= r64[0] - 0.005, "ef 64: recall %.4f on codes, %.4f on floats", r64[1], r64[0]);
    for (int i = 0; i < 2; i++) {
        qv_free(buf[i]);
        qv_index_free(ix[i]);
    }
    free(ids);
    free_sift(&d);
}
END_TEST

/* ---- codes kept across a stream of small adds (hnsw_build_codes.c) ----------------- */

/* Whether the index holds kept codes now (read under write_lock, as the reaper writes it). */
static int has_kept_codes(const qv_index *ix)
{
    qv_hnsw *h = ix->impl;
    pthread_mutex_lock(&h->write_lock);
    int r = h->bcodes != NULL;
    pthread_mutex_unlock(&h->write_lock);
    return r;
}

typedef struct {
    const qv_index *ix;
    const dataset *d;
    int stop;                          /* atomic */
    size_t done;
} kept_searcher;

static void *kept_search(void *arg)
{
    kept_searcher *s = arg;
    qv_search_params sp;
    qv_search_params_init(&sp, 10);
    qv_hit hits[10];
    size_t n;
    for (size_t i = 0; !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE); i++) {
        if (qv_index_search(s->ix, s->d->query + (i % s->d->nq) * s->d->dim, &sp, hits, &n) != QV_OK) return NULL;
        s->done++;
    }
    return NULL;
}

/* siftsmall added in batches of n/50 (an import's 1,000-point adds, scaled down): with
 * the threshold at n/10, the stream walks on kept codes from its 5th batch on; 2 build
 * threads, and a search thread running throughout (TSan runs this suite). The graph
 * differs from the float one (the codes were used), is sound, and keeps the float
 * build's recall; the codes are dropped once the adds stop for the idle time. */
START_TEST(test_build_codes_kept_recall)
{
    dataset d;
    if (!load_sift(&d)) return;
    uint64_t *ids = seq_ids(d.n, 0);
    const size_t batch = d.n / 50;
    qv_index *ix[2];
    void *buf[2];
    size_t len[2];
    double r16[2], r64[2];
    unsigned idle = qv_hnsw_bcodes_idle_ms;
    qv_hnsw_bcodes_idle_ms = 60000;                /* no drop while the stream runs */
    for (int codes = 0; codes < 2; codes++) {
        qv_hnsw_bcodes_min = codes ? d.n / 10 : SIZE_MAX;
        ix[codes] = make_index(d.dim, QV_METRIC_L2, 16, 200, 2);
        kept_searcher ks = {ix[codes], &d, 0, 0};
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, kept_search, &ks), 0);
        int seen = 0;
        for (size_t at = 0; at < d.n; at += batch) {
            size_t k = d.n - at < batch ? d.n - at : batch;
            QV_CK(qv_index_add(ix[codes], k, ids + at, d.base + at * d.dim));
            seen |= has_kept_codes(ix[codes]);
        }
        __atomic_store_n(&ks.stop, 1, __ATOMIC_RELEASE);
        pthread_join(t, NULL);
        ck_assert_int_eq(seen, codes);
        ck_assert_int_eq(has_kept_codes(ix[codes]), codes);
        assert_graph_ok(ix[codes]);
        r16[codes] = recall_vs_gt(ix[codes], &d, 16, 10);
        r64[codes] = recall_vs_gt(ix[codes], &d, 64, 10);
        buf[codes] = save_buf(ix[codes], &len[codes]);
    }
    qv_hnsw_bcodes_min = QV_HNSW_BCODES_MIN;
    ck_assert_msg(len[0] != len[1] || memcmp(buf[0], buf[1], len[0]) != 0, "the codes changed nothing");
    ck_assert_msg(r16[1] >= r16[0] - 0.01, "ef 16: recall %.4f on kept codes, %.4f on floats", r16[1], r16[0]);
    ck_assert_msg(r64[1] >= r64[0] - 0.01, "ef 64: recall %.4f on kept codes, %.4f on floats", r64[1], r64[0]);

    /* Freed as designed: held while adds come, counted in memory(), dropped by the
     * reaper once no add came for the idle time (here 100 ms), memory() back down. */
    qv_hnsw *h = ix[1]->impl;
    size_t rows = h->bcodes->cap * (h->bcodes->stride + sizeof(float));
    qv_hnsw_bcodes_idle_ms = 100;
    QV_CK(qv_index_add(ix[1], batch, ids, d.base));          /* a replacing add: re-armed */
    ck_assert(has_kept_codes(ix[1]));
    size_t with = qv_index_memory(ix[1]);
    for (int i = 0; i < 500 && has_kept_codes(ix[1]); i++) usleep(10000);
    ck_assert_msg(!has_kept_codes(ix[1]), "kept codes still held 5 s after the last add");
    size_t without = qv_index_memory(ix[1]);
    ck_assert_msg(with >= without + rows - rows / 32, "memory %zu with the codes, %zu without (rows %zu)", with, without, rows);
    /* A later short add does not bring them back (the stream starts again from 0). */
    QV_CK(qv_index_add(ix[1], batch, ids + batch, d.base + batch * d.dim));
    ck_assert(!has_kept_codes(ix[1]));
    qv_hnsw_bcodes_idle_ms = idle;
    assert_graph_ok(ix[1]);
    for (int i = 0; i < 2; i++) {
        qv_free(buf[i]);
        qv_index_free(ix[i]);
    }
    free(ids);
    free_sift(&d);
}
END_TEST

/* Out of memory while the kept codes are made or grown: the add still succeeds, all of
 * it, on floats (no codes afterwards); enough memory: on codes. */
START_TEST(test_build_codes_kept_alloc_failure)
{
    const size_t dim = 8, batch = 50, n = 20 * batch;
    float *x = random_vectors(n + batch, dim, 47);
    uint64_t *ids = seq_ids(n + batch, 0);
    unsigned idle = qv_hnsw_bcodes_idle_ms;
    qv_hnsw_bcodes_idle_ms = 60000;
    qv_hnsw_bcodes_min = n + batch;                /* the 21st add of 50 starts the codes */
    int fell_back = 0, on_codes = 0;
    for (long i = 0; i < 200 && !on_codes; i++) {
        qv_index *ix = make_index(dim, QV_METRIC_L2, 8, 40, 2);
        for (size_t at = 0; at < n; at += batch) QV_CK(qv_index_add(ix, batch, ids + at, x + at * dim));
        ck_assert(!has_kept_codes(ix));
        qv_alloc_fail_after(i);
        int rc = qv_index_add(ix, batch, ids + n, x + n * dim);
        qv_alloc_fail_after(-1);
        if (rc == QV_OK) {
            ck_assert_uint_eq(qv_index_size(ix), n + batch);
            assert_graph_ok(ix);
            if (has_kept_codes(ix)) on_codes = 1;
            else fell_back = 1;
        } else {
            ck_assert_msg(rc == QV_ENOMEM, "step %ld: %s", i, qv_last_error());
            ck_assert_uint_eq(qv_index_size(ix), n);
        }
        qv_index_free(ix);
    }
    qv_hnsw_bcodes_min = QV_HNSW_BCODES_MIN;
    qv_hnsw_bcodes_idle_ms = idle;
    ck_assert_msg(fell_back, "no allocation failure left the add on floats");
    ck_assert_msg(on_codes, "the add never got its codes");
    free(x);
    free(ids);
}
END_TEST

START_TEST(test_deterministic_single_thread)
{
    const size_t n = 1500, dim = 12;
    float *x = random_vectors(n, dim, 5);
    uint64_t *ids = seq_ids(n, 1000);
    size_t l1, l2;
    qv_index *a = make_index(dim, QV_METRIC_L2, 8, 60, 1), *b = make_index(dim, QV_METRIC_L2, 8, 60, 1);
    QV_CK(qv_index_add(a, n / 2, ids, x));
    QV_CK(qv_index_add(a, n - n / 2, ids + n / 2, x + n / 2 * dim));
    QV_CK(qv_index_add(b, n / 2, ids, x));
    QV_CK(qv_index_add(b, n - n / 2, ids + n / 2, x + n / 2 * dim));
    void *ba = save_buf(a, &l1), *bb = save_buf(b, &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert(memcmp(ba, bb, l1) == 0);
    qv_free(ba); qv_free(bb);
    qv_index_free(a); qv_index_free(b);
    free(x); free(ids);
}
END_TEST

START_TEST(test_save_load_roundtrip)
{
    const size_t n = 2000, dim = 16, nq = 50, k = 10;
    float *x = random_vectors(n, dim, 8), *q = random_vectors(nq, dim, 9);
    uint64_t *ids = seq_ids(n, 1ull << 40);
    qv_index *ix = make_index(dim, QV_METRIC_COSINE, 12, 80, 2);
    QV_CK(qv_index_add(ix, n, ids, x));
    uint64_t del[200];
    for (size_t i = 0; i < 200; i++) del[i] = ids[i * 7 % n];
    QV_CK(qv_index_remove(ix, 200, del, NULL));      /* free slots are saved too */
    char *dir = make_tmpdir("qv-hnsw"), path[4200];
    snprintf(path, sizeof path, "%s/ix.qv", dir);
    QV_CK(qv_index_save(ix, path));
    qv_index *lx = NULL;
    QV_CK(qv_index_load(path, &lx));
    ck_assert_uint_eq(qv_index_size(lx), qv_index_size(ix));
    assert_graph_ok(lx);
    qv_search_params sp;
    qv_search_params_init(&sp, (uint32_t)k);
    qv_hit h1[10], h2[10];
    size_t n1, n2;
    for (size_t i = 0; i < nq; i++) {
        QV_CK(qv_index_search(ix, q + i * dim, &sp, h1, &n1));
        QV_CK(qv_index_search(lx, q + i * dim, &sp, h2, &n2));
        ck_assert_uint_eq(n1, n2);
        for (size_t j = 0; j < n1; j++) {
            ck_assert_uint_eq(h1[j].id, h2[j].id);
            ck_assert(h1[j].score == h2[j].score);
        }
    }
    size_t l1, l2;
    void *b1 = save_buf(ix, &l1), *b2 = save_buf(lx, &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert(memcmp(b1, b2, l1) == 0);
    /* Both continue identically after more inserts (generator state is saved). */
    QV_CK(qv_index_add(ix, 100, del, x));
    QV_CK(qv_index_add(lx, 100, del, x));
    qv_free(b1); qv_free(b2);
    rm_rf(dir);
    free(dir);
    qv_index_free(ix); qv_index_free(lx);
    free(x); free(q); free(ids);
}
END_TEST

/* Load a buffer; on success the index must be sound (a flipped link may leave a valid
 * but less connected graph, so reachability is not required), and searchable. */
static int try_load(const void *buf, size_t len)
{
    qv_index *ix = NULL;
    int rc = qv_index_load_mem(buf, len, "fuzz", &ix);
    if (rc == QV_OK) {
        assert_graph_sound(ix);
        float q[3] = {0.1f, 0.2f, 0.3f};
        qv_hit hits[5];
        size_t nh;
        qv_search_params sp;
        qv_search_params_init(&sp, 5);
        QV_CK(qv_index_search(ix, q, &sp, hits, &nh));
        uint64_t more[2] = {1000, 1001};
        QV_CK(qv_index_add(ix, 2, more, (const float[6]){1, 2, 3, 4, 5, 6}));
        qv_index_free(ix);
    } else {
        ck_assert_ptr_null(ix);
        ck_assert_msg(rc == QV_ECORRUPT, "rc %d: %s", rc, qv_last_error());
        ck_assert_msg(strstr(qv_last_error(), "fuzz") != NULL, "message names the source: %s", qv_last_error());
    }
    return rc;
}

static void fix_crc(uint8_t *buf, size_t len)
{
    uint32_t c = qv_crc32c(0, buf, len - 4);
    memcpy(buf + len - 4, &c, 4);
}

START_TEST(test_corrupt_files)
{
    const size_t n = 40, dim = 3;
    float *x = random_vectors(n, dim, 3);
    uint64_t *ids = seq_ids(n, 0);
    qv_index *ix = make_index(dim, QV_METRIC_L2, 3, 20, 1);
    QV_CK(qv_index_add(ix, n, ids, x));
    uint64_t del[3] = {4, 9, 30};
    QV_CK(qv_index_remove(ix, 3, del, NULL));
    size_t len;
    uint8_t *buf = save_buf(ix, &len), *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    {
        qv_index *lx = NULL;
        QV_CK(qv_index_load_mem(buf, len, "fuzz", &lx));
        assert_graph_ok(lx);
        qv_index_free(lx);
    }
    /* Every truncation. */
    for (size_t l = 0; l < len; l++) {
        memcpy(copy, buf, l);
        ck_assert_int_eq(try_load(copy, l), QV_ECORRUPT);
    }
    /* Flipped bytes: the checksum catches them. */
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, buf, len);
        copy[i] ^= 0x5a;
        ck_assert_int_eq(try_load(copy, len), QV_ECORRUPT);
    }
    /* Flipped bytes behind a recomputed checksum: the body validation must hold (load
     * fails with QV_ECORRUPT, or what it accepts is a sound graph). Header is 60 bytes. */
    size_t rejected = 0;
    for (size_t i = 60; i + 4 < len; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(copy, buf, len);
            copy[i] ^= (uint8_t)(1u << bit);
            fix_crc(copy, len);
            rejected += try_load(copy, len) != QV_OK;
        }
    ck_assert(rejected > 0);
    free(copy);
    qv_free(buf);
    qv_index_free(ix);
    free(x); free(ids);
}
END_TEST

/* ---- deletes ----------------------------------------------------------------------- */

/* Ground truth over the points whose keep[] is set, as original row numbers. */
static void ref_knn_subset(const float *x, size_t n, size_t dim, const uint8_t *keep, const float *q,
                           size_t nq, size_t k, uint64_t *out)
{
    size_t m = 0;
    float *sub = malloc(n * dim * sizeof *sub + 1);
    uint64_t *map = malloc(n * sizeof *map + 1);
    ck_assert(sub && map);
    for (size_t i = 0; i < n; i++)
        if (keep[i]) { memcpy(sub + m * dim, x + i * dim, dim * sizeof *sub); map[m++] = i; }
    ref_knn(sub, m, dim, q, nq, k, QV_METRIC_L2, out);
    for (size_t i = 0; i < nq * k; i++) out[i] = out[i] < m ? map[out[i]] : UINT64_MAX;
    free(sub); free(map);
}

START_TEST(test_delete_recall)
{
    dataset d;
    if (!load_sift(&d)) return;
    const size_t k = 10, n = d.n, nq = d.nq;
    uint64_t *ids = seq_ids(n, 0);
    uint8_t *keep = malloc(n);
    uint64_t *del = malloc(n * sizeof *del), *keep_ids = malloc(n * sizeof *keep_ids);
    float *keep_vecs = malloc(n * d.dim * sizeof *keep_vecs);
    ck_assert(keep && del && keep_ids && keep_vecs);
    uint64_t s = 12345;
    size_t nd = 0, nk = 0;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        keep[i] = (s >> 33) % 10 != 0;
        if (!keep[i]) del[nd++] = i;
        else { keep_ids[nk] = i; memcpy(keep_vecs + nk * d.dim, d.base + i * d.dim, d.dim * sizeof(float)); nk++; }
    }
    uint64_t *truth = malloc(nq * k * sizeof *truth), *got = malloc(nq * k * sizeof *got);
    size_t *n_got = malloc(nq * sizeof *n_got);
    ck_assert(truth && got && n_got);
    ref_knn_subset(d.base, n, d.dim, keep, d.query, nq, k, truth);

    qv_index *ix = make_index(d.dim, QV_METRIC_L2, 16, 200, 1);   /* 1 thread: reproducible */
    QV_CK(qv_index_add(ix, n, ids, d.base));
    size_t nr = 0;
    QV_CK(qv_index_remove(ix, nd, del, &nr));
    ck_assert_uint_eq(nr, nd);
    ck_assert_uint_eq(qv_index_size(ix), nk);
    assert_graph_ok(ix);
    qv_index *fresh = make_index(d.dim, QV_METRIC_L2, 16, 200, 1);
    QV_CK(qv_index_add(fresh, nk, keep_ids, keep_vecs));
    qv_search_params sp;
    qv_search_params_init(&sp, (uint32_t)k);
    for (uint32_t ef = 32; ef <= 64; ef *= 2) {
        sp.ef = ef;
        search_all(ix, d.query, nq, d.dim, &sp, got, n_got);
        for (size_t i = 0; i < nq; i++)
            for (size_t j = 0; j < n_got[i]; j++) ck_assert_msg(keep[got[i * k + j]], "deleted id returned");
        double r_del = recall_at_k(got, n_got, k, truth, k, nq, k);
        search_all(fresh, d.query, nq, d.dim, &sp, got, n_got);
        double r_fresh = recall_at_k(got, n_got, k, truth, k, nq, k);
        ck_assert_msg(r_del >= r_fresh - 0.01, "ef=%u: recall after delete %.4f vs fresh build %.4f", ef,
                      r_del, r_fresh);
    }

    /* Re-adding reuses the freed slots: capacity (and so memory) does not grow. */
    size_t mem = qv_index_memory(ix);
    QV_CK(qv_index_add(ix, nd, del, d.base));        /* other vectors under the old ids */
    ck_assert_uint_eq(qv_index_size(ix), n);
    ck_assert(qv_index_memory(ix) <= mem + mem / 50);
    assert_graph_ok(ix);

    qv_index_free(ix); qv_index_free(fresh);
    free(ids); free(keep); free(del); free(keep_ids); free(keep_vecs);
    free(truth); free(got); free(n_got);
    free_sift(&d);
}
END_TEST

START_TEST(test_replace_existing)
{
    const size_t n = 500, dim = 8;
    float *x = random_vectors(n, dim, 21), *y = random_vectors(50, dim, 22);
    uint64_t *ids = seq_ids(n, 0);
    qv_index *ix = make_index(dim, QV_METRIC_L2, 8, 50, 2);
    QV_CK(qv_index_add(ix, n, ids, x));
    QV_CK(qv_index_add(ix, 50, ids + 100, y));        /* ids 100..149 get new vectors */
    ck_assert_uint_eq(qv_index_size(ix), n);
    assert_graph_ok(ix);
    qv_search_params sp;
    qv_search_params_init(&sp, 1);
    qv_hit h;
    size_t nh;
    for (size_t i = 0; i < 50; i++) {
        QV_CK(qv_index_search(ix, y + i * dim, &sp, &h, &nh));
        ck_assert_uint_eq(nh, 1);
        ck_assert_uint_eq(h.id, 100 + i);
        ck_assert_float_eq_tol(h.score, 0.0f, 1e-6f);
    }
    qv_index_free(ix);
    free(x); free(y); free(ids);
}
END_TEST

/* ---- filters ----------------------------------------------------------------------- */

typedef struct { const uint64_t *bits; uint64_t nbits; } accept_arg;

static int accept_bits(uint64_t id, void *arg)
{
    const accept_arg *a = arg;
    return id < a->nbits && ((a->bits[id >> 6] >> (id & 63)) & 1);
}

START_TEST(test_filters)
{
    static const double fracs[] = {0.001, 0.01, 0.1, 0.5};
    dataset d;
    if (!load_sift(&d)) return;
    const size_t k = 10, n = d.n, nq = d.nq;
    uint64_t *ids = seq_ids(n, 0);
    qv_index *ix = make_index(d.dim, QV_METRIC_L2, 16, 100, 0);
    QV_CK(qv_index_add(ix, n, ids, d.base));
    uint64_t *bits = calloc((n + 63) / 64, sizeof *bits);
    uint8_t *keep = malloc(n);
    uint64_t *truth = malloc(nq * k * sizeof *truth), *got = malloc(nq * k * sizeof *got);
    size_t *n_got = malloc(nq * sizeof *n_got);
    ck_assert(bits && keep && truth && got && n_got);
    for (size_t fi = 0; fi < 4; fi++) {
        memset(bits, 0, (n + 63) / 64 * sizeof *bits);
        uint64_t s = 77 + fi;
        size_t passing = 0;
        for (size_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            keep[i] = (double)(s >> 11) / 9007199254740992.0 < fracs[fi];
            if (keep[i]) { bits[i >> 6] |= 1ull << (i & 63); passing++; }
        }
        if (!passing) continue;
        ref_knn_subset(d.base, n, d.dim, keep, d.query, nq, k, truth);
        for (int mode = 0; mode < 2; mode++) {
            qv_search_params sp;
            accept_arg aa = {bits, n};
            qv_search_params_init(&sp, (uint32_t)k);
            sp.ef = 64;
            if (mode == 0) { sp.allow_bits = bits; sp.allow_nbits = n; }
            else { sp.accept = accept_bits; sp.accept_arg = &aa; }
            search_all(ix, d.query, nq, d.dim, &sp, got, n_got);
            size_t want = passing < k ? passing : k;
            for (size_t i = 0; i < nq; i++) {
                ck_assert_uint_eq(n_got[i], want);
                for (size_t j = 0; j < n_got[i]; j++)
                    ck_assert_msg(keep[got[i * k + j]], "filter %.3f: result fails the filter", fracs[fi]);
            }
            /* Truth padded with UINT64_MAX when fewer than k pass: count the real ones. */
            double r = 0;
            for (size_t i = 0; i < nq; i++) {
                size_t f = 0;
                for (size_t a = 0; a < want; a++)
                    for (size_t b = 0; b < n_got[i]; b++)
                        if (got[i * k + b] == truth[i * k + a]) { f++; break; }
                r += (double)f / (double)want;
            }
            r /= (double)nq;
            ck_assert_msg(r >= 0.95, "filter %.3f mode %d: recall %.4f", fracs[fi], mode, r);
        }
    }
    /* A tight max_visits bounds the work and still returns only passing ids. */
    qv_search_params sp;
    qv_search_params_init(&sp, (uint32_t)k);
    sp.allow_bits = bits;
    sp.allow_nbits = n;
    sp.max_visits = 50;
    search_all(ix, d.query, nq, d.dim, &sp, got, n_got);
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < n_got[i]; j++) ck_assert(keep[got[i * k + j]]);
    qv_index_free(ix);
    free(ids); free(bits); free(keep); free(truth); free(got); free(n_got);
    free_sift(&d);
}
END_TEST

/* ---- allocation failures ----------------------------------------------------------- */

START_TEST(test_add_alloc_failure)
{
    const size_t n = 300, dim = 6;
    float *x = random_vectors(n + 100, dim, 31);
    uint64_t *ids = seq_ids(n + 100, 0);
    qv_index *ix = make_index(dim, QV_METRIC_L2, 6, 40, 2);
    QV_CK(qv_index_add(ix, n, ids, x));
    size_t before_len;
    void *before = save_buf(ix, &before_len);
    int ok = 0;
    /* The batch both replaces ids 250..299 and adds 300..399, on build codes (a failure
     * to allocate those leaves the walk on floats). */
    qv_hnsw_bcodes_min = 1;
    for (long i = 0; i < 10000 && !ok; i++) {
        qv_alloc_fail_after(i);
        int rc = qv_index_add(ix, 150, ids + 250, x + 250 * dim);
        qv_alloc_fail_after(-1);
        if (rc == QV_OK) { ok = 1; break; }
        ck_assert_msg(rc == QV_ENOMEM, "step %ld: %s", i, qv_last_error());
        size_t len;
        void *now = save_buf(ix, &len);
        ck_assert_msg(len == before_len && memcmp(now, before, len) == 0, "step %ld: index changed", i);
        qv_free(now);
    }
    qv_hnsw_bcodes_min = QV_HNSW_BCODES_MIN;
    ck_assert(ok);
    ck_assert_uint_eq(qv_index_size(ix), n + 100);
    assert_graph_ok(ix);
    qv_free(before);
    /* Remove under failures: all or nothing as well. */
    for (long i = 0; i < 1000; i++) {
        size_t nr = 0;
        qv_alloc_fail_after(i);
        int rc = qv_index_remove(ix, 10, ids, &nr);
        qv_alloc_fail_after(-1);
        if (rc == QV_OK) { ck_assert_uint_eq(nr, 10); break; }
        ck_assert_int_eq(rc, QV_ENOMEM);
        ck_assert_uint_eq(qv_index_size(ix), n + 100);
    }
    ck_assert_uint_eq(qv_index_size(ix), n + 90);
    qv_index_free(ix);
    free(x); free(ids);
}
END_TEST

START_TEST(test_keep_pruned_and_params)
{
    const size_t n = 800, dim = 10;
    float *x = random_vectors(n, dim, 41);
    uint64_t *ids = seq_ids(n, 0);
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_HNSW, dim, QV_METRIC_IP);
    p.m = 2;
    p.flags = QV_HNSW_KEEP_PRUNED;
    p.threads = 2;
    QV_CK(qv_index_new(&p, &ix));
    QV_CK(qv_index_add(ix, n, ids, x));
    assert_graph_ok(ix);
    qv_hnsw_report r;
    QV_CK(qv_hnsw_check(ix, &r));
    ck_assert_uint_le(r.max_level, QV_HNSW_MAX_LEVEL);
    qv_index_params got;
    qv_index_get_params(ix, &got);
    ck_assert_uint_eq(got.m, 2);
    ck_assert_uint_eq(got.ef_construction, 200);
    qv_index_free(ix);
    free(x); free(ids);
}
END_TEST

/* The visited tags are 16 bits: past 65535 searches on one scratch the epoch wraps, and
 * the tags must be cleared then, or stale tags equal to the new epochs hide nodes. The
 * wrap is driven directly (a scratch one epoch before it), then searches must answer as
 * before it. */
START_TEST(test_visited_epoch_wrap)
{
    const size_t n = 300, dim = 4;
    float *x = random_vectors(n, dim, 77), *q = random_vectors(20, dim, 78);
    uint64_t *ids = seq_ids(n, 0);
    qv_index *ix = make_index(dim, QV_METRIC_L2, 8, 40, 1);
    QV_CK(qv_index_add(ix, n, ids, x));
    qv_search_params sp;
    qv_search_params_init(&sp, 10);
    sp.ef = 32;
    qv_hit first[20][10], h[10];
    size_t n1[20], nh;
    for (size_t i = 0; i < 20; i++) QV_CK(qv_index_search(ix, q + i * dim, &sp, first[i], &n1[i]));
    qv_hnsw *hh = ix->impl;
    qv_hnsw_scratch *s = qv_hnsw_scratch_get(hh);     /* the one the searches use (one thread) */
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < s->visited_cap; i++) s->visited[i] = (qv_hnsw_tag)(i % 2 ? 1 : 65535);
    s->epoch = 65534;
    ck_assert_uint_eq(qv_hnsw_new_epoch(s), 65535);
    ck_assert_uint_eq(s->visited[0], 65535);           /* not cleared yet */
    ck_assert_uint_eq(qv_hnsw_new_epoch(s), 1);        /* wrapped: 0 is skipped, all cleared */
    for (size_t i = 0; i < s->visited_cap; i++) ck_assert_uint_eq(s->visited[i], 0);
    for (size_t i = 0; i < s->visited_cap; i++) s->visited[i] = 2;   /* stale tags = next epoch */
    s->epoch = 65535;
    qv_hnsw_scratch_put(hh, s);
    for (size_t i = 0; i < 20; i++) {                  /* the first of these wraps */
        QV_CK(qv_index_search(ix, q + i * dim, &sp, h, &nh));
        ck_assert_uint_eq(nh, n1[i]);
        for (size_t j = 0; j < nh; j++) ck_assert_uint_eq(h[j].id, first[i][j].id);
    }
    qv_index_free(ix);
    free(x);
    free(q);
    free(ids);
}
END_TEST

/* Results leave the max-heap in ascending (distance, slot) order, for short and long
 * lists (searches up to ef 1500 here): many ties, negative distances (inner product) and
 * -0 / +0, against qsort. */
static int cand_cmp(const void *a, const void *b)
{
    const qv_hnsw_cand *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

START_TEST(test_results_sorted)
{
    static const size_t lens[] = {1, 2, 31, 33, 64, 128, 129, 200, 201, 1024, 1025, 1500};
    qv_index *ix = make_index(4, QV_METRIC_L2, 8, 40, 1);
    qv_hnsw *hh = ix->impl;
    qv_hnsw_scratch *s = qv_hnsw_scratch_get(hh);
    ck_assert_ptr_nonnull(s);
    QV_CK(qv_hnsw_scratch_fit(s, 1600, 1600));
    qv_hnsw_cand *want = malloc(1600 * sizeof *want);
    ck_assert_ptr_nonnull(want);
    uint64_t rng = 12345;
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        for (int kind = 0; kind < 3; kind++) {
            size_t len = lens[li], nr = 0;
            for (size_t i = 0; i < len; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                uint32_t r = (uint32_t)(rng >> 33);
                float d = kind == 0 ? (float)(r % 7)                       /* heavy ties */
                        : kind == 1 ? (float)((int)(r % 2001) - 1000) * 0.37f   /* negatives */
                        : (r % 3 == 0 ? -0.0f : r % 3 == 1 ? 0.0f : 1e-30f * (float)(r % 5));
                uint32_t id = (uint32_t)((r >> 8) % 100000);
                max_push(s->res, &nr, d, id);
                want[i].d = d;
                want[i].id = id;
            }
            qsort(want, len, sizeof *want, cand_cmp);
            ck_assert_uint_eq(qv_hnsw_res_sorted(s, len), len);
            for (size_t i = 0; i < len; i++) {
                ck_assert_msg(s->work[i].d == want[i].d && s->work[i].id == want[i].id,
                              "len %zu kind %d rank %zu: (%g, %u) vs (%g, %u)", len, kind, i,
                              (double)s->work[i].d, s->work[i].id, (double)want[i].d, want[i].id);
            }
        }
    }
    free(want);
    qv_hnsw_scratch_put(hh, s);
    qv_index_free(ix);
}
END_TEST

extern Suite *qv_index_hnsw_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_index_hnsw_suite(void)
{
    Suite *s = suite_create("hnsw");
    TCase *tc = tcase_create("hnsw");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_tiny_exact);
    tcase_add_test(tc, test_empty_and_absent);
    tcase_add_test(tc, test_siftsmall_recall);
    tcase_add_test(tc, test_build_codes_walk);
    tcase_add_test(tc, test_build_codes_recall);
    tcase_add_test(tc, test_build_codes_kept_recall);
    tcase_add_test(tc, test_build_codes_kept_alloc_failure);
    tcase_add_test(tc, test_deterministic_single_thread);
    tcase_add_test(tc, test_save_load_roundtrip);
    tcase_add_test(tc, test_corrupt_files);
    tcase_add_test(tc, test_delete_recall);
    tcase_add_test(tc, test_replace_existing);
    tcase_add_test(tc, test_filters);
    tcase_add_test(tc, test_add_alloc_failure);
    tcase_add_test(tc, test_keep_pruned_and_params);
    tcase_add_test(tc, test_visited_epoch_wrap);
    tcase_add_test(tc, test_results_sorted);
    suite_add_tcase(s, tc);
    return s;
}
