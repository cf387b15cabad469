/* The linear layer in mixed precision: bf16 operands, fp32 accumulation and
 * fp32 outputs, master weights and gradients (muon_gemm_bf16). Operands
 * are rounded to bf16 per call into caller-owned scratch, so nothing but
 * that scratch is kept beside the fp32 model. */
#ifndef MUON_NN_LINEAR_MIXED_H
#define MUON_NN_LINEAR_MIXED_H

#include <stddef.h>

#include "muon.h"

typedef struct {
    muon_bf16 *a; /* the activation operand: x, or dy^T's x in the backward */
    muon_bf16 *b; /* dy */
    muon_bf16 *w; /* the weight */
    size_t na, nb, nw; /* capacities in elements */
} nn_mixed_scratch;

/* Elements each buffer needs for a batch of N rows: a holds N x max_in,
 * b N x max_out, w the largest weight. */
void nn_mixed_sizes(size_t N, size_t max_in, size_t max_out, size_t max_w, size_t *na,
                    size_t *nb, size_t *nw);

/* As nn_linear_forward / nn_linear_backward, products in bf16. */
muon_status nn_linear_forward_mixed(nn_mixed_scratch *s, float *y, const float *x, const float *W,
                                    int N, int in, int out, int add);
muon_status nn_linear_backward_mixed(nn_mixed_scratch *s, float *dx, float *dW, const float *dy,
                                     const float *x, const float *W, int N, int in, int out);

#endif
