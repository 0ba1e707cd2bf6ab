/*
 * quiver.h -- the one public header of Quiver, a vector similarity search engine.
 *
 * Conventions (they hold for every declaration below):
 *  - Every fallible function returns QV_OK (0) or a negative QV_E* code and leaves a
 *    human-readable detail in qv_last_error() (thread-local). No function prints,
 *    exits or aborts on bad input.
 *  - Inputs are borrowed for the duration of the call; the library copies what it keeps.
 *  - Outputs go to caller-provided arrays unless the comment says "free with qv_free".
 *  - Every _free/_close accepts NULL. Constructors set *out = NULL on failure and leave
 *    nothing to clean up.
 *  - Parameter structs have an _init() that fills defaults; 0 in a numeric field means
 *    "default"; out-of-range values give QV_EINVAL naming the bound (never clamped).
 *
 * Thread safety:
 *  - qv_index: any number of threads may search one index at once, also while one thread
 *    adds or removes; add/remove/train/set_gpu from two threads at once on one index are
 *    not safe (serialize them). Different indexes are independent.
 *  - qv_db and qv_coll: every call may be made from any thread at any time, on the same
 *    handles: the library serializes writers (one write transaction at a time per db) and
 *    lets searches, gets and scrolls run beside them. Every write is all or nothing and,
 *    once it returns QV_OK, seen by every later call on any thread.
 *  - Handle lifetimes: qv_collection_open and qv_collection_create (with out) each count
 *    one user of the collection; qv_collection_close releases one. Dropping a collection
 *    that other threads are using is safe: their calls already running finish, every later
 *    call on the old handle answers QV_ENOTFOUND ("collection 'x' was dropped"), and its
 *    memory goes when its last user closes it. A collection created again under the same
 *    name is a new collection; old handles never see it.
 *  - qv_db_close must be the last call on a db: no call on it or on any of its collection
 *    handles may be running or follow (it frees every handle, closed or not).
 *  - qv_filter: read-only use (search, eval, copy) from many threads at once is safe;
 *    building one (qv_filter_match ...) is not safe concurrently with anything else on it.
 *  - qv_last_error() is per thread.
 */
#ifndef QUIVER_H
#define QUIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: only what is marked QV_API is exported
 * from libquiver.so (nm -D shows the qv_ functions below and nothing else). */
#if defined(__GNUC__)
#define QV_API __attribute__((visibility("default")))
#else
#define QV_API
#endif

#define QV_VERSION "0.1.0"
#define QV_MAX_DIM 65536u   /* largest vector dimension accepted */
#define QV_MAX_K   1024u    /* largest k of one search */
#define QV_MAX_EF  100000u  /* largest ef of a search, ef_search and ef_construction */
#define QV_MAX_OVERSAMPLING 100.0f   /* largest qv_search_params.oversampling */
#define QV_MAX_EXPLORE 4.0f          /* largest qv_search_params.explore */
#define QV_MAX_NORM 1e18     /* largest vector norm accepted (larger ones overflow distances) */
#define QV_MAX_ID  9223372036854775807ull  /* largest point id of a collection (2^63 - 1:
                                              JSON clients read ids as signed 64-bit) */

/* Error codes: stable numbers, never renumbered or reused. */
enum {
    QV_OK        = 0,
    QV_EINVAL    = -1,   /* bad argument: NaN, out-of-range parameter, malformed JSON ... */
    QV_EDIM      = -2,   /* vector dimension does not match */
    QV_ENOMEM    = -3,   /* out of memory */
    QV_ENOTFOUND = -4,   /* no such id, collection or file */
    QV_EEXIST    = -5,   /* already exists */
    QV_ECORRUPT  = -6,   /* damaged or foreign file / snapshot / database */
    QV_EIO       = -7,   /* I/O error from the OS or LMDB */
    QV_EFULL     = -8,   /* disk full or a hard size limit reached */
    QV_ENODEV    = -9,   /* GPU requested but not built or no device */
    QV_ESTATE    = -10,  /* call not valid in this state (e.g. IVF search before training) */
    QV_EINTERNAL = -11   /* broken internal invariant: a bug, please report */
};

/** @return a static string naming the code, e.g. "QV_EDIM: dimension mismatch". */
QV_API const char *qv_strerror(int rc);
/** @return the detail message of this thread's last failure ("" if none). Valid until the
 *  next failing call on this thread. */
QV_API const char *qv_last_error(void);
/** @return the library version string (QV_VERSION). */
QV_API const char *qv_version(void);

typedef struct qv_db     qv_db;      /* an open database directory (one LMDB environment) */
typedef struct qv_coll   qv_coll;    /* an open collection: a counted reference (see below) */
typedef struct qv_index  qv_index;   /* an in-memory index without storage */
typedef struct qv_filter qv_filter;  /* a payload filter (see "Payload filters" below) */

typedef enum { QV_METRIC_L2 = 1, QV_METRIC_IP, QV_METRIC_COSINE } qv_metric;
typedef enum { QV_INDEX_FLAT = 1, QV_INDEX_HNSW, QV_INDEX_IVF } qv_index_kind;
typedef enum { QV_GPU_OFF = 0, QV_GPU_AUTO, QV_GPU_REQUIRE } qv_gpu_mode;
/** Codes an index searches on (qv_index_params.quant). NONE: float32 throughout. SQ8 /
 *  SQ4: per-dimension scalar quantization to 8 / 4 bits, ranges trained per index. BIT1:
 *  1-bit RaBitQ (random rotation, sign bits, unbiased estimator with an error bound).
 *  The float vectors are kept for re-scoring the best candidates exactly. */
typedef enum { QV_QUANT_NONE = 0, QV_QUANT_SQ8, QV_QUANT_SQ4, QV_QUANT_BIT1 } qv_quant;
/** Element type of the vectors an index keeps for exact distances (qv_index_params.vec_type).
 *  F32: float32. U8: one byte per value, for data whose values are all integers 0..255
 *  (image pixels, SIFT descriptors): lossless there, a quarter of the memory and of the
 *  cache lines an exact distance reads; queries stay float and distances are unchanged.
 *  Inserting a value that is not an integer in 0..255 fails with QV_EINVAL (nothing is
 *  rounded). Taken by a quantized HNSW index (quant != NONE) with the l2 or ip metric;
 *  other combinations fail with QV_EINVAL. F16: IEEE half floats, for any data: half the
 *  memory and cache lines of F32; each value is rounded to the nearest half once, on add
 *  (the codes and graph come from the rounded vectors), and a value beyond +-65504 fails
 *  with QV_EINVAL. Taken by a quantized HNSW index with any metric. */
typedef enum { QV_VEC_F32 = 0, QV_VEC_U8, QV_VEC_F16 } qv_vec_type;
/** Re-scoring of a quantized search (qv_search_params.rescore): DEFAULT means ON (the best
 *  ceil(k * oversampling) candidates get float distances); OFF returns the estimates; ALL
 *  re-scores every candidate the beam holds (the codes only steer the walk: Qdrant's
 *  quantization.ignore). */
typedef enum { QV_RESCORE_DEFAULT = 0, QV_RESCORE_ON, QV_RESCORE_OFF, QV_RESCORE_ALL } qv_rescore;

/** One search result. score: l2 = squared Euclidean distance (ascending);
 *  ip = inner product (descending); cosine = cosine similarity (descending). */
typedef struct { uint64_t id; float score; } qv_hit;

/** "l2", "ip", "cosine" / "flat", "hnsw", "ivf". Unknown values give NULL / QV_EINVAL. */
QV_API const char *qv_metric_name(qv_metric m);
QV_API int         qv_metric_parse(const char *s, qv_metric *out);
QV_API const char *qv_index_kind_name(qv_index_kind k);
QV_API int         qv_index_kind_parse(const char *s, qv_index_kind *out);
/** "none", "sq8", "sq4", "bit1". Unknown values give NULL / QV_EINVAL. */
QV_API const char *qv_quant_name(qv_quant q);
QV_API int         qv_quant_parse(const char *s, qv_quant *out);
/** "f32" / "u8"; NULL for an unknown value. */
QV_API const char *qv_vec_type_name(qv_vec_type t);
QV_API int         qv_vec_type_parse(const char *s, qv_vec_type *out);

