/*
 * index/ivf_search.c -- IVF-Flat search (single query and batch).
 *
 * Single query (under the read lock):
 *   1. coarse: distance from q to every centroid with the x4 SIMD kernels (l2: squared
 *      distance; ip/cosine: -dot against the unit centroids), and the nprobe best lists
 *      kept in a bounded heap;
 *   2. scan: each probed list, best first, with the x4 kernels into a top-k; a candidate
 *      is offered to the heap only when it beats the current k-th distance. Filters
 *      (sp->allow_bits over ids, sp->accept) are applied before the distance is computed,
 *      so rejected vectors cost no flops.
 *   3. extension: when the probed lists held fewer than k acceptable vectors (small lists,
 *      selective filters), probing continues into the next-best lists until k are found,
 *      all lists are done, or sp->max_visits vectors (when set) have been scanned.
 * Scratch (coarse distances, probe order) comes from a per-index free list, so a query
 * allocates only the first time a thread needs one. A quantized index scans codes
 * instead (ivf_codes.c, through the same probe), and its batches run query by query.
 *
 * Batch: queries are handled in blocks of BATCH_BLOCK. The coarse step of a block is one
 * GEMM (qv_blas_knn against the centroids, nprobe best). Then the block is cut into
 * chunks spread over the pool; a chunk buckets its (query, list) pairs by list and scans
 * each list once for all its queries through SGEMM (the list's vectors are read once per
 * chunk instead of once per query), folding the rows into per-query heaps. The k winners
 * of each query are then re-scored with the exact kernel, so scores and order match a
 * single-query search. A query that found fewer than k goes through the single-query
 * path (which extends the probe). Measured on sift-debian-100k (nlist 1265, 10k queries,
 * 2 threads on a shared 2-core machine): nprobe 8 / 32 / 64 gave 29.9k / 14.1k / 8.9k QPS
 * through SGEMM against 22.5k / 8.1k / 4.4k with single-query searches on the pool.
 * Batches under 16 queries, nprobe > QV_MAX_K or qv_ivf_batch_strategy = 1 use the
 * single-query searches on the pool.
 *
 * GPU (p.gpu = AUTO or REQUIRE): an unfiltered batch of at least GPU_MIN_BATCH queries
 * with nprobe <= QV_MAX_K runs qv_gpu_ivf_search (gpu/gpu.h: coarse GEMM + list scan on
 * the device, FP32 math so the probed lists and the ranking equal the CPU ones up to
 * float rounding) on the device copy of the index (locking and staleness: ivf.h). The
 * copy holds the lists concatenated in list order; device row r is gpu_ids[r], and
 * distances become scores through qv_score_from_dist. A query that got fewer than k
 * hits (its probed lists are short) goes through the single-query path, which extends
 * the probe, exactly as the CPU batch does. Single queries, small and filtered batches
 * stay on the CPU, as does every batch while qv_ivf_batch_strategy forces a CPU strategy
 * (tests, benchmarks). AUTO: a GPU error is cleared and the batch runs on the CPU; the copy
 * is dropped, and after an error other than QV_ENOMEM this index stops trying the GPU
 * (qv_gpu_probe() turns 0 process-wide after a sticky CUDA error). REQUIRE: the error
 * is returned and the copy rebuilt at the next call.
 */
#include "index/ivf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blas.h"
#include "core/distance.h"
#include "core/error.h"

#define BATCH_BLOCK 8192u          /* queries per coarse GEMM (bounds probe memory) */
#define LIST_TILE 1024u            /* list rows per SGEMM call */
#define QUERY_TILE 256u            /* query rows per SGEMM call */
#define GEMM_MIN_ROWS 4u           /* fewer queries on one list: kernels instead of SGEMM */
/* Smallest batch sent to the GPU: below it the uploads and launches cost more than the
 * CPU batch (the same bound as index/flat.c). */
#define GPU_MIN_BATCH 64u

int qv_ivf_batch_strategy = 0;

void qv_ivf_filter_init(qv_ivf_filter *f, const qv_search_params *sp)
{
    f->bits = sp->allow_bits;
    f->nbits = sp->allow_nbits;
    f->accept = sp->accept;
    f->arg = sp->accept_arg;
    f->any = f->bits != NULL || f->accept != NULL;
}

