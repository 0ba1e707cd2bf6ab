/*
 * bench/bench_run.c -- the measurement loops, the same for every engine: build once
 * (timed, with resident-memory growth around it), then one row per search setting (ef for
 * hnsw, nprobe for ivf, one row for flat).
 *
 * Single-query mode: the queries are split into --threads contiguous ranges; each thread
 * times each of its queries (latencies -> p50/p99) and all threads start together at a
 * gate; QPS = nq / wall time from opening the gate to the last thread's end.
 * Batch mode: one search_batch call over all queries; QPS = nq / its wall time; there is
 * no per-query latency, so p50/p99 are reported as absent.
 * Every engine is built first (one after the other, so the resident-memory growth of each
 * build is its own); then, per setting, the engines take turns (interleaved), so that load
 * from other processes on a shared machine does not fall on one library only. With
 * --runs R each setting runs R times per engine and the run of median wall time is
 * reported (the lower middle one for an even R). Not ann-benchmarks' best-of-N: the peer
 * drivers of ../shared/peers (glass, SymphonyQG) report medians, and a best-of-N beside
 * them favoured quiver by the spread of its runs (debian-desc-384, 2026-12-05: 1,000
 * queries take ~25 ms per pass and passes of one binary moved 10-15%).
 */
#include "bench/bench.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- progress on stderr ------------------------------------------------------------ */

typedef struct {
    const char *library;
    double start, last;
    pthread_mutex_t lock;
} progress_state;

/* At most one line per second (plus the final one), from whichever thread reports. */
static void print_progress(const char *phase, size_t done, size_t total, void *arg)
{
    progress_state *ps = arg;
    double now = bench_now();
    pthread_mutex_lock(&ps->lock);
    if (now - ps->last >= 1.0 || (total && done == total)) {
        ps->last = now;
        if (total) fprintf(stderr, "%s: %s %zu/%zu (%.1f s)\n", ps->library, phase, done, total, now - ps->start);
        else fprintf(stderr, "%s: %s %zu (%.1f s)\n", ps->library, phase, done, now - ps->start);
    }
    pthread_mutex_unlock(&ps->lock);
}

/* ---- one measured pass --------------------------------------------------------------- */

/* All search threads start together when main opens the gate (or all leave if it aborts). */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int state;                     /* 0 = closed, 1 = go, -1 = abort */
} start_gate;

typedef struct {
    const bench_engine_ops *ops;
    bench_engine *e;
    const float *queries;
    size_t dim, lo, hi;
    uint32_t k;
    int64_t *ids;                  /* nq*k, shared; each thread writes its rows */
    double *lat_us;                /* nq, shared */
    start_gate *gate;
    int failed;
    char err[256];
} worker;

