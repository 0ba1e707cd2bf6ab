/*
 * storage/collection.c -- collections: create, open (load), drop, list, info, and the
 * rebuild of a collection's in-memory index from its stored vectors.
 *
 * Opening a collection (under db->wmutex, in one read txn so it sees one consistent
 * state): read its state record; scan `ids` once to rebuild the internal->external id
 * table and the live bitset (the id records are ~30 bytes each; `points` would be ~560 at
 * 128 dimensions, and reading them all made a 1M restart read and map 600 MB it then never
 * used); then either open the snapshot in place and re-sync the internal ids named by the
 * log entries after it (snapshot.c), or -- when there is no snapshot, or it is damaged or
 * does not match the stored points -- build the index from scratch out of the stored
 * vectors. A damaged snapshot is a warning (kept in the collection's stats and left in
 * qv_last_error() while open returns QV_OK), never a failure: the stored points are the
 * source of truth and the snapshot only a shortcut.
 */
#include "storage/filter.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "index/index.h"

void qv_coll_warn(qv_coll *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->stats.warning, sizeof c->stats.warning, fmt, ap);
    va_end(ap);
}

void qv_storage_get_stats(qv_coll *c, qv_storage_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c) return;
    pthread_rwlock_rdlock(&c->maplock);
    *out = c->stats;
    out->ivf_trained = qv_coll_effective_kind(c) == QV_INDEX_IVF;
    pthread_rwlock_unlock(&c->maplock);
    out->map_grows = __atomic_load_n(&c->db->map_grows, __ATOMIC_RELAXED);
}

static qv_coll *coll_alloc(qv_db *db, const char *name)
{
    qv_coll *c = qv_calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writers hold it only for a few assignments; preferring them keeps a stream of
     * overlapping searches from starving a write. Nobody takes it recursively. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&c->maplock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&c->fcache_lock, NULL);
    c->db = db;
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

void qv_coll_free(qv_coll *c)
{
    if (!c) return;
    qv_snapshot_verify_join(c);
    qv_index_free(c->ix);
    qv_free(c->ext_of);
    qv_free(c->live);
    qv_free(c->payload_index);
    for (size_t i = 0; i < c->nretired_pi; i++) qv_free(c->retired_pi[i]);
    qv_free(c->retired_pi);
    qv_pfields_free(c->pfields, c->npfields);
    qv_fcache_free(c);
    pthread_mutex_destroy(&c->fcache_lock);
    pthread_rwlock_destroy(&c->maplock);
    qv_free(c);
}

int qv_coll_reserve_ids(qv_coll *c, uint64_t n)
{
    if (n <= c->cap) return QV_OK;
    if (n > ((uint64_t)1 << 40)) return qv_fail(QV_EFULL, "collection '%s': too many internal ids", c->name);
    size_t ncap = c->cap ? c->cap : 1024;
    while (ncap < n) ncap *= 2;
    uint64_t *e = qv_reallocarray(c->ext_of, ncap, sizeof *e);
    if (!e) return QV_ENOMEM;
    c->ext_of = e;
    uint64_t *l = qv_reallocarray(c->live, ncap / 64, sizeof *l);
    if (!l) return QV_ENOMEM;      /* ext_of grew, cap did not: harmless */
    memset(l + c->cap / 64, 0, (ncap - c->cap) / 64 * sizeof *l);
    c->live = l;
    c->cap = ncap;
    return QV_OK;
}

int qv_coll_check_live(const qv_coll *c)
{
    if (__atomic_load_n(&c->dropped, __ATOMIC_ACQUIRE))
        return qv_fail(QV_ENOTFOUND, "collection '%s' was dropped", c->name);
    return QV_OK;
}

/* ---- the table of open collections (db->colls, under db->colls_lock) --------------------- */

