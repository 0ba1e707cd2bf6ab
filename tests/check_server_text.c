/*
 * tests/check_server_text.c -- full-text and hybrid search over HTTP (issue 22): the
 * native /search/text and /search/hybrid endpoints against the library's answers on the
 * same documents, the text match filter on both APIs, and bad input (4xx, never 5xx).
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tests/test_http.h"
#include "tests/test_util.h"

static char *tmp;
static void setup(void) { tmp = make_tmpdir("qv-srvtext"); }
static void teardown(void)
{
    test_server_kill_all();
    rm_rf(tmp);
    free(tmp);
    tmp = NULL;
}

static json_t *call(int port, const char *method, const char *path, const char *body, int want)
{
    char *out = NULL;
    int st = test_http(port, method, path, NULL, body, 10000, &out);
    ck_assert_msg(st == want, "%s %s %s -> %d %s (want %d)", method, path, body ? body : "", st, out ? out : "", want);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_msg(j != NULL, "%s %s: not JSON: %s", method, path, out);
    free(out);
    return j;
}

static const char *const docs[] = {
    "Fast vector search engine in C", "Searching engines for full-text documents", "Moteur de recherche vectorielle",
    "music player for the terminal", "fonts package with many fonts", "search the web from the terminal"};

/* The ids of a {"hits":[...]} answer, in order, into ids; returns how many. */
static size_t hit_ids(json_t *j, uint64_t *ids, double *scores, size_t cap)
{
    json_t *hits = json_object_get(j, "hits"), *h;
    size_t i, n = 0;
    ck_assert(json_is_array(hits));
    json_array_foreach(hits, i, h) if (n < cap) {
        ids[n] = (uint64_t)json_integer_value(json_object_get(h, "id"));
        scores[n++] = json_number_value(json_object_get(h, "score"));
    }
    return n;
}