static void run_range(worker *w)
{
    for (size_t i = w->lo; i < w->hi; i++) {
        double t0 = bench_now();
        if (w->ops->search_one(w->e, w->queries + i * w->dim, w->k, w->ids + i * w->k, w->err, sizeof w->err)) {
            w->failed = 1;
            return;
        }
        w->lat_us[i] = (bench_now() - t0) * 1e6;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    int state;
    pthread_mutex_lock(&w->gate->lock);
    while ((state = w->gate->state) == 0) pthread_cond_wait(&w->gate->cond, &w->gate->lock);
    pthread_mutex_unlock(&w->gate->lock);
    if (state > 0) run_range(w);
    return NULL;
}

static void gate_open(start_gate *g, int state)
{
    pthread_mutex_lock(&g->lock);
    g->state = state;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Single-query pass; returns wall seconds, or -1 with err filled. */
static double pass_single(const bench_engine_ops *ops, bench_engine *e, const float *queries, size_t nq,
                          size_t dim, uint32_t k, uint32_t threads, int64_t *ids, double *lat_us,
                          char *err, size_t errlen)
{
    start_gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    pthread_t *tid = NULL;
    worker *ws = NULL;
    uint32_t started = 0;
    double wall = -1, t0;

    if (threads > nq) threads = (uint32_t)nq;
    if (threads <= 1) {
        worker w = {ops, e, queries, dim, 0, nq, k, ids, lat_us, NULL, 0, {0}};
        t0 = bench_now();
        run_range(&w);
        wall = bench_now() - t0;
        if (w.failed) { snprintf(err, errlen, "%s", w.err); return -1; }
        return wall;
    }
    ws = calloc(threads, sizeof *ws);
    tid = calloc(threads, sizeof *tid);
    if (!ws || !tid) { snprintf(err, errlen, "out of memory"); goto cleanup; }
    for (uint32_t t = 0; t < threads; t++) {
        worker w = {ops, e, queries, dim, nq * t / threads, nq * (t + 1) / threads, k, ids, lat_us, &gate, 0, {0}};
        ws[t] = w;
    }
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, worker_main, &ws[started]) != 0) break;
    if (started < threads) {
        gate_open(&gate, -1);
        for (uint32_t t = 0; t < started; t++) pthread_join(tid[t], NULL);
        snprintf(err, errlen, "cannot start %u search threads", threads);
        goto cleanup;
    }
    t0 = bench_now();
    gate_open(&gate, 1);
    for (uint32_t t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    wall = bench_now() - t0;
    for (uint32_t t = 0; t < threads && wall >= 0; t++)
        if (ws[t].failed) { snprintf(err, errlen, "%s", ws[t].err); wall = -1; }
cleanup:
    free(ws);
    free(tid);
    return wall;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
    size_t r = (size_t)ceil(p * (double)n);
    return v[r ? r - 1 : 0];
}

/* ---- rows ---------------------------------------------------------------------------- */

static void describe_params(const bench_opts *o, const bench_build_params *bp, const char *library,
                            bench_row *r)
{
    switch (o->kind) {
    case QV_INDEX_HNSW:
        snprintf(r->params_json, sizeof r->params_json, "{\"m\":%u,\"ef_construction\":%u}", bp->m, bp->ef_construction);
        snprintf(r->name, sizeof r->name, "%s hnsw(M=%u,efC=%u)", library, bp->m, bp->ef_construction);
        break;
    case QV_INDEX_IVF:
        snprintf(r->params_json, sizeof r->params_json, "{\"nlist\":%u,\"kmeans_iters\":%u}", bp->nlist, bp->kmeans_iters);
        snprintf(r->name, sizeof r->name, "%s ivf(nlist=%u)", library, bp->nlist);
        break;
    default:
        snprintf(r->params_json, sizeof r->params_json, "{}");
        snprintf(r->name, sizeof r->name, "%s flat", library);
        break;
    }
    if (bp->quant != QV_QUANT_NONE) {
        /* "{...}" -> "{...,"quant":"sq4","oversampling":3,"rescore":true}"; the name gets ",sq4". */
        size_t len = strlen(r->params_json), nl = strlen(r->name);
        if (len > 1) {
            snprintf(r->params_json + len - 1, sizeof r->params_json - (len - 1),
                     "%s\"quant\":\"%s\",\"oversampling\":%g,\"explore\":%g,\"rescore\":%s,\"vec_type\":\"%s\"}",
                     len > 2 ? "," : "", qv_quant_name(bp->quant), (double)bp->oversampling, (double)bp->explore,
                     bp->no_rescore ? "false" : "true", qv_vec_type_name(bp->vec_type));
        }
        if (nl > 1 && r->name[nl - 1] == ')') {
            char os[32] = "", tail[80];
            if (bp->oversampling > 0) snprintf(os, sizeof os, ",os=%g", (double)bp->oversampling);
            if (bp->explore > 0) snprintf(os + strlen(os), sizeof os - strlen(os), ",ex=%g", (double)bp->explore);
            const int vt = bp->vec_type != QV_VEC_F32;     /* f32, the default, is not named */
            snprintf(tail, sizeof tail, ",%s%s%s%s%s)", qv_quant_name(bp->quant), os, bp->no_rescore ? ",norescore" : "",
                     vt ? "," : "", vt ? qv_vec_type_name(bp->vec_type) : "");
            if (nl - 1 + strlen(tail) < sizeof r->name) memcpy(r->name + nl - 1, tail, strlen(tail) + 1);
        }
    }
    if (o->batch) {
        size_t len = strlen(r->name);
        snprintf(r->name + len, sizeof r->name - len, " batch");
    }
}

static int append_row(bench_row **rows, size_t *n_rows, const bench_row *r)
{
    bench_row *grown = realloc(*rows, (*n_rows + 1) * sizeof *grown);
    if (!grown) return -1;
    grown[(*n_rows)++] = *r;
    *rows = grown;
    return 0;
}

static uint32_t default_nlist(size_t n)
{
    uint32_t nlist = (uint32_t)lround(4.0 * sqrt((double)n));
    if (nlist < 1) nlist = 1;
    if (nlist > n) nlist = (uint32_t)n;
    return nlist;
}

/* --index-cache: the file an index with these settings is saved in, named after every
 * setting that changes the built graph (the dataset by its directory's last name). */
static void cache_path(const bench_opts *o, const bench_data *d, const bench_build_params *bp, const char *lib,
                       char *path, size_t len)
{
    const char *dir = o->data_dir, *end = dir + strlen(dir);
    while (end > dir + 1 && end[-1] == '/') end--;
    const char *start = end;
    while (start > dir && start[-1] != '/') start--;
    snprintf(path, len, "%s/%s-%.*s-%s-n%zu-m%u-efc%u-nlist%u-t%u-%s%s%s.idx", o->index_cache, lib,
             (int)(end - start), start, qv_index_kind_name(bp->kind), d->nb, bp->m, bp->ef_construction,
             bp->kind == QV_INDEX_IVF ? bp->nlist : 0, bp->threads, qv_quant_name(bp->quant),
             bp->vec_type != QV_VEC_F32 ? "-" : "",
             bp->vec_type != QV_VEC_F32 ? qv_vec_type_name(bp->vec_type) : "");   /* f32 keeps the names of earlier caches */
}

/* The saved index of a cache path and its build time (path.build_s); 0 when loaded, 1 when
 * there is none. */
static int cache_load(const bench_engine_ops *ops, const char *path, size_t n, bench_built *b, char *err,
                      size_t errlen)
{
    char side[4200];
    snprintf(side, sizeof side, "%s.build_s", path);
    FILE *f = fopen(side, "r");
    if (!f) return 1;
    double build_s = -1;
    int got = fscanf(f, "%lf", &build_s);
    fclose(f);
    if (got != 1) return 1;
    double t0 = bench_now();
    if (ops->load(&b->params, n, path, &b->e, err, errlen) != 0) return -1;
    fprintf(stderr, "%s: loaded %s in %.2f s (built in %.2f s when saved)\n", ops->name, path,
            bench_now() - t0, build_s);
    b->build_s = build_s;
    b->from_cache = 1;
    return 0;
}

static int cache_save(const bench_engine_ops *ops, const char *path, const bench_built *b, char *err,
                      size_t errlen)
{
    char side[4200];
    if (ops->save(b->e, path, err, errlen) != 0) return -1;
    snprintf(side, sizeof side, "%s.build_s", path);   /* written last: marks the save complete */
    FILE *f = fopen(side, "w");
    if (!f || fprintf(f, "%.3f\n", b->build_s) < 0 || fclose(f) != 0) {
        snprintf(err, errlen, "--index-cache: cannot write %s", side);
        return -1;
    }
    fprintf(stderr, "%s: saved to %s\n", ops->name, path);
    return 0;
}

int bench_build(const bench_engine_ops *ops, const bench_opts *o, const bench_data *d, const uint32_t *buckets,
                bench_built *b, char *err, size_t errlen)
{
    const int is_quiver = ops == &bench_quiver_ops || ops == &bench_quiver_db_ops;
    /* Quiver normalizes cosine data itself; the peers get unit vectors (cosine = ip). */
    const float *base = is_quiver || !d->base_unit ? d->base : d->base_unit;
    const uint32_t build_threads = o->build_threads ? o->build_threads : bench_cpu_count();
    progress_state ps = {ops->name, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    bench_build_params *bp = &b->params;

    memset(b, 0, sizeof *b);
    b->ops = ops;
    b->queries = is_quiver || !d->query_unit ? d->query : d->query_unit;
    bp->kind = o->kind;
    bp->metric = d->metric;
    bp->dim = (uint32_t)d->dim;
    bp->m = o->m;
    bp->ef_construction = o->ef_construction;
    bp->nlist = o->nlist ? o->nlist : default_nlist(d->nb);
    bp->kmeans_iters = o->kmeans_iters;
    /* A Quiver index fixes its thread count (add and batch search) at creation, so a batch
     * run builds with the search thread count. */
    bp->threads = is_quiver && o->batch ? o->threads : build_threads;
    bp->seed = 42;
    bp->gpu = is_quiver && o->gpu;
    bp->quant = is_quiver ? o->quant : QV_QUANT_NONE;
    bp->vec_type = is_quiver ? o->vec_type : QV_VEC_F32;
    bp->oversampling = is_quiver ? o->oversampling : 0;
    bp->explore = is_quiver ? o->explore : 0;
    bp->no_rescore = is_quiver && o->no_rescore;
    bp->buckets = buckets;
    if (o->kind == QV_INDEX_IVF && bp->nlist > d->nb) {
        snprintf(err, errlen, "--nlist %u is larger than the %zu base vectors", bp->nlist, d->nb);
        return -1;
    }

    bp->progress = print_progress;
    bp->progress_arg = &ps;
    bench_set_blas_threads((int)bp->threads);
    char cpath[4096] = "";
    const int cached = o->index_cache && ops->save && ops->load && !buckets;
    if (cached) {
        cache_path(o, d, bp, ops->name, cpath, sizeof cpath);
        int got = cache_load(ops, cpath, d->nb, b, err, errlen);
        if (got < 0) return -1;
        if (got == 0) {
            bp->progress = NULL;
            bp->progress_arg = NULL;
            bp->buckets = NULL;
            b->memory_bytes = ops->memory(b->e, &b->memory_source);
            if (ops->memory_split) ops->memory_split(b->e, &b->memory_search_bytes, &b->memory_vectors_bytes);
            b->reload_s = b->first_search_s = -1;
            return 0;
        }
    }
    long long rss0 = bench_rss_bytes();
    ps.start = ps.last = bench_now();
    fprintf(stderr, "%s: building %s over %zu vectors (%u threads)\n", ops->name, qv_index_kind_name(o->kind),
            d->nb, bp->threads);
    double t0 = bench_now();
    int rc = ops->build(bp, d->nb, base, &b->e, err, errlen);
    bp->progress = NULL;                               /* ps lives in this frame only */
    bp->progress_arg = NULL;
    bp->buckets = NULL;                                /* borrowed for the build only */
    if (rc != 0) return -1;
    b->build_s = bench_now() - t0;
    long long rss1 = bench_rss_bytes();
    b->rss_delta_bytes = rss0 >= 0 && rss1 >= 0 ? rss1 - rss0 : 0;
    b->memory_bytes = ops->memory(b->e, &b->memory_source);
    if (ops->memory_split) ops->memory_split(b->e, &b->memory_search_bytes, &b->memory_vectors_bytes);
    fprintf(stderr, "%s: built in %.2f s\n", ops->name, b->build_s);
    b->reload_s = b->first_search_s = -1;
    if (cached && cache_save(ops, cpath, b, err, errlen) != 0) return -1;
    return 0;
}

int bench_reload(bench_built *b, const bench_opts *o, char *err, size_t errlen)
{
    const bench_engine_ops *ops = b->ops;
    int64_t ids[QV_MAX_K];
    if (!ops->reload) return 1;
    if (ops->reload(b->e, o->reload_dir, &b->reload_s, err, errlen) != 0) return -1;
    double t1 = bench_now();
    if (ops->search_one(b->e, b->queries, o->k, ids, err, errlen) != 0) return -1;
    b->first_search_s = bench_now() - t1;
    fprintf(stderr, "%s: reloaded in %.3f s, first search %.2f ms\n", ops->name, b->reload_s,
            b->first_search_s * 1e3);
    return 0;
}

void bench_built_release(bench_built *b)
{
    if (b->ops) b->ops->destroy(b->e);
    memset(b, 0, sizeof *b);
}

static void row_init(const bench_built *b, const bench_opts *o, const bench_data *d, size_t s,
                     const bench_filter *flt, bench_row *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->library, sizeof r->library, "%s", b->ops->name);
    r->index = qv_index_kind_name(o->kind);
    r->metric = qv_metric_name(d->metric);
    describe_params(o, &b->params, b->ops->name, r);
    r->build_s = b->build_s;
    r->memory_bytes = b->memory_bytes;
    r->memory_source = b->memory_source;
    r->memory_search_bytes = b->memory_search_bytes;
    r->memory_vectors_bytes = b->memory_vectors_bytes;
    r->rss_delta_bytes = b->rss_delta_bytes;
    r->ef = o->kind == QV_INDEX_HNSW ? o->efs[s] : 0;
    r->nprobe = o->kind == QV_INDEX_IVF ? o->nprobes[s] : 0;
    r->k = o->k;
    r->threads = o->threads;
    r->build_threads = b->params.threads;
    r->batch = o->batch;
    r->gpu = b->params.gpu;
    r->nq = d->nq;
    r->nb = d->nb;
    r->p50_us = r->p99_us = -1;
    r->batch_s = -1;
    r->reload_s = b->reload_s;
    r->first_search_s = b->first_search_s;
    r->selectivity = flt ? flt->selectivity : 1.0;
    r->mode = flt ? b->ops->filter_mode : b->ops->unfiltered_mode;
    if (!r->mode) r->mode = "unfiltered";
    if (b->ops == &bench_quiver_db_ops) {
        size_t len = strlen(r->name);
        snprintf(r->name + len, sizeof r->name - len, " db");
    }
}

/* Returned ids that fail flt (the filtered rows' "violations"). */
static long long count_violations(const bench_filter *flt, const int64_t *ids, size_t n)
{
    long long bad = 0;
    if (!flt) return 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0) continue;
        uint64_t id = (uint64_t)ids[i];
        if (id >= flt->allow_nbits || !(flt->allow_bits[id / 64] >> (id % 64) & 1)) bad++;
    }
    return bad;
}