/* The open, not dropped collection named name, or NULL. */
static qv_coll *find_open(qv_db *db, const char *name)
{
    for (size_t i = 0; i < db->ncolls; i++)
        if (!db->colls[i]->dropped && strcmp(db->colls[i]->name, name) == 0) return db->colls[i];
    return NULL;
}

/* find_open, counting one more user when found. */
static qv_coll *find_and_use(qv_db *db, const char *name)
{
    pthread_mutex_lock(&db->colls_lock);
    qv_coll *c = find_open(db, name);
    if (c) c->users++;
    pthread_mutex_unlock(&db->colls_lock);
    return c;
}

static void table_remove(qv_db *db, const qv_coll *c)
{
    for (size_t i = 0; i < db->ncolls; i++)
        if (db->colls[i] == c) {
            db->colls[i] = db->colls[--db->ncolls];
            return;
        }
}

static int reserve_table(qv_db *db)
{
    if (db->ncolls < db->cap_colls) return QV_OK;
    size_t ncap = db->cap_colls ? db->cap_colls * 2 : 8;
    qv_coll **t = qv_reallocarray(db->colls, ncap, sizeof *t);
    if (!t) return QV_ENOMEM;
    db->colls = t;
    db->cap_colls = ncap;
    return QV_OK;
}

/* ---- building the index from the stored points ---------------------------------------- */

