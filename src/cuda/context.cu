/* context.cu - the CUDA context: device discovery, creation and release,
 * the caller's stream and the fork/join of the internal streams, and the
 * conversion of CUDA / cuBLAS return codes into a status and a message. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/internal.cuh"

/* Thread-local: creation fails before there is an object to hold the text. */
static thread_local char last_error[MUON__CUDA_ERR_CAP];

void muon__cuda_set_last(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

extern "C" const char *muon_cuda_last_error(void)
{
    return last_error;
}

muon_status muon__cuda_fail(muon_cuda *c, muon_status s, const char *fmt, ...)
{
    if (!c)
        return s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return s;
}

static muon_status status_of_rt(cudaError_t e)
{
    switch (e) {
    case cudaErrorMemoryAllocation:
        return MUON_ERR_NOMEM;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorCallRequiresNewerDriver:
        return MUON_ERR_UNSUPPORTED;
    default:
        /* a failed launch or a device fault: the context is unusable */
        return MUON_ERR_STATE;
    }
}

muon_status muon__cuda_rt(muon_cuda *c, cudaError_t e, const char *what, int line)
{
    return muon__cuda_fail(c, status_of_rt(e), "CUDA error %s (%s) in %s (src/cuda, line %d)",
                           cudaGetErrorName(e), cudaGetErrorString(e), what, line);
}

muon_status muon__cuda_blas(muon_cuda *c, cublasStatus_t e, const char *what, int line)
{
    muon_status s = e == CUBLAS_STATUS_ALLOC_FAILED      ? MUON_ERR_NOMEM
                    : e == CUBLAS_STATUS_NOT_SUPPORTED ||
                              e == CUBLAS_STATUS_ARCH_MISMATCH
                        ? MUON_ERR_UNSUPPORTED
                    : e == CUBLAS_STATUS_INVALID_VALUE ? MUON_ERR_ARG
                                                       : MUON_ERR_STATE;
    return muon__cuda_fail(c, s, "cuBLAS error %s (%s) in %s (src/cuda, line %d)",
                           cublasGetStatusName(e), cublasGetStatusString(e), what, line);
}

muon_status muon__cuda_enter(muon_cuda *c, muon__cuda_dev_guard *g)
{
    g->ok = 0;
    MUON__CU(c, cudaGetDevice(&g->old));
    g->ok = 1;
    if (g->old != c->device)
        MUON__CU(c, cudaSetDevice(c->device));
    return MUON_OK;
}

void muon__cuda_leave(const muon__cuda_dev_guard *g)
{
    int now;
    if (g->ok && cudaGetDevice(&now) == cudaSuccess && now != g->old)
        (void)cudaSetDevice(g->old);
}

muon_status muon__cuda_fork(muon_cuda *c, int k)
{
    MUON__CU(c, cudaEventRecord(c->fork_ev, c->user));
    for (int i = 0; i < k; i++)
        MUON__CU(c, cudaStreamWaitEvent(c->s[i], c->fork_ev, 0));
    return MUON_OK;
}

muon_status muon__cuda_join(muon_cuda *c, int k)
{
    for (int i = 0; i < k; i++) {
        MUON__CU(c, cudaEventRecord(c->join_ev[i], c->s[i]));
        MUON__CU(c, cudaStreamWaitEvent(c->user, c->join_ev[i], 0));
    }
    return MUON_OK;
}

extern "C" int muon_cuda_device_count(void)
{
    int n = 0;
    /* no driver, no device, or a driver too old: all mean "none usable" */
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky-free error state */
        return 0;
    }
    return n;
}

/* Everything create made, in reverse; safe on a half-built context. */
static void release(muon_cuda *c)
{
    for (int i = 0; i < MUON__CUDA_STREAMS; i++) {
        if (c->h[i])
            (void)cublasDestroy(c->h[i]);
        if (c->s[i])
            (void)cudaStreamDestroy(c->s[i]);
        if (c->join_ev[i])
            (void)cudaEventDestroy(c->join_ev[i]);
    }
    if (c->fork_ev)
        (void)cudaEventDestroy(c->fork_ev);
    if (c->work)
        (void)cudaFree(c->work);
    if (c->flag_host)
        (void)cudaFreeHost(c->flag_host);
    free(c);
}

