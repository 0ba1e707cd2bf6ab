/*
 * tests/check_index_hnsw_open.c -- qv_index_open: an HNSW index mapped in place from its
 * file. It must answer exactly as the index it was saved from and as qv_index_load's copy;
 * take writes (copy-on-write pages, growth past the file's slots) and then be the same
 * index as one that took the same writes in memory (saved bytes equal, one thread); and
 * turn every damaged file into QV_ECORRUPT: at open for truncation and what searches rely
 * on, at qv_index_verify (and every later write) for the rest -- with searches meanwhile
 * still safe (ASan watches the flipped-link cases).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "index/hnsw.h"
#include "tests/test_util.h"

static qv_index *build(size_t n, size_t dim, qv_metric metric, uint32_t threads, uint64_t seed)
{
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_HNSW, (uint32_t)dim, metric);
    p.m = 8;
    p.ef_construction = 60;
    p.threads = threads;
    QV_CK(qv_index_new(&p, &ix));
    float *x = random_vectors(n, dim, seed);
    uint64_t *ids = malloc(n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++) ids[i] = 5000 + 3 * i;
    QV_CK(qv_index_add(ix, n, ids, x));
    uint64_t del[40];
    for (size_t i = 0; i < 40; i++) del[i] = ids[(i * 37) % n];
    QV_CK(qv_index_remove(ix, 40, del, NULL));      /* free slots travel too */
    free(x);
    free(ids);
    return ix;
}

static void same_answers(const qv_index *a, const qv_index *b, size_t dim, uint64_t seed)
{
    const size_t nq = 40, k = 10;
    float *q = random_vectors(nq, dim, seed);
    qv_search_params sp;
    qv_search_params_init(&sp, (uint32_t)k);
    sp.ef = 40;
    for (size_t i = 0; i < nq; i++) {
        qv_hit h1[10], h2[10];
        size_t n1, n2;
        QV_CK(qv_index_search(a, q + i * dim, &sp, h1, &n1));
        QV_CK(qv_index_search(b, q + i * dim, &sp, h2, &n2));
        ck_assert_uint_eq(n1, n2);
        for (size_t j = 0; j < n1; j++) {
            ck_assert_uint_eq(h1[j].id, h2[j].id);
            ck_assert(h1[j].score == h2[j].score);
        }
    }
    free(q);
}

static void *save_buf(const qv_index *ix, size_t *len)
{
    void *buf = NULL;
    QV_CK(qv_index_save_mem(ix, &buf, len));
    return buf;
}

