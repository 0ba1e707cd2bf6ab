/*
 * storage/backup_create.c -- qv_backup_create: a collection, or every collection, as one
 * LMDB read transaction saw it, into a file (format: storage/backup.h).
 *
 * Steps:
 *  1. Look: each collection is opened (loaded, if this process had not yet) and its
 *     stored index snapshot judged: stale when there is none, or when more than
 *     max(MIN_STALE, count / STALE_DIVISOR) points are named by writes after it. A restored collection replays
 *     those writes one HNSW insert per point (about 0.2 ms each at 1M points on 2 cores),
 *     while serializing the whole graph costs about a microsecond per point, so past 1% of
 *     the collection a fresh serialization is the cheaper of the two.
 *  2. Headroom: pages that writers free while the read transaction is open cannot be
 *     reused until it ends, so the file may grow by up to the data copied; and growing
 *     the LMDB map needs every transaction of the process to end first, i.e. it would
 *     stall writers until the backup is done. So the map is grown beforehand (it is only
 *     address space) until its free part is at least as large as its used part.
 *  3. The point in time: the read transaction begins, under the writer lock. The stored
 *     snapshot files of the fresh collections are opened right then (backup_index.c: no
 *     checkpoint can replace and unlink them meanwhile). For a stale collection the
 *     in-memory index -- which holds exactly the committed writes whenever the writer
 *     lock is free -- is serialized (qv_index_save_mem) before the lock is released:
 *     writers wait for that serialization (0.8-1.7 s for the 800 MB index of
 *     sift-debian-1m) and nothing else. It replaces the stored snapshot in the file, with
 *     the last write as its seq, and the log records before it are left out. Nothing is
 *     written to the database: unlike a checkpoint, the pause is not followed by a write
 *     of the index and its fsync (a checkpoint held writers 3.4-4.8 s when snapshots
 *     were LMDB records; not measured since they became files).
 *  4. Copy: the collections' names and configs, then for each its records table by table
 *     and its index snapshot, into a temporary file "<dir>/.<name>.tmp.XXXXXX", which is
 *     synced and renamed over path, and the directory synced. Writes go on meanwhile
 *     (LMDB readers and the writer do not wait for each other), and none of them is in the
 *     file unless it committed before step 3. Any failure removes the temporary file: a
 *     full disk leaves nothing behind.
 */
#include "storage/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

#define MIN_STALE 256u
#define STALE_DIVISOR 100u

/* Points named by the log entries of collection cid (the writes after its snapshot);
 * *none = 1 when it has no stored index snapshot at all. */
static int replay_size(qv_db *db, uint32_t cid, uint64_t *out, int *none)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t prefix[4];
    int rc;
    *out = 0;
    qv_be32_put(prefix, cid);
    if ((rc = qv_lmdb_begin(db, 1, &txn)) != QV_OK) return rc;
    *none = qv_lmdb_get(txn, db->dbi[DBI_SNAPSHOTS], prefix, 4, &v) == QV_ENOTFOUND;
    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_LOG], &cur)) == QV_OK) {
        for (rc = qv_lmdb_seek(cur, prefix, 4, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, prefix, 4, &k, &v))
            *out += v.mv_size >= 4 ? (v.mv_size - 4) / 8 : 0;
        if (rc == QV_ENOTFOUND) rc = QV_OK;
    }
    qv_lmdb_cursor_close(cur);
    qv_lmdb_abort(db, txn);
    return rc;
}

/* One collection of the backup: its handle from step 1, and what step 3 serialized. */
typedef struct {
    char *name;
    qv_coll *c;                    /* open from step 1 to the end */
    int stale;                     /* its stored index snapshot is stale */
    uint32_t cid;                  /* of c, when blob is set */
    void *blob;                    /* the index serialized in step 3, or NULL */
    size_t blob_len;
    uint64_t blob_seq;             /* the last write it holds */
    qv_bk_snapfile snap;           /* else its stored snapshot, opened in step 3 */
} look_entry;

static void looks_free(look_entry *l, size_t n)
{
    for (size_t i = 0; l && i < n; i++) {
        qv_collection_close(l[i].c);
        qv_bk_index_unpin(&l[i].snap);
        qv_free(l[i].blob);
        qv_free(l[i].name);
    }
    qv_free(l);
}

