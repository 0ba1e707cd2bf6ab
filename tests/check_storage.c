/*
 * tests/check_storage.c -- the LMDB storage layer: round trips of every database-level
 * call, reopen (from a snapshot, with log replay, after a damaged snapshot), bad input,
 * foreign or damaged database files, map growth, allocation-failure walks, filters.
 *
 * Search results of flat collections are compared with a fresh flat qv_index built over
 * the same (external id, vector) pairs: both compute the same float distances, so the
 * hits must be identical. hnsw collections are checked for recall against that exact
 * answer. The reference model of a collection is a plain array indexed by external id.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "storage/storage.h"
#include "tests/test_util.h"

#define DIM 16
#define MAXID 4096

/* ---- a reference model: the live points by external id ---------------------------- */

typedef struct {
    size_t dim;
    unsigned char live[MAXID];
    float *vec;                    /* MAXID * dim */
    char payload[MAXID][40];       /* "" = none */
} model;

static model *model_new(size_t dim)
{
    model *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    m->dim = dim;
    m->vec = calloc(MAXID * dim, sizeof(float));
    ck_assert_ptr_nonnull(m->vec);
    return m;
}

static void model_free(model *m)
{
    if (!m) return;
    free(m->vec);
    free(m);
}

/* Deterministic vector for (id, version). */
static void point_vec(float *v, size_t dim, uint64_t id, uint64_t version)
{
    fill_random(v, dim, id * 7919 + version * 104729 + 1);
}

/* Upsert ids [lo, hi) (version ver) into c and the model; payload {"n":id,"v":ver} when
 * with_payload. */
static void upsert_range(qv_coll *c, model *m, uint64_t lo, uint64_t hi, uint64_t ver, int with_payload)
{
    size_t n = hi - lo, dim = m->dim;
    uint64_t *ids = malloc(n * sizeof *ids);
    float *vecs = malloc(n * dim * sizeof *vecs);
    char **pl = calloc(n, sizeof *pl);
    ck_assert(ids && vecs && pl);
    for (size_t i = 0; i < n; i++) {
        ids[i] = lo + i;
        point_vec(vecs + i * dim, dim, ids[i], ver);
        if (with_payload) {
            pl[i] = malloc(40);
            snprintf(pl[i], 40, "{\"n\":%llu,\"v\":%llu}", (unsigned long long)ids[i], (unsigned long long)ver);
        }
    }
    QV_CK(qv_upsert(c, n, ids, vecs, with_payload ? (const char *const *)pl : NULL));
    for (size_t i = 0; i < n; i++) {
        m->live[ids[i]] = 1;
        memcpy(m->vec + ids[i] * dim, vecs + i * dim, dim * sizeof(float));
        snprintf(m->payload[ids[i]], sizeof m->payload[0], "%s", with_payload ? pl[i] : "");
        free(pl[i]);
    }
    free(pl);
    free(ids);
    free(vecs);
}

static void delete_ids(qv_coll *c, model *m, const uint64_t *ids, size_t n)
{
    size_t nd = 0, want = 0;
    for (size_t i = 0; i < n; i++) want += m->live[ids[i]];
    QV_CK(qv_delete(c, n, ids, &nd));
    ck_assert_uint_eq(nd, want);
    for (size_t i = 0; i < n; i++) m->live[ids[i]] = 0;
}

static size_t model_count(const model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < MAXID; i++) n += m->live[i];
    return n;
}

/* Every model point is readable with its vector and payload; a few dead ones are not. */
static void check_gets(qv_coll *c, const model *m)
{
    float v[QV_MAX_DIM > 256 ? 256 : QV_MAX_DIM];
    ck_assert(m->dim <= 256);
    for (uint64_t id = 0; id < MAXID; id++) {
        char *pl = NULL;
        int rc = qv_get(c, id, v, &pl);
        if (!m->live[id]) {
            ck_assert_msg(rc == QV_ENOTFOUND, "id %llu should be absent, got %s", (unsigned long long)id, qv_strerror(rc));
            continue;
        }
        ck_assert_msg(rc == QV_OK, "get %llu: %s", (unsigned long long)id, qv_last_error());
        ck_assert_msg(memcmp(v, m->vec + id * m->dim, m->dim * sizeof(float)) == 0, "vector of %llu differs",
                      (unsigned long long)id);
        if (m->payload[id][0]) {
            ck_assert_ptr_nonnull(pl);
            ck_assert_str_eq(pl, m->payload[id]);
        } else {
            ck_assert_ptr_null(pl);
        }
        qv_free(pl);
    }
}

/* A fresh flat index over the model's points. */
static qv_index *model_index(const model *m, qv_metric metric)
{
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_FLAT, (uint32_t)m->dim, metric);
    p.threads = 1;
    QV_CK(qv_index_new(&p, &ix));
    for (uint64_t id = 0; id < MAXID; id++)
        if (m->live[id]) QV_CK(qv_index_add(ix, 1, &id, m->vec + id * m->dim));
    return ix;
}

/* Flat collection search == fresh flat index search, for nq random queries. */
static void check_search_exact(qv_coll *c, const model *m, qv_metric metric, size_t nq, uint64_t seed)
{
    qv_index *ix = model_index(m, metric);
    float *q = random_vectors(nq, m->dim, seed);
    qv_search_params sp;
    qv_hit a[10], b[10];
    qv_search_params_init(&sp, 10);
    for (size_t i = 0; i < nq; i++) {
        size_t na = 0, nb = 0;
        QV_CK(qv_search(c, q + i * m->dim, &sp, a, &na));
        QV_CK(qv_index_search(ix, q + i * m->dim, &sp, b, &nb));
        ck_assert_uint_eq(na, nb);
        for (size_t j = 0; j < na; j++) {
            ck_assert_msg(a[j].id == b[j].id, "query %zu hit %zu: id %llu, fresh index says %llu", i, j,
                          (unsigned long long)a[j].id, (unsigned long long)b[j].id);
            ck_assert_float_eq(a[j].score, b[j].score);
        }
    }
    free(q);
    qv_index_free(ix);
}

