/*
 * storage/backup_restore.c -- qv_backup_restore: collections from a backup file (format:
 * storage/backup.h) into a database that may be serving other requests meanwhile.
 *
 * Steps:
 *  1. Verify the whole file (backup_io.c): structure, embedded SHA-256, the caller's
 *     SHA-256. Nothing has been written yet, so a damaged, truncated or unexpected file
 *     changes nothing. Then the names: with QV_RESTORE_REPLACE unset, an existing
 *     collection of a target name is QV_EEXIST before anything is written.
 *  2. Stage: each collection gets a new collection id (next_cid, as a create would) and a
 *     marker "restore:" + id in `meta`, in one txn; then its records go in under that id,
 *     in txns of up to BATCH_BYTES (MDB_APPEND: the new id sorts after every existing
 *     one, so each table is written in key order), then its index snapshot
 *     (backup_index.c). Nothing refers to the new id yet: readers and writers of other
 *     collections go on, and the writer lock is released between txns.
 *  3. Load: each staged collection is loaded as an open would load it -- its index from
 *     the snapshot, then a replay of the writes after it -- into a handle no name points
 *     at yet. A collection that does not load (records that do not add up: a file made by
 *     something else, or a bug) is refused here, while nothing has changed.
 *  4. Commit: one txn points each target name at its new id (its config re-encoded with
 *     that id), deletes the data of the collection it replaces, and removes the markers.
 *     Replacing needs this process to be the only one with the db open for writing
 *     (qv_db_sole_writer, checked in step 1 too): another process's loaded handle of the
 *     replaced collection would go on acknowledging writes to data nothing names.
 *     Still under the writer lock, the replaced collections' open handles are retired (as
 *     a drop does), so no writer can write under an id that nothing names any more, and
 *     the loaded handles take their place.
 * A failure in steps 2 to 4 deletes the staged data; if that fails too (or the process
 * dies), qv_db_open removes whatever a marker names (qv_bk_sweep_staged).
 */
#include "storage/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

#define BATCH_BYTES (64u << 20)
#define BATCH_RECORDS 200000u
#define MARKER "restore:"
#define MARKER_LEN 8u

void qv_restore_options_init(qv_restore_options *o)
{
    if (o) memset(o, 0, sizeof *o);
}

typedef struct {
    const qv_bk_entry *e;          /* the collection in the file */
    const char *target;            /* its name in db */
    uint32_t cid;                  /* its new collection id */
    int staged;                    /* cid allocated, marker written */
    char *config;                  /* its config, re-encoded with cid */
    qv_coll *coll;                 /* loaded from the staged records, before the commit */
} item;

static void marker_key(uint8_t key[MARKER_LEN + 4], uint32_t cid)
{
    memcpy(key, MARKER, MARKER_LEN);
    qv_be32_put(key + MARKER_LEN, cid);
}

/* ---- step 2: stage ------------------------------------------------------------------- */

static int alloc_cid(qv_db *db, MDB_txn *txn, void *arg)
{
    item *it = arg;
    uint8_t key[MARKER_LEN + 4];
    uint32_t cid;
    int rc = qv_coll_next_cid(db, txn, &cid);
    if (rc != QV_OK) return rc;
    marker_key(key, cid);
    if ((rc = qv_lmdb_put(txn, db->dbi[DBI_META], key, sizeof key, "", 0)) != QV_OK) return rc;
    it->cid = cid;
    return QV_OK;
}

typedef struct {
    item *it;
    qv_bk_reader *r;
    uint64_t start;                /* offset of the batch's first frame */
    uint64_t next;                 /* out: offset of the frame after the batch */
    int done;                      /* out: the frame at next is not a record */
} batch_arg;

