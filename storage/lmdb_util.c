/*
 * storage/lmdb_util.c -- thin wrappers over LMDB: the only file that interprets MDB_*
 * return codes. LMDB mixes negative MDB_* codes with positive errno values in one int;
 * everything leaving this file is a QV_E* code with the LMDB/OS text in the message, plus
 * the internal QV_SE_MAPFULL that the write loop (db.c) turns into a map resize.
 *
 * Transactions are begun and ended here so that each holds db->envlock shared for its
 * lifetime: mdb_env_set_mapsize() may only run when no txn is active in the process, and
 * qv_lmdb_grow() takes the lock exclusive to get exactly that.
 */
#include "storage/storage.h"

#include <errno.h>
#include <string.h>

#include "core/error.h"

int qv_lmdb_error(int rc, const char *what)
{
    int code;
    switch (rc) {
    case MDB_SUCCESS:          return QV_OK;
    case MDB_NOTFOUND:         code = QV_ENOTFOUND; break;
    case MDB_KEYEXIST:         code = QV_EEXIST; break;
    case MDB_MAP_FULL:         code = QV_SE_MAPFULL; break;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:     code = QV_ECORRUPT; break;
    case MDB_READERS_FULL:
    case MDB_DBS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
    case MDB_TLS_FULL:         code = QV_EFULL; break;
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:          code = QV_EINTERNAL; break;
    case ENOMEM:               code = QV_ENOMEM; break;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:                code = QV_EFULL; break;
    case ENOENT:               code = QV_ENOTFOUND; break;
    default:                   code = QV_EIO; break;   /* MDB_PANIC, EIO, EACCES, EROFS ... */
    }
    if (code == QV_SE_MAPFULL) return qv_fail(code, "%s: LMDB map full", what);
    return qv_fail(code, "%s: %s", what, mdb_strerror(rc));
}

int qv_lmdb_env_open(qv_db *db, const char *dir, size_t map_bytes, uint32_t max_readers)
{
    MDB_env *env = NULL;
    unsigned flags = MDB_NOTLS;    /* read txns are not tied to threads (short, any thread) */
    int rc;

    db->env = NULL;
    /* MDB_NOSYNC: commits are written to the OS but not fsync'ed. A process crash (kill -9)
     * loses nothing; an OS crash or power loss may lose the last commits (never the
     * database's consistency: LMDB's meta page flip keeps it at some earlier commit). */
    if (db->opt.flags & QV_DB_NOSYNC) flags |= MDB_NOSYNC;
    if (db->opt.flags & QV_DB_RDONLY) flags |= MDB_RDONLY;
    if ((rc = mdb_env_create(&env)) != 0) return qv_lmdb_error(rc, "mdb_env_create");
    if ((rc = mdb_env_set_maxdbs(env, DBI_COUNT + 2)) != 0 ||
        (rc = mdb_env_set_mapsize(env, map_bytes)) != 0 ||
        (rc = mdb_env_set_maxreaders(env, max_readers)) != 0) {
        mdb_env_close(env);
        return qv_lmdb_error(rc, "configuring the LMDB environment");
    }
    rc = mdb_env_open(env, dir, flags, 0644);
    if (rc != 0) {
        mdb_env_close(env);
        int code = qv_lmdb_error(rc, dir);
        if (code == QV_ECORRUPT || rc == EINVAL)
            return qv_fail(QV_ECORRUPT, "%s: not a Quiver database or damaged (%s)", dir, mdb_strerror(rc));
        return code;
    }
    int dead = 0;
    mdb_reader_check(env, &dead);  /* clear reader slots of crashed processes */
    db->env = env;
    return QV_OK;
}

void qv_lmdb_env_close(qv_db *db)
{
    if (db->rpool_ready) {         /* every pooled txn is reset: abort them before the env */
        pthread_mutex_lock(&db->rpool_lock);
        while (db->nrpool) mdb_txn_abort(db->rpool[--db->nrpool]);
        pthread_mutex_unlock(&db->rpool_lock);
    }
    if (db->env) mdb_env_close(db->env);
    db->env = NULL;
}

int qv_lmdb_begin(qv_db *db, int rdonly, MDB_txn **out)
{
    *out = NULL;
    pthread_rwlock_rdlock(&db->envlock);
    int rc = mdb_txn_begin(db->env, NULL, rdonly ? MDB_RDONLY : 0, out);
    if (rc != 0) {
        *out = NULL;
        pthread_rwlock_unlock(&db->envlock);
        return qv_lmdb_error(rc, rdonly ? "begin read transaction" : "begin write transaction");
    }
    return QV_OK;
}

