/* ortho.c - muon_orthogonalize, the one entry point of the kernels: checks,
 * workspace layout, the common prologue (Frobenius normalization or AOL,
 * docs/algorithms.md 1 and 1d) and dispatch to NS, Gram NS or the exact polar
 * factor. Nothing is written to `out` before every check has passed, and
 * nothing is allocated when the caller gives a workspace.
 *
 * Buffers: X0 and each X product alternate between `out` and one m x n
 * workspace buffer, arranged by parity so the last product lands in `out`;
 * no copy and no transpose is made on the way (tall inputs use the
 * transposed view in place, see kernels.c). */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "base/internal.h"
#include "ortho/ortho.h"

#define ALIGN_SLACK 64

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static muon_status check_shape(long rows, long cols, size_t *n)
{
    if (rows <= 0 || cols <= 0 || rows > INT_MAX || cols > INT_MAX || !muon__mul_size(rows, cols, n))
        return MUON_ERR_SIZE;
    /* the m x m matrices too, and lapack/BLAS leading dimensions */
    long m = rows < cols ? rows : cols;
    size_t mm;
    if (!muon__mul_size(m, m, &mm) || *n > SIZE_MAX / 64)
        return MUON_ERR_SIZE;
    return MUON_OK;
}

/* Floats of workspace for a resolved config. An unresolved AUTO precision
 * is sized as mixed, whose buffers hold fp32's, so a workspace sized
 * without a backend serves every backend. */
static size_t work_floats(const muon_ortho_config *cfg, long rows, long cols)
{
    if (cfg->method == MUON_ORTHO_SVD)
        return muon__svd_work_floats(rows, cols);
    muon_ortho_config mixed = *cfg;
    const muon_ortho_config *c = cfg;
    if (cfg->precision == MUON_PRECISION_AUTO) {
        mixed.precision = MUON_PRECISION_MIXED;
        c = &mixed;
    }
    muon__view v = muon__view_of(rows, cols);
    size_t mm = round16((size_t)v.m * (size_t)v.m);
    return round16((size_t)v.m * (size_t)v.n) + (size_t)muon__iter_mm_buffers(c) * mm +
           round16((size_t)v.m) + muon__bf16_work_floats(c, &v);
}

/* AUTO precision on be: mixed where the bf16 steps' flops at the
 * backend's bf16 rate plus the fp32 steps' cost less than fp32 throughout.
 * NS-form bf16 steps cost more flops than Gram NS's m x m iterations, so
 * wide matrices stay fp32 unless bf16 runs much faster. */
static muon_precision pick_precision(const muon__backend *be, const muon_ortho_config *c,
                                     long rows, long cols)
{
    muon__view v = muon__view_of(rows, cols);
    if (c->method == MUON_ORTHO_SVD || be->bf16_speedup <= 0 || v.m < be->auto_mixed_min)
        return MUON_PRECISION_FP32;
    muon_ortho_config f = *c, x = *c;
    f.precision = MUON_PRECISION_FP32;
    x.precision = MUON_PRECISION_MIXED;
    if (muon__bf16_steps(&x) == 0)
        return MUON_PRECISION_FP32;
    double fp32 = muon__iter_flops(&f, &v, c->aol);
    double bf16 = muon__mixed_flops(&x, &v);
    double mixed = muon__iter_flops(&x, &v, c->aol) - bf16 + bf16 / be->bf16_speedup;
    return mixed < fp32 ? MUON_PRECISION_MIXED : MUON_PRECISION_FP32;
}

static muon_ortho_config resolve_on(const muon__backend *be, const muon_ortho_config *cfg,
                                    long rows, long cols)
{
    muon_ortho_config c = muon__ortho_resolve(cfg, rows, cols);
    if (c.precision == MUON_PRECISION_AUTO)
        c.precision = pick_precision(be, &c, rows, cols);
    return c;
}

muon_status muon_ortho_resolve(const muon_backend *be, const muon_ortho_config *cfg, long rows,
                               long cols, muon_ortho_config *out)
{
    if (!cfg || !out)
        return MUON_ERR_NULL;
    muon_status st = muon_ortho_config_validate(cfg);
    size_t n;
    if (st == MUON_OK)
        st = check_shape(rows, cols, &n);
    if (st == MUON_OK)
        *out = resolve_on(be ? be : muon__backend_default(), cfg, rows, cols);
    return st;
}

