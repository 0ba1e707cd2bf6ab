/*
 * gpu/gpu_plugin.c -- the one symbol libquiver-gpu.so exports: the table of its GPU
 * functions (gpu/gpu_plugin.h), the CUDA implementations of gpu/gpu.h.
 */
#include "gpu/gpu_plugin.h"

#include "quiver.h"

QV_API const qv_gpu_plugin *qv_gpu_plugin_v1(void);

const qv_gpu_plugin *qv_gpu_plugin_v1(void)
{
    static const qv_gpu_plugin table = {
        .abi = QV_GPU_PLUGIN_ABI,
        .size = sizeof(qv_gpu_plugin),
        .version = QV_VERSION,
        .last_error = qv_last_error,
        .probe = qv_gpu_probe,
        .require = qv_gpu_require,
        .device_name = qv_gpu_device_name,
        .flat_new = qv_gpu_flat_new,
        .flat_new_host = qv_gpu_flat_new_host,
        .flat_free = qv_gpu_flat_free,
        .flat_add = qv_gpu_flat_add,
        .flat_set = qv_gpu_flat_set,
        .flat_truncate = qv_gpu_flat_truncate,
        .flat_size = qv_gpu_flat_size,
        .flat_memory = qv_gpu_flat_memory,
        .flat_knn = qv_gpu_flat_knn,
        .kmeans = qv_gpu_kmeans,
        .ivf_new = qv_gpu_ivf_new,
        .ivf_free = qv_gpu_ivf_free,
        .ivf_set_lists = qv_gpu_ivf_set_lists,
        .ivf_probe = qv_gpu_ivf_probe,
        .ivf_search = qv_gpu_ivf_search,
    };
    return &table;
}