/* Reused read txns. With MDB_NOTLS each mdb_txn_begin allocates a txn and takes LMDB's
 * reader-table mutex to claim a slot, and each abort frees both; a reset txn keeps its
 * slot, and mdb_txn_renew only publishes the current txn id in it. An on_disk collection
 * begins one per query (vec_source.c). A pooled txn is not tied to a thread (MDB_NOTLS),
 * holds no snapshot while reset (LMDB lets the map grow under it: envlock is taken only
 * while it is renewed), and is aborted when the env closes. */
int qv_lmdb_read_begin(qv_db *db, MDB_txn **out)
{
    MDB_txn *t = NULL;
    pthread_mutex_lock(&db->rpool_lock);
    if (db->nrpool) t = db->rpool[--db->nrpool];
    pthread_mutex_unlock(&db->rpool_lock);
    if (!t) return qv_lmdb_begin(db, 1, out);
    pthread_rwlock_rdlock(&db->envlock);
    int rc = mdb_txn_renew(t);
    if (rc != 0) {
        mdb_txn_abort(t);
        pthread_rwlock_unlock(&db->envlock);
        *out = NULL;
        return qv_lmdb_error(rc, "renew read transaction");
    }
    *out = t;
    return QV_OK;
}

void qv_lmdb_read_end(qv_db *db, MDB_txn *txn)
{
    if (!txn) return;
    mdb_txn_reset(txn);
    pthread_rwlock_unlock(&db->envlock);
    pthread_mutex_lock(&db->rpool_lock);
    if (db->nrpool < QV_RPOOL_MAX) {
        db->rpool[db->nrpool++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&db->rpool_lock);
    if (txn) mdb_txn_abort(txn);   /* a reset txn may be aborted */
}

int qv_lmdb_commit(qv_db *db, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);  /* frees txn even on failure */
    pthread_rwlock_unlock(&db->envlock);
    return rc ? qv_lmdb_error(rc, "commit") : QV_OK;
}

void qv_lmdb_abort(qv_db *db, MDB_txn *txn)
{
    if (!txn) return;
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&db->envlock);
}

size_t qv_lmdb_map_size(qv_db *db)
{
    MDB_envinfo info;
    if (mdb_env_info(db->env, &info) != 0) return 0;
    return info.me_mapsize;
}

size_t qv_lmdb_used_bytes(qv_db *db)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(db->env, &info) != 0 || mdb_env_stat(db->env, &st) != 0) return 0;
    return (info.me_last_pgno + 1) * (size_t)st.ms_psize;
}

int qv_lmdb_grow(qv_db *db)
{
    pthread_rwlock_wrlock(&db->envlock);
    size_t cur = qv_lmdb_map_size(db);
    size_t next = cur > SIZE_MAX / 2 ? SIZE_MAX : cur * 2;
    int rc = next > cur ? mdb_env_set_mapsize(db->env, next) : MDB_MAP_FULL;
    pthread_rwlock_unlock(&db->envlock);
    if (rc == MDB_MAP_FULL) return qv_fail(QV_EFULL, "LMDB map cannot grow beyond %zu bytes", cur);
    if (rc != 0) return qv_lmdb_error(rc, "growing the LMDB map");
    return QV_OK;
}

int qv_lmdb_dbi_open(MDB_txn *txn, const char *name, int create, MDB_dbi *out)
{
    int rc = mdb_dbi_open(txn, name, create ? MDB_CREATE : 0, out);
    return rc ? qv_lmdb_error(rc, name) : QV_OK;
}

int qv_lmdb_check_main(MDB_txn *txn, const char *const *allowed, size_t nallowed, int *empty,
                       char *bad, size_t badlen)
{
    MDB_dbi main_dbi;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc;

    *empty = 1;
    bad[0] = '\0';
    if ((rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) != 0) return qv_lmdb_error(rc, "main database");
    if ((rc = mdb_cursor_open(txn, main_dbi, &cur)) != 0) return qv_lmdb_error(rc, "main database cursor");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t i;
        *empty = 0;
        for (i = 0; i < nallowed; i++)
            if (k.mv_size == strlen(allowed[i]) && memcmp(k.mv_data, allowed[i], k.mv_size) == 0) break;
        if (i == nallowed) {
            size_t n = k.mv_size < badlen - 1 ? k.mv_size : badlen - 1;
            for (size_t j = 0; j < n; j++) {
                char ch = ((const char *)k.mv_data)[j];
                bad[j] = (ch >= 32 && ch < 127) ? ch : '?';
            }
            bad[n] = '\0';
            if (!bad[0] && badlen > 1) { bad[0] = '?'; bad[1] = '\0'; }
            break;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) return qv_lmdb_error(rc, "main database");
    return QV_OK;
}

