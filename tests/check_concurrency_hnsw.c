/*
 * tests/check_concurrency_hnsw.c -- HNSW under concurrent use, meant for ThreadSanitizer
 * (make tsan-test runs suite "concurrency"): searchers (single, batch, filtered) run while
 * one thread adds (new ids and replacements, multi-threaded inserts inside each batch,
 * growing the arrays) and another removes and saves. Afterwards the graph must be sound.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "index/hnsw.h"
#include "tests/test_util.h"

#define DIM 16

typedef struct {
    qv_index *ix;
    int stop;                          /* atomic */
    int failed;                        /* atomic: first failing rc */
    size_t rounds;
    uint64_t seed;
} ctx;

static uint64_t next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void note_fail(ctx *c, int rc)
{
    if (rc != QV_OK) __atomic_store_n(&c->failed, rc, __ATOMIC_RELAXED);
}

static int accept_even(uint64_t id, void *arg)
{
    (void)arg;
    return (id & 1) == 0;
}

static void *searcher(void *arg)
{
    ctx *c = arg;
    float q[8 * DIM];
    qv_hit hits[8 * 10];
    size_t nh[8];
    uint64_t s = c->seed;
    for (size_t it = 0; !__atomic_load_n(&c->stop, __ATOMIC_RELAXED); it++) {
        fill_random(q, 8 * DIM, next(&s));
        qv_search_params sp;
        qv_search_params_init(&sp, 10);
        if (it % 3 == 1) { sp.accept = accept_even; }
        if (it % 5 == 4) {
            note_fail(c, qv_index_search_batch(c->ix, 8, q, &sp, hits, nh));
        } else {
            note_fail(c, qv_index_search(c->ix, q, &sp, hits, &nh[0]));
            if (nh[0] > 10) note_fail(c, QV_EINTERNAL);
            if (sp.accept)
                for (size_t i = 0; i < nh[0]; i++)
                    if (hits[i].id & 1) note_fail(c, QV_EINTERNAL);
        }
        (void)qv_index_size(c->ix);
        (void)qv_index_memory(c->ix);
    }
    return NULL;
}

static void *adder(void *arg)
{
    ctx *c = arg;
    float v[60 * DIM];
    uint64_t ids[60], s = c->seed;
    for (size_t r = 0; r < c->rounds; r++) {
        fill_random(v, 60 * DIM, next(&s));
        uint64_t b = next(&s);
        for (size_t i = 0; i < 60; i++)       /* 10 distinct replacements of ids < 1000 */
            ids[i] = i < 50 ? 100000 + r * 50 + i : (b + (i - 50) * 97) % 1000;
        note_fail(c, qv_index_add(c->ix, 60, ids, v));
    }
    return NULL;
}

static void *remover(void *arg)
{
    ctx *c = arg;
    uint64_t ids[20], s = c->seed;
    for (size_t r = 0; r < c->rounds; r++) {
        for (size_t i = 0; i < 20; i++) ids[i] = next(&s) % 1000;
        size_t nr;
        note_fail(c, qv_index_remove(c->ix, 20, ids, &nr));
        if (r % 4 == 0) {
            void *buf = NULL;
            size_t len = 0;
            note_fail(c, qv_index_save_mem(c->ix, &buf, &len));
            qv_free(buf);
        }
    }
    return NULL;
}

START_TEST(test_hnsw_concurrent_insert_search_delete)
{
    const size_t n0 = 1000;
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_HNSW, DIM, QV_METRIC_L2);
    p.m = 8;
    p.ef_construction = 40;
    p.threads = 2;
    QV_CK(qv_index_new(&p, &ix));
    float *x = random_vectors(n0, DIM, 1);
    uint64_t *ids = malloc(n0 * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n0; i++) ids[i] = i;
    QV_CK(qv_index_add(ix, n0, ids, x));

    ctx c = {ix, 0, QV_OK, sanitized() ? 12 : 40, 7};
    ctx cs[2] = {c, c}, ca = c, cr = c;
    cs[1].seed = 8;
    ca.seed = 9;
    cr.seed = 10;
    pthread_t ts[2], ta, tr;
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&ts[i], NULL, searcher, &cs[i]), 0);
    ck_assert_int_eq(pthread_create(&ta, NULL, adder, &ca), 0);
    ck_assert_int_eq(pthread_create(&tr, NULL, remover, &cr), 0);
    pthread_join(ta, NULL);
    pthread_join(tr, NULL);
    for (int i = 0; i < 2; i++) __atomic_store_n(&cs[i].stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++) pthread_join(ts[i], NULL);
    ck_assert_int_eq(cs[0].failed, QV_OK);
    ck_assert_int_eq(cs[1].failed, QV_OK);
    ck_assert_int_eq(ca.failed, QV_OK);
    ck_assert_int_eq(cr.failed, QV_OK);

    qv_hnsw_report r;
    QV_CK(qv_hnsw_check(ix, &r));
    ck_assert_uint_eq(r.live, qv_index_size(ix));
    ck_assert(r.entry_ok);
    ck_assert_uint_eq(r.dangling + r.self_links + r.bad_level + r.over_degree, 0);
    ck_assert_uint_eq(r.reachable, r.live);
    qv_index_free(ix);
    free(x);
    free(ids);
}
END_TEST

extern Suite *qv_concurrency_hnsw_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_concurrency_hnsw_suite(void)
{
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("hnsw");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_hnsw_concurrent_insert_search_delete);
    suite_add_tcase(s, tc);
    return s;
}
