/*
 * tests/check_storage_vecsrc.c -- a quantized HNSW collection created with on_disk reads its
 * float vectors from LMDB's map (storage/vec_source.c) instead of holding them:
 *   - the switch: on and off answer the same top k (near a brute force); on_disk survives
 *     reopen, checkpoint, backup and restore; bad values and indexes that cannot use it
 *     are QV_EINVAL;
 *   - a cosine collection on_disk answers as the same one in memory (ids, scores within
 *     1e-5 of each other and of a double cosine) before and after reopens, deletes and
 *     updates, and gives back the vectors as given;
 *   - inserts into a reopened on_disk collection walk on kept 8-bit build codes and keep
 *     the recall of the same collection in memory;
 *   - reopened, the index maps its snapshot (graph + codes), holds no float vectors, and
 *     answers exactly as it did re-scoring from its heap copy before; recall against a
 *     double-precision brute force stays; a delete and a replacement after the reopen work;
 *   - searches run while another thread upserts, replaces and deletes points and the LMDB
 *     map grows under them (a 1 MiB initial map): every search succeeds and returns only
 *     points that were live at some time during it (run under tsan-test);
 *   - a snapshot without vectors whose code rows are damaged (CRC kept valid) is
 *     QV_ECORRUPT from qv_index_open (bit1: a centroid number out of range) or from the
 *     deferred verification and qv_index_load (sq8: a NaN factor); such a file opened on
 *     its own refuses searches with QV_ESTATE until it has a vector source.
 */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "index/hnsw.h"
#include "index/index.h"
#include "storage/storage.h"
#include "tests/test_util.h"

#define DIM 32
#define N 2000
#define NQ 30
#define K 10

static const qv_quant kinds[] = {QV_QUANT_SQ8, QV_QUANT_SQ4, QV_QUANT_BIT1};

static qv_coll *create_named(qv_db *db, const char *name, qv_quant kind, qv_metric metric, uint32_t dim, int on_disk,
                             uint32_t threads)
{
    qv_collection_config cfg = {0};
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, dim, metric);
    cfg.index.quant = kind;
    cfg.index.threads = threads;
    cfg.on_disk = on_disk;
    qv_coll *c;
    QV_CK(qv_collection_create(db, name, &cfg, &c));
    return c;
}

static qv_coll *create_dim(qv_db *db, qv_quant kind, qv_metric metric, uint32_t dim)
{
    return create_named(db, "v", kind, metric, dim, 1, 2);
}

static qv_coll *create(qv_db *db, qv_quant kind, qv_metric metric) { return create_dim(db, kind, metric, DIM); }

static void search_all(qv_coll *c, const float *qs, uint32_t ef, qv_hit *out, size_t *n_out)
{
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    sp.ef = ef;
    for (size_t i = 0; i < NQ; i++) QV_CK(qv_search(c, qs + i * DIM, &sp, out + i * K, &n_out[i]));
}

static void assert_same(const qv_hit *a, const size_t *na, const qv_hit *b, const size_t *nb)
{
    for (size_t i = 0; i < NQ; i++) {
        ck_assert_uint_eq(na[i], nb[i]);
        for (size_t j = 0; j < na[i]; j++) {
            ck_assert_uint_eq(a[i * K + j].id, b[i * K + j].id);
            ck_assert_float_eq(a[i * K + j].score, b[i * K + j].score);
        }
    }
}

static size_t index_vector_bytes(qv_coll *c)
{
    qv_index_memory_info mi;
    qv_index_memory_detail(c->ix, &mi);
    return mi.vectors;
}

/* The end of a test: no vector was refused as misaligned; close and free everything. */
static void finish(qv_db *db, char *dir, float *v, float *qs, uint64_t *ids)
{
    ck_assert_uint_eq(qv_vec_source_misaligned(), 0);
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
    free(v);
    free(qs);
    free(ids);
}

