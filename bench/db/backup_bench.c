/*
 * bench/db/backup_bench.c -- quiver-backup-bench: what a backup and a restore of a large
 * collection cost (issue 20, "Checked by": snapshot and restore times at 1M points, and
 * the restored collection searching without rebuilding its graph). Public API only.
 *
 *   quiver-backup-bench --data DIR --dir WORK [--limit N] [--m 16] [--ef-construction 200]
 *                       [--threads 2] [--ef 64] [--queries 1000] [--writer-batch 100]
 *                       [--build-only] [--json]
 *
 * WORK/src holds collection "bench" (hnsw, the dataset's metric, DIR/base.fvecs); it is
 * built (and checkpointed) when absent -- --build-only stops there, so the long build can
 * run outside the exclusive benchmark lock. Then, one row each:
 *  1. reopen       qv_db_open + qv_collection_open of WORK/src (its index snapshot loads),
 *                  and the searches every later phase is compared with;
 *  2. backup       qv_backup_create of the idle collection (index snapshot fresh: no
 *                  checkpoint), MB/s;
 *  3. verify       qv_backup_verify of that file (structure + SHA-256);
 *  4. restore      qv_backup_restore into an empty WORK/dst: verify, stage, load the index
 *                  from the backup's snapshot; index_loaded = 1 means no graph build;
 *  5. search       the same queries on the restored collection: the share of answers equal
 *                  to the original's (same graph: 1.0), recall@10 against the ground truth
 *                  (the first k of groundtruth.ivecs; computed exactly with --limit), and
 *                  the latency of its first search;
 *  6. backup_live  a backup while a thread upserts batches of --writer-batch new points,
 *                  fewer than 1% of the collection since its index snapshot: the writer's
 *                  batch latency p50 / p99 / max for 3 s before and during the backup (the
 *                  copy takes no writer lock);
 *  7. backup_stale the same once more than 1% of the points were written since the index
 *                  snapshot: this backup serializes the in-memory index at its point in
 *                  time, and the writer waits for that serialization (its max latency
 *                  during the backup is that wait).
 * Exit: 0 done, 1 a library call failed, 2 bad arguments.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "quiver.h"

#define COLL "bench"
#define BUILD_BATCH 10000u
#define K 10u
#define MAX_LAT 1000000u

typedef struct {
    const char *data, *dir;
    uint32_t m, efc, threads, ef, wbatch;
    size_t limit, queries;
    int build_only, json;
} opts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "quiver-backup-bench: %s: %s: %s\n", what, qv_strerror(rc), qv_last_error());
    return 1;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* One output row: text, or a JSON object with --json. */
static void row(const opts *o, const char *phase, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void row(const opts *o, const char *phase, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (o->json) printf("{\"phase\":\"%s\",%s}\n", phase, buf);
    else printf("%-12s %s\n", phase, buf);
    fflush(stdout);
}

static int parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = s && *s && *s != '-' ? strtoull(s, &end, 10) : 0;
    if (!s || !*s || *s == '-' || errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){.m = 16, .efc = 200, .threads = 2, .ef = 64, .wbatch = 100, .queries = 1000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x = 0;
        if (!strcmp(a, "--build-only")) { o->build_only = 1; continue; }
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (!v) goto bad;
        i++;
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--dir")) o->dir = v;
        else if (parse_num(v, 1, UINT32_MAX, &x)) goto bad;
        else if (!strcmp(a, "--limit")) o->limit = x;
        else if (!strcmp(a, "--m")) o->m = (uint32_t)x;
        else if (!strcmp(a, "--ef-construction")) o->efc = (uint32_t)x;
        else if (!strcmp(a, "--threads")) o->threads = (uint32_t)x;
        else if (!strcmp(a, "--ef")) o->ef = (uint32_t)x;
        else if (!strcmp(a, "--queries")) o->queries = x;
        else if (!strcmp(a, "--writer-batch")) o->wbatch = (uint32_t)x;
        else goto bad;
    }
    if (o->data && o->dir) return 0;
bad:
    fprintf(stderr, "usage: quiver-backup-bench --data DIR --dir WORK [--limit N] [--m 16] [--ef-construction 200]\n"
                    "         [--threads 2] [--ef 64] [--queries 1000] [--writer-batch 100] [--build-only] [--json]\n");
    return 2;
}

/* ---- the writer of phase 6 -------------------------------------------------------------- */

typedef struct {
    qv_coll *c;
    size_t dim;
    uint32_t batch;
    atomic_int stop, phase;        /* phase 0 before the backup, 1 during, 2 after */
    atomic_size_t batches;         /* every batch written */
    double *lat[2];                /* batch latencies (s) before / during */
    size_t nlat[2];
    int rc;
} writer_arg;

