/*
 * tests/check_server_fast.c -- quiverd's plain-search fast path (server/search_fast.c)
 * against jansson, which the general path uses.
 *
 * The scanner must take every ordinary search body and read bit-identical values from it,
 * and must never take a body that the general path refuses or reads differently: the
 * reference here parses with jansson and applies the general path's rules (object, known
 * fields, no duplicates, k/ef/nprobe integers in range, dim numbers in float range).
 * The reply writer must produce the bytes jansson produces (JSON_COMPACT,
 * JSON_REAL_PRECISION(9)) for any hits, scores of every magnitude included.
 * check_server.c compares the two paths once more through a running quiverd.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "core/rng.h"
#include "server/server.h"
#include "tests/test_util.h"

/* ---- the reference: the general path's rules, on a jansson tree ---------------------- */

/* 1 when the general path accepts body for a dim-dimensional collection as a plain search
 * (no filter), with the values it would use; 0 when it refuses it; -1 when it accepts it
 * but takes it elsewhere (a filter: not for the fast path). */
static int ref_parse(const char *body, size_t len, uint32_t dim, float *vec, srv_fast_search *fs)
{
    static const char *const keys[] = {"vector", "k", "ef", "nprobe", "filter", "with_payload", NULL};
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    int rc = 0;
    if (!o || !json_is_object(o)) goto out;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        int known = 0;
        for (int i = 0; keys[i]; i++) known |= strcmp(key, keys[i]) == 0;
        if (!known) goto out;
    }
    const char *ints[] = {"k", "ef", "nprobe"};
    uint32_t lo[] = {1, 0, 0}, hi[] = {QV_MAX_K, SRV_MAX_EF, SRV_MAX_NPROBE};
    uint32_t val[] = {SRV_DEFAULT_K, 0, 0};
    for (int i = 0; i < 3; i++) {
        json_t *x = json_object_get(o, ints[i]);
        if (!x || json_is_null(x)) continue;
        if (!json_is_integer(x) || json_integer_value(x) < lo[i] || json_integer_value(x) > hi[i]) goto out;
        val[i] = (uint32_t)json_integer_value(x);
    }
    json_t *wp = json_object_get(o, "with_payload");
    if (wp && !json_is_null(wp) && !json_is_boolean(wp)) goto out;
    json_t *a = json_object_get(o, "vector");
    if (!a || !json_is_array(a) || json_array_size(a) != dim) goto out;
    for (size_t i = 0; i < dim; i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_number(x)) goto out;
        double d = json_number_value(x);
        if (!isfinite(d) || fabs(d) > (double)FLT_MAX) goto out;
        vec[i] = (float)d;
    }
    json_t *f = json_object_get(o, "filter");
    if (f && !json_is_null(f)) { rc = -1; goto out; }
    fs->k = val[0];
    fs->ef = val[1];
    fs->nprobe = val[2];
    fs->with_payload = json_is_true(wp);
    rc = 1;
out:
    json_decref(o);
    return rc;
}

/* Scan body both ways and check the contract; returns what the scanner said. */
static int check_body(const char *body, uint32_t dim, int must_take)
{
    float *a = calloc(dim + 1, sizeof *a), *b = calloc(dim + 1, sizeof *b);
    srv_fast_search fa, fb;
    size_t len = strlen(body);
    int got = srv_scan_search(body, len, dim, a, &fa);
    int want = ref_parse(body, len, dim, b, &fb);
    if (got) {
        ck_assert_msg(want == 1, "fast path took a body the general path %s: %.200s",
                      want == 0 ? "refuses" : "handles otherwise", body);
        ck_assert_msg(memcmp(a, b, dim * sizeof *a) == 0, "vectors differ for %.200s", body);
        ck_assert_uint_eq(fa.k, fb.k);
        ck_assert_uint_eq(fa.ef, fb.ef);
        ck_assert_uint_eq(fa.nprobe, fb.nprobe);
        ck_assert_int_eq(fa.with_payload, fb.with_payload);
    } else if (must_take) {
        ck_assert_msg(0, "fast path refused a plain search body: %.200s", body);
    }
    free(a);
    free(b);
    return got;
}

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

