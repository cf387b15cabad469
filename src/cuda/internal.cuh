/* Internals of the CUDA backend (src/cuda/), shared by its files: the
 * context, error conversion, the elementwise kernels' launchers and the
 * batched orthogonalization. CUDA C++ kept C-like: no exceptions, no
 * templates beyond what cuBLAS needs, every return code checked. */
#ifndef MUON_CUDA_INTERNAL_CUH
#define MUON_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "muon_cuda.h"

extern "C" {
#include "ortho/ortho.h"
}

/* Internal streams (each with its own cuBLAS handle, since one handle's
 * workspace must not be shared by concurrent streams): groups of same-shape
 * matrices run on them side by side. */
#define MUON__CUDA_STREAMS 4
#define MUON__CUDA_ERR_CAP 512

struct muon_cuda {
    int device;
    cudaStream_t user; /* the caller's stream (NULL: legacy default) */
    cudaStream_t s[MUON__CUDA_STREAMS];
    cublasHandle_t h[MUON__CUDA_STREAMS];
    cudaEvent_t fork_ev, join_ev[MUON__CUDA_STREAMS];
    void *work; /* muon_cuda_orthogonalize's workspace, grown on demand */
    size_t work_bytes;
    int *flag_host; /* pinned: the finiteness flag copied back */
    char err[MUON__CUDA_ERR_CAP];
};

/* ---- errors (context.cu) */
/* Record a message in c->err (c may be NULL) and return s. */
muon_status muon__cuda_fail(muon_cuda *c, muon_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A CUDA runtime / cuBLAS failure as a status, with where and why. */
muon_status muon__cuda_rt(muon_cuda *c, cudaError_t e, const char *what, int line);
muon_status muon__cuda_blas(muon_cuda *c, cublasStatus_t e, const char *what, int line);
void muon__cuda_set_last(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define MUON__CU(ctx, expr)                                                       \
    do {                                                                          \
        cudaError_t e_ = (expr);                                                  \
        if (e_ != cudaSuccess)                                                    \
            return muon__cuda_rt((ctx), e_, #expr, __LINE__);                     \
    } while (0)
#define MUON__CUBLAS(ctx, expr)                                                   \
    do {                                                                          \
        cublasStatus_t e_ = (expr);                                               \
        if (e_ != CUBLAS_STATUS_SUCCESS)                                          \
            return muon__cuda_blas((ctx), e_, #expr, __LINE__);                   \
    } while (0)
#define MUON__TRY(expr)                                                           \
    do {                                                                          \
        muon_status s_ = (expr);                                                  \
        if (s_ != MUON_OK)                                                        \
            return s_;                                                            \
    } while (0)

/* The calling thread's current device, switched to c's for one call and
 * restored on every return (the library leaves process and thread settings
 * as it found them). */
typedef struct {
    int old, ok;
} muon__cuda_dev_guard;
muon_status muon__cuda_enter(muon_cuda *c, muon__cuda_dev_guard *g);
void muon__cuda_leave(const muon__cuda_dev_guard *g);

/* Order the first k internal streams after the caller's stream, and the
 * caller's stream after them. */
muon_status muon__cuda_fork(muon_cuda *c, int k);
muon_status muon__cuda_join(muon_cuda *c, int k);

/* ---- elementwise kernels (kernels.cu); every launcher checks the launch */
typedef __nv_bfloat16 muon__bf16_t;

/* Threads per block of every elementwise kernel. */
#define MUON__CUDA_THREADS 256

/* Sum of a block's values in double, in a fixed tree order (the same bits
 * every run); every thread of the block calls it. */
static __device__ __forceinline__ double muon__cuda_block_sum(double v)
{
    __shared__ double sh[MUON__CUDA_THREADS];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int w = MUON__CUDA_THREADS / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w)
            sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    return sh[0];
}

/* Deterministic per-matrix sum of squares in double: matrix b's chunk k
 * partial lands in partials[b * nchunk + k] (a fixed order, so the same
 * bits every run), then one block per matrix adds them up. The finish also
 * sets *nonfinite (when given) if any sum is NaN or Inf, i.e. the matrix
 * held one: the squares of finite floats cannot overflow a double. */
int muon__cuda_nchunk(long per);
muon_status muon__cuda_sumsq(muon_cuda *c, cudaStream_t s, const float *x, long batch, long per,
                             double *partials, double *sumsq, int *nonfinite);
muon_status muon__cuda_sumsq_finish(muon_cuda *c, cudaStream_t s, long batch, int nchunk,
                                    const double *partials, double *sumsq, int *nonfinite);
/* y = x / (sqrt(sumsq[b]) * norm + eps) per matrix, in double then rounded
 * as the CPU does; into y (fp32) or yh (bf16), whichever is not NULL. */
muon_status muon__cuda_normalize(muon_cuda *c, cudaStream_t s, const float *x, long batch,
                                 long per, const double *sumsq, double norm, double eps, float *y,
                                 muon__bf16_t *yh);
muon_status muon__cuda_to_bf16(muon_cuda *c, cudaStream_t s, const float *x, muon__bf16_t *y,
                               size_t n);
/* Per m x m matrix (column-major or row-major alike: the result is
 * symmetric) dst = alpha sym(raw) + beta b + diag I, where sym(raw) reads
 * raw's lower triangle (column-major: the block lower triangle the tiled
 * products compute) for both halves. b may be NULL or equal dst; dst must
 * not be raw. dsth (may be NULL) also receives dst rounded to bf16. */
muon_status muon__cuda_sym_finish(muon_cuda *c, cudaStream_t s, long batch, long m,
                                  const float *raw, float alpha, const float *b, float beta,
                                  float diag, float *dst, muon__bf16_t *dsth);
/* dst = diag I per m x m matrix. */
muon_status muon__cuda_fill_diag(muon_cuda *c, cudaStream_t s, long batch, long m, float diag,
                                 float *dst);

/* ---- batched orthogonalization (ortho.cu) */
/* Device pointers of one call's workspace for `batch` matrices of the wide
 * view m x n; muon__cuda_ortho_layout(NULL, ...) gives the bytes needed. */
typedef struct {
    float *xa, *xb;    /* X ping-pong, batch * m * n each */
    float *mm[5];      /* m x m per matrix: R/A, Z/S, Q, raw tile products, scratch */
    muon__bf16_t *xh, *ah, *sh; /* bf16 operands of the mixed steps */
    double *sumsq, *partials;
    int *nonfinite;
    int nchunk;
} muon__cuda_ortho_ws;
size_t muon__cuda_ortho_layout(void *base, const muon_ortho_config *c, long batch, long rows,
                               long cols, muon__cuda_ortho_ws *ws);
/* cfg resolved for the GPU: defaults filled, the AUTO method as the CPU
 * picks it, AUTO precision -> mixed. MUON_ERR_UNSUPPORTED for svd / AOL. */
muon_status muon__cuda_ortho_resolve(const muon_ortho_config *cfg, long rows, long cols,
                                     muon_ortho_config *out);
/* The iterations on X0 already normalized in ws->xa (fp32) or ws->xh (bf16,
 * when c runs bf16 steps), on stream s with handle h. The result goes to
 * out, or when out is NULL to a workspace buffer returned in *result. */
muon_status muon__cuda_ortho_iterate(muon_cuda *c, cudaStream_t s, cublasHandle_t h,
                                     const muon_ortho_config *cfg, long batch, long rows,
                                     long cols, const muon__cuda_ortho_ws *ws, float *out,
                                     float **result);

#endif
