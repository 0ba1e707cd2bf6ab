/*
 * storage/storage.h -- private header of the storage layer (qv_db, qv_coll on LMDB).
 *
 * On-disk layout: one LMDB environment per database directory, with a fixed set of named
 * databases shared by all collections. Every per-collection key starts with the
 * collection's id (cid, u32 big-endian), so integer keys sort numerically and one cursor
 * range covers one collection:
 *   meta         "format" -> u32 BE format version; "next_cid" -> u32 BE
 *   collections  name -> config JSON (format, cid, dim, metric, index params, payload_index)
 *   state        cid -> last_seq u64, next_iid u64, count u64 (big-endian)
 *   ids          cid | external id (u64 BE) -> internal id (u64 BE)
 *   points       cid | internal id (u64 BE) -> external id (u64 BE) + dim floats (native)
 *   payloads     cid | internal id -> compact JSON object text
 *   freeids      cid | internal id -> "" (internal ids freed by deletes, reused lowest first)
 *   log          cid | seq (u64 BE) -> u32 n + n internal ids (u64 BE) touched by write seq
 *   snapshots    cid -> "QVSN", u32 version (2), u64 seq covered, u64 index file bytes,
 *                u32 its trailing CRC, u32 the ids file's CRC, u64 ids file bytes: the record
 *                of the snapshot FILES <dir>/snapshots/<cid>-<seq>.qv (the index,
 *                qv_index_save_file) and <cid>-<seq>.qv.ids (ext_of and live; snapshot.c)
 *   pindex       cid | field | typed value | internal id -> "" (the payload index, kept in
 *                the same write txn as the payloads; layout in storage/filter.h)
 *   aliases      alias name -> collection name (alias.c); a name is never both
 * The log holds only the writes after the last snapshot (a checkpoint trims it), so
 * reopening is: open the snapshot file in place, re-sync the internal ids the log names,
 * done. A missing, damaged or inconsistent snapshot (or a gap in the log) means a rebuild
 * from `points`: the stored points are the source of truth, snapshots only a shortcut.
 *
 * Locking (see db.c for the full story):
 *   db->wmutex    one writer at a time: every LMDB write txn, collection load/create/drop,
 *                 checkpoint, rebuild. Every writer checks c->dropped under it.
 *   db->colls_lock  the table of open collections and each one's users and dropped fields;
 *                 held only for a lookup or an update of them (innermost: no other lock is
 *                 taken while it is held), so opening an open collection never waits for
 *                 a writer.
 *   db->envlock   rwlock: every LMDB txn holds it shared; growing the map holds it
 *                 exclusive (mdb_env_set_mapsize needs no txn active in the process).
 *   c->maplock    rwlock over the in-memory side of a collection (ext_of/live arrays,
 *                 the index pointer, counters): searches hold it shared for the whole
 *                 search; a writer holds it exclusive only for a few assignments.
 * Order: wmutex -> envlock -> maplock, and colls_lock innermost. The index does its own
 * locking for add/search.
 *
 * Lifetimes: a collection stays in db->colls from its first open (or create) until it is
 * dropped or the db is closed. Each qv_collection_open/create(out) counts one user, each
 * qv_collection_close one less. Drop marks it dropped (every later call on it answers
 * QV_ENOTFOUND) and frees it at once when it has no user, else at its last close; calls
 * already running finish on the memory they have. qv_db_close frees every collection.
 */
#ifndef QV_STORAGE_STORAGE_H
#define QV_STORAGE_STORAGE_H

#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "quiver.h"

#define QV_STORAGE_FORMAT 1u        /* meta "format"; bump on any layout change */
#define QV_COLL_CONFIG_FORMAT 1u    /* "format" field of a collection's config JSON */
#define QV_COLL_CONFIG_FORMAT_QUANT 2u   /* the same with "index":{"quant":...} */
#define QV_COLL_CONFIG_FORMAT_VECTORS 3u /* the same with "vectors" (named, sparse) */
#define QV_COLL_CONFIG_FORMAT_ON_DISK 4u /* the same with "vectors":{"on_disk":true} */
#define QV_SNAPSHOT_MAGIC "QVSN"
#define QV_SNAPSHOT_VERSION 2u      /* 1: the index blob inside the record (rebuilt on open) */
#define QV_SNAPSHOT_RECORD 40u      /* magic, version, seq, index bytes, crc, ids crc, bytes */
#define QV_SNAPSHOT_DIR "snapshots"

