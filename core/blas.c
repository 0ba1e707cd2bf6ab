/*
 * core/blas.c -- batch k-nearest-neighbours through SGEMM, and the thin BLAS wrappers.
 * The only file of Quiver that includes <cblas.h> (OpenBLAS).
 *
 * qv_blas_knn, per query tile (up to TILE_Q queries):
 *   for each database tile (up to TILE_N rows):
 *     C = alpha * Q_tile * X_tile^T           (cblas_sgemm; alpha = -2 for l2, -1 for ip)
 *     d = C + ||x||^2 + ||q||^2  (l2)  or  d = C  (ip/cosine)
 *     fold row r of C into query r's heap: compare with the heap bound first, so the
 *     filters and the heap are touched only by the few rows that could enter the top k.
 *   then the k survivors of each query are re-scored with the exact SIMD kernel and
 *   sorted by (distance, id). GEMM distances lose precision when ||q||^2 + ||x||^2 is much
 *   larger than the distance itself; re-scoring makes the reported distances (and the
 *   order among the k) those of a single-query scan, up to summation order, at k*dim
 *   flops per query. The choice of the k is still GEMM's, so an exact tie-or-near-tie at the
 *   k-th place can differ from a scan by a rounding error.
 * Scratch per tile in flight (at most min(threads, tiles) of them): TILE_Q*TILE_N floats
 * for C (4 MiB; 1024 x 1024 measured best among 256..1024 x 1024..2048 at dim 100 and
 * 128) plus TILE_Q*k heap pairs, so memory does not grow with nq or n and the nq x n
 * distance matrix never exists.
 *
 * Parallelism: query tiles are spread over the caller's qv_pool and every SGEMM runs
 * single-threaded inside its worker, so the GEMM and the fold (scalar work, about a tenth
 * of the GEMM's time at dim 128) are both parallel and no OpenBLAS thread spins beside a
 * pool thread. IVF search and k-means also call qv_sgemm_nt / qv_blas_knn from pool
 * workers, where a threaded BLAS would only oversubscribe the cores. OpenBLAS's thread
 * count is process-wide (0.3.21 has no per-call setting), so the first use of any entry
 * point here sets it to 1 once; qv_blas_set_threads(n) overrides that for a caller that
 * runs one big GEMM outside the pool.
 * Measured (2-core AMD EPYC, OpenBLAS 0.3.21 "Haswell" kernels, machine shared with a
 * load average of ~6, nq = 10000, n = 100000, dim = 128, k = 10, two runs each):
 *   pool of 2 + single-threaded SGEMM   1570 / 1519 QPS, 2.6 CPU-s
 *   one caller + OpenBLAS 2 threads     1064 / 1332 QPS, 3.4-4.0 CPU-s
 * Whole tiles handed out dynamically also balance around a core that someone else is
 * using, where OpenBLAS's fixed split waits for its slowest thread on every call.
 * Tiles: 256 x 2048 cost the same CPU time as 128x2048, 256x4096 and 512x1024 (within
 * 2%) with the smallest scratch; 64 x 8192 was 15% slower.
 */
#include "core/blas.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/distance.h"
#include "core/error.h"
#include "core/topk.h"

#ifndef TILE_Q                     /* overridable for tuning builds only */
#define TILE_Q 1024u
#endif
#ifndef TILE_N
#define TILE_N 1024u
#endif

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;

static void blas_single_threaded(void) { openblas_set_num_threads(1); }

/* Quiver parallelises on its own pool: BLAS runs in the calling thread (see above). */
static void blas_init(void) { pthread_once(&threads_once, blas_single_threaded); }

void qv_sgemm_nt(size_t m, size_t n, size_t k, float alpha, const float *A, const float *B,
                 float beta, float *C)
{
    if (m == 0 || n == 0) return;
    blas_init();
    int lda = k ? (int)k : 1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, alpha, A, lda, B, lda,
                beta, C, (int)n);
}

void qv_blas_set_threads(unsigned threads)
{
    blas_init();
    if (threads == 0) return;
    if (threads > INT_MAX) threads = INT_MAX;
    if (openblas_get_num_threads() != (int)threads) openblas_set_num_threads((int)threads);
}

static char blas_name[256];
static pthread_once_t blas_name_once = PTHREAD_ONCE_INIT;

static void make_blas_name(void)
{
    const char *cfg = openblas_get_config();
    const char *core = openblas_get_corename();
    snprintf(blas_name, sizeof blas_name, "%s (core %s, %d threads)", cfg ? cfg : "OpenBLAS",
             core ? core : "?", openblas_get_num_threads());
}

const char *qv_blas_name(void)
{
    pthread_once(&blas_name_once, make_blas_name);
    return blas_name;
}

/* ---- qv_blas_knn ---------------------------------------------------------------------- */

typedef struct {
    float *c;                      /* tq * TILE_N GEMM output */
    float *xn;                     /* TILE_N norms when the caller gave none */
    float *qn;                     /* tq query norms */
    qv_pair *heap;                 /* tq * k: per-query candidates as (dist, row) */
    qv_pair *final;                /* k: exact re-scored (dist, id) */
    qv_topk *tk;                   /* tq heads over heap */
} knn_scratch;

