/*
 * tests/check_index_quant.c -- quantized indexes (qv_index_params.quant = sq8, sq4,
 * bit1): HNSW walking on codes, IVF with codes in its lists, flat scanning codes. Recall
 * on real data (siftsmall, l2; the first 10k of glove6b-100k, cosine) for each code
 * kind, with re-scoring against the float index at the same ef / nprobe and without it;
 * estimated distances against double-precision ones; the 4-bit fast-scan kernel against
 * a double reference; save/load round trips that give the same answers; a damaged code
 * section gives QV_ECORRUPT; removals; parameter checks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "core/fastscan.h"
#include "index/hnsw.h"
#include "index/index.h"
#include "tests/test_util.h"

typedef struct {
    float *base, *query;
    uint64_t *truth;               /* nq x K best rows */
    size_t n, nq, dim;
    qv_metric metric;
} dataset;

#define K 10

/* The first n_max rows of a set and its first nq_max queries; truth recomputed in double
 * (so a cut base is fine). 0 when the files are missing (SKIP; a failure under CI). */
static int load_set(dataset *d, const char *set, qv_metric metric, size_t n_max, size_t nq_max)
{
    char b[4096], q[4096];
    memset(d, 0, sizeof *d);
    if (!data_path(b, sizeof b, set, "base.fvecs") || !data_path(q, sizeof q, set, "query.fvecs")) {
        const char *ci = getenv("CI");
        ck_assert_msg(!(ci && strcmp(ci, "true") == 0), "dataset %s missing under CI (%s)", set, b);
        printf("SKIP: quant tests: %s not found (%s)\n", set, b);
        return 0;
    }
    size_t qd;
    QV_CK(qv_read_vectors(b, &d->base, &d->n, &d->dim));
    QV_CK(qv_read_vectors(q, &d->query, &d->nq, &qd));
    ck_assert_uint_eq(qd, d->dim);
    if (sanitized()) n_max = n_max < 2000 ? n_max : 2000, nq_max = nq_max < 30 ? nq_max : 30;
    if (d->n > n_max) d->n = n_max;
    if (d->nq > nq_max) d->nq = nq_max;
    d->metric = metric;
    d->truth = malloc(d->nq * K * sizeof *d->truth);
    ck_assert_ptr_nonnull(d->truth);
    ref_knn(d->base, d->n, d->dim, d->query, d->nq, K, metric, d->truth);
    return 1;
}

static void free_set(dataset *d)
{
    qv_free(d->base);
    qv_free(d->query);
    free(d->truth);
}

/* An index of kind over n vectors with ids first_id.. (an ivf one trained on them first,
 * nlist = n / 40). */
static qv_index *build_kind(qv_index_kind kind, qv_quant quant, qv_metric metric, uint32_t dim, size_t n,
                            const float *vecs, uint64_t first_id, uint64_t seed)
{
    qv_index_params p;
    qv_index_params_init(&p, kind, dim, metric);
    p.quant = quant;
    p.seed = seed;
    p.nlist = n >= 80 ? (uint32_t)(n / 40) : 2;
    qv_index *ix;
    QV_CK(qv_index_new(&p, &ix));
    if (kind == QV_INDEX_IVF) QV_CK(qv_index_train(ix, n, vecs));
    uint64_t *ids = malloc(n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++) ids[i] = first_id + i;
    QV_CK(qv_index_add(ix, n, ids, vecs));
    free(ids);
    return ix;
}

static qv_index *build(const dataset *d, qv_quant quant)
{
    return build_kind(QV_INDEX_HNSW, quant, d->metric, (uint32_t)d->dim, d->n, d->base, 0, 7);
}

/* qv_search_params.explore for recall() (test_bit1_explore sets it, and puts it back). */
static float explore_setting;

/* recall@K over the set's queries; hits (nq x K) kept when out is given. */
static double recall(const qv_index *ix, const dataset *d, uint32_t ef, qv_rescore rescore, qv_hit *out)
{
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    sp.ef = ef;
    sp.explore = explore_setting;
    sp.nprobe = ef;                /* ivf: ef stands for nprobe */
    sp.rescore = rescore;
    uint64_t *got = malloc(d->nq * K * sizeof *got);
    size_t *n_got = malloc(d->nq * sizeof *n_got);
    ck_assert(got && n_got);
    for (size_t i = 0; i < d->nq; i++) {
        qv_hit h[K];
        QV_CK(qv_index_search(ix, d->query + i * d->dim, &sp, h, &n_got[i]));
        for (size_t j = 0; j < n_got[i]; j++) got[i * K + j] = h[j].id;
        if (out) memcpy(out + i * K, h, n_got[i] * sizeof *h);
    }
    double r = recall_at_k(got, n_got, K, d->truth, K, d->nq, K);
    free(got);
    free(n_got);
    return r;
}

/* Exact scores of re-scored hits: the float distance, to rounding, against double. */
static void check_rescored_scores(const dataset *d, const qv_hit *hits)
{
    for (size_t i = 0; i < d->nq; i++)
        for (size_t j = 0; j < K; j++) {
            const float *q = d->query + i * d->dim, *x = d->base + hits[i * K + j].id * d->dim;
            double want = d->metric == QV_METRIC_L2 ? ref_l2sq(q, x, d->dim)
                          : d->metric == QV_METRIC_IP ? ref_dot(q, x, d->dim)
                                                      : ref_cosine(q, x, d->dim);
            double got = hits[i * K + j].score;
            ck_assert_msg(fabs(got - want) <= 1e-4 * fmax(1.0, fabs(want)), "query %zu hit %zu: score %g, exact %g",
                          i, j, got, want);
        }
}

/* For each kind: with re-scoring, recall within 0.005 of the float index at the same ef
 * (the bar) for sq8 and sq4; 1-bit estimates at 100-128 dimensions steer the
 * walk less well, and bit1 needs about 3x the beam (measured on the first 10k of
 * glove6b-100k: float 0.9925 at ef 64, bit1 0.956 at 64, 0.9955 at 192). Without
 * re-scoring, the estimates alone still find most neighbours. */
static void recall_per_kind(const dataset *d, uint32_t ef, const double no_rescore_min[4])
{
    qv_index *fl = build(d, QV_QUANT_NONE);
    double rf = recall(fl, d, ef, QV_RESCORE_DEFAULT, NULL);
    qv_index_free(fl);
    qv_hit *hits = malloc(d->nq * K * sizeof *hits);
    ck_assert_ptr_nonnull(hits);
    for (int kind = QV_QUANT_SQ8; kind <= QV_QUANT_BIT1; kind++) {
        qv_index *ix = build(d, (qv_quant)kind);
        uint32_t ef_q = kind == QV_QUANT_BIT1 ? 3 * ef : ef;
        double rr = recall(ix, d, ef_q, QV_RESCORE_ON, hits), rn = recall(ix, d, ef, QV_RESCORE_OFF, NULL);
        printf("quant %s, n %zu dim %zu: recall@10 float %.4f at ef %u, rescored %.4f at ef %u, estimates only %.4f\n",
               qv_quant_name((qv_quant)kind), d->n, d->dim, rf, ef, rr, ef_q, rn);
        ck_assert_msg(rr >= rf - 0.005, "%s: rescored recall %.4f at ef %u, float %.4f at ef %u",
                      qv_quant_name((qv_quant)kind), rr, ef_q, rf, ef);
        ck_assert_msg(rn >= no_rescore_min[kind], "%s: recall without rescore %.4f < %.2f",
                      qv_quant_name((qv_quant)kind), rn, no_rescore_min[kind]);
        check_rescored_scores(d, hits);
        qv_index_memory_info mi;
        qv_index_memory_detail(ix, &mi);
        ck_assert_uint_gt(mi.codes, 0);
        ck_assert_uint_le(mi.codes, mi.search);
        qv_index_free(ix);
    }
    free(hits);
}

START_TEST(test_recall_siftsmall)
{
    dataset d;
    if (!load_set(&d, "siftsmall", QV_METRIC_L2, 10000, 200)) return;
    const double min_est[4] = {0, 0.90, 0.70, 0.30};
    recall_per_kind(&d, 64, min_est);
    free_set(&d);
}
END_TEST

START_TEST(test_recall_glove_cosine)
{
    dataset d;
    if (!load_set(&d, "glove6b-100k", QV_METRIC_COSINE, 10000, 200)) return;
    const double min_est[4] = {0, 0.85, 0.60, 0.30};
    recall_per_kind(&d, 64, min_est);
    free_set(&d);
}
END_TEST

/* Estimates against double-precision distances on random data: SQ8 / SQ4 within their
 * quantization error; bit1 inside its error bound for nearly every pair. */
START_TEST(test_estimates_vs_double)
{
    static const uint32_t dims[] = {1, 7, 64, 100, 129, 300, 784, 1536};
    const size_t n = sanitized() ? 300 : 2000, nq = 5;
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        const uint32_t dim = dims[di];
        float *base = random_vectors(n, dim, 11 + dim), *qs = random_vectors(nq, dim, 97 + dim);
        for (int kind = QV_QUANT_SQ8; kind <= QV_QUANT_BIT1; kind++) {
            qv_index_params p;
            qv_index_params_init(&p, QV_INDEX_HNSW, dim, QV_METRIC_L2);
            p.quant = (qv_quant)kind;
            p.seed = 3;
            qv_index *ix;
            QV_CK(qv_index_new(&p, &ix));
            uint64_t *ids = malloc(n * sizeof *ids);
            for (size_t i = 0; i < n; i++) ids[i] = i;
            QV_CK(qv_index_add(ix, n, ids, base));
            free(ids);
            /* Without re-scoring at ef = n the returned scores are estimates of exact
             * distances; compare them with double. */
            qv_search_params sp;
            qv_search_params_init(&sp, K);
            sp.rescore = QV_RESCORE_OFF;
            double worst = 0, scale = 0;
            for (size_t i = 0; i < nq; i++) {
                qv_hit h[K];
                size_t nh;
                QV_CK(qv_index_search(ix, qs + i * dim, &sp, h, &nh));
                ck_assert_uint_eq(nh, K);
                for (size_t j = 0; j < nh; j++) {
                    double want = ref_l2sq(qs + i * dim, base + h[j].id * dim, dim);
                    worst = fmax(worst, fabs(h[j].score - want));
                    scale = fmax(scale, want);
                    ck_assert(isfinite(h[j].score));
                }
            }
            /* Relative to the distances involved, at least dim / 2 (random points lie
             * 2 dim / 3 apart on average; at tiny dims the nearest sit at ~0, and the
             * int8 query's rounding is relative to the whole range): sq8 rounds to 1/255
             * of each range, sq4 to 1/15, bit1 keeps one bit per dimension. */
            scale = fmax(scale, 0.5 * dim);
            double tol = kind == QV_QUANT_SQ8 ? 0.03 : kind == QV_QUANT_SQ4 ? 0.25 : 1.0;
            ck_assert_msg(worst <= tol * scale + 1e-3, "%s dim %u: estimate off by %g (distances up to %g)",
                          qv_quant_name((qv_quant)kind), dim, worst, scale);
            qv_index_free(ix);
        }
        free(base);
        free(qs);
    }
}
END_TEST

