/*
 * tests/check_core_alloc.c -- core/alloc: overflow checks, alignment, and the
 * qv_alloc_fail_after fault-injection hook the other suites rely on.
 */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "tests/test_util.h"

START_TEST(test_alloc_fail_after)
{
    qv_alloc_fail_after(0);   /* the very next allocation fails, once */
    ck_assert_ptr_null(qv_malloc(16));
    ck_assert_msg(strstr(qv_last_error(), "out of memory"), "%s", qv_last_error());
    void *p = qv_malloc(16);
    ck_assert_ptr_nonnull(p);
    qv_free(p);

    qv_alloc_fail_after(2);   /* two succeed, the third fails, then all succeed */
    void *a = qv_malloc(8), *b = qv_calloc(2, 8), *c = qv_aligned_calloc(1, 8);
    void *d = qv_reallocarray(NULL, 4, 4);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(d);
    qv_free(a);
    qv_free(b);
    qv_free(d);

    /* every allocator honours the hook */
    qv_alloc_fail_after(0);
    ck_assert_ptr_null(qv_calloc(1, 1));
    qv_alloc_fail_after(0);
    ck_assert_ptr_null(qv_aligned_calloc(1, 1));
    qv_alloc_fail_after(0);
    ck_assert_ptr_null(qv_strdup("x"));
    char *keep = qv_malloc(4);
    memcpy(keep, "abc", 4);
    qv_alloc_fail_after(0);
    ck_assert_ptr_null(qv_reallocarray(keep, 1000, 1));   /* original stays valid */
    ck_assert_str_eq(keep, "abc");
    qv_free(keep);

    qv_alloc_fail_after(-5);   /* negative disables */
    for (int i = 0; i < 100; i++) {
        void *q = qv_malloc(1);
        ck_assert_ptr_nonnull(q);
        qv_free(q);
    }
    qv_alloc_fail_after(-1);
}
END_TEST

START_TEST(test_alloc_overflow_and_alignment)
{
    ck_assert_ptr_null(qv_calloc(SIZE_MAX / 2, 3));
    ck_assert_ptr_null(qv_aligned_calloc(SIZE_MAX / 8, 16));
    void *p = qv_malloc(8);
    ck_assert_ptr_null(qv_reallocarray(p, SIZE_MAX / 4, 8));
    qv_free(p);
    for (size_t n = 0; n < 200; n += 13) {
        unsigned char *a = qv_aligned_calloc(n, 3);
        ck_assert_ptr_nonnull(a);
        ck_assert_uint_eq((uintptr_t)a % 64, 0);
        for (size_t i = 0; i < n * 3; i++) ck_assert_uint_eq(a[i], 0);
        qv_free(a);
    }
    void *z = qv_malloc(0);   /* size 0 still gives a freeable pointer */
    ck_assert_ptr_nonnull(z);
    qv_free(z);
    char *s = qv_strdup("quiver");
    ck_assert_str_eq(s, "quiver");
    qv_free(s);
    qv_free(NULL);
    char **v = qv_calloc(2, sizeof *v);
    v[0] = qv_strdup("a");
    v[1] = qv_strdup("b");
    qv_free_strings(v, 2);
    qv_free_strings(NULL, 3);
}
END_TEST

extern Suite *qv_alloc_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_alloc_fail_after);
    tcase_add_test(tc, test_alloc_overflow_and_alignment);
    suite_add_tcase(s, tc);
    return s;
}