/** Progress of a long operation (build, k-means, import, checkpoint). Called from the
 *  thread doing the work, at most a few times per second; must be cheap and thread-safe.
 *  total = 0 when unknown. */
typedef void (*qv_progress_fn)(const char *phase, size_t done, size_t total, void *arg);

/* ------------------------------------------------------------------------------------
 * Index level: no storage. Used by quiver-bench and by programs with their own storage.
 * ------------------------------------------------------------------------------------ */

enum { QV_HNSW_KEEP_PRUNED = 1u << 0 };   /* qv_index_params.flags */

typedef struct {
    qv_index_kind kind;
    uint32_t dim;                  /* 1..QV_MAX_DIM */
    qv_metric metric;
    /* hnsw */
    uint32_t m;                    /* links per node above level 0 (2m at level 0); 0 = 16; 2..100 */
    uint32_t ef_construction;      /* 0 = 200 */
    uint32_t ef_search;            /* default ef of a query; 0 = 64 */
    /* ivf */
    uint32_t nlist;                /* 0 = about 4*sqrt(n) chosen at train time */
    uint32_t nprobe;               /* default nprobe of a query; 0 = 8 */
    uint32_t kmeans_iters;         /* 0 = 20 */
    size_t   max_train_points;     /* k-means sample size; 0 = 256 * nlist */
    /* all */
    uint32_t threads;              /* worker threads for add/batch search; 0 = all cores */
    uint32_t flags;                /* QV_HNSW_KEEP_PRUNED ... */
    qv_quant quant;                /* codes searched on (hnsw, flat, ivf); NONE = float32.
                                      Trained on the first vectors added (or by
                                      qv_index_train) and retrained as the index grows */
    qv_vec_type vec_type;          /* element type of the kept vectors; F32 (0) default */
    uint64_t seed;                 /* fixed seed + threads = 1 => identical builds */
    qv_gpu_mode gpu;               /* batch search / k-means on the GPU when possible */
    qv_progress_fn progress;       /* NULL = silent */
    void *progress_arg;
} qv_index_params;

/** Fill *p with defaults for the given kind, dimension and metric. */
QV_API void qv_index_params_init(qv_index_params *p, qv_index_kind kind, uint32_t dim, qv_metric metric);

/** Predicate over ids for filtered search: nonzero = keep. Must be thread-safe. */
typedef int (*qv_accept_fn)(uint64_t id, void *arg);

typedef struct {
    uint32_t k;                    /* 1..QV_MAX_K */
    uint32_t ef;                   /* hnsw beam width; 0 = index default; raised to k */
    uint32_t nprobe;               /* ivf lists to probe; 0 = index default */
    /* Filters (all that are set must pass). allow_bits is a bitset over ids:
     * id passes iff id < allow_nbits and bit (id % 64) of allow_bits[id / 64] is set. */
    const uint64_t *allow_bits; uint64_t allow_nbits;
    qv_accept_fn accept; void *accept_arg;
    uint32_t max_visits;           /* work bound under selective filters; 0 = auto */
    /* Quantized indexes only (ignored otherwise): the search ranks candidates by their
     * codes, then re-scores the best ceil(k * oversampling) of them with the float
     * vectors (hnsw: the beam ef is raised to that count when smaller). */
    qv_rescore rescore;            /* DEFAULT = ON; OFF returns the estimated scores */
    float oversampling;            /* >= 1; 0 = the index kind's default */
    /* bit1 hnsw only (ignored otherwise): 0..QV_MAX_EXPLORE, 0 = off. The walk also follows
     * a neighbour whose estimate minus explore x its error bound could enter the beam, so
     * nodes the 1-bit codes misjudge get expanded: more recall per ef, more work per ef;
     * compare settings at equal recall. Best with ef near k: about 0.5-0.75 for recall
     * 0.95, 1-1.5 for 0.99 on 384-512-d text embeddings (bench/RESULTS.md "explore with a
     * small ef"). */
    float explore;
    /* Payload filter of qv_search / qv_search_batch / qv_search_ex (borrowed for the call;
     * NULL = none). The index-level qv_index_search* have no payloads and ignore it. */
    const qv_filter *filter;
    /* Nonzero: qv_search / qv_search_batch / qv_search_ex score every point that passes
     * the filters exactly, whatever the index kind (a brute-force scan of the stored
     * vectors). The index-level calls ignore it. */
    uint32_t exact;
} qv_search_params;

/** Fill *sp with defaults and the given k. */
QV_API void qv_search_params_init(qv_search_params *sp, uint32_t k);

/**
 * Create an empty index.
 * @param[in]  p    parameters (copied).
 * @param[out] out  the new index; NULL on failure.
 * @return QV_OK, QV_EINVAL (a parameter out of range, message names it), QV_ENOMEM,
 *         QV_ENODEV (gpu = QV_GPU_REQUIRE without a usable GPU).
 */
QV_API int    qv_index_new(const qv_index_params *p, qv_index **out);
QV_API void   qv_index_free(qv_index *ix);
/** Train an IVF index on n sample vectors (n*dim floats); a no-op for flat and hnsw.
 *  @return QV_OK, QV_EINVAL (n < nlist, NaN), QV_ENOMEM. */
QV_API int    qv_index_train(qv_index *ix, size_t n, const float *vecs);
/** Add n vectors (n*dim floats, row-major) with the given ids. An id already present is
 *  replaced. All or nothing: on error the index is unchanged.
 *  @return QV_OK, QV_EINVAL (NaN/Inf, duplicate id in the batch), QV_ENOMEM,
 *          QV_ESTATE (ivf not trained). */
QV_API int    qv_index_add(qv_index *ix, size_t n, const uint64_t *ids, const float *vecs);
/** Remove the given ids; ids not present are skipped. *n_removed (may be NULL) counts
 *  the removed ones. */
QV_API int    qv_index_remove(qv_index *ix, size_t n, const uint64_t *ids, size_t *n_removed);
/** Search one query (dim floats). Fills hits[0..*n_hits) best first; *n_hits <= sp->k.
 *  Safe to call from many threads at once, and concurrently with add/remove.
 *  @return QV_OK, QV_EINVAL (bad k/ef, NaN in query), QV_ESTATE. */
QV_API int    qv_index_search(const qv_index *ix, const float *query, const qv_search_params *sp,
                       qv_hit *hits /* k */, size_t *n_hits);
/** Search nq queries (nq*dim floats). Row i of hits is hits + i*k; n_hits[i] per query. */
QV_API int    qv_index_search_batch(const qv_index *ix, size_t nq, const float *queries,
                             const qv_search_params *sp, qv_hit *hits /* nq*k */,
                             size_t *n_hits /* nq */);
/** Save to / load from a file in the versioned, checksummed format.
 *  Load gives QV_ECORRUPT (message names file and offset) for any damage. */
QV_API int    qv_index_save(const qv_index *ix, const char *path);
QV_API int    qv_index_load(const char *path, qv_index **out);
/** Serialize to a malloc'd buffer (free with qv_free) / load from a buffer. Same format
 *  as the file. name is used in error messages only. */
QV_API int    qv_index_save_mem(const qv_index *ix, void **buf, size_t *len);
QV_API int    qv_index_load_mem(const void *buf, size_t len, const char *name, qv_index **out);
/**
 * Open a saved index in place: an hnsw index is mapped from the file (nothing is read
 * into the heap; pages are read when searches first touch them, and writes copy only the
 * pages they change; the file itself is never written, but it must not be truncated or
 * rewritten in place while the index is open). Other kinds are loaded as qv_index_load
 * does. What searches depend on is checked before this returns; the checks that need
 * every page (the checksum, the level-0 links, the vectors, unique ids) run at the first
 * qv_index_add / qv_index_remove / qv_index_save, or when qv_index_verify is called.
 * Until then a damaged file can give wrong results, never a crash.
 * @param[in]  path  a file written by qv_index_save.
 * @param[out] out   the index (free with qv_index_free); NULL on failure.
 * @return QV_OK, QV_ENOTFOUND, QV_EIO, QV_ECORRUPT (the message names file and place),
 *         QV_ENOMEM.
 */
