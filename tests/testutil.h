/* Slow, obviously correct references and helpers shared by the tests. */
#ifndef MUON_TESTUTIL_H
#define MUON_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Deterministic RNG (splitmix64) seeded from mt_seed by tu_seed(). */
typedef struct {
    uint64_t s;
} tu_rng;
void tu_seed(tu_rng *r, uint64_t seed);
double tu_uniform(tu_rng *r); /* [0, 1) */
double tu_normal(tu_rng *r);
void tu_fill_normal(tu_rng *r, float *x, size_t n, double scale);

/* A rows x cols float matrix U diag(s) V^T with Haar-random U and V and
 * singular values geometrically spaced from 1 down to 1/cond (cond >= 1). */
void tu_matrix_with_cond(tu_rng *r, float *x, long rows, long cols, double cond);

/* C = A B in double with plain loops (A m x k, B k x n, row-major). */
void tu_matmul_ref(const double *a, const double *b, double *c, long m, long k, long n);
/* Singular values of a float matrix, in double, descending (min(m,n) of them).
 * Returns 0 on success. */
int tu_singular_values(const float *x, long rows, long cols, double *s);
/* Exact polar factor U V^T in double via dgesdd. Returns 0 on success. */
int tu_polar_ref(const float *x, long rows, long cols, double *out);
/* max |a_i - b_i| */
double tu_max_abs_diff_fd(const float *a, const double *b, size_t n);
double tu_max_abs_diff_ff(const float *a, const float *b, size_t n);
/* The bits of a float and back. */
uint32_t tu_float_bits(float f);
float tu_bits_float(uint32_t u);
/* ||a - b||_F / ||b||_F in double. */
double tu_rel_frob(const float *a, const float *b, size_t n);
/* sqrt(mean(x^2)) */
double tu_rms(const float *x, size_t n);

/* A fresh empty directory under /tmp; returns a static-lifetime copy. */
const char *tu_tmpdir(void);
/* Write / read a whole file. read returns a malloc'd buffer (NULL on error). */
int tu_write_file(const char *path, const void *data, size_t len);
void *tu_read_file(const char *path, size_t *len);
/* Run a shell command; returns its exit status (or -1) and, when out is not
 * NULL, a malloc'd copy of stdout+stderr. */
int tu_run(const char *cmd, char **out);
/* Path of the build directory (env MUON_BUILD, default "build"). */
const char *tu_build_dir(void);

#endif
