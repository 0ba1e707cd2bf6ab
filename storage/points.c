/*
 * storage/points.c -- qv_upsert, qv_update_vectors (vectors only, payloads kept), qv_delete, qv_get, qv_search, qv_search_batch.
 *
 * A write is: validate everything (vectors, payload JSON, duplicate ids) and allocate
 * everything the later steps need; then, under db->wmutex, one LMDB txn (retried whole if
 * the map has to grow) that assigns internal ids, stores points/payloads, appends a log
 * entry under the next seq and updates the state record; then, only after the commit
 * succeeded, the in-memory side: ext_of/live/counters under c->maplock, and the index
 * add/remove. So the index never holds a point that is not on disk. If the index update
 * itself fails (out of memory), the write is still durable: the collection is marked for a
 * rebuild from the stored vectors, done before its next search, write or checkpoint, and
 * the caller gets QV_ENOMEM with a message that says the points were committed.
 *
 * Internal ids are dense: a new external id takes the lowest freed internal id of the
 * collection (the `freeids` table) or the next never-used one.
 *
 * The payload index (payload_index.c) is kept in step inside the same write txn: an
 * upsert that replaces a point first removes the entries of its stored payload, a delete
 * likewise; new entries are computed under wmutex (the field list may change under it).
 * Searches live in search.c.
 */
#include "storage/filter.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/vector_check.h"
#include "storage/sparse.h"

/* ---- validation ---------------------------------------------------------------------- */

static int check_vectors(const qv_coll *c, size_t n, const uint64_t *ids, const float *vecs)
{
    size_t dim = c->params.dim, col = 0;
    char msg[128];
    for (size_t i = 0; i < n; i++) {
        if (ids[i] > QV_MAX_ID)
            return qv_fail(QV_EINVAL, "point %zu: id %llu is above the largest id %llu", i,
                           (unsigned long long)ids[i], (unsigned long long)QV_MAX_ID);
        int problem = qv_vector_problem(vecs + i * dim, dim, c->params.metric, &col);
        if (problem != QV_VEC_OK)
            return qv_fail(QV_EINVAL, "point %zu (id %llu): %s", i, (unsigned long long)ids[i],
                           qv_vector_problem_text(problem, col, msg, sizeof msg));
    }
    return QV_OK;
}

typedef struct { uint64_t id; size_t idx; } id_pos;

