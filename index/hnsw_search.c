/*
 * index/hnsw_search.c -- HNSW queries: greedy descent through the upper levels, beam
 * search with ef at level 0, filtered search and batch search.
 *
 * The layer search keeps two binary heaps in per-thread scratch (candidates: min-heap;
 * results: max-heap of the ef best; an insertion's walk keeps one sorted array instead,
 * below) and a visited set of epoch tags that is never cleared per query (only when the
 * 16-bit epoch wraps). Each expansion first collects the
 * unvisited neighbours, prefetching their vectors as soon as each id is read, then
 * computes distances four at a time with the x4 kernels (the query is loaded once per
 * group). Links are read with acquire loads (see hnsw.h), no lock on the search path.
 *
 * Filters (allow_bits / accept): the walk passes through rejected nodes and only accepted
 * live nodes enter the results, so recall holds under moderate selectivity. When the
 * estimated selectivity is small (< 3%, or sel^2 * n <= 10 * ef: see the cost model in
 * search_one), or the graph walk would cover most of the index anyway, an exact scan
 * over the accepted points is cheaper and exact; it also backs up a
 * walk that ends with fewer than k results. Selectivity: popcount of allow_bits over the
 * live count; for an accept callback, a sample of 128 evenly spaced live slots.
 * sp->max_visits bounds the distance computations of the walk; 0 (auto) means no bound,
 * with the exact scan as the backstop. A caller's bound is respected strictly (no scan).
 */
#include "index/hnsw.h"
#include "index/hnsw_walk.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/bitset.h"
#include "core/error.h"

/* Cache lines of each unvisited neighbour's vector prefetched as soon as its id is read;
 * the hardware prefetcher follows the rest as the distance loop walks the vector. Fewer
 * lines leave the fill buffers to more neighbours at once: on sift-debian-1m (medians of
 * 3 alternated runs, 1 thread) 4 lines gave 17.6k / 6.55k QPS at ef 40 / 128 against
 * 15.9k / 6.04k for the whole 512-byte vector (1, 2 and 3 lines: in between), and on
 * sift-debian-100k 62.3k / 21.0k against 59.8k / 20.3k at ef 16 / 64. (Earlier, at
 * 100k, whole vectors had beaten 2 lines plus a prefetch of the next group of four.) */
#define PREFETCH_LINES 4
#define SAMPLE_ACCEPT 128u

/* Search results come out of the heap by pops. An LSD radix sort above 128 results (from
 * 03bbab6, for builds at efConstruction 200) lost that user when the insertion walk began
 * keeping a sorted array; for searches at ef 200 / 400 it did not win clearly
 * (sift-debian-100k float M16, 6 alternated rounds, 2026-12-05: 7.8k / 4.2k QPS with it,
 * 7.2k / 4.0k without, but the same two binaries also differed by 9% at ef 16, where both
 * pop the heap), so searches no longer use it. The build on codes re-sorts its pool by
 * exact distance (rescore_pool): that sort is an LSD radix sort of 64-bit keys (the
 * distance's bits mapped to unsigned order, then the slot: the heap's (d, id) order) with
 * 8-bit digits, skipping digits all keys share. */
#define RADIX_MAX 1024u
_Static_assert(QV_HNSW_BCODES_MAX_EF <= RADIX_MAX, "build-code re-scoring sorts by radix");

static inline uint32_t float_key(float d)
{
    d += 0.0f;                         /* -0 sorts as +0, as the heap compares them */
    uint32_t u;
    memcpy(&u, &d, sizeof u);
    return u ^ ((u >> 31) ? 0xffffffffu : 0x80000000u);
}

