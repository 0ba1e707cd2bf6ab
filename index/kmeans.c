/*
 * index/kmeans.c -- k-means (Lloyd) for the IVF coarse quantizer, also public as qv_kmeans.
 * A pure algorithm: floats in, centroids out (no storage, no index state).
 *
 *  1. Sample: when n > max_points (default 256*k, as Faiss does), a uniform sample without
 *     replacement (partial Fisher-Yates from the seeded qv_rng), rows kept in input order.
 *     For cosine the sampled rows are normalized (clustering directions); for ip they are
 *     used as given.
 *  2. Seeding: k-means++ (Arthur & Vassilvitskii, SODA 2007) when its cost is small
 *     (n*k*dim <= 2^30), otherwise k distinct sample rows drawn at random. k-means++ needs
 *     k sequential passes over the data that cannot go through GEMM: on 100k x 1265 x 128
 *     that is 1265 passes over 51 MB, about as long as the whole Lloyd phase, and with that many
 *     clusters random seeding followed by Lloyd reaches the same objective (this is also
 *     what Faiss does). Small problems (and the separated-cluster tests) get the better
 *     seeding.
 *  3. Lloyd iterations: assignment through GEMM (qv_ivf_assign: SGEMM tiles + argmin),
 *     then the update: members are bucketed per cluster with a stable counting sort, and
 *     each cluster's mean is summed in double by one pool task, so the result does not
 *     depend on the number of threads. ip/cosine run spherical k-means: centroids are
 *     normalized after every update. Iterations stop early once an assignment repeats the
 *     previous one without repairs (a fixed point: more iterations would change nothing).
 *  4. Empty clusters: each empty cluster takes half of the currently largest one (a
 *     max-heap by size, ties to the lower index): the big centroid is copied and the two
 *     copies are pushed apart by +-1/1024 of the magnitude (signs alternating by
 *     dimension) so that the next assignment divides its points between them. Duplicate
 *     points and k close to n are what produce empty clusters.
 * The objective reported is that of the last assignment: the sum over sampled points of
 * the squared L2 distance to their centroid (for l2 the quantity Faiss reports per
 * iteration; the returned centroids, one update later, are at least as good).
 * progress("kmeans", iter, iters) is called after each iteration, and on_iteration(iter,
 * objective) with the objective of that iteration's assignment: for l2 the sum of squared
 * distances (never increases from one iteration to the next, except after an empty-cluster
 * repair), for ip/cosine the sum of the similarities dot(x, centroid) (never decreases).
 * It is called iters times, or fewer when a fixed point ends the run early.
 *
 * GPU (p->gpu = QV_GPU_AUTO / QV_GPU_REQUIRE): steps 1 and 2 stay on the CPU (so both paths
 * start from the same centroids); the Lloyd iterations run as qv_gpu_kmeans (gpu/gpu.h) on
 * a copy of the seeds when qv_gpu_probe() answers 1 (REQUIRE: always tried). The device
 * runs all iters (no fixed-point test) and repairs empty clusters its own way (the farthest
 * points become the new centroids), so its centroids are close to, not equal to, the CPU
 * ones. Its per-iteration objective (l2: squared distances; ip/cosine: sum of 1 - dot) is
 * translated to the convention above. AUTO: any GPU failure (no device, device memory too
 * small for the sample, a CUDA error) is cleared and the CPU iterations run from the same
 * seeds; on_iteration may then have been called for some GPU iterations already, and is
 * called again from iteration 1. REQUIRE: no usable device is QV_ENODEV up front, a GPU
 * failure is returned as is. Without a device AUTO gives exactly the CPU result.
 */
#include "index/ivf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/alloc.h"
#include "core/blas.h"
#include "core/distance.h"
#include "core/error.h"
#include "core/rng.h"
#include "gpu/gpu.h"

#define DEFAULT_ITERS 20u
#define MAX_ITERS 10000u
#define POINTS_PER_CENTROID 256u
#define KMEANSPP_MAX_WORK (1.0 * (1u << 30))
#define SPLIT_EPS (1.0f / 1024.0f)

void qv_kmeans_params_init(qv_kmeans_params *p, uint32_t k)
{
    memset(p, 0, sizeof *p);
    p->k = k;
    p->metric = QV_METRIC_L2;
    p->seed = 42;
}

