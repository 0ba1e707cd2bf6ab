/*
 * storage/payload_update.c -- payload-only updates: qv_update_payload and its shorthands
 * (set = merge keys, overwrite = replace, delete keys, clear).
 *
 * Why in the library: a payload update is a read-modify-write of the stored payload.
 * Done by a caller as qv_get + qv_upsert, nothing is held between the two steps, so a
 * delete acknowledged in between is undone by the upsert (the point comes back) and two
 * updates of one point lose each other's keys (issue 25: 25 of 60 deletes undone, 114 of
 * 300 keys lost with two clients). Here the read, the change and the write of every named
 * point happen in one LMDB write transaction under db->wmutex, the lock every other
 * writer of the collection takes, so concurrent writes of a point are ordered as wholes.
 *
 * The vector and the index are not touched. The write still takes the next sequence number
 * with an empty log entry (it names no internal id, so replay after a snapshot has
 * nothing to re-sync): the filter cache, keyed by last_seq, must miss after a payload
 * changed, and Qdrant's operation_id is last_seq.
 */
#include "storage/filter.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

typedef struct {
    qv_coll *c;
    size_t n;
    const uint64_t *ids;
    const qv_payload_update *u;
    json_t *merge;                 /* parsed u->merge, or NULL */
    int indexed;                   /* the collection has built payload index fields */
    size_t updated;                /* out */
} pupdate_arg;

void qv_payload_update_init(qv_payload_update *u)
{
    if (u) memset(u, 0, sizeof *u);
}

static int in_keys(const char *k, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k, keys[i]) == 0) return 1;
    return 0;
}

/* clear (except keep), remove, merge: in that order. */
static int apply(json_t *p, const qv_payload_update *u, json_t *merge)
{
    if (u->clear) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(p, tmp, k, v)
            if (!in_keys(k, u->keep, u->nkeep)) json_object_del(p, k);
    }
    for (size_t i = 0; i < u->nremove; i++) {
        const char *last;
        size_t n;
        json_t *parent = qv_payload_parent(p, u->remove[i], &last, &n);
        if (parent) json_object_deln(parent, last, n);
    }
    if (merge && json_object_update(p, merge) != 0) return qv_fail(QV_ENOMEM, "out of memory merging a payload");
    return QV_OK;
}

/* Move the payload index entries of point iid from payload old to payload now. */
static int reindex(qv_coll *c, MDB_txn *txn, json_t *old, json_t *now, uint64_t iid)
{
    qv_terms t = {0};
    int rc = qv_pindex_terms(c, old, NULL, &t);
    if (rc == QV_OK) rc = qv_pindex_del(c, txn, &t, iid);
    qv_terms_release(&t);
    if (rc != QV_OK) return rc;
    rc = qv_pindex_terms(c, now, NULL, &t);
    if (rc == QV_OK) rc = qv_pindex_put(c, txn, &t, iid);
    qv_terms_release(&t);
    return rc;
}

/* Read, change and write the payload of external id `id`. QV_ENOTFOUND (message
 * untouched) when there is no such point. */
static int update_one(qv_db *db, MDB_txn *txn, pupdate_arg *a, uint64_t id)
{
    qv_coll *c = a->c;
    uint8_t key[12];
    MDB_val v;
    json_t *old = NULL, *now = NULL;
    char *text = NULL;
    int rc;

    qv_ckey(key, c->cid, id);
    if ((rc = qv_lmdb_get(txn, db->dbi[DBI_IDS], key, 12, &v)) != QV_OK) return rc;
    if (v.mv_size != 8) return qv_fail(QV_ECORRUPT, "collection '%s': damaged id record", c->name);
    uint64_t iid = qv_be64_get(v.mv_data);
    qv_ckey(key, c->cid, iid);
    rc = qv_lmdb_get(txn, db->dbi[DBI_PAYLOADS], key, 12, &v);
    if (rc == QV_OK) {
        json_error_t err;
        if (!(old = json_loadb(v.mv_data, v.mv_size, 0, &err)) || !json_is_object(old)) {
            rc = qv_fail(QV_ECORRUPT, "collection '%s': stored payload of point %llu is not a JSON object", c->name,
                         (unsigned long long)id);
            goto cleanup;
        }
    } else if (rc != QV_ENOTFOUND) {
        goto cleanup;
    }
    /* a deep copy to change (a removed path may reach into nested objects): the old
     * payload's index entries are removed below */
    if (!(now = old ? json_deep_copy(old) : json_object())) { rc = QV_ENOMEM; goto cleanup; }
    if ((rc = apply(now, a->u, a->merge)) != QV_OK) goto cleanup;
    if (a->indexed && (rc = reindex(c, txn, old, now, iid)) != QV_OK) goto cleanup;
    if (json_object_size(now) == 0) {
        rc = qv_lmdb_del(txn, db->dbi[DBI_PAYLOADS], key, 12);
        if (rc == QV_ENOTFOUND) rc = QV_OK;
    } else if (!(text = json_dumps(now, JSON_COMPACT))) {
        rc = qv_fail(QV_ENOMEM, "out of memory encoding a payload");
    } else {
        rc = qv_lmdb_put(txn, db->dbi[DBI_PAYLOADS], key, 12, text, strlen(text));
    }
cleanup:
    free(text);
    json_decref(old);
    json_decref(now);
    return rc;
}

