/*
 * index/hnsw_insert.c -- HNSW insertion (Malkov & Yashunin, algorithms 1 and 4) and the
 * add() of a batch.
 *
 * A batch first acquires everything it can need (slot capacity, id map room, the upper
 * level arrays of every new node, one scratch per pool worker), so that once the index
 * starts changing nothing can fail: add() is all or nothing. Ids already present are
 * then removed with graph repair (hnsw_delete.c) and inserted again with their new
 * vector; their freed slots are reused by the same batch.
 *
 * Inserts run in parallel on ix->pool. A node's lists are written under its stripe lock;
 * linking back (neighbour y gains x) locks only y's stripe, so no thread holds two stripes.
 * A node whose level is above the current top holds entry_lock for its whole insertion,
 * as hnswlib does, so the entry point only moves up to fully linked nodes. Levels are drawn
 * from the index's seeded generator in batch order before the parallel part, so a fixed
 * seed with threads = 1 gives identical graphs.
 */
#include "index/hnsw.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"

uint32_t qv_hnsw_select(const qv_hnsw *h, const qv_hnsw_cand *cands, size_t n, uint32_t max,
                        int keep_pruned, uint32_t *out, uint32_t npre, float *vf)
{
    uint32_t nsel = npre, npr = 0;
    uint32_t pruned[QV_HNSW_MAX_M0];
    const void *sv[QV_HNSW_MAX_M0];
    const size_t dim = h->dim;
    for (uint32_t j = 0; j < npre; j++) sv[j] = qv_hnsw_row(h, out[j]);
    for (size_t i = 0; i < n && nsel < max; i++) {
        const void *rc = qv_hnsw_row(h, cands[i].id);
        const float *vc = qv_hnsw_vecf(h, cands[i].id, vf);
        const float dc = cands[i].d;
        int good = 1;
        uint32_t j = 0;
        /* Keep c only if it is closer to the base than to every kept neighbour. */
        for (; good && j + 4 <= nsel; j += 4) {
            float d4[4];
            h->dist_x4(vc, sv + j, dim, d4);
            if (d4[0] < dc || d4[1] < dc || d4[2] < dc || d4[3] < dc) good = 0;
        }
        for (; good && j < nsel; j++)
            if (h->dist(vc, sv[j], dim) < dc) good = 0;
        if (good) {
            sv[nsel] = rc;
            out[nsel++] = cands[i].id;
        } else if (keep_pruned && npr < max) {
            pruned[npr++] = cands[i].id;
        }
    }
    for (uint32_t j = 0; j < npr && nsel < max; j++) out[nsel++] = pruned[j];
    return nsel;
}

static void sort_cands(qv_hnsw_cand *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        qv_hnsw_cand t = a[i];
        size_t j = i;
        while (j && (a[j - 1].d > t.d || (a[j - 1].d == t.d && a[j - 1].id > t.id))) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = t;
    }
}

void qv_hnsw_connect(qv_hnsw *h, uint32_t y, uint32_t x, float dxy, unsigned l, int keep, float *vf)
{
    qv_hnsw_cand tmp[QV_HNSW_MAX_M0 + 1];
    uint32_t out[QV_HNSW_MAX_M0], cur[QV_HNSW_MAX_M0];
    const uint32_t maxl = qv_hnsw_maxlinks(h, l);
    pthread_mutex_t *mu = qv_hnsw_stripe(h, y);
    pthread_mutex_lock(mu);
    uint32_t *list = qv_hnsw_list(h, y, l);
    if (!list) goto done;
    uint32_t cnt = qv_hnsw_ld(&list[0]);
    if (cnt > maxl) cnt = maxl;
    for (uint32_t i = 0; i < cnt; i++) {
        cur[i] = qv_hnsw_ld(&list[1 + i]);
        if (cur[i] == x) goto done;
    }
    if (cnt < maxl) {
        qv_hnsw_st(&list[1 + cnt], x);
        qv_hnsw_st(&list[0], cnt + 1);
        goto done;
    }
    const float *vy = qv_hnsw_vecf(h, y, vf);
    uint32_t i = 0;
    for (; i + 4 <= cnt; i += 4) {
        const void *b[4] = {qv_hnsw_row(h, cur[i]), qv_hnsw_row(h, cur[i + 1]),
                            qv_hnsw_row(h, cur[i + 2]), qv_hnsw_row(h, cur[i + 3])};
        float d4[4];
        h->dist_x4(vy, b, h->dim, d4);
        for (int t = 0; t < 4; t++) { tmp[i + t].d = d4[t]; tmp[i + t].id = cur[i + t]; }
    }
    for (; i < cnt; i++) { tmp[i].d = h->dist(vy, qv_hnsw_row(h, cur[i]), h->dim); tmp[i].id = cur[i]; }
    tmp[cnt].d = dxy;
    tmp[cnt].id = x;
    sort_cands(tmp, cnt + 1);
    uint32_t nsel = qv_hnsw_select(h, tmp, cnt + 1, maxl, keep, out, 0, vf ? vf + h->dim : NULL);
    qv_hnsw_write_list(list, y, maxl, out, nsel);
done:
    pthread_mutex_unlock(mu);
}

