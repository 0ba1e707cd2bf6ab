/*
 * bench/db/db_bench.c -- quiver-db-bench: what the storage layer costs on top of the
 * bare index (issue 4, "Checked by"). Uses nothing but the public API (quiver.h).
 *
 *   quiver-db-bench --data DIR [--index hnsw|flat] [--metric l2|ip|cosine] [--m 16]
 *                   [--ef-construction 200] [--ef 64] [--k 10] [--threads N] [--dir TMPDIR]
 *                   [--limit N] [--queries N] [--rounds 3] [--json] [--keep]
 *
 * Phases, one row each (--json: one JSON object per line, the header included):
 *  1. upsert_sync    all base vectors in batches of 1,000 with default (synced) options into
 *                    a fresh directory: points/s, median and p99 batch latency;
 *  2. upsert_nosync  the same with QV_DB_NOSYNC into a second fresh directory;
 *  3. checkpoint     qv_checkpoint on the synced collection; then close (nothing left to do);
 *  4. reopen_snapshot qv_db_open + qv_collection_open of the synced directory (served by the
 *                    snapshot), and the first search after it;
 *  5. reopen_rebuild the same on the nosync directory, which has NO snapshot: phase 2 runs in
 *                    a forked child that leaves with _exit() after its last upsert, without a
 *                    checkpoint or qv_db_close -- a writer that died before its first
 *                    checkpoint. The library's documented answer (storage/collection.c: "never
 *                    checkpointed: a rebuild is the normal path") is to rebuild the index from
 *                    the stored vectors on open, so this is a real rebuild through the public
 *                    API, not an estimate. bare_build (qv_index_new + qv_index_add of the same
 *                    points in the same batches of 1,000, no LMDB) is reported beside it: the
 *                    index work inside both the upserts and a rebuild;
 *  6. search         single-thread QPS over the queries, qv_search on the reopened collection
 *                    vs qv_index_search on the bare index (same params, same points, same ef),
 *                    recall@k of both against groundtruth.ivecs and ratio = db/bare (the
 *                    issue asks for >= 0.9); then the same for qv_search_batch vs
 *                    qv_index_search_batch. The two sides alternate for --rounds rounds of at
 *                    least MIN_ROUND_S each and the best round of each side counts, which
 *                    damps the noise of a shared machine. Both graphs are built the same way
 *                    (batches of 1,000 in id order), but HNSW builds with several threads are
 *                    not deterministic, so a small part of the ratio is graph, not API:
 *                    compare the recall columns, and use --threads 1 for identical graphs.
 *
 * Why fork: phase 2 must happen in another process so that it can end without closing the
 * database (qv_db_close always checkpoints). The fork comes before this process calls
 * anything that may start worker threads (only the vector files are read by then), so the
 * child is an ordinary single-threaded process. LMDB without MDB_WRITEMAP writes each
 * commit to the file before the commit returns, so the child's data is all there for us
 * even without an fsync.
 *
 * With --limit N (fewer base points than the file has), or without groundtruth.ivecs, the
 * truth comes from an exact flat index over the points used (labelled in the output).
 * Exit status: 0 done, 1 a library call failed (message on stderr), 2 bad arguments.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "quiver.h"

#define BATCH 1000u
#define COLL_NAME "bench"
#define MIN_ROUND_S 0.5       /* shortest timed round of one search side */

typedef struct {
    const char *data, *dir;
    qv_index_kind kind;
    qv_metric metric;
    uint32_t m, efc, ef, k, threads, rounds;
    size_t limit, queries;
    int json, keep;
} opts;

/* Vectors and truth shared by all phases. */
typedef struct {
    float *base, *query;
    int32_t *gt;
    size_t n, nq, dim, gtdim;
    const char *gt_source;
} dataset;

/* One output row; NaN / NULL fields are left out. */
typedef struct {
    const char *phase, *note;
    size_t n;
    double seconds, rate, qps, median_ms, p99_ms, first_ms, recall, ratio;
} row;

