/*
 * storage/snapshot.c -- index snapshots in LMDB, and recovery from them.
 *
 * A snapshot is the index serialized by qv_index_save_mem (versioned, CRC-checked) behind
 * a 16-byte header: "QVSN", u32 version, u64 seq = the last write it covers. It is written
 * in one txn together with the trimming of the collection's log (every log entry <= seq),
 * so after a crash either the old snapshot and the full log survive, or the new snapshot
 * and the log after it: never a snapshot with a hole behind it.
 *
 * Loading: the index is taken from the snapshot, then every internal id named by the log
 * entries seq+1 .. last_seq is re-synced: removed from the index, and added back with its
 * current stored vector if it is still live. Re-syncing to the current state (instead of
 * replaying each write in order) is idempotent and needs no per-write vectors in the log.
 * Anything that does not add up -- a bad header, load_mem's QV_ECORRUPT, parameters that
 * differ from the config, a gap in the log, an index size that differs from the stored
 * point count -- is QV_ECORRUPT, and the caller rebuilds from the stored vectors.
 */
#include "storage/storage.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

typedef struct {
    qv_coll *c;
    const void *blob;
    size_t len;
} snap_arg;

static int snapshot_put(qv_db *db, MDB_txn *txn, void *arg)
{
    snap_arg *a = arg;
    uint8_t key[4];
    void *p;
    int rc;
    qv_be32_put(key, a->c->cid);
    if ((rc = qv_lmdb_reserve(txn, db->dbi[DBI_SNAPSHOTS], key, 4, QV_SNAPSHOT_HEADER + a->len, &p)) != QV_OK) return rc;
    uint8_t *h = p;
    memcpy(h, QV_SNAPSHOT_MAGIC, 4);
    qv_be32_put(h + 4, QV_SNAPSHOT_VERSION);
    qv_be64_put(h + 8, a->c->last_seq);
    memcpy(h + QV_SNAPSHOT_HEADER, a->blob, a->len);
    /* Every log entry is <= last_seq: the writer lock is held, so all of them go. */
    return qv_lmdb_del_prefix(txn, db->dbi[DBI_LOG], key, 4);
}

int qv_snapshot_write(qv_coll *c)
{
    void *blob = NULL;
    size_t len = 0;
    int rc = qv_index_save_mem(c->ix, &blob, &len);
    if (rc != QV_OK) return rc;
    snap_arg a = {c, blob, len};
    rc = qv_db_write(c->db, snapshot_put, &a);
    qv_free(blob);
    if (rc != QV_OK) return rc;
    pthread_rwlock_wrlock(&c->maplock);
    c->snap_seq = c->last_seq;
    c->has_snapshot = 1;
    c->writes_since_ckpt = 0;
    c->stats.checkpoints++;
    pthread_rwlock_unlock(&c->maplock);
    return QV_OK;
}

int qv_coll_checkpoint_locked(qv_coll *c)
{
    int rc;
    if ((rc = qv_db_check_writable(c->db, "checkpoint")) != QV_OK) return rc;
    if (c->need_rebuild && (rc = qv_coll_rebuild(c, "an earlier index update failed")) != QV_OK) return rc;
    if (c->has_snapshot ? c->snap_seq == c->last_seq : c->last_seq == 0) return QV_OK;
    return qv_snapshot_write(c);
}

int qv_checkpoint(qv_coll *c)
{
    if (!c) return qv_fail(QV_EINVAL, "collection is NULL");
    pthread_mutex_lock(&c->db->wmutex);
    int rc = qv_coll_check_live(c);
    if (rc == QV_OK) rc = qv_coll_checkpoint_locked(c);
    pthread_mutex_unlock(&c->db->wmutex);
    return rc;
}

/* Collect the internal ids named by log entries after seq into *out (deduplicated). */
static int log_touched(qv_coll *c, MDB_txn *txn, uint64_t seq, uint64_t **out, size_t *nout, uint64_t *nentries)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t start[12];
    uint64_t *seen = NULL, *ids = NULL, expect = seq + 1;
    size_t n = 0, cap = 0;
    int rc;

    *out = NULL;
    *nout = 0;
    *nentries = 0;
    if (!(seen = qv_calloc(c->next_iid / 64 + 1, sizeof *seen))) return QV_ENOMEM;
    if ((rc = qv_lmdb_cursor_open(txn, c->db->dbi[DBI_LOG], &cur)) != QV_OK) goto cleanup;
    qv_ckey(start, c->cid, seq + 1);
    for (rc = qv_lmdb_seek(cur, start, 12, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, start, 4, &k, &v)) {
        const uint8_t *p = v.mv_data;
        uint32_t m;
        if (k.mv_size != 12 || qv_be64_get((const uint8_t *)k.mv_data + 4) != expect || v.mv_size < 4 ||
            (m = qv_be32_get(p), v.mv_size != 4 + (size_t)m * 8)) {
            rc = qv_fail(QV_ECORRUPT, "collection '%s': write log damaged or incomplete at seq %llu", c->name,
                         (unsigned long long)expect);
            goto cleanup;
        }
        expect++;
        (*nentries)++;
        for (uint32_t j = 0; j < m; j++) {
            uint64_t iid = qv_be64_get(p + 4 + 8 * (size_t)j);
            if (iid >= c->next_iid) {
                rc = qv_fail(QV_ECORRUPT, "collection '%s': write log names unknown internal id %llu", c->name,
                             (unsigned long long)iid);
                goto cleanup;
            }
            if (seen[iid / 64] >> (iid % 64) & 1) continue;
            seen[iid / 64] |= 1ull << (iid % 64);
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                uint64_t *t = qv_reallocarray(ids, ncap, sizeof *t);
                if (!t) { rc = QV_ENOMEM; goto cleanup; }
                ids = t;
                cap = ncap;
            }
            ids[n++] = iid;
        }
    }
    if (rc != QV_ENOTFOUND) goto cleanup;
    if (expect != c->last_seq + 1) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': write log ends at seq %llu, expected %llu", c->name,
                     (unsigned long long)(expect - 1), (unsigned long long)c->last_seq);
        goto cleanup;
    }
    rc = QV_OK;
    *out = ids;
    *nout = n;
    ids = NULL;
