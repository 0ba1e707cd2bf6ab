/*
 * tests/check_server_json.c -- quiverd's search parser and its writers (server/search.c,
 * server/json.c) against jansson.
 *
 * The parser reads search bodies in place. It must accept exactly the bodies that the
 * strict rules accept when applied to a jansson tree (object, known fields, no duplicate
 * keys, k/ef/nprobe integers in range, vector of dim numbers in float range, with_payload
 * a boolean, filter an object the library parses) and read bit-identical values from
 * them; a body it refuses must get the code the rules give (a syntax error first, else
 * the first bad field in the text). The writers must write floats exactly as jansson does
 * with JSON_REAL_PRECISION(9), and copy stored payloads with every value unchanged and
 * every real in its shortest exact form.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "core/rng.h"
#include "api/api.h"
#include "tests/test_util.h"

/* ---- the reference: the strict rules on a jansson tree ------------------------------ */

typedef struct { uint32_t k, ef, nprobe; int with_payload, exact, filter; } ref_vals;

/* NULL when o is a valid search (values in vec and v), else the error code. */
static const char *ref_one(const json_t *o, uint32_t dim, float *vec, ref_vals *v)
{
    const char *key;
    json_t *val;
    int seen_vector = 0;
    memset(v, 0, sizeof *v);
    v->k = API_DEFAULT_K;
    if (!json_is_object(o)) return "invalid_argument";
    json_object_foreach((json_t *)o, key, val) {
        uint32_t lo = 0, hi = 0, *out = NULL;
        if (!strcmp(key, "vector")) {
            seen_vector = 1;
            if (!json_is_array(val)) return "invalid_argument";
            if (json_array_size(val) != dim) return "dimension_mismatch";
            for (size_t i = 0; i < dim; i++) {
                json_t *x = json_array_get(val, i);
                if (!json_is_number(x)) return "invalid_argument";
                double d = json_number_value(x);
                if (!isfinite(d) || fabs(d) > (double)FLT_MAX) return "invalid_argument";
                vec[i] = (float)d;
            }
            continue;
        }
        if (!strcmp(key, "k")) lo = 1, hi = QV_MAX_K, out = &v->k;
        else if (!strcmp(key, "ef")) hi = API_MAX_EF, out = &v->ef;
        else if (!strcmp(key, "nprobe")) hi = API_MAX_NPROBE, out = &v->nprobe;
        if (out) {
            if (json_is_null(val)) continue;
            if (!json_is_integer(val) || json_integer_value(val) < lo || json_integer_value(val) > hi) return "invalid_argument";
            *out = (uint32_t)json_integer_value(val);
        } else if (!strcmp(key, "with_payload") || !strcmp(key, "exact")) {
            if (!json_is_null(val) && !json_is_boolean(val)) return "invalid_argument";
            *(key[0] == 'e' ? &v->exact : &v->with_payload) = json_is_true(val);
        } else if (!strcmp(key, "filter")) {
            if (json_is_null(val)) continue;
            if (!json_is_object(val)) return "bad_filter";
            char *t = json_dumps(val, JSON_COMPACT);
            qv_filter *f = NULL;
            int rc = qv_filter_parse(t, &f);
            free(t);
            qv_filter_free(f);
            if (rc != QV_OK) return "bad_filter";
            v->filter = 1;
        } else {
            return "unknown_field";
        }
    }
    return seen_vector ? NULL : "invalid_argument";
}

/* The rules for a whole body: NULL when valid (n searches into vecs/v), else the code. */
static const char *ref_body(const char *body, size_t len, uint32_t dim, int batch, float *vecs, ref_vals *v, size_t *n)
{
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *code = NULL;
    *n = 0;
    if (!o || !json_is_object(o)) code = "invalid_json";
    else if (!batch) {
        code = ref_one(o, dim, vecs, v);
        *n = 1;
    } else {
        const char *key;
        json_t *val;
        int seen = 0;
        json_object_foreach(o, key, val) {
            if (strcmp(key, "searches") != 0) { code = "unknown_field"; break; }
            seen = 1;
            if (!json_is_array(val)) { code = "invalid_argument"; break; }
            for (size_t i = 0; i < json_array_size(val) && !code; i++)
                code = ref_one(json_array_get(val, i), dim, vecs + i * dim, &v[i]);
            if (!code && (json_array_size(val) == 0 || json_array_size(val) > API_MAX_BATCH)) code = "invalid_argument";
            if (code) break;
            *n = json_array_size(val);
        }
        if (!code && !seen) code = "invalid_argument";
    }
    json_decref(o);
    return code;
}