QV_API int    qv_index_open(const char *path, qv_index **out);
/** Run the checks qv_index_open deferred (a no-op for an index built or loaded).
 *  @return QV_OK, or QV_ECORRUPT (sticky: later writes return it too), QV_ENOMEM. */
QV_API int    qv_index_verify(qv_index *ix);
/** Number of live vectors. */
QV_API size_t qv_index_size(const qv_index *ix);
/** Bytes of memory held by the index (vectors, graph, lists, id maps). */
QV_API size_t qv_index_memory(const qv_index *ix);
/** Where the bytes of qv_index_memory go. vectors: the float32 vectors (for a quantized
 *  index, only what re-scoring and rebuilding read); search: the structure a search walks
 *  (graph links, inverted lists, codes, ids, id map); codes: the part of search that is
 *  vector codes (0 for float32 indexes); other: scratch and the rest. */
typedef struct { size_t total, vectors, search, codes, other; } qv_index_memory_info;
QV_API void   qv_index_memory_detail(const qv_index *ix, qv_index_memory_info *out);
/** The parameters in force (defaults resolved). */
QV_API void   qv_index_get_params(const qv_index *ix, qv_index_params *out);
/** Change the GPU mode (the file format does not store it, so a loaded index starts with
 *  QV_GPU_OFF). Not safe concurrently with searches on the same index.
 *  @return QV_OK, QV_EINVAL, QV_ENODEV (QV_GPU_REQUIRE without a usable GPU). */
QV_API int    qv_index_set_gpu(qv_index *ix, qv_gpu_mode mode);

/* ------------------------------------------------------------------------------------
 * k-means on its own (the IVF trainer). Assignment through GEMM (BLAS or cuBLAS).
 * ------------------------------------------------------------------------------------ */
typedef struct {
    uint32_t k;                    /* clusters, >= 1 and <= n */
    uint32_t iters;                /* 0 = 20 */
    size_t   max_points;           /* training sample drawn from x; 0 = 256*k */
    uint32_t threads;              /* 0 = all cores */
    uint64_t seed;
    qv_metric metric;              /* l2 (default); ip/cosine = spherical k-means */
    qv_gpu_mode gpu;
    qv_progress_fn progress; void *progress_arg;
    /* Called after each iteration with the objective (sum of squared distances to the
     * nearest centroid; for ip/cosine, the sum of similarities). NULL = none. */
    void (*on_iteration)(uint32_t iter, double objective, void *arg);
    void *on_iteration_arg;
} qv_kmeans_params;
QV_API void qv_kmeans_params_init(qv_kmeans_params *p, uint32_t k);
/** Cluster n vectors of dimension dim. centroids: k*dim floats (caller's). objective
 *  (may be NULL) receives the final sum of squared distances to the nearest centroid.
 *  @return QV_OK, QV_EINVAL (k out of range, NaN), QV_ENOMEM, QV_ENODEV. */
QV_API int  qv_kmeans(const qv_kmeans_params *p, size_t n, size_t dim, const float *x,
               float *centroids, double *objective);

/* ------------------------------------------------------------------------------------
 * Database level: durable collections on LMDB.
 * ------------------------------------------------------------------------------------ */
enum { QV_DB_NOSYNC = 1u << 0, QV_DB_RDONLY = 1u << 1 };
typedef struct {
    unsigned flags;                /* QV_DB_NOSYNC: no fsync per write (bulk loads) */
    size_t initial_map_bytes;      /* 0 = 64 MiB; the map grows by itself */
    uint32_t max_collections;      /* 0 = 256 */
    uint32_t checkpoint_every;     /* snapshot the index every N write calls; 0 = never */
} qv_db_options;
QV_API void qv_db_options_init(qv_db_options *o);

/** Open (creating if needed) the database in directory dir.
 *  @return QV_OK, QV_EIO, QV_ECORRUPT (not a Quiver database / damaged), QV_EINVAL. */
QV_API int  qv_db_open(const char *dir, const qv_db_options *o /* NULL = defaults */, qv_db **out);
/** Checkpoint every open collection, close them, close the environment. Frees db even
 *  when it returns an error. NULL ok. */
QV_API int  qv_db_close(qv_db *db);

/** One sparse vector of a collection's config (see "Sparse vectors" below). */
typedef struct {
    const char *name;              /* 1..QV_SPARSE_NAME_MAX bytes, unique in the collection */
    int idf;                       /* nonzero: query weights are scaled by each index's idf
                                    * (Qdrant's "modifier": "idf") */
} qv_sparse_config;

typedef struct {
    qv_index_params index;         /* dim, metric, index kind and knobs */
    const char *payload_index;     /* JSON {"lang":"keyword","year":"integer"}; NULL = none */
    const char *vector_name;       /* the dense vector's name (Qdrant's named vectors; ""
                                    * is a name too); NULL = unnamed */
    size_t n_sparse;               /* sparse vectors per point, 0..QV_MAX_SPARSE_VECTORS */
    const qv_sparse_config *sparse;
    int no_dense;                  /* nonzero: the points have only sparse vectors (Qdrant's
                                    * "vectors": {}); the dense vector (dim 1) is a stand-in
                                    * that APIs neither show nor search. Needs n_sparse >= 1 */
    int on_disk;                   /* 1: the float vectors are read from storage (LMDB's map)
                                    * where they are stored, not copied into the heap: the
                                    * index holds graph and codes only and re-scores from
                                    * there, ~0.5x the memory, at a QPS cost (README,
                                    * "Vectors on disk"). Needs an hnsw index with quant set
                                    * (any metric: a cosine collection stores the unit
                                    * vectors the index scores, and qv_get gives back the
                                    * vector as given to within one float rounding).
                                    * 0 (default): held in memory */
} qv_collection_config;

/** Whether name is a valid collection name: 1..64 bytes of [A-Za-z0-9_.-], not starting
 *  with '.' (so never a path). @return QV_OK, or QV_EINVAL saying why not. */
QV_API int  qv_coll_name_check(const char *name);
/** Collection names: 1..64 bytes of [A-Za-z0-9_.-], not starting with '.'. With out, the
 *  caller gets the handle as qv_collection_open gives it (one user, to close).
 *  @return QV_OK, QV_EEXIST, QV_EINVAL (name or a parameter), QV_EFULL, QV_ESTATE, QV_EIO. */
QV_API int  qv_collection_create(qv_db *db, const char *name, const qv_collection_config *cfg,
                          qv_coll **out /* may be NULL */);
/** Open an existing collection: the same handle for every open of one collection, with one
 *  more user counted (release it with qv_collection_close). Opening a collection that is
 *  already open takes no writer lock, so it is cheap enough to do per request.
 *  @return QV_OK, QV_ENOTFOUND (no such collection), QV_EINVAL, QV_ENOMEM, QV_ECORRUPT. */
QV_API int  qv_collection_open(qv_db *db, const char *name, qv_coll **out);
/** Release one user of c (from open, or create with out). The collection stays open for
 *  the next open while it is not dropped (its memory lives until drop or qv_db_close);
 *  after a drop, the last close frees it. NULL ok. */
QV_API void qv_collection_close(qv_coll *c);
/** Drop a collection and all its data (one transaction). Safe while other threads use it:
 *  calls already running on its handles finish, later ones answer QV_ENOTFOUND, and the
 *  handle's memory is freed at its last qv_collection_close (or at qv_db_close).
 *  @return QV_OK, QV_ENOTFOUND, QV_ESTATE (read-only). */