/* bit1 at any scale of the data: the query's centroid terms read the centroids in binary16
 * (codec_rabitq.c), scaled per centroid, so data of magnitude 1e-9 (below binary16's smallest)
 * or 1e9 (past its 65504) keeps its estimates: the 1-bit and the ex estimates lie inside
 * their bounds as often as at magnitude 1, against double-precision distances. */
START_TEST(test_bit1_any_scale)
{
    static const uint32_t dims[] = {100, 512};
    static const float scales[] = {1.0f, 1e-9f, 1e9f};     /* magnitude 1 first: the reference */
    size_t ref1 = 0, refx = 0;
    const size_t n = sanitized() ? 2048 : 4096, nq = 8;      /* 512 rows a centroid: 4 or 8 of them */
    for (size_t di = 0; di < 2; di++)
    for (size_t si = 0; si < 3; si++) {
        const uint32_t dim = dims[di];
        float *base = random_vectors(n, dim, 31 + dim), *qs = random_vectors(nq, dim, 77 + dim);
        for (size_t i = 0; i < n * dim; i++) base[i] *= scales[si];
        for (size_t i = 0; i < nq * dim; i++) qs[i] *= scales[si];
        qv_codec *c;
        QV_CK(qv_codec_new(QV_QUANT_BIT1, dim, QV_METRIC_L2, 5, &c));
        QV_CK(qv_codec_train(c, n, base));
        ck_assert_uint_ge(c->nclusters, 4);
        const size_t rs = (c->row_bytes + 63) & ~(size_t)63;
        uint8_t *rows = qv_aligned_calloc(n, rs), *ex = qv_aligned_calloc(n, c->ex_bytes);
        float *tmp = qv_malloc(qv_codec_scratch_floats(c) * sizeof *tmp);
        void *qbuf = qv_aligned_calloc(1, c->query_bytes);
        ck_assert(rows && ex && tmp && qbuf);
        for (size_t i = 0; i < n; i++) qv_codec_encode_ex(c, base + i * dim, rows + i * rs, ex + i * c->ex_bytes, tmp);
        size_t pairs = 0, out1 = 0, outx = 0;
        for (size_t qi = 0; qi < nq; qi++) {
            qv_codec_query *qq;
            qv_codec_query_prepare(c, qs + qi * dim, qbuf, tmp, &qq);
            for (size_t i = 0; i < n; i++) {
                double want = ref_l2sq(qs + qi * dim, base + i * dim, dim);
                double slack = 1e-4 * (want + (double)dim * scales[si] * scales[si]);   /* float rounding */
                float e1 = qv_codec_est(c, qq, rows + i * rs), b1 = qv_codec_bound(c, qq, rows + i * rs);
                float bx, ex_e = qv_codec_ex_est(c, qq, ex + i * c->ex_bytes, &bx);
                ck_assert_msg(isfinite(e1) && isfinite(b1) && isfinite(ex_e) && isfinite(bx),
                              "dim %u scale %g: estimate %g / %g, bound %g / %g", dim, (double)scales[si], (double)e1,
                              (double)ex_e, (double)b1, (double)bx);
                pairs++;
                out1 += fabs(e1 - want) > b1 + slack;
                outx += fabs(ex_e - want) > bx + slack;
            }
        }
        /* The 1-bit bound is a 1.9-sigma one (QV_RABITQ_EPS0): ~2% of pairs fall outside on
         * this uniform data; the ex bound ~0.05%. At other magnitudes, the same. */
        if (si == 0) ref1 = out1, refx = outx;
        ck_assert_msg(out1 <= pairs / 20 && outx <= pairs / 100, "dim %u scale %g: %zu 1-bit and %zu ex estimates of "
                      "%zu outside their bounds", dim, (double)scales[si], out1, outx, pairs);
        ck_assert_msg(out1 <= ref1 + pairs / 200 && outx <= refx + pairs / 200, "dim %u scale %g: %zu 1-bit and %zu "
                      "ex estimates outside their bounds, %zu and %zu at magnitude 1", dim, (double)scales[si], out1,
                      outx, ref1, refx);
        qv_free(rows);
        qv_free(ex);
        qv_free(tmp);
        qv_free(qbuf);
        qv_codec_free(c);
        free(base);
        free(qs);
    }
}
END_TEST

/* The second stage of bit1 codes (ex rows, index/codec.h: 8 bits, 4 from 512 dimensions) against double-precision
 * distances on random data, l2 and ip, at dims 1..1536, with every code kernel table this
 * CPU runs: the estimate lies inside its bound for >= 99% of pairs (the bound is 3 or 3.5
 * standard deviations), from 64 dimensions on never far outside it, and the bound is far
 * narrower than the 1-bit one it refines (4 bits at 3.5 sigma: ~0.2 of it; 8 bits ~0.01).
 * 4-bit rows take an integer dot product with the int8 query, so every table gives the
 * same estimate and bound, bit for bit. */
START_TEST(test_ex_estimates_vs_double)
{
    static const uint32_t dims[] = {1, 2, 7, 63, 64, 65, 100, 129, 300, 384, 511, 512, 784, 1024, 1536};
    const qv_code_kernels *tables[5] = {qv_code_kernels_scalar(), qv_code_kernels_avx2(), qv_code_kernels_avx512(),
                                        qv_code_kernels_avx512vnni(), qv_code_kernels_avx512vpopcnt()};
    const size_t n = sanitized() ? 200 : 1000, nq = 8;
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++)
    for (int mi = 0; mi < 2; mi++) {
        const uint32_t dim = dims[di];
        const qv_metric metric = mi ? QV_METRIC_IP : QV_METRIC_L2;
        float *base = random_vectors(n, dim, 21 + dim), *qs = random_vectors(nq, dim, 87 + dim);
        qv_codec *c;
        QV_CK(qv_codec_new(QV_QUANT_BIT1, dim, metric, 5, &c));
        QV_CK(qv_codec_train(c, n, base));
        ck_assert_uint_eq(c->ex_bytes % 64, 0);
        ck_assert_uint_eq(c->ex_bits, dim >= QV_RABITQ_EX4_MIN_DIM ? 4 : 8);
        ck_assert_uint_eq(c->ex_code_bytes, c->ex_bits == 4 ? qv_u4_bytes(c->rot.dpad) : c->rot.dpad);
        ck_assert_uint_ge(c->ex_bytes, c->ex_code_bytes + 24);
        ck_assert_uint_le(c->ex_bytes, c->ex_code_bytes + 24 + 63);
        const size_t rs = (c->row_bytes + 63) & ~(size_t)63;   /* rows are stored 64-byte aligned */
        uint8_t *rows = qv_aligned_calloc(n, rs), *ex = qv_aligned_calloc(n, c->ex_bytes);
        float *tmp = qv_malloc(qv_codec_scratch_floats(c) * sizeof *tmp);
        void *qbuf = qv_aligned_calloc(1, c->query_bytes);
        float *first = qv_malloc(2 * nq * n * sizeof *first);    /* the first table's estimates, bounds */
        int have_first = 0;
        ck_assert(rows && ex && tmp && qbuf && first);
        for (size_t i = 0; i < n; i++)
            qv_codec_encode_ex(c, base + i * dim, rows + i * rs, ex + i * c->ex_bytes, tmp);
        for (size_t ti = 0; ti < sizeof tables / sizeof *tables; ti++) {
            if (!tables[ti]) continue;                 /* this CPU lacks its instructions */
            c->k = tables[ti];
            size_t pairs = 0, outside = 0;
            double worst_excess = 0, ex_bound = 0, bit_bound = 0;
            for (size_t qi = 0; qi < nq; qi++) {
                qv_codec_query *qq;
                qv_codec_query_prepare(c, qs + qi * dim, qbuf, tmp, &qq);
                for (size_t i = 0; i < n; i++) {
                    const float *x = base + i * dim, *qv = qs + qi * dim;
                    double want = metric == QV_METRIC_L2 ? ref_l2sq(qv, x, dim) : -ref_dot(qv, x, dim);
                    float b, e = qv_codec_ex_est(c, qq, ex + i * c->ex_bytes, &b);
                    ck_assert(isfinite(e) && isfinite(b) && b >= 0);
                    float *fe = first + 2 * (qi * n + i);
                    if (!have_first) fe[0] = e, fe[1] = b;
                    else if (c->ex_bits == 4)
                        ck_assert_msg(e == fe[0] && b == fe[1], "%s dim %u: ex estimate %g bound %g, first table %g %g",
                                      tables[ti]->name, dim, (double)e, (double)b, (double)fe[0], (double)fe[1]);
                    double err = fabs(e - want), slack = 1e-4 * (fabs(want) + dim);   /* float rounding */
                    pairs++;
                    if (err > b + slack) outside++;
                    worst_excess = fmax(worst_excess, err - 2.0 * b - slack);
                    ex_bound += b;
                    bit_bound += qv_codec_bound(c, qq, rows + i * rs);
                }
                /* the walk's four-at-once estimates and bounds (explore) are the single ones */
                for (size_t i = 0; i + 4 <= n; i += 4) {
                    const uint8_t *r4[4] = {rows + i * rs, rows + (i + 1) * rs, rows + (i + 2) * rs, rows + (i + 3) * rs};
                    float e4[4], b4[4];
                    qv_codec_est_bound_x4(c, qq, r4, e4, b4);
                    for (int j = 0; j < 4; j++) {
                        float e1 = qv_codec_est(c, qq, r4[j]), b1 = qv_codec_bound(c, qq, r4[j]);
                        ck_assert_msg(fabsf(e4[j] - e1) <= 1e-5f * (fabsf(e1) + 1.0f) && b4[j] == b1,
                                      "dim %u row %zu: x4 estimate %g bound %g, single %g %g", dim, i + j,
                                      (double)e4[j], (double)b4[j], (double)e1, (double)b1);
                    }
                }
                /* eight at once: exactly two four-at-once calls, with and without bounds */
                for (size_t i = 0; i + 8 <= n; i += 8) {
                    const uint8_t *r8[8];
                    for (int j = 0; j < 8; j++) r8[j] = rows + (i + (size_t)j) * rs;
                    float e8[8], b8[8], o8[8], e4[8], b4[8];
                    qv_codec_est_bound_x8(c, qq, r8, e8, b8);
                    qv_codec_est_bound_x8(c, qq, r8, o8, NULL);
                    qv_codec_est_bound_x4(c, qq, r8, e4, b4);
                    qv_codec_est_bound_x4(c, qq, r8 + 4, e4 + 4, b4 + 4);
                    for (int j = 0; j < 8; j++)
                        ck_assert_msg(e8[j] == e4[j] && b8[j] == b4[j] && o8[j] == e4[j],
                                      "dim %u row %zu: x8 estimate %g bound %g (alone %g), x4 %g %g", dim, i + j,
                                      (double)e8[j], (double)b8[j], (double)o8[j], (double)e4[j], (double)b4[j]);
                }
            }
            have_first = 1;
            const char *mname = mi ? "ip" : "l2", *tname = tables[ti]->name;
            if (dim == 384 || dim == 784)
                printf("ex rows %s dim %u %s: %.2f%% outside the bound, bound %.3f of the 1-bit one\n", tname, dim,
                       mname, 100.0 * (double)outside / (double)pairs, ex_bound / bit_bound);
            ck_assert_msg(outside <= pairs / 100, "%s dim %u %s: %zu of %zu estimates outside the bound", tname, dim,
                          mname, outside, pairs);
            /* Under 64 dimensions the rotated residual spans only dim directions, its
             * rounding errors are not independent, and the tail is longer than normal. */
            ck_assert_msg(dim < 64 || worst_excess <= 0, "%s dim %u %s: an estimate off by more than twice its bound "
                          "(%g over)", tname, dim, mname, worst_excess);
            if (dim >= 64)
                ck_assert_msg(ex_bound < (c->ex_bits == 4 ? 0.25 : 0.02) * bit_bound, "%s dim %u: ex bound %g, 1-bit bound %g (summed)", tname,
                              dim, ex_bound, bit_bound);
        }
        qv_free(rows);
        qv_free(ex);
        qv_free(tmp);
        qv_free(qbuf);
        qv_free(first);
        qv_codec_free(c);
        free(base);
        free(qs);
    }
}
END_TEST

