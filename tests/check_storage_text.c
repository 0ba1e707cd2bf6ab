/*
 * tests/check_storage_text.c -- full-text search (issue 22): the tokenizer, BM25 top-k
 * against a double-precision reference written here (FTS5's formula, storage/text.h) on
 * a few hundred documents through upserts, replacements, deletes and a reopen, the
 * "text" match filter against qv_filter_eval, RRF and weighted fusion against a
 * straightforward reference, the hybrid search, bad input, and searches beside writers.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

static char *tmp;
static void setup(void) { tmp = make_tmpdir("qv-text"); }
static void teardown(void)
{
    rm_rf(tmp);
    free(tmp);
    tmp = NULL;
}


/* ---- tokenizer ------------------------------------------------------------------------ */

static void expect_tokens(const char *text, const qv_text_options *o, const char *const *want, size_t nwant)
{
    char **t = NULL;
    size_t n = 0;
    QV_CK(qv_text_tokenize(text, o, &t, &n));
    ck_assert_msg(n == nwant, "'%s': %zu tokens, want %zu", text, n, nwant);
    for (size_t i = 0; i < n; i++) ck_assert_msg(strcmp(t[i], want[i]) == 0, "'%s' token %zu: '%s', want '%s'", text, i, t[i], want[i]);
    qv_free_strings(t, n);
}

START_TEST(test_tokenizer)
{
    qv_text_options o;
    qv_text_options_init(&o);
    const char *w1[] = {"run", "connect", "librari", "hello", "world", "2024"};
    expect_tokens("Running connections; LIBRARIES -- Hello,World! 2024", &o, w1, 6);
    o.language = "none";
    const char *w2[] = {"école", "straße", "東京", "ab", "cd", "x"};
    expect_tokens("ÉCOLE Straße 東京 ab\xff" "cd\xc3(x", &o, w2, 6);   /* invalid UTF-8 separates */
    char longw[200];
    memset(longw, 'a', 100);
    strcpy(longw + 100, " short");
    const char *w3[] = {"short"};
    expect_tokens(longw, &o, w3, 1);                                 /* > 64 bytes: dropped */
    o.language = NULL;
    o.stopwords = 1;
    const char *w4[] = {"quick", "fox"};
    expect_tokens("The quick fox of the", &o, w4, 2);
    char **t = (char **)1;
    size_t n = 7;
    QV_CK(qv_text_tokenize("", NULL, &t, &n));
    ck_assert(t == NULL && n == 0);
    o.language = "klingon";
    QV_CK_FAIL(qv_text_tokenize("x", &o, &t, &n), QV_EINVAL);
    QV_CK_FAIL(qv_text_tokenize(NULL, NULL, &t, &n), QV_EINVAL);
}
END_TEST

/* ---- BM25 against a reference ------------------------------------------------------------ */

#define NDOC 300
#define VOCAB 40
static const char *const vocab[VOCAB] = {
    "vector", "search", "engine", "library", "python", "module", "binding", "graph", "index", "server",
    "client", "database", "storage", "network", "tool", "utility", "kernel", "driver", "font", "theme",
    "game", "music", "audio", "video", "image", "editor", "compiler", "debugger", "shell", "terminal",
    "document", "manual", "package", "data", "files", "runtime", "plugin", "support", "development", "headers"};

typedef struct {
    int alive;
    char text[512];
    char **tok;                    /* tokens (qv_text_tokenize) */
    size_t ntok;
} rdoc;

static void doc_set(rdoc *d, const char *text)
{
    qv_free_strings(d->tok, d->ntok);
    snprintf(d->text, sizeof d->text, "%s", text);
    QV_CK(qv_text_tokenize(d->text, NULL, &d->tok, &d->ntok));
    d->alive = 1;
}

