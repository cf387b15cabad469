/* opt_kernels.cu - the optimizer's fused elementwise kernels. Each is the
 * per-element expression of src/optim/ written the same way (muon.c's
 * n_at and update, adamw.c's range); with -fmad=false and CUDA's IEEE
 * division and square root each element gets the CPU's bits, which
 * tests/gpu/ checks. A parameter flagged by the gradient check is skipped,
 * so its weights and state stay as they were. */
#include "cuda/opt.cuh"

#define THREADS MUON__CUDA_THREADS

static muon_status launched(muon_cuda *c, int line)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? MUON_OK : muon__cuda_rt(c, e, "kernel launch", line);
}

__global__ static void k_check(const muon__cuda_tensor *t, const muon__cuda_chunk *chunks,
                               int *flags)
{
    muon__cuda_chunk ch = chunks[blockIdx.x];
    const muon__cuda_tensor *x = &t[ch.t];
    if (x->hold) {
        /* held: its gradient may be NULL and is not read; the tensor's
         * first block alone writes its flag (a plain store, no race) */
        if (ch.lo == 0 && threadIdx.x == 0)
            flags[x->param] = 2;
        return;
    }
    long hi = ch.lo + MUON__CUDA_TCHUNK < x->n ? ch.lo + MUON__CUDA_TCHUNK : x->n;
    int bad = 0;
    for (long i = ch.lo + threadIdx.x; i < hi; i += THREADS)
        bad |= !isfinite(x->g[i]);
    /* any writer writes 1: the outcome does not depend on the order */
    if (__syncthreads_or(bad) && threadIdx.x == 0)
        atomicOr(&flags[x->param], 1);
}

muon_status muon__cuda_check_grads(muon_cuda *c, cudaStream_t s, const muon__cuda_tensor *t,
                                   const muon__cuda_chunk *chunks, int n_chunks, int *flags)
{
    if (n_chunks == 0)
        return MUON_OK;
    k_check<<<(unsigned)n_chunks, THREADS, 0, s>>>(t, chunks, flags);
    return launched(c, __LINE__);
}

/* blockIdx.x = slot, blockIdx.y = chunk of the matrix (kernels.cu's
 * chunking, so the partials line up with k_sumsq_finish) */
__global__ static void k_momentum(const muon__cuda_slot *slots, long per, float mu, int nesterov,
                                  const int *flags, float *n, double *partials, int nchunk)
{
    const muon__cuda_slot sl = slots[blockIdx.x];
    const int skip = flags[sl.param];
    long len = (per + nchunk - 1) / nchunk;
    long lo = (long)blockIdx.y * len, hi = lo + len < per ? lo + len : per;
    float *nb = n + (size_t)blockIdx.x * (size_t)per;
    double acc = 0;
    for (long i = lo + threadIdx.x; i < hi; i += THREADS) {
        float ni = 0.0f;
        if (!skip) {
            float mi = mu * sl.m[i] + sl.g[i]; /* muon.c's n_at */
            sl.m[i] = mi;
            ni = nesterov ? sl.g[i] + mu * mi : mi;
        }
        nb[i] = ni;
        acc += (double)ni * (double)ni;
    }
    double s = muon__cuda_block_sum(acc);
    if (threadIdx.x == 0)
        partials[(size_t)blockIdx.x * nchunk + blockIdx.y] = s;
}

muon_status muon__cuda_momentum(muon_cuda *c, cudaStream_t s, const muon__cuda_slot *slots,
                                long n_slots, long per, float mu, int nesterov, const int *flags,
                                float *n, double *partials, int nchunk)
{
    k_momentum<<<dim3((unsigned)n_slots, (unsigned)nchunk), THREADS, 0, s>>>(
        slots, per, mu, nesterov, flags, n, partials, nchunk);
    return launched(c, __LINE__);
}

__global__ static void k_muon_apply(const muon__cuda_slot *slots, size_t total, long per,
                                    float decay, float step, const int *flags, const float *o)
{
    for (size_t k = (size_t)blockIdx.x * THREADS + threadIdx.x; k < total;
         k += (size_t)gridDim.x * THREADS) {
        size_t sidx = k / (size_t)per, i = k - sidx * (size_t)per;
        const muon__cuda_slot *sl = &slots[sidx];
        if (flags[sl->param])
            continue;
        sl->w[i] = decay * sl->w[i] - step * o[k]; /* muon.c's update */
    }
}

muon_status muon__cuda_muon_apply(muon_cuda *c, cudaStream_t s, const muon__cuda_slot *slots,
                                  long n_slots, long per, float decay, float step, const int *flags,
                                  const float *o)
{
    size_t total = (size_t)n_slots * (size_t)per;
    size_t blocks = (total + THREADS - 1) / THREADS;
    if (blocks > 65535u * 16u)
        blocks = 65535u * 16u;
    k_muon_apply<<<(unsigned)blocks, THREADS, 0, s>>>(slots, total, per, decay, step, flags, o);
    return launched(c, __LINE__);
}

__global__ static void k_adamw(const muon__cuda_tensor *t, const muon__cuda_chunk *chunks,
                               const muon__cuda_acoef *coef, float b1, float a1, float b2,
                               float a2, float eps, const int *flags)
{
    muon__cuda_chunk ch = chunks[blockIdx.x];
    const muon__cuda_tensor x = t[ch.t];
    if (flags[x.param])
        return;
    const muon__cuda_acoef k = coef[ch.t];
    long hi = ch.lo + MUON__CUDA_TCHUNK < x.n ? ch.lo + MUON__CUDA_TCHUNK : x.n;
    for (long i = ch.lo + threadIdx.x; i < hi; i += THREADS) {
        /* adamw.c's muon__adamw_range, operation for operation */
        float gi = x.g[i];
        float mi = b1 * x.m[i] + a1 * gi;
        float vi = b2 * x.v[i] + a2 * (gi * gi);
        x.m[i] = mi;
        x.v[i] = vi;
        x.w[i] = k.decay * x.w[i] - k.step_size * mi / (sqrtf(vi) * k.inv_sqrt_bc2 + eps);
    }
}

muon_status muon__cuda_adamw(muon_cuda *c, cudaStream_t s, const muon__cuda_tensor *t,
                             const muon__cuda_chunk *chunks, int n_chunks,
                             const muon__cuda_acoef *coef, float b1, float a1, float b2, float a2,
                             float eps, const int *flags)
{
    if (n_chunks == 0)
        return MUON_OK;
    k_adamw<<<(unsigned)n_chunks, THREADS, 0, s>>>(t, chunks, coef, b1, a1, b2, a2, eps, flags);
    return launched(c, __LINE__);
}
