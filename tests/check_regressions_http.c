/*
 * tests/check_regressions_http.c -- defects found by fuzzing quiverd (issue 25), checked
 * over HTTP on both APIs against a live server (2 worker threads).
 *
 * "regressions_http" suite:
 *   - tiny_cosine (bug 3): points and queries [1e-40, 0], [1e-30, 1e-30], [1e-20, 0] on a
 *     cosine collection. Before, the native search and search/batch answered 503
 *     "out of memory encoding the reply" and the Qdrant search 503; the points were stored
 *     unnormalized (scores 9.99995e-41, 1e-30 and 1.0000026 against [1, 0]). Now every
 *     search answers 200 with each score within 1e-6 of the true cosine, and a query whose
 *     components are all 0 in float answers 400.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tests/test_http.h"
#include "tests/test_util.h"

#define TIMEOUT_MS 60000

/* Send a request; check the status; return the parsed body (NULL unless JSON). */
static json_t *call(int port, const char *method, const char *path, const char *body, int want)
{
    char *out = NULL;
    int st = test_http(port, method, path, NULL, body, TIMEOUT_MS, &out);
    ck_assert_msg(st == want, "%s %s %s -> %d %s (want %d)", method, path, body ? body : "", st, out ? out : "", want);
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    return j;
}

static void call_ok(int port, const char *method, const char *path, const char *body, int want)
{
    json_decref(call(port, method, path, body, want));
}

/* The vectors of the points (ids 1..5) as floats, and the queries, as JSON text. */
static const char *const vec_text[5] = {"[1e-40,0]", "[1e-30,1e-30]", "[1e-20,0]", "[0,1]", "[1,1e-40]"};
static const double vec_val[5][2] = {{1e-40, 0}, {1e-30, 1e-30}, {1e-20, 0}, {0, 1}, {1, 1e-40}};
static const char *const q_text[4] = {"[1,0]", "[1e-40,0]", "[1e-30,1e-30]", "[1e-20,0]"};
static const double q_val[4][2] = {{1, 0}, {1e-40, 0}, {1e-30, 1e-30}, {1e-20, 0}};

static double true_cosine(const double *a, const double *b)
{
    float fa[2] = {(float)a[0], (float)a[1]}, fb[2] = {(float)b[0], (float)b[1]};
    return ref_cosine(fa, fb, 2);
}

/* hits: an array of {"id", "score"} objects answering query qi over all five points. */
static void check_hits(const json_t *hits, int qi, const char *what)
{
    ck_assert_msg(json_is_array(hits) && json_array_size(hits) == 5, "%s: query %s: hits %s", what, q_text[qi],
                  hits ? "not 5" : "missing");
    for (size_t i = 0; i < 5; i++) {
        json_t *h = json_array_get(hits, i);
        json_int_t id = json_integer_value(json_object_get(h, "id"));
        ck_assert(id >= 1 && id <= 5);
        double got = json_number_value(json_object_get(h, "score")), want = true_cosine(q_val[qi], vec_val[id - 1]);
        ck_assert_msg(json_is_number(json_object_get(h, "score")) && fabs(got - want) <= 1e-6,
                      "%s: query %s, point %s: score %.9g, cosine %.9g", what, q_text[qi], vec_text[id - 1], got, want);
    }
}

START_TEST(test_tiny_cosine)
{
    char *dir = make_tmpdir("qv-reghttp");
    test_server s;
    test_server_start(&s, dir, 1, NULL);
    char body[1024];
    size_t len = 0;

    /* native collection "cz", Qdrant collection "qz": the same points */
    call_ok(s.port, "PUT", "/collections/cz", "{\"dim\":2,\"metric\":\"cosine\"}", 201);
    call_ok(s.qport, "PUT", "/collections/qz", "{\"vectors\":{\"size\":2,\"distance\":\"Cosine\"}}", 200);
    len = (size_t)snprintf(body, sizeof body, "{\"points\":[");
    for (int i = 0; i < 5; i++)
        len += (size_t)snprintf(body + len, sizeof body - len, "%s{\"id\":%d,\"vector\":%s}", i ? "," : "", i + 1, vec_text[i]);
    snprintf(body + len, sizeof body - len, "]}");
    call_ok(s.port, "PUT", "/collections/cz/points", body, 200);
    call_ok(s.qport, "PUT", "/collections/qz/points?wait=true", body, 200);

    for (int qi = 0; qi < 4; qi++) {
        json_t *j;
        snprintf(body, sizeof body, "{\"vector\":%s,\"k\":5}", q_text[qi]);
        j = call(s.port, "POST", "/collections/cz/search", body, 200);
        check_hits(json_object_get(j, "hits"), qi, "native search");
        json_decref(j);
        snprintf(body, sizeof body, "{\"searches\":[{\"vector\":%s,\"k\":5},{\"vector\":%s,\"k\":5,\"filter\":null}]}",
                 q_text[qi], q_text[qi]);
        j = call(s.port, "POST", "/collections/cz/search/batch", body, 200);
        for (size_t r = 0; r < 2; r++)
            check_hits(json_object_get(json_array_get(json_object_get(j, "results"), r), "hits"), qi, "native batch");
        json_decref(j);
        snprintf(body, sizeof body, "{\"vector\":%s,\"limit\":5}", q_text[qi]);
        j = call(s.qport, "POST", "/collections/qz/points/search", body, 200);
        check_hits(json_object_get(j, "result"), qi, "qdrant search");
        json_decref(j);
        snprintf(body, sizeof body, "{\"searches\":[{\"vector\":%s,\"limit\":5}]}", q_text[qi]);
        j = call(s.qport, "POST", "/collections/qz/points/search/batch", body, 200);
        check_hits(json_array_get(json_object_get(j, "result"), 0), qi, "qdrant search batch");
        json_decref(j);
        snprintf(body, sizeof body, "{\"query\":%s,\"limit\":5}", q_text[qi]);
        j = call(s.qport, "POST", "/collections/qz/points/query", body, 200);
        check_hits(json_object_get(json_object_get(j, "result"), "points"), qi, "qdrant query");
        json_decref(j);
    }
    /* all components 0 once they are floats: no direction, a 400 on every path */
    call_ok(s.port, "POST", "/collections/cz/search", "{\"vector\":[1e-46,0],\"k\":5}", 400);
    call_ok(s.port, "POST", "/collections/cz/search/batch", "{\"searches\":[{\"vector\":[0,0],\"k\":5}]}", 400);
    call_ok(s.qport, "POST", "/collections/qz/points/search", "{\"vector\":[0,0],\"limit\":5}", 400);
    call_ok(s.qport, "POST", "/collections/qz/points/search", "{\"vector\":[1e-46,0],\"limit\":5}", 400);
    call_ok(s.port, "PUT", "/collections/cz/points", "{\"points\":[{\"id\":9,\"vector\":[1e-46,0]}]}", 400);
    ck_assert_int_eq(test_server_stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_regressions_http_suite(void)
{
    Suite *s = suite_create("regressions_http");
    TCase *tc = tcase_create("fuzz_findings");
    tcase_add_checked_fixture(tc, NULL, test_server_kill_all);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_tiny_cosine);
    suite_add_tcase(s, tc);
    return s;
}