QV_API int  qv_collection_drop(qv_db *db, const char *name);
/** Parameters changed after creation; qv_collection_update. */
typedef struct {
    uint32_t m, ef_construction, ef_search;   /* hnsw's; 0 = unchanged */
    int set_quant;                 /* nonzero: the codes become quant (hnsw, flat and ivf;
                                    * QV_QUANT_NONE drops them); 0 = unchanged */
    qv_quant quant;
} qv_collection_changes;
/** Store new parameters of c and rebuild its index with them from the stored vectors (a
 *  snapshot of it is written), so that every point, earlier and later, is linked and coded
 *  with them; searches go on over the old index meanwhile. No change: no rebuild.
 *  @return QV_OK, QV_EINVAL (out of range; m, ef_construction or ef_search when c is not
 *  hnsw; dropping the codes of on_disk vectors; bit1 above its dimension limit),
 *  QV_ENOTFOUND (dropped), QV_ESTATE (read-only), QV_ENOMEM, QV_EFULL, QV_EIO. */
QV_API int  qv_collection_update(qv_coll *c, const qv_collection_changes *ch);
/** Names of all collections, sorted; free with qv_free_strings. */
QV_API int  qv_collection_list(qv_db *db, char ***names, size_t *n);

typedef struct {
    char name[72];
    qv_collection_config config;   /* config.payload_index, vector_name and sparse point
                                      into the handle: valid
                                      while the handle is (until its db is closed, or the
                                      last close after a drop) */
    size_t count;                  /* live points */
    size_t memory_bytes;           /* in-memory index */
    uint64_t last_seq;             /* sequence number of the last committed write */
} qv_collection_info;
QV_API int  qv_collection_get_info(qv_coll *c, qv_collection_info *out);

/** Upsert n points in one transaction: all or none. Re-upsert of an id replaces vector
 *  and payload. payloads_json: n entries (each a JSON object or NULL), or NULL.
 *  When it returns QV_OK the points are durable (unless QV_DB_NOSYNC) and searchable.
 *  @return QV_OK, QV_EDIM / QV_EINVAL (message names the point), QV_EFULL, QV_EIO. */
QV_API int  qv_upsert(qv_coll *c, size_t n, const uint64_t *ids, const float *vecs,
               const char *const *payloads_json);
/** Replace the vectors of n existing points (n*dim floats) and re-index them, keeping
 *  their payloads, in one transaction: all or none. @return QV_OK, QV_EINVAL, QV_EDIM as
 *  qv_upsert; QV_ENOTFOUND when an id is not in c (the message names it: nothing changed). */
QV_API int  qv_update_vectors(qv_coll *c, size_t n, const uint64_t *ids, const float *vecs);
/** Delete ids (absent ones are skipped) in one transaction. */
QV_API int  qv_delete(qv_coll *c, size_t n, const uint64_t *ids, size_t *n_deleted);
/** Read a point. vec_out: dim floats or NULL; *payload_out (if not NULL) gets a malloc'd
 *  JSON string or NULL when the point has no payload, free with qv_free.
 *  @return QV_OK, QV_ENOTFOUND. */
QV_API int  qv_get(qv_coll *c, uint64_t id, float *vec_out, char **payload_out);
/** The payloads of n points, read in one transaction (what a search with payloads needs
 *  for its hits): payloads[i] gets a malloc'd JSON string, or NULL when point ids[i] has
 *  no payload or does not exist. Free each with qv_free.
 *  @return QV_OK, QV_EINVAL, QV_ENOMEM (then every payloads[i] is NULL), QV_EIO. */
QV_API int  qv_get_payloads(qv_coll *c, size_t n, const uint64_t *ids, char **payloads);

/* Payload-only updates. Each call is one LMDB write transaction that reads every named
 * point's stored payload, changes it and writes it back (with its payload index entries),
 * under the collection's writer lock: a concurrent upsert, delete or payload update of the
 * same point is applied wholly before or wholly after it, never interleaved, so no update
 * is lost and a deleted point is never written back. The vector and the vector index are
 * not touched. A payload left with no keys is stored as no payload (qv_get gives NULL).
 *
 * A missing id fails the whole call with QV_ENOTFOUND naming it and nothing changed (as
 * Qdrant answers 404 "No point with id N found"), unless flags has
 * QV_PAYLOAD_SKIP_MISSING: then missing ids are skipped (for ids selected by a filter,
 * which a concurrent delete may have removed since). The same id twice is allowed. */
enum { QV_PAYLOAD_SKIP_MISSING = 1u << 0 };
typedef struct {
    int clear;                     /* first remove every key, except those in keep */
    const char *const *keep;       /* nkeep keys that clear leaves in place */
    size_t nkeep;
    const char *const *remove;     /* then remove these nremove paths ("a.b": b under a, as
                                    * filter keys; absent ones ignored) */
    size_t nremove;
    const char *merge;             /* then set the keys of this JSON object, replacing keys of
                                    * the same name (values are not merged deeper); NULL = none */
    unsigned flags;                /* QV_PAYLOAD_SKIP_MISSING */
} qv_payload_update;
/** Fill *u with "change nothing" (no clear, no keys, no merge, no flags). */
QV_API void qv_payload_update_init(qv_payload_update *u);
/** Apply u to the payload of each of the n points ids. *n_updated (may be NULL) counts the
 *  points changed. @return QV_OK, QV_EINVAL (merge not a JSON object, a NULL key),
 *  QV_ENOTFOUND (a missing id, without QV_PAYLOAD_SKIP_MISSING), QV_ESTATE (read-only),
 *  QV_ENOMEM, QV_EFULL, QV_EIO, QV_ECORRUPT (a stored payload that is not JSON). */
QV_API int  qv_update_payload(qv_coll *c, size_t n, const uint64_t *ids, const qv_payload_update *u,
                       size_t *n_updated);
/** Shorthands of qv_update_payload (missing ids: QV_ENOTFOUND). set: merge the keys of
 *  payload_json; overwrite: replace the whole payload with payload_json; delete keys:
 *  remove the nkeys keys; clear: remove every key. */
QV_API int  qv_set_payload(qv_coll *c, size_t n, const uint64_t *ids, const char *payload_json);
QV_API int  qv_overwrite_payload(qv_coll *c, size_t n, const uint64_t *ids, const char *payload_json);
QV_API int  qv_delete_payload_keys(qv_coll *c, size_t n, const uint64_t *ids, const char *const *keys,
                            size_t nkeys);
QV_API int  qv_clear_payload(qv_coll *c, size_t n, const uint64_t *ids);

/** Search one query (dim floats) among the collection's live points: hits[0..*n_hits)
 *  best first, *n_hits <= sp->k (fewer when fewer points pass the filter). The index kind
 *  decides exactness (flat is exact; hnsw/ivf approximate, tuned by sp->ef / sp->nprobe);
 *  with sp->filter, a small allowed set is scanned exactly instead (qv_search_stats.plan).
 *  A cosine query is normalized first. Safe from many threads at once and beside writes:
 *  it sees every write that returned before it started.
 *  @return QV_OK, QV_EINVAL (k, ef or nprobe out of range, NaN/Inf or a zero cosine query,
 *  norm above QV_MAX_NORM), QV_EDIM, QV_ENOTFOUND (collection dropped), QV_ENOMEM. */
QV_API int  qv_search(qv_coll *c, const float *query, const qv_search_params *sp,
               qv_hit *hits, size_t *n_hits);
/** Search nq queries (nq*dim floats) with the same parameters: row i of hits is
 *  hits + i*sp->k, with n_hits[i] hits. Faster per query than nq qv_search calls (flat
 *  and ivf scan through GEMM; hnsw spreads the queries over index.threads workers). All or
 *  nothing: on an error every n_hits[i] is 0. Errors as qv_search, naming the query. */
QV_API int  qv_search_batch(qv_coll *c, size_t nq, const float *queries, const qv_search_params *sp,
                     qv_hit *hits, size_t *n_hits);
/** Write an index snapshot covering all writes so far. */
QV_API int  qv_checkpoint(qv_coll *c);

