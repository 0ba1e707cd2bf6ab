/*
 * index/hnsw_codes.c -- HNSW on codes (qv_index_params.quant != NONE): the walk ranks
 * nodes by distances estimated from their code rows (index/codec.h), and the best
 * candidates are then re-scored with the float vectors, which sit in their own array off
 * the walk's path (see index/hnsw.h). Also the codec's life: training on the first batch,
 * retraining while the index is small, and encoding rows.
 *
 * Re-scoring: the walk keeps ef' = max(ef, R) candidates, R = ceil(k * oversampling); the
 * R best by estimate get exact distances and the best k of those are returned. 1-bit
 * codes re-score the nodes the walk expands, while it walks: a node whose estimate minus
 * its error bound is already worse than the k-th best distance known is skipped (with
 * probability under 1% it was a true neighbour), and the rest are estimated again from
 * 8-bit ex rows, whose far narrower bound leaves only those that can still enter the top
 * k to read their float vector (see walk_codes' pipeline below).
 *
 * Training: the first add trains the codec on its batch. While the codec has seen fewer
 * vectors than QV_CODEC_TRAIN_MAX and the index has since doubled, an add retrains it on
 * the vectors present and re-encodes every row, with grow_lock exclusive so no search
 * sees rows of two codecs; the work is amortized O(1) per vector and ends once the
 * training sample is full. qv_index_train() trains on the caller's sample instead.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "index/hnsw.h"
#include "index/hnsw_walk.h"

/* Default oversampling by kind (qv_search_params.oversampling = 0). */
static float default_oversampling(qv_quant kind)
{
    switch (kind) {
    case QV_QUANT_SQ8: return 2.0f;
    case QV_QUANT_SQ4: return 3.0f;
    default:           return 1.0f;       /* bit1: every expanded node is re-scored */
    }
}

/* A code row's lines (two for bit1 rows up to 864 dimensions): the first two written
 * out, since a loop with a run-time count cost the walk its own overhead per row. */
static inline void prefetch_row(const qv_hnsw *h, uint32_t slot, size_t lines)
{
    const char *p = (const char *)qv_hnsw_code(h, slot);
    __builtin_prefetch(p, 0, 3);
    if (lines > 1) __builtin_prefetch(p + 64, 0, 3);
    for (size_t i = 2; i < lines; i++) __builtin_prefetch(p + 64 * i, 0, 3);
}

/* The three lines that hold the start of slot's level-0 list (all of it up to m0 = 32
 * at 784-d: the list starts at byte 124 of a 256-byte block). */
static inline void prefetch_list(const qv_hnsw *h, uint32_t slot)
{
    const char *nl = (const char *)qv_hnsw_list(h, slot, 0);
    __builtin_prefetch(nl, 0, 3);
    __builtin_prefetch(nl + 64, 0, 3);
    __builtin_prefetch(nl + 128, 0, 3);
}

/* The code rows of the unvisited ones among the cnt (<= m0) links of list. The unvisited
 * are gathered first, without a branch per link (about half are visited, at random: the
 * branch mispredicts, and a prefetch behind it issues late), then prefetched. With the
 * four-lane test of walk_codes' scoring loop, measured (alternated rounds against main,
 * 2026-12-06, bench/RESULTS.md "Session 13"): debian-use-512 bit1 M12 explore 0.75 ef 10-20
 * +0-9% (median +2%), debian-desc-384 M16 explore 0.6 +2.5-7%, fashion-mnist-784 no change. */
static inline void prefetch_unvisited(const qv_hnsw *h, const uint32_t *list, uint32_t cnt,
                                      const qv_hnsw_tag *vis, qv_hnsw_tag tag, size_t lines)
{
    uint32_t unvisited[QV_HNSW_MAX_M0];
    size_t n = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        uint32_t v = qv_hnsw_ld(&list[1 + i]);
        unvisited[n] = v;
        n += vis[v] != tag;
    }
    for (size_t j = 0; j < n; j++) prefetch_row(h, unvisited[j], lines);
}

/* The code rows of slot's neighbours not yet visited (its list already read or loading). */
static inline void prefetch_ahead(const qv_hnsw *h, uint32_t slot, const qv_hnsw_tag *vis, qv_hnsw_tag tag,
                                  size_t lines)
{
    const uint32_t *list = qv_hnsw_list(h, slot, 0);
    uint32_t cnt = qv_hnsw_ld(&list[0]);
    if (cnt > h->m0) cnt = h->m0;
    prefetch_unvisited(h, list, cnt, vis, tag, lines);
}

/* The per-expansion lists of the bit1 re-scoring pipeline, grown together. */
static int grow_expd(qv_hnsw_scratch *s)
{
    size_t c = s->expd_cap ? 2 * s->expd_cap : 256;
    uint32_t *p = qv_reallocarray(s->expd, c, sizeof *p);
    if (!p) return 0;
    s->expd = p;
    float *lo = qv_reallocarray(s->xlo, c, sizeof *lo);
    if (!lo) return 0;
    s->xlo = lo;
    qv_hnsw_cand *fl = qv_reallocarray(s->fl, c, sizeof *fl);
    if (!fl) return 0;
    s->fl = fl;
    s->bytes += (c - s->expd_cap) * (sizeof *p + sizeof *lo + sizeof *fl);
    s->expd_cap = c;
    return 1;
}

