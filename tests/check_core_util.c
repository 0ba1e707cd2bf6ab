/*
 * tests/check_core_util.c -- the small core utilities: bitset, rng, pool, crc32c, serial,
 * idmap. Each is checked against a simple reference (a bool array, a plain loop, a
 * bitwise CRC, a linear-scan map) and on its edge cases.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/bitset.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/idmap.h"
#include "core/pool.h"
#include "core/rng.h"
#include "core/serial.h"
#include "tests/test_util.h"

/* the table variant of crc32c.c, exported for this test only */
uint32_t qv_crc32c_sw(uint32_t crc, const void *data, size_t len);

/* ------------------------------------------------------------------ bitset */

START_TEST(test_bitset_matches_bool_array)
{
    qv_rng r;
    qv_rng_seed(&r, 11);
    size_t nbits = 1000;
    unsigned char ref[5000] = {0};
    qv_bitset b;
    QV_CK(qv_bitset_init(&b, nbits));
    ck_assert_uint_eq(qv_bitset_count(&b), 0);
    for (int it = 0; it < 20000; it++) {
        size_t i = qv_rng_below(&r, nbits);
        if (qv_rng_below(&r, 3)) { qv_bitset_set(&b, i); ref[i] = 1; }
        else { qv_bitset_clear(&b, i); ref[i] = 0; }
        if (it == 10000) {   /* grow in the middle: old bits kept, new bits clear */
            QV_CK(qv_bitset_resize(&b, 4321));
            nbits = 4321;
        }
    }
    size_t want = 0;
    for (size_t i = 0; i < 5000; i++) {
        ck_assert_int_eq(qv_bitset_test(&b, i), i < nbits ? ref[i] : 0);
        want += ref[i];
    }
    ck_assert_uint_eq(qv_bitset_count(&b), want);
    ck_assert_uint_eq(qv_bits_count(b.words, b.nbits), want);
    QV_CK(qv_bitset_resize(&b, 10));   /* shrinking is a no-op */
    ck_assert_uint_eq(b.nbits, 4321);
    qv_bitset_clear_all(&b);
    ck_assert_uint_eq(qv_bitset_count(&b), 0);
    qv_bitset_release(&b);
    qv_bitset_release(&b);
    qv_bitset_release(NULL);
}
END_TEST

START_TEST(test_bitset_edges)
{
    qv_bitset b;
    QV_CK(qv_bitset_init(&b, 0));
    ck_assert_uint_eq(qv_bitset_count(&b), 0);
    ck_assert_int_eq(qv_bitset_test(&b, 0), 0);
    QV_CK(qv_bitset_resize(&b, 64));
    qv_bitset_set(&b, 63);
    ck_assert_int_eq(qv_bitset_test(&b, 63), 1);
    ck_assert_int_eq(qv_bitset_test(&b, 64), 0);
    QV_CK(qv_bitset_resize(&b, 65));
    ck_assert_int_eq(qv_bitset_test(&b, 64), 0);
    qv_bitset_set(&b, 64);
    ck_assert_uint_eq(qv_bitset_count(&b), 2);
    qv_bitset_release(&b);

    /* raw bitsets: garbage above nbits is ignored */
    uint64_t raw[2] = {~0ull, ~0ull};
    ck_assert_uint_eq(qv_bits_count(raw, 0), 0);
    ck_assert_uint_eq(qv_bits_count(raw, 1), 1);
    ck_assert_uint_eq(qv_bits_count(raw, 64), 64);
    ck_assert_uint_eq(qv_bits_count(raw, 70), 70);
    ck_assert_uint_eq(qv_bits_count(raw, 128), 128);
    ck_assert_int_eq(qv_bits_test(raw, 70, 69), 1);
    ck_assert_int_eq(qv_bits_test(raw, 70, 70), 0);

    /* allocation failure */
    qv_alloc_fail_after(0);
    QV_CK_FAIL(qv_bitset_init(&b, 100), QV_ENOMEM);
    qv_alloc_fail_after(-1);
    QV_CK(qv_bitset_init(&b, 100));
    qv_bitset_set(&b, 99);
    qv_alloc_fail_after(0);
    QV_CK_FAIL(qv_bitset_resize(&b, 100000), QV_ENOMEM);
    qv_alloc_fail_after(-1);
    ck_assert_uint_eq(b.nbits, 100);
    ck_assert_int_eq(qv_bitset_test(&b, 99), 1);
    qv_bitset_release(&b);
}
END_TEST