/* ---- scratch ----------------------------------------------------------------------- */

static void scratch_free(qv_ivf_scratch *s)
{
    if (!s) return;
    qv_free(s->coarse);
    qv_free(s->order);
    qv_free(s->qbuf);
    qv_free(s->qtmp);
    qv_free(s->est);
    qv_free(s->cand);
    qv_free(s);
}

qv_ivf_scratch *qv_ivf_scratch_get(qv_ivf *v)
{
    qv_ivf_scratch *s;
    pthread_mutex_lock(&v->scratch_lock);
    s = v->scratch_free;
    if (s) v->scratch_free = s->next;
    pthread_mutex_unlock(&v->scratch_lock);
    if (!s && !(s = qv_calloc(1, sizeof *s))) return NULL;
    if (s->cap < v->nlist) {
        float *c = qv_reallocarray(s->coarse, v->nlist, sizeof *c);
        if (c) s->coarse = c;
        qv_pair *o = c ? qv_reallocarray(s->order, v->nlist, sizeof *o) : NULL;
        if (o) s->order = o;
        if (!c || !o) {
            scratch_free(s);
            return NULL;
        }
        s->cap = v->nlist;
    }
    return s;
}

void qv_ivf_scratch_put(qv_ivf *v, qv_ivf_scratch *s)
{
    pthread_mutex_lock(&v->scratch_lock);
    s->next = v->scratch_free;
    v->scratch_free = s;
    pthread_mutex_unlock(&v->scratch_lock);
}

void qv_ivf_scratch_release_all(qv_ivf *v)
{
    while (v->scratch_free) {
        qv_ivf_scratch *s = v->scratch_free;
        v->scratch_free = s->next;
        scratch_free(s);
    }
}

/* ---- single query ------------------------------------------------------------------ */

typedef struct {
    const qv_ivf *v;
    const float *q;
    qv_dist_fn dist;
    void (*x4)(const float *a, const float *const b[4], size_t dim, float out[4]);
    qv_ivf_filter f;
} scan_ctx;

static inline void offer(qv_topk *tk, float *bound, float d, uint64_t id)
{
    if (d <= *bound && qv_topk_push(tk, d, id)) *bound = qv_topk_bound(tk);
}

/* A list is one sequential stream, but at 1M points the hardware prefetcher does not run
 * far enough ahead of the x4 kernel: the scan prefetches the vectors PREFETCH_AHEAD rows
 * ahead (non-temporal: each is read once). On sift-debian-1m (nlist 4096, nprobe 32, 1
 * thread, medians of 3 alternated runs) 2.36k QPS without, 3.70k with 32 rows ahead
 * (8 rows: 3.06k); at 100k (nlist 1265) 13.4k -> 14.8k. Prefetching the head of the
 * next list as well measured lower at 1M (3.38k). */
#define PREFETCH_AHEAD 32u

/* Prefetch the 4 vectors (dim floats each) at p, to be read soon and once. */
static inline void prefetch4(const float *p, size_t dim)
{
    const char *b = (const char *)p;
    for (size_t o = 0; o < 4 * dim * sizeof(float); o += 64) __builtin_prefetch(b + o, 0, 0);
}