QV_API void qv_free(void *p);
QV_API void qv_free_strings(char **v, size_t n);

/* ------------------------------------------------------------------------------------
 * Payload filters (collections only). A filter is a tree: must (all pass), must_not (none
 * passes), should (at least one passes, when there is any) of conditions on payload
 * fields; a condition may itself be a filter. JSON form, the same structure:
 *   {"must":[{"key":"lang","match":"en"},{"key":"year","range":{"gte":2020}}],
 *    "must_not":[{"key":"draft","match":true}],
 *    "should":[{"key":"tag","match":{"any":["a","b"]}},{"must":[...]}]}
 * Conditions: {"key":K,"match":V} / {"key":K,"match":{"value":V}} (V a string, integer or
 * bool); {"key":K,"match":{"any":[V,...]}} ([] matches nothing); {"key":K,"match":{"except":
 * [V,...]}} (present, not null, and none of them; an array when no element is one);
 * {"key":K,"range":{"gt"|"gte"|"lt"|"lte":n,...}}; {"key":K,"is_null":true} (field present
 * and null); {"key":K,"exists":true} (field present and not null); {"key":K,"is_empty":true}
 * (absent, null or []); false negates the last three. Qdrant's forms parse the same way:
 * {"is_null":{"key":K}}, {"is_empty":{"key":K}}, members that are null count as absent
 * ("range":{"gt":null,"lte":5}, "must":null), one condition in place of a list, and an
 * empty filter anywhere passes everything ({"must":[{"must":[]}]}). {"has_id":[id,...]}
 * passes the points with those ids (answered from the id records, like an indexed field;
 * qv_filter_eval, which has no point id, fails it). Qdrant conditions with no counterpart
 * (geo, full text, values_count, nested, min_should) are QV_EINVAL naming them.
 * Keys are paths, as in Qdrant: "a.b" is field b of the object under a (never a top-level
 * field named "a.b"); a segment in double quotes keeps its dots ("\"a.b\"" is the
 * top-level field a.b). An empty segment or an unbalanced quote is QV_EINVAL.
 * A payload array matches when any element does. Numbers compare by value (5 matches 5.0;
 * ranges compare as doubles). Fields named in the collection's payload_index are answered
 * from an LMDB index; others are evaluated against the stored payloads (slower; counted in
 * qv_search_stats.unindexed).
 * ------------------------------------------------------------------------------------ */
typedef enum { QV_MUST = 1, QV_MUST_NOT, QV_SHOULD } qv_occur;
enum { QV_RANGE_GT_LO = 1u << 0,      /* qv_filter_range flags: lo is exclusive (>) */
       QV_RANGE_LT_HI = 1u << 1 };    /* hi is exclusive (<) */

/** An empty filter (passes every point). @return QV_OK, QV_ENOMEM. */
QV_API int  qv_filter_new(qv_filter **out);
QV_API void qv_filter_free(qv_filter *f);
/** Parse the JSON form. @return QV_OK, QV_EINVAL (the message names the bad part, e.g.
 *  "filter.must[1].range: unknown operator 'ge'"), QV_ENOMEM. */
QV_API int  qv_filter_parse(const char *json, qv_filter **out);
/** The JSON form of f (canonical: must, must_not, should). *json: free with qv_free. */
QV_API int  qv_filter_to_json(const qv_filter *f, char **json);
/** Deep copy. */
QV_API int  qv_filter_copy(const qv_filter *f, qv_filter **out);
/** Append one condition under occur to f. key: 1..255 bytes. Strings are copied.
 *  @return QV_OK, QV_EINVAL (bad occur, key or value), QV_ENOMEM. */
QV_API int  qv_filter_match(qv_filter *f, qv_occur occur, const char *key, const char *value);
QV_API int  qv_filter_match_int(qv_filter *f, qv_occur occur, const char *key, int64_t value);
QV_API int  qv_filter_match_bool(qv_filter *f, qv_occur occur, const char *key, int value);
/** Field equals any of n strings / integers (n >= 1). */
QV_API int  qv_filter_match_any(qv_filter *f, qv_occur occur, const char *key, const char *const *values,
                         size_t n);
QV_API int  qv_filter_match_any_int(qv_filter *f, qv_occur occur, const char *key, const int64_t *values,
                             size_t n);
/** lo <= field <= hi (numbers); -INFINITY / INFINITY leave a side open; flags
 *  QV_RANGE_GT_LO / QV_RANGE_LT_HI make a side exclusive. NaN or lo > hi: QV_EINVAL. */
QV_API int  qv_filter_range(qv_filter *f, qv_occur occur, const char *key, double lo, double hi,
                     unsigned flags);
/** Field present and null / present and not null / absent, null or an empty array. */
QV_API int  qv_filter_is_null(qv_filter *f, qv_occur occur, const char *key);
QV_API int  qv_filter_exists(qv_filter *f, qv_occur occur, const char *key);
QV_API int  qv_filter_is_empty(qv_filter *f, qv_occur occur, const char *key);
/** Append a copy of sub as one nested condition. */
QV_API int  qv_filter_nest(qv_filter *f, qv_occur occur, const qv_filter *sub);
/** Evaluate f against one payload (a JSON object text, or NULL = no payload).
 *  *pass = 1 when it passes. The reference semantics of every search with f.
 *  @return QV_OK, QV_EINVAL (payload not a JSON object), QV_ENOMEM. */
QV_API int  qv_filter_eval(const qv_filter *f, const char *payload_json, int *pass);

/** What one filtered search did (for "took" details and tests). */
typedef struct {
    uint64_t live;                 /* live points when the search ran */
    uint64_t allowed;              /* points passing the payload filter (= live without one) */
    uint32_t conditions;           /* leaf conditions in the filter */
    uint32_t unindexed;            /* of them, on fields without a (built) payload index */
    uint64_t payloads_read;        /* stored payloads parsed to evaluate those */
    uint64_t filter_us;            /* time to build the allowed set, microseconds */
    const char *plan;              /* static: "none" (no filter), "exact" (the allowed points
                                    * were scanned exactly), "index" (filtered index search) */
    uint32_t cached;               /* 1: the allowed set came from the collection's cache of
                                    * recent filters (same filter, no write since) */
    char unindexed_keys[128];      /* comma-separated unindexed keys used, "" if none */
} qv_search_stats;

/** qv_search_batch plus what the planner did (stats may be NULL). nq = 1 is qv_search. */
QV_API int  qv_search_ex(qv_coll *c, size_t nq, const float *queries, const qv_search_params *sp,
                  qv_hit *hits, size_t *n_hits, qv_search_stats *stats);

/** One group of qv_search_groups: the field's value and its best hits. */
typedef struct {
    char type;                     /* 's' string (s), 'i' integer (i) */
    int64_t i;
    char *s;
    size_t n;                      /* hits, 1..group_size */
    qv_hit *hits;                  /* best first */
} qv_group;
/** Search c for query (sp as qv_search; its k is not used) and group the best hits by
 *  the value of payload field group_by (a path, as filter keys): at most limit groups,
 *  in the order of their best hit, each with at most group_size hits, best first. A hit
 *  whose field is an array joins the group of each string or integer in it; hits without
 *  the field (or with another type) join none. The search widens (k x4, up to QV_MAX_K)
 *  until the groups are full or every passing point was seen: the groups are those of
 *  the best QV_MAX_K hits at most. *out: free with qv_groups_free.
 *  @return QV_OK, QV_EINVAL (group_size or limit not 1..QV_MAX_K, bad path), and the
 *  errors of qv_search. */
QV_API int  qv_search_groups(qv_coll *c, const float *query, const qv_search_params *sp, const char *group_by,
                             uint32_t group_size, uint32_t limit, qv_group **out, size_t *n);
QV_API void qv_groups_free(qv_group *groups, size_t n);

