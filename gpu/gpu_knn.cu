/*
 * gpu/gpu_knn.cu -- exact k-nearest-neighbour search on the device: distances through
 * cuBLAS GEMM, a fused k-selection kernel, and the tiling that keeps the nq x n distance
 * matrix on the device (and lets a database larger than the device stream through).
 *
 * Distances. For l2, ||q - x||^2 = ||q||^2 - 2 q.x + ||x||^2. One GEMM per (query batch,
 * database tile) writes D = -2 Q X^T (ip/cosine: -Q X^T) row-major, a query per row; the
 * selection kernel adds ||x||^2 as it reads D (no extra pass), and ||q||^2 is added only
 * to the k survivors at the end (it does not change a query's ranking). cuBLAS is
 * column-major, so the row-major nqb x nt tile is computed as the column-major
 * nt x nqb product X_tile^T(op T) * Q^T(op N). Math: FP32 SGEMM (default), TF32 tensor
 * cores (cublasSetMathMode), or fp16 inputs with fp32 accumulation (cublasGemmEx).
 *
 * Selection (select_kernel, one block per query row of a tile). The running k best of
 * each query live on the device as packed (distance key, row) entries (gpu_engine.h).
 * The block reads its row once: entries below the current k-th best go to a shared
 * buffer, which is sorted and merged into the running list when it could overflow and at
 * the end of the row. After the first few rounds of the first tile about k of every n
 * entries seen pass, so a tile costs one read and the merges are small. Results are
 * deterministic and ties go to the smaller row, as on the CPU. k = 1 (k-means
 * assignment) is a single block-wide min.
 *
 * Tiling (qv_gpu__plan). Free device memory (cudaMemGetInfo) sets the budget (3/4 of
 * free, or the caller's cap); the distance tile aims at 1 GiB at most, database tiles
 * at 65536 rows, queries as many as fit: on an H100 this 1 GiB tile timed best of the
 * sizes tried (down to L2-sized tiles of 16 MB, which lose to launch overhead), and a
 * second tile with the selection on its own stream beside the next GEMM did not pay
 * (1.26x SGEMM against 1.21x: the GEMM fills the device), so there is one stream.
 * Host-mode databases are copied tile by tile into a staging buffer, from page-locked
 * memory where qv_gpu_flat_new_host could lock it (the copies are in stream order, not
 * overlapped with compute).
 */
#include "gpu/gpu_engine.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#define SEL_THREADS 256
#define SEL_MAXK 1024 /* QV_MAX_K */
#define EW_THREADS 256

/* ---- keys -------------------------------------------------------------------------- */

/* Order-preserving map of a float onto uint32 (negative values reversed). */
static __device__ __forceinline__ unsigned f2key(float v)
{
    unsigned u = __float_as_uint(v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
static __device__ __forceinline__ float key2f(unsigned k)
{
    unsigned u = (k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k;
    return __uint_as_float(u);
}
static __device__ __forceinline__ qv_u64 pack(unsigned key, unsigned id)
{
    return ((qv_u64)key << 32) | id;
}

/* ---- small kernels ------------------------------------------------------------------ */

static __global__ void selftest_kernel(int *out) { *out = 42; }

static __global__ void norms_kernel(const float *x, size_t n, size_t dim, float *out)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float *r = x + i * dim;
    float s = 0.0f;
    for (size_t j = 0; j < dim; j++) s += r[j] * r[j];
    out[i] = s;
}

static __global__ void to_half_kernel(const float *x, size_t count, __half *out)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2half_rn(x[i]);
}

static __global__ void finalize_kernel(const qv_u64 *best, size_t total, size_t k,
                                       const float *qn, int l2, float *dist, int64_t *rows)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    qv_u64 e = best[i];
    if (e == QV_GPU_EMPTY) {
        dist[i] = INFINITY;
        rows[i] = -1;
        return;
    }
    float v = key2f((unsigned)(e >> 32));
    if (qn) v += qn[i / k];
    if (l2 && v < 0.0f) v = 0.0f;
    dist[i] = v;
    rows[i] = (int64_t)(e & 0xFFFFFFFFull);
}

/* ---- the selection kernel ------------------------------------------------------------ */

/* Candidates gathered between two merges into the running list; a round reads
 * SEL_THREADS * 4 entries of the row. */
#define SEL_ROUND (SEL_THREADS * 4)

static __device__ __forceinline__ unsigned sel_id(const qv_gpu_sel &a, const unsigned *ids, int j)
{
    return ids ? ids[j] : a.id0 + (unsigned)j;
}

/* The key below which an entry can enter a running list whose k-th best is worst. */
static __device__ __forceinline__ unsigned key_bound(qv_u64 worst)
{
    return worst == QV_GPU_EMPTY ? 0xFFFFFFFFu : (unsigned)(worst >> 32);
}

