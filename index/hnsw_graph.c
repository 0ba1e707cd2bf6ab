/*
 * index/hnsw_graph.c -- HNSW storage: creation, slot arrays and their growth, locks, the
 * pool of per-thread scratch objects, the graph self-check, size/memory and the ops table.
 * See index/hnsw.h for the layout and the locking rules.
 *
 * Growth: the slot arrays sit in regions with address space reserved ahead (four times
 * the slots asked for, at least RESERVE_MIN), so growing commits more of the same range
 * and copies nothing; grow_lock is taken exclusive only to publish the new capacity (a
 * running search sized its visited tags for the old one). Past the reservation the arrays
 * are relocated: fresh regions, a copy made while searches keep reading the old arrays,
 * then a swap under grow_lock exclusive. The blocks region asks for transparent huge
 * pages: at 1M points the graph is ~700 MB read at random, and 4 KiB pages make most
 * vector fetches miss the TLB as well as the cache.
 */
#include "index/hnsw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

#define MIN_CAP 64u
#define RESERVE_MIN 65536u             /* slots of address space reserved at least */

static int hnsw_create(qv_index *ix)
{
    qv_hnsw *h = qv_calloc(1, sizeof *h);
    if (!h) return QV_ENOMEM;
    h->dim = ix->p.dim;
    h->m = ix->p.m;
    h->m0 = 2 * ix->p.m;
    h->efc = ix->p.ef_construction;
    h->flags = ix->p.flags;
    h->metric = ix->p.metric;
    h->ml = 1.0 / log((double)h->m);
    ix->impl = h;
    h->vec_type = ix->p.vec_type;                    /* u8, f16 only with codes (index.c) */
    h->vec_bytes = qv_row_bytes(h->vec_type, h->dim);
    if (ix->p.quant != QV_QUANT_NONE) {
        int rc = qv_codec_new(ix->p.quant, h->dim, h->metric, ix->p.seed, &h->codec);
        if (rc != QV_OK) return rc;          /* destroy() cleans up */
        h->links_off = (h->codec->row_bytes + 3) & ~(size_t)3;
        h->vec_stride = h->vec_bytes;
        h->ex_bytes = h->codec->ex_bytes;
    } else {
        h->links_off = (size_t)h->dim * sizeof(float);
    }
    h->block_bytes = (h->links_off + (1 + (size_t)h->m0) * sizeof(uint32_t) + 63) & ~(size_t)63;
    if (!h->codec) h->vec_stride = h->block_bytes;
    qv_row_kernels(h->metric, h->vec_type, &h->dist, &h->dist_x4);
    h->entry = QV_HNSW_ENTRY_NONE;
    qv_hnsw_starts_clear(h);
    h->fd = -1;
    qv_region_init(&h->r_blocks);
    qv_region_init(&h->r_ids);
    qv_region_init(&h->r_levels);
    qv_region_init(&h->r_state);
    qv_region_init(&h->r_upper);
    qv_region_init(&h->r_pool);
    qv_region_init(&h->r_vecs);
    qv_region_init(&h->r_xcodes);
    qv_rng_seed(&h->rng, ix->p.seed);
    pthread_mutex_init(&h->write_lock, NULL);
    pthread_mutex_init(&h->entry_lock, NULL);
    pthread_mutex_init(&h->scratch_lock, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Searches arrive continuously; without writer preference a resize could starve. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&h->grow_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    for (size_t i = 0; i < QV_HNSW_NSTRIPES; i++) pthread_mutex_init(&h->stripes[i], NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);      /* the reaper's deadlines */
    pthread_cond_init(&h->bc_cond, &ca);
    pthread_condattr_destroy(&ca);
    h->locks_ready = 1;
    int rc = qv_idmap_init(&h->map, 0);
    if (rc != QV_OK) return rc;          /* destroy() cleans up */
    qv_hnsw_update_memory(h);
    return QV_OK;
}

static void scratch_free(qv_hnsw_scratch *s)
{
    if (!s) return;
    qv_free(s->visited);
    qv_free(s->cand);
    qv_free(s->res);
    qv_free(s->work);
    qv_free(s->sel);
    qv_free(s->nbuf);
    qv_free(s->qbuf);
    qv_free(s->qtmp);
    qv_free(s->vf);
    qv_free(s->expd);
    qv_free(s->ex);
    qv_free(s->xlo);
    qv_free(s->fl);
    qv_free(s->ub);
    qv_free(s);
}

static void hnsw_destroy(qv_index *ix)
{
    qv_hnsw *h = ix->impl;
    if (!h) return;
    if (h->locks_ready) qv_hnsw_bcodes_shutdown(h);
    if (h->upper)
        for (size_t i = 0; i < h->cap; i++) qv_hnsw_upper_free(h, h->upper[i]);
    qv_region_release(&h->r_blocks);
    qv_region_release(&h->r_ids);
    qv_region_release(&h->r_levels);
    qv_region_release(&h->r_state);
    qv_region_release(&h->r_upper);
    qv_region_release(&h->r_vecs);
    qv_region_release(&h->r_xcodes);
    qv_region_release(&h->r_pool);
    qv_codec_free(h->codec);
    qv_free(h->start_tab);
    qv_free(h->src_missing);
    if (h->fd >= 0) close(h->fd);
    qv_free(h->file_name);
    qv_free(h->free_slots);
    qv_idmap_release(&h->map);
    for (size_t i = 0; i < h->n_spare; i++) scratch_free(h->spare[i]);
    qv_free(h->spare);
    if (h->locks_ready) {
        pthread_mutex_destroy(&h->write_lock);
        pthread_mutex_destroy(&h->entry_lock);
        pthread_mutex_destroy(&h->scratch_lock);
        pthread_rwlock_destroy(&h->grow_lock);
        pthread_cond_destroy(&h->bc_cond);
        for (size_t i = 0; i < QV_HNSW_NSTRIPES; i++) pthread_mutex_destroy(&h->stripes[i]);
    }
    qv_free(h);
    ix->impl = NULL;
}

void qv_hnsw_upper_free(qv_hnsw *h, uint32_t *u)
{
    if (u && !qv_region_in_file(&h->r_pool, u)) qv_free(u);
}

#define N_REGIONS 7

/* Bytes per slot of each array, in the order of slot_regions(); 0 = not used (the float
 * vectors of a float32 index sit in its blocks). */
static void slot_sizes(const qv_hnsw *h, size_t sz[N_REGIONS])
{
    sz[5] = h->codec && !h->src.get && !h->vecs_absent ? h->vec_bytes : 0;
    sz[6] = sz[5] ? h->ex_bytes : 0;             /* ex rows live and go with the vectors */
    sz[0] = h->block_bytes;
    sz[1] = sizeof *h->ids;
    sz[2] = sizeof *h->levels;
    sz[3] = sizeof *h->state;
    sz[4] = sizeof *h->upper;
}

static void slot_regions(qv_hnsw *h, qv_region *r[N_REGIONS])
{
    r[5] = &h->r_vecs;
    r[6] = &h->r_xcodes;
    r[0] = &h->r_blocks;
    r[1] = &h->r_ids;
    r[2] = &h->r_levels;
    r[3] = &h->r_state;
    r[4] = &h->r_upper;
}

/* Point the array fields at the regions' starts. */
static void bind_arrays(qv_hnsw *h)
{
    h->blocks = h->r_blocks.base;
    h->ids = (uint64_t *)h->r_ids.base;
    h->levels = h->r_levels.base;
    h->state = h->r_state.base;
    h->upper = (uint32_t **)h->r_upper.base;
    h->vecs = h->codec ? h->r_vecs.base : NULL;              /* NULL with a source */
    h->vec_base = h->codec ? h->r_vecs.base : h->blocks;
    h->xcodes = h->r_xcodes.base;
}

/* Move the arrays into fresh regions reserving `reserve` slots, `cap` of them usable, the
 * current contents copied (write_lock held: nothing changes them meanwhile). */
static int relocate(qv_hnsw *h, size_t cap, size_t reserve)
{
    qv_region nr[N_REGIONS], *cur[N_REGIONS];
    size_t sz[N_REGIONS];
    int rc = QV_OK;
    slot_sizes(h, sz);
    slot_regions(h, cur);
    for (int i = 0; i < N_REGIONS; i++) qv_region_init(&nr[i]);
    for (int i = 0; i < N_REGIONS && rc == QV_OK; i++) {
        if (!sz[i]) continue;
        if (reserve > SIZE_MAX / sz[i]) rc = qv_fail(QV_ENOMEM, "hnsw: %zu slots do not fit the address space", reserve);
        else if ((rc = qv_region_reserve(&nr[i], reserve * sz[i])) == QV_OK) rc = qv_region_commit(&nr[i], cap * sz[i]);
    }
    if (rc != QV_OK) {
        for (int i = 0; i < N_REGIONS; i++) qv_region_release(&nr[i]);
        return rc;
    }
    /* Huge pages for the blocks, and for the float vectors of a quantized index: the walk
     * and the re-scoring jump between random slots of arrays of tens to hundreds of MB,
     * and on 4 KiB pages nearly every float vector re-scored (3 KiB at 784-d) also missed
     * the TLB (fashion-mnist-784, bit1 M16, 1 thread, ef 16-48, 2026-12-05: faster in 13 of
     * 18 alternated pairs, by 4-20%; bench/RESULTS.md). */
    qv_region_hugepages(&nr[0]);
    qv_region_hugepages(&nr[5]);
    qv_region_hugepages(&nr[6]);
    for (int i = 0; i < N_REGIONS; i++)
        if (h->cap && sz[i]) memcpy(nr[i].base, cur[i]->base, h->cap * sz[i]);
    qv_region old[N_REGIONS];
    pthread_rwlock_wrlock(&h->grow_lock);
    for (int i = 0; i < N_REGIONS; i++) {
        old[i] = *cur[i];
        *cur[i] = nr[i];
    }
    bind_arrays(h);
    h->cap = cap;
    h->reserve_cap = reserve;
    pthread_rwlock_unlock(&h->grow_lock);
    for (int i = 0; i < N_REGIONS; i++) qv_region_release(&old[i]);
    return QV_OK;
}

int qv_hnsw_reserve(qv_hnsw *h, size_t need)
{
    if (need <= h->cap) return QV_OK;
    if (need > UINT32_MAX - 1) return qv_fail(QV_EFULL, "hnsw: at most %u points", UINT32_MAX - 1);
    size_t cap = h->cap + h->cap / 2;
    if (cap < need) cap = need;
    if (cap < MIN_CAP) cap = MIN_CAP;
    if (cap > UINT32_MAX - 1) cap = UINT32_MAX - 1;
    if (need > h->reserve_cap) {
        size_t reserve = need > (SIZE_MAX / 4) ? need : 4 * need;
        if (reserve < RESERVE_MIN) reserve = RESERVE_MIN;
        if (cap > reserve) cap = reserve;
        return relocate(h, cap, reserve);
    }
    if (cap > h->reserve_cap) cap = h->reserve_cap;
    qv_region *r[N_REGIONS];
    size_t sz[N_REGIONS];
    slot_sizes(h, sz);
    slot_regions(h, r);
    /* Committing more than we end up using is harmless: a failure leaves cap as it was. */
    for (int i = 0; i < N_REGIONS; i++) {
        if (!sz[i]) continue;
        int rc = qv_region_commit(r[i], cap * sz[i]);
        if (rc != QV_OK) return rc;
    }
    pthread_rwlock_wrlock(&h->grow_lock);
    h->cap = cap;
    pthread_rwlock_unlock(&h->grow_lock);
    return QV_OK;
}

/* Grow an array of T to at least n entries (keeps contents). */
static int grow(void **p, size_t *cap, size_t n, size_t elem, size_t *bytes)
{
    if (n <= *cap) return QV_OK;
    size_t c = *cap ? *cap : 16;
    while (c < n) c *= 2;
    void *q = qv_reallocarray(*p, c, elem);
    if (!q) return QV_ENOMEM;
    *bytes += (c - *cap) * elem;
    *p = q;
    *cap = c;
    return QV_OK;
}

int qv_hnsw_scratch_fit(qv_hnsw_scratch *s, size_t ef, size_t work)
{
    if (grow((void **)&s->res, &s->res_cap, ef + 2, sizeof *s->res, &s->bytes) != QV_OK) return QV_ENOMEM;
    if (grow((void **)&s->cand, &s->cand_cap, ef + 2, sizeof *s->cand, &s->bytes) != QV_OK) return QV_ENOMEM;
    if (work < ef + 2) work = ef + 2;
    if (grow((void **)&s->work, &s->work_cap, work, sizeof *s->work, &s->bytes) != QV_OK) return QV_ENOMEM;
    return QV_OK;
}

/* Size s for the index as it is now (visited tags for every slot). */
int qv_hnsw_scratch_refresh(qv_hnsw *h, qv_hnsw_scratch *s)
{
    if (s->visited_cap < h->cap) {
        qv_hnsw_tag *v = qv_reallocarray(s->visited, h->cap, sizeof *v);
        if (!v) return QV_ENOMEM;
        memset(v + s->visited_cap, 0, (h->cap - s->visited_cap) * sizeof *v);
        s->bytes += (h->cap - s->visited_cap) * sizeof *v;
        s->visited = v;
        s->visited_cap = h->cap;
    }
    if (grow((void **)&s->nbuf, &s->nbuf_cap, 4 * (size_t)h->m0 + 4, sizeof *s->nbuf, &s->bytes) != QV_OK) return QV_ENOMEM;
    if (grow((void **)&s->sel, &s->sel_cap, h->m0 + 1, sizeof *s->sel, &s->bytes) != QV_OK) return QV_ENOMEM;
    if (h->vec_type != QV_VEC_F32 && !s->vf) {
        if (!(s->vf = qv_calloc(3 * (size_t)h->dim, sizeof *s->vf))) return QV_ENOMEM;
        s->bytes += 3 * (size_t)h->dim * sizeof *s->vf;
    }
    if (h->codec && !s->qbuf) {
        /* Sizes depend only on the codec's kind and dim, which retraining keeps. */
        if (!(s->qbuf = qv_aligned_calloc(1, h->codec->query_bytes))) return QV_ENOMEM;
        size_t nt = qv_codec_scratch_floats(h->codec);
        if (!(s->qtmp = qv_calloc(nt, sizeof *s->qtmp))) {
            qv_free(s->qbuf);
            s->qbuf = NULL;
            return QV_ENOMEM;
        }
        s->bytes += h->codec->query_bytes + nt * sizeof *s->qtmp;
    }
    return qv_hnsw_scratch_fit(s, 64, h->m0 + 1);
}

qv_hnsw_scratch *qv_hnsw_scratch_get(qv_hnsw *h)
{
    qv_hnsw_scratch *s = NULL;
    pthread_mutex_lock(&h->scratch_lock);
    if (h->n_spare) s = h->spare[--h->n_spare];
    pthread_mutex_unlock(&h->scratch_lock);
    if (!s) {
        if (!(s = qv_calloc(1, sizeof *s))) return NULL;
        s->bytes = sizeof *s;
        s->epoch = 1;
    }
    if (qv_hnsw_scratch_refresh(h, s) != QV_OK) {
        /* Keep what was grown: it is still a valid scratch. */
        qv_hnsw_scratch_put(h, s);
        return NULL;
    }
    return s;
}

void qv_hnsw_scratch_put(qv_hnsw *h, qv_hnsw_scratch *s)
{
    if (!s) return;
    pthread_mutex_lock(&h->scratch_lock);
    if (h->n_spare == h->spare_cap) {
        size_t c = h->spare_cap ? 2 * h->spare_cap : 8;
        qv_hnsw_scratch **p = qv_reallocarray(h->spare, c, sizeof *p);
        if (!p) {                      /* cannot keep it: drop it */
            pthread_mutex_unlock(&h->scratch_lock);
            scratch_free(s);
            return;
        }
        h->spare = p;
        h->spare_cap = c;
    }
    h->spare[h->n_spare++] = s;
    pthread_mutex_unlock(&h->scratch_lock);
}

qv_hnsw_tag qv_hnsw_new_epoch(qv_hnsw_scratch *s)
{
    if (++s->epoch == 0) {
        memset(s->visited, 0, s->visited_cap * sizeof *s->visited);
        s->epoch = 1;
    }
    return s->epoch;
}

void qv_hnsw_write_list(uint32_t *list, uint32_t owner, uint32_t max, const uint32_t *links,
                        uint32_t count)
{
    uint32_t old = qv_hnsw_ld(&list[0]);
    for (uint32_t i = 0; i < count; i++) qv_hnsw_st(&list[1 + i], links[i]);
    qv_hnsw_st(&list[0], count);
    for (uint32_t i = count; i < old && i < max; i++) qv_hnsw_st(&list[1 + i], owner);
}

size_t qv_hnsw_fix_bytes(size_t cap)
{
    return cap * (2 * sizeof(uint32_t) + 1);
}

/* Mark (in reach) every live node reachable at level 0 from `from`; queue is scratch. */
static void bfs(const qv_hnsw *h, uint32_t from, uint8_t *reach, uint32_t *queue)
{
    size_t head = 0, tail = 0;
    if (reach[from]) return;
    reach[from] = 1;
    queue[tail++] = from;
    while (head < tail) {
        const uint32_t *list = qv_hnsw_list(h, queue[head++], 0);
        uint32_t c = qv_hnsw_ld(&list[0]);
        if (c > h->m0) c = h->m0;
        for (uint32_t i = 0; i < c; i++) {
            uint32_t t = qv_hnsw_ld(&list[1 + i]);
            if (!reach[t] && __atomic_load_n(&h->state[t], __ATOMIC_ACQUIRE) == QV_HNSW_LIVE) {
                reach[t] = 1;
                queue[tail++] = t;
            }
        }
    }
}

/* Try to give w a link to z: append when w has room, else (if allowed) replace w's
 * farthest link whose target keeps another in-link. */
static int link_to(qv_hnsw *h, float *vf, const uint32_t *counts, uint32_t w, uint32_t z, int replace,
                   uint32_t *victim)
{
    uint32_t *list = qv_hnsw_list(h, w, 0);
    int done = 0;
    pthread_mutex_t *mu = qv_hnsw_stripe(h, w);
    pthread_mutex_lock(mu);
    uint32_t c = qv_hnsw_ld(&list[0]);
    if (c > h->m0) c = h->m0;
    *victim = QV_HNSW_NONE;
    if (c < h->m0) {
        qv_hnsw_st(&list[1 + c], z);
        qv_hnsw_st(&list[0], c + 1);
        done = 1;
    } else if (replace) {
        const float *vw = qv_hnsw_vecf(h, w, vf);
        float worst = 0;
        uint32_t at = QV_HNSW_NONE;
        for (uint32_t i = 0; i < c; i++) {
            uint32_t t = qv_hnsw_ld(&list[1 + i]);
            if (counts[t] < 2) continue;
            float d = h->dist(vw, qv_hnsw_row(h, t), h->dim);
            if (at == QV_HNSW_NONE || d > worst) { worst = d; at = i; }
        }
        if (at != QV_HNSW_NONE) {
            *victim = qv_hnsw_ld(&list[1 + at]);
            qv_hnsw_st(&list[1 + at], z);
            done = 1;
        }
    }
    pthread_mutex_unlock(mu);
    return done;
}

void qv_hnsw_fix_reach(qv_hnsw *h, qv_hnsw_scratch *s, void *tmp)
{
    uint64_t e = __atomic_load_n(&h->entry, __ATOMIC_ACQUIRE);
    if (e == QV_HNSW_ENTRY_NONE) return;
    const uint32_t n = h->n_slots, es = (uint32_t)(e >> 32);
    uint32_t *counts = tmp, *queue = counts + h->cap;
    uint8_t *reach = (uint8_t *)(queue + h->cap);
    memset(counts, 0, (size_t)n * sizeof *counts);
    memset(reach, 0, n);
    for (uint32_t y = 0; y < n; y++) {
        if (h->state[y] != QV_HNSW_LIVE) continue;
        const uint32_t *list = qv_hnsw_list(h, y, 0);
        uint32_t c = qv_hnsw_ld(&list[0]);
        if (c > h->m0) c = h->m0;
        for (uint32_t i = 0; i < c; i++) counts[qv_hnsw_ld(&list[1 + i])]++;
    }
    bfs(h, es, reach, queue);
    for (uint32_t z = 0; z < n; z++) {
        if (reach[z] || h->state[z] != QV_HNSW_LIVE) continue;
        /* The walk from the entry only meets reachable nodes: link the nearest to z. */
        const float *q = qv_hnsw_vecf(h, z, s->vf);
        uint32_t ep = qv_hnsw_descend(h, q, es, (unsigned)(e & 0xffffffffu), 0);
        size_t len = qv_hnsw_search_layer(h, s, q, &ep, 1, 64, 0, 1, NULL, SIZE_MAX);
        qv_hnsw_res_sorted(s, len);
        int linked = 0;
        uint32_t victim = QV_HNSW_NONE;
        for (int replace = 0; replace < 2 && !linked; replace++)
            for (size_t i = 0; i < len && !linked; i++) {
                uint32_t w = s->work[i].id;
                if (w != z && reach[w]) linked = link_to(h, s->vf ? s->vf + h->dim : NULL, counts, w, z, replace, &victim);
            }
        if (!linked) continue;
        counts[z]++;
        if (victim != QV_HNSW_NONE) counts[victim]--;
        bfs(h, z, reach, queue);
    }
}

static size_t hnsw_size(const qv_index *ix)
{
    const qv_hnsw *h = ix->impl;
    return __atomic_load_n(&h->n_live, __ATOMIC_RELAXED);
}

void qv_hnsw_update_memory(qv_hnsw *h)
{
    size_t vec = h->cap * h->vec_bytes;                       /* in blocks or in vecs */
    if (h->codec && !h->vecs) vec = 0;                        /* read from a source */
    size_t search = h->cap * (h->block_bytes + sizeof *h->ids + 2 + sizeof *h->upper);
    search += h->upper_bytes + h->free_cap * sizeof *h->free_slots + qv_idmap_memory(&h->map);
    if (!h->codec) search -= vec;                 /* the blocks' vector part */
    if (h->xcodes) search += h->cap * h->ex_bytes;
    size_t codes = h->codec ? h->cap * h->codec->row_bytes + qv_codec_memory(h->codec) : 0;
    if (h->xcodes) codes += h->cap * h->ex_bytes;
    if (h->bcodes) search += h->bcodes->cap * (h->bcodes->stride + sizeof(float));   /* kept, for now */
    if (h->start_tab) search += QV_HNSW_START_DIMS * QV_RABITQ_MAX_CLUSTERS * sizeof(float);   /* hnsw_starts.c */
    __atomic_store_n(&h->mem_vectors, vec, __ATOMIC_RELAXED);
    __atomic_store_n(&h->mem_codes, codes, __ATOMIC_RELAXED);
    __atomic_store_n(&h->mem_bytes, sizeof *h + vec + search + (h->codec ? qv_codec_memory(h->codec) : 0),
                     __ATOMIC_RELAXED);
}

/* Graph bytes (as of the last write) plus the idle scratch objects. Scratch in use by a
 * running search is not counted; it returns to the pool when the search ends. */
static size_t scratch_bytes(qv_hnsw *h)
{
    size_t b = 0;
    pthread_mutex_lock(&h->scratch_lock);
    for (size_t i = 0; i < h->n_spare; i++) b += h->spare[i]->bytes;
    b += h->spare_cap * sizeof *h->spare;
    pthread_mutex_unlock(&h->scratch_lock);
    return b;
}

static size_t hnsw_memory(const qv_index *ix)
{
    qv_hnsw *h = ix->impl;
    return __atomic_load_n(&h->mem_bytes, __ATOMIC_RELAXED) + scratch_bytes(h);
}

static void hnsw_memory_detail(const qv_index *ix, qv_index_memory_info *out)
{
    qv_hnsw *h = ix->impl;
    size_t all = __atomic_load_n(&h->mem_bytes, __ATOMIC_RELAXED);
    out->vectors = __atomic_load_n(&h->mem_vectors, __ATOMIC_RELAXED);
    out->codes = __atomic_load_n(&h->mem_codes, __ATOMIC_RELAXED);
    out->other = sizeof *h + scratch_bytes(h);
    out->search = all - out->vectors - sizeof *h;
    out->total = out->vectors + out->search + out->other;
}

int qv_hnsw_check(const qv_index *ix, qv_hnsw_report *r)
{
    qv_hnsw *h = ix->impl;
    uint32_t *queue = NULL;
    uint8_t *seen = NULL;
    int rc = QV_OK;
    memset(r, 0, sizeof *r);
    pthread_mutex_lock(&h->write_lock);
    uint32_t n = h->n_slots;
    uint64_t e = h->entry;
    unsigned top = 0;
    for (uint32_t s = 0; s < n; s++) {
        if (h->state[s] != QV_HNSW_LIVE) continue;
        r->live++;
        unsigned lv = h->levels[s];
        if (lv > top) top = lv;
        for (unsigned l = 0; l <= lv; l++) {
            const uint32_t *list = qv_hnsw_list(h, s, l);
            if (!list) { r->dangling++; continue; }
            uint32_t c = list[0];
            if (c > qv_hnsw_maxlinks(h, l)) { r->over_degree++; c = qv_hnsw_maxlinks(h, l); }
            for (uint32_t i = 0; i < c; i++) {
                uint32_t t = list[1 + i];
                if (t >= n || h->state[t] != QV_HNSW_LIVE) r->dangling++;
                else if (t == s) r->self_links++;
                else if (h->levels[t] < l) r->bad_level++;
            }
        }
    }
    r->max_level = top;
    if (e == QV_HNSW_ENTRY_NONE) {
        r->entry_ok = r->live == 0;
        goto cleanup;
    }
    uint32_t es = (uint32_t)(e >> 32);
    r->entry_ok = es < n && h->state[es] == QV_HNSW_LIVE && h->levels[es] == (e & 0xffffffffu) &&
                  (e & 0xffffffffu) == top;
    if (!r->entry_ok) goto cleanup;
    queue = qv_malloc((size_t)n * sizeof *queue);
    seen = qv_calloc(n, 1);
    if (!queue || !seen) { rc = QV_ENOMEM; goto cleanup; }
    size_t head = 0, tail = 0;
    queue[tail++] = es;
    seen[es] = 1;
    while (head < tail) {
        uint32_t s = queue[head++];
        r->reachable++;
        const uint32_t *list = qv_hnsw_list(h, s, 0);
        uint32_t c = list[0] < h->m0 ? list[0] : h->m0;
        for (uint32_t i = 0; i < c; i++) {
            uint32_t t = list[1 + i];
            if (t < n && !seen[t] && h->state[t] == QV_HNSW_LIVE) { seen[t] = 1; queue[tail++] = t; }
        }
    }
cleanup:
    pthread_mutex_unlock(&h->write_lock);
    qv_free(queue);
    qv_free(seen);
    return rc;
}

const qv_index_ops qv_hnsw_ops = {
    .kind = QV_INDEX_HNSW,
    .create = hnsw_create,
    .destroy = hnsw_destroy,
    .train = qv_hnsw_train,
    .add = qv_hnsw_add,
    .remove = qv_hnsw_remove,
    .search = qv_hnsw_search,
    .search_batch = qv_hnsw_search_batch,
    .save = qv_hnsw_save,
    .load = qv_hnsw_load,
    .open = qv_hnsw_open,
    .verify = qv_hnsw_verify,
    .size = hnsw_size,
    .memory = hnsw_memory,
    .memory_detail = hnsw_memory_detail,
    .set_vec_source = qv_hnsw_set_vec_source,
};
