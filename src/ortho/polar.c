/* polar.c - the exact polar factor U V^T via LAPACK's sgesdd (docs/algorithms.md
 * 1c), and the orthogonality error max |s_i - 1| via dgesdd.
 *
 * A row-major rows x cols matrix is, read column-major, its transpose; the
 * SVD of X^T = V S U^T gives polar(X^T) = V U^T = polar(X)^T, which read
 * back row-major is polar(X). So LAPACK is called column-major directly:
 * no transposed copies, and LAPACKE's _work entry points then allocate
 * nothing (the row-major ones transpose into temporaries). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "base/internal.h"
#include "ortho/ortho.h"

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* LAPACK's workspace for sgesdd('S') on an M x N column-major matrix. */
static size_t sgesdd_lwork(long M, long N)
{
    long k = M < N ? M : N, mx = M < N ? N : M;
    float wq = 0, dummy = 0;
    lapack_int idummy = 0;
    lapack_int info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)M, (lapack_int)N,
                                          &dummy, (lapack_int)M, &dummy, &dummy, (lapack_int)M,
                                          &dummy, (lapack_int)k, &wq, -1, &idummy);
    size_t minimum = (size_t)(3 * k + (mx > 4 * k * k + 4 * k ? mx : 4 * k * k + 4 * k));
    /* the query answers in a float: pad for its rounding */
    size_t query = info == 0 ? (size_t)((double)wq * 1.001) + 64 : 0;
    return query > minimum ? query : minimum;
}

size_t muon__svd_work_floats(long rows, long cols)
{
    size_t k = (size_t)(rows < cols ? rows : cols);
    size_t r = (size_t)rows, c = (size_t)cols;
    return round16(r * c)                 /* copy of X, destroyed by sgesdd */
           + round16(k)                   /* singular values */
           + round16(c * k)               /* U' (cols x k) */
           + round16(k * r)               /* V'^T (k x rows) */
           + round16(8 * k)               /* iwork (lapack_int is 32-bit here) */
           + round16(sgesdd_lwork(cols, rows));
}

muon_status muon__svd_polar(const float *in, float *out, long rows, long cols, float *work)
{
    return muon__svd_shaped(in, out, rows, cols, work, LONG_MAX, 0.0);
}

muon_status muon__svd_shaped(const float *in, float *out, long rows, long cols, float *work,
                             long k_top, double power)
{
    long M = cols, N = rows; /* the column-major view */
    long k = M < N ? M : N;
    size_t ks = (size_t)k;
    float *a = work;
    float *s = a + round16((size_t)rows * (size_t)cols);
    float *u = s + round16(ks);
    float *vt = u + round16((size_t)M * ks);
    lapack_int *iwork = (lapack_int *)(vt + round16(ks * (size_t)N));
    float *lw = (float *)iwork + round16(8 * ks);
    size_t lwork = sgesdd_lwork(M, N);

    memcpy(a, in, (size_t)rows * (size_t)cols * sizeof(float));
    lapack_int info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)M, (lapack_int)N, a,
                                          (lapack_int)M, s, u, (lapack_int)M, vt, (lapack_int)k,
                                          lw, (lapack_int)lwork, iwork);
    if (info != 0)
        return MUON_ERR_LAPACK;
    /* Directions with numerically zero singular values carry no sign:
     * drop them (the usual rank tolerance), so a zero or rank-deficient
     * matrix gets zeros there instead of arbitrary vectors. */
    double tol = (double)s[0] * (double)(M > N ? M : N) * FLT_EPSILON;
    long r = 0;
    while (r < k && s[r] > tol)
        r++;
    if (r > k_top)
        r = k_top;
    if (r == 0) {
        memset(out, 0, (size_t)rows * (size_t)cols * sizeof(float));
        return MUON_OK;
    }
    if (power != 0.0) {
        /* s^p, scaled so the result has the Frobenius norm sqrt(r) of U V^T:
         * one learning rate serves every p */
        double sum = 0;
        for (long i = 0; i < r; i++)
            sum += pow((double)s[i] / (double)s[0], 2.0 * power);
        double norm = sqrt((double)r / sum);
        for (long i = 0; i < r; i++) {
            float f = (float)(pow((double)s[i] / (double)s[0], power) * norm);
            for (long j = 0; j < M; j++)
                u[i * M + j] *= f;
        }
    }
    cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)r, 1.0f, u,
                (int)M, vt, (int)k, 0.0f, out, (int)M);
    return MUON_OK;
}

double muon__svd_flops(long rows, long cols)
{
    /* An estimate (LAPACK does not report its flops): the R-SVD count of
     * Golub & Van Loan for U, S, V of a thin SVD, 6 M N^2 + 20 N^3 with
     * M >= N, plus the final product 2 M N^2. */
    double mx = (double)(rows > cols ? rows : cols), mn = (double)(rows > cols ? cols : rows);
    return 6 * mx * mn * mn + 20 * mn * mn * mn + 2 * mx * mn * mn;
}

muon_status muon_ortho_error(const float *x, long rows, long cols, double *err)
{
    if (!x || !err)
        return MUON_ERR_NULL;
    size_t n;
    if (rows <= 0 || cols <= 0 || !muon__mul_size(rows, cols, &n) || rows > INT32_MAX ||
        cols > INT32_MAX)
        return MUON_ERR_SIZE;
    if (!muon__all_finite(x, n))
        return MUON_ERR_NONFINITE;
    long k = rows < cols ? rows : cols;
    double *a = malloc(n * sizeof(double));
    double *s = malloc((size_t)k * sizeof(double));
    if (!a || !s) {
        free(a);
        free(s);
        return MUON_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        a[i] = x[i];
    double du = 0, dvt = 0;
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', (lapack_int)cols, (lapack_int)rows, a,
                                     (lapack_int)cols, s, &du, 1, &dvt, 1);
    muon_status st = MUON_OK;
    if (info != 0) {
        st = info < 0 ? MUON_ERR_ARG : MUON_ERR_LAPACK;
    } else {
        double e = 0;
        for (long i = 0; i < k; i++)
            if (fabs(s[i] - 1.0) > e)
                e = fabs(s[i] - 1.0);
        *err = e;
    }
    free(a);
    free(s);
    return st;
}