muon_status muon_ortho_workspace_size(const muon_ortho_config *cfg, long rows, long cols,
                                      size_t *bytes)
{
    if (!cfg || !bytes)
        return MUON_ERR_NULL;
    muon_status st = muon_ortho_config_validate(cfg);
    if (st != MUON_OK)
        return st;
    size_t n;
    if ((st = check_shape(rows, cols, &n)) != MUON_OK)
        return st;
    muon_ortho_config c = muon__ortho_resolve(cfg, rows, cols);
    size_t f = work_floats(&c, rows, cols);
    if (f > (SIZE_MAX - ALIGN_SLACK) / sizeof(float))
        return MUON_ERR_SIZE;
    *bytes = f * sizeof(float) + ALIGN_SLACK;
    return MUON_OK;
}

static double sum_squares(const float *x, size_t n)
{
    /* in double: no overflow for any finite float, and NaN/Inf propagate,
     * so this one pass is also the finiteness check */
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++)
        acc += (double)x[i] * (double)x[i];
    return acc;
}

static void scale_copy(const float *x, float *y, size_t n, double scale)
{
    /* in == out allowed: element-wise; the product in double keeps a tiny
     * scale from flushing to zero before the multiplication */
    for (size_t i = 0; i < n; i++)
        y[i] = (float)((double)x[i] * scale);
}

/* AOL (1d): A = X X^T; s_i = 1 / sqrt(sum_j |A_ij|); X <- diag(s) X;
 * A <- diag(s) A diag(s), left in a for the first step. eps^2 inside the
 * root keeps a zero row at zero instead of 0 * Inf. */
static void aol_rescale(const muon__view *v, float *x, float *a, float *s, double eps)
{
    long m = v->m, n = v->n;
    muon__gram(v, x, a, 1.0f);
    for (long i = 0; i < m; i++) {
        double acc = 0;
        for (long j = 0; j < m; j++)
            acc += fabs((double)a[i * m + j]);
        s[i] = (float)(1.0 / sqrt(acc + eps * eps));
    }
    for (long i = 0; i < m; i++)
        for (long j = 0; j < m; j++)
            a[i * m + j] *= s[i] * s[j];
    if (v->tall) { /* columns of the n x m matrix */
        for (long r = 0; r < n; r++)
            for (long i = 0; i < m; i++)
                x[r * m + i] *= s[i];
    } else {
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++)
                x[i * n + j] *= s[i];
    }
}

/* The panels and the thread split of one call, from the backend's table.
 * On T > 1 threads the split mode runs SYRKs as row panels over T OpenMP
 * threads with single-threaded OpenBLAS and oneDNN's products on T
 * threads, so OpenBLAS's thread pool and OpenMP's never take turns. The
 * table's syrk_panels (OpenBLAS on AVX2 kernels) sends large SYRKs by
 * panels on one thread too. With same_bits (the optimizer, which keeps
 * its own blocking the same on every thread count) the panels do not
 * depend on the thread count, and SYRKs without panels run on OpenBLAS's
 * threads. */
static void plan_view(muon__view *v, int same_bits)
{
    const muon__backend *be = v->be;
    int t = omp_in_parallel() ? 1 : v->threads;
    int fixed = be->syrk_panels > 0 && v->m >= be->syrk_panel_min ? be->syrk_panels : 0;
    if (!be->split) {
        v->split = 0;
        v->panels = fixed;
    } else if (same_bits) {
        v->panels = fixed;
        v->split = v->panels && t > 1 ? t : 0;
    } else {
        v->split = t > 1 ? t : 0;
        v->panels = t > 1 ? be->split_panels_per_thread * t : fixed;
    }
}

static muon_status iterate(const muon__backend *be, int threads, const muon_ortho_config *c,
                           const float *in, float *out, long rows, long cols, float *base,
                           double sumsq, int same_bits)
{
    muon__view v = muon__view_of(rows, cols);
    v.be = be;
    v.threads = threads;
    plan_view(&v, same_bits);
    size_t n = (size_t)rows * (size_t)cols, mmf = round16((size_t)v.m * (size_t)v.m);
    float *other = base;
    float *mm[4] = {NULL, NULL, NULL, NULL};
    float *p = base + round16(n);
    int nb = muon__iter_mm_buffers(c);
    for (int i = 0; i < nb; i++, p += mmf)
        mm[i] = p;
    float *svec = p;
    float *wb = p + round16((size_t)v.m);

    /* the chain X0 -> X1 -> ... alternates buffers and must end in out */
    float *x0 = muon__iter_x_products(c) % 2 == 0 ? out : other;
    float *x1 = x0 == out ? other : out;
    double norm = sqrt(sumsq);
    double s = c->aol ? 1.0 : muon__ortho_norm_factor(c);
    scale_copy(in, x0, n, 1.0 / (norm * s + c->eps));
    if (c->aol)
        aol_rescale(&v, x0, mm[0], svec, c->eps);
    int t0 = muon__bf16_steps(c);
    if (t0 > 0) {
        muon_status st = muon__mixed_run(c, &v, &x0, &x1, mm[0], mm[1], mm[2], wb);
        if (st != MUON_OK)
            return st;
    }
    int have_a0 = c->aol && t0 == 0;
    if (c->method == MUON_ORTHO_GRAM_NS)
        muon__gram_ns_run(c, &v, t0, x0, x1, mm, have_a0);
    else
        muon__ns_run(c, &v, t0, x0, x1, mm, have_a0);
    return MUON_OK;
}