/* Parse body both ways and check that they agree; returns 1 when the parser took it. */
static int check_body(const char *body, size_t len, uint32_t dim, int batch, int must_take)
{
    size_t cap = batch ? API_MAX_BATCH + 1 : 1;
    float *want = calloc(cap * dim + 1, sizeof *want);
    ref_vals *v = calloc(cap, sizeof *v);
    size_t nwant = 0, n = 0;
    const char *code = ref_body(body, len, dim, batch, want, v, &nwant);
    api_search *s = NULL;
    api_jerr e;
    int rc = api_parse_searches(body, len, dim, batch, &s, &n, &e);
    if (code) {
        ck_assert_msg(rc != 0, "parser took a body the rules refuse (%s): %.300s", code, body);
        ck_assert_msg(strcmp(e.code, code) == 0, "code %s (%s), the rules say %s: %.300s", e.code, e.msg, code, body);
    } else {
        ck_assert_msg(rc == 0, "parser refused (%s: %s) a valid body: %.300s", e.code, e.msg, body);
        ck_assert_uint_eq(n, nwant);
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(memcmp(s[i].vec, want + i * dim, dim * sizeof *want) == 0, "vectors differ: %.300s", body);
            ck_assert(s[i].k == v[i].k && s[i].ef == v[i].ef && s[i].nprobe == v[i].nprobe);
            ck_assert_int_eq(s[i].with_payload, v[i].with_payload);
            ck_assert_int_eq(s[i].exact, v[i].exact);
            ck_assert_int_eq(s[i].filter.f != NULL, v[i].filter);
        }
    }
    ck_assert_msg(!must_take || rc == 0, "a valid body was refused: %.300s", body);
    api_searches_free(s, n);
    free(want);
    free(v);
    return rc == 0;
}

/* ---- random bodies ------------------------------------------------------------------- */

/* A random float written the way some client might write it. */
static int write_number(char *p, qv_rng *r)
{
    float x = (float)(qv_rng_uniform(r) * 2 - 1);
    switch (qv_rng_below(r, 9)) {
    case 0: return sprintf(p, "%.9g", (double)x);                  /* Python's repr of floats, json.dumps */
    case 1: return sprintf(p, "%.17g", (double)x);                 /* a double's full digits */
    case 2: return sprintf(p, "%d", (int)qv_rng_below(r, 256) - 128);  /* SIFT's integers */
    case 3: return sprintf(p, "%.1f", (double)(int)qv_rng_below(r, 256));   /* 77.0 */
    case 4: return sprintf(p, "%.6e", (double)x * 1e-3);           /* exponent, '-' */
    case 5: return sprintf(p, "%.3E", (double)x * 1e30);           /* 'E+' */
    case 6: return sprintf(p, "%.9g", (double)x * 1e-30);          /* small */
    case 7: return sprintf(p, "%.20f", (double)x);                 /* many fraction digits */
    default: return sprintf(p, "%.8g", (double)x * 3e5);
    }
}

static const char *ws(qv_rng *r)
{
    static const char *const w[] = {"", "", "", " ", "\n", "\t ", "\r\n  "};
    return w[qv_rng_below(r, 7)];
}