/* Greedy descent through the upper levels on estimates. Each hop waits on the code rows
 * of one list (m of them, from DRAM mostly: the nodes of the upper levels are spread over
 * the whole block array), so all of the list's rows are prefetched before the first is
 * scored: the four-way kernel alone keeps only four rows in flight. Measured (fashion-
 * mnist-784 bit1 M12 efC400, ef 32, 1 thread, 2026-12-05, bench/RESULTS.md "The bit1 code walk"):
 * descent 11.2k -> 9.0k TSC cycles per query of 84k. */
static uint32_t descend_codes(const qv_hnsw *h, const qv_codec *c, qv_codec_query *qq, uint32_t cur,
                              unsigned top)
{
    const size_t lines = (c->row_read + 63) / 64;
    float dc = qv_codec_est(c, qq, qv_hnsw_code(h, cur));
    for (unsigned l = top; l > 0; l--) {
        int changed = 1;
        while (changed) {
            changed = 0;
            const uint32_t *list = qv_hnsw_list(h, cur, l);
            if (!list) break;
            uint32_t cnt = qv_hnsw_ld(&list[0]);
            if (cnt > h->m) cnt = h->m;
            for (uint32_t j = 0; j < cnt; j++) prefetch_row(h, qv_hnsw_ld(&list[1 + j]), lines);
            uint32_t best = cur, i = 0;
            for (; i + 4 <= cnt; i += 4) {
                uint32_t v[4] = {qv_hnsw_ld(&list[1 + i]), qv_hnsw_ld(&list[2 + i]),
                                 qv_hnsw_ld(&list[3 + i]), qv_hnsw_ld(&list[4 + i])};
                const uint8_t *r[4] = {qv_hnsw_code(h, v[0]), qv_hnsw_code(h, v[1]), qv_hnsw_code(h, v[2]),
                                       qv_hnsw_code(h, v[3])};
                float d4[4];
                qv_codec_est_x4(c, qq, r, d4);
                for (int t = 0; t < 4; t++)
                    if (d4[t] < dc) { dc = d4[t]; best = v[t]; changed = 1; }
            }
            for (; i < cnt; i++) {
                uint32_t v = qv_hnsw_ld(&list[1 + i]);
                float d = qv_codec_est(c, qq, qv_hnsw_code(h, v));
                if (d < dc) { dc = d; best = v; changed = 1; }
            }
            cur = best;
        }
    }
    return cur;
}

/* bit1 re-scoring while walking (rescore on). Each expanded node that the 1-bit bound
 * cannot rule out goes through stages:
 *   with ex rows (h->xcodes): its 8- or 4-bit estimate and bound, XLAG expansions later
 *   (the row, prefetched at the expansion, has arrived); then, once the walk is done, the
 *   decision: its float vector is read only when its lower bound can still beat the
 *   threshold, and its exact distance goes into s->ex (the best k);
 *   without (a vector source): its exact distance, FLAG expansions later.
 * The threshold is the k-th smallest upper bound known, of the exact distances in s->ex
 * and of the ex upper bounds (estimate + bound) in s->ub: a node whose lower bound
 * exceeds it has k better nodes and cannot be in the answer. Deciding at the end, against
 * the final threshold, reads the fewest vectors; they are all prefetched at once then.
 * Measured (1 thread, alternated rounds against deciding DLAG = 4 estimates behind the
 * walk, 2026-12-07, bench/RESULTS.md "Session 24"): debian-desc-384 (1.5 KB vectors) M16
 * explore 0.3 +5-10%, fashion-mnist-784 +1-4%, debian-use-512 (1 KB, f16) no change,
 * recall the same to within 0.0002. Deciding while walking (fashion-mnist-784, 2026-12-05)
 * had cut the reads per query at ef 32 from 28 to 12.7 against re-scoring the beam. */
enum { XLAG = 2, FLAG = 1 };

typedef struct {
    size_t k;
    size_t ne, xs, ds;                 /* in s->expd: kept, estimated on ex rows, decided */
    size_t nf, fs;                     /* in s->fl: to read, read */
    size_t nx, nu;                     /* entries of s->ex, s->ub */
    size_t vlines;                     /* cache lines of a float vector to prefetch (0: none) */
    qv_hnsw_vecs vv;                   /* where the float vectors are read (qv_hnsw_vecs_of) */
} pipe_state;

static inline float pipe_threshold(const qv_hnsw_scratch *s, const pipe_state *p)
{
    float t = p->nx >= p->k ? s->ex[0].d : INFINITY;
    return p->nu >= p->k && s->ub[0].d < t ? s->ub[0].d : t;
}

/* The exact distance of slot's vector to q; +inf for a point the vector source no longer
 * has (deleted since the walk began: the collection drops it from the results anyway). */
static inline float exact_dist(const qv_hnsw *h, qv_hnsw_vecs vv, const float *q, uint32_t slot)
{
    const uint8_t *v = qv_hnsw_vecs_at(vv, slot);
    return !vv.base && v == (const uint8_t *)h->src_missing ? INFINITY : h->dist(q, v, h->dim);
}

static inline void pipe_read(qv_hnsw_scratch *s, pipe_state *p, float lo, uint32_t id)
{
    s->fl[p->nf].d = lo;
    s->fl[p->nf++].id = id;
    if (!p->vlines) return;
    const char *v = (const char *)qv_hnsw_vecs_at(p->vv, id);
    for (size_t l = 0; l < p->vlines; l++) __builtin_prefetch(v + 64 * l, 0, 2);
}

