/*
 * tests/check_regressions.c -- one test per defect found in review, named for it.
 *
 * review-1 (2026-11-27): a stored vector with huge but finite components ([3e38, 3e38])
 *   made every distance to it Inf/NaN, and every search of its collection failed while
 *   encoding the reply. Vectors with a norm above QV_MAX_NORM are now refused on the way
 *   in (index, storage and queries alike).
 * review-5 (2026-11-27): ids of 2^63 and above were accepted by the library but could not
 *   be read or deleted over HTTP (JSON integers are signed). Collections now refuse ids
 *   above QV_MAX_ID.
 * info-race (2026-11-27): qv_collection_get_info handed out config.payload_index, which
 *   indexing a field freed; the server had to stall every request around field indexing.
 *   Replaced strings now live until the collection is closed; this test reads the info
 *   and runs filtered searches while fields are indexed and unindexed (ASan/TSan runs).
 * issue-25 bug 3 (2026-12): cosine vectors with tiny norms passed validation (squares
 *   summed in double) but were normalized in float, where their squares underflow: [1e-40,
 *   0] was stored unnormalized (score 9.99995e-41 against [1, 0] instead of 1), [1e-20, 0]
 *   scored 1.0000026, and a tiny query made every score Inf (the server answered 503).
 *   Stored vectors and queries are now normalized in double; every finite non-zero vector
 *   is accepted and scores its true cosine.
 */
#include <pthread.h>
#include <stdio.h>
#include <check.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "tests/test_util.h"

START_TEST(test_huge_norm_refused_by_index)
{
    qv_index_params p;
    qv_index *ix = NULL;
    const float huge[2] = {3e38f, 3e38f}, ok[2] = {1, 1};
    const uint64_t ids[2] = {1, 2};
    float both[4] = {1, 1, 3e38f, 3e38f};
    qv_index_kind kinds[2] = {QV_INDEX_FLAT, QV_INDEX_HNSW};
    for (int k = 0; k < 2; k++) {
        qv_index_params_init(&p, kinds[k], 2, QV_METRIC_IP);
        QV_CK(qv_index_new(&p, &ix));
        QV_CK_FAIL(qv_index_add(ix, 2, ids, both), QV_EINVAL);
        ck_assert_ptr_nonnull(strstr(qv_last_error(), "point 1 (id 2): norm is above"));
        ck_assert_uint_eq(qv_index_size(ix), 0);             /* nothing half-applied */
        QV_CK(qv_index_add(ix, 1, ids, ok));
        qv_search_params sp;
        qv_hit hits[2];
        size_t n = 0;
        qv_search_params_init(&sp, 2);
        QV_CK_FAIL(qv_index_search(ix, huge, &sp, hits, &n), QV_EINVAL);
        QV_CK(qv_index_search(ix, ok, &sp, hits, &n));
        ck_assert_uint_eq(n, 1);
        ck_assert(isfinite(hits[0].score));
        qv_index_free(ix);
        ix = NULL;
    }
}
END_TEST

