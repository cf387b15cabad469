/* rank: Muon against SGD with momentum as the gradient's rank grows. The
 * Newton-Schulz convergence analysis (Kim and Oh, 2026) proves Muon free of
 * the square-root-of-rank loss SGD with momentum pays when stationarity is
 * measured in the nuclear norm ||grad f||_* (which is up to sqrt(r) times
 * the Frobenius norm for a rank-r gradient). The project's construction:
 * f(W) = 1/2 tr((W - W*) S (W - W*)^T) over n x n matrices, S with
 * eigenvalues uniform in (0, 1), W* of rank r with unit singular values and
 * W0 = 0, so every gradient (W - W*) S has rank r. Both optimizers are
 * libmuon's (sgdm and the Muon rule, Nesterov 0.9, scale none), each at the
 * best lr of its grid for each measure, decaying linearly to 0 over a
 * fixed budget of T steps (a constant-step normalized method never settles
 * at a stationary point). The measure is the theorem's: the smallest
 * gradient norm over the T iterates, nuclear and, for contrast, Frobenius,
 * relative to the start; the claim predicts SGDM's nuclear-norm result
 * falling behind Muon's as r grows, and no such trend in Frobenius. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/exp.h"
#include "exp/linalg.h"

#define N_LR 8

/* The gradient (W - W*) S into g and its nuclear (nrm[0]) and Frobenius
 * (nrm[1]) norms. */
static int grad_norms(long n, const float *w, const double *ws, const double *s, double *dd,
                      float *g, double *sv, double nrm[2])
{
    for (long i = 0; i < n * n; i++)
        dd[i] = (double)w[i] - ws[i];
    double *gd = dd + n * n;
    exp_gemm(0, 0, n, n, n, 1.0, dd, s, 0.0, gd);
    for (long i = 0; i < n * n; i++)
        g[i] = (float)gd[i];
    if (exp_singular_values(gd, n, n, sv))
        return -1;
    nrm[0] = nrm[1] = 0;
    for (long i = 0; i < n; i++) {
        nrm[0] += sv[i];
        nrm[1] += sv[i] * sv[i];
    }
    nrm[1] = sqrt(nrm[1]);
    return 0;
}

/* The smallest nuclear (best[0]) and Frobenius (best[1]) gradient norm
 * over T steps, relative to W0's; infinite when the run diverged. */
static void run(exp_ctx *x, long n, const double *ws, const double *s, muon_algo algo, double lr,
                long steps, double best[2])
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
    long shape[2] = {n, n};
    double *sv = malloc(sizeof(double) * (size_t)n), n0[2], nt[2];
    muon_opt *opt = NULL;
    best[0] = best[1] = INFINITY;
    if (w && g && dd && sv && muon_opt_create(&c, &opt) == MUON_OK &&
        muon_opt_add_param(opt, "W", w, g, 2, shape, MUON_ROLE_MATRIX, NULL) == MUON_OK &&
        muon_opt_finalize(opt) == MUON_OK && !grad_norms(n, w, ws, s, dd, g, sv, n0)) {
        best[0] = best[1] = 1.0;
        for (long t = 0; t < steps; t++) {
            if (muon_opt_step(opt, 1.0 - (double)t / (double)steps) != MUON_OK ||
                grad_norms(n, w, ws, s, dd, g, sv, nt) || !isfinite(nt[1])) {
                best[0] = best[1] = INFINITY;
                break;
            }
            for (int k = 0; k < 2; k++)
                best[k] = fmin(best[k], nt[k] / n0[k]);
        }
    }
    muon_opt_free(opt);
    free(w);
    free(g);
    free(dd);
    free(sv);
}