/* The run of median wall time among n (the lower middle one when n is even). */
static uint32_t median_run(const double *wall, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t below = 0, equal_before = 0;
        for (uint32_t j = 0; j < n; j++) {
            below += wall[j] < wall[i];
            equal_before += j < i && wall[j] == wall[i];
        }
        if (below + equal_before == (n - 1) / 2) return i;
    }
    return 0;
}

int bench_sweep(bench_built *engines, size_t n_engines, const bench_opts *o, const bench_data *d,
                const bench_filter *flt, bench_row **rows, size_t *n_rows, char *err, size_t errlen)
{
    const size_t n_settings = o->kind == QV_INDEX_HNSW ? o->n_efs : o->kind == QV_INDEX_IVF ? o->n_nprobes : 1;
    bench_row *cur = calloc(n_engines, sizeof *cur);
    bench_row *per_run = calloc((size_t)n_engines * o->runs, sizeof *per_run);
    double *walls = calloc((size_t)n_engines * o->runs, sizeof *walls);
    int64_t *ids = malloc(d->nq * o->k * sizeof *ids);
    double *lat = malloc(d->nq * sizeof *lat);
    char *skip = calloc(n_engines ? n_engines : 1, 1);
    int ret = -1;

    if (!cur || !per_run || !walls || !ids || !lat || !skip) { snprintf(err, errlen, "out of memory"); goto cleanup; }
    /* Filters are installed once per sweep, outside the timed passes. */
    for (size_t i = 0; i < n_engines; i++) {
        const bench_engine_ops *ops = engines[i].ops;
        int rc = ops->set_filter ? ops->set_filter(engines[i].e, flt, err, errlen) : (flt ? 1 : 0);
        if (rc < 0) goto cleanup;
        skip[i] = rc > 0;
        if (skip[i] && flt) fprintf(stderr, "quiver-bench: note: %s cannot filter here; no filtered rows\n", ops->name);
    }
    bench_set_blas_threads(o->batch ? (int)o->threads : 1);
    for (size_t s = 0; s < n_settings; s++) {
        for (size_t i = 0; i < n_engines; i++) {
            row_init(&engines[i], o, d, s, flt, &cur[i]);
            for (uint32_t run = 0; run < o->runs; run++) per_run[i * o->runs + run] = cur[i];
        }
        /* Engines take turns within each run, so a burst of load from elsewhere on the
         * machine hits them alike; with --runs the median run of each is reported. */
        for (uint32_t run = 0; run < o->runs; run++) {
            for (size_t i = 0; i < n_engines; i++) {
                const bench_engine_ops *ops = engines[i].ops;
                bench_row *r = &per_run[i * o->runs + run];
                double wall, t0;
                if (skip[i]) continue;
                if (ops->prepare(engines[i].e, r->ef, r->nprobe, o->threads, o->batch, err, errlen) != 0) goto cleanup;
                if (o->batch) {
                    t0 = bench_now();
                    if (ops->search_batch(engines[i].e, d->nq, engines[i].queries, o->k, ids, err, errlen) != 0)
                        goto cleanup;
                    wall = bench_now() - t0;
                } else {
                    wall = pass_single(ops, engines[i].e, engines[i].queries, d->nq, d->dim, o->k, o->threads, ids,
                                       lat, err, errlen);
                    if (wall < 0) goto cleanup;
                }
                long long bad = count_violations(flt, ids, d->nq * o->k);
                if (bad > cur[i].violations) cur[i].violations = bad;    /* the worst run counts */
                walls[i * o->runs + run] = wall;
                r->qps = wall > 0 ? (double)d->nq / wall : 0;
                r->recall = bench_recall(d, d->nq, ids, o->k);
                if (o->batch) {
                    r->batch_s = wall;
                } else {
                    qsort(lat, d->nq, sizeof *lat, cmp_double);
                    r->p50_us = percentile(lat, d->nq, 0.50);
                    r->p99_us = percentile(lat, d->nq, 0.99);
                }
            }
        }
        for (size_t i = 0; i < n_engines; i++) {
            if (skip[i]) continue;
            uint32_t m = median_run(&walls[i * o->runs], o->runs);
            long long worst = cur[i].violations;
            cur[i] = per_run[i * o->runs + m];
            cur[i].violations = worst;
            bench_report_row(stdout, o, &cur[i]);
            if (append_row(rows, n_rows, &cur[i]) != 0) { snprintf(err, errlen, "out of memory"); goto cleanup; }
        }
        fflush(stdout);
    }
    ret = 0;
cleanup:
    free(cur);
    free(per_run);
    free(walls);
    free(ids);
    free(lat);
    free(skip);
    return ret;
}