int qv_coll_build_index(qv_coll *c, MDB_txn *txn, qv_progress_fn progress, void *arg, qv_index **out)
{
    qv_index *ix = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t *ids = NULL;
    float *vecs = NULL;
    uint8_t prefix[4];
    size_t dim = c->params.dim, batch, n = 0;
    int rc;

    *out = NULL;
    batch = ((size_t)1 << 22) / dim;   /* about 16 MiB of vectors per qv_index_add */
    if (batch < 256) batch = 256;
    if (batch > 65536) batch = 65536;
    if ((rc = qv_coll_new_index(c, txn, progress, arg, &ix)) != QV_OK) goto cleanup;
    if (!(ids = qv_reallocarray(NULL, batch, sizeof *ids)) || !(vecs = qv_reallocarray(NULL, batch, dim * sizeof *vecs))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    if ((rc = qv_lmdb_cursor_open(txn, c->db->dbi[DBI_POINTS], &cur)) != QV_OK) goto cleanup;
    qv_be32_put(prefix, c->cid);
    for (rc = qv_lmdb_seek(cur, prefix, 4, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, prefix, 4, &k, &v)) {
        if (k.mv_size != 12 || v.mv_size != qv_point_rec_size(c)) {
            rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged point record", c->name);
            goto cleanup;
        }
        ids[n] = qv_be64_get((const uint8_t *)k.mv_data + 4);
        memcpy(vecs + n * dim, (const uint8_t *)v.mv_data + 8, dim * sizeof(float));   /* what the index scores */
        if (++n == batch) {
            if ((rc = qv_index_add(ix, n, ids, vecs)) != QV_OK) goto cleanup;
            n = 0;
        }
    }
    if (rc != QV_ENOTFOUND) goto cleanup;
    rc = n ? qv_index_add(ix, n, ids, vecs) : QV_OK;
    if (rc == QV_OK) {
        /* Built from copies (its inserts read the batch it was given); from now on it
         * reads the stored vectors and drops those copies (vec_source.c). */
        qv_coll_use_vec_source(c, ix, qv_index_size(ix) > 0);
        *out = ix;
        ix = NULL;
    }
cleanup:
    qv_lmdb_cursor_close(cur);
    qv_free(ids);
    qv_free(vecs);
    qv_index_free(ix);
    return rc;
}

int qv_coll_rebuild(qv_coll *c, const char *why)
{
    MDB_txn *txn = NULL;
    qv_index *ix = NULL, *old;
    int rc = qv_lmdb_begin(c->db, 1, &txn);
    if (rc != QV_OK) return rc;
    rc = qv_coll_build_index(c, txn, NULL, NULL, &ix);
    qv_lmdb_abort(c->db, txn);
    if (rc != QV_OK) return rc;
    qv_snapshot_verify_join(c);        /* it may still be reading the old index */
    pthread_rwlock_wrlock(&c->maplock);
    old = c->ix;
    c->ix = ix;
    __atomic_store_n(&c->need_rebuild, 0, __ATOMIC_RELEASE);
    c->stats.rebuilds++;
    if (why) qv_coll_warn(c, "collection '%s': index rebuilt from %llu stored vectors (%s)", c->name,
                          (unsigned long long)c->count, why);
    pthread_rwlock_unlock(&c->maplock);
    qv_index_free(old);
    return QV_OK;
}

int qv_coll_ensure_index(qv_coll *c)
{
    int rc = QV_OK;
    if (!__atomic_load_n(&c->need_rebuild, __ATOMIC_ACQUIRE)) return QV_OK;
    pthread_mutex_lock(&c->db->wmutex);
    if ((rc = qv_coll_check_live(c)) == QV_OK && c->need_rebuild)
        rc = qv_coll_rebuild(c, "an earlier index update failed");
    pthread_mutex_unlock(&c->db->wmutex);
    return rc;
}

/* ---- loading ----------------------------------------------------------------------------- */

static int load_state(qv_coll *c, MDB_txn *txn)
{
    uint8_t key[4];
    MDB_val v;
    qv_be32_put(key, c->cid);
    int rc = qv_lmdb_get(txn, c->db->dbi[DBI_STATE], key, 4, &v);
    if (rc == QV_ENOTFOUND) return qv_fail(QV_ECORRUPT, "collection '%s': state record missing", c->name);
    if (rc != QV_OK) return rc;
    if (v.mv_size != 24) return qv_fail(QV_ECORRUPT, "collection '%s': damaged state record", c->name);
    c->last_seq = qv_be64_get(v.mv_data);
    c->next_iid = qv_be64_get((const uint8_t *)v.mv_data + 8);
    c->count = qv_be64_get((const uint8_t *)v.mv_data + 16);
    return QV_OK;
}

/* Fill ext_of / live from the id records (when there is no usable snapshot); checks them
 * against the state record. */
static int load_ids(qv_coll *c, MDB_txn *txn)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t prefix[4];
    uint64_t n = 0;
    int rc;

    if ((rc = qv_coll_reserve_ids(c, c->next_iid)) != QV_OK) return rc;
    if (c->cap) memset(c->live, 0, c->cap / 8);    /* a failed snapshot load may have filled some */
    if ((rc = qv_lmdb_cursor_open(txn, c->db->dbi[DBI_IDS], &cur)) != QV_OK) return rc;
    qv_be32_put(prefix, c->cid);
    for (rc = qv_lmdb_seek(cur, prefix, 4, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, prefix, 4, &k, &v)) {
        uint64_t iid;
        if (k.mv_size != 12 || v.mv_size != 8 || (iid = qv_be64_get(v.mv_data)) >= c->next_iid ||
            (c->live[iid / 64] >> (iid % 64) & 1)) {
            rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged id record", c->name);
            break;
        }
        c->ext_of[iid] = qv_be64_get((const uint8_t *)k.mv_data + 4);
        c->live[iid / 64] |= 1ull << (iid % 64);
        n++;
    }
    qv_lmdb_cursor_close(cur);
    if (rc != QV_ENOTFOUND) return rc;
    if (n != c->count)
        return qv_fail(QV_ECORRUPT, "collection '%s': %llu stored points but the state record says %llu", c->name,
                       (unsigned long long)n, (unsigned long long)c->count);
    return QV_OK;
}

/* Load c (config already decoded) from txn: the snapshot (ids and index) + replay, or
 * the ids from `ids` and a rebuild. */
