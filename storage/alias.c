/*
 * storage/alias.c -- collection aliases: a second name that points at a collection and
 * can be moved to another one in one transaction (Qdrant's way to re-index without
 * downtime: build a new collection, then switch the alias).
 *
 * An alias is one record in the "aliases" table (alias name -> collection name), so it is
 * as durable as the collections it names, and a list of actions (create, delete, rename)
 * is one LMDB write transaction: readers see the list wholly applied or not at all.
 * A name is a collection or an alias, never both: creating either checks the other table
 * in the same transaction, and dropping a collection deletes its aliases with it (as
 * Qdrant does), so an alias never points at nothing. qv_collection_open resolves an
 * alias (collection.c), so every call that opens a collection by name accepts one.
 */
#include "storage/storage.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

int qv_alias_get(qv_db *db, MDB_txn *txn, const char *name, char *buf, size_t cap)
{
    MDB_val v;
    if (!db->has_aliases) return QV_ENOTFOUND;
    int rc = qv_lmdb_get(txn, db->dbi[DBI_ALIASES], name, strlen(name), &v);
    if (rc != QV_OK) return rc;
    if (v.mv_size == 0 || v.mv_size >= cap) return qv_fail(QV_ECORRUPT, "damaged alias record '%s'", name);
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';
    return QV_OK;
}

int qv_alias_drop_target(qv_db *db, MDB_txn *txn, const char *name)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    char (*hit)[65] = NULL;        /* the aliases to delete: a cursor walk, then the deletes */
    size_t len = strlen(name), nhit = 0, cap = 0;
    int rc;
    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_ALIASES], &cur)) != QV_OK) return rc;
    for (rc = qv_lmdb_seek(cur, "", 0, 0, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, "", 0, &k, &v)) {
        if (v.mv_size != len || memcmp(v.mv_data, name, len) != 0 || k.mv_size > 64) continue;
        if (nhit == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            char (*t)[65] = qv_reallocarray(hit, ncap, sizeof *t);
            if (!t) { rc = QV_ENOMEM; break; }
            hit = t;
            cap = ncap;
        }
        memcpy(hit[nhit], k.mv_data, k.mv_size);
        hit[nhit++][k.mv_size] = '\0';
    }
    qv_lmdb_cursor_close(cur);
    if (rc == QV_ENOTFOUND) rc = QV_OK;
    for (size_t i = 0; rc == QV_OK && i < nhit; i++) rc = qv_lmdb_del(txn, db->dbi[DBI_ALIASES], hit[i], strlen(hit[i]));
    qv_free(hit);
    return rc;
}

/* Whether name is a collection in txn: QV_OK, QV_ENOTFOUND (no message), or a failure. */
static int is_collection(qv_db *db, MDB_txn *txn, const char *name)
{
    MDB_val v;
    return qv_lmdb_get(txn, db->dbi[DBI_COLLECTIONS], name, strlen(name), &v);
}

/* The alias new must not be a collection's name. */
static int check_free(qv_db *db, MDB_txn *txn, const char *alias)
{
    int rc = is_collection(db, txn, alias);
    if (rc == QV_OK) return qv_fail(QV_EEXIST, "'%s' is a collection: an alias cannot take its name", alias);
    return rc == QV_ENOTFOUND ? QV_OK : rc;
}

static int apply_one(qv_db *db, MDB_txn *txn, const qv_alias_action *a, size_t i)
{
    MDB_dbi dbi = db->dbi[DBI_ALIASES];
    char target[80];
    int rc;
    switch (a->op) {
    case QV_ALIAS_CREATE:
        if ((rc = check_free(db, txn, a->alias)) != QV_OK) return rc;
        rc = is_collection(db, txn, a->target);
        if (rc == QV_ENOTFOUND) return qv_fail(QV_ENOTFOUND, "no collection '%s' (action %zu)", a->target, i);
        if (rc != QV_OK) return rc;
        /* an existing alias of that name moves to the collection (Qdrant does the same) */
        return qv_lmdb_put(txn, dbi, a->alias, strlen(a->alias), a->target, strlen(a->target));
    case QV_ALIAS_DELETE:
        rc = qv_lmdb_del(txn, dbi, a->alias, strlen(a->alias));
        if (rc == QV_ENOTFOUND) return qv_fail(QV_ENOTFOUND, "no alias '%s' (action %zu)", a->alias, i);
        return rc;
    case QV_ALIAS_RENAME:
        rc = qv_alias_get(db, txn, a->alias, target, sizeof target);
        if (rc == QV_ENOTFOUND) return qv_fail(QV_ENOTFOUND, "no alias '%s' (action %zu)", a->alias, i);
        if (rc != QV_OK) return rc;
        if ((rc = check_free(db, txn, a->target)) != QV_OK) return rc;
        if ((rc = qv_lmdb_del(txn, dbi, a->alias, strlen(a->alias))) != QV_OK) return rc;
        return qv_lmdb_put(txn, dbi, a->target, strlen(a->target), target, strlen(target));
    }
    return qv_fail(QV_EINVAL, "action %zu: unknown alias operation %d", i, (int)a->op);
}