START_TEST(test_text_endpoints)
{
    test_server s;
    char body[4096], dbdir[512];
    size_t at = 0;
    /* the library's answers first, in a database of its own */
    snprintf(dbdir, sizeof dbdir, "%s/lib", tmp);
    qv_db *db = NULL;
    qv_coll *c = NULL;
    qv_collection_config cfg = {0};
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 2, QV_METRIC_L2);
    cfg.payload_index = "{\"body\":\"text\"}";
    QV_CK(qv_db_open(dbdir, NULL, &db));
    QV_CK(qv_collection_create(db, "t", &cfg, &c));
    at += (size_t)snprintf(body, sizeof body, "{\"points\":[");
    for (size_t i = 0; i < 6; i++) {
        char pl[256];
        uint64_t id = i + 1;
        float v[2] = {(float)i, 1};
        const char *p = pl;
        snprintf(pl, sizeof pl, "{\"body\":\"%s\"}", docs[i]);
        QV_CK(qv_upsert(c, 1, &id, v, &p));
        at += (size_t)snprintf(body + at, sizeof body - at, "%s{\"id\":%zu,\"vector\":[%zu,1],\"payload\":%s}", i ? "," : "",
                               i + 1, i, pl);
    }
    snprintf(body + at, sizeof body - at, "]}");
    qv_text_params tp;
    qv_hit want[10];
    size_t nwant = 0;
    qv_text_params_init(&tp, 10);
    tp.field = "body";
    tp.query = "terminal search engines";
    QV_CK(qv_text_search(c, &tp, want, &nwant));
    ck_assert_uint_eq(nwant, 4);
    qv_search_params sp;
    qv_fusion_params fp;
    qv_hit hw[3];
    size_t nhw = 0;
    float q[2] = {5, 1};
    qv_search_params_init(&sp, 3);
    qv_fusion_params_init(&fp, QV_FUSION_RRF, 3);
    QV_CK(qv_hybrid_search(c, q, &sp, &tp, &fp, NULL, hw, &nhw));
    qv_collection_close(c);
    QV_CK(qv_db_close(db));

    test_server_start(&s, tmp, 1, NULL);
    json_decref(call(s.port, "PUT", "/collections/t",
                     "{\"dim\":2,\"metric\":\"l2\",\"index\":{\"type\":\"flat\"},\"payload_index\":{\"body\":\"text\"}}", 201));
    json_decref(call(s.port, "PUT", "/collections/t/points", body, 200));
    uint64_t ids[10];
    double sc[10];
    json_t *j = call(s.port, "POST", "/collections/t/search/text", "{\"field\":\"body\",\"query\":\"terminal search engines\"}", 200);
    size_t n = hit_ids(j, ids, sc, 10);
    ck_assert_uint_eq(n, nwant);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(ids[i], want[i].id);
        ck_assert_double_eq_tol(sc[i], want[i].score, 1e-6 * fabs(want[i].score));
    }
    json_decref(j);
    j = call(s.port, "POST", "/collections/t/search/hybrid",
             "{\"vector\":[5,1],\"text\":{\"field\":\"body\",\"query\":\"terminal search engines\"},\"k\":3}", 200);
    n = hit_ids(j, ids, sc, 10);
    ck_assert_uint_eq(n, nhw);
    for (size_t i = 0; i < n; i++) ck_assert_uint_eq(ids[i], hw[i].id);
    json_decref(j);
    /* the text match filter, native and Qdrant */
    j = call(s.port, "POST", "/collections/t/search",
             "{\"vector\":[0,1],\"k\":5,\"filter\":{\"must\":[{\"key\":\"body\",\"match\":{\"text\":\"the terminal\"}}]}}", 200);
    n = hit_ids(j, ids, sc, 10);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(ids[0], 4);
    ck_assert_uint_eq(ids[1], 6);
    json_decref(j);
    char *out = NULL;
    int st = test_http(s.qport, "POST", "/collections/t/points/scroll", NULL,
                       "{\"filter\":{\"must\":[{\"key\":\"body\",\"match\":{\"text\":\"FONTS\"}}]}}", 10000, &out);
    ck_assert_msg(st == 200 && strstr(out, "\"id\":5") && !strstr(out, "\"id\":4"), "%d %s", st, out);
    free(out);
    /* bad input: 4xx with a message, never a 5xx */
    static const char *const bad[][2] = {
        {"/collections/t/search/text", "{\"field\":\"nosuch\",\"query\":\"x\"}"},
        {"/collections/t/search/text", "{\"field\":\"body\"}"},
        {"/collections/t/search/text", "{\"field\":\"body\",\"query\":[1]}"},
        {"/collections/t/search/text", "{\"field\":\"body\",\"query\":\"x\",\"k1\":-1}"},
        {"/collections/t/search/text", "{\"field\":\"body\",\"query\":\"x\",\"filter\":{\"must\":[{\"key\":\"body\",\"match\":{\"text\":1}}]}}"},
        {"/collections/t/search/hybrid", "{\"vector\":[1],\"text\":{\"field\":\"body\",\"query\":\"x\"}}"},
        {"/collections/t/search/hybrid", "{\"vector\":[1,2],\"text\":{\"field\":\"body\",\"query\":\"x\"},\"alpha\":2}"},
        {"/collections/t/search/hybrid", "{\"vector\":[1,2],\"text\":{\"query\":\"x\"}}"},
        {"/collections/t/search/hybrid", "{\"vector\":[1,2],\"text\":\"x\"}"},
        {"/collections/t/search/hybrid", "{\"text\":{\"field\":\"body\",\"query\":\"x\"}}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = NULL;
        st = test_http(s.port, "POST", bad[i][0], NULL, bad[i][1], 10000, &out);
        ck_assert_msg(st == 400 && strstr(out, "\"message\""), "%s %s -> %d %s", bad[i][0], bad[i][1], st, out);
        free(out);
    }
    ck_assert_int_eq(test_server_stop(&s), 0);
}
END_TEST

Suite *qv_server_text_suite(void)
{
    Suite *s = suite_create("server_text");
    TCase *tc = tcase_create("server_text");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_text_endpoints);
    suite_add_tcase(s, tc);
    return s;
}