static int cmp_id_pos(const void *a, const void *b)
{
    const id_pos *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static int check_unique(size_t n, const uint64_t *ids)
{
    int rc = QV_OK;
    if (n < 2) return QV_OK;
    id_pos *s = qv_reallocarray(NULL, n, sizeof *s);
    if (!s) return QV_ENOMEM;
    for (size_t i = 0; i < n; i++) s[i] = (id_pos){ids[i], i};
    qsort(s, n, sizeof *s, cmp_id_pos);
    for (size_t i = 1; i < n; i++)
        if (s[i].id == s[i - 1].id) {
            rc = qv_fail(QV_EINVAL, "point %zu (id %llu) repeats point %zu of the same batch", s[i].idx,
                         (unsigned long long)s[i].id, s[i - 1].idx);
            break;
        }
    qv_free(s);
    return rc;
}

/* Parse each payload, require a JSON object, keep its compact form (qv_malloc'd) and the
 * parsed object (objs, for the payload index). */
static int check_payloads(size_t n, const uint64_t *ids, const char *const *in, char **out, json_t **objs)
{
    for (size_t i = 0; i < n; i++) {
        json_error_t err;
        json_t *o;
        if (!in[i]) continue;
        if (!(o = json_loads(in[i], JSON_REJECT_DUPLICATES, &err)))
            return qv_fail(QV_EINVAL, "point %zu (id %llu): payload is not valid JSON (line %d column %d: %s)", i,
                           (unsigned long long)ids[i], err.line, err.column, err.text);
        if (!json_is_object(o)) {
            json_decref(o);
            return qv_fail(QV_EINVAL, "point %zu (id %llu): payload must be a JSON object", i,
                           (unsigned long long)ids[i]);
        }
        char *s = json_dumps(o, JSON_COMPACT);
        objs[i] = o;
        if (!s) return qv_fail(QV_ENOMEM, "out of memory encoding a payload");
        out[i] = qv_strdup(s);
        free(s);
        if (!out[i]) return QV_ENOMEM;
    }
    return QV_OK;
}

/* ---- upsert ---------------------------------------------------------------------------- */

typedef struct {
    qv_coll *c;
    size_t n;
    const uint64_t *ids;
    const float *vecs;
    char **payloads;               /* compact JSON or NULL per point */
    json_t **objs;                 /* the parsed payloads */
    qv_terms *terms;               /* payload index entries per point, or NULL */
    uint64_t *iids;                /* out: internal id per point */
    uint8_t *isnew;                /* out: 1 when the external id was new */
    uint8_t *logbuf;               /* 4 + 8n bytes */
    uint64_t next_iid, nnew;       /* out */
    int vectors_only;              /* qv_update_vectors: existing points only, payloads kept */
    const qv_sparse_vector *sparse;   /* n * nsparse sparse vectors, or NULL (none) */
    float *unit;                   /* dim floats of scratch for qv_point_rec_put, or NULL */
} upsert_arg;

int qv_coll_put_state(qv_db *db, MDB_txn *txn, const qv_coll *c, uint64_t seq, uint64_t next, uint64_t count)
{
    uint8_t key[4], val[24];
    qv_be32_put(key, c->cid);
    qv_be64_put(val, seq);
    qv_be64_put(val + 8, next);
    qv_be64_put(val + 16, count);
    return qv_lmdb_put(txn, db->dbi[DBI_STATE], key, 4, val, 24);
}

/* Pop the lowest freed internal id of the collection; QV_ENOTFOUND if none. */
static int take_free(MDB_cursor *cur, uint32_t cid, uint64_t *iid)
{
    uint8_t start[12];
    MDB_val k, v;
    qv_ckey(start, cid, 0);
    int rc = qv_lmdb_seek(cur, start, 12, 4, &k, &v);
    if (rc != QV_OK) return rc;
    if (k.mv_size != 12) return qv_fail(QV_ECORRUPT, "damaged free-id record");
    *iid = qv_be64_get((const uint8_t *)k.mv_data + 4);
    return qv_lmdb_cursor_del(cur);
}

static int upsert_write(qv_db *db, MDB_txn *txn, void *arg)
{
    upsert_arg *a = arg;
    qv_coll *c = a->c;
    MDB_cursor *fcur = NULL;
    size_t dim = c->params.dim;
    uint64_t seq = c->last_seq + 1, next = c->next_iid, nnew = 0;
    int rc;

    if ((rc = qv_lmdb_cursor_open(txn, db->dbi[DBI_FREEIDS], &fcur)) != QV_OK) return rc;
    for (size_t i = 0; i < a->n; i++) {
        uint8_t key[12];
        MDB_val v;
        uint64_t iid = 0;
        void *p;
        qv_ckey(key, c->cid, a->ids[i]);
        rc = qv_lmdb_get(txn, db->dbi[DBI_IDS], key, 12, &v);
        if (rc == QV_OK) {
            if (v.mv_size != 8) { rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged id record", c->name); goto out; }
            iid = qv_be64_get(v.mv_data);
            a->isnew[i] = 0;
            /* the entries of the payload being replaced go first, and its sparse vectors */
            if (a->terms && (rc = qv_pindex_unindex_stored(c, txn, iid)) != QV_OK) goto out;
            if (!a->vectors_only && (rc = qv_sparse_unindex(c, txn, iid)) != QV_OK) goto out;
        } else if (rc == QV_ENOTFOUND && a->vectors_only) {
            rc = qv_fail(QV_ENOTFOUND, "no point with id %llu in collection '%s' (point %zu)",
                         (unsigned long long)a->ids[i], c->name, i);
            goto out;
        } else if (rc == QV_ENOTFOUND) {
            rc = take_free(fcur, c->cid, &iid);
            if (rc == QV_ENOTFOUND) { iid = next++; rc = QV_OK; }
            if (rc != QV_OK) goto out;
            uint8_t ival[8];
            qv_be64_put(ival, iid);
            if ((rc = qv_lmdb_put(txn, db->dbi[DBI_IDS], key, 12, ival, 8)) != QV_OK) goto out;
            a->isnew[i] = 1;
            nnew++;
        } else {
            goto out;
        }
        a->iids[i] = iid;
        qv_ckey(key, c->cid, iid);
        if ((rc = qv_lmdb_reserve(txn, db->dbi[DBI_POINTS], key, 12, qv_point_rec_size(c), &p)) != QV_OK) goto out;
        qv_point_rec_put(c, p, a->ids[i], a->vecs + i * dim, a->unit);
        if (a->vectors_only) {
            rc = QV_OK;            /* the payload and its index entries stay as they are */
        } else if (a->payloads && a->payloads[i]) {
            rc = qv_lmdb_put(txn, db->dbi[DBI_PAYLOADS], key, 12, a->payloads[i], strlen(a->payloads[i]));
        } else {
            rc = qv_lmdb_del(txn, db->dbi[DBI_PAYLOADS], key, 12);
            if (rc == QV_ENOTFOUND) rc = QV_OK;
        }
        if (rc != QV_OK) goto out;
        if (a->terms && (rc = qv_pindex_put(c, txn, &a->terms[i], iid)) != QV_OK) goto out;
        if (a->sparse && (rc = qv_sparse_put(c, txn, iid, a->sparse + i * c->vdef.nsparse)) != QV_OK) goto out;
        qv_be64_put(a->logbuf + 4 + 8 * i, iid);
    }
    uint8_t lkey[12];
    qv_be32_put(a->logbuf, (uint32_t)a->n);
    qv_ckey(lkey, c->cid, seq);
    if ((rc = qv_lmdb_put(txn, db->dbi[DBI_LOG], lkey, 12, a->logbuf, 4 + 8 * a->n)) != QV_OK) goto out;
    if ((rc = qv_coll_put_state(db, txn, c, seq, next, c->count + nnew)) != QV_OK) goto out;
    a->next_iid = next;
    a->nnew = nnew;
out:
    qv_lmdb_cursor_close(fcur);
    return rc;
}

/* After a committed write: snapshot every checkpoint_every writes. A failure here does
 * not fail the write (it is durable); it is kept as a warning and retried next time. */
static void maybe_checkpoint(qv_coll *c)
{
    uint32_t every = c->db->opt.checkpoint_every;
    if (!every || ++c->writes_since_ckpt < every || c->need_rebuild) return;
    if (qv_snapshot_write(c) != QV_OK) {
        pthread_rwlock_wrlock(&c->maplock);
        qv_coll_warn(c, "collection '%s': automatic checkpoint failed: %s", c->name, qv_last_error());
        pthread_rwlock_unlock(&c->maplock);
    }
}

/* The index missed a committed write: mark for rebuild and tell the caller. */
static int index_failed(qv_coll *c, int rc, const char *op)
{
    char msg[256];
    snprintf(msg, sizeof msg, "collection '%s': %s committed but the index update failed: %s", c->name, op,
             qv_last_error());
    pthread_rwlock_wrlock(&c->maplock);
    snprintf(c->stats.warning, sizeof c->stats.warning, "%s", msg);
    pthread_rwlock_unlock(&c->maplock);
    __atomic_store_n(&c->need_rebuild, 1, __ATOMIC_RELEASE);
    return qv_fail(rc, "%s (the change is durable; the index is rebuilt before the next use)", msg);
}

/* qv_upsert, or with vectors_only qv_update_vectors (no payloads then). */
static int write_points(qv_coll *c, size_t n, const uint64_t *ids, const float *vecs, const char *const *payloads_json,
                        const qv_sparse_vector *sparse, int vectors_only)
{
    upsert_arg a;
    int rc, locked = 0;

    memset(&a, 0, sizeof a);
    a.vectors_only = vectors_only;
    if (!c) return qv_fail(QV_EINVAL, "collection is NULL");
    if (n == 0) return QV_OK;
    if (!ids || !vecs) return qv_fail(QV_EINVAL, "ids or vectors are NULL");
    if (n > UINT32_MAX) return qv_fail(QV_EINVAL, "batch of %zu points is too large (max %u)", n, UINT32_MAX);
    if ((rc = qv_db_check_writable(c->db, "upsert")) != QV_OK) return rc;
    if ((rc = check_vectors(c, n, ids, vecs)) != QV_OK) return rc;
    if ((rc = check_unique(n, ids)) != QV_OK) return rc;
    if ((rc = qv_sparse_check(c, n, ids, sparse)) != QV_OK) return rc;
    a.sparse = c->vdef.nsparse ? sparse : NULL;
    a.c = c;
    a.n = n;
    a.ids = ids;
    a.vecs = vecs;
    if (payloads_json) {
        if (!(a.payloads = qv_calloc(n, sizeof *a.payloads)) || !(a.objs = qv_calloc(n, sizeof *a.objs))) {
            rc = QV_ENOMEM;
            goto cleanup;
        }
        if ((rc = check_payloads(n, ids, payloads_json, a.payloads, a.objs)) != QV_OK) goto cleanup;
    }
    if (!(a.iids = qv_reallocarray(NULL, n, sizeof *a.iids)) || !(a.isnew = qv_malloc(n)) ||
        !(a.logbuf = qv_malloc(4 + 8 * n)) ||
        (qv_point_rec_keeps_unit(c) && !(a.unit = qv_reallocarray(NULL, c->params.dim, sizeof *a.unit)))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    pthread_mutex_lock(&c->db->wmutex);
    locked = 1;
    if ((rc = qv_coll_check_live(c)) != QV_OK) goto cleanup;
    if (c->need_rebuild && (rc = qv_coll_rebuild(c, "an earlier index update failed")) != QV_OK) goto cleanup;
    /* Payload index entries, under wmutex: the indexed fields change only under it. */
    for (size_t i = 0; !vectors_only && i < c->npfields; i++)
        if (c->pfields[i].built) {
            if (!(a.terms = qv_calloc(n, sizeof *a.terms))) { rc = QV_ENOMEM; goto cleanup; }
            for (size_t j = 0; j < n; j++)
                if ((rc = qv_pindex_terms(c, a.objs ? a.objs[j] : NULL, NULL, &a.terms[j])) != QV_OK) goto cleanup;
            break;
        }
    /* Room for every id this write may create, before the txn: nothing after the commit
     * may fail except the index itself. */
    pthread_rwlock_wrlock(&c->maplock);
    rc = qv_coll_reserve_ids(c, c->next_iid + n);
    pthread_rwlock_unlock(&c->maplock);
    if (rc != QV_OK) goto cleanup;
    if ((rc = qv_db_write(c->db, upsert_write, &a)) != QV_OK) goto cleanup;

    pthread_rwlock_wrlock(&c->maplock);
    for (size_t i = 0; i < n; i++)
        if (a.isnew[i]) {
            c->ext_of[a.iids[i]] = ids[i];
            c->live[a.iids[i] / 64] |= 1ull << (a.iids[i] % 64);
        }
    c->count += a.nnew;
    c->next_iid = a.next_iid;
    c->last_seq++;
    pthread_rwlock_unlock(&c->maplock);
    if ((rc = qv_index_add(c->ix, n, a.iids, vecs)) != QV_OK) {
        rc = index_failed(c, rc, "upsert");
        goto cleanup;
    }
    maybe_checkpoint(c);
    qv_coll_maybe_train(c);
cleanup:
    if (locked) pthread_mutex_unlock(&c->db->wmutex);
    if (a.payloads)
        for (size_t i = 0; i < n; i++) qv_free(a.payloads[i]);
    qv_free(a.payloads);
    if (a.objs)
        for (size_t i = 0; i < n; i++) json_decref(a.objs[i]);
    qv_free(a.objs);
    if (a.terms)
        for (size_t i = 0; i < n; i++) qv_terms_release(&a.terms[i]);
    qv_free(a.terms);
    qv_free(a.iids);
    qv_free(a.isnew);
    qv_free(a.logbuf);
    qv_free(a.unit);
    return rc;
}

int qv_upsert(qv_coll *c, size_t n, const uint64_t *ids, const float *vecs, const char *const *payloads_json)
{
    return write_points(c, n, ids, vecs, payloads_json, NULL, 0);
}

int qv_upsert_sparse(qv_coll *c, size_t n, const uint64_t *ids, const float *vecs, const char *const *payloads_json,
                     const qv_sparse_vector *sparse)
{
    return write_points(c, n, ids, vecs, payloads_json, sparse, 0);
}

int qv_update_vectors(qv_coll *c, size_t n, const uint64_t *ids, const float *vecs)
{
    return write_points(c, n, ids, vecs, NULL, NULL, 1);
}

/* ---- delete ------------------------------------------------------------------------------ */

typedef struct {
    qv_coll *c;
    size_t n;
    const uint64_t *ids;
    uint64_t *iids;                /* out: internal ids removed */
    uint8_t *logbuf;
    size_t nd;                     /* out */
} delete_arg;

static int delete_write(qv_db *db, MDB_txn *txn, void *arg)
{
    delete_arg *a = arg;
    qv_coll *c = a->c;
    size_t nd = 0;
    int rc;

    a->nd = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint8_t key[12];
        MDB_val v;
        uint64_t iid;
        qv_ckey(key, c->cid, a->ids[i]);
        rc = qv_lmdb_get(txn, db->dbi[DBI_IDS], key, 12, &v);
        if (rc == QV_ENOTFOUND) continue;
        if (rc != QV_OK) return rc;
        if (v.mv_size != 8) return qv_fail(QV_ECORRUPT, "collection '%s': damaged id record", c->name);
        iid = qv_be64_get(v.mv_data);
        if ((rc = qv_lmdb_del(txn, db->dbi[DBI_IDS], key, 12)) != QV_OK) return rc;
        if ((rc = qv_pindex_unindex_stored(c, txn, iid)) != QV_OK) return rc;
        if ((rc = qv_sparse_unindex(c, txn, iid)) != QV_OK) return rc;
        qv_ckey(key, c->cid, iid);
        if ((rc = qv_lmdb_del(txn, db->dbi[DBI_POINTS], key, 12)) != QV_OK && rc != QV_ENOTFOUND) return rc;
        if ((rc = qv_lmdb_del(txn, db->dbi[DBI_PAYLOADS], key, 12)) != QV_OK && rc != QV_ENOTFOUND) return rc;
        if ((rc = qv_lmdb_put(txn, db->dbi[DBI_FREEIDS], key, 12, "", 0)) != QV_OK) return rc;
        a->iids[nd] = iid;
        qv_be64_put(a->logbuf + 4 + 8 * nd, iid);
        nd++;
    }
    if (nd == 0) return QV_ENOTFOUND;  /* nothing to do: abort, no seq consumed */
    uint8_t lkey[12];
    uint64_t seq = c->last_seq + 1;
    qv_be32_put(a->logbuf, (uint32_t)nd);
    qv_ckey(lkey, c->cid, seq);
    if ((rc = qv_lmdb_put(txn, db->dbi[DBI_LOG], lkey, 12, a->logbuf, 4 + 8 * nd)) != QV_OK) return rc;
    if ((rc = qv_coll_put_state(db, txn, c, seq, c->next_iid, c->count - nd)) != QV_OK) return rc;
    a->nd = nd;
    return QV_OK;
}

int qv_delete(qv_coll *c, size_t n, const uint64_t *ids, size_t *n_deleted)
{
    delete_arg a;
    int rc, locked = 0;

    memset(&a, 0, sizeof a);
    if (n_deleted) *n_deleted = 0;
    if (!c) return qv_fail(QV_EINVAL, "collection is NULL");
    if (n == 0) return QV_OK;
    if (!ids) return qv_fail(QV_EINVAL, "ids is NULL");
    if (n > UINT32_MAX) return qv_fail(QV_EINVAL, "batch of %zu ids is too large (max %u)", n, UINT32_MAX);
    if ((rc = qv_db_check_writable(c->db, "delete")) != QV_OK) return rc;
    a.c = c;
    a.n = n;
    a.ids = ids;
    if (!(a.iids = qv_reallocarray(NULL, n, sizeof *a.iids)) || !(a.logbuf = qv_malloc(4 + 8 * n))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    pthread_mutex_lock(&c->db->wmutex);
    locked = 1;
    if ((rc = qv_coll_check_live(c)) != QV_OK) goto cleanup;
    if (c->need_rebuild && (rc = qv_coll_rebuild(c, "an earlier index update failed")) != QV_OK) goto cleanup;
    rc = qv_db_write(c->db, delete_write, &a);
    if (rc == QV_ENOTFOUND) { rc = QV_OK; goto cleanup; }
    if (rc != QV_OK) goto cleanup;
    if (n_deleted) *n_deleted = a.nd;
    /* Out of the index first, then dead in the id table: a search in between may still
     * return a point whose delete has not returned yet, never an id without a point. */
    int irc = qv_index_remove(c->ix, a.nd, a.iids, NULL);
    pthread_rwlock_wrlock(&c->maplock);
    for (size_t i = 0; i < a.nd; i++) c->live[a.iids[i] / 64] &= ~(1ull << (a.iids[i] % 64));
    c->count -= a.nd;
    c->last_seq++;
    pthread_rwlock_unlock(&c->maplock);
    if (irc != QV_OK) {
        rc = index_failed(c, irc, "delete");
        goto cleanup;
    }
    maybe_checkpoint(c);
cleanup:
    if (locked) pthread_mutex_unlock(&c->db->wmutex);
    qv_free(a.iids);
    qv_free(a.logbuf);
    return rc;
}

/* ---- get ---------------------------------------------------------------------------------- */

int qv_get(qv_coll *c, uint64_t id, float *vec_out, char **payload_out)
{
    MDB_txn *txn = NULL;
    MDB_val v;
    uint8_t key[12];
    int rc;

    if (payload_out) *payload_out = NULL;
    if (!c) return qv_fail(QV_EINVAL, "collection is NULL");
    if ((rc = qv_coll_check_live(c)) != QV_OK) return rc;
    if ((rc = qv_lmdb_begin(c->db, 1, &txn)) != QV_OK) return rc;
    qv_ckey(key, c->cid, id);
    rc = qv_lmdb_get(txn, c->db->dbi[DBI_IDS], key, 12, &v);
    if (rc == QV_ENOTFOUND) {
        rc = qv_fail(QV_ENOTFOUND, "collection '%s': no point with id %llu", c->name, (unsigned long long)id);
        goto cleanup;
    }
    if (rc != QV_OK) goto cleanup;
    if (v.mv_size != 8) { rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged id record", c->name); goto cleanup; }
    qv_ckey(key, c->cid, qv_be64_get(v.mv_data));
    rc = qv_lmdb_get(txn, c->db->dbi[DBI_POINTS], key, 12, &v);
    if (rc == QV_OK && v.mv_size != qv_point_rec_size(c)) rc = QV_ENOTFOUND;
    if (rc == QV_ENOTFOUND) rc = qv_fail(QV_ECORRUPT, "collection '%s': point %llu has no valid vector record", c->name,
                                         (unsigned long long)id);
    if (rc != QV_OK) goto cleanup;
    if (vec_out) qv_point_rec_vector(c, v.mv_data, vec_out);
    if (payload_out) {
        rc = qv_lmdb_get(txn, c->db->dbi[DBI_PAYLOADS], key, 12, &v);
        if (rc == QV_ENOTFOUND) { rc = QV_OK; goto cleanup; }
        if (rc != QV_OK) goto cleanup;
        if (!(*payload_out = qv_malloc(v.mv_size + 1))) { rc = QV_ENOMEM; goto cleanup; }
        memcpy(*payload_out, v.mv_data, v.mv_size);
        (*payload_out)[v.mv_size] = '\0';
    }
cleanup:
    qv_lmdb_abort(c->db, txn);
    return rc;
}

int qv_get_payloads(qv_coll *c, size_t n, const uint64_t *ids, char **payloads)
{
    MDB_txn *txn = NULL;
    MDB_val v;
    uint8_t key[12];
    int rc;

    if (payloads)
        for (size_t i = 0; i < n; i++) payloads[i] = NULL;
    if (!c || (n && (!ids || !payloads))) return qv_fail(QV_EINVAL, "collection, ids or payloads is NULL");
    if ((rc = qv_coll_check_live(c)) != QV_OK) return rc;
    if (n == 0) return QV_OK;
    if ((rc = qv_lmdb_begin(c->db, 1, &txn)) != QV_OK) return rc;
    for (size_t i = 0; i < n && rc == QV_OK; i++) {
        /* the id record says the point exists, and which internal id its payload is under */
        qv_ckey(key, c->cid, ids[i]);
        rc = qv_lmdb_get(txn, c->db->dbi[DBI_IDS], key, 12, &v);
        if (rc == QV_ENOTFOUND) { rc = QV_OK; continue; }
        if (rc != QV_OK) break;
        if (v.mv_size != 8) { rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged id record", c->name); break; }
        qv_ckey(key, c->cid, qv_be64_get(v.mv_data));
        rc = qv_lmdb_get(txn, c->db->dbi[DBI_PAYLOADS], key, 12, &v);
        if (rc == QV_ENOTFOUND) { rc = QV_OK; continue; }
        if (rc != QV_OK) break;
        if (!(payloads[i] = qv_malloc(v.mv_size + 1))) { rc = QV_ENOMEM; break; }
        memcpy(payloads[i], v.mv_data, v.mv_size);
        payloads[i][v.mv_size] = '\0';
    }
    qv_lmdb_abort(c->db, txn);
    if (rc != QV_OK)
        for (size_t i = 0; i < n; i++) {
            qv_free(payloads[i]);
            payloads[i] = NULL;
        }
    return rc;
}