muon_status muon_orthogonalize(const muon_ortho_config *cfg, const float *in, float *out,
                               long rows, long cols, void *work, size_t work_bytes)
{
    return muon__orthogonalize(muon__backend_default(), muon__caller_threads(), cfg, in, out,
                               rows, cols, work, work_bytes, 0);
}

muon_status muon_orthogonalize_on(const muon_backend *be, const muon_ortho_config *cfg,
                                  const float *in, float *out, long rows, long cols, void *work,
                                  size_t work_bytes)
{
    if (!be)
        return muon_orthogonalize(cfg, in, out, rows, cols, work, work_bytes);
    if (omp_in_parallel())
        return muon__orthogonalize(be, 1, cfg, in, out, rows, cols, work, work_bytes, 0);
    int old = muon__blas_threads_push(be->threads);
    muon_status s =
        muon__orthogonalize(be, be->threads, cfg, in, out, rows, cols, work, work_bytes, 0);
    muon__blas_threads_pop(old);
    return s;
}

muon_status muon__orthogonalize(const muon__backend *be, int threads, const muon_ortho_config *cfg,
                                const float *in, float *out, long rows, long cols, void *work,
                                size_t work_bytes, int same_bits)
{
    if (!cfg || !in || !out)
        return MUON_ERR_NULL;
    muon_status st = muon_ortho_config_validate(cfg);
    if (st != MUON_OK)
        return st;
    size_t n;
    if ((st = check_shape(rows, cols, &n)) != MUON_OK)
        return st;
    /* the size muon_ortho_workspace_size gives, whatever AUTO picks */
    muon_ortho_config asked = muon__ortho_resolve(cfg, rows, cols);
    size_t need = work_floats(&asked, rows, cols) * sizeof(float) + ALIGN_SLACK;
    muon_ortho_config c = resolve_on(be, cfg, rows, cols);
    if (work && work_bytes < need)
        return MUON_ERR_WORKSPACE;
    double sumsq = sum_squares(in, n);
    if (!isfinite(sumsq))
        return MUON_ERR_NONFINITE;

    void *owned = NULL;
    if (!work) {
        owned = muon__aligned_alloc(need);
        if (!owned)
            return MUON_ERR_NOMEM;
        work = owned;
    }
    float *base = (float *)(((uintptr_t)work + ALIGN_SLACK - 1) & ~(uintptr_t)(ALIGN_SLACK - 1));

    if (c.method == MUON_ORTHO_SVD)
        st = muon__svd_polar(in, out, rows, cols, base);
    else
        st = iterate(be, threads, &c, in, out, rows, cols, base, sumsq, same_bits);
    free(owned);
    return st;
}

double muon__ortho_flops_on(const muon__backend *be, const muon_ortho_config *cfg, long rows,
                            long cols)
{
    size_t n;
    if (!cfg || muon_ortho_config_validate(cfg) != MUON_OK ||
        check_shape(rows, cols, &n) != MUON_OK)
        return 0.0;
    muon_ortho_config c = resolve_on(be, cfg, rows, cols);
    if (c.method == MUON_ORTHO_SVD)
        return muon__svd_flops(rows, cols);
    muon__view v = muon__view_of(rows, cols);
    double aol = c.aol ? (double)v.m * (double)(v.m + 1) * (double)v.n : 0.0;
    return aol + muon__iter_flops(&c, &v, c.aol);
}

double muon_ortho_flops(const muon_ortho_config *cfg, long rows, long cols)
{
    return muon__ortho_flops_on(muon__backend_default(), cfg, rows, cols);
}
