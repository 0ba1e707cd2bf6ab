/*
 * tests/check_storage_quant.c -- quantized collections (hnsw, ivf, flat): the code kind is part of the
 * persisted config (format 2) and survives reopen; the index comes back from its snapshot
 * with the same codes and answers; a snapshot whose code section is damaged (CRC kept
 * valid) is refused and the index rebuilt from the stored vectors, still quantized; the
 * config codec refuses a bad "quant" and accepts format-1 configs as float; codes added,
 * changed and dropped after creation (qv_collection_update), and the changes refused.
 */
#include <dirent.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "index/codec.h"
#include "storage/storage.h"
#include "tests/test_util.h"

#define DIM 32
#define N 1500
#define NQ 20
#define K 10

static qv_db *open_db(const char *dir)
{
    qv_db *db;
    QV_CK(qv_db_open(dir, NULL, &db));
    return db;
}

static void search_all(qv_coll *c, const float *qs, qv_hit *out, size_t *n_out)
{
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    for (size_t i = 0; i < NQ; i++) QV_CK(qv_search(c, qs + i * DIM, &sp, out + i * K, &n_out[i]));
}

/* Set a NaN as the last parameter of the code section (just before the CRC) of the one
 * index snapshot file, fix the file's CRC, and the copy of that CRC in the snapshot record
 * (so the record still matches the file: only the code section's check can catch it). */
static void damage_codes(const char *dir)
{
    char sdir[4096], path[4200];
    snprintf(sdir, sizeof sdir, "%s/" QV_SNAPSHOT_DIR, dir);
    DIR *d = opendir(sdir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int n = 0;
    uint32_t crc = 0;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 3 || strcmp(e->d_name + nl - 3, ".qv") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", sdir, e->d_name);
        FILE *f = fopen(path, "r+b");
        ck_assert_ptr_nonnull(f);
        fseek(f, 0, SEEK_END);
        size_t len = (size_t)ftell(f);
        uint8_t *img = malloc(len);
        fseek(f, 0, SEEK_SET);
        ck_assert_uint_eq(fread(img, 1, len, f), len);
        float nan = NAN;
        memcpy(img + len - 8, &nan, 4);
        crc = qv_crc32c(0, img, len - 4);
        for (int i = 0; i < 4; i++) img[len - 4 + i] = (uint8_t)(crc >> (8 * i));
        fseek(f, 0, SEEK_SET);
        ck_assert_uint_eq(fwrite(img, 1, len, f), len);
        fclose(f);
        free(img);
        n++;
    }
    closedir(d);
    ck_assert_int_eq(n, 1);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    n = 0;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "snapshots", 0, &dbi), 0);
    ck_assert_int_eq(mdb_cursor_open(txn, dbi, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, n ? MDB_NEXT : MDB_FIRST) == 0) {
        ck_assert_uint_eq(v.mv_size, QV_SNAPSHOT_RECORD);
        uint8_t copy[QV_SNAPSHOT_RECORD];
        memcpy(copy, v.mv_data, sizeof copy);
        for (int i = 0; i < 4; i++) copy[24 + i] = (uint8_t)(crc >> (8 * (3 - i)));   /* big-endian */
        MDB_val nv = {sizeof copy, copy};
        ck_assert_int_eq(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
        n++;
    }
    ck_assert_int_eq(n, 1);
    mdb_cursor_close(cur);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* The end of a test: close db and free everything. */
static void finish(qv_db *db, char *dir, float *v, float *qs, uint64_t *ids)
{
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
    free(v);
    free(qs);
    free(ids);
}

/* _i: the code kind (i % 3) and the index kind (i / 3: hnsw, ivf -- trained once it holds
 * 1000 points, nlist 16 -- and flat). */
START_TEST(test_quant_collection_reopen_and_snapshot)
{
    static const qv_index_kind ikinds[] = {QV_INDEX_HNSW, QV_INDEX_IVF, QV_INDEX_FLAT};
    const qv_quant kind = (qv_quant)(QV_QUANT_SQ8 + _i % 3);
    char *dir = make_tmpdir("qv-squant");
    float *v = random_vectors(N, DIM, 21), *qs = random_vectors(NQ, DIM, 22);
    uint64_t *ids = malloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++) ids[i] = 10 * i;
    qv_db *db = open_db(dir);
    qv_collection_config cfg = {0};
    qv_index_params_init(&cfg.index, ikinds[_i / 3], DIM, QV_METRIC_L2);
    cfg.index.quant = kind;
    cfg.index.threads = 2;
    cfg.index.nlist = cfg.index.kind == QV_INDEX_IVF ? 16 : 0;
    qv_coll *c;
    QV_CK(qv_collection_create(db, "q", &cfg, &c));
    QV_CK(qv_upsert(c, N, ids, v, NULL));
    qv_hit a[NQ * K], b[NQ * K];
    size_t na[NQ], nb[NQ];
    search_all(c, qs, a, na);
    QV_CK(qv_db_close(db));

    /* Reopen: config and snapshot give the same quantized index. */
    db = open_db(dir);
    QV_CK(qv_collection_open(db, "q", &c));
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_int_eq(info.config.index.quant, kind);
    qv_storage_stats st;
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.rebuilds, 0);
    search_all(c, qs, b, nb);
    for (size_t i = 0; i < NQ; i++) {
        ck_assert_uint_eq(na[i], nb[i]);
        for (size_t j = 0; j < na[i]; j++) {
            ck_assert_uint_eq(a[i * K + j].id, b[i * K + j].id);
            ck_assert_float_eq(a[i * K + j].score, b[i * K + j].score);
        }
    }
    QV_CK(qv_db_close(db));

    /* A damaged code section: the snapshot is refused, the index rebuilt, still quantized. */
    damage_codes(dir);
    db = open_db(dir);
    QV_CK(qv_collection_open(db, "q", &c));
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.damaged_snapshots, 1);
    ck_assert_uint_eq(st.rebuilds, 1);
    ck_assert_msg(strstr(st.warning, "codes") != NULL, "warning: %s", st.warning);
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_int_eq(info.config.index.quant, kind);
    search_all(c, qs, b, nb);
    size_t same = 0;
    for (size_t i = 0; i < NQ; i++)
        for (size_t j = 0; j < nb[i]; j++)
            for (size_t t = 0; t < na[i]; t++) same += b[i * K + j].id == a[i * K + t].id;
    ck_assert_msg(same >= (size_t)(0.9 * NQ * K), "rebuilt index agrees on %zu of %d answers", same, NQ * K);
    finish(db, dir, v, qs, ids);
}
END_TEST