/* Insert slot x, whose vector, id, level and empty lists are already in place. */
static void insert_one(qv_hnsw *h, qv_hnsw_scratch *s, uint32_t x, const qv_hnsw_bcodes *bc,
                       unsigned worker)
{
    const unsigned L = h->levels[x];
    const float *q = qv_hnsw_vecf(h, x, s->vf);
    float *vf = s->vf ? s->vf + h->dim : NULL;       /* u8 rows: connect's and select's */
    qv_hnsw_bquery bq;
    if (bc) qv_hnsw_bcodes_query(bc, q, worker, &bq);
    const int keep = (h->flags & QV_HNSW_KEEP_PRUNED) != 0;
    uint32_t sel[QV_HNSW_MAX_M0];
    int locked = 0;
    uint64_t e = __atomic_load_n(&h->entry, __ATOMIC_ACQUIRE);
    if (e == QV_HNSW_ENTRY_NONE || L > (e & 0xffffffffu)) {
        pthread_mutex_lock(&h->entry_lock);
        locked = 1;
        e = __atomic_load_n(&h->entry, __ATOMIC_ACQUIRE);
    }
    if (e != QV_HNSW_ENTRY_NONE) {
        uint32_t ep = (uint32_t)(e >> 32);
        unsigned top = (unsigned)(e & 0xffffffffu);
        if (top > L) ep = qv_hnsw_descend(h, q, ep, top, L);
        for (unsigned l = L < top ? L : top;; l--) {
            size_t len = qv_hnsw_build_layer(h, s, q, bc ? &bq : NULL, ep, h->efc, l);
            /* Drop x itself should a racing insert have linked it already. */
            size_t w = 0;
            for (size_t i = 0; i < len; i++)
                if (s->work[i].id != x) s->work[w++] = s->work[i];
            len = w;
            uint32_t nsel = qv_hnsw_select(h, s->work, len, h->m, keep, sel, 0, vf ? vf + h->dim : NULL);
            pthread_mutex_t *mu = qv_hnsw_stripe(h, x);
            pthread_mutex_lock(mu);
            qv_hnsw_write_list(qv_hnsw_list(h, x, l), x, qv_hnsw_maxlinks(h, l), sel, nsel);
            pthread_mutex_unlock(mu);
            /* The distances of the selected ones are in s->work; find them by id. */
            for (uint32_t i = 0; i < nsel; i++) {
                float d = 0;
                for (size_t j = 0; j < len; j++)
                    if (s->work[j].id == sel[i]) { d = s->work[j].d; break; }
                qv_hnsw_connect(h, sel[i], x, d, l, keep, vf);
            }
            /* The next level starts from the nearest inserted node: from one still being
             * inserted (empty lists below) x would link only to it, turn live, and leave
             * searches that reach x with 1-2 hits until that node is done. */
            for (size_t i = 0; i < len; i++)
                if (qv_hnsw_inserted(h, s->work[i].id)) { ep = s->work[i].id; break; }
            if (l == 0) break;
        }
    }
    __atomic_store_n(&h->state[x], QV_HNSW_LIVE, __ATOMIC_RELEASE);
    if (locked) {
        if (e == QV_HNSW_ENTRY_NONE || L > (e & 0xffffffffu))
            __atomic_store_n(&h->entry, qv_hnsw_entry_pack(x, L), __ATOMIC_RELEASE);
        pthread_mutex_unlock(&h->entry_lock);
    }
}

