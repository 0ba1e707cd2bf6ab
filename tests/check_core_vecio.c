/*
 * tests/check_core_vecio.c -- core/vecio: .fvecs/.bvecs/.ivecs/.npy readers on valid
 * files of every kind and on each malformed case (every one must be QV_ECORRUPT with
 * the file name and an offset in the message), plus the siftsmall files when present.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "tests/test_util.h"

static char *tmp;                 /* per-test temporary directory */
static char pathbuf[4200];

static void setup(void) { tmp = make_tmpdir("qv-vecio"); }
static void teardown(void)
{
    rm_rf(tmp);
    free(tmp);
    tmp = NULL;
}

/* A growable byte buffer for building files. */
typedef struct { unsigned char *b; size_t len, cap; } bytes;

static void put(bytes *x, const void *p, size_t n)
{
    if (x->len + n > x->cap) {
        x->cap = (x->len + n) * 2 + 64;
        x->b = realloc(x->b, x->cap);
        ck_assert_ptr_nonnull(x->b);
    }
    memcpy(x->b + x->len, p, n);
    x->len += n;
}
static void put_i32(bytes *x, int32_t v) { put(x, &v, 4); }

static const char *write_file(const char *name, const void *p, size_t n)
{
    snprintf(pathbuf, sizeof pathbuf, "%s/%s", tmp, name);
    FILE *f = fopen(pathbuf, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
    return pathbuf;
}

/* n records of dimension dim; element size es (4 or 1), values from a formula */
static bytes texmex(size_t n, int32_t dim, size_t es)
{
    bytes x = {0};
    for (size_t i = 0; i < n; i++) {
        put_i32(&x, dim);
        for (int32_t j = 0; j < dim; j++) {
            if (es == 1) {
                unsigned char c = (unsigned char)(i * 7 + (size_t)j * 13);
                put(&x, &c, 1);
            } else {
                float f = (float)i - 0.25f * (float)j;
                put(&x, &f, 4);
            }
        }
    }
    return x;
}

/* A .npy file: version major, header dict text, padded to 64 with spaces + '\n'. */
static bytes npy(int major, const char *dict, size_t nfloats)
{
    bytes x = {0};
    put(&x, "\x93NUMPY", 6);
    unsigned char ver[2] = {(unsigned char)major, 0};
    put(&x, ver, 2);
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hlen = dl + 1;
    while ((pre + hlen) % 64) hlen++;
    if (major == 1) {
        unsigned char l[2] = {(unsigned char)hlen, (unsigned char)(hlen >> 8)};
        put(&x, l, 2);
    } else {
        put_i32(&x, (int32_t)hlen);
    }
    put(&x, dict, dl);
    for (size_t i = dl; i + 1 < hlen; i++) put(&x, " ", 1);
    put(&x, "\n", 1);
    for (size_t i = 0; i < nfloats; i++) {
        float f = (float)i * 0.5f;
        put(&x, &f, 4);
    }
    return x;
}

static void expect_corrupt(const char *name, const bytes *x, const char *needle)
{
    const char *path = write_file(name, x->b, x->len);
    float *v = (float *)1;
    size_t n = 7, d = 7;
    int rc;
    if (strstr(name, ".ivecs")) rc = qv_read_ivecs(path, (int32_t **)&v, &n, &d);
    else rc = qv_read_vectors(path, &v, &n, &d);
    ck_assert_msg(rc == QV_ECORRUPT, "%s: got %s (%s)", name, qv_strerror(rc), qv_last_error());
    ck_assert_ptr_null(v);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(d, 0);
    const char *msg = qv_last_error();
    ck_assert_msg(strstr(msg, name) && strstr(msg, "offset"), "%s: message '%s'", name, msg);
    if (needle) ck_assert_msg(strstr(msg, needle), "%s: '%s' lacks '%s'", name, msg, needle);
}

START_TEST(test_fvecs_bvecs_ivecs_valid)
{
    bytes x = texmex(5, 3, 4);
    float *v;
    size_t n, d;
    QV_CK(qv_read_vectors(write_file("a.fvecs", x.b, x.len), &v, &n, &d));
    ck_assert_uint_eq(n, 5);
    ck_assert_uint_eq(d, 3);
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < 3; j++) ck_assert(v[i * 3 + j] == (float)i - 0.25f * (float)j);
    qv_free(v);
    /* upper-case extension, dimension 1 */
    free(x.b);
    x = texmex(4, 1, 4);
    QV_CK(qv_read_vectors(write_file("b.FVECS", x.b, x.len), &v, &n, &d));
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(d, 1);
    qv_free(v);
    free(x.b);

    x = texmex(6, 300, 1);
    QV_CK(qv_read_vectors(write_file("c.bvecs", x.b, x.len), &v, &n, &d));
    ck_assert_uint_eq(n, 6);
    ck_assert_uint_eq(d, 300);
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < 300; j++)
            ck_assert(v[i * 300 + j] == (float)(unsigned char)(i * 7 + j * 13));
    qv_free(v);
    free(x.b);

    bytes y = {0};
    for (int32_t i = 0; i < 4; i++) {
        put_i32(&y, 2);
        put_i32(&y, i);
        put_i32(&y, -i - 100);
    }
    int32_t *iv;
    QV_CK(qv_read_ivecs(write_file("g.ivecs", y.b, y.len), &iv, &n, &d));
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(d, 2);
    for (int32_t i = 0; i < 4; i++) {
        ck_assert_int_eq(iv[i * 2], i);
        ck_assert_int_eq(iv[i * 2 + 1], -i - 100);
    }
    qv_free(iv);
    /* any extension but the float ones is read as ivecs */
    QV_CK(qv_read_ivecs(write_file("g.bin", y.b, y.len), &iv, &n, &d));
    qv_free(iv);
    free(y.b);

    /* many records: crosses the 1 MiB read blocks */
    x = texmex(3000, 128, 4);
    QV_CK(qv_read_vectors(write_file("big.fvecs", x.b, x.len), &v, &n, &d));
    ck_assert_uint_eq(n, 3000);
    ck_assert(v[2999 * 128 + 127] == 2999.0f - 0.25f * 127);
    qv_free(v);
    free(x.b);
    /* the largest dimension */
    x = texmex(2, (int32_t)QV_MAX_DIM, 1);
    QV_CK(qv_read_vectors(write_file("max.bvecs", x.b, x.len), &v, &n, &d));
    ck_assert_uint_eq(d, QV_MAX_DIM);
    qv_free(v);
    free(x.b);
}
END_TEST

