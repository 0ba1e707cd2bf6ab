/*
 * storage/db.c -- qv_db: open/close of a database directory (one LMDB environment), the
 * process-wide registry of open directories, and the write loop that grows the map.
 *
 * Locking model (also summarized in storage.h):
 *  - One writer: db->wmutex is held around every LMDB write txn and around everything
 *    that changes what is open (collection create/open/drop, checkpoint, rebuild).
 *    LMDB allows one write txn per environment anyway; taking our mutex first keeps
 *    writers from queueing inside LMDB with our other locks held.
 *  - db->colls_lock guards the table of open collections and their user counts, held for
 *    a lookup only: opening an already open collection (per request, in a server) does not
 *    wait behind a writer. A drop marks the collection dropped under both locks and frees
 *    it when no user holds it (collection.c).
 *  - Readers never take wmutex: searches use the in-memory index under c->maplock
 *    (shared), qv_get uses a short MDB_RDONLY txn (MDB_NOTLS, so any thread may run it).
 *  - Growing the map: on MDB_MAP_FULL the write txn is aborted, db->envlock is taken
 *    exclusive (each txn holds it shared, so this waits for in-flight qv_get reads; new
 *    ones wait behind it: the lock prefers writers), mdb_env_set_mapsize doubles the map,
 *    and the whole txn runs again. Write functions are therefore retry-safe.
 *  - LMDB forbids opening one environment twice in a process (its locks are per process),
 *    so a registry keyed by the directory's (device, inode) refuses a second qv_db_open
 *    of the same directory with QV_EINVAL.
 *  - Other processes: LMDB lets several open one database, but each keeps its own loaded
 *    collections, so deleting a collection's data under another process (a restore that
 *    replaces one) would let that process acknowledge writes to data nothing names any
 *    more. Every writable open therefore holds flock(LOCK_SH) on data.mdb (a second
 *    descriptor: LMDB's own fcntl locks are on lock.mdb, and flock is separate from them);
 *    qv_db_sole_writer turns it into LOCK_EX without waiting, or says another process has
 *    the db open. The open itself holds LOCK_EX while it removes data staged by a restore
 *    that never committed, and skips that when another writer has the db open (the staged
 *    data may be its restore in progress).
 */
#include "storage/storage.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

#define DEFAULT_MAP_BYTES (64u << 20)
#define MIN_MAP_BYTES (1u << 20)
#define DEFAULT_MAX_COLLECTIONS 256u
#define MAX_READERS 1022u
#define MAX_GROW_RETRIES 48

static const char *const dbi_names[DBI_COUNT] = {
    "meta", "collections", "state", "ids", "points", "payloads", "freeids", "log", "snapshots", "pindex", "aliases"
};

/* ---- registry of open directories --------------------------------------------------- */

typedef struct { dev_t dev; ino_t ino; } reg_entry;
static pthread_mutex_t reg_mutex = PTHREAD_MUTEX_INITIALIZER;
static reg_entry *reg;
static size_t reg_len, reg_cap;

static int registry_add(dev_t dev, ino_t ino, const char *dir)
{
    int rc = QV_OK;
    pthread_mutex_lock(&reg_mutex);
    for (size_t i = 0; i < reg_len; i++)
        if (reg[i].dev == dev && reg[i].ino == ino) {
            rc = qv_fail(QV_EINVAL, "%s: database is already open in this process (close it first)", dir);
            goto out;
        }
    if (reg_len == reg_cap) {
        size_t ncap = reg_cap ? reg_cap * 2 : 8;
        reg_entry *n = qv_reallocarray(reg, ncap, sizeof *n);
        if (!n) { rc = QV_ENOMEM; goto out; }
        reg = n;
        reg_cap = ncap;
    }
    reg[reg_len].dev = dev;
    reg[reg_len].ino = ino;
    reg_len++;
out:
    pthread_mutex_unlock(&reg_mutex);
    return rc;
}

