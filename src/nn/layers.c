/* Embedding, RMSNorm, linear, rotary embedding, ReLU^2 and residual layers
 * (see layers.h for the conventions). Row loops are OpenMP-parallel; sums
 * across rows (weight-vector gradients) are parallel over column blocks
 * instead, each block summing its rows in order, so no result depends on
 * the thread count and no atomics are needed. */
#include "nn/layers.h"

#include <cblas.h>
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "base/internal.h"

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

/* Which library runs a product. The linear layers' shapes have a small K
 * or a small N (the model width); there oneDNN's SGEMM runs up to 1.5x
 * faster than OpenBLAS's on one thread (measured: 1.18x over a whole layer
 * of the default model, 1.04x over the d = 512 model's), as it writes C
 * directly where OpenBLAS first clears it for beta = 0. The exception is a
 * weight gradient op(A) = A^T with more than 512 rows (d = 512's fc and
 * qkv), where OpenBLAS's AVX-512 kernels are 1.1-1.4x faster (an Intel
 * Xeon; an AMD EPYC, Zen 5); its AVX2 kernels were 1.5-1.7x slower than
 * oneDNN there (the EPYC with OPENBLAS_CORETYPE=Haswell), so oneDNN runs
 * them. The choice depends on the product's shape and the machine, never
 * on the thread count, and each library gives every element the same bits
 * whatever block of rows it computes (checked over row splits of the
 * models' shapes, and by tests/test_nn.c across thread counts), so results
 * do not depend on the thread count. */
static int use_dnnl(int ta, int M)
{
    return !ta || M <= 512 || !muon__openblas_avx512();
}

/* One product on the calling thread alone (OpenBLAS: on its current thread
 * count, set to 1 by the caller inside parallel regions). */
static void sgemm1(int dn, int ta, int tb, int M, int N, int K, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
    if (dn) {
        /* oneDNN sizes its own parallelism by the OpenMP thread count:
         * one, whether or not this is inside a parallel region */
        int saved = omp_get_max_threads(), outer = saved > 1 && !omp_in_parallel();
        if (outer)
            omp_set_num_threads(1);
        dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B,
                                     ldb, beta, C, ldc);
        if (outer)
            omp_set_num_threads(saved);
        if (s == dnnl_success)
            return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* Row-major C (M, N) = op(A) op(B) + beta C, with the M rows of C split
 * into one contiguous block per OpenMP thread, each block one
 * single-threaded product. One pool does everything: OpenBLAS's own
 * threads would otherwise wake on every call and fight the OpenMP pool for
 * the same cores. Each element of C is one product's dot over the whole K,
 * computed the same way whatever the block, so the split does not change
 * results. A small product runs whole on the calling thread. */
static void sgemm_rows(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                       int ldb, float beta, float *C, int ldc)
{
    int nth = omp_get_max_threads(), dn = use_dnnl(ta, M);
    if (nth < 2 || omp_in_parallel() || (size_t)M * N * K < 64 * (size_t)NN_PAR_MIN ||
        M < 32 * nth) {
        sgemm1(dn, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int old = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(nth)
    {
        int n = omp_get_num_threads(), i = omp_get_thread_num();
        int per = (M + n - 1) / n;
        per = (per + 15) / 16 * 16; /* whole micro-kernel tiles */
        int m0 = i * per, m1 = m0 + per < M ? m0 + per : M;
        if (m0 < m1)
            sgemm1(dn, ta, tb, m1 - m0, N, K, ta ? A + m0 : A + (size_t)m0 * lda, lda, B, ldb,
                   beta, C + (size_t)m0 * ldc, ldc);
    }
    openblas_set_num_threads(old);
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
