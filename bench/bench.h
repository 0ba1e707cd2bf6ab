/*
 * bench/bench.h -- quiver-bench's private declarations: options, the loaded dataset, one
 * result row, and the functions the bench_*.c files share.
 *
 * Exit codes: BENCH_EXIT_USAGE (2) for bad command lines, BENCH_EXIT_RUNTIME (1) for bad
 * files and failures while running. Every error is one line on stderr.
 */
#ifndef QV_BENCH_BENCH_H
#define QV_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "quiver.h"
#include "bench/peers.h"

#define BENCH_EXIT_RUNTIME 1
#define BENCH_EXIT_USAGE 2
#define BENCH_MAX_LIST 64

enum { BENCH_PEER_HNSWLIB = 1u << 0, BENCH_PEER_FAISS = 1u << 1 };

typedef struct {
    const char *data_dir;
    qv_index_kind kind;
    int metric_given;              /* --metric given: otherwise detected from README.md */
    qv_metric metric;
    uint32_t m, ef_construction;
    uint32_t efs[BENCH_MAX_LIST]; size_t n_efs;
    uint32_t nlist;                /* 0 = 4*sqrt(n) */
    uint32_t kmeans_iters;
    uint32_t nprobes[BENCH_MAX_LIST]; size_t n_nprobes;
    uint32_t k;
    uint32_t threads;              /* search threads */
    uint32_t build_threads;        /* 0 = all cores */
    uint32_t runs;                 /* repeat each setting, report the median run */
    size_t max_queries;            /* 0 = all */
    uint32_t subset;               /* --subset: index the first N base vectors only (0 = all) */
    const char *reload_dir;        /* --reload DIR: after the sweep, save, reload (timed), sweep again */
    const char *index_cache;       /* --index-cache DIR: load each index from DIR if saved there, else
                                    * build it and save it there (with its build time) */
    int batch, gpu, json, no_quiver;
    unsigned peers;                /* BENCH_PEER_* */
    const char *plot_path;
    double sels[BENCH_MAX_LIST]; size_t n_sels;   /* --filter-selectivity; 0 = no filter run */
    qv_quant quant;                /* --quant: codes quiver searches on */
    qv_vec_type vec_type;          /* --vec-type: element type of the vectors quiver keeps */
    float oversampling;            /* --oversampling: re-scored candidates per k; 0 = default */
    float explore;                 /* --explore: qv_search_params.explore (bit1) */
    int no_rescore;                /* --no-rescore: return estimated scores */
} bench_opts;

typedef struct {
    float *base, *query;           /* as read (qv_free) */
    float *base_unit, *query_unit; /* normalized copies for the peers under cosine, or NULL */
    size_t nb, nq, dim;
    size_t nb_file;                /* rows in base.fvecs (nb < nb_file with --subset) */
    int32_t *gt; size_t gt_rows, gt_k;
    qv_metric metric;
    const char *metric_source;     /* "--metric", "README.md", "default" */
} bench_data;

typedef struct {
    char library[16];
    const char *index;             /* "flat", "hnsw", "ivf" */
    const char *metric;            /* "l2", "ip", "cosine" */
    char name[96];                 /* "hnswlib(M=16,efC=200)": one line in a plot */
    char params_json[160];         /* {"m":16,"ef_construction":200} */
    double build_s;
    size_t memory_bytes;
    const char *memory_source;
    size_t memory_search_bytes;    /* graph/lists + codes (quiver; 0 = not reported) */
    size_t memory_vectors_bytes;   /* the float vectors within memory_bytes (quiver) */
    long long rss_delta_bytes;
    uint32_t ef, nprobe;           /* 0 = not applicable */
    uint32_t k, threads, build_threads;
    int batch, gpu;
    size_t nq;
    size_t nb;                     /* base vectors indexed */
    double recall, qps;
    double p50_us, p99_us;         /* < 0 = not measured (batch) */
    double batch_s;                /* batch: wall time of the best call */
    double reload_s, first_search_s;   /* --reload (< 0 = not measured) */
    /* Filter runs (o->n_sels > 0) only: */
    double selectivity;            /* 1 for the unfiltered reference rows */
    const char *mode;              /* "unfiltered", "db", "bitset", "db-filter", "filter" */
    long long violations;          /* returned ids failing the filter (must be 0) */
} bench_row;

/* bench_args.c */
void bench_opts_init(bench_opts *o);
/** Parse argv into o. Returns 0, or BENCH_EXIT_USAGE after printing one line; 3 for --help. */
int  bench_parse_args(int argc, char **argv, bench_opts *o);
void bench_usage(FILE *f);
/** Parse "10,20,40" into out (1..max_val each). Returns 0 or -1 (err filled). */
int  bench_parse_u32_list(const char *s, uint32_t *out, size_t cap, size_t *n, uint32_t min_val,
                          uint32_t max_val, char *err, size_t errlen);

/* bench_data.c */
/** Load DIR/base.fvecs, query.fvecs, groundtruth.ivecs and check them against o (k).
 *  Returns 0 or -1 with err filled. */
