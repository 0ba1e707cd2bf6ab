/*
 * gpu/gpu_ivf.cu -- IVF on the device: coarse assignment and inverted-list scan.
 *
 * The centroids and the lists (concatenated, CSR offsets) are resident. A batch search:
 * (1) coarse assignment = the nprobe nearest centroids of each query, through the same
 * GEMM tiles + selection as exact search (gpu_knn.cu); (2) per query, the lengths of its
 * probed lists are laid end to end (a prefix sum per query); (3) one block per
 * (query, probe) computes the distances of the query to every vector of that list
 * directly (sum of squares or -dot, no GEMM: each vector is read once per probing
 * query, which is the cost of IVF anyway) into the query's row of a candidate matrix,
 * with the list rows alongside; (4) the selection kernel keeps the k best of each row.
 * Rows of the candidate matrix are as long as the nprobe largest lists together, so
 * the query batch is sized from that bound and free device memory.
 */
#include "gpu/gpu_engine.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IVF_THREADS 128

struct qv_gpu_ivf {
    size_t dim;
    qv_metric metric;
    qv_gpu_options opt;
    size_t nlist;
    float *cent, *cn;              /* device centroids and their norms (l2) */
    __half *ch;                    /* FP16 copy */
    size_t total;                  /* rows over all lists */
    float *vecs;                   /* device total*dim */
    unsigned *off;                 /* device nlist+1 */
    size_t *largest;               /* host: largest[p] = rows in the p largest lists */
};

static __global__ void probes_kernel(const qv_u64 *best, size_t nq, size_t nprobe,
                                     const unsigned *off, unsigned *probes, int *pre, int *len)
{
    size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= nq) return;
    int run = 0;
    for (size_t p = 0; p < nprobe; p++) {
        qv_u64 e = best[q * nprobe + p];
        unsigned l = (unsigned)(e & 0xFFFFFFFFull);
        probes[q * nprobe + p] = l;
        pre[q * nprobe + p] = run;
        if (e != QV_GPU_EMPTY) run += (int)(off[l + 1] - off[l]);
    }
    len[q] = run;
}

static __global__ void __launch_bounds__(IVF_THREADS)
scan_kernel(const float *q, size_t dim, size_t nprobe, const unsigned *probes, const int *pre,
            const unsigned *off, const float *vecs, int l2, float *cd, unsigned *cid, size_t ld,
            const qv_u64 *best)
{
    const size_t qi = blockIdx.x / nprobe, p = blockIdx.x % nprobe;
    if (best[qi * nprobe + p] == QV_GPU_EMPTY) return;
    const unsigned l = probes[qi * nprobe + p];
    const unsigned b = off[l], e = off[l + 1];
    const float *qv = q + qi * dim;
    float *drow = cd + qi * ld + pre[qi * nprobe + p];
    unsigned *irow = cid + qi * ld + pre[qi * nprobe + p];
    const int vec4 = (dim % 4) == 0;
    for (unsigned r = b + threadIdx.x; r < e; r += blockDim.x) {
        const float *xv = vecs + (size_t)r * dim;
        float s = 0.0f;
        if (vec4) {
            const float4 *a4 = (const float4 *)qv, *x4 = (const float4 *)xv;
            for (size_t j = 0; j < dim / 4; j++) {
                float4 a = a4[j], x = x4[j];
                if (l2) {
                    float d0 = a.x - x.x, d1 = a.y - x.y, d2 = a.z - x.z, d3 = a.w - x.w;
                    s += d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
                } else {
                    s += a.x * x.x + a.y * x.y + a.z * x.z + a.w * x.w;
                }
            }
        } else {
            for (size_t j = 0; j < dim; j++) {
                float d0 = qv[j] - xv[j];
                s += l2 ? d0 * d0 : qv[j] * xv[j];
            }
        }
        drow[r - b] = l2 ? s : -s;
        irow[r - b] = r;
    }
}

static void ivf_release(qv_gpu_ivf *g)
{
    qv_dfree(&g->cent);
    qv_dfree(&g->cn);
    qv_dfree(&g->ch);
    qv_dfree(&g->vecs);
    qv_dfree(&g->off);
}

