/*
 * index/ivf.h -- IVF-Flat (inverted lists over k-means centroids) and the k-means pieces it
 * shares with qv_kmeans (private to index/).
 *
 * Files: kmeans.c (qv_kmeans, GEMM assignment), ivf_build.c (create, train, add, remove,
 * size, memory), ivf_search.c (single and batch search), ivf_codes.c (a quantized
 * index: codes in the lists, their scan and the float re-score), ivf_io.c (save/load body).
 *
 * Layout: list l holds len vectors stored contiguously (64-byte aligned, capacity grown
 * geometrically), their ids alongside and, for l2, their squared norms (used by the GEMM
 * batch scan: ||q||^2 - 2 q.x + ||x||^2). An id map gives id -> slot, and loc[slot] gives
 * (list, position); remove swaps the last entry of the list into the hole and fixes the
 * moved entry's loc through the id map. Slots of removed ids are recycled.
 *
 * Locking: one rwlock per index (writer-preferring, so a stream of searches cannot starve
 * an add). Searches hold it shared; train (install), add and remove hold it exclusively.
 * The expensive parts of train (k-means) and add (assignment GEMM) run before the write
 * lock is taken; `gen` (bumped by every train) tells add whether its assignment is stale.
 *
 * GPU (p.gpu = AUTO/REQUIRE): training runs qv_kmeans with the same gpu mode; large
 * unfiltered batch searches use a device copy of the index (qv_gpu_ivf: the centroids and
 * the lists concatenated; device rows map back to ids through gpu_ids). The copy is built
 * lazily by the first batch search that needs it and rebuilt when it is stale: `version`
 * is bumped (under the write lock) by every change of the lists (install, append,
 * remove_one), and the copy remembers the gen and version it was built from. Its fields
 * (gpu, gpu_ids, gpu_rows, gpu_gen, gpu_version, gpu_failed) are guarded by gpu_lock, a
 * mutex taken only by batch searches (and memory()) while they hold the read lock: order
 * rwlock, then gpu_lock, never the reverse. Since a searcher holds the read lock, no
 * writer can change version while it rebuilds or uses the copy; two GPU batches of one
 * index run one after another (the device serializes them anyway). Writers never touch
 * the device, so add/remove cannot fail because of it. destroy frees the copy.
 */
#ifndef QV_INDEX_IVF_H
#define QV_INDEX_IVF_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "quiver.h"
#include "core/idmap.h"
#include "core/pool.h"
#include "core/topk.h"
#include "gpu/gpu.h"
#include "index/code_rows.h"
#include "index/index.h"

typedef struct {
    float *vecs;                   /* cap*dim, 64-byte aligned */
    float *norms;                  /* cap squared norms (l2 only, else NULL) */
    uint64_t *ids;                 /* cap */
    uint32_t len, cap;
    qv_code_rows codes;            /* quantized index: the codes of the len vectors */
} qv_ivf_list;

typedef struct { uint32_t list, pos; } qv_ivf_loc;

/* Per-query scratch, kept on a free list of the index (ivf_search.c). */
typedef struct qv_ivf_scratch qv_ivf_scratch;
struct qv_ivf_scratch {
    qv_ivf_scratch *next;
    size_t cap;                    /* nlist entries */
    float *coarse;
    qv_pair *order;
    qv_pair heap[QV_MAX_K];
    /* quantized search (ivf_codes.c), grown on demand */
    void *qbuf;                    /* the prepared query (64-byte aligned) */
    size_t qbuf_bytes;
    float *qtmp;                   /* its scratch */
    size_t qtmp_floats;
    float *est;                    /* estimates of one list */
    size_t est_cap;
    qv_pair *cand;                 /* the best estimates: id = list << 32 | position */
    size_t cand_cap;
};

typedef struct {
    pthread_rwlock_t lock;
    size_t dim;
    qv_metric metric;
    uint32_t nlist;                /* 0 = not trained */
    float *centroids;              /* nlist*dim (unit length for ip/cosine) */
    float *cnorms;                 /* nlist squared norms */
    qv_ivf_list *lists;            /* nlist */
    qv_codec *codec;               /* quantized index (p.quant): trained with the centroids */
    uint8_t *enc_row;              /* encode scratch, used under the write lock */
    float *enc_tmp;
    qv_idmap map;                  /* id -> slot */
    qv_ivf_loc *loc;               /* slot -> (list, pos) */
    uint32_t *free_slots;          /* recycled slots (stack), capacity slot_cap */
    size_t n_free, n_slots, slot_cap;
    size_t n;                      /* live vectors */
    uint64_t gen;                  /* bumped by each train */
    uint64_t version;              /* bumped by every change of the lists */
    pthread_mutex_t scratch_lock;  /* guards scratch_free */
    qv_ivf_scratch *scratch_free;  /* per-query scratch kept for reuse (no malloc per query) */
    /* The device copy, under gpu_lock (see the header). */
    pthread_mutex_t gpu_lock;
    qv_gpu_ivf *gpu;               /* NULL until the first GPU batch, or after an error */
    uint64_t *gpu_ids;             /* id of each device row (the lists concatenated) */
    size_t gpu_rows;
    uint64_t gpu_gen, gpu_version; /* what the copy was built from */
    int gpu_lists_ok;              /* the lists were uploaded (gpu_version is meaningful) */
    int gpu_failed;                /* AUTO: a GPU error other than ENOMEM; CPU from now on */
} qv_ivf;

/* ---- k-means (kmeans.c) ------------------------------------------------------------ */

typedef struct {
    uint32_t iters_run;            /* Lloyd iterations done */
    uint32_t repairs;              /* empty clusters repaired by splitting, all iterations */
    int used_kmeanspp;             /* 1 = k-means++ seeding, 0 = random sample */
    int used_gpu;                  /* 1 = the Lloyd iterations ran on the GPU */
    double objective;              /* sum of squared distances of the last assignment */
} qv_kmeans_stats;

