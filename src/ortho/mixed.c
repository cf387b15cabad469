/* mixed.c - the leading Newton-Schulz steps of the "mixed" precision, with
 * bf16 operands and fp32 accumulation (src/base/bf16.h).
 *
 * Why only the leading steps: a step maps each singular value through its
 * polynomial, so rounding X to bf16 before a step moves the singular
 * values by about 2^-9 relative, and the steps after it pull them back
 * into the polynomials' target band. The last two steps run in fp32 and
 * set the final singular values: measured on Gaussian 768 x 3072 and
 * 1024 x 4096 inputs with polar-express, the orthogonality error is the
 * same as fp32's to four digits, while bf16 in the last step as well
 * raises it from 0.130 to 0.136 (docs/ortho.md, "Precision").
 *
 * Under NS each bf16 step is plain NS on the wide view: A = X X^T,
 * S = p(A), X <- S X (muon__mixed_run). Under Gram NS the bf16 steps are
 * Gram-NS steps whose Gram matrix, m x m products and closing X product
 * all take bf16 operands, with a restart where they end
 * (src/ortho/iterate.c); the helpers for that are here too. Products are
 * whole GEMMs: with AMX, SYRK and the one-triangle panels would save less
 * than they cost. */
#include <string.h>

#include "base/bf16.h"
#include "ortho/ortho.h"

static size_t half_floats(size_t n)
{
    return ((n + 1) / 2 + 15) & ~(size_t)15; /* n bf16 values, 64-byte blocks */
}

int muon__bf16_steps(const muon_ortho_config *cfg)
{
    if (cfg->precision != MUON_PRECISION_MIXED || cfg->steps <= 2)
        return 0;
    return cfg->steps - 2;
}

size_t muon__bf16_work_floats(const muon_ortho_config *cfg, const muon__view *v)
{
    if (muon__bf16_steps(cfg) == 0)
        return 0;
    size_t mn = (size_t)v->m * (size_t)v->n, mm = (size_t)v->m * (size_t)v->m;
    return half_floats(mn) + 2 * half_floats(mm); /* X, A and S in bf16 */
}

double muon__mixed_flops(const muon_ortho_config *cfg, const muon__view *v)
{
    double m = (double)v->m, n = (double)v->n, f = 0;
    for (int t = 0; t < muon__bf16_steps(cfg); t++) {
        muon__poly p;
        muon__ortho_step_poly(cfg, t, &p);
        f += 4 * m * m * n; /* the full Gram product and S X */
        f += p.deg == 2 ? 2 * m * m * m : muon__poly_eval_flops(&p, v->m);
    }
    return f;
}

/* The scratch areas inside wb: X (m n), then A and S (m m each), in bf16. */
static muon__bf16 *wb_x(float *wb) { return (muon__bf16 *)wb; }
static muon__bf16 *wb_a(float *wb, size_t mn) { return (muon__bf16 *)(wb + half_floats(mn)); }
static muon__bf16 *wb_s(float *wb, size_t mn, size_t mm)
{
    return (muon__bf16 *)(wb + half_floats(mn) + half_floats(mm));
}

/* A = X X^T of the wide view from X already in bf16; a tall X is stored
 * n x m, so X^T X */
static muon_status gram16(const muon__view *v, const muon__bf16 *xb, float *a)
{
    long m = v->m, n = v->n;
    if (v->tall)
        return muon__gemm_bf16(1, 0, m, m, n, 1.0f, xb, xb, 0.0f, a, m);
    return muon__gemm_bf16(0, 1, m, m, n, 1.0f, xb, xb, 0.0f, a, m);
}

/* Y = S X (tall: X S, n x m) from S and X already in bf16 */
static muon_status apply16(const muon__view *v, const muon__bf16 *sb, const muon__bf16 *xb,
                           float *y)
{
    long m = v->m, n = v->n;
    if (v->tall)
        return muon__gemm_bf16(0, 0, n, m, m, 1.0f, xb, sb, 0.0f, y, m);
    return muon__gemm_bf16(0, 0, m, n, m, 1.0f, sb, xb, 0.0f, y, n);
}