/* Internal return code: the LMDB map is full; the write loop grows it and retries.
 * Never returned to a caller of the public API. */
#define QV_SE_MAPFULL (-1000)

enum {
    DBI_META, DBI_COLLECTIONS, DBI_STATE, DBI_IDS, DBI_POINTS, DBI_PAYLOADS, DBI_FREEIDS,
    DBI_LOG, DBI_SNAPSHOTS, DBI_PINDEX, DBI_ALIASES, DBI_COUNT
};

enum { QV_RPOOL_MAX = 64 };

struct qv_db {
    MDB_env *env;
    MDB_dbi dbi[DBI_COUNT];
    pthread_mutex_t wmutex;
    pthread_rwlock_t envlock;
    qv_db_options opt;
    char *path;
    dev_t dev;
    ino_t ino;
    pthread_mutex_t colls_lock;    /* colls, and users/dropped of each */
    qv_coll **colls;               /* open collections, dropped ones with users included */
    size_t ncolls, cap_colls;
    uint64_t map_grows;            /* under wmutex */
    int has_pindex;                /* 0: read-only database written before "pindex" existed */
    int has_aliases;               /* 0: read-only database written before "aliases" existed */
    int lockfd;                    /* writable: data.mdb again, holding flock(LOCK_SH) (db.c) */
    /* Reset read txns kept for reuse (qv_lmdb_read_begin): an on_disk collection's
     * search renews one instead of beginning a txn (lmdb_util.c says why) */
    pthread_mutex_t rpool_lock;
    MDB_txn *rpool[QV_RPOOL_MAX];
    size_t nrpool;                 /* under rpool_lock */
    int rpool_ready;               /* rpool_lock initialized */
};

/* The vectors of a collection beyond its one dense vector's dim and metric (issue 22):
 * the dense vector's name in the Qdrant API and the sparse vectors (sparse.c). Fixed at
 * creation; stored in the config record as "vectors" (config.c). */
typedef struct {
    char name[QV_SPARSE_NAME_MAX + 1];
    int idf;
} qv_sparse_def;
typedef struct {
    int named;                     /* the dense vector has a name (maybe "") */
    int no_dense;                  /* only sparse vectors: the dense one is a stand-in */
    int on_disk;                   /* the dense vectors are read from `points` (vec_source.c) */
    char name[QV_SPARSE_NAME_MAX + 1];
    size_t nsparse;
    qv_sparse_def sparse[QV_MAX_SPARSE_VECTORS];
} qv_vectors_def;

/* Counters of what opening / running a collection did; for tests and diagnostics. */
typedef struct {
    uint64_t snapshot_loads;       /* opens served by a snapshot */
    uint64_t replayed_writes;      /* log entries replayed after a snapshot */
    uint64_t rebuilds;             /* full rebuilds from the stored vectors */
    uint64_t damaged_snapshots;    /* snapshots rejected as damaged or inconsistent */
    uint64_t checkpoints;          /* snapshots written */
    uint64_t verified_snapshots;   /* snapshots opened in place and then verified whole */
    uint64_t map_grows;            /* LMDB map resizes (db-wide, copied in) */
    uint64_t ivf_trainings;        /* ivf collections: trainings done since open */
    int ivf_trained;               /* ivf collections: 1 once trained (copied in) */
    char warning[256];             /* last warning (damaged snapshot ...), "" if none */
} qv_storage_stats;

/* One field of a collection's payload index. */
typedef struct {
    char *name;
    char type[8];                  /* "keyword", "integer", "float", "bool" */
    int built;                     /* its entries in "pindex" are complete */
} qv_pfield;

