/*
 * tests/check_server_quant.c -- quantized collections through quiverd: the native API's
 * "index":{"quant":...} and search "rescore" / "oversampling"; the Qdrant API's
 * quantization_config (scalar int8, binary) and search params.quantization {ignore,
 * rescore, oversampling, explore}; bad values are 400s; the code kind survives a restart;
 * on_disk (vectors re-scored from storage) in both APIs; explore reaches a bit1 walk from
 * both APIs (recall against a double-precision brute force); the native PATCH changes the
 * codes of a collection that holds points.
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

static char *vec_json_dim(const float *v, size_t dim)
{
    char *s = malloc(dim * 20 + 4);
    size_t l = (size_t)sprintf(s, "[");
    for (size_t j = 0; j < dim; j++) l += (size_t)sprintf(s + l, "%s%.9g", j ? "," : "", (double)v[j]);
    sprintf(s + l, "]");
    return s;
}

static char *vec_json(const float *v)
{
    return vec_json_dim(v, DIM);
}

static void upsert_n(int port, const char *coll, const float *base, size_t n, size_t dim)
{
    char *body = malloc(n * (dim * 20 + 40) + 64), path[128];
    size_t len = (size_t)sprintf(body, "{\"points\":[");
    for (size_t i = 0; i < n; i++) {
        char *vj = vec_json_dim(base + i * dim, dim);
        len += (size_t)sprintf(body + len, "%s{\"id\":%zu,\"vector\":%s}", i ? "," : "", i, vj);
        free(vj);
    }
    sprintf(body + len, "]}");
    snprintf(path, sizeof path, "/collections/%s/points", coll);
    json_decref(req(port, "PUT", path, body, 200, NULL));
    free(body);
}

static void upsert(int port, const char *coll, const float *base)
{
    upsert_n(port, coll, base, N, DIM);
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

/* The end of a test: stop the server (it exits 0) and free what the test made. */
static void end_server_test(test_server *s, char *vj, float *base, char *dir)
{
    ck_assert_int_eq(test_server_stop(s), 0);
    free(vj);
    free(base);
    rm_rf(dir);
    free(dir);
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
    end_server_test(&s, vj, base, dir);
}
END_TEST

/* The first hit's score (and *id) of a native search of coll for vector vj, with rescore
 * as given ("" = the default). */
static double native_first(int port, const char *coll, const char *vj, const char *rescore, json_int_t *id)
{
    char path[96], body[512];
    snprintf(path, sizeof path, "/collections/%s/search", coll);
    snprintf(body, sizeof body, "{\"vector\":%s,\"k\":5%s}", vj, rescore);
    json_t *j = req(port, "POST", path, body, 200, NULL);
    double score = first_score(j, "hits", id);
    json_decref(j);
    return score;
}

/* PATCH /collections/{name} (native): the codes added, changed and dropped on a collection
 * that holds points, with m; bad bodies are 400s that change nothing; kept over a restart. */
