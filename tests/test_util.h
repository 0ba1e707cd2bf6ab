/*
 * tests/test_util.h -- shared helpers for the check suites: the QV_CK assertion, seeded
 * random data, double-precision references, temporary directories, dataset paths.
 */
#ifndef QV_TESTS_TEST_UTIL_H
#define QV_TESTS_TEST_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "quiver.h"

/* check records every passing assertion: ck_assert* call _mark_point, which writes one message
 * to check's file (a write(2) each, and the parent reads them all back). Assertions in loops
 * over many elements made that most of the suites' time (test_pool_sum: 8 s of its 8.2 s).
 * test_mark_point forwards a site only when it is not among the last 16 sites forwarded, so a
 * loop writes once per assertion in it: every assertion is still evaluated and a failure is
 * reported as before (its own file:line); a crash is reported "after" the last new site, which
 * inside a loop is a site of that loop. Measured in bench/RESULTS.md (suite time, 2026-12-05). */
void test_mark_point(const char *file, int line);
#define _mark_point(file, line) test_mark_point(file, line)

/* Assert that a fallible call returned QV_OK, printing the code and message if not. */
#define QV_CK(expr)                                                                       \
    do {                                                                                  \
        int rc_ = (expr);                                                                 \
        ck_assert_msg(rc_ == QV_OK, "%s -> %s: %s", #expr, qv_strerror(rc_), qv_last_error()); \
    } while (0)

/* Assert that a call failed with the given code. */
#define QV_CK_FAIL(expr, code)                                                            \
    do {                                                                                  \
        int rc_ = (expr);                                                                 \
        ck_assert_msg(rc_ == (code), "%s -> %s (%s), expected %s", #expr, qv_strerror(rc_), \
                      qv_last_error(), qv_strerror(code));                                \
    } while (0)

/* The next value of a xorshift64 generator (state *s, never 0): seeded test data that
 * does not depend on the library's own generator. */
uint64_t test_rand(uint64_t *s);
/* Uniform values in [-1, 1) from a fixed seed (xorshift; independent of the library). */
void fill_random(float *v, size_t n, uint64_t seed);
/* n*dim random vectors, malloc'd (free with free()). */
float *random_vectors(size_t n, size_t dim, uint64_t seed);

/* Double-precision references. */
double ref_l2sq(const float *a, const float *b, size_t dim);
double ref_dot(const float *a, const float *b, size_t dim);
double ref_cosine(const float *a, const float *b, size_t dim);
/* Exact top-k by brute force in double: ids (row numbers) best first, per metric.
 * out_ids: nq*k. Ties broken by the smaller row. */
void ref_knn(const float *base, size_t n, size_t dim, const float *q, size_t nq, size_t k,
             qv_metric metric, uint64_t *out_ids);
/* Fraction of truth[0..k) found in got[0..k) (per query, averaged). */
double recall_at_k(const uint64_t *got, const size_t *n_got, size_t got_stride,
                   const uint64_t *truth, size_t truth_stride, size_t nq, size_t k);

/* A database at dir opened without fsync per write (QV_DB_NOSYNC): for suites where
 * durability is not under test. Asserts the open succeeded. In tests/test_db_util.c. */
qv_db *open_db_nosync(const char *dir);

/* mkdtemp under $TMPDIR (or /tmp); returns a malloc'd path. rm_rf removes a tree. */
char *make_tmpdir(const char *prefix);
void rm_rf(const char *path);

/* Path of a dataset file: $QV_DATA_DIR (default ../shared/data)/<set>/<file>, into buf.
 * Returns 1 when the file exists. */
int data_path(char *buf, size_t len, const char *set, const char *file);
/* A test that cannot run calls this and returns. It prints "SKIP <why>" and counts the
 * skip (tests/run.c reports them all at the end). TEST_SKIP_MISSING: a dataset, package or
 * build product that a full run has; under CI (CI=true) the test fails instead.
 * TEST_SKIP_OPTIONAL: no GPU device, a CPU feature, an optional build (the CUDA emulation):
 * a skip everywhere. */
enum { TEST_SKIP_MISSING = 1, TEST_SKIP_OPTIONAL };
void test_skip(int kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Directory holding the built binaries (quiverd, quiver) */
const char *build_dir(void);
/* 1 when running under a sanitizer (QV_SANITIZED set): tests scale down big loops. */
int sanitized(void);

#endif
