/*
 * gpu/gpu_kmeans.cu -- Lloyd's k-means on the device (the IVF trainer's GPU path).
 *
 * Each iteration: (1) assignment = the k = 1 search of every point against the centroids
 * (GEMM tiles + the argmin path of the selection kernel in gpu_knn.cu; ties go to the
 * smaller centroid); (2) counts per cluster, prefix offsets on the host (k values), the
 * points scattered into per-cluster member lists; (3) one block per cluster sums its
 * members. The sums are integers in fixed point (value * 2^s, s chosen from the largest
 * |x| and n so that no sum can overflow 2^62), so they do not depend on the order in
 * which the members were scattered by atomics: a run gives the same centroids every
 * time. The mean is taken in double. ip/cosine (spherical k-means) normalizes the
 * centroids after each update.
 *
 * Empty clusters: the points with the largest distance to their centroid (ties to the
 * smaller index) become the new centroids of the empty clusters, on the host, only when
 * some cluster is empty. All points stay resident on the device for the whole run; when
 * they do not fit the call answers QV_ENOMEM (use a smaller training sample).
 */
#include "gpu/gpu_engine.h"

#include <algorithm>
#include <math.h>
#include <string.h>

#define KM_THREADS 256

static __device__ __forceinline__ float km_key2f(unsigned k)
{
    unsigned u = (k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k;
    return __uint_as_float(u);
}

static __global__ void absmax_kernel(const float *x, size_t count, unsigned *out)
{
    unsigned m = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        unsigned u = __float_as_uint(fabsf(x[i]));  /* non-negative floats order as ints */
        if (u > m) m = u;
    }
    if (m) atomicMax(out, m);
}

/* assign[i] = centroid of point i; dist[i] = its distance (l2: squared, clamped at 0;
 * ip: 1 - dot, not clamped: with ip the points are not unit length and dot may exceed 1). */
static __global__ void decode_kernel(const qv_u64 *best, size_t n, const float *xn, int l2,
                                     unsigned *assign, float *dist)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    qv_u64 e = best[i];
    assign[i] = (unsigned)(e & 0xFFFFFFFFull);
    float v = km_key2f((unsigned)(e >> 32)) + (l2 ? xn[i] : 1.0f);
    dist[i] = l2 && v < 0.0f ? 0.0f : v;
}

static __global__ void count_kernel(const unsigned *assign, size_t n, unsigned *cnt)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) atomicAdd(&cnt[assign[i]], 1u);
}

static __global__ void scatter_kernel(const unsigned *assign, size_t n, const unsigned *off,
                                      unsigned *fill, unsigned *members)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned c = assign[i];
    unsigned p = atomicAdd(&fill[c], 1u);
    members[off[c] + p] = (unsigned)i;
}

/* One block per cluster: fixed-point sums of its members, then the mean. */
static __global__ void centroid_kernel(const float *x, size_t dim, const unsigned *off,
                                       const unsigned *members, double scale, float *cent)
{
    const size_t c = blockIdx.x;
    const unsigned b = off[c], e = off[c + 1];
    if (b == e) return;                              /* empty: repaired on the host */
    const double inv = 1.0 / (scale * (double)(e - b));
    for (size_t j = threadIdx.x; j < dim; j += blockDim.x) {
        long long s = 0;
        for (unsigned m = b; m < e; m++)
            s += __double2ll_rn((double)x[(size_t)members[m] * dim + j] * scale);
        cent[c * dim + j] = (float)((double)s * inv);
    }
}

static __global__ void normalize_kernel(float *cent, size_t k, size_t dim)
{
    size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= k) return;
    float *r = cent + c * dim;
    double s = 0.0;
    for (size_t j = 0; j < dim; j++) s += (double)r[j] * r[j];
    if (s > 0.0) {
        float inv = (float)(1.0 / sqrt(s));
        for (size_t j = 0; j < dim; j++) r[j] *= inv;
    }
}

static unsigned km_blocks(size_t n)
{
    size_t b = (n + KM_THREADS - 1) / KM_THREADS;
    return (unsigned)(b ? b : 1);
}

/* Fixed-point scale 2^s with n * max|x| * 2^s < 2^62. */
static double fixed_scale(size_t n, float maxabs)
{
    if (!(maxabs > 0.0f)) return 1.0;
    int en = 0, ex = 0;
    frexp((double)n, &en);                          /* n < 2^en */
    frexp((double)maxabs, &ex);                     /* maxabs < 2^ex */
    return ldexp(1.0, 61 - en - ex);
}