/* ------------------------------------------------------------------ rng */

START_TEST(test_rng_reproducible)
{
    qv_rng a, b, c;
    qv_rng_seed(&a, 42);
    qv_rng_seed(&b, 42);
    qv_rng_seed(&c, 43);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = qv_rng_next(&a);
        ck_assert_uint_eq(x, qv_rng_next(&b));
        differ += x != qv_rng_next(&c);
    }
    ck_assert_int_gt(differ, 990);
    /* seed 0 must not give the all-zero (stuck) state */
    qv_rng_seed(&a, 0);
    ck_assert(a.s[0] | a.s[1] | a.s[2] | a.s[3]);
    ck_assert_uint_ne(qv_rng_next(&a), qv_rng_next(&a));
}
END_TEST

START_TEST(test_rng_distributions)
{
    qv_rng r;
    qv_rng_seed(&r, 7);
    const int N = 200000;
    double sum = 0, sumsq = 0, nsum = 0, nsumsq = 0;
    for (int i = 0; i < N; i++) {
        double u = qv_rng_uniform(&r);
        ck_assert(u >= 0.0 && u < 1.0);
        sum += u;
        sumsq += u * u;
        double z = qv_rng_normal(&r);
        ck_assert(isfinite(z));
        nsum += z;
        nsumsq += z * z;
    }
    ck_assert_double_eq_tol(sum / N, 0.5, 0.01);
    ck_assert_double_eq_tol(sumsq / N - (sum / N) * (sum / N), 1.0 / 12, 0.005);
    ck_assert_double_eq_tol(nsum / N, 0.0, 0.02);
    ck_assert_double_eq_tol(nsumsq / N, 1.0, 0.02);

    /* below(): range and (chi-squared) uniformity for a non power of two */
    ck_assert_uint_eq(qv_rng_below(&r, 1), 0);
    ck_assert_uint_eq(qv_rng_below(&r, 0), 0);
    enum { K = 7 };
    long hist[K] = {0};
    for (int i = 0; i < 70000; i++) {
        uint64_t v = qv_rng_below(&r, K);
        ck_assert_uint_lt(v, K);
        hist[v]++;
    }
    double chi = 0;
    for (int k = 0; k < K; k++) chi += (hist[k] - 10000.0) * (hist[k] - 10000.0) / 10000.0;
    ck_assert_msg(chi < 30, "chi2 %.1f over 6 dof", chi);   /* p ~ 4e-5 */
    /* huge n: the top half must be reachable (a modulo bug would skew it) */
    uint64_t big = (UINT64_MAX / 3) * 2, above = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t v = qv_rng_below(&r, big);
        ck_assert_uint_lt(v, big);
        above += v >= big / 2;
    }
    ck_assert_msg(above > 4700 && above < 5300, "above half: %lu", (unsigned long)above);
}
END_TEST

/* ------------------------------------------------------------------ pool */

typedef struct {
    atomic_ullong sum;
    atomic_uint bad_worker;
    atomic_uint *hits;             /* per index: must end as exactly 1 */
    unsigned threads;
    qv_pool *pool;
    atomic_ullong nested_sum;
} sum_ctx;

static void sum_task(void *arg, size_t i, unsigned worker)
{
    sum_ctx *c = arg;
    atomic_fetch_add_explicit(&c->sum, i, memory_order_relaxed);
    if (worker >= c->threads) atomic_fetch_add(&c->bad_worker, 1);
    if (c->hits) atomic_fetch_add_explicit(&c->hits[i], 1, memory_order_relaxed);
}

