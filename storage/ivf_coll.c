/*
 * storage/ivf_coll.c -- IVF collections: a flat index until trained, then IVF.
 *
 * An IVF index cannot take vectors before k-means has placed its centroids, and centroids
 * learnt from a handful of points are poor. So a new IVF collection keeps its points in a
 * flat (exact) index -- searches always work, and are exact -- until it holds
 * max(39 * nlist, 1000) points (nlist = the configured one, or 4*sqrt(n) when 0, which
 * makes the threshold about 24k points), or until qv_collection_train() asks for it.
 * Training (under db->wmutex, so no write runs meanwhile; searches go on with the flat
 * index) samples up to max_train_points (default 256*nlist) stored vectors evenly in key
 * order, trains, adds every stored vector, swaps the index in, records the nlist in force
 * in the state table (key cid | 'T' -> u32 nlist BE) and writes a snapshot so that the
 * next open loads the trained index instead of training again. A rebuild of a trained
 * collection (damaged snapshot, failed index update) trains again with the recorded
 * nlist. A record without a matching snapshot only costs that retraining.
 */
#include "storage/storage.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

static void train_key(uint8_t key[5], uint32_t cid)
{
    qv_be32_put(key, cid);
    key[4] = 'T';
}

int qv_coll_ivf_load(qv_coll *c, MDB_txn *txn)
{
    uint8_t key[5];
    MDB_val v;
    c->ivf_trained = 0;
    c->ivf_nlist = 0;
    if (c->params.kind != QV_INDEX_IVF) return QV_OK;
    train_key(key, c->cid);
    int rc = qv_lmdb_get(txn, c->db->dbi[DBI_STATE], key, 5, &v);
    if (rc == QV_ENOTFOUND) return QV_OK;
    if (rc != QV_OK) return rc;
    if (v.mv_size != 4 || qv_be32_get(v.mv_data) == 0)
        return qv_fail(QV_ECORRUPT, "collection '%s': damaged ivf training record", c->name);
    c->ivf_trained = 1;
    c->ivf_nlist = qv_be32_get(v.mv_data);
    return QV_OK;
}

qv_index_kind qv_coll_effective_kind(const qv_coll *c)
{
    return c->params.kind == QV_INDEX_IVF && !c->ivf_trained ? QV_INDEX_FLAT : c->params.kind;
}

/* Up to want stored vectors of c, evenly spread in key order, into a new array. */
static int sample_vectors(qv_coll *c, MDB_txn *txn, size_t want, float **out, size_t *n)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t prefix[4];
    size_t dim = c->params.dim, step = c->count > want ? (size_t)(c->count / want) : 1, i = 0, m = 0;
    float *x = qv_reallocarray(NULL, want, dim * sizeof *x);
    int rc;
    *out = NULL;
    *n = 0;
    if (!x) return QV_ENOMEM;
    if ((rc = qv_lmdb_cursor_open(txn, c->db->dbi[DBI_POINTS], &cur)) != QV_OK) goto cleanup;
    qv_be32_put(prefix, c->cid);
    for (rc = qv_lmdb_seek(cur, prefix, 4, 4, &k, &v); rc == QV_OK && m < want; rc = qv_lmdb_next(cur, prefix, 4, &k, &v), i++) {
        if (v.mv_size != qv_point_rec_size(c)) {
            rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged point record", c->name);
            goto cleanup;
        }
        if (i % step == 0) memcpy(x + m++ * dim, (const uint8_t *)v.mv_data + 8, dim * sizeof(float));
    }
    if (rc != QV_OK && rc != QV_ENOTFOUND) goto cleanup;
    rc = QV_OK;
    *out = x;
    *n = m;
    x = NULL;
cleanup:
    qv_lmdb_cursor_close(cur);
    qv_free(x);
    return rc;
}

int qv_coll_new_index(qv_coll *c, MDB_txn *txn, qv_progress_fn progress, void *arg, qv_index **out)
{
    qv_index_params p = c->params;
    qv_index *ix = NULL;
    float *sample = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    if (c->params.kind == QV_INDEX_IVF && c->ivf_trained && c->count < c->ivf_nlist) {
        /* deletes left fewer points than lists: back to flat until the next training */
        c->ivf_trained = 0;
    }
    if (qv_coll_effective_kind(c) == QV_INDEX_FLAT && c->params.kind == QV_INDEX_IVF) {
        qv_index_params_init(&p, QV_INDEX_FLAT, c->params.dim, c->params.metric);
        p.threads = c->params.threads;
        p.seed = c->params.seed;
        return qv_index_new(&p, out);
    }
    if (c->params.kind != QV_INDEX_IVF) return qv_index_new(&p, out);
    p.nlist = c->ivf_nlist;
    p.progress = progress;
    p.progress_arg = arg;
    if ((rc = qv_index_new(&p, &ix)) != QV_OK) return rc;
    size_t want = p.max_train_points ? p.max_train_points : (size_t)256 * p.nlist;
    if (want < p.nlist) want = p.nlist;
    if ((rc = sample_vectors(c, txn, want, &sample, &n)) != QV_OK) goto cleanup;
    if ((rc = qv_index_train(ix, n, sample)) != QV_OK) goto cleanup;
    *out = ix;
    ix = NULL;
cleanup:
    qv_free(sample);
    qv_index_free(ix);
    return rc;
}

