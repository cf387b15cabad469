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
 * Each step is plain NS on the wide view: A = X X^T, S = p(A), X <- S X,
 * whatever the configured method; the two fp32 steps then run that method.
 * A Gram-NS form of the bf16 steps (bf16 Gram matrix, m x m iterations and
 * closing product) was faster by another 15-25% and as orthogonal on
 * Gaussian inputs, but it broke training (tinyshakespeare, Muon: val loss
 * 3.34 against 1.83 after 400 steps): Gram NS iterates R <- R p(R)^2, which
 * multiplies bf16's rounding error in R's small eigen-directions by up to
 * p^2 ~ 70 per step, and gradients have many such directions. With AMX a
 * full GEMM for A costs less than keeping SYRK in fp32. */
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

muon_status muon__mixed_run(const muon_ortho_config *cfg, const muon__view *v, float **cur,
                            float **nxt, float *a, float *s, float *t, float *wb)
{
    long m = v->m, n = v->n;
    size_t mn = (size_t)m * (size_t)n, mm = (size_t)m * (size_t)m;
    muon__bf16 *xb = (muon__bf16 *)wb;
    muon__bf16 *ab = (muon__bf16 *)(wb + half_floats(mn));
    muon__bf16 *sb = (muon__bf16 *)(wb + half_floats(mn) + half_floats(mm));
    muon_status st = MUON_OK;
    for (int step = 0; step < muon__bf16_steps(cfg) && st == MUON_OK; step++) {
        muon__poly p;
        muon__ortho_step_poly(cfg, step, &p);
        muon__to_bf16_t(xb, *cur, mn, v->threads);
        /* A = X X^T of the wide view; a tall X is stored n x m, so X^T X */
        if (v->tall)
            st = muon__be_gemm_bf16(v->be, v->threads, 1, 0, m, m, n, 1.0f, xb, xb, 0.0f, a, m);
        else
            st = muon__be_gemm_bf16(v->be, v->threads, 0, 1, m, m, n, 1.0f, xb, xb, 0.0f, a, m);
        if (st != MUON_OK)
            break;
        if (p.deg == 2) { /* S = q0 I + q1 A + q2 A A */
            /* A A unscaled into t, the rest in one pass: oneDNN's AMX
             * kernel takes no runtime scale with an accumulating C */
            muon__to_bf16_t(ab, a, mm, v->threads);
            st = muon__be_gemm_bf16(v->be, v->threads, 0, 0, m, m, m, 1.0f, ab, ab, 0.0f, t, m);
            float q0 = (float)p.q[0], q1 = (float)p.q[1], q2 = (float)p.q[2];
            for (size_t i = 0; i < mm; i++)
                s[i] = q1 * a[i] + q2 * t[i];
            for (long i = 0; i < m; i++)
                s[i * m + i] += q0;
        } else { /* taylor-K: its Horner chain in fp32 */
            muon__poly_eval(v, &p, p.q[0], a, s, t);
        }
        if (st != MUON_OK)
            break;
        muon__to_bf16_t(sb, s, mm, v->threads);
        if (v->tall) /* X S, n x m */
            st = muon__be_gemm_bf16(v->be, v->threads, 0, 0, n, m, m, 1.0f, xb, sb, 0.0f, *nxt, m);
        else
            st = muon__be_gemm_bf16(v->be, v->threads, 0, 0, m, n, m, 1.0f, sb, xb, 0.0f, *nxt, n);
        float *tmp = *cur;
        *cur = *nxt;
        *nxt = tmp;
    }
    return st;
}