/* Records from a->start on, up to a batch's worth (retry-safe: it seeks first). */
static int put_batch(qv_db *db, MDB_txn *txn, void *arg)
{
    batch_arg *a = arg;
    qv_bk_frame f;
    uint8_t key[4 + 512];
    size_t bytes = 0, count = 0;
    int rc;
    qv_bk_seek(a->r, a->start);
    qv_be32_put(key, a->it->cid);
    for (;;) {
        uint64_t pos = a->r->off;
        if ((rc = qv_bk_get_frame(a->r, &f)) != QV_OK) return rc;
        if (f.tag != 'R') {
            a->next = pos;
            a->done = 1;
            return QV_OK;
        }
        int dbi = qv_bk_table_dbi(f.table);
        if (dbi < 0 || f.klen > sizeof key - 4) return qv_fail(QV_ECORRUPT, "%s: changed since it was verified", a->r->path);
        memcpy(key + 4, f.key, f.klen);
        if ((rc = qv_lmdb_put_append(txn, db->dbi[dbi], key, 4 + f.klen, f.val, f.vlen)) != QV_OK) return rc;
        bytes += f.klen + f.vlen;
        if (++count >= BATCH_RECORDS || bytes >= BATCH_BYTES) {
            a->next = a->r->off;
            a->done = 0;
            return QV_OK;
        }
    }
}

/* Run fn in one write txn under the writer lock. */
static int locked_write(qv_db *db, qv_write_fn fn, void *arg)
{
    pthread_mutex_lock(&db->wmutex);
    int rc = qv_db_write(db, fn, arg);
    pthread_mutex_unlock(&db->wmutex);
    return rc;
}

static int stage(qv_db *db, qv_bk_reader *r, item *it)
{
    qv_bk_frame f;
    qv_index_params p;
    char *pi = NULL;
    qv_vectors_def vd;
    uint32_t old_cid;
    int rc;

    qv_bk_seek(r, it->e->off);
    if ((rc = qv_bk_get_frame(r, &f)) != QV_OK) return rc;
    if (f.tag != 'C') return qv_fail(QV_ECORRUPT, "%s: changed since it was verified", r->path);
    if ((rc = qv_coll_config_decode(it->e->name, f.val, f.vlen, &old_cid, &p, &pi, &vd)) != QV_OK) return rc;
    if ((rc = locked_write(db, alloc_cid, it)) != QV_OK) goto cleanup;
    it->staged = 1;
    if ((rc = qv_coll_config_encode(it->cid, &p, pi, &vd, &it->config)) != QV_OK) goto cleanup;
    batch_arg b = {it, r, r->off, 0, 0};
    while (!b.done) {
        if ((rc = locked_write(db, put_batch, &b)) != QV_OK) goto cleanup;
        b.start = b.next;
    }
    qv_bk_seek(r, b.next);
    if ((rc = qv_bk_get_frame(r, &f)) != QV_OK) goto cleanup;
    if (f.tag == 'S' && (rc = qv_bk_index_install(db, it->cid, r, b.next)) == QV_ECORRUPT) {
        char why[400];             /* its records do not add up (step 3 would refuse them too) */
        snprintf(why, sizeof why, "%s", qv_last_error());
        rc = qv_fail(QV_ECORRUPT, "%s: collection '%s' does not load: %s", r->path, it->e->name, why);
    }
cleanup:
    qv_free(pi);
    return rc;
}

/* ---- step 3: commit ------------------------------------------------------------------ */

typedef struct {
    int sole;                      /* qv_db_sole_writer holds LOCK_EX */
    item *items;
    size_t n;
    unsigned flags;
    uint32_t *replaced;            /* out: the ids whose data went (room for n) */
    size_t nreplaced;
} commit_arg;

