/* rank: Muon against SGD with momentum as the gradient's rank grows (the
 * square-root-of-rank claim of the Newton-Schulz convergence analysis;
 * docs/algorithms.md 6). The project's construction: f(W) = 1/2 tr((W -
 * W*) S (W - W*)^T) over n x n matrices, S with eigenvalues uniform in
 * (0, 1), W* of rank r with unit singular values and W0 = 0, so every
 * gradient (W - W*) S has rank r. Both optimizers are libmuon's (sgdm and
 * the Muon rule, Nesterov 0.9, scale none), each at the best constant lr of
 * its grid; the count is iterations to f <= 1e-2 f(W0). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/exp.h"
#include "exp/linalg.h"

#define REL_TARGET 1e-2
#define N_LR 8

static double loss_grad(long n, const float *w, const double *ws, const double *s, double *dd,
                        float *g)
{
    for (long i = 0; i < n * n; i++)
        dd[i] = (double)w[i] - ws[i];
    double *gd = dd + n * n;
    exp_gemm(0, 0, n, n, n, 1.0, dd, s, 0.0, gd);
    double f = 0;
    for (long i = 0; i < n * n; i++) {
        f += dd[i] * gd[i];
        g[i] = (float)gd[i];
    }
    return 0.5 * f;
}

static long run(exp_ctx *x, long n, const double *ws, const double *s, muon_algo algo, double lr,
                long budget)
{
    float *w = calloc((size_t)(n * n), sizeof(float)), *g = malloc(sizeof(float) * (size_t)(n * n));
    double *dd = malloc(sizeof(double) * (size_t)(2 * n * n));
    muon_opt_config c = muon_opt_config_default();
    c.algo = algo;
    c.lr = lr;
    c.momentum = 0.9;
    c.weight_decay = 0;
    c.scale = MUON_SCALE_NONE;
    c.threads = x->threads;
    long shape[2] = {n, n}, found = -1;
    muon_opt *opt = NULL;
    if (w && g && dd && muon_opt_create(&c, &opt) == MUON_OK &&
        muon_opt_add_param(opt, "W", w, g, 2, shape, MUON_ROLE_MATRIX, NULL) == MUON_OK &&
        muon_opt_finalize(opt) == MUON_OK) {
        double f0 = loss_grad(n, w, ws, s, dd, g);
        for (long it = 0; it <= budget; it++) {
            double f = it ? loss_grad(n, w, ws, s, dd, g) : f0;
            if (!isfinite(f) || f > 1e6 * f0)
                break;
            if (f <= REL_TARGET * f0) {
                found = it;
                break;
            }
            if (muon_opt_step(opt, 1.0) != MUON_OK)
                break;
        }
    }
    muon_opt_free(opt);
    free(w);
    free(g);
    free(dd);
    return found;
}

int exp_rank(exp_ctx *x)
{
    long n = x->quick ? 16 : 64, budget = x->quick ? 600 : 4000;
    int nr = 0;
    long ranks[8];
    for (long r = 1; r <= n; r *= 2)
        ranks[nr++] = r;
    const double sgd_lr[N_LR] = {0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0};
    const double muon_lr[N_LR] = {0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0};
    double *s = calloc((size_t)(n * n), sizeof(double)), *ws = malloc(sizeof(double) * (size_t)(n * n));
    double *e = malloc(sizeof(double) * (size_t)n), *q = malloc(sizeof(double) * (size_t)(n * n));
    static double it_sgd[8], it_muon[8], lr_sgd[8], lr_muon[8], ratio[8], sq[8], lrank[8];
    int rc = !s || !ws || !e || !q ? exp_fail(x, "out of memory") : 0;
    exp_rng rng;
    exp_rng_seed(&rng, 11);
    if (!rc && exp_orthonormal(&rng, n, n, q))
        rc = exp_fail(x, "LAPACK failed");
    for (long i = 0; !rc && i < n; i++) {
        double ev = exp_uniform(&rng);
        for (long a = 0; a < n; a++)
            for (long b = 0; b < n; b++)
                s[a * n + b] += q[a * n + i] * ev * q[b * n + i];
    }
    for (int k = 0; k < nr && !rc; k++) {
        for (long i = 0; i < n; i++)
            e[i] = i < ranks[k] ? 1.0 : 0.0;
        exp_rng wr;
        exp_rng_seed(&wr, 1000 + (uint64_t)k);
        if (exp_matrix_with_spectrum(&wr, n, n, e, ws)) {
            rc = exp_fail(x, "LAPACK failed");
            break;
        }
        long bs = -1, bm = -1;
        for (int j = 0; j < N_LR; j++) {
            long a = run(x, n, ws, s, MUON_ALGO_SGDM, sgd_lr[j], bs >= 0 ? bs : budget);
            if (a >= 0 && (bs < 0 || a < bs)) {
                bs = a;
                lr_sgd[k] = sgd_lr[j];
            }
            long b = run(x, n, ws, s, MUON_ALGO_MUON, muon_lr[j], bm >= 0 ? bm : budget);
            if (b >= 0 && (bm < 0 || b < bm)) {
                bm = b;
                lr_muon[k] = muon_lr[j];
            }
        }
        it_sgd[k] = bs >= 0 ? (double)bs : NAN;
        it_muon[k] = bm >= 0 ? (double)bm : NAN;
        ratio[k] = it_sgd[k] / it_muon[k];
        sq[k] = sqrt((double)ranks[k]);
        lrank[k] = log2((double)ranks[k]);
    }
    free(s);
    free(ws);
    free(e);
    free(q);
    if (rc)
        return rc;
    exp_md(x, "n = %ld; iterations to f <= %g f(W0) (budget %ld), best constant lr of each "
              "grid (SGD-momentum lr in 0.1..2, Muon lr in 0.005..1).\n\n| rank r | SGD-momentum "
              "| Muon | SGDM / Muon | sqrt(r) |\n|---|---|---|---|---|\n",
           n, REL_TARGET, budget);
    double rr[8];
    for (int k = 0; k < nr; k++) {
        exp_md(x, "| %ld | %.0f (lr %g) | %.0f (lr %g) | %.2f | %.2f |\n", ranks[k], it_sgd[k],
               lr_sgd[k], it_muon[k], lr_muon[k], ratio[k], sq[k]);
        rr[k] = (double)ranks[k];
    }
    cJSON_AddItemToObject(x->root, "rank", exp_json_array(rr, nr));
    cJSON_AddItemToObject(x->root, "sgdm", exp_json_array(it_sgd, nr));
    cJSON_AddItemToObject(x->root, "muon", exp_json_array(it_muon, nr));
    cJSON_AddItemToObject(x->root, "sgdm_lr", exp_json_array(lr_sgd, nr));
    cJSON_AddItemToObject(x->root, "muon_lr", exp_json_array(lr_muon, nr));
    cJSON_AddItemToObject(x->root, "ratio", exp_json_array(ratio, nr));
    plot_series ser[2] = {{"SGDM iterations / Muon iterations", lrank, ratio, nr},
                          {"sqrt(r)", lrank, sq, nr}};
    plot_panel p = {"Muon's advantage against the gradient's rank", "log2 rank", "ratio", ser, 2};
    return exp_plot(x, "rank.svg", "advantage against rank", &p, 1);
}