static inline void stage_ex(const qv_hnsw *h, const qv_codec *c, qv_hnsw_scratch *s, qv_codec_query *qq,
                            pipe_state *p)
{
    uint32_t id = s->expd[p->xs];
    float b, e = qv_codec_ex_est(c, qq, qv_hnsw_xcode(h, id), &b);
    s->xlo[p->xs++] = e - b;
    if (p->nu >= p->k && !worse(&s->ub[0], e + b, id)) return;
    max_push(s->ub, &p->nu, e + b, id);
    if (p->nu > p->k) max_pop(s->ub, &p->nu);
}

static inline void stage_decide(qv_hnsw_scratch *s, pipe_state *p)
{
    float lo = s->xlo[p->ds];
    uint32_t id = s->expd[p->ds++];
    if (lo <= pipe_threshold(s, p)) pipe_read(s, p, lo, id);
}

static inline void stage_exact(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q, pipe_state *p)
{
    qv_hnsw_cand x = s->fl[p->fs++];
    if (x.d > pipe_threshold(s, p)) return;
    float d = exact_dist(h, p->vv, q, x.id);
    if (p->nx >= p->k && !worse(&s->ex[0], d, x.id)) return;
    max_push(s->ex, &p->nx, d, x.id);
    if (p->nx > p->k) max_pop(s->ex, &p->nx);
}

/* Run every stage that is far enough behind the walk (all of them when flushing). */
static inline void pipe_pump(const qv_hnsw *h, const qv_codec *c, qv_hnsw_scratch *s, qv_codec_query *qq,
                             const float *q, pipe_state *p, int flush)
{
    size_t xl = flush ? 0 : XLAG, fl = flush ? 0 : FLAG;
    if (h->xcodes) {
        while (p->xs + xl < p->ne) stage_ex(h, c, s, qq, p);
        if (!flush) return;                    /* decisions wait for the final threshold */
        while (p->ds < p->xs) stage_decide(s, p);
    }
    while (p->fs + fl < p->nf) stage_exact(h, s, q, p);
}

/* Beam search at level 0 on estimates: the code twin of qv_hnsw_search_layer (only live,
 * accepted nodes enter res; the walk passes through the others). With n_exact (bit1,
 * rescore on) the expanded nodes are also scored exactly into s->ex, *n_exact of them.
 *
 * Prefetching one expansion ahead: the walk waits on code rows (fashion-mnist-784 bit1
 * M12, ef 32: 33 expansions, 312 rows of two lines each per query, and two thirds of the
 * samples of the four-way 1-bit kernel sit on its first loads). Each expansion prefetches
 * the lists of the three best candidates left (the root of the heap and its children);
 * on the next, when the best candidate left is one of them, its list has arrived and the
 * rows of its unvisited neighbours are prefetched then, a whole expansion before it is
 * expanded (that happens for 22 of the 33); its own expansion then prefetches nothing
 * more. Measured (1 thread, medians of 3-4 alternated runs against main, 2026-12-05,
 * bench/RESULTS.md "Cache and prefetch"): fashion-mnist-784 bit1 M12 and M16 ef 24-48
 * +3-11% (same recall), ef 16 -5% to +7%; debian-desc-384 bit1 M16 and sift-debian-100k
 * sq4 -1% to +8%. Non-temporal prefetches of ex rows and float vectors lost 9-18%.
 *
 * When the prefetches are issued matters as much (next_prefetch below). */
enum { BOUND_CACHE = 256 };
typedef struct { uint32_t id; float b; } bound_slot;

/* What an expansion prefetches for later expansions, not for itself: the ex row of the
 * node expanded (read XLAG expansions later), the rows of the likely next node's
 * neighbours when its list has arrived (one expansion ahead, see above), and the lists of
 * the three best candidates left. An expansion issues them after the est of its first
 * group of rows, not before its own rows are scored. Our reading: a core has few line
 * fill buffers, and a prefetch that finds them all busy holds the walk until one frees,
 * so the ~30 lines issued at the top of an expansion delayed the scoring that needed only
 * its own rows. Measured with the row prefetch above written out (1 thread, alternated
 * rounds against main, 2026-12-07, bench/RESULTS.md "Session 28"): debian-use-512 bit1
 * M12 explore 0.85 ef 10-20 +4-6% (8 rounds), fashion-mnist-784 M12 explore 0.5 +1-3%,
 * debian-desc-384 M16 explore 0.4 +0-1% (5 rounds each), the same answers. Issued after
 * the first group's pushes, or after the last group, it gained nothing. */
typedef struct {
    uint32_t listed[3];                /* lists prefetched by the last expansion */
    uint32_t ahead;                    /* whose neighbours' rows were prefetched ahead */
    const char *xrow;                  /* an ex row to prefetch, or NULL */
} next_prefetch;

/* 1 when the last expansion prefetched id's list. */
static inline int was_listed(const next_prefetch *np, uint32_t id)
{
    return id == np->listed[0] || id == np->listed[1] || id == np->listed[2];
}

