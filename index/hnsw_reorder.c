/*
 * index/hnsw_reorder.c -- renumber the slots of an HNSW index so that graph neighbours
 * sit near each other in memory (graph reordering for cache locality, after Coleman et
 * al., "Graph Reordering for Cache-Efficient Near Neighbor Search", 2022).
 *
 * Slots are handed out in insertion order, so the level-0 neighbours of a node are
 * scattered over the whole block array; at 1M points (720 MB of blocks) nearly every
 * vector a query touches is a DRAM miss, and so is its visited tag. The new order is a
 * breadth-first walk of the level-0 graph from the entry point: a node's neighbours get
 * consecutive slots, so a search that expands a node reads a few nearby pages rather
 * than thirty-two scattered ones, the huge pages cover more of what it reads, and the
 * visited tags it writes share cache lines. Nodes the walk does not reach (deleted ones,
 * free slots, live nodes cut off) keep their relative order after the reached ones.
 *
 * The permutation is applied in place, one cycle at a time (no second copy of the
 * 700 MB block array): every link word is renamed first, then each slot array is
 * permuted. The user-visible ids travel with their slots, so searches return the same
 * ids; the id map, the entry point and the free list are renamed. Nothing is persisted
 * beyond the slot order itself: a saved index is simply written in the new order, and
 * files written before still open (their order is whatever it was).
 *
 * qv_hnsw_add calls this when the live count has grown by half since the last
 * renumbering and is at least REORDER_MIN (smaller graphs fit in the caches): geometric
 * steps, so the work over a growing index stays O(n) in all (three times the last one).
 * Searches wait for it (grow_lock exclusive): 0.64 s at 1M points, 0.04 s at 100K. On an
 * index opened in place it rewrites every page of the private mapping, which then
 * becomes anonymous memory of the same size.
 *
 * Measured on sift-debian-1m (the same graph before and after, 1 thread): +2-5% QPS at
 * 1M, +9-12% at 100K. Small at 1M because each visited vector is eight cache lines of its
 * own whatever the order; the order turns DRAM page misses into page hits.
 */
#include "index/hnsw.h"

#include <string.h>

#include "core/alloc.h"

/* Below this many live points the blocks (~700 bytes each at d=128) fit in the L2/L3
 * caches well enough that the order does not matter. */
#define REORDER_MIN 65536u

int qv_hnsw_reorder_due(const qv_hnsw *h)
{
    size_t live = h->n_live;
    return live >= REORDER_MIN && 2 * live >= 3 * h->ordered_live;
}

/* Slot j of an array of n rows of `bytes` each takes the row that was at order[j]:
 * follow each cycle of the permutation once, carrying its first row in tmp. done is a
 * bitmap of n bits, cleared by the caller. */
static void permute_rows(uint8_t *base, size_t bytes, uint32_t n, const uint32_t *order,
                         uint64_t *done, void *tmp)
{
    for (uint32_t start = 0; start < n; start++) {
        if (done[start >> 6] >> (start & 63) & 1) continue;
        done[start >> 6] |= 1ull << (start & 63);
        if (order[start] == start) continue;
        memcpy(tmp, base + (size_t)start * bytes, bytes);
        uint32_t j = start;
        for (;;) {
            uint32_t src = order[j];
            if (src == start) {
                memcpy(base + (size_t)j * bytes, tmp, bytes);
                break;
            }
            memcpy(base + (size_t)j * bytes, base + (size_t)src * bytes, bytes);
            done[src >> 6] |= 1ull << (src & 63);
            j = src;
        }
    }
}

static void rename_list(uint32_t *list, uint32_t words, uint32_t n, const uint32_t *perm)
{
    for (uint32_t i = 1; i <= words; i++)
        if (list[i] < n) list[i] = perm[list[i]];
}