static void check_sum(qv_pool *p, size_t n, size_t chunk)
{
    sum_ctx c = {0};
    c.threads = qv_pool_threads(p);
    c.hits = calloc(n + 1, sizeof *c.hits);
    ck_assert_ptr_nonnull(c.hits);
    qv_pool_run(p, n, chunk, sum_task, &c);
    ck_assert_uint_eq(atomic_load(&c.sum), (unsigned long long)n * (n ? n - 1 : 0) / 2);
    ck_assert_uint_eq(atomic_load(&c.bad_worker), 0);
    for (size_t i = 0; i < n; i++) ck_assert_uint_eq(atomic_load(&c.hits[i]), 1);
    free(c.hits);
}

START_TEST(test_pool_sum)
{
    size_t n = sanitized() ? 200000 : 1000000;
    unsigned sizes[] = {1, 2, 3, 8};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        qv_pool *p;
        QV_CK(qv_pool_new(sizes[s], &p));
        ck_assert_uint_eq(qv_pool_threads(p), sizes[s]);
        check_sum(p, n, 0);
        check_sum(p, n, 1000);
        check_sum(p, 0, 0);
        check_sum(p, 1, 0);
        check_sum(p, 17, 1);
        check_sum(p, 17, 100);
        for (int rep = 0; rep < 200; rep++) check_sum(p, 50, 1);   /* many short runs */
        qv_pool_free(p);
    }
    qv_pool_free(NULL);
    qv_pool *p;
    QV_CK(qv_pool_new(0, &p));
    ck_assert_uint_eq(qv_pool_threads(p), qv_cpu_count());
    ck_assert_uint_ge(qv_cpu_count(), 1);
    check_sum(p, 1000, 0);
    qv_pool_free(p);
    QV_CK_FAIL(qv_pool_new(100000, &p), QV_EINVAL);
    ck_assert_ptr_null(p);
}
END_TEST

static void nested_inner(void *arg, size_t i, unsigned worker)
{
    sum_ctx *c = arg;
    if (worker >= c->threads) atomic_fetch_add(&c->bad_worker, 1);
    atomic_fetch_add_explicit(&c->nested_sum, i, memory_order_relaxed);
}

static void nested_outer(void *arg, size_t i, unsigned worker)
{
    sum_ctx *c = arg;
    (void)i;
    if (worker >= c->threads) atomic_fetch_add(&c->bad_worker, 1);
    qv_pool_run(c->pool, 100, 0, nested_inner, c);   /* same pool: must run inline */
}

START_TEST(test_pool_nested)
{
    unsigned sizes[] = {1, 2, 4};
    for (size_t s = 0; s < 3; s++) {
        sum_ctx c = {0};
        QV_CK(qv_pool_new(sizes[s], &c.pool));
        c.threads = sizes[s];
        qv_pool_run(c.pool, 64, 1, nested_outer, &c);
        ck_assert_uint_eq(atomic_load(&c.nested_sum), 64ull * 4950);
        ck_assert_uint_eq(atomic_load(&c.bad_worker), 0);
        qv_pool_free(c.pool);
    }
}
END_TEST

static void *concurrent_caller(void *arg)
{
    qv_pool *p = arg;
    for (int rep = 0; rep < 20; rep++) {
        sum_ctx c = {0};
        c.threads = qv_pool_threads(p);
        qv_pool_run(p, 10000, 0, sum_task, &c);
        if (atomic_load(&c.sum) != 10000ull * 9999 / 2 || atomic_load(&c.bad_worker))
            return (void *)1;
    }
    return NULL;
}

START_TEST(test_pool_concurrent_callers)
{
    qv_pool *p;
    QV_CK(qv_pool_new(3, &p));
    pthread_t t[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, concurrent_caller, p), 0);
    for (int i = 0; i < 2; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        ck_assert_ptr_null(ret);
    }
    qv_pool_free(p);
}
END_TEST