static int commit_write(qv_db *db, MDB_txn *txn, void *arg)
{
    commit_arg *a = arg;
    uint8_t key[MARKER_LEN + 4];
    size_t adding = 0;
    MDB_val v;
    int rc;
    a->nreplaced = 0;              /* a retried txn starts over */
    for (size_t i = 0; i < a->n; i++) {
        rc = qv_lmdb_get(txn, db->dbi[DBI_COLLECTIONS], a->items[i].target, strlen(a->items[i].target), &v);
        if (rc == QV_ENOTFOUND) adding++;
        else if (rc != QV_OK) return rc;
    }
    if ((rc = qv_coll_room(db, txn, adding, a->items[0].target)) != QV_OK) return rc;
    for (size_t i = 0; i < a->n; i++) {
        item *it = &a->items[i];
        char alias_of[80];
        if ((rc = qv_alias_get(db, txn, it->target, alias_of, sizeof alias_of)) == QV_OK)
            return qv_fail(QV_EEXIST, "'%s' is an alias of collection '%s': a collection cannot take its name", it->target,
                           alias_of);
        if (rc != QV_ENOTFOUND) return rc;
        rc = qv_lmdb_get(txn, db->dbi[DBI_COLLECTIONS], it->target, strlen(it->target), &v);
        if (rc == QV_OK) {
            qv_index_params p;
            char *pi = NULL;
            qv_vectors_def vd;
            uint32_t old;
            if (!(a->flags & QV_RESTORE_REPLACE))
                return qv_fail(QV_EEXIST, "collection '%s' already exists (restore with replace to overwrite it)",
                               it->target);
            if (!a->sole && (rc = qv_db_sole_writer(db, "restore", "replacing a collection")) != QV_OK) return rc;
            a->sole = 1;
            if ((rc = qv_coll_config_decode(it->target, v.mv_data, v.mv_size, &old, &p, &pi, &vd)) != QV_OK) return rc;
            qv_free(pi);
            if ((rc = qv_coll_delete_data(db, txn, old)) != QV_OK) return rc;
            a->replaced[a->nreplaced++] = old;
        } else if (rc != QV_ENOTFOUND) {
            return rc;
        }
        rc = qv_lmdb_put(txn, db->dbi[DBI_COLLECTIONS], it->target, strlen(it->target), it->config,
                         strlen(it->config));
        if (rc != QV_OK) return rc;
        marker_key(key, it->cid);
        if ((rc = qv_lmdb_del(txn, db->dbi[DBI_META], key, sizeof key)) != QV_OK) return rc;
    }
    return QV_OK;
}

/* The commit txn; then, still under the writer lock, the replaced collections' handles
 * retired and the loaded ones put in their place (so the first request after a restore
 * finds the collection loaded). */
static int commit(qv_db *db, item *items, size_t n, unsigned flags)
{
    commit_arg a = {0, items, n, flags, qv_calloc(n, sizeof(uint32_t)), 0};
    qv_coll **unused = qv_calloc(n, sizeof *unused);
    if (!unused || !a.replaced) {
        qv_free(unused);
        qv_free(a.replaced);
        return QV_ENOMEM;
    }
    pthread_mutex_lock(&db->wmutex);
    int rc = qv_db_write(db, commit_write, &a);
    for (size_t i = 0; rc == QV_OK && i < n; i++) {
        items[i].staged = 0;
        unused[i] = qv_coll_retire(db, items[i].target);
        if (qv_coll_attach(db, items[i].coll) == QV_OK) items[i].coll = NULL;
    }
    if (a.sole) qv_db_writer_shared(db);
    /* their snapshot files (a handle still open keeps its mapping: the inode lives on) */
    if (rc == QV_OK) qv_bk_index_forget(db, a.replaced, a.nreplaced);
    pthread_mutex_unlock(&db->wmutex);
    qv_free(a.replaced);
    for (size_t i = 0; i < n; i++) qv_coll_free(unused[i]);
    qv_free(unused);
    return rc;
}

/* ---- removing staged data ------------------------------------------------------------- */

typedef struct {
    const uint32_t *cids;
    size_t n;
} unstage_arg;

static int unstage_write(qv_db *db, MDB_txn *txn, void *arg)
{
    unstage_arg *a = arg;
    uint8_t key[MARKER_LEN + 4];
    int rc;
    for (size_t i = 0; i < a->n; i++) {
        if ((rc = qv_coll_delete_data(db, txn, a->cids[i])) != QV_OK) return rc;
        marker_key(key, a->cids[i]);
        if ((rc = qv_lmdb_del(txn, db->dbi[DBI_META], key, sizeof key)) != QV_OK && rc != QV_ENOTFOUND) return rc;
    }
    return QV_OK;
}