/* How many of the sorted list[0..n) are smaller than v. */
static __device__ __forceinline__ unsigned rank_below(const qv_u64 *list, unsigned n, qv_u64 v)
{
    unsigned lo = 0, hi = n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (list[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Bitonic sort of buf[0..p2) ascending (p2 a power of two), block-wide. */
static __device__ void sort_block(qv_u64 *buf, unsigned p2)
{
    const unsigned tid = threadIdx.x, nth = blockDim.x;
    for (unsigned size = 2; size <= p2; size <<= 1) {
        for (unsigned stride = size >> 1; stride > 0; stride >>= 1) {
            for (unsigned t = tid; t < p2 / 2; t += nth) {
                unsigned i = 2 * t - (t & (stride - 1));
                unsigned j = i + stride;
                qv_u64 x = buf[i], y = buf[j];
                int up = (i & size) == 0;
                if ((x > y) == up) { buf[i] = y; buf[j] = x; }
            }
            __syncthreads();
        }
    }
}

/*
 * run[0..k) = the k smallest of run[0..k) and buf[0..m), block-wide; buf is sorted on
 * the way. Every entry of buf is a real candidate, and no two real entries are equal (the
 * rows differ), so an entry's place in the merged list is its index plus the number of
 * smaller entries in the other list. New places are computed first, into registers, and
 * written after a barrier (run is read by everyone until then).
 */
template <int KMAX>
static __device__ void merge_into_run(qv_u64 *run, qv_u64 *buf, unsigned m, int k)
{
    enum { PER = (KMAX + SEL_THREADS - 1) / SEL_THREADS };
    const unsigned tid = threadIdx.x, nth = blockDim.x;
    unsigned p2 = 1;
    while (p2 < m) p2 <<= 1;
    for (unsigned i = m + tid; i < p2; i += nth) buf[i] = QV_GPU_EMPTY;
    __syncthreads();
    sort_block(buf, p2);
    const unsigned mk = m < (unsigned)k ? m : (unsigned)k;   /* only these can enter */
    qv_u64 val[2 * PER];
    unsigned pos[2 * PER];
    int n = 0;
    for (unsigned i = tid; i < (unsigned)k; i += nth, n++) {
        val[n] = run[i];
        pos[n] = i + rank_below(buf, mk, run[i]);
    }
    for (unsigned j = tid; j < mk; j += nth, n++) {
        val[n] = buf[j];
        pos[n] = j + rank_below(run, (unsigned)k, buf[j]);
    }
    __syncthreads();
    for (int i = 0; i < n; i++)
        if (pos[i] < (unsigned)k) run[pos[i]] = val[i];
    __syncthreads();
}

/*
 * One block per row. The running k best of the row's query (ws->best) are loaded into
 * shared memory; the row is read once, in rounds of SEL_ROUND entries (a float4 per
 * thread where the row is 16-byte aligned), and an entry whose key is below the current
 * k-th best is appended to a shared buffer. When the next round might overflow the
 * buffer, and at the end of the row, the buffer is sorted and merged into the running
 * list, which tightens the bound. On the first tile of a search every entry of the first
 * few rounds passes; after the first merge about k of every n entries seen do, so the row
 * costs one read. Ties: an entry equal to the k-th best can only enter with a smaller
 * row; rows offered by a flat search grow through the row and from tile to tile, so
 * equal keys are simply refused, while an explicit ids array (IVF candidates, in any
 * order) compares the packed (key, row).
 */
template <int KMAX>
static __global__ void __launch_bounds__(SEL_THREADS) select_kernel(qv_gpu_sel a)
{
    enum { CAP = KMAX <= 128 ? 2048 : 4096 };
    __shared__ qv_u64 run[KMAX];
    __shared__ qv_u64 buf[CAP];
    __shared__ unsigned s_cnt;
    __shared__ int s_merged;

    const size_t row = blockIdx.x;
    const int tid = threadIdx.x, nth = blockDim.x;
    const float *d = a.d + row * a.ld;
    const unsigned *ids = a.ids ? a.ids + row * a.ld : NULL;
    const int len = a.len_of ? a.len_of[row] : a.len;
    const int k = a.k;
    const float *add = a.add;
    qv_u64 *best = a.best + row * (size_t)k;

    if (k == 1) {                                   /* argmin: one read, no bound needed */
        qv_u64 m = QV_GPU_EMPTY;
        for (int j = tid; j < len; j += nth) {
            float v = d[j];
            if (add) v += add[j];
            qv_u64 e = pack(f2key(v), sel_id(a, ids, j));
            if (e < m) m = e;
        }
        buf[tid] = m;
        __syncthreads();
        for (int s = nth / 2; s > 0; s >>= 1) {
            if (tid < s && buf[tid + s] < buf[tid]) buf[tid] = buf[tid + s];
            __syncthreads();
        }
        if (tid == 0 && buf[0] < best[0]) best[0] = buf[0];
        return;
    }

    for (int i = tid; i < k; i += nth) run[i] = best[i];
    if (tid == 0) { s_cnt = 0; s_merged = 0; }
    __syncthreads();
    qv_u64 worst = run[k - 1];
    unsigned bound = key_bound(worst);
    const int vec = ((size_t)d & 15) == 0 && ((size_t)add & 15) == 0;

    for (int base = 0; base < len; base += SEL_ROUND) {
        const int j0 = base + tid * 4;
        float v[4];
        int cnt = len - j0 < 4 ? len - j0 : 4;
        if (cnt == 4 && vec) {
            float4 x = *(const float4 *)(d + j0);
            v[0] = x.x; v[1] = x.y; v[2] = x.z; v[3] = x.w;
            if (add) {
                float4 y = *(const float4 *)(add + j0);
                v[0] += y.x; v[1] += y.y; v[2] += y.z; v[3] += y.w;
            }
        } else {
            for (int t = 0; t < cnt; t++) v[t] = add ? d[j0 + t] + add[j0 + t] : d[j0 + t];
        }
        for (int t = 0; t < cnt; t++) {
            unsigned key = f2key(v[t]);
            if (key > bound) continue;
            if (key == bound) {
                if (!ids || bound == 0xFFFFFFFFu) continue;
                if (pack(key, ids[j0 + t]) >= worst) continue;
            }
            unsigned p = atomicAdd(&s_cnt, 1u);
            buf[p] = pack(key, sel_id(a, ids, j0 + t));
        }
        __syncthreads();
        const unsigned m = s_cnt;
        if (m + SEL_ROUND > (unsigned)CAP || (base + SEL_ROUND >= len && m > 0)) {
            merge_into_run<KMAX>(run, buf, m, k);     /* block-uniform: m is shared */
            worst = run[k - 1];
            bound = key_bound(worst);
            if (tid == 0) { s_cnt = 0; s_merged = 1; }
        }
        __syncthreads();
    }
    if (s_merged)
        for (int i = tid; i < k; i += nth) best[i] = run[i];
}

/* ---- host wrappers --------------------------------------------------------------------- */

static unsigned blocks_for(size_t n, unsigned per)
{
    size_t b = (n + per - 1) / per;
    return (unsigned)(b ? b : 1);
}

extern "C" cudaError_t qv_gpu__selftest(void)
{
    int *d = NULL, h = 0;
    cudaError_t e = cudaMalloc((void **)&d, sizeof(int));
    if (e != cudaSuccess) return e;
    QV_LAUNCH(selftest_kernel, 1, 1, 0, d);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaMemcpy(&h, d, sizeof h, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess && h != 42) e = cudaErrorUnknown;
    (void)cudaFree(d);
    return e;
}

int qv_gpu__select(qv_gpu_ctx *c, const qv_gpu_sel *a, size_t nrows)
{
    int rc = QV_OK;
    if (nrows == 0) return QV_OK;
    QV_CHECK_INTERNAL(a->k >= 1 && a->k <= SEL_MAXK);
    if (a->k <= 128) {      /* smaller shared buffers: more blocks per multiprocessor */
        QV_LAUNCH(select_kernel<128>, (unsigned)nrows, SEL_THREADS, c->stream, *a);
    } else {
        QV_LAUNCH(select_kernel<SEL_MAXK>, (unsigned)nrows, SEL_THREADS, c->stream, *a);
    }
    QV_CU_LAUNCHED(select_kernel);
cleanup:
    return rc;
}

int qv_gpu__finalize(qv_gpu_ctx *c, const qv_u64 *best, size_t nq, size_t k, const float *qn,
                     int l2, float *dist, int64_t *rows)
{
    int rc = QV_OK;
    size_t total = nq * k;
    if (total == 0) return QV_OK;
    QV_LAUNCH(finalize_kernel, blocks_for(total, EW_THREADS), EW_THREADS, c->stream, best, total,
              k, qn, l2, dist, rows);
    QV_CU_LAUNCHED(finalize_kernel);
cleanup:
    return rc;
}

int qv_gpu__norms(qv_gpu_ctx *c, const float *x, size_t n, size_t dim, float *out)
{
    int rc = QV_OK;
    if (n == 0) return QV_OK;
    QV_LAUNCH(norms_kernel, blocks_for(n, EW_THREADS), EW_THREADS, c->stream, x, n, dim, out);
    QV_CU_LAUNCHED(norms_kernel);
cleanup:
    return rc;
}

int qv_gpu__to_half(qv_gpu_ctx *c, const float *x, size_t count, __half *out)
{
    int rc = QV_OK;
    if (count == 0) return QV_OK;
    size_t b = (count + EW_THREADS - 1) / EW_THREADS;
    if (b > 65535) b = 65535;
    QV_LAUNCH(to_half_kernel, (unsigned)b, EW_THREADS, c->stream, x, count, out);
    QV_CU_LAUNCHED(to_half_kernel);
cleanup:
    return rc;
}

/* ---- tiling ---------------------------------------------------------------------------- */

int qv_gpu__plan(size_t n, size_t dim, size_t nq, size_t k, int fp16, int host_mode,
                 size_t extra_per_query, const qv_gpu_options *o, qv_gpu_tiling *t)
{
    int rc = QV_OK;
    size_t free_b = 0, total_b = 0;
    QV_CU(cudaMemGetInfo(&free_b, &total_b));
    {
        size_t budget = free_b / 4 * 3;
        if (o->max_device_bytes && o->max_device_bytes < budget) budget = o->max_device_bytes;
        size_t per_q = dim * 4 + (fp16 ? dim * 2 : 0) + 4 + k * 8 + extra_per_query;
        size_t per_row_stage = host_mode ? dim * 4 + 4 + (fp16 ? dim * 2 : 0) : 0;
        size_t nt = o->tile_rows ? o->tile_rows : 65536;
        if (nt > n) nt = n;
        if (nt == 0) nt = 1;
        size_t dcap = budget / 2 < ((size_t)1 << 30) ? budget / 2 : ((size_t)1 << 30);
        size_t nqb = o->query_batch ? o->query_batch : dcap / (nt * 4);
        if (nqb < 1) nqb = 1;
        if (nqb > nq) nqb = nq;
        if (nqb > (size_t)INT_MAX / nt) nqb = (size_t)INT_MAX / nt;   /* cuBLAS int sizes */
        for (;;) {
            size_t need = nqb * nt * 4 + nt * per_row_stage + nqb * per_q;
            if (need <= budget) break;
            if (nt > 1024 && nt >= nqb) nt /= 2;
            else if (nqb > 1) nqb /= 2;
            else if (nt > 1) nt /= 2;
            else {
                rc = qv_fail(QV_ENOMEM, "GPU: not enough device memory for one distance tile "
                             "(%zu bytes needed, budget %zu of %zu free)", need, budget, free_b);
                goto cleanup;
            }
        }
        size_t rest = budget - nqb * nt * 4 - nt * per_row_stage;
        size_t nqc = rest / per_q;
        if (nqc > nq) nqc = nq;
        if (nqc < nqb) nqc = nqb;
        t->nt = nt;
        t->nqb = nqb;
        t->nqc = nqc;
        t->bytes = nqb * nt * 4 + nt * per_row_stage + nqc * per_q;
    }
cleanup:
    return rc;
}

int qv_gpu__ws_alloc(const qv_gpu_tiling *t, size_t dim, size_t k, int fp16, int l2,
                     int host_mode, qv_gpu_ws *ws)
{
    int rc = QV_OK;
    memset(ws, 0, sizeof *ws);
    QV_CU(qv_dalloc(&ws->q, t->nqc * dim));
    if (fp16) QV_CU(qv_dalloc(&ws->qh, t->nqc * dim));
    if (l2) QV_CU(qv_dalloc(&ws->qn, t->nqc));
    QV_CU(qv_dalloc(&ws->best, t->nqc * k));
    QV_CU(qv_dalloc(&ws->d, t->nqb * t->nt));
    if (host_mode) {
        QV_CU(qv_dalloc(&ws->sx, t->nt * dim));
        if (l2) QV_CU(qv_dalloc(&ws->sn, t->nt));
        if (fp16) QV_CU(qv_dalloc(&ws->sh, t->nt * dim));
    }
cleanup:
    if (rc != QV_OK) qv_gpu__ws_free(ws);
    return rc;
}

void qv_gpu__ws_free(qv_gpu_ws *ws)
{
    qv_dfree(&ws->q);
    qv_dfree(&ws->qh);
    qv_dfree(&ws->qn);
    qv_dfree(&ws->best);
    qv_dfree(&ws->d);
    qv_dfree(&ws->sx);
    qv_dfree(&ws->sn);
    qv_dfree(&ws->sh);
}

int qv_gpu__load_queries(qv_gpu_ctx *c, const float *q, size_t nqc, size_t dim, int fp16,
                         int l2, qv_gpu_ws *ws)
{
    int rc = QV_OK;
    QV_CU(cudaMemcpyAsync(ws->q, q, nqc * dim * sizeof(float), cudaMemcpyHostToDevice, c->stream));
    if (l2 && (rc = qv_gpu__norms(c, ws->q, nqc, dim, ws->qn)) != QV_OK) goto cleanup;
    if (fp16 && (rc = qv_gpu__to_half(c, ws->q, nqc * dim, ws->qh)) != QV_OK) goto cleanup;
cleanup:
    return rc;
}

static int gemm_tile(qv_gpu_ctx *c, qv_metric m, qv_gpu_math math, size_t dim, size_t nt,
                     size_t nb, const float *xt, const __half *xht, const float *qb,
                     const __half *qhb, float *d)
{
    int rc = QV_OK;
    const float alpha = m == QV_METRIC_L2 ? -2.0f : -1.0f, beta = 0.0f;
    if (math == QV_GPU_MATH_FP16) {
        QV_CUBLAS(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)nt, (int)nb, (int)dim,
                               &alpha, xht, CUDA_R_16F, (int)dim, qhb, CUDA_R_16F, (int)dim,
                               &beta, d, CUDA_R_32F, (int)nt, CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT));
    } else {
        QV_CUBLAS(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)nt, (int)nb, (int)dim,
                              &alpha, xt, (int)dim, qb, (int)dim, &beta, d, (int)nt));
    }