START_TEST(test_texmex_malformed)
{
    bytes e = {0};
    expect_corrupt("empty.fvecs", &e, "empty");
    expect_corrupt("empty.bvecs", &e, "empty");
    expect_corrupt("empty.ivecs", &e, "empty");

    bytes x = texmex(4, 3, 4);   /* records of 16 bytes */
    bytes t = x;
    t.len = x.len - 5;
    expect_corrupt("trunc.fvecs", &t, "offset 48");
    t.len = x.len - 14;          /* 2 bytes of record 3: less than a dimension */
    expect_corrupt("tail2.fvecs", &t, "partial record");
    t.len = 2;
    expect_corrupt("tiny.fvecs", &t, "offset 0");
    t.len = 10;                  /* one record that does not fit */
    expect_corrupt("short.fvecs", &t, "truncated record 0");
    expect_corrupt("trunc.ivecs", &(bytes){x.b, x.len - 1, 0}, "partial record");

    /* bad dimensions */
    int32_t bad[] = {0, -1, INT32_MIN, (int32_t)QV_MAX_DIM + 1, INT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bytes b = {0};
        put_i32(&b, bad[i]);
        put_i32(&b, 0);
        char name[64];
        snprintf(name, sizeof name, "dim%zu.fvecs", i);
        expect_corrupt(name, &b, "outside 1..");
        snprintf(name, sizeof name, "dim%zu.bvecs", i);
        expect_corrupt(name, &b, "outside 1..");
        free(b.b);
    }

    /* inconsistent dimension in record 2 (offset 32), same total size */
    bytes c = {0};
    put(&c, x.b, x.len);
    int32_t four = 4, two = 2;
    memcpy(c.b + 32, &four, 4);
    expect_corrupt("incons.fvecs", &c, "offset 32");
    ck_assert(strstr(qv_last_error(), "record 2 has dimension 4"));
    /* a shorter last record: reported as the dimension change, not a bare tail */
    bytes s = {0};
    put(&s, x.b, 48);
    put_i32(&s, two);
    float f2[2] = {1, 2};
    put(&s, f2, 8);
    expect_corrupt("shortlast.fvecs", &s, "record 3 has dimension 2");
    free(s.b);
    free(c.b);
    free(x.b);

    /* every truncation of a valid file fails cleanly */
    x = texmex(3, 5, 4);
    for (size_t cut = 0; cut < x.len; cut++) {
        if (cut && cut % 24 == 0) continue;   /* whole records: a valid shorter file */
        bytes tt = {x.b, cut, 0};
        expect_corrupt("cut.fvecs", &tt, NULL);
    }
    free(x.b);
}
END_TEST