/* ---- small helpers ---------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char usage[] =
    "usage: quiver-db-bench --data DIR [--index hnsw|flat] [--metric l2|ip|cosine] [--m 16]\n"
    "         [--ef-construction 200] [--ef 64] [--k 10] [--threads N] [--dir TMPDIR]\n"
    "         [--limit N] [--queries N] [--rounds 3] [--json] [--keep]\n"
    "Loads DIR/base.fvecs through the database API and times upserts (synced and nosync),\n"
    "checkpoint, reopen from snapshot vs rebuild, and search through the database vs the\n"
    "bare index (truth: DIR/groundtruth.ivecs). Scratch databases go under TMPDIR (/tmp).\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("quiver-db-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(usage, stderr);
    return 2;
}

/* Report a failed library call; returns the exit status 1. */
static int lib_error(const char *what, int rc)
{
    fprintf(stderr, "quiver-db-bench: %s: %s: %s\n", what, qv_strerror(rc), qv_last_error());
    return 1;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile (0..1) of v[0..n), sorting v. */
static double quantile(double *v, size_t n, double q)
{
    if (n == 0) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

static void json_num(const char *key, double v)
{
    if (!isnan(v)) printf(",\"%s\":%.6g", key, v);
}

static const char *kind_name(const opts *o)
{
    return qv_index_kind_name(o->kind);
}

static void emit(const opts *o, const row *r)
{
    if (o->json) {
        printf("{\"phase\":");
        json_string(r->phase);
        printf(",\"index\":\"%s\",\"n\":%zu", kind_name(o), r->n);
        json_num("seconds", r->seconds);
        json_num("rate", r->rate);
        json_num("qps", r->qps);
        json_num("median_ms", r->median_ms);
        json_num("p99_ms", r->p99_ms);
        json_num("first_search_ms", r->first_ms);
        json_num("recall", r->recall);
        json_num("ratio", r->ratio);
        if (r->note) {
            printf(",\"note\":");
            json_string(r->note);
        }
        printf("}\n");
    } else {
        char rate[32] = "-", med[48] = "-", rec[16] = "-", rat[16] = "-";
        if (!isnan(r->rate)) snprintf(rate, sizeof rate, "%.0f pts/s", r->rate);
        if (!isnan(r->qps)) snprintf(rate, sizeof rate, "%.0f qps", r->qps);
        if (!isnan(r->median_ms) && !isnan(r->p99_ms))
            snprintf(med, sizeof med, "%.2f / %.2f", r->median_ms, r->p99_ms);
        if (!isnan(r->first_ms)) snprintf(med, sizeof med, "first %.2f", r->first_ms);
        if (!isnan(r->recall)) snprintf(rec, sizeof rec, "%.4f", r->recall);
        if (!isnan(r->ratio)) snprintf(rat, sizeof rat, "%.3f", r->ratio);
        printf("%-16s %-5s %7zu %9.3f %16s %16s %8s %6s  %s\n", r->phase, kind_name(o), r->n,
               r->seconds, rate, med, rec, rat, r->note ? r->note : "");
    }
    fflush(stdout);
}

static row row_new(const char *phase, size_t n)
{
    row r = { .phase = phase, .n = n, .seconds = NAN, .rate = NAN, .qps = NAN, .median_ms = NAN,
              .p99_ms = NAN, .first_ms = NAN, .recall = NAN, .ratio = NAN };
    return r;
}

/* Where the run is, on stderr (the 100k phases take tens of seconds each). */
static void progress(const char *what)
{
    fprintf(stderr, "quiver-db-bench: %s ...\n", what);
}

/* ---- arguments --------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = QV_INDEX_HNSW;
    o->metric = QV_METRIC_L2;
    o->m = 16;
    o->efc = 200;
    o->ef = 64;
    o->k = 10;
    o->rounds = 3;
    o->dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (!strcmp(a, "--keep")) { o->keep = 1; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return -1;
        }
        if (strncmp(a, "--", 2) != 0) return usage_error("unexpected argument '%s'", a);
        if (!v) return usage_error("%s needs a value", a);
        i++;
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--dir")) o->dir = v;
        else if (!strcmp(a, "--index")) {
            if (qv_index_kind_parse(v, &o->kind) != QV_OK || o->kind == QV_INDEX_IVF)
                return usage_error("--index must be hnsw or flat, got '%s'", v);
        } else if (!strcmp(a, "--metric")) {
            if (qv_metric_parse(v, &o->metric) != QV_OK)
                return usage_error("--metric must be l2, ip or cosine, got '%s'", v);
        } else if (!strcmp(a, "--m")) {
            if (parse_u64(v, 2, 100, &x)) return usage_error("--m must be 2..100, got '%s'", v);
            o->m = (uint32_t)x;
        } else if (!strcmp(a, "--ef-construction")) {
            if (parse_u64(v, 1, 100000, &x)) return usage_error("--ef-construction must be 1..100000, got '%s'", v);
            o->efc = (uint32_t)x;
        } else if (!strcmp(a, "--ef")) {
            if (parse_u64(v, 1, 100000, &x)) return usage_error("--ef must be 1..100000, got '%s'", v);
            o->ef = (uint32_t)x;
        } else if (!strcmp(a, "--k")) {
            if (parse_u64(v, 1, QV_MAX_K, &x)) return usage_error("--k must be 1..%u, got '%s'", QV_MAX_K, v);
            o->k = (uint32_t)x;
        } else if (!strcmp(a, "--threads")) {
            if (parse_u64(v, 0, 1024, &x)) return usage_error("--threads must be 0..1024 (0 = all cores), got '%s'", v);
            o->threads = (uint32_t)x;
        } else if (!strcmp(a, "--rounds")) {
            if (parse_u64(v, 1, 100, &x)) return usage_error("--rounds must be 1..100, got '%s'", v);
            o->rounds = (uint32_t)x;
        } else if (!strcmp(a, "--limit")) {
            if (parse_u64(v, 1, SIZE_MAX, &x)) return usage_error("--limit must be a positive integer, got '%s'", v);
            o->limit = (size_t)x;
        } else if (!strcmp(a, "--queries")) {
            if (parse_u64(v, 1, SIZE_MAX, &x)) return usage_error("--queries must be a positive integer, got '%s'", v);
            o->queries = (size_t)x;
        } else return usage_error("unknown option '%s'", a);
    }
    if (!o->data) return usage_error("--data DIR is required");
    return 0;
}

/* ---- data ---------------------------------------------------------------------------------- */

static void dataset_release(dataset *d)
{
    qv_free(d->base);
    qv_free(d->query);
    qv_free(d->gt);
    memset(d, 0, sizeof *d);
}

/* Exact top-k of every query over the points used, from a flat index. */
static int exact_truth(const opts *o, dataset *d)
{
    qv_index_params p;
    qv_search_params sp;
    qv_index *ix = NULL;
    qv_hit *hits = NULL;
    size_t *nh = NULL;
    uint64_t *ids = NULL;
    int rc;

    qv_index_params_init(&p, QV_INDEX_FLAT, (uint32_t)d->dim, o->metric);
    p.threads = o->threads;
    qv_search_params_init(&sp, o->k);
    qv_free(d->gt);
    d->gt = NULL;
    ids = malloc(d->n * sizeof *ids);
    hits = malloc(d->nq * o->k * sizeof *hits);
    nh = malloc(d->nq * sizeof *nh);
    d->gt = malloc(d->nq * o->k * sizeof *d->gt);
    if (!ids || !hits || !nh || !d->gt) {
        fprintf(stderr, "quiver-db-bench: out of memory\n");
        rc = 1;
        goto cleanup;
    }
    for (size_t i = 0; i < d->n; i++) ids[i] = i;
    if ((rc = qv_index_new(&p, &ix)) != QV_OK || (rc = qv_index_add(ix, d->n, ids, d->base)) != QV_OK ||
        (rc = qv_index_search_batch(ix, d->nq, d->query, &sp, hits, nh)) != QV_OK) {
        rc = lib_error("exact ground truth (flat index)", rc);
        goto cleanup;
    }
    for (size_t q = 0; q < d->nq; q++)
        for (size_t j = 0; j < o->k; j++)
            d->gt[q * o->k + j] = j < nh[q] ? (int32_t)hits[q * o->k + j].id : -1;
    d->gtdim = o->k;
    rc = 0;
cleanup:
    qv_index_free(ix);
    free(ids);
    free(hits);
    free(nh);
    return rc;
}

static int load_data(const opts *o, dataset *d)
{
    char path[4096];
    size_t nb, qd, gn;
    int rc;

    memset(d, 0, sizeof *d);
    snprintf(path, sizeof path, "%s/base.fvecs", o->data);
    if ((rc = qv_read_vectors(path, &d->base, &nb, &d->dim)) != QV_OK) return lib_error("reading base vectors", rc);
    snprintf(path, sizeof path, "%s/query.fvecs", o->data);
    if ((rc = qv_read_vectors(path, &d->query, &d->nq, &qd)) != QV_OK) return lib_error("reading queries", rc);
    if (qd != d->dim) {
        fprintf(stderr, "quiver-db-bench: queries have dimension %zu, base vectors %zu\n", qd, d->dim);
        return 1;
    }
    if (nb == 0 || d->nq == 0) {
        fprintf(stderr, "quiver-db-bench: %s: empty base or query file\n", o->data);
        return 1;
    }
    d->n = o->limit && o->limit < nb ? o->limit : nb;
    size_t nq_file = d->nq;
    if (o->queries && o->queries < d->nq) d->nq = o->queries;

    d->gt_source = "groundtruth.ivecs";
    snprintf(path, sizeof path, "%s/groundtruth.ivecs", o->data);
    if (d->n < nb) {
        d->gt_source = "exact flat search over the points used (--limit)";
    } else if (access(path, R_OK) != 0) {
        d->gt_source = "exact flat search (no groundtruth.ivecs)";
    } else {
        if ((rc = qv_read_ivecs(path, &d->gt, &gn, &d->gtdim)) != QV_OK) return lib_error("reading ground truth", rc);
        if (gn != nq_file || d->gtdim < o->k) {
            fprintf(stderr, "quiver-db-bench: %s: %zu rows of %zu neighbours; need %zu rows of >= %u (--k)\n", path,
                    gn, d->gtdim, nq_file, o->k);
            return 2;
        }
        return 0;
    }
    return 0;                      /* exact_truth() later, after the fork (it uses threads) */
}

static double recall_at_k(const dataset *d, uint32_t k, const qv_hit *hits, const size_t *nh)
{
    size_t found = 0;
    for (size_t q = 0; q < d->nq; q++) {
        const int32_t *g = d->gt + q * d->gtdim;
        for (size_t j = 0; j < nh[q] && j < k; j++)
            for (size_t t = 0; t < k; t++)
                if (g[t] >= 0 && (uint64_t)g[t] == hits[q * k + j].id) {
                    found++;
                    break;
                }
    }
    return (double)found / ((double)d->nq * k);
}

/* ---- the environment ------------------------------------------------------------------ */

static void cpu_model(char *buf, size_t len)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(buf, len, "unknown");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *p = strchr(line, ':');
        if (!p) continue;
        for (p++; *p == ' ' || *p == '\t'; p++) {}
        p[strcspn(p, "\n")] = '\0';
        snprintf(buf, len, "%s", p);
        break;
    }
    fclose(f);
}

