/*
 * index/hnsw_delete.c -- HNSW delete with graph repair (not only tombstones).
 *
 * A batch of deletes: (1) the slots leave the id map and turn DELETED, so searches stop
 * returning them at once; (2) if the entry point went, the highest live node takes over;
 * (3) every live node that links to a deleted one, at any level, is repaired in parallel:
 * its surviving links stay, and the freed places go, through the insertion heuristic
 * (checked against the links kept), to the nearest of the deleted neighbours' neighbours
 * (one more hop through deleted ones). Keeping the surviving links matters: re-selecting
 * the whole list from a fresh beam search measured clearly worse (recall@10 0.976 vs 0.992
 * for a fresh build at ef=64 after deleting 10% of sift-debian-100k), while this repair
 * matches the fresh build; (4) every live node no longer reachable at level 0 from the
 * entry point gets an in-link from its nearest reachable node (qv_hnsw_fix_reach);
 * (5) the grow lock is taken exclusive once to quiesce running searches (they may still
 * hold a deleted slot), then the slots join the free list for reuse.
 *
 * Writers are serialized by write_lock, so the deleted nodes' own lists stay untouched while
 * the repair reads them; searches run on meanwhile and may pass through a deleted node.
 */
#include "index/hnsw.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

static inline int live(const qv_hnsw *h, uint32_t s)
{
    return __atomic_load_n(&h->state[s], __ATOMIC_ACQUIRE) == QV_HNSW_LIVE;
}

static int cmp_cand(const void *a, const void *b)
{
    const qv_hnsw_cand *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

/* Distances from y to the ids in c[0..n) (ids already in c[i].id). */
static void fill_dists(const qv_hnsw *h, uint32_t y, qv_hnsw_cand *c, size_t n, float *vf)
{
    const float *vy = qv_hnsw_vecf(h, y, vf);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const void *b[4] = {qv_hnsw_row(h, c[i].id), qv_hnsw_row(h, c[i + 1].id),
                            qv_hnsw_row(h, c[i + 2].id), qv_hnsw_row(h, c[i + 3].id)};
        float d4[4];
        h->dist_x4(vy, b, h->dim, d4);
        for (int t = 0; t < 4; t++) c[i + t].d = d4[t];
    }
    for (; i < n; i++) c[i].d = h->dist(vy, qv_hnsw_row(h, c[i].id), h->dim);
}

typedef struct {
    qv_hnsw *h;
    qv_hnsw_scratch **scr;
    int keep;
} repair_job;

/* Add live z to the candidate list (deduplicated through the visited tags). */
static inline void add_cand(qv_hnsw_scratch *s, qv_hnsw_tag tag, uint32_t z, size_t *nc)
{
    if (s->visited[z] == tag || *nc >= s->work_cap) return;
    s->visited[z] = tag;
    s->work[(*nc)++].id = z;
}

static void repair_level(qv_hnsw *h, qv_hnsw_scratch *s, uint32_t y, unsigned l, int keep)
{
    uint32_t out[QV_HNSW_MAX_M0];
    const uint32_t maxl = qv_hnsw_maxlinks(h, l);
    uint32_t *list = qv_hnsw_list(h, y, l);
    if (!list) return;
    uint32_t cnt = qv_hnsw_ld(&list[0]);
    if (cnt > maxl) cnt = maxl;
    uint32_t i, nkeep = 0;
    for (i = 0; i < cnt; i++)
        if (!live(h, qv_hnsw_ld(&list[1 + i]))) break;
    if (i == cnt) return;                              /* nothing deleted here */
    int ss = qv_hnsw_src_begin(h);                     /* a vector source's session */
    qv_hnsw_tag tag = qv_hnsw_new_epoch(s);
    s->visited[y] = tag;
    for (i = 0; i < cnt; i++) {
        uint32_t z = qv_hnsw_ld(&list[1 + i]);
        if (live(h, z)) { s->visited[z] = tag; out[nkeep++] = z; }
    }
    size_t nc = 0;
    for (i = 0; i < cnt; i++) {
        uint32_t z = qv_hnsw_ld(&list[1 + i]);
        if (live(h, z)) continue;
        const uint32_t *dl = qv_hnsw_list(h, z, l);
        if (!dl) continue;
        uint32_t dc = qv_hnsw_ld(&dl[0]);
        if (dc > maxl) dc = maxl;
        for (uint32_t j = 0; j < dc; j++) {
            uint32_t w = qv_hnsw_ld(&dl[1 + j]);
            if (live(h, w)) { add_cand(s, tag, w, &nc); continue; }
            if (w == z) continue;
            /* A deleted neighbour of a deleted neighbour: one more hop. */
            const uint32_t *wl = qv_hnsw_list(h, w, l);
            if (!wl) continue;
            uint32_t wc = qv_hnsw_ld(&wl[0]);
            if (wc > maxl) wc = maxl;
            for (uint32_t k = 0; k < wc; k++) {
                uint32_t v = qv_hnsw_ld(&wl[1 + k]);
                if (live(h, v)) add_cand(s, tag, v, &nc);
            }
        }
    }
    /* The surviving links stay; the freed places go to the nearest candidates that pass
     * the heuristic against the links kept. */
    fill_dists(h, y, s->work, nc, s->vf);
    qsort(s->work, nc, sizeof *s->work, cmp_cand);
    uint32_t nsel = qv_hnsw_select(h, s->work, nc, maxl, keep, out, nkeep, s->vf ? s->vf + 2 * (size_t)h->dim : NULL);
    pthread_mutex_t *mu = qv_hnsw_stripe(h, y);
    pthread_mutex_lock(mu);
    qv_hnsw_write_list(list, y, maxl, out, nsel);
    pthread_mutex_unlock(mu);
    if (ss > 0) qv_hnsw_src_end(h);
}