/* A valid plain search body with fields in random order, random spacing and numbers. */
static char *random_body(qv_rng *r, uint32_t dim)
{
    char *s = malloc(128 + (size_t)dim * 64), *p = s;
    p += sprintf(p, "%s{%s", ws(r), ws(r));
    const char *order[4] = {"vector", "k", "ef", "nprobe"};
    for (int i = 3; i > 0; i--) {
        int j = (int)qv_rng_below(r, (uint64_t)i + 1);
        const char *t = order[i]; order[i] = order[j]; order[j] = t;
    }
    int first = 1;
    for (int f = 0; f < 4; f++) {
        if (strcmp(order[f], "vector") != 0 && qv_rng_below(r, 2)) continue;   /* k, ef, nprobe: optional */
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
        } else {
            p += sprintf(p, "%u", (unsigned)qv_rng_below(r, 1000));
        }
    }
    if (qv_rng_below(r, 3) == 0) p += sprintf(p, ",\"with_payload\":%s", qv_rng_below(r, 2) ? "true" : "false");
    p += sprintf(p, "%s}%s", ws(r), ws(r));
    return s;
}

START_TEST(test_scan_random_bodies)
{
    qv_rng r;
    qv_rng_seed(&r, 101);
    int n = sanitized() ? 300 : 3000;
    for (int it = 0; it < n; it++) {
        uint32_t dim = 1 + (uint32_t)qv_rng_below(&r, it % 10 == 0 ? 1536 : 200);
        char *body = random_body(&r, dim);
        check_body(body, dim, 1);
        free(body);
    }
}
END_TEST

/* Number tokens one by one, as a one-dimensional vector: the scanner must take what the
 * general path takes (except the few it leaves to it) and read the same float. */
START_TEST(test_scan_numbers)
{
    static const struct { const char *tok; int take; } cases[] = {
        {"0", 1}, {"-0", 1}, {"0.0", 1}, {"-0.0", 1}, {"1", 1}, {"-1", 1}, {"77.0", 1},
        {"0.1", 1}, {"0.30000000000000004", 1}, {"1e22", 1}, {"1e23", 1}, {"1E-22", 1},
        {"123e-22", 1}, {"1e-400", 1}, {"4.9e-324", 1}, {"1e-45", 1}, {"1.4e-45", 1},
        {"3.4028234e38", 1}, {"-3.4028234e+38", 1}, {"3.40282347e38", 0}, {"3.4028235e38", 0},
        {"1e39", 0}, {"1.7976931348623157e308", 0}, {"1e309", 0}, {"123456789012345678", 1},
        {"-123456789012345678", 1}, {"1234567890123456789", -1}, {"99999999999999999999", 0},
        {"9007199254740993", 1}, {"9007199254740993.0", 1}, {"9007199254740993e-5", 1},
        {"0.000000000000000000000000000000000001", 1}, {"12345678901234567890.5", 1},
        {"1.00000000000000011102230246251565404236316680908203125", 1},
        {"0.1000000000000000055511151231257827021181583404541015625000000001", -1},
        {"2.5e-5", 1}, {"1e0", 1}, {"1e+0", 1}, {"1e-0", 1}, {"0e10", 1}, {"0e-99999", 1},
        {"1e99999999999", 0}, {"1e-99999999999", 1}, {"00", 0}, {"01", 0}, {"-01", 0},
        {"1.", 0}, {".5", 0}, {"+1", 0}, {"--1", 0}, {"-", 0}, {"1e", 0}, {"1e+", 0},
        {"1.e5", 0}, {"0x10", 0}, {"NaN", 0}, {"Infinity", 0}, {"-Infinity", 0}, {"1_000", 0},
        {"\"1\"", 0}, {"true", 0}, {"null", 0}, {"[1]", 0}, {"1 2", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"vector\":[%s]}", cases[i].tok);
        float b = 0;
        srv_fast_search fb;
        int want = ref_parse(body, strlen(body), 1, &b, &fb);
        int got = check_body(body, 1, 0);
        if (cases[i].take == 1) {
            ck_assert_msg(want == 1, "reference refuses %s (the table is wrong)", cases[i].tok);
            ck_assert_msg(got == 1, "fast path refused the number %s", cases[i].tok);
        } else if (cases[i].take == 0) {
            ck_assert_msg(got == 0, "fast path took the bad number %s", cases[i].tok);
        }
    }
}
END_TEST

