/*
 * storage/scroll.c -- qv_scroll: the ids of a collection's points in id order, optionally
 * filtered (the listing that Qdrant's scroll, count and delete-by-filter need).
 *
 * The live set is read under c->maplock held shared, with a read txn begun first (lock
 * order envlock -> maplock, as in search.c) so that a payload filter is answered by the
 * same planner as filtered searches (qv_filter_allowed_cached: payload index or payloads).
 * Internal ids are dense but unordered with respect to external ids, so the passing
 * external ids are collected and sorted: O(n log n) per call. That is plenty for pages of
 * collections up to some millions of points; a cursor over the "ids" table (sorted by
 * external id) would make a page O(page) for unfiltered listings if it ever matters.
 */
#include "storage/filter.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int qv_scroll(qv_coll *c, const qv_filter *filter, qv_accept_fn accept, void *accept_arg,
              uint64_t start, size_t limit, uint64_t *ids, size_t *n, uint64_t *total)
{
    MDB_txn *txn = NULL;
    uint64_t *bits = NULL, *all = NULL, allowed = 0;
    size_t m = 0;
    int rc, locked = 0;

    if (n) *n = 0;
    if (total) *total = 0;
    if (!c || !n || (limit && !ids)) return qv_fail(QV_EINVAL, "collection, n or ids is NULL");
    if ((rc = qv_coll_check_live(c)) != QV_OK) return rc;
    if ((rc = qv_lmdb_begin(c->db, 1, &txn)) != QV_OK) return rc;
    pthread_rwlock_rdlock(&c->maplock);
    locked = 1;
    uint64_t nbits;
    const uint64_t *set;
    if ((rc = qv_filter_read_set(c, txn, filter, &nbits, &set, &bits, &allowed)) != QV_OK) goto cleanup;
    size_t cap = (size_t)allowed;
    if (!(all = qv_reallocarray(NULL, cap ? cap : 1, sizeof *all))) { rc = QV_ENOMEM; goto cleanup; }
    for (size_t w = 0; w < (size_t)((nbits + 63) / 64); w++)
        for (uint64_t b = set[w]; b; b &= b - 1) {
            uint64_t iid = w * 64 + (uint64_t)__builtin_ctzll(b);
            if (iid >= nbits || !(c->live[iid / 64] >> (iid % 64) & 1)) continue;
            uint64_t ext = c->ext_of[iid];
            if (accept && !accept(ext, accept_arg)) continue;
            if (m == cap) { rc = qv_fail(QV_EINTERNAL, "scroll: more live points than counted"); goto cleanup; }
            all[m++] = ext;
        }
    pthread_rwlock_unlock(&c->maplock);
    locked = 0;
    qsort(all, m, sizeof *all, cmp_u64);
    size_t lo = 0, hi = m;                         /* first index with all[i] >= start */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (all[mid] < start) lo = mid + 1;
        else hi = mid;
    }
    size_t k = m - lo < limit ? m - lo : limit;
    if (k) memcpy(ids, all + lo, k * sizeof *ids);
    *n = k;
    if (total) *total = m;
cleanup:
    if (locked) pthread_rwlock_unlock(&c->maplock);
    qv_lmdb_abort(c->db, txn);
    qv_free(bits);
    qv_free(all);
    return rc;
}