START_TEST(test_npy_valid)
{
    const char *dicts[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3)}",
        "{\"shape\": (4,3), \"fortran_order\": False, \"descr\": \"<f4\"}",
        "{ 'fortran_order' : False , 'descr' : '<f4' , 'shape' : ( 4 , 3 , ) , }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4L, 3L), }",
    };
    for (int major = 1; major <= 3; major++)
        for (size_t k = 0; k < sizeof dicts / sizeof *dicts; k++) {
            bytes x = npy(major, dicts[k], 12);
            float *v;
            size_t n, d;
            int rc = qv_read_vectors(write_file("a.npy", x.b, x.len), &v, &n, &d);
            ck_assert_msg(rc == QV_OK, "v%d dict %zu: %s", major, k, qv_last_error());
            ck_assert_uint_eq(n, 4);
            ck_assert_uint_eq(d, 3);
            for (size_t i = 0; i < 12; i++) ck_assert(v[i] == (float)i * 0.5f);
            qv_free(v);
            free(x.b);
        }
    /* 1-D shape (d,) is one row */
    bytes x = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 5);
    float *v;
    size_t n, d;
    QV_CK(qv_read_vectors(write_file("row.npy", x.b, x.len), &v, &n, &d));
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(d, 5);
    ck_assert(v[4] == 2.0f);
    qv_free(v);
    free(x.b);
}
END_TEST

START_TEST(test_npy_malformed)
{
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }";
    struct { const char *dict; size_t nf; const char *needle; } cases[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3), }", 24, "'<f8'"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (4, 3), }", 12, "'>f4'"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (4, 3), }", 12, "dtype"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (4, 3), }", 12, "fortran_order"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4, 3), }", 12, "fortran_order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", 11, "needs 48 data bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", 13, "needs 48 data bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", 0, "needs 48"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 3), }", 12, "3 dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 1, "0 dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (12), }", 12, "trailing comma"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0, "no rows"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", 0, "outside 1.."},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 65537), }", 65537, "outside 1.."},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 65536), }", 0, "overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 3), }", 0, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-4, 3), }", 12, "integer"},
        {"{'descr': '<f4', 'fortran_order': False}", 12, "missing key 'shape'"},
        {"{'descr': '<f4', 'shape': (4, 3)}", 12, "missing key 'fortran_order'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4, 3)}", 12, "repeated"},
        {"{'descr': '<f4', 'extra': 1, 'fortran_order': False, 'shape': (4, 3)}", 12, "unknown key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3)} x", 12, "after the dictionary"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (4, 3)}", 12, "expected"},
        {"['descr', '<f4']", 12, "expected '{'"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (4, 3)}", 12, NULL},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3),", 12, "expected"},
        {"", 12, "expected '{'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int major = 1; major <= 2; major++) {
            bytes x = npy(major, cases[i].dict, cases[i].nf);
            char name[64];
            snprintf(name, sizeof name, "case%zu_v%d.npy", i, major);
            expect_corrupt(name, &x, cases[i].needle);
            free(x.b);
        }
    }

    bytes x = npy(1, good, 12);
    /* bad magic, unsupported versions */
    x.b[1] = 'X';
    expect_corrupt("magic.npy", &x, "magic");
    x.b[1] = 'N';
    x.b[6] = 4;
    expect_corrupt("ver4.npy", &x, "version 4.0");
    x.b[6] = 1;
    x.b[7] = 1;
    expect_corrupt("ver11.npy", &x, "version 1.1");
    x.b[7] = 0;
    /* a header length beyond the file */
    x.b[8] = 0xFF;
    x.b[9] = 0x7F;
    expect_corrupt("hlen.npy", &x, "truncated");
    free(x.b);
    /* a huge header length (v2: u32) */
    x = npy(2, good, 12);
    x.b[8] = x.b[9] = x.b[10] = 0xFF;
    x.b[11] = 0x7F;
    expect_corrupt("hhuge.npy", &x, "exceeds");
    free(x.b);
    /* a NUL inside the header */
    x = npy(1, good, 12);
    x.b[20] = 0;
    expect_corrupt("nul.npy", &x, "NUL");
    free(x.b);
    /* every truncation of a valid file */
    x = npy(1, good, 12);
    for (size_t cut = 0; cut < x.len; cut++) {
        bytes tt = {x.b, cut, 0};
        expect_corrupt("cut.npy", &tt, NULL);
    }
    /* random byte damage in the header never crashes: OK or QV_ECORRUPT */
    unsigned seed = 12345;
    for (int it = 0; it < 2000; it++) {
        bytes y = {0};
        put(&y, x.b, x.len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            y.b[(seed >> 8) % 128] = (unsigned char)(seed >> 20);
        }
        float *v;
        size_t n, d;
        int rc = qv_read_vectors(write_file("fuzz.npy", y.b, y.len), &v, &n, &d);
        ck_assert_msg(rc == QV_OK || rc == QV_ECORRUPT, "%s", qv_last_error());
        if (rc == QV_OK) {
            ck_assert_uint_eq(n * d * 4, y.len - 128);
            qv_free(v);
        }
        free(y.b);
    }
    free(x.b);
}
END_TEST