cleanup:
    qv_lmdb_cursor_close(cur);
    qv_free(seen);
    qv_free(ids);
    return rc;
}

/* Re-sync ids[0..n) of ix with the stored points: remove all, add back the live ones. */
static int resync(qv_coll *c, MDB_txn *txn, qv_index *ix, const uint64_t *ids, size_t n)
{
    size_t dim = c->params.dim, m = 0;
    uint64_t *add_ids = NULL;
    float *vecs = NULL;
    int rc;

    if (n == 0) return QV_OK;
    if ((rc = qv_index_remove(ix, n, ids, NULL)) != QV_OK) return rc;
    if (!(add_ids = qv_reallocarray(NULL, n, sizeof *add_ids)) || !(vecs = qv_reallocarray(NULL, n, dim * sizeof *vecs))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t iid = ids[i];
        uint8_t key[12];
        MDB_val v;
        if (!(c->live[iid / 64] >> (iid % 64) & 1)) continue;
        qv_ckey(key, c->cid, iid);
        if ((rc = qv_lmdb_get(txn, c->db->dbi[DBI_POINTS], key, 12, &v)) != QV_OK) {
            if (rc == QV_ENOTFOUND) rc = qv_fail(QV_ECORRUPT, "collection '%s': point %llu vanished", c->name,
                                                 (unsigned long long)iid);
            goto cleanup;
        }
        memcpy(vecs + m * dim, (const uint8_t *)v.mv_data + 8, dim * sizeof(float));
        add_ids[m++] = iid;
    }
    rc = qv_index_add(ix, m, add_ids, vecs);
cleanup:
    qv_free(add_ids);
    qv_free(vecs);
    return rc;
}

int qv_snapshot_load(qv_coll *c, MDB_txn *txn)
{
    uint8_t key[4];
    MDB_val v;
    qv_index *ix = NULL;
    qv_index_params got;
    uint64_t *ids = NULL, seq, nentries = 0;
    size_t n = 0;
    char name[96];
    int rc;

    qv_be32_put(key, c->cid);
    if ((rc = qv_lmdb_get(txn, c->db->dbi[DBI_SNAPSHOTS], key, 4, &v)) != QV_OK) return rc;
    const uint8_t *h = v.mv_data;
    if (v.mv_size < QV_SNAPSHOT_HEADER || memcmp(h, QV_SNAPSHOT_MAGIC, 4) != 0 ||
        qv_be32_get(h + 4) != QV_SNAPSHOT_VERSION)
        return qv_fail(QV_ECORRUPT, "collection '%s': snapshot header damaged or of an unknown version", c->name);
    seq = qv_be64_get(h + 8);
    if (seq > c->last_seq)
        return qv_fail(QV_ECORRUPT, "collection '%s': snapshot covers seq %llu beyond the last write %llu", c->name,
                       (unsigned long long)seq, (unsigned long long)c->last_seq);
    snprintf(name, sizeof name, "snapshot of '%s'", c->name);
    rc = qv_index_load_mem(h + QV_SNAPSHOT_HEADER, v.mv_size - QV_SNAPSHOT_HEADER, name, &ix);
    if (rc != QV_OK) {
        /* load_mem reports damage as ECORRUPT; a header it cannot accept (EINVAL: e.g. an
         * index kind not built into this library) is just as unusable here. */
        if (rc == QV_EINVAL || rc == QV_ENODEV) rc = qv_fail(QV_ECORRUPT, "%s", qv_last_error());
        goto cleanup;
    }
    qv_index_get_params(ix, &got);
    if (got.kind != qv_coll_effective_kind(c) || got.dim != c->params.dim || got.metric != c->params.metric ||
        got.quant != c->params.quant) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': snapshot holds a different index (kind/dim/metric/quant)", c->name);
        goto cleanup;
    }
    /* The file format does not carry the GPU mode; the collection's config does. */
    if (c->params.gpu != QV_GPU_OFF && (rc = qv_index_set_gpu(ix, c->params.gpu)) != QV_OK) goto cleanup;
    if ((rc = log_touched(c, txn, seq, &ids, &n, &nentries)) != QV_OK) goto cleanup;
    if ((rc = resync(c, txn, ix, ids, n)) != QV_OK) {
        if (rc == QV_EINVAL) rc = qv_fail(QV_ECORRUPT, "collection '%s': replay failed: %s", c->name, qv_last_error());
        goto cleanup;
    }
    if (qv_index_size(ix) != c->count) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': snapshot + log give %zu points, %llu are stored", c->name,
                     qv_index_size(ix), (unsigned long long)c->count);
        goto cleanup;
    }
    c->ix = ix;
    ix = NULL;
    c->snap_seq = seq;
    c->has_snapshot = 1;
    c->stats.snapshot_loads++;
    c->stats.replayed_writes += nentries;
cleanup:
    qv_free(ids);
    qv_index_free(ix);
    return rc;
}
