/* iterate.c - Newton-Schulz (docs/algorithms.md 1a) and Gram Newton-Schulz (1b)
 * on an already normalized X0, in the wide view (see kernels.c).
 *
 * NS step: A = X X^T (SYRK), S = p_t(A) (one SYRK for degree 2, plus one
 * GEMM per extra degree), X <- S X (a GEMM): 3 m^2 n + m^3 flops for a
 * triple against 4 m^2 n + 2 m^3 with plain GEMMs.
 *
 * Gram NS keeps the m x m matrices R = X X^T and Q (the accumulated
 * polynomial) and touches X only at restarts and at the end, so for
 * n >> m most of the work is on m x m matrices. With a = q_0 and
 * Z = p_t(R) - a I it follows the spec: Q = a Q + Q Z, RZ = a R + R Z,
 * R = a RZ + Z RZ. All of them are polynomials in the same R, so they
 * commute and each product is symmetric: only its block upper triangle is
 * computed (GEMMs by row panels), then mirrored. Those GEMMs and X <- Q X
 * go through muon__sgemm (oneDNN; kernels.c). */
#include <string.h>

#include "ortho/ortho.h"

static int max_degree(const muon_ortho_config *cfg)
{
    return cfg->coeffs == MUON_COEFFS_TAYLOR ? cfg->taylor_k : 2;
}

int muon__iter_mm_buffers(const muon_ortho_config *cfg)
{
    if (cfg->method == MUON_ORTHO_GRAM_NS)
        return 4; /* R, Z, Q, and a scratch that also serves the Horner steps */
    /* A, S (+ Horner scratch, or the bf16 steps' A A) */
    return max_degree(cfg) >= 3 || muon__bf16_steps(cfg) > 0 ? 3 : 2;
}

int muon__iter_x_products(const muon_ortho_config *cfg)
{
    int t0 = muon__bf16_steps(cfg);
    if (cfg->method != MUON_ORTHO_GRAM_NS)
        return cfg->steps;
    int n = t0 + 1; /* the bf16 steps, then the final X = Q X */
    for (int t = t0 + 1; t < cfg->steps; t++)
        n += muon__gram_restart_at(cfg, t);
    return n;
}