struct qv_coll {
    qv_db *db;
    uint64_t users;                /* opens not yet closed (under db->colls_lock) */
    int dropped;                   /* set under wmutex + colls_lock; read atomically */
    char name[72];
    uint32_t cid;
    qv_index_params params;        /* as configured (zero = default) */
    char *payload_index;           /* compact JSON or NULL */
    qv_vectors_def vdef;           /* dense vector name, sparse vectors (fixed) */
    qv_sparse_config sparse_pub[QV_MAX_SPARSE_VECTORS];   /* vdef's, as get_info shows them */
    /* Earlier payload_index strings: qv_collection_get_info hands out the pointer, so a
     * replaced string lives until the collection is freed (one per field change). */
    char **retired_pi;
    size_t nretired_pi;
    qv_pfield *pfields;            /* parsed payload_index (changed under wmutex + maplock) */
    size_t npfields;
    qv_index *ix;
    pthread_rwlock_t maplock;
    uint64_t *ext_of;              /* internal id -> external id */
    uint64_t *live;                /* bitset over internal ids */
    size_t cap;                    /* capacity of ext_of / live (bits) */
    uint64_t last_seq, next_iid, count, snap_seq;
    int has_snapshot;
    uint32_t writes_since_ckpt;
    int need_rebuild;              /* the index missed a committed write (ENOMEM) */
    uint64_t pfields_gen;          /* bumped when pfields change (under maplock exclusive) */
    pthread_mutex_t fcache_lock;   /* guards fcache (filter_plan.c): last allowed sets */
    void *fcache;
    uint64_t fcache_tick;
    int ivf_trained;               /* kind ivf: trained (else c->ix is flat); under wmutex */
    uint32_t ivf_nlist;            /* the nlist it was trained with */
    qv_storage_stats stats;
    /* A snapshot opened in place is verified whole by a thread of its own (snapshot.c),
     * joined before c->ix is replaced or c freed. It takes no storage lock. */
    pthread_t verify_thread;
    int verify_running;            /* started and not yet joined (under wmutex) */
    int snap_damaged;              /* atomic: it found the snapshot damaged (write a new one) */
};

/* ---- big-endian keys ------------------------------------------------------------------ */
static inline void qv_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint32_t qv_be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void qv_be64_put(uint8_t *p, uint64_t v)
{
    qv_be32_put(p, (uint32_t)(v >> 32));
    qv_be32_put(p + 4, (uint32_t)v);
}
static inline uint64_t qv_be64_get(const uint8_t *p)
{
    return (uint64_t)qv_be32_get(p) << 32 | qv_be32_get(p + 4);
}
/* A per-collection key: cid | x. */
static inline void qv_ckey(uint8_t key[12], uint32_t cid, uint64_t x)
{
    qv_be32_put(key, cid);
    qv_be64_put(key + 4, x);
}

/* ---- lmdb_util.c: the only file that interprets MDB_* return codes ---------------------
 * Every function returns QV_OK or a QV_E* code (QV_SE_MAPFULL for a full map) and sets the
 * message; "what" names the operation for it. Lookups that miss return QV_ENOTFOUND
 * WITHOUT touching the message (a miss is usually not an error). */
int  qv_lmdb_error(int mdb_rc, const char *what);
int  qv_lmdb_env_open(qv_db *db, const char *dir, size_t map_bytes, uint32_t max_readers);
void qv_lmdb_env_close(qv_db *db);
/** Begin a txn under db->envlock (held shared until commit/abort). */
int  qv_lmdb_begin(qv_db *db, int rdonly, MDB_txn **out);
int  qv_lmdb_commit(qv_db *db, MDB_txn *txn);
/** A read txn like qv_lmdb_begin(db, 1, ..), renewed from db's pool of reset txns when it
 *  has one; end it with qv_lmdb_read_end (which resets it back into the pool). */
int  qv_lmdb_read_begin(qv_db *db, MDB_txn **out);
void qv_lmdb_read_end(qv_db *db, MDB_txn *txn);          /* NULL ok */
void qv_lmdb_abort(qv_db *db, MDB_txn *txn);            /* NULL ok */
/** Grow the map to at least twice its size (exclusive envlock; no txn of ours active). */
int  qv_lmdb_grow(qv_db *db);
size_t qv_lmdb_map_size(qv_db *db);
/** Bytes of the map in use (up to the last page ever used); 0 when LMDB cannot say. */
size_t qv_lmdb_used_bytes(qv_db *db);
int  qv_lmdb_dbi_open(MDB_txn *txn, const char *name, int create, MDB_dbi *out);
/** Names of the named databases in the main db (each a key there); for the foreign check.
 *  *bad receives the first key that is not in allowed[] (copied into buf) or stays 0. */
int  qv_lmdb_check_main(MDB_txn *txn, const char *const *allowed, size_t nallowed, int *empty,
                        char *bad, size_t badlen);