START_TEST(test_native_update)
{
    char *dir = make_tmpdir("qv-srvu");
    test_server s;
    test_server_start(&s, dir, 1, NULL);
    float *base = random_vectors(N, DIM, 41);
    json_decref(req(s.port, "PUT", "/collections/u", "{\"dim\":8,\"index\":{\"type\":\"hnsw\"}}", 201, NULL));
    upsert(s.port, "u", base);
    char *vj = vec_json(base + 5 * DIM);
    json_int_t id;
    ck_assert_double_eq(native_first(s.port, "u", vj, ",\"rescore\":false", &id), 0.0);   /* float: exact */

    json_decref(req(s.port, "PATCH", "/collections/u", "{\"index\":{\"quant\":\"sq4\",\"m\":8}}", 200,
                    "\"quant\":\"sq4\""));
    json_decref(req(s.port, "GET", "/collections/u", NULL, 200, "\"m\":8"));
    ck_assert_double_ne(native_first(s.port, "u", vj, ",\"rescore\":false", &id), 0.0);   /* 4-bit estimates */
    ck_assert_double_eq(native_first(s.port, "u", vj, "", &id), 0.0);                      /* re-scored */
    ck_assert_int_eq(id, 5);

    static const char *const bad[] = {
        "{\"index\":{\"quant\":\"pq\"}}", "{\"index\":{\"quant\":3}}", "{\"index\":{\"type\":\"ivf\"}}",
        "{\"index\":{\"m\":1}}", "{\"index\":{\"m\":8},\"dim\":4}", "{}", "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        json_decref(req(s.port, "PATCH", "/collections/u", bad[i], 400, NULL));
    json_decref(req(s.port, "PATCH", "/collections/nope", "{\"index\":{\"quant\":\"sq8\"}}", 404, NULL));
    json_decref(req(s.port, "GET", "/collections/u", NULL, 200, "\"quant\":\"sq4\""));

    ck_assert_int_eq(test_server_stop(&s), 0);
    test_server_start(&s, dir, 1, NULL);
    json_decref(req(s.port, "GET", "/collections/u", NULL, 200, "\"quant\":\"sq4\""));
    json_decref(req(s.port, "PATCH", "/collections/u", "{\"index\":{\"quant\":\"none\"}}", 200, "\"quant\":\"none\""));
    ck_assert_double_eq(native_first(s.port, "u", vj, ",\"rescore\":false", &id), 0.0);   /* float again */
    ck_assert_int_eq(id, 5);
    end_server_test(&s, vj, base, dir);
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
    end_server_test(&s, vj, base, dir);
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
    end_server_test(&s, vj, base, dir);
}
END_TEST

/* explore (qv_search_params.explore) from the native search body and from the Qdrant
 * API's params.quantization (a Quiver extension). 2,000 x 64 uniform vectors, bit1 hnsw
 * M 16 efC 200, 40 queries at ef 16, recall@10 against a double-precision brute force,
 * measured 0.38 -> 0.98 at explore 1 (2026-12-06, every query changed): explore 1 must
 * find more, and change some answers, in both APIs; a batch that mixes explore 0 and 1 answers each search with its own value
 * (searches with equal parameters share one library call); sq8 takes it and ignores it;
 * out of 0..4, or not a number, is a 400 naming the field. */
enum { EN = 2000, ED = 64, EQ = 40, EK = 10, EEF = 16 };

/* A batch body: EQ searches of queries, explore per search (< 0: absent, else the value;
 * alternate: 0 and 1 by turns). */
static char *explore_batch(const float *queries, int qdrant, double explore, int alternate)
{
    char *body = malloc(EQ * (ED * 20 + 160) + 64);
    size_t len = (size_t)sprintf(body, "{\"searches\":[");
    for (size_t i = 0; i < EQ; i++) {
        char *vj = vec_json_dim(queries + i * ED, ED), ex[64] = "";
        double e = alternate ? (double)(i & 1) : explore;
        if (e >= 0 && qdrant) snprintf(ex, sizeof ex, ",\"quantization\":{\"explore\":%g}", e);
        else if (e >= 0) snprintf(ex, sizeof ex, ",\"explore\":%g", e);
        if (qdrant)
            len += (size_t)sprintf(body + len, "%s{\"vector\":%s,\"limit\":%d,\"params\":{\"hnsw_ef\":%d%s}}", i ? "," : "",
                                   vj, EK, EEF, ex);
        else
            len += (size_t)sprintf(body + len, "%s{\"vector\":%s,\"k\":%d,\"ef\":%d%s}", i ? "," : "", vj, EK, EEF, ex);
        free(vj);
    }
    sprintf(body + len, "]}");
    return body;
}

/* The ids of a batch search of coll (EQ rows of EK, UINT64_MAX where missing). */
static void explore_ids(int port, int qdrant, const char *coll, const float *queries, double explore, int alternate,
                        uint64_t *ids)
{
    char path[128], *body = explore_batch(queries, qdrant, explore, alternate);
    snprintf(path, sizeof path, qdrant ? "/collections/%s/points/search/batch" : "/collections/%s/search/batch", coll);
    json_t *j = req(port, "POST", path, body, 200, NULL);
    json_t *rows = json_object_get(j, qdrant ? "result" : "results");
    ck_assert_uint_eq(json_array_size(rows), EQ);
    for (size_t i = 0; i < EQ; i++) {
        json_t *row = json_array_get(rows, i);
        if (!qdrant) row = json_object_get(row, "hits");
        for (size_t r = 0; r < EK; r++) {
            json_t *h = json_array_get(row, r);
            ids[i * EK + r] = h ? (uint64_t)json_integer_value(json_object_get(h, "id")) : UINT64_MAX;
        }
    }
    json_decref(j);
    free(body);
}

static size_t differing_rows(const uint64_t *a, const uint64_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < EQ; i++) n += recall_at_k(a + i * EK, NULL, EK, b + i * EK, EK, 1, EK) < 1.0;
    return n;
}

