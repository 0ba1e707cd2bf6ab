/*
 * storage/sparse.h -- private: the records of sparse vectors in LMDB (sparse.c, whose
 * header has the layout) and the sparse search (sparse_search.c).
 */
#ifndef QV_STORAGE_SPARSE_H
#define QV_STORAGE_SPARSE_H

#include "storage/storage.h"

/** Write cid | 0x00 | 's' | slot | kind into key (>= 8 bytes); returns 8. */
size_t qv_sparse_key(uint8_t *key, uint32_t cid, size_t slot, uint8_t kind);
/** 0 when v is a valid sparse vector, else -1 with why filled. */
int  qv_sparse_vector_check(const qv_sparse_vector *v, char *why, size_t len);
/** Point iid's vector slot copied out of txn (*idx, *val: qv_free; *n 0 and NULLs: none). */
int  qv_sparse_read(qv_coll *c, MDB_txn *txn, size_t slot, uint64_t iid, uint32_t **idx, float **val, uint32_t *n);

#endif