/** Maximal marginal relevance (Qdrant's "mmr" query): reorder the *n hits of a search of
 *  c (best first, as the search gave them) by picking, greedily, the hit that maximizes
 *  (1 - diversity) * relevance - diversity * (its highest similarity to the hits picked
 *  before it); the first pick is the most relevant. Similarity is the collection's metric
 *  between stored vectors; hits whose points were deleted since are dropped. *n becomes
 *  the number picked (at most want); scores stay the search's. diversity: 0 (relevance
 *  only) .. 1. @return QV_OK, QV_EINVAL, QV_ENOMEM, QV_EIO (then *n is 0). */
QV_API int  qv_mmr(qv_coll *c, double diversity, size_t want, qv_hit *hits, size_t *n);

/** One value of a payload field and the number of points that hold it (qv_facet). */
typedef struct {
    char type;                     /* 's' string (s), 'i' integer (i), 'b' bool (i: 0/1) */
    int64_t i;
    char *s;
    uint64_t count;
} qv_facet_hit;
/** The values of payload field key (a path, as filter keys) with the number of live
 *  points passing filter (NULL = all) that hold each, most frequent first (ties: strings,
 *  integers, bools, each ascending), at most limit of them (0 = 10). Counted exactly from
 *  the payload index: key must be indexed as keyword, integer or bool (else QV_EINVAL).
 *  A point whose field is an array counts once under each value it holds.
 *  *out: free with qv_facet_free. @return QV_OK, QV_EINVAL, QV_ENOTFOUND (dropped),
 *  QV_ENOMEM, QV_EIO. */
QV_API int  qv_facet(qv_coll *c, const char *key, const qv_filter *filter, size_t limit, qv_facet_hit **out,
                     size_t *n);
QV_API void qv_facet_free(qv_facet_hit *hits, size_t n);
/** Add field (a path, as filter keys) to the collection's payload index (type "keyword",
 *  "integer", "float" or "bool"), building it from the stored payloads in one transaction. progress (may be
 *  NULL) gets phase "index field". Indexing an already indexed field only updates its
 *  type. @return QV_OK, QV_EINVAL, QV_ENOMEM, QV_EFULL, QV_EIO. */
QV_API int  qv_collection_index_field(qv_coll *c, const char *field, const char *type,
                               qv_progress_fn progress, void *progress_arg);
/** Remove field from the payload index. @return QV_OK, QV_ENOTFOUND (not indexed). */
QV_API int  qv_collection_unindex_field(qv_coll *c, const char *field);
/** ivf collections hold their points in a flat (exact) index until they reach
 *  max(39 * nlist, 1000) points (nlist 0 = 4*sqrt(n): about 24k points), then train
 *  by themselves during that upsert. This trains now, on the points stored so far (again
 *  if already trained; nlist 0 = 4*sqrt(count)). progress (may be NULL) gets k-means phases.
 *  @return QV_OK, QV_EINVAL (not ivf, fewer points than nlist), QV_ESTATE (no points,
 *  read-only), QV_ENOMEM, QV_EIO. */
QV_API int  qv_collection_train(qv_coll *c, qv_progress_fn progress, void *progress_arg);
/* ---- end of payload filters ----------------------------------------------------------- */

/* ------------------------------------------------------------------------------------
 * Point listing (added for the Qdrant-compatible API: scroll, count, delete by filter).
 * ------------------------------------------------------------------------------------ */
/** The external ids of the live points of c that pass filter (NULL = every point) and
 *  accept (NULL = none; called with external ids), in ascending order, starting at the
 *  first id >= start. Writes at most limit of them to ids (limit entries; limit 0 only
 *  counts) and their number to *n. *total (may be NULL) receives the number of all
 *  passing points, whatever start and limit. One consistent view of the collection.
 *  accept runs while the collection's lock is held: it must not call into the library.
 *  @return QV_OK, QV_EINVAL, QV_ENOMEM, QV_EIO. */
QV_API int  qv_scroll(qv_coll *c, const qv_filter *filter, qv_accept_fn accept, void *accept_arg,
               uint64_t start, size_t limit, uint64_t *ids, size_t *n, uint64_t *total);
/* ---- end of point listing --------------------------------------------------------- */

/* ------------------------------------------------------------------------------------
 * Collection aliases: a second name of a collection, moved to another collection in one
 * transaction (re-index without downtime: fill a new collection, then switch the alias).
 * Aliases are stored in the database; a name is a collection or an alias, never both
 * (creating either where the other exists is QV_EEXIST); dropping a collection deletes
 * its aliases. qv_collection_open accepts an alias (the handle is the collection's, its
 * info names the collection), so every call that opens a collection by name does.
 * ------------------------------------------------------------------------------------ */
typedef enum { QV_ALIAS_CREATE = 1, QV_ALIAS_DELETE, QV_ALIAS_RENAME } qv_alias_op;
typedef struct {
    qv_alias_op op;
    const char *alias;             /* CREATE, DELETE: the alias; RENAME: its present name */
    const char *target;            /* CREATE: the collection (an existing alias of that
                                    * name moves to it); RENAME: the new name; DELETE: unused */
} qv_alias_action;
/** Apply n actions in order, in one transaction: all or none. @return QV_OK, QV_EINVAL
 *  (bad name or op), QV_ENOTFOUND (no such collection or alias: the message names the
 *  action), QV_EEXIST (the alias would take a collection's name), QV_ESTATE (read-only),
 *  QV_EFULL, QV_EIO. */
QV_API int  qv_alias_update(qv_db *db, size_t n, const qv_alias_action *actions);
/** The collection name (a collection, or an alias of one) stands for, into buf (cap >= 65).
 *  @return QV_OK, QV_EINVAL, QV_ENOTFOUND (neither), QV_EIO. */
QV_API int  qv_alias_resolve(qv_db *db, const char *name, char *buf, size_t cap);
typedef struct { char alias[65]; char collection[65]; } qv_alias_info;
/** The aliases (of collection, or all when NULL), sorted by alias; *out: free with qv_free.
 *  @return QV_OK, QV_EINVAL, QV_ENOMEM, QV_EIO. */
QV_API int  qv_alias_list(qv_db *db, const char *collection, qv_alias_info **out, size_t *n);
/* ---- end of aliases ------------------------------------------------------------------- */

/* ------------------------------------------------------------------------------------
 * Backups: consistent copies of one collection or of every collection of a db, in one
 * file with a SHA-256, taken while writes go on, and restored into any db.
 *
 * A backup is what one LMDB read transaction saw: every write that returned before the
 * backup began is in it, and each write is in it wholly or not at all. Writes and
 * searches go on meanwhile; the backup never holds the writer lock while it copies.
 * It holds each collection's config, points, payloads, payload index and index snapshot
 * (plus the few writes made after that snapshot), so a restored collection loads its
 * graph instead of building it again. A collection whose stored index snapshot is
 * missing or stale (more than max(256, count/100) points written since) has its
 * in-memory index serialized into the file instead, at the backup's point in time:
 * writes to the db wait for that serialization (0.8-1.7 s at 1M points) and for
 * nothing else; nothing is written to the db (a read-only db copies the stored snapshot
 * and the writes after it as they are).
 *
 * The file (its format: storage/backup.h) is written under a temporary name in the same
 * directory, synced and renamed, so a crash or a full disk never leaves a partial file
 * under path. Its last frame holds the SHA-256 of everything before it, which every
 * restore checks before it changes anything; qv_backup_info.sha256 is the SHA-256 of the
 * whole file, the one `sha256sum FILE` prints, which a caller may keep beside the file
 * and pass back to qv_backup_restore. The file holds the stored bytes as they are:
 * vectors in this machine's byte order (another byte order is refused on restore).
 * ------------------------------------------------------------------------------------ */
typedef struct {
    char sha256[65];               /* SHA-256 of the whole file: 64 lowercase hex digits */
    uint64_t bytes;                /* size of the file */
    int64_t created;               /* when the backup was taken (unix seconds, from the file) */
    uint32_t collections;          /* collections in the file (restore: restored) */
    uint64_t points;               /* live points in them */
    uint32_t index_loaded;         /* restore: collections whose index came from the backup's
                                    * index snapshot (the others were built from the points) */
} qv_backup_info;