START_TEST(test_pool_shared)
{
    qv_pool *a = qv_pool_shared(2), *b = qv_pool_shared(2), *c = qv_pool_shared(3);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(a, b);
    ck_assert_ptr_ne(a, c);
    ck_assert_uint_eq(qv_pool_threads(c), 3);
    ck_assert_ptr_eq(qv_pool_shared(0), qv_pool_shared(qv_cpu_count()));
    check_sum(a, 100000, 0);
    check_sum(c, 100000, 0);
    /* concurrent callers of one shared pool */
    pthread_t t[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, concurrent_caller, c), 0);
    for (int i = 0; i < 2; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        ck_assert_ptr_null(ret);
    }
}
END_TEST

START_TEST(test_pool_alloc_failure)
{
    for (long k = 0; k < 10; k++) {
        qv_pool *p = (qv_pool *)1;
        qv_alloc_fail_after(k);
        int rc = qv_pool_new(4, &p);
        qv_alloc_fail_after(-1);
        if (rc == QV_OK) {
            check_sum(p, 1000, 0);
            qv_pool_free(p);
            break;
        }
        ck_assert_int_eq(rc, QV_ENOMEM);
        ck_assert_ptr_null(p);
    }
}
END_TEST

/* ------------------------------------------------------------------ crc32c */

static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = ~0u;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

START_TEST(test_crc32c_known_vectors)
{
    ck_assert_uint_eq(qv_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(qv_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(qv_crc32c(0, "", 0), 0);
    uint8_t z[32] = {0}, ff[32], inc[32], dec[32];
    for (int i = 0; i < 32; i++) { ff[i] = 0xFF; inc[i] = (uint8_t)i; dec[i] = (uint8_t)(31 - i); }
    /* RFC 3720 (iSCSI) appendix B.4 */
    ck_assert_uint_eq(qv_crc32c(0, z, 32), 0x8A9136AAu);
    ck_assert_uint_eq(qv_crc32c(0, ff, 32), 0x62A8AB43u);
    ck_assert_uint_eq(qv_crc32c(0, inc, 32), 0x46DD794Eu);
    ck_assert_uint_eq(qv_crc32c(0, dec, 32), 0x113FDB5Cu);
}
END_TEST

START_TEST(test_crc32c_matches_bitwise)
{
    uint8_t buf[1100];
    qv_rng r;
    qv_rng_seed(&r, 3);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)qv_rng_next(&r);
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len < 1000; len += 1 + len / 8) {
            uint32_t want = crc_bitwise(buf + off, len);
            ck_assert_uint_eq(qv_crc32c(0, buf + off, len), want);
            ck_assert_uint_eq(qv_crc32c_sw(0, buf + off, len), want);
            /* continuation: crc(a||b) == crc(crc(a), b) at every split */
            size_t cut = len / 3;
            ck_assert_uint_eq(qv_crc32c(qv_crc32c(0, buf + off, cut), buf + off + cut, len - cut), want);
            ck_assert_uint_eq(qv_crc32c_sw(qv_crc32c_sw(0, buf + off, cut), buf + off + cut, len - cut), want);
        }
}
END_TEST

/* ------------------------------------------------------------------ serial */

static void write_sample(qv_writer *w)
{
    QV_CK(qv_w_u32(w, 0xDEADBEEFu));
    QV_CK(qv_w_u64(w, 0x0123456789ABCDEFull));
    QV_CK(qv_w_f32(w, -1.5f));
    QV_CK(qv_w_bytes(w, "hello", 5));
    QV_CK(qv_w_bytes(w, NULL, 0));
}

/* Reads the sample back; returns the first failure (or the finish result). */
static int read_sample(const void *buf, size_t len, int check_values)
{
    qv_reader r;
    qv_reader_init(&r, buf, len, "sample.qv");
    uint32_t a;
    uint64_t b;
    float f;
    char s[5];
    const void *view;
    qv_r_u32(&r, &a, "magic");
    qv_r_u64(&r, &b, "count");
    qv_r_f32(&r, &f, "scale");
    qv_r_view(&r, &view, 2, "name");
    qv_r_bytes(&r, s, 3, "name tail");
    int rc = qv_reader_finish(&r);
    if (rc == QV_OK && check_values) {
        ck_assert_uint_eq(a, 0xDEADBEEFu);
        ck_assert_uint_eq(b, 0x0123456789ABCDEFull);
        ck_assert(f == -1.5f);
        ck_assert(memcmp(view, "he", 2) == 0 && memcmp(s, "llo", 3) == 0);
    }
    return rc;
}

