/* kernels.cu - the orthogonalization's elementwise kernels: the Frobenius
 * norm as a two-stage deterministic reduction, the normalization, bf16
 * rounding, and the pass that turns a tiled symmetric product into a full
 * matrix with the polynomial's other terms added. Each mirrors a loop of
 * src/ortho/ (ortho.c's sum_squares and scale_copy, kernels.c's mirror and
 * poly_eval's additions); tests/gpu/ checks them through the whole
 * orthogonalization against the CPU and the double reference.
 *
 * Built with -fmad=false (Makefile): every a * b + c rounds twice, as the
 * CPU library's ISO C build does (gcc's -ffp-contract=off under -std=c11). */
#include "cuda/internal.cuh"

#define THREADS MUON__CUDA_THREADS
#define CHUNK ((long)1 << 16) /* elements per block in the reductions */
#define MAX_CHUNKS 1024

static muon_status launched(muon_cuda *c, int line)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? MUON_OK : muon__cuda_rt(c, e, "kernel launch", line);
}

static unsigned blocks_for(size_t n)
{
    size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 65535u * 16u ? b : 65535u * 16u); /* grid-stride beyond */
}

int muon__cuda_nchunk(long per)
{
    long k = (per + CHUNK - 1) / CHUNK;
    return (int)(k < 1 ? 1 : k > MAX_CHUNKS ? MAX_CHUNKS : k);
}

/* blockIdx.x = matrix (up to 2^31 - 1 of them), blockIdx.y = chunk (at
 * most MAX_CHUNKS, within y's 65535) */
__global__ static void k_sumsq_partials(const float *x, long per, int nchunk, double *partials)
{
    long len = (per + nchunk - 1) / nchunk;
    long lo = (long)blockIdx.y * len, hi = lo + len < per ? lo + len : per;
    const float *xb = x + (size_t)blockIdx.x * (size_t)per;
    double acc = 0;
    for (long i = lo + threadIdx.x; i < hi; i += THREADS)
        acc += (double)xb[i] * (double)xb[i];
    double s = muon__cuda_block_sum(acc);
    if (threadIdx.x == 0)
        partials[(size_t)blockIdx.x * nchunk + blockIdx.y] = s;
}

__global__ static void k_sumsq_finish(const double *partials, int nchunk, double *sumsq,
                                      int *nonfinite)
{
    double acc = 0;
    for (int k = threadIdx.x; k < nchunk; k += THREADS)
        acc += partials[(size_t)blockIdx.x * nchunk + k];
    double s = muon__cuda_block_sum(acc);
    if (threadIdx.x == 0) {
        sumsq[blockIdx.x] = s;
        if (nonfinite && !isfinite(s))
            *nonfinite = 1; /* any writer writes 1: no race on the value */
    }
}

muon_status muon__cuda_sumsq_finish(muon_cuda *c, cudaStream_t s, long batch, int nchunk,
                                    const double *partials, double *sumsq, int *nonfinite)
{
    k_sumsq_finish<<<(unsigned)batch, THREADS, 0, s>>>(partials, nchunk, sumsq, nonfinite);
    return launched(c, __LINE__);
}

muon_status muon__cuda_sumsq(muon_cuda *c, cudaStream_t s, const float *x, long batch, long per,
                             double *partials, double *sumsq, int *nonfinite)
{
    int nchunk = muon__cuda_nchunk(per);
    k_sumsq_partials<<<dim3((unsigned)batch, (unsigned)nchunk), THREADS, 0, s>>>(x, per, nchunk,
                                                                                 partials);
    MUON__TRY(launched(c, __LINE__));
    return muon__cuda_sumsq_finish(c, s, batch, nchunk, partials, sumsq, nonfinite);
}