static const char *fs_name(const char *dir)
{
    struct statfs s;
    if (statfs(dir, &s) != 0) return "unknown";
    switch ((unsigned long)s.f_type) {
    case 0xEF53ul:     return "ext4";
    case 0x01021994ul: return "tmpfs (fsync is free: synced numbers mean little)";
    case 0x58465342ul: return "xfs";
    case 0x9123683Eul: return "btrfs";
    case 0x794C7630ul: return "overlayfs";
    default:           return "other";
    }
}

static void header(const opts *o, const dataset *d, const char *root)
{
    char date[64], cpu[256];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S%z", &tm);
    cpu_model(cpu, sizeof cpu);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const char *sync = "upsert_sync/checkpoint/reopen: synced (fsync per commit); upsert_nosync/reopen_rebuild: "
                       "QV_DB_NOSYNC";
    if (o->json) {
        printf("{\"phase\":\"header\",\"date\":\"%s\",\"cpu\":", date);
        json_string(cpu);
        printf(",\"cores\":%ld,\"version\":\"%s\",\"data\":", cores, qv_version());
        json_string(o->data);
        printf(",\"index\":\"%s\",\"metric\":\"%s\",\"n\":%zu,\"dim\":%zu,\"queries\":%zu,\"k\":%u,\"m\":%u,"
               "\"ef_construction\":%u,\"ef\":%u,\"threads\":%u,\"batch\":%u,\"rounds\":%u,\"dir\":",
               kind_name(o), qv_metric_name(o->metric), d->n, d->dim, d->nq, o->k, o->m, o->efc, o->ef, o->threads,
               BATCH, o->rounds);
        json_string(root);
        printf(",\"filesystem\":");
        json_string(fs_name(root));
        printf(",\"synced\":");
        json_string(sync);
        printf(",\"truth\":");
        json_string(d->gt_source);
        printf("}\n");
    } else {
        printf("# quiver-db-bench %s  %s\n", qv_version(), date);
        printf("# cpu: %s (%ld online cores)\n", cpu, cores);
        printf("# data: %s  n=%zu dim=%zu queries=%zu metric=%s  truth: %s\n", o->data, d->n, d->dim, d->nq,
               qv_metric_name(o->metric), d->gt_source);
        printf("# index: %s m=%u ef_construction=%u ef=%u k=%u threads=%u%s  batch=%u rounds=%u\n", kind_name(o),
               o->m, o->efc, o->ef, o->k, o->threads, o->threads ? "" : " (all cores)", BATCH, o->rounds);
        printf("# dir: %s (%s)\n# sync: %s\n", root, fs_name(root), sync);
        printf("%-16s %-5s %7s %9s %16s %16s %8s %6s  %s\n", "phase", "index", "n", "seconds", "rate",
               "median/p99 ms", "recall", "ratio", "note");
    }
    fflush(stdout);
}

