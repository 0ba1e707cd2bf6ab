/*
 * bench/bench_data.c -- the dataset of one benchmark run: base, queries and ground truth
 * read through the public vector-file readers, cross-checked (dimensions, ground-truth
 * rows and width, ids in range) before anything is built, the metric taken from --metric
 * or the dataset's README.md, and Recall@k.
 *
 * Recall@k = |returned top-k ∩ groundtruth[0..k)| / k, averaged over the queries (the
 * ann-benchmarks definition without distance-tie tolerance; the dataset READMEs state
 * how often ties occur). A filtered ground truth may hold fewer than k ids (-1 after
 * them); then the denominator is the number of ids it holds.
 */
#include "bench/bench.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void err_set(char *err, size_t errlen, const char *what, const char *path, int rc)
{
    const char *detail = qv_last_error();
    if (strstr(detail, path)) snprintf(err, errlen, "%s: %s (%s)", what, detail, qv_strerror(rc));
    else snprintf(err, errlen, "%s %s: %s (%s)", what, path, detail, qv_strerror(rc));
}

qv_metric bench_metric_from_readme(const char *text)
{
    size_t n = strlen(text);
    char *low = malloc(n + 1);
    qv_metric m = QV_METRIC_L2;
    if (!low) return m;
    for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)text[i]);
    if (strstr(low, "cosine") || strstr(low, "angular")) m = QV_METRIC_COSINE;
    else if ((strstr(low, "inner product") || strstr(low, "inner-product")) && !strstr(low, "l2") &&
             !strstr(low, "euclidean"))
        m = QV_METRIC_IP;
    free(low);
    return m;
}