cleanup:
    return rc;
}

int qv_gpu__knn_chunk(qv_gpu_ctx *c, const qv_gpu_db *db, qv_metric m, qv_gpu_math math,
                      const qv_gpu_tiling *t, qv_gpu_ws *ws, size_t nqc, size_t k,
                      unsigned flags, size_t *gemms)
{
    int rc = QV_OK;
    const int l2 = m == QV_METRIC_L2, fp16 = math == QV_GPU_MATH_FP16;
    const size_t dim = db->dim;
    QV_CHECK_INTERNAL(db->n <= QV_GPU_MAX_ROWS && nqc <= t->nqc && k >= 1 && k <= SEL_MAXK);
    QV_CUBLAS(cublasSetMathMode(c->blas, math == QV_GPU_MATH_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                  : CUBLAS_DEFAULT_MATH));
    QV_CU(cudaMemsetAsync(ws->best, 0xFF, nqc * k * sizeof(qv_u64), c->stream));
    for (size_t t0 = 0; t0 < db->n; t0 += t->nt) {
        size_t nt = db->n - t0 < t->nt ? db->n - t0 : t->nt;
        const float *xt, *xnt = NULL;
        const __half *xht = NULL;
        if (db->host) {
            QV_CU(cudaMemcpyAsync(ws->sx, db->host + t0 * dim, nt * dim * sizeof(float),
                                  cudaMemcpyHostToDevice, c->stream));
            xt = ws->sx;
            if (l2) {
                if ((rc = qv_gpu__norms(c, ws->sx, nt, dim, ws->sn)) != QV_OK) goto cleanup;
                xnt = ws->sn;
            }
            if (fp16) {
                if ((rc = qv_gpu__to_half(c, ws->sx, nt * dim, ws->sh)) != QV_OK) goto cleanup;
                xht = ws->sh;
            }
        } else {
            xt = db->x + t0 * dim;
            xnt = l2 ? db->xn + t0 : NULL;
            xht = fp16 ? db->xh + t0 * dim : NULL;
        }
        for (size_t b0 = 0; b0 < nqc; b0 += t->nqb) {
            size_t nb = nqc - b0 < t->nqb ? nqc - b0 : t->nqb;
            rc = gemm_tile(c, m, math, dim, nt, nb, xt, xht, ws->q + b0 * dim,
                           fp16 ? ws->qh + b0 * dim : NULL, ws->d);
            if (rc != QV_OK) goto cleanup;
            if (gemms) (*gemms)++;
            if (flags & QV_GPU_KNN_GEMM_ONLY) continue;
            qv_gpu_sel s;
            s.d = ws->d;
            s.ld = nt;
            s.ids = NULL;
            s.id0 = (unsigned)t0;
            s.add = xnt;
            s.len_of = NULL;
            s.len = (int)nt;
            s.k = (int)k;
            s.best = ws->best + b0 * k;
            if ((rc = qv_gpu__select(c, &s, nb)) != QV_OK) goto cleanup;
        }
    }
cleanup:
    return rc;
}

