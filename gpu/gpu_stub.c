/* gpu/gpu_stub.c -- built when nvcc is absent: the GPU part answers QV_ENODEV. */
#include "gpu/gpu.h"

#include "core/error.h"

int qv_gpu_probe(void) { return 0; }

int qv_gpu_available(void) { return 0; }

int qv_gpu_device_name(char *buf, size_t len)
{
    if (buf && len) buf[0] = '\0';
    return qv_fail(QV_ENODEV, "this build of Quiver has no GPU support (nvcc was not found at build time)");
}