START_TEST(test_serial_round_trip)
{
    qv_writer w;
    qv_writer_init(&w);
    write_sample(&w);
    void *buf;
    size_t len;
    QV_CK(qv_writer_finish(&w, &buf, &len));
    qv_writer_release(&w);
    ck_assert_uint_eq(len, 4 + 8 + 4 + 5 + 4);
    const uint8_t *b = buf;
    ck_assert_uint_eq(b[0], 0xEF);   /* little-endian on disk */
    ck_assert_uint_eq(b[4], 0xEF);
    ck_assert_uint_eq(b[11], 0x01);
    QV_CK(read_sample(buf, len, 1));
    QV_CK(qv_verify_crc(buf, len, "sample.qv"));

    /* every truncation is QV_ECORRUPT naming the file and an offset */
    for (size_t cut = 0; cut < len; cut++) {
        QV_CK_FAIL(read_sample(buf, cut, 0), QV_ECORRUPT);
        ck_assert_msg(strstr(qv_last_error(), "sample.qv") && strstr(qv_last_error(), "offset"),
                      "message: %s", qv_last_error());
        QV_CK_FAIL(qv_verify_crc(buf, cut, "sample.qv"), QV_ECORRUPT);
    }
    /* every flipped byte is caught by the CRC */
    uint8_t *copy = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, buf, len);
        copy[i] ^= 0x10;
        QV_CK_FAIL(read_sample(copy, len, 0), QV_ECORRUPT);
        QV_CK_FAIL(qv_verify_crc(copy, len, "sample.qv"), QV_ECORRUPT);
    }
    /* trailing garbage after the checksum */
    memcpy(copy, buf, len);
    copy[len] = 0;
    QV_CK_FAIL(read_sample(copy, len + 1, 0), QV_ECORRUPT);
    ck_assert_msg(strstr(qv_last_error(), "after the checksum"), "%s", qv_last_error());
    free(copy);
    qv_free(buf);
}
END_TEST

START_TEST(test_serial_messages_and_sticky)
{
    uint8_t data[10] = {0};
    qv_reader r;
    qv_reader_init(&r, data, sizeof data, "index.qv");
    uint64_t v;
    QV_CK(qv_r_u64(&r, &v, "header"));
    uint32_t x = 7;
    QV_CK_FAIL(qv_r_u32(&r, &x, "links"), QV_ECORRUPT);
    ck_assert_uint_eq(x, 0);
    ck_assert_msg(strstr(qv_last_error(), "index.qv: truncated at offset 8 reading links"),
                  "%s", qv_last_error());
    /* sticky: a read that would fit now fails too */
    uint8_t one;
    QV_CK_FAIL(qv_r_bytes(&r, &one, 1, "tail"), QV_ECORRUPT);
    QV_CK_FAIL(qv_reader_finish(&r), QV_ECORRUPT);

    qv_reader_init(&r, data, sizeof data, "snap");
    QV_CK(qv_r_u32(&r, &x, "a"));
    QV_CK_FAIL(qv_r_corrupt(&r, "level %d above max %d", 40, 16), QV_ECORRUPT);
    ck_assert_msg(strstr(qv_last_error(), "snap") && strstr(qv_last_error(), "offset 4") &&
                  strstr(qv_last_error(), "level 40 above max 16"), "%s", qv_last_error());
    QV_CK_FAIL(qv_r_u32(&r, &x, "b"), QV_ECORRUPT);

    /* huge lengths never wrap around */
    const void *p;
    qv_reader_init(&r, data, sizeof data, "snap");
    QV_CK(qv_r_u32(&r, &x, "a"));
    QV_CK_FAIL(qv_r_view(&r, &p, SIZE_MAX - 2, "huge"), QV_ECORRUPT);
    ck_assert_ptr_null(p);
    qv_reader_init(&r, NULL, 0, NULL);
    QV_CK_FAIL(qv_r_u32(&r, &x, "a"), QV_ECORRUPT);
    QV_CK_FAIL(qv_verify_crc(NULL, 0, NULL), QV_ECORRUPT);
}
END_TEST