/* ---- the flat database ------------------------------------------------------------------ */

struct qv_gpu_flat {
    size_t dim;
    qv_metric metric;
    qv_gpu_options opt;
    size_t n, cap;
    float *x;                      /* device cap*dim */
    float *xn;                     /* device cap (l2) */
    __half *xh;                    /* device cap*dim (FP16) */
    const float *host;             /* host mode: borrowed n*dim */
    int pinned;                    /* host is page-locked by us (cudaHostRegister) */
};

static int check_common(size_t dim, qv_metric metric, const qv_gpu_options *o)
{
    if (dim < 1 || dim > QV_MAX_DIM)
        return qv_fail(QV_EINVAL, "GPU: dim must be 1..%u, got %zu", QV_MAX_DIM, dim);
    if (metric != QV_METRIC_L2 && metric != QV_METRIC_IP && metric != QV_METRIC_COSINE)
        return qv_fail(QV_EINVAL, "GPU: unknown metric %d", (int)metric);
    if (o && (int)o->math != QV_GPU_MATH_FP32 && o->math != QV_GPU_MATH_TF32 &&
        o->math != QV_GPU_MATH_FP16)
        return qv_fail(QV_EINVAL, "GPU: unknown math mode %d", (int)o->math);
    return qv_gpu_require();
}