static void random_text(char *buf, size_t len, uint64_t *s)
{
    size_t n = 1 + test_rand(s) % 25, at = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && at + 20 < len; i++) {
        /* skewed: low word numbers are common, as in real text */
        size_t w = (size_t)(test_rand(s) % VOCAB) * (test_rand(s) % VOCAB) / VOCAB;
        at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? (test_rand(s) % 4 ? " " : ", ") : "", vocab[w]);
    }
}

typedef struct { uint64_t id; double score; } rhit;
static int cmp_rhit(const void *a, const void *b)
{
    const rhit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* FTS5 bm25() in double: sum over query tokens (with repeats) of idf * tf(k1+1)/(...). */
static size_t ref_bm25(const rdoc *docs, size_t n, const char *query, double k1, double b, int even_only,
                       rhit *out)
{
    char **q = NULL;
    size_t nq = 0, N = 0, m = 0;
    double total = 0;
    QV_CK(qv_text_tokenize(query, NULL, &q, &nq));
    for (size_t i = 0; i < n; i++)
        if (docs[i].alive) { N++; total += (double)docs[i].ntok; }
    double avgdl = total / (double)N;
    double *idf = calloc(nq + 1, sizeof *idf);
    for (size_t j = 0; j < nq; j++) {
        double df = 0;
        for (size_t i = 0; i < n; i++) {
            if (!docs[i].alive) continue;
            for (size_t t = 0; t < docs[i].ntok; t++)
                if (strcmp(docs[i].tok[t], q[j]) == 0) { df++; break; }
        }
        idf[j] = log(((double)N - df + 0.5) / (df + 0.5));
        if (idf[j] <= 0) idf[j] = 1e-6;
    }
    for (size_t i = 0; i < n; i++) {
        if (!docs[i].alive || (even_only && i % 2)) continue;
        double s = 0;
        int any = 0;
        for (size_t j = 0; j < nq; j++) {
            double tf = 0;
            for (size_t t = 0; t < docs[i].ntok; t++) tf += strcmp(docs[i].tok[t], q[j]) == 0;
            if (tf == 0) continue;
            any = 1;
            s += idf[j] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * (double)docs[i].ntok / avgdl));
        }
        if (any) out[m++] = (rhit){i, s};
    }
    qsort(out, m, sizeof *out, cmp_rhit);
    free(idf);
    qv_free_strings(q, nq);
    return m;
}

static void check_queries(qv_coll *c, const rdoc *docs, uint64_t seed, int nqueries)
{
    rhit *want = calloc(NDOC, sizeof *want);
    qv_hit hits[10];
    uint64_t s = seed;
    qv_filter *even = NULL;
    QV_CK(qv_filter_parse("{\"must\":[{\"key\":\"even\",\"match\":true}]}", &even));
    for (int qi = 0; qi < nqueries; qi++) {
        char query[128];
        size_t nw = 1 + test_rand(&s) % 4, at = 0;
        for (size_t i = 0; i < nw; i++) at += (size_t)snprintf(query + at, sizeof query - at, "%s ", vocab[test_rand(&s) % VOCAB]);
        double k1 = qi % 3 == 0 ? 1.2 : qi % 3 == 1 ? 0.5 : 2.0, b = qi % 3 == 0 ? 0.75 : qi % 3 == 1 ? 0.0 : 1.0;
        int filtered = qi % 4 == 3;
        size_t m = ref_bm25(docs, NDOC, query, k1, b, filtered, want), n = 0;
        qv_text_params p;
        qv_text_params_init(&p, 10);
        p.field = "body";
        p.query = query;
        p.k1 = k1;
        p.b = b;
        p.filter = filtered ? even : NULL;
        QV_CK(qv_text_search(c, &p, hits, &n));
        ck_assert_msg(n == (m < 10 ? m : 10), "query '%s': %zu hits, reference %zu", query, n, m);
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(fabs(hits[i].score - want[i].score) <= 1e-5 * fmax(1, fabs(want[i].score)),
                          "query '%s' rank %zu: score %.7f, reference %.7f", query, i, hits[i].score, want[i].score);
            /* ids agree except among scores tied within float precision */
            if (hits[i].id != want[i].id)
                ck_assert_msg(fabs(want[i].score - hits[i].score) < 1e-5 && i + 1 < m &&
                                  (fabs(want[i + 1].score - want[i].score) < 1e-5 ||
                                   (i && fabs(want[i - 1].score - want[i].score) < 1e-5)),
                              "query '%s' rank %zu: id %llu, reference %llu", query, i,
                              (unsigned long long)hits[i].id, (unsigned long long)want[i].id);
        }
    }
    qv_filter_free(even);
    free(want);
}

