/*
 * storage/backup_index.c -- the index snapshot's part of a backup: the one place that
 * knows how the storage layer keeps index snapshots (snapshot.c). Everything else in a
 * backup is the collection's LMDB records, copied as they are.
 *
 * In a backup file an index snapshot is {seq, the index bytes} (storage/backup.h): seq is
 * the last write the snapshot covers, and the log records that come along with the
 * collection name the writes after it, so a restored collection opens exactly as the
 * original would reopen -- snapshot plus a replay of those writes -- and its graph is not
 * built again (a rebuild of sift-debian-1m takes 185 s on 2 cores). The bytes are the
 * index's own save format (qv_index_save_mem and qv_index_save_file write the same bytes).
 *
 * The storage layer keeps a snapshot as a file <dir>/snapshots/<cid>-<seq>.qv, never
 * written after its rename, named by a record in `snapshots` (snapshot.c). A backup opens
 * the file that its read txn's record names while holding the writer lock (backup_create.c,
 * step 3): a checkpoint, which unlinks the file it replaces, runs under that lock too, so
 * the file cannot go between the txn's start and the open, and the open fd keeps it
 * readable to the end of the copy. (A stale snapshot is replaced in the backup by the
 * in-memory index, serialized at the backup's point in time: backup_create.c.)
 *
 * A restore writes the bytes to the staged collection's snapshot file (outside the writer
 * lock: nothing names the staged id yet), then under the lock its id table (from the
 * restored `ids` records) and its record.
 */
#include "storage/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/serial.h"

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

int qv_bk_index_pin(qv_db *db, MDB_txn *txn, uint32_t cid, qv_bk_snapfile *s)
{
    memset(s, 0, sizeof *s);
    s->cid = cid;
    int rc = qv_snapshot_open_file(db, txn, cid, &s->fd, &s->seq, &s->size, &s->crc);
    /* none, gone, or one the collection could not use itself: left out, and the restored
     * collection is built from its points, as the original would be on its next open */
    if (rc == QV_ENOTFOUND || rc == QV_ECORRUPT) rc = QV_OK;
    return rc;
}

void qv_bk_index_unpin(qv_bk_snapfile *s)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}

int qv_bk_index_dump(const qv_bk_snapfile *s, qv_bk_writer *w)
{
    uint8_t sk[16];
    uint32_t crc = 0, stored = 0;
    if (s->fd < 0) return QV_OK;
    for (int i = 0; i < 8; i++) {
        sk[i] = (uint8_t)(s->seq >> (8 * i));
        sk[8 + i] = (uint8_t)(s->size >> (8 * i));
    }
    uint8_t *buf = qv_malloc(QV_BK_CHUNK);
    if (!buf) return QV_ENOMEM;
    int rc = qv_bk_put_frame(w, 'S', 0, sk, sizeof sk, NULL, 0, NULL, 0);
    for (uint64_t off = 0; off < s->size && rc == QV_OK;) {
        size_t len = s->size - off < QV_BK_CHUNK ? (size_t)(s->size - off) : QV_BK_CHUNK;
        ssize_t got = pread(s->fd, buf, len, (off_t)off);
        if (got != (ssize_t)len) {
            rc = qv_fail(QV_EIO, "index snapshot of collection id %u: %s", (unsigned)s->cid,
                         got < 0 ? strerror(errno) : "short read");
            break;
        }
        /* the file's last 4 bytes are the CRC32C of all before them */
        uint64_t end = off + len, body_end = s->size - 4;
        if (off < body_end) crc = qv_crc32c(crc, buf, (size_t)((end < body_end ? end : body_end) - off));
        for (uint64_t i = off > body_end ? off : body_end; i < end; i++)
            stored |= (uint32_t)buf[i - off] << (8 * (i - body_end));
        rc = qv_bk_put_frame(w, 'B', 0, NULL, 0, buf, len, NULL, 0);
        off += len;
    }
    qv_free(buf);
    if (rc == QV_OK && (crc != stored || stored != s->crc))
        rc = qv_fail(QV_ECORRUPT, "index snapshot of collection id %u is damaged (checksum mismatch): checkpoint "
                     "the collection, then back it up again", (unsigned)s->cid);
    return rc;
}

typedef struct {
    uint32_t cid;
    uint64_t seq;
} install_arg;

static int install_record(qv_db *db, MDB_txn *txn, void *arg)
{
    install_arg *a = arg;
    return qv_snapshot_install(db, txn, a->cid, a->seq);
}

int qv_bk_index_install(qv_db *db, uint32_t cid, qv_bk_reader *r, uint64_t off)
{
    qv_bk_frame f;
    qv_atomic_file af;
    char path[4096];
    uint64_t seq = 0, n = 0;
    int rc;
    qv_bk_seek(r, off);
    if ((rc = qv_bk_get_frame(r, &f)) != QV_OK) return rc;
    if (f.tag != 'S' || f.klen != 16) return qv_fail(QV_ECORRUPT, "%s: changed since it was verified", r->path);
    for (int i = 7; i >= 0; i--) {
        seq = seq << 8 | f.key[i];
        n = n << 8 | f.key[8 + i];
    }
    if ((rc = qv_snapshot_mkdir(db)) != QV_OK) return rc;
    if ((rc = qv_snapshot_path(db, cid, seq, 0, path, sizeof path)) != QV_OK) return rc;
    if ((rc = qv_atomic_file_begin(&af, path)) != QV_OK) return rc;
    for (uint64_t done = 0; done < n && rc == QV_OK; done += f.vlen) {
        if ((rc = qv_bk_get_frame(r, &f)) != QV_OK) break;
        if (f.tag != 'B' || f.vlen == 0 || f.vlen > n - done) {
            rc = qv_fail(QV_ECORRUPT, "%s: changed since it was verified", r->path);
            break;
        }
        for (size_t w = 0; w < f.vlen && rc == QV_OK;) {
            ssize_t put = write(af.fd, f.val + w, f.vlen - w);
            if (put < 0 && errno == EINTR) continue;
            if (put <= 0)
                rc = qv_fail(errno == ENOSPC || errno == EDQUOT ? QV_EFULL : QV_EIO, "%s: %s", path, strerror(errno));
            else
                w += (size_t)put;
        }
    }
    if (rc != QV_OK) {
        qv_atomic_file_abort(&af);
        return rc;
    }
    if ((rc = qv_atomic_file_commit(&af, (db->opt.flags & QV_DB_NOSYNC) != 0)) != QV_OK) return rc;
    install_arg a = {cid, seq};
    pthread_mutex_lock(&db->wmutex);
    rc = qv_db_write(db, install_record, &a);
    pthread_mutex_unlock(&db->wmutex);
    return rc;                     /* a failure leaves files that qv_bk_index_forget removes */
}

void qv_bk_index_forget(qv_db *db, const uint32_t *cids, size_t n)
{
    for (size_t i = 0; i < n; i++) qv_snapshot_files_sweep(db, cids[i], UINT64_MAX);
}