/* _i: the code kind. */
START_TEST(test_vecsrc_same_answers)
{
    const qv_quant kind = kinds[_i];
    char *dir = make_tmpdir("qv-vecsrc");
    float *v = random_vectors(N, DIM, 31), *qs = random_vectors(NQ, DIM, 32);
    uint64_t *ids = malloc(N * sizeof *ids), truth[NQ * K], got[NQ * K];
    for (size_t i = 0; i < N; i++) ids[i] = i;
    qv_db *db = open_db_nosync(dir);
    qv_coll *c = create(db, kind, QV_METRIC_L2);
    QV_CK(qv_upsert(c, N, ids, v, NULL));
    ck_assert_uint_gt(index_vector_bytes(c), 0);              /* loading: the heap copy */
    qv_hit a[NQ * K], b[NQ * K];
    size_t na[NQ], nb[NQ];
    search_all(c, qs, 64, a, na);

    QV_CK(qv_checkpoint(c));              /* a snapshot without vectors; the copy stays */
    ck_assert_uint_gt(index_vector_bytes(c), 0);
    QV_CK(qv_db_close(db));

    /* Reopen: the snapshot opens in place, vectors from LMDB's map, the same answers. */
    db = open_db_nosync(dir);
    QV_CK(qv_collection_open(db, "v", &c));
    qv_storage_stats st;
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.rebuilds, 0);
    ck_assert_uint_eq(index_vector_bytes(c), 0);
    search_all(c, qs, 64, b, nb);
    assert_same(a, na, b, nb);
    ref_knn(v, N, DIM, qs, NQ, K, QV_METRIC_L2, truth);
    for (size_t i = 0; i < NQ * K; i++) got[i] = b[i].id;
    double r = recall_at_k(got, nb, K, truth, K, NQ, K);
    ck_assert_msg(r >= 0.9, "%s recall@10 %.3f with vectors from LMDB", qv_quant_name(kind), r);
    /* A write after the reopen: its inserts and repairs read vectors from LMDB too. */
    uint64_t gone = 5, back = 7;
    QV_CK(qv_delete(c, 1, &gone, NULL));
    QV_CK(qv_upsert(c, 1, &back, v + 8 * DIM, NULL));         /* 7 now holds row 8's vector */
    qv_search_params sp;
    qv_search_params_init(&sp, 2);
    qv_hit h[2];
    size_t nh;
    QV_CK(qv_search(c, v + 8 * DIM, &sp, h, &nh));
    ck_assert_uint_eq(nh, 2);
    ck_assert_float_eq_tol(h[0].score, 0.0f, 1e-5f);
    ck_assert_float_eq_tol(h[1].score, 0.0f, 1e-5f);          /* 7 and 8, both exact */
    QV_CK(qv_search(c, v + 5 * DIM, &sp, h, &nh));
    for (size_t j = 0; j < nh; j++) ck_assert_uint_ne(h[j].id, 5);
    finish(db, dir, v, qs, ids);
}
END_TEST

static void check_on_disk(qv_coll *c, int want)
{
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_int_eq(info.config.on_disk, want);
    if (want) ck_assert_uint_eq(index_vector_bytes(c), 0);
    else ck_assert_uint_gt(index_vector_bytes(c), 0);
}

/* The switch: an on_disk collection and an off one built alike (one thread, the same seed:
 * the same graph and codes) answer the same top k, off holding its vectors, on reading
 * them from LMDB; both near a double-precision brute force. on_disk survives a reopen
 * (its config record, format 4), a checkpoint, and a backup restored under a new name;
 * off stays off (format <= 3, today's snapshot with vectors). _i: the code kind. */
