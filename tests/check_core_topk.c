/*
 * tests/check_core_topk.c -- the bounded top-k heap against sorting everything: random
 * distances with many exact ties (quantized), shuffled ids, k from 1 to QV_MAX_K and
 * stream lengths below, at and above k; bound, push result, NaN, storage modes, OOM.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/topk.h"
#include "tests/test_util.h"

static int cmp_pair(const void *a, const void *b)
{
    const qv_pair *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

static void run_case(size_t k, size_t n, int quantize, uint64_t seed)
{
    qv_topk t;
    qv_pair *all = malloc((n + 1) * sizeof *all);
    float *d = malloc((n + 1) * sizeof *d);
    ck_assert_ptr_nonnull(all);
    ck_assert_ptr_nonnull(d);
    fill_random(d, n, seed);
    QV_CK(qv_topk_init(&t, k));
    for (size_t i = 0; i < n; i++) {
        float x = quantize ? floorf(d[i] * 8.0f) : d[i];     /* 16 distinct values: many ties */
        uint64_t id = (i * 2654435761u) % 1000003u;          /* distinct, not in scan order */
        all[i].dist = x;
        all[i].id = id;
        float bound = qv_topk_bound(&t);
        int kept = qv_topk_push(&t, x, id);
        /* A pair strictly better than the bound is always kept, a worse one never. */
        if (x < bound) ck_assert_int_eq(kept, 1);
        if (x > bound) ck_assert_int_eq(kept, 0);
        if (t.len < k) ck_assert(isinf(qv_topk_bound(&t)));
    }
    qsort(all, n, sizeof *all, cmp_pair);
    size_t want = n < k ? n : k;
    ck_assert_uint_eq(qv_topk_sort(&t), want);
    ck_assert_uint_eq(t.len, want);
    for (size_t i = 0; i < want; i++) {
        ck_assert_msg(t.items[i].dist == all[i].dist && t.items[i].id == all[i].id,
                      "k=%zu n=%zu seed=%llu: rank %zu got (%g,%llu) want (%g,%llu)", k, n,
                      (unsigned long long)seed, i, (double)t.items[i].dist,
                      (unsigned long long)t.items[i].id, (double)all[i].dist, (unsigned long long)all[i].id);
    }
    qv_topk_release(&t);
    free(all);
    free(d);
}

START_TEST(test_topk_matches_sort)
{
    static const size_t ks[] = {1, 2, 3, 5, 10, 64, 100, 1024};
    for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++) {
        size_t k = ks[a];
        size_t ns[] = {0, 1, k - 1, k, k + 1, 3 * k, 10 * k + 7, 5000};
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
            for (int quant = 0; quant < 2; quant++) run_case(k, ns[b], quant, 17 * a + 5 * b + (uint64_t)quant + 1);
    }
}
END_TEST

START_TEST(test_topk_ties_and_nan)
{
    qv_pair store[3];
    qv_topk t;
    qv_topk_init_with(&t, store, 3);
    ck_assert_int_eq(qv_topk_push(&t, 1.0f, 50), 1);
    ck_assert_int_eq(qv_topk_push(&t, 1.0f, 40), 1);
    ck_assert_int_eq(qv_topk_push(&t, 1.0f, 60), 1);
    ck_assert(qv_topk_bound(&t) == 1.0f);
    ck_assert_int_eq(qv_topk_push(&t, 1.0f, 70), 0);     /* tie, larger id: rejected */
    ck_assert_int_eq(qv_topk_push(&t, 1.0f, 10), 1);     /* tie, smaller id: replaces 60 */
    ck_assert_int_eq(qv_topk_push(&t, NAN, 1), 0);
    ck_assert_int_eq(qv_topk_push(&t, INFINITY, 1), 0);
    ck_assert_int_eq(qv_topk_push(&t, -INFINITY, 99), 1);
    ck_assert_uint_eq(qv_topk_sort(&t), 3);
    ck_assert(isinf(store[0].dist) && store[0].dist < 0 && store[0].id == 99);
    ck_assert(store[1].dist == 1.0f && store[1].id == 10);
    ck_assert(store[2].dist == 1.0f && store[2].id == 40);
    qv_topk_reset(&t);
    ck_assert_uint_eq(t.len, 0);
    ck_assert(isinf(qv_topk_bound(&t)));
    qv_topk_release(&t);                                 /* caller storage: nothing freed */
    qv_topk_release(NULL);

    qv_topk z;
    QV_CK(qv_topk_init(&z, 0));                          /* k = 0 keeps nothing */
    ck_assert_int_eq(qv_topk_push(&z, 0.0f, 1), 0);
    ck_assert_uint_eq(qv_topk_sort(&z), 0);
    qv_topk_release(&z);
}
END_TEST

START_TEST(test_topk_oom)
{
    qv_topk t;
    qv_alloc_fail_after(0);
    QV_CK_FAIL(qv_topk_init(&t, 10), QV_ENOMEM);
    qv_alloc_fail_after(-1);
    qv_topk_release(&t);                                 /* safe after a failed init */
}
END_TEST

extern Suite *qv_topk_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_topk_suite(void)
{
    Suite *s = suite_create("topk");
    TCase *tc = tcase_create("heap");
    tcase_add_test(tc, test_topk_matches_sort);
    tcase_add_test(tc, test_topk_ties_and_nan);
    tcase_add_test(tc, test_topk_oom);
    suite_add_tcase(s, tc);
    return s;
}