START_TEST(test_scan_refuses)
{
    static const char *const bodies[] = {
        "", " ", "{}", "[]", "null", "{\"vector\":[1,2]}", "{\"vector\":[1,2,3,4]}",
        "{\"vector\":[1,2,3],}", "{\"vector\":[1,2,3]} x", "{\"vector\":[1,2,3]}}",
        "{\"vector\":[1,2,3]", "{\"vector\":[1,,2,3]}", "{\"vector\":[1 2 3]}",
        "{\"vector\":[1,2,3,]}", "{\"vector\":[,1,2,3]}", "{\"vector\":1}",
        "{\"vector\":\"1,2,3\"}", "{\"vector\":null}", "{\"k\":5}",
        "{\"vector\":[1,2,3],\"vector\":[1,2,3]}", "{\"vector\":[1,2,3],\"k\":1,\"k\":2}",
        "{\"vector\":[1,2,3],\"filter\":null}", "{\"vector\":[1,2,3],\"filter\":{}}",
        "{\"vector\":[1,2,3],\"with_payload\":tru}", "{\"vector\":[1,2,3],\"with_payload\":null}",
        "{\"vector\":[1,2,3],\"with_payload\":0}", "{\"vector\":[1,2,3],\"extra\":1}",
        "{\"Vector\":[1,2,3]}", "{\"vec\\u0074or\":[1,2,3]}", "{\"vector\" [1,2,3]}",
        "{vector:[1,2,3]}", "{'vector':[1,2,3]}", "{\"vector\":[1,2,3],\"k\":0}",
        "{\"vector\":[1,2,3],\"k\":1025}", "{\"vector\":[1,2,3],\"k\":1.0}",
        "{\"vector\":[1,2,3],\"k\":-1}", "{\"vector\":[1,2,3],\"k\":null}",
        "{\"vector\":[1,2,3],\"k\":\"5\"}", "{\"vector\":[1,2,3],\"k\":1e1}",
        "{\"vector\":[1,2,3],\"ef\":100001}", "{\"vector\":[1,2,3],\"nprobe\":99999999999}",
        "{\"vector\":[1,2,3],\"k\":01}", "\xef\xbb\xbf{\"vector\":[1,2,3]}",
        "{\"vector\":[1,2,3]}\x00", "{\"vector\":[1,2,\x00 3]}", "{\f\"vector\":[1,2,3]}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        float v[4];
        srv_fast_search fs;
        /* the two bodies with a NUL byte are one byte longer than strlen says */
        size_t len = strlen(bodies[i]) + (i >= sizeof bodies / sizeof bodies[0] - 3 &&
                                           i < sizeof bodies / sizeof bodies[0] - 1);
        ck_assert_msg(srv_scan_search(bodies[i], len, 3, v, &fs) == 0, "took: %s", bodies[i]);
    }
    float v[3];
    srv_fast_search fs;
    const char *ok = "{\"vector\":[1,2,3],\"k\":1024,\"ef\":100000,\"nprobe\":0,\"with_payload\":false}";
    ck_assert_int_eq(srv_scan_search(ok, strlen(ok), 3, v, &fs), 1);
    ck_assert_uint_eq(fs.k, 1024);
    ck_assert_uint_eq(fs.ef, QV_MAX_EF);
    ck_assert_int_eq(fs.with_payload, 0);
    ck_assert(v[0] == 1 && v[1] == 2 && v[2] == 3);
    const char *wp = "{\"with_payload\":true,\"vector\":[1,2,3]}";
    ck_assert_int_eq(srv_scan_search(wp, strlen(wp), 3, v, &fs), 1);
    ck_assert_int_eq(fs.with_payload, 1);
    /* the length given counts, not a terminating NUL: a prefix of a valid body is not one */
    ck_assert_int_eq(srv_scan_search(ok, strlen(ok) - 1, 3, v, &fs), 0);
}
END_TEST