START_TEST(test_vecsrc_switch_round_trips)
{
    const qv_quant kind = kinds[_i];
    char *dir = make_tmpdir("qv-vecsrc-sw"), file[4200];
    float *v = random_vectors(N, DIM, 41), *qs = random_vectors(NQ, DIM, 42);
    uint64_t *ids = malloc(N * sizeof *ids), truth[NQ * K], got[NQ * K];
    for (size_t i = 0; i < N; i++) ids[i] = i;
    qv_db *db = open_db_nosync(dir);
    qv_coll *on = create_named(db, "on", kind, QV_METRIC_L2, DIM, 1, 1);
    qv_coll *off = create_named(db, "off", kind, QV_METRIC_L2, DIM, 0, 1);
    QV_CK(qv_upsert(on, N, ids, v, NULL));
    QV_CK(qv_upsert(off, N, ids, v, NULL));
    QV_CK(qv_db_close(db));

    db = open_db_nosync(dir);
    QV_CK(qv_collection_open(db, "on", &on));
    QV_CK(qv_collection_open(db, "off", &off));
    check_on_disk(on, 1);
    check_on_disk(off, 0);
    qv_hit a[NQ * K], b[NQ * K];
    size_t na[NQ], nb[NQ];
    search_all(on, qs, 64, a, na);
    search_all(off, qs, 64, b, nb);
    assert_same(a, na, b, nb);
    ref_knn(v, N, DIM, qs, NQ, K, QV_METRIC_L2, truth);
    for (size_t i = 0; i < NQ * K; i++) got[i] = a[i].id;
    double r = recall_at_k(got, na, K, truth, K, NQ, K);
    ck_assert_msg(r >= 0.9, "%s recall@10 %.3f on_disk", qv_quant_name(kind), r);

    /* a checkpoint and a reopen keep it; a backup restored under another name too */
    QV_CK(qv_checkpoint(on));
    QV_CK(qv_checkpoint(off));
    snprintf(file, sizeof file, "%s/on.backup", dir);
    QV_CK(qv_backup_create(db, "on", file, NULL));
    qv_restore_options ro;
    qv_restore_options_init(&ro);
    ro.collection = "on";
    ro.rename = "on2";
    QV_CK(qv_backup_restore(db, file, &ro, NULL));
    QV_CK(qv_db_close(db));
    db = open_db_nosync(dir);
    const char *names[] = {"on", "off", "on2"};
    for (int j = 0; j < 3; j++) {
        qv_coll *c;
        QV_CK(qv_collection_open(db, names[j], &c));
        check_on_disk(c, j != 1);
        search_all(c, qs, 64, b, nb);
        assert_same(a, na, b, nb);
        qv_collection_close(c);
    }
    finish(db, dir, v, qs, ids);
}
END_TEST

/* ---- cosine ------------------------------------------------------------------------------ */

/* on and off answer alike (same ids, scores within 1e-5), and every score is the double
 * cosine of the query and the vector as given (within 1e-5: the index re-scores unit
 * vectors, not the stored ones as given, whose norms run from 0.01 to 100). */
static void cosine_compare(qv_coll *on, qv_coll *off, const float *qs, const float *v)
{
    qv_hit a[NQ * K], b[NQ * K];
    size_t na[NQ], nb[NQ];
    search_all(on, qs, 64, a, na);
    search_all(off, qs, 64, b, nb);
    for (size_t i = 0; i < NQ; i++) {
        ck_assert_uint_eq(na[i], K);
        ck_assert_uint_eq(na[i], nb[i]);
        for (size_t j = 0; j < na[i]; j++) {
            const qv_hit *x = &a[i * K + j];
            ck_assert_msg(x->id == b[i * K + j].id, "query %zu rank %zu: id %llu on_disk, %llu in memory", i, j,
                          (unsigned long long)x->id, (unsigned long long)b[i * K + j].id);
            ck_assert_float_eq_tol(x->score, b[i * K + j].score, 1e-5f);
            double want = ref_cosine(qs + i * DIM, v + x->id * DIM, DIM);
            ck_assert_msg(fabs(x->score - want) <= 1e-5, "query %zu id %llu: score %.7f, cosine %.7f", i,
                          (unsigned long long)x->id, x->score, want);
        }
    }
}

