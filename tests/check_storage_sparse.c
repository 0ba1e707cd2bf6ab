/*
 * tests/check_storage_sparse.c -- sparse vectors (issue 22): qv_sparse_search against a
 * brute-force double-precision dot product written here, on a few hundred random points
 * through upserts, replacements (with and without sparse vectors), deletes, a payload
 * filter, the idf modifier, a reopen and a backup restored under another name; the
 * config round trip; qv_get_sparse; and the refusals of bad input.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

static char *tmp;
static void setup(void) { tmp = make_tmpdir("qv-sparse"); }
static void teardown(void)
{
    rm_rf(tmp);
    free(tmp);
    tmp = NULL;
}

#define NPT 400
#define NSLOT 2
#define VOCAB 60
#define MAXNNZ 12
#define DIM 4

typedef struct {
    int alive;
    uint32_t n[NSLOT];
    uint32_t idx[NSLOT][MAXNNZ];
    float val[NSLOT][MAXNNZ];
} model_pt;

static model_pt model[NPT];

/* A random sparse vector: 0..MAXNNZ distinct sorted indices below VOCAB (0 entries with
 * odds 1/8: the point has none). Small vocabularies make many points share indices. */
static void random_sparse(uint64_t *s, uint32_t *n, uint32_t *idx, float *val)
{
    uint8_t used[VOCAB] = {0};
    uint32_t m = (uint32_t)(test_rand(s) % 8 == 0 ? 0 : 1 + test_rand(s) % MAXNNZ);
    for (uint32_t i = 0; i < m; i++) used[test_rand(s) % VOCAB] = 1;
    *n = 0;
    for (uint32_t i = 0; i < VOCAB; i++)
        if (used[i]) {
            idx[*n] = i;
            val[(*n)++] = (float)((double)(test_rand(s) % 20000) / 10000.0 - 0.9);   /* -0.9..1.1 */
        }
}

/* Upsert points ids[0..n) from the model (their sparse vectors as the model has them). */
static void upsert_model(qv_coll *c, const uint64_t *ids, size_t n)
{
    float *vecs = random_vectors(n, DIM, 7 + ids[0]);
    qv_sparse_vector *sv = calloc(n * NSLOT, sizeof *sv);
    char **pl = calloc(n, sizeof *pl);
    for (size_t i = 0; i < n; i++) {
        model_pt *m = &model[ids[i]];
        for (int j = 0; j < NSLOT; j++) sv[i * NSLOT + j] = (qv_sparse_vector){m->n[j], m->idx[j], m->val[j]};
        pl[i] = malloc(32);
        snprintf(pl[i], 32, "{\"g\":%d}", (int)(ids[i] % 3));
        m->alive = 1;
    }
    QV_CK(qv_upsert_sparse(c, n, ids, vecs, (const char *const *)pl, sv));
    for (size_t i = 0; i < n; i++) free(pl[i]);
    free(pl);
    free(sv);
    free(vecs);
}

typedef struct { uint64_t id; double s; } ref_hit;