/* Move the farthest points into the empty clusters (host side, deterministic). */
static int repair_empty(qv_gpu_ctx *c, const unsigned *cnt, size_t k, size_t n, size_t dim,
                        const float *x, const float *dist_h, float *cent_d, int spherical,
                        size_t *n_empty)
{
    int rc = QV_OK;
    size_t e = 0;
    unsigned *idx = NULL;
    for (size_t i = 0; i < k; i++) e += cnt[i] == 0;
    *n_empty = e;
    if (e == 0) return QV_OK;
    if (!(idx = (unsigned *)qv_malloc(n * sizeof *idx))) return QV_ENOMEM;
    for (size_t i = 0; i < n; i++) idx[i] = (unsigned)i;
    std::partial_sort(idx, idx + e, idx + n, [dist_h](unsigned a, unsigned b) {
        return dist_h[a] > dist_h[b] || (dist_h[a] == dist_h[b] && a < b);
    });
    for (size_t i = 0, j = 0; i < k; i++) {
        if (cnt[i] != 0) continue;
        QV_CU(cudaMemcpyAsync(cent_d + i * dim, x + (size_t)idx[j] * dim, dim * sizeof(float),
                              cudaMemcpyHostToDevice, c->stream));
        j++;
    }
    if (spherical) {
        QV_LAUNCH(normalize_kernel, km_blocks(k), KM_THREADS, c->stream, cent_d, k, dim);
        QV_CU_LAUNCHED(normalize_kernel);
    }
    QV_CU(cudaStreamSynchronize(c->stream));
cleanup:
    qv_free(idx);
    return rc;
}