/* A valid search body with fields in random order, random spacing and numbers. */
static char *random_body(qv_rng *r, uint32_t dim)
{
    static const char *const filters[] = {"null", "{\"must\":[{\"key\":\"lang\",\"match\":\"en\"}]}",
                                          "{ \"must_not\" : [ { \"key\" : \"n\", \"range\" : {\"gte\": 3} } ] }"};
    char *s = malloc(512 + (size_t)dim * 64), *p = s;
    p += sprintf(p, "%s{%s", ws(r), ws(r));
    const char *order[7] = {"vector", "k", "ef", "nprobe", "with_payload", "filter", "exact"};
    for (int i = 6; i > 0; i--) {
        int j = (int)qv_rng_below(r, (uint64_t)i + 1);
        const char *t = order[i]; order[i] = order[j]; order[j] = t;
    }
    int first = 1;
    for (int f = 0; f < 7; f++) {
        if (strcmp(order[f], "vector") != 0 && qv_rng_below(r, 2)) continue;   /* the rest: optional */
        if (!first) p += sprintf(p, "%s,%s", ws(r), ws(r));
        first = 0;
        p += sprintf(p, "\"%s\"%s:%s", order[f], ws(r), ws(r));
        if (strcmp(order[f], "vector") == 0) {
            *p++ = '[';
            for (uint32_t i = 0; i < dim; i++) {
                if (i) p += sprintf(p, ",%s", ws(r));
                p += write_number(p, r);
            }
            *p++ = ']';
        } else if (strcmp(order[f], "k") == 0) {
            p += sprintf(p, "%u", 1 + (unsigned)qv_rng_below(r, QV_MAX_K));
        } else if (strcmp(order[f], "with_payload") == 0 || strcmp(order[f], "exact") == 0) {
            p += sprintf(p, "%s", qv_rng_below(r, 3) == 0 ? "null" : qv_rng_below(r, 2) ? "true" : "false");
        } else if (strcmp(order[f], "filter") == 0) {
            p += sprintf(p, "%s", filters[qv_rng_below(r, 3)]);
        } else {
            p += sprintf(p, "%u", (unsigned)qv_rng_below(r, 1000));
        }
    }
    p += sprintf(p, "%s}%s", ws(r), ws(r));
    return s;
}

static char *random_batch(qv_rng *r, uint32_t dim, int n)
{
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    len += (size_t)sprintf(out, "%s{%s\"searches\"%s:%s[", ws(r), ws(r), ws(r), ws(r));
    for (int i = 0; i < n; i++) {
        char *one = random_body(r, dim);
        size_t need = len + strlen(one) + 32;
        if (need > cap) out = realloc(out, cap = 2 * need);
        len += (size_t)sprintf(out + len, "%s%s%s", i ? "," : "", ws(r), one);
        free(one);
    }
    if (len + 32 > cap) out = realloc(out, cap = len + 32);
    sprintf(out + len, "%s]%s}%s", ws(r), ws(r), ws(r));
    return out;
}

/* Random edits of valid bodies: the parser and the rules must still agree on each. */
static void mutate(char *m, size_t *len, qv_rng *r)
{
    static const char alphabet[] = "{}[],:\" 0123456789.eE+-ktrufalsnvecopbwhy_\\\n";
    size_t at = qv_rng_below(r, *len + 1);
    char c = alphabet[qv_rng_below(r, sizeof alphabet - 1)];
    switch (qv_rng_below(r, 3)) {
    case 0: if (at < *len) m[at] = c; break;                                           /* replace */
    case 1: memmove(m + at + 1, m + at, *len - at + 1); m[at] = c; (*len)++; break;    /* insert */
    default: if (at < *len) { memmove(m + at, m + at + 1, *len - at); (*len)--; }      /* delete */
    }
}

START_TEST(test_parse_random_bodies)
{
    qv_rng r;
    qv_rng_seed(&r, 101);
    int n = sanitized() ? 300 : 3000;
    for (int it = 0; it < n; it++) {
        uint32_t dim = 1 + (uint32_t)qv_rng_below(&r, it % 10 == 0 ? 1536 : 200);
        char *body = random_body(&r, dim);
        check_body(body, strlen(body), dim, 0, 1);
        free(body);
    }
}
END_TEST

START_TEST(test_parse_mutations)
{
    qv_rng r;
    qv_rng_seed(&r, 202);
    int n = sanitized() ? 3000 : 40000, taken = 0;
    for (int it = 0; it < n; it++) {
        uint32_t dim = 1 + (uint32_t)qv_rng_below(&r, 4);
        char *body = random_body(&r, dim);
        size_t len = strlen(body);
        body = realloc(body, len + 8);
        for (int e = 1 + (int)qv_rng_below(&r, 3); e > 0; e--) mutate(body, &len, &r);
        taken += check_body(body, len, dim, 0, 0);
        free(body);
    }
    /* some edits keep the body valid (a digit for a digit); the check above ran on them */
    ck_assert_int_gt(taken, n / 50);
}
END_TEST

/* Strings are valid UTF-8, as jansson requires: the scanner refused nothing, so invalid
 * bytes reached jansson later (a Qdrant filter, a payload selector) and were answered 503
 * "out of memory" (found by make fuzz). Each body must get the code the rules give. */
