/*
 * storage/sparse.c -- sparse vectors: the config check, and their records in LMDB.
 *
 * Sparse vectors live in the payload index table ("pindex"), under the one key space a
 * payload field can never take (flen 0; a field name is 1..QV_PFIELD_MAX bytes, and the
 * key cid | 0x00 alone is the "built" record, storage/filter.h). So they are written in
 * the same write txn as the point, dropped with the collection (the cid prefix), and
 * carried by backups and restores with the rest of the table, without a new LMDB table or
 * a layout change. Slot j is the collection's sparse vector number j (fixed at creation):
 *   cid | 0x00 | 's' | j | 'v' | iid (u64 BE)              -> u32 n, n u32 indices, n f32
 *                                                             values (native): the point's vector
 *   cid | 0x00 | 's' | j | 'p' | index (u32 BE) | iid (BE) -> f32 value: the postings
 *   cid | 0x00 | 's' | j | 'N'                             -> u64 points holding vector j
 * The 'v' record lets an upsert or delete find the postings to remove; the postings of
 * one index come out of a cursor sorted by internal id; 'N' is the idf's N.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "storage/sparse.h"

size_t qv_sparse_key(uint8_t *key, uint32_t cid, size_t slot, uint8_t kind)
{
    qv_be32_put(key, cid);
    key[4] = 0;
    key[5] = 's';
    key[6] = (uint8_t)slot;
    key[7] = kind;
    return 8;
}

int qv_sparse_slot(const qv_coll *c, const char *name)
{
    for (size_t j = 0; name && j < c->vdef.nsparse; j++)
        if (strcmp(c->vdef.sparse[j].name, name) == 0) return (int)j;
    return -1;
}

int qv_vectors_def_from(const qv_collection_config *cfg, qv_vectors_def *vd)
{
    memset(vd, 0, sizeof *vd);
    if (cfg->vector_name) {
        if (strlen(cfg->vector_name) > QV_SPARSE_NAME_MAX)
            return qv_fail(QV_EINVAL, "vector name must be at most %u bytes", QV_SPARSE_NAME_MAX);
        vd->named = 1;
        snprintf(vd->name, sizeof vd->name, "%s", cfg->vector_name);
    }
    if (cfg->n_sparse > QV_MAX_SPARSE_VECTORS)
        return qv_fail(QV_EINVAL, "at most %u sparse vectors, got %zu", QV_MAX_SPARSE_VECTORS, cfg->n_sparse);
    if (cfg->n_sparse && !cfg->sparse) return qv_fail(QV_EINVAL, "n_sparse is %zu but sparse is NULL", cfg->n_sparse);
    for (size_t i = 0; i < cfg->n_sparse; i++) {
        const char *n = cfg->sparse[i].name;
        size_t len = n ? strlen(n) : 0;
        if (len < 1 || len > QV_SPARSE_NAME_MAX)
            return qv_fail(QV_EINVAL, "sparse vector %zu: name must be 1..%u bytes", i, QV_SPARSE_NAME_MAX);
        if (vd->named && strcmp(n, vd->name) == 0)
            return qv_fail(QV_EINVAL, "sparse vector '%s' has the name of the dense vector", n);
        for (size_t j = 0; j < i; j++)
            if (strcmp(n, vd->sparse[j].name) == 0) return qv_fail(QV_EINVAL, "sparse vector '%s' is named twice", n);
        snprintf(vd->sparse[i].name, sizeof vd->sparse[i].name, "%s", n);
        vd->sparse[i].idf = cfg->sparse[i].idf != 0;
    }
    vd->nsparse = cfg->n_sparse;
    if (cfg->no_dense && (!cfg->n_sparse || vd->named))
        return qv_fail(QV_EINVAL, "no_dense needs sparse vectors and no dense vector name");
    vd->no_dense = cfg->no_dense != 0;
    /* on_disk: the index re-scores from `points` (vec_source.c; a cosine collection's
     * records hold the unit vectors, point_rec.c). A float index walks on its vectors,
     * too slow through LMDB, and IVF and flat scan them, so those keep theirs in memory. */
    const qv_index_params *ip = &cfg->index;
    if (cfg->on_disk != 0 && cfg->on_disk != 1) return qv_fail(QV_EINVAL, "on_disk must be 0 or 1, got %d", cfg->on_disk);
    if (cfg->on_disk && (ip->kind != QV_INDEX_HNSW || ip->quant == QV_QUANT_NONE))
        return qv_fail(QV_EINVAL, "on_disk vectors need an hnsw index with quantization (sq8, sq4 or bit1); "
                                  "a float hnsw, ivf or flat index keeps its vectors in memory");
    vd->on_disk = cfg->on_disk;
    return QV_OK;
}

