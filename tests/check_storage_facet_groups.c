/*
 * tests/check_storage_facet_groups.c -- qv_update_vectors, qv_collection_update,
 * qv_facet and qv_search_groups, each checked against a reference computed here.
 *
 * "facet_groups" suite:
 *   - update_vectors: the vector changes (qv_get and an exact search find the new one),
 *     the payload stays, an unknown id fails the whole call with nothing changed;
 *   - collection_update: new m / ef_construction are stored (info, and after a reopen),
 *     the rebuilt index still finds every point; bad values and flat collections refused;
 *   - facet: counts per value against counting the payloads here, with and without a
 *     filter, arrays counted once per value, limit; an unindexed field is QV_EINVAL;
 *   - groups: with an exact search, the groups against grouping the brute-force ranking
 *     here (order of groups, members and scores).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quiver.h"
#include "tests/test_util.h"

#define DIM 8
#define N 600

typedef struct {
    char *dir;
    qv_db *db;
    qv_coll *c;
    float *vecs;
    uint64_t ids[N];
} fixture;

static const char *langs[] = {"en", "de", "fr", "it", "es"};

/* point i: lang langs[i % 5] (i % 13 == 0: none), year 2000 + i % 7, tags ["t<i%3>", "all"] */
static void open_fixture(fixture *f, qv_index_kind kind)
{
    qv_collection_config cfg = {0};
    char **pl = calloc(N, sizeof *pl);
    f->dir = make_tmpdir("qv-facet");
    qv_index_params_init(&cfg.index, kind, DIM, QV_METRIC_L2);
    cfg.payload_index = "{\"lang\":\"keyword\",\"year\":\"integer\",\"tags\":\"keyword\"}";
    QV_CK(qv_db_open(f->dir, NULL, &f->db));
    QV_CK(qv_collection_create(f->db, "c", &cfg, &f->c));
    f->vecs = random_vectors(N, DIM, 2424);
    for (size_t i = 0; i < N; i++) {
        f->ids[i] = 1000 + i;
        pl[i] = malloc(128);
        if (i % 13 == 0) snprintf(pl[i], 128, "{\"year\":%zu,\"tags\":[\"t%zu\",\"all\"]}", 2000 + i % 7, i % 3);
        else snprintf(pl[i], 128, "{\"lang\":\"%s\",\"year\":%zu,\"tags\":[\"t%zu\",\"all\"]}", langs[i % 5], 2000 + i % 7, i % 3);
    }
    QV_CK(qv_upsert(f->c, N, f->ids, f->vecs, (const char *const *)pl));
    for (size_t i = 0; i < N; i++) free(pl[i]);
    free(pl);
}

static void close_fixture(fixture *f)
{
    QV_CK(qv_db_close(f->db));
    rm_rf(f->dir);
    free(f->dir);
    free(f->vecs);
}

START_TEST(test_update_vectors)
{
    fixture f;
    open_fixture(&f, QV_INDEX_HNSW);
    float nv[2 * DIM], got[DIM];
    uint64_t ids[2] = {1005, 1100};
    for (size_t j = 0; j < 2 * DIM; j++) nv[j] = 10.0f + (float)j;
    QV_CK(qv_update_vectors(f.c, 2, ids, nv));
    char *payload = NULL;
    QV_CK(qv_get(f.c, 1005, got, &payload));
    for (size_t j = 0; j < DIM; j++) ck_assert_float_eq(got[j], nv[j]);
    ck_assert_ptr_nonnull(payload);
    ck_assert_msg(strstr(payload, "\"lang\":\"en\"") && strstr(payload, "\"year\":2005"), "payload kept: %s", payload);
    qv_free(payload);
    /* the index holds the new vector: a search for it finds the point first at distance 0 */
    qv_search_params sp;
    qv_hit hits[3];
    size_t nh = 0;
    qv_search_params_init(&sp, 3);
    QV_CK(qv_search(f.c, nv + DIM, &sp, hits, &nh));
    ck_assert_uint_ge(nh, 1);
    ck_assert_uint_eq(hits[0].id, 1100);
    ck_assert_float_eq_tol(hits[0].score, 0, 1e-6);
    /* the payload index still finds it by its payload */
    qv_filter *flt = NULL;
    QV_CK(qv_filter_parse("{\"must\":[{\"key\":\"lang\",\"match\":\"en\"}]}", &flt));
    sp.filter = flt;
    QV_CK(qv_search(f.c, nv + DIM, &sp, hits, &nh));
    ck_assert_uint_eq(hits[0].id, 1100);          /* 1100 - 1000 = 100: lang en */
    qv_filter_free(flt);
    /* all or none: an unknown id fails the call, the first point keeps its vector */
    uint64_t bad[2] = {1005, 99};
    float other[2 * DIM] = {0};
    QV_CK_FAIL(qv_update_vectors(f.c, 2, bad, other), QV_ENOTFOUND);
    ck_assert_msg(strstr(qv_last_error(), "99") != NULL, "%s", qv_last_error());
    QV_CK(qv_get(f.c, 1005, got, NULL));
    ck_assert_float_eq(got[0], nv[0]);
    /* bad vectors */
    float nan_v[DIM] = {NAN};
    QV_CK_FAIL(qv_update_vectors(f.c, 1, ids, nan_v), QV_EINVAL);
    qv_collection_info info;
    QV_CK(qv_collection_get_info(f.c, &info));
    ck_assert_uint_eq(info.count, N);
    close_fixture(&f);
}
END_TEST

