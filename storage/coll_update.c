/*
 * storage/coll_update.c -- qv_collection_update: change the HNSW parameters or the codes
 * of a collection after it was created (Qdrant's updateCollection with hnsw_config or
 * quantization_config).
 *
 * m shapes the graph itself (the link lists are sized by it) and ef_construction the
 * choice of every node's links, so a change only means something for a graph built with
 * the new values; new codes need a codec trained on the points and every row encoded. As
 * Qdrant re-optimizes its segments after such a change, the new config is committed and
 * the index is then rebuilt from the stored vectors at once, and a snapshot of it written
 * so that a reopen loads it: every point, earlier and later ones, is linked and coded with
 * the new values. The rebuild holds the writer lock (searches go on over the old index
 * until the new one replaces it). ef_search, the search-time default the index keeps,
 * takes the same path.
 */
#include "storage/storage.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "index/index.h"

typedef struct {
    qv_coll *c;
    const qv_index_params *p;
} update_arg;

static int update_write(qv_db *db, MDB_txn *txn, void *arg)
{
    update_arg *a = arg;
    char *json = NULL;
    int rc = qv_coll_config_encode(a->c->cid, a->p, a->c->payload_index, &a->c->vdef, &json);
    if (rc != QV_OK) return rc;
    rc = qv_lmdb_put(txn, db->dbi[DBI_COLLECTIONS], a->c->name, strlen(a->c->name), json, strlen(json));
    qv_free(json);
    if (rc != QV_OK) return rc;
    /* the next sequence number, with an empty log entry (nothing to re-sync): the snapshot
     * of the rebuilt graph goes to a new file, never over the one an index may map */
    uint8_t lkey[12], none[4] = {0};
    uint64_t seq = a->c->last_seq + 1;
    qv_ckey(lkey, a->c->cid, seq);
    if ((rc = qv_lmdb_put(txn, db->dbi[DBI_LOG], lkey, 12, none, sizeof none)) != QV_OK) return rc;
    return qv_coll_put_state(db, txn, a->c, seq, a->c->next_iid, a->c->count);
}

int qv_collection_update(qv_coll *c, const qv_collection_changes *ch)
{
    qv_index_params p;
    int rc;
    if (!c || !ch) return qv_fail(QV_EINVAL, "collection or changes is NULL");
    if ((rc = qv_db_check_writable(c->db, "update collection")) != QV_OK) return rc;
    if ((ch->m || ch->ef_construction || ch->ef_search) && c->params.kind != QV_INDEX_HNSW)
        return qv_fail(QV_EINVAL, "collection '%s' is %s: m, ef_construction and ef_search apply to hnsw collections",
                       c->name, qv_index_kind_name(c->params.kind));
    if (ch->m && (ch->m < 2 || ch->m > 100)) return qv_fail(QV_EINVAL, "m must be 2..100, got %u", ch->m);
    if (ch->ef_construction > QV_MAX_EF)
        return qv_fail(QV_EINVAL, "ef_construction must be 1..%u, got %u", QV_MAX_EF, ch->ef_construction);
    if (ch->ef_search > QV_MAX_EF) return qv_fail(QV_EINVAL, "ef_search must be 1..%u, got %u", QV_MAX_EF, ch->ef_search);
    if (ch->set_quant && !qv_quant_name(ch->quant)) return qv_fail(QV_EINVAL, "unknown quantization %d", (int)ch->quant);
    /* on_disk vectors are read only to re-score a walk on codes (vec_source.c) */
    if (ch->set_quant && ch->quant == QV_QUANT_NONE && c->vdef.on_disk)
        return qv_fail(QV_EINVAL, "collection '%s' keeps its vectors on disk, which needs quantization (sq8, sq4 or "
                                  "bit1): its codes cannot be dropped", c->name);
    if (ch->set_quant && ch->quant != QV_QUANT_NONE && c->vdef.no_dense)
        return qv_fail(QV_EINVAL, "collection '%s' has no dense vector to quantize", c->name);
    pthread_mutex_lock(&c->db->wmutex);
    if ((rc = qv_coll_check_live(c)) != QV_OK) goto cleanup;
    p = c->params;
    if (ch->m) p.m = ch->m;
    if (ch->ef_construction) p.ef_construction = ch->ef_construction;
    if (ch->ef_search) p.ef_search = ch->ef_search;
    if (ch->set_quant) p.quant = ch->quant;
    if (memcmp(&p, &c->params, sizeof p) == 0) goto cleanup;          /* nothing changes */
    /* every parameter checked together, as a create does, before anything is written */
    qv_index *probe = NULL;
    if ((rc = qv_index_new(&p, &probe)) != QV_OK) goto cleanup;
    qv_index_free(probe);
    update_arg a = {c, &p};
    if ((rc = qv_db_write(c->db, update_write, &a)) != QV_OK) goto cleanup;
    pthread_rwlock_wrlock(&c->maplock);
    /* Only the fields an update changes: a write's checks read dim and metric before it
     * takes the writer mutex, so the struct as a whole is not this lock's alone. */
    c->params.m = p.m;
    c->params.ef_construction = p.ef_construction;
    c->params.ef_search = p.ef_search;
    c->params.quant = p.quant;
    c->last_seq++;
    pthread_rwlock_unlock(&c->maplock);
    if ((rc = qv_coll_rebuild(c, NULL)) != QV_OK) {
        /* committed: the next use rebuilds (the config is the source of truth) */
        __atomic_store_n(&c->need_rebuild, 1, __ATOMIC_RELEASE);
        goto cleanup;
    }
    if (qv_snapshot_write(c) != QV_OK) {
        pthread_rwlock_wrlock(&c->maplock);
        qv_coll_warn(c, "collection '%s': snapshot after the parameter change failed: %s", c->name, qv_last_error());
        pthread_rwlock_unlock(&c->maplock);
    }
cleanup:
    pthread_mutex_unlock(&c->db->wmutex);
    return rc;
}