/* qv_get gives back the vector as given: exact in memory, to one rounding from disk. */
static void cosine_check_get(qv_coll *c, const float *v, int exact)
{
    float got[DIM];
    for (uint64_t id = 0; id < N; id += 97) {
        QV_CK(qv_get(c, id, got, NULL));
        for (size_t d = 0; d < DIM; d++) {
            float want = v[id * DIM + d];
            float tol = exact ? 0.0f : 2.5e-7f * fabsf(want);
            ck_assert_msg(fabsf(got[d] - want) <= tol, "id %llu dim %zu: %.9g, given %.9g",
                          (unsigned long long)id, d, got[d], want);
        }
    }
}

/* A cosine collection on_disk (its records hold unit vectors and their norms) answers as
 * the same collection in memory, built alike: after the load, after a reopen (vectors
 * from LMDB's map, none held), after deletes and updates on the reopened one, and after
 * another reopen. _i: the code kind. */
START_TEST(test_vecsrc_cosine_as_in_memory)
{
    const qv_quant kind = kinds[_i];
    char *dir = make_tmpdir("qv-vecsrc-cos");
    float *v = random_vectors(N, DIM, 51), *qs = random_vectors(NQ, DIM, 52);
    uint64_t *ids = malloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++) {
        ids[i] = i;
        float scale = powf(10.0f, (float)(i % 5) - 2.0f);      /* norms 0.01x .. 100x */
        for (size_t d = 0; d < DIM; d++) v[i * DIM + d] *= scale;
    }
    qv_db *db = open_db_nosync(dir);
    qv_coll *on = create_named(db, "on", kind, QV_METRIC_COSINE, DIM, 1, 1);
    qv_coll *off = create_named(db, "off", kind, QV_METRIC_COSINE, DIM, 0, 1);
    QV_CK(qv_upsert(on, N, ids, v, NULL));
    QV_CK(qv_upsert(off, N, ids, v, NULL));
    cosine_compare(on, off, qs, v);
    cosine_check_get(on, v, 0);
    cosine_check_get(off, v, 1);
    QV_CK(qv_db_close(db));

    db = open_db_nosync(dir);
    QV_CK(qv_collection_open(db, "on", &on));
    QV_CK(qv_collection_open(db, "off", &off));
    check_on_disk(on, 1);
    check_on_disk(off, 0);
    cosine_compare(on, off, qs, v);
    cosine_check_get(on, v, 0);

    /* deletes and replacements on the reopened collections (inserts read LMDB) */
    uint64_t gone[] = {3, 400, 1999}, upd[] = {10, 11, 1200, 1500};
    for (size_t i = 0; i < 4; i++) {       /* new directions, new norms */
        for (size_t d = 0; d < DIM; d++) v[upd[i] * DIM + d] = qs[(i * 7) % NQ * DIM + d] * (float)(i + 1) * 3.0f;
    }
    float uv[4 * DIM];
    for (size_t i = 0; i < 4; i++) memcpy(uv + i * DIM, v + upd[i] * DIM, sizeof(float) * DIM);
    QV_CK(qv_delete(on, 3, gone, NULL));
    QV_CK(qv_delete(off, 3, gone, NULL));
    QV_CK(qv_upsert(on, 4, upd, uv, NULL));
    QV_CK(qv_upsert(off, 4, upd, uv, NULL));
    cosine_compare(on, off, qs, v);
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    qv_hit h[K];
    size_t nh;
    QV_CK(qv_search(on, v + upd[0] * DIM, &sp, h, &nh));
    ck_assert_uint_eq(h[0].id, upd[0]);
    ck_assert_float_eq_tol(h[0].score, 1.0f, 1e-5f);
    for (size_t i = 0; i < 3; i++) ck_assert_int_eq(qv_get(on, gone[i], NULL, NULL), QV_ENOTFOUND);
    QV_CK(qv_db_close(db));

    db = open_db_nosync(dir);
    QV_CK(qv_collection_open(db, "on", &on));
    QV_CK(qv_collection_open(db, "off", &off));
    check_on_disk(on, 1);
    cosine_compare(on, off, qs, v);
    sp.exact = 1;                          /* the exact scan reads the unit records too */
    for (size_t i = 0; i < NQ; i++) {
        qv_hit x[K], y[K];
        size_t nx, ny;
        QV_CK(qv_search(on, qs + i * DIM, &sp, x, &nx));
        QV_CK(qv_search(off, qs + i * DIM, &sp, y, &ny));
        ck_assert_uint_eq(nx, ny);
        for (size_t j = 0; j < nx; j++) {
            ck_assert_uint_eq(x[j].id, y[j].id);
            ck_assert_float_eq_tol(x[j].score, y[j].score, 1e-6f);
        }
    }
    finish(db, dir, v, qs, ids);
}
END_TEST