/* Step 1 for one collection. QV_ENOTFOUND when it does not exist (any more). */
static int look(qv_db *db, const char *name, look_entry *e)
{
    uint64_t replay = 0, count;
    memset(e, 0, sizeof *e);
    e->snap.fd = -1;
    if (!(e->name = qv_strdup(name))) return QV_ENOMEM;
    int rc = qv_collection_open(db, name, &e->c);
    if (rc != QV_OK || (db->opt.flags & QV_DB_RDONLY)) return rc;   /* read-only: the stored one */
    if ((rc = qv_coll_ensure_index(e->c)) != QV_OK) return rc;      /* it must hold every write */
    pthread_rwlock_rdlock(&e->c->maplock);
    count = e->c->count;
    pthread_rwlock_unlock(&e->c->maplock);
    uint64_t limit = count / STALE_DIVISOR > MIN_STALE ? count / STALE_DIVISOR : MIN_STALE;
    int none = 0;
    if ((rc = replay_size(db, e->c->cid, &replay, &none)) == QV_OK) e->stale = none || replay > limit;
    return rc;
}

/* The state record's last seq of collection cid in txn (0 when absent). */
static uint64_t stored_seq(qv_db *db, MDB_txn *txn, uint32_t cid)
{
    uint8_t key[4];
    MDB_val v;
    qv_be32_put(key, cid);
    return qv_lmdb_get(txn, db->dbi[DBI_STATE], key, 4, &v) == QV_OK && v.mv_size == 24 ? qv_be64_get(v.mv_data) : 0;
}

/* Step 3: begin the read txn; serialize the stale collections' indexes meanwhile, and
 * open the stored snapshot files of the others (a checkpoint, which unlinks the file it
 * replaces, needs the writer lock too: backup_index.c). */
static int begin_point_in_time(qv_db *db, look_entry *l, size_t n, MDB_txn **txn)
{
    int rc, lock = !(db->opt.flags & QV_DB_RDONLY);
    if (lock) pthread_mutex_lock(&db->wmutex);
    rc = qv_lmdb_begin(db, 1, txn);
    for (size_t i = 0; rc == QV_OK && i < n; i++) {
        qv_coll *c = l[i].c;
        if (!c) continue;
        /* under the writer lock the index holds exactly the committed writes -- unless it
         * was dropped, missed a write (rebuild pending), or another process wrote */
        if (!lock || !l[i].stale || qv_coll_check_live(c) != QV_OK || c->need_rebuild ||
            stored_seq(db, *txn, c->cid) != c->last_seq) {
            rc = qv_bk_index_pin(db, *txn, c->cid, &l[i].snap);
            continue;
        }
        if ((rc = qv_index_save_mem(c->ix, &l[i].blob, &l[i].blob_len)) != QV_OK) break;
        l[i].cid = c->cid;
        l[i].blob_seq = c->last_seq;
    }
    if (lock) pthread_mutex_unlock(&db->wmutex);
    return rc;
}

/* Step 2. */
static int make_headroom(qv_db *db)
{
    int rc = QV_OK;
    if (db->opt.flags & QV_DB_RDONLY) return QV_OK;
    pthread_mutex_lock(&db->wmutex);      /* as the write loop does when it grows the map */
    for (int i = 0; i < 48 && rc == QV_OK; i++) {
        size_t used = qv_lmdb_used_bytes(db), map = qv_lmdb_map_size(db);
        if (!used || !map || map - (used < map ? used : map) >= used) break;
        if ((rc = qv_lmdb_grow(db)) == QV_OK) __atomic_add_fetch(&db->map_grows, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&db->wmutex);
    return rc;
}

/* ---- step 3 -------------------------------------------------------------------------- */

typedef struct {
    char *name;
    void *config;
    size_t config_len;
} coll_entry;

static void entries_free(coll_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        qv_free(e[i].name);
        qv_free(e[i].config);
    }
    qv_free(e);
}

static int entry_add(coll_entry **list, size_t *n, const MDB_val *k, const MDB_val *v)
{
    coll_entry *t = qv_reallocarray(*list, *n + 1, sizeof *t);
    if (!t) return QV_ENOMEM;
    *list = t;
    coll_entry *e = &t[*n];
    e->name = qv_malloc(k->mv_size + 1);
    e->config = qv_malloc(v->mv_size ? v->mv_size : 1);
    if (!e->name || !e->config) {
        qv_free(e->name);
        qv_free(e->config);
        return QV_ENOMEM;
    }
    memcpy(e->name, k->mv_data, k->mv_size);
    e->name[k->mv_size] = '\0';
    memcpy(e->config, v->mv_data, v->mv_size);
    e->config_len = v->mv_size;
    (*n)++;
    return QV_OK;
}