static muon_status build(muon_cuda *c)
{
    for (int i = 0; i < MUON__CUDA_STREAMS; i++) {
        /* non-blocking: never implicitly ordered with the legacy stream,
         * only through the events of fork and join */
        MUON__CU(c, cudaStreamCreateWithFlags(&c->s[i], cudaStreamNonBlocking));
        MUON__CU(c, cudaEventCreateWithFlags(&c->join_ev[i], cudaEventDisableTiming));
        MUON__CUBLAS(c, cublasCreate(&c->h[i]));
        MUON__CUBLAS(c, cublasSetStream(c->h[i], c->s[i]));
        /* fp32 products stay fp32: no TF32 tensor-core shortcut */
        MUON__CUBLAS(c, cublasSetMathMode(c->h[i], CUBLAS_DEFAULT_MATH));
        MUON__CUBLAS(c, cublasSetPointerMode(c->h[i], CUBLAS_POINTER_MODE_HOST));
    }
    MUON__CU(c, cudaEventCreateWithFlags(&c->fork_ev, cudaEventDisableTiming));
    MUON__CU(c, cudaMallocHost((void **)&c->flag_host, sizeof(int)));
    return MUON_OK;
}

extern "C" muon_status muon_cuda_create(int device, muon_cuda **out)
{
    if (!out) {
        muon__cuda_set_last("muon_cuda_create: out is NULL");
        return MUON_ERR_NULL;
    }
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        (void)cudaGetLastError();
        muon__cuda_set_last("no usable CUDA device: %s",
                            e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
        return MUON_ERR_UNSUPPORTED;
    }
    if (device < 0 || device >= n) {
        muon__cuda_set_last("CUDA device %d does not exist (%d found)", device, n);
        return MUON_ERR_UNSUPPORTED;
    }
    muon_cuda *c = (muon_cuda *)calloc(1, sizeof *c);
    if (!c) {
        muon__cuda_set_last("out of host memory");
        return MUON_ERR_NOMEM;
    }
    c->device = device;
    muon__cuda_dev_guard g;
    muon_status s = muon__cuda_enter(c, &g);
    if (s == MUON_OK)
        s = build(c);
    muon__cuda_leave(&g);
    if (s != MUON_OK) {
        muon__cuda_set_last("%s", c->err);
        release(c);
        return s;
    }
    muon__cuda_set_last("%s", "");
    *out = c;
    return MUON_OK;
}

extern "C" void muon_cuda_free(muon_cuda *c)
{
    if (!c)
        return;
    muon__cuda_dev_guard g;
    int entered = muon__cuda_enter(c, &g) == MUON_OK;
    /* the internal streams' work must end before their buffers go */
    for (int i = 0; i < MUON__CUDA_STREAMS; i++)
        if (c->s[i])
            (void)cudaStreamSynchronize(c->s[i]);
    release(c);
    if (entered)
        muon__cuda_leave(&g);
}

extern "C" const char *muon_cuda_error(const muon_cuda *c)
{
    return c ? c->err : "context is NULL";
}

extern "C" muon_status muon_cuda_set_stream(muon_cuda *c, void *stream)
{
    if (!c)
        return MUON_ERR_NULL;
    c->user = (cudaStream_t)stream;
    c->err[0] = '\0';
    return MUON_OK;
}

extern "C" muon_status muon_cuda_synchronize(muon_cuda *c)
{
    if (!c)
        return MUON_ERR_NULL;
    muon__cuda_dev_guard g;
    muon_status s = muon__cuda_enter(c, &g);
    if (s == MUON_OK) {
        cudaError_t e = cudaStreamSynchronize(c->user);
        s = e == cudaSuccess ? MUON_OK : muon__cuda_rt(c, e, "cudaStreamSynchronize", __LINE__);
    }
    muon__cuda_leave(&g);
    if (s == MUON_OK)
        c->err[0] = '\0';
    return s;
}