/* Recall@10 of a collection against the exact answer over the model. */
static double search_recall(qv_coll *c, const model *m, qv_metric metric, size_t nq, uint64_t seed)
{
    qv_index *ix = model_index(m, metric);
    float *q = random_vectors(nq, m->dim, seed);
    qv_search_params sp;
    qv_hit a[10], b[10];
    size_t found = 0, total = 0;
    qv_search_params_init(&sp, 10);
    for (size_t i = 0; i < nq; i++) {
        size_t na = 0, nb = 0;
        QV_CK(qv_search(c, q + i * m->dim, &sp, a, &na));
        QV_CK(qv_index_search(ix, q + i * m->dim, &sp, b, &nb));
        for (size_t j = 0; j < na; j++) ck_assert_msg(m->live[a[j].id], "hit %llu is not a live point", (unsigned long long)a[j].id);
        for (size_t j = 0; j < nb; j++) {
            total++;
            for (size_t t = 0; t < na; t++)
                if (a[t].id == b[j].id) { found++; break; }
        }
    }
    free(q);
    qv_index_free(ix);
    return total ? (double)found / (double)total : 1.0;
}

static void check_info(qv_coll *c, const model *m)
{
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_uint_eq(info.count, model_count(m));
    ck_assert_uint_eq(info.config.index.dim, m->dim);
}

/* ---- fixture: a temporary database directory ------------------------------------------- */

static char *tmp;

static void setup(void) { tmp = make_tmpdir("qv-storage"); }
static void teardown(void)
{
    qv_alloc_fail_after(-1);
    rm_rf(tmp);
    free(tmp);
    tmp = NULL;
}

static qv_db *open_db(const qv_db_options *o)
{
    qv_db *db = NULL;
    QV_CK(qv_db_open(tmp, o, &db));
    return db;
}

static qv_coll *create_coll(qv_db *db, const char *name, qv_index_kind kind, size_t dim, qv_metric metric)
{
    qv_collection_config cfg;
    qv_coll *c = NULL;
    memset(&cfg, 0, sizeof cfg);
    qv_index_params_init(&cfg.index, kind, (uint32_t)dim, metric);
    cfg.index.threads = 2;
    QV_CK(qv_collection_create(db, name, &cfg, &c));
    ck_assert_ptr_nonnull(c);
    return c;
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(test_round_trip_and_reopen)
{
    model *m = model_new(DIM);
    qv_db *db = open_db(NULL);
    qv_coll *c = create_coll(db, "docs", QV_INDEX_FLAT, DIM, QV_METRIC_L2), *c2 = NULL;
    QV_CK(qv_collection_open(db, "docs", &c2));
    ck_assert_ptr_eq(c, c2);
    upsert_range(c, m, 0, 300, 1, 1);
    upsert_range(c, m, 250, 400, 2, 0);   /* re-upsert replaces vector and drops payload */
    uint64_t del[] = {3, 5, 7, 399, 3000};
    delete_ids(c, m, del, 5);
    check_gets(c, m);
    check_info(c, m);
    check_search_exact(c, m, QV_METRIC_L2, 20, 77);
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_uint_eq(info.last_seq, 3);
    ck_assert_str_eq(info.name, "docs");
    QV_CK(qv_db_close(db));

    db = open_db(NULL);
    QV_CK(qv_collection_open(db, "docs", &c));
    qv_storage_stats st;
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.rebuilds, 0);
    check_gets(c, m);
    check_info(c, m);
    check_search_exact(c, m, QV_METRIC_L2, 20, 78);
    /* internal ids freed by the deletes are reused, and all still works after reopen */
    upsert_range(c, m, 1000, 1010, 1, 1);
    check_gets(c, m);
    check_search_exact(c, m, QV_METRIC_L2, 10, 79);
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_uint_eq(info.last_seq, 4);
    QV_CK(qv_db_close(db));
    model_free(m);
}
END_TEST

/* qv_mmr: with diversity 0 the hits keep the search's order; with 0.5 the second pick is
 * the hit least like the first (p3), not the next most relevant (p2, almost p1 again);
 * a deleted hit is dropped; the metric's relevance for l2 is minus the distance. */
START_TEST(test_mmr)
{
    qv_db *db = open_db(NULL);
    qv_coll *c = create_coll(db, "mmr", QV_INDEX_FLAT, 2, QV_METRIC_COSINE);
    const uint64_t ids[] = {1, 2, 3, 4};
    const float vecs[] = {0.96f, 0.28f, 0.94f, 0.34f, 0.8f, -0.6f, 0.5f, 0.5f}, q[] = {1, 0};
    qv_search_params sp;
    qv_hit hits[4];
    size_t n = 0, del = 0;
    QV_CK(qv_upsert(c, 4, ids, vecs, NULL));
    QV_CK(qv_delete(c, 1, &ids[3], &del));
    qv_search_params_init(&sp, 3);
    QV_CK(qv_search(c, q, &sp, hits, &n));
    ck_assert_uint_eq(n, 3);
    hits[n++] = (qv_hit){4, 0.7f};                 /* deleted since the search */
    QV_CK(qv_mmr(c, 0, 3, hits, &n));
    ck_assert(n == 3 && hits[0].id == 1 && hits[1].id == 2 && hits[2].id == 3);
    QV_CK(qv_mmr(c, 0.5, 2, hits, &n));
    ck_assert(n == 2 && hits[0].id == 1 && hits[1].id == 3);
    ck_assert(fabsf(hits[1].score - 0.8f) < 1e-6f);   /* the search's score */
    ck_assert_int_eq(qv_mmr(c, 1.5, 2, hits, &n), QV_EINVAL);
    QV_CK(qv_db_close(db));
}
END_TEST

/* qv_get_payloads reads what qv_get reads, for present, missing, deleted and payload-less
 * points alike, in one transaction. */