/* The new order: breadth first from the entry over level 0, then every other slot. */
static void bfs_order(const qv_hnsw *h, uint32_t n, uint32_t entry, uint32_t *order,
                      uint64_t *seen)
{
    size_t head = 0, tail = 0;
    order[tail++] = entry;
    seen[entry >> 6] |= 1ull << (entry & 63);
    while (head < tail) {
        const uint32_t *list = qv_hnsw_list(h, order[head++], 0);
        uint32_t c = list[0] > h->m0 ? h->m0 : list[0];
        for (uint32_t i = 0; i < c; i++) {
            uint32_t t = list[1 + i];
            if (t >= n || (seen[t >> 6] >> (t & 63) & 1) || h->state[t] != QV_HNSW_LIVE) continue;
            seen[t >> 6] |= 1ull << (t & 63);
            order[tail++] = t;
        }
    }
    for (uint32_t s = 0; s < n; s++)
        if (!(seen[s >> 6] >> (s & 63) & 1)) order[tail++] = s;
}

int qv_hnsw_reorder(qv_hnsw *h)
{
    uint64_t e = __atomic_load_n(&h->entry, __ATOMIC_ACQUIRE);
    const uint32_t n = h->n_slots;
    if (e == QV_HNSW_ENTRY_NONE || n < 2) return 0;
    size_t words = ((size_t)n + 63) / 64;
    size_t row_max = h->block_bytes > h->vec_stride ? h->block_bytes : h->vec_stride;
    if (h->xcodes && h->ex_bytes > row_max) row_max = h->ex_bytes;
    uint32_t *perm = qv_malloc((size_t)n * sizeof *perm);
    uint32_t *order = qv_malloc((size_t)n * sizeof *order);
    uint64_t *bits = qv_calloc(words, sizeof *bits);
    void *tmp = qv_malloc(row_max);
    int done = 0;
    if (!perm || !order || !bits || !tmp) goto out;    /* an optimization: skip it */

    bfs_order(h, n, (uint32_t)(e >> 32), order, bits);
    for (uint32_t i = 0; i < n; i++) perm[order[i]] = i;

    pthread_rwlock_wrlock(&h->grow_lock);
    /* Rename every link word (tails hold the owner's id, renamed the same way). */
    for (uint32_t s = 0; s < n; s++) {
        rename_list(qv_hnsw_list(h, s, 0), h->m0, n, perm);
        uint32_t *u = h->upper[s];
        for (unsigned l = 0; u && l < h->levels[s]; l++)
            rename_list(u + (size_t)l * (h->m + 1), h->m, n, perm);
    }
    struct { uint8_t *base; size_t bytes; } arrays[] = {
        {h->blocks, h->block_bytes},
        {(uint8_t *)h->ids, sizeof *h->ids},
        {h->levels, 1},
        {h->state, 1},
        {(uint8_t *)h->upper, sizeof *h->upper},
        {h->vecs, h->vecs ? h->vec_bytes : 0},
        {h->xcodes, h->xcodes ? h->ex_bytes : 0},
    };
    for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++) {
        if (!arrays[a].base || !arrays[a].bytes) continue;
        memset(bits, 0, words * sizeof *bits);
        permute_rows(arrays[a].base, arrays[a].bytes, n, order, bits, tmp);
    }
    for (size_t i = 0; i < h->n_free; i++) h->free_slots[i] = perm[h->free_slots[i]];
    for (uint32_t s = 0; s < n; s++)
        if (h->state[s] == QV_HNSW_LIVE) (void)qv_idmap_put(&h->map, h->ids[s], s);  /* updates */
    __atomic_store_n(&h->entry, qv_hnsw_entry_pack(perm[e >> 32], (unsigned)(e & 0xffffffffu)),
                     __ATOMIC_RELEASE);
    qv_hnsw_starts_renumber(h, perm, n);
    h->ordered_live = h->n_live;
    pthread_rwlock_unlock(&h->grow_lock);
    done = 1;
out:
    qv_free(perm);
    qv_free(order);
    qv_free(bits);
    qv_free(tmp);
    return done;
}