/* Recall@K of c's answers (ids are 10 * row) against the double-precision top K of v, and
 * how many returned scores are not the exact squared distance of their point (to 1e-3,
 * relative): none for a float index; a quantized one searched with rescore off returns
 * estimates. */
static double answers(qv_coll *c, const float *v, const float *qs, qv_rescore rescore, size_t *inexact)
{
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    sp.rescore = rescore;
    uint64_t truth[NQ * K], got[NQ * K];
    size_t ng[NQ];
    qv_hit h[K];
    ref_knn(v, N, DIM, qs, NQ, K, QV_METRIC_L2, truth);
    *inexact = 0;
    for (size_t i = 0; i < NQ; i++) {
        QV_CK(qv_search(c, qs + i * DIM, &sp, h, &ng[i]));
        for (size_t j = 0; j < ng[i]; j++) {
            got[i * K + j] = h[j].id / 10;
            double d = ref_l2sq(qs + i * DIM, v + got[i * K + j] * DIM, DIM);
            *inexact += fabs(h[j].score - d) > 1e-3 * (d > 1 ? d : 1);
        }
    }
    return recall_at_k(got, ng, K, truth, K, NQ, K);
}

/* c's codes, as its info reports them. */
static qv_quant quant_of(qv_coll *c)
{
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    return info.config.index.quant;
}

/* qv_collection_update with set_quant: codes added, changed and dropped on a collection
 * that holds points, each change rebuilt at once and persisted (a reopen loads the
 * snapshot written after it); _i: hnsw, ivf (nlist 16), flat. */