START_TEST(test_serial_writer_oom)
{
    for (long k = 0; k < 5; k++) {
        qv_writer w;
        qv_writer_init(&w);
        qv_alloc_fail_after(k);
        uint8_t big[1000] = {0};
        int rc = QV_OK;
        for (int i = 0; i < 20; i++) {
            int r = qv_w_bytes(&w, big, sizeof big);
            if (rc == QV_OK) rc = r;
            else ck_assert_int_eq(r, QV_ENOMEM);   /* sticky */
        }
        void *buf = (void *)1;
        size_t len = 1;
        int frc = qv_writer_finish(&w, &buf, &len);
        qv_alloc_fail_after(-1);
        if (rc == QV_OK && frc == QV_OK) {
            ck_assert_uint_eq(len, 20004);
            qv_free(buf);
        } else {
            ck_assert_int_eq(frc, QV_ENOMEM);
            ck_assert_ptr_null(buf);
        }
        qv_writer_release(&w);
    }
    qv_writer_release(NULL);
}
END_TEST

START_TEST(test_serial_files)
{
    char *dir = make_tmpdir("qv-serial");
    char path[4200], path2[4200];
    snprintf(path, sizeof path, "%s/a.bin", dir);
    void *buf;
    size_t len;
    QV_CK_FAIL(qv_read_file(path, &buf, &len), QV_ENOTFOUND);
    ck_assert_msg(strstr(qv_last_error(), "a.bin") && strstr(qv_last_error(), "No such file"),
                  "%s", qv_last_error());
    QV_CK_FAIL(qv_read_file(dir, &buf, &len), QV_EIO);

    QV_CK(qv_write_file_atomic(path, "abc", 3));
    QV_CK(qv_read_file(path, &buf, &len));
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(buf, "abc", 3) == 0);
    qv_free(buf);
    /* replace, larger, then empty */
    static uint8_t big[100000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 31);
    QV_CK(qv_write_file_atomic(path, big, sizeof big));
    QV_CK(qv_read_file(path, &buf, &len));
    ck_assert_uint_eq(len, sizeof big);
    ck_assert(memcmp(buf, big, len) == 0);
    qv_free(buf);
    QV_CK(qv_write_file_atomic(path, NULL, 0));
    QV_CK(qv_read_file(path, &buf, &len));
    ck_assert_uint_eq(len, 0);
    qv_free(buf);
    /* no temp files left behind */
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
    ck_assert_int_eq(system(cmd), 0);
    /* a missing directory is QV_EIO */
    snprintf(path2, sizeof path2, "%s/nodir/b.bin", dir);
    QV_CK_FAIL(qv_write_file_atomic(path2, "x", 1), QV_EIO);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_serial_unwritable_dir)
{
    /* ENOSPC (-> QV_EFULL) cannot be provoked portably here; a directory that refuses
     * the temp file must give QV_EIO with the path in the message */
    int rc = qv_write_file_atomic("/proc/qv-not-allowed", "x", 1);
    ck_assert_int_eq(rc, QV_EIO);
    ck_assert_msg(strstr(qv_last_error(), "/proc/qv-not-allowed"), "%s", qv_last_error());
}
END_TEST

/* ------------------------------------------------------------------ idmap */