static void registry_remove(dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&reg_mutex);
    for (size_t i = 0; i < reg_len; i++)
        if (reg[i].dev == dev && reg[i].ino == ino) {
            reg[i] = reg[--reg_len];
            break;
        }
    if (reg_len == 0) {            /* leave nothing behind for leak checkers */
        qv_free(reg);
        reg = NULL;
        reg_cap = 0;
    }
    pthread_mutex_unlock(&reg_mutex);
}

/* ---- options -------------------------------------------------------------------------- */

void qv_db_options_init(qv_db_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
}

static int resolve_options(const qv_db_options *in, qv_db_options *out)
{
    qv_db_options_init(out);
    if (in) *out = *in;
    if (out->flags & ~(unsigned)(QV_DB_NOSYNC | QV_DB_RDONLY))
        return qv_fail(QV_EINVAL, "unknown db flags 0x%x", out->flags & ~(unsigned)(QV_DB_NOSYNC | QV_DB_RDONLY));
    if (!out->initial_map_bytes) out->initial_map_bytes = DEFAULT_MAP_BYTES;
    if (out->initial_map_bytes < MIN_MAP_BYTES)
        return qv_fail(QV_EINVAL, "initial_map_bytes must be 0 or >= %u, got %zu", MIN_MAP_BYTES,
                       out->initial_map_bytes);
    if (out->initial_map_bytes > ((size_t)1 << 46))
        return qv_fail(QV_EINVAL, "initial_map_bytes must be <= 2^46, got %zu", out->initial_map_bytes);
    out->initial_map_bytes = (out->initial_map_bytes + 65535) & ~(size_t)65535;
    if (!out->max_collections) out->max_collections = DEFAULT_MAX_COLLECTIONS;
    if (out->max_collections > (1u << 20))
        return qv_fail(QV_EINVAL, "max_collections must be 0..%u, got %u", 1u << 20, out->max_collections);
    return QV_OK;
}

/* ---- the write loop ----------------------------------------------------------------- */

int qv_db_check_writable(qv_db *db, const char *op)
{
    if (db->opt.flags & QV_DB_RDONLY) return qv_fail(QV_ESTATE, "%s: database %s is open read-only", op, db->path);
    return QV_OK;
}

int qv_db_sole_writer(qv_db *db, const char *op, const char *what)
{
    if (db->lockfd < 0) return qv_db_check_writable(db, op);
    if (flock(db->lockfd, LOCK_EX | LOCK_NB) == 0) return QV_OK;
    if (errno != EWOULDBLOCK) return qv_fail(QV_EIO, "%s: flock %s/data.mdb: %s", op, db->path, strerror(errno));
    return qv_fail(QV_ESTATE, "%s: database %s is open for writing in another process (a running quiverd?); %s "
                   "must run in that process (quiverd: PUT /collections/{name}/snapshots/recover) or after it "
                   "closes the database", op, db->path, what);
}

void qv_db_writer_shared(qv_db *db)
{
    if (db->lockfd >= 0) flock(db->lockfd, LOCK_SH);   /* a conversion: it only waits for another's EX */
}

/* The writable open's lock (above): LOCK_EX when no other writer has the db open (*sole),
 * else LOCK_SH once any other's LOCK_EX is released. */
static int writer_lock(qv_db *db, const char *dir, int *sole)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if ((db->lockfd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return qv_fail(QV_EIO, "%s: %s", path, strerror(errno));
    *sole = flock(db->lockfd, LOCK_EX | LOCK_NB) == 0;
    while (!*sole && flock(db->lockfd, LOCK_SH) != 0)
        if (errno != EINTR) return qv_fail(QV_EIO, "%s: flock: %s", path, strerror(errno));
    return QV_OK;
}

int qv_db_write(qv_db *db, qv_write_fn fn, void *arg)
{
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn = NULL;
        int rc = qv_lmdb_begin(db, 0, &txn);
        if (rc != QV_OK) return rc == QV_SE_MAPFULL ? qv_fail(QV_EFULL, "LMDB map full") : rc;
        rc = fn(db, txn, arg);
        if (rc == QV_OK) rc = qv_lmdb_commit(db, txn);
        else qv_lmdb_abort(db, txn);
        if (rc != QV_SE_MAPFULL) return rc;
        if (attempt >= MAX_GROW_RETRIES)
            return qv_fail(QV_EFULL, "write does not fit after growing the LMDB map to %zu bytes", qv_lmdb_map_size(db));
        if ((rc = qv_lmdb_grow(db)) != QV_OK) return rc;
        __atomic_add_fetch(&db->map_grows, 1, __ATOMIC_RELAXED);
    }
}

