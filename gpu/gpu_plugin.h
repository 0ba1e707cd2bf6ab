/*
 * gpu/gpu_plugin.h -- the table between the library and its CUDA plugin (private).
 *
 * Linking cuBLAS into the library cost every process that links Quiver ~155 MB of
 * resident memory and ~65 ms of start-up (the dynamic loader relocates cuBLAS's data at
 * start, whether or not a GPU is ever used; measured 2026-12-07 on an empty main()).
 * So the CUDA part (gpu_cuda.c and the .cu files) is built as a plugin,
 * libquiver-gpu.so, linked against cuBLAS and the CUDA runtime, and the library loads it
 * with dlopen the first time a GPU function is called (gpu/gpu_loader.c). A process
 * that never asks for the GPU never maps cuBLAS.
 *
 * The plugin exports one symbol, qv_gpu_plugin_v1, returning this table; everything else
 * in it is local (gpu/plugin.map), so its own copies of core/error.c and core/alloc.c
 * never interpose on the library's. Its error messages live in its own thread-local
 * buffer: the loader copies them into the library's after every failed call.
 */
#ifndef QV_GPU_GPU_PLUGIN_H
#define QV_GPU_GPU_PLUGIN_H

#include "gpu/gpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bump when this table or any type of gpu.h changes: a plugin of another ABI is refused. */
#define QV_GPU_PLUGIN_ABI 1u
#define QV_GPU_PLUGIN_SYMBOL "qv_gpu_plugin_v1"
#define QV_GPU_PLUGIN_FILE "libquiver-gpu.so"

typedef struct {
    uint32_t abi;                  /* QV_GPU_PLUGIN_ABI */
    uint32_t size;                 /* sizeof(qv_gpu_plugin) */
    const char *version;           /* QV_VERSION of the plugin's build */
    const char *(*last_error)(void);
    int (*probe)(void);
    int (*require)(void);
    int (*device_name)(char *buf, size_t len);
    int (*flat_new)(size_t dim, qv_metric metric, const qv_gpu_options *o, qv_gpu_flat **out);
    int (*flat_new_host)(size_t dim, qv_metric metric, const qv_gpu_options *o, const float *x, size_t n,
                         qv_gpu_flat **out);
    void (*flat_free)(qv_gpu_flat *g);
    int (*flat_add)(qv_gpu_flat *g, size_t n, const float *x);
    int (*flat_set)(qv_gpu_flat *g, size_t row0, size_t n, const float *x);
    int (*flat_truncate)(qv_gpu_flat *g, size_t n);
    size_t (*flat_size)(const qv_gpu_flat *g);
    size_t (*flat_memory)(const qv_gpu_flat *g);
    int (*flat_knn)(qv_gpu_flat *g, size_t nq, const float *q, size_t k, float *dist, int64_t *rows);
    int (*kmeans)(const qv_gpu_kmeans_params *p, size_t n, size_t dim, const float *x, size_t k,
                  float *centroids, double *objective);
    int (*ivf_new)(size_t dim, qv_metric metric, size_t nlist, const float *centroids, const qv_gpu_options *o,
                   qv_gpu_ivf **out);
    void (*ivf_free)(qv_gpu_ivf *g);
    int (*ivf_set_lists)(qv_gpu_ivf *g, const uint64_t *offsets, const float *vecs);
    int (*ivf_probe)(qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe, float *dist, int64_t *lists);
    int (*ivf_search)(qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe, size_t k, float *dist,
                      int64_t *rows);
} qv_gpu_plugin;

typedef const qv_gpu_plugin *(*qv_gpu_plugin_fn)(void);

/** Try to load the plugin at path without keeping it: QV_OK when it loads and its table
 *  fits, else QV_ENODEV with the reason (for tests and the loader's search). */
int qv_gpu__plugin_try(const char *path);

#ifdef __cplusplus
}
#endif
#endif
