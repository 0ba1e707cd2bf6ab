/*
 * index/hnsw_build_codes.c -- 8-bit codes that a large add() to a float index walks on.
 *
 * At 1M points the insertion walk (efConstruction 200) waits on memory: each insert
 * computes a few thousand distances to 512-byte vectors scattered over the whole index.
 * A batch of at least QV_HNSW_BCODES_MIN points therefore first encodes every slot to
 * sq8 (index/codec.h; 128 bytes at 128-d instead of 512) and walks on those estimates;
 * the ef candidates a walk ends with are then re-scored with the float vectors, so the
 * neighbour heuristic and the back-links see exact distances as before. The codes live
 * only for the batch (132 MB at 1M x 128) and are freed when it ends: the index holds
 * its float vectors alone, as before. On sift-debian-1m (M 16, efConstruction 200, 2
 * threads) the build took 88-93 s against 123-125 s on floats (hnswlib 215-228 s), with
 * recall@10 at ef 40 / 48 / 128 of 0.9481 / 0.9605 / 0.9926 against 0.9486-0.9488 /
 * 0.9607-0.9608 / 0.9926 (bench/RESULTS.md, "HNSW build on 8-bit codes"). A stream of
 * small adds keeps its codes across adds instead (below).
 */
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "index/hnsw.h"

size_t qv_hnsw_bcodes_min = QV_HNSW_BCODES_MIN;
size_t qv_hnsw_bcodes_src_min = QV_HNSW_BCODES_SRC_MIN;

/* Slots encoded per pool task. */
#define ENCODE_CHUNK 4096u

int qv_hnsw_bcodes_new(const qv_hnsw *h, size_t n, const float *vecs, unsigned workers,
                       qv_hnsw_bcodes **out)
{
    *out = NULL;
    qv_hnsw_bcodes *b = qv_calloc(1, sizeof *b);
    if (!b) return QV_ENOMEM;
    int rc = qv_codec_new(QV_QUANT_SQ8, h->dim, h->metric, 0, &b->codec);
    if (rc == QV_OK) rc = qv_codec_train(b->codec, n, vecs);
    if (rc != QV_OK) {
        qv_hnsw_bcodes_free(b);
        return rc;
    }
    b->k = qv_code_kernels_get();
    b->stride = (h->dim + 63) & ~(size_t)63;
    b->cap = h->cap;
    b->workers = workers;
    b->qbytes = (b->codec->query_bytes + 63) & ~(size_t)63;
    b->tmp_floats = qv_codec_scratch_floats(b->codec);
    b->rows = qv_aligned_calloc(b->cap, b->stride);
    b->f0 = qv_malloc(b->cap * sizeof *b->f0);
    b->qbufs = qv_aligned_calloc(workers, b->qbytes);
    b->tmp = qv_malloc((size_t)workers * (b->tmp_floats + b->codec->row_bytes / sizeof(float) + 1) *
                       sizeof *b->tmp);
    if (!b->rows || !b->f0 || !b->qbufs || !b->tmp) {
        qv_hnsw_bcodes_free(b);
        return QV_ENOMEM;
    }
    *out = b;
    return QV_OK;
}

void qv_hnsw_bcodes_free(qv_hnsw_bcodes *b)
{
    if (!b) return;
    qv_codec_free(b->codec);
    qv_free(b->rows);
    qv_free(b->f0);
    qv_free(b->qbufs);
    qv_free(b->tmp);
    qv_free(b);
}

/* The worker's float scratch: the codec's, then one row. */
static float *worker_tmp(const qv_hnsw_bcodes *b, unsigned worker)
{
    return b->tmp + (size_t)worker * (b->tmp_floats + b->codec->row_bytes / sizeof(float) + 1);
}

typedef struct {
    const qv_hnsw *h;
    qv_hnsw_bcodes *b;
    uint32_t n;
} encode_job;

/* Encode slot's vector with the worker's scratch. */
static void encode_slot(const qv_hnsw *h, qv_hnsw_bcodes *b, uint32_t slot, unsigned worker)
{
    const qv_codec *c = b->codec;
    float *tmp = worker_tmp(b, worker);
    uint8_t *row = (uint8_t *)(tmp + b->tmp_floats);
    qv_codec_encode(c, (const float *)qv_hnsw_row(h, slot), row, tmp);   /* float rows (see fit_to_index) */
    memcpy(b->rows + (size_t)slot * b->stride, row, c->code_bytes);
    memcpy(&b->f0[slot], qv_codec_sq_factors(c, row), sizeof(float));
}