/* ---- open / close ------------------------------------------------------------------- */

/* Check that the environment is ours (or empty) and open the named databases. */
static int setup_dbs(qv_db *db, MDB_txn *txn, int rdonly)
{
    char bad[80];
    int empty, rc;
    uint8_t fmt[4];
    MDB_val v;

    if ((rc = qv_lmdb_check_main(txn, dbi_names, DBI_COUNT, &empty, bad, sizeof bad)) != QV_OK) return rc;
    if (bad[0])
        return qv_fail(QV_ECORRUPT, "%s: not a Quiver database (foreign LMDB database '%s')", db->path, bad);
    if (empty && rdonly) return qv_fail(QV_ENOTFOUND, "%s: no Quiver database here (empty, opened read-only)", db->path);
    db->has_pindex = 1;
    db->has_aliases = 1;
    for (int i = 0; i < DBI_COUNT; i++) {
        rc = qv_lmdb_dbi_open(txn, dbi_names[i], !rdonly, &db->dbi[i]);
        if (rc == QV_ENOTFOUND && i == DBI_PINDEX) {
            /* written before the payload index existed, opened read-only: filters read
             * the payloads; a read-write open creates and fills the table */
            db->has_pindex = 0;
            continue;
        }
        if (rc == QV_ENOTFOUND && i == DBI_ALIASES) {   /* older database, read-only: none */
            db->has_aliases = 0;
            continue;
        }
        if (rc == QV_ENOTFOUND)
            return qv_fail(QV_ECORRUPT, "%s: not a Quiver database (no '%s' table)", db->path, dbi_names[i]);
        if (rc == QV_ECORRUPT)
            return qv_fail(QV_ECORRUPT, "%s: not a Quiver database ('%s' is not a table)", db->path, dbi_names[i]);
        if (rc != QV_OK) return rc;
    }
    rc = qv_lmdb_get(txn, db->dbi[DBI_META], "format", 6, &v);
    if (rc == QV_ENOTFOUND) {
        if (!empty) return qv_fail(QV_ECORRUPT, "%s: not a Quiver database (no format record)", db->path);
        qv_be32_put(fmt, QV_STORAGE_FORMAT);
        return qv_lmdb_put(txn, db->dbi[DBI_META], "format", 6, fmt, 4);
    }
    if (rc != QV_OK) return rc;
    if (v.mv_size != 4) return qv_fail(QV_ECORRUPT, "%s: damaged format record", db->path);
    uint32_t f = qv_be32_get(v.mv_data);
    if (f != QV_STORAGE_FORMAT)
        return qv_fail(QV_ECORRUPT, "%s: storage format %u not supported (this build reads %u)", db->path, f,
                       QV_STORAGE_FORMAT);
    return QV_OK;
}

static int setup_write(qv_db *db, MDB_txn *txn, void *arg)
{
    (void)arg;
    return setup_dbs(db, txn, 0);
}