START_TEST(test_huge_norm_and_big_ids_refused_by_collection)
{
    char *dir = make_tmpdir("qv-regress");
    qv_db *db = NULL;
    qv_coll *c = NULL;
    qv_collection_config cfg = {0};
    const float vecs[4] = {1, 1, 3e38f, 3e38f}, q[2] = {3e38f, 3e38f};
    const uint64_t ids[2] = {1, 2}, big[1] = {QV_MAX_ID + 1};
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, 2, QV_METRIC_L2);
    QV_CK(qv_db_open(dir, NULL, &db));
    QV_CK(qv_collection_create(db, "c", &cfg, &c));
    QV_CK_FAIL(qv_upsert(c, 2, ids, vecs, NULL), QV_EINVAL);
    QV_CK_FAIL(qv_upsert(c, 1, big, vecs, NULL), QV_EINVAL);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "above the largest id"));
    const uint64_t top[1] = {QV_MAX_ID};
    QV_CK(qv_upsert(c, 1, top, vecs, NULL));
    qv_search_params sp;
    qv_hit hits[2];
    size_t n = 0;
    qv_search_params_init(&sp, 2);
    QV_CK_FAIL(qv_search(c, q, &sp, hits, &n), QV_EINVAL);
    QV_CK(qv_search(c, vecs, &sp, hits, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert(hits[0].id == QV_MAX_ID);
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
}
END_TEST

typedef struct {
    qv_coll *c;
    int stop;                      /* written by the main thread, read with atomics */
    int rc;
} info_reader;

static void *read_info_loop(void *arg)
{
    info_reader *ir = arg;
    qv_filter *f = NULL;
    qv_search_params sp;
    qv_hit hits[5];
    size_t n, rounds = 0;
    float q[4] = {1, 0, 0, 0};
    if ((ir->rc = qv_filter_parse("{\"must\":[{\"key\":\"tag\",\"match\":3}]}", &f)) != QV_OK) return NULL;
    qv_search_params_init(&sp, 5);
    sp.filter = f;
    while (!__atomic_load_n(&ir->stop, __ATOMIC_ACQUIRE) || rounds < 3) {
        qv_collection_info info;
        if ((ir->rc = qv_collection_get_info(ir->c, &info)) != QV_OK) break;
        if (info.config.payload_index && strlen(info.config.payload_index) > 4096) { ir->rc = QV_EINTERNAL; break; }
        if ((ir->rc = qv_search(ir->c, q, &sp, hits, &n)) != QV_OK) break;
        int wrong = 0;
        for (size_t i = 0; i < n; i++) wrong |= hits[i].id % 10 != 3;
        /* leave the loop on the first wrong hit: the next round's calls would overwrite rc
         * (before, a "break" left only the inner loop and every round but the last
         * could fail unseen) */
        if (wrong) { ir->rc = QV_EINTERNAL; break; }
        rounds++;
    }
    qv_filter_free(f);
    return NULL;
}

START_TEST(test_info_stays_valid_while_fields_change)
{
    char *dir = make_tmpdir("qv-regress");
    qv_db *db = NULL;
    qv_coll *c = NULL;
    qv_collection_config cfg = {0};
    size_t n = sanitized() ? 500 : 3000;
    uint64_t *ids = malloc(n * sizeof *ids);
    float *vecs = random_vectors(n, 4, 77);
    char **pl = malloc(n * sizeof *pl);
    ck_assert(ids && pl);
    for (size_t i = 0; i < n; i++) {
        ids[i] = i;
        pl[i] = malloc(32);
        snprintf(pl[i], 32, "{\"tag\":%zu}", i % 10);
    }
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 4, QV_METRIC_L2);
    QV_CK(qv_db_open(dir, NULL, &db));
    QV_CK(qv_collection_create(db, "c", &cfg, &c));
    QV_CK(qv_upsert(c, n, ids, vecs, (const char *const *)pl));
    info_reader ir = {c, 0, QV_OK};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, read_info_loop, &ir), 0);
    for (int round = 0; round < 5; round++) {
        QV_CK(qv_collection_index_field(c, "tag", "integer", NULL, NULL));
        QV_CK(qv_collection_unindex_field(c, "tag"));
    }
    __atomic_store_n(&ir.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    ck_assert_msg(ir.rc == QV_OK, "reader: %s", qv_strerror(ir.rc));
    QV_CK(qv_db_close(db));
    for (size_t i = 0; i < n; i++) free(pl[i]);
    free(pl);
    free(ids);
    free(vecs);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- issue-25 bug 3: tiny cosine vectors ------------------------------------------------ */

static const float tiny_vecs[5][2] = {{1e-40f, 0}, {1e-30f, 1e-30f}, {1e-20f, 0}, {0, 1}, {3e-45f, 1e-45f}};
static const float tiny_queries[5][2] = {{1, 0}, {1e-40f, 0}, {1e-30f, 1e-30f}, {1e-20f, 0}, {1e-45f, 1e-44f}};

/* hits of query q over tiny_vecs (ids 1..5) must carry the true cosines within 1e-6 */
static void check_tiny_hits(const float *q, const qv_hit *hits, size_t n, const char *what)
{
    ck_assert_msg(n == 5, "%s: %zu hits", what, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert(hits[i].id >= 1 && hits[i].id <= 5);
        double want = ref_cosine(q, tiny_vecs[hits[i].id - 1], 2);
        ck_assert_msg(fabs((double)hits[i].score - want) <= 1e-6, "%s: query (%g, %g), id %llu: score %.9g, cosine %.9g",
                      what, (double)q[0], (double)q[1], (unsigned long long)hits[i].id, (double)hits[i].score, want);
    }
}

START_TEST(test_tiny_cosine_index)
{
    const qv_index_kind kinds[2] = {QV_INDEX_FLAT, QV_INDEX_HNSW};
    const uint64_t ids[5] = {1, 2, 3, 4, 5};
    for (int k = 0; k < 2; k++) {
        qv_index_params p;
        qv_index *ix = NULL;
        qv_index_params_init(&p, kinds[k], 2, QV_METRIC_COSINE);
        QV_CK(qv_index_new(&p, &ix));
        QV_CK(qv_index_add(ix, 5, ids, &tiny_vecs[0][0]));
        qv_search_params sp;
        qv_hit hits[5 * 5];
        size_t n[5];
        qv_search_params_init(&sp, 5);
        for (int qi = 0; qi < 5; qi++) {
            QV_CK(qv_index_search(ix, tiny_queries[qi], &sp, hits, &n[0]));
            check_tiny_hits(tiny_queries[qi], hits, n[0], qv_index_kind_name(kinds[k]));
        }
        QV_CK(qv_index_search_batch(ix, 5, &tiny_queries[0][0], &sp, hits, n));
        for (int qi = 0; qi < 5; qi++) check_tiny_hits(tiny_queries[qi], hits + qi * 5, n[qi], "batch");
        volatile double below = 1e-46;                /* 0 once it is a float */
        const float zero[2] = {0, 0}, under[2] = {(float)below, 0};
        QV_CK_FAIL(qv_index_search(ix, zero, &sp, hits, &n[0]), QV_EINVAL);
        QV_CK_FAIL(qv_index_search(ix, under, &sp, hits, &n[0]), QV_EINVAL);
        ck_assert_ptr_nonnull(strstr(qv_last_error(), "zero vector"));
        qv_index_free(ix);
    }
    /* Random vectors at every scale down to float's smallest: stored unit length within
     * 1e-6 (a vector's best match is itself, with cosine 1). */
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_FLAT, 16, QV_METRIC_COSINE);
    QV_CK(qv_index_new(&p, &ix));
    float v[16];
    for (int e = 0; e <= 44; e++) {
        fill_random(v, 16, (uint64_t)e + 100);
        for (int j = 0; j < 16; j++) v[j] = (float)((double)v[j] * pow(10.0, -e));
        const uint64_t id = (uint64_t)e;
        int any = 0;
        for (int j = 0; j < 16; j++) any |= v[j] != 0;
        if (!any) continue;
        QV_CK(qv_index_add(ix, 1, &id, v));
        qv_search_params sp;
        qv_hit h;
        size_t n = 0;
        qv_search_params_init(&sp, 1);
        QV_CK(qv_index_search(ix, v, &sp, &h, &n));
        ck_assert_msg(n == 1 && h.id == id && fabs((double)h.score - 1.0) <= 1e-6, "scale 1e-%d: id %llu score %.9g", e,
                      (unsigned long long)h.id, (double)h.score);
        QV_CK(qv_index_remove(ix, 1, &id, NULL));
    }
    qv_index_free(ix);
}
END_TEST

