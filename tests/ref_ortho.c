/* Reference orthogonalization in double and the rounding model behind the
 * tests' tolerances (ref_ortho.h). */
#include "ref_ortho.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Copied from docs/algorithms.md 1a, independently of src/ortho/coeffs.c. */
static const double REF_PE[8][3] = {
    {8.28721201814563, -23.595886519098837, 17.300387312530933},
    {4.107059111542203, -2.9478499167379106, 0.5448431082926601},
    {3.9486908534822946, -2.908902115962949, 0.5518191394370137},
    {3.3184196573706015, -2.488488024314874, 0.51004894012372},
    {2.300652019954817, -1.6689039845747493, 0.4188073119525673},
    {1.891301407787398, -1.2679958271945868, 0.37680408948524835},
    {1.8750014808534479, -1.2500016453999487, 0.3750001645474248},
    {1.875, -1.25, 0.375},
};
static const double REF_Q5[5][3] = {
    {4.0848, -6.8946, 2.9270}, {3.9505, -6.3029, 2.6377}, {3.7418, -5.5913, 2.3037},
    {2.8769, -3.1427, 1.2046}, {2.8366, -3.0525, 1.2012},
};

static double factorial(int n)
{
    double f = 1;
    for (int i = 2; i <= n; i++)
        f *= i;
    return f;
}

/* taylor-K: p(l) = sum_s c_s (1 - l)^s, expanded by multiplying out (1 - l)^s */
void ref_taylor(int k, ref_poly *p)
{
    memset(p, 0, sizeof *p);
    p->deg = k;
    double pw[6] = {1, 0, 0, 0, 0, 0}; /* coefficients of (1 - l)^s */
    for (int s = 0; s <= k; s++) {
        double cs = factorial(2 * s) / (pow(4, s) * factorial(s) * factorial(s));
        for (int j = 0; j <= s; j++)
            p->q[j] += cs * pw[j];
        for (int j = s + 1; j >= 1 && s < k; j--) /* pw *= (1 - l) */
            pw[j] -= pw[j - 1];
    }
}

static void step_poly(muon_coeffs coeffs, int taylor_k, double safety, int t, ref_poly *p)
{
    memset(p, 0, sizeof *p);
    p->deg = 2;
    const double *abc;
    double f = 1.0;
    switch (coeffs) {
    case MUON_COEFFS_KELLER:
        p->q[0] = 3.4445, p->q[1] = -4.7750, p->q[2] = 2.0315;
        return;
    case MUON_COEFFS_QUINTIC5:
        abc = REF_Q5[t < 5 ? t : 4];
        break;
    case MUON_COEFFS_TAYLOR:
        ref_taylor(taylor_k, p);
        return;
    default:
        abc = REF_PE[t < 8 ? t : 7];
        f = t < 7 ? safety : 1.0;
        break;
    }
    p->q[0] = abc[0] / f;
    p->q[1] = abc[1] / (f * f * f);
    p->q[2] = abc[2] / (f * f * f * f * f);
}

void ref_step_poly(muon_coeffs coeffs, int taylor_k, int t, ref_poly *p)
{
    step_poly(coeffs, taylor_k, 1.01, t, p);
}

/* ------------------------------------------------------------ the model */

static double unit(ref_noise *nz)
{
    return 2.0 * tu_uniform(&nz->rng) - 1.0;
}

/* x rounded as a bf16 operand would be (in the model: relative operand_u) */
static const double *operands(ref_noise *nz, int t, const double *x, size_t n, double *buf)
{
    if (!nz || nz->operand_u == 0 || t >= nz->bf16_until)
        return x;
    for (size_t i = 0; i < n; i++)
        buf[i] = x[i] * (1.0 + nz->operand_u * unit(nz));
    return buf;
}

/* C = A B (A m x k, B k x n), then the model's rounding of a k-term sum */
static void mul(ref_noise *nz, int t, const double *a, const double *b, double *c, long m, long k,
                long n, double *scratch_a, double *scratch_b)
{
    a = operands(nz, t, a, (size_t)(m * k), scratch_a);
    b = operands(nz, t, b, (size_t)(k * n), scratch_b);
    /* double-precision BLAS: a product ~1e9 times more accurate than the
     * float32 results it is the reference of, and fast enough for the
     * 256-row shapes that take the library's panel paths */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0, a, (int)k,
                b, (int)n, 0.0, c, (int)n);
    if (!nz)
        return;
    double *ra = malloc(sizeof(double) * (size_t)m), *cb = malloc(sizeof(double) * (size_t)n);
    for (long i = 0; i < m; i++) {
        double s = 0;
        for (long j = 0; j < k; j++)
            s += a[i * k + j] * a[i * k + j];
        ra[i] = sqrt(s);
    }
    for (long j = 0; j < n; j++) {
        double s = 0;
        for (long i = 0; i < k; i++)
            s += b[i * n + j] * b[i * n + j];
        cb[j] = sqrt(s);
    }
    double f = nz->u * sqrt((double)k);
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++)
            c[i * n + j] += f * unit(nz) * ra[i] * cb[j];
    free(ra);
    free(cb);
}