int exp_rank(exp_ctx *x)
{
    long n = x->quick ? 16 : 64, steps = x->quick ? 40 : 200;
    int nr = 0;
    long ranks[8];
    for (long r = 1; r <= n; r *= 2)
        ranks[nr++] = r;
    const double grid[2][N_LR] = {{0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0},
                                  {0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0}};
    const muon_algo algos[2] = {MUON_ALGO_SGDM, MUON_ALGO_MUON};
    double *s = calloc((size_t)(n * n), sizeof(double)), *ws = malloc(sizeof(double) * (size_t)(n * n));
    double *e = malloc(sizeof(double) * (size_t)n), *q = malloc(sizeof(double) * (size_t)(n * n));
    /* res[measure][optimizer][rank]: measure 0 nuclear, 1 Frobenius */
    static double res[2][2][8], lr[2][2][8], ratio[2][8], sq[8], lrank[8];
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
        for (int o = 0; o < 2; o++) {
            res[0][o][k] = res[1][o][k] = INFINITY;
            for (int j = 0; j < N_LR; j++) {
                double b[2];
                run(x, n, ws, s, algos[o], grid[o][j], steps, b);
                for (int m = 0; m < 2; m++)
                    if (b[m] < res[m][o][k]) {
                        res[m][o][k] = b[m];
                        lr[m][o][k] = grid[o][j];
                    }
            }
        }
        for (int m = 0; m < 2; m++)
            ratio[m][k] = res[m][0][k] / res[m][1][k];
        sq[k] = sqrt((double)ranks[k]);
        lrank[k] = log2((double)ranks[k]);
    }
    free(s);
    free(ws);
    free(e);
    free(q);
    if (rc)
        return rc;
    exp_md(x, "n = %ld, T = %ld steps with the lr decaying linearly to 0; the smallest "
              "gradient norm over the run relative to W0's, nuclear and Frobenius, each "
              "optimizer at the best lr of its grid for that measure (SGD-momentum lr in "
              "0.1..2, Muon lr in 0.005..1). Ratio = SGDM's / Muon's (above 1: Muon reached "
              "the smaller gradient).\n\n| rank r | SGDM, nuclear | Muon, nuclear | ratio | "
              "SGDM, Frobenius | Muon, Frobenius | ratio | sqrt(r) |\n"
              "|---|---|---|---|---|---|---|---|\n",
           n, steps);
    double rr[8];
    for (int k = 0; k < nr; k++) {
        exp_md(x, "| %ld | %.2e (lr %g) | %.2e (lr %g) | %.3g | %.2e (lr %g) | %.2e (lr %g) | "
                  "%.3g | %.2f |\n",
               ranks[k], res[0][0][k], lr[0][0][k], res[0][1][k], lr[0][1][k], ratio[0][k],
               res[1][0][k], lr[1][0][k], res[1][1][k], lr[1][1][k], ratio[1][k], sq[k]);
        rr[k] = (double)ranks[k];
    }
    cJSON_AddItemToObject(x->root, "rank", exp_json_array(rr, nr));
    const char *mk[2] = {"nuclear", "frobenius"};
    for (int m = 0; m < 2; m++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "sgdm", exp_json_array(res[m][0], nr));
        cJSON_AddItemToObject(o, "muon", exp_json_array(res[m][1], nr));
        cJSON_AddItemToObject(o, "sgdm_lr", exp_json_array(lr[m][0], nr));
        cJSON_AddItemToObject(o, "muon_lr", exp_json_array(lr[m][1], nr));
        cJSON_AddItemToObject(o, "ratio", exp_json_array(ratio[m], nr));
        cJSON_AddItemToObject(x->root, mk[m], o);
    }
    plot_series ser[3] = {{"SGDM / Muon, nuclear norm", lrank, ratio[0], nr},
                          {"SGDM / Muon, Frobenius norm", lrank, ratio[1], nr},
                          {"sqrt(r)", lrank, sq, nr}};
    plot_panel p = {"Muon's advantage against the gradient's rank", "log2 rank",
                    "SGDM / Muon", ser, 3};
    return exp_plot(x, "rank.svg", "advantage against rank", &p, 1);
}