START_TEST(test_vecio_paths)
{
    float *v = (float *)1;
    size_t n = 1, d = 1;
    bytes x = texmex(2, 2, 4);
    QV_CK_FAIL(qv_read_vectors(write_file("a.txt", x.b, x.len), &v, &n, &d), QV_EINVAL);
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(qv_last_error(), ".txt"), "%s", qv_last_error());
    QV_CK_FAIL(qv_read_vectors(write_file("noext", x.b, x.len), &v, &n, &d), QV_EINVAL);
    snprintf(pathbuf, sizeof pathbuf, "%s/dir.d/file", tmp);
    QV_CK_FAIL(qv_read_vectors(pathbuf, &v, &n, &d), QV_EINVAL);   /* the dot is in the dir */
    int32_t *iv;
    QV_CK_FAIL(qv_read_ivecs(write_file("a.fvecs", x.b, x.len), &iv, &n, &d), QV_EINVAL);
    QV_CK_FAIL(qv_read_vectors(NULL, &v, &n, &d), QV_EINVAL);
    snprintf(pathbuf, sizeof pathbuf, "%s/missing.fvecs", tmp);
    QV_CK_FAIL(qv_read_vectors(pathbuf, &v, &n, &d), QV_ENOTFOUND);
    ck_assert_msg(strstr(qv_last_error(), "missing.fvecs"), "%s", qv_last_error());
    snprintf(pathbuf, sizeof pathbuf, "%s/missing.ivecs", tmp);
    QV_CK_FAIL(qv_read_ivecs(pathbuf, &iv, &n, &d), QV_ENOTFOUND);
    snprintf(pathbuf, sizeof pathbuf, "%s/sub.fvecs", tmp);
    ck_assert_int_eq(mkdir(pathbuf, 0700), 0);
    QV_CK_FAIL(qv_read_vectors(pathbuf, &v, &n, &d), QV_EIO);
    free(x.b);
}
END_TEST

typedef struct { const char *path; bytes data; } fifo_job;