typedef struct {
    qv_hnsw *h;
    const uint32_t *slots;
    qv_hnsw_scratch **scr;
    const qv_hnsw_bcodes *bc;          /* build codes, or NULL */
    size_t total;
    size_t done;                       /* atomic */
    long last_ms;                      /* atomic: last progress report */
    const qv_index_params *p;
} add_job;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add_task(void *arg, size_t i, unsigned worker)
{
    add_job *job = arg;
    int ss = qv_hnsw_src_begin(job->h);        /* a vector source's session (hnsw.h) */
    insert_one(job->h, job->scr[worker], job->slots[i], job->bc, worker);
    if (ss > 0) qv_hnsw_src_end(job->h);
    size_t done = __atomic_add_fetch(&job->done, 1, __ATOMIC_RELAXED);
    if (job->p->progress && (done & 255) == 0) {
        long t = now_ms(), last = __atomic_load_n(&job->last_ms, __ATOMIC_RELAXED);
        if (t - last >= 250 && __atomic_compare_exchange_n(&job->last_ms, &last, t, 0,
                                                           __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            job->p->progress("hnsw build", done, job->total, job->p->progress_arg);
    }
}

static unsigned draw_level(qv_hnsw *h)
{
    double u = 1.0 - qv_rng_uniform(&h->rng);       /* (0, 1] */
    double lv = floor(-log(u) * h->ml);
    return lv >= QV_HNSW_MAX_LEVEL ? QV_HNSW_MAX_LEVEL : (unsigned)lv;
}

int qv_hnsw_add(qv_index *ix, size_t n, const uint64_t *ids, const float *vecs)
{
    qv_hnsw *h = ix->impl;
    unsigned nw = qv_pool_threads(ix->pool);
    uint8_t *lv = NULL;
    uint32_t **up = NULL, *slots = NULL;
    uint64_t *repl = NULL;
    qv_hnsw_scratch **scr = NULL;
    void *fix = NULL;
    float *ctmp = NULL;
    qv_hnsw_bcodes *bc = NULL;
    size_t n_repl = 0;
    int rc = QV_OK, ss = 0;
    qv_rng saved_rng;

    pthread_mutex_lock(&h->write_lock);
    saved_rng = h->rng;
    ss = qv_hnsw_src_begin(h);                 /* repair, retraining: in this thread */
    if (ss < 0) { rc = ss; goto fail; }
    if ((rc = qv_hnsw_check_vectors(h)) != QV_OK) goto fail;
    if ((rc = qv_hnsw_verify_locked(h)) != QV_OK) goto fail;
    /* ---- acquire everything; the index is unchanged on failure ---- */
    lv = qv_malloc(n);
    up = qv_calloc(n, sizeof *up);
    slots = qv_malloc(n * sizeof *slots);
    repl = qv_malloc(n * sizeof *repl);
    scr = qv_calloc(nw, sizeof *scr);
    if (!lv || !up || !slots || !repl || !scr) { rc = QV_ENOMEM; goto fail; }
    for (size_t i = 0; i < n; i++)
        if (qv_idmap_get(&h->map, ids[i]) != QV_IDMAP_NONE) repl[n_repl++] = ids[i];
    size_t reuse = h->n_free + n_repl;
    size_t fresh = n > reuse ? n - reuse : 0;
    if ((rc = qv_hnsw_reserve(h, (size_t)h->n_slots + fresh)) != QV_OK) goto fail;
    if ((rc = qv_idmap_reserve(&h->map, n)) != QV_OK) goto fail;
    if (h->free_cap < h->n_free + n_repl) {
        uint32_t *fs = qv_reallocarray(h->free_slots, h->n_free + n_repl, sizeof *fs);
        if (!fs) { rc = QV_ENOMEM; goto fail; }
        h->free_slots = fs;
        h->free_cap = h->n_free + n_repl;
    }
    /* Reachability repair after big batches and replacements: O(n) work, amortized. */
    size_t total = h->n_live + n;
    if ((n_repl || n >= total / 64 || total <= 4096) &&
        !(fix = qv_malloc(qv_hnsw_fix_bytes(h->cap)))) { rc = QV_ENOMEM; goto fail; }
    size_t upper_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        lv[i] = (uint8_t)draw_level(h);
        if (!lv[i]) continue;
        size_t words = (size_t)lv[i] * (h->m + 1);
        if (!(up[i] = qv_malloc(words * sizeof(uint32_t)))) { rc = QV_ENOMEM; goto fail; }
        upper_bytes += words * sizeof(uint32_t);
    }
    /* Codes: the first batch trains the codec (nothing is encoded yet, so this changes no
     * row a search could read); rows are encoded below as the vectors go in. */
    if (h->codec) {
        if (h->codec->trained_on == 0 && (rc = qv_hnsw_codes_train_on(h, vecs, n)) != QV_OK) goto fail;
        if (!(ctmp = qv_malloc(qv_codec_scratch_floats(h->codec) * sizeof *ctmp))) { rc = QV_ENOMEM; goto fail; }
    }
    size_t repair_work = (size_t)h->m0 * (h->m0 + 1) + 1;
    for (unsigned w = 0; w < nw; w++) {
        if (!(scr[w] = qv_hnsw_scratch_get(h))) { rc = QV_ENOMEM; goto fail; }
        if ((rc = qv_hnsw_scratch_fit(scr[w], h->efc, n_repl ? repair_work : 0)) != QV_OK) goto fail;
        if (scr[w]->cand_cap < 4 * (size_t)h->efc &&
            (rc = qv_hnsw_scratch_fit(scr[w], 4 * (size_t)h->efc, 0)) != QV_OK) goto fail;
    }

    /* Build codes (hnsw_build_codes.c) for a large batch that is not small beside the
     * index: at 1M, training and encoding every slot took ~2.2 s, what ~60,000 inserts
     * save on codes (37 us each on 2 threads), so the batch must be 1/8 of the index. */
    /* A quantized index walks on its own codes at search time but inserts on floats; one
     * that reads them from a source (on_disk) inserts on build codes too (kept codes
     * below: each float there is a B-tree lookup). */
    const int bcodes_ok = (!h->codec || !qv_hnsw_vec_inline(h)) && h->efc <= QV_HNSW_BCODES_MAX_EF;
    if (bcodes_ok && !h->bcodes && n >= qv_hnsw_bcodes_min && 8 * n >= h->n_live) {
        (void)qv_hnsw_bcodes_new(h, n, vecs, nw, &bc);     /* no memory for them: on floats */
        h->bc_recent = 0;                                  /* this batch is not a stream */
    }

    /* ---- from here on nothing fails ---- */
    if (n_repl) qv_hnsw_remove_locked(ix, repl, n_repl, NULL, scr, fix);
    uint32_t nslots = h->n_slots;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = h->n_free ? h->free_slots[--h->n_free] : nslots++;
        slots[i] = x;
        if (qv_hnsw_vec_inline(h)) qv_hnsw_put_row(h, x, vecs + i * h->dim);
        if (h->codec) qv_hnsw_encode_one(h, x, vecs + i * h->dim, ctmp);
        h->ids[x] = ids[i];
        __atomic_store_n(&h->levels[x], lv[i], __ATOMIC_RELAXED);
        uint32_t *l0 = qv_hnsw_list(h, x, 0);
        for (uint32_t j = 0; j < h->m0; j++) qv_hnsw_st(&l0[1 + j], x);
        qv_hnsw_st(&l0[0], 0);
        if (up[i]) {
            size_t words = (size_t)lv[i] * (h->m + 1);
            for (size_t j = 0; j < words; j++) up[i][j] = x;
            for (unsigned l = 0; l < lv[i]; l++) up[i][(size_t)l * (h->m + 1)] = 0;
        }
        __atomic_store_n(&h->upper[x], up[i], __ATOMIC_RELEASE);
        up[i] = NULL;
        qv_idmap_put(&h->map, ids[i], x);          /* room reserved above */
    }
    h->upper_bytes += upper_bytes;
    __atomic_store_n(&h->n_slots, nslots, __ATOMIC_RELEASE);

    /* Or the codes kept across a stream of small adds (hnsw_build_codes.c). */
    const qv_hnsw_bcodes *walk = bc;
    if (bc) qv_hnsw_bcodes_encode(h, bc, ix->pool);
    else if (bcodes_ok) walk = qv_hnsw_bcodes_for_add(h, slots, n, ix->pool);
    add_job job = {h, slots, scr, walk, n, 0, now_ms(), &ix->p};
    size_t first = 0;
    if (__atomic_load_n(&h->entry, __ATOMIC_ACQUIRE) == QV_HNSW_ENTRY_NONE) {
        add_task(&job, 0, 0);                      /* the first node seeds the graph alone */
        first = 1;
    }
    if (n > first) {
        job.slots = slots + first;
        qv_pool_run(ix->pool, n - first, 1, add_task, &job);
    }
    __atomic_add_fetch(&h->n_live, n, __ATOMIC_RELAXED);
    if (fix) qv_hnsw_fix_reach(h, scr[0], fix);
    /* A failed retraining keeps the current codec, which is still valid. */
    if (h->codec && !h->codec_pinned) (void)qv_hnsw_codes_retrain(h, 0);
    if (qv_hnsw_reorder_due(h) && qv_hnsw_reorder(h))   /* skipped when out of memory */
        qv_hnsw_bcodes_renumbered(h, ix->pool);
    if (h->codec) qv_hnsw_starts_refresh(h, scr[0]);
    qv_hnsw_bcodes_after_add(h);
    qv_hnsw_update_memory(h);
    if (ix->p.progress) ix->p.progress("hnsw build", n, n, ix->p.progress_arg);
    goto cleanup;

fail:
    h->rng = saved_rng;
    qv_hnsw_update_memory(h);                      /* capacity may have grown */
    if (up)
        for (size_t i = 0; i < n; i++) qv_free(up[i]);
cleanup:
    if (scr)
        for (unsigned w = 0; w < nw; w++) qv_hnsw_scratch_put(h, scr[w]);
    if (ss > 0) qv_hnsw_src_end(h);
    pthread_mutex_unlock(&h->write_lock);
    qv_free(lv);
    qv_free(up);
    qv_free(slots);
    qv_free(repl);
    qv_free(scr);
    qv_free(fix);
    qv_free(ctmp);
    qv_hnsw_bcodes_free(bc);
    return rc;
}
