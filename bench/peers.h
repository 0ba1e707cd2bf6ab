/*
 * bench/peers.h -- the engine interface of quiver-bench: one small vtable per library
 * measured (Quiver itself, hnswlib, Faiss), so that the timing loops in bench_run.c are
 * the same code for everyone.
 *
 * The interface is plain C (extern "C" for the C++ shims bench/peers_*.cpp). Every
 * function that can fail returns 0 or -1 and writes a one-line reason into err
 * (errlen bytes). search_one() must be safe to call from several threads at once once
 * prepare() has run; prepare() and search_batch() are called from the main thread only.
 *
 * Filtered search (--filter-selectivity): set_filter() installs the allowed set before a
 * sweep point (NULL removes it), from the main thread, between passes. The set comes in
 * two equivalent forms: a bitset over the row ids, and the payload condition that selects
 * the same rows (bucket < bucket_lt, see bench_filter.c), so that each engine can take
 * the form its users would: Quiver's index a bitset, a Quiver collection a payload filter,
 * hnswlib its deletion marks. An engine without filtering has set_filter = NULL.
 *
 * Metric handling: for QV_METRIC_COSINE the caller hands the peers unit-normalized base
 * and query vectors, and a peer maps cosine to inner product (the same ranking). Quiver
 * gets the raw vectors and normalizes itself, as a user's program would.
 */
#ifndef QV_BENCH_PEERS_H
#define QV_BENCH_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "quiver.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    qv_index_kind kind;
    qv_metric metric;
    uint32_t dim;
    uint32_t m, ef_construction;   /* hnsw */
    uint32_t nlist, kmeans_iters;  /* ivf (nlist resolved by the caller, never 0) */
    uint32_t threads;              /* build threads */
    uint64_t seed;
    int gpu;                       /* quiver only: require the GPU */
    qv_quant quant;                /* quiver only: codes to search on */
    qv_vec_type vec_type;          /* quiver only: element type of the kept vectors */
    float oversampling;            /* quiver only: qv_search_params.oversampling */
    float explore;                 /* quiver only: qv_search_params.explore */
    int no_rescore;                /* quiver only: rescore off */
    qv_progress_fn progress;       /* "phase", done, total; may be NULL */
    void *progress_arg;
    const uint32_t *buckets;       /* payload of row i: {"bucket": buckets[i]}; NULL = none */
} bench_build_params;

typedef struct {
    double selectivity;            /* fraction of the rows that pass */
    const uint64_t *allow_bits;    /* row id passes iff bit (id % 64) of allow_bits[id / 64] */
    uint64_t allow_nbits;
    uint32_t bucket_lt;            /* the same set as a payload condition: bucket < bucket_lt */
} bench_filter;

typedef struct bench_engine bench_engine;   /* a built index of one library */

typedef struct {
    const char *name;                          /* "quiver", "hnswlib", "faiss" */
    /** Library version and threading facts for the header, e.g. "faiss 1.7.3, OpenMP 2". */
    const char *(*describe)(void);
    int    (*build)(const bench_build_params *p, size_t n, const float *base,
                    bench_engine **out, char *err, size_t errlen);
    /** Set the search knobs of the next sweep point (ef or nprobe; 0 = not used) and the
     *  thread count it will run with (batch: parallelism inside the library). */
    int    (*prepare)(bench_engine *e, uint32_t ef, uint32_t nprobe, uint32_t threads,
                      int batch, char *err, size_t errlen);
    /** One query; ids[0..k) best first, -1 where fewer than k were found. */
    int    (*search_one)(bench_engine *e, const float *q, uint32_t k, int64_t *ids,
                         char *err, size_t errlen);
    /** nq queries in one call; ids: nq*k. */
    int    (*search_batch)(bench_engine *e, size_t nq, const float *q, uint32_t k,
                           int64_t *ids, char *err, size_t errlen);
    /** Bytes held by the index; *source says how it was measured. */
    size_t (*memory)(bench_engine *e, const char **source);
    void   (*destroy)(bench_engine *e);          /* NULL ok */
    /** Install (f) or remove (NULL) the filter of the next searches: 0, 1 when this
     *  engine as built cannot filter (its filtered rows are skipped), or -1. NULL = never. */
    int    (*set_filter)(bench_engine *e, const bench_filter *f, char *err, size_t errlen);
    const char *filter_mode;                   /* "bitset", "db-filter", "filter" */
    const char *unfiltered_mode;               /* mode of its unfiltered rows: "unfiltered", "db" */
    /** --reload: save the index into directory dir, drop it, and load it back the way a
     *  restarting program would; *open_s is the load alone. NULL = not supported. */
    int    (*reload)(bench_engine *e, const char *dir, double *open_s, char *err, size_t errlen);
    /** Optional (NULL): the bytes a search walks (graph + codes) and the float vectors. */
    void   (*memory_split)(bench_engine *e, size_t *search, size_t *vectors);
    /** --index-cache (both NULL = not supported): write the built index to path; load an
     *  index saved so into memory (the heap, as after a build) with the params it was
     *  built with (n rows). */
    int    (*save)(bench_engine *e, const char *path, char *err, size_t errlen);
    int    (*load)(const bench_build_params *p, size_t n, const char *path, bench_engine **out,
                   char *err, size_t errlen);
} bench_engine_ops;

extern const bench_engine_ops bench_quiver_ops;
extern const bench_engine_ops bench_quiver_db_ops;   /* a collection (filter runs only) */
#ifdef QV_BENCH_HAVE_HNSWLIB
extern const bench_engine_ops bench_hnswlib_ops;
#endif
#ifdef QV_BENCH_HAVE_FAISS
extern const bench_engine_ops bench_faiss_ops;
#endif

#ifdef __cplusplus
}
#endif
#endif
