/*
 * gpu/check/cuda_emu.cu -- the CPU emulation declared in cuda_emu.h (C++, compiled by
 * the host compiler as C++ in the emulated build only; never by nvcc).
 */
#include "gpu/check/cuda_emu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <vector>

dim3 threadIdx, blockIdx, blockDim, gridDim;

static int nodev(void)
{
    const char *v = getenv("QV_EMU_NODEV");
    return v && *v && strcmp(v, "0") != 0;
}

extern "C" cudaError_t cudaGetDeviceCount(int *n)
{
    if (nodev()) { *n = 0; return cudaErrorNoDevice; }
    *n = 1;
    return cudaSuccess;
}
extern "C" cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
extern "C" cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d)
{
    if (d != 0) return cudaErrorInvalidDevice;
    snprintf(p->name, sizeof p->name, "CPU emulation (gpu/check/cuda_emu)");
    return cudaSuccess;
}
extern "C" const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidValue: return "invalid argument";
    default: return "emulated error";
    }
}
extern "C" const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    default: return "cudaErrorUnknown";
    }
}
extern "C" cudaError_t cudaGetLastError(void) { return cudaSuccess; }
extern "C" cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    (void)flags;
    *s = (cudaStream_t)malloc(1);
    return cudaSuccess;
}
extern "C" cudaError_t cudaStreamDestroy(cudaStream_t s) { free(s); return cudaSuccess; }
extern "C" cudaError_t cudaStreamSynchronize(cudaStream_t s) { (void)s; return cudaSuccess; }
/* Host memory is all one here: page-locking only has to be accepted. */
extern "C" cudaError_t cudaHostRegister(void *p, size_t bytes, unsigned flags)
{
    return p && bytes && !flags ? cudaSuccess : cudaErrorInvalidValue;
}
extern "C" cudaError_t cudaHostUnregister(void *p) { return p ? cudaSuccess : cudaErrorInvalidValue; }

static size_t emu_free_bytes(void)
{
    const char *v = getenv("QV_EMU_MEM");
    return v ? (size_t)strtoull(v, NULL, 10) : ((size_t)256 << 20);
}

extern "C" cudaError_t cudaMalloc(void **p, size_t bytes)
{
    if (bytes > emu_free_bytes() * 2) { *p = NULL; return cudaErrorMemoryAllocation; }
    /* Garbage, like device memory: catches reads of uninitialized buffers in tests. */
    unsigned char *m = (unsigned char *)malloc(bytes ? bytes : 1);
    if (!m) { *p = NULL; return cudaErrorMemoryAllocation; }
    memset(m, 0xA5, bytes);
    *p = m;
    return cudaSuccess;
}
extern "C" cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
extern "C" cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k)
{
    (void)k;
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}
extern "C" cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes,
                                       enum cudaMemcpyKind k, cudaStream_t s)
{
    (void)s;
    return cudaMemcpy(dst, src, bytes, k);
}
extern "C" cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s)
{
    (void)s;
    memset(p, v, bytes);
    return cudaSuccess;
}
extern "C" cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
    *free_b = emu_free_bytes();
    *total_b = *free_b * 2;
    return cudaSuccess;
}

/* ---- cuBLAS ------------------------------------------------------------------------- */

extern "C" cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = (cublasHandle_t)malloc(1);
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasDestroy(cublasHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }
extern "C" cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    (void)h; (void)s;
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m)
{
    (void)h; (void)m;
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" const char *cublasGetStatusString(cublasStatus_t s)
{
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_EMULATED_ERROR";
}

/* Column-major C = alpha op(A) op(B) + beta C, A/B read through a getter. */
template <class GA, class GB>
static void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                 GA a, int lda, GB b, int ldb, float beta, float *C, int ldc)
{
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float s = 0.0f;
            for (int l = 0; l < k; l++) {
                float av = ta == CUBLAS_OP_N ? a((size_t)l * lda + i) : a((size_t)i * lda + l);
                float bv = tb == CUBLAS_OP_N ? b((size_t)j * ldb + l) : b((size_t)l * ldb + j);
                s += av * bv;
            }
            float *c = C + (size_t)j * ldc + i;
            *c = alpha * s + (beta != 0.0f ? beta * *c : 0.0f);
        }
}