static int cmp_ref(const void *a, const void *b)
{
    const ref_hit *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The reference: every live point sharing an index with q (and in group g, unless g < 0),
 * scored by the dot product in double, query weights times Qdrant's idf when idf. */
static size_t reference(int slot, int idf, const uint32_t *qi, const float *qv, uint32_t qn, int g, ref_hit *out)
{
    double w[MAXNNZ * 2];
    double N = 0;
    for (size_t p = 0; p < NPT; p++) N += model[p].alive && model[p].n[slot];
    for (uint32_t a = 0; a < qn; a++) {
        double df = 0;
        for (size_t p = 0; p < NPT; p++)
            for (uint32_t b = 0; model[p].alive && b < model[p].n[slot]; b++) df += model[p].idx[slot][b] == qi[a];
        w[a] = qv[a] * (idf ? log(1 + (N - df + 0.5) / (df + 0.5)) : 1.0);
    }
    size_t n = 0;
    for (size_t p = 0; p < NPT; p++) {
        const model_pt *m = &model[p];
        if (!m->alive || (g >= 0 && (int)(p % 3) != g)) continue;
        double s = 0;
        int shared = 0;
        for (uint32_t a = 0; a < qn; a++)
            for (uint32_t b = 0; b < m->n[slot]; b++)
                if (m->idx[slot][b] == qi[a]) {
                    s += w[a] * m->val[slot][b];
                    shared = 1;
                }
        if (shared) out[n++] = (ref_hit){p, s};
    }
    qsort(out, n, sizeof *out, cmp_ref);
    return n;
}

static const char *const slot_names[NSLOT] = {"plain", "with-idf"};

/* nq random queries of each slot, with and without a filter, against the reference. */
static void check_queries(qv_coll *c, uint64_t seed, int nq)
{
    static ref_hit ref[NPT];
    qv_hit hits[50];
    qv_filter *f;
    QV_CK(qv_filter_parse("{\"must\":[{\"key\":\"g\",\"match\":{\"value\":1}}]}", &f));
    uint64_t s = seed;
    for (int t = 0; t < nq; t++) {
        uint32_t qi[MAXNNZ], qn;
        float qv[MAXNNZ];
        random_sparse(&s, &qn, qi, qv);
        int slot = t % NSLOT, g = (t / 2) % 2 ? 1 : -1;
        uint32_t k = 1 + (uint32_t)(test_rand(&s) % 40);
        size_t nref = reference(slot, slot == 1, qi, qv, qn, g, ref), nh = 99;
        qv_sparse_params sp;
        qv_sparse_params_init(&sp, k);
        sp.name = slot_names[slot];
        sp.query = (qv_sparse_vector){qn, qi, qv};
        sp.filter = g >= 0 ? f : NULL;
        QV_CK(qv_sparse_search(c, &sp, hits, &nh));
        size_t want = nref < k ? nref : k;
        ck_assert_msg(nh == want, "query %d (slot %d, k %u): %zu hits, want %zu", t, slot, k, nh, want);
        for (size_t i = 0; i < nh; i++) {
            ck_assert_msg(fabs(hits[i].score - ref[i].s) <= 1e-4 * (1 + fabs(ref[i].s)),
                          "query %d rank %zu: score %g, want %g", t, i, hits[i].score, ref[i].s);
            /* ids must agree unless the reference has a near tie there */
            int tie = (i > 0 && fabs(ref[i].s - ref[i - 1].s) < 1e-5) || (i + 1 < nref && fabs(ref[i].s - ref[i + 1].s) < 1e-5);
            ck_assert_msg(tie || hits[i].id == ref[i].id, "query %d rank %zu: id %llu, want %llu", t, i,
                          (unsigned long long)hits[i].id, (unsigned long long)ref[i].id);
        }
    }
    qv_filter_free(f);
}

static void check_get(qv_coll *c)
{
    for (uint64_t p = 0; p < NPT; p += 7)
        for (int j = 0; j < NSLOT; j++) {
            uint32_t *idx = NULL, n = 99;
            float *val = NULL;
            if (!model[p].alive) {
                QV_CK_FAIL(qv_get_sparse(c, p, (size_t)j, &idx, &val, &n), QV_ENOTFOUND);
                continue;
            }
            QV_CK(qv_get_sparse(c, p, (size_t)j, &idx, &val, &n));
            ck_assert_uint_eq(n, model[p].n[j]);
            ck_assert(n ? idx && val : !idx && !val);
            for (uint32_t i = 0; i < n; i++) ck_assert(idx[i] == model[p].idx[j][i] && val[i] == model[p].val[j][i]);
            qv_free(idx);
            qv_free(val);
        }
}

static qv_coll *create(qv_db *db, const char *name)
{
    qv_sparse_config sc[NSLOT] = {{slot_names[0], 0}, {slot_names[1], 1}};
    qv_collection_config cfg = {0};
    qv_coll *c = NULL;
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, DIM, QV_METRIC_COSINE);
    cfg.payload_index = "{\"g\":\"integer\"}";
    cfg.vector_name = "";
    cfg.n_sparse = NSLOT;
    cfg.sparse = sc;
    QV_CK(qv_collection_create(db, name, &cfg, &c));
    return c;
}

