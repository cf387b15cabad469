/* The fp32 products on a backend's table (backend.h), and muon_sgemm,
 * the row-split product the trainer's layers call. */
#include <omp.h>

#include <cblas.h>
#include <dnnl.h>

#include "backend/backend.h"

void muon__be_gemm(const muon__backend *be, muon_product product, int threads, int ta, int tb,
                   long M, long N, long K, float alpha, const float *A, long lda, const float *B,
                   long ldb, float beta, float *C, long ldc)
{
    if (be->kernel[product] == MUON_KERNEL_ONEDNN) {
        /* oneDNN sizes its parallelism by the calling thread's OpenMP
         * count; inside a parallel region it runs on that thread alone */
        int saved = omp_get_max_threads(), want = omp_in_parallel() ? saved : threads;
        if (want != saved)
            omp_set_num_threads(want);
        dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B,
                                      ldb, beta, C, ldc);
        if (want != saved)
            omp_set_num_threads(saved);
        if (st == dnnl_success)
            return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void muon__be_syrk(int trans, long m, long k, float alpha, const float *x, long ldx, float *a,
                   long lda)
{
    cblas_ssyrk(CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, (int)m, (int)k,
                alpha, x, (int)ldx, 0.0f, a, (int)lda);
}

/* The M rows of C are split into one contiguous block per OpenMP thread,
 * each block one single-threaded product: one pool does everything, where
 * OpenBLAS's own threads would wake on every call and fight OpenMP's for
 * the cores. Each element of C is one product's dot over the whole K,
 * computed the same way whatever the block, and the kernel is chosen from
 * the whole product's shape, so the split does not change results. */
muon_status muon_sgemm(const muon_backend *be, int ta, int tb, long M, long N, long K, float alpha,
                       const float *A, long lda, const float *B, long ldb, float beta, float *C,
                       long ldc, int threads)
{
    if (!A || !B || !C)
        return MUON_ERR_NULL;
    if (M < 0 || N < 0 || K < 0)
        return MUON_ERR_SIZE;
    if (M == 0 || N == 0)
        return MUON_OK;
    if (!be)
        be = muon__backend_default();
    const muon_product prod =
        ta && M > be->wgrad_min_rows ? MUON_PRODUCT_GEMM_WGRAD : MUON_PRODUCT_GEMM;
    const int nth = threads > 0 ? threads : 1, inside = omp_in_parallel();
    if (nth < 2 || inside || (double)M * (double)N * (double)K < be->one_thread_flops ||
        M < be->rows_per_thread * nth) {
        int old = inside ? 0 : muon__blas_threads_push(1);
        muon__be_gemm(be, prod, 1, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (!inside)
            muon__blas_threads_pop(old);
        return MUON_OK;
    }
    int old = muon__blas_threads_push(1);
#pragma omp parallel num_threads(nth)
    {
        long n = omp_get_num_threads(), i = omp_get_thread_num();
        long per = (M + n - 1) / n;
        per = (per + 15) / 16 * 16; /* whole micro-kernel tiles */
        long m0 = i * per, m1 = m0 + per < M ? m0 + per : M;
        if (m0 < m1)
            muon__be_gemm(be, prod, 1, ta, tb, m1 - m0, N, K, alpha,
                          ta ? A + m0 : A + (size_t)m0 * (size_t)lda, lda, B, ldb, beta,
                          C + (size_t)m0 * (size_t)ldc, ldc);
    }
    muon__blas_threads_pop(old);
    return MUON_OK;
}
