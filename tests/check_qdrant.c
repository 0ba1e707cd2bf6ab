/*
 * tests/check_qdrant.c -- the Qdrant-compatible API of quiverd (--qdrant-listen).
 *
 * "qdrant" suite:
 *   - node: starts quiverd with both listeners and an API key file and runs
 *     tests/qdrant/test.mjs, which drives it through the official Qdrant JS client and
 *     checks the answers against brute force and the native API (skipped, with a message,
 *     when node or tests/qdrant/node_modules is missing: `npm ci --prefix tests/qdrant`);
 *   - node_features: tests/qdrant/features.mjs, the same way: aliases (and a re-index
 *     through an alias switch under a stream of searches), updateVectors, deleteVectors,
 *     updateCollection, facet, search/groups and query/groups against references;
 *   - node_hybrid: tests/qdrant/hybrid.mjs, the same way: prefetch with query
 *     {"fusion":"rrf"} against an RRF reference, and its refusals (dbsf, sparse queries on a
 *     collection without sparse vectors); sparse.mjs: LangChain's hybrid and sparse calls;
 *   - aliases_http: alias endpoints on both APIs with access, bad bodies, name clashes
 *     and a restart;
 *   - durable_uuid: UUID ids survive a restart (their mapping lives in LMDB), with the
 *     tiny blocking HTTP client of test_http.c, so that it needs nothing but quiverd;
 *   - errors: Qdrant-style error envelopes, 401 without a key, 501 for what is unsupported,
 *     prefetch + rrf (and dbsf, sparse queries refused),
 *     collection info without invented values, mmr queries (qv_mmr);
 *   - keys: one API key precedence on both listeners;
 *   - exact: params.exact (and the native "exact") is exact for hnsw and ivf.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/test_http.h"
#include "tests/test_util.h"

#define KEY "qdrant-test-key"

typedef test_server qserver;

static void teardown(void)
{
    test_server_kill_all();
}

/* Start quiverd on dir with both listeners and key file keys. */
static void start(qserver *s, const char *dir, const char *keys)
{
    test_server_start(s, dir, 1, (const char *const[]){"--api-key-file", keys, NULL});
}

static int stop(qserver *s)
{
    return test_server_stop(s);
}

/* One request (headers: extra lines, each ending in \r\n, or NULL); *status and the body
 * (malloc'd) returned. */
static char *http_h(int port, const char *method, const char *path, const char *headers, const char *body, int *status)
{
    char *out = NULL;
    *status = test_http(port, method, path, headers, body, 120000, &out);
    ck_assert_msg(*status, "no HTTP answer to %s %s", method, path);
    return out;
}

static char *http(int port, const char *method, const char *path, const char *key, const char *body, int *status)
{
    char h[300] = "";
    if (key) snprintf(h, sizeof h, "api-key: %s\r\n", key);
    return http_h(port, method, path, h, body, status);
}

/* Expect status and a body containing want. */
static void expect(int port, const char *method, const char *path, const char *key, const char *body, int want_status,
                   const char *want)
{
    int st = 0;
    char *b = http(port, method, path, key, body, &st);
    ck_assert_msg(st == want_status && strstr(b, want), "%s %s -> %d %s (wanted %d with %s)", method, path, st, b,
                  want_status, want);
    free(b);
}

static char *write_keys(const char *dir)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/keys", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s rw\nreadonly-key ro\n", KEY);
    fclose(f);
    return path;
}

/* Run a node script of tests/qdrant against a fresh quiverd with both listeners. */
static void run_node(const char *script)
{
    if (system("node --version >/dev/null 2>&1") != 0) {
        test_skip(TEST_SKIP_MISSING, "qdrant: node not found: %s", script);
        return;
    }
    if (access("tests/qdrant/node_modules/@qdrant/js-client-rest/package.json", R_OK) != 0) {
        test_skip(TEST_SKIP_MISSING, "qdrant: tests/qdrant/node_modules missing (npm ci --prefix tests/qdrant): %s", script);
        return;
    }
    char *dir = make_tmpdir("qv-qdrant");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    qserver s;
    start(&s, data, write_keys(dir));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "node tests/qdrant/%s %d %d %s", script, s.qport, s.port, KEY);
    int rc = system(cmd);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s failed (status %d)", cmd, rc);
    ck_assert_int_eq(stop(&s), 0);
    rm_rf(dir);
    free(dir);
}