/* ---- assignment ---------------------------------------------------------------------- */

/* Row tiles of ASSIGN_ROWS points go to pool tasks; each runs single-threaded SGEMMs
 * against ASSIGN_COLS centroids at a time and keeps a running argmin per row. This is
 * qv_blas_knn specialised to k = 1: the argmin is two vectorisable passes over a row
 * (min value, then its first index) instead of heap pushes, which took a fifth of the
 * k-means time through qv_blas_knn (perf, sift 100k x 1265 centroids). */
#define ASSIGN_ROWS 256u
#define ASSIGN_COLS 1024u

typedef struct {
    const float *cent, *cnorms, *x;
    size_t k, dim, n;
    int l2;
    float *scratch;                /* per worker ASSIGN_ROWS*ASSIGN_COLS */
    uint32_t *assign;
    float *dist;
} assign_job;

/* Index of the smallest of row[j] + add[j] (add NULL: row[j]) over [0, nn), the first
 * one on ties; its value in *lo.
 * With SSE2 (every x86-64): four vectors of running (min, index) lanes updated by
 * compare-and-blend; the compilers leave the plain loop scalar (a running minimum is a
 * reduction they may not reorder), and it then cost as much as a fifth of k-means. */
static size_t row_argmin(const float *row, const float *add, size_t nn, float *lo)
{
    size_t j = 0, best = 0;
    float m = INFINITY;
#ifdef __SSE2__
    if (nn >= 16) {
        __m128 mv[4];
        __m128i mi[4], idx[4];
        const __m128i step = _mm_set1_epi32(16);
        for (int l = 0; l < 4; l++) {
            mv[l] = _mm_set1_ps(INFINITY);
            mi[l] = _mm_setzero_si128();
            idx[l] = _mm_setr_epi32(4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3);
        }
        for (; j + 16 <= nn; j += 16)
            for (int l = 0; l < 4; l++) {
                __m128 v = _mm_loadu_ps(row + j + 4 * l);
                if (add) v = _mm_add_ps(v, _mm_loadu_ps(add + j + 4 * l));
                __m128i lt = _mm_castps_si128(_mm_cmplt_ps(v, mv[l]));
                mv[l] = _mm_min_ps(v, mv[l]);
                mi[l] = _mm_or_si128(_mm_and_si128(lt, idx[l]), _mm_andnot_si128(lt, mi[l]));
                idx[l] = _mm_add_epi32(idx[l], step);
            }
        float fv[16];
        int32_t iv[16];
        for (int l = 0; l < 4; l++) {
            _mm_storeu_ps(fv + 4 * l, mv[l]);
            _mm_storeu_si128((__m128i *)(void *)(iv + 4 * l), mi[l]);
        }
        for (int l = 0; l < 16; l++)
            if (fv[l] < m || (fv[l] == m && (size_t)iv[l] < best)) {
                m = fv[l];
                best = (size_t)iv[l];
            }
    }
#endif
    for (; j < nn; j++) {
        float v = add ? row[j] + add[j] : row[j];
        if (v < m) {
            m = v;
            best = j;
        }
    }
    *lo = m;
    return best;
}

static void assign_tile(void *arg, size_t t, unsigned worker)
{
    assign_job *job = arg;
    size_t dim = job->dim, r0 = t * ASSIGN_ROWS, m = job->n - r0 < ASSIGN_ROWS ? job->n - r0 : ASSIGN_ROWS;
    const float *xt = job->x + r0 * dim;
    float *c = job->scratch + (size_t)worker * ASSIGN_ROWS * ASSIGN_COLS;
    float best[ASSIGN_ROWS];
    uint32_t arg_best[ASSIGN_ROWS];
    const qv_kernels *kern = qv_kernels_get();

    for (size_t r = 0; r < m; r++) {
        best[r] = INFINITY;
        arg_best[r] = 0;
    }
    for (size_t c0 = 0; c0 < job->k; c0 += ASSIGN_COLS) {
        size_t nn = job->k - c0 < ASSIGN_COLS ? job->k - c0 : ASSIGN_COLS;
        qv_sgemm_nt(m, nn, dim, job->l2 ? -2.0f : -1.0f, xt, job->cent + c0 * dim, 0.0f, c);
        for (size_t r = 0; r < m; r++) {
            float lo;
            size_t j = row_argmin(c + r * nn, job->l2 ? job->cnorms + c0 : NULL, nn, &lo);
            if (!(lo < best[r])) continue;             /* ties keep the lower index */
            best[r] = lo;
            arg_best[r] = (uint32_t)(c0 + j);
        }
    }
    for (size_t r = 0; r < m; r++) {
        job->assign[r0 + r] = arg_best[r];
        if (job->dist) {                                /* exact, not the GEMM expansion */
            const float *cr = job->cent + (size_t)arg_best[r] * dim;
            job->dist[r0 + r] = job->l2 ? kern->l2sq(xt + r * dim, cr, dim) : kern->neg_dot(xt + r * dim, cr, dim);
        }
    }
}