START_TEST(test_tiny_cosine_collection)
{
    char *dir = make_tmpdir("qv-regress");
    qv_db *db = NULL;
    qv_coll *c = NULL;
    qv_collection_config cfg = {0};
    const uint64_t ids[5] = {1, 2, 3, 4, 5};
    const char *pl[5] = {"{\"t\":1}", "{\"t\":1}", "{\"t\":1}", "{\"t\":1}", "{\"t\":1}"};
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, 2, QV_METRIC_COSINE);
    QV_CK(qv_db_open(dir, NULL, &db));
    QV_CK(qv_collection_create(db, "c", &cfg, &c));
    QV_CK(qv_upsert(c, 5, ids, &tiny_vecs[0][0], pl));
    qv_filter *f = NULL;
    QV_CK(qv_filter_parse("{\"must\":[{\"key\":\"t\",\"match\":1}]}", &f));
    for (int filtered = 0; filtered < 2; filtered++) {
        qv_search_params sp;
        qv_search_stats st;
        qv_hit hits[25];
        size_t n[5];
        qv_search_params_init(&sp, 5);
        sp.filter = filtered ? f : NULL;               /* 5 allowed <= k: the exact scan */
        QV_CK(qv_search_ex(c, 5, &tiny_queries[0][0], &sp, hits, n, &st));
        ck_assert_str_eq(st.plan, filtered ? "exact" : "none");
        for (int qi = 0; qi < 5; qi++) check_tiny_hits(tiny_queries[qi], hits + qi * 5, n[qi], st.plan);
    }
    qv_filter_free(f);
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_regressions_suite(void)
{
    Suite *s = suite_create("regressions");
    TCase *tc = tcase_create("review");
    tcase_add_test(tc, test_huge_norm_refused_by_index);
    tcase_add_test(tc, test_huge_norm_and_big_ids_refused_by_collection);
    tcase_add_test(tc, test_info_stays_valid_while_fields_change);
    tcase_add_test(tc, test_tiny_cosine_index);
    tcase_add_test(tc, test_tiny_cosine_collection);
    suite_add_tcase(s, tc);
    return s;
}