extern "C" void qv_gpu_ivf_free(qv_gpu_ivf *g)
{
    if (!g) return;
    ivf_release(g);
    qv_free(g->largest);
    qv_free(g);
}

extern "C" int qv_gpu_ivf_new(size_t dim, qv_metric metric, size_t nlist, const float *centroids,
                              const qv_gpu_options *o, qv_gpu_ivf **out)
{
    int rc;
    qv_gpu_ctx *c = NULL;
    qv_gpu_ivf *g = NULL;
    if (!out) return qv_fail(QV_EINVAL, "qv_gpu_ivf_new: out is NULL");
    *out = NULL;
    if (dim < 1 || dim > QV_MAX_DIM)
        return qv_fail(QV_EINVAL, "GPU IVF: dim must be 1..%u, got %zu", QV_MAX_DIM, dim);
    if (metric != QV_METRIC_L2 && metric != QV_METRIC_IP && metric != QV_METRIC_COSINE)
        return qv_fail(QV_EINVAL, "GPU IVF: unknown metric %d", (int)metric);
    if (nlist < 1 || nlist > QV_GPU_MAX_ROWS || !centroids)
        return qv_fail(QV_EINVAL, "GPU IVF: nlist must be >= 1 with centroids, got %zu", nlist);
    if ((rc = qv_gpu__lock(&c)) != QV_OK) return rc;
    if (!(g = (qv_gpu_ivf *)qv_calloc(1, sizeof *g)) ||
        !(g->largest = (size_t *)qv_calloc(nlist + 1, sizeof *g->largest))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    g->dim = dim;
    g->metric = metric;
    g->nlist = nlist;
    if (o) g->opt = *o;
    else qv_gpu_options_init(&g->opt);
    QV_CU(qv_dalloc(&g->cent, nlist * dim));
    QV_CU(qv_dalloc(&g->off, nlist + 1));
    QV_CU(cudaMemcpyAsync(g->cent, centroids, nlist * dim * sizeof(float), cudaMemcpyHostToDevice,
                          c->stream));
    QV_CU(cudaMemsetAsync(g->off, 0, (nlist + 1) * sizeof(unsigned), c->stream));
    if (metric == QV_METRIC_L2) {
        QV_CU(qv_dalloc(&g->cn, nlist));
        if ((rc = qv_gpu__norms(c, g->cent, nlist, dim, g->cn)) != QV_OK) goto cleanup;
    }
    if (g->opt.math == QV_GPU_MATH_FP16) {
        QV_CU(qv_dalloc(&g->ch, nlist * dim));
        if ((rc = qv_gpu__to_half(c, g->cent, nlist * dim, g->ch)) != QV_OK) goto cleanup;
    }
    QV_CU(cudaStreamSynchronize(c->stream));
    *out = g;
    g = NULL;
    rc = QV_OK;
cleanup:
    qv_gpu_ivf_free(g);
    qv_gpu__unlock();
    return rc;
}

static int cmp_desc(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

extern "C" int qv_gpu_ivf_set_lists(qv_gpu_ivf *g, const uint64_t *offsets, const float *vecs)
{
    int rc;
    qv_gpu_ctx *c = NULL;
    float *nv = NULL;
    unsigned *noff = NULL;
    size_t *sizes = NULL;
    if (!g || !offsets) return qv_fail(QV_EINVAL, "qv_gpu_ivf_set_lists: NULL argument");
    if (offsets[0] != 0) return qv_fail(QV_EINVAL, "GPU IVF: offsets[0] must be 0");
    for (size_t l = 0; l < g->nlist; l++)
        if (offsets[l + 1] < offsets[l])
            return qv_fail(QV_EINVAL, "GPU IVF: offsets decrease at list %zu", l);
    const size_t total = (size_t)offsets[g->nlist];
    if (total > QV_GPU_MAX_ROWS)
        return qv_fail(QV_EINVAL, "GPU IVF: at most %llu rows, got %zu", QV_GPU_MAX_ROWS, total);
    if (total && !vecs) return qv_fail(QV_EINVAL, "qv_gpu_ivf_set_lists: vecs is NULL");
    if ((rc = qv_gpu__lock(&c)) != QV_OK) return rc;
    if (!(sizes = (size_t *)qv_malloc(g->nlist * sizeof *sizes)) ||
        !(noff = (unsigned *)qv_malloc((g->nlist + 1) * sizeof *noff))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    for (size_t l = 0; l <= g->nlist; l++) noff[l] = (unsigned)offsets[l];
    for (size_t l = 0; l < g->nlist; l++) sizes[l] = (size_t)(offsets[l + 1] - offsets[l]);
    QV_CU(qv_dalloc(&nv, total * g->dim));
    if (total)
        QV_CU(cudaMemcpyAsync(nv, vecs, total * g->dim * sizeof(float), cudaMemcpyHostToDevice,
                              c->stream));
    QV_CU(cudaMemcpyAsync(g->off, noff, (g->nlist + 1) * sizeof(unsigned), cudaMemcpyHostToDevice,
                          c->stream));
    QV_CU(cudaStreamSynchronize(c->stream));
    qsort(sizes, g->nlist, sizeof *sizes, cmp_desc);
    g->largest[0] = 0;
    for (size_t l = 0; l < g->nlist; l++) g->largest[l + 1] = g->largest[l] + sizes[l];
    qv_dfree(&g->vecs);
    g->vecs = nv;
    nv = NULL;
    g->total = total;
    rc = QV_OK;
cleanup:
    qv_dfree(&nv);
    qv_free(noff);
    qv_free(sizes);
    qv_gpu__unlock();
    return rc;
}

static int check_search(const qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe,
                        size_t k, const float *dist, const int64_t *rows)
{
    if (!g) return qv_fail(QV_EINVAL, "GPU IVF: NULL index");
    if (nprobe < 1 || nprobe > g->nlist || nprobe > QV_MAX_K)
        return qv_fail(QV_EINVAL, "GPU IVF: nprobe must be 1..%zu, got %zu",
                       g->nlist < QV_MAX_K ? g->nlist : (size_t)QV_MAX_K, nprobe);
    if (k < 1 || k > QV_MAX_K) return qv_fail(QV_EINVAL, "GPU: k must be 1..%u, got %zu", QV_MAX_K, k);
    if (nq && (!q || !dist || !rows)) return qv_fail(QV_EINVAL, "GPU IVF: NULL array");
    return QV_OK;
}

static void centroid_db(const qv_gpu_ivf *g, qv_gpu_db *db)
{
    db->n = g->nlist;
    db->dim = g->dim;
    db->x = g->cent;
    db->xh = g->ch;
    db->xn = g->cn;
    db->host = NULL;
}

extern "C" int qv_gpu_ivf_probe(qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe,
                                float *dist, int64_t *lists)
{
    int rc;
    qv_gpu_ctx *c = NULL;
    qv_gpu_db db;
    if ((rc = check_search(g, nq, q, nprobe, 1, dist, lists)) != QV_OK) return rc;
    if (nq == 0) return QV_OK;
    if ((rc = qv_gpu__lock(&c)) != QV_OK) return rc;
    centroid_db(g, &db);
    rc = qv_gpu__knn_db(c, &db, g->metric, &g->opt, nq, q, nprobe, dist, lists, 0, NULL);
    qv_gpu__unlock();
    return rc;
}

extern "C" int qv_gpu_ivf_search(qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe,
                                 size_t k, float *dist, int64_t *rows)
{
    int rc;
    qv_gpu_ctx *c = NULL;
    qv_gpu_ws ws;
    qv_gpu_tiling t;
    qv_gpu_db db;
    unsigned *probes = NULL, *cid = NULL;
    int *pre = NULL, *len = NULL;
    float *cd = NULL, *od = NULL;
    int64_t *orow = NULL;
    qv_u64 *best = NULL;
    memset(&ws, 0, sizeof ws);
    if ((rc = check_search(g, nq, q, nprobe, k, dist, rows)) != QV_OK) return rc;
    if (nq == 0) return QV_OK;
    const int l2 = g->metric == QV_METRIC_L2, fp16 = g->opt.math == QV_GPU_MATH_FP16;
    const size_t maxcand = g->largest[nprobe] ? g->largest[nprobe] : 1;
    if (maxcand > (size_t)INT_MAX)
        return qv_fail(QV_EINVAL, "GPU IVF: %zu candidates per query is too many", maxcand);
    /* Per query on top of the coarse search: probes + offsets, length, candidates and
     * their rows, best k, and the decoded results. */
    const size_t extra = nprobe * 8 + 4 + maxcand * 8 + k * 8 + k * 12;
    if ((rc = qv_gpu__lock(&c)) != QV_OK) return rc;
    if (g->total == 0) {
        for (size_t i = 0; i < nq * k; i++) { dist[i] = INFINITY; rows[i] = -1; }
        rc = QV_OK;
        goto cleanup;
    }
    centroid_db(g, &db);
    if ((rc = qv_gpu__plan(g->nlist, g->dim, nq, nprobe, fp16, 0, extra, &g->opt, &t)) != QV_OK)
        goto cleanup;
    if ((rc = qv_gpu__ws_alloc(&t, g->dim, nprobe, fp16, l2, 0, &ws)) != QV_OK) goto cleanup;
    QV_CU(qv_dalloc(&probes, t.nqc * nprobe));
    QV_CU(qv_dalloc(&pre, t.nqc * nprobe));
    QV_CU(qv_dalloc(&len, t.nqc));
    QV_CU(qv_dalloc(&cd, t.nqc * maxcand));
    QV_CU(qv_dalloc(&cid, t.nqc * maxcand));
    QV_CU(qv_dalloc(&best, t.nqc * k));
    QV_CU(qv_dalloc(&od, t.nqc * k));
    QV_CU(qv_dalloc(&orow, t.nqc * k));
    for (size_t c0 = 0; c0 < nq; c0 += t.nqc) {
        size_t nc = nq - c0 < t.nqc ? nq - c0 : t.nqc;
        if ((rc = qv_gpu__load_queries(c, q + c0 * g->dim, nc, g->dim, fp16, l2, &ws)) != QV_OK)
            goto cleanup;
        if ((rc = qv_gpu__knn_chunk(c, &db, g->metric, g->opt.math, &t, &ws, nc, nprobe, 0, NULL)) != QV_OK)
            goto cleanup;
        QV_LAUNCH(probes_kernel, (unsigned)((nc + 255) / 256), 256, c->stream, ws.best, nc, nprobe,
                  g->off, probes, pre, len);
        QV_CU_LAUNCHED(probes_kernel);
        QV_LAUNCH(scan_kernel, (unsigned)(nc * nprobe), IVF_THREADS, c->stream, ws.q, g->dim,
                  nprobe, probes, pre, g->off, g->vecs, l2, cd, cid, maxcand, ws.best);
        QV_CU_LAUNCHED(scan_kernel);
        QV_CU(cudaMemsetAsync(best, 0xFF, nc * k * sizeof(qv_u64), c->stream));
        {
            qv_gpu_sel s;
            s.d = cd;
            s.ld = maxcand;
            s.ids = cid;
            s.id0 = 0;
            s.add = NULL;
            s.len_of = len;
            s.len = 0;
            s.k = (int)k;
            s.best = best;
            if ((rc = qv_gpu__select(c, &s, nc)) != QV_OK) goto cleanup;
        }
        if ((rc = qv_gpu__finalize(c, best, nc, k, NULL, l2, od, orow)) != QV_OK) goto cleanup;
        QV_CU(cudaMemcpyAsync(dist + c0 * k, od, nc * k * sizeof(float), cudaMemcpyDeviceToHost,
                              c->stream));
        QV_CU(cudaMemcpyAsync(rows + c0 * k, orow, nc * k * sizeof(int64_t), cudaMemcpyDeviceToHost,
                              c->stream));
        QV_CU(cudaStreamSynchronize(c->stream));
    }
    rc = QV_OK;
cleanup:
    qv_gpu__ws_free(&ws);
    qv_dfree(&probes);
    qv_dfree(&pre);
    qv_dfree(&len);
    qv_dfree(&cd);
    qv_dfree(&cid);
    qv_dfree(&best);
    qv_dfree(&od);
    qv_dfree(&orow);
    qv_gpu__unlock();
    return rc;
}