static int coll_load(qv_coll *c, MDB_txn *txn)
{
    int rc;
    if ((rc = load_state(c, txn)) != QV_OK) return rc;
    if ((rc = qv_coll_ivf_load(c, txn)) != QV_OK) return rc;
    if ((rc = qv_coll_reserve_ids(c, c->next_iid)) != QV_OK) return rc;
    rc = qv_snapshot_load(c, txn);
    if (rc == QV_OK) return QV_OK;
    if (rc != QV_ENOTFOUND && rc != QV_ECORRUPT) return rc;
    int snap_rc = rc;
    char why[200];
    snprintf(why, sizeof why, "%s", qv_last_error());
    if ((rc = load_ids(c, txn)) != QV_OK) return rc;
    if (snap_rc == QV_ENOTFOUND) {      /* never checkpointed: a rebuild is the normal path */
        if ((rc = qv_coll_build_index(c, txn, NULL, NULL, &c->ix)) != QV_OK) return rc;
        if (qv_index_size(c->ix) != c->count)
            return qv_fail(QV_ECORRUPT, "collection '%s': %zu stored points, the state record says %llu", c->name,
                           qv_index_size(c->ix), (unsigned long long)c->count);
        if (c->count) c->stats.rebuilds++;
        return QV_OK;
    }
    c->stats.damaged_snapshots++;
    if ((rc = qv_coll_build_index(c, txn, NULL, NULL, &c->ix)) != QV_OK) return rc;
    c->stats.rebuilds++;
    qv_coll_warn(c, "collection '%s': snapshot unusable, index rebuilt from %llu stored vectors: %s", c->name,
                 (unsigned long long)c->count, why);
    return QV_OK;
}

/* ---- public API ------------------------------------------------------------------------- */

typedef struct {
    qv_coll *c;
    const qv_collection_config *cfg;
} create_arg;

int qv_coll_next_cid(qv_db *db, MDB_txn *txn, uint32_t *cid)
{
    uint8_t buf[4];
    MDB_val v;
    int rc = qv_lmdb_get(txn, db->dbi[DBI_META], "next_cid", 8, &v);
    *cid = 1;
    if (rc == QV_OK) {
        if (v.mv_size != 4) return qv_fail(QV_ECORRUPT, "damaged next_cid record");
        *cid = qv_be32_get(v.mv_data);
    } else if (rc != QV_ENOTFOUND) {
        return rc;
    }
    if (*cid == UINT32_MAX) return qv_fail(QV_EFULL, "collection ids exhausted");
    qv_be32_put(buf, *cid + 1);
    return qv_lmdb_put(txn, db->dbi[DBI_META], "next_cid", 8, buf, 4);
}

int qv_coll_room(qv_db *db, MDB_txn *txn, size_t adding, const char *what)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t ncoll = 0;
    int rc;
    if (!adding) return QV_OK;
    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_COLLECTIONS], &cur)) != QV_OK) return rc;
    for (rc = qv_lmdb_seek(cur, "", 0, 0, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, "", 0, &k, &v)) ncoll++;
    qv_lmdb_cursor_close(cur);
    if (rc != QV_ENOTFOUND) return rc;
    if (ncoll + adding > db->opt.max_collections)
        return qv_fail(QV_EFULL, "cannot create '%s': the database holds %zu of max_collections = %u collections", what,
                       ncoll, db->opt.max_collections);
    return QV_OK;
}

