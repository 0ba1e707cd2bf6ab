/*
 * core/topk.c -- bounded top-k selection with a binary max-heap (see core/topk.h).
 *
 * Order: (dist, id) lexicographic, so among equal distances the smaller id is better and
 * results do not depend on scan order. items[0] is the worst kept pair; a push that is
 * not better than it is rejected in O(1) once the heap is full. NaN distances are never
 * kept (they would break the ordering the heap relies on).
 * qv_topk_sort() is the second half of heapsort: repeatedly move the worst to the end,
 * which leaves the array ascending, in place, with no allocation.
 */
#include "core/topk.h"

#include <math.h>

#include "core/alloc.h"
#include "quiver.h"

/* 1 when (da, ia) ranks worse than (db, ib). */
static inline int worse(float da, uint64_t ia, float db, uint64_t ib)
{
    return da > db || (da == db && ia > ib);
}

int qv_topk_init(qv_topk *t, size_t k)
{
    t->len = 0;
    t->k = k;
    t->owned = 1;
    t->items = qv_reallocarray(NULL, k ? k : 1, sizeof *t->items);
    if (!t->items) {
        t->k = 0;
        t->owned = 0;
        return QV_ENOMEM;
    }
    return QV_OK;
}

void qv_topk_init_with(qv_topk *t, qv_pair *storage, size_t k)
{
    t->items = storage;
    t->len = 0;
    t->k = k;
    t->owned = 0;
}

void qv_topk_release(qv_topk *t)
{
    if (!t) return;
    if (t->owned) qv_free(t->items);
    t->items = NULL;
    t->len = t->k = 0;
    t->owned = 0;
}

float qv_topk_bound(const qv_topk *t) { return t->len < t->k ? INFINITY : t->items[0].dist; }

static void sift_down(qv_pair *h, size_t len, size_t i)
{
    qv_pair x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len) break;
        if (c + 1 < len && worse(h[c + 1].dist, h[c + 1].id, h[c].dist, h[c].id)) c++;
        if (!worse(h[c].dist, h[c].id, x.dist, x.id)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

int qv_topk_push(qv_topk *t, float dist, uint64_t id)
{
    qv_pair *h = t->items;
    if (isnan(dist)) return 0;
    if (t->len < t->k) {
        size_t i = t->len++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!worse(dist, id, h[p].dist, h[p].id)) break;
            h[i] = h[p];
            i = p;
        }
        h[i].dist = dist;
        h[i].id = id;
        return 1;
    }
    if (t->k == 0 || !worse(h[0].dist, h[0].id, dist, id)) return 0;
    h[0].dist = dist;
    h[0].id = id;
    sift_down(h, t->len, 0);
    return 1;
}

size_t qv_topk_sort(qv_topk *t)
{
    qv_pair *h = t->items;
    for (size_t end = t->len; end > 1; end--) {
        qv_pair top = h[0];
        h[0] = h[end - 1];
        h[end - 1] = top;
        sift_down(h, end - 1, 0);
    }
    return t->len;
}