static void encode_chunk(void *arg, size_t i, unsigned worker)
{
    encode_job *job = arg;
    uint32_t from = (uint32_t)(i * ENCODE_CHUNK), to = from + ENCODE_CHUNK;
    if (to > job->n) to = job->n;
    int ss = qv_hnsw_src_begin(job->h);   /* a pool worker reads a source's vectors in its own session */
    for (uint32_t slot = from; slot < to; slot++) encode_slot(job->h, job->b, slot, worker);
    if (ss > 0) qv_hnsw_src_end(job->h);
}

void qv_hnsw_bcodes_encode(const qv_hnsw *h, qv_hnsw_bcodes *b, qv_pool *pool)
{
    encode_job job = {h, b, __atomic_load_n(&h->n_slots, __ATOMIC_ACQUIRE)};
    qv_pool_run(pool, (job.n + ENCODE_CHUNK - 1) / ENCODE_CHUNK, 1, encode_chunk, &job);
}

void qv_hnsw_bcodes_query(const qv_hnsw_bcodes *b, const float *q, unsigned worker, qv_hnsw_bquery *out)
{
    qv_codec_query *qq;
    qv_codec_query_prepare(b->codec, q, b->qbufs + (size_t)worker * b->qbytes, worker_tmp(b, worker), &qq);
    out->b = b;
    out->a = qq->a;
    out->gamma = qq->gamma;
    out->w = qq->data;
}

/*
 * Kept codes. `quiver import` and HTTP upserts add 1,000 points per add(), so no batch is
 * large enough for codes of its own. A stream of adds (each within the idle time of the
 * last) that adds up to what one large batch must be (QV_HNSW_BCODES_MIN points and 1/8
 * of the index) gets codes that stay across adds: each later add encodes only its own
 * slots, and the codes are fitted again (every slot re-encoded) when the index has
 * doubled since, while the sample is below QV_CODEC_TRAIN_MAX, as the quantized index
 * does (hnsw_codes.c). They cost 132 MB at 1M x 128, so they must not stay in a served
 * collection that no longer takes writes: a reaper thread drops them once no add has
 * come for qv_hnsw_bcodes_idle_ms (2 s: batches of a bulk load come milliseconds apart;
 * a timer inside the index serves quiverd, the CLI and the Python module alike, where a
 * drop at snapshot would not: quiverd snapshots on exit unless --checkpoint-every).
 * Searches never read them; everything here runs under write_lock.
 *
 * A quantized index that reads its float vectors from a source (an on_disk collection,
 * storage/vec_source.c) keeps codes too: its own code rows serve searches, but an insert
 * walks on floats, and there each float is a B-tree lookup in LMDB. Its stream threshold
 * is lower, QV_HNSW_BCODES_SRC_MIN points and 1/QV_HNSW_BCODES_SRC_SHARE of the index:
 * an insert walking on LMDB floats cost ~0.55 ms more than on codes (sift-debian-100k sq8,
 * 2 threads: 10K inserts into a reopened 90K collection 7.20 s -> 1.85 s, in memory
 * 0.89 s; bench/ondisk_inserts.sh), and fitting reads every slot once (~1M lookups at 1M,
 * about what ~2,000 such inserts save), so 1/256 of the index (3,900 points at 1M) pays.
 * The codes are read in pool workers, each in a source session of its own (encode_chunk).
 */