START_TEST(test_parse_utf8)
{
    static const char *const strs[] = {
        "a\xff", "\xc0\x80", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
        "\xe2\x82", "\x80", "\xc3", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9d\x84\x9e", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        char body[3][160];
        int valid = i >= 10;
        snprintf(body[0], sizeof body[0], "{\"vector\":[1],\"filter\":{\"must\":[{\"key\":\"%s\",\"match\":{\"value\":\"x\"}}]}}", strs[i]);
        snprintf(body[1], sizeof body[1], "{\"vector\":[1],\"filter\":{\"must\":[{\"key\":\"k\",\"match\":{\"value\":\"%s\"}}]}}", strs[i]);
        snprintf(body[2], sizeof body[2], "{\"vector\":[1],\"%s\":1}", strs[i]);
        for (int b = 0; b < 3; b++)
            ck_assert_int_eq(check_body(body[b], strlen(body[b]), 1, 0, 0), valid && b < 2);
    }
}
END_TEST

/* Number tokens one by one, as a one-dimensional vector: taken or refused as the rules
 * say, and read as the same float. */
START_TEST(test_parse_numbers)
{
    static const char *const toks[] = {
        "0", "-0", "0.0", "-0.0", "1", "-1", "77.0", "0.1", "0.30000000000000004", "1e22", "1e23", "1E-22",
        "123e-22", "1e-400", "4.9e-324", "1e-45", "1.4e-45", "3.4028234e38", "-3.4028234e+38", "3.40282347e38",
        "3.4028235e38", "1e39", "1.7976931348623157e308", "1e309", "123456789012345678", "-123456789012345678",
        "1234567890123456789", "99999999999999999999", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809", "9007199254740993", "9007199254740993.0", "9007199254740993e-5",
        "0.000000000000000000000000000000000001", "12345678901234567890.5",
        "1.00000000000000011102230246251565404236316680908203125",
        "0.1000000000000000055511151231257827021181583404541015625000000001", "2.5e-5", "1e0", "1e+0", "1e-0",
        "0e10", "0e-99999", "1e99999999999", "1e-99999999999", "00", "01", "-01", "1.", ".5", "+1", "--1", "-",
        "1e", "1e+", "1.e5", "0x10", "NaN", "Infinity", "-Infinity", "1_000", "\"1\"", "true", "null", "[1]", "1 2",
    };
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"vector\":[%s]}", toks[i]);
        check_body(body, strlen(body), 1, 0, 0);
    }
    /* the ones that must be read, and how */
    const char *ok = "{\"vector\":[1,2,3],\"k\":1024,\"ef\":100000,\"nprobe\":0,\"with_payload\":false}";
    ck_assert_int_eq(check_body(ok, strlen(ok), 3, 0, 1), 1);
}
END_TEST

