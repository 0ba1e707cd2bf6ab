/*
 * storage/vec_source.c -- an on_disk collection's float vectors, read from LMDB's map
 * instead of a copy in the heap (issue 15: "for collections the vectors already stored in
 * LMDB's map"; issue 16: "each vector held once"). on_disk is a per-collection switch, off
 * by default (qv_collection_config.on_disk, checked by qv_vectors_def_from: a quantized
 * HNSW, any metric); off, nothing here runs and the index keeps its own copy.
 *
 * The index walks on its code rows and needs float vectors only to re-score its best
 * candidates, and to build and repair the graph. Each `points` record is the external id
 * (8 bytes) then the dim floats, so the vector is read where it lies: mdb_get in a read
 * txn hands out a pointer into the map, valid until that txn ends. A session is that txn,
 * one per thread (thread-local, nesting counted): the index opens one around each search,
 * insert task and repair (qv_vec_source, index/index.h), and a collection's search opens
 * its txn first (before c->maplock, the lock order of storage.h) and lends it to the
 * index, so one query reads all its vectors from one snapshot.
 *
 * Why it is safe:
 *   - Map growth: a txn holds db->envlock shared (lmdb_util.c) and mdb_env_set_mapsize
 *     runs under it exclusive, so the map cannot move while a session holds a pointer.
 *   - Writers: LMDB's MVCC keeps the pages a read txn sees until it ends; a concurrent
 *     upsert or delete writes new pages. A point deleted after the index's view is
 *     missing (NULL): the index scores it +inf, and the collection drops it anyway.
 *   - Alignment: a leaf node is an 8-byte header, the 12-byte key and the 8 + 4 * dim
 *     byte value (8 more for cosine), 28 + 4 * dim (+ 8) bytes: a multiple of 4, and nodes are packed down from the
 *     (4 KiB-aligned) page end, so every value of `points` sits at 4-byte alignment and
 *     its floats at value + 8 too; a value too big for a leaf (dim > ~500) lives on
 *     overflow pages, after a 16-byte page header. get() still checks and refuses (NULL,
 *     counted in qv_vec_source_misaligned) a pointer that is not, rather than cast it.
 *   - Cosine: the index scores unit vectors, so an on_disk cosine collection's records
 *     hold the unit vector (and the norm after it, for qv_get: point_rec.c); get() hands
 *     them out in place like any other, with no normalized copy per read.
 *
 * When: every snapshot of such an index holds graph and codes only (so a restart maps it
 * in place), and the index takes the source -- dropping its heap copy -- when it comes
 * back non-empty from a snapshot or a rebuild: a server that restarts holds each vector
 * once. An index that starts empty (a new collection, or one created by another process)
 * keeps its heap copy while it is loaded, until the next open: an insert reads thousands of
 * vectors (the walk and the neighbour selection are in floats), and through LMDB each read
 * is a B-tree lookup: sift-debian-100k sq8 imported in 54 s that way, 9.4 s from the heap.
 * Inserts into an index that reads from LMDB walk on kept 8-bit build codes once a stream
 * of them reaches 1,000 points (hnsw_build_codes.c), so only the re-scoring of each walk's
 * pool, the neighbour selection and the back-links read LMDB: 10K inserts into a reopened
 * 90K collection took 1.85 s against 7.20 s walking on LMDB floats (0.89 s in memory).
 *
 * Cost for searches: one B-tree lookup per vector re-scored (4 levels at 1M points)
 * instead of an array index; a query re-scores 20-40. The read txns come from a pool of
 * reset ones (qv_lmdb_read_begin), and the index looks up a chunk of candidates before it
 * scores any (hnsw_codes.c), so their misses overlap. Measured on sift-debian-100k sq8:
 * 0.56x the QPS of an off collection at recall 0.95, 0.83x at 0.999 (bench/RESULTS.md).
 */
#include "storage/storage.h"

#include <stdint.h>

#include "core/error.h"
#include "index/index.h"

typedef struct {
    qv_db *db;
    MDB_txn *txn;
    unsigned depth;
    int lent;                      /* txn is the caller's (qv_vec_session_lend): not ours to end */
} vec_session;

static __thread vec_session tls;
static uint64_t misaligned;        /* atomic; for tests */

uint64_t qv_vec_source_misaligned(void) { return __atomic_load_n(&misaligned, __ATOMIC_RELAXED); }

static int src_begin(void *ctx)
{
    qv_coll *c = ctx;
    if (tls.depth) {
        if (tls.db != c->db) return qv_fail(QV_EINTERNAL, "vector source: a session of another database is open");
        tls.depth++;
        return QV_OK;
    }
    int rc = qv_lmdb_read_begin(c->db, &tls.txn);
    if (rc != QV_OK) return rc;
    tls.db = c->db;
    tls.depth = 1;
    tls.lent = 0;
    return QV_OK;
}

static void src_end(void *ctx)
{
    (void)ctx;
    if (!tls.depth || --tls.depth) return;
    if (!tls.lent) qv_lmdb_read_end(tls.db, tls.txn);
    tls = (vec_session){0};
}

static const float *src_get(void *ctx, uint64_t iid)
{
    const qv_coll *c = ctx;
    uint8_t key[12];
    MDB_val k = {sizeof key, key}, v;
    if (!tls.depth || tls.db != c->db) return NULL;
    qv_ckey(key, c->cid, iid);
    if (mdb_get(tls.txn, c->db->dbi[DBI_POINTS], &k, &v) != 0 || v.mv_size != qv_point_rec_size(c))
        return NULL;
    const uint8_t *p = (const uint8_t *)v.mv_data + 8;
    if ((uintptr_t)p % sizeof(float)) {
        __atomic_add_fetch(&misaligned, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    return (const float *)(const void *)p;
}

int qv_coll_reads_vectors(const qv_coll *c)
{
    /* qv_vectors_def_from allowed on_disk only for a quantized hnsw */
    return c->vdef.on_disk;
}

void qv_coll_use_vec_source(qv_coll *c, qv_index *ix, int drop)
{
    if (!ix || !qv_coll_reads_vectors(c)) return;
    qv_vec_source src = {src_get, src_begin, src_end, c};
    (void)qv_index_set_vector_source(ix, drop ? &src : NULL);   /* 0: keeps its copy (still right) */
}

int qv_vec_session_lend(qv_coll *c, MDB_txn *txn)
{
    if (tls.depth) return 0;                /* already in one (the index nests into it) */
    tls = (vec_session){c->db, txn, 1, 1};
    return 1;
}

void qv_vec_session_return(void)
{
    if (tls.lent && tls.depth == 1) tls = (vec_session){0};
}