static inline void prefetch_next(const qv_hnsw *h, const qv_hnsw_scratch *s, size_t nc, const qv_hnsw_tag *vis,
                                 qv_hnsw_tag tag, size_t lines, size_t xlines, next_prefetch *np)
{
    if (np->xrow) {
        for (size_t l = 0; l < xlines; l++) __builtin_prefetch(np->xrow + 64 * l, 0, 2);
        np->xrow = NULL;
    }
    const uint32_t nx = nc ? s->cand[0].id : QV_HNSW_NONE;
    if (nc && nx != np->ahead && was_listed(np, nx)) {
        prefetch_ahead(h, nx, vis, tag, lines);
        np->ahead = nx;
    }
    for (size_t t = 0; t < 3; t++) {
        np->listed[t] = t < nc ? s->cand[t].id : QV_HNSW_NONE;
        if (t < nc) prefetch_list(h, np->listed[t]);
    }
}

static size_t walk_codes(const qv_hnsw *h, const qv_codec *c, qv_hnsw_scratch *s, qv_codec_query *qq,
                         const uint32_t *eps, size_t n_ep, size_t ef, const qv_hnsw_filter *f, size_t max_visits,
                         int prefetch_vec, float explore,
                         const float *q, size_t k, size_t *n_exact)
{
    const size_t xlines = h->xcodes ? h->ex_bytes / 64 : 0;
    pipe_state p = {.k = k, .vv = qv_hnsw_vecs_of(h)};
    /* bit1 re-scores: its float reads are prefetched whatever prefetch_vec says (gated by it,
     * as from 8dcdcf3, ef >= 16 prefetched nothing: fashion-mnist-784 M12 -15-20% QPS). */
    if (p.vv.base && (prefetch_vec || n_exact)) p.vlines = (h->vec_bytes + 63) / 64;
    const qv_hnsw_tag tag = qv_hnsw_new_epoch(s);
    qv_hnsw_tag *vis = s->visited;
    uint32_t *nbuf = s->nbuf;
    qv_hnsw_cand *res = s->res;
    size_t nc = 0, nr = 0, visits = 1;
    const size_t lines = (c->row_read + 63) / 64;
    const size_t vlines = (h->vec_bytes + 63) / 64;
    /* Links of a node's level-0 list that share the lines of its code row (the list
     * follows the row in the node's block): read whenever the node is scored. */
    const size_t head_links = lines * 64 > h->links_off + 4 ? (lines * 64 - h->links_off - 4) / 4 : 0;
    /* Neighbours scored per call: with explore (bit1) eight rows with their bounds
     * (qv_codec_est_bound_x8; debian-use-512 +5-9% QPS, bench/RESULTS.md "Session 21"),
     * and four for a last group of at most four (the unvisited are padded to a multiple
     * of four, not of eight: a list leaves ~12 unvisited, and padding to 16 scored ~3.5
     * copies a list); otherwise four estimates. */
    const size_t lanes = explore > 0 ? 8 : 4;
    float lower = INFINITY;
    next_prefetch np = {{QV_HNSW_NONE, QV_HNSW_NONE, QV_HNSW_NONE}, QV_HNSW_NONE, NULL};
    /* bit1 with explore: the 1-bit bounds of the candidates pushed, by slot modulo
     * BOUND_CACHE, so that the re-scoring test at expansion reads a node's bound back
     * instead of computing it again from its row (a slot overwritten since: computed).
     * With the four-row last group below, against main (5 alternated rounds, 2026-12-07,
     * bench/RESULTS.md "Session 25"): debian-use-512 M12 explore 0.85 ef 10-20 +1-4%,
     * the same answers; each about half of it. */
    const int cache_bounds = n_exact && explore > 0;
    bound_slot bounds[BOUND_CACHE];
    if (cache_bounds) memset(bounds, 0xff, sizeof bounds);       /* id QV_HNSW_NONE */

    for (size_t i = 0; i < n_ep; i++) {
        const uint32_t ep = eps[i];
        if (vis[ep] == tag) continue;
        vis[ep] = tag;
        float d0 = qv_codec_est(c, qq, qv_hnsw_code(h, ep));
        float b0 = explore > 0 ? qv_codec_bound(c, qq, qv_hnsw_code(h, ep)) : 0.0f;
        float o0 = d0 - explore * b0;
        if (cache_bounds) bounds[ep % BOUND_CACHE] = (bound_slot){ep, b0};
        min_push(s->cand, &nc, o0, ep);
        if (qv_hnsw_accepted(h, f, ep)) max_push(res, &nr, d0, ep);
    }
    if (nr >= ef) lower = res[0].d;

    while (nc) {
        if (s->cand[0].d > lower) break;
        uint32_t cur = s->cand[0].id;
        float curd = s->cand[0].d;
        min_pop(s->cand, &nc);
        if (n_exact) {
            /* bit1: every expanded node goes down the re-scoring pipeline, unless its lower
             * bound (estimate minus the 1-bit error bound b) already loses to the threshold.
             * With explore the heap holds estimate - explore b: the bound is curd - (1 -
             * explore) b. */
            int keep = qv_hnsw_accepted(h, f, cur);
            if (keep) {                        /* the bound only for nodes that can be answers */
                const bound_slot *bs = &bounds[cur % BOUND_CACHE];
                float b = cache_bounds && bs->id == cur ? bs->b : qv_codec_bound(c, qq, qv_hnsw_code(h, cur));
                keep = !(curd - (1.0f - explore) * b > pipe_threshold(s, &p)) && (p.ne < s->expd_cap || grow_expd(s));
            }
            if (keep && xlines) {
                s->expd[p.ne++] = cur;
                np.xrow = (const char *)qv_hnsw_xcode(h, cur);     /* prefetch_next issues it */
            } else if (keep) {
                p.ne++;
                pipe_read(s, &p, -INFINITY, cur);
            }
            pipe_pump(h, c, s, qq, q, &p, 0);
        } else if (prefetch_vec) {
            /* The nodes expanded are the likely answers: their float vectors start loading
             * now, while the walk waits on codes, so re-scoring finds them in cache
             * (fashion-mnist-784, SQ4: re-scoring 10 took 11k cycles, now 3k). Only
             * where most expanded nodes are re-scored (see qv_hnsw_search_codes). */
            const char *fv = (const char *)qv_hnsw_vecs_at(p.vv, cur);
            for (size_t l = 0; l < vlines; l++) __builtin_prefetch(fv + 64 * l, 0, 2);
        }
        const uint32_t *list = qv_hnsw_list(h, cur, 0);
        uint32_t cnt = qv_hnsw_ld(&list[0]);
        if (cnt > h->m0) cnt = h->m0;
        /* Unvisited neighbours, without a branch per id: about half are visited, at random,
         * and the mispredicted branch cost more than the stores (+25% QPS at 784-d). */
        size_t nb = 0;
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t v = qv_hnsw_ld(&list[1 + i]);
            nbuf[nb] = v;
            nb += vis[v] != tag;
            vis[v] = tag;
        }
        if (cur != np.ahead)
            for (size_t j = 0; j < nb; j++) prefetch_row(h, nbuf[j], lines);
        if (!nb) {
            prefetch_next(h, s, nc, vis, tag, lines, xlines, &np);
            continue;
        }
        size_t full = nb;
        while (nb & 3) { nbuf[nb] = nbuf[nb - 1]; nb++; }
        for (size_t j = 0, w; j < nb; j += w) {
            float d8[8], b8[8];
            w = lanes == 8 && nb - j >= 8 ? 8 : 4;
            if (w == 8) {
                const uint8_t *r[8];
                for (int t = 0; t < 8; t++) r[t] = qv_hnsw_code(h, nbuf[j + t]);
                qv_codec_est_bound_x8(c, qq, r, d8, b8);
            } else {
                const uint8_t *r[4] = {qv_hnsw_code(h, nbuf[j]), qv_hnsw_code(h, nbuf[j + 1]),
                                       qv_hnsw_code(h, nbuf[j + 2]), qv_hnsw_code(h, nbuf[j + 3])};
                if (explore > 0) {
                    qv_codec_est_bound_x4(c, qq, r, d8, b8);
                } else {
                    qv_codec_est_x4(c, qq, r, d8);
                    b8[0] = b8[1] = b8[2] = b8[3] = 0.0f;
                }
            }
            /* After the first group's est, before its pushes: nx is the best candidate
             * left before this expansion, as the one-ahead prefetch expects. */
            if (j == 0) prefetch_next(h, s, nc, vis, tag, lines, xlines, &np);
            size_t lim = full - j < w ? full - j : w;
            /* explore (bit1): a neighbour is followed when its optimistic estimate could
             * enter the beam; the beam itself (res, lower) keeps the plain estimates. The
             * lanes are tested at once and only those that pass are visited (about 80% fail,
             * at random; a branch per lane mispredicted); a push may lower `lower`, so each
             * is tested again. */
            float o8[8];
            unsigned pass = 0;
            for (size_t t = 0; t < w; t++) {
                o8[t] = d8[t] - explore * b8[t];
                pass |= (unsigned)(o8[t] < lower) << t;
            }
            pass &= (1u << lim) - 1u;
            while (pass) {
                const unsigned t = (unsigned)__builtin_ctz(pass);
                pass &= pass - 1u;
                float d = d8[t], o = o8[t];
                uint32_t v = nbuf[j + t];
                if (!(o < lower)) continue;
                if (qv_hnsw_cand_room(s, nc)) {
                    min_push(s->cand, &nc, o, v);
                    if (cache_bounds) bounds[v % BOUND_CACHE] = (bound_slot){v, b8[t]};
                }
                if (!(d < lower)) continue;
                if (!qv_hnsw_accepted(h, f, v)) continue;
                max_push(res, &nr, d, v);
                if (nr > ef) max_pop(res, &nr);
                if (nr >= ef) lower = res[0].d;
            }
        }
        visits += full;
        if (visits >= max_visits) break;
        /* The next node for sure, when it is a neighbour just pushed: its list (the code
         * row just read holds the list's first line) starts loading now, and so do the
         * rows of the links already in that line (head_links of them): about 40% of the
         * expansions are of such nodes, which the one-ahead prefetch above cannot cover,
         * and the pipeline's work at the top of the next expansion hides part of the wait.
         * Measured (5 alternated rounds, 2026-12-06, bench/RESULTS.md "Session 12"):
         * debian-use-512 bit1 M12 explore 0.75 ef 10-16 +2.6-4.7%, debian-desc-384 M16
         * explore 0.6 ef 10-13 +1.2-3.4%, same answers. */
        if (nc && !was_listed(&np, s->cand[0].id)) {
            const uint32_t *nl = qv_hnsw_list(h, s->cand[0].id, 0);
            __builtin_prefetch((const char *)nl + 64, 0, 3);
            __builtin_prefetch((const char *)nl + 128, 0, 3);
            uint32_t cnt2 = qv_hnsw_ld(&nl[0]);
            if (cnt2 > head_links) cnt2 = (uint32_t)head_links;
            prefetch_unvisited(h, nl, cnt2, vis, tag, lines);
        }
    }
    if (n_exact) {
        pipe_pump(h, c, s, qq, q, &p, 1);
        *n_exact = p.nx;
    }
    return nr;
}

