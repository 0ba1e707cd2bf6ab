/*
 * index/flat.c -- the flat (exact) index behind qv_flat_ops.
 *
 * Layout: rows 0..n-1 are the live vectors, stored contiguously (row-major, dim floats
 * each, 64-byte aligned base) so a scan streams memory and SGEMM can take the whole
 * matrix; ids[row] is the external id, norms[row] the cached squared norm (the ||x||^2
 * term of the GEMM distance), and an idmap gives id -> row. The three arrays share one
 * capacity that grows by 1.5x (new buffers first, then copy: a failed growth leaves the
 * index as it was). Re-adding an id overwrites its row. Removing moves the last row into
 * the hole, so rows stay dense and no tombstones are ever scanned.
 *
 * Search, one query: a scan with the x4 kernels (one query load shared by four rows)
 * into a bounded heap on the stack (no allocation). With filters, rows failing the
 * allow-bits test are dropped before any distance is computed; the accept callback,
 * which may be expensive, runs only for rows whose distance would enter the top k.
 * Batch: qv_blas_knn over the whole matrix (query tiles spread over the index's pool).
 *
 * GPU (p.gpu = QV_GPU_AUTO or QV_GPU_REQUIRE): an unfiltered batch of at least
 * GPU_MIN_BATCH queries runs qv_gpu_flat_knn (gpu/gpu.h, FP32 math, so the ranking equals
 * the CPU one up to float rounding ties) on a device copy of the rows; single queries,
 * small batches and batches with allow_bits / accept (the GPU path has no filters) stay on
 * the CPU. The device copy is brought up to date lazily, at the batch search that needs
 * it: gpu_synced is a watermark such that device rows [0, gpu_synced) equal host rows
 * [0, gpu_synced). add/remove only lower it (a replaced row r or a hole filled by the
 * swap: to r; removal: to the new n); appends leave it, so the next sync uploads just
 * rows [gpu_synced, n) after truncating the device copy to gpu_synced. Writes never touch
 * the device and cannot fail because of it. AUTO: any GPU error is cleared and the batch
 * is answered on the CPU; the device copy is dropped, and after an error other than
 * QV_ENOMEM this index stops trying the GPU (qv_gpu_probe() also turns 0 process-wide
 * after a sticky CUDA error; a database too large for the device is thus re-uploaded, and
 * fails, at each large batch). REQUIRE: the error is returned (the copy is dropped and
 * rebuilt at the next call); REQUIRE does not move small or filtered batches to the GPU.
 * memory() counts host bytes only; the device copy (qv_gpu_flat_memory) is not included.
 *
 * Locking: one pthread rwlock per index, writer-preferring so a stream of searches cannot
 * starve add/remove. Searches, save, size and memory take it shared; add and remove take
 * it exclusively, and do every allocation before changing anything (all or nothing).
 * The device copy (gpu, gpu_synced, gpu_failed) is guarded by gpu_lock, a mutex taken
 * only by batch searches, always inside the read lock (order: rwlock, then gpu_lock);
 * writers change gpu_synced under the write lock alone, which excludes every holder of
 * gpu_lock. Concurrent GPU batches of one index therefore run one after another (the
 * device serializes them anyway, gpu/gpu_internal.h).
 *
 * Codes (p.quant != NONE): beside the rows, their codes (index/code_rows.h: sq8 / bit1
 * rows, sq4 fast-scan blocks), moved with them. The codec is fitted on the first batch
 * and refitted on the rows present each time the index doubles, until it has seen
 * QV_CODEC_TRAIN_MAX vectors. A search ranks every row by its code into the best
 * ceil(k * oversampling), then re-scores those with the float rows (rescore OFF: the
 * estimates; ALL: the float scan). Batches of a quantized index run query by query.
 *
 * File body (after index.c's header): u64 count, count x u64 id, count x dim x f32 vector,
 * all little-endian; a quantized index adds u32 trained (0/1) and, when 1, the codec's
 * parameters (index/codec.c; the codes are re-encoded on load). Load checks the count against the bytes present, duplicate ids, and
 * that every value is finite (for cosine also unit length) before the index is used.
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blas.h"
#include "core/distance.h"
#include "core/error.h"
#include "core/idmap.h"
#include "core/topk.h"
#include "gpu/gpu.h"
#include "index/code_rows.h"
#include "index/index.h"

/* Rows are addressed by uint32 slots in the idmap; QV_IDMAP_NONE is reserved. */
#define MAX_ROWS ((size_t)UINT32_MAX - 1)
/* Below this many queries a batch is answered by scans on the pool: a GEMM with so few
 * rows is no faster than the x4 kernels and its tiles would leave workers idle. */