/* the model's rounding of an elementwise result */
static void round_each(ref_noise *nz, double *x, size_t n)
{
    if (!nz)
        return;
    for (size_t i = 0; i < n; i++)
        x[i] += nz->u * unit(nz) * fabs(x[i]);
}

/* ------------------------------------------------------------ iterations */

typedef struct {
    long m, n;
    double *x, *y, *a, *pw, *tmp, *pa, *q, *z, *sa, *sb;
    ref_noise *nz;
} ref_work;

static void gram(ref_work *w, int t, const double *x, double *r)
{
    double *xt = malloc(sizeof(double) * (size_t)(w->m * w->n));
    for (long i = 0; i < w->m; i++)
        for (long j = 0; j < w->n; j++)
            xt[j * w->m + i] = x[i * w->n + j];
    mul(w->nz, t, x, xt, r, w->m, w->n, w->m, w->sa, w->sb);
    free(xt);
}

/* out = sum_{j >= from} q_j A^j (+ q_0 I when from = 0), powers by products */
static void poly(ref_work *w, int t, const ref_poly *p, const double *a, int from, double *out)
{
    long m = w->m;
    for (long i = 0; i < m * m; i++) {
        out[i] = (from == 0 && i % (m + 1) == 0) ? p->q[0] : 0.0;
        w->pw[i] = (i % (m + 1) == 0) ? 1.0 : 0.0;
    }
    for (int j = 1; j <= p->deg; j++) {
        if (j == 1)
            memcpy(w->pw, a, sizeof(double) * (size_t)(m * m));
        else {
            mul(w->nz, t, w->pw, a, w->tmp, m, m, m, w->sa, w->sb);
            memcpy(w->pw, w->tmp, sizeof(double) * (size_t)(m * m));
        }
        for (long i = 0; i < m * m; i++)
            out[i] += p->q[j] * w->pw[i];
    }
    round_each(w->nz, out, (size_t)(m * m));
}

/* X <- P X */
static void apply(ref_work *w, int t, const double *p)
{
    mul(w->nz, t, p, w->x, w->y, w->m, w->m, w->n, w->sa, w->sb);
    memcpy(w->x, w->y, sizeof(double) * (size_t)(w->m * w->n));
}

/* dst = a S + Z S (Z and S commute: both are polynomials in one Gram matrix) */
static void sym_update(ref_work *w, int t, const double *z, const double *s, double a, double *dst)
{
    long mm = w->m * w->m;
    mul(w->nz, t, z, s, w->tmp, w->m, w->m, w->m, w->sa, w->sb);
    for (long i = 0; i < mm; i++)
        dst[i] = a * s[i] + w->tmp[i];
    round_each(w->nz, dst, (size_t)mm);
}

static int restart_at(unsigned bits, int t)
{
    return t >= 1 && t < 32 && ((bits >> t) & 1u);
}

static void run_ns(ref_work *w, muon_coeffs co, int k, double safety, int t0, int steps)
{
    for (int t = t0; t < steps; t++) {
        ref_poly p;
        step_poly(co, k, safety, t, &p);
        gram(w, t, w->x, w->a);
        poly(w, t, &p, w->a, 0, w->pa);
        apply(w, t, w->pa);
    }
}

/* docs/algorithms.md 1b with Z = p(R) - a I for polynomials of any degree */
static void run_gram(ref_work *w, muon_coeffs co, int k, double safety, int t0, int steps,
                     unsigned bits)
{
    long mm = w->m * w->m;
    double *r = w->a, *rz = w->pa;
    int have_q = 0;
    gram(w, t0, w->x, r);
    for (int t = t0; t < steps; t++) {
        if (t > t0 && restart_at(bits, t)) {
            apply(w, t, w->q);
            gram(w, t, w->x, r);
            have_q = 0;
        }
        ref_poly p;
        step_poly(co, k, safety, t, &p);
        poly(w, t, &p, r, 1, w->z);
        if (!have_q) {
            memcpy(w->q, w->z, sizeof(double) * (size_t)mm);
            for (long i = 0; i < w->m; i++)
                w->q[i * w->m + i] += p.q[0];
            have_q = 1;
        } else {
            sym_update(w, t, w->z, w->q, p.q[0], rz);
            memcpy(w->q, rz, sizeof(double) * (size_t)mm);
        }
        if (t + 1 < steps && !restart_at(bits, t + 1)) {
            sym_update(w, t, w->z, r, p.q[0], rz);
            sym_update(w, t, w->z, rz, p.q[0], r);
        }
    }
    apply(w, steps, w->q);
}