/** Write a backup of collection (NULL: every collection of db) to path, replacing a file
 *  there only once the new one is complete.
 *  @param[in]  db          an open database (read-only is fine: then nothing is checkpointed).
 *  @param[in]  collection  a collection name, or NULL for all of them.
 *  @param[in]  path        the file to write; its directory must exist.
 *  @param[out] info        may be NULL; receives the file's size, SHA-256 and counts.
 *  @return QV_OK, QV_EINVAL (bad name or path), QV_ENOTFOUND (no such collection),
 *  QV_EFULL (disk full: no file left behind), QV_EIO, QV_ENOMEM, QV_ECORRUPT (the
 *  database itself is damaged). */
QV_API int  qv_backup_create(qv_db *db, const char *collection, const char *path, qv_backup_info *info);

/** Check a backup file without restoring it: its structure and its embedded SHA-256,
 *  and, when sha256 is given, that the whole file has that SHA-256.
 *  @param[in]  path    the backup file.
 *  @param[in]  sha256  64 hex digits (either case), or NULL.
 *  @param[out] info    may be NULL; its index_loaded stays 0.
 *  @return QV_OK, QV_ENOTFOUND (no file), QV_EINVAL (sha256 not 64 hex digits),
 *  QV_ECORRUPT (not a backup, damaged, truncated, or another SHA-256: the message says
 *  which), QV_EIO. */
QV_API int  qv_backup_verify(const char *path, const char *sha256, qv_backup_info *info);

enum { QV_RESTORE_REPLACE = 1u << 0 };   /* a collection of the same name is replaced */
typedef struct {
    const char *collection;        /* restore only this collection of the file; NULL = all */
    const char *rename;            /* the name it gets in db; NULL = its name in the file.
                                    * Only when one collection is restored. */
    const char *sha256;            /* expected SHA-256 of the whole file; NULL = not checked */
    unsigned flags;                /* QV_RESTORE_REPLACE; without it an existing collection
                                    * of the same name is QV_EEXIST */
} qv_restore_options;
/** Fill *o with: every collection, names as in the file, no checksum, no replacing. */
QV_API void qv_restore_options_init(qv_restore_options *o);

/** Restore the collections of a backup file into db. The whole file is verified first
 *  (as qv_backup_verify); nothing in db changes unless it is sound. The data is then
 *  written under new internal collection ids that nothing refers to yet, and one final
 *  transaction points the names at them (replacing collections of the same names, when
 *  QV_RESTORE_REPLACE allows it): a failure or a crash before that commit leaves db as it
 *  was (the unreferenced data is removed at once, or at the next qv_db_open). Other
 *  collections are served meanwhile; a replaced collection answers from its old data
 *  until the commit, and its old handles answer QV_ENOTFOUND after it, as after a drop.
 *  Each restored collection is then opened (its index loaded from the backup's snapshot)
 *  before the call returns.
 *  @param[in]  db    an open, writable database.
 *  @param[in]  path  the backup file.
 *  @param[in]  o     NULL = defaults (qv_restore_options_init).
 *  @param[out] info  may be NULL; counts of what was restored, the file's SHA-256.
 *  @return QV_OK, QV_EINVAL (bad options or name), QV_ENOTFOUND (no file, or no such
 *  collection in it), QV_EEXIST (a collection exists and QV_RESTORE_REPLACE is not set),
 *  QV_ECORRUPT (damaged, truncated, wrong SHA-256, another byte order or format),
 *  QV_ESTATE (db read-only; or a collection would be replaced while another process has
 *  db open for writing: its loaded collections would go on writing to the replaced data,
 *  so such a restore must run in that process), QV_EFULL, QV_EIO, QV_ENOMEM. */
QV_API int  qv_backup_restore(qv_db *db, const char *path, const qv_restore_options *o, qv_backup_info *info);

/* A directory of backups kept by name (quiverd's snapshots): a collection's in
 * <dir>/<collection>/<collection>-YYYY-MM-DD-HH-MM-SS[-k].snapshot, those of every
 * collection in <dir>/full-snapshot-YYYY-MM-DD-HH-MM-SS[-k].snapshot (UTC), each beside a
 * sidecar "<file>.sha256" in sha256sum's format (`sha256sum -c` checks it). Names are
 * [A-Za-z0-9_.-], not leading '.', ending in .snapshot: never a path, a sidecar or a
 * temporary file. collection NULL below means the top of dir (backups of every collection). */
typedef struct {
    char name[224];                /* the file's name, without directory */
    int64_t mtime;                 /* when it was written (unix seconds, the file's) */
    uint64_t size;                 /* bytes */
    char sha256[65];               /* from its sidecar; "" when it has no sound one */
} qv_backup_file;

/** Back up collection (NULL: every collection) into dir under a new name (two calls in one
 *  second, from any thread, get two names), then write its sidecar (a sidecar that
 *  cannot be written is not an error: the file has the checksum in it).
 *  @param[out] file  what was written; @param[out] info  may be NULL (qv_backup_create's).
 *  @return QV_OK, QV_EINVAL (a path too long), those of qv_backup_create. */
QV_API int  qv_backup_dir_create(qv_db *db, const char *dir, const char *collection, qv_backup_file *file,
                                 qv_backup_info *info);
/** The backups of collection (NULL: the top) in dir, sorted by name, into *files (free with
 *  qv_free; NULL and *n 0 when there are none, or no such directory).
 *  @return QV_OK, QV_EINVAL, QV_ENOMEM. */
QV_API int  qv_backup_dir_list(const char *dir, const char *collection, qv_backup_file **files, size_t *n);
/** The path of backup name of collection (NULL: the top) in dir into buf (len bytes), when
 *  name is one this directory would hold. @return QV_OK, QV_ENOTFOUND (not such a name),
 *  QV_EINVAL (too long). The file itself may or may not exist. */
QV_API int  qv_backup_dir_path(const char *dir, const char *collection, const char *name, char *buf, size_t len);
/** Delete backup name of collection (NULL: the top) in dir, and its sidecar.
 *  @return QV_OK, QV_ENOTFOUND, QV_EINVAL, QV_EIO. */
QV_API int  qv_backup_dir_delete(const char *dir, const char *collection, const char *name);
/* ---- end of backups ------------------------------------------------------------------- */

/* ------------------------------------------------------------------------------------
 * Full-text search and hybrid search (issue 22). A payload field declared "text" in the
 * collection's payload_index (or with qv_collection_index_field) gets an inverted index
 * in LMDB, updated in the same transaction as the points: its string is split into
 * lowercase Unicode words, Snowball-stemmed (English), and each point's word counts and
 * length are kept for BM25. The filter condition {"key":K,"match":{"text":"..."}} passes
 * points whose field holds every word of the text; qv_text_search ranks points by BM25
 * (SQLite FTS5's bm25() formula, see storage/text.h); qv_hybrid_search fuses a vector
 * search and a text search. Fusion itself is qv_fuse (no collection needed).
 * ------------------------------------------------------------------------------------ */
typedef struct {
    const char *language;          /* Snowball stemmer ("english", "french", ...); NULL =
                                    * "english"; "none" = no stemming */
    int stopwords;                 /* nonzero: drop English stop words ("the", "of", ...) */
} qv_text_options;
/** Defaults: English stemming, stop words kept. */
QV_API void qv_text_options_init(qv_text_options *o);
/** The tokens of text (UTF-8; invalid bytes separate words) as the text index makes them.
 *  *tokens: *n strings, free with qv_free_strings (NULL when *n is 0).
 *  @return QV_OK, QV_EINVAL (NULL argument, unknown language), QV_ENOMEM. */
QV_API int  qv_text_tokenize(const char *text, const qv_text_options *o, char ***tokens, size_t *n);

