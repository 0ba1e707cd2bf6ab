/*
 * index/ivf_build.c -- IVF-Flat life cycle: create/destroy, train (k-means into nlist
 * centroids), add (nearest centroid through GEMM, then append to that list), remove
 * (swap-remove inside the list), size and memory. Layout and locking: index/ivf.h.
 *
 * Training is explicit: qv_index_train(ix, n, sample) runs k-means (kmeans.c) on the
 * sample with nlist = p.nlist or, when 0, round(4*sqrt(n)) clamped to 1..n, and
 * p.kmeans_iters / p.max_train_points / p.seed / p.threads. Until then add and search
 * answer QV_ESTATE ("ivf index is not trained: call qv_index_train first"); training
 * never happens implicitly inside add, so the caller controls what the centroids are
 * learnt from. Training is allowed again only while the index is empty. After training,
 * ix->p.nlist holds the nlist in force.
 *
 * add is all or nothing: the assignment runs under the read lock, then under the write
 * lock every list, the slot table and the id map are grown first; only then are entries
 * moved (nothing can fail past that point). An id already present is removed first
 * (replace semantics).
 *
 * GPU: training passes p.gpu to qv_kmeans (AUTO: the device when usable, else the CPU;
 * REQUIRE: the device or an error). Every change of the lists bumps v->version, which
 * marks the device copy used by batch search stale (ivf_search.c, locking in ivf.h).
 */
#include "index/ivf.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/distance.h"
#include "core/error.h"

#define MAX_VECTORS (UINT32_MAX - 1u)   /* slots are uint32; QV_IDMAP_NONE is reserved */

/* ---- lists ------------------------------------------------------------------------- */

int qv_ivf_list_reserve(qv_ivf_list *L, size_t dim, int with_norms, const qv_codec *codec, size_t more)
{
    size_t need = (size_t)L->len + more;
    if (need <= L->cap) return QV_OK;
    if (need > MAX_VECTORS) return qv_fail(QV_EFULL, "ivf list would exceed %u vectors", MAX_VECTORS);
    size_t cap = L->cap + L->cap / 2;                    /* 1.5x: bounded waste, few copies */
    if (cap < need) cap = need;
    if (cap < 8) cap = 8;
    if (cap > MAX_VECTORS) cap = MAX_VECTORS;
    /* Codes first: growing them alone changes nothing the list's readers see. */
    if (codec && qv_code_rows_reserve(&L->codes, codec, L->len, cap) != QV_OK) return QV_ENOMEM;
    float *vecs = qv_aligned_calloc(cap, dim * sizeof(float));
    uint64_t *ids = qv_reallocarray(NULL, cap, sizeof *ids);
    float *norms = with_norms ? qv_reallocarray(NULL, cap, sizeof *norms) : NULL;
    if (!vecs || !ids || (with_norms && !norms)) {
        qv_free(vecs);
        qv_free(ids);
        qv_free(norms);
        return QV_ENOMEM;
    }
    if (L->len) {
        memcpy(vecs, L->vecs, (size_t)L->len * dim * sizeof(float));
        memcpy(ids, L->ids, (size_t)L->len * sizeof *ids);
        if (with_norms) memcpy(norms, L->norms, (size_t)L->len * sizeof *norms);
    }
    qv_free(L->vecs);
    qv_free(L->ids);
    qv_free(L->norms);
    L->vecs = vecs;
    L->ids = ids;
    L->norms = norms;
    L->cap = (uint32_t)cap;
    return QV_OK;
}

void qv_ivf_list_release(qv_ivf_list *L)
{
    if (!L) return;
    qv_free(L->vecs);
    qv_free(L->ids);
    qv_free(L->norms);
    qv_code_rows_release(&L->codes);
    memset(L, 0, sizeof *L);
}

static void release_lists(qv_ivf_list *lists, uint32_t nlist)
{
    if (!lists) return;
    for (uint32_t l = 0; l < nlist; l++) qv_ivf_list_release(&lists[l]);
    qv_free(lists);
}

int qv_ivf_install(qv_ivf *v, uint32_t nlist, float *centroids)
{
    float *cnorms = qv_reallocarray(NULL, nlist, sizeof *cnorms);
    qv_ivf_list *lists = qv_calloc(nlist, sizeof *lists);
    if (!cnorms || !lists) {
        qv_free(cnorms);
        qv_free(lists);
        qv_free(centroids);
        return QV_ENOMEM;
    }
    for (uint32_t c = 0; c < nlist; c++) cnorms[c] = qv_norm_sq(centroids + (size_t)c * v->dim, v->dim);
    release_lists(v->lists, v->nlist);
    qv_free(v->centroids);
    qv_free(v->cnorms);
    v->lists = lists;
    v->centroids = centroids;
    v->cnorms = cnorms;
    v->nlist = nlist;
    v->gen++;
    v->version++;
    return QV_OK;
}