START_TEST(test_quant_collection_update)
{
    static const qv_index_kind ikinds[] = {QV_INDEX_HNSW, QV_INDEX_IVF, QV_INDEX_FLAT};
    char *dir = make_tmpdir("qv-squpd");
    float *v = random_vectors(N, DIM, 31), *qs = random_vectors(NQ, DIM, 32);
    uint64_t *ids = malloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++) ids[i] = 10 * i;
    qv_db *db = open_db(dir);
    qv_collection_config cfg = {0};
    qv_index_params_init(&cfg.index, ikinds[_i], DIM, QV_METRIC_L2);
    cfg.index.threads = 2;
    cfg.index.nlist = cfg.index.kind == QV_INDEX_IVF ? 16 : 0;
    qv_coll *c;
    QV_CK(qv_collection_create(db, "q", &cfg, &c));
    QV_CK(qv_upsert(c, N, ids, v, NULL));
    size_t inexact;
    double r = answers(c, v, qs, QV_RESCORE_OFF, &inexact);
    ck_assert_uint_eq(inexact, 0);                 /* float: exact scores */
    ck_assert_msg(r >= 0.9, "float recall %.3f", r);

    qv_collection_changes ch = {.set_quant = 1, .quant = QV_QUANT_BIT1};
    QV_CK(qv_collection_update(c, &ch));
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_int_eq(info.config.index.quant, QV_QUANT_BIT1);
    ck_assert_uint_eq(info.count, N);
    r = answers(c, v, qs, QV_RESCORE_OFF, &inexact);
    ck_assert_msg(inexact > NQ * K / 2, "bit1 without re-scoring: only %zu estimated scores", inexact);
    r = answers(c, v, qs, QV_RESCORE_DEFAULT, &inexact);
    ck_assert_uint_eq(inexact, 0);                 /* re-scored: exact again */
    ck_assert_msg(r >= 0.8, "bit1 recall %.3f", r);
    /* nothing that fails leaves a trace: an unknown kind, and a no-op */
    qv_storage_stats st0, st;
    qv_storage_get_stats(c, &st0);
    ch.quant = (qv_quant)99;
    QV_CK_FAIL(qv_collection_update(c, &ch), QV_EINVAL);
    ch.quant = QV_QUANT_BIT1;
    QV_CK(qv_collection_update(c, &ch));
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.rebuilds, st0.rebuilds);
    ck_assert_int_eq(quant_of(c), QV_QUANT_BIT1);
    QV_CK(qv_db_close(db));

    /* durable: the config says bit1 and the snapshot written after the change loads */
    db = open_db(dir);
    QV_CK(qv_collection_open(db, "q", &c));
    ck_assert_int_eq(quant_of(c), QV_QUANT_BIT1);
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.rebuilds, 0);
    r = answers(c, v, qs, QV_RESCORE_OFF, &inexact);
    ck_assert_uint_gt(inexact, NQ * K / 2);

    /* to 8-bit codes, then none: float again, with exact scores */
    ch.quant = QV_QUANT_SQ8;
    QV_CK(qv_collection_update(c, &ch));
    r = answers(c, v, qs, QV_RESCORE_DEFAULT, &inexact);
    ck_assert_msg(r >= 0.85, "sq8 recall %.3f", r);
    ch.quant = QV_QUANT_NONE;
    QV_CK(qv_collection_update(c, &ch));
    ck_assert_int_eq(quant_of(c), QV_QUANT_NONE);
    r = answers(c, v, qs, QV_RESCORE_OFF, &inexact);
    ck_assert_uint_eq(inexact, 0);
    ck_assert_msg(r >= 0.9, "float recall after the codes were dropped %.3f", r);
    QV_CK(qv_db_close(db));
    db = open_db(dir);
    QV_CK(qv_collection_open(db, "q", &c));
    ck_assert_int_eq(quant_of(c), QV_QUANT_NONE);
    finish(db, dir, v, qs, ids);
}
END_TEST

/* on_disk vectors are read only to re-score a walk on codes: the codes may change, not go;
 * and bit1's dimension limit holds for an update as for a create. */