START_TEST(test_get_payloads_matches_get)
{
    qv_db *db = open_db(NULL);
    qv_collection_config cfg;
    qv_coll *c = NULL;
    memset(&cfg, 0, sizeof cfg);
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 2, QV_METRIC_L2);
    QV_CK(qv_collection_create(db, "p", &cfg, &c));
    enum { N = 50 };
    uint64_t ids[N];
    float v[N * 2];
    char text[N][64];
    const char *pl[N];
    for (int i = 0; i < N; i++) {
        ids[i] = 1000 + 7 * (uint64_t)i;
        v[2 * i] = (float)i;
        v[2 * i + 1] = 1;
        snprintf(text[i], sizeof text[i], "{\"n\":%d,\"t\":1732694400.123}", i);
        pl[i] = i % 3 ? text[i] : NULL;                  /* every third without payload */
    }
    QV_CK(qv_upsert(c, N, ids, v, pl));
    uint64_t del[] = {1000 + 7 * 4, 1000 + 7 * 5};
    QV_CK(qv_delete(c, 2, del, NULL));
    uint64_t ask[N + 3];
    for (int i = 0; i < N; i++) ask[i] = ids[N - 1 - i];
    ask[N] = 5;                                         /* never existed */
    ask[N + 1] = ids[7];                                /* asked twice */
    ask[N + 2] = QV_MAX_ID;
    char *got[N + 3];
    QV_CK(qv_get_payloads(c, N + 3, ask, got));
    for (int i = 0; i < N + 3; i++) {
        char *want = NULL;
        int rc = qv_get(c, ask[i], NULL, &want);
        ck_assert(rc == QV_OK || rc == QV_ENOTFOUND);
        if (!want) ck_assert_msg(got[i] == NULL, "id %llu: got %s, want none", (unsigned long long)ask[i], got[i]);
        else ck_assert_str_eq(got[i], want);
        qv_free(want);
        qv_free(got[i]);
    }
    ck_assert_ptr_null(got[N]);
    QV_CK(qv_get_payloads(c, 0, NULL, NULL));
    QV_CK_FAIL(qv_get_payloads(NULL, 1, ask, got), QV_EINVAL);
    QV_CK_FAIL(qv_get_payloads(c, 1, NULL, got), QV_EINVAL);
    QV_CK(qv_db_close(db));
}
END_TEST