START_TEST(test_parse_refusals)
{
    static const struct { const char *body; const char *code; } cases[] = {
        {"", "invalid_json"}, {" ", "invalid_json"}, {"{", "invalid_json"}, {"[]", "invalid_json"},
        {"null", "invalid_json"}, {"{}", "invalid_argument"}, {"{\"vector\":[1,2]}", "dimension_mismatch"},
        {"{\"vector\":[1,2,3],}", "invalid_json"}, {"{\"vector\":[1,2,3]} x", "invalid_json"},
        {"{\"vector\":[1,2,3],\"vector\":[1,2,3]}", "invalid_json"}, {"{\"vector\":\"1,2,3\"}", "invalid_argument"},
        {"{\"vector\":[1,2,3],\"filter\":{}}", NULL}, {"{\"vector\":[1,2,3],\"filter\":[]}", "bad_filter"},
        {"{\"vector\":[1,2,3],\"filter\":{\"must\":{}}}", "bad_filter"},
        {"{\"vector\":[1,2,3],\"with_payload\":0}", "invalid_argument"}, {"{\"vector\":[1,2,3],\"extra\":1}", "unknown_field"},
        {"{\"vec\\u0074or\":[1,2,3]}", NULL}, {"{\"vector\":[1,2,3],\"k\":0}", "invalid_argument"},
        {"{\"vector\":[1,2,3],\"k\":1.0}", "invalid_argument"}, {"{\"vector\":[1,2,3],\"k\":\"5\"}", "invalid_argument"},
        {"{\"vector\":[1,2,3],\"ef\":100001}", "invalid_argument"}, {"{\"vector\":[1,null,3]}", "invalid_argument"},
        {"{\"vector\":[1,2,1e39]}", "invalid_argument"}, {"{\"vector\":[1,2,1e999]}", "invalid_json"},
        {"{\"k\":0,\"vector\":[1,2]}", "invalid_argument"}, {"{\"vector\":[1,2],\"k\":0}", "dimension_mismatch"},
        {"{\"topk\":3,\"vector\":[1,2,3],\"k\":[}", "invalid_json"}, {"\xef\xbb\xbf{\"vector\":[1,2,3]}", "invalid_json"},
        {"{\"vector\":[1,2,3],\"k\":\"\\u0000\"}", "invalid_json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        api_search *s = NULL;
        size_t n = 0;
        api_jerr e;
        int rc = api_parse_searches(cases[i].body, strlen(cases[i].body), 3, 0, &s, &n, &e);
        if (cases[i].code) {
            ck_assert_msg(rc != 0 && strcmp(e.code, cases[i].code) == 0, "%s: got %s, want %s", cases[i].body,
                          rc ? e.code : "accepted", cases[i].code);
            ck_assert_msg(e.msg[0], "%s: no message", cases[i].body);
        } else {
            ck_assert_msg(rc == 0, "%s refused: %s", cases[i].body, e.msg);
        }
        check_body(cases[i].body, strlen(cases[i].body), 3, 0, 0);
        api_searches_free(s, n);
    }
    /* messages name what is wrong */
    api_search *s = NULL;
    size_t n = 0;
    api_jerr e;
    ck_assert_int_ne(api_parse_searches("{\"vector\":[1,2]}", 16, 3, 0, &s, &n, &e), 0);
    ck_assert_str_eq(e.msg, "the search: vector has dimension 2, collection has 3");
    const char *b = "{\"searches\":[{\"vector\":[1,2,3]},{\"vector\":[1,2,3],\"filter\":{\"must\":{}}}]}";
    ck_assert_int_ne(api_parse_searches(b, strlen(b), 3, 1, &s, &n, &e), 0);
    ck_assert_msg(strncmp(e.msg, "searches[1].", 12) == 0, "%s", e.msg);
    b = "{\"vector\":[1,2,3],\n \"k\":[}";
    ck_assert_int_ne(api_parse_searches(b, strlen(b), 3, 0, &s, &n, &e), 0);
    ck_assert_msg(strstr(e.msg, "line 2 column 7"), "%s", e.msg);
}
END_TEST

START_TEST(test_parse_batches)
{
    qv_rng r;
    qv_rng_seed(&r, 606);
    int n = sanitized() ? 100 : 1000;
    for (int it = 0; it < n; it++) {
        uint32_t dim = 1 + (uint32_t)qv_rng_below(&r, 40);
        char *b = random_batch(&r, dim, 1 + (int)qv_rng_below(&r, 20));
        check_body(b, strlen(b), dim, 1, 1);
        free(b);
    }
    int taken = 0, m = sanitized() ? 1000 : 10000;
    for (int it = 0; it < m; it++) {
        uint32_t dim = 1 + (uint32_t)qv_rng_below(&r, 3);
        char *b = random_batch(&r, dim, 1 + (int)qv_rng_below(&r, 3));
        size_t len = strlen(b);
        b = realloc(b, len + 8);
        mutate(b, &len, &r);
        taken += check_body(b, len, dim, 1, 0);
        free(b);
    }
    ck_assert_int_gt(taken, m / 50);
    static const char *const bodies[] = {
        "", "{}", "{\"searches\":[]}", "{\"searches\":{}}", "{\"searches\":null}", "{\"searches\":[1]}",
        "{\"searches\":[{\"vector\":[1]}],\"k\":1}", "{\"k\":1,\"searches\":[{\"vector\":[1]}]}",
        "{\"searches\":[{\"vector\":[1]}]} x", "{\"searches\":[{\"vector\":[1]},]}",
        "{\"searches\":[{\"vector\":[1]}],\"searches\":[{\"vector\":[1]}]}",
        "{\"searches\":[{\"vector\":[1]},{\"vector\":[1],\"filter\":null}]}",
        "{\"searches\":[{\"vector\":[1,2]}]}", "{\"search\\u0065s\":[{\"vector\":[1]}]}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) check_body(bodies[i], strlen(bodies[i]), 1, 1, 0);
    /* the limit: API_MAX_BATCH searches are taken, one more is refused */
    size_t cap = (API_MAX_BATCH + 1) * 32 + 32;
    char *big = malloc(cap), *p = big;
    p += sprintf(p, "{\"searches\":[");
    for (unsigned i = 0; i < API_MAX_BATCH; i++) p += sprintf(p, "%s{\"vector\":[%u]}", i ? "," : "", i);
    strcpy(p, "]}");
    ck_assert_int_eq(check_body(big, strlen(big), 1, 1, 1), 1);
    strcpy(p, ",{\"vector\":[1]}]}");
    ck_assert_int_eq(check_body(big, strlen(big), 1, 1, 0), 0);
    free(big);
}
END_TEST

/* ---- the writers ------------------------------------------------------------------------ */

/* The writers into an evbuffer. */
static int to_evbuffer(void *b, const char *p, size_t len)
{
    return evbuffer_add(b, p, len);
}

static int put_points(struct evbuffer *b, const qv_hit *hits, size_t n, const api_point_style *st,
                      const qv_search_stats *took)
{
    api_wbuf w = {.sink = to_evbuffer, .sink_arg = b};
    int rc = api_wpoints(&w, NULL, 0, hits, n, st);
    if (took) api_wtook(&w, took);
    api_wflush(&w);
    return rc ? rc : w.err ? QV_ENOMEM : QV_OK;
}

static int put_stored(struct evbuffer *b, const char *text, int (*keep)(const char *key, void *arg))
{
    api_wbuf w = {.sink = to_evbuffer, .sink_arg = b};
    int rc = api_wstored(&w, text, keep, NULL);
    api_wflush(&w);
    return rc || w.err ? -1 : 0;
}

static char *drain(struct evbuffer *b)
{
    size_t len = evbuffer_get_length(b);
    char *s = malloc(len + 1);
    evbuffer_remove(b, s, len);
    s[len] = 0;
    return s;
}

/* Hits as the native API writes them, against jansson with JSON_REAL_PRECISION(9). */
static void check_hits(const qv_hit *hits, size_t n, const qv_search_stats *st)
{
    struct evbuffer *b = evbuffer_new();
    api_point_style style = {.scores = 1};
    QV_CK(put_points(b, hits, n, &style, st));
    char *got = drain(b);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:f}", "id", (json_int_t)hits[i].id, "score", (double)hits[i].score));
    json_t *keys = json_array();
    if (st->unindexed_keys[0]) json_array_append_new(keys, json_string(st->unindexed_keys));
    json_t *took = json_pack("{s:s,s:I,s:I,s:I,s:o,s:I,s:I,s:b}", "plan", st->plan, "live", (json_int_t)st->live,
                             "allowed", (json_int_t)st->allowed, "conditions", (json_int_t)st->conditions,
                             "unindexed", keys, "payloads_read", (json_int_t)st->payloads_read, "filter_us",
                             (json_int_t)st->filter_us, "cached", (int)(st->cached != 0));
    char *a = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(9) | JSON_ENCODE_ANY);
    char *t = json_dumps(took, JSON_COMPACT);
    size_t la = strlen(a);
    if (strncmp(got, a, la) != 0 || strcmp(got + la, t) != 0) {
        size_t i = 0;
        while (got[i] && got[i] == a[i]) i++;
        ck_assert_msg(0, "hits differ at byte %zu:\n  got  ...%.80s\n  want ...%.80s", i, got + (i > 40 ? i - 40 : 0),
                      a + (i > 40 ? i - 40 : 0));
    }
    free(got);
    free(a);
    free(t);
    json_decref(arr);
    json_decref(took);
    evbuffer_free(b);
}