START_TEST(test_sparse_matches_reference)
{
    uint64_t s = 99, ids[NPT];
    memset(model, 0, sizeof model);
    for (size_t p = 0; p < NPT; p++) {
        ids[p] = p;
        for (int j = 0; j < NSLOT; j++) random_sparse(&s, &model[p].n[j], model[p].idx[j], model[p].val[j]);
    }
    qv_db *db = open_db_nosync(tmp);
    qv_coll *c = create(db, "sp");
    upsert_model(c, ids, 250);
    upsert_model(c, ids + 250, NPT - 250);
    check_queries(c, 1, 40);
    /* replace 120 points: new sparse vectors (some none), then delete 60 */
    for (size_t p = 0; p < 120; p++)
        for (int j = 0; j < NSLOT; j++) random_sparse(&s, &model[p * 3 % NPT].n[j], model[p * 3 % NPT].idx[j], model[p * 3 % NPT].val[j]);
    uint64_t rep[120], del[60];
    for (size_t p = 0; p < 120; p++) rep[p] = p * 3 % NPT;
    upsert_model(c, rep, 120);
    /* a plain qv_upsert drops the sparse vectors of the points it replaces */
    float v[DIM] = {1, 0, 0, 0};
    uint64_t plain = 5;
    QV_CK(qv_upsert(c, 1, &plain, v, NULL));
    memset(model[5].n, 0, sizeof model[5].n);
    for (size_t p = 0; p < 60; p++) {
        del[p] = p * 5 + 1;
        model[del[p]].alive = 0;
    }
    size_t nd = 0;
    QV_CK(qv_delete(c, 60, del, &nd));
    ck_assert_uint_eq(nd, 60);
    model[5].alive = 1;
    check_queries(c, 2, 60);
    check_get(c);
    /* deleted points come back with new vectors in their freed internal ids */
    for (size_t p = 0; p < 10; p++)
        for (int j = 0; j < NSLOT; j++) random_sparse(&s, &model[del[p]].n[j], model[del[p]].idx[j], model[del[p]].val[j]);
    upsert_model(c, del, 10);
    check_queries(c, 3, 30);

    /* the config and the postings survive a reopen */
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
    db = open_db_nosync(tmp);
    QV_CK(qv_collection_open(db, "sp", &c));
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_uint_eq(info.config.n_sparse, NSLOT);
    ck_assert_str_eq(info.config.sparse[1].name, "with-idf");
    ck_assert(info.config.sparse[1].idf && !info.config.sparse[0].idf);
    ck_assert(info.config.vector_name && info.config.vector_name[0] == 0);
    check_queries(c, 4, 30);
    check_get(c);

    /* a backup restored under another name answers the same */
    char path[512];
    snprintf(path, sizeof path, "%s/sp.backup", tmp);
    QV_CK(qv_backup_create(db, "sp", path, NULL));
    qv_restore_options ro;
    qv_restore_options_init(&ro);
    ro.collection = "sp";
    ro.rename = "sp2";
    QV_CK(qv_backup_restore(db, path, &ro, NULL));
    qv_coll *c2;
    QV_CK(qv_collection_open(db, "sp2", &c2));
    check_queries(c2, 5, 30);
    check_get(c2);
    /* writes to one do not show in the other */
    uint64_t gone = 2;
    QV_CK(qv_delete(c2, 1, &gone, &nd));
    check_queries(c, 6, 10);
    qv_collection_close(c2);
    QV_CK(qv_collection_drop(db, "sp2"));
    check_queries(c, 7, 10);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
}
END_TEST

