/*
 * storage/snapshot.c -- index snapshots: files beside the LMDB environment, recorded in
 * LMDB, opened in place, and recovery from them.
 *
 * A snapshot is the index saved by qv_index_save_file into <dir>/snapshots/<cid>-<seq>.qv
 * (seq = the last write it covers), plus <cid>-<seq>.qv.ids, the collection's id table
 * as of seq: "QVID", u32 1, u64 next_iid, ext_of[next_iid] (u64), the live bitset
 * ((next_iid + 63) / 64 u64), u32 CRC32C of all before. With it an open reads 8 bytes a
 * point instead of scanning the `ids` table, whose pages lie scattered among the points'
 * (each page fault maps its cached neighbours too: at 1M points the scan left ~500 MB of
 * the LMDB map resident). The index lives outside LMDB because it is opened in place
 * (qv_index_open maps it): a pointer into LMDB's map would not survive a map resize
 * (mdb_env_set_mapsize remaps it, maybe elsewhere), and holding a read txn open to keep
 * the snapshot's pages from being reused would both pin every page freed after it (the
 * file grows under writes) and forbid the resize altogether. A file that is never written
 * after its rename has neither problem; vectors stay durable in `points`, and the mapped
 * copy is the only one in memory (LMDB's pages of them are not touched by searches).
 *
 * Writing one (wmutex held): save the file (temp file, fsync, rename, fsync of the
 * directory; no fsyncs under QV_DB_NOSYNC), then in one txn put the record {seq, file
 * size, file CRC} and trim the collection's log (every entry <= seq), then delete the
 * previous file (a mapped index may still use it: the mapping keeps it alive). A crash
 * before the commit leaves the old record, the old file and a stray new file; after it,
 * the new record and file and a stray old one. Strays are swept when the collection opens.
 * Under QV_DB_NOSYNC an OS crash may leave a record whose file is incomplete or gone: that
 * is a damaged snapshot, and damaged snapshots mean a rebuild from the stored points.
 *
 * Loading: the record must match the files (sizes, CRCs); the id table is read, the index
 * opened in place, then every internal id named by the log entries seq+1 .. last_seq is
 * re-synced: its id-table entry from its point record (or dead without one), and in the
 * index removed, then added back with its current stored vector if it is still live. Re-syncing to the current state (instead of replaying each write in order) is
 * idempotent and needs no per-write vectors in the log. Anything that does not add up --
 * a bad record, a missing or mismatched file, QV_ECORRUPT from the open, parameters that
 * differ from the config, a gap in the log, an index size that differs from the stored
 * point count -- is QV_ECORRUPT, and the caller rebuilds from the stored vectors.
 *
 * Verification: the open checks at once what searches rely on and defers the checks that
 * read every page (hnsw_io.c). A replay verifies on its first write; otherwise a thread
 * verifies the index whole after the collection opened (qv_snapshot_verify_start) while
 * searches are served, and marks the collection for a rebuild if the file turns out
 * damaged. That pass reads the file sequentially, which also warms the page cache.
 */
#include "storage/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "index/index.h"

enum { P_DIR, P_INDEX, P_IDS };

/* <dir>/snapshots[/<cid>-<seq>.qv[.ids]] into buf; QV_EINVAL if it does not fit. */
static int snap_path(const qv_db *db, uint32_t cid, uint64_t seq, int what, char *buf, size_t len)
{
    int n = what == P_DIR ? snprintf(buf, len, "%s/" QV_SNAPSHOT_DIR, db->path)
                          : snprintf(buf, len, "%s/" QV_SNAPSHOT_DIR "/%" PRIu32 "-%" PRIu64 ".qv%s", db->path, cid,
                                     seq, what == P_IDS ? ".ids" : "");
    if (n < 0 || (size_t)n >= len) return qv_fail(QV_EINVAL, "%s: database path too long for snapshot files", db->path);
    return QV_OK;
}