START_TEST(test_collection_update)
{
    fixture f;
    open_fixture(&f, QV_INDEX_HNSW);
    qv_collection_changes ch = {.m = 8, .ef_construction = 64};
    QV_CK(qv_collection_update(f.c, &ch));
    qv_collection_info info;
    QV_CK(qv_collection_get_info(f.c, &info));
    ck_assert_uint_eq(info.config.index.m, 8);
    ck_assert_uint_eq(info.config.index.ef_construction, 64);
    /* every point is still found: its own vector is its nearest point */
    qv_search_params sp;
    qv_hit hit;
    size_t nh = 0, found = 0;
    qv_search_params_init(&sp, 1);
    for (size_t i = 0; i < N; i++) {
        QV_CK(qv_search(f.c, f.vecs + i * DIM, &sp, &hit, &nh));
        found += nh == 1 && hit.id == f.ids[i];
    }
    ck_assert_uint_ge(found, N * 99 / 100);
    qv_collection_changes bad = {.m = 1};
    QV_CK_FAIL(qv_collection_update(f.c, &bad), QV_EINVAL);
    bad = (qv_collection_changes){.ef_construction = QV_MAX_EF + 1};
    QV_CK_FAIL(qv_collection_update(f.c, &bad), QV_EINVAL);
    /* durable: reopen */
    QV_CK(qv_db_close(f.db));
    QV_CK(qv_db_open(f.dir, NULL, &f.db));
    QV_CK(qv_collection_open(f.db, "c", &f.c));
    QV_CK(qv_collection_get_info(f.c, &info));
    ck_assert_uint_eq(info.config.index.m, 8);
    ck_assert_uint_eq(info.count, N);
    QV_CK(qv_search(f.c, f.vecs, &sp, &hit, &nh));
    ck_assert_uint_eq(hit.id, f.ids[0]);
    qv_collection_close(f.c);
    close_fixture(&f);

    open_fixture(&f, QV_INDEX_FLAT);
    ch = (qv_collection_changes){.m = 8};
    QV_CK_FAIL(qv_collection_update(f.c, &ch), QV_EINVAL);
    close_fixture(&f);
}
END_TEST

/* Reference count of value v (string, or NULL with an integer year) among points passing
 * pass (NULL: all) */
static uint64_t ref_count(const char *field, const char *sval, long ival, int (*pass)(size_t))
{
    uint64_t n = 0;
    for (size_t i = 0; i < N; i++) {
        if (pass && !pass(i)) continue;
        if (strcmp(field, "lang") == 0) n += i % 13 != 0 && strcmp(langs[i % 5], sval) == 0;
        else if (strcmp(field, "year") == 0) n += (long)(2000 + i % 7) == ival;
        else {
            char t[8];
            snprintf(t, sizeof t, "t%zu", i % 3);
            n += strcmp(sval, "all") == 0 || strcmp(sval, t) == 0;
        }
    }
    return n;
}

static int year_ge_2004(size_t i) { return 2000 + i % 7 >= 2004; }

START_TEST(test_facet)
{
    fixture f;
    open_fixture(&f, QV_INDEX_HNSW);
    qv_facet_hit *h = NULL;
    size_t n = 0;
    QV_CK(qv_facet(f.c, "lang", NULL, 0, &h, &n));
    ck_assert_uint_eq(n, 5);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(h[i].type, 's');
        ck_assert_uint_eq(h[i].count, ref_count("lang", h[i].s, 0, NULL));
        if (i) ck_assert_uint_ge(h[i - 1].count, h[i].count);
    }
    qv_facet_free(h, n);

    qv_filter *flt = NULL;
    QV_CK(qv_filter_parse("{\"must\":[{\"key\":\"year\",\"range\":{\"gte\":2004}}]}", &flt));
    QV_CK(qv_facet(f.c, "lang", flt, 2, &h, &n));
    ck_assert_uint_eq(n, 2);
    uint64_t best = 0;
    for (size_t l = 0; l < 5; l++) {
        uint64_t c = ref_count("lang", langs[l], 0, year_ge_2004);
        if (c > best) best = c;
    }
    ck_assert_uint_eq(h[0].count, best);
    ck_assert_uint_eq(h[0].count, ref_count("lang", h[0].s, 0, year_ge_2004));
    ck_assert_uint_eq(h[1].count, ref_count("lang", h[1].s, 0, year_ge_2004));
    qv_facet_free(h, n);

    QV_CK(qv_facet(f.c, "year", flt, 100, &h, &n));
    ck_assert_uint_eq(n, 3);                       /* 2004, 2005, 2006 */
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(h[i].type, 'i');
        ck_assert_uint_eq(h[i].count, ref_count("year", NULL, (long)h[i].i, year_ge_2004));
    }
    qv_facet_free(h, n);
    qv_filter_free(flt);

    QV_CK(qv_facet(f.c, "tags", NULL, 10, &h, &n));   /* arrays: once per value */
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(h[0].s, "all");
    ck_assert_uint_eq(h[0].count, N);
    for (size_t i = 1; i < n; i++) ck_assert_uint_eq(h[i].count, ref_count("tags", h[i].s, 0, NULL));
    qv_facet_free(h, n);

    /* deleted points are not counted */
    uint64_t del[2] = {1001, 1006};               /* lang de, de */
    QV_CK(qv_delete(f.c, 2, del, NULL));
    QV_CK(qv_facet(f.c, "lang", NULL, 10, &h, &n));
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].s, "de") == 0) ck_assert_uint_eq(h[i].count, ref_count("lang", "de", 0, NULL) - 2);
    qv_facet_free(h, n);

    QV_CK_FAIL(qv_facet(f.c, "nosuch", NULL, 10, &h, &n), QV_EINVAL);
    ck_assert_msg(strstr(qv_last_error(), "Index required") != NULL, "%s", qv_last_error());
    ck_assert_ptr_null(h);
    close_fixture(&f);
}
END_TEST