/* ---- slots ------------------------------------------------------------------------- */

int qv_ivf_reserve_slots(qv_ivf *v, size_t more)
{
    int rc = qv_idmap_reserve(&v->map, more);
    if (rc != QV_OK) return rc;
    size_t fresh = more > v->n_free ? more - v->n_free : 0;
    size_t need = v->n_slots + fresh;
    if (need > MAX_VECTORS) return qv_fail(QV_EFULL, "an ivf index holds at most %u vectors", MAX_VECTORS);
    if (need <= v->slot_cap) return QV_OK;
    size_t cap = v->slot_cap * 2;
    if (cap < need) cap = need;
    if (cap < 64) cap = 64;
    if (cap > MAX_VECTORS) cap = MAX_VECTORS;
    qv_ivf_loc *loc = qv_reallocarray(v->loc, cap, sizeof *loc);
    if (!loc) return QV_ENOMEM;
    v->loc = loc;
    uint32_t *fs = qv_reallocarray(v->free_slots, cap, sizeof *fs);
    if (!fs) return QV_ENOMEM;                           /* loc is larger: harmless */
    v->free_slots = fs;
    v->slot_cap = cap;
    return QV_OK;
}

int qv_ivf_append(qv_ivf *v, uint32_t l, uint64_t id, const float *vec)
{
    qv_ivf_list *L = &v->lists[l];
    QV_CHECK_INTERNAL(L->len < L->cap && (v->n_free > 0 || v->n_slots < v->slot_cap));
    uint32_t slot = v->n_free ? v->free_slots[--v->n_free] : (uint32_t)v->n_slots++;
    uint32_t pos = L->len++;
    memcpy(L->vecs + (size_t)pos * v->dim, vec, v->dim * sizeof(float));
    L->ids[pos] = id;
    if (L->norms) L->norms[pos] = qv_norm_sq(vec, v->dim);
    if (v->codec) qv_ivf_codes_put(v, l, pos);
    v->loc[slot].list = l;
    v->loc[slot].pos = pos;
    v->n++;
    v->version++;
    return qv_idmap_put(&v->map, id, slot);             /* reserved: cannot fail */
}

int qv_ivf_remove_one(qv_ivf *v, uint64_t id)
{
    uint32_t slot = qv_idmap_get(&v->map, id);
    if (slot == QV_IDMAP_NONE) return 0;
    qv_ivf_loc at = v->loc[slot];
    qv_ivf_list *L = &v->lists[at.list];
    uint32_t last = L->len - 1;
    if (at.pos != last) {
        memcpy(L->vecs + (size_t)at.pos * v->dim, L->vecs + (size_t)last * v->dim, v->dim * sizeof(float));
        L->ids[at.pos] = L->ids[last];
        if (L->norms) L->norms[at.pos] = L->norms[last];
        if (v->codec) qv_code_rows_move(&L->codes, v->codec, at.pos, last);
        uint32_t moved = qv_idmap_get(&v->map, L->ids[at.pos]);
        v->loc[moved].pos = at.pos;
    }
    L->len--;
    qv_idmap_del(&v->map, id);
    v->free_slots[v->n_free++] = slot;
    v->n--;
    v->version++;
    return 1;
}

/* ---- ops --------------------------------------------------------------------------- */

static void ivf_destroy(qv_index *ix)
{
    qv_ivf *v = ix->impl;
    if (!v) return;
    release_lists(v->lists, v->nlist);
    qv_free(v->centroids);
    qv_free(v->cnorms);
    qv_free(v->loc);
    qv_free(v->free_slots);
    qv_idmap_release(&v->map);
    qv_ivf_scratch_release_all(v);
    qv_ivf_gpu_release(v);
    qv_ivf_codes_destroy(v);
    pthread_rwlock_destroy(&v->lock);
    pthread_mutex_destroy(&v->scratch_lock);
    pthread_mutex_destroy(&v->gpu_lock);
    qv_free(v);
    ix->impl = NULL;
}