START_TEST(test_list_drop_and_names)
{
    qv_db *db = open_db(NULL);
    qv_collection_config cfg;
    qv_coll *c = NULL;
    char **names = NULL;
    size_t n = 0;
    memset(&cfg, 0, sizeof cfg);
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 4, QV_METRIC_IP);
    const char *bad[] = {"", ".hidden", "a/b", "sp ace", "x\xc3\xa9", "0123456789012345678901234567890123456789012345678901234567890123X"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) QV_CK_FAIL(qv_collection_create(db, bad[i], &cfg, &c), QV_EINVAL);
    QV_CK_FAIL(qv_collection_create(db, NULL, &cfg, &c), QV_EINVAL);
    QV_CK(qv_collection_create(db, "b-2.x_y", &cfg, NULL));
    QV_CK(qv_collection_create(db, "a", &cfg, &c));
    QV_CK(qv_collection_create(db, "0123456789012345678901234567890123456789012345678901234567890123", &cfg, NULL));
    QV_CK_FAIL(qv_collection_create(db, "a", &cfg, NULL), QV_EEXIST);
    QV_CK_FAIL(qv_collection_open(db, "nope", &c), QV_ENOTFOUND);
    QV_CK_FAIL(qv_collection_drop(db, "nope"), QV_ENOTFOUND);
    QV_CK(qv_collection_list(db, &names, &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(names[0], "0123456789012345678901234567890123456789012345678901234567890123");
    ck_assert_str_eq(names[1], "a");
    ck_assert_str_eq(names[2], "b-2.x_y");
    qv_free_strings(names, n);
    QV_CK(qv_collection_open(db, "a", &c));
    float v[4] = {1, 2, 3, 4};
    uint64_t id = 9;
    QV_CK(qv_upsert(c, 1, &id, v, NULL));
    QV_CK(qv_collection_drop(db, "a"));
    QV_CK_FAIL(qv_collection_open(db, "a", &c), QV_ENOTFOUND);
    QV_CK(qv_collection_create(db, "a", &cfg, &c));  /* same name again: empty */
    QV_CK_FAIL(qv_get(c, 9, NULL, NULL), QV_ENOTFOUND);
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_uint_eq(info.count, 0);
    ck_assert_int_eq(info.config.index.metric, QV_METRIC_IP);
    QV_CK(qv_collection_list(db, &names, &n));
    ck_assert_uint_eq(n, 3);
    qv_free_strings(names, n);
    QV_CK(qv_db_close(db));
    /* payload_index round trip, and a bad one */
    db = open_db(NULL);
    cfg.payload_index = "{\"lang\":\"keyword\",\"year\":\"integer\"}";
    QV_CK(qv_collection_create(db, "p", &cfg, &c));
    QV_CK(qv_db_close(db));
    db = open_db(NULL);
    QV_CK(qv_collection_open(db, "p", &c));
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_ptr_nonnull(info.config.payload_index);
    ck_assert_str_eq(info.config.payload_index, "{\"lang\":\"keyword\",\"year\":\"integer\"}");
    cfg.payload_index = "{\"lang\":\"fulltext\"}";
    QV_CK_FAIL(qv_collection_create(db, "p2", &cfg, NULL), QV_EINVAL);
    cfg.payload_index = "[1,2";
    QV_CK_FAIL(qv_collection_create(db, "p2", &cfg, NULL), QV_EINVAL);
    cfg.payload_index = NULL;
    cfg.index.dim = 0;
    QV_CK_FAIL(qv_collection_create(db, "p2", &cfg, NULL), QV_EINVAL);
    QV_CK_FAIL(qv_collection_open(db, "p2", &c), QV_ENOTFOUND);
    QV_CK(qv_db_close(db));
}
END_TEST

START_TEST(test_bad_points_change_nothing)
{
    model *m = model_new(4);
    qv_db *db = open_db(NULL);
    qv_coll *c = create_coll(db, "v", QV_INDEX_FLAT, 4, QV_METRIC_COSINE);
    upsert_range(c, m, 0, 10, 1, 1);
    qv_collection_info before, after;
    QV_CK(qv_collection_get_info(c, &before));
    uint64_t ids[3] = {100, 101, 102};
    float v[12];
    fill_random(v, 12, 5);
    const char *pl_bad[3] = {"{\"a\":1}", "{\"a\":", NULL};
    const char *pl_arr[3] = {NULL, NULL, "[1,2,3]"};
    QV_CK_FAIL(qv_upsert(c, 3, ids, v, pl_bad), QV_EINVAL);
    ck_assert_msg(strstr(qv_last_error(), "point 1") != NULL, "message: %s", qv_last_error());
    QV_CK_FAIL(qv_upsert(c, 3, ids, v, pl_arr), QV_EINVAL);
    ck_assert_msg(strstr(qv_last_error(), "point 2") && strstr(qv_last_error(), "id 102"), "message: %s", qv_last_error());
    v[5] = NAN;
    QV_CK_FAIL(qv_upsert(c, 3, ids, v, NULL), QV_EINVAL);
    ck_assert_msg(strstr(qv_last_error(), "point 1") != NULL, "message: %s", qv_last_error());
    v[5] = INFINITY;
    QV_CK_FAIL(qv_upsert(c, 3, ids, v, NULL), QV_EINVAL);
    v[5] = 0.5f;
    memset(v + 8, 0, 4 * sizeof(float));   /* cosine: zero vector */
    QV_CK_FAIL(qv_upsert(c, 3, ids, v, NULL), QV_EINVAL);
    v[8] = 1;
    uint64_t dup[3] = {100, 101, 100};
    QV_CK_FAIL(qv_upsert(c, 3, dup, v, NULL), QV_EINVAL);
    QV_CK_FAIL(qv_upsert(c, 3, NULL, v, NULL), QV_EINVAL);
    QV_CK_FAIL(qv_upsert(NULL, 3, ids, v, NULL), QV_EINVAL);
    QV_CK(qv_upsert(c, 0, NULL, NULL, NULL));
    size_t nd = 7;
    QV_CK(qv_delete(c, 3, ids, &nd));        /* none present: nothing written */
    ck_assert_uint_eq(nd, 0);
    QV_CK(qv_collection_get_info(c, &after));
    ck_assert_uint_eq(after.count, before.count);
    ck_assert_uint_eq(after.last_seq, before.last_seq);
    for (int i = 0; i < 3; i++) QV_CK_FAIL(qv_get(c, ids[i], NULL, NULL), QV_ENOTFOUND);
    check_gets(c, m);
    /* bad search arguments */
    qv_search_params sp;
    qv_hit hits[4];
    size_t nh;
    qv_search_params_init(&sp, 0);
    QV_CK_FAIL(qv_search(c, v, &sp, hits, &nh), QV_EINVAL);
    qv_search_params_init(&sp, 4);
    v[0] = NAN;
    QV_CK_FAIL(qv_search(c, v, &sp, hits, &nh), QV_EINVAL);
    QV_CK(qv_db_close(db));
    model_free(m);
}
END_TEST

/* Copy the database file of an open, idle database into dst (a crash image: LMDB's file
 * is consistent at every commit, and these are synced). */
static void copy_one(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    ck_assert(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* The files a kill -9 would leave: data.mdb and the snapshot files (no lock file). */
static void copy_data_file(const char *src_dir, const char *dst_dir)
{
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/data.mdb", src_dir);
    snprintf(dst, sizeof dst, "%s/data.mdb", dst_dir);
    mkdir(dst_dir, 0755);
    copy_one(src, dst);
    snprintf(src, sizeof src, "%s/snapshots", src_dir);
    snprintf(dst, sizeof dst, "%s/snapshots", dst_dir);
    DIR *d = opendir(src);
    if (!d) return;
    mkdir(dst, 0755);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char a[1400], b[1400];
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
        copy_one(a, b);
    }
    closedir(d);
}

START_TEST(test_replay_after_snapshot)
{
    model *m = model_new(DIM);
    qv_db *db = open_db(NULL), *db2 = NULL;
    qv_coll *c = create_coll(db, "r", QV_INDEX_FLAT, DIM, QV_METRIC_L2);
    upsert_range(c, m, 0, 200, 1, 1);
    QV_CK(qv_checkpoint(c));
    upsert_range(c, m, 150, 260, 2, 1);
    uint64_t del[] = {1, 2, 3, 155};
    delete_ids(c, m, del, 4);
    upsert_range(c, m, 2, 3, 3, 0);          /* a freed internal id comes back */
    char img[1024];
    snprintf(img, sizeof img, "%s/img", tmp);
    copy_data_file(tmp, img);
    QV_CK(qv_db_close(db));

    QV_CK(qv_db_open(img, NULL, &db2));
    QV_CK(qv_collection_open(db2, "r", &c));
    qv_storage_stats st;
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.replayed_writes, 3);
    ck_assert_uint_eq(st.rebuilds, 0);
    check_gets(c, m);
    check_info(c, m);
    check_search_exact(c, m, QV_METRIC_L2, 20, 5);
    QV_CK(qv_db_close(db2));
    model_free(m);
}
END_TEST

/* Flip a byte in the middle of every snapshot value, through raw LMDB. */
static void damage_snapshots(const char *dir, int how)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    int n = 0;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 16), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "snapshots", 0, &dbi), 0);
    ck_assert_int_eq(mdb_cursor_open(txn, dbi, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, n ? MDB_NEXT : MDB_FIRST) == 0) {
        uint8_t *copy = malloc(v.mv_size);
        memcpy(copy, v.mv_data, v.mv_size);
        if (how == 0) copy[v.mv_size / 2] ^= 0x5a;             /* damaged body: CRC fails */
        else if (how == 1) copy[0] = 'X';                       /* damaged header */
        else qv_be64_put(copy + 8, qv_be64_get(copy + 8) - 1); /* covers one write too few */
        MDB_val nv = {v.mv_size, copy};
        ck_assert_int_eq(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
        free(copy);
        n++;
    }
    ck_assert_int_gt(n, 0);
    mdb_cursor_close(cur);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

START_TEST(test_damaged_snapshot_rebuilds)
{
    int how = _i;
    model *m = model_new(DIM);
    qv_db *db = open_db(NULL);
    qv_coll *c = create_coll(db, "d", QV_INDEX_FLAT, DIM, QV_METRIC_L2);
    upsert_range(c, m, 0, 300, 1, 0);
    QV_CK(qv_checkpoint(c));
    upsert_range(c, m, 100, 350, 2, 0);
    QV_CK(qv_db_close(db));
    damage_snapshots(tmp, how);
    db = open_db(NULL);
    QV_CK(qv_collection_open(db, "d", &c));
    ck_assert_msg(strstr(qv_last_error(), "snapshot") != NULL, "warning left in qv_last_error: '%s'", qv_last_error());
    qv_storage_stats st;
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.damaged_snapshots, 1);
    ck_assert_uint_eq(st.rebuilds, 1);
    ck_assert_uint_eq(st.snapshot_loads, 0);
    ck_assert(strstr(st.warning, "snapshot") != NULL);
    check_gets(c, m);
    check_search_exact(c, m, QV_METRIC_L2, 20, 9);
    QV_CK(qv_db_close(db));                  /* writes a good snapshot again */
    db = open_db(NULL);
    QV_CK(qv_collection_open(db, "d", &c));
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.damaged_snapshots, 0);
    check_search_exact(c, m, QV_METRIC_L2, 10, 10);
    QV_CK(qv_db_close(db));
    model_free(m);
}
END_TEST