START_TEST(test_idmap_vs_reference)
{
    /* reference: a direct table over a small key universe so collisions, re-puts and
     * deletes of absent keys are frequent; keys are spread over 64 bits by a multiplier */
    enum { U = 3000 };
    static uint32_t ref[U];
    for (int i = 0; i < U; i++) ref[i] = QV_IDMAP_NONE;
    size_t live = 0;
    qv_idmap m;
    QV_CK(qv_idmap_init(&m, 0));
    qv_rng r;
    qv_rng_seed(&r, 99);
    int ops = sanitized() ? 30000 : 100000;
    for (int op = 0; op < ops; op++) {
        uint64_t k = qv_rng_below(&r, U);
        uint64_t key = k * 0x9E3779B97F4A7C15ull ^ (k & 1 ? UINT64_MAX : 0);
        unsigned what = (unsigned)qv_rng_below(&r, 10);
        if (what < 5) {
            uint32_t v = (uint32_t)qv_rng_below(&r, 1u << 31);
            QV_CK(qv_idmap_put(&m, key, v));
            live += ref[k] == QV_IDMAP_NONE;
            ref[k] = v;
        } else if (what < 8) {
            int was = qv_idmap_del(&m, key);
            ck_assert_int_eq(was, ref[k] != QV_IDMAP_NONE);
            live -= (size_t)was;
            ref[k] = QV_IDMAP_NONE;
        } else {
            ck_assert_uint_eq(qv_idmap_get(&m, key), ref[k]);
        }
        ck_assert_uint_eq(m.len, live);
        ck_assert(m.len * 10 <= m.cap * 7);
        if (op % 10000 == 0)
            for (uint64_t j = 0; j < U; j++)
                ck_assert_uint_eq(qv_idmap_get(&m, j * 0x9E3779B97F4A7C15ull ^ (j & 1 ? UINT64_MAX : 0)), ref[j]);
    }
    for (uint64_t j = 0; j < U; j++)
        ck_assert_uint_eq(qv_idmap_get(&m, j * 0x9E3779B97F4A7C15ull ^ (j & 1 ? UINT64_MAX : 0)), ref[j]);
    ck_assert_uint_eq(qv_idmap_memory(&m), m.cap * 12);
    qv_idmap_release(&m);
    qv_idmap_release(&m);
    qv_idmap_release(NULL);
}
END_TEST

START_TEST(test_idmap_sequential_and_edges)
{
    qv_idmap m;
    QV_CK(qv_idmap_init(&m, 1000));
    size_t cap0 = m.cap;
    ck_assert(cap0 * 7 >= 10000 && (cap0 & (cap0 - 1)) == 0);
    for (uint32_t i = 0; i < 1000; i++) QV_CK(qv_idmap_put(&m, i, i * 2));
    ck_assert_uint_eq(m.cap, cap0);   /* expected = 1000 means no rehash */
    QV_CK(qv_idmap_put(&m, 0, 5));
    QV_CK(qv_idmap_put(&m, UINT64_MAX, 6));
    ck_assert_uint_eq(qv_idmap_get(&m, 0), 5);
    ck_assert_uint_eq(qv_idmap_get(&m, UINT64_MAX), 6);
    ck_assert_uint_eq(qv_idmap_get(&m, 5000), QV_IDMAP_NONE);
    ck_assert_uint_eq(m.len, 1001);
    for (uint32_t i = 0; i < 1000; i += 2) ck_assert_int_eq(qv_idmap_del(&m, i), 1);
    ck_assert_int_eq(qv_idmap_del(&m, 0), 0);
    for (uint32_t i = 1; i < 1000; i += 2) ck_assert_uint_eq(qv_idmap_get(&m, i), i * 2);
    for (uint32_t i = 0; i < 1000; i += 2) ck_assert_uint_eq(qv_idmap_get(&m, i), QV_IDMAP_NONE);
    /* reserve then insert: no growth in between */
    QV_CK(qv_idmap_reserve(&m, 100000));
    size_t cap1 = m.cap;
    for (uint32_t i = 0; i < 100000; i++) QV_CK(qv_idmap_put(&m, 1000000 + i, i));
    ck_assert_uint_eq(m.cap, cap1);
    /* failed growth leaves the map unchanged */
    qv_alloc_fail_after(0);
    int rc = qv_idmap_reserve(&m, 1000000);
    qv_alloc_fail_after(-1);
    ck_assert_int_eq(rc, QV_ENOMEM);
    ck_assert_uint_eq(m.cap, cap1);
    ck_assert_uint_eq(qv_idmap_get(&m, 1000000 + 777), 777);
    ck_assert_int_eq(qv_idmap_reserve(&m, SIZE_MAX), QV_ENOMEM);
    qv_idmap_release(&m);

    /* empty (released) map answers queries */
    ck_assert_uint_eq(qv_idmap_get(&m, 1), QV_IDMAP_NONE);
    ck_assert_int_eq(qv_idmap_del(&m, 1), 0);
    qv_alloc_fail_after(0);
    QV_CK_FAIL(qv_idmap_init(&m, 10), QV_ENOMEM);
    qv_alloc_fail_after(1);
    QV_CK_FAIL(qv_idmap_init(&m, 10), QV_ENOMEM);   /* second array fails: first freed */
    qv_alloc_fail_after(-1);
    QV_CK(qv_idmap_init(&m, 0));
    /* growth under a failing allocator: map unchanged */
    for (uint32_t i = 0; i < 11; i++) QV_CK(qv_idmap_put(&m, i, i));
    qv_alloc_fail_after(0);
    for (uint32_t i = 11; i < 100; i++) {
        rc = qv_idmap_put(&m, i, i);
        if (rc != QV_OK) {
            ck_assert_int_eq(rc, QV_ENOMEM);
            ck_assert_uint_eq(qv_idmap_get(&m, i), QV_IDMAP_NONE);
            break;
        }
    }
    qv_alloc_fail_after(-1);
    for (uint32_t i = 0; i < 11; i++) ck_assert_uint_eq(qv_idmap_get(&m, i), i);
    qv_idmap_release(&m);
}
END_TEST