static int create_write(qv_db *db, MDB_txn *txn, void *arg)
{
    create_arg *a = arg;
    qv_coll *c = a->c;
    MDB_val v;
    uint8_t buf[24];
    char *json = NULL;
    uint32_t cid = 1;
    int rc;

    rc = qv_lmdb_get(txn, db->dbi[DBI_COLLECTIONS], c->name, strlen(c->name), &v);
    if (rc == QV_OK) return qv_fail(QV_EEXIST, "collection '%s' already exists", c->name);
    if (rc != QV_ENOTFOUND) return rc;
    char target[80];
    rc = qv_alias_get(db, txn, c->name, target, sizeof target);
    if (rc == QV_OK) return qv_fail(QV_EEXIST, "'%s' is an alias of collection '%s': a collection cannot take its name", c->name, target);
    if (rc != QV_ENOTFOUND) return rc;
    if ((rc = qv_coll_room(db, txn, 1, c->name)) != QV_OK) return rc;
    if ((rc = qv_coll_next_cid(db, txn, &cid)) != QV_OK) return rc;
    c->cid = cid;
    if ((rc = qv_coll_config_encode(cid, &c->params, c->payload_index, &c->vdef, &json)) != QV_OK) return rc;
    rc = qv_lmdb_put(txn, db->dbi[DBI_COLLECTIONS], c->name, strlen(c->name), json, strlen(json));
    qv_free(json);
    if (rc != QV_OK) return rc;
    uint8_t key[4];
    qv_be32_put(key, cid);
    memset(buf, 0, sizeof buf);
    if ((rc = qv_lmdb_put(txn, db->dbi[DBI_STATE], key, 4, buf, 24)) != QV_OK) return rc;
    if (c->npfields && (rc = qv_pindex_put_built(c, txn)) != QV_OK) return rc;
    return QV_OK;
}

/* The sparse vectors as qv_collection_get_info hands them out (pointing into c->vdef). */
static void sparse_pub_fill(qv_coll *c)
{
    for (size_t i = 0; i < c->vdef.nsparse; i++)
        c->sparse_pub[i] = (qv_sparse_config){c->vdef.sparse[i].name, c->vdef.sparse[i].idf};
}

int qv_collection_create(qv_db *db, const char *name, const qv_collection_config *cfg, qv_coll **out)
{
    qv_coll *c = NULL;
    int rc, locked = 0;

    if (out) *out = NULL;
    if (!db || !cfg) return qv_fail(QV_EINVAL, "db or config is NULL");
    if ((rc = qv_coll_name_check(name)) != QV_OK) return rc;
    if ((rc = qv_db_check_writable(db, "create collection")) != QV_OK) return rc;
    if (!(c = coll_alloc(db, name))) return QV_ENOMEM;
    c->params = cfg->index;
    c->params.progress = NULL;     /* borrowed for the call only: never kept */
    c->params.progress_arg = NULL;
    if ((rc = qv_payload_index_check(cfg->payload_index, &c->payload_index)) != QV_OK) goto cleanup;
    if ((rc = qv_vectors_def_from(cfg, &c->vdef)) != QV_OK) goto cleanup;
    sparse_pub_fill(c);
    if ((rc = qv_pindex_load_fields(c, NULL)) != QV_OK) goto cleanup;
    /* qv_index_new validates every index parameter before anything is written; an ivf
     * collection then starts with a flat index (ivf_coll.c). */
    if ((rc = qv_index_new(&c->params, &c->ix)) != QV_OK) goto cleanup;
    if (c->params.kind == QV_INDEX_IVF) {
        qv_index_free(c->ix);
        c->ix = NULL;
        if ((rc = qv_coll_new_index(c, NULL, NULL, NULL, &c->ix)) != QV_OK) goto cleanup;
    }
    if ((rc = qv_coll_reserve_ids(c, 1)) != QV_OK) goto cleanup;
    c->users = out ? 1 : 0;
    pthread_mutex_lock(&db->wmutex);
    locked = 1;
    pthread_mutex_lock(&db->colls_lock);
    if (find_open(db, name)) rc = qv_fail(QV_EEXIST, "collection '%s' already exists", name);
    else rc = reserve_table(db);
    pthread_mutex_unlock(&db->colls_lock);
    if (rc != QV_OK) goto cleanup;
    create_arg a = {c, cfg};
    if ((rc = qv_db_write(db, create_write, &a)) != QV_OK) goto cleanup;
    pthread_mutex_lock(&db->colls_lock);
    db->colls[db->ncolls++] = c;   /* room reserved above; only wmutex holders add */
    pthread_mutex_unlock(&db->colls_lock);
    if (out) *out = c;
    c = NULL;
cleanup:
    if (locked) pthread_mutex_unlock(&db->wmutex);
    qv_coll_free(c);
    return rc;
}