START_TEST(test_node_client)
{
    run_node("test.mjs");
}
END_TEST

/* aliases (and the switch under searches), updateVectors, updateCollection, facet, groups */
START_TEST(test_node_features)
{
    run_node("features.mjs");
}
END_TEST

/* prefetch + {"fusion":"rrf"} (LangChain's hybrid calls) against an RRF reference */
START_TEST(test_node_hybrid)
{
    run_node("hybrid.mjs");
}
END_TEST

/* sparse vectors: langchain-qdrant's HYBRID, SPARSE and DENSE calls against references */
START_TEST(test_node_sparse)
{
    run_node("sparse.mjs");
}
END_TEST

START_TEST(test_durable_uuid)
{
    char *dir = make_tmpdir("qv-qdrant");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    const char *keys = write_keys(dir);
    const char *u = "6f1c0a2e-7d4b-4c1e-9a55-0123456789ab";
    qserver s;
    start(&s, data, keys);
    expect(s.qport, "PUT", "/collections/d", KEY, "{\"vectors\":{\"size\":2,\"distance\":\"Dot\"}}", 200, "\"result\":true");
    expect(s.qport, "PUT", "/collections/d/points?wait=true", KEY,
           "{\"points\":[{\"id\":\"6F1C0A2E-7D4B-4C1E-9A55-0123456789AB\",\"vector\":[1,2],"
           "\"payload\":{\"a\":1,\"ts\":1732694400.123,\"p\":0.1}},"
           "{\"id\":7,\"vector\":[2,1]}]}", 200, "\"status\":\"completed\"");
    ck_assert_int_eq(stop(&s), 0);
    start(&s, data, keys);
    char path[128];
    snprintf(path, sizeof path, "/collections/d/points/%s", u);
    expect(s.qport, "GET", path, KEY, NULL, 200, "\"id\":\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\"");
    /* payload numbers come back with every digit (replies once cut them to 9) */
    expect(s.qport, "GET", path, KEY, NULL, 200, "\"payload\":{\"a\":1,\"ts\":1732694400.123,\"p\":0.1}");
    expect(s.qport, "POST", "/collections/d/points/search", KEY, "{\"vector\":[0,1],\"limit\":1,\"with_payload\":true}",
           200, "\"ts\":1732694400.123,");
    expect(s.qport, "POST", "/collections/d/points/search", KEY, "{\"vector\":[1,0],\"limit\":2}", 200,
           "[{\"id\":7,\"version\":0,\"score\":2.0");
    expect(s.qport, "POST", "/collections/d/points/search", KEY, "{\"vector\":[0,1],\"limit\":1}", 200,
           "\"id\":\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\"");
    expect(s.qport, "POST", "/collections/d/points/count", KEY,
           "{\"filter\":{\"must\":[{\"has_id\":[\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\"]}]}}", 200, "\"count\":1");
    /* the same UUID again replaces the point, it does not add one */
    expect(s.qport, "PUT", "/collections/d/points", KEY,
           "{\"points\":[{\"id\":\"6f1c0a2e7d4b4c1e9a550123456789ab\",\"vector\":[0,1]}]}", 200, "completed");
    expect(s.qport, "POST", "/collections/d/points/count", KEY, "{}", 200, "\"count\":2");
    expect(s.qport, "POST", "/collections/d/points/delete", KEY, "{\"points\":[\"6f1c0a2e-7d4b-4c1e-9a55-0123456789ab\"]}", 200, "completed");
    expect(s.qport, "GET", path, KEY, NULL, 404, "\"status\":{\"error\":");
    ck_assert_int_eq(stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* Aliases over HTTP, both APIs: access (read-only and collection-limited keys may not
 * change aliases; a limited key reads its collection through an alias), bad bodies,
 * name clashes, and durability across a restart. */
START_TEST(test_aliases_http)
{
    char *dir = make_tmpdir("qv-qdrant");
    char data[600], keys[600];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(keys, sizeof keys, "%s/keys", dir);
    FILE *f = fopen(keys, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s rw\nreadonly-key ro\nlimited-key rw a\n", KEY);
    fclose(f);
    const char *mk = "{\"actions\":[{\"create_alias\":{\"collection_name\":\"a\",\"alias_name\":\"al\"}}]}";
    qserver s;
    start(&s, data, keys);
    expect(s.qport, "PUT", "/collections/a", KEY, "{\"vectors\":{\"size\":2,\"distance\":\"Dot\"}}", 200, "true");
    expect(s.port, "POST", "/aliases", "readonly-key", mk, 403, "read-only");
    expect(s.qport, "POST", "/collections/aliases", "limited-key", mk, 403, "cannot change aliases");
    expect(s.port, "POST", "/aliases", KEY, mk, 200, "\"applied\":1");
    expect(s.port, "GET", "/collections/al", KEY, NULL, 200, "\"name\":\"a\"");
    expect(s.qport, "GET", "/collections/al", "limited-key", NULL, 200, "\"points_count\":0");
    expect(s.port, "GET", "/collections/a/aliases", KEY, NULL, 200, "{\"aliases\":[{\"alias_name\":\"al\",\"collection_name\":\"a\"}]}");
    expect(s.port, "POST", "/aliases", KEY, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"a\"}}]}", 400, "alias_name");
    expect(s.port, "POST", "/aliases", KEY, "{\"actions\":{}}", 400, "must be an array");
    expect(s.port, "POST", "/aliases", KEY, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"a\",\"alias_name\":\"b c\"}}]}", 400, "names are");
    expect(s.port, "POST", "/aliases", KEY, "{\"actions\":[{\"delete_alias\":{\"alias_name\":\"al\"},\"rename_alias\":{\"old_alias_name\":\"al\",\"new_alias_name\":\"x\"}}]}", 400, "one of");
    expect(s.port, "POST", "/aliases", KEY, "{\"actions\":[{\"delete_alias\":{\"alias_name\":\"nope\"}}]}", 404, "nope");
    expect(s.port, "PUT", "/collections/al", KEY, "{\"dim\":2}", 409, "alias");
    expect(s.qport, "POST", "/collections/aliases", KEY, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"a\",\"alias_name\":\"a\"}}]}", 409, "is a collection");
    expect(s.qport, "POST", "/collections/al/points/search", KEY, "{\"vector\":[1,2],\"limit\":1}", 200, "\"result\":[]");
    expect(s.qport, "POST", "/collections/nope/points/search", KEY, "{\"vector\":[1,2],\"limit\":1}", 404, "doesn't exist");
    ck_assert_int_eq(stop(&s), 0);
    start(&s, data, keys);                         /* durable */
    expect(s.qport, "GET", "/aliases", KEY, NULL, 200, "{\"alias_name\":\"al\",\"collection_name\":\"a\"}");
    expect(s.qport, "GET", "/collections/al/exists", KEY, NULL, 200, "\"exists\":true");
    expect(s.qport, "DELETE", "/collections/a", KEY, NULL, 200, "true");
    expect(s.qport, "GET", "/aliases", KEY, NULL, 200, "\"aliases\":[]");
    ck_assert_int_eq(stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_errors)
{
    char *dir = make_tmpdir("qv-qdrant");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    qserver s;
    start(&s, data, write_keys(dir));
    expect(s.qport, "GET", "/", NULL, NULL, 200, "\"version\":");
    expect(s.qport, "GET", "/collections", NULL, NULL, 401, "\"status\":{\"error\":\"Unauthorized");
    expect(s.qport, "GET", "/collections", "wrong", NULL, 401, "\"time\":");
    expect(s.qport, "GET", "/collections", "readonly-key", NULL, 200, "\"result\":{\"collections\":[]},\"status\":\"ok\"");
    expect(s.qport, "PUT", "/collections/e", "readonly-key", "{\"vectors\":{\"size\":2,\"distance\":\"Dot\"}}", 403, "read-only");
    expect(s.qport, "PUT", "/collections/e", KEY, "{\"vectors\":{\"v\":{\"size\":2,\"distance\":\"Dot\"},\"w\":{\"size\":2,\"distance\":\"Dot\"}}}", 400, "one dense vector");
    expect(s.qport, "PUT", "/collections/e", KEY, "{\"vectors\":{\"size\":2,\"distance\":\"Manhattan\"}}", 400, "Manhattan");
    expect(s.qport, "PUT", "/collections/e", KEY, "{\"vectors\":{\"size\":2,\"distance\":\"Euclid\"}}", 200, "true");
    expect(s.qport, "PUT", "/collections/e", KEY, "{\"vectors\":{\"size\":2,\"distance\":\"Euclid\"}}", 409, "already exists");
    expect(s.qport, "GET", "/collections/e/exists", KEY, NULL, 200, "{\"exists\":true}");
    expect(s.qport, "GET", "/collections/nope/exists", KEY, NULL, 200, "{\"exists\":false}");
    expect(s.qport, "GET", "/collections/nope", KEY, NULL, 404, "doesn't exist");
    /* collection info: what quiverd knows, nothing made up (issue 17) */
    int st = 0;
    char *info = http(s.qport, "GET", "/collections/e", KEY, NULL, &st);
    ck_assert_int_eq(st, 200);
    static const char *const invented[] = {"\"status\":\"green\"", "optimizer_status", "wal_capacity_mb",
                                           "full_scan_threshold", "segments_count", "deleted_threshold"};
    for (size_t i = 0; i < sizeof invented / sizeof invented[0]; i++)
        ck_assert_msg(!strstr(info, invented[i]), "collection info shows %s: %s", invented[i], info);
    ck_assert_msg(strstr(info, "\"points_count\":0") && strstr(info, "\"distance\":\"Euclid\""), "%s", info);
    free(info);
    /* methods: one quiverd does not implement, and one no route takes */
    expect(s.qport, "FOO", "/collections", KEY, NULL, 501, "\"status\":{\"error\":\"Not implemented");
    expect(s.qport, "TRACE", "/collections", KEY, NULL, 405, "not allowed");
    expect(s.qport, "PUT", "/collections/e/points", KEY, "{\"points\":[{\"id\":-1,\"vector\":[1,2]}]}", 400, "unsigned");
    expect(s.qport, "PUT", "/collections/e/points", KEY, "{\"points\":[{\"id\":\"not-a-uuid\",\"vector\":[1,2]}]}", 400, "UUID");
    expect(s.qport, "PUT", "/collections/e/points", KEY, "{\"points\":[{\"id\":1,\"vector\":[1,2,3]}]}", 400, "dimension");
    expect(s.qport, "PUT", "/collections/e/points", KEY, "{\"points\":[{\"id\":1,\"vector\":{\"v\":[1,2]}}]}", 400, "Not existing vector name error: v");
    expect(s.qport, "PUT", "/collections/e/points", KEY, "{\"points\":[{\"id\":1,\"vector\":[1,2]},{\"id\":1,\"vector\":[3,4]}]}", 200, "completed");
    expect(s.qport, "GET", "/collections/e/points/1", KEY, NULL, 200, "\"vector\":[3.0,4.0]");
    expect(s.qport, "POST", "/collections/e/points/search", KEY, "{\"vector\":[3,4],\"filter\":{\"must\":[{\"key\":\"t\",\"match\":{\"phrase\":\"a\"}}]}}", 400, "full-text");
    expect(s.qport, "POST", "/collections/e/points/search", KEY, "{\"vector\":[3,4],\"filter\":{\"should\":[{\"has_id\":[\"x\"]}]}}", 400, "UUID");
    expect(s.qport, "POST", "/collections/e/points/search", KEY, "{\"vector\":[3,4],\"filter\":{\"should\":[{\"has_id\":[2,1]}]}}", 200, "{\"id\":1,");
    /* prefetch + rrf fuses (one point: 1/(60+1)); dbsf and sparse queries are refused */
    expect(s.qport, "POST", "/collections/e/points/query", KEY, "{\"prefetch\":[{\"query\":[1,2]}],\"query\":{\"fusion\":\"rrf\"}}", 200, "\"score\":0.01639");
    expect(s.qport, "POST", "/collections/e/points/query", KEY, "{\"prefetch\":[{\"query\":[1,2]}],\"query\":{\"fusion\":\"dbsf\"}}", 400, "dbsf");
    expect(s.qport, "POST", "/collections/e/points/query", KEY, "{\"prefetch\":[{\"query\":{\"indices\":[1],\"values\":[1]}}],\"query\":{\"fusion\":\"rrf\"}}", 400, "sparse");
    expect(s.qport, "POST", "/collections/e/points/query", KEY, "{\"query\":[3,4],\"using\":\"img\"}", 400, "Not existing vector name error: img");
    expect(s.qport, "POST", "/collections/e/points/search", KEY, "{\"vector\":[3,4],\"limit\":1}", 200, "\"score\":0.0");
    /* Regression (found by make fuzz): a query without a vector, and an empty batch, searched
     * nothing and overran a 1-byte allocation (heap-buffer-overflow under ASan). */
    expect(s.qport, "POST", "/collections/e/points/query", KEY, "{\"limit\":1}", 200, "\"points\":[{\"id\":1");
    expect(s.qport, "POST", "/collections/e/points/query/batch", KEY, "{\"searches\":[]}", 200, "\"result\":[]");
    expect(s.qport, "POST", "/collections/e/points/search/batch", KEY, "{\"searches\":[]}", 200, "\"result\":[]");
    /* mmr (qv_mmr): relevance alone keeps the search's order; at diversity 0.5 the second
     * point is the one least like the first (3), not the next closest (2) */
    expect(s.qport, "PUT", "/collections/m", KEY, "{\"vectors\":{\"size\":2,\"distance\":\"Cosine\"}}", 200, "true");
    expect(s.qport, "PUT", "/collections/m/points", KEY, "{\"points\":[{\"id\":1,\"vector\":[0.96,0.28]},"
           "{\"id\":2,\"vector\":[0.94,0.34]},{\"id\":3,\"vector\":[0.8,-0.6]}]}", 200, "completed");
    expect(s.qport, "POST", "/collections/m/points/query", KEY, "{\"query\":{\"nearest\":[1,0],\"mmr\":{\"diversity\":0}},\"limit\":2}",
           200, "\"points\":[{\"id\":1,\"version\":0,\"score\":0.9599");
    expect(s.qport, "POST", "/collections/m/points/query", KEY, "{\"query\":{\"nearest\":[1,0],\"mmr\":{\"diversity\":0}},\"limit\":2}",
           200, "},{\"id\":2,");
    expect(s.qport, "POST", "/collections/m/points/query", KEY, "{\"query\":{\"nearest\":[1,0],\"mmr\":{\"diversity\":0.5}},\"limit\":2}",
           200, "},{\"id\":3,");
    expect(s.qport, "POST", "/collections/m/points/query", KEY, "{\"query\":{\"nearest\":[1,0],\"mmr\":{\"diversity\":2}}}", 400, "diversity");
    expect(s.qport, "DELETE", "/collections/m", KEY, NULL, 200, "\"result\":true");
    expect(s.qport, "POST", "/collections/e/points/recommend", KEY, "{}", 501, "recommend is not supported");
    expect(s.qport, "GET", "/collections/e/shards/0/snapshots", KEY, NULL, 501, "sharding and the cluster API are not supported");
    expect(s.qport, "PUT", "/snapshots/recover", KEY, "{}", 501, "the native API does: PUT /snapshots/recover) is not supported");
    expect(s.qport, "POST", "/collections/e/points/search", KEY, "{not json", 400, "Format error");
    expect(s.qport, "DELETE", "/collections/e/points/search", KEY, NULL, 405, "not allowed");
    expect(s.qport, "GET", "/nothing/here", KEY, NULL, 404, "\"status\":{\"error\":");
    expect(s.qport, "DELETE", "/collections/e", KEY, NULL, 200, "\"result\":true");
    expect(s.port, "GET", "/collections", KEY, NULL, 200, "\"collections\":[]");   /* the native view agrees */
    ck_assert_int_eq(stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* One API key precedence on both listeners (issue 17): the api-key header, if present,
 * decides; otherwise Authorization: Bearer. The native listener used to read Bearer first
 * and the Qdrant one api-key first, so a request with both got different access. */
START_TEST(test_keys_same_on_both_listeners)
{
    char *dir = make_tmpdir("qv-qdrant");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    qserver s;
    start(&s, data, write_keys(dir));
    static const struct { const char *headers; int access; } cases[] = {    /* 2 rw, 1 ro, 0 none */
        {"api-key: " KEY "\r\nAuthorization: Bearer readonly-key\r\n", 2},
        {"Authorization: Bearer readonly-key\r\napi-key: " KEY "\r\n", 2},
        {"api-key: readonly-key\r\nAuthorization: Bearer " KEY "\r\n", 1},
        {"Authorization: Bearer " KEY "\r\napi-key: readonly-key\r\n", 1},
        {"api-key: wrong\r\nAuthorization: Bearer " KEY "\r\n", 0},
        {"api-key: " KEY "\r\nAuthorization: Bearer wrong\r\n", 2},
        {"Authorization: Bearer " KEY "\r\n", 2}, {"Authorization: Bearer readonly-key\r\n", 1},
        {"api-key: readonly-key\r\n", 1}, {"Authorization: Basic cmVhZG9ubHkta2V5\r\n", 0}, {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got[2][2];                                     /* [listener][read, write] */
        for (int l = 0; l < 2; l++) {
            int port = l ? s.qport : s.port, st;
            char path[64], adm[80];
            snprintf(path, sizeof path, "/collections/k%zu", i);
            free(http_h(port, "GET", "/collections", cases[i].headers, NULL, &got[l][0]));
            free(http_h(port, "PUT", path, cases[i].headers,
                        l ? "{\"vectors\":{\"size\":2,\"distance\":\"Dot\"}}" : "{\"dim\":2}", &got[l][1]));
            snprintf(adm, sizeof adm, "api-key: %s\r\n", KEY);
            free(http_h(port, "DELETE", path, adm, NULL, &st));
            ck_assert_int_eq(st, got[l][1] < 300 ? 200 : 404);
        }
        int want_read = cases[i].access ? 200 : 401, want_write = cases[i].access == 2 ? 0 : cases[i].access ? 403 : 401;
        for (int l = 0; l < 2; l++) {
            ck_assert_msg(got[l][0] == want_read, "case %zu, %s listener: read -> %d", i, l ? "qdrant" : "native", got[l][0]);
            if (want_write) ck_assert_msg(got[l][1] == want_write, "case %zu, %s listener: write -> %d", i, l ? "qdrant" : "native", got[l][1]);
            else ck_assert_msg(got[l][1] == (l ? 200 : 201), "case %zu, %s listener: write -> %d", i, l ? "qdrant" : "native", got[l][1]);
        }
    }
    ck_assert_int_eq(stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* Ids of a Qdrant search result (or the native "hits") in rank order; their count. */
static size_t result_ids(const char *body, const char *list, uint64_t *ids, size_t cap)
{
    json_t *o = json_loads(body, 0, NULL), *a = json_object_get(o, list);
    ck_assert_msg(json_is_array(a), "no %s in %s", list, body);
    size_t n = json_array_size(a);
    for (size_t i = 0; i < n && i < cap; i++) ids[i] = (uint64_t)json_integer_value(json_object_get(json_array_get(a, i), "id"));
    json_decref(o);
    return n;
}

/* Whether ids[0..n) are an exact top-k (k = n) of q: none farther than the k-th nearest. */
static int is_exact(const float *base, size_t dim, const float *q, const uint64_t *ids, size_t n, const uint64_t *truth)
{
    double kth = ref_l2sq(q, base + truth[n - 1] * dim, dim);
    for (size_t i = 0; i < n; i++)
        if (ref_l2sq(q, base + ids[i] * dim, dim) > kth * (1 + 1e-5) + 1e-9) return 0;
    return 1;
}

/* params.exact (and the native "exact") scans exactly for every index kind (issue 17):
 * it used to widen the HNSW beam and do nothing on IVF. */
START_TEST(test_exact_search)
{
    enum { N = 3000, DIM = 8, NQ = 20, K = 10 };
    char *dir = make_tmpdir("qv-qdrant");
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    qserver s;
    start(&s, data, write_keys(dir));
    float *base = random_vectors(N, DIM, 77), *q = random_vectors(NQ, DIM, 78);
    expect(s.port, "PUT", "/collections/ivf", KEY, "{\"dim\":8,\"metric\":\"l2\",\"index\":{\"type\":\"ivf\",\"nlist\":50,\"nprobe\":1}}", 201, "ivf");
    expect(s.qport, "PUT", "/collections/graph", KEY, "{\"vectors\":{\"size\":8,\"distance\":\"Euclid\"},\"hnsw_config\":{\"m\":2,\"ef_construct\":4}}", 200, "true");
    size_t cap = 500 * (DIM * 20 + 40) + 64;
    char *body = malloc(cap), *qb = malloc(4096);
    for (int c = 0; c < 2; c++)
        for (size_t from = 0; from < N; from += 500) {
            size_t len = (size_t)sprintf(body, "{\"points\":[");
            for (size_t i = from; i < from + 500; i++) {
                len += (size_t)sprintf(body + len, "%s{\"id\":%zu,\"vector\":[", i > from ? "," : "", i);
                for (int j = 0; j < DIM; j++) len += (size_t)sprintf(body + len, "%s%.9g", j ? "," : "", (double)base[i * DIM + j]);
                len += (size_t)sprintf(body + len, "]}");
            }
            sprintf(body + len, "]}");
            expect(s.port, "PUT", c ? "/collections/graph/points" : "/collections/ivf/points", KEY, body, 200, "upserted");
        }
    expect(s.port, "POST", "/collections/ivf/train", KEY, NULL, 200, "\"trained\":true");
    int inexact[2] = {0, 0};
    for (int qi = 0; qi < NQ; qi++) {
        const float *v = q + qi * DIM;
        uint64_t truth[K], ids[K];
        ref_knn(base, N, DIM, v, 1, K, QV_METRIC_L2, truth);
        char vj[512];
        size_t vl = (size_t)sprintf(vj, "[");
        for (int j = 0; j < DIM; j++) vl += (size_t)sprintf(vj + vl, "%s%.9g", j ? "," : "", (double)v[j]);
        sprintf(vj + vl, "]");
        for (int c = 0; c < 2; c++) {
            const char *path = c ? "/collections/graph/points/search" : "/collections/ivf/points/search";
            for (int exact = 0; exact < 2; exact++) {
                int st;
                snprintf(qb, 4096, "{\"vector\":%s,\"limit\":%d%s}", vj, K, exact ? ",\"params\":{\"exact\":true}" : "");
                char *res = http(s.qport, "POST", path, KEY, qb, &st);
                ck_assert_int_eq(st, 200);
                size_t n = result_ids(res, "result", ids, K);
                free(res);
                if (exact) ck_assert_msg(n == K && is_exact(base, DIM, v, ids, K, truth), "%s query %d: not exact", path, qi);
                else inexact[c] += n != K || !is_exact(base, DIM, v, ids, K, truth);
            }
        }
        /* the native API's "exact", which the planner reports */
        int st;
        snprintf(qb, 4096, "{\"vector\":%s,\"k\":%d,\"exact\":true}", vj, K);
        char *res = http(s.port, "POST", "/collections/ivf/search", KEY, qb, &st);
        ck_assert_msg(st == 200 && strstr(res, "\"plan\":\"exact\""), "native exact: %d %s", st, res);
        ck_assert_msg(result_ids(res, "hits", ids, K) == K && is_exact(base, DIM, v, ids, K, truth), "native exact query %d", qi);
        free(res);
    }
    /* one probed list of 50 misses neighbours: without exact the answers differ, so the
     * checks above could fail */
    ck_assert_msg(inexact[0] > 0, "ivf with nprobe 1 was exact on every query");
    free(body);
    free(qb);
    free(base);
    free(q);
    ck_assert_int_eq(stop(&s), 0);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_qdrant_suite(void)
{
    Suite *s = suite_create("qdrant");
    TCase *t = tcase_create("api");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_errors);
    tcase_add_test(t, test_keys_same_on_both_listeners);
    tcase_add_test(t, test_exact_search);
    tcase_add_test(t, test_durable_uuid);
    tcase_add_test(t, test_node_client);
    tcase_add_test(t, test_node_features);
    tcase_add_test(t, test_node_hybrid);
    tcase_add_test(t, test_node_sparse);
    tcase_add_test(t, test_aliases_http);
    suite_add_tcase(s, t);
    return s;
}
