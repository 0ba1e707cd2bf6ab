/*
 * tests/check_server_quant.c -- quantized collections through quiverd: the native API's
 * "index":{"quant":...} and search "rescore" / "oversampling"; the Qdrant API's
 * quantization_config (scalar int8, binary) and search params.quantization {ignore,
 * rescore, oversampling}; bad values are 400s; the code kind survives a restart; on_disk
 * (vectors re-scored from storage) in both APIs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tests/test_http.h"
#include "tests/test_util.h"

enum { N = 600, DIM = 8 };

static void teardown(void)
{
    test_server_kill_all();
}

/* One request: the status must be want and the body contain has (may be NULL); the body
 * parsed (NULL when not JSON) is returned. */
static json_t *req(int port, const char *method, const char *path, const char *body, int want, const char *has)
{
    char *out = NULL;
    int st = test_http(port, method, path, NULL, body, 120000, &out);
    ck_assert_msg(st == want && (!has || strstr(out, has)), "%s %s %.200s -> %d %.400s (wanted %d with %s)", method,
                  path, body ? body : "", st, out, want, has ? has : "-");
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    return j;
}

static char *vec_json(const float *v)
{
    char *s = malloc(DIM * 20 + 4);
    size_t l = (size_t)sprintf(s, "[");
    for (int j = 0; j < DIM; j++) l += (size_t)sprintf(s + l, "%s%.9g", j ? "," : "", (double)v[j]);
    sprintf(s + l, "]");
    return s;
}

static void upsert(int port, const char *coll, const float *base)
{
    char *body = malloc(N * (DIM * 20 + 40) + 64), path[128];
    size_t len = (size_t)sprintf(body, "{\"points\":[");
    for (size_t i = 0; i < N; i++) {
        char *vj = vec_json(base + i * DIM);
        len += (size_t)sprintf(body + len, "%s{\"id\":%zu,\"vector\":%s}", i ? "," : "", i, vj);
        free(vj);
    }
    sprintf(body + len, "]}");
    snprintf(path, sizeof path, "/collections/%s/points", coll);
    json_decref(req(port, "PUT", path, body, 200, NULL));
    free(body);
}

/* The score of the first hit of a search for stored point 5 (searches[] field "hits" for
 * native, "result" for Qdrant). */
static double first_score(json_t *j, const char *field, json_int_t *id)
{
    json_t *h = json_array_get(json_object_get(j, field), 0);
    ck_assert_ptr_nonnull(h);
    *id = json_integer_value(json_object_get(h, "id"));
    return json_number_value(json_object_get(h, "score"));
}