START_TEST(test_sparse_bad_input)
{
    qv_db *db = open_db_nosync(tmp);
    qv_coll *c = create(db, "bad");
    uint64_t id = 1;
    float v[DIM] = {1, 0, 0, 0};
    uint32_t unsorted[] = {3, 1}, dup[] = {2, 2}, ok[] = {1, 4};
    float vals[] = {0.5f, 0.25f}, nan2[] = {NAN, 1};
    qv_sparse_vector sv[NSLOT] = {{2, unsorted, vals}, {0, NULL, NULL}};
    QV_CK_FAIL(qv_upsert_sparse(c, 1, &id, v, NULL, sv), QV_EINVAL);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "strictly increasing"));
    sv[0] = (qv_sparse_vector){2, dup, vals};
    QV_CK_FAIL(qv_upsert_sparse(c, 1, &id, v, NULL, sv), QV_EINVAL);
    sv[0] = (qv_sparse_vector){2, ok, nan2};
    QV_CK_FAIL(qv_upsert_sparse(c, 1, &id, v, NULL, sv), QV_EINVAL);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "finite"));
    sv[0] = (qv_sparse_vector){2, NULL, vals};
    QV_CK_FAIL(qv_upsert_sparse(c, 1, &id, v, NULL, sv), QV_EINVAL);
    sv[0] = (qv_sparse_vector){QV_MAX_SPARSE_NNZ + 1, ok, vals};
    QV_CK_FAIL(qv_upsert_sparse(c, 1, &id, v, NULL, sv), QV_EINVAL);
    sv[0] = (qv_sparse_vector){2, ok, vals};
    QV_CK(qv_upsert_sparse(c, 1, &id, v, NULL, sv));

    qv_hit h[4];
    size_t nh;
    qv_sparse_params sp;
    qv_sparse_params_init(&sp, 4);
    sp.query = (qv_sparse_vector){2, ok, vals};
    QV_CK_FAIL(qv_sparse_search(c, &sp, h, &nh), QV_EINVAL);          /* no name */
    sp.name = "nope";
    QV_CK_FAIL(qv_sparse_search(c, &sp, h, &nh), QV_EINVAL);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "no sparse vector named 'nope'"));
    sp.name = "plain";
    sp.query = (qv_sparse_vector){2, unsorted, vals};
    QV_CK_FAIL(qv_sparse_search(c, &sp, h, &nh), QV_EINVAL);
    sp.query = (qv_sparse_vector){2, ok, vals};
    sp.k = 0;
    QV_CK_FAIL(qv_sparse_search(c, &sp, h, &nh), QV_EINVAL);
    sp.k = 4;
    QV_CK(qv_sparse_search(c, &sp, h, &nh));
    ck_assert(nh == 1 && h[0].id == 1 && fabsf(h[0].score - (0.25f + 0.0625f)) < 1e-6f);
    sp.query.n = 0;
    QV_CK(qv_sparse_search(c, &sp, h, &nh));
    ck_assert_uint_eq(nh, 0);
    uint32_t *ix;
    float *vx;
    uint32_t n;
    QV_CK_FAIL(qv_get_sparse(c, 1, NSLOT, &ix, &vx, &n), QV_EINVAL);

    /* a collection without sparse vectors */
    qv_collection_config cfg = {0};
    qv_coll *d;
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, DIM, QV_METRIC_IP);
    QV_CK(qv_collection_create(db, "dense", &cfg, &d));
    QV_CK_FAIL(qv_sparse_search(d, &sp, h, &nh), QV_EINVAL);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "has no sparse vectors"));
    qv_collection_close(d);
    /* bad configs */
    qv_sparse_config twice[2] = {{"x", 0}, {"x", 1}}, empty[1] = {{"", 0}}, clash[1] = {{"d", 0}};
    cfg.n_sparse = 2;
    cfg.sparse = twice;
    QV_CK_FAIL(qv_collection_create(db, "c1", &cfg, NULL), QV_EINVAL);
    cfg.n_sparse = 1;
    cfg.sparse = empty;
    QV_CK_FAIL(qv_collection_create(db, "c1", &cfg, NULL), QV_EINVAL);
    cfg.sparse = clash;
    cfg.vector_name = "d";
    QV_CK_FAIL(qv_collection_create(db, "c1", &cfg, NULL), QV_EINVAL);
    cfg.n_sparse = QV_MAX_SPARSE_VECTORS + 1;
    QV_CK_FAIL(qv_collection_create(db, "c1", &cfg, NULL), QV_EINVAL);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
}
END_TEST

Suite *qv_sparse_suite(void)
{
    Suite *s = suite_create("sparse");
    TCase *tc = tcase_create("sparse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sparse_matches_reference);
    tcase_add_test(tc, test_sparse_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