/* The collections (one, or all) and their configs as txn sees them. */
static int list_collections(qv_db *db, MDB_txn *txn, const char *only, coll_entry **out, size_t *n)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc;
    *out = NULL;
    *n = 0;
    if (only) {
        rc = qv_lmdb_get(txn, db->dbi[DBI_COLLECTIONS], only, strlen(only), &v);
        if (rc == QV_ENOTFOUND) return qv_fail(QV_ENOTFOUND, "no collection '%s'", only);
        k.mv_data = (void *)only;
        k.mv_size = strlen(only);
        return rc == QV_OK ? entry_add(out, n, &k, &v) : rc;
    }
    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_COLLECTIONS], &cur)) != QV_OK) return rc;
    for (rc = qv_lmdb_seek(cur, "", 0, 0, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, "", 0, &k, &v))
        if ((rc = entry_add(out, n, &k, &v)) != QV_OK) break;
    qv_lmdb_cursor_close(cur);
    return rc == QV_ENOTFOUND ? QV_OK : rc;
}

/* One collection's frames, C to E (the index from l when it serialized this very
 * collection, else the stored snapshot). *points gets its live points. */
static int dump_collection(qv_db *db, MDB_txn *txn, const coll_entry *e, const look_entry *l, size_t nl,
                           qv_bk_writer *w, uint64_t *points)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    qv_index_params p;
    char *pi = NULL;
    uint8_t prefix[4], counts[16];
    uint64_t records = 0;
    uint32_t cid;
    qv_vectors_def vd;
    int rc;

    *points = 0;
    if ((rc = qv_coll_config_decode(e->name, e->config, e->config_len, &cid, &p, &pi, &vd)) != QV_OK) return rc;
    qv_free(pi);
    const look_entry *mem = NULL;
    const qv_bk_snapfile *snap = NULL;
    qv_bk_snapfile late = {-1, cid, 0, 0, 0};
    for (size_t i = 0; i < nl; i++) {
        if (l[i].blob && l[i].cid == cid && strcmp(l[i].name, e->name) == 0) mem = &l[i];
        if (l[i].snap.fd >= 0 && l[i].snap.cid == cid && strcmp(l[i].name, e->name) == 0) snap = &l[i].snap;
    }
    /* one created after step 1: its file now (gone if a checkpoint replaced it since the
     * txn began: then it is left out, and the restored collection is built) */
    if (!mem && !snap && (rc = qv_bk_index_pin(db, txn, cid, &late)) != QV_OK) return rc;
    if (!mem && !snap) snap = &late;
    if ((rc = qv_bk_put_frame(w, 'C', 0, e->name, strlen(e->name), e->config, e->config_len, NULL, 0)) != QV_OK) {
        qv_bk_index_unpin(&late);
        return rc;
    }
    qv_be32_put(prefix, cid);
    for (int t = QV_BK_T_STATE; t < QV_BK_T_END && rc == QV_OK; t++) {
        if (t == QV_BK_T_PINDEX && !db->has_pindex) continue;     /* an old read-only db */
        if ((rc = qv_lmdb_cursor_open(txn, db->dbi[qv_bk_table_dbi(t)], &cur)) != QV_OK) break;
        for (rc = qv_lmdb_seek(cur, prefix, 4, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, prefix, 4, &k, &v)) {
            /* writes the serialized index holds already: not replayed, so not copied */
            if (mem && t == QV_BK_T_LOG && k.mv_size == 12 && qv_be64_get((const uint8_t *)k.mv_data + 4) <= mem->blob_seq)
                continue;
            rc = qv_bk_put_frame(w, 'R', t, (const uint8_t *)k.mv_data + 4, k.mv_size - 4, v.mv_data, v.mv_size, NULL, 0);
            if (rc != QV_OK) break;
            records++;
            if (t == QV_BK_T_POINTS) (*points)++;
        }
        qv_lmdb_cursor_close(cur);
        cur = NULL;
        if (rc == QV_ENOTFOUND) rc = QV_OK;
    }
    if (rc == QV_OK) rc = mem ? qv_bk_put_index(w, mem->blob_seq, mem->blob, mem->blob_len) : qv_bk_index_dump(snap, w);
    qv_bk_index_unpin(&late);
    for (int i = 0; i < 8; i++) {
        counts[i] = (uint8_t)(records >> (8 * i));
        counts[8 + i] = (uint8_t)(*points >> (8 * i));
    }
    if (rc == QV_OK) rc = qv_bk_put_frame(w, 'E', 0, counts, sizeof counts, NULL, 0, NULL, 0);
    return rc;
}

