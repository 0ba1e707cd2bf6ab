/*
 * index/ivf_codes.c -- IVF on codes (qv_index_params.quant != NONE): each inverted list
 * keeps, beside its float vectors, their codes in the layout a scan reads
 * (index/code_rows.h: sq8 and bit1 rows, sq4 fast-scan blocks of 32). A query ranks the
 * vectors of its probed lists by estimate into a heap of R = ceil(k * oversampling)
 * candidates, and only those R read their float vectors for the exact distance; the best
 * k of them are returned. For 1-bit codes the estimator's error bound prunes the
 * re-score: candidates go in estimate order, and one whose estimate minus its bound
 * already loses to the k-th exact distance is skipped. rescore OFF returns the k best
 * estimates; rescore ALL scans the floats of the probed lists (the float IVF search).
 *
 * The codec is trained by qv_index_train on the same sample as the centroids (the index
 * is empty then, so nothing is re-encoded); a loaded index re-encodes its lists.
 */
#include "index/ivf.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/distance.h"
#include "core/error.h"

int qv_ivf_codes_create(qv_ivf *v, const qv_index_params *p)
{
    if (p->quant == QV_QUANT_NONE) return QV_OK;
    int rc = qv_codec_new(p->quant, (uint32_t)v->dim, v->metric, p->seed, &v->codec);
    if (rc != QV_OK) return rc;
    v->enc_row = qv_malloc(qv_code_rows_tmp_bytes(v->codec));
    v->enc_tmp = qv_malloc(qv_codec_scratch_floats(v->codec) * sizeof(float));
    return v->enc_row && v->enc_tmp ? QV_OK : QV_ENOMEM;
}

void qv_ivf_codes_destroy(qv_ivf *v)
{
    qv_codec_free(v->codec);
    qv_free(v->enc_row);
    qv_free(v->enc_tmp);
    v->codec = NULL;
    v->enc_row = NULL;
    v->enc_tmp = NULL;
}

void qv_ivf_codes_put(qv_ivf *v, uint32_t l, uint32_t pos)
{
    qv_ivf_list *L = &v->lists[l];
    qv_code_rows_put(&L->codes, v->codec, pos, L->vecs + (size_t)pos * v->dim, v->enc_row, v->enc_tmp);
}

void qv_ivf_codes_encode_all(qv_ivf *v)
{
    for (uint32_t l = 0; l < v->nlist; l++)
        for (uint32_t pos = 0; pos < v->lists[l].len; pos++) qv_ivf_codes_put(v, l, pos);
}

size_t qv_ivf_codes_memory(const qv_ivf *v)
{
    size_t bytes = 0;
    if (!v->codec) return 0;
    for (uint32_t l = 0; l < v->nlist; l++) bytes += qv_code_rows_bytes(v->codec, v->lists[l].codes.cap);
    return bytes + qv_codec_memory(v->codec);
}

/* ---- search ------------------------------------------------------------------------ */

typedef struct {
    const qv_ivf *v;
    qv_ivf_scratch *s;
    qv_code_scan cs;
    qv_ivf_filter f;
    int failed;                    /* the estimate buffer could not grow */
} code_ctx;

/* Estimates of list l into tk; candidate ids are list << 32 | position. */
static size_t scan_codes(void *arg, uint32_t l, qv_topk *tk)
{
    code_ctx *c = arg;
    const qv_ivf_list *L = &c->v->lists[l];
    qv_ivf_scratch *s = c->s;
    size_t len = L->len, need = (len + QV_FASTSCAN_BLOCK - 1) / QV_FASTSCAN_BLOCK * QV_FASTSCAN_BLOCK;
    if (len == 0) return 0;
    if (s->est_cap < need) {
        float *e = qv_reallocarray(s->est, need, sizeof *e);
        if (!e) {
            c->failed = 1;
            return 0;
        }
        s->est = e;
        s->est_cap = need;
    }
    qv_code_rows_estimate(&L->codes, &c->cs, 0, len, s->est);
    float bound = qv_topk_bound(tk);
    for (size_t j = 0; j < len; j++) {
        float d = s->est[j];
        if (d > bound || (c->f.any && !qv_ivf_filter_pass(&c->f, L->ids[j]))) continue;
        if (qv_topk_push(tk, d, (uint64_t)l << 32 | j)) bound = qv_topk_bound(tk);
    }
    return len;
}