/* A new handle of collection name, its config record cfg (len bytes), loaded from read
 * txn txn; in no table yet. */
static int load_new(qv_db *db, const char *name, const void *cfg, size_t len, MDB_txn *txn, qv_coll **out)
{
    int rc;
    qv_coll *c = coll_alloc(db, name);
    *out = NULL;
    if (!c) return QV_ENOMEM;
    if ((rc = qv_coll_config_decode(name, cfg, len, &c->cid, &c->params, &c->payload_index, &c->vdef)) != QV_OK ||
        (rc = coll_load(c, txn)) != QV_OK || (rc = qv_pindex_load_fields(c, txn)) != QV_OK) {
        qv_coll_free(c);
        return rc;
    }
    sparse_pub_fill(c);
    *out = c;
    return QV_OK;
}

int qv_coll_load_detached(qv_db *db, const char *name, const char *cfg, qv_coll **out)
{
    MDB_txn *txn = NULL;
    int rc = qv_lmdb_begin(db, 1, &txn);
    *out = NULL;
    if (rc != QV_OK) return rc;
    rc = load_new(db, name, cfg, strlen(cfg), txn, out);
    qv_lmdb_abort(db, txn);
    return rc;
}

int qv_coll_attach(qv_db *db, qv_coll *c)
{
    pthread_mutex_lock(&db->colls_lock);
    int rc = find_open(db, c->name) ? qv_fail(QV_EEXIST, "collection '%s' is open already", c->name) : reserve_table(db);
    if (rc == QV_OK) db->colls[db->ncolls++] = c;
    pthread_mutex_unlock(&db->colls_lock);
    if (rc == QV_OK) qv_pindex_build_pending(c);
    return rc;
}

int qv_collection_open(qv_db *db, const char *name, qv_coll **out)
{
    qv_coll *c = NULL;
    MDB_txn *txn = NULL;
    MDB_val v;
    char target[80];
    int rc;

    if (!out) return qv_fail(QV_EINVAL, "out is NULL");
    *out = NULL;
    if (!db) return qv_fail(QV_EINVAL, "db is NULL");
    if ((rc = qv_coll_name_check(name)) != QV_OK) return rc;
    if ((*out = find_and_use(db, name))) return QV_OK;   /* the common case: no writer lock */
    /* an alias: the collection it points at now, open already in the common case */
    if (qv_alias_resolve(db, name, target, sizeof target) == QV_OK && strcmp(target, name) != 0) {
        if ((*out = find_and_use(db, target))) return QV_OK;
    }
    pthread_mutex_lock(&db->wmutex);
    if ((*out = find_and_use(db, name))) goto cleanup;     /* loaded while we waited */
    pthread_mutex_lock(&db->colls_lock);
    rc = reserve_table(db);
    pthread_mutex_unlock(&db->colls_lock);
    if (rc != QV_OK) goto cleanup;
    if ((rc = qv_lmdb_begin(db, 1, &txn)) != QV_OK) goto cleanup;
    rc = qv_lmdb_get(txn, db->dbi[DBI_COLLECTIONS], name, strlen(name), &v);
    if (rc == QV_ENOTFOUND && qv_alias_get(db, txn, name, target, sizeof target) == QV_OK) {
        /* an alias, resolved in the txn that reads the collection: never a dropped one */
        name = target;
        if ((*out = find_and_use(db, name))) {
            rc = QV_OK;
            goto cleanup;
        }
        rc = qv_lmdb_get(txn, db->dbi[DBI_COLLECTIONS], name, strlen(name), &v);
    }
    if (rc == QV_ENOTFOUND) { rc = qv_fail(QV_ENOTFOUND, "no collection '%s'", name); goto cleanup; }
    if (rc != QV_OK) goto cleanup;
    if ((rc = load_new(db, name, v.mv_data, v.mv_size, txn, &c)) != QV_OK) goto cleanup;
    qv_lmdb_abort(db, txn);
    txn = NULL;
    qv_snapshot_files_sweep(db, c->cid, c->has_snapshot ? c->snap_seq : UINT64_MAX);
    qv_pindex_build_pending(c);    /* fields declared but not built (older database) */
    qv_snapshot_verify_start(c);
    c->users = 1;
    pthread_mutex_lock(&db->colls_lock);
    db->colls[db->ncolls++] = c;   /* room reserved above; only wmutex holders add */
    pthread_mutex_unlock(&db->colls_lock);
    *out = c;
    if (c->stats.warning[0]) qv_fail(QV_OK, "warning: %s", c->stats.warning);
    c = NULL;
cleanup:
    qv_lmdb_abort(db, txn);
    pthread_mutex_unlock(&db->wmutex);
    qv_coll_free(c);
    return rc;
}