static void upsert_doc(qv_coll *c, uint64_t id, const char *text, uint64_t *s)
{
    float v[4];
    for (int i = 0; i < 4; i++) v[i] = (float)(test_rand(s) % 1000) / 1000.0f + 0.001f;
    char payload[700];
    snprintf(payload, sizeof payload, "{\"body\":\"%s\",\"even\":%s}", text, id % 2 ? "false" : "true");
    const char *pl = payload;
    QV_CK(qv_upsert(c, 1, &id, v, &pl));
}

START_TEST(test_bm25_matches_reference)
{
    qv_db *db = open_db_nosync(tmp);
    qv_coll *c = NULL;
    qv_collection_config cfg = {0};
    rdoc *docs = calloc(NDOC, sizeof *docs);
    uint64_t s = 42;
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 4, QV_METRIC_L2);
    cfg.payload_index = "{\"body\":\"text\",\"even\":\"bool\"}";
    QV_CK(qv_collection_create(db, "t", &cfg, &c));
    for (uint64_t i = 0; i < NDOC; i++) {
        char text[512];
        random_text(text, sizeof text, &s);
        doc_set(&docs[i], text);
        upsert_doc(c, i, text, &s);
    }
    check_queries(c, docs, 7, 60);
    /* replace a third, delete a tenth: postings and statistics follow */
    for (uint64_t i = 0; i < NDOC; i += 3) {
        char text[512];
        random_text(text, sizeof text, &s);
        doc_set(&docs[i], text);
        upsert_doc(c, i, text, &s);
    }
    for (uint64_t i = 5; i < NDOC; i += 10) {
        size_t nd = 0;
        QV_CK(qv_delete(c, 1, &i, &nd));
        ck_assert_uint_eq(nd, 1);
        docs[i].alive = 0;
    }
    /* a point whose body is no longer a string leaves the statistics */
    {
        uint64_t id = 1;
        float v[4] = {1, 2, 3, 4};
        const char *pl = "{\"body\":17,\"even\":false}";
        QV_CK(qv_upsert(c, 1, &id, v, &pl));
        docs[1].alive = 0;
    }
    check_queries(c, docs, 8, 60);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
    db = open_db_nosync(tmp);                            /* all of it is on disk */
    QV_CK(qv_collection_open(db, "t", &c));
    check_queries(c, docs, 9, 30);
    /* a query with no token, or with tokens no document has: no hits */
    qv_text_params p;
    qv_hit h[5];
    size_t n = 9;
    qv_text_params_init(&p, 5);
    p.field = "body";
    p.query = " ,;; ";
    QV_CK(qv_text_search(c, &p, h, &n));
    ck_assert_uint_eq(n, 0);
    p.query = "zzzunknown";
    QV_CK(qv_text_search(c, &p, h, &n));
    ck_assert_uint_eq(n, 0);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
    for (size_t i = 0; i < NDOC; i++) qv_free_strings(docs[i].tok, docs[i].ntok);
    free(docs);
}
END_TEST

/* The text filter: index answer == qv_filter_eval on each stored payload; adding the text
 * index to a collection later builds it; changing the type away drops the postings. */