/* Random edits of valid bodies: whatever the scanner still takes, the general path must
 * take too, with the same values. */
START_TEST(test_scan_mutations)
{
    static const char alphabet[] = "{}[],:\" 0123456789.eE+-ktrufalsnvecopbwhy_\\\n";
    qv_rng r;
    qv_rng_seed(&r, 202);
    int n = sanitized() ? 3000 : 40000, taken = 0;
    for (int it = 0; it < n; it++) {
        uint32_t dim = 1 + (uint32_t)qv_rng_below(&r, 4);
        char *body = random_body(&r, dim);
        size_t len = strlen(body);
        char *m = malloc(len + 8);
        memcpy(m, body, len + 1);
        int edits = 1 + (int)qv_rng_below(&r, 3);
        for (int e = 0; e < edits; e++) {
            size_t at = qv_rng_below(&r, len + 1);
            char c = alphabet[qv_rng_below(&r, sizeof alphabet - 1)];
            switch (qv_rng_below(&r, 3)) {
            case 0: if (at < len) m[at] = c; break;                                  /* replace */
            case 1: memmove(m + at + 1, m + at, len - at + 1); m[at] = c; len++; break;  /* insert */
            default: if (at < len) { memmove(m + at, m + at + 1, len - at); len--; }  /* delete */
            }
        }
        taken += check_body(m, dim, 0);
        free(m);
        free(body);
    }
    /* some edits keep the body valid (a digit for a digit); the check above ran on them */
    ck_assert_int_gt(taken, n / 50);
}
END_TEST

/* ---- batches ----------------------------------------------------------------------------- */

/* The general path's reading of a batch body: 1 (values in vecs/opts), 0 refused, -1
 * accepted but not a plain batch (a filter somewhere). */