/* Scan list l into tk; returns the number of vectors whose distance was computed. */
static size_t scan_list(const scan_ctx *c, uint32_t l, qv_topk *tk)
{
    const qv_ivf_list *L = &c->v->lists[l];
    size_t dim = c->v->dim, len = L->len, j = 0;
    const float *base = L->vecs;
    const uint64_t *ids = L->ids;
    float bound = qv_topk_bound(tk), d[4];

    if (!c->f.any) {
        for (; j + 4 <= len; j += 4) {
            if (j + PREFETCH_AHEAD + 4 <= len) prefetch4(base + (j + PREFETCH_AHEAD) * dim, dim);
            const float *b[4] = {base + j * dim, base + (j + 1) * dim, base + (j + 2) * dim, base + (j + 3) * dim};
            c->x4(c->q, b, dim, d);
            offer(tk, &bound, d[0], ids[j]);
            offer(tk, &bound, d[1], ids[j + 1]);
            offer(tk, &bound, d[2], ids[j + 2]);
            offer(tk, &bound, d[3], ids[j + 3]);
        }
        for (; j < len; j++) offer(tk, &bound, c->dist(c->q, base + j * dim, dim), ids[j]);
        return len;
    }
    size_t m = 0, scanned = 0;
    const float *b[4];
    uint64_t bid[4];
    for (; j < len; j++) {
        if (!qv_ivf_filter_pass(&c->f, ids[j])) continue;
        b[m] = base + j * dim;
        bid[m++] = ids[j];
        if (m == 4) {
            c->x4(c->q, b, dim, d);
            for (size_t t = 0; t < 4; t++) offer(tk, &bound, d[t], bid[t]);
            scanned += 4;
            m = 0;
        }
    }
    for (size_t t = 0; t < m; t++) offer(tk, &bound, c->dist(c->q, b[t], dim), bid[t]);
    return scanned + m;
}

