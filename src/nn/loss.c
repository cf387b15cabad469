/* Fused softmax cross-entropy: the loss and the logits' gradient in one pass
 * per row, written over the logits so a large vocabulary costs one (N, V)
 * buffer, not two. */
#include "nn/layers.h"

#include <math.h>

#include "nn/vexp.h"

float nn_crossentropy_fused(float *logits, float *losses, const int32_t *targets, int N, int V,
                            float dscale)
{
#pragma omp parallel for schedule(static) if ((size_t)N * V >= NN_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *z = logits + (size_t)n * V;
        float mx = z[0];
#pragma omp simd reduction(max : mx)
        for (int j = 1; j < V; j++)
            mx = z[j] > mx ? z[j] : mx;
        int tgt = targets[n];
        float zt = z[tgt] - mx; /* kept before the row is overwritten */
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < V; j++) {
            float e = nn_expf(z[j] - mx);
            z[j] = e;
            sum += e;
        }
        losses[n] = logf(sum) - zt;
        float inv = dscale / sum;
#pragma omp simd
        for (int j = 0; j < V; j++)
            z[j] *= inv;
        z[tgt] -= dscale;
    }
    double total = 0.0;
    for (int n = 0; n < N; n++)
        total += losses[n];
    return (float)(total / N);
}
