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
 * 0.9607-0.9608 / 0.9926 (bench/RESULTS.md, "HNSW build on 8-bit codes").
 */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "index/hnsw.h"

size_t qv_hnsw_bcodes_min = QV_HNSW_BCODES_MIN;

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

static void encode_chunk(void *arg, size_t i, unsigned worker)
{
    encode_job *job = arg;
    qv_hnsw_bcodes *b = job->b;
    const qv_codec *c = b->codec;
    float *tmp = worker_tmp(b, worker);
    uint8_t *row = (uint8_t *)(tmp + b->tmp_floats);
    uint32_t from = (uint32_t)(i * ENCODE_CHUNK), to = from + ENCODE_CHUNK;
    if (to > job->n) to = job->n;
    for (uint32_t slot = from; slot < to; slot++) {
        qv_codec_encode(c, qv_hnsw_vec(job->h, slot), row, tmp);
        memcpy(b->rows + (size_t)slot * b->stride, row, c->code_bytes);
        memcpy(&b->f0[slot], row + ((c->code_bytes + 3) & ~(size_t)3), sizeof(float));
    }
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