typedef struct { size_t n; const qv_alias_action *a; } update_arg;

static int update_write(qv_db *db, MDB_txn *txn, void *arg)
{
    const update_arg *u = arg;
    int rc;
    for (size_t i = 0; i < u->n; i++)
        if ((rc = apply_one(db, txn, &u->a[i], i)) != QV_OK) return rc;
    return QV_OK;
}

int qv_alias_update(qv_db *db, size_t n, const qv_alias_action *actions)
{
    int rc;
    if (!db || (n && !actions)) return qv_fail(QV_EINVAL, "db or actions is NULL");
    for (size_t i = 0; i < n; i++) {
        const qv_alias_action *a = &actions[i];
        if (a->op != QV_ALIAS_CREATE && a->op != QV_ALIAS_DELETE && a->op != QV_ALIAS_RENAME)
            return qv_fail(QV_EINVAL, "action %zu: unknown alias operation %d", i, (int)a->op);
        if ((rc = qv_coll_name_check(a->alias)) != QV_OK) return rc;
        if (a->op != QV_ALIAS_DELETE && (rc = qv_coll_name_check(a->target)) != QV_OK) return rc;
    }
    if ((rc = qv_db_check_writable(db, "update aliases")) != QV_OK) return rc;
    update_arg u = {n, actions};
    pthread_mutex_lock(&db->wmutex);
    rc = n ? qv_db_write(db, update_write, &u) : QV_OK;
    pthread_mutex_unlock(&db->wmutex);
    return rc;
}

int qv_alias_resolve(qv_db *db, const char *name, char *buf, size_t cap)
{
    MDB_txn *txn = NULL;
    int rc;
    if (!db || !buf || cap < 65) return qv_fail(QV_EINVAL, "db or buf is NULL, or cap < 65");
    if ((rc = qv_coll_name_check(name)) != QV_OK) return rc;
    if ((rc = qv_lmdb_begin(db, 1, &txn)) != QV_OK) return rc;
    rc = is_collection(db, txn, name);
    if (rc == QV_OK) snprintf(buf, cap, "%s", name);
    else if (rc == QV_ENOTFOUND && (rc = qv_alias_get(db, txn, name, buf, cap)) == QV_ENOTFOUND)
        rc = qv_fail(QV_ENOTFOUND, "no collection or alias '%s'", name);
    qv_lmdb_abort(db, txn);
    return rc;
}

int qv_alias_list(qv_db *db, const char *collection, qv_alias_info **out, size_t *n)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    qv_alias_info *list = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (!out || !n) return qv_fail(QV_EINVAL, "out or n is NULL");
    *out = NULL;
    *n = 0;
    if (!db) return qv_fail(QV_EINVAL, "db is NULL");
    if (!db->has_aliases) return QV_OK;
    if ((rc = qv_lmdb_begin(db, 1, &txn)) != QV_OK) return rc;
    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_ALIASES], &cur)) != QV_OK) goto cleanup;
    for (rc = qv_lmdb_seek(cur, "", 0, 0, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, "", 0, &k, &v)) {
        if (k.mv_size == 0 || k.mv_size > 64 || v.mv_size == 0 || v.mv_size > 64) {
            rc = qv_fail(QV_ECORRUPT, "damaged alias record");
            goto cleanup;
        }
        if (collection && (strlen(collection) != v.mv_size || memcmp(collection, v.mv_data, v.mv_size) != 0)) continue;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            qv_alias_info *t = qv_reallocarray(list, ncap, sizeof *t);
            if (!t) { rc = QV_ENOMEM; goto cleanup; }
            list = t;
            cap = ncap;
        }
        memset(&list[len], 0, sizeof list[len]);
        memcpy(list[len].alias, k.mv_data, k.mv_size);
        memcpy(list[len].collection, v.mv_data, v.mv_size);
        len++;
    }
    if (rc != QV_ENOTFOUND) goto cleanup;
    rc = QV_OK;
    *out = list;               /* in key order: sorted by alias name */
    *n = len;
    list = NULL;
cleanup:
    qv_lmdb_cursor_close(cur);
    qv_lmdb_abort(db, txn);
    qv_free(list);
    return rc;
}
