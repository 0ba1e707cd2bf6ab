/*
 * gpu/gpu_cuda.c -- host side of the CUDA build: the device probe, the public
 * qv_gpu_available / qv_gpu_device_name, the shared context (stream + cuBLAS handle
 * behind one mutex) and the translation of CUDA / cuBLAS codes into QV_E*.
 *
 * The probe runs once (pthread_once): device count, device 0 selected, then a trivial
 * kernel launched and waited for, so that a device this build has no code for (older
 * than sm_90, or a driver too old for our PTX) reads as "no device" instead of failing
 * at the first search. QV_GPU=off in the environment makes the probe answer 0 (tests
 * and benchmarks use it to force the CPU path). Compiled by cc, so C only (and C++-clean
 * for the emulated build).
 */
#include "gpu/gpu_internal.h"
#include "gpu/gpu_internal_host.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_ok;                 /* written once under probe_once */
static char probe_msg[320];          /* why not, when !probe_ok */
static atomic_int device_broken;     /* set after a sticky CUDA error */

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static qv_gpu_ctx ctx;
static int ctx_ready;                /* under ctx_lock */

static void do_probe(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(probe_msg, sizeof probe_msg, "no usable CUDA device: cudaGetDeviceCount: %s (%s)",
                 cudaGetErrorString(e), cudaGetErrorName(e));
        return;
    }
    if (n < 1) {
        snprintf(probe_msg, sizeof probe_msg, "no CUDA device found");
        return;
    }
    if ((e = cudaSetDevice(0)) != cudaSuccess || (e = qv_gpu__selftest()) != cudaSuccess) {
        snprintf(probe_msg, sizeof probe_msg,
                 "CUDA device 0 cannot run this build's kernels (built for sm_90 + "
                 "compute_90 PTX): %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
        return;
    }
    probe_ok = 1;
}

int qv_gpu_probe(void)
{
    if (qv_gpu__env_off()) return 0;
    pthread_once(&probe_once, do_probe);
    return probe_ok && !atomic_load(&device_broken);
}

int qv_gpu_require(void)
{
    if (qv_gpu__env_off()) return qv_fail(QV_ENODEV, "GPU disabled by QV_GPU=%s", getenv("QV_GPU"));
    pthread_once(&probe_once, do_probe);
    if (!probe_ok) return qv_fail(QV_ENODEV, "%s", probe_msg);
    if (atomic_load(&device_broken))
        return qv_fail(QV_ENODEV, "the CUDA device failed earlier in this process (sticky "
                                  "error); GPU calls are disabled");
    return QV_OK;
}

int qv_gpu_available(void) { return qv_gpu_probe(); }

int qv_gpu_device_name(char *buf, size_t len)
{
    int rc;
    struct cudaDeviceProp prop;
    if (buf && len) buf[0] = '\0';
    if (!buf || !len) return qv_fail(QV_EINVAL, "qv_gpu_device_name: empty buffer");
    if ((rc = qv_gpu_require()) != QV_OK) return rc;
    memset(&prop, 0, sizeof prop);
    QV_CU(cudaGetDeviceProperties(&prop, 0));
    snprintf(buf, len, "%s", prop.name);
    rc = QV_OK;
cleanup:
    return rc;
}

/* ---- the shared context ---------------------------------------------------------- */

int qv_gpu__lock(qv_gpu_ctx **out)
{
    int rc;
    *out = NULL;
    if ((rc = qv_gpu_require()) != QV_OK) return rc;
    pthread_mutex_lock(&ctx_lock);
    if (!ctx_ready) {
        QV_CU(cudaSetDevice(0));
        QV_CU(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));
        {
            cublasStatus_t s = cublasCreate(&ctx.blas);
            if (s != CUBLAS_STATUS_SUCCESS) {
                cudaStreamDestroy(ctx.stream);
                rc = qv_gpu__cublas_fail(s, "cublasCreate", __FILE__, __LINE__);
                goto cleanup;
            }
        }
        {
            cublasStatus_t s = cublasSetStream(ctx.blas, ctx.stream);
            if (s != CUBLAS_STATUS_SUCCESS) {
                cublasDestroy(ctx.blas);
                cudaStreamDestroy(ctx.stream);
                rc = qv_gpu__cublas_fail(s, "cublasSetStream", __FILE__, __LINE__);
                goto cleanup;
            }
        }
        ctx_ready = 1;
    } else {
        /* The current device is per host thread: set it for this caller. */
        QV_CU(cudaSetDevice(0));
    }
    *out = &ctx;
    return QV_OK;
cleanup:
    pthread_mutex_unlock(&ctx_lock);
    return rc;
}

void qv_gpu__unlock(void) { pthread_mutex_unlock(&ctx_lock); }

/* ---- error translation ---------------------------------------------------------------- */

static int is_sticky(cudaError_t e)
{
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorAssert:
        return 1;
    default:
        return 0;
    }
}

int qv_gpu__cuda_fail(cudaError_t e, const char *what, const char *file, int line)
{
    int rc = QV_EINTERNAL;
    switch (e) {
    case cudaErrorMemoryAllocation:
        rc = QV_ENOMEM;
        break;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
    case cudaErrorDevicesUnavailable:
    case cudaErrorInvalidDevice:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
        rc = QV_ENODEV;
        break;
    default:
        break;
    }
    if (is_sticky(e)) {
        atomic_store(&device_broken, 1);
        (void)cudaGetLastError();
    }
    return qv_fail(rc, "CUDA error %s (%s) in %s at %s:%d%s", cudaGetErrorName(e),
                   cudaGetErrorString(e), what, file, line,
                   is_sticky(e) ? "; the GPU is disabled for this process" : "");
}

int qv_gpu__cublas_fail(cublasStatus_t s, const char *what, const char *file, int line)
{
    int rc = QV_EINTERNAL;
    if (s == CUBLAS_STATUS_ALLOC_FAILED) rc = QV_ENOMEM;
    if (s == CUBLAS_STATUS_NOT_INITIALIZED || s == CUBLAS_STATUS_ARCH_MISMATCH) rc = QV_ENODEV;
    return qv_fail(rc, "cuBLAS error %s (%d) in %s at %s:%d", cublasGetStatusString(s), (int)s,
                   what, file, line);
}