int qv_sparse_vector_check(const qv_sparse_vector *v, char *why, size_t len)
{
    if (v->n > QV_MAX_SPARSE_NNZ) {
        snprintf(why, len, "%u entries, at most %u", v->n, QV_MAX_SPARSE_NNZ);
        return -1;
    }
    if (v->n && (!v->indices || !v->values)) {
        snprintf(why, len, "indices or values is NULL");
        return -1;
    }
    for (uint32_t i = 0; i < v->n; i++) {
        if (!isfinite(v->values[i])) {
            snprintf(why, len, "value %u is not finite", i);
            return -1;
        }
        if (i && v->indices[i] <= v->indices[i - 1]) {
            snprintf(why, len, "indices must be strictly increasing (unique, sorted): index %u at %u follows %u",
                     v->indices[i], i, v->indices[i - 1]);
            return -1;
        }
    }
    return 0;
}

int qv_sparse_check(const qv_coll *c, size_t n, const uint64_t *ids, const qv_sparse_vector *sv)
{
    char why[160];
    for (size_t i = 0; sv && i < n; i++)
        for (size_t j = 0; j < c->vdef.nsparse; j++)
            if (qv_sparse_vector_check(&sv[i * c->vdef.nsparse + j], why, sizeof why) != 0)
                return qv_fail(QV_EINVAL, "point %zu (id %llu): sparse vector '%s': %s", i, (unsigned long long)ids[i],
                               c->vdef.sparse[j].name, why);
    return QV_OK;
}

/* Add delta to the count of points holding vector slot. */
static int count_add(qv_coll *c, MDB_txn *txn, size_t slot, int delta)
{
    uint8_t key[8];
    uint64_t n = 0;
    MDB_val v;
    size_t kl = qv_sparse_key(key, c->cid, slot, 'N');
    int rc = qv_lmdb_get(txn, c->db->dbi[DBI_PINDEX], key, kl, &v);
    if (rc == QV_OK && v.mv_size == sizeof n) memcpy(&n, v.mv_data, sizeof n);
    else if (rc != QV_ENOTFOUND) return rc == QV_OK ? qv_fail(QV_ECORRUPT, "collection '%s': damaged sparse count", c->name) : rc;
    if (delta < 0 && n == 0) return qv_fail(QV_ECORRUPT, "collection '%s': sparse count below zero", c->name);
    n += (uint64_t)(int64_t)delta;
    return qv_lmdb_put(txn, c->db->dbi[DBI_PINDEX], key, kl, &n, sizeof n);
}

int qv_sparse_put(qv_coll *c, MDB_txn *txn, uint64_t iid, const qv_sparse_vector *row)
{
    MDB_dbi dbi = c->db->dbi[DBI_PINDEX];
    int rc;
    for (size_t j = 0; j < c->vdef.nsparse; j++) {
        const qv_sparse_vector *sv = &row[j];
        uint8_t key[24];
        void *p;
        if (sv->n == 0) continue;
        size_t kl = qv_sparse_key(key, c->cid, j, 'v');
        qv_be64_put(key + kl, iid);
        if ((rc = qv_lmdb_reserve(txn, dbi, key, kl + 8, 4 + (size_t)sv->n * 8, &p)) != QV_OK) return rc;
        memcpy(p, &sv->n, 4);
        memcpy((uint8_t *)p + 4, sv->indices, (size_t)sv->n * 4);
        memcpy((uint8_t *)p + 4 + (size_t)sv->n * 4, sv->values, (size_t)sv->n * 4);
        kl = qv_sparse_key(key, c->cid, j, 'p');
        for (uint32_t i = 0; i < sv->n; i++) {
            qv_be32_put(key + kl, sv->indices[i]);
            qv_be64_put(key + kl + 4, iid);
            if ((rc = qv_lmdb_put(txn, dbi, key, kl + 12, &sv->values[i], 4)) != QV_OK) return rc;
        }
        if ((rc = count_add(c, txn, j, 1)) != QV_OK) return rc;
    }
    return QV_OK;
}

