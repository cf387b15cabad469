/* Spectral functions of a matrix in double, and their fp32 tolerance
 * (tests/ref_family.h). */
#include "ref_family.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#include "ref_ortho.h"

static double lipschitz(const double *s, const double *f, long k, int rectangular)
{
    double l = 0;
    for (long i = 0; i < k; i++) {
        if (rectangular && s[i] > 0)
            l = fmax(l, f[i] / s[i]);
        for (long j = i + 1; j < k; j++) {
            if (s[i] + s[j] > 0)
                l = fmax(l, (f[i] + f[j]) / (s[i] + s[j]));
            if (s[i] > s[j])
                l = fmax(l, fabs(f[i] - f[j]) / (s[i] - s[j]));
            else if (f[i] != f[j])
                return INFINITY; /* a repeated value split by f: no bound */
        }
    }
    return l;
}

double ref_spectral(const double *n, long rows, long cols, long k_top, double power, int step,
                    double *out)
{
    long k = rows < cols ? rows : cols, mx = rows < cols ? cols : rows;
    double *a = malloc(sizeof(double) * (size_t)(rows * cols));
    double *s = malloc(sizeof(double) * (size_t)k);
    double *f = malloc(sizeof(double) * (size_t)k);
    double *u = malloc(sizeof(double) * (size_t)(rows * k));
    double *vt = malloc(sizeof(double) * (size_t)(k * cols));
    double *sup = malloc(sizeof(double) * (size_t)k);
    memcpy(a, n, sizeof(double) * (size_t)(rows * cols));
    double tol = -1;
    if (LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'S', (lapack_int)rows, (lapack_int)cols, a,
                       (lapack_int)cols, s, u, (lapack_int)k, vt, (lapack_int)cols, sup) == 0) {
        double norm = 1, sum = 0, fmax_ = 0;
        if (power != 0) {
            for (long i = 0; i < k; i++)
                sum += pow(s[i] / s[0], 2 * power);
            norm = sqrt((double)k / sum);
        }
        for (long i = 0; i < k; i++) {
            f[i] = power != 0 ? pow(s[i] / s[0], power) * norm : i < k_top ? 1.0 : 0.0;
            fmax_ = fmax(fmax_, f[i]);
        }
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < cols; c++) {
                double acc = 0;
                for (long i = 0; i < k; i++)
                    acc += u[r * k + i] * f[i] * vt[i * cols + c];
                out[r * cols + c] = acc;
            }
        double frob = 0;
        for (long i = 0; i < rows * cols; i++)
            frob += n[i] * n[i];
        double l = lipschitz(s, f, k, rows != cols);
        if (power != 0)
            l += power * fmax_ / s[k - 1];
        double dn = REF_U32 * (sqrt((double)mx) * s[0] + (2.0 * step + 3.0) * sqrt(frob));
        tol = REF_SAFETY * l * dn;
    }
    free(a);
    free(s);
    free(f);
    free(u);
    free(vt);
    free(sup);
    return tol;
}