static int ivf_create(qv_index *ix)
{
    pthread_rwlockattr_t attr;
    qv_ivf *v = qv_calloc(1, sizeof *v);
    if (!v) return QV_ENOMEM;
    /* Writer preference: without it glibc lets a steady stream of searches starve add. */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&v->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&v->scratch_lock, NULL);
    pthread_mutex_init(&v->gpu_lock, NULL);
    v->dim = ix->p.dim;
    v->metric = ix->p.metric;
    ix->impl = v;
    int rc = qv_idmap_init(&v->map, 0);
    return rc == QV_OK ? qv_ivf_codes_create(v, &ix->p) : rc;
}

static uint32_t auto_nlist(size_t n)
{
    double want = floor(4.0 * sqrt((double)n) + 0.5);
    if (want > (double)(1u << 24)) want = (double)(1u << 24);
    uint32_t nlist = want < 1 ? 1u : (uint32_t)want;
    return nlist > n ? (uint32_t)n : nlist;
}

static int ivf_train(qv_index *ix, size_t n, const float *vecs)
{
    qv_ivf *v = ix->impl;
    qv_kmeans_params kp;
    float *cent = NULL;
    size_t have;
    int rc;

    if (n == 0) return qv_fail(QV_EINVAL, "ivf training needs at least one vector");
    uint32_t nlist = ix->p.nlist ? ix->p.nlist : auto_nlist(n);
    if (n < nlist) return qv_fail(QV_EINVAL, "ivf training needs at least nlist = %u vectors, got %zu", nlist, n);
    pthread_rwlock_rdlock(&v->lock);
    have = v->n;
    pthread_rwlock_unlock(&v->lock);
    if (have) return qv_fail(QV_ESTATE, "ivf index already holds %zu vectors: only an empty index can be (re)trained", have);

    qv_kmeans_params_init(&kp, nlist);
    kp.iters = ix->p.kmeans_iters;
    kp.max_points = ix->p.max_train_points;
    kp.threads = ix->p.threads;
    kp.seed = ix->p.seed;
    kp.metric = ix->p.metric;
    kp.gpu = ix->p.gpu;
    kp.progress = ix->p.progress;
    kp.progress_arg = ix->p.progress_arg;
    if (kp.max_points && kp.max_points < nlist)
        return qv_fail(QV_EINVAL, "max_train_points must be 0 or >= nlist (%u), got %zu", nlist, kp.max_points);
    if (!(cent = qv_aligned_calloc((size_t)nlist * v->dim, sizeof(float)))) return QV_ENOMEM;
    if ((rc = qv_kmeans(&kp, n, v->dim, vecs, cent, NULL)) != QV_OK) {
        qv_free(cent);
        return rc;
    }
    /* A quantized index fits its codes to the same sample. */
    qv_codec *codec = NULL;
    if (v->codec && ((rc = qv_codec_new(v->codec->kind, (uint32_t)v->dim, v->metric, ix->p.seed, &codec)) != QV_OK ||
                     (rc = qv_codec_train(codec, n, vecs)) != QV_OK)) {
        qv_codec_free(codec);
        qv_free(cent);
        return rc;
    }
    pthread_rwlock_wrlock(&v->lock);
    if (v->n) {
        rc = qv_fail(QV_ESTATE, "ivf index received vectors during training: only an empty index can be (re)trained");
        qv_free(cent);
    } else if ((rc = qv_ivf_install(v, nlist, cent)) == QV_OK) {
        ix->p.nlist = nlist;
        if (codec) {
            qv_codec *old = v->codec;
            v->codec = codec;
            codec = old;                           /* freed below */
        }
    }
    pthread_rwlock_unlock(&v->lock);
    qv_codec_free(codec);
    return rc;
}

