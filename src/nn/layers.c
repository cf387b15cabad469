/* Embedding, RMSNorm, linear, rotary embedding, ReLU^2 and residual layers
 * (see layers.h for the conventions). Row loops are OpenMP-parallel; sums
 * across rows (weight-vector gradients) are parallel over column blocks
 * instead, each block summing its rows in order, so no result depends on
 * the thread count and no atomics are needed. */
#include "nn/layers.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "muon.h"

/* Columns per block in column-parallel reductions: one cache line. */
#define COLS 16
/* Parallel only when there is enough work to pay for waking threads. */
#define BIG(n) ((size_t)(n) >= NN_PAR_MIN)

void nn_embedding_forward(float *out, const int32_t *tokens, const float *wte, int N, int D)
{
#pragma omp parallel for schedule(static) if (BIG((size_t)N * D))
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * D, wte + (size_t)tokens[n] * D, (size_t)D * sizeof(float));
}

void nn_embedding_backward(float *dwte, const float *dout, const int32_t *tokens, int N, int D)
{
    int nblk = (D + COLS - 1) / COLS;
#pragma omp parallel for schedule(static) if (BIG((size_t)N * D))
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COLS, c1 = c0 + COLS < D ? c0 + COLS : D;
        for (int n = 0; n < N; n++) {
            float *dst = dwte + (size_t)tokens[n] * D;
            const float *src = dout + (size_t)n * D;
            for (int c = c0; c < c1; c++)
                dst[c] += src[c];
        }
    }
}

void nn_rmsnorm_forward(float *out, float *rstd, const float *x, const float *g, int N, int D,
                        float *copy)
{
#pragma omp parallel for schedule(static) if (BIG((size_t)N * D))
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *o = out + (size_t)n * D;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int i = 0; i < D; i++)
            ss += xr[i] * xr[i];
        float r = 1.0f / sqrtf(ss / (float)D + NN_RMSNORM_EPS);
        rstd[n] = r;
#pragma omp simd
        for (int i = 0; i < D; i++)
            o[i] = xr[i] * r * g[i];
        if (copy)
            memcpy(copy + (size_t)n * D, xr, (size_t)D * sizeof(float));
    }
}

void nn_rmsnorm_backward(float *dx, float *dg, const float *dout, const float *x, const float *g,
                         const float *rstd, int N, int D, int accumulate)
{
    /* y_i = g_i x_i r with r = (mean(x^2) + eps)^-1/2, so
     * dx_j = r (g_j dy_j - x_j r^2 / D * sum_i g_i dy_i x_i). */
#pragma omp parallel for schedule(static) if (BIG((size_t)N * D))
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *dy = dout + (size_t)n * D;
        float *d = dx + (size_t)n * D;
        float r = rstd[n], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int i = 0; i < D; i++)
            dot += g[i] * dy[i] * xr[i];
        float c = dot * r * r / (float)D;
        if (accumulate) {
#pragma omp simd
            for (int i = 0; i < D; i++)
                d[i] += r * (g[i] * dy[i] - xr[i] * c);
        } else {
#pragma omp simd
            for (int i = 0; i < D; i++)
                d[i] = r * (g[i] * dy[i] - xr[i] * c);
        }
    }
    int nblk = (D + COLS - 1) / COLS;
#pragma omp parallel for schedule(static) if (BIG((size_t)N * D))
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COLS, c1 = c0 + COLS < D ? c0 + COLS : D;
        float acc[COLS] = {0};
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * D, *dy = dout + (size_t)n * D;
            float r = rstd[n];
            for (int c = c0; c < c1; c++)
                acc[c - c0] += dy[c] * xr[c] * r;
        }
        for (int c = c0; c < c1; c++)
            dg[c] += acc[c - c0];
    }
}

/* The products go to the library's muon_sgemm on the default backend,
 * which picks the kernel from the product's shape and the machine (never
 * from the thread count) and splits C's rows over OpenMP's threads, so
 * results do not depend on the thread count. */
static void sgemm_rows(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                       int ldb, float beta, float *C, int ldc)
{
    muon_sgemm(NULL, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc, omp_get_max_threads());
}

void nn_linear_forward(float *y, const float *x, const float *W, int N, int in, int out, int add)
{
    sgemm_rows(0, 1, N, out, in, x, in, W, in, add ? 1.0f : 0.0f, y, out);
}

void nn_linear_backward(float *dx, float *dW, const float *dy, const float *x, const float *W,
                        int N, int in, int out)
{
    /* dW (out, in) += dy^T (out, N) x (N, in): the sum over rows is inside
     * one sgemm per block of dW's rows, in the same order for any split. */
    sgemm_rows(1, 0, out, in, N, dy, out, x, in, 1.0f, dW, in);
    if (dx)
        sgemm_rows(0, 0, N, in, out, dy, out, W, in, 0.0f, dx, in);
}

void nn_rope_tables(float *cos_t, float *sin_t, int T, int hd)
{
    int half = hd / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double ang = (double)t * pow(NN_ROPE_BASE, -2.0 * i / (double)hd);
            cos_t[(size_t)t * half + i] = (float)cos(ang);
            sin_t[(size_t)t * half + i] = (float)sin(ang);
        }
}

/* sign = +1 rotates by +angle (forward), -1 by -angle (backward). */
static void rope_apply(float *x, int N, int T, int stride, int H, int hd, const float *cos_t,
                       const float *sin_t, float sign)
{
    int half = hd / 2;
#pragma omp parallel for schedule(static) if (BIG((size_t)N * H * hd))
    for (int n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)(n % T) * half, *s = sin_t + (size_t)(n % T) * half;
        for (int h = 0; h < H; h++) {
            float *a = x + (size_t)n * stride + (size_t)h * hd, *b = a + half;
#pragma omp simd
            for (int i = 0; i < half; i++) {
                float x1 = a[i], x2 = b[i], si = sign * s[i];
                a[i] = x1 * c[i] - x2 * si;
                b[i] = x1 * si + x2 * c[i];
            }
        }
    }
}

void nn_rope_forward(float *x, int N, int T, int stride, int H, int hd, const float *cos_t,
                     const float *sin_t)
{
    rope_apply(x, N, T, stride, H, hd, cos_t, sin_t, 1.0f);
}

void nn_rope_backward(float *dx, int N, int T, int stride, int H, int hd, const float *cos_t,
                      const float *sin_t)
{
    rope_apply(dx, N, T, stride, H, hd, cos_t, sin_t, -1.0f);
}

void nn_relu2_forward(float *y, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (BIG(n))
    for (size_t i = 0; i < n; i++) {
        float r = x[i] > 0.0f ? x[i] : 0.0f;
        y[i] = r * r;
    }
}

void nn_relu2_backward(float *dx, const float *dy, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (BIG(n))
    for (size_t i = 0; i < n; i++) {
        float r = x[i] > 0.0f ? x[i] : 0.0f;
        dx[i] = 2.0f * r * dy[i];
    }
}

void nn_residual_forward(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for simd schedule(static) if (BIG(n))
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void nn_residual_backward(float *da, float *db, const float *dout, size_t n)
{
#pragma omp parallel for simd schedule(static) if (BIG(n))
    for (size_t i = 0; i < n; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}