/* sq rows under ip: f0 is 0 and an estimate reads the code alone (row_read), so the walk
 * touches one cache line fewer at 384-d; under l2 it reads f0. Checked by spoiling f0 of a
 * copy of each row: under ip the estimate (one row and four) is unchanged and within the
 * quantization error of the double-precision -q.x; under l2 it moves by the change. */
START_TEST(test_sq_ip_reads_code_only)
{
    static const uint32_t dims[] = {7, 64, 100, 384, 784};
    static const qv_quant kinds[] = {QV_QUANT_SQ8, QV_QUANT_SQ4};
    const size_t n = 64;
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++)
    for (size_t ki = 0; ki < 2; ki++)
    for (int mi = 0; mi < 2; mi++) {
        const uint32_t dim = dims[di];
        const qv_metric metric = mi ? QV_METRIC_IP : QV_METRIC_L2;
        float *base = random_vectors(n, dim, 5 + dim), *q = random_vectors(1, dim, 9 + dim);
        qv_codec *c;
        QV_CK(qv_codec_new(kinds[ki], dim, metric, 1, &c));
        QV_CK(qv_codec_train(c, n, base));
        ck_assert_uint_eq(c->row_read, mi ? c->code_bytes : c->row_bytes);
        const size_t rs = (c->row_bytes + 63) & ~(size_t)63;
        uint8_t *rows = qv_aligned_calloc(n, rs), *spoilt = qv_aligned_calloc(n, rs);
        float *tmp = qv_malloc(qv_codec_scratch_floats(c) * sizeof *tmp + dim * sizeof *tmp);
        void *qbuf = qv_aligned_calloc(1, c->query_bytes);
        ck_assert(rows && spoilt && tmp && qbuf);
        const float bump = 1000.0f;
        const size_t f0_at = (size_t)((const uint8_t *)qv_codec_sq_factors(c, rows) - rows);
        for (size_t i = 0; i < n; i++) {
            qv_codec_encode(c, base + i * dim, rows + i * rs, tmp);
            memcpy(spoilt + i * rs, rows + i * rs, rs);
            float *f0 = (float *)(spoilt + i * rs + f0_at);
            *f0 = mi ? NAN : *f0 + bump;
        }
        qv_codec_query *qq;
        qv_codec_query_prepare(c, q, qbuf, tmp, &qq);
        double worst = 0, scale = 0;
        for (size_t i = 0; i + 4 <= n; i += 4) {
            const uint8_t *r4[4], *s4[4];
            for (int j = 0; j < 4; j++) r4[j] = rows + (i + j) * rs, s4[j] = spoilt + (i + j) * rs;
            float a4[4], b4[4];
            qv_codec_est_x4(c, qq, r4, a4);
            qv_codec_est_x4(c, qq, s4, b4);
            for (int j = 0; j < 4; j++) {
                float a = qv_codec_est(c, qq, r4[j]), b = qv_codec_est(c, qq, s4[j]);
                ck_assert(isfinite(a) && isfinite(b));
                float shift = mi ? 0.0f : bump;
                ck_assert_msg(fabsf(b - a - shift) <= 1e-3f * (fabsf(a) + bump) && fabsf(b4[j] - a4[j] - shift) <=
                              1e-3f * (fabsf(a) + bump), "%s dim %u %s: spoilt f0 moved the estimate %g -> %g",
                              qv_quant_name(kinds[ki]), dim, mi ? "ip" : "l2", (double)a, (double)b);
                const float *x = base + (i + j) * dim;
                double want = mi ? -ref_dot(q, x, dim) : ref_l2sq(q, x, dim);
                worst = fmax(worst, fabs(a - want));
                scale = fmax(scale, fabs(want));
            }
        }
        /* The same tolerance as test_estimates_vs_double's (sq4 rounds to 1/15 of a range). */
        double tol = kinds[ki] == QV_QUANT_SQ8 ? 0.03 : 0.25;
        ck_assert_msg(worst <= tol * scale + 1e-3, "%s dim %u %s: estimate off by %g (distances up to %g)",
                      qv_quant_name(kinds[ki]), dim, mi ? "ip" : "l2", worst, scale);
        qv_free(rows);
        qv_free(spoilt);
        qv_free(tmp);
        qv_free(qbuf);
        free(base);
        free(q);
        qv_codec_free(c);
    }
}
END_TEST

/* ---- persistence ------------------------------------------------------------------ */

static qv_index *small_index_kind(qv_index_kind kind, qv_quant quant, uint32_t dim, size_t n, float **vecs_out)
{
    float *v = random_vectors(n, dim, 5);
    *vecs_out = v;
    return build_kind(kind, quant, QV_METRIC_L2, dim, n, v, 1000, 9);
}


static void same_answers(const qv_index *a, const qv_index *b, const float *qs, size_t nq, uint32_t dim)
{
    for (int rs = QV_RESCORE_ON; rs <= QV_RESCORE_OFF; rs++) {
        qv_search_params sp;
        qv_search_params_init(&sp, K);
        sp.rescore = (qv_rescore)rs;
        for (size_t i = 0; i < nq; i++) {
            qv_hit ha[K], hb[K];
            size_t na, nb;
            QV_CK(qv_index_search(a, qs + i * dim, &sp, ha, &na));
            QV_CK(qv_index_search(b, qs + i * dim, &sp, hb, &nb));
            ck_assert_uint_eq(na, nb);
            for (size_t j = 0; j < na; j++) {
                ck_assert_uint_eq(ha[j].id, hb[j].id);
                ck_assert_float_eq(ha[j].score, hb[j].score);
            }
        }
    }
}

/* vec_type u8: a quantized HNSW index holding its vectors as bytes answers exactly as the
 * same index holding them as floats (ids and scores, re-scored or not), through inserts in
 * batches, removals with repair and re-adds, and a save/load round trip; values a byte
 * cannot hold exactly are refused, and so are the combinations u8 does not serve. */
static qv_index *u8_pair_index(qv_quant quant, qv_metric metric, uint32_t dim, qv_vec_type t)
{
    qv_index_params p;
    qv_index_params_init(&p, QV_INDEX_HNSW, dim, metric);
    p.quant = quant;
    p.vec_type = t;
    p.m = 8;
    p.ef_construction = 64;
    p.threads = 1;                             /* identical builds for both types */
    qv_index *ix;
    QV_CK(qv_index_new(&p, &ix));
    return ix;
}

static void u8_pair_add(qv_index *a, qv_index *b, const float *v, size_t from, size_t to, uint32_t dim)
{
    uint64_t *ids = malloc((to - from) * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = from; i < to; i++) ids[i - from] = 100 + i;
    QV_CK(qv_index_add(a, to - from, ids, v + from * dim));
    QV_CK(qv_index_add(b, to - from, ids, v + from * dim));
    free(ids);
}

typedef void (*answers_fn)(const qv_index *a, const qv_index *b, const float *qs, size_t nq, uint32_t dim);

/* Removal (graph repair reads rows) of the same 60 ids from both twins, then re-adding
 * them into the freed slots (a from va, b from vb), compared after each step. */