START_TEST(test_hits_match_jansson)
{
    qv_rng r;
    qv_rng_seed(&r, 303);
    enum { N = 1000 };
    qv_hit *hits = malloc(N * sizeof *hits);
    qv_search_stats st = {.live = 100000, .allowed = 100000, .plan = "none"};
    for (int i = 0; i < N; i++) {
        hits[i].id = qv_rng_next(&r) >> (1 + qv_rng_below(&r, 63));
        switch (i % 4) {
        case 0: hits[i].score = (float)(qv_rng_uniform(&r) * 1e6); break;
        case 1: hits[i].score = (float)(qv_rng_uniform(&r) * 2 - 1); break;
        case 2: hits[i].score = (float)(int)qv_rng_below(&r, 1 << 26); break;
        default: hits[i].score = (float)((qv_rng_uniform(&r) - 0.5) * 1e-3); break;
        }
    }
    hits[0].id = QV_MAX_ID;
    hits[1].id = 0;
    check_hits(hits, N, &st);
    check_hits(hits, 0, &st);
    /* every magnitude: random bit patterns of finite floats, both signs */
    for (int round = 0; round < (sanitized() ? 20 : 400); round++) {
        for (int i = 0; i < N; i++) {
            uint32_t bits;
            do bits = (uint32_t)qv_rng_next(&r); while (((bits >> 23) & 0xff) == 0xff);
            memcpy(&hits[i].score, &bits, sizeof bits);
        }
        check_hits(hits, N, &st);
    }
    /* decimal ties and carries, powers of two and ten, the extremes */
    int i = 0;
    for (int e = -149; e <= 127 && i < N; e++) hits[i++].score = ldexpf(1.0f, e);
    for (int e = -45; e <= 38 && i < N; e++) hits[i++].score = (float)pow(10, e);
    for (uint32_t v = 999999990; v < 1000000010 && i < N; v++) hits[i++].score = (float)v;
    for (uint32_t v = 1; v < 200 && i < N; v++) hits[i++].score = (float)v / 1024.0f + 1e9f;
    float specials[] = {0.0f, -0.0f, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX, FLT_TRUE_MIN, 1e-5f, 9.9999997e-5f, 1e-4f,
                        123456789.0f, 1234567890.0f, 0.5f, 2.5f, 16777217.0f, 33554436.0f, 4.5e-44f, 1.0e-6f, 1.0e37f};
    for (size_t j = 0; j < sizeof specials / sizeof specials[0] && i < N; j++) hits[i++].score = specials[j];
    while (i < N) hits[i++].score = (float)qv_rng_below(&r, 2000000000u);
    /* the planner's fields, a plan and a key that need escaping */
    qv_search_stats st2 = {.live = 7, .allowed = 3, .conditions = 2, .payloads_read = 11, .filter_us = 99,
                           .plan = "exact", .cached = 1, .unindexed_keys = "la\"ng\n"};
    check_hits(hits, N, &st2);
    /* a score that is not a number is null, never an error */
    struct evbuffer *b = evbuffer_new();
    qv_hit h = {1, NAN};
    api_point_style style = {.scores = 1};
    QV_CK(put_points(b, &h, 1, &style, NULL));
    char *got = drain(b);
    ck_assert_str_eq(got, "[{\"id\":1,\"score\":null}]");
    free(got);
    evbuffer_free(b);
    free(hits);
}
END_TEST