/* X / (||X||_F s + eps), or AOL's row scaling 1 / sqrt(sum_j |(X X^T)_ij|) */
static void normalize(ref_work *w, int aol, double s, double eps)
{
    size_t mn = (size_t)(w->m * w->n);
    if (aol) {
        gram(w, 0, w->x, w->a);
        for (long i = 0; i < w->m; i++) {
            double rs = 0;
            for (long j = 0; j < w->m; j++)
                rs += fabs(w->a[i * w->m + j]);
            double si = 1.0 / sqrt(rs + 1e-14);
            for (long j = 0; j < w->n; j++)
                w->x[i * w->n + j] *= si;
        }
    } else {
        double fro = 0;
        for (size_t i = 0; i < mn; i++)
            fro += w->x[i] * w->x[i];
        fro = sqrt(fro);
        for (size_t i = 0; i < mn; i++)
            w->x[i] /= fro * s + eps;
    }
    round_each(w->nz, w->x, mn);
}

void ref_ortho(const muon_ortho_config *cfg, int use_gram, const float *in, long rows, long cols,
               ref_noise *noise, double *out)
{
    int tall = rows > cols;
    ref_work w = {.m = tall ? cols : rows, .n = tall ? rows : cols, .nz = noise};
    size_t mn = (size_t)(w.m * w.n), mm = (size_t)(w.m * w.m);
    double **bufs[] = {&w.x, &w.y, &w.sa, &w.sb};
    for (int i = 0; i < 4; i++)
        *bufs[i] = malloc(sizeof(double) * (mn > mm ? mn : mm));
    double **sq[] = {&w.a, &w.pw, &w.tmp, &w.pa, &w.q, &w.z};
    for (int i = 0; i < 6; i++)
        *sq[i] = malloc(sizeof(double) * mm);
    for (long i = 0; i < w.m; i++)
        for (long j = 0; j < w.n; j++)
            w.x[i * w.n + j] = tall ? in[j * cols + i] : in[i * cols + j];

    int steps = cfg->steps > 0 ? cfg->steps : 5;
    double safety = cfg->safety > 0 ? cfg->safety : 1.01;
    double eps = cfg->eps > 0 ? cfg->eps : 1e-7;
    int pe = cfg->coeffs == MUON_COEFFS_POLAR_EXPRESS;
    normalize(&w, cfg->aol, pe && !cfg->aol ? safety : 1.0, eps);
    unsigned bits = cfg->gram_restarts ? cfg->gram_restarts : MUON_GRAM_DEFAULT_RESTARTS;
    /* bf16 steps, as muon.h describes mixed precision, each make their own
     * Gram matrix (the NS form); Gram NS takes over after them */
    int t0 = noise && noise->operand_u > 0 ? noise->bf16_until : 0;
    t0 = t0 < 0 ? 0 : t0 > steps ? steps : t0;
    run_ns(&w, cfg->coeffs, cfg->taylor_k, safety, 0, use_gram ? t0 : steps);
    if (use_gram)
        run_gram(&w, cfg->coeffs, cfg->taylor_k, safety, t0, steps, bits);

    for (long i = 0; i < w.m; i++)
        for (long j = 0; j < w.n; j++) {
            if (tall)
                out[j * cols + i] = w.x[i * w.n + j];
            else
                out[i * cols + j] = w.x[i * w.n + j];
        }
    for (int i = 0; i < 4; i++)
        free(*bufs[i]);
    for (int i = 0; i < 6; i++)
        free(*sq[i]);
}

void ref_ns(const float *in, long rows, long cols, muon_coeffs coeffs, int taylor_k, int steps,
            int aol, double *out)
{
    muon_ortho_config c = muon_ortho_config_default();
    c.coeffs = coeffs;
    c.taylor_k = taylor_k;
    c.steps = steps;
    c.aol = aol;
    ref_ortho(&c, 0, in, rows, cols, NULL, out);
}

/* ------------------------------------------------------------ tolerance */

double ref_ortho_tol(const muon_ortho_config *cfg, const float *in, long rows, long cols,
                     const double *exact)
{
    size_t n = (size_t)(rows * cols);
    double *o = malloc(sizeof(double) * n), worst = 0;
    int steps = cfg->steps > 0 ? cfg->steps : 5;
    for (int g = 0; g <= 1; g++) {
        if ((g && cfg->method == MUON_ORTHO_NS) || (!g && cfg->method == MUON_ORTHO_GRAM_NS))
            continue;
        ref_noise nz = {.u = REF_U32};
        tu_seed(&nz.rng, 0x5eed + (uint64_t)g);
        /* AUTO may pick either precision: mixed's model, the larger */
        if (cfg->precision == MUON_PRECISION_MIXED || cfg->precision == MUON_PRECISION_AUTO) {
            nz.operand_u = REF_U16;
            nz.bf16_until = steps - 2;
        }
        ref_ortho(cfg, g, in, rows, cols, &nz, o);
        for (size_t i = 0; i < n; i++)
            if (fabs(o[i] - exact[i]) > worst)
                worst = fabs(o[i] - exact[i]);
    }
    free(o);
    return REF_SAFETY * worst;
}