/* Size and trailing CRC of a snapshot file. */
static int file_facts(const char *path, uint64_t *size, uint32_t *crc)
{
    struct stat st;
    uint8_t t[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = QV_OK;
    if (fd < 0) return qv_fail(errno == ENOENT ? QV_ENOTFOUND : QV_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || st.st_size < 4 || pread(fd, t, 4, st.st_size - 4) != 4)
        rc = qv_fail(QV_ECORRUPT, "%s: cannot read its checksum", path);
    else {
        *size = (uint64_t)st.st_size;
        *crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    }
    close(fd);
    return rc;
}

typedef struct {
    qv_coll *c;
    uint64_t seq, size, ids_size;
    uint32_t crc, ids_crc;
} snap_arg;

#define IDS_MAGIC "QVID"
#define IDS_VERSION 1u
#define IDS_HEADER 16u

/* Write an id table of n internal ids (ext_of[n], live[(n + 63) / 64]) to path. */
static int ids_save(uint64_t n, const uint64_t *ext_of, const uint64_t *live, const char *path, int nosync,
                    uint64_t *size, uint32_t *crc)
{
    qv_atomic_file f;
    qv_writer w;
    int rc;
    if ((rc = qv_atomic_file_begin(&f, path)) != QV_OK) return rc;
    if ((rc = qv_writer_init_fd(&w, f.fd, path)) != QV_OK) goto fail;
    qv_w_bytes(&w, IDS_MAGIC, 4);
    qv_w_u32(&w, IDS_VERSION);
    qv_w_u64(&w, n);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    qv_w_bytes(&w, ext_of, n * sizeof *ext_of);
    qv_w_bytes(&w, live, (n + 63) / 64 * sizeof *live);
#else
    for (uint64_t i = 0; i < n; i++) qv_w_u64(&w, ext_of[i]);
    for (uint64_t i = 0; i < (n + 63) / 64; i++) qv_w_u64(&w, live[i]);
#endif
    *crc = w.crc;
    if ((rc = qv_writer_finish_fd(&w)) != QV_OK) goto fail;
    *size = qv_writer_pos(&w);
    qv_writer_release(&w);
    return qv_atomic_file_commit(&f, nosync);
fail:
    qv_writer_release(&w);
    qv_atomic_file_abort(&f);
    return rc;
}

/* Read the id table of path (size bytes, CRC crc, both from the record) into c->ext_of and
 * c->live (room for c->next_iid reserved); QV_ECORRUPT for anything that does not fit. */
static int ids_load(qv_coll *c, const char *path, uint64_t size, uint32_t crc)
{
    uint8_t head[IDS_HEADER], tail[4];
    uint64_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = QV_OK;
    if (fd < 0) return qv_fail(errno == ENOENT ? QV_ECORRUPT : QV_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != size || size < IDS_HEADER + 4 ||
        pread(fd, head, IDS_HEADER, 0) != IDS_HEADER) {
        rc = qv_fail(QV_ECORRUPT, "%s: not the id table its record describes", path);
        goto out;
    }
    n = (uint64_t)head[8] | (uint64_t)head[9] << 8 | (uint64_t)head[10] << 16 | (uint64_t)head[11] << 24 |
        (uint64_t)head[12] << 32 | (uint64_t)head[13] << 40 | (uint64_t)head[14] << 48 | (uint64_t)head[15] << 56;
    if (memcmp(head, IDS_MAGIC, 4) != 0 || head[4] != IDS_VERSION || head[5] || head[6] || head[7] ||
        n > c->next_iid || size != IDS_HEADER + n * 8 + (n + 63) / 64 * 8 + 4) {
        rc = qv_fail(QV_ECORRUPT, "%s: damaged header", path);
        goto out;
    }
    size_t eb = (size_t)n * 8, lb = (size_t)((n + 63) / 64) * 8;
    if (pread(fd, c->ext_of, eb, IDS_HEADER) != (ssize_t)eb || pread(fd, c->live, lb, IDS_HEADER + eb) != (ssize_t)lb ||
        pread(fd, tail, 4, IDS_HEADER + eb + lb) != 4) {
        rc = qv_fail(QV_ECORRUPT, "%s: short read", path);
        goto out;
    }
    uint32_t got = qv_crc32c(qv_crc32c(qv_crc32c(0, head, IDS_HEADER), c->ext_of, eb), c->live, lb);
    uint32_t stored = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
    if (got != stored || got != crc) {
        rc = qv_fail(QV_ECORRUPT, "%s: checksum mismatch", path);
        goto out;
    }
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    for (uint64_t i = 0; i < n; i++) c->ext_of[i] = __builtin_bswap64(c->ext_of[i]);
    for (uint64_t i = 0; i < (n + 63) / 64; i++) c->live[i] = __builtin_bswap64(c->live[i]);
#endif
    if (n % 64) c->live[n / 64] &= (1ull << (n % 64)) - 1;     /* no bits past n */
out:
    close(fd);
    return rc;
}

static int record_put(qv_db *db, MDB_txn *txn, uint32_t cid, const snap_arg *a)
{
    uint8_t key[4], rec[QV_SNAPSHOT_RECORD];
    qv_be32_put(key, cid);
    memset(rec, 0, sizeof rec);
    memcpy(rec, QV_SNAPSHOT_MAGIC, 4);
    qv_be32_put(rec + 4, QV_SNAPSHOT_VERSION);
    qv_be64_put(rec + 8, a->seq);
    qv_be64_put(rec + 16, a->size);
    qv_be32_put(rec + 24, a->crc);
    qv_be32_put(rec + 28, a->ids_crc);
    qv_be64_put(rec + 32, a->ids_size);
    return qv_lmdb_put(txn, db->dbi[DBI_SNAPSHOTS], key, 4, rec, sizeof rec);
}

static int snapshot_put(qv_db *db, MDB_txn *txn, void *arg)
{
    snap_arg *a = arg;
    uint8_t key[4];
    int rc;
    qv_be32_put(key, a->c->cid);
    if ((rc = record_put(db, txn, a->c->cid, a)) != QV_OK) return rc;
    /* Every log entry is <= seq: the writer lock is held, so all of them go. */
    return qv_lmdb_del_prefix(txn, db->dbi[DBI_LOG], key, 4);
}

int qv_snapshot_write(qv_coll *c)
{
    qv_db *db = c->db;
    char dir[4096], path[4096], ids[4096], old[4096];
    snap_arg a = {c, c->last_seq, 0, 0, 0, 0};
    int rc, nosync = (db->opt.flags & QV_DB_NOSYNC) != 0;
    if ((rc = snap_path(db, c->cid, a.seq, P_DIR, dir, sizeof dir)) != QV_OK) return rc;
    if ((rc = snap_path(db, c->cid, a.seq, P_INDEX, path, sizeof path)) != QV_OK) return rc;
    if ((rc = snap_path(db, c->cid, a.seq, P_IDS, ids, sizeof ids)) != QV_OK) return rc;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return qv_fail(errno == ENOSPC ? QV_EFULL : QV_EIO, "%s: cannot create: %s", dir, strerror(errno));
    /* A quantized index's snapshot holds graph and codes only: the vectors are in
     * `points` (vec_source.c). */
    qv_coll_use_vec_source(c, c->ix, 0);
    /* wmutex held: ext_of and live do not change */
    if ((rc = ids_save(c->next_iid, c->ext_of, c->live, ids, nosync, &a.ids_size, &a.ids_crc)) != QV_OK ||
        (rc = qv_index_save_file(c->ix, path, nosync)) != QV_OK || (rc = file_facts(path, &a.size, &a.crc)) != QV_OK ||
        (rc = qv_db_write(db, snapshot_put, &a)) != QV_OK) {
        if (!(c->has_snapshot && c->snap_seq == a.seq)) {
            unlink(path);
            unlink(ids);
        }
        return rc;
    }
    if (c->has_snapshot && c->snap_seq != a.seq) {
        if (snap_path(db, c->cid, c->snap_seq, P_INDEX, old, sizeof old) == QV_OK) unlink(old);
        if (snap_path(db, c->cid, c->snap_seq, P_IDS, old, sizeof old) == QV_OK) unlink(old);
    }
    __atomic_store_n(&c->snap_damaged, 0, __ATOMIC_RELEASE);
    pthread_rwlock_wrlock(&c->maplock);
    c->snap_seq = a.seq;
    c->has_snapshot = 1;
    c->writes_since_ckpt = 0;
    c->stats.checkpoints++;
    pthread_rwlock_unlock(&c->maplock);
    return QV_OK;
}

/* ---- for backups (backup_index.c) ------------------------------------------------------ */

int qv_snapshot_path(const qv_db *db, uint32_t cid, uint64_t seq, int ids, char *buf, size_t len)
{
    return snap_path(db, cid, seq, ids ? P_IDS : P_INDEX, buf, len);
}

int qv_snapshot_mkdir(const qv_db *db)
{
    char dir[4096];
    int rc = snap_path(db, 0, 0, P_DIR, dir, sizeof dir);
    if (rc != QV_OK) return rc;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return qv_fail(errno == ENOSPC ? QV_EFULL : QV_EIO, "%s: cannot create: %s", dir, strerror(errno));
    return QV_OK;
}

int qv_snapshot_open_file(qv_db *db, MDB_txn *txn, uint32_t cid, int *fd, uint64_t *seq, uint64_t *size,
                          uint32_t *crc)
{
    uint8_t key[4];
    MDB_val v;
    char path[4096];
    struct stat st;
    *fd = -1;
    qv_be32_put(key, cid);
    int rc = qv_lmdb_get(txn, db->dbi[DBI_SNAPSHOTS], key, 4, &v);
    if (rc != QV_OK) return rc;
    const uint8_t *h = v.mv_data;
    if (v.mv_size != QV_SNAPSHOT_RECORD || memcmp(h, QV_SNAPSHOT_MAGIC, 4) != 0 ||
        qv_be32_get(h + 4) != QV_SNAPSHOT_VERSION)
        return qv_fail(QV_ECORRUPT, "snapshot record of collection id %u damaged or of another format", (unsigned)cid);
    *seq = qv_be64_get(h + 8);
    *size = qv_be64_get(h + 16);
    *crc = qv_be32_get(h + 24);
    if ((rc = snap_path(db, cid, *seq, P_INDEX, path, sizeof path)) != QV_OK) return rc;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return qv_fail(errno == ENOENT ? QV_ENOTFOUND : QV_EIO, "%s: %s", path, strerror(errno));
    if (fstat(f, &st) != 0 || (uint64_t)st.st_size != *size || *size < 4) {
        close(f);
        return qv_fail(QV_ECORRUPT, "%s: not the size its record says", path);
    }
    *fd = f;
    return QV_OK;
}

int qv_snapshot_install(qv_db *db, MDB_txn *txn, uint32_t cid, uint64_t seq)
{
    uint8_t key[4];
    MDB_val k, v;
    MDB_cursor *cur = NULL;
    char path[4096], ids[4096];
    uint64_t *ext_of = NULL, *live = NULL, next_iid, nids = 0, npoints = 0;
    snap_arg a = {NULL, seq, 0, 0, 0, 0};
    int rc;
    qv_be32_put(key, cid);
    if ((rc = qv_lmdb_get(txn, db->dbi[DBI_STATE], key, 4, &v)) != QV_OK) return rc == QV_ENOTFOUND ? QV_ECORRUPT : rc;
    if (v.mv_size != 24) return qv_fail(QV_ECORRUPT, "collection id %u: damaged state record", (unsigned)cid);
    next_iid = qv_be64_get((const uint8_t *)v.mv_data + 8);
    if ((rc = snap_path(db, cid, seq, P_INDEX, path, sizeof path)) != QV_OK) return rc;
    if ((rc = snap_path(db, cid, seq, P_IDS, ids, sizeof ids)) != QV_OK) return rc;
    if ((rc = file_facts(path, &a.size, &a.crc)) != QV_OK) return rc;
    /* The id table as the records say now: the log's writes after seq are re-synced from
     * the points on load anyway, so this table and the one as of seq load the same. */
    if (!(ext_of = qv_calloc(next_iid ? next_iid : 1, sizeof *ext_of)) ||
        !(live = qv_calloc((next_iid + 63) / 64 + 1, sizeof *live))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_IDS], &cur)) != QV_OK) goto cleanup;
    for (rc = qv_lmdb_seek(cur, key, 4, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, key, 4, &k, &v)) {
        uint64_t iid;
        if (k.mv_size != 12 || v.mv_size != 8 || (iid = qv_be64_get(v.mv_data)) >= next_iid) {
            rc = qv_fail(QV_ECORRUPT, "collection id %u: damaged id record", (unsigned)cid);
            goto cleanup;
        }
        ext_of[iid] = qv_be64_get((const uint8_t *)k.mv_data + 4);
        live[iid / 64] |= 1ull << (iid % 64);
        nids++;
    }
    if (rc != QV_ENOTFOUND) goto cleanup;
    /* The records came from a file: the id records must name exactly the stored points
     * (an open with a snapshot reads neither, so a mismatch would go unnoticed). */
    qv_lmdb_cursor_close(cur);
    cur = NULL;
    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_POINTS], &cur)) != QV_OK) goto cleanup;
    for (rc = qv_lmdb_seek(cur, key, 4, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, key, 4, &k, &v)) {
        uint64_t iid;
        if (k.mv_size != 12 || v.mv_size < 8 || (iid = qv_be64_get((const uint8_t *)k.mv_data + 4)) >= next_iid ||
            !(live[iid / 64] >> (iid % 64) & 1) || ext_of[iid] != qv_be64_get(v.mv_data))
            break;
        npoints++;
    }
    if (rc == QV_OK || npoints != nids) {
        rc = qv_fail(QV_ECORRUPT, "collection id %u: its point records and id records do not match", (unsigned)cid);
        goto cleanup;
    }
    if (rc != QV_ENOTFOUND) goto cleanup;
    if ((rc = ids_save(next_iid, ext_of, live, ids, (db->opt.flags & QV_DB_NOSYNC) != 0, &a.ids_size, &a.ids_crc)) !=
        QV_OK)
        goto cleanup;
    rc = record_put(db, txn, cid, &a);