int  qv_lmdb_get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, MDB_val *v);
int  qv_lmdb_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl);
/** Put with MDB_APPEND (pages filled, no splits) when k sorts after every key of dbi,
 *  else an ordinary put. For loading records in key order. */
int  qv_lmdb_put_append(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl);
/** Reserve vl bytes for key k; *p receives the place to write them before the txn ends. */
int  qv_lmdb_reserve(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, size_t vl, void **p);
int  qv_lmdb_del(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl);   /* ENOTFOUND if absent */
/* Prefix iteration: first/next entry whose key starts with prefix (plen bytes) and is >=
 * start (slen bytes, start begins with prefix). QV_ENOTFOUND at the end. */
int  qv_lmdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **out);
void qv_lmdb_cursor_close(MDB_cursor *cur);              /* NULL ok */
int  qv_lmdb_seek(MDB_cursor *cur, const void *start, size_t slen, size_t plen, MDB_val *k, MDB_val *v);
int  qv_lmdb_next(MDB_cursor *cur, const void *prefix, size_t plen, MDB_val *k, MDB_val *v);
int  qv_lmdb_cursor_del(MDB_cursor *cur);
/** Delete every key of dbi starting with prefix. */
int  qv_lmdb_del_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t plen);

/** Run fn inside one write txn, growing the map and retrying the whole txn on MDB_MAP_FULL.
 *  fn must be retry-safe (no side effects outside the txn and its own output arrays).
 *  Caller holds db->wmutex. Commits when fn returns QV_OK, aborts otherwise. */
typedef int (*qv_write_fn)(qv_db *db, MDB_txn *txn, void *arg);
int  qv_db_write(qv_db *db, qv_write_fn fn, void *arg);
/** QV_OK, or QV_ESTATE when the db was opened read-only (message names op). */
int  qv_db_check_writable(qv_db *db, const char *op);
/** Whether this process is the only one with the db open for writing: every writable open
 *  holds flock(LOCK_SH) on data.mdb; this tries to turn it into LOCK_EX without waiting.
 *  QV_OK holding LOCK_EX (until qv_db_writer_shared), or QV_ESTATE naming op and what
 *  (another process's loaded collections would go on writing to what op deletes).
 *  Caller holds db->wmutex (one process's threads share the lock). */
int  qv_db_sole_writer(qv_db *db, const char *op, const char *what);
/** Back to LOCK_SH after qv_db_sole_writer; caller holds db->wmutex. */
void qv_db_writer_shared(qv_db *db);

/* ---- config.c ---------------------------------------------------------------------------- */
/** Validate a payload_index JSON; *compact (qv_free) gets its compact form, NULL for NULL. */
int  qv_payload_index_check(const char *json, char **compact);
/** Encode / decode a collection's config record (vd NULL on encode: no "vectors"). */
int  qv_coll_config_encode(uint32_t cid, const qv_index_params *p, const char *payload_index,
                           const qv_vectors_def *vd, char **out);
int  qv_coll_config_decode(const char *name, const void *buf, size_t len, uint32_t *cid,
                           qv_index_params *p, char **payload_index, qv_vectors_def *vd);

/* ---- sparse.c: sparse vectors (layout in sparse.c's header) ----------------------------- */
/** Check and copy the vector part of a create's config into *vd. */
int  qv_vectors_def_from(const qv_collection_config *cfg, qv_vectors_def *vd);
/** Check n points' sparse vectors (n * vd.nsparse entries) against c. */
int  qv_sparse_check(const qv_coll *c, size_t n, const uint64_t *ids, const qv_sparse_vector *sv);
/** Store point iid's sparse vectors row[0..nsparse) (postings and the point's record). */
int  qv_sparse_put(qv_coll *c, MDB_txn *txn, uint64_t iid, const qv_sparse_vector *row);
/** Remove every sparse vector of point iid (none stored: nothing to do). */
int  qv_sparse_unindex(qv_coll *c, MDB_txn *txn, uint64_t iid);
/** Slot of sparse vector name in c, or -1. */
int  qv_sparse_slot(const qv_coll *c, const char *name);

/* ---- alias.c ----------------------------------------------------------------------------- */
/** The collection alias name points at, into buf (cap >= 65), in txn. QV_ENOTFOUND (no
 *  message) when name is no alias. */