static void remove_and_readd(qv_index *a, qv_index *b, const float *va, const float *vb, const float *qs, size_t nq,
                             uint32_t dim, answers_fn answers)
{
    uint64_t rm[60];
    for (size_t i = 0; i < 60; i++) rm[i] = 100 + 7 * i;
    size_t nra, nrb;
    QV_CK(qv_index_remove(a, 60, rm, &nra));
    QV_CK(qv_index_remove(b, 60, rm, &nrb));
    ck_assert_uint_eq(nra, nrb);
    answers(a, b, qs, nq, dim);
    QV_CK(qv_index_add(a, 60, rm, va + 5 * dim));
    QV_CK(qv_index_add(b, 60, rm, vb + 5 * dim));
    answers(a, b, qs, nq, dim);
}

/* ix saved to memory and loaded back keeps vector type t and answers as twin does; returns
 * the saved bytes (len of them), for the caller to damage or free. */
static void *reloaded_same(const qv_index *ix, const char *name, qv_vec_type t, const qv_index *twin,
                           const float *qs, size_t nq, uint32_t dim, size_t *len)
{
    void *buf;
    qv_index *back = NULL;
    QV_CK(qv_index_save_mem(ix, &buf, len));
    QV_CK(qv_index_load_mem(buf, *len, name, &back));
    qv_index_params p;
    qv_index_get_params(back, &p);
    ck_assert_int_eq(p.vec_type, t);
    same_answers(twin, back, qs, nq, dim);
    qv_index_free(back);
    return buf;
}

/* Index kinds and codes a vector type other than f32 does not serve: QV_EINVAL, no index. */
static void refused_for(qv_vec_type t, const qv_index_kind *kinds, const qv_quant *quants, const qv_metric *metrics,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        qv_index_params p;
        qv_index *ix = NULL;
        qv_index_params_init(&p, kinds[i], 16, metrics[i]);
        p.quant = quants[i];
        p.vec_type = t;
        ck_assert_int_eq(qv_index_new(&p, &ix), QV_EINVAL);
        ck_assert_ptr_null(ix);
    }
}

START_TEST(test_u8_vectors)
{
    static const struct { qv_quant q; qv_metric m; uint32_t dim; } cases[] = {
        {QV_QUANT_BIT1, QV_METRIC_L2, 40}, {QV_QUANT_SQ8, QV_METRIC_L2, 40}, {QV_QUANT_SQ4, QV_METRIC_IP, 40},
        {QV_QUANT_BIT1, QV_METRIC_IP, 33}, {QV_QUANT_BIT1, QV_METRIC_L2, 520},   /* 4-bit ex rows */
    };
    const size_t n = 1500, nq = 25;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const uint32_t dim = cases[c].dim;
        const size_t nn = dim > 100 ? 600 : n;
        float *v = random_vectors(nn, dim, 11 + c), *qs = random_vectors(nq, dim, 12 + c);
        for (size_t i = 0; i < nn * dim; i++) v[i] = floorf(128.0f + 127.9f * v[i]);   /* integers 0..255 */
        for (size_t i = 0; i < nq * dim; i++) qs[i] = 128.0f + 140.0f * qs[i];        /* queries stay float */
        qv_index *f = u8_pair_index(cases[c].q, cases[c].m, dim, QV_VEC_F32);
        qv_index *u = u8_pair_index(cases[c].q, cases[c].m, dim, QV_VEC_U8);
        u8_pair_add(f, u, v, 0, nn / 2, dim);
        u8_pair_add(f, u, v, nn / 2, nn, dim);
        same_answers(f, u, qs, nq, dim);
        qv_index_memory_info mf, mu;
        qv_index_memory_detail(f, &mf);
        qv_index_memory_detail(u, &mu);
        ck_assert_uint_eq(mu.vectors * 4, mf.vectors);      /* a quarter, counted as held */
        remove_and_readd(f, u, v, v, qs, nq, dim, same_answers);
        /* Values a byte cannot hold: refused, nothing added. */
        const float bad[] = {0.5f, 256.0f, -1.0f, NAN, 254.999f};
        float *row = malloc(dim * sizeof *row);
        ck_assert_ptr_nonnull(row);
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            memcpy(row, v, dim * sizeof *row);
            row[dim / 2] = bad[b];
            uint64_t id = 999999;
            size_t before = qv_index_size(u);
            ck_assert_int_eq(qv_index_add(u, 1, &id, row), QV_EINVAL);
            /* NaN meets the finiteness check every index makes first */
            ck_assert_ptr_nonnull(strstr(qv_last_error(), isnan(bad[b]) ? "not finite" : "not an integer 0..255"));
            ck_assert_uint_eq(qv_index_size(u), before);
            ck_assert_int_eq(qv_index_add(f, 1, &id, row), isnan(bad[b]) ? QV_EINVAL : QV_OK);   /* f32 takes it */
            if (!isnan(bad[b])) { size_t r; QV_CK(qv_index_remove(f, 1, &id, &r)); }
        }
        free(row);
        /* Save/load keeps the type and the answers. */
        size_t len;
        qv_index *back = NULL;
        void *buf = reloaded_same(u, "u8", QV_VEC_U8, f, qs, nq, dim, &len);
        /* An unknown type at offset 68 of the header (checksum made right again): corrupt. */
        if (c == 0) {
            uint32_t t = 7, crc;
            memcpy((char *)buf + 68, &t, 4);
            crc = qv_crc32c(0, buf, len - 4);
            memcpy((char *)buf + len - 4, &crc, 4);
            ck_assert_int_eq(qv_index_load_mem(buf, len, "bad type", &back), QV_ECORRUPT);
        }
        free(buf);
        qv_index_free(f);
        qv_index_free(u);
        free(v);
        free(qs);
    }
    /* Combinations u8 does not serve. */
    refused_for(QV_VEC_U8, (const qv_index_kind[]){QV_INDEX_HNSW, QV_INDEX_FLAT, QV_INDEX_IVF, QV_INDEX_HNSW},
                (const qv_quant[]){QV_QUANT_NONE, QV_QUANT_SQ8, QV_QUANT_BIT1, QV_QUANT_BIT1},
                (const qv_metric[]){QV_METRIC_L2, QV_METRIC_L2, QV_METRIC_L2, QV_METRIC_COSINE}, 4);
    qv_vec_type t;
    QV_CK(qv_vec_type_parse("u8", &t));
    ck_assert_int_eq(t, QV_VEC_U8);
    ck_assert_str_eq(qv_vec_type_name(QV_VEC_F32), "f32");
    ck_assert_int_eq(qv_vec_type_parse("int8", &t), QV_EINVAL);
}
END_TEST

/* The f16 cosine index h against its f32 twin f under ip: h normalizes each query again
 * (its twin takes them as given), which can move a value by an ulp, so the ids of the best
 * K agree but for near-ties (at least 95% of them) and the scores of the ids both return
 * agree to 1e-5. (Under l2 and ip the twins give the same answers: same_answers.) */
static void f16_cosine_answers(const qv_index *f, const qv_index *h, const float *qs, size_t nq, uint32_t dim)
{
    size_t both = 0, total = 0;
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    for (size_t i = 0; i < nq; i++) {
        qv_hit ha[K], hb[K];
        size_t na, nb;
        QV_CK(qv_index_search(f, qs + i * dim, &sp, ha, &na));
        QV_CK(qv_index_search(h, qs + i * dim, &sp, hb, &nb));
        ck_assert_uint_eq(na, nb);
        total += na;
        for (size_t j = 0; j < na; j++)
            for (size_t t = 0; t < nb; t++)
                if (ha[j].id == hb[t].id) {
                    both++;
                    ck_assert_msg(fabsf(ha[j].score - hb[t].score) <= 1e-5f, "id %llu: %.9g vs %.9g",
                                  (unsigned long long)ha[j].id, (double)ha[j].score, (double)hb[t].score);
                }
    }
    ck_assert_msg(both * 100 >= total * 95, "%zu of %zu ids agree", both, total);
}

/* vec_type f16: a quantized HNSW index holding its vectors as halves answers exactly as the
 * same index holding the halves' values as floats (the values are rounded once, on add, and
 * the codes and the graph come from the rounded vectors), through removals, re-adds and a
 * save/load round trip, for l2, ip and cosine; values beyond a half's range are refused,
 * and so are the combinations f16 does not serve. */
