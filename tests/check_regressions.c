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
 */
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

Suite *qv_regressions_suite(void)
{
    Suite *s = suite_create("regressions");
    TCase *tc = tcase_create("review");
    tcase_add_test(tc, test_huge_norm_refused_by_index);
    tcase_add_test(tc, test_huge_norm_and_big_ids_refused_by_collection);
    suite_add_tcase(s, tc);
    return s;
}