extern "C" cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                      int m, int n, int k, const float *alpha, const float *A,
                                      int lda, const float *B, int ldb, const float *beta, float *C,
                                      int ldc)
{
    (void)h;
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    gemm(ta, tb, m, n, k, *alpha, [A](size_t i) { return A[i]; }, lda,
         [B](size_t i) { return B[i]; }, ldb, *beta, C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                       int m, int n, int k, const void *alpha, const void *A,
                                       cudaDataType at, int lda, const void *B, cudaDataType bt,
                                       int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                                       cublasComputeType_t comp, cublasGemmAlgo_t algo)
{
    (void)h; (void)comp; (void)algo;
    if (at != CUDA_R_16F || bt != CUDA_R_16F || ct != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    const __half *a = (const __half *)A, *b = (const __half *)B;
    gemm(ta, tb, m, n, k, *(const float *)alpha, [a](size_t i) { return __half2float(a[i]); }, lda,
         [b](size_t i) { return __half2float(b[i]); }, ldb, *(const float *)beta, (float *)C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- kernel language ---------------------------------------------------------------- */

unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
long long __double2ll_rn(double d) { return llrint(d); }
unsigned atomicAdd(unsigned *p, unsigned v) { unsigned o = *p; *p = o + v; return o; }
unsigned atomicMax(unsigned *p, unsigned v) { unsigned o = *p; if (v > o) *p = v; return o; }

__half __float2half_rn(float f)
{
    unsigned u = __float_as_uint(f), sign = (u >> 16) & 0x8000u;
    float a = fabsf(f);
    __half h;
    if (a != a) { h.bits = (unsigned short)(sign | 0x7E00u); return h; }
    if (a >= 65520.0f) { h.bits = (unsigned short)(sign | 0x7C00u); return h; }
    if (a < 6.103515625e-05f) {                        /* subnormal: multiples of 2^-24 */
        h.bits = (unsigned short)(sign | (unsigned)nearbyintf(a * 16777216.0f));
        return h;
    }
    int e;
    float m = frexpf(a, &e);                           /* a = m 2^e, m in [0.5, 1) */
    unsigned mant = (unsigned)nearbyintf((m * 2.0f - 1.0f) * 1024.0f);
    int ex = e - 1 + 15;
    if (mant == 1024) { mant = 0; ex++; }
    h.bits = (unsigned short)(sign | ((unsigned)ex << 10) | mant);
    return h;
}

float __half2float(__half h)
{
    unsigned sign = h.bits & 0x8000u, ex = (h.bits >> 10) & 31u, mant = h.bits & 1023u;
    float v;
    if (ex == 0) v = ldexpf((float)mant, -24);
    else if (ex == 31) v = mant ? NAN : INFINITY;
    else v = ldexpf((float)(mant | 1024u), (int)ex - 25);
    return sign ? -v : v;
}

/* Coroutine scheduling of one block for kernels with barriers. */
enum { T_READY, T_BARRIER, T_DONE };
static ucontext_t sched_ctx;
static std::vector<ucontext_t> tctx;
static std::vector<int> tstate;
static std::vector<char> stacks;
static const size_t STACK = 256 * 1024;
static const std::function<void()> *cur_fn;
static unsigned cur_tid;
static int coroutine_mode;

static void entry(void)
{
    (*cur_fn)();
    tstate[cur_tid] = T_DONE;
    swapcontext(&tctx[cur_tid], &sched_ctx);
}

void __syncthreads(void)
{
    if (!coroutine_mode) {
        fprintf(stderr, "cuda_emu: __syncthreads in a kernel launched without barrier support\n");
        abort();
    }
    unsigned t = cur_tid;
    tstate[t] = T_BARRIER;
    swapcontext(&tctx[t], &sched_ctx);
}

void qv_emu_launch(const char *name, unsigned grid, unsigned block, std::function<void()> fn)
{
    gridDim = dim3(grid);
    blockDim = dim3(block);
    coroutine_mode = strstr(name, "select") != NULL;
    if (!coroutine_mode) {
        for (unsigned b = 0; b < grid; b++) {
            blockIdx = dim3(b);
            for (unsigned t = 0; t < block; t++) {
                threadIdx = dim3(t);
                fn();
            }
        }
        return;
    }
    if (tctx.size() < block) {
        tctx.resize(block);
        tstate.resize(block);
        stacks.resize(block * STACK);
    }
    cur_fn = &fn;
    for (unsigned b = 0; b < grid; b++) {
        blockIdx = dim3(b);
        for (unsigned t = 0; t < block; t++) {
            getcontext(&tctx[t]);
            tctx[t].uc_stack.ss_sp = &stacks[t * STACK];
            tctx[t].uc_stack.ss_size = STACK;
            tctx[t].uc_link = &sched_ctx;
            makecontext(&tctx[t], entry, 0);
            tstate[t] = T_READY;
        }
        for (;;) {
            unsigned done = 0;
            for (unsigned t = 0; t < block; t++) {
                if (tstate[t] == T_DONE) { done++; continue; }
                tstate[t] = T_READY;
                cur_tid = t;
                threadIdx = dim3(t);
                swapcontext(&sched_ctx, &tctx[t]);
            }
            if (done == block) break;
        }
    }
    coroutine_mode = 0;
}