START_TEST(test_text_filter)
{
    qv_db *db = open_db_nosync(tmp);
    qv_coll *c = NULL;
    qv_collection_config cfg = {0};
    uint64_t s = 99;
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 4, QV_METRIC_L2);
    QV_CK(qv_collection_create(db, "f", &cfg, &c));
    char texts[200][512];
    for (uint64_t i = 0; i < 200; i++) {
        random_text(texts[i], sizeof texts[i], &s);
        upsert_doc(c, i, texts[i], &s);
    }
    const char *queries[] = {"vector search", "Python modules", "engine", "graph index server", "nothinghere", ""};
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1) QV_CK(qv_collection_index_field(c, "body", "text", NULL, NULL));
        if (pass == 2) QV_CK(qv_collection_index_field(c, "body", "keyword", NULL, NULL));
        for (size_t qi = 0; qi < sizeof queries / sizeof queries[0]; qi++) {
            qv_filter *f = NULL;
            QV_CK(qv_filter_new(&f));
            QV_CK(qv_filter_match_text(f, QV_MUST, "body", queries[qi]));
            uint64_t ids[200];
            size_t n = 0;
            uint64_t total = 0;
            QV_CK(qv_scroll(c, f, NULL, NULL, 0, 200, ids, &n, &total));
            size_t want = 0;
            for (uint64_t i = 0; i < 200; i++) {
                char payload[700];
                int pass_ = 0;
                snprintf(payload, sizeof payload, "{\"body\":\"%s\"}", texts[i]);
                QV_CK(qv_filter_eval(f, payload, &pass_));
                if (!pass_) continue;
                ck_assert_msg(want < n && ids[want] == i, "pass %d query '%s': point %llu missing", pass, queries[qi],
                              (unsigned long long)i);
                want++;
            }
            ck_assert_msg(want == n, "pass %d query '%s': %zu points, reference %zu", pass, queries[qi], n, want);
            if (qi == 0) ck_assert_uint_gt(n, 0);
            qv_filter_free(f);
        }
        /* ranked search needs the text index */
        qv_text_params p;
        qv_hit h[3];
        size_t n = 0;
        qv_text_params_init(&p, 3);
        p.field = "body";
        p.query = "vector";
        if (pass == 1) QV_CK(qv_text_search(c, &p, h, &n));
        else QV_CK_FAIL(qv_text_search(c, &p, h, &n), QV_EINVAL);
    }
    /* JSON form round trip and errors */
    qv_filter *f = NULL;
    char *js = NULL;
    QV_CK(qv_filter_parse("{\"must\":[{\"key\":\"body\",\"match\":{\"text\":\"a b\"}}]}", &f));
    QV_CK(qv_filter_to_json(f, &js));
    ck_assert_str_eq(js, "{\"must\":[{\"key\":\"body\",\"match\":{\"text\":\"a b\"}}]}");
    qv_free(js);
    qv_filter_free(f);
    QV_CK_FAIL(qv_filter_parse("{\"must\":[{\"key\":\"body\",\"match\":{\"text\":5}}]}", &f), QV_EINVAL);
    QV_CK_FAIL(qv_filter_parse("{\"must\":[{\"key\":\"body\",\"match\":{\"phrase\":\"a b\"}}]}", &f), QV_EINVAL);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
}
END_TEST