int qv_bk_sweep_staged(qv_db *db)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint32_t *cids = NULL;
    size_t n = 0;
    int rc;
    if ((rc = qv_lmdb_begin(db, 1, &txn)) != QV_OK) return rc;
    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_META], &cur)) == QV_OK) {
        for (rc = qv_lmdb_seek(cur, MARKER, MARKER_LEN, MARKER_LEN, &k, &v); rc == QV_OK;
             rc = qv_lmdb_next(cur, MARKER, MARKER_LEN, &k, &v)) {
            if (k.mv_size != MARKER_LEN + 4) continue;
            uint32_t *t = qv_reallocarray(cids, n + 1, sizeof *t);
            if (!t) { rc = QV_ENOMEM; break; }
            cids = t;
            cids[n++] = qv_be32_get((const uint8_t *)k.mv_data + MARKER_LEN);
        }
        if (rc == QV_ENOTFOUND) rc = QV_OK;
    }
    qv_lmdb_cursor_close(cur);
    qv_lmdb_abort(db, txn);
    if (rc == QV_OK && n) {
        unstage_arg a = {cids, n};
        if ((rc = qv_db_write(db, unstage_write, &a)) == QV_OK) qv_bk_index_forget(db, cids, n);
    }
    qv_free(cids);
    return rc;
}

/* Best effort: what fails here is swept at the next open. */
static void unstage(qv_db *db, const item *items, size_t n)
{
    char saved[512];
    uint32_t *cids = qv_calloc(n ? n : 1, sizeof *cids);
    size_t m = 0;
    if (!cids) return;
    for (size_t i = 0; i < n; i++)
        if (items[i].staged) cids[m++] = items[i].cid;
    snprintf(saved, sizeof saved, "%s", qv_last_error());   /* keep the real failure's message */
    if (m) {
        unstage_arg a = {cids, m};
        if (locked_write(db, unstage_write, &a) == QV_OK) qv_bk_index_forget(db, cids, m);
    }
    qv_fail(QV_OK, "%s", saved);
    qv_free(cids);
}

/* ---- qv_backup_restore ------------------------------------------------------------------- */

/* Step 1's name checks: the selection, the names, and existing collections. */
static int select_items(qv_db *db, const qv_restore_options *o, const qv_bk_entry *entries, size_t n, item **out,
                        size_t *nout, const char *path)
{
    item *items = qv_calloc(n ? n : 1, sizeof *items);
    size_t m = 0;
    int rc = QV_OK;
    *out = NULL;
    *nout = 0;
    if (!items) return QV_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!o->collection || strcmp(o->collection, entries[i].name) == 0) {
            items[m].e = &entries[i];
            items[m].target = o->rename ? o->rename : entries[i].name;
            m++;
        }
    if (o->collection && m == 0) rc = qv_fail(QV_ENOTFOUND, "%s: the backup holds no collection '%s'", path, o->collection);
    else if (m == 0) rc = qv_fail(QV_ENOTFOUND, "%s: the backup holds no collection", path);
    else if (o->rename && m > 1)
        rc = qv_fail(QV_EINVAL, "%s holds %zu collections: rename needs one (name it with collection)", path, m);
    if (rc == QV_OK) {
        MDB_txn *txn = NULL;
        MDB_val v;
        int replacing = 0;
        if ((rc = qv_lmdb_begin(db, 1, &txn)) == QV_OK) {
            for (size_t i = 0; rc == QV_OK && i < m; i++) {
                rc = qv_lmdb_get(txn, db->dbi[DBI_COLLECTIONS], items[i].target, strlen(items[i].target), &v);
                if (rc == QV_OK && !(o->flags & QV_RESTORE_REPLACE))
                    rc = qv_fail(QV_EEXIST, "collection '%s' already exists (restore with replace to overwrite it)",
                                 items[i].target);
                else if (rc == QV_OK || rc == QV_ENOTFOUND) {
                    replacing |= rc == QV_OK;
                    rc = QV_OK;
                }
            }
            qv_lmdb_abort(db, txn);
        }
        /* replacing in a db another process writes to is refused now, not after staging */
        if (rc == QV_OK && replacing) {
            pthread_mutex_lock(&db->wmutex);
            if ((rc = qv_db_sole_writer(db, "restore", "replacing a collection")) == QV_OK) qv_db_writer_shared(db);
            pthread_mutex_unlock(&db->wmutex);
        }
    }
    if (rc != QV_OK) {
        qv_free(items);
        return rc;
    }
    *out = items;
    *nout = m;
    return QV_OK;
}

