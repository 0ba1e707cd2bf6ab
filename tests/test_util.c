/* tests/test_util.c -- helpers for the check suites (see test_util.h). */
#include "tests/test_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef QV_BUILD_DIR
#define QV_BUILD_DIR "build"
#endif

/* The last sites forwarded to check (a ring; relaxed atomics: tests assert from several threads,
 * and a lost update costs only one extra or one skipped write). */
enum { MARK_SITES = 16 };
static _Atomic(const char *) mark_file[MARK_SITES];
static atomic_int mark_line[MARK_SITES];
static atomic_uint mark_next;

void test_mark_point(const char *file, int line)
{
    for (int i = 0; i < MARK_SITES; i++)
        if (atomic_load_explicit(&mark_line[i], memory_order_relaxed) == line &&
            atomic_load_explicit(&mark_file[i], memory_order_relaxed) == file)
            return;
    unsigned slot = atomic_fetch_add_explicit(&mark_next, 1, memory_order_relaxed) % MARK_SITES;
    atomic_store_explicit(&mark_file[slot], file, memory_order_relaxed);
    atomic_store_explicit(&mark_line[slot], line, memory_order_relaxed);
    (_mark_point)(file, line);   /* check's own function, not the macro above */
}

uint64_t test_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

void fill_random(float *v, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) v[i] = (float)((test_rand(&s) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

float *random_vectors(size_t n, size_t dim, uint64_t seed)
{
    float *v = malloc(n * dim * sizeof *v + 1);
    ck_assert_ptr_nonnull(v);
    fill_random(v, n * dim, seed);
    return v;
}

double ref_l2sq(const float *a, const float *b, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return s;
}

double ref_dot(const float *a, const float *b, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += (double)a[i] * (double)b[i];
    return s;
}

double ref_cosine(const float *a, const float *b, size_t dim)
{
    double na = sqrt(ref_dot(a, a, dim)), nb = sqrt(ref_dot(b, b, dim));
    return (na == 0 || nb == 0) ? 0 : ref_dot(a, b, dim) / (na * nb);
}

typedef struct { double d; uint64_t id; } ref_pair;

static int cmp_pair(const void *a, const void *b)
{
    const ref_pair *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

void ref_knn(const float *base, size_t n, size_t dim, const float *q, size_t nq, size_t k,
             qv_metric metric, uint64_t *out_ids)
{
    ref_pair *all = malloc(n * sizeof *all + 1);
    ck_assert_ptr_nonnull(all);
    for (size_t qi = 0; qi < nq; qi++) {
        const float *qq = q + qi * dim;
        for (size_t i = 0; i < n; i++) {
            const float *x = base + i * dim;
            double d = metric == QV_METRIC_L2 ? ref_l2sq(qq, x, dim)
                     : metric == QV_METRIC_IP ? -ref_dot(qq, x, dim) : -ref_cosine(qq, x, dim);
            all[i].d = d;
            all[i].id = i;
        }
        qsort(all, n, sizeof *all, cmp_pair);
        for (size_t j = 0; j < k; j++) out_ids[qi * k + j] = j < n ? all[j].id : UINT64_MAX;
    }
    free(all);
}

double recall_at_k(const uint64_t *got, const size_t *n_got, size_t got_stride,
                   const uint64_t *truth, size_t truth_stride, size_t nq, size_t k)
{
    double total = 0;
    for (size_t q = 0; q < nq; q++) {
        size_t found = 0, ng = n_got ? n_got[q] : k;
        if (ng > k) ng = k;
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < ng; j++)
                if (got[q * got_stride + j] == truth[q * truth_stride + i]) { found++; break; }
        total += (double)found / (double)k;
    }
    return nq ? total / (double)nq : 0;
}

char *make_tmpdir(const char *prefix)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(4096);
    ck_assert_ptr_nonnull(path);
    snprintf(path, 4096, "%s/%s-XXXXXX", base && *base ? base : "/tmp", prefix);
    ck_assert_msg(mkdtemp(path) != NULL, "mkdtemp %s failed", path);
    return path;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(p);
}

void rm_rf(const char *path)
{
    if (path) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int data_path(char *buf, size_t len, const char *set, const char *file)
{
    const char *dir = getenv("QV_DATA_DIR");
    snprintf(buf, len, "%s/%s/%s", dir && *dir ? dir : "../shared/data", set, file);
    return access(buf, R_OK) == 0;
}

const char *build_dir(void) { return QV_BUILD_DIR; }

void test_skip(int kind, const char *fmt, ...)
{
    char why[512], line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *ci = getenv("CI");
    if (kind == TEST_SKIP_MISSING && ci && strcmp(ci, "true") == 0)
        ck_abort_msg("%s (CI=true: a full run must not skip this)", why);
    int n = snprintf(line, sizeof line, "SKIP %s\n", why);
    fputs(line, stdout);
    fflush(stdout);
    /* The tests run in forked children: the count goes through a file (tests/run.c). */
    const char *log = getenv("QV_SKIP_LOG");
    int fd = log ? open(log, O_WRONLY | O_APPEND | O_CREAT, 0644) : -1;
    if (fd >= 0) {
        if (write(fd, line, (size_t)n) != n) { /* the count is lost; the message was printed */ }
        close(fd);
    }
}

int sanitized(void) { return getenv("QV_SANITIZED") != NULL; }