int  qv_alias_get(qv_db *db, MDB_txn *txn, const char *name, char *buf, size_t cap);
/** Delete every alias of collection name in write txn txn (a drop's). */
int  qv_alias_drop_target(qv_db *db, MDB_txn *txn, const char *name);

/* ---- points.c ---------------------------------------------------------------------------- */
/** Write the state record of c (last seq, next internal id, live count) in write txn txn. */
int  qv_coll_put_state(qv_db *db, MDB_txn *txn, const qv_coll *c, uint64_t seq, uint64_t next, uint64_t count);

/* ---- collection.c ------------------------------------------------------------------------ */
/** Take the next collection id (meta "next_cid") in write txn txn: a create's, a restore's. */
int  qv_coll_next_cid(qv_db *db, MDB_txn *txn, uint32_t *cid);
/** QV_OK when adding more names fit under max_collections, else QV_EFULL naming what. */
int  qv_coll_room(qv_db *db, MDB_txn *txn, size_t adding, const char *what);
/** Free an open collection's memory (not its data). NULL ok. */
void qv_coll_free(qv_coll *c);
/** QV_OK, or QV_ENOTFOUND "collection 'x' was dropped" (the message set) for a handle
 *  whose collection was dropped. Writers call it with wmutex held, readers on entry. */
int  qv_coll_check_live(const qv_coll *c);
/** Delete every record of collection cid (not its name's record) in write txn txn. */
int  qv_coll_delete_data(qv_db *db, MDB_txn *txn, uint32_t cid);
/** After a commit that took the name away from the open collection called name (drop,
 *  a restore that replaced it): mark that handle dropped. Returns it when no user holds
 *  it any more (free it with qv_coll_free), else NULL. Caller holds wmutex. */
qv_coll *qv_coll_retire(qv_db *db, const char *name);
/** Load a handle of the collection whose config record is cfg (a NUL-terminated JSON
 *  text naming its cid), as its records are now, under name -- without it being in the
 *  table of open collections or name pointing at it yet (a restore checks the staged
 *  collection loads before it commits). Free it with qv_coll_free, or qv_coll_attach. */
int  qv_coll_load_detached(qv_db *db, const char *name, const char *cfg, qv_coll **out);
/** Put a detached handle into the table once its name points at it (wmutex held).
 *  On failure the caller still owns c (a later open loads the collection again). */
int  qv_coll_attach(qv_db *db, qv_coll *c);
/** (Re)build c->ix from the stored points (caller holds wmutex). */
int  qv_coll_rebuild(qv_coll *c, const char *why);
/** Make sure the index is consistent before use: rebuild if marked (takes wmutex). */
int  qv_coll_ensure_index(qv_coll *c);
/** Grow ext_of/live to hold internal ids < n (caller holds maplock exclusive). */
int  qv_coll_reserve_ids(qv_coll *c, uint64_t n);
/** Record a warning (kept in c->stats.warning); caller holds c->maplock exclusive or
 *  c is not yet visible to other threads. */