/* ------------------------------------------------------------------ suites */

extern Suite *qv_bitset_suite(void);   /* "extern": the Makefile lists definitions only */
extern Suite *qv_rng_suite(void);   /* "extern": the Makefile lists definitions only */
extern Suite *qv_pool_suite(void);   /* "extern": the Makefile lists definitions only */
extern Suite *qv_pool_concurrency_suite(void);   /* "extern": the Makefile lists definitions only */
extern Suite *qv_crc32c_suite(void);   /* "extern": the Makefile lists definitions only */
extern Suite *qv_serial_suite(void);   /* "extern": the Makefile lists definitions only */
extern Suite *qv_idmap_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_bitset_suite(void)
{
    Suite *s = suite_create("bitset");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bitset_matches_bool_array);
    tcase_add_test(tc, test_bitset_edges);
    suite_add_tcase(s, tc);
    return s;
}

Suite *qv_rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rng_reproducible);
    tcase_add_test(tc, test_rng_distributions);
    suite_add_tcase(s, tc);
    return s;
}

static TCase *pool_tcase(void)
{
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pool_sum);
    tcase_add_test(tc, test_pool_nested);
    tcase_add_test(tc, test_pool_concurrent_callers);
    tcase_add_test(tc, test_pool_shared);
    tcase_add_test(tc, test_pool_alloc_failure);
    return tc;
}

Suite *qv_pool_suite(void)
{
    Suite *s = suite_create("pool");
    suite_add_tcase(s, pool_tcase());
    return s;
}

/* The same pool tests under the name that `make tsan-test` runs. */
Suite *qv_pool_concurrency_suite(void)
{
    Suite *s = suite_create("concurrency");
    suite_add_tcase(s, pool_tcase());
    return s;
}

Suite *qv_crc32c_suite(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_crc32c_known_vectors);
    tcase_add_test(tc, test_crc32c_matches_bitwise);
    suite_add_tcase(s, tc);
    return s;
}

Suite *qv_serial_suite(void)
{
    Suite *s = suite_create("serial");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_serial_round_trip);
    tcase_add_test(tc, test_serial_messages_and_sticky);
    tcase_add_test(tc, test_serial_writer_oom);
    tcase_add_test(tc, test_serial_files);
    tcase_add_test(tc, test_serial_unwritable_dir);
    suite_add_tcase(s, tc);
    return s;
}

Suite *qv_idmap_suite(void)
{
    Suite *s = suite_create("idmap");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_idmap_vs_reference);
    tcase_add_test(tc, test_idmap_sequential_and_edges);
    suite_add_tcase(s, tc);
    return s;
}