/* rescore() with a vector source (a collection's on_disk vectors): each lookup is a B-tree
 * walk in LMDB's map that ends in a pointer. The pointers of a chunk of candidates are
 * found first and their vectors prefetched, so that their cache misses overlap instead
 * of one lookup, then one vector's miss, then the next lookup. */
enum { SRC_CHUNK = 32 };
static size_t rescore_src(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q, size_t R, size_t k)
{
    const qv_hnsw_cand *w = s->work;
    const float *v[SRC_CHUNK];                  /* a source's vectors are float (index.c) */
    const size_t lines = (h->dim * sizeof(float) + 63) / 64;
    size_t nr = 0;
    for (size_t b = 0; b < R; b += SRC_CHUNK) {
        size_t n = R - b < SRC_CHUNK ? R - b : SRC_CHUNK;
        for (size_t i = 0; i < n; i++) {
            v[i] = (const float *)qv_hnsw_row(h, w[b + i].id);
            for (size_t l = 0; l < lines; l++) __builtin_prefetch((const char *)v[i] + 64 * l, 0, 3);
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t id = w[b + i].id;
            float d = v[i] == h->src_missing ? INFINITY : h->dist(q, v[i], h->dim);
            if (nr >= k && !worse(&s->res[0], d, id)) continue;
            max_push(s->res, &nr, d, id);
            if (nr > k) max_pop(s->res, &nr);
        }
    }
    return nr;
}