static int ref_parse_batch(const char *body, size_t len, uint32_t dim, float *vecs, srv_fast_search *opts,
                           size_t *nq)
{
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    int rc = 0;
    json_t *a = o && json_is_object(o) && json_object_size(o) == 1 ? json_object_get(o, "searches") : NULL;
    if (!a || !json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > SRV_MAX_BATCH) goto out;
    rc = 1;
    for (size_t i = 0; i < json_array_size(a); i++) {
        char *one = json_dumps(json_array_get(a, i), JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
        int r1 = ref_parse(one, strlen(one), dim, vecs + i * dim, &opts[i]);
        free(one);
        if (r1 == 0) { rc = 0; break; }
        if (r1 < 0) rc = -1;
    }
    *nq = json_array_size(a);
out:
    json_decref(o);
    return rc;
}

static int check_batch_body(const char *body, uint32_t dim, int must_take)
{
    float *va = NULL, *vb = calloc((size_t)SRV_MAX_BATCH * dim + 1, sizeof *vb);
    srv_fast_search *oa = NULL, *ob = calloc(SRV_MAX_BATCH + 1, sizeof *ob);
    size_t na = 0, nb = 0;
    int got = srv_scan_search_batch(body, strlen(body), dim, &va, &oa, &na);
    int want = ref_parse_batch(body, strlen(body), dim, vb, ob, &nb);
    if (got) {
        ck_assert_msg(want == 1, "fast path took a batch the general path %s: %.200s",
                      want == 0 ? "refuses" : "handles otherwise", body);
        ck_assert_uint_eq(na, nb);
        ck_assert_msg(memcmp(va, vb, na * dim * sizeof *va) == 0, "batch vectors differ: %.200s", body);
        for (size_t i = 0; i < na; i++)
            ck_assert(oa[i].k == ob[i].k && oa[i].ef == ob[i].ef && oa[i].nprobe == ob[i].nprobe &&
                      oa[i].with_payload == ob[i].with_payload);
    } else {
        ck_assert_ptr_null(va);
        ck_assert_msg(!must_take, "fast path refused a plain batch: %.200s", body);
    }
    free(va);
    free(oa);
    free(vb);
    free(ob);
    return got;
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

START_TEST(test_scan_batches)
{
    qv_rng r;
    qv_rng_seed(&r, 606);
    int n = sanitized() ? 100 : 1000;
    for (int it = 0; it < n; it++) {
        uint32_t dim = 1 + (uint32_t)qv_rng_below(&r, 40);
        char *b = random_batch(&r, dim, 1 + (int)qv_rng_below(&r, 20));
        check_batch_body(b, dim, 1);
        free(b);
    }
    /* random edits: whatever the scanner still takes, the general path takes alike */
    static const char alphabet[] = "{}[],:\" 0123456789.eE+-ktrufalsnvecopbwhy_\\\n";
    int taken = 0, m = sanitized() ? 1000 : 10000;
    for (int it = 0; it < m; it++) {
        uint32_t dim = 1 + (uint32_t)qv_rng_below(&r, 3);
        char *b = random_batch(&r, dim, 1 + (int)qv_rng_below(&r, 3));
        size_t len = strlen(b);
        b = realloc(b, len + 8);
        size_t at = qv_rng_below(&r, len + 1);
        char c = alphabet[qv_rng_below(&r, sizeof alphabet - 1)];
        switch (qv_rng_below(&r, 3)) {
        case 0: if (at < len) b[at] = c; break;
        case 1: memmove(b + at + 1, b + at, len - at + 1); b[at] = c; break;
        default: if (at < len) memmove(b + at, b + at + 1, len - at); break;
        }
        taken += check_batch_body(b, dim, 0);
        free(b);
    }
    ck_assert_int_gt(taken, m / 50);
    static const char *const refused[] = {
        "", "{}", "{\"searches\":[]}", "{\"searches\":{}}", "{\"searches\":null}",
        "{\"searches\":[{\"vector\":[1]}],\"k\":1}", "{\"k\":1,\"searches\":[{\"vector\":[1]}]}",
        "{\"searches\":[{\"vector\":[1]}]} x", "{\"searches\":[{\"vector\":[1]},]}",
        "{\"searches\":[{\"vector\":[1]},{\"vector\":[1],\"filter\":null}]}",
        "{\"searches\":[{\"vector\":[1,2]}]}", "{\"search\\u0065s\":[{\"vector\":[1]}]}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        ck_assert_msg(check_batch_body(refused[i], 1, 0) == 0, "took: %s", refused[i]);
    /* the limit: SRV_MAX_BATCH searches are taken, one more is left to the general path */
    size_t cap = (SRV_MAX_BATCH + 1) * 32 + 32;
    char *big = malloc(cap), *p = big;
    p += sprintf(p, "{\"searches\":[");
    for (unsigned i = 0; i < SRV_MAX_BATCH; i++) p += sprintf(p, "%s{\"vector\":[%u]}", i ? "," : "", i);
    strcpy(p, "]}");
    ck_assert_int_eq(check_batch_body(big, 1, 1), 1);
    strcpy(p, ",{\"vector\":[1]}]}");
    ck_assert_int_eq(check_batch_body(big, 1, 0), 0);
    free(big);
}
END_TEST

/* ---- the reply ---------------------------------------------------------------------- */

/* The reply as the general path builds it (handlers.c: hits_value, took_value). */
static char *ref_reply(const qv_hit *hits, size_t n, uint64_t took_us, const qv_search_stats *st)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:f}", "id", (json_int_t)hits[i].id, "score",
                                             (double)hits[i].score));
    json_t *took = json_pack("{s:s,s:I,s:I,s:I,s:[],s:I,s:I,s:b}", "plan", st->plan ? st->plan : "none",
                             "live", (json_int_t)st->live, "allowed", (json_int_t)st->allowed,
                             "conditions", (json_int_t)st->conditions, "unindexed",
                             "payloads_read", (json_int_t)st->payloads_read,
                             "filter_us", (json_int_t)st->filter_us, "cached", (int)(st->cached != 0));
    json_t *o = json_pack("{s:o,s:I,s:o}", "hits", arr, "took_us", (json_int_t)took_us, "took", took);
    ck_assert_ptr_nonnull(o);
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(o);
    return s;
}