static void *writer(void *arg)
{
    writer_arg *w = arg;
    uint64_t *ids = malloc(w->batch * sizeof *ids), next = 100000000;
    float *vecs = malloc((size_t)w->batch * w->dim * sizeof *vecs);
    uint64_t seed = 12345;
    if (!ids || !vecs) { w->rc = QV_ENOMEM; goto out; }
    while (!atomic_load(&w->stop)) {
        for (uint32_t i = 0; i < w->batch; i++) {
            ids[i] = next++;
            for (size_t j = 0; j < w->dim; j++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                vecs[i * w->dim + j] = (float)(seed >> 40) / 16777216.0f * 100.0f;
            }
        }
        int ph = atomic_load(&w->phase);
        double t0 = now_s();
        if ((w->rc = qv_upsert(w->c, w->batch, ids, vecs, NULL)) != QV_OK) break;
        double dt = now_s() - t0;
        atomic_fetch_add(&w->batches, 1);
        if (ph < 2 && atomic_load(&w->phase) == ph && w->nlat[ph] < MAX_LAT) w->lat[ph][w->nlat[ph]++] = dt;
    }
out:
    free(ids);
    free(vecs);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void lat_stats(double *v, size_t n, double *p50, double *p99, double *max)
{
    *p50 = *p99 = *max = 0;
    if (!n) return;
    qsort(v, n, sizeof *v, cmp_double);
    *p50 = v[n / 2] * 1e3;
    *p99 = v[(size_t)((double)(n - 1) * 0.99)] * 1e3;
    *max = v[n - 1] * 1e3;
}

/* ---- phases ------------------------------------------------------------------------------ */

static int build(const opts *o, const char *src, const float *base, size_t n, size_t dim, qv_metric metric)
{
    qv_db *db = NULL;
    qv_coll *c = NULL;
    qv_collection_config cfg;
    qv_db_options dbo;
    uint64_t *ids = malloc(BUILD_BATCH * sizeof *ids);
    int rc;
    double t0 = now_s();
    memset(&cfg, 0, sizeof cfg);
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, (uint32_t)dim, metric);
    cfg.index.m = o->m;
    cfg.index.ef_construction = o->efc;
    cfg.index.threads = o->threads;
    qv_db_options_init(&dbo);
    dbo.flags = QV_DB_NOSYNC;      /* a bulk load; the close checkpoints and syncs */
    if (!ids) return fail("build", QV_ENOMEM);
    if ((rc = qv_db_open(src, &dbo, &db)) != QV_OK || (rc = qv_collection_create(db, COLL, &cfg, &c)) != QV_OK) {
        free(ids);
        qv_db_close(db);
        return fail("build: create", rc);
    }
    for (size_t i = 0; i < n && rc == QV_OK; i += BUILD_BATCH) {
        size_t m = n - i < BUILD_BATCH ? n - i : BUILD_BATCH;
        for (size_t j = 0; j < m; j++) ids[j] = i + j;
        rc = qv_upsert(c, m, ids, base + i * dim, NULL);
        if ((i / BUILD_BATCH) % 10 == 0) fprintf(stderr, "\rbuild: %zu/%zu", i + m, n);
    }
    fprintf(stderr, "\n");
    free(ids);
    qv_collection_close(c);
    int rc2 = qv_db_close(db);     /* checkpoints: the index snapshot a backup copies */
    if (rc != QV_OK || rc2 != QV_OK) return fail("build", rc != QV_OK ? rc : rc2);
    row(o, "build", "\"n\":%zu,\"seconds\":%.1f,\"note\":\"hnsw m %u efc %u, %u threads, then checkpoint\"", n,
        now_s() - t0, o->m, o->efc, o->threads);
    return 0;
}

/* k hits of each of nq queries into ids (nq*K); the first search's latency in *first_ms. */
static int run_queries(const opts *o, qv_coll *c, const float *q, size_t nq, size_t dim, uint64_t *ids, double *first_ms)
{
    qv_search_params sp;
    qv_hit hits[K];
    qv_search_params_init(&sp, K);
    sp.ef = o->ef;
    for (size_t i = 0; i < nq; i++) {
        size_t nh = 0;
        double t0 = now_s();
        int rc = qv_search(c, q + i * dim, &sp, hits, &nh);
        if (i == 0 && first_ms) *first_ms = (now_s() - t0) * 1e3;
        if (rc != QV_OK) return fail("search", rc);
        for (size_t j = 0; j < K; j++) ids[i * K + j] = j < nh ? hits[j].id : UINT64_MAX;
    }
    return 0;
}

static double recall(const uint64_t *got, const int32_t *gt, size_t gtdim, size_t nq)
{
    size_t found = 0;
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < K; j++)
            for (size_t t = 0; t < K; t++) found += got[i * K + j] == (uint64_t)gt[i * gtdim + t];
    return (double)found / (double)(nq * K);
}

