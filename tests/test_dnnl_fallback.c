/* The fallback to OpenBLAS when oneDNN's SGEMM fails, in the linear layers
 * (src/nn/layers.c, sgemm1) and in the orthogonalization
 * (src/ortho/kernels.c). oneDNN only fails there for reasons the tests
 * cannot provoke (out of memory, say), so this file interposes its own
 * dnnl_sgemm: the test runner's definition wins over libdnnl's for the
 * library linked into it, forwards to the real one (RTLD_NEXT), counts the
 * calls, and when asked refuses them with dnnl_out_of_memory. The products
 * must then come out of OpenBLAS, equal to a double-precision reference,
 * at one thread and under the row split of two. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>

#include "harness.h"
#include "muon.h"
#include "nn/layers.h"
#include "ref_ortho.h"
#include "testutil.h"

static int refuse;   /* 1: every dnnl_sgemm call fails */
static long n_calls; /* dnnl_sgemm calls seen, from any thread */

typedef dnnl_status_t (*sgemm_fn)(char, char, dnnl_dim_t, dnnl_dim_t, dnnl_dim_t, float,
                                  const float *, dnnl_dim_t, const float *, dnnl_dim_t, float,
                                  float *, dnnl_dim_t);

dnnl_status_t dnnl_sgemm(char ta, char tb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K, float alpha,
                         const float *A, dnnl_dim_t lda, const float *B, dnnl_dim_t ldb,
                         float beta, float *C, dnnl_dim_t ldc)
{
    __atomic_fetch_add(&n_calls, 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&refuse, __ATOMIC_RELAXED))
        return dnnl_out_of_memory;
    static sgemm_fn real;
    sgemm_fn f = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (!f) {
        f = (sgemm_fn)dlsym(RTLD_NEXT, "dnnl_sgemm");
        if (!f)
            return dnnl_runtime_error;
        __atomic_store_n(&real, f, __ATOMIC_RELEASE);
    }
    return f(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Rows x IN times (OUT x IN)^T, and the backward's products, big enough
 * for layers.c to split their rows over two threads. */
enum { N = 128, IN = 96, OUT = 128 };

typedef struct {
    float y[N * OUT], dx[N * IN], dW[OUT * IN];
    long calls;
} outputs;

static void run_layer(const float *x, const float *W, const float *dy, outputs *o, int fail)
{
    __atomic_store_n(&refuse, fail, __ATOMIC_RELAXED);
    __atomic_store_n(&n_calls, 0, __ATOMIC_RELAXED);
    for (int i = 0; i < N * OUT; i++)
        o->y[i] = 1e9f; /* written, not accumulated */
    for (int i = 0; i < N * IN; i++)
        o->dx[i] = 1e9f;
    for (int i = 0; i < OUT * IN; i++)
        o->dW[i] = 0.0f; /* accumulated into */
    nn_linear_forward(o->y, x, W, N, IN, OUT, 0);
    nn_linear_backward(o->dx, o->dW, dy, x, W, N, IN, OUT);
    o->calls = __atomic_load_n(&n_calls, __ATOMIC_RELAXED);
    __atomic_store_n(&refuse, 0, __ATOMIC_RELAXED);
}

/* Largest |got - want| / max(1, |want|) over C = A B (rows x cols), the
 * want computed in double; A (rows x inner) and B (inner x cols) are read
 * through row and column strides, so a transposed operand is read in place. */
/* The largest error of got = A B against the product in double, in units
 * of the float32 bound of a k-term sum in any order: |error| <= k u
 * sum_k |a_k b_k| (gamma_k). Above 1 no float32 summation gives it. */
static double product_err(const float *got, const float *A, long a_rs, long a_cs, const float *B,
                          long b_rs, long b_cs, int rows, int cols, int inner)
{
    double e = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            double s = 0, mag = 0;
            for (int k = 0; k < inner; k++) {
                double t = (double)A[r * a_rs + k * a_cs] * (double)B[k * b_rs + c * b_cs];
                s += t;
                mag += fabs(t);
            }
            double d = fabs(got[r * cols + c] - s) / (inner * REF_U32 * mag);
            e = d > e || isnan(d) ? d : e;
        }
    return e;
}

