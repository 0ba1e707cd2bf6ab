/*
 * gpu/gpu_stub.c -- built when nvcc is absent (or USE_CUDA=no): the GPU part answers
 * QV_ENODEV for everything, and callers take the CPU path. Output handles are set to
 * NULL so that cleanup code of the callers stays the same with and without CUDA.
 */
#include "gpu/gpu.h"

#include <math.h>

#include "core/error.h"

static int no_gpu(void)
{
    return qv_fail(QV_ENODEV, "this build of Quiver has no GPU support (nvcc was not found "
                              "at build time, or USE_CUDA=no)");
}

int qv_gpu_probe(void) { return 0; }

int qv_gpu_require(void) { return no_gpu(); }

int qv_gpu_available(void) { return 0; }

int qv_gpu_device_name(char *buf, size_t len)
{
    if (buf && len) buf[0] = '\0';
    return no_gpu();
}

void qv_gpu_options_init(qv_gpu_options *o)
{
    o->math = QV_GPU_MATH_FP32;
    o->max_device_bytes = 0;
    o->tile_rows = 0;
    o->query_batch = 0;
}

int qv_gpu_flat_new(size_t dim, qv_metric metric, const qv_gpu_options *o, qv_gpu_flat **out)
{
    (void)dim; (void)metric; (void)o;
    if (out) *out = NULL;
    return no_gpu();
}

int qv_gpu_flat_new_host(size_t dim, qv_metric metric, const qv_gpu_options *o,
                         const float *x, size_t n, qv_gpu_flat **out)
{
    (void)dim; (void)metric; (void)o; (void)x; (void)n;
    if (out) *out = NULL;
    return no_gpu();
}

void qv_gpu_flat_free(qv_gpu_flat *g) { (void)g; }

int qv_gpu_flat_add(qv_gpu_flat *g, size_t n, const float *x)
{
    (void)g; (void)n; (void)x;
    return no_gpu();
}

int qv_gpu_flat_set(qv_gpu_flat *g, size_t row0, size_t n, const float *x)
{
    (void)g; (void)row0; (void)n; (void)x;
    return no_gpu();
}

int qv_gpu_flat_truncate(qv_gpu_flat *g, size_t n)
{
    (void)g; (void)n;
    return no_gpu();
}

size_t qv_gpu_flat_size(const qv_gpu_flat *g) { (void)g; return 0; }

size_t qv_gpu_flat_memory(const qv_gpu_flat *g) { (void)g; return 0; }

int qv_gpu_flat_knn(qv_gpu_flat *g, size_t nq, const float *q, size_t k, float *dist,
                    int64_t *rows)
{
    (void)g; (void)nq; (void)q; (void)k; (void)dist; (void)rows;
    return no_gpu();
}

void qv_gpu_kmeans_params_init(qv_gpu_kmeans_params *p, qv_metric metric)
{
    p->metric = metric;
    p->iters = 20;
    qv_gpu_options_init(&p->opt);
    p->progress = NULL;
    p->progress_arg = NULL;
    p->on_iteration = NULL;
    p->on_iteration_arg = NULL;
}

int qv_gpu_kmeans(const qv_gpu_kmeans_params *p, size_t n, size_t dim, const float *x,
                  size_t k, float *centroids, double *objective)
{
    (void)p; (void)n; (void)dim; (void)x; (void)k; (void)centroids;
    if (objective) *objective = NAN;
    return no_gpu();
}

int qv_gpu_ivf_new(size_t dim, qv_metric metric, size_t nlist, const float *centroids,
                   const qv_gpu_options *o, qv_gpu_ivf **out)
{
    (void)dim; (void)metric; (void)nlist; (void)centroids; (void)o;
    if (out) *out = NULL;
    return no_gpu();
}

void qv_gpu_ivf_free(qv_gpu_ivf *g) { (void)g; }

int qv_gpu_ivf_set_lists(qv_gpu_ivf *g, const uint64_t *offsets, const float *vecs)
{
    (void)g; (void)offsets; (void)vecs;
    return no_gpu();
}

int qv_gpu_ivf_probe(qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe, float *dist,
                     int64_t *lists)
{
    (void)g; (void)nq; (void)q; (void)nprobe; (void)dist; (void)lists;
    return no_gpu();
}

int qv_gpu_ivf_search(qv_gpu_ivf *g, size_t nq, const float *q, size_t nprobe, size_t k,
                      float *dist, int64_t *rows)
{
    (void)g; (void)nq; (void)q; (void)nprobe; (void)k; (void)dist; (void)rows;
    return no_gpu();
}