int main(int argc, char **argv)
{
    opts o;
    char src[4096], dst[4096], file[4096], live[4096], path[4200];
    float *base = NULL, *query = NULL;
    int32_t *gt = NULL;
    size_t n = 0, dim = 0, nq = 0, qdim = 0, ngt = 0, gtdim = 0;
    qv_db *db = NULL, *db2 = NULL;
    qv_coll *c = NULL, *r = NULL;
    qv_backup_info bi, ri;
    uint64_t *orig = NULL, *rest = NULL;
    int code = parse_args(argc, argv, &o), rc;
    if (code) return code;
    qv_metric metric = QV_METRIC_L2;
    snprintf(src, sizeof src, "%s/src", o.dir);
    snprintf(dst, sizeof dst, "%s/dst", o.dir);
    snprintf(file, sizeof file, "%s/bench.snapshot", o.dir);
    snprintf(live, sizeof live, "%s/live.snapshot", o.dir);
    mkdir(o.dir, 0755);

    snprintf(path, sizeof path, "%s/base.fvecs", o.data);
    if ((rc = qv_read_vectors(path, &base, &n, &dim)) != QV_OK) return fail(path, rc);
    if (o.limit && o.limit < n) n = o.limit;
    snprintf(path, sizeof path, "%s/data.mdb", src);
    if (!file_size(path) && (code = build(&o, src, base, n, dim, metric)) != 0) goto done;
    if (o.build_only) goto done;
    snprintf(path, sizeof path, "%s/query.fvecs", o.data);
    if ((rc = qv_read_vectors(path, &query, &nq, &qdim)) != QV_OK || qdim != dim) { code = fail(path, rc); goto done; }
    if (nq > o.queries) nq = o.queries;
    snprintf(path, sizeof path, "%s/groundtruth.ivecs", o.data);
    if (!o.limit && qv_read_ivecs(path, &gt, &ngt, &gtdim) == QV_OK && (ngt < nq || gtdim < K)) {
        qv_free(gt);
        gt = NULL;
    }
    if (!(orig = malloc(nq * K * sizeof *orig)) || !(rest = malloc(nq * K * sizeof *rest))) {
        code = fail("bench", QV_ENOMEM);
        goto done;
    }

    /* 1. reopen */
    double t0 = now_s();
    if ((rc = qv_db_open(src, NULL, &db)) != QV_OK || (rc = qv_collection_open(db, COLL, &c)) != QV_OK) {
        code = fail("reopen", rc);
        goto done;
    }
    double reopen_s = now_s() - t0;
    qv_collection_info info;
    qv_collection_get_info(c, &info);
    if ((code = run_queries(&o, c, query, nq, dim, orig, NULL)) != 0) goto done;
    snprintf(path, sizeof path, "%s/data.mdb", src);
    row(&o, "reopen", "\"n\":%zu,\"seconds\":%.2f,\"db_bytes\":%" PRIu64 ",\"index_bytes\":%zu", info.count, reopen_s,
        file_size(path), info.memory_bytes);

    /* 2. backup, 3. verify */
    t0 = now_s();
    if ((rc = qv_backup_create(db, COLL, file, &bi)) != QV_OK) { code = fail("backup", rc); goto done; }
    double bs = now_s() - t0;
    row(&o, "backup", "\"seconds\":%.2f,\"bytes\":%" PRIu64 ",\"mb_per_s\":%.0f,\"sha256\":\"%s\"", bs, bi.bytes,
        (double)bi.bytes / 1048576.0 / bs, bi.sha256);
    t0 = now_s();
    if ((rc = qv_backup_verify(file, bi.sha256, NULL)) != QV_OK) { code = fail("verify", rc); goto done; }
    double vs = now_s() - t0;
    row(&o, "verify", "\"seconds\":%.2f,\"mb_per_s\":%.0f", vs, (double)bi.bytes / 1048576.0 / vs);

    /* 4. restore, 5. search */
    snprintf(path, sizeof path, "rm -rf '%s'", dst);
    if (system(path) != 0) { code = fail("removing WORK/dst", QV_EIO); goto done; }
    t0 = now_s();
    if ((rc = qv_db_open(dst, NULL, &db2)) != QV_OK || (rc = qv_backup_restore(db2, file, NULL, &ri)) != QV_OK) {
        code = fail("restore", rc);
        goto done;
    }
    double rs = now_s() - t0;
    snprintf(path, sizeof path, "%s/data.mdb", dst);
    row(&o, "restore", "\"seconds\":%.2f,\"points\":%" PRIu64 ",\"index_loaded\":%u,\"db_bytes\":%" PRIu64, rs,
        ri.points, ri.index_loaded, file_size(path));
    double first_ms = 0;
    if ((rc = qv_collection_open(db2, COLL, &r)) != QV_OK) { code = fail("open restored", rc); goto done; }
    if ((code = run_queries(&o, r, query, nq, dim, rest, &first_ms)) != 0) goto done;
    size_t same = 0;
    for (size_t i = 0; i < nq; i++) same += memcmp(orig + i * K, rest + i * K, K * sizeof *orig) == 0;
    if (gt)
        row(&o, "search", "\"queries\":%zu,\"same_answers\":%.4f,\"recall_restored\":%.4f,\"recall_original\":%.4f,"
            "\"first_search_ms\":%.2f", nq, (double)same / (double)nq, recall(rest, gt, gtdim, nq),
            recall(orig, gt, gtdim, nq), first_ms);
    else
        row(&o, "search", "\"queries\":%zu,\"same_answers\":%.4f,\"first_search_ms\":%.2f", nq,
            (double)same / (double)nq, first_ms);
    qv_collection_close(r);
    r = NULL;

    /* 6. backup_live, 7. backup_stale */
    writer_arg w = {.c = c, .dim = dim, .batch = o.wbatch};
    pthread_t th;
    w.lat[0] = malloc(MAX_LAT * sizeof(double));
    w.lat[1] = malloc(MAX_LAT * sizeof(double));
    if (!w.lat[0] || !w.lat[1]) { code = fail("writer", QV_ENOMEM); goto done; }
    atomic_store(&w.phase, 2);
    if (pthread_create(&th, NULL, writer, &w) != 0) { code = fail("writer", QV_ENOMEM); goto done; }
    while (atomic_load(&w.batches) < 3) usleep(1000);   /* warm-up batches are not counted */
    size_t at_snapshot = 0;            /* batches written when the index snapshot was last fresh */
    for (int round = 0; round < 2 && rc == QV_OK; round++) {
        /* round 0: a backup while the index snapshot is fresh (under 0.5% written since);
         * round 1: once more than 1% of the points were written since, so it serializes
         * the in-memory index under the writer lock */
        const char *phase = round ? "backup_stale" : "backup_live";
        double until = now_s() + 3.0;
        w.nlat[0] = w.nlat[1] = 0;
        atomic_store(&w.phase, 0);
        for (;;) {
            size_t since = (atomic_load(&w.batches) - at_snapshot) * o.wbatch;   /* points since the snapshot */
            if (round == 0 ? now_s() >= until || since >= info.count / 200 : since >= info.count / 100 + 2000) break;
            usleep(10000);
        }
        size_t nb = w.nlat[0];
        atomic_store(&w.phase, 1);
        t0 = now_s();
        rc = qv_backup_create(db, COLL, live, &bi);
        double ls = now_s() - t0;
        atomic_store(&w.phase, 2);
        size_t nd = w.nlat[1];
        if (rc != QV_OK) { code = fail(phase, rc); break; }
        double b50, b99, bmax, d50, d99, dmax;
        lat_stats(w.lat[0], nb, &b50, &b99, &bmax);
        lat_stats(w.lat[1], nd, &d50, &d99, &dmax);
        row(&o, phase, "\"seconds\":%.2f,\"bytes\":%" PRIu64 ",\"points\":%" PRIu64 ",\"writer_batch\":%u,"
            "\"batches_before\":%zu,\"p50_ms_before\":%.2f,\"p99_ms_before\":%.2f,\"max_ms_before\":%.1f,"
            "\"batches_during\":%zu,\"p50_ms_during\":%.2f,\"p99_ms_during\":%.2f,\"max_ms_during\":%.1f", ls,
            bi.bytes, bi.points, o.wbatch, nb, b50, b99, bmax, nd, d50, d99, dmax);
        unlink(live);
    }
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    if (code == 0 && w.rc != QV_OK) code = fail("writer", w.rc);
    free(w.lat[0]);
    free(w.lat[1]);
    size_t nb = 0, nd = 100000;       /* the writer's ids: 100000000 + at most this many batches */
    /* the writer's points go again, so that the next run starts from the same collection */
    uint64_t *gone = malloc(1000000 * sizeof *gone);
    size_t total = (nb + nd) * o.wbatch;
    for (size_t i = 0; gone && i < total; i += 1000000) {
        size_t m = total - i < 1000000 ? total - i : 1000000;
        for (size_t j = 0; j < m; j++) gone[j] = 100000000 + i + j;
        qv_delete(c, m, gone, NULL);
    }
    free(gone);
done:
    qv_collection_close(r);
    qv_collection_close(c);
    if (db2) qv_db_close(db2);
    if (db) qv_db_close(db);
    free(orig);
    free(rest);
    qv_free(base);
    qv_free(query);
    qv_free(gt);
    return code;
}