#define QV_BM25_K1 1.2             /* defaults of qv_text_params */
#define QV_BM25_B  0.75
typedef struct {
    const char *field;             /* a payload field indexed as "text" */
    const char *query;             /* UTF-8 text; its tokens are ORed (any may match) */
    uint32_t k;                    /* 1..QV_MAX_K */
    double k1;                     /* BM25 term-frequency saturation, 0..10 */
    double b;                      /* BM25 length normalisation, 0..1 */
    const qv_filter *filter;       /* payload filter (borrowed); NULL = none */
} qv_text_params;
/** k, k1 = QV_BM25_K1, b = QV_BM25_B, no field, query or filter. */
QV_API void qv_text_params_init(qv_text_params *p, uint32_t k);
/** BM25 top-k: hits[0..*n_hits) best first (score descending, ties by smaller id), only
 *  points holding at least one query token and passing the filter. A query without
 *  tokens gives 0 hits. Safe beside writes; sees every write that returned before it.
 *  @return QV_OK, QV_EINVAL (field not indexed as text, k/k1/b out of range, NULL),
 *  QV_ENOTFOUND (collection dropped), QV_ENOMEM, QV_EIO. */
QV_API int  qv_text_search(qv_coll *c, const qv_text_params *p, qv_hit *hits, size_t *n_hits);

typedef enum {
    QV_FUSION_RRF = 1,             /* sum of 1 / (rrf_k + rank), rank from 1 */
    QV_FUSION_WEIGHTED             /* sum of weight * min-max normalised score */
} qv_fusion_kind;
typedef struct {
    qv_fusion_kind kind;
    uint32_t rrf_k;                /* RRF constant; 0 = 60 */
    uint32_t k;                    /* fused hits wanted, 1..QV_MAX_K */
} qv_fusion_params;
QV_API void qv_fusion_params_init(qv_fusion_params *p, qv_fusion_kind kind, uint32_t k);
/** Fuse nlists ranked lists (lists[i]: lens[i] hits, best first) into out (k hits, best
 *  first, ties by smaller id). weights: nlists weights (NULL = all 1; weighted fusion
 *  only). ascending[i] nonzero: a smaller score is better in list i (l2), so its
 *  normalised score is (max - s) / (max - min); else (s - min) / (max - min); a list
 *  whose scores are all equal normalises to 1. An id repeated within one list counts at
 *  its first place. @return QV_OK, QV_EINVAL (NULL, k out of range, NaN weight), QV_ENOMEM. */
QV_API int  qv_fuse(const qv_fusion_params *p, size_t nlists, const qv_hit *const *lists, const size_t *lens,
                    const int *ascending, const double *weights, qv_hit *out, size_t *n_out);

/** A vector search (sp, with sp->filter) and a BM25 search (tp; its filter is replaced by
 *  sp->filter, so the filter applies to both) fused by fp: each side fetches
 *  max(fp->k, sp->k, tp->k) candidates. weights: {vector, text} for QV_FUSION_WEIGHTED
 *  (NULL = 0.5, 0.5). query may be NULL (text only) and tp->query may be empty.
 *  @return the errors of qv_search and qv_text_search, QV_EINVAL for bad fusion params. */
QV_API int  qv_hybrid_search(qv_coll *c, const float *query, const qv_search_params *sp, const qv_text_params *tp,
                             const qv_fusion_params *fp, const double *weights, qv_hit *hits, size_t *n_hits);
/** Filter condition {"key":key,"match":{"text":text}}: the field holds every token of
 *  text (a text without tokens passes nothing). */
QV_API int  qv_filter_match_text(qv_filter *f, qv_occur occur, const char *key, const char *text);
/* ---- end of full-text search ---------------------------------------------------------- */

/* ------------------------------------------------------------------------------------
 * Sparse vectors (issue 22; Qdrant's sparse_vectors, what LangChain's hybrid retrieval
 * uses). A collection may declare up to QV_MAX_SPARSE_VECTORS named sparse vectors beside
 * its dense one (qv_collection_config.sparse). A point holds at most one vector of each:
 * a list of (index, value) pairs, indices strictly increasing. They are kept in LMDB as
 * postings (index -> (point, value)), written in the same transaction as the point;
 * an upsert replaces them, a delete removes them, backups carry them.
 * qv_sparse_search scores every point sharing an index with the query by the exact dot
 * product (sum of query value * point value over shared indices), best first. With idf
 * set, each query value is first multiplied by Qdrant's
 *   idf(i) = ln(1 + (N - n(i) + 0.5) / (n(i) + 0.5)),
 * N = points holding this sparse vector, n(i) = of them, those with index i.
 * ------------------------------------------------------------------------------------ */
#define QV_MAX_SPARSE_VECTORS 8u
#define QV_SPARSE_NAME_MAX   64u
#define QV_MAX_SPARSE_NNZ    65536u   /* nonzero entries of one sparse vector */
typedef struct {
    uint32_t n;                    /* entries; 0 = the point has no vector of this name */
    const uint32_t *indices;       /* n indices, strictly increasing */
    const float *values;           /* n finite values */
} qv_sparse_vector;
/** qv_upsert plus sparse vectors: sparse holds n * n_sparse entries (NULL = none for any
 *  point), sparse[i * n_sparse + j] being point i's vector of config sparse[j]. An upsert
 *  replaces every vector of a point, sparse ones included. All or nothing.
 *  @return qv_upsert's codes; QV_EINVAL naming the point and vector for unsorted or
 *  repeated indices, NaN/Inf values, more than QV_MAX_SPARSE_NNZ entries. */
QV_API int  qv_upsert_sparse(qv_coll *c, size_t n, const uint64_t *ids, const float *vecs,
                             const char *const *payloads_json, const qv_sparse_vector *sparse);
/** Point id's sparse vector number which (of the config): *indices and *values get *n
 *  entries (malloc'd, free each with qv_free; NULL when *n is 0: the point has none).
 *  @return QV_OK, QV_ENOTFOUND (no such point), QV_EINVAL (which out of range). */
QV_API int  qv_get_sparse(qv_coll *c, uint64_t id, size_t which, uint32_t **indices, float **values,
                          uint32_t *n);
typedef struct {
    const char *name;              /* a sparse vector of the collection */
    qv_sparse_vector query;        /* indices strictly increasing, values finite */
    uint32_t k;                    /* 1..QV_MAX_K */
    const qv_filter *filter;       /* payload filter (borrowed); NULL = none */
} qv_sparse_params;
/** k, no name, no query, no filter. */
QV_API void qv_sparse_params_init(qv_sparse_params *p, uint32_t k);
/** Exact sparse top-k: hits[0..*n_hits) by dot product descending (ties by smaller
 *  internal id), only live points sharing an index with the query and passing the filter.
 *  An empty query gives 0 hits. Safe beside writes; sees every write that returned.
 *  @return QV_OK, QV_EINVAL (unknown name, k out of range, bad query), QV_ENOTFOUND
 *  (collection dropped), QV_ENOMEM, QV_EIO. */
QV_API int  qv_sparse_search(qv_coll *c, const qv_sparse_params *p, qv_hit *hits, size_t *n_hits);
/* ---- end of sparse vectors ------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------
 * Vector files. Every malformed case gives QV_ECORRUPT naming the file and offset.
 * ------------------------------------------------------------------------------------ */
/** Read .fvecs, .bvecs (bytes widened to float) or .npy (float32, C order, 2-D) by
 *  extension. *data: n*dim floats, free with qv_free. */
QV_API int  qv_read_vectors(const char *path, float **data, size_t *n, size_t *dim);
/** Read .ivecs. *data: n*dim int32, free with qv_free. */
QV_API int  qv_read_ivecs(const char *path, int32_t **data, size_t *n, size_t *dim);

/* ------------------------------------------------------------------------------------
 * GPU.
 * ------------------------------------------------------------------------------------ */
/** 1 when the GPU part is built and a device is usable, else 0. */
QV_API int  qv_gpu_available(void);
/** Name of device 0 into buf. @return QV_OK or QV_ENODEV. */
QV_API int  qv_gpu_device_name(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* QUIVER_H */