cleanup:
    qv_lmdb_cursor_close(cur);
    qv_free(ext_of);
    qv_free(live);
    return rc;
}

void qv_snapshot_files_sweep(qv_db *db, uint32_t cid, uint64_t keep_seq)
{
    char dir[4096], path[4096], prefix[16];
    if (db->opt.flags & QV_DB_RDONLY) return;
    if (snap_path(db, cid, 0, P_DIR, dir, sizeof dir) != QV_OK) return;
    DIR *d = opendir(dir);
    if (!d) return;
    snprintf(prefix, sizeof prefix, "%" PRIu32 "-", cid);
    size_t pl = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, pl) != 0) continue;
        char *end = NULL;
        errno = 0;
        unsigned long long seq = strtoull(e->d_name + pl, &end, 10);
        /* "<cid>-<seq>.qv[.ids]" and the temp files of an interrupted save, "<...>.tmp.*" */
        if (errno || end == e->d_name + pl || strncmp(end, ".qv", 3) != 0) continue;
        if (keep_seq != UINT64_MAX && seq == keep_seq && (strcmp(end, ".qv") == 0 || strcmp(end, ".qv.ids") == 0))
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < sizeof path) unlink(path);
    }
    closedir(d);
}

int qv_coll_checkpoint_locked(qv_coll *c)
{
    int rc;
    if ((rc = qv_db_check_writable(c->db, "checkpoint")) != QV_OK) return rc;
    if (c->need_rebuild && (rc = qv_coll_rebuild(c, "an earlier index update failed")) != QV_OK) return rc;
    int damaged = __atomic_load_n(&c->snap_damaged, __ATOMIC_ACQUIRE);
    if (!damaged && (c->has_snapshot ? c->snap_seq == c->last_seq : c->last_seq == 0)) return QV_OK;
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

/* The id table entries of ids[0..n) as the stored points say now; then the live count
 * must be the state record's. */
static int ids_replay(qv_coll *c, MDB_txn *txn, const uint64_t *ids, size_t n)
{
    uint64_t live = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t iid = ids[i];
        uint8_t key[12];
        MDB_val v;
        qv_ckey(key, c->cid, iid);
        int rc = qv_lmdb_get(txn, c->db->dbi[DBI_POINTS], key, 12, &v);
        if (rc == QV_ENOTFOUND) {
            c->live[iid / 64] &= ~(1ull << (iid % 64));
            continue;
        }
        if (rc != QV_OK) return rc;
        if (v.mv_size != qv_point_rec_size(c))
            return qv_fail(QV_ECORRUPT, "collection '%s': damaged point record", c->name);
        c->ext_of[iid] = qv_be64_get(v.mv_data);
        c->live[iid / 64] |= 1ull << (iid % 64);
    }
    for (uint64_t w = 0; w < (c->next_iid + 63) / 64; w++) live += (uint64_t)__builtin_popcountll(c->live[w]);
    if (live != c->count)
        return qv_fail(QV_ECORRUPT, "collection '%s': snapshot + log give %llu live ids, the state record says %llu",
                       c->name, (unsigned long long)live, (unsigned long long)c->count);
    return QV_OK;
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
        if (v.mv_size != qv_point_rec_size(c)) {
            rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged point record", c->name);
            goto cleanup;
        }
        memcpy(vecs + m * dim, (const uint8_t *)v.mv_data + 8, dim * sizeof(float));   /* what the index scores */
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
    uint64_t *ids = NULL, seq, size, ids_size, fsize = 0, nentries = 0;
    uint32_t crc, ids_crc, fcrc = 0;
    size_t n = 0;
    char path[4096], idpath[4096];
    int rc;

    qv_be32_put(key, c->cid);
    if ((rc = qv_lmdb_get(txn, c->db->dbi[DBI_SNAPSHOTS], key, 4, &v)) != QV_OK) return rc;
    const uint8_t *h = v.mv_data;
    if (v.mv_size < 8 || memcmp(h, QV_SNAPSHOT_MAGIC, 4) != 0)
        return qv_fail(QV_ECORRUPT, "collection '%s': snapshot record damaged", c->name);
    if (qv_be32_get(h + 4) != QV_SNAPSHOT_VERSION || v.mv_size != QV_SNAPSHOT_RECORD)
        return qv_fail(QV_ECORRUPT, "collection '%s': snapshot of format %u (this build reads %u)", c->name,
                       qv_be32_get(h + 4), QV_SNAPSHOT_VERSION);
    seq = qv_be64_get(h + 8);
    size = qv_be64_get(h + 16);
    crc = qv_be32_get(h + 24);
    ids_crc = qv_be32_get(h + 28);
    ids_size = qv_be64_get(h + 32);
    if (seq > c->last_seq)
        return qv_fail(QV_ECORRUPT, "collection '%s': snapshot covers seq %llu beyond the last write %llu", c->name,
                       (unsigned long long)seq, (unsigned long long)c->last_seq);
    if ((rc = snap_path(c->db, c->cid, seq, P_INDEX, path, sizeof path)) != QV_OK) return rc;
    if ((rc = snap_path(c->db, c->cid, seq, P_IDS, idpath, sizeof idpath)) != QV_OK) return rc;
    if ((rc = ids_load(c, idpath, ids_size, ids_crc)) != QV_OK) {
        if (rc != QV_ENOMEM) rc = qv_fail(QV_ECORRUPT, "collection '%s': snapshot unusable: %s", c->name, qv_last_error());
        return rc;
    }
    rc = file_facts(path, &fsize, &fcrc);
    if (rc == QV_OK && (fsize != size || fcrc != crc))
        rc = qv_fail(QV_ECORRUPT, "%s: %llu bytes with checksum %08x, its record says %llu bytes, %08x", path,
                     (unsigned long long)fsize, (unsigned)fcrc, (unsigned long long)size, (unsigned)crc);
    if (rc == QV_OK) rc = qv_index_open(path, &ix);
    if (rc != QV_OK) {
        /* Whatever keeps the file from opening makes it unusable here: rebuild. */
        if (rc != QV_ENOMEM) rc = qv_fail(QV_ECORRUPT, "collection '%s': snapshot unusable: %s", c->name, qv_last_error());
        goto cleanup;
    }
    qv_index_get_params(ix, &got);
    if (got.kind != qv_coll_effective_kind(c) || got.dim != c->params.dim || got.metric != c->params.metric ||
        got.quant != c->params.quant) {
        rc = qv_fail(QV_ECORRUPT, "collection '%s': snapshot holds a different index (kind/dim/metric/quant)", c->name);
        goto cleanup;
    }
    /* The file format does not carry the GPU mode nor the thread count; the config does. */
    if (c->params.gpu != QV_GPU_OFF && (rc = qv_index_set_gpu(ix, c->params.gpu)) != QV_OK) goto cleanup;
    /* Before the replay (its inserts read vectors); an empty index is about to be loaded:
     * it keeps a heap copy meanwhile (vec_source.c). */
    qv_coll_use_vec_source(c, ix, qv_index_size(ix) > 0);
    if ((rc = log_touched(c, txn, seq, &ids, &n, &nentries)) != QV_OK) goto cleanup;
    if ((rc = ids_replay(c, txn, ids, n)) != QV_OK) goto cleanup;
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

/* ---- verification in the background ---------------------------------------------------- */

static void *verify_main(void *arg)
{
    qv_coll *c = arg;
    int rc = qv_index_verify(c->ix);   /* c->ix is not replaced before this thread is joined */
    pthread_rwlock_wrlock(&c->maplock);
    if (rc == QV_OK) {
        c->stats.verified_snapshots++;
    } else if (rc == QV_ECORRUPT) {
        c->stats.damaged_snapshots++;
        qv_coll_warn(c, "collection '%s': snapshot damaged, the index is rebuilt from the stored vectors: %s", c->name,
                     qv_last_error());
        __atomic_store_n(&c->snap_damaged, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&c->need_rebuild, 1, __ATOMIC_RELEASE);
    } else {                           /* out of memory: the first write verifies again */
        qv_coll_warn(c, "collection '%s': snapshot verification postponed: %s", c->name, qv_last_error());
    }
    pthread_rwlock_unlock(&c->maplock);
    return NULL;
}

void qv_snapshot_verify_start(qv_coll *c)
{
    if (c->verify_running || !c->ix || qv_coll_effective_kind(c) != QV_INDEX_HNSW) return;
    if (pthread_create(&c->verify_thread, NULL, verify_main, c) == 0) c->verify_running = 1;
    /* else: the first write verifies (hnsw_io.c); nothing is lost but the early warning */
}

void qv_snapshot_verify_join(qv_coll *c)
{
    if (!c->verify_running) return;
    pthread_join(c->verify_thread, NULL);
    c->verify_running = 0;
}