START_TEST(test_bad_input)
{
    qv_db *db = open_db_nosync(tmp);
    qv_coll *c = NULL;
    qv_collection_config cfg = {0};
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 4, QV_METRIC_L2);
    cfg.payload_index = "{\"body\":\"text\",\"tag\":\"keyword\"}";
    QV_CK(qv_collection_create(db, "b", &cfg, &c));
    qv_text_params p;
    qv_hit h[4];
    size_t n = 0;
    qv_text_params_init(&p, 4);
    p.field = "body";
    p.query = "x";
    QV_CK(qv_text_search(c, &p, h, &n));           /* empty collection */
    ck_assert_uint_eq(n, 0);
    p.k = 0;
    QV_CK_FAIL(qv_text_search(c, &p, h, &n), QV_EINVAL);
    p.k = QV_MAX_K + 1;
    QV_CK_FAIL(qv_text_search(c, &p, h, &n), QV_EINVAL);
    p.k = 4;
    p.b = 1.5;
    QV_CK_FAIL(qv_text_search(c, &p, h, &n), QV_EINVAL);
    p.b = 0.75;
    p.k1 = NAN;
    QV_CK_FAIL(qv_text_search(c, &p, h, &n), QV_EINVAL);
    p.k1 = 1.2;
    p.field = "tag";
    QV_CK_FAIL(qv_text_search(c, &p, h, &n), QV_EINVAL);
    p.field = "nosuch";
    QV_CK_FAIL(qv_text_search(c, &p, h, &n), QV_EINVAL);
    p.field = NULL;
    QV_CK_FAIL(qv_text_search(c, &p, h, &n), QV_EINVAL);
    QV_CK_FAIL(qv_text_search(NULL, &p, h, &n), QV_EINVAL);
    QV_CK_FAIL(qv_collection_index_field(c, "body", "fulltext", NULL, NULL), QV_EINVAL);
    /* payloads with odd text: invalid UTF-8, huge, non-string */
    uint64_t ids[3] = {1, 2, 3};
    float v[12] = {0};
    v[0] = v[4] = v[8] = 1;
    char *big = malloc(300000);
    strcpy(big, "{\"body\":\"");
    for (size_t i = 9; i < 299990; i++) big[i] = (char)('a' + (i % 7 == 0 ? ' ' - 'a' : (int)(i % 26)));
    strcpy(big + 299990, "\"}");
    const char *pl[3] = {"{\"body\":\"caf\\u00e9 \\ud83d\\ude00 ok\"}", big, "{\"body\":[\"a\",\"b\"]}"};
    QV_CK(qv_upsert(c, 3, ids, v, pl));
    free(big);
    p.field = "body";
    p.query = "ok café";
    QV_CK(qv_text_search(c, &p, h, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(h[0].id, 1);
    qv_fusion_params fp;
    qv_fusion_params_init(&fp, QV_FUSION_RRF, 0);
    qv_search_params sp;
    qv_search_params_init(&sp, 4);
    QV_CK_FAIL(qv_hybrid_search(c, v, &sp, &p, &fp, NULL, h, &n), QV_EINVAL);
    qv_fusion_params_init(&fp, (qv_fusion_kind)7, 4);
    QV_CK_FAIL(qv_hybrid_search(c, v, &sp, &p, &fp, NULL, h, &n), QV_EINVAL);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
}
END_TEST

/* ---- fusion --------------------------------------------------------------------------- */

/* Reference: for each distinct id, sum over lists of its contribution at its first place. */
static size_t ref_fuse(int rrf, const qv_hit *const *lists, const size_t *lens, size_t nl, const int *asc,
                       const double *w, rhit *out)
{
    size_t m = 0;
    for (size_t l = 0; l < nl; l++)
        for (size_t i = 0; i < lens[l]; i++) {
            size_t j;
            for (j = 0; j < m && out[j].id != lists[l][i].id; j++) {}
            if (j < m) continue;
            out[m++] = (rhit){lists[l][i].id, 0};
        }
    for (size_t j = 0; j < m; j++)
        for (size_t l = 0; l < nl; l++) {
            double lo = INFINITY, hi = -INFINITY;
            for (size_t i = 0; i < lens[l]; i++) { lo = fmin(lo, lists[l][i].score); hi = fmax(hi, lists[l][i].score); }
            for (size_t i = 0; i < lens[l]; i++)
                if (lists[l][i].id == out[j].id) {
                    double s = lists[l][i].score;
                    out[j].score += rrf ? 1.0 / (60.0 + (double)i + 1.0)
                                        : w[l] * (hi == lo ? 1.0 : asc[l] ? (hi - s) / (hi - lo) : (s - lo) / (hi - lo));
                    break;
                }
        }
    qsort(out, m, sizeof *out, cmp_rhit);
    return m;
}

START_TEST(test_fusion_matches_reference)
{
    uint64_t s = 1234 + (uint64_t)_i;
    qv_hit a[50], b[50], c3[50], out[100];
    rhit want[150];
    size_t lens[3] = {test_rand(&s) % 50, test_rand(&s) % 50, test_rand(&s) % 50};
    qv_hit *ls[3] = {a, b, c3};
    for (int l = 0; l < 3; l++) {
        float sc = 100;
        for (size_t i = 0; i < lens[l]; i++) {
            sc -= (float)(test_rand(&s) % 100) / 10.0f;          /* descending, with ties */
            ls[l][i] = (qv_hit){test_rand(&s) % 80, l == 1 ? -sc : sc};   /* list 1: ascending (l2) */
        }
    }
    const qv_hit *const cl[3] = {a, b, c3};
    int asc[3] = {0, 1, 0};
    double w[3] = {0.5, 0.3, 0.2};
    for (int rrf = 0; rrf < 2; rrf++) {
        qv_fusion_params fp;
        size_t n = 0;
        qv_fusion_params_init(&fp, rrf ? QV_FUSION_RRF : QV_FUSION_WEIGHTED, 20);
        QV_CK(qv_fuse(&fp, 3, cl, lens, asc, w, out, &n));
        size_t m = ref_fuse(rrf, cl, lens, 3, asc, w, want);
        ck_assert_uint_eq(n, m < 20 ? m : 20);
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(out[i].id == want[i].id, "rrf=%d rank %zu: id %llu, reference %llu", rrf, i,
                          (unsigned long long)out[i].id, (unsigned long long)want[i].id);
            ck_assert_double_eq_tol(out[i].score, want[i].score, 1e-6);
        }
    }
    qv_fusion_params fp;
    size_t n;
    qv_fusion_params_init(&fp, QV_FUSION_RRF, 0);
    QV_CK_FAIL(qv_fuse(&fp, 3, cl, lens, asc, w, out, &n), QV_EINVAL);
    qv_fusion_params_init(&fp, QV_FUSION_WEIGHTED, 5);
    double bad[3] = {1, NAN, 1};
    QV_CK_FAIL(qv_fuse(&fp, 3, cl, lens, asc, bad, out, &n), QV_EINVAL);
    QV_CK(qv_fuse(&fp, 0, NULL, NULL, NULL, NULL, out, &n));
    ck_assert_uint_eq(n, 0);
}
END_TEST