static void repair_task(void *arg, size_t i, unsigned worker)
{
    repair_job *job = arg;
    qv_hnsw *h = job->h;
    uint32_t y = (uint32_t)i;
    if (!live(h, y)) return;
    unsigned lv = h->levels[y];
    for (unsigned l = 0; l <= lv; l++) repair_level(h, job->scr[worker], y, l, job->keep);
}

void qv_hnsw_remove_locked(qv_index *ix, const uint64_t *ids, size_t n, size_t *n_removed,
                           qv_hnsw_scratch **scr, void *fix_tmp)
{
    qv_hnsw *h = ix->impl;
    size_t cnt = 0;
    uint32_t *pending = h->free_slots + h->n_free;     /* room reserved by the caller */
    for (size_t i = 0; i < n; i++) {
        uint32_t s = qv_idmap_get(&h->map, ids[i]);
        if (s == QV_IDMAP_NONE) continue;
        qv_idmap_del(&h->map, ids[i]);
        __atomic_store_n(&h->state[s], QV_HNSW_DELETED, __ATOMIC_RELEASE);
        pending[cnt++] = s;
    }
    if (n_removed) *n_removed = cnt;
    if (!cnt) return;
    __atomic_sub_fetch(&h->n_live, cnt, __ATOMIC_RELAXED);

    uint64_t e = h->entry;
    uint32_t es = (uint32_t)(e >> 32);
    if (!live(h, es)) {
        uint64_t ne = QV_HNSW_ENTRY_NONE;
        int best = -1;
        for (uint32_t s = 0; s < h->n_slots; s++)
            if (live(h, s) && (int)h->levels[s] > best) {
                best = h->levels[s];
                ne = qv_hnsw_entry_pack(s, (unsigned)best);
            }
        /* Levels above the new top now hold only deleted nodes: nothing links there. */
        __atomic_store_n(&h->entry, ne, __ATOMIC_RELEASE);
        e = ne;
    }
    if (e != QV_HNSW_ENTRY_NONE) {
        repair_job job = {h, scr, (h->flags & QV_HNSW_KEEP_PRUNED) != 0};
        qv_pool_run(ix->pool, h->n_slots, 64, repair_task, &job);
        if (fix_tmp) qv_hnsw_fix_reach(h, scr[0], fix_tmp);
    }
    if (h->codec) qv_hnsw_starts_removed(h, scr ? scr[0] : NULL);

    /* Quiesce: after this no running search can hold a deleted slot. */
    pthread_rwlock_wrlock(&h->grow_lock);
    pthread_rwlock_unlock(&h->grow_lock);
    for (size_t i = 0; i < cnt; i++) {
        uint32_t s = pending[i];
        uint32_t *u = h->upper[s];
        if (u) h->upper_bytes -= (size_t)h->levels[s] * (h->m + 1) * sizeof(uint32_t);
        __atomic_store_n(&h->upper[s], NULL, __ATOMIC_RELEASE);
        qv_hnsw_upper_free(h, u);
        __atomic_store_n(&h->levels[s], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&h->state[s], QV_HNSW_EMPTY, __ATOMIC_RELEASE);
    }
    h->n_free += cnt;
    qv_hnsw_update_memory(h);
}

int qv_hnsw_remove(qv_index *ix, size_t n, const uint64_t *ids, size_t *n_removed)
{
    qv_hnsw *h = ix->impl;
    unsigned nw = qv_pool_threads(ix->pool);
    qv_hnsw_scratch **scr = NULL;
    void *fix = NULL;
    int rc = QV_OK;
    pthread_mutex_lock(&h->write_lock);
    int ss = qv_hnsw_src_begin(h);             /* reachability repair: in this thread */
    if (ss < 0) { rc = ss; goto cleanup; }
    if ((rc = qv_hnsw_check_vectors(h)) != QV_OK) goto cleanup;
    if ((rc = qv_hnsw_verify_locked(h)) != QV_OK) goto cleanup;
    if (!(scr = qv_calloc(nw, sizeof *scr))) { rc = QV_ENOMEM; goto cleanup; }
    if (!(fix = qv_malloc(qv_hnsw_fix_bytes(h->cap)))) { rc = QV_ENOMEM; goto cleanup; }
    size_t work = (size_t)h->m0 * (h->m0 + 1) + 1;
    for (unsigned w = 0; w < nw; w++) {
        if (!(scr[w] = qv_hnsw_scratch_get(h))) { rc = QV_ENOMEM; goto cleanup; }
        if ((rc = qv_hnsw_scratch_fit(scr[w], 0, work)) != QV_OK) goto cleanup;
    }
    if (h->free_cap < h->n_free + n) {
        uint32_t *fs = qv_reallocarray(h->free_slots, h->n_free + n, sizeof *fs);
        if (!fs) { rc = QV_ENOMEM; goto cleanup; }
        h->free_slots = fs;
        h->free_cap = h->n_free + n;
    }
    qv_hnsw_remove_locked(ix, ids, n, n_removed, scr, fix);
cleanup:
    qv_hnsw_update_memory(h);
    qv_free(fix);
    if (scr)
        for (unsigned w = 0; w < nw; w++) qv_hnsw_scratch_put(h, scr[w]);
    qv_free(scr);
    if (ss > 0) qv_hnsw_src_end(h);
    pthread_mutex_unlock(&h->write_lock);
    return rc;
}