void muon__ns_run(const muon_ortho_config *cfg, const muon__view *v, int t0, float *x0,
                  float *other, float *const mm[], int have_a0)
{
    float *a = mm[0], *s = mm[1], *scratch = max_degree(cfg) >= 3 ? mm[2] : NULL;
    float *cur = x0, *nxt = other;
    for (int t = t0; t < cfg->steps; t++) {
        if (!(t == 0 && have_a0))
            muon__gram(v, cur, a, 1.0f);
        muon__poly p;
        muon__ortho_step_poly(cfg, t, &p);
        /* q_0 goes on S's diagonal so X <- S X is one product */
        muon__poly_eval(v, &p, p.q[0], a, s, scratch);
        muon__apply_full(v, s, cur, nxt);
        float *tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
}

/* Row panels of the block upper triangle of a symmetric m x m product:
 * panel i covers rows [lo, hi) and columns [lo, m). Four panels compute
 * 62.5% of the full product's flops and take ~78% of its time at m = 768
 * and 1024 (one thread; smaller panels run GEMM a little less efficiently);
 * below 256 one full GEMM. Boundaries on multiples of 64. */
#define SYM_PANELS 4
static int sym_panels(long m, long lo[SYM_PANELS + 1])
{
    int np = m >= 256 ? SYM_PANELS : 1;
    lo[0] = 0;
    for (int i = 1; i < np; i++)
        lo[i] = (m * i / np + 32) / 64 * 64;
    lo[np] = m;
    return np;
}

static double sym_product_flops(long m)
{
    long lo[SYM_PANELS + 1];
    int np = sym_panels(m, lo);
    double f = 0;
    for (int i = 0; i < np; i++)
        f += 2.0 * (double)(lo[i + 1] - lo[i]) * (double)(m - lo[i]) * (double)m;
    return f;
}

/* dst = beta init + Z B, Z and B commuting symmetric matrices (polynomials
 * in the same R), so the result is symmetric: only its block upper
 * triangle is computed (one GEMM per row panel), then mirrored, since the
 * next products read it whole; beta init is added in the mirror's pass
 * rather than copied in first. B and init (in practice the same matrix)
 * distinct from dst. */
static void sym_update(const muon__view *v, const float *z, const float *b, const float *init,
                       float beta, float *dst)
{
    long m = v->m, lo[SYM_PANELS + 1];
    int np = sym_panels(m, lo);
    if (np == 1) {
        memcpy(dst, init, (size_t)m * (size_t)m * sizeof(float));
        muon__sgemm(v, 0, m, m, m, z, m, b, m, beta, dst, m);
        return;
    }
    for (int i = 0; i < np; i++) {
        long r0 = lo[i], rows = lo[i + 1] - lo[i];
        muon__sgemm(v, 0, rows, m - r0, m, z + r0 * m, m, b + r0, m, 0.0f, dst + r0 * m + r0, m);
    }
    muon__mirror_upper_add(dst, init, beta, m);
}

void muon__gram_ns_run(const muon_ortho_config *cfg, const muon__view *v, int t0, float *x0,
                       float *other, float *const mm[], int have_a0)
{
    long m = v->m;
    float *r = mm[0], *z = mm[1], *q = mm[2], *t_buf = mm[3];
    float *cur = x0, *nxt = other;
    int have_q = 0;
    if (!have_a0)
        muon__gram(v, cur, r, 1.0f);
    for (int t = t0; t < cfg->steps; t++) {
        /* the first step starts from a fresh Gram matrix: no restart */
        if (t > t0 && muon__gram_restart_at(cfg, t)) {
            muon__apply_full(v, q, cur, nxt);
            float *tmp = cur;
            cur = nxt;
            nxt = tmp;
            muon__gram(v, cur, r, 1.0f);
            have_q = 0;
        }
        muon__poly p;
        muon__ortho_step_poly(cfg, t, &p);
        float a = (float)p.q[0];
        muon__poly_eval(v, &p, 0.0, r, z, t_buf); /* Z = p(R) - a I */
        if (!have_q) {
            memcpy(q, z, (size_t)m * (size_t)m * sizeof(float));
            for (long i = 0; i < m; i++)
                q[i * m + i] += a;
            have_q = 1;
        } else {
            sym_update(v, z, q, q, a, t_buf); /* a Q + Z Q */
            float *tmp = q;
            q = t_buf;
            t_buf = tmp;
        }
        if (t + 1 < cfg->steps && !muon__gram_restart_at(cfg, t + 1)) {
            sym_update(v, z, r, r, a, t_buf);     /* RZ = a R + Z R */
            sym_update(v, z, t_buf, t_buf, a, r); /* R = a RZ + Z RZ */
        }
    }
    muon__apply_full(v, q, cur, nxt);
}

double muon__iter_flops(const muon_ortho_config *cfg, const muon__view *v, int have_a0)
{
    double m = (double)v->m, n = (double)v->n;
    double gram = m * (m + 1) * n, apply = 2 * m * m * n, mmm = sym_product_flops(v->m);
    int t0 = muon__bf16_steps(cfg);
    double f = muon__mixed_flops(cfg, v);
    if (t0 > 0)
        have_a0 = 0; /* the bf16 steps make their own Gram matrices */
    if (cfg->method != MUON_ORTHO_GRAM_NS) {
        for (int t = t0; t < cfg->steps; t++) {
            muon__poly p;
            muon__ortho_step_poly(cfg, t, &p);
            f += (t == 0 && have_a0 ? 0 : gram) + muon__poly_eval_flops(&p, v->m) + apply;
        }
        return f;
    }
    int have_q = 0;
    if (!have_a0)
        f += gram;
    for (int t = t0; t < cfg->steps; t++) {
        if (t > t0 && muon__gram_restart_at(cfg, t)) {
            f += apply + gram;
            have_q = 0;
        }
        muon__poly p;
        muon__ortho_step_poly(cfg, t, &p);
        f += muon__poly_eval_flops(&p, v->m);
        if (have_q)
            f += mmm;
        have_q = 1;
        if (t + 1 < cfg->steps && !muon__gram_restart_at(cfg, t + 1))
            f += 2 * mmm;
    }
    return f + apply;
}