__global__ static void k_normalize(const float *x, size_t total, long per, const double *sumsq,
                                   double norm, double eps, float *y, muon__bf16_t *yh)
{
    for (size_t i = (size_t)blockIdx.x * THREADS + threadIdx.x; i < total;
         i += (size_t)gridDim.x * THREADS) {
        /* ortho.c: scale = 1 / (||X|| s + eps) in double, y = (float)(x scale) */
        double scale = 1.0 / (sqrt(sumsq[i / (size_t)per]) * norm + eps);
        float v = (float)((double)x[i] * scale);
        if (y)
            y[i] = v;
        if (yh)
            yh[i] = __float2bfloat16_rn(v);
    }
}

muon_status muon__cuda_normalize(muon_cuda *c, cudaStream_t s, const float *x, long batch,
                                 long per, const double *sumsq, double norm, double eps, float *y,
                                 muon__bf16_t *yh)
{
    size_t total = (size_t)batch * (size_t)per;
    k_normalize<<<blocks_for(total), THREADS, 0, s>>>(x, total, per, sumsq, norm, eps, y, yh);
    return launched(c, __LINE__);
}

__global__ static void k_to_bf16(const float *x, muon__bf16_t *y, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * THREADS + threadIdx.x; i < n;
         i += (size_t)gridDim.x * THREADS)
        y[i] = __float2bfloat16_rn(x[i]); /* nearest even, as muon_to_bf16 */
}

muon_status muon__cuda_to_bf16(muon_cuda *c, cudaStream_t s, const float *x, muon__bf16_t *y,
                               size_t n)
{
    k_to_bf16<<<blocks_for(n), THREADS, 0, s>>>(x, y, n);
    return launched(c, __LINE__);
}

__global__ static void k_sym_finish(size_t total, long m, const float *raw, float alpha,
                                    const float *b, float beta, float diag, float *dst,
                                    muon__bf16_t *dsth)
{
    size_t mm = (size_t)m * (size_t)m;
    for (size_t k = (size_t)blockIdx.x * THREADS + threadIdx.x; k < total;
         k += (size_t)gridDim.x * THREADS) {
        size_t base = k / mm * mm, e = k - base;
        long j = (long)(e / (size_t)m), i = (long)(e - (size_t)j * (size_t)m); /* (i, j) */
        long hi = i > j ? i : j, lo = i > j ? j : i;
        /* the lower triangle, element (hi, lo), column-major */
        float v = alpha * raw[base + (size_t)lo * (size_t)m + (size_t)hi];
        if (b)
            v = v + beta * b[k];
        if (i == j)
            v = v + diag;
        dst[k] = v;
        if (dsth)
            dsth[k] = __float2bfloat16_rn(v);
    }
}

muon_status muon__cuda_sym_finish(muon_cuda *c, cudaStream_t s, long batch, long m,
                                  const float *raw, float alpha, const float *b, float beta,
                                  float diag, float *dst, muon__bf16_t *dsth)
{
    size_t total = (size_t)batch * (size_t)m * (size_t)m;
    k_sym_finish<<<blocks_for(total), THREADS, 0, s>>>(total, m, raw, alpha, b, beta, diag, dst,
                                                       dsth);
    return launched(c, __LINE__);
}

__global__ static void k_fill_diag(size_t total, long m, float diag, float *dst)
{
    size_t mm = (size_t)m * (size_t)m;
    for (size_t k = (size_t)blockIdx.x * THREADS + threadIdx.x; k < total;
         k += (size_t)gridDim.x * THREADS) {
        size_t e = k % mm;
        dst[k] = e % (size_t)(m + 1) == 0 ? diag : 0.0f;
    }
}

muon_status muon__cuda_fill_diag(muon_cuda *c, cudaStream_t s, long batch, long m, float diag,
                                 float *dst)
{
    size_t total = (size_t)batch * (size_t)m * (size_t)m;
    k_fill_diag<<<blocks_for(total), THREADS, 0, s>>>(total, m, diag, dst);
    return launched(c, __LINE__);
}