typedef struct {
    const qv_blas_db *db;
    const float *q;
    size_t nq, k, tq;
    float *out_dist;
    uint64_t *out_ids;
    size_t *n_found;
    /* Scratch sets for the tiles in flight: at most min(threads, tiles) run at once, so
     * that many sets suffice whatever the pool's size; a tile borrows one from the stack. */
    knn_scratch *scratch;
    unsigned *free_stack, nfree;
    pthread_mutex_t lock;
} knn_job;

static inline int row_passes(const qv_blas_db *db, size_t row)
{
    if (db->live_bits && !((db->live_bits[row >> 6] >> (row & 63)) & 1)) return 0;
    uint64_t id = db->ids ? db->ids[row] : (uint64_t)row;
    if (db->allow_bits && !(id < db->allow_nbits && ((db->allow_bits[id >> 6] >> (id & 63)) & 1))) return 0;
    if (db->accept && !db->accept(id, db->accept_arg)) return 0;
    return 1;
}

/* Fold one row of distances (already complete: d[j] for rows x0 + j) into a heap. */
/* Fold one row of distances into its heap. Once the heap is full almost every distance
 * is above the bound, so the row is checked in blocks of FOLD_BLOCK with a branch-free
 * test the compiler vectorizes, and only a block holding a candidate is walked one by
 * one (measured on glove6b-100k, dim 100: the fold went from half the GEMM time to a
 * small fraction of it). The pushes, and so the results, are exactly those of a plain
 * loop. */
#define FOLD_BLOCK 16
static void fold_row(const qv_blas_db *db, const float *c, const float *xn, float qn, size_t x0,
                     size_t nn, qv_topk *tk)
{
    float bound = qv_topk_bound(tk), d[FOLD_BLOCK];
    int l2 = db->metric == QV_METRIC_L2;
    for (size_t j0 = 0; j0 < nn; j0 += FOLD_BLOCK) {
        size_t len = nn - j0 < FOLD_BLOCK ? nn - j0 : FOLD_BLOCK;
        int any = 0;
        if (len == FOLD_BLOCK) {
            if (l2)
                for (size_t i = 0; i < FOLD_BLOCK; i++) d[i] = c[j0 + i] + xn[j0 + i] + qn;
            else
                for (size_t i = 0; i < FOLD_BLOCK; i++) d[i] = c[j0 + i];
            for (size_t i = 0; i < FOLD_BLOCK; i++) any |= d[i] <= bound;
        } else {
            for (size_t i = 0; i < len; i++) {
                d[i] = l2 ? c[j0 + i] + xn[j0 + i] + qn : c[j0 + i];
                any |= d[i] <= bound;
            }
        }
        if (!any) continue;
        for (size_t i = 0; i < len; i++) {
            if (!(d[i] <= bound)) continue;
            if (!row_passes(db, x0 + j0 + i)) continue;
            if (qv_topk_push(tk, d[i], (uint64_t)(x0 + j0 + i))) bound = qv_topk_bound(tk);
        }
    }
}

static void knn_tile_with(knn_job *job, size_t t, knn_scratch *s)
{
    const qv_blas_db *db = job->db;
    size_t dim = db->dim, k = job->k;
    size_t q0 = t * job->tq, m = job->nq - q0 < job->tq ? job->nq - q0 : job->tq;
    const float *qt = job->q + q0 * dim;
    int l2 = db->metric == QV_METRIC_L2;
    const qv_kernels *kern = qv_kernels_get();
    qv_dist_fn dist = l2 ? kern->l2sq : kern->neg_dot;

    for (size_t r = 0; r < m; r++) {
        qv_topk_init_with(&s->tk[r], s->heap + r * k, k);
        s->qn[r] = l2 ? kern->dot(qt + r * dim, qt + r * dim, dim) : 0.0f;
    }
    for (size_t x0 = 0; x0 < db->n; x0 += TILE_N) {
        size_t nn = db->n - x0 < TILE_N ? db->n - x0 : TILE_N;
        const float *xt = db->x + x0 * dim;
        const float *xn = NULL;
        qv_sgemm_nt(m, nn, dim, l2 ? -2.0f : -1.0f, qt, xt, 0.0f, s->c);
        if (l2) {
            if (db->x_norms) {
                xn = db->x_norms + x0;
            } else {
                for (size_t j = 0; j < nn; j++) s->xn[j] = kern->dot(xt + j * dim, xt + j * dim, dim);
                xn = s->xn;
            }
        }
        for (size_t r = 0; r < m; r++) fold_row(db, s->c + r * nn, xn, s->qn[r], x0, nn, &s->tk[r]);
    }
    for (size_t r = 0; r < m; r++) {
        size_t qi = q0 + r, found = s->tk[r].len;
        const float *qv = qt + r * dim;
        qv_topk fin;
        qv_topk_init_with(&fin, s->final, k);
        for (size_t j = 0; j < found; j++) {
            size_t row = (size_t)s->tk[r].items[j].id;
            qv_topk_push(&fin, dist(qv, db->x + row * dim, dim), db->ids ? db->ids[row] : (uint64_t)row);
        }
        qv_topk_sort(&fin);
        float *od = job->out_dist + qi * k;
        uint64_t *oi = job->out_ids + qi * k;
        for (size_t j = 0; j < k; j++) {
            od[j] = j < fin.len ? fin.items[j].dist : INFINITY;
            oi[j] = j < fin.len ? fin.items[j].id : UINT64_MAX;
        }
        if (job->n_found) job->n_found[qi] = fin.len;
    }
}