static MDB_val mv(const void *p, size_t n)
{
    MDB_val v;
    v.mv_data = (void *)p;
    v.mv_size = n;
    return v;
}

int qv_lmdb_get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, MDB_val *v)
{
    MDB_val key = mv(k, kl);
    int rc = mdb_get(txn, dbi, &key, v);
    if (rc == MDB_NOTFOUND) return QV_ENOTFOUND;
    return rc ? qv_lmdb_error(rc, "read") : QV_OK;
}

int qv_lmdb_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl)
{
    MDB_val key = mv(k, kl), val = mv(v, vl);
    int rc = mdb_put(txn, dbi, &key, &val, 0);
    return rc ? qv_lmdb_error(rc, "write") : QV_OK;
}

int qv_lmdb_put_append(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl)
{
    MDB_val key = mv(k, kl), val = mv(v, vl);
    int rc = mdb_put(txn, dbi, &key, &val, MDB_APPEND);
    if (rc == MDB_KEYEXIST) {      /* not past the last key: an ordinary put */
        key = mv(k, kl);
        val = mv(v, vl);
        rc = mdb_put(txn, dbi, &key, &val, 0);
    }
    return rc ? qv_lmdb_error(rc, "write") : QV_OK;
}

int qv_lmdb_reserve(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, size_t vl, void **p)
{
    MDB_val key = mv(k, kl), val = mv(NULL, vl);
    int rc = mdb_put(txn, dbi, &key, &val, MDB_RESERVE);
    *p = rc ? NULL : val.mv_data;
    return rc ? qv_lmdb_error(rc, "write") : QV_OK;
}

int qv_lmdb_del(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl)
{
    MDB_val key = mv(k, kl);
    int rc = mdb_del(txn, dbi, &key, NULL);
    if (rc == MDB_NOTFOUND) return QV_ENOTFOUND;
    return rc ? qv_lmdb_error(rc, "delete") : QV_OK;
}

int qv_lmdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **out)
{
    int rc = mdb_cursor_open(txn, dbi, out);
    if (rc) *out = NULL;
    return rc ? qv_lmdb_error(rc, "open cursor") : QV_OK;
}

void qv_lmdb_cursor_close(MDB_cursor *cur)
{
    if (cur) mdb_cursor_close(cur);
}

static int prefix_result(int rc, const void *prefix, size_t plen, const MDB_val *k)
{
    if (rc == MDB_NOTFOUND) return QV_ENOTFOUND;
    if (rc) return qv_lmdb_error(rc, "cursor");
    if (k->mv_size < plen || memcmp(k->mv_data, prefix, plen) != 0) return QV_ENOTFOUND;
    return QV_OK;
}

int qv_lmdb_seek(MDB_cursor *cur, const void *start, size_t slen, size_t plen, MDB_val *k, MDB_val *v)
{
    *k = mv(start, slen);
    int rc = mdb_cursor_get(cur, k, v, slen ? MDB_SET_RANGE : MDB_FIRST);
    return prefix_result(rc, start, plen, k);
}

int qv_lmdb_next(MDB_cursor *cur, const void *prefix, size_t plen, MDB_val *k, MDB_val *v)
{
    int rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
    return prefix_result(rc, prefix, plen, k);
}

int qv_lmdb_cursor_del(MDB_cursor *cur)
{
    int rc = mdb_cursor_del(cur, 0);
    return rc ? qv_lmdb_error(rc, "delete") : QV_OK;
}

int qv_lmdb_del_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t plen)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc = qv_lmdb_cursor_open(txn, dbi, &cur);
    if (rc != QV_OK) return rc;
    /* Seek again after each delete: simple, and immune to cursor-after-delete subtleties. */
    while ((rc = qv_lmdb_seek(cur, prefix, plen, plen, &k, &v)) == QV_OK)
        if ((rc = qv_lmdb_cursor_del(cur)) != QV_OK) break;
    qv_lmdb_cursor_close(cur);
    return rc == QV_ENOTFOUND ? QV_OK : rc;
}
