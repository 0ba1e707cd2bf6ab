/*
 * index/hnsw_starts.c -- where a bit1 search enters level 0. Instead of the greedy
 * descent through the upper levels (a chain of dependent hops, each waiting on one list
 * and its rows from DRAM), the walk starts at the nodes nearest to the query's two nearest
 * k-means centroids, the up to 64 centroids the 1-bit codes are taken against
 * (codec_rabitq.c). Those 64 start nodes are shared by every query, so they and their
 * lists stay in cache, and the query's rotated residual already holds what ranks the
 * centroids.
 *
 * Ranking: |q - c_j|^2 = |qr|^2 - 2 <qr, pc_j> + |pc_j|^2 with qr = P(q - c0) and
 * pc_j = P(c_j - c0) (codec.h). The full dot products cost as much as the descent they
 * replace (64 x 832 floats at 784-d: ~9k TSC cycles, measured); after the random rotation
 * the first QV_HNSW_START_DIMS coordinates, scaled by D / START_DIMS, estimate the dot
 * well enough to rank (the same level-0 work as the full ranking), and kept transposed
 * (dimension-major, 64 centroids a row: four 16-float accumulators, no reductions) they
 * cost ~0.9k cycles. The two nearest are used (one or three were within the noise of two
 * on fashion-mnist-784).
 *
 * Measured (1 thread, 2026-12-06, bench/RESULTS.md "Search start"): fashion-mnist-784 bit1
 * M12 efC400 at ef 16, 61.6 descent rows + 190 level-0 rows (17.2 expansions) per query ->
 * 210 level-0 rows (18.5 expansions), the start ~8-10k -> ~1k TSC cycles; QPS at ef 12-48
 * -0.3% to +7% (median +3%, 11 alternated rounds), recall within 0.0004. debian-desc-384
 * bit1 M16 at ef 16-128: +2% to +8%, and more recall at the same ef (ef 16 0.866 -> 0.879,
 * ef 32 0.948 -> 0.952): two clusters' start nodes spread the start.
 *
 * The start nodes are found by a search on codes for each centroid c_j (64 searches: 2.1 ms
 * on fashion-mnist-784, 1.8 ms on debian-desc-384), only when needed, never per insert:
 *  - after load and open, and after an add() once the index has doubled since they were found, or
 *    the codec was retrained (retraining moves the centroids: qv_hnsw_starts_table
 *    clears them, and searches descend until they are found again);
 *  - after a removal that took one of them, before the quiesce that lets its slot be
 *    reused: a running search may still start at a deleted node (the walk passes through
 *    it, as through any deleted node), never at a reused one;
 *  - renumbering (hnsw_reorder.c) renames them with the slots;
 *  - a save finds them on the graph it writes, as the load or open of that file will (they
 *    are not in the file), so an index and its copy answer alike.
 * A centroid without a start node (none found, out of memory) sends its queries through
 * the descent, as does every index that is not bit1 or has one centroid.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/simd_clones.h"
#include "index/hnsw.h"

/* 0: every search descends (the A/B driver of bench/results-2026-12-06-entry15, tests). */
int qv_hnsw_starts_on = 1;

/* Searches for the start nodes use this beam. */
#define START_EF 64u

/* The first D coordinates of qr against the table: acc[j] = sum_d qr[d] tab[d][j]. */
static inline QV_ALWAYS_INLINE int rank_dots_impl(const float *restrict tab, const float *restrict qr, size_t D,
                                                  float *restrict out)
{
    float acc[QV_RABITQ_MAX_CLUSTERS] = {0};
    for (size_t d = 0; d < D; d++) {
        const float x = qr[d];
        const float *t = tab + d * QV_RABITQ_MAX_CLUSTERS;
        for (size_t j = 0; j < QV_RABITQ_MAX_CLUSTERS; j++) acc[j] += x * t[j];
    }
    memcpy(out, acc, sizeof acc);
    return 0;
}
QV_CLONES(int, rank_dots, (const float *restrict tab, const float *restrict qr, size_t D, float *restrict out),
          (tab, qr, D, out))

static size_t table_dims(const qv_codec *c)
{
    return c->rot.dpad < QV_HNSW_START_DIMS ? c->rot.dpad : QV_HNSW_START_DIMS;
}

static int starts_apply(const qv_hnsw *h)
{
    const qv_codec *c = h->codec;
    return c && c->kind == QV_QUANT_BIT1 && c->nclusters > 1 && h->start_tab;
}

void qv_hnsw_starts_clear(qv_hnsw *h)
{
    for (uint32_t j = 0; j < QV_RABITQ_MAX_CLUSTERS; j++) __atomic_store_n(&h->starts[j], QV_HNSW_NONE, __ATOMIC_RELEASE);
    h->starts_n = 0;
}