static void check_reply(const qv_hit *hits, size_t n, uint64_t took_us, const qv_search_stats *st)
{
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(srv_format_search_reply(b, NULL, hits, n, took_us, st), 0);
    size_t len = evbuffer_get_length(b);
    char *got = malloc(len + 1);
    evbuffer_remove(b, got, len);
    got[len] = 0;
    char *want = ref_reply(hits, n, took_us, st);
    if (strcmp(got, want) != 0) {
        size_t i = 0;
        while (got[i] && got[i] == want[i]) i++;
        size_t from = i > 40 ? i - 40 : 0;
        ck_assert_msg(0, "reply differs at byte %zu:\n  got  ...%.80s\n  want ...%.80s", i, got + from, want + from);
    }
    free(got);
    free(want);
    evbuffer_free(b);
}

START_TEST(test_reply_matches_jansson)
{
    qv_rng r;
    qv_rng_seed(&r, 303);
    enum { N = 1000 };
    qv_hit *hits = malloc(N * sizeof *hits);
    qv_search_stats st = {.live = 100000, .allowed = 100000, .plan = "none"};
    /* ordinary scores: squared distances, similarities, integers */
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
    check_reply(hits, N, 38, &st);
    check_reply(hits, 0, 0, &st);
    /* every magnitude: random bit patterns of finite floats, both signs */
    int rounds = sanitized() ? 20 : 400;
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < N; i++) {
            uint32_t bits;
            do bits = (uint32_t)qv_rng_next(&r); while (((bits >> 23) & 0xff) == 0xff);
            memcpy(&hits[i].score, &bits, sizeof bits);
        }
        check_reply(hits, N, (uint64_t)round, &st);
    }
    /* decimal ties and carries: short integers and binary fractions with 10+ digits,
     * 999999999.5-like values, powers of two and of ten, zeros, the extremes */
    int i = 0;
    for (int e = -149; e <= 127 && i < N; e++) hits[i++].score = ldexpf(1.0f, e);
    for (int e = -45; e <= 38 && i < N; e++) hits[i++].score = (float)pow(10, e);
    for (uint32_t v = 999999990; v < 1000000010 && i < N; v++) hits[i++].score = (float)v;
    for (uint32_t v = 1; v < 200 && i < N; v++) hits[i++].score = (float)v / 1024.0f + 1e9f;
    float specials[] = {0.0f, -0.0f, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX, FLT_TRUE_MIN, 1e-5f,
                        9.9999997e-5f, 1e-4f, 123456789.0f, 1234567890.0f, 0.5f, 2.5f, 16777217.0f,
                        33554436.0f, 4.5e-44f, 1.0e-6f, 1.0e37f};
    for (size_t j = 0; j < sizeof specials / sizeof specials[0] && i < N; j++) hits[i++].score = specials[j];
    while (i < N) hits[i++].score = (float)qv_rng_below(&r, 2000000000u);
    check_reply(hits, N, 1, &st);
    /* the planner's fields come through */
    qv_search_stats st2 = {.live = 7, .allowed = 3, .conditions = 2, .payloads_read = 11,
                           .filter_us = 99, .plan = "exact", .cached = 1};
    check_reply(hits, 3, 5, &st2);
    free(hits);
}
END_TEST