static void *fifo_writer(void *arg)
{
    fifo_job *j = arg;
    int fd = open(j->path, O_WRONLY);
    if (fd >= 0) {
        size_t off = 0;
        while (off < j->data.len) {
            ssize_t w = write(fd, j->data.b + off, j->data.len - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        close(fd);
    }
    return NULL;
}

START_TEST(test_vecio_fifo)
{
    /* non-regular files are read into memory first and parsed the same way */
    char path[4200];
    snprintf(path, sizeof path, "%s/pipe.npy", tmp);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    fifo_job j = {path, npy(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (70000, 2), }", 140000)};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fifo_writer, &j), 0);
    float *v;
    size_t n, d;
    int rc = qv_read_vectors(path, &v, &n, &d);
    pthread_join(t, NULL);
    QV_CK(rc);
    ck_assert_uint_eq(n, 70000);
    ck_assert_uint_eq(d, 2);
    ck_assert(v[139999] == 139999 * 0.5f);
    qv_free(v);
    free(j.data.b);
}
END_TEST

START_TEST(test_vecio_alloc_failures)
{
    bytes x = texmex(10, 4, 4), y = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", 12);
    char p1[4200], p2[4200];
    snprintf(p1, sizeof p1, "%s", write_file("a.fvecs", x.b, x.len));
    snprintf(p2, sizeof p2, "%s", write_file("a.npy", y.b, y.len));
    const char *paths[] = {p1, p2};
    for (int f = 0; f < 2; f++) {
        int ok = 0;
        for (long k = 0; k < 20 && !ok; k++) {
            float *v = (float *)1;
            size_t n, d;
            qv_alloc_fail_after(k);
            int rc = qv_read_vectors(paths[f], &v, &n, &d);
            qv_alloc_fail_after(-1);
            if (rc == QV_OK) {
                ok = 1;
                qv_free(v);
            } else {
                ck_assert_msg(rc == QV_ENOMEM, "k=%ld: %s", k, qv_last_error());
                ck_assert_ptr_null(v);
            }
        }
        ck_assert(ok);
    }
    free(x.b);
    free(y.b);
}
END_TEST

START_TEST(test_vecio_siftsmall)
{
    char base[4096], gt[4096], qpath[4096];
    if (!data_path(base, sizeof base, "siftsmall", "base.fvecs") ||
        !data_path(gt, sizeof gt, "siftsmall", "groundtruth.ivecs") ||
        !data_path(qpath, sizeof qpath, "siftsmall", "query.fvecs")) {
        test_skip(TEST_SKIP_MISSING, "vecio: siftsmall not found (%s)", base);
        return;
    }
    float *b, *q;
    int32_t *g;
    size_t n, d, nq, dq, ng, dg;
    QV_CK(qv_read_vectors(base, &b, &n, &d));
    ck_assert_uint_eq(n, 10000);
    ck_assert_uint_eq(d, 128);
    QV_CK(qv_read_vectors(qpath, &q, &nq, &dq));
    ck_assert_uint_eq(nq, 100);
    ck_assert_uint_eq(dq, 128);
    QV_CK(qv_read_ivecs(gt, &g, &ng, &dg));
    ck_assert_uint_eq(ng, 100);
    ck_assert_uint_eq(dg, 100);
    for (size_t i = 0; i < ng * dg; i++) ck_assert(g[i] >= 0 && g[i] < 10000);
    for (size_t i = 0; i < n * d; i++) ck_assert(b[i] >= 0 && b[i] <= 255 && b[i] == (float)(int)b[i]);
    /* the ground truth's nearest neighbour of a few queries is the true nearest */
    for (size_t qi = 0; qi < 5; qi++) {
        double best = ref_l2sq(q + qi * d, b + (size_t)g[qi * dg] * d, d);
        for (size_t i = 0; i < n; i++) ck_assert(ref_l2sq(q + qi * d, b + i * d, d) >= best);
    }
    qv_free(b);
    qv_free(q);
    qv_free(g);
}
END_TEST

extern Suite *qv_vecio_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_vecio_suite(void)
{
    Suite *s = suite_create("vecio");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fvecs_bvecs_ivecs_valid);
    tcase_add_test(tc, test_texmex_malformed);
    tcase_add_test(tc, test_npy_valid);
    tcase_add_test(tc, test_npy_malformed);
    tcase_add_test(tc, test_vecio_paths);
    tcase_add_test(tc, test_vecio_fifo);
    tcase_add_test(tc, test_vecio_alloc_failures);
    tcase_add_test(tc, test_vecio_siftsmall);
    suite_add_tcase(s, tc);
    return s;
}