START_TEST(test_explore)
{
    char *dir = make_tmpdir("qv-srvq");
    test_server s;
    test_server_start(&s, dir, 1, NULL);
    float *base = random_vectors(EN, ED, 41), *queries = random_vectors(EQ, ED, 42);
    uint64_t *truth = malloc(EQ * EK * sizeof *truth), *ids0 = malloc(EQ * EK * sizeof *ids0),
             *ids1 = malloc(EQ * EK * sizeof *ids1), *mixed = malloc(EQ * EK * sizeof *mixed);
    ck_assert(truth && ids0 && ids1 && mixed);
    ref_knn(base, EN, ED, queries, EQ, EK, QV_METRIC_L2, truth);
    json_decref(req(s.port, "PUT", "/collections/b",
                    "{\"dim\":64,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\",\"m\":16,\"ef_construction\":200,"
                    "\"quant\":\"bit1\"}}",
                    201, NULL));
    json_decref(req(s.port, "PUT", "/collections/s8",
                    "{\"dim\":64,\"metric\":\"l2\",\"index\":{\"type\":\"hnsw\",\"quant\":\"sq8\"}}", 201, NULL));
    upsert_n(s.port, "b", base, EN, ED);
    upsert_n(s.port, "s8", base, EN, ED);

    for (int qd = 0; qd < 2; qd++) {
        int port = qd ? s.qport : s.port;
        explore_ids(port, qd, "b", queries, -1, 0, ids0);
        explore_ids(port, qd, "b", queries, 1, 0, ids1);
        double r0 = recall_at_k(ids0, NULL, EK, truth, EK, EQ, EK), r1 = recall_at_k(ids1, NULL, EK, truth, EK, EQ, EK);
        printf("server %s bit1 ef %d: recall@10 %.4f, with explore 1 %.4f (%zu of %d queries differ)\n",
               qd ? "qdrant" : "native", EEF, r0, r1, differing_rows(ids0, ids1), EQ);
        ck_assert_msg(r1 >= r0 + 0.1, "%s: explore 1 recall %.4f, without %.4f", qd ? "qdrant" : "native", r1, r0);
        ck_assert_uint_gt(differing_rows(ids0, ids1), 0);
        /* explore 0 is off, as absent */
        explore_ids(port, qd, "b", queries, 0, 0, mixed);
        ck_assert_uint_eq(differing_rows(ids0, mixed), 0);
        /* mixed: search i with explore i & 1 */
        explore_ids(port, qd, "b", queries, 0, 1, mixed);
        for (size_t i = 0; i < EQ; i++)
            for (size_t r = 0; r < EK; r++) ck_assert_uint_eq(mixed[i * EK + r], ((i & 1) ? ids1 : ids0)[i * EK + r]);
        /* sq8: accepted, ignored */
        explore_ids(port, qd, "s8", queries, -1, 0, ids0);
        explore_ids(port, qd, "s8", queries, 2.5, 0, mixed);
        ck_assert_uint_eq(differing_rows(ids0, mixed), 0);
    }

    char *vj = vec_json_dim(queries, ED), *body = malloc(2 * ED * 20 + 256);   /* a batch of two */
    static const char *const bad[] = {"-0.5", "4.5", "1e300", "\"1\"", "true", "[1]", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sprintf(body, "{\"vector\":%s,\"explore\":%s}", vj, bad[i]);
        json_decref(req(s.port, "POST", "/collections/b/search", body, 400, "explore"));
        sprintf(body, "{\"searches\":[{\"vector\":%s},{\"vector\":%s,\"explore\":%s}]}", vj, vj, bad[i]);
        json_decref(req(s.port, "POST", "/collections/b/search/batch", body, 400, "explore"));
        sprintf(body, "{\"vector\":%s,\"params\":{\"quantization\":{\"explore\":%s}}}", vj, bad[i]);
        json_decref(req(s.qport, "POST", "/collections/b/points/search", body, 400, "explore"));
    }
    /* JSON has no NaN: not a number at all */
    sprintf(body, "{\"vector\":%s,\"explore\":NaN}", vj);
    json_decref(req(s.port, "POST", "/collections/b/search", body, 400, NULL));
    /* The native API refuses a misspelt field; Qdrant's skips fields it does not know. */
    sprintf(body, "{\"vector\":%s,\"explor\":1}", vj);
    json_decref(req(s.port, "POST", "/collections/b/search", body, 400, "unknown field 'explor'"));
    sprintf(body, "{\"vector\":%s,\"params\":{\"quantization\":{\"explor\":9}}}", vj);
    json_decref(req(s.qport, "POST", "/collections/b/points/search", body, 200, "\"result\""));
    /* a fraction and the ends of the range */
    static const char *const good[] = {"0", "0.25", "4", "4.0"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        sprintf(body, "{\"vector\":%s,\"k\":3,\"explore\":%s}", vj, good[i]);
        json_decref(req(s.port, "POST", "/collections/b/search", body, 200, "\"hits\""));
    }
    ck_assert_int_eq(test_server_stop(&s), 0);
    free(body);
    free(vj);
    free(truth);
    free(ids0);
    free(ids1);
    free(mixed);
    free(base);
    free(queries);
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
    tcase_add_test(tc, test_native_update);
    tcase_add_test(tc, test_qdrant_quantization);
    tcase_add_test(tc, test_on_disk);
    tcase_add_test(tc, test_explore);
    suite_add_tcase(s, tc);
    return s;
}