static inline float key_float(uint32_t u)
{
    u ^= (u >> 31) ? 0x80000000u : 0xffffffffu;
    float d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void radix_sorted(const qv_hnsw_cand *res, size_t len, qv_hnsw_cand *out)
{
    uint64_t a[RADIX_MAX], b[RADIX_MAX];
    uint32_t pos[256];
    uint64_t *src = a, *dst = b, any = 0, all = ~(uint64_t)0;
    for (size_t i = 0; i < len; i++) {
        uint64_t k = (uint64_t)float_key(res[i].d) << 32 | res[i].id;
        a[i] = k;
        any |= k;
        all &= k;
    }
    const uint64_t differ = any ^ all;
    for (unsigned sh = 0; sh < 64; sh += 8) {
        if (!((differ >> sh) & 0xff)) continue;
        memset(pos, 0, sizeof pos);
        for (size_t i = 0; i < len; i++) pos[(src[i] >> sh) & 0xff]++;
        uint32_t sum = 0;
        for (unsigned d = 0; d < 256; d++) {
            uint32_t c = pos[d];
            pos[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < len; i++) dst[pos[(src[i] >> sh) & 0xff]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    for (size_t i = 0; i < len; i++) {
        out[i].d = key_float((uint32_t)(src[i] >> 32));
        out[i].id = (uint32_t)src[i];
    }
}

size_t qv_hnsw_res_sorted(qv_hnsw_scratch *s, size_t len)
{
    size_t n = len;
    while (n) {
        s->work[n - 1] = s->res[0];
        max_pop(s->res, &n);
    }
    return len;
}

/* ---- layer search ----------------------------------------------------------------- */

int qv_hnsw_cand_grow(qv_hnsw_scratch *s)
{
    size_t c = s->cand_cap * 2;
    qv_hnsw_cand *p = qv_reallocarray(s->cand, c, sizeof *p);
    if (!p) return 0;
    s->bytes += (c - s->cand_cap) * sizeof *p;
    s->cand = p;
    s->cand_cap = c;
    return 1;
}

/* always_inline: with two callers GCC kept it out of line, found it free of side effects
 * and deleted the calls, so neither walk prefetched at all. */
static inline __attribute__((always_inline)) void prefetch_vec(qv_hnsw_vecs vv, uint32_t slot,
                                                               size_t lines)
{
    if (!vv.base) return;                      /* a source's lookup is the read itself */
    const char *p = (const char *)qv_hnsw_vecs_at(vv, slot);
    for (size_t i = 0; i < lines; i++) __builtin_prefetch(p + 64 * i, 0, 3);
}

/* The unvisited neighbours of one expansion (cnt ids on list) into nbuf, each marked with
 * tag when met and its vector's first lines prefetched as soon as its id is read; nbuf is
 * then padded to a multiple of four with the last id (callers ignore the padding's
 * distances). A node tagged tag .. tag + span counts as visited (the insertion walk marks
 * the nodes it expanded with tag + 1). Returns the count before padding. */
static inline __attribute__((always_inline)) size_t
gather_unvisited(qv_hnsw_vecs vv, const uint32_t *list, uint32_t cnt, uint32_t cap, qv_hnsw_tag *vis,
                 qv_hnsw_tag tag, qv_hnsw_tag span, uint32_t *nbuf, size_t lines)
{
    size_t nb = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        uint32_t v = qv_hnsw_ld(&list[1 + i]);
        if (v >= cap || (qv_hnsw_tag)(vis[v] - tag) <= span) continue;
        vis[v] = tag;
        nbuf[nb++] = v;
        prefetch_vec(vv, v, lines);
    }
    for (size_t p = nb; p & 3; p++) nbuf[p] = nbuf[p - 1];
    return nb;
}

/* Distances from q to the vectors of four slots with the x4 kernel (q loaded once). */
static inline __attribute__((always_inline)) void dist4(const qv_hnsw *h, qv_hnsw_vecs vv, const float *q,
                                                        const uint32_t id[4], float d4[4])
{
    const void *b[4] = {qv_hnsw_vecs_at(vv, id[0]), qv_hnsw_vecs_at(vv, id[1]),
                        qv_hnsw_vecs_at(vv, id[2]), qv_hnsw_vecs_at(vv, id[3])};
    h->dist_x4(q, b, h->dim, d4);
}

size_t qv_hnsw_search_layer(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q,
                            const uint32_t *ep, size_t n_ep, size_t ef, unsigned level,
                            int only_live, const qv_hnsw_filter *f, size_t max_visits)
{
    const qv_hnsw_tag tag = qv_hnsw_new_epoch(s);
    qv_hnsw_tag *vis = s->visited;
    qv_hnsw_cand *res = s->res;
    uint32_t *nbuf = s->nbuf;
    size_t nc = 0, nr = 0, visits = 0;
    const size_t dim = h->dim;
    const size_t vec_lines = (h->vec_bytes + 63) / 64;
    const size_t pf = vec_lines < PREFETCH_LINES ? vec_lines : PREFETCH_LINES;
    const uint32_t maxl = qv_hnsw_maxlinks(h, level);
    /* Links are bounded by the capacity (stable while grow_lock is held): an index opened
     * in place serves searches before its level-0 lists are verified (hnsw_io.c). */
    const uint32_t cap = (uint32_t)h->cap;
    const qv_hnsw_vecs vv = qv_hnsw_vecs_of(h);
    float lower = INFINITY;

    for (size_t i = 0; i < n_ep; i++) {
        uint32_t e = ep[i];
        if (vis[e] == tag) continue;
        vis[e] = tag;
        float d = h->dist(q, qv_hnsw_vecs_at(vv, e), dim);
        visits++;
        if (qv_hnsw_cand_room(s, nc)) min_push(s->cand, &nc, d, e);
        if (!only_live || qv_hnsw_accepted(h, f, e)) max_push(res, &nr, d, e);
    }
    while (nr > ef) max_pop(res, &nr);
    if (nr >= ef) lower = res[0].d;

    while (nc) {
        qv_hnsw_cand cur = s->cand[0];
        if (cur.d > lower) break;
        min_pop(s->cand, &nc);
        const uint32_t *list = qv_hnsw_list(h, cur.id, level);
        if (!list) continue;
        uint32_t cnt = qv_hnsw_ld(&list[0]);
        if (cnt > maxl) cnt = maxl;
        size_t full = gather_unvisited(vv, list, cnt, cap, vis, tag, 0, nbuf, pf);
        for (size_t j = 0; j < full; j += 4) {
            float d4[4];
            dist4(h, vv, q, nbuf + j, d4);
            size_t lim = full - j < 4 ? full - j : 4;
            for (size_t t = 0; t < lim; t++) {
                float d = d4[t];
                uint32_t v = nbuf[j + t];
                if (!(d < lower)) continue;
                if (qv_hnsw_cand_room(s, nc)) min_push(s->cand, &nc, d, v);
                if (only_live && !qv_hnsw_accepted(h, f, v)) continue;
                max_push(res, &nr, d, v);
                if (nr > ef) max_pop(res, &nr);
                if (nr >= ef) lower = res[0].d;
            }
        }
        visits += full;
        if (visits >= max_visits) break;
    }
    return nr;
}

/* ---- insertion walk --------------------------------------------------------------- */

/* The walk of an insertion (efConstruction 200) keeps its ef best in one array sorted by
 * distance that is also the candidate list: the next node to expand is the first one not
 * yet expanded, and a closer node found sends the cursor back to it. The same nodes are
 * expanded as with the two heaps (a candidate outside the ef best is never expanded),
 * and the results come out already sorted. The heap pushes and pops had cost ~13% of a
 * build; on the first 300,000 rows of sift-debian-1m (M 16, 2 threads, alternated under
 * the exclusive lock) builds took 26.4-30.7 s against 28.4-32.9 s (-5.5% to -10.8% in
 * each of 5 pairs), recall@10 at ef 48 / 128 0.9744-0.9748 / 0.9956 both ways.
 * Prefetching 2 lines of each vector instead of 4 here was 2% slower. Searches keep the
 * heaps (an ef of 10-128, and filters).
 * A large add walks on 8-bit codes (hnsw_build_codes.c) and re-scores what it found with
 * the floats; expanding a node, the walk prefetches the links of the pool's next entry
 * (a quarter of the walk's samples had sat on the load of the link count): 300K builds
 * 20.7 s against 25.6 s on codes without it and 29.0 s on floats (medians, alternated). */

/* Put (d, id) into the sorted pool of n entries (at most ef kept; the caller has checked
 * that it beats the last one when the pool is full). Returns its position. */
static inline size_t pool_insert(qv_hnsw_cand *pool, size_t n, size_t ef, float d, uint32_t id)
{
    /* Branch-free binary search for the first entry farther than d (an equal distance
     * goes after those already there): the branching one mispredicted half its steps. */
    const qv_hnsw_cand *b = pool;
    size_t len = n, lo = 0;
    if (len) {
        while (len > 1) {
            size_t half = len >> 1;
            b += (size_t)(b[half].d <= d) * half;
            len -= half;
        }
        lo = (size_t)(b - pool) + (b->d <= d);
    }
    size_t keep = n < ef ? n : ef - 1;
    if (keep > lo) memmove(pool + lo + 1, pool + lo, (keep - lo) * sizeof *pool);
    pool[lo].d = d;
    pool[lo].id = id;
    return lo;
}

/* Estimates of four build-code rows (hnsw_build_codes.c). */
static inline void est_x4(const qv_hnsw_bquery *bq, const uint32_t v[4], size_t dim, float out[4])
{
    const qv_hnsw_bcodes *b = bq->b;
    const uint8_t *r[4] = {b->rows + (size_t)v[0] * b->stride, b->rows + (size_t)v[1] * b->stride,
                           b->rows + (size_t)v[2] * b->stride, b->rows + (size_t)v[3] * b->stride};
    int32_t dot[4];
    b->k->dot_u8_x4(r, bq->w, dim, dot);
    for (int t = 0; t < 4; t++) out[t] = bq->a + b->f0[v[t]] - bq->gamma * (float)dot[t];
}

/* The walk itself, inlined into a float and a code instance (bq constant NULL or not). */
static inline __attribute__((always_inline)) size_t build_walk(const qv_hnsw *h, qv_hnsw_scratch *s,
                                                               const float *q, const qv_hnsw_bquery *bq,
                                                               uint32_t ep, size_t ef, unsigned level)
{
    /* Two epochs: `seen` marks the nodes met, seen + 1 those expanded (the pool moves as
     * it takes entries, so its own flags would have to move with it). */
    qv_hnsw_tag seen = qv_hnsw_new_epoch(s), expd = qv_hnsw_new_epoch(s);
    if (expd < seen) { seen = expd; expd = qv_hnsw_new_epoch(s); }
    qv_hnsw_tag *vis = s->visited;
    qv_hnsw_cand *pool = s->work;
    uint32_t *nbuf = s->nbuf;
    const size_t dim = h->dim;
    const size_t vec_lines = (h->vec_bytes + 63) / 64;
    const size_t pf = vec_lines < PREFETCH_LINES ? vec_lines : PREFETCH_LINES;
    const size_t code_lines = bq ? (dim + 63) / 64 : 0;
    const uint32_t maxl = qv_hnsw_maxlinks(h, level);
    const uint32_t cap = (uint32_t)h->cap;
    const qv_hnsw_vecs vv = qv_hnsw_vecs_of(h);
    if (!ef) return 0;

    vis[ep] = seen;
    float d0;
    if (bq) {
        const uint32_t e4[4] = {ep, ep, ep, ep};
        float d4[4];
        est_x4(bq, e4, dim, d4);
        d0 = d4[0];
    } else {
        d0 = h->dist(q, qv_hnsw_vecs_at(vv, ep), dim);
    }
    pool_insert(pool, 0, ef, d0, ep);
    size_t n = 1, k = 0;
    while (k < n) {
        const uint32_t cur = pool[k].id;
        if (vis[cur] == expd) { k++; continue; }
        vis[cur] = expd;
        const uint32_t *list = qv_hnsw_list(h, cur, level);
        if (level == 0 && k + 1 < n) {     /* the next node's links, likely expanded next */
            const char *nl = (const char *)qv_hnsw_list(h, pool[k + 1].id, 0);
            __builtin_prefetch(nl, 0, 3);
            __builtin_prefetch(nl + 64, 0, 3);
            __builtin_prefetch(nl + 128, 0, 3);
        }
        size_t nk = n;                 /* the first position a new entry took */
        if (list) {
            uint32_t cnt = qv_hnsw_ld(&list[0]);
            if (cnt > maxl) cnt = maxl;
            size_t full;
            if (bq) {
                size_t nb = 0;
                for (uint32_t i = 0; i < cnt; i++) {
                    uint32_t v = qv_hnsw_ld(&list[1 + i]);
                    if (v >= cap || (qv_hnsw_tag)(vis[v] - seen) <= 1) continue;
                    vis[v] = seen;
                    nbuf[nb++] = v;
                    const char *r = (const char *)(bq->b->rows + (size_t)v * bq->b->stride);
                    for (size_t l = 0; l < code_lines; l++) __builtin_prefetch(r + 64 * l, 0, 3);
                    __builtin_prefetch(&bq->b->f0[v], 0, 3);
                }
                for (size_t p = nb; p & 3; p++) nbuf[p] = nbuf[p - 1];
                full = nb;
            } else {
                full = gather_unvisited(vv, list, cnt, cap, vis, seen, 1, nbuf, pf);
            }
            for (size_t j = 0; j < full; j += 4) {
                float d4[4];
                if (bq)
                    est_x4(bq, nbuf + j, dim, d4);
                else
                    dist4(h, vv, q, nbuf + j, d4);
                size_t lim = full - j < 4 ? full - j : 4;
                for (size_t t = 0; t < lim; t++) {
                    float d = d4[t];
                    if (n >= ef && !(d < pool[n - 1].d)) continue;
                    size_t at = pool_insert(pool, n, ef, d, nbuf[j + t]);
                    if (n < ef) n++;
                    if (at < nk) nk = at;
                }
            }
        }
        k = nk <= k ? nk : k + 1;
    }
    return n;
}

/* Exact distances for the n entries of the pool (n <= QV_HNSW_BCODES_MAX_EF), which is
 * then sorted by them. */
static void rescore_pool(const qv_hnsw *h, qv_hnsw_cand *pool, size_t n, const float *q)
{
    const size_t dim = h->dim;
    const qv_hnsw_vecs vv = qv_hnsw_vecs_of(h);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t id[4] = {pool[i].id, pool[i + 1].id, pool[i + 2].id, pool[i + 3].id};
        float d4[4];
        dist4(h, vv, q, id, d4);
        for (int t = 0; t < 4; t++) pool[i + t].d = d4[t];
    }
    for (; i < n; i++) pool[i].d = h->dist(q, qv_hnsw_vecs_at(vv, pool[i].id), dim);
    radix_sorted(pool, n, pool);           /* reads every entry before it writes */
}

size_t qv_hnsw_build_layer(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q,
                           const qv_hnsw_bquery *bq, uint32_t ep, size_t ef, unsigned level)
{
    if (!bq) return build_walk(h, s, q, NULL, ep, ef, level);
    size_t n = build_walk(h, s, q, bq, ep, ef, level);
    rescore_pool(h, s->work, n, q);
    return n;
}

/* Moves only to inserted nodes: one still being inserted has empty lists below the level
 * it has reached, so the descent stopped on it and the level-0 walk from it met only that
 * node, not yet live: 0 hits with QV_OK for ~0.2% of searches racing an add. */
uint32_t qv_hnsw_descend(const qv_hnsw *h, const float *q, uint32_t cur, unsigned top,
                         unsigned stop)
{
    const size_t dim = h->dim;
    const qv_hnsw_vecs vv = qv_hnsw_vecs_of(h);
    float dc = h->dist(q, qv_hnsw_vecs_at(vv, cur), dim);
    for (unsigned l = top; l > stop; l--) {
        int changed = 1;
        while (changed) {
            changed = 0;
            const uint32_t *list = qv_hnsw_list(h, cur, l);
            if (!list) break;
            uint32_t cnt = qv_hnsw_ld(&list[0]);
            if (cnt > h->m) cnt = h->m;
            uint32_t best = cur;
            uint32_t i = 0;
            for (; i + 4 <= cnt; i += 4) {
                uint32_t v[4] = {qv_hnsw_ld(&list[1 + i]), qv_hnsw_ld(&list[2 + i]),
                                 qv_hnsw_ld(&list[3 + i]), qv_hnsw_ld(&list[4 + i])};
                float d4[4];
                dist4(h, vv, q, v, d4);
                for (int t = 0; t < 4; t++)
                    if (d4[t] < dc && qv_hnsw_inserted(h, v[t])) { dc = d4[t]; best = v[t]; changed = 1; }
            }
            for (; i < cnt; i++) {
                uint32_t v = qv_hnsw_ld(&list[1 + i]);
                float d = h->dist(q, qv_hnsw_vecs_at(vv, v), dim);
                if (d < dc && qv_hnsw_inserted(h, v)) { dc = d; best = v; changed = 1; }
            }
            cur = best;
        }
    }
    return cur;
}

/* ---- queries ---------------------------------------------------------------------- */

/* Exact top-k over the accepted live points (small selectivity or a fallback). */
static size_t exact_scan(const qv_hnsw *h, qv_hnsw_scratch *s, const float *q, size_t k,
                         const qv_hnsw_filter *f)
{
    uint32_t n = __atomic_load_n(&h->n_slots, __ATOMIC_ACQUIRE);
    const qv_hnsw_vecs vv = qv_hnsw_vecs_of(h);
    size_t nr = 0;
    float lower = INFINITY;
    for (uint32_t slot = 0; slot < n; slot++) {
        if (!qv_hnsw_accepted(h, f, slot)) continue;
        float d = h->dist(q, qv_hnsw_vecs_at(vv, slot), h->dim);
        if (nr >= k && !(d < lower)) continue;
        max_push(s->res, &nr, d, slot);
        if (nr > k) max_pop(s->res, &nr);
        if (nr >= k) lower = s->res[0].d;
    }
    return nr;
}

/* Estimated fraction of live points passing the filter. */
static double selectivity(const qv_hnsw *h, const qv_hnsw_filter *f, size_t n_live)
{
    double sel = 1.0;
    if (!n_live) return 0.0;
    if (f->bits) {
        double c = (double)qv_bits_count(f->bits, f->nbits);
        sel = c >= (double)n_live ? 1.0 : c / (double)n_live;
    }
    if (f->accept) {
        uint32_t n = __atomic_load_n(&h->n_slots, __ATOMIC_ACQUIRE);
        size_t step = n / SAMPLE_ACCEPT ? n / SAMPLE_ACCEPT : 1, tried = 0, pass = 0;
        for (uint32_t slot = 0; slot < n; slot += (uint32_t)step) {
            if (__atomic_load_n(&h->state[slot], __ATOMIC_ACQUIRE) != QV_HNSW_LIVE) continue;
            tried++;
            pass += f->accept(h->ids[slot], f->arg) != 0;
        }
        double a = tried ? (double)pass / (double)tried : 1.0;
        if (a < sel) sel = a;      /* both filters apply: the smaller bounds the product */
    }
    return sel;
}

/* One query with s already refreshed for the index; grow_lock held shared. */
static int search_one(qv_hnsw *h, qv_hnsw_scratch *s, const float *q, const qv_search_params *sp,
                      qv_hit *hits, size_t *n_hits)
{
    size_t k = sp->k, ef = sp->ef, len;
    qv_hnsw_filter fl = {sp->allow_bits, sp->allow_nbits, sp->accept, sp->accept_arg};
    const qv_hnsw_filter *f = (sp->allow_bits || sp->accept) ? &fl : NULL;
    *n_hits = 0;
    uint64_t e = __atomic_load_n(&h->entry, __ATOMIC_ACQUIRE);
    if (e == QV_HNSW_ENTRY_NONE) return QV_OK;
    if (qv_hnsw_scratch_fit(s, ef > k ? ef : k, 0) != QV_OK) return QV_ENOMEM;
    size_t n_live = __atomic_load_n(&h->n_live, __ATOMIC_RELAXED);
    size_t max_visits = sp->max_visits ? sp->max_visits : SIZE_MAX;
    int exact = 0;
    if (f) {
        double sel = selectivity(h, f, n_live);
        exact = qv_plan_exact(sel * (double)n_live, (double)n_live, 0, (uint32_t)ef);
    }
    if (exact) {
        len = exact_scan(h, s, q, k, f);
    } else if (h->codec) {
        len = qv_hnsw_search_codes(h, s, q, sp, f, max_visits);
        if (f && len < k && !sp->max_visits) len = exact_scan(h, s, q, k, f);
    } else {
        uint32_t ep = qv_hnsw_descend(h, q, (uint32_t)(e >> 32), (unsigned)(e & 0xffffffffu), 0);
        len = qv_hnsw_search_layer(h, s, q, &ep, 1, ef, 0, 1, f, max_visits);
        if (f && len < k && !sp->max_visits) len = exact_scan(h, s, q, k, f);
    }
    qv_hnsw_res_sorted(s, len);
    if (len > k) len = k;
    for (size_t i = 0; i < len; i++) {
        hits[i].id = h->ids[s->work[i].id];
        hits[i].score = qv_score_from_dist(h->metric, s->work[i].d);
    }
    *n_hits = len;
    return QV_OK;
}

int qv_hnsw_search(const qv_index *ix, const float *q, const qv_search_params *sp,
                   qv_hit *hits, size_t *n_hits)
{
    qv_hnsw *h = ix->impl;
    int rc;
    *n_hits = 0;
    pthread_rwlock_rdlock(&h->grow_lock);
    /* A vector source's session (a collection's search has begun it already). */
    int ss = qv_hnsw_src_begin(h);
    qv_hnsw_scratch *s = NULL;
    if ((rc = qv_hnsw_check_vectors(h)) != QV_OK || (rc = ss) < 0) {
        /* rc says why */
    } else if (!(s = qv_hnsw_scratch_get(h))) {
        rc = QV_ENOMEM;
    } else {
        rc = search_one(h, s, q, sp, hits, n_hits);
        qv_hnsw_scratch_put(h, s);
    }
    if (ss > 0) qv_hnsw_src_end(h);
    pthread_rwlock_unlock(&h->grow_lock);
    return rc;
}

typedef struct {
    qv_hnsw *h;
    const float *q;
    const qv_search_params *sp;
    qv_hit *hits;
    size_t *n_hits;
    qv_hnsw_scratch **scr;             /* one per pool worker, taken lazily */
    int rc;
    char msg[256];
} batch_job;

static void batch_one(void *arg, size_t i, unsigned worker)
{
    batch_job *job = arg;
    qv_hnsw *h = job->h;
    pthread_rwlock_rdlock(&h->grow_lock);
    int ss = qv_hnsw_src_begin(h), rc = ss < 0 ? ss : QV_OK;
    qv_hnsw_scratch *s = job->scr[worker];
    if (rc == QV_OK && !s) s = job->scr[worker] = qv_hnsw_scratch_get(h);
    if (rc == QV_OK && !s) rc = QV_ENOMEM;
    if (rc == QV_OK && (rc = qv_hnsw_scratch_refresh(h, s)) == QV_OK)
        rc = search_one(h, s, job->q + i * h->dim, job->sp, job->hits + i * job->sp->k, &job->n_hits[i]);
    if (ss > 0) qv_hnsw_src_end(h);
    pthread_rwlock_unlock(&h->grow_lock);
    if (rc != QV_OK) {
        job->n_hits[i] = 0;
        if (__atomic_exchange_n(&job->rc, rc, __ATOMIC_RELAXED) == QV_OK)
            snprintf(job->msg, sizeof job->msg, "query %zu: %s", i, qv_last_error());
    }
}

int qv_hnsw_search_batch(const qv_index *ix, size_t nq, const float *q,
                         const qv_search_params *sp, qv_hit *hits, size_t *n_hits)
{
    qv_hnsw *h = ix->impl;
    unsigned nw = qv_pool_threads(ix->pool);
    batch_job job = {h, q, sp, hits, n_hits, NULL, QV_OK, {0}};
    pthread_rwlock_rdlock(&h->grow_lock);
    int rc = qv_hnsw_check_vectors(h);
    pthread_rwlock_unlock(&h->grow_lock);
    if (rc != QV_OK) return rc;
    if (!(job.scr = qv_calloc(nw, sizeof *job.scr))) return QV_ENOMEM;
    qv_pool_run(ix->pool, nq, 0, batch_one, &job);
    for (unsigned w = 0; w < nw; w++) qv_hnsw_scratch_put(h, job.scr[w]);
    qv_free(job.scr);
    if (job.rc != QV_OK) return qv_fail(job.rc, "%s", job.msg);
    return QV_OK;
}
