/*
 * core/fusion.c -- qv_fuse: merge ranked lists into one (hybrid search).
 *
 * Reciprocal Rank Fusion (Cormack, Clarke & Buettcher, SIGIR 2009): an id's fused score is
 * the sum over the lists that hold it of 1 / (rrf_k + rank), rank counted from 1 and
 * rrf_k = 60 as in the paper (Qdrant and Elasticsearch use 60 too). Weighted fusion: the
 * sum of weight * the id's score min-max normalised within its list (1 for a list whose
 * scores are all equal), the better end of the list mapping to 1 whatever the direction.
 *
 * Every (id, contribution) pair goes into one array sorted by id, so equal ids are
 * adjacent and summed; the sums are sorted in double precision (a float heap would tie
 * sums that differ in the 8th digit). O(m log m) for m input hits, at most a few thousand
 * (k <= QV_MAX_K per list).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "quiver.h"

#define RRF_K_DEFAULT 60u

void qv_fusion_params_init(qv_fusion_params *p, qv_fusion_kind kind, uint32_t k)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->rrf_k = RRF_K_DEFAULT;
    p->k = k;
}

typedef struct {
    uint64_t id;
    uint32_t list, rank;
    double add;
} contrib;

static int cmp_fused(const void *a, const void *b)
{
    const contrib *x = a, *y = b;
    if (x->add != y->add) return x->add > y->add ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_contrib(const void *a, const void *b)
{
    const contrib *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    if (x->list != y->list) return x->list < y->list ? -1 : 1;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

int qv_fuse(const qv_fusion_params *p, size_t nlists, const qv_hit *const *lists, const size_t *lens,
            const int *ascending, const double *weights, qv_hit *out, size_t *n_out)
{
    contrib *all = NULL;
    size_t m = 0, total = 0;
    int rc = QV_OK;

    if (n_out) *n_out = 0;
    if (!p || !out || !n_out || (nlists && (!lists || !lens))) return qv_fail(QV_EINVAL, "fusion: NULL argument");
    if (p->kind != QV_FUSION_RRF && p->kind != QV_FUSION_WEIGHTED)
        return qv_fail(QV_EINVAL, "fusion: kind must be QV_FUSION_RRF or QV_FUSION_WEIGHTED, got %d", (int)p->kind);
    if (p->k < 1 || p->k > QV_MAX_K) return qv_fail(QV_EINVAL, "fusion: k must be 1..%u, got %u", QV_MAX_K, p->k);
    for (size_t l = 0; l < nlists; l++) {
        if (lens[l] && !lists[l]) return qv_fail(QV_EINVAL, "fusion: list %zu is NULL", l);
        if (weights && !isfinite(weights[l])) return qv_fail(QV_EINVAL, "fusion: weight %zu is not finite", l);
        total += lens[l];
    }
    uint32_t rrf_k = p->rrf_k ? p->rrf_k : RRF_K_DEFAULT;
    if (total && !(all = qv_reallocarray(NULL, total, sizeof *all))) return QV_ENOMEM;
    for (size_t l = 0; l < nlists; l++) {
        double lo = INFINITY, hi = -INFINITY, w = weights ? weights[l] : 1.0;
        for (size_t i = 0; i < lens[l]; i++) {
            double s = lists[l][i].score;
            if (s < lo) lo = s;
            if (s > hi) hi = s;
        }
        for (size_t i = 0; i < lens[l]; i++) {
            double s = lists[l][i].score, add;
            if (p->kind == QV_FUSION_RRF) add = 1.0 / ((double)rrf_k + (double)(i + 1));
            else if (!(hi > lo)) add = w;          /* all equal (or NaN): each counts whole */
            else add = w * ((ascending && ascending[l]) ? (hi - s) / (hi - lo) : (s - lo) / (hi - lo));
            all[m++] = (contrib){lists[l][i].id, (uint32_t)l, (uint32_t)i, add};
        }
    }
    if (m) qsort(all, m, sizeof *all, cmp_contrib);
    size_t nu = 0;
    for (size_t i = 0; i < m;) {                   /* sums in place: all[0..nu) */
        size_t j = i;
        double sum = 0;
        for (; j < m && all[j].id == all[i].id; j++)
            if (j == i || all[j].list != all[j - 1].list) sum += all[j].add;   /* first place per list */
        all[nu].id = all[i].id;
        all[nu++].add = sum;
        i = j;
    }
    if (nu) qsort(all, nu, sizeof *all, cmp_fused);
    size_t n = nu < p->k ? nu : p->k;
    for (size_t i = 0; i < n; i++) out[i] = (qv_hit){all[i].id, (float)all[i].add};
    *n_out = n;
    qv_free(all);
    return rc;
}