/* Exact distances for the best R of the len candidates in s->res (estimates); leaves the
 * best k of them in s->res. ahead: how many vectors ahead to prefetch (R when the walk
 * prefetched none: all of them start loading at once). */
static size_t rescore(const qv_hnsw *h, const qv_codec *c, qv_hnsw_scratch *s, const float *q,
                      qv_codec_query *qq, size_t len, size_t R, size_t k, size_t ahead)
{
    qv_hnsw_res_sorted(s, len);                 /* ascending estimates in s->work */
    if (R > len) R = len;
    if (!qv_hnsw_vec_inline(h) && c->kind != QV_QUANT_BIT1) return rescore_src(h, s, q, R, k);
    const qv_hnsw_cand *w = s->work;
    const qv_hnsw_vecs vv = qv_hnsw_vecs_of(h);
    const size_t lines = vv.base ? (h->vec_bytes + 63) / 64 : 0;
    for (size_t i = 0; i < R && i < ahead && lines; i++) {
        const char *p = (const char *)qv_hnsw_vecs_at(vv, w[i].id);
        for (size_t l = 0; l < lines; l++) __builtin_prefetch(p + 64 * l, 0, 3);
    }
    const int prune = c->kind == QV_QUANT_BIT1;
    size_t nr = 0;
    for (size_t i = 0; i < R; i++) {
        if (i + ahead < R && lines) {
            const char *p = (const char *)qv_hnsw_vecs_at(vv, w[i + ahead].id);
            for (size_t l = 0; l < lines; l++) __builtin_prefetch(p + 64 * l, 0, 3);
        }
        uint32_t id = w[i].id;
        if (prune && nr >= k && w[i].d - qv_codec_bound(c, qq, qv_hnsw_code(h, id)) > s->res[0].d) continue;
        float d = exact_dist(h, vv, q, id);
        if (nr >= k && !worse(&s->res[0], d, id)) continue;
        max_push(s->res, &nr, d, id);
        if (nr > k) max_pop(s->res, &nr);
    }
    return nr;
}

