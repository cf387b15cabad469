/* Small dense linear algebra for the matrix experiments: a seeded RNG,
 * random matrices of a given spectrum, singular values and spectral
 * functions in double precision (LAPACK). */
#ifndef MUON_EXP_LINALG_H
#define MUON_EXP_LINALG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s;
} exp_rng;

void exp_rng_seed(exp_rng *r, uint64_t seed);
double exp_uniform(exp_rng *r); /* [0, 1) */
double exp_normal(exp_rng *r);

/* n x k matrix with orthonormal columns (k <= n), Haar-distributed, in q. */
int exp_orthonormal(exp_rng *r, long n, long k, double *q);
/* rows x cols = U diag(s) V^T, U and V Haar, s given (min(rows, cols) values). */
int exp_matrix_with_spectrum(exp_rng *r, long rows, long cols, const double *s, double *out);
/* Singular values (descending) of a double / float matrix. 0 or -1. */
int exp_singular_values(const double *x, long rows, long cols, double *s);
int exp_singular_values_f(const float *x, long rows, long cols, double *s);
/* out = U V^T of x (the exact polar factor). 0 or -1. */
int exp_polar(const double *x, long rows, long cols, double *out);
/* C = op(A) op(B) in double (row-major, through BLAS). */
void exp_gemm(int ta, int tb, long m, long n, long k, double alpha, const double *a,
              const double *b, double beta, double *c);

#endif