static int flat_alloc(size_t dim, qv_metric metric, const qv_gpu_options *o, qv_gpu_flat **out)
{
    int rc;
    *out = NULL;
    if ((rc = check_common(dim, metric, o)) != QV_OK) return rc;
    qv_gpu_flat *g = (qv_gpu_flat *)qv_calloc(1, sizeof *g);
    if (!g) return QV_ENOMEM;
    g->dim = dim;
    g->metric = metric;
    if (o) g->opt = *o;
    else qv_gpu_options_init(&g->opt);
    *out = g;
    return QV_OK;
}

extern "C" int qv_gpu_flat_new(size_t dim, qv_metric metric, const qv_gpu_options *o,
                               qv_gpu_flat **out)
{
    if (!out) return qv_fail(QV_EINVAL, "qv_gpu_flat_new: out is NULL");
    return flat_alloc(dim, metric, o, out);
}

extern "C" int qv_gpu_flat_new_host(size_t dim, qv_metric metric, const qv_gpu_options *o,
                                    const float *x, size_t n, qv_gpu_flat **out)
{
    int rc;
    if (!out) return qv_fail(QV_EINVAL, "qv_gpu_flat_new_host: out is NULL");
    *out = NULL;
    if (n && !x) return qv_fail(QV_EINVAL, "qv_gpu_flat_new_host: x is NULL");
    if (n > QV_GPU_MAX_ROWS)
        return qv_fail(QV_EINVAL, "GPU: at most %llu rows, got %zu", QV_GPU_MAX_ROWS, n);
    if ((rc = flat_alloc(dim, metric, o, out)) != QV_OK) return rc;
    (*out)->host = x;
    (*out)->n = n;
    /* Page-lock the borrowed rows once: every search copies all of them, and from
     * pageable memory the driver stages each copy through a bounce buffer with the host
     * thread waiting. Where locking fails (limits on locked memory, a range already
     * registered) the copies stay pageable: slower, same results. */
    if (n) {
        qv_gpu_ctx *c = NULL;
        if (qv_gpu__lock(&c) == QV_OK) {
            if (cudaHostRegister((void *)x, n * dim * sizeof(float), cudaHostRegisterDefault) ==
                cudaSuccess)
                (*out)->pinned = 1;
            else
                (void)cudaGetLastError();            /* not sticky: clear it for later checks */
            qv_gpu__unlock();
        }
    }
    return QV_OK;
}