size_t qv_hnsw_search_codes(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q,
                            const qv_search_params *sp, const qv_hnsw_filter *f, size_t max_visits)
{
    const qv_codec *c = h->codec;
    uint64_t e = __atomic_load_n(&h->entry, __ATOMIC_ACQUIRE);
    qv_codec_query *qq;
    size_t k = sp->k;
    float over = sp->oversampling > 0 ? sp->oversampling : default_oversampling(c->kind);
    int rescore_on = sp->rescore != QV_RESCORE_OFF;
    size_t R = rescore_on ? (size_t)ceilf((float)k * over) : k;
    size_t ef = sp->ef > R ? sp->ef : R;            /* bit1: R only sets a floor for ef */
    if (sp->rescore == QV_RESCORE_ALL) R = ef;
    if (qv_hnsw_scratch_fit(s, ef, 0) != QV_OK) return 0;
    qv_codec_query_prepare(c, q, s->qbuf, s->qtmp, &qq);
    /* bit1: level 0 from the start nodes of the query's nearest centroids, else the
     * descent (hnsw_starts.c). */
    uint32_t eps[QV_HNSW_NSTARTS];
    size_t n_ep = qv_hnsw_starts_pick(h, qq, eps);
    if (!n_ep) {
        eps[0] = descend_codes(h, c, qq, (uint32_t)(e >> 32), (unsigned)(e & 0xffffffffu));
        n_ep = 1;
    }
    size_t ne = 0;
    const int expanded = c->kind == QV_QUANT_BIT1 && rescore_on;
    if (expanded && s->ex_cap < k + 1) {
        qv_hnsw_cand *p = qv_reallocarray(s->ex, k + 1, sizeof *p);
        if (!p) return 0;
        s->ex = p;
        if (!(p = qv_reallocarray(s->ub, k + 1, sizeof *p))) return 0;
        s->ub = p;
        s->bytes += 2 * (k + 1 - s->ex_cap) * sizeof *p;
        s->ex_cap = k + 1;
    }
    /* The walk prefetches the float vector of each node it expands while ef <= 1.5 R,
     * when most of them end up re-scored; with a wider beam most are not, and the R
     * re-scored vectors are better all prefetched at once when re-scoring starts.
     * Measured (1 thread, QPS with / without the walk's prefetch, medians of 3-4
     * alternated runs, 2026-12-05): fashion-mnist-784 (M16, x1.5: R 15) sq4 ef 16: 40.9k
     * / 36.2k, ef 48: 18.9k / 20.5k; sq8 ef 16: 31.3k / 29.1k, ef 48: 15.0k / 15.9k;
     * sift-debian-1m sq8 (R 20) ef 40: 21.6k / 23.0k, ef 128: 8.26k / 9.03k; sq4 (x3: R
     * 30) ef 40: 26.4k / 25.1k, ef 128: 9.82k / 10.18k. */
    const int walk_prefetch = rescore_on && qv_hnsw_vec_inline(h) && 2 * ef <= 3 * R;
    const float explore = c->kind == QV_QUANT_BIT1 ? sp->explore : 0.0f;
    size_t len = walk_codes(h, c, s, qq, eps, n_ep, ef, f, max_visits, walk_prefetch, explore, q, k,
                            expanded ? &ne : NULL);
    if (!rescore_on) return len;
    if (expanded) {
        memcpy(s->res, s->ex, ne * sizeof *s->ex);
        return ne;
    }
    return rescore(h, c, s, q, qq, len, R, k, walk_prefetch ? 8 : R);
}

uint32_t qv_hnsw_codes_nearest(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q, size_t ef)
{
    const qv_codec *c = h->codec;
    uint64_t e = __atomic_load_n(&h->entry, __ATOMIC_ACQUIRE);
    qv_codec_query *qq;
    if (e == QV_HNSW_ENTRY_NONE || qv_hnsw_scratch_fit(s, ef, 0) != QV_OK) return QV_HNSW_NONE;
    qv_codec_query_prepare(c, q, s->qbuf, s->qtmp, &qq);
    uint32_t ep = descend_codes(h, c, qq, (uint32_t)(e >> 32), (unsigned)(e & 0xffffffffu));
    size_t len = walk_codes(h, c, s, qq, &ep, 1, ef, NULL, SIZE_MAX, 0, 0.0f, q, 1, NULL);
    uint32_t best = QV_HNSW_NONE;
    float bd = INFINITY;
    for (size_t i = 0; i < len; i++)
        if (best == QV_HNSW_NONE || s->res[i].d < bd) bd = s->res[i].d, best = s->res[i].id;
    return best;
}

/* ---- training and encoding ---------------------------------------------------------- */

void qv_hnsw_encode_one(qv_hnsw *h, uint32_t slot, const float *v, float *tmp)
{
    qv_codec_encode_ex(h->codec, v, qv_hnsw_code(h, slot), h->xcodes ? qv_hnsw_xcode(h, slot) : NULL, tmp);
}

size_t qv_hnsw_encode_tmp_floats(const qv_hnsw *h)
{
    return qv_codec_scratch_floats(h->codec) + h->dim;
}

void qv_hnsw_encode_slots(qv_hnsw *h, uint32_t from, uint32_t to, float *tmp)
{
    float *vf = tmp + qv_codec_scratch_floats(h->codec);      /* u8 or f16 rows widened here */
    for (uint32_t s = from; s < to; s++) qv_hnsw_encode_one(h, s, qv_hnsw_vecf(h, s, vf), tmp);
}

/* Fit a new codec to the n_slots vectors present and swap it in with fresh rows. */
static int retrain(qv_hnsw *h, const float *sample, size_t n_sample)
{
    qv_codec *nc = NULL, *old;
    float *tmp = NULL;
    if (n_sample == 0) return QV_OK;
    int rc = qv_codec_new(h->codec->kind, h->dim, h->metric, h->codec->seed, &nc);
    if (rc != QV_OK) goto cleanup;
    if ((rc = qv_codec_train(nc, n_sample, sample)) != QV_OK) goto cleanup;
    if (!(tmp = qv_malloc((qv_codec_scratch_floats(nc) + h->dim) * sizeof *tmp))) { rc = QV_ENOMEM; goto cleanup; }
    pthread_rwlock_wrlock(&h->grow_lock);
    old = h->codec;
    h->codec = nc;
    nc = old;                                  /* freed below */
    qv_hnsw_encode_slots(h, 0, h->n_slots, tmp);
    qv_hnsw_starts_table(h);                   /* new centroids: found again after the add */
    h->codes_trained_n = h->n_slots > n_sample ? h->n_slots : n_sample;
    pthread_rwlock_unlock(&h->grow_lock);
    qv_hnsw_update_memory(h);
cleanup:
    qv_codec_free(nc);
    qv_free(tmp);
    return rc;
}