int qv_backup_restore(qv_db *db, const char *path, const qv_restore_options *opts, qv_backup_info *info)
{
    qv_restore_options o;
    qv_bk_reader r;
    qv_bk_entry *entries = NULL;
    item *items = NULL;
    qv_backup_info vi;
    uint8_t expect[QV_SHA256_BYTES];
    size_t n = 0, m = 0;
    int rc, fd = -1, reader = 0;

    if (info) memset(info, 0, sizeof *info);
    qv_restore_options_init(&o);
    if (opts) o = *opts;
    if (!db) return qv_fail(QV_EINVAL, "db is NULL");
    if (!path || !path[0]) return qv_fail(QV_EINVAL, "backup path is NULL or empty");
    if (o.flags & ~(unsigned)QV_RESTORE_REPLACE) return qv_fail(QV_EINVAL, "unknown restore flags 0x%x", o.flags);
    if (o.collection && (rc = qv_coll_name_check(o.collection)) != QV_OK) return rc;
    if (o.rename && (rc = qv_coll_name_check(o.rename)) != QV_OK) return rc;
    if (o.sha256 && qv_sha256_parse(o.sha256, expect) != 0)
        return qv_fail(QV_EINVAL, "expected SHA-256 must be 64 hex digits, got '%.80s'", o.sha256);
    if ((rc = qv_db_check_writable(db, "restore")) != QV_OK) return rc;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return qv_fail(errno == ENOENT ? QV_ENOTFOUND : QV_EIO, "%s: %s", path, strerror(errno));

    /* 1. verify */
    if ((rc = qv_bk_verify_fd(fd, path, o.sha256 ? expect : NULL, &vi, &entries, &n)) != QV_OK) goto cleanup;
    if ((rc = select_items(db, &o, entries, n, &items, &m, path)) != QV_OK) goto cleanup;
    /* a disk that cannot hold the records is a clear QV_EFULL now (LMDB would report
     * the short write it runs into as an I/O error, after writing part of them) */
    struct statvfs vfs;
    if (statvfs(db->path, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < vi.bytes) {
        rc = qv_fail(QV_EFULL, "restoring %s needs about %llu bytes; %s has %llu free", path,
                     (unsigned long long)vi.bytes, db->path, (unsigned long long)vfs.f_bavail * vfs.f_frsize);
        goto cleanup;
    }
    /* 2. stage */
    if ((rc = qv_bk_reader_init(&r, fd, path, 0)) != QV_OK) goto cleanup;
    reader = 1;
    for (size_t i = 0; i < m; i++)
        if ((rc = stage(db, &r, &items[i])) != QV_OK) goto cleanup;
    /* 3. load: what does not load as a collection is refused before anything is named */
    for (size_t i = 0; i < m; i++) {
        if ((rc = qv_coll_load_detached(db, items[i].target, items[i].config, &items[i].coll)) != QV_OK) {
            char why[400];
            snprintf(why, sizeof why, "%s", qv_last_error());
            rc = qv_fail(rc == QV_ECORRUPT ? QV_ECORRUPT : rc, "%s: collection '%s' does not load: %s", path,
                         items[i].e->name, why);
            goto cleanup;
        }
        if (info) {
            info->points += items[i].e->points;
            info->index_loaded += items[i].coll->stats.snapshot_loads > 0;
        }
    }
    /* 4. commit */
    if ((rc = commit(db, items, m, o.flags)) != QV_OK) goto cleanup;
    if (info) {
        memcpy(info->sha256, vi.sha256, sizeof info->sha256);
        info->bytes = vi.bytes;
        info->created = vi.created;
        info->collections = (uint32_t)m;
    }
cleanup:
    if (rc != QV_OK && items) unstage(db, items, m);
    if (rc != QV_OK && info) memset(info, 0, sizeof *info);
    for (size_t i = 0; items && i < m; i++) {
        qv_free(items[i].config);
        qv_coll_free(items[i].coll);
    }
    qv_free(items);
    qv_free(entries);
    if (reader) qv_bk_reader_release(&r);
    close(fd);
    return rc;
}
