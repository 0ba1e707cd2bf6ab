/*
 * tests/check_index_hnsw_reorder.c -- slot renumbering (index/hnsw_reorder.c): after it
 * the index answers every query with the same ids and scores as before, agrees with
 * brute force as well as before, keeps a sound graph with its free slots, takes inserts,
 * replacements and deletes, saves and opens (loaded or mapped in place) to the same
 * answers, and a damaged file of it is still QV_ECORRUPT. Searches racing a renumbering
 * see a consistent index (TSan watches the lock handover). Plus when add() renumbers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "index/hnsw.h"
#include "tests/test_util.h"

#define DIM 16u
#define NQ 60u
#define K 10u

static qv_index *make_index_q(uint32_t threads, qv_quant quant)
{
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_HNSW, DIM, QV_METRIC_L2);
    p.m = 8;
    p.ef_construction = 64;
    p.threads = threads;
    p.quant = quant;
    QV_CK(qv_index_new(&p, &ix));
    return ix;
}

static qv_index *make_index(uint32_t threads) { return make_index_q(threads, QV_QUANT_NONE); }

static int reorder(qv_index *ix)
{
    qv_hnsw *h = ix->impl;
    pthread_mutex_lock(&h->write_lock);
    int done = qv_hnsw_reorder(h);
    pthread_mutex_unlock(&h->write_lock);
    return done;
}

static void assert_graph_ok(const qv_index *ix)
{
    qv_hnsw_report r;
    QV_CK(qv_hnsw_check(ix, &r));
    ck_assert_uint_eq(r.live, qv_index_size(ix));
    ck_assert(r.entry_ok);
    ck_assert_uint_eq(r.dangling + r.self_links + r.bad_level + r.over_degree, 0);
    ck_assert_msg(r.reachable == r.live, "reachable %zu of %zu", r.reachable, r.live);
}

/* Hits of NQ queries at ef 64: ids and scores, K per query (missing ones zero). */
static void answers(const qv_index *ix, const float *q, qv_hit *out)
{
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    sp.ef = 64;
    memset(out, 0, NQ * K * sizeof *out);
    for (size_t i = 0; i < NQ; i++) {
        size_t nh = 0;
        QV_CK(qv_index_search(ix, q + i * DIM, &sp, out + i * K, &nh));
        ck_assert_uint_eq(nh, K);
    }
}

static void assert_same(const qv_hit *a, const qv_hit *b)
{
    for (size_t i = 0; i < NQ * K; i++) {
        ck_assert_msg(a[i].id == b[i].id, "query %zu rank %zu: id %llu, was %llu", i / K, i % K,
                      (unsigned long long)b[i].id, (unsigned long long)a[i].id);
        ck_assert(a[i].score == b[i].score);
    }
}

/* Recall@K against brute force in double over the rows whose keep[] is set (ids = rows). */
static double recall(const qv_hit *got, const float *x, size_t n, const uint8_t *keep, const float *q)
{
    float *sub = malloc(n * DIM * sizeof *sub);
    uint64_t *map = malloc(n * sizeof *map), *truth = malloc(NQ * K * sizeof *truth);
    uint64_t *ids = malloc(NQ * K * sizeof *ids);
    size_t *n_got = malloc(NQ * sizeof *n_got), m = 0;
    ck_assert(sub && map && truth && ids && n_got);
    for (size_t i = 0; i < n; i++)
        if (keep[i]) { memcpy(sub + m * DIM, x + i * DIM, DIM * sizeof *sub); map[m++] = i; }
    ref_knn(sub, m, DIM, q, NQ, K, QV_METRIC_L2, truth);
    for (size_t i = 0; i < NQ * K; i++) { truth[i] = map[truth[i]]; ids[i] = got[i].id; }
    for (size_t i = 0; i < NQ; i++) n_got[i] = K;
    double r = recall_at_k(ids, n_got, K, truth, K, NQ, K);
    free(sub); free(map); free(truth); free(ids); free(n_got);
    return r;
}