/* ---- phases ------------------------------------------------------------------------------ */

static void index_params(const opts *o, const dataset *d, qv_index_params *p)
{
    qv_index_params_init(p, o->kind, (uint32_t)d->dim, o->metric);
    p->m = o->m;
    p->ef_construction = o->efc;
    p->ef_search = o->ef;
    p->threads = o->threads;
    p->seed = 42;
}

/* What an upsert phase measured; crosses the pipe from the child as plain bytes. */
typedef struct {
    int status;                    /* 0 ok, else the exit status to use */
    double seconds, median_ms, p99_ms;
    char err[512];
} upsert_result;

/* Create the collection in dir and upsert every point in batches of BATCH. The database
 * is left open in *db_out (caller closes it, or does not: see phase 2). */
static void upsert_all(const opts *o, const dataset *d, const char *dir, unsigned flags, qv_db **db_out,
                       qv_coll **c_out, upsert_result *res)
{
    qv_db_options dopt;
    qv_collection_config cfg;
    qv_db *db = NULL;
    qv_coll *c = NULL;
    uint64_t *ids = NULL;
    size_t nb = (d->n + BATCH - 1) / BATCH;
    double *lat = NULL;
    int rc;

    memset(res, 0, sizeof *res);
    *db_out = NULL;
    *c_out = NULL;
    qv_db_options_init(&dopt);
    dopt.flags = flags;
    memset(&cfg, 0, sizeof cfg);
    index_params(o, d, &cfg.index);
    ids = malloc(d->n * sizeof *ids);
    lat = malloc(nb * sizeof *lat);
    if (!ids || !lat) {
        snprintf(res->err, sizeof res->err, "out of memory");
        res->status = 1;
        goto cleanup;
    }
    for (size_t i = 0; i < d->n; i++) ids[i] = i;
    if ((rc = qv_db_open(dir, &dopt, &db)) != QV_OK || (rc = qv_collection_create(db, COLL_NAME, &cfg, &c)) != QV_OK) {
        snprintf(res->err, sizeof res->err, "opening %s: %s: %s", dir, qv_strerror(rc), qv_last_error());
        res->status = 1;
        goto cleanup;
    }
    double t0 = now_s();
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * BATCH, cnt = d->n - off < BATCH ? d->n - off : BATCH;
        double s = now_s();
        if ((rc = qv_upsert(c, cnt, ids + off, d->base + off * d->dim, NULL)) != QV_OK) {
            snprintf(res->err, sizeof res->err, "qv_upsert of batch %zu: %s: %s", b, qv_strerror(rc), qv_last_error());
            res->status = 1;
            goto cleanup;
        }
        lat[b] = now_s() - s;
    }
    res->seconds = now_s() - t0;
    res->p99_ms = quantile(lat, nb, 0.99) * 1e3;
    res->median_ms = quantile(lat, nb, 0.5) * 1e3;
    *db_out = db;
    *c_out = c;
    db = NULL;