START_TEST(test_f16_vectors)
{
    static const struct { qv_quant q; qv_metric m; uint32_t dim; } cases[] = {
        {QV_QUANT_BIT1, QV_METRIC_L2, 40}, {QV_QUANT_SQ8, QV_METRIC_IP, 40}, {QV_QUANT_BIT1, QV_METRIC_COSINE, 33},
        {QV_QUANT_BIT1, QV_METRIC_COSINE, 520}, {QV_QUANT_SQ4, QV_METRIC_L2, 40},
    };
    const size_t n = 1500, nq = 25;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const uint32_t dim = cases[c].dim;
        const size_t nn = dim > 100 ? 600 : n;
        float *v = random_vectors(nn, dim, 31 + c), *qs = random_vectors(nq, dim, 32 + c);
        for (size_t i = 0; i < nn * dim; i++) v[i] *= 3.0f;
        float *vh = malloc(nn * dim * sizeof *vh);       /* what the f32 index is given */
        ck_assert_ptr_nonnull(vh);
        memcpy(vh, v, nn * dim * sizeof *vh);
        if (cases[c].m == QV_METRIC_COSINE)
            for (size_t i = 0; i < nn; i++) qv_normalize(vh + i * dim, dim);
        size_t changed = 0;
        for (size_t i = 0; i < nn * dim; i++) {
            float r = qv_f16_to_float(qv_f16_from_float(vh[i]));
            changed += r != vh[i];
            vh[i] = r;
        }
        ck_assert_uint_gt(changed, nn * dim / 2);          /* the rounding is real */
        /* cosine: the twin holds the rounded unit vectors under ip (normalizing them again
         * would move them off the halves); the queries are unit vectors, scored alike. */
        const int cos = cases[c].m == QV_METRIC_COSINE;
        if (cos)
            for (size_t i = 0; i < nq; i++) qv_normalize(qs + i * dim, dim);
        qv_index *f = u8_pair_index(cases[c].q, cos ? QV_METRIC_IP : cases[c].m, dim, QV_VEC_F32);
        qv_index *h = u8_pair_index(cases[c].q, cases[c].m, dim, QV_VEC_F16);
        uint64_t *ids = malloc(nn * sizeof *ids);
        ck_assert_ptr_nonnull(ids);
        for (size_t i = 0; i < nn; i++) ids[i] = 100 + i;
        for (size_t half = 0; half < 2; half++) {
            size_t from = half * (nn / 2), to = half ? nn : nn / 2;
            QV_CK(qv_index_add(f, to - from, ids + from, vh + from * dim));
            QV_CK(qv_index_add(h, to - from, ids + from, v + from * dim));
        }
        (cos ? f16_cosine_answers : same_answers)(f, h, qs, nq, dim);
        qv_index_memory_info mf, mh;
        qv_index_memory_detail(f, &mf);
        qv_index_memory_detail(h, &mh);
        ck_assert_uint_eq(mh.vectors * 2, mf.vectors);      /* half, counted as held */
        remove_and_readd(f, h, vh, v, qs, nq, dim, cos ? f16_cosine_answers : same_answers);
        /* Beyond a half: refused with nothing added (cosine rows are unit vectors: any
         * finite value is scaled into range). */
        const float bad[] = {65520.0f, -1e6f, INFINITY};
        float *row = malloc(dim * sizeof *row);
        ck_assert_ptr_nonnull(row);
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            memcpy(row, v, dim * sizeof *row);
            row[dim / 2] = bad[b];
            uint64_t id = 999999;
            size_t before = qv_index_size(h);
            int want = cases[c].m == QV_METRIC_COSINE && isfinite(bad[b]) ? QV_OK : QV_EINVAL;
            ck_assert_int_eq(qv_index_add(h, 1, &id, row), want);
            if (want == QV_OK) {
                size_t r;
                QV_CK(qv_index_remove(h, 1, &id, &r));
                continue;
            }
            ck_assert_ptr_nonnull(strstr(qv_last_error(), isfinite(bad[b]) ? "range of a half" : "not finite"));
            ck_assert_uint_eq(qv_index_size(h), before);
        }
        row[dim / 2] = 65504.0f;                            /* the largest half: taken */
        uint64_t id = 999998;
        QV_CK(qv_index_add(h, 1, &id, row));
        size_t r;
        QV_CK(qv_index_remove(h, 1, &id, &r));
        free(row);
        size_t len;
        free(reloaded_same(h, "f16", QV_VEC_F16, h, qs, nq, dim, &len));
        qv_index_free(f);
        qv_index_free(h);
        free(ids);
        free(v);
        free(vh);
        free(qs);
    }
    refused_for(QV_VEC_F16, (const qv_index_kind[]){QV_INDEX_HNSW, QV_INDEX_FLAT, QV_INDEX_IVF},
                (const qv_quant[]){QV_QUANT_NONE, QV_QUANT_SQ8, QV_QUANT_BIT1},
                (const qv_metric[]){QV_METRIC_L2, QV_METRIC_L2, QV_METRIC_L2}, 3);
    qv_vec_type t;
    QV_CK(qv_vec_type_parse("f16", &t));
    ck_assert_int_eq(t, QV_VEC_F16);
    ck_assert_str_eq(qv_vec_type_name(QV_VEC_F16), "f16");
}
END_TEST

static const qv_index_kind all_kinds[] = {QV_INDEX_HNSW, QV_INDEX_IVF, QV_INDEX_FLAT};

START_TEST(test_save_load_roundtrip)
{
    const uint32_t dim = 40;
    for (int ik = 0; ik < 3; ik++)
    for (int kind = QV_QUANT_SQ8; kind <= QV_QUANT_BIT1; kind++) {
        float *v;
        qv_index *ix = small_index_kind(all_kinds[ik], (qv_quant)kind, dim, 3000, &v), *back = NULL;
        char *dir = make_tmpdir("qv-quant");
        char path[4096];
        snprintf(path, sizeof path, "%s/ix.qvi", dir);
        QV_CK(qv_index_save(ix, path));
        QV_CK(qv_index_load(path, &back));
        qv_index_params p;
        qv_index_get_params(back, &p);
        ck_assert_int_eq(p.quant, kind);
        qv_index_memory_info ma, mb;
        qv_index_memory_detail(ix, &ma);
        qv_index_memory_detail(back, &mb);
        ck_assert_uint_eq(ma.codes, mb.codes);
        same_answers(ix, back, v, 20, dim);
        qv_index_free(back);
        /* In memory (the form collection snapshots carry) as well. */
        void *buf;
        size_t len;
        QV_CK(qv_index_save_mem(ix, &buf, &len));
        QV_CK(qv_index_load_mem(buf, len, "mem", &back));
        same_answers(ix, back, v, 20, dim);
        qv_index_free(back);
        qv_free(buf);
        rm_rf(dir);
        free(dir);
        qv_index_free(ix);
        free(v);
    }
}
END_TEST

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(p, v);
}

static void fix_crc(uint8_t *b, size_t len)
{
    put_u32(b + len - 4, qv_crc32c(0, b, len - 4));
}

static void expect_corrupt(const uint8_t *b, size_t len, const char *what)
{
    qv_index *back = NULL;
    int rc = qv_index_load_mem(b, len, what, &back);
    ck_assert_msg(rc == QV_ECORRUPT && back == NULL, "%s: %s (%s)", what, qv_strerror(rc), qv_last_error());
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Offset of the bit1 hnsw file's ex row section (index/hnsw_io.c: a page-aligned "VECX"
 * tag, the vectors from the next page, then u32 format, ex_bytes, count, CRC32C and the
 * rows); 0 when the file has none. */
static size_t ex_section(const uint8_t *b, size_t len, uint32_t dim)
{
    const uint32_t n = get_u32(b + QV_INDEX_HEADER_BYTES);
    for (size_t off = 4096; off + 8 <= len; off += 4096)
        if (memcmp(b + off, "VECX\0\0\0\0", 8) == 0) return off + 4096 + (size_t)n * dim * sizeof(float);
    return 0;
}

static void expect_corrupt_msg(const uint8_t *b, size_t len, const char *what, const char *msg)
{
    expect_corrupt(b, len, what);
    ck_assert_msg(strstr(qv_last_error(), msg), "%s: message '%s' lacks '%s'", what, qv_last_error(), msg);
}

/* A bit1 hnsw index stores its ex rows (format version 4): a load takes them as saved
 * (byte for byte what the index had, same answers) instead of re-encoding; a version 3
 * file (no section) still loads, re-encodes them and answers the same; a damaged or
 * truncated section, with the file's CRC made to match, is QV_ECORRUPT naming the ex rows. */
START_TEST(test_ex_rows_persisted)
{
    const uint32_t dim = _i ? 520 : 40, n = 1500;             /* 8-bit, 4-bit rows */
    float *v;
    qv_index *ix = small_index_kind(QV_INDEX_HNSW, QV_QUANT_BIT1, dim, n, &v), *back = NULL;
    const qv_hnsw *h = ix->impl;
    ck_assert_ptr_nonnull(h->xcodes);
    void *buf;
    size_t len;
    QV_CK(qv_index_save_mem(ix, &buf, &len));
    const uint8_t *orig = buf;
    ck_assert_uint_eq(get_u32(orig + 4), QV_INDEX_FORMAT_VERSION);
    const size_t sec = ex_section(orig, len, dim), rows = sec + 16, xb = h->ex_bytes;
    ck_assert_uint_gt(sec, 0);
    ck_assert_uint_eq(get_u32(orig + sec), _i ? 4 : 8);
    ck_assert_uint_eq(get_u32(orig + sec + 4), xb);
    ck_assert_uint_eq(get_u32(orig + sec + 8), n);
    ck_assert_uint_le(rows + (size_t)n * xb, len - 4);
    ck_assert(memcmp(orig + rows, h->xcodes, (size_t)n * xb) == 0);

    /* Round trip: the same rows, the same answers. */
    QV_CK(qv_index_load_mem(orig, len, "intact", &back));
    ck_assert(memcmp(((const qv_hnsw *)back->impl)->xcodes, h->xcodes, (size_t)n * xb) == 0);
    same_answers(ix, back, v, 30, dim);
    qv_index_free(back);

    /* Version 3: "VECS", no section; the rows are re-encoded, identical. */
    uint8_t *bad = malloc(len);
    ck_assert_ptr_nonnull(bad);
    const size_t cut = 16 + (size_t)n * xb, len3 = len - cut;
    memcpy(bad, orig, sec);
    memcpy(bad + sec, orig + sec + cut, len - sec - cut);
    put_u32(bad + 4, 3);
    memcpy(bad + (sec - 4096 - (size_t)n * dim * sizeof(float)), "VECS", 4);
    fix_crc(bad, len3);
    QV_CK(qv_index_load_mem(bad, len3, "version 3", &back));
    ck_assert(memcmp(((const qv_hnsw *)back->impl)->xcodes, h->xcodes, (size_t)n * xb) == 0);
    same_answers(ix, back, v, 30, dim);
    qv_index_free(back);

    /* Rows of another format (a newer build's): skipped and re-encoded. */
    memcpy(bad, orig, len);
    put_u32(bad + sec, 12);
    fix_crc(bad, len);
    QV_CK(qv_index_load_mem(bad, len, "other format", &back));
    ck_assert(memcmp(((const qv_hnsw *)back->impl)->xcodes, h->xcodes, (size_t)n * xb) == 0);
    qv_index_free(back);

    /* Damage, the file's CRC recomputed: a flipped bit in the rows (their own CRC), the
     * count, the stored CRC, a row's NaN factor or far centroid with both CRCs fixed, and
     * cuts through the section. */
    for (size_t off = rows; off < rows + (size_t)n * xb; off += 997) {
        memcpy(bad, orig, len);
        bad[off] ^= 0x04;
        fix_crc(bad, len);
        expect_corrupt_msg(bad, len, "flip in ex rows", "ex rows checksum");
    }
    memcpy(bad, orig, len);
    put_u32(bad + sec + 8, n - 1);
    fix_crc(bad, len);
    expect_corrupt_msg(bad, len, "ex row count", "ex rows for");
    memcpy(bad, orig, len);
    put_u32(bad + sec + 12, get_u32(orig + sec + 12) ^ 1u);
    fix_crc(bad, len);
    expect_corrupt_msg(bad, len, "ex rows crc", "ex rows checksum");
    const size_t fat = h->codec->ex_code_bytes;
    for (int what = 0; what < 2; what++) {
        memcpy(bad, orig, len);
        uint8_t *row = bad + rows + 7 * xb;
        if (what == 0) put_f32(row + fat + 4, NAN);            /* step */
        else put_u32(row + fat + 20, 64);                      /* centroid */
        put_u32(bad + sec + 12, qv_crc32c(0, bad + rows, (size_t)n * xb));
        fix_crc(bad, len);
        expect_corrupt_msg(bad, len, "damaged ex row", "damaged ex row");
    }
    for (size_t c = sec; c < rows + (size_t)n * xb; c += (c < rows ? 3 : 4093)) {
        memcpy(bad, orig, c);
        fix_crc(bad, c + 4);
        expect_corrupt(bad, c + 4, "cut in ex rows");
    }
    free(bad);
    qv_free(buf);
    qv_index_free(ix);
    free(v);
}
END_TEST