void qv_collection_close(qv_coll *c)
{
    int last = 0;
    if (!c) return;
    qv_db *db = c->db;
    pthread_mutex_lock(&db->colls_lock);
    if (c->users) c->users--;      /* more closes than opens: a caller's bug, ignored */
    if (c->dropped && c->users == 0) {
        table_remove(db, c);
        last = 1;
    }
    pthread_mutex_unlock(&db->colls_lock);
    if (last) qv_coll_free(c);     /* dropped, and its last user is done with it */
}

int qv_coll_delete_data(qv_db *db, MDB_txn *txn, uint32_t cid)
{
    static const int per_coll[] = {DBI_STATE, DBI_IDS, DBI_POINTS, DBI_PAYLOADS, DBI_FREEIDS, DBI_LOG, DBI_SNAPSHOTS,
                                   DBI_PINDEX};
    uint8_t key[4];
    int rc;
    qv_be32_put(key, cid);
    for (size_t i = 0; i < sizeof per_coll / sizeof per_coll[0]; i++)
        if ((rc = qv_lmdb_del_prefix(txn, db->dbi[per_coll[i]], key, 4)) != QV_OK) return rc;
    return QV_OK;
}

qv_coll *qv_coll_retire(qv_db *db, const char *name)
{
    qv_coll *c, *unused = NULL;
    pthread_mutex_lock(&db->colls_lock);
    if ((c = find_open(db, name))) {
        /* From now on no open finds it and every call on it answers QV_ENOTFOUND; calls
         * already past that check finish on its memory, which lives until its last user
         * closes it (writers cannot be running: the caller holds wmutex). */
        __atomic_store_n(&c->dropped, 1, __ATOMIC_RELEASE);
        if (c->users == 0) {
            table_remove(db, c);
            unused = c;
        }
    }
    pthread_mutex_unlock(&db->colls_lock);
    return unused;
}

typedef struct {
    const char *name;
    uint32_t cid;                  /* out */
} drop_arg;

static int drop_write(qv_db *db, MDB_txn *txn, void *arg)
{
    drop_arg *a = arg;
    MDB_val v;
    qv_index_params p;
    char *pi = NULL;
    uint32_t cid;
    qv_vectors_def vd;
    int rc = qv_lmdb_get(txn, db->dbi[DBI_COLLECTIONS], a->name, strlen(a->name), &v);
    if (rc == QV_ENOTFOUND) return qv_fail(QV_ENOTFOUND, "no collection '%s'", a->name);
    if (rc != QV_OK) return rc;
    if ((rc = qv_coll_config_decode(a->name, v.mv_data, v.mv_size, &cid, &p, &pi, &vd)) != QV_OK) return rc;
    qv_free(pi);
    a->cid = cid;
    if ((rc = qv_lmdb_del(txn, db->dbi[DBI_COLLECTIONS], a->name, strlen(a->name))) != QV_OK) return rc;
    if ((rc = qv_alias_drop_target(db, txn, a->name)) != QV_OK) return rc;     /* as Qdrant does */
    return qv_coll_delete_data(db, txn, cid);
}

