/* Causal multi-head self-attention, forward and backward.
 *
 * Layout: q, k and v of head h for batch b are read straight out of the
 * (B*T, 3D) qkv activation as T x hd sub-matrices with leading dimension 3D,
 * so no transpose or copy is needed before the sgemm calls; outputs and
 * gradients are written the same way. The (T, T) probability matrix of each
 * (b, h) is kept (B*H*T*T floats per layer) because the backward needs it
 * and recomputing costs as much as the forward.
 *
 * Parallelism: one (b, h) per OpenMP iteration, with BLAS set to one thread
 * for the region (and restored after) so the two levels never oversubscribe
 * the cores. Every (b, h) is computed by exactly one thread in a fixed
 * order, so results do not depend on the thread count.
 */
#include "nn/layers.h"

#include <cblas.h>
#include <math.h>

#include "nn/vexp.h"

/* Softmax of row t over columns 0..t of p (length T); columns > t are the
 * causal mask and get probability 0. The loops vectorize (nn_expf, simd
 * reductions); the summation order is fixed by the code, not the threads. */
static void causal_softmax_row(float *p, int t, int T)
{
    float mx = p[0];
#pragma omp simd reduction(max : mx)
    for (int j = 1; j <= t; j++)
        mx = p[j] > mx ? p[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j <= t; j++) {
        float e = nn_expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j <= t; j++)
        p[j] *= inv;
    for (int j = t + 1; j < T; j++)
        p[j] = 0.0f;
}

/* Rows of the score matrix per sgemm: query rows [r0, r1) only meet keys
 * [0, r1), so computing block by block skips most of the masked upper
 * triangle (5/8 of the full product's work at T = 128) while each call is
 * still big enough for BLAS to run at speed. */
#define ROWS 32

void nn_attention_forward(float *out, float *att, const float *qkv, int B, int T, int D, int H)
{
    int hd = D / H, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)hd);
    int big = (size_t)B * H * T * T * hd >= 4 * (size_t)NN_PAR_MIN;
    int old = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(static) if (big)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        const float *q = qkv + (size_t)b * T * ld + (size_t)h * hd, *k = q + D, *v = q + 2 * D;
        float *p = att + (size_t)bh * T * T;
        float *o = out + (size_t)b * T * D + (size_t)h * hd;
        for (int r0 = 0; r0 < T; r0 += ROWS) {
            int r1 = r0 + ROWS < T ? r0 + ROWS : T, nr = r1 - r0;
            float *pr = p + (size_t)r0 * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, r1, hd, scale,
                        q + (size_t)r0 * ld, ld, k, ld, 0.0f, pr, T);
            for (int t = r0; t < r1; t++)
                causal_softmax_row(p + (size_t)t * T, t, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, r1, 1.0f, pr, T, v,
                        ld, 0.0f, o + (size_t)r0 * D, D);
        }
    }
    openblas_set_num_threads(old);
}

void nn_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                           const float *att, int B, int T, int D, int H)
{
    int hd = D / H, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)hd);
    int big = (size_t)B * H * T * T * hd >= 4 * (size_t)NN_PAR_MIN;
    int old = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel for schedule(static) if (big)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t base = (size_t)b * T * ld + (size_t)h * hd;
        const float *q = qkv + base, *k = q + D, *v = q + 2 * D;
        float *dq = dqkv + base, *dk = dq + D, *dv = dq + 2 * D;
        const float *p = att + (size_t)bh * T * T;
        const float *dO = dout + (size_t)b * T * D + (size_t)h * hd;
        float *ds = scratch + (size_t)bh * T * T;
        /* dk and dv collect contributions from every query block at or
         * after their own rows; the last block meets all T keys, so going
         * backwards its products (beta = 0) initialise them: no zeroing. */
        int last = (T - 1) / ROWS * ROWS;
        for (int r0 = last; r0 >= 0; r0 -= ROWS) {
            int r1 = r0 + ROWS < T ? r0 + ROWS : T, nr = r1 - r0;
            float beta = r0 == last ? 0.0f : 1.0f;
            const float *pr = p + (size_t)r0 * T, *dOr = dO + (size_t)r0 * D;
            float *dsr = ds + (size_t)r0 * T;
            /* dP = dO v^T, dv += P^T dO */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, r1, hd, 1.0f, dOr, D, v, ld,
                        0.0f, dsr, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, nr, 1.0f, pr, T, dOr, D,
                        beta, dv, ld);
            /* softmax backward, with the 1/sqrt(hd) of the scores folded in:
             * dS = scale * P (dP - rowsum(P dP)); masked entries have P = 0 */
            for (int t = r0; t < r1; t++) {
                const float *prow = p + (size_t)t * T;
                float *drow = ds + (size_t)t * T;
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int j = 0; j <= t; j++)
                    dot += prow[j] * drow[j];
#pragma omp simd
                for (int j = 0; j <= t; j++)
                    drow[j] = scale * prow[j] * (drow[j] - dot);
                for (int j = t + 1; j < r1; j++)
                    drow[j] = 0.0f;
            }
            /* dq = dS k, dk += dS^T q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, r1, 1.0f, dsr, T, k, ld,
                        0.0f, dq + (size_t)r0 * ld, ld);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, nr, 1.0f, dsr, T,
                        q + (size_t)r0 * ld, ld, beta, dk, ld);
        }
    }
    openblas_set_num_threads(old);
}