START_TEST(test_quant_collection_update_refusals)
{
    char *dir = make_tmpdir("qv-squpr");
    float *v = random_vectors(N, DIM, 33), *qs = random_vectors(NQ, DIM, 34);
    uint64_t *ids = malloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++) ids[i] = 10 * i;
    qv_db *db = open_db(dir);
    qv_collection_config cfg = {.on_disk = 1};
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, DIM, QV_METRIC_L2);
    cfg.index.quant = QV_QUANT_SQ8;
    cfg.index.threads = 2;
    qv_coll *c;
    QV_CK(qv_collection_create(db, "od", &cfg, &c));
    QV_CK(qv_upsert(c, N, ids, v, NULL));
    qv_collection_changes ch = {.set_quant = 1, .quant = QV_QUANT_NONE};
    QV_CK_FAIL(qv_collection_update(c, &ch), QV_EINVAL);
    ck_assert_msg(strstr(qv_last_error(), "on disk") != NULL, "%s", qv_last_error());
    ck_assert_int_eq(quant_of(c), QV_QUANT_SQ8);
    ch.quant = QV_QUANT_BIT1;
    QV_CK(qv_collection_update(c, &ch));
    size_t inexact;
    double r = answers(c, v, qs, QV_RESCORE_DEFAULT, &inexact);
    ck_assert_uint_eq(inexact, 0);
    ck_assert_msg(r >= 0.8, "on_disk bit1 recall %.3f", r);

    /* bit1 above its dimension limit: refused before anything is written */
    const uint32_t big = QV_BIT1_MAX_DIM + 1;
    float *bv = calloc(big, sizeof *bv);
    bv[0] = 1;
    qv_collection_config bc = {0};
    qv_index_params_init(&bc.index, QV_INDEX_FLAT, big, QV_METRIC_L2);
    QV_CK(qv_collection_create(db, "big", &bc, &c));
    uint64_t one = 1;
    QV_CK(qv_upsert(c, 1, &one, bv, NULL));
    QV_CK_FAIL(qv_collection_update(c, &ch), QV_EINVAL);
    ck_assert_msg(strstr(qv_last_error(), "bit1") != NULL, "%s", qv_last_error());
    ck_assert_int_eq(quant_of(c), QV_QUANT_NONE);
    QV_CK(qv_db_close(db));
    db = open_db(dir);
    QV_CK(qv_collection_open(db, "big", &c));
    ck_assert_int_eq(quant_of(c), QV_QUANT_NONE);
    QV_CK(qv_collection_open(db, "od", &c));
    ck_assert_int_eq(quant_of(c), QV_QUANT_BIT1);
    free(bv);
    finish(db, dir, v, qs, ids);
}
END_TEST

