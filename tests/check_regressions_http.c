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
 *   - reserved_uuid_key: "__qdrant_uuid" given as a payload key on an integer id was
 *     accepted, hidden from reads and still seen by filters (a count by it returned 2).
 *     The Qdrant API now refuses it as a payload key (upsert, set, overwrite) and in
 *     filters; the native API treats it as an ordinary key.
 *   - dotted_keys: "a.b" matched a top-level key named "a.b" before the path a -> b; now
 *     it is always the path (as in Qdrant) on both APIs, and "\"a.b\"" the literal key.
 *   - big_integers: payload integers must fit int64; 2^63-1 and -2^63 come back digit for
 *     digit, 2^63 is a 400 naming it on both APIs (README says why).
 *   - empty_nested_filter: {"must":[{"must":[]}]} passed everything on the native API and
 *     was refused (400) by the Qdrant API; both now parse it with the one library parser.
 *   - invalid_utf8: a Qdrant filter or with_payload holding bytes that are not UTF-8 was
 *     answered 503 "out of memory"; now 400 on both APIs, with a bounded, valid message.
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

/* Count of collection c's points passing filter (JSON) over the Qdrant API. */
static json_int_t qcount(int qport, const char *coll, const char *filter, int want_status)
{
    char path[128], body[512];
    snprintf(path, sizeof path, "/collections/%s/points/count", coll);
    snprintf(body, sizeof body, "{\"filter\":%s,\"exact\":true}", filter);
    json_t *j = call(qport, "POST", path, body, want_status);
    json_int_t n = json_integer_value(json_object_get(json_object_get(j, "result"), "count"));
    json_decref(j);
    return want_status == 200 ? n : -1;
}

/* Ids of the native search of coll with filter, as a sorted string "1,2". */
static void nsearch_ids(int port, const char *coll, const char *filter, char *out, size_t len)
{
    char path[128], body[512];
    snprintf(path, sizeof path, "/collections/%s/search", coll);
    snprintf(body, sizeof body, "{\"vector\":[1,0],\"k\":10,\"filter\":%s}", filter);
    json_t *j = call(port, "POST", path, body, 200), *hits = json_object_get(j, "hits");
    int have[16] = {0};
    for (size_t i = 0; i < json_array_size(hits); i++) {
        json_int_t id = json_integer_value(json_object_get(json_array_get(hits, i), "id"));
        if (id >= 0 && id < 16) have[id] = 1;
    }
    json_decref(j);
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < 16; i++)
        if (have[i]) n += (size_t)snprintf(out + n, len - n, "%s%d", n ? "," : "", i);
}