/* The code section ends the file, before the CRC: u32 kind, u32 dim, u64 trained_on,
 * then sq: dim lo, dim step; bit1: u64 seed, u32 K, dim mean, K x dim centroids. Each
 * damage below keeps the CRC valid, so the loader's own checks must catch it. */
START_TEST(test_corrupt_code_section)
{
    const uint32_t dim = 24;
    for (int ik = 0; ik < 3; ik++)
    for (int kind = QV_QUANT_SQ8; kind <= QV_QUANT_BIT1; kind++) {
        float *v;
        qv_index *ix = small_index_kind(all_kinds[ik], (qv_quant)kind, dim, 1500, &v);
        void *buf;
        size_t len;
        QV_CK(qv_index_save_mem(ix, &buf, &len));
        const uint8_t *orig = buf;
        uint8_t *bad = malloc(len);
        ck_assert_ptr_nonnull(bad);
        size_t tail;
        if (kind == QV_QUANT_BIT1) {
            /* K is unknown from outside: find it from the length of the section. */
            tail = 0;
            for (uint32_t k = 1; k <= 64; k++) {
                size_t t = 16 + 8 + 4 + 4 * (size_t)dim * (1 + k);
                const uint8_t *p = orig + len - 4 - t;
                uint32_t kk = (uint32_t)p[24] | (uint32_t)p[25] << 8 | (uint32_t)p[26] << 16 | (uint32_t)p[27] << 24;
                if (kk == k && p[0] == QV_QUANT_BIT1 && p[4] == dim) { tail = t; break; }
            }
            ck_assert_uint_gt(tail, 0);
        } else {
            tail = 16 + 8 * (size_t)dim;
        }
        const size_t sec = len - 4 - tail;
        ck_assert_uint_eq(orig[sec], (unsigned)kind);
        ck_assert_uint_eq(orig[sec + 4], dim);

        /* The section as saved loads. */
        qv_index *back;
        QV_CK(qv_index_load_mem(orig, len, "intact", &back));
        qv_index_free(back);
        /* A flipped byte anywhere in the section: the checksum. */
        for (size_t off = sec; off < len - 4; off += 7) {
            memcpy(bad, orig, len);
            bad[off] ^= 0x10;
            expect_corrupt(bad, len, "flip in codes");
        }
        /* Cut anywhere in the section, checksum recomputed. */
        for (size_t cut = sec; cut < len - 4; cut += 5) {
            memcpy(bad, orig, cut);
            fix_crc(bad, cut + 4);
            expect_corrupt(bad, cut + 4, "cut in codes");
        }
        /* Another kind, another dim. */
        memcpy(bad, orig, len);
        put_u32(bad + sec, kind == QV_QUANT_SQ8 ? QV_QUANT_SQ4 : QV_QUANT_SQ8);
        fix_crc(bad, len);
        expect_corrupt(bad, len, "kind");
        memcpy(bad, orig, len);
        put_u32(bad + sec + 4, dim + 1);
        fix_crc(bad, len);
        expect_corrupt(bad, len, "dim");
        /* A training size above the limit. */
        memcpy(bad, orig, len);
        put_u32(bad + sec + 8, 0xffffffffu);
        fix_crc(bad, len);
        expect_corrupt(bad, len, "training size");
        /* NaN and infinite parameters. */
        size_t first = kind == QV_QUANT_BIT1 ? sec + 28 : sec + 16;
        memcpy(bad, orig, len);
        put_f32(bad + first, NAN);
        fix_crc(bad, len);
        expect_corrupt(bad, len, "nan");
        memcpy(bad, orig, len);
        put_f32(bad + len - 8, INFINITY);
        fix_crc(bad, len);
        expect_corrupt(bad, len, "inf");
        if (kind == QV_QUANT_BIT1) {
            for (uint32_t kk = 0; kk <= 65; kk += 65) {
                memcpy(bad, orig, len);
                put_u32(bad + sec + 24, kk);
                fix_crc(bad, len);
                expect_corrupt(bad, len, "centroid count");
            }
        } else {
            memcpy(bad, orig, len);
            put_f32(bad + sec + 16 + 4 * dim, -1.0f);         /* a negative step */
            fix_crc(bad, len);
            expect_corrupt(bad, len, "negative step");
        }
        /* The code section missing altogether while the header says quantized. */
        memcpy(bad, orig, sec);
        fix_crc(bad, sec + 4);
        expect_corrupt(bad, sec + 4, "no codes");
        free(bad);
        qv_free(buf);
        qv_index_free(ix);
        free(v);
    }
}
END_TEST

/* ---- parameters --------------------------------------------------------------------- */

/* Regression (issue 16, a 1M sq8 collection import took 702 s): past QV_CODEC_TRAIN_MAX
 * vectors the training sample is every stride-th vector, under 64K of them, and the
 * retraining rule "n >= 2 x sample" then held on every add, so each add retrained the codec
 * and re-encoded every row. An index of 70,000 points trained in one add (sample 35,000)
 * must keep its codec through small adds until it has doubled. */
START_TEST(test_no_retrain_every_add)
{
    enum { NP = 70000, D = 2 };
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_HNSW, D, QV_METRIC_L2);
    p.quant = QV_QUANT_SQ8;
    p.m = 4;
    p.ef_construction = 8;
    p.threads = 2;
    float *v = random_vectors(NP + 10, D, 77);
    uint64_t *ids = malloc((NP + 10) * sizeof *ids);
    for (size_t i = 0; i < NP + 10; i++) ids[i] = i;
    QV_CK(qv_index_new(&p, &ix));
    QV_CK(qv_index_add(ix, NP, ids, v));
    const qv_hnsw *h = ix->impl;
    const qv_codec *trained = h->codec;
    ck_assert_uint_lt(trained->trained_on, NP);          /* a sample: the case at issue */
    for (size_t i = 0; i < 10; i++) {
        QV_CK(qv_index_add(ix, 1, ids + NP + i, v + (NP + i) * D));
        ck_assert_msg(h->codec == trained, "add %zu retrained the codec (n %zu, sample %zu)", i, NP + i + 1,
                      trained->trained_on);
    }
    qv_index_free(ix);
    free(v);
    free(ids);
}
END_TEST

START_TEST(test_params)
{
    qv_index_params p;
    qv_index *ix = NULL;
    qv_quant q;
    QV_CK(qv_quant_parse("bit1", &q));
    ck_assert_int_eq(q, QV_QUANT_BIT1);
    QV_CK_FAIL(qv_quant_parse("pq", &q), QV_EINVAL);
    QV_CK_FAIL(qv_quant_parse(NULL, &q), QV_EINVAL);
    ck_assert_ptr_null(qv_quant_name((qv_quant)99));
    qv_index_params_init(&p, QV_INDEX_HNSW, 8, QV_METRIC_L2);
    p.quant = (qv_quant)99;
    QV_CK_FAIL(qv_index_new(&p, &ix), QV_EINVAL);
    ck_assert_ptr_null(ix);
    p.quant = QV_QUANT_BIT1;
    p.dim = QV_MAX_DIM;                        /* a bit1 row's popcount has 16 bits */
    for (int ik = 0; ik < 3; ik++) {
        p.kind = all_kinds[ik];
        QV_CK_FAIL(qv_index_new(&p, &ix), QV_EINVAL);
        ck_assert_ptr_null(ix);
        ck_assert_ptr_nonnull(strstr(qv_last_error(), "bit1"));
    }
    p.kind = QV_INDEX_HNSW;
    p.dim = 8;

    for (int ik = 0; ik < 3; ik++) {
        float *v;
        ix = small_index_kind(all_kinds[ik], QV_QUANT_SQ8, 8, 200, &v);
        qv_search_params sp;
        qv_search_params_init(&sp, 5);
        qv_hit h[5];
        size_t nh;
        const float bad_over[] = {0.5f, -1.0f, NAN, INFINITY, 1e9f};
        for (size_t i = 0; i < sizeof bad_over / sizeof *bad_over; i++) {
            sp.oversampling = bad_over[i];
            QV_CK_FAIL(qv_index_search(ix, v, &sp, h, &nh), QV_EINVAL);
            ck_assert_ptr_nonnull(strstr(qv_last_error(), "oversampling"));
        }
        sp.oversampling = 1.0f;
        const float bad_explore[] = {-0.1f, NAN, INFINITY, QV_MAX_EXPLORE * 1.5f};
        for (size_t i = 0; i < sizeof bad_explore / sizeof *bad_explore; i++) {
            sp.explore = bad_explore[i];
            QV_CK_FAIL(qv_index_search(ix, v, &sp, h, &nh), QV_EINVAL);
            ck_assert_ptr_nonnull(strstr(qv_last_error(), "explore"));
        }
        sp.explore = 0.5f;                     /* accepted; sq8 ignores it */
        QV_CK(qv_index_search(ix, v, &sp, h, &nh));
        sp.explore = 0;
        sp.rescore = (qv_rescore)7;
        QV_CK_FAIL(qv_index_search(ix, v, &sp, h, &nh), QV_EINVAL);
        /* Oversampling above ef raises the beam; the nearest point of itself comes first. */
        sp.rescore = QV_RESCORE_ON;
        sp.oversampling = 20.0f;
        sp.ef = 5;
        QV_CK(qv_index_search(ix, v, &sp, h, &nh));
        ck_assert_uint_eq(nh, 5);
        ck_assert_uint_eq(h[0].id, 1000);
        ck_assert_float_eq(h[0].score, 0.0f);
        qv_index_free(ix);
        free(v);
        /* An empty quantized index answers nothing (an untrained ivf one: QV_ESTATE). */
        qv_index_params_init(&p, all_kinds[ik], 8, QV_METRIC_IP);
        p.quant = QV_QUANT_BIT1;
        QV_CK(qv_index_new(&p, &ix));
        float q0[8] = {1, 0, 0, 0, 0, 0, 0, 0};
        if (all_kinds[ik] == QV_INDEX_IVF) {
            QV_CK_FAIL(qv_index_search(ix, q0, &sp, h, &nh), QV_ESTATE);
        } else {
            QV_CK(qv_index_search(ix, q0, &sp, h, &nh));
            ck_assert_uint_eq(nh, 0);
        }
        qv_index_free(ix);
    }
}
END_TEST