static int ivf_add(qv_index *ix, size_t n, const uint64_t *ids, const float *vecs)
{
    qv_ivf *v = ix->impl;
    uint32_t *assign = NULL;
    uint32_t *need = NULL;
    int rc = QV_OK, locked = 0;

    if (!(assign = qv_reallocarray(NULL, n, sizeof *assign))) return QV_ENOMEM;
    /* Assign under the read lock (searches go on); redo if a train swapped the centroids
     * before the write lock was obtained. */
    for (;;) {
        pthread_rwlock_rdlock(&v->lock);
        if (!v->nlist) {
            pthread_rwlock_unlock(&v->lock);
            rc = qv_fail(QV_ESTATE, QV_IVF_UNTRAINED_MSG);
            goto cleanup;
        }
        uint64_t gen = v->gen;
        rc = qv_ivf_assign(v->centroids, v->cnorms, v->nlist, v->dim, v->metric, vecs, n, ix->pool, assign, NULL);
        pthread_rwlock_unlock(&v->lock);
        if (rc != QV_OK) goto cleanup;
        pthread_rwlock_wrlock(&v->lock);
        locked = 1;
        if (v->gen == gen) break;
        pthread_rwlock_unlock(&v->lock);
        locked = 0;
    }

    if (!(need = qv_calloc(v->nlist, sizeof *need))) { rc = QV_ENOMEM; goto cleanup; }
    for (size_t i = 0; i < n; i++) need[assign[i]]++;
    for (uint32_t l = 0; l < v->nlist; l++)
        if (need[l] && (rc = qv_ivf_list_reserve(&v->lists[l], v->dim, v->metric == QV_METRIC_L2, v->codec, need[l])) != QV_OK)
            goto cleanup;
    if ((rc = qv_ivf_reserve_slots(v, n)) != QV_OK) goto cleanup;

    /* Nothing below can fail. */
    for (size_t i = 0; i < n; i++) {
        qv_ivf_remove_one(v, ids[i]);
        if ((rc = qv_ivf_append(v, assign[i], ids[i], vecs + i * v->dim)) != QV_OK) goto cleanup;
    }
cleanup:
    if (locked) pthread_rwlock_unlock(&v->lock);
    qv_free(assign);
    qv_free(need);
    return rc;
}

static int ivf_remove(qv_index *ix, size_t n, const uint64_t *ids, size_t *n_removed)
{
    qv_ivf *v = ix->impl;
    size_t removed = 0;
    pthread_rwlock_wrlock(&v->lock);
    if (v->nlist)
        for (size_t i = 0; i < n; i++) removed += (size_t)qv_ivf_remove_one(v, ids[i]);
    pthread_rwlock_unlock(&v->lock);
    *n_removed = removed;
    return QV_OK;
}

static size_t ivf_size(const qv_index *ix)
{
    qv_ivf *v = ix->impl;
    pthread_rwlock_rdlock(&v->lock);
    size_t n = v->n;
    pthread_rwlock_unlock(&v->lock);
    return n;
}

static size_t ivf_memory(const qv_index *ix)
{
    qv_ivf *v = ix->impl;
    pthread_rwlock_rdlock(&v->lock);
    size_t per = v->dim * sizeof(float) + sizeof(uint64_t) + (v->metric == QV_METRIC_L2 ? sizeof(float) : 0);
    size_t bytes = sizeof *v + (size_t)v->nlist * (v->dim * sizeof(float) + sizeof(float) + sizeof(qv_ivf_list));
    for (uint32_t l = 0; l < v->nlist; l++) bytes += (size_t)v->lists[l].cap * per;
    bytes += qv_idmap_memory(&v->map) + v->slot_cap * (sizeof(qv_ivf_loc) + sizeof(uint32_t));
    bytes += qv_ivf_codes_memory(v);
    pthread_mutex_lock(&v->gpu_lock);
    bytes += v->gpu_rows * sizeof *v->gpu_ids;          /* host side of the device copy */
    pthread_mutex_unlock(&v->gpu_lock);
    pthread_rwlock_unlock(&v->lock);
    return bytes;
}

/* vectors: the floats of the lists (for a quantized index, read only by the re-score);
 * search: centroids, ids, norms, codes, id map and slots; other: the host side of the
 * device copy and the index header. */
static void ivf_memory_detail(const qv_index *ix, qv_index_memory_info *out)
{
    qv_ivf *v = ix->impl;
    memset(out, 0, sizeof *out);
    out->total = ivf_memory(ix);
    pthread_rwlock_rdlock(&v->lock);
    for (uint32_t l = 0; l < v->nlist; l++) out->vectors += (size_t)v->lists[l].cap * v->dim * sizeof(float);
    out->codes = qv_ivf_codes_memory(v);
    pthread_mutex_lock(&v->gpu_lock);
    out->other = sizeof *v + v->gpu_rows * sizeof *v->gpu_ids;
    pthread_mutex_unlock(&v->gpu_lock);
    pthread_rwlock_unlock(&v->lock);
    out->search = out->total - out->vectors - out->other;
}

const qv_index_ops qv_ivf_ops = {
    .kind = QV_INDEX_IVF,
    .create = ivf_create,
    .destroy = ivf_destroy,
    .train = ivf_train,
    .add = ivf_add,
    .remove = ivf_remove,
    .search = qv_ivf_search,
    .search_batch = qv_ivf_search_batch,
    .save = qv_ivf_save,
    .load = qv_ivf_load,
    .size = ivf_size,
    .memory = ivf_memory,
    .memory_detail = ivf_memory_detail,
};