START_TEST(test_native_quant)
{
    char *dir = make_tmpdir("qv-srvq");
    test_server s;
    test_server_start(&s, dir, 1, NULL);
    float *base = random_vectors(N, DIM, 31);
    json_decref(req(s.port, "PUT", "/collections/q", "{\"dim\":8,\"index\":{\"type\":\"hnsw\",\"quant\":\"sq4\"}}", 201,
                    NULL));
    json_decref(req(s.port, "PUT", "/collections/bad", "{\"dim\":8,\"index\":{\"quant\":\"pq\"}}", 400, "quant"));
    json_decref(req(s.port, "PUT", "/collections/bad", "{\"dim\":8,\"index\":{\"quant\":8}}", 400, "quant"));
    /* Flat and IVF indexes take codes too (an IVF collection starts as flat until trained). */
    json_decref(req(s.port, "PUT", "/collections/f", "{\"dim\":8,\"index\":{\"type\":\"flat\",\"quant\":\"sq8\"}}", 201,
                    NULL));
    json_decref(req(s.port, "PUT", "/collections/iv",
                    "{\"dim\":8,\"index\":{\"type\":\"ivf\",\"nlist\":4,\"quant\":\"bit1\"}}", 201, NULL));
    json_decref(req(s.port, "GET", "/collections/q", NULL, 200, "\"quant\":\"sq4\""));
    json_decref(req(s.port, "GET", "/collections/f", NULL, 200, "\"quant\":\"sq8\""));
    json_decref(req(s.port, "GET", "/collections/iv", NULL, 200, "\"quant\":\"bit1\""));
    upsert(s.port, "q", base);
    upsert(s.port, "f", base);
    upsert(s.port, "iv", base);

    char *vj = vec_json(base + 5 * DIM), body[512];
    json_int_t id;
    for (int c = 0; c < 2; c++) {
        char path[64];
        snprintf(path, sizeof path, "/collections/%s/search", c ? "iv" : "f");
        snprintf(body, sizeof body, "{\"vector\":%s,\"k\":5}", vj);
        json_t *jc = req(s.port, "POST", path, body, 200, NULL);
        ck_assert_double_eq(first_score(jc, "hits", &id), 0.0);
        ck_assert_int_eq(id, 5);
        json_decref(jc);
    }
    /* Re-scored: the stored point itself at distance 0, exactly. */
    snprintf(body, sizeof body, "{\"vector\":%s,\"k\":5}", vj);
    json_t *j = req(s.port, "POST", "/collections/q/search", body, 200, NULL);
    ck_assert_double_eq(first_score(j, "hits", &id), 0.0);
    ck_assert_int_eq(id, 5);
    json_decref(j);
    snprintf(body, sizeof body, "{\"vector\":%s,\"k\":5,\"rescore\":true,\"oversampling\":4.5}", vj);
    json_decref(req(s.port, "POST", "/collections/q/search", body, 200, NULL));
    /* Estimates: 4-bit codes do not give 0 for the point itself. */
    snprintf(body, sizeof body, "{\"vector\":%s,\"k\":5,\"rescore\":false}", vj);
    j = req(s.port, "POST", "/collections/q/search", body, 200, NULL);
    ck_assert_double_ne(first_score(j, "hits", &id), 0.0);
    json_decref(j);
    static const char *const bad[] = {"\"oversampling\":0.5", "\"oversampling\":101", "\"oversampling\":\"2\"",
                                      "\"rescore\":1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(body, sizeof body, "{\"vector\":%s,%s}", vj, bad[i]);
        json_decref(req(s.port, "POST", "/collections/q/search", body, 400, bad[i][1] == 'o' ? "oversampling" : "rescore"));
    }
    snprintf(body, sizeof body, "{\"searches\":[{\"vector\":%s,\"rescore\":false},{\"vector\":%s}]}", vj, vj);
    json_decref(req(s.port, "POST", "/collections/q/search/batch", body, 200, NULL));

    /* The kind persists across a restart. */
    ck_assert_int_eq(test_server_stop(&s), 0);
    test_server_start(&s, dir, 1, NULL);
    json_decref(req(s.port, "GET", "/collections/q", NULL, 200, "\"quant\":\"sq4\""));
    snprintf(body, sizeof body, "{\"vector\":%s,\"k\":5}", vj);
    j = req(s.port, "POST", "/collections/q/search", body, 200, NULL);
    ck_assert_double_eq(first_score(j, "hits", &id), 0.0);
    json_decref(j);
    ck_assert_int_eq(test_server_stop(&s), 0);
    free(vj);
    free(base);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_qdrant_quantization)
{
    char *dir = make_tmpdir("qv-srvq");
    test_server s;
    test_server_start(&s, dir, 1, NULL);
    float *base = random_vectors(N, DIM, 32);
    json_decref(req(s.qport, "PUT", "/collections/sc",
                    "{\"vectors\":{\"size\":8,\"distance\":\"Euclid\"},\"quantization_config\":{\"scalar\":"
                    "{\"type\":\"int8\",\"quantile\":0.99,\"always_ram\":true}}}",
                    200, "true"));
    json_decref(req(s.qport, "PUT", "/collections/bi",
                    "{\"vectors\":{\"size\":8,\"distance\":\"Euclid\"},\"quantization_config\":{\"binary\":"
                    "{\"always_ram\":true}}}",
                    200, "true"));
    static const char *const bad[][2] = {
        {"{\"product\":{\"compression\":\"x16\"}}", "product"},
        {"{\"scalar\":{\"type\":\"int4\"}}", "int8"},
        {"{\"scalar\":{\"type\":\"int8\",\"quantile\":2}}", "quantile"},
        {"{\"scalar\":{\"type\":\"int8\"},\"binary\":{}}", "quantization_config"},
        {"\"int8\"", "quantization_config"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char body[300];
        snprintf(body, sizeof body, "{\"vectors\":{\"size\":8,\"distance\":\"Euclid\"},\"quantization_config\":%s}",
                 bad[i][0]);
        json_decref(req(s.qport, "PUT", "/collections/bad", body, 400, bad[i][1]));
    }
    /* m 0 (no graph): a flat index that scans the codes, then re-scores. */
    json_decref(req(s.qport, "PUT", "/collections/fb",
                    "{\"vectors\":{\"size\":8,\"distance\":\"Euclid\"},\"hnsw_config\":{\"m\":0},"
                    "\"quantization_config\":{\"binary\":{}}}",
                    200, "true"));
    json_decref(req(s.qport, "GET", "/collections/fb", NULL, 200, "\"quantization_config\":{\"binary\""));
    json_decref(req(s.qport, "GET", "/collections/sc", NULL, 200, "\"quantization_config\":{\"scalar\""));
    json_decref(req(s.qport, "GET", "/collections/bi", NULL, 200, "\"quantization_config\":{\"binary\""));
    upsert(s.port, "sc", base);
    upsert(s.port, "bi", base);
    upsert(s.port, "fb", base);

    char *vj = vec_json(base + 5 * DIM), body[512];
    json_int_t id;
    const char *paths[] = {"/collections/sc/points/search", "/collections/bi/points/search",
                           "/collections/fb/points/search"};
    for (int c = 0; c < 3; c++) {
        /* ignore (every beam candidate re-scored), rescore on with oversampling: exact 0. */
        const char *exact_ones[] = {"{\"ignore\":true}", "{\"rescore\":true,\"oversampling\":3}", "null"};
        for (int e = 0; e < 3; e++) {
            snprintf(body, sizeof body, "{\"vector\":%s,\"limit\":5,\"params\":{\"quantization\":%s}}", vj, exact_ones[e]);
            json_t *j = req(s.qport, "POST", paths[c], body, 200, NULL);
            ck_assert_double_eq(first_score(j, "result", &id), 0.0);
            ck_assert_int_eq(id, 5);
            json_decref(j);
        }
        snprintf(body, sizeof body, "{\"vector\":%s,\"limit\":5,\"params\":{\"quantization\":{\"rescore\":false}}}", vj);
        json_decref(req(s.qport, "POST", paths[c], body, 200, "\"result\""));
        const char *bad_q[] = {"{\"oversampling\":0.5}", "{\"rescore\":\"yes\"}", "[]", "{\"ignore\":1}"};
        for (int b = 0; b < 4; b++) {
            snprintf(body, sizeof body, "{\"vector\":%s,\"params\":{\"quantization\":%s}}", vj, bad_q[b]);
            json_decref(req(s.qport, "POST", paths[c], body, 400, "quantization"));
        }
    }
    ck_assert_int_eq(test_server_stop(&s), 0);
    test_server_start(&s, dir, 1, NULL);
    json_decref(req(s.qport, "GET", "/collections/bi", NULL, 200, "\"quantization_config\":{\"binary\""));
    ck_assert_int_eq(test_server_stop(&s), 0);
    free(vj);
    free(base);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* on_disk (vectors re-scored from storage): the native create body's "on_disk" and the
 * Qdrant API's "vectors":{"on_disk":true}; both show it in the collection info, keep it
 * across a restart and answer exactly (cosine too: its stored unit vectors, and the
 * vector given back as given); a non-boolean, or an index that cannot read its vectors
 * from storage (float hnsw, flat), is a 400. */
START_TEST(test_on_disk)
{
    char *dir = make_tmpdir("qv-srvq");
    test_server s;
    test_server_start(&s, dir, 1, NULL);
    float *base = random_vectors(N, DIM, 33);
    json_decref(req(s.port, "PUT", "/collections/nd", "{\"dim\":8,\"on_disk\":true,\"index\":{\"quant\":\"sq8\"}}", 201,
                    "\"on_disk\":true"));
    json_decref(req(s.port, "PUT", "/collections/nf", "{\"dim\":8,\"index\":{\"quant\":\"sq8\"}}", 201,
                    "\"on_disk\":false"));
    json_decref(req(s.qport, "PUT", "/collections/qd",
                    "{\"vectors\":{\"size\":8,\"distance\":\"Dot\",\"on_disk\":true},\"quantization_config\":{\"scalar\":"
                    "{\"type\":\"int8\"}}}",
                    200, "true"));
    json_decref(req(s.qport, "GET", "/collections/qd", NULL, 200, "\"on_disk\":true"));
    json_decref(req(s.port, "PUT", "/collections/nc",
                    "{\"dim\":8,\"on_disk\":true,\"metric\":\"cosine\",\"index\":{\"quant\":\"sq8\"}}", 201,
                    "\"on_disk\":true"));
    json_decref(req(s.qport, "PUT", "/collections/qc",
                    "{\"vectors\":{\"size\":8,\"distance\":\"Cosine\",\"on_disk\":true},\"quantization_config\":"
                    "{\"binary\":{}}}",
                    200, "true"));
    static const char *const bad_native[] = {
        "{\"dim\":8,\"on_disk\":\"yes\",\"index\":{\"quant\":\"sq8\"}}",
        "{\"dim\":8,\"on_disk\":1,\"index\":{\"quant\":\"sq8\"}}",
        "{\"dim\":8,\"on_disk\":true}",
        "{\"dim\":8,\"on_disk\":true,\"metric\":\"cosine\",\"index\":{\"type\":\"hnsw\"}}",
        "{\"dim\":8,\"on_disk\":true,\"index\":{\"type\":\"flat\",\"quant\":\"sq8\"}}",
    };
    for (size_t i = 0; i < sizeof bad_native / sizeof *bad_native; i++)
        json_decref(req(s.port, "PUT", "/collections/bad", bad_native[i], 400, "on_disk"));
    static const char *const bad_qdrant[] = {
        "{\"vectors\":{\"size\":8,\"distance\":\"Euclid\",\"on_disk\":\"true\"}}",
        "{\"vectors\":{\"size\":8,\"distance\":\"Euclid\",\"on_disk\":true}}",
        "{\"vectors\":{\"size\":8,\"distance\":\"Cosine\",\"on_disk\":true}}",
    };
    for (size_t i = 0; i < sizeof bad_qdrant / sizeof *bad_qdrant; i++)
        json_decref(req(s.qport, "PUT", "/collections/bad", bad_qdrant[i], 400, "on_disk"));
    json_decref(req(s.port, "GET", "/collections/bad", NULL, 404, NULL));
    upsert(s.port, "nd", base);
    upsert(s.port, "qd", base);
    for (size_t i = 0; i < N * DIM; i++) base[i] *= 40.0f;      /* not unit length */
    upsert(s.port, "nc", base);
    upsert(s.port, "qc", base);
    ck_assert_int_eq(test_server_stop(&s), 0);
    test_server_start(&s, dir, 1, NULL);          /* reopened: reads its vectors from LMDB */
    json_decref(req(s.port, "GET", "/collections/nd", NULL, 200, "\"on_disk\":true"));
    json_decref(req(s.port, "GET", "/collections/nf", NULL, 200, "\"on_disk\":false"));
    json_decref(req(s.qport, "GET", "/collections/qd", NULL, 200, "\"on_disk\":true"));
    json_decref(req(s.qport, "GET", "/collections/qc", NULL, 200, "\"on_disk\":true"));
    float *orig = random_vectors(N, DIM, 33);
    char *vj = vec_json(orig + 5 * DIM), body[512];
    json_int_t id;
    snprintf(body, sizeof body, "{\"vector\":%s,\"k\":5}", vj);
    json_t *j = req(s.port, "POST", "/collections/nd/search", body, 200, NULL);
    ck_assert_double_eq(first_score(j, "hits", &id), 0.0);
    ck_assert_int_eq(id, 5);
    json_decref(j);
    j = req(s.port, "POST", "/collections/nc/search", body, 200, NULL);   /* same direction, 1/40 the norm */
    ck_assert_double_eq_tol(first_score(j, "hits", &id), 1.0, 1e-5);
    ck_assert_int_eq(id, 5);
    json_decref(j);
    snprintf(body, sizeof body, "{\"vector\":%s,\"limit\":5}", vj);
    j = req(s.qport, "POST", "/collections/qc/points/search", body, 200, NULL);
    ck_assert_double_eq_tol(first_score(j, "result", &id), 1.0, 1e-5);
    ck_assert_int_eq(id, 5);
    json_decref(j);
    j = req(s.port, "GET", "/collections/nc/points/5", NULL, 200, NULL);   /* the vector as given */
    json_t *got = json_object_get(j, "vector");
    ck_assert_uint_eq(json_array_size(got), DIM);
    for (size_t d = 0; d < DIM; d++)
        ck_assert_double_eq_tol(json_number_value(json_array_get(got, d)), base[5 * DIM + d],
                                2.5e-7 * fabs(base[5 * DIM + d]));
    json_decref(j);
    free(orig);
    ck_assert_int_eq(test_server_stop(&s), 0);
    free(vj);
    free(base);
    rm_rf(dir);
    free(dir);
}
END_TEST

extern Suite *qv_server_quant_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_server_quant_suite(void)
{
    Suite *s = suite_create("server_quant");
    TCase *tc = tcase_create("quant");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_native_quant);
    tcase_add_test(tc, test_qdrant_quantization);
    tcase_add_test(tc, test_on_disk);
    suite_add_tcase(s, tc);
    return s;
}