static void knn_tile(void *arg, size_t t, unsigned worker)
{
    knn_job *job = arg;
    (void)worker;
    pthread_mutex_lock(&job->lock);
    unsigned slot = job->free_stack[--job->nfree];
    pthread_mutex_unlock(&job->lock);
    knn_tile_with(job, t, &job->scratch[slot]);
    pthread_mutex_lock(&job->lock);
    job->free_stack[job->nfree++] = slot;
    pthread_mutex_unlock(&job->lock);
}

static void scratch_release(knn_scratch *s)
{
    qv_free(s->c);
    qv_free(s->xn);
    qv_free(s->qn);
    qv_free(s->heap);
    qv_free(s->final);
    qv_free(s->tk);
}

static int scratch_init(knn_scratch *s, size_t tq, size_t k, int need_xn)
{
    memset(s, 0, sizeof *s);
    s->c = qv_aligned_calloc(tq * TILE_N, sizeof *s->c);
    s->xn = need_xn ? qv_reallocarray(NULL, TILE_N, sizeof *s->xn) : NULL;
    s->qn = qv_reallocarray(NULL, tq, sizeof *s->qn);
    s->heap = qv_reallocarray(NULL, tq, k * sizeof *s->heap);
    s->final = qv_reallocarray(NULL, k, sizeof *s->final);
    s->tk = qv_reallocarray(NULL, tq, sizeof *s->tk);
    if (!s->c || (need_xn && !s->xn) || !s->qn || !s->heap || !s->final || !s->tk) {
        scratch_release(s);
        return QV_ENOMEM;
    }
    return QV_OK;
}

int qv_blas_knn(const qv_blas_db *db, const float *q, size_t nq, size_t k, qv_pool *pool,
                float *out_dist, uint64_t *out_ids, size_t *n_found)
{
    knn_job job;
    size_t ntiles, tq;
    unsigned workers = pool ? qv_pool_threads(pool) : 1, made = 0;
    int rc = QV_OK, locked = 0;

    if (!db || (nq && (!q || !out_dist || !out_ids)) || (db->n && !db->x))
        return qv_fail(QV_EINVAL, "qv_blas_knn: NULL database, queries or outputs");
    if (db->dim < 1 || db->dim > INT_MAX / TILE_N)
        return qv_fail(QV_EINVAL, "qv_blas_knn: dim must be 1..%u, got %zu", INT_MAX / TILE_N, db->dim);
    if (k < 1 || k > QV_MAX_K) return qv_fail(QV_EINVAL, "qv_blas_knn: k must be 1..%u, got %zu", QV_MAX_K, k);
    if (nq == 0) return QV_OK;
    if (workers < 1) workers = 1;
    /* Enough tiles to keep every worker busy, but none taller than TILE_Q. */
    tq = (nq + workers - 1) / workers;
    if (tq > TILE_Q) tq = TILE_Q;
    ntiles = (nq + tq - 1) / tq;
    if (workers > ntiles) workers = (unsigned)ntiles;

    memset(&job, 0, sizeof job);
    job.db = db;
    job.q = q;
    job.nq = nq;
    job.k = k;
    job.tq = tq;
    job.out_dist = out_dist;
    job.out_ids = out_ids;
    job.n_found = n_found;
    job.scratch = qv_calloc(workers, sizeof *job.scratch);
    job.free_stack = qv_calloc(workers, sizeof *job.free_stack);
    if (!job.scratch || !job.free_stack) { rc = QV_ENOMEM; goto cleanup; }
    int need_xn = db->metric == QV_METRIC_L2 && !db->x_norms;
    for (; made < workers; made++) {
        if ((rc = scratch_init(&job.scratch[made], tq, k, need_xn)) != QV_OK) goto cleanup;
        job.free_stack[made] = made;
    }
    job.nfree = workers;
    if (pthread_mutex_init(&job.lock, NULL) != 0) { rc = qv_fail(QV_ENOMEM, "qv_blas_knn: cannot create a mutex"); goto cleanup; }
    locked = 1;
    blas_init();
    if (pool && workers > 1) {
        qv_pool_run(pool, ntiles, 1, knn_tile, &job);
    } else {
        for (size_t t = 0; t < ntiles; t++) knn_tile_with(&job, t, &job.scratch[0]);
    }
cleanup:
    if (locked) pthread_mutex_destroy(&job.lock);
    for (unsigned i = 0; i < made; i++) scratch_release(&job.scratch[i]);
    qv_free(job.scratch);
    qv_free(job.free_stack);
    return rc;
}
