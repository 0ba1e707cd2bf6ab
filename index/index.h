/*
 * index/index.h -- the common index interface behind qv_index_* (private).
 *
 * index/index.c owns everything that is the same for every kind: parameter checks and
 * defaults, NaN/Inf checks, cosine normalization of inserted vectors, query validation,
 * the file framing (magic, version, kind, dim, metric, params, body, CRC32C) and the
 * default batch search (queries spread over the thread pool). Each kind supplies a
 * qv_index_ops table and sees only validated input:
 *   - add(): vectors are finite and, for cosine, unit length; ids unique in the batch;
 *   - search(): sp has k in 1..QV_MAX_K, ef >= k, nprobe >= 1 resolved; the query is
 *     finite and, for cosine, unit length (normalized in double by query.c, so the
 *     -dot score is the cosine as it is). Kinds return public scores
 *     (qv_score_from_dist), hits best first, and apply sp->allow_bits / sp->accept.
 * Each kind does its own locking: search may run concurrently with itself and with
 * add/remove.
 */
#ifndef QV_INDEX_INDEX_H
#define QV_INDEX_INDEX_H

#include "quiver.h"
#include "core/pool.h"
#include "core/serial.h"

/* Where an index reads float vectors it does not hold itself (a quantized HNSW inside a
 * collection: the vectors already sit in LMDB's map, storage/vec_source.c). get returns
 * the vector of the point with index id `id`, or NULL when the source has none; the
 * pointer stays valid until the session it was read in ends. begin opens a session in the
 * calling thread (sessions nest) and end closes it: the index brackets every search,
 * insert task and repair with them, so a pointer never outlives its session. */
typedef struct qv_vec_source {
    const float *(*get)(void *ctx, uint64_t id);
    int  (*begin)(void *ctx);
    void (*end)(void *ctx);
    void *ctx;
} qv_vec_source;

#define QV_INDEX_OPEN_READ 1     /* open(): read this file instead (not an error) */

typedef struct qv_index_ops {
    qv_index_kind kind;
    /** Set up ix->impl for an empty index (ix->p is resolved). */
    int    (*create)(qv_index *ix);
    void   (*destroy)(qv_index *ix);               /* frees ix->impl; NULL impl ok */
    int    (*train)(qv_index *ix, size_t n, const float *vecs);   /* NULL = no-op */
    int    (*add)(qv_index *ix, size_t n, const uint64_t *ids, const float *vecs);
    int    (*remove)(qv_index *ix, size_t n, const uint64_t *ids, size_t *n_removed);
    int    (*search)(const qv_index *ix, const float *q, const qv_search_params *sp,
                     qv_hit *hits, size_t *n_hits);
    /** NULL = index.c runs search() per query on the pool. */
    int    (*search_batch)(const qv_index *ix, size_t nq, const float *q,
                           const qv_search_params *sp, qv_hit *hits, size_t *n_hits);
    /** Body only: index.c writes the header and the CRC. */
    int    (*save)(const qv_index *ix, qv_writer *w);
    /** Body only, after create(): validate everything before linking. */
    int    (*load)(qv_index *ix, qv_reader *r);
    /** Open in place from fd (file_len bytes; the header is read and checked): map what
     *  can be used where it lies, check what searches need, defer the rest to verify().
     *  fd stays the caller's (dup it to keep it). NULL = the kind has no in-place open
     *  (index.c then reads the file and calls load), as does QV_INDEX_OPEN_READ from it
     *  for one file (a quantized hnsw that holds its vectors). */
    int    (*open)(qv_index *ix, int fd, uint64_t file_len, const char *name);
    /** Run the checks open() deferred; QV_OK or QV_ECORRUPT (sticky). NULL = none. */
    int    (*verify)(qv_index *ix);
    size_t (*size)(const qv_index *ix);
    size_t (*memory)(const qv_index *ix);
    /** NULL = everything counted as other. */
    void   (*memory_detail)(const qv_index *ix, qv_index_memory_info *out);
    /** Read float vectors from src from now on and drop the index's own copy (src NULL:
     *  keep it, save without it): 1 when the kind does (quantized hnsw), 0 when it keeps
     *  its vectors. NULL = never. */
    int    (*set_vec_source)(qv_index *ix, const qv_vec_source *src);
} qv_index_ops;