/* Hybrid = qv_fuse of the two searches it runs, with the filter on both. */
START_TEST(test_hybrid)
{
    qv_db *db = open_db_nosync(tmp);
    qv_coll *c = NULL;
    qv_collection_config cfg = {0};
    uint64_t s = 5;
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 4, QV_METRIC_L2);
    cfg.payload_index = "{\"body\":\"text\",\"even\":\"bool\"}";
    QV_CK(qv_collection_create(db, "h", &cfg, &c));
    for (uint64_t i = 0; i < 200; i++) {
        char text[512];
        random_text(text, sizeof text, &s);
        upsert_doc(c, i, text, &s);
    }
    qv_filter *even = NULL;
    QV_CK(qv_filter_parse("{\"must\":[{\"key\":\"even\",\"match\":true}]}", &even));
    float q[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    for (int rrf = 0; rrf < 2; rrf++) {
        qv_search_params sp;
        qv_text_params tp;
        qv_fusion_params fp;
        qv_hit vh[30], th[30], got[10], want[10];
        size_t nv, nt, n, nw;
        qv_search_params_init(&sp, 30);
        sp.filter = even;
        qv_text_params_init(&tp, 30);
        tp.field = "body";
        tp.query = "vector search engine";
        qv_fusion_params_init(&fp, rrf ? QV_FUSION_RRF : QV_FUSION_WEIGHTED, 10);
        QV_CK(qv_hybrid_search(c, q, &sp, &tp, &fp, NULL, got, &n));
        QV_CK(qv_search(c, q, &sp, vh, &nv));
        tp.filter = even;
        QV_CK(qv_text_search(c, &tp, th, &nt));
        const qv_hit *const ls[2] = {vh, th};
        size_t lens[2] = {nv, nt};
        int asc[2] = {1, 0};
        double w[2] = {0.5, 0.5};
        QV_CK(qv_fuse(&fp, 2, ls, lens, asc, w, want, &nw));
        ck_assert_uint_eq(n, nw);
        ck_assert_uint_eq(n, 10);
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_eq(got[i].id, want[i].id);
            ck_assert_uint_eq(got[i].id % 2, 0);   /* the filter held on both sides */
        }
    }
    qv_filter_free(even);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
}
END_TEST