static uint32_t pick_nlist(const qv_coll *c)
{
    if (c->params.nlist) return c->params.nlist;
    double want = round(4.0 * sqrt((double)c->count));
    uint32_t nlist = want < 1 ? 1u : (uint32_t)want;
    return nlist > c->count ? (uint32_t)c->count : nlist;
}

typedef struct { uint32_t cid, nlist; } train_arg;

static int train_write(qv_db *db, MDB_txn *txn, void *arg)
{
    train_arg *a = arg;
    uint8_t key[5], val[4];
    train_key(key, a->cid);
    qv_be32_put(val, a->nlist);
    return qv_lmdb_put(txn, db->dbi[DBI_STATE], key, 5, val, 4);
}

/* Train c now (caller holds wmutex). */
static int train_locked(qv_coll *c, qv_progress_fn progress, void *arg)
{
    MDB_txn *txn = NULL;
    qv_index *ix = NULL, *old;
    int was = c->ivf_trained, rc;
    uint32_t wasn = c->ivf_nlist, nlist;

    if ((rc = qv_db_check_writable(c->db, "train")) != QV_OK) return rc;
    if (c->count == 0) return qv_fail(QV_ESTATE, "collection '%s': no points to train the ivf index on", c->name);
    nlist = pick_nlist(c);
    if (c->count < nlist)
        return qv_fail(QV_EINVAL, "collection '%s': ivf training needs at least nlist = %u points, it holds %llu", c->name,
                       nlist, (unsigned long long)c->count);
    c->ivf_trained = 1;
    c->ivf_nlist = nlist;
    if ((rc = qv_lmdb_begin(c->db, 1, &txn)) == QV_OK) {
        rc = qv_coll_build_index(c, txn, progress, arg, &ix);
        qv_lmdb_abort(c->db, txn);
    }
    train_arg a = {c->cid, nlist};
    if (rc == QV_OK) rc = qv_db_write(c->db, train_write, &a);
    if (rc != QV_OK) {
        c->ivf_trained = was;
        c->ivf_nlist = wasn;
        qv_index_free(ix);
        return rc;
    }
    qv_snapshot_verify_join(c);
    pthread_rwlock_wrlock(&c->maplock);
    old = c->ix;
    c->ix = ix;
    __atomic_store_n(&c->need_rebuild, 0, __ATOMIC_RELEASE);
    c->stats.ivf_trainings++;
    pthread_rwlock_unlock(&c->maplock);
    qv_index_free(old);
    if (qv_snapshot_write(c) != QV_OK) {   /* only a shortcut for the next open */
        pthread_rwlock_wrlock(&c->maplock);
        qv_coll_warn(c, "collection '%s': snapshot after ivf training failed: %s", c->name, qv_last_error());
        pthread_rwlock_unlock(&c->maplock);
    }
    return QV_OK;
}

void qv_coll_maybe_train(qv_coll *c)
{
    if (c->params.kind != QV_INDEX_IVF || c->ivf_trained || c->need_rebuild) return;
    uint64_t nlist = c->params.nlist ? c->params.nlist : (uint64_t)round(4.0 * sqrt((double)c->count));
    uint64_t need = nlist * 39 > 1000 ? nlist * 39 : 1000;
    if (c->count < need) return;
    if (train_locked(c, NULL, NULL) != QV_OK) {
        pthread_rwlock_wrlock(&c->maplock);
        qv_coll_warn(c, "collection '%s': automatic ivf training failed (searches stay exact): %s", c->name,
                     qv_last_error());
        pthread_rwlock_unlock(&c->maplock);
    }
}

int qv_collection_train(qv_coll *c, qv_progress_fn progress, void *progress_arg)
{
    if (!c) return qv_fail(QV_EINVAL, "collection is NULL");
    if (c->params.kind != QV_INDEX_IVF)
        return qv_fail(QV_EINVAL, "collection '%s' has index type %s: only ivf collections are trained", c->name,
                       qv_index_kind_name(c->params.kind));
    pthread_mutex_lock(&c->db->wmutex);
    int rc = qv_coll_check_live(c);
    if (rc == QV_OK && c->need_rebuild) rc = qv_coll_rebuild(c, "an earlier index update failed");
    if (rc == QV_OK) rc = train_locked(c, progress, progress_arg);
    pthread_mutex_unlock(&c->db->wmutex);
    return rc;
}