/* ---- inserts after a reopen ------------------------------------------------------------- */

#define INS_LOAD 6000              /* > 4096: the codes are encoded in two pool chunks */
#define INS_ADD 3000
#define INS_BATCH 100

static int kept_codes(qv_coll *c)
{
    qv_hnsw *h = c->ix->impl;
    pthread_mutex_lock(&h->write_lock);
    int has = h->bcodes != NULL;
    pthread_mutex_unlock(&h->write_lock);
    return has;
}

/* Self-recall of rows [from, to) of v (each must be its own nearest hit) and recall@10 of
 * the queries against a double-precision brute force over all live rows. */
static void ins_recall(qv_coll *c, const float *v, size_t n, size_t from, size_t to, const float *qs, qv_metric metric,
                       double *self, double *r10)
{
    qv_search_params sp;
    qv_search_params_init(&sp, 1);
    sp.ef = 64;
    size_t found = 0, nh;
    qv_hit h[K];
    for (size_t i = from; i < to; i++) {
        QV_CK(qv_search(c, v + i * DIM, &sp, h, &nh));
        found += nh && h[0].id == i;
    }
    *self = (double)found / (double)(to - from);
    uint64_t truth[NQ * K], got[NQ * K];
    size_t ng[NQ];
    qv_hit a[NQ * K];
    search_all(c, qs, 64, a, ng);
    for (size_t i = 0; i < NQ * K; i++) got[i] = a[i].id;
    ref_knn(v, n, DIM, qs, NQ, K, metric, truth);
    *r10 = recall_at_k(got, ng, K, truth, K, NQ, K);
}

/* Inserts into a reopened on_disk collection walk on 8-bit build codes kept across the
 * stream of adds (hnsw_build_codes.c), not on floats read from LMDB one B-tree lookup at
 * a time (7.7x slower per point than in memory, bench/RESULTS.md). The codes come from
 * pool workers reading LMDB in sessions of their own; the inserted points are found
 * (self-recall) and recall@10 against a brute force matches the same collection in
 * memory. _i: 0 l2, 1 cosine. */
START_TEST(test_vecsrc_inserts_on_codes)
{
    const qv_metric metric = _i ? QV_METRIC_COSINE : QV_METRIC_L2;
    const size_t n = INS_LOAD + INS_ADD;
    char *dir = make_tmpdir("qv-vecsrc-ins");
    float *v = random_vectors(n, DIM, 61), *qs = random_vectors(NQ, DIM, 62);
    uint64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    qv_db *db = open_db_nosync(dir);
    qv_coll *on = create_named(db, "on", QV_QUANT_SQ8, metric, DIM, 1, 2);
    qv_coll *off = create_named(db, "off", QV_QUANT_SQ8, metric, DIM, 0, 2);
    QV_CK(qv_upsert(on, INS_LOAD, ids, v, NULL));
    QV_CK(qv_upsert(off, INS_LOAD, ids, v, NULL));
    QV_CK(qv_db_close(db));

    unsigned idle = qv_hnsw_bcodes_idle_ms;
    size_t src_min = qv_hnsw_bcodes_src_min;
    qv_hnsw_bcodes_idle_ms = 60000;                /* no drop while the stream runs */
    qv_hnsw_bcodes_src_min = 5 * INS_BATCH;        /* codes from the 5th batch on */
    db = open_db_nosync(dir);
    QV_CK(qv_collection_open(db, "on", &on));
    QV_CK(qv_collection_open(db, "off", &off));
    check_on_disk(on, 1);
    int seen = 0;
    for (size_t at = INS_LOAD; at < n; at += INS_BATCH) {
        QV_CK(qv_upsert(on, INS_BATCH, ids + at, v + at * DIM, NULL));
        QV_CK(qv_upsert(off, INS_BATCH, ids + at, v + at * DIM, NULL));
        seen |= kept_codes(on);
    }
    ck_assert_msg(seen, "the inserts into the reopened on_disk collection never walked on kept codes");
    ck_assert_uint_eq(index_vector_bytes(on), 0);             /* still no float vectors held */
    double self_on, self_off, r_on, r_off;
    ins_recall(on, v, n, INS_LOAD, n, qs, metric, &self_on, &r_on);
    ins_recall(off, v, n, INS_LOAD, n, qs, metric, &self_off, &r_off);
    ck_assert_msg(self_on >= 0.99 && self_on >= self_off - 0.01, "inserted points found: %.4f on_disk, %.4f in memory",
                  self_on, self_off);
    ck_assert_msg(r_on >= 0.9 && r_on >= r_off - 0.02, "recall@10 %.3f on_disk, %.3f in memory", r_on, r_off);
    qv_hnsw_bcodes_idle_ms = idle;
    qv_hnsw_bcodes_src_min = src_min;
    finish(db, dir, v, qs, ids);
}
END_TEST

