/*
 * storage/backup_index.c -- the index snapshot's part of a backup: the one place that
 * knows how the storage layer keeps index snapshots (snapshot.c). Everything else in a
 * backup is the collection's LMDB records, copied as they are.
 *
 * In a backup file an index snapshot is {seq, the index bytes} (storage/backup.h): seq is
 * the last write the snapshot covers, and the log records that come along with the
 * collection name the writes after it, so a restored collection opens exactly as the
 * original would reopen -- snapshot plus a replay of those writes -- and its graph is not
 * built again. The bytes are the index's own save format (qv_index_save_mem), whatever
 * form the storage layer keeps them in; here that form is an LMDB record in `snapshots`
 * ("QVSN", u32 version, u64 seq, the bytes), which the backup's read transaction sees
 * together with everything else of the collection. (A stale one is replaced in the file
 * by the in-memory index, serialized at the backup's point in time: backup_create.c.)
 */
#include "storage/backup.h"

#include <string.h>

#include "core/error.h"

int qv_bk_put_index(qv_bk_writer *w, uint64_t seq, const void *bytes, uint64_t n)
{
    uint8_t sk[16];
    for (int i = 0; i < 8; i++) {
        sk[i] = (uint8_t)(seq >> (8 * i));
        sk[8 + i] = (uint8_t)(n >> (8 * i));
    }
    int rc = qv_bk_put_frame(w, 'S', 0, sk, sizeof sk, NULL, 0, NULL, 0);
    for (uint64_t off = 0; off < n && rc == QV_OK; off += QV_BK_CHUNK) {
        size_t len = n - off < QV_BK_CHUNK ? (size_t)(n - off) : QV_BK_CHUNK;
        rc = qv_bk_put_frame(w, 'B', 0, NULL, 0, (const uint8_t *)bytes + off, len, NULL, 0);
    }
    return rc;
}

int qv_bk_index_dump(qv_db *db, MDB_txn *txn, uint32_t cid, qv_bk_writer *w)
{
    uint8_t key[4];
    MDB_val v;
    qv_be32_put(key, cid);
    int rc = qv_lmdb_get(txn, db->dbi[DBI_SNAPSHOTS], key, 4, &v);
    if (rc == QV_ENOTFOUND) return QV_OK;
    if (rc != QV_OK) return rc;
    const uint8_t *h = v.mv_data;
    /* One the collection could not use itself is left out: the restored collection is
     * then built from its points, as the original would be on its next open. */
    if (v.mv_size <= QV_SNAPSHOT_HEADER || memcmp(h, QV_SNAPSHOT_MAGIC, 4) != 0 ||
        qv_be32_get(h + 4) != QV_SNAPSHOT_VERSION)
        return QV_OK;
    return qv_bk_put_index(w, qv_be64_get(h + 8), h + QV_SNAPSHOT_HEADER, v.mv_size - QV_SNAPSHOT_HEADER);
}

int qv_bk_index_install(qv_db *db, MDB_txn *txn, uint32_t cid, qv_bk_reader *r)
{
    qv_bk_frame f;
    uint8_t key[4], *p;
    uint64_t seq = 0, n = 0;
    void *dst;
    int rc = qv_bk_get_frame(r, &f);
    if (rc != QV_OK) return rc;
    if (f.tag != 'S' || f.klen != 16) return qv_fail(QV_ECORRUPT, "%s: changed since it was verified", r->path);
    for (int i = 7; i >= 0; i--) {
        seq = seq << 8 | f.key[i];
        n = n << 8 | f.key[8 + i];
    }
    qv_be32_put(key, cid);
    if ((rc = qv_lmdb_reserve(txn, db->dbi[DBI_SNAPSHOTS], key, 4, QV_SNAPSHOT_HEADER + n, &dst)) != QV_OK) return rc;
    p = dst;
    memcpy(p, QV_SNAPSHOT_MAGIC, 4);
    qv_be32_put(p + 4, QV_SNAPSHOT_VERSION);
    qv_be64_put(p + 8, seq);
    for (uint64_t off = 0; off < n; off += f.vlen) {
        if ((rc = qv_bk_get_frame(r, &f)) != QV_OK) return rc;
        if (f.tag != 'B' || f.vlen == 0 || f.vlen > n - off) return qv_fail(QV_ECORRUPT, "%s: changed since it was verified", r->path);
        memcpy(p + QV_SNAPSHOT_HEADER + off, f.val, f.vlen);
    }
    return QV_OK;
}