START_TEST(test_reply_leaves_the_rest)
{
    qv_hit h = {1, NAN};
    qv_search_stats st = {.plan = "none"};
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(srv_format_search_reply(b, NULL, &h, 1, 0, &st), -1);
    h.score = INFINITY;
    ck_assert_int_eq(srv_format_search_reply(b, NULL, &h, 1, 0, &st), -1);
    h.score = 1;
    strcpy(st.unindexed_keys, "lang");
    ck_assert_int_eq(srv_format_search_reply(b, NULL, &h, 1, 0, &st), -1);
    st.unindexed_keys[0] = 0;
    st.plan = "a\"b";
    ck_assert_int_eq(srv_format_search_reply(b, NULL, &h, 1, 0, &st), -1);
    ck_assert_uint_eq(evbuffer_get_length(b), 0);               /* nothing half-written */
    evbuffer_free(b);
}
END_TEST

/* ---- the reply writer (json_out.c) ----------------------------------------------------- */

static char *write_tree(const json_t *v, int exact)
{
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(srv_json_write(b, v, exact), 0);
    size_t len = evbuffer_get_length(b);
    char *s = malloc(len + 1);
    evbuffer_remove(b, s, len);
    s[len] = 0;
    evbuffer_free(b);
    return s;
}

/* A random tree of every JSON type; keys never "payload" unless payloads is set. */
static json_t *random_tree(qv_rng *r, int depth, int payloads)
{
    static const char *const strs[] = {"", "plain", "quote\" back\\slash", "tab\tnl\ncr\r",
                                       "\x01\x1f\x7f ctl", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
                                       "slash / </script>", "\b\f"};
    int kind = (int)qv_rng_below(r, depth > 3 ? 6 : 8);
    switch (kind) {
    case 0: return json_integer((json_int_t)(qv_rng_next(r) >> qv_rng_below(r, 64)) * (qv_rng_below(r, 2) ? 1 : -1));
    case 1: {                                              /* a float, as scores are */
        float f = (float)((qv_rng_uniform(r) - 0.5) * pow(10, (double)qv_rng_below(r, 20) - 10));
        return json_real(f);
    }
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
        for (int i = (int)qv_rng_below(r, 5); i > 0; i--) json_array_append_new(a, random_tree(r, depth + 1, payloads));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (int i = (int)qv_rng_below(r, 5); i > 0; i--) {
            char key[32];
            if (payloads && qv_rng_below(r, 4) == 0) snprintf(key, sizeof key, "payload");
            else snprintf(key, sizeof key, "%s%d", strs[qv_rng_below(r, 8)], (int)qv_rng_below(r, 100));
            json_object_set_new(o, key, random_tree(r, depth + 1, payloads));
        }
        return o;
    }
    }
}

/* Without payloads the writer is json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(9)). */
START_TEST(test_json_write_matches_jansson)
{
    qv_rng r;
    qv_rng_seed(&r, 404);
    int n = sanitized() ? 300 : 3000;
    for (int it = 0; it < n; it++) {
        json_t *t = random_tree(&r, 0, 0);
        char *got = write_tree(t, 0);
        char *want = json_dumps(t, JSON_COMPACT | JSON_REAL_PRECISION(9) | JSON_ENCODE_ANY);
        ck_assert_msg(strcmp(got, want) == 0, "writer and jansson differ:\n  %.300s\n  %.300s", got, want);
        free(got);
        free(want);
        json_decref(t);
    }
}
END_TEST

/* Compare a written tree, read back, with the original: reals under "payload" (or
 * everywhere, exact) must be the very same doubles. Returns 1 when equal. */