int qv_collection_drop(qv_db *db, const char *name)
{
    qv_coll *unused = NULL;
    int rc;
    if (!db) return qv_fail(QV_EINVAL, "db is NULL");
    if ((rc = qv_coll_name_check(name)) != QV_OK) return rc;
    if ((rc = qv_db_check_writable(db, "drop collection")) != QV_OK) return rc;
    pthread_mutex_lock(&db->wmutex);
    drop_arg a = {name, 0};
    rc = qv_db_write(db, drop_write, &a);
    if (rc == QV_OK) unused = qv_coll_retire(db, name);
    /* its files go now; a user still holding it keeps its mapping (the inode lives on) */
    if (rc == QV_OK) qv_snapshot_files_sweep(db, a.cid, UINT64_MAX);
    pthread_mutex_unlock(&db->wmutex);
    qv_coll_free(unused);
    return rc;
}

int qv_collection_list(qv_db *db, char ***names, size_t *n)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    char **list = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (!names || !n) return qv_fail(QV_EINVAL, "names or n is NULL");
    *names = NULL;
    *n = 0;
    if (!db) return qv_fail(QV_EINVAL, "db is NULL");
    if ((rc = qv_lmdb_begin(db, 1, &txn)) != QV_OK) return rc;
    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_COLLECTIONS], &cur)) != QV_OK) goto cleanup;
    for (rc = qv_lmdb_seek(cur, "", 0, 0, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, "", 0, &k, &v)) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **t = qv_reallocarray(list, ncap, sizeof *t);
            if (!t) { rc = QV_ENOMEM; goto cleanup; }
            list = t;
            cap = ncap;
        }
        if (!(list[len] = qv_malloc(k.mv_size + 1))) { rc = QV_ENOMEM; goto cleanup; }
        memcpy(list[len], k.mv_data, k.mv_size);
        list[len++][k.mv_size] = '\0';
    }
    if (rc != QV_ENOTFOUND) goto cleanup;
    rc = QV_OK;
    *names = list;             /* LMDB keeps keys in byte order: already sorted */
    *n = len;
    list = NULL;
cleanup:
    qv_lmdb_cursor_close(cur);
    qv_lmdb_abort(db, txn);
    qv_free_strings(list, len);
    return rc;
}

int qv_collection_get_info(qv_coll *c, qv_collection_info *out)
{
    if (!c || !out) return qv_fail(QV_EINVAL, "collection or out is NULL");
    memset(out, 0, sizeof *out);
    int rc = qv_coll_check_live(c);
    if (rc != QV_OK) return rc;
    pthread_rwlock_rdlock(&c->maplock);
    snprintf(out->name, sizeof out->name, "%s", c->name);
    out->config.index = c->params;
    out->config.payload_index = c->payload_index;
    out->config.vector_name = c->vdef.named ? c->vdef.name : NULL;
    out->config.n_sparse = c->vdef.nsparse;
    out->config.sparse = c->vdef.nsparse ? c->sparse_pub : NULL;
    out->config.no_dense = c->vdef.no_dense;
    out->config.on_disk = c->vdef.on_disk;
    out->count = (size_t)c->count;
    out->memory_bytes = qv_index_memory(c->ix) + c->cap * sizeof(uint64_t) + c->cap / 8;
    out->last_seq = c->last_seq;
    pthread_rwlock_unlock(&c->maplock);
    return QV_OK;
}