unsigned qv_hnsw_bcodes_idle_ms = QV_HNSW_BCODES_IDLE_MS;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Codes fitted to up to QV_CODEC_TRAIN_MAX evenly spaced slots below n_slots (a free
 * slot still holds a deleted point's vector: as good a sample as any). */
static qv_hnsw_bcodes *fit_to_index(const qv_hnsw *h, unsigned workers)
{
    /* Build codes serve float indexes and quantized ones reading a source (hnsw_insert.c,
     * bcodes_ok): their rows are floats, never u8. */
    size_t n = h->n_slots, m = n < QV_CODEC_TRAIN_MAX ? n : QV_CODEC_TRAIN_MAX;
    float *sample = qv_reallocarray(NULL, m ? m : 1, (size_t)h->dim * sizeof(float));
    if (!sample) return NULL;
    for (size_t i = 0; i < m; i++)
        memcpy(sample + i * h->dim, qv_hnsw_row(h, (uint32_t)(i * n / m)), h->dim * sizeof(float));
    qv_hnsw_bcodes *b = NULL;
    if (qv_hnsw_bcodes_new(h, m, sample, workers, &b) == QV_OK) b->trained_n = n;
    qv_free(sample);
    return b;
}

/* Rows for h->cap slots, keeping the old ones (the batch's slots past the old capacity
 * are encoded by the caller; n_slots already counts them, so it may exceed b->cap). */
static int grow_rows(const qv_hnsw *h, qv_hnsw_bcodes *b)
{
    if (b->cap >= h->cap) return QV_OK;
    uint8_t *rows = qv_aligned_calloc(h->cap, b->stride);
    float *f0 = qv_reallocarray(b->f0, h->cap, sizeof *f0);
    if (f0) b->f0 = f0;
    if (!rows || !f0) {
        qv_free(rows);
        return QV_ENOMEM;
    }
    size_t keep = h->n_slots < b->cap ? h->n_slots : b->cap;
    memcpy(rows, b->rows, keep * b->stride);
    qv_free(b->rows);
    b->rows = rows;
    b->cap = h->cap;
    return QV_OK;
}

void qv_hnsw_bcodes_drop(qv_hnsw *h)
{
    qv_hnsw_bcodes_free(h->bcodes);
    h->bcodes = NULL;
    h->bc_recent = 0;
    qv_hnsw_update_memory(h);
}

qv_hnsw_bcodes *qv_hnsw_bcodes_for_add(qv_hnsw *h, const uint32_t *slots, size_t n, qv_pool *pool)
{
    unsigned nw = qv_pool_threads(pool);
    qv_hnsw_bcodes *b = h->bcodes;
    /* Only a stream counts: a pause longer than the idle time starts the count again. */
    if (!b && mono_ms() - h->bc_last_ms > qv_hnsw_bcodes_idle_ms) h->bc_recent = 0;
    h->bc_recent += n;
    if (b && (b->workers < nw ||
              (h->n_slots >= 2 * b->trained_n && b->codec->trained_on < QV_CODEC_TRAIN_MAX))) {
        qv_hnsw_bcodes *fresh = fit_to_index(h, nw);    /* refit; keep the old on failure */
        if (fresh) {
            qv_hnsw_bcodes_free(b);
            h->bcodes = fresh;
            qv_hnsw_bcodes_encode(h, fresh, pool);
            return fresh;
        }
        if (b->workers < nw) {
            qv_hnsw_bcodes_drop(h);
            return NULL;
        }
    }
    if (b) {
        if (grow_rows(h, b) != QV_OK) {
            qv_hnsw_bcodes_drop(h);
            return NULL;
        }
        for (size_t i = 0; i < n; i++) encode_slot(h, b, slots[i], 0);   /* this batch's slots only */
        return b;
    }
    /* A stream pays for fitting once it is this long and this share of the index. */
    const int inline_vecs = qv_hnsw_vec_inline(h);
    const size_t min = inline_vecs ? qv_hnsw_bcodes_min : qv_hnsw_bcodes_src_min;
    const size_t share = inline_vecs ? 8 : QV_HNSW_BCODES_SRC_SHARE;
    if (h->bc_recent < min || share * h->bc_recent < h->n_live + n) return NULL;
    if (!(b = fit_to_index(h, nw))) return NULL;
    h->bcodes = b;
    qv_hnsw_bcodes_encode(h, b, pool);
    return b;
}

void qv_hnsw_bcodes_renumbered(qv_hnsw *h, qv_pool *pool)
{
    if (h->bcodes) qv_hnsw_bcodes_encode(h, h->bcodes, pool);
}

static void *reaper(void *arg)
{
    qv_hnsw *h = arg;
    pthread_mutex_lock(&h->write_lock);
    while (!h->bc_stop && h->bcodes) {
        uint64_t due = h->bc_due_ms;
        if (mono_ms() >= due) {
            qv_hnsw_bcodes_drop(h);
            break;
        }
        struct timespec ts = {(time_t)(due / 1000), (long)(due % 1000) * 1000000};
        pthread_cond_timedwait(&h->bc_cond, &h->write_lock, &ts);
    }
    h->bc_reaper = 2;
    pthread_mutex_unlock(&h->write_lock);
    return NULL;
}

void qv_hnsw_bcodes_after_add(qv_hnsw *h)
{
    h->bc_last_ms = mono_ms();
    if (!h->bcodes) return;
    h->bc_due_ms = h->bc_last_ms + qv_hnsw_bcodes_idle_ms;
    pthread_cond_signal(&h->bc_cond);                 /* the deadline may have come closer */
    if (h->bc_reaper == 2) {
        pthread_join(h->bc_thread, NULL);             /* it has left write_lock for good */
        h->bc_reaper = 0;
    }
    if (h->bc_reaper == 0) {
        if (pthread_create(&h->bc_thread, NULL, reaper, h) != 0) {
            qv_hnsw_bcodes_drop(h);                   /* no reaper: no kept codes */
            return;
        }
        h->bc_reaper = 1;
    }
}

void qv_hnsw_bcodes_shutdown(qv_hnsw *h)
{
    pthread_mutex_lock(&h->write_lock);
    h->bc_stop = 1;
    pthread_cond_signal(&h->bc_cond);
    int r = h->bc_reaper;
    pthread_mutex_unlock(&h->write_lock);
    if (r) pthread_join(h->bc_thread, NULL);
    h->bc_reaper = 0;
    qv_hnsw_bcodes_free(h->bcodes);
    h->bcodes = NULL;
}