static int scratch_fit(const qv_codec *codec, qv_ivf_scratch *s, size_t R)
{
    size_t qb = qv_code_scan_bytes(codec), qf = qv_code_scan_scratch_floats(codec);
    if (s->qbuf_bytes < qb) {
        qv_free(s->qbuf);
        s->qbuf_bytes = 0;
        if (!(s->qbuf = qv_aligned_calloc(1, qb))) return QV_ENOMEM;
        s->qbuf_bytes = qb;
    }
    if (s->qtmp_floats < qf) {
        float *t = qv_reallocarray(s->qtmp, qf, sizeof *t);
        if (!t) return QV_ENOMEM;
        s->qtmp = t;
        s->qtmp_floats = qf;
    }
    if (s->cand_cap < R) {
        qv_pair *p = qv_reallocarray(s->cand, R, sizeof *p);
        if (!p) return QV_ENOMEM;
        s->cand = p;
        s->cand_cap = R;
    }
    return QV_OK;
}

static inline const float *cand_vec(const qv_ivf *v, uint64_t c)
{
    return v->lists[c >> 32].vecs + (size_t)(c & 0xffffffffu) * v->dim;
}

static inline uint64_t cand_id(const qv_ivf *v, uint64_t c) { return v->lists[c >> 32].ids[c & 0xffffffffu]; }

int qv_ivf_search_codes(const qv_ivf *v, const float *q, const qv_search_params *sp, qv_ivf_scratch *s,
                        qv_hit *hits, size_t *n_hits)
{
    const qv_codec *codec = v->codec;
    const size_t k = sp->k, dim = v->dim;
    const int rescore = sp->rescore != QV_RESCORE_OFF;
    float over = sp->oversampling > 0 ? sp->oversampling : qv_code_scan_oversampling(codec->kind);
    size_t R = rescore ? (size_t)ceilf((float)k * over) : k;
    if (R < k) R = k;
    int rc = scratch_fit(codec, s, R);
    if (rc != QV_OK) return rc;

    code_ctx c = {.v = v, .s = s};
    qv_ivf_filter_init(&c.f, sp);
    qv_code_scan_prepare(&c.cs, codec, q, s->qbuf, s->qtmp);
    qv_topk cand;
    qv_topk_init_with(&cand, s->cand, R);
    qv_ivf_probe(v, q, sp, s, &cand, scan_codes, &c);
    if (c.failed) return QV_ENOMEM;
    size_t nc = qv_topk_sort(&cand);

    if (!rescore) {
        for (size_t i = 0; i < nc; i++) {
            hits[i].id = cand_id(v, s->cand[i].id);
            hits[i].score = qv_score_from_dist(v->metric, s->cand[i].dist);
        }
        *n_hits = nc;
        return QV_OK;
    }

    const qv_kernels *kern = qv_kernels_get();
    qv_dist_fn dist = v->metric == QV_METRIC_L2 ? kern->l2sq : kern->neg_dot;
    const int prune = codec->kind == QV_QUANT_BIT1;
    const size_t lines = (dim * sizeof(float) + 63) / 64, ahead = 4;
    qv_topk tk;
    qv_topk_init_with(&tk, s->heap, k);
    for (size_t i = 0; i < nc && i < ahead; i++)
        for (size_t b = 0; b < lines; b++) __builtin_prefetch((const char *)cand_vec(v, s->cand[i].id) + 64 * b, 0, 3);
    for (size_t i = 0; i < nc; i++) {
        uint64_t cd = s->cand[i].id;
        if (i + ahead < nc)
            for (size_t b = 0; b < lines; b++)
                __builtin_prefetch((const char *)cand_vec(v, s->cand[i + ahead].id) + 64 * b, 0, 3);
        if (prune && tk.len >= k) {
            float lb = s->cand[i].dist - qv_code_rows_bound(&v->lists[cd >> 32].codes, &c.cs, cd & 0xffffffffu);
            if (lb > qv_topk_bound(&tk)) continue;
        }
        qv_topk_push(&tk, dist(q, cand_vec(v, cd), dim), cand_id(v, cd));
    }
    size_t len = qv_topk_sort(&tk);
    for (size_t i = 0; i < len; i++) {
        hits[i].id = tk.items[i].id;
        hits[i].score = qv_score_from_dist(v->metric, tk.items[i].dist);
    }
    *n_hits = len;
    return QV_OK;
}