/* on_disk is 0 or 1, and only for an index that re-scores (a quantized hnsw, any metric).
 * QV_EINVAL otherwise. */
START_TEST(test_vecsrc_on_disk_refused)
{
    char *dir = make_tmpdir("qv-vecsrc-bad");
    qv_db *db = open_db_nosync(dir);
    struct { qv_index_kind kind; qv_quant quant; qv_metric metric; int on_disk; } bad[] = {
        {QV_INDEX_HNSW, QV_QUANT_SQ8, QV_METRIC_L2, 2},      {QV_INDEX_HNSW, QV_QUANT_SQ8, QV_METRIC_L2, -1},
        {QV_INDEX_HNSW, QV_QUANT_NONE, QV_METRIC_COSINE, 1}, {QV_INDEX_HNSW, QV_QUANT_NONE, QV_METRIC_L2, 1},
        {QV_INDEX_FLAT, QV_QUANT_SQ8, QV_METRIC_L2, 1},      {QV_INDEX_IVF, QV_QUANT_SQ8, QV_METRIC_IP, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qv_collection_config cfg = {0};
        qv_index_params_init(&cfg.index, bad[i].kind, DIM, bad[i].metric);
        cfg.index.quant = bad[i].quant;
        cfg.on_disk = bad[i].on_disk;
        ck_assert_int_eq(qv_collection_create(db, "v", &cfg, NULL), QV_EINVAL);
        ck_assert_ptr_nonnull(strstr(qv_last_error(), "on_disk"));
    }
    char **names;
    size_t n;
    QV_CK(qv_collection_list(db, &names, &n));
    ck_assert_uint_eq(n, 0);
    qv_free_strings(names, n);
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- searches during writes and map growth --------------------------------------------- */

#define MT_DIM 128                 /* 4000 points of 128 floats: the 1 MiB map grows twice */
#define MT_BATCH 400

typedef struct {
    qv_coll *c;
    const float *qs;
    int stop;                      /* atomic */
    int failed;
    size_t searches;
} searcher;

static void *search_loop(void *arg)
{
    searcher *s = arg;
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    qv_hit hits[K];
    size_t n;
    for (size_t i = 0; !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE); i++) {
        if (qv_search(s->c, s->qs + (i % NQ) * MT_DIM, &sp, hits, &n) != QV_OK) { s->failed = 1; break; }
        for (size_t j = 0; j < n; j++)
            if (hits[j].id >= 12 * MT_BATCH || !isfinite(hits[j].score)) s->failed = 2;
        s->searches++;
    }
    return NULL;
}

START_TEST(test_vecsrc_concurrent_writes_and_growth)
{
    char *dir = make_tmpdir("qv-vecsrc-mt");
    const size_t rounds = sanitized() ? 5 : 10;
    float *v = random_vectors(24 * MT_BATCH, MT_DIM, 34), *qs = random_vectors(NQ, MT_DIM, 35);
    uint64_t ids[MT_BATCH];
    qv_db_options o;
    qv_db_options_init(&o);
    o.flags |= QV_DB_NOSYNC;
    o.initial_map_bytes = 1u << 20;                 /* grows under the searches */
    qv_db *db;
    QV_CK(qv_db_open(dir, &o, &db));
    qv_coll *c = create_dim(db, QV_QUANT_SQ8, QV_METRIC_L2, MT_DIM);
    for (size_t i = 0; i < MT_BATCH; i++) ids[i] = i;
    QV_CK(qv_upsert(c, MT_BATCH, ids, v, NULL));
    QV_CK(qv_db_close(db));
    QV_CK(qv_db_open(dir, &o, &db));                /* reopened: reads from LMDB */
    QV_CK(qv_collection_open(db, "v", &c));
    ck_assert_uint_eq(index_vector_bytes(c), 0);
    qv_storage_stats st0, st1;
    qv_storage_get_stats(c, &st0);

    searcher s[2] = {{c, qs, 0, 0, 0}, {c, qs, 0, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, search_loop, &s[i]), 0);
    for (size_t r = 0; r < rounds; r++) {
        /* new points (ids MT_BATCH..), replacements of the first ones, then deletes */
        for (size_t i = 0; i < MT_BATCH; i++) ids[i] = MT_BATCH + r * MT_BATCH + i;
        QV_CK(qv_upsert(c, MT_BATCH, ids, v + (1 + r) * MT_BATCH * MT_DIM, NULL));
        for (size_t i = 0; i < MT_BATCH / 8; i++) ids[i] = r * (MT_BATCH / 8) + i;
        QV_CK(qv_upsert(c, MT_BATCH / 8, ids, v + (12 * MT_BATCH + r * (MT_BATCH / 8)) * MT_DIM, NULL));
        for (size_t i = 0; i < MT_BATCH / 16; i++) ids[i] = MT_BATCH + r * MT_BATCH + 2 * i;
        QV_CK(qv_delete(c, MT_BATCH / 16, ids, NULL));
    }
    for (int i = 0; i < 2; i++) {
        __atomic_store_n(&s[i].stop, 1, __ATOMIC_RELEASE);
        pthread_join(t[i], NULL);
        ck_assert_int_eq(s[i].failed, 0);
        ck_assert_uint_gt(s[i].searches, 0);
    }
    qv_storage_get_stats(c, &st1);
    ck_assert_msg(st1.map_grows > st0.map_grows, "the map did not grow during the searches (%llu)",
                  (unsigned long long)st1.map_grows);
    /* After the writes: every replaced point is found at its new vector, exactly. */
    qv_search_params sp;
    qv_search_params_init(&sp, 1);
    qv_hit h;
    size_t nh;
    for (size_t r = 0; r < rounds; r++) {
        size_t i = r * (MT_BATCH / 8);
        QV_CK(qv_search(c, v + (12 * MT_BATCH + i) * MT_DIM, &sp, &h, &nh));
        ck_assert_uint_eq(nh, 1);
        ck_assert_uint_eq(h.id, i);
        ck_assert_float_eq_tol(h.score, 0.0f, 1e-3f);
    }
    ck_assert_uint_eq(qv_vec_source_misaligned(), 0);
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
    free(v);
    free(qs);
}
END_TEST

/* ---- damaged code rows ----------------------------------------------------------------- */

static void snapshot_file(const char *dir, char *path, size_t len)
{
    char sdir[4096];
    snprintf(sdir, sizeof sdir, "%s/" QV_SNAPSHOT_DIR, dir);
    DIR *d = opendir(sdir);
    ck_assert_ptr_nonnull(d);
    *path = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t nl = strlen(e->d_name);
        if (nl > 3 && !strcmp(e->d_name + nl - 3, ".qv")) snprintf(path, len, "%s/%s", sdir, e->d_name);
    }
    closedir(d);
    ck_assert_msg(*path, "no snapshot file");
}