extern "C" void qv_gpu_flat_free(qv_gpu_flat *g)
{
    if (!g) return;
    if (g->pinned) {
        qv_gpu_ctx *c = NULL;
        if (qv_gpu__lock(&c) == QV_OK) {
            (void)cudaHostUnregister((void *)g->host);
            qv_gpu__unlock();
        }
    }
    qv_dfree(&g->x);
    qv_dfree(&g->xn);
    qv_dfree(&g->xh);
    qv_free(g);
}

/* Upload rows [row0, row0+n) from host x into the device arrays (capacity is there). */
static int upload_rows(qv_gpu_ctx *c, qv_gpu_flat *g, size_t row0, size_t n, const float *x)
{
    int rc = QV_OK;
    const size_t dim = g->dim;
    QV_CU(cudaMemcpyAsync(g->x + row0 * dim, x, n * dim * sizeof(float), cudaMemcpyHostToDevice,
                          c->stream));
    if (g->xn && (rc = qv_gpu__norms(c, g->x + row0 * dim, n, dim, g->xn + row0)) != QV_OK)
        goto cleanup;
    if (g->xh && (rc = qv_gpu__to_half(c, g->x + row0 * dim, n * dim, g->xh + row0 * dim)) != QV_OK)
        goto cleanup;
    QV_CU(cudaStreamSynchronize(c->stream));
cleanup:
    return rc;
}