int qv_ivf_assign(const float *centroids, const float *cnorms, size_t k, size_t dim,
                  qv_metric metric, const float *x, size_t n, qv_pool *pool, uint32_t *assign,
                  float *dist)
{
    float *own_norms = NULL;
    assign_job job;
    unsigned workers = pool ? qv_pool_threads(pool) : 1;
    size_t tiles = (n + ASSIGN_ROWS - 1) / ASSIGN_ROWS;

    if (n == 0) return QV_OK;
    if (k == 0 || k > UINT32_MAX) return qv_fail(QV_EINTERNAL, "assignment to %zu centroids", k);
    memset(&job, 0, sizeof job);
    job.l2 = metric == QV_METRIC_L2;
    if (job.l2 && !cnorms) {
        if (!(own_norms = qv_reallocarray(NULL, k, sizeof *own_norms))) return QV_ENOMEM;
        for (size_t c = 0; c < k; c++) own_norms[c] = qv_norm_sq(centroids + c * dim, dim);
        cnorms = own_norms;
    }
    if (workers > tiles) workers = (unsigned)tiles;
    if (!(job.scratch = qv_aligned_calloc((size_t)(pool ? qv_pool_threads(pool) : 1) * ASSIGN_ROWS,
                                          ASSIGN_COLS * sizeof(float)))) {
        qv_free(own_norms);
        return QV_ENOMEM;
    }
    job.cent = centroids;
    job.cnorms = cnorms;
    job.x = x;
    job.k = k;
    job.dim = dim;
    job.n = n;
    job.assign = assign;
    job.dist = dist;
    /* Parallelism comes from the pool, one single-threaded SGEMM per worker (as in
     * core/blas.c), so that threads = 1 really means one thread. */
    qv_blas_set_threads(1);
    if (pool && workers > 1) {
        qv_pool_run(pool, tiles, 1, assign_tile, &job);
    } else {
        for (size_t t = 0; t < tiles; t++) assign_tile(&job, t, 0);
    }
    qv_free(job.scratch);
    qv_free(own_norms);
    return QV_OK;
}

/* ---- sampling and seeding -------------------------------------------------------------- */

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* m distinct indices of [0, n) drawn uniformly, returned ascending in *out (n entries
 * allocated; the first m are the sample). */
static int sample_indices(qv_rng *rng, size_t n, size_t m, size_t **out)
{
    size_t *perm = qv_reallocarray(NULL, n, sizeof *perm);
    *out = NULL;
    if (!perm) return QV_ENOMEM;
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = 0; i < m; i++) {
        size_t j = i + (size_t)qv_rng_below(rng, n - i);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    qsort(perm, m, sizeof *perm, cmp_size);
    *out = perm;
    return QV_OK;
}

/* k-means++ seeding: each next centroid is a row drawn with probability proportional to
 * its squared distance to the nearest centroid chosen so far. Spherical (xnorms given):
 * the distance is between directions, 2 - 2 cos, since only directions are clustered. */
static double seed_dist(const qv_kernels *kern, const float *a, const float *b, size_t dim, const float *xnorms,
                        size_t ia, size_t ib)
{
    if (!xnorms) return kern->l2sq(a, b, dim);
    double na = xnorms[ia], nb = xnorms[ib];
    if (na <= 0 || nb <= 0) return 0;
    double d = 2.0 - 2.0 * (double)kern->dot(a, b, dim) / sqrt(na * nb);
    return d > 0 ? d : 0;
}

