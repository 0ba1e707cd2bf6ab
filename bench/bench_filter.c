/*
 * bench/bench_filter.c -- --filter-selectivity: filtered search measured against a
 * filtered exact ground truth.
 *
 * Payloads: row i gets {"bucket": b[i]}, b a random permutation of 0..n-1 from a fixed seed
 * (splitmix64 + Fisher-Yates). The filter "bucket < T" then passes exactly T rows, spread
 * over the whole id range (not a contiguous block, which would favour any engine whose
 * graph or lists follow insertion order). T = round(selectivity * n), at least 1.
 *
 * Ground truth per selectivity: the allowed rows go into a flat Quiver index (their own
 * ids) and one batch search returns the top min(2k+10, T) candidates per query in float
 * (GEMM); those are re-ranked in double precision against the raw vectors and the best k
 * kept, so near-ties that float rounding could swap are ordered exactly. Rows with fewer
 * than k allowed points end in -1 (bench_recall counts only the ids present).
 *
 * The run: every engine searches unfiltered first (the reference rows, selectivity 1),
 * then, per selectivity, every engine that can filter searches under that filter (rows
 * carry selectivity, mode and violations = returned ids outside the allowed set).
 */
#include "bench/bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint32_t *bench_filter_buckets(size_t n, uint64_t seed)
{
    uint32_t *b = malloc((n ? n : 1) * sizeof *b);
    if (!b) return NULL;
    for (size_t i = 0; i < n; i++) b[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(splitmix64(&seed) % i);
        uint32_t t = b[i - 1]; b[i - 1] = b[j]; b[j] = t;
    }
    return b;
}

/* Exact score in double: smaller is better (l2 distance, negated ip / cosine). */
static double exact_score(qv_metric m, const float *a, const float *b, size_t dim)
{
    double s = 0, na = 0, nb = 0;
    for (size_t j = 0; j < dim; j++) {
        if (m == QV_METRIC_L2) {
            double t = (double)a[j] - b[j];
            s += t * t;
        } else {
            s += (double)a[j] * b[j];
            na += (double)a[j] * a[j];
            nb += (double)b[j] * b[j];
        }
    }
    if (m == QV_METRIC_L2) return s;
    if (m == QV_METRIC_COSINE) return na > 0 && nb > 0 ? -s / sqrt(na * nb) : 0.0;
    return -s;
}

typedef struct { double score; int64_t id; } scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void qv_err(char *err, size_t errlen, const char *what, int rc)
{
    snprintf(err, errlen, "filtered ground truth: %s: %s: %s", what, qv_strerror(rc), qv_last_error());
}

