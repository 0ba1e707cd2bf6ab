/*
 * core/topk.h -- bounded top-k selection: keeps the k smallest (dist, id) pairs seen.
 *
 * A binary max-heap over caller- or init-provided storage: push is O(log k) and rejected
 * in O(1) once full and dist >= worst. qv_topk_sort() turns it into ascending order.
 * Ties are broken by the smaller id, so results are deterministic.
 */
#ifndef QV_CORE_TOPK_H
#define QV_CORE_TOPK_H

#include <stddef.h>
#include <stdint.h>

typedef struct { float dist; uint64_t id; } qv_pair;

typedef struct {
    qv_pair *items;                /* heap, items[0] = worst kept */
    size_t len, k;
    int owned;                     /* items allocated by qv_topk_init */
} qv_topk;

/** Allocate room for k items. @return QV_OK or QV_ENOMEM. */
int  qv_topk_init(qv_topk *t, size_t k);
/** Use caller storage of k items (no allocation; release is then a no-op). */
void qv_topk_init_with(qv_topk *t, qv_pair *storage, size_t k);
void qv_topk_release(qv_topk *t);                 /* NULL ok */
static inline void qv_topk_reset(qv_topk *t) { t->len = 0; }
/** Worst kept distance, or +INF while fewer than k are kept. */
float qv_topk_bound(const qv_topk *t);
/** Offer one pair; returns 1 when kept. */
int  qv_topk_push(qv_topk *t, float dist, uint64_t id);
/** Sort in place ascending by (dist, id); the heap is no longer usable until reset.
 *  Returns len. */
size_t qv_topk_sort(qv_topk *t);

#endif
