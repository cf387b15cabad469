/* Dense double-precision helpers of the matrix experiments (linalg.h). */
#include "exp/linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

void exp_rng_seed(exp_rng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 1;
}

static uint64_t next_u64(exp_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double exp_uniform(exp_rng *r)
{
    return (double)(next_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double exp_normal(exp_rng *r)
{
    double u = exp_uniform(r), v = exp_uniform(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

int exp_orthonormal(exp_rng *r, long n, long k, double *q)
{
    double *tau = malloc(sizeof(double) * (size_t)k);
    if (!tau)
        return -1;
    for (long i = 0; i < n * k; i++)
        q[i] = exp_normal(r);
    int rc = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)k, q, (lapack_int)k,
                            tau) != 0 ||
             LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)k, (lapack_int)k, q,
                            (lapack_int)k, tau) != 0;
    free(tau);
    return rc ? -1 : 0;
}

int exp_matrix_with_spectrum(exp_rng *r, long rows, long cols, const double *s, double *out)
{
    long k = rows < cols ? rows : cols;
    double *u = malloc(sizeof(double) * (size_t)(rows * k));
    double *v = malloc(sizeof(double) * (size_t)(cols * k));
    int rc = -1;
    if (u && v && !exp_orthonormal(r, rows, k, u) && !exp_orthonormal(r, cols, k, v)) {
        for (long i = 0; i < rows; i++)
            for (long j = 0; j < k; j++)
                u[i * k + j] *= s[j];
        exp_gemm(0, 1, rows, cols, k, 1.0, u, v, 0.0, out);
        rc = 0;
    }
    free(u);
    free(v);
    return rc;
}

int exp_singular_values(const double *x, long rows, long cols, double *s)
{
    double *a = malloc(sizeof(double) * (size_t)(rows * cols));
    if (!a)
        return -1;
    memcpy(a, x, sizeof(double) * (size_t)(rows * cols));
    double du = 0, dv = 0;
    /* read column-major, the row-major matrix is its transpose: same values */
    int rc = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', (lapack_int)cols, (lapack_int)rows, a,
                            (lapack_int)cols, s, &du, 1, &dv, 1);
    free(a);
    return rc ? -1 : 0;
}

int exp_singular_values_f(const float *x, long rows, long cols, double *s)
{
    double *a = malloc(sizeof(double) * (size_t)(rows * cols));
    if (!a)
        return -1;
    for (long i = 0; i < rows * cols; i++)
        a[i] = x[i];
    int rc = exp_singular_values(a, rows, cols, s);
    free(a);
    return rc;
}

int exp_polar(const double *x, long rows, long cols, double *out)
{
    long k = rows < cols ? rows : cols;
    double *a = malloc(sizeof(double) * (size_t)(rows * cols));
    double *s = malloc(sizeof(double) * (size_t)k);
    double *u = malloc(sizeof(double) * (size_t)(rows * k));
    double *vt = malloc(sizeof(double) * (size_t)(k * cols));
    int rc = -1;
    if (a && s && u && vt) {
        memcpy(a, x, sizeof(double) * (size_t)(rows * cols));
        if (LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)rows, (lapack_int)cols, a,
                           (lapack_int)cols, s, u, (lapack_int)k, vt, (lapack_int)cols) == 0) {
            /* directions of numerically zero singular values carry no sign */
            for (long j = 0; j < k; j++)
                if (s[j] <= s[0] * 1e-13 * (double)(rows > cols ? rows : cols))
                    for (long i = 0; i < rows; i++)
                        u[i * k + j] = 0;
            exp_gemm(0, 0, rows, cols, k, 1.0, u, vt, 0.0, out);
            rc = 0;
        }
    }
    free(a);
    free(s);
    free(u);
    free(vt);
    return rc;
}

void exp_gemm(int ta, int tb, long m, long n, long k, double alpha, const double *a,
              const double *b, double beta, double *c)
{
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, ta ? (int)m : (int)k, b, tb ? (int)k : (int)n,
                beta, c, (int)n);
}