static int same_after_reading(const json_t *a, const json_t *b, int exact)
{
    if (json_typeof(a) != json_typeof(b)) return 0;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        if (json_object_size(a) != json_object_size(b)) return 0;
        json_object_foreach((json_t *)a, key, v) {
            json_t *w = json_object_get(b, key);
            if (!w || !same_after_reading(v, w, exact || strcmp(key, "payload") == 0)) return 0;
        }
        return 1;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same_after_reading(json_array_get(a, i), json_array_get(b, i), exact)) return 0;
        return 1;
    case JSON_REAL: {
        double x = json_real_value(a), y = json_real_value(b);
        if (exact) return memcmp(&x, &y, sizeof x) == 0;
        return fabs(x - y) <= fabs(x) * 1e-8;              /* 9 digits outside payloads */
    }
    default:
        return json_equal((json_t *)a, (json_t *)b);
    }
}

START_TEST(test_json_write_payloads_exact)
{
    qv_rng r;
    qv_rng_seed(&r, 505);
    int n = sanitized() ? 300 : 3000;
    for (int it = 0; it < n; it++) {
        json_t *t = random_tree(&r, 0, 1);
        char *got = write_tree(t, 0);
        json_t *back = json_loads(got, JSON_DECODE_ANY, NULL);
        ck_assert_msg(back && same_after_reading(t, back, 0), "payload numbers changed: %.300s", got);
        json_decref(back);
        free(got);
        json_decref(t);
        /* and every real exact in exact mode */
        t = random_tree(&r, 0, 0);
        got = write_tree(t, 1);
        back = json_loads(got, JSON_DECODE_ANY, NULL);
        ck_assert_msg(back && same_after_reading(t, back, 1), "exact mode changed a number: %.300s", got);
        json_decref(back);
        free(got);
        json_decref(t);
    }
    /* the shortest exact form, in jansson's style */
    static const struct { double v; const char *text; } forms[] = {
        {1732694400.123, "1732694400.123"}, {0.1, "0.1"}, {5.0, "5.0"}, {-0.0, "-0.0"},
        {1e300, "1e300"}, {1e-7, "1e-7"}, {123456789012345678.0, "1.2345678901234568e17"},
        {0.30000000000000004, "0.30000000000000004"}, {2.5e-308, "2.5e-308"}, {4.9e-324, "5e-324"},
        {-1.5e-323, "-1.5e-323"}, {2.2250738585072014e-308, "2.2250738585072014e-308"},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char buf[40];
        ck_assert_int_gt(srv_fmt_double(buf, sizeof buf, forms[i].v), 0);
        ck_assert_str_eq(buf, forms[i].text);
    }
    /* a search hit: the score keeps float precision, the payload every digit */
    json_t *hit = json_pack("{s:I,s:f,s:{s:f,s:f,s:[f]}}", (const char *)"id", (json_int_t)7, "score", (double)0.998752356f,
                            "payload", "ts", 1732694400.123, "price", 0.1, "v", 2.0 / 3.0);
    char *got = write_tree(hit, 0);
    ck_assert_str_eq(got, "{\"id\":7,\"score\":0.998752356,\"payload\":{\"ts\":1732694400.123,"
                          "\"price\":0.1,\"v\":[0.6666666666666666]}}");
    free(got);
    json_decref(hit);
}
END_TEST

Suite *qv_server_fast_suite(void)
{
    Suite *s = suite_create("server_fast");
    TCase *tc = tcase_create("server_fast");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_scan_random_bodies);
    tcase_add_test(tc, test_scan_numbers);
    tcase_add_test(tc, test_scan_refuses);
    tcase_add_test(tc, test_scan_mutations);
    tcase_add_test(tc, test_scan_batches);
    tcase_add_test(tc, test_reply_matches_jansson);
    tcase_add_test(tc, test_reply_leaves_the_rest);
    tcase_add_test(tc, test_json_write_matches_jansson);
    tcase_add_test(tc, test_json_write_payloads_exact);
    suite_add_tcase(s, tc);
    return s;
}
