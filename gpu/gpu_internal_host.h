/*
 * gpu/gpu_internal_host.h -- private to gpu/: what the library's loader and the CUDA
 * plugin share (gpu/gpu_options.c), without CUDA headers.
 */
#ifndef QV_GPU_GPU_INTERNAL_HOST_H
#define QV_GPU_GPU_INTERNAL_HOST_H

#include "gpu/gpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/** 1 when QV_GPU=off (or 0, no) in the environment: every GPU call takes the CPU path. */
int qv_gpu__env_off(void);
/** 1 when QV_GPU=on: load the CUDA plugin even where no NVIDIA driver shows (gpu_loader.c). */
int qv_gpu__env_on(void);

#ifdef __cplusplus
}
#endif
#endif