/* "<dir of path>/.<base>.tmp.XXXXXX" and the directory, both malloc'd. */
static int temp_names(const char *path, char **tmp, char **dir)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dl = slash ? (size_t)(slash - path) : 0;
    *tmp = NULL;
    *dir = NULL;
    if (!base[0]) return qv_fail(QV_EINVAL, "%s: backup path names a directory", path);
    if (!(*dir = qv_malloc(dl + 2)) || !(*tmp = qv_malloc(strlen(path) + 16))) return QV_ENOMEM;
    if (slash && dl == 0) strcpy(*dir, "/");
    else if (slash) { memcpy(*dir, path, dl); (*dir)[dl] = '\0'; }
    else strcpy(*dir, ".");
    sprintf(*tmp, "%s/.%s.tmp.XXXXXX", *dir, base);
    return QV_OK;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = QV_OK;
    if (fd < 0) return qv_fail(QV_EIO, "%s: %s", dir, strerror(errno));
    if (fsync(fd) != 0 && errno != EINVAL) rc = qv_fail(QV_EIO, "fsync %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int qv_backup_create(qv_db *db, const char *collection, const char *path, qv_backup_info *info)
{
    qv_bk_writer w;
    MDB_txn *txn = NULL;
    coll_entry *list = NULL;
    char **names = NULL, *tmp = NULL, *dir = NULL;
    look_entry *looks = NULL;
    size_t nnames = 0, n = 0, nlooks = 0;
    uint64_t points = 0;
    uint8_t whole[QV_SHA256_BYTES];
    int rc, fd = -1, wr_init = 0;

    if (info) memset(info, 0, sizeof *info);
    if (!db) return qv_fail(QV_EINVAL, "db is NULL");
    if (!path || !path[0]) return qv_fail(QV_EINVAL, "backup path is NULL or empty");
    if (collection && (rc = qv_coll_name_check(collection)) != QV_OK) return rc;

    /* 1. look */
    if (collection) {
        if (!(looks = qv_calloc(1, sizeof *looks))) return QV_ENOMEM;
        nlooks = 1;
        if ((rc = look(db, collection, &looks[0])) != QV_OK) goto cleanup;
    } else {
        if ((rc = qv_collection_list(db, &names, &nnames)) != QV_OK) return rc;
        if (!(looks = qv_calloc(nnames ? nnames : 1, sizeof *looks))) { rc = QV_ENOMEM; goto cleanup; }
        for (size_t i = 0; i < nnames && rc == QV_OK; i++, nlooks++)
            if ((rc = look(db, names[i], &looks[nlooks])) == QV_ENOTFOUND) rc = QV_OK;   /* dropped meanwhile */
        if (rc != QV_OK) goto cleanup;
    }
    /* 2. headroom */
    if ((rc = make_headroom(db)) != QV_OK) goto cleanup;
    /* 3. the point in time, 4. copy */
    if ((rc = temp_names(path, &tmp, &dir)) != QV_OK) goto cleanup;
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        tmp[0] = '\0';             /* not ours: never remove it */
        rc = qv_fail(errno == ENOSPC || errno == EDQUOT ? QV_EFULL : errno == ENOENT ? QV_ENOTFOUND : QV_EIO,
                     "cannot create a file in %s: %s", dir, strerror(errno));
        goto cleanup;
    }
    wr_init = 1;
    if ((rc = qv_bk_writer_init(&w, fd, tmp)) != QV_OK) goto cleanup;
    if ((rc = begin_point_in_time(db, looks, nlooks, &txn)) != QV_OK) goto cleanup;
    int64_t created = (int64_t)time(NULL);
    if ((rc = list_collections(db, txn, collection, &list, &n)) != QV_OK) goto cleanup;
    if ((rc = qv_bk_put_header(&w, created, (uint32_t)n)) != QV_OK) goto cleanup;
    for (size_t i = 0; i < n; i++) {
        uint64_t pts = 0;
        if ((rc = dump_collection(db, txn, &list[i], looks, nlooks, &w, &pts)) != QV_OK) goto cleanup;
        points += pts;
    }
    qv_lmdb_abort(db, txn);       /* a read txn: ending it early frees its pages for reuse */
    txn = NULL;
    if ((rc = qv_bk_finish(&w, whole)) != QV_OK) goto cleanup;
    if (close(fd) != 0) {
        fd = -1;
        rc = qv_fail(errno == ENOSPC || errno == EDQUOT ? QV_EFULL : QV_EIO, "%s: close: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = qv_fail(errno == ENOSPC ? QV_EFULL : errno == EISDIR ? QV_EINVAL : QV_EIO, "rename %s to %s: %s", tmp,
                     path, strerror(errno));
        goto cleanup;
    }
    tmp[0] = '\0';                 /* renamed: nothing to remove */
    if ((rc = sync_dir(dir)) != QV_OK) goto cleanup;
    if (info) {
        qv_sha256_hex(whole, info->sha256);
        info->bytes = w.size;
        info->created = created;
        info->collections = (uint32_t)n;
        info->points = points;
    }
cleanup:
    qv_lmdb_abort(db, txn);
    if (wr_init) qv_bk_writer_release(&w);
    if (fd >= 0) close(fd);
    if (tmp && tmp[0]) unlink(tmp);
    entries_free(list, n);
    looks_free(looks, nlooks);
    qv_free_strings(names, nnames);
    qv_free(tmp);
    qv_free(dir);
    return rc;
}