int qv_db_open(const char *dir, const qv_db_options *o, qv_db **out)
{
    qv_db *db = NULL;
    struct stat st;
    int rc, registered = 0, locks = 0, sole = 0;

    if (!out) return qv_fail(QV_EINVAL, "out is NULL");
    *out = NULL;
    if (!dir || !dir[0]) return qv_fail(QV_EINVAL, "database directory is NULL or empty");
    if (!(db = qv_calloc(1, sizeof *db))) return QV_ENOMEM;
    db->lockfd = -1;
    if ((rc = resolve_options(o, &db->opt)) != QV_OK) goto cleanup;
    if (!(db->path = qv_strdup(dir))) { rc = QV_ENOMEM; goto cleanup; }
    if (!(db->opt.flags & QV_DB_RDONLY) && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = qv_fail(errno == ENOENT ? QV_ENOTFOUND : errno == ENOSPC ? QV_EFULL : QV_EIO, "%s: cannot create directory: %s",
                     dir, strerror(errno));
        goto cleanup;
    }
    if (stat(dir, &st) != 0) {
        rc = qv_fail(errno == ENOENT ? QV_ENOTFOUND : QV_EIO, "%s: %s", dir, strerror(errno));
        goto cleanup;
    }
    if (!S_ISDIR(st.st_mode)) { rc = qv_fail(QV_EINVAL, "%s: not a directory", dir); goto cleanup; }
    db->dev = st.st_dev;
    db->ino = st.st_ino;
    if ((rc = registry_add(db->dev, db->ino, dir)) != QV_OK) goto cleanup;
    registered = 1;

    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_mutex_init(&db->wmutex, NULL);
    pthread_mutex_init(&db->colls_lock, NULL);
    pthread_rwlock_init(&db->envlock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&db->rpool_lock, NULL);
    db->rpool_ready = 1;
    locks = 1;

    if ((rc = qv_lmdb_env_open(db, dir, db->opt.initial_map_bytes, MAX_READERS)) != QV_OK) goto cleanup;
    if (db->opt.flags & QV_DB_RDONLY) {
        MDB_txn *txn = NULL;
        if ((rc = qv_lmdb_begin(db, 1, &txn)) != QV_OK) goto cleanup;
        rc = setup_dbs(db, txn, 1);
        if (rc == QV_OK) rc = qv_lmdb_commit(db, txn);  /* keeps the dbi handles */
        else qv_lmdb_abort(db, txn);
    } else if ((rc = writer_lock(db, dir, &sole)) == QV_OK) {
        rc = qv_db_write(db, setup_write, NULL);
        if (rc == QV_OK && sole) rc = qv_bk_sweep_staged(db);
        if (sole) qv_db_writer_shared(db);
    }
    if (rc != QV_OK) goto cleanup;
    *out = db;
    db = NULL;
cleanup:
    if (db) {
        if (db->lockfd >= 0) close(db->lockfd);
        qv_lmdb_env_close(db);
        if (locks) {
            pthread_mutex_destroy(&db->wmutex);
            pthread_mutex_destroy(&db->colls_lock);
            pthread_rwlock_destroy(&db->envlock);
            pthread_mutex_destroy(&db->rpool_lock);
        }
        if (registered) registry_remove(db->dev, db->ino);
        qv_free(db->path);
        qv_free(db);
    }
    return rc;
}

int qv_db_close(qv_db *db)
{
    int rc = QV_OK;
    char first[512] = "";
    if (!db) return QV_OK;
    pthread_mutex_lock(&db->wmutex);
    /* Every handle dies here, opened or not (the caller must not use them any more). */
    for (size_t i = 0; i < db->ncolls; i++) {
        qv_coll *c = db->colls[i];
        if (!(db->opt.flags & QV_DB_RDONLY) && !c->dropped) {
            int r = qv_coll_checkpoint_locked(c);
            if (r != QV_OK && rc == QV_OK) {
                rc = r;
                snprintf(first, sizeof first, "closing collection '%s': %s", c->name, qv_last_error());
            }
        }
        qv_coll_free(c);
    }
    qv_free(db->colls);
    db->colls = NULL;
    db->ncolls = 0;
    pthread_mutex_unlock(&db->wmutex);
    qv_lmdb_env_close(db);
    if (db->lockfd >= 0) close(db->lockfd);
    pthread_mutex_destroy(&db->wmutex);
    pthread_mutex_destroy(&db->colls_lock);
    pthread_rwlock_destroy(&db->envlock);
    pthread_mutex_destroy(&db->rpool_lock);
    registry_remove(db->dev, db->ino);
    qv_free(db->path);
    qv_free(db);
    if (rc != QV_OK) qv_fail(rc, "%s", first);
    return rc;
}
