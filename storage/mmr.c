/*
 * storage/mmr.c -- qv_mmr: maximal marginal relevance over the hits of a search.
 *
 * Qdrant's definition (its "mmr" query): pick greedily the hit that maximizes
 * (1 - diversity) * relevance - diversity * (its highest similarity to the hits already
 * picked), the first pick being the most relevant. Relevance is the search's score made
 * "larger is closer" (for l2, minus the distance); similarity between two stored vectors
 * is the same, from the index's distance kernels (cosine vectors normalized first, as
 * the index holds them). Vectors are read with qv_get, one read transaction each; a hit
 * whose point was deleted since the search is dropped.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/distance.h"
#include "core/error.h"
#include "storage/filter.h"

int qv_mmr(qv_coll *c, double diversity, size_t want, qv_hit *hits, size_t *n)
{
    if (!c || !hits || !n) return qv_fail(QV_EINVAL, "qv_mmr: collection, hits and n are required");
    if (!(diversity >= 0 && diversity <= 1)) return qv_fail(QV_EINVAL, "mmr diversity must be 0..1, got %g", diversity);
    size_t dim = c->params.dim, m = 0, picked = 0;
    qv_metric metric = c->params.metric;
    qv_dist_fn dist = qv_metric_dist_fn(metric);
    float *v = qv_calloc(*n ? *n * dim : 1, sizeof *v);
    double *best = qv_calloc(*n ? *n : 1, sizeof *best);   /* highest similarity to the picked */
    int rc = v && best ? QV_OK : QV_ENOMEM;
    for (size_t i = 0; rc == QV_OK && i < *n; i++) {
        if ((rc = qv_get(c, hits[i].id, v + m * dim, NULL)) == QV_ENOTFOUND) {
            rc = QV_OK;                            /* deleted since the search */
        } else if (rc == QV_OK) {
            if (metric == QV_METRIC_COSINE) qv_normalize(v + m * dim, dim);
            hits[m++] = hits[i];
        }
    }
    for (size_t i = 0; i < m; i++) best[i] = -INFINITY;
    for (; rc == QV_OK && picked < want && picked < m; picked++) {
        size_t arg = picked;
        double top = -INFINITY;
        for (size_t i = picked; i < m; i++) {
            double rel = metric == QV_METRIC_L2 ? -sqrt(hits[i].score > 0 ? hits[i].score : 0) : hits[i].score;
            double val = picked == 0 ? rel : (1 - diversity) * rel - diversity * best[i];
            if (val > top) top = val, arg = i;
        }
        qv_hit th = hits[picked];                  /* the pick moves to the front */
        double tb = best[picked];
        hits[picked] = hits[arg], hits[arg] = th;
        best[picked] = best[arg], best[arg] = tb;
        for (size_t j = 0; j < dim; j++) {
            float t = v[picked * dim + j];
            v[picked * dim + j] = v[arg * dim + j], v[arg * dim + j] = t;
        }
        for (size_t i = picked + 1; i < m; i++) {
            double d = dist(v + i * dim, v + picked * dim, dim);
            double sim = metric == QV_METRIC_L2 ? -sqrt(d > 0 ? d : 0) : -d;
            if (sim > best[i]) best[i] = sim;
        }
    }
    *n = rc == QV_OK ? picked : 0;
    qv_free(v);
    qv_free(best);
    return rc;
}