START_TEST(test_groups)
{
    fixture f;
    open_fixture(&f, QV_INDEX_HNSW);
    float *q = random_vectors(5, DIM, 77);
    for (size_t qi = 0; qi < 5; qi++) {
        qv_search_params sp;
        qv_group *g = NULL;
        size_t ng = 0;
        const uint32_t group_size = 3, limit = 4;
        qv_search_params_init(&sp, 0);
        sp.exact = 1;
        QV_CK(qv_search_groups(f.c, q + qi * DIM, &sp, "lang", group_size, limit, &g, &ng));
        /* reference: rank every point by exact distance, group by lang in that order */
        size_t order[N];
        double d[N];
        for (size_t i = 0; i < N; i++) {
            order[i] = i;
            d[i] = ref_l2sq(q + qi * DIM, f.vecs + i * DIM, DIM);
        }
        for (size_t i = 1; i < N; i++)            /* insertion sort: N is small */
            for (size_t j = i; j > 0 && d[order[j]] < d[order[j - 1]]; j--) {
                size_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        const char *rg[5];
        size_t rn[5] = {0}, nrg = 0;
        uint64_t rh[5][3];
        for (size_t r = 0; r < N; r++) {
            size_t i = order[r];
            if (i % 13 == 0) continue;
            size_t gi = 0;
            while (gi < nrg && strcmp(rg[gi], langs[i % 5]) != 0) gi++;
            if (gi == nrg) {
                if (nrg == limit) continue;
                rg[nrg++] = langs[i % 5];
            }
            if (rn[gi] < group_size) rh[gi][rn[gi]++] = f.ids[i];
        }
        ck_assert_uint_eq(ng, limit);
        for (size_t gi = 0; gi < ng; gi++) {
            ck_assert_int_eq(g[gi].type, 's');
            ck_assert_str_eq(g[gi].s, rg[gi]);
            ck_assert_uint_eq(g[gi].n, group_size);
            for (size_t j = 0; j < g[gi].n; j++) {
                ck_assert_uint_eq(g[gi].hits[j].id, rh[gi][j]);
                ck_assert_float_eq_tol(g[gi].hits[j].score, d[g[gi].hits[j].id - 1000], 1e-4);
            }
        }
        qv_groups_free(g, ng);
        /* integer field, array field */
        QV_CK(qv_search_groups(f.c, q + qi * DIM, &sp, "year", 2, 7, &g, &ng));
        ck_assert_uint_eq(ng, 7);
        ck_assert_int_eq(g[0].type, 'i');
        ck_assert_uint_eq(g[0].hits[0].id, f.ids[order[0]]);
        qv_groups_free(g, ng);
        QV_CK(qv_search_groups(f.c, q + qi * DIM, &sp, "tags", 5, 10, &g, &ng));
        ck_assert_uint_eq(ng, 4);                  /* all, t0, t1, t2 */
        qv_groups_free(g, ng);
    }
    qv_search_params sp;
    qv_group *g = NULL;
    size_t ng = 0;
    qv_search_params_init(&sp, 0);
    QV_CK_FAIL(qv_search_groups(f.c, q, &sp, "lang", 0, 3, &g, &ng), QV_EINVAL);
    QV_CK_FAIL(qv_search_groups(f.c, q, &sp, "lang", 3, QV_MAX_K + 1, &g, &ng), QV_EINVAL);
    QV_CK(qv_search_groups(f.c, q, &sp, "nosuch", 3, 3, &g, &ng));
    ck_assert_uint_eq(ng, 0);
    free(q);
    close_fixture(&f);
}
END_TEST

Suite *qv_facet_groups_suite(void)
{
    Suite *s = suite_create("facet_groups");
    TCase *tc = tcase_create("facet_groups");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_update_vectors);
    tcase_add_test(tc, test_collection_update);
    tcase_add_test(tc, test_facet);
    tcase_add_test(tc, test_groups);
    suite_add_tcase(s, tc);
    return s;
}