/** qv_kmeans with statistics (st may be NULL); same contract. */
int qv_kmeans_run(const qv_kmeans_params *p, size_t n, size_t dim, const float *x,
                  float *centroids, qv_kmeans_stats *st);

/**
 * Nearest of k centroids for each of n rows: SGEMM tiles (qv_sgemm_nt) and an argmin,
 * spread over pool, with bounded scratch (1 MiB per worker); equal computed distances
 * go to the lower centroid index. metric l2 compares squared distances (cnorms: k squared norms of
 * the centroids, may be NULL); ip/cosine compare -dot. dist (may be NULL) receives the
 * internal distance (l2: squared distance; ip/cosine: -dot). pool may be NULL.
 * @return QV_OK, QV_ENOMEM.
 */
int qv_ivf_assign(const float *centroids, const float *cnorms, size_t k, size_t dim,
                  qv_metric metric, const float *x, size_t n, qv_pool *pool, uint32_t *assign,
                  float *dist);

/* ---- IVF internals shared by ivf_*.c ----------------------------------------------- */

/** Make room for `more` entries in list L (64-byte aligned growth), codes too when codec
 *  is not NULL. @return QV_OK/QV_ENOMEM. */
int  qv_ivf_list_reserve(qv_ivf_list *L, size_t dim, int with_norms, const qv_codec *codec, size_t more);
void qv_ivf_list_release(qv_ivf_list *L);
/** Install trained centroids (takes ownership of centroids) and empty lists; caller holds
 *  the write lock and the index is empty. */
int  qv_ivf_install(qv_ivf *v, uint32_t nlist, float *centroids);
/** Make room for `more` slots (loc and free stack) and id-map entries. */
int  qv_ivf_reserve_slots(qv_ivf *v, size_t more);
/** Append one vector to list l (room reserved); records it in the id map and loc. */
int  qv_ivf_append(qv_ivf *v, uint32_t l, uint64_t id, const float *vec);
/** Remove id if present (write lock held); returns 1 when removed. */
int  qv_ivf_remove_one(qv_ivf *v, uint64_t id);

/** Per-query scratch of the free list (NULL: out of memory) and its return. */
qv_ivf_scratch *qv_ivf_scratch_get(qv_ivf *v);
void qv_ivf_scratch_put(qv_ivf *v, qv_ivf_scratch *s);
/** Scan one list into tk (read lock held); returns the vectors scanned. */
typedef size_t (*qv_ivf_scan_fn)(void *arg, uint32_t list, qv_topk *tk);
/** The probe of one query (read lock held): the nprobe lists nearest q, best first, each
 *  scanned by scan into tk, then further lists while tk holds fewer than sp->k (within
 *  sp->max_visits). */
void qv_ivf_probe(const qv_ivf *v, const float *q, const qv_search_params *sp, qv_ivf_scratch *s, qv_topk *tk,
                  qv_ivf_scan_fn scan, void *arg);
/** Filters of sp over ids. */
typedef struct {
    const uint64_t *bits;
    uint64_t nbits;
    qv_accept_fn accept;
    void *arg;
    int any;
} qv_ivf_filter;
void qv_ivf_filter_init(qv_ivf_filter *f, const qv_search_params *sp);
static inline int qv_ivf_filter_pass(const qv_ivf_filter *f, uint64_t id)
{
    if (f->bits && !(id < f->nbits && ((f->bits[id >> 6] >> (id & 63)) & 1))) return 0;
    if (f->accept && !f->accept(id, f->arg)) return 0;
    return 1;
}

/* ---- quantized lists (ivf_codes.c) --------------------------------------------------- */

/** Set up the codec of a quantized index (create; NULL codec for quant none). */
int  qv_ivf_codes_create(qv_ivf *v, const qv_index_params *p);
void qv_ivf_codes_destroy(qv_ivf *v);
/** Encode the vector at position pos of list l (write lock held). */
void qv_ivf_codes_put(qv_ivf *v, uint32_t l, uint32_t pos);
/** Re-encode every list (after the codec changed; write lock held). */
void qv_ivf_codes_encode_all(qv_ivf *v);
/** One query on the codes, then the float re-score (read lock held): hits, *n_hits. */
int  qv_ivf_search_codes(const qv_ivf *v, const float *q, const qv_search_params *sp, qv_ivf_scratch *s,
                         qv_hit *hits, size_t *n_hits);
/** Bytes of codes held by the lists (read lock held). */
size_t qv_ivf_codes_memory(const qv_ivf *v);

/** Release all per-query scratch (destroy). */
void qv_ivf_scratch_release_all(qv_ivf *v);
/** Free the device copy (destroy; or under gpu_lock). */
void qv_ivf_gpu_release(qv_ivf *v);

int qv_ivf_search(const qv_index *ix, const float *q, const qv_search_params *sp,
                  qv_hit *hits, size_t *n_hits);
int qv_ivf_search_batch(const qv_index *ix, size_t nq, const float *q,
                        const qv_search_params *sp, qv_hit *hits, size_t *n_hits);
int qv_ivf_save(const qv_index *ix, qv_writer *w);
int qv_ivf_load(qv_index *ix, qv_reader *r);

/** Batch search strategy, for tests and benchmarks only (not thread-safe to change while
 *  searches run): 0 = automatic, 1 = single-query searches over the pool, 2 = SGEMM. */
extern int qv_ivf_batch_strategy;

/** The message of every call that needs a trained index. */
#define QV_IVF_UNTRAINED_MSG "ivf index is not trained: call qv_index_train first"

#endif