TEST(nn_linear_dnnl_failure_falls_back_to_openblas)
{
    tu_rng r;
    tu_seed(&r, mt_seed + 31);
    float *x = malloc(sizeof(float) * N * IN), *W = malloc(sizeof(float) * OUT * IN);
    float *dy = malloc(sizeof(float) * N * OUT);
    outputs *o = malloc(sizeof *o);
    tu_fill_normal(&r, x, N * IN, 1);
    tu_fill_normal(&r, W, OUT * IN, 1);
    tu_fill_normal(&r, dy, N * OUT, 1);
    const int saved = omp_get_max_threads();
    double err[2][2][3];
    long calls[2][2];
    for (int th = 1; th <= 2; th++)
        for (int fail = 0; fail <= 1; fail++) {
            omp_set_num_threads(th);
            run_layer(x, W, dy, o, fail);
            calls[th - 1][fail] = o->calls;
            /* y = x W^T, dx = dy W, dW = dy^T x */
            err[th - 1][fail][0] = product_err(o->y, x, IN, 1, W, 1, IN, N, OUT, IN);
            err[th - 1][fail][1] = product_err(o->dx, dy, OUT, 1, W, IN, 1, N, IN, OUT);
            err[th - 1][fail][2] = product_err(o->dW, dy, 1, OUT, x, IN, 1, OUT, IN, N);
        }
    omp_set_num_threads(saved);
    free(x);
    free(W);
    free(dy);
    free(o);
    for (int th = 0; th < 2; th++)
        for (int fail = 0; fail <= 1; fail++) {
            /* oneDNN was asked for every product: with the refusals, the
             * results below can only have come from the fallback */
            ASSERT(calls[th][fail] >= 3);
            for (int k = 0; k < 3; k++)
                ASSERT_LE(err[th][fail][k], 1.0);
        }
}

/* NS and Gram NS send their general products to oneDNN (src/ortho/
 * kernels.c, muon__sgemm): X <- S X, X <- Q X and Gram NS's symmetric
 * products. With every call refused they come out of OpenBLAS, and the
 * result is still within the float32 rounding model's tolerance of the
 * exact result (tests/ref_ortho.h), as with oneDNN working; wide and tall, m >= 256 so the symmetric products go by
 * row panels, on one BLAS thread and on two (the split mode, where the
 * SYRKs' off-diagonal panels are oneDNN products too). */
TEST(ortho_dnnl_failure_falls_back_to_openblas)
{
    const long shapes[2][2] = {{256, 640}, {640, 256}};
    const int saved = muon_get_blas_threads();
    tu_rng r;
    tu_seed(&r, mt_seed + 37);
    double err[2][2][2][2];
    long calls[2][2][2][2];
    for (int th = 0; th < 2; th++) {
        muon_set_blas_threads(1 + th);
        for (int si = 0; si < 2; si++) {
            long rows = shapes[si][0], cols = shapes[si][1];
            size_t n = (size_t)(rows * cols);
            float *x = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * n);
            double *ref = malloc(sizeof(double) * n);
            tu_fill_normal(&r, x, n, 1);
            muon_ortho_config cfg = muon_ortho_config_default();
            cfg.precision = MUON_PRECISION_FP32; /* the fp32 products' fallback */
            ref_ortho(&cfg, 0, x, rows, cols, NULL, ref);
            for (int meth = 0; meth < 2; meth++) {
                cfg.method = meth ? MUON_ORTHO_GRAM_NS : MUON_ORTHO_NS;
                double tol = ref_ortho_tol(&cfg, x, rows, cols, ref);
                for (int fail = 0; fail <= 1; fail++) {
                    __atomic_store_n(&refuse, fail, __ATOMIC_RELAXED);
                    __atomic_store_n(&n_calls, 0, __ATOMIC_RELAXED);
                    for (size_t i = 0; i < n; i++)
                        o[i] = 1e9f;
                    muon_status st = muon_orthogonalize(&cfg, x, o, rows, cols, NULL, 0);
                    __atomic_store_n(&refuse, 0, __ATOMIC_RELAXED);
                    ASSERT_STATUS(st, MUON_OK);
                    calls[th][si][meth][fail] = __atomic_load_n(&n_calls, __ATOMIC_RELAXED);
                    err[th][si][meth][fail] = tu_max_abs_diff_fd(o, ref, n) / tol;
                }
            }
            free(x);
            free(ref);
            free(o);
        }
    }
    muon_set_blas_threads(saved);
    for (int th = 0; th < 2; th++)
        for (int si = 0; si < 2; si++)
            for (int fail = 0; fail <= 1; fail++) {
                /* NS: five applies; Gram NS: two applies and 9 symmetric
                 * products of 4 panels each */
                ASSERT(calls[th][si][0][fail] >= 5);
                ASSERT(calls[th][si][1][fail] >= 20);
                ASSERT_LE(err[th][si][0][fail], 1.0);
                ASSERT_LE(err[th][si][1][fail], 1.0);
            }
}
