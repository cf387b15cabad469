/* Mixed-precision linear layer (linear_mixed.h). The weight is rounded once
 * per call: out x in elements against 2 N out in flops, noise beside the
 * product. */
#include "nn/linear_mixed.h"

void nn_mixed_sizes(size_t N, size_t max_in, size_t max_out, size_t max_w, size_t *na,
                    size_t *nb, size_t *nw)
{
    *na = N * max_in;
    *nb = N * max_out;
    *nw = max_w;
}

muon_status nn_linear_forward_mixed(nn_mixed_scratch *s, float *y, const float *x, const float *W,
                                    int N, int in, int out, int add)
{
    size_t nx = (size_t)N * (size_t)in, nw = (size_t)out * (size_t)in;
    if (nx > s->na || nw > s->nw)
        return MUON_ERR_SIZE;
    /* the thread count the program gave BLAS, as for the fp32 layers */
    const int nth = muon_get_blas_threads();
    muon_to_bf16(s->a, x, nx, nth);
    muon_to_bf16(s->w, W, nw, nth);
    /* y (N, out) = x (N, in) W^T */
    return muon_gemm_bf16(NULL, 0, 1, N, out, in, 1.0f, s->a, s->w, add ? 1.0f : 0.0f, y, out,
                          nth);
}

muon_status nn_linear_backward_mixed(nn_mixed_scratch *s, float *dx, float *dW, const float *dy,
                                     const float *x, const float *W, int N, int in, int out)
{
    size_t nx = (size_t)N * (size_t)in, ny = (size_t)N * (size_t)out;
    size_t nw = (size_t)out * (size_t)in;
    if (nx > s->na || ny > s->nb || nw > s->nw)
        return MUON_ERR_SIZE;
    const int nth = muon_get_blas_threads();
    muon_to_bf16(s->b, dy, ny, nth);
    muon_to_bf16(s->a, x, nx, nth);
    /* dW (out, in) += dy^T (out, N) x (N, in) */
    muon_status st = muon_gemm_bf16(NULL, 1, 0, out, in, N, 1.0f, s->b, s->a, 1.0f, dW, in, nth);
    if (st != MUON_OK || !dx)
        return st;
    muon_to_bf16(s->w, W, nw, nth);
    /* dx (N, in) = dy (N, out) W (out, in) */
    return muon_gemm_bf16(NULL, 0, 0, N, in, out, 1.0f, s->b, s->w, 0.0f, dx, in, nth);
}