/* ---- ivf and flat on codes ------------------------------------------------------------ */

/* The fast-scan kernel of every table this CPU has against a double-precision sum, for
 * dimensions 1..1536 (past the 512 / 1024 points where the 16-bit sums are widened). */
START_TEST(test_fastscan_kernel)
{
    const qv_fastscan_kernels *tabs[] = {qv_fastscan_scalar(), qv_fastscan_avx2(), qv_fastscan_avx512()};
    uint64_t st = 12345;
    for (size_t dim = 1; dim <= 1536; dim += dim < 70 ? 1 : 37) {
        size_t dpad = qv_fastscan_dpad(dim), bytes = qv_fastscan_block_bytes(dim);
        uint8_t *codes = calloc(bytes, 1), *lut = calloc(16 * dpad, 1), *nib = malloc(32 * dim);
        ck_assert(codes && lut && nib);
        for (size_t i = 0; i < 16 * dim; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            /* Mostly the largest table bytes, so the 16-bit sums come near their limit. */
            lut[i] = (st >> 40) % 4 ? 255 : (uint8_t)(st >> 33);
        }
        for (unsigned j = 0; j < 32; j++)
            for (size_t d = 0; d < dim; d++) {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                nib[j * dim + d] = (uint8_t)((st >> 37) & 15);
                qv_fastscan_set_nibble(codes, d, j, nib[j * dim + d]);
                ck_assert_uint_eq(qv_fastscan_get_nibble(codes, d, j), nib[j * dim + d]);
            }
        double want[32];
        for (unsigned j = 0; j < 32; j++) {
            want[j] = 0;
            for (size_t d = 0; d < dim; d++) want[j] += (double)lut[16 * d + nib[j * dim + d]];
        }
        for (size_t t = 0; t < 3; t++) {
            if (!tabs[t]) continue;
            uint32_t out[32];
            tabs[t]->block(codes, lut, dpad, out);
            for (unsigned j = 0; j < 32; j++)
                ck_assert_msg((double)out[j] == want[j], "%s dim %zu code %u: %u, want %.0f", tabs[t]->name, dim, j,
                              out[j], want[j]);
        }
        free(codes);
        free(lut);
        free(nib);
    }
}
END_TEST

/* IVF (nlist n / 40) and flat, each code kind with the default re-scoring: recall within
 * 0.005 of the float index of the same kind at the same nprobe; estimates alone above a
 * floor; scores exact. */
static void recall_ivf_flat(const dataset *d, uint32_t nprobe, const double no_rescore_min[4])
{
    qv_hit *hits = malloc(d->nq * K * sizeof *hits);
    ck_assert_ptr_nonnull(hits);
    for (int ik = 1; ik < 3; ik++) {
        qv_index_kind ik_kind = all_kinds[ik];
        qv_index *fl = build_kind(ik_kind, QV_QUANT_NONE, d->metric, (uint32_t)d->dim, d->n, d->base, 0, 7);
        double rf = recall(fl, d, nprobe, QV_RESCORE_DEFAULT, NULL);
        qv_index_free(fl);
        for (int kind = QV_QUANT_SQ8; kind <= QV_QUANT_BIT1; kind++) {
            qv_index *ix = build_kind(ik_kind, (qv_quant)kind, d->metric, (uint32_t)d->dim, d->n, d->base, 0, 7);
            double rr = recall(ix, d, nprobe, QV_RESCORE_DEFAULT, hits), rn = recall(ix, d, nprobe, QV_RESCORE_OFF, NULL);
            printf("%s %s, n %zu dim %zu: recall@10 float %.4f, rescored %.4f, estimates only %.4f (nprobe %u)\n",
                   qv_index_kind_name(ik_kind), qv_quant_name((qv_quant)kind), d->n, d->dim, rf, rr, rn, nprobe);
            ck_assert_msg(rr >= rf - 0.005, "%s %s: rescored recall %.4f, float %.4f", qv_index_kind_name(ik_kind),
                          qv_quant_name((qv_quant)kind), rr, rf);
            ck_assert_msg(rn >= no_rescore_min[kind], "%s %s: recall without rescore %.4f < %.2f",
                          qv_index_kind_name(ik_kind), qv_quant_name((qv_quant)kind), rn, no_rescore_min[kind]);
            check_rescored_scores(d, hits);
            qv_index_memory_info mi;
            qv_index_memory_detail(ix, &mi);
            ck_assert_uint_gt(mi.codes, 0);
            ck_assert_uint_le(mi.codes, mi.search);
            ck_assert_uint_ge(mi.vectors, d->n * d->dim * sizeof(float));
            ck_assert_uint_eq(mi.total, qv_index_memory(ix));
            qv_index_free(ix);
        }
    }
    free(hits);
}

START_TEST(test_ivf_flat_recall_siftsmall)
{
    dataset d;
    if (!load_set(&d, "siftsmall", QV_METRIC_L2, 10000, 200)) return;
    const double min_est[4] = {0, 0.90, 0.60, 0.25};
    recall_ivf_flat(&d, 16, min_est);
    free_set(&d);
}
END_TEST

START_TEST(test_ivf_flat_recall_glove_cosine)
{
    dataset d;
    if (!load_set(&d, "glove6b-100k", QV_METRIC_COSINE, 10000, 200)) return;
    const double min_est[4] = {0, 0.85, 0.50, 0.20};
    recall_ivf_flat(&d, 16, min_est);
    free_set(&d);
}
END_TEST

/* Removals move the last code of a list (flat: of the index) into the hole, across
 * fast-scan blocks too: every point left finds itself at distance 0, none removed
 * comes back, and a replaced point is found at its new place. */
START_TEST(test_ivf_flat_remove)
{
    enum { n = 700 };
    const uint32_t dim = 20;
    for (int ik = 1; ik < 3; ik++)
        for (int kind = QV_QUANT_SQ8; kind <= QV_QUANT_BIT1; kind++) {
            float *v;
            qv_index *ix = small_index_kind(all_kinds[ik], (qv_quant)kind, dim, n, &v);
            uint64_t gone[(n + 2) / 3];
            size_t ng = 0, removed;
            for (size_t i = 0; i < n; i += 3) gone[ng++] = 1000 + i;
            QV_CK(qv_index_remove(ix, ng, gone, &removed));
            ck_assert_uint_eq(removed, ng);
            uint64_t moved_id = 1001;
            float *moved = v + 1 * dim;
            for (size_t t = 0; t < dim; t++) moved[t] = -moved[t];
            QV_CK(qv_index_add(ix, 1, &moved_id, moved));
            qv_search_params sp;
            qv_search_params_init(&sp, 3);
            sp.nprobe = 4;
            for (size_t i = 0; i < n; i++) {
                qv_hit h[3];
                size_t nh;
                QV_CK(qv_index_search(ix, v + i * dim, &sp, h, &nh));
                ck_assert_uint_gt(nh, 0);
                if (i % 3 == 0) {
                    for (size_t j = 0; j < nh; j++) ck_assert_uint_ne(h[j].id % 3, 1000 % 3);
                } else {
                    ck_assert_msg(h[0].id == 1000 + i && h[0].score == 0.0f, "%s %s: point %zu found %llu at %g",
                                  qv_index_kind_name(all_kinds[ik]), qv_quant_name((qv_quant)kind), i,
                                  (unsigned long long)h[0].id, (double)h[0].score);
                }
            }
            qv_index_free(ix);
            free(v);
        }
}
END_TEST


/* ---- bit1 search starts (index/hnsw_starts.c) ---- */

/* n points in blobs around 16 random centres (the k-means centroids then mean something),
 * each spread over 8 random directions (a low intrinsic dimension: a graph finds true
 * neighbours there, as on real data). */
static float *blobs(size_t n, uint32_t dim, uint64_t seed)
{
    float *c = random_vectors(16, dim, 77), *a = random_vectors(8, dim, 78), *z = random_vectors(n, 8, seed);
    float *v = malloc(n * dim * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < n; i++)
        for (uint32_t d = 0; d < dim; d++) {
            float x = 4.0f * c[(i % 16) * dim + d];
            for (uint32_t t = 0; t < 8; t++) x += z[i * 8 + t] * a[t * dim + d];
            v[i * dim + d] = x;
        }
    free(c);
    free(a);
    free(z);
    return v;
}

/* Every centroid has a start node, live, among the 1% of live nodes nearest to the centroid
 * (brute force in double): a start left at a removed, reused or stale slot fails here. */