static int seed_kmeanspp(qv_rng *rng, const float *x, size_t n, size_t dim, size_t k, const float *xnorms,
                         float *cent)
{
    const qv_kernels *kern = qv_kernels_get();
    double *d2 = qv_reallocarray(NULL, n, sizeof *d2);
    if (!d2) return QV_ENOMEM;
    size_t pick = (size_t)qv_rng_below(rng, n);
    for (size_t c = 0; c < k; c++) {
        double total = 0;
        if (c > 0) {
            for (size_t i = 0; i < n; i++) total += d2[i];
            if (total > 0) {
                double r = qv_rng_uniform(rng) * total, acc = 0;
                pick = n - 1;
                for (size_t i = 0; i < n; i++) {
                    acc += d2[i];
                    if (acc > r && d2[i] > 0) { pick = i; break; }
                }
            } else {
                pick = (size_t)qv_rng_below(rng, n);   /* every row is a centroid already */
            }
        }
        const float *row = x + pick * dim;
        memcpy(cent + c * dim, row, dim * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            double d = seed_dist(kern, x + i * dim, row, dim, xnorms, i, pick);
            if (c == 0 || d < d2[i]) d2[i] = d;
        }
    }
    qv_free(d2);
    return QV_OK;
}

/* ---- update ------------------------------------------------------------------------- */

typedef struct {
    const float *x;
    size_t dim;
    const size_t *start;           /* k+1 offsets into members */
    const uint32_t *members;       /* rows bucketed by cluster, ascending inside a bucket */
    float *cent;
    double *acc;                   /* dim doubles per worker */
    int spherical;
} update_job;

static void update_one(void *arg, size_t c, unsigned worker)
{
    update_job *job = arg;
    size_t dim = job->dim, a = job->start[c], b = job->start[c + 1];
    double *acc = job->acc + (size_t)worker * dim;
    float *dst = job->cent + c * dim;
    if (a == b) return;                                 /* empty: repaired afterwards */
    memset(acc, 0, dim * sizeof *acc);
    for (size_t i = a; i < b; i++) {
        const float *row = job->x + (size_t)job->members[i] * dim;
        for (size_t d = 0; d < dim; d++) acc[d] += row[d];
    }
    double inv = 1.0 / (double)(b - a);
    for (size_t d = 0; d < dim; d++) dst[d] = (float)(acc[d] * inv);
    if (job->spherical) qv_normalize(dst, dim);
}

/* ---- empty-cluster repair ----------------------------------------------------------- */

/* Max-heap of cluster indices ordered by (count desc, index asc). */
static int heap_before(const size_t *count, uint32_t a, uint32_t b)
{
    return count[a] > count[b] || (count[a] == count[b] && a < b);
}

static void heap_down(uint32_t *h, size_t len, size_t i, const size_t *count)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < len && heap_before(count, h[l], h[best])) best = l;
        if (r < len && heap_before(count, h[r], h[best])) best = r;
        if (best == i) return;
        uint32_t t = h[i];
        h[i] = h[best];
        h[best] = t;
        i = best;
    }
}

static void heap_up(uint32_t *h, size_t i, const size_t *count)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_before(count, h[i], h[parent])) return;
        uint32_t t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

/* Give every empty cluster half of the largest one; returns the number repaired. */
static uint32_t repair_empty(float *cent, size_t k, size_t dim, size_t *count, int spherical,
                             uint32_t *heap)
{
    size_t len = 0, n_empty = 0;
    uint32_t repaired = 0;
    for (size_t c = 0; c < k; c++) {
        if (count[c]) heap[len++] = (uint32_t)c;
        else n_empty++;
    }
    if (n_empty == 0) return 0;
    for (size_t i = len / 2; i-- > 0;) heap_down(heap, len, i, count);
    for (size_t c = 0; c < k; c++) {
        if (count[c] || len == 0) continue;
        uint32_t big = heap[0];
        size_t s = count[big];
        if (s < 2) break;                               /* impossible while k <= n */
        float *src = cent + (size_t)big * dim, *dst = cent + c * dim;
        double mean_abs = 0;
        for (size_t d = 0; d < dim; d++) mean_abs += fabsf(src[d]);
        mean_abs /= (double)dim;
        float base = mean_abs > 0 ? (float)mean_abs : 1.0f;
        for (size_t d = 0; d < dim; d++) {
            float delta = SPLIT_EPS * (fabsf(src[d]) + base);
            if (d & 1) delta = -delta;
            dst[d] = src[d] + delta;
            src[d] -= delta;
        }
        if (spherical) {
            qv_normalize(src, dim);
            qv_normalize(dst, dim);
        }
        count[c] = s / 2;
        count[big] = s - s / 2;
        heap_down(heap, len, 0, count);
        heap[len] = (uint32_t)c;
        heap_up(heap, len, count);
        len++;
        repaired++;
    }
    return repaired;
}

