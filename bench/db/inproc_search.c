/*
 * bench/db/inproc_search.c -- quiver-inproc-search: the in-process side of bench/load.sh.
 *
 *   quiver-inproc-search --data DBDIR --collection NAME --queries FILE.fvecs
 *                        [--k 10] [--ef 64] [--threads 1] [--duration 10] [--nq N]
 *
 * Opens the database that quiverd served (after quiverd has exited: one process per
 * directory), and runs the same searches the HTTP load test posts -- the same collection,
 * the same query vectors cycled in the same order, the same k and ef -- through qv_search
 * on THREADS threads for DURATION seconds. --nq N uses the file's first N queries (load.sh
 * posts the first NQ). So the ratio HTTP / in-process compares the
 * server with the library on the very same graph, not with a graph built another way.
 *
 * Prints one line, in load.sh's format:
 *   inproc-search threads=T k=K ef=E queries=N qps=Q p50_us=A p99_us=B
 * Exit status: 0 done, 1 a library call failed, 2 bad arguments.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quiver.h"

typedef struct {
    qv_coll *coll;
    const float *queries;
    size_t nq, dim, first;
    uint32_t k, ef;
    double duration_s;
    atomic_int *failed;
    /* out */
    size_t done;
    uint32_t *lat_us;         /* one per search, up to cap */
    size_t cap;
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *run(void *arg)
{
    worker *w = arg;
    qv_hit *hits = malloc(w->k * sizeof *hits);
    if (!hits) {
        atomic_store(w->failed, QV_ENOMEM);
        return NULL;
    }
    qv_search_params sp;
    qv_search_params_init(&sp, w->k);
    sp.ef = w->ef;
    double end = now_s() + w->duration_s;
    size_t q = w->first;
    for (;;) {
        double t0 = now_s();
        if (t0 >= end || atomic_load(w->failed)) break;
        size_t n = 0;
        int rc = qv_search(w->coll, w->queries + q * w->dim, &sp, hits, &n);
        if (rc != QV_OK) {
            fprintf(stderr, "quiver-inproc-search: qv_search: %s: %s\n", qv_strerror(rc), qv_last_error());
            atomic_store(w->failed, rc);
            break;
        }
        if (w->done < w->cap) w->lat_us[w->done] = (uint32_t)((now_s() - t0) * 1e6 + 0.5);
        w->done++;
        q = (q + 1) % w->nq;
    }
    free(hits);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int arg_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = s && *s != '-' ? strtoul(s, &end, 10) : 0;
    if (!s || *s == '-' || errno || *end || v < lo || v > hi) return -1;
    *out = (uint32_t)v;
    return 0;
}

static const char usage[] =
    "usage: quiver-inproc-search --data DBDIR --collection NAME --queries FILE\n"
    "                            [--k 10] [--ef 64] [--threads 1] [--duration 10] [--nq N]\n";

int main(int argc, char **argv)
{
    const char *data = NULL, *name = NULL, *qfile = NULL;
    uint32_t k = 10, ef = 64, threads = 1, duration = 10, nq_max = 0;
    for (int i = 1; i < argc; i += 2) {       /* --name value pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--data") == 0) data = v;
        else if (strcmp(a, "--collection") == 0) name = v;
        else if (strcmp(a, "--queries") == 0) qfile = v;
        else if (strcmp(a, "--k") == 0) bad = arg_u32(v, 1, QV_MAX_K, &k);
        else if (strcmp(a, "--ef") == 0) bad = arg_u32(v, 0, 1u << 20, &ef);
        else if (strcmp(a, "--threads") == 0) bad = arg_u32(v, 1, 256, &threads);
        else if (strcmp(a, "--duration") == 0) bad = arg_u32(v, 1, 3600, &duration);
        else if (strcmp(a, "--nq") == 0) bad = arg_u32(v, 1, UINT32_MAX, &nq_max);
        else bad = -1;
        if (bad || !v) {
            fprintf(stderr, "quiver-inproc-search: bad argument '%s'\n%s", a, usage);
            return 2;
        }
    }
    if (!data || !name || !qfile) {
        fputs(usage, stderr);
        return 2;
    }

    float *queries = NULL;
    size_t nq = 0, dim = 0;
    qv_db *db = NULL;
    qv_coll *coll = NULL;
    int rc = qv_read_vectors(qfile, &queries, &nq, &dim);
    if (rc == QV_OK && nq == 0) rc = QV_EINVAL;
    if (nq_max && nq > nq_max) nq = nq_max;
    if (rc == QV_OK) rc = qv_db_open(data, NULL, &db);
    if (rc == QV_OK) rc = qv_collection_open(db, name, &coll);
    if (rc != QV_OK) {
        fprintf(stderr, "quiver-inproc-search: %s: %s\n", qv_strerror(rc), qv_last_error());
        qv_db_close(db);
        qv_free(queries);
        return 1;
    }

    atomic_int failed = 0;
    worker *w = calloc(threads, sizeof *w);
    pthread_t *tid = calloc(threads, sizeof *tid);
    size_t cap = (size_t)duration * 200000u;   /* latencies kept: far above 200k QPS per thread */
    int status = 1;
    if (!w || !tid) goto out;
    for (uint32_t t = 0; t < threads; t++) {
        w[t] = (worker){.coll = coll, .queries = queries, .nq = nq, .dim = dim,
                        .first = (size_t)t * nq / threads, .k = k, .ef = ef,
                        .duration_s = duration, .failed = &failed, .cap = cap};
        if (!(w[t].lat_us = malloc(cap * sizeof *w[t].lat_us))) goto out;
    }
    double t0 = now_s();
    uint32_t started = 0;
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, run, &w[started]) != 0) {
            atomic_store(&failed, QV_ENOMEM);
            break;
        }
    for (uint32_t t = 0; t < started; t++) pthread_join(tid[t], NULL);
    double secs = now_s() - t0;
    if (atomic_load(&failed) || started < threads) goto out;

    size_t total = 0, kept = 0;
    for (uint32_t t = 0; t < threads; t++) {
        total += w[t].done;
        kept += w[t].done < cap ? w[t].done : cap;
    }
    uint32_t *all = malloc((kept ? kept : 1) * sizeof *all);
    if (!all) goto out;
    size_t j = 0;
    for (uint32_t t = 0; t < threads; t++) {
        size_t m = w[t].done < cap ? w[t].done : cap;
        memcpy(all + j, w[t].lat_us, m * sizeof *all);
        j += m;
    }
    qsort(all, kept, sizeof *all, cmp_u32);
    printf("inproc-search threads=%u k=%u ef=%u queries=%zu qps=%.1f p50_us=%u p99_us=%u\n", threads, k, ef,
           total, (double)total / secs, kept ? all[kept / 2] : 0, kept ? all[(size_t)((double)kept * 0.99)] : 0);
    free(all);
    status = 0;
out:
    if (status) fprintf(stderr, "quiver-inproc-search: %s\n", atomic_load(&failed) ? "a search failed" : "out of memory");
    for (uint32_t t = 0; w && t < threads; t++) free(w[t].lat_us);
    free(w);
    free(tid);
    qv_db_close(db);
    qv_free(queries);
    return status;
}