void qv_hnsw_starts_table(qv_hnsw *h)
{
    const qv_codec *c = h->codec;
    qv_hnsw_starts_clear(h);
    if (!c || c->kind != QV_QUANT_BIT1) return;
    const size_t bytes = QV_HNSW_START_DIMS * QV_RABITQ_MAX_CLUSTERS * sizeof(float);   /* 16 KiB */
    if (!h->start_tab && !(h->start_tab = qv_aligned_calloc(1, bytes))) return;   /* starts stay off */
    memset(h->start_tab, 0, bytes);
    const size_t D = table_dims(c);
    for (size_t d = 0; d < D; d++)
        for (uint32_t j = 0; j < c->nclusters; j++)
            h->start_tab[d * QV_RABITQ_MAX_CLUSTERS + j] = c->pcenters[(size_t)j * c->rot.dpad + d];
}

size_t qv_hnsw_starts_pick(const qv_hnsw *h, qv_codec_query *qq, uint32_t out[QV_HNSW_NSTARTS])
{
    if (!qv_hnsw_starts_on || !starts_apply(h)) return 0;
    const qv_codec *c = h->codec;
    const size_t D = table_dims(c);
    const float scale = 2.0f * (float)c->rot.dpad / (float)D;
    float ip[QV_RABITQ_MAX_CLUSTERS];
    rank_dots(h->start_tab, rabitq_qr(c, qq), D, ip);
    float bd[QV_HNSW_NSTARTS];
    uint32_t bj[QV_HNSW_NSTARTS];
    for (size_t t = 0; t < QV_HNSW_NSTARTS; t++) bd[t] = INFINITY, bj[t] = 0;
    for (uint32_t j = 0; j < c->nclusters; j++) {
        float d = c->pnorms[j] - scale * ip[j];        /* |q - c_j|^2 - |qr|^2, estimated */
        if (!(d < bd[QV_HNSW_NSTARTS - 1])) continue;
        size_t t = QV_HNSW_NSTARTS - 1;
        for (; t > 0 && d < bd[t - 1]; t--) bd[t] = bd[t - 1], bj[t] = bj[t - 1];
        bd[t] = d;
        bj[t] = j;
    }
    size_t n = 0;
    for (size_t t = 0; t < QV_HNSW_NSTARTS; t++) {
        uint32_t s = __atomic_load_n(&h->starts[bj[t]], __ATOMIC_ACQUIRE);
        if (s == QV_HNSW_NONE) {
            if (t == 0) return 0;      /* the nearest centroid has none: descend */
            continue;
        }
        out[n++] = s;
    }
    return n;
}

void qv_hnsw_starts_find(qv_hnsw *h, qv_hnsw_scratch *s)
{
    if (!starts_apply(h)) return;
    const qv_codec *c = h->codec;
    for (uint32_t j = 0; j < c->nclusters; j++) {
        uint32_t slot = s ? qv_hnsw_codes_nearest(h, s, c->centers + (size_t)j * h->dim, START_EF) : QV_HNSW_NONE;
        __atomic_store_n(&h->starts[j], slot, __ATOMIC_RELEASE);
    }
    h->starts_n = __atomic_load_n(&h->n_live, __ATOMIC_RELAXED);
}

/* Whether any start node is missing or no longer live. */
static int starts_lost(const qv_hnsw *h)
{
    for (uint32_t j = 0; j < h->codec->nclusters; j++) {
        uint32_t s = h->starts[j];
        if (s == QV_HNSW_NONE || s >= h->n_slots || __atomic_load_n(&h->state[s], __ATOMIC_ACQUIRE) != QV_HNSW_LIVE)
            return 1;
    }
    return 0;
}

void qv_hnsw_starts_refresh(qv_hnsw *h, qv_hnsw_scratch *s)
{
    if (!starts_apply(h)) return;
    size_t n = __atomic_load_n(&h->n_live, __ATOMIC_RELAXED);
    if (h->starts_n && n < 2 * h->starts_n && !starts_lost(h)) return;
    qv_hnsw_starts_find(h, s);
}

void qv_hnsw_starts_removed(qv_hnsw *h, qv_hnsw_scratch *s)
{
    if (!starts_apply(h) || !starts_lost(h)) return;
    qv_hnsw_starts_find(h, s);
}

void qv_hnsw_starts_settle(qv_hnsw *h)
{
    if (!starts_apply(h)) return;
    qv_hnsw_scratch *s = qv_hnsw_scratch_get(h);
    qv_hnsw_starts_find(h, s);                 /* without a scratch: none, searches descend */
    qv_hnsw_scratch_put(h, s);
}

void qv_hnsw_starts_renumber(qv_hnsw *h, const uint32_t *perm, uint32_t n)
{
    for (uint32_t j = 0; j < QV_RABITQ_MAX_CLUSTERS; j++) {
        uint32_t s = h->starts[j];
        if (s != QV_HNSW_NONE) __atomic_store_n(&h->starts[j], s < n ? perm[s] : QV_HNSW_NONE, __ATOMIC_RELEASE);
    }
}