/* A random tree of every JSON type. */
static json_t *random_tree(qv_rng *r, int depth)
{
    static const char *const strs[] = {"", "plain", "quote\" back\\slash", "tab\tnl\ncr\r", "\x01\x1f\x7f ctl",
                                       "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "slash / 1.5e3", "\b\f"};
    switch ((int)qv_rng_below(r, depth > 3 ? 6 : 8)) {
    case 0: return json_integer((json_int_t)(qv_rng_next(r) >> qv_rng_below(r, 64)) * (qv_rng_below(r, 2) ? 1 : -1));
    case 1: return json_real((float)((qv_rng_uniform(r) - 0.5) * pow(10, (double)qv_rng_below(r, 20) - 10)));
    case 2: {                                              /* a double of any size */
        double d;
        uint64_t bits;
        do { bits = qv_rng_next(r); memcpy(&d, &bits, sizeof d); } while (!isfinite(d));
        return json_real(d);
    }
    case 3: return json_string(strs[qv_rng_below(r, 8)]);
    case 4: return qv_rng_below(r, 2) ? json_true() : json_false();
    case 5: return json_null();
    case 6: {
        json_t *a = json_array();
        for (int i = (int)qv_rng_below(r, 5); i > 0; i--) json_array_append_new(a, random_tree(r, depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (int i = (int)qv_rng_below(r, 5); i > 0; i--) {
            char key[40];
            snprintf(key, sizeof key, "%s%d", strs[qv_rng_below(r, 8)], (int)qv_rng_below(r, 100));
            json_object_set_new(o, key, random_tree(r, depth + 1));
        }
        return o;
    }
    }
}

/* Equal, with reals the very same doubles; 1 when so. */
static int same_exactly(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b)) return 0;
    if (json_is_real(a)) {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    if (json_is_object(a)) {
        const char *k;
        json_t *v;
        if (json_object_size(a) != json_object_size(b)) return 0;
        json_object_foreach((json_t *)a, k, v) if (!json_object_get(b, k) || !same_exactly(v, json_object_get(b, k))) return 0;
        return 1;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same_exactly(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

static int keep_even(const char *key, void *arg)
{
    (void)arg;
    size_t n = strlen(key);
    return n && (key[n - 1] - '0') % 2 == 0;
}

/* Stored payloads (the library keeps jansson's compact dump) come back with every value,
 * each real in its shortest exact form, and nothing else changed. */
START_TEST(test_stored_payloads)
{
    qv_rng r;
    qv_rng_seed(&r, 505);
    for (int it = 0; it < (sanitized() ? 300 : 3000); it++) {
        json_t *t = random_tree(&r, 0);
        char *stored = json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY);
        struct evbuffer *b = evbuffer_new();
        ck_assert_int_eq(put_stored(b, stored, NULL), 0);
        char *got = drain(b);
        json_t *back = json_loads(got, JSON_DECODE_ANY, NULL);
        ck_assert_msg(back && same_exactly(t, back), "values changed:\n  %.300s\n  %.300s", stored, got);
        /* with a key filter: the kept keys only, the same values */
        if (json_is_object(t)) {
            ck_assert_int_eq(put_stored(b, stored, keep_even), 0);
            char *part = drain(b);
            json_t *pb = json_loads(part, 0, NULL), *want = json_deep_copy(t);
            const char *k;
            json_t *v;
            void *tmp;
            json_object_foreach_safe(want, tmp, k, v) if (!keep_even(k, NULL)) json_object_del(want, k);
            ck_assert_msg(pb && same_exactly(want, pb), "kept keys: %.300s -> %.300s", stored, part);
            json_decref(pb);
            json_decref(want);
            free(part);
        }
        json_decref(back);
        free(got);
        free(stored);
        evbuffer_free(b);
        json_decref(t);
    }
    /* the shortest exact form, in jansson's style */
    static const struct { double v; const char *text; } forms[] = {
        {1732694400.123, "1732694400.123"}, {0.1, "0.1"}, {5.0, "5.0"}, {-0.0, "-0.0"}, {1e300, "1e300"},
        {1e-7, "1e-7"}, {123456789012345678.0, "1.2345678901234568e17"}, {0.30000000000000004, "0.30000000000000004"},
        {2.5e-308, "2.5e-308"}, {4.9e-324, "5e-324"}, {-1.5e-323, "-1.5e-323"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char buf[40];
        ck_assert_int_gt(api_fmt_double(buf, sizeof buf, forms[i].v), 0);
        ck_assert_str_eq(buf, forms[i].text);
    }
    /* a stored text that is not JSON goes out as nothing (the caller writes null) */
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(put_stored(b, "{\"a\":1", NULL), -1);
    ck_assert_uint_eq(evbuffer_get_length(b), 0);
    char uuid[64];
    ck_assert_int_eq(api_stored_string("{\"a\":[1,{\"k\":\"no\"}],\"k\":\"y\\u00e9s\"}", "k", uuid, sizeof uuid), 0);
    ck_assert_str_eq(uuid, "y\xc3\xa9s");
    evbuffer_free(b);
}
END_TEST

Suite *qv_server_json_suite(void)
{
    Suite *s = suite_create("server_json");
    TCase *tc = tcase_create("server_json");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_parse_random_bodies);
    tcase_add_test(tc, test_parse_mutations);
    tcase_add_test(tc, test_parse_numbers);
    tcase_add_test(tc, test_parse_utf8);
    tcase_add_test(tc, test_parse_refusals);
    tcase_add_test(tc, test_parse_batches);
    tcase_add_test(tc, test_hits_match_jansson);
    tcase_add_test(tc, test_stored_payloads);
    suite_add_tcase(s, tc);
    return s;
}
