/*
 * bench/bench_quiver.c -- Quiver as a bench engine, through the public API only
 * (qv_index_new / train / add / search / search_batch / memory), the way an embedding
 * program would use it.
 *
 * Progress: the index's qv_index_params.progress callback is forwarded when the index
 * calls it. The vectors are added in chunks of ADD_CHUNK; if the index stayed silent
 * during the first chunk, the bench reports "add i/n" itself after each chunk, otherwise
 * the rest goes in one call and the index reports.
 *
 * Filter runs: the allowed set goes in as qv_search_params.allow_bits (mode "bitset"),
 * which measures the index's filtered search alone; bench_quiverdb.c measures the
 * collection with a payload filter.
 */
#include "bench/bench.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADD_CHUNK 10000u

/* Lives as long as the index, which keeps a pointer to it; fn is cleared after the build. */
typedef struct {
    qv_progress_fn _Atomic fn;
    void *arg;
    atomic_int called;             /* the index reported progress itself */
} progress_relay;

struct bench_engine {
    qv_index *ix;
    uint32_t ef, nprobe;
    float oversampling;            /* quantized: qv_search_params.oversampling */
    float explore;                 /* bit1: qv_search_params.explore */
    qv_rescore rescore;
    const uint64_t *allow_bits;    /* filter runs: the allowed row ids (borrowed), or NULL */
    uint64_t allow_nbits;
    progress_relay relay;
};

static void relay_progress(const char *phase, size_t done, size_t total, void *arg)
{
    progress_relay *r = arg;
    qv_progress_fn fn = atomic_load(&r->fn);
    atomic_store(&r->called, 1);
    if (fn) fn(phase, done, total, r->arg);
}

static void qv_err(char *err, size_t errlen, const char *what, int rc)
{
    snprintf(err, errlen, "quiver %s: %s: %s", what, qv_strerror(rc), qv_last_error());
}

void bench_hits_to_ids(const qv_hit *hits, const size_t *n_hits, size_t nq, uint32_t k, int64_t *ids)
{
    for (size_t i = 0; i < nq; i++)
        for (uint32_t j = 0; j < k; j++)
            ids[i * k + j] = j < n_hits[i] ? (int64_t)hits[i * k + j].id : -1;
}

static const char *quiver_describe(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "quiver %s", qv_version());
    return buf;
}

static int quiver_build(const bench_build_params *bp, size_t n, const float *base, bench_engine **out,
                        char *err, size_t errlen)
{
    qv_index_params p;
    bench_engine *e = NULL;
    uint64_t *ids = NULL;
    int rc;

    *out = NULL;
    qv_index_params_init(&p, bp->kind, bp->dim, bp->metric);
    p.m = bp->m;
    p.ef_construction = bp->ef_construction;
    p.nlist = bp->nlist;
    p.kmeans_iters = bp->kmeans_iters;
    p.threads = bp->threads;
    p.seed = bp->seed;
    p.gpu = bp->gpu ? QV_GPU_REQUIRE : QV_GPU_OFF;
    p.quant = bp->quant;
    p.vec_type = bp->vec_type;
    if (!(e = calloc(1, sizeof *e)) || !(ids = malloc(n * sizeof *ids))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    e->oversampling = bp->oversampling;
    e->explore = bp->explore;
    e->rescore = bp->no_rescore ? QV_RESCORE_OFF : QV_RESCORE_ON;
    atomic_init(&e->relay.fn, bp->progress);
    e->relay.arg = bp->progress_arg;
    atomic_init(&e->relay.called, 0);
    p.progress = relay_progress;
    p.progress_arg = &e->relay;
    for (size_t i = 0; i < n; i++) ids[i] = i;
    if ((rc = qv_index_new(&p, &e->ix)) != QV_OK) { qv_err(err, errlen, "index_new", rc); goto fail; }
    if (bp->kind == QV_INDEX_IVF) {
        if (bp->progress) bp->progress("train", 0, n, bp->progress_arg);
        if ((rc = qv_index_train(e->ix, n, base)) != QV_OK) { qv_err(err, errlen, "train", rc); goto fail; }
    }
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done;
        int self_report = !atomic_load(&e->relay.called);
        if (self_report && chunk > ADD_CHUNK) chunk = ADD_CHUNK;
        if ((rc = qv_index_add(e->ix, chunk, ids + done, base + done * bp->dim)) != QV_OK) {
            qv_err(err, errlen, "add", rc);
            goto fail;
        }
        done += chunk;
        if (self_report && !atomic_load(&e->relay.called) && bp->progress) bp->progress("add", done, n, bp->progress_arg);
    }
    free(ids);
    atomic_store(&e->relay.fn, NULL);   /* searches stay silent */
    *out = e;
    return 0;
fail:
    free(ids);
    if (e) qv_index_free(e->ix);
    free(e);
    return -1;
}

static int quiver_prepare(bench_engine *e, uint32_t ef, uint32_t nprobe, uint32_t threads, int batch,
                          char *err, size_t errlen)
{
    (void)threads; (void)batch; (void)err; (void)errlen;
    e->ef = ef;
    e->nprobe = nprobe;
    return 0;
}

