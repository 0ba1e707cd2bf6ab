/*
 * bench/db/text_bench.c -- quiver-text-bench: the Quiver side of bench/text_fts5.py (BM25
 * against SQLite FTS5, issue 22).
 *
 *   quiver-text-bench --docs DOCS.tsv --queries QUERIES.txt --db DIR --out PREFIX
 *                     [--k 10] [--reps 5] [--k1 1.2] [--b 0.75]
 *
 * DOCS.tsv: "id<TAB>text" per line; QUERIES.txt: one query per line. Loads the documents
 * into a fresh database DIR (collection "docs", payload {"body": text}, "body" indexed as
 * "text", a 1-d dummy vector), then writes
 *   PREFIX.doc_tokens   "id<TAB>token token ..." per document (qv_text_tokenize)
 *   PREFIX.query_tokens the same per query (line number as id)
 *   PREFIX.results      "qi<TAB>id:score id:score ..." per query (qv_text_search top k)
 * so that FTS5 can be given exactly the same tokens, and prints one JSON line with load
 * time and ranked-query QPS (one thread; median of REPS passes over all queries after a
 * warm-up pass). Exit status: 0 done, 1 a library call failed, 2 bad arguments or files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quiver.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "quiver-text-bench: %s: %s: %s\n", what, qv_strerror(rc), qv_last_error());
    return 1;
}

/* JSON string body of s (escaped) into a malloc'd {"body":"..."}. */
static char *payload_of(const char *s)
{
    size_t n = strlen(s), at = 0;
    char *o = malloc(n * 6 + 16);
    if (!o) return NULL;
    at += (size_t)sprintf(o, "{\"body\":\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { o[at++] = '\\'; o[at++] = (char)*p; }
        else if (*p < 0x20) at += (size_t)sprintf(o + at, "\\u%04x", *p);
        else o[at++] = (char)*p;
    }
    strcpy(o + at, "\"}");
    return o;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int write_tokens(FILE *f, unsigned long long id, const char *text)
{
    char **t = NULL;
    size_t n = 0;
    int rc = qv_text_tokenize(text, NULL, &t, &n);
    if (rc != QV_OK) return rc;
    fprintf(f, "%llu\t", id);
    for (size_t i = 0; i < n; i++) fprintf(f, "%s%s", i ? " " : "", t[i]);
    fputc('\n', f);
    qv_free_strings(t, n);
    return QV_OK;
}

int main(int argc, char **argv)
{
    const char *docs = NULL, *queries = NULL, *dir = NULL, *out = NULL;
    unsigned k = 10, reps = 5;
    double k1 = QV_BM25_K1, b = QV_BM25_B;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--docs")) docs = argv[i + 1];
        else if (!strcmp(argv[i], "--queries")) queries = argv[i + 1];
        else if (!strcmp(argv[i], "--db")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--k")) k = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--k1")) k1 = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--b")) b = atof(argv[i + 1]);
        else { fprintf(stderr, "quiver-text-bench: unknown option %s\n", argv[i]); return 2; }
    }
    if (!docs || !queries || !dir || !out || k < 1 || reps < 1) {
        fprintf(stderr, "usage: quiver-text-bench --docs DOCS.tsv --queries Q.txt --db DIR --out PREFIX [--k 10] [--reps 5]\n");
        return 2;
    }
    char path[4096], line[65536];
    FILE *fd = fopen(docs, "r"), *fq = fopen(queries, "r"), *fdt = NULL, *fqt = NULL, *fr = NULL;
    if (!fd || !fq) { fprintf(stderr, "quiver-text-bench: cannot open %s or %s\n", docs, queries); return 2; }
    snprintf(path, sizeof path, "%s.doc_tokens", out);
    fdt = fopen(path, "w");
    snprintf(path, sizeof path, "%s.query_tokens", out);
    fqt = fopen(path, "w");
    snprintf(path, sizeof path, "%s.results", out);
    fr = fopen(path, "w");
    if (!fdt || !fqt || !fr) { fprintf(stderr, "quiver-text-bench: cannot write %s.*\n", out); return 2; }

    qv_db *db = NULL;
    qv_coll *c = NULL;
    qv_db_options o;
    qv_collection_config cfg = {0};
    int rc;
    qv_db_options_init(&o);
    o.flags = QV_DB_NOSYNC;                        /* load speed is not what is measured */
    if ((rc = qv_db_open(dir, &o, &db)) != QV_OK) return fail("open", rc);
    qv_index_params_init(&cfg.index, QV_INDEX_FLAT, 1, QV_METRIC_L2);
    cfg.payload_index = "{\"body\":\"text\"}";
    if ((rc = qv_collection_create(db, "docs", &cfg, &c)) != QV_OK) return fail("create", rc);

    enum { BATCH = 1000 };
    uint64_t ids[BATCH];
    float vecs[BATCH];
    char *pls[BATCH];
    size_t nb = 0, ndocs = 0;
    double t0 = now_s();
    for (;;) {
        int eof = !fgets(line, sizeof line, fd);
        if (!eof) {
            line[strcspn(line, "\n")] = 0;
            char *tab = strchr(line, '\t');
            if (!tab) continue;
            *tab = 0;
            ids[nb] = strtoull(line, NULL, 10);
            vecs[nb] = 0;
            if (!(pls[nb] = payload_of(tab + 1))) return fail("payload", QV_ENOMEM);
            if ((rc = write_tokens(fdt, (unsigned long long)ids[nb], tab + 1)) != QV_OK) return fail("tokenize", rc);
            nb++;
            ndocs++;
        }
        if (nb == BATCH || (eof && nb)) {
            if ((rc = qv_upsert(c, nb, ids, vecs, (const char *const *)pls)) != QV_OK) return fail("upsert", rc);
            for (size_t i = 0; i < nb; i++) free(pls[i]);
            nb = 0;
        }
        if (eof) break;
    }
    double load_s = now_s() - t0;

    char **qs = NULL;
    size_t nq = 0, qcap = 0;
    while (fgets(line, sizeof line, fq)) {
        line[strcspn(line, "\n")] = 0;
        if (nq == qcap) {
            qcap = qcap ? qcap * 2 : 1024;
            qs = realloc(qs, qcap * sizeof *qs);
        }
        qs[nq] = strdup(line);
        if ((rc = write_tokens(fqt, (unsigned long long)nq, line)) != QV_OK) return fail("tokenize", rc);
        nq++;
    }
    qv_hit *hits = calloc(k, sizeof *hits);
    qv_text_params p;
    qv_text_params_init(&p, k);
    p.field = "body";
    p.k1 = k1;
    p.b = b;
    for (size_t i = 0; i < nq; i++) {             /* warm-up pass, which also writes results */
        size_t n = 0;
        p.query = qs[i];
        if ((rc = qv_text_search(c, &p, hits, &n)) != QV_OK) return fail("text search", rc);
        fprintf(fr, "%zu\t", i);
        for (size_t j = 0; j < n; j++) fprintf(fr, "%s%llu:%.9g", j ? " " : "", (unsigned long long)hits[j].id, hits[j].score);
        fputc('\n', fr);
    }
    double *qps = calloc(reps, sizeof *qps);
    for (unsigned r = 0; r < reps; r++) {
        double s = now_s();
        for (size_t i = 0; i < nq; i++) {
            size_t n = 0;
            p.query = qs[i];
            if ((rc = qv_text_search(c, &p, hits, &n)) != QV_OK) return fail("text search", rc);
        }
        qps[r] = (double)nq / (now_s() - s);
    }
    qsort(qps, reps, sizeof *qps, cmp_double);
    printf("{\"library\":\"quiver\",\"docs\":%zu,\"queries\":%zu,\"k\":%u,\"load_s\":%.3f,\"qps\":%.1f,"
           "\"qps_min\":%.1f,\"qps_max\":%.1f,\"reps\":%u}\n",
           ndocs, nq, k, load_s, qps[reps / 2], qps[0], qps[reps - 1], reps);
    for (size_t i = 0; i < nq; i++) free(qs[i]);
    free(qs);
    free(qps);
    free(hits);
    fclose(fd);
    fclose(fq);
    fclose(fdt);
    fclose(fqt);
    fclose(fr);
    qv_collection_close(c);
    if ((rc = qv_db_close(db)) != QV_OK) return fail("close", rc);
    return 0;
}