int  bench_data_load(const bench_opts *o, bench_data *d, char *err, size_t errlen);
void bench_data_free(bench_data *d);
/** Metric named by a README text: cosine if it says cosine or angular, ip if it says
 *  "inner product" without either, else l2. */
qv_metric bench_metric_from_readme(const char *text);
/** Recall@k of ids (nq*k, -1 = none) against d->gt. A ground-truth row may end in -1
 *  entries (a filter passing fewer than k points): those are not counted. */
double bench_recall(const bench_data *d, size_t nq, const int64_t *ids, uint32_t k);
/* Quiver's hits (nq rows of k, n_hits[i] real) into the ids rows the sweep scores, -1
 * padding rows with fewer than k hits. Shared by the index and collection engines. */
void bench_hits_to_ids(const qv_hit *hits, const size_t *n_hits, size_t nq, uint32_t k, int64_t *ids);

/* bench_sys.c */
double bench_now(void);                        /* monotonic seconds */
long long bench_rss_bytes(void);               /* resident set size, or -1 */
unsigned bench_cpu_count(void);
/** The BLAS library file mapped into this process ("" if none), resolved through links. */
const char *bench_blas_library(void);
/** Set OpenBLAS's thread count when the process runs on OpenBLAS; returns 1 if it did. */
int  bench_set_blas_threads(int n);
void bench_print_header(FILE *f, const bench_opts *o, const bench_data *d);

/* bench_run.c */
typedef struct {
    const bench_engine_ops *ops;
    bench_engine *e;
    bench_build_params params;     /* as built (progress fields cleared) */
    const float *queries;          /* the query rows this engine searches (unit for peers/cosine) */
    double build_s;
    size_t memory_bytes;
    const char *memory_source;
    size_t memory_search_bytes, memory_vectors_bytes;
    long long rss_delta_bytes;
    double reload_s;               /* --reload: time to load the saved index (-1 = not done) */
    double first_search_s;         /* --reload: the first search after it */
    int from_cache;                /* --index-cache: loaded; build_s is the saved build's */
} bench_built;
/** Build ops's index over d as o says (timed, progress on stderr); buckets (may be NULL)
 *  are the rows' payloads for engines that store them. 0 or -1 (err filled). */
int  bench_build(const bench_engine_ops *ops, const bench_opts *o, const bench_data *d, const uint32_t *buckets,
                 bench_built *b, char *err, size_t errlen);
void bench_built_release(bench_built *b);     /* zeroed / released ok */
/** --reload: save b's index into o->reload_dir, load it back as a restarting program
 *  would (timed), and time one search on it. 0, 1 (the engine cannot reload), -1 (err). */
int  bench_reload(bench_built *b, const bench_opts *o, char *err, size_t errlen);
/** Run every search setting of o on the built engines, interleaved; one row per engine and
 *  setting, printed as it is measured and appended to *rows. With flt, only engines that
 *  can filter run, under that filter, and d->gt must be the filtered ground truth. */
int  bench_sweep(bench_built *engines, size_t n_engines, const bench_opts *o, const bench_data *d,
                 const bench_filter *flt, bench_row **rows, size_t *n_rows, char *err, size_t errlen);

/* bench_filter.c */
/** Payload buckets of the n rows: a seeded random permutation of 0..n-1, so that
 *  "bucket < T" passes exactly T rows, scattered over the ids. Returns NULL if out of memory. */
uint32_t *bench_filter_buckets(size_t n, uint64_t seed);
/** The filter passing round(selectivity * nb) rows (at least 1), its bitset (*bits, free()),
 *  and d's ground truth restricted to it (*gt: nq x o->k int32, -1 padded, free()). */
int  bench_filter_prepare(const bench_opts *o, const bench_data *d, const uint32_t *buckets, double selectivity,
                          bench_filter *f, uint64_t **bits, int32_t **gt, char *err, size_t errlen);
/** The whole --filter-selectivity run on built engines: unfiltered rows, then per selectivity. */
int  bench_filter_run(bench_built *engines, size_t n_engines, const bench_opts *o, const bench_data *d,
                      const uint32_t *buckets, bench_row **rows, size_t *n_rows, char *err, size_t errlen);

/* bench_report.c */
void bench_report_begin(FILE *f, const bench_opts *o);
void bench_report_row(FILE *f, const bench_opts *o, const bench_row *r);

/* bench_plot.c */
/** Returns 0 if gnuplot can be run, else -1 with err filled. */
int  bench_plot_check(char *err, size_t errlen);
int  bench_plot(const char *path, const bench_row *rows, size_t n, const bench_opts *o,
                const char *dataset, char *err, size_t errlen);

/* bench_peers.c */
/** The engines to run for o, quiver first. Returns 0, or -1 when a requested peer is not
 *  compiled in (err names the Debian package). */
int  bench_select_engines(const bench_opts *o, const bench_engine_ops **out, size_t cap,
                          size_t *n, char *err, size_t errlen);

#endif