extern "C" int qv_gpu_flat_add(qv_gpu_flat *g, size_t n, const float *x)
{
    int rc;
    qv_gpu_ctx *c = NULL;
    float *nx = NULL, *nxn = NULL;
    __half *nxh = NULL;
    if (!g) return qv_fail(QV_EINVAL, "qv_gpu_flat_add: NULL database");
    if (g->host) return qv_fail(QV_EINVAL, "qv_gpu_flat_add: a host-mode database is read-only");
    if (n == 0) return QV_OK;
    if (!x) return qv_fail(QV_EINVAL, "qv_gpu_flat_add: x is NULL");
    if (n > QV_GPU_MAX_ROWS - g->n)
        return qv_fail(QV_EINVAL, "GPU: at most %llu rows, got %zu + %zu", QV_GPU_MAX_ROWS, g->n, n);
    if ((rc = qv_gpu__lock(&c)) != QV_OK) return rc;
    if (g->n + n > g->cap) {
        size_t cap = g->cap * 2 > g->n + n ? g->cap * 2 : g->n + n;
        if (cap > QV_GPU_MAX_ROWS) cap = QV_GPU_MAX_ROWS;
        QV_CU(qv_dalloc(&nx, cap * g->dim));
        if (g->metric == QV_METRIC_L2) QV_CU(qv_dalloc(&nxn, cap));
        if (g->opt.math == QV_GPU_MATH_FP16) QV_CU(qv_dalloc(&nxh, cap * g->dim));
        if (g->n) {
            QV_CU(cudaMemcpyAsync(nx, g->x, g->n * g->dim * sizeof(float),
                                  cudaMemcpyDeviceToDevice, c->stream));
            if (nxn) QV_CU(cudaMemcpyAsync(nxn, g->xn, g->n * sizeof(float),
                                           cudaMemcpyDeviceToDevice, c->stream));
            if (nxh) QV_CU(cudaMemcpyAsync(nxh, g->xh, g->n * g->dim * sizeof(__half),
                                           cudaMemcpyDeviceToDevice, c->stream));
            QV_CU(cudaStreamSynchronize(c->stream));
        }
        qv_dfree(&g->x);
        qv_dfree(&g->xn);
        qv_dfree(&g->xh);
        g->x = nx; g->xn = nxn; g->xh = nxh;
        nx = NULL; nxn = NULL; nxh = NULL;
        g->cap = cap;
    }
    if ((rc = upload_rows(c, g, g->n, n, x)) != QV_OK) goto cleanup;
    g->n += n;
cleanup:
    qv_dfree(&nx);
    qv_dfree(&nxn);
    qv_dfree(&nxh);
    qv_gpu__unlock();
    return rc;
}

extern "C" int qv_gpu_flat_set(qv_gpu_flat *g, size_t row0, size_t n, const float *x)
{
    int rc;
    qv_gpu_ctx *c = NULL;
    if (!g) return qv_fail(QV_EINVAL, "qv_gpu_flat_set: NULL database");
    if (g->host) return qv_fail(QV_EINVAL, "qv_gpu_flat_set: a host-mode database is read-only");
    if (row0 > g->n || n > g->n - row0)
        return qv_fail(QV_EINVAL, "qv_gpu_flat_set: rows %zu..%zu out of range (size %zu)", row0,
                       row0 + n, g->n);
    if (n == 0) return QV_OK;
    if (!x) return qv_fail(QV_EINVAL, "qv_gpu_flat_set: x is NULL");
    if ((rc = qv_gpu__lock(&c)) != QV_OK) return rc;
    rc = upload_rows(c, g, row0, n, x);
    qv_gpu__unlock();
    return rc;
}

extern "C" int qv_gpu_flat_truncate(qv_gpu_flat *g, size_t n)
{
    if (!g) return qv_fail(QV_EINVAL, "qv_gpu_flat_truncate: NULL database");
    if (g->host) return qv_fail(QV_EINVAL, "qv_gpu_flat_truncate: a host-mode database is read-only");
    if (n > g->n) return qv_fail(QV_EINVAL, "qv_gpu_flat_truncate: %zu > size %zu", n, g->n);
    g->n = n;
    return QV_OK;
}

extern "C" size_t qv_gpu_flat_size(const qv_gpu_flat *g) { return g ? g->n : 0; }

extern "C" void qv_gpu__flat_set_tiling(qv_gpu_flat *g, size_t tile_rows, size_t query_batch)
{
    g->opt.tile_rows = tile_rows;
    g->opt.query_batch = query_batch;
}

extern "C" size_t qv_gpu_flat_memory(const qv_gpu_flat *g)
{
    if (!g) return 0;
    size_t per = g->dim * sizeof(float) + (g->xn ? sizeof(float) : 0) +
                 (g->xh ? g->dim * sizeof(__half) : 0);
    return g->cap * per;
}

