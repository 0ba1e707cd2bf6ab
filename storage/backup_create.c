/*
 * storage/backup_create.c -- qv_backup_create: a collection, or every collection, as one
 * LMDB read transaction saw it, into a file (format: storage/backup.h).
 *
 * Steps:
 *  1. Freshen: each collection is opened (loaded, if this process had not yet) and, when
 *     its index snapshot is stale -- more than max(MIN_STALE, count / STALE_DIVISOR)
 *     points named by writes after it -- checkpointed. That is what spares the restore a
 *     graph build: a restored collection replays the writes after its snapshot one by
 *     one, and a replay costs an HNSW insert per point where the checkpoint serializes
 *     the graph at about a microsecond per point, so past 1% of the collection the
 *     checkpoint is the cheaper of the two. The checkpoint holds the writer lock (as any
 *     checkpoint does) while the index is serialized; the copy itself does not.
 *  2. Headroom: pages that writers free while the read transaction is open cannot be
 *     reused until it ends, so the file may grow by up to the data copied; and growing
 *     the LMDB map needs every transaction of the process to end first, i.e. it would
 *     stall writers until the backup is done. So the map is grown beforehand (it is only
 *     address space) until its free part is at least as large as its used part.
 *  3. Copy: one read transaction; the collections' names and configs, then for each its
 *     records table by table, its index snapshot (backup_index.c), into a temporary file
 *     "<dir>/.<name>.tmp.XXXXXX", which is synced and renamed over path, and the directory
 *     synced. Writes go on meanwhile (LMDB readers and the writer do not wait for each
 *     other), and none of them is in the file unless it committed before step 3 began.
 *     Any failure removes the temporary file: a full disk leaves nothing behind.
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

/* Points named by the log entries of collection cid (the writes after its snapshot). */
static int replay_size(qv_db *db, uint32_t cid, uint64_t *out)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t prefix[4];
    int rc;
    *out = 0;
    qv_be32_put(prefix, cid);
    if ((rc = qv_lmdb_begin(db, 1, &txn)) != QV_OK) return rc;
    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_LOG], &cur)) == QV_OK) {
        for (rc = qv_lmdb_seek(cur, prefix, 4, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, prefix, 4, &k, &v))
            *out += v.mv_size >= 4 ? (v.mv_size - 4) / 8 : 0;
        if (rc == QV_ENOTFOUND) rc = QV_OK;
    }
    qv_lmdb_cursor_close(cur);
    qv_lmdb_abort(db, txn);
    return rc;
}

/* Step 1 for one collection. QV_ENOTFOUND when it does not exist (any more). */
static int freshen(qv_db *db, const char *name)
{
    qv_coll *c = NULL;
    uint64_t replay = 0, count;
    int rc = qv_collection_open(db, name, &c);
    if (rc != QV_OK) return rc;
    if (!(db->opt.flags & QV_DB_RDONLY)) {
        pthread_rwlock_rdlock(&c->maplock);
        count = c->count;
        pthread_rwlock_unlock(&c->maplock);
        uint64_t limit = count / STALE_DIVISOR > MIN_STALE ? count / STALE_DIVISOR : MIN_STALE;
        if ((rc = replay_size(db, c->cid, &replay)) == QV_OK && replay > limit) rc = qv_checkpoint(c);
    }
    qv_collection_close(c);
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

/* One collection's frames, C to E. *points gets its live points. */
static int dump_collection(qv_db *db, MDB_txn *txn, const coll_entry *e, qv_bk_writer *w, uint64_t *points)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    qv_index_params p;
    char *pi = NULL;
    uint8_t prefix[4], counts[16];
    uint64_t records = 0;
    uint32_t cid;
    int rc;

    *points = 0;
    if ((rc = qv_coll_config_decode(e->name, e->config, e->config_len, &cid, &p, &pi)) != QV_OK) return rc;
    qv_free(pi);
    if ((rc = qv_bk_put_frame(w, 'C', 0, e->name, strlen(e->name), e->config, e->config_len, NULL, 0)) != QV_OK)
        return rc;
    qv_be32_put(prefix, cid);
    for (int t = QV_BK_T_STATE; t < QV_BK_T_END && rc == QV_OK; t++) {
        if (t == QV_BK_T_PINDEX && !db->has_pindex) continue;     /* an old read-only db */
        if ((rc = qv_lmdb_cursor_open(txn, db->dbi[qv_bk_table_dbi(t)], &cur)) != QV_OK) break;
        for (rc = qv_lmdb_seek(cur, prefix, 4, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, prefix, 4, &k, &v)) {
            rc = qv_bk_put_frame(w, 'R', t, (const uint8_t *)k.mv_data + 4, k.mv_size - 4, v.mv_data, v.mv_size, NULL, 0);
            if (rc != QV_OK) break;
            records++;
            if (t == QV_BK_T_POINTS) (*points)++;
        }
        qv_lmdb_cursor_close(cur);
        cur = NULL;
        if (rc == QV_ENOTFOUND) rc = QV_OK;
    }
    if (rc == QV_OK) rc = qv_bk_index_dump(db, txn, cid, w);
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
    size_t nnames = 0, n = 0;
    uint64_t points = 0;
    uint8_t whole[QV_SHA256_BYTES];
    int rc, fd = -1, wr_init = 0;

    if (info) memset(info, 0, sizeof *info);
    if (!db) return qv_fail(QV_EINVAL, "db is NULL");
    if (!path || !path[0]) return qv_fail(QV_EINVAL, "backup path is NULL or empty");
    if (collection && (rc = qv_coll_name_check(collection)) != QV_OK) return rc;

    /* 1. freshen */
    if (collection) {
        if ((rc = freshen(db, collection)) != QV_OK) return rc;
    } else {
        if ((rc = qv_collection_list(db, &names, &nnames)) != QV_OK) return rc;
        for (size_t i = 0; i < nnames && rc == QV_OK; i++)
            if ((rc = freshen(db, names[i])) == QV_ENOTFOUND) rc = QV_OK;   /* dropped meanwhile */
        qv_free_strings(names, nnames);
        if (rc != QV_OK) return rc;
    }
    /* 2. headroom */
    if ((rc = make_headroom(db)) != QV_OK) return rc;
    /* 3. copy */
    if ((rc = temp_names(path, &tmp, &dir)) != QV_OK) goto cleanup;
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        tmp[0] = '\0';             /* not ours: never remove it */
        rc = qv_fail(errno == ENOSPC || errno == EDQUOT ? QV_EFULL : errno == ENOENT ? QV_ENOTFOUND : QV_EIO,
                     "cannot create a file in %s: %s", dir, strerror(errno));
        goto cleanup;
    }
    wr_init = 1;
    if ((rc = qv_bk_writer_init(&w, fd, tmp)) != QV_OK) goto cleanup;
    if ((rc = qv_lmdb_begin(db, 1, &txn)) != QV_OK) goto cleanup;
    int64_t created = (int64_t)time(NULL);
    if ((rc = list_collections(db, txn, collection, &list, &n)) != QV_OK) goto cleanup;
    if ((rc = qv_bk_put_header(&w, created, (uint32_t)n)) != QV_OK) goto cleanup;
    for (size_t i = 0; i < n; i++) {
        uint64_t pts = 0;
        if ((rc = dump_collection(db, txn, &list[i], &w, &pts)) != QV_OK) goto cleanup;
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
    qv_free(tmp);
    qv_free(dir);
    return rc;
}