START_TEST(test_open_answers_like_load)
{
    const size_t n = 3000, dim = 16;
    char *dir = make_tmpdir("qv-open"), path[4200];
    snprintf(path, sizeof path, "%s/ix.qv", dir);
    qv_index *ix = build(n, dim, QV_METRIC_COSINE, 2, 21), *lx = NULL, *ox = NULL;
    QV_CK(qv_index_save(ix, path));
    QV_CK(qv_index_load(path, &lx));
    QV_CK(qv_index_open(path, &ox));
    ck_assert_uint_eq(qv_index_size(ox), qv_index_size(ix));
    same_answers(ix, ox, dim, 22);
    same_answers(lx, ox, dim, 23);
    /* The file may go while the index is open: it lives on in the mapping. */
    ck_assert_int_eq(unlink(path), 0);
    same_answers(ix, ox, dim, 24);
    QV_CK(qv_index_verify(ox));
    QV_CK(qv_index_verify(ox));                       /* idempotent */
    qv_hnsw_report r;
    QV_CK(qv_hnsw_check(ox, &r));
    ck_assert_uint_eq(r.live, n - 40);
    ck_assert_uint_eq(r.reachable, r.live);
    /* Saved again, it is the same file. */
    size_t l1, l2;
    void *b1 = save_buf(ix, &l1), *b2 = save_buf(ox, &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert(memcmp(b1, b2, l1) == 0);
    qv_free(b1);
    qv_free(b2);
    qv_index_free(ix);
    qv_index_free(lx);
    qv_index_free(ox);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* Writes on a mapped index: inserts that reuse freed slots, go past the file's slots and
 * relink old nodes (copy-on-write pages), replacements and deletes. One thread, the same
 * operations on the in-memory original: both must save to the same bytes. The file is
 * never written. */
START_TEST(test_open_then_write)
{
    const size_t n = 2000, dim = 8, more = 700;
    char *dir = make_tmpdir("qv-open"), path[4200];
    snprintf(path, sizeof path, "%s/ix.qv", dir);
    qv_index *ix = build(n, dim, QV_METRIC_L2, 1, 31), *ox = NULL;
    QV_CK(qv_index_save(ix, path));
    void *file0 = NULL;
    size_t flen0 = 0;
    {
        FILE *f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        fseek(f, 0, SEEK_END);
        flen0 = (size_t)ftell(f);
        rewind(f);
        file0 = malloc(flen0);
        ck_assert_uint_eq(fread(file0, 1, flen0, f), flen0);
        fclose(f);
    }
    QV_CK(qv_index_open(path, &ox));
    /* The file does not hold the thread count; one thread makes the inserts replayable. */
    ox->p.threads = 1;
    ox->pool = qv_pool_shared(1);
    float *x = random_vectors(more, dim, 32);
    uint64_t *ids = malloc(more * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < more; i++) ids[i] = i < 100 ? 5000 + 3 * i : 900000 + i;   /* 100 replace */
    qv_index *both[2] = {ix, ox};
    for (int w = 0; w < 2; w++) {
        QV_CK(qv_index_add(both[w], more, ids, x));
        uint64_t del[30];
        for (size_t i = 0; i < 30; i++) del[i] = ids[i * 11];
        QV_CK(qv_index_remove(both[w], 30, del, NULL));
        QV_CK(qv_index_add(both[w], 20, del, x + 100 * dim));
    }
    same_answers(ix, ox, dim, 33);
    size_t l1, l2;
    void *b1 = save_buf(ix, &l1), *b2 = save_buf(ox, &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert(memcmp(b1, b2, l1) == 0);
    qv_hnsw_report r;
    QV_CK(qv_hnsw_check(ox, &r));
    ck_assert_uint_eq(r.reachable, r.live);
    ck_assert_uint_eq(r.dangling + r.self_links + r.bad_level + r.over_degree, 0);
    /* The file under the mapping is untouched. */
    {
        FILE *f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        uint8_t *now = malloc(flen0);
        ck_assert_uint_eq(fread(now, 1, flen0, f), flen0);
        fclose(f);
        ck_assert(memcmp(now, file0, flen0) == 0);
        free(now);
    }
    qv_free(b1);
    qv_free(b2);
    free(file0);
    free(x);
    free(ids);
    qv_index_free(ix);
    qv_index_free(ox);
    rm_rf(dir);
    free(dir);
}
END_TEST

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Open a damaged file: QV_ECORRUPT now, or a working index whose verification (and so
 * every write) says QV_ECORRUPT -- the checksum covers every byte. Returns 1 if it
 * failed at open. */
static int open_damaged(const char *path, size_t dim)
{
    qv_index *ix = NULL;
    int rc = qv_index_open(path, &ix);
    if (rc != QV_OK) {
        ck_assert_msg(rc == QV_ECORRUPT, "open: %s: %s", qv_strerror(rc), qv_last_error());
        ck_assert_ptr_null(ix);
        ck_assert_msg(strstr(qv_last_error(), path) != NULL, "message names the file: %s", qv_last_error());
        return 1;
    }
    float q[8] = {0.5f, -0.25f, 0.125f, 0.3f, -0.7f, 0.1f, 0.2f, -0.4f};
    qv_hit hits[5];
    size_t nh;
    qv_search_params sp;
    qv_search_params_init(&sp, 5);
    sp.ef = 50;
    ck_assert_uint_le(dim, 8);
    QV_CK(qv_index_search(ix, q, &sp, hits, &nh));
    QV_CK_FAIL(qv_index_verify(ix), QV_ECORRUPT);
    uint64_t id = 77;
    QV_CK_FAIL(qv_index_add(ix, 1, &id, q), QV_ECORRUPT);
    QV_CK_FAIL(qv_index_remove(ix, 1, &id, NULL), QV_ECORRUPT);
    void *buf = NULL;
    size_t len = 0;
    QV_CK_FAIL(qv_index_save_mem(ix, &buf, &len), QV_ECORRUPT);
    QV_CK(qv_index_search(ix, q, &sp, hits, &nh));     /* still serves */
    qv_index_free(ix);
    return 0;
}

START_TEST(test_open_damaged)
{
    const size_t n = 150, dim = 4;
    char *dir = make_tmpdir("qv-open"), path[4200];
    snprintf(path, sizeof path, "%s/ix.qv", dir);
    qv_index *ix = build(n, dim, QV_METRIC_L2, 1, 41);
    size_t len;
    uint8_t *buf = save_buf(ix, &len), *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    /* Sound file: opens and verifies. */
    write_file(path, buf, len);
    {
        qv_index *ox = NULL;
        QV_CK(qv_index_open(path, &ox));
        QV_CK(qv_index_verify(ox));
        qv_index_free(ox);
    }
    /* Truncated anywhere: refused at open (the array table is checked against the size). */
    for (size_t cut = 0; cut < len; cut += cut < 200 ? 1 : 97) {
        write_file(path, buf, cut);
        ck_assert_int_eq(open_damaged(path, dim), 1);
    }
    /* Flipped bytes: caught at open or by the verification; never a crash. */
    size_t at_open = 0, later = 0;
    size_t step = sanitized() ? 13 : 3;
    for (size_t i = 0; i < len; i += (i < 400 ? 1 : step)) {
        memcpy(copy, buf, len);
        copy[i] ^= 0x5a;
        write_file(path, copy, len);
        if (open_damaged(path, dim)) at_open++;
        else later++;
    }
    ck_assert(at_open > 0 && later > 0);
    /* A link pointing far out of range in a live node's level-0 list, behind a valid
     * checksum: searches must not follow it (ASan would see it), the verification and a
     * load reject it. The blocks array's offset is the first entry of the array table
     * (the header, then 72 bytes of fixed fields: the tag, then the offset 8 bytes on). */
    qv_index *lx = NULL, *bad = NULL;
    QV_CK(qv_index_load_mem(buf, len, "mem", &lx));
    qv_hnsw *h = lx->impl;
    uint32_t live = 0;
    while (h->state[live] != QV_HNSW_LIVE) live++;
    uint64_t blk = 0;
    memcpy(&blk, buf + QV_INDEX_HEADER_BYTES + 72 + 8, 8);
    size_t link_at = (size_t)blk + (size_t)live * h->block_bytes + h->links_off + 4;
    ck_assert_uint_lt(link_at + 4, len);
    memcpy(copy, buf, len);
    uint32_t far = 0x7fffffffu;
    memcpy(copy + link_at, &far, 4);
    uint32_t c = qv_crc32c(0, copy, len - 4);
    memcpy(copy + len - 4, &c, 4);
    write_file(path, copy, len);
    ck_assert_int_eq(open_damaged(path, dim), 0);
    QV_CK_FAIL(qv_index_load_mem(copy, len, "crafted", &bad), QV_ECORRUPT);
    ck_assert_ptr_null(bad);
    qv_index_free(lx);
    free(copy);
    qv_free(buf);
    qv_index_free(ix);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* Kinds without an in-place form are loaded instead. */
START_TEST(test_open_other_kinds)
{
    qv_index_params p;
    qv_index *fx = NULL, *ox = NULL;
    char *dir = make_tmpdir("qv-open"), path[4200];
    snprintf(path, sizeof path, "%s/flat.qv", dir);
    qv_index_params_init(&p, QV_INDEX_FLAT, 6, QV_METRIC_IP);
    QV_CK(qv_index_new(&p, &fx));
    float *x = random_vectors(50, 6, 51);
    uint64_t ids[50];
    for (size_t i = 0; i < 50; i++) ids[i] = i * 7;
    QV_CK(qv_index_add(fx, 50, ids, x));
    QV_CK(qv_index_save(fx, path));
    QV_CK(qv_index_open(path, &ox));
    QV_CK(qv_index_verify(ox));
    same_answers(fx, ox, 6, 52);
    qv_index_free(ox);
    ox = NULL;
    QV_CK_FAIL(qv_index_open("/nonexistent/x.qv", &ox), QV_ENOTFOUND);
    ck_assert_ptr_null(ox);
    free(x);
    qv_index_free(fx);
    rm_rf(dir);
    free(dir);
}
END_TEST

extern Suite *qv_index_hnsw_open_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_index_hnsw_open_suite(void)
{
    Suite *s = suite_create("hnsw_open");
    TCase *tc = tcase_create("hnsw_open");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_open_answers_like_load);
    tcase_add_test(tc, test_open_then_write);
    tcase_add_test(tc, test_open_damaged);
    tcase_add_test(tc, test_open_other_kinds);
    suite_add_tcase(s, tc);
    return s;
}