static int cmp_pair(const void *a, const void *b)
{
    const qv_pair *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Coarse distances from q to every centroid into s->coarse. */
static void coarse_all(const scan_ctx *c, qv_ivf_scratch *s)
{
    const qv_ivf *v = c->v;
    size_t dim = v->dim, nlist = v->nlist, j = 0;
    const float *cent = v->centroids;
    for (; j + 4 <= nlist; j += 4) {
        const float *b[4] = {cent + j * dim, cent + (j + 1) * dim, cent + (j + 2) * dim, cent + (j + 3) * dim};
        c->x4(c->q, b, dim, s->coarse + j);
    }
    for (; j < nlist; j++) s->coarse[j] = c->dist(c->q, cent + j * dim, dim);
}

static void ctx_init(scan_ctx *c, const qv_ivf *v, const float *q, const qv_search_params *sp)
{
    const qv_kernels *kern = qv_kernels_get();
    int l2 = v->metric == QV_METRIC_L2;
    c->v = v;
    c->q = q;
    c->dist = l2 ? kern->l2sq : kern->neg_dot;
    c->x4 = l2 ? kern->l2sq_x4 : kern->neg_dot_x4;
    qv_ivf_filter_init(&c->f, sp);
}

static size_t scan_list_cb(void *arg, uint32_t l, qv_topk *tk) { return scan_list(arg, l, tk); }

void qv_ivf_probe(const qv_ivf *v, const float *q, const qv_search_params *sp, qv_ivf_scratch *s, qv_topk *tk,
                  qv_ivf_scan_fn scan, void *arg)
{
    scan_ctx c;
    qv_topk probe;
    size_t nlist = v->nlist, nprobe = sp->nprobe < nlist ? sp->nprobe : nlist, visited = 0;

    ctx_init(&c, v, q, sp);
    coarse_all(&c, s);
    qv_topk_init_with(&probe, s->order, nprobe);
    for (size_t l = 0; l < nlist; l++) qv_topk_push(&probe, s->coarse[l], l);
    size_t nsel = qv_topk_sort(&probe);
    for (size_t i = 0; i < nsel; i++) visited += scan(arg, (uint32_t)s->order[i].id, tk);
    if (tk->len >= sp->k || nsel >= nlist) return;

    /* Extension: the same (distance, list) order as the heap gave, continued. */
    for (size_t l = 0; l < nlist; l++) {
        s->order[l].dist = s->coarse[l];
        s->order[l].id = l;
    }
    qsort(s->order, nlist, sizeof *s->order, cmp_pair);
    for (size_t i = nsel; i < nlist && tk->len < sp->k; i++) {
        if (sp->max_visits && visited >= sp->max_visits) break;
        visited += scan(arg, (uint32_t)s->order[i].id, tk);
    }
}

/* Search with the read lock held; tk is empty and has capacity sp->k. */
static void search_locked(const qv_ivf *v, const float *q, const qv_search_params *sp, qv_ivf_scratch *s,
                          qv_topk *tk)
{
    scan_ctx c;
    ctx_init(&c, v, q, sp);
    qv_ivf_probe(v, q, sp, s, tk, scan_list_cb, &c);
}

static void emit(qv_metric metric, qv_topk *tk, qv_hit *hits, size_t *n_hits)
{
    size_t len = qv_topk_sort(tk);
    for (size_t i = 0; i < len; i++) {
        hits[i].id = tk->items[i].id;
        hits[i].score = qv_score_from_dist(metric, tk->items[i].dist);
    }
    *n_hits = len;
}

/* One query, read lock held by the caller. */
static int search_one(const qv_ivf *v, const float *q, const qv_search_params *sp, qv_hit *hits,
                      size_t *n_hits)
{
    qv_topk tk;
    qv_ivf_scratch *s = qv_ivf_scratch_get((qv_ivf *)v);
    if (!s) return QV_ENOMEM;
    int rc = QV_OK;
    if (v->codec && sp->rescore != QV_RESCORE_ALL) {
        rc = qv_ivf_search_codes(v, q, sp, s, hits, n_hits);
    } else {
        qv_topk_init_with(&tk, s->heap, sp->k);
        search_locked(v, q, sp, s, &tk);
        emit(v->metric, &tk, hits, n_hits);
    }
    qv_ivf_scratch_put((qv_ivf *)v, s);
    return rc;
}

int qv_ivf_search(const qv_index *ix, const float *q, const qv_search_params *sp, qv_hit *hits,
                  size_t *n_hits)
{
    qv_ivf *v = ix->impl;
    int rc;
    *n_hits = 0;
    pthread_rwlock_rdlock(&v->lock);
    if (!v->nlist) rc = qv_fail(QV_ESTATE, QV_IVF_UNTRAINED_MSG);
    else rc = search_one(v, q, sp, hits, n_hits);
    pthread_rwlock_unlock(&v->lock);
    return rc;
}

/* ---- batch: shared bits ------------------------------------------------------------ */

typedef struct {
    const qv_ivf *v;
    const float *q;                /* this block's queries */
    size_t nq, chunk;
    const qv_search_params *sp;
    const uint64_t *probe;         /* nq*nprobe list numbers, best first (GEMM path) */
    size_t nprobe;
    qv_hit *hits;
    size_t *n_hits;
    const size_t *which;           /* per_query_task: the queries to run (NULL = all) */
    int rc;                        /* first failure (atomic exchange) */
    char msg[256];
} batch_job;

static void job_fail(batch_job *job, int rc, size_t qi)
{
    if (__atomic_exchange_n(&job->rc, rc, __ATOMIC_RELAXED) == QV_OK)
        snprintf(job->msg, sizeof job->msg, "query %zu: %s", qi, qv_last_error());
}

/* Per-query strategy: single-query searches spread over the pool. */
static void per_query_task(void *arg, size_t i, unsigned worker)
{
    batch_job *job = arg;
    (void)worker;
    size_t k = job->sp->k;
    if (job->which) i = job->which[i];
    int rc = search_one(job->v, job->q + i * job->v->dim, job->sp, job->hits + i * k, &job->n_hits[i]);
    if (rc != QV_OK) job_fail(job, rc, i);
}

/* ---- batch through SGEMM ----------------------------------------------------------- */

typedef struct {
    qv_pair *heap;                 /* m*k */
    qv_topk *tk;                   /* m */
    float *qn;                     /* m query norms (l2) */
    uint32_t *start;               /* nlist+1 bucket offsets */
    uint32_t *members;             /* m*nprobe query numbers bucketed by list */
    float *qbuf;                   /* QUERY_TILE*dim gathered queries */
    float *cbuf;                   /* QUERY_TILE*LIST_TILE SGEMM output */
    qv_pair *fin;                  /* k: re-scored winners */
} gemm_scratch;

static void gemm_scratch_release(gemm_scratch *g)
{
    qv_free(g->heap);
    qv_free(g->tk);
    qv_free(g->qn);
    qv_free(g->start);
    qv_free(g->members);
    qv_free(g->qbuf);
    qv_free(g->cbuf);
    qv_free(g->fin);
}

static int gemm_scratch_init(gemm_scratch *g, size_t m, size_t k, size_t nprobe, size_t nlist, size_t dim)
{
    memset(g, 0, sizeof *g);
    g->heap = qv_reallocarray(NULL, m, k * sizeof *g->heap);
    g->tk = qv_reallocarray(NULL, m, sizeof *g->tk);
    g->qn = qv_reallocarray(NULL, m, sizeof *g->qn);
    g->start = qv_calloc(nlist + 1, sizeof *g->start);
    g->members = qv_reallocarray(NULL, m, nprobe * sizeof *g->members);
    g->qbuf = qv_aligned_calloc(QUERY_TILE, dim * sizeof *g->qbuf);
    g->cbuf = qv_aligned_calloc((size_t)QUERY_TILE * LIST_TILE, sizeof *g->cbuf);
    g->fin = qv_reallocarray(NULL, k, sizeof *g->fin);
    if (!g->heap || !g->tk || !g->qn || !g->start || !g->members || !g->qbuf || !g->cbuf || !g->fin) {
        gemm_scratch_release(g);
        return QV_ENOMEM;
    }
    return QV_OK;
}

/* Scan list l for the mq chunk-local queries qs[] (SGEMM when enough of them). */
static void gemm_list(const batch_job *job, size_t q0, gemm_scratch *g, uint32_t l, const uint32_t *qs,
                      size_t mq, const scan_ctx *proto)
{
    const qv_ivf *v = job->v;
    const qv_ivf_list *L = &v->lists[l];
    size_t dim = v->dim, len = L->len;
    int l2 = v->metric == QV_METRIC_L2;
    if (len == 0) return;
    if (mq < GEMM_MIN_ROWS) {
        for (size_t r = 0; r < mq; r++) {
            scan_ctx c = *proto;
            c.q = job->q + (q0 + qs[r]) * dim;
            scan_list(&c, l, &g->tk[qs[r]]);
        }
        return;
    }
    for (size_t r0 = 0; r0 < mq; r0 += QUERY_TILE) {
        size_t mr = mq - r0 < QUERY_TILE ? mq - r0 : QUERY_TILE;
        for (size_t r = 0; r < mr; r++)
            memcpy(g->qbuf + r * dim, job->q + (q0 + qs[r0 + r]) * dim, dim * sizeof(float));
        for (size_t x0 = 0; x0 < len; x0 += LIST_TILE) {
            size_t nn = len - x0 < LIST_TILE ? len - x0 : LIST_TILE;
            qv_sgemm_nt(mr, nn, dim, l2 ? -2.0f : -1.0f, g->qbuf, L->vecs + x0 * dim, 0.0f, g->cbuf);
            const uint64_t *ids = L->ids + x0;
            const float *xn = l2 ? L->norms + x0 : NULL;
            for (size_t r = 0; r < mr; r++) {
                uint32_t qi = qs[r0 + r];
                qv_topk *tk = &g->tk[qi];
                const float *crow = g->cbuf + r * nn;
                float bound = qv_topk_bound(tk), qn = g->qn[qi];
                for (size_t j = 0; j < nn; j++) {
                    float d = l2 ? crow[j] + xn[j] + qn : crow[j];
                    if (d > bound) continue;
                    if (proto->f.any && !qv_ivf_filter_pass(&proto->f, ids[j])) continue;
                    if (qv_topk_push(tk, d, ids[j])) bound = qv_topk_bound(tk);
                }
            }
        }
    }
}

static void gemm_chunk(void *arg, size_t t, unsigned worker)
{
    batch_job *job = arg;
    const qv_ivf *v = job->v;
    gemm_scratch g;
    scan_ctx proto;
    size_t k = job->sp->k, dim = v->dim, nprobe = job->nprobe, nlist = v->nlist;
    size_t q0 = t * job->chunk, m = job->nq - q0 < job->chunk ? job->nq - q0 : job->chunk;
    int rc;
    (void)worker;

    if ((rc = gemm_scratch_init(&g, m, k, nprobe, nlist, dim)) != QV_OK) {
        job_fail(job, rc, q0);
        return;
    }
    ctx_init(&proto, v, NULL, job->sp);
    for (size_t i = 0; i < m; i++) {
        qv_topk_init_with(&g.tk[i], g.heap + i * k, k);
        g.qn[i] = v->metric == QV_METRIC_L2 ? qv_norm_sq(job->q + (q0 + i) * dim, dim) : 0.0f;
    }
    /* bucket (query, list) pairs by list: counting sort, queries ascending in a bucket */
    const uint64_t *probe = job->probe + q0 * nprobe;
    for (size_t i = 0; i < m * nprobe; i++)
        if (probe[i] < nlist) g.start[probe[i] + 1]++;
    for (size_t l = 0; l < nlist; l++) g.start[l + 1] += g.start[l];
    for (size_t i = 0; i < m; i++)
        for (size_t p = 0; p < nprobe; p++) {
            uint64_t l = probe[i * nprobe + p];
            if (l < nlist) g.members[g.start[l]++] = (uint32_t)i;
        }
    for (size_t l = nlist; l-- > 0;) g.start[l + 1] = g.start[l];
    g.start[0] = 0;
    for (size_t l = 0; l < nlist; l++)
        if (g.start[l + 1] > g.start[l])
            gemm_list(job, q0, &g, (uint32_t)l, g.members + g.start[l], g.start[l + 1] - g.start[l], &proto);

    /* re-score the winners exactly; queries short of k take the single-query path */
    for (size_t i = 0; i < m; i++) {
        size_t qi = q0 + i;
        const float *q = job->q + qi * dim;
        qv_hit *hits = job->hits + qi * k;
        qv_topk *tk = &g.tk[i];
        if (tk->len < k && nprobe < nlist) {
            if ((rc = search_one(v, q, job->sp, hits, &job->n_hits[qi])) != QV_OK) job_fail(job, rc, qi);
            continue;
        }
        qv_topk fin;
        qv_topk_init_with(&fin, g.fin, k);
        for (size_t j = 0; j < tk->len; j++) {
            uint64_t id = tk->items[j].id;
            qv_ivf_loc at = v->loc[qv_idmap_get(&v->map, id)];
            qv_topk_push(&fin, proto.dist(q, v->lists[at.list].vecs + (size_t)at.pos * dim, dim), id);
        }
        emit(v->metric, &fin, hits, &job->n_hits[qi]);
    }
    gemm_scratch_release(&g);
}

/* ---- batch on the GPU ------------------------------------------------------------- */

void qv_ivf_gpu_release(qv_ivf *v)
{
    qv_gpu_ivf_free(v->gpu);
    v->gpu = NULL;
    qv_free(v->gpu_ids);
    v->gpu_ids = NULL;
    v->gpu_rows = 0;
    v->gpu_lists_ok = 0;
}

/* Whether this batch goes to the GPU (see the file header). Read lock held. */
static int gpu_wanted(const qv_index *ix, const qv_ivf *v, size_t nq, size_t nprobe, const qv_search_params *sp)
{
    if (ix->p.gpu == QV_GPU_OFF || nq < GPU_MIN_BATCH || v->n == 0 || sp->allow_bits || sp->accept) return 0;
    if (nprobe > QV_MAX_K || qv_ivf_batch_strategy != 0 || v->codec) return 0;   /* no device codes yet */
    return ix->p.gpu == QV_GPU_REQUIRE || qv_gpu_probe();
}

/* Bring the device copy in step with the lists: a new qv_gpu_ivf after a train, the lists
 * uploaded again after any add/remove. Read lock and gpu_lock held. */
static int gpu_sync(qv_ivf *v)
{
    int rc = QV_OK;
    uint64_t *off = NULL, *ids = NULL;
    float *vecs = NULL;
    size_t dim = v->dim, nlist = v->nlist;

    if (v->gpu && v->gpu_gen != v->gen) qv_ivf_gpu_release(v);
    if (!v->gpu) {
        qv_gpu_options o;
        qv_gpu_options_init(&o);
        o.math = QV_GPU_MATH_FP32;     /* the probed lists must be the CPU's: no TF32/FP16 */
        if ((rc = qv_gpu_ivf_new(dim, v->metric, nlist, v->centroids, &o, &v->gpu)) != QV_OK) return rc;
        v->gpu_gen = v->gen;
        v->gpu_lists_ok = 0;
    }
    if (v->gpu_lists_ok && v->gpu_version == v->version) return QV_OK;
    if (!(off = qv_reallocarray(NULL, nlist + 1, sizeof *off)) || !(ids = qv_reallocarray(NULL, v->n ? v->n : 1, sizeof *ids)) ||
        !(vecs = qv_reallocarray(NULL, v->n ? v->n : 1, dim * sizeof *vecs))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    off[0] = 0;
    for (size_t l = 0; l < nlist; l++) off[l + 1] = off[l] + v->lists[l].len;
    if (off[nlist] != v->n) {
        rc = qv_fail(QV_EINTERNAL, "ivf index: lists hold %llu vectors, count says %zu",
                     (unsigned long long)off[nlist], v->n);
        goto cleanup;
    }
    for (size_t l = 0; l < nlist; l++) {
        const qv_ivf_list *L = &v->lists[l];
        if (L->len == 0) continue;                      /* vecs may be NULL */
        memcpy(vecs + off[l] * dim, L->vecs, (size_t)L->len * dim * sizeof *vecs);
        memcpy(ids + off[l], L->ids, (size_t)L->len * sizeof *ids);
    }
    v->gpu_lists_ok = 0;               /* a failed upload leaves the device lists unknown */
    if ((rc = qv_gpu_ivf_set_lists(v->gpu, off, vecs)) != QV_OK) goto cleanup;
    qv_free(v->gpu_ids);
    v->gpu_ids = ids;
    ids = NULL;
    v->gpu_rows = v->n;
    v->gpu_version = v->version;
    v->gpu_lists_ok = 1;
cleanup:
    qv_free(off);
    qv_free(ids);
    qv_free(vecs);
    return rc;
}

/* The batch on the GPU. Read lock held. On failure hits / n_hits are partly written: the
 * caller answers on the CPU (AUTO) or reports the error (REQUIRE). */
static int gpu_batch(const qv_index *ix, qv_ivf *v, size_t nq, const float *q, const qv_search_params *sp,
                     size_t nprobe, qv_hit *hits, size_t *n_hits)
{
    size_t k = sp->k, n_short = 0;
    float *dist = qv_reallocarray(NULL, nq, k * sizeof *dist);
    int64_t *rows = qv_reallocarray(NULL, nq, k * sizeof *rows);
    size_t *short_q = NULL;
    int rc;
    if (!dist || !rows) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    pthread_mutex_lock(&v->gpu_lock);
    if (v->gpu_failed)
        rc = qv_fail(QV_ENODEV, "ivf index: GPU disabled for this index after an earlier GPU error");
    else if ((rc = gpu_sync(v)) == QV_OK)
        rc = qv_gpu_ivf_search(v->gpu, nq, q, nprobe, k, dist, rows);
    if (rc == QV_OK) {
        /* gpu_ids stays valid: it changes only under gpu_lock, held until the rows are mapped */
        for (size_t i = 0; i < nq && rc == QV_OK; i++) {
            size_t m = 0;
            for (; m < k && rows[i * k + m] >= 0; m++) {    /* best first, tail padded with -1 */
                int64_t r = rows[i * k + m];
                if ((uint64_t)r >= v->gpu_rows) {
                    rc = qv_fail(QV_EINTERNAL, "ivf index: the GPU returned row %lld of %zu", (long long)r,
                                 v->gpu_rows);
                    break;
                }
                hits[i * k + m].id = v->gpu_ids[r];
                hits[i * k + m].score = qv_score_from_dist(v->metric, dist[i * k + m]);
            }
            n_hits[i] = m;
        }
    }
    if (rc != QV_OK && !v->gpu_failed) {
        /* Give the device memory back; a later GPU batch uploads everything again. */
        qv_ivf_gpu_release(v);
        v->gpu_failed = ix->p.gpu == QV_GPU_AUTO && rc != QV_ENOMEM;
    }
    pthread_mutex_unlock(&v->gpu_lock);
    if (rc != QV_OK) goto cleanup;
    /* Short of k: the probed lists were small; the single-query path extends the probe. */
    if (nprobe < v->nlist)
        for (size_t i = 0; i < nq; i++) n_short += n_hits[i] < k;
    if (n_short) {
        batch_job job;
        if (!(short_q = qv_reallocarray(NULL, n_short, sizeof *short_q))) {
            rc = QV_ENOMEM;
            goto cleanup;
        }
        n_short = 0;
        for (size_t i = 0; i < nq; i++)
            if (n_hits[i] < k) short_q[n_short++] = i;
        memset(&job, 0, sizeof job);
        job.v = v;
        job.q = q;
        job.nq = n_short;
        job.sp = sp;
        job.hits = hits;
        job.n_hits = n_hits;
        job.which = short_q;
        qv_pool_run(ix->pool, n_short, 0, per_query_task, &job);
        if (job.rc != QV_OK) rc = qv_fail(job.rc, "%s", job.msg);
    }
cleanup:
    qv_free(dist);
    qv_free(rows);
    qv_free(short_q);
    return rc;
}

/* ---- batch: entry point ------------------------------------------------------------ */

int qv_ivf_search_batch(const qv_index *ix, size_t nq, const float *q, const qv_search_params *sp,
                        qv_hit *hits, size_t *n_hits)
{
    qv_ivf *v = ix->impl;
    uint64_t *probe = NULL;
    float *pdist = NULL;
    int rc = QV_OK;
    unsigned threads = qv_pool_threads(ix->pool);

    pthread_rwlock_rdlock(&v->lock);
    if (!v->nlist) {
        rc = qv_fail(QV_ESTATE, QV_IVF_UNTRAINED_MSG);
        goto cleanup;
    }
    size_t nprobe = sp->nprobe < v->nlist ? sp->nprobe : v->nlist, k = sp->k, dim = v->dim;
    if (gpu_wanted(ix, v, nq, nprobe, sp)) {
        rc = gpu_batch(ix, v, nq, q, sp, nprobe, hits, n_hits);
        if (rc == QV_OK || ix->p.gpu == QV_GPU_REQUIRE) goto cleanup;
        qv_clear_error();              /* AUTO: the CPU answers instead */
        rc = QV_OK;
    }
    int gemm = qv_ivf_batch_strategy == 2 || (qv_ivf_batch_strategy == 0 && nq >= 16);
    if (nprobe > QV_MAX_K || v->codec) gemm = 0;      /* codes: scanned query by query */
    size_t block = nq < BATCH_BLOCK ? nq : BATCH_BLOCK;
    if (gemm && (!(probe = qv_reallocarray(NULL, block, nprobe * sizeof *probe)) ||
                 !(pdist = qv_reallocarray(NULL, block, nprobe * sizeof *pdist)))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    for (size_t b0 = 0; b0 < nq && rc == QV_OK; b0 += block) {
        size_t bn = nq - b0 < block ? nq - b0 : block;
        batch_job job;
        memset(&job, 0, sizeof job);
        job.v = v;
        job.q = q + b0 * dim;
        job.nq = bn;
        job.sp = sp;
        job.hits = hits + b0 * k;
        job.n_hits = n_hits + b0;
        job.nprobe = nprobe;
        if (!gemm) {
            qv_pool_run(ix->pool, bn, 0, per_query_task, &job);
        } else {
            qv_blas_db db;
            memset(&db, 0, sizeof db);
            db.x = v->centroids;
            db.x_norms = v->metric == QV_METRIC_L2 ? v->cnorms : NULL;
            db.n = v->nlist;
            db.dim = dim;
            db.metric = v->metric == QV_METRIC_L2 ? QV_METRIC_L2 : QV_METRIC_IP;
            if ((rc = qv_blas_knn(&db, job.q, bn, nprobe, ix->pool, pdist, probe, NULL)) != QV_OK) break;
            job.probe = probe;
            size_t chunks = (size_t)threads * 2;
            job.chunk = (bn + chunks - 1) / chunks;
            if (job.chunk < 64) job.chunk = 64;
            qv_pool_run(ix->pool, (bn + job.chunk - 1) / job.chunk, 1, gemm_chunk, &job);
        }
        if (job.rc != QV_OK) rc = qv_fail(job.rc, "%s", job.msg);
    }
cleanup:
    pthread_rwlock_unlock(&v->lock);
    qv_free(probe);
    qv_free(pdist);
    return rc;
}