int bench_filter_prepare(const bench_opts *o, const bench_data *d, const uint32_t *buckets, double selectivity,
                         bench_filter *f, uint64_t **bits_out, int32_t **gt_out, char *err, size_t errlen)
{
    const uint32_t k = o->k;
    size_t allowed = (size_t)llround(selectivity * (double)d->nb);
    if (allowed < 1) allowed = 1;
    if (allowed > d->nb) allowed = d->nb;
    size_t kc = 2 * (size_t)k + 10;
    if (kc > allowed) kc = allowed;
    if (kc > QV_MAX_K) kc = QV_MAX_K;
    if (kc < k && kc < allowed) kc = k;

    uint64_t *bits = calloc((d->nb + 63) / 64, sizeof *bits);
    int32_t *gt = malloc(d->nq * k * sizeof *gt);
    uint64_t *ids = malloc(allowed * sizeof *ids);
    float *vecs = malloc(allowed * d->dim * sizeof *vecs);
    qv_hit *hits = malloc(d->nq * kc * sizeof *hits);
    size_t *n_hits = malloc(d->nq * sizeof *n_hits);
    scored *cand = malloc(kc * sizeof *cand);
    qv_index *flat = NULL;
    qv_index_params p;
    qv_search_params sp;
    int ret = -1, rc;

    *bits_out = NULL;
    *gt_out = NULL;
    if (!bits || !gt || !ids || !vecs || !hits || !n_hits || !cand) { snprintf(err, errlen, "out of memory"); goto cleanup; }
    size_t m = 0;
    for (size_t i = 0; i < d->nb; i++) {
        if (buckets[i] >= allowed) continue;
        bits[i / 64] |= 1ull << (i % 64);
        ids[m] = i;
        memcpy(vecs + m * d->dim, d->base + i * d->dim, d->dim * sizeof *vecs);
        m++;
    }
    qv_index_params_init(&p, QV_INDEX_FLAT, (uint32_t)d->dim, d->metric);
    p.threads = bench_cpu_count();
    bench_set_blas_threads((int)p.threads);
    if ((rc = qv_index_new(&p, &flat)) != QV_OK) { qv_err(err, errlen, "index_new", rc); goto cleanup; }
    if ((rc = qv_index_add(flat, m, ids, vecs)) != QV_OK) { qv_err(err, errlen, "add", rc); goto cleanup; }
    qv_search_params_init(&sp, (uint32_t)kc);
    if ((rc = qv_index_search_batch(flat, d->nq, d->query, &sp, hits, n_hits)) != QV_OK) {
        qv_err(err, errlen, "search_batch", rc);
        goto cleanup;
    }
    for (size_t q = 0; q < d->nq; q++) {
        const float *qv = d->query + q * d->dim;
        size_t nc = n_hits[q];
        for (size_t j = 0; j < nc; j++) {
            int64_t id = (int64_t)hits[q * kc + j].id;
            cand[j].id = id;
            cand[j].score = exact_score(d->metric, qv, d->base + (size_t)id * d->dim, d->dim);
        }
        qsort(cand, nc, sizeof *cand, cmp_scored);
        for (uint32_t j = 0; j < k; j++) gt[q * k + j] = j < nc ? (int32_t)cand[j].id : -1;
    }
    f->selectivity = selectivity;
    f->allow_bits = bits;
    f->allow_nbits = d->nb;
    f->bucket_lt = (uint32_t)allowed;
    *bits_out = bits;
    *gt_out = gt;
    bits = NULL;
    gt = NULL;
    ret = 0;
cleanup:
    qv_index_free(flat);
    free(bits);
    free(gt);
    free(ids);
    free(vecs);
    free(hits);
    free(n_hits);
    free(cand);
    return ret;
}

int bench_filter_run(bench_built *engines, size_t n_engines, const bench_opts *o, const bench_data *d,
                     const uint32_t *buckets, bench_row **rows, size_t *n_rows, char *err, size_t errlen)
{
    if (bench_sweep(engines, n_engines, o, d, NULL, rows, n_rows, err, errlen) != 0) return -1;
    for (size_t s = 0; s < o->n_sels; s++) {
        bench_filter f;
        uint64_t *bits = NULL;
        int32_t *gt = NULL;
        double t0 = bench_now();
        if (bench_filter_prepare(o, d, buckets, o->sels[s], &f, &bits, &gt, err, errlen) != 0) return -1;
        fprintf(stderr, "filter: selectivity %g: %u allowed points, ground truth in %.2f s\n", o->sels[s],
                f.bucket_lt, bench_now() - t0);
        bench_data fd = *d;            /* the same data, scored against the filtered truth */
        fd.gt = gt;
        fd.gt_rows = d->nq;
        fd.gt_k = o->k;
        int rc = bench_sweep(engines, n_engines, o, &fd, &f, rows, n_rows, err, errlen);
        /* Leave no engine holding the filter (it points into bits). */
        for (size_t i = 0; i < n_engines; i++)
            if (engines[i].ops->set_filter) engines[i].ops->set_filter(engines[i].e, NULL, err, errlen);
        free(bits);
        free(gt);
        if (rc != 0) return -1;
    }
    return 0;
}