static void check_starts(const qv_index *ix, const char *when)
{
    const qv_hnsw *h = ix->impl;
    const qv_codec *c = h->codec;
    ck_assert_msg(c->nclusters > 1, "%s: %u centroids", when, c->nclusters);
    float *buf = malloc(h->dim * sizeof *buf);      /* qv_hnsw_vecf widens u8 rows into it */
    ck_assert_ptr_nonnull(buf);
    for (uint32_t j = 0; j < c->nclusters; j++) {
        uint32_t s = h->starts[j];
        ck_assert_msg(s < h->n_slots && h->state[s] == QV_HNSW_LIVE, "%s: centroid %u: start %u not live", when, j, s);
        const float *cj = c->centers + (size_t)j * h->dim;
        double ds = ref_l2sq(cj, qv_hnsw_vecf(h, s, buf), h->dim);
        size_t closer = 0, live = 0;
        for (uint32_t t = 0; t < h->n_slots; t++) {
            if (h->state[t] != QV_HNSW_LIVE) continue;
            live++;
            closer += ref_l2sq(cj, qv_hnsw_vecf(h, t, buf), h->dim) < ds;
        }
        ck_assert_msg(closer <= live / 100, "%s: centroid %u: %zu of %zu live nodes nearer than its start", when, j,
                      closer, live);
    }
    free(buf);
}

/* recall@K of ix over nq queries against brute force over the live rows (ids = first_id + row). */
static double blob_recall(const qv_index *ix, const float *v, const uint8_t *gone, size_t n, uint32_t dim,
                          const float *q, size_t nq, uint32_t ef)
{
    size_t hit = 0;
    qv_search_params sp;
    qv_search_params_init(&sp, K);
    sp.ef = ef;
    for (size_t i = 0; i < nq; i++) {
        double best[K];
        for (size_t j = 0; j < K; j++) best[j] = INFINITY;
        for (size_t r = 0; r < n; r++) {
            if (gone[r]) continue;
            double d = ref_l2sq(q + i * dim, v + r * dim, dim);
            for (size_t j = 0; j < K; j++)
                if (d < best[j]) {
                    memmove(best + j + 1, best + j, (K - 1 - j) * sizeof *best);
                    best[j] = d;
                    break;
                }
        }
        qv_hit hits[K];
        size_t nh;
        QV_CK(qv_index_search(ix, q + i * dim, &sp, hits, &nh));
        for (size_t j = 0; j < nh; j++) {
            ck_assert_msg(!gone[hits[j].id - 1000], "query %zu: removed id %llu returned", i,
                          (unsigned long long)hits[j].id);
            hit += hits[j].score <= best[K - 1] * (1 + 1e-5) + 1e-6;
        }
    }
    return (double)hit / (double)(nq * K);
}

/* Start nodes after a build, a retraining add, removals of every start node (then adds
 * that reuse their slots), renumbering and save/load (the same ones on both sides, the
 * same answers); recall with them against the descent. */
/* explore (bit1 only): following neighbours by estimate minus explore x bound expands nodes
 * the 1-bit codes misjudge, so recall at a small beam rises (quiver-bench on siftsmall, M16
 * efC200, ef 16: 0.827 -> 0.999 at explore 1, 2026-12-06); the answers stay exact. sq8 has no
 * bound and answers the same with or without it. */
START_TEST(test_bit1_explore)
{
    dataset d;
    if (!load_set(&d, "siftsmall", QV_METRIC_L2, 10000, 200)) return;
    qv_hit *hits = malloc(d.nq * K * sizeof *hits), *h0 = malloc(d.nq * K * sizeof *h0);
    ck_assert(hits && h0);
    qv_index *ix = build(&d, QV_QUANT_BIT1);
    double r0 = recall(ix, &d, 16, QV_RESCORE_ON, NULL);
    explore_setting = 1.0f;
    double r1 = recall(ix, &d, 16, QV_RESCORE_ON, hits);
    explore_setting = 0;
    printf("bit1 siftsmall ef 16: recall@10 %.4f, with explore 1 %.4f\n", r0, r1);
    ck_assert_msg(r1 >= r0 + 0.02, "explore 1: recall %.4f, without %.4f", r1, r0);
    check_rescored_scores(&d, hits);
    qv_index_free(ix);
    ix = build(&d, QV_QUANT_SQ8);
    recall(ix, &d, 16, QV_RESCORE_ON, h0);
    explore_setting = 1.0f;
    recall(ix, &d, 16, QV_RESCORE_ON, hits);
    explore_setting = 0;
    for (size_t i = 0; i < d.nq * K; i++) ck_assert_uint_eq(hits[i].id, h0[i].id);
    qv_index_free(ix);
    free(hits);
    free(h0);
    free_set(&d);
}
END_TEST

START_TEST(test_bit1_starts)
{
    const uint32_t dim = 64;
    const size_t n0 = 2000, n = 5000, nq = 50;
    float *v = blobs(n, dim, 21), *q = blobs(nq, dim, 22);
    uint8_t *gone = calloc(n, 1);
    ck_assert_ptr_nonnull(gone);
    qv_index *ix = build_kind(QV_INDEX_HNSW, QV_QUANT_BIT1, QV_METRIC_L2, dim, n0, v, 1000, 3);
    qv_hnsw *h = ix->impl;
    check_starts(ix, "first batch");
    uint32_t k0 = h->codec->nclusters;
    /* The index doubles: the codec is retrained on all of it (more centroids) and the
     * start nodes are found again for the new ones. */
    uint64_t *ids = malloc(n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++) ids[i] = 1000 + i;
    QV_CK(qv_index_add(ix, n - n0 - 500, ids + n0, v + n0 * dim));
    ck_assert_uint_gt(h->codec->nclusters, k0);
    check_starts(ix, "after retraining");

    qv_hnsw_starts_on = 0;
    double r_descent = blob_recall(ix, v, gone, n - 500, dim, q, nq, 48);
    qv_hnsw_starts_on = 1;
    double r_starts = blob_recall(ix, v, gone, n - 500, dim, q, nq, 48);
    printf("bit1 starts: recall@10 at ef 48 %.4f (descent %.4f)\n", r_starts, r_descent);
    ck_assert_msg(r_starts >= 0.9 && r_starts >= r_descent - 0.02, "recall %.4f with starts, %.4f descending",
                  r_starts, r_descent);

    /* Remove every start node: each is replaced before its slot can be reused. */
    uint64_t del[QV_RABITQ_MAX_CLUSTERS];
    size_t nd = 0;
    for (uint32_t j = 0; j < h->codec->nclusters; j++) {
        uint64_t id = h->ids[h->starts[j]];
        int dup = 0;
        for (size_t t = 0; t < nd; t++) dup |= del[t] == id;
        if (!dup) del[nd++] = id;
    }
    size_t removed;
    QV_CK(qv_index_remove(ix, nd, del, &removed));
    ck_assert_uint_eq(removed, nd);
    for (size_t t = 0; t < nd; t++) gone[del[t] - 1000] = 1;
    check_starts(ix, "after removing the start nodes");
    for (uint32_t j = 0; j < h->codec->nclusters; j++)
        for (size_t t = 0; t < nd; t++) ck_assert_uint_ne(h->ids[h->starts[j]], del[t]);
    /* New points take the freed slots. */
    QV_CK(qv_index_add(ix, 500, ids + n - 500, v + (n - 500) * dim));
    check_starts(ix, "after reusing their slots");
    ck_assert(blob_recall(ix, v, gone, n, dim, q, nq, 48) >= 0.9);

    /* Renumbering renames them with the slots. */
    uint64_t before[QV_RABITQ_MAX_CLUSTERS];
    for (uint32_t j = 0; j < h->codec->nclusters; j++) before[j] = h->ids[h->starts[j]];
    pthread_mutex_lock(&h->write_lock);
    ck_assert_int_eq(qv_hnsw_reorder(h), 1);
    pthread_mutex_unlock(&h->write_lock);
    for (uint32_t j = 0; j < h->codec->nclusters; j++) ck_assert_uint_eq(h->ids[h->starts[j]], before[j]);
    check_starts(ix, "after renumbering");

    /* Not in the file: a save finds them on the graph it writes (those above were found
     * before the last 500 points came in), and a load finds the same ones. */
    void *buf;
    size_t len;
    qv_index *back = NULL;
    QV_CK(qv_index_save_mem(ix, &buf, &len));
    for (uint32_t j = 0; j < h->codec->nclusters; j++) before[j] = h->ids[h->starts[j]];
    QV_CK(qv_index_load_mem(buf, len, "mem", &back));
    const qv_hnsw *hb = back->impl;
    check_starts(back, "after load");
    for (uint32_t j = 0; j < h->codec->nclusters; j++) ck_assert_uint_eq(hb->ids[hb->starts[j]], before[j]);
    same_answers(ix, back, q, nq, dim);
    qv_index_free(back);
    qv_free(buf);
    qv_index_free(ix);
    free(ids);
    free(gone);
    free(v);
    free(q);
}
END_TEST

extern Suite *qv_index_quant_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_index_quant_suite(void)
{
    Suite *s = suite_create("index_quant");
    TCase *tc = tcase_create("quant");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_recall_siftsmall);
    tcase_add_test(tc, test_recall_glove_cosine);
    tcase_add_test(tc, test_estimates_vs_double);
    tcase_add_test(tc, test_ex_estimates_vs_double);
    tcase_add_test(tc, test_bit1_any_scale);
    tcase_add_test(tc, test_sq_ip_reads_code_only);
    tcase_add_test(tc, test_save_load_roundtrip);
    tcase_add_test(tc, test_u8_vectors);
    tcase_add_test(tc, test_f16_vectors);
    tcase_add_test(tc, test_corrupt_code_section);
    tcase_add_loop_test(tc, test_ex_rows_persisted, 0, 2);
    tcase_add_test(tc, test_params);
    tcase_add_test(tc, test_no_retrain_every_add);
    tcase_add_test(tc, test_bit1_starts);
    tcase_add_test(tc, test_bit1_explore);
    tcase_add_test(tc, test_fastscan_kernel);
    tcase_add_test(tc, test_ivf_flat_recall_siftsmall);
    tcase_add_test(tc, test_ivf_flat_recall_glove_cosine);
    tcase_add_test(tc, test_ivf_flat_remove);
    suite_add_tcase(s, tc);
    return s;
}