static void params_for(const bench_engine *e, uint32_t k, qv_search_params *sp)
{
    qv_search_params_init(sp, k);
    sp->ef = e->ef;
    sp->nprobe = e->nprobe;
    sp->oversampling = e->oversampling;
    sp->explore = e->explore;
    sp->rescore = e->rescore;
    sp->allow_bits = e->allow_bits;
    sp->allow_nbits = e->allow_nbits;
}

static int quiver_search_one(bench_engine *e, const float *q, uint32_t k, int64_t *ids, char *err, size_t errlen)
{
    qv_hit hits[QV_MAX_K];
    qv_search_params sp;
    size_t n = 0;
    params_for(e, k, &sp);
    int rc = qv_index_search(e->ix, q, &sp, hits, &n);
    if (rc != QV_OK) { qv_err(err, errlen, "search", rc); return -1; }
    bench_hits_to_ids(hits, &n, 1, k, ids);
    return 0;
}

static int quiver_search_batch(bench_engine *e, size_t nq, const float *q, uint32_t k, int64_t *ids,
                               char *err, size_t errlen)
{
    qv_search_params sp;
    qv_hit *hits = malloc(nq * k * sizeof *hits);
    size_t *n_hits = malloc(nq * sizeof *n_hits);
    int ret = -1;
    params_for(e, k, &sp);
    if (!hits || !n_hits) { snprintf(err, errlen, "out of memory"); goto cleanup; }
    int rc = qv_index_search_batch(e->ix, nq, q, &sp, hits, n_hits);
    if (rc != QV_OK) { qv_err(err, errlen, "search_batch", rc); goto cleanup; }
    bench_hits_to_ids(hits, n_hits, nq, k, ids);
    ret = 0;
cleanup:
    free(hits);
    free(n_hits);
    return ret;
}

static size_t quiver_memory(bench_engine *e, const char **source)
{
    *source = "qv_index_memory";
    return qv_index_memory(e->ix);
}

static void quiver_memory_split(bench_engine *e, size_t *search, size_t *vectors)
{
    qv_index_memory_info mi;
    qv_index_memory_detail(e->ix, &mi);
    *search = mi.search;
    *vectors = mi.vectors;
}

/* Index level: the allowed set as qv_search_params.allow_bits, precomputed, as a program
 * with its own metadata store would pass it. */
static int quiver_set_filter(bench_engine *e, const bench_filter *f, char *err, size_t errlen)
{
    (void)err; (void)errlen;
    e->allow_bits = f ? f->allow_bits : NULL;
    e->allow_nbits = f ? f->allow_nbits : 0;
    return 0;
}

/* Save, free, and open in place (qv_index_open: mapped, no read into the heap); the file
 * is removed at once (the mapping keeps it alive until the index is freed). */
static int quiver_reload(bench_engine *e, const char *dir, double *open_s, char *err, size_t errlen)
{
    char path[4096];
    int rc;
    snprintf(path, sizeof path, "%s/quiver-bench-%ld.qv", dir, (long)getpid());
    if ((rc = qv_index_save(e->ix, path)) != QV_OK) { qv_err(err, errlen, "save", rc); return -1; }
    qv_index_free(e->ix);
    e->ix = NULL;
    double t0 = bench_now();
    rc = qv_index_open(path, &e->ix);
    *open_s = bench_now() - t0;
    unlink(path);
    if (rc != QV_OK) { qv_err(err, errlen, "open", rc); return -1; }
    return 0;
}

static int quiver_save(bench_engine *e, const char *path, char *err, size_t errlen)
{
    int rc = qv_index_save(e->ix, path);
    if (rc != QV_OK) { qv_err(err, errlen, "save", rc); return -1; }
    return 0;
}

/* Read into the heap (qv_index_load), as after a build: not mapped in place. */
static int quiver_load(const bench_build_params *bp, size_t n, const char *path, bench_engine **out, char *err,
                       size_t errlen)
{
    bench_engine *e = calloc(1, sizeof *e);
    int rc;
    (void)n;
    *out = NULL;
    if (!e) { snprintf(err, errlen, "out of memory"); return -1; }
    if ((rc = qv_index_load(path, &e->ix)) != QV_OK) {
        qv_err(err, errlen, "load", rc);
        free(e);
        return -1;
    }
    e->oversampling = bp->oversampling;
    e->explore = bp->explore;
    e->rescore = bp->no_rescore ? QV_RESCORE_OFF : QV_RESCORE_ON;
    atomic_init(&e->relay.fn, NULL);
    atomic_init(&e->relay.called, 0);
    *out = e;
    return 0;
}

static void quiver_destroy(bench_engine *e)
{
    if (!e) return;
    qv_index_free(e->ix);
    free(e);
}

const bench_engine_ops bench_quiver_ops = {
    .name = "quiver",
    .describe = quiver_describe,
    .build = quiver_build,
    .prepare = quiver_prepare,
    .search_one = quiver_search_one,
    .search_batch = quiver_search_batch,
    .memory = quiver_memory,
    .memory_split = quiver_memory_split,
    .destroy = quiver_destroy,
    .set_filter = quiver_set_filter,
    .filter_mode = "bitset",
    .unfiltered_mode = "unfiltered",
    .reload = quiver_reload,
    .save = quiver_save,
    .load = quiver_load,
};