/* Collections keep float32 vectors: a u8 vector type is refused at create, nothing made. */
START_TEST(test_quant_collection_refuses_u8)
{
    char *dir = make_tmpdir("qv-squ8");
    qv_db *db = open_db(dir);
    qv_collection_config cfg = {0};
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, DIM, QV_METRIC_L2);
    cfg.index.quant = QV_QUANT_BIT1;
    cfg.index.vec_type = QV_VEC_U8;
    qv_coll *c = NULL;
    ck_assert_int_eq(qv_collection_create(db, "q", &cfg, &c), QV_EINVAL);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "float32"));
    ck_assert_int_ne(qv_collection_open(db, "q", &c), QV_OK);
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_quant_config_codec)
{
    qv_index_params p, back;
    uint32_t cid;
    char *json, *pi;
    qv_vectors_def vd;
    qv_index_params_init(&p, QV_INDEX_HNSW, 8, QV_METRIC_COSINE);
    p.quant = QV_QUANT_BIT1;
    QV_CK(qv_coll_config_encode(4, &p, NULL, NULL, &json));
    ck_assert_ptr_nonnull(strstr(json, "\"quant\":\"bit1\""));
    ck_assert_ptr_nonnull(strstr(json, "\"format\":2"));
    QV_CK(qv_coll_config_decode("c", json, strlen(json), &cid, &back, &pi, &vd));
    ck_assert_int_eq(back.quant, QV_QUANT_BIT1);
    qv_free(json);
    /* Float collections keep format 1 (older builds read them). */
    p.quant = QV_QUANT_NONE;
    QV_CK(qv_coll_config_encode(4, &p, NULL, NULL, &json));
    ck_assert_ptr_null(strstr(json, "quant"));
    ck_assert_ptr_nonnull(strstr(json, "\"format\":1"));
    QV_CK(qv_coll_config_decode("c", json, strlen(json), &cid, &back, &pi, &vd));
    ck_assert_int_eq(back.quant, QV_QUANT_NONE);
    qv_free(json);
    /* on_disk: format 4 (older builds refuse it), and back */
    qv_vectors_def od = {.on_disk = 1};
    p.quant = QV_QUANT_SQ8;
    p.metric = QV_METRIC_L2;
    QV_CK(qv_coll_config_encode(4, &p, NULL, &od, &json));
    ck_assert_ptr_nonnull(strstr(json, "\"format\":4"));
    ck_assert_ptr_nonnull(strstr(json, "\"on_disk\":true"));
    QV_CK(qv_coll_config_decode("c", json, strlen(json), &cid, &back, &pi, &vd));
    ck_assert_int_eq(vd.on_disk, 1);
    ck_assert_int_eq(back.quant, QV_QUANT_SQ8);
    qv_free(json);
    p.metric = QV_METRIC_COSINE;                  /* cosine too: its records hold unit vectors */
    QV_CK(qv_coll_config_encode(4, &p, NULL, &od, &json));
    QV_CK(qv_coll_config_decode("c", json, strlen(json), &cid, &back, &pi, &vd));
    ck_assert_int_eq(vd.on_disk, 1);
    ck_assert_int_eq(back.metric, QV_METRIC_COSINE);
    qv_free(json);
    static const char *const bad[] = {
        "{\"format\":2,\"cid\":1,\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\",\"quant\":\"pq\"}}",
        "{\"format\":2,\"cid\":1,\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\",\"quant\":3}}",
        "{\"format\":1,\"cid\":1,\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\",\"quant\":\"sq8\"}}",
        "{\"format\":5,\"cid\":1,\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\"}}",
        /* on_disk needs format 4, a boolean, and an index that re-scores (config.c) */
        "{\"format\":3,\"cid\":1,\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\",\"quant\":\"sq8\"},"
        "\"vectors\":{\"on_disk\":true}}",
        "{\"format\":4,\"cid\":1,\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\",\"quant\":\"sq8\"},"
        "\"vectors\":{\"on_disk\":1}}",
        "{\"format\":4,\"cid\":1,\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\"},\"vectors\":{\"on_disk\":true}}",
        "{\"format\":4,\"cid\":1,\"dim\":8,\"metric\":\"cosine\",\"index\":{\"type\":\"ivf\",\"quant\":\"sq8\"},"
        "\"vectors\":{\"on_disk\":true}}",
        /* sparse vectors need format 3 (storage/config.c) */
        "{\"format\":2,\"cid\":1,\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\"},\"vectors\":{\"sparse\":[]}}",
        "{\"format\":3,\"cid\":1,\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\"},\"vectors\":{\"sparse\":[{\"name\":\"\"}]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        QV_CK_FAIL(qv_coll_config_decode("c", bad[i], strlen(bad[i]), &cid, &back, &pi, &vd), QV_ECORRUPT);
}
END_TEST

extern Suite *qv_storage_quant_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_storage_quant_suite(void)
{
    Suite *s = suite_create("storage_quant");
    TCase *tc = tcase_create("quant");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_quant_collection_reopen_and_snapshot, 0, 9);
    tcase_add_test(tc, test_quant_config_codec);
    tcase_add_test(tc, test_quant_collection_refuses_u8);
    tcase_add_loop_test(tc, test_quant_collection_update, 0, 3);
    tcase_add_test(tc, test_quant_collection_update_refusals);
    suite_add_tcase(s, tc);
    return s;
}
