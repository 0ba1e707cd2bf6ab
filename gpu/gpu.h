/*
 * gpu/gpu.h -- the narrow interface between index/ and the GPU part.
 *
 * Behind it stands either gpu/gpu_stub.c (no nvcc at build time: everything answers
 * QV_ENODEV) or the CUDA files (the gpu .cu files). Callers treat QV_ENODEV as "use the CPU path".
 * Only core/ types appear here, so index/ never sees CUDA headers.
 */
#ifndef QV_GPU_GPU_H
#define QV_GPU_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "quiver.h"

/** 1 when built with CUDA and a device answers (probed once). */
int qv_gpu_probe(void);

#endif
