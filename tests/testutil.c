/* Reference implementations in double precision with plain loops, and the
 * file and process helpers the tests share. */
#include "testutil.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void tu_seed(tu_rng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 1;
}

static uint64_t next_u64(tu_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double tu_uniform(tu_rng *r)
{
    return (double)(next_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double tu_normal(tu_rng *r)
{
    double u1 = tu_uniform(r), u2 = tu_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void tu_fill_normal(tu_rng *r, float *x, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * tu_normal(r));
}

/* n x k matrix with orthonormal columns from the QR of a Gaussian matrix. */
static void random_orthonormal(tu_rng *r, double *q, long n, long k)
{
    for (long i = 0; i < n * k; i++)
        q[i] = tu_normal(r);
    double *tau = malloc(sizeof(double) * (size_t)k);
    LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)k, q, (lapack_int)k, tau);
    LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)k, (lapack_int)k, q,
                   (lapack_int)k, tau);
    free(tau);
}

void tu_matrix_with_cond(tu_rng *r, float *x, long rows, long cols, double cond)
{
    long k = rows < cols ? rows : cols;
    double *u = malloc(sizeof(double) * (size_t)(rows * k));
    double *v = malloc(sizeof(double) * (size_t)(cols * k));
    random_orthonormal(r, u, rows, k);
    random_orthonormal(r, v, cols, k);
    for (long i = 0; i < rows; i++)
        for (long j = 0; j < cols; j++) {
            double acc = 0;
            for (long t = 0; t < k; t++) {
                double s = k > 1 ? pow(cond, -(double)t / (double)(k - 1)) : 1.0;
                acc += u[i * k + t] * s * v[j * k + t];
            }
            x[i * cols + j] = (float)acc;
        }
    free(u);
    free(v);
}

void tu_matmul_ref(const double *a, const double *b, double *c, long m, long k, long n)
{
    /* row by row, so B is read along its rows */
    for (long i = 0; i < m; i++) {
        double *ci = c + i * n;
        for (long j = 0; j < n; j++)
            ci[j] = 0;
        for (long t = 0; t < k; t++) {
            double ait = a[i * k + t];
            const double *bt = b + t * n;
            for (long j = 0; j < n; j++)
                ci[j] += ait * bt[j];
        }
    }
}

static int svd_double(const float *x, long rows, long cols, double *s, double *u, double *vt)
{
    long k = rows < cols ? rows : cols;
    double *a = malloc(sizeof(double) * (size_t)(rows * cols));
    for (long i = 0; i < rows * cols; i++)
        a[i] = x[i];
    double *uu = u ? u : malloc(sizeof(double) * (size_t)(rows * k));
    double *vv = vt ? vt : malloc(sizeof(double) * (size_t)(k * cols));
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, u ? 'S' : 'N', (lapack_int)rows,
                                     (lapack_int)cols, a, (lapack_int)cols, s, uu, (lapack_int)k,
                                     vv, (lapack_int)cols);
    if (!u)
        free(uu);
    if (!vt)
        free(vv);
    free(a);
    return info == 0 ? 0 : -1;
}

int tu_singular_values(const float *x, long rows, long cols, double *s)
{
    return svd_double(x, rows, cols, s, NULL, NULL);
}

int tu_polar_ref(const float *x, long rows, long cols, double *out)
{
    long k = rows < cols ? rows : cols;
    double *s = malloc(sizeof(double) * (size_t)k);
    double *u = malloc(sizeof(double) * (size_t)(rows * k));
    double *vt = malloc(sizeof(double) * (size_t)(k * cols));
    int rc = svd_double(x, rows, cols, s, u, vt);
    if (rc == 0)
        tu_matmul_ref(u, vt, out, rows, k, cols);
    free(s);
    free(u);
    free(vt);
    return rc;
}

double tu_max_abs_diff_fd(const float *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m))
            m = d; /* NaN propagates as the max */
    }
    return m;
}

double tu_max_abs_diff_ff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m))
            m = d;
    }
    return m;
}

double tu_rms(const float *x, size_t n)
{
    double acc = 0;
    for (size_t i = 0; i < n; i++)
        acc += (double)x[i] * x[i];
    return sqrt(acc / (double)n);
}

const char *tu_tmpdir(void)
{
    static char paths[64][64];
    static int used;
    char *p = paths[used++ % 64];
    snprintf(p, 64, "/tmp/muon-test-XXXXXX");
    if (!mkdtemp(p))
        return "/tmp";
    return p;
}

int tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

void *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int tu_run(const char *cmd, char **out)
{
    char full[8192];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p)
        return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, p)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    buf[n] = 0;
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

const char *tu_build_dir(void)
{
    const char *b = getenv("MUON_BUILD");
    return b && *b ? b : "build";
}

uint32_t tu_float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float tu_bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

double tu_rel_frob(const float *a, const float *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return sqrt(d / s);
}