/* Text searches beside writers (run under TSan by make tsan-test): two threads upsert and
 * delete documents while two search; every search succeeds and returns only ids that
 * exist in the id range, with finite positive scores, best first. */
typedef struct { qv_coll *c; int writer; uint64_t seed; int failed; } conc_arg;

static void *conc_run(void *arg)
{
    conc_arg *a = arg;
    uint64_t s = a->seed;
    for (int it = 0; it < (sanitized() ? 60 : 300) && !a->failed; it++) {
        if (a->writer) {
            char text[512], payload[700];
            uint64_t id = test_rand(&s) % 100;
            float v[4] = {1, 0, 0, 0};
            random_text(text, sizeof text, &s);
            snprintf(payload, sizeof payload, "{\"body\":\"%s\"}", text);
            const char *pl = payload;
            size_t nd;
            if (it % 5 == 4) a->failed |= qv_delete(a->c, 1, &id, &nd) != QV_OK;
            else a->failed |= qv_upsert(a->c, 1, &id, v, &pl) != QV_OK;
        } else {
            qv_text_params p;
            qv_hit h[10];
            size_t n = 0;
            qv_text_params_init(&p, 10);
            p.field = "body";
            p.query = vocab[test_rand(&s) % VOCAB];
            if (qv_text_search(a->c, &p, h, &n) != QV_OK) { a->failed = 1; break; }
            for (size_t i = 0; i < n; i++)
                if (h[i].id >= 100 || !(h[i].score > 0) || !isfinite(h[i].score) || (i && h[i].score > h[i - 1].score))
                    a->failed = 2;
        }
    }
    return NULL;
}

START_TEST(test_concurrent_text)
{
    qv_db *db = open_db_nosync(tmp);
    qv_coll *c = NULL;
    qv_collection_config cfg = {0};
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, 4, QV_METRIC_L2);
    cfg.payload_index = "{\"body\":\"text\"}";
    QV_CK(qv_collection_create(db, "cc", &cfg, &c));
    pthread_t th[4];
    conc_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (conc_arg){c, i < 2, 100 + (uint64_t)i, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, conc_run, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) ck_assert_msg(!a[i].failed, "thread %d failed (%d): %s", i, a[i].failed, qv_last_error());
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
}
END_TEST

Suite *qv_text_suite(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("text");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tokenizer);
    tcase_add_test(tc, test_bm25_matches_reference);
    tcase_add_test(tc, test_text_filter);
    tcase_add_test(tc, test_bad_input);
    tcase_add_loop_test(tc, test_fusion_matches_reference, 0, 20);
    tcase_add_test(tc, test_hybrid);
    tcase_add_test(tc, test_concurrent_text);
    suite_add_tcase(s, tc);
    return s;
}