/* ---- driver ------------------------------------------------------------------------- */

static int check_params(const qv_kmeans_params *p, size_t n, size_t dim, const float *x,
                        const float *centroids)
{
    if (!p || !centroids || (n && !x)) return qv_fail(QV_EINVAL, "k-means parameters, input or centroids are NULL");
    if (dim < 1 || dim > QV_MAX_DIM) return qv_fail(QV_EINVAL, "dim must be 1..%u, got %zu", QV_MAX_DIM, dim);
    if (p->k < 1 || p->k > n) return qv_fail(QV_EINVAL, "k must be 1..n (n = %zu), got %u", n, p->k);
    if (p->iters > MAX_ITERS) return qv_fail(QV_EINVAL, "iters must be 0..%u, got %u", MAX_ITERS, p->iters);
    if (p->threads > 1024) return qv_fail(QV_EINVAL, "threads must be 0..1024, got %u", p->threads);
    if (!qv_metric_name(p->metric)) return qv_fail(QV_EINVAL, "unknown metric %d", (int)p->metric);
    if ((unsigned)p->gpu > QV_GPU_REQUIRE) return qv_fail(QV_EINVAL, "unknown gpu mode %d", (int)p->gpu);
    if (p->max_points && p->max_points < p->k)
        return qv_fail(QV_EINVAL, "max_points must be 0 or >= k (%u), got %zu", p->k, p->max_points);
    size_t ns = p->max_points ? p->max_points : (size_t)POINTS_PER_CENTROID * p->k;
    if (ns > n) ns = n;
    if (ns > UINT32_MAX)
        return qv_fail(QV_EINVAL, "k-means samples at most %u points, got max_points %zu", UINT32_MAX, ns);
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++)
            if (!isfinite(x[i * dim + d]))
                return qv_fail(QV_EINVAL, "k-means point %zu: component %zu is not finite", i, d);
    if (p->gpu == QV_GPU_REQUIRE && qv_gpu_require() != QV_OK) {
        char why[384];
        snprintf(why, sizeof why, "%s", qv_last_error());
        return qv_fail(QV_ENODEV, "k-means: gpu = QV_GPU_REQUIRE but no usable GPU: %s", why);
    }
    return QV_OK;
}

/* ---- GPU iterations --------------------------------------------------------------- */

typedef struct {
    const qv_kmeans_params *p;
    double ns;                     /* sample size: similarity sum = ns - sum(1 - dot) */
    int spherical;
} gpu_iter_arg;

static void gpu_on_iteration(uint32_t iter, double obj, void *arg)
{
    const gpu_iter_arg *a = arg;
    a->p->on_iteration(iter, a->spherical ? a->ns - obj : obj, a->p->on_iteration_arg);
}

/* Lloyd iterations on the device, starting from the seeds in centroids. On success
 * centroids hold the result and *stats the objective (sum of squared distances); on
 * failure centroids are unchanged. xnorms: squared norms of the sample (spherical). */