#define BATCH_MIN_GEMM 8
/* Smallest batch sent to the GPU: below it the query upload, the launches and the copy of
 * the results back are expected to cost more than a CPU GEMM of the same batch (a guess:
 * not yet measured on a device). */
#define GPU_MIN_BATCH 64

typedef struct {
    pthread_rwlock_t lock;
    size_t dim, n, cap;
    float *vecs;                   /* cap * dim, 64-byte aligned */
    float *norms;                  /* cap */
    uint64_t *ids;                 /* cap */
    qv_idmap map;                  /* id -> row */
    /* Quantized index (p.quant): codes of rows [0, n) (see "Codes" in the header). */
    qv_codec *codec;
    qv_code_rows codes;
    uint8_t *enc_row;              /* encode scratch, under the write lock */
    float *enc_tmp;
    /* The device copy (see the header): under gpu_lock, gpu_synced also under the write lock. */
    pthread_mutex_t gpu_lock;
    qv_gpu_flat *gpu;              /* NULL until the first GPU batch, or after an error */
    size_t gpu_synced;             /* device rows [0, gpu_synced) equal host rows; 0 if !gpu */
    int gpu_failed;                /* AUTO: a GPU error other than ENOMEM; CPU from now on */
} flat;

static int flat_create(qv_index *ix)
{
    pthread_rwlockattr_t attr;
    flat *f = qv_calloc(1, sizeof *f);
    if (!f) return QV_ENOMEM;
    f->dim = ix->p.dim;
    int rc = qv_idmap_init(&f->map, 0);
    if (rc != QV_OK) {
        qv_free(f);
        return rc;
    }
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int err = pthread_rwlock_init(&f->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (err == 0 && pthread_mutex_init(&f->gpu_lock, NULL) != 0) {
        pthread_rwlock_destroy(&f->lock);
        err = 1;
    }
    if (err != 0) {
        qv_idmap_release(&f->map);
        qv_free(f);
        return qv_fail(QV_ENOMEM, "flat index: cannot create its locks");
    }
    ix->impl = f;
    if (ix->p.quant == QV_QUANT_NONE) return QV_OK;
    if ((rc = qv_codec_new(ix->p.quant, (uint32_t)f->dim, ix->p.metric, ix->p.seed, &f->codec)) != QV_OK) return rc;
    f->enc_row = qv_malloc(qv_code_rows_tmp_bytes(f->codec));
    f->enc_tmp = qv_malloc(qv_codec_scratch_floats(f->codec) * sizeof(float));
    return f->enc_row && f->enc_tmp ? QV_OK : QV_ENOMEM;
}

static void flat_destroy(qv_index *ix)
{
    flat *f = ix->impl;
    if (!f) return;
    pthread_rwlock_destroy(&f->lock);
    pthread_mutex_destroy(&f->gpu_lock);
    qv_gpu_flat_free(f->gpu);
    qv_idmap_release(&f->map);
    qv_free(f->vecs);
    qv_free(f->norms);
    qv_free(f->ids);
    qv_codec_free(f->codec);
    qv_code_rows_release(&f->codes);
    qv_free(f->enc_row);
    qv_free(f->enc_tmp);
    qv_free(f);
    ix->impl = NULL;
}

/* Make room for `need` rows. On failure nothing changes. Caller holds the write lock. */
static int grow(flat *f, size_t need)
{
    if (need <= f->cap) return QV_OK;
    if (need > MAX_ROWS) return qv_fail(QV_EFULL, "flat index: %zu vectors exceed the limit of %zu", need, MAX_ROWS);
    size_t cap = f->cap + f->cap / 2;
    if (cap < need) cap = need;
    if (cap < 16) cap = 16;
    if (cap > MAX_ROWS) cap = MAX_ROWS;
    if (f->codec && qv_code_rows_reserve(&f->codes, f->codec, f->n, cap) != QV_OK) return QV_ENOMEM;
    float *v = qv_aligned_calloc(cap, f->dim * sizeof *v);
    float *nn = qv_reallocarray(NULL, cap, sizeof *nn);
    uint64_t *ids = qv_reallocarray(NULL, cap, sizeof *ids);
    if (!v || !nn || !ids) {
        qv_free(v);
        qv_free(nn);
        qv_free(ids);
        return QV_ENOMEM;
    }
    if (f->n) {
        memcpy(v, f->vecs, f->n * f->dim * sizeof *v);
        memcpy(nn, f->norms, f->n * sizeof *nn);
        memcpy(ids, f->ids, f->n * sizeof *ids);
    }
    qv_free(f->vecs);
    qv_free(f->norms);
    qv_free(f->ids);
    f->vecs = v;
    f->norms = nn;
    f->ids = ids;
    f->cap = cap;
    return QV_OK;
}

static void set_row(flat *f, size_t row, uint64_t id, const float *vec)
{
    float *dst = f->vecs + row * f->dim;
    memcpy(dst, vec, f->dim * sizeof *dst);
    f->norms[row] = qv_norm_sq(dst, f->dim);
    f->ids[row] = id;
    if (f->codec) qv_code_rows_put(&f->codes, f->codec, row, dst, f->enc_row, f->enc_tmp);
}

/* A codec fitted for the add of `incoming` vectors, or NULL when the current one stays:
 * the first vectors train it (the batch, when the index is empty), and while it has seen
 * fewer than QV_CODEC_TRAIN_MAX it is refitted each time the index doubles, on the rows
 * present (amortized O(1) re-encoding per vector, as in hnsw_codes.c). Write lock held. */
static int refit_codec(const qv_index *ix, flat *f, size_t incoming, const float *vecs, qv_codec **out)
{
    *out = NULL;
    size_t have = f->codec->trained_on;
    int first = have == 0 && f->n == 0;
    if (!first && (have >= QV_CODEC_TRAIN_MAX || f->n < 2 * (have ? have : 1) || f->n == 0)) return QV_OK;
    qv_codec *c = NULL;
    int rc = qv_codec_new(f->codec->kind, (uint32_t)f->dim, ix->p.metric, ix->p.seed, &c);
    if (rc == QV_OK) rc = first ? qv_codec_train(c, incoming, vecs) : qv_codec_train(c, f->n, f->vecs);
    if (rc != QV_OK) {
        qv_codec_free(c);
        return rc;
    }
    *out = c;
    return QV_OK;
}

/* Row `row` changes: the device copy is valid below it at most. Caller holds the write lock. */
static void gpu_stale_from(flat *f, size_t row)
{
    if (row < f->gpu_synced) f->gpu_synced = row;
}

static int flat_add(qv_index *ix, size_t n, const uint64_t *ids, const float *vecs)
{
    flat *f = ix->impl;
    int rc;
    size_t fresh = 0;
    pthread_rwlock_wrlock(&f->lock);
    for (size_t i = 0; i < n; i++) fresh += qv_idmap_get(&f->map, ids[i]) == QV_IDMAP_NONE;
    if (fresh > MAX_ROWS - f->n) {
        rc = qv_fail(QV_EFULL, "flat index: %zu + %zu vectors exceed the limit of %zu", f->n, fresh, MAX_ROWS);
        goto cleanup;
    }
    /* Everything that can fail happens here, before the first row changes. */
    if ((rc = grow(f, f->n + fresh)) != QV_OK) goto cleanup;
    if ((rc = qv_idmap_reserve(&f->map, fresh)) != QV_OK) goto cleanup;
    qv_codec *refit = NULL;
    if (f->codec && (rc = refit_codec(ix, f, n, vecs, &refit)) != QV_OK) goto cleanup;
    if (refit) {
        qv_codec *old = f->codec;
        f->codec = refit;
        qv_codec_free(old);
        for (size_t r = 0; r < f->n; r++)
            qv_code_rows_put(&f->codes, f->codec, r, f->vecs + r * f->dim, f->enc_row, f->enc_tmp);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t row = qv_idmap_get(&f->map, ids[i]);
        if (row == QV_IDMAP_NONE) {
            row = (uint32_t)f->n;
            /* Cannot fail: room was reserved above. */
            if ((rc = qv_idmap_put(&f->map, ids[i], row)) != QV_OK) goto cleanup;
            f->n++;
        } else {
            gpu_stale_from(f, row);
        }
        set_row(f, row, ids[i], vecs + i * f->dim);
    }
cleanup:
    pthread_rwlock_unlock(&f->lock);
    return rc;
}

static int flat_remove(qv_index *ix, size_t n, const uint64_t *ids, size_t *n_removed)
{
    flat *f = ix->impl;
    size_t removed = 0;
    pthread_rwlock_wrlock(&f->lock);
    for (size_t i = 0; i < n; i++) {
        uint32_t row = qv_idmap_get(&f->map, ids[i]);
        if (row == QV_IDMAP_NONE) continue;
        qv_idmap_del(&f->map, ids[i]);
        size_t last = f->n - 1;
        if (row != last) {
            memcpy(f->vecs + (size_t)row * f->dim, f->vecs + last * f->dim, f->dim * sizeof *f->vecs);
            f->norms[row] = f->norms[last];
            f->ids[row] = f->ids[last];
            if (f->codec) qv_code_rows_move(&f->codes, f->codec, row, last);
            /* Overwrites an existing key: no allocation, cannot fail. */
            qv_idmap_put(&f->map, f->ids[row], row);
            gpu_stale_from(f, row);
        }
        f->n--;
        gpu_stale_from(f, f->n);
        removed++;
    }
    pthread_rwlock_unlock(&f->lock);
    *n_removed = removed;
    return QV_OK;
}

/* ---- search ---------------------------------------------------------------------------- */

static inline int allowed(const qv_search_params *sp, uint64_t id)
{
    return !sp->allow_bits || (id < sp->allow_nbits && ((sp->allow_bits[id >> 6] >> (id & 63)) & 1));
}

/* Offer the distances of rows[0..cnt) (the accept filter is applied only to rows that
 * would be kept). Returns the new bound. */
static inline float offer(const flat *f, const qv_search_params *sp, qv_topk *tk, const size_t *rows,
                          const float *d, int cnt, float bound)
{
    for (int j = 0; j < cnt; j++) {
        if (d[j] > bound) continue;
        uint64_t id = f->ids[rows[j]];
        if (sp->accept && !sp->accept(id, sp->accept_arg)) continue;
        if (qv_topk_push(tk, d[j], id)) bound = qv_topk_bound(tk);
    }
    return bound;
}

/* Exact scan of all rows into tk. Caller holds the read lock. */
#define PREFETCH_ROWS 32 /* rows ahead; 8, 16, 32, 64 measured on sift-debian-100k: 32 best (569 -> ~1100 QPS) */

static void scan(const flat *f, qv_metric metric, const float *q, const qv_search_params *sp, qv_topk *tk)
{
    const qv_kernels *kern = qv_kernels_get();
    int l2 = metric == QV_METRIC_L2;
    void (*x4)(const float *, const float *const[4], size_t, float[4]) = l2 ? kern->l2sq_x4 : kern->neg_dot_x4;
    qv_dist_fn one = l2 ? kern->l2sq : kern->neg_dot;
    size_t dim = f->dim, rows[4];
    float d[4], bound = qv_topk_bound(tk);
    int cnt = 0;

    if (!sp->allow_bits) {
        size_t i = 0;
        for (; i + 4 <= f->n; i += 4) {
            const float *b[4] = {f->vecs + i * dim, f->vecs + (i + 1) * dim, f->vecs + (i + 2) * dim,
                                 f->vecs + (i + 3) * dim};
            /* The scan streams the whole matrix from memory: ask for the rows PREFETCH_ROWS
             * ahead, so that loads are in flight while these four are computed. */
            if (i + PREFETCH_ROWS + 4 <= f->n) {
                const char *next = (const char *)(f->vecs + (i + PREFETCH_ROWS) * dim);
                for (size_t off = 0; off < 4 * dim * sizeof(float); off += 64) __builtin_prefetch(next + off);
            }
            x4(q, b, dim, d);
            rows[0] = i, rows[1] = i + 1, rows[2] = i + 2, rows[3] = i + 3;
            bound = offer(f, sp, tk, rows, d, 4, bound);
        }
        for (; i < f->n; i++) {
            d[0] = one(q, f->vecs + i * dim, dim);
            rows[0] = i;
            bound = offer(f, sp, tk, rows, d, 1, bound);
        }
        return;
    }
    /* Filtered: gather passing rows four at a time. */
    for (size_t i = 0; i < f->n; i++) {
        if (!allowed(sp, f->ids[i])) continue;
        rows[cnt++] = i;
        if (cnt == 4) {
            const float *b[4] = {f->vecs + rows[0] * dim, f->vecs + rows[1] * dim, f->vecs + rows[2] * dim,
                                 f->vecs + rows[3] * dim};
            x4(q, b, dim, d);
            bound = offer(f, sp, tk, rows, d, 4, bound);
            cnt = 0;
        }
    }
    for (int j = 0; j < cnt; j++) d[j] = one(q, f->vecs + rows[j] * dim, dim);
    offer(f, sp, tk, rows, d, cnt, bound);
}

static size_t write_hits(qv_metric metric, qv_topk *tk, qv_hit *hits)
{
    size_t len = qv_topk_sort(tk);
    for (size_t j = 0; j < len; j++) {
        hits[j].id = tk->items[j].id;
        hits[j].score = qv_score_from_dist(metric, tk->items[j].dist);
    }
    return len;
}

/* Rows estimated per step of the code scan (a stack buffer). */
#define CODE_CHUNK 1024u

/* The codes of every row ranked into the best R estimates, then the float re-score of
 * those (bit1: skipping a candidate whose estimate minus its error bound already loses to
 * the k-th exact distance). Caller holds the read lock. */
static int search_codes(const flat *f, qv_metric metric, const float *q, const qv_search_params *sp, qv_hit *hits,
                        size_t *n_hits)
{
    const qv_codec *c = f->codec;
    const size_t k = sp->k, dim = f->dim;
    const int rescore = sp->rescore != QV_RESCORE_OFF;
    float over = sp->oversampling > 0 ? sp->oversampling : qv_code_scan_oversampling(c->kind);
    size_t R = rescore ? (size_t)ceilf((float)k * over) : k;
    if (R < k) R = k;
    void *qbuf = qv_aligned_calloc(1, qv_code_scan_bytes(c));
    float *qtmp = qv_malloc(qv_code_scan_scratch_floats(c) * sizeof *qtmp);
    qv_pair *cand = qv_reallocarray(NULL, R, sizeof *cand);
    int rc = QV_OK;
    if (!qbuf || !qtmp || !cand) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    qv_code_scan cs;
    qv_code_scan_prepare(&cs, c, q, qbuf, qtmp);
    qv_topk ct;
    qv_topk_init_with(&ct, cand, R);
    float est[CODE_CHUNK], bound = INFINITY;
    for (size_t r0 = 0; r0 < f->n; r0 += CODE_CHUNK) {
        size_t m = f->n - r0 < CODE_CHUNK ? f->n - r0 : CODE_CHUNK;
        qv_code_rows_estimate(&f->codes, &cs, r0, m, est);
        for (size_t j = 0; j < m; j++) {
            uint64_t id = f->ids[r0 + j];
            if (est[j] > bound || !allowed(sp, id) || (sp->accept && !sp->accept(id, sp->accept_arg))) continue;
            if (qv_topk_push(&ct, est[j], r0 + j)) bound = qv_topk_bound(&ct);
        }
    }
    size_t nc = qv_topk_sort(&ct);
    if (!rescore) {
        for (size_t i = 0; i < nc; i++) {
            hits[i].id = f->ids[cand[i].id];
            hits[i].score = qv_score_from_dist(metric, cand[i].dist);
        }
        *n_hits = nc;
        goto cleanup;
    }
    const qv_kernels *kern = qv_kernels_get();
    qv_dist_fn dist = metric == QV_METRIC_L2 ? kern->l2sq : kern->neg_dot;
    qv_pair store[QV_MAX_K];
    qv_topk tk;
    qv_topk_init_with(&tk, store, k);
    for (size_t i = 0; i < nc; i++) {
        size_t row = cand[i].id;
        if (c->kind == QV_QUANT_BIT1 && tk.len >= k &&
            cand[i].dist - qv_code_rows_bound(&f->codes, &cs, row) > qv_topk_bound(&tk))
            continue;
        qv_topk_push(&tk, dist(q, f->vecs + row * dim, dim), f->ids[row]);
    }
    *n_hits = write_hits(metric, &tk, hits);
cleanup:
    qv_free(qbuf);
    qv_free(qtmp);
    qv_free(cand);
    return rc;
}

/* One query, read lock held: on the codes when the index has trained ones. */
static int search_one(const qv_index *ix, const flat *f, const float *q, const qv_search_params *sp, qv_hit *hits,
                      size_t *n_hits)
{
    if (f->codec && f->codec->trained_on && sp->rescore != QV_RESCORE_ALL)
        return search_codes(f, ix->p.metric, q, sp, hits, n_hits);
    qv_pair store[QV_MAX_K];       /* 16 KiB of stack: no allocation on the float path */
    qv_topk tk;
    qv_topk_init_with(&tk, store, sp->k);
    scan(f, ix->p.metric, q, sp, &tk);
    *n_hits = write_hits(ix->p.metric, &tk, hits);
    return QV_OK;
}

static int flat_search(const qv_index *ix, const float *q, const qv_search_params *sp, qv_hit *hits,
                       size_t *n_hits)
{
    flat *f = ix->impl;
    pthread_rwlock_rdlock(&f->lock);
    int rc = search_one(ix, f, q, sp, hits, n_hits);
    pthread_rwlock_unlock(&f->lock);
    return rc;
}

typedef struct {
    const qv_index *ix;
    const float *q;
    const qv_search_params *sp;
    qv_hit *hits;
    size_t *n_hits;
    int rc;                        /* first failure */
} scan_job;

static void scan_one(void *arg, size_t i, unsigned worker)
{
    scan_job *job = arg;
    const flat *f = job->ix->impl;
    (void)worker;
    int rc = search_one(job->ix, f, job->q + i * f->dim, job->sp, job->hits + i * job->sp->k, &job->n_hits[i]);
    if (rc != QV_OK) __atomic_store_n(&job->rc, rc, __ATOMIC_RELAXED);
}

/* ---- GPU batch ------------------------------------------------------------------------- */

/* Whether this batch goes to the GPU (see the file header). Caller holds the read lock. */
static int gpu_wanted(const qv_index *ix, const flat *f, size_t nq, const qv_search_params *sp)
{
    if (ix->p.gpu == QV_GPU_OFF || nq < GPU_MIN_BATCH || f->n == 0 || sp->allow_bits || sp->accept) return 0;
    return ix->p.gpu == QV_GPU_REQUIRE || qv_gpu_probe();
}

/* Bring the device copy up to date: rows [gpu_synced, n) are uploaded after truncating the
 * copy to gpu_synced. A failure leaves the watermark true (truncate keeps rows below it,
 * add is all or nothing). Caller holds the read lock and gpu_lock. */
static int gpu_sync(flat *f, qv_metric metric)
{
    int rc;
    if (!f->gpu) {
        qv_gpu_options o;
        qv_gpu_options_init(&o);
        o.math = QV_GPU_MATH_FP32;     /* exact search: never TF32/FP16, whatever QV_GPU_MATH says */
        if ((rc = qv_gpu_flat_new(f->dim, metric, &o, &f->gpu)) != QV_OK) return rc;
        f->gpu_synced = 0;
    }
    QV_CHECK_INTERNAL(f->gpu_synced <= f->n && f->gpu_synced <= qv_gpu_flat_size(f->gpu));
    if (f->gpu_synced == f->n && qv_gpu_flat_size(f->gpu) == f->n) return QV_OK;
    if ((rc = qv_gpu_flat_truncate(f->gpu, f->gpu_synced)) != QV_OK) return rc;
    if ((rc = qv_gpu_flat_add(f->gpu, f->n - f->gpu_synced, f->vecs + f->gpu_synced * f->dim)) != QV_OK)
        return rc;
    f->gpu_synced = f->n;
    return QV_OK;
}

/* The batch on the GPU: device rows -> ids, internal distances -> public scores. Caller
 * holds the read lock. On failure hits and n_hits are left partly written: the caller
 * either answers on the CPU (AUTO) or reports the error (REQUIRE). */
static int gpu_batch(const qv_index *ix, flat *f, size_t nq, const float *q, size_t k, qv_hit *hits,
                     size_t *n_hits)
{
    float *dist = qv_reallocarray(NULL, nq, k * sizeof *dist);
    int64_t *rows = qv_reallocarray(NULL, nq, k * sizeof *rows);
    int rc;
    if (!dist || !rows) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    pthread_mutex_lock(&f->gpu_lock);
    if (f->gpu_failed)
        rc = qv_fail(QV_ENODEV, "flat index: GPU disabled for this index after an earlier GPU error");
    else if ((rc = gpu_sync(f, ix->p.metric)) == QV_OK)
        rc = qv_gpu_flat_knn(f->gpu, nq, q, k, dist, rows);
    if (rc != QV_OK && !f->gpu_failed) {
        /* Give the device memory back; a later GPU batch uploads everything again. */
        qv_gpu_flat_free(f->gpu);
        f->gpu = NULL;
        f->gpu_synced = 0;
        f->gpu_failed = ix->p.gpu == QV_GPU_AUTO && rc != QV_ENOMEM;
    }
    pthread_mutex_unlock(&f->gpu_lock);
    if (rc != QV_OK) goto cleanup;
    for (size_t i = 0; i < nq; i++) {
        size_t m = 0;
        /* Rows come best first; the tail past the last row is padded with -1. */
        for (; m < k && rows[i * k + m] >= 0; m++) {
            int64_t r = rows[i * k + m];
            if ((uint64_t)r >= f->n) {
                rc = qv_fail(QV_EINTERNAL, "flat index: the GPU returned row %lld of %zu", (long long)r, f->n);
                goto cleanup;
            }
            hits[i * k + m].id = f->ids[r];
            hits[i * k + m].score = qv_score_from_dist(ix->p.metric, dist[i * k + m]);
        }
        n_hits[i] = m;
    }
cleanup:
    qv_free(dist);
    qv_free(rows);
    return rc;
}

/* ---- batch ----------------------------------------------------------------------------- */

static int flat_search_batch(const qv_index *ix, size_t nq, const float *q, const qv_search_params *sp,
                             qv_hit *hits, size_t *n_hits)
{
    flat *f = ix->impl;
    size_t k = sp->k;
    float *dist = NULL;
    uint64_t *ids = NULL;
    int rc = QV_OK;

    pthread_rwlock_rdlock(&f->lock);
    if (f->codec && f->codec->trained_on && sp->rescore != QV_RESCORE_ALL) {
        scan_job job = {ix, q, sp, hits, n_hits, QV_OK};     /* codes: query by query */
        qv_pool_run(ix->pool, nq, 1, scan_one, &job);
        rc = job.rc;
        goto cleanup;
    }
    if (gpu_wanted(ix, f, nq, sp)) {
        rc = gpu_batch(ix, f, nq, q, k, hits, n_hits);
        if (rc == QV_OK || ix->p.gpu == QV_GPU_REQUIRE) goto cleanup;
        qv_clear_error();              /* AUTO: the CPU answers instead */
        rc = QV_OK;
    }
    if (nq < BATCH_MIN_GEMM) {
        scan_job job = {ix, q, sp, hits, n_hits, QV_OK};
        qv_pool_run(ix->pool, nq, 1, scan_one, &job);
        goto cleanup;
    }
    dist = qv_reallocarray(NULL, nq, k * sizeof *dist);
    ids = qv_reallocarray(NULL, nq, k * sizeof *ids);
    if (!dist || !ids) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    qv_blas_db db = {
        .x = f->vecs, .x_norms = f->norms, .n = f->n, .dim = f->dim, .metric = ix->p.metric, .ids = f->ids,
        .allow_bits = sp->allow_bits, .allow_nbits = sp->allow_nbits, .accept = sp->accept,
        .accept_arg = sp->accept_arg,
    };
    if ((rc = qv_blas_knn(&db, q, nq, k, ix->pool, dist, ids, n_hits)) != QV_OK) goto cleanup;
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < n_hits[i]; j++) {
            hits[i * k + j].id = ids[i * k + j];
            hits[i * k + j].score = qv_score_from_dist(ix->p.metric, dist[i * k + j]);
        }
cleanup:
    pthread_rwlock_unlock(&f->lock);
    qv_free(dist);
    qv_free(ids);
    return rc;
}