/* Metric of the dataset: 1 when README.md was found and read. */
static int metric_from_dir(const char *dir, qv_metric *out)
{
    char path[4096], buf[65536];
    snprintf(path, sizeof path, "%s/README.md", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    /* A NUL inside the file ends the text early; that only makes detection more conservative. */
    *out = bench_metric_from_readme(buf);
    return 1;
}

static float *unit_copy(const float *v, size_t n, size_t dim)
{
    float *u = malloc(n * dim * sizeof *u);
    if (!u) return NULL;
    for (size_t i = 0; i < n; i++) {
        const float *src = v + i * dim;
        float *dst = u + i * dim;
        double s = 0;
        for (size_t j = 0; j < dim; j++) s += (double)src[j] * src[j];
        double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;   /* a zero vector stays zero */
        for (size_t j = 0; j < dim; j++) dst[j] = (float)(src[j] * inv);
    }
    return u;
}

int bench_data_load(const bench_opts *o, bench_data *d, char *err, size_t errlen)
{
    char path[4096];
    struct stat st;
    size_t qdim = 0;
    int rc;

    memset(d, 0, sizeof *d);
    if (stat(o->data_dir, &st) != 0) {
        snprintf(err, errlen, "data directory %s: %s", o->data_dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "data directory %s: not a directory", o->data_dir);
        return -1;
    }
    snprintf(path, sizeof path, "%s/base.fvecs", o->data_dir);
    if ((rc = qv_read_vectors(path, &d->base, &d->nb, &d->dim)) != QV_OK) { err_set(err, errlen, "base", path, rc); goto fail; }
    snprintf(path, sizeof path, "%s/query.fvecs", o->data_dir);
    if ((rc = qv_read_vectors(path, &d->query, &d->nq, &qdim)) != QV_OK) { err_set(err, errlen, "queries", path, rc); goto fail; }
    d->nb_file = d->nb;
    if (o->subset && o->subset < d->nb) {
        /* The first N rows, scored against the exact ground truth of those rows. */
        if (o->subset % 1000) {
            snprintf(err, errlen, "--subset %u: must be a multiple of 1000 (ground truth groundtruth-<N/1000>k.ivecs)",
                     o->subset);
            goto fail;
        }
        snprintf(path, sizeof path, "%s/groundtruth-%uk.ivecs", o->data_dir, o->subset / 1000);
        d->nb = o->subset;                 /* the rows past it stay allocated, unused */
    } else if (o->subset > d->nb) {
        snprintf(err, errlen, "--subset %u: base.fvecs holds only %zu vectors", o->subset, d->nb);
        goto fail;
    } else {
        snprintf(path, sizeof path, "%s/groundtruth.ivecs", o->data_dir);
    }
    if ((rc = qv_read_ivecs(path, &d->gt, &d->gt_rows, &d->gt_k)) != QV_OK) { err_set(err, errlen, "ground truth", path, rc); goto fail; }

    if (d->nb == 0 || d->nq == 0) {
        snprintf(err, errlen, "%s: %s", o->data_dir, d->nb == 0 ? "base.fvecs holds no vectors" : "query.fvecs holds no vectors");
        goto fail;
    }
    if (qdim != d->dim) {
        snprintf(err, errlen, "%s: dimension mismatch: base.fvecs has %zu, query.fvecs has %zu", o->data_dir, d->dim, qdim);
        goto fail;
    }
    if (o->max_queries && o->max_queries < d->nq) d->nq = o->max_queries;
    if (d->gt_rows < d->nq) {
        snprintf(err, errlen, "%s: %s has %zu rows, fewer than the %zu queries", o->data_dir, path, d->gt_rows, d->nq);
        goto fail;
    }
    if (o->k > d->gt_k) {
        snprintf(err, errlen, "%s: k = %u is larger than the ground truth width %zu", o->data_dir, o->k, d->gt_k);
        goto fail;
    }
    if (o->k > d->nb) {
        snprintf(err, errlen, "%s: k = %u is larger than the %zu base vectors", o->data_dir, o->k, d->nb);
        goto fail;
    }
    for (size_t q = 0; q < d->nq; q++)
        for (size_t j = 0; j < o->k; j++) {
            int32_t id = d->gt[q * d->gt_k + j];
            if (id < 0 || (size_t)id >= d->nb) {
                snprintf(err, errlen, "%s row %zu column %zu: id %d is not in 0..%zu", path, q, j, (int)id, d->nb - 1);
                goto fail;
            }
        }

    if (o->metric_given) {
        d->metric = o->metric;
        d->metric_source = "--metric";
    } else if (metric_from_dir(o->data_dir, &d->metric)) {
        d->metric_source = "README.md";
    } else {
        d->metric = QV_METRIC_L2;
        d->metric_source = "default";
    }
    if (o->vec_type == QV_VEC_U8) {
        /* Refused here, before a build: u8 holds integers 0..255 exactly and nothing else. */
        for (size_t i = 0; i < d->nb * d->dim; i++) {
            float x = d->base[i];
            if (x >= 0.0f && x <= 255.0f && x == (float)(int)x) continue;
            snprintf(err, errlen, "--vec-type u8: %s/base.fvecs row %zu column %zu is %g, not an integer 0..255",
                     o->data_dir, i / d->dim, i % d->dim, (double)x);
            goto fail;
        }
    }
    if (d->metric == QV_METRIC_COSINE) {
        d->base_unit = unit_copy(d->base, d->nb, d->dim);
        d->query_unit = unit_copy(d->query, d->nq, d->dim);
        if (!d->base_unit || !d->query_unit) { snprintf(err, errlen, "out of memory normalizing the vectors"); goto fail; }
    }
    return 0;
fail:
    bench_data_free(d);
    return -1;
}

void bench_data_free(bench_data *d)
{
    qv_free(d->base);
    qv_free(d->query);
    qv_free(d->gt);
    free(d->base_unit);
    free(d->query_unit);
    memset(d, 0, sizeof *d);
}

double bench_recall(const bench_data *d, size_t nq, const int64_t *ids, uint32_t k)
{
    size_t found = 0, wanted = 0;
    for (size_t q = 0; q < nq; q++) {
        const int32_t *truth = d->gt + q * d->gt_k;
        const int64_t *got = ids + q * k;
        for (uint32_t j = 0; j < k; j++) wanted += truth[j] >= 0;
        for (uint32_t i = 0; i < k; i++) {
            if (got[i] < 0) continue;
            /* Count each true neighbour once even if a library returned an id twice. */
            int dup = 0;
            for (uint32_t j = 0; j < i && !dup; j++) dup = got[j] == got[i];
            if (dup) continue;
            for (uint32_t j = 0; j < k; j++)
                if (truth[j] == got[i]) { found++; break; }
        }
    }
    return wanted ? (double)found / (double)wanted : 0.0;
}