static int run_gpu(const qv_kmeans_params *p, const float *xs, size_t ns, size_t dim, uint32_t iters,
                   const float *xnorms, float *centroids, qv_kmeans_stats *stats)
{
    qv_gpu_kmeans_params gp;
    gpu_iter_arg a = {p, (double)ns, p->metric != QV_METRIC_L2};
    size_t k = p->k;
    double obj = 0;
    float *c = qv_reallocarray(NULL, k, dim * sizeof *c);
    if (!c) return QV_ENOMEM;
    memcpy(c, centroids, k * dim * sizeof *c);
    qv_gpu_kmeans_params_init(&gp, p->metric);
    gp.iters = iters;
    gp.progress = p->progress;
    gp.progress_arg = p->progress_arg;
    if (p->on_iteration) {
        gp.on_iteration = gpu_on_iteration;
        gp.on_iteration_arg = &a;
    }
    int rc = qv_gpu_kmeans(&gp, ns, dim, xs, k, c, &obj);
    if (rc == QV_OK) {
        memcpy(centroids, c, k * dim * sizeof *c);
        if (a.spherical) {
            /* sum ||x - c||^2 = sum ||x||^2 + sum ||c||^2 - 2 sum dot, centroids unit length */
            double xn = 0;
            for (size_t i = 0; i < ns; i++) xn += xnorms[i];
            obj = xn - (double)ns + 2.0 * obj;
            if (obj < 0) obj = 0;
        }
        stats->objective = obj;
        stats->iters_run = iters;
        stats->used_gpu = 1;
    }
    qv_free(c);
    return rc;
}