int qv_hnsw_codes_retrain(qv_hnsw *h, int force)
{
    size_t have = h->codec->trained_on, n = h->n_slots;
    /* Retrain when the index has doubled since the last training (codes_trained_n), not
     * when n reaches twice the sample: past QV_CODEC_TRAIN_MAX vectors the sample is every
     * stride-th one, 32K..64K of them, and n >= 2 * sample held on every add, which then
     * retrained and re-encoded every row -- a 1M sq8 collection imported in batches of
     * 1,000 took 702 s, most of it in qv_codec_sq_encode (perf, 2026-12-05). A loaded
     * index counts from its size at its first add. */
    if (!force && (have >= QV_CODEC_TRAIN_MAX || n == 0)) return QV_OK;
    if (!force && !h->codes_trained_n) {
        h->codes_trained_n = n;
        return QV_OK;
    }
    if (!force && n < 2 * h->codes_trained_n) return QV_OK;
    /* The vectors of slots [0, n_slots) are contiguous in vecs (a free slot still holds
     * the vector of a deleted point: as good a sample of the data as any). */
    if (h->vecs && h->vec_type == QV_VEC_F32) return retrain(h, (const float *)h->vecs, n);
    if (h->vecs) {
        /* u8 rows: the rows qv_codec_train would sample from floats (every stride-th),
         * widened, so the codes are those of the same vectors held as floats. */
        size_t stride = n > QV_CODEC_TRAIN_MAX ? (n + QV_CODEC_TRAIN_MAX - 1) / QV_CODEC_TRAIN_MAX : 1;
        size_t m = (n + stride - 1) / stride;
        float *sample = qv_reallocarray(NULL, m, (size_t)h->dim * sizeof(float));
        if (!sample) return QV_ENOMEM;
        for (size_t i = 0; i < m; i++)
            qv_row_to_float(h->vec_type, qv_hnsw_row(h, (uint32_t)(i * stride)), h->dim, sample + i * h->dim);
        int rc = retrain(h, sample, m);
        qv_free(sample);
        return rc;
    }
    /* From a source: a copy of up to QV_CODEC_TRAIN_MAX live ones, evenly spaced. */
    size_t m = n < QV_CODEC_TRAIN_MAX ? n : QV_CODEC_TRAIN_MAX, got = 0;
    float *sample = qv_reallocarray(NULL, m, (size_t)h->dim * sizeof(float));
    if (!sample) return QV_ENOMEM;
    for (size_t i = 0; i < m; i++) {
        uint32_t slot = (uint32_t)(i * n / m);
        const float *v = (const float *)qv_hnsw_row(h, slot);    /* a source's: float */
        if (h->state[slot] != QV_HNSW_LIVE || v == h->src_missing) continue;
        memcpy(sample + got++ * h->dim, v, h->dim * sizeof(float));
    }
    int rc = retrain(h, sample, got);
    qv_free(sample);
    return rc;
}

int qv_hnsw_check_vectors(const qv_hnsw *h)
{
    if (h->vecs_absent && !h->src.get)
        return qv_fail(QV_ESTATE, "hnsw: this quantized index was saved without its float vectors (a collection "
                       "reads them from storage); open the collection instead");
    return QV_OK;
}

int qv_hnsw_set_vec_source(qv_index *ix, const qv_vec_source *src)
{
    qv_hnsw *h = ix->impl;
    if (!h->codec) return 0;                   /* a float32 index walks on its vectors */
    if (h->vec_type != QV_VEC_F32) return 0;  /* its u8 or f16 rows are not the source's floats */
    if (!src) {                                /* keep the copy; save without it */
        __atomic_store_n(&h->vecs_owned_elsewhere, 1, __ATOMIC_RELAXED);
        return 1;
    }
    float *zeros = qv_aligned_calloc(h->dim, sizeof *zeros);
    if (!zeros) return 0;                      /* keeps its own copy: still correct */
    /* grow_lock only, not write_lock: a collection sets the source inside a read txn
     * (envlock shared), and writers take envlock (a session) under write_lock. Callers
     * set it before the index is shared or with its writers stopped (storage: wmutex). */
    pthread_rwlock_wrlock(&h->grow_lock);
    qv_free(h->src_missing);
    h->src_missing = zeros;
    h->src = *src;
    h->vecs_absent = 0;
    qv_region_release(&h->r_vecs);
    qv_region_release(&h->r_xcodes);
    h->vecs = NULL;
    h->vec_base = NULL;
    h->xcodes = NULL;
    pthread_rwlock_unlock(&h->grow_lock);
    qv_hnsw_update_memory(h);
    return 1;
}

int qv_hnsw_train(qv_index *ix, size_t n, const float *vecs)
{
    qv_hnsw *h = ix->impl;
    if (!h->codec) return QV_OK;
    pthread_mutex_lock(&h->write_lock);
    int rc = retrain(h, vecs, n);
    if (rc == QV_OK) h->codec_pinned = 1;        /* the caller's sample: no auto retraining */
    if (rc == QV_OK && h->n_live) {
        qv_hnsw_scratch *s = qv_hnsw_scratch_get(h);
        qv_hnsw_starts_find(h, s);               /* without a scratch: searches descend */
        qv_hnsw_scratch_put(h, s);
    }
    pthread_mutex_unlock(&h->write_lock);
    return rc;
}

int qv_hnsw_codes_train_on(qv_hnsw *h, const float *vecs, size_t n) { return retrain(h, vecs, n); }