int qv_gpu__knn_db(qv_gpu_ctx *c, const qv_gpu_db *db, qv_metric metric, const qv_gpu_options *o,
                   size_t nq, const float *q, size_t k, float *dist, int64_t *rows,
                   unsigned flags, qv_gpu_plan *plan)
{
    int rc = QV_OK;
    qv_gpu_ws ws;
    float *od = NULL;
    int64_t *orow = NULL;
    qv_gpu_tiling t;
    const int l2 = metric == QV_METRIC_L2, fp16 = o->math == QV_GPU_MATH_FP16;
    const int host_mode = db->host != NULL;
    const int gemm_only = (flags & QV_GPU_KNN_GEMM_ONLY) != 0;
    memset(&ws, 0, sizeof ws);
    if (db->n == 0) {
        if (!gemm_only)
            for (size_t i = 0; i < nq * k; i++) { dist[i] = INFINITY; rows[i] = -1; }
        return QV_OK;
    }
    if ((rc = qv_gpu__plan(db->n, db->dim, nq, k, fp16, host_mode,
                           k * (sizeof(float) + sizeof(int64_t)), o, &t)) != QV_OK)
        goto cleanup;
    if ((rc = qv_gpu__ws_alloc(&t, db->dim, k, fp16, l2, host_mode, &ws)) != QV_OK) goto cleanup;
    QV_CU(qv_dalloc(&od, t.nqc * k));
    QV_CU(qv_dalloc(&orow, t.nqc * k));
    if (plan) {
        plan->tile_rows = t.nt;
        plan->query_batch = t.nqb;
        plan->query_chunk = t.nqc;
        plan->tiles = (db->n + t.nt - 1) / t.nt;
        plan->workspace_bytes = t.bytes;
    }
    for (size_t c0 = 0; c0 < nq; c0 += t.nqc) {
        size_t nc = nq - c0 < t.nqc ? nq - c0 : t.nqc;
        if ((rc = qv_gpu__load_queries(c, q + c0 * db->dim, nc, db->dim, fp16, l2, &ws)) != QV_OK)
            goto cleanup;
        rc = qv_gpu__knn_chunk(c, db, metric, o->math, &t, &ws, nc, k, flags,
                               plan ? &plan->gemms : NULL);
        if (rc != QV_OK) goto cleanup;
        if (!gemm_only) {
            if ((rc = qv_gpu__finalize(c, ws.best, nc, k, l2 ? ws.qn : NULL, l2, od, orow)) != QV_OK)
                goto cleanup;
            QV_CU(cudaMemcpyAsync(dist + c0 * k, od, nc * k * sizeof(float), cudaMemcpyDeviceToHost,
                                  c->stream));
            QV_CU(cudaMemcpyAsync(rows + c0 * k, orow, nc * k * sizeof(int64_t),
                                  cudaMemcpyDeviceToHost, c->stream));
        }
        QV_CU(cudaStreamSynchronize(c->stream));
    }
cleanup:
    qv_dfree(&od);
    qv_dfree(&orow);
    qv_gpu__ws_free(&ws);
    return rc;
}

extern "C" int qv_gpu__flat_knn_ex(qv_gpu_flat *g, size_t nq, const float *q, size_t k,
                                   float *dist, int64_t *rows, unsigned flags, qv_gpu_plan *plan)
{
    int rc;
    qv_gpu_ctx *c = NULL;
    qv_gpu_db db;
    if (plan) memset(plan, 0, sizeof *plan);
    if (!g) return qv_fail(QV_EINVAL, "qv_gpu_flat_knn: NULL database");
    if (k < 1 || k > QV_MAX_K) return qv_fail(QV_EINVAL, "GPU: k must be 1..%u, got %zu", QV_MAX_K, k);
    if (nq == 0) return QV_OK;
    if (!q || (!(flags & QV_GPU_KNN_GEMM_ONLY) && (!dist || !rows)))
        return qv_fail(QV_EINVAL, "qv_gpu_flat_knn: NULL array");
    if ((rc = qv_gpu__lock(&c)) != QV_OK) return rc;
    db.n = g->n;
    db.dim = g->dim;
    db.x = g->x;
    db.xh = g->xh;
    db.xn = g->xn;
    db.host = g->host;
    rc = qv_gpu__knn_db(c, &db, g->metric, &g->opt, nq, q, k, dist, rows, flags, plan);
    qv_gpu__unlock();
    return rc;
}

extern "C" int qv_gpu_flat_knn(qv_gpu_flat *g, size_t nq, const float *q, size_t k, float *dist,
                               int64_t *rows)
{
    return qv_gpu__flat_knn_ex(g, nq, q, k, dist, rows, 0, NULL);
}