static int pupdate_write(qv_db *db, MDB_txn *txn, void *arg)
{
    pupdate_arg *a = arg;
    qv_coll *c = a->c;
    int rc;

    a->updated = 0;
    for (size_t i = 0; i < a->n; i++) {
        rc = update_one(db, txn, a, a->ids[i]);
        if (rc == QV_ENOTFOUND && (a->u->flags & QV_PAYLOAD_SKIP_MISSING)) continue;
        if (rc == QV_ENOTFOUND)
            return qv_fail(QV_ENOTFOUND, "collection '%s': no point with id %llu (no payload was changed)", c->name,
                           (unsigned long long)a->ids[i]);
        if (rc != QV_OK) return rc;
        a->updated++;
    }
    if (a->updated == 0) return QV_ENOTFOUND;  /* nothing to do: abort, no seq consumed */
    uint8_t lkey[12], none[4] = {0, 0, 0, 0};
    uint64_t seq = c->last_seq + 1;
    qv_ckey(lkey, c->cid, seq);
    if ((rc = qv_lmdb_put(txn, db->dbi[DBI_LOG], lkey, 12, none, sizeof none)) != QV_OK) return rc;
    return qv_coll_put_state(db, txn, c, seq, c->next_iid, c->count);
}

static int check_keys(const char *what, const char *const *keys, size_t n)
{
    if (n && !keys) return qv_fail(QV_EINVAL, "payload update: %s is NULL but n%s is %zu", what, what, n);
    for (size_t i = 0; i < n; i++)
        if (!keys[i]) return qv_fail(QV_EINVAL, "payload update: %s[%zu] is NULL", what, i);
    return QV_OK;
}

int qv_update_payload(qv_coll *c, size_t n, const uint64_t *ids, const qv_payload_update *u, size_t *n_updated)
{
    pupdate_arg a;
    int rc;

    memset(&a, 0, sizeof a);
    if (n_updated) *n_updated = 0;
    if (!c || !u) return qv_fail(QV_EINVAL, "collection or update is NULL");
    if (n && !ids) return qv_fail(QV_EINVAL, "ids is NULL");
    if (u->flags & ~(unsigned)QV_PAYLOAD_SKIP_MISSING)
        return qv_fail(QV_EINVAL, "payload update: unknown flags 0x%x", u->flags & ~(unsigned)QV_PAYLOAD_SKIP_MISSING);
    if ((rc = check_keys("keep", u->keep, u->nkeep)) != QV_OK) return rc;
    if ((rc = check_keys("remove", u->remove, u->nremove)) != QV_OK) return rc;
    for (size_t i = 0; i < u->nremove; i++) {
        char why[200];
        if (qv_payload_path_check(u->remove[i], why, sizeof why) != QV_OK)
            return qv_fail(QV_EINVAL, "payload update: remove[%zu]: %s", i, why);
    }
    if ((rc = qv_db_check_writable(c->db, "payload update")) != QV_OK) return rc;
    if (u->merge) {
        json_error_t err;
        if (!(a.merge = json_loads(u->merge, JSON_REJECT_DUPLICATES, &err)))
            return qv_fail(QV_EINVAL, "payload is not valid JSON (line %d column %d: %s)", err.line, err.column,
                           err.text);
        if (!json_is_object(a.merge)) {
            json_decref(a.merge);
            return qv_fail(QV_EINVAL, "payload must be a JSON object");
        }
    }
    if (n == 0) goto cleanup;
    a.c = c;
    a.n = n;
    a.ids = ids;
    a.u = u;
    pthread_mutex_lock(&c->db->wmutex);
    for (size_t i = 0; i < c->npfields; i++) a.indexed |= c->pfields[i].built;
    if ((rc = qv_coll_check_live(c)) == QV_OK) rc = qv_db_write(c->db, pupdate_write, &a);
    if (rc == QV_OK) {
        pthread_rwlock_wrlock(&c->maplock);
        c->last_seq++;
        pthread_rwlock_unlock(&c->maplock);
    } else if (rc == QV_ENOTFOUND && a.updated == 0 && (u->flags & QV_PAYLOAD_SKIP_MISSING)) {
        rc = QV_OK;                /* every id was missing: nothing written */
    }
    pthread_mutex_unlock(&c->db->wmutex);
    if (rc == QV_OK && n_updated) *n_updated = a.updated;
cleanup:
    json_decref(a.merge);
    return rc;
}

int qv_set_payload(qv_coll *c, size_t n, const uint64_t *ids, const char *payload_json)
{
    qv_payload_update u;
    qv_payload_update_init(&u);
    if (!payload_json) return qv_fail(QV_EINVAL, "payload is NULL");
    u.merge = payload_json;
    return qv_update_payload(c, n, ids, &u, NULL);
}

int qv_overwrite_payload(qv_coll *c, size_t n, const uint64_t *ids, const char *payload_json)
{
    qv_payload_update u;
    qv_payload_update_init(&u);
    if (!payload_json) return qv_fail(QV_EINVAL, "payload is NULL");
    u.clear = 1;
    u.merge = payload_json;
    return qv_update_payload(c, n, ids, &u, NULL);
}

int qv_delete_payload_keys(qv_coll *c, size_t n, const uint64_t *ids, const char *const *keys, size_t nkeys)
{
    qv_payload_update u;
    qv_payload_update_init(&u);
    u.remove = keys;
    u.nremove = nkeys;
    return qv_update_payload(c, n, ids, &u, NULL);
}

int qv_clear_payload(qv_coll *c, size_t n, const uint64_t *ids)
{
    qv_payload_update u;
    qv_payload_update_init(&u);
    u.clear = 1;
    return qv_update_payload(c, n, ids, &u, NULL);
}
