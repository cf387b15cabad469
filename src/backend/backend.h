/* backend.h - the backend context (docs/backend.md): one table, filled
 * once from the machine (machine.h), that says which library runs each
 * kind of product, with the panel counts, thresholds and thread split the
 * kernels follow. The optimizer owns one (built at finalize); calls
 * without one use the process-wide default, read-only once made.
 *
 * Products take their thread count as an argument. oneDNN sizes its work
 * by OpenMP's nthreads ICV of the calling thread, which the products set
 * around each call and restore. OpenBLAS 0.3.21 has no per-call thread
 * count (openblas_set_num_threads_local came later): its process-wide count
 * is set only outside parallel regions, by muon__blas_threads_push at the
 * library's entry points, and restored exactly before they return. A GPU
 * backend is one more muon_backend_kind and kernel, with its cases in the
 * dispatch (products.c). */
#ifndef MUON_BACKEND_H
#define MUON_BACKEND_H

#include <stddef.h>

#include "backend/machine.h"
#include "muon.h"

typedef uint16_t muon__bf16;

struct muon_backend {
    muon_backend_kind kind;
    int threads; /* 0: the caller's (the default backend) */
    muon_kernel kernel[MUON_PRODUCT_COUNT];
    long wgrad_min_rows;
    int syrk_panels;
    long syrk_panel_min;
    int split;
    int split_panels_per_thread;
    double one_thread_flops;
    long rows_per_thread;
    double bf16_one_thread_flops;
    size_t convert_par_min;
    double bf16_speedup;
    long auto_mixed_min;
    const muon__machine *mach;
};
typedef struct muon_backend muon__backend;

/* Fill be with kind's table for this machine and `threads` threads. */
muon_status muon__backend_init(muon__backend *be, muon_backend_kind kind, int threads);
/* The default (MUON_BACKEND_CPU, the caller's thread count). */
const muon__backend *muon__backend_default(void);

/* The thread count a call without its own runs on: one inside an OpenMP
 * parallel region, else OpenBLAS's current count. */
int muon__caller_threads(void);

/* Set OpenBLAS's process-wide count to n (outside parallel regions only);
 * returns the old count for muon__blas_threads_pop. */
int muon__blas_threads_push(int n);
void muon__blas_threads_pop(int old);

/* ---- products (products.c) */
/* Row-major C (M x N) = alpha op(A) op(B) + beta C on the kernel of
 * `product` (GEMM or GEMM_WGRAD), oneDNN on `threads` OpenMP threads
 * (one inside a parallel region), OpenBLAS on its current count; OpenBLAS
 * also when oneDNN fails. */
void muon__be_gemm(const muon__backend *be, muon_product product, int threads, int ta, int tb,
                   long M, long N, long K, float alpha, const float *A, long lda, const float *B,
                   long ldb, float beta, float *C, long ldc);
/* Upper triangle of A (m x m) = alpha op(X) op(X)^T, op(X) m x k, on
 * OpenBLAS at its current count. */
void muon__be_syrk(int trans, long m, long k, float alpha, const float *x, long ldx, float *a,
                   long lda);

/* ---- bf16 (src/base/bf16.c) */
void muon__to_bf16_t(muon__bf16 *dst, const float *src, size_t n, int threads);
muon_status muon__be_gemm_bf16(const muon__backend *be, int threads, int ta, int tb, long m,
                               long n, long k, float alpha, const muon__bf16 *A,
                               const muon__bf16 *B, float beta, float *C, long ldc);

#endif