void qv_coll_warn(qv_coll *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Build a fresh index out of every stored point of c (an ivf collection: flat until
 *  trained, else trained on a sample first), in read or write txn txn. */
int  qv_coll_build_index(qv_coll *c, MDB_txn *txn, qv_progress_fn progress, void *arg, qv_index **out);

/* ---- ivf_coll.c -------------------------------------------------------------------------- */
/** Read the training record of an ivf collection (c->ivf_trained / ivf_nlist). */
int  qv_coll_ivf_load(qv_coll *c, MDB_txn *txn);
/** The kind c->ix has: flat for an ivf collection not trained yet. */
qv_index_kind qv_coll_effective_kind(const qv_coll *c);
/** An empty index of the effective kind (trained on a sample of txn's points for ivf). */
int  qv_coll_new_index(qv_coll *c, MDB_txn *txn, qv_progress_fn progress, void *arg, qv_index **out);
/** After a committed write (wmutex held): train an ivf collection that reached its
 *  training size. A failure is a warning; the flat index stays. */
void qv_coll_maybe_train(qv_coll *c);

/* ---- snapshot.c -------------------------------------------------------------------------- */
/** Write a snapshot of c->ix covering c->last_seq and trim the log (caller holds wmutex). */
int  qv_snapshot_write(qv_coll *c);
/** Load the index from the snapshot and replay the log after it, in read txn txn.
 *  QV_OK: c->ix set. QV_ECORRUPT: snapshot missing/damaged/inconsistent (c->ix NULL,
 *  caller rebuilds). Other codes are real failures (ENOMEM, EIO). */
int  qv_snapshot_load(qv_coll *c, MDB_txn *txn);
/** qv_checkpoint with wmutex held: rebuild if marked, then snapshot unless clean. */
int  qv_coll_checkpoint_locked(qv_coll *c);
/** Start verifying c->ix in the background if it was opened in place and nothing has
 *  verified it yet (wmutex held, or c not yet shared). A failure marks c for rebuild. */
void qv_snapshot_verify_start(qv_coll *c);
/** Wait for that verification (wmutex held, or c private); safe when none runs. */
void qv_snapshot_verify_join(qv_coll *c);
/** Remove snapshot files of c other than the one its record names (or all of them when
 *  keep_seq is UINT64_MAX); errors are ignored (a leftover file only costs disk). */
void qv_snapshot_files_sweep(qv_db *db, uint32_t cid, uint64_t keep_seq);
/** Backups (backup_index.c): the path of collection cid's snapshot file for seq (its id
 *  table when ids) into buf; make the snapshots directory. */
int  qv_snapshot_path(const qv_db *db, uint32_t cid, uint64_t seq, int ids, char *buf, size_t len);
int  qv_snapshot_mkdir(const qv_db *db);
/** Open the index file that cid's snapshot record in txn names (read-only, *fd); *seq,
 *  *size and *crc from the record. QV_ENOTFOUND: no record, or its file is gone. */
int  qv_snapshot_open_file(qv_db *db, MDB_txn *txn, uint32_t cid, int *fd, uint64_t *seq, uint64_t *size,
                           uint32_t *crc);
/** A restore: with the index file of (cid, seq) in place, write its id table from the
 *  `ids` records and state record as txn sees them, and put the snapshot record in txn. */
int  qv_snapshot_install(qv_db *db, MDB_txn *txn, uint32_t cid, uint64_t seq);

/* ---- backup_restore.c -------------------------------------------------------------------- */
/** Remove the data of restores that never finished (a crash between staging and the
 *  final commit): called by qv_db_open on a writable db. */
int  qv_bk_sweep_staged(qv_db *db);

/* ---- point_rec.c ------------------------------------------------------------------------- */
/** Whether c's `points` records hold unit vectors and their norms (on_disk cosine). */
int    qv_point_rec_keeps_unit(const qv_coll *c);
/** Bytes of one of c's `points` records: 8 (external id) + 4 * dim (+ 8, the norm). */
size_t qv_point_rec_size(const qv_coll *c);
/** Write the record of (ext, vec) at rec (qv_point_rec_size bytes); unit: dim floats of
 *  scratch, used when qv_point_rec_keeps_unit. The floats at rec + 8 are what the index
 *  scores: the vector as given, or its unit vector. */
void   qv_point_rec_put(const qv_coll *c, void *rec, uint64_t ext, const float *vec, float *unit);
/** The vector as given (to one float rounding for unit records) of a record, into out. */
void   qv_point_rec_vector(const qv_coll *c, const void *rec, float *out);

/* ---- vec_source.c ------------------------------------------------------------------------ */
/** Whether c's index reads its float vectors from `points` (on_disk: a quantized hnsw). */
int  qv_coll_reads_vectors(const qv_coll *c);
/** Tell ix (c's index) that c's `points` keep its float vectors: with `drop`, it reads
 *  them from there and drops its own copy; without, it keeps the copy (fast inserts while
 *  loading) and only saves without it. A no-op unless qv_coll_reads_vectors(c). */
void qv_coll_use_vec_source(qv_coll *c, qv_index *ix, int drop);
/** Lend the calling thread's read txn to the vector source for one search: 1 when lent
 *  (give it back with qv_vec_session_return before ending txn), 0 when a session was
 *  already open in this thread. */
int  qv_vec_session_lend(qv_coll *c, MDB_txn *txn);
void qv_vec_session_return(void);
/** Vectors refused because LMDB handed them out misaligned (tests: always 0). */
uint64_t qv_vec_source_misaligned(void);

/* ---- for tests and diagnostics ---------------------------------------------------------- */
/** Copy the collection's counters (the map_grows field is the db's). */
void qv_storage_get_stats(qv_coll *c, qv_storage_stats *out);

#endif