START_TEST(test_reserved_uuid_key)
{
    char *dir = make_tmpdir("qv-reghttp");
    test_server s;
    test_server_start(&s, dir, 1, NULL);
    call_ok(s.qport, "PUT", "/collections/u", "{\"vectors\":{\"size\":2,\"distance\":\"Dot\"}}", 200);
    call_ok(s.qport, "PUT", "/collections/u/points?wait=true",
            "{\"points\":[{\"id\":5,\"vector\":[1,0],\"payload\":{\"__qdrant_uuid\":\"x\"}}]}", 400);
    call_ok(s.qport, "PUT", "/collections/u/points?wait=true",
            "{\"points\":[{\"id\":5,\"vector\":[1,0],\"payload\":{\"a\":1}},"
            "{\"id\":\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\",\"vector\":[0,1]}]}", 200);
    call_ok(s.qport, "POST", "/collections/u/points/payload?wait=true",
            "{\"payload\":{\"__qdrant_uuid\":\"x\"},\"points\":[5]}", 400);
    call_ok(s.qport, "PUT", "/collections/u/points/payload?wait=true",
            "{\"payload\":{\"__qdrant_uuid\":\"x\"},\"points\":[5]}", 400);
    ck_assert_int_eq(qcount(s.qport, "u", "{\"must\":[{\"key\":\"__qdrant_uuid\",\"match\":{\"value\":\"x\"}}]}", 400), -1);
    ck_assert_int_eq(qcount(s.qport, "u", "{\"must_not\":[{\"is_empty\":{\"key\":\"__qdrant_uuid\"}}]}", 400), -1);
    /* deleting or clearing payloads keeps a UUID point's UUID */
    call_ok(s.qport, "POST", "/collections/u/points/payload/clear?wait=true",
            "{\"points\":[\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\"]}", 200);
    call_ok(s.qport, "POST", "/collections/u/points/payload/delete?wait=true",
            "{\"keys\":[\"__qdrant_uuid\"],\"points\":[\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\"]}", 200);
    json_t *j = call(s.qport, "GET", "/collections/u/points/6f1c0a2e-7d4b-4c1e-9a55-0123456789ab", NULL, 200);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "result"), "id")),
                     "6f1c0a2e-7d4b-4c1e-9a55-0123456789ab");
    json_decref(j);
    /* the native API: an ordinary key */
    call_ok(s.port, "PUT", "/collections/u/points", "{\"points\":[{\"id\":7,\"vector\":[1,1],\"payload\":{\"__qdrant_uuid\":\"y\"}}]}", 200);
    j = call(s.port, "GET", "/collections/u/points/7", NULL, 200);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "payload"), "__qdrant_uuid")), "y");
    json_decref(j);
    ck_assert_int_eq(test_server_stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_dotted_keys)
{
    char *dir = make_tmpdir("qv-reghttp");
    test_server s;
    char ids[64];
    test_server_start(&s, dir, 1, NULL);
    call_ok(s.port, "PUT", "/collections/d", "{\"dim\":2,\"metric\":\"l2\"}", 201);
    call_ok(s.port, "PUT", "/collections/d/points",
            "{\"points\":[{\"id\":1,\"vector\":[1,0],\"payload\":{\"a\":{\"b\":1}}},"
            "{\"id\":2,\"vector\":[1,0],\"payload\":{\"a.b\":1}},"
            "{\"id\":3,\"vector\":[1,0],\"payload\":{\"a.b\":1,\"a\":{\"b\":2}}}]}", 200);
    const char *path_f = "{\"must\":[{\"key\":\"a.b\",\"match\":{\"value\":1}}]}";
    const char *literal_f = "{\"must\":[{\"key\":\"\\\"a.b\\\"\",\"match\":{\"value\":1}}]}";
    nsearch_ids(s.port, "d", path_f, ids, sizeof ids);
    ck_assert_str_eq(ids, "1");
    nsearch_ids(s.port, "d", literal_f, ids, sizeof ids);
    ck_assert_str_eq(ids, "2,3");
    ck_assert_int_eq(qcount(s.qport, "d", path_f, 200), 1);
    ck_assert_int_eq(qcount(s.qport, "d", literal_f, 200), 2);
    /* indexed, the same answers */
    call_ok(s.port, "PUT", "/collections/d/index/a.b", "{\"type\":\"integer\"}", 201);
    nsearch_ids(s.port, "d", path_f, ids, sizeof ids);
    ck_assert_str_eq(ids, "1");
    /* delete payload keys are paths too */
    call_ok(s.qport, "POST", "/collections/d/points/payload/delete?wait=true", "{\"keys\":[\"a.b\"],\"points\":[3]}", 200);
    json_t *j = call(s.port, "GET", "/collections/d/points/3", NULL, 200);
    char *pl = json_dumps(json_object_get(j, "payload"), JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(pl, "{\"a\":{},\"a.b\":1}");
    free(pl);
    json_decref(j);
    call_ok(s.port, "POST", "/collections/d/search", "{\"vector\":[1,0],\"filter\":{\"must\":[{\"key\":\"a..b\",\"match\":1}]}}", 400);
    ck_assert_int_eq(test_server_stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_big_integers)
{
    char *dir = make_tmpdir("qv-reghttp");
    test_server s;
    test_server_start(&s, dir, 1, NULL);
    call_ok(s.port, "PUT", "/collections/b", "{\"dim\":2,\"metric\":\"l2\"}", 201);
    call_ok(s.port, "PUT", "/collections/b/points",
            "{\"points\":[{\"id\":1,\"vector\":[1,0],\"payload\":{\"n\":9223372036854775807,\"m\":-9223372036854775808}}]}", 200);
    char *out = NULL;
    ck_assert_int_eq(test_http(s.port, "GET", "/collections/b/points/1", NULL, NULL, TIMEOUT_MS, &out), 200);
    ck_assert_msg(strstr(out, "\"payload\":{\"n\":9223372036854775807,\"m\":-9223372036854775808}"), "%s", out);
    free(out);
    ck_assert_int_eq(test_http(s.qport, "GET", "/collections/b/points/1", NULL, NULL, TIMEOUT_MS, &out), 200);
    ck_assert_msg(strstr(out, "\"n\":9223372036854775807"), "%s", out);
    free(out);
    const char *big = "{\"points\":[{\"id\":2,\"vector\":[1,0],\"payload\":{\"n\":9223372036854775808}}]}";
    ck_assert_int_eq(test_http(s.port, "PUT", "/collections/b/points", NULL, big, TIMEOUT_MS, &out), 400);
    ck_assert_msg(strstr(out, "too big integer") && strstr(out, "9223372036854775808"), "%s", out);
    free(out);
    ck_assert_int_eq(test_http(s.qport, "PUT", "/collections/b/points?wait=true", NULL, big, TIMEOUT_MS, &out), 400);
    ck_assert_msg(strstr(out, "too big integer"), "%s", out);
    free(out);
    ck_assert_int_eq(test_server_stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_empty_nested_filter)
{
    char *dir = make_tmpdir("qv-reghttp");
    test_server s;
    char ids[64];
    test_server_start(&s, dir, 1, NULL);
    call_ok(s.port, "PUT", "/collections/e", "{\"dim\":2,\"metric\":\"l2\"}", 201);
    call_ok(s.port, "PUT", "/collections/e/points",
            "{\"points\":[{\"id\":1,\"vector\":[1,0],\"payload\":{\"a\":1}},{\"id\":2,\"vector\":[0,1]}]}", 200);
    const char *forms[] = {"{\"must\":[{\"must\":[]}]}", "{\"must\":[{\"must\":[]}],\"should\":null}",
                           "{\"must\":{\"should\":[]}}", "{\"must_not\":[{\"must\":[{\"must\":[]}]}],\"should\":[]}"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        int none = i == 3;                          /* must_not of a pass-all: nothing */
        nsearch_ids(s.port, "e", forms[i], ids, sizeof ids);
        ck_assert_msg(strcmp(ids, none ? "" : "1,2") == 0, "native %s: %s", forms[i], ids);
        ck_assert_int_eq(qcount(s.qport, "e", forms[i], 200), none ? 0 : 2);
        char body[256];
        snprintf(body, sizeof body, "{\"vector\":[1,0],\"limit\":5,\"filter\":%s}", forms[i]);
        json_t *j = call(s.qport, "POST", "/collections/e/points/search", body, 200);
        ck_assert_uint_eq(json_array_size(json_object_get(j, "result")), none ? 0 : 2);
        json_decref(j);
    }
    ck_assert_int_eq(test_server_stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* A Qdrant body with a string that is not UTF-8 where jansson reads it (a filter, a
 * with_payload selector) was answered 503 "out of memory" (found by make fuzz): now 400,
 * the body being malformed, with an error that is itself valid JSON, on both APIs. */
START_TEST(test_invalid_utf8)
{
    char *dir = make_tmpdir("qv-reghttp");
    test_server s;
    test_server_start(&s, dir, 1, NULL);
    call_ok(s.port, "PUT", "/collections/u", "{\"dim\":2,\"metric\":\"l2\"}", 201);
    static char big[8300];
    int n = sprintf(big, "{\"limit\":2,\"with_payload\":true,\"filter\":\"");
    memset(big + n, 'a', 8000);
    big[n + 4000] = '\xff';
    strcpy(big + n + 8000, "\"}");
    const char *bodies[] = {big, "{\"filter\":\"a\xff\"}", "{\"with_payload\":[\"a\xc3\"]}",
                            "{\"filter\":{\"must\":[{\"key\":\"\xed\xa0\x80\",\"match\":{\"value\":1}}]}}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_t *j = call(s.qport, "POST", "/collections/u/points/scroll", bodies[i], 400);
        const char *msg = json_string_value(json_object_get(json_object_get(j, "status"), "error"));
        ck_assert_msg(msg && strstr(msg, "UTF-8") && strlen(msg) < 600, "%s", msg ? msg : "no error");
        json_decref(j);
    }
    json_decref(call(s.port, "POST", "/collections/u/search", "{\"vector\":[1,2],\"filter\":{\"must\":[{\"key\":\"\xff\"}]}}", 400));
    call_ok(s.qport, "POST", "/collections/u/points/scroll", "{\"filter\":{\"must\":[{\"key\":\"\xc3\xa9\",\"match\":{\"value\":\"\xe2\x82\xac\"}}]}}", 200);
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
    tcase_add_test(tc, test_reserved_uuid_key);
    tcase_add_test(tc, test_dotted_keys);
    tcase_add_test(tc, test_big_integers);
    tcase_add_test(tc, test_empty_nested_filter);
    tcase_add_test(tc, test_invalid_utf8);
    suite_add_tcase(s, tc);
    return s;
}