struct qv_index {
    const qv_index_ops *ops;
    qv_index_params p;             /* resolved: no zero defaults left */
    qv_pool *pool;                 /* shared pool with p.threads parallelism */
    void *impl;
};

extern const qv_index_ops qv_flat_ops;
extern const qv_index_ops qv_hnsw_ops;
extern const qv_index_ops qv_ivf_ops;

/* File format: "QVIX", u32 version, u32 kind, u32 dim, u32 metric, u32 m, u32
 * ef_construction, u32 ef_search, u32 nlist, u32 nprobe, u32 kmeans_iters, u32 flags,
 * u64 seed, u64 max_train_points, u32 quant, u32 0 (72 bytes), body, u32 CRC32C of all
 * preceding bytes. A quantized index's body carries its float vectors and its codec
 * (index/codec.h) too.
 * Version history: 1 = first format (2026-11); 2 = two branches each took this number
 * (quant15: quant in the header; scale16: hnsw body as page-aligned arrays that an open
 * maps in place); 3 = both: the quant header, padded to 72 bytes so the hnsw arrays stay
 * 8-byte aligned, and the page-aligned hnsw body (hnsw_io.c; flat and ivf bodies
 * unchanged); 4 (2026-12-05) = a bit1 hnsw index that holds its vectors stores its ex
 * rows too ("VECX", hnsw_io.c) instead of re-encoding them on load. Versions 3 and 4 are
 * read (a version 3 file re-encodes its rows; an older build refuses version 4 by its
 * number): neither version 2 was ever in a release, and the hnsw body of version 1 is
 * gone with scale16's layout. */
#define QV_INDEX_FORMAT_VERSION_MIN 3u
#define QV_INDEX_MAGIC "QVIX"
#define QV_INDEX_FORMAT_VERSION 4u
#define QV_INDEX_HEADER_BYTES 72u

/** Before ix is shared, or with no add/remove running (it does not wait for them): hand
 *  ix a vector source (see qv_vec_source): 1 when ix now reads its float vectors
 *  from src and holds none of its own, 0 when its kind keeps them (src unused). src's ctx
 *  must outlive ix. src NULL: the owner keeps the vectors, but ix keeps its copy for now
 *  (fast inserts while it is being loaded); it only saves without them (1), until a
 *  source is set. */
int qv_index_set_vector_source(qv_index *ix, const qv_vec_source *src);

/** Save to path atomically (temp file, rename); the data is streamed, not built in memory
 *  first. nosync skips the fsyncs (QV_DB_NOSYNC databases). */
int qv_index_save_file(const qv_index *ix, const char *path, int nosync);

/* ---- query.c: the one validation of searches (used by storage/search.c too) ------------ */
/** Check the ranges of sp (k, ef) and allow_bits: QV_EINVAL naming the bound. */
int qv_search_params_check(const qv_search_params *sp);
/** Check nq queries (nq*dim floats) for metric: QV_EINVAL "query i: component 3 is not
 *  finite" (or too large, or a zero cosine vector). For cosine, *use receives unit-length
 *  copies normalized in double, in buf when nq*dim <= buf_floats (buf may be NULL with 0)
 *  or else in *copy (free with qv_free; NULL when not allocated); otherwise *use = q. */
int qv_queries_prepare(qv_metric metric, size_t dim, size_t nq, const float *q, float *buf, size_t buf_floats,
                       const float **use, float **copy);
/** The one exact-scan planner of filtered searches: 1 when scanning the allowed points
 *  (allowed of live pass the filter; estimates are fine) beats a filtered index search
 *  for k results: at most k allowed, or under 1/33 of the live ones, or -- for an
 *  in-memory scan beside a graph walk of beam ef -- by the hnsw cost model. ef = 0 asks
 *  for the selectivity rule alone (storage's scan reads vectors from LMDB, several times
 *  dearer per point, and leaves the cost model to the index it would otherwise call). */
int qv_plan_exact(double allowed, double live, uint32_t k, uint32_t ef);

#endif