/* Overwrite `n` bytes at `off` from `bytes`, then fix the trailing CRC. */
static void patch_file(const char *path, size_t off, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    uint8_t *img = malloc(len);
    fseek(f, 0, SEEK_SET);
    ck_assert_uint_eq(fread(img, 1, len, f), len);
    memcpy(img + off, bytes, n);
    uint32_t crc = qv_crc32c(0, img, len - 4);
    for (int i = 0; i < 4; i++) img[len - 4 + i] = (uint8_t)(crc >> (8 * i));
    fseek(f, 0, SEEK_SET);
    ck_assert_uint_eq(fwrite(img, 1, len, f), len);
    fclose(f);
    free(img);
}

/* _i: 0 sq8 (a NaN factor: caught by the deferred checks), 1 bit1 (centroid 9999:
 * caught by the open itself). */
START_TEST(test_vecsrc_damaged_code_rows)
{
    const qv_quant kind = _i ? QV_QUANT_BIT1 : QV_QUANT_SQ8;
    char *dir = make_tmpdir("qv-vecsrc-bad"), path[8192];
    float *v = random_vectors(N, DIM, 36);
    uint64_t *ids = malloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++) ids[i] = i;
    qv_db *db = open_db_nosync(dir);
    qv_coll *c = create(db, kind, QV_METRIC_L2);
    QV_CK(qv_upsert(c, N, ids, v, NULL));
    QV_CK(qv_checkpoint(c));
    QV_CK(qv_db_close(db));
    snapshot_file(dir, path, sizeof path);

    /* Untouched, on its own: it opens, but has no vectors to re-score with. */
    qv_index *ix;
    QV_CK(qv_index_open(path, &ix));
    QV_CK(qv_index_verify(ix));
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    qv_hit hits[K];
    size_t n;
    QV_CK_FAIL(qv_index_search(ix, v, &sp, hits, &n), QV_ESTATE);
    qv_index_free(ix);

    /* Slot 0's row: its factors follow the code (index/codec.h); the first block is at the
     * start of the first array, 4 KiB-aligned after the 72-byte header and the table. */
    size_t code = kind == QV_QUANT_BIT1 ? (DIM + 63) / 64 * 8 : DIM;
    size_t off = 4096 + code;
    if (kind == QV_QUANT_BIT1) {
        uint16_t bad = 9999;
        patch_file(path, off + 16, &bad, sizeof bad);
        QV_CK_FAIL(qv_index_open(path, &ix), QV_ECORRUPT);
    } else {
        float nan = NAN;
        patch_file(path, off, &nan, sizeof nan);
        QV_CK(qv_index_open(path, &ix));                      /* sq rows: checked later */
        QV_CK_FAIL(qv_index_verify(ix), QV_ECORRUPT);
        qv_index_free(ix);
    }
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "code row"));
    QV_CK_FAIL(qv_index_load(path, &ix), QV_ECORRUPT);
    rm_rf(dir);
    free(dir);
    free(v);
    free(ids);
}
END_TEST

extern Suite *qv_storage_vecsrc_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_storage_vecsrc_suite(void)
{
    Suite *s = suite_create("storage_vecsrc");
    TCase *tc = tcase_create("vecsrc");
    tcase_set_timeout(tc, 240);
    tcase_add_loop_test(tc, test_vecsrc_same_answers, 0, 3);
    tcase_add_test(tc, test_vecsrc_on_disk_refused);
    tcase_add_loop_test(tc, test_vecsrc_cosine_as_in_memory, 0, 3);
    tcase_add_loop_test(tc, test_vecsrc_inserts_on_codes, 0, 2);
    tcase_add_loop_test(tc, test_vecsrc_switch_round_trips, 0, 3);
    tcase_add_test(tc, test_vecsrc_concurrent_writes_and_growth);
    tcase_add_loop_test(tc, test_vecsrc_damaged_code_rows, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