muon_status muon__gram_bf16(const muon__view *v, const float *x, float *r, float *wb)
{
    muon__to_bf16(wb_x(wb), x, (size_t)v->m * (size_t)v->n);
    return gram16(v, wb_x(wb), r);
}

muon_status muon__apply_bf16(const muon__view *v, const float *s, const float *x, float *y,
                             float *wb)
{
    size_t mn = (size_t)v->m * (size_t)v->n, mm = (size_t)v->m * (size_t)v->m;
    muon__to_bf16(wb_x(wb), x, mn);
    muon__to_bf16(wb_s(wb, mn, mm), s, mm);
    return apply16(v, wb_s(wb, mn, mm), wb_x(wb), y);
}

muon_status muon__poly_eval_bf16(const muon__poly *p, const float *r, float *z, float *t, long m,
                                 float *wb, long n)
{
    if (p->deg != 2) { /* taylor-K: its Horner chain in fp32 */
        muon__poly_eval(p, 0.0, r, z, t, m, 1);
        return MUON_OK;
    }
    size_t mn = (size_t)m * (size_t)n, mm = (size_t)m * (size_t)m;
    muon__bf16 *rb = wb_a(wb, mn);
    muon__to_bf16(rb, r, mm);
    muon_status st = muon__gemm_bf16(0, 0, m, m, m, 1.0f, rb, rb, 0.0f, t, m); /* R R */
    float q1 = (float)p->q[1], q2 = (float)p->q[2];
    for (size_t i = 0; i < mm; i++)
        z[i] = q1 * r[i] + q2 * t[i];
    return st;
}

muon_status muon__sym_update_bf16(const float *z, const float *b, const float *init, float beta,
                                  float *dst, long m, float *wb, long n)
{
    size_t mn = (size_t)m * (size_t)n, mm = (size_t)m * (size_t)m;
    muon__bf16 *zb = wb_a(wb, mn), *bb = wb_s(wb, mn, mm);
    muon__to_bf16(zb, z, mm);
    muon__to_bf16(bb, b, mm);
    /* the whole product: with AMX, computing one triangle by panels and
     * mirroring it saves less than it costs */
    muon_status st = muon__gemm_bf16(0, 0, m, m, m, 1.0f, zb, bb, 0.0f, dst, m);
    for (size_t i = 0; i < mm; i++)
        dst[i] += beta * init[i];
    return st;
}

muon_status muon__mixed_run(const muon_ortho_config *cfg, const muon__view *v, float **cur,
                            float **nxt, float *a, float *s, float *t, float *wb)
{
    long m = v->m;
    size_t mn = (size_t)m * (size_t)v->n, mm = (size_t)m * (size_t)m;
    muon__bf16 *xb = wb_x(wb), *ab = wb_a(wb, mn), *sb = wb_s(wb, mn, mm);
    muon_status st = MUON_OK;
    for (int step = 0; step < muon__bf16_steps(cfg) && st == MUON_OK; step++) {
        muon__poly p;
        muon__ortho_step_poly(cfg, step, &p);
        muon__to_bf16(xb, *cur, mn);
        if ((st = gram16(v, xb, a)) != MUON_OK)
            break;
        if (p.deg == 2) { /* S = q0 I + q1 A + q2 A A */
            /* A A unscaled into t, the rest in one pass: oneDNN's AMX
             * kernel takes no runtime scale with an accumulating C */
            muon__to_bf16(ab, a, mm);
            st = muon__gemm_bf16(0, 0, m, m, m, 1.0f, ab, ab, 0.0f, t, m);
            float q0 = (float)p.q[0], q1 = (float)p.q[1], q2 = (float)p.q[2];
            for (size_t i = 0; i < mm; i++)
                s[i] = q1 * a[i] + q2 * t[i];
            for (long i = 0; i < m; i++)
                s[i * m + i] += q0;
        } else { /* taylor-K: its Horner chain in fp32 */
            muon__poly_eval(&p, p.q[0], a, s, t, m, 1);
        }
        if (st != MUON_OK)
            break;
        muon__to_bf16(sb, s, mm);
        st = apply16(v, sb, xb, *nxt);
        float *tmp = *cur;
        *cur = *nxt;
        *nxt = tmp;
    }
    return st;
}