cleanup:
    qv_db_close(db);
    free(ids);
    free(lat);
}

static void emit_upsert(const opts *o, const dataset *d, const char *phase, const upsert_result *u, const char *note)
{
    row r = row_new(phase, d->n);
    r.seconds = u->seconds;
    r.rate = (double)d->n / u->seconds;
    r.median_ms = u->median_ms;
    r.p99_ms = u->p99_ms;
    r.note = note;
    emit(o, &r);
}

/* Phase 2 in a child process that ends without closing (no checkpoint, no snapshot). */
static int upsert_nosync_child(const opts *o, const dataset *d, const char *dir, upsert_result *res)
{
    int fds[2];
    pid_t pid;
    int st;

    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0) {
        perror("quiver-db-bench: pipe");
        return 1;
    }
    if ((pid = fork()) < 0) {
        perror("quiver-db-bench: fork");
        close(fds[0]);
        close(fds[1]);
        return 1;
    }
    if (pid == 0) {
        qv_db *db;
        qv_coll *c;
        upsert_result r;
        close(fds[0]);
        upsert_all(o, d, dir, QV_DB_NOSYNC, &db, &c, &r);
        ssize_t w = write(fds[1], &r, sizeof r);
        /* Leave without qv_db_close: a writer that died before its first checkpoint. */
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    size_t got = 0;
    while (got < sizeof *res) {
        ssize_t k = read(fds[0], (char *)res + got, sizeof *res - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fds[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (got != sizeof *res || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "quiver-db-bench: the nosync child process failed (status %d)\n", st);
        return 1;
    }
    if (res->status) {
        fprintf(stderr, "quiver-db-bench: upsert_nosync: %s\n", res->err);
        return res->status;
    }
    return 0;
}

/* Open dir and its collection; time it and the first search. Checks the point count. */
static int reopen(const opts *o, const dataset *d, const char *phase, const char *dir, unsigned flags,
                  const char *note, qv_db **db_out, qv_coll **c_out)
{
    qv_db_options dopt;
    qv_db *db = NULL;
    qv_coll *c = NULL;
    qv_collection_info info;
    qv_search_params sp;
    qv_hit hits[QV_MAX_K];
    size_t nh;
    int rc;

    qv_db_options_init(&dopt);
    dopt.flags = flags;
    qv_search_params_init(&sp, o->k);
    sp.ef = o->ef;
    double t0 = now_s();
    if ((rc = qv_db_open(dir, &dopt, &db)) != QV_OK) return lib_error(dir, rc);
    if ((rc = qv_collection_open(db, COLL_NAME, &c)) != QV_OK) {
        qv_db_close(db);
        return lib_error("qv_collection_open", rc);
    }
    double t1 = now_s();
    if ((rc = qv_search(c, d->query, &sp, hits, &nh)) != QV_OK) {
        qv_db_close(db);
        return lib_error("first search", rc);
    }
    double t2 = now_s();
    if ((rc = qv_collection_get_info(c, &info)) != QV_OK) {
        qv_db_close(db);
        return lib_error("qv_collection_get_info", rc);
    }
    if (info.count != d->n) {
        fprintf(stderr, "quiver-db-bench: %s: reopened collection holds %zu points, expected %zu\n", phase,
                info.count, d->n);
        qv_db_close(db);
        return 1;
    }
    row r = row_new(phase, d->n);
    r.seconds = t1 - t0;
    r.rate = (double)d->n / r.seconds;
    r.first_ms = (t2 - t1) * 1e3;
    r.note = note;
    emit(o, &r);
    *db_out = db;
    *c_out = c;
    return 0;
}

static int timed_close(const opts *o, const dataset *d, const char *phase, qv_db *db, const char *note)
{
    double t0 = now_s();
    int rc = qv_db_close(db);
    if (rc != QV_OK) return lib_error("qv_db_close", rc);
    row r = row_new(phase, d->n);
    r.seconds = now_s() - t0;
    r.note = note;
    emit(o, &r);
    return 0;
}

/* The bare index for the search comparison: the same params and points, added in the
 * same batches of BATCH in the same order as the upserts gave them to the collection, so
 * the two graphs are built alike and the search ratio measures the API, not the build. */
static int bare_build(const opts *o, const dataset *d, qv_index **out)
{
    qv_index_params p;
    qv_index *ix = NULL;
    uint64_t *ids = malloc(d->n * sizeof *ids);
    int rc = QV_OK;

    *out = NULL;
    if (!ids) {
        fprintf(stderr, "quiver-db-bench: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < d->n; i++) ids[i] = i;
    index_params(o, d, &p);
    double t0 = now_s();
    if ((rc = qv_index_new(&p, &ix)) == QV_OK)
        for (size_t off = 0; off < d->n && rc == QV_OK; off += BATCH)
            rc = qv_index_add(ix, d->n - off < BATCH ? d->n - off : BATCH, ids + off, d->base + off * d->dim);
    if (rc != QV_OK) {
        free(ids);
        qv_index_free(ix);
        return lib_error("bare index build", rc);
    }
    row r = row_new("bare_build", d->n);
    r.seconds = now_s() - t0;
    r.rate = (double)d->n / r.seconds;
    r.note = "qv_index_add in the same batches of 1,000, no LMDB: the index share of the upserts and of a rebuild";
    emit(o, &r);
    free(ids);
    *out = ix;
    return 0;
}

/* Single-thread loop over the queries; through the collection when c, else the bare index. */
static int search_loop(const opts *o, const dataset *d, qv_coll *c, const qv_index *ix, qv_hit *hits, size_t *nh,
                       double *secs)
{
    qv_search_params sp;
    qv_search_params_init(&sp, o->k);
    sp.ef = o->ef;
    double t0 = now_s();
    for (size_t q = 0; q < d->nq; q++) {
        const float *qv = d->query + q * d->dim;
        int rc = c ? qv_search(c, qv, &sp, hits + q * o->k, nh + q)
                   : qv_index_search(ix, qv, &sp, hits + q * o->k, nh + q);
        if (rc != QV_OK) return lib_error(c ? "qv_search" : "qv_index_search", rc);
    }
    *secs = now_s() - t0;
    return 0;
}

static int batch_once(const opts *o, const dataset *d, qv_coll *c, const qv_index *ix, qv_hit *hits, size_t *nh,
                      double *secs)
{
    qv_search_params sp;
    qv_search_params_init(&sp, o->k);
    sp.ef = o->ef;
    double t0 = now_s();
    int rc = c ? qv_search_batch(c, d->nq, d->query, &sp, hits, nh)
               : qv_index_search_batch(ix, d->nq, d->query, &sp, hits, nh);
    if (rc != QV_OK) return lib_error(c ? "qv_search_batch" : "qv_index_search_batch", rc);
    *secs = now_s() - t0;
    return 0;
}

typedef int (*search_fn)(const opts *o, const dataset *d, qv_coll *c, const qv_index *ix, qv_hit *hits,
                         size_t *nh, double *secs);

/* Alternate db and bare for o->rounds rounds; the best round of each counts. A round
 * repeats whole passes over the queries until it has run MIN_ROUND_S, so that small query
 * sets (siftsmall has 100) still time something longer than the clock's noise. */
static int compare(const opts *o, const dataset *d, qv_coll *c, const qv_index *ix, search_fn fn,
                   const char *db_phase, const char *bare_phase, const char *db_note, const char *bare_note)
{
    qv_hit *hits = malloc(d->nq * o->k * sizeof *hits);
    size_t *nh = malloc(d->nq * sizeof *nh);
    double best[2] = { 0, 0 }, rec[2] = { NAN, NAN }, s;
    int rc = 1;

    if (!hits || !nh) {
        fprintf(stderr, "quiver-db-bench: out of memory\n");
        goto cleanup;
    }
    for (uint32_t r = 0; r < o->rounds; r++) {
        /* Start with the other side every other round, so neither always runs first. */
        for (int step = 0; step < 2; step++) {
            int side = step ^ (int)(r & 1);          /* 0 = db, 1 = bare */
            double total = 0;
            size_t passes = 0;
            do {
                if ((rc = fn(o, d, side == 0 ? c : NULL, ix, hits, nh, &s)) != 0) goto cleanup;
                if (r == 0 && passes == 0) rec[side] = recall_at_k(d, o->k, hits, nh);
                total += s;
                passes++;
            } while (total < MIN_ROUND_S);
            double qps = (double)(passes * d->nq) / total;
            if (qps > best[side]) best[side] = qps;
        }
    }
    row b = row_new(bare_phase, d->nq);
    b.qps = best[1];
    b.seconds = (double)d->nq / best[1];
    b.recall = rec[1];
    b.note = bare_note;
    emit(o, &b);
    row a = row_new(db_phase, d->nq);
    a.qps = best[0];
    a.seconds = (double)d->nq / best[0];
    a.recall = rec[0];
    a.ratio = best[0] / best[1];
    a.note = a.ratio >= 0.9 ? db_note : "BELOW the 0.9x target (ratio = db/bare qps)";
    emit(o, &a);
    rc = 0;
cleanup:
    free(hits);
    free(nh);
    return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    opts o;
    dataset d;
    char root[4096], dsync[4200], dnosync[4200];
    qv_db *db = NULL, *db2 = NULL;
    qv_coll *c = NULL, *c2 = NULL;
    qv_index *ix = NULL;
    upsert_result us, un;
    int status, made_root = 0;

    if ((status = parse_args(argc, argv, &o)) != 0) return status < 0 ? 0 : status;
    memset(&d, 0, sizeof d);
    if ((status = load_data(&o, &d)) != 0) goto cleanup;

    snprintf(root, sizeof root, "%s/qv-db-bench.XXXXXX", o.dir);
    if (!mkdtemp(root)) {
        fprintf(stderr, "quiver-db-bench: cannot create a directory under %s: %s\n", o.dir, strerror(errno));
        status = 1;
        goto cleanup;
    }
    made_root = 1;
    snprintf(dsync, sizeof dsync, "%s/sync", root);
    snprintf(dnosync, sizeof dnosync, "%s/nosync", root);
    header(&o, &d, root);

    /* Phase 2 first, in a child, while this process has no threads yet (see the top). */
    progress("upsert_nosync (child process)");
    if ((status = upsert_nosync_child(&o, &d, dnosync, &un)) != 0) goto cleanup;

    if (!d.gt) {
        progress("computing the exact ground truth");
        if ((status = exact_truth(&o, &d)) != 0) goto cleanup;
    }
    progress("upsert_sync");
    upsert_all(&o, &d, dsync, 0, &db, &c, &us);
    if (us.status) {
        fprintf(stderr, "quiver-db-bench: upsert_sync: %s\n", us.err);
        status = us.status;
        goto cleanup;
    }
    emit_upsert(&o, &d, "upsert_sync", &us, "default options: every batch fsync'ed");
    emit_upsert(&o, &d, "upsert_nosync", &un, "QV_DB_NOSYNC (run first, in a child process)");

    progress("checkpoint");
    double t0 = now_s();
    int rc = qv_checkpoint(c);
    if (rc != QV_OK) {
        status = lib_error("qv_checkpoint", rc);
        goto cleanup;
    }
    row r = row_new("checkpoint", d.n);
    r.seconds = now_s() - t0;
    r.note = "qv_checkpoint after the synced load: index snapshot into LMDB";
    emit(&o, &r);
    status = timed_close(&o, &d, "close", db, "qv_db_close right after the checkpoint");
    db = NULL;
    if (status) goto cleanup;

    progress("reopen_snapshot");
    if ((status = reopen(&o, &d, "reopen_snapshot", dsync, 0,
                         "qv_db_open + qv_collection_open, served by the snapshot", &db, &c)) != 0)
        goto cleanup;

    progress("reopen_rebuild");
    if ((status = reopen(&o, &d, "reopen_rebuild", dnosync, QV_DB_NOSYNC,
                         "the same with no snapshot (writer exited before a checkpoint): rebuild from stored "
                         "vectors", &db2, &c2)) != 0)
        goto cleanup;
    status = timed_close(&o, &d, "close_rebuilt", db2, "qv_db_close of the rebuilt one: writes its first snapshot");
    db2 = NULL;
    if (status) goto cleanup;

    progress("bare_build");
    if ((status = bare_build(&o, &d, &ix)) != 0) goto cleanup;

    progress("search (single thread)");
    if ((status = compare(&o, &d, c, ix, search_loop, "search_db", "search_bare",
                          "qv_search, one thread, ratio = db/bare qps", "qv_index_search, one thread")) != 0)
        goto cleanup;
    progress("search_batch");
    if ((status = compare(&o, &d, c, ix, batch_once, "batch_db", "batch_bare",
                          "qv_search_batch, index threads, ratio = db/bare qps", "qv_index_search_batch")) != 0)
        goto cleanup;
    status = 0;

cleanup:
    qv_index_free(ix);
    if (db) {
        int crc = qv_db_close(db);
        if (crc != QV_OK && status == 0) status = lib_error("qv_db_close", crc);
    }
    qv_db_close(db2);
    if (made_root) {
        if (o.keep) fprintf(stderr, "quiver-db-bench: kept %s\n", root);
        else nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    dataset_release(&d);
    return status;
}