START_TEST(test_same_answers_and_sound)
{
    const size_t n = 3000;
    float *x = random_vectors(n, DIM, 21), *q = random_vectors(NQ, DIM, 22);
    uint64_t *ids = malloc(n * sizeof *ids);
    uint8_t *keep = malloc(n);
    qv_hit *before = malloc(NQ * K * sizeof *before), *after = malloc(NQ * K * sizeof *after);
    ck_assert(ids && keep && before && after);
    for (size_t i = 0; i < n; i++) { ids[i] = i; keep[i] = 1; }
    qv_index *ix = make_index(2);
    QV_CK(qv_index_add(ix, n, ids, x));
    uint64_t del[300];
    for (size_t i = 0; i < 300; i++) { del[i] = (i * 7 + 3) % n; keep[del[i]] = 0; }
    QV_CK(qv_index_remove(ix, 300, del, NULL));          /* free slots take part */
    answers(ix, q, before);
    double r0 = recall(before, x, n, keep, q);

    qv_hnsw *h = ix->impl;
    uint64_t *slot_ids = malloc(h->n_slots * sizeof *slot_ids);
    ck_assert_ptr_nonnull(slot_ids);
    memcpy(slot_ids, h->ids, h->n_slots * sizeof *slot_ids);
    ck_assert_int_eq(reorder(ix), 1);
    size_t moved = 0;
    for (uint32_t s = 0; s < h->n_slots; s++) moved += h->state[s] == QV_HNSW_LIVE && h->ids[s] != slot_ids[s];
    ck_assert_msg(moved > n / 2, "only %zu of %zu nodes moved", moved, n);   /* it did renumber */
    assert_graph_ok(ix);
    ck_assert_uint_eq(qv_index_size(ix), n - 300);
    answers(ix, q, after);
    assert_same(before, after);
    ck_assert_msg(r0 >= 0.9, "recall %.3f", r0);

    /* Writes after it: replacements, fresh ids (into the renumbered free slots), deletes. */
    float *y = random_vectors(300, DIM, 23);
    QV_CK(qv_index_add(ix, 300, del, y));                /* old ids, new vectors */
    for (size_t i = 0; i < 300; i++) memcpy(x + del[i] * DIM, y + i * DIM, DIM * sizeof *x);
    free(y);
    for (size_t i = 0; i < 300; i++) keep[del[i]] = 1;
    uint64_t gone[100];
    for (size_t i = 0; i < 100; i++) { gone[i] = 1000 + 11 * i; keep[gone[i]] = 0; }
    QV_CK(qv_index_remove(ix, 100, gone, NULL));
    assert_graph_ok(ix);
    answers(ix, q, after);
    double r1 = recall(after, x, n, keep, q);
    ck_assert_msg(r1 >= r0 - 0.02, "recall after writes %.3f, before %.3f", r1, r0);
    for (size_t i = 0; i < NQ * K; i++) ck_assert(keep[after[i].id]);

    free(slot_ids); qv_index_free(ix);
    free(x); free(q); free(ids); free(keep); free(before); free(after);
}
END_TEST

/* A quantized index moves its code rows (in the blocks), its float vectors (a separate
 * array) and, for bit1, its 8-bit ex rows (another array) together: same answers,
 * re-scored from the right vectors. */
START_TEST(test_quantized_same_answers)
{
    const size_t n = 2500;
    static const qv_quant kinds[] = {QV_QUANT_SQ8, QV_QUANT_BIT1};
    float *x = random_vectors(n, DIM, 51), *q = random_vectors(NQ, DIM, 52);
    uint64_t *ids = malloc(n * sizeof *ids);
    uint8_t *keep = malloc(n);
    qv_hit *a = malloc(NQ * K * sizeof *a), *b = malloc(NQ * K * sizeof *b);
    ck_assert(ids && keep && a && b);
    for (size_t i = 0; i < n; i++) { ids[i] = i; keep[i] = 1; }
    for (size_t ki = 0; ki < 2; ki++) {
        qv_index *ix = make_index_q(2, kinds[ki]);
        QV_CK(qv_index_add(ix, n, ids, x));
        answers(ix, q, a);
        ck_assert_int_eq(reorder(ix), 1);
        assert_graph_ok(ix);
        answers(ix, q, b);
        assert_same(a, b);
        double r = recall(b, x, n, keep, q);
        ck_assert_msg(r >= 0.85, "%s: recall %.3f", qv_quant_name(kinds[ki]), r);
        qv_index_free(ix);
    }
    free(x); free(q); free(ids); free(keep); free(a); free(b);
}
END_TEST

