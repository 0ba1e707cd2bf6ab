/*
 * bench/bench_quiverdb.c -- a Quiver collection as a bench engine, for --filter-selectivity:
 * what a database user runs. The build opens a database in a fresh temporary directory
 * (QV_DB_NOSYNC: a bulk load), creates collection "bench" with the same index parameters
 * as the index-level engine and payload_index {"bucket":"integer"}, and upserts the base in
 * chunks with payloads {"bucket": b} (bench_filter_buckets). A filtered search passes the
 * payload filter {"must":[{"key":"bucket","range":{"lt":T}}]} in qv_search_params.filter,
 * so each query goes through the real planner: payload index -> allowed set (cached by the
 * collection between queries of the same filter, as for any repeated filter) -> exact scan
 * of the allowed points or a filtered index search. The filter is parsed once per sweep,
 * outside the timed passes. destroy() closes the database and removes the directory.
 */
#include "bench/bench.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UPSERT_CHUNK 10000u
#define PAYLOAD_LEN 32u

struct bench_engine {
    char dir[4096];
    qv_db *db;
    qv_coll *coll;
    qv_filter *filter;             /* the current sweep's, or NULL */
    uint32_t ef, nprobe;
};

static void qv_err(char *err, size_t errlen, const char *what, int rc)
{
    snprintf(err, errlen, "quiver db %s: %s: %s", what, qv_strerror(rc), qv_last_error());
}

static const char *db_describe(void)
{
    static char buf[96];
    snprintf(buf, sizeof buf, "quiver %s collection (LMDB, payload index on \"bucket\")", qv_version());
    return buf;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void db_destroy(bench_engine *e)
{
    if (!e) return;
    qv_filter_free(e->filter);
    qv_db_close(e->db);
    if (e->dir[0]) nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(e);
}

static int db_build(const bench_build_params *bp, size_t n, const float *base, bench_engine **out,
                    char *err, size_t errlen)
{
    qv_db_options opt;
    qv_collection_config cfg;
    bench_engine *e = NULL;
    uint64_t *ids = NULL;
    char *text = NULL;
    const char **payloads = NULL;
    int rc;

    *out = NULL;
    if (!bp->buckets) { snprintf(err, errlen, "quiver db: no payloads to load"); return -1; }
    e = calloc(1, sizeof *e);
    ids = malloc(UPSERT_CHUNK * sizeof *ids);
    text = malloc((size_t)UPSERT_CHUNK * PAYLOAD_LEN);
    payloads = malloc(UPSERT_CHUNK * sizeof *payloads);
    if (!e || !ids || !text || !payloads) { snprintf(err, errlen, "out of memory"); goto fail; }
    const char *tmp = getenv("TMPDIR");
    snprintf(e->dir, sizeof e->dir, "%s/quiver-bench-db.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(e->dir)) {
        snprintf(err, errlen, "quiver db: cannot create a temporary directory %s", e->dir);
        e->dir[0] = '\0';
        goto fail;
    }
    qv_db_options_init(&opt);
    opt.flags = QV_DB_NOSYNC;
    if ((rc = qv_db_open(e->dir, &opt, &e->db)) != QV_OK) { qv_err(err, errlen, "open", rc); goto fail; }
    memset(&cfg, 0, sizeof cfg);
    qv_index_params_init(&cfg.index, bp->kind, bp->dim, bp->metric);
    cfg.index.m = bp->m;
    cfg.index.ef_construction = bp->ef_construction;
    cfg.index.nlist = bp->nlist;
    cfg.index.kmeans_iters = bp->kmeans_iters;
    cfg.index.threads = bp->threads;
    cfg.index.seed = bp->seed;
    cfg.index.gpu = bp->gpu ? QV_GPU_REQUIRE : QV_GPU_OFF;
    cfg.payload_index = "{\"bucket\":\"integer\"}";
    if ((rc = qv_collection_create(e->db, "bench", &cfg, &e->coll)) != QV_OK) {
        qv_err(err, errlen, "collection_create", rc);
        goto fail;
    }
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < UPSERT_CHUNK ? n - done : UPSERT_CHUNK;
        for (size_t i = 0; i < chunk; i++) {
            ids[i] = done + i;
            char *t = text + i * PAYLOAD_LEN;
            snprintf(t, PAYLOAD_LEN, "{\"bucket\":%u}", bp->buckets[done + i]);
            payloads[i] = t;
        }
        if ((rc = qv_upsert(e->coll, chunk, ids, base + done * bp->dim, payloads)) != QV_OK) {
            qv_err(err, errlen, "upsert", rc);
            goto fail;
        }
        done += chunk;
        if (bp->progress) bp->progress("upsert", done, n, bp->progress_arg);
    }
    /* An ivf collection trains by itself once large enough; train now if it has not. */
    if (bp->kind == QV_INDEX_IVF && (rc = qv_collection_train(e->coll, NULL, NULL)) != QV_OK) {
        qv_err(err, errlen, "train", rc);
        goto fail;
    }
    free(ids);
    free(text);
    free(payloads);
    *out = e;
    return 0;
fail:
    free(ids);
    free(text);
    free(payloads);
    db_destroy(e);
    return -1;
}