int qv_kmeans_run(const qv_kmeans_params *p, size_t n, size_t dim, const float *x,
                  float *centroids, qv_kmeans_stats *st)
{
    int rc;
    qv_rng rng;
    qv_pool *pool;
    qv_kmeans_stats stats;
    size_t *idx = NULL, *start = NULL, *count = NULL;
    float *sample = NULL, *dist = NULL, *cnorms = NULL, *xnorms = NULL;
    uint32_t *assign = NULL, *prev = NULL, *members = NULL, *heap = NULL;
    double *acc = NULL;
    const float *xs = x;

    memset(&stats, 0, sizeof stats);
    if ((rc = check_params(p, n, dim, x, centroids)) != QV_OK) return rc;
    size_t k = p->k;
    uint32_t iters = p->iters ? p->iters : DEFAULT_ITERS;
    size_t max_points = p->max_points ? p->max_points : (size_t)POINTS_PER_CENTROID * k;
    int spherical = p->metric != QV_METRIC_L2;
    size_t ns = n > max_points ? max_points : n;

    if (!(pool = qv_pool_shared(p->threads))) return qv_fail(QV_ENOMEM, "k-means: cannot start worker threads");
    qv_rng_seed(&rng, p->seed);

    /* 1. sample (and normalize for cosine) */
    if (ns < n || p->metric == QV_METRIC_COSINE) {
        if (!(sample = qv_reallocarray(NULL, ns, dim * sizeof(float)))) { rc = QV_ENOMEM; goto cleanup; }
        if (ns < n) {
            if ((rc = sample_indices(&rng, n, ns, &idx)) != QV_OK) goto cleanup;
            for (size_t i = 0; i < ns; i++) memcpy(sample + i * dim, x + idx[i] * dim, dim * sizeof(float));
            qv_free(idx);
            idx = NULL;
        } else {
            memcpy(sample, x, ns * dim * sizeof(float));
        }
        if (p->metric == QV_METRIC_COSINE)
            for (size_t i = 0; i < ns; i++) qv_normalize(sample + i * dim, dim);
        xs = sample;
    }

    if (!(dist = qv_reallocarray(NULL, ns, sizeof *dist)) || !(assign = qv_calloc(ns, sizeof *assign)) ||
        !(prev = qv_calloc(ns, sizeof *prev)) || !(members = qv_reallocarray(NULL, ns, sizeof *members)) ||
        !(start = qv_calloc(k + 1, sizeof *start)) || !(count = qv_calloc(k, sizeof *count)) ||
        !(heap = qv_reallocarray(NULL, k, sizeof *heap)) || !(cnorms = qv_reallocarray(NULL, k, sizeof *cnorms)) ||
        !(acc = qv_reallocarray(NULL, qv_pool_threads(pool), dim * sizeof *acc))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    if (spherical) {
        if (!(xnorms = qv_reallocarray(NULL, ns, sizeof *xnorms))) { rc = QV_ENOMEM; goto cleanup; }
        for (size_t i = 0; i < ns; i++) xnorms[i] = qv_norm_sq(xs + i * dim, dim);
    }

    /* 2. seeding */
    if ((double)ns * (double)k * (double)dim <= KMEANSPP_MAX_WORK) {
        stats.used_kmeanspp = 1;
        if ((rc = seed_kmeanspp(&rng, xs, ns, dim, k, xnorms, centroids)) != QV_OK) goto cleanup;
    } else {
        if ((rc = sample_indices(&rng, ns, k, &idx)) != QV_OK) goto cleanup;
        for (size_t c = 0; c < k; c++) memcpy(centroids + c * dim, xs + idx[c] * dim, dim * sizeof(float));
        qv_free(idx);
        idx = NULL;
    }
    if (spherical)
        for (size_t c = 0; c < k; c++) qv_normalize(centroids + c * dim, dim);

    /* 3. Lloyd iterations, on the device when asked and possible */
    if (p->gpu == QV_GPU_REQUIRE || (p->gpu == QV_GPU_AUTO && qv_gpu_probe())) {
        if ((rc = run_gpu(p, xs, ns, dim, iters, xnorms, centroids, &stats)) == QV_OK) goto done;
        if (p->gpu == QV_GPU_REQUIRE) goto cleanup;
        qv_clear_error();                               /* AUTO: the CPU takes over */
    }
    for (uint32_t it = 0; it < iters; it++) {
        for (size_t c = 0; c < k; c++) cnorms[c] = qv_norm_sq(centroids + c * dim, dim);
        if ((rc = qv_ivf_assign(centroids, cnorms, k, dim, p->metric, xs, ns, pool, assign, dist)) != QV_OK)
            goto cleanup;
        double obj = 0, sim = 0;
        for (size_t i = 0; i < ns; i++) {
            double e = spherical ? (double)xnorms[i] + 2.0 * dist[i] + cnorms[assign[i]] : (double)dist[i];
            obj += e > 0 ? e : 0;
            sim -= dist[i];                             /* ip/cosine: dist = -dot */
        }
        stats.objective = obj;
        stats.iters_run = it + 1;
        if (p->on_iteration) p->on_iteration(it + 1, spherical ? sim : obj, p->on_iteration_arg);
        if (it > 0 && memcmp(assign, prev, ns * sizeof *assign) == 0) break;   /* fixed point */

        /* update: stable bucketing by cluster, then one mean per pool task */
        memset(count, 0, k * sizeof *count);
        for (size_t i = 0; i < ns; i++) count[assign[i]]++;
        start[0] = 0;
        for (size_t c = 0; c < k; c++) start[c + 1] = start[c] + count[c];
        /* fill buckets by advancing start[c]; afterwards start[c] is the end of bucket c,
         * so shifting by one restores the offsets */
        for (size_t i = 0; i < ns; i++) members[start[assign[i]]++] = (uint32_t)i;
        for (size_t c = k; c-- > 0;) start[c + 1] = start[c];
        start[0] = 0;
        update_job job = {xs, dim, start, members, centroids, acc, spherical};
        qv_pool_run(pool, k, 0, update_one, &job);

        uint32_t fixed = repair_empty(centroids, k, dim, count, spherical, heap);
        stats.repairs += fixed;
        if (fixed) memset(prev, 0xff, ns * sizeof *prev);   /* never a fixed point after a repair */
        else memcpy(prev, assign, ns * sizeof *prev);
        if (p->progress) p->progress("kmeans", it + 1, iters, p->progress_arg);
    }
    if (p->progress && stats.iters_run < iters) p->progress("kmeans", iters, iters, p->progress_arg);
done:
    if (st) *st = stats;
    rc = QV_OK;
cleanup:
    qv_free(idx);
    qv_free(sample);
    qv_free(dist);
    qv_free(assign);
    qv_free(prev);
    qv_free(members);
    qv_free(start);
    qv_free(count);
    qv_free(heap);
    qv_free(cnorms);
    qv_free(xnorms);
    qv_free(acc);
    return rc;
}

int qv_kmeans(const qv_kmeans_params *p, size_t n, size_t dim, const float *x, float *centroids,
              double *objective)
{
    qv_kmeans_stats st;
    int rc = qv_kmeans_run(p, n, dim, x, centroids, &st);
    if (objective) *objective = rc == QV_OK ? st.objective : 0;
    return rc;
}
