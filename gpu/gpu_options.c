/*
 * gpu/gpu_options.c -- host code shared by the library's loader (gpu/gpu_loader.c) and
 * the CUDA plugin: the defaults of gpu/gpu.h's option structs (callers set options up
 * without loading the plugin; the plugin fills them for NULL options) and the QV_GPU
 * switch (off: the loader does not even load the plugin).
 */
#include "gpu/gpu_internal_host.h"

#include <stdlib.h>
#include <string.h>

void qv_gpu_options_init(qv_gpu_options *o)
{
    const char *m = getenv("QV_GPU_MATH");
    o->math = QV_GPU_MATH_FP32;
    if (m && strcmp(m, "tf32") == 0) o->math = QV_GPU_MATH_TF32;
    if (m && strcmp(m, "fp16") == 0) o->math = QV_GPU_MATH_FP16;
    o->max_device_bytes = 0;
    o->tile_rows = 0;
    o->query_batch = 0;
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

int qv_gpu__env_off(void)
{
    const char *v = getenv("QV_GPU");
    return v && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0);
}

int qv_gpu__env_on(void)
{
    const char *v = getenv("QV_GPU");
    return v && strcmp(v, "on") == 0;
}