START_TEST(test_save_open_corrupt)
{
    const size_t n = 2000;
    float *x = random_vectors(n, DIM, 31), *q = random_vectors(NQ, DIM, 32);
    uint64_t *ids = malloc(n * sizeof *ids);
    qv_hit *a = malloc(NQ * K * sizeof *a), *b = malloc(NQ * K * sizeof *b);
    ck_assert(ids && a && b);
    for (size_t i = 0; i < n; i++) ids[i] = 77 + 5 * i;
    qv_index *ix = make_index(1);
    QV_CK(qv_index_add(ix, n, ids, x));
    ck_assert_int_eq(reorder(ix), 1);
    answers(ix, q, a);
    char *dir = make_tmpdir("qv-reorder"), path[4200];
    snprintf(path, sizeof path, "%s/ix.qv", dir);
    QV_CK(qv_index_save(ix, path));

    qv_index *lx = NULL, *ox = NULL;
    QV_CK(qv_index_load(path, &lx));
    answers(lx, q, b);
    assert_same(a, b);
    QV_CK(qv_index_open(path, &ox));
    answers(ox, q, b);
    assert_same(a, b);
    QV_CK(qv_index_verify(ox));
    /* A renumbered file is an ordinary file: it takes writes in place, and renumbers. */
    QV_CK(qv_index_add(ox, 10, ids, x + 100 * DIM));
    ck_assert_int_eq(reorder(ox), 1);
    assert_graph_ok(ox);

    void *buf = NULL;
    size_t len = 0;
    QV_CK(qv_index_save_mem(ix, &buf, &len));
    qv_index *bad = NULL;
    QV_CK_FAIL(qv_index_load_mem(buf, len / 2, "half", &bad), QV_ECORRUPT);
    ck_assert_ptr_null(bad);
    ((uint8_t *)buf)[len / 2] ^= 0x40;                   /* the file checksum catches it */
    QV_CK_FAIL(qv_index_load_mem(buf, len, "flipped", &bad), QV_ECORRUPT);
    qv_free(buf);

    qv_index_free(lx); qv_index_free(ox); qv_index_free(ix);
    rm_rf(dir);
    free(dir); free(x); free(q); free(ids); free(a); free(b);
}
END_TEST

/* ---- searches racing renumberings -------------------------------------------------- */

typedef struct {
    qv_index *ix;
    const float *x;
    size_t n;
    int stop;                          /* atomic */
    size_t found, searched;
} race;

static void *searcher(void *arg)
{
    race *r = arg;
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    sp.ef = 48;
    qv_hit hits[K];
    for (size_t i = 0; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); i = (i + 97) % r->n) {
        size_t nh = 0;
        QV_CK(qv_index_search(r->ix, r->x + i * DIM, &sp, hits, &nh));
        ck_assert_uint_eq(nh, K);
        for (size_t j = 0; j < nh; j++) ck_assert(hits[j].id < r->n);
        r->found += hits[0].id == i;                     /* a stored vector finds itself */
        r->searched++;
    }
    return NULL;
}

START_TEST(test_concurrent_searches)
{
    const size_t n = 1500;
    float *x = random_vectors(n, DIM, 41);
    uint64_t *ids = malloc(n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    qv_index *ix = make_index(2);
    QV_CK(qv_index_add(ix, n, ids, x));
    race r[2] = {{ix, x, n, 0, 0, 0}, {ix, x, n, 0, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, searcher, &r[i]), 0);
    for (int round = 0; round < 20; round++) ck_assert_int_eq(reorder(ix), 1);
    for (int i = 0; i < 2; i++) __atomic_store_n(&r[i].stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(r[i].found >= r[i].searched * 98 / 100, "%zu of %zu found themselves",
                      r[i].found, r[i].searched);
    assert_graph_ok(ix);
    qv_index_free(ix);
    free(x); free(ids);
}
END_TEST

START_TEST(test_when_add_renumbers)
{
    qv_hnsw h;
    memset(&h, 0, sizeof h);
    h.n_live = 60000;
    ck_assert(!qv_hnsw_reorder_due(&h));                 /* small graphs stay as they are */
    h.n_live = 70000;
    ck_assert(qv_hnsw_reorder_due(&h));                  /* first time past the minimum */
    h.ordered_live = 70000;
    h.n_live = 100000;
    ck_assert(!qv_hnsw_reorder_due(&h));                 /* grown by less than half */
    h.n_live = 105000;
    ck_assert(qv_hnsw_reorder_due(&h));
}
END_TEST

Suite *qv_index_hnsw_reorder_suite(void)
{
    Suite *s = suite_create("index_hnsw_reorder");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_same_answers_and_sound);
    tcase_add_test(tc, test_quantized_same_answers);
    tcase_add_test(tc, test_save_open_corrupt);
    tcase_add_test(tc, test_concurrent_searches);
    tcase_add_test(tc, test_when_add_renumbers);
    suite_add_tcase(s, tc);
    return s;
}