/* ---- persistence ----------------------------------------------------------------------- */

static int host_is_le(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static int flat_save(const qv_index *ix, qv_writer *w)
{
    flat *f = ix->impl;
    int rc;
    pthread_rwlock_rdlock(&f->lock);
    qv_w_u64(w, (uint64_t)f->n);
    for (size_t i = 0; i < f->n; i++) qv_w_u64(w, f->ids[i]);
    if (host_is_le()) {
        rc = qv_w_bytes(w, f->vecs, f->n * f->dim * sizeof *f->vecs);
    } else {
        rc = QV_OK;
        for (size_t i = 0; i < f->n * f->dim && rc == QV_OK; i++) rc = qv_w_f32(w, f->vecs[i]);
    }
    if (f->codec) {
        qv_w_u32(w, f->codec->trained_on ? 1u : 0u);
        if (f->codec->trained_on) qv_codec_save(f->codec, w);
    }
    pthread_rwlock_unlock(&f->lock);
    return w->failed ? w->failed : rc;
}

static uint64_t le64(const uint8_t *b)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | b[i];
    return x;
}

static int flat_load(qv_index *ix, qv_reader *r)
{
    flat *f = ix->impl;
    uint64_t count;
    const uint8_t *idb, *vb;
    size_t dim = f->dim, row_bytes = sizeof(uint64_t) + dim * sizeof(float);
    int rc;

    if ((rc = qv_r_u64(r, &count, "vector count")) != QV_OK) return rc;
    /* Bound the count by the bytes actually present before allocating anything. */
    if (count > (r->len - r->off) / row_bytes || count > MAX_ROWS)
        return qv_r_corrupt(r, "vector count %llu does not fit in the %zu bytes left", (unsigned long long)count,
                            r->len - r->off);
    size_t n = (size_t)count;
    if ((rc = grow(f, n)) != QV_OK) return rc;
    if ((rc = qv_idmap_reserve(&f->map, n)) != QV_OK) return rc;
    if ((rc = qv_r_view(r, (const void **)&idb, n * sizeof(uint64_t), "ids")) != QV_OK) return rc;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = le64(idb + i * 8);
        if (qv_idmap_get(&f->map, id) != QV_IDMAP_NONE)
            return qv_r_corrupt(r, "duplicate id %llu (rows %u and %zu)", (unsigned long long)id,
                                qv_idmap_get(&f->map, id), i);
        if ((rc = qv_idmap_put(&f->map, id, (uint32_t)i)) != QV_OK) return rc;
        f->ids[i] = id;
    }
    if ((rc = qv_r_view(r, (const void **)&vb, n * dim * sizeof(float), "vectors")) != QV_OK) return rc;
    if (host_is_le()) {
        if (n) memcpy(f->vecs, vb, n * dim * sizeof(float));
    } else {
        for (size_t i = 0; i < n * dim; i++) {
            uint32_t u = (uint32_t)vb[4 * i] | (uint32_t)vb[4 * i + 1] << 8 | (uint32_t)vb[4 * i + 2] << 16 |
                         (uint32_t)vb[4 * i + 3] << 24;
            memcpy(&f->vecs[i], &u, 4);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const float *v = f->vecs + i * dim;
        if (!qv_all_finite(v, dim)) return qv_r_corrupt(r, "vector of row %zu (id %llu) is not finite", i,
                                                        (unsigned long long)f->ids[i]);
        f->norms[i] = qv_norm_sq(v, dim);
        if (ix->p.metric == QV_METRIC_COSINE && fabsf(f->norms[i] - 1.0f) > 1e-3f)
            return qv_r_corrupt(r, "cosine vector of row %zu (id %llu) is not unit length (norm^2 %g)", i,
                                (unsigned long long)f->ids[i], (double)f->norms[i]);
    }
    f->n = n;
    if (!f->codec) return QV_OK;
    uint32_t trained;
    if ((rc = qv_r_u32(r, &trained, "codes trained")) != QV_OK) return rc;
    if (trained > 1) return qv_r_corrupt(r, "codes trained flag %u (0 or 1)", trained);
    if (!trained) return n ? qv_r_corrupt(r, "%zu vectors but no trained codes", n) : QV_OK;
    if ((rc = qv_codec_load(f->codec, r)) != QV_OK) return rc;
    for (size_t i = 0; i < n; i++)
        qv_code_rows_put(&f->codes, f->codec, i, f->vecs + i * dim, f->enc_row, f->enc_tmp);
    return QV_OK;
}

