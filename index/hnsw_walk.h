/*
 * index/hnsw_walk.h -- pieces the float walk (hnsw_search.c) and the code walk
 * (hnsw_codes.c) share: the filter, the candidate and result heaps, the live/accept test.
 * Private to the hnsw_*.c files.
 */
#ifndef QV_INDEX_HNSW_WALK_H
#define QV_INDEX_HNSW_WALK_H

#include "core/bitset.h"
#include "index/hnsw.h"

struct qv_hnsw_filter {
    const uint64_t *bits;
    uint64_t nbits;
    qv_accept_fn accept;
    void *arg;
};

/* ---- heaps ------------------------------------------------------------------------ */

static inline void min_push(qv_hnsw_cand *hp, size_t *n, float d, uint32_t id)
{
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) >> 1;
        if (hp[p].d <= d) break;
        hp[i] = hp[p];
        i = p;
    }
    hp[i].d = d;
    hp[i].id = id;
}

static inline void min_pop(qv_hnsw_cand *hp, size_t *n)
{
    size_t len = --(*n);
    if (!len) return;
    qv_hnsw_cand last = hp[len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len) break;
        if (c + 1 < len && hp[c + 1].d < hp[c].d) c++;
        if (hp[c].d >= last.d) break;
        hp[i] = hp[c];
        i = c;
    }
    hp[i] = last;
}

/* Max-heap ordered by (d, id) so ties resolve the same way every run. */
static inline int worse(const qv_hnsw_cand *a, float d, uint32_t id)
{
    return a->d > d || (a->d == d && a->id > id);
}

static inline void max_push(qv_hnsw_cand *hp, size_t *n, float d, uint32_t id)
{
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) >> 1;
        if (worse(&hp[p], d, id)) break;
        hp[i] = hp[p];
        i = p;
    }
    hp[i].d = d;
    hp[i].id = id;
}

static inline void max_pop(qv_hnsw_cand *hp, size_t *n)
{
    size_t len = --(*n);
    if (!len) return;
    qv_hnsw_cand last = hp[len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len) break;
        if (c + 1 < len && worse(&hp[c + 1], hp[c].d, hp[c].id)) c++;
        if (!worse(&hp[c], last.d, last.id)) break;
        hp[i] = hp[c];
        i = c;
    }
    hp[i] = last;
}

/* ---- candidates and filters ------------------------------------------------------ */

/** Double the candidate heap (the scratch keeps it). 0 when memory ran out. */
int qv_hnsw_cand_grow(qv_hnsw_scratch *s);

/* The candidate heap can outgrow ef; it grows here (amortized). Returns 0 when memory
 * ran out, and the candidate is then skipped. */
static inline int qv_hnsw_cand_room(qv_hnsw_scratch *s, size_t nc)
{
    return nc < s->cand_cap || qv_hnsw_cand_grow(s);
}

static inline int qv_hnsw_accepted(const qv_hnsw *h, const qv_hnsw_filter *f, uint32_t slot)
{
    if (__atomic_load_n(&h->state[slot], __ATOMIC_ACQUIRE) != QV_HNSW_LIVE) return 0;
    if (!f) return 1;
    uint64_t id = h->ids[slot];
    if (f->bits && !qv_bits_test(f->bits, f->nbits, id)) return 0;
    if (f->accept && !f->accept(id, f->arg)) return 0;
    return 1;
}

#endif
