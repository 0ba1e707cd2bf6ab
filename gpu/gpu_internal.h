/*
 * gpu/gpu_internal.h -- private to gpu/ (gpu_cuda.c, the .cu files, gpu/check/).
 *
 * The device context: one process-wide CUDA stream and cuBLAS handle behind a mutex.
 * Every operation that touches the device takes the lock (qv_gpu__lock) for its whole
 * duration, so calls from many threads are serialized: there is one device, and one
 * stream keeps every call's kernels, copies and GEMMs in order without further events.
 *
 * Foreign codes are translated here (STYLE.md 5): cudaErrorMemoryAllocation and
 * CUBLAS_STATUS_ALLOC_FAILED -> QV_ENOMEM; no device / driver / kernel image ->
 * QV_ENODEV; anything else -> QV_EINTERNAL. The CUDA or cuBLAS text goes into the
 * message. A sticky error (the context is unusable: illegal address, launch failure,
 * ...) also marks the device broken, and qv_gpu_probe() answers 0 from then on.
 *
 * With -DQV_GPU_EMU the CUDA headers are replaced by gpu/check/cuda_emu.h, a CPU
 * emulation used to test the host logic and the kernels on machines without a GPU.
 */
#ifndef QV_GPU_GPU_INTERNAL_H
#define QV_GPU_GPU_INTERNAL_H

#ifdef QV_GPU_EMU
#include "gpu/check/cuda_emu.h"
#else
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#endif

#include "gpu/gpu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    cudaStream_t stream;
    cublasHandle_t blas;
} qv_gpu_ctx;

/** Lock the device and return the context (created on first use).
 *  @return QV_OK (then call qv_gpu__unlock), or QV_ENODEV / QV_EINTERNAL (not locked). */
int  qv_gpu__lock(qv_gpu_ctx **ctx);
void qv_gpu__unlock(void);

/** Translate a CUDA error (the call's text in what) into a QV_E* code and message. */
int qv_gpu__cuda_fail(cudaError_t e, const char *what, const char *file, int line);
/** Same for cuBLAS. */
int qv_gpu__cublas_fail(cublasStatus_t s, const char *what, const char *file, int line);

/** Launch a trivial kernel and wait for it: cudaSuccess when kernels of this build run
 *  on the current device (sm_90 code or compute_90 PTX). In gpu_knn.cu. */
cudaError_t qv_gpu__selftest(void);

/* In a function with `int rc` and a `cleanup:` label. */
#define QV_CU(call)                                                                       \
    do {                                                                                  \
        cudaError_t e_ = (call);                                                          \
        if (e_ != cudaSuccess) {                                                          \
            rc = qv_gpu__cuda_fail(e_, #call, __FILE__, __LINE__);                        \
            goto cleanup;                                                                 \
        }                                                                                 \
    } while (0)
#define QV_CUBLAS(call)                                                                   \
    do {                                                                                  \
        cublasStatus_t s_ = (call);                                                       \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                \
            rc = qv_gpu__cublas_fail(s_, #call, __FILE__, __LINE__);                      \
            goto cleanup;                                                                 \
        }                                                                                 \
    } while (0)
/* After a kernel launch: launch errors (bad configuration, no kernel image). */
#define QV_CU_LAUNCHED(name) QV_CU(cudaGetLastError())

/* ---- for gpu/check (the benchmark): the plan of one call and a GEMM-only mode ----- */

typedef struct {
    size_t tile_rows;              /* database rows per tile */
    size_t query_batch;            /* queries per GEMM */
    size_t query_chunk;            /* queries resident at once */
    size_t tiles;                  /* tiles per chunk */
    size_t gemms;                  /* GEMM calls made */
    size_t workspace_bytes;        /* device bytes allocated for the call */
} qv_gpu_plan;

enum { QV_GPU_KNN_GEMM_ONLY = 1 }; /* skip selection: dist/rows are left untouched */

/** Change a database's tile_rows / query_batch options (0 = auto), for the tiling sweep. */
void qv_gpu__flat_set_tiling(qv_gpu_flat *g, size_t tile_rows, size_t query_batch);
/** qv_gpu_flat_knn with flags and the plan it used (plan may be NULL). */
int qv_gpu__flat_knn_ex(qv_gpu_flat *g, size_t nq, const float *q, size_t k, float *dist,
                        int64_t *rows, unsigned flags, qv_gpu_plan *plan);

#ifdef __cplusplus
}
#endif
#endif