static void write_file(const char *dir, const char *name, const void *buf, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_foreign_and_damaged_files)
{
    qv_db *db = NULL;
    char sub[1024];
    /* garbage where data.mdb should be */
    unsigned char junk[3 * 4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 37 + 11);
    snprintf(sub, sizeof sub, "%s/junk", tmp);
    mkdir(sub, 0755);
    write_file(sub, "data.mdb", junk, sizeof junk);
    QV_CK_FAIL(qv_db_open(sub, NULL, &db), QV_ECORRUPT);
    ck_assert_ptr_null(db);
    /* a short file */
    snprintf(sub, sizeof sub, "%s/short", tmp);
    mkdir(sub, 0755);
    write_file(sub, "data.mdb", junk, 100);
    QV_CK_FAIL(qv_db_open(sub, NULL, &db), QV_ECORRUPT);
    /* a real LMDB environment of some other program */
    snprintf(sub, sizeof sub, "%s/foreign", tmp);
    mkdir(sub, 0755);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_open(env, sub, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_val k = {5, "hello"}, v = {5, "world"};
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    QV_CK_FAIL(qv_db_open(sub, NULL, &db), QV_ECORRUPT);
    ck_assert_msg(strstr(qv_last_error(), "not a Quiver database") != NULL, "%s", qv_last_error());
    /* the same foreign env, whose 'meta' name is a plain key of someone else */
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_open(env, sub, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    ck_assert_int_eq(mdb_del(txn, dbi, &k, NULL), 0);
    MDB_val k2 = {4, "meta"};
    ck_assert_int_eq(mdb_put(txn, dbi, &k2, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    QV_CK_FAIL(qv_db_open(sub, NULL, &db), QV_ECORRUPT);
    /* a path that is a file, and a missing parent */
    snprintf(sub, sizeof sub, "%s/junk/data.mdb", tmp);
    ck_assert_int_ne(qv_db_open(sub, NULL, &db), QV_OK);
    snprintf(sub, sizeof sub, "%s/no/such/dir", tmp);
    QV_CK_FAIL(qv_db_open(sub, NULL, &db), QV_ENOTFOUND);
    /* read-only open of an empty directory */
    qv_db_options o;
    qv_db_options_init(&o);
    o.flags = QV_DB_RDONLY;
    snprintf(sub, sizeof sub, "%s/empty", tmp);
    mkdir(sub, 0755);
    ck_assert_int_ne(qv_db_open(sub, &o, &db), QV_OK);
    ck_assert_ptr_null(db);
    /* bad options */
    o.flags = 1u << 7;
    QV_CK_FAIL(qv_db_open(tmp, &o, &db), QV_EINVAL);
    qv_db_options_init(&o);
    o.initial_map_bytes = 1000;
    QV_CK_FAIL(qv_db_open(tmp, &o, &db), QV_EINVAL);
    QV_CK(qv_db_close(NULL));
}
END_TEST

START_TEST(test_second_open_and_rdonly)
{
    model *m = model_new(DIM);
    qv_db *db = open_db(NULL), *db2 = NULL;
    QV_CK_FAIL(qv_db_open(tmp, NULL, &db2), QV_EINVAL);
    ck_assert_ptr_null(db2);
    qv_coll *c = create_coll(db, "ro", QV_INDEX_FLAT, DIM, QV_METRIC_L2);
    upsert_range(c, m, 0, 50, 1, 1);
    QV_CK(qv_db_close(db));
    qv_db_options o;
    qv_db_options_init(&o);
    o.flags = QV_DB_RDONLY;
    db = open_db(&o);
    QV_CK(qv_collection_open(db, "ro", &c));
    check_gets(c, m);
    check_search_exact(c, m, QV_METRIC_L2, 5, 3);
    uint64_t id = 1;
    float v[DIM] = {0};
    QV_CK_FAIL(qv_upsert(c, 1, &id, v, NULL), QV_ESTATE);
    QV_CK_FAIL(qv_delete(c, 1, &id, NULL), QV_ESTATE);
    QV_CK_FAIL(qv_checkpoint(c), QV_ESTATE);
    QV_CK_FAIL(qv_collection_drop(db, "ro"), QV_ESTATE);
    QV_CK(qv_db_close(db));
    model_free(m);
}
END_TEST

START_TEST(test_map_grows)
{
    model *m = model_new(64);
    qv_db_options o;
    qv_db_options_init(&o);
    o.initial_map_bytes = 1u << 20;
    o.flags = QV_DB_NOSYNC;
    qv_db *db = open_db(&o);
    qv_coll *c = create_coll(db, "big", QV_INDEX_FLAT, 64, QV_METRIC_L2);
    for (uint64_t lo = 0; lo < MAXID; lo += 1024) upsert_range(c, m, lo, lo + 1024, 1, 1);  /* ~1.3 MB */
    QV_CK(qv_checkpoint(c));
    qv_storage_stats st;
    qv_storage_get_stats(c, &st);
    ck_assert_uint_gt(st.map_grows, 0);
    check_gets(c, m);
    QV_CK(qv_db_close(db));
    db = open_db(&o);
    QV_CK(qv_collection_open(db, "big", &c));
    check_info(c, m);
    check_search_exact(c, m, QV_METRIC_L2, 5, 4);
    QV_CK(qv_db_close(db));
    model_free(m);
}
END_TEST

/* Walk every allocation failure of upsert, delete, checkpoint and open: each failing
 * call returns QV_ENOMEM and leaves all-or-nothing; ASan's leak check covers the rest. */
START_TEST(test_alloc_failures)
{
    model *m = model_new(DIM);
    qv_db *db = open_db(NULL);
    qv_coll *c = create_coll(db, "oom", QV_INDEX_FLAT, DIM, QV_METRIC_L2);
    upsert_range(c, m, 0, 100, 1, 1);
    uint64_t ids[20];
    float vecs[20 * DIM];
    char pls[20][32];
    const char *pl[20];
    for (int i = 0; i < 20; i++) {
        ids[i] = (uint64_t)(90 + i);   /* 10 re-upserts, 10 new */
        point_vec(vecs + i * DIM, DIM, ids[i], 7);
        snprintf(pls[i], sizeof pls[i], "{\"k\":%d}", i);
        pl[i] = pls[i];
    }
    int committed_with_error = 0, rc = QV_ENOMEM;
    for (long k = 0; rc != QV_OK && k < 10000; k++) {
        qv_alloc_fail_after(k);
        rc = qv_upsert(c, 20, ids, vecs, pl);
        qv_alloc_fail_after(-1);
        if (rc == QV_OK) break;
        ck_assert_msg(rc == QV_ENOMEM, "k=%ld: %s: %s", k, qv_strerror(rc), qv_last_error());
        /* all or nothing: either the old state or the whole batch */
        char *p = NULL;
        QV_CK(qv_get(c, 95, NULL, &p));
        int applied = strcmp(p, "{\"k\":5}") == 0;
        qv_free(p);
        for (int i = 0; i < 20; i++) {
            int r = qv_get(c, ids[i], NULL, NULL);
            ck_assert_int_eq(r, (applied || ids[i] < 100) ? QV_OK : QV_ENOTFOUND);
        }
        if (applied) {                   /* committed, index marked for rebuild: undo */
            committed_with_error++;
            check_search_exact(c, m, QV_METRIC_L2, 0, 1);
            uint64_t newids[10];
            for (int i = 0; i < 10; i++) newids[i] = 100 + (uint64_t)i;
            QV_CK(qv_delete(c, 10, newids, NULL));
            upsert_range(c, m, 90, 100, 1, 1);
        }
        check_search_exact(c, m, QV_METRIC_L2, 2, 100 + (uint64_t)k);
    }
    ck_assert_int_eq(rc, QV_OK);
    for (int i = 0; i < 20; i++) {
        m->live[ids[i]] = 1;
        memcpy(m->vec + ids[i] * DIM, vecs + i * DIM, sizeof(float) * DIM);
        snprintf(m->payload[ids[i]], sizeof m->payload[0], "%.*s", (int)sizeof m->payload[0] - 1, pls[i]);
    }
    check_gets(c, m);
    check_search_exact(c, m, QV_METRIC_L2, 5, 11);

    /* delete */
    uint64_t del[5] = {1, 2, 3, 95, 4000};
    rc = QV_ENOMEM;
    for (long k = 0; rc != QV_OK && k < 10000; k++) {
        qv_alloc_fail_after(k);
        size_t nd = 0;
        rc = qv_delete(c, 5, del, &nd);
        qv_alloc_fail_after(-1);
        ck_assert_msg(rc == QV_OK || rc == QV_ENOMEM, "%s", qv_last_error());
        int gone = qv_get(c, 1, NULL, NULL) == QV_ENOTFOUND;
        for (int i = 0; i < 4; i++) ck_assert_int_eq(qv_get(c, del[i], NULL, NULL), gone ? QV_ENOTFOUND : QV_OK);
        if (gone && rc != QV_OK) break;  /* committed, index rebuilt later */
    }
    for (int i = 0; i < 5; i++) m->live[del[i]] = 0;
    check_gets(c, m);
    check_search_exact(c, m, QV_METRIC_L2, 5, 12);

    /* checkpoint */
    rc = QV_ENOMEM;
    for (long k = 0; rc != QV_OK && k < 10000; k++) {
        qv_alloc_fail_after(k);
        rc = qv_checkpoint(c);
        qv_alloc_fail_after(-1);
        ck_assert_msg(rc == QV_OK || rc == QV_ENOMEM, "%s", qv_last_error());
    }
    upsert_range(c, m, 500, 520, 1, 0);   /* something to replay */
    char img[1024];
    snprintf(img, sizeof img, "%s/img", tmp);
    copy_data_file(tmp, img);
    QV_CK(qv_db_close(db));

    /* open (snapshot + replay) */
    rc = QV_ENOMEM;
    for (long k = 0; rc != QV_OK && k < 100000; k++) {
        qv_alloc_fail_after(k);
        db = NULL;
        rc = qv_db_open(img, NULL, &db);
        if (rc == QV_OK) {
            rc = qv_collection_open(db, "oom", &c);
            qv_alloc_fail_after(-1);
            if (rc == QV_OK) {
                qv_storage_stats st;
                qv_storage_get_stats(c, &st);
                ck_assert_uint_eq(st.snapshot_loads, 1);
                check_gets(c, m);
                check_search_exact(c, m, QV_METRIC_L2, 5, 13);
            }
            QV_CK(qv_db_close(db));  /* a failed open leaves a clean db; close checkpoints */
            if (rc == QV_OK) break;
        }
        qv_alloc_fail_after(-1);
        ck_assert_msg(rc == QV_ENOMEM, "k=%ld: %s: %s", k, qv_strerror(rc), qv_last_error());
    }
    ck_assert_int_eq(rc, QV_OK);
    if (getenv("QV_CRASH_DEBUG")) fprintf(stderr, "alloc walk: %d upserts committed with an index failure\n", committed_with_error);
    model_free(m);
}
END_TEST

static int accept_even(uint64_t id, void *arg)
{
    (void)arg;
    return id % 2 == 0;
}

START_TEST(test_filters_and_batch)
{
    model *m = model_new(DIM);
    qv_db *db = open_db(NULL);
    qv_coll *c = create_coll(db, "f", QV_INDEX_FLAT, DIM, QV_METRIC_L2);
    upsert_range(c, m, 1000, 1300, 1, 0);   /* external ids far from internal ones */
    float *q = random_vectors(8, DIM, 21);
    qv_search_params sp;
    qv_hit hits[8 * 10], one[10];
    size_t nh[8], n1;
    qv_search_params_init(&sp, 10);
    sp.accept = accept_even;
    QV_CK(qv_search_batch(c, 8, q, &sp, hits, nh));
    for (size_t i = 0; i < 8; i++) {
        ck_assert_uint_eq(nh[i], 10);
        QV_CK(qv_search(c, q + i * DIM, &sp, one, &n1));
        ck_assert_uint_eq(n1, nh[i]);
        for (size_t j = 0; j < n1; j++) {
            ck_assert_uint_eq(one[j].id % 2, 0);
            ck_assert_uint_eq(one[j].id, hits[i * 10 + j].id);
        }
    }
    /* allow_bits over external ids: only 1100..1109 */
    uint64_t bits[1300 / 64 + 1] = {0};
    for (uint64_t id = 1100; id < 1110; id++) bits[id / 64] |= 1ull << (id % 64);
    qv_search_params_init(&sp, 10);
    sp.allow_bits = bits;
    sp.allow_nbits = 1300;
    QV_CK(qv_search(c, q, &sp, one, &n1));
    ck_assert_uint_eq(n1, 10);
    for (size_t j = 0; j < n1; j++) ck_assert(one[j].id >= 1100 && one[j].id < 1110);
    free(q);
    QV_CK(qv_db_close(db));
    model_free(m);
}
END_TEST

START_TEST(test_hnsw_collection)
{
    size_t dim = 24;
    model *m = model_new(dim);
    qv_db_options o;
    qv_db_options_init(&o);
    o.checkpoint_every = 3;
    qv_db *db = open_db(&o);
    qv_coll *c = create_coll(db, "h", QV_INDEX_HNSW, dim, QV_METRIC_COSINE);
    size_t n = sanitized() ? 600 : 2000;
    for (uint64_t lo = 0; lo < n; lo += 200) upsert_range(c, m, lo, lo + 200, 1, 0);
    uint64_t del[50];
    for (int i = 0; i < 50; i++) del[i] = (uint64_t)i * 7;
    delete_ids(c, m, del, 50);
    double r = search_recall(c, m, QV_METRIC_COSINE, 30, 1);
    ck_assert_msg(r >= 0.9, "recall %.3f", r);
    char img[1024];
    snprintf(img, sizeof img, "%s/img", tmp);
    copy_data_file(tmp, img);            /* snapshot from a checkpoint_every + replay */
    QV_CK(qv_db_close(db));
    db = open_db(&o);
    QV_CK(qv_collection_open(db, "h", &c));
    qv_storage_stats st;
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    check_info(c, m);
    r = search_recall(c, m, QV_METRIC_COSINE, 30, 2);
    ck_assert_msg(r >= 0.9, "recall after reopen %.3f", r);
    QV_CK(qv_db_close(db));
    QV_CK(qv_db_open(img, &o, &db));
    QV_CK(qv_collection_open(db, "h", &c));
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_gt(st.replayed_writes, 0);
    check_info(c, m);
    check_gets(c, m);
    r = search_recall(c, m, QV_METRIC_COSINE, 30, 3);
    ck_assert_msg(r >= 0.9, "recall after replay %.3f", r);
    QV_CK(qv_db_close(db));
    model_free(m);
}
END_TEST

/* Searches and gets from several threads while one thread writes: every hit is a point
 * that was written at some time (ids of batch b are b*100..), and nothing fails. */
typedef struct {
    qv_coll *c;
    volatile int stop;
    int failures;
} conc_arg;

static void *reader(void *p)
{
    conc_arg *a = p;
    float q[DIM];
    qv_hit hits[5];
    size_t n;
    qv_search_params sp;
    qv_search_params_init(&sp, 5);
    for (uint64_t it = 0; !__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE); it++) {
        fill_random(q, DIM, it + 1);
        if (qv_search(a->c, q, &sp, hits, &n) != QV_OK) __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
        for (size_t j = 0; j < n; j++)
            if (hits[j].id >= 4000) __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
        int rc = qv_get(a->c, it % 2000, NULL, NULL);
        if (rc != QV_OK && rc != QV_ENOTFOUND) __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

START_TEST(test_concurrent_readers)
{
    model *m = model_new(DIM);
    qv_db_options o;
    qv_db_options_init(&o);
    o.initial_map_bytes = 1u << 20;          /* growth under concurrent qv_get */
    o.flags = QV_DB_NOSYNC;
    qv_db *db = open_db(&o);
    qv_coll *c = create_coll(db, "cc", QV_INDEX_HNSW, DIM, QV_METRIC_L2);
    upsert_range(c, m, 0, 100, 1, 0);
    conc_arg a = {c, 0, 0};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, reader, &a), 0);
    int batches = sanitized() ? 10 : 30;
    for (int b = 1; b < batches; b++) {
        upsert_range(c, m, (uint64_t)b * 100, (uint64_t)b * 100 + 100, 1, 1);
        uint64_t del[10];
        for (int i = 0; i < 10; i++) del[i] = (uint64_t)(b - 1) * 100 + (uint64_t)i * 3;
        delete_ids(c, m, del, 10);
        if (b % 5 == 0) QV_CK(qv_checkpoint(c));
    }
    __atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(a.failures, 0);
    check_info(c, m);
    QV_CK(qv_db_close(db));
    model_free(m);
}
END_TEST

/* ivf collections: flat (exact) until the training size, then trained during an upsert;
 * with nprobe = nlist every search is exact; the trained index survives reopen through
 * its snapshot and a lost snapshot means training again; explicit qv_collection_train. */
static void check_ivf_exact(qv_coll *c, const model *m, uint32_t nprobe, uint64_t seed)
{
    qv_index *ix = model_index(m, QV_METRIC_L2);
    float *q = random_vectors(20, m->dim, seed);
    qv_search_params sp;
    qv_hit a[10], b[10];
    qv_search_params_init(&sp, 10);
    sp.nprobe = nprobe;
    for (size_t i = 0; i < 20; i++) {
        size_t na = 0, nb = 0;
        QV_CK(qv_search(c, q + i * m->dim, &sp, a, &na));
        QV_CK(qv_index_search(ix, q + i * m->dim, &sp, b, &nb));
        ck_assert_uint_eq(na, nb);
        for (size_t j = 0; j < na; j++)
            ck_assert_msg(a[j].id == b[j].id || fabsf(a[j].score - b[j].score) <= 1e-5f * (1 + b[j].score),
                          "query %zu hit %zu: id %llu (%g), exact %llu (%g)", i, j, (unsigned long long)a[j].id,
                          a[j].score, (unsigned long long)b[j].id, b[j].score);
    }
    free(q);
    qv_index_free(ix);
}

START_TEST(test_ivf_collection)
{
    model *m = model_new(DIM);
    qv_db *db = open_db(NULL);
    qv_collection_config cfg;
    qv_coll *c = NULL, *h = NULL;
    qv_storage_stats st;
    memset(&cfg, 0, sizeof cfg);
    qv_index_params_init(&cfg.index, QV_INDEX_IVF, DIM, QV_METRIC_L2);
    cfg.index.nlist = 8;
    cfg.index.threads = 1;
    QV_CK(qv_collection_create(db, "v", &cfg, &c));
    upsert_range(c, m, 0, 600, 1, 1);
    qv_storage_get_stats(c, &st);
    ck_assert_int_eq(st.ivf_trained, 0);
    check_ivf_exact(c, m, 1, 1);                 /* flat: exact whatever nprobe says */
    upsert_range(c, m, 600, 1200, 1, 1);         /* 1200 >= max(39 * 8, 1000): trains */
    qv_storage_get_stats(c, &st);
    ck_assert_int_eq(st.ivf_trained, 1);
    ck_assert_uint_eq(st.ivf_trainings, 1);
    qv_index_params ip;
    qv_index_get_params(c->ix, &ip);
    ck_assert_int_eq(ip.kind, QV_INDEX_IVF);
    ck_assert_uint_eq(ip.nlist, 8);
    check_ivf_exact(c, m, 8, 2);
    uint64_t del[100];
    for (int i = 0; i < 100; i++) del[i] = (uint64_t)i * 11;
    delete_ids(c, m, del, 100);
    upsert_range(c, m, 1200, 1300, 2, 1);
    upsert_range(c, m, 0, 50, 3, 1);
    check_ivf_exact(c, m, 8, 3);
    check_info(c, m);
    QV_CK(qv_db_close(db));
    db = open_db(NULL);
    QV_CK(qv_collection_open(db, "v", &c));
    qv_storage_get_stats(c, &st);
    ck_assert_int_eq(st.ivf_trained, 1);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.rebuilds, 0);
    check_gets(c, m);
    check_ivf_exact(c, m, 8, 4);
    /* the snapshot lost: the rebuild trains again */
    {
        MDB_txn *txn = NULL;
        uint8_t key[4];
        qv_be32_put(key, c->cid);
        QV_CK(qv_lmdb_begin(db, 0, &txn));
        QV_CK(qv_lmdb_del(txn, db->dbi[DBI_SNAPSHOTS], key, 4));
        QV_CK(qv_lmdb_commit(db, txn));
    }
    QV_CK(qv_db_close(db));
    db = open_db(NULL);
    QV_CK(qv_collection_open(db, "v", &c));
    qv_storage_get_stats(c, &st);
    ck_assert_int_eq(st.ivf_trained, 1);
    ck_assert_uint_eq(st.rebuilds, 1);
    check_ivf_exact(c, m, 8, 5);
    /* explicit training of a small one; nlist 0 = 4*sqrt(n) */
    cfg.index.nlist = 0;
    QV_CK(qv_collection_create(db, "w", &cfg, &h));
    QV_CK_FAIL(qv_collection_train(h, NULL, NULL), QV_ESTATE);
    model *m2 = model_new(DIM);
    upsert_range(h, m2, 0, 100, 1, 0);
    QV_CK(qv_collection_train(h, NULL, NULL));
    qv_storage_get_stats(h, &st);
    ck_assert_int_eq(st.ivf_trained, 1);
    qv_index_get_params(h->ix, &ip);
    ck_assert_int_eq(ip.kind, QV_INDEX_IVF);
    ck_assert_uint_eq(ip.nlist, 40);
    check_ivf_exact(h, m2, 40, 6);
    upsert_range(h, m2, 100, 150, 1, 0);         /* adds go to the trained lists */
    check_ivf_exact(h, m2, 40, 7);
    QV_CK(qv_collection_open(db, "h0", &h) == QV_ENOTFOUND ? QV_OK : QV_EINTERNAL);
    h = create_coll(db, "h0", QV_INDEX_HNSW, DIM, QV_METRIC_L2);
    QV_CK_FAIL(qv_collection_train(h, NULL, NULL), QV_EINVAL);
    QV_CK(qv_db_close(db));
    model_free(m);
    model_free(m2);
}
END_TEST

Suite *qv_storage_suite(void)
{
    Suite *s = suite_create("storage");
    TCase *tc = tcase_create("storage");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trip_and_reopen);
    tcase_add_test(tc, test_list_drop_and_names);
    tcase_add_test(tc, test_get_payloads_matches_get);
    tcase_add_test(tc, test_mmr);
    tcase_add_test(tc, test_bad_points_change_nothing);
    tcase_add_test(tc, test_replay_after_snapshot);
    tcase_add_loop_test(tc, test_damaged_snapshot_rebuilds, 0, 3);
    tcase_add_test(tc, test_foreign_and_damaged_files);
    tcase_add_test(tc, test_second_open_and_rdonly);
    tcase_add_test(tc, test_map_grows);
    tcase_add_test(tc, test_alloc_failures);
    tcase_add_test(tc, test_filters_and_batch);
    tcase_add_test(tc, test_hnsw_collection);
    tcase_add_test(tc, test_ivf_collection);
    tcase_add_test(tc, test_concurrent_readers);
    suite_add_tcase(s, tc);
    return s;
}