static int db_prepare(bench_engine *e, uint32_t ef, uint32_t nprobe, uint32_t threads, int batch,
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
    sp->filter = e->filter;
}

static int db_search_one(bench_engine *e, const float *q, uint32_t k, int64_t *ids, char *err, size_t errlen)
{
    qv_hit hits[QV_MAX_K];
    qv_search_params sp;
    size_t n = 0;
    params_for(e, k, &sp);
    int rc = qv_search(e->coll, q, &sp, hits, &n);
    if (rc != QV_OK) { qv_err(err, errlen, "search", rc); return -1; }
    bench_hits_to_ids(hits, &n, 1, k, ids);
    return 0;
}

static int db_search_batch(bench_engine *e, size_t nq, const float *q, uint32_t k, int64_t *ids,
                           char *err, size_t errlen)
{
    qv_search_params sp;
    qv_hit *hits = malloc(nq * k * sizeof *hits);
    size_t *n_hits = malloc(nq * sizeof *n_hits);
    int ret = -1;
    params_for(e, k, &sp);
    if (!hits || !n_hits) { snprintf(err, errlen, "out of memory"); goto cleanup; }
    int rc = qv_search_batch(e->coll, nq, q, &sp, hits, n_hits);
    if (rc != QV_OK) { qv_err(err, errlen, "search_batch", rc); goto cleanup; }
    bench_hits_to_ids(hits, n_hits, nq, k, ids);
    ret = 0;
cleanup:
    free(hits);
    free(n_hits);
    return ret;
}

static size_t db_memory(bench_engine *e, const char **source)
{
    qv_collection_info info;
    *source = "qv_collection_get_info";
    if (qv_collection_get_info(e->coll, &info) != QV_OK) return 0;
    return info.memory_bytes;
}

static int db_set_filter(bench_engine *e, const bench_filter *f, char *err, size_t errlen)
{
    char json[128];
    qv_filter_free(e->filter);
    e->filter = NULL;
    if (!f) return 0;
    snprintf(json, sizeof json, "{\"must\":[{\"key\":\"bucket\",\"range\":{\"lt\":%u}}]}", f->bucket_lt);
    int rc = qv_filter_parse(json, &e->filter);
    if (rc != QV_OK) { qv_err(err, errlen, "filter_parse", rc); return -1; }
    return 0;
}

const bench_engine_ops bench_quiver_db_ops = {
    .name = "quiver",
    .describe = db_describe,
    .build = db_build,
    .prepare = db_prepare,
    .search_one = db_search_one,
    .search_batch = db_search_batch,
    .memory = db_memory,
    .destroy = db_destroy,
    .set_filter = db_set_filter,
    .filter_mode = "db-filter",
    .unfiltered_mode = "db",
};