static size_t flat_size(const qv_index *ix)
{
    flat *f = ix->impl;
    pthread_rwlock_rdlock(&f->lock);
    size_t n = f->n;
    pthread_rwlock_unlock(&f->lock);
    return n;
}

/* Host bytes only: the device copy of a GPU index is not counted (see the file header). */
static size_t flat_memory(const qv_index *ix)
{
    flat *f = ix->impl;
    pthread_rwlock_rdlock(&f->lock);
    size_t bytes = sizeof *f + f->cap * (f->dim * sizeof(float) + sizeof(float) + sizeof(uint64_t)) +
                   qv_idmap_memory(&f->map);
    if (f->codec) bytes += qv_code_rows_bytes(f->codec, f->codes.cap) + qv_codec_memory(f->codec);
    pthread_rwlock_unlock(&f->lock);
    return bytes;
}

/* vectors: the float rows (for a quantized index, read by the re-score only); search:
 * ids, norms, id map and codes; other: the index header and encode scratch. */
static void flat_memory_detail(const qv_index *ix, qv_index_memory_info *out)
{
    flat *f = ix->impl;
    memset(out, 0, sizeof *out);
    out->total = flat_memory(ix);
    pthread_rwlock_rdlock(&f->lock);
    out->vectors = f->cap * f->dim * sizeof(float);
    if (f->codec) out->codes = qv_code_rows_bytes(f->codec, f->codes.cap) + qv_codec_memory(f->codec);
    pthread_rwlock_unlock(&f->lock);
    out->other = sizeof *f;
    out->search = out->total - out->vectors - out->other;
}

const qv_index_ops qv_flat_ops = {
    .kind = QV_INDEX_FLAT,
    .create = flat_create,
    .destroy = flat_destroy,
    .train = NULL,
    .add = flat_add,
    .remove = flat_remove,
    .search = flat_search,
    .search_batch = flat_search_batch,
    .save = flat_save,
    .load = flat_load,
    .size = flat_size,
    .memory = flat_memory,
    .memory_detail = flat_memory_detail,
};