/* The stored record of point iid's vector slot, copied out (the map pages change under
 * the deletes that follow). *rec NULL when there is none. */
int qv_sparse_read(qv_coll *c, MDB_txn *txn, size_t slot, uint64_t iid, uint32_t **idx, float **val, uint32_t *n)
{
    uint8_t key[24];
    MDB_val v;
    uint32_t m;
    size_t kl = qv_sparse_key(key, c->cid, slot, 'v');
    *idx = NULL;
    *val = NULL;
    *n = 0;
    qv_be64_put(key + kl, iid);
    int rc = qv_lmdb_get(txn, c->db->dbi[DBI_PINDEX], key, kl + 8, &v);
    if (rc == QV_ENOTFOUND) return QV_OK;
    if (rc != QV_OK) return rc;
    if (v.mv_size < 4 || (memcpy(&m, v.mv_data, 4), v.mv_size != 4 + (size_t)m * 8) || m == 0)
        return qv_fail(QV_ECORRUPT, "collection '%s': damaged sparse vector record", c->name);
    if (!(*idx = qv_reallocarray(NULL, m, 4)) || !(*val = qv_reallocarray(NULL, m, 4))) {
        qv_free(*idx);
        *idx = NULL;
        return QV_ENOMEM;
    }
    memcpy(*idx, (const uint8_t *)v.mv_data + 4, (size_t)m * 4);
    memcpy(*val, (const uint8_t *)v.mv_data + 4 + (size_t)m * 4, (size_t)m * 4);
    *n = m;
    return QV_OK;
}

int qv_sparse_unindex(qv_coll *c, MDB_txn *txn, uint64_t iid)
{
    MDB_dbi dbi = c->db->dbi[DBI_PINDEX];
    int rc = QV_OK;
    for (size_t j = 0; rc == QV_OK && j < c->vdef.nsparse; j++) {
        uint32_t *idx, n;
        float *val;
        uint8_t key[24];
        if ((rc = qv_sparse_read(c, txn, j, iid, &idx, &val, &n)) != QV_OK || n == 0) continue;
        size_t kl = qv_sparse_key(key, c->cid, j, 'p');
        for (uint32_t i = 0; rc == QV_OK && i < n; i++) {
            qv_be32_put(key + kl, idx[i]);
            qv_be64_put(key + kl + 4, iid);
            if ((rc = qv_lmdb_del(txn, dbi, key, kl + 12)) == QV_ENOTFOUND)
                rc = qv_fail(QV_ECORRUPT, "collection '%s': sparse posting missing", c->name);
        }
        qv_free(idx);
        qv_free(val);
        kl = qv_sparse_key(key, c->cid, j, 'v');
        qv_be64_put(key + kl, iid);
        if (rc == QV_OK) rc = qv_lmdb_del(txn, dbi, key, kl + 8);
        if (rc == QV_OK) rc = count_add(c, txn, j, -1);
    }
    return rc;
}

int qv_get_sparse(qv_coll *c, uint64_t id, size_t which, uint32_t **indices, float **values, uint32_t *n)
{
    MDB_txn *txn = NULL;
    MDB_val v;
    uint8_t key[12];
    int rc;
    if (indices) *indices = NULL;
    if (values) *values = NULL;
    if (n) *n = 0;
    if (!c || !indices || !values || !n) return qv_fail(QV_EINVAL, "collection, indices, values or n is NULL");
    if ((rc = qv_coll_check_live(c)) != QV_OK) return rc;
    if (which >= c->vdef.nsparse)
        return qv_fail(QV_EINVAL, "collection '%s' has %zu sparse vectors, asked for number %zu", c->name, c->vdef.nsparse,
                       which);
    if ((rc = qv_lmdb_begin(c->db, 1, &txn)) != QV_OK) return rc;
    qv_ckey(key, c->cid, id);
    rc = qv_lmdb_get(txn, c->db->dbi[DBI_IDS], key, 12, &v);
    if (rc == QV_ENOTFOUND) rc = qv_fail(QV_ENOTFOUND, "collection '%s': no point with id %llu", c->name, (unsigned long long)id);
    else if (rc == QV_OK && v.mv_size != 8) rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged id record", c->name);
    if (rc == QV_OK) rc = qv_sparse_read(c, txn, which, qv_be64_get(v.mv_data), indices, values, n);
    qv_lmdb_abort(c->db, txn);
    return rc;
}