extern "C" int qv_gpu_kmeans(const qv_gpu_kmeans_params *p, size_t n, size_t dim, const float *x,
                             size_t k, float *centroids, double *objective)
{
    int rc;
    qv_gpu_ctx *c = NULL;
    qv_gpu_ws ws;
    qv_gpu_tiling t;
    qv_gpu_db db;
    float *cd = NULL, *cn = NULL, *dist = NULL, *dist_h = NULL;
    __half *ch = NULL;
    unsigned *assign = NULL, *cnt = NULL, *fill = NULL, *off = NULL, *members = NULL;
    unsigned *maxbits = NULL, *cnt_h = NULL, *off_h = NULL;
    memset(&ws, 0, sizeof ws);
    if (objective) *objective = NAN;
    if (!p || !x || !centroids) return qv_fail(QV_EINVAL, "qv_gpu_kmeans: NULL argument");
    if (dim < 1 || dim > QV_MAX_DIM)
        return qv_fail(QV_EINVAL, "GPU k-means: dim must be 1..%u, got %zu", QV_MAX_DIM, dim);
    if (k < 1 || k > n)
        return qv_fail(QV_EINVAL, "GPU k-means: k must be 1..n (%zu), got %zu", n, k);
    if (n > QV_GPU_MAX_ROWS)
        return qv_fail(QV_EINVAL, "GPU k-means: at most %llu points, got %zu", QV_GPU_MAX_ROWS, n);
    if (p->metric != QV_METRIC_L2 && p->metric != QV_METRIC_IP && p->metric != QV_METRIC_COSINE)
        return qv_fail(QV_EINVAL, "GPU k-means: unknown metric %d", (int)p->metric);
    const int l2 = p->metric == QV_METRIC_L2, fp16 = p->opt.math == QV_GPU_MATH_FP16;
    const uint32_t iters = p->iters ? p->iters : 20;
    const size_t extra = sizeof(unsigned) * 3 + sizeof(float);  /* assign, members, dist */
    if ((rc = qv_gpu__lock(&c)) != QV_OK) return rc;
    if ((rc = qv_gpu__plan(k, dim, n, 1, fp16, 0, extra, &p->opt, &t)) != QV_OK) goto cleanup;
    if (t.nqc < n) {
        rc = qv_fail(QV_ENOMEM, "GPU k-means: %zu points of dimension %zu do not fit on the "
                     "device at once (room for %zu); train on a smaller sample", n, dim, t.nqc);
        goto cleanup;
    }
    if ((rc = qv_gpu__ws_alloc(&t, dim, 1, fp16, l2, 0, &ws)) != QV_OK) goto cleanup;
    QV_CU(qv_dalloc(&cd, k * dim));
    if (l2) QV_CU(qv_dalloc(&cn, k));
    if (fp16) QV_CU(qv_dalloc(&ch, k * dim));
    QV_CU(qv_dalloc(&dist, n));
    QV_CU(qv_dalloc(&assign, n));
    QV_CU(qv_dalloc(&members, n));
    QV_CU(qv_dalloc(&cnt, k));
    QV_CU(qv_dalloc(&fill, k));
    QV_CU(qv_dalloc(&off, k + 1));
    QV_CU(qv_dalloc(&maxbits, 1));
    if (!(cnt_h = (unsigned *)qv_malloc(k * sizeof *cnt_h)) ||
        !(off_h = (unsigned *)qv_malloc((k + 1) * sizeof *off_h)) ||
        !(dist_h = (float *)qv_malloc(n * sizeof *dist_h))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    /* Points resident once (as the "queries" of the assignment), centroids uploaded. */
    if ((rc = qv_gpu__load_queries(c, x, n, dim, fp16, l2, &ws)) != QV_OK) goto cleanup;
    QV_CU(cudaMemcpyAsync(cd, centroids, k * dim * sizeof(float), cudaMemcpyHostToDevice, c->stream));
    QV_CU(cudaMemsetAsync(maxbits, 0, sizeof(unsigned), c->stream));
    {
        size_t b = km_blocks(n * dim);
        QV_LAUNCH(absmax_kernel, (unsigned)(b > 4096 ? 4096 : b), KM_THREADS, c->stream, ws.q,
                  n * dim, maxbits);
        QV_CU_LAUNCHED(absmax_kernel);
    }
    {
        unsigned mb = 0;
        float maxabs;
        double scale;
        QV_CU(cudaMemcpyAsync(&mb, maxbits, sizeof mb, cudaMemcpyDeviceToHost, c->stream));
        QV_CU(cudaStreamSynchronize(c->stream));
        memcpy(&maxabs, &mb, sizeof maxabs);
        scale = fixed_scale(n, maxabs);
        db.n = k;
        db.dim = dim;
        db.x = cd;
        db.xh = ch;
        db.xn = cn;
        db.host = NULL;
        for (uint32_t it = 0; it < iters; it++) {
            size_t n_empty = 0;
            if (l2 && (rc = qv_gpu__norms(c, cd, k, dim, cn)) != QV_OK) goto cleanup;
            if (fp16 && (rc = qv_gpu__to_half(c, cd, k * dim, ch)) != QV_OK) goto cleanup;
            if ((rc = qv_gpu__knn_chunk(c, &db, p->metric, p->opt.math, &t, &ws, n, 1, 0, NULL)) != QV_OK)
                goto cleanup;
            QV_LAUNCH(decode_kernel, km_blocks(n), KM_THREADS, c->stream, ws.best, n, ws.qn, l2,
                      assign, dist);
            QV_CU_LAUNCHED(decode_kernel);
            QV_CU(cudaMemsetAsync(cnt, 0, k * sizeof(unsigned), c->stream));
            QV_CU(cudaMemsetAsync(fill, 0, k * sizeof(unsigned), c->stream));
            QV_LAUNCH(count_kernel, km_blocks(n), KM_THREADS, c->stream, assign, n, cnt);
            QV_CU_LAUNCHED(count_kernel);
            QV_CU(cudaMemcpyAsync(cnt_h, cnt, k * sizeof(unsigned), cudaMemcpyDeviceToHost, c->stream));
            QV_CU(cudaStreamSynchronize(c->stream));
            off_h[0] = 0;
            for (size_t i = 0; i < k; i++) off_h[i + 1] = off_h[i] + cnt_h[i];
            QV_CU(cudaMemcpyAsync(off, off_h, (k + 1) * sizeof(unsigned), cudaMemcpyHostToDevice,
                                  c->stream));
            QV_LAUNCH(scatter_kernel, km_blocks(n), KM_THREADS, c->stream, assign, n, off, fill, members);
            QV_CU_LAUNCHED(scatter_kernel);
            QV_LAUNCH(centroid_kernel, (unsigned)k, dim < KM_THREADS ? ((unsigned)dim + 31) / 32 * 32 : KM_THREADS,
                      c->stream, ws.q, dim, off, members, scale, cd);
            QV_CU_LAUNCHED(centroid_kernel);
            if (!l2) {
                QV_LAUNCH(normalize_kernel, km_blocks(k), KM_THREADS, c->stream, cd, k, dim);
                QV_CU_LAUNCHED(normalize_kernel);
            }
            const int want_obj = (it + 1 == iters && objective) || p->on_iteration;
            int want_dist = want_obj;
            for (size_t i = 0; i < k && !want_dist; i++) want_dist = cnt_h[i] == 0;
            if (want_dist) {
                QV_CU(cudaMemcpyAsync(dist_h, dist, n * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
            }
            QV_CU(cudaStreamSynchronize(c->stream));
            if ((rc = repair_empty(c, cnt_h, k, n, dim, x, dist_h, cd, !l2, &n_empty)) != QV_OK)
                goto cleanup;
            if (want_obj) {
                double s = 0.0;
                for (size_t i = 0; i < n; i++) s += dist_h[i];
                if (it + 1 == iters && objective) *objective = s;
                if (p->on_iteration) p->on_iteration(it + 1, s, p->on_iteration_arg);
            }
            if (p->progress) p->progress("kmeans", it + 1, iters, p->progress_arg);
        }
    }
    QV_CU(cudaMemcpyAsync(centroids, cd, k * dim * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
    QV_CU(cudaStreamSynchronize(c->stream));
    rc = QV_OK;
cleanup:
    qv_gpu__ws_free(&ws);
    qv_dfree(&cd);
    qv_dfree(&cn);
    qv_dfree(&ch);
    qv_dfree(&dist);
    qv_dfree(&assign);
    qv_dfree(&members);
    qv_dfree(&cnt);
    qv_dfree(&fill);
    qv_dfree(&off);
    qv_dfree(&maxbits);
    qv_free(cnt_h);
    qv_free(off_h);
    qv_free(dist_h);
    qv_gpu__unlock();
    return rc;
}
